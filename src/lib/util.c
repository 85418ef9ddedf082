/*
 * util - allocation that never fails, a growable buffer, number parsing
 * without atoi/strtol pitfalls, secret wiping, the shared error record and
 * reading whole files without being hung or misled by what stands there.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif
#include <unistd.h>
#ifdef HAVE_GETRANDOM
#include <sys/random.h>
#endif

#include "util.h"

#ifndef EX_OSERR
#define EX_OSERR 71
#endif

static const char *progname = "bearmail";

void
util_set_progname(const char *name)
{
	const char *slash = strrchr(name, '/');

	progname = slash ? slash + 1 : name;
}

const char *
util_progname(void)
{
	return progname;
}

void
die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

void
warnx_(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void *
check(void *p)
{
	if (p == NULL)
		die(EX_OSERR, "out of memory");
	return p;
}

void *
xmalloc(size_t n)
{
	return check(malloc(n ? n : 1));
}

void *
xcalloc(size_t nmemb, size_t size)
{
	return check(calloc(nmemb ? nmemb : 1, size ? size : 1));
}

void *
xrealloc(void *p, size_t n)
{
	return check(realloc(p, n ? n : 1));
}

char *
xstrdup(const char *s)
{
	return check(strdup(s));
}

char *
xstrndup(const char *s, size_t n)
{
	return check(strndup(s, n));
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		die(EX_OSERR, "out of memory");
	return s;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void
wipe(void *p, size_t n)
{
	if (p == NULL || n == 0)
		return;
#ifdef HAVE_EXPLICIT_BZERO
	explicit_bzero(p, n);
#else
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
#endif
}

void
wipe_free(char *s)
{
	if (s == NULL)
		return;
	wipe(s, strlen(s));
	free(s);
}

static void
buf_grow(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap = b->cap ? b->cap : 64;
	char *n;

	if (need <= b->cap)
		return;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			die(EX_OSERR, "out of memory");
		cap *= 2;
	}
	/* realloc could leave a secret behind in the old block: copy by hand */
	n = xmalloc(cap);
	if (b->data) {
		memcpy(n, b->data, b->len);
		wipe(b->data, b->cap);
		free(b->data);
	}
	b->data = n;
	b->cap = cap;
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	buf_adds(b, s);
	wipe_free(s);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b, int secret)
{
	if (b->data && secret)
		wipe(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
buf_steal(struct buf *b)
{
	char *s;

	if (b->data == NULL)
		return xstrdup("");
	s = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

int
str_to_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || !(isdigit((unsigned char)*s) || *s == '-'))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
scaled(const char *s, const char *units, const long long *mult, long long *out)
{
	char tmp[64];
	size_t n = strlen(s);
	long long v, m = 1;
	const char *u;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n + 1);
	if ((u = strchr(units, tmp[n - 1])) != NULL && tmp[n - 1] != '\0') {
		m = mult[u - units];
		tmp[n - 1] = '\0';
	}
	if (str_to_ll(tmp, 0, LLONG_MAX, &v) != 0 || (m > 1 && v > LLONG_MAX / m))
		return -1;
	*out = v * m;
	return 0;
}

int
str_to_size(const char *s, long long *out)
{
	static const long long mult[] = { 1024LL, 1024LL, 1048576LL, 1048576LL,
	    1073741824LL, 1073741824LL };

	return scaled(s, "kKmMgG", mult, out);
}

int
str_to_seconds(const char *s, long long *out)
{
	static const long long mult[] = { 1, 60, 3600, 86400, 604800 };

	return scaled(s, "smhdw", mult, out);
}

int
mem_has_8bit(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i] >= 0x80)
			return 1;
	return 0;
}

int
str_has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

char *
str_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

int
err_set(struct bm_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (e == NULL)
		return code;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);      /* fmt's arguments may be e->msg */
	va_end(ap);
	e->code = code;
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
	memset(&e->v, 0, sizeof(e->v));
	e->v.temporary = code == EX_TEMPFAIL;
	free(msg);
	return code;
}

/* ---------------------------------------------------------- files */

const char *
file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO (named pipe)";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISLNK(m))
		return "a symbolic link";
	return "of an unknown kind";
}

static int
not_regular(const char *path, mode_t m, struct bm_err *e)
{
	return err_set(e, EX_NOINPUT, "%s is %s, not a regular file: put the "
	    "file itself there or correct the path", path, file_kind(m));
}

static int
symlink_refused(const char *path, struct bm_err *e)
{
	return err_set(e, EX_NOINPUT, "%s is a symbolic link, which is not "
	    "followed for this file: name the file itself", path);
}

/* Refuse what is not a regular file before opening it: opening a device
 * can act (a tape rewinds, a watchdog arms).  A file that cannot be
 * stat'ed is left to open(2), which says why. */
static int
file_precheck(const char *path, int flags, struct bm_err *e)
{
	struct stat st;
	int r = (flags & FILE_NOFOLLOW) ? lstat(path, &st) : stat(path, &st);

	if (r != 0 || S_ISREG(st.st_mode))
		return 0;
	if (S_ISLNK(st.st_mode))
		return symlink_refused(path, e);
	return not_regular(path, st.st_mode, e);
}

static int
open_failed(const char *path, int flags, int err, struct bm_err *e)
{
	if (err == ENOENT)
		return err_set(e, EX_NOINPUT, "%s does not exist: create it or "
		    "correct the path", path);
	if ((err == ELOOP || err == EMLINK) && (flags & FILE_NOFOLLOW))
		return symlink_refused(path, e);
	if (err == EACCES || err == EPERM)
		return err_set(e, EX_NOINPUT, "cannot open %s: %s: let uid %ld "
		    "read it (and search its directories) or correct the path",
		    path, strerror(err), (long)geteuid());
	if (err == ENOTDIR)
		return err_set(e, EX_NOINPUT, "cannot open %s: %s: correct the "
		    "path", path, strerror(err));
	return err_set(e, EX_IOERR, "cannot open %s: %s", path, strerror(err));
}

int
err_prefix(struct bm_err *e, const char *fmt, ...)
{
	va_list ap;
	char *prefix, *msg;

	if (e == NULL)
		return 0;
	va_start(ap, fmt);
	prefix = xvasprintf(fmt, ap);
	va_end(ap);
	msg = xasprintf("%s: %s", prefix, e->msg);
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
	free(prefix);
	free(msg);
	return e->code;
}

int
file_open(const char *path, int flags, int *fd, struct stat *st,
    struct bm_err *e)
{
	int oflags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, rc;
	struct stat sb;

	*fd = -1;
	if (st == NULL)
		st = &sb;
	if (flags & FILE_NOFOLLOW)
		oflags |= O_NOFOLLOW;
	if ((rc = file_precheck(path, flags, e)) != 0)
		return rc;
	while ((*fd = open(path, oflags)) < 0 && errno == EINTR)
		;
	if (*fd < 0)
		return errno == ENOENT && (flags & FILE_MISSING_OK) ? 0 :
		    open_failed(path, flags, errno, e);
	/* the check that counts: on what was opened */
	if (fstat(*fd, st) != 0)
		rc = err_set(e, EX_IOERR, "cannot stat %s: %s", path,
		    strerror(errno));
	else if (S_ISREG(st->st_mode))
		return 0;
	else
		rc = not_regular(path, st->st_mode, e);
	close(*fd);
	*fd = -1;
	return rc;
}

int
file_read_fd(int fd, const char *path, size_t max, int flags, char **text,
    size_t *len, struct bm_err *e)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t n;
	int rc = 0;

	*text = NULL;
	while (rc == 0 && (n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = err_set(e, EX_IOERR, "cannot read %s: %s", path,
			    strerror(errno));
		else if ((size_t)n > max - b.len)
			rc = err_set(e, EX_DATAERR, "%s is larger than %zu "
			    "bytes: is it the right file?", path, max);
		else
			buf_add(&b, chunk, (size_t)n);
	}
	if (flags & FILE_SECRET)
		wipe(chunk, sizeof(chunk));
	if (rc != 0) {
		buf_free(&b, flags & FILE_SECRET);
		return rc;
	}
	if (len != NULL)
		*len = b.len;
	*text = buf_steal(&b);
	return 0;
}

int
file_read(const char *path, size_t max, int flags, char **text, size_t *len,
    struct bm_err *e)
{
	int fd, rc;

	*text = NULL;
	if (len != NULL)
		*len = 0;
	if ((rc = file_open(path, flags, &fd, NULL, e)) != 0 || fd < 0)
		return rc;
	rc = file_read_fd(fd, path, max, flags, text, len, e);
	close(fd);
	return rc;
}

int
read_small_file(const char *path, size_t max, char **out, struct bm_err *e)
{
	return file_read(path, max, FILE_NOFOLLOW | FILE_SECRET, out, NULL, e);
}

void
random_bytes(void *p, size_t n)
{
	unsigned char *c = p;

	while (n > 0) {
#ifdef HAVE_GETRANDOM
		ssize_t r = getrandom(c, n, 0);
#else
		ssize_t r = -1;
		errno = ENOSYS;
#endif
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die(EX_OSERR, "no random bytes from the kernel: %s",
			    strerror(errno));
		c += r;
		n -= (size_t)r;
	}
}

int
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

void
util_harden(void)
{
	struct rlimit rl = { 0, 0 };

#ifdef HAVE_SYS_PRCTL_H
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
	setrlimit(RLIMIT_CORE, &rl);
	umask(077);
}

int
mkdir_private(const char *dir, struct bm_err *e)
{
	char *d = xstrdup(dir), *p;
	int rc = 0;

	for (p = strchr(d + 1, '/'); ; p = strchr(p + 1, '/')) {
		if (p != NULL)
			*p = '\0';
		if (*d != '\0' && mkdir(d, 0700) != 0 && errno != EEXIST) {
			rc = err_set(e, EX_CANTCREAT, "cannot create directory "
			    "%s: %s", d, strerror(errno));
			break;
		}
		if (p == NULL)
			break;
		*p = '/';
	}
	free(d);
	return rc;
}

int
mkdir_parent(const char *path, struct bm_err *e)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int rc = 0;

	if (slash != NULL && slash != dir) {
		*slash = '\0';
		rc = mkdir_private(dir, e);
	}
	free(dir);
	return rc;
}

static long long
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
util_monotonic_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

long long
util_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int
is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

char *
str_printable(char *s, char repl)
{
	char *p;

	for (p = s; p != NULL && *p != '\0'; p++)
		if (is_control((unsigned char)*p))
			*p = repl;
	return s;
}

/* ------------------------------------------------------------- UTF-8 */

static void
utf8_lead(struct utf8 *u, unsigned char c)
{
	u->lo = 0x80;
	u->hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		u->need = 1;
	else if (c >= 0xe0 && c <= 0xef)
		u->need = 2;
	else if (c >= 0xf0 && c <= 0xf4)
		u->need = 3;
	else
		u->bad = 1;
	if (c == 0xe0)
		u->lo = 0xa0;
	else if (c == 0xed)
		u->hi = 0x9f;
	else if (c == 0xf0)
		u->lo = 0x90;
	else if (c == 0xf4)
		u->hi = 0x8f;
}

void
utf8_feed(struct utf8 *u, const char *p, size_t n)
{
	unsigned char c;
	size_t i;

	for (i = 0; i < n && !u->bad; i++) {
		c = (unsigned char)p[i];
		if (u->need > 0) {
			if (c < u->lo || c > u->hi)
				u->bad = 1;
			u->lo = 0x80;
			u->hi = 0xbf;
			u->need--;
		} else if (c >= 0x80) {
			utf8_lead(u, c);
		}
	}
}

int
utf8_valid(const char *p, size_t n)
{
	struct utf8 u = { 0, 0, 0, 0 };

	utf8_feed(&u, p, n);
	return !u.bad && u.need == 0;
}

size_t
utf8_char(const char *s, size_t n)
{
	struct utf8 u = { 0, 0, 0, 0 };
	size_t i = 0;

	do
		utf8_feed(&u, s + i++, 1);
	while (!u.bad && u.need > 0 && i < n);
	return u.bad || u.need > 0 ? 0 : i;
}

/* ------------------------------------------------------ directories */

const char *
util_home(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home != NULL && home[0] == '/')
		return home;
	pw = getpwuid(geteuid());
	if (pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/')
		return pw->pw_dir;
	return NULL;
}

char *
util_xdg_path(const char *var, const char *fallback, const char *leaf)
{
	const char *x = getenv(var), *home = util_home();

	if (x != NULL && x[0] == '/')
		return xasprintf("%s/bearmail/%s", x, leaf);
	return xasprintf("%s/%s/bearmail/%s", home ? home : "", fallback,
	    leaf);
}

/* ---------------------------------------------------------- scrubbing */

static unsigned long long
gram_hash(const unsigned char *p)
{
	unsigned long long h = 1469598103934665603ULL;
	int i;

	for (i = 0; i < SCRUB_GRAM; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static int
cmp_hash(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a;
	unsigned long long y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}

void
scrub_add(struct scrub *sc, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0, i;

	if (n < SCRUB_GRAM)
		return;
	sc->h = xrealloc(sc->h, (sc->n + n) * sizeof(*sc->h));
	for (i = 0; i + SCRUB_GRAM <= n; i++)
		sc->h[sc->n++] = gram_hash((const unsigned char *)secret + i);
	qsort(sc->h, sc->n, sizeof(*sc->h), cmp_hash);
}

static int
scrub_has(const struct scrub *sc, const unsigned char *p)
{
	unsigned long long h = gram_hash(p);

	return bsearch(&h, sc->h, sc->n, sizeof(h), cmp_hash) != NULL;
}

void
scrub_buf(const struct scrub *sc, struct buf *b)
{
	const unsigned char *p = (const unsigned char *)b->data;
	struct buf out = BUF_INIT;
	size_t i, end = 0;
	int hit = 0;

	if (sc->n == 0 || b->len < SCRUB_GRAM)
		return;
	for (i = 0; i + SCRUB_GRAM <= b->len; i++) {
		if (!scrub_has(sc, p + i))
			continue;
		if (i >= end) {          /* a new run: keep what precedes it */
			buf_add(&out, p + end, i - end);
			buf_adds(&out, "[redacted]");
		}
		end = i + SCRUB_GRAM;   /* the run reaches at least here */
		hit = 1;
	}
	if (!hit)
		return;
	buf_add(&out, p + end, b->len - end);
	buf_free(b, 1);
	*b = out;
}

void
scrub_str(const struct scrub *sc, char *s, size_t cap)
{
	struct buf b = BUF_INIT;

	if (sc->n == 0 || cap == 0)
		return;
	buf_adds(&b, s);
	scrub_buf(sc, &b);
	snprintf(s, cap, "%s", b.data);
	buf_free(&b, 1);
}

void
scrub_free(struct scrub *sc)
{
	if (sc->h != NULL)
		wipe(sc->h, sc->n * sizeof(*sc->h));
	free(sc->h);
	sc->h = NULL;
	sc->n = 0;
}

