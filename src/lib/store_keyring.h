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

#endif
