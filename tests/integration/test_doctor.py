"""bearmail doctor, status and setup against the sandbox: a healthy
account passes every check and sends no mail; SMTP AUTH disabled (535
5.7.139) gets the Set-CASMailbox advice; a revoked refresh token gets the
login advice; a server without STARTTLS is named; status shows token
expiry and LOGIN NEEDED (and --check exits 78); setup finds the tenant
through OpenID discovery and writes a private configuration file.  No
token appears in any output.  Each check of the wire reads the one
session that doctor run opened, not whichever came last."""
import os
import re
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import harness  # noqa: E402
from harness import Sandbox, run_tests, USER, CLIENT_ID  # noqa: E402

CONTOSO_GUID = str(uuid.uuid5(uuid.NAMESPACE_DNS, "contoso.example"))


def sent_mail(sessions):
    """Commands of a mail transaction seen in any session."""
    return [c for s in sessions for c in s["commands"]
            if c.upper().startswith(("MAIL", "RCPT", "DATA", "BDAT"))]


def secrets_of(sb):
    try:
        store = sb.token_store()
    except (OSError, ValueError):
        return []
    return [v for v in (store.get("access_token"),
                        store.get("refresh_token")) if v]


def no_secret(t, sb, text, name):
    leaked = [s[:12] for s in secrets_of(sb) if s in text]
    t.ok(not leaked and not re.search(r"eyJ[\w-]{20,}\.", text),
         "%s: no token in the output" % name, diag=leaked)


def doctor(sb, args=()):
    rc, out, err = sb.run_bearmail(["doctor", *args])
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def dialogue(session):
    """A session's commands, without line endings or the EHLO name."""
    return [re.sub(r"^EHLO \S+$", "EHLO", c.rstrip("\r\n"))
            for c in session["commands"]]


def doctor_sessions(t, sb, before, name, want):
    """The sessions the doctor run opened (those after the first before):
    want is the dialogue of each, in order (first the probe that only
    reads the EHLO answer); returns them, or no_session() for each
    missing."""
    new = sb.sessions()[before:]
    t.is_([dialogue(s) for s in new], want, "%s: the connections and what "
          "was said on each" % name)
    return new + [harness.no_session()] * (len(want) - len(new))


def test_healthy(t, sb):
    before = len(sb.sessions())
    rc, out, err = doctor(sb)
    t.is_(rc, 0, "healthy: doctor exits 0")
    for what in (r"ok +configuration .*\(mode 0600", r"ok +token store file",
                 r"ok +CA file", r"ok +DNS", r"ok +connect",
                 r"ok +STARTTLS offered", r"ok +TLS: certificate valid",
                 r"ok +token audience https://outlook\.office\.com",
                 r"ok +token permissions: SMTP\.Send",
                 r"ok +token user " + re.escape(USER),
                 r"ok +token valid for \d+ min",
                 r"ok +AUTH XOAUTH2 as %s accepted" % re.escape(USER),
                 r"all checks passed"):
        t.like(out, what, "healthy: " + what.replace("\\", "").split("+")[-1])
    t.ok("FAIL" not in out, "healthy: no FAIL line", diag=out)
    probe, s = doctor_sessions(t, sb, before, "healthy", [
        ["EHLO", "QUIT"],
        ["EHLO", "STARTTLS", "EHLO", "AUTH XOAUTH2", "<ok user=%s>" % USER,
         "RSET", "QUIT"]])[:2]
    t.is_(sent_mail([probe, s]), [], "healthy: no MAIL/RCPT/DATA sent")
    t.ok(s["tls"] and s["auth_user"] == USER and s["quit"],
         "healthy: over TLS, authenticated, then RSET and QUIT", s)
    t.is_(probe["violations"] + s["violations"], [],
          "healthy: no protocol violations")
    no_secret(t, sb, out + err, "healthy")


def test_auth_disabled(t, sb):
    sb.set_script({"auth": "535 5.7.139 Authentication unsuccessful, "
                   "SmtpClientAuthentication is disabled for the Tenant."})
    before = len(sb.sessions())
    rc, out, err = doctor(sb)
    t.is_(rc, 77, "5.7.139: exit 77 (permission)")
    t.like(out, r"FAIL +AUTH XOAUTH2 .*535 5\.7\.139", "5.7.139: FAIL line "
           "quotes the reply")
    t.ok("Set-CASMailbox -Identity alice@contoso.example "
         "-SmtpClientAuthenticationDisabled $false" in out,
         "5.7.139: the Set-CASMailbox fix for the mailbox", diag=out)
    t.ok("Set-TransportConfig -SmtpClientAuthenticationDisabled $false"
         in out, "5.7.139: the tenant-wide fix")
    doctor_sessions(t, sb, before, "5.7.139", [
        ["EHLO", "QUIT"],
        ["EHLO", "STARTTLS", "EHLO", "AUTH XOAUTH2", "<ok user=%s>" % USER,
         "QUIT"]])
    no_secret(t, sb, out + err, "5.7.139")

    sb.set_script({"auth": "535 5.7.3 Authentication unsuccessful"})
    rc, out, _ = doctor(sb)
    t.is_(rc, 77, "5.7.3: exit 77")
    t.like(out, r"New-ServicePrincipal -AppId .*Add-MailboxPermission "
           r"-Identity alice@contoso\.example", "5.7.3: app-only advice")


def test_no_starttls(t, sb):
    sb.set_script({"remove_ext": ["STARTTLS"]})
    before = len(sb.sessions())
    rc, out, err = doctor(sb)
    t.is_(rc, 75, "no STARTTLS: exit 75")
    t.like(out, r"FAIL +.*server does not offer STARTTLS", "no STARTTLS: "
           "says so")
    t.like(out, r"skip +AUTH", "no STARTTLS: AUTH skipped")
    # the probe sees no STARTTLS offered: no second connection, no AUTH
    doctor_sessions(t, sb, before, "no STARTTLS", [["EHLO", "QUIT"]])
    sb.set_script({})


def test_status(t, sb):
    rc, out, _ = sb.run_bearmail(["status"])
    out = out.decode()
    t.is_(rc, 0, "status: exit 0")
    t.like(out, r"account work \(default\)", "status: names the account")
    t.like(out, r"token store +file .*tokens/work\.json", "status: the store")
    t.like(out, r"access token +valid for \d+ min", "status: token expiry")
    t.like(out, r"last refresh +\d{4}-\d\d-\d\d ", "status: last refresh")
    t.like(out, r"login +not needed", "status: no login needed")
    t.like(out, r"queue +\S", "status: a queue line")
    rc, _, _ = sb.run_bearmail(["status", "--check"])
    t.is_(rc, 0, "status --check: 0 when all is well")
    no_secret(t, sb, out, "status")


def test_revoked(t, sb):
    sb.revoke()
    sb.seed_token_file(sb.token_store()["refresh_token"])
    rc, out, err = doctor(sb)
    t.is_(rc, 78, "revoked: doctor exits 78")
    t.like(out, r"FAIL +access token: .*AADSTS50173", "revoked: the AADSTS "
           "code")
    t.like(out, r"fix: +run `bearmail login work`", "revoked: login advice")
    t.like(out, r"skip +AUTH", "revoked: AUTH skipped")
    no_secret(t, sb, out + err, "revoked")
    rc, out, err = sb.run_bearmail(["status"])
    t.like(out.decode(), r"LOGIN NEEDED: run `bearmail login work`",
           "revoked: status says LOGIN NEEDED")
    rc, _, err = sb.run_bearmail(["status", "--check"])
    t.is_(rc, 78, "revoked: status --check exits 78")
    t.is_(sent_mail(sb.sessions()), [], "doctor never sent mail")
    t.is_(sb.messages(accepted_only=False), [], "no message reached the "
          "server")


def test_usage(t, sb):
    rc, _, err = sb.run_bearmail(["doctor", "nosuch"])
    t.is_(rc, 78, "doctor: unknown account is 78")
    rc, _, _ = sb.run_bearmail(["status", "--bogus"])
    t.is_(rc, 64, "status: bad option is 64")


def run_setup(sb, answers, args=(), config=None):
    env = {"BEARMAIL_CONFIG": config}
    rc, out, err = sb.run_bearmail(
        ["setup", "--no-login", "--authority", sb.authority, "--ca-file",
         sb.ca, *args], answers.encode(), env=env)
    return rc, err.decode("utf-8", "replace")


def test_setup(t, sb):
    path = os.path.join(sb.dir, "config", "bearmail", "config")
    rc, err = run_setup(sb, "\n\nbob@contoso.example\n%s\n\n\n" % CLIENT_ID)
    t.is_(rc, 0, "setup: exit 0")
    t.like(err, r"contoso\.example belongs to tenant " + CONTOSO_GUID,
           "setup: tenant found by discovery")
    t.ok(os.path.exists(path), "setup: wrote ~/.config/bearmail/config")
    t.is_(oct(os.stat(path).st_mode & 0o777), "0o600", "setup: file is 0600")
    t.is_(oct(os.stat(os.path.dirname(path)).st_mode & 0o777), "0o700",
          "setup: directory is 0700")
    text = open(path, encoding="utf-8").read()
    for line in ("account work", "provider     outlook",
                 "user         bob@contoso.example",
                 "tenant       " + CONTOSO_GUID,
                 "client_id    " + CLIENT_ID, "token_store  auto",
                 "authority    " + sb.authority, "account default : work"):
        t.ok(line in text, "setup: config has '%s'" % line, diag=text)
    t.like(err, r"bearmail login work", "setup: says how to sign in")
    t.like(err, r"bearmail send-test work bob@contoso\.example",
           "setup: test command")

    rc, err = run_setup(sb, "\n\nbob@contoso.example\n%s\n\n\n" % CLIENT_ID)
    t.is_(rc, 73, "setup: refuses to overwrite")
    t.like(err, r"--force", "setup: names --force")
    t.ok(open(path, encoding="utf-8").read() == text,
         "setup: the existing file is untouched")

    rc, err = run_setup(sb, "home\noutlook\nnot an address\n"
                        "carol@unknown.example\nnot-a-guid\n%s\n\nfile\n"
                        % CLIENT_ID, ["--force"])
    text = open(path, encoding="utf-8").read()
    t.is_(rc, 0, "setup --force: exit 0 after re-asked answers")
    t.like(err, r"an address such as", "setup: a bad address is re-asked")
    t.like(err, r"not a Microsoft 365 domain", "setup: unknown domain said")
    t.ok("tenant       organizations" in text and "token_store  file" in text
         and "account home" in text, "setup --force: organizations "
         "fallback, file store, new account", diag=text)

    other = os.path.join(sb.dir, "explicit.conf")
    rc, err = run_setup(sb, "x\n\nd@contoso.example\n%s\n\n\n" % CLIENT_ID,
                        config=other)
    t.ok(rc == 0 and os.path.exists(other), "setup: $BEARMAIL_CONFIG is "
         "the target")
    rc, err = run_setup(sb, "", config=os.path.join(sb.dir, "none.conf"))
    t.is_(rc, 64, "setup: no answers on stdin is a usage error")
    t.ok(not os.path.exists(os.path.join(sb.dir, "none.conf")),
         "setup: nothing written without answers")


def tests(t):
    with Sandbox() as sb:
        test_healthy(t, sb)
        test_status(t, sb)
        test_auth_disabled(t, sb)
        sb.set_script({})
        test_no_starttls(t, sb)
        test_usage(t, sb)
        test_revoked(t, sb)
    with Sandbox(seed=False) as sb:
        test_setup(t, sb)


run_tests(tests)
