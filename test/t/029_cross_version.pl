# The canonical encoding is the same on every supported major version: a
# protected table written on an older PostgreSQL (HA_OLD_PG_BIN, the bin
# directory of an installation with hipaa_audit built for it; test/run.sh
# sets it to Debian's 15 when it runs the suite against another version),
# dumped with the newer pg_dump and restored into this one, keeps every
# row's hash, verifies, continues its chains, refuses changes, and a
# checkpoint signed on the old version verifies here; and the same after
# pg_upgrade from the old version to this one.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

plan skip_all => 'no older PostgreSQL with hipaa_audit given (HA_OLD_PG_BIN)'
  unless $ENV{HA_OLD_PG_BIN} && -x "$ENV{HA_OLD_PG_BIN}/postgres";

$ENV{PGCLIENTENCODING} = 'UTF8';
my $keydir = PostgreSQL::Test::Utils::tempdir;
chmod 0700, $keydir;
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$keydir/signer.pem") == 0
  or die 'openssl genpkey failed';
chmod 0600, "$keydir/signer.pem";
my $conf = "shared_preload_libraries = 'hipaa_audit'\n"
  . "hipaa_audit.signing_key_file = '$keydir/signer.pem'\n"
  . "hipaa_audit.signer_name = 'old.example'\n";

my $old = PostgreSQL::Test::Cluster->new('old',
	install_path => dirname($ENV{HA_OLD_PG_BIN}));
$old->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$old->append_conf('postgresql.conf', $conf);
$old->start;
my $new = PostgreSQL::Test::Cluster->new('new');
$new->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$new->append_conf('postgresql.conf', $conf);
$new->start;

my $old_version = $old->safe_psql('postgres', 'SHOW server_version_num');
my $new_version = $new->safe_psql('postgres', 'SHOW server_version_num');
cmp_ok(int($old_version / 10000), '<', int($new_version / 10000),
	"the old cluster ($old_version) is an older major version than this one ($new_version)");

# Many types, so that every rule of docs/encoding.md is crossed: NaNs in
# floats, arrays and composites, numeric scales, jsonb, ranges, enums,
# time zones, TOASTed values; several transactions.
$old->safe_psql('postgres', q{
	CREATE EXTENSION hipaa_audit;
	CREATE SCHEMA clinic;
	CREATE TYPE clinic.mood AS ENUM ('calm', 'angry');
	CREATE TYPE clinic.pair AS (a numeric, f float8, fs real[], t timestamptz);
	CREATE TABLE clinic.access_log (
		id int, actor text, at timestamptz, mood clinic.mood, p clinic.pair,
		amounts numeric[], doc jsonb, stay tstzrange, nums int4multirange,
		f4 real, f8 float8, big text, raw bytea, span interval, day date,
		tod timetz, addr inet, tags text[], flag bool, u uuid);
	SELECT hipaa_audit.protect('clinic.access_log', chains => 4);
});
foreach my $s (1 .. 4)
{
	$old->safe_psql('postgres', qq{
		INSERT INTO clinic.access_log
		SELECT g, 'user ' || g || ' Zoë', '2026-01-01 00:00+00'::timestamptz + g * interval '1 minute',
		       CASE WHEN g % 2 = 0 THEN 'calm' ELSE 'angry' END::clinic.mood,
		       ROW(g * 1.50, 'NaN'::float8, ARRAY['NaN'::real, -0.0::real, g::real],
		           '2026-01-02 03:04:05+05:30'::timestamptz)::clinic.pair,
		       ARRAY[1.0, 2.00, NULL, 'NaN']::numeric[], jsonb_build_object('g', g, 'x', ARRAY[1, 2.0]),
		       tstzrange('2026-01-01', '2026-02-01'), '{[1,3),[5,9)}',
		       'NaN', CASE WHEN g % 3 = 0 THEN 'Infinity' ELSE g / 7.0 END,
		       CASE WHEN g = 10 * $s THEN repeat('toast ', 5000) END,
		       decode('00ff' || lpad(to_hex(g), 4, '0'), 'hex'), interval '1 year 2 mons -3 days 04:05:06.7',
		       '2026-12-03', '12:34:56.789+05:30', '10.0.0.1/8', ARRAY['a', NULL, 'ë'], g % 2 = 0,
		       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'
		  FROM generate_series(($s - 1) * 50 + 1, $s * 50) g;
	});
}
my $hashes_sql = q{SELECT string_agg(audit_chain || ':' || audit_seq || ':' || encode(audit_hash, 'hex'), ',' ORDER BY audit_chain, audit_seq) FROM clinic.access_log};
my $hashes = $old->safe_psql('postgres', $hashes_sql);
is($old->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('clinic.access_log')}),
	'1:200', 'the table verifies on the old version');
my $note = $old->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('clinic.access_log')});
my $vkey = $old->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');

# The newer pg_dump reads the older server, as PostgreSQL's upgrade
# instructions say.  (Debian's PostgreSQL 15 stores an attribute option of
# its own, pg_attver, on every column, which other builds reject; it is
# left out of the script, as a DBA moving to another build would.)
my $dump = PostgreSQL::Test::Utils::tempdir . '/old.sql';
$new->command_ok([ 'pg_dump', '--format', 'plain', '--file', $dump,
		'--dbname', $old->connstr('postgres') ], 'pg_dump (new) of the old cluster');
my $script = slurp_file($dump);
my $options = () = $script =~ /^ALTER TABLE ONLY .* SET \(pg_attver=\d+\);\n/mg;
$script =~ s/^ALTER TABLE ONLY .* SET \(pg_attver=\d+\);\n//mg;
note("left out $options pg_attver column options");
open(my $fh, '>', $dump) or die;
print $fh $script;
close $fh;
$new->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-d', $new->connstr('postgres'), '-f', $dump ], 'the dump restores into this version');

is($new->safe_psql('postgres', $hashes_sql), $hashes,
	'every row keeps its chain position and its hash');
is($new->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('clinic.access_log')}),
	'1:200', 'every row verifies here: the encoding is the same on both versions');
like($new->safe_psql('postgres',
		"SELECT ok::int || ':' || status FROM hipaa_audit.verify_checkpoint(\$n\$$note\$n\$, '$vkey')"),
	qr/^1:ok$/, 'a checkpoint signed on the old version verifies here');

# The restored table is protected as before.
$new->safe_psql('postgres', q{
	INSERT INTO clinic.access_log (id, actor) SELECT g, 'after' FROM generate_series(201, 210) g;
});
is($new->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('clinic.access_log')}),
	'1:210', 'inserts continue the chains here');
is($new->safe_psql('postgres', q{SELECT count(*) FROM clinic.access_log a JOIN clinic.access_log b ON a.audit_chain = b.audit_chain AND a.audit_seq = b.audit_seq AND a.id <> b.id}),
	'0', '... without reusing a position');
foreach my $sql ('UPDATE clinic.access_log SET actor = NULL',
	'DELETE FROM clinic.access_log', 'TRUNCATE clinic.access_log')
{
	my ($rc, $out, $err) = $new->psql('postgres', $sql);
	like($err, qr/ERROR:  cannot \w+/, "refused here: $sql");
}
is($new->safe_psql('postgres', 'SELECT count(*) FROM clinic.access_log'), '210',
	'... and no row was lost');

# ------------------------------------------------------------------------
# pg_upgrade from the old version to this one.  Debian's PostgreSQL 15
# stores an attribute option of its own (pg_attver) on every column, which
# other builds reject while restoring the schema: as the preparation a DBA
# would make (docs/operations.md), a superuser removes it with the library
# not loaded, for this one step.
# ------------------------------------------------------------------------
$old->stop;
$old->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$old->start;
foreach my $db ('postgres', 'template1')
{
	$old->safe_psql($db,
		'UPDATE pg_attribute SET attoptions = NULL WHERE attrelid >= 16384 AND attoptions IS NOT NULL');
}
$old->stop;
$old->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");

my $upgraded = PostgreSQL::Test::Cluster->new('upgraded');
# (The same data-checksum setting as the old cluster: 18's initdb turns
# them on unless told.)
$upgraded->init(extra => [ '--encoding=UTF8', '--locale=C',
		$new_version >= 180000 ? ('--no-data-checksums') : () ]);
$upgraded->append_conf('postgresql.conf', $conf);
ha_pg_upgrade($old, $ENV{HA_OLD_PG_BIN}, $upgraded, 'pg_upgrade from the old version to this one');
$upgraded->start;
is($upgraded->safe_psql('postgres', $hashes_sql), $hashes,
	'pg_upgrade: every row keeps its chain position and its hash');
is($upgraded->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('clinic.access_log')}),
	'1:200', 'pg_upgrade: every row verifies on this version');
like($upgraded->safe_psql('postgres',
		"SELECT ok::int || ':' || status FROM hipaa_audit.verify_checkpoint(\$n\$$note\$n\$, '$vkey')"),
	qr/^1:ok$/, 'pg_upgrade: the checkpoint signed on the old version verifies');
$upgraded->safe_psql('postgres',
	q{INSERT INTO clinic.access_log (id, actor) SELECT g, 'after' FROM generate_series(201, 205) g});
is($upgraded->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('clinic.access_log')}),
	'1:205', 'pg_upgrade: inserts continue the chains');
foreach my $sql ('UPDATE clinic.access_log SET actor = NULL',
	'DELETE FROM clinic.access_log', 'TRUNCATE clinic.access_log',
	'ALTER TABLE clinic.access_log DISABLE TRIGGER ALL')
{
	my ($rc, $out, $err) = $upgraded->psql('postgres', $sql);
	like($err, qr/ERROR:  cannot /, "pg_upgrade: refused on this version: $sql");
}
is($upgraded->safe_psql('postgres', 'SELECT count(*) FROM clinic.access_log'), '205',
	'pg_upgrade: ... and no row was lost');

done_testing();
