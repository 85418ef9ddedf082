/*
 * net - a TCP connection with optional TLS (OpenSSL 3) for the SMTP
 * client: getaddrinfo over every address with non-blocking connects, TLS
 * with certificate chain and host name (RFC 6125) or IP verification, and
 * line-buffered reads and writes bounded by poll() timeouts.  The socket
 * stays non-blocking; OpenSSL's WANT_READ/WANT_WRITE turn into polls.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net.h"
#include "util.h"
#include "verdict.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0          /* then only the caller's SIG_IGN helps */
#endif

struct net {
	int fd;
	char *where;            /* "host:port" for messages */
	SSL_CTX *ctx;
	SSL *ssl;
	size_t rpos, rlen;
	char rbuf[16384];
};

/* --- time and polling --- */

static long long
deadline_after(int timeout_s)
{
	return timeout_s > 0 ? util_monotonic_ms() + (long long)timeout_s * 1000 : -1;
}

long long
net_deadline(int timeout_s)
{
	return deadline_after(timeout_s);
}

/* Wait for events on fd until the deadline (-1: none).  Returns 0 when
 * ready, ETIMEDOUT, or an errno value. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long left;
	int r;

	for (;;) {
		left = deadline < 0 ? -1 : deadline - util_monotonic_ms();
		if (deadline >= 0 && left <= 0)
			return ETIMEDOUT;
		r = poll(&p, 1, left > 1000000000 ? 1000000000 : (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
}

/* --- SIGPIPE: ignored while OpenSSL or send() may write --- */

static void
sigpipe_ignore(struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, old);
}

static void
sigpipe_restore(const struct sigaction *old)
{
	sigaction(SIGPIPE, old, NULL);
}

/* --- connecting --- */

static int
connect_one(const struct addrinfo *ai, long long deadline, int *fdp)
{
	socklen_t len = sizeof(int);
	int fd, err = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		goto out;
	if (errno != EINPROGRESS) {
		err = errno;
		goto out;
	}
	if ((err = wait_fd(fd, POLLOUT, deadline)) != 0)
		goto out;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
out:
	if (err)
		close(fd);
	else
		*fdp = fd;
	return err;
}

static int
is_eai_addrfamily(int r)
{
#ifdef EAI_ADDRFAMILY
	return r == EAI_ADDRFAMILY;
#else
	return 0;
#endif
}

static int
resolve(const char *host, int port, struct addrinfo **res, const char *where,
    struct bm_err *e)
{
	struct addrinfo hints;
	char portstr[16];
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, res);
	if (r == EAI_NONAME || is_eai_addrfamily(r)) {
		/* AI_ADDRCONFIG hides loopback-only setups: ask again without */
		hints.ai_flags = 0;
		r = getaddrinfo(host, portstr, &hints, res);
	}
	if (r != 0)
		return verdict_fail(e, VK_RESOLVE, NULL, "%s: cannot resolve "
		    "host: %s", where, r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	return 0;
}

int
net_connect(struct net **out, const char *host, int port, int timeout_s,
    struct bm_err *e)
{
	struct addrinfo *res = NULL, *ai;
	struct net *n;
	int fd = -1, err = 0, rc;
	char *where;

	*out = NULL;
	where = strchr(host, ':') ? xasprintf("[%s]:%d", host, port) :
	    xasprintf("%s:%d", host, port);
	if (port <= 0 || port > 65535) {
		rc = err_set(e, EX_CONFIG, "%s: invalid port", where);
		goto out;
	}
	if ((rc = resolve(host, port, &res, where, e)) != 0)
		goto out;
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		err = connect_one(ai, deadline_after(timeout_s), &fd);
	if (fd < 0) {
		rc = verdict_fail(e, VK_CONNECT, NULL, "%s: connect: %s", where,
		    err == ETIMEDOUT ? "timed out" : strerror(err));
		goto out;
	}
	n = xcalloc(1, sizeof(*n));
	n->fd = fd;
	n->where = where;
	where = NULL;
	*out = n;
out:
	if (res)
		freeaddrinfo(res);
	free(where);
	return rc;
}

/* --- TLS --- */

static int
host_is_ip(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

/* The reason of the last OpenSSL error, or fallback. */
static const char *
ssl_reason(const char *fallback)
{
	unsigned long err = ERR_peek_last_error();
	const char *r = err ? ERR_reason_error_string(err) : NULL;

	return r ? r : fallback;
}

int
net_read_ca(const char *path, char **pem, size_t *len, struct bm_err *e)
{
	if (file_read(path, NET_CA_MAX, 0, pem, len, e) == 0)
		return 0;
	err_prefix(e, "ca_file");
	e->code = EX_CONFIG;
	return EX_CONFIG;
}

/* Trust the certificates of the ca_file, read as net_read_ca does. */
static int
load_ca(SSL_CTX *ctx, const char *path, struct bm_err *e)
{
	STACK_OF(X509_INFO) *infos = NULL;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int i, n = 0, rc;

	if ((rc = net_read_ca(path, &pem, &len, e)) != 0)
		return rc;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) != NULL)
		infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	for (i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *x = sk_X509_INFO_value(infos, i);

		if (x->x509 != NULL && X509_STORE_add_cert(store, x->x509))
			n++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	free(pem);
	ERR_clear_error();
	if (n == 0)
		return err_set(e, EX_CONFIG, "cannot load CA file %s: no PEM "
		    "certificate in it: name a file of PEM certificates in "
		    "ca_file", path);
	return 0;
}

static int
tls_ctx(struct net *n, const char *ca_file, struct bm_err *e)
{
	n->ctx = SSL_CTX_new(TLS_client_method());
	if (n->ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(n->ctx, TLS1_2_VERSION))
		return err_set(e, EX_SOFTWARE, "%s: cannot set up TLS: %s",
		    n->where, ssl_reason("unknown error"));
	SSL_CTX_set_verify(n->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(n->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (ca_file != NULL) {
		if (load_ca(n->ctx, ca_file, e) != 0)
			return EX_CONFIG;
	} else if (!SSL_CTX_set_default_verify_paths(n->ctx)) {
		return err_set(e, EX_TEMPFAIL,
		    "%s: cannot load the system certificate store: %s",
		    n->where, ssl_reason("unknown error"));
	}
	return 0;
}

static int
tls_session(struct net *n, const char *host, struct bm_err *e)
{
	X509_VERIFY_PARAM *vp;
	int ok;

	n->ssl = SSL_new(n->ctx);
	if (n->ssl == NULL || !SSL_set_fd(n->ssl, n->fd))
		return err_set(e, EX_SOFTWARE, "%s: cannot set up TLS: %s",
		    n->where, ssl_reason("unknown error"));
	vp = SSL_get0_param(n->ssl);
	if (host_is_ip(host)) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	} else {
		X509_VERIFY_PARAM_set_hostflags(vp,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = SSL_set_tlsext_host_name(n->ssl, host) &&
		    SSL_set1_host(n->ssl, host);
	}
	if (!ok)
		return err_set(e, EX_SOFTWARE, "%s: cannot set the TLS peer "
		    "name: %s", n->where, ssl_reason("unknown error"));
	return 0;
}

static int
tls_failure(struct net *n, const char *host, int ret, struct bm_err *e)
{
	long vr = SSL_get_verify_result(n->ssl);
	int se = SSL_get_error(n->ssl, ret);

	if (vr != X509_V_OK)
		return verdict_fail(e, VK_CERT, NULL,
		    "%s: certificate verify failed for %s: %s", n->where,
		    host, X509_verify_cert_error_string(vr));
	if (se == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
		return err_set(e, EX_TEMPFAIL, "%s: TLS handshake failed: %s",
		    n->where, errno ? strerror(errno) :
		    "connection closed by server");
	return err_set(e, EX_TEMPFAIL, "%s: TLS handshake failed: %s",
	    n->where, ssl_reason("unknown error"));
}

static int
tls_handshake(struct net *n, const char *host, int timeout_s,
    struct bm_err *e)
{
	long long deadline = deadline_after(timeout_s);
	struct sigaction old;
	int ret, se, w;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		sigpipe_ignore(&old);
		ret = SSL_connect(n->ssl);
		sigpipe_restore(&old);
		if (ret == 1)
			return 0;
		se = SSL_get_error(n->ssl, ret);
		if (se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE)
			return tls_failure(n, host, ret, e);
		w = wait_fd(n->fd, se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
		    deadline);
		if (w != 0)
			return err_set(e, EX_TEMPFAIL,
			    "%s: TLS handshake: %s", n->where,
			    w == ETIMEDOUT ? "timed out" : strerror(w));
	}
}

int
net_starttls(struct net *n, const char *host, const char *ca_file,
    int timeout_s, struct bm_err *e)
{
	int rc;

	if (n->ssl != NULL)
		return err_set(e, EX_SOFTWARE, "%s: TLS already active",
		    n->where);
	/* never let plaintext bytes pose as part of the TLS session */
	wipe(n->rbuf, n->rlen);
	n->rpos = n->rlen = 0;
	if ((rc = tls_ctx(n, ca_file, e)) != 0)
		return rc;
	if ((rc = tls_session(n, host, e)) != 0)
		return rc;
	return tls_handshake(n, host, timeout_s, e);
}

int
net_is_tls(const struct net *n)
{
	return n->ssl != NULL;
}

void
net_tls_info(const struct net *n, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	if (n->ssl == NULL) {
		out[0] = '\0';
		return;
	}
	snprintf(out, outlen, "%s %s", SSL_get_version(n->ssl),
	    SSL_get_cipher_name(n->ssl));
}

/* --- reading --- */

/* One read attempt.  Returns bytes read (> 0), 0 for end of stream, -1
 * with *ev set to the poll event to wait for, or -2 for an error. */
static ssize_t
read_some(struct net *n, short *ev)
{
	struct sigaction old;
	size_t got = 0;
	ssize_t r;
	int ret, se;

	if (n->ssl == NULL) {
		r = recv(n->fd, n->rbuf, sizeof(n->rbuf), 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR)) {
			*ev = POLLIN;
			return -1;
		}
		return r < 0 ? -2 : r;
	}
	ERR_clear_error();
	errno = 0;
	sigpipe_ignore(&old);
	ret = SSL_read_ex(n->ssl, n->rbuf, sizeof(n->rbuf), &got);
	sigpipe_restore(&old);
	if (ret == 1)
		return (ssize_t)got;
	se = SSL_get_error(n->ssl, ret);
	if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
		*ev = se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return -1;
	}
	return se == SSL_ERROR_ZERO_RETURN ? 0 : -2;
}

static int
fill(struct net *n, long long deadline, struct bm_err *e)
{
	short ev = POLLIN;
	ssize_t r;
	int w;

	for (;;) {
		r = read_some(n, &ev);
		if (r > 0) {
			n->rpos = 0;
			n->rlen = (size_t)r;
			return 0;
		}
		if (r == 0)
			return err_set(e, EX_TEMPFAIL,
			    "%s: connection closed by server", n->where);
		if (r == -2)
			return err_set(e, EX_TEMPFAIL, "%s: read: %s",
			    n->where, n->ssl ? ssl_reason(errno ?
			    strerror(errno) : "connection closed by server") :
			    strerror(errno));
		if ((w = wait_fd(n->fd, ev, deadline)) != 0)
			return err_set(e, EX_TEMPFAIL, "%s: read: %s",
			    n->where, w == ETIMEDOUT ?
			    "timed out waiting for the server" : strerror(w));
	}
}

int
net_readline(struct net *n, struct buf *line, long long deadline,
    struct bm_err *e)
{
	char *nl;
	size_t take;
	int rc;

	buf_reset(line);
	buf_add(line, "", 0);
	for (;;) {
		if (n->rpos == n->rlen && (rc = fill(n, deadline, e)) != 0)
			return rc;
		nl = memchr(n->rbuf + n->rpos, '\n', n->rlen - n->rpos);
		take = nl ? (size_t)(nl - (n->rbuf + n->rpos)) + 1 :
		    n->rlen - n->rpos;
		if (line->len + take > NET_MAX_LINE + 2)
			return err_set(e, EX_PROTOCOL,
			    "%s: the server sent a line longer than %d bytes",
			    n->where, NET_MAX_LINE);
		buf_add(line, n->rbuf + n->rpos, take);
		n->rpos += take;
		if (nl)
			break;
	}
	line->len--;
	if (line->len > 0 && line->data[line->len - 1] == '\r')
		line->len--;
	line->data[line->len] = '\0';
	return 0;
}

size_t
net_buffered(const struct net *n)
{
	return n->rlen - n->rpos;
}

/* --- writing --- */

/* One write attempt of at most len bytes: bytes written (> 0), -1 with
 * *ev to wait for, or -2 for an error. */
static ssize_t
write_some(struct net *n, const char *p, size_t len, short *ev)
{
	struct sigaction old;
	size_t done = 0;
	ssize_t r;
	int ret, se;

	if (n->ssl == NULL) {
		r = send(n->fd, p, len, MSG_NOSIGNAL);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR)) {
			*ev = POLLOUT;
			return -1;
		}
		return r < 0 ? -2 : r;
	}
	ERR_clear_error();
	errno = 0;
	sigpipe_ignore(&old);
	ret = SSL_write_ex(n->ssl, p, len, &done);
	sigpipe_restore(&old);
	if (ret == 1)
		return (ssize_t)done;
	se = SSL_get_error(n->ssl, ret);
	if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
		*ev = se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return -1;
	}
	return -2;
}

int
net_write(struct net *n, const void *p, size_t len, int timeout_s,
    struct bm_err *e)
{
	const char *c = p;
	long long deadline = deadline_after(timeout_s);
	short ev = POLLOUT;
	ssize_t r;
	int w;

	while (len > 0) {
		r = write_some(n, c, len > 16384 ? 16384 : len, &ev);
		if (r > 0) {
			c += r;
			len -= (size_t)r;
			deadline = deadline_after(timeout_s);
			continue;
		}
		if (r == -2 || r == 0)
			return err_set(e, EX_TEMPFAIL, "%s: write: %s",
			    n->where, n->ssl ? ssl_reason(errno ?
			    strerror(errno) : "connection closed by server") :
			    strerror(errno));
		if ((w = wait_fd(n->fd, ev, deadline)) != 0)
			return err_set(e, EX_TEMPFAIL, "%s: write: %s",
			    n->where, w == ETIMEDOUT ? "timed out" :
			    strerror(w));
	}
	return 0;
}

void
net_close(struct net *n)
{
	struct sigaction old;

	if (n == NULL)
		return;
	if (n->ssl) {
		sigpipe_ignore(&old);
		SSL_shutdown(n->ssl);
		sigpipe_restore(&old);
		SSL_free(n->ssl);
	}
	if (n->ctx)
		SSL_CTX_free(n->ctx);
	if (n->fd >= 0)
		close(n->fd);
	free(n->where);
	wipe(n->rbuf, sizeof(n->rbuf));
	free(n);
}
