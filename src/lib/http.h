/*
 * http - the HTTPS client for the identity platform's token endpoint
 * (RFC 6749 section 4.1.3/6: form-encoded POST, JSON answer), on libcurl.
 * HTTPS only, TLS verified, no redirects, nothing ever traced: the bodies
 * carry refresh tokens and client secrets.
 */
#ifndef BEARMAIL_HTTP_H
#define BEARMAIL_HTTP_H

#include "util.h"

/* Cap on a response body. */
#define HTTP_MAX_BODY (1024 * 1024)
/* Timeout used when the caller passes 0 or less (seconds). */
#define HTTP_DEFAULT_TIMEOUT 30

/*
 * POST pairs ("k", "v", "k", "v", ..., NULL; each escaped here) as
 * application/x-www-form-urlencoded to url and collect the response body
 * (at most HTTP_MAX_BODY bytes) into body, which the caller releases with
 * buf_free(body, 1).  ca_file (may be NULL) replaces the system CA store.
 * timeout bounds the connect and the whole exchange (seconds).
 * Returns 0 with *status = the HTTP status (any status: the caller reads
 * the error body), or EX_TEMPFAIL "identity platform unreachable: <curl
 * error> (URL)" on network/TLS failures (URL shown without its query), or
 * EX_CONFIG when the URL is not https.
 */
int http_post_form(const char *url, const char *const *pairs,
    const char *ca_file, int timeout, long *status, struct buf *body,
    struct bm_err *e);

/*
 * GET url (Accept: application/json), with the same rules as
 * http_post_form: https only, TLS verified against ca_file or the system
 * store, no redirects, at most HTTP_MAX_BODY bytes into body (release it
 * with buf_free(body, 0)).  For public documents such as the OpenID
 * discovery document; never for secrets in the URL.  Returns 0 with
 * *status set, EX_TEMPFAIL when the host cannot be reached, EX_CONFIG
 * when the URL is not https.
 */
int http_get(const char *url, const char *ca_file, int timeout, long *status,
    struct buf *body, struct bm_err *e);

#endif
