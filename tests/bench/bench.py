"""./dev bench: how fast bearmail is and how much memory it takes, measured
against the sandbox servers on loopback (tests/servers/harness.py).

The project measures speed and memory here, never with timed assertions in
tests: the machines are shared and noisy.  Wall times are only comparable
between runs on the same machine; the callgrind instruction counts are the
stable numbers.  docs/benchmarks.md says what each number means.

  1. synchronous delivery: N sequential `sendmail -t` of a small message
  2. the submitter's peak RSS and wall time for 1, 10 and 30 MB messages
  3. instructions (valgrind --tool=callgrind) of the submitter for a small
     and a 10 MB message
  4. queue flush: 100 messages queued with `sendmail -odq`, one
     `bearmail queue flush` (max_connections 3, rate 0)
  5. token refresh: 20 senders at once with a stale token

Prints a table and writes the same numbers as JSON (default
BUILDDIR/bench.json).  Exits 1 when something did not work (a message not
delivered, more than one refresh), so a broken run is not mistaken for a
fast one."""
import argparse
import glob
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "servers"))

SMALL = (b"From: Bench <alice@contoso.example>\n"
         b"To: Bob <bob@example.com>\n"
         b"Subject: bench\n\n"
         b"A small message, as cron or a monitoring script sends.\n")
LINE = b"0123456789" * 7 + b"\n"
MB = 1024 * 1024

harness = None          # imported in main(), after BEARMAIL_BUILDDIR is set
problems = []           # what did not work; the exit status


def problem(text):
    problems.append(text)
    print("!! " + text, file=sys.stderr, flush=True)


# ------------------------------------------------------------ measuring
def run_timed(sb, program, args, stdin, env=None):
    """Run a build-tree program; (exit code, wall seconds, rusage, stderr).
    stdin: bytes or an open file.  The rusage comes from wait4() on the
    process itself, so it is the submitter's own (sendmail execs it)."""
    path = os.path.join(harness.BUILDDIR, program)
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen([path, *args], env=sb.env(env), cwd=sb.dir,
                             stdin=subprocess.PIPE if isinstance(stdin, bytes)
                             else stdin, stdout=subprocess.DEVNULL,
                             stderr=err)
        if isinstance(stdin, bytes):
            try:
                p.stdin.write(stdin)
            except BrokenPipeError:
                pass
            p.stdin.close()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return p.returncode, wall, usage, text


def message_count(sb):
    """Messages the server accepted (from the session records only)."""
    return sum(1 for s in sb.sessions() for m in s["messages"]
               if m["accepted"])


def percentile(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def big_message(path, size):
    """A message of about size bytes of 71-character lines (LF endings)."""
    count = size // len(LINE)
    with open(path, "wb") as f:
        f.write(b"Subject: big\n\n")
        for _ in range(count // 1024):
            f.write(LINE * 1024)
        f.write(LINE * (count % 1024))
    return path


def warm_up(sb):
    """One delivery, so the access token is fresh and cached."""
    rc, _, _, err = run_timed(sb, "sendmail", ["-t"], SMALL)
    if rc != 0:
        problem("warm-up delivery failed (exit %d): %s" % (rc, err.strip()))


# ------------------------------------------------------------ 1. sync
def bench_sync(sb, n):
    warm_up(sb)
    before = message_count(sb)
    walls, cpus, failed = [], [], 0
    for _ in range(n):
        rc, wall, usage, err = run_timed(sb, "sendmail", ["-t"], SMALL)
        walls.append(wall)
        cpus.append(usage.ru_utime + usage.ru_stime)
        if rc != 0 or "queued as" in err:
            failed += 1
    got = message_count(sb) - before
    if failed or got != n:
        problem("sync: %d of %d not delivered at once (%d arrived)"
                % (failed, n, got))
    total = sum(walls)
    return {"messages": n, "delivered": got,
            "median_ms": statistics.median(walls) * 1000,
            "p90_ms": percentile(walls, 90) * 1000,
            "min_ms": min(walls) * 1000,
            "cpu_ms_per_message": statistics.median(cpus) * 1000,
            "messages_per_second": n / total}


# ------------------------------------------------------------ 2. memory
def bench_rss(sb, sizes_mb):
    rows = []
    for mb in sizes_mb:
        path = big_message(os.path.join(sb.dir, "big-%d.eml" % mb), mb * MB)
        size = os.path.getsize(path)
        before = message_count(sb)
        with open(path, "rb") as fin:
            rc, wall, usage, err = run_timed(sb, "sendmail",
                                             ["-i", "big@example.com"], fin)
        os.unlink(path)
        delivered = rc == 0 and "queued as" not in err and \
            message_count(sb) == before + 1
        if not delivered:
            problem("%d MB message not delivered (exit %d): %s"
                    % (mb, rc, err.strip()[:300]))
        rows.append({"size_mb": mb, "bytes": size, "delivered": delivered,
                     "max_rss_kb": usage.ru_maxrss, "wall_s": wall,
                     "cpu_s": usage.ru_utime + usage.ru_stime,
                     "mb_per_second": size / MB / wall})
    return rows


# ------------------------------------------------------------ 3. callgrind
def callgrind_one(sb, args, stdin, tag):
    """Instructions executed by bearmail-submit under sendmail."""
    out = os.path.join(sb.dir, "callgrind.%s.%%p" % tag)
    argv = ["valgrind", "--tool=callgrind", "--trace-children=yes",
            "--callgrind-out-file=" + out,
            os.path.join(harness.BUILDDIR, "sendmail"), *args]
    before = message_count(sb)
    calls = len(sb.idp_calls())
    start = time.perf_counter()
    feed = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin}
    p = subprocess.run(argv, capture_output=True, env=sb.env(), cwd=sb.dir,
                       timeout=1800, **feed)
    wall = time.perf_counter() - start
    total, files = 0, 0
    for path in glob.glob(out.replace("%p", "*")):
        cmd, summary = "", 0
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("cmd:"):
                    cmd = line
                elif line.startswith("summary:"):
                    summary = int(line.split()[1])
        if "bearmail-submit" in cmd:
            total += summary
            files += 1
        os.unlink(path)
    delivered = p.returncode == 0 and message_count(sb) == before + 1
    if not delivered or files == 0:
        problem("callgrind %s: exit %d, %d profiles: %s" % (
            tag, p.returncode, files,
            p.stderr.decode("utf-8", "replace")[-300:]))
    return {"instructions": total, "delivered": delivered,
            "token_requests": len(sb.idp_calls()) - calls,
            "wall_s_under_valgrind": wall}


def bench_callgrind(sb):
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind is not installed "
                "(apt-get install valgrind)"}
    warm_up(sb)
    small = callgrind_one(sb, ["-t"], SMALL, "small")
    path = big_message(os.path.join(sb.dir, "cg-10.eml"), 10 * MB)
    with open(path, "rb") as fin:
        big = callgrind_one(sb, ["-i", "big@example.com"], fin, "10mb")
    os.unlink(path)
    return {"small": small, "10mb": big}


# ------------------------------------------------------------ 4. flush
def bench_flush(n):
    # the outlook preset (max_connections 3), without its rate of 30/min
    with harness.Sandbox(config_extra={"rate": "0"}) as sb:
        warm_up(sb)
        before = message_count(sb)
        sessions = len(sb.sessions())
        start = time.perf_counter()
        for i in range(n):
            rc, _, _, err = run_timed(
                sb, "sendmail", ["-odq", "-i", "q%d@example.com" % i],
                b"Subject: queued %d\n\nqueued message %d\n" % (i, i))
            if rc != 0:
                problem("sendmail -odq failed (exit %d): %s" % (rc, err))
        queue_s = time.perf_counter() - start
        rc, wall, _, err = run_timed(sb, "bearmail", ["queue", "flush"], b"")
        got = message_count(sb) - before
        used = len(sb.sessions()) - sessions
        if rc != 0 or got != n:
            problem("flush: exit %d, %d of %d delivered: %s"
                    % (rc, got, n, err.strip()[:300]))
        if used > 3:
            problem("flush used %d SMTP sessions (max_connections 3)" % used)
        return {"messages": n, "delivered": got, "queue_s": queue_s,
                "queue_ms_per_message": queue_s / n * 1000,
                "flush_s": wall, "messages_per_second": got / wall,
                "smtp_sessions": used}


# ------------------------------------------------------------ 5. refresh
def bench_refresh(n):
    with harness.Sandbox(config_extra={"max_connections": "0",
                                       "rate": "0"}) as sb:
        if sb.token_store().get("access_token"):
            problem("refresh: the seeded token is not stale")
        before = len(sb.idp_calls())
        barrier = threading.Barrier(n + 1)
        results = [None] * n

        def one(i):
            barrier.wait()
            results[i] = run_timed(sb, "sendmail", ["bob%d@example.com" % i],
                                   b"Subject: refresh %d\n\nhi\n" % i)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        barrier.wait()
        start = time.perf_counter()
        for th in threads:
            th.join()
        wall = time.perf_counter() - start
        slowest = max(r[1] for r in results)
        ok = sum(1 for r in results if r[0] == 0 and "queued as" not in r[3])
        got = len(sb.wait_messages(n))
        refreshes = sum(1 for c in sb.idp_calls()[before:]
                        if c["grant_type"] == "refresh_token")
        if ok != n or got != n:
            problem("refresh: %d of %d senders delivered at once, %d arrived"
                    % (ok, n, got))
        if refreshes != 1:
            problem("refresh: %d refresh calls for %d senders (must be 1)"
                    % (refreshes, n))
        return {"senders": n, "delivered": got, "wall_s": wall,
                "slowest_sender_s": slowest, "refresh_calls": refreshes}


# ------------------------------------------------------------ output
def fmt(v, unit=""):
    if isinstance(v, float):
        v = ("%.1f" % v) if v >= 10 else ("%.3f" % v if v < 1 else
                                          "%.2f" % v)
    elif isinstance(v, int):
        v = "{:,}".format(v)
    return ("%s %s" % (v, unit)).rstrip()


def table(res):
    """The results as aligned text, one section per benchmark."""
    rows = []

    def sec(title):
        rows.extend([None, (title, "")])

    def row(name, value, unit=""):
        rows.append(("  " + name, fmt(value, unit)))

    def failed(key, title):
        r = res.get(key)
        if not r or "failed" in r or "skipped" in r:
            sec(title)
            rows.append(("  failed" if not r or "failed" in r else
                         "  skipped", (r or {}).get("failed") or
                         (r or {}).get("skipped") or "did not run"))
            return None
        return r

    s = failed("sync", "1. synchronous delivery")
    if s:
        sec("1. synchronous delivery (sendmail -t, %d small messages)"
            % s["messages"])
        row("median per message", s["median_ms"], "ms")
        row("p90 per message", s["p90_ms"], "ms")
        row("fastest", s["min_ms"], "ms")
        row("submitter CPU (median)", s["cpu_ms_per_message"], "ms")
        row("throughput", s["messages_per_second"], "msg/s")
    rss = res.get("rss")
    if isinstance(rss, dict) or not rss:
        failed("rss", "2. big messages")
    else:
        sec("2. big messages (sendmail -i, peak RSS of the submitter)")
        for r in rss:
            row("%d MB: peak RSS" % r["size_mb"], r["max_rss_kb"], "kB")
            row("%d MB: wall time" % r["size_mb"], r["wall_s"], "s")
    cg = failed("callgrind", "3. instructions of bearmail-submit (callgrind)")
    if cg:
        sec("3. instructions of bearmail-submit (callgrind)")
        row("small message (sendmail -t)", cg["small"]["instructions"], "Ir")
        row("10 MB message (sendmail -i)", cg["10mb"]["instructions"], "Ir")
        row("10 MB: instructions per byte",
            cg["10mb"]["instructions"] / (10 * MB))
    f = failed("flush", "4. queue flush")
    if f:
        sec("4. queue flush (%d queued with -odq; max_connections 3, rate 0)"
            % f["messages"])
        row("queueing (sendmail -odq)", f["queue_ms_per_message"],
            "ms/message")
        row("flush wall time", f["flush_s"], "s")
        row("flush throughput", f["messages_per_second"], "msg/s")
        row("SMTP sessions used", f["smtp_sessions"])
    r = failed("refresh", "5. token refresh")
    if r:
        sec("5. token refresh (%d senders at once, stale token)"
            % r["senders"])
        row("wall time until all exit", r["wall_s"], "s")
        row("refresh calls at the IdP", r["refresh_calls"])
    width = max(len(x[0]) for x in rows if x and x[1] != "")
    out = []
    for x in rows:
        if x is None:
            out.append("")
        elif x[1] == "":
            out.append(x[0])
        else:
            out.append("%-*s  %s" % (width, x[0], x[1]))
    return "\n".join(out).strip("\n")


def meta(a):
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "host": platform.node(), "cpus": os.cpu_count(),
            "kernel": platform.release(), "python": platform.python_version(),
            "quick": a.quick, "builddir": a.builddir}
    try:
        info["commit"] = subprocess.run(
            ["git", "-C", a.srcdir, "rev-parse", "--short", "HEAD"],
            capture_output=True, timeout=10).stdout.decode().strip() or None
    except OSError:
        info["commit"] = None
    if shutil.which("valgrind"):
        info["valgrind"] = subprocess.run(
            ["valgrind", "--version"], capture_output=True,
            timeout=10).stdout.decode().strip()
    return info


def main():
    global harness
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--srcdir", required=True)
    ap.add_argument("--quick", action="store_true",
                    help="fewer messages (10 sync, 20 queued), no callgrind")
    ap.add_argument("-n", type=int, default=None,
                    help="messages for the synchronous run (default 50, "
                    "--quick 10)")
    ap.add_argument("--json", default=None,
                    help="where to write the results (BUILDDIR/bench.json)")
    a = ap.parse_args()
    a.builddir = os.path.realpath(a.builddir)
    os.environ["BEARMAIL_BUILDDIR"] = a.builddir
    os.environ["BEARMAIL_SRCDIR"] = a.srcdir
    os.environ.pop("BEARMAIL_TEST_WRAPPER", None)   # no valgrind in timings
    import harness as h
    harness = h
    harness.BUILDDIR = a.builddir
    for prog in ("sendmail", "bearmail", "bearmail-submit"):
        if not os.access(os.path.join(a.builddir, prog), os.X_OK):
            sys.exit("bench: %s/%s is not built" % (a.builddir, prog))

    n = a.n or (10 if a.quick else 50)
    res = {"meta": meta(a)}

    def step(title, fn, *args):
        print("==> %s" % title, file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - report it, go on
            problem("%s: %s: %s" % (title, type(e).__name__, e))
            return {"failed": "%s: %s" % (type(e).__name__, e)}
        finally:
            print("    (%.1f s)" % (time.perf_counter() - start),
                  file=sys.stderr, flush=True)

    with harness.Sandbox(config_extra={"rate": "0"}) as sb:
        res["sync"] = step("synchronous delivery", bench_sync, sb, n)
        res["rss"] = step("big messages", bench_rss, sb, (1, 10, 30))
        if a.quick:
            res["callgrind"] = {"skipped": "--quick"}
        else:
            res["callgrind"] = step("callgrind", bench_callgrind, sb)
    res["flush"] = step("queue flush", bench_flush, 20 if a.quick else 100)
    res["refresh"] = step("token refresh", bench_refresh, 20)
    res["problems"] = problems

    print(table(res))
    path = a.json or os.path.join(a.builddir, "bench.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print("\n(JSON: %s)" % path)
    if problems:
        print("\n%d problem(s):\n  %s" % (len(problems),
                                         "\n  ".join(problems)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
