"""App-only tokens (oauth_flow client_credentials) end to end: a client
secret from a 0600 file or a systemd credential, a certificate with a PS256
or RS256 client assertion that the mock identity platform verifies with
the registered certificate (openssl), the token cached like any other, the
identity platform's refusals (AADSTS700027 wrong certificate, 7000215 bad
secret) turned into exit 78 and the fix, unsafe secret files refused before
any network call, and no secret or assertion in any output, log or
record."""
import base64
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
from harness import Sandbox, run_tests, TENANT, USER  # noqa: E402

APP_ID = "99999999-8888-7777-6666-555555555555"
SECRET = "Zq8~app-secret.value_" + uuid.uuid4().hex
APP_SCOPE = "https://outlook.office365.com/.default"
MSG = b"Subject: app-only\n\nsent with an app token\n"
# base64url of '{"alg":"PS256"' / '{"alg":"RS256"': the start of an assertion
ASSERTION_HEADS = ("eyJhbGciOiJQUzI1Ni", "eyJhbGciOiJSUzI1Ni")


def make_pair(d, name):
    """An RSA 2048 key (0600) and a self-signed certificate, with openssl."""
    key, cert = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=bearmail app " + name],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def write_secret(path, value, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value + "\n")
    os.chmod(path, mode)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_assertion(key, header, claims, alg):
    """A client assertion made by the test itself (openssl dgst)."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    argv = ["openssl", "dgst", "-sha256", "-sign", key]
    if alg == "PS256":
        argv += ["-sigopt", "rsa_padding_mode:pss",
                 "-sigopt", "rsa_pss_saltlen:-1"]
    sig = subprocess.run(argv, input=(head + "." + body).encode(),
                         capture_output=True, check=True).stdout
    return head + "." + body + "." + b64url(sig)


class App:
    """The sandbox with an app-only account and what the test collected."""

    def __init__(self, sb):
        self.sb = sb
        d = os.path.join(sb.dir, "app")
        os.makedirs(d, mode=0o700)
        self.dir = d
        self.cert, self.key = make_pair(d, "good")
        self.wrong_cert, self.wrong_key = make_pair(d, "wrong")
        self.secret_file = os.path.join(d, "client.secret")
        write_secret(self.secret_file, SECRET)
        self.creds = os.path.join(d, "creds")
        os.makedirs(self.creds, mode=0o700)
        write_secret(os.path.join(self.creds, "app-secret"), SECRET, 0o440)
        with open(self.cert, encoding="ascii") as f:
            self.cert_pem = f.read()
        with open(self.key, encoding="ascii") as f:
            self.key_pem = f.read()
        self.outputs = []

    def configure(self, **keys):
        """The "work" account as an app-only account with these keys."""
        extra = {"oauth_flow": "client_credentials", "client_id": APP_ID,
                 "scope": None}
        extra.update(keys)
        self.sb.write_config(extra)
        if os.path.exists(self.sb.token_file):
            os.remove(self.sb.token_file)

    def send(self, args=(), env=None):
        rc, out, err = self.sb.run_sendmail([*args, "x@example.com"], MSG,
                                            env=env)
        self.outputs.append(out + err)
        return rc, err.decode("utf-8", "replace")

    def deliver(self, t, name, args=(), env=None):
        """send(), checked at the server: the message's record."""
        m = self.sb.send_and_expect(t, name, [*args, "x@example.com"], MSG,
                                    rcpts=["x@example.com"], sender=USER,
                                    env=env)
        rc, out, err = self.sb.last_run
        self.outputs.append(out + err)
        t.ok(m["bytes"].endswith(b"\r\n\r\nsent with an app token\r\n")
             and self.sb.session_of(m)["auth_user"] == USER,
             "%s: the message, sent as %s" % (name, USER), m["bytes"])
        return m

    def token(self, env=None):
        rc, out, err = self.sb.run_bearmail(["token", "work"], env=env)
        self.outputs.append(err)
        return rc, out.decode().strip(), err.decode("utf-8", "replace")

    def calls(self):
        return self.sb.idp_calls()


def test_secret(t, app):
    sb = app.sb
    app.configure(client_secret_file=app.secret_file)
    calls = len(app.calls())
    m = app.deliver(t, "secret")
    s = sb.session_of(m)
    t.ok(s["auth_user"] == USER and not s["auth_failures"],
         "secret: the server took the app token (SMTP.SendAsApp) for %s"
         % USER, s)
    new = app.calls()[calls:]
    c = new[0] if len(new) == 1 else {}
    t.ok(c.get("grant_type") == "client_credentials" and c.get("ok") and
         c.get("auth") == "secret" and c.get("tenant") == TENANT and
         c.get("scope") == APP_SCOPE and c.get("client_id") == APP_ID,
         "secret: one client_credentials call, scope .default", new)
    t.ok("client_secret" in c.get("params", []) and
         "client_assertion" not in c.get("params", []),
         "secret: sent client_secret")
    store = sb.token_store() if os.path.exists(sb.token_file) else {}
    t.ok(store.get("access_token") and not store.get("refresh_token") and
         store.get("expires_at", 0) > time.time() + 3000,
         "secret: the access token is cached, no refresh token")

    calls = len(app.calls())
    app.deliver(t, "cached")
    t.is_(len(app.calls()), calls, "cached: no second token request")


def test_credential(t, app):
    app.configure(client_secret_file="credential:app-secret")
    calls = len(app.calls())
    app.deliver(t, "credential:NAME from $CREDENTIALS_DIRECTORY",
                env={"CREDENTIALS_DIRECTORY": app.creds})
    new = app.calls()[calls:]
    t.ok(len(new) == 1 and new[0]["ok"] and new[0]["auth"] == "secret",
         "credential: one token request, with the secret", new)


def test_certificate(t, app):
    for alg in ("PS256", "RS256"):
        keys = {"client_certificate": app.cert, "client_key": app.key}
        if alg == "RS256":
            keys["client_assertion_alg"] = "rs256"
        app.configure(**keys)
        app.deliver(t, "certificate %s" % alg)
        c = (app.calls() or [{}])[-1]
        t.ok(c.get("ok") and c.get("auth") == "assertion:" + alg and
             "client_assertion_type" in c.get("params", []) and
             "client_secret" not in c.get("params", []),
             "certificate %s: the identity platform verified the assertion"
             % alg, c)


def test_refusals(t, app):
    sb = app.sb
    # the certificate is not the registered one: 700027
    app.configure(client_certificate=app.wrong_cert,
                  client_key=app.wrong_key)
    rc, out, err = app.token()
    t.is_(rc, 78, "wrong certificate: exit 78")
    t.like(err, r"AADSTS700027.*upload the certificate in "
           r"client_certificate of account work to the app registration",
           "wrong certificate: the AADSTS line and the fix")
    n = len(sb.messages())
    rc, err = app.send()
    # a failure before the SMTP transaction that the administrator fixes
    # (upload the certificate): the message waits in the queue, exit 0
    t.ok(rc == 0 and "upload the certificate in client_certificate"
         in err,
         "wrong certificate: sendmail exits 0 and says why (rc %d)" % rc, err)
    sb.expect_no_arrival(t, "wrong certificate", n)
    sb.expect_queued(t, "wrong certificate", err)

    # a key that is not the certificate's: refused here, no network
    app.configure(client_certificate=app.cert, client_key=app.wrong_key)
    calls = len(app.calls())
    rc, _, err = app.token()
    t.ok(rc == 78 and "not the private key of client_certificate" in err,
         "key of another certificate: exit 78, said so", err)
    t.is_(len(app.calls()), calls, "key of another certificate: no request")

    # a bad secret: 7000215
    bad = os.path.join(app.dir, "bad.secret")
    write_secret(bad, "not-the-secret")
    app.configure(client_secret_file=bad)
    rc, _, err = app.token()
    t.is_(rc, 78, "bad secret: exit 78")
    t.like(err, r"AADSTS7000215.*create a new client secret",
           "bad secret: the AADSTS line and the fix")

    # unsafe secret files: refused before any network call
    loose = os.path.join(app.dir, "loose.secret")
    write_secret(loose, SECRET, 0o644)
    link = os.path.join(app.dir, "link.secret")
    os.symlink(app.secret_file, link)
    os.chmod(app.key, 0o640)
    cases = [("0644 secret file", {"client_secret_file": loose},
              r"permissions 0644 are too open.*chmod 600 " + loose),
             ("symlinked secret file", {"client_secret_file": link},
              r"is a symbolic link"),
             ("0640 key file", {"client_certificate": app.cert,
                                "client_key": app.key},
              r"client_key .*permissions 0640 are too open.*chmod 600")]
    for name, keys, pattern in cases:
        app.configure(**keys)
        calls = len(app.calls())
        rc, _, err = app.token()
        t.is_(rc, 78, "%s: exit 78" % name)
        t.like(err, pattern, "%s: the message and the fix" % name)
        t.is_(len(app.calls()), calls, "%s: no token request" % name)
    os.chmod(app.key, 0o600)


def test_mock_checks(t, app):
    """The mock's own assertion checks, with assertions made here."""
    sb = app.sb
    now = int(time.time())
    aud = "%s/%s/oauth2/v2.0/token" % (sb.authority, TENANT)
    x5t = b64url(__import__("hashlib").sha256(base64.b64decode("".join(
        app.cert_pem.split("-----")[2].split()))).digest())

    def post(header, claims, alg="PS256"):
        a = sign_assertion(app.key, header, claims, alg)
        status, body = sb.token_call({
            "grant_type": "client_credentials", "client_id": APP_ID,
            "scope": APP_SCOPE, "client_assertion": a,
            "client_assertion_type":
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
        return status, (body.get("error_codes") or [None])[0]

    head = {"alg": "PS256", "typ": "JWT", "x5t#S256": x5t}
    good = {"aud": aud, "iss": APP_ID, "sub": APP_ID, "jti": "j-1",
            "nbf": now, "iat": now, "exp": now + 600}
    t.is_(post(head, good), (200, None), "mock: a good assertion is taken")
    t.is_(post(head, good)[1], 50027, "mock: a replayed jti is refused")
    rows = [("expired", head, dict(good, jti="j-2", nbf=now - 900,
                                   exp=now - 300), 700024),
            ("valid for two hours", head, dict(good, jti="j-3",
                                               exp=now + 7200), 700024),
            ("wrong aud", head, dict(good, jti="j-4", aud=aud + "x"), 700023),
            ("iss not the client", head, dict(good, jti="j-5", iss="x"),
             700021),
            ("alg ES256", dict(head, alg="ES256"), dict(good, jti="j-6"),
             5002738),
            ("unknown x5t#S256", dict(head, **{"x5t#S256": "AAAA"}),
             dict(good, jti="j-7"), 700027)]
    for name, h, c, code in rows:
        t.is_(post(h, c)[1], code, "mock: %s -> AADSTS%d" % (name, code))
    # PS256 header over an RS256 signature: the signature check catches it
    t.is_(post(head, dict(good, jti="j-8"), alg="RS256")[1], 700027,
          "mock: a PKCS#1 v1.5 signature labelled PS256 -> AADSTS700027")


def test_no_secrets(t, app):
    sb = app.sb
    app.configure(client_certificate=app.cert, client_key=app.key)
    app.deliver(t, "-v with a certificate", ["-v"])
    store = sb.token_store() if os.path.exists(sb.token_file) else {}
    access = store.get("access_token") or "no-token"
    key_body = "".join(app.key_pem.split("-----")[2].split())[:60]
    texts = [o.decode("utf-8", "replace") for o in app.outputs]
    texts.append(sb.log_text())
    for name in ("idp.log", "smtpd.log"):
        with open(os.path.join(sb.dir, name), encoding="utf-8",
                  errors="replace") as f:
            texts.append(f.read())
    texts.append(json.dumps(app.calls()))
    state = os.path.join(sb.dir, "state")
    for fn in os.listdir(state):
        if fn.endswith((".jsonl", ".json")):
            with open(os.path.join(state, fn), encoding="utf-8",
                      errors="replace") as f:
                texts.append(f.read())
    joined = "\n".join(texts)
    t.ok(SECRET not in joined and "not-the-secret" not in joined,
         "the client secret is in no output, log or record")
    t.ok(not any(h in joined for h in ASSERTION_HEADS),
         "no client assertion in any output, log or record")
    t.ok(key_body not in joined, "no private key material anywhere")
    t.ok(access != "no-token" and access not in joined,
         "no access token in any output or log (one was stored to look for)")


def tests(t):
    with Sandbox(seed=False) as sb:
        app = App(sb)
        sb._control("app", {"client_id": APP_ID, "tenant": TENANT,
                            "secret": SECRET, "certificate": app.cert_pem})
        test_secret(t, app)
        test_credential(t, app)
        test_certificate(t, app)
        test_refusals(t, app)
        test_mock_checks(t, app)
        test_no_secrets(t, app)


if __name__ == "__main__":
    run_tests(tests)
