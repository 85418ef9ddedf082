/*
 * log - delivery records in the spirit of Postfix's "to=<...>, relay=...,
 * delay=..., status=sent (250 ...)" lines, to syslog's mail facility, to
 * stderr, or appended to a file the account names.  A log file that is a
 * FIFO, a directory, a link or cannot be written is refused with one line
 * on stderr, and syslog takes its place.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_target target = LOG_TO_SYSLOG;
static char *log_path;
static char *refused_path;	/* a log file refused: syslog instead */
static int syslog_open;

void
log_setup(const struct account *a)
{
	free(log_path);
	log_path = NULL;
	target = a ? a->log : LOG_TO_SYSLOG;
	if (target == LOG_TO_FILE && a->log_file != NULL &&
	    (refused_path == NULL || strcmp(refused_path, a->log_file) != 0))
		log_path = xstrdup(a->log_file);
	else if (target == LOG_TO_FILE)
		target = LOG_TO_SYSLOG;
}

char *
log_sanitize(const char *s)
{
	return str_printable(xstrdup(s ? s : ""), '?');
}

/* Why path cannot be the log (err: open's or write's errno). */
static char *
refusal(const char *path, int err)
{
	struct stat st;

	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return xasprintf("it is %s, not a regular file",
		    file_kind(st.st_mode));
	if (lstat(path, &st) == 0 && st.st_nlink > 1)
		return xasprintf("it has %lu hard links",
		    (unsigned long)st.st_nlink);
	return xstrdup(strerror(err));
}

/*
 * The log file opened for appending, as Postfix opens a file it appends
 * to: never through a symbolic link, never blocking (a FIFO without a
 * reader fails at once, one with a reader is refused), and only a regular
 * file with one name.  Returns the descriptor, or -1 with errno.
 */
static int
open_log(const char *path)
{
	struct stat st;
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1)
		return fd;
	close(fd);
	errno = EINVAL;
	return -1;
}

/* Say once why the file is not the log, and use syslog from now on: a
 * log that cannot be written must never cost a message. */
static void
refuse_log(int err)
{
	char *why = refusal(log_path, err);

	fprintf(stderr, "%s: cannot log to %s: %s: logging to syslog "
	    "instead; set log to a regular file, syslog or stderr\n",
	    util_progname(), log_path, why);
	free(why);
	free(refused_path);
	refused_path = log_path;
	log_path = NULL;
	target = LOG_TO_SYSLOG;
}

static int
emit_file(const char *line)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	char *full;
	int fd, rc = 0;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	full = xasprintf("%s %s[%ld]: %s\n", stamp, util_progname(),
	    (long)getpid(), line);
	if ((fd = open_log(log_path)) < 0 ||
	    write_all(fd, full, strlen(full)) != 0) {
		refuse_log(errno);
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	free(full);
	return rc;
}

static void
emit(int prio, const char *line)
{
	if (target == LOG_TO_FILE && emit_file(line) == 0)
		return;
	if (target == LOG_TO_STDERR) {
		fprintf(stderr, "%s: %s\n", util_progname(), line);
		return;
	}
	if (!syslog_open) {
		openlog("bearmail", LOG_PID, LOG_MAIL);
		syslog_open = 1;
	}
	syslog(prio, "%s", line);
}

void
log_line(int prio, const char *fmt, ...)
{
	va_list ap;
	char *raw, *clean;

	va_start(ap, fmt);
	raw = xvasprintf(fmt, ap);
	va_end(ap);
	clean = log_sanitize(raw);
	emit(prio, clean);
	free(raw);
	free(clean);
}

void
log_delivery(const struct log_entry *le)
{
	log_line(strcmp(le->status, "sent") == 0 ? LOG_INFO : LOG_WARNING,
	    "msgid=%s account=%s from=<%s> to=%s relay=%s delay=%.2f size=%lld "
	    "status=%s (%s)", le->msgid ? le->msgid : "-",
	    le->account ? le->account : "-", le->from ? le->from : "",
	    le->to ? le->to : "-", le->relay ? le->relay : "none", le->delay,
	    le->size, le->status, le->reply ? le->reply : "");
}
