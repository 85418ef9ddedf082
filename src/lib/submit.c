/*
 * submit - the delivery path of one message: choose the account, spool and
 * canonicalise the input, gather the recipients (argv, -t headers, aliases),
 * complete the header (Date, Message-ID, From, Bcc removal, From policy),
 * get an OAuth2 token and hand the message to the SMTP client.  What each
 * recipient's outcome means -- sent, waiting in the queue, refused -- is
 * the failure policy's (verdict.h); this file acts on it: logs, queues,
 * bounces, and leaves with one sysexits code and one line per refusal.
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
#include "log.h"
#include "message.h"
#include "queue.h"
#include "smtp.h"
#include "state.h"
#include "submit.h"
#include "verdict.h"

struct delivery {
	struct config *c;
	const struct submit_req *r;
	struct account *a;
	struct message m;
	struct addr_list rcpts;
	char *sender;             /* envelope sender ("" for <>) */
	char *relay;
	char *fullname;
	enum delivery_mode mode;  /* -od, else the account's delivery */
	struct queue *q;          /* opened when first needed */
	int flush;                /* the queue has work now: a run should start */
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

/* The envelope of the message: every recipient, pending. */
static void
env_init(struct delivery *d, struct qenv *env)
{
	size_t i;

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
	for (i = 0; i < d->rcpts.n; i++)
		qenv_add_rcpt(env, d->rcpts.v[i].addr, d->r->notify);
}

/* Durably queue the message for env's pending recipients (the others
 * are recorded as done); logs "deferred" with why. */
static int
enqueue(struct delivery *d, struct qenv *env, const char *to,
    const char *why, struct bm_err *e)
{
	char *line;
	int rc;

	free(env->last_error);
	env->last_error = xstrdup(why);
	if ((rc = open_queue(d, e)) != 0 ||
	    (rc = queue_enqueue(d->q, env, d->m.head, d->m.head_len, d->m.fd,
	    d->m.body_off, d->m.body_len, e)) != 0)
		return err_prefix(e, "the message could not be delivered "
		    "(%s) nor queued", why);
	d->queued = 1;
	snprintf(d->queue_id, sizeof(d->queue_id), "%s", env->id);
	line = xasprintf("%s, queued as %s", why, env->id);
	log_result(d, to, "deferred", line);
	free(line);
	return 0;
}

/* Bounce the refused recipients to the sender (-oem): 0 once the bounce
 * is queued. */
static int
bounce(struct delivery *d, const struct qenv *env, const struct attempt *at,
    struct bm_err *e)
{
	int rc;

	if (*d->sender == '\0')
		return at->fail_ex;
	if ((rc = open_queue(d, e)) != 0 ||
	    (rc = dsn_enqueue_bounce(d->q, d->a, env, at->newly_failed,
	    d->m.head, d->m.head_len, 0, e)) != 0)
		return rc;
	d->flush = 1;
	return 0;
}

/* Each refusal, once: the first is the caller's error (e), the others
 * are printed now. */
static void
report_failures(struct delivery *d, const struct attempt *at,
    struct bm_err *e)
{
	const char *p = at->more_failed.data, *nl;
	char *line;

	for (; p != NULL && (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		line = xstrndup(p, (size_t)(nl - p));
		report(d, line);
		free(line);
	}
	err_set(e, at->fail_ex, "%s", at->failed_reply);
}

/*
 * Settle the attempt: log what was sent, queue what a later try may
 * deliver (0 once it is durably queued; the line is printed unless the
 * wait is a plain temporary failure), and report what was refused for
 * good: its exit code, or with -oem a bounce to the sender.
 */
static int
conclude(struct delivery *d, struct qenv *env, struct attempt *at,
    int rc, struct bm_err *e)
{
	int ret = 0;

	if (at->nsent)
		log_result(d, at->sent.data, "sent", at->sent_reply);
	if (at->nfailed)
		log_result(d, at->failed.data, "bounced", at->failed_reply);
	if (at->nlater) {
		env->attempts = 1;
		env->next_try = (long long)time(NULL) +
		    queue_backoff(1, at->throttled);
		if ((ret = enqueue(d, env, at->later.data, at->later_reply,
		    e)) != 0)
			return ret;
		if (rc != EX_TEMPFAIL || d->r->verbose) {
			char *line = xasprintf("%s (queued as %s)",
			    at->later_reply, env->id);

			report(d, line);
			free(line);
		}
	}
	if (at->nfailed) {
		report_failures(d, at, e);
		ret = d->r->error_mode == ERRMODE_MAIL ?
		    bounce(d, env, at, e) : at->fail_ex;
	}
	return ret;
}

/* The transaction for every recipient of env; map[j] = j. */
static void
txn_init(struct delivery *d, const struct qenv *env, struct smtp_txn *t,
    size_t *map)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->sender = d->sender;
	t->nrcpts = env->nrcpts;
	t->rcpts = xcalloc(t->nrcpts + 1, sizeof(*t->rcpts));
	for (i = 0; i < t->nrcpts; i++) {
		map[i] = i;
		t->rcpts[i].addr = env->rcpts[i].addr;
		t->rcpts[i].notify = env->rcpts[i].notify;
	}
	t->eightbit = env->eightbit;
	t->dsn_ret = d->r->ret;
	t->dsn_envid = d->r->envid;
	t->head = d->m.head;
	t->head_len = d->m.head_len;
	t->body_fd = d->m.fd;
	t->body_off = d->m.body_off;
	t->body_len = d->m.body_len;
}

/* One attempt now, within the account's connection limit; its outcome
 * per recipient in at. */
static int
attempt_now(struct delivery *d, struct qenv *env, struct attempt *at,
    struct bm_err *e)
{
	struct dsession *ds = NULL;
	struct smtp_txn t;
	struct bm_err qe = { 0 };
	size_t *map = xcalloc(env->nrcpts + 1, sizeof(*map));
	int rc, slot = -1;

	txn_init(d, env, &t, map);
	if (open_queue(d, &qe) == 0 &&
	    queue_slot_take(d->q, d->a, &slot, &qe) == 1) {
		rc = verdict_fail(e, VK_BUSY, d->a->name, "all %d connections "
		    "of account %s are busy (max_connections)",
		    d->a->max_connections, d->a->name);
		attempt_all(at, env, e);
	} else if ((rc = deliver_open(d->a, d->r->verbose ? stderr : NULL,
	    &ds, e)) != 0) {
		attempt_all(at, env, e);
	} else {
		rc = deliver_send(ds, &t, e);
		attempt_txn(at, env, &t, map, e);
	}
	deliver_close(ds);
	queue_slot_release(slot);
	state_note_delivery(d->a->name, rc == 0, e->msg);
	smtp_txn_clear(&t);
	free(t.rcpts);
	free(map);
	return rc;
}

/* Deliver now: what cannot go out now waits in the queue. */
static int
send_message(struct delivery *d, struct bm_err *e)
{
	struct attempt at;
	struct qenv env;
	int rc;

	env_init(d, &env);
	attempt_init(&at, &env);
	rc = attempt_now(d, &env, &at, e);
	rc = conclude(d, &env, &at, rc, e);
	attempt_free(&at);
	qenv_free(&env);
	return rc;
}

/* -odq and -odb: straight into the queue. */
static int
queue_only(struct delivery *d, struct bm_err *e)
{
	int queue = d->mode == DELIVERY_QUEUE;
	struct buf to = BUF_INIT;
	struct qenv env;
	char *why;
	size_t i;
	int rc;

	env_init(d, &env);
	for (i = 0; i < env.nrcpts; i++)
		buf_addf(&to, "%s<%s>", i ? "," : "", env.rcpts[i].addr);
	why = xasprintf("%s (%s)", queue ? "queued by request" :
	    "background delivery", d->r->delivery_set ? queue ? "-odq" :
	    "-odb" : queue ? "delivery queue" : "delivery background");
	rc = enqueue(d, &env, to.data, why, e);
	free(why);
	if (rc == 0 && d->mode == DELIVERY_BACKGROUND)
		d->flush = 1;
	buf_free(&to, 0);
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
    struct submit_result *res, struct bm_err *e)
{
	struct delivery d;
	int rc;

	memset(res, 0, sizeof(*res));
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
	d.mode = r->delivery_set ? r->delivery : d.a->delivery;
	if (d.mode != DELIVERY_SYNC)
		rc = queue_only(&d, e);
	else if ((rc = send_message(&d, e)) == 0 && !d.queued && !d.flush)
		d.flush = queue_has_due(&d);
	res->flush = d.flush;
	if (d.queued)
		snprintf(res->queued_as, sizeof(res->queued_as), "%s",
		    d.queue_id);
out:
	delivery_free(&d);
	return rc;
}

/* ---------------------------------------------------------- -bs, -bv */

struct dialogue {
	struct config *c;
	const struct submit_req *r;
	int flush;                /* some message asked for a queue run */
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
    int data_fd, int eightbit, char *note, size_t note_len, struct bm_err *e)
{
	struct dialogue *dg = ctx;
	struct submit_req r = *dg->r;
	struct submit_result res;
	int rc;

	r.from = sender;
	r.words = rcpts;
	r.nwords = nrcpts;
	r.read_recipients = 0;
	r.ignore_dots = 1;
	r.body_8bit = eightbit;
	r.error_mode = ERRMODE_QUIET;
	r.received = now_seconds();
	rc = submit_message(dg->c, &r, data_fd, &res, e);
	dg->flush |= res.flush;
	/* the 250 reply says where the message went when it waits */
	if (rc == 0 && res.queued_as[0] != '\0')
		snprintf(note, note_len, "queued as %s", res.queued_as);
	return rc;
}

int
submit_smtp_dialogue(struct config *c, const struct submit_req *r, FILE *in,
    FILE *out, int *flush)
{
	struct bsmtp_ops ops = { bs_check_rcpt, bs_deliver };
	struct dialogue dg = { c, r, 0 };
	int rc;

	rc = bsmtp_run(in, out, conf_mailname(), &ops, &dg);
	*flush = dg.flush;
	return rc;
}

int
submit_verify(struct config *c, const struct submit_req *r, FILE *out)
{
	struct delivery d;
	struct bm_err e = { 0 };
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
