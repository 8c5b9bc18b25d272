#!/usr/bin/env bash
# Runs every test suite as an unprivileged user; called by test/run.sh with
# the work directory that holds the source copy in src/.
set -uo pipefail

work=$1
cd "$work/src" || exit 1
# shellcheck source=test/lib.sh
source test/lib.sh

PGXS_DIR=$("$PG_BIN/pg_config" --pkglibdir)/pgxs
export PGHOST=$work/pg PGPORT=54329 PGUSER=postgres
mkdir -p "$PGHOST"

passed=0
failed=0
summary=()

record() {	# record SUITE PASSED FAILED
	passed=$((passed + $2))
	failed=$((failed + $3))
	summary+=("$(printf '%-10s %4d passed, %d failed' "$1" "$2" "$3")")
}

# Counts from prove's closing lines ("Files=N, Tests=N" and "Failed x/y").
prove_counts() {	# prove_counts SUITE LOGFILE RC
	local total bad
	total=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$2" | tail -1)
	bad=$(sed -n 's/.*Failed \([0-9]*\)\/[0-9]* subtests.*/\1/p' "$2" | awk '{s+=$1} END {print s+0}')
	total=${total:-0}
	if [ "$3" -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1	# a script died or planned wrong: count it as a failure
	fi
	record "$1" $((total - bad > 0 ? total - bad : 0)) "$bad"
}

say "metadata"
# One version source: META.json must agree with the control file.
ctl=$(make -s version)
meta_bad=0
for v in $(perl -MJSON::PP -e 'my $m = decode_json(do { local $/; <STDIN> });
	print "$m->{version} $m->{provides}{hipaa_audit}{version}\n"' <META.json); do
	if [ "$v" != "$ctl" ]; then
		echo "META.json says version $v, hipaa_audit.control says $ctl"
		meta_bad=1
	fi
done
[ -f "sql/hipaa_audit--$ctl.sql" ] || { echo "no install script for $ctl"; meta_bad=1; }
record metadata $((meta_bad ? 0 : 1)) "$meta_bad"

say "layers of src/ (test/check_layers.sh)"
# The built objects' calls against the layer rule of docs/architecture.md.
if bash test/check_layers.sh .; then
	record layers 1 0
else
	record layers 0 1
fi

# The benchmark's smoke run, made by test/run.sh before this script.
case "${HA_BENCH_SMOKE:-}" in
	pass) record bench-smoke 1 0 ;;
	fail) record bench-smoke 0 1 ;;
esac

say "starting a throwaway server (socket $PGHOST, port $PGPORT)"
pg_start "$PGHOST" "$PGPORT" || { cat "$PGHOST/server.log"; exit 1; }
trap 'pg_stop "$PGHOST"' EXIT

say "pg_regress"
make -s PG_CONFIG="$PG_BIN/pg_config" installcheck >"$work/regress.log" 2>&1
rc=$?
cat "$work/regress.log"
[ $rc -ne 0 ] && [ -f regression.diffs ] && cat regression.diffs
# ("test x ... ok" up to PostgreSQL 15, "ok N - x" from 16 on)
ok=$(grep -cE '\.\.\. ok|^ok [0-9]+ ' "$work/regress.log")
bad=$(grep -cE '\.\.\. FAILED|^not ok [0-9]+ ' "$work/regress.log")
[ $rc -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
record pg_regress "$ok" "$bad"

say "pgTAP (pg_prove)"
"$PG_BIN/psql" -q -X -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS pgtap_test" -c "CREATE DATABASE pgtap_test" >/dev/null
"$PG_BIN/psql" -q -X -d pgtap_test -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION hipaa_audit" >/dev/null
pg_prove -d pgtap_test test/pgtap/*.sql 2>&1 | tee "$work/pgtap.log"
prove_counts pgTAP "$work/pgtap.log" "${PIPESTATUS[0]}"

pg_stop "$PGHOST"
trap - EXIT

say "TAP (PostgreSQL::Test::Cluster)"
# (TESTDIR for PostgreSQL 15, TESTDATADIR and TESTLOGDIR from 16 on: data
# and logs in tmp_check/ by absolute paths, whichever version.)
TESTDIR="$work/src" TESTDATADIR="$work/src/tmp_check" TESTLOGDIR="$work/src/tmp_check/log" \
	PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
	PATH="$PG_BIN:$PATH" PGHOST= PGPORT= \
	prove -I "$PGXS_DIR/src/test/perl" -I test/t test/t/*.pl 2>&1 | tee "$work/tap.log"
rc=${PIPESTATUS[0]}
prove_counts TAP "$work/tap.log" "$rc"
if [ "$rc" -ne 0 ]; then
	# Each failed file: what it said, then its servers' logs; and its name
	# and failed assertions once more in the summary, which comes last.
	for t in $(sed -n 's/^\(test\/t\/[^ ]*\.pl\) (Wstat.*/\1/p' "$work/tap.log"); do
		name=$(basename "$t" .pl)
		echo "---- $t: regress_log_$name"
		tail -n 80 "$work/src/tmp_check/log/regress_log_$name" 2>/dev/null
		for f in "$work/src/tmp_check/log/${name}"_*.log; do
			[ -f "$f" ] && { echo "---- $f"; tail -n 40 "$f"; }
		done
		summary+=("  failed: $t")
		while read -r line; do
			summary+=("    $line")
		done < <(grep -h -A3 '^#   Failed test' "$work/src/tmp_check/log/regress_log_$name" 2>/dev/null | head -n 24)
	done
fi
# A test file that cannot run here says why; it counts neither way.
while read -r line; do
	summary+=("  not run: $line")
done < <(sed -n 's/^\(test\/t\/[^ ]*\.pl\) [. ]*skipped: \(.*\)/\1: \2/p' "$work/tap.log")

say "summary"
printf '%s\n' "${summary[@]}"
echo
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
