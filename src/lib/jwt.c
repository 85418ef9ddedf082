/*
 * jwt - the client assertion for the client credentials grant with a
 * certificate: a JWT (RFC 7519) in JWS compact form (RFC 7515), used as
 * RFC 7523 section 2.2 says and as the Microsoft identity platform wants
 * it ("Microsoft identity platform application authentication certificate
 * credentials"): PS256 (RFC 7518 section 3.5) by default, RS256 (section
 * 3.3) on request, the certificate named by its SHA-256 thumbprint
 * (x5t#S256, RFC 7515 section 4.1.8).  Signing is OpenSSL 3's EVP.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base64.h"
#include "jwt.h"

/* --------------------------------------------------------- certificate */

static X509 *
cert_parse(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = NULL;

	if (bio != NULL)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return x;
}

static int
thumbprint(X509 *x, char **out, struct bm_err *e)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n = i2d_X509(x, &der);
	int ok = n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(),
	    NULL) == 1;

	OPENSSL_free(der);
	if (!ok)
		return err_set(e, EX_SOFTWARE, "cannot hash the certificate");
	*out = base64url_encode(md, mdlen);
	return 0;
}

int
jwt_x5t_s256(const char *cert_pem, char **out, struct bm_err *e)
{
	X509 *x = cert_parse(cert_pem);
	int ret;

	*out = NULL;
	if (x == NULL)
		return err_set(e, EX_CONFIG, "client_certificate holds no PEM "
		    "certificate");
	ret = thumbprint(x, out, e);
	X509_free(x);
	return ret;
}

void
jwt_uuid4(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];
	size_t i, j = 0;

	random_bytes(r, sizeof(r));
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);	/* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);	/* RFC 4122 variant */
	for (i = 0; i < sizeof(r); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[r[i] >> 4];
		out[j++] = hex[r[i] & 0x0f];
	}
	out[j] = '\0';
}

/* ---------------------------------------------------------------- JSON */

/* base64url of a JSON object's compact text; the object is released. */
static char *
encode_object(struct json_object *o)
{
	const char *text = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *enc = base64url_encode(text, strlen(text));

	json_object_put(o);
	return enc;
}

static char *
header_part(enum assertion_alg alg, const char *x5t)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "alg", json_object_new_string(
	    alg == ASSERTION_RS256 ? "RS256" : "PS256"));
	json_object_object_add(o, "typ", json_object_new_string("JWT"));
	json_object_object_add(o, "x5t#S256", json_object_new_string(x5t));
	return encode_object(o);
}

static char *
claims_part(const char *aud, const char *client_id, long long now,
    const char *jti)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "aud", json_object_new_string(aud));
	json_object_object_add(o, "iss", json_object_new_string(client_id));
	json_object_object_add(o, "sub", json_object_new_string(client_id));
	json_object_object_add(o, "jti", json_object_new_string(jti));
	json_object_object_add(o, "nbf", json_object_new_int64(now));
	json_object_object_add(o, "iat", json_object_new_int64(now));
	json_object_object_add(o, "exp", json_object_new_int64(now +
	    JWT_ASSERTION_LIFETIME));
	return encode_object(o);
}

/* ------------------------------------------------------------- signing */

static int
set_padding(EVP_PKEY_CTX *pctx, enum assertion_alg alg)
{
	if (alg == ASSERTION_RS256)
		return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
	return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
}

/* base64url of the signature over input, or NULL. */
static char *
sign(EVP_PKEY *key, enum assertion_alg alg, const char *input)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t len = 0, n = strlen(input);
	char *out = NULL;

	if (md == NULL ||
	    EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1 ||
	    set_padding(pctx, alg) <= 0 ||
	    EVP_DigestSign(md, NULL, &len, (const unsigned char *)input, n)
	    != 1)
		goto out;
	sig = xmalloc(len);
	if (EVP_DigestSign(md, sig, &len, (const unsigned char *)input, n)
	    == 1)
		out = base64url_encode(sig, len);
out:
	if (sig != NULL)
		wipe(sig, len);
	free(sig);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return out;
}

static int
check_key(EVP_PKEY *key, X509 *x, struct bm_err *e)
{
	int ok;

	if (!EVP_PKEY_is_a(key, "RSA"))
		return err_set(e, EX_CONFIG, "client_key must be an RSA key "
		    "(the identity platform takes PS256 or RS256 assertions)");
	ok = X509_check_private_key(x, key) == 1;
	ERR_clear_error();
	if (!ok)
		return err_set(e, EX_CONFIG, "client_key is not the private "
		    "key of client_certificate");
	return 0;
}

int
jwt_client_assertion(EVP_PKEY *key, const char *cert_pem,
    enum assertion_alg alg, const char *aud, const char *client_id,
    long long now, const char *jti, char **out, struct bm_err *e)
{
	X509 *x = cert_parse(cert_pem);
	char *x5t = NULL, *head = NULL, *claims = NULL, *input = NULL;
	char *sig = NULL, uuid[37];
	int ret;

	*out = NULL;
	if (x == NULL) {
		ret = err_set(e, EX_CONFIG, "client_certificate holds no PEM "
		    "certificate");
		goto out;
	}
	if ((ret = check_key(key, x, e)) != 0 ||
	    (ret = thumbprint(x, &x5t, e)) != 0)
		goto out;
	if (jti == NULL) {
		jwt_uuid4(uuid);
		jti = uuid;
	}
	head = header_part(alg, x5t);
	claims = claims_part(aud, client_id, now, jti);
	input = xasprintf("%s.%s", head, claims);
	if ((sig = sign(key, alg, input)) == NULL) {
		ret = err_set(e, EX_SOFTWARE, "cannot sign the client assertion "
		    "with client_key");
		goto out;
	}
	*out = xasprintf("%s.%s", input, sig);
out:
	X509_free(x);
	free(x5t);
	free(head);
	free(claims);
	free(input);
	wipe_free(sig);	/* with the input, it would be the assertion */
	return ret;
}
