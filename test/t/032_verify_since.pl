# Incremental verification: verify(tbl, since => a stored checkpoint's id)
# and verify(tbl, since => a signed checkpoint note, key => its verifier
# key) check only the rows added after the heads that checkpoint recorded,
# linked to them; what they see, what they cannot see (changes before the
# checkpoint: the full verify() does), and their bad inputs.
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

# (Each recorded head row is read again too: its content is re-hashed.)
my $nheads = sql(q{SELECT count(DISTINCT audit_chain) FROM log WHERE note LIKE 'old%'});
is(sql("SELECT ok || ':' || rows_checked || ':' || problems FROM hipaa_audit.verify('log', since => $id)"),
	'true:' . (90 + $nheads) . ':0',
	'incremental: only the 90 rows added after the checkpoint and the recorded heads are checked, all intact');
is(sql(q{SELECT ok || ':' || rows_checked FROM hipaa_audit.verify('log')}), 'true:' . ($old_rows + 90),
	'the full verify() checks every row');
is(since_problems('log', $id), '', 'verify_problems(since) is empty');

# The same from the signed note itself, as an auditor holds it outside the
# database, with the published verifier key.
my $vkey = sql(q{SELECT hipaa_audit.verifier_key()});
sub note_problems
{
	my ($tbl, $note) = @_;
	return sql("SELECT coalesce(string_agg(chain || ':' || seq || ':' || kind, ' '), '') "
		  . "FROM hipaa_audit.verify_problems('$tbl', since => " . lit($note) . ', key => ' . lit($vkey) . ')');
}
is(sql('SELECT ok || \':\' || rows_checked || \':\' || problems FROM hipaa_audit.verify(\'log\', since => '
	  . lit($ck) . ', key => ' . lit($vkey) . ')'),
	'true:' . (90 + $nheads) . ':0', 'incremental from the signed note: the same rows, intact');
is(note_problems('log', $ck), '', 'verify_problems(since => note, key) is empty');

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
is(note_problems('log', $ck), "$new_chain:$new_seq:hash_mismatch",
	'incremental from the note: the same problem, at the same row');

# A recorded head row whose content changed, its stored hash left as
# recorded: the incremental check reads the head row too.
my ($h0c, $h0s) = split /\|/, sql(q{SELECT audit_chain, max(audit_seq) FROM log WHERE note LIKE 'old%'
	GROUP BY audit_chain ORDER BY audit_chain DESC LIMIT 1});
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
sql("ALTER TABLE log DISABLE TRIGGER ALL; UPDATE log SET note = 'head rewritten' WHERE audit_chain = $h0c AND audit_seq = $h0s;
	ALTER TABLE log ENABLE ALWAYS TRIGGER hipaa_audit_chain, ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;");
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
like(since_problems('log', $id), qr/(^| )$h0c:$h0s:hash_mismatch( |$)/,
	'incremental: a recorded head row with changed content is reported at it');
like(note_problems('log', $ck), qr/(^| )$h0c:$h0s:hash_mismatch( |$)/, 'and from the note');

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
like(note_problems('log', $ck), qr/(^| )$hc:$hs:checkpoint_rows_missing( |$)/,
	'incremental from a note whose head the table no longer holds: reported at its chain and position');
like(sql('SELECT first_problem FROM hipaa_audit.verify(\'log\', since => ' . lit($ck) . ', key => ' . lit($vkey) . ')'),
	qr/the checkpoint note recorded a row at this position; it is gone/, 'and its detail names the note');

# The hourly job docs/operations.md shows: with no checkpoint older than an
# hour, no row and no error; with one, its summary.
my $hourly = q{SELECT v.ok FROM (SELECT max(id) AS id FROM hipaa_audit.checkpoints
	  WHERE relid = 'log'::regclass AND created_at < now() - interval '%s') c,
	  LATERAL hipaa_audit.verify('log', since => c.id) v WHERE c.id IS NOT NULL};
is(sql(sprintf($hourly, '1 hour')), '', 'the documented hourly job: nothing to check yet, no error');
is(sql(sprintf($hourly, '0 seconds')), 'f', 'the documented hourly job: from the latest checkpoint, the problems found');

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

# The note form: unsigned, forged, signed by another key, of another
# table, not a note at all, a NULL key, a key that does not parse.
my ($body) = split_note($ck);
my $forged = $ck;
$forged =~ s/^(chain \d+ \d+ )([0-9a-f])/$1 . ($2 eq '0' ? '1' : '0')/me or die 'no chain line';
my $other_key = "$keydir/other.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $other_key);
my $other_vkey = verifier_key_of('audit.example.org', raw_pub($other_key));
sub note_state
{
	my ($note, $k) = @_;
	return sqlstate_of('SELECT * FROM hipaa_audit.verify(\'log\', since => ' . lit($note) . ', key => ' . $k . ')');
}
like(note_state($body, lit($vkey)),
	qr/ERROR:  22023: the checkpoint note does not verify with the given key\nDETAIL:  malformed_note: /,
	'an unsigned note (the body alone): 22023');
like(note_state($forged, lit($vkey)),
	qr/ERROR:  22023: the checkpoint note does not verify with the given key\nDETAIL:  bad_signature: /,
	'a forged note (one recorded hash changed): 22023, bad signature');
like(note_state($ck, lit($other_vkey)),
	qr/ERROR:  22023: the checkpoint note does not verify with the given key\nDETAIL:  \w+: .*\nHINT:  Give a note returned by hipaa_audit\.checkpoint\(\)/,
	'a key that did not sign it: 22023');
like(note_state($ck_other, lit($vkey)),
	qr/ERROR:  22023: the checkpoint note is not of table public\.log\nDETAIL:  The note names table identity [0-9a-f-]+; table public\.log has identity/,
	'a signed note of another table: 22023');
like(note_state('hello', lit($vkey)), qr/ERROR:  22023: the checkpoint note does not verify/,
	'not a note at all: 22023');
like(note_state($ck, 'NULL'), qr/ERROR:  22004: arguments of hipaa_audit\.verify must not be null/,
	'key => NULL: 22004');
like(note_state($ck, lit('not a key')),
	qr/ERROR:  22023: the checkpoint note does not verify with the given key\nDETAIL:  malformed_key: /,
	'a key that does not parse: 22023');
like(note_state('x' x 300000, lit($vkey)), qr/ERROR:  54000: /, 'an oversized note: 54000, before it is read');
is(sql(q{SELECT count(*) FROM log}) . '/' . (sql(q{SELECT count(*) FROM hipaa_audit.checkpoints}) - 1), $before,
	'nothing was changed by the refused calls (only the checkpoint of other was added)');

$node->stop;
done_testing();
