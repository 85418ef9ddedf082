/*
 * message - spooling (RFC 5321 4.5.2 canonical input, via canon), the -t
 * recipients (RFC 5322 3.6.3 destination fields, 3.6.6 resent fields) and
 * header completion: Bcc removal, Date (3.3), Message-ID (3.6.4), From and
 * the account's From policy (3.6.2: From, Sender, Reply-To); then the
 * line limit (RFC 5321 4.5.3.1.6), through mime, when a line passes it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "canon.h"
#include "message.h"
#include "mime.h"

#define SPOOL_CHUNK (64 * 1024)

enum { POLICY_REWRITE, POLICY_KEEP, POLICY_REJECT };

/* ------------------------------------------------------------ spooling */

static int
open_spool(const char *dir, int *fd, struct bm_err *e)
{
	char *path;
	int saved;

#ifdef O_TMPFILE
	if ((*fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
		return 0;
#endif
	path = xasprintf("%s/bearmail.XXXXXX", dir);
	*fd = mkostemp(path, O_CLOEXEC);
	saved = errno;
	if (*fd >= 0)
		unlink(path);
	free(path);
	if (*fd < 0)
		return err_set(e, EX_CANTCREAT, "cannot create a spool file in "
		    "%s: %s", dir, strerror(saved));
	return 0;
}

static int
spool_write(int fd, const char *p, size_t n, const char *dir,
    struct bm_err *e)
{
	if (write_all(fd, p, n) == 0)
		return 0;
	if (errno == ENOSPC || errno == EDQUOT)
		return err_set(e, EX_CANTCREAT, "cannot spool the message in "
		    "%s: %s", dir, strerror(errno));
	return err_set(e, EX_IOERR, "cannot write the spool file in %s: %s",
	    dir, strerror(errno));
}

/* Write out's bytes to the spool and account for them. */
static int
spool_out(struct message *m, struct buf *out, const char *dir,
    struct bm_err *e)
{
	int r;

	if (!m->eightbit)
		m->eightbit = mem_has_8bit(out->data, out->len);
	r = spool_write(m->fd, out->data, out->len, dir, e);
	m->size += (long long)out->len;
	buf_reset(out);
	return r;
}

static int
copy_in(struct message *m, int in_fd, int ignore_dots, const char *dir,
    struct bm_err *e)
{
	char *chunk = xmalloc(SPOOL_CHUNK);
	struct buf out = BUF_INIT;
	struct canon c;
	ssize_t n;
	int r = 0, ended = 0;

	canon_init(&c, ignore_dots);
	while (!ended && (n = read(in_fd, chunk, SPOOL_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(e, EX_IOERR, "cannot read the message: %s",
			    strerror(errno));
			goto out;
		}
		ended = canon_feed(&c, chunk, (size_t)n, &out);
		if ((r = spool_out(m, &out, dir, e)) != 0)
			goto out;
	}
	canon_finish(&c, &out);
	r = spool_out(m, &out, dir, e);
out:
	m->longest = (long long)c.longest;
	buf_free(&out, 0);
	free(chunk);
	return r;
}

/* Whether the header block ends inside the first n bytes of p. */
static int
header_ends(const char *p, size_t n)
{
	return (n >= 2 && p[0] == '\r' && p[1] == '\n') ||
	    memmem(p, n, "\r\n\r\n", 4) != NULL;
}

/* Read the start of the spool back until the header's end is in it. */
static int
read_head(struct message *m, struct buf *b, struct bm_err *e)
{
	char *chunk = xmalloc(SPOOL_CHUNK);
	ssize_t n;
	int r = 0;

	while ((long long)b->len < m->size && b->len < MSG_HEADER_MAX &&
	    !header_ends(b->data, b->len)) {
		n = pread(m->fd, chunk, SPOOL_CHUNK, (off_t)b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = err_set(e, EX_IOERR, "cannot read the spool file "
			    "back: %s", n < 0 ? strerror(errno) : "short file");
			break;
		}
		buf_add(b, chunk, (size_t)n);
	}
	free(chunk);
	return r;
}

/* The end of the last complete line in p (0 when there is none). */
static size_t
complete_lines(const char *p, size_t n)
{
	while (n >= 2 && !(p[n - 2] == '\r' && p[n - 1] == '\n'))
		n--;
	return n >= 2 ? n : 0;
}

/*
 * Parse the header from the start of the spool.  When only part of it
 * could be read (the limit), the partial last line is left out: a header
 * that has not ended by then is too large.
 */
static int
parse_head(struct message *m, struct bm_err *e)
{
	struct buf b = BUF_INIT;
	size_t consumed = 0, full;
	int r, cut;

	buf_add(&b, "", 0);
	if ((r = read_head(m, &b, e)) != 0)
		goto out;
	cut = (long long)b.len < m->size && !header_ends(b.data, b.len);
	full = cut ? complete_lines(b.data, b.len) : b.len;
	hdr_parse(b.data, full ? full : b.len, &m->hdrs, &consumed);
	if (cut && (full == 0 ? m->hdrs.n > 0 : consumed == full)) {
		r = err_set(e, EX_DATAERR, "the message header is larger than "
		    "%d bytes", MSG_HEADER_MAX);
		goto out;
	}
	if (memchr(b.data, '\0', consumed) != NULL) {
		r = err_set(e, EX_DATAERR, "the message header contains a NUL "
		    "byte");
		goto out;
	}
	m->body_off = (long long)consumed;
	m->body_len = m->size - m->body_off;
out:
	buf_free(&b, 0);
	return r;
}

int
msg_spool(struct message *m, int in_fd, int ignore_dots,
    const char *spool_dir, struct bm_err *e)
{
	int r;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->spool_dir = xstrdup(spool_dir);
	if ((r = open_spool(spool_dir, &m->fd, e)) != 0)
		return r;
	if ((r = copy_in(m, in_fd, ignore_dots, spool_dir, e)) != 0)
		return r;
	return parse_head(m, e);
}

/* ---------------------------------------------------------- recipients */

static int
is_resent(const struct hdr *h)
{
	return str_has_prefix_ci(h->name, "Resent-");
}

static int
is_rcpt_field(const struct hdr *h, const char *prefix)
{
	static const char *const names[] = { "To", "Cc", "Bcc" };
	size_t i, pl = strlen(prefix);

	if (strncasecmp(h->name, prefix, pl) != 0)
		return 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(h->name + pl, names[i]) == 0)
			return 1;
	return 0;
}

/* The end of the Resent- block starting at i: a second Resent-Date or
 * Resent-From, or any other field, starts the next one. */
static size_t
resent_block_end(const struct hdrs *h, size_t i)
{
	int date = 0, from = 0;

	for (; i < h->n && is_resent(&h->v[i]); i++) {
		if (strcasecmp(h->v[i].name, "Resent-Date") == 0 && date++)
			break;
		if (strcasecmp(h->v[i].name, "Resent-From") == 0 && from++)
			break;
	}
	return i;
}

/* The first Resent- block with recipients: [*from, *to); 0 if none. */
static int
find_resent_block(const struct hdrs *h, size_t *from, size_t *to)
{
	size_t i = 0, j, k;

	while (i < h->n) {
		if (!is_resent(&h->v[i])) {
			i++;
			continue;
		}
		j = resent_block_end(h, i);
		for (k = i; k < j; k++)
			if (is_rcpt_field(&h->v[k], "Resent-")) {
				*from = i;
				*to = j;
				return 1;
			}
		i = j;
	}
	return 0;
}

static int
add_field_addrs(const struct hdr *f, struct addr_list *out, struct bm_err *e)
{
	struct addr_list l = ADDR_LIST_INIT;
	char *v = hdr_unfold(f->value);
	size_t i;
	int r = 0;

	if (addr_parse_list(v, &l) != 0) {
		r = err_set(e, EX_DATAERR, "cannot parse the addresses in the "
		    "%s: header", f->name);
		goto out;
	}
	for (i = 0; i < l.n; i++)
		addr_list_add_unique(out, l.v[i].display, l.v[i].addr);
out:
	addr_list_free(&l);
	free(v);
	return r;
}

int
msg_header_recipients(struct message *m, struct addr_list *out,
    struct bm_err *e)
{
	const char *prefix = "";
	size_t i, from = 0, to = m->hdrs.n;
	int r;

	if (find_resent_block(&m->hdrs, &from, &to))
		prefix = "Resent-";
	for (i = from; i < to; i++) {
		if (!is_rcpt_field(&m->hdrs.v[i], prefix))
			continue;
		if ((r = add_field_addrs(&m->hdrs.v[i], out, e)) != 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------ completion */

static void
add_date(struct hdrs *h, time_t now)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	long off;
	char *v;

	localtime_r(&now, &tm);
	off = tm.tm_gmtoff / 60;
	v = xasprintf("%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
	hdr_append(h, "Date", v);
	free(v);
}

/* The domain for Message-ID and bare local parts. */
static const char *
policy_domain(const struct msg_policy *p)
{
	const char *d;
	char *probe;
	int good = 0;

	if (p->domain != NULL && *p->domain != '\0') {
		probe = xasprintf("x@%s", p->domain);
		good = addr_valid_mailbox(probe, 0);
		free(probe);
		if (good)
			return p->domain;
	}
	if (p->account_addr && (d = addr_domain(p->account_addr)) && *d)
		return d;
	return "localhost";
}

static void
add_message_id(struct hdrs *h, const struct msg_policy *p)
{
	unsigned char rnd[16];
	char hex[sizeof(rnd) * 2 + 1];
	size_t i;
	char *v;

	random_bytes(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++) {
		hex[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[rnd[i] & 15];
	}
	hex[sizeof(hex) - 1] = '\0';
	v = xasprintf("<%s.%lld@%s>", hex, (long long)p->now,
	    policy_domain(p));
	hdr_append(h, "Message-ID", v);
	free(v);
}

static int
may_send_as(const struct msg_policy *p, const char *addr)
{
	if (p->may_send_as != NULL)
		return p->may_send_as(p->ctx, addr) != 0;
	return p->account_addr != NULL && strcasecmp(p->account_addr, addr) == 0;
}

/* The first mailbox of field f, a bare local part qualified; 0 or -1. */
static int
first_mailbox(const struct hdr *f, const struct msg_policy *p, char **addr,
    char **display)
{
	struct addr_list l = ADDR_LIST_INIT;
	char *v = hdr_unfold(f->value);
	int r = -1;

	if (addr_parse_list(v, &l) == 0 && l.n > 0) {
		*addr = addr_domain(l.v[0].addr) ? xstrdup(l.v[0].addr) :
		    xasprintf("%s@%s", l.v[0].addr, policy_domain(p));
		*display = l.v[0].display ? xstrdup(l.v[0].display) : NULL;
		r = 0;
	}
	addr_list_free(&l);
	free(v);
	return r;
}

static void
set_from(struct hdrs *h, const struct msg_policy *p, const char *display)
{
	char *v = addr_format(display, p->account_addr);

	hdr_set(h, "From", v);
	free(v);
}

static int
reject(const struct msg_policy *p, const char *field, const char *addr,
    struct bm_err *e)
{
	return err_set(e, EX_NOPERM, "%s: %s is not an address %s may send "
	    "as (from_policy reject)", field, addr, p->account_addr);
}

static int
from_policy(struct hdrs *h, const struct msg_policy *p, struct bm_err *e)
{
	struct hdr *f = hdr_get(h, "From");
	char *addr = NULL, *display = NULL;
	int r = 0;

	if (first_mailbox(f, p, &addr, &display) != 0) {
		if (p->policy == POLICY_REJECT)
			return err_set(e, EX_DATAERR, "the From: header "
			    "cannot be parsed");
		if (p->policy == POLICY_REWRITE)
			set_from(h, p, p->fullname);
		return 0;
	}
	if (may_send_as(p, addr) || p->policy == POLICY_KEEP)
		goto out;
	if (p->policy == POLICY_REJECT) {
		r = reject(p, "From", addr, e);
		goto out;
	}
	set_from(h, p, display ? display : p->fullname);
	if (hdr_get(h, "Reply-To") == NULL)
		hdr_append(h, "Reply-To", addr);
out:
	free(addr);
	free(display);
	return r;
}

static int
sender_policy(struct hdrs *h, const struct msg_policy *p, struct bm_err *e)
{
	struct hdr *f = hdr_get(h, "Sender");
	char *addr = NULL, *display = NULL;
	int r = 0;

	if (f == NULL || p->policy == POLICY_KEEP)
		return 0;
	if (first_mailbox(f, p, &addr, &display) == 0 && may_send_as(p, addr))
		goto out;
	if (p->policy == POLICY_REJECT)
		r = reject(p, "Sender", addr ? addr : "(unparseable)", e);
	else
		hdr_remove_all(h, "Sender");
out:
	free(addr);
	free(display);
	return r;
}

/* From is missing, or holds nothing. */
static int
from_missing(struct hdrs *h)
{
	struct hdr *f = hdr_get(h, "From");
	char *v;
	int empty;

	if (f == NULL)
		return 1;
	v = hdr_unfold_trim(f->value);
	empty = *v == '\0';
	free(v);
	return empty;
}

/* The body again, with the parts that have long lines re-encoded: into
 * a new spool file, which replaces the old one. */
static int
reencode(struct message *m, struct bm_err *e)
{
	struct mime_plan *plan;
	long long len;
	int fd = -1, r, eightbit;

	if ((r = mime_plan(&m->hdrs, m->fd, m->body_off, m->body_len, &plan,
	    e)) != 0 || plan == NULL)
		return r;
	if ((r = open_spool(m->spool_dir, &fd, e)) != 0 ||
	    (r = mime_apply(plan, &m->hdrs, fd, &len, &eightbit, e)) != 0) {
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(m->fd);
	m->fd = fd;
	m->body_off = 0;
	m->body_len = m->size = len;
	m->eightbit = eightbit;
	m->longest = 0;
out:
	mime_plan_free(plan);
	return r;
}

int
msg_complete(struct message *m, const struct msg_policy *p, struct bm_err *e)
{
	struct buf b = BUF_INIT;
	int r;

	if (p->account_addr == NULL)
		return err_set(e, EX_SOFTWARE, "msg_complete: no account "
		    "address");
	hdr_remove_all(&m->hdrs, "Bcc");
	hdr_remove_all(&m->hdrs, "Resent-Bcc");
	if (hdr_get(&m->hdrs, "Date") == NULL)
		add_date(&m->hdrs, p->now);
	if (hdr_get(&m->hdrs, "Message-ID") == NULL)
		add_message_id(&m->hdrs, p);
	if (from_missing(&m->hdrs))
		set_from(&m->hdrs, p, p->fullname);
	if ((r = from_policy(&m->hdrs, p, e)) != 0 ||
	    (r = sender_policy(&m->hdrs, p, e)) != 0 ||
	    (r = mime_fold_header(&m->hdrs, e)) != 0)
		return r;
	/* the spooler measured every line: usually nothing to look at */
	if (m->longest > MIME_LINE_MAX && (r = reencode(m, e)) != 0)
		return r;
	hdr_write(&m->hdrs, &b);
	free(m->head);
	m->head_len = b.len;
	m->head = buf_steal(&b);
	if (mem_has_8bit(m->head, m->head_len))
		m->eightbit = 1;
	return 0;
}

const char *
msg_message_id(struct message *m)
{
	struct hdr *f = hdr_get(&m->hdrs, "Message-ID");

	free(m->msgid);
	m->msgid = f ? hdr_unfold_trim(f->value) : NULL;
	return m->msgid;
}

void
msg_free(struct message *m)
{
	if (m->fd >= 0)
		close(m->fd);
	hdr_free(&m->hdrs);
	free(m->head);
	free(m->msgid);
	free(m->spool_dir);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}
