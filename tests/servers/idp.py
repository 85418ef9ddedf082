"""idp - a mock of the Microsoft identity platform's v2.0 token endpoint.

HTTPS (http.server + ssl, one thread per request) on a loopback port.
POST /{tenant}/oauth2/v2.0/token implements, one handler per grant:
  * refresh_token (RFC 6749 s6) with Entra's rules: client_id, refresh_token
    and scope are required (AADSTS900144); refresh tokens are strictly
    single-use here (a replayed or unknown one is invalid_grant AADSTS70000),
    bound to the client and the tenant that obtained them (AADSTS7000012),
    revocable (AADSTS50173); public clients must not send a secret
    (AADSTS700025); a refresh token comes back only with offline_access.
  * client_credentials (RFC 6749 s4.4) with a client secret: app-only tokens
    for https://outlook.office365.com/.default, no refresh token.
Access tokens are JWT-shaped, HS256-signed with a secret kept in the state
directory (STATE/jwt.secret) so that smtpd.py can check XOAUTH2 tokens.
Error bodies have Microsoft's shape (error, error_description with the
AADSTS code and the Trace ID/Correlation ID/Timestamp lines, error_codes,
timestamp, trace_id, correlation_id).

Test control endpoints, loopback only, under /_test/ (JSON in and out):
  POST /_test/mint    {"user","tenant","client_id","scope","access"} -> a
                      token-endpoint-shaped JSON with a fresh refresh token
  POST /_test/fail    {"count","status","error","aadsts","description",
                      "raw","retry_after"}: the next count token calls fail
  POST /_test/revoke  {"user"}: every refresh token of the user is revoked
  POST /_test/app     {"client_id","tenant","secret"}: register a
                      confidential app for client_credentials
  POST /_test/config  {"lifetime"}: access token lifetime in seconds
  GET  /_test/calls   the token requests received (never secret values)

Run: idp.py --cert C --key K --state DIR [--port 0] [--lifetime 3600]
prints "READY port=NNNN" once listening.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

OUTLOOK = "https://outlook.office.com"
OUTLOOK365 = "https://outlook.office365.com"
DEFAULT_SCOPE = OUTLOOK + "/SMTP.Send offline_access"
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}
MULTI_TENANTS = {"common", "organizations"}
SECRET_FILE = "jwt.secret"


# ------------------------------------------------------------------ JWT

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def load_secret(state_dir):
    """The HS256 key shared by idp.py and smtpd.py; made on first use."""
    path = os.path.join(state_dir, SECRET_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            with open(path, "rb") as f:
                key = f.read()
            if len(key) == 32:
                return key
            time.sleep(0.01)
        raise RuntimeError("%s is not a 32-byte key" % path)
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def jwt_sign(claims, key):
    header = {"typ": "JWT", "alg": "HS256", "kid": "bearmail-test"}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode())
                     + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def jwt_verify(token, key, now=None):
    """Return the claims of a valid, unexpired HS256 token, else None."""
    try:
        head, payload, sig = token.split(".")
        want = hmac.new(key, (head + "." + payload).encode("ascii"),
                        hashlib.sha256).digest()
        if not hmac.compare_digest(want, b64url_decode(sig)):
            return None
        if json.loads(b64url_decode(head)).get("alg") != "HS256":
            return None
        claims = json.loads(b64url_decode(payload))
    except (ValueError, UnicodeError):
        return None
    now = time.time() if now is None else now
    if not isinstance(claims, dict) or claims.get("exp", 0) <= now \
            or claims.get("nbf", 0) > now + 300:
        return None
    return claims


# ------------------------------------------------------------- errors

AADSTS_TEXT = {
    900144: "The request body must contain the following parameter: '%s'.",
    70000: "Provided grant is invalid or malformed.",
    7000012: "The grant was obtained for a different tenant.",
    50173: "The provided grant has expired due to it being revoked, a fresh "
           "auth token is needed. The user might have changed or reset their "
           "password. The grant was issued on '%s' and the TokensValidFrom "
           "date (before which tokens are not valid) for this user is '%s'.",
    700025: "Client is public so neither 'client_assertion' nor "
            "'client_secret' should be presented.",
    65001: "The user or administrator has not consented to use the "
           "application with ID '%s'. Send an interactive authorization "
           "request for this user and resource.",
    70011: "The provided request must include a 'scope' input parameter. The "
           "provided value for the input parameter 'scope' is not valid.",
    1002012: "The provided value for scope %s is not valid. Client "
             "credential flows must have a scope value with /.default "
             "suffixed to the resource identifier (application ID URI).",
    700016: "Application with identifier '%s' was not found in the "
            "directory '%s'.",
    7000215: "Invalid client secret provided. Ensure the secret being sent "
             "in the request is the client secret value, not the client "
             "secret ID, for a secret added to app '%s'.",
    90002: "Tenant '%s' not found.",
    70003: "The app requested an unsupported grant type '%s'.",
    90033: "A transient error has occurred. Please try again.",
}


class OAuthError(Exception):
    """A token endpoint failure: HTTP status, OAuth error, AADSTS code."""

    def __init__(self, status, error, code, *args, description=None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.code = code
        text = description
        if text is None:
            text = AADSTS_TEXT.get(code, "Error.")
            if args:
                text = text % args
        self.text = text


def ms_timestamp(t=None):
    t = time.time() if t is None else t
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc) \
        .strftime("%Y-%m-%d %H:%M:%SZ")


def error_body(err):
    """Microsoft-shaped JSON error body for an OAuthError."""
    trace, corr, stamp = str(uuid.uuid4()), str(uuid.uuid4()), ms_timestamp()
    desc = err.text
    if err.code:
        desc = "AADSTS%d: %s" % (err.code, desc)
    desc += "\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
        trace, corr, stamp)
    body = {"error": err.error, "error_description": desc,
            "error_codes": [err.code] if err.code else [],
            "timestamp": stamp, "trace_id": trace, "correlation_id": corr}
    if err.code:
        body["error_uri"] = ("https://login.microsoftonline.com/error?code=%d"
                             % err.code)
    return body


# --------------------------------------------------------------- state

def tenant_guid(tenant):
    if _is_guid(tenant):
        return tenant.lower()
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, tenant.lower()))


def _is_guid(text):
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def new_refresh_token():
    """Opaque and long, like Entra's (over a kilobyte)."""
    return "1.AQ" + b64url(secrets.token_bytes(800))


def split_scope(scope):
    """(resource scopes, has offline_access) from a space-separated scope."""
    words = scope.split()
    return [w for w in words if w not in OIDC_SCOPES], "offline_access" in words


def resource_of(scope):
    """'https://outlook.office.com/SMTP.Send' -> (aud, 'SMTP.Send')."""
    base, _, name = scope.rpartition("/")
    return base, name


class IdP:
    """Token state, shared by the request threads (all under self.lock)."""

    def __init__(self, state_dir, lifetime=3600):
        self.state_dir = state_dir
        self.key = load_secret(state_dir)
        self.lifetime = lifetime
        self.lock = threading.Lock()
        self.refresh = {}        # token -> grant dict
        self.apps = {}           # client_id -> {"tenant", "secret"}
        self.failures = []       # injected failures, consumed in order
        self.calls = []

    # -- grants
    def mint(self, user, tenant, client_id, scope=DEFAULT_SCOPE, public=True):
        token = new_refresh_token()
        with self.lock:
            self.refresh[token] = {
                "user": user, "tenant": tenant, "tid": tenant_guid(tenant),
                "client_id": client_id, "scopes": split_scope(scope)[0],
                "public": public, "state": "valid", "issued": time.time()}
        return token

    def access_token(self, grant, scopes):
        now = int(time.time())
        aud, _ = resource_of(scopes[0])
        claims = {
            "aud": aud, "iss": "https://sts.windows.net/%s/" % grant["tid"],
            "iat": now, "nbf": now, "exp": now + self.lifetime,
            "appid": grant["client_id"], "appidacr": "0",
            "tid": grant["tid"], "ver": "1.0",
            "uti": b64url(secrets.token_bytes(16)),
            "xms_pad": b64url(secrets.token_bytes(600))}
        if grant.get("user"):
            claims.update({
                "scp": " ".join(resource_of(s)[1] for s in scopes),
                "upn": grant["user"], "unique_name": grant["user"],
                "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, grant["user"]))})
        else:
            claims["roles"] = ["SMTP.SendAsApp"]
        return jwt_sign(claims, self.key)

    def token_response(self, grant, scopes, with_refresh):
        body = {"token_type": "Bearer", "scope": " ".join(scopes),
                "expires_in": self.lifetime, "ext_expires_in": self.lifetime,
                "access_token": self.access_token(grant, scopes)}
        if with_refresh:
            body["refresh_token"] = self.mint(
                grant["user"], grant["tenant"], grant["client_id"],
                " ".join(grant["scopes"]) + " offline_access",
                grant["public"])
        return body

    def take_failure(self):
        with self.lock:
            if not self.failures:
                return None
            f = self.failures[0]
            f["count"] -= 1
            if f["count"] <= 0:
                self.failures.pop(0)
            return f

    def revoke(self, user):
        n = 0
        with self.lock:
            for g in self.refresh.values():
                if g["user"] and g["user"].lower() == user.lower() \
                        and g["state"] == "valid":
                    g["state"] = "revoked"
                    g["revoked"] = time.time()
                    n += 1
        return n


def require(form, *names):
    for n in names:
        if not form.get(n):
            raise OAuthError(400, "invalid_request", 900144, n)


def grant_refresh_token(idp, tenant, form):
    require(form, "client_id", "refresh_token", "scope")
    if form.get("client_secret") or form.get("client_assertion"):
        raise OAuthError(401, "invalid_client", 700025)
    scopes, offline = split_scope(form["scope"])
    with idp.lock:
        grant = idp.refresh.get(form["refresh_token"])
        state = grant["state"] if grant else None
        if grant is not None and state == "valid":
            check_refresh_grant(grant, tenant, form, scopes)
            grant["state"] = "used"
    if grant is None or state == "used":
        raise OAuthError(400, "invalid_grant", 70000)
    if state == "revoked":
        raise OAuthError(400, "invalid_grant", 50173,
                         ms_timestamp(grant["issued"]),
                         ms_timestamp(grant["revoked"]))
    return idp.token_response(grant, scopes or grant["scopes"], offline)


def check_refresh_grant(grant, tenant, form, scopes):
    """Client, tenant and scope checks for a still-valid refresh token."""
    if form["client_id"] != grant["client_id"]:
        raise OAuthError(400, "invalid_grant", 70000)
    if tenant.lower() not in MULTI_TENANTS and \
            tenant.lower() not in (grant["tenant"].lower(), grant["tid"]):
        raise OAuthError(400, "invalid_grant", 7000012)
    auds = {resource_of(s)[0] for s in scopes}
    if len(auds) > 1:
        raise OAuthError(400, "invalid_scope", 70011)
    consented = {s.lower() for s in grant["scopes"]}
    if any(s.lower() not in consented for s in scopes):
        raise OAuthError(400, "invalid_grant", 65001, grant["client_id"])


def grant_client_credentials(idp, tenant, form):
    require(form, "client_id", "scope")
    if tenant.lower() in MULTI_TENANTS | {"consumers"}:
        raise OAuthError(400, "invalid_request", 90002, tenant)
    if not form["scope"].endswith("/.default") or len(form["scope"].split()) != 1:
        raise OAuthError(400, "invalid_scope", 1002012, form["scope"])
    app = idp.apps.get(form["client_id"])
    if app is None or app["tenant"].lower() not in (tenant.lower(),
                                                    tenant_guid(tenant)):
        raise OAuthError(400, "unauthorized_client", 700016,
                         form["client_id"], tenant)
    if not form.get("client_secret"):
        raise OAuthError(401, "invalid_client", 900144, "client_secret")
    if not hmac.compare_digest(form["client_secret"].encode(),
                               app["secret"].encode()):
        raise OAuthError(401, "invalid_client", 7000215, form["client_id"])
    grant = {"user": None, "tenant": tenant, "tid": tenant_guid(tenant),
             "client_id": form["client_id"], "public": False}
    aud = form["scope"][:-len("/.default")]
    return idp.token_response(grant, [aud + "/.default"], False)


GRANTS = {
    "refresh_token": grant_refresh_token,
    "client_credentials": grant_client_credentials,
}


# ------------------------------------------------------------ control

def ctl_mint(idp, body):
    user = body.get("user", "alice@contoso.example")
    tenant = body.get("tenant", "contoso.example")
    client_id = body.get("client_id", "11111111-2222-3333-4444-555555555555")
    scope = body.get("scope", DEFAULT_SCOPE)
    token = idp.mint(user, tenant, client_id, scope, body.get("public", True))
    scopes = split_scope(scope)[0]
    out = {"token_type": "Bearer", "scope": " ".join(scopes),
           "refresh_token": token}
    if body.get("access"):
        grant = idp.refresh[token]
        out.update({"expires_in": idp.lifetime,
                    "ext_expires_in": idp.lifetime,
                    "access_token": idp.access_token(grant, scopes)})
    return out


def ctl_fail(idp, body):
    f = {"count": int(body.get("count", 1)), "status": int(body.get("status", 503)),
         "error": body.get("error", "temporarily_unavailable"),
         "aadsts": int(body.get("aadsts", 90033)),
         "description": body.get("description"), "raw": body.get("raw"),
         "retry_after": body.get("retry_after")}
    with idp.lock:
        idp.failures.append(f)
    return {"queued": f["count"]}


def ctl_revoke(idp, body):
    return {"revoked": idp.revoke(body["user"])}


def ctl_app(idp, body):
    with idp.lock:
        idp.apps[body["client_id"]] = {"tenant": body["tenant"],
                                       "secret": body["secret"]}
    return {"ok": True}


def ctl_config(idp, body):
    if "lifetime" in body:
        idp.lifetime = int(body["lifetime"])
    return {"lifetime": idp.lifetime}


CONTROL = {"mint": ctl_mint, "fail": ctl_fail, "revoke": ctl_revoke,
           "app": ctl_app, "config": ctl_config}


# ------------------------------------------------------------- server

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bearmail-test-idp"
    sys_version = ""

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # noqa: A002 - the base's name
        if self.server.verbose:
            super().log_message(format, *args)

    def send_json(self, status, body, headers=()):
        data = json.dumps(body).encode("utf-8")
        self.send_raw(status, data, "application/json; charset=utf-8", headers)

    def send_raw(self, status, data, ctype, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store, no-cache")
        self.send_header("Pragma", "no-cache")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        if self.path == "/_test/calls":
            with self.server.idp.lock:
                calls = list(self.server.idp.calls)
            return self.send_json(200, calls)
        self.send_json(404, {"error": "not_found"})

    def do_POST(self):
        body = self.read_body()
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "_test" and parts[1] in CONTROL:
            return self.control(parts[1], body)
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self.token(parts[0], body)
        self.send_json(404, {"error": "not_found"})

    def control(self, name, body):
        if self.client_address[0] not in ("127.0.0.1", "::1"):
            return self.send_json(403, {"error": "loopback only"})
        try:
            arg = json.loads(body or b"{}")
            out = CONTROL[name](self.server.idp, arg)
        except (ValueError, KeyError, TypeError) as e:
            return self.send_json(400, {"error": str(e)})
        self.send_json(200, out)

    def token(self, tenant, body):
        idp = self.server.idp
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
        call = {"tenant": tenant, "grant_type": form.get("grant_type"),
                "client_id": form.get("client_id"), "scope": form.get("scope"),
                "params": sorted(form), "time": time.time(),
                "content_type": self.headers.get("Content-Type")}
        status, out = self.run_grant(idp, tenant, form, call)
        with idp.lock:
            idp.calls.append(call)
        if status is None:
            return
        self.send_json(status, out)

    def run_grant(self, idp, tenant, form, call):
        """(status, JSON) for the token request; (None, None) if sent raw."""
        injected = idp.take_failure()
        if injected is not None:
            call.update(ok=False, status=injected["status"],
                        error=injected["error"], injected=True)
            return self.send_injected(injected)
        try:
            if not self.headers.get("Content-Type", "").startswith(
                    "application/x-www-form-urlencoded"):
                raise OAuthError(400, "invalid_request", 900144, "grant_type")
            require(form, "grant_type")
            handler = GRANTS.get(form["grant_type"])
            if handler is None:
                raise OAuthError(400, "unsupported_grant_type", 70003,
                                 form["grant_type"])
            out = handler(idp, tenant, form)
        except OAuthError as e:
            call.update(ok=False, status=e.status, error=e.error, aadsts=e.code)
            return e.status, error_body(e)
        call.update(ok=True, status=200,
                    refresh_token_returned="refresh_token" in out)
        return 200, out

    def send_injected(self, f):
        headers = [("Retry-After", str(f["retry_after"]))] \
            if f.get("retry_after") is not None else []
        if f.get("raw") is not None:
            self.send_raw(f["status"], f["raw"].encode("utf-8"),
                          "text/html; charset=utf-8", headers)
            return None, None
        err = OAuthError(f["status"], f["error"], f["aadsts"],
                         description=f.get("description"))
        self.send_json(f["status"], error_body(err), headers)
        return None, None


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def make_server(cert, key, state_dir, port=0, host="127.0.0.1",
                lifetime=3600, verbose=False):
    """An IdP server bound and wrapped in TLS (call serve_forever())."""
    srv = Server((host, port), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                 do_handshake_on_connect=False)
    srv.idp = IdP(state_dir, lifetime)
    srv.verbose = verbose
    return srv


def watch_stdin():
    """Exit when stdin reaches EOF: the test that started us is gone."""
    def run():
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)
    threading.Thread(target=run, daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description="mock Microsoft identity platform")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--lifetime", type=int, default=3600)
    ap.add_argument("--watch-stdin", action="store_true",
                    help="exit when stdin is closed")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.state, exist_ok=True)
    srv = make_server(a.cert, a.key, a.state, a.port, a.host, a.lifetime,
                      a.verbose)
    port = srv.server_address[1]
    with open(os.path.join(a.state, "idp.port"), "w", encoding="ascii") as f:
        f.write("%d\n" % port)
    if a.watch_stdin:
        watch_stdin()
    print("READY port=%d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
