/*
 * state - per-account status records (see state.h), JSON through json-c,
 * written to a temporary file and renamed so a reader never sees half.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jsonx.h"
#include "state.h"
#include "util.h"

#define STATE_MAX_FILE 65536

char *
state_dir(void)
{
	return util_xdg_path("XDG_STATE_HOME", ".local/state", "status");
}

static char *
state_path(const char *account)
{
	char *dir = state_dir(), *p;

	p = xasprintf("%s/%s.json", dir, account);
	free(dir);
	return p;
}

int
state_load(const char *account, struct acct_state *s)
{
	struct json_object *o;
	char *path = state_path(account), *text = NULL;

	memset(s, 0, sizeof(*s));
	/* a FIFO or a link in our own directory is not ours: read as empty */
	if (file_read(path, STATE_MAX_FILE, FILE_NOFOLLOW | FILE_MISSING_OK,
	    &text, NULL, NULL) != 0 || text == NULL)
		goto out;
	if ((o = json_tokener_parse(text)) == NULL)
		goto out;
	if (json_object_is_type(o, json_type_object)) {
		s->last_refresh = jsonx_get_int(o, "last_refresh");
		s->last_delivery = jsonx_get_int(o, "last_delivery");
		s->last_error_at = jsonx_get_int(o, "last_error_at");
		s->login_needed = jsonx_get_int(o, "login_needed") != 0;
		jsonx_strdup(o, "last_error", &s->last_error);
	}
	json_object_put(o);
out:
	free(text);
	free(path);
	return 0;
}

void
state_free(struct acct_state *s)
{
	free(s->last_error);
	s->last_error = NULL;
}

static void
state_save(const char *account, const struct acct_state *s)
{
	struct json_object *o = json_object_new_object();
	char *dir = state_dir(), *path = state_path(account), *tmp;
	const char *text;
	int fd;

	json_object_object_add(o, "account", json_object_new_string(account));
	json_object_object_add(o, "last_refresh",
	    json_object_new_int64(s->last_refresh));
	json_object_object_add(o, "last_delivery",
	    json_object_new_int64(s->last_delivery));
	json_object_object_add(o, "last_error_at",
	    json_object_new_int64(s->last_error_at));
	json_object_object_add(o, "last_error", s->last_error ?
	    json_object_new_string(s->last_error) : NULL);
	json_object_object_add(o, "login_needed",
	    json_object_new_int(s->login_needed));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	/* a new file (O_EXCL, 0600): whatever stands at a guessable name,
	 * a FIFO above all, is never opened */
	tmp = xasprintf("%s.tmp.XXXXXX", path);
	if (mkdir_private(dir, NULL) == 0 &&
	    (fd = mkostemp(tmp, O_CLOEXEC)) >= 0) {
		int ok = write_all(fd, text, strlen(text)) == 0 &&
		    write_all(fd, "\n", 1) == 0;

		if (close(fd) != 0 || !ok || rename(tmp, path) != 0)
			unlink(tmp);
	}
	json_object_put(o);
	free(tmp);
	free(path);
	free(dir);
}

void
state_note_refresh(const char *account)
{
	struct acct_state s;

	state_load(account, &s);
	s.last_refresh = (long long)time(NULL);
	s.login_needed = 0;
	state_save(account, &s);
	state_free(&s);
}

void
state_note_token_error(const char *account, const char *msg,
    int login_needed)
{
	struct acct_state s;

	state_load(account, &s);
	free(s.last_error);
	s.last_error = xstrdup(msg);
	s.last_error_at = (long long)time(NULL);
	s.login_needed = login_needed;
	state_save(account, &s);
	state_free(&s);
}

void
state_note_delivery(const char *account, int ok, const char *msg)
{
	struct acct_state s;

	state_load(account, &s);
	if (ok) {
		s.last_delivery = (long long)time(NULL);
	} else {
		free(s.last_error);
		s.last_error = xstrdup(msg);
		s.last_error_at = (long long)time(NULL);
	}
	state_save(account, &s);
	state_free(&s);
}
