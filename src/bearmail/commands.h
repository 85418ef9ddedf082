/*
 * commands - the bearmail subcommands, one function each.  argv[0] is the
 * command's name; c is the loaded configuration.  Each returns the exit
 * status (0 or a sysexits code) after printing at most one line on stderr.
 */
#ifndef BEARMAIL_COMMANDS_H
#define BEARMAIL_COMMANDS_H

#include "conf.h"

/*
 * `bearmail token [ACCOUNT]`: print a valid access token and a newline
 * (refreshing it if needed).  `bearmail token import [ACCOUNT]`: store the
 * token endpoint answer or bare refresh token read on stdin.
 * Returns 0, EX_USAGE, EX_CONFIG, EX_TEMPFAIL, EX_DATAERR, EX_IOERR ...
 */
int cmd_token(int argc, char **argv, struct config *c);

#endif
