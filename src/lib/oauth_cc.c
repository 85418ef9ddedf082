/*
 * oauth_cc - the client credentials grant (RFC 6749 section 4.4) for
 * app-only tokens, with a client secret (client_secret_file) or a
 * certificate: a JWT client assertion (RFC 7523 section 2.2, jwt.h) signed
 * with client_key.  Secrets and keys are read through secrets.h before the
 * network is touched and wiped after the request; the assertion is a
 * secret too (anyone holding it can get a token for its ten minutes).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "http.h"
#include "jwt.h"
#include "oauth_cc.h"
#include "secrets.h"

#define MAX_CERT_FILE (64 * 1024)

/* ------------------------------------------------------- credentials */

/* The certificate is public: a link to it is followed (certificates
 * often are links, into /etc/ssl or a renewal tool's archive). */
static int
read_cert(const struct account *a, char **pem, struct bm_err *e)
{
	char *path = NULL, *why;
	int ret;

	*pem = NULL;
	if ((ret = secrets_path(a->client_certificate, "client_certificate",
	    &path, e)) == 0 &&
	    file_read(path, MAX_CERT_FILE, 0, pem, NULL, e) != 0) {
		/* the file is configuration, and the key names it */
		ret = EX_CONFIG;
		if (e != NULL) {
			why = xstrdup(e->msg);	/* err_set writes e->msg */
			err_set(e, ret, "client_certificate %s", why);
			free(why);
		}
	}
	free(path);
	return ret;
}

static int
make_assertion(const struct account *a, const char *url, char **assertion,
    struct bm_err *e)
{
	EVP_PKEY *key = NULL;
	char *pem = NULL;
	int ret;

	*assertion = NULL;
	/* the key first: what is wrong with the secret is said before what
	 * is wrong with the public half */
	if ((ret = secrets_load_key(a->client_key, &key, e)) != 0 ||
	    (ret = read_cert(a, &pem, e)) != 0)
		goto out;
	ret = jwt_client_assertion(key, pem, a->client_assertion_alg, url,
	    a->client_id, (long long)time(NULL), NULL, assertion, e);
out:
	EVP_PKEY_free(key);
	free(pem);
	return ret;
}

/* client_secret or the signed assertion: the form's last pairs. */
static int
credentials(const struct account *a, const char *url, const char **pairs,
    char **secret, struct bm_err *e)
{
	int ret;

	if (a->client_secret_file != NULL) {
		ret = secrets_client_secret(a, secret, e);
		pairs[0] = "client_secret";
		pairs[1] = *secret;
	} else if (a->client_certificate != NULL && a->client_key != NULL) {
		ret = make_assertion(a, url, secret, e);
		pairs[0] = "client_assertion_type";
		pairs[1] = JWT_ASSERTION_TYPE;
		pairs[2] = "client_assertion";
		pairs[3] = *secret;
	} else
		ret = err_set(e, EX_CONFIG, "account %s needs client_secret_file, "
		    "or client_certificate and client_key", a->name);
	return ret;
}

/* ------------------------------------------------------------- grant */

static void
rec_identity(struct token_rec *t, const struct account *a)
{
	t->account = xstrdup(a->name);
	t->user = a->user ? xstrdup(a->user) : NULL;
	t->client_id = xstrdup(a->client_id);
	t->tenant = a->tenant ? xstrdup(a->tenant) : NULL;
	t->scope = xstrdup(a->scope);
}

static int
check_account(const struct account *a, char **url, struct bm_err *e)
{
	*url = NULL;
	if (a->client_id == NULL || a->scope == NULL)
		return err_set(e, EX_CONFIG, "account %s needs client_id and "
		    "scope for app-only tokens", a->name);
	if ((*url = conf_token_url(a)) == NULL)
		return err_set(e, EX_CONFIG, "account %s has no token endpoint: "
		    "set tenant (or token_url)", a->name);
	return 0;
}

/* Take the answer: 0 and *out, or the classified failure (which loses
 * any quote of secret, the client secret or assertion we sent). */
static int
take_answer(const struct account *a, long status, const char *body,
    const char *url, const char *secret, struct token_rec *out,
    struct bm_err *e)
{
	const char *sent[] = { secret, NULL };
	struct token_rec t = { 0 };

	rec_identity(&t, a);
	if (status / 100 == 2 && oauth_parse_response(body,
	    (long long)time(NULL), &t, NULL) == 0 && t.access_token != NULL) {
		wipe_free(t.refresh_token);	/* app-only: none is kept */
		t.refresh_token = NULL;
		*out = t;
		return 0;
	}
	token_rec_clear(&t);
	return oauth_refused(a, "app-only token", status, body, url, sent, e);
}

int
oauth_client_credentials(const struct account *a, struct token_rec *out,
    struct bm_err *e)
{
	struct buf body = BUF_INIT;
	char *url = NULL, *secret = NULL;
	const char *pairs[] = { "grant_type", "client_credentials",
	    "client_id", a->client_id, "scope", a->scope,
	    NULL, NULL, NULL, NULL, NULL };
	long status = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	if ((ret = check_account(a, &url, e)) != 0 ||
	    (ret = credentials(a, url, pairs + 6, &secret, e)) != 0)
		goto out;
	ret = http_post_form(url, pairs, a->ca_file, a->timeout, &status,
	    &body, e);
	if (ret == 0)
		ret = take_answer(a, status, body.data ? body.data : "", url,
		    secret, out, e);
out:
	wipe_free(secret);
	free(url);
	buf_free(&body, 1);
	return ret;
}
