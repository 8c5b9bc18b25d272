# The library must be preloaded: anything else is refused with a clear
# message, and the protections switch on with the preload.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $node = ha_node('nopreload', preload => 0);

my ($rc, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION hipaa_audit');
isnt($rc, 0, 'CREATE EXTENSION fails without shared_preload_libraries');
like($err, qr/hipaa_audit must be loaded via shared_preload_libraries/,
	'the error names the setting');
like($err, qr/HINT:\s+Add hipaa_audit to shared_preload_libraries/, 'with a hint');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_extension WHERE extname = 'hipaa_audit'"),
	'0', 'nothing was installed');

($rc, $out, $err) = $node->psql('postgres', "LOAD 'hipaa_audit'");
isnt($rc, 0, 'LOAD is refused too');
like($err, qr/must be loaded via shared_preload_libraries/, 'with the same message');

($rc, $out, $err) = $node->psql('postgres',
	"SET session_preload_libraries = 'hipaa_audit'; SELECT 1");
$node->append_conf('postgresql.conf', "session_preload_libraries = 'hipaa_audit'\n");
$node->reload;
($rc, $out, $err) = $node->psql('postgres', 'SELECT 1');
isnt($rc, 0, 'session_preload_libraries is refused');
like($err, qr/must be loaded via shared_preload_libraries/, 'with the same message');

# Switch to shared_preload_libraries: now it installs and protects.
$node->append_conf('postgresql.conf', "session_preload_libraries = ''\n");
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
$node->safe_psql('postgres', q{
	CREATE EXTENSION hipaa_audit;
	CREATE TABLE t (a int);
	SELECT hipaa_audit.protect('t');
	INSERT INTO t VALUES (1);
});
($rc, $out, $err) = $node->psql('postgres', 'DELETE FROM t');
isnt($rc, 0, 'with the preload, DELETE is refused');
like($err, qr/cannot DELETE FROM protected table public\.t/, 'by hipaa_audit');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '1', 'row kept');

$node->stop;
done_testing();
