# A chain column retyped behind the extension's back (a superuser with the
# library unloaded): every later INSERT and verify() fails with a clear
# error instead of writing or reading a datum of the wrong type (which
# crashed the backend, and with it the server, for any role that inserted).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $ENV{TESTDIR} ? "$ENV{TESTDIR}/test/t" : 't';
use HaTest;

my $node = ha_node('retyped');
$node->safe_psql('postgres', q{
	CREATE ROLE app LOGIN;
	CREATE TABLE audit (id int NOT NULL, note text);
	SELECT hipaa_audit.protect('audit');
	GRANT INSERT, SELECT ON audit TO app;
	INSERT INTO audit VALUES (1, 'before');
});

# Library out, chain columns retyped, library back.
$node->stop;
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->start;
$node->safe_psql('postgres', q{
	ALTER TABLE audit ALTER COLUMN audit_at TYPE text USING audit_at::text;
	ALTER TABLE audit ALTER COLUMN audit_seq TYPE text USING audit_seq::text;
});
$node->stop;
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "'hipaa_audit'");
$node->start;

my ($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE app; INSERT INTO audit VALUES (2, 'after')");
like($err, qr/ERROR:  chain column "audit_(seq|at)" of protected table public\.audit has type text, not (bigint|timestamp with time zone)/,
	'an INSERT by an ordinary role: a clear error');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still up');
($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM hipaa_audit.verify('audit')");
like($err, qr/ERROR:  chain column "audit_(seq|at)" of protected table public\.audit has type text/,
	'verify(): the same clear error');
is($node->safe_psql('postgres', 'SELECT count(*) FROM audit'), '1', 'no row was added');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no backend crashed');

$node->stop;
done_testing();
