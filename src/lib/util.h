/*
 * util - memory, strings, buffers and the error record shared by every
 * module.  Allocators never return NULL: on exhaustion they print one line
 * and exit EX_OSERR, so callers carry no allocation checks (as Postfix does).
 */
#ifndef BEARMAIL_UTIL_H
#define BEARMAIL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <sysexits.h>

#if defined(__GNUC__)
#define BM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define BM_NORETURN __attribute__((noreturn))
#else
#define BM_PRINTF(f, a)
#define BM_NORETURN
#endif

/* --- program name used as the prefix of every error line --- */
void util_set_progname(const char *name);
const char *util_progname(void);

/* Print "progname: message" on stderr and exit with code. */
BM_NORETURN void die(int code, const char *fmt, ...) BM_PRINTF(2, 3);
/* Print "progname: message" on stderr. */
void warnx_(const char *fmt, ...) BM_PRINTF(1, 2);

/* --- allocation (never NULL) --- */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) BM_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) BM_PRINTF(1, 0);

/* Overwrite n bytes so the compiler cannot elide it. */
void wipe(void *p, size_t n);
/* Wipe a NUL-terminated secret, then free it. NULL is fine. */
void wipe_free(char *s);

/* --- growable byte buffer, always NUL-terminated --- */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
#define BUF_INIT { NULL, 0, 0 }
void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) BM_PRINTF(2, 3);
void buf_reset(struct buf *b);
/* Free the storage (wiped first when secret is non-zero). */
void buf_free(struct buf *b, int secret);
/* Hand the storage to the caller (never NULL) and reset the buffer. */
char *buf_steal(struct buf *b);

/* --- string helpers --- */
/* Whether any of the n bytes at p is 8-bit (>= 0x80). */
int mem_has_8bit(const void *p, size_t n);
/* Parse a whole decimal number into *out within [min, max]; 0 on success. */
int str_to_ll(const char *s, long long min, long long max, long long *out);
/* Parse a size such as 35M, 512k, 1G, 1000; 0 on success. */
int str_to_size(const char *s, long long *out);
/* Parse a duration such as 30s, 5m, 2h, 5d (bare number: seconds). */
int str_to_seconds(const char *s, long long *out);
int str_has_prefix_ci(const char *s, const char *prefix);
/* Trim ASCII whitespace at both ends, in place; returns s. */
char *str_trim(char *s);
/*
 * UTF-8 as RFC 3629 section 4 has it (no overlong forms, no surrogates,
 * nothing above U+10FFFF), checked as it streams by: feed any number of
 * octets; the text so far is valid when !bad and need == 0.
 */
struct utf8 {
	int need;               /* continuation octets still expected */
	unsigned char lo, hi;   /* the range the next one must be in */
	int bad;
};
void utf8_feed(struct utf8 *u, const char *p, size_t n);
/* Whether the n octets at p are valid UTF-8. */
int utf8_valid(const char *p, size_t n);
/* The length of the well-formed character at s (n >= 1 octets left), or
 * 0 when there is none. */
size_t utf8_char(const char *s, size_t n);

/*
 * Secrets we sent (an AUTH response, a token, a refresh token, a client
 * secret) scrubbed from what the other side answers, which may quote them:
 * not just whole copies -- any run of SCRUB_GRAM octets found in a secret
 * becomes "[redacted]", so a secret quoted in pieces (split over lines,
 * cut short, inside other text) is gone too.  Only hashes of the secret's
 * runs are kept.  Zero-initialise; scrub_free wipes.
 */
#define SCRUB_GRAM 16
struct scrub {
	unsigned long long *h;       /* sorted */
	size_t n;
};
void scrub_add(struct scrub *sc, const char *secret);  /* NULL is fine */
/* Scrub b (its text) in place. */
void scrub_buf(const struct scrub *sc, struct buf *b);
/* Scrub the NUL-terminated s of size cap in place (truncated to fit). */
void scrub_str(const struct scrub *sc, char *s, size_t cap);
void scrub_free(struct scrub *sc);

/* Whether c is a control character (below 0x20, or DEL). */
int is_control(unsigned char c);
/* Every control character of s (NULL is fine) replaced by repl, in place:
 * for text from outside that is shown on one line.  Returns s. */
char *str_printable(char *s, char repl);

/*
 * What the failure policy (verdict.h) makes of an error: it alone sets
 * these; err_set gives the plain reading of a code (temporary when it is
 * EX_TEMPFAIL, nothing else).
 */
struct trouble;                  /* a row of the catalogue (verdict.h) */
struct bm_verdict {
	unsigned char temporary;     /* a later try may succeed: it waits */
	unsigned char throttled;     /* the other side asks us to slow down */
	unsigned char login_needed;  /* a person must sign in again */
	unsigned char fresh_token;   /* a token believed valid was refused */
	unsigned char stage;         /* enum verdict_stage */
	const struct trouble *row;   /* cause and fix, or NULL */
};

/*
 * The error record every fallible function fills: a sysexits code, one
 * line that names the problem and, where there is one, the fix, and the
 * policy's verdict on it.
 */
struct bm_err {
	int code;
	char msg[1024];
	struct bm_verdict v;
};
/* Fill e (if non-NULL) with code, the message and the plain verdict for
 * code; return code. */
int err_set(struct bm_err *e, int code, const char *fmt, ...) BM_PRINTF(3, 4);
/* Put "PREFIX: " before e's message, keeping its code and verdict (the
 * message may be an argument: it is copied first).  Returns e->code. */
int err_prefix(struct bm_err *e, const char *fmt, ...) BM_PRINTF(2, 3);

/*
 * --- reading whole files ---
 * Every file bearmail reads is opened here: O_RDONLY | O_NONBLOCK |
 * O_NOCTTY | O_CLOEXEC, so that a FIFO, a device or a terminal where a
 * file belongs cannot hang or steer the caller, then checked on the open
 * descriptor to be a regular file.  Messages name the file and the fix.
 */
#define FILE_NOFOLLOW	0x01	/* refuse a symbolic link (O_NOFOLLOW) */
#define FILE_SECRET	0x02	/* wipe the copies made (free the text: wipe_free) */
#define FILE_MISSING_OK	0x04	/* a missing file is no error (see below) */

/*
 * Open path with the flags above.  Returns 0 with *fd (and *st if
 * non-NULL, from fstat); with FILE_MISSING_OK, 0 and *fd = -1 when the
 * file does not exist.  Otherwise EX_NOINPUT: the file does not exist, is
 * not readable by us, is a symbolic link (FILE_NOFOLLOW), or is a
 * directory, FIFO, socket or device ("PATH is a FIFO, not a regular file:
 * ..."); or EX_IOERR for any other failure to open it.
 */
int file_open(const char *path, int flags, int *fd, struct stat *st,
    struct bm_err *e);
/*
 * Read fd (from file_open) to its end, at most max bytes, into *text
 * (NUL-terminated, *len bytes if len is non-NULL; the bytes may hold a
 * NUL).  Returns 0; EX_DATAERR when the file holds more than max bytes;
 * EX_IOERR when a read fails.  path is for the messages.
 */
int file_read_fd(int fd, const char *path, size_t max, int flags,
    char **text, size_t *len, struct bm_err *e);
/* file_open, file_read_fd and close.  With FILE_MISSING_OK a missing
 * file gives 0 and *text = NULL. */
int file_read(const char *path, size_t max, int flags, char **text,
    size_t *len, struct bm_err *e);

/* What a non-regular file is, for messages: "a directory", "a FIFO
 * (named pipe)", "a socket", "a character device", "a block device", "a
 * symbolic link" (from lstat). */
const char *file_kind(mode_t mode);

/* file_read without following a link, wiping what it copied: for the
 * files of others' modules (queue envelopes, client secrets).  Never a
 * NULL *out on success. */
int read_small_file(const char *path, size_t max, char **out, struct bm_err *e);

/* mkdir -p dir, creating what is missing with mode 0700: 0, or
 * EX_CANTCREAT with e naming the directory that could not be made. */
int mkdir_private(const char *dir, struct bm_err *e);
/* The same for the directory that holds path. */
int mkdir_parent(const char *path, struct bm_err *e);

/* Write all n bytes (retrying short writes and EINTR): 0, or -1 with errno. */
int write_all(int fd, const void *p, size_t n);

/* For processes that hold tokens: no core dumps, not ptrace-dumpable,
 * umask 077. */
void util_harden(void);

/* The home directory: $HOME when absolute, else the password database's
 * for the effective user; NULL when neither says. */
const char *util_home(void);
/* A file or directory of ours under an XDG base directory: $var/bearmail/
 * leaf when var (XDG_STATE_HOME, XDG_CONFIG_HOME) is absolute, else
 * HOME/fallback/bearmail/leaf (fallback: .local/state, .config); "/" for
 * a home nobody knows.  xmalloc'd. */
char *util_xdg_path(const char *var, const char *fallback, const char *leaf);

/* Milliseconds of the monotonic clock (for timeouts) and of the wall
 * clock (for times shared between processes). */
long long util_monotonic_ms(void);
long long util_wall_ms(void);

/* Random bytes from the kernel; dies if the kernel cannot provide them. */
void random_bytes(void *p, size_t n);

#endif
