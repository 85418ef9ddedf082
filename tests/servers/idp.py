"""idp - a mock of the Microsoft identity platform's v2.0 token endpoint.

HTTPS (http.server + ssl, one thread per request) on a loopback port.
POST /{tenant}/oauth2/v2.0/token implements, one handler per grant:
  * refresh_token (RFC 6749 s6) with Entra's rules: client_id, refresh_token
    and scope are required (AADSTS900144); refresh tokens are strictly
    single-use here (a replayed or unknown one is invalid_grant AADSTS70000),
    bound to the client and the tenant that obtained them (AADSTS7000012),
    revocable (AADSTS50173); public clients must not send a secret
    (AADSTS700025); a refresh token comes back only with offline_access.
  * client_credentials (RFC 6749 s4.4) with a client secret or a signed
    client assertion (RFC 7523; PS256/RS256 verified with the registered
    certificate through the openssl command): app-only tokens for
    https://outlook.office365.com/.default, no refresh token.
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
  POST /_test/app     {"client_id","tenant","secret","certificate"}:
                      register a confidential app for client_credentials
                      (a secret, a PEM certificate, or both)
  POST /_test/config  {"lifetime"}: access token lifetime in seconds
  GET  /_test/calls   the token requests received (never secret values)
  POST /_test/device  {"user_code","action","user"}: the user approves,
                      declines or expires a device code, or asks for a
                      slow_down
  GET  /_test/authorize_calls  the authorization requests received
Interactive sign-in (README.md): POST /{tenant}/oauth2/v2.0/devicecode and
the device_code grant (RFC 8628), GET /{tenant}/oauth2/v2.0/authorize (302
back to a loopback redirect_uri) and the authorization_code grant with PKCE.

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
import subprocess
import tempfile
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
    7000222: "The provided client secret keys for app '%s' are expired.",
    700027: "Client assertion contains an invalid signature. [Reason - %s, "
            "Thumbprint of key used by client: '%s']",
    700024: "Client assertion is not within its valid time range. Current "
            "time: %s, assertion valid from %s, expiry time of assertion "
            "%s.",
    700023: "Client assertion audience claim does not match Realm issuer. "
            "Review the documentation at https://learn.microsoft.com/entra/"
            "identity-platform/certificate-credentials.",
    700021: "Client assertion application identifier doesn't match "
            "'client_id' parameter.",
    5002738: "Invalid JWT token. '%s' is not a supported signature "
             "algorithm.",
    50027: "JWT token is invalid or malformed: %s",
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
        self.apps = {}           # client_id -> {"tenant", "secret", cert}
        self.jtis = set()        # client assertion jti values seen
        self.base_url = None     # https://HOST:PORT, for assertion aud
        self.failures = []       # injected failures, consumed in order
        self.calls = []
        self.devices = {}        # device_code -> device sign-in record
        self.codes = {}          # authorization code -> its request
        self.authorize_calls = []
        self.login = dict(LOGIN_DEFAULTS)

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
    if form.get("client_assertion"):
        check_assertion(idp, app, tenant, form)
    elif not form.get("client_secret"):
        raise OAuthError(401, "invalid_client", 900144, "client_secret")
    elif not app.get("secret") or not hmac.compare_digest(
            form["client_secret"].encode(), app["secret"].encode()):
        raise OAuthError(401, "invalid_client", 7000215, form["client_id"])
    grant = {"user": None, "tenant": tenant, "tid": tenant_guid(tenant),
             "client_id": form["client_id"], "public": False}
    aud = form["scope"][:-len("/.default")]
    return idp.token_response(grant, [aud + "/.default"], False)


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_MAX_LIFETIME = 3600
CLOCK_SKEW = 300


def auth_method(form):
    """How a token request authenticates the client, for /_test/calls:
    "secret", "assertion:PS256" ... or None; never a value."""
    if form.get("client_assertion"):
        try:
            head = json.loads(b64url_decode(
                form["client_assertion"].split(".")[0]))
            return "assertion:%s" % head.get("alg")
        except (ValueError, UnicodeError, AttributeError):
            return "assertion:malformed"
    return "secret" if form.get("client_secret") else None


def cert_info(pem):
    """(x5t#S256, public key PEM) of a PEM certificate; ValueError if
    it is not one."""
    try:
        body = pem.split("-----BEGIN CERTIFICATE-----")[1] \
            .split("-----END CERTIFICATE-----")[0]
        der = base64.b64decode("".join(body.split()))
        pub = subprocess.run(["openssl", "x509", "-noout", "-pubkey"],
                             input=pem.encode(), capture_output=True,
                             check=True)
    except (IndexError, subprocess.CalledProcessError):
        raise ValueError("not a PEM certificate") from None
    return b64url(hashlib.sha256(der).digest()), pub.stdout


def rsa_verify(idp, pub_pem, alg, signing_input, sig):
    """Verify an RS256/PS256 signature with the openssl command."""
    argv = ["openssl", "dgst", "-sha256"]
    with tempfile.TemporaryDirectory(dir=idp.state_dir) as d:
        paths = {n: os.path.join(d, n) for n in ("pub.pem", "sig")}
        for name, data in (("pub.pem", pub_pem), ("sig", sig)):
            with open(paths[name], "wb") as f:
                f.write(data)
        argv += ["-verify", paths["pub.pem"], "-signature", paths["sig"]]
        if alg == "PS256":
            argv += ["-sigopt", "rsa_padding_mode:pss",
                     "-sigopt", "rsa_pss_saltlen:-1"]
        p = subprocess.run(argv, input=signing_input, capture_output=True)
    return p.returncode == 0 and b"Verified OK" in p.stdout


def parse_assertion(text):
    """(header, claims, signing input, signature) of a compact JWS."""
    try:
        head, payload, sig = text.split(".")
        header = json.loads(b64url_decode(head))
        claims = json.loads(b64url_decode(payload))
        signature = b64url_decode(sig)
    except (ValueError, UnicodeError) as e:
        raise OAuthError(400, "invalid_request", 50027, str(e)) from None
    if not isinstance(header, dict) or not isinstance(claims, dict) or \
            any(c in "=+/" for c in text):
        raise OAuthError(400, "invalid_request", 50027,
                         "not base64url JSON objects")
    return header, claims, (head + "." + payload).encode("ascii"), signature


def check_assertion(idp, app, tenant, form):
    """RFC 7523 s3 as Entra checks it; raises OAuthError."""
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise OAuthError(400, "invalid_request", 900144,
                         "client_assertion_type")
    header, claims, signing_input, sig = parse_assertion(
        form["client_assertion"])
    alg = header.get("alg")
    if alg not in ("PS256", "RS256"):
        raise OAuthError(401, "invalid_client", 5002738, alg)
    x5t = header.get("x5t#S256") or header.get("x5t") or ""
    if not app.get("cert") or x5t != app["cert"][0]:
        raise OAuthError(401, "invalid_client", 700027, "The key was not "
                         "found.", x5t)
    if not rsa_verify(idp, app["cert"][1], alg, signing_input, sig):
        raise OAuthError(401, "invalid_client", 700027, "The signature is "
                         "invalid.", x5t)
    check_assertion_claims(idp, tenant, form, claims)


def check_assertion_claims(idp, tenant, form, claims):
    want_aud = "%s/%s/oauth2/v2.0/token" % (idp.base_url, tenant)
    if claims.get("aud") != want_aud:
        raise OAuthError(401, "invalid_client", 700023)
    if claims.get("iss") != form["client_id"] or \
            claims.get("sub") != form["client_id"]:
        raise OAuthError(401, "invalid_client", 700021)
    now, nbf, exp = time.time(), claims.get("nbf"), claims.get("exp")
    if not isinstance(exp, int) or not isinstance(nbf, int) or \
            exp <= now or nbf > now + CLOCK_SKEW or \
            exp - nbf > ASSERTION_MAX_LIFETIME:
        raise OAuthError(401, "invalid_client", 700024, ms_timestamp(now),
                         nbf, exp)
    jti = claims.get("jti")
    with idp.lock:
        replayed = not jti or jti in idp.jtis
        idp.jtis.add(jti)
    if replayed:
        raise OAuthError(401, "invalid_client", 50027,
                         "the jti claim is missing or was used before")


# ------------------------------------------- device code and browser flows

VERIFICATION_URI = "https://microsoft.com/devicelogin"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
DEFAULT_USER = "alice@contoso.example"
POLL_TOLERANCE = 0.3     # seconds a poll may come early without slow_down
CODE_LIFETIME = 600      # authorization codes live ~10 minutes
LOGIN_DEFAULTS = {"device_interval": 5, "device_expires_in": 900,
                  "authorize": "approve"}

AADSTS_TEXT.update({
    70016: "OAuth 2.0 device flow error. Authorization is pending. Continue "
           "polling.",
    70018: "Invalid verification code due to User typing in wrong user code "
           "for device code flow.",
    70019: "Verification code expired.",
    54005: "OAuth2 Authorization code was already redeemed, please retry "
           "with a new valid code or use an existing refresh token.",
    70008: "The provided authorization code or refresh token has expired due "
           "to inactivity. Send a new interactive authorization request for "
           "this user and resource.",
    50148: "The code_verifier does not match the code_challenge supplied in "
           "the authorization request for PKCE.",
    50011: "The redirect URI '%s' specified in the request does not match "
           "the redirect URIs configured for the application '%s'.",
    65004: "User declined to consent to access the app.",
    501491: "Invalid size of Code_Challenge parameter or "
            "code_challenge_method is not S256.",
})


def login_grant(user, tenant, client_id, scopes):
    """The grant a finished interactive sign-in stands for."""
    return {"user": user, "tenant": tenant, "tid": tenant_guid(tenant),
            "client_id": client_id, "scopes": scopes, "public": True}


def reject_client_secret(form):
    if form.get("client_secret") or form.get("client_assertion"):
        raise OAuthError(401, "invalid_client", 700025)


def device_authorize(idp, tenant, form):
    """POST /{tenant}/oauth2/v2.0/devicecode (RFC 8628 s3.1-3.2)."""
    require(form, "client_id", "scope")
    reject_client_secret(form)
    if not split_scope(form["scope"])[0]:
        raise OAuthError(400, "invalid_scope", 70011)
    user_code = "".join(secrets.choice(USER_CODE_CHARS) for _ in range(8))
    device_code = "DAQABIQEAAAB" + b64url(secrets.token_bytes(96))
    with idp.lock:
        interval = int(idp.login["device_interval"])
        expires_in = int(idp.login["device_expires_in"])
        idp.devices[device_code] = {
            "user_code": user_code, "client_id": form["client_id"],
            "tenant": tenant, "scope": form["scope"], "state": "pending",
            "expires": time.time() + expires_in, "interval": interval,
            "user": None, "last_poll": None, "force": None, "slow_downs": 0,
            "created": time.time()}
    return {"user_code": user_code, "device_code": device_code,
            "verification_uri": VERIFICATION_URI, "expires_in": expires_in,
            "interval": interval,
            "message": "To sign in, use a web browser to open the page %s "
                       "and enter the code %s to authenticate."
                       % (VERIFICATION_URI, user_code)}


def device_poll_state(d, now):
    """Raise the error a poll of device record d gets now, if any."""
    early = d["last_poll"] is not None and \
        now - d["last_poll"] < d["interval"] - POLL_TOLERANCE
    d["last_poll"] = now
    force, d["force"] = d["force"], None
    if d["state"] == "declined":
        raise OAuthError(400, "authorization_declined", 0,
                         description="The end user denied the "
                                     "authorization request.")
    if d["state"] == "expired" or now > d["expires"]:
        raise OAuthError(400, "expired_token", 70019)
    if early or force == "slow_down":
        d["interval"] += 5
        d["slow_downs"] += 1
        raise OAuthError(400, "slow_down", 0, description="Polling too "
                         "fast: slow down.")
    if d["state"] == "pending":
        raise OAuthError(400, "authorization_pending", 70016)


def grant_device_code(idp, tenant, form):
    """The device_code grant (RFC 8628 s3.4-3.5), one poll."""
    require(form, "client_id", "device_code")
    reject_client_secret(form)
    with idp.lock:
        d = idp.devices.get(form["device_code"])
        if d is None or d["client_id"] != form["client_id"] or \
                d["state"] == "used":
            raise OAuthError(400, "bad_verification_code", 70018)
        device_poll_state(d, time.time())
        d["state"] = "used"
    scopes, offline = split_scope(d["scope"])
    grant = login_grant(d["user"] or DEFAULT_USER, d["tenant"],
                        d["client_id"], scopes)
    return idp.token_response(grant, scopes, offline)


def loopback_redirect(uri):
    """Whether uri is an http://127.0.0.1 or http://localhost redirect."""
    try:
        u = urllib.parse.urlsplit(uri)
        u.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return u.scheme == "http" and u.hostname in ("127.0.0.1", "localhost") \
        and not u.fragment


def authorize_page(code, *args):
    err = OAuthError(400, "invalid_request", code, *args)
    text = "AADSTS%d: %s" % (code, err.text)
    return 400, ("<html><body><h1>Sign in</h1><p>Sorry, but we're having "
                 "trouble signing you in.</p><p>%s</p></body></html>"
                 % text.replace("<", "&lt;"))


def authorize_back(redirect_uri, state, params):
    """302 to the client's redirect_uri with params (and state)."""
    if state is not None:
        params = dict(params, state=state)
    sep = "&" if "?" in redirect_uri else "?"
    return 302, redirect_uri + sep + urllib.parse.urlencode(params)


def authorize_request(idp, tenant, query):
    """GET /{tenant}/oauth2/v2.0/authorize: (302, Location) or (400, HTML).
    The login_hint user (else alice) signs in at once, unless
    /_test/config {"authorize": "deny"} makes them decline."""
    q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    redirect, state = q.get("redirect_uri", ""), q.get("state")
    if not q.get("client_id"):
        return authorize_page(900144, "client_id")
    if not loopback_redirect(redirect):
        return authorize_page(50011, redirect, q["client_id"])
    if q.get("response_type") != "code":
        return authorize_back(redirect, state, {
            "error": "unsupported_response_type",
            "error_description": "AADSTS70003: response_type must be code"})
    if q.get("code_challenge_method") != "S256" or \
            not 43 <= len(q.get("code_challenge", "")) <= 128:
        return authorize_back(redirect, state, {
            "error": "invalid_request",
            "error_description": "AADSTS501491: " + AADSTS_TEXT[501491]})
    if not q.get("scope"):
        return authorize_back(redirect, state, {
            "error": "invalid_request",
            "error_description": "AADSTS900144: " + AADSTS_TEXT[900144]
                                 % "scope"})
    with idp.lock:
        deny = idp.login["authorize"] == "deny"
        idp.authorize_calls.append({
            "tenant": tenant, "params": sorted(q), "time": time.time(),
            "redirect_uri": redirect, "login_hint": q.get("login_hint"),
            "prompt": q.get("prompt"), "scope": q.get("scope"),
            "code_challenge_method": q.get("code_challenge_method"),
            "denied": deny})
    if deny:
        return authorize_back(redirect, state, {
            "error": "access_denied",
            "error_description": "AADSTS65004: " + AADSTS_TEXT[65004]})
    code = "0.AXoA" + b64url(secrets.token_bytes(600))
    with idp.lock:
        idp.codes[code] = {
            "user": q.get("login_hint") or DEFAULT_USER, "tenant": tenant,
            "client_id": q["client_id"], "redirect_uri": redirect,
            "challenge": q["code_challenge"], "scope": q["scope"],
            "issued": time.time(), "used": False}
    return authorize_back(redirect, state, {"code": code,
                                            "session_state": str(uuid.uuid4())})


def grant_authorization_code(idp, tenant, form):
    """The authorization_code grant with PKCE (RFC 6749 s4.1.3, RFC 7636
    s4.6): single-use codes, verifier and redirect_uri checked."""
    require(form, "client_id", "code", "redirect_uri")
    reject_client_secret(form)
    with idp.lock:
        c = idp.codes.get(form["code"])
        used = c is not None and c["used"]
        if c is not None:
            c["used"] = True
    if c is None or form["client_id"] != c["client_id"]:
        raise OAuthError(400, "invalid_grant", 70000)
    if used:
        raise OAuthError(400, "invalid_grant", 54005)
    if time.time() - c["issued"] > CODE_LIFETIME:
        raise OAuthError(400, "invalid_grant", 70008)
    if form["redirect_uri"] != c["redirect_uri"]:
        raise OAuthError(400, "invalid_grant", 50011, form["redirect_uri"],
                         c["client_id"])
    verifier = form.get("code_verifier", "").encode()
    if b64url(hashlib.sha256(verifier).digest()) != c["challenge"]:
        raise OAuthError(400, "invalid_grant", 50148)
    scopes, offline = split_scope(form.get("scope") or c["scope"])
    grant = login_grant(c["user"], c["tenant"], c["client_id"], scopes)
    return idp.token_response(grant, scopes, offline)


def ctl_device(idp, body):
    """Play the user at the verification page: approve (as "user"),
    decline, expire, or make the next poll answer slow_down."""
    action = body["action"]
    if action not in ("approve", "decline", "expire", "slow_down"):
        raise ValueError("action must be approve, decline, expire or "
                         "slow_down")
    with idp.lock:
        found = [d for d in idp.devices.values()
                 if d["user_code"] == body.get("user_code")] \
            if body.get("user_code") else \
            sorted(idp.devices.values(), key=lambda d: d["created"])[-1:]
        if not found:
            raise KeyError("no such user_code")
        d = found[0]
        if action == "slow_down":
            d["force"] = "slow_down"
        else:
            d["state"] = {"approve": "approved", "decline": "declined",
                          "expire": "expired"}[action]
            d["user"] = body.get("user") or d["user"]
        return {"user_code": d["user_code"], "state": d["state"],
                "interval": d["interval"], "slow_downs": d["slow_downs"]}


GRANTS = {
    "refresh_token": grant_refresh_token,
    "client_credentials": grant_client_credentials,
    "authorization_code": grant_authorization_code,
    DEVICE_GRANT: grant_device_code,
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
    cert = cert_info(body["certificate"]) if body.get("certificate") else None
    with idp.lock:
        idp.apps[body["client_id"]] = {"tenant": body["tenant"],
                                       "secret": body.get("secret"),
                                       "cert": cert}
    return {"ok": True, "x5t#S256": cert[0] if cert else None}


def ctl_config(idp, body):
    if "lifetime" in body:
        idp.lifetime = int(body["lifetime"])
    with idp.lock:
        idp.login.update({k: body[k] for k in LOGIN_DEFAULTS if k in body})
        return dict(idp.login, lifetime=idp.lifetime)


# ------------------------------------------------------- OpenID discovery

# Tenants the discovery document knows by domain (any GUID is known too).
DISCOVERY_DOMAINS = ("contoso.example", "contoso.onmicrosoft.com",
                     "fabrikam.example")
CONSUMERS_TID = "9188040d-6c67-4c5b-b112-36a304b66dad"


def discovery_document(base, tenant):
    """(status, JSON) for GET /{tenant}/v2.0/.well-known/openid-configuration,
    shaped like Microsoft's: issuer and endpoints carry the tenant GUID."""
    t = tenant.lower()
    if t in ("common", "organizations"):
        tid, path = "{tenantid}", t
    elif t == "consumers":
        tid = path = CONSUMERS_TID
    elif _is_guid(t) or t in DISCOVERY_DOMAINS:
        tid = path = tenant_guid(t)
    else:
        err = OAuthError(400, "invalid_tenant", 90002, tenant)
        return 400, error_body(err)
    ep = "%s/%s/oauth2/v2.0/" % (base, path)
    return 200, {
        "issuer": "%s/%s/v2.0" % (base, tid),
        "token_endpoint": ep + "token",
        "authorization_endpoint": ep + "authorize",
        "device_authorization_endpoint": ep + "devicecode",
        "end_session_endpoint": ep + "logout",
        "jwks_uri": "%s/%s/discovery/v2.0/keys" % (base, path),
        "token_endpoint_auth_methods_supported": [
            "client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "id_token", "code id_token",
                                     "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "msgraph_host": "graph.microsoft.com"}


CONTROL = {"mint": ctl_mint, "fail": ctl_fail, "revoke": ctl_revoke,
           "app": ctl_app, "config": ctl_config}
CONTROL["device"] = ctl_device


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
        if self.path == "/_test/authorize_calls":
            with self.server.idp.lock:
                calls = list(self.server.idp.authorize_calls)
            return self.send_json(200, calls)
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "authorize"]:
            return self.authorize(parts[0])
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known",
                                             "openid-configuration"]:
            base = "https://%s" % (self.headers.get("Host") or
                                   "127.0.0.1:%d" % self.server.server_address[1])
            return self.send_json(*discovery_document(base, parts[0]))
        self.send_json(404, {"error": "not_found"})

    def do_POST(self):
        body = self.read_body()
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "_test" and parts[1] in CONTROL:
            return self.control(parts[1], body)
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self.token(parts[0], body)
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "devicecode"]:
            return self.devicecode(parts[0], body)
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

    def authorize(self, tenant):
        query = urllib.parse.urlsplit(self.path).query
        status, out = authorize_request(self.server.idp, tenant, query)
        if status == 302:
            return self.send_raw(302, b"", "text/html; charset=utf-8",
                                 [("Location", out)])
        self.send_raw(status, out.encode("utf-8"), "text/html; charset=utf-8")

    def devicecode(self, tenant, body):
        idp = self.server.idp
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
        call = {"tenant": tenant, "endpoint": "devicecode",
                "grant_type": None, "client_id": form.get("client_id"),
                "scope": form.get("scope"), "params": sorted(form),
                "time": time.time(),
                "content_type": self.headers.get("Content-Type")}
        injected = idp.take_failure()
        if injected is not None:
            call.update(ok=False, status=injected["status"],
                        error=injected["error"], injected=True)
            with idp.lock:
                idp.calls.append(call)
            return self.send_injected(injected)
        try:
            status, out = 200, device_authorize(idp, tenant, form)
            call.update(ok=True, status=200)
        except OAuthError as e:
            status, out = e.status, error_body(e)
            call.update(ok=False, status=e.status, error=e.error,
                        aadsts=e.code)
        with idp.lock:
            idp.calls.append(call)
        self.send_json(status, out)

    def token(self, tenant, body):
        idp = self.server.idp
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
        call = {"tenant": tenant, "grant_type": form.get("grant_type"),
                "client_id": form.get("client_id"), "scope": form.get("scope"),
                "params": sorted(form), "time": time.time(),
                "auth": auth_method(form),
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
    srv.idp.base_url = "https://%s:%d" % (host, srv.server_address[1])
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
