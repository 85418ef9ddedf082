/*
 * diag - the troubleshooting catalogue: what an SMTP reply, an AADSTS
 * code or one of bearmail's own failures most likely means, and the fix.
 * One table; `bearmail doctor` prints from it and docs/troubleshooting.md
 * shows the same text (tests/unit/test_diag.c checks that they agree).
 */
#ifndef BEARMAIL_DIAG_H
#define BEARMAIL_DIAG_H

#include <stddef.h>

struct diag {
	long aadsts;        /* AADSTS code matched, or 0 */
	int smtp;           /* SMTP reply code matched (0: any) */
	const char *enh;    /* RFC 3463 enhanced code matched, or NULL */
	const char *word;   /* text matched in a reply or message, or NULL */
	const char *what;   /* the error as shown: "535 5.7.139", "AADSTS65001" */
	const char *cause;  /* what it most likely means */
	const char *fix;    /* what to do; may hold {user} and {account} */
};

/*
 * The entry for an SMTP reply: one whose word appears in text
 * (case-insensitive), else one whose enhanced code equals enh (and whose
 * code, when set, equals code).  enh and text may be NULL.  NULL when
 * the catalogue has nothing.
 */
const struct diag *diag_smtp(int code, const char *enh, const char *text);

/* The entry for an AADSTS code, or NULL. */
const struct diag *diag_aadsts(long code);

/*
 * The entry a message (an error line of bearmail's) points at: its first
 * "AADSTSn", else a catalogue word in it, else an enhanced status code in
 * it (as a whole token: "5.7.3" does not match "5.7.30").  NULL if none.
 */
const struct diag *diag_find(const char *msg);

/* d's fix with {user} and {account} replaced (NULL ones are left as
 * written).  xmalloc'd. */
char *diag_fix(const struct diag *d, const char *user, const char *account);

/* The whole catalogue, in the order of docs/troubleshooting.md. */
const struct diag *diag_table(size_t *n);

#endif
