/*
 * fuzz_canon - the line canonicaliser (canon.h), the SMTP smuggling
 * defence.  Input: one control byte (bit 0: ignore dots; the rest seeds
 * the chunk sizes), then the message.  The message is fed once whole and
 * once in chunks derived from the input; both outputs must be identical,
 * hold no bare CR or LF, and nothing may come out after a lone dot; the
 * longest line canon reports is the longest line of its output.
 */
#include "config.h"

#include <string.h>

#include "canon.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

/* Every CR is followed by LF, every LF preceded by CR, and the output
 * ends with CRLF unless it is empty. */
static void
check_crlf(const struct buf *out)
{
	size_t i;

	for (i = 0; i < out->len; i++) {
		if (out->data[i] == '\r')
			FUZZ_ASSERT(i + 1 < out->len && out->data[i + 1] == '\n');
		if (out->data[i] == '\n')
			FUZZ_ASSERT(i > 0 && out->data[i - 1] == '\r');
	}
	if (out->len > 0)
		FUZZ_ASSERT(out->len >= 2 && out->data[out->len - 1] == '\n');
}

/* The longest CRLF line of out, CRLF not counted. */
static size_t
longest_line(const struct buf *out)
{
	size_t i, col = 0, longest = 0;

	for (i = 0; i < out->len; i++) {
		if (out->data[i] == '\r')
			continue;
		if (out->data[i] == '\n') {
			longest = col > longest ? col : longest;
			col = 0;
		} else {
			col++;
		}
	}
	return longest;
}

/* Feed in chunks of 1..16 bytes chosen by a small LCG seeded by seed. */
static void
feed_chunked(const char *p, size_t n, int ignore_dots, unsigned seed,
    struct buf *out)
{
	struct canon c;
	size_t k, before;
	int done = 0;

	canon_init(&c, ignore_dots);
	while (n > 0) {
		seed = seed * 1103515245u + 12345u;
		k = 1 + (seed >> 16) % 16;
		if (k > n)
			k = n;
		before = out->len;
		if (done) {
			FUZZ_ASSERT(canon_feed(&c, p, k, out) == 1);
			FUZZ_ASSERT(out->len == before);
		} else {
			done = canon_feed(&c, p, k, out);
		}
		p += k;
		n -= k;
	}
	before = out->len;
	canon_finish(&c, out);
	if (done)
		FUZZ_ASSERT(out->len == before);
	FUZZ_ASSERT(c.longest == longest_line(out));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = BUF_INIT, chunked = BUF_INIT;
	struct canon c;
	unsigned ctl = fuzz_byte(&data, &size);
	int ignore_dots = ctl & 1;
	int done;

	canon_init(&c, ignore_dots);
	done = canon_feed(&c, (const char *)data, size, &whole);
	canon_finish(&c, &whole);
	if (ignore_dots)
		FUZZ_ASSERT(done == 0);
	check_crlf(&whole);
	FUZZ_ASSERT(c.longest == longest_line(&whole));

	feed_chunked((const char *)data, size, ignore_dots, ctl >> 1, &chunked);
	FUZZ_ASSERT(chunked.len == whole.len);
	FUZZ_ASSERT(whole.len == 0 ||
	    memcmp(chunked.data, whole.data, whole.len) == 0);

	buf_free(&whole, 0);
	buf_free(&chunked, 0);
	return 0;
}
