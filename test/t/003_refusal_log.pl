# Every refused attempt reaches the server log with who, from where, with
# which application and what statement, at the default log_min_messages.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

# Cluster.pm turns log_statement on; put it back to the default so only
# hipaa_audit's own line can name the statement.
my $node = ha_node('logging',
	conf => "listen_addresses = '127.0.0.1'\nlog_statement = none\n");
is($node->safe_psql('postgres', 'SHOW log_min_messages'), 'warning',
	'log_min_messages is at its default');

$node->safe_psql('postgres', q{
	CREATE ROLE clerk LOGIN;
	CREATE TABLE access_log (id int, actor text);
	SELECT hipaa_audit.protect('access_log');
	GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON access_log TO clerk;
	INSERT INTO access_log VALUES (1, 'dr_alvarez');
});

# Over TCP, so the client address is a real one.
my $host = $node->host;
my $port = $node->port;
my $connstr = "host=127.0.0.1 port=$port dbname=postgres user=clerk application_name=sneaky_app";

my @attempts = (
	[ 'UPDATE access_log SET actor = \'x\'', 'UPDATE' ],
	[ 'DELETE FROM access_log WHERE id = 1', 'DELETE FROM' ],
	[ 'TRUNCATE access_log', 'TRUNCATE' ],
);

foreach my $a (@attempts)
{
	my ($sql, $what) = @$a;
	my $offset = -s $node->logfile;
	my ($stdout, $stderr);
	my $rc = $node->psql('postgres', $sql, connstr => $connstr,
		stdout => \$stdout, stderr => \$stderr);
	isnt($rc, 0, "refused: $sql");
	my $log = slurp_file($node->logfile, $offset);
	like($log,
		qr/LOG:  hipaa_audit: refused: cannot \Q$what\E protected table public\.access_log; role=clerk session_role=clerk client=127\.0\.0\.1 application=sneaky_app statement: \Q$sql\E$/m,
		"one log line says what, who, from where, which application and the statement: $sql");
	unlike($stderr, qr/client=127/, "the client sees the error, not the log line: $sql");
}

# A superuser's DDL refusal is logged the same way.
my $offset = -s $node->logfile;
$node->psql('postgres', 'ALTER TABLE access_log DISABLE TRIGGER ALL',
	connstr => "host=127.0.0.1 port=$port dbname=postgres user=" . getpwuid($<) . " application_name=dba_console");
my $log = slurp_file($node->logfile, $offset);
like($log,
	qr/LOG:  hipaa_audit: refused: cannot DISABLE TRIGGER ALL on protected table public\.access_log; role=\S+ session_role=\S+ client=127\.0\.0\.1 application=dba_console statement: ALTER TABLE access_log DISABLE TRIGGER ALL$/m,
	'a superuser\'s DDL refusal is logged the same way');

is($node->safe_psql('postgres', 'SELECT count(*) FROM access_log'), '1', 'row kept');

$node->stop;
done_testing();
