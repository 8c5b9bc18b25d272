# Several signers: checkpoint_all(), a quorum of keys, and co-signatures an
# outside party makes with stock OpenSSL, registered with trust_key() and
# added with cosign().
use strict;
use warnings;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;
use HaNote;

my $keys = PostgreSQL::Test::Utils::tempdir;
chmod 0700, $keys;
foreach my $k ('server', 'witness', 'stranger')
{
	system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$keys/$k.pem") == 0
	  or die "openssl genpkey $k failed";
	chmod 0600, "$keys/$k.pem";
}

my $node = ha_node('cosign', conf => qq{
hipaa_audit.signing_key_file = '$keys/server.pem'
hipaa_audit.signer_name = 'server.example'
});
$node->safe_psql('postgres', q{
	CREATE TABLE b_log (id int); CREATE TABLE a_log (id int);
	SELECT hipaa_audit.protect('b_log'); SELECT hipaa_audit.protect('a_log');
	INSERT INTO a_log VALUES (1), (2); INSERT INTO b_log VALUES (1);
});

# checkpoint_all(): every protected table, in name order.
is($node->safe_psql('postgres', q{SELECT string_agg(tbl::text, ',') FROM hipaa_audit.checkpoint_all()}),
	'a_log,b_log', 'checkpoint_all() checkpoints every protected table');
my $server_key = $node->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');
my $cp = $node->safe_psql('postgres', q{SELECT id FROM hipaa_audit.checkpoints WHERE relid = 'a_log'::regclass});
# (psql prints the note's own final newline; safe_psql keeps it.)
my $note = $node->safe_psql('postgres', "SELECT note FROM hipaa_audit.checkpoints WHERE id = $cp");

# An outside party signs the body with stock OpenSSL.
sub signer
{
	my ($who, $name, $body) = @_;
	my $pub = raw_pub("$keys/$who.pem");
	my $id = key_id($name, $pub);
	open(my $fh, '>:raw', "$keys/body.txt") or die;
	print $fh $body;
	close $fh;
	system('openssl', 'pkeyutl', '-sign', '-inkey', "$keys/$who.pem", '-rawin',
		'-in', "$keys/body.txt", '-out', "$keys/sig.bin") == 0 or die 'openssl sign failed';
	my $sig = slurp_file("$keys/sig.bin");
	return ("$name+" . unpack('H*', $id) . '+' . encode_base64("\x01$pub", ''),
		"\xe2\x80\x94 $name " . encode_base64($id . $sig, ''));
}
my ($body) = $note =~ /\A(.*?\n)\n/s;
my ($witness_key, $witness_line) = signer('witness', 'witness.example', $body);
my ($stranger_key, $stranger_line) = signer('stranger', 'witness.example', $body);


my ($rc, $out, $err) = $node->psql('postgres', "SELECT hipaa_audit.cosign($cp, " . lit($witness_line) . ')');
like($err, qr/co-signature by "witness\.example" does not verify against a trusted key/,
	'a co-signature from an unregistered key is refused');
$node->safe_psql('postgres', 'SELECT hipaa_audit.trust_key(' . lit($witness_key) . ')');
($rc, $out, $err) = $node->psql('postgres', "SELECT hipaa_audit.cosign($cp, " . lit($stranger_line) . ')');
like($err, qr/does not verify against a trusted key/,
	'a co-signature under a trusted name but by another key is refused');
($rc, $out, $err) = $node->psql('postgres', "SELECT hipaa_audit.cosign($cp, 'not a signature line')");
like($err, qr/invalid signature line/, 'a malformed signature line is refused');
($rc, $out, $err) = $node->psql('postgres', q{SELECT hipaa_audit.trust_key('not+a+key')});
like($err, qr/invalid verifier key/, 'trust_key() refuses a malformed key');
($rc, $out, $err) = $node->psql('postgres', "SELECT hipaa_audit.cosign(999999, " . lit($witness_line) . ')');
like($err, qr/checkpoint 999999 does not exist/, 'cosign() of a missing checkpoint');

my $cosigned = $node->safe_psql('postgres', "SELECT hipaa_audit.cosign($cp, " . lit($witness_line) . ')');
like($cosigned, qr/\n\n\xe2\x80\x94 server\.example \S+\n\xe2\x80\x94 witness\.example \S+\n?\z/,
	'cosign() returns the note with both signature lines');
($rc, $out, $err) = $node->psql('postgres', "SELECT hipaa_audit.cosign($cp, " . lit($witness_line) . ')');
like($err, qr/duplicate key value/, 'the same signer cannot co-sign twice');
is($node->safe_psql('postgres', "SELECT hipaa_audit.checkpoint_note($cp)"), $cosigned,
	'checkpoint_note() gives the same co-signed note');

my $full = $node->safe_psql('postgres', "SELECT hipaa_audit.checkpoint_note($cp)");
my $keys_arr = 'ARRAY[' . lit($server_key) . ', ' . lit($witness_key) . ']';
is($node->safe_psql('postgres', 'SELECT ok::int || status || array_to_string(signers, \',\') FROM hipaa_audit.verify_checkpoint('
		  . lit($full) . ", $keys_arr, 2)"),
	'1okserver.example,witness.example', 'a quorum of 2 of 2 keys is met by the co-signed note');
is($node->safe_psql('postgres', 'SELECT ok::int || status || coalesce(detail, \'\') FROM hipaa_audit.verify_checkpoint('
		  . lit($note) . ", $keys_arr, 2)"),
	'0quorum_not_met1 distinct signers of the 2 keys signed the note; 2 required',
	'the note without the co-signature does not meet it');
is($node->safe_psql('postgres', 'SELECT ok::int || status FROM hipaa_audit.verify_checkpoint('
		  . lit($note) . ", $keys_arr, 1)"),
	'1ok', 'but meets a quorum of 1');
# Change a character of the signature itself (after the key ID's 8 base64
# characters), so the line still names the witness key but does not verify.
is($node->safe_psql('postgres', 'SELECT ok::int || status FROM hipaa_audit.verify_checkpoint('
		  . lit($note) . ', ARRAY[' . lit($server_key) . ', ' . lit($server_key) . '], 2)'),
	'0quorum_not_met', 'one signer counts once, however often its key is given');
(my $forged = $full) =~ s/(witness\.example \S{20})(\S)/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
is($node->safe_psql('postgres', 'SELECT ok::int || status FROM hipaa_audit.verify_checkpoint('
		  . lit($forged) . ", $keys_arr, 1)"),
	'0bad_signature', 'a broken co-signature fails the check even when the quorum would be met without it');
($rc, $out, $err) = $node->psql('postgres', 'SELECT * FROM hipaa_audit.verify_checkpoint('
	  . lit($note) . ", $keys_arr, 3)");
like($err, qr/quorum must be between 1 and the number of keys \(2\)/, 'a quorum above the number of keys is an error');

# The co-signature tables are insert-only.
foreach my $sql ('DELETE FROM hipaa_audit.cosignatures', 'UPDATE hipaa_audit.trusted_keys SET name = \'x\'')
{
	($rc, $out, $err) = $node->psql('postgres', $sql);
	like($err, qr/ERROR:  cannot (DELETE FROM|UPDATE) table hipaa_audit\./, "refused: $sql");
}

# The stored checkpoints form a chain of their own: deleting or editing one
# (here by a superuser with the library unloaded) breaks it.
$node->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('a_log'); SELECT hipaa_audit.checkpoint('b_log')});
is($node->safe_psql('postgres', q{SELECT ok::int || ':' || checkpoints FROM hipaa_audit.verify_checkpoint_chain()}),
	'1:4', 'the four stored checkpoints link up');
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
$node->safe_psql('postgres', q{
	ALTER TABLE hipaa_audit.cosignatures DROP CONSTRAINT cosignatures_checkpoint_id_fkey;
	DELETE FROM hipaa_audit.checkpoints WHERE id = 3;
});
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
is($node->safe_psql('postgres', q{SELECT ok::int || ':' || first_problem FROM hipaa_audit.verify_checkpoint_chain()}),
	'0:checkpoint 4: it does not link to the checkpoint stored before it',
	'a deleted checkpoint breaks the link of the next one');

# A purge receipt, co-signed by the witness outside the database: a quorum
# of the server's and the witness's keys.
$node->safe_psql('postgres', q{
	CREATE TABLE r_log (id int);
	SELECT hipaa_audit.protect('r_log', retention => '1 second');
	INSERT INTO r_log VALUES (1), (2), (3);
});
$node->poll_query_until('postgres',
	q{SELECT clock_timestamp() > (SELECT max(audit_at) FROM r_log) + interval '1.1 seconds'})
  or die 'rows did not expire';
my $receipt = $node->safe_psql('postgres', q{SELECT receipt FROM hipaa_audit.purge_expired('r_log')});
my ($rbody) = $receipt =~ /\A(.*?\n)\n/s;
my (undef, $rwitness_line) = signer('witness', 'witness.example', $rbody);
my (undef, $rstranger_line) = signer('stranger', 'witness.example', $rbody);
my $keys2 = 'ARRAY[' . lit($server_key) . ', ' . lit($witness_key) . ']';
is($node->safe_psql('postgres', 'SELECT ok::int || status || array_to_string(signers, \',\') FROM hipaa_audit.verify_receipt('
		  . lit("$receipt$rwitness_line\n") . ", $keys2, 2)"),
	'1okserver.example,witness.example', 'a receipt co-signed by the witness meets a quorum of 2');
is($node->safe_psql('postgres', 'SELECT ok::int || status FROM hipaa_audit.verify_receipt('
		  . lit($receipt) . ", $keys2, 2)"),
	'0quorum_not_met', 'without the witness\'s line the quorum of 2 is not met');
is($node->safe_psql('postgres', 'SELECT ok::int || status FROM hipaa_audit.verify_receipt('
		  . lit("$receipt$rstranger_line\n") . ", $keys2, 2)"),
	'0quorum_not_met', 'a line under the witness\'s name by another key does not count');
is($node->safe_psql('postgres', 'SELECT ok::int || status FROM hipaa_audit.verify_receipt('
		  . lit("$receipt$rwitness_line\n") . ", $keys2, 1)"),
	'1ok', 'a quorum of 1 is met by either key');
($rc, $out, $err) = $node->psql('postgres', 'SELECT * FROM hipaa_audit.verify_receipt('
	  . lit($receipt) . ", $keys2, 3)");
like($err, qr/quorum must be between 1 and the number of keys \(2\)/, 'a quorum larger than the keys is an error');

# At most 63 co-signatures of one checkpoint, so that its note stays within
# 64 signature lines (docs/checkpoints.md, "Limits").  One key under 64
# names: each name is another trusted signer.
{
	$node->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('a_log')});
	my $cp2 = $node->safe_psql('postgres',
		q{SELECT max(id) FROM hipaa_audit.checkpoints WHERE relid = 'a_log'::regclass});
	my ($body2) = $node->safe_psql('postgres', "SELECT note FROM hipaa_audit.checkpoints WHERE id = $cp2")
	  =~ /\A(.*?\n)\n/s;
	my ($trust, $cosign) = ('', '');
	my $last_line;
	for my $i (1 .. 64)
	{
		my ($k, $l) = signer('witness', "w$i.example", $body2);
		$trust .= 'SELECT hipaa_audit.trust_key(' . lit($k) . ");\n";
		if ($i < 64) { $cosign .= "SELECT hipaa_audit.cosign($cp2, " . lit($l) . ") IS NOT NULL;\n"; }
		else { $last_line = $l; }
	}
	$node->safe_psql('postgres', $trust . $cosign);
	is($node->safe_psql('postgres', "SELECT count(*) FROM hipaa_audit.cosignatures WHERE checkpoint_id = $cp2"),
		'63', '63 co-signatures are accepted');
	is($node->safe_psql('postgres', "SELECT ok::int || status FROM hipaa_audit.verify_checkpoint("
			  . "hipaa_audit.checkpoint_note($cp2), hipaa_audit.verifier_key())"),
		'1ok', 'and the note with 64 signature lines verifies');
	($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT hipaa_audit.cosign($cp2, " . lit($last_line) . ')');
	like($err, qr/ERROR:  54000: checkpoint $cp2 has too many co-signatures/, 'a 64th is refused (54000)');
}

$node->stop;
done_testing();
