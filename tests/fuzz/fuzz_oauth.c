/*
 * fuzz_oauth - what the identity platform and the browser send back:
 * the token endpoint's JSON (oauth_parse_response), the device
 * authorization answer (oauth_login_parse_device) and the loopback
 * redirect's request line (oauth_login_parse_redirect).  Every input
 * goes through all three.  A refused answer must leave the record alone.
 */
#include "config.h"

#include <string.h>

#include "oauth.h"
#include "oauth_login.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

#define NOW 1700000000LL

static void refused(const char *s);

static void
token_response(const char *s)
{
	struct token_rec t = { 0 };
	struct oauth_error oe;
	int rc;

	t.refresh_token = xstrdup("old-refresh");
	t.access_token = xstrdup("old-access");
	rc = oauth_parse_response(s, NOW, &t, &oe);
	FUZZ_ASSERT(rc >= -1 && rc <= 1);
	if (rc == 0) {
		/* a refresh token alone is a token too (token import) */
		FUZZ_ASSERT(t.refresh_token != NULL);
		FUZZ_ASSERT(t.access_token != NULL || t.expires_at == NOW);
		FUZZ_ASSERT(t.updated_at == NOW && t.expires_at >= NOW);
	} else {
		FUZZ_ASSERT(strcmp(t.access_token, "old-access") == 0);
		FUZZ_ASSERT(strcmp(t.refresh_token, "old-refresh") == 0);
	}
	if (rc == 1) {
		FUZZ_ASSERT(memchr(oe.error, '\0', sizeof(oe.error)) != NULL);
		FUZZ_ASSERT(memchr(oe.description, '\0',
		    sizeof(oe.description)) != NULL);
		FUZZ_ASSERT(strpbrk(oe.description, "\r\n") == NULL);
	}
	token_rec_clear(&t);
	refused(s);
}

/* Any answer, refused: one line, a verdict, the fix, no placeholder, and
 * no piece of a secret we sent. */
static void
refused(const char *s)
{
	static const char secret[] = "fuzz-secret-0123456789abcdef";
	const char *sent[] = { secret, NULL };
	struct account a;
	struct bm_err e = { 0 };
	int rc;

	memset(&a, 0, sizeof(a));
	a.name = (char *)"fuzz";
	rc = oauth_refused(&a, "token refresh", 400, s, "https://h/t", sent,
	    &e);
	FUZZ_ASSERT(strstr(e.msg, "0123456789abcdef") == NULL);
	FUZZ_ASSERT(rc == EX_CONFIG || rc == EX_TEMPFAIL);
	FUZZ_ASSERT(rc == e.code && e.v.row != NULL);
	FUZZ_ASSERT(e.v.temporary == (rc == EX_TEMPFAIL));
	FUZZ_ASSERT(strpbrk(e.msg, "\r\n") == NULL);
	/* the fix has its placeholders filled; the server's words may hold
	 * anything */
	FUZZ_ASSERT(strstr(e.msg, "{account}") == NULL ||
	    strstr(s, "{account}") != NULL);
}

static void
device(const char *s)
{
	struct oauth_device d;
	struct oauth_error oe;
	int rc;

	memset(&d, 0, sizeof(d));
	rc = oauth_login_parse_device(s, &d, &oe);
	FUZZ_ASSERT(rc >= -1 && rc <= 1);
	if (rc == 0) {
		FUZZ_ASSERT(d.device_code && d.user_code && d.verification_uri);
		FUZZ_ASSERT(d.message == NULL ||
		    strpbrk(d.message, "\r\n") == NULL);
	} else {
		FUZZ_ASSERT(d.device_code == NULL && d.user_code == NULL);
	}
	oauth_device_clear(&d);
}

static void
redirect(const char *s)
{
	struct oauth_login_redirect r;

	memset(&r, 0, sizeof(r));
	if (oauth_login_parse_redirect(s, &r) != 0)
		FUZZ_ASSERT(r.path == NULL && r.code == NULL && r.state == NULL);
	oauth_login_redirect_clear(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);

	token_response(s);
	device(s);
	redirect(s);
	free(s);
	return 0;
}
