/*
 * cmd_logout - `bearmail logout [ACCOUNT]`: forget the account's tokens in
 * its store (the token file, or the keyring item), saying where they were.
 * Nothing to forget is not an error.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "tokens.h"

int
cmd_logout(int argc, char **argv, struct config *c)
{
	struct bm_err e = { 0 };
	struct account *a;
	int rc;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		warnx_("usage: bearmail logout [ACCOUNT]");
		return EX_USAGE;
	}
	a = argc == 2 ? conf_account(c, argv[1]) : conf_default_account(c);
	if (a == NULL) {
		warnx_("no account %s in %s", argc == 2 ? argv[1] : "at all",
		    c->path ? c->path : "the configuration");
		return EX_CONFIG;
	}
	rc = tokens_forget(a, &e);
	if (rc != 0 && rc != EX_NOINPUT) {
		warnx_("%s", e.msg);
		return rc;
	}
	printf("%s\n", e.msg);
	return 0;
}
