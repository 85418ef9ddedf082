/*
 * store - picks the token store an account's `token_store` names and
 * forwards to it; owns the per-account lock that makes refreshes
 * single-flight across processes (tokens.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "store.h"
#include "store_file.h"
#include "store_keyring.h"

/* The account name as a file name: no '/', no leading dot. */
static char *
lock_name(const char *name)
{
	char *s = xstrdup(name != NULL && name[0] != '\0' ? name : "default");
	char *p;

	for (p = s; *p; p++)
		if (*p == '/' || (p == s && *p == '.'))
			*p = '_';
	return s;
}

/* $XDG_RUNTIME_DIR/bearmail/ACCOUNT.lock, else STATE_DIR/ACCOUNT.lock. */
static char *
keyring_lock_path(const struct account *a)
{
	const char *run = getenv("XDG_RUNTIME_DIR");
	char *name = lock_name(a->name), *dir, *path;

	if (run != NULL && run[0] == '/')
		dir = xasprintf("%s/bearmail", run);
	else
		dir = state_dir();
	path = xasprintf("%s/%s.lock", dir, name);
	free(dir);
	free(name);
	return path;
}

static int
wants_keyring(const struct account *a)
{
	const char *ts = a->token_store;

	if (ts != NULL && strcmp(ts, "keyring") == 0)
		return 1;
	if (ts == NULL || strcmp(ts, "auto") == 0)
		return store_keyring_available();
	return 0;
}

void
store_open(const struct account *a, struct store *s)
{
	memset(s, 0, sizeof(*s));
	s->a = a;
	s->lock_fd = -1;
	if (wants_keyring(a)) {
		s->kind = STORE_KEYRING;
		s->lock_path = keyring_lock_path(a);
		s->where = xasprintf("keyring (Secret Service: %s account=%s)",
		    STORE_KEYRING_SCHEMA, a->name);
		return;
	}
	s->kind = STORE_FILE;
	s->path = store_file_path(a);
	s->lock_path = xasprintf("%s.lock", s->path);
	s->where = xstrdup(s->path);
}

void
store_close(struct store *s)
{
	store_unlock(s);
	free(s->path);
	free(s->lock_path);
	free(s->where);
	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
}

const char *
store_name(const struct store *s)
{
	return s->kind == STORE_KEYRING ? "keyring" : "file";
}

const char *
store_where(const struct store *s)
{
	return s->where;
}

int
store_load(struct store *s, struct token_rec *t, struct bm_err *e)
{
	if (s->kind == STORE_KEYRING)
		return store_keyring_load(s->a, t, e);
	return store_file_load(s->path, t, e);
}

int
store_save(struct store *s, const struct token_rec *t, struct bm_err *e)
{
	if (s->kind == STORE_KEYRING)
		return store_keyring_save(s->a, t, e);
	return store_file_save(s->path, t, e);
}

int
store_delete(struct store *s, int *found, struct bm_err *e)
{
	if (s->kind == STORE_KEYRING)
		return store_keyring_delete(s->a, found, e);
	return store_file_delete(s->path, found, e);
}

int
store_lock(struct store *s, struct bm_err *e)
{
	if (s->lock_fd >= 0)
		return 0;
	return store_file_lock_at(s->lock_path, &s->lock_fd, e);
}

void
store_unlock(struct store *s)
{
	store_file_unlock(s->lock_fd);
	s->lock_fd = -1;
}
