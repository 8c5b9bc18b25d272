# verify() reads the table in physical order, in one process or with
# parallel workers, in memory bounded by hipaa_audit.verify_memory: the
# same problems in every mode, also when the physical order is scrambled
# (CLUSTER on another index), and cancellation stops every worker.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::BackgroundPsql;
use Test::More;
use HaTest;

my $node = ha_node('physical', conf => "max_worker_processes = 8\nmax_parallel_workers = 8\n");

# The modes: serial; serial with the smallest memory (rows sorted in
# temporary files); one worker with the leader reading nothing (every row
# checked in the worker); two workers and the leader.
my %modes = (
	serial => 'SET hipaa_audit.verify_workers = 0;',
	spill => 'SET hipaa_audit.verify_workers = 0; SET hipaa_audit.verify_memory = 64;',
	worker_only => 'SET min_parallel_table_scan_size = 0; SET hipaa_audit.verify_workers = 1; '
	  . 'SET parallel_leader_participation = off;',
	parallel => 'SET min_parallel_table_scan_size = 0; SET hipaa_audit.verify_workers = 2;',
	parallel_spill => 'SET min_parallel_table_scan_size = 0; SET hipaa_audit.verify_workers = 2; '
	  . 'SET hipaa_audit.verify_memory = 64;',
);

sub problems
{
	my ($mode, $table) = @_;
	return $node->safe_psql('postgres', $modes{$mode}
		  . "SELECT string_agg(chain || ':' || seq || ':' || kind, ' ') FROM hipaa_audit.verify_problems('$table')");
}

sub summary
{
	my ($mode, $table) = @_;
	return $node->safe_psql('postgres', $modes{$mode}
		  . "SELECT ok, rows_checked, chains, problems FROM hipaa_audit.verify('$table')");
}

# What each mode did, from its DEBUG1 lines.
sub debug_of
{
	my ($mode, $table) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', $modes{$mode}
		  . "SET client_min_messages = debug1; SELECT ok FROM hipaa_audit.verify('$table')");
	return $err;
}

# 8 chains written by 8 concurrent clients, 10 rows per transaction, so
# that chains interleave on every page as concurrent writers make them.
$node->safe_psql('postgres', q{
	CREATE TABLE events (id int, actor text, note text, k int);
	SELECT hipaa_audit.protect('events', chains => 8);
});
my $script = $node->basedir . '/insert.sql';
append_to_file($script,
	"INSERT INTO events SELECT g, 'actor-' || g, repeat('n', 40), (g * 7919) % 10007 "
	  . "FROM generate_series(1, 10) g;\n");
$node->command_ok(
	[ 'pgbench', '-n', '-c', '8', '-j', '2', '-t', '300', '-f', $script, '-p', $node->port,
		'-h', $node->host, 'postgres' ],
	'8 pgbench clients fill the table');
is($node->safe_psql('postgres', q{SELECT count(DISTINCT audit_chain) FROM events}), '8',
	'the rows are spread over all 8 chains');

for my $mode (sort keys %modes)
{
	is(summary($mode, 'events'), 't|24000|8|0', "$mode: the intact table verifies, every row checked");
}
like(debug_of('worker_only', 'events'), qr/1 of 1 parallel workers launched, 1 parts/,
	'worker_only: one worker launched and it took the only part');
like(debug_of('parallel', 'events'), qr/2 of 2 parallel workers launched, 3 parts/,
	'parallel: two workers launched, three parts');
# (Whether rows wait long enough to fill 64kB here depends on how the
# writers' pages interleaved; on the scrambled table below they always do.)

# Physical order scrambled: CLUSTER on an index of a column unrelated to
# the chains puts every chain's rows in pseudo-random order.
$node->safe_psql('postgres', q{
	CREATE INDEX events_k_idx ON events (k, id);
	CLUSTER events USING events_k_idx;
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE audit_seq < lag_seq) > 1000 FROM (
	  SELECT audit_seq, lag(audit_seq) OVER (PARTITION BY audit_chain ORDER BY ctid) AS lag_seq
	    FROM events) s}), 't',
	'after CLUSTER, rows of a chain are far from position order on disk');
for my $mode (sort keys %modes)
{
	is(summary($mode, 'events'), 't|24000|8|0', "$mode: the scrambled table verifies");
}
like(debug_of('spill', 'events'), qr/verify memory full/,
	'spill: the scrambled table went through the sort');

# Tampering, by a superuser who unloads the extension; each problem at a
# position the writers interleaved, on the scrambled table.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
$node->safe_psql('postgres', q{
	ALTER TABLE events DISABLE TRIGGER ALL;
	-- gaps: one row, and a run of rows
	DELETE FROM events WHERE audit_chain = 1 AND audit_seq = 100;
	DELETE FROM events WHERE audit_chain = 2 AND audit_seq BETWEEN 200 AND 205;
	-- a changed value, a changed stored hash (the next row's link breaks)
	UPDATE events SET note = 'rewritten' WHERE audit_chain = 3 AND audit_seq = 300;
	UPDATE events SET audit_hash = sha256('x') WHERE audit_chain = 4 AND audit_seq = 400;
	-- a row moved to a chain the table does not have
	UPDATE events SET audit_chain = 99 WHERE audit_chain = 5 AND audit_seq = 500;
	-- a row with no chain position
	ALTER TABLE events ALTER audit_seq DROP NOT NULL;
	UPDATE events SET audit_seq = NULL WHERE audit_chain = 6 AND audit_seq = 600;
	-- a duplicate of a row of chain 0, after swapping the unique index
	DROP INDEX events_audit_chain_audit_seq_idx;
	CREATE INDEX events_plain_idx ON events (audit_chain, audit_seq);
	INSERT INTO events SELECT * FROM events WHERE audit_chain = 0 AND audit_seq = 50;
	ALTER TABLE events ENABLE ALWAYS TRIGGER hipaa_audit_chain,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;
});
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;

my $expected = '-1:-1:malformed 0:50:duplicate 1:100:gap 2:200:gap 3:300:hash_mismatch '
  . '4:400:hash_mismatch 4:401:broken_link 5:500:gap 6:600:gap 99:1:gap 99:500:bad_chain '
  . '99:500:hash_mismatch -1:-1:malformed';
for my $mode (sort keys %modes)
{
	is(problems($mode, 'events'), $expected,
		"$mode: every change reported at its position, in the same order");
}
# The check of one chain sees that chain's problems (and the replaced
# index); the check of all time sees every row through the BRIN index, and
# reports a row of a chain the table does not have as bad_chain only.
my %by_chain;
for my $p (split / /, $expected)
{
	push @{ $by_chain{$1} }, $p if $p =~ /^(\d+):/ && $1 < 8;
}
for my $c (0 .. 7)
{
	is($node->safe_psql('postgres', "SELECT string_agg(chain || ':' || seq || ':' || kind, ' ') "
		  . "FROM hipaa_audit.verify_rows_problems('events', chain => $c)"),
		join(' ', '-1:-1:malformed', @{ $by_chain{$c} // [] }),
		"chain $c alone: its problems, at the same positions");
}
is($node->safe_psql('postgres', "SELECT string_agg(chain || ':' || seq || ':' || kind, ' ') "
	  . "FROM hipaa_audit.verify_rows_problems('events', from_time => '-infinity')"),
	'-1:-1:malformed 0:50:duplicate 1:100:gap 2:200:gap 3:300:hash_mismatch '
	  . '4:400:hash_mismatch 4:401:broken_link 5:500:gap 6:600:gap 99:500:bad_chain -1:-1:malformed',
	'all time: every problem of the chains, the foreign chain number, the row without a position');
is(summary('serial', 'events'), 'f|23994|9|13',
	'verify(): rows checked (deleted rows gone, the duplicate and the NULL row counted), chains seen, problems');
like($node->safe_psql('postgres', q{SELECT first_problem FROM hipaa_audit.verify('events')}),
	qr/^chain -1 position -1: malformed: the unique index/, 'the first problem is the replaced index');

# Cancellation stops the leader and every worker.
$node->safe_psql('postgres', q{
	CREATE TABLE big (id int, note text);
	SELECT hipaa_audit.protect('big', chains => 4);
});
$node->safe_psql('postgres', "INSERT INTO big SELECT g, repeat('b', 100) FROM generate_series(1, 100000) g")
  for 1 .. 4;
my $s = $node->background_psql('postgres', on_error_stop => 0);
$s->query_safe('SET min_parallel_table_scan_size = 0');
$s->query_safe('SET hipaa_audit.verify_workers = 2');
my $pid = $s->query_safe('SELECT pg_backend_pid()');
# verify() is volatile: called once per row of the series, a long run.
$s->{stdin} .= "SELECT count(*) FROM generate_series(1, 200) g, LATERAL hipaa_audit.verify('big') v;\n";
$s->{run}->pump_nb;
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM hipaa_audit.verify_progress() WHERE pid = $pid AND rows_checked > 0"),
	'verify_progress() shows the run');
# Each verify() starts its workers anew and a worker lives only while its
# part is read, so sample often, inside the server (a fresh statistics
# snapshot each time), for the most workers seen at once.
is($node->safe_psql('postgres', qq{
	CREATE FUNCTION pg_temp.most_workers(leader int, secs float8) RETURNS int LANGUAGE plpgsql AS \$f\$
	DECLARE
		n int;
		m int := 0;
		stop timestamptz := clock_timestamp() + make_interval(secs => secs);
	BEGIN
		WHILE clock_timestamp() < stop AND m < 2 LOOP
			PERFORM pg_stat_clear_snapshot();
			SELECT count(*) INTO n FROM pg_stat_activity
			 WHERE leader_pid = leader AND backend_type = 'parallel worker';
			m := greatest(m, n);
			PERFORM pg_sleep(0.002);
		END LOOP;
		RETURN m;
	END
	\$f\$;
	SELECT pg_temp.most_workers($pid, 120)}), '2', 'two parallel workers run for it');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE leader_pid = $pid OR (pid = $pid AND state = 'active')"),
	'after the cancel, neither the leader nor a worker is running');
$s->quit;
like(slurp_file($node->logfile), qr/ERROR:  canceling statement due to user request\n.*STATEMENT:  SELECT count\(\*\) FROM generate_series\(1, 200\)/,
	'the run ended by the cancel, not by finishing');
is($node->safe_psql('postgres', "SELECT count(*) FROM hipaa_audit.verify_progress() WHERE pid = $pid"),
	'0', 'its verify_progress() row is gone');

$node->stop;
done_testing();
