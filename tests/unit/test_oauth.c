/*
 * Unit tests for oauth: token endpoint answers (Microsoft success and
 * error bodies, malformed input), refused requests (one line and the
 * failure policy's verdict), and
 * the refresh grant's failure paths that need no network.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "oauth.h"
#include "tests/unit/tap.h"

#define NOW 1700000000LL

static const struct {
	const char *name;
	const char *json;
	int rc;
	const char *access;	/* expected access token (rc 0) */
	const char *refresh;	/* expected refresh token (rc 0) */
	long long expires_at;	/* expected (rc 0) */
	const char *error;	/* expected oe.error (rc 1) */
	long aadsts;		/* expected oe.aadsts (rc 1) */
	const char *desc;	/* expected oe.description (rc 1) */
} parse_cases[] = {
	{ "ms success, expires_in number",
	  "{\"token_type\":\"Bearer\",\"scope\":\"https://outlook.office.com/"
	  "SMTP.Send\",\"expires_in\":4383,\"ext_expires_in\":4383,"
	  "\"access_token\":\"eyJ0eXAi.AT\",\"refresh_token\":\"0.AXoA.RT2\"}",
	  0, "eyJ0eXAi.AT", "0.AXoA.RT2", NOW + 4383, NULL, 0, NULL },
	{ "expires_in as a string",
	  "{\"token_type\":\"Bearer\",\"expires_in\":\"3599\","
	  "\"access_token\":\"AT\",\"refresh_token\":\"RT2\"}",
	  0, "AT", "RT2", NOW + 3599, NULL, 0, NULL },
	{ "missing refresh_token keeps the old one",
	  "{\"token_type\":\"Bearer\",\"expires_in\":3600,"
	  "\"access_token\":\"AT\"}",
	  0, "AT", "OLD-RT", NOW + 3600, NULL, 0, NULL },
	{ "extra fields, id_token, nested objects",
	  "{\"token_type\":\"bearer\",\"expires_in\":60,\"foo\":{\"a\":[1,2]},"
	  "\"id_token\":\"x.y.z\",\"access_token\":\"AT\",\"refresh_token\":"
	  "\"RT\",\"ext_expires_in\":\"60\"}",
	  0, "AT", "RT", NOW + 60, NULL, 0, NULL },
	{ "no expires_in: one hour assumed",
	  "{\"access_token\":\"AT\"}", 0, "AT", "OLD-RT", NOW + 3600,
	  NULL, 0, NULL },
	{ "whitespace around the document",
	  "\n {\"access_token\":\"AT\",\"expires_in\":1}\r\n", 0, "AT",
	  "OLD-RT", NOW + 1, NULL, 0, NULL },
	{ "invalid_grant AADSTS70000",
	  "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70000: "
	  "The provided value for the input parameter 'refresh_token' or "
	  "'assertion' is not valid.\\r\\nTrace ID: 0a1b\\r\\nCorrelation ID: "
	  "c\\r\\nTimestamp: 2024-01-01 00:00:00Z\",\"error_codes\":[70000],"
	  "\"timestamp\":\"2024-01-01 00:00:00Z\",\"trace_id\":\"0a1b\","
	  "\"correlation_id\":\"c\",\"error_uri\":\"https://login."
	  "microsoftonline.com/error?code=70000\"}",
	  1, NULL, NULL, 0, "invalid_grant", 70000,
	  "AADSTS70000: The provided value for the input parameter "
	  "'refresh_token' or 'assertion' is not valid." },
	{ "refresh token expired AADSTS700082",
	  "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS700082: "
	  "The refresh token has expired due to inactivity.\\nTrace ID: x\","
	  "\"error_codes\":[700082]}",
	  1, NULL, NULL, 0, "invalid_grant", 700082,
	  "AADSTS700082: The refresh token has expired due to inactivity." },
	{ "temporarily_unavailable without codes",
	  "{\"error\":\"temporarily_unavailable\",\"error_description\":"
	  "\"try later\"}",
	  1, NULL, NULL, 0, "temporarily_unavailable", 0, "try later" },
	{ "AADSTS50196 taken from the description",
	  "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS50196: "
	  "The server terminated an operation because it encountered a client "
	  "request loop.\"}",
	  1, NULL, NULL, 0, "invalid_request", 50196,
	  "AADSTS50196: The server terminated an operation because it "
	  "encountered a client request loop." },
	{ "control characters in the description are neutralised",
	  "{\"error\":\"x\\u001b[31m\",\"error_description\":\"a\\tb\\u0007\","
	  "\"error_codes\":\"nope\"}",
	  1, NULL, NULL, 0, "x?[31m", 0, "a?b?" },
	{ "error wins over access_token",
	  "{\"error\":\"invalid_client\",\"access_token\":\"AT\"}",
	  1, NULL, NULL, 0, "invalid_client", 0, "" },
	{ "not JSON", "<html>502 Bad Gateway</html>", -1, NULL, NULL, 0,
	  NULL, 0, NULL },
	{ "empty", "", -1, NULL, NULL, 0, NULL, 0, NULL },
	{ "truncated", "{\"access_token\":\"AT\"", -1, NULL, NULL, 0, NULL, 0,
	  NULL },
	{ "trailing garbage", "{\"access_token\":\"AT\"} x", -1, NULL, NULL, 0,
	  NULL, 0, NULL },
	{ "an array", "[{\"access_token\":\"AT\"}]", -1, NULL, NULL, 0, NULL,
	  0, NULL },
	{ "only a refresh_token (token import)", "{\"refresh_token\":\"RT\"}",
	  0, NULL, "RT", NOW, NULL, 0, NULL },
	{ "neither token", "{\"token_type\":\"Bearer\",\"expires_in\":3600}",
	  -1, NULL, NULL, 0, NULL, 0, NULL },
	{ "empty access_token", "{\"access_token\":\"\"}", -1, NULL, NULL, 0,
	  NULL, 0, NULL },
	{ "access_token a number", "{\"access_token\":42}", -1, NULL, NULL, 0,
	  NULL, 0, NULL },
	{ "refresh_token an object",
	  "{\"access_token\":\"AT\",\"refresh_token\":{}}", -1, NULL, NULL, 0,
	  NULL, 0, NULL },
	{ "expires_in a float", "{\"access_token\":\"AT\",\"expires_in\":1.5}",
	  -1, NULL, NULL, 0, NULL, 0, NULL },
	{ "expires_in a bool", "{\"access_token\":\"AT\",\"expires_in\":true}",
	  -1, NULL, NULL, 0, NULL, 0, NULL },
	{ "expires_in negative",
	  "{\"access_token\":\"AT\",\"expires_in\":-5}", -1, NULL, NULL, 0,
	  NULL, 0, NULL },
	{ "expires_in huge",
	  "{\"access_token\":\"AT\",\"expires_in\":99999999999999999999999}",
	  -1, NULL, NULL, 0, NULL, 0, NULL },
	{ "expires_in huge string",
	  "{\"access_token\":\"AT\",\"expires_in\":\"9223372036854775807\"}",
	  -1, NULL, NULL, 0, NULL, 0, NULL },
	{ "expires_in not a number string",
	  "{\"access_token\":\"AT\",\"expires_in\":\"3600s\"}", -1, NULL, NULL,
	  0, NULL, 0, NULL },
	{ "token_type not Bearer",
	  "{\"access_token\":\"AT\",\"token_type\":\"MAC\"}", -1, NULL, NULL,
	  0, NULL, 0, NULL },
	{ "error not a string", "{\"error\":1}", -1, NULL, NULL, 0, NULL, 0,
	  NULL },
	{ "error_description not a string",
	  "{\"error\":\"invalid_grant\",\"error_description\":[]}", -1, NULL,
	  NULL, 0, NULL, 0, NULL },
	{ "nested too deep",
	  "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"
	  "\"access_token\":\"AT\"}", -1, NULL, NULL, 0, NULL, 0, NULL },
};

static void
test_parse(void)
{
	size_t i;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		struct token_rec t = { 0 };
		struct oauth_error oe;
		int rc;

		memset(&oe, 0, sizeof(oe));
		t.refresh_token = xstrdup("OLD-RT");
		t.access_token = xstrdup("OLD-AT");
		rc = oauth_parse_response(parse_cases[i].json, NOW, &t, &oe);
		is_int(rc, parse_cases[i].rc, "%s: rc", parse_cases[i].name);
		if (rc == 0) {
			is_str(t.access_token, parse_cases[i].access,
			    "%s: access token", parse_cases[i].name);
			is_str(t.refresh_token, parse_cases[i].refresh,
			    "%s: refresh token", parse_cases[i].name);
			is_int(t.expires_at, parse_cases[i].expires_at,
			    "%s: expires_at", parse_cases[i].name);
			is_int(t.updated_at, NOW, "%s: updated_at",
			    parse_cases[i].name);
		} else if (rc == 1) {
			is_str(oe.error, parse_cases[i].error, "%s: error",
			    parse_cases[i].name);
			is_int(oe.aadsts, parse_cases[i].aadsts, "%s: aadsts",
			    parse_cases[i].name);
			is_str(oe.description, parse_cases[i].desc,
			    "%s: description", parse_cases[i].name);
		}
		if (rc != 0)
			ok(strcmp(t.access_token, "OLD-AT") == 0 &&
			    strcmp(t.refresh_token, "OLD-RT") == 0,
			    "%s: record untouched", parse_cases[i].name);
		token_rec_clear(&t);
	}
}

static void
test_scope(void)
{
	struct token_rec t = { 0 };

	t.scope = xstrdup("old");
	oauth_parse_response("{\"access_token\":\"A\",\"scope\":\"new s\"}",
	    NOW, &t, NULL);
	is_str(t.scope, "new s", "scope from the answer replaces the old");
	token_rec_clear(&t);
	ok(t.scope == NULL && t.access_token == NULL,
	    "token_rec_clear empties the record");
}

/* An identity platform that quotes what it was sent: the refresh token
 * and the secret are gone from the line, whole or in pieces. */
static void
test_refused_quoting(void)
{
	static const char rt[] = "1.AQ0AREFRESH-TOKEN-0123456789abcdefghij";
	static const char secret[] = "Zq8~client-secret-value-0123456789";
	const char *sent[] = { rt, secret, NULL };
	struct account a;
	struct bm_err e;
	char *body;

	memset(&a, 0, sizeof(a));
	a.name = (char *)"work";
	body = xasprintf("{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"AADSTS70000: refresh_token=%s client_secret=%.20s (and %s)\"}",
	    rt, secret, secret + 10);
	oauth_refused(&a, "token refresh", 400, body, NULL, sent, &e);
	ok(strstr(e.msg, "REFRESH-TOKEN-0123") == NULL &&
	    strstr(e.msg, "client-secret-value") == NULL &&
	    strstr(e.msg, "[redacted]") != NULL, "a quoted refresh token and "
	    "secret are redacted: %s", e.msg);
	ok(e.v.login_needed && strstr(e.msg, "run `bearmail login work`"),
	    "and the verdict stands");
	free(body);
}

/* A refused request becomes one line and the policy's verdict. */
static const struct {
	long status;
	const char *body;
	int want, temporary, login;
	const char *msg;
} refused_cases[] = {
	{ 400, "{\"error\":\"invalid_grant\",\"error_description\":"
	  "\"AADSTS70000: The provided grant is invalid.\\r\\nTrace ID: x\","
	  "\"error_codes\":[70000]}", EX_CONFIG, 0, 1,
	  "token refresh for account work failed: invalid_grant: AADSTS70000: "
	  "The provided grant is invalid: run `bearmail login work`" },
	{ 400, "{\"error\":\"invalid_grant\",\"error_description\":"
	  "\"AADSTS50173: revoked\"}", EX_CONFIG, 0, 1,
	  "token refresh for account work failed: invalid_grant: AADSTS50173: "
	  "revoked: run `bearmail login work`" },
	{ 503, "{\"error\":\"temporarily_unavailable\",\"error_description\":"
	  "\"AADSTS90033: transient\",\"error_codes\":[90033]}", EX_TEMPFAIL,
	  1, 0, "token refresh for account work failed: temporarily_"
	  "unavailable: AADSTS90033: transient: nothing: bearmail tries again "
	  "later; if it persists, see https://status.cloud.microsoft" },
	{ 502, "<html>Bad gateway</html>", EX_TEMPFAIL, 1, 0,
	  "token refresh for account work failed: HTTP 502 from https://h/t: "
	  "nothing: bearmail tries again later; if it persists, see "
	  "https://status.cloud.microsoft" },
	{ 404, "not found", EX_CONFIG, 0, 0, "token refresh for account work "
	  "failed: HTTP 404 from https://h/t: check authority and token_url "
	  "of account work" },
};

static void
test_refused(void)
{
	struct account a;
	struct bm_err e;
	size_t i;

	memset(&a, 0, sizeof(a));
	a.name = (char *)"work";
	for (i = 0; i < sizeof(refused_cases) / sizeof(refused_cases[0]);
	    i++) {
		is_int(oauth_refused(&a, "token refresh", refused_cases[i].status,
		    refused_cases[i].body, "https://h/t", NULL, &e),
		    refused_cases[i].want, "refused %ld: code",
		    refused_cases[i].status);
		is_str(e.msg, refused_cases[i].msg, "refused %ld: the line",
		    refused_cases[i].status);
		ok(e.v.temporary == refused_cases[i].temporary &&
		    e.v.login_needed == refused_cases[i].login, "refused %ld: "
		    "the verdict", refused_cases[i].status);
	}
}

/* Refresh failures decided before or at the network, without a server. */
static void
test_refresh_offline(void)
{
	static const struct {
		const char *name;
		const char *refresh, *client_id, *tenant, *token_url;
		int want;
		const char *msg;
	} cases[] = {
		{ "no refresh token", NULL, "cid", "t", NULL, EX_CONFIG,
		  "no refresh token for account work: run `bearmail login "
		  "work` (or `bearmail token import work`)" },
		{ "no client_id", "RT", NULL, "t", NULL, EX_CONFIG,
		  "account work has no client_id" },
		{ "tenant with a slash", "RT", "cid", "a/b", NULL, EX_CONFIG,
		  "account work: no token endpoint for tenant \"a/b\": set "
		  "tenant (a domain, a GUID, common or organizations) or "
		  "token_url" },
		{ "plain http", "RT", "cid", "t", "http://127.0.0.1:1/x?secret",
		  EX_CONFIG, "token endpoint http://127.0.0.1:1/x is not an "
		  "https URL" },
		{ "nothing listening", "RT", "cid", "t",
		  "https://127.0.0.1:1/t/oauth2/v2.0/token?q=1", EX_TEMPFAIL,
		  NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct account a;
		struct token_rec old = { 0 }, out = { 0 };
		struct bm_err e = { 0 };

		memset(&a, 0, sizeof(a));
		a.name = (char *)"work";
		a.scope = (char *)"https://outlook.office.com/SMTP.Send "
		    "offline_access";
		a.client_id = (char *)cases[i].client_id;
		a.tenant = (char *)cases[i].tenant;
		a.token_url = (char *)cases[i].token_url;
		a.timeout = 5;
		old.refresh_token = (char *)cases[i].refresh;
		is_int(oauth_refresh(&a, &old, &out, &e), cases[i].want,
		    "refresh: %s: code", cases[i].name);
		if (cases[i].msg != NULL)
			is_str(e.msg, cases[i].msg, "refresh: %s: message",
			    cases[i].name);
		else
			ok(strncmp(e.msg, "identity platform unreachable: ",
			    31) == 0 && strstr(e.msg, "(https://127.0.0.1:1/t/"
			    "oauth2/v2.0/token)") != NULL, "refresh: %s: "
			    "message \"%s\"", cases[i].name, e.msg);
		ok(out.access_token == NULL, "refresh: %s: no token",
		    cases[i].name);
	}
}

int
main(void)
{
	test_parse();
	test_scope();
	test_refused();
	test_refused_quoting();
	test_refresh_offline();
	return done_testing();
}
