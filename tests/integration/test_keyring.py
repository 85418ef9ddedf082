"""The keyring token store against a real Secret Service: the test re-runs
itself under dbus-run-session and starts gnome-keyring-daemon (secrets
component, unlocked) inside.  With `token_store keyring`: import, `bearmail
token`, a delivery that refreshes and stores the rotated refresh token in
the keyring (read back with libsecret through python3-gi), logout removes
the item; `auto` picks the keyring when the bus is there and the file
without a bus; a Secret Service that never answers makes `bearmail token`
fail within seconds with the advice instead of hanging."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
from harness import PY, Sandbox, run_tests, USER  # noqa: E402
import keyring  # noqa: E402

MSG = b"Subject: keyring\n\nhello\n"
MARK = "BEARMAIL_KEYRING_TEST_INNER"

# A Secret Service that owns org.freedesktop.secrets and never replies.
SILENT_SERVICE = r"""
import dbus, dbus.lowlevel, dbus.mainloop.glib, sys
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.SessionBus()
bus.request_name("org.freedesktop.secrets",
                 dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
def swallow(b, m):
    if isinstance(m, dbus.lowlevel.MethodCallMessage):
        return dbus.lowlevel.HANDLER_RESULT_HANDLED
    return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED
bus.add_message_filter(swallow)
print("READY", flush=True)
GLib.MainLoop().run()
"""

# Read the item back through libsecret: prints the secret or nothing.
LOOKUP = r"""
import gi, json, sys
gi.require_version("Secret", "1")
from gi.repository import Secret
schema = Secret.Schema.new("org.bearmail.Token", Secret.SchemaFlags.NONE,
    {"account": Secret.SchemaAttributeType.STRING,
     "user": Secret.SchemaAttributeType.STRING,
     "client_id": Secret.SchemaAttributeType.STRING})
items = Secret.password_search_sync(schema, {"account": sys.argv[1]},
    Secret.SearchFlags.ALL | Secret.SearchFlags.LOAD_SECRETS |
    Secret.SearchFlags.UNLOCK, None)
for it in items:
    a = it.get_attributes()
    print("ITEM", a.get("account"), a.get("user"), a.get("client_id"),
          it.get_label())
    print("SECRET", json.dumps(it.get_secret().get_text()))
"""


def lookup(account):
    """The items for account through libsecret: list of (attrs, secret),
    or None when the Secret Service does not work."""
    try:
        p = subprocess.run([PY, "-c", LOOKUP, account], capture_output=True,
                           timeout=15)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        return None
    out, cur = [], None
    for line in p.stdout.decode().splitlines():
        if line.startswith("ITEM "):
            cur = line[5:]
        elif line.startswith("SECRET ") and cur is not None:
            out.append((cur, json.loads(json.loads(line[7:]))))
    return out


def keyring_tests(t, sb, bus):
    env = {"DBUS_SESSION_BUS_ADDRESS": bus}
    sb.write_config({"token_store": "keyring"})
    minted = sb.mint()
    rc, out, err = sb.run_bearmail(["token", "import"],
                                   json.dumps(minted).encode(), env=env)
    t.is_(rc, 0, "keyring: import")
    if rc:
        t.diag(err.decode("utf-8", "replace"))
    items = lookup("work") or []
    t.is_(len(items), 1, "keyring: one item for account work")
    t.ok(items and items[0][1].get("refresh_token") ==
         minted["refresh_token"], "keyring: it holds the refresh token")
    t.like(items[0][0] if items else "", r"^work alice@contoso\.example "
           r"11111111-2222-3333-4444-555555555555 bearmail token for work "
           r"\(alice@contoso\.example\)$", "keyring: attributes and label")
    t.ok(not os.path.exists(sb.token_file), "keyring: no token file written")

    sb.idp_lifetime(300)    # under 10 minutes: every use refreshes
    rc, out, err = sb.run_bearmail(["token"], env=env)
    t.is_(rc, 0, "keyring: `bearmail token` refreshes")
    items = lookup("work") or []
    rec = items[0][1] if items else {}
    t.ok(rec.get("refresh_token") not in (None, minted["refresh_token"]),
         "keyring: the rotated refresh token was stored")
    t.is_(out.decode().strip(), rec.get("access_token"),
          "keyring: the printed token is the stored one")

    rec0 = rec
    n = len(sb.messages())
    m = sb.send_and_expect(t, "keyring: a delivery with a refresh",
                           ["bob@example.com"], MSG, rcpts=["bob@example.com"],
                           env=env)
    t.ok(n == 0 and m["bytes"].endswith(b"\r\n\r\nhello\r\n") and
         sb.session_of(m)["auth_user"] == USER,
         "keyring: the message arrived, sent as the account")
    items = lookup("work") or []
    rec = items[0][1] if items else {}
    t.ok(rec.get("refresh_token") not in (None, rec0.get("refresh_token")),
         "keyring: the delivery stored the rotated refresh token")
    sb.idp_lifetime(3600)
    t.ok(os.path.exists(os.path.join(sb.dir, "run", "bearmail",
                                     "work.lock")),
         "keyring: the lock is in $XDG_RUNTIME_DIR/bearmail")

    rc, out, err = sb.run_bearmail(["logout"], env=env)
    t.is_(rc, 0, "keyring: logout")
    t.is_(out.decode(), "removed the tokens of account work from keyring "
          "(Secret Service: org.bearmail.Token account=work)\n",
          "keyring: logout says where")
    t.is_(lookup("work"), [], "keyring: the item is gone")
    rc, out, err = sb.run_bearmail(["token"], env=env)
    t.is_(rc, 78, "keyring: after logout, no token (78)")
    t.like(err.decode(), r"no token for account work: run `bearmail login "
           r"work`", "keyring: after logout, the login hint")


def auto_tests(t, sb, bus):
    env = {"DBUS_SESSION_BUS_ADDRESS": bus}
    sb.write_config({"token_store": "auto"})
    default = os.path.join(sb.dir, "xdgstate", "bearmail", "tokens",
                           "work.json")
    minted = sb.mint()
    rc, out, err = sb.run_bearmail(["token", "import"],
                                   json.dumps(minted).encode(), env=env)
    items = lookup("work") or []
    t.ok(rc == 0 and len(items) == 1 and not os.path.exists(default),
         "auto with a session bus: the keyring")
    minted2 = sb.mint()
    rc, out, err = sb.run_bearmail(["token", "import"],
                                   json.dumps(minted2).encode())
    t.ok(rc == 0 and os.path.exists(default),
         "auto without a session bus: the file")
    items = lookup("work") or []
    t.ok(items and items[0][1]["refresh_token"] == minted["refresh_token"],
         "auto without a bus left the keyring alone")
    sb.run_bearmail(["logout"], env=env)


def silent_tests(t, sb):
    """A Secret Service that never answers: fail in time, with advice."""
    tmp = tempfile.mkdtemp(prefix="bearmail-silent-")
    conf = os.path.join(tmp, "session.conf")
    with open(conf, "w", encoding="ascii") as f:
        f.write('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus '
                'Configuration 1.0//EN" "http://www.freedesktop.org/standards'
                '/dbus/1.0/busconfig.dtd">\n<busconfig><type>session</type>'
                '<listen>unix:dir=%s</listen><policy context="default">'
                '<allow send_destination="*" eavesdrop="true"/><allow '
                'eavesdrop="true"/><allow own="*"/></policy></busconfig>\n'
                % tmp)
    daemon = subprocess.Popen(["dbus-daemon", "--config-file", conf,
                               "--nofork", "--print-address"],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    service = None
    try:
        addr = daemon.stdout.readline().decode().strip()
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=addr)
        service = subprocess.Popen([PY, "-c", SILENT_SERVICE], env=env,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
        ready = service.stdout.readline().decode().strip()
        t.is_(ready, "READY", "a silent Secret Service owns the name")
        sb.write_config({"token_store": "keyring"})
        t0 = time.monotonic()
        rc, out, err = sb.run_bearmail(["token"], env={
            "DBUS_SESSION_BUS_ADDRESS": addr}, timeout=60)
        took = time.monotonic() - t0
        t.is_(rc, 75, "silent keyring: `bearmail token` fails (75)")
        # a hang guard (the timeout is 5 s), generous for a loaded machine
        t.ok(took < 30, "silent keyring: gives up, no hang (%.1f s)" % took)
        t.is_(err.decode(), "bearmail: the keyring did not answer within "
              "5 s (read the token of account work): is "
              "gnome-keyring-daemon running and unlocked? or set "
              "token_store file\n", "silent keyring: the advice")
        sb.write_config({"token_store": "auto"})
        t0 = time.monotonic()
        rc, out, err = sb.run_bearmail(["token"], env={
            "DBUS_SESSION_BUS_ADDRESS": addr}, timeout=60)
        took = time.monotonic() - t0
        t.ok(rc == 75 and took < 30, "silent keyring with auto: 75, no "
             "hang (%d, %.1f s)" % (rc, took))
    finally:
        for p in (service, daemon):
            if p is not None:
                p.kill()
                p.wait()
                if p.stdout:
                    p.stdout.close()
        shutil.rmtree(tmp, ignore_errors=True)


def tests(t):
    bus = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    with Sandbox(seed=False) as sb:
        home = os.path.join(sb.dir, "keyring-home")
        os.makedirs(home, mode=0o700)
        proc, why = keyring.start(home, os.path.join(sb.dir, "run"))
        if proc is None:
            for name in ("keyring: import and lookup",
                         "keyring: refresh stored in the keyring",
                         "keyring: logout", "auto picks the keyring",
                         "silent keyring fails in time"):
                t.skip(name, why)
            return
        try:
            keyring_tests(t, sb, bus)
            auto_tests(t, sb, bus)
        finally:
            keyring.stop(proc)
        silent_tests(t, sb)


if __name__ == "__main__":
    WHY = keyring.reexec_under_dbus(__file__, MARK)
    if WHY:
        print("1..0 # SKIP %s" % WHY)
        sys.exit(0)
    run_tests(tests)
