/*
 * verdict - the failure policy (see verdict.h): one table, the catalogue
 * of Exchange Online SMTP replies (RFC 5321 codes, RFC 3463 enhanced
 * codes), Microsoft identity platform AADSTS codes and bearmail's own
 * failures, each with what it means for delivery and what a person should
 * do; the stage rules; and the recorder of one attempt's outcome per
 * recipient.  docs/troubleshooting.md shows this table (a unit test keeps
 * them in step).
 *
 * The rules, in one place:
 *   - a failure before the transaction (token, connection, TLS, EHLO,
 *     AUTH, RSET) never refuses a message: it waits in the queue until an
 *     administrator, a login or the network fixes it, or queue_lifetime
 *     ends;
 *   - a lost connection, a timeout or an unreadable reply is temporary at
 *     every stage; after the final dot that means the message may be
 *     delivered twice, never lost;
 *   - a 4xx reply is temporary for what it answered (one recipient for
 *     RCPT, the message for MAIL, DATA and the dot); a 5xx is final, but
 *     for the rows marked temporary (Exchange's quota reply);
 *   - 432 4.3.2 and the quota reply throttle: the retry waits longer.
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "verdict.h"

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

#define LOGIN "run `bearmail login {account}`"
#define SENDAS_CAUSE "the mailbox may not send as the sender (From or " \
	"envelope) address"
#define SENDAS_FIX "send as the mailbox's own address (from_policy " \
	"rewrite does that), or give the mailbox the Send As right on the " \
	"other address: Add-RecipientPermission -Identity OTHER-ADDRESS " \
	"-Trustee {user} -AccessRights SendAs"
#define SECRET_FIX "create a new client secret (app registration > " \
	"Certificates & secrets), copy its Value (not its Secret ID) into " \
	"the file named by client_secret_file of account {account}"
#define RETRY "nothing: bearmail tries again later; if it persists, see " \
	"https://status.cloud.microsoft"
#define PKCE_FIX "run `bearmail login {account}` again; if it repeats, " \
	"report it as a bug"

/* An SMTP reply row: code (0: any), enhanced code, words, exit code. */
#define REPLY(code, enh, word, ex, flags) \
	0, code, enh, word, VK_NONE, ex, flags
#define AADSTS(n, flags) n, 0, NULL, NULL, VK_NONE, EX_CONFIG, flags
#define KIND(k, ex, flags) 0, 0, NULL, NULL, k, ex, flags

static const struct trouble table[] = {
	/* --- SMTP replies of Exchange Online --- */
	{ REPLY(535, "5.7.139", NULL, EX_NOPERM, 0), "535 5.7.139",
	  "SMTP AUTH is disabled for the mailbox or for the whole "
	  "organization (the default for tenants created since 2020)",
	  "an Exchange administrator enables it for the mailbox: "
	  "Set-CASMailbox -Identity {user} -SmtpClientAuthenticationDisabled "
	  "$false (the mailbox setting overrides the organization's), or for "
	  "everyone: Set-TransportConfig -SmtpClientAuthenticationDisabled "
	  "$false; a Conditional Access policy that blocks legacy "
	  "authentication can also cause it" },
	{ REPLY(535, "5.7.3", NULL, EX_NOPERM, 0), "535 5.7.3",
	  "the server refused the token: it was issued for another audience "
	  "or scope (it must be https://outlook.office.com with SMTP.Send, "
	  "or SMTP.SendAsApp for app-only), for another user than user, or "
	  "(app-only) the application has no rights on the mailbox",
	  "run `bearmail doctor {account}` and compare the token's aud, "
	  "scp/roles and upn with the account; delegated: fix scope or user, "
	  "then " LOGIN "; app-only: New-ServicePrincipal -AppId CLIENT-ID "
	  "-ObjectId ENTERPRISE-APP-OBJECT-ID, then Add-MailboxPermission "
	  "-Identity {user} -User SERVICE-PRINCIPAL-ID -AccessRights "
	  "FullAccess" },
	{ REPLY(0, NULL, "SendAsDenied", EX_NOPERM, 0),
	  "554 5.2.252 SendAsDenied", SENDAS_CAUSE, SENDAS_FIX },
	{ REPLY(0, "5.7.60", NULL, EX_NOPERM, 0), "550 5.7.60", SENDAS_CAUSE,
	  SENDAS_FIX },
	{ REPLY(0, "5.7.57", NULL, EX_NOPERM, 0), "530 5.7.57",
	  "mail was sent before a successful AUTH: the server did not offer "
	  "AUTH, or this is not the submission port",
	  "use host smtp.office365.com, port 587, tls starttls for account "
	  "{account}, and make sure SMTP AUTH is enabled (see 535 5.7.139)" },
	{ REPLY(432, "4.3.2", NULL, EX_TEMPFAIL, TR_TEMP | TR_THROTTLE),
	  "432 4.3.2",
	  "more than 3 connections to the mailbox at once (Exchange "
	  "Online's limit per mailbox)",
	  "set max_connections 3 or less in account {account} and make sure "
	  "no other program uses the mailbox at the same time; queued mail "
	  "is retried" },
	{ REPLY(0, NULL, "Concurrent connections limit", EX_TEMPFAIL,
	  TR_TEMP | TR_THROTTLE), "Concurrent connections limit exceeded",
	  "more than 3 connections to the mailbox at once, reported without "
	  "the usual 432 4.3.2",
	  "set max_connections 3 or less in account {account}; queued mail "
	  "is retried" },
	{ REPLY(0, NULL, "SubmissionQuotaExceeded", EX_TEMPFAIL,
	  TR_TEMP | TR_THROTTLE), "554 5.2.0 SubmissionQuotaExceeded",
	  "the mailbox sent to more than 10,000 recipients in 24 hours",
	  "wait: the limit is counted over a rolling 24 hours (bearmail "
	  "retries, slowly); spread bulk mail over several mailboxes or use "
	  "a bulk mail service" },
	{ REPLY(0, "5.2.2", NULL, 0, 0), "554 5.2.2",
	  "the sending mailbox is full (Sent Items counts)",
	  "empty Sent Items and Deleted Items of {user}, or raise the "
	  "mailbox quota" },
	{ REPLY(0, "5.1.8", NULL, 0, 0), "550 5.1.8",
	  "Microsoft blocked the mailbox from sending (suspected compromise "
	  "or spam)",
	  "secure the account, then an administrator releases it in the "
	  "Microsoft Defender portal (Restricted entities)" },
	{ REPLY(0, "5.7.30", NULL, EX_NOPERM, 0), "550 5.7.30",
	  "a password (Basic authentication) was used; Exchange Online "
	  "accepts only OAuth2",
	  "bearmail never sends passwords: another program submits with "
	  "one; point it at bearmail's sendmail, or let it take a token from "
	  "`bearmail token {account}`" },
	{ REPLY(504, "5.7.4", NULL, EX_NOPERM, 0), "504 5.7.4",
	  "AUTH before STARTTLS, or a mechanism the server does not offer",
	  "use tls starttls, port 587 and auth xoauth2 in account {account}" },
	/* --- bearmail's own connection, message and token failures --- */
	{ KIND(VK_NO_STARTTLS, EX_TEMPFAIL, TR_TEMP),
	  "server does not offer STARTTLS",
	  "the server did not offer STARTTLS: a wrong host or port, or "
	  "something in between (a firewall or an antivirus proxy) removes it",
	  "check host and port of account {account} (smtp.office365.com "
	  "587); bearmail never sends a token without TLS" },
	{ KIND(VK_NO_AUTH, EX_UNAVAILABLE, 0),
	  "server does not offer AUTH XOAUTH2",
	  "the server offers no OAuth2 authentication: not Exchange Online's "
	  "submission service, or SMTP AUTH is disabled for the organization",
	  "check host and port of account {account} (smtp.office365.com "
	  "587), then see 535 5.7.139" },
	{ KIND(VK_CERT, EX_TEMPFAIL, TR_TEMP), "certificate verify failed",
	  "the server's certificate is not valid for the host name or not "
	  "signed by a trusted authority (a TLS-intercepting proxy?)",
	  "check host of account {account}; install the missing CA in the "
	  "system store, or set ca_file only to a CA you trust" },
	{ KIND(VK_RESOLVE, EX_TEMPFAIL, TR_TEMP), "cannot resolve host",
	  "DNS does not know the host name",
	  "check host of account {account} and the machine's DNS settings "
	  "(/etc/resolv.conf)" },
	{ KIND(VK_CONNECT, EX_TEMPFAIL, TR_TEMP),
	  "connect: Connection refused / timed out",
	  "nothing answers at host:port: a wrong port, or a firewall blocks "
	  "outgoing connections to it (many hosting providers block SMTP "
	  "ports)",
	  "check host and port of account {account}, and that outgoing TCP "
	  "to port 587 is allowed" },
	{ KIND(VK_BUSY, EX_TEMPFAIL, TR_TEMP), "connections are busy",
	  "other deliveries use every connection the account allows "
	  "(max_connections)",
	  "nothing: the message waits in the queue and goes out with the "
	  "next queue run" },
	{ KIND(VK_TOO_BIG, EX_DATAERR, 0), "message is too big",
	  "the message is larger than the server accepts (its SIZE) or than "
	  "max_size of the account allows",
	  "send a smaller message (large files as links), or raise the "
	  "limit: max_size of account {account}, and in Exchange Online "
	  "Set-Mailbox -Identity {user} -MaxSendSize (up to 150 MB)" },
	{ KIND(VK_NO_SMTPUTF8, EX_DATAERR, 0), "address is not ASCII",
	  "an address holds non-ASCII characters and the server does not "
	  "offer SMTPUTF8",
	  "use an ASCII form of the address (the domain in its xn-- form)" },
	{ KIND(VK_NO_TOKEN, EX_CONFIG, TR_LOGIN | TR_SHOW),
	  "no token for account",
	  "no token has been stored for the account yet, or it was removed",
	  LOGIN " (or `bearmail token import {account}`)" },
	{ KIND(VK_BAD_TOKEN, EX_CONFIG, TR_LOGIN | TR_SHOW),
	  "the access token is empty or holds a control character",
	  "the stored token is damaged", LOGIN },
	{ KIND(VK_LOGIN_ENDED, EX_CONFIG, TR_LOGIN | TR_SHOW),
	  "sign-in did not complete",
	  "the sign-in was declined, took too long, or its code is no longer "
	  "known to the identity platform", LOGIN " again" },
	{ KIND(VK_KEYRING_ITEM, EX_CONFIG, TR_LOGIN | TR_SHOW),
	  "the keyring item is not a token record",
	  "something else stored an item under bearmail's name in the "
	  "keyring",
	  "run `bearmail logout {account}`, then " LOGIN },
	{ KIND(VK_NO_SECRET, EX_CONFIG, TR_SHOW),
	  "no such secret in the keyring",
	  "client_secret_file names a keyring secret that was never stored",
	  "store it with `bearmail secret set {account}` (it reads the "
	  "secret on stdin), or `secret-tool store --label='bearmail secret "
	  "{account}' service bearmail name {account}`" },
	{ KIND(VK_IDP_UNREACHABLE, EX_TEMPFAIL, TR_TEMP),
	  "identity platform unreachable",
	  "the identity platform did not answer: no network, DNS, a proxy, "
	  "or a wrong authority",
	  "nothing, if the network is down: bearmail tries again later; "
	  "else check authority of account {account} and the machine's "
	  "network" },
	{ KIND(VK_IDP_BUSY, EX_TEMPFAIL, TR_TEMP | TR_SHOW),
	  "identity platform busy",
	  "the identity platform answered with a temporary error (5xx, "
	  "temporarily_unavailable)", RETRY },
	{ KIND(VK_IDP_LOGIN, EX_CONFIG, TR_LOGIN | TR_SHOW),
	  "invalid_grant / interaction_required",
	  "the stored refresh token can no longer be used", LOGIN },
	{ KIND(VK_IDP_NOT_JSON, EX_CONFIG, TR_SHOW),
	  "HTTP error without an identity platform answer",
	  "the answer did not come from the identity platform (a wrong "
	  "authority or token_url, or a proxy's page)",
	  "check authority and token_url of account {account}" },
	{ KIND(VK_IDP_REFUSED, EX_CONFIG, TR_SHOW),
	  "identity platform refused",
	  "the identity platform refused the request for a reason not in "
	  "this catalogue",
	  "check tenant, client_id and the credentials (client_secret_file "
	  "or client_certificate) of account {account}, or " LOGIN },
	/* --- identity platform (AADSTS) --- */
	{ AADSTS(70000, TR_LOGIN | TR_SHOW), "AADSTS70000",
	  "the refresh token is invalid, already used or expired", LOGIN },
	{ AADSTS(70008, TR_LOGIN | TR_SHOW), "AADSTS70008",
	  "the refresh token or code has expired", LOGIN },
	{ AADSTS(54005, TR_LOGIN | TR_SHOW), "AADSTS54005",
	  "the authorization code was already redeemed", LOGIN },
	{ AADSTS(700082, TR_LOGIN | TR_SHOW), "AADSTS700082",
	  "the refresh token expired after 90 days without use", LOGIN },
	{ AADSTS(50173, TR_LOGIN | TR_SHOW), "AADSTS50173",
	  "the grant was revoked (password changed, or sessions revoked by "
	  "an administrator)", LOGIN },
	{ AADSTS(70043, TR_LOGIN | TR_SHOW), "AADSTS70043",
	  "a Conditional Access sign-in frequency policy wants a new sign-in",
	  LOGIN },
	{ AADSTS(50076, TR_LOGIN | TR_SHOW), "AADSTS50076",
	  "multi-factor authentication is required", LOGIN
	  " and complete the MFA prompt" },
	{ AADSTS(50079, TR_LOGIN | TR_SHOW), "AADSTS50079",
	  "the user must register for multi-factor authentication", LOGIN
	  " and register as the sign-in page asks" },
	{ AADSTS(7000012, TR_LOGIN | TR_SHOW), "AADSTS7000012",
	  "the refresh token was issued by another tenant than the one "
	  "asked", "set tenant of account {account} to the tenant you "
	  "signed in to, then " LOGIN },
	{ AADSTS(65001, TR_LOGIN | TR_SHOW), "AADSTS65001",
	  "nobody has consented to the application's permissions",
	  "an administrator grants consent (Microsoft Entra admin center > "
	  "App registrations > the app > API permissions > Grant admin "
	  "consent), then " LOGIN },
	{ AADSTS(53003, TR_SHOW), "AADSTS53003",
	  "a Conditional Access policy blocked the sign-in",
	  "an administrator finds the policy in the sign-in logs (Microsoft "
	  "Entra admin center > Sign-in logs) and excludes or adapts it" },
	{ AADSTS(700016, TR_SHOW), "AADSTS700016",
	  "the application (client_id) was not found in the tenant",
	  "check client_id of account {account} (the Application (client) "
	  "ID on the app registration's Overview page) and tenant (where the "
	  "app is registered, unless it is multi-tenant)" },
	{ AADSTS(7000218, TR_SHOW), "AADSTS7000218",
	  "the app registration does not allow public client flows, so the "
	  "identity platform wants a client secret",
	  "in the app registration: Authentication > Advanced settings > "
	  "Allow public client flows: Yes" },
	{ AADSTS(7000215, TR_SHOW), "AADSTS7000215",
	  "the client secret is wrong (often the secret's ID instead of its "
	  "value)", SECRET_FIX },
	{ AADSTS(7000222, TR_SHOW), "AADSTS7000222",
	  "the client secret has expired", SECRET_FIX },
	{ AADSTS(700027, TR_SHOW), "AADSTS700027",
	  "the client assertion's signature does not verify: the "
	  "certificate does not match the one registered",
	  "upload the certificate in client_certificate of account "
	  "{account} to the app registration (Certificates & secrets > "
	  "Certificates), or point client_certificate and client_key at the "
	  "registered pair" },
	{ AADSTS(700024, TR_SHOW), "AADSTS700024",
	  "the client assertion is not valid at this time",
	  "check the system clock (keep NTP running)" },
	{ AADSTS(700023, TR_SHOW), "AADSTS700023",
	  "the client assertion names the wrong audience or issuer",
	  "check tenant, authority and client_id of account {account}" },
	{ AADSTS(700025, TR_SHOW), "AADSTS700025",
	  "the app registration is a public client, so it must not send a "
	  "secret or an assertion",
	  "delegated sign-in: remove client_secret_file from account "
	  "{account}; app-only (oauth_flow client_credentials): in the app "
	  "registration set Allow public client flows to No" },
	{ AADSTS(50011, TR_SHOW), "AADSTS50011",
	  "the redirect URI is not registered for the application",
	  "in the app registration: Authentication > Add a platform > Mobile "
	  "and desktop applications, redirect URI http://127.0.0.1 (bearmail "
	  "signs in through http://127.0.0.1:PORT/; the port is not "
	  "compared)" },
	{ AADSTS(50148, TR_LOGIN | TR_SHOW), "AADSTS50148",
	  "the PKCE code_verifier did not match the sign-in's code_challenge",
	  PKCE_FIX },
	{ AADSTS(501481, TR_LOGIN | TR_SHOW), "AADSTS501481",
	  "the PKCE code_verifier did not match the sign-in's code_challenge",
	  PKCE_FIX },
	{ AADSTS(700022, TR_SHOW), "AADSTS700022",
	  "the scope names more than one resource in one token request",
	  "use scopes of one resource in account {account}: "
	  "https://outlook.office.com/SMTP.Send offline_access" },
	{ AADSTS(50194, TR_SHOW), "AADSTS50194",
	  "the application is single-tenant but the common endpoint was used",
	  "set tenant of account {account} to the organization's domain or "
	  "tenant ID" },
	{ AADSTS(9002332, TR_SHOW), "AADSTS9002332",
	  "the application is not configured for personal Microsoft "
	  "accounts (consumers)",
	  "use provider outlook with the organization's tenant, or register "
	  "the app for personal accounts too" },
	{ AADSTS(70011, TR_SHOW), "AADSTS70011",
	  "the scope is invalid (resources mixed, e.g. Graph and Outlook)",
	  "use scope https://outlook.office.com/SMTP.Send offline_access "
	  "(delegated) or https://outlook.office365.com/.default (app-only) "
	  "in account {account}" },
	{ AADSTS(1002012, TR_SHOW), "AADSTS1002012",
	  "client credentials need a scope ending in /.default",
	  "set scope https://outlook.office365.com/.default in account "
	  "{account}" },
	{ AADSTS(90002, TR_SHOW), "AADSTS90002",
	  "the tenant was not found",
	  "check tenant of account {account}: a domain of the organization, "
	  "its tenant ID, or organizations" },
	{ AADSTS(50020, TR_LOGIN | TR_SHOW), "AADSTS50020",
	  "the user signed in with an account the tenant does not know (a "
	  "personal or guest account)",
	  "sign in with the mailbox's work account: " LOGIN },
	{ AADSTS(90055, TR_TEMP | TR_THROTTLE | TR_SHOW), "AADSTS90055",
	  "the identity platform is throttling requests", RETRY },
	{ AADSTS(50196, TR_TEMP | TR_THROTTLE | TR_SHOW), "AADSTS50196",
	  "the identity platform saw a loop of requests", RETRY },
	{ AADSTS(90033, TR_TEMP | TR_SHOW), "AADSTS90033",
	  "a transient error of the identity platform", RETRY },
};

const struct trouble *
verdict_table(size_t *n)
{
	*n = NELEM(table);
	return table;
}

/* ------------------------------------------------------------ lookups */

const struct trouble *
verdict_row_aadsts(long code)
{
	size_t i;

	for (i = 0; code != 0 && i < NELEM(table); i++)
		if (table[i].aadsts == code)
			return &table[i];
	return NULL;
}

const struct trouble *
verdict_row_kind(enum verdict_kind k)
{
	size_t i;

	for (i = 0; k != VK_NONE && i < NELEM(table); i++)
		if (table[i].kind == k)
			return &table[i];
	return NULL;
}

const struct trouble *
verdict_row_reply(int code, const char *enh, const char *text)
{
	size_t i;

	for (i = 0; enh != NULL && *enh && i < NELEM(table); i++)
		if (table[i].enh != NULL && strcmp(table[i].enh, enh) == 0 &&
		    (table[i].smtp == 0 || table[i].smtp == code))
			return &table[i];
	for (i = 0; text != NULL && i < NELEM(table); i++)
		if (table[i].word != NULL && strcasestr(text, table[i].word))
			return &table[i];
	return NULL;
}

long
verdict_aadsts_in(const char *text)
{
	const char *p = text ? strstr(text, "AADSTS") : NULL;
	long long v = 0;
	char num[16];
	size_t n;

	if (p == NULL)
		return 0;
	p += 6;
	n = strspn(p, "0123456789");
	if (n == 0 || n >= sizeof(num))
		return 0;
	memcpy(num, p, n);
	num[n] = '\0';
	return str_to_ll(num, 1, 999999999, &v) == 0 ? (long)v : 0;
}

char *
verdict_fix(const struct trouble *t, const char *user, const char *account)
{
	struct buf b = BUF_INIT;
	const char *p = t->fix;

	while (*p != '\0') {
		if (user != NULL && strncmp(p, "{user}", 6) == 0) {
			buf_adds(&b, user);
			p += 6;
		} else if (account != NULL && strncmp(p, "{account}", 9) == 0) {
			buf_adds(&b, account);
			p += 9;
		} else
			buf_addc(&b, *p++);
	}
	return buf_steal(&b);
}

/* ----------------------------------------------------- exit codes */

/* RFC 3463 "class.subject.detail": the class, with subject and detail
 * (-1 when absent). */
static int
enh_class(const char *enh, int *subject, int *detail)
{
	int cls;

	*subject = *detail = -1;
	if (enh == NULL || enh[0] < '2' || enh[0] > '5' || enh[1] != '.')
		return 0;
	cls = enh[0] - '0';
	enh += 2;
	if (!isdigit((unsigned char)*enh))
		return 0;
	*subject = 0;
	while (isdigit((unsigned char)*enh))
		*subject = *subject * 10 + (*enh++ - '0');
	if (*enh++ != '.')
		return cls;
	*detail = 0;
	while (isdigit((unsigned char)*enh))
		*detail = *detail * 10 + (*enh++ - '0');
	return cls;
}

static int
ex_of_enh(int subject, int detail)
{
	switch (subject) {
	case 1:
		return EX_NOUSER;
	case 7:
		return EX_NOPERM;
	case 3:
		return detail == 4 ? EX_DATAERR : EX_UNAVAILABLE;
	case 6:
		return EX_DATAERR;
	case 5:
		return EX_PROTOCOL;
	default:
		return EX_UNAVAILABLE;
	}
}

/* A 4xx or 5xx reply as sysexits: the enhanced code wins over the basic
 * one. */
static int
ex_of_reply(int code, const char *enh)
{
	int subject, detail;

	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (code < 500 || code > 599)
		return EX_PROTOCOL;
	if (enh_class(enh, &subject, &detail) == 5)
		return ex_of_enh(subject, detail);
	switch (code) {
	case 552:
		return EX_DATAERR;
	case 553:
		return EX_NOUSER;
	case 500: case 501: case 502: case 503: case 504:
		return EX_PROTOCOL;
	default:
		return EX_UNAVAILABLE;
	}
}

const char *
verdict_exit_name(int code)
{
	switch (code) {
	case 0: return "ok";
	case EX_USAGE: return "usage";
	case EX_DATAERR: return "dataerr";
	case EX_NOINPUT: return "noinput";
	case EX_NOUSER: return "nouser";
	case EX_NOHOST: return "nohost";
	case EX_UNAVAILABLE: return "unavailable";
	case EX_SOFTWARE: return "software";
	case EX_OSERR: return "oserr";
	case EX_OSFILE: return "osfile";
	case EX_CANTCREAT: return "cantcreat";
	case EX_IOERR: return "ioerr";
	case EX_TEMPFAIL: return "tempfail";
	case EX_PROTOCOL: return "protocol";
	case EX_NOPERM: return "noperm";
	case EX_CONFIG: return "config";
	default: return "unknown";
	}
}

/* --------------------------------------------------------- verdicts */

static int
is_session(enum verdict_stage st)
{
	return st < STAGE_MAIL || st == STAGE_RSET || st == STAGE_QUIT;
}

static void
apply_row(struct bm_verdict *v, const struct trouble *t)
{
	v->row = t;
	if (t == NULL)
		return;
	v->temporary |= (t->flags & TR_TEMP) != 0;
	v->throttled |= (t->flags & TR_THROTTLE) != 0;
	v->login_needed |= (t->flags & TR_LOGIN) != 0;
}

int
verdict_of_reply(enum verdict_stage st, int code, const char *enh,
    const char *text, struct bm_verdict *v)
{
	const struct trouble *t;
	int ex;

	memset(v, 0, sizeof(*v));
	v->stage = (unsigned char)st;
	if (code >= 200 && code < 300)
		return 0;
	t = verdict_row_reply(code, enh, text);
	ex = t && t->ex ? t->ex : ex_of_reply(code, enh);
	if (st == STAGE_AUTH && code == 535)
		ex = EX_NOPERM;
	/* 4xx; and a 1xx or 3xx where a verdict was due (out of step) */
	v->temporary = code < 500;
	apply_row(v, t);
	/* a 432 is Exchange's connection limit, whatever its text says */
	v->throttled |= code == 432;
	v->fresh_token = st == STAGE_AUTH && code == 535 && enh != NULL &&
	    strcmp(enh, "5.7.3") == 0;
	if (is_session(st))
		v->temporary = 1;
	else if (v->temporary)
		ex = EX_TEMPFAIL;
	return ex;
}

/* "550 5.1.1 User unknown" */
static void
reply_line(struct buf *b, int code, const char *enh, const char *text)
{
	buf_addf(b, "%d", code);
	if (enh != NULL && *enh)
		buf_addf(b, " %s", enh);
	if (text != NULL && *text)
		buf_addf(b, " %s", text);
}

int
verdict_reply(struct bm_err *e, enum verdict_stage st, int code,
    const char *enh, const char *text, const char *host, const char *what)
{
	struct bm_verdict v;
	struct buf b = BUF_INIT;
	int ex = verdict_of_reply(st, code, enh, text, &v);

	if (e == NULL)
		return ex;
	if (host != NULL)
		buf_addf(&b, "%s: ", host);
	buf_addf(&b, "%s (", what);
	reply_line(&b, code, enh, text);
	buf_addc(&b, ')');
	err_set(e, ex, "%s", b.data);
	e->v = v;
	buf_free(&b, 0);
	return ex;
}

int
verdict_lost(struct bm_err *e, enum verdict_stage st)
{
	if (e == NULL)
		return EX_TEMPFAIL;
	e->code = EX_TEMPFAIL;
	e->v.temporary = 1;
	e->v.fresh_token = 0;
	e->v.stage = (unsigned char)st;
	return e->code;
}

int
verdict_session(struct bm_err *e)
{
	if (e == NULL)
		return 0;
	e->v.temporary = 1;
	return e->code;
}

/* Append ": <fix>" to e's message when the row shows its fix. */
static void
add_fix(struct bm_err *e, const struct trouble *t, const char *account)
{
	char *fix, *msg;

	if (t == NULL || !(t->flags & TR_SHOW) ||
	    (account == NULL && strstr(t->fix, "{account}") != NULL))
		return;
	fix = verdict_fix(t, NULL, account);
	msg = xasprintf("%s: %s", e->msg, fix);
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
	free(fix);
	free(msg);
}

int
verdict_fail(struct bm_err *e, enum verdict_kind k, const char *account,
    const char *fmt, ...)
{
	const struct trouble *t = verdict_row_kind(k);
	int ex = t ? t->ex : EX_SOFTWARE;
	va_list ap;
	char *msg;

	if (e == NULL)
		return ex;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	err_set(e, ex, "%s", msg);
	free(msg);
	apply_row(&e->v, t);
	add_fix(e, t, account);
	return ex;
}

static int
is_error(const char *error, const char *name)
{
	return error != NULL && strcmp(error, name) == 0;
}

/* The row for an identity platform refusal without a catalogued code. */
static const struct trouble *
oauth_generic(long status, const char *error)
{
	if (is_error(error, "temporarily_unavailable") ||
	    is_error(error, "server_error"))
		return verdict_row_kind(VK_IDP_BUSY);
	if (is_error(error, "invalid_grant") ||
	    is_error(error, "interaction_required"))
		return verdict_row_kind(VK_IDP_LOGIN);
	if (status >= 500 || status == 429 || status == 408)
		return verdict_row_kind(VK_IDP_BUSY);
	if (error == NULL)
		return verdict_row_kind(VK_IDP_NOT_JSON);
	return verdict_row_kind(VK_IDP_REFUSED);
}

int
verdict_oauth(struct bm_err *e, const char *what, const char *account,
    long status, const char *error, long aadsts, const char *description,
    const char *url)
{
	const struct trouble *t = verdict_row_aadsts(aadsts);
	struct buf b = BUF_INIT;
	size_t n;

	if (t == NULL)
		t = oauth_generic(status, error);
	buf_addf(&b, "%s for account %s failed: ", what, account);
	if (error == NULL)
		buf_addf(&b, "HTTP %ld%s%s", status, url ? " from " : "",
		    url ? url : "");
	else {
		buf_adds(&b, error);
		n = description ? strlen(description) : 0;
		if (n > 0 && description[n - 1] == '.')
			n--;        /* "...: fix" follows */
		if (n > 0)
			buf_addf(&b, ": %.*s", (int)n, description);
	}
	err_set(e, t->flags & TR_TEMP ? EX_TEMPFAIL : t->ex, "%s", b.data);
	buf_free(&b, 0);
	if (e == NULL)
		return t->flags & TR_TEMP ? EX_TEMPFAIL : t->ex;
	e->v.stage = STAGE_TOKEN;
	apply_row(&e->v, t);
	e->v.throttled |= status == 429;
	add_fix(e, t, account);
	return e->code;
}

/* ------------------------------------------------------ one attempt */

void
attempt_init(struct attempt *at, const struct qenv *env)
{
	memset(at, 0, sizeof(*at));
	at->newly_failed = xcalloc(env->nrcpts + 1, 1);
}

void
attempt_free(struct attempt *at)
{
	buf_free(&at->sent, 0);
	buf_free(&at->failed, 0);
	buf_free(&at->later, 0);
	free(at->sent_reply);
	free(at->failed_reply);
	free(at->later_reply);
	buf_free(&at->more_failed, 0);
	free(at->newly_failed);
	memset(at, 0, sizeof(*at));
}

static void
add_addr(struct buf *b, const char *addr)
{
	buf_addf(b, "%s<%s>", b->len ? "," : "", addr);
}

/* The recipient's reply as the envelope keeps it (and bounces quote it):
 * "550 5.1.1 User unknown", or why there was none. */
static void
set_reply(struct qrcpt *r, int code, const char *enh, const char *text)
{
	struct buf b = BUF_INIT;

	free(r->reply);
	r->code = code;
	snprintf(r->enh, sizeof(r->enh), "%s", enh ? enh : "");
	if (code > 0)
		reply_line(&b, code, r->enh, text);
	else
		buf_adds(&b, text && *text ? text : "no reply");
	r->reply = buf_steal(&b);
}

/* Whether the "\n"-ended lines of b hold line. */
static int
has_line(const struct buf *b, const char *line)
{
	size_t n = strlen(line);
	const char *p = b->data;

	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');

		if ((size_t)(nl - p) == n && memcmp(p, line, n) == 0)
			return 1;
		p = nl + 1;
	}
	return 0;
}

/* One recipient's outcome: why is the line for a person. */
static void
record(struct attempt *at, struct qrcpt *r, size_t idx, int ex,
    const struct bm_verdict *v, const char *why)
{
	if (ex == 0) {
		r->state = QR_SENT;
		at->nsent++;
		add_addr(&at->sent, r->addr);
		if (at->sent_reply == NULL)
			at->sent_reply = xstrdup(r->reply);
		return;
	}
	if (v->temporary) {
		at->nlater++;
		at->throttled |= v->throttled;
		at->login_needed |= v->login_needed;
		add_addr(&at->later, r->addr);
		if (at->later_reply == NULL)
			at->later_reply = xstrdup(why);
		return;
	}
	r->state = QR_FAILED;
	at->newly_failed[idx] = 1;
	at->nfailed++;
	add_addr(&at->failed, r->addr);
	if (at->failed_reply == NULL) {
		at->failed_reply = xstrdup(why);
		at->fail_ex = ex;
	} else if (strcmp(why, at->failed_reply) != 0 &&
	    !has_line(&at->more_failed, why)) {
		buf_adds(&at->more_failed, why);
		buf_addc(&at->more_failed, '\n');
	}
}

/* A recipient of the transaction: its own reply, else e's verdict. */
static void
record_rcpt(struct attempt *at, struct qrcpt *r, size_t idx,
    const struct smtp_rcpt *sr, const struct bm_err *e)
{
	struct bm_verdict v;
	char *why;
	int ex;

	if (sr->code == 0) {
		set_reply(r, 0, "", e->msg);
		v = e->v;
		ex = e->code ? e->code : EX_TEMPFAIL;
		v.temporary |= e->code == 0;
		record(at, r, idx, ex, &v, r->reply);
		return;
	}
	set_reply(r, sr->code, sr->enh, sr->text);
	ex = verdict_of_reply((enum verdict_stage)sr->stage, sr->code,
	    sr->enh, sr->text, &v);
	/* an RCPT refusal is this recipient's; any other is the message's,
	 * and e says so with the stage */
	why = sr->stage == STAGE_RCPT || e->msg[0] == '\0' ?
	    xasprintf("recipient %s refused (%s)", r->addr, r->reply) :
	    xstrdup(e->msg);
	record(at, r, idx, ex, &v, why);
	free(why);
}

void
attempt_txn(struct attempt *at, struct qenv *env, const struct smtp_txn *t,
    const size_t *map, const struct bm_err *e)
{
	size_t j;

	for (j = 0; j < t->nrcpts; j++)
		record_rcpt(at, &env->rcpts[map[j]], map[j], &t->rcpts[j], e);
}

void
attempt_all(struct attempt *at, struct qenv *env, const struct bm_err *e)
{
	struct bm_verdict v = e->v;
	size_t i;

	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].state != QR_PENDING)
			continue;
		set_reply(&env->rcpts[i], 0, "", e->msg);
		record(at, &env->rcpts[i], i, e->code ? e->code : EX_TEMPFAIL,
		    &v, e->msg);
	}
}

void
attempt_expire(struct attempt *at, struct qenv *env, long long lifetime)
{
	struct bm_verdict v;
	size_t i;

	memset(&v, 0, sizeof(v));
	for (i = 0; i < env->nrcpts; i++) {
		struct qrcpt *q = &env->rcpts[i];
		char *why;

		if (q->state != QR_PENDING)
			continue;
		why = xasprintf("message expired after %lld days in the "
		    "queue: %s", lifetime / 86400, q->reply ? q->reply :
		    env->last_error ? env->last_error : "never delivered");
		free(q->reply);
		q->reply = why;
		record(at, q, i, EX_UNAVAILABLE, &v, why);
	}
}
