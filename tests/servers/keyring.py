"""keyring - a real Secret Service for the keyring tests.

reexec_under_dbus(path, mark): run the test file again inside its own
session bus (dbus-run-session), once; returns a reason to skip, or exits
with the inner run's status.
start(home, run): gnome-keyring-daemon (secrets component, unlocked with a
throwaway password) in the foreground inside that bus; (proc, None) once
libsecret can talk to it, or (None, reason).  stop(proc) ends it.
run_gi(code, *args): run a python3-gi (libsecret) snippet; (rc, stdout).
"""
import os
import shutil
import subprocess
import sys
import time

PY = "/usr/bin/python3"
KEYRING_PASSWORD = b"bearmail-test\n"   # a throwaway keyring's password

# Does libsecret answer?  Searches for an item that cannot exist.
PROBE = r"""
import gi
gi.require_version("Secret", "1")
from gi.repository import Secret
schema = Secret.Schema.new("org.bearmail.Probe", Secret.SchemaFlags.NONE,
    {"probe": Secret.SchemaAttributeType.STRING})
Secret.password_search_sync(schema, {"probe": "none"},
    Secret.SearchFlags.ALL, None)
"""


def reexec_under_dbus(path, mark):
    """Run path again inside its own session bus; None when already inside
    (mark is set in the environment), else a reason or sys.exit."""
    if os.environ.get(mark):
        return None
    if shutil.which("dbus-run-session") is None:
        return "dbus-run-session is not installed"
    env = dict(os.environ, **{mark: "1"})
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    p = subprocess.run(["dbus-run-session", "--", PY, os.path.abspath(path)],
                       env=env, stderr=subprocess.PIPE)
    err = p.stderr.decode("utf-8", "replace")
    # dbus-daemon complains it cannot raise its fd limit: harmless
    for line in err.splitlines():
        if "Failed to set fd limit" not in line:
            print(line, file=sys.stderr)
    sys.exit(p.returncode)


def run_gi(code, *args, timeout=15):
    """(rc, stdout text) of a python3-gi snippet; rc None on a timeout."""
    try:
        p = subprocess.run([PY, "-c", code, *args], capture_output=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, ""
    return p.returncode, p.stdout.decode("utf-8", "replace")


def start(home, run):
    """gnome-keyring-daemon in the foreground, unlocked; (proc, error)."""
    if shutil.which("gnome-keyring-daemon") is None:
        return None, "gnome-keyring-daemon is not installed"
    env = dict(os.environ, HOME=home, XDG_RUNTIME_DIR=run,
               XDG_DATA_HOME=os.path.join(home, "data"))
    printed = os.path.join(home, "gnome-keyring-daemon.out")
    with open(printed, "wb") as out:
        proc = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock",
             "--components=secrets"], stdin=subprocess.PIPE, stdout=out,
            stderr=subprocess.DEVNULL, env=env)
    proc.stdin.write(KEYRING_PASSWORD)
    proc.stdin.close()
    deadline = time.monotonic() + 60     # a hang guard: done once it answers
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, "gnome-keyring-daemon exited with %d" % proc.returncode
        if run_gi(PROBE)[0] == 0:
            break
        time.sleep(0.2)
    else:
        stop(proc)
        return None, "the keyring did not come up within 60 s"
    # export what it printed (nothing for the secrets component alone)
    with open(printed, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                os.environ[k] = v
    return proc, None


def stop(proc):
    if proc is not None and proc.poll() is None:
        proc.kill()
    if proc is not None:
        proc.wait()
