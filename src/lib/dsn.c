/*
 * dsn - bounces and delay notices as RFC 3464 delivery status
 * notifications inside an RFC 6522 multipart/report, honouring RFC 3461
 * NOTIFY; the original's header block goes back as text/rfc822-headers
 * (RFC 6522 section 4), never its body.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dsn.h"

/* Longest reply copied into a report field (lines stay under 998). */
#define REPLY_MAX 900

static int
notify_has(const char *notify, const char *word)
{
	const char *p = notify;
	size_t n = strlen(word);

	while (p && *p) {
		if (strncasecmp(p, word, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return 0;
}

/* Whether this recipient belongs in the report. */
static int
reportable(const struct qrcpt *r, int warning)
{
	if (r->state != (warning ? QR_PENDING : QR_FAILED))
		return 0;
	if (r->notify == NULL)
		return 1;
	return notify_has(r->notify, warning ? "DELAY" : "FAILURE");
}

size_t
dsn_count(const struct qenv *env, int warning)
{
	size_t i, n = 0;

	for (i = 0; i < env->nrcpts; i++)
		if (reportable(&env->rcpts[i], warning))
			n++;
	return n;
}

/* s with control characters replaced and cut to REPLY_MAX (xmalloc'd). */
static char *
clean_line(const char *s)
{
	size_t n = strlen(s);

	return str_printable(xstrndup(s, n > REPLY_MAX ? REPLY_MAX : n), '?');
}

/*
 * The server's reply for Diagnostic-Code ("550 5.1.1 User unknown"): the
 * stored reply when it starts with the code, else the "(550 ...)" or
 * "...: 550 ..." part of an error message, else code, enhanced code and
 * the text.  NULL when the
 * server said nothing (code 0).
 */
static char *
diagnostic(const struct qrcpt *r)
{
	char num[8], *pat, *open;
	const char *reply = r->reply ? r->reply : "";
	size_t len = strlen(reply);

	if (r->code < 200 || r->code > 599)
		return NULL;
	snprintf(num, sizeof(num), "%d", r->code);
	if (strncmp(reply, num, 3) == 0)
		return clean_line(reply);
	pat = xasprintf("(%s ", num);
	open = strstr(reply, pat);
	free(pat);
	if (open && len > 0 && reply[len - 1] == ')') {
		char *inner = xstrndup(open + 1, (size_t)(reply + len - 1 -
		    (open + 1)));
		char *c = clean_line(inner);

		free(inner);
		return c;
	}
	pat = xasprintf(": %s ", num);
	open = strstr(reply, pat);
	free(pat);
	if (open)
		return clean_line(open + 2);
	pat = xasprintf("%d%s%s %s", r->code, r->enh[0] ? " " : "", r->enh,
	    reply);
	open = clean_line(pat);
	free(pat);
	return open;
}

static int
enh_valid(const char *enh, char cls)
{
	int dots = 0;
	const char *p;

	if (enh[0] != cls || enh[1] != '.')
		return 0;
	for (p = enh + 1; *p; p++) {
		if (*p == '.')
			dots++;
		else if (!isdigit((unsigned char)*p))
			return 0;
	}
	return dots == 2 && p[-1] != '.';
}

/* The Status field: the reply's enhanced code when its class fits. */
static const char *
status_of(const struct qrcpt *r, int warning)
{
	if (warning)
		return enh_valid(r->enh, '4') ? r->enh : "4.0.0";
	if (enh_valid(r->enh, '5'))
		return r->enh;
	if (r->code >= 500)
		return "5.0.0";
	return r->code > 0 || r->reply ? "5.4.7" : "5.0.0";
}

static void
rfc5322_date(long long t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		snprintf(out, len, "Thu, 01 Jan 1970 00:00:00 +0000");
}

static void
random_hex(char *out, size_t nbytes)
{
	unsigned char r[32];
	size_t i;

	if (nbytes > sizeof(r))
		nbytes = sizeof(r);
	random_bytes(r, nbytes);
	for (i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* Append text with every line ending made CRLF, ending with one CRLF. */
static void
add_crlf_text(struct buf *b, const char *p, size_t n)
{
	size_t i;

	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	for (i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue;
		if (p[i] == '\r' || p[i] == '\n')
			buf_adds(b, "\r\n");
		else
			buf_addc(b, p[i]);
	}
	buf_adds(b, "\r\n");
}

static void
human_part(struct buf *b, const struct qenv *env, const char *mta,
    int warning)
{
	size_t i;

	buf_addf(b, "This is the mail system at host %s.\r\n\r\n", mta);
	if (warning)
		buf_adds(b, "####################################################"
		    "#################\r\n# THIS IS A WARNING ONLY.  YOU DO NOT "
		    "NEED TO RESEND YOUR MESSAGE. #\r\n##############################"
		    "#######################################\r\n\r\n"
		    "Your message could not be delivered yet to the recipients "
		    "below.\r\nDelivery will be retried until it succeeds or the "
		    "message expires.\r\n\r\n");
	else
		buf_adds(b, "I'm sorry to have to inform you that your message "
		    "could not\r\nbe delivered to one or more recipients. The "
		    "server's words are\r\nbelow.\r\n\r\n");
	for (i = 0; i < env->nrcpts; i++) {
		const struct qrcpt *r = &env->rcpts[i];
		char *why;

		if (!reportable(r, warning))
			continue;
		why = clean_line(r->reply ? r->reply : "no reason recorded");
		buf_addf(b, "<%s>: %s\r\n", r->addr, why);
		free(why);
	}
}

static void
status_part(struct buf *b, const struct qenv *env, const char *mta,
    int warning)
{
	char date[64];
	size_t i;

	rfc5322_date(env->created, date, sizeof(date));
	buf_addf(b, "Reporting-MTA: dns; %s\r\n", mta);
	if (env->dsn_envid && *env->dsn_envid) {
		char *id = clean_line(env->dsn_envid);

		buf_addf(b, "Original-Envelope-Id: %s\r\n", id);
		free(id);
	}
	buf_addf(b, "X-Bearmail-Queue-ID: %s\r\nArrival-Date: %s\r\n", env->id,
	    date);
	for (i = 0; i < env->nrcpts; i++) {
		const struct qrcpt *r = &env->rcpts[i];
		char *diag;

		if (!reportable(r, warning))
			continue;
		buf_addf(b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: %s\r\n"
		    "Status: %s\r\n", r->addr, warning ? "delayed" : "failed",
		    status_of(r, warning));
		if ((diag = diagnostic(r)) != NULL)
			buf_addf(b, "Diagnostic-Code: smtp; %s\r\n", diag);
		free(diag);
	}
}

static void
headers(struct buf *b, const struct qenv *env, const char *account_addr,
    const char *mta, int warning, long long now, const char *boundary)
{
	char date[64], id[33];

	rfc5322_date(now, date, sizeof(date));
	random_hex(id, 16);
	buf_addf(b, "From: \"Mail Delivery System\" <%s>\r\n", account_addr);
	buf_addf(b, "To: <%s>\r\n", env->sender);
	buf_addf(b, "Subject: %s\r\n", warning ?
	    "Delayed Mail (still being retried)" :
	    "Undelivered Mail Returned to Sender");
	buf_addf(b, "Date: %s\r\nMessage-ID: <%s.%lld@%s>\r\n", date, id, now,
	    mta);
	buf_adds(b, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_addf(b, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary);
	buf_adds(b, "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "This is a MIME-encapsulated message.\r\n\r\n");
}

/* The three body parts, without boundaries. */
static void
parts(const struct qenv *env, const char *orig_head, size_t orig_head_len,
    const char *mta, int warning, struct buf p[3])
{
	buf_adds(&p[0], "Content-Description: Notification\r\nContent-Type: "
	    "text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
	    "\r\n");
	human_part(&p[0], env, mta, warning);
	buf_adds(&p[1], "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n");
	status_part(&p[1], env, mta, warning);
	buf_adds(&p[2], "Content-Description: Undelivered Message Headers\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n");
	add_crlf_text(&p[2], orig_head ? orig_head : "", orig_head ?
	    orig_head_len : 0);
}

/* A boundary that occurs in none of the parts. */
static void
pick_boundary(struct buf p[3], char *out, size_t len)
{
	char hex[25];
	int i, clash;

	do {
		random_hex(hex, 12);
		snprintf(out, len, "=_bearmail_%s", hex);
		for (clash = 0, i = 0; i < 3; i++)
			if (strstr(p[i].data, out) != NULL)
				clash = 1;
	} while (clash);
}

int
dsn_build(const struct qenv *env, const char *account_addr,
    const char *orig_head, size_t orig_head_len, const char *reporting_mta,
    int warning, long long now, struct buf *out, struct bm_err *e)
{
	struct buf p[3] = { BUF_INIT, BUF_INIT, BUF_INIT };
	char boundary[64];
	int i;

	if (dsn_count(env, warning) == 0)
		return err_set(e, EX_SOFTWARE, "message %s has no recipient "
		    "to report", env->id);
	parts(env, orig_head, orig_head_len, reporting_mta, warning, p);
	pick_boundary(p, boundary, sizeof(boundary));
	headers(out, env, account_addr, reporting_mta, warning, now, boundary);
	for (i = 0; i < 3; i++) {
		buf_addf(out, "--%s\r\n", boundary);
		buf_add(out, p[i].data, p[i].len);
		buf_adds(out, "\r\n");
		buf_free(&p[i], 0);
	}
	buf_addf(out, "--%s--\r\n", boundary);
	return 0;
}

/* The Message-ID field's value of a report we built. */
static char *
header_msgid(const char *msg)
{
	const char *p = strstr(msg, "\r\nMessage-ID: ");

	if (p == NULL)
		return NULL;
	p += strlen("\r\nMessage-ID: ");
	return xstrndup(p, strcspn(p, "\r"));
}

/* A view of env holding only the recipients marked in pick (they are
 * shared, not copied: never qenv_free it). */
static struct qenv
env_view(const struct qenv *env, const unsigned char *pick,
    struct qrcpt *space)
{
	struct qenv v = *env;
	size_t i;

	v.nrcpts = 0;
	for (i = 0; i < env->nrcpts; i++)
		if (pick[i])
			space[v.nrcpts++] = env->rcpts[i];
	v.rcpts = space;
	return v;
}

static int
enqueue_report(struct queue *q, const struct account *a,
    const struct qenv *env, const char *orig_head, size_t orig_head_len,
    int warning, struct bm_err *e)
{
	struct buf msg = BUF_INIT;
	struct qenv b;
	int rc;

	if (env->is_bounce || env->sender == NULL || *env->sender == '\0' ||
	    dsn_count(env, warning) == 0)
		return 0;
	if ((rc = dsn_build(env, account_address(a), orig_head, orig_head_len,
	    conf_mailname(), warning, (long long)time(NULL), &msg, e)) != 0)
		goto out;
	memset(&b, 0, sizeof(b));
	b.account = xstrdup(a->name);
	b.sender = xstrdup(account_address(a));
	b.is_bounce = 1;
	/* SMTPUTF8 follows from the addresses: the SMTP client sees to it */
	b.eightbit = mem_has_8bit(msg.data, msg.len);
	qenv_add_rcpt(&b, env->sender, NULL);
	b.msgid = header_msgid(msg.data);
	rc = queue_enqueue(q, &b, msg.data, msg.len, -1, 0, 0, e);
	qenv_free(&b);
out:
	buf_free(&msg, 0);
	return rc;
}

int
dsn_enqueue_bounce(struct queue *q, const struct account *a,
    const struct qenv *env, const unsigned char *pick, const char *orig_head,
    size_t orig_head_len, int warning, struct bm_err *e)
{
	struct qrcpt *space;
	struct qenv v;
	int rc;

	if (pick == NULL)
		return enqueue_report(q, a, env, orig_head, orig_head_len,
		    warning, e);
	space = xcalloc(env->nrcpts + 1, sizeof(*space));
	v = env_view(env, pick, space);
	rc = v.nrcpts == 0 ? 0 : enqueue_report(q, a, &v, orig_head,
	    orig_head_len, warning, e);
	free(space);
	return rc;
}
