/*
 * jsonx - the few json-c idioms every module that reads JSON needs (token
 * endpoint answers, token files, queue envelopes, state records): typed
 * member access that tells "absent" from "the wrong type", and wiping a
 * secret member before the object is released.
 */
#ifndef BEARMAIL_JSONX_H
#define BEARMAIL_JSONX_H

#include <json.h>

/* A whole text that must be one JSON object (only whitespace may follow),
 * or NULL. */
struct json_object *jsonx_parse_object(const char *s);

/* A string member: 1 and *out (valid while o lives), 0 when absent or
 * null (*out NULL), -1 when of another type. */
int jsonx_str(struct json_object *o, const char *key, const char **out);

/* The same, with *out a copy (xmalloc'd) when 1 is returned. */
int jsonx_strdup(struct json_object *o, const char *key, char **out);

/* An integer member within [min, max]: 1 and *out, 0 when absent or null
 * (*out untouched), -1 when of another type or out of range. */
int jsonx_int(struct json_object *o, const char *key, long long min,
    long long max, long long *out);

/* Lenient reads for records bearmail wrote itself: the value, or 0 /
 * NULL when the member is absent or of another type. */
long long jsonx_get_int(struct json_object *o, const char *key);
char *jsonx_get_strdup(struct json_object *o, const char *key);

/* Overwrite a string member in place (a secret) before the release. */
void jsonx_wipe(struct json_object *o, const char *key);

#endif
