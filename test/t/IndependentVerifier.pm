# An independent verifier of hipaa_audit's hash chains, written from
# docs/encoding.md alone.  It shares no code with the extension: it reads a
# table's rows as the bytes of COPY ... (FORMAT binary) (taken with
# client_encoding = UTF8), rebuilds each row's canonical encoding M, hashes it
# with SHA-256 and walks the chains.
#
# Pure Perl: core modules and Digest::SHA only.
#
#   my $copy = IndependentVerifier::parse_copy_binary($bytes);
#   my $res  = IndependentVerifier::verify(
#       columns    => \@names,            # COPY column list, table order
#       types      => \%name_to_oid,      # type OID (or name) of each column
#       type_info  => \%oid_to_kind,      # optional: from type_info_sql()
#       table_uuid => '0f1e2d3c-...',     # hipaa_audit.registry.table_uuid
#       excluded   => \@generated_cols,   # stored generated columns
#       chains     => 4,                  # optional: check 0 <= chain < chains
#       rows       => $copy->{rows},      # or copy => $bytes
#   );
#   $res->{problems}      # [ { chain, seq, kind, detail }, ... ]
#   $res->{rows_checked}  # number of rows
#   $res->{hashes}        # { "chain/seq" => recomputed hash, hex }
#   $res->{rows}          # per input row: { index, chain, seq, hash, stored }
package IndependentVerifier;

use strict;
use warnings;
use Digest::SHA ();
use Exporter 'import';

our @EXPORT_OK = qw(parse_copy_binary build_copy_binary uuid_to_bytes
  canonical_value encode_row verify type_info_sql kind_of);

our $DOMAIN_PREFIX = "hipaa_audit/row/v1\0";    # 18 ASCII bytes + NUL
our $ZERO_HASH     = "\0" x 32;
our @HEADER_COLUMNS = qw(audit_chain audit_seq audit_prev_hash audit_hash);

my $COPY_SIGNATURE = "PGCOPY\n\377\r\n\0";

my $CANON_NAN4 = "\x7f\xc0\x00\x00";
my $CANON_NAN8 = "\x7f\xf8\x00\x00\x00\x00\x00\x00";

# What the verifier knows without a catalog: the two float types, their
# array types, and the anonymous record type.  Anything else comes from the
# caller's type_info (see type_info_sql) or is used as sent.
my %BUILTIN_KIND = (
	700  => 'float4',
	701  => 'float8',
	1021 => 'array',        # _float4
	1022 => 'array',        # _float8
	2249 => 'composite',    # record
);

# A query giving, for every type of the database, how the verifier must
# treat its binary form: 'float4', 'float8', 'array' (array_send format),
# 'composite' (record_send format) or 'other' (used as sent).  Domains are
# resolved to their base type, since they use its send output.
sub type_info_sql
{
	return q{
WITH RECURSIVE d(oid, base) AS (
    SELECT oid, oid FROM pg_catalog.pg_type WHERE typtype <> 'd'
  UNION ALL
    SELECT t.oid, d.base FROM pg_catalog.pg_type t JOIN d ON t.typbasetype = d.oid
     WHERE t.typtype = 'd'
)
SELECT d.oid,
       CASE WHEN b.oid = 700 THEN 'float4'
            WHEN b.oid = 701 THEN 'float8'
            WHEN b.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
                 AND b.typsend = 'pg_catalog.array_send'::pg_catalog.regproc THEN 'array'
            WHEN b.typtype = 'c' OR b.oid = 2249 THEN 'composite'
            ELSE 'other' END
  FROM d JOIN pg_catalog.pg_type b ON b.oid = d.base
 ORDER BY 1};
}

# Kind of a type given as an OID (looked up in $type_info, then the built-in
# table) or as a name ('real', 'float8', 'float8[]', 'composite', ...).
sub kind_of
{
	my ($type, $type_info) = @_;
	return 'other' unless defined $type;
	if ($type =~ /^\d+\z/)
	{
		return $type_info->{$type}
		  if $type_info && defined $type_info->{$type};
		return $BUILTIN_KIND{$type} // 'other';
	}
	my $t = lc $type;
	$t =~ s/^\s+|\s+\z//g;
	$t =~ s/^pg_catalog\.//;
	return 'array' if $t =~ /\[\]\z/ || $t =~ /^_/ || $t eq 'array';
	return 'float4' if $t eq 'real' || $t eq 'float4';
	return 'float8' if $t eq 'double precision' || $t eq 'float8';
	return 'composite' if $t eq 'composite' || $t eq 'record';
	return 'other';
}

# ---------------------------------------------------------------- COPY BINARY

# Parse the whole output of COPY ... TO STDOUT (FORMAT binary).  Returns
# { flags, header_extension, rows => [ [ bytes or undef, ... ], ... ] }.
# Dies on anything malformed.
sub parse_copy_binary
{
	my ($buf) = @_;
	my $len = length $buf;
	die "COPY BINARY: input too short\n" if $len < 19;
	die "COPY BINARY: bad signature\n"
	  unless substr($buf, 0, 11) eq $COPY_SIGNATURE;
	my ($flags, $extlen) = unpack('N N', substr($buf, 11, 8));
	die "COPY BINARY: OIDs included (flag bit 16), not supported\n"
	  if $flags & (1 << 16);
	die "COPY BINARY: unknown critical flags $flags\n"
	  if $flags & 0xffff0000;
	my $pos = 19;
	die "COPY BINARY: header extension runs past the end\n"
	  if $pos + $extlen > $len;
	my $ext = substr($buf, $pos, $extlen);
	$pos += $extlen;

	my @rows;
	my $trailer = 0;
	while ($pos + 2 <= $len)
	{
		my $nf = unpack('s>', substr($buf, $pos, 2));
		$pos += 2;
		if ($nf == -1)
		{
			$trailer = 1;
			last;
		}
		die "COPY BINARY: negative field count $nf at byte "
		  . ($pos - 2) . "\n"
		  if $nf < 0;
		my @f;
		for (1 .. $nf)
		{
			die "COPY BINARY: truncated field length at byte $pos\n"
			  if $pos + 4 > $len;
			my $fl = unpack('l>', substr($buf, $pos, 4));
			$pos += 4;
			if ($fl == -1)
			{
				push @f, undef;
				next;
			}
			die "COPY BINARY: bad field length $fl at byte " . ($pos - 4) . "\n"
			  if $fl < 0;
			die "COPY BINARY: field runs past the end at byte $pos\n"
			  if $pos + $fl > $len;
			push @f, substr($buf, $pos, $fl);
			$pos += $fl;
		}
		push @rows, \@f;
	}
	die "COPY BINARY: no trailer\n" unless $trailer;
	die "COPY BINARY: " . ($len - $pos) . " bytes after the trailer\n"
	  if $pos != $len;
	return { flags => $flags, header_extension => $ext, rows => \@rows };
}

# The inverse, for building COPY ... FROM (FORMAT binary) input in tests.
sub build_copy_binary
{
	my ($rows) = @_;
	my $out = $COPY_SIGNATURE . pack('N N', 0, 0);
	foreach my $r (@$rows)
	{
		$out .= pack('s>', scalar @$r);
		foreach my $f (@$r)
		{
			$out .= defined $f ? pack('l>', length $f) . $f : pack('l>', -1);
		}
	}
	return $out . pack('s>', -1);
}

# ---------------------------------------------------------- canonical values

sub _nan4
{
	my ($b) = @_;
	my $u = unpack('N', $b);
	return ($u & 0x7f800000) == 0x7f800000 && ($u & 0x007fffff) != 0;
}

sub _nan8
{
	my ($b) = @_;
	my ($hi, $lo) = unpack('N N', $b);
	return ($hi & 0x7ff00000) == 0x7ff00000
	  && (($hi & 0x000fffff) != 0 || $lo != 0);
}

# Canonical bytes of one non-NULL value whose type is $type (an OID, a name,
# or directly a kind).  Dies with a message when an array or composite value
# cannot be parsed.
sub canonical_value
{
	my ($bytes, $type, $type_info, $depth) = @_;
	$depth //= 0;
	die "values nested too deeply\n" if $depth > 64;
	my $kind =
	  (defined $type && $type =~ /^(?:float4|float8|array|composite|other)\z/)
	  ? $type
	  : kind_of($type, $type_info);

	if ($kind eq 'float4')
	{
		die "float4 value of " . length($bytes) . " bytes\n"
		  unless length($bytes) == 4;
		return _nan4($bytes) ? $CANON_NAN4 : $bytes;
	}
	if ($kind eq 'float8')
	{
		die "float8 value of " . length($bytes) . " bytes\n"
		  unless length($bytes) == 8;
		return _nan8($bytes) ? $CANON_NAN8 : $bytes;
	}
	return _canonical_array($bytes, $type_info, $depth) if $kind eq 'array';
	return _canonical_record($bytes, $type_info, $depth)
	  if $kind eq 'composite';
	return $bytes;
}

# array_send: int32 ndim, int32 has-null flag, uint32 element type OID, per
# dimension int32 size + int32 lower bound, per element int32 length (-1 for
# NULL) + bytes.
sub _canonical_array
{
	my ($b, $type_info, $depth) = @_;
	my $len = length $b;
	die "array value shorter than its header\n" if $len < 12;
	my ($ndim, $hasnull, $elem) = unpack('l> l> N', $b);
	die "array with $ndim dimensions\n" if $ndim < 0 || $ndim > 64;
	my $pos = 12;
	die "array dimensions run past the end\n" if $pos + 8 * $ndim > $len;
	my $nitems = $ndim ? 1 : 0;
	for my $d (1 .. $ndim)
	{
		my ($size, $lb) = unpack('l> l>', substr($b, $pos, 8));
		die "array dimension of size $size\n" if $size < 0;
		$nitems *= $size;
		$pos += 8;
	}
	my $out = substr($b, 0, $pos);
	for (1 .. $nitems)
	{
		die "array element length runs past the end\n" if $pos + 4 > $len;
		my $el = unpack('l>', substr($b, $pos, 4));
		$pos += 4;
		if ($el == -1)
		{
			$out .= pack('l>', -1);
			next;
		}
		die "array element of length $el\n" if $el < 0;
		die "array element runs past the end\n" if $pos + $el > $len;
		my $v =
		  canonical_value(substr($b, $pos, $el), $elem, $type_info, $depth + 1);
		$pos += $el;
		$out .= pack('l>', length $v) . $v;
	}
	die "array value has " . ($len - $pos) . " trailing bytes\n"
	  if $pos != $len;
	return $out;
}

# record_send: int32 field count, then per field uint32 type OID, int32
# length (-1 for NULL), bytes.
sub _canonical_record
{
	my ($b, $type_info, $depth) = @_;
	my $len = length $b;
	die "composite value shorter than its header\n" if $len < 4;
	my $n = unpack('l>', $b);
	die "composite with $n fields\n" if $n < 0;
	my $pos = 4;
	my $out = substr($b, 0, 4);
	for (1 .. $n)
	{
		die "composite field header runs past the end\n" if $pos + 8 > $len;
		my ($oid, $fl) = unpack('N l>', substr($b, $pos, 8));
		$pos += 8;
		if ($fl == -1)
		{
			$out .= pack('N l>', $oid, -1);
			next;
		}
		die "composite field of length $fl\n" if $fl < 0;
		die "composite field runs past the end\n" if $pos + $fl > $len;
		my $v =
		  canonical_value(substr($b, $pos, $fl), $oid, $type_info, $depth + 1);
		$pos += $fl;
		$out .= pack('N l>', $oid, length $v) . $v;
	}
	die "composite value has " . ($len - $pos) . " trailing bytes\n"
	  if $pos != $len;
	return $out;
}

# ------------------------------------------------------------------ encoding

sub uuid_to_bytes
{
	my ($text) = @_;
	my $h = lc $text;
	$h =~ s/[{}\-]//g;
	die "not a uuid: $text\n" unless $h =~ /^[0-9a-f]{32}\z/;
	return pack('H32', $h);
}

# M for one row.  $chain_be32 and $seq_be64 are the 4 and 8 header bytes
# (the int4/int8 send output of audit_chain and audit_seq is exactly the
# big-endian form the spec asks for); $fields is [ [ name, canonical value ],
# ... ] for the included non-NULL columns, in column order.
sub encode_row
{
	my (%a) = @_;
	my $m =
	    $DOMAIN_PREFIX
	  . $a{uuid_bytes}
	  . $a{chain_be32}
	  . $a{seq_be64}
	  . $a{prev_hash};
	foreach my $f (@{ $a{fields} })
	{
		my ($name, $value) = @$f;
		utf8::encode($name) if utf8::is_utf8($name);
		$m .= pack('N', length $name) . $name . pack('N', length $value) . $value;
	}
	return $m;
}

# ------------------------------------------------------------------ verifier

sub verify
{
	my (%a) = @_;
	my @cols = @{ $a{columns} or die "verify: columns required\n" };
	my $types     = $a{types}     || {};
	my $type_info = $a{type_info} || {};
	my $uuid      = uuid_to_bytes($a{table_uuid}
		  // die "verify: table_uuid required\n");
	my $rows = $a{rows};
	$rows = parse_copy_binary($a{copy})->{rows} if !$rows && defined $a{copy};
	die "verify: rows or copy required\n" unless $rows;

	my %excluded = map { $_ => 1 } @HEADER_COLUMNS, @{ $a{excluded} || [] };
	my %idx;
	for my $i (0 .. $#cols)
	{
		die "verify: column $cols[$i] listed twice\n" if exists $idx{ $cols[$i] };
		$idx{ $cols[$i] } = $i;
	}
	for my $h (@HEADER_COLUMNS)
	{
		die "verify: column $h missing from the column list\n"
		  unless exists $idx{$h};
	}
	my @included = grep { !$excluded{ $cols[$_] } } 0 .. $#cols;
	my @inc_names = map {
		my $n = $cols[$_];
		utf8::encode($n) if utf8::is_utf8($n);
		$n
	} @included;
	# A type_info that does not know a column's type was read before the
	# type was created: refuse it rather than hash the column as 'other'.
	if (%$type_info)
	{
		for my $i (@included)
		{
			my $ty = $types->{ $cols[$i] };
			die "verify: type $ty of column $cols[$i] is not in type_info\n"
			  if defined $ty
			  && $ty =~ /^\d+\z/
			  && !defined $type_info->{$ty}
			  && !defined $BUILTIN_KIND{$ty};
		}
	}
	my @inc_kind = map { kind_of($types->{ $cols[$_] }, $type_info) } @included;

	my (@problems, @out, %by_chain, %hashes);
	my $problem = sub {
		my ($chain, $seq, $kind, $detail) = @_;
		push @problems,
		  { chain => $chain, seq => $seq, kind => $kind, detail => $detail };
	};

  ROW:
	for my $ri (0 .. $#$rows)
	{
		my $r = $rows->[$ri];
		if (@$r != @cols)
		{
			$problem->(undef, undef, 'field_count',
				"row $ri has " . scalar(@$r) . " fields, expected " . scalar(@cols));
			next ROW;
		}
		my ($cb, $sb, $prev, $stored) =
		  map { $r->[ $idx{$_} ] } @HEADER_COLUMNS;
		my $chain = (defined $cb && length $cb == 4) ? unpack('l>', $cb) : undef;
		my $seq   = (defined $sb && length $sb == 8) ? unpack('q>', $sb) : undef;
		if (!defined $chain || !defined $seq)
		{
			$problem->($chain, $seq, 'null_header',
				"row $ri: audit_chain or audit_seq is NULL or malformed");
			next ROW;
		}
		my $rec = {
			index  => $ri,
			chain  => $chain,
			seq    => $seq,
			prev   => $prev,
			stored => $stored,
		};
		push @out, $rec;
		push @{ $by_chain{$chain} }, $rec;

		for ([ 'audit_prev_hash', $prev ], [ 'audit_hash', $stored ])
		{
			my ($n, $v) = @$_;
			$problem->($chain, $seq, 'bad_length',
				"$n is " . (defined $v ? length($v) . ' bytes' : 'NULL'))
			  unless defined $v && length $v == 32;
		}
		if (defined $a{chains} && ($chain < 0 || $chain >= $a{chains}))
		{
			$problem->($chain, $seq, 'chain_range',
				"audit_chain $chain outside 0 .. " . ($a{chains} - 1));
		}

		my @fields;
		for my $k (0 .. $#included)
		{
			my $v = $r->[ $included[$k] ];
			next unless defined $v;
			my $cv = eval { canonical_value($v, $inc_kind[$k], $type_info) };
			if (!defined $cv)
			{
				my $e = $@;
				chomp $e;
				$problem->($chain, $seq, 'malformed_value',
					"column $cols[$included[$k]]: $e");
				$cv = $v;
			}
			push @fields, [ $inc_names[$k], $cv ];
		}
		my $m = encode_row(
			uuid_bytes => $uuid,
			chain_be32 => $cb,
			seq_be64   => $sb,
			prev_hash  => $prev // '',
			fields     => \@fields);
		$rec->{hash_bytes} = Digest::SHA::sha256($m);
		$rec->{hash}       = unpack('H*', $rec->{hash_bytes});
		$rec->{stored_hex} = defined $stored ? unpack('H*', $stored) : undef;
		$rec->{m_length}   = length $m;
		$hashes{"$chain/$seq"} = $rec->{hash} unless exists $hashes{"$chain/$seq"};
		if (!defined $stored || $stored ne $rec->{hash_bytes})
		{
			$problem->($chain, $seq, 'hash',
				"stored " . ($rec->{stored_hex} // 'NULL')
				  . ", recomputed $rec->{hash}");
		}
	}

	for my $chain (sort { $a <=> $b } keys %by_chain)
	{
		my @c =
		  sort { $a->{seq} <=> $b->{seq} || $a->{index} <=> $b->{index} }
		  @{ $by_chain{$chain} };
		my $expect = 1;
		my $before;    # previous row of the chain, in audit_seq order
		for my $rec (@c)
		{
			my $seq = $rec->{seq};
			if ($before && $seq == $before->{seq})
			{
				$problem->($chain, $seq, 'duplicate', "audit_seq $seq appears more than once");
			}
			elsif ($seq != $expect)
			{
				$problem->($chain, $seq, 'gap', "expected audit_seq $expect, found $seq");
			}
			my $want = $before ? $before->{stored} : $ZERO_HASH;
			if (!defined $rec->{prev} || !defined $want || $rec->{prev} ne $want)
			{
				$problem->($chain, $seq, 'prev_hash',
					'audit_prev_hash '
					  . (defined $rec->{prev} ? unpack('H*', $rec->{prev}) : 'NULL')
					  . ' is not '
					  . ($before ? "audit_hash of seq $before->{seq}" : '32 zero bytes')
					  . ' '
					  . (defined $want ? unpack('H*', $want) : 'NULL'));
			}
			$expect = $seq + 1;
			$before = $rec;
		}
	}

	my @rows_out = map {
		{
			index  => $_->{index},
			chain  => $_->{chain},
			seq    => $_->{seq},
			hash   => $_->{hash},
			stored => $_->{stored_hex},
			m_length => $_->{m_length},
		}
	} @out;
	return {
		rows_checked => scalar @$rows,
		problems     => \@problems,
		hashes       => \%hashes,
		rows         => \@rows_out,
	};
}

1;
