# The guard triggers are the wall where the executor and utility hooks do
# not look: a logical replication apply worker changes rows without going
# through ExecutorStart or ProcessUtility.  A subscriber's protected table
# must refuse UPDATE, DELETE and TRUNCATE arriving from a publisher whose
# copy of the table is not protected, and keep its rows.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $pub = ha_node('publisher', init => { allows_streaming => 'logical' });
my $sub = ha_node('subscriber');

my $ddl = 'CREATE TABLE access_log (id int PRIMARY KEY, actor text NOT NULL)';
$pub->safe_psql('postgres', $ddl);
$sub->safe_psql('postgres', $ddl);
$sub->safe_psql('postgres', q{SELECT hipaa_audit.protect('access_log')});

$pub->safe_psql('postgres', q{
	CREATE PUBLICATION audit_pub FOR TABLE access_log;
	INSERT INTO access_log VALUES (1, 'dr_alvarez'), (2, 'nurse_kim');
});
my $pubconn = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION audit_sub CONNECTION '$pubconn' PUBLICATION audit_pub");
$sub->wait_for_subscription_sync($pub, 'audit_sub');

is($sub->safe_psql('postgres', 'SELECT count(*) FROM access_log'), '2',
	'inserts replicate into the protected table');

# Each change below is refused on the subscriber by a guard trigger; the
# apply worker stops with the error and would retry forever, so the test
# moves the subscription past the change before sending the next one.
my @changes = (
	[ q{UPDATE access_log SET actor = 'forged' WHERE id = 1}, 'UPDATE' ],
	[ q{DELETE FROM access_log WHERE id = 2}, 'DELETE FROM' ],
	[ q{TRUNCATE access_log}, 'TRUNCATE' ],
);
foreach my $c (@changes)
{
	my ($sql, $what) = @$c;
	my $offset = -s $sub->logfile;
	$pub->safe_psql('postgres', $sql);
	ok( $sub->wait_for_log(
			qr/ERROR:  cannot \Q$what\E protected table public\.access_log/, $offset),
		"apply worker's $what refused on the subscriber by the guard trigger");
	is($sub->safe_psql('postgres',
			"SELECT string_agg(id || ':' || actor, ',' ORDER BY id) FROM access_log"),
		'1:dr_alvarez,2:nurse_kim', "subscriber rows unchanged after replicated $what");

	# Move the subscription past the refused change so the next one arrives.
	$sub->safe_psql('postgres', 'ALTER SUBSCRIPTION audit_sub DISABLE');
	$sub->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'logical replication worker'})
	  or die 'apply worker did not stop';
	my $lsn = $pub->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	$sub->safe_psql('postgres', q{
		SELECT pg_replication_origin_advance(roname, '} . $lsn . q{')
		  FROM pg_replication_origin WHERE roname LIKE 'pg_%'});
	$sub->safe_psql('postgres', 'ALTER SUBSCRIPTION audit_sub ENABLE');
}

# The subscription still delivers inserts afterwards.
$pub->safe_psql('postgres', q{INSERT INTO access_log VALUES (3, 'late')});
$sub->poll_query_until('postgres', 'SELECT count(*) = 3 FROM access_log')
  or die 'insert did not arrive';
is($sub->safe_psql('postgres',
		"SELECT string_agg(id || ':' || actor, ',' ORDER BY id) FROM access_log"),
	'1:dr_alvarez,2:nurse_kim,3:late', 'later inserts still arrive');

$sub->stop;
$pub->stop;
done_testing();
