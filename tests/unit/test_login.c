/*
 * Unit tests for oauth_login's pure parts: PKCE S256 against RFC 7636
 * Appendix B, the verifier and state shapes, percent-encoding, the
 * authorization URL, the redirect request line and the device code answer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "oauth_login.h"
#include "tests/unit/tap.h"

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

static int
all_b64url(const char *s)
{
	return s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_")] == '\0';
}

static void
test_pkce(void)
{
	/* RFC 7636 Appendix B */
	static const unsigned char octets[32] = { 116, 24, 223, 180, 151, 153,
	    224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
	    105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121 };
	char *v = oauth_login_verifier_from(octets, sizeof(octets));
	char *c = oauth_login_challenge(v);
	char *v2, *v3, *s1, *s2;

	is_str(v, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	    "RFC 7636 B: verifier");
	is_str(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
	    "RFC 7636 B: S256 challenge");
	free(v);
	free(c);
	v2 = oauth_login_verifier();
	v3 = oauth_login_verifier();
	ok(strlen(v2) >= 43 && strlen(v2) <= 128 && all_b64url(v2),
	    "verifier: 43-128 unreserved characters (%zu)", strlen(v2));
	ok(strcmp(v2, v3) != 0, "verifiers differ");
	s1 = oauth_login_state();
	s2 = oauth_login_state();
	ok(strlen(s1) == 22 && all_b64url(s1), "state: 22 base64url chars");
	ok(strcmp(s1, s2) != 0, "states differ");
	c = oauth_login_challenge(v2);
	ok(strlen(c) == 43 && all_b64url(c), "challenge: 43 base64url chars");
	free(c);
	wipe_free(v2);
	wipe_free(v3);
	free(s1);
	free(s2);
}

static const struct {
	const char *in, *out;
} enc_cases[] = {
	{ "", "" },
	{ "abcXYZ019-._~", "abcXYZ019-._~" },
	{ "a b", "a%20b" },
	{ "https://outlook.office.com/SMTP.Send offline_access",
	  "https%3A%2F%2Foutlook.office.com%2FSMTP.Send%20offline_access" },
	{ "alice+x@contoso.com", "alice%2Bx%40contoso.com" },
	{ "&=?#%", "%26%3D%3F%23%25" },
	{ "\xc3\xa9\n", "%C3%A9%0A" },
};

static const struct {
	const char *in;
	const char *out;	/* NULL: refused */
} dec_cases[] = {
	{ "a%20b+c", "a b c" },
	{ "%41%7e%7E", "A~~" },
	{ "%", NULL },
	{ "%4", NULL },
	{ "%zz", NULL },
	{ "a%00b", NULL },
	{ "AADSTS65004%3a+User+declined", "AADSTS65004: User declined" },
};

static void
test_encoding(void)
{
	size_t i;
	char *s;

	for (i = 0; i < NELEM(enc_cases); i++) {
		s = oauth_login_urlencode(enc_cases[i].in);
		is_str(s, enc_cases[i].out, "urlencode %s", enc_cases[i].out);
		free(s);
	}
	for (i = 0; i < NELEM(dec_cases); i++) {
		s = oauth_login_urldecode(dec_cases[i].in,
		    strlen(dec_cases[i].in));
		is_str(s, dec_cases[i].out, "urldecode %s", dec_cases[i].in);
		free(s);
	}
}

static void
test_authorize_url(void)
{
	struct oauth_login_authz z = { "11111111-2222-3333-4444-555555555555",
	    "http://127.0.0.1:4711/",
	    "https://outlook.office.com/SMTP.Send offline_access",
	    "st&te", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
	    "alice@contoso.com" };
	char *u = oauth_login_authorize_url("https://login.microsoftonline.com"
	    "/contoso.com/oauth2/v2.0/authorize", &z);

	is_str(u, "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/"
	    "authorize?response_type=code"
	    "&client_id=11111111-2222-3333-4444-555555555555"
	    "&redirect_uri=http%3A%2F%2F127.0.0.1%3A4711%2F"
	    "&response_mode=query"
	    "&scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send%20"
	    "offline_access"
	    "&state=st%26te"
	    "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	    "&code_challenge_method=S256"
	    "&login_hint=alice%40contoso.com"
	    "&prompt=select_account", "authorize URL, every value escaped");
	free(u);
	z.login_hint = NULL;
	u = oauth_login_authorize_url("https://idp.example/auth?x=1", &z);
	ok(strncmp(u, "https://idp.example/auth?x=1&response_type=code&", 48)
	    == 0 && strstr(u, "login_hint") == NULL,
	    "a URL with a query gets '&'; no login_hint when none");
	free(u);
}

static const struct {
	const char *line;
	int rc;
	const char *path, *code, *state, *error, *desc;
} redirect_cases[] = {
	{ "GET /?code=0.AXo-abc_DEF&state=xyz HTTP/1.1", 0, "/",
	  "0.AXo-abc_DEF", "xyz", NULL, NULL },
	{ "GET /?state=xyz&code=a%2Bb&session_state=123 HTTP/1.1", 0, "/",
	  "a+b", "xyz", NULL, NULL },
	{ "GET /?error=access_denied&error_description=AADSTS65004%3a+User+"
	  "declined+to+consent.&state=s HTTP/1.1", 0, "/", NULL, "s",
	  "access_denied", "AADSTS65004: User declined to consent." },
	{ "GET /favicon.ico HTTP/1.1", 0, "/favicon.ico", NULL, NULL, NULL,
	  NULL },
	{ "GET / HTTP/1.0", 0, "/", NULL, NULL, NULL, NULL },
	{ "GET /?code=&state= HTTP/1.1", 0, "/", "", "", NULL, NULL },
	{ "GET /?code=a&code=b&state=s HTTP/1.1", -1, NULL, NULL, NULL, NULL,
	  NULL },
	{ "GET /?code&state=s HTTP/1.1", -1, NULL, NULL, NULL, NULL, NULL },
	{ "GET /?code=%zz&state=s HTTP/1.1", -1, NULL, NULL, NULL, NULL,
	  NULL },
	{ "POST /?code=a&state=s HTTP/1.1", -1, NULL, NULL, NULL, NULL, NULL },
	{ "GET http://evil/?code=a HTTP/1.1", -1, NULL, NULL, NULL, NULL,
	  NULL },
	{ "GET /?code=a&state=s HTTP/2", -1, NULL, NULL, NULL, NULL, NULL },
	{ "GET /?code=a&state=s", -1, NULL, NULL, NULL, NULL, NULL },
	{ "GET /?code=a&state=s HTTP/1.1 x", -1, NULL, NULL, NULL, NULL,
	  NULL },
	{ "GET /?code=a#frag HTTP/1.1", -1, NULL, NULL, NULL, NULL, NULL },
	{ "get /?code=a HTTP/1.1", -1, NULL, NULL, NULL, NULL, NULL },
};

static void
test_redirect(void)
{
	struct oauth_login_redirect r;
	size_t i;

	for (i = 0; i < NELEM(redirect_cases); i++) {
		const char *l = redirect_cases[i].line;
		int rc = oauth_login_parse_redirect(l, &r);

		is_int(rc, redirect_cases[i].rc, "parse rc: %s", l);
		is_str(r.path, redirect_cases[i].path, "  path");
		is_str(r.code, redirect_cases[i].code, "  code");
		is_str(r.state, redirect_cases[i].state, "  state");
		is_str(r.error, redirect_cases[i].error, "  error");
		is_str(r.error_description, redirect_cases[i].desc,
		    "  error_description");
		oauth_login_redirect_clear(&r);
	}
}

static const struct {
	const char *name, *json;
	int rc;
	const char *user_code, *uri, *message;
	long long expires_in, interval;
	const char *error;
} device_cases[] = {
	{ "Microsoft's answer",
	  "{\"user_code\":\"ABCD2345\",\"device_code\":\"DAQABAAEAAAB\","
	  "\"verification_uri\":\"https://microsoft.com/devicelogin\","
	  "\"expires_in\":900,\"interval\":5,\"message\":\"To sign in, use a "
	  "web browser to open the page https://microsoft.com/devicelogin and "
	  "enter the code ABCD2345 to authenticate.\"}", 0, "ABCD2345",
	  "https://microsoft.com/devicelogin", "To sign in, use a web browser "
	  "to open the page https://microsoft.com/devicelogin and enter the "
	  "code ABCD2345 to authenticate.", 900, 5, NULL },
	{ "Google's verification_url, numbers as strings, no interval",
	  "{\"device_code\":\"d\",\"user_code\":\"U-C\",\"verification_url\":"
	  "\"https://www.google.com/device\",\"expires_in\":\"1800\"}", 0,
	  "U-C", "https://www.google.com/device", NULL, 1800, 5, NULL },
	{ "control characters in message",
	  "{\"device_code\":\"d\",\"user_code\":\"U\",\"verification_uri\":"
	  "\"https://x\",\"message\":\"a\\u001b[2Jb\\nc\"}", 0, "U",
	  "https://x", "a?[2Jb?c", 900, 5, NULL },
	{ "error body",
	  "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000218:"
	  " The request body must contain ...\",\"error_codes\":[7000218]}",
	  1, NULL, NULL, NULL, 0, 0, "invalid_client" },
	{ "no device_code", "{\"user_code\":\"U\",\"verification_uri\":\"u\"}",
	  -1, NULL, NULL, NULL, 0, 0, NULL },
	{ "no verification_uri", "{\"device_code\":\"d\",\"user_code\":\"U\"}",
	  -1, NULL, NULL, NULL, 0, 0, NULL },
	{ "interval of the wrong type",
	  "{\"device_code\":\"d\",\"user_code\":\"U\",\"verification_uri\":"
	  "\"u\",\"interval\":true}", -1, NULL, NULL, NULL, 0, 0, NULL },
	{ "interval zero",
	  "{\"device_code\":\"d\",\"user_code\":\"U\",\"verification_uri\":"
	  "\"u\",\"interval\":0}", -1, NULL, NULL, NULL, 0, 0, NULL },
	{ "not JSON", "<html>", -1, NULL, NULL, NULL, 0, 0, NULL },
	{ "an array", "[1]", -1, NULL, NULL, NULL, 0, 0, NULL },
};

static void
test_device(void)
{
	struct oauth_device d;
	struct oauth_error oe;
	size_t i;

	for (i = 0; i < NELEM(device_cases); i++) {
		int rc;

		memset(&oe, 0, sizeof(oe));
		rc = oauth_login_parse_device(device_cases[i].json, &d, &oe);
		is_int(rc, device_cases[i].rc, "device: %s",
		    device_cases[i].name);
		is_str(d.user_code, device_cases[i].user_code, "  user_code");
		is_str(d.verification_uri, device_cases[i].uri,
		    "  verification_uri");
		is_str(d.message, device_cases[i].message, "  message");
		is_int(d.expires_in, device_cases[i].expires_in,
		    "  expires_in");
		is_int(d.interval, device_cases[i].interval, "  interval");
		if (device_cases[i].error != NULL)
			is_str(oe.error, device_cases[i].error, "  error");
		ok(rc != 0 || d.device_code != NULL, "  device_code kept");
		oauth_device_clear(&d);
	}
}

int
main(void)
{
	test_pkce();
	test_encoding();
	test_authorize_url();
	test_redirect();
	test_device();
	return done_testing();
}
