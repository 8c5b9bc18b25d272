# A long verify() can be followed in hipaa_audit.verify_progress and
# cancelled at any row; a cancelled run leaves no stale progress entry.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $node = ha_node('progress');
$node->safe_psql('postgres', q{
	CREATE TABLE big_log (id int, actor text, action text, patient_mrn text, note text);
	SELECT hipaa_audit.protect('big_log', chains => 1);
	INSERT INTO big_log
	SELECT g, 'actor' || g, 'view', 'MRN-' || g, repeat('n', 200) FROM generate_series(1, 600000) g;
	ANALYZE big_log;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM hipaa_audit.verify_progress'), '0',
	'nothing in progress when idle');

foreach my $round (1 .. 2)
{
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	# A slow verify: many passes over the table in one statement.
	$bg->query_until(qr/started/, q{
		\echo started
		SELECT count(*) FROM generate_series(1, 50) i, LATERAL hipaa_audit.verify('big_log') v;
	});

	ok( $node->poll_query_until('postgres',
			"SELECT rows_checked > 0 AND tbl = 'big_log'::regclass AND rows_estimated = 600000
			   FROM hipaa_audit.verify_progress WHERE pid = $pid"),
		"round $round: the running verify() shows in verify_progress");
	my $first = $node->safe_psql('postgres',
		"SELECT rows_checked FROM hipaa_audit.verify_progress WHERE pid = $pid");
	ok( $node->poll_query_until('postgres',
			"SELECT coalesce((SELECT rows_checked FROM hipaa_audit.verify_progress WHERE pid = $pid) <> $first, true)"),
		"round $round: and its count moves");

	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM hipaa_audit.verify_progress WHERE pid = $pid"),
		"round $round: after cancelling, it is gone from verify_progress");
	my $after = $bg->query('SELECT 1');
	like($bg->{stderr} // '', qr/canceling statement due to user request/,
		"round $round: the verify() was cancelled");
	$bg->quit;
}

is($node->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('big_log')}),
	'1:600000', 'a full run afterwards verifies every row');

$node->stop;
done_testing();
