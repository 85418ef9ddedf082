/*
 * test_options - every caller's sendmail command line (PHP mail(),
 * Symfony, mutt, s-nail, mailx, cron, git send-email, fail2ban, at ...,
 * each as that program passes it) against the exact bearmail-submit argv.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "src/sendmail/options.h"
#include "tests/unit/tap.h"

#define MAXARGS 24
#define S "bearmail-submit "

struct tcase {
	const char *name;
	const char *argv[MAXARGS];  /* argv[0] first, NULL-terminated */
	int rc;
	const char *want;           /* the submit argv joined, or the error */
};

static const struct tcase cases[] = {
	{ "PHP mail()", { "/usr/sbin/sendmail", "-t", "-i" }, 0,
	  S "--mode=deliver --read-recipients --ignore-dots --" },
	{ "PHP mail() -fuser@dom",
	  { "sendmail", "-t", "-i", "-fuser@dom" }, 0,
	  S "--mode=deliver --read-recipients --ignore-dots --from=user@dom --" },
	{ "PHP mail() -f user@dom",
	  { "sendmail", "-t", "-i", "-f", "user@dom" }, 0,
	  S "--mode=deliver --read-recipients --ignore-dots --from=user@dom --" },
	{ "Symfony -bs", { "/usr/sbin/sendmail", "-bs" }, 0,
	  S "--mode=smtp --" },
	{ "mutt",
	  { "sendmail", "-oem", "-oi", "-B8BITMIME", "-f", "env", "-N",
	    "success,failure", "-R", "hdrs", "--", "a@x", "b@y" }, 0,
	  S "--mode=deliver --ignore-dots --from=env --error-mode=mail "
	    "--body=8bitmime --notify=success,failure --ret=hdrs -- a@x b@y" },
	{ "s-nail",
	  { "sendmail", "-i", "-m", "-v", "-f", "from", "-F", "Name X", "--",
	    "rcpt" }, 0,
	  S "--mode=deliver --ignore-dots --from=from --fullname=Name X "
	    "--verbose -- rcpt" },
	{ "bsd-mailx", { "sendmail", "-i", "-t", "-f", "x", "-m", "-v" }, 0,
	  S "--mode=deliver --read-recipients --ignore-dots --from=x "
	    "--verbose --" },
	{ "Debian cron",
	  { "/usr/sbin/sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
	    "root" }, 0,
	  S "--mode=deliver --ignore-dots --fullname=CronDaemon "
	    "--error-mode=mail --body=8bitmime -- root" },
	{ "Debian cron, MAILTO list",
	  { "/usr/sbin/sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
	    "a@x,b@y" }, 0,
	  S "--mode=deliver --ignore-dots --fullname=CronDaemon "
	    "--error-mode=mail --body=8bitmime -- a@x,b@y" },
	{ "cronie",
	  { "sendmail", "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t",
	    "-f", "root" }, 0,
	  S "--mode=deliver --read-recipients --ignore-dots --from=root "
	    "--fullname=CronDaemon --error-mode=mail --delivery=sync --" },
	{ "git send-email",
	  { "sendmail", "-i", "-f", "from", "a@x", "b@y" }, 0,
	  S "--mode=deliver --ignore-dots --from=from -- a@x b@y" },
	{ "git send-email, option-like word after recipients",
	  { "sendmail", "-i", "a@x", "-t" }, 0,
	  S "--mode=deliver --ignore-dots -- a@x -t" },
	{ "sudo", { "/usr/sbin/sendmail", "-t" }, 0,
	  S "--mode=deliver --read-recipients --" },
	{ "unattended-upgrades", { "/usr/sbin/sendmail", "-oi", "-t" }, 0,
	  S "--mode=deliver --read-recipients --ignore-dots --" },
	{ "fail2ban",
	  { "/usr/sbin/sendmail", "-f", "<fail2ban@h>", "root@localhost" }, 0,
	  S "--mode=deliver --from=fail2ban@h -- root@localhost" },
	{ "at", { "/usr/sbin/sendmail", "-i", "user" }, 0,
	  S "--mode=deliver --ignore-dots -- user" },
	{ "mailq", { "/usr/bin/mailq" }, 0, S "--mode=queue-list --" },
	{ "mailq -v", { "mailq", "-v" }, 0,
	  S "--mode=queue-list --verbose --" },
	{ "mailq -q refused", { "mailq", "-q" }, EX_USAGE,
	  "unknown option -q" },
	{ "newaliases", { "/usr/bin/newaliases" }, 0,
	  S "--mode=newaliases --" },
	{ "-bp", { "sendmail", "-bp" }, 0, S "--mode=queue-list --" },
	{ "-bi", { "sendmail", "-bi" }, 0, S "--mode=newaliases --" },
	{ "-bv", { "sendmail", "-bv", "a@x" }, 0,
	  S "--mode=verify -- a@x" },
	{ "-b m separate", { "sendmail", "-b", "m", "a@x" }, 0,
	  S "--mode=deliver -- a@x" },
	{ "-q", { "sendmail", "-q" }, 0, S "--mode=queue-run --" },
	{ "-q30m does not take the next word", { "sendmail", "-q30m", "x" }, 0,
	  S "--mode=queue-run -- x" },
	{ "-q alone does not take the next word", { "sendmail", "-q", "x" }, 0,
	  S "--mode=queue-run -- x" },
	{ "-f <>", { "sendmail", "-f", "<>", "a@x" }, 0,
	  S "--mode=deliver --from= -- a@x" },
	{ "-f<>", { "sendmail", "-f<>", "a@x" }, 0,
	  S "--mode=deliver --from= -- a@x" },
	{ "-f \"\"", { "sendmail", "-f", "", "a@x" }, 0,
	  S "--mode=deliver --from= -- a@x" },
	{ "-r sender", { "sendmail", "-r", "s@x", "a@x" }, 0,
	  S "--mode=deliver --from=s@x -- a@x" },
	{ "-f strips one pair of brackets only", { "sendmail", "-f<<a@x>>" }, 0,
	  S "--mode=deliver --from=<a@x> --" },
	{ "grouped -ti", { "sendmail", "-ti" }, 0,
	  S "--mode=deliver --read-recipients --ignore-dots --" },
	{ "grouped -itf glued argument", { "sendmail", "-itfme@x" }, 0,
	  S "--mode=deliver --read-recipients --ignore-dots --from=me@x --" },
	{ "grouped flags, argument in the next word",
	  { "sendmail", "-tf", "me@x", "a@x" }, 0,
	  S "--mode=deliver --read-recipients --from=me@x -- a@x" },
	{ "ignored options consume their arguments",
	  { "sendmail", "-X", "/tmp/log", "-O", "a=b", "-h", "3", "-L", "tag",
	    "-A", "c", "rcpt" }, 0,
	  S "--mode=deliver -- rcpt" },
	{ "more ignored options",
	  { "sendmail", "-c", "-d", "0.1", "-e", "m", "-G", "-I", "-M", "x",
	    "-n", "-p", "smtp", "-s", "-T", "-U", "-XX", "-oQ/tmp", "-oA/x",
	    "-oZz", "rcpt" }, 0,
	  S "--mode=deliver -- rcpt" },
	{ "-oe and -od forms",
	  { "sendmail", "-oep", "-odb", "a" }, 0,
	  S "--mode=deliver --error-mode=print --delivery=background -- a" },
	{ "-oeq -odq", { "sendmail", "-oeq", "-odq", "a" }, 0,
	  S "--mode=deliver --error-mode=quiet --delivery=queue -- a" },
	{ "-oew -oee", { "sendmail", "-oew", "a" }, 0,
	  S "--mode=deliver --error-mode=write -- a" },
	{ "-oee is mail", { "sendmail", "-oee", "a" }, 0,
	  S "--mode=deliver --error-mode=mail -- a" },
	{ "-o i separate", { "sendmail", "-o", "i", "a" }, 0,
	  S "--mode=deliver --ignore-dots -- a" },
	{ "-B 7bit, -N never, -R FULL, -V, -C",
	  { "sendmail", "-B", "7bit", "-N", "never", "-R", "FULL", "-V",
	    "id-1", "-C", "/etc/b.conf", "a" }, 0,
	  S "--mode=deliver --config=/etc/b.conf --body=7bit --notify=never "
	    "--ret=full --envid=id-1 -- a" },
	{ "-N lowercased", { "sendmail", "-NDelay,FAILURE", "a" }, 0,
	  S "--mode=deliver --notify=delay,failure -- a" },
	{ "-v repeated", { "sendmail", "-vv", "-v", "a" }, 0,
	  S "--mode=deliver --verbose -- a" },
	{ "recipient words exactly as given, after --",
	  { "sendmail", "--", "-t", "a b@x" }, 0,
	  S "--mode=deliver -- -t a b@x" },
	{ "lone - is a word", { "sendmail", "-", "a" }, 0,
	  S "--mode=deliver -- - a" },
	{ "no recipients passes", { "sendmail" }, 0, S "--mode=deliver --" },
	{ "unknown option", { "sendmail", "-Z", "a" }, EX_USAGE,
	  "unknown option -Z" },
	{ "unknown option in a group", { "sendmail", "-tZ" }, EX_USAGE,
	  "unknown option -Z" },
	{ "unknown long option", { "sendmail", "--version" }, EX_USAGE,
	  "unknown option --version" },
	{ "-bd", { "sendmail", "-bd" }, EX_USAGE,
	  "-bd: bearmail is not a daemon" },
	{ "-bD", { "sendmail", "-bD" }, EX_USAGE,
	  "-bD: bearmail is not a daemon" },
	{ "-bt", { "sendmail", "-bt" }, EX_USAGE,
	  "-bt: address test mode is not supported" },
	{ "-bx", { "sendmail", "-bx" }, EX_USAGE, "unknown mode -bx" },
	{ "-bss", { "sendmail", "-bss" }, EX_USAGE, "unknown mode -bss" },
	{ "-f without argument", { "sendmail", "-t", "-f" }, EX_USAGE,
	  "option -f needs an argument" },
	{ "bad -B", { "sendmail", "-B", "BINARYMIME" }, EX_USAGE,
	  "-B BINARYMIME: the body type must be 7BIT or 8BITMIME" },
	{ "bad -N", { "sendmail", "-N", "never,success" }, EX_USAGE,
	  "-N never,success: use never, or a list of success, failure, delay" },
	{ "empty -N word", { "sendmail", "-N", "success,", "a" }, EX_USAGE,
	  "-N success,: use never, or a list of success, failure, delay" },
	{ "bad -R", { "sendmail", "-R", "body" }, EX_USAGE,
	  "-R body: use full or hdrs" },
	{ "bad -V", { "sendmail", "-V", "a b" }, EX_USAGE,
	  "-V: the envelope id must be printable ASCII without spaces, + or =" },
	{ "mailq with a word", { "mailq", "x" }, EX_USAGE,
	  "unexpected argument x" },
};

static char *
join(char **av)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; av[i] != NULL; i++) {
		if (i > 0)
			buf_addc(&b, ' ');
		buf_adds(&b, av[i]);
	}
	return buf_steal(&b);
}

static void
run_case(const struct tcase *c)
{
	char *argv[MAXARGS];
	struct sm_opts o;
	struct bm_err err = { 0 };
	int argc = 0, rc;

	while (c->argv[argc] != NULL) {
		argv[argc] = (char *)c->argv[argc];
		argc++;
	}
	argv[argc] = NULL;
	rc = sm_parse(argc, argv, &o, &err);
	is_int(rc, c->rc, "%s: exit code", c->name);
	if (rc == 0) {
		char **av = sm_submit_argv(&o, "bearmail-submit");
		char *got = join(av);

		is_str(got, c->want, "%s: submit argv", c->name);
		free(got);
		sm_argv_free(av);
	} else {
		is_str(err.msg, c->want, "%s: message", c->name);
	}
	sm_opts_free(&o);
}

static void
test_usage(void)
{
	char *argv[] = { "sendmail", "-Z", NULL };
	char *argv2[] = { "sendmail", "-bd", NULL };
	struct sm_opts o;
	struct bm_err err;

	sm_parse(2, argv, &o, &err);
	ok(o.show_usage && strncmp(sm_usage(&o), "usage: sendmail", 15) == 0,
	    "unknown option asks for the usage line");
	sm_opts_free(&o);
	sm_parse(2, argv2, &o, &err);
	ok(!o.show_usage, "-bd does not");
	sm_opts_free(&o);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	test_usage();
	return done_testing();
}
