/*
 * Unit tests for util: number, size and duration parsing, buffers, trim,
 * and file_read over everything that can stand where a file belongs.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/tap.h"
#include "util.h"

static const struct {
	const char *in;
	int rc;
	long long want;
} ll_cases[] = {
	{ "0", 0, 0 }, { "587", 0, 587 }, { "65535", 0, 65535 },
	{ "65536", -1, 0 }, { "-1", -1, 0 }, { "", -1, 0 }, { "12a", -1, 0 },
	{ " 5", -1, 0 }, { "99999999999999999999999", -1, 0 },
};

static const struct {
	const char *in;
	int rc;
	long long want;
} size_cases[] = {
	{ "35M", 0, 36700160 }, { "512k", 0, 524288 }, { "1G", 0, 1073741824 },
	{ "1000", 0, 1000 }, { "M", -1, 0 }, { "3X", -1, 0 }, { "", -1, 0 },
	{ "9999999999999999G", -1, 0 },
};

static const struct {
	const char *in;
	int rc;
	long long want;
} dur_cases[] = {
	{ "30", 0, 30 }, { "30s", 0, 30 }, { "5m", 0, 300 }, { "2h", 0, 7200 },
	{ "5d", 0, 432000 }, { "1w", 0, 604800 }, { "5y", -1, 0 }, { "d", -1, 0 },
};

static void
test_numbers(void)
{
	size_t i;
	long long v;

	for (i = 0; i < sizeof(ll_cases) / sizeof(ll_cases[0]); i++) {
		int rc = str_to_ll(ll_cases[i].in, 0, 65535, &v);
		ok(rc == ll_cases[i].rc && (rc || v == ll_cases[i].want),
		    "str_to_ll(\"%s\")", ll_cases[i].in);
	}
	for (i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		int rc = str_to_size(size_cases[i].in, &v);
		ok(rc == size_cases[i].rc && (rc || v == size_cases[i].want),
		    "str_to_size(\"%s\")", size_cases[i].in);
	}
	for (i = 0; i < sizeof(dur_cases) / sizeof(dur_cases[0]); i++) {
		int rc = str_to_seconds(dur_cases[i].in, &v);
		ok(rc == dur_cases[i].rc && (rc || v == dur_cases[i].want),
		    "str_to_seconds(\"%s\")", dur_cases[i].in);
	}
}

static void
test_buf(void)
{
	struct buf b = BUF_INIT;
	char *s;
	int i;

	for (i = 0; i < 1000; i++)
		buf_addf(&b, "%d,", i % 10);
	is_int((long long)b.len, 2000, "buf grows to 2000 bytes");
	is_int(b.data[b.len], 0, "buf stays NUL-terminated");
	buf_reset(&b);
	buf_adds(&b, "abc");
	buf_addc(&b, 'd');
	buf_add(&b, "ef", 2);
	s = buf_steal(&b);
	is_str(s, "abcdef", "buf_add/adds/addc");
	ok(b.data == NULL && b.len == 0, "buf_steal resets the buffer");
	free(s);
	s = buf_steal(&b);
	is_str(s, "", "buf_steal of an empty buffer is \"\"");
	free(s);
}

static void
test_trim_and_err(void)
{
	char t1[] = "  hello \t\r\n";
	char t2[] = "";
	struct bm_err e = { 0 };

	is_str(str_trim(t1), "hello", "str_trim both ends");
	is_str(str_trim(t2), "", "str_trim empty");
	is_int(err_set(&e, 78, "bad %s", "thing"), 78, "err_set returns code");
	is_str(e.msg, "bad thing", "err_set formats");
	is_int(err_set(NULL, 75, "x"), 75, "err_set with NULL record");
	ok(str_has_prefix_ci("AUTH XOAUTH2", "auth "), "prefix match ignores case");
}

/* ------------------------------------------------------------ files */

static char dir[] = "/tmp/bearmail-util-XXXXXX";

enum kind { REGULAR, FIFO, DIRECTORY, LINK, LINK_TO_FIFO, DANGLING,
	DEV_NULL, DEV_ZERO, MISSING, UNREADABLE, SOCKET, NOT_DIR };

/* In msg, '@' stands for the path and '#' for the reader's uid. */
static const struct {
	const char *name;
	enum kind kind;
	const char *content;
	size_t max;
	int flags, rc;
	const char *text, *msg;
} file_cases[] = {
	{ "regular file", REGULAR, "hello\n", 100, 0, 0, "hello\n", NULL },
	{ "empty file", REGULAR, "", 100, 0, 0, "", NULL },
	{ "exactly max bytes", REGULAR, "hello", 5, 0, 0, "hello", NULL },
	{ "too large", REGULAR, "hello!", 5, 0, EX_DATAERR, NULL,
	  "@ is larger than 5 bytes: is it the right file?" },
	{ "FIFO", FIFO, NULL, 100, 0, EX_NOINPUT, NULL, "@ is a FIFO (named "
	  "pipe), not a regular file: put the file itself there or correct "
	  "the path" },
	{ "FIFO, missing allowed", FIFO, NULL, 100, FILE_MISSING_OK,
	  EX_NOINPUT, NULL, "@ is a FIFO (named pipe), not a regular file: "
	  "put the file itself there or correct the path" },
	{ "directory", DIRECTORY, NULL, 100, 0, EX_NOINPUT, NULL, "@ is a "
	  "directory, not a regular file: put the file itself there or "
	  "correct the path" },
	{ "symlink, followed", LINK, "linked\n", 100, 0, 0, "linked\n", NULL },
	{ "symlink, no-follow", LINK, "linked\n", 100, FILE_NOFOLLOW,
	  EX_NOINPUT, NULL, "@ is a symbolic link, which is not followed for "
	  "this file: name the file itself" },
	{ "symlink to a FIFO, followed", LINK_TO_FIFO, NULL, 100, 0,
	  EX_NOINPUT, NULL, "@ is a FIFO (named pipe), not a regular file: "
	  "put the file itself there or correct the path" },
	{ "dangling symlink", DANGLING, NULL, 100, 0, EX_NOINPUT, NULL,
	  "@ does not exist: create it or correct the path" },
	{ "/dev/null", DEV_NULL, NULL, 100, 0, EX_NOINPUT, NULL, "@ is a "
	  "character device, not a regular file: put the file itself there "
	  "or correct the path" },
	{ "/dev/zero", DEV_ZERO, NULL, 100, 0, EX_NOINPUT, NULL, "@ is a "
	  "character device, not a regular file: put the file itself there "
	  "or correct the path" },
	{ "missing", MISSING, NULL, 100, 0, EX_NOINPUT, NULL, "@ does not "
	  "exist: create it or correct the path" },
	{ "missing, allowed", MISSING, NULL, 100, FILE_MISSING_OK, 0, NULL,
	  NULL },
	{ "unreadable", UNREADABLE, "secret\n", 100, 0, EX_NOINPUT, NULL,
	  "cannot open @: Permission denied: let uid # read it (and search "
	  "its directories) or correct the path" },
	{ "socket", SOCKET, NULL, 100, 0, EX_NOINPUT, NULL, "@ is a socket, "
	  "not a regular file: put the file itself there or correct the "
	  "path" },
	{ "a file as a directory", NOT_DIR, "x", 100, 0, EX_NOINPUT, NULL,
	  "cannot open @: Not a directory: correct the path" },
};

static const char *hung_case = "";

/* A regression that blocks must fail the test, not hang the suite. */
static void
on_alarm(int sig)
{
	static const char m[] = "Bail out! file_read hung on: ";

	(void)sig;
	if (write(STDOUT_FILENO, m, sizeof(m) - 1) < 0 ||
	    write(STDOUT_FILENO, hung_case, strlen(hung_case)) < 0 ||
	    write(STDOUT_FILENO, "\n", 1) < 0)
		_exit(2);
	_exit(1);
}

static void
put(const char *path, const char *content, int mode)
{
	FILE *f = fopen(path, "wb");
	size_t n = strlen(content);

	if (f == NULL || fwrite(content, 1, n, f) != n || fclose(f) != 0 ||
	    chmod(path, (mode_t)mode) != 0)
		abort();
}

static void
make_socket(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (fd < 0 || strlen(path) >= sizeof(sun.sun_path))
		abort();
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		abort();
	close(fd);
}

/* Make case i's file; returns the path to read. */
static char *
make_file(size_t i)
{
	char *path = xasprintf("%s/f%zu", dir, i);
	char *other = xasprintf("%s/t%zu", dir, i);
	int bad = 0;

	switch (file_cases[i].kind) {
	case REGULAR:
	case NOT_DIR:
		put(path, file_cases[i].content, 0600);
		break;
	case UNREADABLE:
		put(path, file_cases[i].content, 0);
		break;
	case FIFO:
		bad = mkfifo(path, 0600);
		break;
	case DIRECTORY:
		bad = mkdir(path, 0700);
		break;
	case LINK:
		put(other, file_cases[i].content, 0600);
		bad = symlink(other, path);
		break;
	case LINK_TO_FIFO:
		bad = mkfifo(other, 0600) || symlink(other, path);
		break;
	case DANGLING:
		bad = symlink(other, path);
		break;
	case SOCKET:
		make_socket(path);
		break;
	case DEV_NULL:
	case DEV_ZERO:
	case MISSING:
		break;
	}
	if (file_cases[i].kind == DEV_NULL || file_cases[i].kind == DEV_ZERO) {
		free(path);
		path = xstrdup(file_cases[i].kind == DEV_NULL ? "/dev/null" :
		    "/dev/zero");
	} else if (file_cases[i].kind == NOT_DIR) {
		free(path);
		path = xasprintf("%s/f%zu/x", dir, i);
	}
	if (bad)
		abort();
	free(other);
	return path;
}

struct result {
	int rc;
	int text_null;
	char text[128];
	size_t len;
	char msg[sizeof(((struct bm_err *)0)->msg)];
};

static void
attempt(size_t i, const char *path, struct result *r)
{
	struct bm_err e = { 0 };
	char *text = NULL;

	memset(r, 0, sizeof(*r));
	r->rc = file_read(path, file_cases[i].max, file_cases[i].flags, &text,
	    &r->len, &e);
	r->text_null = text == NULL;
	if (text != NULL)
		snprintf(r->text, sizeof(r->text), "%s", text);
	snprintf(r->msg, sizeof(r->msg), "%s", r->rc ? e.msg : "");
	free(text);
}

/* root reads everything: an unreadable file is tried as nobody, in a
 * child, its result sent back through a pipe. */
static void
attempt_as_nobody(size_t i, const char *path, struct result *r)
{
	int p[2], st;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->rc = -1;
	if (pipe(p) != 0 || chmod(dir, 0711) != 0 || (pid = fork()) < 0)
		abort();
	if (pid == 0) {
		close(p[0]);
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(1);
		attempt(i, path, r);
		_exit(write(p[1], r, sizeof(*r)) == (ssize_t)sizeof(*r) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], r, sizeof(*r)) != (ssize_t)sizeof(*r))
		r->rc = -1;
	close(p[0]);
	waitpid(pid, &st, 0);
	chmod(dir, 0700);
}

static char *
expand_msg(const char *msg, const char *path, long uid)
{
	struct buf b = BUF_INIT;

	for (; *msg; msg++)
		if (*msg == '@')
			buf_adds(&b, path);
		else if (*msg == '#')
			buf_addf(&b, "%ld", uid);
		else
			buf_addc(&b, *msg);
	return buf_steal(&b);
}

static void
check_case(size_t i, const struct result *r, const char *path, long uid)
{
	const char *name = file_cases[i].name;
	char *want;

	is_int(r->rc, file_cases[i].rc, "%s: exit code", name);
	if (file_cases[i].rc != 0) {
		want = expand_msg(file_cases[i].msg, path, uid);
		is_str(r->msg, want, "%s: the message names the file and the "
		    "fix", name);
		ok(r->text_null, "%s: no text", name);
		free(want);
	} else if (file_cases[i].text == NULL) {
		ok(r->text_null && r->len == 0, "%s: NULL text", name);
	} else {
		is_str(r->text, file_cases[i].text, "%s: the text", name);
		is_int((long long)r->len, (long long)strlen(file_cases[i].text),
		    "%s: the length", name);
	}
}

static void
test_file_read(void)
{
	struct result r;
	size_t i;

	signal(SIGALRM, on_alarm);
	for (i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
		char *path = make_file(i);
		int as_nobody = file_cases[i].kind == UNREADABLE &&
		    geteuid() == 0;

		hung_case = file_cases[i].name;
		alarm(20);
		if (as_nobody)
			attempt_as_nobody(i, path, &r);
		else
			attempt(i, path, &r);
		alarm(0);
		check_case(i, &r, path, as_nobody ? 65534 : (long)geteuid());
		free(path);
	}
}

static void
test_file_open_and_wrappers(void)
{
	struct bm_err e = { 0 };
	char *reg = xasprintf("%s/open", dir), *lnk = xasprintf("%s/olink", dir);
	char *fifo = xasprintf("%s/ofifo", dir), *text = NULL;
	struct stat st;
	size_t len = 99;
	int fd;

	put(reg, "a\0b", 0600);
	ok(symlink(reg, lnk) == 0 && mkfifo(fifo, 0600) == 0, "files made");
	is_int(file_open(reg, FILE_NOFOLLOW, &fd, &st, &e), 0, "file_open: "
	    "a regular file");
	ok(fd >= 0 && S_ISREG(st.st_mode) && st.st_size == 1, "file_open: "
	    "descriptor and stat");
	is_int(file_read_fd(fd, reg, 10, FILE_SECRET, &text, &len, &e), 0,
	    "file_read_fd: reads");
	ok(len == 1 && text[0] == 'a' && text[1] == '\0', "file_read_fd: the "
	    "bytes, NUL-terminated");
	wipe_free(text);
	close(fd);
	is_int(file_open(dir, 0, &fd, NULL, &e), EX_NOINPUT, "file_open: a "
	    "directory refused");
	ok(fd == -1, "file_open: no descriptor left on refusal");
	fd = 7;
	is_int(file_open("/nonexistent/x", FILE_MISSING_OK, &fd, NULL, &e), 0,
	    "file_open: missing allowed");
	ok(fd == -1, "file_open: missing gives no descriptor");
	hung_case = "read_small_file";
	alarm(20);
	is_int(read_small_file(fifo, 100, &text, &e), EX_NOINPUT,
	    "read_small_file: a FIFO refused at once");
	is_int(read_small_file(lnk, 100, &text, &e), EX_NOINPUT,
	    "read_small_file: a symbolic link refused");
	is_int(read_small_file("/dev/zero", 100, &text, &e), EX_NOINPUT,
	    "read_small_file: /dev/zero refused");
	alarm(0);
	is_int(read_small_file(reg, 100, &text, &e), 0, "read_small_file: a "
	    "regular file read");
	wipe_free(text);
	free(reg);
	free(lnk);
	free(fifo);
}

/* Remove the directory with rm(1), exec'd without a shell. */
static void
cleanup(void)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &st, 0);
}

int
main(void)
{
	test_numbers();
	test_buf();
	test_trim_and_err();
	if (mkdtemp(dir) == NULL)
		return 1;
	test_file_read();
	test_file_open_and_wrappers();
	cleanup();
	return done_testing();
}
