"""The faults the durable queue must survive (issue 4), each against the
real binaries and the test servers: the server down for 30 messages, one
recipient of three deferred, a 550 with and without -oem, the connection
dropped after the final dot, the flush killed with SIGKILL mid-message, two
flushes at once, a queue directory that cannot be written or a full disk,
the identity platform failing, and a revoked refresh token.  The promise
checked throughout: exit 0 means delivered or durably queued, nothing is
lost, and nobody gets a message twice except after a dropped connection
(at-least-once, docs/queue.md).  Each message that must wait is found in
the queue by its own ID, each delivery at the server.  Also: the systemd
user units parse."""
import collections
import glob
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import harness  # noqa: E402
from harness import Sandbox, run_tests, USER  # noqa: E402

BEARMAIL = os.path.join(harness.BUILDDIR, "bearmail")
SENDMAIL = os.path.join(harness.BUILDDIR, "sendmail")
# the background flush (-odb, the opportunistic one) runs this binary
ENV = {"BEARMAIL_BIN": BEARMAIL}
LISTING_ID = re.compile(r"^([0-9A-Za-z]+)([*!]?)\s+\d+\s+\w{3} \w{3} +\d+ "
                        r"\d\d:\d\d:\d\d\s+\S*", re.M)


def msg(tag, size=0):
    body = b"hello\r\n" if not size else (b"x" * 70 + b"\r\n") * (size // 72)
    return (b"Subject: qf-%s\r\nMessage-ID: <qf-%s@host.example>\r\n\r\n"
            % (tag.encode(), tag.encode())) + body


def subject(m):
    head = m["bytes"].split(b"\r\n\r\n", 1)[0]   # not a bounce's copy
    found = re.search(rb"(?m)^Subject: (qf-[^\r\n]*)", head)
    return found.group(1).decode() if found else None


def delivered(sb, prefix=""):
    """How many times each test message (by subject) was accepted."""
    return collections.Counter(s for s in map(subject, sb.messages())
                               if s and s.startswith("qf-" + prefix))


def per_rcpt(sb, tag):
    """How many times each recipient accepted the message tagged tag."""
    c = collections.Counter()
    for m in sb.messages():
        if subject(m) == "qf-" + tag:
            c.update(a.lower() for a in m["rcpt_tos"])
    return c


def envelopes(sb):
    """The envelope files in the queue (new, deferred, hold), any depth."""
    found = []
    for state in ("new", "deferred", "hold"):
        found += glob.glob(os.path.join(sb.dir, "queue", "**", state,
                                        "*.env"), recursive=True)
    return sorted(found)


def reset_queue(sb):
    """Empty the queue so that each fault starts from nothing (a failure
    in one does not cascade into the next)."""
    qdir = os.path.join(sb.dir, "queue")
    for name in os.listdir(qdir):
        path = os.path.join(qdir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def queued(sb):
    return len(envelopes(sb))


def listing(sb):
    rc, out, err = sb.run_bearmail(["queue", "list"], env=ENV)
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def listed_ids(text):
    return [m.group(1) for m in LISTING_ID.finditer(text)]


def flush(sb, *extra):
    rc, out, err = sb.run_bearmail(["queue", "flush", "--force", *extra],
                                   env=ENV, timeout=120)
    return rc, (out + err).decode("utf-8", "replace")


def closed_port():
    """A loopback port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def send(sb, args, data, env=None):
    e = dict(ENV)
    e.update(env or {})
    rc, out, err = sb.run_sendmail(["-i", *args], data, env=e)
    return rc, err.decode("utf-8", "replace")


def deferred_ids(log, reason):
    """The queue IDs of the "status=deferred" lines of log whose reason
    matches reason, in order."""
    return re.findall(r"(?m)^.*status=deferred \((?=.*%s).*queued as "
                      r"(\w+)\)$" % reason, log)


def expect_queued_odq(t, sb, name, data):
    """sendmail -odq: exit 0, nothing sent, the ID of its log line in the
    listing; the ID."""
    return sb.expect_deferred(t, name, ["-i", "-odq", "bob@example.com"],
                              data, r"queued by request \(-odq\)", env=ENV)


def expect_tagged(t, sb, name, n_before, tag, rcpts=("bob@example.com",)):
    """Exactly one message arrived after n_before, the one tagged tag, to
    rcpts."""
    m = sb.expect_arrival(t, name, n_before)
    t.is_((subject(m), sorted(m["rcpt_tos"])), ("qf-" + tag, sorted(rcpts)),
          "%s: it is qf-%s, to %s" % (name, tag, ", ".join(rcpts)))
    return m


def no_secrets(t, sb, where):
    text = sb.log_text()
    try:
        store = sb.token_store()
    except (OSError, ValueError):
        store = {}
    leaked = [k for k in ("access_token", "refresh_token")
              if store.get(k) and store[k] in text]
    t.ok(not leaked and "eyJ" not in text, "%s: no token in the log" % where,
         "leaked: %r" % leaked)


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ---------------------------------------------------------------- faults
def server_down_30(t, sb):
    """Server down for 30 messages; back; one flush delivers each once."""
    # rate 0: the rate limit is test_queue_cli.py's; here a slow machine
    # (valgrind) must not turn retries during the 30 sends into a limit
    live = {"max_connections": "2", "rate": "0"}
    sb.write_config(dict(live, port=str(closed_port())))
    rcs, errs, mark = [], [], sb.log_mark()
    for i in range(30):
        rc, err = send(sb, ["bob@example.com"], msg("down-%02d" % i))
        rcs.append(rc)
        errs.append(err)
    t.ok(all(rc == 0 for rc in rcs), "server down: all 30 sendmail calls "
         "exit 0", "exit codes %r; first stderr: %r" % (rcs, errs[0]))
    t.is_(queued(sb), 30, "server down: 30 messages in the queue")
    ids = deferred_ids(sb.log_since(mark), r"connect: Connection refused")
    t.is_(len(ids), 30, "server down: 30 deferrals logged, connection "
          "refused")
    rc, text, err = listing(sb)
    t.is_(sorted(listed_ids(text)), sorted(ids), "server down: `bearmail "
          "queue list` shows those 30 messages")
    t.like(text, r"\(127\.0\.0\.1:\d+: connect: Connection refused\)",
           "server down: the listing says why (connection refused)")
    t.like(text, r"(?m)^\s+bob@example\.com$", "the listing names the "
           "pending recipient")
    t.like(text, r"-- \d+ Kbytes in 30 Requests\.", "listing summary line")

    sb.write_config(live)              # the server is back
    before, n = len(sb.sessions()), len(sb.messages())
    rc, out = flush(sb)
    t.is_(rc, 0, "server back: `bearmail queue flush` exits 0")
    sb.expect_arrivals(t, "server back", n, 30, err=out)
    got = delivered(sb, "down-")
    want = collections.Counter({"qf-down-%02d" % i: 1 for i in range(30)})
    t.is_(dict(got), dict(want), "server back: each of the 30 delivered "
          "exactly once")
    new = sb.sessions()[before:]
    t.ok(1 <= len(new) <= 2, "one flush: at most max_connections (2) "
         "connections (%d)" % len(new))
    t.is_(queued(sb), 0, "server back: the queue is empty")
    t.is_(listing(sb)[1].strip(), "Mail queue is empty",
          "empty queue listing")
    rc, out = flush(sb)
    t.ok(rc == 0 and out == "", "a flush with nothing to do: exit 0, quiet",
         "rc %d, output %r" % (rc, out))


def one_of_three_deferred(t, sb):
    sb.set_script({"rcpt": {"carol@example.com":
                            "451 4.4.0 Mailbox busy, try again later"}})
    n, mark = len(sb.messages()), sb.log_mark()
    rc, err = send(sb, ["bob@example.com", "carol@example.com",
                        "dave@example.com"], msg("451"))
    t.is_(rc, 0, "451 for one recipient of three: exit 0")
    expect_tagged(t, sb, "451: the two others delivered now", n, "451",
                  ["bob@example.com", "dave@example.com"])
    t.is_(queued(sb), 1, "451: the message is queued")
    ids = deferred_ids(sb.log_since(mark), r"recipient carol@example\.com "
                       r"refused \(451 4\.4\.0")
    sb.expect_queued(t, "451: carol's deferral",
                     "queued as %s" % ids[0] if len(ids) == 1 else "")
    text = listing(sb)[1]
    t.ok(re.search(r"(?m)^\s+carol@example\.com$", text) and
         not re.search(r"(?m)^\s+(bob|dave)@example\.com$", text),
         "451: only the deferred recipient is pending", text)
    t.like(text, r"451 4\.4\.0", "451: the listing gives the server's words")
    sb.set_script({})
    n = len(sb.messages())
    rc, out = flush(sb)
    t.is_(rc, 0, "451: the next flush exits 0")
    expect_tagged(t, sb, "451: the next flush", n, "451",
                  ["carol@example.com"])
    t.is_(dict(per_rcpt(sb, "451")), {"bob@example.com": 1,
                                      "carol@example.com": 1,
                                      "dave@example.com": 1},
          "451: carol delivered on the next flush, nobody twice")
    t.is_(queued(sb), 0, "451: the queue is empty")


def bounce_on_550(t, sb):
    sb.set_script({"rcpt": {"nobody@example.com": "550 5.1.1 User unknown"}})
    before = len(sb.messages())
    rc, err = send(sb, ["bob@example.com", "nobody@example.com"],
                   msg("550-plain"))
    t.is_(rc, 67, "550 without -oem: exit 67")
    t.like(err, r"nobody@example\.com.*550 5\.1\.1", "550: the server's "
           "words on stderr")
    expect_tagged(t, sb, "550 without -oem: bob", before, "550-plain")
    t.is_(queued(sb), 0, "550 without -oem: nothing queued")
    rc, out = flush(sb)
    sb.expect_no_arrival(t, "550 without -oem: no bounce", before + 1)

    # with -oem the refusal is mailed: exit 0 once the bounce is queued
    # (67 only when there is no sender to bounce to); the submitter then
    # starts a queue run that sends it, after bob's copy
    before = len(sb.messages())
    rc, err = send(sb, ["-oem", "bob@example.com", "nobody@example.com"],
                   msg("550-oem"))
    t.is_(rc, 0, "550 with -oem: exit 0, the refusal mailed")
    got = sb.expect_arrivals(t, "550 with -oem", before, 2, timeout=60,
                             err=err)
    t.is_((subject(got[0]), got[0]["rcpt_tos"]),
          ("qf-550-oem", ["bob@example.com"]),
          "550 with -oem: bob got it at once")
    b = got[1]
    t.is_((b["mail_from"], b["rcpt_tos"]), (USER, [USER]),
          "550 with -oem: a bounce reached the sender, through the account")
    data = b["bytes"]
    t.ok(b"Content-Type: multipart/report; report-type=delivery-status"
         in data, "the bounce is a delivery-status report")
    t.ok(b"nobody@example.com" in data and b"5.1.1" in data and
         b"qf-550-oem" in data, "the bounce names the recipient, the status "
         "and carries the original's headers")
    t.ok(b"auto-submitted: auto-replied" in data.lower(),
         "the bounce is marked Auto-Submitted: auto-replied")
    t.is_(dict(per_rcpt(sb, "550-oem")), {"bob@example.com": 1},
          "550 with -oem: the good recipient got it once")
    # the background run removes the bounce once it is sent: a hang guard
    wait_for(lambda: queued(sb) == 0, 60)
    t.is_(queued(sb), 0, "550 with -oem: the queue is empty afterwards")
    sb.set_script({})


def dropped_after_dot(t, sb):
    sb.set_script({"drop_after_data": True})
    seen = len(sb.messages(accepted_only=False))
    sb.expect_deferred(t, "dropped after the final dot", ["-i",
                       "bob@example.com"], msg("drop"),
                       r"connection closed by server", env=ENV)
    t.is_([(subject(m), m["reply"]) for m in
           sb.messages(accepted_only=False)[seen:]], [("qf-drop", None)],
          "dropped after the dot: the server had the data, gave no reply")
    t.is_(queued(sb), 1, "dropped after the dot: the message stays "
          "queued")
    sb.set_script({})
    n = len(sb.messages())
    rc, out = flush(sb)
    t.is_(rc, 0, "dropped after the dot: the retry flush exits 0")
    expect_tagged(t, sb, "dropped after the dot: the retry", n, "drop")
    copies = [m for m in sb.messages(accepted_only=False)
              if subject(m) == "qf-drop"]
    t.ok(len(copies) == 2 and copies[-1]["reply"] is not None and
         copies[-1]["accepted"], "dropped after the dot: retried and "
         "acknowledged (at-least-once: the server saw it twice)",
         [(c["reply"], c["accepted"]) for c in copies])
    t.is_(queued(sb), 0, "dropped after the dot: the queue is empty")


def killed_flush(t, sb):
    qid = expect_queued_odq(t, sb, "-odq", msg("kill"))
    t.is_(queued(sb), 1, "-odq: one message in the queue")
    sb.set_script({"delay": {"data": 20}})
    seen = len(sb.messages(accepted_only=False))
    p = subprocess.Popen([BEARMAIL, "queue", "flush", "--force"],
                         env=sb.env(ENV), cwd=sb.dir, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    arrived = wait_for(lambda: len(sb.messages(accepted_only=False)) > seen,
                       15)
    t.ok(arrived, "killed flush: the message was on the wire, waiting for "
         "the reply")
    time.sleep(0.2)
    rc, text, _ = listing(sb)
    ids = LISTING_ID.findall(text)
    t.ok(arrived and ids == [(qid, "*")], "while it is "
         "being sent, the listing marks it '*'", text)
    os.killpg(p.pid, signal.SIGKILL)    # the flush and its workers
    p.wait()
    t.is_(queued(sb), 1, "killed flush: the message is still queued")
    rc, text, _ = listing(sb)
    ids = LISTING_ID.findall(text)
    t.ok(ids == [(qid, "")], "killed flush: the message is "
         "unlocked", text)
    sb.set_script({})
    # the server recorded the killed copy before its delayed reply: the
    # next run must add exactly one more
    n = len(sb.messages())
    rc, out = flush(sb)
    t.is_(rc, 0, "killed flush: the next flush exits 0")
    expect_tagged(t, sb, "killed flush: delivered by the next run", n, "kill")
    t.is_(queued(sb), 0, "killed flush: the queue is empty")


def two_flushes(t, sb):
    sb.write_config({"max_connections": "3"})
    n, n0 = 8, len(sb.messages())
    for i in range(n):
        expect_queued_odq(t, sb, "two flushes: qf-twice-%d" % i,
                          msg("twice-%d" % i))
    t.is_(queued(sb), n, "two flushes: %d messages queued" % n)
    sb.set_script({"delay": {"rcpt": 0.1}})
    procs = [subprocess.Popen([BEARMAIL, "queue", "flush", "--force"],
                              env=sb.env(ENV), cwd=sb.dir,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for _ in range(2)]
    rcs = [p.wait(timeout=60) for p in procs]
    errs = [p.stderr.read().decode("utf-8", "replace") for p in procs]
    for p in procs:
        p.stderr.close()
    t.is_(rcs, [0, 0], "two flushes at once: both exit 0")
    if rcs != [0, 0]:
        t.diag("stderr: %r" % errs)
    got = delivered(sb, "twice-")
    t.ok(all(v == 1 for v in got.values()), "two flushes at once: no "
         "message sent twice", dict(got))
    # a flush that finds every connection slot taken by the other leaves
    # the rest for the next run: how many each sends is up to the race,
    # that together with this run each goes once is not
    sb.set_script({})
    flush(sb)
    sb.expect_arrivals(t, "two flushes at once, then one", n0, n)
    got = delivered(sb, "twice-")
    t.is_(sorted(got.items()), [("qf-twice-%d" % i, 1) for i in range(n)],
          "two flushes at once: every message delivered exactly once")
    t.is_(queued(sb), 0, "two flushes: the queue is empty")
    sb.write_config({})


def idp_failing(t, sb):
    before = len(sb.sessions())
    sb.seed_token_file(sb.token_store()["refresh_token"])  # needs a refresh
    sb.idp_fail(count=5, status=503)
    sb.expect_deferred(t, "identity platform 503", ["-i", "bob@example.com"],
                       msg("idp503"), r"token refresh for account work "
                       r"failed: temporarily_unavailable: AADSTS90033",
                       env=ENV)
    t.is_(len(sb.sessions()), before, "identity platform 503: no SMTP "
          "without a token")
    t.is_(queued(sb), 1, "identity platform 503: one message queued")
    for _ in range(10):                 # use up the injected failures
        status, _ = sb.token_call({"grant_type": "refresh_token"})
        if status != 503:
            break
    n = len(sb.messages())
    rc, out = flush(sb)
    t.is_(rc, 0, "identity platform back: flush exits 0")
    expect_tagged(t, sb, "identity platform back", n, "idp503")
    t.is_(dict(delivered(sb, "idp503")), {"qf-idp503": 1},
          "identity platform back: delivered once")
    t.is_(queued(sb), 0, "identity platform back: the queue is empty")

    # unreachable: nothing listens at the authority
    reset_queue(sb)
    sb.seed_token_file(sb.token_store()["refresh_token"])
    sb.write_config({"authority": "https://127.0.0.1:%d" % closed_port()})
    sb.expect_deferred(t, "identity platform unreachable",
                       ["-i", "bob@example.com"], msg("idpdown"),
                       r"identity platform unreachable: .*connect", env=ENV)
    t.is_(queued(sb), 1, "identity platform unreachable: queued")
    sb.write_config({})
    n = len(sb.messages())
    rc, out = flush(sb)
    expect_tagged(t, sb, "identity platform reachable again", n, "idpdown")
    t.is_(dict(delivered(sb, "idpdown")), {"qf-idpdown": 1},
          "identity platform reachable again: delivered once")
    t.is_(queued(sb), 0, "the queue is empty again")


def login_needed(t, sb):
    sb.seed_token_file(sb.token_store()["refresh_token"])
    sb.revoke()
    qid = sb.expect_deferred(t, "revoked refresh token",
                             ["-i", "bob@example.com"], msg("revoked"),
                             r"AADSTS50173.*bearmail login work", env=ENV)
    t.like(sb.last_run[2].decode("utf-8", "replace"), r"bearmail login work",
           "revoked: stderr says `bearmail login work`")
    t.is_(queued(sb), 1, "revoked: the message is queued")
    rc, text, _ = listing(sb)
    t.like(text, r"(?m)^%s .*\n.*bearmail login work" % qid,
           "revoked: the listing gives the reason under its ID")
    sb.seed()                          # the user logs in again
    n = len(sb.messages())
    rc, out = flush(sb)
    expect_tagged(t, sb, "after the login", n, "revoked")
    t.is_(dict(delivered(sb, "revoked")), {"qf-revoked": 1},
          "after the login: delivered once")
    t.is_(queued(sb), 0, "after the login: the queue is empty")


# ------------------------------------------------- cannot queue: 73 / 74
def not_writable(t, sb):
    """Queue directory not writable.  Root ignores mode bits, so as root
    the binaries run as nobody (setpriv) in a sandbox nobody owns."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            return t.skip("queue dir not writable", "root, and no setpriv")
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                  "--clear-groups"]
        probe = subprocess.run(prefix + ["test", "-x", SENDMAIL],
                               capture_output=True)
        if probe.returncode != 0:
            return t.skip("queue dir not writable", "nobody cannot run %s"
                          % SENDMAIL)
    reset_queue(sb)
    sb.write_config({})                # the server is up for the first part
    if prefix:
        for root, dirs, files in os.walk(sb.dir):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), 65534, 65534)
        os.chown(sb.dir, 65534, 65534)
    env = sb.env(ENV)

    def run(args, data):
        p = subprocess.run(prefix + [SENDMAIL, "-i", *args], input=data,
                           capture_output=True, env=env, cwd=sb.dir,
                           timeout=60)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    rc, err = run(["-odq", "bob@example.com"], msg("nobody-ok"))
    t.is_(rc, 0, "a writable queue: -odq works")
    if rc != 0:
        t.diag(err)
    n = len(sb.messages())
    p = subprocess.run(prefix + [BEARMAIL, "queue", "flush", "--force"],
                       env=env, cwd=sb.dir, capture_output=True)
    t.ok(p.returncode == 0 and queued(sb) == 0, "a writable queue: flushed",
         "exit %d: %r" % (p.returncode, p.stdout + p.stderr))
    expect_tagged(t, sb, "a writable queue", n, "nobody-ok")
    left = queued(sb)
    qdir = os.path.join(sb.dir, "queue")
    for root, dirs, files in os.walk(qdir):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o500)
    os.chmod(qdir, 0o500)
    sb.write_config({"port": str(closed_port())})
    # the spool file is elsewhere (TMPDIR); creating the queue file fails
    # with EACCES, which the queue reports as "cannot create" (73)
    rc, err = run(["bob@example.com"], msg("nobody-ro"))
    t.is_(rc, 73, "queue dir not writable, server down: exit 73, never 0")
    t.like(err, r"nor queued: cannot create %s/tmp/\w+\.msg: Permission "
           r"denied" % re.escape(qdir), "not writable: the message says "
           "queue")
    t.like(err, re.escape(qdir), "not writable: ... and names the directory")
    t.is_(queued(sb), left, "not writable: nothing half-queued")
    rc, err = run(["-odq", "bob@example.com"], msg("nobody-ro-odq"))
    t.is_(rc, 73, "not writable, -odq: exit 73")
    t.like(err, r"nor queued: cannot create %s/tmp/\w+\.msg: Permission "
           r"denied" % re.escape(qdir), "not writable, -odq: the file and "
           "why")
    for root, dirs, files in os.walk(qdir):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)
    os.chmod(qdir, 0o700)


def fsize_limit(t, sb):
    """Disk full, as RLIMIT_FSIZE: writes past 256 KiB fail (EFBIG)."""
    reset_queue(sb)
    sb.write_config({"port": str(closed_port())})
    limit = 256 * 1024

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    # the message is spooled before anything else, with or without -odq:
    # the write past the limit fails there with EFBIG, which the spool
    # reports as an I/O error (74; only ENOSPC and EDQUOT are "cannot
    # create", 73)
    for flag in ([], ["-odq"]):
        p = subprocess.run([SENDMAIL, "-i", *flag, "bob@example.com"],
                           input=msg("big", 1024 * 1024),
                           capture_output=True, env=sb.env(ENV), cwd=sb.dir,
                           preexec_fn=limited, timeout=60)
        err = p.stderr.decode("utf-8", "replace")
        t.is_(p.returncode, 74, "file size limit %s: exit 74, never 0" %
              (" ".join(flag) or "(sync, server down)"))
        t.like(err, r"^sendmail: cannot write the spool file in \S+: File "
               r"too large$", "file size limit: a clear message")
        t.is_(queued(sb), 0, "file size limit: nothing half-queued")


def tmpfs_full(t, sb):
    """Disk full, for real: the queue on a 64 KiB tmpfs."""
    qdir = os.path.join(sb.dir, "queue")
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700",
                        "bearmail-test", qdir], capture_output=True)
    if m.returncode != 0:
        return t.skip("queue on a full tmpfs", "cannot mount a tmpfs: %s"
                      % m.stderr.decode("utf-8", "replace").strip())
    try:
        sb.write_config({"port": str(closed_port())})
        qid = expect_queued_odq(t, sb, "tmpfs: a small message",
                                msg("small"))
        # the spool (TMPDIR) has room; the queue file does not: ENOSPC,
        # which the queue reports as "cannot create" (73)
        rc, err = send(sb, ["bob@example.com"], msg("huge", 512 * 1024))
        t.is_(rc, 73, "tmpfs full, server down: exit 73, never 0")
        t.like(err, r"nor queued: cannot write %s/tmp/\w+\.msg: No space "
               r"left on device" % re.escape(qdir), "tmpfs full: says why")
        t.is_(queued(sb), 1, "tmpfs full: the earlier message is "
              "still queued, no debris envelope")
        rc, text, _ = listing(sb)
        t.is_(listed_ids(text), [qid], "tmpfs full: the listing still works")
    finally:
        subprocess.run(["umount", "-l", qdir], capture_output=True)


# ------------------------------------------------------ periodic runs
def systemd_units(t):
    units = os.path.join(harness.SRCDIR, "packaging", "systemd")
    names = ["bearmail-queue.service", "bearmail-queue.timer"]
    texts = {}
    for n in names:
        with open(os.path.join(units, n), encoding="utf-8") as f:
            texts[n] = f.read()
    t.like(texts[names[0]], r"(?m)^ExecStart=\S*/bearmail queue flush$",
           "the service runs `bearmail queue flush`")
    t.ok(re.search(r"(?m)^OnUnitActiveSec=5min$", texts[names[1]]) and
         re.search(r"(?m)^OnStartupSec=", texts[names[1]]),
         "the timer: every 5 minutes, and at startup")
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return t.skip("systemd-analyze verify", "no systemd-analyze")
    with tempfile.TemporaryDirectory(prefix="bearmail-units-") as d:
        for n in names:       # the unit, with ExecStart at the build tree
            with open(os.path.join(d, n), "w", encoding="utf-8") as f:
                f.write(re.sub(r"(?m)^ExecStart=\S*/bearmail ",
                               "ExecStart=%s " % BEARMAIL, texts[n]))
        run = os.path.join(d, "run")
        os.mkdir(run, 0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=run)
        paths = [os.path.join(d, n) for n in names]
        p = None
        for mode in (["--user"], []):
            p = subprocess.run([tool, *mode, "--man=no", "verify", *paths],
                               capture_output=True, env=env, timeout=60)
            if b"Failed to initialize manager" not in p.stderr:
                break
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        if "Failed to initialize manager" in out:
            return t.skip("systemd-analyze verify", "no systemd manager: "
                          + out.strip().splitlines()[-1])
        t.ok(p.returncode == 0 and out.strip() == "",
             "systemd-analyze verify: the units parse, no warnings", out)


def tests(t):
    with Sandbox() as sb:
        for fault in (server_down_30, one_of_three_deferred, bounce_on_550,
                      dropped_after_dot, killed_flush, two_flushes,
                      idp_failing, login_needed):
            reset_queue(sb)            # a failure does not cascade
            sb.set_script({})
            sb.write_config({})
            fault(t, sb)
        t.is_(sb.violations(), [], "no protocol violation in any session")
        no_secrets(t, sb, "queue faults")
    with Sandbox() as sb:
        fsize_limit(t, sb)
        tmpfs_full(t, sb)
        not_writable(t, sb)
    systemd_units(t)


run_tests(tests)
