/*
 * options - the sendmail(8) command line as real callers write it (sendmail
 * 8 / Postfix option grammar), parsed into a struct and turned into the
 * normalised long-option argv that bearmail-submit understands.  Pure
 * functions: no I/O, nothing from the environment.
 */
#ifndef BEARMAIL_OPTIONS_H
#define BEARMAIL_OPTIONS_H

#include <stddef.h>

#include "util.h"

enum sm_mode {
	SM_DELIVER,     /* -bm (default) */
	SM_SMTP,        /* -bs */
	SM_QUEUE_LIST,  /* -bp, mailq */
	SM_QUEUE_RUN,   /* -q, -qNN */
	SM_VERIFY,      /* -bv */
	SM_NEWALIASES   /* -bi, newaliases */
};

enum sm_prog { SM_PROG_SENDMAIL, SM_PROG_MAILQ, SM_PROG_NEWALIASES };

/*
 * The parsed command line.  Strings are owned (xmalloc'd) and NULL when the
 * option was not given; from is "" for the null sender.  The enumerated
 * values (error_mode, delivery, body, ret) point to static strings.  rcpts
 * points into the caller's argv.
 */
struct sm_opts {
	enum sm_prog prog;
	enum sm_mode mode;
	char *config;           /* -C */
	int read_recipients;    /* -t */
	int ignore_dots;        /* -i, -oi */
	char *from;             /* -f, -r */
	char *fullname;         /* -F */
	const char *error_mode; /* -oe?: mail | print | quiet | write */
	const char *delivery;   /* -od?: sync | background | queue */
	const char *body;       /* -B: 7bit | 8bitmime */
	char *notify;           /* -N: never | success,failure,delay (lowercase) */
	const char *ret;        /* -R: full | hdrs */
	char *envid;            /* -V */
	int verbose;            /* -v */
	int show_usage;         /* set by sm_parse when the usage line helps */
	char **rcpts;
	size_t nrcpts;
};

/*
 * Parse argv (the basename of argv[0] decides sendmail, mailq or
 * newaliases).  Returns 0 and fills o, or EX_USAGE with err filled ("unknown
 * option -Z", "-bd: bearmail is not a daemon", ...).  Call sm_opts_free()
 * in both cases.
 */
int sm_parse(int argc, char **argv, struct sm_opts *o, struct bm_err *err);

/*
 * Build the bearmail-submit argv from o: submit_path, --mode=MODE, the
 * options in a fixed order, "--", the recipient words.  NULL-terminated;
 * the array and every string are xmalloc'd (free with sm_argv_free()).
 */
char **sm_submit_argv(const struct sm_opts *o, const char *submit_path);

/* Free an argv from sm_submit_argv().  NULL is fine. */
void sm_argv_free(char **argv);

/* Free what o owns and clear it. */
void sm_opts_free(struct sm_opts *o);

/* A one-line usage for the program o was parsed for (no newline). */
const char *sm_usage(const struct sm_opts *o);

#endif
