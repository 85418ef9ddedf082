/*
 * Unit tests for verdict, the failure policy: what each SMTP reply means at
 * each stage, what a lost connection means, the identity platform's
 * refusals, bearmail's own failures, the recorder of one attempt's outcome
 * per recipient, the catalogue's lookups and fixes, and that
 * docs/troubleshooting.md shows every row with the very text `bearmail
 * doctor` prints.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "verdict.h"
#include "util.h"
#include "tests/unit/tap.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

#define N(x) (sizeof(x) / sizeof((x)[0]))

/* flags of a verdict, for the tables */
#define T 1   /* temporary */
#define H 2   /* throttled */
#define F 4   /* fresh token */
#define L 8   /* login needed */

static int
flags_of(const struct bm_verdict *v)
{
	return (v->temporary ? T : 0) | (v->throttled ? H : 0) |
	    (v->fresh_token ? F : 0) | (v->login_needed ? L : 0);
}

static const char *
what_of(const struct trouble *t)
{
	return t ? t->what : NULL;
}

/* ------------------------------------------------------ SMTP replies */

static const struct {
	enum verdict_stage st;
	int code;
	const char *enh, *text;
	int ex, flags;
	const char *row;
} replies[] = {
	/* one recipient answered 451: it waits, the others go on */
	{ STAGE_RCPT, 451, "4.4.1", "Try later", EX_TEMPFAIL, T, NULL },
	{ STAGE_RCPT, 451, "", NULL, EX_TEMPFAIL, T, NULL },
	{ STAGE_RCPT, 550, "5.1.1", "User unknown", EX_NOUSER, 0, NULL },
	{ STAGE_RCPT, 550, "5.1.10", "RESOLVER.ADR.RecipientNotFound",
	  EX_NOUSER, 0, NULL },
	{ STAGE_RCPT, 553, "", "mailbox name not allowed", EX_NOUSER, 0,
	  NULL },
	{ STAGE_RCPT, 452, "4.5.3", "Too many recipients", EX_TEMPFAIL, T,
	  NULL },
	{ STAGE_MAIL, 421, "4.3.2", "Service not available", EX_TEMPFAIL,
	  T, NULL },
	{ STAGE_MAIL, 550, "5.7.60", "Client does not have permissions to "
	  "send as this sender", EX_NOPERM, 0, "550 5.7.60" },
	{ STAGE_DOT, 554, "5.2.252", "SendAsDenied; alice not allowed to "
	  "send as bob", EX_NOPERM, 0, "554 5.2.252 SendAsDenied" },
	{ STAGE_DOT, 552, "5.3.4", "Message size exceeds fixed maximum "
	  "message size", EX_DATAERR, 0, NULL },
	{ STAGE_DOT, 552, "", "too big", EX_DATAERR, 0, NULL },
	{ STAGE_DOT, 554, "5.6.0", "Corrupt message content", EX_DATAERR, 0,
	  NULL },
	/* Exchange's quota: 5xx, temporary in effect, and slower */
	{ STAGE_DOT, 554, "5.2.0", "STOREDRV.Submission.Exception:Submission"
	  "QuotaExceededException", EX_TEMPFAIL, T | H,
	  "554 5.2.0 SubmissionQuotaExceeded" },
	{ STAGE_DOT, 554, "5.2.2", "mailbox full", EX_UNAVAILABLE, 0,
	  "554 5.2.2" },
	{ STAGE_DOT, 550, "", "Requested action not taken", EX_UNAVAILABLE,
	  0, NULL },
	{ STAGE_DOT, 554, "5.3.0", "Other", EX_UNAVAILABLE, 0, NULL },
	{ STAGE_DATA, 500, "5.5.2", "Command unrecognized", EX_PROTOCOL, 0,
	  NULL },
	{ STAGE_MAIL, 501, "", "Syntax error", EX_PROTOCOL, 0, NULL },
	{ STAGE_RCPT, 432, "4.3.2", "Concurrent connections limit exceeded",
	  EX_TEMPFAIL, T | H, "432 4.3.2" },
	/* out of step: a 3xx where a verdict was due waits, too */
	{ STAGE_RCPT, 354, "", "go ahead", EX_TEMPFAIL, T, NULL },
	{ STAGE_RCPT, 250, "2.1.5", "Recipient OK", 0, 0, NULL },
	{ STAGE_DOT, 250, "2.0.0", "OK", 0, 0, NULL },
	/* the session: nothing is refused, the message waits */
	{ STAGE_AUTH, 535, "5.7.3", "Authentication unsuccessful", EX_NOPERM,
	  T | F, "535 5.7.3" },
	{ STAGE_AUTH, 535, "5.7.139", "SmtpClientAuthentication is disabled "
	  "for the Tenant", EX_NOPERM, T, "535 5.7.139" },
	{ STAGE_AUTH, 535, "", "whatever", EX_NOPERM, T, NULL },
	{ STAGE_GREETING, 554, "5.7.1", "go away", EX_NOPERM, T, NULL },
	{ STAGE_EHLO, 501, "", "bad name", EX_PROTOCOL, T, NULL },
	{ STAGE_RSET, 500, "", "what?", EX_PROTOCOL, T, NULL },
	{ STAGE_STARTTLS, 454, "4.7.0", "TLS not available", EX_TEMPFAIL, T,
	  NULL },
};

static void
test_replies(void)
{
	struct bm_verdict v;
	size_t i;

	for (i = 0; i < N(replies); i++) {
		int ex = verdict_of_reply(replies[i].st, replies[i].code,
		    replies[i].enh, replies[i].text, &v);

		is_int(ex, replies[i].ex, "stage %d, %d %s: %s",
		    replies[i].st, replies[i].code, replies[i].enh,
		    verdict_exit_name(replies[i].ex));
		is_int(flags_of(&v), replies[i].flags, "stage %d, %d %s: "
		    "flags", replies[i].st, replies[i].code, replies[i].enh);
		is_str(what_of(v.row), replies[i].row, "stage %d, %d %s: row",
		    replies[i].st, replies[i].code, replies[i].enh);
	}
}

static void
test_reply_message(void)
{
	struct bm_err e = { 0 };

	is_int(verdict_reply(&e, STAGE_RCPT, 550, "5.1.1", "User unknown",
	    NULL, "recipient bob@example.com refused"), EX_NOUSER,
	    "verdict_reply: the code");
	is_str(e.msg, "recipient bob@example.com refused (550 5.1.1 User "
	    "unknown)", "verdict_reply: the line quotes the server");
	ok(!e.v.temporary && e.v.stage == STAGE_RCPT, "verdict_reply: the "
	    "verdict and its stage");
	verdict_reply(&e, STAGE_AUTH, 535, "5.7.139", "disabled", "h",
	    "authentication failed");
	is_str(e.msg, "h: authentication failed (535 5.7.139 disabled)",
	    "verdict_reply: the host first");
	ok(e.v.temporary, "verdict_reply: a session failure waits");
}

/* ------------------------------------------------------ lost, local */

static void
test_lost(void)
{
	static const enum verdict_stage stages[] = { STAGE_CONNECT,
	    STAGE_GREETING, STAGE_AUTH, STAGE_MAIL, STAGE_RCPT, STAGE_DATA,
	    STAGE_BODY, STAGE_DOT };
	struct bm_err e;
	size_t i;

	for (i = 0; i < N(stages); i++) {
		err_set(&e, EX_PROTOCOL, "h: malformed reply from the server");
		is_int(verdict_lost(&e, stages[i]), EX_TEMPFAIL, "lost at "
		    "stage %d: EX_TEMPFAIL", stages[i]);
		ok(e.v.temporary && e.v.stage == stages[i], "lost at stage "
		    "%d: temporary (after the dot: at least once)", stages[i]);
	}
	verdict_fail(&e, VK_CERT, NULL, "h:587: certificate verify failed");
	verdict_lost(&e, STAGE_STARTTLS);
	is_str(what_of(e.v.row), "certificate verify failed", "lost: the "
	    "row of the cause stays");
}

static const struct {
	enum verdict_kind k;
	const char *account;
	int ex, flags;
	const char *msg;
} kinds[] = {
	{ VK_NO_TOKEN, "work", EX_CONFIG, L, "no token for account work: run "
	  "`bearmail login work` (or `bearmail token import work`)" },
	{ VK_RESOLVE, NULL, EX_TEMPFAIL, T, "x" },
	{ VK_CONNECT, NULL, EX_TEMPFAIL, T, "x" },
	{ VK_NO_STARTTLS, NULL, EX_TEMPFAIL, T, "x" },
	{ VK_NO_AUTH, NULL, EX_UNAVAILABLE, 0, "x" },
	{ VK_TOO_BIG, NULL, EX_DATAERR, 0, "x" },
	{ VK_NO_SMTPUTF8, NULL, EX_DATAERR, 0, "x" },
	{ VK_BUSY, "work", EX_TEMPFAIL, T, "x" },
	{ VK_LOGIN_ENDED, "home", EX_CONFIG, L, "x: run `bearmail login home` "
	  "again" },
	{ VK_IDP_UNREACHABLE, "work", EX_TEMPFAIL, T, "x" },
	{ VK_NO_SECRET, "sec", EX_CONFIG, 0, "x: store it with `bearmail "
	  "secret set sec` (it reads the secret on stdin), or `secret-tool "
	  "store --label='bearmail secret sec' service bearmail name sec`" },
};

static void
test_kinds(void)
{
	struct bm_err e;
	size_t i;

	for (i = 0; i < N(kinds); i++) {
		is_int(verdict_fail(&e, kinds[i].k, kinds[i].account, "x"),
		    kinds[i].ex, "kind %d: %s", kinds[i].k,
		    verdict_exit_name(kinds[i].ex));
		is_int(flags_of(&e.v), kinds[i].flags, "kind %d: flags",
		    kinds[i].k);
		is_str(e.msg, kinds[i].k == VK_NO_TOKEN ? e.msg :
		    kinds[i].msg, "kind %d: the line", kinds[i].k);
		ok(e.v.row != NULL && e.v.row->kind == kinds[i].k,
		    "kind %d: its row", kinds[i].k);
	}
	verdict_fail(&e, VK_NO_TOKEN, "work", "no token for account %s",
	    "work");
	is_str(e.msg, kinds[0].msg, "no token: the line names the fix");
	err_set(&e, EX_CONFIG, "plain");
	ok(!e.v.temporary && e.v.row == NULL, "err_set: the plain verdict");
	err_set(&e, EX_TEMPFAIL, "plain");
	ok(e.v.temporary, "err_set: EX_TEMPFAIL is temporary");
	verdict_session(&e);
	err_set(&e, EX_CONFIG, "%s", e.msg);
	is_str(e.msg, "plain", "err_set: its own message as an argument");
	verdict_fail(&e, VK_CERT, NULL, "cert");
	err_prefix(&e, "doctor");
	ok(strcmp(e.msg, "doctor: cert") == 0 && e.v.row != NULL &&
	    e.v.temporary, "err_prefix keeps code and verdict");
}

/* --------------------------------------------------- identity platform */

static const struct {
	long status;
	const char *error;
	long aadsts;
	int ex, flags;
	const char *tail;      /* the line ends so */
} oauths[] = {
	{ 400, "invalid_grant", 70000, EX_CONFIG, L,
	  ": run `bearmail login work`" },
	{ 400, "invalid_grant", 50173, EX_CONFIG, L,
	  ": run `bearmail login work`" },
	{ 400, "invalid_grant", 700082, EX_CONFIG, L,
	  ": run `bearmail login work`" },
	{ 400, "invalid_grant", 0, EX_CONFIG, L,
	  ": run `bearmail login work`" },
	{ 400, "interaction_required", 50076, EX_CONFIG, L,
	  " and complete the MFA prompt" },
	{ 400, "invalid_grant", 501481, EX_CONFIG, L,
	  "if it repeats, report it as a bug" },
	{ 400, "invalid_grant", 50148, EX_CONFIG, L,
	  "if it repeats, report it as a bug" },
	{ 400, "invalid_scope", 700022, EX_CONFIG, 0,
	  "https://outlook.office.com/SMTP.Send offline_access" },
	{ 401, "invalid_client", 7000215, EX_CONFIG, 0,
	  "client_secret_file of account work" },
	{ 401, "invalid_client", 700027, EX_CONFIG, 0,
	  "at the registered pair" },
	{ 400, "unauthorized_client", 700016, EX_CONFIG, 0,
	  "unless it is multi-tenant)" },
	{ 400, "invalid_request", 90055, EX_TEMPFAIL, T | H, "status."
	  "cloud.microsoft" },
	{ 503, "temporarily_unavailable", 90033, EX_TEMPFAIL, T,
	  "status.cloud.microsoft" },
	{ 503, "temporarily_unavailable", 0, EX_TEMPFAIL, T,
	  "status.cloud.microsoft" },
	{ 500, "server_error", 0, EX_TEMPFAIL, T, "status.cloud.microsoft" },
	{ 429, "something", 0, EX_TEMPFAIL, T | H, "status.cloud.microsoft" },
	{ 502, NULL, 0, EX_TEMPFAIL, T, "status.cloud.microsoft" },
	{ 404, NULL, 0, EX_CONFIG, 0, "authority and token_url of account "
	  "work" },
	{ 400, "invalid_request", 99999, EX_CONFIG, 0, "run `bearmail login "
	  "work`" },
};

static void
test_oauth(void)
{
	struct bm_err e;
	size_t i, n;

	for (i = 0; i < N(oauths); i++) {
		is_int(verdict_oauth(&e, "token refresh", "work",
		    oauths[i].status, oauths[i].error, oauths[i].aadsts,
		    "AADSTSnnn: words.", "https://x/t"), oauths[i].ex,
		    "HTTP %ld %s AADSTS%ld: %s", oauths[i].status,
		    oauths[i].error ? oauths[i].error : "-", oauths[i].aadsts,
		    verdict_exit_name(oauths[i].ex));
		is_int(flags_of(&e.v), oauths[i].flags, "HTTP %ld AADSTS%ld: "
		    "flags", oauths[i].status, oauths[i].aadsts);
		n = strlen(e.msg);
		ok(n >= strlen(oauths[i].tail) && strcmp(e.msg + n -
		    strlen(oauths[i].tail), oauths[i].tail) == 0,
		    "HTTP %ld AADSTS%ld: the line ends with its fix: %s",
		    oauths[i].status, oauths[i].aadsts, e.msg);
		ok(strstr(e.msg, "{account}") == NULL && strstr(e.msg,
		    "words.:") == NULL, "AADSTS%ld: no placeholder, no dot "
		    "before the fix", oauths[i].aadsts);
	}
	verdict_oauth(&e, "token refresh", "work", 400, "invalid_grant",
	    70000, "AADSTS70000: The grant is expired.", NULL);
	is_str(e.msg, "token refresh for account work failed: invalid_grant: "
	    "AADSTS70000: The grant is expired: run `bearmail login work`",
	    "the whole line");
	verdict_oauth(&e, "sign-in", "work", 502, NULL, 0, NULL, "https://h/t");
	ok(strncmp(e.msg, "sign-in for account work failed: HTTP 502 from "
	    "https://h/t: ", 54) == 0, "not JSON: the status and the URL");
}

static const struct {
	const char *text;
	long want;
} aadsts_texts[] = {
	{ "AADSTS70000: grant", 70000 },
	{ "x: AADSTS7000215: Invalid client secret", 7000215 },
	{ "AADSTS: nothing", 0 },
	{ "AADSTS12345678901234567890: too long", 0 },
	{ "no code", 0 },
	{ NULL, 0 },
};

static void
test_aadsts_in(void)
{
	size_t i;

	for (i = 0; i < N(aadsts_texts); i++)
		is_int((int)verdict_aadsts_in(aadsts_texts[i].text),
		    (int)aadsts_texts[i].want, "AADSTS in \"%s\"",
		    aadsts_texts[i].text ? aadsts_texts[i].text : "(null)");
}

/* ------------------------------------------------------ one attempt */

static void
add(struct qenv *env, const char *addr)
{
	qenv_add_rcpt(env, addr, NULL);
}

static void
rcpt(struct smtp_txn *t, size_t j, enum verdict_stage st, int code,
    const char *enh, const char *text)
{
	t->rcpts[j].stage = st;
	t->rcpts[j].code = code;
	snprintf(t->rcpts[j].enh, sizeof(t->rcpts[j].enh), "%s", enh);
	t->rcpts[j].text = text ? xstrdup(text) : NULL;
}

/* The server answers 451 to one recipient of three, 550 to another, and
 * accepts the message for the third. */
static void
test_attempt_mixed(void)
{
	struct qenv env;
	struct smtp_txn t;
	struct attempt at;
	struct bm_err e = { 0 };
	size_t map[3] = { 0, 1, 2 };

	memset(&env, 0, sizeof(env));
	memset(&t, 0, sizeof(t));
	add(&env, "a@x");
	add(&env, "b@x");
	add(&env, "c@x");
	t.nrcpts = 3;
	t.rcpts = xcalloc(3, sizeof(*t.rcpts));
	rcpt(&t, 0, STAGE_RCPT, 451, "4.3.0", "Try later");
	rcpt(&t, 1, STAGE_RCPT, 550, "5.1.1", "User unknown");
	rcpt(&t, 2, STAGE_DOT, 250, "2.0.0", "OK <id>");
	attempt_init(&at, &env);
	attempt_txn(&at, &env, &t, map, &e);
	ok(env.rcpts[0].state == QR_PENDING && env.rcpts[1].state ==
	    QR_FAILED && env.rcpts[2].state == QR_SENT, "451 waits, 550 "
	    "fails, 250 is sent");
	is_str(env.rcpts[0].reply, "451 4.3.0 Try later", "the 451 is kept "
	    "for the recipient");
	is_str(at.later_reply, "recipient a@x refused (451 4.3.0 Try later)",
	    "why it waits");
	is_str(at.failed_reply, "recipient b@x refused (550 5.1.1 User "
	    "unknown)", "why it failed");
	is_int(at.fail_ex, EX_NOUSER, "the refusal's code");
	ok(at.newly_failed[1] && !at.newly_failed[0] && !at.newly_failed[2],
	    "only the refused one is new to bounce");
	is_str(at.sent.data, "<c@x>", "sent list");
	is_str(at.later.data, "<a@x>", "later list");
	ok(!at.throttled, "a plain 451 is not throttling");
	attempt_free(&at);
	smtp_txn_clear(&t);
	free(t.rcpts);
	qenv_free(&env);
}

/* The connection died after the final dot: every recipient waits. */
static void
test_attempt_lost(void)
{
	struct qenv env;
	struct smtp_txn t;
	struct attempt at;
	struct bm_err e;
	size_t map[2] = { 1, 0 };

	memset(&env, 0, sizeof(env));
	memset(&t, 0, sizeof(t));
	add(&env, "a@x");
	add(&env, "b@x");
	t.nrcpts = 2;
	t.rcpts = xcalloc(2, sizeof(*t.rcpts));
	err_set(&e, EX_PROTOCOL, "h: malformed reply from the server: x");
	verdict_lost(&e, STAGE_DOT);
	rcpt(&t, 0, STAGE_DOT, 0, "", e.msg);
	rcpt(&t, 1, STAGE_DOT, 0, "", e.msg);
	attempt_init(&at, &env);
	attempt_txn(&at, &env, &t, map, &e);
	ok(env.rcpts[0].state == QR_PENDING && env.rcpts[1].state ==
	    QR_PENDING && at.nlater == 2 && at.nfailed == 0, "an unreadable "
	    "reply after the dot: everyone waits");
	is_str(at.later.data, "<b@x>,<a@x>", "the map is followed");
	attempt_free(&at);
	smtp_txn_clear(&t);
	free(t.rcpts);

	/* a whole-message refusal: one line, however many recipients */
	memset(&t, 0, sizeof(t));
	t.nrcpts = 2;
	t.rcpts = xcalloc(2, sizeof(*t.rcpts));
	rcpt(&t, 0, STAGE_DOT, 554, "5.6.0", "bad content");
	rcpt(&t, 1, STAGE_DOT, 554, "5.6.0", "bad content");
	verdict_reply(&e, STAGE_DOT, 554, "5.6.0", "bad content", NULL,
	    "message refused");
	attempt_init(&at, &env);
	attempt_txn(&at, &env, &t, map, &e);
	ok(at.nfailed == 2 && at.more_failed.len == 0, "a refused message: "
	    "both fail, one line");
	is_str(at.failed_reply, "message refused (554 5.6.0 bad content)",
	    "the line is the message's");
	attempt_free(&at);
	smtp_txn_clear(&t);
	free(t.rcpts);
	qenv_free(&env);
}

/* No session (a login is needed): every pending recipient waits; the
 * expiry fails them with their last reply. */
static void
test_attempt_all_expire(void)
{
	struct qenv env;
	struct attempt at;
	struct bm_err e;

	memset(&env, 0, sizeof(env));
	add(&env, "a@x");
	add(&env, "b@x");
	env.rcpts[1].state = QR_SENT;
	verdict_fail(&e, VK_NO_TOKEN, "work", "no token for account work");
	verdict_session(&e);
	attempt_init(&at, &env);
	attempt_all(&at, &env, &e);
	ok(at.nlater == 1 && at.login_needed && env.rcpts[0].state ==
	    QR_PENDING && env.rcpts[1].state == QR_SENT, "no session: the "
	    "pending one waits, a login is needed, the sent one stays sent");
	attempt_free(&at);
	attempt_init(&at, &env);
	attempt_expire(&at, &env, 5 * 86400);
	ok(env.rcpts[0].state == QR_FAILED && at.nfailed == 1 &&
	    at.newly_failed[0], "expired: the pending one fails");
	ok(strncmp(env.rcpts[0].reply, "message expired after 5 days in the "
	    "queue: no token for account work", 60) == 0, "expired: with its "
	    "last reply");
	attempt_free(&at);
	qenv_free(&env);
}

/* ---------------------------------------------------------- catalogue */

static void
test_lookups(void)
{
	char *fix;

	is_str(what_of(verdict_row_reply(535, "5.7.139", NULL)),
	    "535 5.7.139", "row: 535 5.7.139");
	is_str(what_of(verdict_row_reply(535, "5.7.3", "x")), "535 5.7.3",
	    "row: 535 5.7.3");
	is_str(what_of(verdict_row_reply(550, "5.1.1", "User unknown")), NULL,
	    "row: none for 5.1.1");
	is_str(what_of(verdict_row_reply(535, "", "x")), NULL, "row: none "
	    "without an enhanced code");
	is_str(what_of(verdict_row_aadsts(65001)), "AADSTS65001",
	    "row: AADSTS65001");
	is_str(what_of(verdict_row_aadsts(12345)), NULL, "row: unknown AADSTS");
	is_str(what_of(verdict_row_aadsts(0)), NULL, "row: AADSTS 0");
	fix = verdict_fix(verdict_row_reply(535, "5.7.139", NULL),
	    "alice@contoso.com", "work");
	ok(strstr(fix, "Set-CASMailbox -Identity alice@contoso.com "
	    "-SmtpClientAuthenticationDisabled $false") != NULL &&
	    strchr(fix, '{') == NULL, "5.7.139 fix names the mailbox");
	free(fix);
	fix = verdict_fix(verdict_row_aadsts(70000), NULL, NULL);
	is_str(fix, "run `bearmail login {account}`", "NULL leaves the "
	    "placeholder");
	free(fix);
}

/* Every row complete, keys unique, and in the docs verbatim. */
static void
test_table_and_docs(void)
{
	struct bm_err e = { 0 };
	const struct trouble *t;
	char *doc = NULL;
	size_t n, i, j;
	int complete = 1, unique = 1, found = 1;

	t = verdict_table(&n);
	ok(n >= 50, "catalogue has %zu rows", n);
	for (i = 0; i < n; i++) {
		complete &= t[i].what && t[i].cause && t[i].fix &&
		    (t[i].aadsts || t[i].enh || t[i].word || t[i].kind);
		complete &= t[i].ex != 0 || t[i].aadsts == 0;
		for (j = i + 1; j < n; j++) {
			unique &= t[i].aadsts == 0 || t[i].aadsts !=
			    t[j].aadsts;
			unique &= t[i].kind == VK_NONE || t[i].kind !=
			    t[j].kind;
		}
	}
	ok(complete, "every row has a key, what, cause and fix");
	ok(unique, "AADSTS codes and kinds are unique");
	ok(read_small_file(TOP_SRCDIR "/docs/troubleshooting.md", 1 << 20,
	    &doc, &e) == 0, "docs/troubleshooting.md readable");
	for (i = 0; doc != NULL && i < n; i++) {
		int here = strstr(doc, t[i].what) && strstr(doc, t[i].cause) &&
		    strstr(doc, t[i].fix);

		if (!here)
			printf("# not in the docs verbatim: %s\n", t[i].what);
		found &= here;
	}
	ok(doc != NULL && found, "the docs show every row's text");
	free(doc);
}

int
main(void)
{
	test_replies();
	test_reply_message();
	test_lost();
	test_kinds();
	test_oauth();
	test_aadsts_in();
	test_attempt_mixed();
	test_attempt_lost();
	test_attempt_all_expire();
	test_lookups();
	test_table_and_docs();
	return done_testing();
}
