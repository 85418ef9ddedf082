"""Transport variants: implicit TLS (tls smtps), OAUTHBEARER, a server
without PIPELINING (nothing pipelined), several recipients refused at RCPT
time, and a server that closes after the data (a temporary failure).  A
delivery is checked at the server; a temporary failure must leave the
message in the queue (exit 0 means either, so each is asked for)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, run_tests, USER  # noqa: E402

MSG = b"Subject: transport\n\nhello\n"


class Log:
    """The bearmail log from a point on: what the last command wrote."""

    def __init__(self, sb):
        self.sb, self.at = sb, len(sb.log_text())

    def new(self):
        text = self.sb.log_text()
        new, self.at = text[self.at:], len(text)
        return new


def deferred(t, sb, name, args=("x@example.com",)):
    """A temporary failure: exit 0, nothing arrived, the message queued
    (its ID from the log line, in `bearmail queue list`); the new log."""
    log = Log(sb)
    n = len(sb.messages())
    rc, _, err = sb.run_sendmail(list(args), MSG)
    t.is_(rc, 0, "%s: exit 0 (queued)" % name)
    sb.expect_no_arrival(t, name, n)
    new = log.new()
    t.like(new, r"status=deferred .*queued as ", "%s: logged as deferred"
           % name)
    return sb.expect_queued(t, name, new), new, err.decode("utf-8", "replace")


def tests(t):
    with Sandbox(smtps=True) as sb:
        # implicit TLS on the smtps port
        sb.write_config({"tls": "smtps", "port": str(sb.smtps_port)})
        m = sb.send_and_expect(t, "tls smtps", ["x@example.com"], MSG,
                               rcpts=["x@example.com"], sender=USER)
        s = sb.session_of(m)
        t.ok(s["implicit_tls"] and s["auth_user"] == USER,
             "tls smtps: implicit TLS session, authenticated", s)
        t.ok(s["commands"] and not any(c.upper().startswith("STARTTLS")
                                       for c in s["commands"]),
             "tls smtps: no STARTTLS sent", s["commands"])
        t.ok(m["bytes"].endswith(b"\r\n\r\nhello\r\n"),
             "tls smtps: the message bytes", m["bytes"])

        # OAUTHBEARER
        sb.write_config({"auth": "oauthbearer"})
        sb.set_script({"auth_mechs": ["OAUTHBEARER"]})
        m = sb.send_and_expect(t, "auth oauthbearer", ["x@example.com"], MSG,
                               rcpts=["x@example.com"], sender=USER)
        s = sb.session_of(m)
        t.is_((s["auth_mech"], s["auth_user"]), ("OAUTHBEARER", USER),
              "auth oauthbearer: the server saw OAUTHBEARER for the account")

        # no PIPELINING offered: the client must not pipeline
        sb.write_config({})
        sb.set_script({"remove_ext": ["PIPELINING"]})
        m = sb.send_and_expect(t, "no PIPELINING",
                               ["a@example.com", "b@example.com"], MSG,
                               rcpts=["a@example.com", "b@example.com"],
                               sender=USER)
        s = sb.session_of(m)
        t.ok("PIPELINING" not in s["ehlo"] and s["violations"] == [],
             "no PIPELINING: not offered, one command at a time (no "
             "violation)", s)

        # every recipient refused: no DATA content sent, 67, nothing queued
        sb.set_script({"rcpt": {"u1@example.com": "550 5.1.1 User unknown",
                                "u2@example.com": "550 5.1.1 User unknown"}})
        n = len(sb.messages(accepted_only=False))
        sessions, queued = len(sb.sessions()), sb.queue_ids()
        rc, _, err = sb.run_sendmail(["u1@example.com", "u2@example.com"], MSG)
        t.is_(rc, 67, "all recipients refused: 67")
        t.is_(len(sb.messages(accepted_only=False)), n,
              "all recipients refused: no message data transferred")
        s = sb.sessions()[sessions:]
        cmds = "".join(s[0]["commands"]) if len(s) == 1 else ""
        # the DATA command itself is pipelined with the RCPTs (RFC 2920):
        # the server refuses it, and no content follows (checked above)
        t.ok("RCPT TO:<u1@example.com>\r\n" in cmds and
             "RCPT TO:<u2@example.com>\r\n" in cmds,
             "all recipients refused: both RCPTs were tried", s)
        t.ok(err.decode().count("refused") == 2,
             "all recipients refused: one line each (%r)" % err.decode())
        t.is_(sb.queue_ids(), queued, "all recipients refused: nothing queued")

        # connection dropped after the final dot: temporary, queued
        sb.set_script({"drop_after_data": True})
        n = len(sb.messages(accepted_only=False))
        ids = [deferred(t, sb, "connection lost after the data")[0]]
        got = sb.messages(accepted_only=False)[n:]
        t.ok(len(got) == 1 and got[0]["reply"] is None and
             got[0]["rcpt_tos"] == ["x@example.com"],
             "connection lost after the data: the server had the data, "
             "gave no reply", got)

        # the server's greeting is 421: temporary
        sb.set_script({"greeting": "421 4.3.2 Service not available"})
        qid, new, _ = deferred(t, sb, "421 greeting")
        ids.append(qid)
        t.like(new, r"421 4\.3\.2", "421 greeting: quoted in the log")

        # 5.7.139: SMTP AUTH disabled for the tenant: queued until an
        # administrator enables it (it is not temporary, so stderr says so)
        sb.set_script({"auth": "535 5.7.139 Authentication unsuccessful, "
                       "SmtpClientAuthentication is disabled for the Tenant."})
        sessions = len(sb.sessions())
        qid, _, err = deferred(t, sb, "535 5.7.139")
        ids.append(qid)
        t.like(err, r"5\.7\.139.*queued as %s" % qid,
               "5.7.139: quoted on stderr with the queue ID")
        s = sb.sessions()[sessions:]
        t.ok(len(s) == 1 and s[0]["auth_failures"] is not None and
             any(c.upper().startswith("AUTH") for c in s[0]["commands"]) and
             not any(c.upper().startswith("MAIL") for c in s[0]["commands"]),
             "no MAIL after a failed AUTH", s)

        # nothing listening: queued, the log says where
        sb.write_config({"port": "1"})
        qid, new, _ = deferred(t, sb, "connection refused")
        ids.append(qid)
        t.like(new, r"relay=127\.0\.0\.1:1 .*status=deferred",
               "connection refused: the log names the host and port")
        rc, out, _ = sb.run_sendmail(["-bp"])
        t.ok(rc == 0 and qid and qid in out.decode() and
             "x@example.com" in out.decode(),
             "mailq lists the waiting message", out.decode())
        t.is_(sorted(sb.queue_ids()), sorted(i for i in ids if i),
              "the queue holds the four deferred messages, nothing else")


run_tests(tests)
