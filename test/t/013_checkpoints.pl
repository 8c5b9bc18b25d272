# Signed checkpoints: the signing-key settings and their failure modes,
# checkpoint() and its permissions, interoperability of the notes with a
# verifier that is not the extension (openssl and Digest::SHA), notes made
# outside the extension, malformed input to verify_checkpoint(), the
# detection of tail truncation and of rewritten-and-rehashed history, and
# the insert-only, hash-chained hipaa_audit.checkpoints table.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run;
use Digest::SHA qw(sha256);
use Digest::MD5 qw(md5_hex);
use MIME::Base64 qw(encode_base64 decode_base64);
use File::Copy qw(copy);
use HaTest;
use HaNote;
use IndependentVerifier qw(parse_copy_binary verify type_info_sql);

$ENV{PGCLIENTENCODING} = 'UTF8';


my $node = ha_node('ckpt',
	init => { extra => [ '--encoding=UTF8', '--locale=C' ] });
my $datadir = $node->data_dir;
$node->append_conf('postgresql.conf', "include_if_exists = 'ckpt.conf'\n");
$node->reload;

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $client_output = '';          # everything any client saw

# ------------------------------------------------------------------ helpers

# Point the settings at a key (and name) through an included config file,
# reload, and wait until new sessions see it.  Neither value goes through
# a logged statement.
sub set_key
{
	my ($path, $name) = @_;
	$name //= 'hipaa_audit';
	write_file("$datadir/ckpt.conf",
		"hipaa_audit.signing_key_file = '$path'\nhipaa_audit.signer_name = '$name'\n");
	$node->reload;
	my $md5 = md5_hex($path);
	$node->poll_query_until('postgres',
		"SELECT md5(current_setting('hipaa_audit.signing_key_file')) = '$md5' "
		  . "AND current_setting('hipaa_audit.signer_name') = '$name'")
	  or die "settings not reloaded";
}

sub sql
{
	my ($sql, %o) = @_;
	my $n = delete $o{node} // $node;
	my $out = $n->safe_psql('postgres', $sql, %o);
	$client_output .= $out;
	return $out;
}

# Run SQL expected to fail; returns stderr with SQLSTATEs (VERBOSITY verbose).
sub sql_err
{
	my ($sql, %o) = @_;
	my $n = delete $o{node} // $node;
	my ($rc, $out, $err) =
	  $n->psql('postgres', "\\set VERBOSITY verbose\n$sql", %o);
	$client_output .= $out . $err;
	return $rc == 0 ? "(no error) $out" : $err;
}

sub ncheckpoints
{
	return sql('SELECT count(*) FROM hipaa_audit.checkpoints');
}

# checkpoint() of a table: the note as bytes.
sub checkpoint_note
{
	my ($tbl, %o) = @_;
	return pack('H*',
		sql("SELECT encode(convert_to(hipaa_audit.checkpoint('$tbl'), 'UTF8'), 'hex')", %o));
}

# verify_checkpoint(note, key) -> "ok|status|tbl"; detail in list context.
sub vc
{
	my ($note, $key, %o) = @_;
	my $h = unpack('H*', $note);
	my $r = sql(
		"SELECT ok, status, coalesce(tbl::text, ''), coalesce(detail, '') "
		  . "FROM hipaa_audit.verify_checkpoint(convert_from('\\x$h'::bytea, 'UTF8'), "
		  . lit($key) . ")", %o);
	my ($ok, $status, $tbl, $detail) = split /\|/, $r, 4;
	return wantarray ? ("$ok|$status|$tbl", $detail) : "$ok|$status|$tbl";
}

sub status_of
{
	my ($v) = @_;
	return (split /\|/, $v)[1];
}

sub problems
{
	my ($table) = @_;
	return sql("SELECT string_agg(chain || ':' || seq || ':' || kind, ' ' ORDER BY chain, seq, kind) "
		  . "FROM hipaa_audit.verify_problems('$table')");
}

# ------------------------------------------------------------------- keys

my $server_key = "$keydir/server.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $server_key);
chmod 0600, $server_key;
my $other_key = "$keydir/other.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $other_key);
chmod 0600, $other_key;
my $server_pub = raw_pub($server_key);
my $other_pub  = raw_pub($other_key);

sql(q{
	CREATE ROLE alice LOGIN;
	GRANT CREATE ON SCHEMA public TO alice;
	CREATE TABLE t1 (id int, note text);
	SELECT hipaa_audit.protect('t1', chains => 2);
	INSERT INTO t1 SELECT g, 'row ' || g FROM generate_series(1, 10) g;
	CREATE TABLE plain (id int);
});

# ---------------------------------------------------------------------
# 1. Key configuration and its failure modes.
# ---------------------------------------------------------------------
my $n0 = ncheckpoints();
is($n0, '0', 'no checkpoints stored at first');

like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}),
	qr/ERROR:  55000: no signing key is configured/,
	'no key configured: checkpoint() fails with 55000');
like(sql_err(q{SELECT hipaa_audit.verifier_key()}),
	qr/ERROR:  55000: no signing key is configured/,
	'no key configured: verifier_key() fails with 55000');

mkdir "$keydir/adir" or die;
chmod 0700, "$keydir/adir";
copy($server_key, "$keydir/group.pem") or die;
chmod 0640, "$keydir/group.pem";
copy($server_key, "$datadir/inside.pem") or die;
chmod 0600, "$datadir/inside.pem";
symlink("$datadir/inside.pem", "$keydir/link_inside.pem") or die;
openssl_ok('genpkey', '-algorithm', 'rsa', '-pkeyopt', 'rsa_keygen_bits:1024',
	'-out', "$keydir/rsa.pem");
chmod 0600, "$keydir/rsa.pem";
write_file("$keydir/garbage.pem", "this is not a key\n" x 5, 0600);

# The client learns what is wrong, never the superuser-only path; the
# server log gets the path (errdetail_log).
my @bad_keys = (
	[ "$keydir/missing.pem", qr/ERROR:  F0000: could not open the signing key file: No such file/, 'a missing file' ],
	[ "$keydir/adir", qr/ERROR:  F0000: the signing key file is not a regular file/, 'a directory' ],
	[ "$keydir/group.pem", qr/ERROR:  F0000: the signing key file is accessible by group or others\nDETAIL:  Its mode is 0640\./, 'a group-readable file (0640)' ],
	[ "$datadir/inside.pem", qr/ERROR:  F0000: the signing key file is inside the data directory/, 'a file inside the data directory' ],
	[ "$keydir/link_inside.pem", qr/ERROR:  F0000: the signing key file is inside the data directory/, 'a symlink to a file inside the data directory' ],
	[ "$keydir/rsa.pem", qr/ERROR:  F0000: the signing key file holds a key of the wrong type/, 'an RSA key' ],
	[ "$keydir/garbage.pem", qr/ERROR:  F0000: the signing key file does not hold a PEM private key/, 'a garbage file' ],
);
foreach my $b (@bad_keys)
{
	my ($path, $re, $what) = @$b;
	set_key($path);
	like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}), $re, "$what: checkpoint() refused");
	like(sql_err(q{SELECT hipaa_audit.verifier_key()}), $re, "$what: verifier_key() refused");
	unlike(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}), qr/\Q$path\E/,
		"$what: the error does not show the key path");
	is(ncheckpoints(), $n0, "$what: nothing stored");
}

# The signer name: the GUC check hook, and SET of a SIGHUP setting.
set_key($server_key);
foreach my $bad ('a b', 'a+b', "tab\there", '')
{
	my $l = lit($bad);
	like(sql_err("ALTER SYSTEM SET hipaa_audit.signer_name = $l"),
		qr/ERROR:  22023: invalid value for parameter "hipaa_audit\.signer_name"/,
		"ALTER SYSTEM refuses signer_name " . ($bad eq '' ? 'empty' : "'$bad'"));
}
like(sql_err(q{SET hipaa_audit.signer_name = 'a b'}),
	qr/ERROR:  (55P02|22023): /, 'SET of signer_name is refused');
like(sql_err(q{SET hipaa_audit.signing_key_file = '/tmp/x.pem'}),
	qr/ERROR:  55P02: parameter "hipaa_audit\.signing_key_file" cannot be changed now/,
	'SET of signing_key_file is refused (reload only)');
ok(!-e "$datadir/postgresql.auto.conf"
	  || read_raw("$datadir/postgresql.auto.conf") !~ /signer_name/,
	'nothing was written to postgresql.auto.conf');
is(sql('SHOW hipaa_audit.signer_name'), 'hipaa_audit', 'signer_name unchanged');

# A bad name in the config file is ignored on reload.
write_file("$datadir/ckpt.conf",
	"hipaa_audit.signing_key_file = '$server_key'\nhipaa_audit.signer_name = 'bad name'\n");
my $log_offset = -s $node->logfile;
$node->reload;
$node->wait_for_log(qr/invalid value for parameter "hipaa_audit\.signer_name": "bad name"/, $log_offset);
is(sql('SHOW hipaa_audit.signer_name'), 'hipaa_audit',
	'a bad signer_name in the config file is not taken on reload');
set_key($server_key);

foreach my $g (qw(hipaa_audit.signing_key_file hipaa_audit.signer_name))
{
	like(sql_err("SHOW $g", extra_params => [ '-U', 'alice' ]),
		qr/ERROR:  42501: (?:must be superuser or have privileges of pg_read_all_settings to examine|permission denied to examine) "\Q$g\E"/,
		"SHOW $g by a non-superuser is refused");
	like(sql_err("SELECT current_setting('$g')", extra_params => [ '-U', 'alice' ]),
		qr/ERROR:  42501: /, "current_setting('$g') by a non-superuser is refused");
}
unlike(sql(q{SELECT coalesce(setting, '<null>') FROM pg_settings WHERE name = 'hipaa_audit.signing_key_file'},
		extra_params => [ '-U', 'alice' ]),
	qr/\Q$keydir\E/, 'pg_settings does not show the key path to a non-superuser');

my $vkey = sql('SELECT hipaa_audit.verifier_key()');
is($vkey, verifier_key_of('hipaa_audit', $server_pub),
	'verifier_key() is <name>+<key id>+<base64(0x01 || public key)>, as computed from the key file by openssl');

# ---------------------------------------------------------------------
# 2. checkpoint(): what it refuses.
# ---------------------------------------------------------------------
like(sql_err(q{SELECT hipaa_audit.checkpoint('plain')}),
	qr/ERROR:  55000: table (public\.)?plain is not protected/,
	'checkpoint() of an unprotected table: 55000');
like(sql_err(q{SELECT hipaa_audit.checkpoint(NULL)}),
	qr/ERROR:  22004: argument of hipaa_audit\.checkpoint must not be null/,
	'checkpoint(NULL): 22004');
like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}, extra_params => [ '-U', 'alice' ]),
	qr/ERROR:  42501: permission denied to checkpoint table (public\.)?t1/,
	'checkpoint() by a role that neither owns the table nor is an admin: 42501');
is(ncheckpoints(), $n0, 'nothing stored by the refused calls');

# The owner may checkpoint its own table.
sql(q{CREATE TABLE alice_log (id int)}, extra_params => [ '-U', 'alice' ]);
sql(q{SELECT hipaa_audit.protect('alice_log', chains => 1); INSERT INTO alice_log VALUES (1)},
	extra_params => [ '-U', 'alice' ]);
my $alice_note = checkpoint_note('alice_log', extra_params => [ '-U', 'alice' ]);
like($alice_note, qr/\nrows 1\nchain 0 1 [0-9a-f]{64}\n\n/, 'the table owner may checkpoint it');
is(ncheckpoints(), $n0 + 1, 'and it is stored');
is(vc($alice_note, $vkey), 't|ok|alice_log', 'and it verifies');

# ---------------------------------------------------------------------
# 3. Interop: the note checked by openssl and Digest::SHA alone.
# ---------------------------------------------------------------------
my $note1 = checkpoint_note('t1');
my ($body1, $sigs1) = split_note($note1);
my ($sysid) = sql('SELECT system_identifier FROM pg_control_system()');
my ($uuid1) = sql(q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 't1'::regclass});
my @bl = split /\n/, $body1;
is($bl[0], "hipaa_audit/$sysid/$uuid1", 'origin line: system identifier and table uuid');
is($bl[1], '10', 'second line: the tree size (a tlog-checkpoint)');
like($bl[2], qr/\A[A-Za-z0-9+\/]{43}=\z/, 'third line: the base64 root');
is($bl[3], 'checkpoint v2', 'fourth line');
like($bl[4], qr/\Atable (public\.)?t1\z/, 'table line');
is($bl[5], 'database postgres', 'database line');
like($bl[6], qr/\Atime \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00\z/, 'time line, ISO in UTC');
is($bl[7], 'retention 6 years', 'retention line');
is($bl[8], 'chains 2', 'chains line');
is($bl[9], 'rows 10', 'rows line');
my $heads = sql(q{SELECT string_agg('chain ' || audit_chain || ' ' || audit_seq || ' ' || encode(audit_hash, 'hex'), E'\n' ORDER BY audit_chain)
	FROM t1 WHERE (audit_chain, audit_seq) IN (SELECT audit_chain, max(audit_seq) FROM t1 GROUP BY 1)});
is(join("\n", @bl[ 10 .. $#bl ]), $heads, 'chain lines: the head of each non-empty chain');
is(scalar @$sigs1, 1, 'one signature line');
is($sigs1->[0][0], 'hipaa_audit', 'signed by the signer name');
is(length $sigs1->[0][1], 68, 'signature: 4-byte key id and 64-byte Ed25519 signature');

$vkey =~ /\A([^+]+)\+([0-9a-f]{8})\+(\S+)\z/ or die "verifier key: $vkey";
my ($vname, $vid, $vblob) = ($1, $2, decode_base64($3));
is(length $vblob, 33, 'verifier key holds 33 bytes');
is(substr($vblob, 0, 1), "\x01", 'algorithm byte 0x01 (Ed25519)');
my $vpub = substr($vblob, 1);
is(unpack('H*', key_id($vname, $vpub)), $vid, 'key id recomputed with Digest::SHA matches the verifier key');
is(unpack('H*', substr($sigs1->[0][1], 0, 4)), $vid, 'and the key id in the signature line');

write_file("$keydir/pub.pem",
	"-----BEGIN PUBLIC KEY-----\n"
	  . encode_base64(pack('H*', '302a300506032b6570032100') . $vpub)
	  . "-----END PUBLIC KEY-----\n");
write_file("$keydir/body.txt", $body1);
write_file("$keydir/sig.bin", substr($sigs1->[0][1], 4));
my ($vok, $vout, $verr) = run_openssl('pkeyutl', '-verify', '-pubin', '-inkey', "$keydir/pub.pem",
	'-rawin', '-in', "$keydir/body.txt", '-sigfile', "$keydir/sig.bin");
ok($vok, 'openssl pkeyutl -verify accepts the signature over the body') or diag("$vout $verr");
my $flipped = $body1;
$flipped =~ s/rows 10/rows 11/ or die;
write_file("$keydir/body_bad.txt", $flipped);
($vok) = run_openssl('pkeyutl', '-verify', '-pubin', '-inkey', "$keydir/pub.pem",
	'-rawin', '-in', "$keydir/body_bad.txt", '-sigfile', "$keydir/sig.bin");
ok(!$vok, 'openssl rejects it for a body with one byte changed');
is(vc($note1, $vkey), 't|ok|t1', 'verify_checkpoint() accepts the genuine note');

# ---------------------------------------------------------------------
# 4. A note signed outside the extension, by a witness.
# ---------------------------------------------------------------------
openssl_ok('pkeyutl', '-sign', '-inkey', $other_key, '-rawin',
	'-in', "$keydir/body.txt", '-out', "$keydir/wsig.bin");
my $wsig = read_raw("$keydir/wsig.bin");
is(length $wsig, 64, 'openssl made a 64-byte signature');
my $wname = 'witness.example';
my $wline = $EMDASH . $wname . ' ' . encode_base64(key_id($wname, $other_pub) . $wsig, '') . "\n";
my $wnote = $body1 . "\n" . $wline;
my $wkey  = verifier_key_of($wname, $other_pub);
is(vc($wnote, $wkey), 't|ok|t1', 'a note signed by openssl with a witness key verifies with the witness verifier key');
is(status_of(vc($wnote, $vkey)), 'unknown_key', 'and with the server key: unknown_key');
my $cosigned = $note1 . $wline;
is(vc($cosigned, $vkey), 't|ok|t1', 'a co-signed note verifies with the server key');
is(vc($cosigned, $wkey), 't|ok|t1', 'and with the witness key');

# Bodies with lines a checkpoint does not have, signed by the witness: the
# signature is good, the body is malformed_note, and the detail says why.
sub witness_note
{
	my ($body) = @_;
	write_file("$keydir/wbody.txt", $body);
	openssl_ok('pkeyutl', '-sign', '-inkey', $other_key, '-rawin',
		'-in', "$keydir/wbody.txt", '-out', "$keydir/wbody.sig");
	return $body . "\n" . $EMDASH . $wname . ' '
	  . encode_base64(key_id($wname, $other_pub) . read_raw("$keydir/wbody.sig"), '') . "\n";
}
is(vc(witness_note($body1), $wkey), 't|ok|t1', 'the genuine body, signed by the witness, verifies');
my $zeros = '0' x 64;
my %bad_bodies = (
	'an unknown line'            => [ $body1 . "comment hello\n", qr/line 12 has the keyword "comment"/ ],
	'a repeated table line'      => [ ($body1 =~ s/\n(table [^\n]*\n)/\n$1$1/r), qr/line 6 repeats the table line/ ],
	'a line without a value'     => [ $body1 . "chain \n", qr/line 12 has an empty value/ ],
	'a line without a keyword'   => [ $body1 . "chain\n", qr/line 12 is not "<keyword> <value>"/ ],
	'no database line'           => [ ($body1 =~ s/\ndatabase [^\n]*\n/\n/r), qr/no database line/ ],
	'an uppercase hash'          => [ ($body1 =~ s/(\nchain \d+ \d+ )([0-9a-f]{64})/$1\U$2/r), qr/line 11 \(chain\): its hash/ ],
	'two spaces in a chain line' => [ ($body1 =~ s/\nchain (\d+) /\nchain $1  /r), qr/line 11 \(chain\): it is not/ ],
	'a chain beyond chains'      => [ $body1 . "chain 7 1 $zeros\n", qr/line 12 \(chain\): its chain number is out of range/ ],
	'chain lines out of order'   => [ $body1 . "chain 0 1 $zeros\n", qr/line 12 \(chain\): chain lines are not in increasing/ ],
	'a position with a sign'     => [ ($body1 =~ s/\nchain (\d+) (\d+)/\nchain $1 +$2/r), qr/line 11 \(chain\): its positions/ ],
	'a time in another style'    => [ ($body1 =~ s/\ntime [^\n]*/\ntime Mon Nov 23 05:16:58 2026 UTC/r), qr/line 7 \(time\)/ ],
	'a receipt kind line'        => [ ($body1 =~ s/\ncheckpoint v2\n/\npurge v1\n/r), qr/line 4 is not "checkpoint v2"/ ],
);
foreach my $what (sort keys %bad_bodies)
{
	my ($r, $d) = vc(witness_note($bad_bodies{$what}[0]), $wkey);
	is($r, 'f|malformed_note|', "a signed body with $what: malformed_note");
	like($d, $bad_bodies{$what}[1], "  and the detail names the line") or diag($d);
}

# ---------------------------------------------------------------------
# 5. Malformed and wrong input.
# ---------------------------------------------------------------------
my $siglen_before = ncheckpoints();
my $sigline1 = substr($note1, length($body1) + 1);
my $sigb64 = ($sigline1 =~ /\A\Q$EMDASH\Ehipaa_audit (\S+)\n\z/)[0] or die;

my %bad_notes = (
	'missing blank line'        => $body1 . $sigline1,
	'bad base64'                => $body1 . "\n" . $EMDASH . "hipaa_audit !!!notbase64!!!\n",
	'extra space inside the signature line' => $body1 . "\n" . $EMDASH . "hipaa_audit  $sigb64\n",
	'trailing space in the signature line'  => $body1 . "\n" . $EMDASH . "hipaa_audit $sigb64 \n",
	'two spaces after the dash' => $body1 . "\n" . $EMDASH . " hipaa_audit $sigb64\n",
	'a hyphen for the em dash'  => $body1 . "\n- hipaa_audit $sigb64\n",
	'CRLF line endings'         => ($note1 =~ s/\n/\r\n/gr),
	'no final newline'          => substr($note1, 0, -1),
	'empty note'                => '',
);
foreach my $what (sort keys %bad_notes)
{
	my ($r, $d) = vc($bad_notes{$what}, $vkey);
	is($r, 'f|malformed_note|', "$what: malformed_note") or diag($d);
}
like(sql_err("SELECT * FROM hipaa_audit.verify_checkpoint("
	  . lit(($body1 . ("x" x 100 . "\n") x 2700 . "\n" . $sigline1)) . ", " . lit($vkey) . ")"),
	qr/ERROR:  54000: note is too long/, 'a note longer than 256 kB: 54000');
my ($r_len) = vc($body1 . "\n" . $EMDASH . 'hipaa_audit '
	  . encode_base64(substr($sigs1->[0][1], 0, 4) . substr($sigs1->[0][1], 4, 60), '') . "\n", $vkey);
like($r_len, qr/\Af\|(bad_signature|malformed_note)\|/, 'a 60-byte signature for the key is refused');
my ($r_len2) = vc($body1 . "\n" . $EMDASH . 'hipaa_audit '
	  . encode_base64($sigs1->[0][1] . "\0\0\0\0", '') . "\n", $vkey);
like($r_len2, qr/\Af\|(bad_signature|malformed_note)\|/, 'a 68-byte signature for the key is refused');

my $pubb64 = encode_base64("\x01" . $server_pub, '');
my $badid = sprintf('%08x', hex($vid) ^ 1);
my %bad_keys = (
	'a wrong key id'              => "hipaa_audit+$badid+$pubb64",
	'an uppercase key id'         => 'hipaa_audit+' . uc($vid) . "+$pubb64",
	'a short key id'              => 'hipaa_audit+' . substr($vid, 0, 7) . "+$pubb64",
	'a 31-byte key'               => 'hipaa_audit+' . unpack('H*', key_id('hipaa_audit', substr($server_pub, 0, 31)))
	  . '+' . encode_base64("\x01" . substr($server_pub, 0, 31), ''),
	'a 33-byte key'               => "hipaa_audit+$vid+" . encode_base64("\x01" . $server_pub . "\0", ''),
	'a wrong algorithm byte'      => "hipaa_audit+$vid+" . encode_base64("\x02" . $server_pub, ''),
	'bad base64'                  => "hipaa_audit+$vid+!!!!",
	'no key part'                 => "hipaa_audit+$vid",
	'no name'                     => "+$vid+$pubb64",
	'only a name'                 => 'hipaa_audit',
	'an empty key'                => '',
	'an extra part'               => "hipaa_audit+$vid+$pubb64+x",
);
# A key ID of digits only has no uppercase form: that case cannot be written.
delete $bad_keys{'an uppercase key id'} if uc($vid) eq $vid;
foreach my $what (sort keys %bad_keys)
{
	my ($r, $d) = vc($note1, $bad_keys{$what});
	is($r, 'f|malformed_key|', "key with $what: malformed_key") or diag($d);
}

is(status_of(vc($note1, verifier_key_of('hipaa_audit', $other_pub))), 'unknown_key',
	'a different key under the same name: unknown_key');
is(status_of(vc($note1, $wkey)), 'unknown_key', 'the witness key on the server note: unknown_key');

my $fb = $note1;
$fb =~ s/\nrows 10\n/\nrows 11\n/ or die;
is(status_of(vc($fb, $vkey)), 'bad_signature', 'a flipped body byte: bad_signature');

# Another protected table's note, edited to name t1.
sql(q{CREATE TABLE t2 (id int); SELECT hipaa_audit.protect('t2', chains => 1);
	INSERT INTO t2 SELECT generate_series(1, 3)});
my $note2 = checkpoint_note('t2');
is(vc($note2, $vkey), 't|ok|t2', 'the note of t2 verifies');
my ($uuid2) = sql(q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 't2'::regclass});
(my $note2e = $note2) =~ s/\Q$uuid2\E/$uuid1/ or die;
is(status_of(vc($note2e, $vkey)), 'bad_signature', 'the note of t2 edited to name t1: bad_signature');

# A note of an empty table that is then dropped.
sql(q{CREATE TABLE t_gone (id int); SELECT hipaa_audit.protect('t_gone', chains => 4)});
my $note_gone = checkpoint_note('t_gone');
like($note_gone, qr/\nchains 4\nrows 0\n\n/, 'the note of an empty table has no chain lines');
is(vc($note_gone, $vkey), 't|ok|t_gone', 'and verifies');
sql('DROP TABLE t_gone');
is(status_of(vc($note_gone, $vkey)), 'unknown_table',
	'the genuine note of a table that is gone: unknown_table');
is(problems('t1'), '', 't1 still verifies');

# A note from another cluster, signed with the same key.
my $node2 = ha_node('ckpt_other');
$node2->append_conf('postgresql.conf',
	"hipaa_audit.signing_key_file = '$server_key'\n");
$node2->reload;
$node2->poll_query_until('postgres',
	"SELECT md5(current_setting('hipaa_audit.signing_key_file')) = '" . md5_hex($server_key) . "'")
  or die;
sql(q{CREATE TABLE t1 (id int, note text); SELECT hipaa_audit.protect('t1', chains => 2);
	INSERT INTO t1 VALUES (1, 'elsewhere')}, node => $node2);
my $note_other = checkpoint_note('t1', node => $node2);
is(vc($note_other, $vkey, node => $node2), 't|ok|t1', 'the other cluster verifies its own note');
my ($r_oc, $d_oc) = vc($note_other, $vkey);
is($r_oc, 'f|other_cluster|', 'a note from another cluster: other_cluster') or diag($d_oc);
$node2->stop;
is(ncheckpoints(), $siglen_before + 2, 'verify_checkpoint() stores nothing');

# ---------------------------------------------------------------------
# 7. Rows added after a checkpoint; an empty table.
# ---------------------------------------------------------------------
sql(q{CREATE TABLE t7 (id int); SELECT hipaa_audit.protect('t7', chains => 3)});
my $note7a = checkpoint_note('t7');
like($note7a, qr/\nrows 0\n\n/, 'checkpoint of an empty table');
is(vc($note7a, $vkey), 't|ok|t7', 'verifies');
sql(q{INSERT INTO t7 SELECT generate_series(1, 5)});
is(vc($note7a, $vkey), 't|ok|t7', 'the empty-table note still verifies after inserts');
my $note7b = checkpoint_note('t7');
like($note7b, qr/\nrows 5\n/, 'second checkpoint counts 5 rows');
sql(q{INSERT INTO t7 SELECT generate_series(6, 12)});
is(vc($note7b, $vkey), 't|ok|t7', 'an old note stays ok after more inserts');
like(checkpoint_note('t7'), qr/\nrows 12\n/, 'third checkpoint counts 12 rows');
is(problems('t7'), '', 'verify() finds nothing wrong with t7');

# ---------------------------------------------------------------------
# 6. Detection: tail truncation, rewritten and rehashed history.
# ---------------------------------------------------------------------
sql(q{
	CREATE TABLE t6a (id int, note text);
	SELECT hipaa_audit.protect('t6a', chains => 1);
	INSERT INTO t6a SELECT g, 'a' || g FROM generate_series(1, 10) g;
	CREATE TABLE t6b (id int, note text);
	SELECT hipaa_audit.protect('t6b', chains => 1);
	INSERT INTO t6b SELECT g, 'b' || g FROM generate_series(1, 10) g;
});
my $note6a = checkpoint_note('t6a');
my $note6b = checkpoint_note('t6b');
is(vc($note6a, $vkey), 't|ok|t6a', 't6a note verifies before tampering');
is(vc($note6b, $vkey), 't|ok|t6b', 't6b note verifies before tampering');

# A table whose name holds a blank line and a signature line's start: its
# note has the name escaped on one line (docs/checkpoints.md), decodes to
# the name, verifies, and verify() checks the stored checkpoint.
my $t6c_name = "t6c\n\n$EMDASH" . 'x\\';
(my $t6c = '"' . $t6c_name . '"') =~ s/'/''/g;
sql(qq{
	CREATE TABLE $t6c (id int);
	SELECT hipaa_audit.protect('$t6c', chains => 1);
	INSERT INTO $t6c SELECT generate_series(1, 10);
});
my $note6c = checkpoint_note($t6c);
my ($body6c) = split_note($note6c);
my @bl6c = split /\n/, $body6c;
is($bl6c[4], 'table public."t6c\x0a\x0a' . substr($EMDASH, 0, 3) . ' x\x5c"', 'the name is escaped on one line');
(my $decoded6c = substr($bl6c[4], 6)) =~ s/\\x([0-9a-f]{2})/chr(hex($1))/ge;
is($decoded6c, "public.$t6c", 'and decodes, by the documented rule, to the name');
is(vc($note6c, $vkey), "t|ok|$t6c", 't6c note verifies before tampering');
is(problems($t6c), '', 'verify() finds nothing wrong with t6c');
my ($uuid6c) = sql(qq{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = '$t6c'::regclass});
# The same note as a version without escaping would have signed it.
(my $legacy6c = $note6c) =~ s/\Q$bl6c[4]\E/table public."$t6c_name"/ or die;

# Rehash t6b outside the extension: row 4 gets a new value, rows 4..10 new
# hashes and links.
sub psql_raw
{
	my ($cmd) = @_;
	my ($in, $out, $err) = ('', '', '');
	IPC::Run::run(
		[ $node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-c', $cmd ],
		'<', \$in, '>', \$out, '2>', \$err)
	  or die "psql failed: $cmd\n$err";
	return $out;
}
my %type_info = map { split /\|/ } split /\n/, sql(type_info_sql());
my @att = map { [ split /\|/, $_, -1 ] } split /\n/, sql(q{
	SELECT attname, atttypid FROM pg_attribute
	 WHERE attrelid = 't6b'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum});
my @cols = map { $_->[0] } @att;
my %types = map { $_->[0] => $_->[1] } @att;
my %ix = map { $cols[$_] => $_ } 0 .. $#cols;
my ($uuid6b) = sql(q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 't6b'::regclass});
my $rows6b = parse_copy_binary(psql_raw('\copy (SELECT ' . join(', ', @cols)
	  . ' FROM t6b ORDER BY audit_seq) TO STDOUT WITH (FORMAT binary)'))->{rows};
my %vargs = (columns => \@cols, types => \%types, type_info => \%type_info,
	table_uuid => $uuid6b, chains => 1);
is(scalar @{ verify(%vargs, rows => $rows6b)->{problems} }, 0,
	'the independent verifier agrees with t6b before tampering');
my $seq_of = sub { unpack('q>', $_[0][ $ix{audit_seq} ]) };
$rows6b->[3][ $ix{note} ] = 'rewritten history';
my @updates;
for my $i (3 .. 9)
{
	$rows6b->[$i][ $ix{audit_prev_hash} ] = $rows6b->[ $i - 1 ][ $ix{audit_hash} ];
	my $res = verify(%vargs, rows => [ $rows6b->[$i] ]);
	my $s = $seq_of->($rows6b->[$i]);
	$rows6b->[$i][ $ix{audit_hash} ] = pack('H*', $res->{hashes}{"0/$s"});
	push @updates, sprintf(
		q{UPDATE t6b SET note = %s, audit_prev_hash = '\x%s', audit_hash = '\x%s' WHERE audit_seq = %d;},
		lit($rows6b->[$i][ $ix{note} ]),
		unpack('H*', $rows6b->[$i][ $ix{audit_prev_hash} ]),
		unpack('H*', $rows6b->[$i][ $ix{audit_hash} ]), $s);
}
is(scalar @{ verify(%vargs, rows => $rows6b)->{problems} }, 0,
	'the rehashed rows form a consistent chain (independent verifier)');

$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
sql(q{
	ALTER TABLE t6a DISABLE TRIGGER ALL;
	DELETE FROM t6a WHERE audit_seq > 7;
	ALTER TABLE t6a ENABLE ALWAYS TRIGGER hipaa_audit_chain,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;
	ALTER TABLE t6b DISABLE TRIGGER ALL;
} . join("\n", @updates) . qq{
	ALTER TABLE t6b ENABLE ALWAYS TRIGGER hipaa_audit_chain,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;
	ALTER TABLE $t6c DISABLE TRIGGER ALL;
	DELETE FROM $t6c WHERE audit_seq > 7;
	ALTER TABLE $t6c ENABLE ALWAYS TRIGGER hipaa_audit_chain,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;
	INSERT INTO hipaa_audit.checkpoints (table_uuid, relid, created_at, note, prev_hash, hash)
	SELECT '$uuid6c', '$t6c'::regclass, now(), n.note, p.h,
	       sha256('\\x68697061615f61756469742f636865636b706f696e742f763100'::bytea
	              || p.h || convert_to(n.note, 'UTF8'))
	  FROM (SELECT convert_from('\\x} . unpack('H*', $legacy6c) . q{'::bytea, 'UTF8') AS note) n,
	       (SELECT hash AS h FROM hipaa_audit.checkpoints ORDER BY id DESC LIMIT 1) p;
});
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;

is(sql(q{SELECT max(audit_seq) FROM t6a}), '7', '(rows 8..10 of t6a are gone)');
is(sql(q{SELECT note FROM t6b WHERE audit_seq = 4}), 'rewritten history', '(row 4 of t6b was rewritten)');

my ($r6a, $d6a) = vc($note6a, $vkey);
is($r6a, 'f|rows_missing|t6a', 'tail truncation: verify_checkpoint() says rows_missing') or diag($d6a);
like($d6a, qr/chain 0 has no row at position 10/, 'and names the position');
is(problems('t6a'), '0:10:checkpoint_rows_missing',
	'verify() reports checkpoint_rows_missing at exactly (0, 10), and nothing else');
is(sql(q{SELECT ok FROM hipaa_audit.verify('t6a')}), 'f', 'verify() says t6a is not intact');

my $rows6b_after = parse_copy_binary(psql_raw('\copy (SELECT ' . join(', ', @cols)
	  . ' FROM t6b ORDER BY audit_seq) TO STDOUT WITH (FORMAT binary)'))->{rows};
is(scalar @{ verify(%vargs, rows => $rows6b_after)->{problems} }, 0,
	'the rewritten t6b is a consistent chain for the independent verifier');
my ($r6b, $d6b) = vc($note6b, $vkey);
is($r6b, 'f|table_rewritten|t6b', 'rewritten history: verify_checkpoint() says table_rewritten') or diag($d6b);
is(problems('t6b'), '0:10:checkpoint_mismatch',
	'verify() reports no hash or link problem, only checkpoint_mismatch at (0, 10)');
is(sql(q{SELECT ok FROM hipaa_audit.verify('t6b')}), 'f', 'verify() says t6b is not intact');
is(vc($note1, $vkey), 't|ok|t1', 'the untouched table still verifies against its note');

my ($r6c, $d6c) = vc($note6c, $vkey);
is($r6c, "f|rows_missing|$t6c", 'a name with a blank line: verify_checkpoint() says rows_missing') or diag($d6c);
is(problems($t6c), '-1:-1:checkpoint_malformed 0:10:checkpoint_rows_missing',
	'verify() checks its stored checkpoint (rows_missing at (0, 10)), and reports the unescaped one it cannot read');
like(sql(qq{SELECT detail FROM hipaa_audit.verify_problems('$t6c') WHERE kind = 'checkpoint_malformed'}),
	qr/\Astored checkpoint \d+ cannot be read: the note has no database line/, 'naming the stored checkpoint and its line');

# ---------------------------------------------------------------------
# 8. hipaa_audit.checkpoints: insert-only, hash-chained.
# ---------------------------------------------------------------------
my $nc = ncheckpoints();
foreach my $stmt (
	q{UPDATE hipaa_audit.checkpoints SET note = 'x'},
	q{DELETE FROM hipaa_audit.checkpoints},
	q{TRUNCATE hipaa_audit.checkpoints},
	q{INSERT INTO hipaa_audit.checkpoints (table_uuid, created_at, note, prev_hash, hash)
	  VALUES (gen_random_uuid(), now(), 'forged', '\x00', '\x00')})
{
	my ($verb) = $stmt =~ /\A(\w+)/;
	like(sql_err($stmt), qr/ERROR:  42501: /, "$verb of hipaa_audit.checkpoints by a superuser: 42501");
}
is(ncheckpoints(), $nc, 'the checkpoints table is unchanged');

my @cp = map { [ split /\|/ ] } split /\n/, sql(q{
	SELECT id, encode(prev_hash, 'hex'), encode(hash, 'hex'), encode(convert_to(note, 'UTF8'), 'hex')
	  FROM hipaa_audit.checkpoints ORDER BY id});
my $prev = '00' x 32;
my ($links_ok, $hashes_ok) = (1, 1);
foreach my $c (@cp)
{
	my ($id, $ph, $h, $nh) = @$c;
	if ($ph ne $prev) { $links_ok = 0; diag("checkpoint $id: prev_hash $ph, expected $prev"); }
	my $want = unpack('H*', sha256("hipaa_audit/checkpoint/v1\0" . pack('H*', $ph) . pack('H*', $nh)));
	if ($h ne $want) { $hashes_ok = 0; diag("checkpoint $id: hash $h, recomputed $want"); }
	$prev = $h;
}
is(scalar @cp, 11, 'every successful checkpoint() was stored, and the one added while the library was out');
ok($links_ok, 'each stored checkpoint links to the hash of the one before (the first to 32 zero bytes)');
ok($hashes_ok, 'each stored hash is SHA-256(prefix || 0x00 || prev_hash || note), recomputed');
is(sql(q{SELECT encode(convert_to(note, 'UTF8'), 'hex') FROM hipaa_audit.checkpoints
	WHERE relid = 't1'::regclass ORDER BY id LIMIT 1}), unpack('H*', $note1),
	'the stored note is the one checkpoint() returned');

# ---------------------------------------------------------------------
# Secrets: the key bytes never reach a client or the log; the path of the
# real key never reaches the log.
# ---------------------------------------------------------------------
$node->stop;
my $log = read_raw($node->logfile) . read_raw($node2->logfile);
foreach my $k ([ 'server', $server_key ], [ 'other', $other_key ])
{
	my ($label, $path) = @$k;
	my $pem = read_raw($path);
	my @b64 = grep { !/^-----/ && length } split /\n/, $pem;
	my $der = decode_base64(join '', @b64);
	my $priv = substr($der, -32);
	my $leak = 0;
	foreach my $needle (@b64, unpack('H*', $priv), encode_base64($priv, ''))
	{
		$leak++ if index($log, $needle) >= 0 || index($client_output, $needle) >= 0;
	}
	is($leak, 0, "$label key: no private key bytes in the server log or client output");
}
# PostgreSQL itself logs "parameter ... changed to ..." when a reload changes
# a setting, superuser-only or not; apart from that line, nothing names the
# configured key's path (checkpoint(), verifier_key(), verify_checkpoint()
# and the refusals above never log it).
my @path_lines = grep { index($_, $server_key) >= 0 } split /\n/, $log;
is(join("\n", grep { !/LOG:  parameter "hipaa_audit\.signing_key_file" changed to / } @path_lines), '',
	'the path of the configured key appears in the server log only in PostgreSQL\'s own reload message');

done_testing();
