/*
 * conf - the configuration file.  msmtp-like syntax: `key value` lines,
 * `#` comments, a `defaults` section that applies to the accounts after it,
 * `account NAME [: OTHER[, OTHER...]]` sections (starting from OTHER's
 * settings) and `account default : NAME`.  Provider presets fill whatever an
 * account does not set itself, wherever `provider` appears.  Also: the
 * search path (XDG Base Directory), the ssh-like owner and mode check, the
 * account for an envelope sender, the machine's mail name and the identity
 * platform's endpoints (Microsoft identity platform v2.0, RFC 6749,
 * RFC 8628).  See docs/bearmail.conf.5.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

#define CONF_MAX_SIZE (1024 * 1024)
#define SYSTEM_CONFIG SYSCONFDIR "/bearmail.conf"
#define MIB (1024LL * 1024LL)

#define MS_AUTHORITY "https://login.microsoftonline.com"
#define MS_SCOPE "https://outlook.office.com/SMTP.Send offline_access"
#define MS_APP_SCOPE "https://outlook.office365.com/.default"

_Static_assert(sizeof(enum tls_mode) == sizeof(int) &&
    sizeof(enum auth_mech) == sizeof(int) &&
    sizeof(enum oauth_flow) == sizeof(int) &&
    sizeof(enum from_policy) == sizeof(int) &&
    sizeof(enum delivery_mode) == sizeof(int) &&
    sizeof(enum assertion_alg) == sizeof(int),
    "enum fields are stored through int pointers");

/* Every key, in the order of the table below; the index is the bit in
 * struct raw's `set` mask. */
enum key_id {
	K_PROVIDER, K_HOST, K_PORT, K_TLS, K_CA_FILE, K_TIMEOUT, K_USER,
	K_FROM, K_AUTH, K_OAUTH_FLOW, K_TENANT, K_CLIENT_ID,
	K_CLIENT_SECRET_FILE, K_CLIENT_CERTIFICATE, K_CLIENT_KEY, K_AUTHORITY,
	K_SCOPE, K_TOKEN_URL, K_DEVICE_URL, K_AUTH_URL, K_TOKEN_STORE,
	K_QUEUE_DIR, K_ALIASES, K_DOMAIN, K_FROM_POLICY, K_DELIVERY,
	K_MAX_CONNECTIONS, K_RATE, K_MAX_SIZE, K_QUEUE_LIFETIME, K_LOG,
	K_CLIENT_ASSERTION_ALG,
	K_COUNT
};

/* How a key's value is stored, for copying and freeing. */
enum store { S_STR, S_INT, S_LL, S_FROM, S_LOG };

struct key;
/* A value parser: 0, or -1 when the value is bad (the key's `bad` text
 * says why). */
typedef int parse_fn(struct account *a, const struct key *k, const char *v);

struct key {
	const char *name;
	enum store store;
	size_t off;
	parse_fn *parse;
	const char *const *names;  /* enum values, in enum order */
	long long min, max;
	const char *bad;
};

/* An account while the file is read: what it set, and on which line. */
struct raw {
	struct account *a;
	uint64_t set;
	int line;                  /* the `account` line */
	int lines[K_COUNT];        /* where each set key was set */
	struct raw *next;
};

struct parser {
	const char *name;
	int line;
	struct raw defaults;
	struct raw *accounts, **tail;
	struct raw *cur;
	char *default_name;
	int default_line;
	struct bm_err *e;
};

struct preset {
	const char *name, *host, *tenant, *authority, *scope, *app_scope;
	const char *token_url, *auth_url, *device_url;
	int max_connections, rate;
	long long max_size;
};

static const struct preset presets[] = {
	{ "outlook", "smtp.office365.com", "common", MS_AUTHORITY, MS_SCOPE,
	  MS_APP_SCOPE, NULL, NULL, NULL, 3, 30, 35 * MIB },
	{ "outlook-personal", "smtp-mail.outlook.com", "consumers",
	  MS_AUTHORITY, MS_SCOPE, MS_APP_SCOPE, NULL, NULL, NULL, 3, 30,
	  35 * MIB },
	{ "gmail", "smtp.gmail.com", NULL, NULL, "https://mail.google.com/",
	  NULL, "https://oauth2.googleapis.com/token",
	  "https://accounts.google.com/o/oauth2/v2/auth",
	  "https://oauth2.googleapis.com/device/code", 0, 0, 35 * MIB },
	{ "generic", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};

static const char *const provider_names[] = { "outlook", "outlook-personal",
	"gmail", "generic", NULL };
static const char *const tls_names[] = { "starttls", "smtps", "off", NULL };
static const char *const auth_names[] = { "xoauth2", "oauthbearer", NULL };
static const char *const flow_names[] = { "delegated", "client_credentials",
	NULL };
static const char *const policy_names[] = { "rewrite", "keep", "reject",
	NULL };
static const char *const delivery_names[] = { "sync", "background", "queue",
	NULL };
static const char *const alg_names[] = { "ps256", "rs256", NULL };

/* Keys that would hold a secret: refused with a pointer to the right place. */
static const char *const secret_keys[] = { "client_secret", "password",
	"token", "refresh_token", "access_token", NULL };

/* msmtp spellings that are too far from ours for the edit distance. */
static const char *const msmtp_hints[][2] = {
	{ "tls_trust_file", "ca_file" }, { "tls_starttls", "tls" },
	{ "logfile", "log" }, { "syslog", "log" }, { NULL, NULL },
};

static parse_fn parse_provider, parse_host, parse_int, parse_enum,
    parse_path, parse_seconds, parse_word, parse_from, parse_ident,
    parse_url, parse_text, parse_token_store, parse_rate, parse_size,
    parse_log, parse_secret_path, parse_secret_source;

#define F(field) offsetof(struct account, field)

static const struct key keys[K_COUNT] = {
	[K_PROVIDER] = { "provider", S_STR, F(provider), parse_provider,
	    provider_names, 0, 0,
	    "provider must be outlook, outlook-personal, gmail or generic" },
	[K_HOST] = { "host", S_STR, F(host), parse_host, NULL, 0, 0,
	    "host must be a host name or an IP address" },
	[K_PORT] = { "port", S_INT, F(port), parse_int, NULL, 1, 65535,
	    "port must be a number from 1 to 65535" },
	[K_TLS] = { "tls", S_INT, F(tls), parse_enum, tls_names, 0, 0,
	    "tls must be starttls, smtps or off" },
	[K_CA_FILE] = { "ca_file", S_STR, F(ca_file), parse_path, NULL, 0, 0,
	    "ca_file must be an absolute path (or start with ~/)" },
	[K_TIMEOUT] = { "timeout", S_INT, F(timeout), parse_seconds, NULL, 0,
	    3600, "timeout must be a number of seconds from 0 to 3600 "
	    "(such as 30, 30s or 2m)" },
	[K_USER] = { "user", S_STR, F(user), parse_word, NULL, 0, 0,
	    "user must be one word, such as alice@contoso.com" },
	[K_FROM] = { "from", S_FROM, F(from), parse_from, NULL, 0, 0,
	    "from must be addresses or patterns such as alice@contoso.com, "
	    "*@contoso.com or *" },
	[K_AUTH] = { "auth", S_INT, F(auth), parse_enum, auth_names, 0, 0,
	    "auth must be xoauth2 or oauthbearer" },
	[K_OAUTH_FLOW] = { "oauth_flow", S_INT, F(oauth_flow), parse_enum,
	    flow_names, 0, 0,
	    "oauth_flow must be delegated or client_credentials" },
	[K_TENANT] = { "tenant", S_STR, F(tenant), parse_ident, NULL, 0, 0,
	    "tenant must be common, organizations, consumers, a tenant ID "
	    "or a domain" },
	[K_CLIENT_ID] = { "client_id", S_STR, F(client_id), parse_ident, NULL,
	    0, 0, "client_id must be the application (client) ID of the "
	    "app registration" },
	[K_CLIENT_SECRET_FILE] = { "client_secret_file", S_STR,
	    F(client_secret_file), parse_secret_source, NULL, 0, 0,
	    "client_secret_file must be an absolute path (or start with ~/), "
	    "credential:NAME or keyring:NAME" },
	[K_CLIENT_CERTIFICATE] = { "client_certificate", S_STR,
	    F(client_certificate), parse_secret_path, NULL, 0, 0,
	    "client_certificate must be an absolute path (or start with ~/), "
	    "or credential:NAME" },
	[K_CLIENT_KEY] = { "client_key", S_STR, F(client_key),
	    parse_secret_source, NULL, 0, 0,
	    "client_key must be an absolute path (or start with ~/), "
	    "credential:NAME or keyring:NAME" },
	[K_AUTHORITY] = { "authority", S_STR, F(authority), parse_url, NULL,
	    0, 0, "authority must be an https:// URL such as "
	    MS_AUTHORITY " (http:// only to a loopback host)" },
	[K_SCOPE] = { "scope", S_STR, F(scope), parse_text, NULL, 0, 0,
	    "scope must be one or more scopes separated by spaces" },
	[K_TOKEN_URL] = { "token_url", S_STR, F(token_url), parse_url, NULL,
	    0, 0, "token_url must be an https:// URL "
	    "(http:// only to a loopback host)" },
	[K_DEVICE_URL] = { "device_url", S_STR, F(device_url), parse_url,
	    NULL, 0, 0, "device_url must be an https:// URL "
	    "(http:// only to a loopback host)" },
	[K_AUTH_URL] = { "auth_url", S_STR, F(auth_url), parse_url, NULL, 0,
	    0, "auth_url must be an https:// URL "
	    "(http:// only to a loopback host)" },
	[K_TOKEN_STORE] = { "token_store", S_STR, F(token_store),
	    parse_token_store, NULL, 0, 0,
	    "token_store must be keyring, auto, file or file:/absolute/path" },
	[K_QUEUE_DIR] = { "queue_dir", S_STR, F(queue_dir), parse_path, NULL,
	    0, 0, "queue_dir must be an absolute path (or start with ~/)" },
	[K_ALIASES] = { "aliases", S_STR, F(aliases), parse_path, NULL, 0, 0,
	    "aliases must be an absolute path (or start with ~/)" },
	[K_DOMAIN] = { "domain", S_STR, F(domain), parse_ident, NULL, 0, 0,
	    "domain must be a domain name such as example.com" },
	[K_FROM_POLICY] = { "from_policy", S_INT, F(from_policy), parse_enum,
	    policy_names, 0, 0, "from_policy must be rewrite, keep or reject" },
	[K_DELIVERY] = { "delivery", S_INT, F(delivery), parse_enum,
	    delivery_names, 0, 0,
	    "delivery must be sync, background or queue" },
	[K_MAX_CONNECTIONS] = { "max_connections", S_INT, F(max_connections),
	    parse_int, NULL, 0, 1000,
	    "max_connections must be a number from 0 (no limit) to 1000" },
	[K_RATE] = { "rate", S_INT, F(rate), parse_rate, NULL, 0, 100000,
	    "rate must be a number of messages a minute, such as 30 or "
	    "30/min (0: no limit)" },
	[K_MAX_SIZE] = { "max_size", S_LL, F(max_size), parse_size, NULL, 0,
	    0, "max_size must be a size such as 35M, 512k or 0 (no limit)" },
	[K_QUEUE_LIFETIME] = { "queue_lifetime", S_LL, F(queue_lifetime),
	    parse_seconds, NULL, 60, 365LL * 86400,
	    "queue_lifetime must be a duration from 1m to 365d, such as 5d "
	    "or 12h" },
	[K_LOG] = { "log", S_LOG, F(log), parse_log, NULL, 0, 0,
	    "log must be syslog, stderr or an absolute file path" },
	[K_CLIENT_ASSERTION_ALG] = { "client_assertion_alg", S_INT,
	    F(client_assertion_alg), parse_enum, alg_names, 0, 0,
	    "client_assertion_alg must be ps256 or rs256" },
};

#define BIT(id) ((uint64_t)1 << (id))

/* --------------------------------------------------------- field access */

static char **
str_at(struct account *a, const struct key *k)
{
	return (char **)(void *)((char *)a + k->off);
}

static int *
int_at(struct account *a, const struct key *k)
{
	return (int *)(void *)((char *)a + k->off);
}

static long long *
ll_at(struct account *a, const struct key *k)
{
	return (long long *)(void *)((char *)a + k->off);
}

static void
set_str(struct account *a, const struct key *k, const char *v)
{
	char **p = str_at(a, k);

	free(*p);
	*p = v ? xstrdup(v) : NULL;
}

static void
free_from(struct account *a)
{
	size_t i;

	for (i = 0; i < a->nfrom; i++)
		free(a->from[i]);
	free(a->from);
	a->from = NULL;
	a->nfrom = 0;
}

static void
add_from(struct account *a, const char *pattern, size_t n)
{
	a->from = xrealloc(a->from, (a->nfrom + 1) * sizeof(*a->from));
	a->from[a->nfrom++] = xstrndup(pattern, n);
}

static void
account_free(struct account *a)
{
	int i;

	if (a == NULL)
		return;
	for (i = 0; i < K_COUNT; i++)
		if (keys[i].store == S_STR)
			free(*str_at(a, &keys[i]));
	free_from(a);
	free(a->log_file);
	free(a->name);
	free(a);
}

/* Copy key k's value from src to dst. */
static void
copy_value(struct account *dst, struct account *src, const struct key *k)
{
	size_t i;

	switch (k->store) {
	case S_STR:
		set_str(dst, k, *str_at(src, k));
		break;
	case S_INT:
		*int_at(dst, k) = *int_at(src, k);
		break;
	case S_LL:
		*ll_at(dst, k) = *ll_at(src, k);
		break;
	case S_FROM:
		free_from(dst);
		for (i = 0; i < src->nfrom; i++)
			add_from(dst, src->from[i], strlen(src->from[i]));
		break;
	case S_LOG:
		dst->log = src->log;
		free(dst->log_file);
		dst->log_file = src->log_file ? xstrdup(src->log_file) : NULL;
		break;
	}
}

/* Copy what src set into dst, as if dst had set it on the same lines. */
static void
copy_set(struct raw *dst, const struct raw *src)
{
	int i;

	for (i = 0; i < K_COUNT; i++) {
		if (!(src->set & BIT(i)))
			continue;
		copy_value(dst->a, src->a, &keys[i]);
		dst->set |= BIT(i);
		dst->lines[i] = src->lines[i];
	}
}

/* ------------------------------------------------------- value checks */

static int
is_loopback(const char *host, size_t n)
{
	char h[INET6_ADDRSTRLEN + 3];
	unsigned char addr[sizeof(struct in6_addr)];

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(h))
		return 0;
	memcpy(h, host, n);
	h[n] = '\0';
	if (strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0)
		return 1;
	if (inet_pton(AF_INET, h, addr) == 1)
		return addr[0] == 127;
	if (inet_pton(AF_INET6, h, addr) == 1)
		return IN6_IS_ADDR_LOOPBACK((struct in6_addr *)(void *)addr);
	return 0;
}

static int
has_space(const char *s)
{
	return strpbrk(s, " \t") != NULL;
}

/* Whether every character is a letter, a digit or one of extra. */
static int
all_of(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return 0;
	return 1;
}

/* An absolute path, with a leading ~/ expanded; NULL when it is neither. */
static char *
expand_path(const char *v)
{
	const char *home;

	if (v[0] == '/')
		return xstrdup(v);
	if (strncmp(v, "~/", 2) == 0 && (home = util_home()) != NULL)
		return xasprintf("%s%s", home, v + 1);
	return NULL;
}

/* ----------------------------------------------------------- parsers */

static int
parse_text(struct account *a, const struct key *k, const char *v)
{
	set_str(a, k, v);
	return 0;
}

static int
parse_word(struct account *a, const struct key *k, const char *v)
{
	if (has_space(v))
		return -1;
	set_str(a, k, v);
	return 0;
}

/* Names that end up in a URL or a host lookup: no '/', '?', '%' or '@'. */
static int
parse_ident(struct account *a, const struct key *k, const char *v)
{
	if (!all_of(v, ".-_"))
		return -1;
	set_str(a, k, v);
	return 0;
}

static int
parse_host(struct account *a, const struct key *k, const char *v)
{
	if (!all_of(v, ".-_:[]"))
		return -1;
	set_str(a, k, v);
	return 0;
}

static int
find_name(const char *const *names, const char *v)
{
	int i;

	for (i = 0; names[i] != NULL; i++)
		if (strcasecmp(names[i], v) == 0)
			return i;
	return -1;
}

static int
parse_enum(struct account *a, const struct key *k, const char *v)
{
	int i = find_name(k->names, v);

	if (i < 0)
		return -1;
	*int_at(a, k) = i;
	return 0;
}

static int
parse_provider(struct account *a, const struct key *k, const char *v)
{
	int i = find_name(k->names, v);

	if (i < 0)
		return -1;
	set_str(a, k, k->names[i]);
	return 0;
}

static int
parse_int(struct account *a, const struct key *k, const char *v)
{
	long long n;

	if (str_to_ll(v, k->min, k->max, &n) != 0)
		return -1;
	*int_at(a, k) = (int)n;
	return 0;
}

static int
parse_seconds(struct account *a, const struct key *k, const char *v)
{
	long long n;

	if (str_to_seconds(v, &n) != 0 || n < k->min || n > k->max)
		return -1;
	if (k->store == S_INT)
		*int_at(a, k) = (int)n;
	else
		*ll_at(a, k) = n;
	return 0;
}

static int
parse_size(struct account *a, const struct key *k, const char *v)
{
	long long n;

	if (str_to_size(v, &n) != 0)
		return -1;
	*ll_at(a, k) = n;
	return 0;
}

/* N or N/min. */
static int
parse_rate(struct account *a, const struct key *k, const char *v)
{
	const char *slash = strchr(v, '/');
	char num[32];
	long long n;
	size_t len = slash ? (size_t)(slash - v) : strlen(v);

	if (slash != NULL && strcasecmp(slash, "/min") != 0)
		return -1;
	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, v, len);
	num[len] = '\0';
	if (str_to_ll(num, k->min, k->max, &n) != 0)
		return -1;
	*int_at(a, k) = (int)n;
	return 0;
}

static int
parse_path(struct account *a, const struct key *k, const char *v)
{
	char *p = expand_path(v);

	if (p == NULL)
		return -1;
	free(*str_at(a, k));
	*str_at(a, k) = p;
	return 0;
}

/* A path, or credential:NAME (a systemd credential: $CREDENTIALS_DIRECTORY
 * is only known when the service runs, so the name is kept as given). */
static int
parse_secret_path(struct account *a, const struct key *k, const char *v)
{
	const char *name = v + strlen("credential:");

	if (strncmp(v, "credential:", strlen("credential:")) != 0)
		return parse_path(a, k, v);
	if (name[0] == '\0' || !all_of(name, "._-@+") || name[0] == '.')
		return -1;
	set_str(a, k, v);
	return 0;
}

/* A secret's source: parse_secret_path, or keyring:NAME (a secret stored
 * with `bearmail secret set NAME`). */
static int
parse_secret_source(struct account *a, const struct key *k, const char *v)
{
	const char *name = v + strlen("keyring:");

	if (strncmp(v, "keyring:", strlen("keyring:")) != 0)
		return parse_secret_path(a, k, v);
	if (name[0] == '\0' || !all_of(name, "._-@+") || name[0] == '.')
		return -1;
	set_str(a, k, v);
	return 0;
}

/* https://HOST[...], or http:// to a loopback host. */
static int
parse_url(struct account *a, const struct key *k, const char *v)
{
	const char *host, *end;
	int https = str_has_prefix_ci(v, "https://");

	if (has_space(v))
		return -1;
	if (https)
		host = v + 8;
	else if (str_has_prefix_ci(v, "http://"))
		host = v + 7;
	else
		return -1;
	if (host[0] == '[')
		end = strchr(host, ']') ? strchr(host, ']') + 1 : host;
	else
		end = host + strcspn(host, ":/?#");
	if (end == host || memchr(host, '@', (size_t)(end - host)) != NULL ||
	    strchr("/:?#", *end) == NULL)
		return -1;
	if (!https && !is_loopback(host, (size_t)(end - host)))
		return -1;
	set_str(a, k, v);
	return 0;
}

static int
parse_token_store(struct account *a, const struct key *k, const char *v)
{
	char *p;

	if (strcmp(v, "keyring") == 0 || strcmp(v, "auto") == 0 ||
	    strcmp(v, "file") == 0) {
		set_str(a, k, v);
		return 0;
	}
	if (strncmp(v, "file:", 5) != 0 || (p = expand_path(v + 5)) == NULL)
		return -1;
	free(*str_at(a, k));
	*str_at(a, k) = xasprintf("file:%s", p);
	free(p);
	return 0;
}

static int
parse_log(struct account *a, const struct key *k, const char *v)
{
	char *p = NULL;

	if (strcmp(v, "syslog") == 0)
		a->log = LOG_TO_SYSLOG;
	else if (strcmp(v, "stderr") == 0)
		a->log = LOG_TO_STDERR;
	else if ((p = expand_path(v)) != NULL)
		a->log = LOG_TO_FILE;
	else
		return -1;
	free(a->log_file);
	a->log_file = p;
	return 0;
}

/* addr@domain, *@domain or *. */
static int
valid_pattern(const char *p, size_t n)
{
	const char *at = NULL;
	size_t i;

	if (n == 1 && p[0] == '*')
		return 1;
	for (i = 0; i < n; i++)
		if (p[i] == '@')
			at = p + i;
	if (at == NULL || at == p || at == p + n - 1)
		return 0;
	if (memchr(at + 1, '*', (size_t)(p + n - at - 1)) != NULL)
		return 0;
	if (memchr(p, '*', (size_t)(at - p)) != NULL)
		return at == p + 1;
	return 1;
}

/* Patterns separated by white space or commas. */
static int
parse_from(struct account *a, const struct key *k, const char *v)
{
	const char *sep = " \t,";
	size_t n;

	free_from(a);
	for (v += strspn(v, sep); *v != '\0'; v += strspn(v, sep)) {
		n = strcspn(v, sep);
		if (!valid_pattern(v, n)) {
			free_from(a);
			return -1;
		}
		add_from(a, v, n);
		v += n;
	}
	return a->nfrom > 0 ? 0 : -1;
}

/* ------------------------------------------------------- line reading */

/* At most 2 edits apart, comparing letters case-insensitively. */
static size_t
edit_distance(const char *s, const char *t)
{
	size_t ls = strlen(s), lt = strlen(t), row[33], i, j, diag, up, best;

	if (ls > 32 || lt > 32)
		return SIZE_MAX;
	for (j = 0; j <= lt; j++)
		row[j] = j;
	for (i = 1; i <= ls; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lt; j++) {
			up = row[j];
			best = diag + (tolower((unsigned char)s[i - 1]) !=
			    tolower((unsigned char)t[j - 1]));
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lt];
}

/* The nearest known word to an unknown key, or NULL. */
static const char *
suggest(const char *word)
{
	const char *best = NULL;
	size_t d, bestd = 3;
	int i;

	for (i = 0; msmtp_hints[i][0] != NULL; i++)
		if (strcmp(word, msmtp_hints[i][0]) == 0)
			return msmtp_hints[i][1];
	for (i = 0; i < K_COUNT + 2; i++) {
		const char *cand = i < K_COUNT ? keys[i].name :
		    i == K_COUNT ? "account" : "defaults";
		if ((d = edit_distance(word, cand)) < bestd) {
			bestd = d;
			best = cand;
		}
	}
	return best;
}

static int
perr(struct parser *p, const char *msg)
{
	return err_set(p->e, EX_CONFIG, "%s:%d: %s", p->name, p->line, msg);
}

/*
 * Cut the value out of the rest of a line: unquoted, it ends at a '#'
 * after white space and is trimmed; quoted, it keeps everything up to the
 * closing quote (\" and \\ escape).  Returns NULL and fills the error on a
 * broken quote.
 */
static char *
cut_value(struct parser *p, char *s)
{
	char *r, *w;

	if (*s != '"') {
		for (r = s; *r != '\0'; r++)
			if (*r == '#' && (r == s || r[-1] == ' ' || r[-1] == '\t'))
				*r = '\0';
		return str_trim(s);
	}
	for (w = s, r = s + 1; *r != '\0' && *r != '"'; *w++ = *r++)
		if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
			r++;
	if (*r != '"') {
		perr(p, "missing closing quote");
		return NULL;
	}
	for (r++; *r == ' ' || *r == '\t'; r++)
		;
	if (*r != '\0' && *r != '#') {
		perr(p, "text after the closing quote");
		return NULL;
	}
	*w = '\0';
	return s;
}

static struct raw *
find_raw(struct parser *p, const char *name)
{
	struct raw *r;

	for (r = p->accounts; r != NULL; r = r->next)
		if (strcmp(r->a->name, name) == 0)
			return r;
	return NULL;
}

/* Account names become file names (token store, locks): keep them tame. */
static int
valid_account_name(const char *name)
{
	return name[0] != '\0' && name[0] != '.' && strlen(name) <= 64 &&
	    all_of(name, "._-@+");
}

/* `account default : NAME`. */
static int
section_default(struct parser *p, const char *target)
{
	if (!valid_account_name(target))
		return perr(p, "account default : NAME needs one account name");
	free(p->default_name);
	p->default_name = xstrdup(target);
	p->default_line = p->line;
	p->cur = NULL;
	return 0;
}

/* Start from each comma-separated parent's settings, in order. */
static int
inherit(struct parser *p, struct raw *r, char *parents)
{
	char *name, *save = NULL;
	struct raw *parent;

	for (name = strtok_r(parents, ",", &save); name != NULL;
	    name = strtok_r(NULL, ",", &save)) {
		name = str_trim(name);
		if ((parent = find_raw(p, name)) == NULL || parent == r)
			return err_set(p->e, EX_CONFIG, "%s:%d: account \"%s\" "
			    "is not defined above", p->name, p->line, name);
		copy_set(r, parent);
	}
	return 0;
}

/* `account NAME [: OTHER[, OTHER...]]`. */
static int
section_account(struct parser *p, char *v)
{
	char *colon = strchr(v, ':'), *name, *parents = NULL;
	struct raw *r;

	if (colon != NULL) {
		*colon = '\0';
		parents = str_trim(colon + 1);
	}
	name = str_trim(v);
	if (parents != NULL && parents[0] == '\0')
		return perr(p, "account NAME : OTHER needs the account to start "
		    "from");
	if (strcmp(name, "default") == 0 && parents != NULL)
		return section_default(p, parents);
	if (!valid_account_name(name))
		return perr(p, "an account name is letters, digits and . _ - @ + "
		    "(not starting with a dot)");
	if (find_raw(p, name) != NULL)
		return err_set(p->e, EX_CONFIG, "%s:%d: account \"%s\" is "
		    "defined twice", p->name, p->line, name);
	r = xcalloc(1, sizeof(*r));
	r->a = xcalloc(1, sizeof(*r->a));
	r->a->name = xstrdup(name);
	r->line = p->line;
	*p->tail = r;
	p->tail = &r->next;
	p->cur = r;
	copy_set(r, &p->defaults);
	return parents != NULL ? inherit(p, r, parents) : 0;
}

/* A word that could be a mistyped key: quoting anything else could print
 * a secret (a config path linked to a client secret file, say). */
static int
looks_like_key(const char *w)
{
	size_t n = strspn(w, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-");

	return n > 0 && n <= 32 && w[n] == '\0';
}

static int
bad_key(struct parser *p, const char *key)
{
	const char *near;
	int i;

	for (i = 0; secret_keys[i] != NULL; i++)
		if (strcmp(key, secret_keys[i]) == 0)
			return perr(p, "secrets do not belong in the config "
			    "file: use client_secret_file (a file of mode 0600) "
			    "for a client secret; tokens live in the token store "
			    "(bearmail login)");
	if (!looks_like_key(key))
		return err_set(p->e, EX_CONFIG, "%s:%d: unknown key (not shown: "
		    "it does not look like a key name, and it could be a secret): "
		    "is %s a bearmail configuration file?", p->name, p->line,
		    p->name);
	if ((near = suggest(key)) != NULL)
		return err_set(p->e, EX_CONFIG, "%s:%d: unknown key \"%s\"; "
		    "did you mean \"%s\"?", p->name, p->line, key, near);
	return err_set(p->e, EX_CONFIG, "%s:%d: unknown key \"%s\"", p->name,
	    p->line, key);
}

static int
set_key(struct parser *p, const char *key, const char *v)
{
	const struct key *k = NULL;
	const char *c;
	int i;

	for (i = 0; i < K_COUNT && k == NULL; i++)
		if (strcmp(key, keys[i].name) == 0)
			k = &keys[i];
	if (k == NULL)
		return bad_key(p, key);
	if (p->cur == NULL)
		return err_set(p->e, EX_CONFIG, "%s:%d: \"%s\" must follow a "
		    "\"defaults\" or \"account NAME\" line", p->name, p->line,
		    key);
	if (*v == '\0')
		return err_set(p->e, EX_CONFIG, "%s:%d: %s needs a value",
		    p->name, p->line, key);
	for (c = v; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 && *c != '\t')
			return perr(p, "control character in the value");
	if (k->parse(p->cur->a, k, v) != 0)
		return perr(p, k->bad);
	p->cur->set |= BIT(k - keys);
	p->cur->lines[k - keys] = p->line;
	return 0;
}

static int
parse_line(struct parser *p, char *s)
{
	char *key, *v;

	s += strspn(s, " \t");
	if (*s == '\0' || *s == '#')
		return 0;
	key = s;
	s += strcspn(s, " \t");
	if (*s != '\0')
		*s++ = '\0';
	s += strspn(s, " \t");
	if ((v = cut_value(p, s)) == NULL)
		return EX_CONFIG;
	if (strcmp(key, "defaults") == 0) {
		if (*v != '\0')
			return perr(p, "\"defaults\" takes no value");
		p->cur = &p->defaults;
		return 0;
	}
	if (strcmp(key, "account") == 0)
		return section_account(p, v);
	return set_key(p, key, v);
}

/* --------------------------------------------------------- finishing */

static const struct preset *
preset_for(const char *provider)
{
	size_t i;

	for (i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (strcmp(presets[i].name, provider) == 0)
			return &presets[i];
	return &presets[0];
}

static void
default_str(struct raw *r, enum key_id id, const char *v)
{
	if (!(r->set & BIT(id)) && v != NULL)
		set_str(r->a, &keys[id], v);
}

static void
default_int(struct raw *r, enum key_id id, int v)
{
	if (!(r->set & BIT(id)))
		*int_at(r->a, &keys[id]) = v;
}

/* Fill what the account did not set: provider preset, then the rest. */
static void
apply_defaults(struct raw *r)
{
	struct account *a = r->a;
	const struct preset *pr;

	default_str(r, K_PROVIDER, "outlook");
	pr = preset_for(a->provider);
	default_str(r, K_HOST, pr->host);
	default_int(r, K_PORT, a->tls == TLS_SMTPS ? 465 : 587);
	default_str(r, K_TENANT, pr->tenant);
	default_str(r, K_AUTHORITY, pr->authority);
	default_str(r, K_SCOPE, a->oauth_flow == FLOW_CLIENT_CREDENTIALS ?
	    pr->app_scope : pr->scope);
	default_str(r, K_TOKEN_URL, pr->token_url);
	default_str(r, K_AUTH_URL, pr->auth_url);
	default_str(r, K_DEVICE_URL, pr->device_url);
	default_int(r, K_MAX_CONNECTIONS, pr->max_connections);
	default_int(r, K_RATE, pr->rate);
	if (!(r->set & BIT(K_MAX_SIZE)))
		a->max_size = pr->max_size;
	if (!(r->set & BIT(K_QUEUE_LIFETIME)))
		a->queue_lifetime = 5 * 86400;
	default_str(r, K_TOKEN_STORE, "auto");
	default_str(r, K_ALIASES, "/etc/aliases");
	if (a->nfrom == 0 && a->user != NULL)
		add_from(a, a->user, strlen(a->user));
}

static int
is_common_tenant(const char *tenant)
{
	return tenant == NULL || strcasecmp(tenant, "common") == 0 ||
	    strcasecmp(tenant, "organizations") == 0 ||
	    strcasecmp(tenant, "consumers") == 0;
}

/* Why an app-only account cannot work, or NULL. */
static const char *
check_app_only(const struct account *a, enum key_id *where)
{
	*where = K_OAUTH_FLOW;
	if (strcmp(a->provider, "outlook-personal") == 0 ||
	    strcmp(a->provider, "gmail") == 0)
		return "oauth_flow client_credentials is for work or school "
		    "tenants (provider outlook or generic)";
	if (a->client_secret_file == NULL && a->client_certificate == NULL)
		return "oauth_flow client_credentials needs client_secret_file, "
		    "or client_certificate and client_key";
	if (a->token_url == NULL && is_common_tenant(a->tenant))
		return "oauth_flow client_credentials needs tenant set to the "
		    "directory's ID or domain (not common, organizations or "
		    "consumers)";
	return NULL;
}

/* Why the account cannot work, or NULL; *where is the key to blame. */
static const char *
check_account(const struct account *a, enum key_id *where)
{
	*where = K_COUNT;
	if (a->user == NULL)
		return "user is required (the mailbox to sign in as, such as "
		    "alice@contoso.com)";
	if (a->host == NULL)
		return "host is required (provider generic sets none)";
	if (a->token_url == NULL && (a->authority == NULL || a->tenant == NULL))
		return "token_url is required (provider generic sets none)";
	if (a->client_id == NULL)
		return "client_id is required (the application (client) ID of "
		    "the app registration)";
	*where = K_TLS;
	if (a->tls == TLS_OFF && !is_loopback(a->host, strlen(a->host)))
		return "tls off is only allowed to a loopback host";
	*where = a->client_key != NULL ? K_CLIENT_KEY : K_CLIENT_CERTIFICATE;
	if ((a->client_certificate == NULL) != (a->client_key == NULL))
		return "client_certificate and client_key go together";
	if (a->oauth_flow == FLOW_CLIENT_CREDENTIALS)
		return check_app_only(a, where);
	return NULL;
}

static int
finish_account(struct parser *p, struct raw *r)
{
	enum key_id where;
	const char *why;
	int line;

	apply_defaults(r);
	if ((why = check_account(r->a, &where)) == NULL)
		return 0;
	line = where != K_COUNT && (r->set & BIT(where)) ? r->lines[where] :
	    r->line;
	return err_set(p->e, EX_CONFIG, "%s:%d: account \"%s\": %s", p->name,
	    line, r->a->name, why);
}

static int
finish(struct parser *p)
{
	struct raw *r;
	int rc;

	if (p->accounts == NULL)
		return err_set(p->e, EX_CONFIG, "%s: no account is defined: "
		    "add an \"account NAME\" section (see bearmail.conf(5))",
		    p->name);
	for (r = p->accounts; r != NULL; r = r->next)
		if ((rc = finish_account(p, r)) != 0)
			return rc;
	if (p->default_name != NULL && find_raw(p, p->default_name) == NULL)
		return err_set(p->e, EX_CONFIG, "%s:%d: account default : %s: "
		    "there is no account \"%s\"", p->name, p->default_line,
		    p->default_name, p->default_name);
	return 0;
}

/* Hand the accounts over to a config, or free them. */
static struct config *
build(struct parser *p, int keep)
{
	struct config *c = keep ? xcalloc(1, sizeof(*c)) : NULL;
	struct account **tail = c ? &c->accounts : NULL;
	struct raw *r, *next;

	for (r = p->accounts; r != NULL; r = next) {
		next = r->next;
		if (c != NULL) {
			*tail = r->a;
			tail = &r->a->next;
		} else {
			account_free(r->a);
		}
		free(r);
	}
	if (c != NULL) {
		c->path = xstrdup(p->name);
		c->default_account = p->default_name;
	} else {
		free(p->default_name);
	}
	account_free(p->defaults.a);
	return c;
}

int
conf_parse(const char *text, const char *name, struct config **out,
    struct bm_err *e)
{
	struct parser p;
	const char *s, *nl;
	char *line;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.name = name;
	p.e = e;
	p.tail = &p.accounts;
	p.defaults.a = xcalloc(1, sizeof(*p.defaults.a));
	*out = NULL;
	for (s = text; *s != '\0' && rc == 0; s = *nl ? nl + 1 : nl) {
		nl = s + strcspn(s, "\n");
		p.line++;
		line = xstrndup(s, (size_t)(nl - s));
		rc = parse_line(&p, line);
		free(line);
	}
	if (rc == 0)
		rc = finish(&p);
	*out = build(&p, rc == 0);
	return rc;
}

/* ------------------------------------------------------------ loading */

static int
check_mode(const struct stat *st, const char *path, struct bm_err *e)
{
	int system_file = strcmp(path, SYSTEM_CONFIG) == 0;
	mode_t bad = system_file ? 026 : 066;

	if (st->st_uid != geteuid() && st->st_uid != 0)
		return err_set(e, EX_CONFIG, "'%s' belongs to uid %lu, not to "
		    "you or root: it may hold account details; refusing it",
		    path, (unsigned long)st->st_uid);
	if (st->st_mode & bad)
		return err_set(e, EX_CONFIG, "permissions %04o for '%s' are "
		    "too open: it may hold account details; run: chmod %s '%s'",
		    (unsigned)(st->st_mode & 07777), path,
		    system_file ? "640" : "600", path);
	return 0;
}

/* file_open's or file_read_fd's refusal: the message stands, the code is
 * the configuration's. */
static int
unusable(struct bm_err *e)
{
	if (e != NULL)
		e->code = EX_CONFIG;
	return EX_CONFIG;
}

/* The file's text: a regular file (a link to one is followed: the
 * administrator may link it; the checks are on what was opened). */
static int
read_config(const char *path, char **text, struct bm_err *e)
{
	struct stat st;
	size_t len = 0;
	int fd, rc;

	if (file_open(path, FILE_MISSING_OK, &fd, &st, e) != 0)
		return unusable(e);
	if (fd < 0)
		return err_set(e, EX_CONFIG, "no configuration (%s does not "
		    "exist): create ~/.config/bearmail/config (see "
		    "bearmail.conf(5)) or run bearmail setup", path);
	if ((rc = check_mode(&st, path, e)) == 0 &&
	    file_read_fd(fd, path, CONF_MAX_SIZE, 0, text, &len, e) != 0)
		rc = unusable(e);
	close(fd);
	if (rc == 0 && memchr(*text, '\0', len) != NULL)
		rc = err_set(e, EX_CONFIG, "%s is not a text file (it holds a "
		    "NUL byte): correct the path or the file", path);
	return rc;
}

int
conf_load(const char *path, struct config **out, struct bm_err *e)
{
	char *text = NULL;
	int rc;

	*out = NULL;
	if ((rc = read_config(path, &text, e)) == 0)
		rc = conf_parse(text, path, out, e);
	free(text);
	return rc;
}

void
conf_free(struct config *c)
{
	struct account *a, *next;

	if (c == NULL)
		return;
	for (a = c->accounts; a != NULL; a = next) {
		next = a->next;
		account_free(a);
	}
	free(c->default_account);
	free(c->path);
	free(c);
}

/* --------------------------------------------------------- search path */

static int
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The user's candidates, in order; NULL when there is none left. */
static char *
user_candidate(int i)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home;

	if (i == 0)
		return xdg != NULL && xdg[0] == '/' ?
		    xasprintf("%s/bearmail/config", xdg) : NULL;
	if (i == 1 && (home = util_home()) != NULL)
		return xasprintf("%s/.config/bearmail/config", home);
	return NULL;
}

char *
conf_find_path(const char *explicit_path)
{
	const char *env = getenv("BEARMAIL_CONFIG");
	char *cand;
	int i;

	if (explicit_path != NULL && explicit_path[0] != '\0')
		return xstrdup(explicit_path);
	if (env != NULL && env[0] != '\0')
		return xstrdup(env);
	for (i = 0; i < 2; i++) {
		if ((cand = user_candidate(i)) != NULL && exists(cand))
			return cand;
		free(cand);
	}
	return xstrdup(SYSTEM_CONFIG);
}

/* ----------------------------------------------------------- accounts */

static struct account *
find_account(struct config *c, const char *name)
{
	struct account *a;

	for (a = c->accounts; a != NULL; a = a->next)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

struct account *
conf_account(struct config *c, const char *name)
{
	struct account *a = find_account(c, name);

	if (a == NULL && strcmp(name, "default") == 0)
		a = conf_default_account(c);
	return a;
}

struct account *
conf_default_account(struct config *c)
{
	struct account *a = NULL;

	if (c->default_account != NULL)
		a = find_account(c, c->default_account);
	if (a == NULL)
		a = find_account(c, "default");
	return a != NULL ? a : c->accounts;
}

static int
pattern_match(const char *pat, const char *addr)
{
	const char *at;

	if (strcmp(pat, "*") == 0)
		return 1;
	if (strncmp(pat, "*@", 2) == 0) {
		at = strrchr(addr, '@');
		return at != NULL && at != addr &&
		    strcasecmp(at + 1, pat + 2) == 0;
	}
	return strcasecmp(pat, addr) == 0;
}

int
account_may_send_as(const struct account *a, const char *addr)
{
	size_t i;

	if (addr == NULL)
		return 0;
	for (i = 0; i < a->nfrom; i++)
		if (pattern_match(a->from[i], addr))
			return 1;
	return 0;
}

struct account *
conf_select(struct config *c, const char *addr)
{
	struct account *a;

	if (addr != NULL && addr[0] != '\0')
		for (a = c->accounts; a != NULL; a = a->next)
			if (account_may_send_as(a, addr))
				return a;
	return conf_default_account(c);
}

const char *
account_address(const struct account *a)
{
	if (a->nfrom > 0 && strchr(a->from[0], '*') == NULL)
		return a->from[0];
	return a->user;
}

/* ---------------------------------------------------------- mail name */

/* /etc/mailname's first line, when it looks like a domain. */
static char *
mailname_file(void)
{
	char *text, *line, *name = NULL;

	if (file_read("/etc/mailname", 4096, FILE_MISSING_OK, &text, NULL,
	    NULL) != 0 || text == NULL)
		return NULL;
	text[strcspn(text, "\n")] = '\0';
	line = str_trim(text);
	if (line[0] != '\0' && all_of(line, ".-_"))
		name = xstrdup(line);
	free(text);
	return name;
}

/* The FQDN from the resolver, else the bare host name. */
static char *
fqdn(void)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	char *name = NULL;

	if (gethostname(host, sizeof(host)) != 0)
		return NULL;
	host[sizeof(host) - 1] = '\0';
	if (host[0] == '\0')
		return NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(host, NULL, &hints, &res) == 0 && res != NULL &&
	    res->ai_canonname != NULL && strchr(res->ai_canonname, '.'))
		name = xstrdup(res->ai_canonname);
	if (res != NULL)
		freeaddrinfo(res);
	return name != NULL ? name : xstrdup(host);
}

const char *
conf_mailname(void)
{
	static char *name;

	if (name == NULL)
		name = mailname_file();
	if (name == NULL)
		name = fqdn();
	if (name == NULL)
		name = xstrdup("localhost");
	return name;
}

/* ---------------------------------------------------------- endpoints */

/* A tenant that can go into a URL path: a name, domain or GUID. */
static int
tenant_is_safe(const char *t)
{
	return t[0] != '\0' && t[0] != '.' && t[strspn(t,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")]
	    == '\0';
}

static char *
endpoint(const struct account *a, const char *url, const char *tenant,
    const char *leaf)
{
	size_t n;

	if (url != NULL)
		return xstrdup(url);
	if (tenant == NULL)
		tenant = a->tenant;
	if (a->authority == NULL || tenant == NULL || !tenant_is_safe(tenant))
		return NULL;
	n = strlen(a->authority);
	while (n > 0 && a->authority[n - 1] == '/')
		n--;
	return xasprintf("%.*s/%s/oauth2/v2.0/%s", (int)n, a->authority,
	    tenant, leaf);
}

char *
conf_token_url(const struct account *a)
{
	return endpoint(a, a->token_url, NULL, "token");
}

char *
conf_tenant_token_url(const struct account *a, const char *tenant)
{
	return endpoint(a, a->token_url, tenant, "token");
}

char *
conf_device_url(const struct account *a)
{
	return endpoint(a, a->device_url, NULL, "devicecode");
}

char *
conf_auth_url(const struct account *a)
{
	return endpoint(a, a->auth_url, NULL, "authorize");
}
