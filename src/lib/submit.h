/*
 * submit - one message in: spooled, addressed, completed, and delivered
 * over SMTP with an OAuth2 token, or refused with a sysexits code.  The
 * submitter's main and the -bs dialogue both come through here.
 */
#ifndef BEARMAIL_SUBMIT_H
#define BEARMAIL_SUBMIT_H

#include <stdio.h>

#include "conf.h"
#include "util.h"

enum error_mode { ERRMODE_PRINT, ERRMODE_MAIL, ERRMODE_WRITE, ERRMODE_QUIET };

struct submit_req {
	int read_recipients;       /* -t */
	int ignore_dots;           /* -i / -oi */
	const char *from;          /* -f: NULL when not given, "" for <> */
	const char *fullname;      /* -F */
	enum error_mode error_mode;
	int delivery_set;          /* -od given (else: the account's delivery) */
	enum delivery_mode delivery;
	int body_8bit;             /* -B 8BITMIME */
	const char *notify;        /* -N */
	const char *ret;           /* -R */
	const char *envid;         /* -V */
	int verbose;               /* -v */
	char **words;              /* recipient words from argv */
	size_t nwords;
	double received;           /* when the message arrived (for delay=) */
};

/* What became of an accepted message. */
struct submit_result {
	char queued_as[32];        /* the queue id when (part of) it waits */
	int flush;                 /* the queue has work due: a queue run
	                              should start (the caller starts it) */
};

/* Deliver the message read from in_fd.  0 when it is delivered or durably
 * queued for every recipient (res says which); else a sysexits code, with
 * one line per other refusal already printed on stderr (unless quiet)
 * and the first in e. */
int submit_message(struct config *c, const struct submit_req *r, int in_fd,
    struct submit_result *res, struct bm_err *e);

/* The SMTP dialogue of `sendmail -bs` on in/out; *flush as in
 * submit_result, for all its messages. */
int submit_smtp_dialogue(struct config *c, const struct submit_req *r,
    FILE *in, FILE *out, int *flush);

/* `sendmail -bv`: say, for each recipient, where it would go. */
int submit_verify(struct config *c, const struct submit_req *r, FILE *out);

/* `newaliases`: check the aliases file of the default account. */
int submit_newaliases(struct config *c, struct bm_err *e);

#endif
