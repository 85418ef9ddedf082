"""A damaged queue never loses mail silently (docs/queue.md "Damaged
messages"), against the real binaries and the test servers: one of three
queued envelopes damaged on disk is named by `mailq` and moved to
corrupt/, the log says what happened, and `bearmail queue flush` delivers
the other two; a truncated data file is not sent, and its message is
moved aside and named; an envelope written before checksums is still
delivered.  Each message queued is found by its ID, each flush judged by
exactly what arrived at the server."""
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
    return found.group(1).decode() if found else ""


def delivered(sb, prefix):
    """How many times each message (by subject) was accepted."""
    return collections.Counter(s for s in map(subject, sb.messages())
                               if s and s.startswith(prefix))


def queue_one(t, sb, name, subject):
    """sendmail -odq: exit 0, nothing sent, the ID its log line gives in
    the listing; the ID."""
    return sb.expect_deferred(t, name, ["-i", "-odq", "bob@example.com"],
                              msg(subject), r"queued by request \(-odq\)",
                              env=ENV)


def queue_three(t, sb, tag):
    """Queue qd-TAG-a, -b, -c with -odq: {letter: (id, data bytes)}."""
    ids = {x: queue_one(t, sb, "%s: qd-%s-%s" % (tag, tag, x),
                        "qd-%s-%s" % (tag, x)) for x in "abc"}
    found = {}
    for path in glob.glob(os.path.join(qdir(sb), "data", "*.msg")):
        with open(path, "rb") as f:
            data = f.read()
        s = re.search(rb"Subject: qd-%s-([abc])\r\n" % tag.encode(), data)
        if s:
            found[s.group(1).decode()] = (
                os.path.basename(path)[:-len(".msg")], data)
    t.is_({x: found[x][0] for x in found}, ids,
          "%s: three data files, named by their IDs" % tag)
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

    n = len(sb.messages())
    rc, out = flush(sb)
    t.diag("flush: exit %d %r" % (rc, out))
    new = sb.expect_arrivals(t, "damaged envelope: the flush", n, 2, err=out)
    t.is_(dict(delivered(sb, "qd-env-")), {"qd-env-a": 1, "qd-env-c": 1},
          "damaged envelope: the flush delivers the other two, once each")
    got = {subject(m): m["bytes"] for m in new}
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
    n, mark = len(sb.messages()), sb.log_mark()
    rc, out = flush(sb)
    t.diag("flush: exit %d %r" % (rc, out))
    new = sb.expect_arrivals(t, "truncated data: the flush", n, 2, err=out)
    t.is_(sorted(subject(m) for m in new), ["qd-data-a", "qd-data-b"],
          "truncated data: the other two are delivered")
    sent = [subject(m) for m in sb.messages(accepted_only=False)[before:]]
    t.is_(sorted(sent), ["qd-data-a", "qd-data-b"],
          "truncated data: nothing is sent for it")
    t.ok(in_corrupt(sb, bad) and not envelopes(sb, bad),
         "truncated data: the message is moved to corrupt/")
    t.like(sb.log_since(mark), r"data file of message %s is damaged \(%d "
           r"bytes, "
           r"expected %d\).*moved to %s/corrupt/"
           % (bad, len(data) - 10, len(data), re.escape(qdir(sb))),
           "truncated data: the log says what is wrong and where it went")
    after = sb.log_since(mark).split("data file of message %s is damaged" %
                                     bad, 1)[-1]
    t.ok(not re.search(r"status=deferred.*queued as %s" % bad, after) and
         "no longer in the queue" not in after, "truncated data: once "
         "moved aside, not logged as deferred, nor as vanished", after)
    rc, text, _ = mailq(sb)
    t.like(text, damaged_line(sb, bad),
           "truncated data: mailq names it as damaged")
    flush(sb)
    sent = [subject(m) for m in sb.messages(accepted_only=False)[before:]]
    t.ok(sorted(sent) == ["qd-data-a", "qd-data-b"] and
         not envelopes(sb, bad), "truncated data: a second flush neither "
         "sends it nor brings it back", sent)


def before_checksums(t, sb):
    clear(sb)
    qid = queue_one(t, sb, "old envelope", "qd-old")
    path = os.path.join(qdir(sb), "new", "%s.env" % qid)
    t.is_(glob.glob(os.path.join(qdir(sb), "new", "*.env")), [path],
          "old envelope: one message queued")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    t.like(text, r'"sha256":"[0-9a-f]{64}"', "new envelopes record a "
           "SHA-256 of the data")
    old = re.sub(r'(?m)^\s*"sha256":"[0-9a-f]*",\n', "", text)
    t.ok("sha256" not in old, "old envelope: the checksum taken out")
    with open(path, "w", encoding="utf-8") as f:
        f.write(old)
    n = len(sb.messages())
    rc, out = flush(sb)
    m = sb.expect_arrival(t, "old envelope: the flush", n, err=out)
    t.is_(subject(m), "qd-old", "an envelope written before checksums is "
          "still delivered")
    t.is_(dict(delivered(sb, "qd-old")), {"qd-old": 1}, "old envelope: once")
    t.ok(not in_corrupt(sb, qid) and not os.path.exists(path),
         "old envelope: not taken for damaged, gone once sent")


def tests(t):
    with Sandbox() as sb:
        damaged_envelope(t, sb)
        truncated_data(t, sb)
        before_checksums(t, sb)
        t.is_(sb.violations(), [], "no protocol violation in any session")


run_tests(tests)
