/*
 * test_bsmtp - the -bs dialogue: scripted client input (fmemopen) against
 * the exact server transcript (open_memstream) and the exact envelope and
 * bytes handed to deliver().
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bsmtp.h"
#include "canon.h"
#include "tests/unit/tap.h"

#define GREET "220 test.host ESMTP bearmail\r\n"
#define EHLO_R "250-test.host\r\n250-PIPELINING\r\n250-8BITMIME\r\n" \
	"250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
#define OK_MAIL "250 2.1.0 Ok\r\n"
#define OK_RCPT "250 2.1.5 Ok\r\n"
#define GO_DATA "354 End data with <CR><LF>.<CR><LF>\r\n"
#define DELIVERED "250 2.0.0 Ok: delivered\r\n"
#define BYE "221 2.0.0 Bye\r\n"
#define EOF_DATA "421 4.4.2 test.host Error: input ended inside DATA, " \
	"message not sent: end it with <CR><LF>.<CR><LF>\r\n"

/* The fake ops record every call in log. */
struct fake {
	struct buf log;
	int deliver_code;
	const char *deliver_msg;
};

static int
fake_check_rcpt(void *ctx, const char *rcpt, struct bm_err *e)
{
	if (strncmp(rcpt, "bad", 3) == 0)
		return err_set(e, EX_NOUSER, "no such user: %s", rcpt);
	return 0;
}

static int
fake_deliver(void *ctx, const char *sender, char **rcpts, size_t nrcpts,
    int data_fd, int eightbit, char *note, size_t note_len, struct bm_err *e)
{
	struct fake *f = ctx;
	char chunk[4096];
	ssize_t n;
	size_t i;

	buf_addf(&f->log, "from=<%s> to=<", sender);
	for (i = 0; i < nrcpts; i++)
		buf_addf(&f->log, "%s%s", i ? "," : "", rcpts[i]);
	buf_addf(&f->log, "> 8bit=%d\n", eightbit);
	while ((n = read(data_fd, chunk, sizeof(chunk))) > 0)
		buf_add(&f->log, chunk, (size_t)n);
	buf_adds(&f->log, "<end>\n");
	if (f->deliver_code != 0)
		return err_set(e, f->deliver_code, "%s", f->deliver_msg);
	if (f->deliver_msg != NULL)
		snprintf(note, note_len, "%s", f->deliver_msg);
	return 0;
}

static const struct bsmtp_ops fake_ops = { fake_check_rcpt, fake_deliver };

struct bcase {
	const char *name;
	const char *input;
	int deliver_code;
	const char *deliver_msg;
	int rc;
	const char *transcript;
	const char *deliveries;
};

static const struct bcase cases[] = {
	{ "Symfony-like session",
	  "EHLO [127.0.0.1]\r\n"
	  "MAIL FROM:<me@x> BODY=8BITMIME\r\n"
	  "RCPT TO:<a@x>\r\n"
	  "RCPT TO:<b@y>\r\n"
	  "DATA\r\n"
	  "Subject: hi\r\n\r\n..\r\n..x\r\nbody\r\n.\r\n"
	  "QUIT\r\n", 0, NULL, 0,
	  GREET EHLO_R OK_MAIL OK_RCPT OK_RCPT GO_DATA DELIVERED BYE,
	  "from=<me@x> to=<a@x,b@y> 8bit=1\n"
	  "Subject: hi\r\n\r\n.\r\n.x\r\nbody\r\n<end>\n" },
	{ "bare LF commands, lower case, HELO, null sender, pipelined",
	  "helo client\nmail from:<>\nrcpt to:<root>\ndata\n"
	  "a\nb\r\n.\r\nquit\n", 0, NULL, 0,
	  GREET "250 test.host\r\n" OK_MAIL OK_RCPT GO_DATA DELIVERED BYE,
	  "from=<> to=<root> 8bit=0\na\nb\r\n<end>\n" },
	{ "a bare-LF client's LF . LF is text: the data never ends",
	  "helo client\nmail from:<>\nrcpt to:<root>\ndata\n"
	  "a\n.\nquit\n", 0, NULL, EX_PROTOCOL,
	  GREET "250 test.host\r\n" OK_MAIL OK_RCPT GO_DATA EOF_DATA, "" },
	{ "DATA LF, then . CR LF: an empty message",
	  "MAIL FROM:<me@x>\nRCPT TO:<a@x>\nDATA\n.\r\nQUIT\n", 0, NULL, 0,
	  GREET OK_MAIL OK_RCPT GO_DATA DELIVERED BYE,
	  "from=<me@x> to=<a@x> 8bit=0\n<end>\n" },
	{ "queued: the 250 says where it went, on one line",
	  "MAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n.\r\nQUIT\r\n", 0,
	  "queued as 6B0F\r\nMAIL FROM:<x>", 0, GREET OK_MAIL OK_RCPT GO_DATA
	  "250 2.0.0 Ok: queued as 6B0F  MAIL FROM:<x>\r\n" BYE,
	  "from=<me@x> to=<a@x> 8bit=0\n<end>\n" },
	{ "DATA CR LF, then . CR LF: an empty message",
	  "MAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n.\r\nQUIT\r\n", 0,
	  NULL, 0, GREET OK_MAIL OK_RCPT GO_DATA DELIVERED BYE,
	  "from=<me@x> to=<a@x> 8bit=0\n<end>\n" },
	{ "DATA LF, then . LF: text, DATA still needs CR LF . CR LF",
	  "MAIL FROM:<me@x>\nRCPT TO:<a@x>\nDATA\n.\nQUIT\nx\r\n.\r\n"
	  "QUIT\n", 0, NULL, 0, GREET OK_MAIL OK_RCPT GO_DATA DELIVERED BYE,
	  "from=<me@x> to=<a@x> 8bit=0\n.\nQUIT\nx\r\n<end>\n" },
	{ "no HELO needed, lenient paths",
	  "MAIL FROM: <me@x> SIZE=120 SMTPUTF8\r\nRCPT TO:bare@x\r\n"
	  "RCPT TO:<@relay1,@relay2:u@x>\r\nRCPT TO:<\"a b\"@x>\r\nDATA\r\n"
	  "x\r\n.\r\nQUIT\r\n", 0, NULL, 0,
	  GREET OK_MAIL OK_RCPT OK_RCPT OK_RCPT GO_DATA DELIVERED BYE,
	  "from=<me@x> to=<bare@x,u@x,\"a b\"@x> 8bit=2\nx\r\n<end>\n" },
	{ "RSET drops the transaction",
	  "EHLO c\r\nMAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nRSET\r\n"
	  "RCPT TO:<a@x>\r\nMAIL FROM:<me@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
	  "y\r\n.\r\nQUIT\r\n", 0, NULL, 0,
	  GREET EHLO_R OK_MAIL OK_RCPT "250 2.0.0 Ok\r\n"
	  "503 5.5.1 Error: need MAIL command\r\n" OK_MAIL OK_RCPT GO_DATA
	  DELIVERED BYE,
	  "from=<me@x> to=<b@x> 8bit=0\ny\r\n<end>\n" },
	{ "bad sequence",
	  "RCPT TO:<a@x>\r\nDATA\r\nMAIL FROM:<me@x>\r\nMAIL FROM:<me@x>\r\n"
	  "DATA\r\nQUIT\r\n", 0, NULL, 0,
	  GREET "503 5.5.1 Error: need MAIL command\r\n"
	  "503 5.5.1 Error: need MAIL command\r\n" OK_MAIL
	  "503 5.5.1 Error: nested MAIL command\r\n"
	  "554 5.5.1 Error: no valid recipients\r\n" BYE, "" },
	{ "syntax errors and unknown commands",
	  "EHLO\r\nFOO bar\r\n\r\nMAIL TO:<a@x>\r\nMAIL FROM:<a@x\r\n"
	  "MAIL FROM:<a@x>junk\r\nMAIL FROM:<a\r\n@x>\r\n"
	  "MAIL FROM:<a@x> AUTH=<>\r\nMAIL FROM:<a@x> SIZE=big\r\n"
	  "MAIL FROM:<a@x> BODY=BINARYMIME\r\n"
	  "MAIL FROM:<a@x>\r\nRCPT TO:<>\r\nRCPT TO:<b@x> NOTIFY=NEVER\r\n"
	  "DATA now\r\nVRFY\r\nQUIT\r\n", 0, NULL, 0,
	  GREET "501 5.5.4 Syntax: EHLO hostname\r\n"
	  "500 5.5.2 Error: command not recognized\r\n"
	  "500 5.5.2 Error: command not recognized\r\n"
	  "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	  "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	  "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	  "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	  "500 5.5.2 Error: command not recognized\r\n"
	  "555 5.5.4 Unsupported option: AUTH=<>\r\n"
	  "501 5.5.4 Bad SIZE syntax\r\n"
	  "555 5.5.4 Unsupported option: BODY=BINARYMIME\r\n"
	  OK_MAIL "501 5.1.3 Bad recipient address syntax\r\n"
	  "555 5.5.4 Unsupported option: NOTIFY=NEVER\r\n"
	  "501 5.5.4 Syntax: DATA\r\n"
	  "501 5.5.4 Syntax: VRFY address\r\n" BYE, "" },
	{ "NOOP, HELP, VRFY",
	  "NOOP\r\nhelp\r\nVRFY root\r\nQUIT\r\n", 0, NULL, 0,
	  GREET "250 2.0.0 Ok\r\n"
	  "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP "
	  "QUIT\r\n"
	  "252 2.5.2 Cannot VRFY user, but will accept message and attempt "
	  "delivery\r\n" BYE, "" },
	{ "check_rcpt refusal",
	  "EHLO c\r\nMAIL FROM:<me@x>\r\nRCPT TO:<bad@x>\r\nRCPT TO:<a@x>\r\n"
	  "DATA\r\nz\r\n.\r\nQUIT\r\n", 0, NULL, 0,
	  GREET EHLO_R OK_MAIL "550 5.1.1 no such user: bad@x\r\n" OK_RCPT
	  GO_DATA DELIVERED BYE,
	  "from=<me@x> to=<a@x> 8bit=0\nz\r\n<end>\n" },
	{ "all recipients refused: DATA refused",
	  "MAIL FROM:<me@x>\r\nRCPT TO:<bad@x>\r\nDATA\r\nQUIT\r\n", 0, NULL, 0,
	  GREET OK_MAIL "550 5.1.1 no such user: bad@x\r\n"
	  "554 5.5.1 Error: no valid recipients\r\n" BYE, "" },
	{ "deliver EX_TEMPFAIL",
	  "EHLO c\r\nMAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\nm\r\n.\r\n"
	  "QUIT\r\n", EX_TEMPFAIL,
	  "432 4.3.2 Concurrent connections limit exceeded", 0,
	  GREET EHLO_R OK_MAIL OK_RCPT GO_DATA
	  "451 4.3.0 432 4.3.2 Concurrent connections limit exceeded\r\n" BYE,
	  "from=<me@x> to=<a@x> 8bit=0\nm\r\n<end>\n" },
	{ "deliver failure text cannot inject a reply line",
	  "MAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\nm\r\n.\r\nQUIT\r\n",
	  EX_NOPERM, "denied\r\n250 ok", 0,
	  GREET OK_MAIL OK_RCPT GO_DATA "550 5.7.1 denied  250 ok\r\n" BYE,
	  "from=<me@x> to=<a@x> 8bit=0\nm\r\n<end>\n" },
	{ "two messages in one session",
	  "EHLO c\r\nMAIL FROM:<me@x> BODY=8BITMIME\r\nRCPT TO:<a@x>\r\nDATA\r\n"
	  "one\r\n.\r\nMAIL FROM:<me@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
	  "two\r\n.\r\nQUIT\r\n", 0, NULL, 0,
	  GREET EHLO_R OK_MAIL OK_RCPT GO_DATA DELIVERED OK_MAIL OK_RCPT
	  GO_DATA DELIVERED BYE,
	  "from=<me@x> to=<a@x> 8bit=1\none\r\n<end>\n"
	  "from=<me@x> to=<b@x> 8bit=0\ntwo\r\n<end>\n" },
	{ "EHLO resets the transaction",
	  "MAIL FROM:<me@x>\r\nEHLO c\r\nRCPT TO:<a@x>\r\nQUIT\r\n", 0, NULL, 0,
	  GREET OK_MAIL EHLO_R "503 5.5.1 Error: need MAIL command\r\n" BYE,
	  "" },
	{ "EOF without QUIT", "EHLO c\r\nNOOP\r\n", 0, NULL, EX_PROTOCOL,
	  GREET EHLO_R "250 2.0.0 Ok\r\n", "" },
	{ "EOF inside DATA: nothing delivered, 421 says why",
	  "MAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\npartial\r\n", 0, NULL,
	  EX_PROTOCOL, GREET OK_MAIL OK_RCPT GO_DATA EOF_DATA, "" },
	{ "a final dot without CR LF does not end DATA",
	  "MAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\nlast\r\n.", 0, NULL,
	  EX_PROTOCOL, GREET OK_MAIL OK_RCPT GO_DATA EOF_DATA, "" },
	{ "a final . CR without LF does not end DATA",
	  "MAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\nlast\r\n.\r", 0,
	  NULL, EX_PROTOCOL, GREET OK_MAIL OK_RCPT GO_DATA EOF_DATA, "" },
	{ "QUIT without a line ending", "QUIT", 0, NULL, 0, GREET BYE, "" },
	{ "body without a final newline; dots mid-line untouched",
	  "MAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\na.b\r\n. \r\nno-eol"
	  "\r\n.\r\nQUIT\r\n", 0, NULL, 0,
	  GREET OK_MAIL OK_RCPT GO_DATA DELIVERED BYE,
	  "from=<me@x> to=<a@x> 8bit=0\na.b\r\n \r\nno-eol\r\n<end>\n" },
};

/*
 * SMTP smuggling: user text that a web application relays inside DATA,
 * holding an end-of-data lookalike and then the commands of a second
 * message; the application ends its one message with CR LF . CR LF.  Only
 * that ends the data: the lookalike and the "commands" reach deliver() as
 * text of the one message, and no second MAIL is answered.  The lookalike
 * is kept byte for byte (a dot is unstuffed only at a real line start,
 * after CR LF), and canonicalised as msg_spool does for -bs (canon, dots
 * ignored) it is a line holding a dot, which the SMTP client stuffs.
 */
#define SMUGGLE_PRE "EHLO app\r\nMAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n"
#define SMUGGLED "MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\n" \
	"Subject: smuggled\r\n\r\nevil"
#define SMUGGLE_POST "\r\n.\r\nQUIT\r\n"

static const struct {
	const char *name;
	const char *text;       /* the user text before SMUGGLED */
	const char *want;       /* what deliver() gets of it */
	const char *canon;      /* and what the spool holds */
} lookalikes[] = {
	{ "LF . LF", "hi\n.\n", "hi\n.\n", "hi\r\n.\r\n" },
	{ "LF . CR LF", "hi\n.\r\n", "hi\n.\r\n", "hi\r\n.\r\n" },
	{ "CR LF . LF", "hi\r\n.\n", "hi\r\n.\n", "hi\r\n.\r\n" },
	{ "CR . CR", "hi\r.\r", "hi\r.\r", "hi\r\n.\r\n" },
	{ "CR . CR LF", "hi\r.\r\n", "hi\r.\r\n", "hi\r\n.\r\n" },
	{ "CR LF . CR", "hi\r\n.\r", "hi\r\n.\r", "hi\r\n.\r\n" },
	{ "LF . CR", "hi\n.\r", "hi\n.\r", "hi\r\n.\r\n" },
	{ "CR . LF", "hi\r.\n", "hi\r.\n", "hi\r\n.\r\n" },
	{ "CR LF . CR CR LF", "hi\r\n.\r\r\n", "hi\r\n.\r\r\n",
	  "hi\r\n.\r\n\r\n" },
	{ "CR CR LF . CR CR LF", "hi\r\r\n.\r\r\n", "hi\r\r\n.\r\r\n",
	  "hi\r\n\r\n.\r\n\r\n" },
	{ "LF LF . LF LF", "hi\n\n.\n\n", "hi\n\n.\n\n",
	  "hi\r\n\r\n.\r\n\r\n" },
	{ ". LF at the start of the data", ".\n", ".\n", ".\r\n" },
	{ ". CR at the start of the data", ".\r", ".\r", ".\r\n" },
	{ "LF .. LF: no unstuffing after a bare LF", "hi\n..\n", "hi\n..\n",
	  "hi\r\n..\r\n" },
	{ "LF .x: no unstuffing after a bare LF", "hi\n.x\n", "hi\n.x\n",
	  "hi\r\n.x\r\n" },
	{ "CR LF .. LF: unstuffed at a line start", "hi\r\n..\n",
	  "hi\r\n.\n", "hi\r\n.\r\n" },
	{ "CR LF .. CR LF: unstuffed at a line start", "hi\r\n..\r\n",
	  "hi\r\n.\r\n", "hi\r\n.\r\n" },
	{ "bare-LF commands after LF . LF",
	  "hi\n.\nMAIL FROM:<e@x>\nRCPT TO:<v@y>\nDATA\n",
	  "hi\n.\nMAIL FROM:<e@x>\nRCPT TO:<v@y>\nDATA\n",
	  "hi\r\n.\r\nMAIL FROM:<e@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n" },
};

/* Run one session over in (len bytes); returns the exit code. */
static int
session(const char *in, size_t len, struct fake *f, char **transcript)
{
	FILE *fin = fmemopen((void *)in, len, "r");
	size_t tlen;
	FILE *fout = open_memstream(transcript, &tlen);
	int rc;

	rc = bsmtp_run(fin, fout, "test.host", &fake_ops, f);
	fclose(fin);
	fclose(fout);
	return rc;
}

static void
run_case(const struct bcase *c)
{
	struct fake f = { BUF_INIT, c->deliver_code, c->deliver_msg };
	char *got = NULL;
	int rc = session(c->input, strlen(c->input), &f, &got);

	is_int(rc, c->rc, "%s: exit code", c->name);
	is_str(got, c->transcript, "%s: transcript", c->name);
	is_str(f.log.data ? f.log.data : "", c->deliveries, "%s: delivered",
	    c->name);
	free(got);
	buf_free(&f.log, 0);
}

/* The message deliver() got (the log between its first line and <end>),
 * canonicalised. */
static int
canon_is(const struct buf *log, const char *want)
{
	const char *body = (const char *)memchr(log->data, '\n', log->len) + 1;
	size_t n = log->len - (size_t)(body - log->data) - strlen("<end>\n");
	struct buf out = BUF_INIT;
	struct canon c;
	int same;

	canon_init(&c, 1);
	canon_feed(&c, body, n, &out);
	canon_finish(&c, &out);
	same = out.len == strlen(want) && memcmp(out.data, want, out.len) == 0;
	buf_free(&out, 0);
	return same;
}

static void
test_lookalike(size_t i)
{
	struct fake f = { BUF_INIT, 0, NULL };
	struct buf in = BUF_INIT, want = BUF_INIT;
	char *got = NULL, *canon;
	const char *name = lookalikes[i].name;
	int rc;

	buf_adds(&in, SMUGGLE_PRE);
	buf_adds(&in, lookalikes[i].text);
	buf_adds(&in, SMUGGLED SMUGGLE_POST);
	buf_adds(&want, "from=<me@x> to=<a@x> 8bit=0\n");
	buf_adds(&want, lookalikes[i].want);
	buf_adds(&want, SMUGGLED "\r\n<end>\n");
	canon = xasprintf("%s%s\r\n", lookalikes[i].canon, SMUGGLED);
	rc = session(in.data, in.len, &f, &got);
	is_int(rc, 0, "%s: exit code", name);
	is_str(got, GREET EHLO_R OK_MAIL OK_RCPT GO_DATA DELIVERED BYE,
	    "%s: transcript: one MAIL, one message", name);
	ok(f.log.len == want.len && memcmp(f.log.data, want.data,
	    want.len) == 0, "%s: one message, the smuggled commands as text",
	    name);
	ok(f.log.len == want.len && canon_is(&f.log, canon),
	    "%s: the spool's canonical lines", name);
	free(canon);
	free(got);
	buf_free(&f.log, 0);
	buf_free(&in, 0);
	buf_free(&want, 0);
}

/*
 * The plain case: CR LF . CR LF ends the data, and what follows in the same
 * write (a pipelining client) is the next transaction, answered in order.
 */
static void
test_pipelined(void)
{
	static const char in[] = "EHLO app\r\nMAIL FROM:<me@x>\r\n"
	    "RCPT TO:<a@x>\r\nDATA\r\none\n.\nMAIL FROM:<evil@x>\r\n"
	    ".\r\nMAIL FROM:<me@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
	    "two\r\n.\r\nRSET\r\nQUIT\r\n";
	static const char want[] =
	    "from=<me@x> to=<a@x> 8bit=0\none\n.\nMAIL FROM:<evil@x>\r\n<end>\n"
	    "from=<me@x> to=<b@x> 8bit=0\ntwo\r\n<end>\n";
	struct fake f = { BUF_INIT, 0, NULL };
	char *got = NULL;

	is_int(session(in, sizeof(in) - 1, &f, &got), 0, "pipelined: exit");
	is_str(got, GREET EHLO_R OK_MAIL OK_RCPT GO_DATA DELIVERED OK_MAIL
	    OK_RCPT GO_DATA DELIVERED "250 2.0.0 Ok\r\n" BYE,
	    "pipelined: two transactions answered in order");
	is_str(f.log.data ? f.log.data : "", want,
	    "pipelined: two messages, the lookalike inside the first");
	free(got);
	buf_free(&f.log, 0);
}

/*
 * DATA is read in pieces of 8192 bytes: with the CR of CR LF . CR LF as the
 * last byte of a piece the data still ends there, and a lookalike does not.
 */
static void
test_piece_boundary(void)
{
	static const struct {
		const char *end, *tail, *want;
	} t[] = {
		{ "\r\n.\r\n", "QUIT\r\n", "\r\n" },
		{ "\r.\r\n", "z\r\n.\r\nQUIT\r\n", "\r.\r\nz\r\n" },
		{ "\r\n.\n", "z\r\n.\r\nQUIT\r\n", "\r\n.\nz\r\n" },
	};
	struct buf in = BUF_INIT, want = BUF_INIT;
	struct fake f = { BUF_INIT, 0, NULL };
	char *got = NULL;
	size_t i, j;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		buf_adds(&in, "MAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n");
		buf_adds(&want, "from=<me@x> to=<a@x> 8bit=0\n");
		for (j = 0; j < 8191; j++) {
			buf_addc(&in, 'a');
			buf_addc(&want, 'a');
		}
		buf_adds(&in, t[i].end);
		buf_adds(&in, t[i].tail);
		buf_adds(&want, t[i].want);
		buf_adds(&want, "<end>\n");
		is_int(session(in.data, in.len, &f, &got), 0,
		    "piece boundary %zu: exit code", i);
		is_str(got, GREET OK_MAIL OK_RCPT GO_DATA DELIVERED BYE,
		    "piece boundary %zu: transcript", i);
		ok(f.log.len == want.len && memcmp(f.log.data, want.data,
		    want.len) == 0, "piece boundary %zu: delivered", i);
		free(got);
		got = NULL;
		buf_reset(&f.log);
		buf_reset(&in);
		buf_reset(&want);
	}
	buf_free(&f.log, 0);
	buf_free(&in, 0);
	buf_free(&want, 0);
}

/* A 100,000-byte line (with a leading dot) arrives whole. */
static void
test_long_line(void)
{
	struct fake f = { BUF_INIT, 0, NULL };
	struct buf in = BUF_INIT, want = BUF_INIT;
	char *got = NULL;
	size_t i;

	buf_adds(&in, "MAIL FROM:<me@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n..");
	buf_adds(&want, "from=<me@x> to=<a@x> 8bit=0\n.");
	for (i = 0; i < 100000; i++) {
		buf_addc(&in, (char)('a' + i % 26));
		buf_addc(&want, (char)('a' + i % 26));
	}
	buf_adds(&in, "\r\n.\r\nQUIT\r\n");
	buf_adds(&want, "\r\n<end>\n");
	is_int(session(in.data, in.len, &f, &got), 0, "long line: exit code");
	ok(f.log.len == want.len && memcmp(f.log.data, want.data, want.len) == 0,
	    "long line: delivered intact");
	free(got);
	buf_free(&f.log, 0);
	buf_free(&in, 0);
	buf_free(&want, 0);
}

/* A NUL byte in the body is kept. */
static void
test_nul_in_body(void)
{
	static const char in[] = "MAIL FROM:<a@x>\nRCPT TO:<b@x>\nDATA\n"
	    "a\0b\r\n.\r\nQUIT\n";
	static const char want[] = "from=<a@x> to=<b@x> 8bit=0\na\0b\r\n"
	    "<end>\n";
	struct fake f = { BUF_INIT, 0, NULL };
	char *got = NULL;

	is_int(session(in, sizeof(in) - 1, &f, &got), 0, "NUL: exit code");
	ok(f.log.len == sizeof(want) - 1 &&
	    memcmp(f.log.data, want, sizeof(want) - 1) == 0,
	    "NUL: body kept byte for byte");
	free(got);
	buf_free(&f.log, 0);
}

static void
test_long_command(void)
{
	struct fake f = { BUF_INIT, 0, NULL };
	struct buf in = BUF_INIT;
	char *got = NULL;
	size_t i;

	buf_adds(&in, "NOOP ");
	for (i = 0; i < 5000; i++)
		buf_addc(&in, 'x');
	buf_adds(&in, "\r\nQUIT\r\n");
	is_int(session(in.data, in.len, &f, &got), 0, "long command: exit");
	is_str(got, GREET "500 5.5.0 Error: line too long\r\n" BYE,
	    "long command: refused, dialogue continues");
	free(got);
	buf_free(&in, 0);
}

static void
test_too_many_errors(void)
{
	struct fake f = { BUF_INIT, 0, NULL };
	struct buf in = BUF_INIT, want = BUF_INIT;
	char *got = NULL;
	int i;

	buf_adds(&want, GREET);
	for (i = 0; i < 25; i++)
		buf_adds(&in, "BOGUS\r\n");
	for (i = 0; i < 20; i++)
		buf_adds(&want, "500 5.5.2 Error: command not recognized\r\n");
	buf_adds(&want, "421 4.7.0 test.host Error: too many errors\r\n");
	is_int(session(in.data, in.len, &f, &got), EX_PROTOCOL,
	    "too many errors: exit code");
	is_str(got, want.data, "too many errors: 421 and hang up");
	free(got);
	buf_free(&in, 0);
	buf_free(&want, 0);
}

static void
test_max_rcpts(void)
{
	struct fake f = { BUF_INIT, 0, NULL };
	struct buf in = BUF_INIT;
	char *got = NULL, *last;
	int i;

	buf_adds(&in, "MAIL FROM:<me@x>\r\n");
	for (i = 0; i <= BSMTP_MAX_RCPTS; i++)
		buf_addf(&in, "RCPT TO:<r%d@x>\r\n", i);
	buf_adds(&in, "QUIT\r\n");
	is_int(session(in.data, in.len, &f, &got), 0, "max rcpts: exit code");
	last = strstr(got, "452 ");
	ok(last != NULL && strcmp(last, "452 4.5.3 Error: too many "
	    "recipients\r\n" BYE) == 0, "max rcpts: the 1001st gets 452 4.5.3");
	free(got);
	buf_free(&in, 0);
}

static void
test_reply_for(void)
{
	static const struct {
		int code;
		const char *want;
	} t[] = {
		{ 0, "250 2.0.0" },
		{ EX_TEMPFAIL, "451 4.3.0" },
		{ EX_NOUSER, "550 5.1.1" },
		{ EX_NOPERM, "550 5.7.1" },
		{ EX_DATAERR, "554 5.6.0" },
		{ EX_USAGE, "501 5.1.3" },
		{ EX_CONFIG, "451 4.3.5" },
		{ EX_UNAVAILABLE, "554 5.3.0" },
		{ EX_IOERR, "451 4.3.0" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_str(bsmtp_reply_for(t[i].code), t[i].want, "reply for %d",
		    t[i].code);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	for (i = 0; i < sizeof(lookalikes) / sizeof(lookalikes[0]); i++)
		test_lookalike(i);
	test_pipelined();
	test_piece_boundary();
	test_long_line();
	test_nul_in_body();
	test_long_command();
	test_too_many_errors();
	test_max_rcpts();
	test_reply_for();
	return done_testing();
}
