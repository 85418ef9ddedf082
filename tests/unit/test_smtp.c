/*
 * test_smtp - the SMTP client's parsers and encoders: reply lines, EHLO
 * extensions, base64/base64url, the XOAUTH2 and OAUTHBEARER responses,
 * xtext, dot-stuffing across chunk boundaries; and, against scripted
 * servers on loopback, line reading, the discarding of bytes received
 * before STARTTLS, and the exact bytes of whole sessions.
 */
#include "config.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"
#include "net.h"
#include "smtp.h"
#include "util.h"
#include "tests/unit/tap.h"

/* ------------------------------------------------------ reply lines */

static const struct {
	const char *line;
	int rc, code, cont;
	const char *enh, *text;
} lines[] = {
	{ "250 OK", 0, 250, 0, "", "OK" },
	{ "250-SIZE 36700160", 0, 250, 1, "", "SIZE 36700160" },
	{ "250 2.0.0 OK", 0, 250, 0, "2.0.0", "OK" },
	{ "550 5.1.1 User unknown", 0, 550, 0, "5.1.1", "User unknown" },
	{ "535 5.7.139 Authentication unsuccessful", 0, 535, 0, "5.7.139",
	  "Authentication unsuccessful" },
	{ "451-4.3.0 first", 0, 451, 1, "4.3.0", "first" },
	{ "250 2.0.0", 0, 250, 0, "2.0.0", "" },
	{ "250", 0, 250, 0, "", "" },
	{ "250 ", 0, 250, 0, "", "" },
	{ "250-", 0, 250, 1, "", "" },
	{ "220 mail.example.com ESMTP", 0, 220, 0, "", "mail.example.com ESMTP" },
	{ "250 8BITMIME", 0, 250, 0, "", "8BITMIME" },
	{ "550 4.1.1 class mismatch stays text", 0, 550, 0, "",
	  "4.1.1 class mismatch stays text" },
	{ "250 2.0 too short", 0, 250, 0, "", "2.0 too short" },
	{ "250 2.1234.0 too long", 0, 250, 0, "", "2.1234.0 too long" },
	{ "250 2.0.0x glued", 0, 250, 0, "", "2.0.0x glued" },
	{ "334 ", 0, 334, 0, "", "" },
	{ "334 eyJzdGF0dXMiOiI0MDEifQ==", 0, 334, 0, "",
	  "eyJzdGF0dXMiOiI0MDEifQ==" },
	{ "199 too low", -1, 0, 0, NULL, NULL },
	{ "600 too high", -1, 0, 0, NULL, NULL },
	{ "099 zero", -1, 0, 0, NULL, NULL },
	{ "25 short", -1, 0, 0, NULL, NULL },
	{ "25", -1, 0, 0, NULL, NULL },
	{ "", -1, 0, 0, NULL, NULL },
	{ "250OK", -1, 0, 0, NULL, NULL },
	{ "250_OK", -1, 0, 0, NULL, NULL },
	{ "abc def", -1, 0, 0, NULL, NULL },
	{ "HTTP/1.1 400 Bad Request", -1, 0, 0, NULL, NULL },
	{ "2500 OK", -1, 0, 0, NULL, NULL },
	{ " 250 OK", -1, 0, 0, NULL, NULL },
};

static void
test_parse_line(void)
{
	const char *text;
	char enh[16];
	size_t i;
	int rc, code, cont;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		code = cont = -7;
		text = NULL;
		rc = smtp_parse_line(lines[i].line, &code, &cont, enh, &text);
		is_int(rc, lines[i].rc, "parse_line rc \"%s\"", lines[i].line);
		if (rc != 0 || lines[i].rc != 0)
			continue;
		ok(code == lines[i].code && cont == lines[i].cont,
		    "parse_line code/cont \"%s\" (%d %d)", lines[i].line, code,
		    cont);
		is_str(enh, lines[i].enh, "parse_line enh \"%s\"",
		    lines[i].line);
		is_str(text, lines[i].text, "parse_line text \"%s\"",
		    lines[i].line);
	}
}

/* ------------------------------------------------------------- EHLO */

static const struct {
	const char *reply;
	int valid;
	const char *kw;
	int has;
	const char *param;
	long long max;
} ehlos[] = {
	{ "250-smtp.office365.com Hello [1.2.3.4]\r\n250-SIZE 36700160\r\n"
	  "250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n"
	  "250-AUTH LOGIN XOAUTH2\r\n250-8BITMIME\r\n250-BINARYMIME\r\n"
	  "250-CHUNKING\r\n250 SMTPUTF8\r\n", 1, "SIZE", 1, "36700160",
	  36700160 },
	{ "250-x\r\n250-size 100\r\n250 auth xoauth2\r\n", 1, "SIZE", 1,
	  "100", 100 },
	{ "250-x\r\n250-SIZE 100\r\n250 AUTH PLAIN XOAUTH2\r\n", 1, "auth", 1,
	  "PLAIN XOAUTH2", 100 },
	{ "250-x\r\n250-SIZE\r\n250 PIPELINING\r\n", 1, "SIZE", 1, NULL, 0 },
	{ "250-x\r\n250-SIZE abc\r\n250 PIPELINING\r\n", 1, "SIZE", 1, "abc",
	  0 },
	{ "250-x\r\n250 PIPELINING\r\n", 1, "PIPELINING", 1, NULL, 0 },
	{ "250-x\r\n250 PIPELINING\r\n", 1, "STARTTLS", 0, NULL, 0 },
	{ "250-x\r\n250 PIPELININGX\r\n", 1, "PIPELINING", 0, NULL, 0 },
	{ "250-x\r\n250-AUTH=LOGIN XOAUTH2\r\n250 AUTH PLAIN\r\n", 1, "AUTH",
	  1, "LOGIN XOAUTH2 PLAIN", 0 },
	{ "250-x\n250 STARTTLS\n", 1, "STARTTLS", 1, NULL, 0 },
	{ "250 x\r\n", 1, "x", 0, NULL, 0 },
	{ "250-x\r\n251 STARTTLS\r\n", 0, NULL, 0, NULL, 0 },
	{ "500 no\r\n", 0, NULL, 0, NULL, 0 },
	{ "250-x\r\n250-STARTTLS\r\n", 0, NULL, 0, NULL, 0 },
	{ "garbage\r\n", 0, NULL, 0, NULL, 0 },
};

static void
test_ehlo(void)
{
	struct smtp *s;
	size_t i;

	for (i = 0; i < sizeof(ehlos) / sizeof(ehlos[0]); i++) {
		s = smtp_offline(ehlos[i].reply);
		if (!ok((s != NULL) == ehlos[i].valid, "ehlo %zu valid", i) ||
		    s == NULL) {
			smtp_close(s);
			continue;
		}
		is_int(smtp_has_ext(s, ehlos[i].kw), ehlos[i].has,
		    "ehlo %zu has %s", i, ehlos[i].kw);
		is_str(smtp_ext_param(s, ehlos[i].kw), ehlos[i].param,
		    "ehlo %zu param %s", i, ehlos[i].kw);
		is_int(smtp_max_size(s), ehlos[i].max, "ehlo %zu max size", i);
		smtp_close(s);
	}
}

/* ----------------------------------------------------------- base64 */

static const struct {
	const char *in, *b64, *url;
} b64s[] = {
	/* RFC 4648 section 10 */
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
	{ "\xfb\xff\xbf", "+/+/", "-_-_" },
	{ "\x01", "AQ==", "AQ" },
};

static const struct {
	const char *in;
	int url;                    /* use base64url_decode */
} b64_bad[] = {
	{ "Zg", 0 }, { "Zg=", 0 }, { "Z===", 0 }, { "Zm9v!", 0 },
	{ "Zm 9v", 0 }, { "Zm9v\n", 0 }, { "Zh==", 0 }, { "Zm9=", 0 },
	{ "-_-_", 0 }, { "+/+/", 1 }, { "Z", 1 }, { "Zg=", 1 },
	{ "=Zg=", 0 }, { "Zg==Zg==", 0 },
};

static void
test_base64(void)
{
	unsigned char *out;
	char *enc;
	size_t i, n, len;

	for (i = 0; i < sizeof(b64s) / sizeof(b64s[0]); i++) {
		len = strlen(b64s[i].in);
		enc = base64_encode(b64s[i].in, len);
		is_str(enc, b64s[i].b64, "base64_encode %zu", i);
		free(enc);
		enc = base64url_encode(b64s[i].in, len);
		is_str(enc, b64s[i].url, "base64url_encode %zu", i);
		free(enc);
		ok(base64_decode(b64s[i].b64, &out, &n) == 0 && n == len &&
		    memcmp(out, b64s[i].in, n) == 0 && out[n] == '\0',
		    "base64_decode %zu", i);
		free(out);
		ok(base64url_decode(b64s[i].url, &out, &n) == 0 && n == len &&
		    memcmp(out, b64s[i].in, n) == 0, "base64url_decode %zu", i);
		free(out);
	}
	ok(base64url_decode("Zg==", &out, &n) == 0 && n == 1 && out[0] == 'f',
	    "base64url_decode accepts padding");
	free(out);
	for (i = 0; i < sizeof(b64_bad) / sizeof(b64_bad[0]); i++) {
		out = NULL;
		is_int(b64_bad[i].url ? base64url_decode(b64_bad[i].in, &out,
		    &n) : base64_decode(b64_bad[i].in, &out, &n), -1,
		    "base64%s_decode rejects bad input %zu", b64_bad[i].url ?
		    "url" : "", i);
		ok(out == NULL, "nothing returned for bad input %zu", i);
	}
}

/* ------------------------------------------------ SASL and xtext */

static const struct {
	int bearer;
	const char *user, *host;
	int port;
	const char *token, *want;      /* want: the decoded response */
} sasl[] = {
	{ 0, "someuser@example.com", NULL, 0, "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
	  "user=someuser@example.com\001auth=Bearer "
	  "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\001\001" },
	{ 1, "user@example.com", "server.example.com", 143,
	  "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
	  "n,a=user@example.com,\001host=server.example.com\001port=143\001"
	  "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\001\001" },
	{ 1, "a,b=c@x", "h", 587, "T",
	  "n,a=a=2Cb=3Dc@x,\001host=h\001port=587\001auth=Bearer T\001\001" },
};

static void
test_sasl(void)
{
	unsigned char *dec;
	char *blob;
	size_t i, n;

	/* Google's documented XOAUTH2 example (developers.google.com) */
	blob = smtp_xoauth2_blob("someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
	is_str(blob, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YT"
	    "I5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==",
	    "xoauth2 blob matches Google's example");
	wipe_free(blob);
	/* RFC 7628 section 4.1 */
	blob = smtp_oauthbearer_blob("user@example.com", "server.example.com",
	    143, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
	is_str(blob, "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUu"
	    "Y29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhi"
	    "SFJoZG1semRHRXVZMjl0Q2c9PQEB", "oauthbearer blob matches RFC 7628");
	wipe_free(blob);
	for (i = 0; i < sizeof(sasl) / sizeof(sasl[0]); i++) {
		blob = sasl[i].bearer ? smtp_oauthbearer_blob(sasl[i].user,
		    sasl[i].host, sasl[i].port, sasl[i].token) :
		    smtp_xoauth2_blob(sasl[i].user, sasl[i].token);
		ok(base64_decode(blob, &dec, &n) == 0 &&
		    n == strlen(sasl[i].want) &&
		    memcmp(dec, sasl[i].want, n) == 0, "sasl blob %zu", i);
		free(dec);
		wipe_free(blob);
	}
}

static const struct {
	const char *in, *want;
} xtexts[] = {
	{ "", "" },
	{ "abc123", "abc123" },
	{ "a+b=c", "a+2Bb+3Dc" },
	{ "<id@host>", "<id@host>" },
	{ "sp ace", "sp+20ace" },
	{ "\xc3\xa9", "+C3+A9" },
};

static void
test_xtext(void)
{
	char *x;
	size_t i;

	for (i = 0; i < sizeof(xtexts) / sizeof(xtexts[0]); i++) {
		x = smtp_xtext(xtexts[i].in);
		is_str(x, xtexts[i].want, "xtext \"%s\"", xtexts[i].in);
		free(x);
	}
}

/* ----------------------------------------------------- dot-stuffing */

static const struct {
	const char *in, *want;
} stuffs[] = {
	{ "", ".\r\n" },
	{ "a\r\n", "a\r\n.\r\n" },
	{ ".\r\n", "..\r\n.\r\n" },
	{ "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n" },
	{ "a\r\n..b\r\n", "a\r\n...b\r\n.\r\n" },
	{ "a.b\r\n. \r\n", "a.b\r\n.. \r\n.\r\n" },
	{ "no final newline", "no final newline\r\n.\r\n" },
	{ "ends in CR\r", "ends in CR\r\r\n.\r\n" },
	{ "Subject: x\r\n\r\n.\r\n.\r\n", "Subject: x\r\n\r\n..\r\n..\r\n.\r\n" },
	{ "\r\n", "\r\n.\r\n" },
	{ ".", "..\r\n.\r\n" },
};

/* Stuff in, fed in chunks of size chunk. */
static char *
stuff_chunked(const char *in, size_t chunk)
{
	struct smtp_dotstuff d;
	struct buf out = BUF_INIT;
	size_t n = strlen(in), off, len;

	buf_add(&out, "", 0);
	smtp_dotstuff_init(&d);
	for (off = 0; off < n; off += len) {
		len = n - off < chunk ? n - off : chunk;
		smtp_dotstuff(&d, in + off, len, &out);
	}
	smtp_dotstuff_end(&d, &out);
	return buf_steal(&out);
}

static void
test_dotstuff(void)
{
	static const size_t chunks[] = { 1, 2, 3, 5, 1000 };
	size_t i, c;
	char *got;
	int good;

	for (i = 0; i < sizeof(stuffs) / sizeof(stuffs[0]); i++) {
		good = 1;
		for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			got = stuff_chunked(stuffs[i].in, chunks[c]);
			if (strcmp(got, stuffs[i].want) != 0) {
				printf("# chunk %zu: got '%s'\n", chunks[c],
				    got);
				good = 0;
			}
			free(got);
		}
		ok(good, "dotstuff %zu in every chunking", i);
	}
}

/* A dot at the start of a line exactly at a 64 KiB boundary. */
static void
test_dotstuff_boundary(void)
{
	struct smtp_dotstuff d;
	struct buf out = BUF_INIT;
	size_t n = 65536;
	char *a = xmalloc(n);

	memset(a, 'x', n);
	a[n - 2] = '\r';
	a[n - 1] = '\n';
	smtp_dotstuff_init(&d);
	smtp_dotstuff(&d, a, n, &out);
	smtp_dotstuff(&d, ".\r\n", 3, &out);
	smtp_dotstuff_end(&d, &out);
	ok(out.len == n + 4 + 3 && memcmp(out.data + n, "..\r\n.\r\n", 7) == 0,
	    "dot after a chunk that ends in CRLF is stuffed");
	buf_free(&out, 0);
	free(a);
}

/* ------------------------------------------------- loopback servers */

static int
listen_loopback(int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(fd, 1) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static void
test_net(void)
{
	struct buf line = BUF_INIT;
	struct bm_err e = { 0 };
	struct net *n = NULL;
	int lfd, sfd, port, rc;
	const char *inject = "220 go ahead\r\n250-evil\nmore";

	if ((lfd = listen_loopback(&port)) < 0 ||
	    net_connect(&n, "127.0.0.1", port, 5, &e) != 0 ||
	    (sfd = accept(lfd, NULL, NULL)) < 0) {
		ok(0, "loopback connection: %s", e.msg);
		return;
	}
	write(sfd, inject, strlen(inject));
	ok(net_readline(n, &line, net_deadline(5), &e) == 0, "net_readline CRLF");
	is_str(line.data, "220 go ahead", "CRLF stripped");
	ok(net_readline(n, &line, net_deadline(5), &e) == 0, "net_readline bare LF");
	is_str(line.data, "250-evil", "bare LF stripped");
	is_int((long long)net_buffered(n), 4, "the rest is buffered");
	rc = net_readline(n, &line, net_deadline(1), &e);
	ok(rc == EX_TEMPFAIL && strstr(e.msg, "timed out") &&
	    strstr(e.msg, "127.0.0.1:"), "a silent server times out: %s",
	    e.msg);
	close(sfd);
	rc = net_starttls(n, "127.0.0.1", NULL, 5, &e);
	is_int(rc, EX_TEMPFAIL, "TLS with a closed peer fails: %s", e.msg);
	is_int((long long)net_buffered(n), 0,
	    "STARTTLS discarded the plaintext bytes");
	net_close(n);
	close(lfd);
	buf_free(&line, 0);
	rc = net_connect(&n, "127.0.0.1", port, 5, &e);
	ok(rc == EX_TEMPFAIL && strstr(e.msg, "refused"),
	    "connection refused: %s", e.msg);
}

/*
 * A scripted server: for each step read one line (or, with data set, the
 * message data up to the final dot), then send the reply ("" closes the
 * connection).  Everything read goes back to the parent through out_fd.
 */
struct step {
	const char *reply;
	int data;                  /* read message data instead of a line */
};

static void
serve(int lfd, const char *greeting, const struct step *steps, int out_fd)
{
	struct buf got = BUF_INIT;
	char c;
	int fd = accept(lfd, NULL, NULL);
	size_t start;

	write(fd, greeting, strlen(greeting));
	for (; steps->reply; steps++) {
		start = got.len;
		while (read(fd, &c, 1) == 1) {
			buf_addc(&got, c);
			if (c == '\n' && (!steps->data || (got.len - start >= 5 &&
			    memcmp(got.data + got.len - 5, "\r\n.\r\n", 5) == 0)))
				break;
		}
		if (steps->reply[0] == '\0')
			shutdown(fd, SHUT_WR);
		else
			write(fd, steps->reply, strlen(steps->reply));
	}
	while (read(fd, &c, 1) == 1)
		buf_addc(&got, c);
	write(out_fd, got.data, got.len);
	_exit(0);
}

/* An unlinked temporary file holding content. */
static int
body_file(const char *content)
{
	char tmpl[] = "/tmp/test_smtp.XXXXXX";
	int fd = mkstemp(tmpl);

	unlink(tmpl);
	if (write(fd, content, strlen(content)) != (ssize_t)strlen(content))
		return -1;
	return fd;
}

static struct smtp_rcpt rcpts[2];
static struct smtp_txn txn;

/* Open a plain (or STARTTLS-requiring) session to port, authenticate
 * when token is set, send txn. */
static int
client(int port, enum tls_mode tls, const char *token, struct bm_err *e)
{
	struct smtp_opts o;
	struct smtp *s;
	int rc;

	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = port;
	o.tls = tls;
	o.timeout = 5;
	o.helo_name = "client.test";
	if ((rc = smtp_open(&s, &o, e)) != 0)
		return rc;
	if (token == NULL || (rc = smtp_auth(s, AUTH_XOAUTH2, "u@x", token,
	    e)) == 0)
		rc = smtp_send(s, &txn, e);
	smtp_close(s);
	return rc;
}

static void
txn_setup(const char *sender, const char *body, long long body_len)
{
	memset(&txn, 0, sizeof(txn));
	memset(rcpts, 0, sizeof(rcpts));
	rcpts[0].addr = "b@x";
	rcpts[0].notify = "FAILURE";
	rcpts[1].addr = "c@x";
	txn.sender = sender;
	txn.rcpts = rcpts;
	txn.nrcpts = 2;
	txn.eightbit = 1;
	txn.dsn_ret = "hdrs";
	txn.dsn_envid = "id+1";
	txn.head = "S: x\r\n\r\n";
	txn.head_len = 8;
	txn.body_fd = body_file(body);
	txn.body_off = 2;
	txn.body_len = body_len;
}

#define EHLO_PIPE "250-srv\r\n250-PIPELINING\r\n250-DSN\r\n250-8BITMIME\r\n" \
	"250 SIZE 1000\r\n"
#define BODY "xx.a\r\nb\r\n..\r\nyy"

static const struct {
	const char *name;
	enum tls_mode tls;
	const char *token, *sender;
	long long body_len;
	struct step steps[8];
	int rc;
	const char *wire, *msg;
	int codes[2];              /* the recipients' results */
	size_t accepted;
} sessions[] = {
	{ "pipelined, one recipient refused", TLS_OFF, NULL, "a@x", 11,
	  { { EHLO_PIPE, 0 }, { "250 2.1.0 ok\r\n", 0 },
	    { "250 2.1.5 ok\r\n", 0 }, { "550 5.1.1 User unknown\r\n", 0 },
	    { "354 go\r\n", 0 }, { "250 2.0.0 queued\r\n", 1 },
	    { "221 bye\r\n", 0 }, { NULL, 0 } }, 0,
	  "EHLO client.test\r\n"
	  "MAIL FROM:<a@x> SIZE=19 BODY=8BITMIME RET=HDRS ENVID=id+2B1\r\n"
	  "RCPT TO:<b@x> NOTIFY=FAILURE\r\nRCPT TO:<c@x>\r\nDATA\r\n"
	  "S: x\r\n\r\n..a\r\nb\r\n...\r\n.\r\nQUIT\r\n", "", { 250, 550 }, 1 },
	{ "pipelined, nobody accepted: RSET", TLS_OFF, NULL, "", 11,
	  { { EHLO_PIPE, 0 }, { "250 ok\r\n", 0 }, { "550 5.1.1 no\r\n", 0 },
	    { "450 4.2.1 later\r\n", 0 }, { "554 5.5.1 no recipients\r\n", 0 },
	    { "250 reset\r\n", 0 }, { "221 bye\r\n", 0 }, { NULL, 0 } },
	  EX_TEMPFAIL,
	  "EHLO client.test\r\n"
	  "MAIL FROM:<> SIZE=19 BODY=8BITMIME RET=HDRS ENVID=id+2B1\r\n"
	  "RCPT TO:<b@x> NOTIFY=FAILURE\r\nRCPT TO:<c@x>\r\nDATA\r\n"
	  "RSET\r\nQUIT\r\n",
	  "all 2 recipients refused, first c@x (450 4.2.1 later)",
	  { 550, 450 }, 0 },
	{ "one at a time, nobody accepted: no DATA", TLS_OFF, NULL, "a@x", 11,
	  { { "250-srv\r\n250 SIZE\r\n", 0 }, { "250 ok\r\n", 0 },
	    { "550 5.1.1 no\r\n", 0 }, { "550 5.1.1 no\r\n", 0 },
	    { "250 reset\r\n", 0 }, { "221 bye\r\n", 0 }, { NULL, 0 } },
	  EX_NOUSER,
	  "EHLO client.test\r\nMAIL FROM:<a@x> SIZE=19\r\n"
	  "RCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nRSET\r\nQUIT\r\n",
	  "all 2 recipients refused, first b@x (550 5.1.1 no)", { 550, 550 },
	  0 },
	{ "sender refused", TLS_OFF, NULL, "a@x", 11,
	  { { "250 srv\r\n", 0 },
	    { "550 5.7.60 Client does not have permissions to send as this "
	      "sender\r\n", 0 }, { "250 reset\r\n", 0 }, { "221 bye\r\n", 0 },
	    { NULL, 0 } }, EX_NOPERM,
	  "EHLO client.test\r\nMAIL FROM:<a@x>\r\nRSET\r\nQUIT\r\n",
	  "sender <a@x> refused (550 5.7.60", { 550, 550 }, 0 },
	{ "message refused after the dot", TLS_OFF, NULL, "a@x", 11,
	  { { "250 srv\r\n", 0 }, { "250 ok\r\n", 0 }, { "250 ok\r\n", 0 },
	    { "250 ok\r\n", 0 }, { "354 go\r\n", 0 },
	    { "554 5.6.0 Corrupt message\r\n", 1 }, { "221 bye\r\n", 0 },
	    { NULL, 0 } }, EX_DATAERR,
	  "EHLO client.test\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n"
	  "RCPT TO:<c@x>\r\nDATA\r\nS: x\r\n\r\n..a\r\nb\r\n...\r\n.\r\n"
	  "QUIT\r\n", "message refused (554 5.6.0 Corrupt message)",
	  { 554, 554 }, 2 },
	{ "connection lost after the dot", TLS_OFF, NULL, "a@x", 11,
	  { { "250 srv\r\n", 0 }, { "250 ok\r\n", 0 }, { "250 ok\r\n", 0 },
	    { "250 ok\r\n", 0 }, { "354 go\r\n", 0 }, { "", 1 },
	    { NULL, 0 } }, EX_TEMPFAIL,
	  "EHLO client.test\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n"
	  "RCPT TO:<c@x>\r\nDATA\r\nS: x\r\n\r\n..a\r\nb\r\n...\r\n.\r\n",
	  "connection closed by server", { 0, 0 }, 2 },
	{ "STARTTLS required, not offered: nothing sent", TLS_STARTTLS,
	  "t", "a@x", 11,
	  { { "250-srv\r\n250 AUTH XOAUTH2\r\n", 0 }, { "221 bye\r\n", 0 },
	    { NULL, 0 } }, EX_TEMPFAIL, "EHLO client.test\r\nQUIT\r\n",
	  "server does not offer STARTTLS", { 0, 0 }, 0 },
	{ "AUTH error challenge answered, 535", TLS_OFF, "t", "a@x", 11,
	  { { "250-srv\r\n250 AUTH PLAIN XOAUTH2\r\n", 0 },
	    { "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n", 0 },
	    { "535 5.7.3 Authentication unsuccessful\r\n", 0 },
	    { "221 bye\r\n", 0 }, { NULL, 0 } }, EX_NOPERM,
	  "EHLO client.test\r\nAUTH XOAUTH2 dXNlcj11QHgBYXV0aD1CZWFyZXIgdAEB"
	  "\r\n\r\nQUIT\r\n",
	  "authentication failed (535 5.7.3 Authentication unsuccessful)",
	  { 0, 0 }, 0 },
	{ "too big for SIZE: nothing sent", TLS_OFF, NULL, "a@x", 11,
	  { { "250-srv\r\n250 SIZE 10\r\n", 0 }, { "221 bye\r\n", 0 },
	    { NULL, 0 } }, EX_DATAERR, "EHLO client.test\r\nQUIT\r\n",
	  "message is 19 bytes, the server accepts at most 10", { 0, 0 }, 0 },
	{ "CR LF in the sender: nothing sent", TLS_OFF, NULL,
	  "a@x>\r\nRCPT TO:<evil@x", 11,
	  { { "250 srv\r\n", 0 }, { "221 bye\r\n", 0 }, { NULL, 0 } },
	  EX_USAGE, "EHLO client.test\r\nQUIT\r\n", "line break", { 0, 0 },
	  0 },
	{ "greeting 554", TLS_OFF, NULL, "a@x", 11,
	  { { "221 bye\r\n", 0 }, { NULL, 0 } }, EX_UNAVAILABLE,
	  "QUIT\r\n", "greeting refused (554 5.3.2 go away)", { 0, 0 }, 0 },
};

static void
run_session(size_t i)
{
	struct bm_err e = { 0 };
	char wire[4096];
	int lfd, port, p[2], rc;
	ssize_t n;
	pid_t pid;

	if ((lfd = listen_loopback(&port)) < 0 || pipe(p) != 0) {
		ok(0, "scripted server set up");
		return;
	}
	if ((pid = fork()) == 0)
		serve(lfd, strstr(sessions[i].name, "greeting") ?
		    "554 5.3.2 go away\r\n" : "220 srv ESMTP\r\n",
		    sessions[i].steps, p[1]);
	close(p[1]);
	txn_setup(sessions[i].sender, BODY, sessions[i].body_len);
	rc = client(port, sessions[i].tls, sessions[i].token, &e);
	close(txn.body_fd);
	is_int(rc, sessions[i].rc, "%s: rc (%s)", sessions[i].name, e.msg);
	ok(strstr(rc ? e.msg : "", sessions[i].msg) != NULL,
	    "%s: message", sessions[i].name);
	ok(rcpts[0].code == sessions[i].codes[0] &&
	    rcpts[1].code == sessions[i].codes[1] &&
	    txn.accepted == sessions[i].accepted,
	    "%s: results %d %d, accepted %zu", sessions[i].name,
	    rcpts[0].code, rcpts[1].code, txn.accepted);
	smtp_txn_clear(&txn);
	n = read(p[0], wire, sizeof(wire) - 1);
	wire[n > 0 ? n : 0] = '\0';
	is_str(wire, sessions[i].wire, "%s: bytes on the wire",
	    sessions[i].name);
	close(p[0]);
	close(lfd);
	waitpid(pid, NULL, 0);
}

static void
test_sessions(void)
{
	size_t i;

	for (i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++)
		run_session(i);
}

/* Two messages on one connection, RSET between them (what a queue run
 * does): both delivered, the second transaction clean. */
static void
test_two_messages(void)
{
	static const struct step steps[] = {
		{ EHLO_PIPE, 0 }, { "250 ok\r\n", 0 }, { "250 ok\r\n", 0 },
		{ "250 ok\r\n", 0 }, { "354 go\r\n", 0 },
		{ "250 2.0.0 first\r\n", 1 }, { "250 reset\r\n", 0 },
		{ "250 ok\r\n", 0 }, { "250 ok\r\n", 0 },
		{ "550 5.1.1 gone\r\n", 0 }, { "354 go\r\n", 0 },
		{ "250 2.0.0 second\r\n", 1 }, { "221 bye\r\n", 0 },
		{ NULL, 0 } };
	struct bm_err e = { 0 };
	struct smtp_opts o;
	struct smtp *s = NULL;
	char wire[4096];
	int lfd, port, p[2], rc1 = -1, rc2 = -1, rs = -1;
	ssize_t n;
	pid_t pid;

	if ((lfd = listen_loopback(&port)) < 0 || pipe(p) != 0) {
		ok(0, "scripted server set up");
		return;
	}
	if ((pid = fork()) == 0)
		serve(lfd, "220 srv ESMTP\r\n", steps, p[1]);
	close(p[1]);
	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = port;
	o.tls = TLS_OFF;
	o.timeout = 5;
	o.helo_name = "client.test";
	if (smtp_open(&s, &o, &e) == 0) {
		txn_setup("a@x", BODY, 11);
		rc1 = smtp_send(s, &txn, &e);
		close(txn.body_fd);
		smtp_txn_clear(&txn);
		rs = smtp_rset(s, &e);
		txn_setup("a@x", BODY, 11);
		rc2 = smtp_send(s, &txn, &e);
		close(txn.body_fd);
	}
	smtp_close(s);
	is_int(rc1, 0, "two messages: the first delivered");
	is_int(rs, 0, "two messages: RSET between them");
	is_int(rc2, 0, "two messages: the second delivered (%s)", e.msg);
	ok(rcpts[0].code == 250 && rcpts[1].code == 550 && txn.accepted == 1,
	    "two messages: the second's own per-recipient results");
	is_str(txn.data.text, "second", "two messages: the second's reply");
	smtp_txn_clear(&txn);
	n = read(p[0], wire, sizeof(wire) - 1);
	wire[n > 0 ? n : 0] = '\0';
	ok(strstr(wire, "\r\n.\r\nRSET\r\nMAIL FROM:<a@x>") != NULL &&
	    strstr(wire, "\r\n.\r\nQUIT\r\n") != NULL,
	    "two messages: RSET then a fresh MAIL on the same connection");
	close(p[0]);
	close(lfd);
	waitpid(pid, NULL, 0);
}

int
main(void)
{
	test_parse_line();
	test_ehlo();
	test_base64();
	test_sasl();
	test_xtext();
	test_dotstuff();
	test_dotstuff_boundary();
	signal(SIGPIPE, SIG_IGN);
	test_net();
	test_sessions();
	test_two_messages();
	return done_testing();
}
