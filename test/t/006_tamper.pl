# Real tampering, the way an insider with the data files or a superuser who
# unloads the extension would do it, and what verify_problems() says.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $node = ha_node('tamper');

# What the full verify_problems() says; every table here has one chain, so
# the check of that chain (verify_rows(chain => 0)) and of all time
# (verify_rows(from_time => '-infinity'), through the BRIN index) must say
# exactly the same, and the test checks that they do.
sub problems
{
	my ($table) = @_;
	my $agg = "SELECT string_agg(chain || ':' || seq || ':' || kind, ' ' ORDER BY chain, seq, kind)";
	my $full = $node->safe_psql('postgres', "$agg FROM hipaa_audit.verify_problems('$table')");
	is($node->safe_psql('postgres', "$agg FROM hipaa_audit.verify_rows_problems('$table', chain => 0)"),
		$full, "$table: the check of its one chain reports the same as the full check");
	is($node->safe_psql('postgres',
			"$agg FROM hipaa_audit.verify_rows_problems('$table', from_time => '-infinity')"),
		$full, "$table: the check of all time reports the same as the full check");
	return $full;
}

sub edit_file
{
	my ($path, $from, $to) = @_;
	die "replacement must keep the length" unless length($from) == length($to);
	open(my $fh, '+<:raw', $path) or die "open $path: $!";
	local $/;
	my $data = <$fh>;
	my $pos = index($data, $from);
	die "marker $from not found in $path" if $pos < 0;
	seek($fh, $pos, 0) or die;
	print $fh $to;
	close($fh) or die;
	rewrite_checksums();
	return $pos;
}

# With data checksums on (initdb's default from PostgreSQL 18), an insider
# who edits a page also makes its checksum fit, or PostgreSQL itself would
# refuse to read the page: pg_checksums, with the server stopped, rewrites
# them all.  Then only the hash chain can tell.
sub rewrite_checksums
{
	my $control = `pg_controldata '${\ $node->data_dir}'`;
	return unless $control =~ /Data page checksum version:\s+[1-9]/;
	for my $step ('--disable', '--enable')
	{
		PostgreSQL::Test::Utils::run_log(
			[ 'pg_checksums', '--pgdata', $node->data_dir, $step ])
		  or die "pg_checksums $step failed";
	}
}

# ---------------------------------------------------------------------
# 1. Bytes of a row changed in the table's data file, server stopped.
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE TABLE file_log (id int, actor text, big text);
	ALTER TABLE file_log ALTER COLUMN big SET STORAGE EXTERNAL;
	SELECT hipaa_audit.protect('file_log', chains => 1);
	INSERT INTO file_log (id, actor)
	SELECT g, 'actor-' || lpad(g::text, 4, '0') FROM generate_series(1, 50) g;
	-- row 51 carries a TOASTed value (EXTERNAL: stored uncompressed)
	INSERT INTO file_log VALUES (51, 'toasted',
		repeat('abcdefghij', 3000) || 'TOASTMARK-0051' || repeat('klmnopqrst', 3000));
});
is($node->safe_psql('postgres', q{SELECT ok FROM hipaa_audit.verify('file_log')}), 't',
	'file_log verifies before tampering');
is($node->safe_psql('postgres', q{SELECT audit_seq FROM file_log WHERE id = 42}), '42',
	'row 42 is at position 42');

my $datadir = $node->data_dir;
my $heap = $node->safe_psql('postgres', q{SELECT pg_relation_filepath('file_log')});
my $toast = $node->safe_psql('postgres',
	q{SELECT pg_relation_filepath(reltoastrelid) FROM pg_class WHERE oid = 'file_log'::regclass});
$node->stop;
edit_file("$datadir/$heap", 'actor-0042', 'actor-9942');
$node->start;
is(problems('file_log'), '0:42:hash_mismatch',
	'an edited heap byte is reported at exactly its row');
is($node->safe_psql('postgres', q{SELECT actor FROM file_log WHERE id = 42}), 'actor-9942',
	'(the edit really reached the table)');

$node->stop;
edit_file("$datadir/$toast", 'TOASTMARK-0051', 'TOASTMARK-9951');
$node->start;
is(problems('file_log'), '0:42:hash_mismatch 0:51:hash_mismatch',
	'an edited TOAST byte is reported at exactly its row');

# ---------------------------------------------------------------------
# 2. A superuser unloads the extension, disables the triggers and edits
#    rows with SQL, then puts everything back.
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE TABLE access_log (id int, actor text, note text);
	SELECT hipaa_audit.protect('access_log', chains => 1);
	INSERT INTO access_log SELECT g, 'user' || g, 'note ' || g FROM generate_series(1, 20) g;
	CREATE TABLE other_log (id int, actor text, note text);
	SELECT hipaa_audit.protect('other_log', chains => 1);
	INSERT INTO other_log VALUES (1, 'elsewhere', 'from another table');
});
is($node->safe_psql('postgres', q{SELECT ok FROM hipaa_audit.verify('access_log')}), 't',
	'access_log verifies before tampering');

$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
$node->safe_psql('postgres', q{
	ALTER TABLE access_log DISABLE TRIGGER ALL;
	-- deleted: the first row, one in the middle, the last but one
	DELETE FROM access_log WHERE audit_seq IN (1, 10, 19);
	-- a changed value
	UPDATE access_log SET note = 'rewritten' WHERE audit_seq = 5;
	-- two rows' contents swapped (reordering)
	UPDATE access_log a SET actor = b.actor, note = b.note, id = b.id
	  FROM (SELECT audit_seq, actor, note, id FROM access_log WHERE audit_seq IN (7, 8)) b
	 WHERE a.audit_seq IN (7, 8) AND b.audit_seq = 15 - a.audit_seq;
	-- a forged row appended, linked correctly but with a made-up hash
	INSERT INTO access_log (id, actor, note, audit_chain, audit_seq, audit_at,
	                        audit_session_role, audit_role, audit_prev_hash, audit_hash)
	SELECT 21, 'forged', 'never happened', 0, 21, now(), 'postgres', 'postgres',
	       audit_hash, sha256('made up')
	  FROM access_log WHERE audit_seq = 20;
	-- a row copied in from another protected table, relinked
	INSERT INTO access_log (id, actor, note, audit_chain, audit_seq, audit_at,
	                        audit_session_role, audit_role, audit_client,
	                        audit_prev_hash, audit_hash)
	SELECT o.id, o.actor, o.note, 0, 22, o.audit_at, o.audit_session_role, o.audit_role,
	       o.audit_client, f.audit_hash, o.audit_hash
	  FROM other_log o, access_log f WHERE f.audit_seq = 21;
	-- chain columns changed: a server-stamped fact, and a stored hash
	UPDATE access_log SET audit_at = audit_at - interval '1 day' WHERE audit_seq = 12;
	UPDATE access_log SET audit_hash = sha256('rewritten hash') WHERE audit_seq = 14;
	-- a duplicated row, after swapping the unique index for a plain one
	DROP INDEX access_log_audit_chain_audit_seq_idx;
	CREATE INDEX access_log_plain_idx ON access_log (audit_chain, audit_seq);
	INSERT INTO access_log SELECT * FROM access_log WHERE audit_seq = 3;
	ALTER TABLE access_log ENABLE ALWAYS TRIGGER hipaa_audit_chain,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
	  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;
});
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;

is(problems('access_log'),
	'-1:-1:malformed 0:1:gap 0:3:duplicate 0:5:hash_mismatch 0:7:hash_mismatch '
	  . '0:8:hash_mismatch 0:10:gap 0:12:hash_mismatch 0:14:hash_mismatch 0:15:broken_link '
	  . '0:19:gap 0:21:hash_mismatch 0:22:hash_mismatch',
	'every change is reported at its position: deletions as gaps, edits, swaps, '
	  . 'changed chain columns, forged and copied rows as hash mismatches, a rewritten '
	  . 'hash also as the next row\'s broken link, the duplicate, the replaced index');
my ($ok, $checked) = split /\|/, $node->safe_psql('postgres',
	q{SELECT ok, rows_checked FROM hipaa_audit.verify('access_log')});
is($ok, 'f', 'verify() says the table is not intact');
is($checked, '20', 'and how many rows it checked');
is(problems('other_log'), '', 'the other table is intact');
is(problems('file_log'), '0:42:hash_mismatch 0:51:hash_mismatch',
	'the file edits are still reported after the restarts');

# The protection itself is back: the superuser's tools are refused again.
my ($rc, $out, $err) = $node->psql('postgres', 'DELETE FROM access_log');
like($err, qr/cannot DELETE FROM protected table public\.access_log/,
	'with the library back, changes are refused again');

$node->stop;
done_testing();
