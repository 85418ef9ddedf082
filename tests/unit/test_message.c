/*
 * test_message - the spool and header rewriting: each case is written
 * through a pipe, spooled, completed, and the serialized header and the
 * spooled body are compared byte for byte.  Plus the -t recipients, the
 * limits, and a 30 MB body streamed by a child process.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "message.h"
#include "mime.h"
#include "tests/unit/tap.h"

#define NOW ((time_t)1700000000)
#define DATE "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
#define MSGID "Message-ID: <R.1700000000@host.example>\r\n"
#define KEEP_IDS "Date: x\r\nMessage-ID: <m@x>\r\n"
#define X10 "xxxxxxxxxx"
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
#define X1000 X100 X100 X100 X100 X100 X100 X100 X100 X100 X100
#define X998 X100 X100 X100 X100 X100 X100 X100 X100 X100 \
	X10 X10 X10 X10 X10 X10 X10 X10 X10 "xxxxxxxx"
#define QPL X10 X10 X10 X10 X10 X10 X10 "xxxxx=\r\n"	/* 75 + soft break */
#define QP1000 QPL QPL QPL QPL QPL QPL QPL QPL QPL QPL QPL QPL QPL \
	X10 X10 "xxxxx"
#define QPHEAD "MIME-Version: 1.0\r\nContent-Type: text/plain; " \
	"charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n"

static char spool_dir[] = "/tmp/bm-test-spool-XXXXXX";

/* The test account may send as anything at contoso.com. */
static int
allowed(const void *ctx, const char *addr)
{
	const char *suffix = ctx;
	size_t n = strlen(addr), s = strlen(suffix);

	return n > s && strcasecmp(addr + n - s, suffix) == 0;
}

/* Feed data through a pipe from a child, then spool it. */
static int
spool_bytes(const char *data, size_t len, int ignore_dots, struct message *m,
    struct bm_err *e)
{
	int fds[2], r, status;
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	if ((pid = fork()) == 0) {
		close(fds[0]);
		_exit(write(fds[1], data, len) == (ssize_t)len ? 0 : 1);
	}
	close(fds[1]);
	r = msg_spool(m, fds[0], ignore_dots, spool_dir, e);
	close(fds[0]);
	waitpid(pid, &status, 0);
	return r;
}

static char *
read_body(struct message *m)
{
	char *b = xmalloc((size_t)m->body_len + 1);
	ssize_t n = pread(m->fd, b, (size_t)m->body_len, (off_t)m->body_off);

	b[n < 0 ? 0 : n] = '\0';
	return b;
}

/* Replace the random part of a generated Message-ID with "R". */
static char *
normalize(const char *head)
{
	const char *p = strstr(head, "Message-ID: <");
	size_t i;

	if (p == NULL)
		return xstrdup(head);
	p += 13;
	for (i = 0; i < 32; i++)
		if (!strchr("0123456789abcdef", p[i]) || p[i] == '\0')
			return xstrdup(head);
	if (p[32] != '.')
		return xstrdup(head);
	return xasprintf("%.*sR%s", (int)(p - head), head, p + 32);
}

struct tcase {
	const char *name;
	const char *in;
	int ignore_dots;
	int policy;            /* 0 rewrite, 1 keep, 2 reject */
	const char *fullname;
	int code;
	const char *head;      /* or a substring of the error message */
	const char *body;
};

static const struct tcase cases[] = {
	{ "bcc removed", "From: alice@contoso.com\r\nTo: b@x\r\nBcc: s@x,\r\n"
	    " other@x\r\nSubject: s\r\nbcc: t@x\r\n" KEEP_IDS "\r\nbody\r\n",
	    0, 0, NULL, 0, "From: alice@contoso.com\r\nTo: b@x\r\nSubject: s\r\n"
	    KEEP_IDS "\r\n", "body\r\n" },
	{ "resent-bcc removed", "Resent-From: alice@contoso.com\r\n"
	    "Resent-Bcc: hidden@x\r\nFrom: alice@contoso.com\r\n" KEEP_IDS
	    "\r\nb\r\n", 0, 0, NULL, 0, "Resent-From: alice@contoso.com\r\n"
	    "From: alice@contoso.com\r\n" KEEP_IDS "\r\n", "b\r\n" },
	{ "date, message-id, from added", "Subject: hi\n\nbody\n", 0, 0,
	    "Alice Example", 0, "Subject: hi\r\n" DATE MSGID
	    "From: Alice Example <alice@contoso.com>\r\n\r\n", "body\r\n" },
	{ "from added without a name", "Subject: hi\n\n", 0, 0, NULL, 0,
	    "Subject: hi\r\n" DATE MSGID "From: alice@contoso.com\r\n\r\n", "" },
	{ "empty from replaced", "From: \r\n" KEEP_IDS "\r\n", 0, 0, NULL, 0,
	    "From: alice@contoso.com\r\n" KEEP_IDS "\r\n", "" },
	{ "cron", "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@h> "
	    "ls\nMIME-Version: 1.0\n\nout\n", 0, 0, "CronDaemon", 0,
	    "From: Cron Daemon <alice@contoso.com>\r\nTo: root\r\n"
	    "Subject: Cron <root@h> ls\r\nMIME-Version: 1.0\r\n" DATE MSGID
	    "Reply-To: root@host.example\r\n\r\n", "out\r\n" },
	{ "php www-data", "To: x@y.example\r\nSubject: s\r\nFrom: "
	    "www-data@web1.example\r\n\r\nbody\nline2", 0, 0, NULL, 0,
	    "To: x@y.example\r\nSubject: s\r\nFrom: alice@contoso.com\r\n" DATE
	    MSGID "Reply-To: www-data@web1.example\r\n\r\n",
	    "body\r\nline2\r\n" },
	{ "bare address gets fullname", "From: x@evil.example\n" KEEP_IDS "\n",
	    0, 0, "Web Server", 0, "From: Web Server <alice@contoso.com>\r\n"
	    KEEP_IDS "Reply-To: x@evil.example\r\n\r\n", "" },
	{ "quoted display kept", "From: \"Doe, John\" <j@evil.example>\n"
	    KEEP_IDS "\n", 0, 0, "Ignored", 0,
	    "From: \"Doe, John\" <alice@contoso.com>\r\n" KEEP_IDS
	    "Reply-To: j@evil.example\r\n\r\n", "" },
	{ "allowed unchanged", "From: Bob <bob@Contoso.com>\r\n" KEEP_IDS
	    "\r\n", 0, 0, "Ignored", 0, "From: Bob <bob@Contoso.com>\r\n"
	    KEEP_IDS "\r\n", "" },
	{ "reply-to kept", "From: x@evil.example\r\nReply-To: keep@x.example"
	    "\r\n" KEEP_IDS "\r\n", 0, 0, NULL, 0, "From: alice@contoso.com\r\n"
	    "Reply-To: keep@x.example\r\n" KEEP_IDS "\r\n", "" },
	{ "keep policy", "From: x@evil.example\r\n" KEEP_IDS "\r\n", 0, 1,
	    NULL, 0, "From: x@evil.example\r\n" KEEP_IDS "\r\n", "" },
	{ "reject policy", "From: x@evil.example\r\n" KEEP_IDS "\r\n", 0, 2,
	    NULL, EX_NOPERM, "From: x@evil.example is not an address "
	    "alice@contoso.com may send as (from_policy reject)", "" },
	{ "reject bare local part", "From: root\r\n" KEEP_IDS "\r\n", 0, 2,
	    NULL, EX_NOPERM, "From: root@host.example is not", "" },
	{ "reject allows allowed", "From: a@contoso.com\r\n" KEEP_IDS "\r\n",
	    0, 2, NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS "\r\n", "" },
	{ "sender removed", "From: a@contoso.com\r\nSender: x@evil.example\r\n"
	    KEEP_IDS "\r\n", 0, 0, NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS
	    "\r\n", "" },
	{ "sender rejected", "From: a@contoso.com\r\nSender: x@evil.example\r\n"
	    KEEP_IDS "\r\n", 0, 2, NULL, EX_NOPERM, "Sender: x@evil.example",
	    "" },
	{ "unparseable from rewritten", "From: <<broken\r\n" KEEP_IDS "\r\n",
	    0, 0, NULL, 0, "From: alice@contoso.com\r\n" KEEP_IDS "\r\n", "" },
	{ "unparseable from rejected", "From: <<broken\r\n" KEEP_IDS "\r\n",
	    0, 2, NULL, EX_DATAERR, "cannot be parsed", "" },
	{ "folded from", "From: Someone\r\n <x@evil.example>\r\n" KEEP_IDS
	    "\r\n", 0, 0, NULL, 0, "From: Someone <alice@contoso.com>\r\n"
	    KEEP_IDS "Reply-To: x@evil.example\r\n\r\n", "" },
	{ "no header at all", "just a body\nsecond\n", 0, 0, NULL, 0,
	    DATE MSGID "From: alice@contoso.com\r\n\r\n",
	    "just a body\r\nsecond\r\n" },
	{ "empty input", "", 0, 0, NULL, 0, DATE MSGID
	    "From: alice@contoso.com\r\n\r\n", "" },
	{ "lf only", "From: a@contoso.com\n" KEEP_IDS "\na\nb\n\nc\n", 0, 0,
	    NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS "\r\n", "a\r\nb\r\n\r\nc\r\n" },
	{ "cr only", "From: a@contoso.com\rDate: x\rMessage-ID: <m@x>\r\ra\rb",
	    0, 0, NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS "\r\n",
	    "a\r\nb\r\n" },
	{ "mixed", "From: a@contoso.com\r\nDate: x\nMessage-ID: <m@x>\r\r\n"
	    "a\rb\nc\r\r\nd", 0, 0, NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS
	    "\r\n", "a\r\nb\r\nc\r\n\r\nd\r\n" },
	{ "lone dot ends", "From: a@contoso.com\n" KEEP_IDS "\nb\n.\nMAIL FROM:"
	    "<x>\n", 0, 0, NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS "\r\n",
	    "b\r\n" },
	{ "lone dot kept with -i", "From: a@contoso.com\n" KEEP_IDS "\nb\n.\n"
	    "c\n", 1, 0, NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS "\r\n",
	    "b\r\n.\r\nc\r\n" },
	{ "no final newline", "From: a@contoso.com\n" KEEP_IDS "\nlast", 0, 0,
	    NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS "\r\n", "last\r\n" },
	{ "header without body or blank line", "From: a@contoso.com\n"
	    KEEP_IDS, 0, 0, NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS "\r\n",
	    "" },
	{ "mbox From_ line dropped", "From root Tue Nov 14 22:13:20 2023\n"
	    "From: a@contoso.com\n" KEEP_IDS "\nb\n", 0, 0, NULL, 0,
	    "From: a@contoso.com\r\n" KEEP_IDS "\r\n", "b\r\n" },
	{ "998 octets: as it is", "From: a@contoso.com\n" KEEP_IDS "\n" X998
	    "\n", 0, 0, NULL, 0, "From: a@contoso.com\r\n" KEEP_IDS "\r\n",
	    X998 "\r\n" },
	{ "long line re-encoded", "From: a@contoso.com\nSubject: s\n"
	    KEEP_IDS "\n" X1000 "\nshort\n", 0, 0, NULL, 0,
	    "From: a@contoso.com\r\nSubject: s\r\n" KEEP_IDS QPHEAD "\r\n",
	    QP1000 "\r\nshort\r\n" },
	{ "long line after a lone dot ignored", "From: a@contoso.com\n"
	    KEEP_IDS "\nb\n.\n" X1000 "\n", 0, 0, NULL, 0,
	    "From: a@contoso.com\r\n" KEEP_IDS "\r\n", "b\r\n" },
	{ "unfoldable header refused", "From: a@contoso.com\nMessage-ID: <"
	    X1000 "@x>\nDate: x\n\nb\n", 0, 0, NULL, EX_DATAERR,
	    "Message-ID: header has a line of 1016 octets", "" },
	{ "smuggled field stays a body line", "From: a@contoso.com\n" KEEP_IDS
	    "\nx\r\n.\rBcc: e@x\n", 1, 0, NULL, 0, "From: a@contoso.com\r\n"
	    KEEP_IDS "\r\n", "x\r\n.\r\nBcc: e@x\r\n" },
};

static void
run_case(const struct tcase *t)
{
	struct msg_policy p = { "alice@contoso.com", allowed, "@contoso.com",
	    t->policy, t->fullname, "host.example", NOW };
	struct bm_err e = { 0 };
	struct message m;
	char *head, *body;
	int r;

	r = spool_bytes(t->in, strlen(t->in), t->ignore_dots, &m, &e);
	is_int(r, 0, "%s: spooled", t->name);
	r = msg_complete(&m, &p, &e);
	is_int(r, t->code, "%s: code", t->name);
	if (t->code != 0) {
		ok(strstr(e.msg, t->head) != NULL, "%s: message '%s'",
		    t->name, e.msg);
		msg_free(&m);
		return;
	}
	head = normalize(m.head);
	is_str(head, t->head, "%s: head", t->name);
	is_int((long long)m.head_len, (long long)strlen(m.head),
	    "%s: head_len", t->name);
	body = read_body(&m);
	is_str(body, t->body, "%s: body", t->name);
	is_int(m.body_off + m.body_len, m.size, "%s: sizes add up", t->name);
	free(head);
	free(body);
	msg_free(&m);
}

struct rcpt_case {
	const char *name, *in;
	int code;
	const char *want;
};

static const struct rcpt_case rcpt_cases[] = {
	{ "to cc bcc", "To: a@x, B <b@x>\nCc: c@x\nBcc: d@x\nTo: e@x\n\n", 0,
	    "a@x b@x c@x d@x e@x" },
	{ "dedup", "To: a@x, A@X\nCc: a@x\n\n", 0, "a@x" },
	{ "bare names", "To: root\n\n", 0, "root" },
	{ "group", "To: undisclosed-recipients:;\nBcc: z@x\n\n", 0, "z@x" },
	{ "folded", "To: a@x,\n b@x\n\n", 0, "a@x b@x" },
	{ "none", "Subject: x\n\n", 0, "" },
	{ "resent block wins", "Resent-Date: x\nResent-From: r@x\n"
	    "Resent-To: r1@x\nResent-Cc: r2@x\nResent-Bcc: r3@x\nTo: a@x\n\n",
	    0, "r1@x r2@x r3@x" },
	{ "first resent block only", "Resent-Date: 2\nResent-From: r@x\n"
	    "Resent-To: new@x\nReceived: by x\nResent-Date: 1\n"
	    "Resent-From: r@x\nResent-To: old@x\nTo: a@x\n\n", 0, "new@x" },
	{ "adjacent resent blocks", "Resent-Date: 2\nResent-To: new@x\n"
	    "Resent-Date: 1\nResent-To: old@x\nTo: a@x\n\n", 0, "new@x" },
	{ "resent block without rcpt skipped", "Resent-Date: 2\n"
	    "Resent-From: r@x\nReceived: by x\nResent-Date: 1\n"
	    "Resent-To: old@x\nTo: a@x\n\n", 0, "old@x" },
	{ "resent without rcpt: to", "Resent-From: r@x\nTo: a@x\n\n", 0,
	    "a@x" },
	{ "unparseable to", "To: a@x, <broken\n\n", EX_DATAERR, "To:" },
	{ "unparseable cc", "Cc: a@@x\n\n", EX_DATAERR, "Cc:" },
	{ "injection attempt", "To: <a@x\r\n RCPT TO:<b@y>>\n\n", EX_DATAERR,
	    "To:" },
};

static void
run_rcpt_case(const struct rcpt_case *t)
{
	struct addr_list l = ADDR_LIST_INIT;
	struct bm_err e = { 0 };
	struct message m;
	struct buf b = BUF_INIT;
	size_t i;
	int r;

	spool_bytes(t->in, strlen(t->in), 0, &m, &e);
	r = msg_header_recipients(&m, &l, &e);
	is_int(r, t->code, "rcpt %s: code", t->name);
	if (r != 0) {
		ok(strstr(e.msg, t->want) != NULL, "rcpt %s: message '%s'",
		    t->name, e.msg);
	} else {
		for (i = 0; i < l.n; i++)
			buf_addf(&b, "%s%s", i ? " " : "", l.v[i].addr);
		is_str(b.len ? b.data : "", t->want, "rcpt %s: list", t->name);
	}
	buf_free(&b, 0);
	addr_list_free(&l);
	msg_free(&m);
}

/* A child writes head and nlines of 76 'x' + end (LF: lines; 'x': all
 * one line, ended by the LF canon adds). */
static pid_t
big_writer(int fd, long nlines, const char *head, char end)
{
	char line[77];
	pid_t pid = fork();
	long i;

	if (pid != 0)
		return pid;
	memset(line, 'x', 76);
	line[76] = end;
	if (write(fd, head, strlen(head)) < 0)
		_exit(1);
	for (i = 0; i < nlines; i++)
		if (write(fd, line, sizeof(line)) != (ssize_t)sizeof(line))
			_exit(1);
	_exit(0);
}

static void
test_big(void)
{
	const long nlines = 30L * 1024 * 1024 / 77 + 1;
	struct bm_err e = { 0 };
	struct message m;
	struct rusage ru;
	long before;
	int fds[2], status;
	pid_t pid;

	getrusage(RUSAGE_SELF, &ru);
	before = ru.ru_maxrss;
	if (pipe(fds) != 0)
		return;
	pid = big_writer(fds[1], nlines, "Subject: big\n\n", '\n');
	close(fds[1]);
	is_int(msg_spool(&m, fds[0], 0, spool_dir, &e), 0, "30 MB spooled");
	close(fds[0]);
	waitpid(pid, &status, 0);
	is_int(m.body_len, nlines * 78, "30 MB body_len (CRLF added)");
	is_int(m.size, 16 + nlines * 78, "30 MB spool size");
	is_int((long long)m.hdrs.n, 1, "30 MB header parsed");
	getrusage(RUSAGE_SELF, &ru);
	/* peak RSS grew by far less than the message (valgrind-proof) */
	ok(ru.ru_maxrss - before < 8 * 1024, "memory stayed small (+%ld KiB)",
	    ru.ru_maxrss - before);
	msg_free(&m);
}

/* Read the spool back a MiB at a time: every line within 998 octets,
 * and its quoted-printable decoding n 'x' then CRLF. */
static int
check_big_qp(struct message *m, long long n)
{
	struct buf dec = BUF_INIT;
	char *chunk = xmalloc(1 << 20);
	long long off = 0, got = 0, other = 0;
	size_t keep = 0, end, i, col = 0, longest = 0;
	ssize_t r;

	while ((r = pread(m->fd, chunk + keep, (1 << 20) - keep,
	    (off_t)(m->body_off + off))) > 0) {
		off += r;
		end = keep + (size_t)r;
		for (i = keep; i < end; i++) {
			col = chunk[i] == '\n' ? 0 : col + 1;
			longest = col > longest ? col : longest;
		}
		/* decode the complete lines, keep the rest for the next read */
		for (i = end; i > 0 && chunk[i - 1] != '\n'; i--)
			;
		buf_reset(&dec);
		mime_decode(MIME_CTE_QP, chunk, i, &dec);
		got += (long long)dec.len;
		while (dec.len > 0)
			other += dec.data[--dec.len] != 'x';
		keep = end - i;
		memmove(chunk, chunk + i, keep);
	}
	free(chunk);
	buf_free(&dec, 0);
	/* longest counts the CR */
	return longest <= 999 && got == n + 2 && other == 2 &&
	    off == m->body_len;
}

/* A 30 MB page on one line: re-encoded as it is read, never held. */
static void
test_big_line(void)
{
	const long nlines = 30L * 1024 * 1024 / 77 + 1;
	struct msg_policy p = { "alice@contoso.com", NULL, NULL, 0, NULL,
	    "host.example", NOW };
	struct bm_err e = { 0 };
	struct message m;
	struct rusage ru;
	long before;
	int fds[2], status;
	pid_t pid;

	getrusage(RUSAGE_SELF, &ru);
	before = ru.ru_maxrss;
	if (pipe(fds) != 0)
		return;
	pid = big_writer(fds[1], nlines, "Subject: big\n\n", 'x');
	close(fds[1]);
	is_int(msg_spool(&m, fds[0], 0, spool_dir, &e), 0, "30 MB line spooled");
	close(fds[0]);
	waitpid(pid, &status, 0);
	is_int(m.longest, nlines * 77, "30 MB line measured");
	is_int(msg_complete(&m, &p, &e), 0, "30 MB line completed");
	getrusage(RUSAGE_SELF, &ru);
	ok(ru.ru_maxrss - before < 8 * 1024, "re-encoded in small memory "
	    "(+%ld KiB)", ru.ru_maxrss - before);
	ok(m.fd >= 0 && m.body_off == 0 && m.body_len > nlines * 77,
	    "a new spool file holds the body (%lld bytes)", m.body_len);
	ok(strstr(m.head, "Content-Transfer-Encoding: quoted-printable\r\n") !=
	    NULL, "30 MB line: quoted-printable");
	ok(check_big_qp(&m, nlines * 77), "30 MB line: lines within 998, "
	    "decodes to what was written");
	msg_free(&m);
}

static void
test_header_limits(void)
{
	static const char *const tails[] = { "\nbody\n", "X-Fil", " cont" };
	struct bm_err e = { 0 };
	struct buf b = BUF_INIT;
	struct message m;
	size_t i;

	/* 1.2 MB of header fields, cut by the 1 MiB limit anywhere */
	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		buf_reset(&b);
		while (b.len < 1200 * 1024)
			buf_adds(&b, "X-Filler: 0123456789012345678901234567890"
			    "123456789012345678901234567890123\n");
		buf_adds(&b, tails[i]);
		is_int(spool_bytes(b.data, b.len, 0, &m, &e), EX_DATAERR,
		    "header over 1 MiB refused (tail %zu)", i);
		ok(strstr(e.msg, "larger than") != NULL, "message: %s", e.msg);
		msg_free(&m);
	}
	/* a body-only message whose first line is longer than 1 MiB */
	buf_reset(&b);
	while (b.len < 1200 * 1024)
		buf_adds(&b, "no field here ");
	buf_adds(&b, "\n");
	is_int(spool_bytes(b.data, b.len, 0, &m, &e), 0,
	    "long body line without header is fine");
	is_int(m.body_off, 0, "no header");
	msg_free(&m);
	/* a header just under the limit, then a body */
	buf_reset(&b);
	while (b.len < 900 * 1024)
		buf_adds(&b, "X-Filler: 0123456789\n");
	buf_adds(&b, "\nbody\n");
	is_int(spool_bytes(b.data, b.len, 0, &m, &e), 0,
	    "header under 1 MiB accepted");
	is_int(m.body_len, 6, "its body");
	msg_free(&m);
	buf_free(&b, 0);

	is_int(spool_bytes("Subject: a\0b\n\nbody\n", 19, 0, &m, &e),
	    EX_DATAERR, "NUL in header refused");
	msg_free(&m);
	is_int(spool_bytes("Subject: ab\n\nbo\0dy\n", 19, 0, &m, &e), 0,
	    "NUL in body passes (the server decides)");
	is_int(m.body_len, 7, "body with NUL spooled whole");
	msg_free(&m);
}

static void
test_misc(void)
{
	struct bm_err e = { 0 };
	struct message m;
	struct msg_policy p = { "alice@contoso.com", NULL, NULL, 0, NULL,
	    NULL, NOW };
	int fds[2];
	const char *id;

	if (pipe(fds) != 0)
		return;
	close(fds[1]);
	is_int(msg_spool(&m, fds[0], 0, "/nonexistent/spool", &e),
	    EX_CANTCREAT, "missing spool dir: EX_CANTCREAT");
	ok(strstr(e.msg, "/nonexistent/spool") != NULL, "names the dir: %s",
	    e.msg);
	msg_free(&m);
	close(fds[0]);

	spool_bytes("Message-ID:\r\n  <abc@x> \r\n\r\n", 27, 0, &m, &e);
	is_str(msg_message_id(&m), "<abc@x>", "message id unfolded, trimmed");
	msg_free(&m);

	spool_bytes("Subject: caf\xc3\xa9\n\n", 16, 0, &m, &e);
	is_int(m.eightbit, 1, "8bit header noticed");
	is_int(msg_complete(&m, &p, &e), 0, "no callback, no domain");
	ok(strstr(m.head, "@contoso.com>\r\n") != NULL,
	    "message-id domain from the account");
	id = msg_message_id(&m);
	ok(id != NULL && strlen(id) == 1 + 32 + 1 + 10 + 1 + 11 + 1,
	    "message id shape: %s", id ? id : "(null)");
	msg_free(&m);

	spool_bytes("Subject: plain\n\nbody\n", 21, 0, &m, &e);
	is_int(m.eightbit, 0, "7bit message");
	is_str(msg_message_id(&m), NULL, "no message id");
	msg_free(&m);

	p.fullname = "J\xc3\xb6rg";
	spool_bytes("Subject: plain\n\nbody\n", 21, 0, &m, &e);
	msg_complete(&m, &p, &e);
	is_int(m.eightbit, 1, "8bit added by the rewrite noticed");
	msg_free(&m);
}

int
main(void)
{
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	setenv("TZ", "UTC", 1);
	tzset();
	if (mkdtemp(spool_dir) == NULL)
		return 1;
	test_big();	/* first, so its peak-memory check has a clean baseline */
	test_big_line();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	for (i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++)
		run_rcpt_case(&rcpt_cases[i]);
	test_header_limits();
	test_misc();
	rmdir(spool_dir);
	return done_testing();
}
