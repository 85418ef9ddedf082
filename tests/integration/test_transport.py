"""Transport variants: implicit TLS (tls smtps), OAUTHBEARER, a server
without PIPELINING (nothing pipelined), several recipients refused at RCPT
time, and a server that closes after the data (a temporary failure)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, run_tests, USER  # noqa: E402

MSG = b"Subject: transport\n\nhello\n"


def tests(t):
    with Sandbox(smtps=True) as sb:
        # implicit TLS on the smtps port
        sb.write_config({"tls": "smtps", "port": str(sb.smtps_port)})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "tls smtps: delivered")
        s = sb.sessions()[-1]
        t.ok(s["implicit_tls"] and s["auth_user"] == USER,
             "tls smtps: implicit TLS session, authenticated")
        t.ok(not any(c.upper().startswith("STARTTLS") for c in s["commands"]),
             "tls smtps: no STARTTLS sent")

        # OAUTHBEARER
        sb.write_config({"auth": "oauthbearer"})
        sb.set_script({"auth_mechs": ["OAUTHBEARER"]})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "auth oauthbearer: delivered")
        t.is_(sb.sessions()[-1]["auth_mech"], "OAUTHBEARER",
              "auth oauthbearer: the server saw OAUTHBEARER")

        # no PIPELINING offered: the client must not pipeline
        sb.write_config({})
        sb.set_script({"remove_ext": ["PIPELINING"]})
        rc, _, err = sb.run_sendmail(["a@example.com", "b@example.com"], MSG)
        t.is_(rc, 0, "no PIPELINING: delivered")
        t.is_(sb.sessions()[-1]["violations"], [],
              "no PIPELINING: one command at a time (no violation)")

        # every recipient refused: no DATA content sent, 67
        sb.set_script({"rcpt": {"u1@example.com": "550 5.1.1 User unknown",
                                "u2@example.com": "550 5.1.1 User unknown"}})
        n = len(sb.messages(accepted_only=False))
        rc, _, err = sb.run_sendmail(["u1@example.com", "u2@example.com"], MSG)
        t.is_(rc, 67, "all recipients refused: 67")
        t.is_(len(sb.messages(accepted_only=False)), n,
              "all recipients refused: no message data transferred")
        t.ok(err.decode().count("refused") == 2,
             "all recipients refused: one line each (%r)" % err.decode())

        # connection dropped after the final dot: temporary, 75
        sb.set_script({"drop_after_data": True})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "connection lost after the data: queued, exit 0")
        t.like(sb.log_text(), r"status=deferred", "logged as deferred")

        # the server's greeting is 421: temporary
        sb.set_script({"greeting": "421 4.3.2 Service not available"})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "421 greeting: queued")
        t.like(sb.log_text(), r"421 4\.3\.2", "421 greeting: quoted in the log")

        # 5.7.139: SMTP AUTH disabled for the tenant -> 77
        sb.set_script({"auth": "535 5.7.139 Authentication unsuccessful, "
                       "SmtpClientAuthentication is disabled for the Tenant."})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "535 5.7.139: queued until an administrator fixes it")
        t.like(err.decode(), r"5\.7\.139", "5.7.139: quoted on stderr")
        t.ok(not any(c.upper().startswith("MAIL")
                     for c in sb.sessions()[-1]["commands"]),
             "no MAIL after a failed AUTH")

        # nothing listening: 75, says where
        sb.write_config({"port": "1"})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "connection refused: queued")
        t.like(sb.log_text(), r"127\.0\.0\.1.*queued as",
               "connection refused: the log names the host")
        rc, out, _ = sb.run_sendmail(["-bp"])
        t.like(out.decode(), r"x@example\.com", "mailq lists the waiting message")


run_tests(tests)
