/*
 * address - mailbox syntax: RFC 5322 address lists as found in To/Cc/From
 * (section 3.4, with the obsolete forms of 4.4), RFC 5321 mailboxes for the
 * envelope (section 4.1.2, with RFC 6531 UTF-8), argv recipients, and the
 * list type every module passes recipients around in.
 */
#ifndef BEARMAIL_ADDRESS_H
#define BEARMAIL_ADDRESS_H

#include <stddef.h>

struct addr {
	char *display;   /* raw display name (or the comment of "a@b (Name)"),
	                    unfolded and trimmed; NULL when there is none */
	char *addr;      /* addr-spec: local@domain, or a bare local part */
};

struct addr_list {
	struct addr *v;
	size_t n, cap;
};

#define ADDR_LIST_INIT { NULL, 0, 0 }

/*
 * Parse an RFC 5322 address-list (a header field's raw value; folding and
 * comments are allowed anywhere): "Name <a@b>", "a@b (Name)", quoted
 * display names, quoted local parts, encoded-word display names, groups
 * (their members are flattened, "undisclosed-recipients:;" gives nothing),
 * obsolete routes (<@r:a@b>, the route is dropped) and bare local parts
 * ("root").  Empty elements are skipped.  Every address must pass
 * addr_valid_mailbox(addr, 1).  On success the mailboxes are appended to
 * out (no deduplication) and 0 is returned; on a syntax error out is left
 * unchanged and -1 is returned.
 */
int addr_parse_list(const char *value, struct addr_list *out);

/*
 * Parse one argv recipient word: a comma-separated list whose elements may
 * be "Name <a@b>" too (cron's "a@x,b@y").  Control characters (CR, LF, NUL
 * can not occur) are refused.  Returns 0 (out appended to) or -1.
 */
int addr_parse_argv(const char *word, struct addr_list *out);

/*
 * Whether s is an RFC 5321 Mailbox usable in MAIL FROM / RCPT TO:
 * local-part (dot-string, or quoted string) "@" domain (DNS labels, or an
 * address literal [1.2.3.4] / [IPv6:...]); or, when allow_bare, a bare
 * local part.  No control characters, no space outside quotes, no <>;
 * at most 64 octets of local part, 255 of domain, 254 in all.  Octets
 * >= 0x80 are allowed (SMTPUTF8).  Returns 1 when valid, else 0.
 */
int addr_valid_mailbox(const char *s, int allow_bare);

/* The domain of addr (after the '@' that ends the local part), or NULL. */
const char *addr_domain(const char *addr);

/* Append a copy of (display, addr); display may be NULL. */
void addr_list_add(struct addr_list *l, const char *display, const char *addr);
/* Whether l holds addr (the whole address compared case-insensitively,
 * as Postfix deduplicates). */
int addr_list_has(const struct addr_list *l, const char *addr);
/* addr_list_add() unless addr_list_has(); returns 1 when added. */
int addr_list_add_unique(struct addr_list *l, const char *display,
    const char *addr);
/* Free the entries; l is left empty and reusable. */
void addr_list_free(struct addr_list *l);

/*
 * "Display <addr>" for a header, or "addr" when display is NULL or empty.
 * The display name is quoted (with '"' and '\' escaped) unless it is
 * already one quoted string or a phrase of atoms and encoded-words; control
 * characters (CR and LF too; not HT) become spaces.  xmalloc'd.
 */
char *addr_format(const char *display, const char *addr);

#endif
