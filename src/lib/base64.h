/*
 * base64 - RFC 4648 base64 (section 4, padded) and base64url (section 5,
 * unpadded, as JWT and PKCE want it).  Used for SASL exchanges (RFC 4954)
 * and the OAuth2 work.
 */
#ifndef BEARMAIL_BASE64_H
#define BEARMAIL_BASE64_H

#include <stddef.h>

/* Encode len bytes; returns an xmalloc'd, NUL-terminated, padded string. */
char *base64_encode(const void *data, size_t len);

/* The base64url alphabet ('-', '_'), without '=' padding; xmalloc'd. */
char *base64url_encode(const void *data, size_t len);

/*
 * Decode padded base64 (no whitespace allowed).  On success returns 0 and
 * sets *out to an xmalloc'd buffer of *outlen bytes (followed by a NUL that
 * is not counted); the caller frees it.  Returns -1, with *out untouched,
 * when s is not valid base64 (bad character, bad length, misplaced '=').
 */
int base64_decode(const char *s, unsigned char **out, size_t *outlen);

/* Decode base64url, with or without '=' padding; as base64_decode. */
int base64url_decode(const char *s, unsigned char **out, size_t *outlen);

#endif
