/*
 * tokens - the token policy: hand out an access token with at least
 * TOKENS_MIN_LIFETIME seconds left, refreshing it single-flight across
 * processes (lock, re-read, refresh only if still needed, store the rotated
 * refresh token durably, then use the access token).  Every failure is
 * also noted in the account's state (state.h), with login_needed when the
 * identity platform wants a new login.
 */
#ifndef BEARMAIL_TOKENS_H
#define BEARMAIL_TOKENS_H

#include "conf.h"
#include "util.h"

/* Refresh when the access token has less than this left (seconds). */
#define TOKENS_MIN_LIFETIME 600

struct token_rec;
/* Whether t's access token may be used at time now: it exists and has at
 * least TOKENS_MIN_LIFETIME seconds left. */
int tokens_is_fresh(const struct token_rec *t, long long now);

/*
 * A valid access token for the account in *token (newly allocated: release
 * it with wipe_free).  Returns 0; EX_CONFIG when there is no token ("no
 * token for account work: run `bearmail login work` (or `bearmail token
 * import work`)"), the store is unsafe, or the identity platform wants a
 * new login (the message then says "run `bearmail login ACCOUNT`");
 * EX_TEMPFAIL when it cannot be reached or is busy, or the keyring does
 * not answer; EX_CANTCREAT / EX_IOERR when the store cannot be written.
 * Accounts with oauth_flow client_credentials need no stored token: a
 * missing or stale one is replaced through oauth_client_credentials.
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

/*
 * Forget the account's tokens (under its lock).  Returns 0 with e->msg
 * "removed the tokens of account work from WHERE"; EX_NOINPUT when there
 * were none, e->msg "account work has no tokens in WHERE: nothing to
 * forget"; or the store's errors (EX_IOERR, EX_TEMPFAIL ...).
 */
int tokens_forget(const struct account *a, struct bm_err *e);

/* The account's store, resolved (`auto` asks the session bus): "file" or
 * "keyring". */
const char *tokens_store_name(const struct account *a);
/* Where the account's tokens are, for messages: the token file's path or
 * "keyring (Secret Service: org.bearmail.Token account=NAME)".  Newly
 * allocated. */
char *tokens_store_where(const struct account *a);

#endif
