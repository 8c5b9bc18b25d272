# A synchronous standby (synchronous_commit = remote_apply) has every
# acknowledged audit row the moment it is acknowledged; after the primary
# dies and the standby is promoted, all of them are there, every chain
# verifies, and new inserts continue the chains.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $primary = ha_node('sync_primary', init => { allows_streaming => 1 });
$primary->safe_psql('postgres', q{
	CREATE TABLE access_log (id int, actor text);
	SELECT hipaa_audit.protect('access_log', chains => 2);
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('sync_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', "primary_conninfo = '" . $primary->connstr . " application_name=audit_standby'\n");
$standby->start;
$primary->append_conf('postgresql.conf', qq{
synchronous_standby_names = 'audit_standby'
synchronous_commit = remote_apply
});
$primary->reload;
$primary->poll_query_until('postgres',
	q{SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'audit_standby'})
  or die 'the standby did not become synchronous';

# Each commit returns only once the standby has applied it.
my $lag = 0;
foreach my $i (1 .. 30)
{
	$primary->safe_psql('postgres', "INSERT INTO access_log VALUES ($i, 'acknowledged')");
	$lag++ if $standby->safe_psql('postgres', "SELECT count(*) FROM access_log WHERE id = $i") ne '1';
}
is($lag, 0, 'every acknowledged row was already on the standby when the commit returned');

$primary->stop('immediate');
$standby->promote;
is($standby->safe_psql('postgres', 'SELECT count(*) FROM access_log'), '30',
	'after failover all 30 acknowledged rows are there');
$standby->safe_psql('postgres', q{INSERT INTO access_log VALUES (31, 'after failover')});
is($standby->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('access_log')}),
	'1:31', 'every chain verifies and the new row continues its chain');
is($standby->safe_psql('postgres',
		q{SELECT count(*) FROM (SELECT audit_chain, audit_seq FROM access_log GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'no position is used twice');

$standby->stop;
done_testing();
