/*
 * mime - keeping every line of a message within SMTP's 998 octets without
 * changing what its reader decodes: a body part with a longer line is
 * re-encoded (quoted-printable for text, base64 otherwise), a long header
 * line is folded at its whitespace.  Works on the canonical (CRLF) spool,
 * streamed: memory stays bounded whatever the size of the message.
 */
#ifndef BEARMAIL_MIME_H
#define BEARMAIL_MIME_H

#include <stddef.h>

#include "header.h"
#include "util.h"

/* RFC 5321 4.5.3.1.6: the octets a line may hold, CRLF not counted. */
#define MIME_LINE_MAX 998
/* The largest header of a body part or encapsulated message read. */
#define MIME_HEADER_MAX (64 * 1024)
/* Multiparts and messages nested deeper are not looked into. */
#define MIME_DEPTH_MAX 32
/* The longest boundary taken (RFC 2046 allows 70). */
#define MIME_BOUNDARY_MAX 200

enum mime_cte {
	MIME_CTE_NONE,      /* no Content-Transfer-Encoding field */
	MIME_CTE_7BIT,
	MIME_CTE_8BIT,
	MIME_CTE_BINARY,
	MIME_CTE_QP,
	MIME_CTE_BASE64,
	MIME_CTE_OTHER      /* one bearmail cannot decode (x-uuencode ...) */
};

enum mime_kind { MIME_LEAF, MIME_MULTIPART, MIME_MESSAGE };

/* Why a multipart or message entity is a leaf all the same. */
enum mime_opaque {
	MIME_OPAQUE_NO,
	MIME_OPAQUE_BOUNDARY,   /* multipart without a usable boundary */
	MIME_OPAQUE_DEPTH,      /* nested deeper than MIME_DEPTH_MAX */
	MIME_OPAQUE_7BIT        /* message/partial, message/external-body:
	                           7bit only (RFC 2046 5.2.2, 5.2.3) */
};

struct mime_ctype {
	int valid;                              /* type "/" subtype parsed */
	char type[128];                         /* "text/plain", lower case */
	char boundary[MIME_BOUNDARY_MAX + 1];
	int has_boundary;                       /* 1 to MIME_BOUNDARY_MAX octets */
	int has_charset;
};

/*
 * Parse a Content-Type value (RFC 2045 5.1, as stored by hdr_parse:
 * folding and comments allowed).  Returns 0, or -1 when there is no
 * type/subtype (ct->valid 0: RFC 2045 5.2 makes that text/plain).
 */
int mime_parse_ctype(const char *value, struct mime_ctype *ct);
/* A Content-Transfer-Encoding value as an enum mime_cte (never NONE). */
int mime_parse_cte(const char *value);

/* An entity (the message, a body part, an encapsulated message) as
 * mime_walk() sees it.  Offsets are in the spool file. */
struct mime_entity {
	struct mime_entity *parent;   /* NULL for the message itself */
	int depth;
	int kind;                     /* enum mime_kind */
	int opaque;                   /* enum mime_opaque */
	char type[128];               /* lower case; the default when absent */
	int has_ctype;                /* a Content-Type field is present */
	int has_mime_version;
	int cte;                      /* enum mime_cte */
	char cte_name[32];            /* the field's value, for messages */
	long long hstart, bstart;     /* header [hstart, bstart): empty for
	                                 the message, whose header is given */
	long long bend;               /* body [bstart, bend) */
	long long hlongest;           /* longest header line */
	long long longest;            /* leaf: longest body line */
	int eightbit, bad_utf8;       /* leaf body */
	long long pre_start, pre_end, pre_longest;   /* multipart: preamble */
	long long epi_start, epi_end, epi_longest;   /*   and epilogue */
	int flags;                    /* the visitor's */
};

/* Called with end 0 once the entity's header is read, with end 1 once its
 * body (and every entity inside it) is; non-zero stops the walk (its
 * return value, with e filled). */
typedef int (*mime_visit_fn)(void *ctx, struct mime_entity *ent, int end);

/*
 * Walk the entities of the body [off, off + len) of fd, the header of the
 * message being top: multiparts by their boundaries (RFC 2046 5.1.1: the
 * CRLF before a boundary line belongs to it), message/rfc822 and
 * message/global bodies as messages (when not encoded), everything else
 * as leaves.  Returns 0, EX_IOERR, EX_DATAERR (a part header over
 * MIME_HEADER_MAX, a boundary line over MIME_LINE_MAX) or the visitor's
 * code.
 */
int mime_walk(const struct hdrs *top, int fd, long long off, long long len,
    mime_visit_fn fn, void *ctx, struct bm_err *e);

/*
 * Fold every field of h that has a line over MIME_LINE_MAX at its
 * whitespace (hdr_refold); in an unstructured field (Subject, Comments,
 * Content-Description, Thread-Topic) a word too long for any line is
 * written as RFC 2047 encoded-words.  Returns 0, or EX_DATAERR naming a
 * field that cannot be folded.
 */
int mime_fold_header(struct hdrs *h, struct bm_err *e);

struct mime_plan;

/*
 * Read the body [off, off + len) of fd and decide what must change so
 * that no line passes MIME_LINE_MAX.  *out is NULL when nothing must (the
 * message is then sent as it is), else a plan for mime_apply().  Returns
 * 0, EX_IOERR, or EX_DATAERR with one line naming what cannot be fixed.
 */
int mime_plan(const struct hdrs *top, int fd, long long off, long long len,
    struct mime_plan **out, struct bm_err *e);

/*
 * Write the new body to out_fd (from its current offset) and edit top,
 * the message's header, to match (MIME-Version, Content-Type,
 * Content-Transfer-Encoding).  *out_len: the bytes written; *eightbit:
 * whether any is 8-bit.  Returns 0, EX_IOERR, EX_CANTCREAT (disk full)
 * or EX_DATAERR.
 */
int mime_apply(const struct mime_plan *p, struct hdrs *top, int out_fd,
    long long *out_len, int *eightbit, struct bm_err *e);

void mime_plan_free(struct mime_plan *p);

/* Decode a body as a reader does (RFC 2045 6.7 quoted-printable, 6.8
 * base64 ignoring what is not in its alphabet; anything else as it is);
 * appended to out.  For checking what mime_apply() wrote. */
void mime_decode(int cte, const char *p, size_t n, struct buf *out);

#endif
