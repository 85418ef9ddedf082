/*
 * header - RFC 5322 header fields (section 2.2 and 3.6): parsing the header
 * block of a canonical (CRLF) message, looking fields up, editing them and
 * writing them back, folding the values bearmail generates.
 */
#ifndef BEARMAIL_HEADER_H
#define BEARMAIL_HEADER_H

#include <stddef.h>

#include "util.h"

struct hdr {
	char *name;    /* the field name as written */
	char *value;   /* raw value after the colon, folding kept (CRLF + WSP),
	                  no final CRLF */
};

struct hdrs {
	struct hdr *v;
	size_t n, cap;
};

#define HDRS_INIT { NULL, 0, 0 }

/*
 * Parse the header block at the start of data (canonical CRLF text) and
 * append its fields to h.  *consumed is set to the bytes of the header
 * block including the empty line that ends it.  A line that is neither a
 * field nor a continuation ends the header there (the body starts with that
 * line; no empty line is consumed); when the very first line is such a
 * line the message has no header at all.  A leading mbox "From " line is
 * dropped (as sendmail and Postfix do) and counted in *consumed.  A last
 * line without CRLF is accepted.  Returns 0 (-1 is reserved for invalid
 * arguments).
 */
int hdr_parse(const char *data, size_t len, struct hdrs *h, size_t *consumed);

/* The first field called name (case-insensitive), or NULL. */
struct hdr *hdr_get(struct hdrs *h, const char *name);
/* How many fields are called name. */
size_t hdr_count(struct hdrs *h, const char *name);
/* Remove every field called name. */
void hdr_remove_all(struct hdrs *h, const char *name);

/*
 * Add a field at the end / at the top.  value is the unfolded text (no
 * leading space); it is stored as " value", folded at whitespace so lines
 * stay within 78 columns where possible.  CR and LF in value that are not
 * folding become spaces, so a value can never inject a field.
 */
void hdr_append(struct hdrs *h, const char *name, const char *value);
void hdr_prepend(struct hdrs *h, const char *name, const char *value);
/* Replace the first field called name (in place), else append it. */
void hdr_set(struct hdrs *h, const char *name, const char *value);

/* value without its folding (CRLF before WSP removed); xmalloc'd. */
char *hdr_unfold(const char *value);
/* hdr_unfold() with surrounding whitespace trimmed; xmalloc'd. */
char *hdr_unfold_trim(const char *value);

/* Whether the line (len octets, no CRLF) starts a field: "name [WSP] :",
 * the test hdr_parse applies. */
int hdr_is_field(const char *line, size_t len);

/* The longest line of f as written ("Name:value", folded), CRLF not
 * counted. */
size_t hdr_longest_line(const struct hdr *f);

/*
 * Fold f again at its whitespace: every fold becomes CRLF inserted before
 * a run of whitespace, so the unfolded value is exactly what it was.
 * Lines are kept within 78 columns where the words allow, and a word too
 * long for that gets a line of its own (after the name when it must).
 * Returns 0, or -1 when a line is still longer than max (a word, or a
 * run of whitespace, that no fold can shorten; f is refolded anyway).
 */
int hdr_refold(struct hdr *f, size_t max);

/* Serialize as "Name:value" CRLF lines followed by the empty line. */
void hdr_write(const struct hdrs *h, struct buf *out);
/* Free the fields; h is left empty and reusable. */
void hdr_free(struct hdrs *h);

#endif
