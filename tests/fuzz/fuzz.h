/*
 * fuzz - what every fuzz target shares: the libFuzzer entry point (built
 * either with clang -fsanitize=fuzzer by `./dev fuzz`, or with driver.c
 * so that the seed corpora run as regression tests in `make check`) and
 * small helpers to carve a target's input into a mode byte and a string.
 */
#ifndef BEARMAIL_FUZZ_H
#define BEARMAIL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/* Run one input; returns 0 (libFuzzer's contract).  A broken invariant
 * aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first byte of the input (0 when empty), consumed. */
static inline unsigned
fuzz_byte(const uint8_t **data, size_t *size)
{
	unsigned b;

	if (*size == 0)
		return 0;
	b = **data;
	(*data)++;
	(*size)--;
	return b;
}

/* The input as a NUL-terminated string (cut at the first NUL, as a C
 * string API would see it); xmalloc'd. */
static inline char *
fuzz_str(const uint8_t *data, size_t size)
{
	return xstrndup((const char *)data, size);
}

/* Abort with a reason: a broken invariant is a finding. */
#define FUZZ_ASSERT(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant failed: %s\n", \
		    __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

#endif
