/*
 * bearmail-submit - the submitter the sendmail shim execs.  It reads the
 * normalised long-option argv (see src/sendmail/options.c), loads the
 * configuration and runs one mode: deliver the message on stdin, speak SMTP
 * on stdin/stdout (-bs), verify addresses (-bv) or check aliases (-bi),
 * list or run the queue.  When a delivery leaves work in the queue it
 * starts a queue run of its own, detached (mode queue-due).  It holds
 * OAuth2 tokens, so it never dumps core and creates private files.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "qrun.h"
#include "submit.h"
#include "util.h"

#define SUBMIT_PATH LIBEXECDIR "/bearmail/bearmail-submit"

enum mode { MODE_DELIVER, MODE_SMTP, MODE_QUEUE_LIST, MODE_QUEUE_RUN,
	MODE_QUEUE_DUE, MODE_VERIFY, MODE_NEWALIASES };

static const struct { const char *name; enum mode mode; } modes[] = {
	{ "deliver", MODE_DELIVER }, { "smtp", MODE_SMTP },
	{ "queue-list", MODE_QUEUE_LIST }, { "queue-run", MODE_QUEUE_RUN },
	{ "queue-due", MODE_QUEUE_DUE },
	{ "verify", MODE_VERIFY }, { "newaliases", MODE_NEWALIASES },
};

enum { OPT_MODE = 256, OPT_CONFIG, OPT_T, OPT_I, OPT_FROM, OPT_FULLNAME,
	OPT_ERRMODE, OPT_DELIVERY, OPT_BODY, OPT_NOTIFY, OPT_RET, OPT_ENVID,
	OPT_VERBOSE };

static const struct option longopts[] = {
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "read-recipients", no_argument, NULL, OPT_T },
	{ "ignore-dots", no_argument, NULL, OPT_I },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "fullname", required_argument, NULL, OPT_FULLNAME },
	{ "error-mode", required_argument, NULL, OPT_ERRMODE },
	{ "delivery", required_argument, NULL, OPT_DELIVERY },
	{ "body", required_argument, NULL, OPT_BODY },
	{ "notify", required_argument, NULL, OPT_NOTIFY },
	{ "ret", required_argument, NULL, OPT_RET },
	{ "envid", required_argument, NULL, OPT_ENVID },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ NULL, 0, NULL, 0 },
};

static enum mode
parse_mode(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(s, modes[i].name) == 0)
			return modes[i].mode;
	die(EX_USAGE, "unknown mode \"%s\"", s);
}

static enum error_mode
parse_errmode(const char *s)
{
	if (strcmp(s, "mail") == 0)
		return ERRMODE_MAIL;
	if (strcmp(s, "write") == 0)
		return ERRMODE_WRITE;
	if (strcmp(s, "quiet") == 0)
		return ERRMODE_QUIET;
	return ERRMODE_PRINT;
}

static enum delivery_mode
parse_delivery(const char *s)
{
	if (strcmp(s, "background") == 0)
		return DELIVERY_BACKGROUND;
	if (strcmp(s, "queue") == 0)
		return DELIVERY_QUEUE;
	return DELIVERY_SYNC;
}

static int
parse_args(int argc, char **argv, struct submit_req *r, enum mode *mode,
    const char **config)
{
	int ch;

	while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_MODE: *mode = parse_mode(optarg); break;
		case OPT_CONFIG: *config = optarg; break;
		case OPT_T: r->read_recipients = 1; break;
		case OPT_I: r->ignore_dots = 1; break;
		case OPT_FROM: r->from = optarg; break;
		case OPT_FULLNAME: r->fullname = optarg; break;
		case OPT_ERRMODE: r->error_mode = parse_errmode(optarg); break;
		case OPT_DELIVERY:
			r->delivery_set = 1;
			r->delivery = parse_delivery(optarg);
			break;
		case OPT_BODY: r->body_8bit = strcmp(optarg, "8bitmime") == 0; break;
		case OPT_NOTIFY: r->notify = optarg; break;
		case OPT_RET: r->ret = optarg; break;
		case OPT_ENVID: r->envid = optarg; break;
		case OPT_VERBOSE: r->verbose = 1; break;
		default:
			die(EX_USAGE, "bearmail-submit is run by sendmail; use "
			    "sendmail(8)");
		}
	}
	r->words = argv + optind;
	r->nwords = (size_t)(argc - optind);
	return 0;
}

static double
now_seconds(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* This program, as the shim finds it ($BEARMAIL_SUBMIT for tests). */
static const char *
self_path(void)
{
	const char *p = getenv("BEARMAIL_SUBMIT");

	if (getuid() != geteuid() || getgid() != getegid())
		return SUBMIT_PATH;
	return p != NULL && p[0] == '/' ? p : SUBMIT_PATH;
}

/*
 * A queue run in the background: this program again in mode queue-due,
 * detached (double fork, new session, stdio on /dev/null, no other
 * descriptor), so the caller's pipes close now.  Silent when it cannot
 * start: the queue is durable, the next run delivers.
 */
static void
spawn_queue_run(const char *config_path)
{
	const char *argv[] = { "bearmail-submit", "--mode", "queue-due",
	    config_path ? "--config" : NULL, config_path, NULL };
	pid_t pid;
	int status, fd;

	fflush(NULL);
	if ((pid = fork()) < 0)
		return;
	if (pid == 0) {
		if (setsid() < 0 || fork() != 0)
			_exit(0);
		if ((fd = open("/dev/null", O_RDWR)) >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		for (fd = 3; fd < 1024; fd++)
			close(fd);
		execv(self_path(), (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

static struct config *
load_config(const char *explicit_path)
{
	struct bm_err e = { 0 };
	struct config *c = NULL;
	char *path = conf_find_path(explicit_path);

	if (conf_load(path, &c, &e) != 0)
		die(e.code, "%s", e.msg);
	free(path);
	return c;
}

int
main(int argc, char **argv)
{
	struct submit_req r;
	struct submit_result res;
	struct bm_err e = { 0 };
	enum mode mode = MODE_DELIVER;
	const char *config = NULL;
	struct config *c;
	int rc, flush = 0;

	util_harden();
	util_set_progname("sendmail");
	memset(&r, 0, sizeof(r));
	r.received = now_seconds();
	parse_args(argc, argv, &r, &mode, &config);
	/* a file size limit must fail the write (EFBIG), not kill us; a
	 * caller that stops reading our stderr (-v) must not either */
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	c = load_config(config);
	switch (mode) {
	case MODE_QUEUE_LIST:
		if ((rc = qrun_list(c, stdout, &e)) != 0)
			warnx_("%s", e.msg);
		break;
	case MODE_QUEUE_RUN:
		if ((rc = qrun_flush(c, NULL, 1, r.verbose ? stderr : NULL,
		    &e)) != 0)
			warnx_("%s", e.msg);
		break;
	case MODE_QUEUE_DUE:
		if ((rc = qrun_flush(c, NULL, 0, NULL, &e)) != 0)
			warnx_("%s", e.msg);
		break;
	case MODE_SMTP:
		rc = submit_smtp_dialogue(c, &r, stdin, stdout, &flush);
		break;
	case MODE_VERIFY:
		rc = submit_verify(c, &r, stdout);
		break;
	case MODE_NEWALIASES:
		if ((rc = submit_newaliases(c, &e)) != 0)
			warnx_("%s", e.msg);
		break;
	default:
		rc = submit_message(c, &r, STDIN_FILENO, &res, &e);
		if (rc != 0 && r.error_mode != ERRMODE_QUIET)
			warnx_("%s", e.msg);
		flush = res.flush;
	}
	if (flush)
		spawn_queue_run(c->path);
	conf_free(c);
	return rc;
}
