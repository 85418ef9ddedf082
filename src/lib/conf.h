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
};

struct config {
	char *path;
	struct account *accounts;  /* in file order */
	char *default_account;     /* from `account default : NAME`, or NULL */
};

/*
 * Find the configuration file: explicit (from -C/--config), else
 * $BEARMAIL_CONFIG, else $XDG_CONFIG_HOME/bearmail/config (or
 * ~/.config/bearmail/config), else SYSCONFDIR/bearmail.conf.
 * Returns a newly allocated path (which may not exist).
 */
char *conf_find_path(const char *explicit_path);

/*
 * Load and validate the file (ownership and mode checked first: refused
 * when readable or writable by others, or by the group unless it is the
 * system file).  On error returns EX_CONFIG (or EX_NOINPUT when the file
 * does not exist) and e->msg names the file, the line and the fix.
 */
int conf_load(const char *path, struct config **out, struct bm_err *e);
/* Parse from memory (for tests; no permission check). */
int conf_parse(const char *text, const char *name, struct config **out,
    struct bm_err *e);
void conf_free(struct config *c);

/* The account called name, or NULL. */
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
/* The account's own address: user when it is a mailbox, else from[0]. */
const char *account_address(const struct account *a);

#endif
