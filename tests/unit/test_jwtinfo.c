/*
 * Unit tests for jwtinfo: claims of Microsoft-shaped access tokens
 * (delegated and app-only), arrays and odd types, and strings that are
 * not JWTs at all.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "jwtinfo.h"
#include "util.h"
#include "tests/unit/tap.h"

#define HDR "{\"typ\":\"JWT\",\"alg\":\"RS256\"}"

static const struct {
	const char *name;
	const char *payload;	/* JSON, encoded into a token; NULL: raw */
	const char *raw;	/* the token as is, when payload is NULL */
	int rc;
	const char *aud, *scp, *roles, *user, *tid, *appid;
	long long exp;
	int exchange;		/* jwtinfo_aud_is_exchange */
	int send;		/* SMTP.Send or SMTP.SendAsApp permitted */
} cases[] = {
	{ "delegated Exchange token",
	  "{\"aud\":\"https://outlook.office.com\",\"scp\":\"SMTP.Send "
	  "offline_access\",\"upn\":\"alice@contoso.com\",\"unique_name\":"
	  "\"x@y\",\"tid\":\"72f988bf-86f1-41af-91ab-2d7cd011db47\","
	  "\"appid\":\"11111111-2222-3333-4444-555555555555\","
	  "\"exp\":1700003600}", NULL, 0,
	  "https://outlook.office.com", "SMTP.Send offline_access", NULL,
	  "alice@contoso.com", "72f988bf-86f1-41af-91ab-2d7cd011db47",
	  "11111111-2222-3333-4444-555555555555", 1700003600, 1, 1 },
	{ "app-only token: roles array, azp, trailing slash",
	  "{\"aud\":\"https://outlook.office365.com/\",\"roles\":"
	  "[\"Mail.Read\",\"SMTP.SendAsApp\"],\"azp\":\"app\",\"exp\":5}",
	  NULL, 0, "https://outlook.office365.com/", NULL,
	  "Mail.Read SMTP.SendAsApp", NULL, NULL, "app", 5, 1, 1 },
	{ "Graph token: wrong audience, no SMTP scope",
	  "{\"aud\":\"00000003-0000-0000-c000-000000000000\",\"scp\":"
	  "\"Mail.Send User.Read\",\"preferred_username\":\"bob@x\"}", NULL, 0,
	  "00000003-0000-0000-c000-000000000000", "Mail.Send User.Read", NULL,
	  "bob@x", NULL, NULL, 0, 0, 0 },
	{ "scope word must match whole: SMTP.SendX",
	  "{\"aud\":[\"https://outlook.office.com\",\"other\"],\"scp\":"
	  "\"SMTP.SendX XSMTP.Send\",\"unique_name\":\"u@x\"}", NULL, 0,
	  "https://outlook.office.com", "SMTP.SendX XSMTP.Send", NULL, "u@x",
	  NULL, NULL, 0, 1, 0 },
	{ "Exchange app id as audience, claims of wrong types",
	  "{\"aud\":\"00000002-0000-0ff1-ce00-000000000000\",\"scp\":7,"
	  "\"upn\":[1],\"exp\":\"soon\"}", NULL, 0,
	  "00000002-0000-0ff1-ce00-000000000000", NULL, NULL, NULL, NULL,
	  NULL, 0, 1, 0 },
	{ "lookalike audience", "{\"aud\":\"https://outlook.office.com.evil\"}",
	  NULL, 0, "https://outlook.office.com.evil", NULL, NULL, NULL, NULL,
	  NULL, 0, 0, 0 },
	{ "payload is an array", "[1,2]", NULL, -1,
	  NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
	{ "payload is not JSON", "not json", NULL, -1,
	  NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
	{ "opaque consumer token", NULL, "EwBwA8l6BAAU7p9QDpi/D7xJLE", -1,
	  NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
	{ "two segments only", NULL, "eyJhIjoxfQ.eyJhIjoxfQ", -1,
	  NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
	{ "four segments", NULL, "a.eyJhIjoxfQ.b.c", -1,
	  NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
	{ "bad base64url", NULL, "a.e*J.b", -1,
	  NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
	{ "empty payload", NULL, "a..b", -1,
	  NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
	{ "empty string", NULL, "", -1,
	  NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static char *
make_token(const char *payload)
{
	char *h = base64url_encode(HDR, strlen(HDR));
	char *p = base64url_encode(payload, strlen(payload));
	char *t = xasprintf("%s.%s.c2lnbmF0dXJl", h, p);

	free(h);
	free(p);
	return t;
}

static void
check(size_t i)
{
	struct jwtinfo j;
	char *tok = cases[i].payload ? make_token(cases[i].payload) :
	    xstrdup(cases[i].raw);
	const char *n = cases[i].name;

	is_int(jwtinfo_decode(tok, &j), cases[i].rc, "%s: rc", n);
	is_str(j.aud, cases[i].aud, "%s: aud", n);
	is_str(j.scp, cases[i].scp, "%s: scp", n);
	is_str(j.roles, cases[i].roles, "%s: roles", n);
	is_str(j.user, cases[i].user, "%s: user", n);
	is_str(j.tid, cases[i].tid, "%s: tid", n);
	is_str(j.appid, cases[i].appid, "%s: appid", n);
	is_int(j.exp, cases[i].exp, "%s: exp", n);
	is_int(jwtinfo_aud_is_exchange(&j), cases[i].exchange,
	    "%s: audience is Exchange", n);
	is_int(jwtinfo_has_permission(&j, "SMTP.Send") ||
	    jwtinfo_has_permission(&j, "SMTP.SendAsApp"), cases[i].send,
	    "%s: may send", n);
	jwtinfo_free(&j);
	free(tok);
}

int
main(void)
{
	struct jwtinfo j;
	size_t i;

	for (i = 0; i < NCASES; i++)
		check(i);
	ok(jwtinfo_decode(NULL, &j) == -1 && j.aud == NULL, "NULL token");
	jwtinfo_free(&j);
	return done_testing();
}
