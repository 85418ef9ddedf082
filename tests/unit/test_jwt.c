/*
 * test_jwt - the client assertion: its three parts split and decoded
 * (base64url without padding, RFC 7515), every header field and claim,
 * the signature verified with OpenSSL for PS256 and RS256 (and RS256
 * compared with one made by `openssl dgst -sha256 -sign`), the x5t#S256
 * thumbprint of a fixed certificate (computed with `openssl x509 -outform
 * DER | openssl dgst -sha256 -binary`), UUID v4 jti, and the refusals.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "base64.h"
#include "jwt.h"
#include "tests/unit/tap.h"

/* A throwaway RSA 2048 pair made with `openssl req -x509 -newkey rsa:2048
 * -nodes -subj "/CN=bearmail test app"`. */
static const char key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCcCBNQwwALqUCL\n"
    "veOcFkOKG6gWAHqI6wSQapQQ6qtmIdqJ+9C+IhrTGjVjXK3L1A3BC2Hm7MBZrbwX\n"
    "WRBfj/urrDwaggHrpQPh+xxIUx2IkP7PZKxQDjBXWu8BGuVG9NAqxQUfHxyloRHV\n"
    "soqo2J/uPUIwDo7Uu8GWUg3EXMPgj0Q1j0wnurGRHjDJ5vaPjN3Pzu4ibD6AOTXR\n"
    "xR2xQi5RJ/I+V/Nu5fXA/IzIw6d5Yb6kXVgqphJBYNeZzv9UzmlyuIN+EI/GqQIr\n"
    "bWzfbyinXopTCpBUFhCu1eIs/gdL0gKCH4qGk/+hNbroYlIi+BKKmmuSCfHvoYF3\n"
    "kvxh6llrAgMBAAECggEAJwvsTYMnEUP/R5kzCv4VU8v9AdiH0ZjCsSNCv4MCdpIV\n"
    "Pv+Z6uLdBKQj5SQtx/reoEcpbmEj960/Cza6HrgI+pqlBdswANjwQk6VctH9642h\n"
    "fqQKbRRH66xxcDzbUKj2KSXZ1MJz6E0JCgneokdnqnaBCEa0Xq9H0EbjdBbk296K\n"
    "V6I0zoJ0tfQRDQLxTld2j9HqSJ8MtUjwXV3Wae3fRG8Hlq7XZ2ZFQ9AWJgTortfI\n"
    "Sp5no+sz5Fc+eNTw8XnmRouSgH+PyIObrWp0hDb1S2q0xkwfwPi2t3z1vMyjc/ZW\n"
    "/HgjpTgoxRjNktuK9PlVFNpKP+1W9bp+tOi8vgV9BQKBgQDN34QQ23oq+tpWqihF\n"
    "OYIkkvWdpPbjiAXNLN/aHxmqE3CU54uHOdg0OFDdVfZT/wJGk5B1kcUkuTilBrJf\n"
    "5iwsTRaNlzVEmnCjGy6sxmco/YGGw4KwyAtugyavnzLx2K6KBE3E4t99Rm3J9gng\n"
    "i0Z2nJiwSndx9n8PGUcK0WXn1wKBgQDCBdW3VWkdPcmNoybXNyOdNPFx2rX6/Ztt\n"
    "On3jGfZcYsSf1M43ZbSD4jswmxS2Q+Wm7xzI9jF/hFii1d3CienVrodGl8VtrwUV\n"
    "hRwXTd56VLz1D0FZhjZEKxyjb6dZpybj0OnY+Uk6DmVXrzdI4h9DcBS1+hIfhbph\n"
    "dQpN4a6YjQKBgEVOnRhLuwojH0QTzrDXVm/XpaZntdINpd5X4Bh/ZdVy6/DFLpzc\n"
    "pWOXHeoVmXLXo718yiI6a8McM+yin4RXacGURiZupDkvQQI4EXOK64nKJkPnJ+U5\n"
    "w1d2AZ0YHD988e1223OP6Ss0fZuDH/ofCR6/Q0v+Fc4g7M95dAg5THRLAoGAHfsm\n"
    "1iiVkJYuoftXEiSMFUvMD2rbeghcTxmdwE0Pu6Drf0M0Bm1p4oM/4DfmkG+Xeh8y\n"
    "1H7ukSTTSX5AwUHsZz+L2cW0FUnZQEUMXTGEMmULudZ8o6fQlOIQj9S+CGWC5esv\n"
    "Z37F6Pm2gUErCtEeQZ59JM2apVJVxZ9/Ux+PijUCgYBlbvPpcjIV3fOs2OAzrKjY\n"
    "WLOdFqrh/CW4BbK69q8igT1vH89dY1bi8C3iLLcO/bwkLhW4XXlkBAOxI0WO9LNf\n"
    "xbGTtyHefLP+SYMIFNi4SdT3GhE/z8huznBPYS6RoWzevOJjSHvETfRIBTdIHwzw\n"
    "IDwdCXDhiLHGJ/3NmeNkuQ==\n"
    "-----END PRIVATE KEY-----\n";

static const char cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDGzCCAgOgAwIBAgIUUIYiJ+C96GneFgG3C1hJOv5IKt4wDQYJKoZIhvcNAQEL\n"
    "BQAwHDEaMBgGA1UEAwwRYmVhcm1haWwgdGVzdCBhcHAwIBcNMjYxMTI4MjAwODA1\n"
    "WhgPMjEyNjExMDQyMDA4MDVaMBwxGjAYBgNVBAMMEWJlYXJtYWlsIHRlc3QgYXBw\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnAgTUMMAC6lAi73jnBZD\n"
    "ihuoFgB6iOsEkGqUEOqrZiHaifvQviIa0xo1Y1yty9QNwQth5uzAWa28F1kQX4/7\n"
    "q6w8GoIB66UD4fscSFMdiJD+z2SsUA4wV1rvARrlRvTQKsUFHx8cpaER1bKKqNif\n"
    "7j1CMA6O1LvBllINxFzD4I9ENY9MJ7qxkR4wyeb2j4zdz87uImw+gDk10cUdsUIu\n"
    "USfyPlfzbuX1wPyMyMOneWG+pF1YKqYSQWDXmc7/VM5pcriDfhCPxqkCK21s328o\n"
    "p16KUwqQVBYQrtXiLP4HS9ICgh+KhpP/oTW66GJSIvgSipprkgnx76GBd5L8YepZ\n"
    "awIDAQABo1MwUTAdBgNVHQ4EFgQUWN5K6KczkMh4IvOSkJGdCQ9b40AwHwYDVR0j\n"
    "BBgwFoAUWN5K6KczkMh4IvOSkJGdCQ9b40AwDwYDVR0TAQH/BAUwAwEB/zANBgkq\n"
    "hkiG9w0BAQsFAAOCAQEAXgdne/+9v3kVu4eCMzD5aJPAzpiMu7YGkFL16Y5UiCqw\n"
    "1MVAX8s9kwspZB4Sfu0RPXfTRHAELPRQ6LVrE7U8coQz1jOZDJ3t+yh4a2v+Og1f\n"
    "MUvSz1uuoUnDxdIERdfhdJUUdDENlfHgoe1a7JwtF4QDURTIvDIZ4R7AX2zZDht2\n"
    "iFIg+HfZjEhjawIsyTAIIcHP9FpIb/DBQljLbQwEKAM9i7W14V1XY4f+oHPwAVmM\n"
    "SgteteE+/KiYEId6Z3+NLjiS01vU78IST0kvROVXtBVs7ol5lew6ct1W9uOr9Ul4\n"
    "mBct1YB4+eLoSsruGBA/mkPUcCBG5Wf2nZLiZviLkg==\n"
    "-----END CERTIFICATE-----\n";

static const char rs256_sig[] =
    "Ar9uMekUluGYv224m6iYi6Uow1SAxPUD1I8auOCBoXsyS2vBE6WT2_iiUzm2fCzw"
    "H0VLWdffZ7fXu3SogMZWzGyHGzQQ81Sx-v3EcGQwSosby4ihYO7jirJ5suKO2R-N"
    "8k5T9BVMv2lL6T5hj-4u51zpjyLmhA7S5ATsW7ISRPZ6m8o8M_j0I6AwZU1qic8C"
    "yoWq1qDtWEI7YbMajvVrNYc5T51VL5LQrz_wyOE7fZ5nKxBQ_dhLtNldvmg4CZX1"
    "FHZwVTwl1eiEnAqoYtQI8oiZ6KtJjowPCO9YSkhh6Ctq1iyMADo8u9xDm6asgjRS"
    "jrR295dgQ8LmqV9xz1O01Q";

#define X5T "zkksX8LNyzQygFyGe5N9jGjtPq4xtgSggg8sJbJNPtA"
#define AUD "https://login.example/contoso.example/oauth2/v2.0/token"
#define CID "11111111-2222-3333-4444-555555555555"
#define JTI "0f8fad5b-d9cb-469f-a165-70867728950e"
#define NOW 1700000000LL

static EVP_PKEY *
load_key(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);

	BIO_free(bio);
	return k;
}

/* RFC 4648 section 5 without padding: only A-Z a-z 0-9 - _. */
static int
is_b64url(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_", s[i]) == NULL || s[i] == '\0')
			return 0;
	return n > 0;
}

/* The decoded text of part [p, p+n), or NULL. */
static char *
decode_part(const char *p, size_t n)
{
	char *copy = strndup(p, n);
	unsigned char *out = NULL;
	size_t len;

	if (base64url_decode(copy, &out, &len) != 0)
		out = NULL;
	free(copy);
	return (char *)out;
}

static int
verify(EVP_PKEY *key, enum assertion_alg alg, int pss_padding,
    const char *jwt)
{
	const char *dot = strrchr(jwt, '.');
	unsigned char *sig = NULL;
	size_t siglen;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	(void)alg;
	if (base64url_decode(dot + 1, &sig, &siglen) != 0)
		goto out;
	if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) != 1)
		goto out;
	if (pss_padding) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
	} else
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
	ok = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt,
	    (size_t)(dot - jwt)) == 1;
out:
	EVP_MD_CTX_free(md);
	free(sig);
	return ok;
}

static const struct {
	enum assertion_alg alg;
	const char *name, *header;
} algs[] = {
	{ ASSERTION_PS256, "PS256",
	  "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"" X5T "\"}" },
	{ ASSERTION_RS256, "RS256",
	  "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t#S256\":\"" X5T "\"}" },
};

#define CLAIMS "{\"aud\":\"" AUD "\",\"iss\":\"" CID "\",\"sub\":\"" CID \
	"\",\"jti\":\"" JTI "\",\"nbf\":1700000000,\"iat\":1700000000," \
	"\"exp\":1700000600}"

static void
test_assertion(EVP_PKEY *key, size_t i)
{
	struct bm_err e = { 0 };
	char *jwt = NULL, *head, *claims;
	const char *d1, *d2;
	int rc = jwt_client_assertion(key, cert_pem, algs[i].alg, AUD, CID,
	    NOW, JTI, &jwt, &e);

	if (!ok(rc == 0 && jwt != NULL, "%s: assertion made (%s)",
	    algs[i].name, e.msg))
		return;
	d1 = strchr(jwt, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!ok(d1 && d2 && strchr(d2 + 1, '.') == NULL, "%s: three parts",
	    algs[i].name))
		return;
	ok(is_b64url(jwt, (size_t)(d1 - jwt)) &&
	    is_b64url(d1 + 1, (size_t)(d2 - d1 - 1)) &&
	    is_b64url(d2 + 1, strlen(d2 + 1)),
	    "%s: every part is base64url without padding", algs[i].name);
	head = decode_part(jwt, (size_t)(d1 - jwt));
	claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
	is_str(head, algs[i].header, "%s: header", algs[i].name);
	is_str(claims, CLAIMS, "%s: claims (aud, iss = sub, jti, nbf = iat, "
	    "exp = nbf + 600)", algs[i].name);
	is_int((long long)strlen(d2 + 1), 342, "%s: a 256-byte signature",
	    algs[i].name);
	ok(verify(key, algs[i].alg, algs[i].alg == ASSERTION_PS256, jwt),
	    "%s: the signature verifies with OpenSSL", algs[i].name);
	ok(!verify(key, algs[i].alg, algs[i].alg != ASSERTION_PS256, jwt),
	    "%s: and not with the other padding", algs[i].name);
	if (algs[i].alg == ASSERTION_RS256)
		is_str(d2 + 1, rs256_sig, "RS256: the signature `openssl dgst "
		    "-sha256 -sign` makes");
	free(head);
	free(claims);
	wipe_free(jwt);
}

static void
test_x5t(void)
{
	struct bm_err e = { 0 };
	char *x5t = NULL;

	ok(jwt_x5t_s256(cert_pem, &x5t, &e) == 0, "x5t#S256 computed");
	is_str(x5t, X5T, "x5t#S256 = base64url(SHA-256(DER)), no padding");
	free(x5t);
	is_int(jwt_x5t_s256("not a certificate", &x5t, &e), EX_CONFIG,
	    "x5t#S256 of garbage: EX_CONFIG");
	ok(x5t == NULL, "x5t#S256 of garbage: nothing returned");
}

static void
test_uuid(void)
{
	char a[37], b[37];
	size_t i;
	int shape = 1;

	jwt_uuid4(a);
	jwt_uuid4(b);
	for (i = 0; i < 36; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23) ? a[i] != '-' :
		    strchr("0123456789abcdef", a[i]) == NULL)
			shape = 0;
	ok(shape && strlen(a) == 36, "jti: 8-4-4-4-12 lower-case hex (%s)", a);
	ok(a[14] == '4' && strchr("89ab", a[19]) != NULL,
	    "jti: version 4, RFC 4122 variant");
	ok(strcmp(a, b) != 0, "jti: two differ");
}

static void
test_random_jti(EVP_PKEY *key)
{
	struct bm_err e = { 0 };
	char *j1 = NULL, *j2 = NULL;

	jwt_client_assertion(key, cert_pem, ASSERTION_PS256, AUD, CID, NOW,
	    NULL, &j1, &e);
	jwt_client_assertion(key, cert_pem, ASSERTION_PS256, AUD, CID, NOW,
	    NULL, &j2, &e);
	ok(j1 && j2 && strcmp(j1, j2) != 0,
	    "jti NULL: each assertion is different");
	wipe_free(j1);
	wipe_free(j2);
}

static void
test_refusals(EVP_PKEY *key)
{
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct bm_err e = { 0 };
	char *jwt = NULL;

	is_int(jwt_client_assertion(other, cert_pem, ASSERTION_PS256, AUD,
	    CID, NOW, NULL, &jwt, &e), EX_CONFIG, "another RSA key: refused");
	is_str(e.msg, "client_key is not the private key of client_certificate",
	    "another RSA key: the message");
	is_int(jwt_client_assertion(ec, cert_pem, ASSERTION_PS256, AUD, CID,
	    NOW, NULL, &jwt, &e), EX_CONFIG, "an EC key: refused");
	is_str(e.msg, "client_key must be an RSA key (the identity platform "
	    "takes PS256 or RS256 assertions)", "an EC key: the message");
	is_int(jwt_client_assertion(key, "-----BEGIN CERTIFICATE-----\nAAAA\n"
	    "-----END CERTIFICATE-----\n", ASSERTION_PS256, AUD, CID, NOW,
	    NULL, &jwt, &e), EX_CONFIG, "a broken certificate: refused");
	ok(jwt == NULL, "refusals return no assertion");
	EVP_PKEY_free(other);
	EVP_PKEY_free(ec);
}

int
main(void)
{
	EVP_PKEY *key = load_key(key_pem);
	size_t i;

	if (!ok(key != NULL, "test key loads"))
		return done_testing();
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		test_assertion(key, i);
	test_x5t();
	test_uuid();
	test_random_jti(key);
	test_refusals(key);
	EVP_PKEY_free(key);
	return done_testing();
}
