/*
 * fuzz_queue - the queue's envelope codec (queue.h): whatever
 * queue_env_parse accepts formats, and parses again to the same envelope
 * (and the same text); a refusal is EX_DATAERR with one line and leaves
 * nothing behind.  The input is also stored as server text (reply, last
 * error, Message-ID, enhanced code), which always writes and reads back
 * within QUEUE_TEXT_MAX, and as an address, which is stored exactly or
 * refused.
 */
#include "config.h"

#include <string.h>

#include "queue.h"
#include "tests/fuzz/fuzz.h"
#include "util.h"

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int
same_rcpt(const struct qrcpt *a, const struct qrcpt *b)
{
	return same_str(a->addr, b->addr) && same_str(a->notify, b->notify) &&
	    a->state == b->state && same_str(a->reply, b->reply) &&
	    a->code == b->code && strcmp(a->enh, b->enh) == 0;
}

static int
same_env(const struct qenv *a, const struct qenv *b)
{
	size_t i;

	if (strcmp(a->id, b->id) != 0 || !same_str(a->account, b->account) ||
	    !same_str(a->sender, b->sender) || !same_str(a->msgid, b->msgid) ||
	    a->created != b->created || a->next_try != b->next_try ||
	    a->attempts != b->attempts ||
	    !same_str(a->last_error, b->last_error) ||
	    !same_str(a->dsn_ret, b->dsn_ret) ||
	    !same_str(a->dsn_envid, b->dsn_envid) ||
	    a->eightbit != b->eightbit ||
	    a->error_mode_mail != b->error_mode_mail ||
	    a->is_bounce != b->is_bounce || a->warned != b->warned ||
	    a->size != b->size || strcmp(a->sha256, b->sha256) != 0 ||
	    a->nrcpts != b->nrcpts)
		return 0;
	for (i = 0; i < a->nrcpts; i++)
		if (!same_rcpt(&a->rcpts[i], &b->rcpts[i]))
			return 0;
	return 1;
}

static int
text_bounded(const char *s)
{
	return s == NULL || strlen(s) <= QUEUE_TEXT_MAX;
}

/* Format env, parse it, format again: the same envelope, the same text. */
static void
round_trip(const struct qenv *env)
{
	struct bm_err e = { 0 };
	struct qenv again;
	char *t1 = NULL, *t2 = NULL;
	size_t n1 = 0, n2 = 0, i;

	FUZZ_ASSERT(queue_env_format(env, &t1, &n1, &e) == 0);
	FUZZ_ASSERT(strlen(t1) == n1);
	FUZZ_ASSERT(queue_env_parse(t1, n1, &again, &e) == 0);
	FUZZ_ASSERT(same_env(env, &again));
	FUZZ_ASSERT(queue_env_format(&again, &t2, &n2, &e) == 0);
	FUZZ_ASSERT(n1 == n2 && memcmp(t1, t2, n1) == 0);
	FUZZ_ASSERT(text_bounded(again.msgid) &&
	    text_bounded(again.last_error));
	for (i = 0; i < again.nrcpts; i++)
		FUZZ_ASSERT(text_bounded(again.rcpts[i].reply));
	qenv_free(&again);
	free(t1);
	free(t2);
}

static void
parse_side(const uint8_t *data, size_t size)
{
	struct bm_err e = { 0 };
	struct qenv env;

	if (queue_env_parse((const char *)data, size, &env, &e) != 0) {
		FUZZ_ASSERT(e.code == EX_DATAERR && e.msg[0] != '\0' &&
		    strchr(e.msg, '\n') == NULL);
		FUZZ_ASSERT(env.rcpts == NULL && env.nrcpts == 0 &&
		    env.account == NULL && env.sender == NULL);
		return;
	}
	round_trip(&env);
	qenv_free(&env);
}

static int
ascii_within(const char *s, size_t max)
{
	const unsigned char *p;

	if (strlen(s) > max)
		return 0;
	for (p = (const unsigned char *)s; *p; p++)
		if (*p >= 0x80)
			return 0;
	return 1;
}

static void
write_side(const uint8_t *data, size_t size)
{
	struct bm_err e = { 0 };
	struct qenv env, back;
	char *s = fuzz_str(data, size), *text = NULL;
	size_t len = 0;
	int rc;

	memset(&env, 0, sizeof(env));
	snprintf(env.id, sizeof(env.id), "FUZZ0000000000000");
	env.account = xstrdup("work");
	env.sender = xstrdup("alice@example.com");
	env.msgid = xstrdup(s);
	env.last_error = xstrdup(s);
	qenv_add_rcpt(&env, "bob@example.com", NULL);
	env.rcpts[0].reply = xstrdup(s);
	snprintf(env.rcpts[0].enh, sizeof(env.rcpts[0].enh), "%s", s);
	/* server text is never refused, and ASCII within the bound is kept
	 * as it is */
	FUZZ_ASSERT(queue_env_format(&env, &text, &len, &e) == 0);
	FUZZ_ASSERT(queue_env_parse(text, len, &back, &e) == 0);
	FUZZ_ASSERT(!ascii_within(s, QUEUE_TEXT_MAX) ||
	    strcmp(back.rcpts[0].reply, s) == 0);
	round_trip(&back);
	qenv_free(&back);
	free(text);
	/* an address is stored exactly, or refused */
	free(env.rcpts[0].addr);
	env.rcpts[0].addr = xstrdup(s);
	rc = queue_env_format(&env, &text, &len, &e);
	FUZZ_ASSERT(rc == 0 || rc == EX_DATAERR);
	if (rc == 0) {
		FUZZ_ASSERT(queue_env_parse(text, len, &back, &e) == 0);
		FUZZ_ASSERT(strcmp(back.rcpts[0].addr, s) == 0);
		qenv_free(&back);
	}
	free(text);
	qenv_free(&env);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_side(data, size);
	write_side(data, size);
	return 0;
}
