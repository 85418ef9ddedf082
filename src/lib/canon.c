/*
 * canon - line canonicalisation of message input (RFC 5321 2.3.8, 4.1.1.4
 * and 4.5.2; RFC 5322 2.3): CRLF everywhere, no bare CR or LF, the lone-dot
 * terminator recognised in every line-ending flavour, no dot-stuffing.
 */
#include "config.h"

#include <string.h>

#include "canon.h"

void
canon_init(struct canon *c, int ignore_dots)
{
	memset(c, 0, sizeof(*c));
	c->ignore_dots = ignore_dots != 0;
	c->bol = 1;
}

/* A line has ended (by CRLF, lone CR or lone LF).  Returns 1 at a lone dot. */
static int
line_end(struct canon *c, struct buf *out)
{
	if (c->dot_pending) {
		c->dot_pending = 0;
		c->done = 1;
		return 1;
	}
	buf_add(out, "\r\n", 2);
	if (c->col > c->longest)
		c->longest = c->col;
	c->col = 0;
	c->bol = 1;
	return 0;
}

/* Ordinary bytes: release a held-back dot first.  (Inline: it is the
 * spooler's inner loop.) */
static inline void
text(struct canon *c, const char *p, size_t n, struct buf *out)
{
	if (n == 0)
		return;
	if (c->dot_pending) {
		buf_addc(out, '.');
		c->col++;
		c->dot_pending = 0;
	} else if (c->bol && !c->ignore_dots && p[0] == '.') {
		c->bol = 0;
		if (n == 1) {
			c->dot_pending = 1;
			return;
		}
	}
	c->bol = 0;
	c->col += n;
	buf_add(out, p, n);
}

/* The length of the run of bytes that are neither CR nor LF. */
static size_t
run_length(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n')
			break;
	return i;
}

int
canon_feed(struct canon *c, const char *in, size_t n, struct buf *out)
{
	size_t i = 0, run;

	while (!c->done && i < n) {
		if (c->pending_cr) {
			c->pending_cr = 0;
			if (line_end(c, out))
				break;
			if (in[i] == '\n')
				i++;
			continue;
		}
		if (in[i] == '\r') {
			c->pending_cr = 1;
			i++;
		} else if (in[i] == '\n') {
			line_end(c, out);
			i++;
		} else {
			run = run_length(in + i, n - i);
			/* a leading dot is judged on its own, the rest as a run */
			if (c->bol && !c->ignore_dots && in[i] == '.' && run > 1) {
				text(c, in + i, 1, out);
				i++;
				run--;
			}
			text(c, in + i, run, out);
			i += run;
		}
	}
	return c->done;
}

void
canon_finish(struct canon *c, struct buf *out)
{
	if (c->done)
		return;
	if (c->pending_cr) {
		c->pending_cr = 0;
		line_end(c, out);
		return;
	}
	if (c->dot_pending) {
		buf_addc(out, '.');
		c->col++;
		c->dot_pending = 0;
		c->bol = 0;
	}
	if (!c->bol)
		line_end(c, out);
}
