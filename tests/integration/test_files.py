"""The files bearmail reads or appends to, each replaced by what a careless
or hostile hand can put there: a FIFO, a directory, a symbolic link to
another secret.  With the real sendmail: it never hangs (every run has a
subprocess timeout as the hang guard), it prints one line that names the
file and the fix, and no message is lost:

* a problem a person fixes later (the token file and its lock, the client
  secret or certificate of an app-only account) queues the message: exit
  0, the line ends "(queued as ID)", `bearmail queue list` shows it with
  the file named, and once the file is right again it is delivered;
* a log file that cannot be written costs nothing: the message is
  delivered, one line says syslog takes over, and a linked secret is left
  untouched;
* the configuration itself (config file, aliases file) is refused with
  exit 78 before anything is sent or queued, and no secret a link points
  at is ever printed.

A message said to be queued is found in `bearmail queue list` by its ID,
a delivery at the server.  docs/behaviour.md ("Files bearmail reads") says
the same to users."""
import collections
import contextlib
import os
import re
import shutil
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, run_tests, TENANT  # noqa: E402

RCPT = "bob@example.com"
SECRET = "Zq8~other-secret.value_" + uuid.uuid4().hex
APP_ID = "99999999-8888-7777-6666-555555555555"
APP_SECRET = "Zq8~app-secret.value_" + uuid.uuid4().hex
KINDS = ("fifo", "dir", "link")
WHAT = {"fifo": "a FIFO (named pipe)", "dir": "a directory",
        "link": "a symbolic link", "hardlink": "a hard link"}


def write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


@contextlib.contextmanager
def replaced(path, kind, target):
    """path replaced by a FIFO, a directory or a link to target; the file
    (if there was one) put back afterwards, byte for byte."""
    saved = None
    if os.path.isfile(path) and not os.path.islink(path):
        with open(path, "rb") as f:
            saved = (f.read(), os.stat(path).st_mode & 0o7777)
    remove(path)
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "dir":
        os.mkdir(path, 0o700)
    elif kind == "hardlink":
        os.link(target, path)
    else:
        os.symlink(target, path)
    try:
        yield
    finally:
        remove(path)
        if saved is not None:
            write_private(path, saved[0])
            os.chmod(path, saved[1])


Sent = collections.namedtuple("Sent", "rc lines subject n")


def send(t, sb, name, rcpt=RCPT):
    """sendmail with a message whose Subject is unique: Sent(rc, stderr
    lines, subject, n: the server's message count before); rc None when it
    hung, so that the checks after it fail too."""
    subject = "files %s %s" % (name, uuid.uuid4().hex[:8])
    msg = ("Subject: %s\n\nbody of %s\n" % (subject, subject)).encode()
    n = len(sb.messages())
    try:
        rc, _, err = sb.run_sendmail(["-i", rcpt], msg, timeout=60)
    except subprocess.TimeoutExpired:
        t.ok(False, "%s: sendmail returns (it hung for 60 s)" % name)
        return Sent(None, [], subject, n)
    t.ok(True, "%s: sendmail returns" % name)
    return Sent(rc, err.decode("utf-8", "replace").splitlines(), subject, n)


def expect_delivered(t, sb, name, res):
    """The message res sent arrived, and no other: the record."""
    m = sb.expect_arrival(t, name, res.n, err="\n".join(res.lines))
    t.ok(("\r\nSubject: %s\r\n" % res.subject).encode() in
         b"\r\n" + m["bytes"] and m["rcpt_tos"] == [RCPT],
         "%s: the message was delivered, bytes and all" % name)
    return m


def one_line(t, name, lines, pattern):
    t.ok(len(lines) == 1 and re.search(pattern, lines[0]) is not None,
         "%s: one line naming the file and the fix" % name,
         diag="stderr: %r\nwant: %s" % (lines, pattern))


def queue_listing(sb):
    rc, out, _ = sb.run_bearmail(["queue", "list"], timeout=60)
    return out.decode("utf-8", "replace")


def check_queued(t, sb, name, res, path, fix):
    """Exit 0, nothing sent, the one line with "(queued as ID)", that ID in
    the listing with why it waits; returns the subject (delivered later)."""
    rc, lines, subject = res.rc, res.lines, res.subject
    t.is_(rc, 0, "%s: exit 0, the message is queued" % name)
    sb.expect_no_arrival(t, name, res.n)
    one_line(t, name, lines, re.escape(path) + ".*" + fix +
             r".*\(queued as [0-9A-F]+\)$")
    qid = sb.expect_queued(t, name, lines[0] if lines else "")
    listing = queue_listing(sb)
    block = (listing.split(qid)[1].split("\n\n")[0]
             if qid and qid in listing else "")
    t.ok(path in block and RCPT in block, "%s: the listing says which file "
         "to fix, and for whom" % name, diag=block)
    return subject


def check_refused(t, sb, name, res, pattern, before):
    """Exit 78, one line, nothing sent."""
    t.is_(res.rc, 78, "%s: exit 78 (configuration)" % name)
    one_line(t, name, res.lines, pattern)
    t.ok(SECRET not in "\n".join(res.lines), "%s: no secret printed" % name)
    sb.expect_no_arrival(t, "%s: nothing sent" % name, before)


def check_not_queued(t, sb, name):
    """The caller was told 78: the message is not also in the queue (read
    with the configuration put right)."""
    t.ok("Mail queue is empty" in queue_listing(sb),
         "%s: nothing queued behind the caller's back" % name)


def flush_and_check(t, sb, name, subjects):
    """With the files right again, every queued message is delivered: those
    and no others, each once."""
    n = len(sb.messages())
    rc, _, err = sb.run_bearmail(["queue", "flush", "--force"], timeout=120)
    t.is_(rc, 0, "%s: queue flush once the files are right (%s)" % (
        name, err.decode("utf-8", "replace").strip()[:200]))
    got = sb.expect_arrivals(t, "%s: the flush" % name, n, len(subjects),
                             err=err)
    found = [re.search(rb"(?m)^Subject: (.*?)\r$", m["bytes"]) for m in got]
    found = [f.group(1).decode() if f else None for f in found]
    for s in subjects:
        t.is_(found.count(s), 1,
              "%s: the message queued as '%s' arrived, once" % (name, s))
    t.ok("Mail queue is empty" in queue_listing(sb),
         "%s: the queue is empty again" % name)


def other_secret(sb):
    path = os.path.join(sb.dir, "other.secret")
    write_private(path, (SECRET + "\n").encode())
    return path


def stale_token(sb):
    """A refresh token without an access token: the next send refreshes
    (and so takes the lock, reads client_secret_file)."""
    sb.seed_token_file(sb.mint()["refresh_token"])


# ------------------------------------------------------------ the tests

def test_token_file(t, sb):
    other = other_secret(sb)
    subjects = []
    for kind in KINDS:
        name = "token file is %s" % WHAT[kind]
        with replaced(sb.token_file, kind, other):
            res = send(t, sb, name)
            # a link: refused in the words test_tokens.py checks
            subjects.append(check_queued(
                t, sb, name, res, sb.token_file,
                "symbolic link: refusing it" if kind == "link" else
                "remove it and log in again"))
            t.ok(SECRET not in "\n".join(res.lines),
                 "%s: the linked secret is not printed" % name)
    with open(other, encoding="ascii") as f:
        t.is_(f.read(), SECRET + "\n", "token file: the linked secret is "
              "left as it was")
    flush_and_check(t, sb, "token file", subjects)


def test_lock_file(t, sb):
    lock = sb.token_file + ".lock"
    other = other_secret(sb)
    subjects = []
    for kind in KINDS:
        name = "lock file is %s" % WHAT[kind]
        stale_token(sb)
        with replaced(lock, kind, other):
            subjects.append(check_queued(t, sb, name, send(t, sb, name),
                                         lock, "remove it"))
    flush_and_check(t, sb, "lock file", subjects)


def test_log_file(t, sb):
    other = other_secret(sb)
    for kind in KINDS + ("hardlink",):
        name = "log file is %s" % WHAT[kind]
        with replaced(sb.log, kind, other):
            res = send(t, sb, name)
            rc, lines = res.rc, res.lines
            t.is_(rc, 0, "%s: exit 0" % name)
            # several log lines were due: the refusal is said once
            why = ("it has 2 hard links" if kind == "hardlink" else
                   "it is " + re.escape(WHAT[kind]) + ", not a regular file")
            one_line(t, name, lines, "cannot log to " + re.escape(sb.log) +
                     ": " + why + ": logging to syslog instead; set log to "
                     "a regular file, syslog or stderr$")
            expect_delivered(t, sb, name, res)
    with open(other, encoding="ascii") as f:
        t.is_(f.read(), SECRET + "\n", "log file: nothing was appended to "
              "the secret a link pointed at")


def test_aliases_file(t, sb):
    other = other_secret(sb)
    for kind in KINDS:
        name = "aliases file is %s" % WHAT[kind]
        before = len(sb.messages())
        with replaced(sb.aliases, kind, other):
            res = send(t, sb, name, rcpt="root")
            if kind == "link":
                # followed (the administrator may link it): the secret it
                # points at is read as aliases and refused as such
                pattern = re.escape(sb.aliases) + r":1: expected"
            else:
                pattern = (re.escape(sb.aliases) + " is " +
                           re.escape(WHAT[kind]) + ", not a regular file: "
                           "put the file itself there or correct the path$")
            check_refused(t, sb, name, res, pattern, before)
        check_not_queued(t, sb, name)


def test_config_file(t, sb):
    other = other_secret(sb)
    for kind in KINDS:
        name = "config file is %s" % WHAT[kind]
        before = len(sb.messages())
        with replaced(sb.cfg, kind, other):
            res = send(t, sb, name)
            if kind == "link":
                # followed (a config may be linked from a dotfiles tree):
                # the secret is not quoted back as an "unknown key"
                pattern = (re.escape(sb.cfg) + r":1: unknown key \(not "
                           r"shown.*is " + re.escape(sb.cfg) + " a bearmail "
                           "configuration file\\?$")
            else:
                pattern = (re.escape(sb.cfg) + " is " +
                           re.escape(WHAT[kind]) + ", not a regular file: "
                           "put the file itself there or correct the path$")
            check_refused(t, sb, name, res, pattern, before)
        check_not_queued(t, sb, name)


def test_state_file(t, sb):
    state = os.path.join(sb.dir, "xdgstate", "bearmail", "status",
                         "work.json")
    os.makedirs(os.path.dirname(state), mode=0o700, exist_ok=True)
    for kind in ("fifo", "dir"):
        name = "state file is %s" % WHAT[kind]
        with replaced(state, kind, None):
            res = send(t, sb, name)
            t.is_(res.rc, 0, "%s: exit 0 (the state is advisory)" % name)
            t.is_(res.lines, [], "%s: without a word" % name)
            expect_delivered(t, sb, name, res)


def app_account(sb, **keys):
    """The "work" account as an app-only account with these keys."""
    extra = {"oauth_flow": "client_credentials", "client_id": APP_ID,
             "scope": None}
    extra.update(keys)
    sb.write_config(extra)
    remove(sb.token_file)


def test_client_secret_file(t, sb, d):
    """An app-only account: its secret file replaced; no secret (not the
    one a link points at either) reaches the identity platform."""
    secret_file = os.path.join(d, "client.secret")
    write_private(secret_file, (APP_SECRET + "\n").encode())
    app_account(sb, client_secret_file=secret_file)
    other = other_secret(sb)
    subjects = []
    for kind in KINDS:
        name = "client_secret_file is %s" % WHAT[kind]
        remove(sb.token_file)
        calls = len(sb.idp_calls())
        with replaced(secret_file, kind, other):
            fix = (r"which is not followed for this file: name the file "
                   "itself" if kind == "link" else
                   "put the file itself there or correct the path")
            res = send(t, sb, name)
            subjects.append(check_queued(t, sb, name, res, secret_file,
                                         fix))
            t.ok(res.lines and res.lines[0].startswith(
                "sendmail: client_secret_file " + secret_file),
                "%s: the line names the key" % name)
            t.is_(len(sb.idp_calls()), calls, "%s: no token request (no "
                  "secret sent anywhere)" % name)
    remove(sb.token_file)
    flush_and_check(t, sb, "client_secret_file", subjects)


def test_client_certificate(t, sb, d):
    """The certificate is public: a FIFO or a directory is refused and the
    message queued, a link (certificates often are) is followed."""
    cert, key = os.path.join(d, "app.crt"), os.path.join(d, "app.key")
    real = os.path.join(d, "real.crt")
    shutil.copy(cert, real)
    app_account(sb, client_certificate=cert, client_key=key)
    subjects = []
    for kind in ("fifo", "dir"):
        name = "client_certificate is %s" % WHAT[kind]
        remove(sb.token_file)
        calls = len(sb.idp_calls())
        with replaced(cert, kind, None):
            res = send(t, sb, name)
            subjects.append(check_queued(
                t, sb, name, res, cert, " is " + re.escape(WHAT[kind]) +
                ", not a regular file: put the file itself there"))
            t.ok(res.lines and res.lines[0].startswith(
                "sendmail: client_certificate " + cert),
                "%s: the line names the key" % name)
            t.is_(len(sb.idp_calls()), calls, "%s: no token request" % name)
    remove(sb.token_file)
    flush_and_check(t, sb, "client_certificate", subjects)
    name = "client_certificate is a symbolic link"
    remove(sb.token_file)
    with replaced(cert, "link", real):
        res = send(t, sb, name)
        t.ok(res.rc == 0 and not res.lines, "%s: followed, exit 0 without "
             "a word" % name, diag=res)
        expect_delivered(t, sb, name, res)


def test_app_only(t, sb):
    d = os.path.join(sb.dir, "app")
    os.makedirs(d, mode=0o700)
    cert, key = os.path.join(d, "app.crt"), os.path.join(d, "app.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=bearmail test_files"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    with open(cert, encoding="ascii") as f:
        sb._control("app", {"client_id": APP_ID, "tenant": TENANT,
                            "secret": APP_SECRET, "certificate": f.read()})
    test_client_secret_file(t, sb, d)
    test_client_certificate(t, sb, d)
    sb.write_config()
    stale_token(sb)


def test_delegated_secret(t, sb):
    """A delegated account's client_secret_file, read when refreshing."""
    secret_file = os.path.join(sb.dir, "delegated.secret")
    sb.write_config({"client_secret_file": secret_file})
    other = other_secret(sb)
    for kind in KINDS:
        name = "delegated client_secret_file is %s" % WHAT[kind]
        stale_token(sb)
        calls = len(sb.idp_calls())
        with replaced(secret_file, kind, other):
            res = send(t, sb, name)
            check_queued(t, sb, name, res, secret_file,
                         " is a symbolic link, which is not followed"
                         if kind == "link" else " is " +
                         re.escape(WHAT[kind]) + ", not a regular file")
            t.is_(len(sb.idp_calls()), calls, "%s: no token request" % name)
        # a public client may not send a secret at all (AADSTS700025):
        # these stay undeliverable, so the test drops them itself
        for qid in sb.queue_ids():
            sb.run_bearmail(["queue", "drop", qid], timeout=60)
    sb.write_config()
    stale_token(sb)


def test_ca_file(t, sb):
    """ca_file is read by bearmail, not by the TLS library that would
    block on a FIFO: for the SMTP server (a valid token cached) and for the
    identity platform (a refresh due)."""
    real = os.path.join(sb.dir, "ca.real")
    with open(sb.ca, "rb") as f:
        write_private(real, f.read())
    subjects = []
    for path, refresh in (("SMTP", False), ("identity platform", True)):
        for kind in ("fifo", "dir"):
            name = "ca_file (%s) is %s" % (path, WHAT[kind])
            if refresh:
                stale_token(sb)
            else:
                # a delivery first: the token it caches keeps the identity
                # platform out of it
                expect_delivered(t, sb, name + ", warm-up",
                                 send(t, sb, name + ", warm-up"))
            with replaced(sb.ca, kind, real):
                res = send(t, sb, name)
                subjects.append(check_queued(
                    t, sb, name, res, sb.ca, " is " +
                    re.escape(WHAT[kind]) + ", not a regular file"))
                t.ok(res.lines and res.lines[0].startswith(
                    "sendmail: ca_file: "), "%s: the line names the key" %
                    name)
    flush_and_check(t, sb, "ca_file", subjects)


def tests(t):
    with Sandbox() as sb:
        test_ca_file(t, sb)
        test_token_file(t, sb)
        test_lock_file(t, sb)
        test_log_file(t, sb)
        test_aliases_file(t, sb)
        test_config_file(t, sb)
        test_state_file(t, sb)
        test_app_only(t, sb)
        test_delegated_secret(t, sb)


run_tests(tests)
