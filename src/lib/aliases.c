/*
 * aliases - aliases(5) parsing and expansion for a null client: names are
 * mapped, recursively, to addresses with a domain; program, file and
 * :include: targets are refused with a message rather than ignored.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aliases.h"

#define ALIASES_MAX_FILE (8 * 1024 * 1024)
#define ALIASES_MAX_DEPTH 32

struct alias {
	char *key;          /* lower case */
	char **targets;
	size_t ntargets;
	int line;
};

struct aliases {
	struct alias *v;
	size_t n, cap;
};

/* ------------------------------------------------------------ parsing */

static void
add_target(struct alias *al, const char *p, size_t n)
{
	char *t = xstrndup(p, n), *s = str_trim(t);

	if (*s != '\0') {
		al->targets = xrealloc(al->targets,
		    (al->ntargets + 1) * sizeof(*al->targets));
		al->targets[al->ntargets++] = xstrdup(s);
	}
	free(t);
}

/* Split "a, \"b, c\", d" at commas outside double quotes. */
static void
split_targets(struct alias *al, const char *s)
{
	const char *start = s;
	int quoted = 0;

	for (; *s; s++) {
		if (*s == '\\' && quoted && s[1] != '\0')
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (*s == ',' && !quoted) {
			add_target(al, start, (size_t)(s - start));
			start = s + 1;
		}
	}
	add_target(al, start, (size_t)(s - start));
}

static void
free_alias(struct alias *al)
{
	size_t i;

	for (i = 0; i < al->ntargets; i++)
		free(al->targets[i]);
	free(al->targets);
	free(al->key);
}

/* One logical line "key: targets" that started at line. */
static int
parse_entry(struct aliases *a, const char *text, const char *name, int line,
    struct bm_err *e)
{
	const char *colon = strchr(text, ':');
	struct alias al;
	char *key, *k, *c;

	if (colon == NULL)
		return err_set(e, EX_CONFIG, "%s:%d: expected \"name: "
		    "address, ...\"", name, line);
	key = xstrndup(text, (size_t)(colon - text));
	k = str_trim(key);
	for (c = k; *c; c++) {
		if (*c == ' ' || *c == '\t' || *c == '"' || *c == '@') {
			free(key);
			return err_set(e, EX_CONFIG, "%s:%d: bad alias name",
			    name, line);
		}
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	}
	memset(&al, 0, sizeof(al));
	al.key = xstrdup(k);
	al.line = line;
	free(key);
	split_targets(&al, colon + 1);
	if (*al.key == '\0' || al.ntargets == 0) {
		int empty = *al.key == '\0';
		free_alias(&al);
		return err_set(e, EX_CONFIG, "%s:%d: %s", name, line, empty ?
		    "empty alias name" : "alias without a target");
	}
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n++] = al;
	return 0;
}

static int
is_blank_or_comment(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
		i++;
	return i == n || p[i] == '#';
}

/* Add the logical line in cur (if any) as an entry. */
static int
flush_entry(struct aliases *a, struct buf *cur, const char *name, int line,
    struct bm_err *e)
{
	int r = 0;

	if (cur->len > 0)
		r = parse_entry(a, cur->data, name, line, e);
	buf_reset(cur);
	return r;
}

int
aliases_parse(const char *text, const char *name, struct aliases **out,
    struct bm_err *e)
{
	struct aliases *a = xcalloc(1, sizeof(*a));
	struct buf cur = BUF_INIT;
	const char *p = text, *nl;
	int line = 0, start = 0, r = 0;
	size_t n;

	for (; *p != '\0' && r == 0; p = *nl ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		n = (size_t)(nl - p);
		line++;
		if (is_blank_or_comment(p, n))
			continue;
		if (*p == ' ' || *p == '\t') {
			if (cur.len == 0) {
				r = err_set(e, EX_CONFIG, "%s:%d: continuation "
				    "line without an alias", name, line);
				break;
			}
			buf_addc(&cur, ' ');
		} else {
			r = flush_entry(a, &cur, name, start, e);
			start = line;
		}
		buf_add(&cur, p, n);
	}
	if (r == 0)
		r = flush_entry(a, &cur, name, start, e);
	buf_free(&cur, 0);
	if (r != 0) {
		aliases_free(a);
		return r;
	}
	*out = a;
	return 0;
}

int
aliases_load(const char *path, struct aliases **out, struct bm_err *e)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	r = file_read(path, ALIASES_MAX_FILE, FILE_MISSING_OK, &text, &len, e);
	if (r != 0) {
		/* whatever stands in its place, the file is configuration */
		if (e != NULL)
			e->code = EX_CONFIG;
		return EX_CONFIG;
	}
	if (text == NULL) {
		*out = xcalloc(1, sizeof(**out));
		return 0;
	}
	if (memchr(text, '\0', len) != NULL)
		r = err_set(e, EX_CONFIG, "%s holds a NUL byte, so it is not an "
		    "aliases file: correct the path or the file", path);
	else
		r = aliases_parse(text, path, out, e);
	free(text);
	return r;
}

size_t
aliases_count(const struct aliases *a)
{
	return a ? a->n : 0;
}

void
aliases_free(struct aliases *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++)
		free_alias(&a->v[i]);
	free(a->v);
	free(a);
}

/* ---------------------------------------------------------- expansion */

struct expansion {
	const struct aliases *a;
	const char *path;
	struct addr_list *out;
	struct bm_err *e;
	const char *chain[ALIASES_MAX_DEPTH];
	size_t depth;
	int in_default;       /* expanding the default: entry */
};

static const struct alias *
lookup(const struct aliases *a, const char *name)
{
	size_t i;

	for (i = 0; a != NULL && i < a->n; i++)
		if (strcasecmp(a->v[i].key, name) == 0)
			return &a->v[i];
	return NULL;
}

static int
no_alias(struct expansion *x, const char *name)
{
	return err_set(x->e, EX_NOUSER, "no alias for \"%s\": add a line "
	    "\"%s: you@example.com\" to %s (or a default: entry)", name, name,
	    x->path);
}

static int
loop_error(struct expansion *x, const char *name)
{
	struct buf b = BUF_INIT;
	size_t i;
	int r;

	for (i = 0; i < x->depth; i++)
		buf_addf(&b, "%s -> ", x->chain[i]);
	buf_adds(&b, name);
	r = err_set(x->e, EX_CONFIG, "alias loop: %s (in %s)", b.data, x->path);
	buf_free(&b, 0);
	return r;
}

/* The kind of unsupported target t is, or NULL when it is supported. */
static const char *
unsupported(const char *t)
{
	if (t[0] == '"')
		t++;
	if (t[0] == '|')
		return "a command";
	if (t[0] == '/')
		return "a file";
	if (strncasecmp(t, ":include:", 9) == 0)
		return "an :include: file";
	return NULL;
}

static int expand_name(struct expansion *x, const char *name);

static int
expand_target(struct expansion *x, const struct alias *al, const char *key,
    const char *t)
{
	const char *kind = unsupported(t);

	if (kind != NULL)
		return err_set(x->e, EX_CONFIG, "%s:%d: alias \"%s\" delivers "
		    "to %s (%s), which bearmail cannot do: use an address",
		    x->path, al->line, al->key, kind, t);
	if (t[0] == '\\')
		return no_alias(x, t + 1);	/* "\name": a local mailbox */
	if (addr_domain(t) != NULL) {
		if (!addr_valid_mailbox(t, 0))
			return err_set(x->e, EX_CONFIG, "%s:%d: alias \"%s\": "
			    "bad address \"%s\"", x->path, al->line, al->key,
			    t);
		addr_list_add_unique(x->out, NULL, t);
		return 0;
	}
	if (strcasecmp(t, key) == 0)
		return no_alias(x, t);		/* a name mapping to itself */
	return expand_name(x, t);
}

static int
expand_name(struct expansion *x, const char *name)
{
	const struct alias *al = lookup(x->a, name);
	size_t i;
	int r = 0, used_default = 0;

	for (i = 0; i < x->depth; i++)
		if (strcasecmp(x->chain[i], name) == 0)
			return loop_error(x, name);
	if (x->depth == ALIASES_MAX_DEPTH)
		return err_set(x->e, EX_CONFIG, "%s: aliases nested deeper than "
		    "%d at \"%s\"", x->path, ALIASES_MAX_DEPTH, name);
	if (al == NULL) {
		/* the catch-all, once: what it names must resolve by itself */
		if (x->in_default || (al = lookup(x->a, "default")) == NULL)
			return no_alias(x, name);
		x->in_default = used_default = 1;
	}
	x->chain[x->depth++] = name;
	for (i = 0; i < al->ntargets && r == 0; i++)
		r = expand_target(x, al, name, al->targets[i]);
	x->depth--;
	if (used_default)
		x->in_default = 0;
	return r;
}

int
aliases_expand(const struct aliases *a, const char *path_for_msgs,
    const char *name, struct addr_list *out, struct bm_err *e)
{
	struct expansion x;

	memset(&x, 0, sizeof(x));
	x.a = a;
	x.path = path_for_msgs ? path_for_msgs : "/etc/aliases";
	x.out = out;
	x.e = e;
	if (name == NULL || *name == '\0')
		return err_set(e, EX_NOUSER, "empty recipient name");
	return expand_name(&x, name);
}
