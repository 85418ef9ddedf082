/*
 * store_file - the `token_store file[:PATH]` backend: one JSON file per
 * account, private to its owner (checked like ssh checks its keys),
 * replaced atomically and durably on every save, with a lock file beside
 * it for single-flight refreshes across processes.
 */
#ifndef BEARMAIL_STORE_FILE_H
#define BEARMAIL_STORE_FILE_H

#include "conf.h"
#include "oauth.h"
#include "util.h"

/* Largest token file accepted. */
#define STORE_FILE_MAX (64 * 1024)

/*
 * The account's token file: PATH of `token_store file:PATH` (a leading ~/
 * is $HOME), else $XDG_STATE_HOME/bearmail/tokens/ACCOUNT.json, else
 * ~/.local/state/bearmail/tokens/ACCOUNT.json.  Newly allocated.
 */
char *store_file_path(const struct account *a);

/*
 * Read the record at path into t (zeroed or holding a record: it is
 * cleared first).  The file is opened
 * without following symlinks and must be a regular file owned by the
 * current user with no group/other permission bits.  Returns 0;
 * EX_NOINPUT when the file does not exist ("no token file PATH": the
 * caller says which account and how to log in); EX_CONFIG for a symlink,
 * a foreign owner, "token file PATH is readable by others (mode 0644): run
 * chmod 600 PATH", or contents that are not a token record; EX_IOERR.
 */
int store_file_load(const char *path, struct token_rec *t, struct bm_err *e);

/*
 * The record as the JSON document every store keeps (appended to b, which
 * then holds secrets: free it with buf_free(b, 1)).
 */
void store_file_encode(const struct token_rec *t, struct buf *b);
/*
 * Parse len bytes of such a document into t (cleared first).  Returns 0,
 * or -1 (t left empty) for anything that is not one whole JSON object with
 * an access or refresh token and well-typed members.
 */
int store_file_decode(const char *text, size_t len, struct token_rec *t);

/*
 * Write t to path atomically: create the directory (0700) if needed, write
 * PATH.tmp.XXXXXX (0600), fsync, rename over path, fsync the directory.
 * Returns 0, EX_CANTCREAT (directory or file cannot be created) or
 * EX_IOERR (write/fsync/rename), with the path and the system's reason.
 */
int store_file_save(const char *path, const struct token_rec *t,
    struct bm_err *e);

/*
 * Take the exclusive lock PATH.lock (created 0600, directory created as
 * for save), waiting for another holder.  Returns 0 with *fd to pass to
 * store_file_unlock, or EX_CANTCREAT / EX_IOERR.
 */
int store_file_lock(const char *path, int *fd, struct bm_err *e);
/* The same with the lock file's own path. */
int store_file_lock_at(const char *lock_path, int *fd, struct bm_err *e);
/* Release a lock from store_file_lock (-1 is ignored). */
void store_file_unlock(int fd);

/*
 * Remove the token file (and sync its directory).  *found says whether
 * there was one.  Returns 0 (also when there was none), or EX_IOERR.
 */
int store_file_delete(const char *path, int *found, struct bm_err *e);

#endif
