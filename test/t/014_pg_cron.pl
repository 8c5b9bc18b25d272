# Periodic checkpoints are pg_cron's job, not a scheduler of our own: a cron
# job calls hipaa_audit.checkpoint() and the notes it stores verify.  A
# second job runs pg_partman's maintenance of a partitioned protected table
# (docs/partitions.md): the partitions it makes are protected.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# pg_cron comes from Debian's package for Debian's PostgreSQL; a PostgreSQL
# built from source (PG_CONFIG=...) has none, and this test says so.
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
plan skip_all => "pg_cron is not installed in this PostgreSQL ($sharedir)"
  unless -f "$sharedir/extension/pg_cron.control";

my $keydir = PostgreSQL::Test::Utils::tempdir;
chmod 0700, $keydir;
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$keydir/signer.pem") == 0
  or die 'openssl genpkey failed';
chmod 0600, "$keydir/signer.pem";

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron, hipaa_audit'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
hipaa_audit.signing_key_file = '$keydir/signer.pem'
hipaa_audit.signer_name = 'cron.example'
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION hipaa_audit;
	CREATE EXTENSION pg_cron;
	CREATE TABLE access_log (id int, actor text);
	SELECT hipaa_audit.protect('access_log');
	INSERT INTO access_log SELECT g, 'user' || g FROM generate_series(1, 25) g;
	SELECT cron.schedule('hipaa_audit checkpoint', '* * * * *',
	                     $$SELECT hipaa_audit.checkpoint('public.access_log')$$);
});
my $have_partman = -f "$sharedir/extension/pg_partman.control";
if ($have_partman)
{
	$node->safe_psql('postgres', q{
		CREATE SCHEMA partman;
		CREATE EXTENSION pg_partman SCHEMA partman;
		CREATE TABLE events (id bigserial, happened timestamptz NOT NULL, what text)
		    PARTITION BY RANGE (happened);
		SELECT hipaa_audit.protect('events');
		SELECT partman.create_parent('public.events', 'happened', 'native', 'monthly', p_premake := 2);
		UPDATE partman.part_config SET premake = 6, infinite_time_partitions = true,
		       retention = '6 years 1 month', retention_keep_table = false
		 WHERE parent_table = 'public.events';
		SELECT cron.schedule('partman maintenance', '* * * * *',
		                     $$SELECT partman.run_maintenance('public.events')$$);
	});
}

# pg_cron runs jobs on minute boundaries: wait for the first run.
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM hipaa_audit.checkpoints}, 't')
  or die 'pg_cron did not run the checkpoint job';
# pg_cron records the outcome after its worker ends.
my $first_run = q{SELECT status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                   WHERE j.jobname = '%s' ORDER BY runid LIMIT 1};
$node->poll_query_until('postgres',
	sprintf(q{SELECT status IN ('succeeded', 'failed') FROM (%s) r}, sprintf($first_run, 'hipaa_audit checkpoint')))
  or die 'pg_cron did not record the run';
is($node->safe_psql('postgres', sprintf($first_run, 'hipaa_audit checkpoint')),
	'succeeded', 'the cron job succeeded');
my $key = $node->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');
is($node->safe_psql('postgres', qq{
		SELECT ok::int || ':' || status
		  FROM hipaa_audit.verify_checkpoint(
		         (SELECT note FROM hipaa_audit.checkpoints ORDER BY id LIMIT 1), '$key')}),
	'1:ok', 'the note the cron job stored verifies');
like($node->safe_psql('postgres', q{SELECT note FROM hipaa_audit.checkpoints ORDER BY id LIMIT 1}),
	qr/^rows 25$/m, 'and records the 25 rows');

SKIP:
{
	skip 'pg_partman is not installed in this PostgreSQL', 3 unless $have_partman;
	$node->poll_query_until('postgres',
		sprintf(q{SELECT status IN ('succeeded', 'failed') FROM (%s) r}, sprintf($first_run, 'partman maintenance')))
	  or die 'pg_cron did not record the maintenance run';
	is($node->safe_psql('postgres', sprintf($first_run, 'partman maintenance')),
		'succeeded', 'pg_partman maintenance through pg_cron succeeded');
	cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass}),
		'>=', 7, '... and made partitions ahead (premake 6)');
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_inherits i WHERE inhparent = 'events'::regclass
		   AND NOT EXISTS (SELECT 1 FROM hipaa_audit.registry r WHERE r.relid = i.inhrelid)}),
		'0', 'every partition the cron job made is protected');
}

$node->stop;
done_testing();
