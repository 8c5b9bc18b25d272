# The test vectors of docs/encoding.md ("## Test vectors"), and the generator
# of that section.
#
# The value bytes of every field are written here by hand, from PostgreSQL's
# documented binary send formats (int4send, textsend, numeric_send,
# float8send, array_send, timestamptz_send, inet_send); M and the hashes are
# then built with IndependentVerifier.pm.  Nothing here comes from the
# extension, so the vectors are independent of its C code.
# test/t/011_test_vectors.pl checks that PostgreSQL's own send output of the
# same rows is byte for byte what is written here, and that the extension's
# verify() accepts the hashes.
#
# Regenerate the documentation section (it is printed, from "## Test
# vectors" to the end of the file):
#
#   perl -I test/t test/t/TestVectors.pm
#
# (a module, not a .pl script, so that "prove test/t/*.pl" does not run it).
package TestVectors;

use strict;
use warnings;
use Digest::SHA ();
use Time::Local ();
use IndependentVerifier ();

our $TABLE_UUID = '00000000-0000-4000-8000-000000000001';
our $CHAINS     = 2;

# The user columns of the vector table, then the chain columns protect()
# adds, in table (attnum) order.
our @USER_COLUMNS = (
	[ id          => 'integer' ],
	[ actor       => 'text' ],
	[ patient_mrn => 'text' ],
	[ amount      => 'numeric' ],
	[ score       => 'double precision' ],
	[ tags        => 'text[]' ],
	[ note        => 'text' ],
);
our @CHAIN_COLUMNS = (
	[ audit_chain        => 'integer' ],
	[ audit_seq          => 'bigint' ],
	[ audit_at           => 'timestamptz' ],
	[ audit_session_role => 'text' ],
	[ audit_role         => 'text' ],
	[ audit_client       => 'inet' ],
	[ audit_prev_hash    => 'bytea' ],
	[ audit_hash         => 'bytea' ],
);

# --------------------------------------------------- hand-written send output

sub int4_bytes { return pack('l>', $_[0]) }
sub int8_bytes { return pack('q>', $_[0]) }

# textsend: the UTF-8 bytes, no length, no terminator.
sub text_bytes
{
	my ($s) = @_;
	utf8::encode($s);
	return $s;
}

# numeric_send: int16 ndigits, int16 weight, uint16 sign (0x0000 positive,
# 0x4000 negative), int16 dscale, then ndigits base-10000 digits (int16),
# the first one worth 10000^weight.  Leading and trailing zero digits are
# not stored; zero has no digits and weight 0.  Finite decimals only.
sub numeric_bytes
{
	my ($s) = @_;
	my ($neg, $int, $frac) = $s =~ /^(-?)(\d+)(?:\.(\d*))?\z/
	  or die "numeric_bytes: not a plain decimal: $s\n";
	$frac //= '';
	my $dscale = length $frac;
	$int = ('0' x ((4 - length($int) % 4) % 4)) . $int;
	$frac .= '0' x ((4 - length($frac) % 4) % 4);
	my @d = map { 0 + $_ } ($int =~ /(\d{4})/g), ($frac =~ /(\d{4})/g);
	my $weight = length($int) / 4 - 1;
	while (@d && $d[0] == 0) { shift @d; $weight--; }
	pop @d while @d && $d[-1] == 0;
	$weight = 0 unless @d;
	my $sign = ($neg && @d) ? 0x4000 : 0;
	return pack('s> s> n s>', scalar @d, $weight, $sign, $dscale) . pack('s>*', @d);
}

# float8send: IEEE 754 binary64, big-endian.  Given as hex so that NaN and
# -0 are exactly what is meant.
sub float8_hex_bytes { return pack('H16', $_[0]) }

# array_send of a one-dimensional text[] with lower bound 1 (or of an empty
# array): int32 ndim, int32 has-NULL flag, uint32 element type OID (25 =
# text), per dimension int32 size and int32 lower bound, per element int32
# length (-1 for NULL) and the element's textsend bytes.
sub text_array_bytes
{
	my (@el) = @_;
	my $hasnull = (grep { !defined } @el) ? 1 : 0;
	return pack('l> l> N', 0, 0, 25) unless @el;
	my $b = pack('l> l> N l> l>', 1, $hasnull, 25, scalar @el, 1);
	for my $e (@el)
	{
		if (defined $e) { my $t = text_bytes($e); $b .= pack('l>', length $t) . $t; }
		else            { $b .= pack('l>', -1); }
	}
	return $b;
}

# timestamptz_send: int64 microseconds since 2000-01-01 00:00:00 UTC.
sub timestamptz_bytes
{
	my ($y, $mo, $d, $h, $mi, $s, $us) = @_;
	my $epoch = Time::Local::timegm(0, $mi, $h, $d, $mo - 1, $y);
	$epoch += $s;    # (timegm would refuse s = 60; not needed here)
	return pack('q>', ($epoch - 946684800) * 1_000_000 + $us);
}

# inet_send: uint8 family (2 = IPv4, 3 = IPv6: PostgreSQL's PGSQL_AF_INET
# and PGSQL_AF_INET6), uint8 netmask bits, uint8 is_cidr (0 for inet),
# uint8 address length (4 or 16), the address bytes.
sub inet4_bytes
{
	my (@o) = split /\./, $_[0];
	return pack('C4 C4', 2, 32, 0, 4, @o);
}

sub inet6_bytes
{
	my ($hex) = @_;    # the 16 address bytes, as 32 hex digits
	return pack('C4', 3, 128, 0, 16) . pack('H32', $hex);
}

# ---------------------------------------------------------------- the vectors

# Per vector: the header, and per column the SQL literal (undef: NULL) and,
# when not NULL, its send bytes.  prev => 'A' links to vector A's hash.
sub vectors
{
	return (
		{
			name  => 'A',
			chain => 0,
			seq   => 1,
			prev  => undef,    # seq 1: 32 zero bytes
			values => [
				[ id          => '1',            int4_bytes(1) ],
				[ actor       => "'Zo\x{eb} M\x{fc}ller'", text_bytes("Zo\x{eb} M\x{fc}ller") ],
				[ patient_mrn => "'MRN-0042'",   text_bytes('MRN-0042') ],
				[ amount      => '1234.50',      numeric_bytes('1234.50') ],
				[ score       => '98.6',         float8_hex_bytes('4058a66666666666') ],
				[ tags        => "'{flu,\"ICU \x{2713}\"}'", text_array_bytes('flu', "ICU \x{2713}") ],
				[ note        => "'first visit'", text_bytes('first visit') ],
				[ audit_at    => "'2026-01-02 03:04:05.678901+00'",
					timestamptz_bytes(2026, 1, 2, 3, 4, 5, 678901) ],
				[ audit_session_role => "'alice'",      text_bytes('alice') ],
				[ audit_role         => "'app_writer'", text_bytes('app_writer') ],
				[ audit_client       => "'10.20.0.15'", inet4_bytes('10.20.0.15') ],
			],
		},
		{
			name  => 'B',
			chain => 0,
			seq   => 2,
			prev  => 'A',
			values => [
				[ id          => '2',            int4_bytes(2) ],
				[ actor       => "'dr.house'",   text_bytes('dr.house') ],
				[ patient_mrn => "'MRN-0042'",   text_bytes('MRN-0042') ],
				[ amount      => '-0.05',        numeric_bytes('-0.05') ],
				[ score       => "'NaN'",        float8_hex_bytes('7ff8000000000000') ],
				[ tags        => "'{}'",         text_array_bytes() ],
				[ note        => undef ],
				[ audit_at    => "'2026-01-02 03:04:06+00'",
					timestamptz_bytes(2026, 1, 2, 3, 4, 6, 0) ],
				[ audit_session_role => "'alice'", text_bytes('alice') ],
				[ audit_role         => "'alice'", text_bytes('alice') ],
				[ audit_client       => undef ],
			],
		},
		{
			name  => 'C',
			chain => 1,
			seq   => 1,
			prev  => undef,
			values => [
				[ id          => '3',            int4_bytes(3) ],
				[ actor       => "''",           text_bytes('') ],
				[ patient_mrn => "'MRN-9001'",   text_bytes('MRN-9001') ],
				[ amount      => '0.00',         numeric_bytes('0.00') ],
				[ score       => "'-0'",         float8_hex_bytes('8000000000000000') ],
				[ tags        => "'{NULL,ok}'",  text_array_bytes(undef, 'ok') ],
				[ note        => "'done \x{1f389}'", text_bytes("done \x{1f389}") ],
				[ audit_at    => "'2026-01-02 03:04:07.5+00'",
					timestamptz_bytes(2026, 1, 2, 3, 4, 7, 500000) ],
				[ audit_session_role => "'bob'",         text_bytes('bob') ],
				[ audit_role         => "'app_writer'",  text_bytes('app_writer') ],
				[ audit_client       => "'2001:db8::1'",
					inet6_bytes('20010db8000000000000000000000001') ],
			],
		},
	);
}

my %TYPE = map { @$_ } @USER_COLUMNS, @CHAIN_COLUMNS;

# The vectors with everything computed: per vector uuid, chain, seq, prev
# (bytes), fields [ [ name, sql, type, canonical bytes or undef ], ... ], m
# (bytes), hash (bytes).
sub computed
{
	my %hash_of;
	my @out;
	my $uuid = IndependentVerifier::uuid_to_bytes($TABLE_UUID);
	for my $v (vectors())
	{
		my $prev =
		  defined $v->{prev}
		  ? ($hash_of{ $v->{prev} } // die "vector $v->{name}: $v->{prev} not computed yet\n")
		  : $IndependentVerifier::ZERO_HASH;
		my (@fields, @m_fields);
		for my $f (@{ $v->{values} })
		{
			my ($name, $sql, $bytes) = @$f;
			my $canon =
			  defined $bytes
			  ? IndependentVerifier::canonical_value($bytes, $TYPE{$name})
			  : undef;
			push @fields, [ $name, $sql, $TYPE{$name}, $canon ];
			push @m_fields, [ $name, $canon ] if defined $canon;
		}
		my $m = IndependentVerifier::encode_row(
			uuid_bytes => $uuid,
			chain_be32 => int4_bytes($v->{chain}),
			seq_be64   => int8_bytes($v->{seq}),
			prev_hash  => $prev,
			fields     => \@m_fields);
		my $h = Digest::SHA::sha256($m);
		$hash_of{ $v->{name} } = $h;
		push @out, {
			name   => $v->{name},
			chain  => $v->{chain},
			seq    => $v->{seq},
			prev_name => $v->{prev},
			uuid   => $uuid,
			prev   => $prev,
			fields => \@fields,
			m      => $m,
			hash   => $h,
		};
	}
	return @out;
}

# --------------------------------------------------------------- the section

sub wrap_hex
{
	my ($bytes, $width) = @_;
	$width //= 76;
	my $h = unpack('H*', $bytes);
	return join "\n", ($h =~ /(.{1,$width})/g);
}

sub markdown
{
	my @v = computed();
	my $out = <<"EOT";
## Test vectors

These rows were built from the specification alone: the value bytes are
written by hand from PostgreSQL's binary send formats, and `M` and the hashes
computed by the independent verifier (`test/t/TestVectors.pm` generates this
section; `perl -I test/t test/t/TestVectors.pm` prints it).
`test/t/011_test_vectors.pl` inserts the rows into a real protected table,
checks that PostgreSQL's `COPY ... (FORMAT binary)` output of them is exactly
the value bytes below, and that `hipaa_audit.verify()` accepts the hashes.

All vectors belong to one table, protected with `chains => 2`, whose
`table_uuid` is `$TABLE_UUID`. Its columns, in order:

| # | column | type |
| --- | --- | --- |
EOT
	my $i = 0;
	$out .= sprintf "| %d | `%s` | `%s` |\n", ++$i, @$_ for @USER_COLUMNS, @CHAIN_COLUMNS;
	$out .= <<'EOT';

(Columns 1-7 are the table's own; 8-15 were added by `protect()`.) The
included columns are therefore `id` ... `note`, `audit_at`,
`audit_session_role`, `audit_role` and `audit_client`, in that order. All
hex is lower case; a long hex string is wrapped over several lines and is
meant without the line breaks. Every `M` starts with the domain prefix
`68697061615f61756469742f726f772f763100` and the table identity
`00000000000040008000000000000001`.
EOT
	for my $v (@v)
	{
		my $prev_desc =
		  defined $v->{prev_name}
		  ? "`audit_hash` of vector $v->{prev_name}"
		  : '32 zero bytes (position 1)';
		my $nonnull = grep { defined $_->[3] } @{ $v->{fields} };
		$out .= "\n### Vector $v->{name}: chain $v->{chain}, seq $v->{seq}\n\n";
		$out .= "| header part | value | bytes (hex) |\n| --- | --- | --- |\n";
		$out .= sprintf "| table identity | `%s` | `%s` |\n", $TABLE_UUID, unpack('H*', $v->{uuid});
		$out .= sprintf "| `audit_chain` | %d | `%s` |\n", $v->{chain}, unpack('H*', int4_bytes($v->{chain}));
		$out .= sprintf "| `audit_seq` | %d | `%s` |\n", $v->{seq}, unpack('H*', int8_bytes($v->{seq}));
		$out .= sprintf "| `audit_prev_hash` | %s | `%s` |\n", $prev_desc, unpack('H*', $v->{prev});
		$out .= "\nThe included columns, in order ($nonnull not NULL, each giving one field"
		  . " entry of `M`):\n\n";
		$out .= "| column | SQL value | length | value bytes (hex) |\n| --- | --- | --- | --- |\n";
		for my $f (@{ $v->{fields} })
		{
			my ($name, $sql, $type, $bytes) = @$f;
			my $lit = defined $sql ? "`$sql`" : 'NULL';
			$lit = "`${sql}::$type`" if defined $sql && $name eq 'tags';
			if (defined $bytes)
			{
				$out .= sprintf "| `%s` | %s | %d | %s |\n", $name, $lit, length $bytes,
				  length $bytes ? '`' . unpack('H*', $bytes) . '`' : '(no bytes)';
			}
			else
			{
				$out .= sprintf "| `%s` | NULL | - | (left out) |\n", $name;
			}
		}
		$out .= sprintf "\n`M` of vector %s (%d bytes):\n\n```\n%s\n```\n\n", $v->{name},
		  length $v->{m}, wrap_hex($v->{m});
		$out .= sprintf "`audit_hash` of vector %s = SHA-256(M) =\n`%s`\n", $v->{name},
		  unpack('H*', $v->{hash});
	}
	utf8::encode($out);
	return $out;
}

# Parse the section back out of the text of docs/encoding.md: per vector
# (in document order) { name, chain, seq, uuid_hex, chain_hex, seq_hex,
# prev_hex, fields => [ [ name, hex or undef ], ... ], m_hex, hash_hex }.
sub parse_doc
{
	my ($text) = @_;
	my ($sec) = $text =~ /^## Test vectors\n(.*?)(?=^## |\z)/ms
	  or die "no \"## Test vectors\" section\n";
	my @v;
	for my $part (split /^### /m, $sec)
	{
		next unless $part =~ /^Vector (\w+): chain (\d+), seq (\d+)\n/;
		my %v = (name => $1, chain => $2, seq => $3, fields => []);
		($v{uuid_hex})  = $part =~ /^\| table identity \| [^|]+ \| `([0-9a-f]+)` \|$/m;
		($v{chain_hex}) = $part =~ /^\| `audit_chain` \| [^|]+ \| `([0-9a-f]+)` \|$/m;
		($v{seq_hex})   = $part =~ /^\| `audit_seq` \| [^|]+ \| `([0-9a-f]+)` \|$/m;
		($v{prev_hex})  = $part =~ /^\| `audit_prev_hash` \| [^|]+ \| `([0-9a-f]+)` \|$/m;
		while ($part =~
			/^\| `(\w+)` \| .* \| (?:\d+ \| (?:`([0-9a-f]+)`|(\(no bytes\)))|- \| \(left out\)) \|$/mg)
		{
			push @{ $v{fields} }, [ $1, defined $3 ? '' : $2 ];
		}
		my ($m) = $part =~ /^`M` of vector \w+ \(\d+ bytes\):\n\n```\n([0-9a-f\n]+)```$/m;
		($v{m_hex} = $m // '') =~ s/\n//g;
		($v{hash_hex}) = $part =~ /^`audit_hash` of vector \w+ = SHA-256\(M\) =\n`([0-9a-f]{64})`$/m;
		push @v, \%v;
	}
	return @v;
}

print markdown() unless caller;

1;
