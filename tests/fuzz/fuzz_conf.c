/*
 * fuzz_conf - the configuration file parser (conf.h): any text must
 * parse or be refused with a message; the lookups must work on whatever
 * parsed.
 */
#include "config.h"

#include "conf.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	struct bm_err e = { 0 };
	char *text = fuzz_str(data, size);
	struct account *a;

	if (conf_parse(text, "fuzz", &c, &e) == 0) {
		FUZZ_ASSERT(c != NULL);
		a = conf_default_account(c);
		FUZZ_ASSERT(a == NULL || conf_account(c, a->name) != NULL);
		a = conf_select(c, "someone@example.com");
		if (a != NULL)
			account_may_send_as(a, "someone@example.com");
	} else {
		FUZZ_ASSERT(c == NULL && e.msg[0] != '\0');
	}
	conf_free(c);
	free(text);
	return 0;
}
