# verify_rows(): one chain, or the rows of a time range (of one chain or
# of all), found through the BRIN index on audit_at that protect() creates,
# each range linked to the row before it and the row after it.  What it
# sees, what it cannot see (rows outside the range: the full verify() does),
# that it reads a part of the table, and its bad inputs.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $node = ha_node('rows');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub sqlstate_of
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	return $err;
}

sub rows_problems
{
	my ($args) = @_;
	return sql("SELECT coalesce(string_agg(chain || ':' || seq || ':' || kind, ' '), '') "
		  . "FROM hipaa_audit.verify_rows_problems('log', $args)");
}

sub rows_summary
{
	my ($args) = @_;
	return sql("SELECT ok || ':' || rows_checked || ':' || problems FROM hipaa_audit.verify_rows('log', $args)");
}

# Twenty batches written at distinct times by separate sessions, so chains
# and times interleave as they do under concurrent writers.
sql(q{
	CREATE TABLE log (id int, batch int, note text);
	SELECT hipaa_audit.protect('log', chains => 4);
});
like(sql(q{SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'log'::regclass AND indisunique = false}),
	qr/USING brin \(audit_at\) WITH \(autosummarize='on'\)/, 'protect() created a BRIN index on audit_at');
for my $b (1 .. 20)
{
	sql("INSERT INTO log SELECT g, $b, repeat('x', 150) FROM generate_series(1, 2000) g; SELECT pg_sleep(0.02)");
}
sql(q{SELECT brin_summarize_new_values('log_audit_at_idx')});

# The range of batch 4, and where it lies in its chain.
my ($from, $to) = split /\|/, sql(q{SELECT min(audit_at), max(audit_at) FROM log WHERE batch = 4});
my ($c, $lo, $hi) = split /\|/, sql(q{SELECT min(audit_chain), min(audit_seq), max(audit_seq) FROM log WHERE batch = 4});
is(sql(q{SELECT count(DISTINCT audit_chain) FROM log WHERE batch = 4}), '1', 'a batch is one session: one chain');
my $before_exists = sql("SELECT count(*) FROM log WHERE audit_chain = $c AND audit_seq = $lo - 1");
my $after_exists = sql("SELECT count(*) FROM log WHERE audit_chain = $c AND audit_seq = $hi + 1");
my $range = "from_time => '$from', to_time => '$to'";
# A chain with no row in the range is walked from its last row before it
# (or its first row) to the next row: 1 or 2 rows each.
sub edge_rows
{
	my ($where) = @_;
	return sql("SELECT coalesce(sum(CASE WHEN b IS NULL THEN 1 ELSE 1 + (EXISTS (SELECT 1 FROM log l2
		  WHERE l2.audit_chain = x.audit_chain AND l2.audit_seq > x.b))::int END), 0)
		  FROM (SELECT audit_chain, max(audit_seq) FILTER (WHERE audit_at < '$from') b
		          FROM log WHERE $where GROUP BY 1) x");
}
my $others = edge_rows("audit_chain <> $c");

is(rows_summary($range), 'true:' . (2000 + $before_exists + $after_exists + $others) . ':0',
	'a time range: its 2000 rows, the row before and the row after, and the edges of the other chains, intact');
is(rows_summary("chain => $c, $range"), 'true:' . (2000 + $before_exists + $after_exists) . ':0',
	'the same range restricted to its chain');
is(rows_summary("chain => ($c + 1) % 4, $range"), 'true:' . edge_rows('audit_chain = ' . (($c + 1) % 4)) . ':0',
	'the range on a chain with no rows in it: only the rows at its edge');
is(rows_summary("chain => $c"), 'true:' . sql("SELECT count(*) FROM log WHERE audit_chain = $c") . ':0',
	'one whole chain: every row of it');
is(rows_summary("from_time => '$from'"), 'true:' . sql("SELECT count(*) FROM log WHERE audit_at >= '$from'
	  OR (audit_chain, audit_seq) IN (SELECT audit_chain, max(audit_seq) FROM log WHERE audit_at < '$from'
	    AND audit_chain IN (SELECT audit_chain FROM log WHERE audit_at >= '$from') GROUP BY 1)") . ':0',
	'an open range (from_time only): the rows from then, each chain linked to its row before');

# Only a part of the table is read: blocks fetched in one transaction.
my $fetched = sql(qq{
	BEGIN;
	SELECT pg_stat_get_xact_blocks_fetched('log'::regclass) AS b0 \\gset
	SELECT ok FROM hipaa_audit.verify_rows('log', $range) \\g /dev/null
	SELECT pg_stat_get_xact_blocks_fetched('log'::regclass) - :b0;
	COMMIT;
});
my $blocks = sql(q{SELECT pg_relation_size('log') / current_setting('block_size')::int});
ok($fetched < $blocks / 2, "the range read $fetched of the table's $blocks blocks");

# Tampering, by a superuser who unloads the extension.
sub tamper
{
	my ($stmts) = @_;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
	$node->restart;
	sql("ALTER TABLE log DISABLE TRIGGER ALL; $stmts;
		ALTER TABLE log ENABLE ALWAYS TRIGGER hipaa_audit_chain, ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
		  ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;");
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
	$node->restart;
}

my $mid = $lo + 700;
my ($c9, $s9) = split /\|/, sql(q{SELECT audit_chain, min(audit_seq) + 5 FROM log WHERE batch = 9 GROUP BY 1});
tamper("UPDATE log SET note = 'rewritten' WHERE audit_chain = $c AND audit_seq = $mid;
	UPDATE log SET note = 'rewritten' WHERE audit_chain = $c9 AND audit_seq = $s9");
is(rows_problems($range), "$c:$mid:hash_mismatch", 'a row changed inside the range: reported at its position');
is(rows_problems("chain => $c, $range"), "$c:$mid:hash_mismatch", 'and by the range on its chain');
like(rows_problems("chain => $c9"), qr/(^| )$c9:$s9:hash_mismatch( |$)/, 'a row of batch 9: reported by the check of its chain');
unlike(rows_problems($range), qr/(^| )$c9:$s9:/, 'a change outside the range is not seen by it');
like(sql(q{SELECT string_agg(chain || ':' || seq || ':' || kind, ' ') FROM hipaa_audit.verify_problems('log')}),
	qr/(^| )$c9:$s9:hash_mismatch( |$)/, 'the full verify() reports the change outside the range');

SKIP:
{
	skip 'batch 4 is the first on its chain: no row before it', 2 unless $before_exists;
	tamper("UPDATE log SET note = 'rewritten' WHERE audit_chain = $c AND audit_seq = $lo - 1");
	like(rows_problems($range), qr/^@{[$c]}:@{[$lo - 1]}:hash_mismatch /,
		'the row before the range changed: its hash is recomputed, reported at its position');
	tamper("DELETE FROM log WHERE audit_chain = $c AND audit_seq = $lo - 1");
	like(rows_problems($range), qr/^@{[$c]}:@{[$lo - 1]}:gap /,
		'the row before the range deleted: the range no longer links, a gap at its position');
}
SKIP:
{
	skip 'batch 4 is the last on its chain: no row after it', 1 unless $after_exists;
	tamper("DELETE FROM log WHERE audit_chain = $c AND audit_seq = $hi");
	like(rows_problems($range), qr/(^| )$c:$hi:gap( |$)/,
		'the last row of the range deleted: the row after it no longer links, a gap');
}

# Every row of a range deleted: that chain has no row left in the range,
# and is still walked across it, so the gap shows.
my ($f6, $t6, $c6, $lo6, $hi6) = split /\|/, sql(q{SELECT min(audit_at), max(audit_at), min(audit_chain),
	min(audit_seq), max(audit_seq) FROM log WHERE batch = 6});
SKIP:
{
	skip 'batch 6 is the last on its chain: nothing after it to show the gap', 2
	  unless sql("SELECT count(*) FROM log WHERE audit_chain = $c6 AND audit_seq > $hi6");
	# (one gap per run of missing rows: from the first missing position)
	my $gap6 = sql("SELECT coalesce(max(audit_seq), 0) + 1 FROM log WHERE audit_chain = $c6 AND audit_seq < $lo6");
	tamper('DELETE FROM log WHERE batch = 6');
	like(rows_problems("from_time => '$f6', to_time => '$t6'"), qr/(^| )$c6:$gap6:gap( |$)/,
		'every row of a range deleted: a gap from its first missing position');
	like(rows_problems("chain => $c6, from_time => '$f6', to_time => '$t6'"), qr/(^| )$c6:$gap6:gap( |$)/,
		'and through the range on that chain');
}

# A B-tree index on audit_at serves as well; without any, a clear refusal.
my $with_brin = rows_problems($range);
sql(q{DROP INDEX log_audit_at_idx; CREATE INDEX log_at_btree ON log (audit_at)});
is(rows_problems($range), $with_brin, 'through a B-tree index on audit_at: the same problems');
# Only PostgreSQL's own default operator class counts: a BRIN bloom index
# on audit_at cannot answer a range and is not taken.
sql(q{DROP INDEX log_at_btree; CREATE INDEX log_at_bloom ON log USING brin (audit_at timestamptz_bloom_ops)});
like(sqlstate_of("SELECT * FROM hipaa_audit.verify_rows('log', $range)"),
	qr/ERROR:  55000: table public\.log has no index on audit_at/, 'a BRIN bloom index on audit_at is not used: 55000');
sql(q{DROP INDEX log_at_bloom});
like(sqlstate_of("SELECT * FROM hipaa_audit.verify_rows('log', $range)"),
	qr/ERROR:  55000: table public\.log has no index on audit_at to find a time range with\nHINT:  CREATE INDEX ON public\.log USING brin \(audit_at\)/,
	'no index on audit_at: 55000, with the command that makes one');
like(rows_problems("chain => $c"), qr/:$mid:hash_mismatch/, 'one whole chain needs no time index');

# Bad input: each refused with its SQLSTATE, nothing changed.
my $before = sql(q{SELECT count(*) || '/' || sum(hashtext(audit_hash::text)) FROM log});
like(sqlstate_of("SELECT * FROM hipaa_audit.verify_rows('log', chain => 4)"),
	qr/ERROR:  22023: chain 4 is not a chain of table public\.log\nDETAIL:  The table has chains 0 to 3\./,
	'a chain past the last: 22023');
like(sqlstate_of("SELECT * FROM hipaa_audit.verify_rows_problems('log', chain => -1)"),
	qr/ERROR:  22023: chain -1 is not a chain of table public\.log/, 'a negative chain: 22023');
like(sqlstate_of("SELECT * FROM hipaa_audit.verify_rows('log', from_time => '$to', to_time => '$from')"),
	qr/ERROR:  22023: from_time is later than to_time\nDETAIL:  An empty range checks nothing\.\nHINT:  Give the earlier time as from_time\./,
	'from_time after to_time: 22023');
like(sqlstate_of(q{SELECT * FROM hipaa_audit.verify_rows('log')}),
	qr/ERROR:  22023: hipaa_audit\.verify_rows needs a chain, a time range, or both\nHINT:  hipaa_audit\.verify\(tbl\) checks the whole table\./,
	'neither a chain nor a time: 22023');
like(sqlstate_of(q{SELECT * FROM hipaa_audit.verify_rows(NULL, chain => 1)}),
	qr/ERROR:  22004: argument tbl of hipaa_audit\.verify_rows must not be null/, 'tbl NULL: 22004');
sql(q{CREATE TABLE plain (id int)});
like(sqlstate_of(q{SELECT * FROM hipaa_audit.verify_rows('plain', chain => 0)}),
	qr/ERROR:  [0-9A-Z]{5}: table public\.plain is not protected/, 'a table that is not protected: refused');
sql(q{CREATE ROLE outsider LOGIN});
like(sqlstate_of(q{SET ROLE outsider; SELECT * FROM hipaa_audit.verify_rows('log', chain => 0)}),
	qr/ERROR:  42501: permission denied to verify table public\.log/, 'a role without SELECT on the table: 42501');
is(sql(q{SELECT count(*) || '/' || sum(hashtext(audit_hash::text)) FROM log}), $before,
	'nothing was changed by the refused calls');

$node->stop;
done_testing();
