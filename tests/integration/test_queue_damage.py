"""A damaged queue never loses mail silently (docs/queue.md "Damaged
messages"), against the real binaries and the test servers: one of three
queued envelopes damaged on disk is named by `mailq` and moved to
corrupt/, the log says what happened, and `bearmail queue flush` delivers
the other two; a truncated data file is not sent, and its message is
moved aside and named; an envelope written before checksums is still
delivered."""
import collections
import glob
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import harness  # noqa: E402
from harness import Sandbox, run_tests  # noqa: E402

BEARMAIL = os.path.join(harness.BUILDDIR, "bearmail")
SENDMAIL = os.path.join(harness.BUILDDIR, "sendmail")
ENV = {"BEARMAIL_BIN": BEARMAIL}
LISTING_ID = re.compile(r"^([0-9A-Za-z]+)([*!]?)\s+\d+\s+\w{3} \w{3} +\d+ "
                        r"\d\d:\d\d:\d\d\s+\S*", re.M)


def qdir(sb):
    return os.path.join(sb.dir, "queue")


def msg(subject):
    return (b"Subject: %s\r\nMessage-ID: <%s@host.example>\r\n\r\nhello\r\n"
            % (subject.encode(), subject.encode()))


def subject(m):
    head = m["bytes"].split(b"\r\n\r\n", 1)[0]
    found = re.search(rb"(?m)^Subject: (qd-[^\r\n]*)", head)
    return found.group(1).decode() if found else None


def delivered(sb, prefix):
    """How many times each message (by subject) was accepted."""
    return collections.Counter(s for s in map(subject, sb.messages())
                               if s and s.startswith(prefix))


def queue_three(t, sb, tag):
    """Queue qd-TAG-a, -b, -c with -odq: {letter: (id, data bytes)}."""
    for x in "abc":
        rc, _, err = sb.run_sendmail(["-i", "-odq", "bob@example.com"],
                                     msg("qd-%s-%s" % (tag, x)), env=ENV)
        t.is_(rc, 0, "%s: qd-%s-%s queued" % (tag, tag, x))
    found = {}
    for path in glob.glob(os.path.join(qdir(sb), "data", "*.msg")):
        with open(path, "rb") as f:
            data = f.read()
        s = re.search(rb"Subject: qd-%s-([abc])\r\n" % tag.encode(), data)
        if s:
            found[s.group(1).decode()] = (
                os.path.basename(path)[:-len(".msg")], data)
    t.is_(sorted(found), ["a", "b", "c"], "%s: three data files" % tag)
    return found


def mailq(sb):
    """The listing from `mailq` (sendmail called by that name)."""
    link = os.path.join(sb.dir, "mailq")
    if not os.path.exists(link):
        os.symlink(SENDMAIL, link)
    rc, out, err = sb.run(link, [], env=ENV)
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def flush(sb):
    rc, out, err = sb.run_bearmail(["queue", "flush", "--force"], env=ENV,
                                   timeout=120)
    return rc, (out + err).decode("utf-8", "replace")


def damaged_line(sb, id_):
    """The listing line of a message moved to corrupt/."""
    return r"(?m)^%s#\s+\(damaged: moved to %s/corrupt/" % (
        re.escape(id_), re.escape(qdir(sb)))


def in_corrupt(sb, id_):
    return all(os.path.isfile(os.path.join(qdir(sb), "corrupt", id_ + s))
               for s in (".env", ".msg"))


def envelopes(sb, id_):
    """The envelopes of id_ still in the queue (not in corrupt/)."""
    return [p for state in ("new", "deferred", "hold")
            for p in glob.glob(os.path.join(qdir(sb), state, id_ + ".env"))]


def clear(sb):
    for path in glob.glob(os.path.join(qdir(sb), "*", "*")):
        os.unlink(path)


def damaged_envelope(t, sb):
    q = queue_three(t, sb, "env")
    bad = q["b"][0]
    path = os.path.join(qdir(sb), "new", bad + ".env")
    with open(path, "rb") as f:
        text = f.read()
    with open(path, "wb") as f:            # cut short, as by a bad disk
        f.write(text[:len(text) // 2])

    rc, text, err = mailq(sb)
    t.is_(rc, 0, "damaged envelope: mailq exits 0")
    t.like(text, damaged_line(sb, bad),
           "damaged envelope: mailq names it as damaged, and where it is")
    t.is_(sorted(m.group(1) for m in LISTING_ID.finditer(text)),
          sorted([q["a"][0], q["c"][0]]),
          "damaged envelope: the other two are listed as usual")
    t.like(text, r"-- \d+ Kbytes in 3 Requests\.",
           "damaged envelope: the summary counts all three")
    t.ok(in_corrupt(sb, bad) and not envelopes(sb, bad) and
         not os.path.exists(os.path.join(qdir(sb), "data", bad + ".msg")),
         "damaged envelope: envelope and data moved to corrupt/")
    log = sb.log_text()
    t.like(log, r"(?m)^.*envelope of message %s is damaged \(not a JSON "
           r"object.*moved to %s/corrupt/.*send the message again by hand"
           % (bad, re.escape(qdir(sb))),
           "damaged envelope: one log line names the message, why, where "
           "and what to do")

    rc, out = flush(sb)
    t.diag("flush: exit %d %r" % (rc, out))
    t.is_(dict(delivered(sb, "qd-env-")), {"qd-env-a": 1, "qd-env-c": 1},
          "damaged envelope: the flush delivers the other two, once each")
    got = {subject(m): m["bytes"] for m in sb.messages()}
    t.ok(got.get("qd-env-a") == q["a"][1] and
         got.get("qd-env-c") == q["c"][1],
         "damaged envelope: they arrive exactly as queued")
    rc, text, _ = mailq(sb)
    t.ok(re.search(damaged_line(sb, bad), text) and
         re.search(r"in 1 Request\.", text) and
         not LISTING_ID.search(text),
         "damaged envelope: afterwards mailq shows only the damaged one",
         text)
    t.is_(len(re.findall(r"envelope of message %s is damaged" % bad,
                         sb.log_text())), 1,
          "damaged envelope: logged once, not at every run")


def truncated_data(t, sb):
    clear(sb)
    q = queue_three(t, sb, "data")
    bad, data = q["c"]
    path = os.path.join(qdir(sb), "data", bad + ".msg")
    with open(path, "r+b") as f:
        f.truncate(len(data) - 10)

    before = len(sb.messages(accepted_only=False))
    rc, out = flush(sb)
    t.diag("flush: exit %d %r" % (rc, out))
    t.is_(dict(delivered(sb, "qd-data-")), {"qd-data-a": 1, "qd-data-b": 1},
          "truncated data: the other two are delivered")
    sent = [subject(m) for m in sb.messages(accepted_only=False)[before:]]
    t.ok("qd-data-c" not in sent, "truncated data: nothing is sent for it",
         sent)
    t.ok(in_corrupt(sb, bad) and not envelopes(sb, bad),
         "truncated data: the message is moved to corrupt/")
    t.like(sb.log_text(), r"data file of message %s is damaged \(%d bytes, "
           r"expected %d\).*moved to %s/corrupt/"
           % (bad, len(data) - 10, len(data), re.escape(qdir(sb))),
           "truncated data: the log says what is wrong and where it went")
    after = sb.log_text().split("data file of message %s is damaged" %
                                bad, 1)[-1]
    t.ok(not re.search(r"status=deferred.*queued as %s" % bad, after) and
         "no longer in the queue" not in after, "truncated data: once "
         "moved aside, not logged as deferred, nor as vanished", after)
    rc, text, _ = mailq(sb)
    t.like(text, damaged_line(sb, bad),
           "truncated data: mailq names it as damaged")
    flush(sb)
    sent = [subject(m) for m in sb.messages(accepted_only=False)[before:]]
    t.ok("qd-data-c" not in sent and not envelopes(sb, bad),
         "truncated data: a second flush neither sends it nor brings it "
         "back", sent)


def before_checksums(t, sb):
    clear(sb)
    rc, _, _ = sb.run_sendmail(["-i", "-odq", "bob@example.com"],
                               msg("qd-old"), env=ENV)
    paths = glob.glob(os.path.join(qdir(sb), "new", "*.env"))
    t.ok(rc == 0 and len(paths) == 1, "old envelope: one message queued")
    with open(paths[0], encoding="utf-8") as f:
        text = f.read()
    t.like(text, r'"sha256":"[0-9a-f]{64}"', "new envelopes record a "
           "SHA-256 of the data")
    with open(paths[0], "w", encoding="utf-8") as f:
        f.write(re.sub(r'(?m)^\s*"sha256":"[0-9a-f]*",\n', "", text))
    flush(sb)
    t.is_(dict(delivered(sb, "qd-old")), {"qd-old": 1},
          "an envelope written before checksums is still delivered")
    t.ok(not in_corrupt(sb, os.path.basename(paths[0])[:-len(".env")]),
         "old envelope: not taken for damaged")


def tests(t):
    with Sandbox() as sb:
        damaged_envelope(t, sb)
        truncated_data(t, sb)
        before_checksums(t, sb)
        t.is_(sb.violations(), [], "no protocol violation in any session")


run_tests(tests)
