/*
 * store_keyring - the `token_store keyring` backend: the token record (the
 * same JSON the file store writes) as a Secret Service item (GNOME Keyring,
 * KeePassXC) through libsecret, schema "org.bearmail.Token" with the
 * attributes account, user and client_id.  Every call is bounded by
 * STORE_KEYRING_TIMEOUT seconds so that cron never hangs on a keyring that
 * does not answer.  Built only with HAVE_LIBSECRET; without it every call
 * fails with EX_CONFIG and advice to use the file store.
 */
#ifndef BEARMAIL_STORE_KEYRING_H
#define BEARMAIL_STORE_KEYRING_H

#include "conf.h"
#include "oauth.h"
#include "util.h"

/* Seconds a keyring call may take; how long `auto` waits for the bus. */
#define STORE_KEYRING_TIMEOUT 5
#define STORE_KEYRING_PROBE_TIMEOUT 2

/* The schema name, for messages. */
#define STORE_KEYRING_SCHEMA "org.bearmail.Token"

/*
 * Whether a keyring can be used: DBUS_SESSION_BUS_ADDRESS is set, the bus
 * answers within STORE_KEYRING_PROBE_TIMEOUT seconds and
 * org.freedesktop.secrets has an owner or is activatable.  1 or 0.
 */
int store_keyring_available(void);

/*
 * Read the account's record (looked up by account, and user and client_id
 * when the account has them) into t (cleared first).  Returns 0;
 * EX_NOINPUT when there is no item; EX_CONFIG when the item is not a token
 * record or libsecret is missing; EX_TEMPFAIL when the keyring did not
 * answer in time or refused ("... is gnome-keyring-daemon running and
 * unlocked? or set token_store file").
 */
int store_keyring_load(const struct account *a, struct token_rec *t,
    struct bm_err *e);

/*
 * Store t as the account's item in the default collection, replacing the
 * item with the same attributes, label "bearmail token for ACCOUNT (USER)".
 * Returns 0, EX_TEMPFAIL or EX_CONFIG as store_keyring_load.
 */
int store_keyring_save(const struct account *a, const struct token_rec *t,
    struct bm_err *e);

/*
 * Remove every item of the schema for the account name (whatever its user
 * and client_id).  *found says whether there was one.  Returns 0 (also
 * when there was none), EX_TEMPFAIL or EX_CONFIG as store_keyring_load.
 */
int store_keyring_delete(const struct account *a, int *found,
    struct bm_err *e);

/* ------------------------------------------------ client secrets and keys */

/* The schema of the secrets `bearmail secret set` stores (attributes
 * service = "bearmail" and name), for messages and docs. */
#define STORE_KEYRING_SECRET_SCHEMA "org.bearmail.Secret"
#define STORE_KEYRING_SECRET_SERVICE "bearmail"

/*
 * The secret called name (`client_secret_file keyring:NAME`, `client_key
 * keyring:NAME`): one lookup for the attributes service=bearmail and
 * name=NAME whatever the item's schema, so that it finds both what
 * store_keyring_secret_store saved and what `secret-tool store
 * --label=X service bearmail name NAME` saved.  The secret is read into
 * non-pageable memory and copied to *out (NUL-terminated, *len bytes; len
 * may be NULL; release with wipe_free).  Returns 0; EX_CONFIG when there
 * is no such secret (the message says how to store one) or libsecret is
 * missing; EX_TEMPFAIL when there is no session bus, or the keyring did
 * not answer within STORE_KEYRING_TIMEOUT seconds or refused.
 */
int store_keyring_secret_lookup(const char *name, char **out, size_t *len,
    struct bm_err *e);

/*
 * Store secret (len bytes of text, no NUL) as name in the default
 * collection, schema STORE_KEYRING_SECRET_SCHEMA, label "bearmail secret
 * NAME", replacing every item store_keyring_secret_lookup would find for
 * that name.  Returns 0, EX_DATAERR (not UTF-8 text), EX_CONFIG or
 * EX_TEMPFAIL as store_keyring_secret_lookup.
 */
int store_keyring_secret_store(const char *name, const char *secret,
    struct bm_err *e);

/*
 * Remove every item store_keyring_secret_lookup would find for name;
 * *found says whether there was one.  Returns 0 (also when there was
 * none), EX_CONFIG or EX_TEMPFAIL.
 */
int store_keyring_secret_delete(const char *name, int *found,
    struct bm_err *e);

#endif
