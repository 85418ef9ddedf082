/*
 * test_conf - the configuration module: parsing (sections, inheritance,
 * quoting, comments), provider presets and their overrides, every error
 * message, account selection, the owner/mode check, the endpoint URLs and
 * the search path.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "tests/unit/tap.h"

#define CID "client_id 00000000-0000-0000-0000-000000000000\n"

/* ------------------------------------------------------------ configs */

static const char good[] =
    "# a comment\n"
    "\n"
    "defaults\n"
    "  provider outlook   # presets\n"
    "  " CID
    "  timeout 2m\n"
    "account work\n"
    "  user alice@contoso.com\n"
    "  from alice@contoso.com *@contoso.com\n"
    "  tenant contoso.onmicrosoft.com\n"
    "  token_store keyring\n"
    "account home\n"
    "  provider outlook-personal\n"
    "  user bob@outlook.com\n"
    "  scope \"  spaced # kept  \"\n"
    "  log stderr\n"
    "account default : work\n";

static const char inherit[] =
    "account a\n"
    "  user a@example.com\n"
    "  " CID
    "  port 2525\n"
    "  from_policy keep\n"
    "account b : a\n"
    "  user b@example.com\n"
    "defaults\n"
    "  delivery queue\n"
    "account c : b\n"
    "  user c@example.com\n";

/* provider presets give way to explicit keys, before or after `provider` */
static const char presets[] =
    "account before\n"
    "  host relay.example.com\n"
    "  rate 5\n"
    "  provider outlook\n"
    "  user x@example.com\n  " CID
    "account after\n"
    "  provider gmail\n"
    "  token_url https://login.example.net/token\n"
    "  max_size 10M\n"
    "  user y@gmail.com\n  " CID
    "account generic\n"
    "  provider generic\n"
    "  host 127.0.0.1\n  port 2525\n  tls off\n"
    "  token_url http://127.0.0.1:8080/token\n"
    "  user z@example.com\n  " CID
    "account app\n"
    "  oauth_flow client_credentials\n"
    "  tenant contoso.onmicrosoft.com\n"
    "  client_secret_file keyring:app-secret\n"
    "  user app@contoso.com\n  " CID
    "account cert\n"
    "  oauth_flow client_credentials\n"
    "  tenant contoso.onmicrosoft.com\n"
    "  client_certificate /etc/bearmail/app.crt\n"
    "  client_key credential:app.key\n"
    "  client_assertion_alg RS256\n"
    "  user app@contoso.com\n  " CID
    "account sov\n"
    "  authority https://login.microsoftonline.us/\n"
    "  tenant contoso.onmicrosoft.us\n"
    "  tls smtps\n"
    "  queue_lifetime 12h\n"
    "  log /var/log/bearmail.log\n"
    "  user s@contoso.us\n  " CID;

static const char *const texts[] = { good, inherit, presets };

/* A field of an account as text, to compare in a table. */
static void
field(const struct account *a, const char *f, char *out, size_t n)
{
	if (strcmp(f, "provider") == 0) snprintf(out, n, "%s", a->provider);
	else if (strcmp(f, "host") == 0) snprintf(out, n, "%s", a->host);
	else if (strcmp(f, "port") == 0) snprintf(out, n, "%d", a->port);
	else if (strcmp(f, "tls") == 0) snprintf(out, n, "%d", (int)a->tls);
	else if (strcmp(f, "timeout") == 0) snprintf(out, n, "%d", a->timeout);
	else if (strcmp(f, "user") == 0) snprintf(out, n, "%s", a->user);
	else if (strcmp(f, "from") == 0) {
		size_t i, len = 0;
		out[0] = '\0';
		for (i = 0; i < a->nfrom && len < n; i++)
			len += (size_t)snprintf(out + len, n - len, "%s%s",
			    i ? "|" : "", a->from[i]);
	}
	else if (strcmp(f, "tenant") == 0) snprintf(out, n, "%s", a->tenant);
	else if (strcmp(f, "scope") == 0) snprintf(out, n, "[%s]", a->scope);
	else if (strcmp(f, "authority") == 0)
		snprintf(out, n, "%s", a->authority ? a->authority : "(null)");
	else if (strcmp(f, "token_url") == 0)
		snprintf(out, n, "%s", a->token_url ? a->token_url : "(null)");
	else if (strcmp(f, "token_store") == 0)
		snprintf(out, n, "%s", a->token_store);
	else if (strcmp(f, "aliases") == 0) snprintf(out, n, "%s", a->aliases);
	else if (strcmp(f, "from_policy") == 0)
		snprintf(out, n, "%d", (int)a->from_policy);
	else if (strcmp(f, "delivery") == 0)
		snprintf(out, n, "%d", (int)a->delivery);
	else if (strcmp(f, "max_connections") == 0)
		snprintf(out, n, "%d", a->max_connections);
	else if (strcmp(f, "rate") == 0) snprintf(out, n, "%d", a->rate);
	else if (strcmp(f, "max_size") == 0)
		snprintf(out, n, "%lld", a->max_size);
	else if (strcmp(f, "queue_lifetime") == 0)
		snprintf(out, n, "%lld", a->queue_lifetime);
	else if (strcmp(f, "oauth_flow") == 0)
		snprintf(out, n, "%d", (int)a->oauth_flow);
	else if (strcmp(f, "client_assertion_alg") == 0)
		snprintf(out, n, "%d", (int)a->client_assertion_alg);
	else if (strcmp(f, "client_key") == 0)
		snprintf(out, n, "%s", a->client_key ? a->client_key : "(null)");
	else if (strcmp(f, "client_secret_file") == 0)
		snprintf(out, n, "%s", a->client_secret_file ?
		    a->client_secret_file : "(null)");
	else if (strcmp(f, "log") == 0)
		snprintf(out, n, "%d:%s", (int)a->log,
		    a->log_file ? a->log_file : "-");
	else if (strcmp(f, "address") == 0)
		snprintf(out, n, "%s", account_address(a));
	else
		snprintf(out, n, "?field %s", f);
}

static const struct {
	int text;
	const char *account, *field, *want;
} fields[] = {
	{ 0, "work", "provider", "outlook" },
	{ 0, "work", "host", "smtp.office365.com" },
	{ 0, "work", "port", "587" },
	{ 0, "work", "tls", "0" },
	{ 0, "work", "timeout", "120" },
	{ 0, "work", "from", "alice@contoso.com|*@contoso.com" },
	{ 0, "work", "tenant", "contoso.onmicrosoft.com" },
	{ 0, "work", "scope",
	  "[https://outlook.office.com/SMTP.Send offline_access]" },
	{ 0, "work", "authority", "https://login.microsoftonline.com" },
	{ 0, "work", "token_store", "keyring" },
	{ 0, "work", "aliases", "/etc/aliases" },
	{ 0, "work", "max_connections", "3" },
	{ 0, "work", "rate", "30" },
	{ 0, "work", "max_size", "36700160" },
	{ 0, "work", "queue_lifetime", "432000" },
	{ 0, "work", "log", "0:-" },
	{ 0, "work", "address", "alice@contoso.com" },
	{ 0, "home", "host", "smtp-mail.outlook.com" },
	{ 0, "home", "tenant", "consumers" },
	{ 0, "home", "timeout", "120" },
	{ 0, "home", "from", "bob@outlook.com" },
	{ 0, "home", "scope", "[  spaced # kept  ]" },
	{ 0, "home", "token_store", "auto" },
	{ 0, "home", "log", "1:-" },
	{ 1, "a", "port", "2525" },
	{ 1, "a", "delivery", "0" },
	{ 1, "b", "port", "2525" },
	{ 1, "b", "from_policy", "1" },
	{ 1, "b", "user", "b@example.com" },
	{ 1, "b", "from", "b@example.com" },
	{ 1, "b", "delivery", "0" },
	{ 1, "c", "port", "2525" },
	{ 1, "c", "delivery", "2" },
	{ 1, "c", "from", "c@example.com" },
	{ 2, "before", "host", "relay.example.com" },
	{ 2, "before", "rate", "5" },
	{ 2, "before", "max_connections", "3" },
	{ 2, "after", "host", "smtp.gmail.com" },
	{ 2, "after", "token_url", "https://login.example.net/token" },
	{ 2, "after", "scope", "[https://mail.google.com/]" },
	{ 2, "after", "max_size", "10485760" },
	{ 2, "after", "max_connections", "0" },
	{ 2, "after", "authority", "(null)" },
	{ 2, "generic", "host", "127.0.0.1" },
	{ 2, "generic", "tls", "2" },
	{ 2, "generic", "max_size", "0" },
	{ 2, "generic", "rate", "0" },
	{ 2, "app", "oauth_flow", "1" },
	{ 2, "app", "scope", "[https://outlook.office365.com/.default]" },
	{ 2, "app", "client_assertion_alg", "0" },
	{ 2, "app", "client_secret_file", "keyring:app-secret" },
	{ 2, "cert", "client_assertion_alg", "1" },
	{ 2, "cert", "client_key", "credential:app.key" },
	{ 2, "sov", "port", "465" },
	{ 2, "sov", "tls", "1" },
	{ 2, "sov", "queue_lifetime", "43200" },
	{ 2, "sov", "log", "2:/var/log/bearmail.log" },
	{ 2, "sov", "tenant", "contoso.onmicrosoft.us" },
};

static void
test_fields(void)
{
	struct config *c[3];
	struct bm_err e = { 0 };
	char got[512];
	size_t i;

	for (i = 0; i < 3; i++)
		if (!ok(conf_parse(texts[i], "t.conf", &c[i], &e) == 0,
		    "config %zu parses", i))
			printf("#   %s\n", e.msg);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct account *a = c[fields[i].text] ?
		    conf_account(c[fields[i].text], fields[i].account) : NULL;
		if (a == NULL) {
			ok(0, "account %s exists", fields[i].account);
			continue;
		}
		field(a, fields[i].field, got, sizeof(got));
		is_str(got, fields[i].want, "%s.%s", fields[i].account,
		    fields[i].field);
	}
	is_str(conf_default_account(c[0])->name, "work", "account default : work");
	is_str(conf_account(c[0], "default")->name, "work", "\"default\" resolves");
	is_str(conf_default_account(c[1])->name, "a", "first is the default");
	is_str(c[0]->path, "t.conf", "path recorded");
	for (i = 0; i < 3; i++)
		conf_free(c[i]);
}

/* --------------------------------------------------------------- errors */

#define ACC "account x\n user x@example.com\n " CID

static const struct {
	const char *text, *want;
} bad[] = {
	{ ACC "port 0\n", "t.conf:4: port must be a number from 1 to 65535" },
	{ ACC "port 65536\n", "t.conf:4: port must be a number from 1 to 65535" },
	{ ACC "port 25x\n", "t.conf:4: port must be a number from 1 to 65535" },
	{ ACC "tls on\n", "t.conf:4: tls must be starttls, smtps or off" },
	{ ACC "timeout 2h\n", "t.conf:4: timeout must be a number of seconds "
	  "from 0 to 3600 (such as 30, 30s or 2m)" },
	{ ACC "from alice\n", "t.conf:4: from must be addresses or patterns "
	  "such as alice@contoso.com, *@contoso.com or *" },
	{ ACC "from a*@x.com\n", "t.conf:4: from must be addresses or "
	  "patterns such as alice@contoso.com, *@contoso.com or *" },
	{ ACC "auth plain\n", "t.conf:4: auth must be xoauth2 or oauthbearer" },
	{ ACC "oauth_flow password\n",
	  "t.conf:4: oauth_flow must be delegated or client_credentials" },
	{ ACC "tenant ../x\n", "t.conf:4: tenant must be common, "
	  "organizations, consumers, a tenant ID or a domain" },
	{ ACC "provider yahoo\n", "t.conf:4: provider must be outlook, "
	  "outlook-personal, gmail or generic" },
	{ ACC "host a b\n", "t.conf:4: host must be a host name or an IP address" },
	{ ACC "ca_file certs.pem\n",
	  "t.conf:4: ca_file must be an absolute path (or start with ~/)" },
	{ ACC "authority http://login.example.com\n", "t.conf:4: authority "
	  "must be an https:// URL such as https://login.microsoftonline.com "
	  "(http:// only to a loopback host)" },
	{ ACC "token_url https://user@evil/x\n", "t.conf:4: token_url must "
	  "be an https:// URL (http:// only to a loopback host)" },
	{ ACC "token_store vault\n", "t.conf:4: token_store must be keyring, "
	  "auto, file or file:/absolute/path" },
	{ ACC "token_store file:tokens\n", "t.conf:4: token_store must be "
	  "keyring, auto, file or file:/absolute/path" },
	{ ACC "from_policy drop\n",
	  "t.conf:4: from_policy must be rewrite, keep or reject" },
	{ ACC "delivery later\n",
	  "t.conf:4: delivery must be sync, background or queue" },
	{ ACC "max_connections -1\n", "t.conf:4: max_connections must be a "
	  "number from 0 (no limit) to 1000" },
	{ ACC "rate 30/hour\n", "t.conf:4: rate must be a number of messages "
	  "a minute, such as 30 or 30/min (0: no limit)" },
	{ ACC "max_size 35MB\n", "t.conf:4: max_size must be a size such as "
	  "35M, 512k or 0 (no limit)" },
	{ ACC "queue_lifetime 10s\n", "t.conf:4: queue_lifetime must be a "
	  "duration from 1m to 365d, such as 5d or 12h" },
	{ ACC "log syslog:mail\n",
	  "t.conf:4: log must be syslog, stderr or an absolute file path" },
	{ ACC "host\n", "t.conf:4: host needs a value" },
	{ ACC "scope \"open\n", "t.conf:4: missing closing quote" },
	{ ACC "scope \"a\" b\n", "t.conf:4: text after the closing quote" },
	{ ACC "frm a@b.c\n",
	  "t.conf:4: unknown key \"frm\"; did you mean \"from\"?" },
	{ ACC "Host x\n",
	  "t.conf:4: unknown key \"Host\"; did you mean \"host\"?" },
	{ ACC "tls_trust_file /x\n",
	  "t.conf:4: unknown key \"tls_trust_file\"; did you mean \"ca_file\"?" },
	{ ACC "set_from_header on\n",
	  "t.conf:4: unknown key \"set_from_header\"" },
	{ ACC "password hunter2\n", "t.conf:4: secrets do not belong in the "
	  "config file: use client_secret_file (a file of mode 0600) for a "
	  "client secret; tokens live in the token store (bearmail login)" },
	{ ACC "client_secret s3cret\n", "t.conf:4: secrets do not belong in "
	  "the config file: use client_secret_file (a file of mode 0600) for a "
	  "client secret; tokens live in the token store (bearmail login)" },
	{ ACC "refresh_token 0.AAA\n", "t.conf:4: secrets do not belong in "
	  "the config file: use client_secret_file (a file of mode 0600) for a "
	  "client secret; tokens live in the token store (bearmail login)" },
	{ ACC "tls off\n",
	  "t.conf:4: account \"x\": tls off is only allowed to a loopback host" },
	{ ACC "host localhost\ntls off\nhost mail.example.com\n",
	  "t.conf:5: account \"x\": tls off is only allowed to a loopback host" },
	{ "host x\n", "t.conf:1: \"host\" must follow a \"defaults\" or "
	  "\"account NAME\" line" },
	{ "# nothing\n", "t.conf: no account is defined: add an \"account "
	  "NAME\" section (see bearmail.conf(5))" },
	{ "account x\n " CID, "t.conf:1: account \"x\": user is required (the "
	  "mailbox to sign in as, such as alice@contoso.com)" },
	{ "account x\n user u@x.y\n", "t.conf:1: account \"x\": client_id is "
	  "required (the application (client) ID of the app registration)" },
	{ ACC "provider generic\n", "t.conf:1: account \"x\": host is required "
	  "(provider generic sets none)" },
	{ ACC "provider generic\nhost h.example\n", "t.conf:1: account \"x\": "
	  "token_url is required (provider generic sets none)" },
	{ ACC "oauth_flow client_credentials\ntenant t.example\n",
	  "t.conf:4: account \"x\": oauth_flow client_credentials needs "
	  "client_secret_file, or client_certificate and client_key" },
	{ ACC "oauth_flow client_credentials\nclient_secret_file /s\n",
	  "t.conf:4: account \"x\": oauth_flow client_credentials needs tenant "
	  "set to the directory's ID or domain (not common, organizations or "
	  "consumers)" },
	{ ACC "client_certificate /c.pem\n", "t.conf:4: account \"x\": "
	  "client_certificate and client_key go together" },
	{ ACC "client_assertion_alg es256\n",
	  "t.conf:4: client_assertion_alg must be ps256 or rs256" },
	{ ACC "client_key credential:../k\n", "t.conf:4: client_key must be "
	  "an absolute path (or start with ~/), credential:NAME or "
	  "keyring:NAME" },
	{ ACC "client_key keyring:\n", "t.conf:4: client_key must be "
	  "an absolute path (or start with ~/), credential:NAME or "
	  "keyring:NAME" },
	{ ACC "client_secret_file secret.txt\n", "t.conf:4: "
	  "client_secret_file must be an absolute path (or start with ~/), "
	  "credential:NAME or keyring:NAME" },
	{ ACC "client_secret_file keyring:a/b\n", "t.conf:4: "
	  "client_secret_file must be an absolute path (or start with ~/), "
	  "credential:NAME or keyring:NAME" },
	{ ACC "client_certificate keyring:c\n", "t.conf:4: "
	  "client_certificate must be an absolute path (or start with ~/), "
	  "or credential:NAME" },
	{ ACC "account x\n", "t.conf:4: account \"x\" is defined twice" },
	{ ACC "account y : z\n", "t.conf:4: account \"z\" is not defined above" },
	{ ACC "account y :\n",
	  "t.conf:4: account NAME : OTHER needs the account to start from" },
	{ ACC "account ../up\n", "t.conf:4: an account name is letters, digits "
	  "and . _ - @ + (not starting with a dot)" },
	{ ACC "account default : nope\n", "t.conf:4: account default : nope: "
	  "there is no account \"nope\"" },
	{ ACC "defaults now\n", "t.conf:4: \"defaults\" takes no value" },
};

static void
test_errors(void)
{
	struct config *c;
	struct bm_err e;
	size_t i;
	int rc;

	static struct config sentinel;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		c = &sentinel;
		rc = conf_parse(bad[i].text, "t.conf", &c, &e);
		ok(rc == EX_CONFIG && e.code == EX_CONFIG && c == NULL,
		    "bad %zu refused with EX_CONFIG", i);
		is_str(e.msg, bad[i].want, "bad %zu message", i);
		if (c != &sentinel)
			conf_free(c);
	}
}

/* The examples of docs/bearmail.conf.5 parse. */
static const char *const examples[] = {
	"defaults\n  provider     outlook\n"
	"  client_id    00000000-0000-0000-0000-000000000000\n\n"
	"account work\n  user         alice@contoso.com\n"
	"  from         alice@contoso.com *@contoso.com\n"
	"  tenant       contoso.onmicrosoft.com\n  token_store  keyring\n\n"
	"account default : work\n",
	"account home\n  provider     outlook-personal\n"
	"  user         bob@outlook.com\n"
	"  client_id    11111111-1111-1111-1111-111111111111\n",
	"account app\n  provider            outlook\n"
	"  oauth_flow          client_credentials\n"
	"  tenant              contoso.onmicrosoft.com\n"
	"  client_id           00000000-0000-0000-0000-000000000000\n"
	"  client_secret_file  /etc/bearmail/app.secret\n"
	"  user                noreply@contoso.com\n"
	"  from                *@contoso.com\n",
	"account test\n  provider   generic\n  host       127.0.0.1\n"
	"  port       2525\n  tls        off\n"
	"  token_url  http://127.0.0.1:8080/token\n"
	"  user       test@example.com\n  client_id  test\n",
};

static void
test_examples(void)
{
	struct config *c;
	struct bm_err e;
	size_t i;

	for (i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
		if (!ok(conf_parse(examples[i], "ex", &c, &e) == 0,
		    "man page example %zu", i))
			printf("#   %s\n", e.msg);
		conf_free(c);
	}
}

/* ------------------------------------------------------------ selection */

static const char selcfg[] =
    "defaults\n " CID
    "account shared\n user alice@contoso.com\n from info@contoso.com\n"
    "account alice\n user alice@contoso.com\n"
    "  from alice@contoso.com *@Sales.Contoso.com\n"
    "account fallback\n user robot@example.org\n from *\n"
    "account default : alice\n";

static const struct {
	const char *addr, *want;
	int may_alice;
} sel[] = {
	{ "info@contoso.com", "shared", 0 },
	{ "INFO@Contoso.COM", "shared", 0 },
	{ "alice@contoso.com", "alice", 1 },
	{ "bob@sales.contoso.com", "alice", 1 },
	{ "bob@x.sales.contoso.com", "fallback", 0 },
	{ "@sales.contoso.com", "fallback", 0 },
	{ "root", "fallback", 0 },
	{ "", "alice", 0 },
	{ NULL, "alice", 0 },
};

static void
test_select(void)
{
	struct config *c;
	struct bm_err e;
	struct account *alice;
	size_t i;

	if (!ok(conf_parse(selcfg, "s.conf", &c, &e) == 0, "selection config"))
		return;
	alice = conf_account(c, "alice");
	for (i = 0; i < sizeof(sel) / sizeof(sel[0]); i++) {
		is_str(conf_select(c, sel[i].addr)->name, sel[i].want,
		    "select %s", sel[i].addr ? sel[i].addr : "(null)");
		is_int(account_may_send_as(alice, sel[i].addr), sel[i].may_alice,
		    "alice may send as %s", sel[i].addr ? sel[i].addr : "(null)");
	}
	is_str(account_address(conf_account(c, "shared")), "info@contoso.com",
	    "address: from[0]");
	is_str(account_address(conf_account(c, "fallback")), "robot@example.org",
	    "address: user when from[0] is a wildcard");
	ok(conf_account(c, "nope") == NULL, "unknown account: NULL");
	conf_free(c);
}

/* ---------------------------------------------------------- permissions */

static const struct {
	mode_t mode;
	int rc;
	const char *perm;
} perms[] = {
	{ 0600, 0, NULL },
	{ 0400, 0, NULL },
	{ 0640, EX_CONFIG, "0640" },
	{ 0644, EX_CONFIG, "0644" },
	{ 0660, EX_CONFIG, "0660" },
	{ 0602, EX_CONFIG, "0602" },
};

static char tmpdir[] = "/tmp/test_conf.XXXXXX";

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		die(1, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void
test_perms(void)
{
	char *path = xasprintf("%s/config", tmpdir), *want;
	struct config *c;
	struct bm_err e;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(perms) / sizeof(perms[0]); i++) {
		write_file(path, selcfg, perms[i].mode);
		memset(&e, 0, sizeof(e));
		rc = conf_load(path, &c, &e);
		is_int(rc, perms[i].rc, "mode %04o", (unsigned)perms[i].mode);
		if (perms[i].perm == NULL) {
			ok(c != NULL && strcmp(c->path, path) == 0,
			    "mode %04o loads", (unsigned)perms[i].mode);
			conf_free(c);
			continue;
		}
		want = xasprintf("permissions %s for '%s' are too open: it may "
		    "hold account details; run: chmod 600 '%s'", perms[i].perm,
		    path, path);
		is_str(e.msg, want, "mode %04o message", (unsigned)perms[i].mode);
		free(want);
	}
	if (geteuid() == 0 && chown(path, 54321, (gid_t)-1) == 0) {
		chmod(path, 0600);
		rc = conf_load(path, &c, &e);
		want = xasprintf("'%s' belongs to uid 54321, not to you or root: "
		    "it may hold account details; refusing it", path);
		ok(rc == EX_CONFIG && c == NULL, "another user's file refused");
		is_str(e.msg, want, "owner message");
		free(want);
	} else {
		ok(1, "# SKIP owner check needs root");
		ok(1, "# SKIP owner check needs root");
	}
	unlink(path);
	rc = conf_load(path, &c, &e);
	want = xasprintf("no configuration (%s does not exist): create "
	    "~/.config/bearmail/config (see bearmail.conf(5)) or run bearmail "
	    "setup", path);
	ok(rc == EX_CONFIG && c == NULL, "missing file: EX_CONFIG");
	is_str(e.msg, want, "missing file message");
	free(want);
	mkdir(path, 0700);
	rc = conf_load(path, &c, &e);
	is_int(rc, EX_CONFIG, "a directory is refused");
	rmdir(path);
	free(path);
}

/* ------------------------------------------------------------- endpoints */

static const char urlcfg[] =
    "defaults\n " CID " user u@example.com\n"
    "account ms\n tenant contoso.com\n"
    "account us\n authority https://login.microsoftonline.us//\n"
    "  tenant contoso.us\n"
    "account gen\n provider generic\n host smtp.example.com\n"
    "  token_url https://idp.example.com/oauth/token\n"
    "account g\n provider gmail\n";

static const struct {
	const char *account;
	char *(*fn)(const struct account *);
	const char *want;
} urls[] = {
	{ "ms", conf_token_url,
	  "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token" },
	{ "ms", conf_device_url,
	  "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/devicecode" },
	{ "ms", conf_auth_url,
	  "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/authorize" },
	{ "us", conf_token_url,
	  "https://login.microsoftonline.us/contoso.us/oauth2/v2.0/token" },
	{ "gen", conf_token_url, "https://idp.example.com/oauth/token" },
	{ "gen", conf_device_url, NULL },
	{ "g", conf_token_url, "https://oauth2.googleapis.com/token" },
	{ "g", conf_auth_url, "https://accounts.google.com/o/oauth2/v2/auth" },
	{ "g", conf_device_url, "https://oauth2.googleapis.com/device/code" },
};

static void
test_urls(void)
{
	struct config *c;
	struct bm_err e;
	size_t i;
	char *got;

	if (!ok(conf_parse(urlcfg, "u.conf", &c, &e) == 0, "url config"))
		return;
	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		got = urls[i].fn(conf_account(c, urls[i].account));
		is_str(got, urls[i].want, "url %zu (%s)", i, urls[i].account);
		free(got);
	}
	conf_free(c);
	ok(conf_mailname() != NULL && conf_mailname()[0] != '\0',
	    "mail name: %s", conf_mailname());
}

/* ----------------------------------------------------------- search path */

static const struct {
	const char *explicit_path, *env, *xdg, *home;
	int make_xdg, make_home;
	const char *want;  /* $T is the temp dir */
} paths[] = {
	{ "/x/explicit", "/x/env", "$T/xdg", "$T/home", 1, 1, "/x/explicit" },
	{ NULL, "/x/env", "$T/xdg", "$T/home", 1, 1, "/x/env" },
	{ NULL, "", "$T/xdg", "$T/home", 1, 1, "$T/xdg/bearmail/config" },
	{ NULL, NULL, "$T/xdg", "$T/home", 0, 1, "$T/home/.config/bearmail/config" },
	{ NULL, NULL, "relative", "$T/home", 1, 1,
	  "$T/home/.config/bearmail/config" },
	{ NULL, NULL, NULL, "$T/home", 0, 1, "$T/home/.config/bearmail/config" },
	{ NULL, NULL, "$T/xdg", "$T/home", 0, 0, SYSCONFDIR "/bearmail.conf" },
};

static char *
expand(const char *s)
{
	if (s == NULL)
		return NULL;
	if (strncmp(s, "$T", 2) == 0)
		return xasprintf("%s%s", tmpdir, s + 2);
	return xstrdup(s);
}

static void
put_env(const char *name, const char *v)
{
	char *x = expand(v);

	if (x != NULL)
		setenv(name, x, 1);
	else
		unsetenv(name);
	free(x);
}

static void
make_config(const char *dir, const char *sub, int make)
{
	char *d = xasprintf("%s/%s", dir, sub), *f = xasprintf("%s/config", d);

	if (make) {
		mkdir(d, 0700);
		write_file(f, "", 0600);
	} else {
		unlink(f);
	}
	free(d);
	free(f);
}

static void
test_paths(void)
{
	char *want, *got, *d;
	size_t i;

	d = xasprintf("%s/xdg", tmpdir); mkdir(d, 0700); free(d);
	d = xasprintf("%s/home", tmpdir); mkdir(d, 0700); free(d);
	d = xasprintf("%s/home/.config", tmpdir); mkdir(d, 0700); free(d);
	d = xasprintf("%s/xdg", tmpdir);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		put_env("BEARMAIL_CONFIG", paths[i].env);
		put_env("XDG_CONFIG_HOME", paths[i].xdg);
		put_env("HOME", paths[i].home);
		make_config(d, "bearmail", paths[i].make_xdg);
		want = xasprintf("%s/home/.config", tmpdir);
		make_config(want, "bearmail", paths[i].make_home);
		free(want);
		want = expand(paths[i].want);
		got = conf_find_path(paths[i].explicit_path);
		is_str(got, want, "search path %zu", i);
		free(want);
		free(got);
	}
	free(d);
}

static void
cleanup(void)
{
	const char *const rm[] = { "xdg/bearmail/config", "xdg/bearmail", "xdg",
	    "home/.config/bearmail/config", "home/.config/bearmail",
	    "home/.config", "home", NULL };
	char *p;
	size_t i;

	for (i = 0; rm[i] != NULL; i++) {
		p = xasprintf("%s/%s", tmpdir, rm[i]);
		if (unlink(p) != 0)
			rmdir(p);
		free(p);
	}
	rmdir(tmpdir);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL)
		die(1, "mkdtemp failed");
	test_fields();
	test_errors();
	test_examples();
	test_select();
	test_perms();
	test_urls();
	test_paths();
	cleanup();
	return done_testing();
}
