"""`sendmail -bs` as Symfony Mailer and Laravel drive it, the option
errors callers can hit, and the `bearmail token` helper.  A 250 to -bs
DATA means delivered or queued, so each one is checked at the server (or
its queue ID in the queue)."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import harness  # noqa: E402
from harness import Sandbox, run_tests, USER  # noqa: E402


def dialogue(sb, lines):
    """Feed an SMTP dialogue to sendmail -bs; return (rc, reply lines)."""
    data = "".join(l + "\r\n" for l in lines).encode()
    rc, out, err = sb.run_sendmail(["-bs"], data)
    return rc, out.decode("utf-8", "replace").split("\r\n"), err


def replies(out):
    """The reply lines of a -bs transcript (bytes), without their CR LF."""
    return [l for l in out.decode("utf-8", "replace").split("\r\n") if l]


def sent_commands(session, verb):
    """Every command of session (the message's own) starting with verb."""
    return [c for c in session["commands"] if c.upper().startswith(verb)]


def final(lines):
    """The last line of each reply (the continuation lines dropped)."""
    return [l for l in lines if re.match(r"\d{3} ", l)]


SMUGGLED = ("MAIL FROM:<%s>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n"
            "From: CEO <%s>\r\nSubject: smuggled\r\n\r\npay now" %
            (USER, USER)).encode()


def smuggling(t):
    """A web application relays user text through -bs inside DATA: an
    end-of-data lookalike followed by the commands of a second message
    must stay text of the one message (SMTP smuggling)."""
    with Sandbox() as sb:
        text = (b"Hello\n.\n" + SMUGGLED + b"\r\n"   # LF . LF
                b"again\r\n.\n" + SMUGGLED + b"\r\n"  # CR LF . LF
                b"and\n.\r\n" + SMUGGLED)             # LF . CR LF
        session = (b"EHLO app.example\r\nMAIL FROM:<" + USER.encode() +
                   b">\r\nRCPT TO:<to@example.com>\r\nDATA\r\n"
                   b"From: App <" + USER.encode() + b">\r\n"
                   b"To: to@example.com\r\nSubject: contact form\r\n\r\n" +
                   text + b"\r\n.\r\nQUIT\r\n")
        rc, out, err = sb.run_sendmail(["-bs"], session)
        lines = final(replies(out))
        t.is_(rc, 0, "smuggling: -bs exits 0 after QUIT (%s)" % err[-200:])
        t.is_([l[:3] for l in lines],
              ["220", "250", "250", "250", "354", "250", "221"],
              "smuggling: one MAIL, one RCPT, one DATA answered (%s)" % lines)
        t.is_(lines[5:6], ["250 2.0.0 Ok: delivered"],
              "smuggling: DATA answered 'delivered'")
        m = sb.expect_arrival(t, "smuggling", 0, err=err)
        t.is_(len(sb.messages(accepted_only=False)), 1,
              "smuggling: exactly one message reached the server")
        s = sb.session_of(m)
        mail = sent_commands(s, "MAIL FROM")
        t.ok(len(mail) == 1 and mail[0].startswith("MAIL FROM:<%s>" % USER),
             "smuggling: one MAIL FROM on the wire (%s)" % mail)
        t.is_(sent_commands(s, "RCPT TO"), ["RCPT TO:<to@example.com>\r\n"],
              "smuggling: no RCPT to the smuggled recipient")
        body = m["bytes"]
        t.is_(m["rcpt_tos"], ["to@example.com"],
              "smuggling: the one message went to the real recipient")
        t.ok(body.count(b"RCPT TO:<victim@example.net>\r\n") == 3 and
             body.count(b"MAIL FROM:<%s>\r\n" % USER.encode()) == 3,
             "smuggling: the smuggled MAIL FROM/RCPT TO are message text")
        # each lookalike is a line holding a dot in the message (the client
        # stuffed it, the server unstuffed it), every line ending CR LF
        t.ok(b"\r\nHello\r\n.\r\nMAIL FROM:" in body and
             b"\r\nagain\r\n.\r\nMAIL FROM:" in body and
             b"\r\nand\r\n.\r\nMAIL FROM:" in body,
             "smuggling: each lookalike arrives as a line holding a dot")
        t.ok(b"Subject: contact form\r\n" in body and
             b"\n" not in body.replace(b"\r\n", b"") and
             b"\r" not in body.replace(b"\r\n", b""),
             "smuggling: no bare CR or LF reached the server")
        t.is_(s["violations"], [], "smuggling: no protocol violation")

        # a client sending only bare LF never ends DATA: nothing is sent,
        # and the end of input is answered with the reason
        rc, out, err = sb.run_sendmail(["-bs"], (
            "HELO app\nMAIL FROM:<%s>\nRCPT TO:<to@example.com>\nDATA\n"
            "Subject: lf\n\nbody\n.\nQUIT\n" % USER).encode())
        lines = replies(out)
        t.is_(rc, 76, "bare-LF client: EOF inside DATA exits 76")
        t.like(lines[-1] if lines else "",
               r"^421 4\.4\.2 .*end it with <CR><LF>\.<CR><LF>$",
               "bare-LF client: the 421 names the fix")
        t.is_(len(sb.messages(accepted_only=False)), 1,
              "bare-LF client: nothing more reached the server")

    with Sandbox() as sb:
        # a well-behaved client: two messages, CR LF throughout, pipelined
        # in one write
        session = "".join(l + "\r\n" for l in [
            "EHLO app.example", "MAIL FROM:<%s>" % USER,
            "RCPT TO:<one@example.com>", "DATA", "Subject: first", "",
            "..dot", "one", ".", "MAIL FROM:<%s>" % USER,
            "RCPT TO:<two@example.com>", "DATA", "Subject: second", "",
            "two", ".", "QUIT"]).encode()
        rc, out, err = sb.run_sendmail(["-bs"], session)
        lines = replies(out)
        t.is_(rc, 0, "CRLF client: exit 0")
        t.is_([l for l in lines if l.startswith("250 2.0.0")],
              ["250 2.0.0 Ok: delivered"] * 2,
              "CRLF client: both messages answered 'delivered' (%s)" % lines)
        msgs = sb.expect_arrivals(t, "CRLF client", 0, 2, err=err)
        t.is_([m["rcpt_tos"] for m in msgs],
              [["one@example.com"], ["two@example.com"]],
              "CRLF client: two messages arrived, in order")
        t.ok(msgs[0]["bytes"].endswith(b"\r\n\r\n.dot\r\none\r\n") and
             msgs[1]["bytes"].endswith(b"\r\n\r\ntwo\r\n"),
             "CRLF client: each body intact, dot-unstuffed once")


def tests(t):
    smuggling(t)
    with Sandbox() as sb:
        with open(sb.aliases, "w") as f:
            f.write("root: admin@example.com\n")
        sb.set_script({"rcpt": {"gone@example.com": "550 5.1.1 User unknown"}})
        mark = sb.log_mark()
        rc, out, err = dialogue(sb, [
            "EHLO app.example", "MAIL FROM:<%s>" % USER,
            "RCPT TO:<to@example.com>", "RCPT TO:<root>", "DATA",
            "From: App <%s>" % USER, "To: to@example.com", "Subject: symfony",
            "", "..leading dot", ".", "MAIL FROM:<%s>" % USER,
            "RCPT TO:<nobody>", "RCPT TO:<gone@example.com>", "DATA",
            "Subject: second", "", "x", ".", "QUIT"])
        t.is_(rc, 0, "-bs: exit 0 after QUIT")
        codes = final(out)
        t.is_([l[:3] for l in codes[:6]],
              ["220", "250", "250", "250", "250", "354"],
              "-bs: greeting, EHLO, MAIL, RCPT, RCPT (alias), DATA")
        t.like(out[0], r"^220 .*ESMTP", "-bs: ESMTP greeting")
        t.is_(codes[6:8], ["250 2.0.0 Ok: delivered", "250 2.1.0 Ok"],
              "-bs: the first message delivered; second MAIL")
        t.like(codes[8] if len(codes) > 8 else "",
               r'^550 5\.1\.1 no alias for "nobody": add a line "nobody: ',
               "-bs: RCPT to an unaliased local name refused at once")
        t.is_(codes[9:], ["250 2.1.5 Ok",
                          "354 End data with <CR><LF>.<CR><LF>",
                          "550 5.1.1 recipient gone@example.com refused "
                          "(550 5.1.1 User unknown)", "221 2.0.0 Bye"],
              "-bs: the server's refusal of gone@ is the answer to DATA; "
              "QUIT answered 221")
        m = sb.expect_arrival(t, "-bs", 0, err=err)
        t.is_(sorted(m["rcpt_tos"]), ["admin@example.com", "to@example.com"],
              "-bs: the first message went to to@ and root's alias")
        t.ok(b"\r\nSubject: symfony\r\n" in m["bytes"] and
             m["bytes"].endswith(b"\r\n\r\n.leading dot\r\n"),
             "-bs: dot-unstuffed once, stuffed again on the wire", m["bytes"])
        new = sb.log_since(mark)
        t.ok(re.search(r"to=<to@example\.com>,<admin@example\.com> .*"
                       r"status=sent", new) and
             re.search(r"to=<gone@example\.com> .*status=bounced", new),
             "-bs: the log has this dialogue's delivery and refusal", new)

        # option errors
        rc, _, err = sb.run_sendmail(["-Z", "x@example.com"], b"")
        t.is_(rc, 64, "unknown option: exit 64")
        t.like(err.decode(), r"unknown option -Z", "unknown option: named")
        rc, out, err = sb.run_sendmail(["-bp"], b"")
        t.is_((rc, out.decode()), (0, "Mail queue is empty\n"),
              "-bp: lists the (empty) queue")
        rc, _, err = sb.run(os.path.join(harness.BUILDDIR, "sendmail"), ["-q"])
        t.is_(rc, 0, "-q: runs the (empty) queue quietly")

        # mailq and newaliases are the same program, by name
        for name in ("mailq", "newaliases"):
            os.symlink(os.path.join(harness.BUILDDIR, "sendmail"),
                       os.path.join(sb.dir, name))
        rc, out, err = sb.run(os.path.join(sb.dir, "mailq"), [])
        t.is_((rc, out.decode()), (0, "Mail queue is empty\n"),
              "mailq: lists the (empty) queue")
        rc, _, err = sb.run(os.path.join(sb.dir, "newaliases"), [])
        t.is_(rc, 0, "newaliases: the aliases file checks out")
        with open(sb.aliases, "a") as f:
            f.write("broken line without a colon\n")
        rc, _, err = sb.run(os.path.join(sb.dir, "newaliases"), [])
        t.is_(rc, 78, "newaliases: a syntax error is reported (78)")
        t.like(err.decode(), r"aliases:\d+", "newaliases: names file and line")
        with open(sb.aliases, "w") as f:
            f.write("root: admin@example.com\n")

        # the shim links no network or crypto library
        ldd = subprocess.run(["ldd", os.path.join(harness.BUILDDIR,
                                                  "sendmail")],
                             capture_output=True, text=True).stdout
        t.ok(not any(lib in ldd for lib in ("libssl", "libcrypto", "libcurl",
                                            "libjson", "libsecret")),
             "the sendmail shim links no network or crypto library")

        # the server down: the message is queued and the reply says so
        sb.write_config({"port": "1"})
        n, mark = len(sb.messages()), sb.log_mark()
        rc, out, err = dialogue(sb, ["HELO app", "MAIL FROM:<%s>" % USER,
                                     "RCPT TO:<q@example.com>", "DATA",
                                     "Subject: later", "", "x", ".", "QUIT"])
        done = [l for l in out if l.startswith("250 2.0.0")]
        t.ok(len(done) == 1 and re.search(r"Ok: queued as [0-9A-F]{19}$",
                                          done[0]),
             "-bs: a queued message is answered 250 'queued as ID' (%s)" %
             done)
        sb.expect_no_arrival(t, "-bs, server down", n)
        qid = sb.expect_queued(t, "-bs, server down", done[0] if done else "")
        t.like(sb.log_since(mark), r"to=<q@example\.com> .*status=deferred "
               r"\(127\.0\.0\.1:1: connect: .*, queued as %s\)" % qid,
               "-bs, server down: logged as deferred (connect), with the ID")
        sb.write_config({})

        # the account's delivery holds for -bs as for piped input: with
        # delivery queue the message waits in the queue, nothing is sent
        sb.write_config({"delivery": "queue"})
        n = len(sb.messages())
        rc, out, err = dialogue(sb, ["HELO app", "MAIL FROM:<%s>" % USER,
                                     "RCPT TO:<dq@example.com>", "DATA",
                                     "Subject: delivery queue", "", "x", ".",
                                     "QUIT"])
        done = [l for l in out if l.startswith("250 2.0.0")]
        t.ok(len(done) == 1 and re.search(r"Ok: queued as [0-9A-F]{19}$",
                                          done[0]),
             "-bs with delivery queue: answered 'queued as ID' (%s)" % done)
        sb.expect_no_arrival(t, "-bs with delivery queue", n)
        sb.expect_queued(t, "-bs with delivery queue", done[0] if done else "")
        sb.write_config({})

        # a config others can read is refused
        os.chmod(sb.cfg, 0o644)
        rc, _, err = sb.run_sendmail(["x@example.com"], b"Subject: x\n\nx\n")
        t.is_(rc, 78, "config mode 0644: exit 78")
        t.like(err.decode(), r"chmod 600", "config mode 0644: says chmod 600")
        os.chmod(sb.cfg, 0o600)

        # the token helper
        rc, out, err = sb.run_bearmail(["token"])
        tok = out.decode().strip()
        t.is_(rc, 0, "bearmail token: exit 0")
        t.ok(tok.count(".") == 2 and tok == sb.token_store()["access_token"],
             "bearmail token: prints the stored, valid access token")
        rc, out, err = sb.run_bearmail(["token", "import", "work"],
                                       b"not a token\x01")
        t.is_(rc, 65, "bearmail token import: junk refused (65, data error)")
        t.like(err.decode(), r"neither a token endpoint answer \(JSON\) nor "
               r"a refresh token", "bearmail token import: says what it wants")
        t.ok(tok and sb.token_store()["access_token"] == tok,
             "bearmail token import: junk leaves the stored token alone")
        os.chmod(sb.token_file, 0o644)
        rc, out, err = sb.run_bearmail(["token"])
        t.is_(rc, 78, "token file mode 0644: refused")
        t.like(err.decode(), r"chmod 600", "token file 0644: says chmod 600")
        os.chmod(sb.token_file, 0o600)
        st = os.stat(sb.token_file)
        t.is_(oct(st.st_mode & 0o777), "0o600", "the token store is 0600")

        # no secret anywhere in what the tests left behind
        store = sb.token_store()
        leaked = []
        for root, _, files in os.walk(sb.dir):
            for name in files:
                path = os.path.join(root, name)
                if path == sb.token_file or name.endswith((".pem", ".key")):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                for s in (store.get("access_token"),
                          store.get("refresh_token")):
                    if s and s.encode() in data:
                        leaked.append(name)
        t.is_(sorted(set(leaked)), [], "no token in any log or record file")


run_tests(tests)
