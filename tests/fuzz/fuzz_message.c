/*
 * fuzz_message - the message being submitted (message.h): the input is
 * spooled from a memfd (canonicalised, header parsed), its -t recipients
 * read and its header completed under a fixed policy.  Input: one control
 * byte (bit 0: ignore dots; bits 1-2: From policy rewrite/keep/reject;
 * bit 3: the account may send as anyone at example.com), then the
 * message.  A completed header must read back whole, without Bcc, with
 * From, Date and Message-ID.
 */
#include "config.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "address.h"
#include "header.h"
#include "message.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

static int
any_at_example(const void *ctx, const char *addr)
{
	const char *d = addr_domain(addr);

	return d != NULL && strcmp(d, "example.com") == 0;
}

/* The input as a file descriptor positioned at 0, or -1. */
static int
input_fd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write_all(fd, data, size) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
check_head(const struct message *m)
{
	struct hdrs h = HDRS_INIT;
	size_t consumed;

	FUZZ_ASSERT(m->head != NULL && m->head_len == strlen(m->head));
	hdr_parse(m->head, m->head_len, &h, &consumed);
	FUZZ_ASSERT(consumed == m->head_len);
	FUZZ_ASSERT(hdr_count(&h, "Bcc") == 0 &&
	    hdr_count(&h, "Resent-Bcc") == 0);
	FUZZ_ASSERT(hdr_count(&h, "From") >= 1 && hdr_count(&h, "Date") >= 1 &&
	    hdr_count(&h, "Message-ID") >= 1);
	hdr_free(&h);
}

static void
complete(struct message *m, unsigned ctl)
{
	struct addr_list rcpts = ADDR_LIST_INIT;
	struct bm_err e = { 0 };
	struct msg_policy p = {
		"me@example.com", NULL, NULL, (int)((ctl >> 1) & 3) % 3,
		"Fuzz Tester", "example.com", 1700000000,
	};

	if (ctl & 8)
		p.may_send_as = any_at_example;
	if (msg_header_recipients(m, &rcpts, &e) == 0) {
		size_t i;

		for (i = 0; i < rcpts.n; i++)
			FUZZ_ASSERT(addr_valid_mailbox(rcpts.v[i].addr, 1));
	}
	addr_list_free(&rcpts);
	if (msg_complete(m, &p, &e) == 0) {
		check_head(m);
		msg_message_id(m);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = getenv("TMPDIR");
	struct message m;
	struct bm_err e = { 0 };
	unsigned ctl = fuzz_byte(&data, &size);
	int fd = input_fd(data, size);

	FUZZ_ASSERT(fd >= 0);
	if (dir == NULL || dir[0] != '/')
		dir = "/tmp";
	if (msg_spool(&m, fd, ctl & 1, dir, &e) == 0) {
		FUZZ_ASSERT(m.body_off >= 0 && m.body_off + m.body_len <= m.size);
		complete(&m, ctl);
	}
	msg_free(&m);
	close(fd);
	return 0;
}
