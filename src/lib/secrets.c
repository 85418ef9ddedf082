/*
 * secrets - client secrets and private keys, read the way ssh reads a
 * private key: the file is opened without following a symbolic link and
 * refused, with the chmod that fixes it, when anyone but its owner (the
 * caller or root) could read it.  systemd credentials (LoadCredential=,
 * $CREDENTIALS_DIRECTORY) are named `credential:NAME`, secrets in the
 * keyring (store_keyring.h) `keyring:NAME`.  Secret bytes are wiped before
 * their memory is released and never quoted in a message.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "secrets.h"
#include "store_keyring.h"

/* Permission bits a secret file must not have: 077 for a file of ours; a
 * credential (systemd makes them 0400 or 0440 in a private directory) may
 * be readable by its group. */
#define FILE_FORBIDDEN 077
#define CREDENTIAL_FORBIDDEN 037

static int
is_credential(const char *spec)
{
	return strncmp(spec, SECRETS_CREDENTIAL_PREFIX,
	    strlen(SECRETS_CREDENTIAL_PREFIX)) == 0;
}

static int
is_keyring(const char *spec)
{
	return strncmp(spec, SECRETS_KEYRING_PREFIX,
	    strlen(SECRETS_KEYRING_PREFIX)) == 0;
}

/* A credential name: one path component, not "." or "..". */
static int
credential_name_ok(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL &&
	    strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int
secrets_path(const char *spec, const char *key, char **path,
    struct bm_err *e)
{
	const char *name, *dir;

	*path = NULL;
	if (is_keyring(spec))
		return err_set(e, EX_CONFIG, "%s %s: a secret in the keyring "
		    "is not a file: name a file or credential:NAME", key, spec);
	if (!is_credential(spec)) {
		*path = xstrdup(spec);
		return 0;
	}
	name = spec + strlen(SECRETS_CREDENTIAL_PREFIX);
	if (!credential_name_ok(name))
		return err_set(e, EX_CONFIG, "%s %s: a credential name is a "
		    "plain file name", key, spec);
	dir = getenv("CREDENTIALS_DIRECTORY");
	if (dir == NULL || dir[0] != '/')
		return err_set(e, EX_CONFIG, "%s %s: $CREDENTIALS_DIRECTORY is "
		    "not set (systemd sets it for a service with "
		    "LoadCredential=%s:PATH)", key, spec, name);
	*path = xasprintf("%s/%s", dir, name);
	return 0;
}

/* file_open's or file_read_fd's message ("PATH is a FIFO ..."), with the
 * config key in front; every problem with a secret file is configuration. */
static int
with_key(const char *key, struct bm_err *e)
{
	char *why;

	if (e == NULL)
		return EX_CONFIG;
	why = xstrdup(e->msg);	/* err_set must not read what it writes */
	err_set(e, EX_CONFIG, "%s %s", key, why);
	free(why);
	return EX_CONFIG;
}

/* The owner and mode check, on the stat of the open file. */
static int
check_file(const struct stat *st, const char *key, const char *path,
    int credential, struct bm_err *e)
{
	mode_t forbidden = credential ? CREDENTIAL_FORBIDDEN : FILE_FORBIDDEN;

	if (st->st_uid != geteuid() && st->st_uid != 0)
		return err_set(e, EX_CONFIG, "%s %s belongs to uid %ld: it must "
		    "belong to you (or root): run `chown %ld %s`", key, path,
		    (long)st->st_uid, (long)geteuid(), path);
	if ((st->st_mode & forbidden) != 0)
		return err_set(e, EX_CONFIG, "%s %s: permissions %04o are too "
		    "open (others than its owner may read or change it): run "
		    "`chmod 600 %s`", key, path,
		    (unsigned)(st->st_mode & 07777), path);
	return 0;
}

/* The file at path, not followed if a link, checked, read whole. */
static int
read_checked(const char *path, const char *key, int credential, char **out,
    size_t *len, struct bm_err *e)
{
	struct stat st;
	int fd, ret;

	if (file_open(path, FILE_NOFOLLOW, &fd, &st, e) != 0)
		return with_key(key, e);
	if ((ret = check_file(&st, key, path, credential, e)) == 0 &&
	    file_read_fd(fd, path, SECRETS_MAX_FILE, FILE_SECRET, out, len,
	    e) != 0)
		ret = with_key(key, e);
	close(fd);
	return ret;
}

/* keyring:NAME: the secret from the keyring, with the config key in
 * front of the keyring's message. */
static int
from_keyring(const char *spec, const char *key, char **out, size_t *len,
    struct bm_err *e)
{
	const char *name = spec + strlen(SECRETS_KEYRING_PREFIX);
	char *why;
	int ret;

	if (!credential_name_ok(name))
		return err_set(e, EX_CONFIG, "%s %s: a keyring secret's name is "
		    "one word", key, spec);
	if ((ret = store_keyring_secret_lookup(name, out, len, e)) == 0)
		return 0;
	why = xstrdup(e->msg);
	err_set(e, ret, "%s %s", key, why);
	free(why);
	return ret;
}

int
secrets_read(const char *spec, const char *key, char **out, size_t *len,
    struct bm_err *e)
{
	char *path = NULL;
	size_t n = 0;
	int ret;

	*out = NULL;
	if (is_keyring(spec))
		return from_keyring(spec, key, out, len, e);
	if ((ret = secrets_path(spec, key, &path, e)) == 0)
		ret = read_checked(path, key, is_credential(spec), out, &n, e);
	if (ret == 0 && len != NULL)
		*len = n;
	free(path);
	return ret;
}

/* ---------------------------------------------------------- the secret */

/* Remove one trailing LF or CRLF; 0, or -1 when what is left is empty or
 * still holds a line break or a NUL. */
static int
strip_newline(char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	if (n > 0 && s[n - 1] == '\r')
		s[--n] = '\0';
	if (n == 0 || strlen(s) != n || strpbrk(s, "\r\n") != NULL)
		return -1;
	return 0;
}

int
secrets_client_secret(const struct account *a, char **secret,
    struct bm_err *e)
{
	char *s = NULL;
	size_t n = 0;
	int ret;

	*secret = NULL;
	if (a->client_secret_file == NULL)
		return err_set(e, EX_CONFIG, "account %s has no "
		    "client_secret_file", a->name);
	ret = secrets_read(a->client_secret_file, "client_secret_file", &s,
	    &n, e);
	if (ret != 0)
		return ret;
	if (strip_newline(s, n) != 0) {
		wipe(s, n);
		free(s);
		return err_set(e, EX_CONFIG, "client_secret_file %s must hold "
		    "the secret's value on one line", a->client_secret_file);
	}
	*secret = s;
	return 0;
}

/* ---------------------------------------------------------------- keys */

/* Called by OpenSSL only for an encrypted key: note it and refuse. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)u = 1;
	return -1;
}

static int
parse_key(const char *spec, const char *pem, size_t n, EVP_PKEY **key,
    struct bm_err *e)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)n);
	int encrypted = strstr(pem, "ENCRYPTED") != NULL;

	if (bio == NULL)
		return err_set(e, EX_OSERR, "out of memory");
	if (!encrypted)
		*key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase,
		    &encrypted);
	BIO_free(bio);
	ERR_clear_error();
	if (*key != NULL)
		return 0;
	if (encrypted)
		return err_set(e, EX_CONFIG, "client_key %s is encrypted: "
		    "bearmail cannot ask for a passphrase; decrypt it into a "
		    "file of mode 0600 (`openssl pkey -in ENCRYPTED.pem -out "
		    "KEY.pem`) and protect that file instead", spec);
	return err_set(e, EX_CONFIG, "client_key %s is not a PEM private key",
	    spec);
}

int
secrets_load_key(const char *spec, EVP_PKEY **key, struct bm_err *e)
{
	char *pem = NULL;
	size_t n = 0;
	int ret;

	*key = NULL;
	if ((ret = secrets_read(spec, "client_key", &pem, &n, e)) != 0)
		return ret;
	ret = parse_key(spec, pem, n, key, e);
	wipe(pem, n);
	free(pem);
	return ret;
}
