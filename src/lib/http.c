/*
 * http - form POST over HTTPS with libcurl, for the OAuth2 token endpoint
 * (RFC 6749), and a JSON GET for OpenID discovery documents.  The request
 * body holds secrets: it is built in a wiped buffer, and CURLOPT_VERBOSE
 * is never set (its trace would print them).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http.h"
#include "net.h"
#include "verdict.h"

struct sink {
	struct buf *body;
	int overflow;
};

static int
http_init(void)
{
	static int done;

	if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
		done = 1;
	return done ? 0 : -1;
}

static size_t
http_write(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;

	if (s->body->len + len > HTTP_MAX_BODY) {
		s->overflow = 1;
		return 0;	/* makes curl fail with CURLE_WRITE_ERROR */
	}
	buf_add(s->body, p, len);
	return len;
}

/* Append k=v&... with every name and value percent-encoded. */
static int
http_form(CURL *c, const char *const *pairs, struct buf *form)
{
	size_t i;

	for (i = 0; pairs[i] != NULL && pairs[i + 1] != NULL; i += 2) {
		char *k = curl_easy_escape(c, pairs[i], 0);
		char *v = curl_easy_escape(c, pairs[i + 1], 0);

		if (k != NULL && v != NULL)
			buf_addf(form, "%s%s=%s", i ? "&" : "", k, v);
		if (v != NULL)
			wipe(v, strlen(v));
		curl_free(k);
		curl_free(v);
		if (k == NULL || v == NULL)
			return -1;
	}
	return 0;
}

/* The URL as it may be shown: without its query or fragment. */
static char *
http_shown_url(const char *url)
{
	return xstrndup(url, strcspn(url, "?#"));
}

static int
http_setup(CURL *c, const char *url, struct curl_blob *ca, int timeout,
    struct curl_slist *hdrs, struct sink *s, char *errbuf)
{
	long t = timeout > 0 ? timeout : HTTP_DEFAULT_TIMEOUT;
	int bad = 0;

	bad |= curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
	bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
#else
	bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS) !=
	    CURLE_OK;
#endif
	bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	/* the ca_file's bytes, read safely (net_read_ca), not its path */
	if (ca->data != NULL)
		bad |= curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, ca) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, t) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT, t) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, PACKAGE_NAME "/"
	    PACKAGE_VERSION) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, s) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
	return bad ? -1 : 0;
}

static int
http_fail(struct bm_err *e, CURLcode rc, const struct sink *s,
    const char *errbuf, const char *url)
{
	char *shown = http_shown_url(url);
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
	int code;

	if (s->overflow)
		why = "response larger than 1 MiB";
	if (rc == CURLE_UNSUPPORTED_PROTOCOL)
		code = err_set(e, EX_CONFIG, "identity platform unreachable: "
		    "%s (%s)", why, shown);
	else
		code = verdict_fail(e, VK_IDP_UNREACHABLE, NULL, "identity "
		    "platform unreachable: %s (%s)", why, shown);
	free(shown);
	return code;
}

/* POST form (application/x-www-form-urlencoded) when it is non-NULL,
 * else GET; both ask for JSON. */
static int
http_request(const char *url, const struct buf *form, const char *ca_file,
    int timeout, long *status, struct buf *body, struct bm_err *e)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL, *h;
	struct curl_blob ca = { NULL, 0, CURL_BLOB_COPY };
	struct sink s = { body, 0 };
	CURL *c = NULL;
	CURLcode rc;
	int ret;

	*status = 0;
	if (strncasecmp(url, "https://", 8) != 0) {
		char *shown = http_shown_url(url);

		err_set(e, EX_CONFIG, "%s %s is not an https URL", form ?
		    "token endpoint" : "URL", shown);
		free(shown);
		return EX_CONFIG;
	}
	if (ca_file != NULL && (ret = net_read_ca(ca_file, (char **)&ca.data,
	    &ca.len, e)) != 0)
		goto out;
	if (http_init() != 0 || (c = curl_easy_init()) == NULL) {
		ret = err_set(e, EX_SOFTWARE, "cannot initialise libcurl");
		goto out;
	}
	/* no "Expect: 100-continue" round trip for bodies over 1 KiB */
	if ((h = curl_slist_append(NULL, "Expect:")) == NULL ||
	    (hdrs = curl_slist_append(h, "Accept: application/json")) == NULL) {
		curl_slist_free_all(h);
		ret = err_set(e, EX_OSERR, "out of memory");
		goto out;
	}
	if (http_setup(c, url, &ca, timeout, hdrs, &s, errbuf) != 0 ||
	    (form != NULL && (curl_easy_setopt(c, CURLOPT_POSTFIELDS,
	    form->data ? form->data : "") ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)form->len)))) {
		ret = err_set(e, EX_SOFTWARE, "cannot set up the HTTPS request");
		goto out;
	}
	if ((rc = curl_easy_perform(c)) != CURLE_OK) {
		ret = http_fail(e, rc, &s, errbuf, url);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	ret = 0;
out:
	curl_slist_free_all(hdrs);
	if (c != NULL)
		curl_easy_cleanup(c);
	free(ca.data);
	return ret;
}

int
http_post_form(const char *url, const char *const *pairs,
    const char *ca_file, int timeout, long *status, struct buf *body,
    struct bm_err *e)
{
	struct buf form = BUF_INIT;
	CURL *c;
	int ret;

	*status = 0;
	if (http_init() != 0 || (c = curl_easy_init()) == NULL)
		return err_set(e, EX_SOFTWARE, "cannot initialise libcurl");
	ret = http_form(c, pairs, &form);
	curl_easy_cleanup(c);
	if (ret != 0)
		ret = err_set(e, EX_SOFTWARE, "cannot set up the HTTPS request");
	else
		ret = http_request(url, &form, ca_file, timeout, status, body,
		    e);
	buf_free(&form, 1);
	return ret;
}

int
http_get(const char *url, const char *ca_file, int timeout, long *status,
    struct buf *body, struct bm_err *e)
{
	return http_request(url, NULL, ca_file, timeout, status, body, e);
}
