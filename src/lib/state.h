/*
 * state - what bearmail remembers about each account between runs, for
 * `bearmail status` and for the hints in log lines: the last token refresh,
 * the last token or delivery error, and whether a person must log in again.
 * One small JSON file per account in $XDG_STATE_HOME/bearmail/status/
 * (~/.local/state/bearmail/status/), replaced atomically.  Never a secret.
 */
#ifndef BEARMAIL_STATE_H
#define BEARMAIL_STATE_H

struct acct_state {
	long long last_refresh;     /* unix time of the last successful refresh */
	long long last_delivery;    /* last message the server accepted */
	long long last_error_at;
	char *last_error;           /* one line, or NULL */
	int login_needed;           /* the identity platform wants a new login */
};

/* The directory for per-account state (xmalloc'd, not created). */
char *state_dir(void);

/* Load the account's record; a missing or unreadable one is all zeros.
 * Always returns 0. */
int state_load(const char *account, struct acct_state *s);
void state_free(struct acct_state *s);

/* Record events.  Best effort: a failure to write is ignored (the state is
 * advisory; delivery must not fail because of it). */
void state_note_refresh(const char *account);
void state_note_token_error(const char *account, const char *msg,
    int login_needed);
void state_note_delivery(const char *account, int ok, const char *msg);

#endif
