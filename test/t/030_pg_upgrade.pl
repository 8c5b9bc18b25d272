# pg_upgrade of a cluster with protected tables (here between two clusters
# of the version under test, as PostgreSQL's own pg_upgrade tests do; the
# steps are the same between major versions): the restore of the schema
# runs in binary-upgrade mode, which recreates the extension's objects one
# by one, and the data files come over unchanged.  Afterwards the chains
# verify with every hash unchanged, a checkpoint signed before verifies,
# inserts continue the chains, and every refusal holds again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

$ENV{PGCLIENTENCODING} = 'UTF8';
my $keydir = PostgreSQL::Test::Utils::tempdir;
chmod 0700, $keydir;
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$keydir/signer.pem") == 0
  or die 'openssl genpkey failed';
chmod 0600, "$keydir/signer.pem";
my $conf = "shared_preload_libraries = 'hipaa_audit'\n"
  . "hipaa_audit.signing_key_file = '$keydir/signer.pem'\n"
  . "hipaa_audit.signer_name = 'upgrade.example'\n";

my $old = PostgreSQL::Test::Cluster->new('old');
$old->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$old->append_conf('postgresql.conf', $conf);
$old->start;
$old->safe_psql('postgres', q{
	CREATE EXTENSION hipaa_audit;
	CREATE TABLE access_log (id int, actor text, doc jsonb, amounts numeric[]);
	SELECT hipaa_audit.protect('access_log', chains => 4);
	INSERT INTO access_log SELECT g, 'user ' || g, jsonb_build_object('g', g), ARRAY[g * 1.5, NULL]
	  FROM generate_series(1, 300) g;
	CREATE TABLE parted_log (id int, at date NOT NULL, who text) PARTITION BY RANGE (at);
	CREATE TABLE parted_log_01 PARTITION OF parted_log FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
	CREATE TABLE parted_log_02 PARTITION OF parted_log FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
	SELECT hipaa_audit.protect('parted_log', chains => 2);
	INSERT INTO parted_log SELECT g, '2026-01-01'::date + (g % 50), 'u' || g FROM generate_series(1, 100) g;
});
my $hashes_sql = q{SELECT string_agg(audit_chain || ':' || audit_seq || ':' || encode(audit_hash, 'hex'), ',' ORDER BY audit_chain, audit_seq) FROM access_log};
my $hashes = $old->safe_psql('postgres', $hashes_sql);
my $registry_sql = q{SELECT string_agg(relid::text || ':' || table_uuid || ':' || chains || ':'
                     || coalesce(partition_of::text, '-'), ',' ORDER BY relid::text) FROM hipaa_audit.registry};
my $parted_sql = q{SELECT string_agg(tableoid::regclass || ':' || audit_chain || ':' || audit_seq || ':'
                   || encode(audit_hash, 'hex'), ',' ORDER BY 1) FROM parted_log};
my $parted = $old->safe_psql('postgres', $parted_sql);
my $parted_note = $old->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('parted_log')});
my $registry = $old->safe_psql('postgres', $registry_sql);
my $note = $old->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('access_log')});
my $vkey = $old->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');
$old->stop;

my $new = PostgreSQL::Test::Cluster->new('new');
$new->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$new->append_conf('postgresql.conf', $conf);

ha_pg_upgrade($old, $old->config_data('--bindir'), $new,
	'pg_upgrade of a cluster with a protected table');
$new->start;

is($new->safe_psql('postgres', $registry_sql), $registry,
	'the registry came over with the same table identity');
is($new->safe_psql('postgres', $hashes_sql), $hashes,
	'every row keeps its chain position and its hash');
is($new->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('access_log')}),
	'1:300', 'every row verifies after pg_upgrade');
is($new->safe_psql('postgres',
		"SELECT ok::int || ':' || status FROM hipaa_audit.verify_checkpoint(\$n\$$note\$n\$, '$vkey')"),
	'1:ok', 'a checkpoint signed before the upgrade verifies');
is($new->safe_psql('postgres',
		"SELECT string_agg(tgname || '=' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'access_log'::regclass"),
	'hipaa_audit_chain=A,hipaa_audit_guard_row=A,hipaa_audit_guard_truncate=A',
	'chain and guard triggers came over ENABLE ALWAYS');

$new->safe_psql('postgres',
	q{INSERT INTO access_log (id, actor) SELECT g, 'after' FROM generate_series(301, 320) g});
is($new->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('access_log')}),
	'1:320', 'inserts continue the chains');
is($new->safe_psql('postgres', q{SELECT count(*) FROM access_log a JOIN access_log b ON a.audit_chain = b.audit_chain AND a.audit_seq = b.audit_seq AND a.id <> b.id}),
	'0', '... without reusing a position');
foreach my $sql ('UPDATE access_log SET actor = NULL', 'DELETE FROM access_log',
	'TRUNCATE access_log', 'ALTER TABLE access_log DISABLE TRIGGER ALL',
	'DROP TABLE access_log', 'ALTER EXTENSION hipaa_audit DROP TABLE hipaa_audit.registry')
{
	my ($rc, $out, $err) = $new->psql('postgres', $sql);
	like($err, qr/ERROR:  cannot /, "refused after pg_upgrade: $sql");
}
is($new->safe_psql('postgres', $parted_sql), $parted,
	'partitioned table: every row keeps its partition, chain position and hash');
is($new->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('parted_log')}),
	'1:100', 'partitioned table: verify() ok after pg_upgrade');
is($new->safe_psql('postgres',
		"SELECT ok::int || ':' || status FROM hipaa_audit.verify_checkpoint(\$n\$$parted_note\$n\$, '$vkey')"),
	'1:ok', 'partitioned table: its checkpoint signed before the upgrade verifies');
$new->safe_psql('postgres', q{
	CREATE TABLE parted_log_03 PARTITION OF parted_log FOR VALUES FROM ('2026-03-01') TO ('2026-04-01');
	INSERT INTO parted_log VALUES (101, '2026-03-02', 'after'), (102, '2026-01-02', 'after')});
is($new->safe_psql('postgres', q{SELECT count(*) FROM hipaa_audit.registry WHERE partition_of = 'parted_log'::regclass}),
	'3', 'partitioned table: a partition made after the upgrade is protected');
is($new->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('parted_log')}),
	'1:102', 'partitioned table: inserts continue the chains');
foreach my $sql ('DELETE FROM parted_log', 'UPDATE parted_log_01 SET who = NULL', 'TRUNCATE parted_log_02',
	'ALTER TABLE parted_log DETACH PARTITION parted_log_01')
{
	my ($rc, $out, $err) = $new->psql('postgres', $sql);
	like($err, qr/ERROR:  cannot /, "refused after pg_upgrade: $sql");
}
my ($rc, $out, $err) = $new->psql('template1', 'DROP DATABASE postgres');
like($err, qr/ERROR:  cannot DROP DATABASE "postgres", which holds protected tables/,
	'the database mark came over: DROP DATABASE is refused');
is($new->safe_psql('postgres', 'SELECT count(*) FROM access_log'), '320',
	'... and no row was lost');

done_testing();
