/*
 * fuzz_aliases - the aliases(5) table (aliases.h): parse any text, then
 * expand a few names.  Every expanded address carries a domain and is a
 * valid mailbox; errors carry a message.
 */
#include "config.h"

#include <string.h>

#include "address.h"
#include "aliases.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

static const char *const names[] = {
	"root", "postmaster", "MAILER-DAEMON", "a", "b", "nobody", "default",
};

static void
expand(const struct aliases *a, const char *name)
{
	struct addr_list out = ADDR_LIST_INIT;
	struct bm_err e = { 0 };
	size_t i;

	if (aliases_expand(a, "fuzz", name, &out, &e) == 0) {
		for (i = 0; i < out.n; i++) {
			FUZZ_ASSERT(addr_domain(out.v[i].addr) != NULL);
			FUZZ_ASSERT(addr_valid_mailbox(out.v[i].addr, 0));
		}
	} else {
		FUZZ_ASSERT(e.msg[0] != '\0');
	}
	addr_list_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aliases *a = NULL;
	struct bm_err e = { 0 };
	char *text = fuzz_str(data, size);
	size_t i;

	if (aliases_parse(text, "fuzz", &a, &e) == 0) {
		FUZZ_ASSERT(a != NULL);
		aliases_count(a);
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			expand(a, names[i]);
	} else {
		FUZZ_ASSERT(e.msg[0] != '\0');
	}
	aliases_free(a);
	free(text);
	return 0;
}
