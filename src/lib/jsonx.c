/*
 * jsonx - typed json-c member access and secret wiping (see jsonx.h).
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include "jsonx.h"
#include "util.h"

struct json_object *
jsonx_parse_object(const char *s)
{
	struct json_tokener *tok = json_tokener_new_ex(16);
	struct json_object *o;
	size_t len = strlen(s), end;

	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)(len > 0x7fffffff ? 0 : len));
	end = json_tokener_get_parse_end(tok);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    s[end + strspn(s + end, " \t\r\n")] != '\0' ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int
jsonx_str(struct json_object *o, const char *key, const char **out)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*out = json_object_get_string(v);
	return 1;
}

int
jsonx_strdup(struct json_object *o, const char *key, char **out)
{
	const char *s;
	int rc = jsonx_str(o, key, &s);

	if (rc == 1)
		*out = xstrdup(s);
	return rc;
}

int
jsonx_int(struct json_object *o, const char *key, long long min,
    long long max, long long *out)
{
	struct json_object *v;
	long long n;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	n = (long long)json_object_get_int64(v);
	if (n < min || n > max)
		return -1;
	*out = n;
	return 1;
}

long long
jsonx_get_int(struct json_object *o, const char *key)
{
	long long v = 0;

	jsonx_int(o, key, LLONG_MIN, LLONG_MAX, &v);
	return v;
}

char *
jsonx_get_strdup(struct json_object *o, const char *key)
{
	char *s = NULL;

	jsonx_strdup(o, key, &s);
	return s;
}

void
jsonx_wipe(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_string))
		wipe((char *)json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
}
