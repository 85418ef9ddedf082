/*
 * jwt - the signed client assertion of the OAuth2 client credentials grant
 * with a certificate (RFC 7523 section 2.2, RFC 7521; JWS RFC 7515, JWT
 * RFC 7519) as the Microsoft identity platform wants it: header alg PS256
 * or RS256, typ JWT, x5t#S256; claims aud, iss, sub, jti, nbf, iat, exp.
 */
#ifndef BEARMAIL_JWT_H
#define BEARMAIL_JWT_H

#include <openssl/evp.h>

#include "conf.h"
#include "util.h"

/* How long an assertion is valid (seconds): Microsoft wants 5-10 min. */
#define JWT_ASSERTION_LIFETIME 600

/* The assertion's client_assertion_type form value. */
#define JWT_ASSERTION_TYPE \
	"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/*
 * The x5t#S256 thumbprint of the first certificate in cert_pem: base64url
 * (no padding) of SHA-256 of its DER encoding.  Returns 0 and *out
 * (xmalloc'd), or EX_CONFIG when cert_pem holds no PEM certificate.
 */
int jwt_x5t_s256(const char *cert_pem, char **out, struct bm_err *e);

/*
 * A UUID version 4 from random_bytes, lower-case, in the 8-4-4-4-12 form;
 * out needs 37 bytes.
 */
void jwt_uuid4(char out[37]);

/*
 * The signed client assertion
 *   base64url(header) "." base64url(claims) "." base64url(signature)
 * header {"alg":"PS256"|"RS256","typ":"JWT","x5t#S256":...} and claims
 * {"aud":aud,"iss":client_id,"sub":client_id,"jti":jti,"nbf":now,
 * "iat":now,"exp":now+JWT_ASSERTION_LIFETIME}, signed with key (RSA only:
 * PS256 is RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt;
 * RS256 RSASSA-PKCS1-v1_5 with SHA-256).  jti NULL: a random UUID v4.
 * The key must be the certificate's.  Returns 0 and *out (release with
 * wipe_free), or EX_CONFIG (bad certificate, key not RSA, key and
 * certificate that do not belong together) or EX_SOFTWARE (signing
 * failed), with a message that never holds the assertion.
 */
int jwt_client_assertion(EVP_PKEY *key, const char *cert_pem,
    enum assertion_alg alg, const char *aud, const char *client_id,
    long long now, const char *jti, char **out, struct bm_err *e);

#endif
