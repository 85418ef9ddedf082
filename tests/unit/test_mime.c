/*
 * test_mime - the line-length keeper: Content-Type and
 * Content-Transfer-Encoding parsing, header folding (and RFC 2047 for
 * words no fold can shorten), and re-encoding of whole messages, each
 * compared byte for byte with what it must become and then checked for
 * the promises: no line over 998 octets, the same structure, every part
 * decoding to what it did.  Inputs are written compactly: "{N*TEXT}" is
 * TEXT N times (nesting allowed).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "header.h"
#include "mime.h"
#include "tests/unit/tap.h"

/* ---------------------------------------------------------- helpers */

static const char *expand_into(const char *p, struct buf *out);

/* "{N*TEXT}" at p (after the brace): TEXT N times; returns after it. */
static const char *
expand_repeat(const char *p, struct buf *out)
{
	struct buf one = BUF_INIT;
	long n = strtol(p, (char **)&p, 10);

	buf_add(&one, "", 0);
	p = expand_into(p + 1, &one);	/* past the '*' */
	while (n-- > 0)
		buf_add(out, one.data, one.len);
	buf_free(&one, 0);
	return p;
}

/* Expand up to a closing brace (or the end); returns after it. */
static const char *
expand_into(const char *p, struct buf *out)
{
	while (*p != '\0' && *p != '}') {
		if (*p == '{')
			p = expand_repeat(p + 1, out);
		else
			buf_addc(out, *p++);
	}
	return *p == '}' ? p + 1 : p;
}

static char *
expand(const char *s, size_t *len)
{
	struct buf b = BUF_INIT;

	buf_add(&b, "", 0);
	expand_into(s, &b);
	if (len != NULL)
		*len = b.len;
	return buf_steal(&b);
}

static int
mem_fd(const char *p, size_t n)
{
	int fd = memfd_create("test_mime", MFD_CLOEXEC);

	if (fd < 0 || write_all(fd, p, n) != 0)
		abort();
	return fd;
}

static char *
fd_bytes(int fd, long long off, long long len)
{
	char *b = xmalloc((size_t)len + 1);

	if (len > 0 && pread(fd, b, (size_t)len, (off_t)off) != (ssize_t)len)
		abort();
	b[len] = '\0';
	return b;
}

/* s for a test name: CR, LF and tab escaped, at most 40 octets shown. */
static const char *
show(const char *s)
{
	static char out[200];
	size_t i, j = 0;

	for (i = 0; s[i] != '\0' && i < 40 && j + 3 < sizeof(out); i++) {
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\t') {
			out[j++] = '\\';
			out[j++] = s[i] == '\r' ? 'r' : s[i] == '\n' ? 'n' : 't';
		} else {
			out[j++] = s[i];
		}
	}
	out[j] = '\0';
	return out;
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

/* What a walk saw: "depth kind type;" per entity, and each leaf's
 * decoded body, NUL-separated lengths kept in a second buffer. */
struct seen {
	int fd;
	struct buf shape;
	struct buf bodies;
};

static int
see(void *ctx, struct mime_entity *m, int end)
{
	struct seen *s = ctx;
	char *raw;

	if (!end) {
		buf_addf(&s->shape, "%d %d %s;", m->depth, m->kind, m->type);
		return 0;
	}
	if (m->kind != MIME_LEAF)
		return 0;
	raw = fd_bytes(s->fd, m->bstart, m->bend - m->bstart);
	buf_addf(&s->bodies, "[%d:", m->depth);
	mime_decode(m->cte, raw, (size_t)(m->bend - m->bstart), &s->bodies);
	buf_adds(&s->bodies, "]");
	free(raw);
	return 0;
}

/* Parse a whole message held in fd and walk it. */
static int
walk_message(int fd, const char *msg, size_t n, struct seen *s)
{
	struct hdrs h = HDRS_INIT;
	struct bm_err e = { 0 };
	size_t consumed;
	int r;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	buf_add(&s->shape, "", 0);
	buf_add(&s->bodies, "", 0);
	hdr_parse(msg, n, &h, &consumed);
	r = mime_walk(&h, fd, (long long)consumed, (long long)(n - consumed),
	    see, s, &e);
	hdr_free(&h);
	return r;
}

static void
seen_free(struct seen *s)
{
	buf_free(&s->shape, 0);
	buf_free(&s->bodies, 0);
}

/* ------------------------------------------------- field value parsing */

struct ctype_case {
	const char *in;
	int valid;
	const char *type, *boundary;
	int charset;
};

static const struct ctype_case ctype_cases[] = {
	{ " text/plain", 1, "text/plain", NULL, 0 },
	{ " Text/HTML; charset=\"utf-8\"", 1, "text/html", NULL, 1 },
	{ " multipart/mixed; boundary=\"----=_Part_1\"", 1, "multipart/mixed",
	    "----=_Part_1", 0 },
	{ " multipart/alternative;\r\n\tboundary=b1", 1,
	    "multipart/alternative", "b1", 0 },
	{ " multipart/mixed (a comment) ; (c) boundary = \"a\\\"b\"", 1,
	    "multipart/mixed", "a\"b", 0 },
	{ " multipart/mixed; boundary=first; boundary=second", 1,
	    "multipart/mixed", "first", 0 },
	{ " multipart/mixed; boundary=\"\"", 1, "multipart/mixed", NULL, 0 },
	{ " multipart/mixed; name=x; boundary=ok", 1, "multipart/mixed", "ok",
	    0 },
	{ " multipart/mixed; junk; boundary=lost", 1, "multipart/mixed", NULL,
	    0 },
	{ " text", 0, "", NULL, 0 },
	{ " /plain", 0, "", NULL, 0 },
	{ "", 0, "", NULL, 0 },
	{ " text/plain; CHARSET=us-ascii", 1, "text/plain", NULL, 1 },
	{ " text / plain", 1, "text/plain", NULL, 0 },
	{ " (unclosed comment text/plain", 0, "", NULL, 0 },
};

static void
test_ctype(void)
{
	struct mime_ctype ct;
	size_t i;
	int r;

	for (i = 0; i < sizeof(ctype_cases) / sizeof(ctype_cases[0]); i++) {
		const struct ctype_case *t = &ctype_cases[i];

		r = mime_parse_ctype(t->in, &ct);
		is_int(r, t->valid ? 0 : -1, "ctype %zu: result", i);
		is_str(ct.type, t->type, "ctype %zu '%s': type", i, show(t->in));
		is_str(ct.has_boundary ? ct.boundary : NULL, t->boundary,
		    "ctype %zu: boundary", i);
		is_int(ct.has_charset, t->charset, "ctype %zu: charset", i);
	}
}

struct cte_case {
	const char *in;
	int want;
};

static const struct cte_case cte_cases[] = {
	{ " 7bit", MIME_CTE_7BIT }, { " 8BIT", MIME_CTE_8BIT },
	{ " binary", MIME_CTE_BINARY }, { " Quoted-Printable", MIME_CTE_QP },
	{ "\r\n base64 (comment)", MIME_CTE_BASE64 },
	{ " x-uuencode", MIME_CTE_OTHER }, { " base64x", MIME_CTE_OTHER },
	{ " ", MIME_CTE_7BIT }, { "", MIME_CTE_7BIT },
};

static void
test_cte(void)
{
	size_t i;

	for (i = 0; i < sizeof(cte_cases) / sizeof(cte_cases[0]); i++)
		is_int(mime_parse_cte(cte_cases[i].in), cte_cases[i].want,
		    "cte '%s'", show(cte_cases[i].in));
}

/* ---------------------------------------------------- header folding */

/* What a reader makes of an unstructured value (RFC 2047 6.2): "B"
 * encoded-words decoded, whitespace between two of them dropped. */
static void
decode_2047(const char *u, struct buf *out)
{
	const char *p = u, *q;
	size_t sp, w;
	int prev_ew = 0, ew;
	struct buf ws = BUF_INIT;

	buf_add(out, "", 0);
	while (*p) {
		sp = strspn(p, " \t");
		w = strcspn(p + sp, " \t");
		q = p + sp;
		ew = w > 8 && strncmp(q, "=?", 2) == 0 &&
		    strncmp(q + w - 2, "?=", 2) == 0 &&
		    (q = memchr(q + 2, '?', w - 2)) != NULL &&
		    strncasecmp(q, "?b?", 3) == 0;
		if (!(ew && prev_ew))
			buf_add(out, p, sp);
		if (ew)
			mime_decode(MIME_CTE_BASE64, q + 3,
			    (size_t)(p + sp + w - 2 - (q + 3)), out);
		else
			buf_add(out, p + sp, w);
		prev_ew = ew && w > 0;
		p += sp + w;
	}
	buf_free(&ws, 0);
}

struct fold_case {
	const char *name;
	const char *field;      /* expanded */
	const char *value;      /* expanded, raw (leading space kept) */
	int code;
	const char *want;       /* expanded, or NULL: only the promises */
	int encoded;            /* encoded-words expected */
};

static const struct fold_case fold_cases[] = {
	{ "short field untouched", "Subject", " {200*a}", 0, " {200*a}", 0 },
	{ "folded lines kept", "To", " a@x,\r\n b@x", 0, " a@x,\r\n b@x", 0 },
	{ "998 fits", "X-Long", " {990*a} {20*b}", 0, " {990*a}\r\n {20*b}",
	    0 },
	{ "999 folds after the name", "X-Long", " {991*a} {20*b}", 0,
	    "\r\n {991*a}\r\n {20*b}", 0 },
	{ "words folded", "Subject", "{300* abc}", 0, NULL, 0 },
	{ "references", "References", "{40* <0123456789abcdef@mail.example>}",
	    0, NULL, 0 },
	{ "tab whitespace", "X-Tabs", "{300*\tab}", 0, NULL, 0 },
	{ "message-id cannot fold", "Message-ID", " <{1200*x}@example.com>",
	    EX_DATAERR, "Message-ID: header has a line of", 0 },
	{ "name too long", "{1000*N}", " v", EX_DATAERR, "header has a line", 0 },
	{ "ascii word encoded", "Subject", " {1200*s}", 0,
	    " =?utf-8?b?{15*c3Nz}?={25*\r\n =?utf-8?b?{15*c3Nz}?=}\r\n "
	    "=?utf-8?b?{10*c3Nz}?=", 1 },
	{ "cjk word encoded", "Subject", " {400*\xe4\xb8\xad}", 0, NULL, 1 },
	{ "two-byte chars not split", "Subject", " x{600*\xc3\xa9}", 0, NULL,
	    1 },
	{ "not utf-8: unknown-8bit", "Subject", " {1000*\xe9}", 0, NULL, 1 },
	{ "encoded-word before", "Subject", " =?utf-8?b?YQ==?= {1000*s} end",
	    0, NULL, 1 },
	{ "encoded-word after", "Subject", " start {1000*s} =?utf-8?b?YQ==?=",
	    0, NULL, 1 },
	{ "two long words", "Subject", " {1000*s} {1000*t}", 0, NULL, 1 },
	{ "first word without a space", "Subject", "{1000*s}", 0, NULL, 1 },
	{ "whitespace run too long", "Subject", " a{1200* }b", EX_DATAERR,
	    "Subject: header", 0 },
	{ "comments field", "Comments", " {1100*c}", 0, NULL, 1 },
	{ "x- field not encoded", "X-Note", " {1100*c}", EX_DATAERR,
	    "X-Note: header", 0 },
};

static void
run_fold(const struct fold_case *t)
{
	struct hdrs h = HDRS_INIT;
	struct bm_err e = { 0 };
	struct buf got = BUF_INIT, want = BUF_INIT;
	char *name = expand(t->field, NULL), *value = expand(t->value, NULL);
	char *before = hdr_unfold(value), *after, *w;
	char *field = xasprintf("%s:%s\r\n\r\n", name, value);
	size_t consumed;
	int r;

	hdr_parse(field, strlen(field), &h, &consumed);
	free(field);
	if (!is_int((long long)h.n, 1, "fold %s: one field", t->name))
		goto out;
	r = mime_fold_header(&h, &e);
	is_int(r, t->code, "fold %s: code", t->name);
	if (r != 0) {
		ok(strstr(e.msg, t->want) != NULL, "fold %s: '%s'", t->name,
		    e.msg);
		goto out;
	}
	ok(hdr_longest_line(&h.v[0]) <= MIME_LINE_MAX, "fold %s: lines "
	    "within %d (%zu)", t->name, MIME_LINE_MAX,
	    hdr_longest_line(&h.v[0]));
	if (t->want != NULL) {
		w = expand(t->want, NULL);
		is_str(h.v[0].value, w, "fold %s: value", t->name);
		free(w);
	}
	after = hdr_unfold(h.v[0].value);
	if (t->encoded) {
		decode_2047(before, &want);
		decode_2047(after, &got);
		ok(got.len == want.len && memcmp(got.data, want.data,
		    got.len) == 0 && strstr(after, "=?") != NULL,
		    "fold %s: decodes to what it was", t->name);
	} else {
		is_str(after, before, "fold %s: unfolds to what it was",
		    t->name);
	}
	free(after);
out:
	hdr_free(&h);
	buf_free(&got, 0);
	buf_free(&want, 0);
	free(before);
	free(name);
	free(value);
}

/* -------------------------------------------------------- re-encoding */

#define MP "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
#define QP1000(c) "{13*{75*" c "}=\r\n}{25*" c "}"
#define QPHEAD(cs) "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=" \
	cs "\r\nContent-Transfer-Encoding: quoted-printable\r\n"

struct rcase {
	const char *name;
	const char *in;         /* a whole message, canonical; expanded */
	int code;
	int changed;
	const char *want;       /* the whole result, expanded; or NULL */
	const char *has;        /* or something it must hold */
};

static const struct rcase rcases[] = {
	{ "no long line: untouched", "Subject: s\r\n\r\n{998*a}\r\nb\r\n", 0, 0,
	    NULL, NULL },
	{ "non-mime ascii", "Subject: s\r\n\r\n{1000*a}\r\n", 0, 1,
	    "Subject: s\r\n" QPHEAD("us-ascii") "\r\n" QP1000("a") "\r\n",
	    NULL },
	{ "999 octets is too long", "Subject: s\r\n\r\n{999*a}\r\n", 0, 1,
	    NULL, "quoted-printable" },
	{ "non-mime utf-8", "Subject: s\r\n\r\n{500*\xc3\xa9}\r\n", 0, 1, NULL,
	    "charset=utf-8\r\n" },
	{ "non-mime latin-1", "Subject: s\r\n\r\n{999*\xe9}\r\n", 0, 1, NULL,
	    "charset=unknown-8bit\r\n" },
	{ "no header at all", "\r\n{1000*a}\r\n", 0, 1, NULL,
	    "charset=us-ascii" },
	{ "old 8bit field replaced", "Content-Transfer-Encoding: 8bit\r\n"
	    "Subject: s\r\n\r\n{1000*a}\r\n", 0, 1, "Subject: s\r\n"
	    QPHEAD("us-ascii") "\r\n" QP1000("a") "\r\n", NULL },
	{ "trailing space encoded", "Subject: s\r\n\r\n{1000*a} \r\n", 0, 1,
	    "Subject: s\r\n" QPHEAD("us-ascii") "\r\n" QP1000("a") "=20\r\n",
	    NULL },
	{ "trailing tab encoded", "Subject: s\r\n\r\n{1000*a} \t\r\nx\r\n", 0,
	    1, "Subject: s\r\n" QPHEAD("us-ascii") "\r\n" QP1000("a")
	    " =09\r\nx\r\n", NULL },
	{ "equals signs", "Subject: s\r\n\r\n{999*=}\r\n", 0, 1, "Subject: s"
	    "\r\n" QPHEAD("us-ascii") "\r\n{39*{25*=3D}=\r\n}{24*=3D}\r\n",
	    NULL },
	{ "dash after a soft break", "Subject: s\r\n\r\n{75*a}--b{1000*c}\r\n",
	    0, 1, NULL, "{75*a}=\r\n=2D-b" },
	{ "soft-broken \"--b\" is no boundary", MP "--b\r\n\r\n{1050*x}--b\r\n"
	    "--b--\r\n", 0, 1, NULL, "{75*x}=\r\n=2D-b\r\n--b--\r\n" },
	{ "raw '=41' and a final '='", "Subject: s\r\n\r\n{1000*a}=41 b=\r\n",
	    0, 1, NULL, "=3D41 b=3D\r\n" },
	{ "nul and controls", "Subject: s\r\n\r\n\x01{1000*a}\x7f\r\n", 0, 1,
	    NULL, "\r\n\r\n=01" },
	{ "html with charset", "MIME-Version: 1.0\r\nContent-Type: text/html; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>"
	    "{997*x}\r\n", 0, 1, "MIME-Version: 1.0\r\nContent-Type: text/html; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n<p>{72*x}=\r\n{12*{75*x}=\r\n}{25*x}\r\n", NULL },
	{ "content-type without mime-version", "Content-Type: text/html\r\n\r\n"
	    "{1000*a}\r\n", 0, 1, "Content-Type: text/html\r\nMIME-Version: "
	    "1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	    QP1000("a") "\r\n", NULL },
	{ "7bit that is not", "MIME-Version: 1.0\r\nContent-Type: text/plain; "
	    "charset=iso-8859-1\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
	    "{999*\xe9}\r\n", 0, 1, NULL, "charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9=E9" },
	{ "binary to base64", "MIME-Version: 1.0\r\nContent-Type: application/"
	    "octet-stream\r\n\r\n{1000*a}\r\n", 0, 1, "MIME-Version: 1.0\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n{17*{19*YWFh}\r\n}"
	    "{10*YWFh}YQ0K\r\n", NULL },
	{ "base64 re-wrapped", "MIME-Version: 1.0\r\nContent-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n{250*QUJD}\r\n", 0, 1,
	    "MIME-Version: 1.0\r\nContent-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n{13*{19*QUJD}\r\n}"
	    "{3*QUJD}\r\n", NULL },
	{ "base64 junk dropped", "MIME-Version: 1.0\r\nContent-Type: image/png"
	    "\r\nContent-Transfer-Encoding: base64\r\n\r\n{250*QU-J D}\r\n", 0,
	    1, NULL, "\r\n\r\n{19*QUJD}\r\n" },
	{ "quoted-printable re-wrapped", "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n{1000*a}\r\n",
	    0, 1, "MIME-Version: 1.0\r\nContent-Transfer-Encoding: "
	    "quoted-printable\r\n\r\n{13*{73*a}=\r\n}{51*a}\r\n", NULL },
	{ "qp never splits an escape", "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "{72*a}=41{1000*b}\r\n", 0, 1, "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "{72*a}=41=\r\n{13*{73*b}=\r\n}{51*b}\r\n", NULL },
	{ "qp re-wrapped \"--b\" is no boundary", MP "--b\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n{1022*x}--b\r\n"
	    "--b--\r\n", 0, 1, NULL, "{73*x}=\r\n=2D-b\r\n--b--\r\n" },
	{ "qp dash after a new break", "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "{73*a}--x{1000*c}\r\n", 0, 1, NULL, "{73*a}=\r\n=2D-x" },
	{ "qp whitespace run refused", "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "{72*a}{1000* }x\r\n", EX_DATAERR, 0, NULL, "cannot be re-wrapped" },
	{ "qp trailing whitespace kept unbroken", "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "{72*a}{1000* }\r\n", EX_DATAERR, 0, NULL, "cannot be re-wrapped" },
	{ "qp equals run refused", "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n{1200*=}\r\n",
	    EX_DATAERR, 0, NULL, "cannot be re-wrapped" },
	{ "multipart: only the long part", "MIME-Version: 1.0\r\nContent-Type: "
	    "multipart/alternative; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n"
	    "Content-Type: text/plain\r\n\r\nshort\r\n--b1\r\nContent-Type: "
	    "text/html\r\n\r\n{1000*h}\r\n--b1--\r\nepilogue\r\n", 0, 1,
	    "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; "
	    "boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: "
	    "text/plain\r\n\r\nshort\r\n--b1\r\nContent-Type: text/html\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n" QP1000("h")
	    "\r\n--b1--\r\nepilogue\r\n", NULL },
	{ "multipart part without header", "Content-Type: multipart/mixed; "
	    "boundary=b\r\n\r\n--b\r\n\r\n{1000*z}\r\n--b--\r\n", 0, 1,
	    "Content-Type: multipart/mixed; boundary=b\r\nMIME-Version: 1.0\r\n"
	    "\r\n--b\r\nContent-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n" QP1000("z")
	    "\r\n--b--\r\n", NULL },
	{ "part body without blank line", MP "--b\r\n{1000*z}\r\n--b--\r\n", 0,
	    1, MP "--b\r\nContent-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n" QP1000("z")
	    "\r\n--b--\r\n", NULL },
	{ "attachment to base64", MP "--b\r\nContent-Type: application/pdf\r\n"
	    "\r\n{1000*a}\r\n--b--\r\n", 0, 1, MP "--b\r\nContent-Type: "
	    "application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	    "{17*{19*YWFh}\r\n}{10*YWFh}YQ==\r\n--b--\r\n", NULL },
	{ "part ending in a blank line", MP "--b\r\nContent-Type: application/"
	    "pdf\r\n\r\n{1000*a}\r\n\r\n--b--\r\n", 0, 1, NULL,
	    "{10*YWFh}YQ0K\r\n\r\n--b--\r\n" },
	{ "nested multipart", MP "--b\r\nContent-Type: multipart/alternative; "
	    "boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\n"
	    "t\r\n--inner\r\nContent-Type: text/html\r\n\r\n{2000*h}\r\n"
	    "--inner--\r\n--b\r\nContent-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--b--\r\n", 0, 1,
	    NULL, "--inner\r\nContent-Type: text/html\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n" },
	{ "boundary that starts another", "MIME-Version: 1.0\r\nContent-Type: "
	    "multipart/mixed; boundary=ab\r\n\r\n--ab\r\nContent-Type: "
	    "multipart/alternative; boundary=a\r\n\r\n--a\r\n\r\n{1000*x}\r\n"
	    "--a--\r\n--ab\r\n\r\nlast\r\n--ab--\r\n", 0, 1, NULL,
	    "--a--\r\n--ab\r\n\r\nlast\r\n--ab--\r\n" },
	{ "boundary with padding", MP "--b  \r\n\r\n{1000*x}\r\n--b-- \r\n", 0,
	    1, NULL, "--b  \r\nContent-Type: text/plain; charset=us-ascii" },
	{ "boundary with junk after it: preamble", MP "--b junk\r\n\r\n"
	    "{1000*x}\r\n", 0, 1, MP "--b junk\r\n\r\n{990*x}\r\n{10*x}\r\n",
	    NULL },
	{ "boundary prefix of another", MP "--b\r\nContent-Type: text/plain\r\n"
	    "\r\n--bb\r\n{1000*x}\r\n--b--\r\n", 0, 1, NULL,
	    "quoted-printable\r\n\r\n--bb\r\n{75*x}=" },
	{ "message/rfc822", MP "--b\r\nContent-Type: message/rfc822\r\n\r\n"
	    "Subject: inner\r\n\r\n{1000*m}\r\n--b--\r\n", 0, 1, MP "--b\r\n"
	    "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
	    QPHEAD("us-ascii") "\r\n" QP1000("m") "\r\n--b--\r\n", NULL },
	{ "message/rfc822 encoded: a leaf", MP "--b\r\nContent-Type: message/"
	    "rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{300*QUJD}\r\n"
	    "--b--\r\n", 0, 1, NULL, "\r\n\r\n{19*QUJD}\r\n" },
	{ "digest parts are messages", "MIME-Version: 1.0\r\nContent-Type: "
	    "multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in\r\n\r\n"
	    "{1000*q}\r\n--d--\r\n", 0, 1, NULL, "--d\r\n\r\nSubject: in\r\n"
	    QPHEAD("us-ascii") },
	{ "digest part without a header", "MIME-Version: 1.0\r\nContent-Type: "
	    "multipart/digest; boundary=d\r\n\r\n--d\r\n: in\r\n\r\n{1000*q}"
	    "\r\n--d--\r\n", 0, 1, "MIME-Version: 1.0\r\nContent-Type: "
	    "multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n" QPHEAD("us-ascii")
	    "\r\n: in\r\n\r\n" QP1000("q") "\r\n--d--\r\n", NULL },
	{ "rfc822 part header ended by its body", MP "--b\r\nContent-Type: "
	    "message/rfc822\r\n{1000*m}\r\n--b--\r\n", 0, 1, MP "--b\r\n"
	    "Content-Type: message/rfc822\r\n\r\n" QPHEAD("us-ascii") "\r\n"
	    QP1000("m") "\r\n--b--\r\n", NULL },
	{ "long preamble broken", MP "{1500*p}\r\n--b\r\n\r\nhi\r\n--b--\r\n",
	    0, 1, MP "{990*p}\r\n{510*p}\r\n--b\r\n\r\nhi\r\n--b--\r\n", NULL },
	{ "preamble dashes", MP "{1010*-}x\r\n--b\r\n\r\nhi\r\n--b--\r\n", 0, 1,
	    MP "{998*-}\r\n {12*-}x\r\n--b\r\n\r\nhi\r\n--b--\r\n", NULL },
	{ "preamble break makes no boundary", MP "--b{994* }zz{500*y}\r\n--b\r\n"
	    "\r\nhi\r\n--b--\r\n", 0, 1, MP "--b{994* }z\r\nz{500*y}\r\n--b\r\n"
	    "\r\nhi\r\n--b--\r\n", NULL },
	{ "preamble unbreakable refused", MP "--b{1200* }x\r\n--b\r\n\r\nhi\r\n"
	    "--b--\r\n", EX_DATAERR, 0, NULL, "preamble or epilogue" },
	{ "long epilogue broken", MP "--b\r\n\r\nhi\r\n--b--\r\n{1000*e}\r\n",
	    0, 1, MP "--b\r\n\r\nhi\r\n--b--\r\n{990*e}\r\n{10*e}\r\n", NULL },
	{ "long part header folded", MP "--b\r\nContent-Type: text/plain\r\n"
	    "X-Long:{100* word56789}\r\n\r\nbody\r\n--b--\r\n", 0, 1, NULL,
	    "X-Long:{7* word56789}\r\n{7* word56789}\r\n word56789" },
	{ "unfoldable part header", MP "--b\r\nContent-ID: <{1000*i}>\r\n\r\n"
	    "body\r\n--b--\r\n", EX_DATAERR, 0, NULL, "Content-ID: header" },
	{ "no boundary refused", "MIME-Version: 1.0\r\nContent-Type: multipart/"
	    "mixed\r\n\r\n{1000*x}\r\n", EX_DATAERR, 0, NULL,
	    "a multipart/mixed part has a line of 1000 octets" },
	{ "x-uuencode refused", "MIME-Version: 1.0\r\nContent-Transfer-Encoding:"
	    " x-uuencode\r\n\r\n{1000*x}\r\n", EX_DATAERR, 0, NULL,
	    "Content-Transfer-Encoding x-uuencode has a line" },
	{ "message/partial refused", MP "--b\r\nContent-Type: message/partial; "
	    "id=x; number=1\r\n\r\n{1000*x}\r\n--b--\r\n", EX_DATAERR, 0, NULL,
	    "may only be 7bit" },
	{ "long boundary line refused", MP "--b{1000* }\r\n\r\nx\r\n--b--\r\n",
	    EX_DATAERR, 0, NULL, "boundary line is 1003 octets" },
	{ "part header over 64 KiB refused", MP "--b\r\n{2000*X-Filler: "
	    "0123456789012345678901234567\r\n}\r\n{1000*x}\r\n--b--\r\n",
	    EX_DATAERR, 0, NULL, "MIME part header is larger than 65536" },
	{ "multipart without parts", MP "{1000*x}\r\n", 0, 1, NULL,
	    "{990*x}\r\n{10*x}\r\n" },
	{ "unclosed multipart", MP "--b\r\n\r\n{1000*x}\r\n", 0, 1, NULL,
	    "quoted-printable\r\n\r\n" QP1000("x") "\r\n" },
	{ "bare lf is data", "Subject: s\r\n\r\n{600*a}\n{600*b}\r\n", 0, 1,
	    NULL, "=0A" },
};

/* A message held as header + body, then re-encoded as message.c does. */
static int
reencode(const char *in, size_t n, int fd, struct buf *out, int *changed,
    struct bm_err *e)
{
	struct hdrs h = HDRS_INIT;
	struct mime_plan *p = NULL;
	size_t consumed;
	long long len = 0;
	int ofd = -1, r, eightbit;
	char *body;

	hdr_parse(in, n, &h, &consumed);
	*changed = 0;
	if ((r = mime_fold_header(&h, e)) != 0 ||
	    (r = mime_plan(&h, fd, (long long)consumed,
	    (long long)(n - consumed), &p, e)) != 0 || p == NULL)
		goto out;
	*changed = 1;
	ofd = mem_fd("", 0);
	if ((r = mime_apply(p, &h, ofd, &len, &eightbit, e)) != 0)
		goto out;
	hdr_write(&h, out);
	body = fd_bytes(ofd, 0, len);
	buf_add(out, body, (size_t)len);
	free(body);
out:
	if (ofd >= 0)
		close(ofd);
	mime_plan_free(p);
	hdr_free(&h);
	return r;
}

/* The promises: lines within the limit, same shape, same decoded parts. */
static void
check_promises(const char *name, const char *in, size_t n,
    const struct buf *out)
{
	struct seen a, b;
	int fa = mem_fd(in, n), fb = mem_fd(out->data, out->len);

	ok(longest_line(out->data, out->len) <= MIME_LINE_MAX,
	    "%s: no line over %d (%zu)", name, MIME_LINE_MAX,
	    longest_line(out->data, out->len));
	is_int(walk_message(fa, in, n, &a), 0, "%s: input walks", name);
	is_int(walk_message(fb, out->data, out->len, &b), 0, "%s: output "
	    "walks", name);
	is_str(b.shape.data, a.shape.data, "%s: same structure", name);
	ok(a.bodies.len == b.bodies.len && memcmp(a.bodies.data,
	    b.bodies.data, a.bodies.len) == 0, "%s: parts decode to what "
	    "they were", name);
	seen_free(&a);
	seen_free(&b);
	close(fa);
	close(fb);
}

static void
run_rcase(const struct rcase *t)
{
	struct bm_err e = { 0 };
	struct buf out = BUF_INIT;
	size_t n, wn;
	char *in = expand(t->in, &n), *want = NULL, *has = NULL;
	int fd = mem_fd(in, n), changed, r;

	buf_add(&out, "", 0);
	r = reencode(in, n, fd, &out, &changed, &e);
	is_int(r, t->code, "%s: code", t->name);
	if (r != 0) {
		ok(strstr(e.msg, t->has) != NULL, "%s: '%s'", t->name, e.msg);
		goto out;
	}
	is_int(changed, t->changed, "%s: changed", t->name);
	if (t->want != NULL) {
		want = expand(t->want, &wn);
		ok(out.len == wn && memcmp(out.data, want, wn) == 0,
		    "%s: bytes", t->name);
		if (out.len != wn || memcmp(out.data, want, wn) != 0)
			printf("#   got:  '%s'\n#   want: '%s'\n", out.data,
			    want);
	}
	if (t->has != NULL) {
		has = expand(t->has, NULL);
		ok(strstr(out.data, has) != NULL, "%s: holds '%s'", t->name,
		    show(has));
	}
	if (changed)
		check_promises(t->name, in, n, &out);
out:
	buf_free(&out, 0);
	free(in);
	free(want);
	free(has);
	close(fd);
}

/* Distinct boundaries, 40 levels deep, a long line at the bottom. */
static void
test_depth(void)
{
	struct bm_err e = { 0 };
	struct buf in = BUF_INIT, out = BUF_INIT;
	int i, fd, changed;

	buf_adds(&in, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
	    "boundary=b0\r\n\r\n");
	for (i = 0; i < 40; i++)
		buf_addf(&in, "--b%d\r\nContent-Type: multipart/mixed; "
		    "boundary=b%d\r\n\r\n", i, i + 1);
	buf_addf(&in, "--b40\r\n\r\n%0999d\r\n", 0);
	fd = mem_fd(in.data, in.len);
	is_int(reencode(in.data, in.len, fd, &out, &changed, &e), EX_DATAERR,
	    "40 levels deep: refused");
	ok(strstr(e.msg, "nested too deep") != NULL, "depth: '%s'", e.msg);
	close(fd);
	buf_free(&in, 0);
	buf_free(&out, 0);
}

/* A CRLF split by the 64 KiB reads, just before, on and after: the
 * walk and the encoders carry it across. */
static void
test_chunks(void)
{
	static const int shifts[] = { -2, -1, 0, 1, 2 };
	struct bm_err e = { 0 };
	struct buf in = BUF_INIT, out = BUF_INIT;
	size_t i, body;
	int fd, changed;

	for (i = 0; i < sizeof(shifts) / sizeof(shifts[0]); i++) {
		buf_reset(&in);
		buf_reset(&out);
		buf_adds(&in, "Subject: s\r\n\r\n");
		body = in.len;
		while (in.len < body + 64 * 1024 - 1 + shifts[i])
			buf_addc(&in, 'x');
		buf_adds(&in, "\r\n\xc3\xa9 \r\n");
		fd = mem_fd(in.data, in.len);
		is_int(reencode(in.data, in.len, fd, &out, &changed, &e), 0,
		    "CRLF at 64 KiB %+d: re-encoded", shifts[i]);
		ok(changed && strstr(out.data, "\r\n=C3=A9=20\r\n") != NULL,
		    "CRLF at 64 KiB %+d: the next line intact", shifts[i]);
		check_promises("CRLF at 64 KiB", in.data, in.len, &out);
		close(fd);
	}
	buf_free(&in, 0);
	buf_free(&out, 0);
}

int
main(void)
{
	size_t i;

	test_ctype();
	test_cte();
	for (i = 0; i < sizeof(fold_cases) / sizeof(fold_cases[0]); i++)
		run_fold(&fold_cases[i]);
	for (i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++)
		run_rcase(&rcases[i]);
	test_depth();
	test_chunks();
	return done_testing();
}
