/*
 * Unit tests for diag: which catalogue entry an SMTP reply, an AADSTS
 * code or an error line of bearmail's finds; the {user}/{account}
 * substitution; and that docs/troubleshooting.md shows every entry with
 * the very text `bearmail doctor` prints.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "util.h"
#include "tests/unit/tap.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

static const struct {
	const char *msg;
	const char *what;	/* expected entry, NULL: none */
} find_cases[] = {
	{ "token refresh for account work failed: invalid_grant: AADSTS50173: "
	  "The provided grant has expired due to it being revoked: run "
	  "`bearmail login work`", "AADSTS50173" },
	{ "AADSTS700016: Application with identifier 'x' was not found",
	  "AADSTS700016" },
	{ "invalid_client: AADSTS7000218: The request body must contain "
	  "client_assertion", "AADSTS7000218" },
	{ "smtp.office365.com: authentication failed (535 5.7.139 "
	  "Authentication unsuccessful, SmtpClientAuthentication is disabled "
	  "for the Tenant.)", "535 5.7.139" },
	{ "x: authentication failed (535 5.7.3 Authentication unsuccessful)",
	  "535 5.7.3" },
	{ "sender refused (550 5.7.30 Basic authentication is not supported)",
	  "550 5.7.30" },
	{ "message refused (554 5.2.252 SendAsDeniedException.Mapi"
	  "ExceptionSendAsDenied; Failed to process message)",
	  "554 5.2.252 SendAsDenied" },
	{ "sender <a@b> refused (550 5.7.60 SMTP; Client does not have "
	  "permissions to send as this sender)", "550 5.7.60" },
	{ "x: 432 4.3.2 Concurrent connections limit exceeded", "432 4.3.2" },
	{ "localhost: server does not offer STARTTLS",
	  "server does not offer STARTTLS" },
	{ "h: server does not offer AUTH XOAUTH2 (it offers: LOGIN)",
	  "server does not offer AUTH XOAUTH2" },
	{ "127.0.0.1:1: connect: Connection refused",
	  "connect: Connection refused / timed out" },
	{ "h:587: certificate verify failed for h: Hostname mismatch",
	  "certificate verify failed" },
	{ "no token for account work: run `bearmail login work`",
	  "no token for account" },
	{ "AADSTS99999999: something new", NULL },
	{ "version 5.7.1390 of something", NULL },
	{ "identity platform unreachable: Timeout", NULL },
	{ "", NULL },
};

static const struct {
	int code;
	const char *enh, *text;
	const char *what;
} smtp_cases[] = {
	{ 535, "5.7.139", "Authentication unsuccessful, SmtpClient"
	  "Authentication is disabled for the Tenant.", "535 5.7.139" },
	{ 535, "5.7.3", "Authentication unsuccessful", "535 5.7.3" },
	{ 535, "5.7.3", NULL, "535 5.7.3" },
	{ 432, "4.3.2", "Concurrent connections limit exceeded", "432 4.3.2" },
	{ 550, "5.7.60", "SMTP; Client does not have permissions",
	  "550 5.7.60" },
	{ 554, "5.2.252", "SendAsDeniedException.MapiExceptionSendAsDenied",
	  "554 5.2.252 SendAsDenied" },
	{ 554, "5.2.0", "STOREDRV.Submission.Exception:SubmissionQuota"
	  "ExceededException", "554 5.2.0 SubmissionQuotaExceeded" },
	{ 530, "5.7.57", "Client not authenticated to send mail",
	  "530 5.7.57" },
	{ 250, "2.0.0", "OK", NULL },
	{ 550, "5.1.1", "User unknown", NULL },
	{ 535, "", "whatever", NULL },
	{ 535, NULL, NULL, NULL },
};

static const struct {
	long code;
	const char *what;
} aadsts_cases[] = {
	{ 65001, "AADSTS65001" }, { 700082, "AADSTS700082" },
	{ 53003, "AADSTS53003" }, { 50194, "AADSTS50194" },
	{ 7000222, "AADSTS7000222" }, { 700027, "AADSTS700027" },
	{ 0, NULL }, { 12345, NULL },
};

#define N(x) (sizeof(x) / sizeof((x)[0]))

static const char *
what_of(const struct diag *d)
{
	return d ? d->what : NULL;
}

static void
test_lookups(void)
{
	size_t i;

	for (i = 0; i < N(find_cases); i++)
		is_str(what_of(diag_find(find_cases[i].msg)),
		    find_cases[i].what, "find: %.50s", find_cases[i].msg);
	ok(diag_find(NULL) == NULL, "find: NULL");
	for (i = 0; i < N(smtp_cases); i++)
		is_str(what_of(diag_smtp(smtp_cases[i].code, smtp_cases[i].enh,
		    smtp_cases[i].text)), smtp_cases[i].what, "smtp: %d %s",
		    smtp_cases[i].code, smtp_cases[i].enh ?
		    smtp_cases[i].enh : "-");
	for (i = 0; i < N(aadsts_cases); i++)
		is_str(what_of(diag_aadsts(aadsts_cases[i].code)),
		    aadsts_cases[i].what, "aadsts: %ld", aadsts_cases[i].code);
}

static void
test_fix(void)
{
	const struct diag *d = diag_smtp(535, "5.7.139", NULL);
	char *fix = diag_fix(d, "alice@contoso.com", "work");

	ok(strstr(fix, "Set-CASMailbox -Identity alice@contoso.com "
	    "-SmtpClientAuthenticationDisabled $false") != NULL,
	    "5.7.139 fix names the mailbox");
	ok(strstr(fix, "{") == NULL, "5.7.139 fix: no placeholder left");
	free(fix);
	fix = diag_fix(diag_aadsts(70000), "u@x", "home");
	is_str(fix, "run `bearmail login home`", "login advice names the "
	    "account");
	free(fix);
	fix = diag_fix(diag_aadsts(70000), NULL, NULL);
	is_str(fix, "run `bearmail login {account}`", "NULL leaves the "
	    "placeholder");
	free(fix);
}

/* Every entry complete, AADSTS codes unique, and in the docs verbatim. */
static void
test_table_and_docs(void)
{
	struct bm_err e = { 0, "" };
	const struct diag *t;
	char *doc = NULL;
	size_t n, i, j;
	int complete = 1, unique = 1, found = 1;

	t = diag_table(&n);
	ok(n >= 40, "catalogue has %zu entries", n);
	for (i = 0; i < n; i++) {
		complete &= t[i].what && t[i].cause && t[i].fix &&
		    (t[i].aadsts || t[i].enh || t[i].word);
		for (j = i + 1; j < n; j++)
			unique &= t[i].aadsts == 0 || t[i].aadsts != t[j].aadsts;
	}
	ok(complete, "every entry has a key, what, cause and fix");
	ok(unique, "AADSTS codes are unique");
	ok(read_small_file(TOP_SRCDIR "/docs/troubleshooting.md", 1 << 20,
	    &doc, &e) == 0, "docs/troubleshooting.md readable");
	for (i = 0; doc != NULL && i < n; i++) {
		int here = strstr(doc, t[i].what) && strstr(doc, t[i].cause) &&
		    strstr(doc, t[i].fix);

		if (!here)
			printf("# not in the docs verbatim: %s\n", t[i].what);
		found &= here;
	}
	ok(doc != NULL && found, "the docs show every entry's text");
	free(doc);
}

int
main(void)
{
	test_lookups();
	test_fix();
	test_table_and_docs();
	return done_testing();
}
