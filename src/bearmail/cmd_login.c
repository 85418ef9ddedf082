/*
 * cmd_login - `bearmail login [ACCOUNT] [--device | --browser] [--timeout
 * SECONDS]`: get the account's first token interactively and store it.
 * --device: the device authorization grant (RFC 8628) with a progress
 * line; --browser: authorization code + PKCE (RFC 7636) with a loopback
 * redirect (RFC 8252), the browser started from $BROWSER, else xdg-open,
 * else the URL printed.  Without a flag: --browser when a display and a
 * browser are there.  The protocol steps are in src/lib/oauth_login.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "loopback.h"
#include "oauth_login.h"
#include "state.h"
#include "store_file.h"
#include "tokens.h"

#define DEFAULT_BROWSER_TIMEOUT 300
#define MAX_TIMEOUT 86400
#define PROGRESS_EVERY 30	/* seconds between lines when not a tty */
#define MAX_TEMP_FAILURES 3	/* polls in a row the platform may fail */

enum login_mode { MODE_AUTO, MODE_DEVICE, MODE_BROWSER };

struct login_opts {
	const char *account;
	enum login_mode mode;
	long long timeout;	/* 0: the flow's own */
};

static int
login_usage(void)
{
	warnx_("usage: bearmail login [ACCOUNT] [--device | --browser] "
	    "[--timeout SECONDS]");
	return EX_USAGE;
}

static int
parse_timeout(const char *s, struct login_opts *o)
{
	if (str_to_seconds(s, &o->timeout) != 0 || o->timeout < 1 ||
	    o->timeout > MAX_TIMEOUT) {
		warnx_("--timeout wants a number of seconds (1 to %d), not %s",
		    MAX_TIMEOUT, s);
		return EX_USAGE;
	}
	return 0;
}

static int
parse_args(int argc, char **argv, struct login_opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--device") == 0 && o->mode == MODE_AUTO)
			o->mode = MODE_DEVICE;
		else if (strcmp(argv[i], "--browser") == 0 &&
		    o->mode == MODE_AUTO)
			o->mode = MODE_BROWSER;
		else if (strncmp(argv[i], "--timeout=", 10) == 0) {
			if (parse_timeout(argv[i] + 10, o) != 0)
				return EX_USAGE;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			if (parse_timeout(argv[++i], o) != 0)
				return EX_USAGE;
		} else if (argv[i][0] != '-' && o->account == NULL)
			o->account = argv[i];
		else
			return login_usage();
	}
	return 0;
}

static void
sleep_ms(long long ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) *
	    1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------ browser */

/* In the child: no terminal, stdio on /dev/null, then exec; never returns. */
BM_NORETURN static void
child_exec(char *const *argv, int report)
{
	int fd = open("/dev/null", O_RDWR);

	setsid();
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	{
		int err = errno;

		(void)write_all(report, &err, sizeof(err));
	}
	_exit(127);
}

/*
 * Start argv without waiting for it to finish (a browser may run for
 * hours): 0 and *pid when exec succeeded (a close-on-exec pipe reports an
 * exec failure), -1 otherwise.
 */
static int
spawn(char *const *argv, pid_t *pid)
{
	int p[2], err = 0;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	if ((*pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (*pid == 0) {
		close(p[0]);
		child_exec(argv, p[1]);
	}
	close(p[1]);
	while ((n = read(p[0], &err, sizeof(err))) < 0 && errno == EINTR)
		;
	close(p[0]);
	if (n == 0)
		return 0;
	waitpid(*pid, NULL, 0);
	return -1;
}

/* One $BROWSER entry: words split on blanks, "%s" (or the end) the URL. */
static int
spawn_entry(const char *entry, const char *url, pid_t *pid)
{
	char *copy = xstrdup(entry), *save = NULL, *w;
	char **argv = xcalloc(strlen(entry) + 2, sizeof(*argv));
	size_t n = 0;
	int had_url = 0, rc = -1;

	for (w = strtok_r(copy, " \t", &save); w != NULL;
	    w = strtok_r(NULL, " \t", &save)) {
		had_url |= strcmp(w, "%s") == 0;
		argv[n++] = strcmp(w, "%s") == 0 ? (char *)url : w;
	}
	if (!had_url)
		argv[n++] = (char *)url;
	argv[n] = NULL;
	if (n > 1)
		rc = spawn(argv, pid);
	free(argv);
	free(copy);
	return rc;
}

/* $BROWSER (entries separated by ':'), else xdg-open; -1 if none ran. */
static int
open_browser(const char *url, pid_t *pid)
{
	const char *env = getenv("BROWSER");
	char *list, *save = NULL, *entry;
	int rc = -1;

	if (env != NULL && env[0] != '\0') {
		list = xstrdup(env);
		for (entry = strtok_r(list, ":", &save); entry != NULL &&
		    rc != 0; entry = strtok_r(NULL, ":", &save))
			rc = spawn_entry(entry, url, pid);
		free(list);
		if (rc == 0)
			return 0;
	}
	return spawn_entry("xdg-open", url, pid);
}

/* Whether an executable name is found on $PATH. */
static int
on_path(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *dir;
	int found = 0;

	if (path == NULL || path[0] == '\0')
		return 0;
	copy = xstrdup(path);
	for (dir = strtok_r(copy, ":", &save); dir != NULL && !found;
	    dir = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/%s", dir, name);

		found = access(p, X_OK) == 0;
		free(p);
	}
	free(copy);
	return found;
}

static int
has_env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0';
}

static enum login_mode
auto_mode(void)
{
	if ((has_env("DISPLAY") || has_env("WAYLAND_DISPLAY")) &&
	    (has_env("BROWSER") || on_path("xdg-open")))
		return MODE_BROWSER;
	return MODE_DEVICE;
}

/* -------------------------------------------------------- browser flow */

struct browser_login {
	char *verifier, *challenge, *state, *redirect_uri, *url;
	struct loopback lb;
	pid_t pid;
};

static void
browser_login_clear(struct browser_login *b)
{
	wipe_free(b->verifier);
	free(b->challenge);
	wipe_free(b->state);
	free(b->redirect_uri);
	wipe_free(b->url);
	loopback_close(&b->lb);
	if (b->pid > 0)
		waitpid(b->pid, NULL, WNOHANG);
}

/* Listen, build the authorization URL and hand it to a browser. */
static int
browser_start(const struct account *a, struct browser_login *b,
    struct bm_err *e)
{
	char *auth = conf_auth_url(a);
	struct oauth_login_authz z;
	int ret;

	if (auth == NULL)
		return err_set(e, EX_CONFIG, "account %s has no auth_url (or "
		    "authority and tenant)", a->name);
	if ((ret = loopback_listen(&b->lb, e)) != 0)
		goto out;
	b->verifier = oauth_login_verifier();
	b->challenge = oauth_login_challenge(b->verifier);
	b->state = oauth_login_state();
	b->redirect_uri = xasprintf("http://127.0.0.1:%d/", b->lb.port);
	z = (struct oauth_login_authz){ a->client_id, b->redirect_uri,
	    a->scope, b->state, b->challenge, a->user };
	b->url = oauth_login_authorize_url(auth, &z);
	if (open_browser(b->url, &b->pid) != 0)
		fprintf(stderr, "Open this address in a web browser to sign "
		    "in:\n\n  %s\n\n", b->url);
	else
		fprintf(stderr, "A web browser was opened to sign in; if "
		    "nothing appears, run `bearmail login %s --device`.\n",
		    a->name);
out:
	free(auth);
	return ret;
}

/* What a request on the listener means; 1 means "keep waiting". */
static int
browser_answer(const struct account *a, struct browser_login *b,
    const char *line, int fd, char **code, struct bm_err *e)
{
	struct oauth_login_redirect r;
	int ret = 1;

	if (oauth_login_parse_redirect(line, &r) != 0) {
		loopback_reply(fd, 400, "Bad request", "bearmail could not "
		    "read this request.");
		return 1;
	}
	if (strcmp(r.path, "/") != 0 || (r.code == NULL && r.error == NULL)) {
		loopback_reply(fd, 404, "Not found", "This is bearmail's "
		    "sign-in listener; it waits for the identity platform.");
		goto out;
	}
	if (r.state == NULL || strcmp(r.state, b->state) != 0) {
		loopback_reply(fd, 400, "Sign-in refused", "The answer does "
		    "not belong to this sign-in (state mismatch). Run bearmail "
		    "login again.");
		ret = err_set(e, EX_PROTOCOL, "the sign-in answer for account "
		    "%s does not carry this login's state: refused; run "
		    "`bearmail login %s` again", a->name, a->name);
		goto out;
	}
	if (r.error != NULL) {
		str_printable(r.error, '?');
		str_printable(r.error_description, '?');
		loopback_reply(fd, 400, "Sign-in failed", "The identity "
		    "platform did not sign you in; see the terminal. You can "
		    "close this window.");
		ret = err_set(e, EX_CONFIG, "sign-in for account %s failed: %s%s"
		    "%.300s", a->name, r.error, r.error_description ? ": " : "",
		    r.error_description ? r.error_description : "");
		goto out;
	}
	loopback_reply(fd, 200, "Signed in to bearmail", "Signed in to "
	    "bearmail - you can close this window.");
	*code = r.code;
	r.code = NULL;
	ret = 0;
out:
	oauth_login_redirect_clear(&r);
	return ret;
}

/* Wait for the redirect until the deadline; 0 and *code, or an error. */
static int
browser_wait(const struct account *a, struct browser_login *b,
    long long timeout, char **code, struct bm_err *e)
{
	long long deadline = util_monotonic_ms() + timeout * 1000;
	char *line;
	int fd, ret;

	fprintf(stderr, "waiting up to %lld s for the sign-in to finish...\n",
	    timeout);
	do {
		if (loopback_next(&b->lb, deadline, &line, &fd, e) != 0)
			return err_set(e, EX_TEMPFAIL, "no sign-in for account "
			    "%s within %lld s: run `bearmail login %s` again "
			    "(or `bearmail login %s --device`)", a->name,
			    timeout, a->name, a->name);
		ret = browser_answer(a, b, line, fd, code, e);
		wipe_free(line);
	} while (ret == 1);
	return ret;
}

static int
browser_flow(const struct account *a, long long timeout, struct buf *answer,
    struct bm_err *e)
{
	struct browser_login b;
	char *code = NULL;
	int ret;

	memset(&b, 0, sizeof(b));
	b.lb.fd = -1;
	if ((ret = browser_start(a, &b, e)) != 0 ||
	    (ret = browser_wait(a, &b, timeout ? timeout :
	    DEFAULT_BROWSER_TIMEOUT, &code, e)) != 0)
		goto out;
	ret = oauth_login_redeem_code(a, code, b.redirect_uri, b.verifier,
	    answer, e);
out:
	wipe_free(code);
	browser_login_clear(&b);
	return ret;
}

/* --------------------------------------------------------- device flow */

/* Show how long is left: rewritten in place on a tty, else a line now
 * and then. */
static void
progress(long long left, long long *last_line)
{
	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "\rwaiting for sign-in... %lld s left   ", left);
		fflush(stderr);
		return;
	}
	if (*last_line != 0 && *last_line - left < PROGRESS_EVERY)
		return;
	fprintf(stderr, "waiting for sign-in... %lld s left\n", left);
	*last_line = left;
}

/* Sleep interval seconds (not past deadline), showing progress. */
static void
device_wait(long long interval, long long deadline, long long *last_line)
{
	long long end = util_monotonic_ms() + interval * 1000, now;

	if (end > deadline)
		end = deadline;
	while ((now = util_monotonic_ms()) < end) {
		progress((deadline - now + 999) / 1000, last_line);
		sleep_ms(end - now < 1000 ? end - now : 1000);
	}
}

static void
device_prompt(struct oauth_device *d)
{
	if (d->message != NULL && d->message[0] != '\0')
		fprintf(stderr, "%s\n", d->message);
	else
		fprintf(stderr, "To sign in, open %s and enter the code %s\n",
		    d->verification_uri, d->user_code);
}

static int
device_poll_loop(const struct account *a, struct oauth_device *d,
    long long deadline, struct buf *answer, struct bm_err *e)
{
	long long interval = d->interval, last_line = 0;
	int temp = 0;

	for (;;) {
		device_wait(interval, deadline, &last_line);
		if (util_monotonic_ms() >= deadline)
			return err_set(e, EX_CONFIG, "the code expired before "
			    "sign-in finished: run `bearmail login %s` again",
			    a->name);
		switch (oauth_login_device_poll(a, d, answer, e)) {
		case OAUTH_POLL_DONE:
			return 0;
		case OAUTH_POLL_PENDING:
			temp = 0;
			break;
		case OAUTH_POLL_SLOW_DOWN:
			interval += OAUTH_LOGIN_SLOW_DOWN;
			break;
		case OAUTH_POLL_FAILED:
			if (e->code != EX_TEMPFAIL || ++temp >= MAX_TEMP_FAILURES)
				return e->code;
			break;
		}
	}
}

static int
device_flow(const struct account *a, long long timeout, struct buf *answer,
    struct bm_err *e)
{
	struct oauth_device d;
	long long secs;
	int ret;

	if ((ret = oauth_login_device_start(a, &d, e)) != 0)
		return ret;
	device_prompt(&d);
	secs = timeout > 0 && timeout < d.expires_in ? timeout : d.expires_in;
	ret = device_poll_loop(a, &d, util_monotonic_ms() + secs * 1000, answer,
	    e);
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	oauth_device_clear(&d);
	return ret;
}

/* -------------------------------------------------------------- command */

static int
store(const struct account *a, const char *json, struct bm_err *e)
{
	const char *name = tokens_store_name(a);
	char *path;
	int ret;

	if ((ret = tokens_import(a, json, e)) != 0)
		return ret;
	state_note_refresh(a->name);
	if (strcmp(name, "file") == 0) {
		path = store_file_path(a);
		printf("logged in as %s; token stored in %s\n", a->user ?
		    a->user : a->name, path);
		free(path);
	} else
		printf("logged in as %s; token stored in the %s\n", a->user ?
		    a->user : a->name, name);
	return 0;
}

static int
login(const struct account *a, const struct login_opts *o)
{
	struct bm_err e = { 0 };
	struct buf answer = BUF_INIT;
	enum login_mode mode = o->mode == MODE_AUTO ? auto_mode() : o->mode;
	int ret;

	if (mode == MODE_BROWSER)
		ret = browser_flow(a, o->timeout, &answer, &e);
	else
		ret = device_flow(a, o->timeout, &answer, &e);
	if (ret == 0)
		ret = store(a, answer.data ? answer.data : "", &e);
	if (ret != 0)
		warnx_("%s", e.msg);
	buf_free(&answer, 1);
	return ret;
}

int
cmd_login(int argc, char **argv, struct config *c)
{
	struct login_opts o;
	struct account *a;
	int ret;

	if ((ret = parse_args(argc, argv, &o)) != 0)
		return ret;
	a = o.account ? conf_account(c, o.account) : conf_default_account(c);
	if (a == NULL) {
		warnx_("no account %s in %s", o.account ? o.account : "at all",
		    c->path ? c->path : "the configuration");
		return EX_CONFIG;
	}
	if (a->oauth_flow == FLOW_CLIENT_CREDENTIALS) {
		printf("account %s uses oauth_flow client_credentials: no login "
		    "is needed (bearmail fetches app-only tokens itself)\n",
		    a->name);
		return 0;
	}
	return login(a, &o);
}
