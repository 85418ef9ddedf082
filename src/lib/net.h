/*
 * net - one client connection: TCP (every address getaddrinfo returns,
 * IPv6 and IPv4, non-blocking connect with a timeout), optional TLS
 * (OpenSSL 3, TLS >= 1.2, chain and host name verified), buffered line
 * reads and whole-buffer writes, each bounded by a timeout.
 *
 * Every function that can fail returns 0 or a sysexits code and fills e
 * with a message naming host:port and the cause.  Network, timeout and TLS
 * failures (certificate ones included) are EX_TEMPFAIL: the queue retries.
 * SIGPIPE is ignored for the duration of each write (as curl does), so a
 * peer that goes away gives an error, not a dead process.
 */
#ifndef BEARMAIL_NET_H
#define BEARMAIL_NET_H

#include <stddef.h>

#include "util.h"

struct net;

/* The largest ca_file accepted (a bundle of every public CA is ~220 KB). */
#define NET_CA_MAX (8 * 1024 * 1024)

/*
 * Read the ca_file (PEM certificates) through util's file_read: a FIFO, a
 * directory or a device there is refused at once instead of hanging the
 * TLS library that would open it.  0 and *pem (*len bytes), or EX_CONFIG
 * naming the file and the fix.
 */
int net_read_ca(const char *path, char **pem, size_t *len, struct bm_err *e);

/*
 * Connect to host:port, trying each address in turn, each within
 * timeout_s seconds (<= 0: no limit).  On success *out is the connection.
 * Returns 0 or EX_TEMPFAIL ("host:port: connect: Connection refused",
 * "host:port: cannot resolve host: ...", "... timed out").
 */
int net_connect(struct net **out, const char *host, int port, int timeout_s,
    struct bm_err *e);

/*
 * Start TLS on the connection (after STARTTLS, or at once for SMTPS).
 * Any bytes already buffered from the plaintext connection are discarded
 * first: they cannot be trusted (STARTTLS response injection,
 * CVE-2011-0411).  The certificate chain is checked against ca_file, or
 * the system store when ca_file is NULL, and the name against host (its
 * IP address when host is an IP literal); SNI is sent for names.  The
 * handshake is bounded by timeout_s.  Returns 0, EX_CONFIG when ca_file
 * cannot be loaded, or EX_TEMPFAIL, e.g. "host:port: certificate verify
 * failed for host: Hostname mismatch".
 */
int net_starttls(struct net *n, const char *host, const char *ca_file,
    int timeout_s, struct bm_err *e);

/* The deadline timeout_s seconds from now, for net_readline (<= 0: none,
 * -1).  Milliseconds of the monotonic clock. */
long long net_deadline(int timeout_s);

/*
 * Read one line into line (reset first), without its CRLF or bare LF.
 * A line may not exceed NET_MAX_LINE bytes.  Gives up at deadline (from
 * net_deadline; -1: never), however the server drips its bytes: a caller
 * reading a multi-line reply passes one deadline for all of its lines.
 * Returns 0, EX_TEMPFAIL (timeout, connection closed, I/O or TLS error)
 * or EX_PROTOCOL (line too long).
 */
#define NET_MAX_LINE 16384
int net_readline(struct net *n, struct buf *line, long long deadline,
    struct bm_err *e);

/*
 * Write all len bytes; fails when no progress is possible for timeout_s
 * seconds (<= 0: no limit).  Returns 0 or EX_TEMPFAIL.
 */
int net_write(struct net *n, const void *p, size_t len, int timeout_s,
    struct bm_err *e);

/* Bytes received and buffered but not yet returned by net_readline. */
size_t net_buffered(const struct net *n);

/* Whether TLS is active. */
int net_is_tls(const struct net *n);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" (for verbose output), or "" without TLS. */
void net_tls_info(const struct net *n, char *out, size_t outlen);

/* Close (sending a TLS close_notify, best effort) and free.  NULL is fine. */
void net_close(struct net *n);

#endif
