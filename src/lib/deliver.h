/*
 * deliver - an authenticated SMTP session for an account, shared by the
 * synchronous submitter and the queue runner: token first (no connection
 * without one), connect, STARTTLS, AUTH (one fresh token and one retry
 * when the server refuses a token we believed valid), then any number of
 * transactions with RSET between them.
 */
#ifndef BEARMAIL_DELIVER_H
#define BEARMAIL_DELIVER_H

#include <stdio.h>

#include "conf.h"
#include "smtp.h"
#include "util.h"

struct dsession;

/* Open an authenticated session.  0, or a sysexits code with e filled
 * (EX_TEMPFAIL for anything a later try may fix; EX_CONFIG when a login
 * is needed; EX_NOPERM when AUTH is refused). */
int deliver_open(const struct account *a, FILE *verbose,
    struct dsession **out, struct bm_err *e);

/* One transaction (smtp_send); afterwards the session is ready for the
 * next one when deliver_alive() says so. */
int deliver_send(struct dsession *s, struct smtp_txn *t, struct bm_err *e);
int deliver_alive(const struct dsession *s);

/* host:port, for log lines. */
const char *deliver_relay(const struct dsession *s);

/* QUIT and free (NULL is fine). */
void deliver_close(struct dsession *s);

#endif
