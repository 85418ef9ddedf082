/*
 * bsmtp - the SMTP dialogue of `sendmail -bs` on stdin/stdout: a small
 * RFC 5321 server with PIPELINING (RFC 2920), 8BITMIME (RFC 6152),
 * ENHANCEDSTATUSCODES (RFC 2034/3463) and SMTPUTF8 (RFC 6531).  It knows no
 * addresses and no delivery: the caller's ops check recipients and deliver.
 */
#ifndef BEARMAIL_BSMTP_H
#define BEARMAIL_BSMTP_H

#include <stddef.h>
#include <stdio.h>

#include "util.h"

/* Bits of the eightbit argument of deliver(). */
#define BSMTP_8BITMIME  1   /* MAIL FROM ... BODY=8BITMIME */
#define BSMTP_SMTPUTF8  2   /* MAIL FROM ... SMTPUTF8 */

/* The most recipients one transaction takes (then 452 4.5.3). */
#define BSMTP_MAX_RCPTS 1000

struct bsmtp_ops {
	/*
	 * Validate one RCPT (syntax, aliases): 0 to accept, else a sysexits
	 * code and e->msg (the reason, shown in the reply).  May be NULL:
	 * every syntactically valid recipient is accepted.
	 */
	int (*check_rcpt)(void *ctx, const char *rcpt, struct bm_err *e);
	/*
	 * Deliver one message: the envelope (sender "" for <>) and the DATA as
	 * received, dot-unstuffed, in data_fd (a private unlinked temp file,
	 * close-on-exec, positioned at 0; the bytes are the lines exactly as
	 * received, with their line endings, bare CR and bare LF included, to
	 * be made canonical by the callee; bsmtp closes it afterwards).
	 * eightbit: BSMTP_8BITMIME | BSMTP_SMTPUTF8 as declared by the client.
	 * 0 when delivered or durably queued, with note (note_len bytes,
	 * "" on entry) saying where it went when that is not delivered now
	 * ("queued as ID"; it becomes the 250 reply's text); else a sysexits
	 * code, e->msg.
	 */
	int (*deliver)(void *ctx, const char *sender, char **rcpts,
	    size_t nrcpts, int data_fd, int eightbit, char *note,
	    size_t note_len, struct bm_err *e);
};

/*
 * Run the dialogue until QUIT or EOF, greeting as hostname (NULL:
 * "localhost").  Commands may end in CR LF or LF and may be pipelined;
 * DATA ends only at CR LF "." CR LF, its start counting as after a CR LF
 * however the DATA line ended: LF "." LF and every other lookalike is
 * message text, and a dot is unstuffed only where a line starts.  `out` is
 * flushed after every reply.  Temporary files go to $TMPDIR (an absolute
 * path) or /tmp.  Returns 0 (QUIT), EX_PROTOCOL (EOF without QUIT, EOF
 * inside DATA - answered 421 -, or too many errors: 421), or EX_IOERR
 * (reading `in` or writing `out` failed).
 */
int bsmtp_run(FILE *in, FILE *out, const char *hostname,
    const struct bsmtp_ops *ops, void *ctx);

/*
 * The SMTP reply code and enhanced status code for a sysexits code
 * (static string, no text):
 *   0                                   "250 2.0.0"
 *   EX_TEMPFAIL, EX_IOERR, EX_OSERR,
 *   EX_CANTCREAT, EX_SOFTWARE, EX_OSFILE "451 4.3.0"
 *   EX_CONFIG                           "451 4.3.5"
 *   EX_NOUSER                           "550 5.1.1"
 *   EX_NOHOST                           "550 5.1.2"
 *   EX_USAGE (bad address)              "501 5.1.3"
 *   EX_NOPERM                           "550 5.7.1"
 *   EX_DATAERR                          "554 5.6.0"
 *   EX_PROTOCOL                         "554 5.5.0"
 *   anything else (EX_UNAVAILABLE ...)  "554 5.3.0"
 */
const char *bsmtp_reply_for(int code);

#endif
