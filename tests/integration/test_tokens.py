"""The token engine with the file store: 20 senders started at once with a
stale token cause exactly one refresh and no replay; a revoked refresh token
queues the message (exit 0) and says "run `bearmail login work`" on stderr,
in the log and in the state file; `bearmail logout` forgets the token; the token file is
refused, like ssh refuses keys, when others may read it, when it is a
symbolic link or belongs to someone else; it is created 0600 in a 0700
directory; and no file the sandbox produced holds a token."""
import glob
import json
import os
import stat
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import CLIENT_ID, Sandbox, run_tests, USER  # noqa: E402

MSG = b"Subject: tokens\n\nhello\n"
N = 20


def concurrent_senders(t, sb, seen):
    """N sendmail processes at once, all holding a stale token."""
    store = sb.token_store()
    seen.add(store["refresh_token"])
    t.ok(not store.get("access_token"), "the seeded record has no access "
         "token (stale)")
    before = len(sb.idp_calls())
    barrier = threading.Barrier(N)
    results = [None] * N

    def one(i):
        barrier.wait()
        results[i] = sb.run_sendmail(["bob%d@example.com" % i], MSG)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rcs = [r[0] for r in results]
    t.is_(rcs, [0] * N, "%d concurrent senders: all exit 0" % N)
    for r in results:
        if r[0] != 0:
            t.diag(r[2].decode("utf-8", "replace"))
            break
    msgs = sb.expect_arrivals(t, "%d concurrent senders" % N, 0, N)
    got = sorted(r for m in msgs for r in m["rcpt_tos"])
    t.is_(got, sorted("bob%d@example.com" % i for i in range(N)),
          "%d concurrent senders: all %d delivered, one recipient each"
          % (N, N))
    t.is_(sb.queue_ids(), [], "%d concurrent senders: none queued" % N)
    calls = sb.idp_calls()[before:]
    refreshes = [c for c in calls if c["grant_type"] == "refresh_token"]
    t.is_(len(refreshes), 1, "exactly one refresh_token call")
    t.ok(not any(c.get("error") == "invalid_grant" for c in calls),
         "no replayed refresh token (no invalid_grant)")
    after = sb.token_store()
    t.ok(after["refresh_token"] != store["refresh_token"] and
         after.get("access_token"), "the rotated refresh token and the "
         "access token were stored")
    seen.update([after.get("refresh_token"), after.get("access_token")])


def state_file(sb):
    path = os.path.join(sb.dir, "xdgstate", "bearmail", "status",
                        "work.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def revoked(t, sb, seen):
    """A revoked refresh token: 78 and the login hint everywhere."""
    sb.revoke()
    sb.seed_token_file(sb.token_store()["refresh_token"])   # stale again
    n = len(sb.messages())
    rc, _, err = sb.run_sendmail(["x@example.com"], MSG)
    err = err.decode("utf-8", "replace")
    # a failure before the SMTP transaction that a login fixes: the message
    # waits in the queue (exit 0), the login hint on stderr
    t.is_(rc, 0, "revoked refresh token: exit 0 (queued)")
    sb.expect_no_arrival(t, "revoked refresh token", n)
    qid = sb.expect_queued(t, "revoked refresh token", err)
    t.is_(sb.queue_ids(), [qid] if qid else ["?"],
          "revoked: that message is the only one queued")
    t.like(err, r"run `bearmail login work`", "revoked: stderr says to log in")
    t.like(sb.log_text(), r"run `bearmail login work`",
           "revoked: the log line says to log in")
    st = state_file(sb)
    t.ok(st.get("login_needed") == 1, "revoked: state says login_needed",
         diag=json.dumps(st))
    t.like(st.get("last_error") or "", r"run `bearmail login work`",
           "revoked: state's last error says to log in")
    rc, _, err = sb.run_bearmail(["token"])
    t.is_(rc, 78, "revoked: `bearmail token` exits 78 too")
    t.like(err.decode(), r"invalid_grant.*run `bearmail login work`",
           "revoked: `bearmail token` quotes the error and the hint")


def logout(t, sb):
    rc, out, err = sb.run_bearmail(["logout"])
    t.is_(rc, 0, "logout: exit 0")
    t.is_(out.decode(), "removed the tokens of account work from %s\n"
          % sb.token_file, "logout: says where they were")
    t.ok(not os.path.exists(sb.token_file), "logout: the token file is gone")
    rc, out, err = sb.run_bearmail(["token"])
    t.is_(rc, 78, "after logout: `bearmail token` exits 78")
    t.is_(err.decode(), "bearmail: no token for account work: run `bearmail "
          "login work` (or `bearmail token import work`)\n",
          "after logout: no token, and how to get one")
    rc, out, err = sb.run_bearmail(["logout", "work"])
    t.is_(rc, 0, "logout again: exit 0")
    t.is_(out.decode(), "account work has no tokens in %s: nothing to "
          "forget\n" % sb.token_file, "logout again: nothing to forget")
    rc, _, err = sb.run_bearmail(["logout", "nosuch"])
    t.is_(rc, 78, "logout of an unknown account: 78")


def refusals(t, sb, seen):
    minted = sb.seed()
    seen.add(minted["refresh_token"])
    path = sb.token_file
    for mode in (0o644, 0o640):
        os.chmod(path, mode)
        rc, out, err = sb.run_bearmail(["token"])
        t.is_(rc, 78, "token file mode %04o: refused (78)" % mode)
        t.is_(err.decode(), "bearmail: token file %s is readable by others "
              "(mode %04o): run chmod 600 %s\n" % (path, mode, path),
              "token file mode %04o: the chmod 600 advice" % mode)
        t.is_(out, b"", "token file mode %04o: no token printed" % mode)
    os.chmod(path, 0o600)
    real = path + ".real"
    os.rename(path, real)
    os.symlink(real, path)
    rc, out, err = sb.run_bearmail(["token"])
    t.is_(rc, 78, "symlinked token file: refused (78)")
    t.is_(err.decode(), "bearmail: token file %s is a symbolic link: "
          "refusing it\n" % path, "symlinked token file: the message")
    os.unlink(path)
    os.rename(real, path)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
        rc, out, err = sb.run_bearmail(["token"])
        t.is_(rc, 78, "token file owned by nobody: refused (78)")
        t.is_(err.decode(), "bearmail: token file %s is owned by uid 65534, "
              "not by you (uid 0): refusing it; remove it and log in "
              "again\n" % path, "foreign owner: the message")
        os.chown(path, 0, 0)
    else:
        t.skip("token file owned by nobody", "not root")
        t.skip("foreign owner: the message", "not root")
    rc, out, err = sb.run_bearmail(["token"])
    t.is_(rc, 0, "restored token file: accepted again")
    tok = out.decode().strip()
    t.ok(len(tok) > 100, "`bearmail token` printed an access token")
    seen.add(tok)
    seen.update(v for k, v in sb.token_store().items()
                if k in ("access_token", "refresh_token") and v)


def quoted(t, sb, seen):
    """An identity platform that quotes the refresh token it was sent (whole
    and in pieces): it reaches no output, log, status file or queue."""
    rt = sb.seed()["refresh_token"]
    seen.add(rt)
    sb.idp_fail(count=2, status=400, error="invalid_grant", aadsts=70000,
                description="AADSTS70000: refresh_token=%s is bad; again: "
                "%s ... %s" % (rt, rt[:40], rt[-40:]))
    rc, out, err = sb.run_sendmail(["-i", "q@example.com"], MSG)
    e = err.decode("utf-8", "replace")
    t.is_(rc, 0, "a quoting identity platform: the message is queued")
    # (the description is cut at 512 octets, inside the quoted token)
    t.like(e, r"AADSTS70000: refresh_token=\[redacted\]: run `bearmail "
           r"login work` \(queued as", "the quote is redacted, the line kept")
    where = [e, sb.log_text(), sb.queue_listing(), json.dumps(state_file(sb))]
    for path in glob.glob(os.path.join(sb.dir, "queue", "*", "*.env")):
        with open(path, encoding="utf-8", errors="replace") as f:
            where.append(f.read())
    pieces = [rt[i:i + 24] for i in range(0, len(rt) - 24, 12)]
    t.ok(not any(p in w for w in where for p in pieces),
         "no piece of the refresh token in stderr, the log, the queue or "
         "the status file")
    for qid in sb.queue_ids():
        sb.run_bearmail(["queue", "drop", qid])


def creation(t, sb, seen):
    new = os.path.join(sb.dir, "newdir", "sub", "work.json")
    sb.write_config({"token_store": "file:" + new})
    minted = sb.mint()
    seen.add(minted["refresh_token"])
    rc, out, err = sb.run_bearmail(["token", "import"],
                                   json.dumps(minted).encode())
    t.is_(rc, 0, "import into a new directory: exit 0")
    if rc != 0:
        t.diag(err.decode("utf-8", "replace"))
    mode = stat.S_IMODE(os.stat(new).st_mode) if os.path.exists(new) else None
    t.is_(mode, 0o600, "the token file is created 0600")
    t.is_(stat.S_IMODE(os.stat(os.path.dirname(new)).st_mode), 0o700,
          "in a directory created 0700")
    t.is_(stat.S_IMODE(os.stat(os.path.dirname(os.path.dirname(new)))
                       .st_mode), 0o700, "its parent too")
    leftovers = [n for n in os.listdir(os.path.dirname(new))
                 if ".tmp." in n]
    t.is_(leftovers, [], "no temporary file left behind")
    sb.write_config({"token_store": "file"})
    rc, out, err = sb.run_bearmail(["token", "import"],
                                   json.dumps(sb.mint()).encode())
    default = os.path.join(sb.dir, "xdgstate", "bearmail", "tokens",
                           "work.json")
    t.is_(rc, 0, "token_store file: import")
    t.ok(os.path.exists(default) and
         stat.S_IMODE(os.stat(default).st_mode) == 0o600 and
         stat.S_IMODE(os.stat(os.path.dirname(default)).st_mode) == 0o700,
         "token_store file: $XDG_STATE_HOME/bearmail/tokens/work.json, "
         "0600 in 0700")
    with open(default, encoding="utf-8") as f:
        rec = json.load(f)
    seen.update(v for k, v in rec.items()
                if k in ("access_token", "refresh_token") and v)
    sb.write_config({})


def scan(t, sb, seen):
    """No token in any file the sandbox produced but the token stores."""
    keep = {os.path.realpath(p) for p in (
        sb.token_file, os.path.join(sb.dir, "newdir", "sub", "work.json"),
        os.path.join(sb.dir, "xdgstate", "bearmail", "tokens",
                     "work.json"))}
    needles = [s.encode() for s in seen if s and len(s) >= 20]
    hits, files = [], 0
    for root, _, names in os.walk(sb.dir):
        for n in names:
            p = os.path.realpath(os.path.join(root, n))
            if p in keep or not os.path.isfile(p):
                continue
            files += 1
            with open(p, "rb") as f:
                data = f.read()
            for needle in needles:
                for part in (needle, needle[:40], needle[-40:]):
                    if part in data:
                        hits.append(os.path.relpath(p, sb.dir))
                        break
    t.ok(len(needles) >= 4 and files >= 5,
         "the scan looks for %d tokens in %d files" % (len(needles), files))
    t.is_(sorted(set(hits)), [], "no token in any log, state or other file")


def app_only(t):
    """oauth_flow client_credentials: no login, one grant, then cached."""
    with Sandbox(seed=False) as sb:
        secret = "app-secret-0123456789abcdef"
        sb.register_app(CLIENT_ID, secret)
        path = os.path.join(sb.dir, "client-secret")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, secret.encode() + b"\n")
        os.close(fd)
        sb.write_config({"oauth_flow": "client_credentials",
                         "client_secret_file": path,
                         "scope": "https://outlook.office365.com/.default"})
        rc, out, err = sb.run_bearmail(["token"])
        t.is_(rc, 0, "app-only: a token without any login")
        rec = sb.token_store() if os.path.exists(sb.token_file) else {}
        t.ok(rec.get("access_token") == out.decode().strip() and
             "refresh_token" not in rec, "app-only: stored, no refresh token")
        m = sb.send_and_expect(t, "app-only", ["x@example.com"], MSG,
                               rcpts=["x@example.com"], sender=USER)
        t.is_(sb.session_of(m)["auth_user"], USER,
              "app-only: the server took the app token")
        grants = [c["grant_type"] for c in sb.idp_calls()]
        t.is_(grants, ["client_credentials"], "app-only: one grant, then "
              "the cached token")


def tests(t):
    seen = set()
    # no connection or rate limit: all 20 go out at once, none is queued
    with Sandbox(config_extra={"max_connections": "0", "rate": "0"}) as sb:
        concurrent_senders(t, sb, seen)
        revoked(t, sb, seen)
        logout(t, sb)
        refusals(t, sb, seen)
        quoted(t, sb, seen)
        creation(t, sb, seen)
        scan(t, sb, seen)
    app_only(t)


run_tests(tests)
