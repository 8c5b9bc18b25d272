# Witnessing (docs/merkle.md, "Witnessing"): checkpoints submitted by
# tools/hipaa_audit_witness to a C2SP tlog-witness that follows the spec
# (test/go/witness.go: it persists its state, checks the log's signature
# and the consistency proof, and refuses a rollback), the cosignature/v1
# lines it returns stored with cosign(), and demanded by
# verify_checkpoint(), verify_proof() and hipaa_audit_verify.  Then what a
# witness is for: after the DBA rewrites history and recomputes the tree,
# the witness refuses (422) and the quorum fails; after a restore to before
# the last witnessed checkpoint (a base backup started as the database),
# the next submission is refused (409, then 422 or "the witness has seen
# more").
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run qw(run start);
use HTTP::Tiny;
use Time::HiRes qw(sleep);
use HaTest;
use HaNote;

$ENV{PGCLIENTENCODING} = 'UTF8';

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = "$tmp/server.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $key);
chmod 0600, $key;

my $node = ha_node('witness',
	init => { allows_streaming => 1, extra => [ '--encoding=UTF8', '--locale=C' ] },
	conf => "log_statement = none\n"
	  . "hipaa_audit.signing_key_file = '$key'\n"
	  . "hipaa_audit.signer_name = 'audit.example.org'\n");

sub sql
{
	my ($sql, %o) = @_;
	my $n = delete $o{node} // $node;
	return $n->safe_psql('postgres', $sql, %o);
}

sub text_of
{
	my ($sql, %o) = @_;
	return pack('H*', sql("SELECT encode(convert_to(($sql), 'UTF8'), 'hex')", %o));
}

sub put_file
{
	my ($name, $text) = @_;
	open my $fh, '>', $name or die "$name: $!";
	print $fh $text;
	close $fh;
	return $name;
}

# ------------------------------------------------------- the test witness
my $gosrc = ($ENV{TESTDIR} // '.') . '/test/go/witness.go';
my $witness_bin = "$tmp/witness";
{
	local $ENV{GO111MODULE} = 'off';
	local $ENV{GOPATH} = '/usr/share/gocode';
	local $ENV{GOCACHE} = "$tmp/gocache";
	local $ENV{HOME} = $tmp;
	my ($o, $e) = ('', '');
	ok(run([ 'go', 'build', '-o', $witness_bin, $gosrc ], '>', \$o, '2>', \$e), 'the test witness builds')
	  or diag($e);
}

sql(q{CREATE TABLE access_log (id int, patient text, who text);
      SELECT hipaa_audit.protect('access_log', '6 years', 2);
      INSERT INTO access_log SELECT g, 'p' || g, 'dr_a' FROM generate_series(1, 200) g});
my $vkey = sql('SELECT hipaa_audit.verifier_key()');
my $origin = (split /\n/, sql(q{SELECT hipaa_audit.checkpoint('access_log')}))[0];
like($origin, qr/\Ahipaa_audit\/\d+\/[0-9a-f-]{36}\z/, 'the log\'s origin');

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $url = "http://127.0.0.1:$port";
my $wh;
sub start_witness
{
	$wh = start([ $witness_bin, '-listen', "127.0.0.1:$port", '-state', "$tmp/wstate",
			'-key', "$tmp/wseed", '-name', 'witness.example', '-origin', $origin, '-log', $vkey,
			'-vkey-out', "$tmp/wvkey" ], '>>', "$tmp/wlog", '2>>', "$tmp/wlog");
	for (1 .. 100)
	{
		last if HTTP::Tiny->new(timeout => 1)->get("$url/")->{status} != 599;
		sleep(0.1);
	}
}
sub stop_witness { $wh->kill_kill; $wh->finish; }
start_witness();
my $wkey = do { local $/; open my $fh, '<', "$tmp/wvkey" or die; <$fh> };
chomp $wkey;
like($wkey, qr/\Awitness\.example\+[0-9a-f]{8}\+B[A-P]/, 'the witness\'s verifier key: a cosignature/v1 key (type 0x04)');

# The client, as a member of hipaa_audit_admin would run it.
sub submit
{
	my (%o) = @_;
	my $n = $o{node} // $node;
	my ($out, $err) = ('', '');
	run([ 'hipaa_audit_witness', '--dbname', $n->connstr('postgres'), '--table', $o{table} // 'access_log',
			'--url', $url, '--witness', 'witness.example' ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out . $err);
}
my $cosigs = q{SELECT count(*) FROM hipaa_audit.cosignatures};

# Usage errors of the client: exit 2, nothing sent.
for my $bad ([ [ '--table', 'access_log' ], qr/usage: hipaa_audit_witness/ ],
	[ [ '--table', 'access_log', '--url', 'ftp://127.0.0.1/', '--witness', 'w' ], qr/must start with http/ ],
	[ [ '--table', 'access_log', '--url', $url, '--witness', 'w', '--timeout', '0' ], qr/--timeout must be 1 to 3600/ ])
{
	my ($o, $e) = ('', '');
	run([ 'hipaa_audit_witness', '--dbname', $node->connstr('postgres'), @{ $bad->[0] } ], '>', \$o, '2>', \$e);
	is($? >> 8, 2, 'hipaa_audit_witness ' . join(' ', @{ $bad->[0] }) . ': exit 2');
	like($e, $bad->[1], '... saying why');
}

# ------------------------------------------------------- co-signed, stored
my ($rc, $out) = submit();
is($rc, 1, 'before the witness key is trusted, its co-signature is not stored (exit 1)');
like($out, qr/does not verify against a trusted key/, '... cosign() says why') or diag($out);
is(sql($cosigs), '0', '... nothing stored');
sql("SELECT hipaa_audit.trust_key('$wkey')");
# The witness co-signed the first request already (its state is at 200):
# with no co-signature on record, the client asks from 0, gets 409 and 200,
# and asks again from there.
($rc, $out) = submit();
is($rc, 0, 'a checkpoint co-signed by the witness and stored (exit 0)') or diag($out);
like($out, qr/checkpoint \d+ co-signed by witness\.example/, '... the client says so');
is(sql($cosigs), '1', '... one co-signature stored');
my $id1 = sql(q{SELECT max(id) FROM hipaa_audit.checkpoints});
# The witness's line, with the padding bits of its base64 set: it decodes to
# the same signature, but is not canonical base64, which other verifiers
# reject; it must not be stored (an attack round found it was).
{
	my $line = sql("SELECT line FROM hipaa_audit.cosignatures WHERE checkpoint_id = $id1");
	my $abc = join('', 'A' .. 'Z', 'a' .. 'z', '0' .. '9', '+', '/');
	(my $bent = $line) =~ s/([A-Za-z0-9+\/])(==\n?)\z/substr($abc, index($abc, $1) + 1, 1) . $2/e;
	isnt($bent, $line, 'a co-signature line with its padding bits set');
	my ($brc, $bout, $berr) = $node->psql('postgres', "SELECT hipaa_audit.cosign($id1, " . HaNote::lit($bent) . ')');
	like($berr, qr/invalid signature line/, '... cosign() refuses it: not canonical base64');
}
my $note1 = text_of("SELECT hipaa_audit.checkpoint_note($id1)");
like($note1, qr/\n\x{e2}\x{80}\x{94} witness\.example \S+\n\z/, 'checkpoint_note() carries the witness\'s line');
is(sql("SELECT ok::text || ':' || status || ':' || array_to_string(signers, ',') FROM hipaa_audit.verify_checkpoint("
	  . HaNote::lit($note1) . ", ARRAY['$vkey', '$wkey'], 2)"),
	'true:ok:audit.example.org,witness.example', 'verify_checkpoint() with the quorum of log and witness: ok');

# A row's proof carries the co-signature: checked in SQL and offline.
my ($c, $s, $h) = split /\|/, sql(q{SELECT audit_chain, audit_seq, encode(audit_hash, 'hex') FROM access_log WHERE id = 17});
my $proof = text_of("SELECT hipaa_audit.prove_row('access_log', $c, $s)");
is(sql("SELECT ok::text || ':' || status FROM hipaa_audit.verify_proof(" . HaNote::lit($proof)
	  . ", '\\x$h', ARRAY['$vkey', '$wkey'], 2)"), 'true:ok', 'verify_proof() with the witness in the quorum');
put_file("$tmp/proof", $proof);
my ($vo, $ve) = ('', '');
run([ 'hipaa_audit_verify', "$tmp/proof", '--key', $vkey, '--witness', $wkey, '--audit-hash', $h ], '>', \$vo, '2>', \$ve);
is($? >> 8, 0, 'hipaa_audit_verify --witness: verified') or diag("$vo$ve");
like($vo, qr/signed by: audit\.example\.org \(log\) witness\.example/, '... by the log and the witness');

# The tree grows; the next submission is from the size the witness co-signed.
sql(q{INSERT INTO access_log SELECT g, 'p' || g, 'dr_b' FROM generate_series(201, 300) g;
      SELECT hipaa_audit.checkpoint('access_log')});
($rc, $out) = submit();
is($rc, 0, 'the next checkpoint is co-signed') or diag($out);
like($out, qr/from tree size 200/, '... from the size the witness co-signed before');

# Someone else (a monitor) submits a newer checkpoint: the witness moves on
# without our record.  The client's first request gets 409 and the
# witness's size, and succeeds from there.
sql(q{INSERT INTO access_log SELECT g, 'p' || g, 'dr_c' FROM generate_series(301, 350) g;
      SELECT hipaa_audit.checkpoint('access_log')});
my $body = text_of(q{SELECT body FROM hipaa_audit.witness_request('access_log', 'witness.example')});
like($body, qr/\Aold 300\n(?:[A-Za-z0-9+\/]{43}=\n)+\n[^\n]+\n350\n/, 'witness_request(): old size, proof, empty line, checkpoint');
my $r = HTTP::Tiny->new->post("$url/add-checkpoint", { content => $body });
is($r->{status}, 200, 'a monitor\'s submission is co-signed (the witness is now at 350)');
$r = HTTP::Tiny->new->post("$url/add-checkpoint", { content => $body =~ s/\Aold 300/old 0/r });
is($r->{status}, 409, 'a request from a stale size: 409');
is($r->{headers}{'content-type'}, 'text/x.tlog.size', '... text/x.tlog.size');
is($r->{content}, "350\n", '... with the witness\'s size');
sql(q{INSERT INTO access_log SELECT g, 'p' || g, 'dr_d' FROM generate_series(351, 360) g;
      SELECT hipaa_audit.checkpoint('access_log')});
($rc, $out) = submit();
is($rc, 0, 'the client, stale by one checkpoint, retries from the witness\'s size') or diag($out);
like($out, qr/last co-signed a tree of 350 leaves \(409\); asking again from there/, '... and says so');
like($out, qr/co-signed by witness\.example \(from tree size 350\)/, '... from 350');

# The witness persists its state: restarted, it still refuses a rollback.
stop_witness();
start_witness();
$r = HTTP::Tiny->new->post("$url/add-checkpoint", { content => $body });
is($r->{status}, 409, 'the restarted witness remembers its size: the older checkpoint is refused (409)');
is($r->{content}, "360\n", '... it is at 360');

# ------------------------------------------------------------- a base backup
# The database as it is now, before more witnessed history (below).
$node->backup('before');
my $witnessed_before = 360;

sql(q{INSERT INTO access_log SELECT g, 'p' || g, 'dr_e' FROM generate_series(361, 400) g;
      SELECT hipaa_audit.checkpoint('access_log')});
($rc, $out) = submit();
is($rc, 0, 'checkpoint of 400 co-signed') or diag($out);

# ------------------------------------ the DBA rewrites history, recomputes
# With the library not loaded, a superuser changes a row's stored hash,
# removes the stored tree, the checkpoints and co-signatures of the table
# (everything that would contradict them), and signs a new history with
# the key the server can read.
my $uuid = sql(q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 'access_log'::regclass});
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
sql(qq{ALTER TABLE access_log DISABLE TRIGGER ALL;
       UPDATE access_log SET who = 'nobody', audit_hash = sha256(audit_hash) WHERE id = 5;
       ALTER TABLE access_log ENABLE ALWAYS TRIGGER hipaa_audit_chain,
         ENABLE ALWAYS TRIGGER hipaa_audit_guard_row, ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;
       DELETE FROM hipaa_audit.merkle_tiles WHERE table_uuid = '$uuid';
       DELETE FROM hipaa_audit.merkle_ranges WHERE table_uuid = '$uuid';
       DELETE FROM hipaa_audit.cosignatures WHERE checkpoint_id IN (SELECT id FROM hipaa_audit.checkpoints WHERE table_uuid = '$uuid');
       DELETE FROM hipaa_audit.checkpoints WHERE table_uuid = '$uuid'});
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
sql(q{INSERT INTO access_log SELECT g, 'p' || g, 'dr_f' FROM generate_series(401, 410) g});
my $forged = sql(q{SELECT hipaa_audit.checkpoint('access_log')});
like($forged, qr/\A[^\n]+\n410\n/, 'the rewritten history gets a signed checkpoint of 410 leaves (the key is the server\'s)');
($rc, $out) = submit();
is($rc, 1, 'the witness refuses the rewritten tree (exit 1)');
like($out, qr/409\).*REFUSED: the witness rejects the consistency proof from 400 leaves \(422\)/s,
	'... 409 (it holds 400 leaves), then 422: the consistency proof from 400 does not verify') or diag($out);
like(do { local $/; open my $fh, '<', "$tmp/wlog" or die; <$fh> }, qr/ 422 the consistency proof does not verify/,
	'... the witness logged the refusal');
is(sql("SELECT ok::text || ':' || status FROM hipaa_audit.verify_checkpoint(hipaa_audit.checkpoint_note("
	  . "(SELECT max(id) FROM hipaa_audit.checkpoints)), ARRAY['$vkey', '$wkey'], 2)"), 'false:quorum_not_met',
	'verify_checkpoint() demanding the witness: quorum_not_met');
is(sql(qq{SELECT count(*) FROM hipaa_audit.cosignatures s JOIN hipaa_audit.checkpoints c ON c.id = s.checkpoint_id
          WHERE c.table_uuid = '$uuid'}), '0', 'no co-signature for the rewritten history');

# ----------------------------------------- a restore to before the witness
# The base backup taken at 360 leaves, started as the database: the same
# cluster, so the same origin, without the checkpoint of 400 the witness
# co-signed.
my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init_from_backup($node, 'before');
$restored->start;
is(sql(q{SELECT count(*) FROM access_log}, node => $restored), '360', 'restored to before the last witnessed checkpoint');
($rc, $out) = submit(node => $restored);
is($rc, 1, 'the restored database\'s checkpoint is refused (exit 1)');
like($out, qr/409\).*the witness has seen a tree of 400 leaves of table public\.access_log, more than its latest checkpoint has \(360\)/s,
	'... 409 (the witness holds 400), and the database cannot extend what it no longer has')
  or diag($out);
sql(q{INSERT INTO access_log SELECT g, 'p' || g, 'dr_g' FROM generate_series(361, 420) g;
      SELECT hipaa_audit.checkpoint('access_log')}, node => $restored);
($rc, $out) = submit(node => $restored);
is($rc, 1, 'with new rows past 400 leaves, still refused (exit 1)');
like($out, qr/REFUSED: the witness rejects the consistency proof from 400 leaves \(422\)/,
	'... 422: its tree is not an extension of the one the witness co-signed') or diag($out);
$restored->stop;

stop_witness();
done_testing();
