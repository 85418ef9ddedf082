/*
 * bearmail - the user's command: global options (--config FILE, --version,
 * help), process hygiene (no core dumps, not dumpable, umask 077: the
 * process holds tokens), then one function per subcommand (commands.h).
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "conf.h"
#include "util.h"

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv, struct config *c);
	const char *usage;    /* "ARGS  what it does", one line per entry */
} commands[] = {
	{ "token", cmd_token, "[ACCOUNT]         print a valid access token "
	    "(refreshing it)" },
	{ "token", cmd_token, "import [ACCOUNT]  store a token endpoint answer "
	    "(JSON) or a refresh token\n                          read on "
	    "stdin" },
	{ "logout", cmd_logout, "[ACCOUNT]        forget the account's tokens" },
	{ "login", cmd_login, "[ACCOUNT] [--device | --browser] [--timeout "
	    "SECONDS]\n                          sign in and store the first "
	    "token" },
	{ "status", cmd_status, "[ACCOUNT] [--check]\n                          "
	    "each account's token, last refresh, queue and last error" },
	{ "doctor", cmd_doctor, "[ACCOUNT]        check configuration, "
	    "server, TLS, token and AUTH" },
	{ "setup", cmd_setup, "[--force] [--no-login] [--authority URL] "
	    "[--ca-file FILE]\n                          write a configuration "
	    "(asks a few questions)" },
	{ "queue", cmd_queue, "[list]             show the queue (mailq format)" },
	{ "queue", cmd_queue, "flush [--account A] [--force] [-v]\n"
	    "                          deliver what is due (quiet when nothing "
	    "is)" },
	{ "queue", cmd_queue, "drop|hold|release|retry ID...\n"
	    "                          remove, hold, release or retry now a "
	    "message" },
	{ "send-test", cmd_send_test, "[-v] [ACCOUNT] [RECIPIENT]\n"
	    "                          send a test message now and say what "
	    "happened" },
	{ "secret", cmd_secret, "set NAME         store a client secret or "
	    "key (read on stdin)\n                          in the keyring, "
	    "for keyring:NAME" },
	{ "secret", cmd_secret, "delete NAME      remove it" },
};

static int
usage(FILE *f, int code)
{
	size_t i;

	fputs("usage: bearmail [--config FILE] COMMAND [ARGS]\n\ncommands:\n", f);
	for (i = 0; i < NELEM(commands); i++)
		fprintf(f, "  %s %s\n", commands[i].name, commands[i].usage);
	fputs("  help                    show this text\n"
	    "\n"
	    "options:\n"
	    "  -C, --config FILE       use this configuration file\n"
	    "  --version               print the version\n", f);
	return code;
}

/* Global options; returns the index of the command, or -1 (and *code). */
static int
parse_globals(int argc, char **argv, const char **config, int *code)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0)
			return i + 1;
		if (strcmp(argv[i], "--version") == 0) {
			printf("bearmail %s\n", PACKAGE_VERSION);
			*code = 0;
			return -1;
		}
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			*code = usage(stdout, 0);
			return -1;
		}
		if (strncmp(argv[i], "--config=", 9) == 0) {
			*config = argv[i] + 9;
			continue;
		}
		if ((strcmp(argv[i], "-C") == 0 ||
		    strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			*config = argv[++i];
			continue;
		}
		warnx_("unknown option %s", argv[i]);
		*code = usage(stderr, EX_USAGE);
		return -1;
	}
	return i;
}

static int
run(const struct command *cmd, const char *config, int argc, char **argv)
{
	struct config *c = NULL;
	struct bm_err e = { 0 };
	char *path = conf_find_path(config);
	int rc;

	if (cmd->run == cmd_setup || cmd->run == cmd_secret) {
		/* setup writes the file, secret needs none: nothing to load */
		struct config none = { config ? path : NULL, NULL, NULL };

		rc = cmd->run(argc, argv, &none);
	} else if ((rc = conf_load(path, &c, &e)) != 0)
		warnx_("%s", e.msg);
	else
		rc = cmd->run(argc, argv, c);
	if (c != NULL)
		conf_free(c);
	free(path);
	return rc;
}

static int
dispatch(const char *config, int argc, char **argv)
{
	size_t i;

	if (strcmp(argv[0], "help") == 0)
		return usage(stdout, 0);
	for (i = 0; i < NELEM(commands); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			return run(&commands[i], config, argc, argv);
	warnx_("unknown command %s", argv[0]);
	return usage(stderr, EX_USAGE);
}

int
main(int argc, char **argv)
{
	const char *config = NULL;
	int code = 0, i;

	util_harden();
	util_set_progname("bearmail");
	/* a file size limit must fail the write (EFBIG: the queue keeps the
	 * message), not kill a queue run half-way */
	signal(SIGXFSZ, SIG_IGN);
	if ((i = parse_globals(argc, argv, &config, &code)) < 0)
		return code;
	if (i >= argc)
		return usage(stderr, EX_USAGE);
	return dispatch(config, argc - i, argv + i);
}
