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

/*
 * `bearmail logout [ACCOUNT]`: forget the account's tokens in its store,
 * printing where they were (or that there were none).  Returns 0 (also
 * when there was nothing to forget), EX_USAGE, EX_CONFIG, or the store's
 * errors (EX_IOERR, EX_TEMPFAIL ...).
 */
int cmd_logout(int argc, char **argv, struct config *c);

/*
 * `bearmail login [ACCOUNT] [--device | --browser] [--timeout SECONDS]`:
 * sign in with the device code flow or the browser (authorization code +
 * PKCE, loopback redirect) and store the token.  Returns 0, EX_USAGE,
 * EX_CONFIG (declined, expired, refused), EX_TEMPFAIL (timeout,
 * unreachable), EX_PROTOCOL (state mismatch) or the store's errors.
 */
int cmd_login(int argc, char **argv, struct config *c);

/*
 * `bearmail status [ACCOUNT] [--check]`: each account's server, token
 * store, access token expiry, last refresh, login state, queue and last
 * error, on stdout; nothing is refreshed.  Returns 0, EX_USAGE, or
 * EX_CONFIG (unknown account; with --check also when an account needs a
 * person: a login, a missing or unreadable token).
 */
int cmd_status(int argc, char **argv, struct config *c);

/*
 * `bearmail doctor [ACCOUNT]`: the checklist (configuration, token store,
 * CA, DNS, connect, STARTTLS, certificate, token and its claims, AUTH;
 * no mail is sent) on stdout, each failure with its cause and fix.
 * Returns 0 when every check passed, else the sysexits code of the first
 * failure (EX_TEMPFAIL, EX_NOPERM, EX_CONFIG ...).
 */
int cmd_doctor(int argc, char **argv, struct config *c);

/*
 * `bearmail setup [--force] [--no-login] [--authority URL] [--ca-file
 * FILE]`: the first-run wizard.  c carries only the path given with
 * --config (c->path NULL: $BEARMAIL_CONFIG, else the user's file); no
 * configuration is loaded.  Returns 0, EX_USAGE (no usable answer),
 * EX_CANTCREAT (the file exists, or cannot be written), EX_IOERR, or the
 * login's code.
 */
int cmd_setup(int argc, char **argv, struct config *c);

/*
 * `bearmail queue [list]`: the queue in Postfix's mailq format.
 * `bearmail queue flush [--account A] [--force] [-v]`: deliver what is due
 * (everything with --force), silently when nothing is.
 * `bearmail queue drop|hold|release|retry ID...`: the administrator's
 * verbs (retry: due now, then delivered).
 * Returns 0, EX_USAGE, EX_NOINPUT (no such message), EX_TEMPFAIL (it is
 * being delivered), or the queue's error (EX_CANTCREAT, EX_IOERR).
 */
int cmd_queue(int argc, char **argv, struct config *c);

/*
 * `bearmail send-test [-v] [ACCOUNT] [RECIPIENT]`: send a short test
 * message from the account's address to RECIPIENT (default: the account's
 * own address) now, through the delivery path of sendmail (-v: show the
 * SMTP dialogue, AUTH redacted), and print "sent to X via HOST:PORT" or
 * "queued as ID: why" on stdout, or the error on stderr.  Returns what
 * sendmail would: 0 (sent or queued), EX_USAGE, EX_CONFIG, EX_NOPERM,
 * EX_UNAVAILABLE ...
 */
int cmd_send_test(int argc, char **argv, struct config *c);

/*
 * `bearmail secret set NAME`: store the secret read on stdin (a client
 * secret, or a PEM private key; from a terminal, one line without echo)
 * in the keyring for `client_secret_file keyring:NAME` / `client_key
 * keyring:NAME`.  `bearmail secret delete NAME`: remove it.  No
 * configuration is needed (c holds only the path).  Returns 0, EX_USAGE,
 * EX_DATAERR (empty or not text), EX_CONFIG (no libsecret) or EX_TEMPFAIL
 * (no session bus, the keyring did not answer).
 */
int cmd_secret(int argc, char **argv, struct config *c);

#endif
