# DROP DATABASE runs from another database, where the dropped one's registry
# cannot be read: protect() marks its database in a shared catalog, and
# every database refuses to drop a marked one.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $node = ha_node('dropdb');
$node->safe_psql('postgres', 'CREATE DATABASE clinic');
$node->safe_psql('clinic', q{
	CREATE EXTENSION hipaa_audit;
	CREATE TABLE access_log (id int); SELECT hipaa_audit.protect('access_log');
	INSERT INTO access_log VALUES (1);
	CREATE TABLE empty_log (id int); SELECT hipaa_audit.protect('empty_log');
});
$node->safe_psql('postgres', 'CREATE DATABASE plain');

my ($rc, $out, $err);
foreach my $sql ('DROP DATABASE clinic', 'DROP DATABASE clinic WITH (FORCE)',
	'ALTER DATABASE clinic RESET ALL',
	'ALTER DATABASE clinic RESET hipaa_audit.database_protected',
	'ALTER DATABASE clinic SET hipaa_audit.database_protected = off',
	'ALTER ROLE ALL IN DATABASE clinic RESET ALL',
	'ALTER DATABASE clinic SET "Hipaa_Audit.Database_Protected" = off')
{
	($rc, $out, $err) = $node->psql('postgres', $sql);
	like($err, qr/ERROR:  cannot .*"clinic", which holds protected tables/,
		"refused from another database: $sql");
}
# Writing the shared catalog directly, from databases that hold no
# protected table (with and without the extension): refused while any
# database is marked.
foreach my $db ('postgres', 'plain')
{
	($rc, $out, $err) = $node->psql($db, q{
		DELETE FROM pg_db_role_setting
		 WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'clinic')});
	like($err, qr/ERROR:  cannot modify system catalog pg_catalog\.pg_db_role_setting while a database holds protected tables/,
		"direct DELETE of the mark from database $db: refused");
	($rc, $out, $err) = $node->psql($db, q{
		UPDATE pg_db_role_setting SET setconfig = '{}'
		 WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'clinic')});
	like($err, qr/ERROR:  cannot modify system catalog pg_catalog\.pg_db_role_setting/,
		"direct UPDATE of the mark from database $db: refused");
}
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE clinic');
like($err, qr/which holds protected tables/, 'the database is still marked: DROP DATABASE refused');
($rc, $out, $err) = $node->psql('clinic', 'ALTER DATABASE clinic RESET ALL');
like($err, qr/which holds protected tables/, 'refused inside it while tables are protected');
is($node->safe_psql('clinic', 'SELECT count(*) FROM access_log'), '1', 'the audit rows are there');
$node->command_ok([ 'dropdb', '--host', $node->host, '--port', $node->port, 'plain' ],
	'other databases can still be dropped');

# pg_dump/pg_restore into a new database marks it as it recreates the guards.
my $dump = PostgreSQL::Test::Utils::tempdir . '/clinic.dump';
$node->command_ok([ 'pg_dump', '--format', 'custom', '--file', $dump, '--dbname', $node->connstr('clinic') ],
	'pg_dump of the database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '--dbname', $node->connstr('restored'), $dump ],
	'pg_restore into a new database');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE restored');
like($err, qr/cannot DROP DATABASE "restored", which holds protected tables/,
	'the restored database is protected from DROP DATABASE too');

# Unprotecting the last table (an empty one) clears the mark.
$node->safe_psql('postgres', q{CREATE DATABASE scratch});
$node->safe_psql('scratch', q{
	CREATE EXTENSION hipaa_audit;
	CREATE TABLE t (id int); SELECT hipaa_audit.protect('t');
});
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE scratch');
like($err, qr/which holds protected tables/, 'a database with an empty protected table is marked');
$node->safe_psql('scratch', q{SELECT hipaa_audit.unprotect('t')});
$node->safe_psql('postgres', 'DROP DATABASE scratch');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'scratch'}),
	'0', 'after the last table is unprotected, the database can be dropped');

# Dropping the last protected table (idle past its retention) clears it too;
# dropping one of two does not.
$node->safe_psql('postgres', q{CREATE DATABASE scratch2});
$node->safe_psql('scratch2', q{
	CREATE EXTENSION hipaa_audit;
	CREATE TABLE a (id int); SELECT hipaa_audit.protect('a', retention => '1 millisecond');
	CREATE TABLE b (id int); SELECT hipaa_audit.protect('b');
	INSERT INTO a VALUES (1);
	SELECT pg_sleep(0.05);
});
$node->safe_psql('scratch2', 'DROP TABLE a');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE scratch2');
like($err, qr/cannot DROP DATABASE "scratch2", which holds protected tables/,
	'after dropping one of two protected tables the database is still marked');
$node->safe_psql('scratch2', 'DROP TABLE b');
is($node->safe_psql('scratch2', q{SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
	WHERE d.datname = 'scratch2' AND array_to_string(s.setconfig, ',') LIKE '%database_protected%'}),
	'0', 'dropping the last protected table clears the mark');
$node->safe_psql('postgres', 'DROP DATABASE scratch2');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'scratch2'}),
	'0', 'and the database can be dropped');

$node->stop;
done_testing();
