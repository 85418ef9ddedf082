/*
 * exits - map SMTP replies to sysexits.h codes.  Enhanced status codes
 * (RFC 3463) win over the basic code; Exchange's quirks (a 5xx quota reply
 * that is temporary in effect) are handled here and nowhere else.
 */
#include "config.h"

#include <string.h>

#include "exits.h"

static int
enh_class(const char *enh, int *subject, int *detail)
{
	int cls = 0;

	*subject = *detail = -1;
	if (enh == NULL || enh[0] < '2' || enh[0] > '5' || enh[1] != '.')
		return 0;
	cls = enh[0] - '0';
	enh += 2;
	if (*enh < '0' || *enh > '9')
		return 0;
	*subject = 0;
	while (*enh >= '0' && *enh <= '9')
		*subject = *subject * 10 + (*enh++ - '0');
	if (*enh++ != '.')
		return cls;
	*detail = 0;
	while (*enh >= '0' && *enh <= '9')
		*detail = *detail * 10 + (*enh++ - '0');
	return cls;
}

int
exits_from_smtp(int code, const char *enh, const char *text)
{
	int subject, detail;
	int cls = enh_class(enh, &subject, &detail);

	if (text && (strstr(text, "SubmissionQuotaExceeded") ||
	    strstr(text, "Concurrent connections limit")))
		return EX_TEMPFAIL;
	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (code < 500 || code > 599)
		return EX_PROTOCOL;
	if (text && strstr(text, "SendAsDenied"))
		return EX_NOPERM;
	if (cls == 5) {
		switch (subject) {
		case 1:
			return EX_NOUSER;
		case 7:
			return EX_NOPERM;
		case 3:
			return detail == 4 ? EX_DATAERR : EX_UNAVAILABLE;
		case 6:
			return EX_DATAERR;
		case 5:
			return EX_PROTOCOL;
		default:
			return EX_UNAVAILABLE;
		}
	}
	if (code == 552)
		return EX_DATAERR;
	if (code == 550 || code == 551 || code == 553)
		return code == 553 ? EX_NOUSER : EX_UNAVAILABLE;
	if (code == 500 || code == 501 || code == 502 || code == 503 ||
	    code == 504)
		return EX_PROTOCOL;
	return EX_UNAVAILABLE;
}

int
exits_is_temporary(int code)
{
	return code == EX_TEMPFAIL;
}

const char *
exits_name(int code)
{
	switch (code) {
	case 0: return "ok";
	case EX_USAGE: return "usage";
	case EX_DATAERR: return "dataerr";
	case EX_NOINPUT: return "noinput";
	case EX_NOUSER: return "nouser";
	case EX_NOHOST: return "nohost";
	case EX_UNAVAILABLE: return "unavailable";
	case EX_SOFTWARE: return "software";
	case EX_OSERR: return "oserr";
	case EX_OSFILE: return "osfile";
	case EX_CANTCREAT: return "cantcreat";
	case EX_IOERR: return "ioerr";
	case EX_TEMPFAIL: return "tempfail";
	case EX_PROTOCOL: return "protocol";
	case EX_NOPERM: return "noperm";
	case EX_CONFIG: return "config";
	default: return "unknown";
	}
}
