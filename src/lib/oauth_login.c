/*
 * oauth_login - getting the first token interactively from the Microsoft
 * identity platform: the device authorization grant (RFC 8628) and the
 * authorization code grant (RFC 6749 section 4.1) with PKCE (RFC 7636,
 * S256 only) and a loopback redirect URI (RFC 8252 section 7.3).  The
 * device code, the authorization code and the verifier are secrets: they
 * are wiped after use and never appear in a message.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "base64.h"
#include "http.h"
#include "jsonx.h"
#include "oauth_login.h"
#include "verdict.h"

#define VERIFIER_BYTES 48	/* 64 characters: RFC 7636 allows 43-128 */
#define STATE_BYTES 16
#define MAX_DEVICE_SECONDS 86400LL

/* --------------------------------------------------------------- PKCE */

char *
oauth_login_verifier_from(const unsigned char *bytes, size_t n)
{
	return base64url_encode(bytes, n);
}

char *
oauth_login_verifier(void)
{
	unsigned char raw[VERIFIER_BYTES];
	char *v;

	random_bytes(raw, sizeof(raw));
	v = oauth_login_verifier_from(raw, sizeof(raw));
	wipe(raw, sizeof(raw));
	return v;
}

char *
oauth_login_challenge(const char *verifier)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_Digest(verifier, strlen(verifier), md, &n, EVP_sha256(),
	    NULL) != 1)
		die(EX_SOFTWARE, "SHA-256 is not available");
	return base64url_encode(md, n);
}

char *
oauth_login_state(void)
{
	unsigned char raw[STATE_BYTES];

	random_bytes(raw, sizeof(raw));
	return base64url_encode(raw, sizeof(raw));
}

/* --------------------------------------------------------------- URLs */

static int
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

char *
oauth_login_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = BUF_INIT;
	const unsigned char *p;

	buf_adds(&b, "");
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (is_unreserved(*p)) {
			buf_addc(&b, (char)*p);
			continue;
		}
		buf_addc(&b, '%');
		buf_addc(&b, hex[*p >> 4]);
		buf_addc(&b, hex[*p & 15]);
	}
	return buf_steal(&b);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
oauth_login_urldecode(const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	size_t i;
	int hi, lo;

	buf_adds(&b, "");
	for (i = 0; i < n; i++) {
		if (s[i] == '+') {
			buf_addc(&b, ' ');
			continue;
		}
		if (s[i] != '%') {
			buf_addc(&b, s[i]);
			continue;
		}
		if (i + 2 >= n)
			goto bad;
		if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0 ||
		    (hi == 0 && lo == 0))
			goto bad;
		buf_addc(&b, (char)(hi << 4 | lo));
		i += 2;
	}
	return buf_steal(&b);
bad:
	buf_free(&b, 1);
	return NULL;
}

static void
add_param(struct buf *b, const char *name, const char *value)
{
	char *v = oauth_login_urlencode(value);

	buf_addf(b, "&%s=%s", name, v);
	free(v);
}

char *
oauth_login_authorize_url(const char *auth_url,
    const struct oauth_login_authz *p)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, auth_url);
	buf_adds(&b, strchr(auth_url, '?') ? "&" : "?");
	buf_adds(&b, "response_type=code");
	add_param(&b, "client_id", p->client_id);
	add_param(&b, "redirect_uri", p->redirect_uri);
	add_param(&b, "response_mode", "query");
	add_param(&b, "scope", p->scope);
	add_param(&b, "state", p->state);
	add_param(&b, "code_challenge", p->challenge);
	add_param(&b, "code_challenge_method", "S256");
	if (p->login_hint != NULL && p->login_hint[0] != '\0')
		add_param(&b, "login_hint", p->login_hint);
	add_param(&b, "prompt", "select_account");
	return buf_steal(&b);
}

/* ----------------------------------------------------------- redirect */

void
oauth_login_redirect_clear(struct oauth_login_redirect *r)
{
	free(r->path);
	wipe_free(r->code);
	free(r->state);
	free(r->error);
	free(r->error_description);
	memset(r, 0, sizeof(*r));
}

/* The slot for a query parameter we read, or NULL for the others. */
static char **
redirect_slot(struct oauth_login_redirect *r, const char *name, size_t n)
{
	static const char *const names[] = { "code", "state", "error",
	    "error_description" };
	char **slots[] = { &r->code, &r->state, &r->error,
	    &r->error_description };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
			return slots[i];
	return NULL;
}

/* Parse "a=b&c=d" (n bytes) into r; -1 on a repeat or a bad escape. */
static int
parse_query(const char *q, size_t n, struct oauth_login_redirect *r)
{
	size_t i = 0;

	while (i < n) {
		size_t len = strcspn(q + i, "&");
		const char *eq;
		char **slot;

		len = len > n - i ? n - i : len;
		eq = memchr(q + i, '=', len);
		slot = redirect_slot(r, q + i, eq ? (size_t)(eq - (q + i)) :
		    len);
		if (slot != NULL) {
			if (*slot != NULL || eq == NULL)
				return -1;
			*slot = oauth_login_urldecode(eq + 1,
			    len - (size_t)(eq + 1 - (q + i)));
			if (*slot == NULL)
				return -1;
		}
		i += len + 1;
	}
	return 0;
}

int
oauth_login_parse_redirect(const char *line, struct oauth_login_redirect *r)
{
	const char *target, *version, *q;
	size_t tlen;

	memset(r, 0, sizeof(*r));
	if (strncmp(line, "GET /", 5) != 0)
		return -1;
	target = line + 4;
	tlen = strcspn(target, " ");
	version = target + tlen;
	if (strncmp(version, " HTTP/1.", 8) != 0 || version[8] < '0' ||
	    version[8] > '9' || version[9] != '\0' ||
	    strcspn(target, "\t\r\n#") < tlen)
		return -1;
	q = memchr(target, '?', tlen);
	r->path = oauth_login_urldecode(target, q ? (size_t)(q - target) :
	    tlen);
	if (r->path == NULL || (q != NULL && parse_query(q + 1,
	    tlen - (size_t)(q + 1 - target), r) != 0)) {
		oauth_login_redirect_clear(r);
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------- device JSON */

void
oauth_device_clear(struct oauth_device *d)
{
	wipe_free(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->message);
	memset(d, 0, sizeof(*d));
}

/* A number member (or a string of digits) in [1, max]; absent: dflt. */
static int
get_num(struct json_object *o, const char *key, long long dflt,
    long long *out)
{
	struct json_object *v;
	int64_t n;

	*out = dflt;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (json_object_is_type(v, json_type_string))
		return str_to_ll(json_object_get_string(v), 1,
		    MAX_DEVICE_SECONDS, out);
	if (!json_object_is_type(v, json_type_int))
		return -1;
	n = json_object_get_int64(v);
	if (n < 1 || n > MAX_DEVICE_SECONDS)
		return -1;
	*out = n;
	return 0;
}

static int
device_fields(struct json_object *o, struct oauth_device *d)
{
	if (jsonx_strdup(o, "device_code", &d->device_code) != 1 ||
	    jsonx_strdup(o, "user_code", &d->user_code) != 1 ||
	    (jsonx_strdup(o, "verification_uri", &d->verification_uri) != 1 &&
	    jsonx_strdup(o, "verification_url", &d->verification_uri) != 1) ||
	    jsonx_strdup(o, "message", &d->message) < 0 ||
	    get_num(o, "expires_in", 900, &d->expires_in) != 0 ||
	    get_num(o, "interval", OAUTH_LOGIN_INTERVAL, &d->interval) != 0 ||
	    d->device_code[0] == '\0' || d->user_code[0] == '\0')
		return -1;
	str_printable(d->user_code, '?');
	str_printable(d->verification_uri, '?');
	str_printable(d->message, '?');
	return 0;
}

int
oauth_login_parse_device(const char *json, struct oauth_device *d,
    struct oauth_error *oe)
{
	struct json_object *o = json_tokener_parse(json);
	struct token_rec dummy = { 0 };
	int rc = -1;

	memset(d, 0, sizeof(*d));
	if (o == NULL || !json_object_is_type(o, json_type_object))
		goto out;
	if (json_object_object_get_ex(o, "error", NULL)) {
		rc = oauth_parse_response(json, 0, &dummy, oe) == 1 ? 1 : -1;
		goto out;
	}
	if ((rc = device_fields(o, d)) != 0)
		oauth_device_clear(d);
out:
	token_rec_clear(&dummy);
	json_object_put(o);
	return rc;
}

/* ------------------------------------------------------------ requests */

static int
need(const struct account *a, const char *value, const char *key,
    struct bm_err *e)
{
	if (value != NULL && value[0] != '\0')
		return 0;
	return err_set(e, EX_CONFIG, "account %s has no %s", a->name, key);
}

int
oauth_login_device_start(const struct account *a, struct oauth_device *d,
    struct bm_err *e)
{
	char *url = conf_device_url(a);
	struct buf body = BUF_INIT;
	struct oauth_error oe;
	long status = 0;
	int ret;

	memset(d, 0, sizeof(*d));
	if ((ret = need(a, url, "device_url (or authority and tenant)", e)) ||
	    (ret = need(a, a->client_id, "client_id", e)) ||
	    (ret = need(a, a->scope, "scope", e)))
		goto out;
	{
		const char *pairs[] = { "client_id", a->client_id, "scope",
		    a->scope, NULL };

		ret = http_post_form(url, pairs, a->ca_file, a->timeout,
		    &status, &body, e);
	}
	if (ret != 0)
		goto out;
	if (status / 100 != 2)
		ret = oauth_refused(a, "device sign-in", status, body.data ?
		    body.data : "", NULL, NULL, e);
	else if (oauth_login_parse_device(body.data ? body.data : "", d,
	    &oe) != 0)
		ret = err_set(e, EX_PROTOCOL, "the device code answer from %s "
		    "is not a device authorization (RFC 8628)", url);
out:
	free(url);
	buf_free(&body, 1);
	return ret;
}

static enum oauth_poll
poll_refused(const struct account *a, const struct oauth_device *d,
    long status, const char *body, struct bm_err *e)
{
	const char *sent[] = { d->device_code, NULL };
	struct oauth_error oe;
	struct token_rec dummy = { 0 };
	int parsed = oauth_parse_response(body, 0, &dummy, &oe) == 1;

	token_rec_clear(&dummy);
	if (parsed && strcmp(oe.error, "authorization_pending") == 0)
		return OAUTH_POLL_PENDING;
	if (parsed && strcmp(oe.error, "slow_down") == 0)
		return OAUTH_POLL_SLOW_DOWN;
	if (parsed && strcmp(oe.error, "authorization_declined") == 0)
		verdict_fail(e, VK_LOGIN_ENDED, a->name, "sign-in for account "
		    "%s was declined", a->name);
	else if (parsed && strcmp(oe.error, "expired_token") == 0)
		verdict_fail(e, VK_LOGIN_ENDED, a->name, "the code expired "
		    "before sign-in finished");
	else if (parsed && strcmp(oe.error, "bad_verification_code") == 0)
		verdict_fail(e, VK_LOGIN_ENDED, a->name, "the identity "
		    "platform does not know the device code");
	else
		oauth_refused(a, "device sign-in", status, body, NULL, sent, e);
	return OAUTH_POLL_FAILED;
}

enum oauth_poll
oauth_login_device_poll(const struct account *a,
    const struct oauth_device *d, struct buf *answer, struct bm_err *e)
{
	char *url = conf_token_url(a);
	struct buf body = BUF_INIT;
	enum oauth_poll ret = OAUTH_POLL_FAILED;
	long status = 0;

	if (need(a, url, "token_url (or authority and tenant)", e) != 0)
		goto out;
	{
		const char *pairs[] = { "grant_type",
		    "urn:ietf:params:oauth:grant-type:device_code",
		    "client_id", a->client_id, "device_code", d->device_code,
		    NULL };

		if (http_post_form(url, pairs, a->ca_file, a->timeout,
		    &status, &body, e) != 0)
			goto out;
	}
	if (status / 100 == 2) {
		buf_add(answer, body.data ? body.data : "", body.len);
		ret = OAUTH_POLL_DONE;
	} else
		ret = poll_refused(a, d, status, body.data ? body.data : "",
		    e);
out:
	free(url);
	buf_free(&body, 1);
	return ret;
}

int
oauth_login_redeem_code(const struct account *a, const char *code,
    const char *redirect_uri, const char *verifier, struct buf *answer,
    struct bm_err *e)
{
	char *url = conf_token_url(a);
	struct buf body = BUF_INIT;
	long status = 0;
	int ret;

	if ((ret = need(a, url, "token_url (or authority and tenant)", e)))
		goto out;
	{
		const char *pairs[] = { "grant_type", "authorization_code",
		    "client_id", a->client_id, "code", code, "redirect_uri",
		    redirect_uri, "code_verifier", verifier, "scope", a->scope,
		    NULL };

		ret = http_post_form(url, pairs, a->ca_file, a->timeout,
		    &status, &body, e);
	}
	if (ret != 0)
		goto out;
	if (status / 100 == 2)
		buf_add(answer, body.data ? body.data : "", body.len);
	else
	{
		const char *sent[] = { code, verifier, NULL };

		ret = oauth_refused(a, "sign-in", status, body.data ?
		    body.data : "", NULL, sent, e);
	}
out:
	free(url);
	buf_free(&body, 1);
	return ret;
}
