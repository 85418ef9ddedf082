/*
 * smtp - the SMTP submission client.  RFC 5321 (replies, timeouts of
 * 4.5.3.2, dot-stuffing of 4.5.2), RFC 3207 STARTTLS, RFC 4954 AUTH with
 * XOAUTH2 and RFC 7628 OAUTHBEARER, RFC 2920 PIPELINING, RFC 1870 SIZE,
 * RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN, RFC 2034/3463
 * enhanced status codes.
 *
 * Our own client rather than libcurl's: we need every recipient's result,
 * pipelining, DSN parameters, a refusal when AUTH or STARTTLS is missing
 * (libcurl skips AUTH silently when it is not offered), and exact control
 * over the bytes of the message (libcurl's SMTP upload passes bare CR and
 * LF through, and "\n.\n" with them).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "net.h"
#include "smtp.h"
#include "util.h"
#include "verdict.h"

#define SMTP_MAX_REPLY_LINES 1000
#define SMTP_PIPELINE_WINDOW 100
#define SMTP_CHUNK 65536
#define SMTP_MAX_AUTH_LINE 512

struct smtp_ext {
	char *kw;
	char *param;               /* NULL: none */
};

struct smtp {
	struct net *net;
	char *host;
	int port;
	enum tls_mode tls;
	int timeout;
	FILE *verbose;
	struct smtp_ext *ext;
	size_t next;
	struct smtp_reply last;
	struct buf line;
	int dead;                  /* nothing more can be sent */
	int redact;                /* inside AUTH: hide 334 challenges */
	struct scrub scrub;        /* the AUTH response and the token: a server
	                              may quote them, so every reply line is
	                              scrubbed of them before it is kept,
	                              shown or logged */
};

/* RFC 5321 4.5.3.2: how long to wait at each stage (seconds); connect 30,
 * QUIT 10.  timeout (when set) replaces them, but never lengthens QUIT. */
static int
default_timeout(enum verdict_stage st)
{
	switch (st) {
	case STAGE_CONNECT:
		return 30;
	case STAGE_DATA:
		return 120;
	case STAGE_BODY:
		return 180;
	case STAGE_DOT:
		return 600;
	case STAGE_QUIT:
		return 10;
	default:
		return 300;
	}
}

static int
timeout_for(const struct smtp *s, enum verdict_stage st)
{
	if (st == STAGE_QUIT && s->timeout > default_timeout(st))
		return default_timeout(st);
	return s->timeout > 0 ? s->timeout : default_timeout(st);
}

/* ------------------------------------------------------------ verbose */

static void
vlog(const struct smtp *s, const char *dir, const char *p, size_t n)
{
	size_t i;

	if (s->verbose == NULL)
		return;
	fputs(dir, s->verbose);
	for (i = 0; i < n; i++)
		fputc(is_control((unsigned char)p[i]) ? '?' : p[i], s->verbose);
	fputc('\n', s->verbose);
	fflush(s->verbose);
}

/* Log each CRLF-terminated line of what we send. */
static void
vlog_sent(const struct smtp *s, const char *p, size_t n)
{
	const char *nl;

	while (s->verbose && n > 0) {
		nl = memchr(p, '\n', n);
		if (nl == NULL) {
			vlog(s, ">>> ", p, n);
			return;
		}
		vlog(s, ">>> ", p, (size_t)(nl - p) -
		    (nl > p && nl[-1] == '\r'));
		n -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
}

/* ------------------------------------------------------------ replies */

/* RFC 3463 "c.sss.ddd" whose class matches the reply code, followed by a
 * space or the end: copied to enh and *rest moved past it. */
static int
parse_enh(const char *p, int code, char enh[16], const char **rest)
{
	const char *q = p;
	int part, digits;

	if (q[0] != '0' + code / 100 || q[1] != '.')
		return 0;
	q += 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; *q >= '0' && *q <= '9'; digits++)
			q++;
		if (digits < 1 || digits > 3)
			return 0;
		if (part == 0 && *q++ != '.')
			return 0;
	}
	if (*q != ' ' && *q != '\0')
		return 0;
	memcpy(enh, p, (size_t)(q - p));
	enh[q - p] = '\0';
	*rest = *q == ' ' ? q + 1 : q;
	return 1;
}

int
smtp_parse_line(const char *line, int *code, int *cont, char enh[16],
    const char **text)
{
	int i, c = 0;

	for (i = 0; i < 3; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -1;
		c = c * 10 + (line[i] - '0');
	}
	if (c < 200 || c > 599)
		return -1;
	if (line[3] != '\0' && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = c;
	*cont = line[3] == '-';
	*text = line[3] == '\0' ? line + 3 : line + 4;
	enh[0] = '\0';
	if (c != 334)
		parse_enh(*text, c, enh, text);
	return 0;
}

/* A multi-line reply being put together. */
struct reply_acc {
	int code;
	int nlines;
	char enh[16];
	struct buf text;           /* lines' text joined by a space */
	struct buf lines;          /* each line's text + '\n' (EHLO) */
};

static void
add_sanitized(struct buf *b, const char *p)
{
	for (; *p; p++)
		buf_addc(b, is_control((unsigned char)*p) ? '?' : *p);
}

/* Add one line; 1 when the reply is complete, 0 when more follow, -1 when
 * the line is malformed or its code differs from the first line's. */
static int
acc_line(struct reply_acc *a, const char *line)
{
	const char *text;
	char enh[16];
	int code, cont;

	if (smtp_parse_line(line, &code, &cont, enh, &text) != 0)
		return -1;
	if (a->nlines++ == 0) {
		a->code = code;
		memcpy(a->enh, enh, sizeof(enh));
	} else if (code != a->code || a->nlines > SMTP_MAX_REPLY_LINES) {
		return -1;
	}
	if (a->text.len > 0 && *text)
		buf_addc(&a->text, ' ');
	add_sanitized(&a->text, text);
	add_sanitized(&a->lines, text);
	buf_addc(&a->lines, '\n');
	return !cont;
}

static void
reply_set(struct smtp_reply *r, int code, const char *enh, char *text)
{
	free(r->text);
	r->code = code;
	snprintf(r->enh, sizeof(r->enh), "%s", enh);
	r->text = text;
}

static void
reply_copy(struct smtp_reply *dst, const struct smtp_reply *src)
{
	reply_set(dst, src->code, src->enh, xstrdup(src->text ?
	    src->text : ""));
}

static void
lost(struct smtp *s, struct bm_err *e, enum verdict_stage st)
{
	s->dead = 1;
	reply_set(&s->last, 0, "", xstrdup(e ? e->msg : "connection lost"));
	verdict_lost(e, st);
}

static void
vlog_reply_line(const struct smtp *s, const char *line)
{
	if (s->redact && strncmp(line, "334 ", 4) == 0 && line[4] != '\0')
		vlog(s, "<<< ", "334 [redacted]", 14);
	else
		vlog(s, "<<< ", line, strlen(line));
}

static int
malformed(const struct smtp *s, struct bm_err *e)
{
	struct buf b = BUF_INIT;
	int rc;

	buf_add(&b, "", 0);
	add_sanitized(&b, s->line.data);
	rc = err_set(e, EX_PROTOCOL, "%s: malformed reply from the server: "
	    "%.200s", s->host, b.data);
	buf_free(&b, 0);
	return rc;
}

/* Read one whole reply into s->last; the lines' texts go to lines when
 * non-NULL.  One deadline bounds the whole reply, however slowly its
 * lines come.  Returns 0, or (the connection is then given up) a verdict
 * from verdict_lost: lost, timed out, or malformed. */
static int
read_reply(struct smtp *s, enum verdict_stage st, struct buf *lines,
    struct bm_err *e)
{
	struct reply_acc a = { 0, 0, "", BUF_INIT, BUF_INIT };
	long long deadline = net_deadline(timeout_for(s, st));
	int rc = 0, r = 0;

	buf_add(&a.text, "", 0);
	while (r == 0) {
		if ((rc = net_readline(s->net, &s->line, deadline, e)) != 0)
			goto out;
		scrub_buf(&s->scrub, &s->line);
		vlog_reply_line(s, s->line.data);
		if (strlen(s->line.data) != s->line.len ||
		    (r = acc_line(&a, s->line.data)) < 0) {
			rc = malformed(s, e);
			goto out;
		}
	}
	reply_set(&s->last, a.code, a.enh, buf_steal(&a.text));
	if (lines)
		buf_add(lines, a.lines.data, a.lines.len);
	if (a.code == 421)
		s->dead = 1;
out:
	if (rc)
		lost(s, e, st);
	buf_free(&a.text, 0);
	buf_free(&a.lines, 0);
	return rc ? e ? e->code : EX_TEMPFAIL : 0;
}

/* Send bytes; shown (when non-NULL) is what verbose prints instead. */
static int
send_raw(struct smtp *s, const char *p, size_t n, const char *shown,
    enum verdict_stage st, struct bm_err *e)
{
	int rc;

	if (s->dead || s->net == NULL) {
		err_set(e, EX_TEMPFAIL, "%s: connection lost (%s)", s->host,
		    s->last.text ? s->last.text : "closed");
		return verdict_lost(e, st);
	}
	if (shown)
		vlog(s, ">>> ", shown, strlen(shown));
	else
		vlog_sent(s, p, n);
	if ((rc = net_write(s->net, p, n, timeout_for(s, st), e)) != 0) {
		lost(s, e, st);
		return EX_TEMPFAIL;
	}
	return 0;
}

/* Send "cmd\r\n" and read the reply. */
static int
command(struct smtp *s, const char *cmd, enum verdict_stage st,
    struct buf *lines, struct bm_err *e)
{
	char *line = xasprintf("%s\r\n", cmd);
	int rc;

	rc = send_raw(s, line, strlen(line), NULL, st, e);
	free(line);
	return rc ? rc : read_reply(s, st, lines, e);
}

/* The error for an unwanted reply r at stage st: a refusal, or a positive
 * reply where another was due (the dialogue is out of step: the session
 * is given up and the failure is temporary). */
static int
refused_by(struct smtp *s, enum verdict_stage st, const struct smtp_reply *r,
    const char *host, const char *what, struct bm_err *e)
{
	if (r->code >= 400)
		return verdict_reply(e, st, r->code, r->enh, r->text, host,
		    what);
	s->dead = 1;
	err_set(e, EX_PROTOCOL, "%s%s%s (unexpected reply %d %s)",
	    host ? host : "", host ? ": " : "", what, r->code,
	    r->text ? r->text : "");
	return verdict_lost(e, st);
}

static int
refused(struct smtp *s, enum verdict_stage st, const char *what,
    struct bm_err *e)
{
	return refused_by(s, st, &s->last, s->host, what, e);
}

/* --------------------------------------------------------- extensions */

static struct smtp_ext *
ext_find(const struct smtp *s, const char *kw)
{
	size_t i;

	for (i = 0; i < s->next; i++)
		if (strcasecmp(s->ext[i].kw, kw) == 0)
			return &s->ext[i];
	return NULL;
}

static void
ext_clear(struct smtp *s)
{
	size_t i;

	for (i = 0; i < s->next; i++) {
		free(s->ext[i].kw);
		free(s->ext[i].param);
	}
	free(s->ext);
	s->ext = NULL;
	s->next = 0;
}

/* One EHLO line "KEYWORD params" (or the legacy "AUTH=params"). */
static void
ext_add(struct smtp *s, const char *line)
{
	size_t kl = strcspn(line, " =");
	const char *p = line + kl;
	struct smtp_ext *x;
	char *kw, *old;

	if (kl == 0)
		return;
	while (*p == ' ' || *p == '=')
		p++;
	kw = xstrndup(line, kl);
	if ((x = ext_find(s, kw)) == NULL) {
		s->ext = xrealloc(s->ext, (s->next + 1) * sizeof(*s->ext));
		x = &s->ext[s->next++];
		x->kw = kw;
		x->param = *p ? xstrdup(p) : NULL;
		return;
	}
	free(kw);
	if (*p == '\0')
		return;
	old = x->param;
	x->param = old ? xasprintf("%s %s", old, p) : xstrdup(p);
	free(old);
}

/* The lines of a 250 EHLO reply: the first names the server. */
static void
ext_parse(struct smtp *s, const char *lines)
{
	const char *nl;
	char *line;

	ext_clear(s);
	if ((nl = strchr(lines, '\n')) == NULL)
		return;
	for (lines = nl + 1; (nl = strchr(lines, '\n')) != NULL;
	    lines = nl + 1) {
		line = xstrndup(lines, (size_t)(nl - lines));
		ext_add(s, str_trim(line));
		free(line);
	}
}

int
smtp_has_ext(const struct smtp *s, const char *keyword)
{
	return ext_find(s, keyword) != NULL;
}

const char *
smtp_ext_param(const struct smtp *s, const char *keyword)
{
	const struct smtp_ext *x = ext_find(s, keyword);

	return x ? x->param : NULL;
}

long long
smtp_max_size(const struct smtp *s)
{
	const char *p = smtp_ext_param(s, "SIZE");
	long long v;

	if (p == NULL || str_to_ll(p, 0, LLONG_MAX, &v) != 0)
		return 0;
	return v;
}

/* Whether the space-separated list holds word (case-insensitive). */
static int
has_word(const char *list, const char *word)
{
	size_t wl = strlen(word), n;

	while (list && *list) {
		n = strcspn(list, " ");
		if (n == wl && strncasecmp(list, word, wl) == 0)
			return 1;
		list += n;
		list += strspn(list, " ");
	}
	return 0;
}

struct smtp *
smtp_offline(const char *reply)
{
	struct reply_acc a = { 0, 0, "", BUF_INIT, BUF_INIT };
	struct smtp *s = xcalloc(1, sizeof(*s));
	char *copy = xstrdup(reply), *line, *save = NULL;
	int r = 0;

	s->host = xstrdup("offline");
	s->dead = 1;
	for (line = strtok_r(copy, "\n", &save); line && r == 0;
	    line = strtok_r(NULL, "\n", &save)) {
		line[strcspn(line, "\r")] = '\0';
		r = acc_line(&a, line);
	}
	if (r == 1 && a.code == 250)
		ext_parse(s, a.lines.data);
	free(copy);
	buf_free(&a.text, 0);
	buf_free(&a.lines, 0);
	if (r == 1 && a.code == 250)
		return s;
	smtp_close(s);
	return NULL;
}

/* ------------------------------------------------------------ opening */

static int
has_ctl(const char *p)
{
	for (; *p; p++)
		if (is_control((unsigned char)*p))
			return 1;
	return 0;
}

static int
ehlo(struct smtp *s, const char *helo, struct bm_err *e)
{
	struct buf lines = BUF_INIT;
	char *cmd = xasprintf("EHLO %s", helo);
	int rc;

	if ((rc = command(s, cmd, STAGE_EHLO, &lines, e)) != 0)
		goto out;
	if (s->last.code == 250) {
		ext_parse(s, lines.data);
		goto out;
	}
	if (s->tls != TLS_OFF || s->last.code < 500) {
		rc = refused(s, STAGE_EHLO, "EHLO refused", e);
		goto out;
	}
	free(cmd);
	cmd = xasprintf("HELO %s", helo);
	if ((rc = command(s, cmd, STAGE_EHLO, NULL, e)) == 0 &&
	    s->last.code != 250)
		rc = refused(s, STAGE_EHLO, "HELO refused", e);
out:
	free(cmd);
	buf_free(&lines, 0);
	return rc;
}

static int
starttls(struct smtp *s, const struct smtp_opts *o, const char *helo,
    struct bm_err *e)
{
	char info[128];
	int rc;

	if (!smtp_has_ext(s, "STARTTLS"))
		return verdict_fail(e, VK_NO_STARTTLS, NULL, "%s: server does "
		    "not offer STARTTLS; refusing to continue without TLS",
		    s->host);
	if ((rc = command(s, "STARTTLS", STAGE_STARTTLS, NULL, e)) != 0)
		return rc;
	if (s->last.code != 220)
		return refused(s, STAGE_STARTTLS, "STARTTLS refused", e);
	if (net_buffered(s->net) > 0 && s->verbose)
		fprintf(s->verbose, "--- discarding %zu bytes received "
		    "before TLS\n", net_buffered(s->net));
	if ((rc = net_starttls(s->net, s->host, o->ca_file,
	    timeout_for(s, STAGE_STARTTLS), e)) != 0) {
		s->dead = 1;
		return rc;
	}
	net_tls_info(s->net, info, sizeof(info));
	if (s->verbose)
		fprintf(s->verbose, "--- TLS: %s\n", info);
	ext_clear(s);
	return ehlo(s, helo, e);
}

static int
open_session(struct smtp *s, const struct smtp_opts *o, const char *helo,
    struct bm_err *e)
{
	char info[128];
	int rc;

	if ((rc = net_connect(&s->net, o->host, o->port,
	    timeout_for(s, STAGE_CONNECT), e)) != 0)
		return rc;
	if (o->tls == TLS_SMTPS) {
		if ((rc = net_starttls(s->net, o->host, o->ca_file,
		    timeout_for(s, STAGE_CONNECT), e)) != 0) {
			s->dead = 1;
			return rc;
		}
		net_tls_info(s->net, info, sizeof(info));
		if (s->verbose)
			fprintf(s->verbose, "--- TLS: %s\n", info);
	}
	if ((rc = read_reply(s, STAGE_GREETING, NULL, e)) != 0)
		return rc;
	if (s->last.code != 220)
		return refused(s, STAGE_GREETING, "greeting refused", e);
	if ((rc = ehlo(s, helo, e)) != 0)
		return rc;
	if (o->tls == TLS_STARTTLS)
		rc = starttls(s, o, helo, e);
	return rc;
}

int
smtp_open(struct smtp **out, const struct smtp_opts *o, struct bm_err *e)
{
	const char *helo = o->helo_name ? o->helo_name : "localhost";
	struct smtp *s;
	int rc;

	*out = NULL;
	if (o->host == NULL || o->host[0] == '\0')
		return err_set(e, EX_CONFIG, "no SMTP host configured");
	if (helo[0] == '\0' || has_ctl(helo) || strchr(helo, ' '))
		return err_set(e, EX_CONFIG, "invalid EHLO name \"%s\"", helo);
	s = xcalloc(1, sizeof(*s));
	s->host = xstrdup(o->host);
	s->port = o->port;
	s->tls = o->tls;
	s->timeout = o->timeout;
	s->verbose = o->verbose;
	if ((rc = open_session(s, o, helo, e)) != 0) {
		smtp_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

const struct smtp_reply *
smtp_last_reply(const struct smtp *s)
{
	return &s->last;
}

/* --------------------------------------------------------------- AUTH */

static char *
b64_secret(struct buf *b)
{
	char *r = base64_encode(b->data, b->len);

	buf_free(b, 1);
	return r;
}

char *
smtp_xoauth2_blob(const char *user, const char *token)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, "user=");
	buf_adds(&b, user);
	buf_adds(&b, "\001auth=Bearer ");
	buf_adds(&b, token);
	buf_adds(&b, "\001\001");
	return b64_secret(&b);
}

char *
smtp_oauthbearer_blob(const char *user, const char *host, int port,
    const char *token)
{
	struct buf b = BUF_INIT;
	const char *p;

	/* RFC 7628 gs2-header: the authzid is a saslname (RFC 5801) */
	buf_adds(&b, "n,a=");
	for (p = user; *p; p++) {
		if (*p == ',')
			buf_adds(&b, "=2C");
		else if (*p == '=')
			buf_adds(&b, "=3D");
		else
			buf_addc(&b, *p);
	}
	buf_addf(&b, ",\001host=%s\001port=%d\001auth=Bearer ", host, port);
	buf_adds(&b, token);
	buf_adds(&b, "\001\001");
	return b64_secret(&b);
}

static int
auth_check(struct smtp *s, const char *mech, const char *user,
    const char *token, struct bm_err *e)
{
	const char *offered = smtp_ext_param(s, "AUTH");

	if (!smtp_has_ext(s, "AUTH"))
		return verdict_fail(e, VK_NO_AUTH, NULL, "%s: server does not "
		    "offer AUTH %s (it offers no authentication at all)",
		    s->host, mech);
	if (!has_word(offered, mech))
		return verdict_fail(e, VK_NO_AUTH, NULL, "%s: server does not "
		    "offer AUTH %s (it offers: %s)", s->host, mech,
		    offered ? offered : "nothing");
	if (has_ctl(user) || user[0] == '\0')
		return err_set(e, EX_CONFIG, "the user name is empty or holds "
		    "a control character");
	if (has_ctl(token) || token[0] == '\0')
		return verdict_fail(e, VK_BAD_TOKEN, NULL, "the access token "
		    "is empty or holds a control character");
	return 0;
}

/* Send the SASL initial response, on the AUTH line when it fits. */
static int
auth_start(struct smtp *s, const char *mech, const char *blob,
    struct bm_err *e)
{
	struct buf b = BUF_INIT;
	char shown[64];
	int rc;

	snprintf(shown, sizeof(shown), "AUTH %s [redacted]", mech);
	buf_addf(&b, "AUTH %s %s\r\n", mech, blob);
	if (b.len > SMTP_MAX_AUTH_LINE) {
		buf_reset(&b);
		buf_addf(&b, "AUTH %s\r\n", mech);
		if ((rc = send_raw(s, b.data, b.len, NULL, STAGE_AUTH,
		    e)) != 0 || (rc = read_reply(s, STAGE_AUTH, NULL, e)) != 0 ||
		    s->last.code != 334)
			goto out;
		buf_reset(&b);
		buf_addf(&b, "%s\r\n", blob);
		snprintf(shown, sizeof(shown), "[redacted]");
	}
	if ((rc = send_raw(s, b.data, b.len, shown, STAGE_AUTH, e)) == 0)
		rc = read_reply(s, STAGE_AUTH, NULL, e);
out:
	buf_free(&b, 1);
	return rc;
}

/* After the token: a 334 carries an error (XOAUTH2's JSON, RFC 7628
 * 3.2.2); answer it so the server sends its final reply. */
static int
auth_finish(struct smtp *s, enum auth_mech mech, struct bm_err *e)
{
	const char *answer = mech == AUTH_OAUTHBEARER ? "AQ==\r\n" : "\r\n";
	int rc = 0;

	if (s->last.code == 334) {
		rc = send_raw(s, answer, strlen(answer), NULL, STAGE_AUTH, e);
		if (rc == 0)
			rc = read_reply(s, STAGE_AUTH, NULL, e);
	}
	if (rc == 0 && s->last.code == 334) {
		rc = send_raw(s, "*\r\n", 3, NULL, STAGE_AUTH, e);
		if (rc == 0)
			rc = read_reply(s, STAGE_AUTH, NULL, e);
	}
	return rc;
}

int
smtp_auth(struct smtp *s, enum auth_mech mech, const char *user,
    const char *token, struct bm_err *e)
{
	const char *name = mech == AUTH_OAUTHBEARER ? "OAUTHBEARER" : "XOAUTH2";
	char *blob = NULL;
	int rc;

	if ((rc = auth_check(s, name, user, token, e)) != 0)
		return rc;
	blob = mech == AUTH_OAUTHBEARER ?
	    smtp_oauthbearer_blob(user, s->host, s->port, token) :
	    smtp_xoauth2_blob(user, token);
	/* from now on the server may quote them: scrub every reply */
	scrub_add(&s->scrub, blob);
	scrub_add(&s->scrub, token);
	s->redact = 1;
	if ((rc = auth_start(s, name, blob, e)) != 0 ||
	    (rc = auth_finish(s, mech, e)) != 0)
		goto out;
	if (s->last.code == 235)
		goto out;
	rc = refused(s, STAGE_AUTH, "authentication failed", e);
out:
	s->redact = 0;
	wipe_free(blob);
	return rc;
}

/* -------------------------------------------------------- dot-stuffing */

void
smtp_dotstuff_init(struct smtp_dotstuff *d)
{
	d->bol = 1;
	d->crlf = 0;
	d->seen = 0;
	d->last = '\0';
}

void
smtp_dotstuff(struct smtp_dotstuff *d, const char *p, size_t n,
    struct buf *out)
{
	const char *nl;
	size_t seg;

	while (n > 0) {
		if (d->bol && p[0] == '.')
			buf_addc(out, '.');
		nl = memchr(p, '\n', n);
		seg = nl ? (size_t)(nl - p) + 1 : n;
		buf_add(out, p, seg);
		d->crlf = p[seg - 1] == '\n' &&
		    (seg >= 2 ? p[seg - 2] : d->last) == '\r';
		d->bol = nl != NULL;
		d->last = p[seg - 1];
		d->seen = 1;
		p += seg;
		n -= seg;
	}
}

void
smtp_dotstuff_end(struct smtp_dotstuff *d, struct buf *out)
{
	if (d->seen && !d->crlf)
		buf_adds(out, "\r\n");
	buf_adds(out, ".\r\n");
}

/* -------------------------------------------------------- transaction */

char *
smtp_xtext(const char *s)
{
	struct buf b = BUF_INIT;
	unsigned char c;

	buf_add(&b, "", 0);
	for (; *s; s++) {
		c = (unsigned char)*s;
		if (c >= '!' && c <= '~' && c != '+' && c != '=')
			buf_addc(&b, (char)c);
		else
			buf_addf(&b, "+%02X", c);
	}
	return buf_steal(&b);
}

static int
has_crlf(const char *p)
{
	return strpbrk(p, "\r\n") != NULL;
}

static int
valid_notify(const char *p)
{
	if (*p == '\0')
		return 0;
	for (; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    *p == ','))
			return 0;
	return 1;
}

static int
txn_check(const struct smtp_txn *t, int *utf8, struct bm_err *e)
{
	size_t i;

	if (t->sender == NULL || t->nrcpts == 0)
		return err_set(e, EX_USAGE, "no sender or no recipients");
	if (has_crlf(t->sender))
		return err_set(e, EX_USAGE, "the sender address holds a line "
		    "break");
	*utf8 = t->smtputf8 || mem_has_8bit(t->sender, strlen(t->sender));
	for (i = 0; i < t->nrcpts; i++) {
		if (t->rcpts[i].addr == NULL || has_crlf(t->rcpts[i].addr))
			return err_set(e, EX_USAGE, "recipient %zu is missing "
			    "or holds a line break", i + 1);
		if (t->rcpts[i].notify && !valid_notify(t->rcpts[i].notify))
			return err_set(e, EX_USAGE, "invalid DSN NOTIFY value "
			    "for %s", t->rcpts[i].addr);
		*utf8 |= mem_has_8bit(t->rcpts[i].addr,
		    strlen(t->rcpts[i].addr));
	}
	if (t->dsn_ret && strcasecmp(t->dsn_ret, "FULL") != 0 &&
	    strcasecmp(t->dsn_ret, "HDRS") != 0)
		return err_set(e, EX_USAGE, "invalid DSN RET value (FULL or "
		    "HDRS)");
	return 0;
}

static int
txn_size(const struct smtp_txn *t, long long *size, struct bm_err *e)
{
	struct stat st;
	long long body = 0;

	if (t->body_fd >= 0 && t->body_len >= 0)
		body = t->body_len;
	else if (t->body_fd >= 0) {
		if (fstat(t->body_fd, &st) != 0)
			return err_set(e, EX_IOERR, "cannot stat the message: "
			    "%s", strerror(errno));
		body = st.st_size > t->body_off ? st.st_size - t->body_off : 0;
	}
	*size = (long long)t->head_len + body;
	return 0;
}

static char *
mail_command(const struct smtp *s, const struct smtp_txn *t, long long size,
    int utf8)
{
	struct buf b = BUF_INIT;
	char *x;

	buf_addf(&b, "MAIL FROM:<%s>", t->sender);
	if (smtp_has_ext(s, "SIZE"))
		buf_addf(&b, " SIZE=%lld", size);
	if (t->eightbit && smtp_has_ext(s, "8BITMIME"))
		buf_adds(&b, " BODY=8BITMIME");
	if (utf8)
		buf_adds(&b, " SMTPUTF8");
	if (smtp_has_ext(s, "DSN") && t->dsn_ret)
		buf_addf(&b, " RET=%s", strcasecmp(t->dsn_ret, "FULL") == 0 ?
		    "FULL" : "HDRS");
	if (smtp_has_ext(s, "DSN") && t->dsn_envid) {
		x = smtp_xtext(t->dsn_envid);
		buf_addf(&b, " ENVID=%s", x);
		free(x);
	}
	buf_adds(&b, "\r\n");
	return buf_steal(&b);
}

static char *
rcpt_command(const struct smtp *s, const struct smtp_rcpt *r)
{
	if (r->notify && smtp_has_ext(s, "DSN"))
		return xasprintf("RCPT TO:<%s> NOTIFY=%s\r\n", r->addr,
		    r->notify);
	return xasprintf("RCPT TO:<%s>\r\n", r->addr);
}

/* The recipient's result: rep, the reply at stage st. */
static void
rcpt_set(struct smtp_rcpt *r, const struct smtp_reply *rep,
    enum verdict_stage st)
{
	free(r->text);
	r->code = rep->code;
	snprintf(r->enh, sizeof(r->enh), "%s", rep->enh);
	r->text = xstrdup(rep->text ? rep->text : "");
	r->stage = (int)st;
}

/* Note the reply to command k (0 MAIL, 1..n RCPT, n+1 DATA). */
static void
txn_note(struct smtp *s, struct smtp_txn *t, size_t k)
{
	if (k == 0) {
		reply_copy(&t->mail, &s->last);
	} else if (k == t->nrcpts + 1) {
		reply_copy(&t->data, &s->last);
	} else {
		rcpt_set(&t->rcpts[k - 1], &s->last, STAGE_RCPT);
		if (s->last.code / 100 == 2)
			t->accepted++;
	}
}

static enum verdict_stage
txn_stage(const struct smtp_txn *t, size_t k)
{
	return k == 0 ? STAGE_MAIL : k == t->nrcpts + 1 ? STAGE_DATA :
	    STAGE_RCPT;
}

/*
 * MAIL, RCPT..., DATA: in windows of SMTP_PIPELINE_WINDOW commands with
 * PIPELINING, else one at a time (and no DATA without a recipient).
 */
static int
txn_envelope(struct smtp *s, struct smtp_txn *t, char **cmds,
    struct bm_err *e)
{
	size_t ncmd = t->nrcpts + 2, start, end, k;
	size_t window = smtp_has_ext(s, "PIPELINING") ?
	    SMTP_PIPELINE_WINDOW : 1;
	struct buf out = BUF_INIT;
	int rc = 0;

	for (start = 0; start < ncmd; start = end) {
		if (start > 0 && t->mail.code / 100 != 2)
			break;
		if (window == 1 && start == ncmd - 1 && t->accepted == 0)
			break;
		end = start + window < ncmd ? start + window : ncmd;
		buf_reset(&out);
		for (k = start; k < end; k++)
			buf_adds(&out, cmds[k]);
		if ((rc = send_raw(s, out.data, out.len, NULL,
		    txn_stage(t, start), e)))
			break;
		for (k = start; k < end && rc == 0; k++)
			if ((rc = read_reply(s, txn_stage(t, k), NULL, e)) == 0)
				txn_note(s, t, k);
	}
	buf_free(&out, 0);
	return rc;
}

/* No data will follow: end a DATA the server accepted anyway (RFC 2920
 * 3.1), then RSET.  Best effort: the caller's error stands. */
static void
txn_abandon(struct smtp *s, struct smtp_txn *t)
{
	struct bm_err ignored;

	if (t->data.code == 354 &&
	    send_raw(s, ".\r\n", 3, NULL, STAGE_DOT, &ignored) == 0 &&
	    read_reply(s, STAGE_DOT, NULL, &ignored) == 0)
		reply_copy(&t->data, &s->last);
	if (!s->dead)
		command(s, "RSET", STAGE_RSET, NULL, &ignored);
}

/* All recipients refused: the first temporary refusal, else the first. */
static int
txn_no_rcpt(struct smtp *s, struct smtp_txn *t, struct bm_err *e)
{
	const struct smtp_rcpt *r = &t->rcpts[0];
	struct smtp_reply rep = { 0, "", NULL };
	char *what;
	size_t i;
	int rc;

	for (i = 0; i < t->nrcpts; i++)
		if (t->rcpts[i].code / 100 == 4) {
			r = &t->rcpts[i];
			break;
		}
	rep.code = r->code;
	snprintf(rep.enh, sizeof(rep.enh), "%s", r->enh);
	rep.text = r->text;
	what = t->nrcpts == 1 ? xasprintf("recipient %s refused", r->addr) :
	    xasprintf("all %zu recipients refused, first %s", t->nrcpts,
	    r->addr);
	rc = refused_by(s, STAGE_RCPT, &rep, NULL, what, e);
	free(what);
	return rc;
}

/* Give accepted recipients (and, when MAIL failed, every one) the
 * result rep had at stage st. */
static void
txn_results(struct smtp_txn *t, const struct smtp_reply *rep, int all,
    enum verdict_stage st)
{
	size_t i;

	for (i = 0; i < t->nrcpts; i++)
		if (all || t->rcpts[i].code / 100 == 2)
			rcpt_set(&t->rcpts[i], rep, st);
}

static int
flush_data(struct smtp *s, struct buf *out, struct bm_err *e)
{
	int rc = 0;

	if (out->len > 0 && (rc = net_write(s->net, out->data, out->len,
	    timeout_for(s, STAGE_BODY), e)) != 0)
		lost(s, e, STAGE_BODY);
	buf_reset(out);
	return rc;
}

static int
stream_body(struct smtp *s, const struct smtp_txn *t,
    struct smtp_dotstuff *d, struct buf *out, struct bm_err *e)
{
	char *chunk = xmalloc(SMTP_CHUNK);
	long long off = t->body_off, left = t->body_len;
	ssize_t r;
	int rc = 0;

	while (t->body_fd >= 0 && left != 0 && rc == 0) {
		r = pread(t->body_fd, chunk, left > 0 && left < SMTP_CHUNK ?
		    (size_t)left : SMTP_CHUNK, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r == 0 && left > 0)) {
			rc = err_set(e, EX_IOERR, "cannot read the message: %s",
			    r < 0 ? strerror(errno) : "file is shorter than "
			    "expected");
			if (e != NULL)
				e->v.stage = STAGE_BODY;
			break;
		}
		if (r == 0)
			break;
		smtp_dotstuff(d, chunk, (size_t)r, out);
		off += r;
		if (left > 0)
			left -= r;
		if (out->len >= SMTP_CHUNK)
			rc = flush_data(s, out, e);
	}
	free(chunk);
	return rc;
}

static int
send_message(struct smtp *s, const struct smtp_txn *t, struct bm_err *e)
{
	struct smtp_dotstuff d;
	struct buf out = BUF_INIT;
	int rc;

	if (s->verbose)
		fprintf(s->verbose, ">>> (message data)\n");
	smtp_dotstuff_init(&d);
	smtp_dotstuff(&d, t->head ? t->head : "", t->head ? t->head_len : 0,
	    &out);
	if ((rc = stream_body(s, t, &d, &out, e)) != 0)
		goto out;
	smtp_dotstuff_end(&d, &out);
	vlog(s, ">>> ", ".", 1);
	rc = flush_data(s, &out, e);
out:
	if (rc == EX_IOERR) {
		/* half a message was sent: close so it cannot be delivered */
		net_close(s->net);
		s->net = NULL;
		s->dead = 1;
	}
	buf_free(&out, 0);
	return rc;
}

/* The body, the final dot, and its reply: after the dot, a reply that is
 * lost, late or unreadable leaves the message with the server maybe, and
 * read_reply's verdict (temporary) says so. */
static int
txn_data(struct smtp *s, struct smtp_txn *t, struct bm_err *e)
{
	int rc;

	if ((rc = send_message(s, t, e)) != 0 ||
	    (rc = read_reply(s, STAGE_DOT, NULL, e)) != 0)
		return rc;
	reply_copy(&t->data, &s->last);
	if (t->data.code / 100 == 2) {
		txn_results(t, &t->data, 0, STAGE_DOT);
		return 0;
	}
	if (t->data.code >= 400)
		txn_results(t, &t->data, 0, STAGE_DOT);
	return refused_by(s, STAGE_DOT, &t->data, NULL, "message refused", e);
}

/* The outcome of the envelope: 0 when the data may be sent. */
static int
txn_verdict(struct smtp *s, struct smtp_txn *t, struct bm_err *e)
{
	char *what;
	int rc = 0;

	if (t->mail.code / 100 != 2) {
		if (t->mail.code >= 400)
			txn_results(t, &t->mail, 1, STAGE_MAIL);
		what = xasprintf("sender <%s> refused", t->sender);
		rc = refused_by(s, STAGE_MAIL, &t->mail, NULL, what, e);
		free(what);
	} else if (t->accepted == 0) {
		rc = txn_no_rcpt(s, t, e);
	} else if (t->data.code != 354) {
		/* a 2xx here would make the body commands: never send it */
		if (t->data.code >= 400)
			txn_results(t, &t->data, 0, STAGE_DATA);
		return refused_by(s, STAGE_DATA, &t->data, NULL,
		    "DATA refused", e);
	}
	if (rc && !s->dead)
		txn_abandon(s, t);
	return rc;
}

/* The connection went away: recipients without a reply (and those only
 * accepted at RCPT) get the cause, at the stage it happened. */
static void
txn_lost(struct smtp_txn *t, const struct bm_err *e)
{
	struct smtp_reply rep = { 0, "", NULL };
	size_t i;

	rep.text = (char *)(e ? e->msg : "connection lost");
	for (i = 0; i < t->nrcpts; i++)
		if (t->rcpts[i].text == NULL || t->rcpts[i].code / 100 == 2)
			rcpt_set(&t->rcpts[i], &rep, e ? (enum verdict_stage)
			    e->v.stage : STAGE_BODY);
}

int
smtp_send(struct smtp *s, struct smtp_txn *t, struct bm_err *e)
{
	long long size = 0, max = smtp_max_size(s);
	char **cmds = NULL;
	size_t i, ncmd = t->nrcpts + 2;
	int rc, utf8 = 0;

	memset(&t->mail, 0, sizeof(t->mail));
	memset(&t->data, 0, sizeof(t->data));
	t->accepted = 0;
	for (i = 0; i < t->nrcpts; i++) {
		t->rcpts[i].code = 0;
		t->rcpts[i].enh[0] = '\0';
		t->rcpts[i].text = NULL;
		t->rcpts[i].stage = STAGE_LOCAL;
	}
	err_set(e, 0, "%s", "");
	if ((rc = txn_check(t, &utf8, e)) != 0 ||
	    (rc = txn_size(t, &size, e)) != 0)
		return rc;
	if (max > 0 && size > max)
		return verdict_fail(e, VK_TOO_BIG, NULL, "message is %lld "
		    "bytes, the server accepts at most %lld", size, max);
	if (utf8 && !smtp_has_ext(s, "SMTPUTF8"))
		return verdict_fail(e, VK_NO_SMTPUTF8, NULL, "an address is "
		    "not ASCII and the server does not offer SMTPUTF8");
	if (s->dead || s->net == NULL) {
		err_set(e, EX_TEMPFAIL, "%s: connection lost", s->host);
		return verdict_lost(e, STAGE_MAIL);
	}
	cmds = xcalloc(ncmd, sizeof(*cmds));
	cmds[0] = mail_command(s, t, size, utf8);
	for (i = 0; i < t->nrcpts; i++)
		cmds[i + 1] = rcpt_command(s, &t->rcpts[i]);
	cmds[ncmd - 1] = xstrdup("DATA\r\n");
	if ((rc = txn_envelope(s, t, cmds, e)) == 0 &&
	    (rc = txn_verdict(s, t, e)) == 0)
		rc = txn_data(s, t, e);
	if (rc && s->dead)
		txn_lost(t, e);
	for (i = 0; i < ncmd; i++)
		free(cmds[i]);
	free(cmds);
	return rc;
}

void
smtp_txn_clear(struct smtp_txn *t)
{
	size_t i;

	for (i = 0; i < t->nrcpts; i++) {
		free(t->rcpts[i].text);
		t->rcpts[i].text = NULL;
	}
	free(t->mail.text);
	free(t->data.text);
	t->mail.text = t->data.text = NULL;
}

/* ---------------------------------------------------- RSET and QUIT */

int
smtp_alive(const struct smtp *s)
{
	return s != NULL && !s->dead && s->net != NULL;
}

int
smtp_rset(struct smtp *s, struct bm_err *e)
{
	int rc;

	if ((rc = command(s, "RSET", STAGE_RSET, NULL, e)) != 0)
		return rc;
	return s->last.code == 250 ? 0 : refused(s, STAGE_RSET, "RSET refused",
	    e);
}

void
smtp_close(struct smtp *s)
{
	struct bm_err ignored;

	if (s == NULL)
		return;
	if (s->net && !s->dead)
		command(s, "QUIT", STAGE_QUIT, NULL, &ignored);
	net_close(s->net);
	ext_clear(s);
	scrub_free(&s->scrub);
	free(s->last.text);
	buf_free(&s->line, 0);
	free(s->host);
	free(s);
}
