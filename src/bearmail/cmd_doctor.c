/*
 * cmd_doctor - `bearmail doctor [ACCOUNT]`: a checklist of everything
 * delivery needs, one line each ("ok", "FAIL", "skip"): the configuration
 * file, the token store, the CA store, DNS, the TCP connection, STARTTLS
 * (RFC 3207), the server's certificate, the access token (and, when it is
 * a JWT, its audience, scopes or roles, user, application and expiry) and
 * AUTH with it (RFC 4954; then RSET and QUIT: no mail is ever sent).
 * Each failure prints its likely cause and fix: the catalogue row the
 * failure policy found for it (verdict.h).
 * Exit status: 0, or the sysexits code of the first failure.
 */
#include "config.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "commands.h"
#include "conf.h"
#include "jwtinfo.h"
#include "oauth.h"
#include "smtp.h"
#include "store.h"
#include "tokens.h"
#include "verdict.h"

#define DOCTOR_TIMEOUT 30

struct doctor {
	const struct account *a;
	struct smtp_opts o;
	int first;           /* sysexits code of the first failure */
	struct smtp *s;      /* the session for AUTH, once TLS is up */
	char *token;         /* the access token, wiped at the end */
};

static void
say(const char *tag, const char *fmt, va_list ap)
{
	printf("%-5s ", tag);
	vprintf(fmt, ap);
	putchar('\n');
}

static void BM_PRINTF(2, 3)
ok_(struct doctor *d, const char *fmt, ...)
{
	va_list ap;

	(void)d;
	va_start(ap, fmt);
	say("ok", fmt, ap);
	va_end(ap);
}

static void BM_PRINTF(2, 3)
skip(struct doctor *d, const char *fmt, ...)
{
	va_list ap;

	(void)d;
	va_start(ap, fmt);
	say("skip", fmt, ap);
	va_end(ap);
}

static void BM_PRINTF(2, 3)
info(struct doctor *d, const char *fmt, ...)
{
	va_list ap;

	(void)d;
	va_start(ap, fmt);
	say("--", fmt, ap);
	va_end(ap);
}

/* A failure: the line, then the catalogue's cause and fix when known. */
static void BM_PRINTF(4, 5)
fail(struct doctor *d, int code, const struct trouble *g, const char *fmt,
    ...)
{
	va_list ap;
	char *fix;

	va_start(ap, fmt);
	say("FAIL", fmt, ap);
	va_end(ap);
	if (d->first == 0)
		d->first = code ? code : EX_SOFTWARE;
	if (g == NULL)
		return;
	fix = verdict_fix(g, d->a->user, d->a->name);
	printf("      cause: %s\n      fix:   %s\n", g->cause, fix);
	free(fix);
}

/* ------------------------------------------------------------ files */

static void
check_config(struct doctor *d, const struct config *c)
{
	struct stat st;

	if (stat(c->path, &st) != 0) {
		ok_(d, "configuration %s", c->path);
		return;
	}
	ok_(d, "configuration %s (mode %04o, owner uid %ld)", c->path,
	    (unsigned)(st.st_mode & 07777), (long)st.st_uid);
}

static void
check_store(struct doctor *d)
{
	struct token_rec t = { 0 };
	struct bm_err e = { 0 };
	struct store s;
	struct stat st;
	int rc;

	store_open(d->a, &s);
	rc = store_load(&s, &t, &e);
	if (rc == EX_NOINPUT && d->a->oauth_flow == FLOW_CLIENT_CREDENTIALS)
		ok_(d, "token store %s %s: empty (app-only: a token is fetched "
		    "when needed)", store_name(&s), store_where(&s));
	else if (rc == EX_NOINPUT)
		fail(d, EX_CONFIG, verdict_row_kind(VK_NO_TOKEN),
		    "token store %s %s: no token for account %s",
		    store_name(&s), store_where(&s), d->a->name);
	else if (rc != 0)
		fail(d, rc, e.v.row, "token store %s: %s",
		    store_name(&s), e.msg);
	else if (s.kind == STORE_FILE && stat(s.path, &st) == 0)
		ok_(d, "token store file %s (mode %04o)", s.path,
		    (unsigned)(st.st_mode & 07777));
	else
		ok_(d, "token store %s %s", store_name(&s), store_where(&s));
	token_rec_clear(&t);
	store_close(&s);
}

static void
check_ca(struct doctor *d)
{
	const char *file = getenv(X509_get_default_cert_file_env());
	const char *dir = X509_get_default_cert_dir();

	if (d->a->ca_file != NULL) {
		if (access(d->a->ca_file, R_OK) == 0)
			ok_(d, "CA file %s readable", d->a->ca_file);
		else
			fail(d, EX_CONFIG, NULL, "CA file %s is not readable: "
			    "fix ca_file of account %s", d->a->ca_file,
			    d->a->name);
		return;
	}
	if (file == NULL || *file == '\0')
		file = X509_get_default_cert_file();
	if (access(file, R_OK) == 0)
		ok_(d, "CA: the system store (%s)", file);
	else if (access(dir, R_OK) == 0)
		ok_(d, "CA: the system store (%s)", dir);
	else
		fail(d, EX_CONFIG, NULL, "CA: no system certificate store "
		    "(%s, %s): install ca-certificates, or set ca_file", file,
		    dir);
}

/* ---------------------------------------------------------- network */

static int
check_dns(struct doctor *d)
{
	struct addrinfo hints, *res = NULL, *r;
	char addr[NI_MAXHOST] = "?", port[16];
	int rc, n = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", d->o.port);
	if ((rc = getaddrinfo(d->o.host, port, &hints, &res)) != 0) {
		fail(d, EX_TEMPFAIL, verdict_row_kind(VK_RESOLVE),
		    "DNS: cannot resolve host %s: %s", d->o.host,
		    gai_strerror(rc));
		return -1;
	}
	for (r = res; r != NULL; r = r->ai_next)
		n++;
	getnameinfo(res->ai_addr, res->ai_addrlen, addr, sizeof(addr), NULL,
	    0, NI_NUMERICHOST);
	ok_(d, "DNS: %s is %s%s", d->o.host, addr, n > 1 ? " (and more)" :
	    "");
	freeaddrinfo(res);
	return 0;
}

/* Connect in plaintext and read the EHLO answer: is STARTTLS offered? */
static void
check_starttls(struct doctor *d)
{
	struct smtp_opts plain = d->o;
	struct bm_err e = { 0 };
	struct smtp *s = NULL;
	int rc;

	plain.tls = TLS_OFF;
	if ((rc = smtp_open(&s, &plain, &e)) != 0) {
		fail(d, rc, e.v.row, "connect: %s", e.msg);
		return;
	}
	ok_(d, "connect %s:%d", d->o.host, d->o.port);
	if (smtp_has_ext(s, "STARTTLS"))
		ok_(d, "STARTTLS offered");
	else
		fail(d, EX_TEMPFAIL, verdict_row_kind(VK_NO_STARTTLS),
		    "%s: server does not offer STARTTLS", d->o.host);
	smtp_close(s);
}

/* The session AUTH will use: TLS up, certificate checked. */
static void
check_tls(struct doctor *d)
{
	struct bm_err e = { 0 };
	int rc;

	if ((rc = smtp_open(&d->s, &d->o, &e)) != 0) {
		fail(d, rc, e.v.row, "%s", e.msg);
		return;
	}
	if (d->o.tls == TLS_OFF)
		info(d, "connect %s:%d without TLS (tls off: loopback only)",
		    d->o.host, d->o.port);
	else
		ok_(d, "TLS: certificate valid for %s", d->o.host);
}

static void
check_network(struct doctor *d)
{
	int first = d->first;

	if (check_dns(d) != 0)
		return;
	if (d->o.tls == TLS_STARTTLS)
		check_starttls(d);
	if (d->first == first)
		check_tls(d);
}

/* ------------------------------------------------------------ token */

static int
is_outlook(const struct account *a)
{
	return a->provider != NULL && strncmp(a->provider, "outlook", 7) == 0;
}

static void
check_user(struct doctor *d, const struct jwtinfo *j)
{
	if (j->user == NULL)
		info(d, "token names no user (app-only): AUTH as %s",
		    d->a->user);
	else if (d->a->user != NULL && strcasecmp(j->user, d->a->user) == 0)
		ok_(d, "token user %s is the configured user", j->user);
	else
		fail(d, EX_CONFIG, NULL, "token user %s is not user %s of "
		    "account %s: set user %s, or run `bearmail login %s` and "
		    "sign in as %s", j->user, d->a->user, d->a->name, j->user,
		    d->a->name, d->a->user);
}

static void
check_claims(struct doctor *d, const struct jwtinfo *j)
{
	long long left = j->exp - (long long)time(NULL);

	if (jwtinfo_aud_is_exchange(j))
		ok_(d, "token audience %s", j->aud);
	else
		fail(d, EX_CONFIG, verdict_row_reply(535, "5.7.3", NULL),
		    "token audience %s is not Exchange Online (scope of "
		    "account %s?)", j->aud ? j->aud : "(none)", d->a->name);
	if (jwtinfo_has_permission(j, "SMTP.Send") ||
	    jwtinfo_has_permission(j, "SMTP.SendAsApp"))
		ok_(d, "token permissions: %s", j->scp ? j->scp : j->roles);
	else
		fail(d, EX_CONFIG, verdict_row_reply(535, "5.7.3", NULL), "token "
		    "has neither SMTP.Send nor SMTP.SendAsApp (scp: %s; "
		    "roles: %s): add the API permission Office 365 Exchange "
		    "Online > SMTP.Send", j->scp ? j->scp : "none",
		    j->roles ? j->roles : "none");
	check_user(d, j);
	if (j->appid != NULL && d->a->client_id != NULL &&
	    strcasecmp(j->appid, d->a->client_id) != 0)
		fail(d, EX_CONFIG, NULL, "token application %s is not "
		    "client_id %s", j->appid, d->a->client_id);
	info(d, "token tenant %s, application %s", j->tid ? j->tid : "?",
	    j->appid ? j->appid : "?");
	if (j->exp == 0 || left > 0)
		ok_(d, "token valid for %lld min", left > 0 ? left / 60 : 0);
	else
		fail(d, EX_CONFIG, NULL, "token expired");
}

static void
check_token(struct doctor *d)
{
	struct bm_err e = { 0 };
	struct jwtinfo j;
	int rc;

	if ((rc = tokens_get(d->a, &d->token, &e)) != 0) {
		fail(d, rc, e.v.row, "access token: %s", e.msg);
		return;
	}
	ok_(d, "access token obtained (%s store)", tokens_store_name(d->a));
	if (jwtinfo_decode(d->token, &j) != 0)
		info(d, "the access token is opaque (not a JWT): its claims "
		    "cannot be shown");
	else if (is_outlook(d->a))
		check_claims(d, &j);
	else
		info(d, "token audience %s, user %s", j.aud ? j.aud : "?",
		    j.user ? j.user : "?");
	jwtinfo_free(&j);
}

/* ------------------------------------------------------------- AUTH */

static const char *
mech_name(enum auth_mech m)
{
	return m == AUTH_OAUTHBEARER ? "OAUTHBEARER" : "XOAUTH2";
}

static void
auth_failed(struct doctor *d, int rc, const struct bm_err *e)
{
	fail(d, rc, e->v.row, "AUTH %s as %s refused: %s",
	    mech_name(d->a->auth), d->a->user, e->msg);
}

static void
check_auth(struct doctor *d)
{
	struct bm_err e = { 0 };
	int rc;

	if (d->s == NULL || d->token == NULL) {
		skip(d, "AUTH %s (needs %s)", mech_name(d->a->auth),
		    d->token ? "a connection" : "a token");
		return;
	}
	if ((rc = smtp_auth(d->s, d->a->auth, d->a->user, d->token,
	    &e)) != 0)
		auth_failed(d, rc, &e);
	else {
		ok_(d, "AUTH %s as %s accepted", mech_name(d->a->auth),
		    d->a->user);
		(void)smtp_rset(d->s, &e);
	}
}

/* ------------------------------------------------------------ command */

static int
doctor_usage(void)
{
	warnx_("usage: bearmail doctor [ACCOUNT]");
	return EX_USAGE;
}

static void
doctor_init(struct doctor *d, const struct account *a)
{
	memset(d, 0, sizeof(*d));
	d->a = a;
	d->o.host = a->host;
	d->o.port = a->port;
	d->o.tls = a->tls;
	d->o.ca_file = a->ca_file;
	d->o.timeout = a->timeout > 0 ? a->timeout : DOCTOR_TIMEOUT;
	d->o.helo_name = conf_mailname();
}

int
cmd_doctor(int argc, char **argv, struct config *c)
{
	struct doctor d;
	struct account *a;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
		return doctor_usage();
	a = argc == 2 ? conf_account(c, argv[1]) : conf_default_account(c);
	if (a == NULL) {
		warnx_("no account %s in %s", argc == 2 ? argv[1] : "at all",
		    c->path);
		return EX_CONFIG;
	}
	doctor_init(&d, a);
	printf("bearmail doctor: account %s (%s), %s:%d\n", a->name,
	    a->user ? a->user : "no user", a->host, a->port);
	check_config(&d, c);
	check_store(&d);
	check_ca(&d);
	check_network(&d);
	check_token(&d);
	check_auth(&d);
	smtp_close(d.s);
	wipe_free(d.token);
	printf("%s\n", d.first ? "some checks failed" : "all checks passed");
	fflush(stdout);
	return d.first;
}
