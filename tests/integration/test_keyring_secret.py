"""Client secrets and keys from the keyring (`client_secret_file
keyring:NAME`, `client_key keyring:NAME`) against a real Secret Service:
the test re-runs itself under dbus-run-session with gnome-keyring-daemon.
`bearmail secret set NAME` stores stdin as an org.bearmail.Secret item;
an app-only account delivers with it (the mock identity platform checks the
secret, or the assertion signed with the key); an item saved by `secret-tool
store service bearmail name NAME` is found by the same lookup; a missing
name is 78 with the command that stores it, no session bus 75; `secret
delete` removes it; the secret is in no output, log or record."""
import base64
import json
import os
import shutil
import subprocess
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
from harness import Sandbox, run_tests, TENANT, USER  # noqa: E402
import keyring  # noqa: E402

MARK = "BEARMAIL_KEYRING_SECRET_TEST_INNER"
APP_ID = "99999999-8888-7777-6666-555555555555"
SECRET = "Kr8~keyring-secret.value_" + uuid.uuid4().hex
MSG = b"Subject: app-only from the keyring\n\nhello\n"

# Every item with service=bearmail and name=argv[1], whatever its schema:
# one JSON line each (attributes, label, secret).
SEARCH = r"""
import gi, json, sys
gi.require_version("Secret", "1")
from gi.repository import Secret
schema = Secret.Schema.new("org.bearmail.Secret",
    Secret.SchemaFlags.DONT_MATCH_NAME,
    {"service": Secret.SchemaAttributeType.STRING,
     "name": Secret.SchemaAttributeType.STRING})
for it in Secret.password_search_sync(schema,
        {"service": "bearmail", "name": sys.argv[1]},
        Secret.SearchFlags.ALL | Secret.SearchFlags.LOAD_SECRETS |
        Secret.SearchFlags.UNLOCK, None):
    print(json.dumps({"attrs": dict(it.get_attributes()),
                      "label": it.get_label(),
                      "secret": it.get_secret().get_text()}))
"""

# What `secret-tool store --label=L service bearmail name N` does: an item
# that is not of our schema.  Used when secret-tool is not installed.
STORE_NO_SCHEMA = r"""
import gi, sys
gi.require_version("Secret", "1")
from gi.repository import Secret
svc = Secret.Service.get_sync(Secret.ServiceFlags.OPEN_SESSION, None)
value = sys.stdin.read()
ok = svc.store_sync(None, {"service": "bearmail", "name": sys.argv[1]},
    Secret.COLLECTION_DEFAULT, sys.argv[2],
    Secret.Value.new(value, len(value.encode()), "text/plain"), None)
sys.exit(0 if ok else 1)
"""


def items(name):
    rc, out = keyring.run_gi(SEARCH, name)
    if rc != 0:
        return None
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def secret_tool_store(name, value, env):
    label = "stored by secret-tool " + name
    if shutil.which("secret-tool"):
        p = subprocess.run(["secret-tool", "store", "--label=" + label,
                            "service", "bearmail", "name", name],
                           input=value.encode(), env=env, capture_output=True,
                           timeout=15)
        return p.returncode
    p = subprocess.run([keyring.PY, "-c", STORE_NO_SCHEMA, name, label],
                       input=value.encode(), env=env, capture_output=True,
                       timeout=15)
    return p.returncode


def make_pair(d):
    key, cert = os.path.join(d, "app.key"), os.path.join(d, "app.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=bearmail keyring app"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


class Run:
    """The sandbox, the bus, and every output collected for the scan."""

    def __init__(self, sb, bus):
        self.sb, self.bus, self.outputs = sb, bus, []

    def env(self, bus=True):
        return {"DBUS_SESSION_BUS_ADDRESS": self.bus if bus else None}

    def bearmail(self, args, stdin=b"", bus=True):
        rc, out, err = self.sb.run_bearmail(args, stdin, env=self.env(bus))
        self.outputs += [out, err]
        return rc, out.decode("utf-8", "replace"), err.decode("utf-8",
                                                              "replace")

    def send(self, bus=True):
        rc, out, err = self.sb.run_sendmail(["-v", "x@example.com"], MSG,
                                            env=self.env(bus))
        self.outputs += [out, err]
        return rc, err.decode("utf-8", "replace")

    def deliver(self, t, name):
        """send(), checked at the server: the message's record."""
        m = self.sb.send_and_expect(t, name, ["-v", "x@example.com"], MSG,
                                    rcpts=["x@example.com"], sender=USER,
                                    env=self.env())
        self.outputs += list(self.sb.last_run[1:])
        t.ok(m["bytes"].endswith(b"\r\n\r\nhello\r\n"),
             "%s: the message bytes" % name, m["bytes"])
        return m

    def configure(self, **keys):
        extra = {"oauth_flow": "client_credentials", "client_id": APP_ID,
                 "scope": None}
        extra.update(keys)
        self.sb.write_config(extra)
        if os.path.exists(self.sb.token_file):
            os.remove(self.sb.token_file)


def test_set(t, r):
    rc, out, err = r.bearmail(["secret", "set", "app-secret"],
                              (SECRET + "\n").encode())
    t.is_(rc, 0, "secret set: exit 0 (%s)" % err.strip())
    t.is_(out, "stored keyring:app-secret (Secret Service: org.bearmail.Secret"
          " service=bearmail name=app-secret)\n", "secret set: says where")
    found = items("app-secret") or []
    t.is_(len(found), 1, "secret set: one item")
    it = found[0] if found else {"attrs": {}}
    t.is_(it["attrs"], {"xdg:schema": "org.bearmail.Secret",
                        "service": "bearmail", "name": "app-secret"},
          "secret set: schema org.bearmail.Secret, service and name")
    t.is_(it.get("label"), "bearmail secret app-secret", "secret set: label")
    t.is_(it.get("secret"), SECRET + "\n", "secret set: the bytes of stdin")

    rc, out, err = r.bearmail(["secret", "set", "empty"], b"")
    t.ok(rc == 65 and "no secret on stdin" in err, "empty stdin: 65", err)
    t.is_(items("empty"), [], "empty stdin: nothing stored")
    for args in (["secret", "set"], ["secret", "set", "../x"],
                 ["secret", "show", "app-secret"]):
        rc, _, _ = r.bearmail(args, b"x")
        t.is_(rc, 64, "bearmail %s: usage (64)" % " ".join(args))


def test_deliver(t, r):
    sb = r.sb
    r.configure(client_secret_file="keyring:app-secret")
    m = r.deliver(t, "keyring:NAME")
    c = (sb.idp_calls() or [{}])[-1]
    t.ok(c.get("ok") and c.get("auth") == "secret" and
         c.get("grant_type") == "client_credentials",
         "keyring:NAME: the identity platform took the secret", c)
    s = sb.session_of(m)
    t.ok(s["auth_user"] == USER and not s["auth_failures"],
         "keyring:NAME: AUTH with the app token", s)


def test_secret_tool(t, r):
    sb = r.sb
    rc = secret_tool_store("st-secret", SECRET, dict(
        os.environ, DBUS_SESSION_BUS_ADDRESS=r.bus))
    t.is_(rc, 0, "secret-tool store service bearmail name st-secret")
    found = items("st-secret") or []
    t.ok(len(found) == 1 and found[0]["attrs"].get("xdg:schema") !=
         "org.bearmail.Secret", "secret-tool's item is not of our schema "
         "(none, or org.freedesktop.Secret.Generic)", found)
    r.configure(client_secret_file="keyring:st-secret")
    calls = len(sb.idp_calls())
    rc, out, err = r.bearmail(["token", "work"])
    t.is_(rc, 0, "a secret-tool item is found (%s)" % err.strip())
    t.ok(len(sb.idp_calls()) == calls + 1 and
         sb.idp_calls()[-1].get("auth") == "secret",
         "a secret-tool item: sent as the secret")

    # `secret set` replaces it: one item, ours
    rc, _, _ = r.bearmail(["secret", "set", "st-secret"], b"not-the-secret")
    found = items("st-secret") or []
    t.ok(rc == 0 and len(found) == 1 and found[0]["attrs"].get(
        "xdg:schema") == "org.bearmail.Secret" and
        found[0]["secret"] == "not-the-secret",
        "secret set replaces the secret-tool item", found)
    r.configure(client_secret_file="keyring:st-secret")
    rc, out, err = r.bearmail(["token", "work"])
    t.ok(rc == 78 and "AADSTS7000215" in err,
         "the replaced (wrong) secret is what is sent: 7000215", err)


def test_key(t, r):
    sb = r.sb
    d = os.path.join(sb.dir, "app")
    os.makedirs(d, mode=0o700, exist_ok=True)
    cert, key = make_pair(d)
    with open(cert, encoding="ascii") as f:
        cert_pem = f.read()
    with open(key, "rb") as f:
        key_pem = f.read()
    sb._control("app", {"client_id": APP_ID, "tenant": TENANT,
                        "secret": SECRET, "certificate": cert_pem})
    rc, _, err = r.bearmail(["secret", "set", "app-key"], key_pem)
    t.is_(rc, 0, "secret set app-key < KEY.pem")
    os.remove(key)
    r.configure(client_certificate=cert, client_key="keyring:app-key")
    m = r.deliver(t, "client_key keyring:NAME")
    c = (sb.idp_calls() or [{}])[-1]
    t.ok(c.get("ok") and c.get("auth") == "assertion:PS256",
         "client_key keyring:NAME: the assertion verified", c)
    t.is_(sb.session_of(m)["auth_user"], USER,
          "client_key keyring:NAME: AUTH with the app token")
    return "".join(key_pem.decode().split("-----")[2].split())[:60]


def test_missing(t, r):
    sb = r.sb
    r.configure(client_secret_file="keyring:nosuch")
    calls = len(sb.idp_calls())
    rc, out, err = r.bearmail(["token", "work"])
    t.is_(rc, 78, "a missing NAME: 78")
    t.like(err, r"client_secret_file keyring:nosuch: no such secret in the "
           r"keyring: store it with `bearmail secret set nosuch`",
           "a missing NAME: says how to store it")
    t.is_(len(sb.idp_calls()), calls, "a missing NAME: no token request")
    r.configure(client_key="keyring:nokey", client_certificate="/dev/null",
                client_secret_file=None)
    rc, out, err = r.bearmail(["token", "work"])
    t.ok(rc == 78 and "client_key keyring:nokey: no such secret" in err,
         "a missing client_key NAME: 78 and the hint", err)

    r.configure(client_secret_file="keyring:app-secret")
    rc, out, err = r.bearmail(["token", "work"], bus=False)
    t.is_(rc, 75, "no session bus: 75 (temporary)")
    t.like(err, r"keyring:app-secret: no session bus", "no session bus: said")
    n = len(sb.messages())
    rc, err = r.send(bus=False)
    t.is_(rc, 0, "no session bus: sendmail exits 0 (queued)")
    sb.expect_no_arrival(t, "no session bus", n)
    sb.expect_queued(t, "no session bus: sendmail", err)


def test_delete(t, r):
    rc, out, err = r.bearmail(["secret", "delete", "app-secret"])
    t.ok(rc == 0 and out == "removed keyring:app-secret\n",
         "secret delete: removed", out + err)
    t.is_(items("app-secret"), [], "secret delete: the item is gone")
    rc, out, err = r.bearmail(["secret", "delete", "app-secret"])
    t.ok(rc == 0 and out == "no secret keyring:app-secret in the keyring\n",
         "secret delete again: nothing to remove", out)
    for name in ("st-secret", "app-key"):
        r.bearmail(["secret", "delete", name])


def scan(t, r, key_body):
    sb = r.sb
    texts = [o.decode("utf-8", "replace") for o in r.outputs]
    texts.append(sb.log_text())
    for name in ("idp.log", "smtpd.log"):
        with open(os.path.join(sb.dir, name), encoding="utf-8",
                  errors="replace") as f:
            texts.append(f.read())
    texts.append(json.dumps(sb.idp_calls()))
    for fn in os.listdir(sb.state):
        if fn.endswith((".jsonl", ".json")):
            with open(os.path.join(sb.state, fn), encoding="utf-8",
                      errors="replace") as f:
                texts.append(f.read())
    joined = "\n".join(texts)
    t.ok(SECRET not in joined and "not-the-secret" not in joined,
         "the secret is in no output, log or record")
    t.ok(key_body not in joined, "no key material anywhere")
    b64 = base64.b64encode(SECRET.encode()).decode()[:24]
    t.ok(b64 not in joined, "not even base64-encoded")


def tests(t):
    with Sandbox(seed=False) as sb:
        home = os.path.join(sb.dir, "keyring-home")
        os.makedirs(home, mode=0o700)
        proc, why = keyring.start(home, os.path.join(sb.dir, "run"))
        if proc is None:
            t.skip("client secrets in the keyring", why)
            return
        try:
            sb._control("app", {"client_id": APP_ID, "tenant": TENANT,
                                "secret": SECRET})
            r = Run(sb, os.environ["DBUS_SESSION_BUS_ADDRESS"])
            test_set(t, r)
            test_deliver(t, r)
            test_secret_tool(t, r)
            key_body = test_key(t, r)
            test_missing(t, r)
            test_delete(t, r)
            scan(t, r, key_body)
        finally:
            keyring.stop(proc)


if __name__ == "__main__":
    WHY = keyring.reexec_under_dbus(__file__, MARK)
    if WHY:
        print("1..0 # SKIP %s" % WHY)
        sys.exit(0)
    run_tests(tests)
