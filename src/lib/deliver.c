/*
 * deliver - open an authenticated SMTP session for an account and run
 * transactions on it (see deliver.h).  The token is fetched before the
 * connection, so a missing or unobtainable token never opens one.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "deliver.h"
#include "tokens.h"
#include "verdict.h"

struct dsession {
	struct smtp *smtp;
	char *relay;
	int used;      /* a transaction has run: RSET before the next */
	int dead;
};

/* AUTH with the token; when the verdict is that the server refused a
 * token we believed valid, fetch a fresh one and try once more. */
static int
authenticate(struct smtp *s, const struct account *a, char **tok,
    struct bm_err *e)
{
	char *fresh = NULL;
	int rc;

	rc = smtp_auth(s, a->auth, a->user, *tok, e);
	if (rc != 0 && e->v.fresh_token) {
		if ((rc = tokens_refresh(a, *tok, &fresh, e)) == 0)
			rc = smtp_auth(s, a->auth, a->user, fresh, e);
		wipe_free(*tok);
		*tok = fresh;
	}
	return rc;
}

int
deliver_open(const struct account *a, FILE *verbose, struct dsession **out,
    struct bm_err *e)
{
	struct smtp_opts o;
	struct smtp *s = NULL;
	char *tok = NULL;
	int rc;

	*out = NULL;
	memset(&o, 0, sizeof(o));
	o.host = a->host;
	o.port = a->port;
	o.tls = a->tls;
	o.ca_file = a->ca_file;
	o.timeout = a->timeout;
	o.helo_name = conf_mailname();
	o.verbose = verbose;
	if ((rc = tokens_get(a, &tok, e)) == 0 &&
	    (rc = smtp_open(&s, &o, e)) == 0)
		rc = authenticate(s, a, &tok, e);
	wipe_free(tok);
	if (rc != 0) {
		smtp_close(s);
		return verdict_session(e);
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->smtp = s;
	(*out)->relay = xasprintf("%s:%d", a->host, a->port);
	return 0;
}

int
deliver_send(struct dsession *s, struct smtp_txn *t, struct bm_err *e)
{
	int rc;

	/* RSET between transactions: whatever the last one left behind (a
	 * refused DATA, a half-open envelope) is cleared first */
	if (s->used && (rc = smtp_rset(s->smtp, e)) != 0) {
		s->dead = 1;
		return rc;
	}
	s->used = 1;
	rc = smtp_send(s->smtp, t, e);
	s->dead = !smtp_alive(s->smtp);
	return rc;
}

int
deliver_alive(const struct dsession *s)
{
	return s != NULL && !s->dead;
}

const char *
deliver_relay(const struct dsession *s)
{
	return s ? s->relay : "none";
}

void
deliver_close(struct dsession *s)
{
	if (s == NULL)
		return;
	smtp_close(s->smtp);
	free(s->relay);
	free(s);
}
