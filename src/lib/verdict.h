/*
 * verdict - the failure policy, in the spirit of Postfix's smtp_trouble.c.
 * The session code reports what happened: the stage it was at and the
 * server's reply (smtp.c), the identity platform's HTTP status and error
 * (oauth.c), or one of bearmail's own kinds of failure (net.c, tokens.c,
 * ...).  This module alone decides what that means -- the sysexits code,
 * whether a later try may succeed (the message waits in the queue), whether
 * the other side is throttling us, whether a person must sign in again,
 * whether a fresh token is worth one more try -- and which row of the
 * troubleshooting catalogue explains it, with the fix to show.  It also
 * records what one delivery attempt did to each recipient of an envelope,
 * for the submitter and the queue runner alike.
 *
 * The verdict travels in the error record (struct bm_err, util.h): the
 * functions below fill e->code, e->msg and e->v together.
 */
#ifndef BEARMAIL_VERDICT_H
#define BEARMAIL_VERDICT_H

#include <stddef.h>

#include "queue.h"
#include "smtp.h"
#include "util.h"

/* Where a failure happened.  Everything before STAGE_MAIL is the session
 * (no message is at stake yet); from STAGE_MAIL on, the transaction. */
enum verdict_stage {
	STAGE_LOCAL = 0,       /* before the network: input, config, files */
	STAGE_TOKEN,           /* getting an access token */
	STAGE_CONNECT,         /* DNS, TCP, the TLS handshake */
	STAGE_GREETING,
	STAGE_EHLO,
	STAGE_STARTTLS,
	STAGE_AUTH,
	STAGE_MAIL,            /* the transaction has started */
	STAGE_RCPT,
	STAGE_DATA,            /* the reply to DATA */
	STAGE_BODY,            /* sending the message */
	STAGE_DOT,             /* the reply after the final dot */
	STAGE_RSET,
	STAGE_QUIT
};

/* bearmail's own kinds of failure; each has a row in the catalogue. */
enum verdict_kind {
	VK_NONE = 0,
	VK_RESOLVE,            /* DNS does not know the host */
	VK_CONNECT,            /* nothing answers at host:port */
	VK_CERT,               /* the server's certificate does not verify */
	VK_NO_STARTTLS,        /* STARTTLS required and not offered */
	VK_NO_AUTH,            /* AUTH XOAUTH2 (OAUTHBEARER) not offered */
	VK_BAD_TOKEN,          /* the token is empty or holds a control char */
	VK_NO_TOKEN,           /* nothing stored: a login is needed */
	VK_LOGIN_ENDED,        /* an interactive sign-in did not complete */
	VK_IDP_UNREACHABLE,    /* the identity platform did not answer */
	VK_IDP_BUSY,           /* it answered: try again later */
	VK_IDP_LOGIN,          /* it wants a new sign-in (invalid_grant ...) */
	VK_IDP_NOT_JSON,       /* its answer is not the identity platform's */
	VK_IDP_REFUSED,        /* any other refusal */
	VK_TOO_BIG,            /* over the server's SIZE or max_size */
	VK_NO_SMTPUTF8,        /* a non-ASCII address, no SMTPUTF8 */
	VK_BUSY,               /* every connection slot of the account taken */
	VK_KEYRING_ITEM,       /* the keyring's item is not a token record */
	VK_NO_SECRET           /* keyring:NAME names no stored secret */
};

/* A row of the troubleshooting catalogue: what it matches, what it
 * means for delivery, and what to tell a person. */
struct trouble {
	/* match: one of these */
	long aadsts;           /* identity platform code */
	int smtp;              /* SMTP reply code (0: any) ... */
	const char *enh;       /* ... with this enhanced status code */
	const char *word;      /* server words in the reply text */
	enum verdict_kind kind;
	/* policy */
	int ex;                /* sysexits code (0: as the reply says) */
	unsigned flags;        /* TR_* */
	/* shown */
	const char *what;      /* "535 5.7.139", "AADSTS65001", ... */
	const char *cause;
	const char *fix;       /* may hold {user} and {account} */
};

#define TR_TEMP     0x01   /* a later try may succeed */
#define TR_THROTTLE 0x02   /* the other side asks us to slow down */
#define TR_LOGIN    0x04   /* a person must sign in again */
#define TR_SHOW     0x08   /* the fix is part of the error line */

/* ---------------------------------------------------------- verdicts */

/*
 * A reply the server sent at stage st: e->code, e->v (and the row) from
 * the reply; e->msg is "<host>: <what> (<code> <enh> <text>)" (host may be
 * NULL).  2xx is 0.  Returns e->code.
 *   4xx: temporary, EX_TEMPFAIL (432 4.3.2 and the like: throttled)
 *   5xx: by the enhanced code: 5.1.x EX_NOUSER, 5.7.x EX_NOPERM, 5.3.4
 *        and 5.6.x EX_DATAERR, 5.5.x EX_PROTOCOL, else EX_UNAVAILABLE;
 *        Exchange's SubmissionQuotaExceeded is temporary and throttled
 *        despite its 5xx
 *   at a session stage (greeting to AUTH) every failure is temporary:
 *        the message waits for an administrator or a login; 535 5.7.3 at
 *        AUTH also asks for one fresh token
 */
int verdict_reply(struct bm_err *e, enum verdict_stage st, int code,
    const char *enh, const char *text, const char *host, const char *what);

/* The same for a recipient's result, without a message: the sysexits
 * code, with *v filled. */
int verdict_of_reply(enum verdict_stage st, int code, const char *enh,
    const char *text, struct bm_verdict *v);

/*
 * No usable reply at stage st: the connection was lost, timed out, or the
 * reply could not be read (malformed, a code that changed between lines,
 * too long).  Always temporary: before the transaction the connection may
 * work later; once it has started -- above all after the final dot, when
 * the server may have the message -- the message is tried again (at least
 * once, never lost).  e->msg is kept; e->code becomes EX_TEMPFAIL; a row
 * already set (a certificate failure) stays.
 */
int verdict_lost(struct bm_err *e, enum verdict_stage st);

/* One of bearmail's own failures: e->code and e->v from the kind's row,
 * e->msg formatted, and ": <fix>" after it when the row says so (account
 * fills {account}; NULL leaves it).  Returns e->code. */
int verdict_fail(struct bm_err *e, enum verdict_kind k, const char *account,
    const char *fmt, ...) BM_PRINTF(4, 5);

/*
 * A refusal by the identity platform: HTTP status, the OAuth error
 * ("invalid_grant") and the AADSTS code (0: none) as far as the answer
 * could be read (error NULL: not Microsoft's JSON).  Login needed for the
 * rows that say so and for invalid_grant / interaction_required;
 * temporary for 5xx, 408, 429, temporarily_unavailable, server_error and
 * the transient AADSTS codes (throttled: 429, 90055); else EX_CONFIG.
 * e->msg: "<what> for account A failed: <error>: <description>: <fix>"
 * (or "... failed: HTTP <status> from <url>: <fix>").  Returns e->code.
 */
int verdict_oauth(struct bm_err *e, const char *what, const char *account,
    long status, const char *error, long aadsts, const char *description,
    const char *url);

/* The session failed before the transaction (no token, no connection,
 * AUTH refused): whatever the code, the message waits.  Returns e->code. */
int verdict_session(struct bm_err *e);

/* The first AADSTS code in text ("AADSTS70000: ..."), or 0. */
long verdict_aadsts_in(const char *text);

/* ---------------------------------------------------------- catalogue */

/* The row for an AADSTS code, an SMTP reply (its enhanced code, else
 * server words in its text), or a kind; NULL when the catalogue has
 * none. */
const struct trouble *verdict_row_aadsts(long code);
const struct trouble *verdict_row_reply(int code, const char *enh,
    const char *text);
const struct trouble *verdict_row_kind(enum verdict_kind k);

/* The row's fix with {user} and {account} filled in (NULL ones are left
 * as written; {account} is a keyring secret's name for VK_NO_SECRET).
 * xmalloc'd. */
char *verdict_fix(const struct trouble *t, const char *user,
    const char *account);

/* The whole catalogue, in the order of docs/troubleshooting.md. */
const struct trouble *verdict_table(size_t *n);

/* A short name for a sysexits code: "tempfail", "nouser", ... */
const char *verdict_exit_name(int code);

/* ---------------------------------------------------- one attempt */

/*
 * What one delivery attempt did to an envelope's recipients: each one the
 * attempt covered is marked sent, failed (for good) or left pending, with
 * its reply recorded in the envelope; the lists are for the log.
 */
struct attempt {
	struct buf sent, failed, later;   /* "<a>,<b>" */
	char *sent_reply;                 /* the first of each kind */
	char *failed_reply;
	char *later_reply;
	struct buf more_failed;           /* the other refusals' lines, each
	                                     once, "\n"-ended */
	unsigned char *newly_failed;      /* per envelope recipient */
	size_t nsent, nfailed, nlater;
	int fail_ex;                      /* the first refusal's exit code */
	int throttled;                    /* a deferral asks for a slower pace */
	int login_needed;
};

void attempt_init(struct attempt *at, const struct qenv *env);
void attempt_free(struct attempt *at);

/*
 * The transaction t ran for the envelope recipients map[0 .. t->nrcpts):
 * each gets the verdict of its own reply (the RCPT refusal, else the reply
 * after the data, else MAIL's), or, without a reply, the verdict in e
 * (why the transaction stopped).
 */
void attempt_txn(struct attempt *at, struct qenv *env,
    const struct smtp_txn *t, const size_t *map, const struct bm_err *e);

/* No transaction: every pending recipient gets e's verdict. */
void attempt_all(struct attempt *at, struct qenv *env, const struct bm_err *e);

/* Given up after lifetime seconds in the queue: every pending recipient
 * fails, with its last reply. */
void attempt_expire(struct attempt *at, struct qenv *env, long long lifetime);

#endif
