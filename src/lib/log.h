/*
 * log - one line per message to syslog (LOG_MAIL), stderr or a file:
 * message-id, account, from, to, relay, delay, size, status and the
 * server's reply.  Values are sanitised (no control characters) and no
 * token or secret is ever passed here.
 */
#ifndef BEARMAIL_LOG_H
#define BEARMAIL_LOG_H

#include "conf.h"

/* Choose the target from the account (NULL: syslog). Idempotent.  A log
 * file once refused (not a regular file, a link, ...) stays replaced by
 * syslog for the rest of the process. */
void log_setup(const struct account *a);

struct log_entry {
	const char *msgid;
	const char *account;
	const char *from;
	const char *to;       /* comma-separated */
	const char *relay;    /* host:port */
	double delay;         /* seconds since the message was received */
	long long size;
	const char *status;   /* sent | deferred | bounced | refused */
	const char *reply;    /* the server's words or our reason */
};
void log_delivery(const struct log_entry *le);

/* A free-form line at the given syslog priority. */
void log_line(int prio, const char *fmt, ...) BM_PRINTF(2, 3);

/* Copy s into a fresh string with control characters replaced by '?'. */
char *log_sanitize(const char *s);

#endif
