/*
 * test_canon - the line canonicaliser: every case is fed whole, byte by
 * byte and in chunks of three, and must give the same bytes each time.
 */
#include "config.h"

#include <string.h>

#include "canon.h"
#include "tests/unit/tap.h"

struct tcase {
	const char *name;
	const char *in;
	size_t inlen;          /* 0: strlen(in) */
	int ignore_dots;
	const char *want;
	size_t wantlen;        /* 0: strlen(want) */
	int ended;             /* canon_feed returned 1 */
};

#define S(x) x, sizeof(x) - 1

static const struct tcase cases[] = {
	{ "empty", "", 0, 0, "", 0, 0 },
	{ "crlf kept", "a\r\nb\r\n", 0, 0, "a\r\nb\r\n", 0, 0 },
	{ "lf only", "a\nb\n", 0, 0, "a\r\nb\r\n", 0, 0 },
	{ "cr only", "a\rb\r", 0, 0, "a\r\nb\r\n", 0, 0 },
	{ "mixed", "a\r\nb\nc\rd", 0, 0, "a\r\nb\r\nc\r\nd\r\n", 0, 0 },
	{ "cr cr lf is two lines", "a\r\r\nb", 0, 0, "a\r\n\r\nb\r\n", 0, 0 },
	{ "lf cr is two lines", "a\n\rb", 0, 0, "a\r\n\r\nb\r\n", 0, 0 },
	{ "no final newline", "body", 0, 0, "body\r\n", 0, 0 },
	{ "blank lines", "\n\n", 0, 0, "\r\n\r\n", 0, 0 },
	{ "smuggle lf.lf", "a\n.\nMAIL FROM:<x>\n", 0, 0, "a\r\n", 0, 1 },
	{ "smuggle lf.crlf", "a\n.\r\nRSET\r\n", 0, 0, "a\r\n", 0, 1 },
	{ "smuggle cr.cr", "a\r.\rRSET\r", 0, 0, "a\r\n", 0, 1 },
	{ "smuggle lf.lf -i", "a\n.\nMAIL\n", 0, 1, "a\r\n.\r\nMAIL\r\n", 0, 0 },
	{ "smuggle cr.cr -i", "a\r.\rx", 0, 1, "a\r\n.\r\nx\r\n", 0, 0 },
	{ "lone dot crlf", "x\r\n.\r\n", 0, 0, "x\r\n", 0, 1 },
	{ "lone dot first", ".\n", 0, 0, "", 0, 1 },
	{ "lone dot at eof cr", "x\n.\r", 0, 0, "x\r\n", 0, 0 },
	{ "dot at eof no newline is data", "x\n.", 0, 0, "x\r\n.\r\n", 0, 0 },
	{ "dot dot not lone", "..\n", 0, 0, "..\r\n", 0, 0 },
	{ "dot text", ".x\n.\n", 0, 0, ".x\r\n", 0, 1 },
	{ "dot space", ". \n", 0, 0, ". \r\n", 0, 0 },
	{ "dot inside line", "a.\n", 0, 0, "a.\r\n", 0, 0 },
	{ "dot cr cr lf", ".\r\r\n", 0, 0, "", 0, 1 },
	{ "ignore dots keeps all", ".\n..\n", 0, 1, ".\r\n..\r\n", 0, 0 },
	{ "nul passes", S("a\0b\n"), 0, S("a\0b\r\n"), 0 },
	{ "nul after dot", S(".\0\n"), 0, S(".\0\r\n"), 0 },
	{ "8bit", "caf\xc3\xa9\n", 0, 0, "caf\xc3\xa9\r\n", 0, 0 },
	{ "only cr", "\r", 0, 0, "\r\n", 0, 0 },
	{ "only lf", "\n", 0, 0, "\r\n", 0, 0 },
	{ "many crs", "\r\r\r\n", 0, 0, "\r\n\r\n\r\n", 0, 0 },
	{ "tail after dot ignored", "a\n.\nb\n.\n", 0, 0, "a\r\n", 0, 1 },
};

/* The longest line of the last run(). */
static size_t canon_longest;

/* Feed in chunks of step bytes (0: all at once). */
static int
run(const struct tcase *t, size_t inlen, size_t step, struct buf *out)
{
	struct canon c;
	size_t i, k;
	int ended = 0;

	canon_init(&c, t->ignore_dots);
	buf_reset(out);
	if (step == 0)
		step = inlen ? inlen : 1;
	for (i = 0; i < inlen; i += k) {
		k = inlen - i < step ? inlen - i : step;
		ended = canon_feed(&c, t->in + i, k, out);
	}
	if (inlen == 0)
		ended = canon_feed(&c, "", 0, out);
	canon_finish(&c, out);
	canon_longest = c.longest;
	return ended;
}

static int
no_bare(const struct buf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++) {
		if (b->data[i] == '\r' && (i + 1 >= b->len || b->data[i + 1] != '\n'))
			return 0;
		if (b->data[i] == '\n' && (i == 0 || b->data[i - 1] != '\r'))
			return 0;
	}
	return 1;
}

/* The longest line the spooler is told of: what came out, CRLF, held
 * dots and the terminating lone dot not counted. */
struct longest_case {
	const char *name;
	const char *in;
	int ignore_dots;
	size_t want;
};

static const struct longest_case longest_cases[] = {
	{ "empty", "", 0, 0 },
	{ "one line", "abc\n", 0, 3 },
	{ "crlf not counted", "ab\r\ncdef\r\n", 0, 4 },
	{ "cr cr lf", "abc\r\r\n", 0, 3 },
	{ "no final newline", "a\nlongest", 0, 7 },
	{ "leading dot counted", ".abc\n", 0, 4 },
	{ "dot dot", "..\n", 0, 2 },
	{ "lone dot not counted", "ab\n.\nlonger line\n", 0, 2 },
	{ "lone dot kept with -i", "a\n.\n", 1, 1 },
	{ "dot at eof is data", "\n.", 0, 1 },
	{ "8bit octets counted", "caf\xc3\xa9\n", 0, 5 },
};

static void
test_longest(void)
{
	static const size_t steps[] = { 0, 1, 2, 3, 1000 };
	struct tcase t;
	struct buf out = BUF_INIT, big = BUF_INIT;
	size_t i, s;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < sizeof(longest_cases) / sizeof(longest_cases[0]); i++) {
		const struct longest_case *l = &longest_cases[i];

		t.in = l->in;
		t.ignore_dots = l->ignore_dots;
		for (s = 0; s < 4; s++) {
			run(&t, strlen(l->in), steps[s], &out);
			is_int((long long)canon_longest, (long long)l->want,
			    "longest %s (chunk %zu)", l->name, steps[s]);
		}
	}
	/* PHP's one-line HTML page, as seen: 2009 octets */
	for (i = 0; i < 3000; i++)
		buf_addc(&big, i == 2009 ? '\n' : 'x');
	t.in = big.data;
	t.ignore_dots = 0;
	for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		run(&t, big.len, steps[s], &out);
		is_int((long long)canon_longest, 2009, "longest 2009 octets "
		    "(chunk %zu)", steps[s]);
	}
	buf_free(&big, 0);
	buf_free(&out, 0);
}

int
main(void)
{
	static const size_t steps[] = { 0, 1, 2, 3 };
	struct buf out = BUF_INIT;
	size_t i, s, inlen, wantlen;
	int ended;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];

		inlen = t->inlen ? t->inlen : strlen(t->in);
		wantlen = t->wantlen ? t->wantlen : strlen(t->want);
		for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
			ended = run(t, inlen, steps[s], &out);
			ok(out.len == wantlen && memcmp(out.data, t->want,
			    wantlen) == 0, "%s (chunk %zu): output", t->name,
			    steps[s]);
			is_int(ended, t->ended, "%s (chunk %zu): ended",
			    t->name, steps[s]);
			ok(no_bare(&out), "%s (chunk %zu): no bare CR/LF",
			    t->name, steps[s]);
		}
	}
	buf_free(&out, 0);
	test_longest();
	return done_testing();
}
