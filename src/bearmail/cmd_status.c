/*
 * cmd_status - `bearmail status [ACCOUNT] [--check]`: for each account its
 * server, token store, access token expiry, last refresh, whether a person
 * must log in, the queue and the last error.  Reads only: nothing is
 * refreshed, created or sent.  With --check the exit status tells a
 * monitoring system whether something needs a person (EX_CONFIG).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "conf.h"
#include "oauth.h"
#include "queue.h"
#include "state.h"
#include "store.h"

struct seen {
	int attention;          /* something needs a person */
};

static void
fmt_span(long long s, char *out, size_t n)
{
	if (s < 90)
		snprintf(out, n, "%lld s", s);
	else if (s < 90 * 60)
		snprintf(out, n, "%lld min", (s + 30) / 60);
	else if (s < 48 * 3600)
		snprintf(out, n, "%lld h %lld min", s / 3600, s % 3600 / 60);
	else
		snprintf(out, n, "%lld days", s / 86400);
}

/* "2024-05-01 12:00 UTC (3 min ago)"; "never" for 0. */
static void
fmt_when(long long t, long long now, char *out, size_t n)
{
	char stamp[64] = "?", span[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0) {
		snprintf(out, n, "never");
		return;
	}
	if (localtime_r(&tt, &tm) != NULL)
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M %Z", &tm);
	fmt_span(now >= t ? now - t : 0, span, sizeof(span));
	snprintf(out, n, "%s (%s ago)", stamp, span);
}

static const char *
tls_name(enum tls_mode m)
{
	return m == TLS_SMTPS ? "smtps" : m == TLS_OFF ? "plaintext" :
	    "starttls";
}

/* The token lines; sets attention when a person must act. */
static void
show_token(const struct account *a, struct seen *seen)
{
	struct token_rec t = { 0 };
	struct bm_err e = { 0 };
	struct store s;
	long long now = (long long)time(NULL), left;
	int app = a->oauth_flow == FLOW_CLIENT_CREDENTIALS, rc;
	char span[32];

	store_open(a, &s);
	printf("  token store   %s %s\n", store_name(&s), store_where(&s));
	rc = store_load(&s, &t, &e);
	left = t.expires_at - now;
	fmt_span(left, span, sizeof(span));
	if (rc == EX_NOINPUT)
		printf("  access token  no token%s\n", app ? " (fetched at the "
		    "first delivery)" : "");
	else if (rc != 0)
		printf("  access token  cannot read: %s\n", e.msg);
	else if (t.access_token == NULL || t.expires_at == 0)
		printf("  access token  none yet (the next delivery gets one)\n");
	else if (left <= 0)
		printf("  access token  expired\n");
	else
		printf("  access token  valid for %s\n", span);
	if (!app && rc == 0)
		printf("  refresh token %s\n", t.refresh_token ? "stored" :
		    "none");
	if ((rc != 0 && !(rc == EX_NOINPUT && app)) ||
	    (rc == 0 && !app && t.refresh_token == NULL && left <= 0))
		seen->attention = 1;
	token_rec_clear(&t);
	store_close(&s);
}

/* "3 messages (1 deferred, 0 held)" for the account, or why not. */
static void
show_queue(const struct account *a)
{
	char *dir = queue_dir_for(a);
	struct bm_err e = { 0 };
	struct queue *q = NULL;
	struct qenv *v = NULL;
	size_t n = 0, i, mine = 0, deferred = 0, held = 0;
	struct stat st;

	if (stat(dir, &st) != 0) {
		printf("  queue         empty (no queue yet: %s)\n", dir);
		goto out;
	}
	if (queue_open(dir, &q, &e) != 0 || queue_list(q, &v, &n, &e) != 0) {
		printf("  queue         cannot read: %s\n", e.msg);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (v[i].account == NULL || strcmp(v[i].account, a->name) != 0)
			continue;
		mine++;
		deferred += v[i].state == Q_DEFERRED;
		held += v[i].state == Q_HOLD;
	}
	printf("  queue         %zu message%s (%zu deferred, %zu held)\n", mine,
	    mine == 1 ? "" : "s", deferred, held);
out:
	queue_list_free(v, n);
	queue_close(q);
	free(dir);
}

static void
show_state(const struct account *a, struct seen *seen)
{
	struct acct_state st;
	long long now = (long long)time(NULL);
	char when[128];

	state_load(a->name, &st);
	fmt_when(st.last_refresh, now, when, sizeof(when));
	printf("  last refresh  %s\n", when);
	fmt_when(st.last_delivery, now, when, sizeof(when));
	printf("  last delivery %s\n", when);
	if (st.login_needed) {
		printf("  login         LOGIN NEEDED: run `bearmail login %s`\n",
		    a->name);
		seen->attention = 1;
	} else
		printf("  login         not needed\n");
	show_queue(a);
	fmt_when(st.last_error_at, now, when, sizeof(when));
	if (st.last_error != NULL)
		printf("  last error    %s: %s\n", when, st.last_error);
	else
		printf("  last error    none\n");
	state_free(&st);
}

static void
show_account(const struct config *c, const struct account *a,
    struct seen *seen)
{
	const struct account *def = conf_default_account((struct config *)c);

	printf("account %s%s\n", a->name, a == def ? " (default)" : "");
	printf("  user          %s\n", a->user ? a->user : "(none)");
	printf("  provider      %s (%s)\n", a->provider ? a->provider :
	    "generic", a->oauth_flow == FLOW_CLIENT_CREDENTIALS ? "app-only" :
	    "delegated");
	printf("  server        %s:%d %s\n", a->host ? a->host : "(none)",
	    a->port, tls_name(a->tls));
	show_token(a, seen);
	show_state(a, seen);
}

static int
status_usage(void)
{
	warnx_("usage: bearmail status [ACCOUNT] [--check]");
	return EX_USAGE;
}

int
cmd_status(int argc, char **argv, struct config *c)
{
	struct seen seen = { 0 };
	const char *name = NULL;
	struct account *a;
	int i, check = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else if (argv[i][0] == '-' || name != NULL)
			return status_usage();
		else
			name = argv[i];
	}
	if (name != NULL && conf_account(c, name) == NULL) {
		warnx_("no account %s in %s", name, c->path);
		return EX_CONFIG;
	}
	printf("configuration %s\n", c->path);
	for (a = c->accounts; a != NULL; a = a->next)
		if (name == NULL || a == conf_account(c, name)) {
			putchar('\n');
			show_account(c, a, &seen);
		}
	fflush(stdout);
	if (check && seen.attention) {
		warnx_("an account needs attention (see above)");
		return EX_CONFIG;
	}
	return 0;
}
