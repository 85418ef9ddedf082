/*
 * Unit tests for queue: the on-disk queue's promises.  Also tables of
 * hostile envelopes (control characters, invalid UTF-8, huge replies,
 * wire fields that break a bound) through the codec and the files, the
 * bounds (100,000 recipients with long replies), damaged envelopes and
 * data files moved to corrupt/, and envelopes written before checksums.
 */
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

#include "dsn.h"
#include "log.h"
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

/* ------------------------------------------------- hostile envelopes */

static char *
pad_str(size_t pad, const char *tail)
{
	size_t n = strlen(tail);
	char *s = xmalloc(pad + n + 1);

	memset(s, 'a', pad);
	memcpy(s + pad, tail, n + 1);
	return s;
}

/* The string member of env called field (enh: the array). */
static char **
field_of(struct qenv *env, const char *f)
{
	return strcmp(f, "reply") == 0 ? &env->rcpts[0].reply :
	    strcmp(f, "last_error") == 0 ? &env->last_error :
	    strcmp(f, "msgid") == 0 ? &env->msgid :
	    strcmp(f, "addr") == 0 ? &env->rcpts[0].addr :
	    strcmp(f, "notify") == 0 ? &env->rcpts[0].notify :
	    strcmp(f, "sender") == 0 ? &env->sender :
	    strcmp(f, "account") == 0 ? &env->account :
	    strcmp(f, "envid") == 0 ? &env->dsn_envid : NULL;
}

static void
set_field(struct qenv *env, const char *f, char *v)
{
	char **p = field_of(env, f);

	if (p == NULL) {
		snprintf(env->rcpts[0].enh, sizeof(env->rcpts[0].enh), "%s", v);
		free(v);
		return;
	}
	free(*p);
	*p = v;
}

static const char *
get_field(struct qenv *env, const char *f)
{
	char **p = field_of(env, f);

	return p ? *p : env->rcpts[0].enh;
}

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int
same_env(const struct qenv *a, const struct qenv *b)
{
	size_t i;
	int same = strcmp(a->id, b->id) == 0 &&
	    same_str(a->account, b->account) && same_str(a->sender, b->sender) &&
	    same_str(a->msgid, b->msgid) && a->created == b->created &&
	    a->next_try == b->next_try && a->attempts == b->attempts &&
	    same_str(a->last_error, b->last_error) &&
	    same_str(a->dsn_ret, b->dsn_ret) &&
	    same_str(a->dsn_envid, b->dsn_envid) && a->eightbit == b->eightbit &&
	    a->error_mode_mail == b->error_mode_mail &&
	    a->is_bounce == b->is_bounce && a->warned == b->warned &&
	    a->size == b->size && strcmp(a->sha256, b->sha256) == 0 &&
	    a->nrcpts == b->nrcpts;

	for (i = 0; same && i < a->nrcpts; i++) {
		const struct qrcpt *x = &a->rcpts[i], *y = &b->rcpts[i];

		same = same_str(x->addr, y->addr) &&
		    same_str(x->notify, y->notify) && x->state == y->state &&
		    same_str(x->reply, y->reply) && x->code == y->code &&
		    strcmp(x->enh, y->enh) == 0;
	}
	return same;
}

/* env (as parsed) formats to text; that parses to the same envelope and
 * formats to the same text. */
static int
reformats(const struct qenv *env, const char *text, size_t len)
{
	struct bm_err e = { 0 };
	struct qenv back;
	char *again = NULL;
	size_t n = 0;
	int same;

	if (queue_env_parse(text, len, &back, &e) != 0)
		return 0;
	same = same_env(env, &back) &&
	    queue_env_format(&back, &again, &n, &e) == 0 && n == len &&
	    memcmp(again, text, len) == 0;
	free(again);
	qenv_free(&back);
	return same;
}

static void
test_codec(void)
{
	static const struct {
		const char *name, *field;
		size_t pad;
		const char *value;
		int rc;
		size_t want_pad;
		const char *want;      /* NULL: as written */
	} c[] = {
		{ "control characters in a reply", "reply", 0,
		  "a\x01\tb\r\n\x1b[31m\x7f\x1f", 0, 0, NULL },
		{ "JSON syntax in a reply", "reply", 0,
		  "\"}],\\u0000\\/{", 0, 0, NULL },
		{ "invalid UTF-8 in a reply", "reply", 0, "bad\xff\xfeok", 0, 0,
		  "bad??ok" },
		{ "a cut UTF-8 sequence", "reply", 0, "x\xe2\x82", 0, 0,
		  "x??" },
		{ "an overlong form", "reply", 0, "\xc0\xafz", 0, 0, "??z" },
		{ "a surrogate", "reply", 0, "\xed\xa0\x80", 0, 0, "???" },
		{ "above U+10FFFF", "reply", 0, "\xf4\x90\x80\x80", 0, 0,
		  "????" },
		{ "valid UTF-8", "reply", 0, "\xc3\xa9\xe2\x82\xac"
		  "\xf0\x9f\x98\x80", 0, 0, NULL },
		{ "a 4.5 MB reply", "reply", 4500000, "", 0, QUEUE_TEXT_MAX,
		  "" },
		{ "cut before a 2-octet character", "reply", QUEUE_TEXT_MAX - 1,
		  "\xc3\xa9zz", 0, QUEUE_TEXT_MAX - 1, "" },
		{ "cut before a 3-octet character", "reply", QUEUE_TEXT_MAX - 2,
		  "\xe2\x82\xac", 0, QUEUE_TEXT_MAX - 2, "" },
		{ "a reply of exactly the bound", "reply", QUEUE_TEXT_MAX, "", 0,
		  0, NULL },
		{ "a 4.5 MB last error", "last_error", 4500000, "\n", 0,
		  QUEUE_TEXT_MAX, "" },
		{ "control characters in the last error", "last_error", 0,
		  "one\ntwo\r\n\x01", 0, 0, NULL },
		{ "invalid UTF-8 in the Message-ID", "msgid", 0, "<\xff@x>", 0,
		  0, "<?@x>" },
		{ "a 2000-octet Message-ID", "msgid", 2000, "", 0,
		  QUEUE_TEXT_MAX, "" },
		{ "invalid UTF-8 in the enhanced code", "enh", 0, "4.\xff.0", 0,
		  0, "4.?.0" },
		{ "a UTF-8 address", "addr", 0, "j\xc3\xb6rg@example.com", 0, 0,
		  NULL },
		{ "an address of exactly the bound", "addr", QUEUE_FIELD_MAX - 12,
		  "@example.com", 0, 0, NULL },
		{ "the null sender", "sender", 0, "", 0, 0, NULL },
		{ "an address over the bound", "addr", QUEUE_FIELD_MAX - 11,
		  "@example.com", EX_DATAERR, 0, NULL },
		{ "CR LF in an address", "addr", 0, "a@b\r\nRSET", EX_DATAERR, 0,
		  NULL },
		{ "invalid UTF-8 in an address", "addr", 0, "j\xf6rg@example.com",
		  EX_DATAERR, 0, NULL },
		{ "a tab in NOTIFY", "notify", 0, "SUCCESS\t", EX_DATAERR, 0,
		  NULL },
		{ "DEL in the sender", "sender", 0, "a\x7f@b", EX_DATAERR, 0,
		  NULL },
		{ "a control character in the account", "account", 0, "w\x1b",
		  EX_DATAERR, 0, NULL },
		{ "an ENVID over the bound", "envid", QUEUE_FIELD_MAX + 1, "",
		  EX_DATAERR, 0, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct bm_err e = { 0 };
		struct qenv env, back;
		char *text = NULL, *want;
		size_t len = 0;
		int rc;

		make_env(&env);
		snprintf(env.id, sizeof(env.id), "0123456789ABCDEF0");
		set_field(&env, c[i].field, pad_str(c[i].pad, c[i].value));
		want = c[i].want ? pad_str(c[i].want_pad, c[i].want) :
		    pad_str(c[i].pad, c[i].value);
		rc = queue_env_format(&env, &text, &len, &e);
		is_int(rc, c[i].rc, "%s: formats %s", c[i].name,
		    c[i].rc ? "refused" : "");
		if (rc != 0) {
			ok(strstr(e.msg, "cannot be stored") != NULL,
			    "%s: says why (%.100s)", c[i].name, e.msg);
		} else if (is_int(queue_env_parse(text, len, &back, &e), 0,
		    "%s: reads back (%s)", c[i].name, e.msg)) {
			ok(strcmp(get_field(&back, c[i].field), want) == 0,
			    "%s: reads back as expected", c[i].name);
			ok(reformats(&back, text, len), "%s: parse, format, "
			    "parse gives the same envelope", c[i].name);
			qenv_free(&back);
		}
		free(text);
		free(want);
		qenv_free(&env);
	}
}

#define ENV_HEAD "{\"id\":\"ABC123\",\"account\":\"work\"," \
	"\"sender\":\"a@example.com\","
#define RCPT_OK "{\"addr\":\"b@example.com\",\"state\":\"pending\"}"
#define RCPTS_OK "\"rcpts\":[" RCPT_OK "]}"
#define RCPT_WITH(m) "\"rcpts\":[{\"addr\":\"b@example.com\"," \
	"\"state\":\"pending\"," m "}]}"

static void
test_parse(void)
{
	static const struct {
		const char *name, *json;
		const char *refused;    /* in the error; NULL: accepted */
	} c[] = {
		{ "minimal", ENV_HEAD RCPTS_OK, NULL },
		{ "as written before checksums (nulls, no sha256)",
		  "{\n  \"id\":\"6B0B3EDF00E5368A02B\",\n  \"account\":\"work\",\n"
		  "  \"sender\":\"alice@example.com\",\n  \"msgid\":null,\n"
		  "  \"created\":1700000000,\n  \"next_try\":0,\n  \"attempts\":1,"
		  "\n  \"last_error\":\"451 4.4.0 busy\",\n  \"dsn_ret\":null,\n"
		  "  \"dsn_envid\":null,\n  \"eightbit\":0,\n"
		  "  \"error_mode_mail\":0,\n  \"is_bounce\":0,\n  \"warned\":0,"
		  "\n  \"size\":164,\n  \"rcpts\":[\n    {\n"
		  "      \"addr\":\"bob@example.com\",\n      \"notify\":null,\n"
		  "      \"state\":\"sent\",\n      \"reply\":null,\n"
		  "      \"code\":250,\n      \"enh\":\"2.0.0\"\n    }\n  ]\n}\n",
		  NULL },
		{ "no recipients", ENV_HEAD "\"rcpts\":[]}", NULL },
		{ "an unknown member", ENV_HEAD "\"later\":[1,{}]," RCPTS_OK, NULL },
		{ "whitespace after", ENV_HEAD RCPTS_OK " \r\n\t", NULL },
		{ "raw invalid UTF-8 in a reply",
		  ENV_HEAD RCPT_WITH("\"reply\":\"x\xff\""), NULL },
		{ "a lone surrogate escape in a reply",
		  ENV_HEAD RCPT_WITH("\"reply\":\"\\ud800\""), NULL },
		{ "a valid sha256", ENV_HEAD "\"sha256\":\"" "0123456789abcdef"
		  "0123456789abcdef0123456789abcdef0123456789abcdef\"," RCPTS_OK,
		  NULL },
		{ "empty", "", "not a JSON object" },
		{ "truncated", ENV_HEAD "\"rcpts\":[{\"addr\":\"b@exa",
		  "not a JSON object" },
		{ "cut after the object's last member", ENV_HEAD RCPTS_OK "x",
		  "not a JSON object" },
		{ "two objects", ENV_HEAD RCPTS_OK "{}", "not a JSON object" },
		{ "a NUL after the object", ENV_HEAD RCPTS_OK "\0",
		  "not a JSON object" },
		{ "an array", "[" ENV_HEAD RCPTS_OK "]", "not a JSON object" },
		{ "too deep", ENV_HEAD "\"x\":[[[[[[[[[[[[]]]]]]]]]]]]," RCPTS_OK,
		  "not a JSON object" },
		{ "id a number", "{\"id\":5,\"account\":\"w\",\"sender\":\"\","
		  RCPTS_OK, "\"id\"" },
		{ "id that walks out", "{\"id\":\"../../etc/passwd\","
		  "\"account\":\"w\",\"sender\":\"\"," RCPTS_OK, "\"id\"" },
		{ "id too long", "{\"id\":\"0123456789012345678901234567890123\","
		  "\"account\":\"w\",\"sender\":\"\"," RCPTS_OK, "\"id\"" },
		{ "no account", "{\"id\":\"A\",\"sender\":\"\"," RCPTS_OK,
		  "\"account\"" },
		{ "sender null", "{\"id\":\"A\",\"account\":\"w\",\"sender\":null,"
		  RCPTS_OK, "\"sender\"" },
		{ "no rcpts", ENV_HEAD "\"size\":1}", "\"rcpts\"" },
		{ "rcpts a string", ENV_HEAD "\"rcpts\":\"b@example.com\"}",
		  "\"rcpts\"" },
		{ "a recipient that is not an object", ENV_HEAD "\"rcpts\":["
		  RCPT_OK ",\"c@example.com\"]}", "recipient 2: it is not" },
		{ "a recipient without addr", ENV_HEAD "\"rcpts\":[{\"state\":"
		  "\"sent\"}]}", "recipient 1: member \"addr\"" },
		{ "an unknown state", ENV_HEAD "\"rcpts\":[{\"addr\":\"b@x\","
		  "\"state\":\"lost\"}]}", "\"state\"" },
		{ "no state", ENV_HEAD "\"rcpts\":[{\"addr\":\"b@x\"}]}",
		  "\"state\"" },
		{ "code out of range", ENV_HEAD RCPT_WITH("\"code\":1000"),
		  "\"code\"" },
		{ "code a string", ENV_HEAD RCPT_WITH("\"code\":\"250\""),
		  "\"code\"" },
		{ "reply a number", ENV_HEAD RCPT_WITH("\"reply\":250"),
		  "\"reply\"" },
		{ "a NUL in a reply", ENV_HEAD RCPT_WITH("\"reply\":\"a\\u0000b\""),
		  "\"reply\"" },
		{ "a NUL in an address", ENV_HEAD "\"rcpts\":[{\"addr\":"
		  "\"b@x\\u0000.evil\",\"state\":\"pending\"}]}", "\"addr\"" },
		{ "an escaped CR in an address", ENV_HEAD "\"rcpts\":[{\"addr\":"
		  "\"b@x\\r\\nRSET\",\"state\":\"pending\"}]}", "\"addr\"" },
		{ "raw invalid UTF-8 in an address", ENV_HEAD "\"rcpts\":[{\"addr\":"
		  "\"j\xf6rg@x\",\"state\":\"pending\"}]}", "\"addr\"" },
		{ "attempts negative", ENV_HEAD "\"attempts\":-1," RCPTS_OK,
		  "\"attempts\"" },
		{ "attempts a float", ENV_HEAD "\"attempts\":1.5," RCPTS_OK,
		  "\"attempts\"" },
		{ "attempts a string", ENV_HEAD "\"attempts\":\"3\"," RCPTS_OK,
		  "\"attempts\"" },
		{ "eightbit 2", ENV_HEAD "\"eightbit\":2," RCPTS_OK, "\"eightbit\"" },
		{ "created a string", ENV_HEAD "\"created\":\"now\"," RCPTS_OK,
		  "\"created\"" },
		{ "size negative", ENV_HEAD "\"size\":-5," RCPTS_OK, "\"size\"" },
		{ "sha256 too short", ENV_HEAD "\"sha256\":\"abc\"," RCPTS_OK,
		  "\"sha256\"" },
		{ "sha256 in capitals", ENV_HEAD "\"sha256\":\"" "0123456789ABCDEF"
		  "0123456789abcdef0123456789abcdef0123456789abcdef\"," RCPTS_OK,
		  "\"sha256\"" },
		{ "sha256 a number", ENV_HEAD "\"sha256\":1," RCPTS_OK,
		  "\"sha256\"" },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct bm_err e = { 0 };
		struct qenv env;
		char *text = NULL;
		size_t len = strlen(c[i].json) + (strstr(c[i].name, "NUL after")
		    ? 1 : 0), n = 0;
		int rc = queue_env_parse(c[i].json, len, &env, &e);

		if (c[i].refused != NULL) {
			ok(rc == EX_DATAERR && strstr(e.msg, c[i].refused),
			    "%s: refused, naming %s (%s)", c[i].name,
			    c[i].refused, rc ? e.msg : "accepted");
			continue;
		}
		if (!is_int(rc, 0, "%s: accepted (%s)", c[i].name, e.msg))
			continue;
		ok(queue_env_format(&env, &text, &n, &e) == 0 &&
		    reformats(&env, text, n), "%s: formats, and parses back to "
		    "the same envelope", c[i].name);
		free(text);
		qenv_free(&env);
	}
}

/* ------------------------------------------------------------- files */

static char *
slurp(const char *path, size_t *len)
{
	char *text = NULL;

	if (read_small_file(path, (size_t)1 << 31, &text, NULL) != 0)
		return NULL;
	if (len)
		*len = strlen(text);
	return text;
}

static void
spew(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		ok(0, "cannot write %s", path);
	if (fd >= 0)
		close(fd);
}

static int
exists(const char *sub, const char *id, const char *suffix)
{
	char *p = xasprintf("%s/q/%s/%s%s", root, sub, id, suffix);
	struct stat st;
	int rc = lstat(p, &st) == 0;

	free(p);
	return rc;
}

static void
empty_dir(const char *sub)
{
	char *p = xasprintf("%s/q/%s", root, sub);
	DIR *d = opendir(p);
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL) {
		char *f = xasprintf("%s/%s", p, de->d_name);

		if (de->d_name[0] != '.' && unlink(f) != 0)
			rmdir(f);
		free(f);
	}
	if (d)
		closedir(d);
	free(p);
}

static void
empty_queue(void)
{
	static const char *const subs[] = { "new", "deferred", "hold", "data",
		"corrupt", "locks", "tmp" };
	size_t i;

	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		empty_dir(subs[i]);
}

static int
enqueue_text(struct queue *q, struct qenv *env, const char *text)
{
	struct bm_err e = { 0 };

	make_env(env);
	return queue_enqueue(q, env, text, strlen(text), -1, 0, 0, &e);
}

static char *
log_text(void)
{
	char *p = xasprintf("%s/log", root), *t = slurp(p, NULL);

	free(p);
	return t ? t : xstrdup("");
}

/* A huge reply and last error: enqueued, updated, listed, cut. */
static void
test_huge(struct queue *q)
{
	struct bm_err e = { 0 };
	struct qenv env, *v = NULL;
	size_t n = 0;

	make_env(&env);
	env.last_error = pad_str(4500000, "");
	env.rcpts[0].reply = pad_str(4500000, "\x01\xff");
	env.attempts = 1;
	is_int(queue_enqueue(q, &env, "H: v\r\n\r\n", 8, -1, 0, 0, &e), 0,
	    "a 4.5 MB reason and reply: queued (%s)", e.msg);
	queue_list(q, &v, &n, &e);
	ok(n == 1 && strlen(v[0].last_error) == QUEUE_TEXT_MAX &&
	    strlen(v[0].rcpts[0].reply) == QUEUE_TEXT_MAX,
	    "the message is listed, its reason and reply cut to %d octets",
	    QUEUE_TEXT_MAX);
	queue_list_free(v, n);
	free(env.rcpts[1].reply);
	env.rcpts[1].reply = pad_str(6000000, "\r\n");
	is_int(queue_update(q, &env, &e), 0, "updated with a 6 MB reply (%s)",
	    e.msg);
	queue_list(q, &v, &n, &e);
	ok(n == 1 && strlen(v[0].rcpts[1].reply) == QUEUE_TEXT_MAX,
	    "still listed after the update");
	queue_list_free(v, n);
	is_int(count_files("corrupt"), 0, "nothing was moved aside");
	queue_remove(q, env.id, &e);
	qenv_free(&env);
}

/* 100,000 recipients, most deferred with long replies. */
static void
test_many(struct queue *q)
{
	struct bm_err e = { 0 };
	struct qenv env, back;
	size_t i, sent = 0;

	memset(&env, 0, sizeof(env));
	env.account = xstrdup("work");
	env.sender = xstrdup("alice@example.com");
	for (i = 0; i < QUEUE_RCPTS_MAX; i++) {
		char *a = xasprintf("recipient-%06zu@example.com", i);

		qenv_add_rcpt(&env, a, "SUCCESS,FAILURE,DELAY");
		free(a);
	}
	is_int(queue_enqueue(q, &env, "H: v\r\n\r\n", 8, -1, 0, 0, &e), 0,
	    "%d recipients: queued (%s)", QUEUE_RCPTS_MAX, e.msg);
	for (i = 0; i < env.nrcpts; i++) {
		struct qrcpt *r = &env.rcpts[i];

		r->state = i % 10 == 0 ? QR_SENT : QR_PENDING;
		sent += r->state == QR_SENT;
		r->code = 451;
		snprintf(r->enh, sizeof(r->enh), "4.4.0");
		r->reply = pad_str(1500, "\"\\\x01");
	}
	env.state = Q_DEFERRED;
	env.attempts = 1;
	is_int(queue_update(q, &env, &e), 0, "each recipient's 1500-octet "
	    "reply recorded (%s)", e.msg);
	is_int(queue_load(q, env.id, &back, &e), 0, "and it reads back (%s)",
	    e.msg);
	ok(back.nrcpts == QUEUE_RCPTS_MAX && qenv_pending(&back) ==
	    QUEUE_RCPTS_MAX - sent && strlen(back.rcpts[QUEUE_RCPTS_MAX - 1].
	    reply) == QUEUE_TEXT_MAX && strcmp(back.rcpts[12345].addr,
	    "recipient-012345@example.com") == 0, "every recipient and its "
	    "state survive");
	qenv_free(&back);
	queue_remove(q, env.id, &e);
	qenv_add_rcpt(&env, "one-too-many@example.com", NULL);
	ok(queue_enqueue(q, &env, "H: v\r\n\r\n", 8, -1, 0, 0, &e) ==
	    EX_DATAERR && strstr(e.msg, "at most 100000"), "%d recipients: "
	    "refused (%s)", QUEUE_RCPTS_MAX + 1, e.msg);
	ok(count_files("tmp") == 0 && count_files("data") == 0 &&
	    count_files("new") == 0 && count_files("deferred") == 0,
	    "and nothing is left behind");
	qenv_free(&env);
}

enum damage { D_TEXT, D_CUT, D_EMPTY, D_SYMLINK, D_FIFO, D_DIR, D_SPARSE,
	D_OTHER_ID };

/* Damage the envelope of id in new/ as c says. */
static void
damage_env(const char *id, enum damage how, const char *text)
{
	char *p = xasprintf("%s/q/new/%s.env", root, id), *t;
	size_t len = 0;
	int fd;

	if (how == D_CUT || how == D_OTHER_ID) {
		t = slurp(p, &len);
		if (how == D_OTHER_ID)
			memcpy(strstr(t, id), "0000000000000000000", 19);
		spew(p, t, how == D_CUT ? len / 2 : len);
		free(t);
	}
	if (how == D_TEXT || how == D_EMPTY)
		spew(p, text, strlen(text));
	if (how == D_SYMLINK || how == D_FIFO || how == D_DIR ||
	    how == D_SPARSE)
		unlink(p);
	if (how == D_SYMLINK && symlink("/etc/passwd", p) != 0)
		ok(0, "symlink");
	if (how == D_FIFO && mkfifo(p, 0600) != 0)
		ok(0, "mkfifo");
	if (how == D_DIR && mkdir(p, 0700) != 0)
		ok(0, "mkdir");
	if (how == D_SPARSE && ((fd = open(p, O_WRONLY | O_CREAT, 0600)) < 0 ||
	    ftruncate(fd, (off_t)1 << 31) != 0 || close(fd) != 0))
		ok(0, "sparse file");
	free(p);
}

static void
test_damaged_envelopes(struct queue *q)
{
	static const struct {
		const char *name;
		enum damage how;
		const char *text, *why;
	} c[] = {
		{ "not JSON", D_TEXT, "garbage\n", "not a JSON object" },
		{ "truncated", D_CUT, NULL, "not a JSON object" },
		{ "empty", D_EMPTY, "", "not a JSON object" },
		{ "rcpts of the wrong type", D_TEXT, "{\"id\":\"%s\",\"account\":"
		  "\"w\",\"sender\":\"\",\"rcpts\":{}}", "\"rcpts\"" },
		{ "attempts of the wrong type", D_TEXT, "{\"id\":\"%s\","
		  "\"account\":\"w\",\"sender\":\"\",\"attempts\":\"2\","
		  "\"rcpts\":[]}", "\"attempts\"" },
		{ "another message's id", D_OTHER_ID, NULL, "not its file name" },
		{ "a symbolic link", D_SYMLINK, NULL, "a symbolic link" },
		{ "a FIFO", D_FIFO, NULL, "not a regular file" },
		{ "a directory", D_DIR, NULL, "not a regular file" },
		{ "a 2 GiB file", D_SPARSE, NULL, "larger than any envelope" },
	};
	struct bm_err e = { 0 };
	size_t i, j;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct qenv a, b, x, *v = NULL;
		struct qdamaged *d = NULL;
		size_t n = 0, nd = 0, before = queue_quarantined(q);
		char *text, *log;

		enqueue_text(q, &a, "Subject: a\r\n\r\n");
		enqueue_text(q, &x, "Subject: damaged\r\n\r\n");
		enqueue_text(q, &b, "Subject: b\r\n\r\n");
		text = c[i].text ? xasprintf(c[i].text, x.id) : NULL;
		damage_env(x.id, c[i].how, text);
		queue_list(q, &v, &n, &e);
		ok(n == 2 && strcmp(v[0].id, x.id) != 0 &&
		    strcmp(v[1].id, x.id) != 0, "%s: the other two are listed",
		    c[i].name);
		ok(!exists("new", x.id, ".env") && exists("corrupt", x.id,
		    ".env") && exists("corrupt", x.id, ".msg") &&
		    !exists("data", x.id, ".msg"), "%s: envelope and data moved "
		    "to corrupt/", c[i].name);
		queue_corrupt_list(q, &d, &nd, &e);
		ok(nd == 1 && strcmp(d[0].id, x.id) == 0 && d[0].size == 20,
		    "%s: queue_corrupt_list names it, with its size", c[i].name);
		is_int((long long)(queue_quarantined(q) - before), 1,
		    "%s: counted once", c[i].name);
		log = log_text();
		ok(strstr(log, x.id) && strstr(log, c[i].why) &&
		    strstr(log, "/corrupt/") && strstr(log, "send the message "
		    "again by hand"), "%s: the log names the message, why, "
		    "where and what to do", c[i].name);
		for (j = 0; j < n; j++)
			queue_remove(q, v[j].id, &e);
		queue_list_free(v, n);
		queue_corrupt_free(d, nd);
		free(log);
		free(text);
		qenv_free(&a);
		qenv_free(&b);
		qenv_free(&x);
		empty_queue();
	}
}

enum ddamage { X_NONE, X_CUT, X_FLIP, X_GROW, X_MISSING, X_SYMLINK };

static void
damage_data(const char *id, enum ddamage how)
{
	char *p = xasprintf("%s/q/data/%s.msg", root, id), *t;
	size_t len = 0;

	t = slurp(p, &len);
	if (how == X_CUT)
		spew(p, t, len - 10);
	if (how == X_FLIP) {
		t[len - 3] ^= 0x20;
		spew(p, t, len);
	}
	if (how == X_GROW) {
		spew(p, t, len);
		t[0] = '\n';
		spew(p, t, len);   /* same size; then one byte more */
		truncate(p, (off_t)len + 1);
	}
	if (how == X_MISSING || how == X_SYMLINK)
		unlink(p);
	if (how == X_SYMLINK && symlink("/etc/passwd", p) != 0)
		ok(0, "symlink");
	free(t);
	free(p);
}

/* The envelope of id as bearmail wrote it before checksums. */
static void
make_old(const char *id)
{
	char *p = xasprintf("%s/q/new/%s.env", root, id), *t, *s, *nl;
	size_t len = 0;

	t = slurp(p, &len);
	if ((s = strstr(t, "\n  \"sha256\"")) != NULL &&
	    (nl = strchr(s + 1, '\n')) != NULL)
		memmove(s, nl, strlen(nl) + 1);
	spew(p, t, strlen(t));
	free(t);
	free(p);
}

static void
test_damaged_data(struct queue *q)
{
	static const struct {
		const char *name;
		int old;
		enum ddamage how;
		int rc;
		const char *why;
	} c[] = {
		{ "intact", 0, X_NONE, 0, NULL },
		{ "truncated", 0, X_CUT, EX_DATAERR, "27 bytes, expected 37)" },
		{ "one byte changed", 0, X_FLIP, EX_DATAERR,
		  "37 bytes as expected, but not the SHA-256" },
		{ "one byte longer", 0, X_GROW, EX_DATAERR,
		  "38 bytes, expected 37)" },
		{ "missing", 0, X_MISSING, EX_DATAERR, "missing)" },
		{ "a symbolic link", 0, X_SYMLINK, EX_DATAERR, "a symbolic link)" },
		{ "queued before checksums, intact", 1, X_NONE, 0, NULL },
		{ "queued before checksums, truncated", 1, X_CUT, EX_DATAERR,
		  "27 bytes, expected 37)" },
		{ "queued before checksums, a byte changed (the size is all "
		  "there is)", 1, X_FLIP, 0, NULL },
	};
	const char *msg = "Subject: data\r\n\r\nline one\r\nline two\r\n";
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct bm_err e = { 0 };
		struct qenv env, back;
		long long size = -1;
		char want[256];
		int fd = -1, rc;

		enqueue_text(q, &env, msg);
		if (i == 0)
			ok(strlen(env.sha256) == 64, "the envelope records a "
			    "SHA-256 (%s)", env.sha256);
		if (c[i].old)
			make_old(env.id);
		damage_data(env.id, c[i].how);
		rc = queue_data_open(q, env.id, &fd, &size, &e);
		is_int(rc, c[i].rc, "%s: queue_data_open %s (%s)", c[i].name,
		    rc ? "refuses" : "opens", e.msg);
		if (rc == 0) {
			char data[64] = "";

			ok(size == 37 && read(fd, data, sizeof(data)) == 37,
			    "%s: the whole message is read", c[i].name);
			close(fd);
		} else {
			snprintf(want, sizeof(want), "data file of message %s is "
			    "damaged (%s", env.id, c[i].why);
			ok(strstr(e.msg, want) != NULL && strstr(e.msg,
			    "corrupt/"), "%s: says so: %s", c[i].name, e.msg);
			ok(fd == -1 && !exists("new", env.id, ".env") &&
			    exists("corrupt", env.id, ".env") &&
			    (c[i].how == X_MISSING) != exists("corrupt", env.id,
			    ".msg"), "%s: the message is moved to corrupt/",
			    c[i].name);
			is_int(queue_load(q, env.id, &back, &e), EX_NOINPUT,
			    "%s: it is no longer in the queue", c[i].name);
			env.attempts = 1;
			ok(queue_update(q, &env, &e) == EX_NOINPUT &&
			    count_files("new") + count_files("deferred") == 0,
			    "%s: an update does not bring it back (%s)",
			    c[i].name, e.msg);
			ok(strstr(log_text(), env.id) != NULL, "%s: logged",
			    c[i].name);
		}
		qenv_free(&env);
		empty_queue();
	}
}

/* A bounce is queued with a checksum too (dsn.c goes through enqueue). */
static void
test_bounce_checksum(struct queue *q)
{
	struct bm_err e = { 0 };
	struct account a;
	struct qenv env, *v = NULL;
	long long size = 0;
	size_t n = 0;
	int fd = -1;

	memset(&a, 0, sizeof(a));
	a.name = "work";
	a.user = "alice@example.com";
	make_env(&env);
	env.rcpts[1].state = QR_FAILED;
	env.rcpts[1].code = 550;
	env.rcpts[1].reply = xstrdup("550 5.1.1 User unknown");
	is_int(dsn_enqueue_bounce(q, &a, &env, NULL, "Subject: x\r\n", 12, 0,
	    &e), 0,
	    "a bounce is queued (%s)", e.msg);
	queue_list(q, &v, &n, &e);
	ok(n == 1 && v[0].is_bounce && strlen(v[0].sha256) == 64,
	    "its envelope records a SHA-256");
	ok(n == 1 && queue_data_open(q, v[0].id, &fd, &size, &e) == 0 &&
	    size == v[0].size, "and its data checks out (%s)", e.msg);
	if (fd >= 0)
		close(fd);
	queue_list_free(v, n);
	qenv_free(&env);
	empty_queue();
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
	/* the soft limit only: a lowered hard one could not be raised back,
	 * and stdout may be a file */
	rl.rlim_max = old.rlim_max;
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
	test_codec();
	test_parse();
	{
		struct account la;

		memset(&la, 0, sizeof(la));
		la.log = LOG_TO_FILE;
		la.log_file = xasprintf("%s/log", root);
		log_setup(&la);
		free(la.log_file);
	}
	test_huge(q);
	test_many(q);
	test_damaged_envelopes(q);
	test_damaged_data(q);
	test_bounce_checksum(q);
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
