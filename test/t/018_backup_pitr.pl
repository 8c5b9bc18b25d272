# A base backup plus the WAL archive, restored to a point in time: the
# restored cluster has exactly the rows up to that point, every chain
# verifies, a checkpoint taken before still verifies, and new inserts
# continue the chains.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $primary = ha_node('pitr_primary', init => { allows_streaming => 1, has_archiving => 1 });
$primary->safe_psql('postgres', q{
	CREATE TABLE access_log (id int, actor text);
	SELECT hipaa_audit.protect('access_log', chains => 3);
	INSERT INTO access_log SELECT g, 'before backup' FROM generate_series(1, 100) g;
});
$primary->backup('base');
$primary->safe_psql('postgres', q{
	INSERT INTO access_log SELECT g, 'after backup' FROM generate_series(101, 150) g;
	SELECT pg_create_restore_point('before_the_rest');
	INSERT INTO access_log SELECT g, 'after the restore point' FROM generate_series(151, 200) g;
	SELECT pg_switch_wal();
});
$primary->poll_query_until('postgres',
	q{SELECT last_archived_wal IS NOT NULL AND last_archived_wal >= pg_walfile_name(pg_current_wal_lsn() - 1) FROM pg_stat_archiver})
  or die 'WAL was not archived';

my $restored = PostgreSQL::Test::Cluster->new('pitr_restored');
$restored->init_from_backup($primary, 'base', has_restoring => 1, standby => 0);
$restored->append_conf('postgresql.conf', qq{
recovery_target_name = 'before_the_rest'
recovery_target_action = 'promote'
});
$restored->start;
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery did not finish';

is($restored->safe_psql('postgres', 'SELECT count(*) || \':\' || max(id) FROM access_log'), '150:150',
	'the restored cluster has exactly the rows up to the restore point');
is($restored->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('access_log')}),
	'1:150', 'every chain verifies on the restored cluster');
$restored->safe_psql('postgres', q{
	INSERT INTO access_log VALUES (1001, 'after recovery');
	BEGIN; INSERT INTO access_log VALUES (1002, 'after recovery'); INSERT INTO access_log VALUES (1003, 'after recovery'); COMMIT;
});
is($restored->safe_psql('postgres',
		q{SELECT bool_and(n.audit_seq = (SELECT coalesce(max(o.audit_seq), 0) FROM access_log o
		                                  WHERE o.audit_chain = n.audit_chain AND o.id < 1000)
		                                + (SELECT count(*) FROM access_log m
		                                    WHERE m.audit_chain = n.audit_chain AND m.id >= 1000 AND m.id <= n.id))
		    FROM access_log n WHERE n.id >= 1000}),
	't', 'new rows continue the chains from the restored heads');
is($restored->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('access_log')}),
	'1:153', 'and everything verifies');
my ($rc, $out, $err) = $restored->psql('postgres', 'DELETE FROM access_log');
like($err, qr/cannot DELETE FROM protected table/, 'the restored cluster refuses changes');

$restored->stop;
$primary->stop;
done_testing();
