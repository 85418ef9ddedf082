/*
 * tokens - which access token to use, and when to refresh it (DESIGN.md
 * "Tokens").  A refresh is single-flight: under the store's lock the
 * record is read again, refreshed only if still needed, and the rotated
 * refresh token is saved before the access token is handed out.
 *
 * Only the file store exists for now: `token_store auto` and `keyring`
 * use it too, until the keyring store comes with the token-engine issue.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oauth.h"
#include "store_file.h"
#include "tokens.h"

#define MAX_BARE_TOKEN 16384

const char *
tokens_store_name(const struct account *a)
{
	(void)a;
	return "file";
}

static int
is_fresh(const struct token_rec *t, long long now)
{
	return t->access_token != NULL && t->access_token[0] != '\0' &&
	    t->expires_at - now >= TOKENS_MIN_LIFETIME;
}

static int
load(const struct account *a, const char *path, struct token_rec *t,
    struct bm_err *e)
{
	int rc = store_file_load(path, t, e);

	if (rc == EX_NOINPUT)
		return err_set(e, EX_CONFIG, "no token for account %s: run "
		    "`bearmail login %s` (or `bearmail token import %s`)",
		    a->name, a->name, a->name);
	return rc;
}

/*
 * Under the lock: re-read; reuse the stored token when it is fresh (and,
 * when forced, is not the one the server refused); else refresh and save.
 */
static int
refresh_locked(const struct account *a, const char *path, int force,
    const char *stale, char **token, struct bm_err *e)
{
	struct token_rec cur = { 0 }, fresh = { 0 };
	int lock = -1, ret, reuse;

	if ((ret = store_file_lock(path, &lock, e)) != 0 ||
	    (ret = load(a, path, &cur, e)) != 0)
		goto out;
	reuse = is_fresh(&cur, (long long)time(NULL)) && (!force ||
	    (stale != NULL && strcmp(cur.access_token, stale) != 0));
	if (reuse) {
		*token = xstrdup(cur.access_token);
		goto out;
	}
	if ((ret = oauth_refresh(a, &cur, &fresh, e)) != 0 ||
	    (ret = store_file_save(path, &fresh, e)) != 0)
		goto out;
	*token = xstrdup(fresh.access_token);
out:
	store_file_unlock(lock);
	token_rec_clear(&cur);
	token_rec_clear(&fresh);
	return ret;
}

int
tokens_get(const struct account *a, char **token, struct bm_err *e)
{
	char *path = store_file_path(a);
	struct token_rec t = { 0 };
	int ret;

	*token = NULL;
	if ((ret = load(a, path, &t, e)) != 0)
		goto out;
	if (is_fresh(&t, (long long)time(NULL)))
		*token = xstrdup(t.access_token);
	else
		ret = refresh_locked(a, path, 0, NULL, token, e);
out:
	token_rec_clear(&t);
	free(path);
	return ret;
}

int
tokens_refresh(const struct account *a, const char *stale, char **token,
    struct bm_err *e)
{
	char *path = store_file_path(a);
	int ret;

	*token = NULL;
	ret = refresh_locked(a, path, 1, stale, token, e);
	free(path);
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

int
tokens_import(const struct account *a, const char *input, struct bm_err *e)
{
	char *copy = xstrdup(input), *path = store_file_path(a);
	struct token_rec t = { 0 };
	int lock = -1, ret;

	t.account = xstrdup(a->name);
	t.user = a->user ? xstrdup(a->user) : NULL;
	t.client_id = a->client_id ? xstrdup(a->client_id) : NULL;
	t.tenant = a->tenant ? xstrdup(a->tenant) : NULL;
	t.scope = a->scope ? xstrdup(a->scope) : NULL;
	if ((ret = import_parse(str_trim(copy), &t, e)) != 0 ||
	    (ret = store_file_lock(path, &lock, e)) != 0)
		goto out;
	ret = store_file_save(path, &t, e);
out:
	store_file_unlock(lock);
	token_rec_clear(&t);
	wipe_free(copy);
	free(path);
	return ret;
}
