/*
 * oauth_login - the two interactive ways to get the first token from the
 * Microsoft identity platform: the device authorization grant (RFC 8628)
 * and the authorization code grant (RFC 6749 section 4.1) with PKCE
 * (RFC 7636, S256) and a loopback redirect (RFC 8252 section 7.3).
 * Pure parts (PKCE, state, URL building, parsing the redirect and the
 * device answer) and the token endpoint requests; the waiting, printing
 * and the browser belong to `bearmail login` (src/bearmail/cmd_login.c).
 */
#ifndef BEARMAIL_OAUTH_LOGIN_H
#define BEARMAIL_OAUTH_LOGIN_H

#include <stddef.h>

#include "conf.h"
#include "oauth.h"
#include "util.h"

/* RFC 8628 section 3.5: the poll interval grows by 5 s on slow_down. */
#define OAUTH_LOGIN_SLOW_DOWN 5
/* RFC 8628 section 3.2: the default poll interval. */
#define OAUTH_LOGIN_INTERVAL 5
/* Longest request accepted on the loopback redirect listener. */
#define OAUTH_LOGIN_MAX_REQUEST 8192

/* ------------------------------------------------------------- PKCE */

/* The code verifier for n random bytes (base64url, unpadded): 32 bytes
 * give 43 characters, 96 give 128.  xmalloc'd; a secret (wipe_free). */
char *oauth_login_verifier_from(const unsigned char *bytes, size_t n);
/* A fresh verifier of 64 characters from random_bytes (wipe_free). */
char *oauth_login_verifier(void);
/* The S256 challenge: base64url(SHA-256(verifier)), 43 characters,
 * xmalloc'd. */
char *oauth_login_challenge(const char *verifier);
/* A fresh `state` value (22 base64url characters, 128 random bits). */
char *oauth_login_state(void);

/* ------------------------------------------------------------- URLs */

/* Percent-encode everything but RFC 3986 unreserved characters
 * (ALPHA DIGIT - . _ ~).  xmalloc'd. */
char *oauth_login_urlencode(const char *s);
/* Decode %XX and '+' (as a space) of a query component.  Returns an
 * xmalloc'd string, or NULL for a bad escape or an encoded NUL. */
char *oauth_login_urldecode(const char *s, size_t n);

/* What goes into the authorization request. */
struct oauth_login_authz {
	const char *client_id;
	const char *redirect_uri;
	const char *scope;
	const char *state;
	const char *challenge;     /* S256 */
	const char *login_hint;    /* may be NULL */
};

/*
 * auth_url "?" (or "&" when it has a query already) response_type=code,
 * client_id, redirect_uri, response_mode=query, scope, state,
 * code_challenge, code_challenge_method=S256, login_hint (when given),
 * prompt=select_account; every value percent-encoded.  xmalloc'd.
 */
char *oauth_login_authorize_url(const char *auth_url,
    const struct oauth_login_authz *p);

/* ---------------------------------------------------------- redirect */

/* The browser's request to the loopback listener, decoded.  Any string
 * may be NULL (absent); code is a secret. */
struct oauth_login_redirect {
	char *path;                 /* "/" */
	char *code;
	char *state;
	char *error;
	char *error_description;
};

/*
 * Parse a request line "GET /?code=...&state=... HTTP/1.1" (without its
 * CRLF).  Returns 0 and fills r; -1 when it is not a GET with an origin
 * form target and an HTTP/1.x version, or a parameter is repeated or
 * badly escaped (r is then empty).
 */
int oauth_login_parse_redirect(const char *line,
    struct oauth_login_redirect *r);
/* Free (code wiped) and zero. */
void oauth_login_redirect_clear(struct oauth_login_redirect *r);

/* ------------------------------------------------------- device code */

/* The device authorization answer (RFC 8628 section 3.2). */
struct oauth_device {
	char *device_code;         /* a secret */
	char *user_code;
	char *verification_uri;
	char *message;             /* Microsoft's sentence, or NULL */
	long long expires_in;      /* seconds */
	long long interval;        /* seconds; OAUTH_LOGIN_INTERVAL if absent */
};

/*
 * Parse the device authorization answer (verification_url is accepted for
 * verification_uri, as Google sends it; numbers may be strings).  Returns
 * 0 and fills d; 1 for an OAuth error body (oe filled, may be NULL); -1
 * for anything else (d is then empty).  Control characters in message are
 * replaced by '?'.
 */
int oauth_login_parse_device(const char *json, struct oauth_device *d,
    struct oauth_error *oe);
void oauth_device_clear(struct oauth_device *d);

/*
 * Ask the account's device URL (conf_device_url) for a code: POST client_id
 * and scope.  Returns 0 and d; EX_CONFIG (no device URL or client_id, or
 * the platform refuses: message with the AADSTS line and advice);
 * EX_TEMPFAIL (unreachable, 5xx); EX_PROTOCOL for an answer that is not a
 * device authorization.
 */
int oauth_login_device_start(const struct account *a, struct oauth_device *d,
    struct bm_err *e);

/* What one poll of the token endpoint said. */
enum oauth_poll {
	OAUTH_POLL_DONE,          /* answer holds the token JSON */
	OAUTH_POLL_PENDING,       /* authorization_pending: wait interval */
	OAUTH_POLL_SLOW_DOWN,     /* slow_down: interval += 5, then wait */
	OAUTH_POLL_FAILED         /* e says why (e->code the exit code) */
};

/*
 * One device_code grant request (grant_type
 * urn:ietf:params:oauth:grant-type:device_code, client_id, device_code).
 * On OAUTH_POLL_DONE answer holds the token endpoint's JSON (a secret:
 * buf_free(answer, 1)).  OAUTH_POLL_FAILED with e->code EX_CONFIG for
 * authorization_declined, expired_token, bad_verification_code and other
 * refusals, EX_TEMPFAIL for network trouble, 5xx and throttling.
 */
enum oauth_poll oauth_login_device_poll(const struct account *a,
    const struct oauth_device *d, struct buf *answer, struct bm_err *e);

/*
 * Redeem an authorization code: POST grant_type=authorization_code,
 * client_id, code, redirect_uri, code_verifier, scope to the token URL.
 * Returns 0 with the token JSON in answer (a secret), or EX_CONFIG /
 * EX_TEMPFAIL with the platform's error and advice (never the code).
 */
int oauth_login_redeem_code(const struct account *a, const char *code,
    const char *redirect_uri, const char *verifier, struct buf *answer,
    struct bm_err *e);

#endif
