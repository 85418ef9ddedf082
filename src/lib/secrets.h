/*
 * secrets - reading client secrets and private keys safely: from a file
 * that only its owner (the caller or root) can read, opened without
 * following a symbolic link, or from a systemd credential
 * (`credential:NAME` = $CREDENTIALS_DIRECTORY/NAME, LoadCredential=), or
 * from the keyring (`keyring:NAME`, see store_keyring.h).  Nothing read
 * here ever reaches a message.
 */
#ifndef BEARMAIL_SECRETS_H
#define BEARMAIL_SECRETS_H

#include <stddef.h>

#include <openssl/evp.h>

#include "conf.h"
#include "util.h"

/* The largest secret or key file accepted (bytes). */
#define SECRETS_MAX_FILE 8192
/* The prefix naming a systemd credential instead of a path. */
#define SECRETS_CREDENTIAL_PREFIX "credential:"
/* The prefix naming a secret in the keyring (`bearmail secret set NAME`). */
#define SECRETS_KEYRING_PREFIX "keyring:"

/*
 * The file spec names: spec itself, or for "credential:NAME"
 * $CREDENTIALS_DIRECTORY/NAME.  Returns 0 and a newly allocated *path, or
 * EX_CONFIG when NAME is not a plain file name, the variable is not set,
 * or spec is keyring:NAME (key names the config key, for the message).
 */
int secrets_path(const char *spec, const char *key, char **path,
    struct bm_err *e);

/*
 * Read a secret file whole (at most SECRETS_MAX_FILE bytes) into *out
 * (NUL-terminated; *len bytes, may be NULL; release with wipe_free).  The
 * file is opened with O_NOFOLLOW and checked on the open descriptor: a
 * regular file owned by the caller or root, with no permission for others
 * or the group (a credential may be group-readable: 0440).  key names the
 * config key in messages ("client_secret_file").  Returns 0, or EX_CONFIG
 * with a message that names the file and the fix ("chmod 600 FILE"), never
 * its contents.  For spec "keyring:NAME" the secret comes from the keyring
 * instead (store_keyring_secret_lookup): 0, EX_CONFIG (no such secret: the
 * message says how to store it; no libsecret) or EX_TEMPFAIL (no session
 * bus, the keyring did not answer).
 */
int secrets_read(const char *spec, const char *key, char **out, size_t *len,
    struct bm_err *e);

/*
 * The account's client secret from client_secret_file: secrets_read, one
 * trailing newline (LF or CRLF) removed; empty or multi-line secrets are
 * refused.  Returns 0 and *secret (release with wipe_free), or EX_CONFIG.
 */
int secrets_client_secret(const struct account *a, char **secret,
    struct bm_err *e);

/*
 * The private key named by spec (client_key): read with secrets_read and
 * parsed as PEM (PKCS#8 or traditional).  An encrypted key is refused with
 * the command that decrypts it.  Returns 0 and *key (EVP_PKEY_free it), or
 * EX_CONFIG.
 */
int secrets_load_key(const char *spec, EVP_PKEY **key, struct bm_err *e);

#endif
