/*
 * fuzz_mime - the line-length keeper (mime.h) on whole messages.  The
 * input is a message, where "\xff N C" stands for the octet C 16 * N
 * times (so that small inputs reach SMTP's 998 octets); it is
 * canonicalised as msg_spool would, its header folded (mime_fold_header),
 * then planned and re-encoded (mime_plan, mime_apply) as msg_complete
 * does.  Unless refused with EX_DATAERR: no line of the result passes 998
 * octets, mime_walk sees the same entities in it, and every leaf decodes
 * (mime_decode) to exactly what it did.
 */
#include "config.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "canon.h"
#include "header.h"
#include "mime.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

#define EXPANDED_MAX (16 * 1024)

/* The input with its runs expanded, canonical CRLF. */
static void
canonical(const uint8_t *p, size_t n, struct buf *out)
{
	struct buf raw = BUF_INIT;
	struct canon c;
	size_t i, k;

	buf_add(&raw, "", 0);
	for (i = 0; i < n && raw.len < EXPANDED_MAX; i++) {
		if (p[i] != 0xff || i + 2 >= n) {
			buf_addc(&raw, (char)p[i]);
			continue;
		}
		for (k = 0; k < 16u * p[i + 1]; k++)
			buf_addc(&raw, (char)p[i + 2]);
		i += 2;
	}
	canon_init(&c, 1);
	buf_add(out, "", 0);
	canon_feed(&c, raw.data, raw.len, out);
	canon_finish(&c, out);
	buf_free(&raw, 0);
}

static int
mem_fd(const char *p, size_t n)
{
	int fd = memfd_create("fuzz_mime", MFD_CLOEXEC);

	FUZZ_ASSERT(fd >= 0 && write_all(fd, p, n) == 0);
	return fd;
}

static size_t
longest_line(const char *p, size_t n)
{
	size_t i, col = 0, longest = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
			longest = col > longest ? col : longest;
			col = 0;
			i++;
		} else {
			col++;
		}
	}
	return col > longest ? col : longest;
}

/* What a walk saw: the entities, and each leaf decoded. */
struct seen {
	int fd;
	struct buf shape, bodies;
};

static int
see(void *ctx, struct mime_entity *m, int end)
{
	struct seen *s = ctx;
	size_t n = (size_t)(m->bend - m->bstart);
	char *raw;

	if (!end) {
		buf_addf(&s->shape, "%d %d %s;", m->depth, m->kind, m->type);
		return 0;
	}
	if (m->kind != MIME_LEAF)
		return 0;
	raw = xmalloc(n + 1);
	FUZZ_ASSERT(pread(s->fd, raw, n, (off_t)m->bstart) == (ssize_t)n);
	buf_addf(&s->bodies, "[%d:", m->depth);
	mime_decode(m->cte, raw, n, &s->bodies);
	buf_adds(&s->bodies, "]");
	free(raw);
	return 0;
}

static void
walk(struct hdrs *h, int fd, long long off, long long len, struct seen *s)
{
	struct bm_err e = { 0 };

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	buf_add(&s->shape, "", 0);
	buf_add(&s->bodies, "", 0);
	FUZZ_ASSERT(mime_walk(h, fd, off, len, see, s, &e) == 0);
}

static void
seen_free(struct seen *s)
{
	buf_free(&s->shape, 0);
	buf_free(&s->bodies, 0);
}

/* The re-encoded message keeps every promise. */
static void
check(struct hdrs *before, int in_fd, long long off, long long len,
    struct hdrs *after, int out_fd, long long out_len)
{
	struct buf head = BUF_INIT;
	struct seen a, b;
	char *body = xmalloc((size_t)out_len + 1);

	hdr_write(after, &head);
	FUZZ_ASSERT(longest_line(head.data, head.len) <= MIME_LINE_MAX);
	FUZZ_ASSERT(pread(out_fd, body, (size_t)out_len, 0) ==
	    (ssize_t)out_len);
	FUZZ_ASSERT(longest_line(body, (size_t)out_len) <= MIME_LINE_MAX);
	walk(before, in_fd, off, len, &a);
	walk(after, out_fd, 0, out_len, &b);
	FUZZ_ASSERT(strcmp(a.shape.data, b.shape.data) == 0);
	FUZZ_ASSERT(a.bodies.len == b.bodies.len &&
	    memcmp(a.bodies.data, b.bodies.data, a.bodies.len) == 0);
	seen_free(&a);
	seen_free(&b);
	buf_free(&head, 0);
	free(body);
}

/* A copy of h, through its written form. */
static void
copy_hdrs(const struct hdrs *h, struct hdrs *copy)
{
	struct buf b = BUF_INIT;
	size_t consumed;

	hdr_write(h, &b);
	hdr_parse(b.data, b.len, copy, &consumed);
	FUZZ_ASSERT(consumed == b.len);
	buf_free(&b, 0);
}

static void
reencode(struct hdrs *h, int fd, const struct buf *msg, size_t off)
{
	struct hdrs orig = HDRS_INIT;
	struct bm_err e = { 0 };
	struct mime_plan *p = NULL;
	long long len = (long long)(msg->len - off), out_len = 0;
	int r, ofd, eightbit;

	copy_hdrs(h, &orig);
	if ((r = mime_plan(h, fd, (long long)off, len, &p, &e)) != 0) {
		FUZZ_ASSERT(r == EX_DATAERR && e.msg[0] != '\0');
		goto out;
	}
	if (p == NULL) {	/* nothing to change: nothing was too long */
		FUZZ_ASSERT(longest_line(msg->data + off, msg->len - off) <=
		    MIME_LINE_MAX);
		goto out;
	}
	ofd = mem_fd("", 0);
	r = mime_apply(p, h, ofd, &out_len, &eightbit, &e);
	FUZZ_ASSERT(r == 0 || r == EX_DATAERR);
	if (r == 0)
		check(&orig, fd, (long long)off, len, h, ofd, out_len);
	close(ofd);
out:
	mime_plan_free(p);
	hdr_free(&orig);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf msg = BUF_INIT;
	struct hdrs h = HDRS_INIT;
	struct bm_err e = { 0 };
	size_t consumed;
	int fd;

	canonical(data, size, &msg);
	hdr_parse(msg.data, msg.len, &h, &consumed);
	fd = mem_fd(msg.data, msg.len);
	if (mime_fold_header(&h, &e) == 0)
		reencode(&h, fd, &msg, consumed);
	else
		FUZZ_ASSERT(e.code == EX_DATAERR);
	close(fd);
	hdr_free(&h);
	buf_free(&msg, 0);
	return 0;
}
