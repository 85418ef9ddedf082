/*
 * base64 - RFC 4648 encoders and strict decoders for the standard
 * (section 4) and URL-safe (section 5) alphabets.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "util.h"

static const char std_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
encode(const void *data, size_t len, const char *alpha, int pad)
{
	const unsigned char *p = data;
	struct buf b = BUF_INIT;
	uint32_t v;
	size_t i, rest;

	if (len > (SIZE_MAX / 4) * 3 - 3)
		die(EX_OSERR, "out of memory");
	buf_add(&b, "", 0);
	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		buf_addc(&b, alpha[v >> 18 & 63]);
		buf_addc(&b, alpha[v >> 12 & 63]);
		buf_addc(&b, alpha[v >> 6 & 63]);
		buf_addc(&b, alpha[v & 63]);
	}
	rest = len - i;
	if (rest == 0)
		return buf_steal(&b);
	v = (uint32_t)p[i] << 16 | (rest == 2 ? (uint32_t)p[i + 1] << 8 : 0);
	buf_addc(&b, alpha[v >> 18 & 63]);
	buf_addc(&b, alpha[v >> 12 & 63]);
	if (rest == 2)
		buf_addc(&b, alpha[v >> 6 & 63]);
	if (pad)
		buf_adds(&b, rest == 2 ? "=" : "==");
	return buf_steal(&b);
}

char *
base64_encode(const void *data, size_t len)
{
	return encode(data, len, std_alpha, 1);
}

char *
base64url_encode(const void *data, size_t len)
{
	return encode(data, len, url_alpha, 0);
}

static int
sextet(const char *alpha, char c)
{
	const char *p;

	if (c == '\0' || c == '=')
		return -1;
	p = strchr(alpha, c);
	return p ? (int)(p - alpha) : -1;
}

/*
 * Decode the n characters of s (padding already removed); the bits a
 * partial group leaves over must be zero so every input has one meaning.
 */
static int
decode(const char *s, size_t n, const char *alpha, unsigned char **out,
    size_t *outlen)
{
	unsigned char *d = xmalloc(n / 4 * 3 + 3);
	uint32_t v = 0;
	size_t i, o = 0;
	int x;

	if (n % 4 == 1)
		goto bad;
	for (i = 0; i < n; i++) {
		if ((x = sextet(alpha, s[i])) < 0)
			goto bad;
		v = v << 6 | (uint32_t)x;
		if (i % 4 == 3) {
			d[o++] = v >> 16 & 0xff;
			d[o++] = v >> 8 & 0xff;
			d[o++] = v & 0xff;
			v = 0;
		}
	}
	if (n % 4 == 2) {
		if (v & 0xf)
			goto bad;
		d[o++] = v >> 4 & 0xff;
	} else if (n % 4 == 3) {
		if (v & 0x3)
			goto bad;
		d[o++] = v >> 10 & 0xff;
		d[o++] = v >> 2 & 0xff;
	}
	d[o] = '\0';
	*out = d;
	*outlen = o;
	return 0;
bad:
	wipe(d, n / 4 * 3 + 3);
	free(d);
	return -1;
}

/* Length of s without its '=' padding, or (size_t)-1 when the padding is
 * malformed (more than two, or not making a multiple of four). */
static size_t
unpadded_len(const char *s, int padding_required)
{
	size_t n = strlen(s), pad = 0;

	while (pad < n && s[n - 1 - pad] == '=')
		pad++;
	if (pad > 2)
		return (size_t)-1;
	if ((pad || padding_required) && n % 4 != 0)
		return (size_t)-1;
	return n - pad;
}

int
base64_decode(const char *s, unsigned char **out, size_t *outlen)
{
	size_t n = unpadded_len(s, 1);

	if (n == (size_t)-1)
		return -1;
	return decode(s, n, std_alpha, out, outlen);
}

int
base64url_decode(const char *s, unsigned char **out, size_t *outlen)
{
	size_t n = unpadded_len(s, 0);

	if (n == (size_t)-1)
		return -1;
	return decode(s, n, url_alpha, out, outlen);
}
