/*
 * tokens - which access token to use, and when to refresh it: when the
 * cached one has under TOKENS_MIN_LIFETIME seconds left.  A refresh is single-flight across processes: under the
 * store's lock the record is read again, refreshed only if still needed,
 * and the rotated refresh token is saved before the access token is handed
 * out.  Outcomes go to the account's state (state.h) for `bearmail status`.
 * Only store.h is used to reach the stores.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oauth.h"
#include "oauth_cc.h"
#include "state.h"
#include "store.h"
#include "tokens.h"
#include "verdict.h"

#define MAX_BARE_TOKEN 16384

const char *
tokens_store_name(const struct account *a)
{
	struct store s;
	const char *name;

	store_open(a, &s);
	name = store_name(&s);
	store_close(&s);
	return name;
}

char *
tokens_store_where(const struct account *a)
{
	struct store s;
	char *where;

	store_open(a, &s);
	where = xstrdup(store_where(&s));
	store_close(&s);
	return where;
}

int
tokens_is_fresh(const struct token_rec *t, long long now)
{
	return t->access_token != NULL && t->access_token[0] != '\0' &&
	    t->expires_at - now >= TOKENS_MIN_LIFETIME;
}

static int
is_app_only(const struct account *a)
{
	return a->oauth_flow == FLOW_CLIENT_CREDENTIALS;
}

/* The stored record; "no token" says how to get one.  App-only accounts
 * need no login: for them an empty store is an empty (stale) record. */
static int
load(const struct account *a, struct store *s, struct token_rec *t,
    struct bm_err *e)
{
	int rc = store_load(s, t, e);

	if (rc == EX_NOINPUT && is_app_only(a))
		return 0;
	if (rc == EX_NOINPUT)
		return verdict_fail(e, VK_NO_TOKEN, a->name, "no token for "
		    "account %s", a->name);
	return rc;
}

/* A replacement for cur: the refresh grant, or for app-only tokens (which
 * have no refresh token) a new client credentials grant. */
static int
renew(const struct account *a, const struct token_rec *cur,
    struct token_rec *fresh, struct bm_err *e)
{
	if (is_app_only(a))
		return oauth_client_credentials(a, fresh, e);
	return oauth_refresh(a, cur, fresh, e);
}

/*
 * Under the lock: re-read; reuse the stored token when it is fresh (and,
 * when forced, is not the one the server refused); else renew, save the
 * new record (with the rotated refresh token), and only then hand out the
 * access token.
 */
static int
refresh_locked(const struct account *a, struct store *s, int force,
    const char *stale, char **token, struct bm_err *e)
{
	struct token_rec cur = { 0 }, fresh = { 0 };
	int ret, reuse;

	if ((ret = store_lock(s, e)) != 0 || (ret = load(a, s, &cur, e)) != 0)
		goto out;
	reuse = tokens_is_fresh(&cur, (long long)time(NULL)) && (!force ||
	    (stale != NULL && strcmp(cur.access_token, stale) != 0));
	if (reuse) {
		*token = xstrdup(cur.access_token);
		goto out;
	}
	if ((ret = renew(a, &cur, &fresh, e)) != 0 ||
	    (ret = store_save(s, &fresh, e)) != 0)
		goto out;
	state_note_refresh(a->name);
	*token = xstrdup(fresh.access_token);
out:
	store_unlock(s);
	token_rec_clear(&cur);
	token_rec_clear(&fresh);
	return ret;
}

/* Remember a failure for `bearmail status`, with the verdict's word on
 * whether a person must sign in again. */
static void
note_failure(const struct account *a, struct bm_err *e)
{
	e->v.stage = STAGE_TOKEN;
	state_note_token_error(a->name, e->msg, e->v.login_needed);
}

static int
get_token(const struct account *a, int force, const char *stale,
    char **token, struct bm_err *e)
{
	struct token_rec t = { 0 };
	struct store s;
	int ret = 0;

	*token = NULL;
	store_open(a, &s);
	if (!force && (ret = load(a, &s, &t, e)) == 0 &&
	    tokens_is_fresh(&t, (long long)time(NULL)))
		*token = xstrdup(t.access_token);
	else if (force || ret == 0)
		ret = refresh_locked(a, &s, force, stale, token, e);
	if (ret != 0)
		note_failure(a, e);
	token_rec_clear(&t);
	store_close(&s);
	return ret;
}

int
tokens_get(const struct account *a, char **token, struct bm_err *e)
{
	return get_token(a, 0, NULL, token, e);
}

int
tokens_refresh(const struct account *a, const char *stale, char **token,
    struct bm_err *e)
{
	return get_token(a, 1, stale, token, e);
}

/* ---------------------------------------------------------------- forget */

int
tokens_forget(const struct account *a, struct bm_err *e)
{
	struct store s;
	int found = 0, ret;

	store_open(a, &s);
	if ((ret = store_lock(&s, e)) == 0 &&
	    (ret = store_delete(&s, &found, e)) == 0) {
		if (found)
			err_set(e, 0, "removed the tokens of account %s from %s",
			    a->name, store_where(&s));
		else
			ret = err_set(e, EX_NOINPUT, "account %s has no tokens "
			    "in %s: nothing to forget", a->name,
			    store_where(&s));
	}
	store_close(&s);
	return ret;
}

/* ---------------------------------------------------------------- import */

static int
is_bare_token(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > MAX_BARE_TOKEN)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static int
import_parse(const char *s, struct token_rec *t, struct bm_err *e)
{
	struct oauth_error oe;
	long long now = (long long)time(NULL);
	int rc;

	if (s[0] != '{') {
		if (!is_bare_token(s))
			return err_set(e, EX_DATAERR, "the input is neither a "
			    "token endpoint answer (JSON) nor a refresh token");
		t->refresh_token = xstrdup(s);
		t->updated_at = now;
		return 0;
	}
	rc = oauth_parse_response(s, now, t, &oe);
	if (rc == 1)
		return err_set(e, EX_DATAERR, "the input is an error answer, "
		    "not a token: %s%s%s", oe.error, oe.description[0] ?
		    ": " : "", oe.description);
	if (rc != 0)
		return err_set(e, EX_DATAERR, "the input is not a token "
		    "endpoint answer (a JSON object with access_token)");
	return 0;
}

static void
rec_identity(const struct account *a, struct token_rec *t)
{
	t->account = xstrdup(a->name);
	t->user = a->user ? xstrdup(a->user) : NULL;
	t->client_id = a->client_id ? xstrdup(a->client_id) : NULL;
	t->tenant = a->tenant ? xstrdup(a->tenant) : NULL;
	t->scope = a->scope ? xstrdup(a->scope) : NULL;
}

int
tokens_import(const struct account *a, const char *input, struct bm_err *e)
{
	char *copy = xstrdup(input);
	struct token_rec t = { 0 };
	struct store s;
	int ret;

	store_open(a, &s);
	rec_identity(a, &t);
	if ((ret = import_parse(str_trim(copy), &t, e)) != 0 ||
	    (ret = store_lock(&s, e)) != 0)
		goto out;
	ret = store_save(&s, &t, e);
out:
	store_close(&s);
	token_rec_clear(&t);
	wipe_free(copy);
	return ret;
}
