/*
 * oauth - the token endpoint of the Microsoft identity platform
 * (RFC 6749 sections 5.1/5.2 answers, section 6 refresh grant), with the
 * AADSTS error catalogue of REFERENCE.md deciding between "try again
 * later" and "a person must act".  Tokens never reach a message.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "http.h"
#include "jsonx.h"
#include "oauth.h"

#define DEFAULT_AUTHORITY "https://login.microsoftonline.com"
/* expires_in above ten years is not a token lifetime */
#define MAX_EXPIRES_IN 315360000LL
#define DEFAULT_EXPIRES_IN 3600
#define MAX_SECRET_FILE 4096

void
token_rec_clear(struct token_rec *t)
{
	free(t->account);
	free(t->user);
	free(t->client_id);
	free(t->tenant);
	free(t->scope);
	wipe_free(t->access_token);
	wipe_free(t->refresh_token);
	memset(t, 0, sizeof(*t));
}

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* ---------------------------------------------------------------- JSON */

/* Copy s into dst (size n): first line only, controls turned into '?'. */
static void
copy_line(char *dst, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < n && s[i] != '\0' && s[i] != '\r' && s[i] != '\n';
	    i++)
		dst[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' :
		    s[i];
	dst[i] = '\0';
}

/* ------------------------------------------------------------- answers */

static long
aadsts_from_text(const char *s)
{
	const char *p = strstr(s, "AADSTS");
	long long v;
	char digits[16];
	size_t n;

	if (p == NULL)
		return 0;
	p += 6;
	n = strspn(p, "0123456789");
	if (n == 0 || n >= sizeof(digits))
		return 0;
	memcpy(digits, p, n);
	digits[n] = '\0';
	return str_to_ll(digits, 1, 99999999, &v) == 0 ? (long)v : 0;
}

static int
parse_error(struct json_object *o, struct oauth_error *oe)
{
	struct json_object *codes, *first;
	const char *err, *desc;
	int64_t v;

	if (jsonx_str(o, "error", &err) != 1 ||
	    jsonx_str(o, "error_description", &desc) < 0)
		return -1;
	if (oe == NULL)
		return 1;
	memset(oe, 0, sizeof(*oe));
	copy_line(oe->error, sizeof(oe->error), err);
	copy_line(oe->description, sizeof(oe->description), desc ? desc : "");
	if (json_object_object_get_ex(o, "error_codes", &codes) &&
	    json_object_is_type(codes, json_type_array) &&
	    (first = json_object_array_get_idx(codes, 0)) != NULL &&
	    json_object_is_type(first, json_type_int) &&
	    (v = json_object_get_int64(first)) > 0 && v <= 99999999)
		oe->aadsts = (long)v;
	else
		oe->aadsts = aadsts_from_text(oe->description);
	return 1;
}

/* expires_in: 0 and *secs, or -1 when it is of the wrong type or range. */
static int
parse_expires(struct json_object *o, long long *secs)
{
	struct json_object *v;
	int64_t n;

	*secs = DEFAULT_EXPIRES_IN;
	if (!json_object_object_get_ex(o, "expires_in", &v) || v == NULL)
		return 0;
	if (json_object_is_type(v, json_type_string))
		return str_to_ll(json_object_get_string(v), 0, MAX_EXPIRES_IN,
		    secs);
	if (!json_object_is_type(v, json_type_int))
		return -1;
	n = json_object_get_int64(v);
	if (n < 0 || n > MAX_EXPIRES_IN)
		return -1;
	*secs = n;
	return 0;
}

static int
parse_success(struct json_object *o, long long now, struct token_rec *t)
{
	const char *access, *type, *refresh, *scope;
	long long secs;

	if (jsonx_str(o, "access_token", &access) < 0 ||
	    jsonx_str(o, "token_type", &type) < 0 ||
	    (type != NULL && strcasecmp(type, "Bearer") != 0) ||
	    jsonx_str(o, "refresh_token", &refresh) < 0 ||
	    jsonx_str(o, "scope", &scope) < 0 ||
	    parse_expires(o, &secs) != 0)
		return -1;
	/* an answer with only a refresh token (what `token import` may be
	 * given) is a token too; its access token is fetched when needed */
	if ((access == NULL || access[0] == '\0') &&
	    (refresh == NULL || refresh[0] == '\0'))
		return -1;
	wipe_free(t->access_token);
	t->access_token = access && access[0] ? xstrdup(access) : NULL;
	if (t->access_token == NULL)
		secs = 0;
	if (refresh != NULL && refresh[0] != '\0') {
		wipe_free(t->refresh_token);
		t->refresh_token = xstrdup(refresh);
	}
	if (scope != NULL) {
		free(t->scope);
		t->scope = xstrdup(scope);
	}
	t->expires_at = now + secs;
	t->updated_at = now;
	return 0;
}

int
oauth_parse_response(const char *json, long long now, struct token_rec *t,
    struct oauth_error *oe)
{
	struct json_object *o;
	int rc;

	if (json == NULL || (o = jsonx_parse_object(json)) == NULL)
		return -1;
	if (json_object_object_get_ex(o, "error", NULL))
		rc = parse_error(o, oe);
	else
		rc = parse_success(o, now, t);
	jsonx_wipe(o, "access_token");
	jsonx_wipe(o, "refresh_token");
	jsonx_wipe(o, "id_token");
	json_object_put(o);
	return rc;
}

/* ------------------------------------------------------ classification */

#define LOGIN NULL	/* advice: run `bearmail login ACCOUNT` */

static const struct aadsts_row {
	long code;
	int ex;
	const char *advice;
} aadsts_table[] = {
	{ 70000, EX_CONFIG, LOGIN },	/* grant invalid */
	{ 70008, EX_CONFIG, LOGIN },	/* grant expired */
	{ 54005, EX_CONFIG, LOGIN },	/* code already redeemed */
	{ 700082, EX_CONFIG, LOGIN },	/* refresh token expired (inactivity) */
	{ 50173, EX_CONFIG, LOGIN },	/* grant revoked */
	{ 70043, EX_CONFIG, LOGIN },	/* sign-in frequency policy */
	{ 50076, EX_CONFIG, LOGIN },	/* MFA required */
	{ 50079, EX_CONFIG, LOGIN },	/* MFA registration required */
	{ 7000012, EX_CONFIG, LOGIN },	/* grant from another tenant */
	{ 65001, EX_CONFIG, "an administrator must grant consent to the "
	    "application, then run `bearmail login %s`" },
	{ 53003, EX_CONFIG, "blocked by Conditional Access: ask the tenant "
	    "administrator" },
	{ 700016, EX_CONFIG, "the application is not in this tenant: check "
	    "tenant and client_id of account %s" },
	{ 7000218, EX_CONFIG, "enable \"Allow public client flows\" in the "
	    "app registration (Authentication)" },
	{ 7000215, EX_CONFIG, "the client secret is invalid: create a new one "
	    "and update client_secret_file of account %s" },
	{ 7000222, EX_CONFIG, "the client secret has expired: create a new "
	    "one and update client_secret_file of account %s" },
	{ 700025, EX_CONFIG, "a public client must not send a secret: remove "
	    "client_secret_file from account %s" },
	{ 700027, EX_CONFIG, "the certificate does not match the one "
	    "registered for the application" },
	{ 50011, EX_CONFIG, "the redirect URI is not registered for the "
	    "application" },
	{ 50148, EX_CONFIG, "the PKCE code_verifier did not match the "
	    "sign-in's code_challenge: run `bearmail login %s` again" },
	{ 50194, EX_CONFIG, "the application is single-tenant: set tenant "
	    "in account %s" },
	{ 9002332, EX_CONFIG, "the application is not for personal "
	    "accounts: set tenant in account %s" },
	{ 70011, EX_CONFIG, "the scope is invalid: check scope in account %s" },
	{ 90055, EX_TEMPFAIL, "throttled: try again later" },
	{ 50196, EX_TEMPFAIL, "loop detected: try again later" },
	{ 90033, EX_TEMPFAIL, "transient error: try again later" },
};

static const struct aadsts_row *
aadsts_find(const struct oauth_error *oe)
{
	size_t i;

	if (oe == NULL || oe->aadsts == 0)
		return NULL;
	for (i = 0; i < sizeof(aadsts_table) / sizeof(aadsts_table[0]); i++)
		if (aadsts_table[i].code == oe->aadsts)
			return &aadsts_table[i];
	return NULL;
}

static int
is_error(const struct oauth_error *oe, const char *name)
{
	return oe != NULL && strcmp(oe->error, name) == 0;
}

static int
status_is_temporary(long status)
{
	return status >= 500 || status == 429 || status == 408;
}

int
oauth_classify(long http_status, const struct oauth_error *oe)
{
	const struct aadsts_row *row = aadsts_find(oe);

	if (row != NULL)
		return row->ex;
	if (is_error(oe, "temporarily_unavailable") ||
	    is_error(oe, "server_error"))
		return EX_TEMPFAIL;
	if (is_error(oe, "invalid_grant") ||
	    is_error(oe, "interaction_required"))
		return EX_CONFIG;
	return status_is_temporary(http_status) ? EX_TEMPFAIL : EX_CONFIG;
}

char *
oauth_advice(long http_status, const struct oauth_error *oe,
    const char *account)
{
	const struct aadsts_row *row = aadsts_find(oe);

	if (row != NULL && row->advice != NULL)
		return xasprintf(row->advice, account);
	if (row == NULL && oauth_classify(http_status, oe) == EX_TEMPFAIL)
		return xstrdup("try again later");
	if (row != NULL || is_error(oe, "invalid_grant") ||
	    is_error(oe, "interaction_required"))
		return xasprintf("run `bearmail login %s`", account);
	if (oe == NULL)
		return xasprintf("check authority and token_url of account %s",
		    account);
	return xasprintf("check the settings of account %s, or run "
	    "`bearmail login %s`", account, account);
}

/* ------------------------------------------------------- refresh grant */

static int
tenant_is_safe(const char *t)
{
	return t[0] != '\0' && t[0] != '.' && t[strspn(t,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")]
	    == '\0';
}

/* The token endpoint: token_url, else AUTHORITY/TENANT/oauth2/v2.0/token. */
static int
token_url(const struct account *a, const char *tenant, char **out,
    struct bm_err *e)
{
	const char *auth = a->authority ? a->authority : DEFAULT_AUTHORITY;
	size_t n = strlen(auth);

	if (a->token_url != NULL) {
		*out = xstrdup(a->token_url);
		return 0;
	}
	if (!tenant_is_safe(tenant))
		return err_set(e, EX_CONFIG, "account %s: tenant \"%s\" is "
		    "not a tenant name, domain or GUID", a->name, tenant);
	while (n > 0 && auth[n - 1] == '/')
		n--;
	*out = xasprintf("%.*s/%s/oauth2/v2.0/token", (int)n, auth, tenant);
	return 0;
}

/* The client secret (trimmed), or NULL when the account has none. */
static int
read_secret(const struct account *a, char **secret, struct bm_err *e)
{
	char *raw;
	int rc;

	*secret = NULL;
	if (a->client_secret_file == NULL)
		return 0;
	rc = read_small_file(a->client_secret_file, MAX_SECRET_FILE, &raw, e);
	if (rc != 0) {
		if (e != NULL)
			e->code = EX_CONFIG;	/* the file is configuration */
		return EX_CONFIG;
	}
	*secret = xstrdup(str_trim(raw));
	wipe_free(raw);
	return 0;
}

static void
rec_identity(struct token_rec *t, const struct token_rec *old,
    const char *client_id, const char *tenant)
{
	t->account = dup_or_null(old->account);
	t->user = dup_or_null(old->user);
	t->client_id = dup_or_null(client_id);
	t->tenant = dup_or_null(tenant);
	t->scope = dup_or_null(old->scope);
	t->refresh_token = xstrdup(old->refresh_token);
}

int
oauth_refused(const struct account *a, const char *what, long status,
    const char *body, const char *url, oauth_advise_fn advise,
    struct bm_err *e)
{
	struct oauth_error oe;
	struct token_rec dummy = { 0 };
	int parsed = oauth_parse_response(body, 0, &dummy, &oe) == 1;
	const struct oauth_error *poe = parsed ? &oe : NULL;
	int code = oauth_classify(status, poe);
	char *advice = (advise ? advise : oauth_advice)(status, poe, a->name);
	size_t n = parsed ? strlen(oe.description) : 0;

	token_rec_clear(&dummy);
	if (n > 0 && oe.description[n - 1] == '.')
		oe.description[n - 1] = '\0';	/* "...: advice" follows */
	if (!parsed)
		err_set(e, code, "%s for account %s failed: HTTP %ld%s%s: %s",
		    what, a->name, status, url ? " from " : "", url ? url : "",
		    advice);
	else
		err_set(e, code, "%s for account %s failed: %s%s%s: %s", what,
		    a->name, oe.error, oe.description[0] ? ": " : "",
		    oe.description, advice);
	free(advice);
	return code;
}

static int
refresh_check(const struct account *a, const struct token_rec *old,
    const char *client_id, const char *scope, struct bm_err *e)
{
	if (old->refresh_token == NULL || old->refresh_token[0] == '\0')
		return err_set(e, EX_CONFIG, "no refresh token for account "
		    "%s: run `bearmail login %s`", a->name, a->name);
	if (client_id == NULL)
		return err_set(e, EX_CONFIG, "account %s has no client_id",
		    a->name);
	if (scope == NULL)
		return err_set(e, EX_CONFIG, "account %s has no scope",
		    a->name);
	return 0;
}

int
oauth_refresh(const struct account *a, const struct token_rec *old,
    struct token_rec *out, struct bm_err *e)
{
	const char *tenant = old->tenant ? old->tenant :
	    a->tenant ? a->tenant : "common";
	const char *client_id = old->client_id ? old->client_id : a->client_id;
	const char *scope = a->scope ? a->scope : old->scope;
	struct token_rec t = { 0 };
	struct buf body = BUF_INIT;
	char *url = NULL, *secret = NULL;
	long status = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	if ((ret = refresh_check(a, old, client_id, scope, e)) != 0 ||
	    (ret = token_url(a, tenant, &url, e)) != 0 ||
	    (ret = read_secret(a, &secret, e)) != 0)
		goto out;
	{
		const char *pairs[] = { "grant_type", "refresh_token",
		    "client_id", client_id, "refresh_token", old->refresh_token,
		    "scope", scope, secret ? "client_secret" : NULL, secret,
		    NULL };

		ret = http_post_form(url, pairs, a->ca_file, a->timeout,
		    &status, &body, e);
	}
	if (ret != 0)
		goto out;
	rec_identity(&t, old, client_id, tenant);
	if (status / 100 == 2 && oauth_parse_response(body.data ? body.data :
	    "", (long long)time(NULL), &t, NULL) == 0 && t.access_token) {
		*out = t;
		memset(&t, 0, sizeof(t));
	} else
		ret = oauth_refused(a, "token refresh", status, body.data ?
		    body.data : "", url, NULL, e);
out:
	token_rec_clear(&t);
	free(url);
	wipe_free(secret);
	buf_free(&body, 1);
	return ret;
}
