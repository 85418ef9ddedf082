/*
 * qrun - the queue runner: delivers what is due from the durable queue
 * (queue.h) over authenticated sessions (deliver.h), records each
 * recipient's result, retries with backoff, bounces (dsn.h) what failed
 * for good or expired, and enforces max_connections and rate across
 * processes; plus the Postfix-style listing and the administrator's verbs.
 */
#ifndef BEARMAIL_QRUN_H
#define BEARMAIL_QRUN_H

#include <stdio.h>

#include "conf.h"
#include "util.h"

/*
 * Deliver what is due (everything not held when force, e.g. `queue flush
 * --force` or `retry`) from the queues of all accounts (or just the one
 * named account).  Quiet (no output, 0) when nothing is due.  Per account:
 * up to max_connections connections in parallel (forked workers, each with
 * a slot from queue_slot_take; when none is free the rest waits for the
 * next run), many messages per connection (RSET between), each message
 * locked with queue_lock (skipped when another flush has it), at most
 * `rate` messages a minute per account across processes (a flock'd
 * timestamps file, locks/ACCOUNT.rate; a flush that reaches the rate
 * leaves the rest queued, untouched, for a later run).  Recipients that
 * accepted are never sent to again; each recipient's result is recorded in
 * the envelope (the failure policy, verdict.h, says what it means);
 * temporary failures -> next_try = now + queue_backoff(); permanent ones
 * -> a bounce, and only once the bounce is durably queued does the message
 * let go of those recipients; a message older than queue_lifetime -> its
 * pending recipients are bounced with the last error and it is removed.
 * One log_delivery line per outcome of each attempt (sent, deferred with
 * "queued as ID", bounced).  verbose (or NULL) gets a line per message
 * and the SMTP dialogue.  Returns 0, or a sysexits code when a queue could
 * not be opened or the account is unknown (EX_USAGE).
 */
int qrun_flush(struct config *c, const char *account, int force,
    FILE *verbose, struct bm_err *e);

/*
 * The queues of every account, in Postfix's mailq format:
 * "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------",
 * then per message "ID[*!]  SIZE Day Mon DD HH:MM:SS  sender" ('!' held,
 * '*' locked: being delivered now; the null sender as MAILER-DAEMON), the
 * last error "(...)" right-aligned, each pending recipient indented, and
 * a blank line; at the end "-- N Kbytes in M Requests.".  An empty queue:
 * "Mail queue is empty".  Returns 0 or the queue's error.
 */
int qrun_list(struct config *c, FILE *out, struct bm_err *e);

/*
 * verb "drop" (remove), "hold", "release" (back to deferred, due now) or
 * "retry" (due now, then flushed with force) for message id, found in
 * any account's queue.  Returns 0; EX_NOINPUT "no message ID in the
 * queue"; EX_TEMPFAIL when it is being delivered right now (locked);
 * EX_USAGE for an unknown verb.
 */
int qrun_admin(struct config *c, const char *verb, const char *id,
    struct bm_err *e);

#endif
