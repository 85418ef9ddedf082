/*
 * submit - the delivery path of one message: choose the account, spool and
 * canonicalise the input, gather the recipients (argv, -t headers, aliases),
 * complete the header (Date, Message-ID, From, Bcc removal, From policy),
 * get an OAuth2 token and hand the message to the SMTP client.  Every
 * failure leaves here as one sysexits code (see exits.h) and one line.
 */
#include "config.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "aliases.h"
#include "bsmtp.h"
#include "exits.h"
#include "log.h"
#include "message.h"
#include "smtp.h"
#include "state.h"
#include "submit.h"
#include "tokens.h"

struct delivery {
	struct config *c;
	const struct submit_req *r;
	struct account *a;
	struct message m;
	struct addr_list rcpts;
	char *sender;             /* envelope sender ("" for <>) */
	char *relay;
	char *fullname;
};

static double
now_seconds(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static const char *
account_domain(const struct account *a)
{
	return a->domain ? a->domain : conf_mailname();
}

/* "root" -> "root@domain"; anything with an '@' unchanged. */
static char *
qualify(const struct account *a, const char *addr)
{
	if (*addr == '\0' || strchr(addr, '@'))
		return xstrdup(addr);
	return xasprintf("%s@%s", addr, account_domain(a));
}

/* Whether addr is for this machine: no domain, localhost, or our own name. */
static int
is_local(const struct account *a, const char *addr)
{
	const char *d = addr_domain(addr);
	char host[256];

	if (d == NULL)
		return 1;
	if (strcasecmp(d, "localhost") == 0 ||
	    strcasecmp(d, "localhost.localdomain") == 0 ||
	    strcasecmp(d, conf_mailname()) == 0 ||
	    (a->domain && strcasecmp(d, a->domain) == 0))
		return 1;
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		if (strcasecmp(d, host) == 0)
			return 1;
	}
	return 0;
}

static char *
gecos_name(void)
{
	struct passwd *pw = getpwuid(getuid());
	struct buf b = BUF_INIT;
	const char *p;

	if (pw == NULL || pw->pw_gecos == NULL || pw->pw_gecos[0] == '\0' ||
	    pw->pw_gecos[0] == ',')
		return NULL;
	for (p = pw->pw_gecos; *p && *p != ','; p++) {
		if (*p != '&') {
			buf_addc(&b, *p);
			continue;
		}
		buf_addc(&b, (char)toupper((unsigned char)pw->pw_name[0]));
		buf_adds(&b, pw->pw_name + 1);
	}
	return buf_steal(&b);
}

/* The envelope sender: -f when the account may send as it, else the
 * account's address (Exchange refuses others with 5.7.60). */
static int
choose_sender(struct delivery *d, struct bm_err *e)
{
	const char *f = d->r->from;
	char *q;

	if (f == NULL) {
		d->sender = xstrdup(account_address(d->a));
		return 0;
	}
	if (*f == '\0') {
		d->sender = xstrdup("");
		return 0;
	}
	if (!addr_valid_mailbox(f, 1))
		return err_set(e, EX_USAGE, "bad sender address \"%s\": use "
		    "-f user@example.com", f);
	q = qualify(d->a, f);
	if (account_may_send_as(d->a, q)) {
		d->sender = q;
		return 0;
	}
	free(q);
	d->sender = xstrdup(account_address(d->a));
	return 0;
}

static int
add_argv_recipients(struct delivery *d, struct addr_list *out,
    struct bm_err *e)
{
	size_t i;

	for (i = 0; i < d->r->nwords; i++)
		if (addr_parse_argv(d->r->words[i], out) != 0)
			return err_set(e, EX_USAGE, "bad recipient \"%s\": "
			    "expected user@example.com", d->r->words[i]);
	return 0;
}

/* Validate, resolve local names through the aliases file, deduplicate. */
static int
resolve_recipients(struct delivery *d, struct addr_list *in, struct bm_err *e)
{
	struct aliases *al = NULL;
	const char *path = d->a->aliases ? d->a->aliases : "/etc/aliases";
	size_t i;
	int rc = 0;

	for (i = 0; i < in->n && rc == 0; i++) {
		const char *addr = in->v[i].addr;
		char *local;

		if (!addr_valid_mailbox(addr, 1)) {
			rc = err_set(e, EX_USAGE, "bad recipient address \"%s\"",
			    addr);
			break;
		}
		if (!is_local(d->a, addr)) {
			if (!addr_list_has(&d->rcpts, addr))
				addr_list_add(&d->rcpts, NULL, addr);
			continue;
		}
		if (al == NULL && (rc = aliases_load(path, &al, e)) != 0)
			break;
		local = xstrndup(addr, strcspn(addr, "@"));
		rc = aliases_expand(al, path, local, &d->rcpts, e);
		free(local);
	}
	aliases_free(al);
	return rc;
}

static int
gather_recipients(struct delivery *d, struct bm_err *e)
{
	struct addr_list all = { 0 };
	int rc;

	if ((rc = add_argv_recipients(d, &all, e)) != 0)
		goto out;
	if (d->r->read_recipients &&
	    (rc = msg_header_recipients(&d->m, &all, e)) != 0)
		goto out;
	if (all.n == 0) {
		rc = err_set(e, EX_USAGE, "no recipients: name them on the "
		    "command line or use -t to read To/Cc/Bcc");
		goto out;
	}
	rc = resolve_recipients(d, &all, e);
out:
	addr_list_free(&all);
	return rc;
}

static int
may_send_as_cb(const void *ctx, const char *addr)
{
	return account_may_send_as(ctx, addr);
}

static int
complete_message(struct delivery *d, struct bm_err *e)
{
	struct msg_policy p;
	long long size;

	memset(&p, 0, sizeof(p));
	p.account_addr = account_address(d->a);
	p.may_send_as = may_send_as_cb;
	p.ctx = d->a;
	p.policy = (int)d->a->from_policy;
	d->fullname = d->r->fullname ? xstrdup(d->r->fullname) : gecos_name();
	p.fullname = d->fullname;
	p.domain = account_domain(d->a);
	p.now = time(NULL);
	if (msg_complete(&d->m, &p, e) != 0)
		return e->code;
	size = (long long)d->m.head_len + d->m.body_len;
	if (d->a->max_size > 0 && size > d->a->max_size)
		return err_set(e, EX_DATAERR, "message is %lld bytes, account "
		    "%s allows at most %lld (max_size)", size, d->a->name,
		    d->a->max_size);
	return 0;
}

static int
is_bad_token_reply(const struct smtp_reply *r)
{
	return r && r->code == 535 && strcmp(r->enh, "5.7.3") == 0;
}

/* AUTH with the token; when the server refuses a token we believed valid
 * (535 5.7.3), fetch a fresh one and try once more. */
static int
authenticate(struct smtp *s, const struct account *a, char **tok,
    struct bm_err *e)
{
	char *fresh = NULL;
	int rc;

	rc = smtp_auth(s, a->auth, a->user, *tok, e);
	if (rc != 0 && is_bad_token_reply(smtp_last_reply(s))) {
		if ((rc = tokens_refresh(a, *tok, &fresh, e)) == 0)
			rc = smtp_auth(s, a->auth, a->user, fresh, e);
		wipe_free(*tok);
		*tok = fresh;
	}
	return rc;
}

static int
needs_smtputf8(const struct delivery *d)
{
	const unsigned char *p;
	size_t i;

	for (p = (const unsigned char *)d->sender; *p; p++)
		if (*p >= 0x80)
			return 1;
	for (i = 0; i < d->rcpts.n; i++)
		for (p = (const unsigned char *)d->rcpts.v[i].addr; *p; p++)
			if (*p >= 0x80)
				return 1;
	return 0;
}

static void
log_result(struct delivery *d, const char *to, const char *status,
    const char *reply)
{
	struct log_entry le;

	memset(&le, 0, sizeof(le));
	le.msgid = msg_message_id(&d->m);
	le.account = d->a->name;
	le.from = d->sender;
	le.to = to;
	le.relay = d->relay;
	le.delay = now_seconds() - d->r->received;
	le.size = (long long)d->m.head_len + d->m.body_len;
	le.status = status;
	le.reply = reply;
	log_delivery(&le);
}

static const char *
status_for(int code)
{
	if (code == 0)
		return "sent";
	return exits_is_temporary(code) ? "deferred" : "bounced";
}

static void
report(const struct delivery *d, const char *msg)
{
	if (d->r->error_mode != ERRMODE_QUIET)
		warnx_("%s", msg);
}

/* Whether the server refused this recipient at RCPT time (rather than
 * the whole message, whose reply every remaining recipient carries). */
static int
rcpt_refused(const struct smtp_txn *t, const struct smtp_rcpt *rp)
{
	const struct smtp_reply *m = t->data.code ? &t->data : &t->mail;

	if (rp->code < 400)
		return 0;
	return !(m->code == rp->code && strcmp(m->enh, rp->enh) == 0 &&
	    m->text && rp->text && strcmp(m->text, rp->text) == 0);
}

static void
add_addr(struct buf *b, const char *addr)
{
	buf_addf(b, "%s<%s>", b->len ? "," : "", addr);
}

/* Log and report each recipient's outcome: one line for those who got the
 * message, one per recipient refused at RCPT time, one for the rest when
 * the message as a whole failed.  The exit code is the message's failure,
 * else the first refusal's, else 0; e holds the line the caller prints. */
static int
settle(struct delivery *d, struct smtp_txn *t, int rc, struct bm_err *e)
{
	struct buf sent = BUF_INIT, failed = BUF_INIT;
	int first = 0, all_refused = rc != 0 && t->accepted == 0 &&
	    t->mail.code / 100 == 2;
	size_t i;

	for (i = 0; i < t->nrcpts; i++) {
		struct smtp_rcpt *rp = &t->rcpts[i];
		int code = rp->code ? exits_from_smtp(rp->code, rp->enh,
		    rp->text) : rc;
		char *what, *to;

		if (rc == 0 && rp->code / 100 == 2) {
			add_addr(&sent, rp->addr);
			continue;
		}
		if (!rcpt_refused(t, rp)) {
			add_addr(&failed, rp->addr);
			continue;
		}
		what = xasprintf("recipient %s refused (%d%s%s %s)", rp->addr,
		    rp->code, rp->enh[0] ? " " : "", rp->enh,
		    rp->text ? rp->text : "");
		to = xasprintf("<%s>", rp->addr);
		log_result(d, to, status_for(code), what);
		/* the first refusal is the caller's to print, through e */
		if (first == 0 && (rc == 0 || all_refused))
			err_set(e, rc ? rc : code, "%s", what);
		else
			report(d, what);
		if (first == 0)
			first = code;
		free(what);
		free(to);
	}
	if (sent.len)
		log_result(d, sent.data, "sent", t->data.text ? t->data.text : "");
	if (failed.len)
		log_result(d, failed.data, status_for(rc), e->msg);
	buf_free(&sent, 0);
	buf_free(&failed, 0);
	return rc ? rc : first;
}

static int
send_message(struct delivery *d, struct bm_err *e)
{
	struct smtp_opts o;
	struct smtp_txn t;
	struct smtp *s = NULL;
	char *tok = NULL;
	size_t i;
	int rc;

	memset(&o, 0, sizeof(o));
	o.host = d->a->host;
	o.port = d->a->port;
	o.tls = d->a->tls;
	o.ca_file = d->a->ca_file;
	o.timeout = d->a->timeout;
	o.helo_name = conf_mailname();
	o.verbose = d->r->verbose ? stderr : NULL;

	memset(&t, 0, sizeof(t));
	t.sender = d->sender;
	t.nrcpts = d->rcpts.n;
	t.rcpts = xcalloc(t.nrcpts, sizeof(*t.rcpts));
	for (i = 0; i < t.nrcpts; i++) {
		t.rcpts[i].addr = d->rcpts.v[i].addr;
		t.rcpts[i].notify = d->r->notify;
	}
	t.eightbit = d->m.eightbit || d->r->body_8bit;
	t.smtputf8 = needs_smtputf8(d);
	t.dsn_ret = d->r->ret;
	t.dsn_envid = d->r->envid;
	t.head = d->m.head;
	t.head_len = d->m.head_len;
	t.body_fd = d->m.fd;
	t.body_off = d->m.body_off;
	t.body_len = d->m.body_len;

	/* the token first: no connection is opened when there is none */
	if ((rc = tokens_get(d->a, &tok, e)) == 0 &&
	    (rc = smtp_open(&s, &o, e)) == 0 &&
	    (rc = authenticate(s, d->a, &tok, e)) == 0)
		rc = smtp_send(s, &t, e);
	wipe_free(tok);
	if (rc != 0 && !t.mail.code) {
		struct buf to = BUF_INIT;

		for (i = 0; i < d->rcpts.n; i++)
			add_addr(&to, d->rcpts.v[i].addr);
		log_result(d, to.data, status_for(rc), e->msg);
		buf_free(&to, 0);
	} else {
		rc = settle(d, &t, rc, e);
	}
	state_note_delivery(d->a->name, rc == 0, e->msg);
	smtp_close(s);
	smtp_txn_clear(&t);
	free(t.rcpts);
	return rc;
}

static void
delivery_free(struct delivery *d)
{
	msg_free(&d->m);
	addr_list_free(&d->rcpts);
	free(d->sender);
	free(d->relay);
	free(d->fullname);
}

static const char *
spool_dir(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t == '/' ? t : "/tmp";
}

static struct account *
choose_account(struct config *c, const char *from)
{
	struct account *a = conf_default_account(c);
	char *q;

	if (from == NULL || *from == '\0' || a == NULL)
		return a;
	q = qualify(a, from);
	a = conf_select(c, q);
	free(q);
	return a;
}

int
submit_message(struct config *c, const struct submit_req *r, int in_fd,
    struct bm_err *e)
{
	struct delivery d;
	int rc;

	memset(&d, 0, sizeof(d));
	d.m.fd = -1;
	d.c = c;
	d.r = r;
	if ((d.a = choose_account(c, r->from)) == NULL)
		return err_set(e, EX_CONFIG, "no account in %s: add one (see "
		    "bearmail.conf(5))", c->path ? c->path : "the configuration");
	log_setup(d.a);
	d.relay = xasprintf("%s:%d", d.a->host, d.a->port);
	if ((rc = msg_spool(&d.m, in_fd, r->ignore_dots, spool_dir(), e)) != 0 ||
	    (rc = choose_sender(&d, e)) != 0 ||
	    (rc = gather_recipients(&d, e)) != 0 ||
	    (rc = complete_message(&d, e)) != 0)
		goto out;
	if (r->delivery != DELIVERY_SYNC) {
		rc = err_set(e, EX_UNAVAILABLE, "delivery mode %s needs the mail "
		    "queue, which this version does not have yet: use -odi",
		    r->delivery == DELIVERY_QUEUE ? "-odq" : "-odb");
		goto out;
	}
	if ((rc = send_message(&d, e)) == EX_TEMPFAIL) {
		size_t n = strlen(e->msg);

		snprintf(e->msg + n, sizeof(e->msg) - n, "; not queued: this "
		    "version has no mail queue, try again later");
	}
out:
	delivery_free(&d);
	return rc;
}

/* ---------------------------------------------------------- -bs, -bv */

struct dialogue {
	struct config *c;
	const struct submit_req *r;
};

static int
bs_check_rcpt(void *ctx, const char *rcpt, struct bm_err *e)
{
	struct dialogue *dg = ctx;
	struct delivery d;
	struct addr_list one = { 0 };
	int rc;

	memset(&d, 0, sizeof(d));
	d.a = conf_default_account(dg->c);
	if (d.a == NULL)
		return err_set(e, EX_CONFIG, "no account configured");
	addr_list_add(&one, NULL, rcpt);
	rc = resolve_recipients(&d, &one, e);
	addr_list_free(&one);
	addr_list_free(&d.rcpts);
	return rc;
}

static int
bs_deliver(void *ctx, const char *sender, char **rcpts, size_t nrcpts,
    int data_fd, int eightbit, struct bm_err *e)
{
	struct dialogue *dg = ctx;
	struct submit_req r = *dg->r;

	r.from = sender;
	r.words = rcpts;
	r.nwords = nrcpts;
	r.read_recipients = 0;
	r.ignore_dots = 1;
	r.body_8bit = eightbit;
	r.error_mode = ERRMODE_QUIET;
	r.received = now_seconds();
	return submit_message(dg->c, &r, data_fd, e);
}

int
submit_smtp_dialogue(struct config *c, const struct submit_req *r, FILE *in,
    FILE *out)
{
	struct bsmtp_ops ops = { bs_check_rcpt, bs_deliver };
	struct dialogue dg = { c, r };

	return bsmtp_run(in, out, conf_mailname(), &ops, &dg);
}

int
submit_verify(struct config *c, const struct submit_req *r, FILE *out)
{
	struct delivery d;
	struct bm_err e = { 0, "" };
	size_t i;
	int rc;

	memset(&d, 0, sizeof(d));
	d.r = r;
	if ((d.a = choose_account(c, r->from)) == NULL)
		die(EX_CONFIG, "no account configured");
	if ((rc = gather_recipients(&d, &e)) != 0) {
		fprintf(out, "%s\n", e.msg);
		goto out;
	}
	for (i = 0; i < d.rcpts.n; i++)
		fprintf(out, "%s... deliverable: account %s, relay %s:%d\n",
		    d.rcpts.v[i].addr, d.a->name, d.a->host, d.a->port);
out:
	addr_list_free(&d.rcpts);
	return rc;
}

int
submit_newaliases(struct config *c, struct bm_err *e)
{
	struct account *a = conf_default_account(c);
	struct aliases *al = NULL;
	int rc;

	if (a == NULL)
		return err_set(e, EX_CONFIG, "no account configured");
	rc = aliases_load(a->aliases ? a->aliases : "/etc/aliases", &al, e);
	aliases_free(al);
	return rc;
}
