/*
 * sendmail - the shim installed as sendmail, mailq and newaliases.  It
 * parses the sendmail command line and execs bearmail-submit with a
 * normalised argv; stdin is left untouched for the submitter.  It links no
 * network or crypto code.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "util.h"

#define SUBMIT_PATH LIBEXECDIR "/bearmail/bearmail-submit"

/*
 * A caller that closed stdin, stdout or stderr (cron, daemons) would let the
 * next open() take that descriptor and mix diagnostics into a message: hold
 * them with /dev/null, as Postfix does.
 */
static void
hold_std_fds(void)
{
	int fd;

	for (;;) {
		fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			die(EX_OSERR, "cannot open /dev/null: %s",
			    strerror(errno));
		if (fd > STDERR_FILENO) {
			close(fd);
			return;
		}
	}
}

/* $BEARMAIL_SUBMIT (for tests) is not honoured when running set-id. */
static const char *
submit_path(void)
{
	const char *p;

	if (getuid() != geteuid() || getgid() != getegid())
		return SUBMIT_PATH;
	p = getenv("BEARMAIL_SUBMIT");
	return p != NULL && p[0] != '\0' ? p : SUBMIT_PATH;
}

int
main(int argc, char **argv)
{
	struct sm_opts o;
	struct bm_err err = { 0 };
	const char *path;
	char **av;

	util_set_progname(argc > 0 && argv[0] != NULL ? argv[0] : "sendmail");
	hold_std_fds();
	if (sm_parse(argc, argv, &o, &err) != 0) {
		fprintf(stderr, "%s: %s\n", util_progname(), err.msg);
		if (o.show_usage)
			fprintf(stderr, "%s\n", sm_usage(&o));
		sm_opts_free(&o);
		return EX_USAGE;
	}
	path = submit_path();
	av = sm_submit_argv(&o, path);
	sm_opts_free(&o);
	execv(path, av);
	die(EX_UNAVAILABLE, "cannot run %s: %s", path, strerror(errno));
}
