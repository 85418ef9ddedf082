/*
 * aliases - the /etc/aliases table (aliases(5)): local names such as root
 * or postmaster mapped to real addresses, since bearmail has no local
 * delivery and every recipient must end at an address with a domain.
 */
#ifndef BEARMAIL_ALIASES_H
#define BEARMAIL_ALIASES_H

#include "address.h"
#include "util.h"

struct aliases;

/*
 * Load an aliases file: "name: target, target" lines, continuation lines
 * start with whitespace, lines whose first non-blank is '#' are comments,
 * keys are case-insensitive (the first of duplicates wins).  A missing
 * file gives an empty table.  Returns 0, or EX_CONFIG with e->msg
 * "FILE:LINE: ..." on a syntax error, or file_read's message (a FIFO,
 * directory, device, unreadable or oversized file), or a NUL byte.
 */
int aliases_load(const char *path, struct aliases **out, struct bm_err *e);

/* Parse from memory (tests); name is used in messages.  As aliases_load. */
int aliases_parse(const char *text, const char *name, struct aliases **out,
    struct bm_err *e);

/*
 * Expand one local name (the local part of "root", "root@localhost",
 * "root@<myhostname>") recursively: targets with a domain end the
 * recursion, bare names recurse (a name mapping to itself ends there), a
 * name without an entry uses the "default:" entry when there is one.
 * Results are appended to out, deduplicated.  path_for_msgs names the file
 * in messages.  Returns 0; EX_CONFIG for a loop ("alias loop: a -> b ->
 * a"), for |command, /file and :include: targets (bearmail delivers to
 * addresses only), for a malformed address target and for nesting deeper
 * than 32; EX_NOUSER when a name ends without a domain ("no alias for
 * \"root\": add a line ...").  On error out may hold part of the result.
 */
int aliases_expand(const struct aliases *a, const char *path_for_msgs,
    const char *name, struct addr_list *out, struct bm_err *e);

/* The number of entries (for newaliases). */
size_t aliases_count(const struct aliases *a);

void aliases_free(struct aliases *a);

#endif
