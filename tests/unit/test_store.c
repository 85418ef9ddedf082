/*
 * Unit tests for store_file, store, store_keyring and tokens: path rules,
 * save/load round trip, the ssh-like refusals (mode, owner, symlink), a
 * FIFO, directory or device where a token, lock or state file belongs, the
 * JSON codec, which store `token_store` picks and where its lock is,
 * delete and tokens_forget, import of a token endpoint answer and of a
 * bare refresh token, the policy decisions that need no network (fresh
 * token reused, refused token not reused, unreachable endpoint leaves the
 * store alone), the state notes, and a keyring whose bus never answers
 * (bounded by the timeout, with the advice).
 */
#include "config.h"

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "oauth.h"
#include "state.h"
#include "store.h"
#include "store_file.h"
#include "store_keyring.h"
#include "tests/unit/tap.h"
#include "tokens.h"

static char dir[] = "/tmp/bearmail-test-store.XXXXXX";

static void
account_init(struct account *a, const char *name, const char *store)
{
	memset(a, 0, sizeof(*a));
	a->name = (char *)name;
	a->user = (char *)"alice@contoso.com";
	a->client_id = (char *)"cid";
	a->tenant = (char *)"contoso.onmicrosoft.com";
	a->scope = (char *)"https://outlook.office.com/SMTP.Send offline_access";
	a->token_store = (char *)store;
	/* nothing listens there: any network use fails fast with 75 */
	a->token_url = (char *)"https://127.0.0.1:1/token";
	a->timeout = 5;
}

static void
test_paths(void)
{
	static const struct {
		const char *xdg, *home, *store, *want;
	} cases[] = {
		{ "/st", "/h", NULL, "/st/bearmail/tokens/work.json" },
		{ "/st", "/h", "file", "/st/bearmail/tokens/work.json" },
		{ "/st", "/h", "keyring", "/st/bearmail/tokens/work.json" },
		{ NULL, "/h", "auto", "/h/.local/state/bearmail/tokens/work.json" },
		{ "rel", "/h", NULL, "/h/.local/state/bearmail/tokens/work.json" },
		{ "/st", "/h", "file:/x/y.json", "/x/y.json" },
		{ "/st", "/h", "file:~/t.json", "/h/t.json" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct account a;
		char *p;

		account_init(&a, "work", cases[i].store);
		if (cases[i].xdg)
			setenv("XDG_STATE_HOME", cases[i].xdg, 1);
		else
			unsetenv("XDG_STATE_HOME");
		setenv("HOME", cases[i].home, 1);
		p = store_file_path(&a);
		is_str(p, cases[i].want, "path for store %s, XDG_STATE_HOME %s",
		    cases[i].store ? cases[i].store : "(unset)",
		    cases[i].xdg ? cases[i].xdg : "(unset)");
		free(p);
	}
}

static void
test_round_trip(void)
{
	struct token_rec t = { 0 }, u = { 0 };
	struct bm_err e = { 0 };
	struct stat st;
	char *path = xasprintf("%s/new/sub/work.json", dir);

	t.account = xstrdup("work");
	t.user = xstrdup("alice@contoso.com");
	t.client_id = xstrdup("cid");
	t.tenant = xstrdup("contoso.onmicrosoft.com");
	t.scope = xstrdup("https://outlook.office.com/SMTP.Send");
	t.access_token = xstrdup("AT \"quoted\" \\ \x01 \xc3\xa9");
	t.refresh_token = xstrdup("0.AXoA-RT_x*y!");
	t.expires_at = 1700003600;
	t.updated_at = 1700000000;
	is_int(store_file_save(path, &t, &e), 0, "save creates directories");
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600,
	    "token file is mode 0600");
	*strrchr(path, '/') = '\0';
	ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0700,
	    "new directory is mode 0700");
	path[strlen(path)] = '/';
	is_int(store_file_load(path, &u, &e), 0, "load");
	is_str(u.account, t.account, "account round trip");
	is_str(u.user, t.user, "user round trip");
	is_str(u.client_id, t.client_id, "client_id round trip");
	is_str(u.tenant, t.tenant, "tenant round trip");
	is_str(u.scope, t.scope, "scope round trip");
	is_str(u.access_token, t.access_token, "access token (escapes) round trip");
	is_str(u.refresh_token, t.refresh_token, "refresh token round trip");
	is_int(u.expires_at, t.expires_at, "expires_at round trip");
	is_int(u.updated_at, t.updated_at, "updated_at round trip");
	token_rec_clear(&u);
	wipe_free(t.refresh_token);
	t.refresh_token = NULL;
	is_int(store_file_save(path, &t, &e), 0, "save replaces the file");
	is_int(store_file_load(path, &u, &e), 0, "load again");
	ok(u.refresh_token == NULL, "absent member stays NULL");
	token_rec_clear(&u);
	token_rec_clear(&t);
	free(path);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
	chmod(path, mode);
}

static void
test_refusals(void)
{
	static const struct {
		const char *name, *text;
		mode_t mode;
		int want;
		const char *msg;	/* %s: the path, twice */
	} cases[] = {
		{ "0644", "{\"access_token\":\"A\"}", 0644, EX_CONFIG,
		  "token file %s is readable by others (mode 0644): run chmod "
		  "600 %s" },
		{ "0640", "{\"access_token\":\"A\"}", 0640, EX_CONFIG,
		  "token file %s is readable by others (mode 0640): run chmod "
		  "600 %s" },
		{ "0620", "{\"access_token\":\"A\"}", 0620, EX_CONFIG,
		  "token file %s is writable by others (mode 0620): run chmod "
		  "600 %s" },
		{ "not JSON", "access_token=A", 0600, EX_CONFIG, "token file %s "
		  "is not a token record: remove it and log in again" },
		{ "no tokens", "{\"account\":\"work\"}", 0600, EX_CONFIG,
		  "token file %s is not a token record: remove it and log in "
		  "again" },
		{ "wrong type", "{\"access_token\":\"A\",\"expires_at\":\"1\"}",
		  0600, EX_CONFIG, "token file %s is not a token record: remove "
		  "it and log in again" },
		{ "trailing garbage", "{\"access_token\":\"A\"}}", 0600,
		  EX_CONFIG, "token file %s is not a token record: remove it "
		  "and log in again" },
		{ "empty", "", 0600, EX_CONFIG, "token file %s is not a token "
		  "record: remove it and log in again" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = xasprintf("%s/refuse%zu.json", dir, i);
		char *want = xasprintf(cases[i].msg, path, path);
		struct token_rec t = { 0 };
		struct bm_err e = { 0 };

		write_file(path, cases[i].text, cases[i].mode);
		is_int(store_file_load(path, &t, &e), cases[i].want,
		    "refuse %s: code", cases[i].name);
		is_str(e.msg, want, "refuse %s: message", cases[i].name);
		ok(t.access_token == NULL, "refuse %s: nothing loaded",
		    cases[i].name);
		free(want);
		free(path);
	}
}

static void
on_alarm(int sig)
{
	static const char m[] = "Bail out! a token, lock or state file hung\n";

	(void)sig;
	_exit(write(STDOUT_FILENO, m, sizeof(m) - 1) < 0 ? 2 : 1);
}

/* What can stand at a path instead of the file bearmail wrote there:
 * 'l' a symbolic link to another (valid, 0600) token file, 'f' a FIFO,
 * 'd' a directory, 'z' a link to /dev/zero. */
static void
make_place(int kind, const char *path)
{
	char *other = xasprintf("%s.other", path);
	int bad = 0;

	switch (kind) {
	case 'l':
		write_file(other, "{\"access_token\":\"OTHER\"}", 0600);
		bad = symlink(other, path);
		break;
	case 'f':
		bad = mkfifo(path, 0600);
		break;
	case 'd':
		bad = mkdir(path, 0700);
		break;
	case 'z':
		bad = symlink("/dev/zero", path);
		break;
	}
	if (bad)
		abort();
	free(other);
}

static void
test_token_places(void)
{
	static const struct {
		const char *name;
		int kind;
		const char *msg;	/* %s: the path */
	} cases[] = {
		{ "a symlink to another token file", 'l', "token file %s is a "
		  "symbolic link: refusing it" },
		{ "a FIFO", 'f', "token file %s is a FIFO (named pipe), not a "
		  "regular file: remove it and log in again" },
		{ "a directory", 'd', "token file %s is a directory, not a "
		  "regular file: remove it and log in again" },
		{ "a link to /dev/zero", 'z', "token file %s is a symbolic "
		  "link: refusing it" },
	};
	size_t i;

	signal(SIGALRM, on_alarm);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = xasprintf("%s/place%zu.json", dir, i);
		char *want = xasprintf(cases[i].msg, path);
		struct token_rec t = { 0 };
		struct bm_err e = { 0 };

		make_place(cases[i].kind, path);
		alarm(20);
		is_int(store_file_load(path, &t, &e), EX_CONFIG, "token file "
		    "is %s: refused at once, for a person to fix (78)",
		    cases[i].name);
		alarm(0);
		is_str(e.msg, want, "token file is %s: the message",
		    cases[i].name);
		ok(t.access_token == NULL, "token file is %s: nothing loaded",
		    cases[i].name);
		free(want);
		free(path);
	}
}

static void
test_too_large(void)
{
	char *path = xasprintf("%s/large.json", dir);
	char *want = xasprintf("token file %s is larger than %d bytes: remove "
	    "it and log in again", path, STORE_FILE_MAX);
	char *big = xmalloc(STORE_FILE_MAX + 2);
	struct token_rec t = { 0 };
	struct bm_err e = { 0 };

	memset(big, ' ', STORE_FILE_MAX + 1);
	big[0] = '{';
	big[STORE_FILE_MAX + 1] = '\0';
	write_file(path, big, 0600);
	is_int(store_file_load(path, &t, &e), EX_CONFIG, "token file too "
	    "large: 78");
	is_str(e.msg, want, "token file too large: the message");
	free(big);
	free(want);
	free(path);
}

static void
test_missing(void)
{
	char *path = xasprintf("%s/none.json", dir);
	char *want = xasprintf("no token file %s", path);
	struct token_rec t = { 0 };
	struct bm_err e = { 0 };

	is_int(store_file_load(path, &t, &e), EX_NOINPUT, "missing file: 66");
	is_str(e.msg, want, "missing file message");
	free(want);
	free(path);
}

static void
test_lock_places(void)
{
	static const struct {
		const char *name;
		int kind;
		const char *msg;	/* %s: the path */
	} cases[] = {
		{ "a FIFO", 'f', "lock file %s is a FIFO (named pipe), not a "
		  "regular file: remove it" },
		{ "a directory", 'd', "lock file %s is a directory, not a "
		  "regular file: remove it" },
		{ "a symlink", 'l', "lock file %s is a symbolic link, not a "
		  "regular file: remove it" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = xasprintf("%s/lock%zu.lock", dir, i);
		char *want = xasprintf(cases[i].msg, path);
		struct bm_err e = { 0 };
		int fd = 7;

		make_place(cases[i].kind, path);
		alarm(20);
		is_int(store_file_lock_at(path, &fd, &e), EX_CANTCREAT, "lock "
		    "file is %s: refused at once", cases[i].name);
		alarm(0);
		is_str(e.msg, want, "lock file is %s: the message",
		    cases[i].name);
		ok(fd == -1, "lock file is %s: no descriptor", cases[i].name);
		free(want);
		free(path);
	}
}

/* A state file that is a FIFO or a directory: read as empty at once, and
 * noting an event neither hangs nor fails. */
static void
test_state_places(void)
{
	static const int kinds[] = { 'f', 'd' };
	char *sdir = state_dir();
	size_t i;

	ok(mkdir_private(sdir, NULL) == 0, "state directory");
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char *name = xasprintf("place%zu", i);
		char *path = xasprintf("%s/%s.json", sdir, name);
		struct acct_state st;

		make_place(kinds[i], path);
		alarm(20);
		state_load(name, &st);
		ok(st.last_refresh == 0 && st.last_error == NULL, "state file "
		    "is %s: read as empty, at once", kinds[i] == 'f' ?
		    "a FIFO" : "a directory");
		state_note_refresh(name);
		alarm(0);
		ok(1, "state file is %s: noting a refresh returns",
		    kinds[i] == 'f' ? "a FIFO" : "a directory");
		state_free(&st);
		free(path);
		free(name);
	}
	free(sdir);
}

static void
test_import(void)
{
	static const struct {
		const char *name, *input;
		int want;
		const char *access, *refresh;
		int expires;	/* whether expires_at should be set */
	} cases[] = {
		{ "json answer",
		  "{\"token_type\":\"Bearer\",\"expires_in\":\"3600\",\"scope\":"
		  "\"https://outlook.office.com/SMTP.Send\",\"access_token\":"
		  "\"AT1\",\"refresh_token\":\"RT1\"}\n", 0, "AT1", "RT1", 1 },
		{ "bare token", "  0.AXoAbc-DEF_ghi*jk!\n", 0, NULL,
		  "0.AXoAbc-DEF_ghi*jk!", 0 },
		{ "error answer", "{\"error\":\"invalid_grant\","
		  "\"error_description\":\"AADSTS70000: bad\"}", EX_DATAERR,
		  NULL, NULL, 0 },
		{ "bad json", "{\"access_token\":", EX_DATAERR, NULL, NULL, 0 },
		{ "two words", "abc def", EX_DATAERR, NULL, NULL, 0 },
		{ "empty", " \n", EX_DATAERR, NULL, NULL, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *store = xasprintf("file:%s/import%zu.json", dir, i);
		struct account a;
		struct token_rec t = { 0 };
		struct bm_err e = { 0 };
		long long now = (long long)time(NULL);

		account_init(&a, "work", store);
		is_int(tokens_import(&a, cases[i].input, &e), cases[i].want,
		    "import %s: code (%s)", cases[i].name, e.msg);
		if (cases[i].want == 0) {
			is_int(store_file_load(store + 5, &t, &e), 0,
			    "import %s: stored", cases[i].name);
			is_str(t.access_token, cases[i].access,
			    "import %s: access token", cases[i].name);
			is_str(t.refresh_token, cases[i].refresh,
			    "import %s: refresh token", cases[i].name);
			is_str(t.account, "work", "import %s: account",
			    cases[i].name);
			is_str(t.tenant, a.tenant, "import %s: tenant",
			    cases[i].name);
			ok(cases[i].expires ? t.expires_at >= now + 3600 &&
			    t.expires_at < now + 3700 : t.expires_at == 0,
			    "import %s: expires_at", cases[i].name);
		} else
			ok(access(store + 5, F_OK) != 0,
			    "import %s: nothing stored", cases[i].name);
		token_rec_clear(&t);
		free(store);
	}
}

static void
store_rec(const char *path, const char *access, long long expires)
{
	struct token_rec t = { 0 };

	t.access_token = access ? xstrdup(access) : NULL;
	t.refresh_token = xstrdup("RT");
	t.expires_at = expires;
	store_file_save(path, &t, NULL);
	token_rec_clear(&t);
}

static void
test_policy(void)
{
	static const struct {
		const char *name;
		const char *access;	/* stored access token */
		long long left;		/* its lifetime left, seconds */
		int force;		/* tokens_refresh instead of _get */
		const char *stale;	/* what the server refused */
		int want;
		const char *token;	/* expected, when want == 0 */
	} cases[] = {
		{ "fresh token reused", "AT", 3000, 0, NULL, 0, "AT" },
		/* a few seconds' margin: the clock may tick while the test
		 * runs; the exact boundary is test_freshness's */
		{ "just over 10 minutes left", "AT", 605, 0, NULL, 0, "AT" },
		{ "9 minutes left: refresh", "AT", 540, 0, NULL, EX_TEMPFAIL,
		  NULL },
		{ "expired: refresh", "AT", -60, 0, NULL, EX_TEMPFAIL, NULL },
		{ "no access token: refresh", NULL, 0, 0, NULL, EX_TEMPFAIL,
		  NULL },
		{ "refused token: refresh", "AT", 3000, 1, "AT", EX_TEMPFAIL,
		  NULL },
		{ "refused, another process refreshed", "AT2", 3000, 1, "AT", 0,
		  "AT2" },
		{ "forced without a stale token", "AT", 3000, 1, NULL,
		  EX_TEMPFAIL, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *store = xasprintf("file:%s/policy%zu.json", dir, i);
		long long exp = (long long)time(NULL) + cases[i].left;
		struct token_rec t = { 0 };
		struct bm_err e = { 0 };
		struct account a;
		char *tok = NULL;
		int rc;

		account_init(&a, "work", store);
		store_rec(store + 5, cases[i].access, cases[i].access ? exp : 0);
		rc = cases[i].force ? tokens_refresh(&a, cases[i].stale, &tok,
		    &e) : tokens_get(&a, &tok, &e);
		is_int(rc, cases[i].want, "%s: code (%s)", cases[i].name,
		    e.msg);
		is_str(tok, cases[i].token, "%s: token", cases[i].name);
		store_file_load(store + 5, &t, NULL);
		is_str(t.access_token, cases[i].access, "%s: store unchanged",
		    cases[i].name);
		token_rec_clear(&t);
		wipe_free(tok);
		free(store);
	}
}

static void
test_freshness(void)
{
	static const struct {
		const char *access;
		long long expires_at;
		int want;
	} cases[] = {
		{ "AT", 1000000 + 600, 1 },	/* exactly 10 minutes: usable */
		{ "AT", 1000000 + 599, 0 },	/* a second less: refresh */
		{ "AT", 1000000 + 3600, 1 },
		{ "AT", 1000000, 0 },
		{ "AT", 0, 0 },
		{ "", 1000000 + 3600, 0 },
		{ NULL, 1000000 + 3600, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct token_rec t = { 0 };

		t.access_token = (char *)cases[i].access;
		t.expires_at = cases[i].expires_at;
		is_int(tokens_is_fresh(&t, 1000000), cases[i].want,
		    "fresh(%s, %lld s left)", cases[i].access ? cases[i].access :
		    "NULL", cases[i].expires_at - 1000000);
	}
}

static void
test_no_token(void)
{
	char *store = xasprintf("file:%s/absent.json", dir);
	struct bm_err e = { 0 };
	struct account a;
	char *tok = NULL;

	account_init(&a, "work", store);
	is_int(tokens_get(&a, &tok, &e), EX_CONFIG, "no token: 78");
	is_str(e.msg, "no token for account work: run `bearmail login work` "
	    "(or `bearmail token import work`)", "no token: message");
	ok(tok == NULL, "no token: nothing handed out");
	free(store);
}

static void
test_codec(void)
{
	static const struct {
		const char *name, *text;
		int want;
	} cases[] = {
		{ "record", "{\"access_token\":\"A\",\"expires_at\":5}", 0 },
		{ "refresh only", " {\"refresh_token\":\"R\"}\n", 0 },
		{ "no token", "{\"account\":\"w\"}", -1 },
		{ "array", "[\"access_token\"]", -1 },
		{ "negative time", "{\"access_token\":\"A\",\"expires_at\":-1}", -1 },
		{ "two objects", "{\"access_token\":\"A\"}{}", -1 },
		{ "empty", "", -1 },
	};
	struct token_rec t = { 0 }, u = { 0 };
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		is_int(store_file_decode(cases[i].text, strlen(cases[i].text),
		    &t), cases[i].want, "decode %s", cases[i].name);
		ok(cases[i].want == 0 || (t.access_token == NULL &&
		    t.refresh_token == NULL), "decode %s: nothing on failure",
		    cases[i].name);
		token_rec_clear(&t);
	}
	t.account = xstrdup("work");
	t.access_token = xstrdup("A\"\n\\");
	t.refresh_token = xstrdup("R");
	t.expires_at = 42;
	store_file_encode(&t, &b);
	is_int(store_file_decode(b.data, b.len, &u), 0, "encode, decode");
	is_str(u.access_token, t.access_token, "codec: access token");
	is_int(u.expires_at, 42, "codec: expires_at");
	is_int(store_file_decode(b.data, b.len - 1, &u), 0,
	    "codec: the final newline is optional");
	token_rec_clear(&t);
	token_rec_clear(&u);
	buf_free(&b, 1);
}

static void
test_pick(void)
{
	static const struct {
		const char *store, *bus, *run;
		const char *name, *where, *lock;	/* %s: dir */
	} cases[] = {
		{ "file:%s/p/work.json", NULL, NULL, "file", "%s/p/work.json",
		  "%s/p/work.json.lock" },
		{ "file", NULL, NULL, "file", "%s/xdg/bearmail/tokens/work.json",
		  "%s/xdg/bearmail/tokens/work.json.lock" },
		{ "auto", NULL, NULL, "file", "%s/xdg/bearmail/tokens/work.json",
		  "%s/xdg/bearmail/tokens/work.json.lock" },
		{ NULL, "unix:path=%s/no-bus", NULL, "file",
		  "%s/xdg/bearmail/tokens/work.json",
		  "%s/xdg/bearmail/tokens/work.json.lock" },
		{ "keyring", NULL, "%s/run", "keyring", "keyring (Secret "
		  "Service: org.bearmail.Token account=work)",
		  "%s/run/bearmail/work.lock" },
		{ "keyring", NULL, NULL, "keyring", "keyring (Secret "
		  "Service: org.bearmail.Token account=work)",
		  "%s/xdg/bearmail/status/work.lock" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *ts = cases[i].store ? xasprintf(cases[i].store, dir) :
		    NULL;
		char *where = xasprintf(cases[i].where, dir);
		char *lock = xasprintf(cases[i].lock, dir);
		char *bus = cases[i].bus ? xasprintf(cases[i].bus, dir) : NULL;
		char *run = cases[i].run ? xasprintf(cases[i].run, dir) : NULL;
		struct bm_err e = { 0 };
		struct account a;
		struct store s;
		struct stat st;

		account_init(&a, "work", ts);
		if (bus)
			setenv("DBUS_SESSION_BUS_ADDRESS", bus, 1);
		else
			unsetenv("DBUS_SESSION_BUS_ADDRESS");
		if (run)
			setenv("XDG_RUNTIME_DIR", run, 1);
		else
			unsetenv("XDG_RUNTIME_DIR");
		store_open(&a, &s);
		is_str(store_name(&s), cases[i].name, "store %s: kind",
		    ts ? ts : "(default)");
		is_str(store_where(&s), where, "store %s: where",
		    ts ? ts : "(default)");
		is_int(store_lock(&s, &e), 0, "store %s: lock (%s)",
		    ts ? ts : "(default)", e.msg);
		ok(stat(lock, &st) == 0 && (st.st_mode & 07777) == 0600,
		    "store %s: lock file %s, mode 0600", ts ? ts : "(default)",
		    lock);
		store_close(&s);
		free(ts);
		free(where);
		free(lock);
		free(bus);
		free(run);
	}
	unsetenv("DBUS_SESSION_BUS_ADDRESS");
	unsetenv("XDG_RUNTIME_DIR");
}

static void
test_forget(void)
{
	char *store = xasprintf("file:%s/forget/work.json", dir);
	char *msg;
	struct bm_err e = { 0 };
	struct account a;
	struct store s;
	int found = -1;

	account_init(&a, "work", store);
	is_int(tokens_import(&a, "RT-forget", &e), 0, "forget: seeded");
	is_int(tokens_forget(&a, &e), 0, "forget: removed");
	msg = xasprintf("removed the tokens of account work from %s",
	    store + 5);
	is_str(e.msg, msg, "forget: says where they were");
	free(msg);
	ok(access(store + 5, F_OK) != 0, "forget: the file is gone");
	is_int(tokens_forget(&a, &e), EX_NOINPUT, "forget again: nothing");
	msg = xasprintf("account work has no tokens in %s: nothing to forget",
	    store + 5);
	is_str(e.msg, msg, "forget again: says so");
	free(msg);
	store_open(&a, &s);
	is_int(store_delete(&s, &found, &e), 0, "delete without a file: 0");
	is_int(found, 0, "delete without a file: not found");
	store_close(&s);
	free(store);
}

static void
test_owner(void)
{
	char *path = xasprintf("%s/owned.json", dir);
	char *want = xasprintf("token file %s is owned by uid 65534, not by "
	    "you (uid 0): refusing it; remove it and log in again", path);
	struct token_rec t = { 0 };
	struct bm_err e = { 0 };

	if (geteuid() != 0) {
		ok(1, "# SKIP foreign owner: needs root to chown");
		ok(1, "# SKIP foreign owner: message");
	} else {
		write_file(path, "{\"access_token\":\"A\"}", 0600);
		if (chown(path, 65534, 65534) != 0)
			perror("chown");
		is_int(store_file_load(path, &t, &e), EX_CONFIG,
		    "foreign owner refused");
		is_str(e.msg, want, "foreign owner: message");
	}
	token_rec_clear(&t);
	free(want);
	free(path);
}

static void
test_state_notes(void)
{
	static const struct {
		const char *name;
		int seed;		/* store a stale record first */
		int want, login_needed;
	} cases[] = {
		{ "no token", 0, EX_CONFIG, 1 },
		{ "endpoint unreachable", 1, EX_TEMPFAIL, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *store = xasprintf("file:%s/notes%zu.json", dir, i);
		struct acct_state st;
		struct bm_err e = { 0 };
		struct account a;
		char *tok = NULL;

		account_init(&a, "notes", store);
		if (cases[i].seed)
			store_rec(store + 5, "AT", 1);
		is_int(tokens_get(&a, &tok, &e), cases[i].want, "%s: code",
		    cases[i].name);
		state_load("notes", &st);
		is_str(st.last_error, e.msg, "%s: the state has the message",
		    cases[i].name);
		is_int(st.login_needed, cases[i].login_needed,
		    "%s: login_needed", cases[i].name);
		state_free(&st);
		free(store);
	}
}

/* A D-Bus address whose socket accepts connections but never says a word
 * (the kernel completes connect() from the listen backlog). */
static int
silent_bus(char **address)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/silent", dir);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, 16) != 0) {
		perror("silent bus");
		return -1;
	}
	*address = xasprintf("unix:path=%s", sun.sun_path);
	return fd;
}

/* Seconds a silent bus may hold the probe or a load: a hang guard, not a
 * speed test, far above STORE_KEYRING_PROBE_TIMEOUT and
 * STORE_KEYRING_TIMEOUT so that only a hang fails on a loaded machine. */
#define HANG_GUARD 30

static void
test_keyring_timeout(void)
{
	struct bm_err e = { 0 };
	struct token_rec t = { 0 };
	struct account a;
	char *address = NULL;
	time_t t0;
	int fd = silent_bus(&address);

	account_init(&a, "work", "keyring");
	setenv("DBUS_SESSION_BUS_ADDRESS", address ? address : "", 1);
	t0 = time(NULL);
	is_int(store_keyring_available(), 0, "a silent bus: no keyring");
	ok(time(NULL) - t0 <= HANG_GUARD,
	    "a silent bus: the probe gives up, does not hang (%lds)",
	    (long)(time(NULL) - t0));
#ifdef HAVE_LIBSECRET
	t0 = time(NULL);
	is_int(store_keyring_load(&a, &t, &e), EX_TEMPFAIL,
	    "a silent bus: load fails");
	ok(time(NULL) - t0 <= HANG_GUARD,
	    "a silent bus: load gives up, does not hang (%lds)",
	    (long)(time(NULL) - t0));
	is_str(e.msg, "the keyring did not answer within 5 s (read the token "
	    "of account work): is gnome-keyring-daemon running and unlocked? "
	    "or set token_store file", "a silent bus: the advice");
#else
	is_int(store_keyring_load(&a, &t, &e), EX_CONFIG,
	    "without libsecret: load refused");
	ok(strstr(e.msg, "set token_store file") != NULL,
	    "without libsecret: the advice");
	ok(1, "# SKIP no libsecret");
#endif
	unsetenv("DBUS_SESSION_BUS_ADDRESS");
	token_rec_clear(&t);
	if (fd >= 0)
		close(fd);
	free(address);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
cleanup(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_paths();
	/* everything below keeps its files (and state) in dir */
	{
		char *xdg = xasprintf("%s/xdg", dir);

		setenv("XDG_STATE_HOME", xdg, 1);
		setenv("HOME", dir, 1);
		free(xdg);
	}
	test_round_trip();
	test_codec();
	test_pick();
	test_forget();
	test_owner();
	test_state_notes();
	test_keyring_timeout();
	test_refusals();
	test_token_places();
	test_too_large();
	test_missing();
	test_lock_places();
	test_state_places();
	test_import();
	test_policy();
	test_freshness();
	test_no_token();
	cleanup();
	return done_testing();
}
