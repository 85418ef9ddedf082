/*
 * exits - the one place where failures become sysexits codes (DESIGN.md
 * "Exit codes"): SMTP replies (basic and RFC 3463 enhanced codes) and the
 * names used in log lines.
 */
#ifndef BEARMAIL_EXITS_H
#define BEARMAIL_EXITS_H

#include <sysexits.h>

/*
 * Exit code for an SMTP reply: 4xx and 432/SubmissionQuotaExceeded are
 * EX_TEMPFAIL; 5.1.x EX_NOUSER; 5.7.x and SendAsDenied EX_NOPERM;
 * 5.3.4/552/5.6.x EX_DATAERR; 5.5.x syntax EX_PROTOCOL; other 5xx
 * EX_UNAVAILABLE.  enh may be NULL or "" when the server gave none; text
 * may be NULL.
 */
int exits_from_smtp(int code, const char *enh, const char *text);

/* Whether an exit code means "try again later" (the queue's business). */
int exits_is_temporary(int code);

/* A short name for a code: "usage", "tempfail", ... */
const char *exits_name(int code);

#endif
