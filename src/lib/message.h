/*
 * message - the message being submitted: spooled to a private file with
 * canonical line endings, its header parsed, the -t recipients read from
 * it, and the header completed and fixed (Bcc removed, Date, Message-ID
 * and From added, the From policy applied, lines kept within SMTP's 998
 * octets) before it is sent.
 */
#ifndef BEARMAIL_MESSAGE_H
#define BEARMAIL_MESSAGE_H

#include <stddef.h>
#include <time.h>

#include "address.h"
#include "header.h"
#include "util.h"

/* The largest header block accepted (the rest of the message is streamed). */
#define MSG_HEADER_MAX (1024 * 1024)

struct message {
	int fd;                 /* the spool file (canonical CRLF, as received),
	                           O_TMPFILE or unlinked; -1 when none */
	long long size;         /* bytes in the spool */
	struct hdrs hdrs;       /* parsed header, modified by msg_complete */
	long long body_off;     /* where the body starts in the spool */
	long long body_len;
	int eightbit;           /* a byte >= 0x80 anywhere in header or body */
	long long longest;      /* the longest line spooled, CRLF not counted;
	                           0 once msg_complete re-encoded the body */
	char *spool_dir;        /* where a re-encoded copy is spooled */
	char *head;             /* after msg_complete: the serialized header */
	size_t head_len;        /*   block (including the empty line) */
	char *msgid;            /* private: msg_message_id()'s answer */
};

/*
 * Copy in_fd (stdin) to a private 0600 spool file in spool_dir (O_TMPFILE,
 * else mkstemp and unlink at once), canonicalising line endings as it goes
 * (canon.h: 64 KiB at a time, never the whole message in memory) and
 * stopping at a lone "." unless ignore_dots.  Then parse the header (at
 * most MSG_HEADER_MAX bytes of it are read back).  Empty input is a
 * message with no header and no body.  m is initialised here; call
 * msg_free() whatever this returns.  Returns 0; EX_CANTCREAT when the spool
 * file cannot be created or the disk is full, EX_IOERR on other read/write
 * errors, EX_DATAERR for a header larger than MSG_HEADER_MAX or one that
 * holds a NUL byte.
 */
int msg_spool(struct message *m, int in_fd, int ignore_dots,
    const char *spool_dir, struct bm_err *e);

/*
 * The -t recipients (call before msg_complete, which removes Bcc): when
 * there are Resent-To/Resent-Cc/Resent-Bcc fields, those of the first
 * (topmost) Resent- block that has any; else all To, Cc and Bcc fields.
 * Appended to out, deduplicated.  Returns 0, or EX_DATAERR naming the
 * field that cannot be parsed.
 */
int msg_header_recipients(struct message *m, struct addr_list *out,
    struct bm_err *e);

struct msg_policy {
	const char *account_addr;   /* the account's address */
	/* whether the account may send as addr; NULL: only account_addr */
	int (*may_send_as)(const void *ctx, const char *addr);
	const void *ctx;
	int policy;                 /* 0 rewrite, 1 keep, 2 reject (enum from_policy) */
	const char *fullname;       /* -F, else the user's GECOS name, or NULL */
	const char *domain;         /* for Message-ID and bare local parts in
	                               From; NULL: the account's domain */
	time_t now;                 /* for Date */
};

/*
 * Complete and fix the header, then serialize it into m->head:
 * - every Bcc and Resent-Bcc field is removed;
 * - Date (RFC 5322, local time, numeric zone) and Message-ID
 *   (<hex.time@domain>) are added when missing;
 * - From is added when missing (or empty): "fullname <account_addr>";
 * - the From policy is applied to the first mailbox of From (a bare local
 *   part gets "@domain" first): allowed -> unchanged; rewrite -> From
 *   becomes the account address with the original display name (or the
 *   comment of "root (Cron Daemon)", or fullname), and the original address
 *   goes to a new Reply-To unless there is one; keep -> unchanged;
 *   reject -> EX_NOPERM.  A Sender field is checked the same way (rewrite
 *   removes it).  An unparseable From is replaced under rewrite and is
 *   EX_DATAERR under reject.
 * Then no line may be longer than SMTP's 998 octets (RFC 5321 4.5.3.1.6)
 * and what a reader decodes may not change (mime.h): a header line is
 * folded at its whitespace; when the spool holds a longer line, the
 * parts that have one are re-encoded (quoted-printable for text, base64
 * otherwise) into a new private spool file in spool_dir, which m->fd,
 * body_off and body_len then describe.  A message without long lines is
 * left byte for byte as it was.
 * Returns 0 or a sysexits code (e filled): EX_DATAERR for a long line
 * that cannot be fixed, EX_CANTCREAT or EX_IOERR for the new spool file.
 */
int msg_complete(struct message *m, const struct msg_policy *p,
    struct bm_err *e);

/* The Message-ID field's value, unfolded and trimmed, or NULL.  The string
 * belongs to m. */
const char *msg_message_id(struct message *m);

/* Close the spool file and free everything; m can be spooled again. */
void msg_free(struct message *m);

#endif
