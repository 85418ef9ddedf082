/*
 * Unit tests for store_file and tokens: path rules, save/load round trip,
 * the ssh-like refusals (mode, symlink), import of a token endpoint answer
 * and of a bare refresh token, and the policy decisions that need no
 * network (fresh token reused, refused token not reused, unreachable
 * endpoint leaves the store alone).
 */
#include "config.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "oauth.h"
#include "store_file.h"
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
	struct bm_err e = { 0, "" };
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
		struct bm_err e = { 0, "" };

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
test_symlink(void)
{
	char *target = xasprintf("%s/target.json", dir);
	char *link = xasprintf("%s/link.json", dir);
	char *want = xasprintf("token file %s is a symbolic link: refusing it",
	    link);
	struct token_rec t = { 0 };
	struct bm_err e = { 0, "" };

	write_file(target, "{\"access_token\":\"A\"}", 0600);
	ok(symlink(target, link) == 0, "symlink created");
	is_int(store_file_load(link, &t, &e), EX_CONFIG, "symlink refused");
	is_str(e.msg, want, "symlink message");
	free(want);
	want = xasprintf("no token file %s/none.json", dir);
	free(link);
	link = xasprintf("%s/none.json", dir);
	is_int(store_file_load(link, &t, &e), EX_NOINPUT, "missing file: 66");
	is_str(e.msg, want, "missing file message");
	free(want);
	free(link);
	free(target);
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
		struct bm_err e = { 0, "" };
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
		{ "exactly 10 minutes left", "AT", 600, 0, NULL, 0, "AT" },
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
		struct bm_err e = { 0, "" };
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
test_no_token(void)
{
	char *store = xasprintf("file:%s/absent.json", dir);
	struct bm_err e = { 0, "" };
	struct account a;
	char *tok = NULL;

	account_init(&a, "work", store);
	is_int(tokens_get(&a, &tok, &e), EX_CONFIG, "no token: 78");
	is_str(e.msg, "no token for account work: run `bearmail login work` "
	    "(or `bearmail token import work`)", "no token: message");
	ok(tok == NULL, "no token: nothing handed out");
	free(store);
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
	test_round_trip();
	test_refusals();
	test_symlink();
	test_import();
	test_policy();
	test_no_token();
	cleanup();
	return done_testing();
}
