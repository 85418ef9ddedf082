/* Unit tests for util: number, size and duration parsing, buffers, trim. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/tap.h"
#include "util.h"

static const struct {
	const char *in;
	int rc;
	long long want;
} ll_cases[] = {
	{ "0", 0, 0 }, { "587", 0, 587 }, { "65535", 0, 65535 },
	{ "65536", -1, 0 }, { "-1", -1, 0 }, { "", -1, 0 }, { "12a", -1, 0 },
	{ " 5", -1, 0 }, { "99999999999999999999999", -1, 0 },
};

static const struct {
	const char *in;
	int rc;
	long long want;
} size_cases[] = {
	{ "35M", 0, 36700160 }, { "512k", 0, 524288 }, { "1G", 0, 1073741824 },
	{ "1000", 0, 1000 }, { "M", -1, 0 }, { "3X", -1, 0 }, { "", -1, 0 },
	{ "9999999999999999G", -1, 0 },
};

static const struct {
	const char *in;
	int rc;
	long long want;
} dur_cases[] = {
	{ "30", 0, 30 }, { "30s", 0, 30 }, { "5m", 0, 300 }, { "2h", 0, 7200 },
	{ "5d", 0, 432000 }, { "1w", 0, 604800 }, { "5y", -1, 0 }, { "d", -1, 0 },
};

static void
test_numbers(void)
{
	size_t i;
	long long v;

	for (i = 0; i < sizeof(ll_cases) / sizeof(ll_cases[0]); i++) {
		int rc = str_to_ll(ll_cases[i].in, 0, 65535, &v);
		ok(rc == ll_cases[i].rc && (rc || v == ll_cases[i].want),
		    "str_to_ll(\"%s\")", ll_cases[i].in);
	}
	for (i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		int rc = str_to_size(size_cases[i].in, &v);
		ok(rc == size_cases[i].rc && (rc || v == size_cases[i].want),
		    "str_to_size(\"%s\")", size_cases[i].in);
	}
	for (i = 0; i < sizeof(dur_cases) / sizeof(dur_cases[0]); i++) {
		int rc = str_to_seconds(dur_cases[i].in, &v);
		ok(rc == dur_cases[i].rc && (rc || v == dur_cases[i].want),
		    "str_to_seconds(\"%s\")", dur_cases[i].in);
	}
}

static void
test_buf(void)
{
	struct buf b = BUF_INIT;
	char *s;
	int i;

	for (i = 0; i < 1000; i++)
		buf_addf(&b, "%d,", i % 10);
	is_int((long long)b.len, 2000, "buf grows to 2000 bytes");
	is_int(b.data[b.len], 0, "buf stays NUL-terminated");
	buf_reset(&b);
	buf_adds(&b, "abc");
	buf_addc(&b, 'd');
	buf_add(&b, "ef", 2);
	s = buf_steal(&b);
	is_str(s, "abcdef", "buf_add/adds/addc");
	ok(b.data == NULL && b.len == 0, "buf_steal resets the buffer");
	free(s);
	s = buf_steal(&b);
	is_str(s, "", "buf_steal of an empty buffer is \"\"");
	free(s);
}

static void
test_trim_and_err(void)
{
	char t1[] = "  hello \t\r\n";
	char t2[] = "";
	struct bm_err e = { 0 };

	is_str(str_trim(t1), "hello", "str_trim both ends");
	is_str(str_trim(t2), "", "str_trim empty");
	is_int(err_set(&e, 78, "bad %s", "thing"), 78, "err_set returns code");
	is_str(e.msg, "bad thing", "err_set formats");
	is_int(err_set(NULL, 75, "x"), 75, "err_set with NULL record");
	ok(str_has_prefix_ci("AUTH XOAUTH2", "auth "), "prefix match ignores case");
}

int
main(void)
{
	test_numbers();
	test_buf();
	test_trim_and_err();
	return done_testing();
}
