/*
 * test_aliases - aliases(5) parsing (good and broken files) and expansion
 * (recursion, lists, default:, loops, unsupported targets, missing names),
 * and what loading does with a FIFO, a directory or a device in the file's
 * place.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases.h"
#include "tests/unit/tap.h"

static const char table[] =
    "# /etc/aliases\n"
    "postmaster:    root\n"
    "root: alice@contoso.com\n"
    "Admins: root,\n"
    "  bob@contoso.com, carol\n"
    "\t# a comment between continuation lines\n"
    "\n"
    "carol: carol@fabrikam.example , Alice@Contoso.com\n"
    "loop1: loop2\n"
    "loop2: loop3\n"
    "loop3: loop1\n"
    "self: self\n"
    "selfish: self\n"
    "pipe: \"|/usr/bin/procmail\"\n"
    "pipe2: |/usr/bin/foo\n"
    "file: /var/mail/archive\n"
    "inc: :include:/etc/list\n"
    "local: \\dave\n"
    "nobody-here: ghost\n"
    "bad: not an address@\n"
    "crlf: erin@x.example\r\n"
    "root: ignored@dup.example\n";

struct expand_case {
	const char *name;
	int code;
	const char *want;   /* addresses joined by ' ', or a substring of the
	                       error message */
};

static const struct expand_case expand_cases[] = {
	{ "root", 0, "alice@contoso.com" },
	{ "ROOT", 0, "alice@contoso.com" },
	{ "postmaster", 0, "alice@contoso.com" },
	{ "admins", 0, "alice@contoso.com bob@contoso.com carol@fabrikam.example" },
	{ "carol", 0, "carol@fabrikam.example Alice@Contoso.com" },
	{ "crlf", 0, "erin@x.example" },
	{ "loop1", EX_CONFIG, "alias loop: loop1 -> loop2 -> loop3 -> loop1" },
	{ "self", EX_NOUSER, "no alias for \"self\": add a line \"self: "
	    "you@example.com\" to /etc/aliases (or a default: entry)" },
	{ "selfish", EX_NOUSER, "no alias for \"self\"" },
	{ "pipe", EX_CONFIG, "/etc/aliases:14: alias \"pipe\" delivers to a "
	    "command" },
	{ "pipe2", EX_CONFIG, "a command (|/usr/bin/foo)" },
	{ "file", EX_CONFIG, "a file (/var/mail/archive)" },
	{ "inc", EX_CONFIG, "an :include: file" },
	{ "local", EX_NOUSER, "no alias for \"dave\"" },
	{ "nobody-here", EX_NOUSER, "no alias for \"ghost\"" },
	{ "bad", EX_CONFIG, "bad address \"not an address@\"" },
	{ "unknown", EX_NOUSER, "no alias for \"unknown\": add a line" },
	{ "", EX_NOUSER, "empty" },
};

static void
check_expand(const struct aliases *a, const struct expand_case *t,
    const char *label)
{
	struct addr_list l = ADDR_LIST_INIT;
	struct bm_err e = { 0 };
	struct buf b = BUF_INIT;
	size_t i;
	int r = aliases_expand(a, "/etc/aliases", t->name, &l, &e);

	is_int(r, t->code, "%s expand '%s': code", label, t->name);
	if (t->code == 0) {
		for (i = 0; i < l.n; i++)
			buf_addf(&b, "%s%s", i ? " " : "", l.v[i].addr);
		is_str(b.data, t->want, "%s expand '%s': result", label,
		    t->name);
	} else {
		ok(strstr(e.msg, t->want) != NULL, "%s expand '%s': message "
		    "'%s'", label, t->name, e.msg);
	}
	buf_free(&b, 0);
	addr_list_free(&l);
}

static void
test_expand(void)
{
	struct aliases *a = NULL;
	struct bm_err e = { 0 };
	size_t i;

	is_int(aliases_parse(table, "/etc/aliases", &a, &e), 0, "table parses");
	is_int((long long)aliases_count(a), 18, "entries");
	for (i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++)
		check_expand(a, &expand_cases[i], "table");
	aliases_free(a);
}

static const struct expand_case default_cases[] = {
	{ "root", 0, "ops@x.example" },
	{ "whoever", 0, "catch@x.example" },
	{ "postmaster", 0, "catch@x.example" },
	{ "www-data", 0, "catch@x.example" },
};

static void
test_default(void)
{
	static const char text[] = "root: ops@x.example\n"
	    "default: catch@x.example\n"
	    "postmaster: ghost\n"
	    "www-data: nosuch\n";
	static const char text2[] = "default: nosuch\n";
	static const struct expand_case c2 = { "x", EX_NOUSER,
	    "no alias for \"nosuch\"" };
	struct aliases *a = NULL;
	size_t i;

	is_int(aliases_parse(text, "t", &a, NULL), 0, "default table parses");
	for (i = 0; i < sizeof(default_cases) / sizeof(default_cases[0]); i++)
		check_expand(a, &default_cases[i], "default");
	aliases_free(a);
	is_int(aliases_parse(text2, "t", &a, NULL), 0, "default2 parses");
	check_expand(a, &c2, "default to nowhere");
	aliases_free(a);
}

struct syntax_case {
	const char *text;
	const char *msg;    /* NULL: parses */
};

static const struct syntax_case syntax_cases[] = {
	{ "", NULL },
	{ "# only a comment\n\n", NULL },
	{ "a: b@x", NULL },
	{ "a: \"b, c\"@x, d@y\n", NULL },
	{ "a: b@x\n  \n", NULL },
	{ "no colon here\n", "t:1: expected \"name: address, ...\"" },
	{ "a: b@x\nbad line\n", "t:2: expected" },
	{ "  leading: continuation\n", "t:1: continuation line without" },
	{ ": b@x\n", "t:1: empty alias name" },
	{ "a:\n", "t:1: alias without a target" },
	{ "a: , ,\n", "t:1: alias without a target" },
	{ "a b: c@x\n", "t:1: bad alias name" },
	{ "a@x: c@x\n", "t:1: bad alias name" },
	{ "x: y@z\n\n\nq\n  r\n", "t:4: expected" },
};

static void
test_syntax(void)
{
	size_t i;

	for (i = 0; i < sizeof(syntax_cases) / sizeof(syntax_cases[0]); i++) {
		struct aliases *a = NULL;
		struct bm_err e = { 0 };
		int r = aliases_parse(syntax_cases[i].text, "t", &a, &e);

		if (syntax_cases[i].msg == NULL) {
			is_int(r, 0, "syntax case %zu parses", i);
			aliases_free(a);
		} else {
			ok(r == EX_CONFIG && strstr(e.msg,
			    syntax_cases[i].msg) != NULL,
			    "syntax case %zu: '%s'", i, e.msg);
		}
	}
}

static void
test_load(void)
{
	struct aliases *a = NULL;
	struct bm_err e = { 0 };
	struct addr_list l = ADDR_LIST_INIT;
	char path[] = "/tmp/bm-aliases-XXXXXX";
	int fd;

	is_int(aliases_load("/nonexistent/aliases", &a, &e), 0,
	    "missing file is an empty table");
	is_int((long long)aliases_count(a), 0, "empty");
	is_int(aliases_expand(a, "/nonexistent/aliases", "root", &l, &e),
	    EX_NOUSER, "nothing to expand to");
	aliases_free(a);
	fd = mkstemp(path);
	ok(fd >= 0 && write(fd, "root: r@x.example\nx\n", 20) == 20,
	    "temp file written");
	close(fd);
	ok(aliases_load(path, &a, &e) == EX_CONFIG && strstr(e.msg, path) &&
	    strstr(e.msg, ":2:"), "load reports FILE:LINE: '%s'", e.msg);
	unlink(path);
}

/* What stands at the aliases path, and the message loading gives ('@' is
 * the path).  Each is configuration: EX_CONFIG. */
static const struct {
	const char *name;
	int kind;            /* 'f' FIFO, 'd' directory, 'n' NUL byte, 'l' link */
	const char *msg;
} place_cases[] = {
	{ "a FIFO", 'f', "@ is a FIFO (named pipe), not a regular file: put "
	  "the file itself there or correct the path" },
	{ "a directory", 'd', "@ is a directory, not a regular file: put the "
	  "file itself there or correct the path" },
	{ "a NUL byte", 'n', "@ holds a NUL byte, so it is not an aliases "
	  "file: correct the path or the file" },
	{ "/dev/zero", 'z', "/dev/zero is a character device, not a regular "
	  "file: put the file itself there or correct the path" },
};

static void
on_alarm(int sig)
{
	static const char m[] = "Bail out! aliases_load hung\n";

	(void)sig;
	_exit(write(STDOUT_FILENO, m, sizeof(m) - 1) < 0 ? 2 : 1);
}

/* Make what case i puts at path; returns the path to load. */
static const char *
make_place(size_t i, const char *path)
{
	FILE *f;

	switch (place_cases[i].kind) {
	case 'f':
		return mkfifo(path, 0600) == 0 ? path : NULL;
	case 'd':
		return mkdir(path, 0700) == 0 ? path : NULL;
	case 'n':
		if ((f = fopen(path, "wb")) == NULL ||
		    fwrite("root: a@x\0b: c@x\n", 1, 17, f) != 17 ||
		    fclose(f) != 0)
			return NULL;
		return path;
	}
	return "/dev/zero";
}

static void
test_load_places(void)
{
	char dir[] = "/tmp/bm-aliases-XXXXXX";
	size_t i;

	ok(mkdtemp(dir) != NULL, "temp directory");
	signal(SIGALRM, on_alarm);
	for (i = 0; i < sizeof(place_cases) / sizeof(place_cases[0]); i++) {
		struct aliases *a = NULL;
		struct bm_err e = { 0 };
		char *path = xasprintf("%s/a%zu", dir, i), *want, *p;
		const char *at = make_place(i, path);
		struct buf b = BUF_INIT;

		if (at == NULL)
			abort();
		for (p = (char *)place_cases[i].msg; *p; p++)
			if (*p == '@')
				buf_adds(&b, at);
			else
				buf_addc(&b, *p);
		want = buf_steal(&b);
		alarm(20);
		is_int(aliases_load(at, &a, &e), EX_CONFIG, "aliases file is "
		    "%s: EX_CONFIG, at once", place_cases[i].name);
		alarm(0);
		is_str(e.msg, want, "aliases file is %s: the message",
		    place_cases[i].name);
		ok(a == NULL, "aliases file is %s: no table",
		    place_cases[i].name);
		if (place_cases[i].kind == 'd')
			rmdir(path);
		else
			unlink(path);
		free(want);
		free(path);
	}
	rmdir(dir);
}

static void
test_load_link(void)
{
	char path[] = "/tmp/bm-aliases-XXXXXX";
	char *link;
	struct aliases *a = NULL;
	struct bm_err e = { 0 };
	int fd = mkstemp(path);

	ok(fd >= 0 && write(fd, "root: r@x.example\n", 18) == 18,
	    "temp file written");
	close(fd);
	link = xasprintf("%s.link", path);
	ok(symlink(path, link) == 0, "symlink made");
	is_int(aliases_load(link, &a, &e), 0, "a symbolic link is followed "
	    "(the administrator's choice)");
	is_int((long long)aliases_count(a), 1, "through the link: the table");
	aliases_free(a);
	unlink(link);
	unlink(path);
	free(link);
}

int
main(void)
{
	test_expand();
	test_default();
	test_syntax();
	test_load();
	test_load_places();
	test_load_link();
	return done_testing();
}
