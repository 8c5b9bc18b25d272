# Lawful purging of expired rows: hipaa_audit.purge_expired(), its signed,
# hash-chained receipts and per-chain anchors; verify(), checkpoints and
# chain heads (also rebuilt after a restart or a crash, and after
# pg_dump/pg_restore) continuing from the anchors; what a purge refuses
# (legal hold, no signing key, REPEATABLE READ, a broken prefix, a role
# outside hipaa_audit_admin); concurrent purges and inserts; and the drop or
# unprotect of tables idle past their retention, recorded in retired_tables.
#
# Insertion times are stamped by the server, so rows are made "old" by
# protecting tables with a retention of 4 seconds and waiting.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use Digest::SHA qw(sha256);
use Digest::MD5 qw(md5_hex);
use MIME::Base64 qw(encode_base64 decode_base64);
use HaTest;
use HaNote;
use IndependentVerifier qw(parse_copy_binary verify type_info_sql);

$ENV{PGCLIENTENCODING} = 'UTF8';

my $t_start = time;

my $node = ha_node('purge',
	init => { extra => [ '--encoding=UTF8', '--locale=C' ] },
	conf => "log_statement = none\ninclude_if_exists = 'keys.conf'\n");
my $datadir = $node->data_dir;
my $keydir  = PostgreSQL::Test::Utils::tempdir;
my $tmp     = PostgreSQL::Test::Utils::tempdir;

# ------------------------------------------------------------------ helpers

sub sql
{
	my ($sql, %o) = @_;
	my $n = delete $o{node} // $node;
	return $n->safe_psql('postgres', $sql, %o);
}

sub as_admin { return (extra_params => [ '-U', 'admin_user' ]); }

# Run SQL expected to fail; returns stderr with SQLSTATEs (VERBOSITY verbose).
sub sql_err
{
	my ($sql, %o) = @_;
	my $n = delete $o{node} // $node;
	my ($rc, $out, $err) = $n->psql('postgres', "\\set VERBOSITY verbose\n$sql", %o);
	return $rc == 0 ? "(no error) $out" : $err;
}

# A note (bytes) as an SQL text expression.
sub note_sql
{
	my ($note) = @_;
	return "convert_from('\\x" . unpack('H*', $note) . "'::bytea, 'UTF8')";
}

sub problems
{
	my ($tbl, %o) = @_;
	return sql("SELECT coalesce(string_agg(chain || ':' || seq || ':' || kind, ' ' ORDER BY chain, seq, kind), '') "
		  . "FROM hipaa_audit.verify_problems('$tbl')", %o);
}

sub verify_ok
{
	my ($tbl, %o) = @_;
	return sql("SELECT ok::text || ':' || rows_checked || ':' || problems "
		  . "FROM hipaa_audit.verify('$tbl')", %o);
}

sub nrows
{
	my ($tbl, %o) = @_;
	return sql("SELECT count(*) FROM $tbl", %o);
}

sub nreceipts
{
	my (%o) = @_;
	return sql('SELECT (SELECT count(*) FROM hipaa_audit.purge_receipts) || \'/\' || '
		  . '(SELECT count(*) FROM hipaa_audit.purge_anchors)', %o);
}

# purge_expired(tbl): (rows_removed, receipt_id or 'null', receipt bytes).
sub purge
{
	my ($tbl, %o) = @_;
	my $pre = delete $o{pre} // '';
	my $r = sql("$pre SELECT rows_removed, coalesce(receipt_id::text, 'null'), "
		  . "coalesce(encode(convert_to(receipt, 'UTF8'), 'hex'), '') "
		  . "FROM hipaa_audit.purge_expired('$tbl')", %o);
	my ($n, $id, $hex) = split /\|/, $r, 3;
	return ($n, $id, pack('H*', $hex // ''));
}

# verify_receipt(note, key) -> "ok|status|tbl"; detail in list context.
sub vr
{
	my ($note, $key, %o) = @_;
	my $r = sql("SELECT ok, status, coalesce(tbl::text, ''), coalesce(detail, '') "
		  . "FROM hipaa_audit.verify_receipt(" . note_sql($note) . ', ' . lit($key) . ')', %o);
	my ($ok, $status, $tbl, $detail) = split /\|/, $r, 4;
	return wantarray ? ("$ok|$status|$tbl", $detail) : "$ok|$status|$tbl";
}

sub vc
{
	my ($note, $key, %o) = @_;
	my $r = sql("SELECT ok, status, coalesce(tbl::text, ''), coalesce(detail, '') "
		  . "FROM hipaa_audit.verify_checkpoint(" . note_sql($note) . ', ' . lit($key) . ')', %o);
	my ($ok, $status, $tbl, $detail) = split /\|/, $r, 4;
	return wantarray ? ("$ok|$status|$tbl", $detail) : "$ok|$status|$tbl";
}

sub checkpoint_note
{
	my ($tbl, %o) = @_;
	return pack('H*',
		sql("SELECT encode(convert_to(hipaa_audit.checkpoint('$tbl'), 'UTF8'), 'hex')", %o));
}

sub chain_lines_of
{
	my ($note) = @_;
	my ($body) = split_note($note);
	return join("\n", grep { /^chain / } split /\n/, $body);
}

# Every row of a table: { chain => [ [seq, audit_at in µs, hash hex, tag], ... ] }.
sub rows_by_chain
{
	my ($tbl, %o) = @_;
	my %c;
	for my $l (split /\n/, sql("SELECT audit_chain, audit_seq, "
			  . "(extract(epoch FROM audit_at) * 1000000)::int8, encode(audit_hash, 'hex'), tag "
			  . "FROM $tbl ORDER BY 1, 2", %o))
	{
		my ($ch, $seq, $at, $h, $tag) = split /\|/, $l;
		push @{ $c{$ch} }, [ $seq, $at, $h, $tag ];
	}
	return \%c;
}

# Anchors of a table: "chain:first:last:hash" lines, ordered.
sub anchors_of
{
	my ($tbl, %o) = @_;
	return sql("SELECT coalesce(string_agg(chain || ':' || first_seq || ':' || last_seq || ':' "
		  . "|| encode(anchor_hash, 'hex'), ' ' ORDER BY chain, last_seq), '') "
		  . "FROM hipaa_audit.purge_anchors a JOIN hipaa_audit.registry r USING (table_uuid) "
		  . "WHERE r.relid = '$tbl'::regclass", %o);
}

# purge_expired(tbl, max_rows => n) as the admin: rows removed.
sub purge_limited
{
	my ($tbl, $max) = @_;
	return sql("SELECT rows_removed FROM hipaa_audit.purge_expired('$tbl', max_rows => $max)", as_admin());
}

# Latest anchor per chain: { chain => [last, hash] }.
sub latest_anchors
{
	my ($tbl, %o) = @_;
	my %a;
	for my $l (split /\n/, sql("SELECT DISTINCT ON (chain) chain, last_seq, encode(anchor_hash, 'hex') "
			  . "FROM hipaa_audit.purge_anchors a JOIN hipaa_audit.registry r USING (table_uuid) "
			  . "WHERE r.relid = '$tbl'::regclass ORDER BY chain, last_seq DESC", %o))
	{
		my ($c, $last, $h) = split /\|/, $l;
		$a{$c} = [ $last, $h ];
	}
	return \%a;
}

# Insert from several sessions at once, each holding its transaction open
# until all have inserted, so that each takes a different chain.  Session i
# inserts $counts[i] rows tagged "$label-i".  Returns the chain of each.
our $held_user;
sub held_inserts
{
	my ($tbl, $label, @counts) = @_;
	my @s = map { $node->background_psql('postgres', timeout => ha_timeout(),
			($held_user ? (extra_params => [ '-U', $held_user ]) : ())) } @counts;
	my @chains;
	for my $i (0 .. $#counts)
	{
		push @chains, $s[$i]->query_safe(
			"BEGIN; INSERT INTO $tbl (tag, n) SELECT '$label-$i', g FROM generate_series(1, $counts[$i]) g; "
			  . "SELECT DISTINCT audit_chain FROM $tbl WHERE tag = '$label-$i'");
	}
	for my $i (0 .. $#counts)
	{
		$s[$i]->query_safe('COMMIT');
		$s[$i]->quit;
	}
	return @chains;
}

sub distinct { my %h = map { $_ => 1 } @_; return scalar keys %h; }

# Signing key through an included config file (as 013 does).
sub set_key
{
	my ($path) = @_;
	write_file("$datadir/keys.conf",
		"hipaa_audit.signing_key_file = '$path'\nhipaa_audit.signer_name = 'audit.example.org'\n");
	$node->reload;
	my $md5 = md5_hex($path);
	$node->poll_query_until('postgres',
		"SELECT md5(current_setting('hipaa_audit.signing_key_file')) = '$md5'")
	  or die "settings not reloaded";
}

my $server_key = "$keydir/server.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $server_key);
chmod 0600, $server_key;
set_key($server_key);
my $vkey = sql('SELECT hipaa_audit.verifier_key()');
my ($sysid) = sql('SELECT system_identifier FROM pg_control_system()');

# ---------------------------------------------------------------------
# Setup: every table that needs old rows gets them now; one wait later
# makes them all expire.
# ---------------------------------------------------------------------
sql(q{
	CREATE ROLE admin_user LOGIN IN ROLE hipaa_audit_admin;
	CREATE ROLE nobody LOGIN;
	CREATE TABLE t_none (tag text, n int);
	SELECT hipaa_audit.protect('t_none', retention => '1 day', chains => 2);
	INSERT INTO t_none SELECT 'none', g FROM generate_series(1, 5) g;
});
foreach my $t (
	[ 't_all', 3 ], [ 't_mix', 4 ], [ 't_gap', 1 ], [ 't_hold', 2 ],
	[ 't_tamper_upd', 1 ], [ 't_tamper_del', 1 ], [ 't_rs1', 2 ], [ 't_rs2', 2 ],
	[ 't_dump', 2 ], [ 't_lock', 1 ], [ 't_drop', 1 ], [ 't_drop_held', 1 ],
	[ 't_unprot', 1 ], [ 't_self', 1 ], [ 't_inflight', 1 ], [ 't_twice1', 1 ],
	[ 't_twice2', 1 ], [ 't_twice3', 1 ], [ 't_race_hold', 1 ], [ 't_race_drop', 1 ], [ 't_race_drop2', 1 ],
	[ 't_big', 4 ])
{
	my ($tbl, $chains) = @$t;
	sql("CREATE TABLE $tbl (tag text, n int); "
		  . "SELECT hipaa_audit.protect('$tbl', retention => '4 seconds', chains => $chains)");
}
sql(q{
	INSERT INTO t_gap SELECT 'old', g FROM generate_series(1, 6) g;
	INSERT INTO t_hold SELECT 'old', g FROM generate_series(1, 8) g;
	INSERT INTO t_tamper_upd SELECT 'old', g FROM generate_series(1, 6) g;
	INSERT INTO t_tamper_del SELECT 'old', g FROM generate_series(1, 6) g;
	INSERT INTO t_lock SELECT 'old', g FROM generate_series(1, 10) g;
	INSERT INTO t_drop SELECT 'old', g FROM generate_series(1, 5) g;
	INSERT INTO t_drop_held SELECT 'old', g FROM generate_series(1, 5) g;
	INSERT INTO t_unprot SELECT 'old', g FROM generate_series(1, 5) g;
	INSERT INTO t_self SELECT 'old', g FROM generate_series(1, 6) g;
	INSERT INTO t_inflight SELECT 'old', g FROM generate_series(1, 6) g;
	INSERT INTO t_twice1 SELECT 'old', g FROM generate_series(1, 4) g;
	INSERT INTO t_twice2 SELECT 'old', g FROM generate_series(1, 4) g;
	INSERT INTO t_twice3 SELECT 'old', g FROM generate_series(1, 4) g;
	INSERT INTO t_race_hold SELECT 'old', g FROM generate_series(1, 5) g;
	INSERT INTO t_race_drop SELECT 'old', g FROM generate_series(1, 5) g;
	INSERT INTO t_race_drop2 SELECT 'old', g FROM generate_series(1, 5) g;
	CREATE TABLE plain (tag text, n int);
});

# Within retention: DROP and unprotect refused.
like(sql_err('DROP TABLE t_drop'),
	qr/ERROR:  42501: cannot DROP protected table public\.t_drop\nDETAIL:  The table holds audit rows within their retention period\./,
	'DROP TABLE of a protected table with rows within retention: 42501');
like(sql_err(q{SELECT hipaa_audit.unprotect('t_unprot')}),
	qr/ERROR:  42501: cannot unprotect protected table public\.t_unprot\nDETAIL:  The table holds audit rows within their retention period\./,
	'unprotect() of a protected table with rows within retention: 42501');
is(sql(q{SELECT count(*) FROM hipaa_audit.retired_tables}), '0', 'nothing recorded in retired_tables');
is(sql(q{SELECT hipaa_audit.is_protected('t_drop')::text || hipaa_audit.is_protected('t_unprot')::text
	|| (SELECT count(*) FROM t_drop) || (SELECT count(*) FROM t_unprot)}), 'truetrue55',
	'both tables still protected with their rows');

my @all_chains = held_inserts('t_all', 'old', 4, 5, 6);
is(distinct(@all_chains), 3, 't_all: three concurrent writers took the three chains');

# ---------------------------------------------------------------------
# Nothing expired: 0 rows, no receipt, nothing removed.
# ---------------------------------------------------------------------
is(nreceipts(), '0/0', 'no receipts or anchors at first');
{
	my ($n, $id, $note) = purge('t_all', as_admin());
	is("$n|$id|$note", '0|null|', 'purge of fresh rows (4 seconds retention): 0 rows, no receipt');
	($n, $id, $note) = purge('t_none', as_admin());
	is("$n|$id|$note", '0|null|', 'purge of a table with nothing expired (1 day retention): 0 rows, no receipt');
}
is(nrows('t_none') . '/' . nrows('t_all'), '5/15', 'nothing removed');
is(nreceipts(), '0/0', 'no receipt or anchor stored by a purge that removed nothing');

my @mix1_chains = held_inserts('t_mix', 'old', 3, 5, 7);
is(distinct(@mix1_chains), 3, 't_mix: three concurrent writers took three different chains');
my @rs1 = held_inserts('t_rs1', 'old', 3, 4);
my @rs2 = held_inserts('t_rs2', 'old', 3, 4);
my @dmp = held_inserts('t_dump', 'old', 3, 4);
is(distinct(@rs1) . distinct(@rs2) . distinct(@dmp), '222', 't_rs1, t_rs2, t_dump: both chains used');

# Checkpoints taken before any purge.
my $ck_all  = checkpoint_note('t_all');
my $ck_dump = checkpoint_note('t_dump');
is(vc($ck_all, $vkey), 't|ok|t_all', 'checkpoint of t_all before the purge verifies');

# The big expired prefix: 200,000 rows in one transaction (one chain).
sql(q{INSERT INTO t_big SELECT 'big', g FROM generate_series(1, 200000) g});
my $ck_big = checkpoint_note('t_big');

# ---------------------------------------------------------------------
# Tampering (library unloaded, as in 006), while the rows age: a changed
# row and a deleted row inside the expiring prefix; and t_gap rewritten
# consistently (rehashed outside the extension) so that its row 3 carries
# a future insertion time: a kept row with older rows after it.
# ---------------------------------------------------------------------
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
	 WHERE attrelid = 't_gap'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum});
my @cols  = map { $_->[0] } @att;
my %types = map { $_->[0] => $_->[1] } @att;
my %ix    = map { $cols[$_] => $_ } 0 .. $#cols;
my ($uuid_gap) = sql(q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 't_gap'::regclass});
my $gap_rows = parse_copy_binary(psql_raw('\copy (SELECT ' . join(', ', @cols)
	  . ' FROM t_gap ORDER BY audit_seq) TO STDOUT WITH (FORMAT binary)'))->{rows};
my %vargs = (columns => \@cols, types => \%types, type_info => \%type_info,
	table_uuid => $uuid_gap, chains => 1);
is(scalar @{ verify(%vargs, rows => $gap_rows)->{problems} }, 0,
	't_gap: the independent verifier agrees before the rewrite');
my $future = '2099-01-01 00:00:00+00';
$gap_rows->[2][ $ix{audit_at} ] = pack('H*', sql("SELECT encode(timestamptz_send('$future'), 'hex')"));
my @gap_updates;
for my $i (2 .. 5)
{
	$gap_rows->[$i][ $ix{audit_prev_hash} ] = $gap_rows->[ $i - 1 ][ $ix{audit_hash} ];
	my $res = verify(%vargs, rows => [ $gap_rows->[$i] ]);
	my $s = $i + 1;
	$gap_rows->[$i][ $ix{audit_hash} ] = pack('H*', $res->{hashes}{"0/$s"});
	push @gap_updates, sprintf(
		q{UPDATE t_gap SET %s audit_prev_hash = '\x%s', audit_hash = '\x%s' WHERE audit_seq = %d;},
		($s == 3 ? "audit_at = '$future'," : ''),
		unpack('H*', $gap_rows->[$i][ $ix{audit_prev_hash} ]),
		unpack('H*', $gap_rows->[$i][ $ix{audit_hash} ]), $s);
}
is(scalar @{ verify(%vargs, rows => $gap_rows)->{problems} }, 0,
	't_gap: the rewritten rows form a consistent chain (independent verifier)');

# Retention lowered behind the extension's back (below), then a genuine
# purge (at the end): a checkpoint states the retention in force, and the
# receipt contradicts the one signed before it (docs/retention.md).
sql(q{
	CREATE TABLE t_lowered (id int);
	SELECT hipaa_audit.protect('t_lowered', '1 hour', 1);
	INSERT INTO t_lowered SELECT generate_series(1, 5);
});
my $ck_lowered = checkpoint_note('t_lowered');
like($ck_lowered, qr/\nretention 01:00:00\nchains 1\n/, 'a checkpoint states the retention in force');
is(vc($ck_lowered, $vkey), 't|ok|t_lowered', 'and verifies');

my $reenable = q{ENABLE ALWAYS TRIGGER hipaa_audit_chain,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate};
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
sql(qq{
	ALTER TABLE t_tamper_upd DISABLE TRIGGER ALL;
	UPDATE t_tamper_upd SET tag = 'changed' WHERE audit_seq = 3;
	ALTER TABLE t_tamper_upd $reenable;
	ALTER TABLE t_tamper_del DISABLE TRIGGER ALL;
	DELETE FROM t_tamper_del WHERE audit_seq = 3;
	ALTER TABLE t_tamper_del $reenable;
	ALTER TABLE t_gap DISABLE TRIGGER ALL;
} . join("\n", @gap_updates) . qq{
	ALTER TABLE t_gap $reenable;
	UPDATE hipaa_audit.registry SET retention = '1 second' WHERE relid = 't_lowered'::regclass;
});
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
is(problems('t_tamper_upd'), '0:3:hash_mismatch', '(t_tamper_upd: row 3 really changed)');
is(problems('t_tamper_del'), '0:3:gap', '(t_tamper_del: row 3 really deleted)');
is(verify_ok('t_gap'), 'true:6:0', 't_gap verifies after the consistent rewrite');

# Wait until every old row is past its 4 seconds.
ok($node->poll_query_until('postgres',
		q{SELECT clock_timestamp() > (SELECT max(audit_at) FROM t_big) + interval '4.2 seconds'}),
	'the old rows are past their retention');

# ---------------------------------------------------------------------
# Refusals before anything is removed: no signing key, REPEATABLE READ,
# SERIALIZABLE, a role outside hipaa_audit_admin, lowering retention.
# ---------------------------------------------------------------------
write_file("$datadir/keys.conf", "hipaa_audit.signing_key_file = ''\n");
$node->reload;
$node->poll_query_until('postgres', q{SELECT current_setting('hipaa_audit.signing_key_file') = ''})
  or die 'key not unset';
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_all')}, as_admin()),
	qr/ERROR:  55000: no signing key is configured/,
	'no signing key configured: purge refused (55000)');
is(nrows('t_all') . ' ' . nreceipts(), '15 0/0', 'no key: nothing removed, no receipt');
set_key($server_key);

foreach my $iso ('REPEATABLE READ', 'SERIALIZABLE')
{
	like(sql_err("BEGIN ISOLATION LEVEL $iso; SELECT * FROM hipaa_audit.purge_expired('t_all');", as_admin()),
		qr/ERROR:  25000: hipaa_audit\.purge_expired\(\) must run at READ COMMITTED isolation/,
		"$iso: purge refused (25000)");
}
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_all')}, extra_params => [ '-U', 'nobody' ]),
	qr/ERROR:  42501: permission denied for function purge_expired/,
	'a role outside hipaa_audit_admin: 42501 (no EXECUTE)');
sql(q{GRANT EXECUTE ON FUNCTION hipaa_audit.purge_expired(regclass, boolean, bigint) TO nobody});
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_all')}, extra_params => [ '-U', 'nobody' ]),
	qr/ERROR:  42501: permission denied to purge table public\.t_all\nDETAIL:  Only members of hipaa_audit_admin may purge expired rows\./,
	'granted EXECUTE but not a member of hipaa_audit_admin: still 42501');
sql(q{REVOKE EXECUTE ON FUNCTION hipaa_audit.purge_expired(regclass, boolean, bigint) FROM nobody});
like(sql_err(q{SELECT hipaa_audit.set_retention('t_all', '1 second')}),
	qr/ERROR:  42501: cannot lower the retention of protected table public\.t_all/,
	'lowering the retention is refused (42501)');
is(sql(q{SET IntervalStyle = postgres; SELECT retention FROM hipaa_audit.registry WHERE relid = 't_all'::regclass}),
	'00:00:04', 'retention unchanged');
is(nrows('t_all') . ' ' . nreceipts(), '15 0/0', 'after the refusals: nothing removed, no receipt');

# ---------------------------------------------------------------------
# Expired rows interleaved across chains: new rows on every chain of
# t_mix (four writers at once), then a purge removes exactly, per chain,
# the prefix inserted before the cutoff.
# ---------------------------------------------------------------------
my @mix2_chains = held_inserts('t_mix', 'new', 2, 2, 2, 2);
is(distinct(@mix2_chains), 4, 't_mix: four concurrent writers took all four chains');
my $mix_before = rows_by_chain('t_mix');
my ($mix_n, $mix_id, $mix_note) = purge('t_mix', as_admin());
my $mix_after = rows_by_chain('t_mix');
my ($mix_cutoff) = sql("SELECT (extract(epoch FROM cutoff) * 1000000)::int8 FROM hipaa_audit.purge_receipts WHERE id = $mix_id");
{
	my (%want_left, @want_lines, %want_removed, %old_rows);
	my $want_n = 0;
	foreach my $c (sort { $a <=> $b } keys %$mix_before)
	{
		my @r = @{ $mix_before->{$c} };
		my $k = 0;
		$k++ while $k < @r && $r[$k][1] < $mix_cutoff;
		if ($k > 0)
		{
			push @want_lines, "chain $c $r[0][0] $r[$k-1][0] $r[$k-1][2]";
			$want_n += $k;
		}
		$want_left{$c}    = join(',', map { $_->[0] } @r[ $k .. $#r ]);
		$want_removed{$c} = join(',', map { $_->[0] } @r[ 0 .. $k - 1 ]);
		$old_rows{$c}     = join(',', map { $_->[0] } grep { $_->[3] =~ /^old/ } @r);
	}
	my %got_left = map { $_ => join(',', map { $_->[0] } @{ $mix_after->{$_} }) } keys %$mix_after;
	$got_left{$_} //= '' for keys %want_left;
	is($mix_n, $want_n, "t_mix: rows_removed is the number of rows before the cutoff at the start of each chain ($want_n)");
	is_deeply(\%got_left, \%want_left, 't_mix: per chain, exactly the rows after the expired prefix are left');
	is_deeply(\%want_removed, \%old_rows,
		't_mix: the removed prefix of each chain is exactly its rows inserted before the wait');
	is($want_n, 15, 't_mix: 15 old rows (3 + 5 + 7 on three chains) were the expired ones');
	is(chain_lines_of($mix_note), join("\n", @want_lines),
		't_mix: the receipt lists each purged chain: first and last position, hash of the last removed row');
	is(scalar(@want_lines), 3, 't_mix: three chains purged, the fourth (only new rows) untouched');
	is(anchors_of('t_mix'), join(' ', map { my @f = split / /; "$f[1]:$f[2]:$f[3]:$f[4]" } @want_lines),
		't_mix: one anchor row per purged chain, as in the receipt');
}
is(verify_ok('t_mix'), 'true:8:0', 't_mix: verify() ok after the purge, each chain continuing from its anchor');
is(sql(q{SELECT sum(v.rows_checked) || ':' || bool_and(v.ok) FROM generate_series(0, 3) c,
	LATERAL hipaa_audit.verify_rows('t_mix', chain => c) v}), '8:true',
	't_mix: each chain checked alone from its anchor, the 8 rows kept, ok');
is(sql(q{SELECT ok::text || ':' || rows_checked FROM hipaa_audit.verify_rows('t_mix', from_time => '-infinity')}),
	'true:8', 't_mix: all time through the BRIN index: the 8 rows kept, ok');
like(sql_err("SELECT * FROM hipaa_audit.verify('t_mix', since => " . note_sql($mix_note) . ', key => ' . lit($vkey) . ')'),
	qr/ERROR:  22023: the signed note is not a checkpoint hipaa_audit can read/,
	'verify(since => a signed purge receipt): 22023, a receipt is not a checkpoint');

# ---------------------------------------------------------------------
# Everything expired: t_all.
# ---------------------------------------------------------------------
my $all_before = rows_by_chain('t_all');
my @all_want = map { my $r = $all_before->{$_}; "chain $_ 1 $r->[-1][0] $r->[-1][2]" }
  sort { $a <=> $b } keys %$all_before;
my $rc_dry = nreceipts();
is(sql(q{SELECT rows_removed::text || '|' || (receipt_id IS NULL)::text || '|' || (receipt IS NULL)::text
	FROM hipaa_audit.purge_expired('t_all', dry_run => true)}, as_admin()),
	'15|true|true', 't_all: a dry run counts the 15 expired rows, no receipt');
is(nrows('t_all') . ' ' . nreceipts(), "15 $rc_dry", 't_all: the dry run removed and stored nothing');
my ($all_n, $all_id, $all_note) = purge('t_all', as_admin());
is($all_n, 15, 't_all: all 15 expired rows removed');
is(nrows('t_all'), '0', 't_all: the table is empty');
like($all_id, qr/^\d+$/, 't_all: a receipt id is returned');
is(verify_ok('t_all'), 'true:0:0', 't_all: verify() ok on the purged table');
is(problems('t_all'), '', 't_all: no problem, in particular no checkpoint_rows_missing');
is(vc($ck_all, $vkey), 't|ok|t_all', 'the checkpoint taken before the purge still verifies');
is(sql(q{SELECT ok FROM hipaa_audit.verify_checkpoint_chain()}), 't', 'the stored checkpoints still chain');

# The receipt, line by line.
my ($uuid_all) = sql(q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 't_all'::regclass});
my ($all_body, $all_sigs) = split_note($all_note);
my @bl = split /\n/, $all_body;
is($bl[0], "hipaa_audit/$sysid/$uuid_all", 'receipt origin line: system identifier and table uuid');
is($bl[1], 'purge v1', 'receipt format line');
is($bl[2], 'table public.t_all', 'receipt table line');
is($bl[3], 'database postgres', 'receipt database line');
like($bl[4], qr/\Atime \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00\z/, 'receipt time line, UTC');
is($bl[5], 'by admin_user', 'receipt by line: the purging role');
is($bl[6], 'retention 00:00:04', 'receipt retention line');
my $cutoff_txt = sql("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SELECT cutoff FROM hipaa_audit.purge_receipts WHERE id = $all_id");
is($bl[7], "cutoff $cutoff_txt", 'receipt cutoff line = the stored cutoff');
like($bl[8], qr/\Aas-of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00\z/, 'receipt as-of line, UTC');
my ($asof_txt) = $bl[8] =~ /\Aas-of (.*)\z/;
is(sql("SELECT '$asof_txt'::timestamptz - '00:00:04'::interval = '$cutoff_txt'::timestamptz"), 't',
	'the cutoff is as-of minus the retention: recomputed from the receipt alone');
is($bl[9], 'rows 15', 'receipt rows line');
is(join("\n", @bl[ 10 .. $#bl ]), join("\n", @all_want),
	'receipt chain lines: every chain from 1 to its last row, with that row\'s hash');
my ($ttxt) = $bl[4] =~ /\Atime (.*)\z/;
is(sql("SELECT '$ttxt'::timestamptz - '$cutoff_txt'::timestamptz >= interval '4 seconds'"), 't',
	'the cutoff is at least the retention before the receipt time');
is(scalar @$all_sigs, 1, 'one signature line');
is($all_sigs->[0][0], 'audit.example.org', 'signed by the signer name');
is(sql("SELECT rows_removed || '|' || purged_by || '|' || relid::text || '|' || encode(convert_to(note, 'UTF8'), 'hex') "
		  . "FROM hipaa_audit.purge_receipts WHERE id = $all_id"),
	'15|admin_user|t_all|' . unpack('H*', $all_note),
	'purge_receipts stores the receipt, rows removed, who and the table');
is(anchors_of('t_all'), join(' ', map { my @f = split / /; "$f[1]:$f[2]:$f[3]:$f[4]" } @all_want),
	'purge_anchors: one row per chain with the receipt\'s range and hash');

# Independently: openssl checks the signature over the body.
$vkey =~ /\A([^+]+)\+([0-9a-f]{8})\+(\S+)\z/ or die "verifier key: $vkey";
my ($vname, $vid, $vblob) = ($1, $2, decode_base64($3));
my $vpub = substr($vblob, 1);
is(unpack('H*', substr($all_sigs->[0][1], 0, 4)), $vid, 'the signature line carries the key id');
write_file("$tmp/pub.pem",
	"-----BEGIN PUBLIC KEY-----\n"
	  . encode_base64(pack('H*', '302a300506032b6570032100') . $vpub)
	  . "-----END PUBLIC KEY-----\n");
write_file("$tmp/body.txt", $all_body);
write_file("$tmp/sig.bin", substr($all_sigs->[0][1], 4));
my ($vok, $vout, $verr) = run_openssl('pkeyutl', '-verify', '-pubin', '-inkey', "$tmp/pub.pem",
	'-rawin', '-in', "$tmp/body.txt", '-sigfile', "$tmp/sig.bin");
ok($vok, 'openssl pkeyutl -verify accepts the receipt signature over the body') or diag("$vout $verr");
(my $bad_body = $all_body) =~ s/\nrows 15\n/\nrows 16\n/ or die;
write_file("$tmp/body_bad.txt", $bad_body);
($vok) = run_openssl('pkeyutl', '-verify', '-pubin', '-inkey', "$tmp/pub.pem",
	'-rawin', '-in', "$tmp/body_bad.txt", '-sigfile', "$tmp/sig.bin");
ok(!$vok, 'openssl rejects the signature over a body with one changed byte');

# verify_receipt().
is(vr($all_note, $vkey), 't|ok|t_all', 'verify_receipt() ok with verifier_key()');
is(vr($all_note, $vkey, as_admin()), 't|ok|t_all', 'verify_receipt() ok for a member of hipaa_audit_admin');
(my $forged = $all_note) =~ s/\nrows 15\n/\nrows 16\n/ or die;
is(vr($forged, $vkey), 'f|bad_signature|', 'verify_receipt() of a changed receipt: bad_signature');
(my $forged2 = $all_note) =~ s/\nchain (\d) 1 (\d+) /"\nchain $1 1 " . ($2 + 1) . ' '/e or die;
is(vr($forged2, $vkey), 'f|bad_signature|', 'verify_receipt() of a receipt with a changed chain line: bad_signature');
is((split /\|/, vr($ck_all, $vkey))[1], 'malformed_note', 'verify_receipt() of a checkpoint note: malformed_note');

# A receipt signed with the right key (the test holds the key file) that
# this database never recorded: a range of t_none never purged.
{
	my ($uuid_none) = sql(q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 't_none'::regclass});
	my $h5 = sql(q{SELECT encode(audit_hash, 'hex') FROM t_none ORDER BY audit_seq DESC LIMIT 1});
	my $ch = sql(q{SELECT audit_chain FROM t_none LIMIT 1});
	my $body = "hipaa_audit/$sysid/$uuid_none\npurge v1\ntable public.t_none\ndatabase postgres\n"
	  . "time 2026-01-01 00:00:00+00\nby admin_user\nretention 1 day\ncutoff 2025-12-31 00:00:00+00\n"
	  . "rows 5\nchain $ch 1 5 $h5\n";
	write_file("$tmp/fbody.txt", $body);
	openssl_ok('pkeyutl', '-sign', '-inkey', $server_key, '-rawin', '-in', "$tmp/fbody.txt",
		'-out', "$tmp/fsig.bin");
	my $sig = do { open(my $fh, '<:raw', "$tmp/fsig.bin") or die; local $/; <$fh> };
	my $fnote = $body . "\n" . $EMDASH . 'audit.example.org '
	  . encode_base64(key_id('audit.example.org', $vpub) . $sig, '') . "\n";
	my ($r, $d) = vr($fnote, $vkey);
	is($r, 'f|not_recorded|t_none',
		'verify_receipt() of a correctly signed receipt the database never recorded: not_recorded')
	  or diag($d);
	is(nrows('t_none'), '5', '(t_none untouched)');
}

# Checkpoints after the purge; inserts continue each chain after its anchor.
my $ck_all2 = checkpoint_note('t_all');
is(chain_lines_of($ck_all2), join("\n", map { my @f = split / /; "chain $f[1] $f[3] $f[4]" } @all_want),
	'a checkpoint of the fully purged table records the anchors as the chain heads');
is(vc($ck_all2, $vkey), 't|ok|t_all', 'and verifies');
my @all_new = held_inserts('t_all', 'new', 1, 1, 1);
is(distinct(@all_new), 3, 't_all: new rows on all three chains');
is(sql(q{SELECT string_agg(audit_chain || ':' || audit_seq || ':' || encode(audit_prev_hash, 'hex'), ' ' ORDER BY audit_chain) FROM t_all}),
	join(' ', map { my @f = split / /; "$f[1]:" . ($f[3] + 1) . ":$f[4]" } @all_want),
	't_all: each chain continues at anchor + 1, linked to the anchor hash (no position reused)');
is(verify_ok('t_all'), 'true:3:0', 't_all: verify() ok after the new inserts');
is(vc($ck_all, $vkey) . ' ' . vc($ck_all2, $vkey), 't|ok|t_all t|ok|t_all',
	'both checkpoints still verify after the new inserts');
is(vr($all_note, $vkey), 't|ok|t_all', 'and so does the receipt');

# ---------------------------------------------------------------------
# A kept row with older rows after it (t_gap, row 3 stamped in the
# future): the purge stops at the kept row, never leaves a hole.
# ---------------------------------------------------------------------
{
	my $h2 = sql(q{SELECT encode(audit_hash, 'hex') FROM t_gap WHERE audit_seq = 2});
	my ($n, $id, $note) = purge('t_gap', as_admin());
	is($n, 2, 't_gap: only the 2 rows before the kept row are removed');
	is(sql(q{SELECT string_agg(audit_seq::text, ',' ORDER BY audit_seq) FROM t_gap}), '3,4,5,6',
		't_gap: rows 3..6 left');
	is(sql("SELECT count(*) FROM t_gap g, hipaa_audit.purge_receipts r WHERE r.id = $id AND g.audit_at < r.cutoff"),
		'3', 't_gap: rows 4..6 are before the cutoff, yet kept (no hole after row 3)');
	is(chain_lines_of($note), "chain 0 1 2 $h2", 't_gap: receipt lists positions 1..2 and the hash of row 2');
	is(verify_ok('t_gap'), 'true:4:0', 't_gap: verify() ok');
}

# ---------------------------------------------------------------------
# Legal hold.
# ---------------------------------------------------------------------
my $rc_hold = nreceipts();
my $hold_note;
my $hold = sql(q{SELECT hipaa_audit.place_hold('t_hold', 'litigation, case 22')});
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_hold')}, as_admin()),
	qr/ERROR:  42501: cannot purge protected table public\.t_hold\nDETAIL:  The table is under a legal hold\./,
	'purge of a held table: 42501 with the hold message');
is(nrows('t_hold') . ' ' . nreceipts(), "8 $rc_hold", 'held: nothing removed, no receipt');
sql("SELECT hipaa_audit.release_hold($hold, 'case closed')");
is(sql(q{BEGIN; SELECT rows_removed FROM hipaa_audit.purge_expired('t_hold'); ROLLBACK; SELECT count(*) FROM t_hold}),
	"8\n8", 'released: a purge rolled back removes 8 rows, then leaves them all');
is(nreceipts(), $rc_hold, 'and leaves no receipt');
is(verify_ok('t_hold'), 'true:8:0', 'verify() ok after the rolled-back purge');
{
	my ($n, $id, $note) = purge('t_hold', as_admin(), pre => q{SET IntervalStyle = 'iso_8601';});
	$hold_note = $note;
	is($n, 8, 'after release_hold: the purge removes the 8 expired rows');
	my ($ret) = grep { /^retention / } split /\n/, (split_note($note))[0];
	is($ret, $bl[6], 'the receipt\'s retention line does not depend on the session\'s IntervalStyle');
	is(vr($note, $vkey), 't|ok|t_hold', 'its receipt verifies');
}

# ---------------------------------------------------------------------
# Tampering inside the expiring prefix: refused, nothing removed.
# ---------------------------------------------------------------------
my $rc_t = nreceipts();
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_tamper_upd')}, as_admin()),
	qr/ERROR:  XX001: cannot purge public\.t_tamper_upd: chain 0 is broken at position 3\n/,
	'a changed row in the prefix: purge refused, XX001, chain and position named');
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_tamper_del')}, as_admin()),
	# (The checkpoint purge_expired() takes first, so that every removed
	# row is a leaf of the tree, finds the gap before the purge's own
	# check does.)
	qr/ERROR:  XX001: chain 0 of table public\.t_tamper_del has no single row at position 3\n/,
	'a deleted middle row in the prefix: purge refused, XX001, chain and position named');
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_tamper_upd', dry_run => true)}, as_admin()),
	qr/ERROR:  XX001: cannot purge public\.t_tamper_upd: chain 0 is broken at position 3\n/,
	'a dry run finds the same break');
is(nrows('t_tamper_upd') . ' ' . nrows('t_tamper_del'), '6 5', 'nothing removed from either table');
is(nreceipts(), $rc_t, 'no receipt or anchor stored');

# ---------------------------------------------------------------------
# Two concurrent purges of one table; an insert during a purge.
# ---------------------------------------------------------------------
{
	my $relid = sql(q{SELECT 't_lock'::regclass::oid});
	my $a = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
	my $b = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
	my $pid_b = $b->query_safe('SELECT pg_backend_pid()');
	is($a->query_safe(q{BEGIN; SELECT rows_removed FROM hipaa_audit.purge_expired('t_lock')}), '10',
		'first purge (not committed yet) removes the 10 rows');
	is(verify_ok('t_lock'), 'true:10:0', 'meanwhile verify() still sees the 10 rows, ok');
	ha_start_blocking($b, 'b1',
		q{SELECT rows_removed || ':' || (receipt_id IS NULL) FROM hipaa_audit.purge_expired('t_lock')});
	ok($node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM pg_locks WHERE pid = $pid_b AND NOT granted"),
		'the second purge waits');
	is(sql("SELECT locktype || ':' || (classid = $relid) || ':' || objid || ':' || objsubid || ':' || mode "
			  . "FROM pg_locks WHERE pid = $pid_b AND NOT granted"),
		'advisory:true:0:18512:ExclusiveLock',
		'pg_locks: it waits for the purge lock of the table (advisory, table OID, 0, 18512)');
	my $t0 = time;
	my ($rc, $out, $err) = $node->psql('postgres',
		q{SET statement_timeout = '5s'; INSERT INTO t_lock VALUES ('during purge', 1) RETURNING audit_seq});
	is("$rc:$out", '0:11', 'an insert during the open purge is not blocked; it continues the chain at 11')
	  or diag $err;
	cmp_ok(time - $t0, '<', 4, 'and returned at once');
	$a->query_safe('COMMIT');
	my ($res, $state) = ha_result_of($b, 'b1');
	is("$res|$state", '0:true|00000', 'after the first commits, the second purge removes 0 rows, no receipt');
	$a->quit;
	$b->quit;
	is(sql(q{SELECT string_agg(tag || ':' || audit_seq, ',') FROM t_lock}), 'during purge:11',
		'only the row inserted during the purge is left');
	is(verify_ok('t_lock'), 'true:1:0', 't_lock: verify() ok');
	is(anchors_of('t_lock') =~ s/:[0-9a-f]{64}//gr, '0:1:10', 't_lock: one anchor, positions 1..10');
	is(sql(q{SELECT ok::text || ':' || coalesce(first_problem, '') FROM hipaa_audit.verify_receipt_chain()}),
		'true:', 'the receipts still chain');
}

# Wait until a background statement started by start_blocking has ended
# (true) or its backend waits for a lock (false).
sub ended_or_waiting
{
	my ($s, $tag, $pid) = @_;
	my $deadline = time() + ha_timeout();
	while (time() < $deadline)
	{
		$s->{run}->pump_nb;
		return 1 if $s->{stdout} =~ /$tag=\w+\n/;
		return 0 if sql("SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND wait_event_type = 'Lock'") eq '1';
		select(undef, undef, undef, 0.05);
	}
	die "$tag neither ended nor waits";
}

# A legal hold placed while a purge of the table is still open: place_hold()
# waits for the purge, so the purge that began first completes and the hold
# is placed after it.
{
	my $a = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
	my $b = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
	my $pid_b = $b->query_safe('SELECT pg_backend_pid()');
	is($a->query_safe(q{BEGIN; SELECT rows_removed FROM hipaa_audit.purge_expired('t_race_hold')}), '5',
		'race: a purge of t_race_hold is open, 5 rows removed so far');
	ha_start_blocking($b, 'h1', q{SELECT hipaa_audit.place_hold('t_race_hold', 'race with a purge')});
	is(ended_or_waiting($b, 'h1', $pid_b), 0, 'race: place_hold() waits for the open purge');
	$a->query('COMMIT');
	$a->{stderr} = '';
	my ($hid, $state) = ha_result_of($b, 'h1');
	is($state, '00000', 'race: then place_hold() succeeds');
	is(sql(q{SELECT count(*) FROM hipaa_audit.legal_holds_active WHERE tbl = 't_race_hold'::regclass}), '1',
		'race: the hold is active');
	is(nrows('t_race_hold'), '0', 'race: the purge that began first removed its rows');
	$a->quit;
	$b->quit;
}

# DROP TABLE of an idle table while a writer has an uncommitted row in it:
# the drop waits for the writer and then sees the row within retention.
{
	my $w = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
	my $d = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
	my $pid_d = $d->query_safe('SELECT pg_backend_pid()');
	$w->query_safe(q{BEGIN; INSERT INTO t_race_drop VALUES ('new', 6)});
	ha_start_blocking($d, 'd1', 'DROP TABLE t_race_drop');
	my $ended = ended_or_waiting($d, 'd1', $pid_d);
	ok(!$ended, 'race: DROP TABLE waits for the open insert');
	$w->query_safe('COMMIT');
	my ($res, $state) = ha_result_of($d, 'd1');
	is($state, '42501', 'race: after the insert commits, DROP TABLE is refused (a row within retention)');
	is(nrows('t_race_drop'), '6', 'race: the table and its 6 rows are still there');
	is(sql(q{SELECT count(*) FROM hipaa_audit.retired_tables WHERE table_name = 'public.t_race_drop'}), '0',
		'race: nothing recorded in retired_tables');
	$w->quit;
	$d->quit;
}

# A legal hold placed while a DROP TABLE of the idle table is still open:
# a hold that place_hold() acknowledged must not end with the table gone.
{
	my $d = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
	my $h = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
	my $pid_h = $h->query_safe('SELECT pg_backend_pid()');
	$d->query_safe('BEGIN; DROP TABLE t_race_drop2');
	ha_start_blocking($h, 'h2', q{SELECT hipaa_audit.place_hold('t_race_drop2', 'race with a drop')});
	is(ended_or_waiting($h, 'h2', $pid_h), 0, 'race: place_hold() waits for the open DROP');
	$d->query('COMMIT');
	$d->{stderr} = '';
	my ($hid, $state) = ha_result_of($h, 'h2');
	is($state, '42P01', 'race: after the DROP commits, place_hold() fails: the table is gone (42P01)');
	is(sql(q{SELECT count(*) FROM pg_class WHERE relname = 't_race_drop2'}), '0', 'race: the table is gone');
	is(sql(q{SELECT count(*) FROM hipaa_audit.legal_holds h JOIN hipaa_audit.retired_tables r USING (table_uuid)
		WHERE r.table_name = 'public.t_race_drop2'}), '0', 'race: no hold was recorded for it');
	$d->quit;
	$h->quit;
}

# A writer holding the chain with an uncommitted row while the purge runs.
{
	my $i = $node->background_psql('postgres', timeout => ha_timeout());
	is($i->query_safe(q{BEGIN; INSERT INTO t_inflight VALUES ('inflight', 1) RETURNING audit_seq}), '7',
		'an open transaction inserted position 7');
	my ($n) = purge('t_inflight', as_admin());
	is($n, 6, 'the purge removes the 6 committed expired rows meanwhile');
	$i->query_safe('COMMIT');
	$i->quit;
	is(sql(q{SELECT string_agg(tag || ':' || audit_seq, ',') FROM t_inflight}), 'inflight:7',
		'the row committed afterwards is kept');
	is(verify_ok('t_inflight'), 'true:1:0', 't_inflight: verify() ok, row 7 links to the anchor');
}

# Several purges in one transaction.
{
	my $rc = nreceipts();
	is(sql(q{BEGIN; INSERT INTO t_twice1 VALUES ('new', 5);
		SELECT rows_removed FROM hipaa_audit.purge_expired('t_twice1');
		SELECT rows_removed || ':' || (receipt_id IS NULL) FROM hipaa_audit.purge_expired('t_twice1');
		COMMIT; SELECT string_agg(tag || ':' || audit_seq, ',') FROM t_twice1}),
		"4\n0:true\nnew:5", 'insert, purge, purge again in one transaction: 4 rows, then 0; the new row kept');
	is(sql(q{BEGIN; SAVEPOINT s;
		SELECT rows_removed FROM hipaa_audit.purge_expired('t_twice2');
		ROLLBACK TO SAVEPOINT s;
		SELECT count(*) FROM t_twice2;
		SELECT rows_removed FROM hipaa_audit.purge_expired('t_twice2');
		COMMIT; SELECT count(*) FROM t_twice2}),
		"4\n4\n4\n0", 'a purge rolled back to a savepoint puts the rows back; the next one removes them');
	is(sql(q{SELECT string_agg(r::text, ',' ORDER BY g) FROM (
		SELECT g, (hipaa_audit.purge_expired('t_twice3')).rows_removed AS r
		  FROM generate_series(1, 2) g) s}),
		'4,0', 'two purges in one statement: 4 rows, then 0');
	my $rc2 = nreceipts();
	my ($r0) = split m{/}, $rc;
	my ($r1, $a1) = split m{/}, $rc2;
	is($r1 - $r0, 3, 'one receipt per purge that removed rows (the rolled-back one left none)');
	is(verify_ok('t_twice1') . ' ' . verify_ok('t_twice2') . ' ' . verify_ok('t_twice3'),
		'true:1:0 true:0:0 true:0:0', 'all three verify');
	is(sql(q{SELECT count(*) FROM hipaa_audit.purge_anchors a JOIN hipaa_audit.registry r USING (table_uuid)
		WHERE r.relid::text LIKE 't_twice%'}), '3', 'one anchor each');
	is(sql(q{SELECT ok::text || ':' || coalesce(first_problem, '') FROM hipaa_audit.verify_receipt_chain()}),
		'true:', 'the receipts chain, also across the identity value the rolled-back purge used');
}

like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('plain')}),
	qr/ERROR:  55000: table (public\.)?plain is not protected/, 'purge of an unprotected table: 55000');
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired(NULL)}),
	qr/ERROR:  22004: /, 'purge_expired(NULL): 22004');
like(sql_err('SELECT * FROM hipaa_audit.verify_receipt(' . note_sql($all_note) . ', ' . lit($vkey) . ')',
		extra_params => [ '-U', 'nobody' ]),
	qr/ERROR:  42501: permission denied for function verify_receipt/,
	'verify_receipt() by a role that is neither admin nor auditor: 42501');

# ---------------------------------------------------------------------
# A purge of 200,000 expired rows while pgbench inserts; verify() runs
# again and again meanwhile.
# ---------------------------------------------------------------------
{
	my $script = "$tmp/insert.sql";
	write_file($script, "INSERT INTO t_big (tag, n) VALUES ('pgb', :client_id);\n");
	my ($pgb_out, $pgb_err) = ('', '');
	my $pgb = IPC::Run::start(
		[ 'pgbench', '--no-vacuum', '--client=4', '--jobs=2', '--time=7', '-f', $script,
			'-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$pgb_out, '2>', \$pgb_err, IPC::Run::timeout(ha_timeout()));
	$node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM t_big WHERE tag = 'pgb'})
	  or die 'pgbench inserted nothing';
	my ($p_out, $p_err) = ('', '');
	my $t0 = time;
	my $p = IPC::Run::start(
		[ $node->installed_command('psql'), '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-U', 'admin_user', '-c',
			q{SELECT rows_removed || '|' || receipt_id FROM hipaa_audit.purge_expired('t_big')} ],
		'>', \$p_out, '2>', \$p_err, IPC::Run::timeout(ha_timeout()));
	my ($rounds, @bad) = (0);
	while ($p->pumpable)
	{
		my $v = sql(q{SELECT ok::text || ' ' || coalesce(first_problem, '') FROM hipaa_audit.verify('t_big')});
		$rounds++;
		push @bad, $v unless $v eq 'true ';
		$p->pump_nb;
		$pgb->pump_nb;
	}
	my $p_ok = $p->finish;
	my $dur = time - $t0;
	my $pgb_ok = $pgb->finish;
	note sprintf('purge of t_big took %.1f s; %d verify rounds ran meanwhile', $dur, $rounds);
	ok($p_ok, 'the purge under load succeeded') or diag $p_err;
	my ($n, $id) = split /\|/, $p_out =~ s/\s+\z//r;
	is($n, 200000, 'it removed exactly the 200,000 expired rows');
	ok(!@bad, 'verify() was ok on every snapshot during the purge') or diag join("\n", @bad[ 0 .. ($#bad < 5 ? $#bad : 5) ]);
	ok($pgb_ok, 'pgbench exited 0') or diag "$pgb_out\n$pgb_err";
	my ($done)   = $pgb_out =~ /number of transactions actually processed: (\d+)/;
	my ($failed) = $pgb_out =~ /number of failed transactions: (\d+)/;
	cmp_ok($done // 0, '>', 0, 'pgbench inserted rows');
	is($failed // 0, 0, 'no insert failed');
	unlike($pgb_err, qr/ERROR|aborted/, 'no pgbench client hit an error');
	is(sql(q{SELECT count(*) FROM t_big WHERE tag = 'pgb'}), $done // -1,
		'every acknowledged insert is in the table');
	is(sql(q{SELECT count(*) FROM t_big WHERE tag = 'big'}), '0', 'no row of the expired prefix is left');
	my ($rtime) = pack('H*', sql("SELECT encode(convert_to(note, 'UTF8'), 'hex') FROM hipaa_audit.purge_receipts WHERE id = $id"))
	  =~ /\ntime ([^\n]+)\n/;
	cmp_ok(sql("SELECT count(*) FROM t_big t, hipaa_audit.purge_receipts r WHERE r.id = $id AND t.tag = 'pgb' "
			  . "AND t.audit_at > r.purged_at AND t.audit_at < '$rtime'::timestamptz"), '>', 0,
		'rows were inserted while the purge ran (writers not blocked)');
	is(verify_ok('t_big'), 'true:' . ($done // -1) . ':0', 't_big: verify() ok afterwards');
	is(vc($ck_big, $vkey), 't|ok|t_big', 'the checkpoint taken before the purge still verifies');

	# VACUUM frees the purged rows' space; new rows fill it, physically
	# before older rows of their chains, and verify() (which reads in
	# physical order) still links every chain, in every mode.
	sql('VACUUM t_big');
	sql("INSERT INTO t_big (tag, n) SELECT 'refill', g FROM generate_series(1, 500) g") for 1 .. 20;
	is(sql(q{SELECT (SELECT min(ctid) FROM t_big WHERE tag = 'refill') < (SELECT min(ctid) FROM t_big WHERE tag = 'pgb')}),
		't', 't_big: new rows went into space freed by the purge, before older rows on disk');
	my $rows = ($done // -1) + 10000;
	foreach my $mode (
		[ 'one process', 'SET hipaa_audit.verify_workers = 0;' ],
		[ 'rows sorted in temporary files', 'SET hipaa_audit.verify_workers = 0; SET hipaa_audit.verify_memory = 64;' ],
		[ 'a parallel worker', 'SET min_parallel_table_scan_size = 0; SET hipaa_audit.verify_workers = 1;' ])
	{
		is(sql("$mode->[1] SELECT ok || ':' || rows_checked || ':' || problems FROM hipaa_audit.verify('t_big')"),
			"true:$rows:0", "t_big after purge, VACUUM and refill: verify() ok ($mode->[0])");
	}
}

# ---------------------------------------------------------------------
# Heads rebuilt from the anchors: a restart, and a crash (kill -9).
# ---------------------------------------------------------------------
sub check_continues
{
	my ($tbl, $anchors, $what) = @_;
	my $k = scalar keys %$anchors;
	my @ch = held_inserts($tbl, "after-$what", (1) x $k);
	is(distinct(@ch), $k, "$tbl after $what: new rows on all $k chains");
	is(sql("SELECT string_agg(audit_chain || ':' || audit_seq || ':' || encode(audit_prev_hash, 'hex'), ' ' ORDER BY audit_chain) "
			  . "FROM $tbl WHERE tag LIKE 'after-$what-%'"),
		join(' ', map { "$_:" . ($anchors->{$_}[0] + 1) . ":$anchors->{$_}[1]" } sort keys %$anchors),
		"$tbl after $what: each chain continues at anchor + 1, linked to the anchor hash");
}
{
	my ($n) = purge('t_rs1', as_admin());
	is($n, 7, 't_rs1: all 7 rows purged');
	my $a1 = latest_anchors('t_rs1');
	is(scalar keys %$a1, 2, 't_rs1: an anchor per chain');

	# A second purge of t_all: the rows inserted after the first are now
	# expired too; each chain's new range starts after its first anchor.
	my $a_prev = latest_anchors('t_all');
	my $before = rows_by_chain('t_all');
	my ($n2, $id2, $note2) = purge('t_all', as_admin());
	is($n2, 3, 't_all: a second purge removes the 3 rows inserted after the first');
	is(chain_lines_of($note2),
		join("\n", map { my $s = $a_prev->{$_}[0] + 1; "chain $_ $s $s $before->{$_}[0][2]" } sort keys %$a_prev),
		't_all: the second receipt\'s ranges start after the first anchors');
	my $a_all = latest_anchors('t_all');
	is(verify_ok('t_all'), 'true:0:0', 't_all: verify() ok after the second purge');
	is(vc($ck_all, $vkey) . ' ' . vc($ck_all2, $vkey), 't|ok|t_all t|ok|t_all',
		'both earlier checkpoints still verify after the second purge');
	is(vr($all_note, $vkey) . ' ' . vr($note2, $vkey), 't|ok|t_all t|ok|t_all', 'both receipts verify');

	$node->restart;

	# After the restart no head is cached: a transaction that purges a whole
	# chain and then inserts into it continues from its own new anchor.
	my $h6 = sql(q{SELECT encode(audit_hash, 'hex') FROM t_self WHERE audit_seq = 6});
	is(sql(q{BEGIN; SELECT rows_removed FROM hipaa_audit.purge_expired('t_self');
		INSERT INTO t_self VALUES ('self', 1); COMMIT;
		SELECT audit_seq || ':' || encode(audit_prev_hash, 'hex') FROM t_self}),
		"6\n7:$h6", 'purge and insert in one transaction after a restart: the row continues at 7 from the anchor');
	is(verify_ok('t_self'), 'true:1:0', 't_self: verify() ok');

	check_continues('t_rs1', $a1, 'restart');
	is(verify_ok('t_rs1'), 'true:2:0', 't_rs1: verify() ok after the restart and new inserts');
	check_continues('t_all', $a_all, 'restart');
	is(verify_ok('t_all'), 'true:3:0', 't_all: verify() ok after the restart and new inserts');

	($n) = purge('t_rs2', as_admin());
	is($n, 7, 't_rs2: all 7 rows purged');
	my $a2 = latest_anchors('t_rs2');
	$node->stop('immediate');
	$node->start;
	is(nrows('t_rs2'), '0', 't_rs2: the purge survived the crash');
	sql(q{GRANT SELECT, INSERT ON t_rs2 TO nobody});
	{
		local $held_user = 'nobody';
		check_continues('t_rs2', $a2, 'crash');
	}
	is(sql(q{SELECT string_agg(DISTINCT audit_role, ',') FROM t_rs2}), 'nobody',
		'(the rows after the crash were inserted by a role without any hipaa_audit privilege)');
	is(verify_ok('t_rs2'), 'true:2:0', 't_rs2: verify() ok after the crash and new inserts');
	is(verify_ok('t_rs1'), 'true:2:0', 't_rs1: still ok after the crash');
	is(vr($all_note, $vkey), 't|ok|t_all', 'the t_all receipt verifies after the crash');
}

# ---------------------------------------------------------------------
# pg_dump / pg_restore (custom format) into a fresh cluster.
# ---------------------------------------------------------------------
{
	my ($n, $id, $note) = purge('t_dump', as_admin());
	is($n, 7, 't_dump: all 7 rows purged');
	my $a = latest_anchors('t_dump');
	my $nrc = nreceipts();
	my $rchain = sql(q{SELECT ok::text || ':' || receipts FROM hipaa_audit.verify_receipt_chain()});
	my $dump = "$tmp/db.dump";
	$node->command_ok([ 'pg_dump', '--format', 'custom', '--file', $dump,
			'--dbname', $node->connstr('postgres') ], 'pg_dump --format=custom');
	my $dst = ha_node('purge_restore', no_extension => 1);
	sql('CREATE ROLE admin_user; CREATE ROLE nobody', node => $dst);
	$dst->command_ok([ 'pg_restore', '--exit-on-error', '--dbname', $dst->connstr('postgres'), $dump ],
		'pg_restore');
	is(nreceipts(node => $dst), $nrc, 'restored: every receipt and anchor came along');
	is(sql(q{SELECT ok::text || ':' || receipts FROM hipaa_audit.verify_receipt_chain()}, node => $dst),
		$rchain, 'restored: verify_receipt_chain() ok');
	is(verify_ok('t_dump', node => $dst), 'true:0:0', 'restored: t_dump verifies');
	is(verify_ok('t_all', node => $dst), 'true:3:0', 'restored: t_all verifies');
	my ($r, $d) = vr($note, $vkey, node => $dst);
	is($r, 't|ok|t_dump', 'restored: verify_receipt() of the stored receipt ok') or diag $d;
	is(vr($all_note, $vkey, node => $dst), 't|ok|t_all', 'restored: the t_all receipt verifies too');
	($r, $d) = vc($ck_dump, $vkey, node => $dst);
	is($r, 't|ok|t_dump', 'restored: the checkpoint taken before the purge verifies') or diag $d;
	is(problems('t_dump', node => $dst), '', 'restored: verify_problems(t_dump) empty');
	my @ch;
	{
		my @s = map { $dst->background_psql('postgres', timeout => ha_timeout()) } 1 .. 2;
		for my $i (0, 1)
		{
			push @ch, $s[$i]->query_safe("BEGIN; INSERT INTO t_dump VALUES ('restored-$i', 1); "
				  . "SELECT audit_chain FROM t_dump WHERE tag = 'restored-$i'");
		}
		$_->query_safe('COMMIT') for @s;
		$_->quit for @s;
	}
	is(distinct(@ch), 2, 'restored: new rows on both chains of t_dump');
	is(sql(q{SELECT string_agg(audit_chain || ':' || audit_seq || ':' || encode(audit_prev_hash, 'hex'), ' ' ORDER BY audit_chain) FROM t_dump},
			node => $dst),
		join(' ', map { "$_:" . ($a->{$_}[0] + 1) . ":$a->{$_}[1]" } sort keys %$a),
		'restored: the chains continue from the anchors (heads rebuilt from restored anchors)');
	is(verify_ok('t_dump', node => $dst), 'true:2:0', 'restored: t_dump verifies after the new inserts');
	$dst->stop;
}

# ---------------------------------------------------------------------
# DROP TABLE / unprotect() once idle past retention; a held table.
# ---------------------------------------------------------------------
{
	my $newest = sql(q{SELECT max(audit_at) FROM t_drop});
	my $su = sql('SELECT current_user');
	my $h = sql(q{SELECT hipaa_audit.place_hold('t_drop_held', 'keep it')});
	sql('DROP TABLE t_drop');
	is(sql(q{SELECT count(*) FROM pg_class WHERE relname = 't_drop'}), '0', 'DROP TABLE of a table idle past retention succeeds');
	is(sql(q{SET IntervalStyle = postgres; SELECT table_name || '|' || action || '|' || retired_by || '|' || retention || '|' || rows_left || '|' || newest_row_at
		FROM hipaa_audit.retired_tables WHERE table_name LIKE '%t_drop'}),
		"public.t_drop|drop|$su|00:00:04|5|$newest", 'recorded in retired_tables with rows_left 5 and the newest row');
	is(sql(q{SELECT count(*) FROM hipaa_audit.registry WHERE relid::text LIKE '%t_drop'}), '0', 'and gone from the registry');
	like(sql_err('DROP TABLE t_drop_held'),
		qr/ERROR:  42501: cannot DROP protected table public\.t_drop_held\nDETAIL:  The table is under a legal hold\./,
		'DROP TABLE of a held table idle past retention: refused');
	is(nrows('t_drop_held'), '5', 'the held table keeps its rows');
	is(sql(q{SELECT count(*) FROM hipaa_audit.retired_tables WHERE table_name LIKE '%t_drop_held'}), '0',
		'nothing recorded for the held table');
	sql(q{SELECT hipaa_audit.unprotect('t_unprot')}, as_admin());
	is(sql(q{SELECT hipaa_audit.is_protected('t_unprot')}), 'f', 'unprotect() of a table idle past retention succeeds');
	is(sql(q{SELECT action || '|' || retired_by || '|' || rows_left FROM hipaa_audit.retired_tables WHERE table_name = 'public.t_unprot'}),
		'unprotect|admin_user|5', 'recorded in retired_tables');
	is(nrows('t_unprot'), '5', 'the rows stay in the unprotected table');
	sql("SELECT hipaa_audit.release_hold($h, 'done')");
	sql(q{SELECT hipaa_audit.set_retention('t_drop_held', '1 hour')});
	my ($n) = purge('t_drop_held', as_admin());
	is($n . ':' . nrows('t_drop_held'), '0:5', 'after raising the retention to 1 hour, the same rows are kept');

	# A purged, empty table may be dropped; its receipt then names no table.
	sql('DROP TABLE t_hold');
	is(sql(q{SELECT rows_left || ':' || coalesce(newest_row_at::text, 'null') FROM hipaa_audit.retired_tables
		WHERE table_name = 'public.t_hold'}), '0:null', 'the purged, empty t_hold is dropped and recorded with 0 rows');
	is(vr($hold_note, $vkey), 'f|unknown_table|', 'verify_receipt() of the dropped table\'s receipt: unknown_table');
}

# ---------------------------------------------------------------------
# The receipts' hash chain, recomputed; broken after a superuser (library
# unloaded) deletes a receipt row.
# ---------------------------------------------------------------------
{
	my @rc = map { [ split /\|/ ] } split /\n/, sql(q{
		SELECT id, encode(prev_hash, 'hex'), encode(hash, 'hex'), encode(convert_to(note, 'UTF8'), 'hex')
		  FROM hipaa_audit.purge_receipts ORDER BY id});
	my $prev = '00' x 32;
	my $good = 1;
	foreach my $c (@rc)
	{
		my ($id, $ph, $h, $nh) = @$c;
		$good = 0, diag("receipt $id: prev_hash $ph, expected $prev") if $ph ne $prev;
		my $want = unpack('H*', sha256("hipaa_audit/purge/v1\0" . pack('H*', $ph) . pack('H*', $nh)));
		$good = 0, diag("receipt $id: hash $h, recomputed $want") if $h ne $want;
		$prev = $h;
	}
	ok($good, 'each receipt\'s hash is SHA-256(prefix || 0x00 || prev_hash || note), linked to the one before');
	is(sql(q{SELECT count(DISTINCT receipt_id) FROM hipaa_audit.purge_anchors}), scalar @rc,
		'every receipt has its anchors');
	cmp_ok(scalar @rc, '>=', 15, 'a receipt per purge that removed rows');
	is(sql(q{SELECT ok::text || ':' || receipts FROM hipaa_audit.verify_receipt_chain()}), 'true:' . scalar @rc,
		'verify_receipt_chain() ok');
	foreach my $stmt (q{DELETE FROM hipaa_audit.purge_receipts}, q{UPDATE hipaa_audit.purge_anchors SET last_seq = 1},
		q{TRUNCATE hipaa_audit.purge_anchors})
	{
		like(sql_err($stmt), qr/ERROR:  42501: /, "refused to a superuser: $stmt");
	}
	my $victim = $rc[1][0];
	my $victim_note = pack('H*', $rc[1][3]);
	# A position of t_mix that a purge removed, for a row to be put back at.
	my ($pc, $pl) = split /\|/, sql(q{SELECT a.chain, a.last_seq FROM hipaa_audit.purge_anchors a
		JOIN hipaa_audit.registry g ON g.table_uuid = a.table_uuid
		WHERE g.relid = 't_mix'::regclass ORDER BY a.chain LIMIT 1});
	$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
	$node->restart;
	sql("SET session_replication_role = replica; DELETE FROM hipaa_audit.purge_receipts WHERE id = $victim");
	sql("ALTER TABLE t_mix DISABLE TRIGGER ALL; UPDATE t_mix SET n = 99 WHERE tag LIKE 'new-%' AND n = 2;
		CREATE TEMP TABLE back AS SELECT * FROM t_mix WHERE audit_chain = $pc ORDER BY audit_seq LIMIT 1;
		UPDATE back SET audit_seq = $pl; INSERT INTO t_mix SELECT * FROM back;
		ALTER TABLE t_mix $reenable");
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
	$node->restart;
	# The row put back at a purged position, in every mode that reads it.
	my $agg = "SELECT string_agg(chain || ':' || seq || ':' || kind, ' ')";
	like(problems('t_mix'), qr/(^| )$pc:$pl:purged_row_present( |$)/,
		'a row put back at a position a purge removed: purged_row_present at it');
	like(sql("$agg FROM hipaa_audit.verify_rows_problems('t_mix', chain => $pc)"),
		qr/(^| )$pc:$pl:purged_row_present( |$)/, 'and by the check of its chain');
	like(sql("$agg FROM hipaa_audit.verify_rows_problems('t_mix', from_time => '-infinity')"),
		qr/(^| )$pc:$pl:purged_row_present( |$)/, 'and by the check of all time');
	my ($ok, $n, $first) = split /\|/, sql(q{SELECT ok, receipts, first_problem FROM hipaa_audit.verify_receipt_chain()});
	is("$ok|$n", 'f|' . (scalar(@rc) - 1), 'verify_receipt_chain() is broken after a receipt row was deleted');
	like($first, qr/\Areceipt $victim: /, 'and names the deleted receipt (its anchors are orphaned)');
	my ($r, $d) = vr($victim_note, $vkey);
	like($r, qr/\Af\|/, 'verify_receipt() of the deleted receipt no longer says ok') or diag $d;
	note "verify_receipt() of the deleted receipt: $r ($d)";
	# Each anchor of the deleted receipt, at its chain and last position,
	# and the rows it claims were purged as a gap from its first position.
	my @orphans = split /\n/, sql("SELECT chain || ' ' || first_seq || ' ' || last_seq "
		  . "FROM hipaa_audit.purge_anchors WHERE receipt_id = $victim ORDER BY chain");
	cmp_ok(scalar @orphans, '>', 0, 'the deleted receipt had anchors');
	my $tall = problems('t_all');
	foreach my $o (@orphans)
	{
		my ($c, $f, $l) = split / /, $o;
		like($tall, qr/(^| )$c:$l:anchor_without_receipt( |$)/,
			"verify() of t_all reports the unlisted anchor at chain $c, position $l");
		like($tall, qr/(^| )$c:$f:gap( |$)/,
			"and the rows it claims were purged as a gap from position $f");
	}
	unlike($tall, qr/-1:-1:anchor_without_receipt/, 'no anchor problem without its chain and position');
	# The checks that start from anchors check them against the receipts too.
	my $tall_rows = sql("SELECT string_agg(chain || ':' || seq || ':' || kind, ' ') "
		  . "FROM hipaa_audit.verify_rows_problems('t_all', from_time => '-infinity')");
	foreach my $o (@orphans)
	{
		my ($c, $f, $l) = split / /, $o;
		like($tall_rows, qr/(^| )$c:$l:anchor_without_receipt( |$)/,
			"verify_rows() of t_all reports the unlisted anchor at chain $c, position $l");
	}
	($r, $d) = vr($mix_note, $vkey);
	is($r, 'f|table_rewritten|t_mix', 'verify_receipt() after a kept row of t_mix was changed: table_rewritten')
	  or diag $d;
}

# A long backlog in several transactions: max_rows bounds each purge, every
# chain still loses only a prefix, and the pieces add up.
{
	sql(q{CREATE TABLE t_batch (tag text, n int);
		SELECT hipaa_audit.protect('t_batch', retention => '1 second', chains => 3)});
	my @bc = held_inserts('t_batch', 'old', 3, 3, 3);
	is(distinct(@bc), 3, 't_batch: three writers, three chains');
	ok($node->poll_query_until('postgres',
			q{SELECT clock_timestamp() > (SELECT max(audit_at) FROM t_batch) + interval '1.2 seconds'}),
		't_batch: rows expired');
	like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_batch', max_rows => 0)}, as_admin()),
		qr/ERROR:  22023: max_rows must be at least 1/, 'max_rows 0 is refused (22023)');
	is(sql(q{SELECT rows_removed FROM hipaa_audit.purge_expired('t_batch', dry_run => true, max_rows => 4)}, as_admin()),
		'4', 'a dry run honours max_rows');
	my @got;
	my $left = 9;
	foreach my $round (1 .. 4)
	{
		my $n = purge_limited('t_batch', 4);
		push @got, $n;
		$left -= $n;
		is(verify_ok('t_batch'), "true:$left:0", "t_batch verifies after purge $round ($left rows left)");
	}
	is(join(',', @got), '4,4,1,0', 't_batch: purges of at most 4 rows remove 4, 4, 1, then nothing');
	my $anchors = anchors_of('t_batch');
	my %next;
	my $contiguous = 1;
	foreach my $a (split / /, $anchors)
	{
		my ($c, $first, $last) = split /:/, $a;
		$contiguous = 0 if $first != ($next{$c} // 1);
		$next{$c} = $last + 1;
	}
	ok($contiguous, "t_batch: each chain's removed ranges follow each other without gap or overlap ($anchors)");
	is(join(',', map { $next{$_} - 1 } sort keys %next), '3,3,3', 't_batch: every chain purged to its end');
}

# The server log records each purge.
{
	my $log = slurp_file($node->logfile);
	like($log, qr/LOG:  hipaa_audit: purged 15 expired rows from public\.t_all \(receipt $all_id\) by role admin_user/,
		'the server log records the purge, its receipt and the role');
}

# The purge under the lowered retention.
{
	ok($node->poll_query_until('postgres',
			q{SELECT clock_timestamp() > (SELECT max(audit_at) FROM t_lowered) + interval '1.2 seconds'}),
		't_lowered: rows past the lowered retention');
	my ($n, $id, $receipt) = purge('t_lowered', as_admin());
	is($n, '5', 't_lowered: a genuine purge under the lowered retention removes the rows');
	like($receipt, qr/\nretention 00:00:01\n/, 'its receipt states the lowered retention');
	my ($r, $d) = vr($receipt, $vkey);
	is($r, 'f|retention_contradicted|t_lowered',
		'verify_receipt(): the receipt contradicts the checkpoint signed before it') or diag($d);
	like($d, qr/\Astored checkpoint \d+ of .* states a retention of 01:00:00; the receipt states 00:00:01 and cutoff /,
		'the detail names the checkpoint and both retentions');
	is(vc($ck_lowered, $vkey), 't|ok|t_lowered', 'the checkpoint itself still verifies (a receipt covers its heads)');
}

$node->stop;
note sprintf('022_purge took %.0f s', time - $t_start);
done_testing();
