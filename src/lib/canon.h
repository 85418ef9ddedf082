/*
 * canon - the streaming line canonicaliser for message input: every line
 * ending becomes CRLF and no bare CR or LF survives (the SMTP smuggling
 * defence; RFC 5321 section 2.3.8 and 4.5.2), and a lone "." line ends the
 * input unless the caller asked to ignore dots (sendmail -i / -oi).
 */
#ifndef BEARMAIL_CANON_H
#define BEARMAIL_CANON_H

#include <stddef.h>

#include "util.h"

struct canon {
	int ignore_dots;   /* a lone "." is data */
	int pending_cr;    /* the last byte seen was a CR */
	int bol;           /* at the beginning of a line */
	int dot_pending;   /* the line so far is a single "." (held back) */
	int done;          /* a lone "." has ended the input */
	size_t col;        /* octets output in the current line */
	size_t longest;    /* the longest line output, without its CRLF */
};

/* Start a new message; ignore_dots non-zero: a lone "." is ordinary data.
 * c->longest then says how long the longest line output so far is (octets,
 * CRLF not counted), so that the spooler knows for free whether a line
 * passes SMTP's limit (RFC 5321 4.5.3.1.6). */
void canon_init(struct canon *c, int ignore_dots);

/*
 * Feed n input bytes; the canonical output is appended to out.  One CR
 * directly before an LF is part of that line ending; any other CR, and any
 * other LF, ends a line of its own (so CR CR LF gives two line endings).
 * The output carries no dot-stuffing.  Returns 1 once a line holding only
 * "." (ended by CRLF, LF or CR) has ended the input (never when
 * ignore_dots); that line is not output and the rest of the input must be
 * ignored (further calls output nothing and return 1).  Returns 0 otherwise.
 * State survives any chunk boundary.
 */
int canon_feed(struct canon *c, const char *in, size_t n, struct buf *out);

/*
 * End of input: a pending CR becomes a line ending, and a last line
 * without one is ended with CRLF.  A final "." without a line ending is
 * data (output as ".\r\n").  Nothing is output once the input was ended by
 * a lone dot.
 */
void canon_finish(struct canon *c, struct buf *out);

#endif
