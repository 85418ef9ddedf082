/*
 * queue - the on-disk mail queue: one immutable data file and one small
 * JSON envelope per message, in per-state directories (see queue.h).
 * Every change is write-temporary, fsync, rename, fsync-the-directory, so
 * "exit 0" after queue_enqueue survives a crash or a power cut.  What is
 * written is bounded so that it always reads back; what cannot be read
 * back (an envelope damaged on disk, a data file that is not what was
 * queued) is moved to corrupt/ with one log line, never dropped.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "jsonx.h"
#include "log.h"
#include "queue.h"

/*
 * The largest envelope the writer can produce, from the bounds in queue.h:
 * json-c escapes a control character as \u00XX (6 octets), a quote or a
 * backslash as 2; wire fields hold no control character.  MEMBER covers a
 * member's indentation, key, colon, comma and newline; INT a 64-bit
 * number.  The reader takes any regular file up to this size, so it never
 * refuses what was written; a larger file cannot be an envelope.
 */
#define SHA256_HEX 64
#define JSON_WIRE(n) (2LL * (n) + 2)
#define JSON_TEXT(n) (6LL * (n) + 2)
#define JSON_INT 20
#define JSON_MEMBER 32
#define ENH_MAX 15
/* addr, notify; reply; enh; code, state; braces */
#define RCPT_JSON_MAX (6 * JSON_MEMBER + 2 * JSON_WIRE(QUEUE_FIELD_MAX) + \
	JSON_TEXT(QUEUE_TEXT_MAX) + JSON_TEXT(ENH_MAX) + 2 * JSON_INT + 16)
/* id; account, sender, RET, ENVID; msgid, last_error; the numbers;
 * sha256; braces */
#define HEAD_JSON_MAX (20 * JSON_MEMBER + JSON_WIRE(31) + \
	4 * JSON_WIRE(QUEUE_FIELD_MAX) + 2 * JSON_TEXT(QUEUE_TEXT_MAX) + \
	9 * JSON_INT + JSON_WIRE(SHA256_HEX) + 16)
#define ENVELOPE_MAX (HEAD_JSON_MAX + QUEUE_RCPTS_MAX * RCPT_JSON_MAX)
/* json-c takes the whole text in one call */
_Static_assert(ENVELOPE_MAX < INT_MAX, "envelope bounds exceed json-c's");

/* Nesting of an envelope: object, rcpts array, recipient object. */
#define JSON_DEPTH 8
#define CHUNK 65536

struct queue {
	char *dir;
	size_t quarantined;
};

static const char *const state_dirs[] = { "new", "deferred", "hold" };
static const char *const rcpt_states[] = { "pending", "sent", "failed" };

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))
#define STR_(x) #x
#define STR(x) STR_(x)

/* ------------------------------------------------------------- paths */

char *
queue_dir_for(const struct account *a)
{
	if (a && a->queue_dir)
		return xstrdup(a->queue_dir);
	return util_xdg_path("XDG_STATE_HOME", ".local/state", "queue");
}

const char *
queue_path(const struct queue *q)
{
	return q->dir;
}

static char *
qpath(const struct queue *q, const char *sub, const char *id,
    const char *suffix)
{
	return xasprintf("%s/%s/%s%s", q->dir, sub, id, suffix);
}

static int
create_error(struct bm_err *e, const char *what, const char *path, int err)
{
	int code = (err == ENOSPC || err == EDQUOT || err == EFBIG ||
	    err == EACCES || err == EPERM || err == EROFS || err == ENOENT ||
	    err == ENOTDIR) ?
	    EX_CANTCREAT : EX_IOERR;

	return err_set(e, code, "cannot %s %s: %s", what, path,
	    strerror(err));
}

static int
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
sync_sub(const struct queue *q, const char *sub)
{
	char *d = xasprintf("%s/%s", q->dir, sub);
	int rc = sync_dir(d);

	free(d);
	return rc;
}

/* -------------------------------------------------------------- open */

int
queue_open(const char *dir, struct queue **out, struct bm_err *e)
{
	static const char *const subs[] = { "tmp", "data", "new", "deferred",
		"hold", "locks", "corrupt" };
	struct stat st;
	size_t i;

	*out = NULL;
	if (mkdir_private(dir, e) != 0)
		return e ? e->code : EX_CANTCREAT;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return create_error(e, "use the queue directory", dir,
		    errno == EEXIST || errno == 0 ? ENOTDIR : errno);
	if (st.st_mode & 022)
		return err_set(e, EX_CANTCREAT, "queue directory %s is "
		    "writable by others (mode %04o): run chmod 700 %s", dir,
		    (unsigned)(st.st_mode & 07777), dir);
	for (i = 0; i < NELEM(subs); i++) {
		char *p = xasprintf("%s/%s", dir, subs[i]);
		int rc = mkdir(p, 0700) != 0 && errno != EEXIST;
		int saved = errno;

		if (rc) {
			create_error(e, "create the queue directory", p, saved);
			free(p);
			return e->code;
		}
		free(p);
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->dir = xstrdup(dir);
	return 0;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	free(q->dir);
	free(q);
}

/* ---------------------------------------------------------- envelope */

void
qenv_add_rcpt(struct qenv *env, const char *addr, const char *notify)
{
	struct qrcpt *r;

	env->rcpts = xrealloc(env->rcpts, (env->nrcpts + 1) * sizeof(*r));
	r = &env->rcpts[env->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(addr);
	r->notify = notify ? xstrdup(notify) : NULL;
}

size_t
qenv_pending(const struct qenv *env)
{
	size_t i, n = 0;

	for (i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].state == QR_PENDING)
			n++;
	return n;
}

void
qenv_free(struct qenv *env)
{
	size_t i;

	for (i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].addr);
		free(env->rcpts[i].notify);
		free(env->rcpts[i].reply);
	}
	free(env->rcpts);
	free(env->account);
	free(env->sender);
	free(env->msgid);
	free(env->last_error);
	free(env->dsn_ret);
	free(env->dsn_envid);
	memset(env, 0, sizeof(*env));
}

/* ------------------------------------------------------------ strings */

/* Server text as stored: invalid UTF-8 octets become '?', then it is cut
 * to max octets before a character (xmalloc'd).  Applying it twice
 * changes nothing, so the reader and the writer both use it. */
static char *
text_clean(const char *s, size_t max)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(s), i = 0, k;

	while (i < n) {
		k = utf8_char(s + i, n - i);
		if (b.len + (k ? k : 1) > max)
			break;
		if (k == 0)
			buf_addc(&b, '?');
		else
			buf_add(&b, s + i, k);
		i += k ? k : 1;
	}
	return buf_steal(&b);
}

/* Why a wire field cannot be stored, or NULL when it can. */
static const char *
field_fault(const char *s)
{
	size_t n = strlen(s), i, k;

	if (n > QUEUE_FIELD_MAX)
		return "it is longer than " STR(QUEUE_FIELD_MAX) " octets";
	for (i = 0; i < n; i += k) {
		if ((k = utf8_char(s + i, n - i)) == 0)
			return "it is not valid UTF-8";
		if (is_control((unsigned char)s[i]))
			return "it holds a control character";
	}
	return NULL;
}

/* Queue ids: what new_id() makes, and nothing that walks out of a
 * directory. */
static int
id_ok(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n < sizeof(((struct qenv *)0)->id) &&
	    strspn(id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz") == n;
}

static int
sha_hex_ok(const char *s)
{
	return strlen(s) == SHA256_HEX &&
	    strspn(s, "0123456789abcdef") == SHA256_HEX;
}

/* ------------------------------------------------------- writing JSON */

static void
add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void
add_text(struct json_object *o, const char *k, const char *v, size_t max)
{
	char *c = v ? text_clean(v, max) : NULL;

	add_str(o, k, c);
	free(c);
}

static void
add_int(struct json_object *o, const char *k, long long v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static int
check_field(const char *what, const char *v, int required, struct bm_err *e)
{
	const char *why;
	char *cut, *shown;
	int rc;

	if (v == NULL)
		return required ? err_set(e, EX_SOFTWARE, "cannot queue the "
		    "message: it has no %s", what) : 0;
	if ((why = field_fault(v)) == NULL)
		return 0;
	/* the message stays one printable line */
	cut = text_clean(v, 80);
	shown = log_sanitize(cut);
	rc = err_set(e, EX_DATAERR, "cannot queue the message: its %s \"%s\" "
	    "cannot be stored: %s", what, shown, why);
	free(cut);
	free(shown);
	return rc;
}

/* Whether env can be written as it is (wire fields are never changed). */
static int
check_env(const struct qenv *env, struct bm_err *e)
{
	size_t i;
	int rc;

	if (!id_ok(env->id))
		return err_set(e, EX_SOFTWARE, "cannot queue the message: "
		    "invalid queue id \"%.40s\"", env->id);
	if (env->nrcpts > QUEUE_RCPTS_MAX)
		return err_set(e, EX_DATAERR, "cannot queue the message: %zu "
		    "recipients, at most %d can be queued: send it in parts",
		    env->nrcpts, QUEUE_RCPTS_MAX);
	if ((rc = check_field("account", env->account, 1, e)) != 0 ||
	    (rc = check_field("sender address", env->sender, 1, e)) != 0 ||
	    (rc = check_field("DSN RET", env->dsn_ret, 0, e)) != 0 ||
	    (rc = check_field("DSN ENVID", env->dsn_envid, 0, e)) != 0)
		return rc;
	for (i = 0; i < env->nrcpts; i++) {
		const struct qrcpt *r = &env->rcpts[i];

		if ((rc = check_field("recipient address", r->addr, 1, e)) ||
		    (rc = check_field("DSN NOTIFY", r->notify, 0, e)))
			return rc;
		if ((unsigned)r->state >= NELEM(rcpt_states))
			return err_set(e, EX_SOFTWARE, "cannot queue the "
			    "message: recipient %zu has no valid state", i);
	}
	return 0;
}

static struct json_object *
rcpt_to_json(const struct qrcpt *r)
{
	struct json_object *ro = json_object_new_object();
	char enh[sizeof(r->enh)];

	snprintf(enh, sizeof(enh), "%.*s", ENH_MAX, r->enh);
	add_str(ro, "addr", r->addr);
	add_str(ro, "notify", r->notify);
	add_str(ro, "state", rcpt_states[r->state]);
	add_text(ro, "reply", r->reply, QUEUE_TEXT_MAX);
	add_int(ro, "code", r->code >= 0 && r->code <= 999 ? r->code : 0);
	add_text(ro, "enh", enh, ENH_MAX);
	return ro;
}

static struct json_object *
env_to_json(const struct qenv *env)
{
	struct json_object *o = json_object_new_object();
	struct json_object *arr = json_object_new_array_ext(
	    env->nrcpts ? (int)env->nrcpts : 1);
	size_t i;

	add_str(o, "id", env->id);
	add_str(o, "account", env->account);
	add_str(o, "sender", env->sender);
	add_text(o, "msgid", env->msgid, QUEUE_TEXT_MAX);
	add_int(o, "created", env->created);
	add_int(o, "next_try", env->next_try);
	add_int(o, "attempts", env->attempts > 0 ? env->attempts : 0);
	add_text(o, "last_error", env->last_error, QUEUE_TEXT_MAX);
	add_str(o, "dsn_ret", env->dsn_ret);
	add_str(o, "dsn_envid", env->dsn_envid);
	add_int(o, "eightbit", env->eightbit != 0);
	add_int(o, "error_mode_mail", env->error_mode_mail != 0);
	add_int(o, "is_bounce", env->is_bounce != 0);
	add_int(o, "warned", env->warned != 0);
	add_int(o, "size", env->size > 0 ? env->size : 0);
	if (sha_hex_ok(env->sha256))
		add_str(o, "sha256", env->sha256);
	for (i = 0; i < env->nrcpts; i++)
		json_object_array_add(arr, rcpt_to_json(&env->rcpts[i]));
	json_object_object_add(o, "rcpts", arr);
	return o;
}

int
queue_env_format(const struct qenv *env, char **text, size_t *len,
    struct bm_err *e)
{
	struct json_object *o;
	const char *s;
	size_t n;
	int rc = 0;

	*text = NULL;
	*len = 0;
	if ((rc = check_env(env, e)) != 0)
		return rc;
	o = env_to_json(env);
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (s == NULL || n + 1 > (size_t)ENVELOPE_MAX) {
		rc = err_set(e, EX_SOFTWARE, "cannot queue the message: its "
		    "envelope exceeds %lld octets", (long long)ENVELOPE_MAX);
	} else {
		*text = xmalloc(n + 2);
		memcpy(*text, s, n);
		memcpy(*text + n, "\n", 2);
		*len = n + 1;
	}
	json_object_put(o);
	return rc;
}

/* ------------------------------------------------------- reading JSON */

/* What parsing one object found first wrong (NULL: nothing yet). */
struct parse {
	struct json_object *o;
	const char *bad;
};

/* A string member (1), absent or null (0), or anything else (-1: another
 * type, or a string with a NUL in it, which the writer never makes). */
static int
member_str(struct json_object *o, const char *key, const char **out)
{
	struct json_object *v;
	int rc = jsonx_str(o, key, out);

	if (rc == 1 && json_object_object_get_ex(o, key, &v) &&
	    (size_t)json_object_get_string_len(v) != strlen(*out))
		return -1;
	return rc;
}

static void
get_field(struct parse *p, const char *key, int required, char **out)
{
	const char *s;
	int rc = member_str(p->o, key, &s);

	*out = NULL;
	if (p->bad)
		return;
	if (rc < 0 || (rc == 0 && required) ||
	    (rc == 1 && field_fault(s) != NULL))
		p->bad = key;
	else if (rc == 1)
		*out = xstrdup(s);
}

static void
get_text(struct parse *p, const char *key, size_t max, char **out)
{
	const char *s;
	int rc = member_str(p->o, key, &s);

	*out = NULL;
	if (p->bad)
		return;
	if (rc < 0)
		p->bad = key;
	else if (rc == 1)
		*out = text_clean(s, max);
}

static long long
get_int(struct parse *p, const char *key, long long min, long long max)
{
	long long v = 0;

	if (p->bad == NULL && jsonx_int(p->o, key, min, max, &v) < 0)
		p->bad = key;
	return v;
}

static void
get_state(struct parse *p, struct qrcpt *r)
{
	const char *st;
	size_t i;

	if (p->bad)
		return;
	if (member_str(p->o, "state", &st) == 1)
		for (i = 0; i < NELEM(rcpt_states); i++)
			if (strcmp(st, rcpt_states[i]) == 0) {
				r->state = (enum qrcpt_state)i;
				return;
			}
	p->bad = "state";
}

static const char *
rcpt_from_json(struct json_object *ro, struct qrcpt *r)
{
	struct parse p = { ro, NULL };
	char *enh;

	memset(r, 0, sizeof(*r));
	if (!json_object_is_type(ro, json_type_object))
		return "it is not an object";
	get_field(&p, "addr", 1, &r->addr);
	get_field(&p, "notify", 0, &r->notify);
	get_state(&p, r);
	get_text(&p, "reply", QUEUE_TEXT_MAX, &r->reply);
	r->code = (int)get_int(&p, "code", 0, 999);
	get_text(&p, "enh", ENH_MAX, &enh);
	if (enh)
		snprintf(r->enh, sizeof(r->enh), "%s", enh);
	free(enh);
	return p.bad;
}

static void
env_fields(struct parse *p, struct qenv *env)
{
	char *id, *sha;

	get_field(p, "id", 1, &id);
	if (id && id_ok(id))
		snprintf(env->id, sizeof(env->id), "%s", id);
	else if (id)
		p->bad = "id";
	free(id);
	get_field(p, "account", 1, &env->account);
	get_field(p, "sender", 1, &env->sender);
	get_text(p, "msgid", QUEUE_TEXT_MAX, &env->msgid);
	env->created = get_int(p, "created", LLONG_MIN, LLONG_MAX);
	env->next_try = get_int(p, "next_try", LLONG_MIN, LLONG_MAX);
	env->attempts = (int)get_int(p, "attempts", 0, INT_MAX);
	get_text(p, "last_error", QUEUE_TEXT_MAX, &env->last_error);
	get_field(p, "dsn_ret", 0, &env->dsn_ret);
	get_field(p, "dsn_envid", 0, &env->dsn_envid);
	env->eightbit = (int)get_int(p, "eightbit", 0, 1);
	env->error_mode_mail = (int)get_int(p, "error_mode_mail", 0, 1);
	env->is_bounce = (int)get_int(p, "is_bounce", 0, 1);
	env->warned = (int)get_int(p, "warned", 0, 1);
	env->size = get_int(p, "size", 0, LLONG_MAX);
	get_field(p, "sha256", 0, &sha);
	if (sha && sha_hex_ok(sha))
		memcpy(env->sha256, sha, SHA256_HEX + 1);
	else if (sha)
		p->bad = "sha256";
	free(sha);
}

static int
rcpts_from_json(struct json_object *o, struct qenv *env, struct bm_err *e)
{
	struct json_object *arr;
	const char *bad;
	size_t i, n;

	if (!json_object_object_get_ex(o, "rcpts", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return err_set(e, EX_DATAERR, "member \"rcpts\" is missing or "
		    "not an array");
	if ((n = json_object_array_length(arr)) > QUEUE_RCPTS_MAX)
		return err_set(e, EX_DATAERR, "%zu recipients, more than %d",
		    n, QUEUE_RCPTS_MAX);
	env->rcpts = xcalloc(n ? n : 1, sizeof(*env->rcpts));
	for (i = 0; i < n; i++) {
		env->nrcpts++;
		if ((bad = rcpt_from_json(json_object_array_get_idx(arr, i),
		    &env->rcpts[i])) != NULL)
			return err_set(e, EX_DATAERR, "recipient %zu: %s%s%s",
			    i + 1, strchr(bad, ' ') ? "" : "member \"", bad,
			    strchr(bad, ' ') ? "" : "\" is missing or invalid");
	}
	return 0;
}

/* The whole of text[0..len) as one JSON object (whitespace may follow). */
static struct json_object *
parse_object(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
	struct json_object *o;
	size_t end;

	if (tok == NULL || len > (size_t)ENVELOPE_MAX) {
		if (tok)
			json_tokener_free(tok);
		return NULL;
	}
	o = json_tokener_parse_ex(tok, text, (int)len);
	end = json_tokener_get_parse_end(tok);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object))
		end = 0;
	while (end > 0 && end < len && strchr(" \t\r\n", text[end]) &&
	    text[end] != '\0')
		end++;
	if (end != len) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int
queue_env_parse(const char *text, size_t len, struct qenv *env,
    struct bm_err *e)
{
	struct json_object *o = parse_object(text, len);
	struct parse p = { o, NULL };
	int rc;

	memset(env, 0, sizeof(*env));
	if (o == NULL)
		return err_set(e, EX_DATAERR, "not a JSON object (truncated or "
		    "overwritten?)");
	env_fields(&p, env);
	if (p.bad)
		rc = err_set(e, EX_DATAERR, "member \"%s\" is missing or "
		    "invalid", p.bad);
	else
		rc = rcpts_from_json(o, env, e);
	json_object_put(o);
	if (rc != 0)
		qenv_free(env);
	return rc;
}

/* ------------------------------------------------------------ writing */

/* Write len bytes of text to a new file in tmp/ (fsync'd); *tmp gets its
 * path. */
static int
write_tmp(const struct queue *q, const char *name, const char *text,
    size_t len, char **tmp, struct bm_err *e)
{
	int fd, saved;

	*tmp = qpath(q, "tmp", name, "");
	fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		return create_error(e, "create", *tmp, errno);
	if (write_all(fd, text, len) != 0 || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(*tmp);
		return create_error(e, "write", *tmp, saved);
	}
	if (close(fd) != 0) {
		saved = errno;
		unlink(*tmp);
		return create_error(e, "write", *tmp, saved);
	}
	return 0;
}

static void
new_id(char *id, size_t len)
{
	struct timeval tv;
	unsigned char r[3];

	gettimeofday(&tv, NULL);
	random_bytes(r, sizeof(r));
	snprintf(id, len, "%08llX%05lX%02X%02X%02X",
	    (unsigned long long)tv.tv_sec & 0xffffffffULL,
	    (unsigned long)tv.tv_usec, r[0], r[1], r[2]);
}

static EVP_MD_CTX *
sha_begin(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		c = NULL;
	}
	return c;
}

/* The digest in hex (hex[SHA256_HEX + 1]); frees c.  0, or -1. */
static int
sha_end(EVP_MD_CTX *c, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	int ok = EVP_DigestFinal_ex(c, md, &n) == 1 && n * 2 == SHA256_HEX;

	EVP_MD_CTX_free(c);
	for (i = 0; ok && i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return ok ? 0 : -1;
}

static int
sha_error(struct bm_err *e)
{
	return err_set(e, EX_SOFTWARE, "cannot compute a SHA-256 (OpenSSL)");
}

static int
copy_body(int out, int in, long long off, long long len, EVP_MD_CTX *sha,
    const char *path, struct bm_err *e)
{
	char chunk[CHUNK];

	while (len > 0) {
		size_t want = len > (long long)sizeof(chunk) ? sizeof(chunk) :
		    (size_t)len;
		ssize_t n = pread(in, chunk, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(e, EX_IOERR, "cannot read the spooled "
			    "message: %s", n < 0 ? strerror(errno) :
			    "unexpected end of file");
		if (write_all(out, chunk, (size_t)n) != 0)
			return create_error(e, "write", path, errno);
		if (EVP_DigestUpdate(sha, chunk, (size_t)n) != 1)
			return sha_error(e);
		off += n;
		len -= n;
	}
	return 0;
}

/* tmp/ID.msg: the whole message, fsync'd; its SHA-256 into env. */
static int
write_data(const struct queue *q, struct qenv *env, const char *head,
    size_t head_len, int body_fd, long long body_off, long long body_len,
    struct bm_err *e)
{
	char *tmp = qpath(q, "tmp", env->id, ".msg");
	EVP_MD_CTX *sha = sha_begin();
	int fd, rc = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0) {
		rc = create_error(e, "create", tmp, errno);
		goto out;
	}
	if (sha == NULL || EVP_DigestUpdate(sha, head, head_len) != 1)
		rc = sha_error(e);
	else if (write_all(fd, head, head_len) != 0)
		rc = create_error(e, "write", tmp, errno);
	else if (body_fd >= 0)
		rc = copy_body(fd, body_fd, body_off, body_len, sha, tmp, e);
	if (rc == 0 && fsync(fd) != 0)
		rc = create_error(e, "write", tmp, errno);
	if (close(fd) != 0 && rc == 0)
		rc = create_error(e, "write", tmp, errno);
	if (rc == 0 && sha_end(sha, env->sha256) != 0)
		rc = sha_error(e);
	sha = NULL;
	if (rc != 0)
		unlink(tmp);
out:
	if (sha)
		EVP_MD_CTX_free(sha);
	free(tmp);
	return rc;
}

static int
commit_rename(const char *from, const char *to, struct bm_err *e)
{
	if (rename(from, to) == 0)
		return 0;
	return create_error(e, "move the queue file to", to, errno);
}

int
queue_enqueue(struct queue *q, struct qenv *env, const char *head,
    size_t head_len, int body_fd, long long body_off, long long body_len,
    struct bm_err *e)
{
	char *msg_tmp = NULL, *msg_dst = NULL, *env_tmp = NULL, *env_dst = NULL;
	char *name = NULL, *json = NULL;
	size_t json_len;
	int rc;

	new_id(env->id, sizeof(env->id));
	/* a message already tried once (the synchronous attempt) waits in
	 * deferred/; one never tried is new */
	env->state = env->attempts > 0 ? Q_DEFERRED : Q_NEW;
	env->size = (long long)head_len + (body_fd >= 0 ? body_len : 0);
	if (env->created == 0)
		env->created = (long long)time(NULL);
	if ((rc = check_env(env, e)) != 0 ||
	    (rc = write_data(q, env, head, head_len, body_fd, body_off,
	    body_len, e)) != 0)
		return rc;
	msg_tmp = qpath(q, "tmp", env->id, ".msg");
	msg_dst = qpath(q, "data", env->id, ".msg");
	name = xasprintf("%s.env", env->id);
	env_dst = qpath(q, state_dirs[env->state], env->id, ".env");
	if ((rc = queue_env_format(env, &json, &json_len, e)) != 0 ||
	    (rc = write_tmp(q, name, json, json_len, &env_tmp, e)) != 0)
		goto fail;
	if ((rc = commit_rename(msg_tmp, msg_dst, e)) != 0)
		goto fail;
	if ((rc = commit_rename(env_tmp, env_dst, e)) != 0) {
		unlink(msg_dst);
		goto fail;
	}
	if (sync_sub(q, "data") != 0 ||
	    sync_sub(q, state_dirs[env->state]) != 0) {
		rc = create_error(e, "sync the queue directory", q->dir, errno);
		unlink(env_dst);
		unlink(msg_dst);
		goto fail;
	}
	goto out;
fail:
	unlink(msg_tmp);
	if (env_tmp)
		unlink(env_tmp);
out:
	free(msg_tmp);
	free(msg_dst);
	free(env_tmp);
	free(env_dst);
	free(name);
	free(json);
	return rc;
}

/* --------------------------------------------------------- quarantine */

static void
move_aside(const struct queue *q, const char *from, const char *id,
    const char *suffix, struct buf *failed)
{
	char *to = qpath(q, "corrupt", id, suffix);

	if (rename(from, to) != 0 && errno != ENOENT)
		buf_addf(failed, "; cannot move %s there: %s", from,
		    strerror(errno));
	free(to);
}

/*
 * Move message id aside to corrupt/: the envelope at env_path (NULL: from
 * whichever state directory holds it) and data/ID.msg.  One log line says
 * what, where, and what to do.  Returns EX_DATAERR with e saying the same
 * in short.
 */
static int
quarantine(struct queue *q, const char *env_path, const char *id,
    const char *what, const char *why, struct bm_err *e)
{
	struct buf failed = BUF_INIT;
	char *p;
	size_t i;

	for (i = 0; env_path == NULL && i < NELEM(state_dirs); i++) {
		p = qpath(q, state_dirs[i], id, ".env");
		move_aside(q, p, id, ".env", &failed);
		free(p);
	}
	if (env_path)
		move_aside(q, env_path, id, ".env", &failed);
	p = qpath(q, "data", id, ".msg");
	move_aside(q, p, id, ".msg", &failed);
	free(p);
	sync_sub(q, "corrupt");
	q->quarantined++;
	log_line(LOG_ERR, "queue %s: the %s of message %s is damaged (%s): "
	    "moved to %s/corrupt/ and not sent%s; check %s/corrupt/%s.env "
	    "and %s.msg, send the message again by hand if it matters "
	    "(sendmail -i RECIPIENT... < %s/corrupt/%s.msg), then delete "
	    "them", q->dir, what, id, why, q->dir, failed.data ? failed.data :
	    "", q->dir, id, id, q->dir, id);
	buf_free(&failed, 0);
	return err_set(e, EX_DATAERR, "%s of message %s is damaged (%s): "
	    "moved to %s/corrupt/, not sent", what, id, why, q->dir);
}

/* ------------------------------------------------------------ reading */

/* Why open(path) failed: EX_NOINPUT (gone), EX_DATAERR with *why (it
 * cannot be a queue file), or EX_IOERR. */
static int
open_fault(const char *path, const char **why, struct bm_err *e)
{
	if (errno == ENOENT)
		return EX_NOINPUT;
	if (errno != ELOOP)
		return err_set(e, EX_IOERR, "cannot open %s: %s", path,
		    strerror(errno));
	*why = "a symbolic link";
	return EX_DATAERR;
}

/* Whether the open fd is a regular file of at most max bytes: 0 and *st,
 * EX_DATAERR with *why, or EX_IOERR. */
static int
file_fault(int fd, const char *path, long long max, struct stat *st,
    const char **why, struct bm_err *e)
{
	if (fstat(fd, st) != 0)
		return err_set(e, EX_IOERR, "cannot read %s: %s", path,
		    strerror(errno));
	if (!S_ISREG(st->st_mode))
		*why = "not a regular file";
	else if ((long long)st->st_size > max)
		*why = "larger than any envelope";
	return *why ? EX_DATAERR : 0;
}

/* The first size bytes of fd into *text (NUL-terminated), *len of them. */
static int
read_whole(int fd, const char *path, size_t size, char **text, size_t *len,
    struct bm_err *e)
{
	ssize_t n = 0;

	*text = xmalloc(size + 1);
	*len = 0;
	while (*len < size && ((n = read(fd, *text + *len, size - *len)) > 0 ||
	    (n < 0 && errno == EINTR)))
		if (n > 0)
			*len += (size_t)n;
	(*text)[*len] = '\0';
	if (n >= 0)
		return 0;
	free(*text);
	*text = NULL;
	return err_set(e, EX_IOERR, "cannot read %s: %s", path,
	    strerror(errno));
}

/* The whole of an envelope file: 0, EX_NOINPUT (gone), EX_IOERR, or
 * EX_DATAERR with *why when it cannot be an envelope. */
static int
read_env_file(const char *path, char **text, size_t *len, const char **why,
    struct bm_err *e)
{
	struct stat st;
	int fd, rc;

	*text = NULL;
	*len = 0;
	/* no symlinks, and a FIFO does not block the reader */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) < 0)
		return open_fault(path, why, e);
	if ((rc = file_fault(fd, path, ENVELOPE_MAX, &st, why, e)) == 0)
		rc = read_whole(fd, path, (size_t)st.st_size, text, len, e);
	close(fd);
	return rc;
}

/*
 * Load the envelope sub/ID.env into env: 0, EX_NOINPUT when it is not
 * there, EX_IOERR when it cannot be read now, EX_DATAERR when it is
 * damaged (then it is in corrupt/).
 */
static int
load_env(struct queue *q, enum qstate st, const char *id, struct qenv *env,
    struct bm_err *e)
{
	char *path = qpath(q, state_dirs[st], id, ".env"), *text = NULL;
	struct bm_err pe = { 0 };
	const char *why = NULL;
	size_t len;
	int rc;

	memset(env, 0, sizeof(*env));
	rc = read_env_file(path, &text, &len, &why, e);
	if (rc == 0 && queue_env_parse(text, len, env, &pe) != 0)
		why = pe.msg;
	else if (rc == 0 && strcmp(env->id, id) != 0)
		why = "its id is not its file name";
	if (why != NULL) {
		qenv_free(env);
		rc = quarantine(q, path, id, "envelope", why, e);
	}
	if (rc == 0)
		env->state = st;
	free(text);
	free(path);
	return rc;
}

int
queue_load(struct queue *q, const char *id, struct qenv *env,
    struct bm_err *e)
{
	size_t i;
	int rc;

	memset(env, 0, sizeof(*env));
	if (!id_ok(id))
		return err_set(e, EX_NOINPUT, "no message %s in the queue", id);
	for (i = 0; i < NELEM(state_dirs); i++)
		if ((rc = load_env(q, (enum qstate)i, id, env, e)) !=
		    EX_NOINPUT)
			return rc;
	return err_set(e, EX_NOINPUT, "no message %s in the queue", id);
}

static int
cmp_env(const void *a, const void *b)
{
	const struct qenv *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Add the envelopes of one state directory to v. */
static void
list_dir(struct queue *q, enum qstate st, struct qenv **v, size_t *n,
    size_t *cap)
{
	char *dir = xasprintf("%s/%s", q->dir, state_dirs[st]);
	DIR *d = opendir(dir);
	struct dirent *de;
	struct bm_err e;

	while (d && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char *id;
		int rc;

		if (len < 5 || strcmp(de->d_name + len - 4, ".env") != 0 ||
		    de->d_name[0] == '.')
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			*v = xrealloc(*v, *cap * sizeof(**v));
		}
		id = xstrndup(de->d_name, len - 4);
		if ((rc = load_env(q, st, id, &(*v)[*n], &e)) == 0)
			(*n)++;
		else if (rc == EX_IOERR)
			log_line(LOG_ERR, "queue %s: %s", q->dir, e.msg);
		free(id);
	}
	if (d)
		closedir(d);
	free(dir);
}

int
queue_list(struct queue *q, struct qenv **out, size_t *n, struct bm_err *e)
{
	struct qenv *v = NULL;
	size_t cap = 0, i;

	*n = 0;
	for (i = 0; i < NELEM(state_dirs); i++)
		list_dir(q, (enum qstate)i, &v, n, &cap);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), cmp_env);
	*out = v;
	(void)e;
	return 0;
}

void
queue_list_free(struct qenv *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		qenv_free(&v[i]);
	free(v);
}

/* The SHA-256 of the whole file fd (hex): 0, EX_IOERR, EX_SOFTWARE. */
static int
file_sha(int fd, const char *path, char *hex, struct bm_err *e)
{
	EVP_MD_CTX *sha = sha_begin();
	char chunk[CHUNK];
	off_t off = 0;
	ssize_t n;

	if (sha == NULL)
		return sha_error(e);
	while ((n = pread(fd, chunk, sizeof(chunk), off)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || EVP_DigestUpdate(sha, chunk, (size_t)n) != 1) {
			EVP_MD_CTX_free(sha);
			return n < 0 ? err_set(e, EX_IOERR, "cannot read %s: "
			    "%s", path, strerror(errno)) : sha_error(e);
		}
		off += n;
	}
	return sha_end(sha, hex) == 0 ? 0 : sha_error(e);
}

/* Whether the data file path is what env recorded: 0 and *fd, EX_DATAERR
 * with why filled, or another error. */
static int
data_check(const char *path, const struct qenv *env, int *fd, char *why,
    size_t why_len, struct bm_err *e)
{
	const char *fault = NULL;
	char hex[SHA256_HEX + 1];
	struct stat st;
	int rc;

	if ((*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK)) < 0) {
		rc = open_fault(path, &fault, e);
		snprintf(why, why_len, "%s", rc == EX_NOINPUT ? "missing" :
		    fault ? fault : "");
		return rc == EX_NOINPUT ? EX_DATAERR : rc;
	}
	if ((rc = file_fault(*fd, path, LLONG_MAX, &st, &fault, e)) != 0) {
		snprintf(why, why_len, "%s", fault ? fault : "");
		return rc;
	}
	if ((long long)st.st_size != env->size) {
		snprintf(why, why_len, "%lld bytes, expected %lld",
		    (long long)st.st_size, env->size);
		return EX_DATAERR;
	}
	/* queued before checksums: the size must do */
	if (env->sha256[0] == '\0' || (rc = file_sha(*fd, path, hex, e)) != 0)
		return rc;
	if (strcmp(hex, env->sha256) == 0)
		return 0;
	snprintf(why, why_len, "%lld bytes as expected, but not the SHA-256 "
	    "recorded when it was queued", (long long)st.st_size);
	return EX_DATAERR;
}

int
queue_data_open(struct queue *q, const char *id, int *fd, long long *size,
    struct bm_err *e)
{
	char *p = NULL, why[128] = "";
	struct qenv env;
	int rc;

	*fd = -1;
	if ((rc = queue_load(q, id, &env, e)) != 0)
		return rc;
	p = qpath(q, "data", id, ".msg");
	rc = data_check(p, &env, fd, why, sizeof(why), e);
	if (rc == EX_DATAERR)
		quarantine(q, NULL, id, "data file", why, e);
	if (rc == 0) {
		*size = env.size;
	} else if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	qenv_free(&env);
	free(p);
	return rc;
}

static int
cmp_damaged(const void *a, const void *b)
{
	return strcmp(((const struct qdamaged *)a)->id,
	    ((const struct qdamaged *)b)->id);
}

/* Add the message of corrupt/NAME to v (once per id). */
static void
add_damaged(struct queue *q, const char *name, struct qdamaged **v,
    size_t *n)
{
	size_t len = strlen(name), i;
	struct stat st;
	char *id, *p;

	if (name[0] == '.' || len < 5 || (strcmp(name + len - 4, ".env") != 0 &&
	    strcmp(name + len - 4, ".msg") != 0))
		return;
	id = xstrndup(name, len - 4);
	for (i = 0; i < *n && strcmp((*v)[i].id, id) != 0; i++)
		;
	if (i < *n) {
		free(id);
		return;
	}
	p = qpath(q, "corrupt", id, ".msg");
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[*n].id = id;
	(*v)[(*n)++].size = lstat(p, &st) == 0 && S_ISREG(st.st_mode) ?
	    (long long)st.st_size : -1;
	free(p);
}

int
queue_corrupt_list(struct queue *q, struct qdamaged **out, size_t *n,
    struct bm_err *e)
{
	char *dir = xasprintf("%s/corrupt", q->dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (d == NULL && errno != ENOENT)
		rc = err_set(e, EX_IOERR, "cannot read %s: %s", dir,
		    strerror(errno));
	while (d && (de = readdir(d)) != NULL)
		add_damaged(q, de->d_name, out, n);
	if (d)
		closedir(d);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), cmp_damaged);
	free(dir);
	return rc;
}

void
queue_corrupt_free(struct qdamaged *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].id);
	free(v);
}

size_t
queue_quarantined(const struct queue *q)
{
	return q->quarantined;
}

/* ------------------------------------------------- updating, removing */

int
queue_update(struct queue *q, const struct qenv *env, struct bm_err *e)
{
	char *dst = NULL, *name = NULL, *tmp = NULL, *json = NULL;
	size_t i, len;
	int rc;

	if ((rc = queue_env_format(env, &json, &len, e)) != 0)
		return rc;
	/* move first (atomic), so at no moment are there two envelopes */
	dst = qpath(q, state_dirs[env->state], env->id, ".env");
	for (i = 0; i < NELEM(state_dirs); i++) {
		char *p;

		if (i == (size_t)env->state)
			continue;
		p = qpath(q, state_dirs[i], env->id, ".env");
		if (rename(p, dst) == 0)
			sync_sub(q, state_dirs[i]);
		free(p);
	}
	/* only replace: a message removed or moved to corrupt/ stays so */
	if (access(dst, F_OK) != 0) {
		rc = err_set(e, EX_NOINPUT, "message %s is no longer in the "
		    "queue (removed, or moved to %s/corrupt/)", env->id,
		    q->dir);
		goto out;
	}
	name = xasprintf("%s.env.%ld", env->id, (long)getpid());
	if ((rc = write_tmp(q, name, json, len, &tmp, e)) == 0) {
		if (rename(tmp, dst) != 0) {
			rc = create_error(e, "update", dst, errno);
			unlink(tmp);
		} else if (sync_sub(q, state_dirs[env->state]) != 0) {
			rc = create_error(e, "sync", dst, errno);
		}
	}
out:
	free(dst);
	free(name);
	free(tmp);
	free(json);
	return rc;
}

int
queue_remove(struct queue *q, const char *id, struct bm_err *e)
{
	char *p;
	size_t i;
	int found = 0;

	for (i = 0; i < NELEM(state_dirs); i++) {
		p = qpath(q, state_dirs[i], id, ".env");
		if (unlink(p) == 0) {
			found = 1;
			sync_sub(q, state_dirs[i]);
		}
		free(p);
	}
	p = qpath(q, "data", id, ".msg");
	unlink(p);
	free(p);
	p = qpath(q, "locks", id, ".lock");
	unlink(p);
	free(p);
	return found ? 0 : err_set(e, EX_NOINPUT, "no message %s in the "
	    "queue", id);
}

/* -------------------------------------------------------------- locks */

static int
lock_file(const char *path, int *fd, struct bm_err *e)
{
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0)
		return create_error(e, "create the lock", path, errno);
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	close(*fd);
	*fd = -1;
	if (errno == EWOULDBLOCK)
		return 1;
	return err_set(e, EX_IOERR, "cannot lock %s: %s", path,
	    strerror(errno));
}

int
queue_lock(struct queue *q, const char *id, int *fd, struct bm_err *e)
{
	char *p = qpath(q, "locks", id, ".lock");
	int rc = lock_file(p, fd, e);

	free(p);
	return rc;
}

void
queue_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int
queue_slot_take(struct queue *q, const struct account *a, int *fd,
    struct bm_err *e)
{
	int i;

	*fd = -1;
	if (a->max_connections <= 0)
		return 0;
	for (i = 0; i < a->max_connections; i++) {
		char *name = xasprintf("%s.slot%d", a->name, i);
		char *p = qpath(q, "locks", name, "");
		int rc = lock_file(p, fd, e);

		free(name);
		free(p);
		if (rc != 1)
			return rc;
	}
	return 1;
}

void
queue_slot_release(int fd)
{
	if (fd >= 0)
		close(fd);
}

long long
queue_backoff(int attempts, int throttled)
{
	long long d = 60;
	unsigned char r;
	int i;

	for (i = 1; i < attempts && d < 3600; i++)
		d *= 2;
	if (d > 3600)
		d = 3600;
	if (throttled && d < 900)
		d = 900;
	random_bytes(&r, 1);
	return d + d * (long long)r / 2550;   /* up to +10 % */
}

/* --------------------------------------------------------------- debris */

static int
str_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int
has_envelope(const struct queue *q, const char *id)
{
	size_t i;

	for (i = 0; i < NELEM(state_dirs); i++) {
		char *p = qpath(q, state_dirs[i], id, ".env");
		int ok = access(p, F_OK) == 0;

		free(p);
		if (ok)
			return 1;
	}
	return 0;
}

static void
sweep(struct queue *q, const char *sub, long long max_age, int need_env)
{
	char *dir = xasprintf("%s/%s", q->dir, sub);
	DIR *d = opendir(dir);
	struct dirent *de;
	time_t now = time(NULL);

	while (d && (de = readdir(d)) != NULL) {
		char *p, *id;
		struct stat st;

		if (de->d_name[0] == '.' || (strcmp(sub, "locks") == 0 &&
		    !str_has_suffix(de->d_name, ".lock")))
			continue;   /* slot and rate files are never debris */
		p = xasprintf("%s/%s", dir, de->d_name);
		id = xstrndup(de->d_name, strcspn(de->d_name, "."));
		if (stat(p, &st) == 0 && now - st.st_mtime > max_age &&
		    (!need_env || !has_envelope(q, id)))
			unlink(p);
		free(id);
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
}

void
queue_cleanup(struct queue *q)
{
	sweep(q, "tmp", 86400, 0);
	sweep(q, "data", 86400, 1);
	sweep(q, "locks", 86400, 1);
}
