#!/usr/bin/env bash
# The full test suite, from a fresh Debian 12 machine: installs what it needs,
# builds and installs hipaa_audit, then runs pg_regress, pgTAP and TAP
# (PostgreSQL::Test::Cluster) suites as an unprivileged user against
# throwaway servers.  Exits non-zero if anything fails.
#
#   bash test/run.sh            (as root, or as a user with sudo)
#
# HA_SKIP_APT=1 skips apt-get when the packages are known to be there.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib.sh
source "$repo/test/lib.sh"

install_packages
ensure_test_user

make_work test

# Build from a copy the unprivileged user can read and write.
copy_and_build "$repo" "$work"

# Against a PostgreSQL other than Debian's 15, Debian's 15 is the older
# version of the cross-version test (test/t/029): build hipaa_audit for it
# too, from the same source.
if [ "$HA_DEBIAN_PG" = 0 ] && [ -x /usr/lib/postgresql/15/bin/pg_config ] &&
	[ "${HA_SKIP_BUILD:-0}" != 1 ]; then
	say "building and installing hipaa_audit for PostgreSQL 15 as well (cross-version test)"
	mkdir -p "$work/src15"
	tar -C "$repo" --exclude=.git --exclude=tmp_check --exclude=results -cf - . | tar -C "$work/src15" -xf -
	make -C "$work/src15" -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
	as_root make -C "$work/src15" -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install
	export HA_OLD_PG_BIN=/usr/lib/postgresql/15/bin
fi

# The benchmark end to end at tiny sizes (its figures mean nothing here;
# bench/run.sh at full size is the measurement): it must run on every
# version the suite runs on.
say "benchmark smoke run (bench/run.sh at tiny sizes)"
if HA_SKIP_APT=1 HA_SKIP_BUILD=1 BENCH_SECONDS=2 BENCH_WARMUP=1 BENCH_ROWS=20000 \
	BENCH_CLIENTS="1 4" BENCH_PURGE_ROWS=5000 BENCH_PURGE_RETENTION=5 \
	BENCH_PARTS="main purge scale merkle" BENCH_SCALE_ROWS=6400 BENCH_SCALE_CHAINS=4 \
	BENCH_MERKLE_ROWS=6400 BENCH_MERKLE_ROUNDS=1 \
	bash "$repo/bench/run.sh" >"$work/bench-smoke.log" 2>&1; then
	export HA_BENCH_SMOKE=pass
	echo "passed (log: $work/bench-smoke.log while the run lasts)"
else
	export HA_BENCH_SMOKE=fail
	tail -n 40 "$work/bench-smoke.log"
fi

as_test_user bash "$work/src/test/suite.sh" "$work"
