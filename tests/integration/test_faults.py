"""What the server and the identity platform can do wrong, and what
bearmail must do then: refuse before sending anything when TLS or AUTH are
missing or the certificate is for another host, honour SIZE, report each
recipient's refusal, refresh and retry a rejected token, carry a 30 MB
message in little memory, and never print a token."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import harness  # noqa: E402
from harness import Sandbox, run_tests, USER  # noqa: E402

MSG = b"Subject: fault\n\nhello\n"


def no_mail(sess):
    return not any(c.upper().startswith(("MAIL", "RCPT", "DATA", "BDAT"))
                   for c in sess["commands"])


def tests(t):
    with Sandbox() as sb:
        # STARTTLS not offered: refused, nothing sent, not even AUTH
        sb.set_script({"remove_ext": ["STARTTLS"]})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "no STARTTLS: not sent, queued (exit 0)")
        t.like(sb.log_text(), r"STARTTLS.*queued as",
               "no STARTTLS: the log says why it waits")
        s = sb.sessions()[-1]
        t.ok(no_mail(s) and not any(c.upper().startswith("AUTH")
                                    for c in s["commands"]),
             "no STARTTLS: no AUTH, MAIL or RCPT on the wire")

        # AUTH not advertised: refused, nothing sent
        sb.set_script({"auth_mechs": []})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "no AUTH advertised: not sent, queued")
        t.like(err.decode(), r"(?i)xoauth2", "no AUTH: the warning names XOAUTH2")
        t.ok(no_mail(sb.sessions()[-1]), "no AUTH: no MAIL sent")

        # SIZE: a message over the server's limit is refused before MAIL
        sb.set_script({"size": 1000})
        rc, _, err = sb.run_sendmail(["x@example.com"],
                                     b"Subject: big\n\n" + b"x" * 2000 + b"\n")
        t.is_(rc, 65, "SIZE exceeded: exit 65")
        t.like(err.decode(), r"1000", "SIZE exceeded: names the limit")
        t.ok(no_mail(sb.sessions()[-1]), "SIZE exceeded: no MAIL sent")

        # per-recipient results: one refused, one accepted
        sb.set_script({"rcpt": {"bad@example.com": "550 5.1.1 User unknown"}})
        n = len(sb.messages())
        rc, _, err = sb.run_sendmail(["good@example.com", "bad@example.com"],
                                     MSG)
        t.is_(rc, 67, "one recipient unknown: exit 67")
        t.like(err.decode(), r"bad@example\.com.*550 5\.1\.1 User unknown",
               "unknown recipient: error line quotes the server")
        msgs = sb.wait_messages(n + 1)
        t.ok(len(msgs) == n + 1 and msgs[-1]["rcpt_tos"] == ["good@example.com"],
             "the accepted recipient still got the message")
        t.like(sb.log_text(), r"to=<bad@example\.com>.*status=bounced",
               "the refusal is logged as bounced")

        # From not allowed (5.7.60) -> 77
        sb.set_script({"mail": "550 5.7.60 SMTP; Client does not have "
                       "permissions to send as this sender"})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 77, "5.7.60 send-as denied: exit 77")

        # temporary 451 on MAIL -> queued, exit 0
        sb.set_script({"mail": "451 4.3.0 Try again later"})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "451: queued, exit 0")
        t.like(sb.log_text(), r"status=deferred \(sender .*451 4\.3\.0.*queued as",
               "451: logged as deferred with the reply")

        # -v: the dialogue, with AUTH redacted and no token anywhere
        sb.set_script({})
        rc, _, err = sb.run_sendmail(["-v", "x@example.com"], MSG)
        e = err.decode("utf-8", "replace")
        t.is_(rc, 0, "-v: delivered")
        t.like(e, r"EHLO", "-v: shows the dialogue")
        t.like(e, r">>> (AUTH XOAUTH2 )?\[redacted\]", "-v: AUTH line redacted")
        store = sb.token_store()
        t.ok(store["access_token"] not in e and store["refresh_token"] not in e,
             "-v: no token in the output")

        # the refresh: rotated refresh token stored; the next send reuses it
        calls = len(sb.idp_calls())
        rc, _, _ = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(len(sb.idp_calls()), calls, "a valid cached token is reused")
        sb.idp_lifetime(300)   # under 10 minutes: refreshed at once
        old = sb.token_store()
        sb.seed_token_file(old["refresh_token"])
        rc, _, _ = sb.run_sendmail(["x@example.com"], MSG)
        new = sb.token_store()
        t.is_(rc, 0, "a stale token: refreshed and delivered")
        t.ok(new["refresh_token"] != old["refresh_token"],
             "the rotated refresh token was stored")
        last = sb.idp_calls()[-1]
        t.ok(last["grant_type"] == "refresh_token" and "offline_access" in
             last["scope"] and last["tenant"] == harness.TENANT,
             "refresh sends scope, to the token's tenant")
        sb.idp_lifetime(3600)
        rc, _, _ = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "the short-lived token is refreshed again")

        # identity platform failing: 75, nothing sent
        sb.seed_token_file(sb.token_store()["refresh_token"])
        sb.idp_fail(count=1, status=503)
        before = len(sb.sessions())
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "identity platform 503: queued, exit 0")
        t.is_(len(sb.sessions()), before, "identity platform down: no SMTP")

        # revoked refresh token: 78 and the login hint
        sb.revoke()
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "revoked refresh token: queued, exit 0")
        t.like(err.decode(), r"bearmail login work", "revoked: says to log in")
        t.like(sb.log_text().splitlines()[-1], r"bearmail login work",
               "revoked: the log line says to log in")

        # a token the server refuses: one fresh token, one retry
        sb.seed()
        rc, _, _ = sb.run_sendmail(["x@example.com"], MSG)
        store = sb.token_store()
        store["access_token"] = store["access_token"][:-6] + "AAAAAA"
        fd = os.open(sb.token_file, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, __import__("json").dumps(store).encode())
        os.close(fd)
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "535 5.7.3 on a believed-valid token: refreshed, retried")
        t.ok(len(sb.sessions()[-1]["auth_failures"]) == 1,
             "the server did refuse the first token, then accepted the fresh one")

        # a 30 MB message: delivered whole, the submitter stays small
        n = len(sb.messages())
        line = b"0123456789" * 7 + b"\n"
        count = 30 * 1024 * 1024 // len(line)
        big = os.path.join(sb.dir, "big.eml")
        with open(big, "wb") as f:
            f.write(b"Subject: big\n\n")
            for _ in range(count // 1024):
                f.write(line * 1024)
            f.write(line * (count % 1024))
        with open(big, "rb") as fin, open(os.path.join(sb.dir, "big.err"),
                                           "wb") as ferr:
            p = subprocess.Popen([os.path.join(harness.BUILDDIR, "sendmail"),
                                  "-i", "x@example.com"], stdin=fin,
                                 stdout=subprocess.DEVNULL, stderr=ferr,
                                 env=sb.env(), cwd=sb.dir)
            _, status, usage = os.wait4(p.pid, 0)
        t.is_(os.waitstatus_to_exitcode(status), 0, "30 MB message: delivered")
        msgs = sb.wait_messages(n + 1, timeout=60)
        got = msgs[-1]["bytes"] if len(msgs) > n else b""
        t.ok(got.endswith(b"\r\n\r\n" + line.replace(b"\n", b"\r\n") * count),
             "30 MB message: all of it arrived, CRLF (%d bytes)" % len(got))
        t.ok(usage.ru_maxrss < 32 * 1024, "30 MB message: the submitter "
             "stayed under 32 MB RSS (%d kB)" % usage.ru_maxrss)
        os.unlink(big)

    # a certificate for the wrong host: refused, nothing sent
    with Sandbox() as sb:
        sb.procs[1].kill()
        sb.procs[1].wait()
        proc, ports = harness._start(
            [harness.PY, os.path.join(harness.HERE, "smtpd.py"), "--cert",
             sb.wrong_cert, "--key", sb.wrong_key, "--state", sb.state,
             "--port", "0", "--watch-stdin", "--script", sb.script_path],
            "smtpd.py", sb.smtpd_log)
        sb.procs.append(proc)
        sb.write_config({"port": str(ports["port"])})
        rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
        t.is_(rc, 0, "wrong-host certificate: refused, queued")
        t.like(sb.log_text(), r"(?i)certificate", "wrong host: says certificate")
        t.ok(all(no_mail(s) for s in sb.sessions()),
             "wrong host: nothing sent")


run_tests(tests)
