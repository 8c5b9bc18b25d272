# Periodic checkpoints are pg_cron's job, not a scheduler of our own: a cron
# job calls hipaa_audit.checkpoint() and the notes it stores verify.
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

# pg_cron runs jobs on minute boundaries: wait for the first run.
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM hipaa_audit.checkpoints}, 't')
  or die 'pg_cron did not run the checkpoint job';
# pg_cron records the outcome after its worker ends.
$node->poll_query_until('postgres',
	q{SELECT status IN ('succeeded', 'failed') FROM cron.job_run_details ORDER BY runid LIMIT 1})
  or die 'pg_cron did not record the run';
is($node->safe_psql('postgres',
		q{SELECT status FROM cron.job_run_details ORDER BY runid LIMIT 1}),
	'succeeded', 'the cron job succeeded');
my $key = $node->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');
is($node->safe_psql('postgres', qq{
		SELECT ok::int || ':' || status
		  FROM hipaa_audit.verify_checkpoint(
		         (SELECT note FROM hipaa_audit.checkpoints ORDER BY id LIMIT 1), '$key')}),
	'1:ok', 'the note the cron job stored verifies');
like($node->safe_psql('postgres', q{SELECT note FROM hipaa_audit.checkpoints ORDER BY id LIMIT 1}),
	qr/^rows 25$/m, 'and records the 25 rows');

$node->stop;
done_testing();
