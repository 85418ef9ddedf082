/*
 * test_dsn - RFC 3464 reports: a table of envelopes (failed and delayed
 * recipients, enhanced codes present and absent, several recipients,
 * NOTIFY, the original's header block) built, checked for CRLF and a
 * boundary that occurs only as a delimiter, and parsed back: the header
 * fields, the three parts in order and each recipient's fields.  Then
 * dsn_enqueue_bounce against a real queue directory.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "dsn.h"
#include "queue.h"
#include "tests/unit/tap.h"

#define NOW 1700000000LL
#define ACCT "alice@contoso.example"

struct rc {
	const char *addr;
	enum qrcpt_state state;
	int code;
	const char *enh;
	const char *reply;
	const char *notify;
};

static const struct dcase {
	const char *name;
	int warning;
	const char *sender;
	const char *envid;
	struct rc r[4];
	const char *head;          /* the original's header block */
	int want_rc;               /* 0 or EX_SOFTWARE */
	int nreported;
	const char *want[6];       /* substrings of the result */
	const char *not_want[3];
} cases[] = {
	{ "failed, enhanced code", 0, "bob@example.org", NULL,
	  { { "x@example.com", QR_FAILED, 550, "5.1.1",
	      "550 5.1.1 User unknown", NULL } },
	  "From: bob@example.org\r\nSubject: hello\r\n\r\n", 0, 1,
	  { "Final-Recipient: rfc822; x@example.com\r\nAction: failed\r\n"
	    "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n",
	    "Subject: Undelivered Mail Returned to Sender\r\n",
	    "<x@example.com>: 550 5.1.1 User unknown\r\n",
	    "\r\nSubject: hello\r\n", "To: <bob@example.org>\r\n",
	    "Reporting-MTA: dns; mta.example\r\n" }, { "Action: delayed" } },
	{ "failed, no enhanced code", 0, "bob@example.org", NULL,
	  { { "x@example.com", QR_FAILED, 554, "", "554 Message rejected",
	      NULL } },
	  "Subject: s\r\n\r\n", 0, 1,
	  { "Status: 5.0.0\r\n", "Diagnostic-Code: smtp; 554 Message "
	    "rejected\r\n" }, { NULL } },
	{ "several recipients: only the failed ones", 0, "bob@example.org",
	  "env-42",
	  { { "a@example.com", QR_SENT, 250, "2.0.0", "250 2.0.0 OK", NULL },
	    { "b@example.com", QR_FAILED, 550, "5.1.1",
	      "recipient b@example.com refused (550 5.1.1 User unknown)", NULL },
	    { "c@example.com", QR_PENDING, 451, "4.3.0", "451 4.3.0 later",
	      NULL },
	    { "d@example.com", QR_FAILED, 552, "5.3.4", "552 5.3.4 Too big",
	      NULL } },
	  "Subject: s\r\n\r\n", 0, 2,
	  { "Final-Recipient: rfc822; b@example.com\r\n",
	    "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n",
	    "Final-Recipient: rfc822; d@example.com\r\nAction: failed\r\n"
	    "Status: 5.3.4\r\n", "Original-Envelope-Id: env-42\r\n" },
	  { "rfc822; a@example.com", "rfc822; c@example.com" } },
	{ "delayed, enhanced code", 1, "bob@example.org", NULL,
	  { { "c@example.com", QR_PENDING, 451, "4.3.0", "451 4.3.0 later",
	      NULL },
	    { "z@example.com", QR_FAILED, 550, "5.1.1", "550 5.1.1 no", NULL } },
	  "Subject: s\r\n\r\n", 0, 1,
	  { "Action: delayed\r\nStatus: 4.3.0\r\n",
	    "Subject: Delayed Mail (still being retried)\r\n",
	    "THIS IS A WARNING ONLY" }, { "z@example.com", "Action: failed" } },
	{ "delayed, no reply yet", 1, "bob@example.org", NULL,
	  { { "c@example.com", QR_PENDING, 0, "", "connection refused",
	      NULL } },
	  "Subject: s\r\n\r\n", 0, 1, { "Status: 4.0.0\r\n" },
	  { "Diagnostic-Code" } },
	{ "expired after temporary failures", 0, "bob@example.org", NULL,
	  { { "c@example.com", QR_FAILED, 451, "4.4.1",
	      "message expired: 451 4.4.1 no answer", NULL } },
	  "Subject: s\r\n\r\n", 0, 1, { "Status: 5.4.7\r\nDiagnostic-Code: "
	    "smtp; 451 4.4.1 no answer\r\n" }, { NULL } },
	{ "NOTIFY honoured", 0, "bob@example.org", NULL,
	  { { "n@example.com", QR_FAILED, 550, "5.1.1", "550 5.1.1 x",
	      "NEVER" },
	    { "f@example.com", QR_FAILED, 550, "5.1.1", "550 5.1.1 y",
	      "SUCCESS,FAILURE" },
	    { "d@example.com", QR_FAILED, 550, "5.1.1", "550 5.1.1 z",
	      "DELAY" } },
	  "Subject: s\r\n\r\n", 0, 1, { "rfc822; f@example.com" },
	  { "rfc822; n@example.com", "rfc822; d@example.com" } },
	{ "nothing to report", 0, "bob@example.org", NULL,
	  { { "a@example.com", QR_SENT, 250, "2.0.0", "250 ok", NULL } },
	  "Subject: s\r\n\r\n", EX_SOFTWARE, 0, { NULL }, { NULL } },
	{ "original header with bare LF and a boundary-like line", 0,
	  "bob@example.org", NULL,
	  { { "x@example.com", QR_FAILED, 550, "5.1.1", "550 5.1.1 U", NULL } },
	  "Subject: lf\nX-Trap: --=_bearmail_\nX-Cr: a\rb\r\n\r\n", 0, 1,
	  { "\r\nSubject: lf\r\nX-Trap: --=_bearmail_\r\nX-Cr: a\r\nb\r\n" },
	  { NULL } },
	{ "control characters in the reply", 0, "bob@example.org", NULL,
	  { { "x@example.com", QR_FAILED, 550, "5.1.1",
	      "550 5.1.1 evil\r\nBcc: injected", NULL } },
	  "Subject: s\r\n\r\n", 0, 1,
	  { "Diagnostic-Code: smtp; 550 5.1.1 evil??Bcc: injected\r\n" },
	  { "\r\nBcc: injected" } },
};

static void
make_env(const struct dcase *c, struct qenv *env)
{
	size_t i;

	memset(env, 0, sizeof(*env));
	snprintf(env->id, sizeof(env->id), "TESTID0001");
	env->account = xstrdup("work");
	env->sender = xstrdup(c->sender);
	env->created = NOW - 3600;
	env->dsn_envid = c->envid ? xstrdup(c->envid) : NULL;
	for (i = 0; i < 4 && c->r[i].addr; i++) {
		struct qrcpt *r;

		qenv_add_rcpt(env, c->r[i].addr, c->r[i].notify);
		r = &env->rcpts[i];
		r->state = c->r[i].state;
		r->code = c->r[i].code;
		snprintf(r->enh, sizeof(r->enh), "%s", c->r[i].enh);
		r->reply = xstrdup(c->r[i].reply);
	}
}

/* Every CR is followed by LF and every LF preceded by CR. */
static int
all_crlf(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
			return 0;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return 0;
	}
	return 1;
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;
	const char *p = hay;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/* The value of a header field in the top header block (unfolded start). */
static char *
field(const char *msg, const char *name)
{
	const char *end = strstr(msg, "\r\n\r\n"), *p = msg;
	size_t n = strlen(name);

	while (p && p < end) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			return strndup(p, strcspn(p, "\r"));
		}
		p = strstr(p, "\r\n");
		if (p)
			p += 2;
	}
	return NULL;
}

static void
check_structure(const struct dcase *c, const char *msg)
{
	static const char *const fields[] = { "From", "To", "Subject", "Date",
		"Message-ID", "Auto-Submitted", "MIME-Version",
		"Content-Type" };
	static const char *const types[] = { "Content-Type: text/plain",
		"Content-Type: message/delivery-status",
		"Content-Type: text/rfc822-headers" };
	char *b = strstr(msg, "boundary=\""), *bound, *delim, *v;
	const char *p;
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		v = field(msg, fields[i]);
		ok(v != NULL && *v, "%s: header %s present", c->name, fields[i]);
		free(v);
	}
	v = field(msg, "From");
	is_str(v, "\"Mail Delivery System\" <" ACCT ">", "%s: From", c->name);
	free(v);
	v = field(msg, "Auto-Submitted");
	is_str(v, "auto-replied", "%s: Auto-Submitted", c->name);
	free(v);
	ok(strstr(msg, "Content-Type: multipart/report; "
	    "report-type=delivery-status;") != NULL, "%s: multipart/report",
	    c->name);
	if (!ok(b != NULL, "%s: a boundary", c->name))
		return;
	bound = strndup(b + 10, strcspn(b + 10, "\""));
	delim = xasprintf("--%s", bound);
	is_int((long long)count(msg, bound), 5, "%s: the boundary occurs only "
	    "as its parameter and the 4 delimiters", c->name);
	free(delim);
	delim = xasprintf("\r\n--%s--\r\n", bound);
	ok(strlen(msg) >= strlen(delim) && strcmp(msg + strlen(msg) -
	    strlen(delim), delim) == 0, "%s: ends with the close delimiter",
	    c->name);
	for (p = msg, i = 0; i < 3; i++) {
		char *part = xasprintf("\r\n--%s\r\n", bound);

		p = strstr(p, part);
		ok(p != NULL && strstr(p, types[i]) != NULL &&
		    (i == 2 || strstr(p, types[i]) < strstr(p + 1, part)),
		    "%s: part %zu is %s", c->name, i + 1, types[i] + 14);
		if (p)
			p++;
		free(part);
		if (p == NULL)
			break;
	}
	free(delim);
	free(bound);
}

static void
run_case(const struct dcase *c)
{
	struct buf out = BUF_INIT;
	struct bm_err e = { 0 };
	struct qenv env;
	size_t i;
	int rc;

	make_env(c, &env);
	rc = dsn_build(&env, ACCT, c->head, strlen(c->head), "mta.example",
	    c->warning, NOW, &out, &e);
	is_int(rc, c->want_rc, "%s: dsn_build returns %d", c->name, c->want_rc);
	is_int((long long)dsn_count(&env, c->warning), c->nreported,
	    "%s: dsn_count", c->name);
	if (rc != 0) {
		is_int((long long)out.len, 0, "%s: nothing appended", c->name);
		goto out;
	}
	ok(all_crlf(out.data, out.len), "%s: CRLF throughout", c->name);
	is_int((long long)count(out.data, "Final-Recipient:"), c->nreported,
	    "%s: %d recipient(s) reported", c->name, c->nreported);
	for (i = 0; i < 6 && c->want[i]; i++)
		ok(strstr(out.data, c->want[i]) != NULL, "%s: has want[%zu]",
		    c->name, i);
	for (i = 0; i < 3 && c->not_want[i]; i++)
		ok(strstr(out.data, c->not_want[i]) == NULL, "%s: lacks "
		    "not_want[%zu]", c->name, i);
	check_structure(c, out.data);
out:
	buf_free(&out, 0);
	qenv_free(&env);
}

/* ---------------------------------------------------- enqueueing */

static const struct ecase {
	const char *name;
	const char *sender;
	int is_bounce;
	int queued;
} ecases[] = {
	{ "a failure is bounced to the sender", "bob@example.org", 0, 1 },
	{ "never to the null sender", "", 0, 0 },
	{ "never a bounce of a bounce", "bob@example.org", 1, 0 },
};

static void
enqueue_cases(void)
{
	char dir[] = "/tmp/test_dsn.XXXXXX";
	struct config *c = NULL;
	struct queue *q = NULL;
	struct bm_err e = { 0 };
	size_t i, n;

	if (!ok(mkdtemp(dir) != NULL, "temporary queue directory") ||
	    !ok(conf_parse("account work\n  user " ACCT "\n  from " ACCT
	    "\n  client_id "
	    "11111111-2222-3333-4444-555555555555\n  tenant contoso.example\n",
	    "t.conf", &c, &e) == 0, "account for the bounces (%s)", e.msg) ||
	    !ok(queue_open(dir, &q, &e) == 0, "queue_open (%s)", e.msg))
		return;
	for (i = 0; i < sizeof(ecases) / sizeof(ecases[0]); i++) {
		const struct ecase *x = &ecases[i];
		struct qenv env, *v = NULL;

		make_env(&cases[0], &env);
		free(env.sender);
		env.sender = xstrdup(x->sender);
		env.is_bounce = x->is_bounce;
		is_int(dsn_enqueue_bounce(q, c->accounts, &env, NULL, cases[0].head,
		    strlen(cases[0].head), 0, &e), 0, "%s: returns 0", x->name);
		queue_list(q, &v, &n, &e);
		is_int((long long)n, x->queued, "%s: %d queued", x->name,
		    x->queued);
		if (n == 1) {
			ok(v[0].is_bounce && strcmp(v[0].sender, ACCT) == 0 &&
			    v[0].nrcpts == 1 && strcmp(v[0].rcpts[0].addr,
			    x->sender) == 0, "%s: envelope from the account to "
			    "the sender, marked a bounce", x->name);
			ok(v[0].msgid && v[0].msgid[0] == '<', "%s: its "
			    "Message-ID recorded", x->name);
			queue_remove(q, v[0].id, &e);
		}
		queue_list_free(v, n);
		qenv_free(&env);
	}
	queue_close(q);
	conf_free(c);
	{
		char *cmd[] = { "rm", "-rf", dir, NULL };
		pid_t pid = fork();

		if (pid == 0) {
			execvp(cmd[0], cmd);
			_exit(127);
		}
		while (pid > 0 && waitpid(pid, NULL, 0) < 0)
			;
	}
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	enqueue_cases();
	return done_testing();
}
