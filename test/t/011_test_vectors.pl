# The test vectors of docs/encoding.md ("## Test vectors") against the
# extension.
#
# The vectors were built from the specification alone (test/t/TestVectors.pm
# writes the value bytes by hand and computes M and the hashes with
# IndependentVerifier.pm).  Here the vector rows are put into a real
# protected table exactly as documented -- with the library unloaded, the
# registry's table_uuid set to the documented one and the triggers disabled,
# so that the documented hashes are stored as they are -- and then:
#
#   - PostgreSQL's own binary send output of every field (COPY ... (FORMAT
#     binary)) must be the documented value bytes;
#   - hipaa_audit.verify() must accept every row: that is the extension's C
#     encoder reproducing the documented M and hash;
#   - a reconstruction of M in plain SQL (the *send() functions and
#     sha256()) and the independent verifier over COPY BINARY must give the
#     same hashes;
#   - one bit flipped in one stored hash must be reported at that row.
#
# The hashes are written below as well, and must be the documented ones, so
# that the documentation cannot drift away from what is tested.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run;
use Digest::SHA ();
use HaTest;
use IndependentVerifier qw(parse_copy_binary verify type_info_sql);
use TestVectors;

$ENV{PGCLIENTENCODING} = 'UTF8';

my $UUID = '00000000-0000-4000-8000-000000000001';
my $ZERO = '00' x 32;
my %HASH = (
	A => 'bdba09a0b455189cb3b115e413df210431a117616e8948a07e641885ff3692a3',
	B => '64875ed17c68308b40cf9e2b76ade5f3b5673dd5ad50d5eeb7e2f8d751750dec',
	C => '14edea0fdc7ca86bf0549acb3288a901eaed92d97d90e024f24d78e62c790bd6',
);
# name => [ chain, seq, prev ]
my %POS = (A => [ 0, 1, $ZERO ], B => [ 0, 2, $HASH{A} ], C => [ 1, 1, $ZERO ]);
my %BY_POS = map { join('/', @{ $POS{$_} }[ 0, 1 ]) => $_ } keys %POS;

my @INCLUDED = qw(id actor patient_mrn amount score tags note audit_at
  audit_session_role audit_role audit_client);
my @ALL_COLUMNS = qw(id actor patient_mrn amount score tags note audit_chain
  audit_seq audit_at audit_session_role audit_role audit_client
  audit_prev_hash audit_hash);

# ------------------------------------------------ the documentation itself

my $doc_file = "$ENV{TESTDIR}/docs/encoding.md";
my $doc = do
{
	open(my $fh, '<:raw', $doc_file) or die "$doc_file: $!";
	local $/;
	<$fh>;
};
my @dv = TestVectors::parse_doc($doc);
my %dv = map { $_->{name} => $_ } @dv;
is(join(',', map { $_->{name} } @dv), 'A,B,C', 'docs/encoding.md has vectors A, B, C');

for my $n (sort keys %HASH)
{
	my $v = $dv{$n} or next;
	is($v->{hash_hex}, $HASH{$n}, "vector $n: the documented hash is the one this test uses");
	is(join('/', $v->{chain}, $v->{seq}), join('/', @{ $POS{$n} }[ 0, 1 ]),
		"vector $n: documented at chain $POS{$n}[0] seq $POS{$n}[1]");
	is($v->{prev_hex}, $POS{$n}[2], "vector $n: documented audit_prev_hash links correctly");
	is($v->{uuid_hex}, '00000000000040008000000000000001', "vector $n: documented table identity");
	is(join(',', map { $_->[0] } @{ $v->{fields} }), join(',', @INCLUDED),
		"vector $n: documents every included column, in order");

	# M rebuilt from the documented header and field bytes alone (not with
	# IndependentVerifier), then hashed.
	my $m = "hipaa_audit/row/v1\0" . pack('H*', $v->{uuid_hex} . $v->{chain_hex}
		  . $v->{seq_hex} . $v->{prev_hex});
	for my $f (@{ $v->{fields} })
	{
		next unless defined $f->[1];
		my $val = pack('H*', $f->[1]);
		$m .= pack('N', length $f->[0]) . $f->[0] . pack('N', length $val) . $val;
	}
	is(unpack('H*', $m), $v->{m_hex}, "vector $n: documented M = header and fields as documented");
	is(Digest::SHA::sha256_hex(pack('H*', $v->{m_hex})), $v->{hash_hex},
		"vector $n: documented hash = SHA-256 of documented M");
}

{
	my ($sec) = $doc =~ /^(## Test vectors\n.*?)(?=^## |\z)/ms;
	is($sec, TestVectors::markdown(),
		'the documented section is exactly what test/t/TestVectors.pm generates');
}

# ------------------------------------------------------ a real table

my $node = ha_node('vectors',
	init => { extra => [ '--encoding=UTF8', '--locale=C' ] });
my $tmp = PostgreSQL::Test::Utils::tempdir;

sub psql_raw
{
	my ($cmd) = @_;
	my ($in, $out, $err) = ('', '', '');
	IPC::Run::run(
		[
			$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-c', $cmd
		],
		'<', \$in, '>', \$out, '2>', \$err) or die "psql failed: $cmd\n$err";
	return $out;
}

# Run SQL as superuser with the library not loaded, then load it again.
sub with_library_unloaded
{
	my ($sql) = @_;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
	$node->restart;
	is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
		'(library unloaded)');
	$node->safe_psql('postgres', $sql);
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
	$node->restart;
}

sub problems
{
	return $node->safe_psql('postgres',
		q{SELECT string_agg(chain || ':' || seq || ':' || kind, ' ' ORDER BY chain, seq, kind)
		    FROM hipaa_audit.verify_problems('vec')});
}

$node->safe_psql('postgres', q{
	CREATE TABLE vec (
		id          integer,
		actor       text,
		patient_mrn text,
		amount      numeric,
		score       double precision,
		tags        text[],
		note        text);
	SELECT hipaa_audit.protect('vec', chains => 2);
});
is($node->safe_psql('postgres', q{
	SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
	 WHERE attrelid = 'vec'::regclass AND attnum > 0 AND NOT attisdropped}),
	join(',', @ALL_COLUMNS), 'protect() gave the table the documented columns, in order');
my $triggers_sql = q{SELECT string_agg(tgname || ':' || tgenabled::text, ' ' ORDER BY tgname)
	FROM pg_trigger WHERE tgrelid = 'vec'::regclass};
my $triggers = $node->safe_psql('postgres', $triggers_sql);
is($triggers,
	'hipaa_audit_chain:A hipaa_audit_guard_row:A hipaa_audit_guard_truncate:A',
	'the table has the three triggers, enabled ALWAYS');

my $rows_sql = join ",\n", map {
	my ($n, $user, $audit) = @$_;
	"($user, $POS{$n}[0], $POS{$n}[1], $audit, '\\x$POS{$n}[2]', '\\x$HASH{$n}')"
} (
	[ A => q{1, 'Zoë Müller', 'MRN-0042', 1234.50, 98.6, '{flu,"ICU ✓"}', 'first visit'},
		q{'2026-01-02 03:04:05.678901+00', 'alice', 'app_writer', '10.20.0.15'} ],
	[ B => q{2, 'dr.house', 'MRN-0042', -0.05, 'NaN', '{}', NULL},
		q{'2026-01-02 03:04:06+00', 'alice', 'alice', NULL} ],
	[ C => q{3, '', 'MRN-9001', 0.00, '-0', '{NULL,ok}', 'done 🎉'},
		q{'2026-01-02 03:04:07.5+00', 'bob', 'app_writer', '2001:db8::1'} ],
);
my $insert_sql = "INSERT INTO vec (id, actor, patient_mrn, amount, score, tags, note, "
  . "audit_chain, audit_seq, audit_at, audit_session_role, audit_role, audit_client, "
  . "audit_prev_hash, audit_hash) VALUES\n$rows_sql;\n";
my $enable_sql = q{
	ALTER TABLE vec ENABLE ALWAYS TRIGGER hipaa_audit_chain,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;
};

with_library_unloaded(qq{
	UPDATE hipaa_audit.registry SET table_uuid = '$UUID' WHERE relid = 'vec'::regclass;
	ALTER TABLE vec DISABLE TRIGGER ALL;
	$insert_sql
	$enable_sql
});

is($node->safe_psql('postgres', $triggers_sql), $triggers, 'the triggers are as protect() left them');
is($node->safe_psql('postgres',
		q{SELECT table_uuid, chains FROM hipaa_audit.registry WHERE relid = 'vec'::regclass}),
	"$UUID|2", 'the registry has the vector table_uuid and 2 chains');
is($node->safe_psql('postgres',
		q{SELECT string_agg(format('%s/%s:%s', audit_chain, audit_seq, encode(audit_hash, 'hex')),
		                    ' ' ORDER BY audit_chain, audit_seq) FROM vec}),
	join(' ', map { "$POS{$_}[0]/$POS{$_}[1]:$HASH{$_}" } qw(A B C)),
	'the table holds the three vector rows with the documented hashes');

# ------------------------------------------- PostgreSQL's send output = doc

my %type_info = map { split /\|/ } split /\n/, $node->safe_psql('postgres', type_info_sql());
my %types = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
	SELECT attname, atttypid FROM pg_attribute
	 WHERE attrelid = 'vec'::regclass AND attnum > 0 AND NOT attisdropped});
my $copy = parse_copy_binary(psql_raw(
	'\copy (SELECT * FROM vec ORDER BY audit_chain, audit_seq) TO STDOUT WITH (FORMAT binary)'));
is(scalar @{ $copy->{rows} }, 3, 'COPY BINARY gives 3 rows');
for my $row (@{ $copy->{rows} })
{
	my %f = map { $ALL_COLUMNS[$_] => $row->[$_] } 0 .. $#ALL_COLUMNS;
	my $n = $BY_POS{ unpack('l>', $f{audit_chain}) . '/' . unpack('q>', $f{audit_seq}) };
	my $v = $dv{$n};
	my %doc_bytes = map { $_->[0] => $_->[1] } @{ $v->{fields} };
	for my $c (@INCLUDED)
	{
		# the documented bytes are the canonical ones (NaN normalised)
		my $got = defined $f{$c}
		  ? unpack('H*', IndependentVerifier::canonical_value($f{$c}, $types{$c}, \%type_info))
		  : undef;
		is($got, $doc_bytes{$c},
			"vector $n: PostgreSQL's send output of $c is the documented "
			  . (defined $doc_bytes{$c} ? 'value bytes' : 'NULL'));
	}
	is(unpack('H*', $f{audit_prev_hash}), $v->{prev_hex}, "vector $n: audit_prev_hash as documented");
	is(unpack('H*', $f{audit_hash}),      $HASH{$n},      "vector $n: audit_hash as documented");
}

# ------------------------------------------------ the extension's verdict

is($node->safe_psql('postgres', q{SELECT ok, rows_checked, problems FROM hipaa_audit.verify('vec')}),
	't|3|0', 'hipaa_audit.verify() accepts the three vector rows: the C encoder reproduces them');
is(problems(), '', 'verify_problems() is empty');

# ---------------------------------- the same hashes by two other routes

# M in plain SQL, from the send functions.
$node->safe_psql('postgres', q{
	CREATE FUNCTION vec_field(name text, v bytea) RETURNS bytea
	LANGUAGE sql IMMUTABLE STRICT AS $$
	  SELECT int4send(octet_length(convert_to(name, 'UTF8'))) || convert_to(name, 'UTF8')
	      || int4send(octet_length(v)) || v $$;
});
is($node->safe_psql('postgres', q{
	SELECT string_agg(format('%s/%s:%s', audit_chain, audit_seq, encode(sha256(
	    '\x68697061615f61756469742f726f772f763100'::bytea
	    || uuid_send(r.table_uuid) || int4send(audit_chain) || int8send(audit_seq)
	    || audit_prev_hash
	    || coalesce(vec_field('id', int4send(id)), '')
	    || coalesce(vec_field('actor', textsend(actor)), '')
	    || coalesce(vec_field('patient_mrn', textsend(patient_mrn)), '')
	    || coalesce(vec_field('amount', numeric_send(amount)), '')
	    || coalesce(vec_field('score', CASE WHEN score = 'NaN' THEN '\x7ff8000000000000'::bytea
	                                        ELSE float8send(score) END), '')
	    || coalesce(vec_field('tags', array_send(tags)), '')
	    || coalesce(vec_field('note', textsend(note)), '')
	    || coalesce(vec_field('audit_at', timestamptz_send(audit_at)), '')
	    || coalesce(vec_field('audit_session_role', textsend(audit_session_role)), '')
	    || coalesce(vec_field('audit_role', textsend(audit_role)), '')
	    || coalesce(vec_field('audit_client', inet_send(audit_client)), '')), 'hex')),
	    ' ' ORDER BY audit_chain, audit_seq)
	  FROM vec, hipaa_audit.registry r WHERE r.relid = 'vec'::regclass}),
	join(' ', map { "$POS{$_}[0]/$POS{$_}[1]:$HASH{$_}" } qw(A B C)),
	'M rebuilt in SQL from the send functions hashes to the documented hashes');

# The independent verifier over COPY BINARY.
my %vargs = (
	columns    => \@ALL_COLUMNS,
	types      => \%types,
	type_info  => \%type_info,
	table_uuid => $node->safe_psql('postgres',
		q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 'vec'::regclass}),
	chains     => 2);
my $res = verify(%vargs, rows => $copy->{rows});
is_deeply($res->{problems}, [], 'the independent verifier finds no problem');
is($res->{rows_checked}, 3, 'the independent verifier checked 3 rows');
is_deeply($res->{hashes}, { map {; "$POS{$_}[0]/$POS{$_}[1]" => $HASH{$_} } keys %HASH },
	'the independent verifier recomputes the documented hashes');

# ------------------------------------------------- and it can fail

# Vector C's hash with its lowest bit flipped.  C is the only row of chain
# 1, so no link depends on it.
(my $bad = $HASH{C}) =~ s/(.)\z/sprintf('%x', hex($1) ^ 1)/e;
isnt($bad, $HASH{C}, "flipped hash $bad");
with_library_unloaded(qq{
	ALTER TABLE vec DISABLE TRIGGER ALL;
	UPDATE vec SET audit_hash = '\\x$bad' WHERE audit_chain = 1 AND audit_seq = 1;
	$enable_sql
});
is($node->safe_psql('postgres', $triggers_sql), $triggers, 'the triggers are back');
is($node->safe_psql('postgres', q{SELECT ok, rows_checked, problems FROM hipaa_audit.verify('vec')}),
	'f|3|1', 'with one bit of one hash flipped, verify() fails');
is(problems(), '1:1:hash_mismatch', 'and reports hash_mismatch at chain 1 seq 1 only');
{
	my $c = parse_copy_binary(psql_raw('\copy (SELECT * FROM vec) TO STDOUT WITH (FORMAT binary)'));
	my $r = verify(%vargs, rows => $c->{rows});
	is_deeply([ map { "$_->{chain}/$_->{seq}/$_->{kind}" } @{ $r->{problems} } ], ['1/1/hash'],
		'the independent verifier reports it at the same row');
}

# Put the documented hash back: intact again.
with_library_unloaded(qq{
	ALTER TABLE vec DISABLE TRIGGER ALL;
	UPDATE vec SET audit_hash = '\\x$HASH{C}' WHERE audit_chain = 1 AND audit_seq = 1;
	$enable_sql
});
is($node->safe_psql('postgres', q{SELECT ok, rows_checked FROM hipaa_audit.verify('vec')}),
	't|3', 'with the documented hash restored, verify() accepts the table again');

# ------------------------------- the Merkle tree of the vectors (merkle.md)
# One checkpoint takes A, B (chain 0) and C (chain 1) as leaves 0, 1, 2:
# its root and the extension's inclusion proofs must be the documented ones.
my $mdoc = do { local $/; open my $fh, '<', "$ENV{TESTDIR}/docs/merkle.md" or die "merkle.md: $!"; <$fh> };
sub doc_row
{
	my ($label) = @_;
	my ($v) = $mdoc =~ /^\| \Q$label\E \| (.+) \|$/m or die "docs/merkle.md has no row '$label'";
	return join(' ', $v =~ /`([^`]+)`/g);
}
my $keyfile = PostgreSQL::Test::Utils::tempdir . '/vec.pem';
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', $keyfile) == 0 or die 'openssl genpkey failed';
chmod 0600, $keyfile;
$node->append_conf('postgresql.conf', "hipaa_audit.signing_key_file = '$keyfile'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('hipaa_audit.signing_key_file') = '$keyfile'")
  or die 'the key setting was not reloaded';
my @cp = split /\n/, $node->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('vec')});
is("$cp[1] $cp[2]", '3 ' . doc_row('root, size 3'), 'the checkpoint of the vector rows: size 3 and the documented root');
my $proof_hashes = sub {
	my ($chain, $seq) = @_;
	my @l = split /\n/, $node->safe_psql('postgres', "SELECT hipaa_audit.prove_row('vec', $chain, $seq)");
	my ($index) = $l[2] =~ /^index (\d+)$/ or die "no index line: $l[2]";
	my @h;
	for my $i (3 .. $#l) { last if $l[$i] eq ''; push @h, $l[$i]; }
	return "$index: " . join(' ', @h);
};
is($proof_hashes->(0, 1), '0: ' . doc_row('inclusion of leaf 0, size 3'), 'vector A is leaf 0, with the documented inclusion proof');
is($proof_hashes->(1, 1), '2: ' . doc_row('inclusion of leaf 2, size 3'), 'vector C is leaf 2, with the documented inclusion proof');
is($node->safe_psql('postgres', q{SELECT string_agg(encode(sha256('\x00'::bytea || audit_hash), 'hex'), ' '
                                   ORDER BY audit_chain, audit_seq) FROM vec}),
	join(' ', map { doc_row("leaf $_") } ('0 (A)', '1 (B)', '2 (C)')), 'the documented leaf hashes');

# The offline checker (tools/hipaa_audit_verify.c) with the row's canonical
# encoding M from docs/encoding.md: the proof of vector A verifies from M
# alone; M of vector B does not.
{
	my $vk = $node->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $proof_hex = $node->safe_psql('postgres',
		q{SELECT encode(convert_to(hipaa_audit.prove_row('vec', 0, 1), 'UTF8'), 'hex')});
	open(my $pf, '>:raw', "$dir/a.proof") or die; print $pf pack('H*', $proof_hex); close $pf;
	for my $n (qw(A B))
	{
		open(my $mf, '>:raw', "$dir/$n.m") or die; print $mf pack('H*', $dv{$n}{m_hex}); close $mf;
	}
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'hipaa_audit_verify', "$dir/a.proof", '--key', $vk, '--row', "$dir/A.m" ], '>', \$out, '2>', \$err);
	is($? >> 8, 0, 'hipaa_audit_verify --row: the proof of vector A verifies from its documented encoding M')
	  or diag("$out$err");
	like($out, qr/^verified: the row is leaf 0 of the tree of 3 leaves/m, '... and says which leaf of which tree');
	($out, $err) = ('', '');
	IPC::Run::run([ 'hipaa_audit_verify', "$dir/a.proof", '--key', $vk, '--row', "$dir/B.m" ], '>', \$out, '2>', \$err);
	is($? >> 8, 1, '... the encoding of vector B does not (exit 1)');
	like($err, qr/NOT VERIFIED \(bad_proof\)/, '... bad_proof');
}

$node->stop;
done_testing();
