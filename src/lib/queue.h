/*
 * queue - the durable mail queue: a message is delivered or in here,
 * written so that a crash or a power cut cannot lose it (docs/queue.md).
 *
 * Layout under queue_dir (default $XDG_STATE_HOME/bearmail/queue), all 0700:
 *   tmp/       files being written (never read by anyone else)
 *   data/      ID.msg: the message exactly as it goes on the wire (canonical
 *              CRLF header block + body, not dot-stuffed); never changed
 *   new/       ID.env: the envelope of a message not tried yet
 *   deferred/  ID.env: tried, waiting for next_try
 *   hold/      ID.env: held by the administrator (`bearmail queue hold`)
 *   corrupt/   ID.env, ID.msg: a message whose envelope cannot be read back
 *              or whose data file is not what was queued, moved aside (as
 *              Postfix does) and never sent; queue_corrupt_list() names them
 *   locks/     ID.lock: flock'd while a process works on the message;
 *              ACCOUNT.slotN: flock'd while a connection to the account is
 *              open (max_connections across processes)
 * The envelope (JSON) is the commit point: data/ID.msg is renamed in first,
 * then the envelope from tmp/ into new/, then the directories are fsync'd.
 * A data file with no envelope older than a day is debris from a crash and
 * is removed by queue_cleanup().  The envelope is replaced atomically (tmp +
 * fsync + rename) on every change, so a killed process never leaves half a
 * record; its flock dies with it.
 *
 * Every record written reads back: what an envelope holds is bounded
 * (QUEUE_*_MAX below; server text is cut, wire fields that break a bound
 * are refused at enqueue), strings are valid UTF-8, and the reader takes
 * the whole regular file, up to the largest envelope the bounds allow.  The
 * envelope records the data file's size and SHA-256, checked before each
 * send (queue_data_open).
 */
#ifndef BEARMAIL_QUEUE_H
#define BEARMAIL_QUEUE_H

#include <sys/types.h>

#include "conf.h"
#include "util.h"

/* Octets of server text kept: each recipient's reply, the last error and
 * the Message-ID are cut to this, on a UTF-8 character boundary (invalid
 * UTF-8 becomes '?'). */
#define QUEUE_TEXT_MAX 1000
/* Octets of a wire field: the account, the sender and recipient addresses,
 * NOTIFY, RET, ENVID.  Longer ones, invalid UTF-8 or a control character
 * are refused (EX_DATAERR) rather than changed. */
#define QUEUE_FIELD_MAX 1000
/* Recipients of one queued message. */
#define QUEUE_RCPTS_MAX 100000

enum qstate { Q_NEW, Q_DEFERRED, Q_HOLD };
enum qrcpt_state { QR_PENDING, QR_SENT, QR_FAILED };

struct qrcpt {
	char *addr;
	char *notify;            /* DSN NOTIFY or NULL */
	enum qrcpt_state state;
	char *reply;             /* the last reply for this recipient, or NULL */
	int code;                /* its SMTP code (0: none) */
	char enh[16];
};

struct qenv {
	char id[32];             /* assigned by queue_enqueue */
	enum qstate state;
	char *account;
	char *sender;            /* "" for <> */
	char *msgid;             /* Message-ID, for listings and logs */
	long long created;       /* unix time of arrival */
	long long next_try;      /* unix time; 0: now */
	int attempts;
	char *last_error;        /* why it is waiting (one line) */
	char *dsn_ret;
	char *dsn_envid;
	int eightbit;
	int error_mode_mail;     /* -oem: bounce even when the caller waited */
	int is_bounce;           /* a DSN we made: never bounce it */
	int warned;              /* the delay warning was sent */
	long long size;          /* bytes of data/ID.msg */
	char sha256[65];         /* its SHA-256 in hex; "" in envelopes
	                          * written before checksums (size checked) */
	struct qrcpt *rcpts;
	size_t nrcpts;
};

struct queue;

/* The queue directory for an account (xmalloc'd). */
char *queue_dir_for(const struct account *a);

/* Open (creating the directories 0700) the queue at dir.  Refuses a
 * directory others can write.  EX_CANTCREAT with the path and the fix. */
int queue_open(const char *dir, struct queue **out, struct bm_err *e);
void queue_close(struct queue *q);
const char *queue_path(const struct queue *q);

/* Add a recipient to an envelope being built. */
void qenv_add_rcpt(struct qenv *env, const char *addr, const char *notify);
void qenv_free(struct qenv *env);
/* Recipients still pending. */
size_t qenv_pending(const struct qenv *env);

/*
 * Durably enqueue: the message is head (head_len bytes) followed by
 * body_len bytes of body_fd from body_off (body_fd -1: head only); env->id
 * is assigned, env->size and env->sha256 set.  Returns 0 only when both
 * files and their directories are fsync'd; else EX_DATAERR (the envelope
 * breaks a bound: more than QUEUE_RCPTS_MAX recipients, a wire field
 * refused), EX_CANTCREAT (cannot create: permissions, ENOSPC, EFBIG) or
 * EX_IOERR, with nothing left behind.
 */
int queue_enqueue(struct queue *q, struct qenv *env, const char *head,
    size_t head_len, int body_fd, long long body_off, long long body_len,
    struct bm_err *e);

/* Every envelope in the queue (new, deferred, hold), oldest first.  *out
 * is an array of *n envelopes; free with queue_list_free.  A damaged
 * envelope is moved to corrupt/ (with one log line) and left out. */
int queue_list(struct queue *q, struct qenv **out, size_t *n,
    struct bm_err *e);
void queue_list_free(struct qenv *v, size_t n);

/* Load one envelope by id. EX_NOINPUT when there is no such message,
 * EX_DATAERR when it was damaged (and is now in corrupt/). */
int queue_load(struct queue *q, const char *id, struct qenv *env,
    struct bm_err *e);

/* Lock a message for work: 0 and *fd, or 1 when another process holds it
 * (nonblocking), or an error code. */
int queue_lock(struct queue *q, const char *id, int *fd, struct bm_err *e);
void queue_unlock(int fd);

/* Write env back (atomically) into the directory of env->state, replacing
 * its envelope: EX_NOINPUT when it is no longer in the queue (removed, or
 * moved to corrupt/), EX_DATAERR when env breaks a bound. */
int queue_update(struct queue *q, const struct qenv *env, struct bm_err *e);

/* Remove the message (envelope first, then data). */
int queue_remove(struct queue *q, const char *id, struct bm_err *e);

/*
 * Open data/ID.msg read-only (*size its length), after checking it against
 * the envelope: its size, and its SHA-256 when the envelope has one (read
 * through once).  A data file that is missing, of another size or content
 * is EX_DATAERR "data file of message ID is damaged (N bytes, expected M)
 * ...": the message (envelope and data) is then in corrupt/ and must not
 * be tried again.  EX_NOINPUT when there is no such message, EX_IOERR when
 * it cannot be read now.
 */
int queue_data_open(struct queue *q, const char *id, int *fd,
    long long *size, struct bm_err *e);

/* A message in corrupt/: its id, and the size of its data file there (-1
 * when it has none). */
struct qdamaged {
	char *id;
	long long size;
};

/* The messages in corrupt/, by id.  *out is an array of *n; free with
 * queue_corrupt_free. */
int queue_corrupt_list(struct queue *q, struct qdamaged **out, size_t *n,
    struct bm_err *e);
void queue_corrupt_free(struct qdamaged *v, size_t n);

/* How many messages this handle has moved to corrupt/ since it was
 * opened (a flush can say so). */
size_t queue_quarantined(const struct queue *q);

/*
 * The envelope codec, for tests and the fuzzer.  queue_env_parse reads
 * len bytes of JSON into *env (state Q_NEW): 0, or EX_DATAERR with e
 * naming what is wrong (nothing to free).  queue_env_format writes env as
 * the queue stores it (*text xmalloc'd, NUL-terminated, *len bytes):
 * 0, or EX_DATAERR/EX_SOFTWARE when env breaks a bound.  Whatever parses
 * formats, and parses again to the same envelope.
 */
int queue_env_parse(const char *text, size_t len, struct qenv *env,
    struct bm_err *e);
int queue_env_format(const struct qenv *env, char **text, size_t *len,
    struct bm_err *e);

/*
 * Take a free connection slot for the account (max_connections, 0 = no
 * limit: *fd = -1 and 0 returned).  Nonblocking: returns 1 when all slots
 * are taken.
 */
int queue_slot_take(struct queue *q, const struct account *a, int *fd,
    struct bm_err *e);
void queue_slot_release(int fd);

/* The retry delay after `attempts` failures: 1 min doubling to 1 h, with
 * up to 10 % jitter; throttling replies (432, quota) at least 15 min. */
long long queue_backoff(int attempts, int throttled);

/* Remove data files whose envelope is gone and stale tmp files. */
void queue_cleanup(struct queue *q);

#endif
