/*
 * conf - the configuration file (msmtp-like `key value` lines, `defaults`
 * and `account NAME` sections, `account default : NAME`), provider presets,
 * the search path and the ownership/permission check.  See docs/bearmail.conf.5.
 */
#ifndef BEARMAIL_CONF_H
#define BEARMAIL_CONF_H

#include "util.h"

enum tls_mode { TLS_STARTTLS, TLS_SMTPS, TLS_OFF };
enum auth_mech { AUTH_XOAUTH2, AUTH_OAUTHBEARER };
enum oauth_flow { FLOW_DELEGATED, FLOW_CLIENT_CREDENTIALS };
enum from_policy { FROM_REWRITE, FROM_KEEP, FROM_REJECT };
enum delivery_mode { DELIVERY_SYNC, DELIVERY_BACKGROUND, DELIVERY_QUEUE };
enum log_target { LOG_TO_SYSLOG, LOG_TO_STDERR, LOG_TO_FILE };
enum assertion_alg { ASSERTION_PS256, ASSERTION_RS256 };

struct account {
	char *name;
	char *provider;        /* outlook | outlook-personal | gmail | generic */
	char *host;
	int port;
	enum tls_mode tls;
	char *ca_file;         /* NULL: the system store */
	int timeout;           /* seconds; 0: RFC 5321 per-command defaults */
	char *user;
	char **from;           /* patterns the account may send as; [0] = default */
	size_t nfrom;
	enum auth_mech auth;
	enum oauth_flow oauth_flow;
	char *tenant;
	char *client_id;
	char *client_secret_file;
	char *client_certificate;
	char *client_key;
	char *authority;       /* e.g. https://login.microsoftonline.com */
	char *scope;
	char *token_url;       /* explicit endpoints (generic, gmail); NULL: derived */
	char *device_url;
	char *auth_url;
	char *token_store;     /* keyring | file | file:PATH | auto */
	char *queue_dir;
	char *aliases;         /* default /etc/aliases */
	char *domain;          /* appended to bare local parts; default: mailname */
	enum from_policy from_policy;
	enum delivery_mode delivery;
	int max_connections;
	int rate;              /* messages a minute; 0: no limit */
	long long max_size;    /* bytes; 0: no limit beyond the server's SIZE */
	long long queue_lifetime; /* seconds */
	enum log_target log;
	char *log_file;        /* when log == LOG_TO_FILE */
	struct account *next;
	enum assertion_alg client_assertion_alg; /* JWT client assertion */
};

struct config {
	char *path;
	struct account *accounts;  /* in file order */
	char *default_account;     /* from `account default : NAME`, or NULL */
};

/*
 * Find the configuration file: explicit (from -C/--config), else
 * $BEARMAIL_CONFIG (both returned as given), else the first that exists of
 * $XDG_CONFIG_HOME/bearmail/config (when that variable is absolute) and
 * ~/.config/bearmail/config, else SYSCONFDIR/bearmail.conf.
 * Returns a newly allocated path (which may not exist).
 */
char *conf_find_path(const char *explicit_path);

/*
 * Load and validate the file (symbolic links followed; the owner and mode
 * of the opened file checked first: it must belong to the caller or root,
 * and is refused when readable or writable by others, writable by the
 * group, or readable by the group unless it is SYSCONFDIR/bearmail.conf).
 * Returns 0 and *out, or EX_CONFIG (also when the file does not exist)
 * with *out NULL and e->msg naming the file, the line and the fix.
 */
int conf_load(const char *path, struct config **out, struct bm_err *e);
/* Parse from memory (for tests; no permission check); name is used in
 * messages and as c->path.  Returns 0 or EX_CONFIG, like conf_load. */
int conf_parse(const char *text, const char *name, struct config **out,
    struct bm_err *e);
void conf_free(struct config *c);

/* The account called name ("default": the default account unless one is
 * called that), or NULL. */
struct account *conf_account(struct config *c, const char *name);
/* The default account (account default : X, else one named "default",
 * else the first). NULL if there are none. */
struct account *conf_default_account(struct config *c);
/*
 * The account for an envelope sender: the first whose `from` patterns match
 * addr (case-insensitive; `*@domain` and `*` wildcards), else the default.
 */
struct account *conf_select(struct config *c, const char *addr);
/* Whether addr matches one of the account's `from` patterns. */
int account_may_send_as(const struct account *a, const char *addr);
/* The account's own address: from[0] when it has no wildcard, else user. */
const char *account_address(const struct account *a);

/* The machine's mail name: /etc/mailname's first line if present, else
 * the FQDN (gethostname + getaddrinfo AI_CANONNAME), else "localhost".
 * Cached; NEVER NULL. */
const char *conf_mailname(void);
/* The account's token URL: token_url if set, else
 * authority "/" tenant "/oauth2/v2.0/token" (authority without trailing
 * slash). xmalloc'd. Same for conf_device_url (".../devicecode") and
 * conf_auth_url (".../authorize").  NULL when neither an explicit URL nor
 * authority and tenant are known (a generic provider without device_url
 * or auth_url), or the tenant is not a name, domain or GUID.
 * conf_tenant_token_url: the same for another tenant (NULL: the
 * account's), e.g. the one a stored token came from. */
char *conf_token_url(const struct account *a);
char *conf_tenant_token_url(const struct account *a, const char *tenant);
char *conf_device_url(const struct account *a);
char *conf_auth_url(const struct account *a);

#endif
