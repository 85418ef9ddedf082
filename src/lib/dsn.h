/*
 * dsn - delivery status notifications (bounces): RFC 3464 reports
 * (multipart/report, RFC 6522) built from a queue envelope, with the
 * original's header block as text/rfc822-headers, and their enqueueing.
 * RFC 3461 NOTIFY is honoured (NEVER, FAILURE, DELAY); a bounce is never
 * bounced and nothing is ever sent to the null sender.
 */
#ifndef BEARMAIL_DSN_H
#define BEARMAIL_DSN_H

#include <stddef.h>

#include "conf.h"
#include "queue.h"
#include "util.h"

/*
 * An RFC 3464 delivery status notification (multipart/report;
 * report-type=delivery-status) for env's FAILED recipients (or, with
 * warning, its PENDING ones: action "delayed"), leaving out recipients
 * whose NOTIFY excludes it: a human-readable part (which recipients, the
 * server's words), a message/delivery-status part (Reporting-MTA: dns;
 * reporting_mta, Arrival-Date, Original-Envelope-Id when known; per
 * recipient Final-Recipient: rfc822; ADDR, Action: failed|delayed,
 * Status: the reply's enhanced code when its class fits, else 5.0.0 /
 * 4.0.0 (5.4.7 for a recipient that failed with a temporary reply: the
 * message expired), Diagnostic-Code: smtp; REPLY when there was one),
 * and the original's header block as text/rfc822-headers.  Headers: From:
 * "Mail Delivery System" <account_addr>, To: <env->sender>, Subject:
 * "Undelivered Mail Returned to Sender" (warning: "Delayed Mail (still
 * being retried)"), Date (now), Message-ID, Auto-Submitted: auto-replied,
 * MIME-Version.  CRLF line endings throughout (orig_head's bare CR or LF
 * are made CRLF); the boundary occurs nowhere in the content.
 * Appends the whole message (header block and body) to out.
 * Returns 0, or EX_SOFTWARE (out unchanged) when no recipient is to be
 * reported.
 */
int dsn_build(const struct qenv *env, const char *account_addr,
    const char *orig_head, size_t orig_head_len, const char *reporting_mta,
    int warning, long long now, struct buf *out, struct bm_err *e);

/* How many of env's recipients a report would name (FAILED ones, or
 * PENDING ones with warning, that NOTIFY does not exclude). */
size_t dsn_count(const struct qenv *env, int warning);

/*
 * Enqueue a bounce (or, with warning, a delay notice) for env through the
 * account a: envelope sender = account_address(a), one recipient =
 * env->sender, is_bounce = 1, reporting MTA conf_mailname().  pick (one
 * flag per recipient; NULL: all) limits the report to those recipients
 * (the ones an attempt has just refused).  Nothing is done (0 returned)
 * for a bounce, for the null sender, or when no recipient is to be
 * reported.  Returns 0 only when the bounce is durably queued, else
 * queue_enqueue's error (EX_CANTCREAT, EX_IOERR) with e filled.
 */
int dsn_enqueue_bounce(struct queue *q, const struct account *a,
    const struct qenv *env, const unsigned char *pick, const char *orig_head,
    size_t orig_head_len, int warning, struct bm_err *e);

#endif
