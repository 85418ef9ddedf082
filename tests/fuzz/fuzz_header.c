/*
 * fuzz_header - RFC 5322 header fields (header.h).  The raw input is
 * parsed and written back; its canonical form (canon.h, NUL bytes made
 * 'x') must survive hdr_parse -> hdr_write -> hdr_parse unchanged, its
 * values must unfold to single lines, and a value given to hdr_append
 * must never inject a second field.
 */
#include "config.h"

#include <string.h>

#include "canon.h"
#include "header.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

/* Parse and write the raw bytes: only memory safety is asked. */
static void
raw_parse(const uint8_t *data, size_t size)
{
	struct hdrs h = HDRS_INIT;
	struct buf out = BUF_INIT;
	size_t consumed = 0;

	FUZZ_ASSERT(hdr_parse((const char *)data, size, &h, &consumed) == 0);
	FUZZ_ASSERT(consumed <= size);
	hdr_write(&h, &out);
	buf_free(&out, 0);
	hdr_free(&h);
}

/* The input canonicalised (CRLF only), NUL bytes replaced. */
static void
canonical(const uint8_t *data, size_t size, struct buf *out)
{
	struct canon c;
	size_t i;

	canon_init(&c, 1);
	canon_feed(&c, (const char *)data, size, out);
	canon_finish(&c, out);
	for (i = 0; i < out->len; i++)
		if (out->data[i] == '\0')
			out->data[i] = 'x';
}

/* A folded canonical value unfolds to text without CR or LF. */
static void
check_unfold(const char *value)
{
	char *u = hdr_unfold(value), *t = hdr_unfold_trim(value);

	FUZZ_ASSERT(strpbrk(u, "\r\n") == NULL);
	FUZZ_ASSERT(strpbrk(t, "\r\n") == NULL);
	FUZZ_ASSERT(strlen(t) <= strlen(u));
	free(u);
	free(t);
}

static void
round_trip(const struct buf *text)
{
	struct hdrs a = HDRS_INIT, b = HDRS_INIT;
	struct buf out = BUF_INIT;
	size_t consumed, i;

	hdr_parse(text->data ? text->data : "", text->len, &a, &consumed);
	hdr_write(&a, &out);
	hdr_parse(out.data, out.len, &b, &consumed);
	FUZZ_ASSERT(consumed == out.len);
	FUZZ_ASSERT(a.n == b.n);
	for (i = 0; i < a.n; i++) {
		FUZZ_ASSERT(strcmp(a.v[i].name, b.v[i].name) == 0);
		FUZZ_ASSERT(strcmp(a.v[i].value, b.v[i].value) == 0);
		check_unfold(a.v[i].value);
	}
	buf_free(&out, 0);
	hdr_free(&a);
	hdr_free(&b);
}

/* hdr_append of any value gives exactly one field when read back. */
static void
no_injection(const uint8_t *data, size_t size)
{
	struct hdrs a = HDRS_INIT, b = HDRS_INIT;
	struct buf out = BUF_INIT;
	char *value = fuzz_str(data, size);
	size_t consumed;

	hdr_append(&a, "X-Fuzz", value);
	hdr_write(&a, &out);
	hdr_parse(out.data, out.len, &b, &consumed);
	FUZZ_ASSERT(b.n == 1 && consumed == out.len);
	FUZZ_ASSERT(strcmp(b.v[0].value, a.v[0].value) == 0);
	check_unfold(b.v[0].value);
	free(value);
	buf_free(&out, 0);
	hdr_free(&a);
	hdr_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf text = BUF_INIT;

	raw_parse(data, size);
	canonical(data, size, &text);
	round_trip(&text);
	no_injection(data, size);
	buf_free(&text, 0);
	return 0;
}
