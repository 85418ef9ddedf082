/*
 * cmd_token - `bearmail token [ACCOUNT]`, the password helper that msmtp,
 * mutt, isync and git send-email call (passwordeval): one access token on
 * stdout; and `bearmail token import [ACCOUNT]`, which stores a token
 * endpoint answer or a bare refresh token read on stdin.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "store_file.h"
#include "tokens.h"

#define MAX_IMPORT (64 * 1024)

static int
token_usage(void)
{
	warnx_("usage: bearmail token [ACCOUNT] | bearmail token import "
	    "[ACCOUNT]");
	return EX_USAGE;
}

/* The named account, or the default one. */
static int
pick_account(struct config *c, const char *name, struct account **a)
{
	*a = name ? conf_account(c, name) : conf_default_account(c);
	if (*a != NULL)
		return 0;
	if (name != NULL)
		warnx_("no account %s in %s", name, c->path ? c->path : "the "
		    "configuration");
	else
		warnx_("no account in %s", c->path ? c->path : "the "
		    "configuration");
	return EX_CONFIG;
}

/* stdin, at most MAX_IMPORT bytes, into b (a secret). */
static int
read_stdin(struct buf *b)
{
	char chunk[4096];
	ssize_t n;
	int ret = 0;

	while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			warnx_("cannot read stdin: %s", strerror(errno));
			ret = EX_IOERR;
			break;
		}
		if (b->len + (size_t)n > MAX_IMPORT) {
			warnx_("the input is larger than 64 KiB");
			ret = EX_DATAERR;
			break;
		}
		buf_add(b, chunk, (size_t)n);
	}
	wipe(chunk, sizeof(chunk));
	return ret;
}

static int
token_import(struct account *a)
{
	struct buf in = BUF_INIT;
	struct bm_err e = { 0 };
	char *path;
	int rc;

	if (isatty(STDIN_FILENO))
		fputs("paste the token endpoint answer (JSON) or the refresh "
		    "token, then press Ctrl-D\n", stderr);
	if ((rc = read_stdin(&in)) != 0)
		goto out;
	if (in.len != strlen(in.data ? in.data : "")) {
		warnx_("the input contains a NUL byte");
		rc = EX_DATAERR;
		goto out;
	}
	if ((rc = tokens_import(a, in.data ? in.data : "", &e)) != 0) {
		warnx_("%s", e.msg);
		goto out;
	}
	path = tokens_store_where(a);
	printf("stored the token for account %s in %s\n", a->name, path);
	free(path);
out:
	buf_free(&in, 1);
	return rc;
}

static int
token_print(struct account *a)
{
	struct bm_err e = { 0 };
	char *token = NULL;
	int rc;

	if ((rc = tokens_get(a, &token, &e)) != 0) {
		warnx_("%s", e.msg);
		return rc;
	}
	/* straight to the descriptor: no copy left in a stdio buffer */
	if (write_all(STDOUT_FILENO, token, strlen(token)) != 0 ||
	    write_all(STDOUT_FILENO, "\n", 1) != 0) {
		warnx_("cannot write to stdout: %s", strerror(errno));
		rc = EX_IOERR;
	}
	wipe_free(token);
	return rc;
}

int
cmd_token(int argc, char **argv, struct config *c)
{
	int import = argc >= 2 && strcmp(argv[1], "import") == 0;
	int first = import ? 2 : 1;
	struct account *a;
	int rc;

	if (argc > first + 1 || (argc > first && argv[first][0] == '-'))
		return token_usage();
	if ((rc = pick_account(c, argc > first ? argv[first] : NULL, &a)) != 0)
		return rc;
	return import ? token_import(a) : token_print(a);
}
