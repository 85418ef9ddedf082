/*
 * store_keyring - token records in the Secret Service (freedesktop.org
 * Secret Service API: GNOME Keyring, KeePassXC) through libsecret.  The
 * secret is the file store's JSON document; it is read into non-pageable
 * memory and wiped.  libsecret's synchronous calls have no timeout of their
 * own (D-Bus allows 25 s, a prompt forever), so each runs under a deadline:
 * a timer thread cancels the call's GCancellable after a few seconds.
 * Client secrets and keys live here too (`keyring:NAME`), schema
 * "org.bearmail.Secret", found together with what `secret-tool store
 * service bearmail name NAME` saves.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "store_keyring.h"
#include "verdict.h"

#ifdef HAVE_LIBSECRET

#include <libsecret/secret.h>

#include "store_file.h"

#define ADVICE "is gnome-keyring-daemon running and unlocked? or set " \
	"token_store file"

static const SecretSchema token_schema = {
	.name = STORE_KEYRING_SCHEMA,
	.flags = SECRET_SCHEMA_NONE,
	.attributes = {
		{ "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "user", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "client_id", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, SECRET_SCHEMA_ATTRIBUTE_STRING },
	},
};

/* Client secrets: stored with this schema (xdg:schema is set) ... */
static const SecretSchema secret_schema = {
	.name = STORE_KEYRING_SECRET_SCHEMA,
	.flags = SECRET_SCHEMA_NONE,
	.attributes = {
		{ "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "name", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, SECRET_SCHEMA_ATTRIBUTE_STRING },
	},
};

/* ... and looked up or removed by attributes alone, so that secret-tool's
 * items (which carry no schema) are found as well. */
static const SecretSchema secret_any_schema = {
	.name = STORE_KEYRING_SECRET_SCHEMA,
	.flags = SECRET_SCHEMA_DONT_MATCH_NAME,
	.attributes = {
		{ "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "name", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, SECRET_SCHEMA_ATTRIBUTE_STRING },
	},
};

/* ------------------------------------------------------------- deadline */

/* A GCancellable that a timer thread cancels after `seconds`. */
struct deadline {
	GCancellable *cancel;
	GMutex mu;
	GCond cond;
	gboolean done, expired;
	gint64 end;
	GThread *thread;
};

static gpointer
deadline_run(gpointer p)
{
	struct deadline *d = p;

	g_mutex_lock(&d->mu);
	while (!d->done && !d->expired)
		if (!g_cond_wait_until(&d->cond, &d->mu, d->end))
			d->expired = !d->done;
	g_mutex_unlock(&d->mu);
	if (d->expired)
		g_cancellable_cancel(d->cancel);
	return NULL;
}

static void
deadline_start(struct deadline *d, int seconds)
{
	memset(d, 0, sizeof(*d));
	d->cancel = g_cancellable_new();
	g_mutex_init(&d->mu);
	g_cond_init(&d->cond);
	d->end = g_get_monotonic_time() + (gint64)seconds * G_TIME_SPAN_SECOND;
	d->thread = g_thread_new("bearmail-deadline", deadline_run, d);
}

/* Stop the timer; returns whether it fired. */
static int
deadline_stop(struct deadline *d)
{
	int expired;

	g_mutex_lock(&d->mu);
	d->done = TRUE;
	g_cond_signal(&d->cond);
	g_mutex_unlock(&d->mu);
	g_thread_join(d->thread);
	expired = d->expired || g_cancellable_is_cancelled(d->cancel);
	g_object_unref(d->cancel);
	g_mutex_clear(&d->mu);
	g_cond_clear(&d->cond);
	return expired;
}

/* --------------------------------------------------------------- helpers */

/* The lookup attributes: account, and user and client_id when known
 * (values borrowed from a). */
static GHashTable *
attrs_for(const struct account *a, int account_only)
{
	GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);

	g_hash_table_insert(h, (gpointer)"account", a->name);
	if (!account_only && a->user != NULL)
		g_hash_table_insert(h, (gpointer)"user", a->user);
	if (!account_only && a->client_id != NULL)
		g_hash_table_insert(h, (gpointer)"client_id", a->client_id);
	return h;
}

static int
keyring_failed(const struct account *a, const char *what, int expired,
    const GError *err, struct bm_err *e)
{
	if (expired || (err != NULL && g_error_matches(err, G_IO_ERROR,
	    G_IO_ERROR_CANCELLED)))
		return err_set(e, EX_TEMPFAIL, "the keyring did not answer "
		    "within %d s (%s the token of account %s): " ADVICE,
		    STORE_KEYRING_TIMEOUT, what, a->name);
	return err_set(e, EX_TEMPFAIL, "the keyring could not %s the token "
	    "of account %s: %s: " ADVICE, what, a->name,
	    err != NULL ? err->message : "unknown error");
}

/* ------------------------------------------------------------ interface */

int
store_keyring_available(void)
{
	const char *addr = getenv("DBUS_SESSION_BUS_ADDRESS");
	GDBusConnection *bus = NULL;
	GVariant *reply = NULL;
	GError *err = NULL;
	struct deadline d;
	gboolean owned = FALSE;

	if (addr == NULL || addr[0] == '\0')
		return 0;
	deadline_start(&d, STORE_KEYRING_PROBE_TIMEOUT);
	bus = g_bus_get_sync(G_BUS_TYPE_SESSION, d.cancel, &err);
	if (bus != NULL)
		reply = g_dbus_connection_call_sync(bus, "org.freedesktop.DBus",
		    "/org/freedesktop/DBus", "org.freedesktop.DBus",
		    "NameHasOwner", g_variant_new("(s)",
		    "org.freedesktop.secrets"), G_VARIANT_TYPE("(b)"),
		    G_DBUS_CALL_FLAGS_NONE, STORE_KEYRING_PROBE_TIMEOUT * 1000,
		    d.cancel, &err);
	if (reply != NULL)
		g_variant_get(reply, "(b)", &owned);
	deadline_stop(&d);
	if (reply != NULL)
		g_variant_unref(reply);
	if (bus != NULL)
		g_object_unref(bus);
	g_clear_error(&err);
	return owned ? 1 : 0;
}

int
store_keyring_load(const struct account *a, struct token_rec *t,
    struct bm_err *e)
{
	GHashTable *attrs = attrs_for(a, 0);
	GError *err = NULL;
	struct deadline d;
	gchar *secret;
	int expired, ret = 0;

	token_rec_clear(t);
	deadline_start(&d, STORE_KEYRING_TIMEOUT);
	secret = secret_password_lookupv_nonpageable_sync(&token_schema, attrs,
	    d.cancel, &err);
	expired = deadline_stop(&d);
	if (err != NULL || expired)
		ret = keyring_failed(a, "read", expired, err, e);
	else if (secret == NULL)
		ret = err_set(e, EX_NOINPUT, "no keyring item %s for account %s",
		    STORE_KEYRING_SCHEMA, a->name);
	else if (store_file_decode(secret, strlen(secret), t) != 0)
		ret = verdict_fail(e, VK_KEYRING_ITEM, a->name, "the keyring "
		    "item %s for account %s is not a token record",
		    STORE_KEYRING_SCHEMA, a->name);
	if (secret != NULL)
		secret_password_free(secret);
	g_clear_error(&err);
	g_hash_table_unref(attrs);
	return ret;
}

int
store_keyring_save(const struct account *a, const struct token_rec *t,
    struct bm_err *e)
{
	GHashTable *attrs = attrs_for(a, 0);
	struct buf json = BUF_INIT;
	GError *err = NULL;
	struct deadline d;
	char *label;
	gboolean stored;
	int expired, ret = 0;

	label = a->user != NULL ? xasprintf("bearmail token for %s (%s)",
	    a->name, a->user) : xasprintf("bearmail token for %s", a->name);
	store_file_encode(t, &json);
	deadline_start(&d, STORE_KEYRING_TIMEOUT);
	stored = secret_password_storev_sync(&token_schema, attrs,
	    SECRET_COLLECTION_DEFAULT, label, json.data, d.cancel, &err);
	expired = deadline_stop(&d);
	if (!stored || expired)
		ret = keyring_failed(a, "store", expired, err, e);
	g_clear_error(&err);
	buf_free(&json, 1);
	free(label);
	g_hash_table_unref(attrs);
	return ret;
}

int
store_keyring_delete(const struct account *a, int *found, struct bm_err *e)
{
	GHashTable *attrs = attrs_for(a, 1);
	GError *err = NULL;
	struct deadline d;
	int expired, ret = 0;

	deadline_start(&d, STORE_KEYRING_TIMEOUT);
	*found = secret_password_clearv_sync(&token_schema, attrs, d.cancel,
	    &err) ? 1 : 0;
	expired = deadline_stop(&d);
	if (err != NULL || expired)
		ret = keyring_failed(a, "remove", expired, err, e);
	g_clear_error(&err);
	g_hash_table_unref(attrs);
	return ret;
}

/* ------------------------------------------------------- client secrets */

#define SECRET_ADVICE "is gnome-keyring-daemon running and unlocked?"

static GHashTable *
secret_attrs(const char *name)
{
	GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);

	g_hash_table_insert(h, (gpointer)"service",
	    (gpointer)STORE_KEYRING_SECRET_SERVICE);
	g_hash_table_insert(h, (gpointer)"name", (gpointer)name);
	return h;
}

/* libsecret would try to autolaunch a bus: say plainly there is none. */
static int
secret_no_bus(const char *name, struct bm_err *e)
{
	const char *addr = getenv("DBUS_SESSION_BUS_ADDRESS");

	if (addr != NULL && addr[0] != '\0')
		return 0;
	return err_set(e, EX_TEMPFAIL, "keyring:%s: no session bus "
	    "($DBUS_SESSION_BUS_ADDRESS is not set), so no keyring: the "
	    "keyring is reachable only inside a login session; for a service "
	    "use a 0600 file or credential:NAME instead", name);
}

static int
secret_failed(const char *name, const char *what, int expired,
    const GError *err, struct bm_err *e)
{
	if (expired || (err != NULL && g_error_matches(err, G_IO_ERROR,
	    G_IO_ERROR_CANCELLED)))
		return err_set(e, EX_TEMPFAIL, "the keyring did not answer "
		    "within %d s (%s the secret keyring:%s): " SECRET_ADVICE,
		    STORE_KEYRING_TIMEOUT, what, name);
	return err_set(e, EX_TEMPFAIL, "the keyring could not %s the secret "
	    "keyring:%s: %s: " SECRET_ADVICE, what, name,
	    err != NULL ? err->message : "unknown error");
}

static int
secret_missing(const char *name, struct bm_err *e)
{
	return verdict_fail(e, VK_NO_SECRET, name, "keyring:%s: no such "
	    "secret in the keyring", name);
}

int
store_keyring_secret_lookup(const char *name, char **out, size_t *len,
    struct bm_err *e)
{
	GHashTable *attrs = NULL;
	GError *err = NULL;
	struct deadline d;
	gchar *secret = NULL;
	int expired, ret;

	*out = NULL;
	if ((ret = secret_no_bus(name, e)) != 0)
		return ret;
	attrs = secret_attrs(name);
	deadline_start(&d, STORE_KEYRING_TIMEOUT);
	secret = secret_password_lookupv_nonpageable_sync(&secret_any_schema,
	    attrs, d.cancel, &err);
	expired = deadline_stop(&d);
	if (err != NULL || expired)
		ret = secret_failed(name, "read", expired, err, e);
	else if (secret == NULL)
		ret = secret_missing(name, e);
	else {
		if (len != NULL)
			*len = strlen(secret);
		*out = xstrdup(secret);
	}
	if (secret != NULL)
		secret_password_free(secret);
	g_clear_error(&err);
	g_hash_table_unref(attrs);
	return ret;
}

/* One clear call under a deadline: 0 and *found, or EX_TEMPFAIL. */
static int
secret_clear(const char *name, int *found, struct bm_err *e)
{
	GHashTable *attrs = secret_attrs(name);
	GError *err = NULL;
	struct deadline d;
	int expired, ret = 0;

	deadline_start(&d, STORE_KEYRING_TIMEOUT);
	*found = secret_password_clearv_sync(&secret_any_schema, attrs,
	    d.cancel, &err) ? 1 : 0;
	expired = deadline_stop(&d);
	if (err != NULL || expired)
		ret = secret_failed(name, "remove", expired, err, e);
	g_clear_error(&err);
	g_hash_table_unref(attrs);
	return ret;
}

int
store_keyring_secret_store(const char *name, const char *secret,
    struct bm_err *e)
{
	GHashTable *attrs = NULL;
	GError *err = NULL;
	struct deadline d;
	char *label = NULL;
	gboolean stored;
	int expired, found, ret;

	if (!g_utf8_validate(secret, -1, NULL))
		return err_set(e, EX_DATAERR, "the secret for keyring:%s is not "
		    "text (UTF-8): store a file's path instead", name);
	if ((ret = secret_no_bus(name, e)) != 0 ||
	    (ret = secret_clear(name, &found, e)) != 0)
		return ret;
	attrs = secret_attrs(name);
	label = xasprintf("bearmail secret %s", name);
	deadline_start(&d, STORE_KEYRING_TIMEOUT);
	stored = secret_password_storev_sync(&secret_schema, attrs,
	    SECRET_COLLECTION_DEFAULT, label, secret, d.cancel, &err);
	expired = deadline_stop(&d);
	if (!stored || expired)
		ret = secret_failed(name, "store", expired, err, e);
	g_clear_error(&err);
	free(label);
	g_hash_table_unref(attrs);
	return ret;
}

int
store_keyring_secret_delete(const char *name, int *found, struct bm_err *e)
{
	int ret;

	*found = 0;
	if ((ret = secret_no_bus(name, e)) != 0)
		return ret;
	return secret_clear(name, found, e);
}

#else	/* !HAVE_LIBSECRET */

static int
no_libsecret(const struct account *a, struct bm_err *e)
{
	return err_set(e, EX_CONFIG, "account %s: this bearmail was built "
	    "without libsecret, so there is no keyring store: set "
	    "token_store file", a->name);
}

int
store_keyring_available(void)
{
	return 0;
}

int
store_keyring_load(const struct account *a, struct token_rec *t,
    struct bm_err *e)
{
	token_rec_clear(t);
	return no_libsecret(a, e);
}

int
store_keyring_save(const struct account *a, const struct token_rec *t,
    struct bm_err *e)
{
	(void)t;
	return no_libsecret(a, e);
}

int
store_keyring_delete(const struct account *a, int *found, struct bm_err *e)
{
	*found = 0;
	return no_libsecret(a, e);
}

static int
no_libsecret_secret(const char *name, struct bm_err *e)
{
	return err_set(e, EX_CONFIG, "keyring:%s: this bearmail was built "
	    "without libsecret, so there is no keyring: keep the secret in a "
	    "0600 file or a systemd credential (credential:NAME)", name);
}

int
store_keyring_secret_lookup(const char *name, char **out, size_t *len,
    struct bm_err *e)
{
	*out = NULL;
	if (len != NULL)
		*len = 0;
	return no_libsecret_secret(name, e);
}

int
store_keyring_secret_store(const char *name, const char *secret,
    struct bm_err *e)
{
	(void)secret;
	return no_libsecret_secret(name, e);
}

int
store_keyring_secret_delete(const char *name, int *found, struct bm_err *e)
{
	*found = 0;
	return no_libsecret_secret(name, e);
}

#endif
