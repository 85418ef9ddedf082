/*
 * test_secrets - reading client secrets and keys: the mode and owner
 * checks with their ssh-like messages, O_NOFOLLOW, FIFOs and devices
 * refused at once, the size cap, the one trailing newline, systemd
 * credentials ($CREDENTIALS_DIRECTORY) and PEM keys (plain loads, encrypted
 * and garbage refused).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "secrets.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/bearmail-secrets-XXXXXX";
static char creds[sizeof(dir) + 8];

enum kind { PLAIN, SYMLINK, DIRECTORY, FIFO, DEV_ZERO, MISSING, CRED };

/* In want_msg, '@' stands for the file's path. */
static const struct {
	const char *name, *content;
	int mode;
	enum kind kind;
	int rc;
	const char *value, *want_msg;
} cases[] = {
	{ "0600, newline stripped", "s3cret\n", 0600, PLAIN, 0, "s3cret",
	  NULL },
	{ "CRLF stripped", "s3cret\r\n", 0600, PLAIN, 0, "s3cret", NULL },
	{ "0400, no newline", "Ab~1.x_y-z", 0400, PLAIN, 0, "Ab~1.x_y-z",
	  NULL },
	{ "only one newline stripped", "s3cret\n\n", 0600, PLAIN, EX_CONFIG,
	  NULL, "client_secret_file @ must hold the secret's value on one "
	  "line" },
	{ "empty", "", 0600, PLAIN, EX_CONFIG, NULL, "client_secret_file @ "
	  "must hold the secret's value on one line" },
	{ "0644 refused", "s3cret\n", 0644, PLAIN, EX_CONFIG, NULL,
	  "client_secret_file @: permissions 0644 are too open (others than "
	  "its owner may read or change it): run `chmod 600 @`" },
	{ "0640 refused", "s3cret\n", 0640, PLAIN, EX_CONFIG, NULL,
	  "client_secret_file @: permissions 0640 are too open (others than "
	  "its owner may read or change it): run `chmod 600 @`" },
	{ "0602 refused", "s3cret\n", 0602, PLAIN, EX_CONFIG, NULL,
	  "client_secret_file @: permissions 0602 are too open (others than "
	  "its owner may read or change it): run `chmod 600 @`" },
	{ "symlink refused", "s3cret\n", 0600, SYMLINK, EX_CONFIG, NULL,
	  "client_secret_file @ is a symbolic link, which is not followed for "
	  "this file: name the file itself" },
	{ "directory refused", NULL, 0700, DIRECTORY, EX_CONFIG, NULL,
	  "client_secret_file @ is a directory, not a regular file: put the "
	  "file itself there or correct the path" },
	{ "FIFO refused at once", NULL, 0600, FIFO, EX_CONFIG, NULL,
	  "client_secret_file @ is a FIFO (named pipe), not a regular file: "
	  "put the file itself there or correct the path" },
	{ "/dev/zero refused", NULL, 0, DEV_ZERO, EX_CONFIG, NULL,
	  "client_secret_file /dev/zero is a character device, not a regular "
	  "file: put the file itself there or correct the path" },
	{ "missing file", NULL, 0, MISSING, EX_CONFIG, NULL,
	  "client_secret_file @ does not exist: create it or correct the "
	  "path" },
	{ "credential 0440", "credsecret\n", 0440, CRED, 0, "credsecret",
	  NULL },
	{ "credential 0400", "credsecret", 0400, CRED, 0, "credsecret", NULL },
	{ "credential 0444 refused", "credsecret", 0444, CRED, EX_CONFIG, NULL,
	  "client_secret_file @: permissions 0444 are too open (others than "
	  "its owner may read or change it): run `chmod 600 @`" },
};

/* msg with every '@' replaced by path. */
static char *
expand(const char *msg, const char *path)
{
	struct buf b = BUF_INIT;

	for (; *msg; msg++)
		if (*msg == '@')
			buf_adds(&b, path);
		else
			buf_addc(&b, *msg);
	return buf_steal(&b);
}

static void
write_file(const char *path, const char *content, size_t n, int mode)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(content, 1, n, f) != n || fclose(f) != 0)
		abort();
	if (chmod(path, (mode_t)mode) != 0)
		abort();
}

/* Make the case's file; returns the spec and sets *path (the message's). */
static char *
make_case(size_t i, char **path)
{
	char *spec;

	if (cases[i].kind == CRED) {
		*path = xasprintf("%s/c%zu", creds, i);
		spec = xasprintf("credential:c%zu", i);
	} else {
		*path = xasprintf("%s/s%zu", dir, i);
		spec = xstrdup(*path);
	}
	if (cases[i].kind == PLAIN || cases[i].kind == CRED) {
		write_file(*path, cases[i].content, strlen(cases[i].content),
		    cases[i].mode);
	} else if (cases[i].kind == SYMLINK) {
		char *target = xasprintf("%s/t%zu", dir, i);

		write_file(target, cases[i].content, strlen(cases[i].content),
		    cases[i].mode);
		if (symlink(target, *path) != 0)
			abort();
		free(target);
	} else if (cases[i].kind == DIRECTORY) {
		if (mkdir(*path, (mode_t)cases[i].mode) != 0)
			abort();
	} else if (cases[i].kind == FIFO) {
		if (mkfifo(*path, (mode_t)cases[i].mode) != 0)
			abort();
	} else if (cases[i].kind == DEV_ZERO) {
		free(*path);
		free(spec);
		*path = xstrdup("/dev/zero");
		spec = xstrdup(*path);
	}
	return spec;
}

static void
test_cases(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct account a = { 0 };
		struct bm_err e = { 0 };
		char *path, *secret = (char *)"untouched", *want;
		int rc;

		a.name = (char *)"app";
		a.client_secret_file = make_case(i, &path);
		alarm(20);	/* a FIFO must not hang the test */
		rc = secrets_client_secret(&a, &secret, &e);
		alarm(0);
		is_int(rc, cases[i].rc, "%s: exit code", cases[i].name);
		if (cases[i].rc == 0) {
			is_str(secret, cases[i].value, "%s: the value",
			    cases[i].name);
		} else {
			want = expand(cases[i].want_msg, path);
			is_str(e.msg, want, "%s: the message", cases[i].name);
			ok(secret == NULL, "%s: no secret returned",
			    cases[i].name);
			free(want);
		}
		wipe_free(secret);
		free(a.client_secret_file);
		free(path);
	}
}

static void
test_size_and_owner(void)
{
	struct bm_err e = { 0 };
	char *path = xasprintf("%s/big", dir), *big = xmalloc(9000), *out;

	memset(big, 'x', 9000);
	write_file(path, big, 9000, 0600);
	is_int(secrets_read(path, "client_key", &out, NULL, &e), EX_CONFIG,
	    "9000 bytes: refused");
	ok(strstr(e.msg, "is larger than 8192 bytes") != NULL,
	    "9000 bytes: the message says so");
	write_file(path, big, 8192, 0600);
	is_int(secrets_read(path, "client_key", &out, NULL, &e), 0,
	    "8192 bytes: read");
	is_int((long long)strlen(out), 8192, "8192 bytes: all of them");
	wipe_free(out);
	if (geteuid() == 0 && chown(path, 65534, 65534) == 0) {
		char *want = xasprintf("client_key %s belongs to uid 65534: it "
		    "must belong to you (or root): run `chown 0 %s`", path,
		    path);

		is_int(secrets_read(path, "client_key", &out, NULL, &e),
		    EX_CONFIG, "a file of another user: refused");
		is_str(e.msg, want, "a file of another user: the message");
		free(want);
	} else {
		ok(1, "# SKIP not root: cannot give a file away");
		ok(1, "# SKIP not root: cannot give a file away");
	}
	free(big);
	free(path);
}

static const struct {
	const char *spec, *env, *want;
} cred_errors[] = {
	{ "credential:../x", "/run/credentials/x", "client_secret_file "
	  "credential:../x: a credential name is a plain file name" },
	{ "credential:", "/run/credentials/x", "client_secret_file "
	  "credential:: a credential name is a plain file name" },
	{ "credential:app", NULL, "client_secret_file credential:app: "
	  "$CREDENTIALS_DIRECTORY is not set (systemd sets it for a service "
	  "with LoadCredential=app:PATH)" },
};

static void
test_credential_errors(void)
{
	size_t i;

	for (i = 0; i < sizeof(cred_errors) / sizeof(cred_errors[0]); i++) {
		struct bm_err e = { 0 };
		char *out = NULL;

		if (cred_errors[i].env)
			setenv("CREDENTIALS_DIRECTORY", cred_errors[i].env, 1);
		else
			unsetenv("CREDENTIALS_DIRECTORY");
		is_int(secrets_read(cred_errors[i].spec, "client_secret_file",
		    &out, NULL, &e), EX_CONFIG, "%s: refused",
		    cred_errors[i].spec);
		is_str(e.msg, cred_errors[i].want, "%s: the message",
		    cred_errors[i].spec);
	}
	setenv("CREDENTIALS_DIRECTORY", creds, 1);
}

/* A PEM file of a fresh RSA key, encrypted with a passphrase or not. */
static char *
key_file(const char *name, int encrypted, int mode)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	if (k == NULL || f == NULL || !PEM_write_PrivateKey(f, k,
	    encrypted ? EVP_aes_256_cbc() : NULL,
	    (unsigned char *)(encrypted ? "pass" : NULL), encrypted ? 4 : 0,
	    NULL, NULL))
		abort();
	fclose(f);
	if (chmod(path, (mode_t)mode) != 0)
		abort();
	EVP_PKEY_free(k);
	return path;
}

static void
test_keys(void)
{
	struct bm_err e = { 0 };
	EVP_PKEY *k = NULL;
	char *plain = key_file("plain.pem", 0, 0600);
	char *enc = key_file("enc.pem", 1, 0600);
	char *open_ = key_file("open.pem", 0, 0644);
	char *junk = xasprintf("%s/junk.pem", dir), *want;

	write_file(junk, "-----BEGIN PRIVATE KEY-----\nAAAA\n", 33, 0600);
	ok(secrets_load_key(plain, &k, &e) == 0 && k != NULL &&
	    EVP_PKEY_is_a(k, "RSA"), "a plain PEM key loads (%s)", e.msg);
	EVP_PKEY_free(k);
	k = NULL;
	is_int(secrets_load_key(enc, &k, &e), EX_CONFIG,
	    "an encrypted key: refused");
	want = xasprintf("client_key %s is encrypted: bearmail cannot ask for "
	    "a passphrase; decrypt it into a file of mode 0600 (`openssl pkey "
	    "-in ENCRYPTED.pem -out KEY.pem`) and protect that file instead",
	    enc);
	is_str(e.msg, want, "an encrypted key: the message");
	free(want);
	is_int(secrets_load_key(open_, &k, &e), EX_CONFIG,
	    "a 0644 key: refused");
	ok(strstr(e.msg, "permissions 0644 are too open") != NULL &&
	    strstr(e.msg, "chmod 600") != NULL, "a 0644 key: the message");
	is_int(secrets_load_key(junk, &k, &e), EX_CONFIG, "garbage: refused");
	want = xasprintf("client_key %s is not a PEM private key", junk);
	is_str(e.msg, want, "garbage: the message");
	ok(k == NULL, "refused keys: none returned");
	free(want);
	free(plain);
	free(enc);
	free(open_);
	free(junk);
}

/* Remove the directory with rm(1), exec'd without a shell. */
static void
cleanup(void)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &st, 0);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(creds, sizeof(creds), "%s/creds", dir);
	if (mkdir(creds, 0700) != 0)
		return 1;
	setenv("CREDENTIALS_DIRECTORY", creds, 1);
	test_cases();
	test_size_and_owner();
	test_credential_errors();
	test_keys();
	cleanup();
	return done_testing();
}
