"""The queue runner and its commands, against the test servers: messages
are queued with `sendmail -odq`, then `bearmail queue list` / `sendmail
-bp` / `mailq` must show them in Postfix's format; hold, release, drop and
retry do what they say; a flush delivers each message once, many per
connection and never over max_connections; two flushes at once send
nothing twice; `rate` leaves the excess queued; a 550 recipient of a queued
message is bounced (RFC 3464) to the sender, and a bounce that fails is not
bounced again; `sendmail -odb` starts a detached flush.  Each message
queued is found by its own ID in the listing; each flush is judged by what
arrived at the server (exactly which messages, how many), not by its exit
code."""
import json
import os
import re
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import harness  # noqa: E402
from harness import Sandbox, run_tests, USER  # noqa: E402

HEADER = ("-Queue ID---------  --Size-- ----Arrival Time---- "
          "-Sender/Recipient-------")
ENTRY = re.compile(
    r"^(?P<id>[0-9A-F]{10,})(?P<flag>[ *!]) *(?P<size>\d+) "
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d "
    r"\d\d:\d\d:\d\d  (?P<sender>\S+)$")
RCPT = re.compile(r"^ {50}(?P<rcpt>\S+)$")
REASON = re.compile(r"^ *\((?P<why>.*)\)$")


def queue(t, sb, rcpts, subject, extra=None):
    """Queue one message with sendmail -odq (its Subject is the key): exit
    0, nothing sent, the ID its log line gives in the listing; the ID."""
    return sb.expect_deferred(t, "-odq %s" % subject,
                              ["-odq", "-i"] + (extra or []) + rcpts,
                              b"Subject: " + subject.encode() +
                              b"\n\nbody of " + subject.encode() + b"\n",
                              r"queued by request \(-odq\)")


def listing(sb, args=("queue", "list")):
    rc, out, err = sb.run_bearmail(list(args))
    return rc, out.decode("utf-8", "replace"), err


def parse(text):
    """[{id, flag, size, sender, why, rcpts}] from a mailq listing."""
    entries = []
    for line in text.splitlines():
        m = ENTRY.match(line)
        if m:
            entries.append(dict(m.groupdict(), why=None, rcpts=[]))
            continue
        m = RCPT.match(line)
        if m and entries:
            entries[-1]["rcpts"].append(m.group("rcpt"))
            continue
        m = REASON.match(line)
        if m and entries:
            entries[-1]["why"] = m.group("why")
    return entries


def subject(m):
    """The Subject of a received message ("": none, or it did not come)."""
    found = re.search(rb"(?m)^Subject: (.*?)\r?$", m["bytes"])
    return found.group(1).decode() if found else ""


def subjects(msgs):
    return [subject(m) for m in msgs]


def flush(sb, *args, env=None):
    return sb.run_bearmail(["queue", "flush", *args], env=env)


def test_listing(t, sb):
    rc, text, _ = listing(sb)
    t.is_((rc, text), (0, "Mail queue is empty\n"), "empty queue: one line")
    ids = [queue(t, sb, ["bob%d@example.com" % i, "carol@example.com"], subj)
           for i, subj in enumerate(("list-1", "list-2"))]
    sb.expect_no_arrival(t, "-odq", 0)
    rc, text, _ = listing(sb)
    lines = text.splitlines()
    t.is_(lines[0] if lines else None, HEADER, "list: Postfix's header line")
    entries = parse(text)
    t.is_([e["id"] for e in entries], ids, "list: two entries, in order")
    t.ok(all(e["flag"] == " " and e["sender"] == USER and
             int(e["size"]) > 20 for e in entries),
         "list: id, size, arrival time and sender on the entry line", text)
    t.is_([e["rcpts"] for e in entries],
          [["bob0@example.com", "carol@example.com"],
           ["bob1@example.com", "carol@example.com"]],
          "list: each recipient indented under its message")
    t.like(text, r"\n\n-- \d+ Kbytes in 2 Requests\.\n$", "list: summary")
    rc, bp, _ = sb.run_sendmail(["-bp"])
    t.is_(bp.decode(), text, "sendmail -bp prints the same listing")
    link = os.path.join(sb.dir, "mailq")
    if not os.path.exists(link):
        os.symlink(os.path.join(harness.BUILDDIR, "sendmail"), link)
    rc, mq, _ = sb.run(link, [])
    t.is_(mq.decode(), text, "mailq prints the same listing")
    return [e["id"] for e in entries]


def test_admin(t, sb, ids):
    rc, _, err = sb.run_bearmail(["queue", "hold", ids[0]])
    t.is_(rc, 0, "hold: exit 0")
    entries = {e["id"]: e for e in parse(listing(sb)[1])}
    t.is_(entries[ids[0]]["flag"], "!", "hold: '!' in the listing")
    n = len(sb.messages())
    rc, out, err = flush(sb, "--force")
    t.is_(rc, 0, "flush with a held message: exit 0")
    m = sb.expect_arrival(t, "flush with a held message", n, err=err)
    t.is_((subject(m), m["rcpt_tos"]),
          ("list-2", ["bob1@example.com", "carol@example.com"]),
          "flush: the held message is not sent, the other is")
    t.is_([e["id"] for e in parse(listing(sb)[1])], [ids[0]],
          "the held message is still queued")
    rc, _, _ = sb.run_bearmail(["queue", "release", ids[0]])
    t.is_(rc, 0, "release: exit 0")
    t.is_(parse(listing(sb)[1])[0]["flag"], " ", "release: flag gone")
    n = len(sb.messages())
    rc, out, err = flush(sb)
    m = sb.expect_arrival(t, "released", n, err=err)
    t.is_((subject(m), m["rcpt_tos"]),
          ("list-1", ["bob0@example.com", "carol@example.com"]),
          "released: the next flush delivers it")
    t.is_(listing(sb)[1], "Mail queue is empty\n", "queue empty again")

    # drop: gone, never sent; unknown ids: 66 with the id named
    drop_id = queue(t, sb, ["dave@example.com"], "dropped")
    rc, _, _ = sb.run_bearmail(["queue", "drop", drop_id or "none"])
    t.is_(rc, 0, "drop: exit 0")
    t.is_(listing(sb)[1], "Mail queue is empty\n", "drop: removed")
    n = len(sb.messages())
    flush(sb, "--force")
    sb.expect_no_arrival(t, "drop: never delivered", n)
    for verb in ("drop", "hold", "release", "retry"):
        rc, _, err = sb.run_bearmail(["queue", verb, "0123456789ABCDEF"])
        t.is_(rc, 66, "%s of an unknown id: exit 66" % verb)
        t.like(err.decode(), r"no message 0123456789ABCDEF in the queue",
               "%s of an unknown id: says so" % verb)
    rc, _, _ = sb.run_bearmail(["queue", "frobnicate", "0123456789ABCDEF"])
    t.is_(rc, 64, "unknown verb: usage error")

    # retry ID: that message now, the others stay
    retry_id = queue(t, sb, ["erin@example.com"], "retry-me")
    stay_id = queue(t, sb, ["frank@example.com"], "stay")
    n = len(sb.messages())
    rc, _, err = sb.run_bearmail(["queue", "retry", retry_id or "none"])
    t.is_(rc, 0, "retry: exit 0")
    m = sb.expect_arrival(t, "retry", n, err=err)
    t.is_((subject(m), m["rcpt_tos"]), ("retry-me", ["erin@example.com"]),
          "retry: delivered that message only")
    t.is_([e["id"] for e in parse(listing(sb)[1])], [stay_id],
          "retry: the other one is still queued")
    n = len(sb.messages())
    rc, _, err = flush(sb)
    t.is_(subject(sb.expect_arrival(t, "flush after retry", n, err=err)),
          "stay", "the next flush delivers the other one")


def test_one_connection(t, sb):
    sb.write_config({"max_connections": "1", "rate": "0"})
    before = len(sb.sessions())
    n0 = len(sb.messages())
    for i in range(5):
        queue(t, sb, ["r%d@example.com" % i], "batch-%d" % i)
    mark = sb.log_mark()
    rc, out, err = flush(sb)
    t.is_((rc, out, err), (0, b"", b""), "flush: exit 0, silent")
    msgs = sb.expect_arrivals(t, "flush", n0, 5, err=err)
    t.is_(sorted(subjects(msgs)), ["batch-%d" % i for i in range(5)],
          "flush: all 5 delivered, each once")
    sess = sb.sessions()[before:]
    t.is_(len(sess), 1, "max_connections 1: exactly one session for 5")
    t.ok(len(sess) == 1 and {m["session"] for m in msgs} == {sess[0]["id"]},
         "the 5 messages on that session")
    t.is_(sb.violations(), [], "no protocol violations")
    rc, out, err = flush(sb)
    t.is_((rc, out, err, len(sb.sessions())), (0, b"", b"", before + 1),
          "nothing due: quiet, exit 0, no connection")
    new = sb.log_since(mark)
    t.ok(all(re.search(r"to=<r%d@example\.com> .*status=sent" % i, new)
             for i in range(5)), "each delivery is logged", new)


def test_parallel(t, sb):
    sb.write_config({"max_connections": "2", "rate": "0"})
    sb.set_script({"delay": {"data": 0.2}})
    before = len(sb.sessions())
    n0 = len(sb.messages())
    for i in range(6):
        queue(t, sb, ["p%d@example.com" % i], "par-%d" % i)
    procs = [subprocess.Popen([os.path.join(harness.BUILDDIR, "bearmail"),
                               "queue", "flush", "--force"],
                              env=sb.env(), cwd=sb.dir,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    codes = [p.wait(timeout=60) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    t.is_(codes, [0, 0], "two flushes at once: both exit 0")
    # all six are there when both flushes have exited: exactly six
    got = sb.expect_arrivals(t, "two flushes at once", n0, 6)
    t.is_(sorted(subjects(got)), ["par-%d" % i for i in range(6)],
          "two flushes at once: every message sent exactly once")
    t.ok(len(sb.sessions()) - before <= 2,
         "never more than max_connections (2) sessions, across both "
         "flushes (%d)" % (len(sb.sessions()) - before))
    t.is_(listing(sb)[1], "Mail queue is empty\n", "queue empty")

    # a message being delivered is marked '*'
    sb.set_script({"delay": {"data": 3}})
    slow_id = queue(t, sb, ["slow@example.com"], "slow")
    n = len(sb.messages())
    p = subprocess.Popen([os.path.join(harness.BUILDDIR, "bearmail"),
                          "queue", "flush"], env=sb.env(), cwd=sb.dir,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60          # a hang guard
    entries = []
    while time.monotonic() < deadline and \
            [(e["id"], e["flag"]) for e in entries] != [(slow_id, "*")]:
        time.sleep(0.2)
        entries = parse(listing(sb)[1])
    t.is_([(e["id"], e["flag"]) for e in entries], [(slow_id, "*")],
          "being delivered: '*' in the listing")
    t.is_(p.wait(timeout=60), 0, "the slow flush finished")
    t.is_(subject(sb.expect_arrival(t, "the slow flush", n)), "slow",
          "the slow flush delivered it")
    sb.set_script({})


def test_rate(t, sb):
    sb.write_config({"max_connections": "1", "rate": "2"})
    n0 = len(sb.messages())
    ids = [queue(t, sb, ["rate%d@example.com" % i], "rate-%d" % i)
           for i in range(3)]
    rc, out, err = flush(sb)
    t.is_(rc, 0, "rate 2: flush exit 0")
    msgs = sb.expect_arrivals(t, "rate 2", n0, 2, err=err)
    t.is_(subjects(msgs), ["rate-0", "rate-1"],
          "rate 2: two sent within the minute, oldest first")
    left = parse(listing(sb)[1])
    t.is_([(e["id"], e["rcpts"]) for e in left],
          [(ids[2], ["rate2@example.com"])],
          "rate 2: the third stays queued for a later run")
    rc, _, _ = flush(sb, "--force")
    sb.expect_no_arrival(t, "rate 2: a second flush in the same minute "
                         "sends nothing either", n0 + 2)
    sb.write_config({"max_connections": "1", "rate": "0"})
    rc, _, err = flush(sb)
    t.is_(subject(sb.expect_arrival(t, "rate 0", n0 + 2, err=err)),
          "rate-2", "rate 0: the rest goes")


def test_failures(t, sb):
    sb.write_config({"max_connections": "1", "rate": "0"})
    # a temporary refusal: deferred with its reason, then retried
    sb.set_script({"rcpt": {"later@example.com": "451 4.3.0 Try later"}})
    n0 = len(sb.messages())
    qid = queue(t, sb, ["now@example.com", "later@example.com"], "partial")
    mark = sb.log_mark()
    rc, out, err = flush(sb)
    t.is_(rc, 0, "451 for one recipient: flush exit 0")
    m = sb.expect_arrival(t, "451 for one recipient", n0, err=err)
    t.is_((m["rcpt_tos"], subject(m)), (["now@example.com"], "partial"),
          "the other recipient got it")
    left = parse(listing(sb)[1])
    t.ok(len(left) == 1 and left[0]["id"] == qid and
         left[0]["rcpts"] == ["later@example.com"] and
         "451 4.3.0 Try later" in (left[0]["why"] or ""),
         "deferred: listed under its ID with the server's words",
         listing(sb)[1])
    t.like(sb.log_since(mark), r"to=<later@example\.com>.*status=deferred "
           r"\(recipient later@example\.com refused \(451 4\.3\.0 Try "
           r"later\), queued as %s\)" % qid,
           "deferral logged with the queue id")
    rc, out, err = flush(sb)
    sb.expect_no_arrival(t, "not due yet: a plain flush waits", n0 + 1)
    sb.set_script({})
    rc, out, err = flush(sb, "--force")
    m = sb.expect_arrival(t, "--force", n0 + 1, err=err)
    t.is_((m["rcpt_tos"], subject(m)), (["later@example.com"], "partial"),
          "--force: delivered to the deferred recipient, nobody twice")

    # a permanent refusal: bounced to the sender with the report parts
    sb.set_script({"rcpt": {"bad@example.com": "550 5.1.1 User unknown"}})
    n0 = len(sb.messages())
    queue(t, sb, ["good@example.com", "bad@example.com"], "bounce-me")
    mark = sb.log_mark()
    rc, out, err = flush(sb)
    t.is_(rc, 0, "550 for one recipient: flush exit 0")
    msgs = sb.expect_arrivals(t, "550 for one recipient", n0, 2, err=err)
    t.is_([m["rcpt_tos"] for m in msgs], [["good@example.com"], [USER]],
          "the good recipient got it; the bounce went to the sender")
    b = msgs[1]["bytes"]
    t.is_(msgs[1]["mail_from"], USER, "the bounce is sent through the account")
    for pat in (rb"Content-Type: multipart/report; "
                rb"report-type=delivery-status",
                rb"Subject: Undelivered Mail Returned to Sender",
                rb"Auto-Submitted: auto-replied",
                rb"Content-Type: message/delivery-status",
                rb"Final-Recipient: rfc822; bad@example\.com\r\n"
                rb"Action: failed\r\nStatus: 5\.1\.1\r\n",
                rb"Diagnostic-Code: smtp; 550 5\.1\.1 User unknown",
                rb"Content-Type: text/rfc822-headers",
                rb"\r\nSubject: bounce-me\r\n"):
        t.ok(re.search(pat, b), "bounce: %s" % pat.decode()[:50])
    status = b.split(b"message/delivery-status")[-1].split(
        b"text/rfc822-headers")[0]
    t.ok(b"Final-Recipient: rfc822; bad@example.com" in status and
         b"good@example.com" not in status, "bounce: only the failed one")
    t.ok(b"\r\nSubject: bounce-me\r\n" in b and b"body of bounce-me" not in b,
         "bounce: the body is not returned")
    t.like(sb.log_since(mark), r"to=<bad@example\.com>.*status=bounced",
           "the refusal is logged as bounced")
    t.is_(listing(sb)[1], "Mail queue is empty\n", "nothing left queued")

    # a bounce made early in a flush goes out in the same flush, however
    # long the rest of it takes: one connection, and each data reply takes
    # over a second, so the flush's first pass ends in a later second than
    # the one the bounce was made in
    sb.write_config({"max_connections": "1"})
    sb.set_script({"rcpt": {"bad@example.com": "550 5.1.1 User unknown"},
                   "delay": {"data": 1.2}})
    n0 = len(sb.messages())
    queue(t, sb, ["good@example.com", "bad@example.com"], "early-bounce")
    queue(t, sb, ["good@example.com"], "slow-second")
    rc, out, err = flush(sb)
    msgs = sb.expect_arrivals(t, "a slow flush", n0, 3, err=err)
    t.is_([(m["rcpt_tos"], subject(m)) for m in msgs],
          [(["good@example.com"], "early-bounce"),
           (["good@example.com"], "slow-second"),
           ([USER], "Undelivered Mail Returned to Sender")],
          "a bounce made in a slow flush's first pass goes out in its second")
    t.is_(listing(sb)[1], "Mail queue is empty\n",
          "a slow flush leaves no bounce behind")
    sb.write_config()

    # a bounce that fails is not bounced again
    sb.set_script({"rcpt": {"bad@example.com": "550 5.1.1 User unknown",
                            USER: "550 5.1.1 Mailbox gone"}})
    before, n0 = len(sb.sessions()), len(sb.messages())
    queue(t, sb, ["bad@example.com"], "double")
    flush(sb)
    flush(sb, "--force")
    sb.expect_no_arrival(t, "a bounce that fails", n0)
    rcpts = [c.strip() for s in sb.sessions()[before:]
             for c in s["commands"] if c.upper().startswith("RCPT")]
    t.is_(sorted(rcpts), sorted(["RCPT TO:<bad@example.com>",
                                 "RCPT TO:<%s>" % USER]),
          "the bounce was tried once and not bounced in turn")
    t.is_(listing(sb)[1], "Mail queue is empty\n", "and it is gone")
    sb.set_script({})


def test_expiry(t, sb):
    sb.write_config({"max_connections": "1", "rate": "0"})
    sb.set_script({"rcpt": {"slowpoke@example.com": "451 4.4.1 No answer"}})
    n0 = len(sb.messages())
    qid = queue(t, sb, ["slowpoke@example.com"], "expire-me")
    flush(sb)
    left = parse(listing(sb)[1])
    t.is_([e["id"] for e in left], [qid], "451: still queued")
    # age it past queue_lifetime (5 days by default)
    path = os.path.join(sb.dir, "queue", "deferred", "%s.env" % qid)
    with open(path, encoding="utf-8") as f:
        env = json.load(f)
    env["created"] -= 6 * 86400
    with open(path, "w", encoding="utf-8") as f:
        json.dump(env, f)
    mark = sb.log_mark()
    rc, out, err = flush(sb)
    m = sb.expect_arrival(t, "past queue_lifetime", n0, err=err)
    t.is_((rc, m["rcpt_tos"]), (0, [USER]),
          "past queue_lifetime: bounced to the sender, not retried")
    b = m["bytes"]
    t.ok(re.search(rb"Final-Recipient: rfc822; slowpoke@example\.com\r\n"
                   rb"Action: failed\r\nStatus: 5\.4\.7\r\n"
                   rb"Diagnostic-Code: smtp; 451 4\.4\.1 No answer", b),
         "expired: the report carries 5.4.7 and the last reply", b[-900:])
    t.like(sb.log_since(mark), r"to=<slowpoke@example\.com>.*status=bounced "
           r"\(message expired after 5 days", "expiry logged as bounced")
    t.is_(listing(sb)[1], "Mail queue is empty\n", "expired: removed")
    sb.set_script({})


def test_background(t, sb):
    """The detached flush (the submitter started again in mode queue-due)
    is held until sendmail has returned: the $BEARMAIL_SUBMIT wrapper waits
    for a file before a queue-due run.  sendmail returning at all, with
    nothing sent, shows that it did not wait, however slow the machine."""
    n0 = len(sb.messages())
    gate = os.path.join(sb.dir, "odb-gate")
    held = os.path.join(sb.dir, "odb-submit")
    real = os.path.join(harness.BUILDDIR, "bearmail-submit")
    with open(held, "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\ni=0\n"     # let go after 120 s: a hang guard
                "case \" $* \" in *\" queue-due \"*)\n"
                "while [ ! -e %s ] && [ $i -lt 1200 ]; do\n"
                "\tsleep 0.1; i=$((i + 1))\ndone;;\nesac\n"
                "BEARMAIL_SUBMIT=%s exec %s \"$@\"\n"
                % (shlex.quote(gate), shlex.quote(held), shlex.quote(real)))
    os.chmod(held, 0o755)
    try:
        rc, out, err = sb.run_sendmail(["-odb", "-i", "bg@example.com"],
                                       b"Subject: background\n\nhi\n",
                                       env={"BEARMAIL_SUBMIT": held})
    except subprocess.TimeoutExpired:
        rc = "still waiting after 60 s"
    t.is_(rc, 0, "-odb: exit 0 while the flush it started is held")
    sb.expect_no_arrival(t, "-odb: before it returned", n0)
    open(gate, "w").close()
    m = sb.expect_arrival(t, "-odb: the detached flush", n0, timeout=60)
    t.is_((m["rcpt_tos"], subject(m)), (["bg@example.com"], "background"),
          "-odb: the detached flush delivered it")


def test_opportunistic(t, sb):
    """A successful synchronous delivery starts a background run for what
    is due in the queue."""
    t.is_(listing(sb)[1], "Mail queue is empty\n", "opportunistic: start "
          "from an empty queue")
    queue(t, sb, ["waiting@example.com"], "was waiting")
    n = len(sb.messages())
    rc, _, err = sb.run_sendmail(["-i", "now@example.com"],
                                 b"Subject: sent now\n\nhi\n")
    t.is_(rc, 0, "opportunistic: a synchronous delivery: exit 0")
    # the background run starts once the synchronous delivery is done, so
    # the two arrive in this order
    msgs = sb.expect_arrivals(t, "opportunistic", n, 2, timeout=60, err=err)
    t.is_([(subject(m), m["rcpt_tos"]) for m in msgs],
          [("sent now", ["now@example.com"]),
           ("was waiting", ["waiting@example.com"])],
          "opportunistic: delivered at once, then the queued message went "
          "out in the background")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and \
            listing(sb)[1] != "Mail queue is empty\n":
        time.sleep(0.1)
    t.is_(listing(sb)[1], "Mail queue is empty\n",
          "opportunistic: the queue is empty afterwards")


def test_secrets(t, sb):
    queue(t, sb, ["v@example.com"], "verbose")
    n = len(sb.messages())
    rc, out, err = flush(sb, "-v")
    text = (out + err).decode("utf-8", "replace")
    t.is_(rc, 0, "flush -v: exit 0")
    t.is_(subject(sb.expect_arrival(t, "flush -v", n, err=err)), "verbose",
          "flush -v: the message arrived")
    t.like(text, r"(?m)^>>> AUTH XOAUTH2$", "flush -v: shows the dialogue")
    tokens = [v for k, v in sb.token_store().items()
              if k.endswith("_token") and v]
    t.ok(tokens and not any(v in text for v in tokens),
         "flush -v: no token shown")
    logs = sb.log_text()
    t.ok(tokens and not any(v in logs for v in tokens), "no token in the log")


def tests(t):
    # the outlook preset's rate (30 a minute) would get in the way here
    with Sandbox(config_extra={"rate": "0"}) as sb:
        ids = test_listing(t, sb)
        test_admin(t, sb, ids)
        test_one_connection(t, sb)
        test_parallel(t, sb)
        test_failures(t, sb)
        test_expiry(t, sb)
        test_background(t, sb)
        test_opportunistic(t, sb)
        test_secrets(t, sb)
    with Sandbox() as sb:
        test_rate(t, sb)


run_tests(tests)
