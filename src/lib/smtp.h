/*
 * smtp - the SMTP submission client: RFC 5321, 3207 STARTTLS, 4954 AUTH
 * with 7628 OAUTHBEARER and XOAUTH2, 2920 PIPELINING, 1870 SIZE,
 * 6152 8BITMIME, 6531 SMTPUTF8, 3461 DSN, 2034/3463 enhanced status codes.
 *
 * Functions returning int return 0 or a sysexits code, with e filled and
 * its verdict given by verdict.h: a reply the server sent is judged by
 * verdict_reply() at the stage it answered; a lost connection, a timeout
 * (one deadline bounds a whole reply) or an unreadable reply is
 * verdict_lost() at that stage.  Every reply line is scrubbed of the AUTH
 * response and the token before it is kept, shown or logged.
 */
#ifndef BEARMAIL_SMTP_H
#define BEARMAIL_SMTP_H

#include <stdio.h>

#include "conf.h"   /* enum tls_mode, enum auth_mech */

struct smtp_opts {
	const char *host;
	int port;
	enum tls_mode tls;        /* TLS_STARTTLS (required: refuse if not offered,
	                             send nothing else), TLS_SMTPS (implicit TLS),
	                             TLS_OFF (plain; the caller only allows it for
	                             loopback hosts) */
	const char *ca_file;      /* NULL: system store */
	int timeout;              /* seconds; 0: RFC 5321 4.5.3.2 defaults
	                             (greeting 5 min, MAIL 5, RCPT 5, DATA 2,
	                             data block 3, final dot 10 minutes; connect
	                             30 s) */
	const char *helo_name;    /* the name for EHLO; NULL: "localhost" */
	FILE *verbose;            /* non-NULL: print the dialogue there, "<<< " for
	                             server lines and ">>> " for ours, with AUTH
	                             lines and any base64 challenge/response after
	                             AUTH shown as "AUTH XOAUTH2 [redacted]" */
};

struct smtp_reply {
	int code;                 /* 250, 451, ...; 0 when none (connection lost) */
	char enh[16];             /* "5.7.3" when the server gave an enhanced code, else "" */
	char *text;               /* all lines' text joined by a space, without code/enh
	                             prefixes (control characters replaced by '?'),
	                             never NULL after a reply */
};

struct smtp;                  /* opaque session */

/*
 * Connect, read the greeting, EHLO (HELO fallback only when tls is
 * TLS_OFF), STARTTLS (+ discard buffered bytes, re-EHLO).  Returns 0 with
 * *out set, or a sysexits code with e filled: "<host>: <what> (<server's
 * reply>)".  A server that does not offer STARTTLS when it is required is
 * EX_TEMPFAIL ("<host>: server does not offer STARTTLS"), like every other
 * TLS failure: the queue retries.  Every failure here is a session
 * failure: e->v.temporary.
 */
int smtp_open(struct smtp **out, const struct smtp_opts *o, struct bm_err *e);

/* EHLO keyword advertised (case-insensitive); its parameter string via
 * smtp_ext_param ("SIZE" -> "36700160"), NULL when absent or no param.
 * The legacy form "AUTH=MECH" counts as AUTH. */
int smtp_has_ext(const struct smtp *s, const char *keyword);
const char *smtp_ext_param(const struct smtp *s, const char *keyword);
long long smtp_max_size(const struct smtp *s);   /* SIZE param; 0: none */

/*
 * AUTH with an OAuth2 bearer token: XOAUTH2 (base64 of
 * "user=U\x01auth=Bearer T\x01\x01") or OAUTHBEARER (RFC 7628:
 * "n,a=U,\x01host=H\x01port=P\x01auth=Bearer T\x01\x01").  Initial response
 * on the AUTH line when the line stays within 512 octets, else "AUTH MECH"
 * then the response after the 334.  A 334 error challenge after sending the
 * token is answered (XOAUTH2: an empty line; OAUTHBEARER: %x01, as RFC 7628
 * 3.2.3 says) and the final reply read.  Returns 0 on 235.  Refuses without
 * sending anything when the mechanism is not advertised: EX_PROTOCOL when
 * the server offers no AUTH at all, EX_UNAVAILABLE when it offers other
 * mechanisms ("<host>: server does not offer AUTH XOAUTH2 ...").
 * 535 -> EX_NOPERM "<host>: authentication failed (535 5.7.3 ...)", and
 * for 5.7.3 e->v.fresh_token; other replies by verdict_reply().  A user or
 * token holding control characters is EX_CONFIG.  The token is never printed (verbose shows
 * [redacted]) and every copy of it is wiped.
 */
int smtp_auth(struct smtp *s, enum auth_mech mech, const char *user,
    const char *token, struct bm_err *e);

/* The last reply read (for error messages and logs); code 0 before any. */
const struct smtp_reply *smtp_last_reply(const struct smtp *s);

struct smtp_rcpt {
	const char *addr;          /* in */
	const char *notify;        /* in: DSN NOTIFY value or NULL */
	int code;                  /* out: RCPT reply code, or DATA result for
	                              accepted recipients after DATA (see below) */
	char enh[16];              /* out */
	char *text;                /* out: xmalloc'd reply text (caller frees via smtp_txn_clear) */
	int stage;                 /* out: the enum verdict_stage the reply
	                              answered (STAGE_RCPT, STAGE_MAIL,
	                              STAGE_DATA, STAGE_DOT), or where the
	                              transaction stopped when code is 0 */
};

struct smtp_txn {
	const char *sender;        /* "" for the null sender <> */
	struct smtp_rcpt *rcpts;
	size_t nrcpts;
	int eightbit;              /* BODY=8BITMIME when the server offers it */
	int smtputf8;              /* SMTPUTF8 when needed (also implied by a
	                              non-ASCII address); refuse (EX_DATAERR) when
	                              needed and not offered */
	const char *dsn_ret;       /* "FULL"/"HDRS" or NULL; sent only if DSN offered */
	const char *dsn_envid;     /* xtext-encoded by us when sent */
	/* the message: canonical CRLF text; the client dot-stuffs */
	const char *head;          /* header block incl. the blank line */
	size_t head_len;
	int body_fd;               /* -1: no body */
	long long body_off;
	long long body_len;        /* < 0: up to the end of the file */
	/* out */
	struct smtp_reply mail;    /* MAIL FROM reply */
	struct smtp_reply data;    /* final reply after the dot (or the DATA 354 failure) */
	size_t accepted;           /* recipients accepted at RCPT time */
};

/*
 * One transaction: SIZE checked first (message bigger than the server's SIZE
 * -> EX_DATAERR "message is N bytes, the server accepts at most M", nothing
 * sent); MAIL FROM:<s> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8] [RET= ENVID=];
 * RCPT TO:<r> [NOTIFY=] for each; DATA; the body with dot-stuffing; ".".
 * With PIPELINING, MAIL/RCPT.../DATA are sent in one write (in groups of
 * 100 commands for long recipient lists) and the replies read in order.
 * If no recipient is accepted, RSET instead of (or after) DATA.
 * Every recipient gets its own result in rcpts[i].code/enh/text/stage:
 * the RCPT reply when it was refused (the MAIL reply when MAIL was
 * refused), else the final data reply; code 0 when the connection was lost
 * first, or when nothing was sent (e then says why).
 * Returns 0 when the data was accepted (250) for the accepted recipients
 * (check rcpts[] for refused ones); otherwise a sysexits code with
 * e->msg = "<what failed> (<code> <enh> <text>)": "sender <a> refused
 * (...)", "recipient bob@x refused (550 5.1.1 User unknown)", "all 3
 * recipients refused, first bob@x (...)" (EX_TEMPFAIL when any refusal was
 * temporary), "DATA refused (...)", "message refused (554 5.6.0 ...)".
 * Connection lost mid-way, or a reply that cannot be read (also after the
 * final dot) -> EX_TEMPFAIL; a positive reply out of step (250 to DATA)
 * -> EX_TEMPFAIL, nothing more sent; a short body file -> EX_IOERR.
 * Any byte CR or LF in sender/recipient, an empty recipient list, or a
 * malformed NOTIFY/RET value -> EX_USAGE, nothing sent.
 * The session stays usable for another smtp_send after smtp_rset() when the
 * connection is alive.  The out fields are overwritten without being
 * freed: call smtp_txn_clear() before reusing t.
 */
int smtp_send(struct smtp *s, struct smtp_txn *t, struct bm_err *e);
void smtp_txn_clear(struct smtp_txn *t);  /* free the out fields */

/* Whether the connection can carry another command (not lost, not
 * closed by a 421, not out of step). */
int smtp_alive(const struct smtp *s);

/* RSET; 0 on 250, else a sysexits code (EX_TEMPFAIL when the connection
 * is gone). */
int smtp_rset(struct smtp *s, struct bm_err *e);
/* QUIT (best effort) and free. NULL is fine. */
void smtp_close(struct smtp *s);

/* --- exposed for unit tests --- */

/* Parse one reply line "250-SIZE 123" -> code 250, cont 1, enh (if any),
 * text. Returns 0, or -1 when malformed (code outside 200-599, no
 * separator, garbage). */
int smtp_parse_line(const char *line, int *code, int *cont, char enh[16],
    const char **text);

/*
 * A session without a connection whose extensions come from the EHLO
 * reply lines in reply ("250-name\r\n250-SIZE 1\r\n250 PIPELINING\r\n");
 * for tests of smtp_has_ext/smtp_ext_param/smtp_max_size.  NULL when the
 * reply is malformed or not 250.  Free with smtp_close().
 */
struct smtp *smtp_offline(const char *reply);

/* SASL initial responses, base64-encoded (xmalloc'd; wipe_free them). */
char *smtp_xoauth2_blob(const char *user, const char *token);
char *smtp_oauthbearer_blob(const char *user, const char *host, int port,
    const char *token);

/* RFC 3461 xtext encoding of s (xmalloc'd). */
char *smtp_xtext(const char *s);

/*
 * Streaming dot-stuffer (RFC 5321 4.5.2) for canonical CRLF text: feed
 * chunks of any size; a '.' at the start of a line is doubled, also when
 * the line starts in a later chunk.  smtp_dotstuff_end appends CRLF when
 * the text did not end with one, then ".\r\n".
 */
struct smtp_dotstuff {
	int bol;                   /* at the start of a line */
	int crlf;                  /* the text so far ends with CRLF */
	int seen;                  /* any byte seen */
	char last;
};
void smtp_dotstuff_init(struct smtp_dotstuff *d);
void smtp_dotstuff(struct smtp_dotstuff *d, const char *p, size_t n,
    struct buf *out);
void smtp_dotstuff_end(struct smtp_dotstuff *d, struct buf *out);

#endif
