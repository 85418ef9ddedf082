"""Self-test of the test servers (tests/servers/): the mock identity platform
and the Exchange-shaped SMTP server, driven with Python's own urllib, ssl
and smtplib only (no bearmail code), so that the integration tests of the
C code stand on servers that are known to behave.  Prints TAP."""

import base64
import json
import os
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.join(
    os.environ.get("BEARMAIL_SRCDIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", ".."),
    "tests", "servers"))

import harness  # noqa: E402
from harness import USER, TENANT, CLIENT_ID, SCOPE  # noqa: E402


def refresh_form(rt, scope=SCOPE, client_id=CLIENT_ID):
    form = {"grant_type": "refresh_token", "client_id": client_id,
            "refresh_token": rt}
    if scope is not None:
        form["scope"] = scope
    return form


def xoauth2(user, token):
    return base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (
        user, token)).encode()).decode()


def oauthbearer(user, token):
    return base64.b64encode(("n,a=%s,\x01host=127.0.0.1\x01port=587\x01"
                             "auth=Bearer %s\x01\x01" % (user, token))
                            .encode()).decode()


def test_certs(t, sb):
    def verify(cert, host):
        return subprocess.run(["openssl", "verify", "-CAfile", sb.ca,
                               "-verify_hostname", host, cert],
                              capture_output=True).returncode
    t.is_(verify(sb.cert, "localhost"), 0, "server cert verifies for localhost")
    t.ok(verify(sb.wrong_cert, "localhost") != 0,
         "wrong cert fails host name verification")
    t.is_(verify(sb.wrong_cert, "wrong.example"), 0,
          "wrong cert is signed by the same CA")


def check_ms_error(t, status, body, want_status, error, code, name):
    t.is_((status, body.get("error") if isinstance(body, dict) else body),
          (want_status, error), name + ": status and error")
    if not isinstance(body, dict):
        return
    t.is_(body.get("error_codes"), [code], name + ": error_codes")
    desc = body.get("error_description", "")
    t.ok(desc.startswith("AADSTS%d: " % code) and "\r\nTrace ID: " in desc
         and all(body.get(k) for k in ("timestamp", "trace_id",
                                       "correlation_id")),
         name + ": Microsoft-shaped body", repr(body))


def test_idp(t, sb):
    minted = sb.mint()
    rt = minted.get("refresh_token", "")
    t.ok(len(rt) > 500 and "access_token" not in minted,
         "mint gives a long opaque refresh token only")
    status, body = sb.token_call(refresh_form(rt))
    t.is_(status, 200, "refresh_token grant succeeds")
    t.is_((body.get("token_type"), body.get("expires_in"),
           body.get("ext_expires_in")), ("Bearer", 3600, 3600),
          "token_type and lifetimes")
    t.is_(body.get("scope"), "https://outlook.office.com/SMTP.Send",
          "granted scope")
    t.is_(body.get("access_token", "").count("."), 2, "access token is a JWT")
    t.ok(body.get("refresh_token") not in (None, rt),
         "a new refresh token comes back")
    status, err = sb.token_call(refresh_form(rt))
    check_ms_error(t, status, err, 400, "invalid_grant", 70000, "replay")
    rt2 = body["refresh_token"]
    status, err = sb.token_call(refresh_form(rt2, scope=None))
    check_ms_error(t, status, err, 400, "invalid_request", 900144,
                   "missing scope")
    status, err = sb.token_call(refresh_form(rt2), tenant="fabrikam.example")
    check_ms_error(t, status, err, 400, "invalid_grant", 7000012,
                   "other tenant")
    sb.idp_fail(count=1, status=503)
    status, err = sb.token_call(refresh_form(rt2))
    check_ms_error(t, status, err, 503, "temporarily_unavailable", 90033,
                   "injected failure")
    status, body = sb.token_call(refresh_form(rt2), tenant="common")
    t.is_(status, 200, "injected failure happens once; /common works")
    status, body2 = sb.token_call(refresh_form(body["refresh_token"],
                                               scope=SCOPE.split()[0]))
    t.ok(status == 200 and "refresh_token" not in body2,
         "no refresh token without offline_access")
    sb.revoke()
    status, err = sb.token_call(refresh_form(sb.mint()["refresh_token"]))
    t.is_(status, 200, "a token minted after revoke works")
    rt3 = sb.mint()["refresh_token"]
    sb.revoke()
    status, err = sb.token_call(refresh_form(rt3))
    check_ms_error(t, status, err, 400, "invalid_grant", 50173, "revoked")
    form = refresh_form(sb.mint()["refresh_token"])
    form["client_secret"] = "s3cret"
    status, err = sb.token_call(form)
    check_ms_error(t, status, err, 401, "invalid_client", 700025,
                   "secret from a public client")
    sb.register_app("app-1", "app-secret-value")
    status, body = sb.token_call({
        "grant_type": "client_credentials", "client_id": "app-1",
        "client_secret": "app-secret-value",
        "scope": "https://outlook.office365.com/.default"})
    t.ok(status == 200 and "refresh_token" not in body
         and body.get("access_token"), "client_credentials grant", body)
    calls = sb.idp_calls()
    t.ok(len(calls) >= 10 and calls[0]["grant_type"] == "refresh_token"
         and calls[0]["ok"] and not calls[1]["ok"], "calls are recorded")
    dump = json.dumps(calls)
    t.ok(rt not in dump and "app-secret-value" not in dump,
         "calls hold no secret values")


def fresh_token(sb, user=USER):
    status, body = sb.token_call(refresh_form(sb.mint(user=user)
                                              ["refresh_token"]))
    return body["access_token"]


def connect(sb, tls=True):
    s = smtplib.SMTP("127.0.0.1", sb.smtp_port, timeout=10)
    s.ehlo("client.example")
    if tls:
        s.starttls(context=sb.ssl_context())
        s.ehlo("client.example")
    return s


def new_session(t, sb, before, name):
    """The one session opened after the first before (no_session() when
    there were none or several)."""
    new = sb.sessions()[before:]
    t.is_(len(new), 1, "%s: one session recorded" % name)
    return new[0] if len(new) == 1 else harness.no_session()


def reply_or_none(s):
    """(code, text) of the next reply; (None, why) when the server closed."""
    try:
        return s.getreply()
    except smtplib.SMTPException as e:
        return None, str(e).encode()


def test_smtp_gates(t, sb, token):
    before = len(sb.sessions())
    s = smtplib.SMTP("127.0.0.1", sb.smtp_port, timeout=10)
    code, text = s.ehlo("client.example")
    feats = text.decode().splitlines()[1:]
    t.is_(feats, ["SIZE 37748736", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES",
                  "STARTTLS", "8BITMIME", "BINARYMIME", "CHUNKING",
                  "SMTPUTF8"], "EHLO before TLS, as Exchange")
    t.is_(s.docmd("MAIL", "FROM:<%s>" % USER)[0], 530,
          "MAIL before STARTTLS is refused")
    t.is_(s.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token))[0], 504,
          "AUTH before STARTTLS is refused")
    s.starttls(context=sb.ssl_context())
    code, text = s.ehlo("client.example")
    t.ok("AUTH LOGIN XOAUTH2" in text.decode().splitlines() and
         not s.has_extn("starttls"), "EHLO after TLS offers AUTH LOGIN XOAUTH2")
    t.is_(s.docmd("MAIL", "FROM:<%s>" % USER),
          (530, b"5.7.57 Client not authenticated to send mail"),
          "MAIL before AUTH: 530 5.7.57")
    t.is_(s.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token + "x")),
          (535, b"5.7.3 Authentication unsuccessful"), "bad token: 535 5.7.3")
    t.is_(s.docmd("AUTH", "XOAUTH2 " + xoauth2("bob@contoso.example",
                                               token))[0],
          535, "user= other than the token's upn: 535")
    t.is_(s.docmd("AUTH", "LOGIN " + base64.b64encode(USER.encode())
                  .decode())[0], 334, "LOGIN asks for the password")
    t.is_(s.docmd(base64.b64encode(b"hunter2").decode())[0], 535,
          "basic auth is refused")
    t.is_(s.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token)),
          (235, b"2.7.0 Authentication successful"), "good token: 235 2.7.0")
    s.quit()
    sess = new_session(t, sb, before, "gates")
    t.ok("MAIL before STARTTLS" in sess["violations"] and
         "MAIL before AUTH" in sess["violations"] and
         "AUTH before STARTTLS" in sess["violations"],
         "violations recorded", sess["violations"])
    t.is_(sess["commands"][-2:], ["AUTH XOAUTH2 <ok user=%s>\r\n" % USER,
                                  "quit\r\n"], "AUTH recorded redacted")
    t.is_(sess["commands"][2], "AUTH XOAUTH2 <bad>\r\n",
          "AUTH refused before TLS recorded redacted")
    with open(os.path.join(sb.state, "sessions.jsonl")) as f:
        raw = f.read()
    t.ok(token[:40] not in raw and xoauth2(USER, token)[:40] not in raw
         and "dXNlcj1" not in raw and "hunter2" not in raw
         and base64.b64encode(b"hunter2").decode() not in raw,
         "no secret in the recording")
    t.ok(sess["tls"] and sess["auth_user"] == USER and sess["quit"],
         "session tls/auth_user/quit")


def test_smtp_continuations(t, sb, token):
    before = len(sb.sessions())
    s = connect(sb)
    t.is_(s.docmd("AUTH", "XOAUTH2"), (334, b""), "XOAUTH2 without IR: 334")
    t.is_(s.docmd(xoauth2(USER, token))[0], 235, "XOAUTH2 after 334: 235")
    s.quit()
    s = connect(sb)
    t.is_(s.docmd("AUTH", "OAUTHBEARER " + oauthbearer(USER, token))[0], 235,
          "OAUTHBEARER: 235")
    s.quit()
    s = connect(sb)
    code, text = s.docmd("AUTH", "OAUTHBEARER " + oauthbearer(USER, "x.y.z"))
    t.ok(code == 334 and b"invalid_token" in base64.b64decode(text),
         "OAUTHBEARER failure: RFC 7628 error challenge")
    t.is_(s.docmd("AQ==")[0], 535, "then 535 after the client's ^A")
    s.quit()
    sb.idp_lifetime(0)
    expired = fresh_token(sb)
    sb.idp_lifetime(3600)
    s = connect(sb)
    t.is_(s.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, expired))[0], 535,
          "expired token: 535")
    s.quit()
    cmds = sb.sessions()[before]["commands"] if \
        len(sb.sessions()) > before else []
    t.ok("AUTH XOAUTH2\r\n" in cmds and
         "<ok user=%s>\r\n" % USER in cmds, "continuation redacted", cmds)


def test_smtp_message(t, sb, token):
    sb.set_script({"rcpt": {"bad@example.com": "550 5.1.1 User unknown"}})
    n = len(sb.messages())
    s = connect(sb)
    s.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token))
    s.send(("MAIL FROM:<%s> RET=HDRS ENVID=id+2B1\r\n"
            "RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE "
            "ORCPT=rfc822;bob@example.com\r\n"
            "RCPT TO:<bad@example.com>\r\nDATA\r\n" % USER).encode())
    codes = [s.getreply()[0] for _ in range(4)]
    t.is_(codes, [250, 250, 550, 354], "pipelined MAIL/RCPT/RCPT/DATA replies")
    body = (b"Subject: t\r\n\r\nline1\nbare-lf\r\nbare\rcr\r\n"
            b"..dot\r\n.\r\n")
    s.send(body)
    code, text = reply_or_none(s)
    t.ok(code == 250 and text.startswith(b"2.0.0 OK <"), "message accepted",
         (code, text))
    if code is not None:
        s.quit()
    m = sb.expect_arrival(t, "pipelined message", n)
    t.is_(m["bytes"], b"Subject: t\r\n\r\nline1\nbare-lf\r\nbare\rcr\r\n"
          b".dot\r\n", "exact bytes recorded (bare LF/CR kept, unstuffed)")
    t.is_((m["mail_from"], m["mail_options"]),
          (USER, ["RET=HDRS", "ENVID=id+2B1"]), "MAIL and DSN params")
    t.is_((m["rcpt_tos"], m["rcpt_options"]),
          (["bob@example.com"], [["NOTIFY=SUCCESS,FAILURE",
                                  "ORCPT=rfc822;bob@example.com"]]),
          "RCPT and DSN params")
    t.is_(m["rejected"], [["bad@example.com", "550 5.1.1 User unknown"]],
          "scripted 550 on a recipient recorded")
    t.is_(sb.session_of(m)["violations"], [], "a correct pipeline: clean")


def test_smtp_script(t, sb, token):
    sb.set_script({"greeting": "421 4.3.2 Service not available"})
    try:
        smtplib.SMTP("127.0.0.1", sb.smtp_port, timeout=10)
        t.ok(False, "scripted greeting 421")
    except smtplib.SMTPConnectError as e:
        t.is_(e.smtp_code, 421, "scripted greeting 421")
    sb.set_script({"remove_ext": ["PIPELINING", "STARTTLS"]})
    before = len(sb.sessions())
    s = smtplib.SMTP("127.0.0.1", sb.smtp_port, timeout=10)
    s.ehlo("x")
    t.ok(not s.has_extn("starttls") and not s.has_extn("pipelining"),
         "remove_ext removes STARTTLS and PIPELINING")
    s.send(b"NOOP\r\nNOOP\r\n")
    s.getreply()
    s.getreply()
    s.quit()
    t.ok(any("without PIPELINING" in v for v in new_session(
        t, sb, before, "remove_ext")["violations"]),
        "pipelining without PIPELINING is noticed")
    sb.set_script({"drop_after_data": True, "mail": "250 2.1.0 fine",
                   "auth": None})
    seen = len(sb.messages(accepted_only=False))
    s = connect(sb)
    s.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token))
    try:
        s.sendmail(USER, ["x@example.com"], b"Subject: d\r\n\r\nx\r\n")
        t.ok(False, "drop_after_data closes without a reply")
    except smtplib.SMTPServerDisconnected:
        t.ok(True, "drop_after_data closes without a reply")
    t.is_([(m["bytes"], m["reply"], m["accepted"])
           for m in sb.messages(accepted_only=False)[seen:]],
          [(b"Subject: d\r\n\r\nx\r\n", None, False)],
          "dropped message recorded as unanswered")
    sb.set_script({})
    n = len(sb.messages())
    s = connect(sb)
    s.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token))
    s.docmd("MAIL", "FROM:<%s> BODY=BINARYMIME" % USER)
    s.docmd("RCPT", "TO:<bob@example.com>")
    s.send(b"BDAT 5\r\nab\r\nc")
    c1 = s.getreply()[0]
    s.send(b"BDAT 3 LAST\r\n\n\r\n")
    c2 = reply_or_none(s)[0]
    if c2 is not None:
        s.quit()
    m = sb.expect_arrival(t, "BDAT", n)
    t.is_((c1, c2, m["bytes"], m["via"]),
          (250, 250, b"ab\r\nc\n\r\n", "BDAT"), "BDAT chunks")


def test_smtps(t, sb, token):
    s = smtplib.SMTP_SSL("127.0.0.1", sb.smtps_port, timeout=10,
                         context=sb.ssl_context())
    s.ehlo("client.example")
    t.ok(s.has_extn("auth") and not s.has_extn("starttls"),
         "implicit TLS listener: AUTH, no STARTTLS")
    t.is_(s.docmd("AUTH", "XOAUTH2 " + xoauth2(USER, token))[0], 235,
          "implicit TLS listener: AUTH works")
    s.quit()


def main(t):
    with harness.Sandbox(seed=False, smtps=True) as sb:
        test_certs(t, sb)
        test_idp(t, sb)
        token = fresh_token(sb)
        test_smtp_gates(t, sb, token)
        test_smtp_continuations(t, sb, token)
        test_smtp_message(t, sb, token)
        test_smtp_script(t, sb, token)
        test_smtps(t, sb, token)


if __name__ == "__main__":
    harness.run_tests(main)
