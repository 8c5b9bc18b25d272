# Incremental verification: verify(tbl, since => a stored checkpoint's id)
# checks only the rows added after the heads that checkpoint recorded,
# linked to them; what it sees, what it cannot see (changes before the
# checkpoint: the full verify() does), and its bad inputs.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;
use HaNote;

my $node = ha_node('since', conf => "include_if_exists = 'keys.conf'\n");
my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = "$keydir/server.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $key);
chmod 0600, $key;
write_file($node->data_dir . '/keys.conf',
	"hipaa_audit.signing_key_file = '$key'\nhipaa_audit.signer_name = 'audit.example.org'\n");
$node->restart;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub since_problems
{
	my ($tbl, $id) = @_;
	return sql("SELECT coalesce(string_agg(chain || ':' || seq || ':' || kind, ' '), '') "
		  . "FROM hipaa_audit.verify_problems('$tbl', since => $id)");
}

sub sqlstate_of
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	return $err;
}

sql(q{
	CREATE TABLE log (id int, note text);
	SELECT hipaa_audit.protect('log', chains => 4);
	CREATE TABLE other (id int);
	SELECT hipaa_audit.protect('other', chains => 1);
	INSERT INTO other VALUES (1);
});
# Four writers' worth of history: each INSERT takes a chain; rows of four
# sessions in turn so that all four chains fill.
for my $round (1 .. 5)
{
	sql("INSERT INTO log SELECT g, 'old $round/' || g FROM generate_series(1, 50) g");
}
my $ck = sql(q{SELECT hipaa_audit.checkpoint('log')});
my $id = sql(q{SELECT max(id) FROM hipaa_audit.checkpoints});
my $old_rows = sql('SELECT count(*) FROM log');
sql("INSERT INTO log SELECT g, 'new/' || g FROM generate_series(1, 30) g") for 1 .. 3;

is(sql("SELECT ok || ':' || rows_checked || ':' || problems FROM hipaa_audit.verify('log', since => $id)"),
	'true:90:0', 'incremental: only the 90 rows added after the checkpoint are checked, all intact');
is(sql(q{SELECT ok || ':' || rows_checked FROM hipaa_audit.verify('log')}), 'true:' . ($old_rows + 90),
	'the full verify() checks every row');
is(since_problems('log', $id), '', 'verify_problems(since) is empty');

# Tampering, by a superuser who unloads the extension: one change after the
# checkpoint, one before it.
my ($new_chain, $new_seq) = split /\|/, sql(q{SELECT audit_chain, audit_seq FROM log WHERE note = 'new/7' LIMIT 1});
my ($old_chain, $old_seq) = split /\|/, sql(q{SELECT audit_chain, audit_seq FROM log WHERE note = 'old 2/7'});
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
sql("ALTER TABLE log DISABLE TRIGGER ALL;
	UPDATE log SET note = 'rewritten' WHERE audit_chain = $new_chain AND audit_seq = $new_seq;
	UPDATE log SET note = 'rewritten' WHERE audit_chain = $old_chain AND audit_seq = $old_seq;
	ALTER TABLE log ENABLE ALWAYS TRIGGER hipaa_audit_chain, ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;");
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
is(since_problems('log', $id), "$new_chain:$new_seq:hash_mismatch",
	'incremental: the change after the checkpoint is reported at its row; the one before is outside it');
like(sql(q{SELECT string_agg(chain || ':' || seq || ':' || kind, ' ') FROM hipaa_audit.verify_problems('log')}),
	qr/(^| )$old_chain:$old_seq:hash_mismatch( |$)/, 'the full verify() reports the change before the checkpoint too');

# A recorded head that is gone: rows deleted from the end of a chain.
my $heads = sql(q{SELECT audit_chain || ':' || max(audit_seq) FROM log WHERE note LIKE 'old%' GROUP BY audit_chain ORDER BY audit_chain LIMIT 1});
my ($hc, $hs) = split /:/, $heads;
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
sql("ALTER TABLE log DISABLE TRIGGER ALL; DELETE FROM log WHERE audit_chain = $hc AND audit_seq >= $hs;
	ALTER TABLE log ENABLE ALWAYS TRIGGER hipaa_audit_chain, ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;");
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
like(since_problems('log', $id), qr/(^| )$hc:$hs:checkpoint_rows_missing( |$)/,
	'incremental: a recorded head that is gone is reported at its chain and position');

# Bad input: each refused with its SQLSTATE, nothing changed.
my $before = sql(q{SELECT count(*) FROM log}) . '/' . sql(q{SELECT count(*) FROM hipaa_audit.checkpoints});
my $ck_other = sql(q{SELECT hipaa_audit.checkpoint('other')});
my $id_other = sql(q{SELECT max(id) FROM hipaa_audit.checkpoints});
like(sqlstate_of("SELECT * FROM hipaa_audit.verify('log', since => $id_other)"),
	qr/ERROR:  22023: checkpoint $id_other is not a stored checkpoint of table public\.log\nHINT:  hipaa_audit\.checkpoints lists/,
	"a checkpoint of another table: 22023");
like(sqlstate_of("SELECT * FROM hipaa_audit.verify('log', since => 999999)"),
	qr/ERROR:  22023: checkpoint 999999 is not a stored checkpoint of table public\.log/,
	'a checkpoint id that does not exist: 22023');
like(sqlstate_of("SELECT * FROM hipaa_audit.verify_problems('log', since => NULL)"),
	qr/ERROR:  22004: arguments of hipaa_audit\.verify_problems must not be null/,
	'since => NULL: 22004');
like(sqlstate_of("SELECT * FROM hipaa_audit.verify('other', since => $id)"),
	qr/ERROR:  22023: checkpoint $id is not a stored checkpoint of table public\.other/,
	'the checkpoint of log given for table other: 22023');
is(sql(q{SELECT count(*) FROM log}) . '/' . (sql(q{SELECT count(*) FROM hipaa_audit.checkpoints}) - 1), $before,
	'nothing was changed by the refused calls (only the checkpoint of other was added)');

$node->stop;
done_testing();
