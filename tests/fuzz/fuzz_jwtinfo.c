/*
 * fuzz_jwtinfo - the JWT claims reader (jwtinfo.h): any token string
 * decodes or is refused with every claim NULL/0.
 */
#include "config.h"

#include "jwtinfo.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jwtinfo j;
	char *s = fuzz_str(data, size);

	if (jwtinfo_decode(s, &j) == 0) {
		jwtinfo_has_permission(&j, "SMTP.Send");
		jwtinfo_aud_is_exchange(&j);
	} else {
		FUZZ_ASSERT(j.aud == NULL && j.scp == NULL && j.roles == NULL &&
		    j.user == NULL && j.tid == NULL && j.appid == NULL &&
		    j.exp == 0);
	}
	jwtinfo_free(&j);
	free(s);
	return 0;
}
