/*
 * fuzz_bsmtp - the -bs dialogue (bsmtp.h): the input is the client's side
 * of a session, read from fmemopen; stub ops accept every recipient
 * except those starting "bad", and deliver by reading the data file
 * (failing temporarily for a sender starting "fail").  The transcript
 * goes to an open_memstream and must be CRLF lines of 3-digit replies.
 * Only CR LF "." CR LF ends DATA (the start of the data counting as after
 * a CR LF), so deliver() is called at most max_messages() times: more would
 * mean that an end-of-data lookalike ended a message (SMTP smuggling).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bsmtp.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

static int
stub_check_rcpt(void *ctx, const char *rcpt, struct bm_err *e)
{
	FUZZ_ASSERT(rcpt != NULL);
	if (strncmp(rcpt, "bad", 3) == 0)
		return err_set(e, EX_NOUSER, "no such user: %s", rcpt);
	return 0;
}

static int
stub_deliver(void *ctx, const char *sender, char **rcpts, size_t nrcpts,
    int data_fd, int eightbit, char *note, size_t note_len, struct bm_err *e)
{
	size_t *delivered = ctx;
	char chunk[4096];
	size_t i;

	(*delivered)++;
	FUZZ_ASSERT(sender != NULL && nrcpts > 0 &&
	    nrcpts <= BSMTP_MAX_RCPTS && data_fd >= 0);
	for (i = 0; i < nrcpts; i++)
		FUZZ_ASSERT(rcpts[i] != NULL);
	while (read(data_fd, chunk, sizeof(chunk)) > 0)
		;
	if (strncmp(sender, "fail", 4) == 0)
		return err_set(e, EX_TEMPFAIL, "queue full");
	if (strncmp(sender, "queue", 5) == 0)
		snprintf(note, note_len, "queued as %s\r\nMAIL", sender);
	return 0;
}

static const struct bsmtp_ops stub_ops = { stub_check_rcpt, stub_deliver };

/*
 * An upper bound on the messages the input can deliver: each ends at a
 * "." CR LF after the CR LF of the line before or, as the data's first
 * line, after the LF of the DATA command (after its verb or a space).
 */
static size_t
max_messages(const uint8_t *data, size_t size)
{
	size_t i, n = 0;

	for (i = 1; i + 4 <= size; i++)
		if (memcmp(data + i, "\n.\r\n", 4) == 0 &&
		    memchr("\rAa ", data[i - 1], 4) != NULL)
			n++;
	return n;
}

/* Each reply line: three digits, then ' ' or '-' or the end, then CRLF. */
static void
check_transcript(const char *t, size_t n)
{
	const char *p = t, *end = t + n, *eol;

	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		FUZZ_ASSERT(eol != NULL && eol - p >= 4 && eol[-1] == '\r');
		FUZZ_ASSERT(p[0] >= '2' && p[0] <= '5');
		FUZZ_ASSERT(p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
		    p[2] <= '9');
		FUZZ_ASSERT(memchr(p, '\r', (size_t)(eol - p)) == eol - 1);
		FUZZ_ASSERT(eol - p == 4 || p[3] == ' ' || p[3] == '-');
		p = eol + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char empty[1];
	FILE *in, *out;
	char *t = NULL;
	size_t tn = 0, delivered = 0;
	int rc;

	/* fmemopen does not take an empty buffer everywhere: use a
	 * zero-length view of a static byte */
	in = fmemopen(size ? (void *)data : empty, size ? size : 1, "r");
	out = open_memstream(&t, &tn);
	FUZZ_ASSERT(in != NULL && out != NULL);
	if (size == 0)
		fgetc(in);
	rc = bsmtp_run(in, out, "fuzz.example", &stub_ops, &delivered);
	FUZZ_ASSERT(rc == 0 || rc == EX_PROTOCOL || rc == EX_IOERR);
	FUZZ_ASSERT(delivered <= max_messages(data, size));
	fclose(in);
	fclose(out);
	check_transcript(t, tn);
	free(t);
	return 0;
}
