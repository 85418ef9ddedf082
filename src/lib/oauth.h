/*
 * oauth - the OAuth2 token endpoint (RFC 6749) of the Microsoft identity
 * platform: parsing its JSON answers, classifying its errors (AADSTS
 * codes), and the refresh grant (RFC 6749 section 6).
 */
#ifndef BEARMAIL_OAUTH_H
#define BEARMAIL_OAUTH_H

#include "conf.h"
#include "util.h"

/* What a token store keeps for an account.  Any string may be NULL. */
struct token_rec {
	char *account, *user, *client_id, *tenant, *scope;
	char *access_token;
	char *refresh_token;
	long long expires_at;	/* unix time; 0: unknown (refresh first) */
	long long updated_at;	/* unix time of the last change */
};

/* Wipe the secrets, free every string and zero the record. */
void token_rec_clear(struct token_rec *t);

/* A token endpoint error body, as far as it could be read. */
struct oauth_error {
	char error[64];		/* "invalid_grant" ... */
	long aadsts;		/* 70000 ...; 0 when none was given */
	char description[512];	/* first line of error_description,
				 * control characters replaced by '?' */
};

/*
 * Parse a token endpoint answer.  A success (access_token, token_type
 * Bearer if given, expires_in as a number or a string, refresh_token,
 * scope) updates t: access_token, expires_at = now + expires_in (3600
 * when absent), refresh_token only when one was sent (else the old one is
 * kept), scope when sent, updated_at = now.  An error body fills oe (may be
 * NULL) and leaves t alone.  Returns 0 for a token, 1 for an error body,
 * -1 for anything else (bad JSON, wrong types, out-of-range numbers);
 * t is untouched unless 0 is returned.
 */
int oauth_parse_response(const char *json, long long now, struct token_rec *t,
    struct oauth_error *oe);

/*
 * The error record for a refused token-endpoint request, in one shape for
 * every flow: "WHAT for account A failed: error: AADSTSnnnn: ...: fix"
 * (or "... failed: HTTP 502 from URL: fix" when the body is not Microsoft's
 * JSON), with the verdict (verdict_oauth: temporary, login needed, the
 * catalogue row).  sent (NULL-terminated, or NULL) are the secrets the
 * request carried -- refresh token, client secret, code, verifier -- which
 * an answer quoting them loses (scrub_str).  url may be NULL.  Returns
 * e->code.
 */
int oauth_refused(const struct account *a, const char *what, long status,
    const char *body, const char *url, const char *const *sent,
    struct bm_err *e);

/*
 * The refresh grant: POST grant_type=refresh_token, client_id,
 * refresh_token, scope (the account's, else the record's) and client_secret
 * (when the account has client_secret_file, read through secrets.h) to the
 * token URL of the tenant the token came from (old->tenant, else the
 * account's).  On success out is a new record: old's identity fields, the
 * new access token and expires_at, the rotated refresh token (or old's
 * when none came back).  Returns 0, or the refusal's verdict
 * (oauth_refused); never a token in a message.
 */
int oauth_refresh(const struct account *a, const struct token_rec *old,
    struct token_rec *out, struct bm_err *e);

#endif
