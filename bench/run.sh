#!/usr/bin/env bash
# Benchmark (not part of the test suite), from a fresh Debian 12 machine:
# installs what it needs, builds and installs hipaa_audit, starts a
# throwaway PostgreSQL tuned for benchmarking (fsync and synchronous_commit
# on, so every commit is a real flush), and compares three tables with the
# same audit-event columns:
#
#   plain      an ordinary table
#   protected  hipaa_audit.protect('protected_t', chains => BENCH_CHAINS)
#   diy        the do-it-yourself chain: PL/pgSQL BEFORE INSERT trigger,
#              pg_advisory_xact_lock, last row's hash, pgcrypto digest()
#
# on COPY of BENCH_ROWS rows, verification of those rows, backend memory
# during both, and single-row INSERT transactions (pgbench) at 1, 8 and 32
# clients.  Prints a results table at the end (also written to $BENCH_OUT
# if set) and cleans up on exit (also on failure or Ctrl-C).
#
#   bash bench/run.sh            (as root, or as a user with sudo)
#
# Environment:
#   BENCH_SECONDS=20     duration of each pgbench run
#   BENCH_ROWS=1000000   rows COPYed into each table (and verified)
#   BENCH_CHAINS=32      chains of the protected table (protect()'s default)
#   BENCH_CLIENTS="1 8 32"
#   BENCH_PORT=54340
#   BENCH_WARMUP=3       seconds of pgbench warm-up per table before the runs
#   BENCH_OUT=FILE       also write the results block to FILE
#   BENCH_PARTS="main purge"  main: COPY, verify, INSERTs (results 1-4);
#                        purge: purge_expired() of BENCH_PURGE_ROWS expired
#                        rows out of twice as many, against DELETE from a
#                        plain table (results 5)
#   BENCH_PURGE_ROWS=1000000
#   BENCH_PURGE_RETENTION=60  seconds; both COPYs must fit in it
#   BENCH_PARTS=scale    verification at scale (results 6): BENCH_SCALE_ROWS
#                        rows in BENCH_SCALE_CHAINS chains written by as many
#                        concurrent pgbench clients, 20 rows per transaction,
#                        so the chains interleave on every page; count(*) and
#                        verify() cold (server restarted, OS page cache
#                        dropped when run as root) and warm, with one process
#                        and with two (hipaa_audit.verify_workers 0 and 1)
#   BENCH_SCALE_ROWS=10000000  BENCH_SCALE_CHAINS=32
#   BENCH_PARTS=partitions  partitioned tables (results 7): INSERT TPS into a
#                        12-month partitioned protected table against the
#                        same plain one; an expired month of BENCH_PURGE_ROWS
#                        rows (written by four concurrent COPYs) removed by
#                        purge_expired() (partition dropped) against the
#                        same rows purged row by row from an unpartitioned
#                        table; verify() of the 12 partitions
#                        (BENCH_ROWS rows) with one process and with two
#   BENCH_PARTS=merkle   the Merkle tree (results 8): BENCH_MERKLE_ROWS rows in
#                        32 chains written by 32 concurrent clients; the
#                        first checkpoint (the tree of every row, as after an
#                        upgrade); then BENCH_MERKLE_ROUNDS times 10,000 more
#                        rows and a checkpoint (target < 100 ms); prove_row()
#                        of random rows with pgbench (target < 5 ms) and the
#                        proof's size; the stored tree's bytes per row;
#                        single-row INSERT TPS with and without a checkpoint
#                        every second
#   BENCH_MERKLE_ROWS=10000000  BENCH_MERKLE_ROUNDS=5
#   HA_SKIP_APT=1        skip apt-get;  HA_SKIP_BUILD=1  skip build+install
#   HA_KEEP=1            keep the work directory (server log, pgbench logs)
# R_* results are assigned by step() through printf -v.
# shellcheck disable=SC2154
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib.sh
source "$repo/test/lib.sh"

SECONDS_EACH=${BENCH_SECONDS:-20}
ROWS=${BENCH_ROWS:-1000000}
CHAINS=${BENCH_CHAINS:-32}
CLIENTS=${BENCH_CLIENTS:-"1 8 32"}
PORT=${BENCH_PORT:-54340}
WARMUP=${BENCH_WARMUP:-3}
PARTS=${BENCH_PARTS:-"main purge"}
PURGE_ROWS=${BENCH_PURGE_ROWS:-1000000}
PURGE_RETENTION=${BENCH_PURGE_RETENTION:-60}
SCALE_ROWS=${BENCH_SCALE_ROWS:-10000000}
SCALE_CHAINS=${BENCH_SCALE_CHAINS:-32}
MERKLE_ROWS=${BENCH_MERKLE_ROWS:-10000000}
MERKLE_ROUNDS=${BENCH_MERKLE_ROUNDS:-5}
part() { [[ " $PARTS " == *" $1 "* ]]; }

# The benchmark needs less than the tests: no pgTAP, no Perl TAP modules.
# pgbench and pgcrypto come with postgresql-$PG_MAJOR (or with the
# PostgreSQL that PG_CONFIG names, built with its contrib modules).
if [ "$HA_DEBIAN_PG" = 1 ]; then
	HA_PACKAGES="make gcc libc6-dev sudo
  postgresql-$PG_MAJOR postgresql-client-$PG_MAJOR postgresql-server-dev-$PG_MAJOR
  libssl-dev libkrb5-dev"
else
	HA_PACKAGES="make gcc libc6-dev sudo libssl-dev libkrb5-dev"
fi
install_pgtap() { :; }	# not needed here

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
install_packages
ensure_test_user

samplers=()
extra_cleanup() {
	local p
	for p in "${samplers[@]}"; do kill "$p" 2>/dev/null || true; done
}
make_work bench

mkdir -p "$work/pg" "$work/steps" "$work/data"
copy_and_build "$repo" "$work"

for f in "$PG_BIN/pgbench" "$("$PG_BIN/pg_config" --pkglibdir)/hipaa_audit.so" \
	"$("$PG_BIN/pg_config" --sharedir)/extension/pgcrypto.control"; do
	[ -e "$f" ] || { echo "missing $f" >&2; exit 1; }
done

PGH=$work/pg
psql_b() {	# psql_b ARGS...: quiet, unaligned, stop on error, database bench
	as_test_user "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$PGH" -p "$PORT" -U postgres -d bench "$@"
}

say "starting a throwaway PostgreSQL for benchmarking (socket $PGH, port $PORT)"
as_test_user bash -c "source '$work/src/test/lib.sh'; pg_start '$PGH' $PORT"
# pg_start writes test settings (fsync = off); later lines win.
as_test_user bash -c "cat >> '$PGH/data/postgresql.conf'" <<'EOF'

# bench/run.sh: benchmark settings (later lines override earlier ones)
fsync = on
synchronous_commit = on
full_page_writes = on
wal_sync_method = fdatasync
shared_buffers = 1GB
huge_pages = off
wal_buffers = 16MB
max_connections = 100
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min
checkpoint_completion_target = 0.9
maintenance_work_mem = 256MB
autovacuum = off
log_checkpoints = on
EOF
as_test_user bash -c "source '$work/src/test/lib.sh'; pg_stop '$PGH'; pg_start '$PGH' $PORT" ||
	{ cat "$PGH/server.log"; exit 1; }
as_test_user "$PG_BIN/psql" -X -q -h "$PGH" -p "$PORT" -U postgres -d postgres \
	-c "CREATE DATABASE bench TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"
psql_b -v chains="$CHAINS" -f "$work/src/bench/setup.sql" >/dev/null

pg_version=$(psql_b -c "SELECT version()")
settings=$(psql_b -F ' ' -c "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name)
	FROM pg_settings WHERE name IN ('fsync','synchronous_commit','shared_buffers','wal_buffers',
	'max_connections','max_wal_size','autovacuum','full_page_writes','wal_sync_method')")

# ----------------------------------------------------------------------------
# Measured steps: one psql session (one backend) per step.  The step's
# backend writes its PID to a file; a sampler polls /proc/PID/status for
# RssAnon (private memory) while the step runs; after the step the session
# reads its own VmHWM (peak resident set, which also counts the pages of
# shared_buffers the backend touched).  Results as KEY=value lines.
# ----------------------------------------------------------------------------
sample_rss() {	# sample_rss PIDFILE STOPFILE OUTFILE
	local pid="" max=0 v
	while [ ! -s "$1" ] && [ ! -e "$2" ]; do sleep 0.02; done
	pid=$(cat "$1" 2>/dev/null || true)
	while [ -n "$pid" ] && [ ! -e "$2" ] && [ -r "/proc/$pid/status" ]; do
		v=$(sed -n 's/^RssAnon:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || true)
		if [ -n "$v" ] && [ "$v" -gt "$max" ]; then max=$v; fi
		sleep 0.1
	done
	echo "$max" >"$3"
}

# step NAME SQL: run SQL (one or more statements, may print KEY=value lines)
# timed, in a fresh backend; sets R_<NAME>_secs, _hwm_kb, _anon_kb and any
# KEY=value the SQL printed as R_<NAME>_<KEY>.
step() {
	local name=$1 sql=$2 d=$work/steps/$1 out line key
	rm -f "$d.pid" "$d.stop" "$d.anon"
	cat >"$d.sql" <<EOF
\\o $d.pid
SELECT pg_backend_pid();
\\o
CREATE TEMP VIEW bench_cpu AS
  SELECT (f[12]::bigint + f[13]::bigint) / 100.0 AS s	-- utime + stime, in ticks of 1/100 s
    FROM string_to_array(split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ') ', 2), ' ') AS f;
SELECT extract(epoch FROM clock_timestamp()) AS t0, s AS c0, pg_current_wal_insert_lsn() AS w0 FROM bench_cpu \\gset
$sql
SELECT 'secs=' || round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3)
    || E'\\ncpu_secs=' || (s - :c0)
    || E'\\nwal_bytes=' || pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'w0') FROM bench_cpu;
SELECT 'hwm_kb=' || (regexp_match(s, 'VmHWM:\\s+(\\d+) kB'))[1]
    || E'\\nanon_end_kb=' || (regexp_match(s, 'RssAnon:\\s+(\\d+) kB'))[1]
  FROM pg_read_file('/proc/' || pg_backend_pid() || '/status') AS s;
EOF
	chown "$HA_USER" "$d.sql" 2>/dev/null || true
	sample_rss "$d.pid" "$d.stop" "$d.anon" &
	samplers+=($!)
	if ! out=$(psql_b -f "$d.sql" 2>&1); then
		touch "$d.stop"
		echo "$out" >&2
		echo "step $name failed" >&2
		exit 1
	fi
	touch "$d.stop"
	wait "${samplers[-1]}" || true
	unset 'samplers[-1]'
	while IFS= read -r line; do
		case $line in
		*=*)
			key=${line%%=*}
			[[ $key =~ ^[a-z_0-9]+$ ]] && printf -v "R_${name}_${key}" '%s' "${line#*=}"
			;;
		esac
	done <<<"$out"
	printf -v "R_${name}_anon_kb" '%s' "$(cat "$d.anon" 2>/dev/null || echo 0)"
	local a=R_${name}_anon_end_kb m=R_${name}_anon_kb
	# The sampler may miss the very end; the session's own last reading counts too.
	if [ "${!a:-0}" -gt "${!m:-0}" ]; then printf -v "$m" '%s' "${!a}"; fi
}

checkpoint() { psql_b -c "CHECKPOINT" >/dev/null; }

# ----------------------------------------------------------------------------
# The COPY, verification and INSERT comparisons (results 1-4).
run_main() {
	say "generating $ROWS audit events into a file (server-side COPY TO)"
	datafile=$work/data/events.tsv
	psql_b -c "COPY (
		SELECT 'user' || (g % 500),
		       (ARRAY['view chart','print summary','export record','edit note'])[1 + g % 4],
		       'MRN-' || lpad((g % 1000000)::text, 7, '0'),
		       ('10.20.' || (g % 256) || '.' || (g % 250 + 1))::inet,
		       rpad('accessed chart section ' || g || ' via EHR web client; reason: treatment; ', 100, 'x')
		  FROM generate_series(1, $ROWS) AS g) TO '$datafile'" >/dev/null
	echo "$(du -h "$datafile" | cut -f1) in $datafile"

	step idle "SELECT 1;"

	for t in plain protected diy; do
		say "COPY $ROWS rows into ${t}_t"
		checkpoint
		step "copy_$t" "COPY ${t}_t (actor, action, patient_mrn, client_addr, detail) FROM '$datafile';"
		eval "echo \"\${R_copy_${t}_secs} s\""
	done

	say "VACUUM ANALYZE, CHECKPOINT"
	psql_b -c "VACUUM ANALYZE plain_t" -c "VACUUM ANALYZE protected_t" -c "VACUUM ANALYZE diy_t" -c "CHECKPOINT"
	sizes=$(psql_b -F ' ' -c "SELECT string_agg(format('%s: table %s, total %s', c,
		pg_size_pretty(pg_relation_size(c)), pg_size_pretty(pg_total_relation_size(c))), E'\n' ORDER BY c)
		FROM unnest(ARRAY['plain_t','protected_t','diy_t']::regclass[]) AS c")

	say "verify: hipaa_audit.verify('protected_t')"
	step verify_protected "SELECT 'ok=' || ok || E'\\nrows=' || rows_checked || E'\\nchains=' || chains
	    || E'\\nproblems=' || problems FROM hipaa_audit.verify('protected_t');"
	echo "ok=$R_verify_protected_ok rows=$R_verify_protected_rows chains=$R_verify_protected_chains problems=$R_verify_protected_problems in $R_verify_protected_secs s"

	say "verify: the DIY equivalent (recompute digest() over every row in seq order, check links)"
	step verify_diy "SELECT 'rows=' || count(*) || E'\\nproblems=' || count(*) FILTER (WHERE NOT ok)
	  FROM (SELECT seq = row_number() OVER w
	           AND prev = coalesce(lag(hash) OVER w, '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
	           AND hash = digest(prev || diy_row_bytes(d), 'sha256') AS ok
	          FROM diy_t AS d WINDOW w AS (ORDER BY seq)) AS s;"
	echo "rows=$R_verify_diy_rows problems=$R_verify_diy_problems in $R_verify_diy_secs s"

	# ----------------------------------------------------------------------------
	fork_check() {	# prints "dup_seq=N dup_prev=N"
		psql_b -c "SELECT 'dup_seq=' || (SELECT count(*) FROM (SELECT seq FROM diy_t GROUP BY seq HAVING count(*) > 1) x)
		              || ' dup_prev=' || (SELECT count(*) FROM (SELECT prev FROM diy_t GROUP BY prev HAVING count(*) > 1) x)"
	}

	# What the pgbench backends wait on, sampled 10 times a second from one extra
	# session while a run lasts: "CPU" is a backend running (or runnable), e.g.
	# "Lock:advisory" one waiting for a chain, "IO:WALSync" one flushing WAL.
	wait_profile() {	# wait_profile SECONDS OUTFILE
		psql_b -F ' ' -c "CREATE TEMP TABLE ws (ev text)" -c "DO \$\$
	DECLARE t_end timestamptz := clock_timestamp() + interval '$1 seconds';
	BEGIN
	    WHILE clock_timestamp() < t_end LOOP
	        PERFORM pg_stat_clear_snapshot();
	        INSERT INTO ws SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU')
	          FROM pg_stat_activity WHERE application_name = 'pgbench';
	        PERFORM pg_sleep(0.1);
	    END LOOP;
	END \$\$" -c "SELECT string_agg(format('%s %s%%', ev, pct), ', ' ORDER BY n DESC)
	  FROM (SELECT ev, count(*) AS n, round(100.0 * count(*) / sum(count(*)) OVER ()) AS pct
	          FROM ws GROUP BY ev ORDER BY n DESC LIMIT 5) x" >"$2" 2>&1 || true
	}

	pgbench_run() {	# pgbench_run TABLE CLIENTS SECONDS LOG
		local jobs=2
		as_test_user "$PG_BIN/pgbench" -n -M prepared -c "$2" -j "$jobs" -T "$3" \
			-f "$work/src/bench/insert_$1.pgbench" -h "$PGH" -p "$PORT" -U postgres bench >"$4" 2>&1 ||
			{ cat "$4" >&2; echo "pgbench failed ($1, $2 clients)" >&2; exit 1; }
	}

	say "pgbench warm-up ($WARMUP s per table, 8 clients)"
	for t in plain protected diy; do
		pgbench_run "$t" 8 "$WARMUP" "$work/steps/warmup_$t.log"
	done

	for c in $CLIENTS; do
		for t in plain protected diy; do
			say "pgbench: single-row INSERT transactions into ${t}_t, $c clients, $SECONDS_EACH s"
			checkpoint
			log=$work/steps/pgbench_${t}_$c.log
			wait_profile "$((SECONDS_EACH > 2 ? SECONDS_EACH - 1 : 1))" "$work/steps/waits_${t}_$c.txt" &
			samplers+=($!)
			pgbench_run "$t" "$c" "$SECONDS_EACH" "$log"
			wait "${samplers[-1]}" || true
			unset 'samplers[-1]'
			printf -v "W_${t}_$c" '%s' "$(head -c 300 "$work/steps/waits_${t}_$c.txt")"
			tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$log")
			lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$log")
			failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
			printf -v "T_${t}_$c" '%s' "${tps:-0}"
			printf -v "L_${t}_$c" '%s' "${lat:-?}"
			printf -v "F_${t}_$c" '%s' "${failed:-0}"
			echo "tps=$tps latency=${lat} ms failed=${failed:-0}"
			eval "echo \"waits: \$W_${t}_$c\""
			if [ "$t" = diy ] && [ "$c" -ge 8 ]; then
				printf -v "FORK_$c" '%s' "$(fork_check)"
				eval "echo \"diy chain after $c clients: \$FORK_$c\""
			fi
		done
	done

	say "after the insert runs: verify both chains (not timed for the results)"
	post_protected=$(psql_b -F ' ' -c "SELECT 'ok=' || ok, 'rows=' || rows_checked, 'chains=' || chains,
		'problems=' || problems, coalesce('first=' || first_problem, '') FROM hipaa_audit.verify('protected_t')")
	post_diy=$(psql_b -F ' ' -c "SELECT 'rows=' || count(*), 'problems=' || count(*) FILTER (WHERE NOT ok)
	  FROM (SELECT seq = row_number() OVER w
	           AND prev = coalesce(lag(hash) OVER w, '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
	           AND hash = digest(prev || diy_row_bytes(d), 'sha256') AS ok
	          FROM diy_t AS d WINDOW w AS (ORDER BY seq)) AS s")
	echo "protected_t: $post_protected"
	echo "diy_t:       $post_diy"
}

# Purge: two batches of PURGE_ROWS rows, PURGE_RETENTION apart at most; the
# purge starts just after the first batch expires, so exactly the first
# batch goes.  The plain table loses the same rows by DELETE.
signing_key() {	# a signing key outside the data directory, once
	[ -f "$work/key/bench.pem" ] && return 0
	say "a signing key outside the data directory"
	mkdir -p "$work/key"
	chown "$HA_USER" "$work/key" 2>/dev/null || true
	as_test_user bash -c "umask 077; openssl genpkey -algorithm ed25519 -out '$work/key/bench.pem'"
	as_test_user bash -c "printf '%s\n' \"hipaa_audit.signing_key_file = '$work/key/bench.pem'\" \
		\"hipaa_audit.signer_name = 'bench.example'\" >> '$PGH/data/postgresql.conf'"
	as_test_user "$PG_BIN/pg_ctl" -D "$PGH/data" reload >/dev/null
	sleep 1
}

run_purge() {
	local file=$work/data/purge.tsv t1 late b
	signing_key
	psql_b -c "COPY (
		SELECT 'user' || (g % 500), 'view chart', 'MRN-' || lpad((g % 1000000)::text, 7, '0'),
		       ('10.20.' || (g % 256) || '.' || (g % 250 + 1))::inet,
		       rpad('accessed chart section ' || g || ' via EHR web client; reason: treatment; ', 100, 'x')
		  FROM generate_series(1, $PURGE_ROWS) AS g) TO '$file'"
	psql_b -c "CREATE TABLE purge_plain_t (LIKE plain_t INCLUDING ALL,
		           at timestamptz NOT NULL DEFAULT clock_timestamp())" \
		-c "CREATE INDEX ON purge_plain_t (at)" \
		-c "CREATE TABLE purge_t (LIKE plain_t INCLUDING ALL)" \
		-c "SELECT hipaa_audit.protect('purge_t', interval '$PURGE_RETENTION seconds', $CHAINS)" >/dev/null
	for b in 1 2; do
		say "purge: COPY batch $b ($PURGE_ROWS rows) into purge_plain_t and purge_t"
		psql_b -c "COPY purge_plain_t (actor, action, patient_mrn, client_addr, detail) FROM '$file'"
		psql_b -c "COPY purge_t (actor, action, patient_mrn, client_addr, detail) FROM '$file'"
		if [ "$b" = 1 ]; then
			t1=$(psql_b -c "SELECT extract(epoch FROM max(audit_at)) FROM purge_t")
			sleep 3
		fi
	done
	psql_b -c "VACUUM ANALYZE purge_plain_t" -c "VACUUM ANALYZE purge_t" -c "CHECKPOINT"
	say "purge: waiting until batch 1 is past its retention"
	psql_b -c "SELECT pg_sleep(greatest(0, $t1 + $PURGE_RETENTION + 0.2 - extract(epoch FROM clock_timestamp())))" >/dev/null
	# Batch 2 must still be within retention when the purge starts.
	late=$(psql_b -c "SELECT extract(epoch FROM clock_timestamp()) - $PURGE_RETENTION
		- extract(epoch FROM min(audit_at)) FROM purge_t WHERE audit_at > to_timestamp($t1)")
	if ! awk -v l="$late" 'BEGIN { exit !(l + 0 < -1) }'; then
		echo "the COPYs took longer than the retention; raise BENCH_PURGE_RETENTION" >&2
		exit 1
	fi
	step purge_protected "SELECT 'removed=' || rows_removed FROM hipaa_audit.purge_expired('purge_t');"
	step purge_plain "WITH d AS (DELETE FROM purge_plain_t
		WHERE at < (SELECT cutoff FROM hipaa_audit.purge_receipts ORDER BY id DESC LIMIT 1) RETURNING 1)
		SELECT 'removed=' || count(*) FROM d;"
	echo "protected: removed $R_purge_protected_removed in $R_purge_protected_secs s; plain: removed $R_purge_plain_removed in $R_purge_plain_secs s"
	purge_receipt=$(psql_b -F ' ' -c "SELECT 'id=' || id, 'rows=' || rows_removed, 'anchors=' ||
		(SELECT count(*) FROM hipaa_audit.purge_anchors a WHERE a.receipt_id = r.id),
		'verify_receipt=' || (hipaa_audit.verify_receipt(note, hipaa_audit.verifier_key())).status
		FROM hipaa_audit.purge_receipts r ORDER BY id DESC LIMIT 1")
	step verify_after_purge "SELECT 'ok=' || ok || E'\\nrows=' || rows_checked || E'\\nproblems=' || problems
		FROM hipaa_audit.verify('purge_t');"
}

# ----------------------------------------------------------------------------
# Partitioned tables (results 7): single-row INSERTs into a monthly-
# partitioned protected table against the same plain one; an expired month
# of PURGE_ROWS rows removed by purge_expired() of the partitioned table
# (the partition dropped whole) against purge_expired() of the same rows in
# an unpartitioned table (row by row); verify() of a 12-partition table
# holding ROWS rows with one process and with two.
run_partitions() {
	local m c t log tps lat t1 file=$work/data/ppurge.tsv
	signing_key
	say "partitions: monthly-partitioned tables, 12 months (plain and protected)"
	for t in pplain_t pprot_t pverify_t; do
		psql_b -c "CREATE TABLE $t (id bigserial, happened timestamptz NOT NULL DEFAULT now(),
			actor text NOT NULL, action text NOT NULL, patient_mrn text NOT NULL, client_addr inet,
			detail text) PARTITION BY RANGE (happened)" >/dev/null
		for m in $(seq 0 11); do
			psql_b -c "CREATE TABLE ${t}_$m PARTITION OF $t FOR VALUES
				FROM (date_trunc('month', now()) - interval '$((11 - m)) months')
				TO (date_trunc('month', now()) - interval '$((10 - m)) months')" >/dev/null
		done
	done
	psql_b -c "SELECT hipaa_audit.protect('pprot_t', chains => $CHAINS)" \
		-c "SELECT hipaa_audit.protect('pverify_t', chains => $CHAINS)" >/dev/null
	for t in pplain pprot; do
		sed "s/INSERT INTO protected_t/INSERT INTO ${t}_t/" "$work/src/bench/insert_protected.pgbench" \
			>"$work/steps/insert_$t.pgbench"
		chown "$HA_USER" "$work/steps/insert_$t.pgbench" 2>/dev/null || true
	done
	ppgbench() {	# ppgbench TABLE CLIENTS SECONDS LOG
		as_test_user "$PG_BIN/pgbench" -n -M prepared -c "$2" -j 2 -T "$3" \
			-f "$work/steps/insert_$1.pgbench" -h "$PGH" -p "$PORT" -U postgres bench >"$4" 2>&1 ||
			{ cat "$4" >&2; echo "pgbench failed ($1, $2 clients)" >&2; exit 1; }
	}
	for t in pplain pprot; do
		ppgbench "$t" 8 "$WARMUP" "$work/steps/warmup_$t.log"
	done
	for c in $CLIENTS; do
		for t in pplain pprot; do
			say "pgbench: single-row INSERT transactions into ${t}_t (current month), $c clients, $SECONDS_EACH s"
			checkpoint
			log=$work/steps/pgbench_${t}_$c.log
			ppgbench "$t" "$c" "$SECONDS_EACH" "$log"
			tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$log")
			lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$log")
			printf -v "PT_${t}_$c" '%s' "${tps:-0}"
			printf -v "PL_${t}_$c" '%s' "${lat:-?}"
			echo "tps=$tps latency=$lat ms"
		done
	done
	pins_verify=$(psql_b -F ' ' -c "SELECT 'ok=' || ok, 'rows=' || rows_checked, 'problems=' || problems
		FROM hipaa_audit.verify('pprot_t')")

	say "partitions: $ROWS rows over the 12 months of pverify_t"
	psql_b -c "INSERT INTO pverify_t (happened, actor, action, patient_mrn, client_addr, detail)
		SELECT date_trunc('month', now()) - (g % 12) * interval '1 month' + interval '1 day',
		       'user' || (g % 500), 'view chart', 'MRN-' || lpad((g % 1000000)::text, 7, '0'),
		       ('10.20.' || (g % 256) || '.' || (g % 250 + 1))::inet,
		       rpad('accessed chart section ' || g || ' via EHR web client; reason: treatment; ', 100, 'x')
		  FROM generate_series(1, $ROWS) AS g" >/dev/null
	psql_b -c "VACUUM ANALYZE pverify_t" -c "CHECKPOINT" >/dev/null
	for w in 0 1; do
		step "pverify_$w" "SET hipaa_audit.verify_workers = $w;
			SELECT 'ok=' || ok || E'\\nrows=' || rows_checked || E'\\nproblems=' || problems
			  FROM hipaa_audit.verify('pverify_t');"
		eval "echo \"verify, $((w + 1)) process(es): \${R_pverify_${w}_secs} s\""
	done

	say "partitions: an expired month of $PURGE_ROWS rows, partitioned and not"
	psql_b -c "COPY (
		SELECT date_trunc('month', now()) - interval '1 month' + interval '1 day',
		       'user' || (g % 500), 'view chart', 'MRN-' || lpad((g % 1000000)::text, 7, '0'),
		       ('10.20.' || (g % 256) || '.' || (g % 250 + 1))::inet,
		       rpad('accessed chart section ' || g || ' via EHR web client; reason: treatment; ', 100, 'x')
		  FROM generate_series(1, $PURGE_ROWS) AS g) TO '$file'" >/dev/null
	psql_b -c "CREATE TABLE ppurge_t (id bigserial, happened timestamptz NOT NULL,
			actor text NOT NULL, action text NOT NULL, patient_mrn text NOT NULL, client_addr inet,
			detail text) PARTITION BY RANGE (happened)" \
		-c "CREATE TABLE ppurge_t_old PARTITION OF ppurge_t FOR VALUES
			FROM (date_trunc('month', now()) - interval '1 month') TO (date_trunc('month', now()))" \
		-c "CREATE TABLE ppurge_t_now PARTITION OF ppurge_t FOR VALUES
			FROM (date_trunc('month', now())) TO (date_trunc('month', now()) + interval '1 month')" \
		-c "CREATE TABLE upurge_t (LIKE ppurge_t INCLUDING DEFAULTS INCLUDING IDENTITY)" \
		-c "SELECT hipaa_audit.protect('ppurge_t', interval '$PURGE_RETENTION seconds', $CHAINS)" \
		-c "SELECT hipaa_audit.protect('upurge_t', interval '$PURGE_RETENTION seconds', $CHAINS)" >/dev/null
	# Written as an audit table is: by concurrent writers (four COPYs at
	# once, so four chains), not by one transaction into one chain.
	split -n l/4 -d "$file" "$file.part"
	chown "$HA_USER" "$file".part* 2>/dev/null || true
	for t in ppurge_t upurge_t; do
		local pids=()
		for f in "$file".part*; do
			psql_b -c "COPY $t (happened, actor, action, patient_mrn, client_addr, detail) FROM '$f'" >/dev/null &
			pids+=($!)
		done
		wait "${pids[@]}"
	done
	psql_b -c "VACUUM ANALYZE ppurge_t" -c "VACUUM ANALYZE upurge_t" -c "CHECKPOINT" >/dev/null
	t1=$(psql_b -c "SELECT extract(epoch FROM greatest((SELECT max(audit_at) FROM ppurge_t_old),
		(SELECT max(audit_at) FROM upurge_t)))")
	psql_b -c "SELECT pg_sleep(greatest(0, $t1 + $PURGE_RETENTION + 0.2 - extract(epoch FROM clock_timestamp())))" >/dev/null
	# The current month holds a row within retention: it stays.
	psql_b -c "INSERT INTO ppurge_t (happened, actor, action, patient_mrn) VALUES (now(), 'u', 'a', 'm')" >/dev/null
	step ppurge "SELECT 'removed=' || sum(rows_removed) FROM hipaa_audit.purge_expired('ppurge_t');"
	step upurge "SELECT 'removed=' || sum(rows_removed) FROM hipaa_audit.purge_expired('upurge_t');"
	ppurge_receipt=$(psql_b -F ' ' -c "SELECT 'rows=' || rows_removed,
		'verify_receipt=' || (hipaa_audit.verify_receipt(note, hipaa_audit.verifier_key())).status,
		'note_bytes=' || octet_length(note)
		FROM hipaa_audit.purge_receipts WHERE note LIKE '%removed drop%' ORDER BY id DESC LIMIT 1")
	ppurge_left=$(psql_b -F ' ' -c "SELECT 'partitions=' || count(*) FROM pg_inherits WHERE inhparent = 'ppurge_t'::regclass")
	echo "partitioned: removed $R_ppurge_removed in $R_ppurge_secs s, WAL $R_ppurge_wal_bytes bytes; unpartitioned: removed $R_upurge_removed in $R_upurge_secs s, WAL $R_upurge_wal_bytes bytes"
}

# ----------------------------------------------------------------------------
# Verification at scale (results 6).
cold_caches() {	# restart the server; drop the OS page cache when allowed
	as_test_user bash -c "source '$work/src/test/lib.sh'; pg_stop '$PGH'; pg_start '$PGH' $PORT" >/dev/null
	sync
	if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
		COLD_HOW="server restarted, OS page cache dropped"
	else
		COLD_HOW="server restarted; the OS page cache could NOT be dropped (not root), so cold means PostgreSQL-cold only"
	fi
}

run_scale() {
	local per_client=$(((SCALE_ROWS + 20 * SCALE_CHAINS - 1) / (20 * SCALE_CHAINS))) temp w
	SCALE_ROWS=$((per_client * 20 * SCALE_CHAINS))
	say "scale: $SCALE_ROWS rows, $SCALE_CHAINS chains, $SCALE_CHAINS concurrent writers"
	psql_b -c "CREATE TABLE scale_t (LIKE plain_t INCLUDING ALL);
		SELECT hipaa_audit.protect('scale_t', chains => $SCALE_CHAINS);" >/dev/null
	printf '%s\n' "INSERT INTO scale_t (actor, action, patient_mrn, client_addr, detail)" \
		"SELECT 'user' || (g % 500), 'read', 'MRN' || lpad((g * 7919 % 1000000)::text, 7, '0')," \
		"       ('10.20.' || (g % 250) || '.' || (g % 200))::inet, 'record accessed from ward ' || (g % 40)" \
		"  FROM generate_series(1, 20) g;" >"$work/scale_insert.sql"
	chmod 644 "$work/scale_insert.sql"
	# The fill is not what is measured: its commits need not wait for the disk.
	as_test_user env PGOPTIONS="-c synchronous_commit=off" "$PG_BIN/pgbench" -n -h "$PGH" -p "$PORT" -U postgres \
		-c "$SCALE_CHAINS" -j 2 -t "$per_client" -f "$work/scale_insert.sql" bench >"$work/steps/scale_fill.log" 2>&1 ||
		{ cat "$work/steps/scale_fill.log"; exit 1; }
	psql_b -c "VACUUM (ANALYZE) scale_t" >/dev/null
	checkpoint
	SCALE_SIZE=$(psql_b -c "SELECT pg_size_pretty(pg_table_size('scale_t'))")
	SCALE_INTERLEAVE=$(psql_b -c "SELECT round(avg(n), 1) FROM (SELECT count(DISTINCT audit_chain) AS n
		FROM scale_t GROUP BY (ctid::text::point)[0]) p")
	for temp in cold warm; do
		for w in 0 1; do
			if [ "$temp" = cold ]; then cold_caches; fi
			step "scale_count_${temp}_$w" "SET max_parallel_workers_per_gather = $w;
				SELECT 'rows=' || count(*) FROM scale_t;"
			if [ "$temp" = cold ]; then cold_caches; fi
			step "scale_verify_${temp}_$w" "SET hipaa_audit.verify_workers = $w;
				SELECT 'ok=' || ok || E'\\nrows=' || rows_checked || E'\\nproblems=' || problems
				  FROM hipaa_audit.verify('scale_t');"
		done
	done
	# Incremental: a checkpoint, 10,000 more rows from as many writers, then
	# verify(since => that checkpoint).
	if [ ! -f "$work/key/bench.pem" ]; then
		mkdir -p "$work/key"
		chown "$HA_USER" "$work/key" 2>/dev/null || true
		as_test_user bash -c "umask 077; openssl genpkey -algorithm ed25519 -out '$work/key/bench.pem'"
		as_test_user bash -c "printf '%s\n' \"hipaa_audit.signing_key_file = '$work/key/bench.pem'\" \
			\"hipaa_audit.signer_name = 'bench.example'\" >> '$PGH/data/postgresql.conf'"
		as_test_user "$PG_BIN/pg_ctl" -D "$PGH/data" reload >/dev/null
		sleep 1
	fi
	psql_b -c "SELECT hipaa_audit.checkpoint('scale_t')" >/dev/null
	SCALE_SINCE=$(psql_b -c "SELECT max(id) FROM hipaa_audit.checkpoints WHERE relid = 'scale_t'::regclass")
	as_test_user env PGOPTIONS="-c synchronous_commit=off" "$PG_BIN/pgbench" -n -h "$PGH" -p "$PORT" -U postgres \
		-c "$SCALE_CHAINS" -j 2 -t "$(((10000 + 20 * SCALE_CHAINS - 1) / (20 * SCALE_CHAINS)))" \
		-f "$work/scale_insert.sql" bench >"$work/steps/scale_fill2.log" 2>&1 ||
		{ cat "$work/steps/scale_fill2.log"; exit 1; }
	step scale_since "SELECT 'ok=' || ok || E'\\nrows=' || rows_checked || E'\\nproblems=' || problems
		  FROM hipaa_audit.verify('scale_t', since => $SCALE_SINCE);"
	# The same new rows as a time range (through the BRIN index on
	# audit_at), and one whole chain.
	SCALE_FROM=$(psql_b -c "SELECT created_at FROM hipaa_audit.checkpoints WHERE id = $SCALE_SINCE")
	step scale_range "SELECT 'ok=' || ok || E'\\nrows=' || rows_checked || E'\\nproblems=' || problems
		  FROM hipaa_audit.verify_rows('scale_t', from_time => '$SCALE_FROM');"
	step scale_chain "SELECT 'ok=' || ok || E'\\nrows=' || rows_checked || E'\\nproblems=' || problems
		  FROM hipaa_audit.verify_rows('scale_t', chain => 0);"
}

# The Merkle tree (results 8).
run_merkle() {
	local per_client=$(((MERKLE_ROWS + 640 - 1) / 640)) i add_per_client=$(((10000 + 639) / 640))
	MERKLE_ROWS=$((per_client * 640))
	say "merkle: $MERKLE_ROWS rows, 32 chains, 32 concurrent writers"
	signing_key
	psql_b -c "CREATE TABLE merkle_t (LIKE plain_t INCLUDING ALL);
		SELECT hipaa_audit.protect('merkle_t', chains => 32);" >/dev/null
	printf '%s\n' "INSERT INTO merkle_t (actor, action, patient_mrn, client_addr, detail)" \
		"SELECT 'user' || (g % 500), 'read', 'MRN' || lpad((g * 7919 % 1000000)::text, 7, '0')," \
		"       ('10.20.' || (g % 250) || '.' || (g % 200))::inet, 'record accessed from ward ' || (g % 40)" \
		"  FROM generate_series(1, 20) g;" >"$work/merkle_insert.sql"
	printf '%s\n' "INSERT INTO merkle_t (actor, action, patient_mrn, client_addr, detail)" \
		"VALUES ('user' || :client_id, 'read', 'MRN0000001', '10.20.0.1', 'one row');" >"$work/merkle_one.sql"
	printf '%s\n' '\set c random(0, 31)' '\set s random(1, :heads)' \
		"SELECT length(hipaa_audit.prove_row('merkle_t', :c, :s));" >"$work/merkle_prove.sql"
	chmod 644 "$work"/merkle_*.sql
	as_test_user env PGOPTIONS="-c synchronous_commit=off" "$PG_BIN/pgbench" -n -h "$PGH" -p "$PORT" -U postgres \
		-c 32 -j 2 -t "$per_client" -f "$work/merkle_insert.sql" bench >"$work/steps/merkle_fill.log" 2>&1 ||
		{ cat "$work/steps/merkle_fill.log"; exit 1; }
	psql_b -c "VACUUM (ANALYZE) merkle_t" >/dev/null
	checkpoint
	step merkle_first "SELECT 'size=' || split_part(hipaa_audit.checkpoint('merkle_t'), E'\\n', 2);"
	step merkle_vtree "SELECT 'ok=' || ok || E'\\nleaves=' || leaves_compared FROM hipaa_audit.verify_tree('merkle_t');"
	MERKLE_CP=""
	for i in $(seq 1 "$MERKLE_ROUNDS"); do
		as_test_user env PGOPTIONS="-c synchronous_commit=off" "$PG_BIN/pgbench" -n -h "$PGH" -p "$PORT" -U postgres \
			-c 32 -j 2 -t "$add_per_client" -f "$work/merkle_insert.sql" bench >"$work/steps/merkle_add.log" 2>&1 ||
			{ cat "$work/steps/merkle_add.log"; exit 1; }
		step "merkle_cp_$i" "SELECT 'size=' || split_part(hipaa_audit.checkpoint('merkle_t'), E'\\n', 2);"
		local v=R_merkle_cp_${i}_secs
		MERKLE_CP="$MERKLE_CP ${!v}"
	done
	MERKLE_ADDED=$((add_per_client * 640))
	MERKLE_CP_MEDIAN=$(printf '%s\n' $MERKLE_CP | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	MERKLE_CP_MAX=$(printf '%s\n' $MERKLE_CP | sort -n | tail -1)
	# Proofs: random rows, one client, 10 seconds.
	local heads
	heads=$(psql_b -c "SELECT min(m) FROM (SELECT max(audit_seq) AS m FROM merkle_t GROUP BY audit_chain) x")
	as_test_user "$PG_BIN/pgbench" -n -h "$PGH" -p "$PORT" -U postgres -c 1 -T 10 -D heads="$heads" \
		-f "$work/merkle_prove.sql" bench >"$work/steps/merkle_prove.log" 2>&1 ||
		{ cat "$work/steps/merkle_prove.log"; exit 1; }
	MERKLE_PROVE_MS=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$work/steps/merkle_prove.log")
	MERKLE_PROVE_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/steps/merkle_prove.log" | head -1)
	printf 'SELECT 1;\n' >"$work/steps/select1.sql"; chmod 644 "$work/steps/select1.sql"
	as_test_user "$PG_BIN/pgbench" -n -h "$PGH" -p "$PORT" -U postgres -c 1 -T 5 \
		-f "$work/steps/select1.sql" bench >"$work/steps/merkle_select1.log" 2>&1 || true
	MERKLE_SELECT1_MS=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$work/steps/merkle_select1.log")
	MERKLE_PROOF=$(psql_b -F ' ' -c "SELECT length(p), array_length(regexp_split_to_array(split_part(p, E'\\n\\n', 1), E'\\n'), 1) - 3
		FROM (SELECT hipaa_audit.prove_row('merkle_t', 7, $((heads / 2))) AS p) x")
	MERKLE_STORE=$(psql_b -F ' ' -c "SELECT pg_total_relation_size('hipaa_audit.merkle_tiles'),
		pg_total_relation_size('hipaa_audit.merkle_ranges'), (SELECT count(*) FROM hipaa_audit.merkle_tiles),
		pg_table_size('merkle_t'), (SELECT count(*) FROM merkle_t)")
	# Single-row INSERTs, 8 clients: without checkpoints, then with one
	# every second (which must not block the writers).
	as_test_user "$PG_BIN/pgbench" -n -h "$PGH" -p "$PORT" -U postgres -c 8 -j 2 -T "$SECONDS_EACH" \
		-f "$work/merkle_one.sql" bench >"$work/steps/merkle_ins_quiet.log" 2>&1 ||
		{ cat "$work/steps/merkle_ins_quiet.log"; exit 1; }
	MERKLE_INS_QUIET=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/steps/merkle_ins_quiet.log" | head -1)
	touch "$work/steps/merkle_cp_loop"
	( while [ -e "$work/steps/merkle_cp_loop" ]; do
		psql_b -c "SELECT hipaa_audit.checkpoint('merkle_t')" >/dev/null; sleep 1
	done ) &
	local loop=$!
	as_test_user "$PG_BIN/pgbench" -n -h "$PGH" -p "$PORT" -U postgres -c 8 -j 2 -T "$SECONDS_EACH" \
		-f "$work/merkle_one.sql" bench >"$work/steps/merkle_ins_cp.log" 2>&1 ||
		{ rm -f "$work/steps/merkle_cp_loop"; cat "$work/steps/merkle_ins_cp.log"; exit 1; }
	rm -f "$work/steps/merkle_cp_loop"
	wait "$loop" || true
	MERKLE_INS_CP=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/steps/merkle_ins_cp.log" | head -1)
	MERKLE_CPS_DURING=$(psql_b -c "SELECT count(*) FROM hipaa_audit.checkpoints WHERE relid = 'merkle_t'::regclass")
}

if part main; then run_main; fi
if part purge; then run_purge; fi
if part scale; then run_scale; fi
if part partitions; then run_partitions; fi
if part merkle; then run_merkle; fi

# ----------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
meets() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 >= t) ? "met" : "NOT met" }'; }

results=$work/results.txt
{
	echo "==================== hipaa_audit benchmark results ===================="
	echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "host:        $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo) RAM"
	echo "load:        load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews results)"
	echo "server:      $pg_version"
	echo "settings:    $settings"
	echo "hipaa_audit: $(psql_b -c "SELECT extversion FROM pg_extension WHERE extname = 'hipaa_audit'"), protected_t chains = $CHAINS"
	part main && echo "pgbench:     -M prepared -j 2 -T $SECONDS_EACH, one INSERT per transaction, Unix socket"
	echo
	if part main; then
	echo "1. Single-row INSERT transactions (TPS; synchronous_commit = on, fsync = on)"
	printf '   %-8s %12s %12s %12s   %-16s %-10s %s\n' clients plain protected diy "protected/plain" "diy/plain" "target protected >= 0.85x"
	for c in $CLIENTS; do
		p=T_plain_$c; q=T_protected_$c; d=T_diy_$c
		printf '   %-8s %12.1f %12.1f %12.1f   %-16s %-10s %s\n' "$c" "${!p}" "${!q}" "${!d}" \
			"$(ratio "${!q}" "${!p}")" "$(ratio "${!d}" "${!p}")" \
			"$(meets "$(awk -v a="${!q}" -v b="${!p}" 'BEGIN { print (b > 0) ? a / b : 0 }')" 0.85)"
	done
	printf '   %-8s %12s %12s %12s\n' "latency" "(avg ms)" "" ""
	for c in $CLIENTS; do
		p=L_plain_$c; q=L_protected_$c; d=L_diy_$c
		printf '   %-8s %12s %12s %12s\n' "$c" "${!p}" "${!q}" "${!d}"
	done
	echo "   what the pgbench backends were doing (share of samples, 10/s):"
	for c in $CLIENTS; do
		for t in plain protected diy; do
			w=W_${t}_$c
			printf '   %3s clients %-10s %s\n' "$c" "$t" "${!w}"
		done
	done
	for c in $CLIENTS; do
		for t in plain protected diy; do
			f=F_${t}_$c
			[ "${!f}" = 0 ] || echo "   WARNING: $t, $c clients: ${!f} failed transactions"
		done
	done
	for c in $CLIENTS; do
		f=FORK_$c
		if [ -n "${!f:-}" ]; then
			case ${!f} in
			"dup_seq=0 dup_prev=0") echo "   diy chain after $c clients: no fork (${!f})" ;;
			*) echo "   diy chain after $c clients: FORKED (${!f})" ;;
			esac
		fi
	done
	echo
	echo "2. COPY $ROWS rows from a file (server-side COPY FROM, one transaction)"
	echo "   (backend CPU = user+system time of the backend that ran the COPY; less sensitive to other load)"
	printf '   %-10s %8s %10s %7s %9s %12s %7s %9s   %s\n' table seconds rows/s ratio "CPU s" "rows/CPU-s" ratio WAL target
	for t in plain protected diy; do
		s=R_copy_${t}_secs c=R_copy_${t}_cpu_secs w=R_copy_${t}_wal_bytes
		tgt=""
		[ "$t" = protected ] && tgt="protected >= 0.5x: $(meets "$(awk -v a="$R_copy_plain_secs" -v b="${!s}" 'BEGIN { print (b > 0) ? a / b : 0 }')" 0.5)"
		printf '   %-10s %8.2f %10s %7s %9.2f %12s %7s %9s   %s\n' "$t" "${!s}" "$(rate "$ROWS" "${!s}")" \
			"$(ratio "$R_copy_plain_secs" "${!s}")" "${!c}" "$(rate "$ROWS" "${!c}")" \
			"$(ratio "$R_copy_plain_cpu_secs" "${!c}")" "$(mb "$(awk -v b="${!w}" 'BEGIN { print b / 1024 }')")" "$tgt"
	done
	echo "   ${sizes//$'\n'/$'\n'   }"
	echo
	echo "3. Verification of the $ROWS COPYed rows"
	printf '   %-36s %8s %10s %7s %12s   %s\n' "" seconds rows/s "CPU s" "rows/CPU-s" result
	printf '   %-36s %8.2f %10s %7.2f %12s   %s\n' "hipaa_audit.verify('protected_t')" "$R_verify_protected_secs" \
		"$(rate "$R_verify_protected_rows" "$R_verify_protected_secs")" "$R_verify_protected_cpu_secs" \
		"$(rate "$R_verify_protected_rows" "$R_verify_protected_cpu_secs")" \
		"ok=$R_verify_protected_ok rows=$R_verify_protected_rows chains=$R_verify_protected_chains problems=$R_verify_protected_problems"
	printf '   %-36s %8.2f %10s %7.2f %12s   %s\n' "DIY query (digest, lag, row_number)" "$R_verify_diy_secs" \
		"$(rate "$R_verify_diy_rows" "$R_verify_diy_secs")" "$R_verify_diy_cpu_secs" \
		"$(rate "$R_verify_diy_rows" "$R_verify_diy_cpu_secs")" \
		"rows=$R_verify_diy_rows problems=$R_verify_diy_problems"
	echo "   target: verify >= 1,000,000 rows/s: $(meets "$(rate "$R_verify_protected_rows" "$R_verify_protected_secs")" 1000000) (wall clock), $(meets "$(rate "$R_verify_protected_rows" "$R_verify_protected_cpu_secs")" 1000000) (per CPU second)"
	echo "   after the insert runs: protected_t $post_protected"
	echo "                          diy_t       $post_diy"
	echo
	echo "4. Backend memory (the backend that did the work; fresh session per step)"
	echo "   peak RssAnon = private memory, sampled every 0.1 s;"
	echo "   VmHWM = peak resident set, includes the shared_buffers pages the backend touched"
	printf '   %-22s %16s %16s\n' step "peak RssAnon" "VmHWM"
	for s in idle copy_plain copy_protected copy_diy verify_protected verify_diy; do
		a=R_${s}_anon_kb; h=R_${s}_hwm_kb
		printf '   %-22s %16s %16s\n' "$s" "$(mb "${!a:-0}")" "$(mb "${!h:-0}")"
	done
	echo
	fi
	if part purge; then
	echo "5. Purge: $PURGE_ROWS expired rows of $((2 * PURGE_ROWS)), one transaction (retention $PURGE_RETENTION s)"
	echo "   (plain: DELETE ... WHERE at < the receipt's cutoff, through an index on at)"
	printf '   %-30s %8s %10s %7s %9s %7s %10s %14s\n' "" seconds rows/s ratio "CPU s" ratio WAL "peak RssAnon"
	for s in purge_plain purge_protected; do
		t=R_${s}_secs c=R_${s}_cpu_secs w=R_${s}_wal_bytes r=R_${s}_removed a=R_${s}_anon_kb
		printf '   %-30s %8.2f %10s %7s %9.2f %7s %10s %14s\n' \
			"$([ $s = purge_plain ] && echo "plain DELETE" || echo "hipaa_audit.purge_expired()")" \
			"${!t}" "$(rate "${!r}" "${!t}")" "$(ratio "$R_purge_plain_secs" "${!t}")" "${!c}" \
			"$(ratio "$R_purge_plain_cpu_secs" "${!c}")" "$(mb "$(awk -v b="${!w}" 'BEGIN { print b / 1024 }')")" \
			"$(mb "${!a:-0}")"
	done
	echo "   rows removed: plain $R_purge_plain_removed, protected $R_purge_protected_removed (expected $PURGE_ROWS each)"
	echo "   receipt: $purge_receipt"
	echo "   verify() of the $PURGE_ROWS rows kept: $R_verify_after_purge_secs s, ok=$R_verify_after_purge_ok rows=$R_verify_after_purge_rows problems=$R_verify_after_purge_problems"
	fi
	if part scale; then
	echo "6. Verification at scale: $SCALE_ROWS rows ($SCALE_SIZE), $SCALE_CHAINS chains written by $SCALE_CHAINS"
	echo "   concurrent clients, 20 rows per transaction (on average $SCALE_INTERLEAVE chains per 8 kB page)"
	echo "   cold: ${COLD_HOW:-}; warm: right after, table in the OS cache"
	echo "   processes: 1 = verify_workers 0 (count(*): max_parallel_workers_per_gather 0); 2 = one worker"
	printf '   %-6s %-10s %9s %12s %9s %12s %12s   %s\n' caches processes "count s" "verify s" "rows/s" "rows/s/proc" "verify/count" "peak RssAnon (leader)"
	for temp in cold warm; do
		for w in 0 1; do
			c=R_scale_count_${temp}_${w}_secs v=R_scale_verify_${temp}_${w}_secs a=R_scale_verify_${temp}_${w}_anon_kb
			o=R_scale_verify_${temp}_${w}_ok
			printf '   %-6s %-10s %9.2f %12.2f %9s %12s %12s   %s %s\n' "$temp" "$((w + 1))" "${!c}" "${!v}" \
				"$(rate "$SCALE_ROWS" "${!v}")" "$(rate "$SCALE_ROWS" "$(awk -v s="${!v}" -v p="$((w + 1))" 'BEGIN { print s * p }')")" \
				"$(ratio "${!v}" "${!c}")" "$(mb "${!a:-0}")" "ok=${!o}"
		done
	done
	echo "   targets: warm, 1 process >= 2,000,000 rows/s: $(meets "$(rate "$SCALE_ROWS" "$R_scale_verify_warm_0_secs")" 2000000);" \
		"2 processes >= 1.7x 1: $(meets "$(awk -v a="$R_scale_verify_warm_0_secs" -v b="$R_scale_verify_warm_1_secs" 'BEGIN { print (b > 0) ? a / b : 0 }')" 1.7)" \
		"($(ratio "$R_scale_verify_warm_0_secs" "$R_scale_verify_warm_1_secs"));" \
		"cold verify <= 3x cold count(*): $(awk -v v="$R_scale_verify_cold_1_secs" -v c="$R_scale_count_cold_1_secs" 'BEGIN { print (c > 0 && v / c <= 3) ? "met" : "NOT met" }') (2 processes)"
	echo "   incremental: verify(since => checkpoint) after $R_scale_since_rows new rows: $R_scale_since_secs s," \
		"ok=$R_scale_since_ok problems=$R_scale_since_problems, peak RssAnon $(mb "${R_scale_since_anon_kb:-0}")" \
		"(target < 0.1 s: $(awk -v s="$R_scale_since_secs" 'BEGIN { print (s < 0.1) ? "met" : "NOT met" }'))"
	echo "   time range: verify_rows(from_time => the checkpoint's time), $R_scale_range_rows rows: $R_scale_range_secs s," \
		"ok=$R_scale_range_ok problems=$R_scale_range_problems, peak RssAnon $(mb "${R_scale_range_anon_kb:-0}")"
	echo "   one chain: verify_rows(chain => 0), $R_scale_chain_rows rows: $R_scale_chain_secs s" \
		"($(rate "$R_scale_chain_rows" "$R_scale_chain_secs") rows/s), ok=$R_scale_chain_ok problems=$R_scale_chain_problems," \
		"peak RssAnon $(mb "${R_scale_chain_anon_kb:-0}")"
	echo
	fi
	if part partitions; then
	echo "7. Partitioned tables (12 monthly partitions; rows go to the current month)"
	echo "   single-row INSERT transactions (TPS)"
	printf '   %-8s %16s %16s   %-16s %s\n' clients "plain partitioned" "protected" "protected/plain" "target >= 0.85x"
	for c in $CLIENTS; do
		p=PT_pplain_$c; q=PT_pprot_$c
		printf '   %-8s %16.1f %16.1f   %-16s %s\n' "$c" "${!p}" "${!q}" "$(ratio "${!q}" "${!p}")" \
			"$(meets "$(awk -v a="${!q}" -v b="${!p}" 'BEGIN { print (b > 0) ? a / b : 0 }')" 0.85)"
	done
	echo "   after the runs: verify('pprot_t') $pins_verify"
	echo "   purge of an expired month of $PURGE_ROWS rows (one transaction, receipt included)"
	printf '   %-46s %8s %12s %14s   %s\n' "" seconds WAL "peak RssAnon" removed
	printf '   %-46s %8.2f %12s %14s   %s\n' "purge_expired(partitioned): partition dropped" "$R_ppurge_secs" \
		"$(mb "$(awk -v b="$R_ppurge_wal_bytes" 'BEGIN { print b / 1024 }')")" "$(mb "${R_ppurge_anon_kb:-0}")" "$R_ppurge_removed"
	printf '   %-46s %8.2f %12s %14s   %s\n' "purge_expired(unpartitioned): row by row" "$R_upurge_secs" \
		"$(mb "$(awk -v b="$R_upurge_wal_bytes" 'BEGIN { print b / 1024 }')")" "$(mb "${R_upurge_anon_kb:-0}")" "$R_upurge_removed"
	echo "   targets for the partition drop: < 1 s: $(awk -v s="$R_ppurge_secs" 'BEGIN { print (s < 1) ? "met" : "NOT met" }');" \
		"< 1 MB of WAL: $(awk -v w="$R_ppurge_wal_bytes" 'BEGIN { print (w < 1048576) ? "met" : "NOT met" }')"
	echo "   receipt: $ppurge_receipt; $ppurge_left left (of 2)"
	echo "   verify() of 12 partitions, $ROWS rows:"
	for w in 0 1; do
		v=R_pverify_${w}_secs o=R_pverify_${w}_ok r=R_pverify_${w}_rows a=R_pverify_${w}_anon_kb
		printf '   %d process(es): %8.2f s  %10s rows/s  ok=%s rows=%s  peak RssAnon %s\n' "$((w + 1))" "${!v}" \
			"$(rate "${!r}" "${!v}")" "${!o}" "${!r}" "$(mb "${!a:-0}")"
	done
	echo
	fi
	if part merkle; then
	read -r tiles_b ranges_b ntiles table_b nrows <<<"$MERKLE_STORE"
	read -r proof_bytes proof_hashes <<<"$MERKLE_PROOF"
	echo "8. Merkle tree: $MERKLE_ROWS rows in 32 chains written by 32 clients"
	printf '   %-58s %s\n' "first checkpoint (the tree of every row, as after an upgrade)" \
		"$R_merkle_first_secs s ($(rate "$MERKLE_ROWS" "$R_merkle_first_secs") rows/s), tree size $R_merkle_first_size"
	printf '   %-58s %s\n' "verify_tree(): every leaf against its row, every tile" \
		"$R_merkle_vtree_secs s ($(rate "$R_merkle_vtree_leaves" "$R_merkle_vtree_secs") leaves/s), ok=$R_merkle_vtree_ok, peak RssAnon $(mb "${R_merkle_vtree_anon_kb:-0}")"
	printf '   %-58s %s\n' "checkpoint after $MERKLE_ADDED new rows, $MERKLE_ROUNDS rounds (s)" "$MERKLE_CP"
	echo "   target: median < 100 ms: $(awk -v s="$MERKLE_CP_MEDIAN" 'BEGIN { print (s < 0.1) ? "met" : "NOT met" }')" \
		"(median $MERKLE_CP_MEDIAN s, max $MERKLE_CP_MAX s; each includes signing and storing the note)"
	printf '   %-58s %s\n' "prove_row() of random rows, 1 client, 10 s (pgbench)" \
		"$MERKLE_PROVE_MS ms average latency ($MERKLE_PROVE_TPS proofs/s); SELECT 1 alone: $MERKLE_SELECT1_MS ms"
	echo "   target: < 5 ms: $(awk -v s="$MERKLE_PROVE_MS" 'BEGIN { print (s < 5) ? "met" : "NOT met" }')"
	printf '   %-58s %s\n' "one proof" "$proof_bytes bytes, $proof_hashes hashes (with the checkpoint note)"
	printf '   %-58s %s\n' "stored tree: merkle_tiles + merkle_ranges" \
		"$(mb "$(awk -v b="$tiles_b" 'BEGIN { print b / 1024 }')") + $(mb "$(awk -v b="$ranges_b" 'BEGIN { print b / 1024 }')"), $ntiles tile rows"
	printf '   %-58s %s\n' "per row" \
		"$(awk -v t="$tiles_b" -v r="$ranges_b" -v n="$nrows" 'BEGIN { printf "%.1f bytes", (t + r) / n }') (the table: $(awk -v t="$table_b" -v n="$nrows" 'BEGIN { printf "%.1f bytes", t / n }') per row)"
	printf '   %-58s %s\n' "single-row INSERT TPS, 8 clients, no checkpoints" "$MERKLE_INS_QUIET"
	printf '   %-58s %s\n' "... with a checkpoint every second meanwhile" \
		"$MERKLE_INS_CP ($(ratio "$MERKLE_INS_CP" "$MERKLE_INS_QUIET")); $MERKLE_CPS_DURING checkpoints of merkle_t in all"
	echo
	fi
	echo "======================================================================="
} >"$results"

say "results"
cat "$results"
if [ -n "${BENCH_OUT:-}" ]; then
	cp "$results" "$BENCH_OUT"
	echo "(also written to $BENCH_OUT)"
fi
