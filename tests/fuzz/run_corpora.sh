#!/bin/sh
# run_corpora.sh - the fuzz seed corpora as regression tests (TAP): each
# target of tests/fuzz, linked with driver.c, runs over every file of
# tests/fuzz/corpus/NAME; one `ok` per target.  A broken invariant or a
# memory error (the targets abort) fails that target.
builddir=${BEARMAIL_BUILDDIR:-.}
srcdir=${BEARMAIL_SRCDIR:-.}
targets="canon header address aliases conf oauth smtp bsmtp jwtinfo message queue mime"

n=0
for t in $targets; do
	n=$((n + 1))
done
echo "1..$n"

i=0
for t in $targets; do
	i=$((i + 1))
	prog=$builddir/tests/fuzz/fuzz_$t
	corpus=$srcdir/tests/fuzz/corpus/$t
	if ! [ -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
		echo "not ok $i - $t: no corpus in $corpus"
		continue
	fi
	if out=$("$prog" "$corpus" 2>&1); then
		echo "ok $i - $t ($out)"
	else
		echo "not ok $i - $t"
		# again with the names of the inputs, to show the one that failed
		"$prog" -v "$corpus" 2>&1 | tail -n 20 | sed 's/^/# /'
	fi
done
