"""What the server and the identity platform can do wrong, and what
bearmail must do then: refuse before sending anything when TLS or AUTH are
missing or the certificate is for another host, honour SIZE, report each
recipient's refusal, refresh and retry a rejected token, carry a 30 MB
message in little memory, and never print a token."""
import json
import os
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


def one_session(t, sb, before, name):
    """The one session a command opened after the first before: the
    session itself, or no_session() (failing the test) when there were
    none or several."""
    new = sb.sessions()[before:]
    t.is_(len(new), 1, "%s: one connection to the server" % name)
    return new[0] if len(new) == 1 else harness.no_session()


def refused(t, sb, name, args, data, want_rc):
    """A permanent refusal: exit want_rc, nothing arrived, nothing queued;
    stderr as text."""
    n, queued = len(sb.messages()), sb.queue_ids()
    rc, _, err = sb.run_sendmail(args, data)
    t.is_(rc, want_rc, "%s: exit %d" % (name, want_rc))
    sb.expect_no_arrival(t, name, n)
    t.is_(sb.queue_ids(), queued, "%s: nothing queued" % name)
    return err.decode("utf-8", "replace")


def write_token_store(sb, store):
    fd = os.open(sb.token_file, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, json.dumps(store).encode())
    os.close(fd)


def refused_before_mail(t, sb):
    # STARTTLS not offered: refused, nothing sent, not even AUTH
    sb.set_script({"remove_ext": ["STARTTLS"]})
    before = len(sb.sessions())
    sb.expect_deferred(t, "no STARTTLS", ["x@example.com"], MSG,
                       r"server does not offer STARTTLS; refusing to "
                       r"continue without TLS")
    s = one_session(t, sb, before, "no STARTTLS")
    t.ok(s["commands"] and no_mail(s) and
         not any(c.upper().startswith("AUTH") for c in s["commands"]),
         "no STARTTLS: no AUTH, MAIL or RCPT on the wire", s["commands"])

    # AUTH not advertised: refused, nothing sent
    sb.set_script({"auth_mechs": []})
    before = len(sb.sessions())
    qid = sb.expect_deferred(t, "no AUTH advertised", ["x@example.com"], MSG,
                             r"server does not offer AUTH XOAUTH2")
    t.like(sb.last_run[2].decode(), r"does not offer AUTH XOAUTH2 .*\(queued "
           r"as %s\)" % qid, "no AUTH: the warning names XOAUTH2 and the ID")
    s = one_session(t, sb, before, "no AUTH advertised")
    t.ok(s["commands"] and no_mail(s), "no AUTH: no MAIL sent", s["commands"])

    # SIZE: a message over the server's limit is refused before MAIL
    sb.set_script({"size": 1000})
    before = len(sb.sessions())
    err = refused(t, sb, "SIZE exceeded", ["x@example.com"],
                  b"Subject: big\n\n" + b"x" * 2000 + b"\n", 65)
    t.like(err, r"1000", "SIZE exceeded: names the limit")
    s = one_session(t, sb, before, "SIZE exceeded")
    t.ok(s["commands"] and no_mail(s), "SIZE exceeded: no MAIL sent",
         s["commands"])


def per_recipient(t, sb):
    # per-recipient results: one refused, one accepted
    sb.set_script({"rcpt": {"bad@example.com": "550 5.1.1 User unknown"}})
    n, mark, queued = len(sb.messages()), sb.log_mark(), sb.queue_ids()
    rc, _, err = sb.run_sendmail(["good@example.com", "bad@example.com"],
                                 MSG)
    t.is_(rc, 67, "one recipient unknown: exit 67")
    t.like(err.decode(), r"bad@example\.com.*550 5\.1\.1 User unknown",
           "unknown recipient: error line quotes the server")
    m = sb.expect_arrival(t, "one recipient unknown", n, err=err)
    t.is_((m["rcpt_tos"], m["mail_from"]), (["good@example.com"], USER),
          "the accepted recipient still got the message")
    t.ok(m["bytes"].startswith(b"Subject: fault\r\n") and
         m["bytes"].endswith(b"\r\n\r\nhello\r\n"),
         "one recipient unknown: the message bytes", m["bytes"])
    new = sb.log_since(mark)
    t.like(new, r"to=<good@example\.com> .*status=sent",
           "the delivery is logged as sent")
    t.like(new, r"to=<bad@example\.com> .*status=bounced",
           "the refusal is logged as bounced")
    t.is_(sb.queue_ids(), queued, "one recipient unknown: nothing queued")

    # From not allowed (5.7.60) -> 77
    sb.set_script({"mail": "550 5.7.60 SMTP; Client does not have "
                   "permissions to send as this sender"})
    err = refused(t, sb, "5.7.60 send-as denied", ["x@example.com"], MSG, 77)
    t.like(err, r"5\.7\.60", "5.7.60: quoted on stderr")

    # temporary 451 on MAIL -> queued, exit 0
    sb.set_script({"mail": "451 4.3.0 Try again later"})
    sb.expect_deferred(t, "451", ["x@example.com"], MSG,
                       r"status=deferred \(sender .*451 4\.3\.0")


def verbose(t, sb):
    # -v: the dialogue, with AUTH redacted and no token anywhere
    sb.set_script({})
    m = sb.send_and_expect(t, "-v", ["-v", "x@example.com"], MSG,
                           rcpts=["x@example.com"], sender=USER)
    e = sb.last_run[2].decode("utf-8", "replace")
    t.like(e, r"(?m)^>>> EHLO ", "-v: shows the dialogue")
    # RFC 4954 lets the initial response ride on the AUTH line or follow a
    # 334; bearmail puts it on the line only when that stays within 512
    # octets, which a Microsoft-sized token (1.5 KB here) never does: so
    # "AUTH XOAUTH2", the 334, then the response, shown as [redacted]
    cmds = sb.session_of(m)["commands"]
    auth = [i for i, c in enumerate(cmds) if c.startswith("AUTH ")]
    t.ok(len(auth) == 1 and cmds[auth[0]] == "AUTH XOAUTH2\r\n" and
         cmds[auth[0] + 1] == "<ok user=%s>\r\n" % USER,
         "-v: the server got AUTH XOAUTH2, then the response after the 334",
         cmds)
    t.like(e, r"(?m)^>>> AUTH XOAUTH2\n<<< 334 \n>>> \[redacted\]\n<<< 235 ",
           "-v: AUTH line shown, the response redacted")
    leaked = [k for k, v in sb.token_store().items()
              if k.endswith("_token") and v and v in e]
    t.is_(leaked, [], "-v: no token in the output")


def refresh(t, sb):
    # the refresh: rotated refresh token stored; the next send reuses it
    calls = len(sb.idp_calls())
    sb.send_and_expect(t, "a cached token", ["x@example.com"], MSG,
                       rcpts=["x@example.com"])
    t.is_(len(sb.idp_calls()), calls, "a valid cached token is reused")
    sb.idp_lifetime(300)   # under 10 minutes: refreshed at once
    old = sb.token_store()
    sb.seed_token_file(old["refresh_token"])
    calls = len(sb.idp_calls())
    sb.send_and_expect(t, "a stale token: refreshed and delivered",
                       ["x@example.com"], MSG, rcpts=["x@example.com"])
    new = sb.token_store()
    t.ok(new["refresh_token"] != old["refresh_token"],
         "the rotated refresh token was stored")
    made = sb.idp_calls()[calls:]
    t.ok(len(made) == 1 and made[0]["grant_type"] == "refresh_token" and
         "offline_access" in made[0]["scope"] and
         made[0]["tenant"] == harness.TENANT,
         "refresh sends scope, to the token's tenant", made)
    sb.idp_lifetime(3600)
    calls = len(sb.idp_calls())
    sb.send_and_expect(t, "the short-lived token is refreshed again",
                       ["x@example.com"], MSG, rcpts=["x@example.com"])
    t.is_([c["grant_type"] for c in sb.idp_calls()[calls:]],
          ["refresh_token"], "the short-lived token: one refresh")


def token_trouble(t, sb):
    # identity platform failing: queued, nothing sent
    sb.seed_token_file(sb.token_store()["refresh_token"])
    sb.idp_fail(count=1, status=503)
    before = len(sb.sessions())
    sb.expect_deferred(t, "identity platform 503", ["x@example.com"], MSG,
                       r"token refresh for account work failed: "
                       r"temporarily_unavailable: AADSTS90033")
    t.is_(len(sb.sessions()), before, "identity platform down: no SMTP")

    # revoked refresh token: queued with the login hint
    sb.revoke()
    sb.expect_deferred(t, "revoked refresh token", ["x@example.com"], MSG,
                       r"AADSTS50173.*bearmail login work")
    t.like(sb.last_run[2].decode(), r"bearmail login work",
           "revoked: says to log in")

    # a token the server refuses: one fresh token, one retry
    sb.seed()
    sb.send_and_expect(t, "a fresh login", ["x@example.com"], MSG,
                       rcpts=["x@example.com"])
    store = sb.token_store()
    store["access_token"] = (store.get("access_token") or "")[:-6] + \
        "AAAAAA"
    write_token_store(sb, store)
    m = sb.send_and_expect(t, "535 5.7.3 on a believed-valid token: "
                           "refreshed, retried", ["x@example.com"], MSG,
                           rcpts=["x@example.com"])
    s = sb.session_of(m)
    t.ok(len(s["auth_failures"]) == 1 and s["auth_user"] == USER,
         "the server did refuse the first token, then accepted the fresh one",
         s)


def big_message(t, sb):
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
    t.is_(os.waitstatus_to_exitcode(status), 0, "30 MB message: exit 0")
    with open(os.path.join(sb.dir, "big.err"), "rb") as f:
        err = f.read()
    m = sb.expect_arrival(t, "30 MB message", n, timeout=60, err=err)
    got = m["bytes"]
    t.ok(got.endswith(b"\r\n\r\n" + line.replace(b"\n", b"\r\n") * count),
         "30 MB message: all of it arrived, CRLF (%d bytes)" % len(got))
    t.ok(usage.ru_maxrss < 32 * 1024, "30 MB message: the submitter "
         "stayed under 32 MB RSS (%d kB)" % usage.ru_maxrss)
    os.unlink(big)


def wrong_host(t):
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
        sb.expect_deferred(t, "wrong-host certificate", ["x@example.com"],
                           MSG, r"certificate verify failed for "
                           r"127\.0\.0\.1: IP address mismatch")
        s = one_session(t, sb, 0, "wrong-host certificate")
        t.ok("STARTTLS\r\n" in s["commands"] and no_mail(s) and
             not any(c.upper().startswith("AUTH") for c in s["commands"]),
             "wrong host: STARTTLS, then nothing sent", s["commands"])


def tests(t):
    with Sandbox() as sb:
        refused_before_mail(t, sb)
        per_recipient(t, sb)
        verbose(t, sb)
        refresh(t, sb)
        token_trouble(t, sb)
        big_message(t, sb)
        t.is_(sb.violations(), [], "no protocol violation in any session")
    wrong_host(t)


run_tests(tests)
