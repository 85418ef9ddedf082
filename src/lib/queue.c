/*
 * queue - the on-disk mail queue: one immutable data file and one small
 * JSON envelope per message, in per-state directories (see queue.h).
 * Every change is write-temporary, fsync, rename, fsync-the-directory, so
 * "exit 0" after queue_enqueue survives a crash or a power cut.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "jsonx.h"
#include "queue.h"

#define ENVELOPE_MAX (4 * 1024 * 1024)

struct queue {
	char *dir;
};

static const char *const state_dirs[] = { "new", "deferred", "hold" };
static const char *const rcpt_states[] = { "pending", "sent", "failed" };

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

/* ------------------------------------------------------------- paths */

char *
queue_dir_for(const struct account *a)
{
	const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (a && a->queue_dir)
		return xstrdup(a->queue_dir);
	if (x && *x == '/')
		return xasprintf("%s/bearmail/queue", x);
	return xasprintf("%s/.local/state/bearmail/queue",
	    home && *home == '/' ? home : "/tmp");
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
		"hold", "locks" };
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

static void
add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void
add_int(struct json_object *o, const char *k, long long v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static char *
env_to_json(const struct qenv *env)
{
	struct json_object *o = json_object_new_object();
	struct json_object *arr = json_object_new_array();
	char *s;
	size_t i;

	add_str(o, "id", env->id);
	add_str(o, "account", env->account);
	add_str(o, "sender", env->sender);
	add_str(o, "msgid", env->msgid);
	add_int(o, "created", env->created);
	add_int(o, "next_try", env->next_try);
	add_int(o, "attempts", env->attempts);
	add_str(o, "last_error", env->last_error);
	add_str(o, "dsn_ret", env->dsn_ret);
	add_str(o, "dsn_envid", env->dsn_envid);
	add_int(o, "eightbit", env->eightbit);
	add_int(o, "error_mode_mail", env->error_mode_mail);
	add_int(o, "is_bounce", env->is_bounce);
	add_int(o, "warned", env->warned);
	add_int(o, "size", env->size);
	for (i = 0; i < env->nrcpts; i++) {
		const struct qrcpt *r = &env->rcpts[i];
		struct json_object *ro = json_object_new_object();

		add_str(ro, "addr", r->addr);
		add_str(ro, "notify", r->notify);
		add_str(ro, "state", rcpt_states[r->state]);
		add_str(ro, "reply", r->reply);
		add_int(ro, "code", r->code);
		add_str(ro, "enh", r->enh);
		json_object_array_add(arr, ro);
	}
	json_object_object_add(o, "rcpts", arr);
	s = xasprintf("%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static int
rcpt_from_json(struct json_object *ro, struct qrcpt *r)
{
	char *st = jsonx_get_strdup(ro, "state"), *enh = jsonx_get_strdup(ro, "enh");
	size_t i;

	memset(r, 0, sizeof(*r));
	r->addr = jsonx_get_strdup(ro, "addr");
	r->notify = jsonx_get_strdup(ro, "notify");
	r->reply = jsonx_get_strdup(ro, "reply");
	r->code = (int)jsonx_get_int(ro, "code");
	if (enh)
		snprintf(r->enh, sizeof(r->enh), "%s", enh);
	for (i = 0; st && i < NELEM(rcpt_states); i++)
		if (strcmp(st, rcpt_states[i]) == 0)
			r->state = (enum qrcpt_state)i;
	free(st);
	free(enh);
	return r->addr ? 0 : -1;
}

static int
env_from_json(const char *text, struct qenv *env)
{
	struct json_object *o = json_tokener_parse(text), *arr;
	char *id;
	size_t i, n;
	int rc = -1;

	memset(env, 0, sizeof(*env));
	if (o == NULL || !json_object_is_type(o, json_type_object))
		goto out;
	if ((id = jsonx_get_strdup(o, "id")) == NULL || strlen(id) >= sizeof(env->id)) {
		free(id);
		goto out;
	}
	snprintf(env->id, sizeof(env->id), "%s", id);
	free(id);
	env->account = jsonx_get_strdup(o, "account");
	env->sender = jsonx_get_strdup(o, "sender");
	env->msgid = jsonx_get_strdup(o, "msgid");
	env->created = jsonx_get_int(o, "created");
	env->next_try = jsonx_get_int(o, "next_try");
	env->attempts = (int)jsonx_get_int(o, "attempts");
	env->last_error = jsonx_get_strdup(o, "last_error");
	env->dsn_ret = jsonx_get_strdup(o, "dsn_ret");
	env->dsn_envid = jsonx_get_strdup(o, "dsn_envid");
	env->eightbit = (int)jsonx_get_int(o, "eightbit");
	env->error_mode_mail = (int)jsonx_get_int(o, "error_mode_mail");
	env->is_bounce = (int)jsonx_get_int(o, "is_bounce");
	env->warned = (int)jsonx_get_int(o, "warned");
	env->size = jsonx_get_int(o, "size");
	if (env->sender == NULL || env->account == NULL ||
	    !json_object_object_get_ex(o, "rcpts", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		goto out;
	n = json_object_array_length(arr);
	env->rcpts = xcalloc(n ? n : 1, sizeof(*env->rcpts));
	for (i = 0; i < n; i++, env->nrcpts++)
		if (rcpt_from_json(json_object_array_get_idx(arr, i),
		    &env->rcpts[i]) != 0)
			goto out;
	rc = 0;
out:
	if (o)
		json_object_put(o);
	if (rc != 0)
		qenv_free(env);
	return rc;
}

/* ------------------------------------------------------------ writing */

/* Write text to a new file in tmp/ (fsync'd); *tmp gets its path. */
static int
write_tmp(const struct queue *q, const char *name, const char *text,
    char **tmp, struct bm_err *e)
{
	int fd, saved;

	*tmp = qpath(q, "tmp", name, "");
	fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		return create_error(e, "create", *tmp, errno);
	if (write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0) {
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

static int
copy_body(int out, int in, long long off, long long len, const char *path,
    struct bm_err *e)
{
	char chunk[65536];

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
		off += n;
		len -= n;
	}
	return 0;
}

/* tmp/ID.msg: the whole message, fsync'd. */
static int
write_data(const struct queue *q, const char *id, const char *head,
    size_t head_len, int body_fd, long long body_off, long long body_len,
    struct bm_err *e)
{
	char *name = xasprintf("%s.msg", id), *tmp = qpath(q, "tmp", name, "");
	int fd, rc = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0) {
		rc = create_error(e, "create", tmp, errno);
		goto out;
	}
	if (write_all(fd, head, head_len) != 0)
		rc = create_error(e, "write", tmp, errno);
	else if (body_fd >= 0)
		rc = copy_body(fd, body_fd, body_off, body_len, tmp, e);
	if (rc == 0 && fsync(fd) != 0)
		rc = create_error(e, "write", tmp, errno);
	if (close(fd) != 0 && rc == 0)
		rc = create_error(e, "write", tmp, errno);
	if (rc != 0)
		unlink(tmp);
out:
	free(name);
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
	int rc;

	new_id(env->id, sizeof(env->id));
	/* a message already tried once (the synchronous attempt) waits in
	 * deferred/; one never tried is new */
	env->state = env->attempts > 0 ? Q_DEFERRED : Q_NEW;
	env->size = (long long)head_len + (body_fd >= 0 ? body_len : 0);
	if (env->created == 0)
		env->created = (long long)time(NULL);
	if ((rc = write_data(q, env->id, head, head_len, body_fd, body_off,
	    body_len, e)) != 0)
		return rc;
	msg_tmp = xasprintf("%s/tmp/%s.msg", q->dir, env->id);
	msg_dst = qpath(q, "data", env->id, ".msg");
	name = xasprintf("%s.env", env->id);
	json = env_to_json(env);
	env_dst = qpath(q, state_dirs[env->state], env->id, ".env");
	if ((rc = write_tmp(q, name, json, &env_tmp, e)) != 0)
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

/* ------------------------------------------------------------ reading */

static int
load_path(const char *path, enum qstate st, struct qenv *env,
    struct bm_err *e)
{
	char *text = NULL;
	int rc;

	if ((rc = read_small_file(path, ENVELOPE_MAX, &text, e)) != 0)
		return rc;
	rc = env_from_json(text, env);
	free(text);
	if (rc != 0)
		return err_set(e, EX_DATAERR, "damaged queue envelope %s", path);
	env->state = st;
	return 0;
}

int
queue_load(struct queue *q, const char *id, struct qenv *env,
    struct bm_err *e)
{
	size_t i;

	memset(env, 0, sizeof(*env));
	if (strchr(id, '/') || strchr(id, '.') || *id == '\0')
		return err_set(e, EX_NOINPUT, "no message %s in the queue", id);
	for (i = 0; i < NELEM(state_dirs); i++) {
		char *p = qpath(q, state_dirs[i], id, ".env");
		int rc = access(p, F_OK) == 0 ?
		    load_path(p, (enum qstate)i, env, e) : -1;

		free(p);
		if (rc >= 0)
			return rc;
	}
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

int
queue_list(struct queue *q, struct qenv **out, size_t *n, struct bm_err *e)
{
	struct qenv *v = NULL;
	size_t cap = 0, i;

	*n = 0;
	for (i = 0; i < NELEM(state_dirs); i++) {
		char *dir = xasprintf("%s/%s", q->dir, state_dirs[i]);
		DIR *d = opendir(dir);
		struct dirent *de;

		while (d && (de = readdir(d)) != NULL) {
			size_t len = strlen(de->d_name);
			char *p;

			if (len < 5 || strcmp(de->d_name + len - 4, ".env") != 0)
				continue;
			if (*n == cap) {
				cap = cap ? cap * 2 : 16;
				v = xrealloc(v, cap * sizeof(*v));
			}
			p = xasprintf("%s/%s", dir, de->d_name);
			if (load_path(p, (enum qstate)i, &v[*n], NULL) == 0)
				(*n)++;
			free(p);
		}
		if (d)
			closedir(d);
		free(dir);
	}
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

int
queue_data_open(struct queue *q, const char *id, int *fd, long long *size,
    struct bm_err *e)
{
	char *p = qpath(q, "data", id, ".msg");
	struct stat st;
	int rc = 0;

	if ((*fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    fstat(*fd, &st) != 0) {
		rc = err_set(e, EX_IOERR, "cannot open %s: %s", p,
		    strerror(errno));
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	} else {
		*size = (long long)st.st_size;
	}
	free(p);
	return rc;
}

/* ------------------------------------------------- updating, removing */

int
queue_update(struct queue *q, const struct qenv *env, struct bm_err *e)
{
	char *dst = qpath(q, state_dirs[env->state], env->id, ".env");
	char *name = NULL, *tmp = NULL, *json = NULL;
	size_t i;
	int rc;

	/* move first (atomic), so at no moment are there two envelopes */
	for (i = 0; i < NELEM(state_dirs); i++) {
		char *p;

		if (i == (size_t)env->state)
			continue;
		p = qpath(q, state_dirs[i], env->id, ".env");
		if (rename(p, dst) == 0)
			sync_sub(q, state_dirs[i]);
		free(p);
	}
	name = xasprintf("%s.env.%ld", env->id, (long)getpid());
	json = env_to_json(env);
	if ((rc = write_tmp(q, name, json, &tmp, e)) == 0) {
		if (rename(tmp, dst) != 0) {
			rc = create_error(e, "update", dst, errno);
			unlink(tmp);
		} else if (sync_sub(q, state_dirs[env->state]) != 0) {
			rc = create_error(e, "sync", dst, errno);
		}
	}
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
