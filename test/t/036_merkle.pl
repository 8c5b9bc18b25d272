# The Merkle tree and its proofs, checked by an implementation that shares
# no code with the extension: Go's golang.org/x/mod/sumdb/tlog and
# sumdb/note (Debian's golang-golang-x-mod-dev), through test/go/tlogcheck.go.
# Rows are written by concurrent pgbench clients into four chains while
# checkpoints are taken; the tree rebuilt in Go from the rows, in the
# order docs/merkle.md gives, must hash to every signed root, and every
# inclusion and consistency proof must pass Go's checks and be exactly
# the proof Go computes.  Then what must fail: tampered proofs, a leaf of
# another table, truncated input (in Go and in verify_proof()); a stored
# tile changed with the library not loaded (verify_checkpoint(),
# prove_row(), checkpoint()); rows removed from a chain's end; purged rows
# stay provable; pg_dump/pg_restore keeps the tree.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run qw(run start finish);
use Time::HiRes qw(sleep);
use HaTest;
use HaNote;

$ENV{PGCLIENTENCODING} = 'UTF8';

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $key = "$tmp/server.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $key);
chmod 0600, $key;

my $node = ha_node('merkle',
	init => { extra => [ '--encoding=UTF8', '--locale=C' ] },
	conf => "log_statement = none\n"
	  . "hipaa_audit.min_retention = '1 second'\n"
	  . "hipaa_audit.signing_key_file = '$key'\n"
	  . "hipaa_audit.signer_name = 'audit.example.org'\n");

sub sql
{
	my ($sql, %o) = @_;
	my $n = delete $o{node} // $node;
	return $n->safe_psql('postgres', $sql, %o);
}

sub sql_err
{
	my ($sql, %o) = @_;
	my $n = delete $o{node} // $node;
	my ($rc, $out, $err) = $n->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	return $rc == 0 ? "(no error) $out" : $err;
}

# The exact text a query returns (safe_psql would strip its last newline).
sub text_of
{
	my ($sql, %o) = @_;
	return pack('H*', sql("SELECT encode(convert_to(($sql), 'UTF8'), 'hex')", %o));
}

sub runs_ok
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', $sql);
	return $rc == 0 ? 'ok' : $err;
}

sub put_file
{
	my ($name, $text) = @_;
	open my $fh, '>', $name or die "$name: $!";
	print $fh $text;
	close $fh;
	return $name;
}

# ------------------------------------------------------------- the checker
my $gosrc = ($ENV{TESTDIR} // '.') . '/test/go/tlogcheck.go';
my $checker = "$tmp/tlogcheck";
{
	local $ENV{GO111MODULE} = 'off';
	local $ENV{GOPATH} = '/usr/share/gocode';
	local $ENV{GOCACHE} = "$tmp/gocache";
	local $ENV{HOME} = $tmp;
	my ($out, $err) = ('', '');
	ok(run([ 'go', 'build', '-o', $checker, $gosrc ], '>', \$out, '2>', \$err),
		'the Go checker builds against Debian\'s golang.org/x/mod') or diag($err);
}

# Run the checker on a script; (exit code, output).
sub check
{
	my ($script) = @_;
	my ($out, $err) = ('', '');
	run([ $checker, put_file("$tmp/script", $script) ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out . $err);
}

my $vkey = sql('SELECT hipaa_audit.verifier_key()');

# ------------------------------------------- concurrent writers, checkpoints
sql(q{
	CREATE TABLE access_log (id bigserial, patient text, who text, action text);
	SELECT hipaa_audit.protect('access_log', '6 years', 4);
	CREATE TABLE other_log (id int, what text);
	SELECT hipaa_audit.protect('other_log', '6 years', 1);
	INSERT INTO other_log SELECT g, 'other ' || g FROM generate_series(1, 10) g;
	SELECT hipaa_audit.checkpoint('other_log');
});
my $bench = put_file("$tmp/insert.sql",
	"INSERT INTO access_log (patient, who, action) VALUES ('p' || (random() * 1000)::int, 'dr_' || :client_id, 'read');\n");
my ($bout, $berr) = ('', '');
my $h = start([ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '4', '-f', $bench, $node->connstr('postgres') ],
	'>', \$bout, '2>', \$berr);
my $taken = 0;
while ($h->pumpable)
{
	sql(q{SELECT hipaa_audit.checkpoint('access_log')});
	$taken++;
	sleep(0.3);
	last if $taken > 30;
}
finish($h);
like($bout, qr/number of transactions actually processed: \d+/, 'pgbench wrote rows with four clients')
  or diag($berr);
sql(q{SELECT hipaa_audit.checkpoint('access_log')});
$taken++;
cmp_ok(sql(q{SELECT count(DISTINCT audit_chain) FROM access_log}), '>=', 2, 'rows are in several chains');

my $uuid = sql(q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 'access_log'::regclass});
my @ids = split /\n/, sql(qq{SELECT id FROM hipaa_audit.checkpoints WHERE table_uuid = '$uuid' ORDER BY id});
is(scalar(@ids), $taken, "$taken checkpoints stored, taken while rows were written");

# The leaves in tree order, from the rows (docs/merkle.md): each range a
# checkpoint appended, positions in order.
my $leaves_sql = qq{
	SELECT string_agg(encode(t.audit_hash, 'hex'), E'\\n' ORDER BY r.first_index + t.audit_seq - r.first_seq)
	  FROM access_log t
	  JOIN hipaa_audit.merkle_ranges r
	    ON r.part_uuid = '$uuid' AND r.chain = t.audit_chain AND t.audit_seq BETWEEN r.first_seq AND r.last_seq};
my @leaves = split /\n/, sql($leaves_sql);
my $size = sql(qq{SELECT split_part(note, E'\\n', 2) FROM hipaa_audit.checkpoints WHERE id = $ids[-1]});
is(scalar(@leaves), $size, "every row up to the last checkpoint is a leaf ($size)");
is(sql(q{SELECT count(*) FROM access_log}), $size, '... and every row is in the tree');
# The order rule, from the ranges: checkpoint by checkpoint, chain by chain.
is(sql(qq{SELECT count(*) FROM (SELECT checkpoint_id, chain, first_index,
            lag(checkpoint_id) OVER w AS pc, lag(chain) OVER w AS pch,
            lag(first_index + last_seq - first_seq + 1) OVER w AS pend
            FROM hipaa_audit.merkle_ranges WHERE table_uuid = '$uuid' WINDOW w AS (ORDER BY first_index)) x
          WHERE pend IS NOT NULL AND (first_index <> pend OR (checkpoint_id = pc AND chain <= pch) OR checkpoint_id < pc)}),
	'0', 'ranges tile the tree without gap, checkpoint by checkpoint, chain by chain');

# ---------------------------------------------------- everything, through Go
my $script = "key $vkey\n" . join('', map { "leaf $_\n" } @leaves);
my %note;
for my $id (@ids)
{
	$note{$id} = put_file("$tmp/cp$id", text_of("SELECT hipaa_audit.checkpoint_note($id)"));
	$script .= "checkpoint $note{$id}\n";
}
my @rows = split /\n/, sql(q{SELECT audit_chain || ' ' || audit_seq || ' ' || encode(audit_hash, 'hex')
                             FROM access_log ORDER BY random() LIMIT 40});
my $proofs_ok = 0;
for my $i (0 .. $#rows)
{
	my ($c, $s, $hh) = split / /, $rows[$i];
	my $proof = text_of("SELECT hipaa_audit.prove_row('access_log', $c, $s)");
	put_file("$tmp/proof$i", $proof);
	$script .= "proof $hh $tmp/proof$i\n";
	$proofs_ok++ if sql("SELECT ok FROM hipaa_audit.verify_proof(" . HaNote::lit($proof)
		  . ", '\\x$hh', ARRAY['$vkey'])") eq 't';
}
is($proofs_ok, scalar(@rows), 'verify_proof() accepts every proof prove_row() gives');
# Proofs against older checkpoints, where the row is in them.
my ($c0, $s0, $h0) = split / /, sql(qq{SELECT t.audit_chain || ' ' || t.audit_seq || ' ' || encode(t.audit_hash, 'hex')
    FROM access_log t JOIN hipaa_audit.merkle_ranges r ON r.part_uuid = '$uuid' AND r.chain = t.audit_chain
     AND t.audit_seq BETWEEN r.first_seq AND r.last_seq ORDER BY r.first_index + t.audit_seq - r.first_seq LIMIT 1});
for my $id (@ids)
{
	next if sql(qq{SELECT split_part(note, E'\\n', 2)::int FROM hipaa_audit.checkpoints WHERE id = $id}) == 0;
	put_file("$tmp/old$id", text_of("SELECT hipaa_audit.prove_row('access_log', $c0, $s0, $id)"));
	$script .= "proof $h0 $tmp/old$id\n";
}
# Consistency: each checkpoint to the next, and the first to the last.
my @pairs = map { [ $ids[$_], $ids[ $_ + 1 ] ] } 0 .. $#ids - 1;
push @pairs, [ $ids[0], $ids[-1] ];
for my $p (@pairs)
{
	my ($a, $b) = @$p;
	put_file("$tmp/cons$a-$b", text_of("SELECT hipaa_audit.prove_consistency('access_log', $a, $b)"));
	$script .= "consistency $note{$a} $note{$b} $tmp/cons$a-$b\n";
}
my ($rc, $out) = check($script);
is($rc, 0, 'Go\'s tlog and note accept every checkpoint, proof and consistency proof') or diag($out);
my $n_ok = () = $out =~ /^ok /mg;
is($n_ok, scalar(@ids) + scalar(@rows) + (grep { -e "$tmp/old$_" } @ids) + scalar(@pairs),
	'... one line per item checked');
like($out, qr/ok proof of leaf \d+ in a tree of $size \(\d+ hashes\)/, '... proofs against the latest tree');

# ------------------------------------------------------ what must not pass
my ($c1, $s1, $h1) = split / /, $rows[0];
my $good = do { local $/; open my $fh, '<', "$tmp/proof0" or die; <$fh> };
my $keyline = "key $vkey\n" . join('', map { "leaf $_\n" } @leaves);
my %bad = (
	'a proof hash changed' => do { (my $t = $good) =~ s/(\nindex \d+\n)(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e; $t },
	'another index' => do { (my $t = $good) =~ s/\nindex (\d+)\n/"\nindex " . ($1 + 1) . "\n"/e; $t },
	'the root changed' => do {
		(my $t = $good) =~ s/\n(\d+)\n([A-Za-z0-9+\/]{43}=)\n/"\n$1\n" . ('A' x 43) . "=\n"/e; $t },
	'truncated' => substr($good, 0, int(length($good) / 2)),
);
for my $what (sort keys %bad)
{
	put_file("$tmp/bad", $bad{$what});
	my ($brc, $bout2) = check($keyline . "proof $h1 $tmp/bad\n");
	is($brc, 1, "Go rejects a proof with $what") or diag($bout2);
	like($bout2, qr/^FAIL /m, '... with a message');
	my $st = sql("SELECT status FROM hipaa_audit.verify_proof(" . HaNote::lit($bad{$what})
		  . ", '\\x$h1', ARRAY['$vkey'])");
	like($st, qr/^(bad_proof|bad_signature|malformed_proof|malformed_note)$/, "verify_proof() rejects it too ($st)");
}
# A leaf of another table: its proof does not prove this table's row.
my $other = text_of(q{SELECT hipaa_audit.prove_row('other_log', 0, 3)});
put_file("$tmp/other", $other);
($rc, $out) = check("key $vkey\n" . join('', map { "leaf $_\n" } @leaves) . "proof $h1 $tmp/other\n");
is($rc, 1, 'Go rejects another table\'s proof offered for this row') or diag($out);
is(sql("SELECT status FROM hipaa_audit.verify_proof(" . HaNote::lit($other) . ", '\\x$h1', ARRAY['$vkey'])"),
	'bad_proof', 'verify_proof(): another table\'s proof for this row is bad_proof');
# A key that did not sign.
my $otherkey = 'audit.example.org+ba7ef4f3+AZnErkKPWRcD9Wml2QyXYXXCk6oH9221aFZ/KKjkPU8H';
($rc, $out) = check("key $otherkey\n" . join('', map { "leaf $_\n" } @leaves) . "proof $h1 $tmp/proof0\n");
is($rc, 1, 'Go rejects the proof under a key that did not sign it') or diag($out);

# --------------------------------------------- the offline checker program
# tools/hipaa_audit_verify, installed next to pg_ctl: exit 0 verified, 1 not
# verified, 2 usage or input; --json.
sub checker
{
	my (@args) = @_;
	my ($o, $e) = ('', '');
	run([ 'hipaa_audit_verify', @args ], '>', \$o, '2>', \$e);
	return ($? >> 8, $o, $e);
}
{
	my ($xrc, $xo, $xe) = checker("$tmp/proof0", '--key', $vkey, '--audit-hash', $h1);
	is($xrc, 0, 'hipaa_audit_verify: a proof from prove_row() verifies (exit 0)') or diag("$xo$xe");
	like($xo, qr/^verified: the row is leaf \d+ of the tree of $size leaves signed for hipaa_audit\/\d+\/$uuid\n/,
		'... naming the leaf, the tree and the origin');
	like($xo, qr/^table: public\.access_log\n/m, '... and the table');
	($xrc, $xo) = checker("$tmp/proof0", '--key', $vkey, '--audit-hash', $h1, '--json');
	like($xo, qr/\A\{"ok": true, "status": "ok", "detail": null, "leaf_index": \d+, "tree_size": $size, /,
		'--json: one object');
	my @cases = (
		[ 'a changed hash', $bad{'a proof hash changed'}, [], 1, qr/bad_proof/ ],
		[ 'another index', $bad{'another index'}, [], 1, qr/bad_proof/ ],
		[ 'a changed root', $bad{'the root changed'}, [], 1, qr/bad_signature/ ],
		[ 'truncated', $bad{'truncated'}, [], 1, qr/malformed_(proof|note)/ ],
		[ 'another table\'s proof', $other, [], 1, qr/bad_proof/ ],
		[ 'a key that did not sign', $good, [ '--key', $otherkey ], 1, qr/unknown_key/ ],
		[ 'a witness that did not sign', $good, [ '--witness', $otherkey ], 1, qr/quorum_not_met/ ],
		[ 'another origin demanded', $good, [ '--origin', 'hipaa_audit/1/00000000-0000-0000-0000-000000000000' ], 1, qr/wrong_origin/ ],
		[ 'a malformed key', $good, [ '--key', 'nokey' ], 1, qr/malformed_key/ ],
	);
	for my $c (@cases)
	{
		my ($what, $text, $extra, $want, $re) = @$c;
		put_file("$tmp/case", $text);
		my %opt = @$extra;
		my @args = ("$tmp/case", '--key', $opt{'--key'} // $vkey, '--audit-hash', $h1);
		push @args, '--witness', $opt{'--witness'} if $opt{'--witness'};
		push @args, '--origin', $opt{'--origin'} if $opt{'--origin'};
		my ($crc, $co, $ce) = checker(@args);
		is($crc, $want, "hipaa_audit_verify: $what: exit $want");
		like($ce, qr/NOT VERIFIED \($re\): \S/, "... with a clear message") or diag($ce);
	}
	my ($urc, $uo, $ue) = checker("$tmp/proof0", '--key', $vkey);
	is($urc, 2, 'no leaf given: usage error (exit 2)');
	like($ue, qr/usage: hipaa_audit_verify/, '... with the usage');
	($urc, $uo, $ue) = checker("$tmp/no such file", '--key', $vkey, '--audit-hash', $h1);
	is($urc, 2, 'an unreadable proof file: exit 2');
	like($ue, qr/could not open/, '... saying so');
}

# ------------------------------------------- tampering with the stored tree
# A tile the root is computed from (height 8: one node per 256 leaves),
# and a leaf tile, which only the proofs of its own rows read.
my $latest = text_of("SELECT hipaa_audit.checkpoint_note($ids[-1])");
sub tile_where
{
	my ($level) = @_;
	return qq{table_uuid = '$uuid' AND level = $level AND idx = 0
		AND width = (SELECT max(width) FROM hipaa_audit.merkle_tiles WHERE table_uuid = '$uuid' AND level = $level AND idx = 0)};
}
my %saved = map { $_ => sql("SELECT encode(hashes, 'hex') FROM hipaa_audit.merkle_tiles WHERE " . tile_where($_)) } (0, 1);
sub unguarded
{
	my ($stmt) = @_;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
	$node->restart;
	sql($stmt);
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
	$node->restart;
}
unguarded("UPDATE hipaa_audit.merkle_tiles SET hashes = overlay(hashes placing '\\xff'::bytea from 1) WHERE " . tile_where(1));
like(sql("SELECT ok::text || ':' || status || ':' || detail FROM hipaa_audit.verify_checkpoint("
	  . HaNote::lit($latest) . ", '$vkey')"),
	qr/^false:table_rewritten:the stored Merkle tree of \d+ leaves does not have the root the checkpoint signed$/,
	'a changed tile: verify_checkpoint() reports table_rewritten');
like(sql_err("SELECT hipaa_audit.prove_row('access_log', $c1, $s1)"),
	qr/XX001: the stored Merkle tree of table public\.access_log does not have the root checkpoint \d+ signed/,
	'... prove_row() refuses to prove from it (XX001)');
like(sql_err(q{SELECT hipaa_audit.checkpoint('access_log')}),
	qr/XX001: the stored Merkle tree of table public\.access_log does not have the root its last checkpoint signed/,
	'... and no checkpoint grows it');
is(sql(qq{SELECT count(*) FROM hipaa_audit.checkpoints WHERE table_uuid = '$uuid'}), scalar(@ids),
	'... nothing was stored');
unguarded("UPDATE hipaa_audit.merkle_tiles SET hashes = '\\x$saved{1}' WHERE " . tile_where(1));
is(sql("SELECT status FROM hipaa_audit.verify_checkpoint(" . HaNote::lit($latest) . ", '$vkey')"), 'ok',
	'the tile put back: verify_checkpoint() is ok again');
# A changed leaf hash: the proof of its neighbour would not verify, so
# prove_row() gives none.
unguarded("UPDATE hipaa_audit.merkle_tiles SET hashes = overlay(hashes placing '\\xff'::bytea from 1) WHERE " . tile_where(0));
my ($n1c, $n1s) = split /\|/, sql(qq{SELECT t.audit_chain, t.audit_seq FROM access_log t JOIN hipaa_audit.merkle_ranges r
    ON r.part_uuid = '$uuid' AND r.chain = t.audit_chain AND t.audit_seq BETWEEN r.first_seq AND r.last_seq
    WHERE r.first_index + t.audit_seq - r.first_seq = 1});
like(sql_err("SELECT hipaa_audit.prove_row('access_log', $n1c, $n1s)"),
	qr/XX001: the stored Merkle tree of table public\.access_log gives no valid proof of leaf 1/,
	'a changed leaf tile: prove_row() of its neighbour refuses (XX001)');
# (verify_checkpoint() reads the root from the tiles above; verify_tree()
# reads every leaf.)
like(sql(q{SELECT ok::text || ':' || problems || ':' || first_problem FROM hipaa_audit.verify_tree('access_log')}),
	qr/^false:3:leaf 0 is not the row at chain \d+, position \d+$/,
	'verify_tree() finds the changed leaf (then the tile above it and the root no longer match)');
unguarded("UPDATE hipaa_audit.merkle_tiles SET hashes = '\\x$saved{0}' WHERE " . tile_where(0));
like(text_of("SELECT hipaa_audit.prove_row('access_log', $n1c, $n1s)"), qr/\Ac2sp\.org\/tlog-proof\@v1\n/,
	'... and proves again once it is put back');
is(sql(q{SELECT ok::text || ':' || problems || ':' || (leaves_compared = tree_size) FROM hipaa_audit.verify_tree('access_log')}),
	'true:0:true', '... and verify_tree() compares every leaf with its row: ok');

# -------------------------------------------- rows removed from a chain's end
sql(q{INSERT INTO other_log VALUES (11, 'late'), (12, 'later')});
unguarded(q{ALTER TABLE other_log DISABLE TRIGGER ALL; DELETE FROM other_log WHERE id >= 9;
            ALTER TABLE other_log ENABLE ALWAYS TRIGGER hipaa_audit_chain,
              ENABLE ALWAYS TRIGGER hipaa_audit_guard_row, ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate});
like(sql_err(q{SELECT hipaa_audit.checkpoint('other_log')}),
	qr/XX001: chain 0 of table public\.other_log ends at position 8, before position 10 which its Merkle tree holds/,
	'rows removed from the end of a chain: the next checkpoint refuses (XX001)');
like(sql(q{SELECT hipaa_audit.prove_row('other_log', 0, 9)}), qr/^c2sp\.org\/tlog-proof\@v1\n/,
	'... and prove_row() still proves a removed row from its leaf');

# ------------------------------------------------ attack round reproductions
# (1) A note stating a tree of more than 2^62 leaves once sent the split
# of the tree into a loop nothing could interrupt (statement_timeout did
# not end it).  Signed here by a key of the caller's own, as an auditor
# could.
use MIME::Base64 qw(encode_base64);
my $akey = "$tmp/attacker.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $akey);
my $apub = raw_pub($akey);
my $avkey = verifier_key_of('atk', $apub);
sub attacker_note
{
	my ($body) = @_;
	HaNote::write_file("$tmp/abody", $body);
	openssl_ok('pkeyutl', '-sign', '-inkey', $akey, '-rawin', '-in', "$tmp/abody", '-out', "$tmp/asig");
	return $body . "\n" . $EMDASH . 'atk ' . encode_base64(key_id('atk', $apub) . read_raw("$tmp/asig"), '') . "\n";
}
my $origin_line = (split /\n/, $latest)[0];
for my $big ('4611686018427387905', '9223372036854775807')
{
	my $hnote = attacker_note("$origin_line\n$big\n" . ('A' x 43) . "=\ncheckpoint v2\ntable public.access_log\n"
		  . "database postgres\ntime 2026-12-04 08:28:57.254792+00\nchains 4\nrows 0\n");
	is(sql("SET statement_timeout = '20s'; SELECT ok::text || ':' || status || ':' || detail FROM hipaa_audit.verify_checkpoint("
		  . HaNote::lit($hnote) . ", '$avkey')"),
		'false:malformed_note:line 2 is not a tree size (decimal digits, no sign or leading zero, at most 2^62)',
		"a note stating a tree of $big leaves: malformed_note at once (it used to hang the backend)");
}
my $edge = attacker_note("$origin_line\n4611686018427387904\n" . ('A' x 43) . "=\ncheckpoint v2\ntable public.access_log\n"
	  . "database postgres\ntime 2026-12-04 08:28:57.254792+00\nchains 4\nrows 0\n");
like(sql("SET statement_timeout = '20s'; SELECT ok::text || ':' || status FROM hipaa_audit.verify_checkpoint("
	  . HaNote::lit($edge) . ", '$avkey')"), qr/^false:(table_rewritten|rows_missing)$/,
	'a note stating 2^62 leaves (the largest allowed): answered, not hung');

# (5) A second signature line of the same key that does not verify fails
# the note, as a verifier that checks every line would.
my ($log_id) = $vkey =~ /\A[^+]+\+([0-9a-f]{8})\+/;
my $twice = $good . $EMDASH . 'audit.example.org ' . encode_base64(pack('H*', $log_id) . ("\0" x 64), '') . "\n";
is(sql("SELECT status FROM hipaa_audit.verify_proof(" . HaNote::lit($twice) . ", '\\x$h1', ARRAY['$vkey'])"),
	'bad_signature', 'a proof with a second, forged line of the log\'s key: bad_signature');
put_file("$tmp/twice", $twice);
my ($trc) = checker("$tmp/twice", '--key', $vkey, '--audit-hash', $h1);
is($trc, 1, '... and hipaa_audit_verify agrees (exit 1)');

# (4) Base64 that decodes but is not canonical (padding bits set) is not
# a signature line anywhere: verify_proof() and the offline checker agree.
# (A 68-byte signature ends in three characters and '=': the third holds
# two padding bits, zero in canonical base64.)
my $b64abc = join('', 'A' .. 'Z', 'a' .. 'z', '0' .. '9', '+', '/');
(my $noncanon = $good) =~ s/(\n\x{e2}\x{80}\x{94} audit\.example\.org [A-Za-z0-9+\/]*)([A-Za-z0-9+\/])(=\n)/$1 . substr($b64abc, index($b64abc, $2) + 1, 1) . $3/e;
isnt($noncanon, $good, 'a signature line with padding bits set');
is(sql("SELECT status FROM hipaa_audit.verify_proof(" . HaNote::lit($noncanon) . ", '\\x$h1', ARRAY['$vkey'])"),
	'malformed_note', '... verify_proof(): malformed_note');

# (6) The log's own key given again as a witness does not count.
my ($drc, $dout, $derr) = checker("$tmp/proof0", '--key', $vkey, '--witness', $vkey, '--quorum', '1', '--audit-hash', $h1);
is($drc, 1, 'hipaa_audit_verify: the log key given as a witness does not meet a quorum of 1');
like($derr, qr/quorum_not_met/, '... quorum_not_met');

# (3) The purge race: a row stamped before the cutoff but committed while
# purge_expired() waited (after its checkpoint read the heads) is not a
# leaf: it must stay, for the next checkpoint, not be purged unseen.
sql(q{CREATE TABLE race (id int); SELECT hipaa_audit.protect('race', '1 second', 2);
      CREATE TABLE race_other (id int); SELECT hipaa_audit.protect('race_other', '6 years', 1);
      INSERT INTO race VALUES (0); SELECT hipaa_audit.checkpoint('race');
      INSERT INTO race_other VALUES (1)});
my $bs1 = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
my $bs2 = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
my $bs3 = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
$bs1->query_safe('BEGIN; INSERT INTO race VALUES (1)');
# A committed row not yet in the tree: the purge must checkpoint first.
sql(q{INSERT INTO race VALUES (2)});
sleep(1.2);
$bs3->query_safe(q{BEGIN; SELECT hipaa_audit.checkpoint('race_other')});
my $p2 = $bs2->query_safe('SELECT pg_backend_pid()');
ha_start_blocking($bs2, 'purge', q{SELECT sum(rows_removed) FROM hipaa_audit.purge_expired('race')});
ok($node->poll_query_until('postgres', "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $p2"),
	'the purge waits (for the checkpoints table, held by another checkpoint)');
$bs1->query_safe('COMMIT');
$bs3->query_safe('COMMIT');
my ($removed, $pstate) = ha_result_of($bs2, 'purge');
is($pstate, '00000', 'the purge ends');
is($removed, '2', '... removing only the rows that were leaves');
is(sql(q{SELECT string_agg(id::text, ',') FROM race}), '1', '... the row committed meanwhile stays');
like(sql(q{SELECT hipaa_audit.checkpoint('race')}), qr/\A[^\n]+\n3\n/, 'the next checkpoint makes it leaf 2 (tree of 3)');
is(sql(q{SELECT ok::text || ':' || leaves_compared FROM hipaa_audit.verify_tree('race')}), 'true:1',
	'verify_tree(): the purged leaf as stored, the row compared');
$_->quit for ($bs1, $bs2, $bs3);

# ---------------------------------------------------- purged rows stay leaves
sql(q{
	CREATE TABLE short_log (id int, what text);
	SELECT hipaa_audit.protect('short_log', '1 second', 1);
	INSERT INTO short_log SELECT g, 'short ' || g FROM generate_series(1, 6) g;
});
my $sh = sql(q{SELECT encode(audit_hash, 'hex') FROM short_log WHERE audit_seq = 2});
sleep(1.5);
# No checkpoint was taken: purge_expired() takes one first, so the rows it
# removes are leaves.
is(sql(q{SELECT sum(rows_removed) FROM hipaa_audit.purge_expired('short_log')}), '6',
	'purge_expired() removes the expired rows (no checkpoint taken before)');
my $sp = text_of(q{SELECT hipaa_audit.prove_row('short_log', 0, 2)});
is(sql("SELECT ok::text || ':' || status FROM hipaa_audit.verify_proof(" . HaNote::lit($sp)
	  . ", '\\x$sh', ARRAY['$vkey'])"), 'true:ok',
	'a purged row is still proved by the tree, from the copy of its hash');
sql(q{INSERT INTO short_log VALUES (7, 'after')});
like(sql(q{SELECT hipaa_audit.checkpoint('short_log')}), qr/\n7\n[A-Za-z0-9+\/]{43}=\ncheckpoint v2\n/,
	'after the purge the tree grows on: 7 leaves');
is(sql(q{SELECT ok::text || ':' || tree_size || ':' || leaves_compared FROM hipaa_audit.verify_tree('short_log')}),
	'true:7:1', 'verify_tree(): the 6 purged leaves as stored, the 1 row compared');

# ---------------------------------- a note answers for the rows it records
# verify_checkpoint() counts a problem only in a chain the note records, at
# or before the recorded position: a row changed after the checkpoint is
# verify()'s finding, not the note's.
sql(q{CREATE TABLE nt (id int, what text);
      SELECT hipaa_audit.protect('nt', '6 years', 1);
      INSERT INTO nt SELECT g, 'row ' || g FROM generate_series(1, 10) g});
my $ntnote = text_of(q{SELECT hipaa_audit.checkpoint('nt')});
sql(q{INSERT INTO nt SELECT g, 'row ' || g FROM generate_series(11, 12) g});
unguarded(q{ALTER TABLE nt DISABLE TRIGGER ALL; UPDATE nt SET what = 'changed later' WHERE id = 12;
            ALTER TABLE nt ENABLE ALWAYS TRIGGER hipaa_audit_chain,
              ENABLE ALWAYS TRIGGER hipaa_audit_guard_row, ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate});
is(sql(q{SELECT ok::text || ':' || problems FROM hipaa_audit.verify('nt')}), 'false:1', 'a row after the checkpoint changed: verify() finds it');
is(sql(q{SELECT ok::text || ':' || problems FROM hipaa_audit.verify_tree('nt')}), 'true:0',
	'... and verify_tree() not: the row is not in the tree yet');
is(sql("SELECT ok::text || ':' || status FROM hipaa_audit.verify_checkpoint(" . HaNote::lit($ntnote) . ", '$vkey')"),
	'true:ok', '... verify_checkpoint() of the earlier note: ok (not a row it records)');
unguarded(q{ALTER TABLE nt DISABLE TRIGGER ALL; UPDATE nt SET what = 'changed before' WHERE id = 5;
            ALTER TABLE nt ENABLE ALWAYS TRIGGER hipaa_audit_chain,
              ENABLE ALWAYS TRIGGER hipaa_audit_guard_row, ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate});
like(sql("SELECT ok::text || ':' || status || ':' || detail FROM hipaa_audit.verify_checkpoint(" . HaNote::lit($ntnote) . ", '$vkey')"),
	qr/^false:table_rewritten:the recorded heads are present, but verify\(\) reports 1 problem\(s\) in the chains up to them$/,
	'a row the note records changed: table_rewritten');
is(sql(q{SELECT ok::text || ':' || problems FROM hipaa_audit.verify_tree('nt')}), 'true:0',
	'... verify_tree() still ok: the change kept the stored audit_hash, and the leaf is of it (verify() finds the row)');
# A range rewritten to name a table that is not here: its leaves cannot be
# compared, and verify_tree() says why instead of taking them as stored.
unguarded(q{UPDATE hipaa_audit.merkle_ranges SET part_uuid = '00000000-0000-4000-8000-0000000000ff'
            WHERE part_uuid = (SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 'nt'::regclass)});
like(sql(q{SELECT ok::text || ':' || first_problem FROM hipaa_audit.verify_tree('nt')}),
	qr/^false:leaves from 0 are rows of table identity 00000000-0000-4000-8000-0000000000ff, which is neither protected here nor recorded as retired$/,
	'a range naming a table that is not here: verify_tree() reports it');
unguarded(q{UPDATE hipaa_audit.merkle_ranges SET part_uuid = (SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 'nt'::regclass)
            WHERE part_uuid = '00000000-0000-4000-8000-0000000000ff'});
# A verifier key read from a file ends in a newline: still the key.
is(sql("SELECT status FROM hipaa_audit.verify_checkpoint(" . HaNote::lit($ntnote) . ", E'$vkey\\n')"), 'table_rewritten',
	'a verifier key with a trailing newline is read as the key (the note then fails on its rows, as above)');

# ------------------------------------------------------- partitioned tables
# One tree for the partitioned table: each checkpoint appends partition by
# partition (in order of identity), chain by chain.  A partition made
# between checkpoints joins; an expired partition dropped leaves its rows
# as leaves (the drop takes a checkpoint first).
sql(q{
	CREATE TABLE pt (id int, at date NOT NULL, who text) PARTITION BY RANGE (at);
	CREATE TABLE pt_a PARTITION OF pt FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
	CREATE TABLE pt_b PARTITION OF pt FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
	SELECT hipaa_audit.protect('pt', '1 second', 2);
	INSERT INTO pt SELECT g, '2026-01-01'::date + (g % 50), 'w' FROM generate_series(1, 300) g;
	SELECT hipaa_audit.checkpoint('pt');
	INSERT INTO pt SELECT g, '2026-01-01'::date + (g % 50), 'w' FROM generate_series(301, 400) g;
	CREATE TABLE pt_c PARTITION OF pt FOR VALUES FROM ('2026-03-01') TO ('2026-04-01');
	INSERT INTO pt SELECT g, '2026-03-02', 'c' FROM generate_series(401, 420) g;
	SELECT hipaa_audit.checkpoint('pt');
});
my $puuid = sql(q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 'pt'::regclass});
my @pids = split /\n/, sql(qq{SELECT id FROM hipaa_audit.checkpoints WHERE table_uuid = '$puuid' ORDER BY id});
is(scalar(@pids), 2, 'two checkpoints of the partitioned table');
my $pleaves_sql = qq{
	SELECT string_agg(encode(t.audit_hash, 'hex'), E'\\n' ORDER BY r.first_index + t.audit_seq - r.first_seq)
	  FROM pt t JOIN hipaa_audit.registry g ON g.relid = t.tableoid
	  JOIN hipaa_audit.merkle_ranges r ON r.table_uuid = '$puuid' AND r.part_uuid = g.table_uuid
	   AND r.chain = t.audit_chain AND t.audit_seq BETWEEN r.first_seq AND r.last_seq};
my @pleaves = split /\n/, sql($pleaves_sql);
is(scalar(@pleaves), 420, 'every row of every partition is a leaf of the partitioned table\'s tree');
is(sql(qq{SELECT count(*) FROM (SELECT checkpoint_id, part_uuid::text AS p, chain,
            lag(checkpoint_id) OVER w AS pc, lag(part_uuid::text) OVER w AS pp, lag(chain) OVER w AS pch
            FROM hipaa_audit.merkle_ranges WHERE table_uuid = '$puuid' WINDOW w AS (ORDER BY first_index)) x
          WHERE pc = checkpoint_id AND (p < pp OR (p = pp AND chain <= pch))}),
	'0', 'within a checkpoint: partitions in order of identity, then chains in order');
like(sql(qq{SELECT note FROM hipaa_audit.checkpoints WHERE id = $pids[-1]}),
	qr/\A[^\n]+\n420\n[A-Za-z0-9+\/]{43}=\ncheckpoint v2\n.*\nrows 420\n(partition [0-9a-f-]{36} [0-9a-f]{64}\n){3}\n/s,
	'the partitioned table\'s note: a tlog-checkpoint of 420 leaves binding its three partitions');
like(sql(q{SELECT note FROM hipaa_audit.checkpoints c JOIN hipaa_audit.registry r USING (table_uuid)
           WHERE r.relid = 'pt_c'::regclass ORDER BY id DESC LIMIT 1}),
	qr/\A[^\n]+\ncheckpoint v1\n/, '... a partition\'s own note records its heads only (version 1)');
my $pscript = "key $vkey\n" . join('', map { "leaf $_\n" } @pleaves);
my %pnote;
for my $id (@pids)
{
	$pnote{$id} = put_file("$tmp/pcp$id", text_of("SELECT hipaa_audit.checkpoint_note($id)"));
	$pscript .= "checkpoint $pnote{$id}\n";
}
my $pi = 0;
for my $part (qw(pt_a pt_b pt_c))
{
	my ($pc, $ps, $ph) = split / /, sql(qq{SELECT audit_chain || ' ' || audit_seq || ' ' || encode(audit_hash, 'hex')
	    FROM $part ORDER BY audit_seq DESC LIMIT 1});
	put_file("$tmp/pproof$pi", text_of("SELECT hipaa_audit.prove_row('$part', $pc, $ps)"));
	$pscript .= "proof $ph $tmp/pproof$pi\n";
	$pi++;
}
put_file("$tmp/pcons", text_of("SELECT hipaa_audit.prove_consistency('pt', $pids[0], $pids[1])"));
$pscript .= "consistency $pnote{$pids[0]} $pnote{$pids[1]} $tmp/pcons\n";
($rc, $out) = check($pscript);
is($rc, 0, 'Go: the partitioned table\'s tree, a proof of a row of each partition, and the consistency proof')
  or diag($out);
# The expired partition goes, with its receipt; its rows stay leaves.  Rows
# written into it since the last checkpoint are appended by a checkpoint
# the drop takes first.
sql(q{INSERT INTO pt SELECT g, '2026-01-05', 'unsealed' FROM generate_series(1001, 1005) g});
my @unsealed = split /\n/, sql(q{SELECT encode(audit_hash, 'hex') FROM pt_a WHERE who = 'unsealed' ORDER BY audit_chain, audit_seq});
sleep(1.2);
is(runs_ok(q{DROP TABLE pt_a}), 'ok', 'an expired partition is dropped');
my $after = sql(qq{SELECT max(id) FROM hipaa_audit.checkpoints WHERE table_uuid = '$puuid'});
cmp_ok($after, '>', $pids[-1], '... after a checkpoint of the partitioned table, since it held rows not yet in the tree');
like(sql(qq{SELECT note FROM hipaa_audit.checkpoints WHERE id = $after}), qr/\A[^\n]+\n425\n/,
	'... which appended them (425 leaves)');
sql(q{CREATE TABLE pt_idle PARTITION OF pt FOR VALUES FROM ('2025-01-01') TO ('2025-02-01')});
sleep(1.2);
is(runs_ok(q{DROP TABLE pt_idle}), 'ok', 'an empty expired partition is dropped');
is(sql(qq{SELECT max(id) FROM hipaa_audit.checkpoints WHERE table_uuid = '$puuid'}), $after,
	'... without a checkpoint (nothing of it to append)');
sql(q{INSERT INTO pt VALUES (421, '2026-02-03', 'late')});
sql(q{SELECT hipaa_audit.checkpoint('pt')});
my $plast = sql(qq{SELECT max(id) FROM hipaa_audit.checkpoints WHERE table_uuid = '$puuid'});
put_file("$tmp/pcp_last", text_of("SELECT hipaa_audit.checkpoint_note($plast)"));
put_file("$tmp/pcons2", text_of("SELECT hipaa_audit.prove_consistency('pt', $pids[1], $plast)"));
my $late = sql(q{SELECT encode(audit_hash, 'hex') FROM pt WHERE id = 421});
($rc, $out) = check("key $vkey\n" . join('', map { "leaf $_\n" } @pleaves, @unsealed, $late)
	  . "checkpoint $tmp/pcp_last\nconsistency $pnote{$pids[1]} $tmp/pcp_last $tmp/pcons2\n");
is($rc, 0, 'Go: after the drop the tree still holds the dropped partition\'s leaves and grows on (426 leaves)')
  or diag($out);
is(sql(q{SELECT ok::text || ':' || tree_size || ':' || leaves_compared FROM hipaa_audit.verify_tree('pt')}),
	'true:426:' . (426 - 253), 'verify_tree() of the partitioned table: the dropped partition\'s leaves as stored, the others compared');

# -------------------------------------------------------- pg_dump/pg_restore
my $dump = "$tmp/merkle.dump";
$node->command_ok([ 'pg_dump', '--format', 'custom', '--file', $dump, '--dbname', $node->connstr('postgres') ],
	'pg_dump of a database with Merkle trees');
my $dst = ha_node('merkle_restore', no_extension => 1,
	conf => "hipaa_audit.signing_key_file = '$key'\nhipaa_audit.signer_name = 'audit.example.org'\n");
$dst->command_ok([ 'pg_restore', '--exit-on-error', '--dbname', $dst->connstr('postgres'), $dump ],
	'pg_restore into a new cluster');
my $tiles_sql = q{SELECT md5(string_agg(table_uuid::text || ':' || level || ':' || idx || ':' || width || encode(hashes, 'hex'), ',' ORDER BY table_uuid, level, idx, width))
                  FROM hipaa_audit.merkle_tiles};
is(sql($tiles_sql, node => $dst), sql($tiles_sql), 'the tiles are restored as they were');
my $rp = text_of("SELECT hipaa_audit.prove_row('access_log', $c1, $s1)", node => $dst);
is(sql("SELECT ok::text || ':' || tree_size FROM hipaa_audit.verify_proof(" . HaNote::lit($rp)
	  . ", '\\x$h1', ARRAY['$vkey'])", node => $dst), "true:$size",
	'a proof from the restored database verifies against the same tree');
sql(q{INSERT INTO access_log (patient, who, action) VALUES ('p1', 'dr_restored', 'read')}, node => $dst);
like(sql(q{SELECT hipaa_audit.checkpoint('access_log')}, node => $dst), qr/\n@{[$size + 1]}\n/,
	'the restored tree grows by the new row');
my $last2 = sql(q{SELECT max(id) FROM hipaa_audit.checkpoints WHERE table_uuid = (SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 'access_log'::regclass)}, node => $dst);
put_file("$tmp/r_new", text_of("SELECT hipaa_audit.checkpoint_note($last2)", node => $dst));
put_file("$tmp/r_cons", text_of("SELECT hipaa_audit.prove_consistency('access_log', $ids[-1], $last2)", node => $dst));
my $newleaf = sql(q{SELECT encode(audit_hash, 'hex') FROM access_log WHERE who = 'dr_restored'}, node => $dst);
($rc, $out) = check("key $vkey\n" . join('', map { "leaf $_\n" } @leaves, $newleaf)
	  . "checkpoint $tmp/r_new\nconsistency $note{$ids[-1]} $tmp/r_new $tmp/r_cons cross-origin\n");
is($rc, 0, 'Go: the restored tree (under the new cluster\'s origin) is consistent with the one signed before the dump')
  or diag($out);

done_testing();
