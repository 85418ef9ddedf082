/* Unit tests for exits: SMTP replies to sysexits codes. */
#include "config.h"

#include "exits.h"
#include "tests/unit/tap.h"

static const struct {
	int code;
	const char *enh;
	const char *text;
	int want;
} cases[] = {
	{ 250, "2.0.0", "OK", EX_PROTOCOL },
	{ 421, "4.3.2", "Service not available", EX_TEMPFAIL },
	{ 432, "4.3.2", "Concurrent connections limit exceeded", EX_TEMPFAIL },
	{ 451, "4.4.1", "Try later", EX_TEMPFAIL },
	{ 451, "", NULL, EX_TEMPFAIL },
	{ 550, "5.1.1", "User unknown", EX_NOUSER },
	{ 550, "5.1.10", "RESOLVER.ADR.RecipientNotFound", EX_NOUSER },
	{ 553, "", "mailbox name not allowed", EX_NOUSER },
	{ 550, "5.7.60", "Client does not have permissions to send as this sender", EX_NOPERM },
	{ 554, "5.2.252", "SendAsDenied; alice not allowed to send as bob", EX_NOPERM },
	{ 535, "5.7.3", "Authentication unsuccessful", EX_NOPERM },
	{ 535, "5.7.139", "SmtpClientAuthentication is disabled for the Tenant", EX_NOPERM },
	{ 552, "5.3.4", "Message size exceeds fixed maximum message size", EX_DATAERR },
	{ 552, "", "too big", EX_DATAERR },
	{ 554, "5.6.0", "Corrupt message content", EX_DATAERR },
	{ 554, "5.2.0", "STOREDRV.Submission.Exception:SubmissionQuotaExceededException", EX_TEMPFAIL },
	{ 554, "5.2.2", "mailbox full", EX_UNAVAILABLE },
	{ 550, "", "Requested action not taken", EX_UNAVAILABLE },
	{ 500, "5.5.2", "Command unrecognized", EX_PROTOCOL },
	{ 501, "", "Syntax error", EX_PROTOCOL },
	{ 554, "5.3.0", "Other", EX_UNAVAILABLE },
	{ 0, "", NULL, EX_PROTOCOL },
	{ 999, "", NULL, EX_PROTOCOL },
};

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(exits_from_smtp(cases[i].code, cases[i].enh, cases[i].text),
		    cases[i].want, "%d %s %s -> %s", cases[i].code, cases[i].enh,
		    cases[i].text ? cases[i].text : "", exits_name(cases[i].want));
	ok(exits_is_temporary(EX_TEMPFAIL), "75 is temporary");
	ok(!exits_is_temporary(EX_NOUSER), "67 is not temporary");
	return done_testing();
}
