/*
 * jwtinfo - read the claims of a JWT access token (RFC 7519) for display
 * and diagnosis: audience, scopes/roles, user, tenant, application,
 * expiry.  The signature is NOT verified: these claims are advice for a
 * person, never a basis for trust.  Microsoft 365 access tokens are JWTs;
 * Outlook.com (consumer) tokens are opaque and give -1.
 */
#ifndef BEARMAIL_JWTINFO_H
#define BEARMAIL_JWTINFO_H

struct jwtinfo {
	char *aud;        /* audience (the first one when it is an array) */
	char *scp;        /* delegated scopes, space-separated, or NULL */
	char *roles;      /* application roles joined by spaces, or NULL */
	char *user;       /* upn, else unique_name, else preferred_username */
	char *tid;        /* tenant id */
	char *appid;      /* appid, else azp */
	long long exp;    /* unix time; 0 when absent */
};

/*
 * Decode the payload of token (header.payload.signature, base64url) into
 * j (zeroed first).  Returns 0, or -1 when token is not a JWT whose
 * payload is a JSON object (j is then all NULL/0).  Claims of the wrong
 * type are left NULL/0.  Free with jwtinfo_free.
 */
int jwtinfo_decode(const char *token, struct jwtinfo *j);
void jwtinfo_free(struct jwtinfo *j);

/* Whether name is one of the space-separated words of scp or roles. */
int jwtinfo_has_permission(const struct jwtinfo *j, const char *name);

/*
 * Whether the audience is Exchange Online: https://outlook.office.com,
 * https://outlook.office365.com (with or without a trailing slash), the
 * sovereign clouds' outlook.office365.us and partner.outlook.cn, or
 * Exchange's application id 00000002-0000-0ff1-ce00-000000000000.
 */
int jwtinfo_aud_is_exchange(const struct jwtinfo *j);

#endif
