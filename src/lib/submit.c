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
#include "deliver.h"
#include "dsn.h"
#include "exits.h"
#include "log.h"
#include "message.h"
#include "qrun.h"
#include "queue.h"
#include "smtp.h"
#include "state.h"
#include "submit.h"

struct delivery {
	struct config *c;
	const struct submit_req *r;
	struct account *a;
	struct message m;
	struct addr_list rcpts;
	char *sender;             /* envelope sender ("" for <>) */
	char *relay;
	char *fullname;
	struct queue *q;          /* opened when first needed */
	int spawn_flush;          /* start a background queue run at the end */
	int queued;               /* (part of) this message went to the queue */
	char queue_id[32];        /*   under this id */
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
	const struct smtp_reply *m = &t->data;

	if (rp->code < 400 || t->mail.code / 100 != 2)
		return 0;
	return !(m->code == rp->code && strcmp(m->enh, rp->enh) == 0 &&
	    m->text && rp->text && strcmp(m->text, rp->text) == 0);
}

static void
add_addr(struct buf *b, const char *addr)
{
	buf_addf(b, "%s<%s>", b->len ? "," : "", addr);
}

/* A failure that a later try (or a login, or an administrator) can fix:
 * the message waits in the queue instead of being refused.  Before the
 * transaction that is anything but a malformed or oversized message. */
static int
worth_queueing(int code, int before_txn)
{
	if (before_txn)
		return code != EX_USAGE && code != EX_DATAERR && code != EX_NOUSER;
	return exits_is_temporary(code);
}

static int
open_queue(struct delivery *d, struct bm_err *e)
{
	char *dir;
	int rc;

	if (d->q != NULL)
		return 0;
	dir = queue_dir_for(d->a);
	rc = queue_open(dir, &d->q, e);
	free(dir);
	return rc;
}

static void
env_init(struct delivery *d, struct qenv *env)
{
	memset(env, 0, sizeof(*env));
	env->account = xstrdup(d->a->name);
	env->sender = xstrdup(d->sender);
	env->msgid = msg_message_id(&d->m) ?
	    xstrdup(msg_message_id(&d->m)) : NULL;
	env->created = (long long)d->r->received;
	env->dsn_ret = d->r->ret ? xstrdup(d->r->ret) : NULL;
	env->dsn_envid = d->r->envid ? xstrdup(d->r->envid) : NULL;
	env->eightbit = d->m.eightbit || d->r->body_8bit;
	env->error_mode_mail = d->r->error_mode == ERRMODE_MAIL;
}

/* Durably queue the message for env's recipients; logs "deferred". */
static int
enqueue(struct delivery *d, struct qenv *env, const char *why,
    struct bm_err *e)
{
	struct buf to = BUF_INIT;
	char *line;
	size_t i;
	int rc;

	free(env->last_error);
	env->last_error = xstrdup(why);
	if ((rc = open_queue(d, e)) != 0 ||
	    (rc = queue_enqueue(d->q, env, d->m.head, d->m.head_len, d->m.fd,
	    d->m.body_off, d->m.body_len, e)) != 0) {
		char *cause = xstrdup(e->msg);

		err_set(e, rc, "the message could not be delivered (%s) nor "
		    "queued: %s", why, cause);
		free(cause);
		return rc;
	}
	d->queued = 1;
	snprintf(d->queue_id, sizeof(d->queue_id), "%s", env->id);
	for (i = 0; i < env->nrcpts; i++)
		add_addr(&to, env->rcpts[i].addr);
	line = xasprintf("%s, queued as %s", why, env->id);
	log_result(d, to.data, "deferred", line);
	free(line);
	buf_free(&to, 0);
	return 0;
}

/* What happened to one transaction, recipient by recipient. */
struct outcome {
	struct buf sent;          /* addresses the server accepted */
	struct qenv later;        /* to be queued */
	char *later_why;
	struct qenv failed;       /* refused for good (for the bounce) */
	int fail_code;            /* the first permanent refusal's code */
	char *fail_msg;
};

static void
note_failure(struct delivery *d, struct outcome *o, struct smtp_rcpt *rp,
    int code, const char *what)
{
	char *to = xasprintf("<%s>", rp->addr);
	struct qrcpt *q;

	log_result(d, to, "bounced", what);
	qenv_add_rcpt(&o->failed, rp->addr, rp->notify);
	q = &o->failed.rcpts[o->failed.nrcpts - 1];
	q->state = QR_FAILED;
	q->code = rp->code;
	snprintf(q->enh, sizeof(q->enh), "%s", rp->enh);
	q->reply = xstrdup(what);
	if (o->fail_code == 0) {
		o->fail_code = code;
		o->fail_msg = xstrdup(what);
	} else {
		report(d, what);
	}
	free(to);
}

static void
note_later(struct outcome *o, struct smtp_rcpt *rp, const char *why)
{
	qenv_add_rcpt(&o->later, rp->addr, rp->notify);
	if (o->later_why == NULL)
		o->later_why = xstrdup(why);
}

static void
classify(struct delivery *d, struct smtp_txn *t, int rc, const char *why,
    struct outcome *o)
{
	int before_txn = t->mail.code == 0;
	size_t i;

	for (i = 0; i < t->nrcpts; i++) {
		struct smtp_rcpt *rp = &t->rcpts[i];
		char *what;
		int code;

		if (rc == 0 && rp->code / 100 == 2) {
			add_addr(&o->sent, rp->addr);
			continue;
		}
		if (!rcpt_refused(t, rp)) {
			if (worth_queueing(rc, before_txn))
				note_later(o, rp, why);
			else
				note_failure(d, o, rp, rc, why);
			continue;
		}
		code = exits_from_smtp(rp->code, rp->enh, rp->text);
		what = xasprintf("recipient %s refused (%d%s%s %s)", rp->addr,
		    rp->code, rp->enh[0] ? " " : "", rp->enh,
		    rp->text ? rp->text : "");
		if (exits_is_temporary(code))
			note_later(o, rp, what);
		else
			note_failure(d, o, rp, code, what);
		free(what);
	}
}

static void
outcome_free(struct outcome *o)
{
	buf_free(&o->sent, 0);
	qenv_free(&o->later);
	qenv_free(&o->failed);
	free(o->later_why);
	free(o->fail_msg);
}

/* Exchange's throttling replies: retry later than usual. */
static int
is_throttled(const char *why)
{
	return strstr(why, "4.3.2") || strstr(why, "SubmissionQuota") ||
	    strstr(why, "Concurrent connections");
}

/* Bounce the permanent failures to the sender (-oem): 0 when it is queued. */
static int
bounce(struct delivery *d, struct outcome *o, struct bm_err *e)
{
	int rc;

	if (*d->sender == '\0')
		return o->fail_code;
	if ((rc = open_queue(d, e)) != 0 ||
	    (rc = dsn_enqueue_bounce(d->q, d->a, &o->failed, d->m.head,
	    d->m.head_len, 0, e)) != 0)
		return rc;
	d->spawn_flush = 1;
	return 0;
}

/*
 * Settle a transaction: log what was sent, queue what a later try may
 * deliver (exit 0 once it is durably queued), and report what was refused
 * for good: its exit code, or with -oem a bounce to the sender.
 */
static int
conclude(struct delivery *d, struct smtp_txn *t, int rc, struct bm_err *e)
{
	struct outcome o;
	char *why = xstrdup(rc ? e->msg : "");
	int ret = 0;

	memset(&o, 0, sizeof(o));
	env_init(d, &o.later);
	env_init(d, &o.failed);
	classify(d, t, rc, why, &o);
	if (o.sent.len)
		log_result(d, o.sent.data, "sent", t->data.text ?
		    t->data.text : "");
	if (o.later.nrcpts > 0) {
		o.later.attempts = 1;
		o.later.next_try = (long long)time(NULL) +
		    queue_backoff(1, is_throttled(o.later_why));
		if ((ret = enqueue(d, &o.later, o.later_why, e)) != 0)
			goto out;
		if (rc != EX_TEMPFAIL || d->r->verbose) {
			char *line = xasprintf("%s (queued as %s)", o.later_why,
			    o.later.id);

			report(d, line);
			free(line);
		}
	}
	if (o.failed.nrcpts > 0) {
		err_set(e, o.fail_code, "%s", o.fail_msg);
		ret = d->r->error_mode == ERRMODE_MAIL ? bounce(d, &o, e) :
		    o.fail_code;
	}
out:
	outcome_free(&o);
	free(why);
	return ret;
}

static void
txn_init(struct delivery *d, struct smtp_txn *t)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->sender = d->sender;
	t->nrcpts = d->rcpts.n;
	t->rcpts = xcalloc(t->nrcpts, sizeof(*t->rcpts));
	for (i = 0; i < t->nrcpts; i++) {
		t->rcpts[i].addr = d->rcpts.v[i].addr;
		t->rcpts[i].notify = d->r->notify;
	}
	t->eightbit = d->m.eightbit || d->r->body_8bit;
	t->dsn_ret = d->r->ret;
	t->dsn_envid = d->r->envid;
	t->head = d->m.head;
	t->head_len = d->m.head_len;
	t->body_fd = d->m.fd;
	t->body_off = d->m.body_off;
	t->body_len = d->m.body_len;
}

/* Deliver now, within the account's connection limit. */
static int
send_message(struct delivery *d, struct bm_err *e)
{
	struct dsession *ds = NULL;
	struct smtp_txn t;
	struct bm_err qe = { 0, "" };
	int rc, slot = -1;

	txn_init(d, &t);
	if (open_queue(d, &qe) == 0 &&
	    queue_slot_take(d->q, d->a, &slot, &qe) == 1)
		rc = err_set(e, EX_TEMPFAIL, "all %d connections of account "
		    "%s are busy (max_connections)", d->a->max_connections,
		    d->a->name);
	else if ((rc = deliver_open(d->a, d->r->verbose ? stderr : NULL, &ds,
	    e)) == 0)
		rc = deliver_send(ds, &t, e);
	deliver_close(ds);
	queue_slot_release(slot);
	state_note_delivery(d->a->name, rc == 0, e->msg);
	rc = conclude(d, &t, rc, e);
	smtp_txn_clear(&t);
	free(t.rcpts);
	return rc;
}

/* -odq and -odb: straight into the queue. */
static int
queue_only(struct delivery *d, struct bm_err *e)
{
	struct qenv env;
	size_t i;
	int rc;

	env_init(d, &env);
	for (i = 0; i < d->rcpts.n; i++)
		qenv_add_rcpt(&env, d->rcpts.v[i].addr, d->r->notify);
	rc = enqueue(d, &env, d->r->delivery == DELIVERY_QUEUE ?
	    "queued by request (-odq)" : "background delivery (-odb)", e);
	if (rc == 0 && d->r->delivery == DELIVERY_BACKGROUND)
		d->spawn_flush = 1;
	qenv_free(&env);
	return rc;
}

/* After a successful delivery, anything due in the queue goes out too. */
static int
queue_has_due(struct delivery *d)
{
	struct qenv *v = NULL;
	size_t n = 0, i;
	long long now = (long long)time(NULL);
	int due = 0;

	if (open_queue(d, NULL) != 0 || queue_list(d->q, &v, &n, NULL) != 0)
		return 0;
	for (i = 0; i < n && !due; i++)
		due = v[i].state != Q_HOLD && v[i].next_try <= now;
	queue_list_free(v, n);
	return due;
}

static void
delivery_free(struct delivery *d)
{
	msg_free(&d->m);
	addr_list_free(&d->rcpts);
	free(d->sender);
	free(d->relay);
	free(d->fullname);
	queue_close(d->q);
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
	if (r->delivery != DELIVERY_SYNC)
		rc = queue_only(&d, e);
	else if ((rc = send_message(&d, e)) == 0 && !d.queued &&
	    !d.spawn_flush)
		d.spawn_flush = queue_has_due(&d);
	if (d.spawn_flush)
		qrun_spawn_flush(c->path, NULL);
	/* success: e says where the message went when it is not delivered
	 * yet (the -bs reply quotes it); nothing stale from a retried step */
	if (rc == 0 && d.queued)
		err_set(e, 0, "queued as %s", d.queue_id);
	else if (rc == 0)
		e->msg[0] = '\0';
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
