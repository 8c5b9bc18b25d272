# Concurrent writers never fork a chain, never leave a hole and never share a
# position: pgbench with 16 clients inserting into two protected tables in
# the same transactions, with savepoint rollbacks and whole-transaction
# rollbacks mixed in.  Then an explicit deadlock between a chain and a row
# lock, resolved by PostgreSQL's deadlock detector, both ways round.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use HaTest;

my $node = ha_node('concurrency', conf => "log_statement = none\nlog_lock_waits = on\n");

$node->safe_psql('postgres', q{
	CREATE TABLE t1 (client int NOT NULL, marker bigint NOT NULL, payload text NOT NULL);
	CREATE TABLE t2 (client int NOT NULL, marker bigint NOT NULL, kind text NOT NULL);
	CREATE TABLE acks (client int NOT NULL, marker bigint PRIMARY KEY, extra_kept int NOT NULL);
	CREATE SEQUENCE marker_seq;
	CREATE INDEX ON t1 (marker);
	CREATE INDEX ON t2 (marker);
	SELECT hipaa_audit.protect('t1', chains => 4);
	SELECT hipaa_audit.protect('t2', chains => 2);
});

# ------------------------------------------------------------------ pgbench

# Each transaction: one row into t1 and one into t2, and an extra t2 row in
# a savepoint that is rolled back ~20% of the time.  Half of the
# transactions insert the extra row first, so that they take their t2
# chain inside the savepoint (and keep it when the savepoint rolls back).
# Then ~10% of the transactions roll back entirely; the others record in
# acks whether the extra row was kept, and commit.
my $script = <<'EOS';
\set r random(1, 100)
\set sp random(1, 100)
\set order random(0, 1)
BEGIN;
SELECT nextval('marker_seq') AS m \gset
INSERT INTO t1 (client, marker, payload) VALUES (:client_id, :m, 'main');
\if :order = 0
INSERT INTO t2 (client, marker, kind) VALUES (:client_id, :m, 'main');
\endif
SAVEPOINT extra;
INSERT INTO t2 (client, marker, kind) VALUES (:client_id, :m, 'extra');
\if :sp <= 20
ROLLBACK TO SAVEPOINT extra;
\set kept 0
\else
RELEASE SAVEPOINT extra;
\set kept 1
\endif
\if :order = 1
INSERT INTO t2 (client, marker, kind) VALUES (:client_id, :m, 'main');
\endif
\if :r <= 10
ROLLBACK;
\else
INSERT INTO acks (client, marker, extra_kept) VALUES (:client_id, :m, :kept);
COMMIT;
\endif
EOS

my $clients = 16;
my $per_client = 250;
my $total = $clients * $per_client;
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $script_file = "$tmp/007_mixed.sql";
PostgreSQL::Test::Utils::append_to_file($script_file, $script);

# pgbench in the background; meanwhile verify() and the SQL chain checks run
# again and again, each on one snapshot, and must never see a problem: a
# snapshot of a table under load holds, for every chain, exactly positions
# 1..k (the holder of a chain commits before the next one may write it).
my $t0 = time;
my ($pgb_out, $pgb_err) = ('', '');
my $pgb = IPC::Run::start(
	[
		'pgbench', '--no-vacuum', "--client=$clients", '--jobs=2',
		"--transactions=$per_client", '--random-seed=20241123',
		'-f', $script_file, '-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$pgb_out, '2>', \$pgb_err, IPC::Run::timeout(ha_timeout()));
my ($checks, @seen) = (0);
while ($pgb->pumpable)
{
	my $r = $node->safe_psql('postgres', q{
		SELECT (SELECT ok::text || ' ' || rows_checked || ' ' || coalesce(first_problem, '')
		          FROM hipaa_audit.verify('t1')),
		       (SELECT ok::text || ' ' || rows_checked || ' ' || coalesce(first_problem, '')
		          FROM hipaa_audit.verify('t2')),
		       (SELECT count(*) FROM (SELECT audit_chain FROM t1 GROUP BY 1
		                              HAVING min(audit_seq) <> 1 OR max(audit_seq) <> count(*)) h1),
		       (SELECT count(*) FROM (SELECT audit_chain FROM t2 GROUP BY 1
		                              HAVING min(audit_seq) <> 1 OR max(audit_seq) <> count(*)) h2)});
	$checks++;
	my ($v1, $v2, $h1, $h2) = split /\|/, $r;
	push @seen, $r unless $v1 =~ /^true \d+ $/ && $v2 =~ /^true \d+ $/ && $h1 eq '0' && $h2 eq '0';
	$pgb->pump_nb;
}
my $pgb_ok = $pgb->finish;
note sprintf('pgbench took %.0f s; %d verify rounds ran during the load', time - $t0, $checks);
ok($pgb_ok, 'pgbench exited with status 0') or diag "stdout:\n$pgb_out\nstderr:\n$pgb_err";
like($pgb_out, qr{processed: $total/$total}, "pgbench: all $total transactions processed");
unlike($pgb_err, qr/ERROR|aborted/, 'pgbench: no client hit an error');
cmp_ok($checks, '>=', 1, 'verify() ran while the load was going on');
ok(!@seen, 'verify() and the chain checks were clean on every snapshot taken under load')
  or diag join("\n", @seen[0 .. ($#seen < 9 ? $#seen : 9)]);

my ($acks, $kept, $dropped) = split /\|/, $node->safe_psql('postgres',
	'SELECT count(*), sum(extra_kept), count(*) FILTER (WHERE extra_kept = 0) FROM acks');
note "acks=$acks kept_extra=$kept savepoint_rollbacks=$dropped";
cmp_ok($acks, '<', $total, 'some transactions rolled back entirely');
cmp_ok($acks, '>', $total / 2, 'most transactions committed');
cmp_ok($dropped, '>', 0, 'some savepoints were rolled back');
cmp_ok($kept, '>', 0, 'some savepoint rows were kept');

is($node->safe_psql('postgres', 'SELECT count(*) FROM t1'), $acks,
	'count(t1) = count(acks)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t2'), $acks + $kept,
	'count(t2) = count(acks) + kept savepoint rows');

# Row by row: each committed transaction has exactly its rows, and nothing
# of a rolled-back transaction or savepoint is in the tables.
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM acks a
	 WHERE (SELECT count(*) FROM t1 WHERE t1.marker = a.marker AND t1.client = a.client) <> 1
	    OR (SELECT count(*) FROM t2 WHERE t2.marker = a.marker AND t2.client = a.client
	                                  AND kind = 'main') <> 1
	    OR (SELECT count(*) FROM t2 WHERE t2.marker = a.marker AND t2.client = a.client
	                                  AND kind = 'extra') <> a.extra_kept}),
	'0', 'every committed transaction has exactly its rows in t1 and t2');
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM t1 WHERE marker NOT IN (SELECT marker FROM acks))
	     + (SELECT count(*) FROM t2 WHERE marker NOT IN (SELECT marker FROM acks))}),
	'0', 'no row of a rolled-back transaction is in t1 or t2');

# All rows a transaction inserts into a table go to one chain, at
# consecutive positions.
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT marker FROM t2 GROUP BY marker
	                       HAVING count(DISTINCT audit_chain) <> 1
	                           OR max(audit_seq) - min(audit_seq) <> count(*) - 1) x}),
	'0', "a transaction's t2 rows are on one chain at consecutive positions");

ha_check_chains($node, 't1', 4, 'after pgbench');
ha_check_chains($node, 't2', 2, 'after pgbench');

my $t1_chains = $node->safe_psql('postgres', 'SELECT count(DISTINCT audit_chain) FROM t1');
note "t1 chains used: $t1_chains; per chain: "
  . $node->safe_psql('postgres',
	"SELECT string_agg(audit_chain || '=' || n, ' ' ORDER BY audit_chain) FROM (SELECT audit_chain, count(*) n FROM t1 GROUP BY 1) s");
cmp_ok($t1_chains, '>', 1, 'concurrent writers spread over more than one chain of t1');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT audit_chain) FROM t2'), '2',
	'both chains of t2 used');

# ------------------------------------------------------------------ deadlock

$node->safe_psql('postgres', q{
	CREATE TABLE t3 (who text NOT NULL, note text NOT NULL);
	SELECT hipaa_audit.protect('t3', chains => 1);
	CREATE TABLE dl (id int PRIMARY KEY);
	INSERT INTO dl VALUES (1);
});
my $t3oid = $node->safe_psql('postgres', "SELECT 't3'::regclass::oid");

my $a = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
my $b = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
my $pid_a = $a->query_safe('SELECT pg_backend_pid()');
my $pid_b = $b->query_safe('SELECT pg_backend_pid()');

# The chain lock of a session, as pg_locks shows it.
sub chain_lock
{
	my ($pid) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT classid = $t3oid, objid, objsubid, mode, granted FROM pg_locks
		 WHERE locktype = 'advisory' AND pid = $pid});
}

sub wait_for_lock_wait
{
	my ($pid, $what) = @_;
	ok($node->poll_query_until('postgres',
			"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid"),
		$what);
}

# Round 1: A holds the chain and waits for B's row lock; B, holding the row
# lock, waits for the chain.  B's deadlock_timeout is the short one, so B is
# the victim: a waiter for a chain is cancelled.
$a->query_safe("SET deadlock_timeout = '30s'");
$b->query_safe("SET deadlock_timeout = '100ms'");
$a->query_safe("BEGIN; INSERT INTO t3 VALUES ('A', 'round 1 first')");
is(chain_lock($pid_a), 't|0|18497|ExclusiveLock|t',
	'pg_locks: the holder of a chain has an advisory ExclusiveLock (table OID, chain, 18497)');
is(chain_lock($pid_b), '', 'pg_locks: no chain lock before the first insert');
$b->query_safe('BEGIN; SELECT id FROM dl WHERE id = 1 FOR UPDATE');
ha_start_blocking($a, 'a1', 'SELECT id FROM dl WHERE id = 1 FOR UPDATE');
wait_for_lock_wait($pid_a, 'round 1: A (holding the chain) waits for the row lock');
$b->{stderr} = '';
ha_start_blocking($b, 'b1', "INSERT INTO t3 VALUES ('B', 'round 1 victim')");
is(ha_sqlstate_of($b, 'b1'), '40P01', 'round 1: B, waiting for the chain, is the deadlock victim (40P01)');
like($b->{stderr}, qr/deadlock detected/, 'round 1: B is told "deadlock detected"');
$b->{stderr} = '';
is(ha_sqlstate_of($a, 'a1'), '00000', 'round 1: A gets the row lock once B is gone');
$a->query_safe("INSERT INTO t3 VALUES ('A', 'round 1 second'); COMMIT");
$b->query('ROLLBACK');
is(chain_lock($pid_a), '', 'pg_locks: the chain lock is released at commit');
is($node->safe_psql('postgres',
		"SELECT string_agg(who || ':' || note || ':' || audit_chain || ':' || audit_seq, ',' ORDER BY audit_seq) FROM t3"),
	'A:round 1 first:0:1,A:round 1 second:0:2',
	'round 1: the survivor wrote positions 1 and 2, the victim nothing');

# Round 2: A holds the chain, B holds the row lock and waits for the chain,
# then A asks for the row lock.  A's deadlock_timeout is the short one, so
# the chain holder is the victim: its tentative row is discarded and B
# takes the chain at the very position A had used.
$a->query_safe("SET deadlock_timeout = '100ms'");
$b->query_safe("SET deadlock_timeout = '30s'");
$a->query_safe("BEGIN; INSERT INTO t3 VALUES ('A', 'round 2 victim')");
$b->query_safe('BEGIN; SELECT id FROM dl WHERE id = 1 FOR UPDATE');
ha_start_blocking($b, 'b2', "INSERT INTO t3 VALUES ('B', 'round 2 survivor')");
wait_for_lock_wait($pid_b, 'round 2: B waits for the chain');
is(chain_lock($pid_b), 't|0|18497|ExclusiveLock|f',
	'pg_locks: a writer waiting for a chain shows the advisory lock not granted');
$a->{stderr} = '';
ha_start_blocking($a, 'a2', 'SELECT id FROM dl WHERE id = 1 FOR UPDATE');
is(ha_sqlstate_of($a, 'a2'), '40P01', 'round 2: A, holding the chain, is the deadlock victim (40P01)');
like($a->{stderr}, qr/deadlock detected/, 'round 2: A is told "deadlock detected"');
$a->{stderr} = '';
is(ha_sqlstate_of($b, 'b2'), '00000', 'round 2: B takes the chain once A is gone');
$b->query_safe('COMMIT');
$a->query('ROLLBACK');
is($node->safe_psql('postgres',
		"SELECT string_agg(who || ':' || note || ':' || audit_chain || ':' || audit_seq, ',' ORDER BY audit_seq) FROM t3"),
	'A:round 1 first:0:1,A:round 1 second:0:2,B:round 2 survivor:0:3',
	"round 2: the survivor took position 3, the victim's tentative row left no trace");

# Inserts continue: from both sessions and from new ones.
$a->query_safe("INSERT INTO t3 VALUES ('A', 'after')");
$b->query_safe("INSERT INTO t3 VALUES ('B', 'after')");
$node->safe_psql('postgres', "INSERT INTO t3 VALUES ('C', 'after')") for 1 .. 3;
$a->quit;
$b->quit;
is($node->safe_psql('postgres', 'SELECT count(*), max(audit_seq) FROM t3'), '8|8',
	'inserts continue after the deadlocks: 8 rows at positions 1..8');
ha_check_chains($node, 't3', 1, 'after deadlocks');
ha_check_chains($node, 't1', 4, 'at the end');
ha_check_chains($node, 't2', 2, 'at the end');

$node->stop;
done_testing();
