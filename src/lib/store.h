/*
 * store - one interface over the token stores of `token_store`:
 * `file[:PATH]` (store_file), `keyring` (store_keyring) and `auto` (the
 * keyring when a session bus and a Secret Service answer, else the file).
 * Each store has a lock for single-flight refreshes: a flock on a file,
 * beside the token file for the file store, and
 * $XDG_RUNTIME_DIR/bearmail/ACCOUNT.lock (else the state directory) for
 * the keyring.
 */
#ifndef BEARMAIL_STORE_H
#define BEARMAIL_STORE_H

#include "conf.h"
#include "oauth.h"
#include "util.h"

enum store_kind { STORE_FILE, STORE_KEYRING };

struct store {
	enum store_kind kind;
	const struct account *a;	/* borrowed */
	char *path;			/* file store: the token file */
	char *lock_path;
	char *where;			/* for messages */
	int lock_fd;			/* -1 when not locked */
};

/*
 * Resolve the account's token_store (NULL or unknown values are refused
 * by conf; here NULL means `auto`) into s.  For `auto` this may ask the
 * session bus (at most STORE_KEYRING_PROBE_TIMEOUT seconds).  Release
 * with store_close.
 */
void store_open(const struct account *a, struct store *s);
/* Release what store_open allocated (unlocking first). */
void store_close(struct store *s);

/* "file" or "keyring". */
const char *store_name(const struct store *s);
/*
 * Where the tokens are, for messages: the file's path, or
 * "keyring (Secret Service: org.bearmail.Token account=NAME)".
 */
const char *store_where(const struct store *s);

/*
 * Read the account's record into t (cleared first).  Returns 0;
 * EX_NOINPUT when there is none (the message names the store; the caller
 * says how to log in); EX_CONFIG for an unsafe or unreadable record;
 * EX_TEMPFAIL for a keyring that does not answer; EX_IOERR.
 */
int store_load(struct store *s, struct token_rec *t, struct bm_err *e);
/* Replace the record durably.  Returns 0, EX_CANTCREAT, EX_IOERR,
 * EX_TEMPFAIL (keyring) or EX_CONFIG (keyring not built in). */
int store_save(struct store *s, const struct token_rec *t, struct bm_err *e);
/* Forget the record; *found says whether there was one.  Returns 0 (also
 * when there was none) or the store's errors, as store_save. */
int store_delete(struct store *s, int *found, struct bm_err *e);

/*
 * Take the account's exclusive lock, waiting for another holder.  Returns
 * 0, EX_CANTCREAT or EX_IOERR.  store_unlock releases it (and is a no-op
 * when not locked).
 */
int store_lock(struct store *s, struct bm_err *e);
void store_unlock(struct store *s);

#endif
