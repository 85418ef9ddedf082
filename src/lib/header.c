/*
 * header - RFC 5322 header fields: field syntax (2.2: printable US-ASCII
 * name but colon, folding per 2.2.3), lookup and edits for bearmail's
 * header rewriting, and folding of generated values within 78 columns.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "header.h"

#define FOLD_COLUMNS 78

/* Length of the line at p (without its CRLF); *next is where the next starts. */
static size_t
line_len(const char *p, size_t len, size_t *next)
{
	size_t i;

	for (i = 0; i + 1 < len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n') {
			*next = i + 2;
			return i;
		}
	*next = len;
	return len;
}

/* The length of the field name when line is "name [WSP] :", else 0. */
static size_t
field_name_len(const char *line, size_t len, size_t *colon)
{
	size_t i, n;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];
		if (ch <= 32 || ch >= 127 || ch == ':')
			break;
	}
	n = i;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;	/* obs-optional: WSP before the colon */
	if (n == 0 || i >= len || line[i] != ':')
		return 0;
	*colon = i;
	return n;
}

int
hdr_is_field(const char *line, size_t len)
{
	size_t colon;

	return field_name_len(line, len, &colon) != 0;
}

static void
hdrs_grow(struct hdrs *h)
{
	if (h->n < h->cap)
		return;
	h->cap = h->cap ? h->cap * 2 : 16;
	h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
}

static void
push_raw(struct hdrs *h, const char *name, size_t nlen, const char *val,
    size_t vlen)
{
	hdrs_grow(h);
	h->v[h->n].name = xstrndup(name, nlen);
	h->v[h->n].value = xmalloc(vlen + 1);
	memcpy(h->v[h->n].value, val, vlen);
	h->v[h->n].value[vlen] = '\0';
	h->n++;
}

static int
is_mbox_from(const char *p, size_t len)
{
	return len >= 5 && memcmp(p, "From ", 5) == 0;
}

int
hdr_parse(const char *data, size_t len, struct hdrs *h, size_t *consumed)
{
	size_t pos = 0, next, ll, nl, colon, end;

	if (data == NULL || h == NULL || consumed == NULL)
		return -1;
	ll = line_len(data, len, &next);
	if (is_mbox_from(data, ll) && field_name_len(data, ll, &colon) == 0)
		pos = next;
	while (pos < len) {
		ll = line_len(data + pos, len - pos, &next);
		if (ll == 0) {			/* the empty line */
			pos += next;
			break;
		}
		if ((nl = field_name_len(data + pos, ll, &colon)) == 0)
			break;			/* the body starts here */
		end = pos + next;
		while (end < len && (data[end] == ' ' || data[end] == '\t')) {
			line_len(data + end, len - end, &next);
			end += next;
		}
		/* value: after the colon up to the last line's CRLF */
		ll = end - pos - colon - 1;
		if (end >= 2 && data[end - 1] == '\n' && data[end - 2] == '\r')
			ll -= 2;
		push_raw(h, data + pos, nl, data + pos + colon + 1, ll);
		pos = end;
	}
	*consumed = pos;
	return 0;
}

struct hdr *
hdr_get(struct hdrs *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (strcasecmp(h->v[i].name, name) == 0)
			return &h->v[i];
	return NULL;
}

size_t
hdr_count(struct hdrs *h, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < h->n; i++)
		if (strcasecmp(h->v[i].name, name) == 0)
			n++;
	return n;
}

void
hdr_remove_all(struct hdrs *h, const char *name)
{
	size_t i, j = 0;

	for (i = 0; i < h->n; i++) {
		if (strcasecmp(h->v[i].name, name) == 0) {
			free(h->v[i].name);
			free(h->v[i].value);
		} else {
			h->v[j++] = h->v[i];
		}
	}
	h->n = j;
}

char *
hdr_unfold(const char *value)
{
	size_t i, j = 0, n = strlen(value);
	char *s = xmalloc(n + 1);

	for (i = 0; i < n; i++) {
		if (value[i] == '\r' && value[i + 1] == '\n' &&
		    (value[i + 2] == ' ' || value[i + 2] == '\t')) {
			i++;
			continue;
		}
		s[j++] = value[i];
	}
	s[j] = '\0';
	return s;
}

char *
hdr_unfold_trim(const char *value)
{
	char *u = hdr_unfold(value), *t = str_trim(u), *r = xstrdup(t);

	free(u);
	return r;
}

/* Unfold, then turn any CR or LF left into a space. */
static char *
flatten(const char *value)
{
	char *s = hdr_unfold(value), *p;

	for (p = s; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return s;
}

/*
 * " value" folded before a run of whitespace when the next word would pass
 * FOLD_COLUMNS; a word longer than a line stays whole.
 */
static char *
fold(const char *name, const char *value)
{
	struct buf b = BUF_INIT;
	size_t col = strlen(name) + 2, sp, w, words = 0;
	const char *p = value;

	buf_addc(&b, ' ');
	while (*p) {
		sp = strspn(p, " \t");
		w = strcspn(p + sp, " \t");
		if (w == 0) {			/* trailing whitespace */
			buf_add(&b, p, sp);
			break;
		}
		if (sp > 0 && words > 0 && col + sp + w > FOLD_COLUMNS) {
			buf_add(&b, "\r\n", 2);
			col = 0;
			words = 0;
		}
		buf_add(&b, p, sp + w);
		col += sp + w;
		words++;
		p += sp + w;
	}
	return buf_steal(&b);
}

size_t
hdr_longest_line(const struct hdr *f)
{
	const char *p = f->value, *nl;
	size_t col = strlen(f->name) + 1, longest = 0;

	while ((nl = strstr(p, "\r\n")) != NULL) {
		col += (size_t)(nl - p);
		if (col > longest)
			longest = col;
		col = 0;
		p = nl + 2;
	}
	col += strlen(p);
	return col > longest ? col : longest;
}

/*
 * The unfolded value u (leading whitespace kept) folded before runs of
 * whitespace: at FOLD_COLUMNS once the line holds a word, and right after
 * the name only when the first word would otherwise pass max.
 */
static char *
refold(const char *u, size_t namelen, size_t max)
{
	struct buf b = BUF_INIT;
	size_t col = namelen + 1, sp, w, words = 0;
	const char *p = u;

	buf_add(&b, "", 0);
	while (*p) {
		sp = strspn(p, " \t");
		w = strcspn(p + sp, " \t");
		if (sp > 0 && w > 0 && col + sp + w > FOLD_COLUMNS &&
		    (words > 0 || col + sp + w > max)) {
			buf_add(&b, "\r\n", 2);
			col = 0;
			words = 0;
		}
		buf_add(&b, p, sp + w);
		col += sp + w;
		words += w > 0;
		p += sp + w;
	}
	return buf_steal(&b);
}

int
hdr_refold(struct hdr *f, size_t max)
{
	char *u = hdr_unfold(f->value);

	free(f->value);
	f->value = refold(u, strlen(f->name), max);
	free(u);
	return hdr_longest_line(f) > max ? -1 : 0;
}

static void
make_field(struct hdr *f, const char *name, const char *value)
{
	char *flat = flatten(value);

	f->name = xstrdup(name);
	f->value = fold(name, flat);
	free(flat);
}

void
hdr_append(struct hdrs *h, const char *name, const char *value)
{
	hdrs_grow(h);
	make_field(&h->v[h->n++], name, value);
}

void
hdr_prepend(struct hdrs *h, const char *name, const char *value)
{
	hdrs_grow(h);
	memmove(h->v + 1, h->v, h->n * sizeof(*h->v));
	h->n++;
	make_field(&h->v[0], name, value);
}

void
hdr_set(struct hdrs *h, const char *name, const char *value)
{
	struct hdr *f = hdr_get(h, name);

	if (f == NULL) {
		hdr_append(h, name, value);
		return;
	}
	free(f->name);
	free(f->value);
	make_field(f, name, value);
}

void
hdr_write(const struct hdrs *h, struct buf *out)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		buf_adds(out, h->v[i].name);
		buf_addc(out, ':');
		buf_adds(out, h->v[i].value);
		buf_add(out, "\r\n", 2);
	}
	buf_add(out, "\r\n", 2);
}

void
hdr_free(struct hdrs *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].value);
	}
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
