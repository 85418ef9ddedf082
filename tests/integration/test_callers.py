"""Each caller's command line, end to end: the real sendmail shim and
submitter against the Exchange-shaped server, authenticated with a token
refreshed from the mock identity platform.  Checks the bytes on the wire."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, run_tests, USER  # noqa: E402

BODY = b"Subject: test\n\nhello\n"


def last_message(sb, n):
    msgs = sb.wait_messages(n)
    return msgs[-1] if len(msgs) >= n else None


def header_block(data):
    return data.split(b"\r\n\r\n", 1)[0]


def no_bare_newlines(data):
    return re.search(rb"(?<!\r)\n|\r(?!\n)", data) is None


def check_sent(t, sb, n, rc, err, name, rcpts, sender=USER):
    t.is_(rc, 0, "%s: exit 0" % name)
    if rc:
        t.diag(err.decode("utf-8", "replace"))
    m = last_message(sb, n)
    t.ok(m is not None, "%s: the server received the message" % name)
    if m is None:
        return None
    t.is_(sorted(m["rcpt_tos"]), sorted(rcpts), "%s: envelope recipients" % name)
    t.is_(m["mail_from"], sender, "%s: envelope sender" % name)
    t.ok(no_bare_newlines(m["bytes"]), "%s: no bare CR or LF on the wire" % name)
    return m


def tests(t):
    with Sandbox() as sb:
        n = 0
        # PHP mail(): sh -c 'sendmail -t -i'; CRLF headers, LF body
        php = (b"To: bob@example.com\r\nSubject: PHP\r\nX-PHP-Originating-Script:"
               b" 33:index.php\r\n\r\nline one\nline two\n.\nafter dot\n")
        rc, _, err = sb.run_sendmail(["-t", "-i"], php)
        n += 1
        m = check_sent(t, sb, n, rc, err, "php -t -i", ["bob@example.com"])
        if m:
            t.ok(b"line one\r\nline two\r\n.\r\nafter dot\r\n" in m["bytes"],
                 "php: lone dot kept with -i, LF turned into CRLF")
            t.ok(b"\r\nFrom: " in m["bytes"] or m["bytes"].startswith(b"From: "),
                 "php: From added")
        sess = sb.sessions()[-1]
        t.is_(sess["auth_user"], USER, "the session authenticated as the account")
        t.is_(sess["auth_mech"], "XOAUTH2", "with XOAUTH2")
        t.ok(sess["tls"], "over TLS")
        t.is_(sb.violations(), [], "no protocol violations")

        # PHP with the 5th argument -f
        rc, _, err = sb.run_sendmail(["-t", "-i", "-f" + USER],
                                     b"To: carol@example.com\nSubject: x\n\nhi\n")
        n += 1
        check_sent(t, sb, n, rc, err, "php -fuser", ["carol@example.com"])
        rc, _, err = sb.run_sendmail(["-t", "-i", "-f", USER],
                                     b"To: carol@example.com\nSubject: x\n\nhi\n")
        n += 1
        check_sent(t, sb, n, rc, err, "php -f user", ["carol@example.com"])

        # mutt: argv recipients after --, DSN options, 8BITMIME
        mutt = ("From: Alice <%s>\nTo: a@example.com\nCc: b@example.com\n"
                "Bcc: hidden@example.com\nSubject: mutt\n\nb\xc3\xa9t\xc3\xa9\n"
                % USER).encode()
        rc, _, err = sb.run_sendmail(
            ["-oem", "-oi", "-B8BITMIME", "-f", USER, "-N", "success,failure",
             "-R", "hdrs", "-V", "env123", "--", "a@example.com",
             "b@example.com", "hidden@example.com"], mutt)
        n += 1
        m = check_sent(t, sb, n, rc, err, "mutt",
                       ["a@example.com", "b@example.com", "hidden@example.com"])
        if m:
            t.ok(b"Bcc:" not in header_block(m["bytes"]), "mutt: Bcc removed")
            opts = " ".join(m["mail_options"]).upper()
            t.ok("BODY=8BITMIME" in opts, "mutt: BODY=8BITMIME sent")
            t.ok("RET=HDRS" in opts and "ENVID=ENV123" in opts,
                 "mutt: DSN RET and ENVID sent (%s)" % opts)
            ro = [" ".join(o).upper() for o in m["rcpt_options"]]
            t.ok(all("NOTIFY=SUCCESS,FAILURE" in o for o in ro),
                 "mutt: NOTIFY on every recipient (%s)" % ro)

        # Debian cron: -FCronDaemon -i -B8BITMIME -oem user, one word a,b
        cron = (b"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host>"
                b" ls\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8"
                b"\n\nfile1\nfile2\n")
        rc, _, err = sb.run_sendmail(
            ["-FCronDaemon", "-i", "-B8BITMIME", "-oem",
             "ops@example.com,dev@example.com"], cron)
        n += 1
        m = check_sent(t, sb, n, rc, err, "cron",
                       ["ops@example.com", "dev@example.com"])
        if m:
            h = header_block(m["bytes"])
            t.ok(re.search(rb"\r\nFrom: \"?Cron Daemon\"? <%s>" % USER.encode(),
                           b"\r\n" + h) is not None,
                 "cron: From rewritten to the account, name kept")
            t.ok(b"Reply-To: root@host.example" in h,
                 "cron: the original From moved to Reply-To")
            t.ok(re.search(rb"(?m)^Date: ", h.replace(b"\r\n", b"\n")),
                 "cron: Date added")
            t.ok(re.search(rb"(?m)^Message-ID: <[^>]+@host\.example>",
                           h.replace(b"\r\n", b"\n")), "cron: Message-ID added")

        # git send-email: -i -f from rcpts (no --)
        git = ("From: Alice <%s>\nTo: list@example.com\nSubject: [PATCH] x\n"
               "Message-ID: <patch-1@example>\n\n---\n diff\n" % USER).encode()
        rc, _, err = sb.run_sendmail(["-i", "-f", USER, "list@example.com",
                                      "maint@example.com"], git)
        n += 1
        m = check_sent(t, sb, n, rc, err, "git send-email",
                       ["list@example.com", "maint@example.com"])
        if m:
            t.ok(b"Message-ID: <patch-1@example>" in m["bytes"],
                 "git: its Message-ID kept")

        # fail2ban: no -i, no final newline, -f "<sender>"
        rc, _, err = sb.run_sendmail(
            ["-f", "<%s>" % USER, "admin@example.com"],
            b"Subject: [Fail2Ban] sshd: banned 1.2.3.4\n\nbanned")
        n += 1
        m = check_sent(t, sb, n, rc, err, "fail2ban", ["admin@example.com"])
        if m:
            t.ok(m["bytes"].endswith(b"\r\nbanned\r\n"),
                 "fail2ban: a final CRLF added to the body")

        # s-nail: -i -m -v -f from -F name -- rcpt
        rc, _, err = sb.run_sendmail(
            ["-i", "-m", "-f", USER, "-F", "Alice Example", "--",
             "dave@example.com"], b"Subject: s-nail\n\nx\n")
        n += 1
        m = check_sent(t, sb, n, rc, err, "s-nail", ["dave@example.com"])
        if m:
            t.ok(b"From: Alice Example <%s>" % USER.encode() in m["bytes"],
                 "s-nail: From made from -F")

        # sudo / unattended-upgrades: -t / -oi -t with To: root (aliases)
        with open(sb.aliases, "a") as f:
            f.write("root: admin@example.com\n")
        rc, _, err = sb.run_sendmail(["-oi", "-t"],
                                     b"To: root\nSubject: upgrades\n\nok\n")
        n += 1
        check_sent(t, sb, n, rc, err, "unattended-upgrades (root alias)",
                   ["admin@example.com"])

        # at: -i user
        rc, _, err = sb.run_sendmail(["-i", "root"], b"Subject: at job\n\ndone\n")
        n += 1
        check_sent(t, sb, n, rc, err, "at", ["admin@example.com"])

        # one log line per message, never a token
        log = sb.log_text()
        t.ok(len(re.findall(r"status=sent", log)) >= n,
             "a log line per message with status=sent")
        store = sb.token_store()
        secrets = [s for s in (store.get("access_token"),
                               store.get("refresh_token")) if s]
        t.ok(secrets and not any(s in log for s in secrets),
             "no token in the log")
        t.ok(re.search(r"msgid=<[^ ]+> account=work from=<%s> to=<[^ ]+> "
                       r"relay=127\.0\.0\.1:\d+ delay=[0-9.]+ size=\d+ "
                       r"status=sent \(" % re.escape(USER), log),
             "log line names message-id, from, to, relay, delay, status")


run_tests(tests)
