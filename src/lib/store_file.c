/*
 * store_file - token records as private JSON files.  Loading refuses what
 * ssh would refuse (symlinks, foreign owners, group/other bits); saving
 * goes through a temporary file, fsync and rename so that a crash leaves
 * either the old record or the new one, never a torn refresh token.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "jsonx.h"
#include "store_file.h"

/* ----------------------------------------------------------------- path */

/* The account name as a file name: no '/', no leading dot. */
static char *
safe_name(const char *name)
{
	char *s = xstrdup(name && name[0] ? name : "default");
	char *p;

	for (p = s; *p; p++)
		if (*p == '/' || (p == s && *p == '.'))
			*p = '_';
	return s;
}

char *
store_file_path(const struct account *a)
{
	const char *ts = a->token_store, *home = util_home();
	char *name, *leaf, *path;

	if (ts != NULL && strncmp(ts, "file:", 5) == 0 && ts[5] != '\0') {
		if (strncmp(ts + 5, "~/", 2) == 0)
			return xasprintf("%s/%s", home ? home : "", ts + 7);
		return xstrdup(ts + 5);
	}
	name = safe_name(a->name);
	leaf = xasprintf("tokens/%s.json", name);
	path = util_xdg_path("XDG_STATE_HOME", ".local/state", leaf);
	free(leaf);
	free(name);
	return path;
}

/* ----------------------------------------------------------------- load */

/* The owner and mode check, on the stat of the open file. */
static int
check_file(const struct stat *st, const char *path, struct bm_err *e)
{
	unsigned mode = (unsigned)st->st_mode & 07777;

	if (st->st_uid != geteuid())
		return err_set(e, EX_CONFIG, "token file %s is owned by uid %lu, "
		    "not by you (uid %lu): refusing it; remove it and log in "
		    "again", path, (unsigned long)st->st_uid,
		    (unsigned long)geteuid());
	if (mode & 077)
		return err_set(e, EX_CONFIG, "token file %s is %s by others "
		    "(mode %04o): run chmod 600 %s", path, (mode & 044) ?
		    "readable" : "writable", mode, path);
	return 0;
}

/* file_open or file_read_fd refused the file (rc, e): bearmail wrote the
 * token file itself, so for anything but a failing disk the fix is a new
 * one, and every refusal is configuration, for a person to fix. */
static int
refused(const char *path, int rc, struct bm_err *e)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		return err_set(e, EX_CONFIG, "token file %s is a symbolic "
		    "link: refusing it", path);
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return err_set(e, EX_CONFIG, "token file %s is %s, not a "
		    "regular file: remove it and log in again", path,
		    file_kind(st.st_mode));
	if (rc == EX_DATAERR)
		return err_set(e, EX_CONFIG, "token file %s is larger than %d "
		    "bytes: remove it and log in again", path, STORE_FILE_MAX);
	rc = rc == EX_IOERR ? EX_IOERR : EX_CONFIG;
	if (e != NULL)
		e->code = rc;
	return rc;
}

/* The record's text: not followed if a link, a regular file of ours. */
static int
read_checked(const char *path, char **text, size_t *len, struct bm_err *e)
{
	struct stat st;
	int fd, rc;

	rc = file_open(path, FILE_NOFOLLOW | FILE_MISSING_OK, &fd, &st, e);
	if (rc != 0)
		return refused(path, rc, e);
	if (fd < 0)
		return err_set(e, EX_NOINPUT, "no token file %s", path);
	if ((rc = check_file(&st, path, e)) == 0 &&
	    (rc = file_read_fd(fd, path, STORE_FILE_MAX, FILE_SECRET, text,
	    len, e)) != 0)
		rc = refused(path, rc, e);
	close(fd);
	return rc;
}

/* String member into *dst: 0 ok (absent or null: NULL), -1 wrong type.
 * The tokens are wiped in the parsed object once copied. */
static int
get_str(struct json_object *o, const char *key, char **dst)
{
	int rc = jsonx_strdup(o, key, dst);

	if (rc == 1 && (strcmp(key, "access_token") == 0 ||
	    strcmp(key, "refresh_token") == 0))
		jsonx_wipe(o, key);
	return rc < 0 ? -1 : 0;
}

static int
get_time(struct json_object *o, const char *key, long long *dst)
{
	/* up to the year 9999 */
	return jsonx_int(o, key, 0, 253402300799LL, dst) < 0 ? -1 : 0;
}

static int
rec_from_json(struct json_object *o, struct token_rec *t)
{
	int bad = 0;

	bad |= get_str(o, "account", &t->account);
	bad |= get_str(o, "user", &t->user);
	bad |= get_str(o, "client_id", &t->client_id);
	bad |= get_str(o, "tenant", &t->tenant);
	bad |= get_str(o, "scope", &t->scope);
	bad |= get_str(o, "access_token", &t->access_token);
	bad |= get_str(o, "refresh_token", &t->refresh_token);
	bad |= get_time(o, "expires_at", &t->expires_at);
	bad |= get_time(o, "updated_at", &t->updated_at);
	if (t->access_token == NULL && t->refresh_token == NULL)
		bad = -1;
	return bad ? -1 : 0;
}

int
store_file_decode(const char *text, size_t len, struct token_rec *t)
{
	struct json_tokener *tok = json_tokener_new_ex(8);
	struct json_object *o = NULL;
	size_t end;
	int ret = -1;

	token_rec_clear(t);
	if (tok == NULL || len == 0 || len > STORE_FILE_MAX)
		goto out;
	o = json_tokener_parse_ex(tok, text, (int)len);
	end = json_tokener_get_parse_end(tok);
	while (end < len && strchr(" \t\r\n", text[end]) != NULL &&
	    text[end] != '\0')
		end++;
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    end != len ||
	    !json_object_is_type(o, json_type_object) ||
	    rec_from_json(o, t) != 0)
		goto out;
	ret = 0;
out:
	if (ret != 0)
		token_rec_clear(t);
	json_object_put(o);
	if (tok != NULL)
		json_tokener_free(tok);
	return ret;
}

static int
parse_rec(const char *path, const char *text, size_t len, struct token_rec *t,
    struct bm_err *e)
{
	if (strlen(text) != len || store_file_decode(text, len, t) != 0)
		return err_set(e, EX_CONFIG, "token file %s is not a token "
		    "record: remove it and log in again", path);
	return 0;
}

int
store_file_load(const char *path, struct token_rec *t, struct bm_err *e)
{
	char *text = NULL;
	size_t len = 0;
	int ret;

	token_rec_clear(t);
	if ((ret = read_checked(path, &text, &len, e)) != 0 ||
	    (ret = parse_rec(path, text, len, t, e)) != 0)
		token_rec_clear(t);
	if (text != NULL)
		wipe(text, len);
	free(text);
	return ret;
}

/* ----------------------------------------------------------------- save */

static void
json_escaped(struct buf *b, const char *s)
{
	buf_addc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf_addc(b, '\\');
			buf_addc(b, (char)c);
		} else if (c < 0x20 || c == 0x7f)
			buf_addf(b, "\\u%04x", c);
		else
			buf_addc(b, (char)c);
	}
	buf_addc(b, '"');
}

static void
json_member(struct buf *b, const char *key, const char *val)
{
	if (val == NULL)
		return;
	buf_addf(b, "  \"%s\": ", key);
	json_escaped(b, val);
	buf_adds(b, ",\n");
}

void
store_file_encode(const struct token_rec *t, struct buf *b)
{
	buf_adds(b, "{\n");
	json_member(b, "account", t->account);
	json_member(b, "user", t->user);
	json_member(b, "client_id", t->client_id);
	json_member(b, "tenant", t->tenant);
	json_member(b, "scope", t->scope);
	json_member(b, "access_token", t->access_token);
	json_member(b, "refresh_token", t->refresh_token);
	buf_addf(b, "  \"expires_at\": %lld,\n", t->expires_at);
	buf_addf(b, "  \"updated_at\": %lld\n}\n", t->updated_at);
}

static int
sync_dir(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int fd, rc = -1;

	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		rc = fsync(fd);
		close(fd);
	}
	free(dir);
	return rc;
}

int
store_file_save(const char *path, const struct token_rec *t,
    struct bm_err *e)
{
	char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	struct buf b = BUF_INIT;
	int fd = -1, ret;

	if ((ret = mkdir_parent(path, e)) != 0)
		goto out;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		ret = err_set(e, EX_CANTCREAT, "cannot create %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	store_file_encode(t, &b);
	if (fchmod(fd, 0600) != 0 || write_all(fd, b.data, b.len) != 0 ||
	    fsync(fd) != 0) {
		ret = err_set(e, EX_IOERR, "cannot write %s: %s", tmp,
		    strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		ret = err_set(e, EX_IOERR, "cannot write %s: %s", tmp,
		    strerror(errno));
		unlink(tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0 || sync_dir(path) != 0) {
		ret = err_set(e, EX_IOERR, "cannot replace %s: %s", path,
		    strerror(errno));
		unlink(tmp);
	}
out:
	if (fd >= 0)
		close(fd);
	buf_free(&b, 1);
	free(tmp);
	return ret;
}

/* ----------------------------------------------------------------- lock */

/* The lock file open for writing: never a FIFO (which would block) or a
 * link; a regular file, created if need be. */
static int
lock_open(const char *lock, int *fd, struct bm_err *e)
{
	struct stat st;
	int err;

	*fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC | O_NOCTTY, 0600);
	err = errno;
	if (*fd >= 0 && fstat(*fd, &st) == 0 && S_ISREG(st.st_mode))
		return 0;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	if (lstat(lock, &st) == 0 && !S_ISREG(st.st_mode))
		return err_set(e, EX_CANTCREAT, "lock file %s is %s, not a "
		    "regular file: remove it", lock, file_kind(st.st_mode));
	return err_set(e, EX_CANTCREAT, "cannot create %s: %s", lock,
	    strerror(err));
}

int
store_file_lock_at(const char *lock, int *fd, struct bm_err *e)
{
	int ret;

	*fd = -1;
	if ((ret = mkdir_parent(lock, e)) != 0 ||
	    (ret = lock_open(lock, fd, e)) != 0)
		return ret;
	while (flock(*fd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		ret = err_set(e, EX_IOERR, "cannot lock %s: %s", lock,
		    strerror(errno));
		close(*fd);
		*fd = -1;
		break;
	}
	return ret;
}

int
store_file_lock(const char *path, int *fd, struct bm_err *e)
{
	char *lock = xasprintf("%s.lock", path);
	int ret = store_file_lock_at(lock, fd, e);

	free(lock);
	return ret;
}

void
store_file_unlock(int fd)
{
	if (fd < 0)
		return;
	flock(fd, LOCK_UN);
	close(fd);
}

/* --------------------------------------------------------------- delete */

int
store_file_delete(const char *path, int *found, struct bm_err *e)
{
	*found = 0;
	if (unlink(path) != 0) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, EX_IOERR, "cannot remove %s: %s", path,
		    strerror(errno));
	}
	*found = 1;
	if (sync_dir(path) != 0)
		return err_set(e, EX_IOERR, "cannot sync the directory of %s: "
		    "%s", path, strerror(errno));
	return 0;
}
