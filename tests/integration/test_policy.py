"""The failure policy against hostile servers and files: after the final dot
ambiguity means queued (at least once, never lost); a reply whose code
changes between lines is temporary; one deadline bounds a whole reply; a
server that quotes the AUTH response learns nothing it can leak through us;
the client secret of a delegated refresh is read with the secrets module's
checks; `sendmail -v` survives a caller that stops reading; a permanent
refusal in a queue run lets go of the message only once its bounce is
queued."""
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


def arrived(sb, subject):
    return [m for m in sb.messages() if b"Subject: %s\r\n" % subject.encode()
            in m["bytes"]]


def flush(sb, *args):
    return sb.run_bearmail(["queue", "flush", "--force", *args])


def test_after_the_dot(t, sb):
    # an unreadable reply after the final dot: the server may have the
    # message, so it is queued (and sent again), never reported as failed
    cases = [("garbage", {"data": "this is not an SMTP reply"}),
             ("oversized", {"data": "250 " + "x" * 20000}),
             ("code-change", {"data": "250-2.0.0 queued\r\n554 5.0.0 no"})]
    for name, script in cases:
        sb.set_script(script)
        rc, _, err = sb.run_sendmail(["-i", "dot@example.com"],
                                     msg("after-dot-" + name))
        t.is_(rc, 0, "%s reply after the dot: exit 0 (queued), not 76" %
              name)
        t.is_(queued_subjects(sb), ["after-dot-" + name],
              "%s reply after the dot: the message waits in the queue" % name)
        sb.set_script({})
        flush(sb)
        t.ok(len(arrived(sb, "after-dot-" + name)) >= 1 and
             queued_subjects(sb) == [],
             "%s reply after the dot: the next run delivers it" % name)


def test_before_the_data(t, sb):
    # a reply whose code changes between lines, at RCPT and at MAIL: the
    # transaction has started, so it is temporary
    for where, script in (("RCPT", {"rcpt_default":
                                    "250-2.1.5 ok\r\n550 5.1.1 no"}),
                          ("MAIL", {"mail": "250-2.1.0 ok\r\n451 later"})):
        subject = "code-change-" + where
        sb.set_script(script)
        rc, _, err = sb.run_sendmail(["-i", "cc@example.com"], msg(subject))
        t.is_(rc, 0, "a code that changes between lines at %s: exit 0, "
              "not 76" % where)
        t.is_(queued_subjects(sb), [subject],
              "a code that changes at %s: queued" % where)
        sb.set_script({})
        flush(sb)
        t.is_(len(arrived(sb, subject)), 1, "code change at %s: delivered "
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
        try:
            rc, _, err = sb.run_sendmail(["-i", "slow@example.com"],
                                         msg(subject), timeout=90)
        except subprocess.TimeoutExpired:
            rc, err = None, b"still waiting after 90 s"
        t.is_(rc, 0, "a reply dripping at %s: given up, queued (exit 0)" %
              at)
        t.like(err.decode("utf-8", "replace") + listing(sb),
               r"timed out", "dripping at %s: the reason says it timed out"
               % at)
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
        sb.run_sendmail(["-i", "warm@example.com"], msg("warm-" + how))
        first = secrets_of(sb)
        sb.set_script({"auth_echo": how})
        rc, _, err = sb.run_sendmail(["-v", "-i", "echo@example.com"],
                                     msg(subject))
        e = err.decode("latin-1")
        second = secrets_of(sb)
        t.ok(first[0] != "" and second[0] != first[0] and rc == 0 and
             queued_subjects(sb) == [subject],
             "a server quoting the AUTH response (%s): a fresh token tried, "
             "then queued" % how, e[-400:])
        t.like(e, r"<<< 535[- ]5\.7\.3 .*\[redacted\]", "echo %s: what it "
               "quoted is shown as [redacted]" % how)
        where = {"stderr (-v)": e, "the log": sb.log_text(),
                 "the queue and state files": everything_stored(sb),
                 "mailq": listing(sb)}
        for name, text in where.items():
            t.is_(leaks(text, *first) + leaks(text, *second), [],
                  "echo %s: no secret in %s" % (how, name))
        sb.set_script({})
        sb.run_bearmail(["queue", "drop", re.search(
            r"(?m)^([0-9A-F]{19})", listing(sb)).group(1)])


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
        rc, _, err = sb.run_sendmail(["-i", "s@example.com"],
                                     msg("secret-" + name))
        t.is_(rc, 0, "client_secret_file %s: the message is queued" % name)
        t.like(err.decode(), pattern, "client_secret_file %s: the line says "
               "so" % name)
        t.is_(len(sb.idp_calls()), calls, "client_secret_file %s: nothing "
              "was sent to the identity platform" % name)
        t.like(listing(sb), r"secret-|client_secret_file|s@example\.com",
               "client_secret_file %s: listed in the queue" % name)
    sb.write_config()
    sb.seed_token_file(sb.mint()["refresh_token"])
    flush(sb)
    t.is_(queued_subjects(sb), [], "a good configuration delivers them")


def test_sigpipe(t, sb):
    # `sendmail -v` whose caller closed its end of stderr
    r, w = os.pipe()
    os.close(r)
    p = subprocess.run([os.path.join(harness.BUILDDIR, "sendmail"), "-v",
                        "-i", "pipe@example.com"], input=msg("sigpipe"),
                       stdout=subprocess.DEVNULL, stderr=w, env=sb.env(),
                       cwd=sb.dir, timeout=60)
    os.close(w)
    t.is_(p.returncode, 0, "-v with a closed stderr: exit 0, not SIGPIPE")
    t.is_(len(arrived(sb, "sigpipe")), 1, "-v with a closed stderr: the "
          "message arrived")


def limited(sb, args, fsize):
    """bearmail with files limited to fsize bytes (a disk that is full)."""
    def lower():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return subprocess.run([os.path.join(harness.BUILDDIR, "bearmail"),
                           *args], env=sb.env(), cwd=sb.dir,
                          capture_output=True, preexec_fn=lower, timeout=60)


def test_bounce_kept(t, sb):
    sb.set_script({"rcpt": {"gone@example.com": "550 5.1.1 User unknown"}})
    rc, _, _ = sb.run_sendmail(["-odq", "-i", "gone@example.com"],
                               msg("bounce-kept"))
    n = len(sb.messages())
    # the bounce (a few kilobytes) cannot be written; the envelope can
    p = limited(sb, ["queue", "flush"], 1500)
    t.is_(p.returncode, 0, "a queue run that cannot write the bounce: "
          "exit 0, not killed")
    t.is_(queued_subjects(sb), ["bounce-kept"], "the refused message is "
          "kept while its bounce cannot be queued")
    t.is_(len(sb.messages()), n, "and no bounce went out")
    flush(sb)
    bounces = [m for m in sb.messages()[n:] if m["rcpt_tos"] == [USER]]
    t.ok(len(bounces) == 1 and b"gone@example.com" in bounces[0]["bytes"],
         "with room again, the bounce is queued and sent")
    t.is_(queued_subjects(sb), [], "and the message is gone")
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
