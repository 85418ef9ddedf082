/*
 * fuzz_address - mailbox syntax (address.h).  Input: one header value or
 * argv word.  Every address addr_parse_list or addr_parse_argv accepts
 * must pass addr_valid_mailbox(.., 1), and addr_format of what was parsed
 * must parse back to the same single address.
 */
#include "config.h"

#include <string.h>

#include "address.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

/* "Display <addr>" written by addr_format reads back as addr. */
static void
check_format(const struct addr *a)
{
	struct addr_list back = ADDR_LIST_INIT;
	char *s = addr_format(a->display, a->addr);

	FUZZ_ASSERT(addr_parse_list(s, &back) == 0);
	FUZZ_ASSERT(back.n == 1);
	FUZZ_ASSERT(strcmp(back.v[0].addr, a->addr) == 0);
	addr_list_free(&back);
	free(s);
}

static void
check_list(const struct addr_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		FUZZ_ASSERT(l->v[i].addr != NULL);
		FUZZ_ASSERT(addr_valid_mailbox(l->v[i].addr, 1) == 1);
		FUZZ_ASSERT(addr_list_has(l, l->v[i].addr));
		check_format(&l->v[i]);
	}
}

static void
check_mailbox(const char *s)
{
	const char *d = addr_domain(s);
	int strict = addr_valid_mailbox(s, 0), bare = addr_valid_mailbox(s, 1);

	FUZZ_ASSERT(strict == 0 || strict == 1);
	FUZZ_ASSERT(bare == 0 || bare == 1);
	FUZZ_ASSERT(!strict || bare);          /* bare only widens */
	FUZZ_ASSERT(d == NULL || (d > s && d <= s + strlen(s)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr_list l = ADDR_LIST_INIT;
	char *s = fuzz_str(data, size);

	if (addr_parse_list(s, &l) == 0)
		check_list(&l);
	else
		FUZZ_ASSERT(l.n == 0);
	addr_list_free(&l);
	if (addr_parse_argv(s, &l) == 0)
		check_list(&l);
	addr_list_free(&l);
	check_mailbox(s);
	free(s);
	return 0;
}
