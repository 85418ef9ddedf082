/*
 * cmd_secret - `bearmail secret set NAME` and `bearmail secret delete
 * NAME`: a client secret or private key (PEM text) in the keyring, for
 * `client_secret_file keyring:NAME` and `client_key keyring:NAME`.  The
 * secret is read on stdin (never argv: others can read a command line),
 * without echo from a terminal, and wiped after use.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "commands.h"
#include "secrets.h"
#include "store_keyring.h"

#define USAGE "usage: bearmail secret set NAME  (the secret on stdin)\n" \
	"       bearmail secret delete NAME"

/* Names as conf.c accepts them after keyring:. */
static int
name_ok(const char *name)
{
	const char *p;

	if (name[0] == '\0' || name[0] == '.' || name[0] == '-')
		return 0;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._-@+", *p) != NULL))
			return 0;
	return 1;
}

/* Read stdin to the end, at most SECRETS_MAX_FILE bytes. */
static int
read_all(struct buf *b, struct bm_err *e)
{
	char chunk[1024];
	ssize_t n;
	int ret = 0;

	for (;;) {
		n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = err_set(e, EX_IOERR, "reading the secret: %s",
			    strerror(errno));
			break;
		}
		if (n == 0)
			break;
		buf_add(b, chunk, (size_t)n);
		if (b->len > SECRETS_MAX_FILE) {
			ret = err_set(e, EX_DATAERR, "the secret is longer than "
			    "%d bytes", SECRETS_MAX_FILE);
			break;
		}
	}
	wipe(chunk, sizeof(chunk));
	return ret;
}

/* From a terminal: one line, not echoed. */
static int
read_tty(const char *name, struct buf *b, struct bm_err *e)
{
	struct termios old, quiet;
	int ret, restore;
	char c;
	ssize_t n;

	fprintf(stderr, "Secret for keyring:%s (not echoed): ", name);
	fflush(stderr);
	restore = tcgetattr(STDIN_FILENO, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	ret = 0;
	for (;;) {
		n = read(STDIN_FILENO, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n')
			break;
		buf_addc(b, c);
		if (b->len > SECRETS_MAX_FILE) {
			ret = err_set(e, EX_DATAERR, "the secret is longer than "
			    "%d bytes", SECRETS_MAX_FILE);
			break;
		}
	}
	wipe(&c, 1);
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return ret;
}

/* The secret as text: not empty, no NUL byte. */
static int
read_secret(const char *name, struct buf *b, struct bm_err *e)
{
	int ret;

	ret = isatty(STDIN_FILENO) ? read_tty(name, b, e) : read_all(b, e);
	if (ret != 0)
		return ret;
	if (b->len == 0 || (b->len == 1 && b->data[0] == '\n'))
		return err_set(e, EX_DATAERR, "no secret on stdin: pipe it in, "
		    "e.g. `bearmail secret set %s < FILE`", name);
	buf_addc(b, '\0');
	b->len--;
	if (strlen(b->data) != b->len)
		return err_set(e, EX_DATAERR, "the secret holds a NUL byte: "
		    "store text (a client secret, or a PEM key)");
	return 0;
}

static int
secret_set(const char *name, struct bm_err *e)
{
	struct buf b = BUF_INIT;
	int ret;

	if ((ret = read_secret(name, &b, e)) == 0 &&
	    (ret = store_keyring_secret_store(name, b.data, e)) == 0)
		printf("stored keyring:%s (Secret Service: "
		    STORE_KEYRING_SECRET_SCHEMA " service="
		    STORE_KEYRING_SECRET_SERVICE " name=%s)\n", name, name);
	buf_free(&b, 1);
	return ret;
}

static int
secret_delete(const char *name, struct bm_err *e)
{
	int found = 0, ret;

	if ((ret = store_keyring_secret_delete(name, &found, e)) != 0)
		return ret;
	if (found)
		printf("removed keyring:%s\n", name);
	else
		printf("no secret keyring:%s in the keyring\n", name);
	return 0;
}

int
cmd_secret(int argc, char **argv, struct config *c)
{
	struct bm_err e = { 0 };
	int rc;

	(void)c;
	if (argc != 3 || (strcmp(argv[1], "set") != 0 &&
	    strcmp(argv[1], "delete") != 0)) {
		warnx_("%s", USAGE);
		return EX_USAGE;
	}
	if (!name_ok(argv[2])) {
		warnx_("secret name \"%s\": use letters, digits and . _ - @ + "
		    "(as in client_secret_file keyring:NAME)", argv[2]);
		return EX_USAGE;
	}
	rc = strcmp(argv[1], "set") == 0 ? secret_set(argv[2], &e) :
	    secret_delete(argv[2], &e);
	if (rc != 0)
		warnx_("%s", e.msg);
	return rc;
}
