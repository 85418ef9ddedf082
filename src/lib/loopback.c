/*
 * loopback - a listener on 127.0.0.1 for the OAuth2 redirect of a native
 * app (RFC 8252 section 7.3), reading HTTP/1.1 request heads (RFC 9112
 * section 2-3) from up to LOOPBACK_MAX_CONNS connections at once with
 * poll(2), so that an idle preconnect cannot hold up the real request.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loopback.h"

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

static void
conn_reset(struct loopback_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->head, 1);
}

int
loopback_listen(struct loopback *l, struct bm_err *e)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	size_t i;

	memset(l, 0, sizeof(*l));
	for (i = 0; i < NELEM(l->conns); i++)
		l->conns[i].fd = -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(l->fd, 16) != 0 ||
	    getsockname(l->fd, (struct sockaddr *)&sin, &len) != 0) {
		err_set(e, EX_OSERR, "cannot listen on 127.0.0.1: %s",
		    strerror(errno));
		loopback_close(l);
		return EX_OSERR;
	}
	l->port = ntohs(sin.sin_port);
	return 0;
}

void
loopback_close(struct loopback *l)
{
	size_t i;

	for (i = 0; i < NELEM(l->conns); i++)
		conn_reset(&l->conns[i]);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	default: return "Error";
	}
}

void
loopback_reply(int fd, int status, const char *title, const char *text)
{
	struct buf body = BUF_INIT, msg = BUF_INIT;
	struct timeval tv = { 5, 0 };
	int flags = fcntl(fd, F_GETFL);

	buf_addf(&body, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>%s</title></head>\n<body><h1>%s</h1>\n<p>%s</p>\n"
	    "</body></html>\n", title, title, text);
	buf_addf(&msg, "HTTP/1.1 %d %s\r\nContent-Type: text/html; "
	    "charset=utf-8\r\nContent-Length: %zu\r\nCache-Control: no-store"
	    "\r\nReferrer-Policy: no-referrer\r\n%sConnection: close\r\n\r\n",
	    status, reason(status), body.len, status == 405 ?
	    "Allow: GET\r\n" : "");
	buf_add(&msg, body.data, body.len);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)write_all(fd, msg.data, msg.len);
	shutdown(fd, SHUT_WR);
	close(fd);
	buf_free(&body, 0);
	buf_free(&msg, 0);
}

/* Accept one pending connection into a free slot (or drop it). */
static void
accept_one(struct loopback *l, long long now)
{
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	size_t i;
	int fd;

	fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
	    SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (len < sizeof(peer) || peer.sin_family != AF_INET ||
	    peer.sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
		close(fd);
		return;
	}
	for (i = 0; i < NELEM(l->conns); i++)
		if (l->conns[i].fd < 0) {
			l->conns[i].fd = fd;
			l->conns[i].deadline_ms = now +
			    LOOPBACK_CONN_TIMEOUT * 1000;
			return;
		}
	close(fd);
}

/* The end of the request head in h, or NULL while it is incomplete. */
static const char *
head_end(const struct buf *h)
{
	const char *p;

	if (h->data == NULL)
		return NULL;
	if ((p = strstr(h->data, "\r\n\r\n")) != NULL)
		return p;
	return strstr(h->data, "\n\n");
}

/*
 * Read what c has; 1 when its head is complete (*line set, c->fd handed to
 * the caller), 0 to wait, -1 when the connection is finished with.
 */
static int
conn_read(struct loopback_conn *c, char **line, int *fd)
{
	char chunk[1024];
	ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0 || memchr(chunk, '\0', (size_t)n) != NULL)
		return -1;
	buf_add(&c->head, chunk, (size_t)n);
	wipe(chunk, sizeof(chunk));
	if (head_end(&c->head) == NULL) {
		if (c->head.len < LOOPBACK_MAX_REQUEST)
			return 0;
		loopback_reply(c->fd, 431, "Request too large", "bearmail "
		    "accepts requests of up to 8 KiB.");
		c->fd = -1;
		return -1;
	}
	if (strncmp(c->head.data, "GET ", 4) != 0) {
		loopback_reply(c->fd, 405, "Method not allowed", "bearmail "
		    "only answers GET.");
		c->fd = -1;
		return -1;
	}
	*line = xstrndup(c->head.data, strcspn(c->head.data, "\r\n"));
	*fd = c->fd;
	c->fd = -1;
	return 1;
}

/* Fill pfd with the listener (when a slot is free) and the connections. */
static nfds_t
poll_set(struct loopback *l, struct pollfd *pfd, int *map)
{
	nfds_t n = 0;
	size_t i;
	int free_slot = 0;

	for (i = 0; i < NELEM(l->conns); i++) {
		if (l->conns[i].fd < 0) {
			free_slot = 1;
			continue;
		}
		pfd[n].fd = l->conns[i].fd;
		pfd[n].events = POLLIN;
		map[n++] = (int)i;
	}
	if (free_slot) {
		pfd[n].fd = l->fd;
		pfd[n].events = POLLIN;
		map[n++] = -1;
	}
	return n;
}

/* Close connections past their own deadline; the next wake-up time. */
static long long
expire(struct loopback *l, long long now, long long deadline_ms)
{
	long long next = deadline_ms;
	size_t i;

	for (i = 0; i < NELEM(l->conns); i++) {
		if (l->conns[i].fd < 0)
			continue;
		if (l->conns[i].deadline_ms <= now)
			conn_reset(&l->conns[i]);
		else if (l->conns[i].deadline_ms < next)
			next = l->conns[i].deadline_ms;
	}
	return next;
}

int
loopback_next(struct loopback *l, long long deadline_ms, char **line,
    int *fd, struct bm_err *e)
{
	struct pollfd pfd[LOOPBACK_MAX_CONNS + 1];
	int map[LOOPBACK_MAX_CONNS + 1], rc, got;
	long long now, wake;
	nfds_t n, i;

	*line = NULL;
	*fd = -1;
	while ((now = util_monotonic_ms()) < deadline_ms) {
		wake = expire(l, now, deadline_ms);
		n = poll_set(l, pfd, map);
		rc = poll(pfd, n, (int)(wake - now));
		if (rc < 0 && errno != EINTR)
			return err_set(e, EX_OSERR, "poll: %s", strerror(errno));
		for (i = 0; rc > 0 && i < n; i++) {
			struct loopback_conn *c;

			if (pfd[i].revents == 0)
				continue;
			if (map[i] < 0) {
				accept_one(l, now);
				continue;
			}
			c = &l->conns[map[i]];
			got = conn_read(c, line, fd);
			if (got != 0)
				conn_reset(c);
			if (got == 1)
				return 0;
		}
	}
	return err_set(e, EX_TEMPFAIL, "timed out");
}
