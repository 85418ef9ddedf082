/*
 * loopback - the tiny HTTP/1.1 listener on 127.0.0.1 that receives the
 * browser's redirect in the authorization code flow (RFC 8252 section 7.3,
 * RFC 9112 request syntax).  Only connections from 127.0.0.1, only GET,
 * only requests up to LOOPBACK_MAX_REQUEST bytes; idle connections (a
 * browser's speculative preconnects) time out without blocking the others.
 */
#ifndef BEARMAIL_LOOPBACK_H
#define BEARMAIL_LOOPBACK_H

#include "util.h"

/* Largest request head (request line and header fields) accepted. */
#define LOOPBACK_MAX_REQUEST 8192
/* Connections read at the same time. */
#define LOOPBACK_MAX_CONNS 8
/* Seconds a connection may take to send its request head. */
#define LOOPBACK_CONN_TIMEOUT 10

struct loopback_conn {
	int fd;                    /* -1: free slot */
	long long deadline_ms;     /* monotonic */
	struct buf head;
};

struct loopback {
	int fd;                    /* the listening socket, -1 when closed */
	int port;
	struct loopback_conn conns[LOOPBACK_MAX_CONNS];
};

/*
 * Listen on 127.0.0.1 on a port the kernel picks (close-on-exec).
 * Returns 0 with l->port set, or EX_OSERR with the system's reason.
 */
int loopback_listen(struct loopback *l, struct bm_err *e);

/*
 * Wait until deadline_ms (util_monotonic_ms() clock) for a complete GET
 * request.  Requests from another address than 127.0.0.1 are dropped,
 * other methods get 405, oversized heads 431, each connection closed.
 * Returns 0 with *line (the request line without its line end; the caller
 * frees it with wipe_free: it may carry a code) and *fd (the connection:
 * answer it with loopback_reply); EX_TEMPFAIL when the deadline passes;
 * EX_OSERR when poll fails.
 */
int loopback_next(struct loopback *l, long long deadline_ms, char **line,
    int *fd, struct bm_err *e);

/* Send an HTML answer (status 200, 400, 404, ...) and close fd. */
void loopback_reply(int fd, int status, const char *title, const char *text);

/* Close the listener and every pending connection. */
void loopback_close(struct loopback *l);

#endif
