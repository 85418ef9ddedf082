/*
 * oauth_cc - app-only tokens: the OAuth2 client credentials grant
 * (RFC 6749 section 4.4) with a client secret, or with a certificate and a
 * signed client assertion (RFC 7523 section 2.2), as the Microsoft
 * identity platform implements it (scope RESOURCE/.default, no refresh
 * token).
 */
#ifndef BEARMAIL_OAUTH_CC_H
#define BEARMAIL_OAUTH_CC_H

#include "conf.h"
#include "oauth.h"
#include "util.h"

/*
 * A new app-only token for the account (oauth_flow client_credentials):
 * POST grant_type=client_credentials, client_id, scope and either
 * client_secret (from client_secret_file) or client_assertion_type +
 * client_assertion (signed with client_key for client_certificate, alg
 * client_assertion_alg) to the account's token URL.  The secret or the
 * key is read, checked (secrets.h) and wiped before anything is sent, so
 * an unsafe file fails with no network call.  On success *out holds
 * account, user, client_id, tenant, scope (the answer's, else the
 * account's), access_token, expires_at and updated_at; refresh_token is
 * NULL.  Returns 0; EX_CONFIG (bad files, refused credentials: the
 * message quotes the error and the AADSTS line and says what to fix) or
 * EX_TEMPFAIL (unreachable, busy), as oauth_classify.  Never a secret, an
 * assertion or a token in the message.
 */
int oauth_client_credentials(const struct account *a, struct token_rec *out,
    struct bm_err *e);

#endif
