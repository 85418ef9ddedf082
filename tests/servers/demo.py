"""./dev demo: the whole OAuth2 delivery path in a sandbox on loopback.

Starts the mock Microsoft identity platform and the Exchange-shaped SMTP
server, writes a sandbox config, gets a refresh token from the identity
platform (standing in for an interactive login) and stores it with
`bearmail token import`, then sends a message with `sendmail -t`: the
submitter refreshes the token over HTTPS, stores the rotated refresh token,
connects with STARTTLS, authenticates with XOAUTH2 and delivers.  Prints
what the server received."""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--srcdir", required=True)
    a = ap.parse_args()
    os.environ["BEARMAIL_BUILDDIR"] = a.builddir
    os.environ["BEARMAIL_SRCDIR"] = a.srcdir
    import harness
    harness.BUILDDIR = a.builddir

    with harness.Sandbox(seed=False) as sb:
        print("== sandbox in %s" % sb.dir)
        print("   identity platform  https://127.0.0.1:%d  (mock of "
              "login.microsoftonline.com)" % sb.idp_port)
        print("   SMTP server        127.0.0.1:%d  (STARTTLS + XOAUTH2, like "
              "smtp.office365.com)" % sb.smtp_port)
        print("\n== config (%s)" % sb.cfg)
        with open(sb.cfg) as f:
            print("   " + f.read().rstrip().replace("\n", "\n   "))

        print("\n== first token: the identity platform issues a refresh token "
              "(an interactive login stands here);\n   `bearmail token import "
              "work` stores it")
        minted = sb.mint()
        rc, out, err = sb.run_bearmail(["token", "import", "work"],
                                       json.dumps(minted).encode())
        print("   " + (out + err).decode().strip())
        if rc != 0:
            return rc

        message = ("From: Demo Script <%s>\nTo: Bob <bob@example.com>\n"
                   "Bcc: audit@example.com\nSubject: Hello from bearmail\n\n"
                   "This message went through sendmail -t, an OAuth2 refresh\n"
                   "and STARTTLS + AUTH XOAUTH2.\n" % harness.USER).encode()
        print("\n== sendmail -t -v  <<'EOF'")
        print("   " + message.decode().rstrip().replace("\n", "\n   "))
        print("   EOF")
        rc, out, err = sb.run_sendmail(["-t", "-v"], message)
        print("   " + err.decode("utf-8", "replace").rstrip().replace(
            "\n", "\n   "))
        print("   exit status %d" % rc)
        if rc != 0:
            return rc

        msgs = sb.wait_messages(1)
        sess = sb.sessions()[-1]
        print("\n== what the server received")
        print("   TLS: %s   AUTH %s as %s" % (sess["tls"], sess["auth_mech"],
                                              sess["auth_user"]))
        print("   MAIL FROM:<%s>  RCPT TO: %s" % (
            msgs[-1]["mail_from"], ", ".join("<%s>" % r
                                             for r in msgs[-1]["rcpt_tos"])))
        print("   " + msgs[-1]["bytes"].decode("utf-8", "replace").rstrip()
              .replace("\r\n", "\n   "))

        calls = sb.idp_calls()
        print("\n== identity platform calls: %s" % ", ".join(
            "%s %s (%s)" % (c["grant_type"], "ok" if c["ok"] else "failed",
                            c["tenant"]) for c in calls))
        store = sb.token_store()
        st = os.stat(sb.token_file)
        print("== token stored in %s (mode %o): access token valid until "
              "expires_at=%s, refresh token rotated: %s" % (
                  sb.token_file, st.st_mode & 0o777, store.get("expires_at"),
                  store.get("refresh_token") != minted["refresh_token"]))
        print("== log: " + sb.log_text().strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
