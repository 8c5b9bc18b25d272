# An independent verifier (IndependentVerifier.pm, written from
# docs/encoding.md alone, sharing no code with the extension) reads protected
# tables with COPY ... (FORMAT binary) and must agree with the extension on
# every row's hash, whatever the types, the values and the session settings
# of the inserting sessions.  It must also notice tampering.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run;
use Encode ();
use HaTest;
use IndependentVerifier qw(parse_copy_binary build_copy_binary verify
  type_info_sql);

# Every session of this test talks UTF-8 unless it says otherwise.
$ENV{PGCLIENTENCODING} = 'UTF8';

my $node = ha_node('indep',
	init => { extra => [ '--encoding=UTF8', '--locale=C' ] });
my $tmp = PostgreSQL::Test::Utils::tempdir;

# ------------------------------------------------------------------ helpers

# Run psql with one command, capturing stdout byte for byte.
sub psql_raw
{
	my ($cmd, %env) = @_;
	local $ENV{PGCLIENTENCODING} = 'UTF8';
	local @ENV{ keys %env } = values %env;
	my ($in, $out, $err) = ('', '', '');
	my $ok = IPC::Run::run(
		[
			$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-c', $cmd
		],
		'<', \$in, '>', \$out, '2>', \$err);
	die "psql failed: $cmd\n$err" unless $ok;
	return $out;
}

# Write bytes to a file and \copy them into a table (COPY FROM binary).
my $nfile = 0;
sub copy_in_binary
{
	my ($table, $cols, $rows) = @_;
	my $f = "$tmp/in" . ++$nfile . ".bin";
	open(my $fh, '>:raw', $f) or die "$f: $!";
	print $fh build_copy_binary($rows);
	close $fh or die;
	psql_raw("\\copy $table ($cols) FROM '$f' WITH (FORMAT binary)");
}

my %type_info;

# Everything the verifier needs about a protected table, and its rows.
sub load_table
{
	my ($table) = @_;
	# Read afresh each time: types created since must be known.
	%type_info = map { split /\|/ } split /\n/, $node->safe_psql('postgres', type_info_sql());
	my @att = map { [ split /\|/, $_, -1 ] } split /\n/,
	  $node->safe_psql('postgres', qq{
		SELECT quote_ident(attname), attname, atttypid, attgenerated
		  FROM pg_attribute
		 WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped
		 ORDER BY attnum});
	my ($uuid, $chains) = split /\|/, $node->safe_psql('postgres', qq{
		SELECT table_uuid, chains FROM hipaa_audit.registry
		 WHERE relid = '$table'::regclass});
	my $collist = join ', ', map { $_->[0] } @att;
	my $bytes = psql_raw("\\copy (SELECT $collist FROM $table) TO STDOUT WITH (FORMAT binary)");
	my %stored = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
		"SELECT audit_chain || '/' || audit_seq, encode(audit_hash, 'hex') FROM $table");
	return {
		columns    => [ map { $_->[1] } @att ],
		types      => { map { $_->[1] => $_->[2] } @att },
		excluded   => [ map { $_->[1] } grep { $_->[3] eq 's' } @att ],
		table_uuid => $uuid,
		chains     => $chains,
		bytes      => $bytes,
		stored     => \%stored,
		count      => $node->safe_psql('postgres', "SELECT count(*) FROM $table"),
	};
}

sub run_verifier
{
	my ($t, $rows) = @_;
	return verify(
		columns    => $t->{columns},
		types      => $t->{types},
		type_info  => \%type_info,
		table_uuid => $t->{table_uuid},
		excluded   => $t->{excluded},
		chains     => $t->{chains},
		rows       => $rows);
}

sub show_problems
{
	my ($res) = @_;
	diag(sprintf "problem: chain %s seq %s %s: %s",
		$_->{chain} // '-', $_->{seq} // '-', $_->{kind}, $_->{detail})
	  for @{ $res->{problems} };
}

# Parse, verify, and compare with the extension row by row.
sub check_table
{
	my ($table, $what) = @_;
	my $t    = load_table($table);
	my $copy = parse_copy_binary($t->{bytes});
	my $res  = run_verifier($t, $copy->{rows});
	is(scalar @{ $res->{problems} }, 0, "$what: verifier finds no problem")
	  or show_problems($res);
	is($res->{rows_checked}, $t->{count}, "$what: verifier checked count(*) = $t->{count} rows");
	my %per_chain;
	$per_chain{ $_->{chain} }++ for @{ $res->{rows} };
	note("$what: rows per chain: "
		  . join(', ', map { "$_: $per_chain{$_}" } sort { $a <=> $b } keys %per_chain));
	my %seen;
	foreach my $r (sort { $a->{chain} <=> $b->{chain} || $a->{seq} <=> $b->{seq} }
		@{ $res->{rows} })
	{
		my $k = "$r->{chain}/$r->{seq}";
		$seen{$k}++;
		is($r->{hash}, $t->{stored}{$k},
			"$what: row chain $r->{chain} seq $r->{seq}: recomputed hash = stored audit_hash")
		  or diag("row $k fields: "
			  . join(', ', map {
					my $v = $copy->{rows}[ $r->{index} ][$_];
					"$t->{columns}[$_]="
					  . (defined $v
						? (length $v > 64
							? substr(unpack('H*', $v), 0, 128) . '...(' . length($v) . ' bytes)'
							: unpack('H*', $v))
						: 'NULL')
				  } 0 .. $#{ $t->{columns} }));
	}
	is_deeply([ sort keys %seen ], [ sort keys %{ $t->{stored} } ],
		"$what: every stored row was recomputed once");
	is($node->safe_psql('postgres',
			"SELECT ok, rows_checked FROM hipaa_audit.verify('$table')"),
		"t|$t->{count}", "$what: hipaa_audit.verify() agrees");
	return ($t, $copy, $res);
}

# --------------------------------------------- self-check, no extension needed
#
# A plain table whose chain is computed by SQL from the send functions, to
# check the verifier's mechanics (COPY parsing, column order, NULL omission,
# excluded columns, chain walking) apart from the extension.
{
	$node->safe_psql('postgres', q{
		CREATE TABLE selfcheck (
			id int,
			audit_chain int, audit_seq bigint,
			note text,
			audit_prev_hash bytea, audit_hash bytea,
			x float8,
			gen int GENERATED ALWAYS AS (id * 2) STORED,
			"größe" numeric);
		CREATE FUNCTION selfcheck_hash(u uuid, c int, s bigint, p bytea,
		                               id int, note text, x float8, g numeric)
		RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
		SELECT sha256('\x68697061615f61756469742f726f772f763100'::bytea
		    || uuid_send(u) || int4send(c) || int8send(s) || p
		    || coalesce(int4send(2) || 'id'::bytea || int4send(4) || int4send(id), '')
		    || coalesce(int4send(4) || 'note'::bytea
		                || int4send(octet_length(textsend(note))) || textsend(note), '')
		    || coalesce(int4send(1) || 'x'::bytea || int4send(8)
		                || CASE WHEN x = 'NaN' THEN '\x7ff8000000000000'::bytea
		                        ELSE float8send(x) END, '')
		    || coalesce(int4send(octet_length(convert_to('größe', 'UTF8')))
		                || convert_to('größe', 'UTF8')
		                || int4send(octet_length(numeric_send(g))) || numeric_send(g), ''))
		$$;
		DO $$
		DECLARE
			u uuid := '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
			prev bytea[] := ARRAY['\x'::bytea, '\x'::bytea];
			z bytea := decode(repeat('00', 32), 'hex');
			c int; s bigint; p bytea; h bytea; note text; x float8; g numeric;
		BEGIN
			FOR i IN 1 .. 20 LOOP
				c := i % 2;
				s := (i + 1) / 2;
				p := CASE WHEN s = 1 THEN z ELSE prev[c + 1] END;
				note := CASE WHEN i % 3 = 0 THEN NULL ELSE repeat('é✓', i) END;
				x := CASE i % 4 WHEN 0 THEN 'NaN'::float8 WHEN 1 THEN '-0'::float8 WHEN 2 THEN NULL ELSE i / 7.0::float8 END;
				g := CASE WHEN i % 5 = 0 THEN NULL ELSE i / 3.0 END;
				h := selfcheck_hash(u, c, s, p, i, note, x, g);
				INSERT INTO selfcheck (id, audit_chain, audit_seq, note, audit_prev_hash, audit_hash, x, "größe")
				VALUES (i, c, s, note, p, h, x, g);
				prev[c + 1] := h;
			END LOOP;
		END $$;
		-- an arithmetic NaN (on most machines with other bits than 'NaN')
		-- must hash like 'NaN'
		INSERT INTO selfcheck (id, audit_chain, audit_seq, note, audit_prev_hash, audit_hash, x)
		SELECT 21, 0, 11, NULL, audit_hash,
		       selfcheck_hash('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', 0, 11, audit_hash,
		                      21, NULL, 'NaN', NULL),
		       'Infinity'::float8 - 'Infinity'::float8
		  FROM selfcheck WHERE audit_chain = 0 AND audit_seq = 10;
	});
	my @att = map { [ split /\|/ ] } split /\n/, $node->safe_psql('postgres', q{
		SELECT attname, atttypid, attgenerated FROM pg_attribute
		 WHERE attrelid = 'selfcheck'::regclass AND attnum > 0 AND NOT attisdropped
		 ORDER BY attnum});
	my $bytes = psql_raw(q{\copy (SELECT * FROM selfcheck) TO STDOUT WITH (FORMAT binary)});
	my $rows = parse_copy_binary($bytes)->{rows};
	is(scalar @$rows, 21, 'self-check: COPY BINARY parsed into 21 rows');
	my %args = (
		columns    => [ map { $_->[0] } @att ],
		types      => { map { $_->[0] => $_->[1] } @att },
		table_uuid => '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
		excluded   => ['gen'],
		chains     => 2);
	my $res = verify(%args, rows => $rows);
	is_deeply($res->{problems}, [], 'self-check: verifier agrees with the SQL reference')
	  or show_problems($res);
	is($res->{rows_checked}, 21, 'self-check: 21 rows checked');

	# Without the exclusion of the generated column, every row differs.
	$res = verify(%args, excluded => [], rows => $rows);
	is(scalar(grep { $_->{kind} eq 'hash' } @{ $res->{problems} }), 21,
		'self-check: including the generated column changes every hash');

	# A wrong table identity changes every hash.
	$res = verify(%args, table_uuid => '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f1', rows => $rows);
	is(scalar(grep { $_->{kind} eq 'hash' } @{ $res->{problems} }), 21,
		'self-check: another table_uuid changes every hash');
}

# ------------------------------------------------------- the protected table

$node->safe_psql('postgres', q{
	CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'überglücklich');
	CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
	CREATE TABLE t (
		id          integer,
		c_int2      smallint,
		c_int4      integer,
		c_int8      bigint,
		c_num       numeric,
		c_f4        real,
		c_f8        double precision,
		c_text      text,
		c_varchar   varchar(40),
		c_char      char(10),
		c_bytea     bytea,
		c_bool      boolean,
		c_uuid      uuid,
		c_json      json,
		c_jsonb     jsonb,
		c_date      date,
		c_time      time,
		c_ts        timestamp,
		c_tstz      timestamptz,
		c_interval  interval,
		c_inet      inet,
		c_cidr      cidr,
		c_mac       macaddr,
		c_dropme    text,
		c_ai        integer[],
		c_at        text[],
		c_af8       double precision[],
		c_af4       real[],
		c_mood      mood,
		c_dom       posint,
		"größe"     integer,
		"Mixed Case" text,
		c_gen       integer GENERATED ALWAYS AS (id * 10) STORED
	);
	ALTER TABLE t DROP COLUMN c_dropme;
	SELECT hipaa_audit.protect('t', chains => 4);
});

my $cols_all = 'id, c_int2, c_int4, c_int8, c_num, c_f4, c_f8, c_text, c_varchar, '
  . 'c_char, c_bytea, c_bool, c_uuid, c_json, c_jsonb, c_date, c_time, c_ts, '
  . 'c_tstz, c_interval, c_inet, c_cidr, c_mac, c_ai, c_at, c_af8, c_af4, c_mood, '
  . 'c_dom, "größe", "Mixed Case"';

# One transaction, a multi-row insert covering every type.
$node->safe_psql('postgres', qq{
	INSERT INTO t ($cols_all) VALUES
	(1, 1, 2, 3, 1.0, 1.5, 2.5, 'plain', 'v', 'c', '\\x00ff', true,
	 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,  "a" : [1, 2, {"x": null}], "b": 2}',
	 '{"b": 1,  "a" : [1, 2, {"x": null}], "b": 2}', '2024-02-29', '23:59:59.999999',
	 '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.789+05:30', '1 year 2 months 3 days 04:05:06.7',
	 '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '{1,2,3}', '{a,"b c",NULL,""}',
	 '{1.5,NaN,-0,Infinity}', '{NaN,2.5}', 'happy', 7, 42, 'mixed'),
	(2, -32768, -2147483648, -9223372036854775808, 'NaN', 'NaN', 'NaN',
	 'Ünïcödé ✓ 日本語 🎉', 'żółć gęślą jaźń', 'żółw', '\\x', false,
	 '00000000-0000-0000-0000-000000000000', '[]', '{}', 'infinity', '00:00',
	 '-infinity', 'infinity', '-178000000 years', '::1', '2001:db8::/32',
	 'ff:ff:ff:ff:ff:ff', '{}', '{}', '{{NaN,1},{2,NaN}}', '{}', 'überglücklich', 1, NULL, ''),
	(3, 32767, 2147483647, 9223372036854775807,
	 '123456789012345678901234567890.123456789012345678901234567890', '-0', '-0',
	 '', '', '', '\\xdeadbeef', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(4, NULL, NULL, NULL, 1.00, 'Infinity', 'Infinity', NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL),
	(5, 0, 0, 0, ('-0.' || repeat('0', 300) || '1')::numeric, '-Infinity', '-Infinity',
	 'tab\there', 'x', 'x', '\\x0102', true, 'ffffffff-ffff-ffff-ffff-ffffffffffff',
	 '"str"', '"str"', '1999-12-31', '12:00:00', '2000-01-01 00:00:00',
	 '2000-01-01 00:00:00+00', '-1 days +02:00', '0.0.0.0/0', '0.0.0.0/0',
	 '00:00:00:00:00:00', ARRAY[NULL, 1]::int[], ARRAY[NULL]::text[],
	 ARRAY['Infinity'::float8 - 'Infinity'::float8, 1], ARRAY[1.17549435e-38, 'NaN']::real[],
	 'sad', 2147483647, -1, 'ß'),
	(6, NULL, NULL, NULL, NULL, ('Infinity'::float4 - 'Infinity'::float4),
	 ('Infinity'::float8 - 'Infinity'::float8), NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL);
});

# Several statements in one transaction.
$node->safe_psql('postgres', qq{
	BEGIN;
	INSERT INTO t (id, c_f8, c_text) VALUES (7, 4.9e-324, 'denormal');
	INSERT INTO t (id, c_f8, c_num) VALUES (8, 1.7976931348623157e308, 1e-100);
	INSERT INTO t (id, c_jsonb, c_json) VALUES (9, '{"z": [1.0, 1.00, 1e2], "a": "\\u00e9"}', '{"z": [1.0, 1.00, 1e2], "a": "\\u00e9"}');
	COMMIT;
});

# COPY FROM (text).
$node->safe_psql('postgres',
	  "COPY t (id, c_text, c_f8, c_date, c_tstz, c_interval, c_af8, c_mood) FROM STDIN;\n"
	  . "10\tcopy é\tNaN\t2021-04-03\t2021-04-03 12:00:00+00\t1 mon\t{NaN,-NaN}\tok\n"
	  . "11\t\\N\t-0\t\\N\t\\N\t\\N\t{}\t\\N\n"
	  . "12\tline\\nbreak\t3.14159265358979\t0001-01-01 BC\t1970-01-01 00:00:00+00\t-00:00:01\t{1}\tsad\n"
	  . "\\.\n");

# COPY FROM (binary) with NaNs carrying sign and payload bits, at the top
# level and inside arrays; the hash must not see those bits.
{
	my $n8a = pack('H*', 'fff8000000000123');
	my $n8b = pack('H*', '7ff0000000000001');
	my $n4a = pack('H*', 'ffc00001');
	my $n4b = pack('H*', '7f800001');
	my $a8 = pack('l> l> N l> l>', 1, 1, 701, 3, 1)
	  . pack('l>', 8) . $n8a . pack('l>', -1) . pack('l>', 8) . $n8b;
	my $a4 = pack('l> l> N l> l> l> l>', 2, 0, 700, 1, 0, 2, 1)
	  . pack('l>', 4) . $n4a . pack('l>', 4) . $n4b;
	copy_in_binary('t', 'id, c_f4, c_f8, c_af8, c_af4', [
		[ pack('l>', 13), $n4a, $n8a, $a8, $a4 ],
		[ pack('l>', 14), $n4b, $n8b, undef, undef ],
	]);
}

# A multi-megabyte TOASTed value.
$node->safe_psql('postgres', q{
	INSERT INTO t (id, c_text, c_bytea)
	SELECT 15, string_agg(md5(g::text) || chr(233 + g % 7), '' ORDER BY g),
	       decode(string_agg(md5((g * 7)::text), '' ORDER BY g), 'hex')
	  FROM generate_series(1, 100000) g;
});
is($node->safe_psql('postgres', 'SELECT octet_length(c_text) > 3000000 FROM t WHERE id = 15'),
	't', 'the TOASTed value is more than 3 MB');

# More single-row transactions, to spread rows over the chains; rolled back
# transactions and savepoints leave no hole.
$node->safe_psql('postgres', "INSERT INTO t (id, c_int4) VALUES ($_, $_)") for 16 .. 25;
$node->safe_psql('postgres', q{
	BEGIN; INSERT INTO t (id) VALUES (900); ROLLBACK;
	BEGIN;
	INSERT INTO t (id) VALUES (26);
	SAVEPOINT s; INSERT INTO t (id) VALUES (901); ROLLBACK TO SAVEPOINT s;
	INSERT INTO t (id) VALUES (27);
	COMMIT;
});

# Two transactions interleaved: each holds its own chain.
{
	my $a = $node->background_psql('postgres');
	my $b = $node->background_psql('postgres');
	$a->query_safe("BEGIN; INSERT INTO t (id, c_text) VALUES (28, 'a1')");
	$b->query_safe("BEGIN; INSERT INTO t (id, c_text) VALUES (29, 'b1')");
	$a->query_safe("INSERT INTO t (id, c_text) VALUES (30, 'a2')");
	$b->query_safe("INSERT INTO t (id, c_text) VALUES (31, 'b2'), (33, 'b3')");
	$b->query_safe('COMMIT');
	$a->query_safe('COMMIT');
	$a->quit;
	$b->quit;
	is($node->safe_psql('postgres', q{
		SELECT string_agg(format('%s:%s', n, ok), ' ' ORDER BY n) FROM (
		  SELECT min(id) AS n,
		         count(DISTINCT audit_chain) = 1
		         AND max(audit_seq) - min(audit_seq) = count(*) - 1 AS ok
		    FROM t WHERE id BETWEEN 28 AND 33 GROUP BY id % 2) s}),
		'28:t 29:t', 'each interleaved transaction wrote consecutive positions of one chain');
	is($node->safe_psql('postgres',
			'SELECT count(DISTINCT audit_chain) FROM t WHERE id BETWEEN 28 AND 33'),
		'2', 'the interleaved transactions wrote different chains');
}

my ($t, $copy, $res) = check_table('t', 'ordinary sessions');

# The table holds NaNs whose bits are not the canonical ones (the binary
# COPY above put them there), so the normalisation is exercised: without
# it, the verifier would disagree on those rows.
{
	my %ci = map { $t->{columns}[$_] => $_ } 0 .. $#{ $t->{columns} };
	my $odd = 0;
	for my $r (@{ $copy->{rows} })
	{
		for my $c (qw(c_f4 c_f8))
		{
			my $v = $r->[ $ci{$c} ];
			$odd++ if defined $v
			  && (length $v == 4
				? ($v ne "\x7f\xc0\0\0" && (unpack('N', $v) & 0x7fffffff) > 0x7f800000)
				: ($v ne "\x7f\xf8\0\0\0\0\0\0"
					&& (unpack('H*', $v) =~ /^[7f]ff/ && unpack('H*', $v) !~ /^[7f]ff0{13}\z/)));
		}
	}
	cmp_ok($odd, '>=', 4, "the table holds $odd top-level NaNs with non-canonical bits");
	my $r = verify(
		columns    => $t->{columns},
		types      => { map { $_ => 'other' } @{ $t->{columns} } },
		table_uuid => $t->{table_uuid},
		excluded   => $t->{excluded},
		chains     => $t->{chains},
		rows       => $copy->{rows});
	my %bad = map { ("$_->{chain}/$_->{seq}" => 1) } grep { $_->{kind} eq 'hash' } @{ $r->{problems} };
	my @ids = sort { $a <=> $b } map { unpack('l>', $_->[ $ci{id} ]) } grep {
		$bad{ unpack('l>', $_->[ $ci{audit_chain} ]) . '/' . unpack('q>', $_->[ $ci{audit_seq} ]) }
	} @{ $copy->{rows} };
	ok((grep { $_ == 13 } @ids) && (grep { $_ == 14 } @ids),
		"without NaN normalisation the rows with ids @ids would not verify");
}

# ------------------------------------------------------------ tamper detection
{
	my @rows = map { [@$_] } @{ $copy->{rows} };
	my %ci = map { $t->{columns}[$_] => $_ } 0 .. $#{ $t->{columns} };
	my ($victim) = grep { ${ $rows[$_] }[ $ci{id} ] eq pack('l>', 2) } 0 .. $#rows;
	my ($vc, $vs) = (unpack('l>', $rows[$victim][ $ci{audit_chain} ]),
		unpack('q>', $rows[$victim][ $ci{audit_seq} ]));

	# One flipped byte in a field.
	my $v = $rows[$victim][ $ci{c_text} ];
	substr($v, 3, 1) = chr(ord(substr($v, 3, 1)) ^ 0x01);
	$rows[$victim][ $ci{c_text} ] = $v;
	my $r = run_verifier($t, \@rows);
	is_deeply([ map { "$_->{chain}/$_->{seq}/$_->{kind}" } @{ $r->{problems} } ],
		["$vc/$vs/hash"], "a flipped byte is reported as a hash mismatch at chain $vc seq $vs")
	  or show_problems($r);

	# A NULL made non-NULL.
	@rows = map { [@$_] } @{ $copy->{rows} };
	$rows[$victim][ $ci{"größe"} ] = pack('l>', 0);
	$r = run_verifier($t, \@rows);
	is_deeply([ map { "$_->{chain}/$_->{seq}/$_->{kind}" } @{ $r->{problems} } ],
		["$vc/$vs/hash"], "a NULL turned into a value is reported at chain $vc seq $vs");

	# Other NaN bits in the hashed value are not a change.
	@rows = map { [@$_] } @{ $copy->{rows} };
	$rows[$victim][ $ci{c_f8} ] = pack('H*', 'fff0000000abcdef');
	$rows[$victim][ $ci{c_f4} ] = pack('H*', 'ff812345');
	$r = run_verifier($t, \@rows);
	is_deeply($r->{problems}, [], 'other NaN bits hash the same');

	# A dropped row leaves a gap.
	my %per_chain;
	$per_chain{ unpack('l>', $_->[ $ci{audit_chain} ]) }++ for @rows;
	my ($gc) = grep { $per_chain{$_} >= 3 } sort { $a <=> $b } keys %per_chain;
	ok(defined $gc, 'some chain has at least 3 rows');
	$gc //= 0;
	@rows = grep {
		!(unpack('l>', $_->[ $ci{audit_chain} ]) == $gc
			&& unpack('q>', $_->[ $ci{audit_seq} ]) == 2)
	} map { [@$_] } @{ $copy->{rows} };
	is(scalar @rows, scalar(@{ $copy->{rows} }) - 1, 'one row dropped');
	$r = run_verifier($t, \@rows);
	ok((grep { $_->{kind} eq 'gap' && $_->{chain} == $gc && $_->{seq} == 3 }
		  @{ $r->{problems} }),
		"a dropped row is reported as a gap at chain $gc seq 3")
	  or show_problems($r);
	ok(!(grep { $_->{kind} eq 'hash' } @{ $r->{problems} }),
		'a dropped row changes no row hash');

	# A row's stored hash replaced: mismatch there, broken link after it.
	@rows = map { [@$_] } @{ $copy->{rows} };
	my ($h) = grep {
		unpack('l>', $rows[$_][ $ci{audit_chain} ]) == $gc
		  && unpack('q>', $rows[$_][ $ci{audit_seq} ]) == 1
	} 0 .. $#rows;
	$rows[$h][ $ci{audit_hash} ] = "\x11" x 32;
	$r = run_verifier($t, \@rows);
	is_deeply([ sort map { "$_->{chain}/$_->{seq}/$_->{kind}" } @{ $r->{problems} } ],
		[ "$gc/1/hash", "$gc/2/prev_hash" ],
		'a replaced audit_hash is reported, and the broken link after it');

	# A duplicated row.
	@rows = (map({ [@$_] } @{ $copy->{rows} }), [ @{ $copy->{rows}[$h] } ]);
	$r = run_verifier($t, \@rows);
	ok((grep { $_->{kind} eq 'duplicate' && $_->{chain} == $gc && $_->{seq} == 1 }
		  @{ $r->{problems} }), 'a duplicated row is reported');

	# A chain number outside 0 .. chains-1.
	$r = verify(
		columns    => $t->{columns},
		types      => $t->{types},
		type_info  => \%type_info,
		table_uuid => $t->{table_uuid},
		excluded   => $t->{excluded},
		chains     => $gc,
		rows       => $copy->{rows});
	ok((grep { $_->{kind} eq 'chain_range' && $_->{chain} == $gc } @{ $r->{problems} }),
		'a chain number out of range is reported');
}

# ------------------------------------------------------ hostile session settings

my $hostile = q{
	SET DateStyle = 'SQL, DMY';
	SET TimeZone = 'Pacific/Chatham';
	SET IntervalStyle = 'sql_standard';
	SET extra_float_digits = -3;
	SET bytea_output = 'escape';
};

# client_encoding UTF8
$node->safe_psql('postgres', $hostile . qq{
	INSERT INTO t ($cols_all) VALUES
	(101, 1, 2, 3, 0.1, 0.1, 0.1, 'hostile ✓ 日本', 'v', 'ö', '\\x00ff', true,
	 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": 1.50}', '{"k": 1.50}', '03/04/2021',
	 '13:14:15', '03/04/2021 13:14:15', '03/04/2021 13:14:15', '1-2 3 4:05:06',
	 '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '{1,2,3}', '{a,b}',
	 '{0.1,NaN}', '{0.1,NaN}', 'überglücklich', 7, 42, 'x'),
	(102, NULL, NULL, NULL, 3.141592653589793238, 3.14159274, 3.141592653589793, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, now()::date, localtime, localtimestamp,
	 now(), '-1-1 -1 -1:00:00', NULL, NULL, NULL, NULL, NULL,
	 ARRAY['Infinity'::float8 - 'Infinity'::float8], NULL, NULL, NULL, NULL, NULL);
	COPY t (id, c_date, c_ts, c_tstz, c_interval, c_f8, c_text) FROM STDIN;
103	31/12/1999	31/12/1999 23:59:59	31/12/1999 23:59:59	+1-0 0 0:00:00	0.3	copy ✓
\\.
});

# client_encoding LATIN1: the script itself is sent in LATIN1.
{
	my $sql = $hostile . qq{
	SET client_encoding = 'LATIN1';
	INSERT INTO t (id, c_text, c_varchar, c_char, c_at, c_date, c_tstz, c_interval, c_f4, c_f8, c_mood, c_json, c_jsonb, "größe")
	VALUES (201, 'Grüße aus Köln, ÿ', 'façade', 'Ñoño', '{"é","à"}', '01/02/2003',
	        '01/02/2003 04:05:06.789', '-0-1 2 3:04:05', 0.2, 0.2, 'überglücklich',
	        '{"ä": "ö"}', '{"ä": "ö"}', 5);
	COPY t (id, c_text, c_tstz) FROM STDIN;
202	copié ½ ©	02/03/2004 05:06:07
\\.
	};
	# "größe" is a column name in the script: it must be LATIN1 as well.
	my $latin1 = Encode::encode('latin1', Encode::decode('UTF-8', $sql), Encode::FB_CROAK);
	$node->safe_psql('postgres', $latin1);
}
is($node->safe_psql('postgres',
		"SELECT c_text FROM t WHERE id = 201"),
	'Grüße aus Köln, ÿ', 'the LATIN1 session stored the intended text');
is($node->safe_psql('postgres',
		"SELECT c_date FROM t WHERE id = 201"),
	'2003-02-01', 'the DMY session stored the intended date');

($t, $copy, $res) = check_table('t', 'after hostile sessions');

# The binary COPY the verifier reads does not depend on the reading
# session's settings either (client_encoding aside, which must be UTF8).
is(psql_raw("\\copy (SELECT * FROM t) TO STDOUT WITH (FORMAT binary)",
		PGOPTIONS => '-c DateStyle=SQL,DMY -c TimeZone=Pacific/Chatham '
		  . '-c IntervalStyle=sql_standard -c extra_float_digits=-3 -c bytea_output=escape'),
	psql_raw("\\copy (SELECT * FROM t) TO STDOUT WITH (FORMAT binary)"),
	'COPY BINARY bytes are the same under hostile settings of the reader');

# A nullable column added later: old rows keep their hashes (NULL is left
# out), new rows hash it.
$node->safe_psql('postgres', q{
	ALTER TABLE t ADD COLUMN c_added text;
	INSERT INTO t (id, c_added) VALUES (301, 'added later'), (302, NULL);
});
check_table('t', 'after ADD COLUMN');

# ------------------------------------------------ composite, domain
#
# Composite values carry their fields' type OIDs; NaN inside them (and in
# arrays inside them) is normalised.  A domain over double precision uses
# its base type's send output.
$node->safe_psql('postgres', q{
	CREATE TYPE pt AS (x double precision, y real, label text, tags double precision[]);
	CREATE DOMAIN dfloat AS double precision;
	CREATE TABLE t2 (id int, c_pt pt, c_dfloat dfloat, note text);
	SELECT hipaa_audit.protect('t2', chains => 2);
	INSERT INTO t2 VALUES
	  (1, ROW(1.5, 'NaN', 'é', '{NaN,1}'), 'NaN', 'a'),
	  (2, ROW('Infinity'::float8 - 'Infinity'::float8, NULL, NULL,
	          ARRAY['Infinity'::float8 - 'Infinity'::float8]), 'Infinity'::float8 - 'Infinity'::float8,
	      NULL),
	  (3, NULL, -0, 'c');
});
# point (like the other geometric types) keeps NaN bits inside a format of its
# own; protect() refuses it rather than hash something pg_restore changes.
{
	my ($rc, $out, $err) = $node->psql('postgres',
		q{CREATE TABLE t_point (p point); SELECT hipaa_audit.protect('t_point')});
	like($err, qr/cannot protect public\.t_point: column "p" has type point/,
		'protect() refuses a point column');
}
{
	my $pt = $node->safe_psql('postgres', "SELECT 'pt'::regtype::oid");
	my $n8 = pack('H*', 'fff8000000000123');
	my $n4 = pack('H*', 'ffc00001');
	my $arr = pack('l> l> N l> l>', 1, 0, 701, 2, 1)
	  . pack('l>', 8) . $n8 . pack('l>', 8) . pack('H*', '7ff4000000000000');
	my $rec = pack('l>', 4)
	  . pack('N l>', 701, 8) . $n8
	  . pack('N l>', 700, 4) . $n4
	  . pack('N l>', 25, 2) . 'ok'
	  . pack('N l>', 1022, length $arr) . $arr;
	copy_in_binary('t2', 'id, c_pt, c_dfloat', [
		[ pack('l>', 4), $rec, $n8 ],
	]);
}
check_table('t2', 'composite, domain');

$node->stop;
done_testing();
