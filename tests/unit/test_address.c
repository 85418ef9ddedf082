/*
 * test_address - RFC 5322 address lists, argv recipients, RFC 5321
 * mailbox validation and display-name formatting: good, hostile and edge.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "util.h"
#include "tests/unit/tap.h"

#define ERR NULL

struct list_case {
	const char *in;
	const char *want;   /* "display|addr" joined by " ; " (display "-"
	                       when NULL); ERR: a syntax error */
};

static const struct list_case list_cases[] = {
	{ "a@b.example", "-|a@b.example" },
	{ "John Doe <jd@x.example>", "John Doe|jd@x.example" },
	{ "<jd@x.example>", "-|jd@x.example" },
	{ "\"Doe, John\" <j@x>", "\"Doe, John\"|j@x" },
	{ "a@x, b@y", "-|a@x ; -|b@y" },
	{ "a@x,b@y,,", "-|a@x ; -|b@y" },
	{ ", ,a@x", "-|a@x" },
	{ "", "" },
	{ "   ", "" },
	{ "root (Cron Daemon)", "Cron Daemon|root" },
	{ "root@h (Cron Daemon)", "Cron Daemon|root@h" },
	{ "(Cron Daemon) root@h", "Cron Daemon|root@h" },
	{ "a@b (outer (nested) c)", "outer (nested) c|a@b" },
	{ "a@b ()", "-|a@b" },
	{ "root", "-|root" },
	{ "\"a b\"@x", "-|\"a b\"@x" },
	{ "\"a\\\"b\"@x", "-|\"a\\\"b\"@x" },
	{ "undisclosed-recipients:;", "" },
	{ "undisclosed-recipients:", "" },
	{ "team: a@x, B <b@y>;", "-|a@x ; B|b@y" },
	{ "team: a@x, b@y; c@z", "-|a@x ; -|b@y ; -|c@z" },
	{ "=?UTF-8?B?SsO2cmc=?= <j@x>", "=?UTF-8?B?SsO2cmc=?=|j@x" },
	{ "=?UTF-8?Q?Doe,_John?= <j@x>", "=?UTF-8?Q?Doe,_John?=|j@x" },
	{ "<@r1.example,@r2.example:a@b>", "-|a@b" },
	{ "Name <@r1:a@b>", "Name|a@b" },
	{ "John\r\n Doe <j@x>", "John\r\n Doe|j@x" },
	{ "a@x,\r\n\tb@y", "-|a@x ; -|b@y" },
	{ "John (the man) Doe <j@x>", "John (the man) Doe|j@x" },
	{ "a . b @ x . y", "-|a.b@x.y" },
	{ "a@[192.0.2.1]", "-|a@[192.0.2.1]" },
	{ "a@[IPv6:2001:db8::1]", "-|a@[IPv6:2001:db8::1]" },
	{ "J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc\x63her.example>",
	    "J\xc3\xb6rg|j\xc3\xb6rg@b\xc3\xbc\x63her.example" },
	{ "John Q. Public <jqp@x>", "John Q. Public|jqp@x" },
	{ "a@b <c@d>", "a@b|c@d" },
	{ "\"a@b\" <c@d>", "\"a@b\"|c@d" },
	{ "<a@x> (comment)", "-|a@x" },
	/* hostile and broken */
	{ "<a@x", ERR },
	{ "a@x>", ERR },
	{ "<>", ERR },
	{ "\"unterminated <a@x>", ERR },
	{ "(unterminated a@x", ERR },
	{ "a@x)", ERR },
	{ "john doe@x", ERR },
	{ "a@b c", ERR },
	{ "a@", ERR },
	{ "@x", ERR },
	{ "a@@x", ERR },
	{ "a..b@x", ERR },
	{ ".a@x", ERR },
	{ "a.@x", ERR },
	{ "a@x..y", ERR },
	{ "a@-x.y", ERR },
	{ "a@[1.2.3]", ERR },
	{ "a@[evil:stuff]", ERR },
	{ "a@[1.2.3.4", ERR },
	{ "a\x01@x", ERR },
	{ "a@x\x7f", ERR },
	{ "<a@x\r\nRCPT TO:<evil@y>>", ERR },
	{ "a@x\nBcc: e@y", ERR },
	{ "g1: g2: a@x;;", ERR },
	{ "a@x;", ERR },
	{ "Name <a@x> b@y", ERR },
	{ "<a@x> <b@y>", ERR },
	{ "Na:me <a@x>", "me|a@x" },
	{ "[1.2.3.4]", ERR },
	{ "a\\b@x", ERR },
	{ "a@x]", ERR },
	{ "<<a@x>>", ERR },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x",
	    ERR },
};

/* A printable copy of s for a test name (controls as \xNN). */
static const char *
vis(const char *s)
{
	static char out[4][512];
	static int k;
	char *o = out[k = (k + 1) % 4];
	size_t j = 0;

	for (; s && *s && j + 5 < sizeof(out[0]); s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 32 || c == 127)
			j += (size_t)snprintf(o + j, 5, "\\x%02x", c);
		else
			o[j++] = (char)c;
	}
	o[j] = '\0';
	return o;
}

static char *
dump(const struct addr_list *l)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < l->n; i++)
		buf_addf(&b, "%s%s|%s", i ? " ; " : "",
		    l->v[i].display ? l->v[i].display : "-", l->v[i].addr);
	return buf_steal(&b);
}

static void
test_list(void)
{
	size_t i;

	for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
		const struct list_case *t = &list_cases[i];
		struct addr_list l = ADDR_LIST_INIT;
		int r = addr_parse_list(t->in, &l);
		char *d;

		if (t->want == ERR) {
			ok(r == -1 && l.n == 0, "list error: '%s'", vis(t->in));
		} else {
			d = dump(&l);
			ok(r == 0, "list ok: '%s'", vis(t->in));
			is_str(d, t->want, "list value: '%s'", vis(t->in));
			free(d);
		}
		addr_list_free(&l);
	}
}

struct argv_case {
	const char *in, *want;
};

static const struct argv_case argv_cases[] = {
	{ "alice@x.example", "-|alice@x.example" },
	{ "a@x,b@y", "-|a@x ; -|b@y" },
	{ "root", "-|root" },
	{ "Alice <a@x>", "Alice|a@x" },
	{ "<a@x>", "-|a@x" },
	{ "a@x\nb@y", ERR },
	{ "a@x\r", ERR },
	{ "a@x\t", "-|a@x" },
	{ "-oQ/tmp", "-|-oQ/tmp" },
	{ "a@x b@y", ERR },
	{ "", "" },
};

static void
test_argv(void)
{
	size_t i;

	for (i = 0; i < sizeof(argv_cases) / sizeof(argv_cases[0]); i++) {
		struct addr_list l = ADDR_LIST_INIT;
		int r = addr_parse_argv(argv_cases[i].in, &l);
		char *d = dump(&l);

		if (argv_cases[i].want == ERR)
			ok(r == -1 && l.n == 0, "argv error case %zu", i);
		else
			ok(r == 0 && strcmp(d, argv_cases[i].want) == 0,
			    "argv case %zu: %s", i, d);
		free(d);
		addr_list_free(&l);
	}
}

struct valid_case {
	const char *s;
	int allow_bare, want;
};

static const struct valid_case valid_cases[] = {
	{ "a@b", 0, 1 },
	{ "alice@contoso.com", 0, 1 },
	{ "first.last+tag@sub.example.org", 0, 1 },
	{ "!#$%&'*+-/=?^_`{|}~@x", 0, 1 },
	{ "\"a b\"@x", 0, 1 },
	{ "\"a\\\"b\"@x", 0, 1 },
	{ "\"a@b\"@x", 0, 1 },
	{ "\"\"@x", 0, 1 },
	{ "a@[127.0.0.1]", 0, 1 },
	{ "a@[IPv6:::1]", 0, 1 },
	{ "a@[ipv6:fe80::1]", 0, 1 },
	{ "a@localhost", 0, 1 },
	{ "a@xn--bcher-kva.example", 0, 1 },
	{ "\xc3\xa9@\xc3\xa9.example", 0, 1 },
	{ "\xe9@x.example", 0, 0 },             /* Latin-1, not UTF-8 */
	{ "a@\xc3.example", 0, 0 },             /* a cut UTF-8 sequence */
	{ "\xc0\xae@x.example", 0, 0 },         /* an overlong '.' */
	{ "\xed\xa0\x80@x.example", 0, 0 },     /* a surrogate */
	{ "root", 1, 1 },
	{ "root", 0, 0 },
	{ "\"ro ot\"", 1, 1 },
	{ "", 1, 0 },
	{ "a@", 0, 0 },
	{ "@a", 0, 0 },
	{ "a b@x", 0, 0 },
	{ "<a@x>", 0, 0 },
	{ "a@x>", 0, 0 },
	{ "a\r\n@x", 0, 0 },
	{ "a@x\r\nRCPT TO:<b@y>", 0, 0 },
	{ "a\x7f@x", 0, 0 },
	{ "\"a\x01\"@x", 0, 0 },
	{ "\"a\"b@x", 0, 0 },
	{ "\"abc@x", 0, 0 },
	{ "\"a\\\"@x", 0, 0 },
	{ "a.@x", 0, 0 },
	{ ".a@x", 0, 0 },
	{ "a..b@x", 0, 0 },
	{ "a@x.", 0, 0 },
	{ "a@.x", 0, 0 },
	{ "a@x-.y", 0, 0 },
	{ "a@x_y.z", 0, 0 },
	{ "a@[1.2.3.4.5]", 0, 0 },
	{ "a@[IPv6:1.2.3.4]", 0, 0 },
	{ "a@[]", 0, 0 },
	{ "a@b@c", 0, 0 },
	{ "a(b)@x", 0, 0 },
	{ "a,b@x", 0, 0 },
	/* 64 octets of local part is the limit */
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x",
	    0, 1 },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x",
	    0, 0 },
	{ "a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.x",
	    0, 0 },
	{ NULL, 0, 0 },
};

static void
test_valid(void)
{
	size_t i;
	struct buf b = BUF_INIT;

	for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++)
		is_int(addr_valid_mailbox(valid_cases[i].s,
		    valid_cases[i].allow_bare), valid_cases[i].want,
		    "valid '%s' (bare %d)", vis(valid_cases[i].s),
		    valid_cases[i].allow_bare);
	/* 254 octets in all is the limit: a@ + 4 * 62-octet labels + dots */
	buf_adds(&b, "a@");
	for (i = 0; i < 4; i++)
		buf_addf(&b, "%s%.62s", i ? "." : "", "xxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	is_int((long long)b.len, 253, "long address built");
	is_int(addr_valid_mailbox(b.data, 0), 1, "253 octets valid");
	buf_adds(&b, "x");
	is_int(addr_valid_mailbox(b.data, 0), 1, "254 octets valid");
	buf_adds(&b, "x");
	is_int(addr_valid_mailbox(b.data, 0), 0, "255 octets invalid");
	buf_free(&b, 0);
}

struct domain_case {
	const char *in, *want;
};

static const struct domain_case domain_cases[] = {
	{ "a@b.example", "b.example" },
	{ "root", NULL },
	{ "\"a@b\"@c", "c" },
	{ "\"a@b\"", NULL },
	{ "a@", "" },
	{ NULL, NULL },
};

static void
test_domain(void)
{
	size_t i;

	for (i = 0; i < sizeof(domain_cases) / sizeof(domain_cases[0]); i++)
		is_str(addr_domain(domain_cases[i].in), domain_cases[i].want,
		    "domain case %zu", i);
}

struct format_case {
	const char *display, *addr, *want;
};

static const struct format_case format_cases[] = {
	{ NULL, "a@x", "a@x" },
	{ "", "a@x", "a@x" },
	{ " \t", "a@x", "a@x" },
	{ "Cron Daemon", "a@x", "Cron Daemon <a@x>" },
	{ "\"Doe, John\"", "a@x", "\"Doe, John\" <a@x>" },
	{ "Doe, John", "a@x", "\"Doe, John\" <a@x>" },
	{ "John Q. Public", "a@x", "\"John Q. Public\" <a@x>" },
	{ "=?UTF-8?B?SsO2cmc=?=", "a@x", "=?UTF-8?B?SsO2cmc=?= <a@x>" },
	{ "=?UTF-8?Q?J=2E_Doe?= Jr", "a@x", "=?UTF-8?Q?J=2E_Doe?= Jr <a@x>" },
	{ "say \"hi\"", "a@x", "\"say \\\"hi\\\"\" <a@x>" },
	{ "back\\slash", "a@x", "\"back\\\\slash\" <a@x>" },
	{ "line\r\nBcc: x", "a@x", "\"line  Bcc: x\" <a@x>" },
	{ "ctl\001in\177name", "a@x", "\"ctl in name\" <a@x>" },
	{ "J\xc3\xb6rg", "a@x", "J\xc3\xb6rg <a@x>" },
	{ "\"half", "a@x", "\"\\\"half\" <a@x>" },
	{ "a (b)", "a@x", "\"a (b)\" <a@x>" },
};

static void
test_format(void)
{
	size_t i;

	for (i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
		char *s = addr_format(format_cases[i].display,
		    format_cases[i].addr);
		is_str(s, format_cases[i].want, "format case %zu", i);
		free(s);
	}
}

static void
test_lists(void)
{
	struct addr_list l = ADDR_LIST_INIT;

	is_int(addr_list_add_unique(&l, NULL, "Alice@X.example"), 1, "add");
	is_int(addr_list_add_unique(&l, "A", "alice@x.EXAMPLE"), 0,
	    "dedup is case-insensitive");
	is_int(addr_list_has(&l, "ALICE@x.example"), 1, "has");
	is_int(addr_list_has(&l, "bob@x.example"), 0, "has not");
	addr_list_add(&l, "B", "bob@x.example");
	is_int((long long)l.n, 2, "two entries");
	is_str(l.v[1].display, "B", "display copied");
	addr_list_free(&l);
	is_int((long long)l.n, 0, "free empties");
}

int
main(void)
{
	test_list();
	test_argv();
	test_valid();
	test_domain();
	test_format();
	test_lists();
	return done_testing();
}
