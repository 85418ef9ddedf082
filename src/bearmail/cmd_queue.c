/*
 * cmd_queue - `bearmail queue list | flush [--account A] [--force] [-v] |
 * drop ID... | hold ID... | release ID... | retry ID...`: the listing
 * (Postfix's mailq format), a run of the queue (quiet when nothing is
 * due, for cron and systemd timers) and the administrator's verbs.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "qrun.h"

static int
queue_usage(void)
{
	warnx_("usage: bearmail queue list | flush [--account A] [--force] "
	    "[-v] | drop|hold|release|retry ID...");
	return EX_USAGE;
}

static int
do_list(struct config *c)
{
	struct bm_err e = { 0 };
	int rc = qrun_list(c, stdout, &e);

	if (rc != 0)
		warnx_("%s", e.msg);
	if (fflush(stdout) != 0 && rc == 0)
		rc = EX_IOERR;
	return rc;
}

static int
do_flush(int argc, char **argv, struct config *c)
{
	struct bm_err e = { 0 };
	const char *account = NULL;
	FILE *verbose = NULL;
	int i, force = 0, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
			force = 1;
		else if (strcmp(argv[i], "-v") == 0 ||
		    strcmp(argv[i], "--verbose") == 0)
			verbose = stderr;
		else if (strcmp(argv[i], "--account") == 0 && i + 1 < argc)
			account = argv[++i];
		else if (strncmp(argv[i], "--account=", 10) == 0)
			account = argv[i] + 10;
		else
			return queue_usage();
	}
	if ((rc = qrun_flush(c, account, force, verbose, &e)) != 0)
		warnx_("%s", e.msg);
	return rc;
}

static int
do_admin(int argc, char **argv, struct config *c)
{
	struct bm_err e = { 0 };
	int i, rc = 0, r;

	if (argc < 2)
		return queue_usage();
	for (i = 1; i < argc; i++) {
		if ((r = qrun_admin(c, argv[0], argv[i], &e)) != 0) {
			warnx_("%s", e.msg);
			rc = r;
		}
	}
	return rc;
}

int
cmd_queue(int argc, char **argv, struct config *c)
{
	static const char *const verbs[] = { "drop", "hold", "release",
		"retry" };
	size_t i;

	if (argc < 2 || strcmp(argv[1], "list") == 0)
		return argc <= 2 ? do_list(c) : queue_usage();
	if (strcmp(argv[1], "flush") == 0)
		return do_flush(argc - 1, argv + 1, c);
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[1], verbs[i]) == 0)
			return do_admin(argc - 1, argv + 1, c);
	return queue_usage();
}
