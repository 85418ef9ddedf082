/*
 * cmd_setup - `bearmail setup`: the first-run wizard.  Asks (on stderr,
 * answers on stdin, so it also works with piped answers) for the account
 * name, provider, address, application (client) ID, tenant and token
 * store; finds the tenant from the address's domain through the identity
 * platform's OpenID discovery document (OpenID Connect Discovery 1.0:
 * {authority}/{domain}/v2.0/.well-known/openid-configuration); writes the
 * configuration file (0600, never over an existing one without --force);
 * then offers to sign in and says how to send a test message.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "commands.h"
#include "conf.h"
#include "http.h"

#define MS_AUTHORITY "https://login.microsoftonline.com"
#define GUIDE "docs/entra-app-registration.md (installed under " \
	"/usr/share/doc/bearmail/)"
#define TRIES 3
#define DISCOVERY_TIMEOUT 15

struct answers {
	char *account, *provider, *address, *client_id, *tenant, *store;
};

struct setup_opts {
	const char *authority;   /* --authority, else the provider's */
	const char *ca_file;     /* --ca-file: discovery, and written */
	int force, no_login;
};

/* ------------------------------------------------------------ asking */

/* One line from stdin without its newline (xmalloc'd), or NULL at EOF. */
static char *
read_answer(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);

	if (n < 0) {
		free(line);
		return NULL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	str_trim(line);
	return line;
}

typedef int (*valid_fn)(const char *);

/*
 * Ask until valid accepts the answer (an empty one takes def when there is
 * one).  Returns the answer, or NULL after TRIES bad answers or at EOF
 * without a default.
 */
static char *
ask(const char *prompt, const char *def, valid_fn valid, const char *why)
{
	char *s;
	int i;

	for (i = 0; i < TRIES; i++) {
		fprintf(stderr, "%s%s%s%s: ", prompt, def ? " [" : "",
		    def ? def : "", def ? "]" : "");
		fflush(stderr);
		s = read_answer();
		if (s == NULL && def == NULL)
			break;
		if (s == NULL || (s[0] == '\0' && def != NULL)) {
			free(s);
			s = xstrdup(def);
		}
		if (!isatty(STDIN_FILENO))	/* piped: show what was read */
			fprintf(stderr, "%s\n", s);
		if (valid(s))
			return s;
		fprintf(stderr, "  %s\n", why);
		free(s);
	}
	fputc('\n', stderr);
	warnx_("setup stopped: no usable answer to \"%s\"", prompt);
	return NULL;
}

static int
valid_name(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
	    "XYZ0123456789._-");

	return n > 0 && s[n] == '\0' && strcmp(s, "default") != 0 &&
	    strcmp(s, "defaults") != 0;
}

static int
valid_provider(const char *s)
{
	return strcmp(s, "outlook") == 0 || strcmp(s, "outlook-personal") == 0;
}

static int
valid_address(const char *s)
{
	const char *at = strchr(s, '@');
	const char *p;

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') ||
	    strchr(at + 1, '.') == NULL)
		return 0;
	for (p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || strchr("<>,;\"",
		    *p))
			return 0;
	return 1;
}

static int
is_guid(const char *s)
{
	static const char form[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;

	for (i = 0; form[i] != '\0'; i++)
		if (form[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return 0;
	return s[i] == '\0';
}

static int
valid_tenant(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
	    "XYZ0123456789.-");

	return n > 0 && s[n] == '\0';
}

static int
valid_store(const char *s)
{
	return strcmp(s, "auto") == 0 || strcmp(s, "keyring") == 0 ||
	    strcmp(s, "file") == 0;
}

static int
valid_yes_no(const char *s)
{
	return strchr("yYnN", s[0]) != NULL && s[0] != '\0';
}

/* --------------------------------------------------------- discovery */

/* The tenant GUID among the path segments of url, or NULL (xmalloc'd). */
static char *
guid_in_url(const char *url)
{
	const char *p = strstr(url, "://");
	char seg[64];
	size_t n;

	for (p = p ? p + 3 : url; (p = strchr(p, '/')) != NULL; p += n) {
		p++;
		n = strcspn(p, "/?#");
		if (n == 36) {
			memcpy(seg, p, n);
			seg[n] = '\0';
			if (is_guid(seg))
				return xstrdup(seg);
		}
	}
	return NULL;
}

static char *
guid_from_document(const char *json)
{
	static const char *const keys[] = { "issuer", "token_endpoint", NULL };
	struct json_object *o = json_tokener_parse(json), *v;
	char *guid = NULL;
	size_t i;

	for (i = 0; o != NULL && keys[i] != NULL && guid == NULL; i++)
		if (json_object_object_get_ex(o, keys[i], &v) &&
		    json_object_is_type(v, json_type_string))
			guid = guid_in_url(json_object_get_string(v));
	if (o != NULL)
		json_object_put(o);
	return guid;
}

/* The tenant GUID for domain, or NULL with a reason on stderr. */
static char *
discover_tenant(const struct setup_opts *so, const char *domain)
{
	struct bm_err e = { 0 };
	struct buf body = BUF_INIT;
	char *url, *guid = NULL;
	long status = 0;

	url = xasprintf("%s/%s/v2.0/.well-known/openid-configuration",
	    so->authority, domain);
	if (http_get(url, so->ca_file, DISCOVERY_TIMEOUT, &status, &body,
	    &e) != 0)
		fprintf(stderr, "  could not look up the tenant: %s\n", e.msg);
	else if (status != 200)
		fprintf(stderr, "  %s is not a Microsoft 365 domain that the "
		    "identity platform knows (HTTP %ld)\n", domain, status);
	else if ((guid = guid_from_document(body.data ? body.data : "")) ==
	    NULL)
		fprintf(stderr, "  the discovery document for %s names no "
		    "tenant\n", domain);
	else
		fprintf(stderr, "  %s belongs to tenant %s\n", domain, guid);
	buf_free(&body, 0);
	free(url);
	return guid;
}

/* ---------------------------------------------------------- questions */

static int
ask_identity(struct answers *an)
{
	if ((an->account = ask("Account name", "work", valid_name,
	    "letters, digits, '.', '_' and '-' only")) == NULL ||
	    (an->provider = ask("Provider (outlook = Microsoft 365, "
	    "outlook-personal = Outlook.com)", "outlook", valid_provider,
	    "outlook or outlook-personal (for others, edit the file: see "
	    "bearmail.conf(5))")) == NULL ||
	    (an->address = ask("Email address", NULL, valid_address,
	    "an address such as alice@contoso.com")) == NULL)
		return EX_USAGE;
	fprintf(stderr, "\nbearmail signs in with an application registered "
	    "in Microsoft Entra.\nIts ID is on the registration's Overview "
	    "page: Microsoft Entra admin center >\nApp registrations > your "
	    "app > Application (client) ID.  How to register one:\n%s\n",
	    GUIDE);
	if ((an->client_id = ask("Application (client) ID", NULL, is_guid,
	    "a GUID such as 00000000-0000-0000-0000-000000000000")) == NULL)
		return EX_USAGE;
	return 0;
}

static int
ask_tenant(const struct setup_opts *so, struct answers *an)
{
	const char *domain = strchr(an->address, '@') + 1;
	char *found = NULL;

	if (strcmp(an->provider, "outlook-personal") == 0) {
		an->tenant = xstrdup("consumers");
		return 0;
	}
	fprintf(stderr, "\nLooking up the tenant of %s ...\n", domain);
	found = discover_tenant(so, domain);
	an->tenant = ask("Tenant (ID or domain; organizations if unsure)",
	    found ? found : "organizations", valid_tenant,
	    "a tenant ID (GUID), a domain, or organizations");
	free(found);
	return an->tenant ? 0 : EX_USAGE;
}

static int
ask_store(struct answers *an)
{
	fprintf(stderr, "\nTokens are kept in the desktop keyring (Secret "
	    "Service) or in a private file;\nauto uses the keyring when one "
	    "answers, else the file.\n");
	an->store = ask("Token store (auto, keyring, file)", "auto",
	    valid_store, "auto, keyring or file");
	return an->store ? 0 : EX_USAGE;
}

/* ------------------------------------------------------------ writing */

static void
compose(const struct setup_opts *so, const struct answers *an,
    struct buf *b)
{
	buf_addf(b, "# bearmail configuration, written by `bearmail setup`.\n"
	    "# See bearmail.conf(5); check it with `bearmail doctor`.\n\n"
	    "account %s\n", an->account);
	buf_addf(b, "  provider     %s\n", an->provider);
	buf_addf(b, "  user         %s\n", an->address);
	buf_addf(b, "  from         %s\n", an->address);
	buf_addf(b, "  tenant       %s\n", an->tenant);
	buf_addf(b, "  client_id    %s\n", an->client_id);
	buf_addf(b, "  token_store  %s\n", an->store);
	if (strcmp(so->authority, MS_AUTHORITY) != 0)
		buf_addf(b, "  authority    %s\n", so->authority);
	if (so->ca_file != NULL)
		buf_addf(b, "  ca_file      %s\n", so->ca_file);
	buf_addf(b, "\naccount default : %s\n", an->account);
}

static int
write_tmp(const char *tmp, const struct buf *b, struct bm_err *e)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0)
		return err_set(e, EX_CANTCREAT, "cannot create %s: %s", tmp,
		    strerror(errno));
	if (write_all(fd, b->data, b->len) != 0 || fsync(fd) != 0)
		rc = err_set(e, EX_IOERR, "cannot write %s: %s", tmp,
		    strerror(errno));
	if (close(fd) != 0 && rc == 0)
		rc = err_set(e, EX_IOERR, "cannot write %s: %s", tmp,
		    strerror(errno));
	return rc;
}

/*
 * Write b to path, 0600: through a temporary file, then rename (--force)
 * or link, which refuses to replace an existing file.
 */
static int
write_config(const char *path, const struct buf *b, int force,
    struct bm_err *e)
{
	char *tmp = xasprintf("%s.setup.%ld", path, (long)getpid());
	int rc;

	if ((rc = mkdir_parent(path, e)) != 0 ||
	    (rc = write_tmp(tmp, b, e)) != 0)
		goto out;
	if (force ? rename(tmp, path) != 0 : link(tmp, path) != 0)
		rc = err_set(e, EX_CANTCREAT, "cannot create %s: %s%s", path,
		    strerror(errno), errno == EEXIST ? " (bearmail setup "
		    "--force replaces it)" : "");
out:
	unlink(tmp);
	free(tmp);
	return rc;
}

/* What was composed must load: conf is the judge of the syntax. */
static int
check_text(const char *path, const struct buf *b, struct bm_err *e)
{
	struct config *c = NULL;
	int rc = conf_parse(b->data, path, &c, e);

	conf_free(c);
	return rc;
}

/* --------------------------------------------------------- afterwards */

static int
offer_login(const char *path, const struct answers *an, int *done)
{
	char *argv[] = { "login", an->account, NULL };
	struct bm_err e = { 0 };
	struct config *c = NULL;
	char *yes;
	int rc;

	yes = ask("\nSign in now? (y/n)", "y", valid_yes_no, "y or n");
	if (yes == NULL || strchr("nN", yes[0]) != NULL) {
		free(yes);
		return 0;
	}
	free(yes);
	if ((rc = conf_load(path, &c, &e)) != 0)
		warnx_("%s", e.msg);
	else
		rc = cmd_login(2, argv, c);
	*done = rc == 0;
	conf_free(c);
	return rc;
}

static void
print_next(const char *path, const struct answers *an, int logged_in)
{
	fprintf(stderr, "\nWrote %s.\n", path);
	if (!logged_in)
		fprintf(stderr, "Sign in with:   bearmail login %s\n",
		    an->account);
	fprintf(stderr, "Check it with:  bearmail doctor %s\n"
	    "Send a test message with:  bearmail send-test %s %s\n",
	    an->account, an->account, an->address);
}

/* ------------------------------------------------------------ command */

/* Where to write: --config / $BEARMAIL_CONFIG, else the user's file. */
static char *
target_path(const struct config *c)
{
	const char *env = getenv("BEARMAIL_CONFIG");
	const char *xdg = getenv("XDG_CONFIG_HOME");

	if (c->path != NULL)
		return xstrdup(c->path);
	if (env != NULL && env[0] != '\0')
		return xstrdup(env);
	if ((xdg == NULL || xdg[0] != '/') && util_home() == NULL)
		return NULL;
	return util_xdg_path("XDG_CONFIG_HOME", ".config", "config");
}

static int
setup_usage(void)
{
	warnx_("usage: bearmail setup [--force] [--no-login] "
	    "[--authority URL] [--ca-file FILE]");
	return EX_USAGE;
}

static int
parse_opts(int argc, char **argv, struct setup_opts *so)
{
	int i;

	so->authority = MS_AUTHORITY;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			so->force = 1;
		else if (strcmp(argv[i], "--no-login") == 0)
			so->no_login = 1;
		else if (strcmp(argv[i], "--authority") == 0 && i + 1 < argc)
			so->authority = argv[++i];
		else if (strcmp(argv[i], "--ca-file") == 0 && i + 1 < argc)
			so->ca_file = argv[++i];
		else
			return setup_usage();
	}
	if (strncmp(so->authority, "https://", 8) != 0 ||
	    strpbrk(so->authority, " \t\r\n") != NULL) {
		warnx_("--authority must be an https URL");
		return EX_USAGE;
	}
	return 0;
}

static void
answers_free(struct answers *an)
{
	free(an->account);
	free(an->provider);
	free(an->address);
	free(an->client_id);
	free(an->tenant);
	free(an->store);
}

static int
interview(const struct setup_opts *so, struct answers *an)
{
	int rc;

	fprintf(stderr, "bearmail setup: a few questions, then the "
	    "configuration is written.\nPress Enter to take the [default].\n\n");
	if ((rc = ask_identity(an)) != 0 || (rc = ask_tenant(so, an)) != 0)
		return rc;
	return ask_store(an);
}

int
cmd_setup(int argc, char **argv, struct config *c)
{
	struct setup_opts so = { NULL, NULL, 0, 0 };
	struct answers an = { NULL, NULL, NULL, NULL, NULL, NULL };
	struct bm_err e = { 0 };
	struct buf text = BUF_INIT;
	char *path = target_path(c);
	struct stat st;
	int rc, done = 0;

	if ((rc = parse_opts(argc, argv, &so)) != 0)
		goto out;
	if (path == NULL) {
		rc = EX_CONFIG;
		warnx_("no HOME: give the file with bearmail --config FILE "
		    "setup");
		goto out;
	}
	if (!so.force && lstat(path, &st) == 0) {
		rc = EX_CANTCREAT;
		warnx_("%s exists: bearmail setup --force replaces it", path);
		goto out;
	}
	if ((rc = interview(&so, &an)) != 0)
		goto out;
	compose(&so, &an, &text);
	if ((rc = check_text(path, &text, &e)) != 0 ||
	    (rc = write_config(path, &text, so.force, &e)) != 0) {
		warnx_("%s", e.msg);
		goto out;
	}
	rc = so.no_login ? 0 : offer_login(path, &an, &done);
	print_next(path, &an, done);
out:
	buf_free(&text, 0);
	answers_free(&an);
	free(path);
	return rc;
}
