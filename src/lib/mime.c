/*
 * mime - SMTP's line limit (RFC 5321 4.5.3.1.6, RFC 5322 2.1.1: 998
 * octets) kept without changing what a reader decodes.  The structure is
 * read as RFC 2045 (5 Content-Type, 6 Content-Transfer-Encoding) and RFC
 * 2046 (5.1.1 boundaries, preamble and epilogue; 5.2.1 message/rfc822;
 * 5.2.2/5.2.3 the 7bit-only message types) define it.  A leaf with a long
 * line is re-encoded: quoted-printable (RFC 2045 6.7) for text, base64
 * (6.8) otherwise; one already encoded so is re-wrapped.  Long header
 * lines are folded at their whitespace (RFC 5322 2.2.3), or written as
 * RFC 2047 encoded-words in an unstructured field.  Two passes over the
 * spool, 64 KiB at a time: the first (mime_plan) finds what must change,
 * the second (mime_apply) copies the rest and re-encodes that.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mime.h"

#define CHUNK (64 * 1024)
#define LINE_KEEP 1024          /* of each line, for boundaries and fields */
#define QP_COLS 76              /* RFC 2045 6.7 (5) */
#define B64_COLS 76             /* RFC 2045 6.8 */
#define BREAK_FROM (MIME_LINE_MAX - 8)
#define EDITS_MAX 100000

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ------------------------------------------------------- field values */

static const char *
skip_cfws(const char *p)
{
	int depth;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '(')
			return p;
		for (depth = 0; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* RFC 2045 5.1 token: CHAR but SPACE, CTLs and tspecials. */
static size_t
token_len(const char *p)
{
	size_t n = 0;

	while ((unsigned char)p[n] > 32 && (unsigned char)p[n] < 127 &&
	    strchr("()<>@,;:\\\"/[]?=", p[n]) == NULL)
		n++;
	return n;
}

/* A token or quoted-string into v; returns what follows it. */
static const char *
param_value(const char *p, struct buf *v)
{
	size_t n;

	buf_reset(v);
	buf_add(v, "", 0);
	if (*p != '"') {
		n = token_len(p);
		buf_add(v, p, n);
		return p + n;
	}
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		buf_addc(v, *p);
	}
	return *p == '"' ? p + 1 : p;
}

static void
param_set(struct mime_ctype *ct, const char *name, size_t n,
    const struct buf *v)
{
	if (n == 7 && strncasecmp(name, "charset", 7) == 0)
		ct->has_charset = 1;
	if (n != 8 || strncasecmp(name, "boundary", 8) != 0 ||
	    ct->has_boundary || v->len == 0 || v->len > MIME_BOUNDARY_MAX ||
	    memchr(v->data, '\0', v->len) != NULL)
		return;
	memcpy(ct->boundary, v->data, v->len);
	ct->boundary[v->len] = '\0';
	ct->has_boundary = 1;
}

/* ";" attribute "=" value, as many as parse; the first bad one ends it. */
static void
ctype_params(const char *p, struct mime_ctype *ct)
{
	struct buf v = BUF_INIT;
	const char *name;
	size_t n;

	while (*(p = skip_cfws(p)) == ';') {
		name = skip_cfws(p + 1);
		n = token_len(name);
		p = skip_cfws(name + n);
		if (n == 0 || *p != '=')
			break;
		p = param_value(skip_cfws(p + 1), &v);
		param_set(ct, name, n, &v);
	}
	buf_free(&v, 0);
}

int
mime_parse_ctype(const char *value, struct mime_ctype *ct)
{
	char *u = hdr_unfold(value);
	const char *t, *s, *p;
	size_t tn, sn, i;

	memset(ct, 0, sizeof(*ct));
	t = skip_cfws(u);
	tn = token_len(t);
	p = skip_cfws(t + tn);
	s = *p == '/' ? skip_cfws(p + 1) : p;
	sn = *p == '/' ? token_len(s) : 0;
	if (tn > 0 && sn > 0 && tn + 1 + sn < sizeof(ct->type)) {
		for (i = 0; i < tn; i++)
			ct->type[i] = (char)lower(t[i]);
		ct->type[tn] = '/';
		for (i = 0; i < sn; i++)
			ct->type[tn + 1 + i] = (char)lower(s[i]);
		ct->valid = 1;
		ctype_params(s + sn, ct);
	}
	free(u);
	return ct->valid ? 0 : -1;
}

int
mime_parse_cte(const char *value)
{
	static const struct {
		const char *name;
		int cte;
	} names[] = {
		{ "7bit", MIME_CTE_7BIT }, { "8bit", MIME_CTE_8BIT },
		{ "binary", MIME_CTE_BINARY }, { "quoted-printable", MIME_CTE_QP },
		{ "base64", MIME_CTE_BASE64 },
	};
	char *u = hdr_unfold(value);
	const char *p = skip_cfws(u);
	size_t i, n = token_len(p);
	int cte = n == 0 ? MIME_CTE_7BIT : MIME_CTE_OTHER;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (n == strlen(names[i].name) &&
		    strncasecmp(p, names[i].name, n) == 0)
			cte = names[i].cte;
	free(u);
	return cte;
}

/* ------------------------------------------------------- output, input */

/* A buffered writer to the new spool file. */
struct out {
	int fd;
	struct buf b;
	long long total;
	int eightbit;
	struct bm_err *e;
};

static int
out_flush(struct out *o)
{
	if (o->b.len == 0)
		return 0;
	if (!o->eightbit)
		o->eightbit = mem_has_8bit(o->b.data, o->b.len);
	o->total += (long long)o->b.len;
	if (write_all(o->fd, o->b.data, o->b.len) != 0) {
		buf_reset(&o->b);
		return err_set(o->e, errno == ENOSPC || errno == EDQUOT ?
		    EX_CANTCREAT : EX_IOERR, "cannot write the re-encoded "
		    "message: %s", strerror(errno));
	}
	buf_reset(&o->b);
	return 0;
}

static int
out_maybe_flush(struct out *o)
{
	return o->b.len >= CHUNK ? out_flush(o) : 0;
}

/* Read [at, at + n) of fd (n <= CHUNK) into p. */
static int
read_at(int fd, char *p, size_t n, long long at, struct bm_err *e)
{
	ssize_t r;
	size_t got = 0;

	while (got < n) {
		r = pread(fd, p + got, n - got, (off_t)(at + (long long)got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return err_set(e, EX_IOERR, "cannot read the spool file "
			    "back: %s", r < 0 ? strerror(errno) : "short file");
		got += (size_t)r;
	}
	return 0;
}

/* Read [from, to) of fd into b (replacing what it held). */
static int
read_range(int fd, long long from, long long to, struct buf *b,
    struct bm_err *e)
{
	size_t n = (size_t)(to - from);

	buf_reset(b);
	buf_add(b, "", 0);
	if (n == 0)
		return 0;
	if (b->cap < n + 1) {
		b->data = xrealloc(b->data, n + 1);
		b->cap = n + 1;
	}
	b->data[n] = '\0';
	b->len = n;
	return read_at(fd, b->data, n, from, e);
}

/* ------------------------------------------------------------ walking */

/* One line of the input: its place, length and first LINE_KEEP octets. */
struct line {
	long long off, len;     /* len: octets without CRLF */
	int crlf;
	char keep[LINE_KEEP];
	size_t nkeep;
	int eightbit;
	struct utf8 u;
	int last_cr;            /* the last octet added was a CR */
};

enum { ST_HEADER, ST_BODY, ST_PREAMBLE, ST_PARTS, ST_EPILOGUE, ST_INNER };

struct frame {
	struct mime_entity ent;
	int state;
	int fields;             /* ST_HEADER: a field has been seen */
	int digest;             /* multipart/digest: parts default to
	                           message/rfc822 (RFC 2046 5.1.5) */
	char boundary[MIME_BOUNDARY_MAX + 1];
	size_t blen;
};

struct walk {
	const struct hdrs *top;
	int fd;
	long long off, end;
	mime_visit_fn fn;
	void *ctx;
	struct bm_err *e;
	struct frame *st;       /* MIME_DEPTH_MAX + 2 of them */
	size_t n;
	struct line line;
	struct buf hb;          /* a part header read back */
};

static long long
line_end(const struct line *l)
{
	return l->off + l->len + (l->crlf ? 2 : 0);
}

static long long
max_ll(long long a, long long b)
{
	return a > b ? a : b;
}

static void
line_start(struct line *l, long long off)
{
	memset(l, 0, sizeof(*l));
	l->off = off;
}

static void
line_add(struct line *l, const char *p, size_t n)
{
	size_t k = n < LINE_KEEP - l->nkeep ? n : LINE_KEEP - l->nkeep;

	if (n == 0)
		return;
	memcpy(l->keep + l->nkeep, p, k);
	l->nkeep += k;
	l->len += (long long)n;
	if (mem_has_8bit(p, n)) {
		l->eightbit = 1;
		utf8_feed(&l->u, p, n);
	} else if (l->u.need > 0) {
		l->u.bad = 1;
	}
	l->last_cr = p[n - 1] == '\r';
}

/* An LF arrived: whether it ends the line (a CR before it). */
static int
line_ends(struct line *l)
{
	if (!l->last_cr)
		return 0;
	l->len--;
	if ((long long)l->nkeep > l->len)
		l->nkeep = (size_t)l->len;
	l->crlf = 1;
	return 1;
}

static struct frame *
top_frame(struct walk *w)
{
	return &w->st[w->n - 1];
}

static struct frame *
push(struct walk *w, long long hstart)
{
	struct frame *parent = w->n ? top_frame(w) : NULL;
	struct frame *f = &w->st[w->n++];

	memset(f, 0, sizeof(*f));
	f->ent.parent = parent ? &parent->ent : NULL;
	f->ent.depth = parent ? parent->ent.depth + 1 : 0;
	f->ent.hstart = f->ent.bstart = hstart;
	f->state = ST_HEADER;
	return f;
}

static const char *
default_type(const struct frame *f)
{
	/* an entity is the first member of its frame */
	const struct frame *parent = (const struct frame *)f->ent.parent;

	return parent && parent->digest ? "message/rfc822" : "text/plain";
}

static int
is_identity(int cte)
{
	return cte == MIME_CTE_NONE || cte == MIME_CTE_7BIT ||
	    cte == MIME_CTE_8BIT || cte == MIME_CTE_BINARY;
}

static void
classify_kind(struct frame *f, const struct mime_ctype *ct)
{
	struct mime_entity *m = &f->ent;
	int deep = m->depth >= MIME_DEPTH_MAX;

	if (strcmp(m->type, "message/partial") == 0 ||
	    strcmp(m->type, "message/external-body") == 0)
		m->opaque = MIME_OPAQUE_7BIT;
	else if (!is_identity(m->cte))
		return;
	else if (strncmp(m->type, "multipart/", 10) == 0)
		m->opaque = deep ? MIME_OPAQUE_DEPTH : !ct->has_boundary ?
		    MIME_OPAQUE_BOUNDARY : MIME_OPAQUE_NO;
	else if (strcmp(m->type, "message/rfc822") == 0 ||
	    strcmp(m->type, "message/global") == 0)
		m->kind = deep ? MIME_LEAF : MIME_MESSAGE;
	if (m->kind == MIME_MESSAGE || m->opaque != MIME_OPAQUE_NO ||
	    strncmp(m->type, "multipart/", 10) != 0)
		return;
	m->kind = MIME_MULTIPART;
	f->blen = strlen(ct->boundary);
	memcpy(f->boundary, ct->boundary, f->blen + 1);
	f->digest = strcmp(m->type, "multipart/digest") == 0;
}

/* The entity's type, encoding and kind from its header fields. */
static void
classify(struct frame *f, struct hdrs *h)
{
	struct mime_entity *m = &f->ent;
	struct mime_ctype ct;
	struct hdr *c = hdr_get(h, "Content-Type");
	struct hdr *t = hdr_get(h, "Content-Transfer-Encoding");
	char *v;

	memset(&ct, 0, sizeof(ct));
	m->has_ctype = c != NULL;
	m->has_mime_version = hdr_get(h, "MIME-Version") != NULL;
	if (c == NULL || mime_parse_ctype(c->value, &ct) != 0)
		snprintf(m->type, sizeof(m->type), "%s", default_type(f));
	else
		memcpy(m->type, ct.type, sizeof(m->type));
	m->cte = t ? mime_parse_cte(t->value) : MIME_CTE_NONE;
	if (t != NULL) {
		v = hdr_unfold_trim(t->value);
		snprintf(m->cte_name, sizeof(m->cte_name), "%s", v);
		free(v);
	}
	classify_kind(f, &ct);
}

/* Enter the body of the entity on top, its header being h. */
static int
begin_body(struct walk *w, struct frame *f, struct hdrs *h)
{
	int r;

	classify(f, h);
	if ((r = w->fn(w->ctx, &f->ent, 0)) != 0)
		return r;
	if (f->ent.kind == MIME_MULTIPART) {
		f->state = ST_PREAMBLE;
		f->ent.pre_start = f->ent.pre_end = f->ent.bstart;
	} else if (f->ent.kind == MIME_MESSAGE) {
		f->state = ST_INNER;
		push(w, f->ent.bstart);
	} else {
		f->state = ST_BODY;
	}
	return 0;
}

/* The header of the entity on top ends at bstart: read it back. */
static int
header_done(struct walk *w, struct frame *f, long long bstart)
{
	struct hdrs h = HDRS_INIT;
	size_t consumed;
	int r;

	f->ent.bstart = bstart;
	if (bstart - f->ent.hstart > MIME_HEADER_MAX)
		return err_set(w->e, EX_DATAERR, "a MIME part header is larger "
		    "than %d bytes", MIME_HEADER_MAX);
	if ((r = read_range(w->fd, f->ent.hstart, bstart, &w->hb, w->e)) != 0)
		return r;
	hdr_parse(w->hb.data, w->hb.len, &h, &consumed);
	r = begin_body(w, f, &h);
	hdr_free(&h);
	return r;
}

/* End the entity on top at position at (clamped to its own start). */
static int
end_top(struct walk *w, long long at)
{
	struct frame *f = top_frame(w);
	struct mime_entity *m = &f->ent;
	int r;

	if (f->state == ST_HEADER)
		return header_done(w, f, max_ll(m->hstart, at));
	m->bend = max_ll(m->bstart, at);
	if (f->state == ST_PREAMBLE)
		m->pre_end = max_ll(m->pre_start, at);
	if (f->state == ST_EPILOGUE)
		m->epi_end = max_ll(m->epi_start, at);
	if ((r = w->fn(w->ctx, m, 1)) != 0)
		return r;
	w->n--;
	return 0;
}

/* Whether the line is "--" boundary, then "--" or not, then only
 * transport padding (RFC 2046 5.1.1's grammar, as Python's email reads
 * it: a boundary followed by other text is not one, so that a boundary
 * that starts another, "b3" and "b32", cannot be mistaken for it). */
static int
boundary_match(const struct frame *f, const struct line *l, int *close)
{
	size_t i = 2 + f->blen;

	if (l->len != (long long)l->nkeep || l->nkeep < i ||
	    memcmp(l->keep + 2, f->boundary, f->blen) != 0)
		return 0;
	*close = l->nkeep >= i + 2 && l->keep[i] == '-' && l->keep[i + 1] == '-';
	for (i += *close ? 2 : 0; i < l->nkeep; i++)
		if (l->keep[i] != ' ' && l->keep[i] != '\t')
			return 0;
	return 1;
}

/* The frame whose boundary the line is, innermost first, or -1. */
static int
find_delimiter(struct walk *w, int *close)
{
	const struct line *l = &w->line;
	size_t i;

	if (l->nkeep < 2 || l->keep[0] != '-' || l->keep[1] != '-')
		return -1;
	for (i = w->n; i-- > 0;)
		if (w->st[i].ent.kind == MIME_MULTIPART &&
		    w->st[i].state != ST_EPILOGUE &&
		    boundary_match(&w->st[i], l, close))
			return (int)i;
	return -1;
}

static int
on_delimiter(struct walk *w, size_t level, int close)
{
	const struct line *l = &w->line;
	long long at = l->off - 2;
	struct frame *f;
	int r;

	if (l->len > MIME_LINE_MAX)
		return err_set(w->e, EX_DATAERR, "a MIME boundary line is %lld "
		    "octets long, over the %d SMTP allows (RFC 5321 "
		    "4.5.3.1.6): remove its padding", l->len, MIME_LINE_MAX);
	while (w->n - 1 > level)
		if ((r = end_top(w, at)) != 0)
			return r;
	f = top_frame(w);
	if (f->state == ST_PREAMBLE)
		f->ent.pre_end = max_ll(f->ent.pre_start, at);
	if (close) {
		f->state = ST_EPILOGUE;
		f->ent.epi_start = f->ent.epi_end = line_end(l);
	} else {
		f->state = ST_PARTS;
		push(w, line_end(l));
	}
	return 0;
}

static int
is_header_line(const struct frame *f, const struct line *l)
{
	if (l->nkeep > 0 && (l->keep[0] == ' ' || l->keep[0] == '\t'))
		return f->fields;
	return hdr_is_field(l->keep, l->nkeep);
}

static int
header_line(struct walk *w, struct frame *f)
{
	const struct line *l = &w->line;

	f->fields = 1;
	f->ent.hlongest = max_ll(f->ent.hlongest, l->len);
	if (line_end(l) - f->ent.hstart > MIME_HEADER_MAX)
		return err_set(w->e, EX_DATAERR, "a MIME part header is larger "
		    "than %d bytes", MIME_HEADER_MAX);
	return 0;
}

static void
body_line(struct frame *f, const struct line *l)
{
	struct mime_entity *m = &f->ent;

	if (f->state == ST_BODY) {
		m->longest = max_ll(m->longest, l->len);
		m->eightbit |= l->eightbit;
		m->bad_utf8 |= l->u.bad || l->u.need > 0;
	} else if (f->state == ST_PREAMBLE) {
		m->pre_longest = max_ll(m->pre_longest, l->len);
	} else if (f->state == ST_EPILOGUE) {
		m->epi_longest = max_ll(m->epi_longest, l->len);
	}
}

static int
on_line(struct walk *w)
{
	const struct line *l = &w->line;
	struct frame *f;
	int level, close, r;

	for (;;) {
		if ((level = find_delimiter(w, &close)) >= 0)
			return on_delimiter(w, (size_t)level, close);
		f = top_frame(w);
		if (f->state != ST_HEADER) {
			body_line(f, l);
			return 0;
		}
		if (l->len == 0)
			return header_done(w, f, line_end(l));
		if (is_header_line(f, l))
			return header_line(w, f);
		/* the body starts with this line: judge it there */
		if ((r = header_done(w, f, l->off)) != 0)
			return r;
	}
}

static int
scan_chunk(struct walk *w, const char *p, size_t n, long long pos)
{
	const char *nl;
	size_t k;
	int r;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		k = nl ? (size_t)(nl - p) : n;
		line_add(&w->line, p, k);
		if (nl == NULL)
			return 0;
		if (line_ends(&w->line)) {
			if ((r = on_line(w)) != 0)
				return r;
			line_start(&w->line, pos + (long long)k + 1);
		} else {
			line_add(&w->line, "\n", 1);	/* a bare LF is data */
		}
		p += k + 1;
		n -= k + 1;
		pos += (long long)k + 1;
	}
	return 0;
}

static int
walk_lines(struct walk *w)
{
	char *chunk = xmalloc(CHUNK);
	long long pos = w->off;
	size_t n;
	int r = 0;

	line_start(&w->line, pos);
	while (r == 0 && pos < w->end) {
		n = w->end - pos < CHUNK ? (size_t)(w->end - pos) : CHUNK;
		if ((r = read_at(w->fd, chunk, n, pos, w->e)) == 0)
			r = scan_chunk(w, chunk, n, pos);
		pos += (long long)n;
	}
	if (r == 0 && w->line.len > 0)
		r = on_line(w);
	while (r == 0 && w->n > 0)
		r = end_top(w, w->end);
	free(chunk);
	return r;
}

int
mime_walk(const struct hdrs *top, int fd, long long off, long long len,
    mime_visit_fn fn, void *ctx, struct bm_err *e)
{
	struct walk w;
	struct hdrs copy = *top;	/* hdr_get() wants it mutable; it reads */
	int r;

	memset(&w, 0, sizeof(w));
	w.top = top;
	w.fd = fd;
	w.off = off;
	w.end = off + len;
	w.fn = fn;
	w.ctx = ctx;
	w.e = e;
	w.st = xcalloc(MIME_DEPTH_MAX + 2, sizeof(*w.st));
	push(&w, off);
	if ((r = begin_body(&w, top_frame(&w), &copy)) == 0)
		r = walk_lines(&w);
	buf_free(&w.hb, 0);
	free(w.st);
	return r;
}

/* --------------------------------------------------- header folding */

static int
is_unstructured(const char *name)
{
	static const char *const names[] = { "Subject", "Comments",
	    "Content-Description", "Thread-Topic" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i]) == 0)
			return 1;
	return 0;
}

/* Whether the word looks like an RFC 2047 encoded-word. */
static int
is_encoded_word(const char *p, size_t n)
{
	size_t i, q = 0;

	if (n < 8 || p[0] != '=' || p[1] != '?' || p[n - 2] != '?' ||
	    p[n - 1] != '=')
		return 0;
	for (i = 0; i < n; i++)
		q += p[i] == '?';
	return q >= 4;
}

/* Whether the whitespace sp and word w cannot share a line with
 * anything, even after the name when the word is the first. */
static int
word_too_long(size_t sp, size_t w, size_t namelen, int first)
{
	return (first && sp == 0 ? namelen + 1 : sp) + w > MIME_LINE_MAX;
}

/* payload as encoded-words ("B" encoding, each within 75 characters
 * and whole UTF-8 characters, RFC 2047 2 and 5), one space apart. */
static void
encode_words(const char *p, size_t n, struct buf *out)
{
	int u8 = utf8_valid(p, n);
	const char *cs = u8 ? "utf-8" : "unknown-8bit";
	size_t per = (75 - 7 - strlen(cs)) / 4 * 3, k, i, j;
	unsigned char g[3];

	for (i = 0; i < n; i += k) {
		k = n - i < per ? n - i : per;
		while (u8 && i + k < n && k > 1 &&
		    ((unsigned char)p[i + k] & 0xc0) == 0x80)
			k--;
		buf_addf(out, "%s=?%s?b?", i ? " " : "", cs);
		for (j = 0; j < k; j += 3) {
			memset(g, 0, sizeof(g));
			memcpy(g, p + i + j, k - j < 3 ? k - j : 3);
			buf_addc(out, b64[g[0] >> 2]);
			buf_addc(out, b64[((g[0] & 3) << 4) | (g[1] >> 4)]);
			buf_addc(out, k - j > 1 ?
			    b64[((g[1] & 15) << 2) | (g[2] >> 6)] : '=');
			buf_addc(out, k - j > 2 ? b64[g[2] & 63] : '=');
		}
		buf_adds(out, "?=");
	}
}

/*
 * The unfolded value u with each word too long for a line replaced by
 * encoded-words.  Readers drop the whitespace between two encoded-words
 * (RFC 2047 6.2), so whitespace next to another encoded-word goes inside
 * the encoded text and a single space takes its place.
 */
static char *
encode_long_words(const char *u, size_t namelen)
{
	struct buf b = BUF_INIT, pay = BUF_INIT;
	const char *p = u, *np;
	size_t sp, w, nsp, nw;
	int prev_ew = 0, absorbed = 0, next_ew;

	buf_add(&b, "", 0);
	while (*p) {
		sp = strspn(p, " \t");
		w = strcspn(p + sp, " \t");
		np = p + sp + w;
		nsp = strspn(np, " \t");
		nw = strcspn(np + nsp, " \t");
		if (!word_too_long(sp, w, namelen, p == u)) {
			buf_add(&b, absorbed ? " " : p, absorbed ? 1 : sp);
			buf_add(&b, p + sp, w);
			prev_ew = is_encoded_word(p + sp, w);
			absorbed = 0;
			p = np;
			continue;
		}
		next_ew = nw > 0 && (is_encoded_word(np + nsp, nw) ||
		    word_too_long(nsp, nw, namelen, 0));
		buf_reset(&pay);
		if (absorbed || (prev_ew && sp > 0))
			buf_add(&b, " ", 1);
		else
			buf_add(&b, p, sp);
		if (!absorbed && prev_ew)
			buf_add(&pay, p, sp);
		buf_add(&pay, p + sp, w);
		if (next_ew)
			buf_add(&pay, np, nsp);
		encode_words(pay.data, pay.len, &b);
		prev_ew = 1;
		absorbed = next_ew;
		p = np;
	}
	buf_free(&pay, 0);
	return buf_steal(&b);
}

static int
fold_field(struct hdr *f, struct bm_err *e)
{
	size_t len = hdr_longest_line(f);
	char *u;

	if (len <= MIME_LINE_MAX || hdr_refold(f, MIME_LINE_MAX) == 0)
		return 0;
	if (is_unstructured(f->name)) {
		u = hdr_unfold(f->value);
		free(f->value);
		f->value = encode_long_words(u, strlen(f->name));
		free(u);
		if (hdr_refold(f, MIME_LINE_MAX) == 0)
			return 0;
	}
	return err_set(e, EX_DATAERR, "the %.60s: header has a line of %zu "
	    "octets that cannot be folded within the %d SMTP allows (RFC "
	    "5322 2.1.1): shorten it", f->name, len, MIME_LINE_MAX);
}

int
mime_fold_header(struct hdrs *h, struct bm_err *e)
{
	size_t i;
	int r;

	for (i = 0; i < h->n; i++)
		if ((r = fold_field(&h->v[i], e)) != 0)
			return r;
	return 0;
}

/* ------------------------------------------------------------ planning */

enum { EDIT_HEADER, EDIT_QP, EDIT_BASE64, EDIT_REWRAP64, EDIT_REWRAPQP,
    EDIT_BREAK };

#define FLAG_MIME 1     /* a Content-Transfer-Encoding was set inside */
#define FLAG_HEADER 2   /* the header is rewritten, so it ends with the
                           empty line that parts it from an encapsulated
                           message whose own header gets fields */

struct edit {
	long long start, end;   /* the input range replaced */
	int depth;              /* orders insertions at the same place */
	int how;
	/* EDIT_HEADER: what the header gets */
	int cte;                /* MIME_CTE_QP or _BASE64, else NONE */
	const char *charset;    /* add "Content-Type: text/plain; charset=" */
	int mime_version;       /* add "MIME-Version: 1.0" when missing */
};

struct mime_plan {
	int fd;
	long long off, len;
	struct edit *v;
	size_t n, cap;
	struct edit top;        /* for the message's own header */
	struct bm_err *e;
};

static int
add_edit(struct mime_plan *p, const struct edit *ed)
{
	if (p->n == EDITS_MAX)
		return err_set(p->e, EX_DATAERR, "more than %d MIME parts "
		    "need re-encoding", EDITS_MAX);
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n++] = *ed;
	return 0;
}

static int
add_range(struct mime_plan *p, int how, long long start, long long end,
    int depth)
{
	struct edit ed;

	memset(&ed, 0, sizeof(ed));
	ed.start = start;
	ed.end = end;
	ed.depth = depth;
	ed.how = how;
	return add_edit(p, &ed);
}

/* The charset a text part without Content-Type is declared with. */
static const char *
choose_charset(const struct mime_entity *m)
{
	if (!m->eightbit)
		return "us-ascii";
	return m->bad_utf8 ? "unknown-8bit" : "utf-8";
}

static int
refuse(struct mime_plan *p, const struct mime_entity *m, const char *what,
    const char *fix)
{
	return err_set(p->e, EX_DATAERR, "%s has a line of %lld octets, over "
	    "the %d SMTP allows (RFC 5321 4.5.3.1.6): %s", what, m->longest,
	    MIME_LINE_MAX, fix);
}

static int
refuse_opaque(struct mime_plan *p, const struct mime_entity *m)
{
	char what[200];

	snprintf(what, sizeof(what), "a %s part", m->type);
	if (m->opaque == MIME_OPAQUE_BOUNDARY)
		return refuse(p, m, what, "it has no boundary parameter, give "
		    "it one");
	if (m->opaque == MIME_OPAQUE_DEPTH)
		return refuse(p, m, what, "it is nested too deep to re-encode "
		    "(more than 32 levels)");
	return refuse(p, m, what, "this type may only be 7bit (RFC 2046 5.2), "
	    "shorten the line");
}

/* A leaf with a long line: its body edit, and what its header gets. */
static int
plan_leaf(struct mime_plan *p, struct mime_entity *m, struct edit *h)
{
	char what[200];
	int text = strncmp(m->type, "text/", 5) == 0;

	if (m->opaque != MIME_OPAQUE_NO)
		return refuse_opaque(p, m);
	if (m->cte == MIME_CTE_OTHER) {
		snprintf(what, sizeof(what), "a part with "
		    "Content-Transfer-Encoding %s", m->cte_name);
		return refuse(p, m, what, "bearmail cannot re-encode it, use "
		    "base64 or quoted-printable");
	}
	if (m->cte == MIME_CTE_QP || m->cte == MIME_CTE_BASE64)
		return add_range(p, m->cte == MIME_CTE_QP ? EDIT_REWRAPQP :
		    EDIT_REWRAP64, m->bstart, m->bend, m->depth);
	h->cte = text ? MIME_CTE_QP : MIME_CTE_BASE64;
	if (text && !m->has_ctype)
		h->charset = choose_charset(m);
	m->flags |= FLAG_MIME;
	return add_range(p, text ? EDIT_QP : EDIT_BASE64, m->bstart, m->bend,
	    m->depth);
}

static int
plan_body(struct mime_plan *p, struct mime_entity *m, struct edit *h)
{
	int r = 0;

	if (m->kind == MIME_LEAF && m->longest > MIME_LINE_MAX)
		return plan_leaf(p, m, h);
	if (m->kind != MIME_MULTIPART)
		return 0;
	/* ignored by readers (RFC 2046 5.1.1): broken, not encoded */
	if (m->pre_longest > MIME_LINE_MAX)
		r = add_range(p, EDIT_BREAK, m->pre_start, m->pre_end, m->depth);
	if (r == 0 && m->epi_longest > MIME_LINE_MAX)
		r = add_range(p, EDIT_BREAK, m->epi_start, m->epi_end, m->depth);
	return r;
}

static int
plan_visit(void *ctx, struct mime_entity *m, int end)
{
	struct mime_plan *p = ctx;
	struct edit h;
	int r, message = m->parent == NULL || m->parent->kind == MIME_MESSAGE;

	if (!end)
		return 0;
	memset(&h, 0, sizeof(h));
	h.start = m->hstart;
	h.end = m->bstart;
	h.depth = m->depth;
	h.how = EDIT_HEADER;
	if ((r = plan_body(p, m, &h)) != 0)
		return r;
	if ((m->flags & FLAG_MIME) && message && !m->has_mime_version)
		h.mime_version = 1;
	if (m->parent != NULL)
		m->parent->flags |= m->flags & FLAG_MIME;
	if (m->parent == NULL) {
		p->top = h;
		return 0;
	}
	if (!h.cte && !h.charset && !h.mime_version &&
	    m->hlongest <= MIME_LINE_MAX && !(m->flags & FLAG_HEADER))
		return 0;
	if (m->parent->kind == MIME_MESSAGE)
		m->parent->flags |= FLAG_HEADER;
	return add_edit(p, &h);
}

static int
edit_cmp(const void *a, const void *b)
{
	const struct edit *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->depth - y->depth;
}

int
mime_plan(const struct hdrs *top, int fd, long long off, long long len,
    struct mime_plan **out, struct bm_err *e)
{
	struct mime_plan *p = xcalloc(1, sizeof(*p));
	int r;

	*out = NULL;
	p->fd = fd;
	p->off = off;
	p->len = len;
	p->e = e;
	r = mime_walk(top, fd, off, len, plan_visit, p, e);
	if (r != 0 || (p->n == 0 && !p->top.cte && !p->top.mime_version)) {
		mime_plan_free(p);
		return r;
	}
	p->e = NULL;	/* for the walk only */
	qsort(p->v, p->n, sizeof(*p->v), edit_cmp);
	*out = p;
	return 0;
}

void
mime_plan_free(struct mime_plan *p)
{
	if (p == NULL)
		return;
	free(p->v);
	free(p);
}

/* ---------------------------------------------------------- encoders */

struct enc {
	int how;
	size_t col;             /* octets in the output line */
	int soft;               /* the output line follows a soft break */
	int dash;               /* EDIT_BREAK: the line starts with "-" */
	int ws;                 /* QP: a space or tab held back, or 0 */
	int cr;                 /* a CR held back */
	unsigned char p1, p2;   /* the octets before, this line */
	unsigned char g[3];     /* base64: the group being filled */
	size_t ng;
	unsigned char last[2];  /* the last two input octets */
	int failed;             /* QP re-wrap found no place to break */
};

static void
qp_put(struct enc *c, unsigned char ch, int literal, struct buf *out)
{
	size_t n = literal ? 1 : 3;

	if (c->col + n > QP_COLS - 1) {
		buf_add(out, "=\r\n", 3);
		c->col = 0;
		c->soft = 1;
	}
	/* "--" opening a line could be taken for a boundary */
	if (literal && ch == '-' && c->col == 0 && c->soft)
		literal = 0, n = 3;
	if (literal)
		buf_addc(out, (char)ch);
	else
		buf_addf(out, "=%02X", ch);
	c->col += n;
}

static void
qp_flush_ws(struct enc *c, int literal, struct buf *out)
{
	if (c->ws)
		qp_put(c, (unsigned char)c->ws, literal, out);
	c->ws = 0;
}

static void
qp_octet(struct enc *c, unsigned char ch, struct buf *out)
{
	if (c->cr) {
		c->cr = 0;
		if (ch == '\n') {
			qp_flush_ws(c, 0, out);   /* trailing: encoded */
			buf_add(out, "\r\n", 2);
			c->col = 0;
			c->soft = 0;
			return;
		}
		qp_flush_ws(c, 1, out);
		qp_put(c, '\r', 0, out);
	}
	if (ch == '\r') {
		c->cr = 1;
		return;
	}
	qp_flush_ws(c, 1, out);
	if (ch == ' ' || ch == '\t')
		c->ws = ch;
	else
		qp_put(c, ch, ch >= 33 && ch <= 126 && ch != '=', out);
}

/*
 * Quoted-printable that is too long: soft breaks are inserted, nothing
 * else changes, so every reader decodes what it did before.  Never right
 * after "=" or "=X", nor between two whitespace octets (the run might be
 * trailing, which readers drop).
 */
static void
rewrap_octet(struct enc *c, unsigned char ch, struct buf *out)
{
	int ws = ch == ' ' || ch == '\t';
	int pws = c->p1 == ' ' || c->p1 == '\t';

	if (c->cr) {
		c->cr = 0;
		if (ch == '\n') {
			buf_add(out, "\r\n", 2);
			c->col = 0;
			c->soft = 0;
			c->p1 = c->p2 = 0;
			return;
		}
		buf_addc(out, '\r');
		c->col++;
		c->p2 = c->p1;
		c->p1 = '\r';
	}
	if (ch == '\r') {
		c->cr = 1;
		return;
	}
	if (c->col >= QP_COLS - 3 && c->p1 != '=' && c->p2 != '=' &&
	    !(ws && pws)) {
		buf_add(out, "=\r\n", 3);
		c->col = 0;
		c->soft = 1;
	}
	if (c->col + 3 > MIME_LINE_MAX - 1)
		c->failed = 1;
	if (ch == '-' && c->col == 0 && c->soft) {
		buf_add(out, "=2D", 3);
		c->col += 3;
	} else {
		buf_addc(out, (char)ch);
		c->col++;
	}
	c->p2 = c->p1;
	c->p1 = ch;
}

static void
b64_char(struct enc *c, char ch, struct buf *out)
{
	if (c->col == B64_COLS) {
		buf_add(out, "\r\n", 2);
		c->col = 0;
	}
	buf_addc(out, ch);
	c->col++;
}

static void
b64_group(struct enc *c, struct buf *out)
{
	unsigned char *g = c->g;

	if (c->ng < 3)
		memset(g + c->ng, 0, 3 - c->ng);
	b64_char(c, b64[g[0] >> 2], out);
	b64_char(c, b64[((g[0] & 3) << 4) | (g[1] >> 4)], out);
	b64_char(c, c->ng > 1 ? b64[((g[1] & 15) << 2) | (g[2] >> 6)] : '=',
	    out);
	b64_char(c, c->ng > 2 ? b64[g[2] & 63] : '=', out);
	c->ng = 0;
}

static void
b64_octet(struct enc *c, unsigned char ch, struct buf *out)
{
	c->g[c->ng++] = ch;
	if (c->ng == 3)
		b64_group(c, out);
}

/* Base64 that is too long: the alphabet and the padding, re-wrapped;
 * what readers ignore (RFC 2045 6.8) is dropped. */
static void
rewrap64_octet(struct enc *c, unsigned char ch, struct buf *out)
{
	if (ch == '=' || (ch != '\0' && ch < 128 && strchr(b64, ch) != NULL))
		b64_char(c, (char)ch, out);
}

/*
 * A preamble or epilogue line past BREAK_FROM is broken before an octet
 * that is not "-", so the next line is no boundary; at the limit, with a
 * space.  The line it leaves is at least BREAK_FROM long: a boundary only
 * if it ends in whitespace (a boundary is at most MIME_BOUNDARY_MAX), so a
 * line that starts with "-" is never broken after whitespace.
 */
static void
break_octet(struct enc *c, unsigned char ch, struct buf *out)
{
	int after_ws = c->dash && (c->p1 == ' ' || c->p1 == '\t');

	if (ch == '\r' || ch == '\n') {
		if (ch == '\n')
			c->col = 0;
		buf_addc(out, (char)ch);
		return;
	}
	if (c->col == 0)
		c->dash = ch == '-';
	if (c->col >= MIME_LINE_MAX && after_ws) {
		c->failed = 1;
	} else if (c->col >= MIME_LINE_MAX) {
		buf_add(out, ch == '-' ? "\r\n " : "\r\n", ch == '-' ? 3 : 2);
		c->col = ch == '-';
		c->dash = 0;
	} else if (c->col >= BREAK_FROM && ch != '-' && !after_ws) {
		buf_add(out, "\r\n", 2);
		c->col = 0;
		c->dash = 0;
	}
	buf_addc(out, (char)ch);
	c->col++;
	c->p1 = ch;
}

static void
enc_feed(struct enc *c, const char *p, size_t n, struct buf *out)
{
	size_t i;
	unsigned char ch;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)p[i];
		c->last[0] = c->last[1];
		c->last[1] = ch;
		if (c->how == EDIT_QP)
			qp_octet(c, ch, out);
		else if (c->how == EDIT_BASE64)
			b64_octet(c, ch, out);
		else if (c->how == EDIT_REWRAP64)
			rewrap64_octet(c, ch, out);
		else if (c->how == EDIT_REWRAPQP)
			rewrap_octet(c, ch, out);
		else
			break_octet(c, ch, out);
	}
}

static void
enc_finish(struct enc *c, struct buf *out)
{
	int crlf = c->last[0] == '\r' && c->last[1] == '\n';

	if (c->how == EDIT_QP) {
		if (c->cr) {
			qp_flush_ws(c, 1, out);
			qp_put(c, '\r', 0, out);
		}
		qp_flush_ws(c, 0, out);
	} else if (c->how == EDIT_REWRAPQP && c->cr) {
		buf_addc(out, '\r');
	}
	if (c->how == EDIT_BASE64 && c->ng > 0)
		b64_group(c, out);
	/* base64 lines end as the part's last line did */
	if ((c->how == EDIT_BASE64 || c->how == EDIT_REWRAP64) && crlf &&
	    c->col > 0)
		buf_add(out, "\r\n", 2);
}

/* ----------------------------------------------------------- applying */

static int
copy_range(int fd, long long from, long long to, struct out *o)
{
	char *chunk = xmalloc(CHUNK);
	size_t n;
	int r = 0;

	while (r == 0 && from < to) {
		n = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
		if ((r = read_at(fd, chunk, n, from, o->e)) == 0) {
			buf_add(&o->b, chunk, n);
			r = out_maybe_flush(o);
		}
		from += (long long)n;
	}
	free(chunk);
	return r;
}

static int
encode_range(const struct mime_plan *p, const struct edit *ed,
    struct out *o)
{
	char *chunk = xmalloc(CHUNK);
	long long from = ed->start;
	struct enc c;
	size_t n;
	int r = 0;

	memset(&c, 0, sizeof(c));
	c.how = ed->how;
	while (r == 0 && from < ed->end) {
		n = ed->end - from < CHUNK ? (size_t)(ed->end - from) : CHUNK;
		if ((r = read_at(p->fd, chunk, n, from, o->e)) == 0) {
			enc_feed(&c, chunk, n, &o->b);
			r = out_maybe_flush(o);
		}
		from += (long long)n;
	}
	enc_finish(&c, &o->b);
	free(chunk);
	if (r == 0 && c.failed && c.how == EDIT_BREAK)
		r = err_set(o->e, EX_DATAERR, "a MIME preamble or epilogue line "
		    "starts with '-' and has a run of whitespace that cannot be "
		    "broken within the %d octets SMTP allows: shorten it",
		    MIME_LINE_MAX);
	else if (r == 0 && c.failed)
		r = err_set(o->e, EX_DATAERR, "a quoted-printable part has a "
		    "line that cannot be re-wrapped within the %d octets SMTP "
		    "allows (a run of '=' or of whitespace): re-encode it",
		    MIME_LINE_MAX);
	return r;
}

/* What an entity's header gets: MIME-Version, Content-Type, then the
 * Content-Transfer-Encoding in place of any there was. */
static void
edit_fields(struct hdrs *h, const struct edit *ed)
{
	char *v;

	if (ed->mime_version && hdr_get(h, "MIME-Version") == NULL)
		hdr_append(h, "MIME-Version", "1.0");
	if (ed->charset != NULL && hdr_get(h, "Content-Type") == NULL) {
		v = xasprintf("text/plain; charset=%s", ed->charset);
		hdr_append(h, "Content-Type", v);
		free(v);
	}
	if (ed->cte == MIME_CTE_NONE)
		return;
	hdr_remove_all(h, "Content-Transfer-Encoding");
	hdr_append(h, "Content-Transfer-Encoding", ed->cte == MIME_CTE_QP ?
	    "quoted-printable" : "base64");
}

static int
edit_header(const struct mime_plan *p, const struct edit *ed, struct out *o)
{
	struct hdrs h = HDRS_INIT;
	struct buf b = BUF_INIT;
	size_t consumed = 0;
	int r;

	if ((r = read_range(p->fd, ed->start, ed->end, &b, o->e)) != 0)
		goto out;
	hdr_parse(b.data, b.len, &h, &consumed);
	edit_fields(&h, ed);
	if ((r = mime_fold_header(&h, o->e)) != 0)
		goto out;
	hdr_write(&h, &o->b);
	/* never the case (the walk read it as header); kept, not lost */
	buf_add(&o->b, b.data + consumed, b.len - consumed);
	r = out_maybe_flush(o);
out:
	hdr_free(&h);
	buf_free(&b, 0);
	return r;
}

int
mime_apply(const struct mime_plan *p, struct hdrs *top, int out_fd,
    long long *out_len, int *eightbit, struct bm_err *e)
{
	struct out o = { out_fd, BUF_INIT, 0, 0, e };
	long long at = p->off;
	size_t i;
	int r = 0;

	edit_fields(top, &p->top);
	for (i = 0; r == 0 && i < p->n; i++) {
		if ((r = copy_range(p->fd, at, p->v[i].start, &o)) != 0)
			break;
		r = p->v[i].how == EDIT_HEADER ? edit_header(p, &p->v[i], &o) :
		    encode_range(p, &p->v[i], &o);
		at = p->v[i].end;
	}
	if (r == 0)
		r = copy_range(p->fd, at, p->off + p->len, &o);
	if (r == 0)
		r = out_flush(&o);
	*out_len = o.total;
	*eightbit = o.eightbit;
	buf_free(&o.b, 0);
	return r;
}

/* ----------------------------------------------------------- decoding */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One quoted-printable line (CRLF not included): trailing whitespace is
 * dropped, a final "=" is a soft break. */
static void
qp_decode_line(const char *p, size_t n, int crlf, struct buf *out)
{
	size_t i;
	int soft;

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	soft = n > 0 && p[n - 1] == '=';
	if (soft)
		n--;
	for (i = 0; i < n; i++) {
		if (p[i] == '=' && i + 2 < n && hexval(p[i + 1]) >= 0 &&
		    hexval(p[i + 2]) >= 0) {
			buf_addc(out, (char)(hexval(p[i + 1]) * 16 +
			    hexval(p[i + 2])));
			i += 2;
		} else {
			buf_addc(out, p[i]);
		}
	}
	if (crlf && !soft)
		buf_add(out, "\r\n", 2);
}

static void
qp_decode(const char *p, size_t n, struct buf *out)
{
	const char *end = p + n, *nl;

	while (p < end) {
		nl = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (nl == NULL) {
			qp_decode_line(p, (size_t)(end - p), 0, out);
			return;
		}
		qp_decode_line(p, (size_t)(nl - p), 1, out);
		p = nl + 2;
	}
}

static void
b64_decode(const char *p, size_t n, struct buf *out)
{
	unsigned long acc = 0;
	const char *q;
	size_t i;
	int bits = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\0' || (q = strchr(b64, p[i])) == NULL)
			continue;
		acc = (acc << 6) | (unsigned long)(q - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_addc(out, (char)((acc >> bits) & 0xff));
		}
	}
}

void
mime_decode(int cte, const char *p, size_t n, struct buf *out)
{
	buf_add(out, "", 0);
	if (cte == MIME_CTE_QP)
		qp_decode(p, n, out);
	else if (cte == MIME_CTE_BASE64)
		b64_decode(p, n, out);
	else
		buf_add(out, p, n);
}
