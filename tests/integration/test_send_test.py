"""`bearmail send-test [-v] [ACCOUNT] [RECIPIENT]` against the sandbox: the
test message reaches the server from the account's address with the right
header fields and a body naming account, relay and store; a recipient, an
account, or both may be named; refusals exit as sendmail would (77 for
5.7.60, 67 for 5.1.1); -v shows the SMTP dialogue with AUTH redacted and
no token; with the server down the message is queued and the
command says so (exit 0, as sendmail); an unknown account is 78 and bad
arguments 64.  What arrived is checked at the server, never the exit code
alone (0 also means queued)."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, run_tests, USER  # noqa: E402


def header(raw, name):
    """The first header field called name in the message bytes, or None."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    m = re.search(r"(?im)^%s:[ \t]*(.*(?:\r\n[ \t].*)*)" % re.escape(name),
                  head)
    return re.sub(r"\r\n[ \t]+", " ", m.group(1)).strip() if m else None


def test_default(t, sb):
    n = len(sb.messages())
    rc, out, err = sb.run_bearmail(["send-test"])
    t.is_(rc, 0, "send-test: exit 0 (%s)" % err.decode().strip()[:200])
    t.is_(out.decode(), "sent to %s via 127.0.0.1:%d\n" % (USER, sb.smtp_port),
          "send-test: says where it went")
    m = sb.expect_arrival(t, "send-test", n, err=err)
    raw = m["bytes"]
    t.is_(m["mail_from"], USER, "envelope sender: the account's address")
    t.is_(m["rcpt_tos"], [USER], "recipient: the account's own address")
    t.is_(header(raw, "From"), USER, "From: the account's address")
    t.is_(header(raw, "To"), USER, "To: the account's address")
    t.like(header(raw, "Subject") or "", r"^bearmail test message from \S+$",
           "Subject: bearmail test message from HOST")
    t.ok(header(raw, "Date") is not None, "a Date field")
    t.like(header(raw, "Message-ID") or "", r"^<bearmail-test\.[0-9a-f]{24}@",
           "a Message-ID of its own")
    body = raw.split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace")
    t.like(body, r"Account: +work \(user %s\)" % re.escape(USER),
           "body: the account")
    t.like(body, r"Relay: +127\.0\.0\.1:%d, STARTTLS, XOAUTH2" % sb.smtp_port,
           "body: the relay")
    t.like(body, r"Token store: +%s" % re.escape(sb.token_file),
           "body: the token store")
    t.like(body, r"Sent: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}",
           "body: when")
    t.ok(b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"") and
         b"\r" not in raw.replace(b"\r\n", b""),
         "the message is canonical CRLF")
    t.is_(sb.session_of(m)["violations"], [], "no protocol violations")
    t.like(sb.log_text(), r"to=<%s> .*status=sent" % re.escape(USER),
           "the log has the delivery")


def test_arguments(t, sb):
    n = len(sb.messages())
    rc, out, err = sb.run_bearmail(["send-test", "bob@example.com"])
    t.is_(rc, 0, "send-test RECIPIENT: exit 0")
    t.is_(out.decode(), "sent to bob@example.com via 127.0.0.1:%d\n"
          % sb.smtp_port, "send-test RECIPIENT: says so")
    m = sb.expect_arrival(t, "send-test RECIPIENT", n, err=err)
    t.ok(m["rcpt_tos"] == ["bob@example.com"] and m["mail_from"] == USER
         and header(m["bytes"], "To") == "bob@example.com",
         "send-test RECIPIENT: to that recipient", m["rcpt_tos"])
    rc, out, err = sb.run_bearmail(["send-test", "work", "carol@example.com"])
    t.is_(rc, 0, "send-test ACCOUNT RECIPIENT: exit 0")
    m = sb.expect_arrival(t, "send-test ACCOUNT RECIPIENT", n + 1, err=err)
    t.ok(m["rcpt_tos"] == ["carol@example.com"] and
         header(m["bytes"], "To") == "carol@example.com",
         "send-test ACCOUNT RECIPIENT: to that recipient", m["rcpt_tos"])
    rc, out, err = sb.run_bearmail(["send-test", "nosuch"])
    t.is_(rc, 78, "an unknown account: 78")
    t.like(err.decode(), r"no account nosuch in ", "an unknown account: said")
    for args in (["--frob"], ["work", "a@example.com", "b@example.com"]):
        rc, out, err = sb.run_bearmail(["send-test", *args])
        t.is_(rc, 64, "send-test %s: usage (64)" % " ".join(args))
    t.is_(len(sb.messages()), n + 2, "refused invocations sent nothing")


def test_verbose(t, sb):
    n = len(sb.messages())
    rc, out, err = sb.run_bearmail(["send-test", "-v"])
    e = err.decode("utf-8", "replace")
    t.is_(rc, 0, "-v: exit 0")
    m = sb.expect_arrival(t, "-v", n, err=err)
    t.is_(m["rcpt_tos"], [USER], "-v: the test message was delivered")
    t.like(e, r"(?m)^.*EHLO ", "-v: shows EHLO")
    t.like(e, r"(?m)STARTTLS", "-v: shows STARTTLS")
    # the token goes on the AUTH line (an initial response) or after the
    # 334: RFC 4954 allows both; either way it must show as [redacted]
    t.like(e, r">>> (AUTH XOAUTH2 )?\[redacted\]", "-v: AUTH redacted")
    t.like(e, r"235 2\.7\.0", "-v: shows the AUTH reply")
    store = sb.token_store()
    token, refresh = store.get("access_token"), store.get("refresh_token")
    t.ok(token and refresh and token not in e and refresh not in e and
         token not in out.decode(),
         "-v: no token in the output (both stored, to look for)")
    t.ok(not re.search(r"dXNlcj1[0-9A-Za-z+/=]{20,}", e),
         "-v: no XOAUTH2 blob in the output")


def test_refused(t, sb):
    n, queued = len(sb.messages(accepted_only=False)), sb.queue_ids()
    sb.set_script({"rcpt": {"nobody@example.com": "550 5.1.1 User unknown"},
                   "mail": "550 5.7.60 SMTP; Client does not have "
                   "permissions to send as this sender"})
    rc, out, err = sb.run_bearmail(["send-test", "nobody@example.com"])
    t.is_(rc, 77, "send-as refused (5.7.60): 77, as sendmail")
    t.like(err.decode(), r"5\.7\.60.*\n.*test message was not sent",
           "send-as refused: the server's words, then not sent")
    t.is_(out, b"", "send-as refused: nothing on stdout")
    sb.set_script({"rcpt": {"nobody@example.com": "550 5.1.1 User unknown"}})
    rc, out, err = sb.run_bearmail(["send-test", "nobody@example.com"])
    t.is_(rc, 67, "unknown recipient (5.1.1): 67")
    t.like(err.decode(), r"nobody@example\.com.*5\.1\.1",
           "unknown recipient: said")
    t.is_(len(sb.messages(accepted_only=False)), n,
          "refused: no message data was sent")
    t.is_(sb.queue_ids(), queued, "refused: nothing queued")
    sb.set_script({})


def test_delivery_queue(t, sb):
    """send-test tests the path to the server: it sends at once even when
    the account queues everything (`delivery queue`)."""
    sb.write_config({"delivery": "queue"})
    n = len(sb.messages())
    rc, out, err = sb.run_bearmail(["send-test"])
    t.is_((rc, out.decode()), (0, "sent to %s via 127.0.0.1:%d\n"
                               % (USER, sb.smtp_port)),
          "delivery queue: send-test still sends at once")
    m = sb.expect_arrival(t, "delivery queue: send-test", n, err=err)
    t.is_(m["rcpt_tos"], [USER], "delivery queue: to the account's address")
    sb.write_config({})


def test_queued(t, sb):
    n = len(sb.messages())
    good_port = sb.smtp_port
    # nothing listens on the port: connection refused, a temporary failure
    sb.write_config({"port": "1"})
    rc, out, err = sb.run_bearmail(["send-test"])
    o = out.decode()
    t.is_(rc, 0, "server down: exit 0 (queued, as sendmail)")
    t.like(o, r"^queued as [0-9A-Za-z]+: .*connect", "server down: "
           "\"queued as ID: reason\"")
    qid = sb.expect_queued(t, "server down", o)
    sb.expect_no_arrival(t, "server down", n)
    sb.write_config({"port": str(good_port)})
    rc, out, err = sb.run_bearmail(["queue", "flush", "--force"])
    t.is_(rc, 0, "flush: exit 0")
    m = sb.expect_arrival(t, "the queued test message, flushed", n, err=err)
    t.ok(m["rcpt_tos"] == [USER] and m["mail_from"] == USER and
         (header(m["bytes"], "Subject") or "").startswith(
             "bearmail test message"),
         "the queued test message is delivered by a flush", m["rcpt_tos"])
    t.ok(qid and qid not in sb.queue_ids(), "flushed: it left the queue")


def tests(t):
    with Sandbox() as sb:
        test_default(t, sb)
        test_arguments(t, sb)
        test_verbose(t, sb)
        test_refused(t, sb)
        test_delivery_queue(t, sb)
        test_queued(t, sb)


if __name__ == "__main__":
    run_tests(tests)
