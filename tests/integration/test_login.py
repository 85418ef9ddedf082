"""`bearmail login`: the device code flow (RFC 8628) against the mock's
devicecode endpoint, with the user played through /_test/device (approved
after a slow_down, declined, expired at the platform, expired by its own
clock), and the browser flow (authorization code + PKCE, loopback
redirect) with tests/servers/browser.py as $BROWSER (success, a tampered
state, an error redirect, a timeout, no browser at all), the automatic
choice between them, and client_credentials accounts.  Each stored token
must work for a real delivery, and no code or token may appear in
bearmail's output."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import harness  # noqa: E402
from harness import Sandbox, run_tests, USER  # noqa: E402

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
BROWSER_PY = os.path.join(harness.HERE, "browser.py")
MSG = b"Subject: after login\n\nhello\n"
NO_DISPLAY = {"DISPLAY": None, "WAYLAND_DISPLAY": None, "BROWSER": None}


def control(sb, name, body):
    status, out = sb.idp_request("/_test/" + name, body)
    if status != 200:
        raise RuntimeError("/_test/%s: %s %r" % (name, status, out))
    return out


def start_login(sb, args, env=None):
    """Start bearmail login in the background; (proc, stderr lines so far
    up to the device prompt, user code)."""
    argv = shlex.split(os.environ.get("BEARMAIL_TEST_WRAPPER", "")) + \
        [os.path.join(harness.BUILDDIR, "bearmail"), "login", *args]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=sb.env(dict(NO_DISPLAY, **(env or {}))),
                         cwd=sb.dir)
    lines = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = p.stderr.readline().decode("utf-8", "replace")
        if not line:
            break
        lines.append(line)
        m = re.search(r"enter the code ([A-Z0-9]{8})", line)
        if m:
            return p, lines, m.group(1)
    return p, lines, None


def finish(p, lines, timeout=30):
    """Wait for the login; (rc, stdout, all of stderr).  The pipes are read
    through their file objects: readline() may hold buffered data that
    communicate() would skip."""
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    out, err = p.stdout.read(), p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    return p.returncode, out.decode("utf-8", "replace"), \
        "".join(lines) + err.decode("utf-8", "replace")


def device_polls(sb):
    return [c for c in sb.idp_calls() if c.get("grant_type") == DEVICE_GRANT]


def wait_for(pred, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return None


def no_secrets(t, sb, texts, extra, name):
    """No stored token (nor any value in extra) in any of texts."""
    secrets = [s for s in extra if s]
    try:
        tok = sb.token_store()
        secrets += [tok.get("access_token"), tok.get("refresh_token")]
    except (OSError, ValueError):
        pass
    secrets = [s for s in secrets if s and len(s) >= 8]
    leaked = [s[:12] + "..." for s in secrets for x in texts if s in x]
    t.ok(not leaked, name, "leaked: %r" % leaked)


def delivery_works(t, sb, name):
    m = sb.send_and_expect(t, "%s: sendmail with the new token" % name,
                           ["bob@example.com"], MSG,
                           rcpts=["bob@example.com"], sender=USER)
    s = sb.session_of(m)
    t.ok(s["auth_user"] == USER and not s["auth_failures"],
         "%s: the server accepted the token for %s" % (name, USER), s)


# ------------------------------------------------------------ device flow

def device_slow_down_then_approved(t, sb):
    p, lines, code = start_login(sb, ["work", "--device"])
    t.ok(code is not None, "device: Microsoft's message with the user code "
         "is shown", "".join(lines))
    t.like("".join(lines), r"https://microsoft\.com/devicelogin",
           "device: the verification URI is shown")
    # without the code shown, act on the newest one: the checks still run
    act = {"user_code": code} if code else {}
    control(sb, "device", dict(act, action="slow_down"))
    slow = wait_for(lambda: [c for c in device_polls(sb)
                             if c.get("error") == "slow_down"])
    control(sb, "device", dict(act, action="approve", user=USER))
    rc, out, err = finish(p, lines)
    t.is_(rc, 0, "device: approved after a slow_down: exit 0")
    t.like(out, r"^logged in as %s; token stored in %s\n$" % (
        re.escape(USER), re.escape(sb.token_file)), "device: success line")
    t.like(err, r"waiting for sign-in\.\.\. \d+ s left",
           "device: a progress line while waiting")
    polls = device_polls(sb)
    i = polls.index(slow[0]) if slow and slow[0] in polls else -1
    gap = polls[i + 1]["time"] - polls[i]["time"] if 0 <= i < len(polls) - 1 \
        else None
    t.ok(gap is not None and gap >= 5.5, "device: the poll after slow_down "
         "came >= interval + 5 s later (%s s)" % (gap and round(gap, 2)))
    t.ok(polls and all(c["ok"] or c["error"] in ("authorization_pending",
                                                  "slow_down")
                       for c in polls) and polls[-1]["ok"],
         "device: only pending/slow_down until the token came",
         repr([(c.get("error"), c.get("status")) for c in polls]))
    t.ok(polls and all(set(c["params"]) == {"client_id", "device_code",
                                            "grant_type"} for c in polls),
         "device: polls send client_id, device_code, grant_type (no secret)")
    start = [c for c in sb.idp_calls() if c.get("endpoint") == "devicecode"]
    t.ok(start and start[-1]["params"] == ["client_id", "scope"] and
         start[-1]["scope"] == harness.SCOPE,
         "device: devicecode request carries client_id and scope")
    tok = sb.token_store() if os.path.exists(sb.token_file) else {}
    t.ok(tok.get("refresh_token") and tok.get("access_token"),
         "device: access and refresh token stored")
    no_secrets(t, sb, [out, err], [], "device: no token in the output")
    delivery_works(t, sb, "device")


def device_refused(t, sb, action, want, name):
    p, lines, code = start_login(sb, ["--device"])
    t.ok(code is not None, "device %s: the user code is shown" % name,
         "".join(lines))
    # without the code shown, act on the newest one: the checks still run
    control(sb, "device", dict({"user_code": code} if code else {},
                               action=action))
    rc, out, err = finish(p, lines)
    t.is_(rc, 78, "device %s: exit 78" % name)
    t.like(err, want, "device %s: the message says so" % name)
    t.ok("logged in" not in out, "device %s: no success line" % name)


def device_tests(t, sb):
    control(sb, "config", {"device_interval": 1})
    device_slow_down_then_approved(t, sb)
    device_refused(t, sb, "decline", r"declined", "declined")
    device_refused(t, sb, "expire", r"the code expired before sign-in "
                   r"finished: run `bearmail login work` again",
                   "expired_token")
    sb.idp_fail(status=400, error="invalid_client", aadsts=7000218,
                description="AADSTS7000218: The request body must contain "
                "the following parameter: 'client_assertion' or "
                "'client_secret'.")
    rc, out, err = sb.run_bearmail(["login", "--device"], env=NO_DISPLAY)
    t.is_(rc, 78, "device code refused (AADSTS7000218): exit 78")
    t.like(err.decode(), r"AADSTS7000218.*Allow public client flows",
           "device code refused: the error and the fix")
    control(sb, "config", {"device_expires_in": 2})
    began = time.monotonic()
    p, lines, code = start_login(sb, [])
    rc, out, err = finish(p, lines)
    t.is_(rc, 78, "device, no display: its own clock stops it at expires_in")
    t.ok(code is not None and time.monotonic() - began < 60,
         "no display and no flag: the device flow is used")
    t.like(err, r"code expired", "short expires_in: the message says so")
    control(sb, "config", {"device_expires_in": 900})


# ----------------------------------------------------------- browser flow

def browser_env(sb, mode="normal", extra=None):
    seen = os.path.join(sb.dir, "seen-%s.json" % mode)
    if os.path.exists(seen):
        os.unlink(seen)
    env = dict(NO_DISPLAY, BEARMAIL_TEST_CA=sb.ca, BROWSER="%s %s --out %s "
               "--mode %s" % (harness.PY, BROWSER_PY, seen, mode))
    env.update(extra or {})
    return env, seen


def read_seen(path):
    if not wait_for(lambda: os.path.exists(path)):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def auth_code_calls(sb):
    return [c for c in sb.idp_calls()
            if c.get("grant_type") == "authorization_code"]


def browser_success(t, sb):
    env, seen_path = browser_env(sb)
    rc, out, err = sb.run_bearmail(["login", "work", "--browser",
                                    "--timeout", "20"], env=env)
    out, err = out.decode(), err.decode()
    seen = read_seen(seen_path)
    t.is_(rc, 0, "browser: exit 0")
    t.like(out, r"^logged in as %s; token stored in %s\n$" % (
        re.escape(USER), re.escape(sb.token_file)), "browser: success line")
    t.ok(seen.get("argv_url", "").startswith(
        sb.authority + "/contoso.example/oauth2/v2.0/authorize?"),
        "browser: $BROWSER got the authorize URL as one argument",
        repr(seen))
    t.is_((seen.get("authorize_status"), seen.get("callback_status")),
          (302, 200), "browser: authorize redirected, the listener said 200")
    t.like(seen.get("callback_body") or "", r"Signed in to bearmail - you "
           r"can close this window", "browser: the success page")
    t.is_((seen.get("favicon_status"), seen.get("post_status"),
           seen.get("big_status")), (404, 405, 431),
          "browser: listener refuses other paths, POST, oversized requests "
          "(and an idle preconnect did not block it)")
    az = (control_get(sb, "authorize_calls") or [{}])[-1]
    t.like(az.get("redirect_uri") or "", r"^http://127\.0\.0\.1:\d+/$",
           "browser: redirect_uri is http://127.0.0.1:PORT/")
    t.is_((az.get("code_challenge_method"), az.get("login_hint"),
           az.get("prompt"), az.get("scope")),
          ("S256", USER, "select_account", harness.SCOPE),
          "browser: S256, login_hint, prompt, scope in the request")
    t.ok({"state", "code_challenge", "client_id", "response_type"} <=
         set(az.get("params", [])), "browser: state and code_challenge sent")
    calls = auth_code_calls(sb)
    t.ok(calls and calls[-1]["ok"] and set(calls[-1]["params"]) ==
         {"client_id", "code", "code_verifier", "grant_type", "redirect_uri",
          "scope"}, "browser: code redeemed with the verifier, no secret",
         repr(calls[-1:]))
    st, body = sb.token_call({"grant_type": "authorization_code",
                              "client_id": harness.CLIENT_ID,
                              "code": seen.get("code") or "x",
                              "redirect_uri": az.get("redirect_uri") or "",
                              "code_verifier": "x" * 43})
    t.ok(st == 400 and isinstance(body, dict) and
         54005 in body.get("error_codes", []),
         "browser: the code was single-use (replay: AADSTS54005)")
    no_secrets(t, sb, [out, err], [seen.get("code")],
               "browser: neither code nor token in the output")
    delivery_works(t, sb, "browser")


def control_get(sb, name):
    status, out = sb.idp_request("/_test/" + name)
    return out if status == 200 else None


def browser_refused(t, sb, mode, want_rc, want, name):
    env, seen_path = browser_env(sb, mode)
    n = len(auth_code_calls(sb))
    rc, out, err = sb.run_bearmail(["login", "--browser", "--timeout", "20"],
                                   env=env)
    err = err.decode()
    seen = read_seen(seen_path)
    t.is_(rc, want_rc, "browser %s: exit %d" % (name, want_rc))
    t.like(err, want, "browser %s: the message says so" % name)
    t.is_(seen.get("callback_status"), 400, "browser %s: 400 page" % name)
    t.is_(len(auth_code_calls(sb)), n, "browser %s: no code redeemed" % name)
    no_secrets(t, sb, [out.decode(), err], [seen.get("code")],
               "browser %s: no code in the output" % name)


def no_browser_path(sb):
    """A $PATH without xdg-open (but with $BEARMAIL_TEST_WRAPPER's program)."""
    empty = os.path.join(sb.dir, "empty-bin")
    os.makedirs(empty, exist_ok=True)
    wrapper = shlex.split(os.environ.get("BEARMAIL_TEST_WRAPPER", ""))
    found = shutil.which(wrapper[0]) if wrapper else None
    return empty + (":" + os.path.dirname(found) if found else "")


def browser_tests(t, sb):
    browser_success(t, sb)
    browser_refused(t, sb, "tamper-state", 76, r"does not carry this "
                    r"login.s state: refused", "state mismatch")
    control(sb, "config", {"authorize": "deny"})
    browser_refused(t, sb, "normal", 78, r"access_denied.*AADSTS65004",
                    "access_denied")
    control(sb, "config", {"authorize": "approve"})

    began = time.monotonic()
    rc, _, err = sb.run_bearmail(["login", "--browser", "--timeout", "2"],
                                 env=dict(NO_DISPLAY, BROWSER="true"))
    took = time.monotonic() - began
    t.is_(rc, 75, "browser timeout: exit 75")
    # not before the 2 s timeout; the upper bound only guards a hang
    t.ok(1.5 < took < 40, "browser timeout: after about 2 s (%.1f)" % took)
    t.like(err.decode(), r"within 2 s", "browser timeout: the message")

    rc, _, err = sb.run_bearmail(["login", "--browser", "--timeout", "1"],
                                 env=dict(NO_DISPLAY, PATH=no_browser_path(sb)))
    t.like(err.decode(), r"Open this address in a web browser.*\n\n  "
           r"https://127\.0\.0\.1:\d+/contoso\.example/oauth2/v2\.0/"
           r"authorize\?response_type=code&.*code_challenge_method=S256",
           "no browser: the URL is printed")

    env, seen_path = browser_env(sb, extra={"DISPLAY": ":99"})
    rc, out, _ = sb.run_bearmail(["login", "--timeout", "20"], env=env)
    t.ok(rc == 0 and read_seen(seen_path).get("callback_status") == 200,
         "a display and $BROWSER: the browser flow is chosen")


def client_credentials(t, sb):
    secret = os.path.join(sb.dir, "secret")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"s3cret\n")
    os.close(fd)
    sb.write_config({"oauth_flow": "client_credentials",
                     "client_secret_file": secret, "scope": None})
    rc, out, err = sb.run_bearmail(["login"], env=NO_DISPLAY)
    t.is_(rc, 0, "client_credentials: login exits 0")
    t.like(out.decode(), r"no login is needed",
           "client_credentials: no login is needed")
    sb.write_config()


def tests(t):
    with Sandbox(seed=False) as sb:
        rc, _, err = sb.run_bearmail(["login", "--device", "--browser"])
        t.is_(rc, 64, "--device with --browser: usage error")
        device_tests(t, sb)
        browser_tests(t, sb)
        client_credentials(t, sb)


run_tests(tests)
