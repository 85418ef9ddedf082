"""harness - what the integration tests import.

TAP: a tiny TAP producer (ok, is_, like, skip, diag, done).
Sandbox: a private directory with throwaway certificates, the mock identity
platform (idp.py) and the Exchange-shaped SMTP server (smtpd.py) running as
subprocesses on loopback, a bearmail config file for an account "work" with
a seeded refresh token, and helpers to run the real binaries
($BEARMAIL_BUILDDIR/sendmail, bearmail) against them and read back what the
servers received.  The servers are killed and the directory removed when the
sandbox closes, also when a test raises (set BEARMAIL_KEEP=1 to keep the
directory).  The servers also exit by themselves when this process dies
(they watch their stdin).

Checking a delivery: exit 0 means delivered *or queued*, so a test that
means "delivered" asks the server: Sandbox.send_and_expect() and
expect_arrival() fail the test loudly (sendmail's stderr, the queue, the
server's and bearmail's logs) when nothing arrived, and hand back a
stand-in record whose checks then fail too, so no assertion is skipped.
BEARMAIL_TEST_MUTATE=queue,drop breaks every delivery on purpose (the
mutation check that those tests fail).
"""

import atexit
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import certs  # noqa: E402

PY = "/usr/bin/python3"
SRCDIR = os.environ.get("BEARMAIL_SRCDIR") or os.path.dirname(
    os.path.dirname(HERE))
BUILDDIR = os.environ.get("BEARMAIL_BUILDDIR") or os.path.join(SRCDIR,
                                                               "_build")

USER = "alice@contoso.example"
TENANT = "contoso.example"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SCOPE = "https://outlook.office.com/SMTP.Send offline_access"

# Mutation checks: $BEARMAIL_TEST_MUTATE (comma-separated) breaks delivery
# in every sandbox, so that a run shows which tests notice.  "queue": the
# account gets `delivery queue` (sendmail queues and exits 0; bearmail
# send-test still delivers, it always sends now); "drop": the server
# closes after the data without a reply (every delivery is deferred).
MUTATIONS = ("queue", "drop")
MUTATE = frozenset(w for w in re.split(r"[,\s]+",
                                       os.environ.get("BEARMAIL_TEST_MUTATE",
                                                      "")) if w)
if MUTATE - set(MUTATIONS):
    raise SystemExit("BEARMAIL_TEST_MUTATE: unknown %s (known: %s)" % (
        ", ".join(sorted(MUTATE - set(MUTATIONS))), ", ".join(MUTATIONS)))


def gecos_name():
    """The display name bearmail gives this user's mail (the passwd GECOS
    field up to the first comma, "&" the capitalised login), or None."""
    import pwd
    try:
        pw = pwd.getpwuid(os.getuid())
    except KeyError:
        return None
    field = pw.pw_gecos.split(",", 1)[0]
    if not field:
        return None
    return field.replace("&", pw.pw_name[:1].upper() + pw.pw_name[1:])


def no_message():
    """What expect_arrival() returns for a message that did not arrive:
    the keys of a received one, with values that fail the usual checks."""
    return {"arrived": False, "mail_from": None, "mail_options": [],
            "rcpt_tos": [], "rcpt_options": [], "rejected": [], "via": None,
            "size": 0, "max_line": 0, "data_file": None, "reply": None,
            "accepted": False, "bytes": b"", "session": None}


def no_session():
    """session_of() for a message that did not arrive: a violation and an
    auth failure, so "none of those" checks fail as well."""
    return {"id": None, "started": None, "ended": None, "peer": None,
            "tls": False, "implicit_tls": False, "ehlo": [], "quit": False,
            "closed": True, "auth_user": None, "auth_mech": None,
            "auth_failures": ["no session: the message did not arrive"],
            "commands": [], "messages": [],
            "violations": ["no session: the message did not arrive"]}


class TAP:
    """Prints TAP: "ok N - name", "not ok N - name" with "# " diagnostics."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.n = 0
        self.failed = 0

    def _emit(self, text):
        print(text, file=self.out, flush=True)

    def diag(self, text):
        for line in str(text).splitlines() or [""]:
            self._emit("# " + line)

    def ok(self, cond, name, diag=None):
        self.n += 1
        name = name.replace("#", "\\#").replace("\n", " ")
        self._emit("%s %d - %s" % ("ok" if cond else "not ok", self.n, name))
        if not cond:
            self.failed += 1
            if diag is not None:
                self.diag(diag)
        return bool(cond)

    def is_(self, got, want, name):
        return self.ok(got == want, name,
                       "     got: %r\nexpected: %r" % (got, want))

    def like(self, got, pattern, name):
        found = got is not None and re.search(pattern, got) is not None
        return self.ok(found, name, "     got: %r\n    like: %r" % (got, pattern))

    def skip(self, name, reason):
        self.n += 1
        self._emit("ok %d - %s # SKIP %s" % (self.n, name, reason))

    def done(self):
        """Print the plan; the exit code (0 when every test passed)."""
        self._emit("1..%d" % self.n)
        return 1 if self.failed or self.n == 0 else 0


def run_tests(fn):
    """Run fn(tap); an exception becomes a failed test.  Exits the process."""
    tap = TAP()
    try:
        fn(tap)
    except Exception:  # noqa: BLE001 - report whatever went wrong
        tap.ok(False, "test script raised", traceback.format_exc())
    sys.exit(tap.done())


def _start(argv, name, log):
    """Start a server; wait for its READY line; (proc, {key: int})."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=log, close_fds=True)
    line = proc.stdout.readline().decode("utf-8", "replace")
    if not line.startswith("READY "):
        proc.kill()
        proc.wait()
        raise RuntimeError("%s did not start (see %s): %r" % (
            name, log.name, line))
    fields = dict(w.split("=", 1) for w in line.split()[1:])
    return proc, {k: int(v) for k, v in fields.items()}


class Sandbox:
    """Servers + config + token for account "work".  A context manager.

    config_extra: dict of keys to set in the "work" account (a value of None
    removes the key); config_text: raw text appended to the file.
    seed: mint a refresh token and store it (bearmail token import, else
    seed_token_file()).  script: the initial smtpd script.
    """

    def __init__(self, config_extra=None, config_text="", seed=True,
                 script=None, smtps=False, lifetime=3600):
        self.procs = []
        self.last_run = None
        self.last_log = None
        self.dir = os.path.realpath(tempfile.mkdtemp(prefix="bearmail-test-"))
        atexit.register(self.stop)
        try:
            self._setup(config_extra, config_text, seed, script, smtps,
                        lifetime)
        except BaseException:
            self.stop()
            raise

    def _setup(self, config_extra, config_text, seed, script, smtps, lifetime):
        d = self.dir
        self.state = os.path.join(d, "state")
        for sub in ("state", "tokens", "home", "config", "xdgstate", "cache",
                    "run", "queue"):
            os.makedirs(os.path.join(d, sub), mode=0o700)
        (self.ca, self.cert, self.key, self.wrong_cert,
         self.wrong_key) = certs.make_ca_and_cert(os.path.join(d, "certs"))
        self.script_path = os.path.join(d, "smtpd-script.json")
        self.set_script(script or {})
        self.cfg = os.path.join(d, "bearmail.conf")
        self.token_file = os.path.join(d, "tokens", "work.json")
        self.aliases = os.path.join(d, "aliases")
        with open(self.aliases, "w", encoding="ascii") as f:
            f.write("# aliases for the test sandbox\n")
        self.log = os.path.join(d, "bearmail.log")
        self._start_servers(smtps, lifetime)
        self.write_config(config_extra, config_text)
        self.seed_method = self.seed_error = None
        if seed:
            self.seed()

    def _start_servers(self, smtps, lifetime):
        common = ["--cert", self.cert, "--key", self.key, "--state",
                  self.state, "--port", "0", "--watch-stdin"]
        self.idp_log = open(os.path.join(self.dir, "idp.log"), "ab")
        proc, ports = _start([PY, os.path.join(HERE, "idp.py"), *common,
                              "--lifetime", str(lifetime)], "idp.py",
                             self.idp_log)
        self.procs.append(proc)
        self.idp_port = ports["port"]
        self.authority = "https://127.0.0.1:%d" % self.idp_port
        self.smtpd_log = open(os.path.join(self.dir, "smtpd.log"), "ab")
        argv = [PY, os.path.join(HERE, "smtpd.py"), *common,
                "--script", self.script_path]
        if smtps:
            argv += ["--smtps-port", "0"]
        proc, ports = _start(argv, "smtpd.py", self.smtpd_log)
        self.procs.append(proc)
        self.smtp_port = ports["port"]
        self.smtps_port = ports.get("smtps_port")

    # -------------------------------------------------------- config
    def account_keys(self):
        """The "work" account's keys, in order."""
        d = self.dir
        return [("host", "127.0.0.1"), ("port", str(self.smtp_port)),
                ("tls", "starttls"), ("ca_file", self.ca), ("user", USER),
                ("from", USER), ("tenant", TENANT), ("client_id", CLIENT_ID),
                ("authority", self.authority), ("scope", SCOPE),
                ("token_store", "file:" + self.token_file),
                ("queue_dir", os.path.join(d, "queue")),
                ("aliases", self.aliases), ("domain", "host.example"),
                ("log", self.log)]

    def write_config(self, extra=None, text=""):
        """(Re)write the config file (mode 0600)."""
        keys = dict(self.account_keys())
        order = [k for k, _ in self.account_keys()]
        extra = dict(extra or {})
        if "queue" in MUTATE:
            extra["delivery"] = "queue"
        for k, v in extra.items():
            if k not in keys:
                order.append(k)
            keys[k] = v
        lines = ["# written by tests/servers/harness.py", "account work"]
        lines += ["  %s %s" % (k, keys[k]) for k in order
                  if keys[k] is not None]
        lines += ["account default : work", ""]
        fd = os.open(self.cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + text)
        os.chmod(self.cfg, 0o600)

    # -------------------------------------------------------- tokens
    def seed(self, account="work"):
        """Mint a refresh token and store it for the account."""
        minted = self.mint()
        rc, out, err = self.run_bearmail(
            ["token", "import", account],
            json.dumps(minted).encode())
        if rc == 0 and os.path.exists(self.token_file):
            self.seed_method = "bearmail token import"
            return minted
        self.seed_error = "bearmail token import: rc=%s %s" % (
            rc, err.decode("utf-8", "replace").strip()[:300])
        print("# seed: %s; writing the token file directly" % self.seed_error,
              file=sys.stderr)
        self.seed_token_file(minted["refresh_token"], account)
        self.seed_method = "seed_token_file"
        return minted

    def seed_token_file(self, refresh_token, account="work", path=None):
        """Write the file token store's JSON directly (mode 0600)."""
        data = {"account": account, "user": USER, "client_id": CLIENT_ID,
                "tenant": TENANT, "refresh_token": refresh_token,
                "access_token": None, "expires_at": 0, "scope": SCOPE}
        path = path or self.token_file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)

    def token_store(self):
        with open(self.token_file, encoding="utf-8") as f:
            return json.load(f)

    # -------------------------------------------------------- the IdP
    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca)

    def idp_request(self, path, body=None, form=None, method=None):
        """(status, parsed JSON) from the IdP; body is JSON, form a dict."""
        data, headers = None, {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(self.authority + path, data, headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(),
                                        timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode("utf-8", "replace")

    def _control(self, name, body):
        status, out = self.idp_request("/_test/" + name, body)
        if status != 200:
            raise RuntimeError("idp /_test/%s: %s %r" % (name, status, out))
        return out

    def mint(self, user=USER, tenant=TENANT, client_id=CLIENT_ID, scope=SCOPE,
             access=False):
        """A token-endpoint-shaped JSON with a fresh refresh token."""
        return self._control("mint", {"user": user, "tenant": tenant,
                                      "client_id": client_id, "scope": scope,
                                      "access": access})

    def idp_fail(self, count=1, status=503, error="temporarily_unavailable",
                 aadsts=90033, description=None, raw=None, retry_after=None):
        """Make the next count token requests fail that way."""
        return self._control("fail", {
            "count": count, "status": status, "error": error,
            "aadsts": aadsts, "description": description, "raw": raw,
            "retry_after": retry_after})

    def revoke(self, user=USER):
        return self._control("revoke", {"user": user})["revoked"]

    def register_app(self, client_id, secret, tenant=TENANT):
        return self._control("app", {"client_id": client_id,
                                     "tenant": tenant, "secret": secret})

    def idp_lifetime(self, seconds):
        return self._control("config", {"lifetime": seconds})

    def idp_calls(self):
        status, out = self.idp_request("/_test/calls")
        return out

    def token_call(self, form, tenant=TENANT):
        """POST a token request; (status, JSON)."""
        return self.idp_request("/%s/oauth2/v2.0/token" % tenant, form=form)

    # -------------------------------------------------------- SMTP server
    def set_script(self, script):
        """Replace the smtpd script (read at each new connection)."""
        if "drop" in MUTATE:
            script = dict(script, drop_after_data=True)
        tmp = self.script_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(script, f)
        os.replace(tmp, self.script_path)

    def sessions(self, wait=5.0):
        """The recorded sessions, oldest first (the newest snapshot of each).
        Waits up to wait seconds for open sessions to end."""
        deadline = time.monotonic() + wait
        while True:
            found = self._read_sessions()
            if all(s["closed"] for s in found) or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def _read_sessions(self):
        path = os.path.join(self.state, "sessions.jsonl")
        latest = {}
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.endswith("\n"):
                        rec = json.loads(line)
                        latest[rec["id"]] = rec
        except FileNotFoundError:
            pass
        return sorted(latest.values(), key=lambda r: r["started"])

    def messages(self, accepted_only=True):
        """The messages received: each record plus "bytes" (the data)."""
        out = []
        for s in self._read_sessions():
            for m in s["messages"]:
                if accepted_only and not m["accepted"]:
                    continue
                with open(os.path.join(self.state, m["data_file"]), "rb") as f:
                    out.append(dict(m, bytes=f.read(), session=s["id"]))
        return out

    def wait_messages(self, n, timeout=60.0, accepted_only=True):
        """Wait until at least n messages are recorded; return them all.
        The timeout is a hang guard: it returns as soon as they are there."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages(accepted_only)
            if len(msgs) >= n or time.monotonic() > deadline:
                return msgs
            time.sleep(0.02)

    def violations(self):
        return [v for s in self.sessions() for v in s["violations"]]

    # -------------------------------------------------------- delivery checks
    def expect_arrivals(self, t, name, n_before, count, timeout=10.0,
                        err=None):
        """Check that exactly count messages arrived after the first
        n_before (the count of messages() before the send): one failed test
        "NAME: ... arrived" with diagnostics otherwise.  Returns count
        records, oldest first, each with "arrived" True, or no_message()
        for those that did not come, so the caller's checks run and fail.
        err: the sender's stderr, shown when nothing arrived."""
        want = n_before + count
        msgs = self.wait_messages(want, timeout)
        got = msgs[n_before:]
        what = "the message" if count == 1 else "%d messages" % count
        if len(msgs) == want:
            t.ok(True, "%s: %s arrived" % (name, what))
        else:
            t.ok(False, "%s: %s arrived" % (name, what),
                 "%d new message(s) recorded by the server, expected %d\n%s"
                 % (len(got), count, self.arrival_report(err)))
        found = [dict(m, arrived=True) for m in got[:count]]
        return found + [no_message() for _ in range(count - len(found))]

    def expect_arrival(self, t, name, n_before, timeout=10.0, err=None):
        """expect_arrivals() for one message: its record (or no_message())."""
        return self.expect_arrivals(t, name, n_before, 1, timeout, err)[0]

    def send_and_expect(self, t, name, args, stdin_bytes=b"", rcpts=None,
                        sender=None, env=None, timeout=10.0):
        """Run sendmail and check that the message was delivered: exit 0,
        exactly one new message at the server, and (when given) its
        envelope recipients (any order) and sender.  Returns the record as
        expect_arrival() does; (rc, stdout, stderr) is in self.last_run."""
        n = len(self.messages())
        rc, out, err = self.run_sendmail(args, stdin_bytes, env)
        self.last_run = (rc, out, err)
        t.is_(rc, 0, "%s: exit 0" % name)
        m = self.expect_arrival(t, name, n, timeout if rc == 0 else 0, err)
        if rcpts is not None:
            t.is_(sorted(m["rcpt_tos"]), sorted(rcpts),
                  "%s: envelope recipients" % name)
        if sender is not None:
            t.is_(m["mail_from"], sender, "%s: envelope sender" % name)
        return m

    def expect_no_arrival(self, t, name, n_before):
        """Check that no message arrived after the first n_before (for a
        sender that has exited: nothing it did can arrive later)."""
        got = self.messages()[n_before:]
        return t.ok(not got, "%s: nothing arrived" % name,
                    "arrived: %r" % [(m["mail_from"], m["rcpt_tos"])
                                     for m in got])

    def expect_queued(self, t, name, text):
        """Check that the "queued as ID" in text (sendmail's stderr, send-
        test's output) names a message in `bearmail queue list`; the ID."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        m = re.search(r"queued as ([0-9A-Za-z]+)", text or "")
        listing = self.queue_listing()
        qid = m.group(1) if m else None
        t.ok(qid is not None and re.search(r"(?m)^%s\b" % qid, listing),
             "%s: queued (%s)" % (name, qid or "no \"queued as ID\""),
             "output: %r\nqueue:\n%s" % (text, listing))
        return qid

    def expect_deferred(self, t, name, args, stdin_bytes, reason, env=None):
        """Run sendmail for a message that must wait: exit 0, nothing
        arrived, one new log line "status=deferred (... queued as ID)"
        that matches reason (a regex: why it waits, so that a message
        queued for another reason does not pass), and that ID in the
        queue.  Returns the ID (None when it was not queued); (rc, stdout,
        stderr) is in self.last_run, the new log text in self.last_log."""
        n, mark = len(self.messages()), self.log_mark()
        rc, out, err = self.run_sendmail(args, stdin_bytes, env)
        self.last_run = (rc, out, err)
        t.is_(rc, 0, "%s: exit 0 (queued)" % name)
        self.expect_no_arrival(t, name, n)
        self.last_log = new = self.log_since(mark)
        lines = [l for l in new.splitlines()
                 if re.search(r"status=deferred \(.*queued as ", l) and
                 re.search(reason, l)]
        t.ok(len(lines) == 1, "%s: logged as deferred (%s)" % (name, reason),
             "new log lines:\n%s\nsender's stderr: %r" % (
                 new.rstrip() or "(none)", err))
        return self.expect_queued(t, name, lines[0] if lines else "")

    def log_mark(self):
        """Where the bearmail log ends now: log_since() reads from there."""
        return len(self.log_text())

    def log_since(self, mark):
        """What the bearmail log gained after log_mark() returned mark: the
        lines of the case at hand, not an earlier one's."""
        return self.log_text()[mark:]

    def session_of(self, m):
        """The session a message came in (no_session() when it did not)."""
        for s in self.sessions():
            if m.get("session") is not None and s["id"] == m["session"]:
                return s
        return no_session()

    def queue_listing(self):
        """`bearmail queue list`: its stdout, or why it failed."""
        rc, out, err = self.run_bearmail(["queue", "list"])
        text = out.decode("utf-8", "replace")
        if rc:
            text += "(bearmail queue list: exit %d: %s)" % (
                rc, err.decode("utf-8", "replace").strip())
        return text

    def queue_ids(self):
        """The IDs in `bearmail queue list`, in its order."""
        return re.findall(r"(?m)^([0-9A-Za-z]{8,})[ *!]", self.queue_listing())

    def arrival_report(self, err=None):
        """Why a message may not have arrived: the sender's stderr, the
        queue, the last session and the tails of the logs."""
        parts = []
        if MUTATE:
            parts.append("mutation check on: BEARMAIL_TEST_MUTATE=%s"
                         % ",".join(sorted(MUTATE)))
        if err is not None:
            if isinstance(err, bytes):
                err = err.decode("utf-8", "replace")
            parts.append("sender's stderr:\n" + (err.rstrip() or "(empty)"))
        parts.append("queue:\n" + self.queue_listing().rstrip())
        found = self._read_sessions()
        parts.append("server: %d session(s)" % len(found))
        if found:
            s = found[-1]
            parts.append("last session: auth %s, failures %r, violations %r"
                         % (s["auth_user"], s["auth_failures"],
                            s["violations"]))
            parts.append("  commands: " + "".join(s["commands"][-12:])
                         .replace("\r\n", " | ").strip())
            for m in s["messages"]:
                parts.append("  message to %r: reply %r, accepted %r"
                             % (m["rcpt_tos"], m["reply"], m["accepted"]))
        with open(self.smtpd_log.name, encoding="utf-8",
                  errors="replace") as f:
            tail = f.read().splitlines()[-10:]
        parts.append("smtpd.log (tail):\n" + ("\n".join(tail) or "(empty)"))
        tail = self.log_text().splitlines()[-5:]
        parts.append("bearmail.log (tail):\n" + ("\n".join(tail) or
                                                  "(empty)"))
        return "\n".join(parts)

    # -------------------------------------------------------- binaries
    def env(self, extra=None):
        """The environment the binaries run in: everything points inside."""
        d = self.dir
        env = {k: v for k, v in os.environ.items()
               if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
                            "DBUS_SESSION_BUS_ADDRESS", "BEARMAIL_CONFIG",
                            "MAILRC", "NAME", "EMAIL")}
        env.update({
            "HOME": os.path.join(d, "home"),
            "XDG_CONFIG_HOME": os.path.join(d, "config"),
            "XDG_STATE_HOME": os.path.join(d, "xdgstate"),
            "XDG_CACHE_HOME": os.path.join(d, "cache"),
            "XDG_RUNTIME_DIR": os.path.join(d, "run"),
            "BEARMAIL_CONFIG": self.cfg,
            "BEARMAIL_SUBMIT": os.path.join(BUILDDIR, "bearmail-submit"),
            "BEARMAIL_BIN": os.path.join(BUILDDIR, "bearmail"),
            "LC_ALL": "C", "TZ": "UTC"})
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def run(self, program, args, stdin_bytes=b"", env=None, timeout=60):
        """Run a build-tree program; (rc, stdout bytes, stderr bytes).
        $BEARMAIL_TEST_WRAPPER (e.g. "valgrind -q --error-exitcode=99")
        is put in front of the command line."""
        path = program if os.path.isabs(program) else os.path.join(BUILDDIR,
                                                                   program)
        if not os.access(path, os.X_OK):
            return 127, b"", ("%s: not built" % path).encode()
        argv = shlex.split(os.environ.get("BEARMAIL_TEST_WRAPPER", "")) + \
            [path, *args]
        p = subprocess.run(argv, input=stdin_bytes, capture_output=True,
                           env=self.env(env), cwd=self.dir, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def run_sendmail(self, args, stdin_bytes=b"", env=None, timeout=60):
        return self.run("sendmail", args, stdin_bytes, env, timeout)

    def run_bearmail(self, args, stdin_bytes=b"", env=None, timeout=60):
        return self.run("bearmail", args, stdin_bytes, env, timeout)

    def log_text(self):
        if os.path.lexists(self.log) and not os.path.isfile(self.log):
            return ""               # a FIFO or a directory a test put there
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -------------------------------------------------------- teardown
    def stop(self):
        """Kill the servers and remove the directory (idempotent)."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for stream in (p.stdin, p.stdout):
                if stream:
                    stream.close()
        self.procs = []
        for name in ("idp_log", "smtpd_log"):
            f = getattr(self, name, None)
            if f:
                f.close()
        if self.dir and os.path.isdir(self.dir):
            if os.environ.get("BEARMAIL_KEEP"):
                print("# sandbox kept in %s" % self.dir, file=sys.stderr)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
