/*
 * address - RFC 5322 address-list parsing (3.4 and the obsolete syntax of
 * 4.4: routes, phrases with dots, CFWS anywhere; RFC 2047 encoded-words kept
 * whole), RFC 5321 Mailbox validation (4.1.2, 4.5.3.1 length limits;
 * RFC 6531 UTF-8) and the recipient list.
 *
 * A value is first cut into tokens (atoms, quoted strings, domain literals,
 * comments, specials), then parsed element by element.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "util.h"

#define LOCAL_MAX 64
#define DOMAIN_MAX 255
#define MAILBOX_MAX 254
#define LABEL_MAX 63

enum tok_type { T_END, T_ATOM, T_QSTR, T_DLIT, T_COMMENT, T_SPECIAL };

struct tok {
	enum tok_type type;
	size_t start, end;     /* the token's bytes in the source */
};

struct toks {
	const char *src;
	struct tok *v;
	size_t n, cap;
};

/* ------------------------------------------------------------ lexing */

static int
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80 ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
is_ctl(unsigned char c)
{
	return (c < 32 && !is_wsp(c)) || c == 127;
}

static void
tok_push(struct toks *t, enum tok_type type, size_t start, size_t end)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n].type = type;
	t->v[t->n].start = start;
	t->v[t->n].end = end;
	t->n++;
}

/* End of a quoted string or domain literal opened at s[i]; 0 if unclosed. */
static size_t
scan_quoted(const char *s, size_t i, char close)
{
	for (i++; s[i] != '\0'; i++) {
		if (is_ctl((unsigned char)s[i]))
			return 0;
		if (s[i] == '\\' && s[i + 1] != '\0')
			i++;
		else if (s[i] == close)
			return i + 1;
		else if (close == ']' && s[i] == '[')
			return 0;
	}
	return 0;
}

/* End of the (nested) comment opened at s[i]; 0 if unclosed. */
static size_t
scan_comment(const char *s, size_t i)
{
	int depth = 0;

	for (; s[i] != '\0'; i++) {
		if (is_ctl((unsigned char)s[i]))
			return 0;
		if (s[i] == '\\' && s[i + 1] != '\0')
			i++;
		else if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && --depth == 0)
			return i + 1;
	}
	return 0;
}

/* End of an RFC 2047 encoded-word at s[i] ("=?cs?e?text?="), or 0. */
static size_t
scan_encoded_word(const char *s, size_t i)
{
	size_t j = i + 2;
	int q = 0;

	if (s[i] != '=' || s[i + 1] != '?')
		return 0;
	for (; s[j] != '\0' && !is_wsp((unsigned char)s[j]) &&
	    !is_ctl((unsigned char)s[j]); j++) {
		if (s[j] == '?' && ++q == 3 && s[j + 1] == '=')
			return j + 2;
	}
	return 0;
}

static size_t
scan_atom(const char *s, size_t i)
{
	while (is_atext((unsigned char)s[i]) || s[i] == '.')
		i++;
	return i;
}

/* Cut src into tokens; -1 on an unclosed quote/comment/literal or a CTL. */
static int
tokenize(const char *src, struct toks *t)
{
	size_t i = 0, e;
	unsigned char c;

	t->src = src;
	while ((c = (unsigned char)src[i]) != '\0') {
		if (is_wsp(c)) {
			i++;
			continue;
		}
		if (c == '"' || c == '[')
			e = scan_quoted(src, i, c == '"' ? '"' : ']');
		else if (c == '(')
			e = scan_comment(src, i);
		else if (strchr("<>@,:;", c) != NULL)
			e = i + 1;
		else if ((e = scan_encoded_word(src, i)) == 0)
			e = scan_atom(src, i);
		if (e <= i)
			return -1;
		tok_push(t, c == '"' ? T_QSTR : c == '[' ? T_DLIT :
		    c == '(' ? T_COMMENT : strchr("<>@,:;", c) ? T_SPECIAL :
		    T_ATOM, i, e);
		i = e;
	}
	tok_push(t, T_END, i, i);
	return 0;
}

/* ----------------------------------------------------------- parsing */

struct parser {
	struct toks t;
	size_t i;                  /* the current token */
	struct addr_list out;
};

static size_t
skip_comments(const struct parser *p, size_t i)
{
	while (p->t.v[i].type == T_COMMENT)
		i++;
	return i;
}

static int
is_special(const struct parser *p, size_t i, char c)
{
	return p->t.v[i].type == T_SPECIAL && p->t.src[p->t.v[i].start] == c;
}

/* The current significant token is the special c: consume it. */
static int
eat(struct parser *p, char c)
{
	size_t i = skip_comments(p, p->i);

	if (!is_special(p, i, c))
		return 0;
	p->i = i + 1;
	return 1;
}

static int
is_element_end(const struct parser *p, size_t i)
{
	return p->t.v[i].type == T_END || is_special(p, i, ',') ||
	    is_special(p, i, ';');
}

/*
 * What the element at p->i is: 'g' group (a ':' before any '<' or '@'),
 * 'n' name-addr (a '<'), else 'a' addr-spec.
 */
static int
element_kind(const struct parser *p)
{
	size_t i;
	int seen_at = 0, seen_lt = 0;

	for (i = p->i; !is_element_end(p, i); i++) {
		if (is_special(p, i, '<'))
			seen_lt = 1;
		else if (is_special(p, i, '@'))
			seen_at = 1;
		else if (is_special(p, i, ':') && !seen_at && !seen_lt)
			return 'g';
	}
	return seen_lt ? 'n' : 'a';
}

/*
 * Append the words (atoms, quoted strings, literals) from p->i to the
 * first special, joined without the CFWS between them; adjacent words
 * must meet at a '.' (obs-local-part, obs-domain).  -1 if there are none.
 */
static int
join_words(struct parser *p, struct buf *b, int allow_dlit)
{
	size_t n = 0, i;
	const struct tok *k;

	for (i = skip_comments(p, p->i); ; i = skip_comments(p, i + 1)) {
		k = &p->t.v[i];
		if (k->type != T_ATOM && k->type != T_QSTR &&
		    !(allow_dlit && k->type == T_DLIT))
			break;
		if (n > 0 && b->data[b->len - 1] != '.' &&
		    p->t.src[k->start] != '.')
			return -1;
		buf_add(b, p->t.src + k->start, k->end - k->start);
		n++;
	}
	p->i = i;
	return n > 0 ? 0 : -1;
}

/* addr-spec (or a bare local part) into a new string; NULL on error. */
static char *
parse_addr_spec(struct parser *p)
{
	struct buf b = BUF_INIT;

	if (join_words(p, &b, 0) != 0)
		goto fail;
	if (eat(p, '@')) {
		buf_addc(&b, '@');
		if (join_words(p, &b, 1) != 0)
			goto fail;
	}
	if (!addr_valid_mailbox(b.data, 1))
		goto fail;
	return buf_steal(&b);
fail:
	buf_free(&b, 0);
	return NULL;
}

/* Raw text of tokens [from, to) with the ends trimmed; NULL if empty. */
static char *
raw_text(const struct parser *p, size_t from, size_t to)
{
	char *s, *t, *r;

	if (from >= to)
		return NULL;
	s = xstrndup(p->t.src + p->t.v[from].start,
	    p->t.v[to - 1].end - p->t.v[from].start);
	t = str_trim(s);
	r = *t ? xstrdup(t) : NULL;
	free(s);
	return r;
}

/* The first non-empty comment in tokens [from, to), as a display name. */
static char *
comment_name(const struct parser *p, size_t from, size_t to)
{
	size_t i;
	char *s;

	for (i = from; i < to; i++) {
		if (p->t.v[i].type != T_COMMENT)
			continue;
		s = raw_text(p, i, i + 1);
		if (s != NULL && strlen(s) > 2) {
			char *inner = xstrndup(s + 1, strlen(s) - 2);
			char *t = str_trim(inner), *r = *t ? xstrdup(t) : NULL;
			free(inner);
			free(s);
			if (r)
				return r;
			continue;
		}
		free(s);
	}
	return NULL;
}

/* Skip an obs-route "@a,@b:" inside angle brackets. */
static int
skip_route(struct parser *p)
{
	size_t i = skip_comments(p, p->i);

	if (!is_special(p, i, '@'))
		return 0;
	for (; !is_special(p, i, ':'); i++)
		if (p->t.v[i].type == T_END || is_special(p, i, '>') ||
		    is_special(p, i, '<') || is_special(p, i, ';'))
			return -1;
	p->i = i + 1;
	return 0;
}

/* name-addr: [display-name] "<" [route] addr-spec ">". */
static int
parse_name_addr(struct parser *p)
{
	size_t start = p->i, i;
	char *display, *addr;

	for (i = start; !is_special(p, i, '<'); i++)
		if (p->t.v[i].type == T_SPECIAL && !is_special(p, i, '@'))
			return -1;	/* ':' or '>' in a display name */
	p->i = i + 1;
	if (skip_route(p) != 0 || (addr = parse_addr_spec(p)) == NULL)
		return -1;
	if (!eat(p, '>')) {
		free(addr);
		return -1;
	}
	display = raw_text(p, start, i);
	addr_list_add(&p->out, display, addr);
	free(display);
	free(addr);
	return 0;
}

/* addr-spec with its comment as the display name ("root (Cron Daemon)"). */
static int
parse_bare_mailbox(struct parser *p)
{
	size_t start = p->i, end;
	char *addr, *display;

	if ((addr = parse_addr_spec(p)) == NULL)
		return -1;
	end = skip_comments(p, p->i);
	display = comment_name(p, start, end);
	p->i = end;
	addr_list_add(&p->out, display, addr);
	free(display);
	free(addr);
	return 0;
}

static int
parse_mailbox(struct parser *p)
{
	switch (element_kind(p)) {
	case 'n':
		return parse_name_addr(p);
	case 'a':
		return parse_bare_mailbox(p);
	default:
		return -1;		/* a group inside a group */
	}
}

/* group: display-name ":" [mailbox-list] ";" (a missing ';' at the end is
 * forgiven: "undisclosed-recipients:" is common). */
static int
parse_group(struct parser *p)
{
	while (!is_special(p, p->i, ':'))
		p->i++;
	p->i++;
	for (;;) {
		if (eat(p, ';') || p->t.v[skip_comments(p, p->i)].type == T_END)
			return 0;
		if (eat(p, ','))
			continue;
		if (parse_mailbox(p) != 0)
			return -1;
		p->i = skip_comments(p, p->i);
		if (!is_special(p, p->i, ',') && !is_special(p, p->i, ';') &&
		    p->t.v[p->i].type != T_END)
			return -1;
	}
}

static int
parse_list(struct parser *p)
{
	int r;

	int group;

	for (;;) {
		if (p->t.v[skip_comments(p, p->i)].type == T_END)
			return 0;
		if (eat(p, ','))
			continue;
		group = element_kind(p) == 'g';
		r = group ? parse_group(p) : parse_mailbox(p);
		if (r != 0)
			return -1;
		p->i = skip_comments(p, p->i);
		/* the ',' after a group's ';' is often forgotten: forgive it */
		if (p->t.v[p->i].type != T_END && !eat(p, ',') && !group)
			return -1;
	}
}

static void
list_move(struct addr_list *from, struct addr_list *to)
{
	size_t i;

	for (i = 0; i < from->n; i++)
		addr_list_add(to, from->v[i].display, from->v[i].addr);
}

int
addr_parse_list(const char *value, struct addr_list *out)
{
	struct parser p;
	int r = -1;

	memset(&p, 0, sizeof(p));
	if (value == NULL || tokenize(value, &p.t) != 0)
		goto out;
	if (parse_list(&p) != 0)
		goto out;
	list_move(&p.out, out);
	r = 0;
out:
	free(p.t.v);
	addr_list_free(&p.out);
	return r;
}

int
addr_parse_argv(const char *word, struct addr_list *out)
{
	const char *c;

	for (c = word; *c; c++)
		if (*c == '\r' || *c == '\n' || is_ctl((unsigned char)*c))
			return -1;
	return addr_parse_list(word, out);
}

/* -------------------------------------------------------- validation */

/* Length of the local part at s (a quoted string, or up to '@'); 0 if bad. */
static size_t
local_len(const char *s)
{
	size_t i;

	if (s[0] != '"')
		return strcspn(s, "@");
	for (i = 1; s[i] != '\0'; i++) {
		if (s[i] == '\\' && s[i + 1] != '\0')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return 0;
}

static int
valid_dot_string(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.' && s[i + 1] == '.')
			return 0;
		if (s[i] != '.' && !is_atext((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* RFC 5321 Quoted-string: qtextSMTP / quoted-pairSMTP (plus UTF-8). */
static int
valid_quoted(const char *s, size_t n)
{
	size_t i;
	unsigned char c;

	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return 0;
	for (i = 1; i + 1 < n; i++) {
		c = (unsigned char)s[i];
		if (c == '\\') {
			c = (unsigned char)s[++i];
			if (i + 1 >= n || c < 32 || c == 127)
				return 0;
		} else if (c < 32 || c == 127 || c == '"') {
			return 0;
		}
	}
	return 1;
}

static int
valid_label(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c >= 0x80))
			return 0;
	}
	return 1;
}

static int
valid_literal(const char *d, size_t n)
{
	char tmp[64];
	unsigned char bin[16];
	int af = AF_INET;
	size_t off = 1;

	if (n < 3 || d[n - 1] != ']' || n - 2 >= sizeof(tmp))
		return 0;
	if (n > 6 && strncasecmp(d + 1, "IPv6:", 5) == 0) {
		af = AF_INET6;
		off = 6;
	}
	memcpy(tmp, d + off, n - off - 1);
	tmp[n - off - 1] = '\0';
	return inet_pton(af, tmp, bin) == 1;
}

static int
valid_domain(const char *d)
{
	size_t n = strlen(d), l;

	if (n == 0 || n > DOMAIN_MAX)
		return 0;
	if (d[0] == '[')
		return valid_literal(d, n);
	for (;;) {
		l = strcspn(d, ".");
		if (!valid_label(d, l))
			return 0;
		if (d[l] == '\0')
			return 1;
		d += l + 1;
	}
}

int
addr_valid_mailbox(const char *s, int allow_bare)
{
	size_t l;

	if (s == NULL || *s == '\0' || strlen(s) > MAILBOX_MAX)
		return 0;
	/* RFC 6531: an address beyond ASCII is UTF-8, or it is no address */
	if (!utf8_valid(s, strlen(s)))
		return 0;
	if ((l = local_len(s)) == 0 || l > LOCAL_MAX)
		return 0;
	if (s[0] == '"' ? !valid_quoted(s, l) : !valid_dot_string(s, l))
		return 0;
	if (s[l] == '\0')
		return allow_bare != 0;
	return s[l] == '@' && valid_domain(s + l + 1);
}

const char *
addr_domain(const char *addr)
{
	size_t l;

	if (addr == NULL || (l = local_len(addr)) == 0 || addr[l] != '@')
		return NULL;
	return addr + l + 1;
}

/* -------------------------------------------------------------- lists */

void
addr_list_add(struct addr_list *l, const char *display, const char *addr)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].display = display ? xstrdup(display) : NULL;
	l->v[l->n].addr = xstrdup(addr);
	l->n++;
}

int
addr_list_has(const struct addr_list *l, const char *addr)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].addr, addr) == 0)
			return 1;
	return 0;
}

int
addr_list_add_unique(struct addr_list *l, const char *display,
    const char *addr)
{
	if (addr_list_has(l, addr))
		return 0;
	addr_list_add(l, display, addr);
	return 1;
}

void
addr_list_free(struct addr_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].display);
		free(l->v[i].addr);
	}
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* ------------------------------------------------------------ format */

/* Whether s is exactly one well-formed quoted string. */
static int
is_one_quoted(const char *s)
{
	size_t n = strlen(s);

	return n >= 2 && s[0] == '"' && local_len(s) == n;
}

/* Whether every word of s is an atom or an encoded-word. */
static int
is_phrase(const char *s)
{
	size_t i = 0, e;

	while (s[i] != '\0') {
		if (s[i] == ' ' || s[i] == '\t') {
			i++;
			continue;
		}
		e = scan_encoded_word(s, i);
		if (e == 0)
			for (e = i; is_atext((unsigned char)s[e]); e++)
				;
		if (e == i || (s[e] != '\0' && s[e] != ' ' && s[e] != '\t'))
			return 0;
		i = e;
	}
	return 1;
}

char *
addr_format(const char *display, const char *addr)
{
	struct buf b = BUF_INIT;
	const char *c;

	if (display == NULL || display[strspn(display, " \t\r\n")] == '\0')
		return xstrdup(addr);
	if (is_one_quoted(display) || is_phrase(display)) {
		buf_adds(&b, display);
	} else {
		buf_addc(&b, '"');
		for (c = display; *c; c++) {
			if (*c == '"' || *c == '\\')
				buf_addc(&b, '\\');
			buf_addc(&b, *c);
		}
		buf_addc(&b, '"');
	}
	/* no control character survives: a quoted string may not hold one */
	for (c = b.data; *c; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			b.data[c - b.data] = ' ';
	buf_addf(&b, " <%s>", addr);
	return buf_steal(&b);
}
