/*
 * log - delivery records in the spirit of Postfix's "to=<...>, relay=...,
 * delay=..., status=sent (250 ...)" lines, to syslog's mail facility, to
 * stderr, or appended to a file the account names.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_target target = LOG_TO_SYSLOG;
static char *log_path;
static int syslog_open;

void
log_setup(const struct account *a)
{
	free(log_path);
	log_path = NULL;
	target = a ? a->log : LOG_TO_SYSLOG;
	if (target == LOG_TO_FILE && a->log_file)
		log_path = xstrdup(a->log_file);
	else if (target == LOG_TO_FILE)
		target = LOG_TO_SYSLOG;
}

char *
log_sanitize(const char *s)
{
	char *out = xstrdup(s ? s : "");
	char *p;

	for (p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return out;
}

static void
emit_file(const char *line)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	char *full;
	int fd;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	full = xasprintf("%s %s[%ld]: %s\n", stamp, util_progname(),
	    (long)getpid(), line);
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, full, strlen(full)) < 0)
		fprintf(stderr, "%s: cannot write log %s: %s\n", util_progname(),
		    log_path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(full);
}

static void
emit(int prio, const char *line)
{
	switch (target) {
	case LOG_TO_FILE:
		emit_file(line);
		break;
	case LOG_TO_STDERR:
		fprintf(stderr, "%s: %s\n", util_progname(), line);
		break;
	default:
		if (!syslog_open) {
			openlog("bearmail", LOG_PID, LOG_MAIL);
			syslog_open = 1;
		}
		syslog(prio, "%s", line);
	}
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
