"""Each caller's command line, end to end: the real sendmail shim and
submitter against the Exchange-shaped server, authenticated with a token
refreshed from the mock identity platform.  Checks the bytes on the wire:
every caller's message must arrive (exit 0 also means "queued"), and the
checks on it run, and fail, when it did not."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, gecos_name, run_tests, USER  # noqa: E402

BODY = b"Subject: test\n\nhello\n"


def header_block(data):
    return data.split(b"\r\n\r\n", 1)[0]


def no_bare_newlines(data):
    return re.search(rb"(?<!\r)\n|\r(?!\n)", data) is None


def check_sent(t, sb, name, args, data, rcpts, sender=USER):
    """Run the caller's command line; the message the server received (the
    harness's stand-in, after failed tests, when none did)."""
    m = sb.send_and_expect(t, name, args, data, rcpts=rcpts, sender=sender)
    t.ok(m["bytes"].endswith(b"\r\n") and no_bare_newlines(m["bytes"]),
         "%s: no bare CR or LF on the wire" % name, m["bytes"])
    return m


def tests(t):
    with Sandbox() as sb:
        # PHP mail(): sh -c 'sendmail -t -i'; CRLF headers, LF body
        php = (b"To: bob@example.com\r\nSubject: PHP\r\nX-PHP-Originating-Script:"
               b" 33:index.php\r\n\r\nline one\nline two\n.\nafter dot\n")
        m = check_sent(t, sb, "php -t -i", ["-t", "-i"], php,
                       ["bob@example.com"])
        t.ok(m["bytes"].endswith(b"\r\n\r\nline one\r\nline two\r\n.\r\n"
                                 b"after dot\r\n"),
             "php: lone dot kept with -i, LF turned into CRLF", m["bytes"])
        name = gecos_name()
        want = "%s <%s>" % (name, USER) if name else USER
        t.ok(b"\r\nFrom: %s\r\n" % want.encode() in m["bytes"],
             "php: From added (%s)" % want, m["bytes"])
        sess = sb.session_of(m)
        t.is_(sess["auth_user"], USER, "the session authenticated as the account")
        t.is_(sess["auth_mech"], "XOAUTH2", "with XOAUTH2")
        t.ok(sess["tls"], "over TLS")
        t.is_(sess["violations"], [], "no protocol violations")

        # PHP with the 5th argument -f
        check_sent(t, sb, "php -fuser", ["-t", "-i", "-f" + USER],
                   b"To: carol@example.com\nSubject: x\n\nhi\n",
                   ["carol@example.com"])
        check_sent(t, sb, "php -f user", ["-t", "-i", "-f", USER],
                   b"To: carol@example.com\nSubject: x\n\nhi\n",
                   ["carol@example.com"])

        # mutt: argv recipients after --, DSN options, 8BITMIME
        mutt = ("From: Alice <%s>\nTo: a@example.com\nCc: b@example.com\n"
                "Bcc: hidden@example.com\nSubject: mutt\n\nb\xc3\xa9t\xc3\xa9\n"
                % USER).encode()
        m = check_sent(t, sb, "mutt",
                       ["-oem", "-oi", "-B8BITMIME", "-f", USER, "-N",
                        "success,failure", "-R", "hdrs", "-V", "env123", "--",
                        "a@example.com", "b@example.com",
                        "hidden@example.com"], mutt,
                       ["a@example.com", "b@example.com", "hidden@example.com"])
        h = header_block(m["bytes"])
        t.ok(b"Bcc:" not in h and b"hidden" not in h and
             b"\r\nCc: b@example.com" in h, "mutt: Bcc removed, Cc kept", h)
        t.ok(m["bytes"].endswith(b"\r\n\r\n" +
                                 mutt.split(b"\n\n", 1)[1].replace(b"\n",
                                                                  b"\r\n")),
             "mutt: the 8-bit body unchanged", m["bytes"])
        opts = " ".join(m["mail_options"]).upper()
        t.ok("BODY=8BITMIME" in opts, "mutt: BODY=8BITMIME sent (%s)" % opts)
        t.ok("RET=HDRS" in opts and "ENVID=ENV123" in opts,
             "mutt: DSN RET and ENVID sent (%s)" % opts)
        ro = [" ".join(o).upper() for o in m["rcpt_options"]]
        t.ok(len(ro) == 3 and all("NOTIFY=SUCCESS,FAILURE" in o for o in ro),
             "mutt: NOTIFY on every recipient (%s)" % ro)

        # Debian cron: -FCronDaemon -i -B8BITMIME -oem user, one word a,b
        cron = (b"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host>"
                b" ls\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8"
                b"\n\nfile1\nfile2\n")
        m = check_sent(t, sb, "cron",
                       ["-FCronDaemon", "-i", "-B8BITMIME", "-oem",
                        "ops@example.com,dev@example.com"], cron,
                       ["ops@example.com", "dev@example.com"])
        h = b"\r\n" + header_block(m["bytes"]) + b"\r\n"
        t.ok(b"\r\nFrom: Cron Daemon <%s>\r\n" % USER.encode() in h,
             "cron: From rewritten to the account, name kept", h)
        t.ok(b"\r\nReply-To: root@host.example\r\n" in h,
             "cron: the original From moved to Reply-To", h)
        t.ok(re.search(rb"\r\nDate: [^\r]+\r\n", h), "cron: Date added", h)
        t.ok(re.search(rb"\r\nMessage-ID: <[^>]+@host\.example>\r\n", h),
             "cron: Message-ID added", h)

        # git send-email: -i -f from rcpts (no --)
        git = ("From: Alice <%s>\nTo: list@example.com\nSubject: [PATCH] x\n"
               "Message-ID: <patch-1@example>\n\n---\n diff\n" % USER).encode()
        m = check_sent(t, sb, "git send-email",
                       ["-i", "-f", USER, "list@example.com",
                        "maint@example.com"], git,
                       ["list@example.com", "maint@example.com"])
        h = header_block(m["bytes"])
        t.ok(b"\r\nMessage-ID: <patch-1@example>\r\n" in h + b"\r\n" and
             h.count(b"Message-ID") == 1, "git: its Message-ID kept", h)

        # fail2ban: no -i, no final newline, -f "<sender>"
        m = check_sent(t, sb, "fail2ban",
                       ["-f", "<%s>" % USER, "admin@example.com"],
                       b"Subject: [Fail2Ban] sshd: banned 1.2.3.4\n\nbanned",
                       ["admin@example.com"])
        t.ok(m["bytes"].endswith(b"\r\n\r\nbanned\r\n"),
             "fail2ban: a final CRLF added to the body", m["bytes"])

        # s-nail: -i -m -v -f from -F name -- rcpt
        m = check_sent(t, sb, "s-nail",
                       ["-i", "-m", "-f", USER, "-F", "Alice Example", "--",
                        "dave@example.com"], b"Subject: s-nail\n\nx\n",
                       ["dave@example.com"])
        t.ok(b"\r\nFrom: Alice Example <%s>\r\n" % USER.encode() in
             m["bytes"], "s-nail: From made from -F", m["bytes"])

        # sudo / unattended-upgrades: -t / -oi -t with To: root (aliases)
        with open(sb.aliases, "a") as f:
            f.write("root: admin@example.com\n")
        check_sent(t, sb, "unattended-upgrades (root alias)", ["-oi", "-t"],
                   b"To: root\nSubject: upgrades\n\nok\n",
                   ["admin@example.com"])

        # at: -i user
        check_sent(t, sb, "at", ["-i", "root"], b"Subject: at job\n\ndone\n",
                   ["admin@example.com"])

        # one log line per message, never a token
        log = sb.log_text()
        n = len(sb.messages())
        t.ok(n == 10 and len(re.findall(r"status=sent", log)) == n and
             "status=deferred" not in log,
             "a log line per message with status=sent (%d messages)" % n,
             log)
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
