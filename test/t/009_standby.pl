# Verification is read-only: it runs on a hot standby and agrees with the
# primary.  After promotion the new primary rebuilds the chain heads from
# the table and continues every chain without a fork.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $keys = PostgreSQL::Test::Utils::tempdir;
chmod 0700, $keys;
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$keys/signer.pem") == 0 or die;
chmod 0600, "$keys/signer.pem";
my $primary = ha_node('primary', init => { allows_streaming => 1 },
	conf => "hipaa_audit.signing_key_file = '$keys/signer.pem'\n");
$primary->safe_psql('postgres', q{
	CREATE TABLE access_log (id int, actor text);
	SELECT hipaa_audit.protect('access_log', chains => 3);
	INSERT INTO access_log SELECT g, 'user' || g FROM generate_series(1, 300) g;
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# Rows written after the backup reach the standby through streaming.
$primary->safe_psql('postgres',
	q{INSERT INTO access_log SELECT g, 'later' || g FROM generate_series(301, 400) g});
$primary->wait_for_catchup($standby);

my $summary = q{SELECT ok::int || ':' || rows_checked || ':' || problems FROM hipaa_audit.verify('access_log')};
is($standby->safe_psql('postgres', $summary), '1:400:0', 'verify() runs on the hot standby');
is($standby->safe_psql('postgres', $summary), $primary->safe_psql('postgres', $summary),
	'and agrees with the primary');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM hipaa_audit.verify_problems('access_log')}),
	'0', 'verify_problems() too');
{
	my $par = 'SET min_parallel_table_scan_size = 0; SET hipaa_audit.verify_workers = 1; '
	  . 'SET parallel_leader_participation = off; SET client_min_messages = debug1; ';
	my ($rc, $out, $err) = $standby->psql('postgres', $par . $summary);
	is($out, '1:400:0', 'verify() with a parallel worker doing all the work, on the hot standby');
	like($err, qr/1 of 1 parallel workers launched/, '(the worker ran on the standby)');
}

# A checkpoint signed on the primary verifies on the standby, read-only.
my $note = $primary->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('access_log')});
my $vkey = $primary->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres',
		"SELECT ok::int || ':' || status FROM hipaa_audit.verify_checkpoint(\$n\$$note\$n\$, '$vkey')"),
	'1:ok', 'verify_checkpoint() runs on the hot standby');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM hipaa_audit.checkpoints'), '1',
	'the stored checkpoint replicated');
my ($rc, $out, $err) = $standby->psql('postgres', q{SELECT hipaa_audit.checkpoint('access_log')});
like($err, qr/cannot execute (INSERT|LOCK TABLE|hipaa_audit\.checkpoint\(\)) (in a read-only transaction|during recovery)/,
	'a checkpoint cannot be taken on the standby (it is stored)');

($rc, $out, $err) = $standby->psql('postgres', q{INSERT INTO access_log VALUES (0, 'x')});
like($err, qr/cannot execute INSERT in a read-only transaction/,
	'the standby refuses writes with PostgreSQL\'s own message');
($rc, $out, $err) = $standby->psql('postgres', q{DELETE FROM access_log});
like($err, qr/ERROR:  (cannot DELETE FROM protected table|cannot execute DELETE in a read-only transaction)/,
	'and deletes');

# A purge removes rows: refused on the standby with PostgreSQL's message; a
# dry run only reads, so it runs there.
($rc, $out, $err) = $standby->psql('postgres', q{SELECT * FROM hipaa_audit.purge_expired('access_log')});
like($err, qr/ERROR:  cannot execute hipaa_audit\.purge_expired\(\) in a read-only transaction/,
	'purge_expired() is refused on the standby');
is($standby->safe_psql('postgres',
		q{SELECT rows_removed || ':' || (receipt IS NULL) FROM hipaa_audit.purge_expired('access_log', dry_run => true)}),
	'0:true', 'a dry run of purge_expired() runs on the standby (nothing expired in 6 years)');

# Take the chains' heads as the primary has them, then promote.
my $heads_sql = q{SELECT string_agg(audit_chain || ':' || max_seq, ',' ORDER BY audit_chain)
                    FROM (SELECT audit_chain, max(audit_seq) AS max_seq FROM access_log GROUP BY 1) h};
my $heads = $primary->safe_psql('postgres', $heads_sql);
$primary->stop;
$standby->promote;

# Several concurrent writers after promotion, each taking a chain.
$standby->safe_psql('postgres', q{INSERT INTO access_log VALUES (401, 'after promotion')});
$standby->safe_psql('postgres', q{
	BEGIN; INSERT INTO access_log VALUES (402, 'a'); INSERT INTO access_log VALUES (403, 'b'); COMMIT;
});
is($standby->safe_psql('postgres', $summary), '1:403:0',
	'after promotion new rows continue the chains and everything verifies');
is($standby->safe_psql('postgres',
		q{SELECT count(*) FROM (SELECT audit_chain, audit_seq FROM access_log GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'no position is used twice');
is($standby->safe_psql('postgres',
		q{SELECT bool_and(max_seq = n) FROM (SELECT audit_chain, max(audit_seq) AS max_seq, count(*) AS n FROM access_log GROUP BY 1) c}),
	't', 'every chain is 1..n without a hole');
isnt($standby->safe_psql('postgres', $heads_sql), $heads, 'and the heads moved on from the old primary\'s');

$standby->stop;
done_testing();
