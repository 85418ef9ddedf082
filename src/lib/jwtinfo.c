/*
 * jwtinfo - the claims of a JWT access token (RFC 7519, RFC 7515 compact
 * serialisation), decoded without verification for `bearmail doctor` and
 * `bearmail status`.  The decoded payload is wiped after use.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "base64.h"
#include "jwtinfo.h"
#include "util.h"

#define JWT_MAX 65536

static const char *const exchange_auds[] = {
	"https://outlook.office.com",
	"https://outlook.office365.com",
	"https://outlook.office365.us",
	"https://outlook-dod.office365.us",
	"https://partner.outlook.cn",
	"00000002-0000-0ff1-ce00-000000000000",
};

/* The string claim k, or NULL (xmalloc'd). */
static char *
claim_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return NULL;
	if (json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) > 0)
		v = json_object_array_get_idx(v, 0);
	if (!json_object_is_type(v, json_type_string))
		return NULL;
	return xstrdup(json_object_get_string(v));
}

/* An array of strings (or one string) joined by spaces, or NULL. */
static char *
claim_words(struct json_object *o, const char *k)
{
	struct json_object *v, *w;
	struct buf b = BUF_INIT;
	size_t i, n;

	if (!json_object_object_get_ex(o, k, &v))
		return NULL;
	if (json_object_is_type(v, json_type_string))
		return xstrdup(json_object_get_string(v));
	if (!json_object_is_type(v, json_type_array))
		return NULL;
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		w = json_object_array_get_idx(v, i);
		if (json_object_is_type(w, json_type_string))
			buf_addf(&b, "%s%s", b.len ? " " : "",
			    json_object_get_string(w));
	}
	return b.len ? buf_steal(&b) : NULL;
}

static long long
claim_time(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	return (long long)json_object_get_int64(v);
}

static char *
first_of(struct json_object *o, const char *const *keys)
{
	char *s = NULL;

	for (; *keys != NULL && s == NULL; keys++)
		s = claim_str(o, *keys);
	return s;
}

static void
fill(struct json_object *o, struct jwtinfo *j)
{
	static const char *const user_keys[] = { "upn", "unique_name",
	    "preferred_username", NULL };
	static const char *const app_keys[] = { "appid", "azp", NULL };

	j->aud = claim_str(o, "aud");
	j->scp = claim_words(o, "scp");
	j->roles = claim_words(o, "roles");
	j->user = first_of(o, user_keys);
	j->tid = claim_str(o, "tid");
	j->appid = first_of(o, app_keys);
	j->exp = claim_time(o, "exp");
}

/* The payload segment of a compact JWS (xmalloc'd), or NULL. */
static char *
payload_segment(const char *token)
{
	const char *p = strchr(token, '.'), *q;

	if (p == NULL || p == token || (q = strchr(p + 1, '.')) == NULL ||
	    q == p + 1 || strchr(q + 1, '.') != NULL)
		return NULL;
	return xstrndup(p + 1, (size_t)(q - p - 1));
}

int
jwtinfo_decode(const char *token, struct jwtinfo *j)
{
	struct json_object *o = NULL;
	unsigned char *json = NULL;
	char *seg = NULL;
	size_t n = 0;
	int ret = -1;

	memset(j, 0, sizeof(*j));
	if (token == NULL || strlen(token) > JWT_MAX ||
	    (seg = payload_segment(token)) == NULL ||
	    base64url_decode(seg, &json, &n) != 0 ||
	    strlen((char *)json) != n)
		goto out;
	o = json_tokener_parse((char *)json);
	if (o == NULL || !json_object_is_type(o, json_type_object))
		goto out;
	fill(o, j);
	ret = 0;
out:
	if (o != NULL)
		json_object_put(o);
	if (json != NULL) {
		wipe(json, n);
		free(json);
	}
	wipe_free(seg);
	return ret;
}

void
jwtinfo_free(struct jwtinfo *j)
{
	free(j->aud);
	free(j->scp);
	free(j->roles);
	free(j->user);
	free(j->tid);
	free(j->appid);
	memset(j, 0, sizeof(*j));
}

static int
has_word(const char *list, const char *w)
{
	size_t n = strlen(w);
	const char *p = list;

	while (list != NULL && n > 0 && (p = strstr(p, w)) != NULL) {
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

int
jwtinfo_has_permission(const struct jwtinfo *j, const char *name)
{
	return has_word(j->scp, name) || has_word(j->roles, name);
}

int
jwtinfo_aud_is_exchange(const struct jwtinfo *j)
{
	size_t i, n;

	if (j->aud == NULL)
		return 0;
	n = strlen(j->aud);
	if (n > 0 && j->aud[n - 1] == '/')
		n--;
	for (i = 0; i < sizeof(exchange_auds) / sizeof(exchange_auds[0]); i++)
		if (strlen(exchange_auds[i]) == n &&
		    strncasecmp(j->aud, exchange_auds[i], n) == 0)
			return 1;
	return 0;
}
