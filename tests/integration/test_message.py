"""The message pipeline through the real binaries: recipients from headers
and argv, Bcc removal, header completion, From rewriting, aliases, line
endings and the lone dot, as the server received them.  Every delivery is
checked at the server (exit 0 also means "queued"): a message that did not
arrive fails the test, and the checks on its bytes still run and fail."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, gecos_name, run_tests, USER  # noqa: E402


def headers(data):
    return data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace") + "\r\n"


def body(data):
    return data.partition(b"\r\n\r\n")[2]


def account_from():
    """The From: bearmail writes for this user: the account's address with
    the caller's passwd name, or bare when the passwd entry has none."""
    name = gecos_name()
    return "%s <%s>" % (name, USER) if name else USER


class Sender:
    def __init__(self, t, sb):
        self.t, self.sb = t, sb

    def send(self, args, data, name, rcpts=None):
        """Deliver; the record of what the server received (or the
        harness's stand-in, after a failed "arrived" test)."""
        return self.sb.send_and_expect(self.t, name, args, data, rcpts=rcpts,
                                       sender=USER)

    def refuse(self, args, data, name, want_rc):
        """A refusal: the exit code, nothing sent, nothing queued; stderr."""
        n, queued = len(self.sb.messages()), self.sb.queue_ids()
        rc, out, err = self.sb.run_sendmail(args, data)
        err = err.decode("utf-8", "replace")
        self.t.is_(rc, want_rc, "%s: exit %d" % (name, want_rc))
        self.sb.expect_no_arrival(self.t, name, n)
        self.t.is_(self.sb.queue_ids(), queued, "%s: nothing queued" % name)
        return err


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
                   b" secret2@example.com\nSubject: t\n\nbody\n", "-t + argv",
                   ["extra@example.com", "a@example.com", "j@example.com",
                    "c@example.com", "secret@example.com",
                    "secret2@example.com"])
        h = headers(m["bytes"])
        t.ok("Bcc" not in h and "secret" not in h and
             "\r\nSubject: t\r\n" in "\r\n" + h,
             "-t: folded Bcc removed entirely (the other fields kept)", h)

        # duplicates are sent once
        m = s.send(["-t", "a@example.com", "A@example.com"],
                   b"To: a@example.com\nCc: a@example.com\n\nx\n", "dedup",
                   ["a@example.com"])
        t.is_(len(m["rcpt_tos"]), 1, "dedup: one RCPT for one address")

        # Resent- block takes over -t
        m = s.send(["-t"],
                   b"Resent-From: " + USER.encode() + b"\nResent-To: "
                   b"new@example.com\nResent-Bcc: newbcc@example.com\n"
                   b"Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
                   b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\n"
                   b"Resent-From: old@example.com\nResent-To: older@example.com\n"
                   b"To: original@example.com\nSubject: fwd\n\nx\n", "resent",
                   ["new@example.com", "newbcc@example.com"])
        h = headers(m["bytes"])
        t.ok("newbcc" not in h and "\r\nResent-To: new@example.com\r\n" in h,
             "resent: Resent-Bcc removed, Resent-To kept", h)

        # header completion with a From that may be sent as
        m = s.send(["-F", "Alice A", "x@example.com"], b"Subject: bare\n\nb\n",
                   "completion", ["x@example.com"])
        h = "\r\n" + headers(m["bytes"])
        t.ok(re.search(r"\r\nFrom: Alice A <%s>\r\n" % re.escape(USER), h),
             "completion: From from -F", h)
        t.ok(re.search(r"\r\nDate: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d"
                       r" [+-]\d{4}\r\n", h), "completion: RFC 5322 Date", h)
        t.ok(re.search(r"\r\nMessage-ID: <[^@>]+@host\.example>\r\n", h),
             "completion: Message-ID", h)

        # From rewrite: PHP's www-data
        m = s.send(["-t", "-i"], b"From: www-data@webhost.example\n"
                   b"To: y@example.com\nSubject: php\n\nx\n", "rewrite www-data",
                   ["y@example.com"])
        h = "\r\n" + headers(m["bytes"])
        t.ok("\r\nFrom: %s\r\n" % account_from() in h,
             "rewrite: From becomes the account address (%s)"
             % account_from(), h)
        t.ok("\r\nReply-To: www-data@webhost.example\r\n" in h,
             "rewrite: the original goes to Reply-To", h)

        # From rewrite keeps an existing Reply-To
        m = s.send(["-t"], b"From: Shop <shop@other.example>\nReply-To: "
                   b"help@other.example\nTo: y@example.com\n\nx\n",
                   "rewrite keeps Reply-To", ["y@example.com"])
        h = "\r\n" + headers(m["bytes"])
        t.ok("\r\nReply-To: help@other.example\r\n" in h and
             h.count("Reply-To") == 1, "rewrite: Reply-To kept, not added", h)
        t.ok("\r\nFrom: Shop <%s>\r\n" % USER in h,
             "rewrite: display name kept", h)

        # aliases: recursive, lists, default refused when unresolved
        s.send(["postmaster@localhost"], b"Subject: a\n\nx\n", "aliases",
               ["boss@example.com", "ops-team@example.com"])
        err = s.refuse(["nobody"], b"Subject: a\n\nx\n", "unknown local", 67)
        t.ok("nobody" in err and "aliases" in err,
             "unknown local name: says which alias to add (%s)" % err.strip())
        err = s.refuse(["loop1"], b"Subject: a\n\nx\n", "alias loop", 78)
        t.ok("loop" in err, "alias loop detected (%s)" % err.strip())

        # malformed envelope addresses: 64, nothing sent
        before, queued = len(sb.sessions()), sb.queue_ids()
        for bad in ("a b@example.com", "<x@example.com", "x@exa mple.com",
                    "\"unbalanced@example.com", "x@example.com>"):
            rc, _, err = sb.run_sendmail([bad], b"Subject: a\n\nx\n")
            t.is_(rc, 64, "bad address %r refused with 64" % bad)
        t.is_(len(sb.sessions()), before, "bad addresses: no connection made")
        rc, _, err = sb.run_sendmail([], b"Subject: a\n\nx\n")
        t.is_(rc, 64, "no recipients: 64")
        t.is_(sb.queue_ids(), queued,
              "bad addresses, no recipients: nothing queued")

        # line endings: LF, CR, CRCRLF, mixed - all CRLF on the wire
        m = s.send(["-i", "z@example.com"],
                   b"Subject: le\n\nlf\ncr\rcrlf\r\nmixed\r\r\nlast",
                   "line endings", ["z@example.com"])
        t.is_(body(m["bytes"]), b"lf\r\ncr\r\ncrlf\r\nmixed\r\n\r\nlast\r\n",
              "line endings: every line ends CRLF")
        t.ok(m["bytes"].startswith(b"Subject: le\r\n") and
             re.search(rb"(?<!\r)\n|\r(?!\n)", m["bytes"]) is None,
             "line endings: no bare CR or LF", m["bytes"])

        # the lone dot: ends input without -i; with -i it is data
        m = s.send(["z@example.com"], b"Subject: dot\n\nbefore\n.\nafter\n",
                   "lone dot ends input", ["z@example.com"])
        t.is_(body(m["bytes"]), b"before\r\n", "lone dot: input ends there")
        m = s.send(["-oi", "z@example.com"],
                   b"Subject: dot\n\n.\n..\n.x\nend\n", "dots with -oi",
                   ["z@example.com"])
        t.is_(body(m["bytes"]), b".\r\n..\r\n.x\r\nend\r\n",
              "dots with -oi: arrive unchanged (client stuffed, server "
              "unstuffed)")
        # DATA, not BDAT: only DATA stuffs dots, which this checks
        t.is_(m["via"], "DATA", "dots: sent with DATA")
        cmds = "".join(sb.session_of(m)["commands"])
        t.ok("\r\nDATA\r\n" in cmds, "dots: the DATA command", cmds)


run_tests(tests)
