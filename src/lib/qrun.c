/*
 * qrun - the queue runner.  A flush takes, per account, the messages that
 * are due, expires (bounces) those older than queue_lifetime, and hands
 * the rest to up to max_connections forked workers.  Each worker holds a
 * connection slot (queue_slot_take), opens one authenticated session when
 * it first has something to send, and walks the due list: lock the
 * message (skip it when another process has it), re-read its envelope
 * (skip it when someone tried it since the list was made), respect the
 * per-account rate, send to the still-pending recipients, record each
 * recipient's fate, then remove, defer or bounce.  Also the mailq listing
 * (Postfix's format) and the administrator's drop/hold/release/retry.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "dsn.h"
#include "log.h"
#include "qrun.h"
#include "queue.h"
#include "verdict.h"

/* Workers per account when max_connections is 0 (no limit). */
#define UNLIMITED_WORKERS 4
/* The delay notice goes out once a message has waited this long. */
#define WARN_AFTER (4 * 3600)
/* The longest header block read back for a bounce. */
#define HEAD_MAX (1024 * 1024)
/* The first line of a listing, as Postfix prints it. */
/* queue ids are 19 characters: the first column is as wide, and the
 * sender/recipient column starts 9 further right than Postfix's 41 */
#define LIST_RCPT_COLUMN 50
#define LIST_WIDTH 87
#define LIST_HEADER "-Queue ID---------  --Size-- ----Arrival Time---- " \
	"-Sender/Recipient-------\n"
/* The rate file never holds more than this many bytes. */
#define RATE_FILE_MAX 65536

struct due {
	char id[32];
	int attempts;            /* as listed: changed means someone tried it */
};

/* One account's flush. */
struct runner {
	struct account *a;
	struct queue *q;
	FILE *verbose;
	int force;
	const char *only;        /* just this message (retry), or NULL */
	long long now;
	struct due *due;
	size_t ndue;
};

/* One connection's worth of work. */
struct worker {
	struct runner *r;
	struct dsession *s;
	int open_failed;         /* deliver_open failed: ... */
	struct bm_err open_err;  /* ... every message waits with this */
	int rate_hit;
};

static void
say(FILE *verbose, const char *fmt, ...) BM_PRINTF(2, 3);

static void
say(FILE *verbose, const char *fmt, ...)
{
	va_list ap;
	char *line, *clean;

	if (verbose == NULL)
		return;
	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	clean = log_sanitize(line);
	fprintf(verbose, "bearmail: %s\n", clean);
	fflush(verbose);
	free(line);
	free(clean);
}

/* ------------------------------------------------------- which messages */

static int
belongs(struct config *c, const struct account *a, const struct qenv *env)
{
	struct account *owner = conf_account(c, env->account);

	if (owner == NULL)
		owner = conf_default_account(c);
	return owner == a;
}

static int
is_due(const struct runner *r, const struct qenv *env)
{
	if (env->state == Q_HOLD || qenv_pending(env) == 0)
		return 0;
	if (r->only)
		return strcmp(env->id, r->only) == 0;
	return r->force || env->next_try <= r->now;
}

static int
is_expired(const struct runner *r, const struct qenv *env)
{
	return r->a->queue_lifetime > 0 && env->state != Q_HOLD &&
	    r->now - env->created >= r->a->queue_lifetime;
}

/* ------------------------------------------------------------- logging */

static void
log_outcome(const struct runner *r, const struct qenv *env,
    const struct worker *w, const char *to, const char *status,
    const char *reply)
{
	struct log_entry le;

	memset(&le, 0, sizeof(le));
	le.msgid = env->msgid;
	le.account = r->a->name;
	le.from = env->sender;
	le.to = to;
	le.relay = w && w->s ? deliver_relay(w->s) : "none";
	le.delay = (double)(r->now - env->created);
	le.size = env->size;
	le.status = status;
	le.reply = reply;
	log_delivery(&le);
}

/* --------------------------------------------------------- data, heads */

/* The header block of the queued message (up to the empty line). */
static void
read_head(struct queue *q, const char *id, struct buf *out)
{
	struct bm_err e;
	long long size;
	char chunk[8192];
	char *end = NULL;
	ssize_t n;
	off_t off = 0;
	int fd;

	if (queue_data_open(q, id, &fd, &size, &e) != 0)
		return;
	while (end == NULL && out->len < HEAD_MAX &&
	    (n = pread(fd, chunk, sizeof(chunk), off)) > 0) {
		buf_add(out, chunk, (size_t)n);
		off += n;
		end = strstr(out->data, "\r\n\r\n");
	}
	if (end)
		out->len = (size_t)(end - out->data) + 2;
	if (out->data)
		out->data[out->len] = '\0';
	close(fd);
}

/* Report env's recipients marked in pick (NULL: every one that is due a
 * report) to the sender: a bounce, or with warning a delay notice.  0
 * once it is durably queued, or when there is nothing to report. */
static int
report(struct runner *r, const struct qenv *env, const unsigned char *pick,
    int warning)
{
	struct buf head = BUF_INIT;
	struct bm_err e = { 0 };
	int rc;

	if (env->is_bounce || dsn_count(env, warning) == 0)
		return 0;
	read_head(r->q, env->id, &head);
	rc = dsn_enqueue_bounce(r->q, r->a, env, pick, head.data ? head.data :
	    "", head.len, warning, &e);
	if (rc != 0)
		log_line(LOG_ERR, "msgid=%s account=%s: cannot queue the %s: %s",
		    env->msgid ? env->msgid : "-", r->a->name,
		    warning ? "delay notice" : "bounce", e.msg);
	buf_free(&head, 0);
	return rc;
}

/*
 * The bounce for the recipients just refused could not be queued (a full
 * disk): they stay pending, so that the message is not removed before its
 * bounce is safe; the next run meets the refusal again and bounces then.
 */
static void
keep_refused(struct qenv *env, struct attempt *at)
{
	char *why = xasprintf("%s; its bounce could not be queued yet",
	    at->failed_reply);
	size_t i;

	for (i = 0; i < env->nrcpts; i++) {
		if (!at->newly_failed[i])
			continue;
		env->rcpts[i].state = QR_PENDING;
		at->newly_failed[i] = 0;
	}
	buf_addf(&at->later, "%s%s", at->later.len ? "," : "",
	    at->failed.data);
	at->nlater += at->nfailed;
	at->nfailed = 0;
	free(at->later_reply);
	at->later_reply = why;
}

/* ----------------------------------------------------------- the rate */

/* Keep the stamps of the last minute in text; 1 when there are max. */
static int
rate_count(char *text, long long now, int max, struct buf *keep)
{
	char *line, *save = NULL;
	int n = 0;

	for (line = strtok_r(text, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		long long t;

		if (str_to_ll(line, 0, now + 60000, &t) != 0 ||
		    t <= now - 60000)
			continue;
		buf_addf(keep, "%lld\n", t);
		n++;
	}
	return n >= max;
}

/*
 * Reserve one message of the account's rate: 0 (reserved), or 1 when
 * `rate` messages went out in the last minute, from any process.  The
 * file is flock'd for the few microseconds of the update.  When it cannot
 * be used the limit is not enforced (the server throttles anyway).
 */
static int
rate_take(struct runner *r)
{
	char *path, text[RATE_FILE_MAX + 1];
	struct buf keep = BUF_INIT;
	long long now = util_wall_ms();
	ssize_t n;
	int fd, hit = 0;

	if (r->a->rate <= 0)
		return 0;
	path = xasprintf("%s/locks/%s.rate", queue_path(r->q), r->a->name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	free(path);
	if (fd < 0 || flock(fd, LOCK_EX) != 0)
		goto out;
	n = pread(fd, text, RATE_FILE_MAX, 0);
	text[n > 0 ? n : 0] = '\0';
	hit = rate_count(text, now, r->a->rate, &keep);
	if (!hit)
		buf_addf(&keep, "%lld\n", now);
	if (ftruncate(fd, 0) == 0 && keep.len > 0 &&
	    pwrite(fd, keep.data, keep.len, 0) < 0)
		hit = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_free(&keep, 0);
	return hit;
}

/* ------------------------------------------------------ one attempt */

static void
txn_init(struct smtp_txn *t, const struct qenv *env, size_t *map,
    int data_fd)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->sender = env->sender;
	t->rcpts = xcalloc(env->nrcpts + 1, sizeof(*t->rcpts));
	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].state != QR_PENDING)
			continue;
		map[t->nrcpts] = i;
		t->rcpts[t->nrcpts].addr = env->rcpts[i].addr;
		t->rcpts[t->nrcpts++].notify = env->rcpts[i].notify;
	}
	t->eightbit = env->eightbit;
	t->dsn_ret = env->dsn_ret;
	t->dsn_envid = env->dsn_envid;
	t->body_fd = data_fd;
	t->body_len = -1;
}

/* One transaction for env's pending recipients on the worker's session:
 * 0, or -1 when the message is no longer there to settle (its data was
 * damaged: the queue has moved it to corrupt/ and logged it). */
static int
send_one(struct worker *w, struct qenv *env, struct attempt *at)
{
	struct bm_err e = { 0 };
	struct smtp_txn t;
	long long size;
	size_t *map;
	int fd, rc;

	if ((rc = queue_data_open(w->r->q, env->id, &fd, &size, &e)) != 0) {
		if (rc == EX_DATAERR || rc == EX_NOINPUT) {
			say(w->r->verbose, "%s: damaged: %s", env->id, e.msg);
			return -1;
		}
		verdict_session(&e);    /* not the message's fault: it waits */
		attempt_all(at, env, &e);
		return 0;
	}
	map = xcalloc(env->nrcpts + 1, sizeof(*map));
	txn_init(&t, env, map, fd);
	deliver_send(w->s, &t, &e);
	attempt_txn(at, env, &t, map, &e);
	smtp_txn_clear(&t);
	free(t.rcpts);
	free(map);
	close(fd);
	if (!deliver_alive(w->s)) {
		deliver_close(w->s);
		w->s = NULL;
	}
	return 0;
}

/* Defer what is pending: backoff, last error, maybe the delay notice. */
static void
defer(struct runner *r, struct qenv *env, const struct attempt *at)
{
	env->attempts++;
	env->next_try = r->now + queue_backoff(env->attempts, at->throttled);
	env->state = Q_DEFERRED;
	free(env->last_error);
	env->last_error = xstrdup(at->later_reply ? at->later_reply :
	    "deferred");
	if (!env->warned && !env->is_bounce &&
	    r->now - env->created >= WARN_AFTER)
		env->warned = report(r, env, NULL, 1) == 0;
}

/* Log, bounce, and write back (or remove) after an attempt. */
static void
conclude(struct worker *w, struct qenv *env, struct attempt *at)
{
	struct runner *r = w->r;
	struct bm_err e = { 0 };
	char *why;
	int rc;

	if (at->nsent)
		log_outcome(r, env, w, at->sent.data, "sent", at->sent_reply);
	if (at->nfailed && report(r, env, at->newly_failed, 0) != 0)
		keep_refused(env, at);
	if (at->nfailed)
		log_outcome(r, env, w, at->failed.data, "bounced",
		    at->failed_reply);
	if (qenv_pending(env) == 0) {
		rc = queue_remove(r->q, env->id, &e);
		say(r->verbose, "%s: done", env->id);
	} else {
		defer(r, env, at);
		why = xasprintf("%s, queued as %s", env->last_error, env->id);
		log_outcome(r, env, w, at->later.data, "deferred", why);
		say(r->verbose, "%s: deferred: %s", env->id, why);
		free(why);
		rc = queue_update(r->q, env, &e);
	}
	/* EX_NOINPUT: the message was moved to corrupt/ meanwhile (its data
	 * was found damaged while the bounce read its header), and logged */
	if (rc != 0 && rc != EX_NOINPUT)
		log_line(LOG_ERR, "queue %s: %s", queue_path(r->q), e.msg);
}

/* The session for the next message; 0, or -1 when it cannot be had. */
static int
session(struct worker *w)
{
	if (w->s != NULL)
		return 0;
	if (w->open_failed)
		return -1;
	if (deliver_open(w->r->a, w->r->verbose, &w->s, &w->open_err) == 0)
		return 0;
	w->open_failed = 1;
	say(w->r->verbose, "%s", w->open_err.msg);
	return -1;
}

/* Whether the message, re-read under its lock, is still ours to try. */
static int
still_due(struct runner *r, const struct due *d, struct qenv *env)
{
	struct bm_err e;

	if (queue_load(r->q, d->id, env, &e) != 0)
		return 0;
	if (env->attempts != d->attempts || !is_due(r, env)) {
		qenv_free(env);
		return 0;
	}
	return 1;
}

static void
process(struct worker *w, const struct due *d)
{
	struct runner *r = w->r;
	struct attempt at;
	struct bm_err e;
	struct qenv env;
	int lock;

	if (queue_lock(r->q, d->id, &lock, &e) != 0)
		return;
	if (!still_due(r, d, &env))
		goto unlock;
	/* the rate counts messages handed to the server: only an open
	 * session takes from it */
	if (session(w) == 0 && rate_take(r) != 0) {
		say(r->verbose, "rate limit reached (%d a minute): the rest "
		    "waits for the next run", r->a->rate);
		w->rate_hit = 1;
		goto done;
	}
	attempt_init(&at, &env);
	if (w->s == NULL)
		attempt_all(&at, &env, &w->open_err);
	if (w->s == NULL || send_one(w, &env, &at) == 0)
		conclude(w, &env, &at);
	attempt_free(&at);
done:
	qenv_free(&env);
unlock:
	queue_unlock(lock);
}

/* One worker: a slot, then the due list until done or rate-limited. */
static void
work(struct runner *r)
{
	struct worker w;
	struct bm_err e = { 0 };
	size_t i;
	int slot, rc;

	memset(&w, 0, sizeof(w));
	w.r = r;
	if ((rc = queue_slot_take(r->q, r->a, &slot, &e)) != 0) {
		say(r->verbose, "%s", rc == 1 ? "all connection slots are "
		    "taken: the rest waits for the next run" : e.msg);
		return;
	}
	for (i = 0; i < r->ndue && !w.rate_hit; i++)
		process(&w, &r->due[i]);
	deliver_close(w.s);
	queue_slot_release(slot);
}

static void
reap(pid_t *pids, int n)
{
	int i, status;

	for (i = 0; i < n; i++)
		while (pids[i] > 0 && waitpid(pids[i], &status, 0) < 0 &&
		    errno == EINTR)
			;
}

/* Up to max_connections workers over the due list. */
static void
run_workers(struct runner *r)
{
	int n = r->a->max_connections > 0 ? r->a->max_connections :
	    UNLIMITED_WORKERS, i;
	pid_t *pids;

	if ((size_t)n > r->ndue)
		n = (int)r->ndue;
	if (n <= 1) {
		work(r);
		return;
	}
	pids = xcalloc((size_t)n, sizeof(*pids));
	fflush(NULL);
	for (i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			work(r);
			fflush(NULL);
			_exit(0);
		}
		if (pids[i] < 0)
			break;
	}
	reap(pids, i);
	free(pids);
}

/* ------------------------------------------------------------ expiry */

static void
expire(struct runner *r, const char *id)
{
	struct attempt at;
	struct worker w;
	struct bm_err e;
	struct qenv env;
	int lock;

	if (queue_lock(r->q, id, &lock, &e) != 0)
		return;
	if (queue_load(r->q, id, &env, &e) != 0 || !is_expired(r, &env))
		goto unlock;
	attempt_init(&at, &env);
	attempt_expire(&at, &env, r->a->queue_lifetime);
	memset(&w, 0, sizeof(w));
	w.r = r;
	say(r->verbose, "%s: expired", env.id);
	conclude(&w, &env, &at);
	attempt_free(&at);
unlock:
	qenv_free(&env);
	queue_unlock(lock);
}

/* ------------------------------------------------------------ a flush */

/* Expire what is too old and collect what is due (bounces_only: just
 * the bounces made since `since`). */
static void
collect(struct config *c, struct runner *r, int bounces_only,
    long long since)
{
	struct qenv *v = NULL;
	size_t n = 0, i;

	r->ndue = 0;
	if (queue_list(r->q, &v, &n, NULL) != 0)
		return;
	r->due = xrealloc(r->due, (n + 1) * sizeof(*r->due));
	for (i = 0; i < n; i++) {
		if (!belongs(c, r->a, &v[i]))
			continue;
		if (is_expired(r, &v[i]) && !r->only) {
			expire(r, v[i].id);
			continue;
		}
		if (!is_due(r, &v[i]) || (bounces_only && (!v[i].is_bounce ||
		    v[i].attempts != 0 || v[i].created < since)))
			continue;
		snprintf(r->due[r->ndue].id, sizeof(r->due[0].id), "%s",
		    v[i].id);
		r->due[r->ndue++].attempts = v[i].attempts;
	}
	queue_list_free(v, n);
}

static int
flush_account(struct config *c, struct account *a, int force,
    const char *only, FILE *verbose, struct bm_err *e)
{
	struct runner r;
	char *dir = queue_dir_for(a);
	long long start;
	int rc, pass;

	memset(&r, 0, sizeof(r));
	r.a = a;
	r.force = force;
	r.only = only;
	r.verbose = verbose;
	r.now = start = (long long)time(NULL);
	rc = queue_open(dir, &r.q, e);
	free(dir);
	if (rc != 0)
		return rc;
	log_setup(a);
	queue_cleanup(r.q);
	/* the bounces this run makes go out in a second pass: those made
	 * since the run began, however long its first pass took */
	for (pass = 0; pass < 2; pass++) {
		collect(c, &r, pass == 1, start);
		if (r.ndue == 0)
			continue;     /* expiries may still have made bounces */
		say(verbose, "account %s: %zu message%s due", a->name, r.ndue,
		    r.ndue == 1 ? "" : "s");
		run_workers(&r);
		r.only = NULL;
		r.force = 0;
		r.now = (long long)time(NULL);
	}
	if (queue_quarantined(r.q) > 0)
		say(verbose, "account %s: %zu damaged message%s moved to "
		    "%s/corrupt/ (see the log and `bearmail queue list`)",
		    a->name, queue_quarantined(r.q),
		    queue_quarantined(r.q) == 1 ? "" : "s", queue_path(r.q));
	free(r.due);
	queue_close(r.q);
	return 0;
}

static int
flush_some(struct config *c, const char *account, int force,
    const char *only, FILE *verbose, struct bm_err *e)
{
	struct account *a;
	int rc = 0, r;

	if (account != NULL) {
		if ((a = conf_account(c, account)) == NULL)
			return err_set(e, EX_USAGE, "no account %s in %s",
			    account, c->path);
		return flush_account(c, a, force, only, verbose, e);
	}
	for (a = c->accounts; a; a = a->next)
		if ((r = flush_account(c, a, force, only, verbose, e)) != 0)
			rc = r;
	return rc;
}

int
qrun_flush(struct config *c, const char *account, int force, FILE *verbose,
    struct bm_err *e)
{
	return flush_some(c, account, force, NULL, verbose, e);
}

/* ------------------------------------------------------------ listing */

/* The distinct queue directories of the configuration (NULL-ended). */
static char **
queue_dirs(struct config *c)
{
	struct account *a;
	char **v = xcalloc(1, sizeof(*v));
	size_t n = 0, i;

	for (a = c->accounts; a; a = a->next) {
		char *d = queue_dir_for(a);

		for (i = 0; i < n && strcmp(v[i], d) != 0; i++)
			;
		if (i < n) {
			free(d);
			continue;
		}
		v = xrealloc(v, (n + 2) * sizeof(*v));
		v[n++] = d;
		v[n] = NULL;
	}
	return v;
}

static void
free_dirs(char **v)
{
	size_t i;

	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

static char
flag_of(struct queue *q, const struct qenv *env)
{
	int fd, rc;

	if (env->state == Q_HOLD)
		return '!';
	rc = queue_lock(q, env->id, &fd, NULL);
	if (rc == 0)
		queue_unlock(fd);
	return rc == 1 ? '*' : ' ';
}

static void
list_one(FILE *out, struct queue *q, const struct qenv *env)
{
	char date[32], *s;
	time_t t = (time_t)env->created;
	struct tm tm;
	size_t i;
	int pad;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a %b %e %H:%M:%S", &tm) == 0)
		snprintf(date, sizeof(date), "??");
	s = log_sanitize(*env->sender ? env->sender : "MAILER-DAEMON");
	fprintf(out, "%-19s%c%8lld %-19.19s  %s\n", env->id, flag_of(q, env),
	    env->size, date, s);
	free(s);
	if (env->state == Q_HOLD)
		s = xstrdup("held: `bearmail queue release` lets it go");
	else
		s = env->last_error ? log_sanitize(env->last_error) : NULL;
	if (s != NULL) {
		/* the reason right-aligned under the line, as Postfix does */
		pad = LIST_WIDTH - 2 - (int)strlen(s);
		fprintf(out, "%*s(%s)\n", pad > 0 ? pad : 0, "", s);
		free(s);
	}
	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].state != QR_PENDING)
			continue;
		s = log_sanitize(env->rcpts[i].addr);
		fprintf(out, "%*s%s\n", LIST_RCPT_COLUMN, "", s);
		free(s);
	}
	fputc('\n', out);
}

/* A message moved to corrupt/: never sent, so it is named (flag '#'). */
static long long
list_damaged(FILE *out, const char *dir, const struct qdamaged *d)
{
	char *id = log_sanitize(d->id);

	fprintf(out, "%-19s#  (damaged: moved to %s/corrupt/, not sent: "
	    "resend %s.msg by hand, then delete it)\n\n", id, dir, id);
	free(id);
	return d->size > 0 ? d->size : 0;
}

/* The first account whose queue is dir (NULL: none): its log gets the
 * line about an envelope this listing finds damaged. */
static struct account *
dir_owner(struct config *c, const char *dir)
{
	struct account *a;

	for (a = c->accounts; a; a = a->next) {
		char *d = queue_dir_for(a);
		int same = strcmp(d, dir) == 0;

		free(d);
		if (same)
			return a;
	}
	return NULL;
}

int
qrun_list(struct config *c, FILE *out, struct bm_err *e)
{
	char **dirs = queue_dirs(c);
	long long bytes = 0;
	size_t i, j, count = 0;
	int rc = 0;

	for (i = 0; dirs[i] && rc == 0; i++) {
		struct queue *q = NULL;
		struct qenv *v = NULL;
		struct qdamaged *bad = NULL;
		size_t n = 0, nbad = 0;

		log_setup(dir_owner(c, dirs[i]));
		if ((rc = queue_open(dirs[i], &q, e)) != 0 ||
		    (rc = queue_list(q, &v, &n, e)) != 0 ||
		    (rc = queue_corrupt_list(q, &bad, &nbad, e)) != 0)
			goto next;
		for (j = 0; j < n + nbad; j++, count++) {
			if (count == 0)
				fputs(LIST_HEADER, out);
			if (j < n) {
				list_one(out, q, &v[j]);
				bytes += v[j].size;
			} else {
				bytes += list_damaged(out, dirs[i],
				    &bad[j - n]);
			}
		}
next:
		queue_corrupt_free(bad, nbad);
		queue_list_free(v, n);
		queue_close(q);
	}
	free_dirs(dirs);
	if (rc == 0 && count == 0)
		fprintf(out, "Mail queue is empty\n");
	else if (rc == 0)
		fprintf(out, "-- %lld Kbytes in %zu Request%s.\n",
		    bytes / 1024, count, count == 1 ? "" : "s");
	return rc;
}

/* --------------------------------------------------------- admin verbs */

/* Open the queue that holds id, with its envelope in env. */
static int
find_message(struct config *c, const char *id, struct queue **q,
    struct qenv *env, struct bm_err *e)
{
	char **dirs = queue_dirs(c);
	size_t i;
	int rc = EX_NOINPUT;

	*q = NULL;
	for (i = 0; dirs[i] && rc == EX_NOINPUT; i++) {
		if ((rc = queue_open(dirs[i], q, e)) != 0)
			break;
		if ((rc = queue_load(*q, id, env, e)) != 0) {
			queue_close(*q);
			*q = NULL;
		}
	}
	free_dirs(dirs);
	if (rc == EX_NOINPUT)
		err_set(e, EX_NOINPUT, "no message %s in the queue", id);
	return rc;
}

static int
apply(struct queue *q, struct qenv *env, const char *verb,
    struct bm_err *e)
{
	if (strcmp(verb, "drop") == 0)
		return queue_remove(q, env->id, e);
	if (strcmp(verb, "hold") == 0) {
		env->state = Q_HOLD;
	} else {
		env->state = Q_DEFERRED;
		env->next_try = 0;
	}
	return queue_update(q, env, e);
}

int
qrun_admin(struct config *c, const char *verb, const char *id,
    struct bm_err *e)
{
	struct queue *q = NULL;
	struct qenv env;
	int rc, lock = -1;

	memset(&env, 0, sizeof(env));
	if (strcmp(verb, "drop") != 0 && strcmp(verb, "hold") != 0 &&
	    strcmp(verb, "release") != 0 && strcmp(verb, "retry") != 0)
		return err_set(e, EX_USAGE, "unknown queue action %s", verb);
	if ((rc = find_message(c, id, &q, &env, e)) != 0)
		return rc;
	if ((rc = queue_lock(q, id, &lock, e)) == 1)
		rc = err_set(e, EX_TEMPFAIL, "message %s is being delivered "
		    "right now; try again in a moment", id);
	if (rc == 0)
		rc = apply(q, &env, verb, e);
	queue_unlock(lock);
	if (rc == 0) {
		log_setup(conf_account(c, env.account));
		log_line(LOG_NOTICE, "%s: %s by the administrator", id,
		    strcmp(verb, "drop") == 0 ? "dropped" :
		    strcmp(verb, "hold") == 0 ? "held" : "released");
	}
	if (rc == 0 && strcmp(verb, "retry") == 0) {
		struct account *a = conf_account(c, env.account);

		rc = flush_some(c, a ? a->name : NULL, 1, id, NULL, e);
	}
	qenv_free(&env);
	queue_close(q);
	return rc;
}
