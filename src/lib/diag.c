/*
 * diag - the troubleshooting catalogue (see diag.h): Exchange Online SMTP
 * replies (RFC 5321 codes, RFC 3463 enhanced codes), Microsoft identity
 * platform AADSTS codes, and bearmail's own connection failures, each with
 * its likely cause and fix.  docs/troubleshooting.md is this table.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "diag.h"
#include "util.h"

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

static const struct diag table[] = {
	/* --- SMTP replies of Exchange Online --- */
	{ 0, 535, "5.7.139", NULL, "535 5.7.139",
	  "SMTP AUTH is disabled for the mailbox or for the whole "
	  "organization (the default for tenants created since 2020)",
	  "an Exchange administrator enables it for the mailbox: "
	  "Set-CASMailbox -Identity {user} -SmtpClientAuthenticationDisabled "
	  "$false (the mailbox setting overrides the organization's), or for "
	  "everyone: Set-TransportConfig -SmtpClientAuthenticationDisabled "
	  "$false; a Conditional Access policy that blocks legacy "
	  "authentication can also cause it" },
	{ 0, 535, "5.7.3", NULL, "535 5.7.3",
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
	{ 0, 0, NULL, "SendAsDenied", "554 5.2.252 SendAsDenied",
	  SENDAS_CAUSE, SENDAS_FIX },
	{ 0, 0, "5.7.60", NULL, "550 5.7.60", SENDAS_CAUSE, SENDAS_FIX },
	{ 0, 0, "5.7.57", NULL, "530 5.7.57",
	  "mail was sent before a successful AUTH: the server did not offer "
	  "AUTH, or this is not the submission port",
	  "use host smtp.office365.com, port 587, tls starttls for account "
	  "{account}, and make sure SMTP AUTH is enabled (see 535 5.7.139)" },
	{ 0, 432, "4.3.2", NULL, "432 4.3.2",
	  "more than 3 connections to the mailbox at once (Exchange "
	  "Online's limit per mailbox)",
	  "set max_connections 3 or less in account {account} and make sure "
	  "no other program uses the mailbox at the same time; queued mail "
	  "is retried" },
	{ 0, 0, NULL, "SubmissionQuotaExceeded",
	  "554 5.2.0 SubmissionQuotaExceeded",
	  "the mailbox sent to more than 10,000 recipients in 24 hours",
	  "wait: the limit is counted over a rolling 24 hours; spread bulk "
	  "mail over several mailboxes or use a bulk mail service" },
	{ 0, 0, "5.2.2", NULL, "554 5.2.2",
	  "the sending mailbox is full (Sent Items counts)",
	  "empty Sent Items and Deleted Items of {user}, or raise the "
	  "mailbox quota" },
	{ 0, 0, "5.1.8", NULL, "550 5.1.8",
	  "Microsoft blocked the mailbox from sending (suspected compromise "
	  "or spam)",
	  "secure the account, then an administrator releases it in the "
	  "Microsoft Defender portal (Restricted entities)" },
	{ 0, 0, "5.7.30", NULL, "550 5.7.30",
	  "a password (Basic authentication) was used; Exchange Online "
	  "accepts only OAuth2",
	  "bearmail never sends passwords: another program submits with "
	  "one; point it at bearmail's sendmail, or let it take a token from "
	  "`bearmail token {account}`" },
	{ 0, 504, "5.7.4", NULL, "504 5.7.4",
	  "AUTH before STARTTLS, or a mechanism the server does not offer",
	  "use tls starttls, port 587 and auth xoauth2 in account {account}" },
	/* --- bearmail's own connection and token failures --- */
	{ 0, 0, NULL, "does not offer STARTTLS", "server does not offer STARTTLS",
	  "the server did not offer STARTTLS: a wrong host or port, or "
	  "something in between (a firewall or an antivirus proxy) removes it",
	  "check host and port of account {account} (smtp.office365.com "
	  "587); bearmail never sends a token without TLS" },
	{ 0, 0, NULL, "does not offer AUTH", "server does not offer AUTH XOAUTH2",
	  "the server offers no OAuth2 authentication: not Exchange Online's "
	  "submission service, or SMTP AUTH is disabled for the organization",
	  "check host and port of account {account} (smtp.office365.com "
	  "587), then see 535 5.7.139" },
	{ 0, 0, NULL, "certificate verify failed", "certificate verify failed",
	  "the server's certificate is not valid for the host name or not "
	  "signed by a trusted authority (a TLS-intercepting proxy?)",
	  "check host of account {account}; install the missing CA in the "
	  "system store, or set ca_file only to a CA you trust" },
	{ 0, 0, NULL, "cannot resolve host", "cannot resolve host",
	  "DNS does not know the host name",
	  "check host of account {account} and the machine's DNS settings "
	  "(/etc/resolv.conf)" },
	{ 0, 0, NULL, "connect:", "connect: Connection refused / timed out",
	  "nothing answers at host:port: a wrong port, or a firewall blocks "
	  "outgoing connections to it (many hosting providers block SMTP "
	  "ports)",
	  "check host and port of account {account}, and that outgoing TCP "
	  "to port 587 is allowed" },
	{ 0, 0, NULL, "no token for account", "no token for account",
	  "no token has been stored for the account yet", LOGIN
	  " (or `bearmail token import {account}`)" },
	/* --- identity platform (AADSTS) --- */
	{ 70000, 0, NULL, NULL, "AADSTS70000",
	  "the refresh token is invalid, already used or expired", LOGIN },
	{ 70008, 0, NULL, NULL, "AADSTS70008",
	  "the refresh token or code has expired", LOGIN },
	{ 54005, 0, NULL, NULL, "AADSTS54005",
	  "the authorization code was already redeemed", LOGIN },
	{ 700082, 0, NULL, NULL, "AADSTS700082",
	  "the refresh token expired after 90 days without use", LOGIN },
	{ 50173, 0, NULL, NULL, "AADSTS50173",
	  "the grant was revoked (password changed, or sessions revoked by "
	  "an administrator)", LOGIN },
	{ 70043, 0, NULL, NULL, "AADSTS70043",
	  "a Conditional Access sign-in frequency policy wants a new sign-in",
	  LOGIN },
	{ 50076, 0, NULL, NULL, "AADSTS50076",
	  "multi-factor authentication is required", LOGIN
	  " and complete the MFA prompt" },
	{ 50079, 0, NULL, NULL, "AADSTS50079",
	  "the user must register for multi-factor authentication", LOGIN
	  " and register as the sign-in page asks" },
	{ 7000012, 0, NULL, NULL, "AADSTS7000012",
	  "the refresh token was issued by another tenant than the one "
	  "asked", "set tenant of account {account} to the tenant you "
	  "signed in to, then " LOGIN },
	{ 65001, 0, NULL, NULL, "AADSTS65001",
	  "nobody has consented to the application's permissions",
	  "an administrator grants consent (Microsoft Entra admin center > "
	  "App registrations > the app > API permissions > Grant admin "
	  "consent), then " LOGIN },
	{ 53003, 0, NULL, NULL, "AADSTS53003",
	  "a Conditional Access policy blocked the sign-in",
	  "an administrator finds the policy in the sign-in logs (Microsoft "
	  "Entra admin center > Sign-in logs) and excludes or adapts it" },
	{ 700016, 0, NULL, NULL, "AADSTS700016",
	  "the application (client_id) was not found in the tenant",
	  "check client_id of account {account} (the Application (client) "
	  "ID on the app registration's Overview page) and tenant (where the "
	  "app is registered, unless it is multi-tenant)" },
	{ 7000218, 0, NULL, NULL, "AADSTS7000218",
	  "the app registration does not allow public client flows, so the "
	  "identity platform wants a client secret",
	  "in the app registration: Authentication > Advanced settings > "
	  "Allow public client flows: Yes" },
	{ 7000215, 0, NULL, NULL, "AADSTS7000215",
	  "the client secret is wrong (often the secret's ID instead of its "
	  "value)", SECRET_FIX },
	{ 7000222, 0, NULL, NULL, "AADSTS7000222",
	  "the client secret has expired", SECRET_FIX },
	{ 700027, 0, NULL, NULL, "AADSTS700027",
	  "the client assertion's signature does not verify: the "
	  "certificate does not match the one registered",
	  "upload the certificate in client_certificate of account "
	  "{account} to the app registration (Certificates & secrets > "
	  "Certificates), or point client_certificate and client_key at the "
	  "registered one" },
	{ 700025, 0, NULL, NULL, "AADSTS700025",
	  "a public client sent a client secret",
	  "remove client_secret_file from account {account}, or use "
	  "oauth_flow client_credentials" },
	{ 50011, 0, NULL, NULL, "AADSTS50011",
	  "the redirect URI is not registered for the application",
	  "in the app registration: Authentication > Add a platform > Mobile "
	  "and desktop applications, redirect URI http://localhost" },
	{ 50148, 0, NULL, NULL, "AADSTS50148",
	  "the PKCE code_verifier did not match the sign-in's code_challenge",
	  "run `bearmail login {account}` again; if it repeats, report it as "
	  "a bug" },
	{ 50194, 0, NULL, NULL, "AADSTS50194",
	  "the application is single-tenant but the common endpoint was used",
	  "set tenant of account {account} to the organization's domain or "
	  "tenant ID" },
	{ 9002332, 0, NULL, NULL, "AADSTS9002332",
	  "the application is not configured for personal Microsoft "
	  "accounts (consumers)",
	  "use provider outlook with the organization's tenant, or register "
	  "the app for personal accounts too" },
	{ 70011, 0, NULL, NULL, "AADSTS70011",
	  "the scope is invalid (resources mixed, e.g. Graph and Outlook)",
	  "use scope https://outlook.office.com/SMTP.Send offline_access "
	  "(delegated) or https://outlook.office365.com/.default (app-only) "
	  "in account {account}" },
	{ 1002012, 0, NULL, NULL, "AADSTS1002012",
	  "client credentials need a scope ending in /.default",
	  "set scope https://outlook.office365.com/.default in account "
	  "{account}" },
	{ 90002, 0, NULL, NULL, "AADSTS90002",
	  "the tenant was not found",
	  "check tenant of account {account}: a domain of the organization, "
	  "its tenant ID, or organizations" },
	{ 50020, 0, NULL, NULL, "AADSTS50020",
	  "the user signed in with an account the tenant does not know (a "
	  "personal or guest account)",
	  "sign in with the mailbox's work account: " LOGIN },
	{ 90055, 0, NULL, NULL, "AADSTS90055",
	  "the identity platform is throttling requests", RETRY },
	{ 50196, 0, NULL, NULL, "AADSTS50196",
	  "the identity platform saw a loop of requests", RETRY },
	{ 90033, 0, NULL, NULL, "AADSTS90033",
	  "a transient error of the identity platform", RETRY },
};

const struct diag *
diag_table(size_t *n)
{
	*n = NELEM(table);
	return table;
}

const struct diag *
diag_aadsts(long code)
{
	size_t i;

	for (i = 0; code != 0 && i < NELEM(table); i++)
		if (table[i].aadsts == code)
			return &table[i];
	return NULL;
}

static const struct diag *
by_word(const char *text)
{
	size_t i;

	for (i = 0; text != NULL && i < NELEM(table); i++)
		if (table[i].word != NULL && strcasestr(text, table[i].word))
			return &table[i];
	return NULL;
}

const struct diag *
diag_smtp(int code, const char *enh, const char *text)
{
	const struct diag *d = by_word(text);
	size_t i;

	for (i = 0; d == NULL && enh != NULL && i < NELEM(table); i++)
		if (table[i].enh != NULL && strcmp(table[i].enh, enh) == 0 &&
		    (table[i].smtp == 0 || table[i].smtp == code))
			d = &table[i];
	return d;
}

/* The AADSTS code in msg, or 0. */
static long
aadsts_in(const char *msg)
{
	const char *p = strstr(msg, "AADSTS");
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

static int
is_code_char(char c)
{
	return isdigit((unsigned char)c) || c == '.';
}

/* Whether enh occurs in msg as a whole token. */
static int
has_enh(const char *msg, const char *enh)
{
	size_t n = strlen(enh);
	const char *p = msg;

	while ((p = strstr(p, enh)) != NULL) {
		if ((p == msg || !is_code_char(p[-1])) && !is_code_char(p[n]))
			return 1;
		p += n;
	}
	return 0;
}

const struct diag *
diag_find(const char *msg)
{
	const struct diag *d;
	size_t i;

	if (msg == NULL)
		return NULL;
	if ((d = diag_aadsts(aadsts_in(msg))) != NULL ||
	    (d = by_word(msg)) != NULL)
		return d;
	for (i = 0; i < NELEM(table); i++)
		if (table[i].enh != NULL && has_enh(msg, table[i].enh))
			return &table[i];
	return NULL;
}

char *
diag_fix(const struct diag *d, const char *user, const char *account)
{
	struct buf b = BUF_INIT;
	const char *p = d->fix;

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
