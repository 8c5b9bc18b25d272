# The signing path against RFC 8032's Ed25519 test vectors: the private key
# of test 1, 2 and 3 in a PKCS#8 file gives the RFC's public key in
# verifier_key(), and checkpoint() signs exactly as an independent
# implementation (the openssl command line) does: Ed25519 is deterministic,
# so the signatures must be byte-identical.
use strict;
use warnings;
use MIME::Base64 qw(encode_base64 decode_base64);
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

# RFC 8032, section 7.1: TEST 1, TEST 2, TEST 3 (secret key, public key).
my @vectors = (
	[ '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
	  'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a' ],
	[ '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
	  '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c' ],
	[ 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
	  'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025' ],
);

my $dir = PostgreSQL::Test::Utils::tempdir;
chmod 0700, $dir;
my $node = ha_node('rfc8032', conf => "include_if_exists = '$dir/key.conf'\n");
$node->safe_psql('postgres', q{
	CREATE TABLE t (id int); SELECT hipaa_audit.protect('t'); INSERT INTO t VALUES (1), (2);
});

my $i = 0;
foreach my $v (@vectors)
{
	my ($seed, $pub) = @$v;
	$i++;
	# PKCS#8 for Ed25519: a fixed 16-byte header, then the 32-byte seed.
	my $der = pack('H*', '302e020100300506032b657004220420' . $seed);
	my $pem = "-----BEGIN PRIVATE KEY-----\n" . encode_base64($der) . "-----END PRIVATE KEY-----\n";
	open(my $fh, '>', "$dir/key$i.pem") or die;
	print $fh $pem;
	close $fh;
	chmod 0600, "$dir/key$i.pem";
	open($fh, '>', "$dir/key.conf") or die;
	print $fh "hipaa_audit.signing_key_file = '$dir/key$i.pem'\nhipaa_audit.signer_name = 'rfc8032.test$i'\n";
	close $fh;
	$node->reload;
	$node->poll_query_until('postgres',
		"SELECT current_setting('hipaa_audit.signer_name') = 'rfc8032.test$i'") or die;

	my $vkey = $node->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');
	my ($keydata) = $vkey =~ /^[^+]+\+[0-9a-f]{8}\+(.*)$/;
	is(unpack('H*', decode_base64($keydata)), '01' . $pub,
		"TEST $i: verifier_key() carries the RFC 8032 public key");

	my $note = $node->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('t')});
	my ($body, $line) = $note =~ /\A(.*?\n)\n(.*)\z/s;
	my ($sigb64) = $line =~ /^\xe2\x80\x94 \S+ (\S+)$/m;
	my $ours = substr(decode_base64($sigb64), 4);
	open($fh, '>:raw', "$dir/body.txt") or die;
	print $fh $body;
	close $fh;
	system('openssl', 'pkeyutl', '-sign', '-inkey', "$dir/key$i.pem", '-rawin',
		'-in', "$dir/body.txt", '-out', "$dir/theirs.bin") == 0 or die 'openssl sign failed';
	is(unpack('H*', $ours), unpack('H*', slurp_file("$dir/theirs.bin")),
		"TEST $i: checkpoint() signs exactly as openssl does with the RFC key");
	is($node->safe_psql('postgres',
			"SELECT status FROM hipaa_audit.verify_checkpoint(\$n\$$note\$n\$, '$vkey')"),
		'ok', "TEST $i: and the note verifies");
}

$node->stop;
done_testing();
