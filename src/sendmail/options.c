/*
 * options - parse the sendmail command line (the sendmail 8 / Postfix
 * getopt grammar "A:B:b:C:cd:e:F:f:Gh:IiL:M:mN:nO:o:p:q:r:R:sTtUV:vX:",
 * with grouped flags, glued or separate arguments, -q glued only) and build
 * the normalised argv for bearmail-submit.  DSN options (-N, -R, -V) follow
 * RFC 3461.  Parsing stops at "--" or at the first word that is not an
 * option, as getopt does without GNU permutation.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "options.h"

#define ENVID_MAX 100   /* RFC 3461 section 4.4 */

enum arg_kind {
	ARG_NONE,       /* a flag */
	ARG_ANY,        /* glued, or else the next word */
	ARG_GLUED       /* glued only, possibly empty: -q, -q30m */
};

typedef int opt_fn(struct sm_opts *o, const char *arg, struct bm_err *err);

struct optdef {
	char letter;
	enum arg_kind kind;
	opt_fn *fn;
};

static void
set_str(char **dst, const char *val)
{
	free(*dst);
	*dst = xstrdup(val);
}

static int
opt_mode(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	if (arg[0] == '\0' || arg[1] != '\0')
		return err_set(err, EX_USAGE, "unknown mode -b%s", arg);
	switch (arg[0]) {
	case 'm': o->mode = SM_DELIVER; return 0;
	case 's': o->mode = SM_SMTP; return 0;
	case 'p': o->mode = SM_QUEUE_LIST; return 0;
	case 'i': o->mode = SM_NEWALIASES; return 0;
	case 'v': o->mode = SM_VERIFY; return 0;
	case 'd':
	case 'D':
		return err_set(err, EX_USAGE, "-b%s: bearmail is not a daemon",
		    arg);
	case 't':
		return err_set(err, EX_USAGE,
		    "-bt: address test mode is not supported");
	default:
		return err_set(err, EX_USAGE, "unknown mode -b%s", arg);
	}
}

static int
opt_body(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	if (strcasecmp(arg, "7BIT") == 0)
		o->body = "7bit";
	else if (strcasecmp(arg, "8BITMIME") == 0)
		o->body = "8bitmime";
	else
		return err_set(err, EX_USAGE,
		    "-B %s: the body type must be 7BIT or 8BITMIME", arg);
	return 0;
}

static int
opt_config(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	if (arg[0] == '\0')
		return err_set(err, EX_USAGE, "-C needs a file name");
	set_str(&o->config, arg);
	return 0;
}

/* -f/-r: one pair of angle brackets is stripped; "<>" and "" are <>. */
static int
opt_from(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	size_t len = strlen(arg);

	if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>') {
		free(o->from);
		o->from = xstrndup(arg + 1, len - 2);
		return 0;
	}
	set_str(&o->from, arg);
	return 0;
}

static int
opt_fullname(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	set_str(&o->fullname, arg);
	return 0;
}

static int
notify_word_ok(const char *w, size_t n)
{
	static const char *const words[] = { "success", "failure", "delay" };
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i]) == n && strncasecmp(w, words[i], n) == 0)
			return 1;
	return 0;
}

/* -N never | a comma list of success, failure, delay (RFC 3461 4.1). */
static int
opt_notify(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	const char *p = arg;
	char *q;

	if (strcasecmp(arg, "never") != 0) {
		for (;;) {
			size_t n = strcspn(p, ",");

			if (!notify_word_ok(p, n))
				return err_set(err, EX_USAGE, "-N %s: use never, "
				    "or a list of success, failure, delay", arg);
			if (p[n] == '\0')
				break;
			p += n + 1;
		}
	}
	set_str(&o->notify, arg);
	for (q = o->notify; *q != '\0'; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	return 0;
}

/* -oi[value], -oe[mepqw], -od[ibqd]; any other -o is ignored. */
static int
opt_option(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	switch (arg[0]) {
	case 'i':
		/* -oi, -oiTrue; -oiFalse turns it off */
		o->ignore_dots = arg[1] == '\0' ||
		    strchr("fFnN0", arg[1]) == NULL;
		break;
	case 'e':
		if (arg[1] == 'm' || arg[1] == 'e')
			o->error_mode = "mail";
		else if (arg[1] == 'p')
			o->error_mode = "print";
		else if (arg[1] == 'q')
			o->error_mode = "quiet";
		else if (arg[1] == 'w')
			o->error_mode = "write";
		break;
	case 'd':
		if (arg[1] == 'i')
			o->delivery = "sync";
		else if (arg[1] == 'b')
			o->delivery = "background";
		else if (arg[1] == 'q' || arg[1] == 'd')
			o->delivery = "queue";
		break;
	default:
		break;  /* -oQ, -oA and the rest: ignored, sendmail compat */
	}
	return 0;
}

/* -q, -q30m, -qR..., -qI...: one queue run; intervals are not kept. */
static int
opt_queue(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	o->mode = SM_QUEUE_RUN;
	return 0;
}

static int
opt_ret(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	if (strcasecmp(arg, "full") == 0)
		o->ret = "full";
	else if (strcasecmp(arg, "hdrs") == 0)
		o->ret = "hdrs";
	else
		return err_set(err, EX_USAGE, "-R %s: use full or hdrs", arg);
	return 0;
}

static int
opt_read_rcpts(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	o->read_recipients = 1;
	return 0;
}

static int
opt_ignore_dots(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	o->ignore_dots = 1;
	return 0;
}

/* -V: an RFC 3461 ENVID, printable ASCII without spaces. */
static int
opt_envid(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	const char *p;

	if (arg[0] == '\0' || strlen(arg) > ENVID_MAX)
		return err_set(err, EX_USAGE, "-V: the envelope id must be "
		    "1 to %d characters", ENVID_MAX);
	for (p = arg; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || *p == '+' || *p == '=')
			return err_set(err, EX_USAGE, "-V: the envelope id must "
			    "be printable ASCII without spaces, + or =");
	set_str(&o->envid, arg);
	return 0;
}

static int
opt_verbose(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	o->verbose = 1;
	return 0;
}

static int
opt_ignore(struct sm_opts *o, const char *arg, struct bm_err *err)
{
	return 0;
}

static const struct optdef optdefs[] = {
	{ 'B', ARG_ANY, opt_body },
	{ 'b', ARG_ANY, opt_mode },
	{ 'C', ARG_ANY, opt_config },
	{ 'F', ARG_ANY, opt_fullname },
	{ 'f', ARG_ANY, opt_from },
	{ 'i', ARG_NONE, opt_ignore_dots },
	{ 'N', ARG_ANY, opt_notify },
	{ 'o', ARG_ANY, opt_option },
	{ 'q', ARG_GLUED, opt_queue },
	{ 'R', ARG_ANY, opt_ret },
	{ 'r', ARG_ANY, opt_from },
	{ 't', ARG_NONE, opt_read_rcpts },
	{ 'V', ARG_ANY, opt_envid },
	{ 'v', ARG_NONE, opt_verbose },
	/* ignored, sendmail compat (-X is never opened: CVE-2016-10033) */
	{ 'A', ARG_ANY, opt_ignore },
	{ 'c', ARG_NONE, opt_ignore },
	{ 'd', ARG_ANY, opt_ignore },
	{ 'e', ARG_ANY, opt_ignore },
	{ 'G', ARG_NONE, opt_ignore },
	{ 'h', ARG_ANY, opt_ignore },
	{ 'I', ARG_NONE, opt_ignore },
	{ 'L', ARG_ANY, opt_ignore },
	{ 'M', ARG_ANY, opt_ignore },
	{ 'm', ARG_NONE, opt_ignore },
	{ 'n', ARG_NONE, opt_ignore },
	{ 'O', ARG_ANY, opt_ignore },
	{ 'p', ARG_ANY, opt_ignore },
	{ 's', ARG_NONE, opt_ignore },
	{ 'T', ARG_NONE, opt_ignore },
	{ 'U', ARG_NONE, opt_ignore },
	{ 'X', ARG_ANY, opt_ignore },
};

static const struct optdef *
find_opt(const struct sm_opts *o, char letter)
{
	size_t i;

	if (o->prog == SM_PROG_MAILQ && letter != 'v')
		return NULL;
	for (i = 0; i < sizeof(optdefs) / sizeof(optdefs[0]); i++)
		if (optdefs[i].letter == letter)
			return &optdefs[i];
	return NULL;
}

static enum sm_prog
prog_of(const char *argv0)
{
	const char *base;

	if (argv0 == NULL)
		return SM_PROG_SENDMAIL;
	base = strrchr(argv0, '/');
	base = base ? base + 1 : argv0;
	if (strcmp(base, "mailq") == 0)
		return SM_PROG_MAILQ;
	if (strcmp(base, "newaliases") == 0)
		return SM_PROG_NEWALIASES;
	return SM_PROG_SENDMAIL;
}

static int
unknown_option(struct sm_opts *o, const char *word, const char *p,
    struct bm_err *err)
{
	o->show_usage = 1;
	if (word[1] == '-')
		return err_set(err, EX_USAGE, "unknown option %s", word);
	return err_set(err, EX_USAGE, "unknown option -%c", *p);
}

/*
 * One option word ("-ti", "-oi", "-f", ...): run each letter's handler.
 * *i is advanced past a separate argument word.
 */
static int
parse_word(struct sm_opts *o, int argc, char **argv, int *i,
    struct bm_err *err)
{
	const char *word = argv[*i];
	const char *p;

	for (p = word + 1; *p != '\0'; p++) {
		const struct optdef *d = find_opt(o, *p);
		const char *arg;

		if (d == NULL)
			return unknown_option(o, word, p, err);
		if (d->kind == ARG_NONE) {
			if (d->fn(o, NULL, err) != 0)
				return EX_USAGE;
			continue;
		}
		if (p[1] != '\0' || d->kind == ARG_GLUED)
			arg = p + 1;
		else if (*i + 1 < argc)
			arg = argv[++*i];
		else {
			o->show_usage = 1;
			return err_set(err, EX_USAGE,
			    "option -%c needs an argument", *p);
		}
		return d->fn(o, arg, err) != 0 ? EX_USAGE : 0;
	}
	return 0;
}

static int
parse_words(struct sm_opts *o, int argc, char **argv, struct bm_err *err)
{
	int i = 1;

	while (i < argc) {
		const char *w = argv[i];

		if (strcmp(w, "--") == 0) {
			i++;
			break;
		}
		if (w[0] != '-' || w[1] == '\0')
			break;
		if (parse_word(o, argc, argv, &i, err) != 0)
			return EX_USAGE;
		i++;
	}
	if (i < argc && o->prog != SM_PROG_SENDMAIL) {
		o->show_usage = 1;
		return err_set(err, EX_USAGE, "unexpected argument %s",
		    argv[i]);
	}
	o->rcpts = argv + i;
	o->nrcpts = i < argc ? (size_t)(argc - i) : 0;
	return 0;
}

int
sm_parse(int argc, char **argv, struct sm_opts *o, struct bm_err *err)
{
	memset(o, 0, sizeof(*o));
	o->prog = prog_of(argc > 0 ? argv[0] : NULL);
	o->mode = SM_DELIVER;
	if (parse_words(o, argc, argv, err) != 0)
		return EX_USAGE;
	if (o->prog == SM_PROG_MAILQ)
		o->mode = SM_QUEUE_LIST;
	else if (o->prog == SM_PROG_NEWALIASES)
		o->mode = SM_NEWALIASES;
	return 0;
}

static const char *
mode_name(enum sm_mode m)
{
	switch (m) {
	case SM_SMTP: return "smtp";
	case SM_QUEUE_LIST: return "queue-list";
	case SM_QUEUE_RUN: return "queue-run";
	case SM_VERIFY: return "verify";
	case SM_NEWALIASES: return "newaliases";
	case SM_DELIVER: break;
	}
	return "deliver";
}

/* Append "--name=val" when val is set. */
static void
add_kv(char **av, size_t *n, const char *name, const char *val)
{
	if (val != NULL)
		av[(*n)++] = xasprintf("--%s=%s", name, val);
}

static void
add_flag(char **av, size_t *n, const char *name, int set)
{
	if (set)
		av[(*n)++] = xasprintf("--%s", name);
}

char **
sm_submit_argv(const struct sm_opts *o, const char *submit_path)
{
	/* path, mode, 12 options, "--", recipients, NULL */
	char **av = xcalloc(o->nrcpts + 17, sizeof(*av));
	size_t n = 0, i;

	av[n++] = xstrdup(submit_path);
	add_kv(av, &n, "mode", mode_name(o->mode));
	add_kv(av, &n, "config", o->config);
	add_flag(av, &n, "read-recipients", o->read_recipients);
	add_flag(av, &n, "ignore-dots", o->ignore_dots);
	add_kv(av, &n, "from", o->from);
	add_kv(av, &n, "fullname", o->fullname);
	add_kv(av, &n, "error-mode", o->error_mode);
	add_kv(av, &n, "delivery", o->delivery);
	add_kv(av, &n, "body", o->body);
	add_kv(av, &n, "notify", o->notify);
	add_kv(av, &n, "ret", o->ret);
	add_kv(av, &n, "envid", o->envid);
	add_flag(av, &n, "verbose", o->verbose);
	av[n++] = xstrdup("--");
	for (i = 0; i < o->nrcpts; i++)
		av[n++] = xstrdup(o->rcpts[i]);
	av[n] = NULL;
	return av;
}

void
sm_argv_free(char **argv)
{
	char **p;

	if (argv == NULL)
		return;
	for (p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

void
sm_opts_free(struct sm_opts *o)
{
	free(o->config);
	free(o->from);
	free(o->fullname);
	free(o->notify);
	free(o->envid);
	memset(o, 0, sizeof(*o));
}

const char *
sm_usage(const struct sm_opts *o)
{
	switch (o->prog) {
	case SM_PROG_MAILQ:
		return "usage: mailq [-v]";
	case SM_PROG_NEWALIASES:
		return "usage: newaliases [-C file]";
	case SM_PROG_SENDMAIL:
		break;
	}
	return "usage: sendmail [-t] [-i] [-f sender] [-F name] "
	    "[-bm | -bs | -bp | -bi | -bv | -q] [-C file] [-v] "
	    "[--] [recipient ...]";
}
