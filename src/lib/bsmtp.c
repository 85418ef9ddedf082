/*
 * bsmtp - the `sendmail -bs` SMTP dialogue: RFC 5321 commands EHLO, HELO,
 * MAIL, RCPT, DATA, RSET, NOOP, HELP, VRFY and QUIT; PIPELINING (RFC 2920),
 * 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034, RFC 3463 codes) and
 * SMTPUTF8 (RFC 6531).  One handler per command.  Command lines are bounded;
 * DATA is streamed to an unlinked temporary file, so memory stays bounded
 * whatever the client sends, and only CR LF "." CR LF ends it (no SMTP
 * smuggling through a lookalike: see read_data()).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bsmtp.h"

#define CMD_MAX     2048        /* a command line, as Postfix's limit */
#define PATH_MAX_   512         /* an address between the brackets */
#define DATA_PIECE  8192        /* a long DATA line is read in pieces */
#define FLUSH_AT    65536       /* spool write buffer */
#define MAX_ERRORS  20          /* then 421 and hang up */

struct session {
	FILE *in;
	FILE *out;
	const char *host;
	const struct bsmtp_ops *ops;
	void *ctx;
	char *sender;               /* NULL until MAIL; "" for <> */
	int eightbit;
	char **rcpts;
	size_t nrcpts;
	int errors;
	char line[CMD_MAX + 1];
};

enum step { STEP_NEXT, STEP_QUIT, STEP_EOF, STEP_IOERR };

static const struct {
	int code;
	const char *reply;
} replies[] = {
	{ 0, "250 2.0.0" },
	{ EX_TEMPFAIL, "451 4.3.0" },
	{ EX_IOERR, "451 4.3.0" },
	{ EX_OSERR, "451 4.3.0" },
	{ EX_OSFILE, "451 4.3.0" },
	{ EX_CANTCREAT, "451 4.3.0" },
	{ EX_SOFTWARE, "451 4.3.0" },
	{ EX_CONFIG, "451 4.3.5" },
	{ EX_NOUSER, "550 5.1.1" },
	{ EX_NOHOST, "550 5.1.2" },
	{ EX_USAGE, "501 5.1.3" },
	{ EX_NOPERM, "550 5.7.1" },
	{ EX_DATAERR, "554 5.6.0" },
	{ EX_PROTOCOL, "554 5.5.0" },
};

const char *
bsmtp_reply_for(int code)
{
	size_t i;

	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
		if (replies[i].code == code)
			return replies[i].reply;
	return "554 5.3.0";
}

/* --------------------------------------------------------------- replies */

/* One reply line; control characters (from e->msg) become spaces. */
static void BM_PRINTF(2, 0)
vreply(struct session *s, const char *fmt, va_list ap)
{
	char *line = str_printable(xvasprintf(fmt, ap), ' ');

	fputs(line, s->out);
	fputs("\r\n", s->out);
	fflush(s->out);
	free(line);
}

static void BM_PRINTF(2, 3)
reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(s, fmt, ap);
	va_end(ap);
}

/* A client error (syntax, sequence): counted towards MAX_ERRORS. */
static void BM_PRINTF(2, 3)
reply_error(struct session *s, const char *fmt, ...)
{
	va_list ap;

	s->errors++;
	va_start(ap, fmt);
	vreply(s, fmt, ap);
	va_end(ap);
}

/* The mapped reply for a failed check or delivery, with its reason. */
static void
reply_failure(struct session *s, int code, const struct bm_err *e,
    const char *fallback)
{
	reply(s, "%s %s", bsmtp_reply_for(code),
	    e->msg[0] != '\0' ? e->msg : fallback);
}

/* ------------------------------------------------------------------ input */

/* Bytes up to and including '\n', or cap bytes; 0 at EOF. */
static size_t
read_piece(FILE *in, char *buf, size_t cap)
{
	size_t n = 0;
	int c;

	while (n < cap && (c = getc(in)) != EOF) {
		buf[n++] = (char)c;
		if (c == '\n')
			break;
	}
	return n;
}

static void
discard_line(FILE *in)
{
	int c;

	while ((c = getc(in)) != EOF && c != '\n')
		;
}

/*
 * One command line into s->line without its CR LF or LF.  1: a line;
 * 0: EOF; -1: the line was too long (the rest is discarded).
 */
static int
read_command(struct session *s)
{
	size_t n = read_piece(s->in, s->line, CMD_MAX);

	if (n == 0)
		return 0;
	if (n == CMD_MAX && s->line[n - 1] != '\n') {
		discard_line(s->in);
		return -1;
	}
	if (s->line[n - 1] == '\n')
		n--;
	if (n > 0 && s->line[n - 1] == '\r')
		n--;
	s->line[n] = '\0';
	if (memchr(s->line, '\0', n) != NULL)
		s->line[0] = '\0';      /* a NUL in a command: bad syntax */
	return 1;
}

/* ------------------------------------------------------------ transaction */

static void
reset_txn(struct session *s)
{
	size_t i;

	for (i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	free(s->sender);
	s->rcpts = NULL;
	s->nrcpts = 0;
	s->sender = NULL;
	s->eightbit = 0;
}

static int
bad_char(unsigned char c)
{
	return is_control(c);
}

/*
 * The address of a Path ("<addr>", or a bare addr as lenient servers take
 * it) at *pp, a source route dropped; *pp is moved past it.  xmalloc'd, ""
 * for "<>"; NULL on bad syntax.
 */
static char *
parse_path(char **pp)
{
	char *p = *pp, *start, *end, *c;
	int angle, quoted = 0;

	while (*p == ' ')
		p++;
	angle = *p == '<';
	start = p += angle;
	for (; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && (*p == ' ' || *p == '<' || *p == '>'))
			break;
	}
	end = p;
	if (quoted || (angle && *p != '>') || (!angle && *p == '<'))
		return NULL;
	p += angle;
	if (*p != '\0' && *p != ' ')
		return NULL;
	if (*start == '@') {            /* RFC 5321 4.1.2 A-d-l: ignored */
		char *colon = memchr(start, ':', (size_t)(end - start));

		if (colon == NULL)
			return NULL;
		start = colon + 1;
	}
	if ((!angle && start == end) || end - start > PATH_MAX_)
		return NULL;
	for (c = start; c < end; c++)
		if (bad_char((unsigned char)*c))
			return NULL;
	*pp = p;
	return xstrndup(start, (size_t)(end - start));
}

/* "FROM:<path>" / "TO:<path>" at *pp: parse_path() after the keyword. */
static char *
parse_arg_path(char **pp, const char *keyword)
{
	if (!str_has_prefix_ci(*pp, keyword))
		return NULL;
	*pp += strlen(keyword);
	return parse_path(pp);
}

/* The next space-separated word of *pp (NUL-terminated in place), or NULL. */
static char *
next_word(char **pp)
{
	char *p = *pp, *w;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		return NULL;
	w = p;
	while (*p != '\0' && *p != ' ')
		p++;
	if (*p != '\0')
		*p++ = '\0';
	*pp = p;
	return w;
}

/* ---------------------------------------------------------------- commands */

static enum step
cmd_ehlo(struct session *s, char *args)
{
	if (args[0] == '\0') {
		reply_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return STEP_NEXT;
	}
	reset_txn(s);
	fprintf(s->out, "250-%s\r\n", s->host);
	fputs("250-PIPELINING\r\n"
	    "250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250 SMTPUTF8\r\n", s->out);
	fflush(s->out);
	return STEP_NEXT;
}

static enum step
cmd_helo(struct session *s, char *args)
{
	if (args[0] == '\0') {
		reply_error(s, "501 5.5.4 Syntax: HELO hostname");
		return STEP_NEXT;
	}
	reset_txn(s);
	reply(s, "250 %s", s->host);
	return STEP_NEXT;
}

/* One MAIL parameter into *eightbit; 0, or -1 after replying. */
static int
mail_param(struct session *s, const char *param, int *eightbit)
{
	long long size;

	if (strcasecmp(param, "BODY=8BITMIME") == 0)
		*eightbit |= BSMTP_8BITMIME;
	else if (strcasecmp(param, "BODY=7BIT") == 0)
		*eightbit &= ~BSMTP_8BITMIME;
	else if (strcasecmp(param, "SMTPUTF8") == 0)
		*eightbit |= BSMTP_SMTPUTF8;
	else if (str_has_prefix_ci(param, "SIZE=")) {
		if (str_to_ll(param + 5, 0, (long long)1 << 50, &size) != 0) {
			reply_error(s, "501 5.5.4 Bad SIZE syntax");
			return -1;
		}
	} else {
		reply_error(s, "555 5.5.4 Unsupported option: %s", param);
		return -1;
	}
	return 0;
}

static enum step
cmd_mail(struct session *s, char *args)
{
	char *p = args, *sender, *param;
	int eightbit = 0;

	if (s->sender != NULL) {
		reply_error(s, "503 5.5.1 Error: nested MAIL command");
		return STEP_NEXT;
	}
	if ((sender = parse_arg_path(&p, "FROM:")) == NULL) {
		reply_error(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return STEP_NEXT;
	}
	while ((param = next_word(&p)) != NULL) {
		if (mail_param(s, param, &eightbit) != 0) {
			free(sender);
			return STEP_NEXT;
		}
	}
	s->sender = sender;
	s->eightbit = eightbit;
	reply(s, "250 2.1.0 Ok");
	return STEP_NEXT;
}

static enum step
cmd_rcpt(struct session *s, char *args)
{
	char *p = args, *rcpt, *param;
	struct bm_err e = { 0 };
	int code;

	if (s->sender == NULL) {
		reply_error(s, "503 5.5.1 Error: need MAIL command");
		return STEP_NEXT;
	}
	if ((rcpt = parse_arg_path(&p, "TO:")) == NULL) {
		reply_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return STEP_NEXT;
	}
	if ((param = next_word(&p)) != NULL)
		reply_error(s, "555 5.5.4 Unsupported option: %s", param);
	else if (rcpt[0] == '\0')
		reply_error(s, "501 5.1.3 Bad recipient address syntax");
	else if (s->nrcpts >= BSMTP_MAX_RCPTS)
		reply(s, "452 4.5.3 Error: too many recipients");
	else if (s->ops->check_rcpt != NULL &&
	    (code = s->ops->check_rcpt(s->ctx, rcpt, &e)) != 0)
		reply_failure(s, code, &e, "Recipient address rejected");
	else {
		s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof(*s->rcpts));
		s->rcpts[s->nrcpts++] = rcpt;
		reply(s, "250 2.1.5 Ok");
		return STEP_NEXT;
	}
	free(rcpt);
	return STEP_NEXT;
}

/* An unlinked, close-on-exec temporary file in $TMPDIR or /tmp. */
static int
open_spool(struct bm_err *e)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;

	if (dir == NULL || dir[0] != '/')
		dir = "/tmp";
	path = xasprintf("%s/bearmail-bsmtp.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		err_set(e, EX_CANTCREAT, "Error: cannot create a temporary "
		    "file in %s: %s", dir, strerror(errno));
		goto out;
	}
	unlink(path);
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
out:
	free(path);
	return fd;
}

/* Write the buffer out and empty it; errno-style result (0 on success). */
static int
spool_flush(int fd, struct buf *w)
{
	size_t off = 0;
	int rc = 0;

	while (off < w->len) {
		ssize_t n = write(fd, w->data + off, w->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errno;
			break;
		}
		off += (size_t)n;
	}
	buf_reset(w);
	return rc;
}

/*
 * The end of DATA (RFC 5321 4.1.1.4, 4.5.2): an SMTP line ends only at CR LF,
 * and only a line holding a single "." ends the data - CR LF "." CR LF, the
 * start of the data counting as just after a CR LF (however the DATA command
 * itself ended), so a first line "." CR LF is an empty message.  A bare CR or
 * a bare LF is a byte inside a line, passed on as content for msg_spool() to
 * make canonical, and never starts a line: LF "." LF, LF "." CR LF, CR "." CR
 * and the like are message text, not an end, or a web application relaying
 * user text through `sendmail -bs` could end its message early and have what
 * follows run as the commands of a second one (SMTP smuggling).
 *
 * Dot-unstuffing follows the same line: the first "." of a line is dropped
 * only at a real line start, never after a bare LF (clients stuff after CR LF
 * only, as Symfony Mailer does).  At a line start, "." directly followed by a
 * bare CR or bare LF is the end-of-data lookalike, not stuffing (a stuffing
 * client doubles the dot): it is kept whole, so every lookalike reaches the
 * message as a line holding a dot, which the SMTP client stuffs again.
 */
enum dstate {
	D_BOL,          /* start of data, or just after CR LF */
	D_DOT,          /* "." at a line start, held back */
	D_DOT_CR,       /* "." CR at a line start, held back */
	D_TEXT,         /* inside a line */
	D_CR,           /* inside a line, just after a CR */
	D_END           /* CR LF "." CR LF: the end of the data */
};

/* One byte of DATA: the next state; content is appended to w. */
static enum dstate
data_byte(enum dstate st, char c, struct buf *w)
{
	switch (st) {
	case D_BOL:
		if (c == '.')
			return D_DOT;
		break;
	case D_DOT:
		if (c == '\r')
			return D_DOT_CR;
		if (c == '\n')
			buf_addc(w, '.');       /* "." LF: a lookalike, kept */
		break;                          /* else a stuffing dot: gone */
	case D_DOT_CR:
		if (c == '\n')
			return D_END;
		buf_add(w, ".\r", 2);           /* "." CR: a lookalike, kept */
		st = D_CR;
		break;
	default:
		break;
	}
	buf_addc(w, c);
	if (c == '\r')
		return D_CR;
	return c == '\n' && st == D_CR ? D_BOL : D_TEXT;
}

/* The length of the run of bytes that are neither CR nor LF. */
static size_t
text_run(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n')
			break;
	return i;
}

/* n bytes of DATA through data_byte(), a line's plain text in one go. */
static enum dstate
data_feed(enum dstate st, const char *p, size_t n, struct buf *w)
{
	size_t i = 0, run;

	while (i < n && st != D_END) {
		if (st == D_TEXT && (run = text_run(p + i, n - i)) > 0) {
			buf_add(w, p + i, run);
			i += run;
		} else
			st = data_byte(st, p[i++], w);
	}
	return st;
}

/*
 * The message after 354, up to CR LF "." CR LF, dot-unstuffed into fd.
 * Pieces end at an LF, so the final LF of the end is the last byte read
 * and pipelined commands after it stay in s->in.  0; EX_PROTOCOL at EOF;
 * EX_IOERR when reading failed; EX_CANTCREAT (e filled) when the spool
 * could not be written (the data is still read to its end, so the dialogue
 * stays in step).
 */
static int
read_data(struct session *s, int fd, struct bm_err *e)
{
	char piece[DATA_PIECE];
	struct buf w = BUF_INIT;
	enum dstate st = D_BOL;
	int werr = 0, rc = 0;
	size_t n;

	while (st != D_END) {
		n = read_piece(s->in, piece, sizeof(piece));
		if (n == 0) {
			rc = ferror(s->in) ? EX_IOERR : EX_PROTOCOL;
			goto out;
		}
		st = data_feed(st, piece, n, &w);
		if (w.len >= FLUSH_AT && werr == 0)
			werr = spool_flush(fd, &w);
		else if (w.len >= FLUSH_AT)
			buf_reset(&w);
	}
	if (werr == 0)
		werr = spool_flush(fd, &w);
	if (werr == 0 && lseek(fd, 0, SEEK_SET) < 0)
		werr = errno;
	if (werr != 0)
		rc = err_set(e, EX_CANTCREAT, "Error: cannot write the "
		    "message to a temporary file: %s", strerror(werr));
out:
	buf_free(&w, 0);
	return rc;
}

static enum step
deliver(struct session *s, int fd)
{
	struct bm_err e = { 0 };
	char note[128] = "";
	int code;

	code = s->ops->deliver(s->ctx, s->sender, s->rcpts, s->nrcpts, fd,
	    s->eightbit, note, sizeof(note), &e);
	if (code == 0 && note[0] != '\0')
		/* delivered is the default; the submit path may say more
		 * ("queued as ID"); reply() keeps it one line */
		reply(s, "250 2.0.0 Ok: %.*s", (int)sizeof(note), note);
	else if (code == 0)
		reply(s, "250 2.0.0 Ok: delivered");
	else
		reply_failure(s, code, &e, "Error: delivery failed");
	return STEP_NEXT;
}

static enum step
cmd_data(struct session *s, char *args)
{
	struct bm_err e = { 0 };
	enum step step = STEP_NEXT;
	int fd, rc;

	if (args[0] != '\0') {
		reply_error(s, "501 5.5.4 Syntax: DATA");
		return STEP_NEXT;
	}
	if (s->sender == NULL) {
		reply_error(s, "503 5.5.1 Error: need MAIL command");
		return STEP_NEXT;
	}
	if (s->nrcpts == 0) {
		reply_error(s, "554 5.5.1 Error: no valid recipients");
		return STEP_NEXT;
	}
	if ((fd = open_spool(&e)) < 0) {
		reply_failure(s, EX_CANTCREAT, &e, "");
		return STEP_NEXT;
	}
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	rc = read_data(s, fd, &e);
	if (rc == EX_IOERR)
		step = STEP_IOERR;
	else if (rc == EX_PROTOCOL) {
		/* a client that ended with LF "." LF waits in vain: say why
		 * to one that reads the transcript */
		reply(s, "421 4.4.2 %s Error: input ended inside DATA, message "
		    "not sent: end it with <CR><LF>.<CR><LF>", s->host);
		step = STEP_EOF;
	} else if (rc != 0)
		reply_failure(s, rc, &e, "");
	else
		step = deliver(s, fd);
	close(fd);
	reset_txn(s);
	return step;
}

static enum step
cmd_rset(struct session *s, char *args)
{
	reset_txn(s);
	reply(s, "250 2.0.0 Ok");
	return STEP_NEXT;
}

static enum step
cmd_noop(struct session *s, char *args)
{
	reply(s, "250 2.0.0 Ok");
	return STEP_NEXT;
}

static enum step
cmd_help(struct session *s, char *args)
{
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP "
	    "VRFY HELP QUIT");
	return STEP_NEXT;
}

static enum step
cmd_vrfy(struct session *s, char *args)
{
	if (args[0] == '\0')
		reply_error(s, "501 5.5.4 Syntax: VRFY address");
	else
		reply(s, "252 2.5.2 Cannot VRFY user, but will accept message "
		    "and attempt delivery");
	return STEP_NEXT;
}

static enum step
cmd_quit(struct session *s, char *args)
{
	reply(s, "221 2.0.0 Bye");
	return STEP_QUIT;
}

static const struct {
	const char *verb;
	enum step (*fn)(struct session *s, char *args);
} commands[] = {
	{ "EHLO", cmd_ehlo },
	{ "HELO", cmd_helo },
	{ "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt },
	{ "DATA", cmd_data },
	{ "RSET", cmd_rset },
	{ "NOOP", cmd_noop },
	{ "HELP", cmd_help },
	{ "VRFY", cmd_vrfy },
	{ "QUIT", cmd_quit },
};

static enum step
dispatch(struct session *s)
{
	char *line = s->line, *args;
	size_t vlen = strcspn(line, " "), i;

	args = line + vlen;
	while (*args == ' ')
		args++;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (vlen == 4 && strncasecmp(line, commands[i].verb, 4) == 0)
			return commands[i].fn(s, args);
	reply_error(s, "500 5.5.2 Error: command not recognized");
	return STEP_NEXT;
}

/* One command read and answered. */
static enum step
step_once(struct session *s)
{
	int got = read_command(s);

	if (got == 0)
		return ferror(s->in) ? STEP_IOERR : STEP_EOF;
	if (got < 0) {
		reply_error(s, "500 5.5.0 Error: line too long");
		return STEP_NEXT;
	}
	return dispatch(s);
}

int
bsmtp_run(FILE *in, FILE *out, const char *hostname,
    const struct bsmtp_ops *ops, void *ctx)
{
	struct session s;
	enum step step = STEP_NEXT;
	int rc;

	memset(&s, 0, sizeof(s));
	s.in = in;
	s.out = out;
	s.host = hostname != NULL ? hostname : "localhost";
	s.ops = ops;
	s.ctx = ctx;
	reply(&s, "220 %s ESMTP bearmail", s.host);
	while (step == STEP_NEXT && !ferror(out) && s.errors < MAX_ERRORS)
		step = step_once(&s);
	if (step == STEP_NEXT && s.errors >= MAX_ERRORS)
		reply(&s, "421 4.7.0 %s Error: too many errors", s.host);
	reset_txn(&s);
	if (step == STEP_IOERR || fflush(out) != 0 || ferror(out))
		rc = EX_IOERR;
	else
		rc = step == STEP_QUIT ? 0 : EX_PROTOCOL;
	return rc;
}
