# The canonical encoding depends on no catalog state a superuser can change
# quietly (security issue 11, class 4).  A superuser who unloads the
# library, edits rows, and points the send functions of numeric, text and
# timestamptz (ALTER TYPE ... SET (SEND = ...)) at functions that return
# the old bytes must not get a clean verify(): the encoder takes
# PostgreSQL's own send function of every built-in type from a table
# compiled into the extension, also for array elements, composite fields
# and range bounds, never from pg_type.typsend.
#
# First, the encoder's own writing of the array, record, range and
# multirange formats is checked byte for byte against PostgreSQL's send
# functions (COPY ... (FORMAT binary), read by the independent verifier).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run;
use HaTest;
use IndependentVerifier qw(parse_copy_binary verify type_info_sql);

$ENV{PGCLIENTENCODING} = 'UTF8';

my $node = ha_node('pinned',
	init => { extra => [ '--encoding=UTF8', '--locale=C' ] });

sub copy_out
{
	my ($sql) = @_;
	my ($in, $out, $err) = ('', '', '');
	IPC::Run::run(
		[
			$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-c',
			"\\copy ($sql) TO STDOUT WITH (FORMAT binary)"
		],
		'<', \$in, '>', \$out, '2>', \$err)
	  or die "copy failed: $sql\n$err";
	return $out;
}

# The independent verifier's hash of every row, against the stored one.
sub verifier_agrees
{
	my ($table, $what) = @_;
	my %type_info = map { split /\|/ } split /\n/,
	  $node->safe_psql('postgres', type_info_sql());
	my @att = map { [ split /\|/, $_, -1 ] } split /\n/, $node->safe_psql('postgres', qq{
		SELECT quote_ident(attname), attname, atttypid, attgenerated FROM pg_attribute
		 WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped
		 ORDER BY attnum});
	my ($uuid, $chains) = split /\|/, $node->safe_psql('postgres',
		"SELECT table_uuid, chains FROM hipaa_audit.registry WHERE relid = '$table'::regclass");
	my $copy = parse_copy_binary(
		copy_out('SELECT ' . join(', ', map { $_->[0] } @att) . " FROM $table"));
	my $res = verify(
		columns    => [ map { $_->[1] } @att ],
		types      => { map { $_->[1] => $_->[2] } @att },
		type_info  => \%type_info,
		table_uuid => $uuid,
		excluded   => [ map { $_->[1] } grep { $_->[3] eq 's' } @att ],
		chains     => $chains,
		rows       => $copy->{rows});
	my %stored = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
		"SELECT audit_chain || '/' || audit_seq, encode(audit_hash, 'hex') FROM $table");
	my @differ = grep { $_->{hash} ne $stored{"$_->{chain}/$_->{seq}"} } @{ $res->{rows} };
	is(scalar @{ $res->{rows} }, scalar keys %stored, "$what: the verifier read every row");
	is(scalar @differ, 0, "$what: the verifier's hash of every row is the stored one")
	  or diag(join "\n", map { "differs: $_->{chain}/$_->{seq}" } @differ);
}

# ------------------------------------------------------------------------
# 1. The formats the encoder writes itself, byte for byte PostgreSQL's.
# ------------------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE TYPE mood AS ENUM ('low', 'high');
	CREATE TYPE moodrange AS RANGE (subtype = mood);
	CREATE TYPE pair AS (a numeric, b text, f float8, fs real[], t timestamptz);
	CREATE TYPE enumrow AS (oid oid, enumtypid oid, enumsortorder real, enumlabel name);
	CREATE TYPE nest AS (fs float8[], r int4range);
	CREATE DOMAIN posnum AS numeric CHECK (VALUE > 0);
	CREATE DOMAIN nums AS numeric[];
	CREATE TABLE wide (
		id       integer,
		c_pair   pair,
		c_nest   nest,
		c_nums   numeric[],
		c_nums2  nums,
		c_numdom posnum,
		c_ir     int4range,
		c_nr     numrange,
		c_tr     tstzrange,
		c_dmr    datemultirange,
		c_nmr    nummultirange,
		c_mr     moodrange,
		c_i2v    int2vector,
		c_oidv   oidvector,
		c_jb     jsonb[],
		c_iv     interval[],
		c_tsv    tsvector,
		c_name   name,
		c_char   "char",
		c_bit    bit(5),
		c_vbit   varbit,
		c_ttz    timetz,
		c_xml    xml,
		c_mac8   macaddr8,
		c_lsn    pg_lsn,
		c_rec    enumrow
	);
	SELECT hipaa_audit.protect('wide', chains => 2);
	INSERT INTO wide VALUES
	(1, ROW(1234.50, 'Zoë', 'NaN', '{NaN,-0,1.5}', '2026-01-02 03:04:05+00'),
	 ROW('{-Infinity,NULL,1e300,NaN}', int4range(1, 10)),
	 '{{1.0,2.00},{NULL,NaN}}', '{3.14159}', 0.001,
	 '[1,5)', '(1.5,2.50]', '[2026-01-01 00:00+00,infinity)',
	 '{[2026-01-01,2026-02-01),[2026-03-01,)}', '{}', '[low,high]',
	 '1 2 -3', '0 26 4294967295', ARRAY['{"b": [1, 2.0]}', 'null']::jsonb[],
	 '{"1 year 2 mons","-3 days 04:05:06.7"}', 'a:1 fat:2B cat', 'name ë', 'x', B'10101',
	 B'1', '12:34:56.789+05:30', '<a b="ü">text</a>', '08:00:2b:01:02:03:04:05', '16/B374D848',
	 ROW(9, 10, -0.0, 'e4')),
	(2, NULL, NULL, '{}', NULL, NULL, 'empty', 'empty', NULL, '{empty}', '{(,)}', 'empty',
	 '', '', '{}', '{}', '', '', '', B'00000', B'', NULL, NULL, NULL, NULL, NULL);
	-- A NaN produced by arithmetic, inside a composite and an array.
	INSERT INTO wide (id, c_pair, c_rec, c_nest)
	SELECT 3, ROW(0, '', 'Infinity'::float8 - 'Infinity'::float8,
	              ARRAY['Infinity'::real - 'Infinity'::real], NULL)::pair,
	       ROW(0, 0, -('Infinity'::real - 'Infinity'::real), '')::enumrow,
	       ROW(ARRAY[-('Infinity'::float8 - 'Infinity'::float8)], NULL)::nest;
});
is($node->safe_psql('postgres', q{SELECT ok, rows_checked FROM hipaa_audit.verify('wide')}),
	't|3', 'a table of composite, array, range, multirange and other built-in types verifies');
verifier_agrees('wide', 'composites, arrays, ranges');

# ------------------------------------------------------------------------
# 2. The attack: rows edited with the library unloaded, and the send
#    functions of numeric, text and timestamptz pointed at functions that
#    give the edited values their old bytes.
# ------------------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE TYPE bill_pair AS (a numeric, b text);
	CREATE TABLE bill (
		id      integer,
		amount  numeric,
		who     text,
		at      timestamptz,
		amounts numeric[],
		tags    text[],
		span    numrange,
		pair    bill_pair,
		stamps  timestamptz[]
	);
	SELECT hipaa_audit.protect('bill', chains => 1);
	INSERT INTO bill VALUES
	(1, 1234.50, 'alice', '2026-01-01 00:00:00+00', '{1234.50,1}', '{alice}',
	 '[1234.50,1234.50]', ROW(1234.50, 'alice'), '{"2026-01-01 00:00:00+00"}');
	INSERT INTO bill SELECT g, 1234.50, 'alice', '2026-01-01 00:00:00+00', '{1234.50,1}',
	       '{alice}', '[1234.50,1234.50]', ROW(1234.50, 'alice')::bill_pair, '{"2026-01-01 00:00:00+00"}'
	  FROM generate_series(2, 9) g;
});
is($node->safe_psql('postgres', q{SELECT ok, rows_checked FROM hipaa_audit.verify('bill')}),
	't|9', 'bill verifies before the attack');
my %before = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	q{SELECT id, encode(audit_hash, 'hex') FROM bill});

$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
$node->safe_psql('postgres', q{
	-- Send functions that give the edited values the bytes of the old ones.
	CREATE FUNCTION public.old_numeric_send(numeric) RETURNS bytea
		LANGUAGE sql IMMUTABLE STRICT
		AS $$SELECT pg_catalog.numeric_send(CASE WHEN $1 = 999999.99 THEN 1234.50 ELSE $1 END)$$;
	CREATE FUNCTION public.old_text_send(text) RETURNS bytea
		LANGUAGE sql IMMUTABLE STRICT
		AS $$SELECT pg_catalog.textsend(CASE WHEN $1 = 'mallory' THEN 'alice' ELSE $1 END)$$;
	CREATE FUNCTION public.old_timestamptz_send(timestamptz) RETURNS bytea
		LANGUAGE sql IMMUTABLE STRICT
		AS $$SELECT pg_catalog.timestamptz_send(CASE WHEN $1 = '2030-01-01 00:00:00+00'
		       THEN '2026-01-01 00:00:00+00'::timestamptz ELSE $1 END)$$;
	ALTER TYPE numeric SET (SEND = public.old_numeric_send);
	ALTER TYPE text SET (SEND = public.old_text_send);
	ALTER TYPE timestamptz SET (SEND = public.old_timestamptz_send);
	ALTER TABLE bill DISABLE TRIGGER ALL;
	UPDATE bill SET amount = 999999.99 WHERE id = 1;
	UPDATE bill SET who = 'mallory' WHERE id = 2;
	UPDATE bill SET at = '2030-01-01 00:00:00+00' WHERE id = 3;
	UPDATE bill SET amounts = '{999999.99,1}' WHERE id = 4;
	UPDATE bill SET tags = '{mallory}' WHERE id = 5;
	UPDATE bill SET span = '[1234.50,999999.99]' WHERE id = 6;
	UPDATE bill SET pair = ROW(999999.99, 'mallory') WHERE id = 7;
	UPDATE bill SET stamps = '{"2030-01-01 00:00:00+00"}' WHERE id = 8;
	ALTER TABLE bill ENABLE ALWAYS TRIGGER hipaa_audit_chain,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;
});
# The fakes do what the attacker wants from PostgreSQL's own send path.
is($node->safe_psql('postgres', q{
	SELECT pg_catalog.encode(public.old_numeric_send(999999.99), 'hex')
	     = pg_catalog.encode(pg_catalog.numeric_send(1234.50), 'hex')}),
	't', '(the replacement send function gives the edited amount the old bytes)');
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
is($node->safe_psql('postgres',
		q{SELECT typsend::regproc FROM pg_type WHERE oid = 'numeric'::regtype}),
	'old_numeric_send', '(pg_type still names the replacement)');

my ($rc, $out, $err) = $node->psql('postgres', q{
	SELECT string_agg(b.id || ':' || p.kind, ' ' ORDER BY b.id)
	  FROM hipaa_audit.verify_problems('bill') p
	  JOIN bill b ON b.audit_chain = p.chain AND b.audit_seq = p.seq});
is($out, '1:hash_mismatch 2:hash_mismatch 3:hash_mismatch 4:hash_mismatch '
	  . '5:hash_mismatch 6:hash_mismatch 7:hash_mismatch 8:hash_mismatch',
	'every edited row is reported, whatever pg_type says the send functions are: '
	  . 'numeric, text and timestamptz columns, array elements, range bounds, composite fields');
like($err,
	qr/WARNING:  pg_type names old_numeric_send\(numeric\) as the send function of type numeric, not PostgreSQL's own numeric_send\(numeric\)/,
	'verify() warns that the catalog names another send function');
is($node->safe_psql('postgres', q{SELECT ok FROM hipaa_audit.verify('bill')}), 'f',
	'verify() says the table is not intact');

# The unedited row hashes as it did: the encoding did not follow the catalog.
is($node->safe_psql('postgres', q{SELECT count(*) FROM hipaa_audit.verify_problems('bill') p
	JOIN bill b ON b.audit_chain = p.chain AND b.audit_seq = p.seq WHERE b.id = 9}),
	'0', 'the row nobody edited still verifies');
is($node->safe_psql('postgres', q{SELECT encode(audit_hash, 'hex') FROM bill WHERE id = 9}),
	$before{9}, '(its stored hash is the one of before the attack)');

# Rows inserted while pg_type names the replacements hash with PostgreSQL's
# own functions too: once the catalog is put back, the independent verifier,
# which reads COPY's (now honest) send output, agrees with every such row.
$node->safe_psql('postgres', q{
	CREATE TABLE later (id int, amount numeric, who text, at timestamptz, amounts numeric[],
	                    tags text[], span numrange, pair bill_pair);
	SELECT hipaa_audit.protect('later', chains => 1);
	INSERT INTO later VALUES (1, 999999.99, 'mallory', '2030-01-01 00:00:00+00',
	    '{999999.99}', '{mallory}', '[1,999999.99]', ROW(999999.99, 'mallory'));
});
is($node->safe_psql('postgres', q{SELECT ok FROM hipaa_audit.verify('later')}), 't',
	'a row inserted while the catalog is changed verifies');
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
$node->safe_psql('postgres', q{
	ALTER TYPE numeric SET (SEND = pg_catalog.numeric_send);
	ALTER TYPE text SET (SEND = pg_catalog.textsend);
	ALTER TYPE timestamptz SET (SEND = pg_catalog.timestamptz_send);
});
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
verifier_agrees('later', 'rows inserted while the catalog was changed');
($rc, $out, $err) = $node->psql('postgres', q{SELECT ok FROM hipaa_audit.verify('later')});
is($out, 't', 'and verify() agrees, with the catalog put back');
unlike($err, qr/WARNING/, 'without a warning once the catalog is put back');

# ------------------------------------------------------------------------
# The encoding hashes text as UTF-8: a database in another encoding cannot
# protect tables (its text would hash differently after a conversion).
# ------------------------------------------------------------------------
$node->safe_psql('postgres',
	q{CREATE DATABASE latin ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'});
$node->safe_psql('latin', 'CREATE EXTENSION hipaa_audit; CREATE TABLE t (id int, note text)');
($rc, $out, $err) = $node->psql('latin', "\\set VERBOSITY verbose\nSELECT hipaa_audit.protect('t')");
like($err, qr/ERROR:  0A000: cannot protect tables in a database with encoding LATIN1/,
	'protect() in a LATIN1 database is refused (0A000)');
is($node->safe_psql('latin', q{SELECT hipaa_audit.is_protected('t') || ':' || count(*) FROM hipaa_audit.registry}),
	'false:0', '... and nothing is protected there');

done_testing();
