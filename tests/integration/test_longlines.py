"""Lines over 998 octets (RFC 5321 4.5.3.1.6) against a server that
refuses them after DATA, as strict servers do ("max_line": 998): what
PHP's one-line pages, multiparts, UTF-8 text and long headers become on
the wire, checked with Python's email module; a message without long
lines arrives byte for byte as it was sent.  Every message must arrive:
the checks of its bytes run (and fail) when it did not."""
import base64
import email
import email.policy
import os
import smtplib
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, run_tests, USER, CLIENT_ID, SCOPE  # noqa: E402

RCPT = "bob@example.com"


def longest(data):
    return max(len(line) for line in data.split(b"\r\n"))


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.default)


class Sender:
    """Runs sendmail and returns what the server accepted from it."""

    def __init__(self, t, sb):
        self.t, self.sb = t, sb

    def send(self, args, data, name):
        """A delivery: the record of the one message that arrived (or
        harness.no_message(), failing the test)."""
        return self.sb.send_and_expect(self.t, name, args, data,
                                       rcpts=[RCPT], sender=USER)

    def refuse(self, args, data, name, want_rc):
        """A refusal: exit want_rc; stderr."""
        rc, out, err = self.sb.run_sendmail(args, data)
        self.t.is_(rc, want_rc, "%s: exit %d" % (name, want_rc))
        return err.decode("utf-8", "replace")


def test_server_key(t, sb):
    """The script key itself, with smtplib: 998 octets pass, 999 do not."""
    _, body = sb.token_call({"grant_type": "refresh_token",
                             "client_id": CLIENT_ID, "scope": SCOPE,
                             "refresh_token": sb.mint()["refresh_token"]})
    auth = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (
        USER, body["access_token"])).encode()).decode()
    s = smtplib.SMTP("127.0.0.1", sb.smtp_port, timeout=30)
    s.ehlo("client.example")
    s.starttls(context=sb.ssl_context())
    s.ehlo("client.example")
    s.docmd("AUTH", "XOAUTH2 " + auth)
    got = []
    for n in (998, 999):
        try:
            s.mail(USER)
            s.rcpt(RCPT)
            got.append(s.data(b"Subject: k\r\n\r\n" + b"x" * n + b"\r\n"))
        except smtplib.SMTPException as e:
            got.append((None, str(e).encode()))
    try:
        s.quit()
    except smtplib.SMTPException:
        pass
    t.is_(got[0][0], 250, "max_line 998: a 998-octet line is accepted")
    t.is_(got[1], (500, b"5.5.0 Line too long"),
          "max_line 998: a 999-octet line gets 500 5.5.0 Line too long")


def php_page():
    """A page as PHP builds it: one line, 5000 octets, '=' and quotes."""
    head = (b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Order'
            b'</title></head><body style="margin:0;padding:0">')
    tail = b"</body></html>"
    rows, i = b"", 0
    while len(head) + len(rows) + len(tail) < 5000:
        rows += b'<p class="row" data-id="%d">Item %d = 10 EUR</p>' % (i, i)
        i += 1
    page = (head + rows)[:5000 - len(tail)] + tail
    assert len(page) == 5000
    return page


def test_php(t, s):
    page = php_page()
    # PHP mail(): CRLF between its headers, the body as the script wrote it
    sent = (b"To: " + RCPT.encode() + b"\r\nSubject: Your order\r\n"
            b"MIME-Version: 1.0\r\nContent-type: text/html; charset=UTF-8"
            b"\r\nFrom: " + USER.encode() + b"\r\n\r\n" + page + b"\n")
    m = s.send(["-t", "-i"], sent, "php one-line page")
    data = m["bytes"]
    t.ok(0 < longest(data) <= 998, "php: every line within 998 octets "
         "(longest %d, the server saw %d)" % (longest(data), m["max_line"]))
    msg = parse(data)
    t.is_(msg["Content-Transfer-Encoding"], "quoted-printable",
          "php: the body is quoted-printable")
    t.ok(b"\r\nContent-type: text/html; charset=UTF-8\r\n" in data,
         "php: its Content-type kept as written")
    # the LF the script ended the page with is CRLF, as every line is
    t.is_(msg.get_payload(decode=True), page + b"\r\n",
          "php: email decodes the body to exactly the page")
    t.is_(msg.get_content(), (page + b"\r\n").decode(),
          "php: get_content() gives the page text")


BOUNDARY = b"=_b1_5f2d1c"
TEXT_PART = (b"Content-Type: text/plain; charset=utf-8\r\n"
             b"Content-Transfer-Encoding: 8bit\r\n\r\n"
             b"Your order, in short: 3 items, 30 EUR.")


def test_multipart(t, s):
    html = b"<html><body>" + b"<td>cell</td>" * 300 + b"</body></html>"
    sent = (b"From: " + USER.encode() + b"\r\nTo: " + RCPT.encode() +
            b"\r\nSubject: mp\r\nMIME-Version: 1.0\r\nContent-Type: "
            b"multipart/alternative; boundary=\"" + BOUNDARY + b"\"\r\n\r\n"
            b"This is a multi-part message in MIME format.\r\n"
            b"--" + BOUNDARY + b"\r\n" + TEXT_PART + b"\r\n"
            b"--" + BOUNDARY + b"\r\nContent-Type: text/html; "
            b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
            html + b"\r\n--" + BOUNDARY + b"--\r\nepilogue\r\n")
    m = s.send(["-t", "-i"], sent, "multipart")
    data = m["bytes"]
    t.ok(0 < longest(data) <= 998, "multipart: every line within 998 octets")
    head, _, body = data.partition(b"\r\n\r\n")
    pieces = body.split(b"\r\n--" + BOUNDARY)
    t.is_(len(pieces), 4, "multipart: the same boundaries, in place")
    pieces += [b""] * (4 - len(pieces))      # checks, not an IndexError
    t.is_(pieces[0], b"This is a multi-part message in MIME format.",
          "multipart: preamble unchanged")
    t.is_(pieces[1], b"\r\n" + TEXT_PART, "multipart: the short part byte "
          "for byte as sent")
    t.ok(pieces[2].startswith(b"\r\nContent-Type: text/html; charset=utf-8"
                              b"\r\nContent-Transfer-Encoding: "
                              b"quoted-printable\r\n\r\n"),
         "multipart: the long part's encoding replaced, its type kept")
    t.is_(pieces[3:], [b"--\r\nepilogue\r\n"],
          "multipart: close boundary and epilogue unchanged")
    parts = [p for p in parse(data).walk() if not p.is_multipart()]
    t.is_([p.get_content_type() for p in parts], ["text/plain", "text/html"],
          "multipart: email sees the same two parts")
    t.is_([p.get_payload(decode=True) for p in parts],
          [TEXT_PART.split(b"\r\n\r\n", 1)[1], html],
          "multipart: both decode to exactly what was sent")


def test_untouched(t, s):
    # 998 octets (the limit itself), 8-bit UTF-8, a MIME multipart: no
    # line over the limit, so nothing may change, not even the encoding
    unit = "Grüße aus Köln, ".encode()
    line = unit * (998 // len(unit))
    line += b"x" * (998 - len(line))
    sent = (b"From: " + USER.encode() + b"\r\nTo: " + RCPT.encode() +
            b"\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\nDate: Mon, 1 Jan 2024 "
            b"00:00:00 +0000\r\nMessage-ID: <untouched@host.example>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            b"boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; "
            b"charset=utf-8\r\n\r\n" + line + b"\r\n" + b"y" * 997 +
            b"\r\n--b--\r\n")
    m = s.send(["-t", "-i"], sent, "no long line")
    t.is_(m["max_line"], 998, "no long line: the longest is 998 octets")
    t.ok(m["bytes"] == sent, "no long line: arrives byte for byte as sent",
         repr(m["bytes"][:300]))
    t.ok("BODY=8BITMIME" in m["mail_options"],
         "no long line: still sent as 8BITMIME")


def test_utf8(t, s):
    text = "Grüße aus Köln – schön, dass Sie da sind. ".encode() * 60
    sent = (b"To: " + RCPT.encode() + b"\nSubject: Gr\xc3\xbc\xc3\x9fe\n\n" +
            text + b"\nZweite Zeile \xe2\x82\xac\n")
    m = s.send(["-t", "-i"], sent, "utf-8 text")
    data = m["bytes"]
    t.ok(0 < longest(data) <= 998, "utf-8: every line within 998 octets")
    msg = parse(data)
    t.ok(b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
         b"charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
         b"\r\n\r\n" in data,
         "utf-8: MIME added, the charset found to be utf-8")
    t.is_(msg.get_payload(decode=True), text + b"\r\nZweite Zeile "
          b"\xe2\x82\xac\r\n", "utf-8: decodes to exactly the text sent")
    t.ok(b"\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n" in data,
         "utf-8: the 8-bit Subject left as it was")


def test_headers(t, s):
    words = " ".join("word%d" % i for i in range(250))
    cjk = "中文标题" * 100                       # 1200 octets, no space
    sent = ("To: %s\nSubject: %s\nX-Words: %s\n\nbody\n" % (
        RCPT, cjk, words)).encode()
    m = s.send(["-t", "-i"], sent, "long headers")
    data = m["bytes"]
    t.ok(0 < longest(data) <= 998, "headers: every line within 998 octets")
    msg = parse(data)
    t.is_(str(msg["X-Words"]), words, "headers: folded at its spaces, "
          "unfolds to what it was")
    t.is_(str(msg["Subject"]), cjk, "headers: a 1200-octet word in the "
          "Subject as encoded-words, decodes to what it was")
    t.ok(data.endswith(b"\r\n\r\nbody\r\n"), "headers: the body untouched")


def test_refused(t, s, sb):
    before, queued = len(sb.messages(accepted_only=False)), sb.queue_ids()
    err = s.refuse(["-t", "-i"], ("To: %s\nMessage-ID: <%s@host.example>\n"
                                  "\nb\n" % (RCPT, "i" * 1000)).encode(),
                   "unfoldable header", 65)
    t.ok("Message-ID: header" in err and "998" in err and
         len(err.strip().splitlines()) == 1,
         "unfoldable: one line naming the field and the limit", err)
    t.is_(len(sb.messages(accepted_only=False)), before,
          "unfoldable: nothing sent")
    t.is_(sb.queue_ids(), queued, "unfoldable: nothing queued")


def test_queued(t, sb):
    page = php_page()
    sent = (b"To: " + RCPT.encode() + b"\nSubject: later\nContent-Type: "
            b"text/html\nMIME-Version: 1.0\n\n" + page + b"\n")
    n = len(sb.messages())
    sb.expect_deferred(t, "queued", ["-odq", "-t", "-i"], sent,
                       r"queued by request \(-odq\)")
    rc, _, err = sb.run_bearmail(["queue", "flush"])
    t.is_(rc, 0, "queued: flush exit 0")
    m = sb.expect_arrival(t, "queued: the flush", n, err=err)
    t.ok(0 < longest(m["bytes"]) <= 998 and
         parse(m["bytes"]).get_payload(decode=True) == page + b"\r\n",
         "queued: the queue holds the re-encoded message", err)


def tests(t):
    with Sandbox(config_extra={"delivery": "sync"},
                 script={"max_line": 998}) as sb:
        test_server_key(t, sb)
        s = Sender(t, sb)
        test_php(t, s)
        test_multipart(t, s)
        test_untouched(t, s)
        test_utf8(t, s)
        test_headers(t, s)
        test_refused(t, s, sb)
        test_queued(t, sb)
        t.is_(sb.violations(), [], "no protocol violations")


run_tests(tests)
