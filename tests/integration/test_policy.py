"""The failure policy against hostile servers and files: after the final dot
ambiguity means queued (at least once, never lost); a reply whose code
changes between lines is temporary; one deadline bounds a whole reply; a
server that quotes the AUTH response learns nothing it can leak through us;
the client secret of a delegated refresh is read with the secrets module's
checks; `sendmail -v` survives a caller that stops reading; a permanent
refusal in a queue run lets go of the message only once its bounce is
queued.  A message that waits is found in the queue by the ID of its own
log line, which must give the reason; a delivery is checked at the
server."""
import glob
import os
import re
import resource
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import harness  # noqa: E402
from harness import Sandbox, run_tests, USER  # noqa: E402


def msg(subject):
    return ("Subject: %s\n\nbody of %s\n" % (subject, subject)).encode()


def listing(sb):
    rc, out, _ = sb.run_bearmail(["queue", "list"])
    return out.decode("utf-8", "replace")


def queued_subjects(sb):
    """Subjects of the messages in the queue (from the data files)."""
    out = []
    for path in glob.glob(os.path.join(sb.dir, "queue", "data", "*.msg")):
        with open(path, "rb") as f:
            m = re.search(rb"(?m)^Subject: (.*?)\r?$", f.read())
        out.append(m.group(1).decode() if m else None)
    return sorted(out)


def subject_of(m):
    found = re.search(rb"(?m)^Subject: (.*?)\r?$", m["bytes"])
    return found.group(1).decode() if found else ""


def copies(sb, seen):
    """(subject, server's reply, accepted) of what the server received
    after the first seen messages, accepted or not."""
    return [(subject_of(m), m["reply"], m["accepted"])
            for m in sb.messages(accepted_only=False)[seen:]]


def expect_waiting(t, sb, name, mark, reason):
    """The one new "status=deferred" log line with reason (a regex); its
    queue ID, checked in the listing."""
    lines = [l for l in sb.log_since(mark).splitlines()
             if re.search(r"status=deferred \(.*queued as ", l) and
             re.search(reason, l)]
    t.ok(len(lines) == 1, "%s: logged as deferred (%s)" % (name, reason),
         sb.log_since(mark))
    return sb.expect_queued(t, name, lines[0] if lines else "")


def expect_delivered_later(t, sb, name, seen, subject):
    """After a queue run: the server got the message a second time (the
    first try is in seen..) and accepted that copy; the queue is empty."""
    got = copies(sb, seen)
    t.ok(len(got) == 2 and got[0][0] == subject and got[1][0] == subject and
         got[1][2] and (got[1][1] or "").startswith("250 2.0.0 OK"),
         "%s: the next run delivers it (sent twice: at least once)" % name,
         got)
    t.is_(queued_subjects(sb), [], "%s: nothing left in the queue" % name)


def flush(sb, *args):
    return sb.run_bearmail(["queue", "flush", "--force", *args])


def test_after_the_dot(t, sb):
    # an unreadable reply after the final dot: the server may have the
    # message, so it is queued (and sent again), never reported as failed
    cases = [("garbage", {"data": "this is not an SMTP reply"},
              r"malformed reply from the server: this is not an SMTP reply"),
             ("oversized", {"data": "250 " + "x" * 20000},
              r"the server sent a line longer than 16384 bytes"),
             ("code-change", {"data": "250-2.0.0 queued\r\n554 5.0.0 no"},
              r"malformed reply from the server: 554 5\.0\.0 no")]
    for name, script, why in cases:
        sb.set_script(script)
        subject, what = "after-dot-" + name, "%s reply after the dot" % name
        seen, mark = len(sb.messages(accepted_only=False)), sb.log_mark()
        rc, _, err = sb.run_sendmail(["-i", "dot@example.com"], msg(subject))
        t.is_(rc, 0, "%s: exit 0 (queued), not 76" % what)
        t.is_([(c[0], c[1]) for c in copies(sb, seen)],
              [(subject, script["data"])],
              "%s: the server had the data and answered so" % what)
        t.is_(queued_subjects(sb), [subject],
              "%s: the message waits in the queue" % what)
        expect_waiting(t, sb, what, mark, why)
        sb.set_script({})
        flush(sb)
        expect_delivered_later(t, sb, what, seen, subject)


def test_before_the_data(t, sb):
    # a reply whose code changes between lines, at RCPT and at MAIL: the
    # transaction has started, so it is temporary
    for where, script, why in (("RCPT", {"rcpt_default":
                                         "250-2.1.5 ok\r\n550 5.1.1 no"},
                                r"550 5\.1\.1 no"),
                               ("MAIL", {"mail": "250-2.1.0 ok\r\n451 later"},
                                "451 later")):
        subject = "code-change-" + where
        sb.set_script(script)
        seen, mark = len(sb.messages(accepted_only=False)), sb.log_mark()
        rc, _, err = sb.run_sendmail(["-i", "cc@example.com"], msg(subject))
        t.is_(rc, 0, "a code that changes between lines at %s: exit 0, "
              "not 76" % where)
        t.is_(queued_subjects(sb), [subject],
              "a code that changes at %s: queued" % where)
        expect_waiting(t, sb, "a code that changes at %s" % where, mark,
                       r"malformed reply from the server: " + why)
        t.is_(copies(sb, seen), [], "code change at %s: no data sent"
              % where)
        sb.set_script({})
        n = len(sb.messages())
        rc, _, err = flush(sb)
        m = sb.expect_arrival(t, "code change at %s: the next run" % where,
                              n, err=err)
        t.is_(subject_of(m), subject, "code change at %s: delivered "
              "once by the next run" % where)


def test_deadline(t, sb):
    # one continuation line every 1.5 s, for as long as the server likes:
    # with timeout 2 the reply is given up after 2 s, not after the last
    # line (the hang guard, far above 2 s, only turns a regression into a
    # failure instead of a 30-minute wait)
    sb.write_config({"timeout": "2"})
    for at in ("mail", "data"):
        subject = "drip-" + at
        sb.set_script({"drip": {"at": at, "lines": 1200, "interval": 1.5}})
        mark = sb.log_mark()
        try:
            rc, _, err = sb.run_sendmail(["-i", "slow@example.com"],
                                         msg(subject), timeout=90)
        except subprocess.TimeoutExpired:
            rc, err = None, b"still waiting after 90 s"
        t.ok(rc == 0, "a reply dripping at %s: given up, queued (exit 0)"
             % at, "exit %r: %r" % (rc, err))
        qid = expect_waiting(t, sb, "dripping at %s" % at, mark,
                             r"timed out")
        t.like(listing(sb), r"(?m)^%s .*\n.*timed out" % qid,
               "dripping at %s: the listing says it timed out" % at)
        t.is_(queued_subjects(sb), [subject], "dripping at %s: queued" % at)
        sb.set_script({})
        flush(sb)
    sb.write_config()


def secrets_of(sb):
    """The access token and the AUTH response built from it."""
    import base64
    tok = sb.token_store().get("access_token") or ""
    blob = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (
        USER, tok)).encode()).decode()
    return tok, blob


def leaks(haystack, tok, blob):
    """Which secrets (or long pieces of them) appear in haystack."""
    found = []
    for name, s in (("token", tok), ("AUTH response", blob)):
        if not s:
            continue
        pieces = [s[i:i + 24] for i in range(0, len(s) - 24, 12)]
        if s in haystack or any(p in haystack for p in pieces):
            found.append(name)
    return found


def everything_stored(sb):
    out = []
    for path in glob.glob(os.path.join(sb.dir, "queue", "*", "*")):
        with open(path, "rb") as f:
            out.append(f.read().decode("latin-1"))
    for path in glob.glob(os.path.join(sb.dir, "xdgstate", "**", "*"),
                          recursive=True):
        if os.path.isfile(path) and "tokens" not in path:
            with open(path, "rb") as f:
                out.append(f.read().decode("latin-1"))
    return "\n".join(out)


def test_auth_echo(t, sb):
    # the token refused, bearmail fetches a fresh one and tries once more:
    # the server quotes both
    for how in ("raw", "decoded", "token", "split"):
        subject = "echo-" + how
        # a delivery first, so that a token is cached to be refused
        sb.send_and_expect(t, "echo %s: warm-up" % how,
                           ["-i", "warm@example.com"], msg("warm-" + how),
                           rcpts=["warm@example.com"])
        first = secrets_of(sb)
        sb.set_script({"auth_echo": how})
        mark = sb.log_mark()
        rc, _, err = sb.run_sendmail(["-v", "-i", "echo@example.com"],
                                     msg(subject))
        e = err.decode("latin-1")
        second = secrets_of(sb)
        t.ok(first[0] != "" and second[0] != first[0] and rc == 0 and
             queued_subjects(sb) == [subject],
             "a server quoting the AUTH response (%s): a fresh token tried, "
             "then queued" % how, e[-400:])
        qid = expect_waiting(t, sb, "echo %s" % how, mark, r"535 5\.7\.3")
        # "split" quotes it over a two-line reply (535-, then 535 ), the
        # others on one line
        t.like(e, r"<<< 535[- ]5\.7\.3 .*\[redacted\]", "echo %s: what it "
               "quoted is shown as [redacted]" % how)
        where = {"stderr (-v)": e, "the log": sb.log_text(),
                 "the queue and state files": everything_stored(sb),
                 "mailq": listing(sb)}
        for name, text in where.items():
            t.is_(leaks(text, *first) + leaks(text, *second), [],
                  "echo %s: no secret in %s" % (how, name))
        sb.set_script({})
        sb.run_bearmail(["queue", "drop", qid or "none"])


def test_delegated_secret(t, sb):
    # a delegated account with a client secret: the file is read with the
    # secrets module's checks, and a bad one never reaches the network
    path = os.path.join(sb.dir, "secret")
    with open(path, "w", encoding="ascii") as f:
        f.write("s3cr3t-value\n")
    target = os.path.join(sb.dir, "secret-target")
    with open(target, "w", encoding="ascii") as f:
        f.write("other-secret\n")
    os.chmod(target, 0o600)
    link = os.path.join(sb.dir, "secret-link")
    os.symlink(target, link)
    for name, spec, mode, pattern in (
            ("world-readable", path, 0o644, r"permissions 0644 are too open"),
            ("a symlink", link, None, r"is a symbolic link")):
        if mode is not None:
            os.chmod(spec, mode)
        sb.write_config({"client_secret_file": spec})
        sb.seed_token_file(sb.mint()["refresh_token"])
        calls = len(sb.idp_calls())
        qid = sb.expect_deferred(t, "client_secret_file %s" % name,
                                 ["-i", "s@example.com"],
                                 msg("secret-" + name), pattern)
        t.like(sb.last_run[2].decode(), pattern, "client_secret_file %s: "
               "the line says so" % name)
        t.is_(len(sb.idp_calls()), calls, "client_secret_file %s: nothing "
              "was sent to the identity platform" % name)
        t.like(listing(sb), r"(?m)^%s .*\n.*client_secret_file" % qid,
               "client_secret_file %s: listed in the queue, with why" % name)
    sb.write_config()
    sb.seed_token_file(sb.mint()["refresh_token"])
    n = len(sb.messages())
    rc, _, err = flush(sb)
    got = sb.expect_arrivals(t, "a good configuration", n, 2, err=err)
    t.is_(sorted(subject_of(m) for m in got),
          ["secret-a symlink", "secret-world-readable"],
          "a good configuration delivers them")
    t.is_(queued_subjects(sb), [], "a good configuration: the queue is empty")


def test_sigpipe(t, sb):
    # `sendmail -v` whose caller closed its end of stderr
    n = len(sb.messages())
    r, w = os.pipe()
    os.close(r)
    p = subprocess.run([os.path.join(harness.BUILDDIR, "sendmail"), "-v",
                        "-i", "pipe@example.com"], input=msg("sigpipe"),
                       stdout=subprocess.DEVNULL, stderr=w, env=sb.env(),
                       cwd=sb.dir, timeout=60)
    os.close(w)
    t.is_(p.returncode, 0, "-v with a closed stderr: exit 0, not SIGPIPE")
    t.is_(subject_of(sb.expect_arrival(t, "-v with a closed stderr", n)),
          "sigpipe", "-v with a closed stderr: it is the message sent")


def limited(sb, args, fsize):
    """bearmail with files limited to fsize bytes (a disk that is full)."""
    def lower():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return subprocess.run([os.path.join(harness.BUILDDIR, "bearmail"),
                           *args], env=sb.env(), cwd=sb.dir,
                          capture_output=True, preexec_fn=lower, timeout=60)


def test_bounce_kept(t, sb):
    sb.set_script({"rcpt": {"gone@example.com": "550 5.1.1 User unknown"}})
    qid = sb.expect_deferred(t, "bounce kept: -odq",
                             ["-odq", "-i", "gone@example.com"],
                             msg("bounce-kept"), r"queued by request "
                             r"\(-odq\)")
    n = len(sb.messages())
    # the bounce (a few kilobytes) cannot be written; the envelope can
    p = limited(sb, ["queue", "flush"], 1500)
    t.is_(p.returncode, 0, "a queue run that cannot write the bounce: "
          "exit 0, not killed")
    t.is_((sb.queue_ids(), queued_subjects(sb)), ([qid], ["bounce-kept"]),
          "the refused message is kept while its bounce cannot be queued")
    sb.expect_no_arrival(t, "and no bounce went out", n)
    rc, _, err = flush(sb)
    m = sb.expect_arrival(t, "with room again, the bounce", n, err=err)
    t.ok(m["rcpt_tos"] == [USER] and
         b"Final-Recipient: rfc822; gone@example.com" in m["bytes"] and
         b"\r\nSubject: bounce-kept\r\n" in m["bytes"],
         "with room again, the bounce is queued and sent",
         (m["rcpt_tos"], m["bytes"][-600:]))
    t.is_((sb.queue_ids(), queued_subjects(sb)), ([], []),
          "and the message is gone")
    sb.set_script({})


def tests(t):
    with Sandbox() as sb:
        test_after_the_dot(t, sb)
        test_before_the_data(t, sb)
        test_deadline(t, sb)
        test_auth_echo(t, sb)
        test_sigpipe(t, sb)
        test_bounce_kept(t, sb)
        test_delegated_secret(t, sb)


run_tests(tests)
