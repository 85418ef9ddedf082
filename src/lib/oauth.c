/*
 * oauth - the token endpoint of the Microsoft identity platform
 * (RFC 6749 sections 5.1/5.2 answers, section 6 refresh grant).  What a
 * refusal means -- try again later, or a person must act -- is the
 * failure policy's decision (verdict.h).  Tokens never reach a message.
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
#include "secrets.h"
#include "verdict.h"

/* expires_in above ten years is not a token lifetime */
#define MAX_EXPIRES_IN 315360000LL
#define DEFAULT_EXPIRES_IN 3600

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
		dst[i] = is_control((unsigned char)s[i]) ? '?' : s[i];
	dst[i] = '\0';
}

/* ------------------------------------------------------------- answers */

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
	    (v = json_object_get_int64(first)) > 0 && v <= 999999999)
		oe->aadsts = (long)v;
	else
		oe->aadsts = verdict_aadsts_in(oe->description);
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

/* ------------------------------------------------------- refresh grant */

/* The client secret, or NULL when the account has none: read the one
 * way every secret is read (secrets.h). */
static int
read_secret(const struct account *a, char **secret, struct bm_err *e)
{
	*secret = NULL;
	if (a->client_secret_file == NULL)
		return 0;
	return secrets_client_secret(a, secret, e);
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
    const char *body, const char *url, const char *const *sent,
    struct bm_err *e)
{
	struct oauth_error oe;
	struct token_rec dummy = { 0 };
	struct scrub sc = { NULL, 0 };
	int parsed = oauth_parse_response(body, 0, &dummy, &oe) == 1;

	token_rec_clear(&dummy);
	if (!parsed)
		return verdict_oauth(e, what, a->name, status, NULL, 0, NULL,
		    url);
	for (; sent != NULL && *sent != NULL; sent++)
		scrub_add(&sc, *sent);
	scrub_str(&sc, oe.error, sizeof(oe.error));
	scrub_str(&sc, oe.description, sizeof(oe.description));
	scrub_free(&sc);
	return verdict_oauth(e, what, a->name, status, oe.error, oe.aadsts,
	    oe.description, url);
}

static int
refresh_check(const struct account *a, const struct token_rec *old,
    const char *client_id, const char *scope, struct bm_err *e)
{
	if (old->refresh_token == NULL || old->refresh_token[0] == '\0')
		return verdict_fail(e, VK_NO_TOKEN, a->name, "no refresh "
		    "token for account %s", a->name);
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
	if ((ret = refresh_check(a, old, client_id, scope, e)) != 0)
		goto out;
	if ((url = conf_tenant_token_url(a, tenant)) == NULL) {
		ret = err_set(e, EX_CONFIG, "account %s: no token endpoint for "
		    "tenant \"%s\": set tenant (a domain, a GUID, common or "
		    "organizations) or token_url", a->name, tenant);
		goto out;
	}
	if ((ret = read_secret(a, &secret, e)) != 0)
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
	} else {
		const char *sent[] = { old->refresh_token, secret, NULL };

		ret = oauth_refused(a, "token refresh", status, body.data ?
		    body.data : "", url, sent, e);
	}
out:
	token_rec_clear(&t);
	free(url);
	wipe_free(secret);
	buf_free(&body, 1);
	return ret;
}
