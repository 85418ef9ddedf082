/*
 * cmd_send_test - `bearmail send-test [-v] [ACCOUNT] [RECIPIENT]`: compose
 * a short message (RFC 5322) from the account's address to RECIPIENT (or
 * the account itself) and deliver it at once through the same path as
 * sendmail (submit_message), then say what became of it: sent, queued (and
 * why), or refused.  The exit status is sendmail's.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "queue.h"
#include "submit.h"
#include "tokens.h"

#define USAGE "usage: bearmail send-test [-v] [ACCOUNT] [RECIPIENT]"

struct test_args {
	int verbose;
	const char *account;      /* NULL: the default account */
	const char *rcpt;         /* NULL: the account's own address */
};

static const char *const tls_words[] = { "STARTTLS", "implicit TLS (smtps)",
	"no TLS" };
static const char *const flow_words[] = { "delegated", "client_credentials" };
static const char *const auth_words[] = { "XOAUTH2", "OAUTHBEARER" };

/* One word: an account if the configuration has it, else a recipient when
 * it looks like an address. */
static int
classify_word(struct config *c, const char *w, struct test_args *t)
{
	if (t->account == NULL && t->rcpt == NULL &&
	    conf_account(c, w) != NULL) {
		t->account = w;
		return 0;
	}
	if (t->rcpt == NULL && (strchr(w, '@') != NULL || t->account != NULL)) {
		t->rcpt = w;
		return 0;
	}
	warnx_("no account %s in %s", w, c->path ? c->path :
	    "the configuration");
	return EX_CONFIG;
}

static int
parse_args(int argc, char **argv, struct config *c, struct test_args *t)
{
	int i, words = 0, rc;

	memset(t, 0, sizeof(*t));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0 ||
		    strcmp(argv[i], "--verbose") == 0) {
			t->verbose = 1;
			continue;
		}
		if (argv[i][0] == '-' || ++words > 2) {
			warnx_("%s", USAGE);
			return EX_USAGE;
		}
		if ((rc = classify_word(c, argv[i], t)) != 0)
			return rc;
	}
	return 0;
}

/* A Message-ID of our own, to find the message in the queue afterwards. */
static char *
make_message_id(void)
{
	unsigned char r[12];
	char hex[sizeof(r) * 2 + 1];
	size_t i;

	random_bytes(r, sizeof(r));
	for (i = 0; i < sizeof(r); i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	return xasprintf("<bearmail-test.%s@%s>", hex, conf_mailname());
}

static void
compose(const struct account *a, const char *to, const char *msgid,
    struct buf *m)
{
	char when[64], *store = tokens_store_where(a);
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	if (strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", (long long)now);
	buf_addf(m, "From: %s\nTo: %s\nSubject: bearmail test message from "
	    "%s\nMessage-ID: %s\nX-Mailer: bearmail %s (send-test)\n\n",
	    account_address(a), to, conf_mailname(), msgid, PACKAGE_VERSION);
	buf_addf(m, "This is a test message from bearmail %s on %s.\n\n",
	    PACKAGE_VERSION, conf_mailname());
	buf_addf(m, "Account:     %s (user %s)\nRelay:       %s:%d, %s, %s\n"
	    "OAuth2:      %s flow, client %s\nToken store: %s\nSent:        "
	    "%s\n\nIf you can read this, mail from this machine works.\n",
	    a->name, a->user ? a->user : "-", a->host, a->port,
	    tls_words[a->tls], auth_words[a->auth], flow_words[a->oauth_flow],
	    a->client_id ? a->client_id : "-", store, when);
	free(store);
}

/* The message on a pipe's read end (it is small: the pipe holds it). */
static int
message_fd(const struct buf *m, int *fd, struct bm_err *e)
{
	int p[2];

	if (m->len > 16384)
		return err_set(e, EX_SOFTWARE, "the test message is too long");
	if (pipe(p) != 0)
		return err_set(e, EX_OSERR, "pipe: %s", strerror(errno));
	if (write_all(p[1], m->data, m->len) != 0) {
		close(p[0]);
		close(p[1]);
		return err_set(e, EX_OSERR, "pipe: %s", strerror(errno));
	}
	close(p[1]);
	*fd = p[0];
	return 0;
}

/* The queue ID of the message with this Message-ID, and why it waits. */
static int
find_queued(const struct account *a, const char *msgid, char **id,
    char **why)
{
	struct queue *q = NULL;
	struct qenv *v = NULL;
	size_t n = 0, i;
	char *dir = queue_dir_for(a);

	*id = *why = NULL;
	if (queue_open(dir, &q, NULL) == 0 && queue_list(q, &v, &n, NULL) == 0)
		for (i = 0; i < n && *id == NULL; i++)
			if (v[i].msgid != NULL && strcmp(v[i].msgid, msgid) == 0) {
				*id = xstrdup(v[i].id);
				*why = xstrdup(v[i].last_error ?
				    v[i].last_error : "waiting");
			}
	queue_list_free(v, n);
	queue_close(q);
	free(dir);
	return *id != NULL;
}

static double
now_seconds(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Deliver through a's account: it is made the default for the call, so
 * that submit picks it and its address as the sender. */
static int
deliver(struct config *c, struct account *a, const struct test_args *t,
    const char *to, int fd, struct bm_err *e)
{
	struct submit_req r;
	struct submit_result res;
	char *words[1], *saved = c->default_account;
	int rc;

	memset(&r, 0, sizeof(r));
	words[0] = (char *)to;
	r.ignore_dots = 1;
	r.error_mode = ERRMODE_PRINT;
	r.delivery_set = 1;
	r.delivery = DELIVERY_SYNC;
	r.verbose = t->verbose;
	r.words = words;
	r.nwords = 1;
	r.received = now_seconds();
	c->default_account = a->name;
	rc = submit_message(c, &r, fd, &res, e);
	c->default_account = saved;
	return rc;
}

static int
report(const struct account *a, const char *to, const char *msgid, int rc,
    const struct bm_err *e)
{
	char *id, *why;

	if (rc != 0) {
		warnx_("%s", e->msg);
		fprintf(stderr, "bearmail: the test message was not sent "
		    "(exit %d)\n", rc);
		return rc;
	}
	if (find_queued(a, msgid, &id, &why)) {
		printf("queued as %s: %s\n", id, why);
		printf("bearmail will retry it (see `bearmail queue`); "
		    "`bearmail doctor %s` may say why\n", a->name);
		free(id);
		free(why);
		return 0;
	}
	printf("sent to %s via %s:%d\n", to, a->host, a->port);
	return 0;
}

int
cmd_send_test(int argc, char **argv, struct config *c)
{
	struct bm_err e = { 0 };
	struct test_args t;
	struct account *a;
	struct buf m = BUF_INIT;
	const char *to;
	char *msgid = NULL;
	int rc, fd = -1;

	if ((rc = parse_args(argc, argv, c, &t)) != 0)
		return rc;
	a = t.account ? conf_account(c, t.account) : conf_default_account(c);
	if (a == NULL) {
		warnx_("no account in %s: add one (see bearmail.conf(5))",
		    c->path ? c->path : "the configuration");
		return EX_CONFIG;
	}
	to = t.rcpt ? t.rcpt : account_address(a);
	msgid = make_message_id();
	compose(a, to, msgid, &m);
	if ((rc = message_fd(&m, &fd, &e)) != 0)
		warnx_("%s", e.msg);
	else
		rc = report(a, to, msgid, deliver(c, a, &t, to, fd, &e), &e);
	if (fd >= 0)
		close(fd);
	buf_free(&m, 0);
	free(msgid);
	return rc;
}
