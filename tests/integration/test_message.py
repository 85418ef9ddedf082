"""The message pipeline through the real binaries: recipients from headers
and argv, Bcc removal, header completion, From rewriting, aliases, line
endings and the lone dot, as the server received them."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, run_tests, USER  # noqa: E402


def headers(data):
    return data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace") + "\r\n"


def body(data):
    return data.split(b"\r\n\r\n", 1)[1]


class Sender:
    def __init__(self, t, sb):
        self.t, self.sb, self.n = t, sb, len(sb.messages())

    def send(self, args, data, name, want_rc=0):
        rc, out, err = self.sb.run_sendmail(args, data)
        self.t.is_(rc, want_rc, "%s: exit %d" % (name, want_rc))
        if rc != want_rc:
            self.t.diag(err.decode("utf-8", "replace"))
        if rc != 0:
            return err.decode("utf-8", "replace")
        self.n += 1
        msgs = self.sb.wait_messages(self.n)
        return msgs[-1] if len(msgs) >= self.n else None


def tests(t):
    with Sandbox() as sb:
        s = Sender(t, sb)
        with open(sb.aliases, "w") as f:
            f.write("# test aliases\npostmaster: root\nroot: ops, "
                    "boss@example.com\nops: ops-team@example.com\n"
                    "loop1: loop2\nloop2: loop1\n")

        # -t adds header recipients to argv ones; Bcc read, then removed
        m = s.send(["-t", "extra@example.com"],
                   b"To: a@example.com, \"Doe, John\" <j@example.com>\n"
                   b"Cc: (team) c@example.com\nBcc: secret@example.com,\n"
                   b" secret2@example.com\nSubject: t\n\nbody\n", "-t + argv")
        if m:
            t.is_(sorted(m["rcpt_tos"]), sorted(
                ["extra@example.com", "a@example.com", "j@example.com",
                 "c@example.com", "secret@example.com", "secret2@example.com"]),
                "-t: header recipients added to argv recipients")
            h = headers(m["bytes"])
            t.ok("Bcc" not in h and "secret" not in h,
                 "-t: folded Bcc removed entirely")

        # duplicates are sent once
        m = s.send(["-t", "a@example.com", "A@example.com"],
                   b"To: a@example.com\nCc: a@example.com\n\nx\n", "dedup")
        if m:
            t.is_(len(m["rcpt_tos"]), 1, "dedup: one RCPT for one address")

        # Resent- block takes over -t
        m = s.send(["-t"],
                   b"Resent-From: " + USER.encode() + b"\nResent-To: "
                   b"new@example.com\nResent-Bcc: newbcc@example.com\n"
                   b"Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
                   b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\n"
                   b"Resent-From: old@example.com\nResent-To: older@example.com\n"
                   b"To: original@example.com\nSubject: fwd\n\nx\n", "resent")
        if m:
            t.is_(sorted(m["rcpt_tos"]), ["new@example.com", "newbcc@example.com"],
                  "resent: only the first Resent- block's recipients")
            t.ok("newbcc" not in headers(m["bytes"]), "resent: Resent-Bcc removed")

        # header completion with a From that may be sent as
        m = s.send(["-F", "Alice A", "x@example.com"], b"Subject: bare\n\nb\n",
                   "completion")
        if m:
            h = headers(m["bytes"])
            t.ok(re.search(r"\r\nFrom: Alice A <%s>\r\n" % re.escape(USER),
                           "\r\n" + h), "completion: From from -F")
            t.ok(re.search(r"\r\nDate: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d"
                           r" [+-]\d{4}\r\n", "\r\n" + h),
                 "completion: RFC 5322 Date")
            t.ok(re.search(r"\r\nMessage-ID: <[^@>]+@host\.example>\r\n",
                           "\r\n" + h), "completion: Message-ID")

        # From rewrite: PHP's www-data
        m = s.send(["-t", "-i"], b"From: www-data@webhost.example\n"
                   b"To: y@example.com\nSubject: php\n\nx\n", "rewrite www-data")
        if m:
            h = headers(m["bytes"])
            t.ok(re.search(r"\r\nFrom: ([^<\r\n]+ <%s>|%s)\r\n" % (
                re.escape(USER), re.escape(USER)), "\r\n" + h),
                "rewrite: From becomes the account address (%s)" %
                re.findall(r"From: [^\r]*", h))
            t.ok("\r\nReply-To: www-data@webhost.example\r\n" in "\r\n" + h,
                 "rewrite: the original goes to Reply-To")
            t.is_(m["mail_from"], USER, "rewrite: envelope is the account")

        # From rewrite keeps an existing Reply-To
        m = s.send(["-t"], b"From: Shop <shop@other.example>\nReply-To: "
                   b"help@other.example\nTo: y@example.com\n\nx\n",
                   "rewrite keeps Reply-To")
        if m:
            h = headers(m["bytes"])
            t.ok("\r\nReply-To: help@other.example\r\n" in "\r\n" + h and
                 h.count("Reply-To") == 1, "rewrite: Reply-To kept, not added")
            t.ok(re.search(r"\r\nFrom: \"?Shop\"? <%s>\r\n" % re.escape(USER),
                           "\r\n" + h), "rewrite: display name kept")

        # aliases: recursive, lists, default refused when unresolved
        m = s.send(["postmaster@localhost"], b"Subject: a\n\nx\n", "aliases")
        if m:
            t.is_(sorted(m["rcpt_tos"]), ["boss@example.com",
                                          "ops-team@example.com"],
                  "aliases: postmaster -> root -> ops, boss (recursive)")
        err = s.send(["nobody"], b"Subject: a\n\nx\n", "unknown local", 67)
        t.ok(isinstance(err, str) and "nobody" in err and "aliases" in err,
             "unknown local name: says which alias to add (%s)" % err.strip())
        err = s.send(["loop1"], b"Subject: a\n\nx\n", "alias loop", 78)
        t.ok(isinstance(err, str) and "loop" in err, "alias loop detected")

        # malformed envelope addresses: 64, nothing sent
        before = len(sb.sessions())
        for bad in ("a b@example.com", "<x@example.com", "x@exa mple.com",
                    "\"unbalanced@example.com", "x@example.com>"):
            rc, _, err = sb.run_sendmail([bad], b"Subject: a\n\nx\n")
            t.is_(rc, 64, "bad address %r refused with 64" % bad)
        t.is_(len(sb.sessions()), before, "bad addresses: no connection made")
        rc, _, err = sb.run_sendmail([], b"Subject: a\n\nx\n")
        t.is_(rc, 64, "no recipients: 64")

        # line endings: LF, CR, CRCRLF, mixed - all CRLF on the wire
        m = s.send(["-i", "z@example.com"],
                   b"Subject: le\n\nlf\ncr\rcrlf\r\nmixed\r\r\nlast", "line endings")
        if m:
            t.is_(body(m["bytes"]), b"lf\r\ncr\r\ncrlf\r\nmixed\r\n\r\nlast\r\n",
                  "line endings: every line ends CRLF")
            t.ok(re.search(rb"(?<!\r)\n|\r(?!\n)", m["bytes"]) is None,
                 "line endings: no bare CR or LF")

        # the lone dot: ends input without -i; with -i it is data
        m = s.send(["z@example.com"], b"Subject: dot\n\nbefore\n.\nafter\n",
                   "lone dot ends input")
        if m:
            t.is_(body(m["bytes"]), b"before\r\n", "lone dot: input ends there")
        m = s.send(["-oi", "z@example.com"],
                   b"Subject: dot\n\n.\n..\n.x\nend\n", "dots with -oi")
        if m:
            t.is_(body(m["bytes"]), b".\r\n..\r\n.x\r\nend\r\n",
                  "dots with -oi: arrive unchanged (client stuffed, server unstuffed)")
            cmds = "".join(sb.sessions()[-1]["commands"])
            t.ok("DATA" in cmds or "BDAT" in cmds, "dots: sent with DATA")


run_tests(tests)
