/*
 * tokens - the token policy: hand out an access token with at least
 * TOKENS_MIN_LIFETIME seconds left, refreshing it single-flight across
 * processes (lock, re-read, refresh only if still needed, store the rotated
 * refresh token durably, then use the access token).
 */
#ifndef BEARMAIL_TOKENS_H
#define BEARMAIL_TOKENS_H

#include "conf.h"
#include "util.h"

/* Refresh when the access token has less than this left (seconds). */
#define TOKENS_MIN_LIFETIME 600

/*
 * A valid access token for the account in *token (newly allocated: release
 * it with wipe_free).  Returns 0; EX_CONFIG when there is no token ("no
 * token for account work: run `bearmail login work` (or `bearmail token
 * import work`)"), the store is unsafe, or the identity platform wants a
 * new login; EX_TEMPFAIL when it cannot be reached or is busy;
 * EX_CANTCREAT / EX_IOERR when the store cannot be written.
 */
int tokens_get(const struct account *a, char **token, struct bm_err *e);

/*
 * A new access token after the server refused stale (may be NULL): the
 * network is skipped when another process has already replaced stale with
 * a token that is still valid.  Returns as tokens_get.
 */
int tokens_refresh(const struct account *a, const char *stale, char **token,
    struct bm_err *e);

/*
 * Store input for the account: a token endpoint JSON answer (access and
 * refresh token, expires_in), or a bare refresh token (stored with no
 * access token, so the first tokens_get refreshes).  Returns 0,
 * EX_DATAERR when input is neither (or is an error answer), or the
 * store's errors.
 */
int tokens_import(const struct account *a, const char *input,
    struct bm_err *e);

/* A short name for the account's store, as shown to the user: "file". */
const char *tokens_store_name(const struct account *a);

#endif
