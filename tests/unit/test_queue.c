/* Unit tests for queue: the on-disk queue's promises. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue.h"
#include "tests/unit/tap.h"

static char root[] = "/tmp/test_queue.XXXXXX";

static int
count_files(const char *sub)
{
	char *p = xasprintf("%s/q/%s", root, sub);
	DIR *d = opendir(p);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	free(p);
	return n;
}

static int
body_fd(const char *text)
{
	char tmpl[] = "/tmp/test_queue_body.XXXXXX";
	int fd = mkstemp(tmpl);

	unlink(tmpl);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return -1;
	return fd;
}

static void
make_env(struct qenv *env)
{
	memset(env, 0, sizeof(*env));
	env->account = xstrdup("work");
	env->sender = xstrdup("alice@example.com");
	env->msgid = xstrdup("<m1@example>");
	env->dsn_ret = xstrdup("HDRS");
	qenv_add_rcpt(env, "a@example.com", "SUCCESS,FAILURE");
	qenv_add_rcpt(env, "b@example.com", NULL);
}

static void
test_roundtrip(struct queue *q)
{
	struct bm_err e = { 0 };
	struct qenv env, back, *v = NULL;
	size_t n = 0;
	long long size = 0;
	char data[64];
	int fd = body_fd("XXbody line\r\n"), dfd = -1, lk = -1, lk2 = -1;

	make_env(&env);
	is_int(queue_enqueue(q, &env, "H: v\r\n\r\n", 8, fd, 2, 11, &e), 0,
	    "enqueue (%s)", e.msg);
	close(fd);
	is_int((long long)strlen(env.id), 19, "an id is assigned (%s)", env.id);
	is_int(env.size, 19, "size is head + body");
	is_int(count_files("new"), 1, "the envelope is in new/");
	is_int(count_files("data"), 1, "the data is in data/");
	is_int(count_files("tmp"), 0, "nothing left in tmp/");
	is_int(queue_data_open(q, env.id, &dfd, &size, &e), 0, "data opens");
	memset(data, 0, sizeof(data));
	ok(read(dfd, data, sizeof(data) - 1) == 19 &&
	    strcmp(data, "H: v\r\n\r\nbody line\r\n") == 0,
	    "the data is head + the body slice");
	close(dfd);

	is_int(queue_load(q, env.id, &back, &e), 0, "load");
	ok(back.state == Q_NEW && strcmp(back.sender, env.sender) == 0 &&
	    back.nrcpts == 2 && strcmp(back.rcpts[0].notify,
	    "SUCCESS,FAILURE") == 0 && back.rcpts[1].notify == NULL &&
	    strcmp(back.dsn_ret, "HDRS") == 0 && qenv_pending(&back) == 2,
	    "the envelope round-trips");

	back.rcpts[0].state = QR_SENT;
	back.rcpts[1].code = 451;
	snprintf(back.rcpts[1].enh, sizeof(back.rcpts[1].enh), "4.3.0");
	back.rcpts[1].reply = xstrdup("try \"later\"\n");
	back.attempts = 1;
	back.next_try = 12345;
	back.state = Q_DEFERRED;
	is_int(queue_update(q, &back, &e), 0, "update into deferred/");
	ok(count_files("new") == 0 && count_files("deferred") == 1,
	    "moved, not copied");
	qenv_free(&back);
	queue_load(q, env.id, &back, &e);
	ok(back.state == Q_DEFERRED && back.rcpts[0].state == QR_SENT &&
	    back.rcpts[1].code == 451 && strcmp(back.rcpts[1].enh, "4.3.0") == 0
	    && strcmp(back.rcpts[1].reply, "try \"later\"\n") == 0 &&
	    back.next_try == 12345 && qenv_pending(&back) == 1,
	    "per-recipient state survives");

	is_int(queue_list(q, &v, &n, &e), 0, "list");
	ok(n == 1 && strcmp(v[0].id, env.id) == 0, "list finds it");
	queue_list_free(v, n);

	is_int(queue_lock(q, env.id, &lk, &e), 0, "lock");
	if (fork() == 0) {
		struct queue *q2 = NULL;
		int l2 = -1;

		queue_open(queue_path(q), &q2, NULL);
		_exit(queue_lock(q2, env.id, &l2, NULL) == 1 ? 0 : 1);
	}
	{
		int st;

		wait(&st);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "another process finds the message locked");
	}
	queue_unlock(lk);
	is_int(queue_lock(q, env.id, &lk2, &e), 0, "unlocked, lockable again");
	queue_unlock(lk2);

	is_int(queue_remove(q, env.id, &e), 0, "remove");
	ok(count_files("deferred") == 0 && count_files("data") == 0,
	    "envelope and data gone");
	is_int(queue_load(q, env.id, &back, &e) == EX_NOINPUT, 1,
	    "a removed message is not found");
	is_int(queue_remove(q, "nosuchid", &e), EX_NOINPUT, "remove unknown");
	is_int(queue_load(q, "../../etc/passwd", &back, &e), EX_NOINPUT,
	    "ids with / are refused");
	qenv_free(&back);
	qenv_free(&env);
}

static void
test_full_disk(struct queue *q)
{
	struct bm_err e = { 0 };
	struct qenv env;
	struct rlimit rl = { 4096, 4096 }, old;
	char *big = xmalloc(20000);
	int fd, rc;

	memset(big, 'x', 19999);
	big[19999] = '\0';
	fd = body_fd(big);
	make_env(&env);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	setrlimit(RLIMIT_FSIZE, &rl);
	rc = queue_enqueue(q, &env, "H: v\r\n\r\n", 8, fd, 0, 19999, &e);
	setrlimit(RLIMIT_FSIZE, &old);
	is_int(rc, EX_CANTCREAT, "a file size limit: cannot create (%s)",
	    e.msg);
	ok(count_files("tmp") == 0 && count_files("data") == 0 &&
	    count_files("new") == 0, "a failed enqueue leaves nothing behind");
	close(fd);
	free(big);
	qenv_free(&env);
}

static void
test_slots(struct queue *q)
{
	struct bm_err e = { 0 };
	struct account a;
	int s1 = -1, s2 = -1, s3 = -1;

	memset(&a, 0, sizeof(a));
	a.name = "work";
	a.max_connections = 2;
	is_int(queue_slot_take(q, &a, &s1, &e), 0, "slot 1 of 2");
	is_int(queue_slot_take(q, &a, &s2, &e), 0, "slot 2 of 2");
	is_int(queue_slot_take(q, &a, &s3, &e), 1, "no third slot");
	queue_slot_release(s1);
	is_int(queue_slot_take(q, &a, &s3, &e), 0, "a released slot is free");
	queue_slot_release(s2);
	queue_slot_release(s3);
	a.max_connections = 0;
	ok(queue_slot_take(q, &a, &s1, &e) == 0 && s1 == -1,
	    "max_connections 0: no limit");
}

static void
test_backoff(void)
{
	static const struct { int attempts, throttled; long long lo, hi; } c[] = {
		{ 1, 0, 60, 66 }, { 2, 0, 120, 132 }, { 3, 0, 240, 264 },
		{ 7, 0, 3600, 3960 }, { 30, 0, 3600, 3960 },
		{ 1, 1, 900, 990 }, { 7, 1, 3600, 3960 },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		long long d = queue_backoff(c[i].attempts, c[i].throttled);

		ok(d >= c[i].lo && d <= c[i].hi, "backoff(%d, %d) = %lld",
		    c[i].attempts, c[i].throttled, d);
	}
}

static void
test_open_refusals(void)
{
	struct bm_err e = { 0 };
	struct queue *q = NULL;
	char *p = xasprintf("%s/open", root);

	mkdir(p, 0777);
	chmod(p, 0777);
	ok(queue_open(p, &q, &e) == EX_CANTCREAT && strstr(e.msg, "chmod 700"),
	    "a world-writable queue directory is refused: %s", e.msg);
	free(p);
	p = xasprintf("%s/file", root);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	is_int(queue_open(p, &q, &e), EX_CANTCREAT, "a file is not a queue: %s",
	    e.msg);
	free(p);
}

int
main(void)
{
	struct bm_err e = { 0 };
	struct queue *q = NULL;
	char *dir;

	if (mkdtemp(root) == NULL)
		return 1;
	dir = xasprintf("%s/q", root);
	is_int(queue_open(dir, &q, &e), 0, "open creates the queue (%s)", e.msg);
	test_roundtrip(q);
	test_full_disk(q);
	test_slots(q);
	test_backoff();
	test_open_refusals();
	queue_close(q);
	free(dir);
	{
		char *cmd[] = { "rm", "-rf", root, NULL };

		if (fork() == 0) {
			execvp("rm", cmd);
			_exit(1);
		}
		wait(NULL);
	}
	return done_testing();
}
