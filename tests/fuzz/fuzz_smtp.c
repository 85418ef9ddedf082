/*
 * fuzz_smtp - server replies (smtp.h): every line of the input through
 * smtp_parse_line, and the whole input as an EHLO reply through
 * smtp_offline and the extension lookups.
 */
#include "config.h"

#include <string.h>

#include "smtp.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

static const char *const keywords[] = {
	"SIZE", "AUTH", "PIPELINING", "8BITMIME", "SMTPUTF8", "DSN",
	"STARTTLS", "ENHANCEDSTATUSCODES", "XOAUTH2", "",
};

static void
parse_line(const char *line)
{
	const char *text = NULL;
	char enh[16];
	int code = 0, cont = -1;

	memset(enh, 'z', sizeof(enh));
	if (smtp_parse_line(line, &code, &cont, enh, &text) != 0)
		return;
	FUZZ_ASSERT(code >= 200 && code <= 599);
	FUZZ_ASSERT(cont == 0 || cont == 1);
	FUZZ_ASSERT(memchr(enh, '\0', sizeof(enh)) != NULL);
	FUZZ_ASSERT(text >= line && text <= line + strlen(line));
}

static void
each_line(const char *s)
{
	char *copy = xstrdup(s), *line, *save = NULL;

	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		line[strcspn(line, "\r")] = '\0';
		parse_line(line);
	}
	free(copy);
}

static void
offline(const char *s)
{
	struct smtp *sm = smtp_offline(s);
	size_t i;

	if (sm == NULL)
		return;
	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		const char *p = smtp_ext_param(sm, keywords[i]);

		if (p != NULL)
			FUZZ_ASSERT(smtp_has_ext(sm, keywords[i]));
	}
	FUZZ_ASSERT(smtp_max_size(sm) >= 0);
	FUZZ_ASSERT(smtp_last_reply(sm) != NULL);
	smtp_close(sm);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);

	each_line(s);
	parse_line(s);
	offline(s);
	free(s);
	return 0;
}
