# Protection is state in the database, not in memory: it survives a clean
# restart and a crash (immediate shutdown), in every new session.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $node = ha_node('restart');
$node->safe_psql('postgres', q{
	CREATE TABLE access_log (id int PRIMARY KEY, actor text NOT NULL);
	SELECT hipaa_audit.protect('access_log', chains => 1);
	INSERT INTO access_log SELECT g, 'user' || g FROM generate_series(1, 100) g;
});
my $before = $node->safe_psql('postgres',
	"SELECT md5(string_agg(id || ':' || actor, ',' ORDER BY id)) FROM access_log");

sub check_protected
{
	my ($when) = @_;
	foreach my $sql ('UPDATE access_log SET actor = NULL',
		'DELETE FROM access_log', 'TRUNCATE access_log',
		'ALTER TABLE access_log DISABLE TRIGGER ALL',
		'DROP TABLE access_log')
	{
		my ($rc, $out, $err) = $node->psql('postgres', $sql);
		isnt($rc, 0, "$when: refused: $sql");
		like($err, qr/ERROR:  cannot .* protected table public\.access_log/,
			"$when: refused by hipaa_audit: $sql");
	}
	is($node->safe_psql('postgres',
			"SELECT md5(string_agg(id || ':' || actor, ',' ORDER BY id)) FROM access_log"),
		$before, "$when: rows unchanged");
	is($node->safe_psql('postgres',
			"SELECT string_agg(tgname || '=' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'access_log'::regclass"),
		'hipaa_audit_chain=A,hipaa_audit_guard_row=A,hipaa_audit_guard_truncate=A',
		"$when: chain and guard triggers present and ENABLE ALWAYS");
	is($node->safe_psql('postgres', q{SELECT ok FROM hipaa_audit.verify('access_log')}),
		't', "$when: every chain verifies");
}

check_protected('before restart');

$node->restart;
check_protected('after restart');

# Crash: rows inserted and committed just before must be there afterwards.
$node->safe_psql('postgres', q{INSERT INTO access_log VALUES (101, 'late')});
$before = $node->safe_psql('postgres',
	"SELECT md5(string_agg(id || ':' || actor, ',' ORDER BY id)) FROM access_log");
$node->stop('immediate');
$node->start;
check_protected('after crash recovery');

# After a restart the chain heads are rebuilt from the table.  The writer
# may be a role that can only INSERT, and row level security may hide every
# row from it: the rebuild must still see them all, or the chain would fork.
$node->safe_psql('postgres', q{
	CREATE ROLE app_writer LOGIN;
	GRANT INSERT ON access_log TO app_writer;
	ALTER TABLE access_log ENABLE ROW LEVEL SECURITY;
	CREATE POLICY writer_inserts ON access_log FOR INSERT TO app_writer WITH CHECK (true);
});
$node->restart;
$node->safe_psql('postgres', q{
	SET ROLE app_writer;
	INSERT INTO access_log VALUES (102, 'insert-only writer');
	INSERT INTO access_log VALUES (103, 'insert-only writer');
});
is($node->safe_psql('postgres', q{
		SELECT string_agg(audit_seq::text, ',' ORDER BY id) FROM access_log WHERE id >= 101}),
	'101,102,103', 'an INSERT-only writer behind row level security continues the chain');
is($node->safe_psql('postgres', q{SELECT ok FROM hipaa_audit.verify('access_log')}),
	't', 'and it verifies');

$node->stop;
done_testing();
