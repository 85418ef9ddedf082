/*
 * test_header - RFC 5322 header block parsing (good, hostile and edge
 * input), edits, unfolding and folding of generated values.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "header.h"
#include "tests/unit/tap.h"

struct parse_case {
	const char *name;
	const char *in;
	const char *fields;    /* "name=value" joined by '|' */
	size_t consumed;
};

static const struct parse_case parse_cases[] = {
	{ "simple", "From: a@x\r\nTo: b@y\r\n\r\nbody\r\n",
	    "From= a@x|To= b@y", 22 },
	{ "no body", "Subject: hi\r\n\r\n", "Subject= hi", 15 },
	{ "no empty line, eof", "Subject: hi\r\n", "Subject= hi", 13 },
	{ "no crlf at eof", "Subject: hi", "Subject= hi", 11 },
	{ "folded", "Subject: a\r\n b\r\n\tc\r\nX: y\r\n\r\n",
	    "Subject= a\r\n b\r\n\tc|X= y", 28 },
	{ "empty value", "X-Empty:\r\n\r\n", "X-Empty=", 12 },
	{ "no space after colon", "X:y\r\n\r\n", "X=y", 7 },
	{ "wsp before colon", "Subject : hi\r\n\r\n", "Subject= hi", 16 },
	{ "empty input", "", "", 0 },
	{ "only empty line", "\r\nbody\r\n", "", 2 },
	{ "body without header", "hello world\r\nmore\r\n", "", 0 },
	{ "body line first with colon later", "hello world: x\r\n", "", 0 },
	{ "mbox From_ dropped", "From root Mon Jan  1 00:00:00 2024\r\n"
	    "Subject: s\r\n\r\nb\r\n", "Subject= s", 50 },
	{ "obs From : is a field", "From : a@x\r\n\r\n", "From= a@x", 14 },
	{ "continuation first: no header", " x: y\r\n\r\n", "", 0 },
	{ "non-field ends header", "A: 1\r\nnot a field\r\nB: 2\r\n",
	    "A= 1", 6 },
	{ "colon first", ":x\r\n\r\n", "", 0 },
	{ "8bit value", "Subject: caf\xc3\xa9\r\n\r\n", "Subject= caf\xc3\xa9",
	    18 },
	{ "8bit name is not a field", "Subj\xc3\xa9: x\r\n\r\n", "", 0 },
	{ "control in name", "A\x01: x\r\n\r\n", "", 0 },
	{ "duplicate fields", "To: a\r\nTo: b\r\n\r\n", "To= a|To= b", 16 },
	{ "whitespace-only continuation", "A: 1\r\n \r\n\r\n", "A= 1\r\n ",
	    11 },
	{ "trailing wsp kept", "A: 1 \r\n\r\n", "A= 1 ", 9 },
	{ "folded at eof", "A: 1\r\n 2", "A= 1\r\n 2", 8 },
	{ "empty line then fields are body", "\r\nA: 1\r\n", "", 2 },
};

static char *
dump(const struct hdrs *h)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < h->n; i++) {
		if (i)
			buf_addc(&b, '|');
		buf_addf(&b, "%s=%s", h->v[i].name, h->v[i].value);
	}
	return buf_steal(&b);
}

static void
test_parse(void)
{
	size_t i, consumed;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *t = &parse_cases[i];
		struct hdrs h = HDRS_INIT;
		char *d;

		is_int(hdr_parse(t->in, strlen(t->in), &h, &consumed), 0,
		    "parse %s: returns 0", t->name);
		d = dump(&h);
		is_str(d, t->fields, "parse %s: fields", t->name);
		is_int((long long)consumed, (long long)t->consumed,
		    "parse %s: consumed", t->name);
		free(d);
		hdr_free(&h);
	}
}

struct unfold_case {
	const char *in, *want, *want_trim;
};

static const struct unfold_case unfold_cases[] = {
	{ " a\r\n b", " a b", "a b" },
	{ " a\r\n\tb", " a\tb", "a\tb" },
	{ " a\r\nb", " a\r\nb", "a\r\nb" },
	{ "", "", "" },
	{ "\r\n ", " ", "" },
	{ " <id@x> ", " <id@x> ", "<id@x>" },
	{ " a\r\n \r\n b", " a  b", "a  b" },
};

static void
test_unfold(void)
{
	size_t i;

	for (i = 0; i < sizeof(unfold_cases) / sizeof(unfold_cases[0]); i++) {
		char *u = hdr_unfold(unfold_cases[i].in);
		char *t = hdr_unfold_trim(unfold_cases[i].in);

		is_str(u, unfold_cases[i].want, "unfold case %zu", i);
		is_str(t, unfold_cases[i].want_trim, "unfold_trim case %zu", i);
		free(u);
		free(t);
	}
}

struct fold_case {
	const char *name, *value, *want;
};

static const struct fold_case fold_cases[] = {
	{ "Subject", "short", "Subject: short\r\n" },
	{ "To", "a@x, b@y", "To: a@x, b@y\r\n" },
	{ "To", "aaaaaaaaaa@example.com, bbbbbbbbbb@example.com, "
	    "cccccccccc@example.com, dddddddddd@example.com",
	    "To: aaaaaaaaaa@example.com, bbbbbbbbbb@example.com, "
	    "cccccccccc@example.com,\r\n dddddddddd@example.com\r\n" },
	{ "X", "0123456789012345678901234567890123456789012345678901234567890"
	    "1234567890123456789", "X: 0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789\r\n" },
	{ "X", "a 0123456789012345678901234567890123456789012345678901234567890"
	    "1234567890123456789 b", "X: a\r\n 0123456789012345678901234567890123"
	    "4567890123456789012345678901234567890123456789\r\n b\r\n" },
	{ "Inject", "x\r\nBcc: evil@x", "Inject: x  Bcc: evil@x\r\n" },
	{ "Inject", "x\nBcc: evil@x", "Inject: x Bcc: evil@x\r\n" },
	{ "Folded", "x\r\n y", "Folded: x y\r\n" },
	{ "Empty", "", "Empty: \r\n" },
};

static void
test_fold(void)
{
	size_t i;

	for (i = 0; i < sizeof(fold_cases) / sizeof(fold_cases[0]); i++) {
		struct hdrs h = HDRS_INIT;
		struct buf b = BUF_INIT;
		char *want = xasprintf("%s\r\n", fold_cases[i].want);

		hdr_append(&h, fold_cases[i].name, fold_cases[i].value);
		hdr_write(&h, &b);
		is_str(b.data, want, "fold %s case %zu", fold_cases[i].name, i);
		free(want);
		buf_free(&b, 0);
		hdr_free(&h);
	}
}

static void
test_edit(void)
{
	static const char in[] = "From: a@x\r\nBcc: s@x\r\nTo: b@y\r\n"
	    "bcc: t@x,\r\n u@x\r\nSubject: s\r\n\r\n";
	struct hdrs h = HDRS_INIT;
	struct buf b = BUF_INIT;
	size_t consumed;

	hdr_parse(in, sizeof(in) - 1, &h, &consumed);
	is_int((long long)hdr_count(&h, "BCC"), 2, "count is case-insensitive");
	ok(hdr_get(&h, "to") != NULL && strcmp(hdr_get(&h, "to")->value,
	    " b@y") == 0, "get is case-insensitive");
	ok(hdr_get(&h, "Cc") == NULL, "get missing");
	hdr_remove_all(&h, "Bcc");
	is_int((long long)hdr_count(&h, "bcc"), 0, "remove_all removes folded");
	hdr_set(&h, "to", "c@z");
	hdr_set(&h, "Date", "now");
	hdr_prepend(&h, "Received", "by me");
	hdr_write(&h, &b);
	is_str(b.data, "Received: by me\r\nFrom: a@x\r\nto: c@z\r\n"
	    "Subject: s\r\nDate: now\r\n\r\n", "edits serialized in order");
	buf_free(&b, 0);
	hdr_free(&h);
	is_int((long long)h.n, 0, "free empties");
	hdr_write(&h, &b);
	is_str(b.data, "\r\n", "empty header writes the empty line");
	buf_free(&b, 0);
}

int
main(void)
{
	test_parse();
	test_unfold();
	test_fold();
	test_edit();
	return done_testing();
}
