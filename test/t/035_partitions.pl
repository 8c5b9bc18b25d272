# Partitioned audit tables (docs/partitions.md), end to end on a real
# server: pg_partman making and retiring monthly partitions (PostgreSQL 15,
# where Debian packages it; plain partition DDL otherwise), lawful removal
# of whole partitions by DROP TABLE, DETACH PARTITION and purge_expired(),
# each with a signed receipt that verify_receipt() accepts; checkpoints of
# the partitioned table; a partition dropped while the library was not
# loaded, reported by verify() and verify_checkpoint(); pg_dump and
# pg_restore; a streaming standby; and kill -9 under concurrent inserts into
# several partitions.
#
# Insertion times are stamped by the server, so rows are made "old" by
# protecting with a retention of a few seconds and waiting.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use Digest::SHA qw(sha256_hex);
use HaTest;
use HaNote;

$ENV{PGCLIENTENCODING} = 'UTF8';

my $keydir = PostgreSQL::Test::Utils::tempdir;
my $key = "$keydir/server.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $key);
chmod 0600, $key;

my $node = ha_node('parts',
	init => { allows_streaming => 1, extra => [ '--encoding=UTF8', '--locale=C' ] },
	conf => "log_statement = none\n"
	  . "min_dynamic_shared_memory = 64MB\n"	# DSM reused without zeroing
	  . "shared_buffers = 16MB\n"	# one INSERT into 500 partitions pins a buffer each
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
	my ($rc, $out, $err) = $n->psql('postgres', "\\set VERBOSITY verbose\n$sql", %o);
	return $rc == 0 ? "(no error) $out" : $err;
}

sub verify_of
{
	my ($tbl, %o) = @_;
	return sql("SELECT ok::text || ':' || rows_checked || ':' || problems FROM hipaa_audit.verify('$tbl')", %o);
}

sub problems_of
{
	my ($tbl, %o) = @_;
	return sql("SELECT coalesce(string_agg(kind, ' ' ORDER BY kind), '') FROM hipaa_audit.verify_problems('$tbl')", %o);
}

sub partitions_of
{
	my ($tbl, %o) = @_;
	return sql("SELECT coalesce(string_agg(table_name, ' ' ORDER BY table_name), '') "
		  . "FROM hipaa_audit.protected_tables WHERE partition_of = '$tbl'::regclass", %o);
}

sub receipt_check
{
	my ($id) = @_;
	return sql("SELECT ok::text || ':' || status || ':' || coalesce(tbl::text, '') "
		  . "FROM hipaa_audit.verify_receipt((SELECT note FROM hipaa_audit.purge_receipts WHERE id = $id), "
		  . "hipaa_audit.verifier_key())");
}



my $vkey = sql('SELECT hipaa_audit.verifier_key()');
ok($vkey =~ /^audit\.example\.org\+/, 'the server signs with its key file');

# ---------------------------------------------------------------------
# pg_partman: monthly partitions made by create_parent() and
# run_maintenance() are protected; its retention drops an expired month
# with a receipt and is refused for a month within retention.
# ---------------------------------------------------------------------
my $have_partman = sql(q{SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_partman'});
SKIP:
{
	skip 'pg_partman is not packaged for this PostgreSQL (Debian has it for 15 only); plain partition DDL is tested below', 16
	  unless $have_partman;
	# Months relative to today, so that the test means the same any day:
	# m0 and m1 are 18 and 17 months back.
	sql(q{
		CREATE SCHEMA partman;
		CREATE EXTENSION pg_partman SCHEMA partman;
		CREATE TABLE ev (id bigserial, happened timestamptz NOT NULL, who text, what text)
		    PARTITION BY RANGE (happened);
		SELECT hipaa_audit.protect('ev', '3 seconds', 2);
		SELECT partman.create_parent('public.ev', 'happened', 'native', 'monthly', p_premake := 2,
		    p_start_partition := date_trunc('month', now() - interval '18 months')::text);
	});
	my $made = sql(q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'ev'::regclass});
	cmp_ok($made, '>=', 20, "create_parent() made $made partitions");
	is(sql(q{SELECT count(*) FROM pg_inherits i
	          WHERE inhparent = 'ev'::regclass
	            AND NOT EXISTS (SELECT 1 FROM hipaa_audit.registry r
	                             WHERE r.relid = i.inhrelid AND r.partition_of = 'ev'::regclass)}),
		'0', 'every partition pg_partman made (default included) is protected');
	like(partitions_of('ev'), qr/\bev_default\b/, 'the default partition is protected');
	sql(q{INSERT INTO ev (happened, who, what)
	      SELECT date_trunc('month', now() - interval '18 months') + g * interval '1 hour', 'u' || g, 'read'
	        FROM generate_series(1, 40) g});
	sql(q{INSERT INTO ev (happened, who, what)
	      SELECT date_trunc('month', now() - interval '17 months') + g * interval '1 hour', 'v' || g, 'read'
	        FROM generate_series(1, 10) g});
	my ($m0, $m1) = split /\n/, sql(q{
		SELECT DISTINCT n.nspname || '.' || c.relname FROM ev JOIN pg_class c ON c.oid = ev.tableoid
		  JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY 1});
	sleep 4;
	# A row within retention in m1: its month stays.
	sql(q{INSERT INTO ev (happened, who, what)
	      VALUES (date_trunc('month', now() - interval '17 months') + interval '2 days', 'late', 'read')});
	sql(q{INSERT INTO ev (happened, who, what) VALUES (now(), 'today', 'read')});
	is(verify_of('ev'), 'true:52:0', 'verify() of the partitioned table: every row of every partition');

	# pg_partman's retention reaching m0 (expired, 40 rows) and m1 (one row
	# within retention): m1's drop is refused, so run_maintenance() fails
	# and changes nothing.
	sql(q{UPDATE partman.part_config SET retention = '15 months', retention_keep_table = false
	       WHERE parent_table = 'public.ev'});
	my $before = partitions_of('ev');
	my $err = sql_err(q{SELECT partman.run_maintenance('public.ev')});
	like($err, qr/cannot DROP protected table \Q$m1\E.*within their retention/s,
		'pg_partman retention of a month with a row within retention is refused');
	like($err, qr/purge_expired/s, '... naming purge_expired() (pg_partman re-raises the error with its hint)');
	is(partitions_of('ev'), $before, '... and no partition went');
	is(sql(q{SELECT count(*) FROM hipaa_audit.purge_receipts}), '0', '... and no receipt was stored');

	# m0 alone is past pg_partman's retention.
	sql(q{UPDATE partman.part_config SET retention = '17 months' WHERE parent_table = 'public.ev'});
	sql(q{SELECT partman.run_maintenance('public.ev')});
	(my $m0name = $m0) =~ s/^public\.//;
	(my $m1name = $m1) =~ s/^public\.//;
	note("months: $m0 and $m1");
	unlike(partitions_of('ev'), qr/\b\Q$m0name\E\b/, "pg_partman retention dropped $m0");
	like(partitions_of('ev'), qr/\b\Q$m1name\E\b/, "... and kept $m1");
	my ($rid, $rows, $note) = split /\|/, sql(q{
		SELECT id, rows_removed, note FROM hipaa_audit.purge_receipts ORDER BY id DESC LIMIT 1});
	is($rows, '40', 'the drop left a receipt for its 40 rows');
	like($note, qr/\ntable \Q$m0\E\npartition-of [0-9a-f-]{36} public\.ev\n.*\nremoved drop\nrows 40\n/s,
		'... naming the partition, its partitioned table and the removal');
	is(receipt_check($rid), 'true:ok:ev', 'verify_receipt() accepts the removal receipt');
	is(verify_of('ev'), 'true:12:0', 'verify() of the partitioned table after the drop');

	# Maintenance makes new months ahead; they are protected too.
	sql(q{UPDATE partman.part_config SET premake = 5 WHERE parent_table = 'public.ev'});
	sql(q{SELECT partman.run_maintenance('public.ev')});
	is(sql(q{SELECT count(*) FROM pg_inherits i WHERE inhparent = 'ev'::regclass
	          AND NOT EXISTS (SELECT 1 FROM hipaa_audit.registry r WHERE r.relid = i.inhrelid)}),
		'0', 'partitions run_maintenance() premade later are protected');
}

# ---------------------------------------------------------------------
# Plain DDL: DROP TABLE and DETACH PARTITION of expired months, each with a
# receipt; purge_expired() dropping whole partitions and purging the
# prefix of a partly expired one.
# ---------------------------------------------------------------------
my $receipts0 = sql(q{SELECT count(*) FROM hipaa_audit.purge_receipts});
sql(q{
	CREATE TABLE al (id bigserial, happened date NOT NULL, who text) PARTITION BY RANGE (happened);
	CREATE TABLE al_01 PARTITION OF al FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
	CREATE TABLE al_02 PARTITION OF al FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
	CREATE TABLE al_03 PARTITION OF al FOR VALUES FROM ('2026-03-01') TO ('2026-04-01');
	CREATE TABLE al_04 PARTITION OF al FOR VALUES FROM ('2026-04-01') TO ('2026-05-01');
	CREATE TABLE al_05 PARTITION OF al FOR VALUES FROM ('2026-05-01') TO ('2026-06-01');
	SELECT hipaa_audit.protect('al', '3 seconds', 3);
});
for my $m (1 .. 5)
{
	sql(sprintf(q{INSERT INTO al (happened, who) SELECT '2026-%02d-01'::date + (g %% 28), 'p' || g
	              FROM generate_series(1, %d) g}, $m, 10 * $m));
}
my $cp_before = sql(q{SELECT hipaa_audit.checkpoint('al')});
like($cp_before, qr/\nrows 150\n(partition [0-9a-f-]{36} [0-9a-f]{64}\n){5}\n/,
	'checkpoint() of the partitioned table binds the checkpoint of each of its 5 partitions');
my @leaf_notes = split /\x{1F}/, sql(q{
	SELECT string_agg(note, chr(31) ORDER BY id) FROM hipaa_audit.checkpoints
	 WHERE relid::text LIKE 'al\_0%'});
is(scalar @leaf_notes, 5, '... each stored as a checkpoint of its own');
my %bound = map { $_ => 1 } $cp_before =~ /^partition [0-9a-f-]{36} ([0-9a-f]{64})$/mg;
is(scalar(grep { $bound{ sha256_hex($_) } } @leaf_notes), 5,
	'... and each partition line is the SHA-256 of one of them');
is(sql("SELECT ok::text || ':' || status FROM hipaa_audit.verify_checkpoint("
	  . HaNote::lit($cp_before) . ", hipaa_audit.verifier_key())"), 'true:ok',
	'verify_checkpoint() accepts the partitioned table\'s checkpoint');
is(sql(q{SELECT string_agg(tbl::text, ' ' ORDER BY tbl::text) FROM hipaa_audit.checkpoint_all()
          WHERE tbl::text LIKE 'al%'}), 'al',
	'checkpoint_all() takes the partitioned table\'s checkpoint (covering its partitions), not one per partition');
sleep 4;
sql(q{INSERT INTO al (happened, who) VALUES ('2026-04-15', 'recent')});

my $err = sql_err(q{DROP TABLE al_04});
like($err, qr/42501.*cannot DROP protected table public\.al_04.*within their retention/s,
	'DROP TABLE of a partition with a row within retention is refused');
$err = sql_err(q{ALTER TABLE al DETACH PARTITION al_04});
like($err, qr/42501.*cannot DETACH protected table public\.al_04/s, '... and so is DETACH');

sql(q{DROP TABLE al_01});
my ($id1, $n1, $note1) = split /\|/, sql(q{SELECT id, rows_removed, note FROM hipaa_audit.purge_receipts
                                          WHERE note LIKE '%table public.al\_01%' ESCAPE '\'});
is($n1, '10', 'DROP TABLE of an expired partition leaves a receipt of its 10 rows');
like($note1, qr/\nremoved drop\n/, '... saying it was dropped');
is(receipt_check($id1), 'true:ok:al', '... which verify_receipt() accepts');

sql(q{ALTER TABLE al DETACH PARTITION al_02});
my ($id2, $n2) = split /\|/, sql(q{SELECT id, rows_removed FROM hipaa_audit.purge_receipts
                                   WHERE note LIKE '%removed detach%'});
is($n2, '20', 'DETACH of an expired partition leaves a receipt of its 20 rows');
is(receipt_check($id2), 'true:ok:al', '... which verify_receipt() accepts');
is(sql(q{SELECT hipaa_audit.is_protected('al_02')::text || ':' || count(*) FROM pg_trigger
          WHERE tgrelid = 'al_02'::regclass}), 'false:0',
	'the detached table is an ordinary table: not protected, no trigger of ours');
is(sql(q{SELECT count(*) FROM al_02}), '20', '... and keeps its rows');

# purge_expired(): al_03 (30 expired rows) goes whole; al_04 (40 expired,
# one recent) loses its expired prefix row by row; al_05 goes whole.
my $wal0 = sql('SELECT pg_current_wal_insert_lsn()');
my $out = sql(q{SELECT rows_removed || ':' || (receipt_id IS NOT NULL) || ':' || partition
                 FROM hipaa_audit.purge_expired('al') ORDER BY partition});
is($out, "30:true:public.al_03\n40:true:public.al_04\n50:true:public.al_05",
	'purge_expired() of the partitioned table: one row per partition that lost rows');
is(partitions_of('al'), 'al_04', 'the wholly expired partitions were dropped');
is(sql(q{SELECT count(*) FROM al}), '1', 'the row within retention stays');
is(sql(q{SELECT count(*) FROM hipaa_audit.purge_receipts r
          WHERE NOT (SELECT ok FROM hipaa_audit.verify_receipt(r.note, hipaa_audit.verifier_key()))}),
	'0', 'every stored receipt verifies');
is(sql(q{SELECT ok::text || ':' || receipts FROM hipaa_audit.verify_receipt_chain()}), 'true:' . ($receipts0 + 5),
	'the receipts\' hash chain holds');
is(verify_of('al'), 'true:1:0', 'verify() of the partitioned table after the purge');
is(sql("SELECT ok::text || ':' || status FROM hipaa_audit.verify_checkpoint("
	  . HaNote::lit($cp_before) . ", hipaa_audit.verifier_key())"), 'true:ok',
	'the checkpoint taken before the purge still verifies: its dropped partitions left receipts, al_04\'s heads are at its purge anchors');
note('WAL of purge_expired() of 3 partitions: '
	  . sql("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$wal0')") . ' bytes');

# ---------------------------------------------------------------------
# A partition dropped while hipaa_audit was not loaded: no receipt, and
# verify() of its partitioned table says so.
# ---------------------------------------------------------------------
sql(q{
	CREATE TABLE gone (id int, happened date NOT NULL) PARTITION BY LIST (id);
	CREATE TABLE gone_1 PARTITION OF gone FOR VALUES IN (1);
	CREATE TABLE gone_2 PARTITION OF gone FOR VALUES IN (2);
	SELECT hipaa_audit.protect('gone', '6 years', 1);
	INSERT INTO gone VALUES (1, '2026-01-01'), (2, '2026-01-02'), (2, '2026-01-03');
});
my $cp_gone = sql(q{SELECT hipaa_audit.checkpoint('gone')});
is(verify_of('gone'), 'true:3:0', 'a second partitioned table verifies');
sql(q{
	CREATE TABLE tp (id int, site int NOT NULL, note text) PARTITION BY LIST (site);
	CREATE TABLE tp_1 PARTITION OF tp FOR VALUES IN (1);
	CREATE TABLE tp_2 PARTITION OF tp FOR VALUES IN (2);
	CREATE TABLE tp_3 PARTITION OF tp FOR VALUES IN (3);
	SELECT hipaa_audit.protect('tp', '6 years', 4);
	INSERT INTO tp SELECT g, 1 + g % 3, repeat('x', 200) FROM generate_series(1, 3000) g;
});
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
sql(q{DROP TABLE gone_2});
# A row changed in one partition while nothing guarded it.
sql(q{ALTER TABLE tp_2 DISABLE TRIGGER ALL; UPDATE tp_2 SET note = 'changed' WHERE id = 1;
      ALTER TABLE tp_2 ENABLE ALWAYS TRIGGER hipaa_audit_chain, ENABLE ALWAYS TRIGGER hipaa_audit_guard_row,
          ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate});
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'hipaa_audit'\n");
$node->restart;
# Twice: the registry lists it, and the stored checkpoint binds it.
is(problems_of('gone'), 'partition_missing partition_missing',
	'verify_problems() reports the partition dropped without a receipt (registry and stored checkpoint)');
like(sql(q{SELECT first_problem FROM hipaa_audit.verify('gone')}),
	qr/gone without a receipt/, '... and verify() says how');
is(sql("SELECT ok::text || ':' || status FROM hipaa_audit.verify_checkpoint("
	  . HaNote::lit($cp_gone) . ", hipaa_audit.verifier_key())"), 'false:rows_missing',
	'verify_checkpoint() of a checkpoint taken before fails: rows_missing');

# The changed row, found in its partition, the same with one process and
# with partitions read in parallel.
my $tp_problems = q{SELECT string_agg(kind || ':' || detail, E'\n') FROM hipaa_audit.verify_problems('tp')};
my $seq = sql("SET hipaa_audit.verify_workers = 0; $tp_problems");
like($seq, qr/^hash_mismatch:partition public\.tp_2: /, 'verify_problems() of the partitioned table: the changed row, in partition tp_2');
is(sql("SET hipaa_audit.verify_workers = 2; SET min_parallel_table_scan_size = 0; $tp_problems"), $seq,
	'... and the same report when the partitions are read in parallel');
like(sql(q{SET hipaa_audit.verify_workers = 2; SET min_parallel_table_scan_size = 0;
           SELECT ok::text || ':' || rows_checked || ':' || first_problem FROM hipaa_audit.verify('tp')}),
	qr/^false:3000:partition public\.tp_2: chain \d+ position \d+: hash_mismatch: /,
	'verify() in parallel: every row checked, the first problem named by partition');

# Parallel verification of an ordinary table after that of partitions:
# its shared memory may be what the partitions' left (preallocated DSM is
# reused without zeroing); a worker once took leftover bytes for a list of
# partitions.
sql(q{CREATE TABLE single (id int, note text); SELECT hipaa_audit.protect('single', '6 years', 4);
      INSERT INTO single SELECT g, repeat('y', 100) FROM generate_series(1, 2000) g;
      CREATE TABLE many (id int NOT NULL) PARTITION BY LIST (id);
      SELECT hipaa_audit.protect('many', '6 years', 1);
      DO $$ BEGIN FOR i IN 1..500 LOOP
          EXECUTE format('CREATE TABLE many_%s PARTITION OF many FOR VALUES IN (%s)', i, i);
      END LOOP; END $$;
      INSERT INTO many SELECT g FROM generate_series(1, 500) g});
is(sql(q{SELECT count(*) FROM hipaa_audit.registry WHERE partition_of = 'many'::regclass}), '500',
	'500 partitions made in a DO block, each protected');
is(sql(q{SET hipaa_audit.verify_workers = 2; SET min_parallel_table_scan_size = 0;
         SELECT problems FROM hipaa_audit.verify('many')}), '0', 'parallel verify() of 500 partitions');
is(sql(q{SET hipaa_audit.verify_workers = 2; SET min_parallel_table_scan_size = 0;
         SELECT string_agg(ok::text || '/' || rows_checked, ',')
           FROM generate_series(1, 6) g, LATERAL hipaa_audit.verify('single') v}),
	join(',', ('true/2000') x 6),
	'parallel verify() of an ordinary table after one of partitions, six times: every run ok');

# The registry row the dropped partition left behind must not break
# anything else (every ALTER TABLE of a column failed on it).
is(sql(q{CREATE TABLE unrelated (id int); ALTER TABLE unrelated ADD COLUMN x int, ALTER COLUMN id TYPE bigint;
         SELECT count(*) FROM unrelated}), '0',
	'ALTER TABLE of other tables still works with a registry row of a table gone');

# ---------------------------------------------------------------------
# pg_dump and pg_restore of a partitioned protected table.
# ---------------------------------------------------------------------
sql(q{
	CREATE TABLE dr (id bigserial, happened date NOT NULL, who text) PARTITION BY RANGE (happened);
	CREATE TABLE dr_a PARTITION OF dr FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
	CREATE TABLE dr_b PARTITION OF dr FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
	SELECT hipaa_audit.protect('dr', '6 years', 2);
	INSERT INTO dr (happened, who) SELECT '2026-01-01'::date + (g % 50), 'r' || g FROM generate_series(1, 200) g;
});
my $hashes_sql = q{SELECT string_agg(tableoid::regclass || ':' || audit_chain || ':' || audit_seq || ':'
                   || encode(audit_hash, 'hex'), ',' ORDER BY 1) FROM dr};
my $hashes = sql($hashes_sql);
my $reg_sql = q{SELECT string_agg(relid::text || ':' || table_uuid || ':' || coalesce(partition_of::text, '-'), ',' ORDER BY 1)
                FROM hipaa_audit.registry WHERE relid::text LIKE 'dr%'};
my $reg = sql($reg_sql);
my $dump = PostgreSQL::Test::Utils::tempdir . '/parts.dump';
$node->command_ok([ 'pg_dump', '--format', 'custom', '--file', $dump, '--dbname', $node->connstr('postgres') ],
	'pg_dump of a database with partitioned protected tables');
my $dst = ha_node('parts_restore', no_extension => 1,
	conf => "hipaa_audit.min_retention = '1 second'\n");
$dst->command_ok([ 'pg_restore', '--exit-on-error', '--dbname', $dst->connstr('postgres'), $dump ],
	'pg_restore into a new cluster');
is(sql($reg_sql, node => $dst), $reg, 'registry restored: same identities, same partitioned table');
is(sql($hashes_sql, node => $dst), $hashes, 'every row keeps its partition, chain position and hash');
is(verify_of('dr', node => $dst), 'true:200:0', 'verify() of the restored partitioned table');
like(sql_err(q{DELETE FROM dr_a}, node => $dst), qr/42501/, 'the restored partitions refuse DELETE');
sql(q{CREATE TABLE dr_c PARTITION OF dr FOR VALUES FROM ('2026-03-01') TO ('2026-04-01');
      INSERT INTO dr (happened, who) VALUES ('2026-03-05', 'new'), ('2026-01-05', 'new')}, node => $dst);
is(partitions_of('dr', node => $dst), 'dr_a dr_b dr_c', 'a partition made after the restore is protected');
is(verify_of('dr', node => $dst), 'true:202:0', '... and new rows continue the restored chains');
$dst->stop;

# ---------------------------------------------------------------------
# A streaming standby verifies the partitioned table read-only.
# ---------------------------------------------------------------------
$node->backup('parts_base');
my $standby = PostgreSQL::Test::Cluster->new('parts_standby');
$standby->init_from_backup($node, 'parts_base', has_streaming => 1);
$standby->start;
sql(q{INSERT INTO dr (happened, who) SELECT '2026-02-01'::date + (g % 20), 's' || g FROM generate_series(1, 30) g});
$node->wait_for_catchup($standby);
is(verify_of('dr', node => $standby), 'true:230:0', 'verify() on a streaming standby');
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('dr')}, node => $standby),
	qr/read-only|recovery/, 'purge_expired() is refused on the standby');
$standby->stop;

# ---------------------------------------------------------------------
# kill -9 under concurrent inserts into several partitions: no
# acknowledged row lost, no fork in any chain.
# ---------------------------------------------------------------------
sql(q{
	CREATE TABLE cr (client int NOT NULL, n int NOT NULL, happened date NOT NULL) PARTITION BY LIST (client);
	CREATE TABLE cr_1 PARTITION OF cr FOR VALUES IN (1);
	CREATE TABLE cr_2 PARTITION OF cr FOR VALUES IN (2);
	CREATE TABLE cr_3 PARTITION OF cr FOR VALUES IN (3, 4);
	SELECT hipaa_audit.protect('cr', '6 years', 2);
});
my $scriptdir = PostgreSQL::Test::Utils::tempdir;
my @clients;
for my $c (1 .. 4)
{
	my $f = "$scriptdir/load$c.sql";
	open(my $fh, '>', $f) or die;
	print $fh "INSERT INTO cr VALUES ($c, $_, '2026-01-01');\n\\echo ack $_\n" for 1 .. 20000;
	close $fh;
	my %cl = (out => '', err => '');
	$cl{h} = IPC::Run::start(
		[ $node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $f ],
		'<', \undef, '>', \$cl{out}, '2>', \$cl{err}, IPC::Run::timeout(ha_timeout()));
	push @clients, \%cl;
}
my $t0 = time;
while (1)
{
	$_->{h}->pump_nb for @clients;
	last if sql(q{SELECT count(DISTINCT client) FROM cr}) == 4 && time - $t0 >= 2;
	die 'load did not start' if time - $t0 > ha_timeout();
	usleep(100_000);
}
# The postmaster and every backend at once, as a power cut would; then
# wait until every old process is gone before starting again.
my $pm = (split /\n/, PostgreSQL::Test::Utils::slurp_file($node->data_dir . '/postmaster.pid'))[0];
my @old = ($pm, ha_children_of($pm));
kill 'STOP', $pm;
@old = ($pm, ha_children_of($pm));
kill 9, @old;
kill 'CONT', $pm;
$node->kill9;
my $deadline = time + ha_timeout();
usleep(50_000) while (ha_alive($pm, 1) || grep { ha_alive($_, 0) } @old) && time < $deadline;
my %acked;
for my $c (1 .. 4)
{
	my $cl = $clients[ $c - 1 ];
	eval { $cl->{h}->finish; 1 } or $cl->{h}->kill_kill;
	my @acks = $cl->{out} =~ /^ack (\d+)$/mg;
	$acked{$c} = scalar @acks;
}
note('acknowledged rows per client: ' . join(' ', map { "$_=$acked{$_}" } sort keys %acked));
my $started = 0;
until (($started = $node->start(fail_ok => 1)) || time > $deadline)
{
	usleep(500_000);
}
die 'node did not restart after the crash' unless $started;
for my $c (1 .. 4)
{
	cmp_ok(sql("SELECT count(*) FROM cr WHERE client = $c AND n <= $acked{$c}"), '==', $acked{$c},
		"client $c: all $acked{$c} acknowledged rows survived the crash");
}
ha_check_chains($node, $_, 2, 'after kill -9') for qw(cr_1 cr_2 cr_3);
is(verify_of('cr'), 'true:' . sql(q{SELECT count(*) FROM cr}) . ':0',
	'verify() of the partitioned table after the crash');
sql(q{INSERT INTO cr VALUES (1, 0, '2026-01-01'), (3, 0, '2026-01-01')});
is(problems_of('cr'), '', 'inserts after the crash continue every chain');

# ---------------------------------------------------------------------
# The attack round on partitions (docs/attack-paths.md): each of these got
# through before its fix.
# ---------------------------------------------------------------------
sql(q{
	CREATE ROLE part_owner LOGIN;
	GRANT CREATE ON SCHEMA public TO part_owner;
	CREATE TABLE rr (id int, happened date NOT NULL) PARTITION BY RANGE (happened);
	CREATE TABLE rr_1 PARTITION OF rr FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
	SELECT hipaa_audit.protect('rr', '2 seconds', 1);
	ALTER TABLE rr OWNER TO part_owner;
	ALTER TABLE rr_1 OWNER TO part_owner;
});

# A table owner (not a superuser) makes a partition: PostgreSQL checks
# EXECUTE on the trigger functions it clones; naming them in CREATE
# TRIGGER stays refused.
is(sql(q{SET ROLE part_owner; CREATE TABLE rr_owner PARTITION OF rr FOR VALUES FROM ('2026-06-01') TO ('2026-07-01');
         SELECT hipaa_audit.is_protected('rr_owner')}), 't',
	'a table owner can make a partition of its protected table, protected at once');
like(sql_err(q{SET ROLE part_owner; CREATE TABLE own_t (id int);
               CREATE TRIGGER hipaa_audit_guard_row BEFORE UPDATE ON own_t
                   FOR EACH ROW EXECUTE FUNCTION hipaa_audit.guard_row()}),
	qr/42501.*cannot create a trigger calling hipaa_audit's trigger function/s,
	'a non-superuser cannot name hipaa_audit\'s trigger functions in CREATE TRIGGER');
like(sql_err(q{SET ROLE part_owner; SET search_path = hipaa_audit, public; CREATE TABLE public.own_u (id int);
               CREATE TRIGGER zz BEFORE UPDATE ON public.own_u FOR EACH ROW EXECUTE FUNCTION guard_row()}),
	qr/42501.*cannot create a trigger calling hipaa_audit's trigger function on table public\.own_u/s,
	'... nor through an unqualified name (checked on the trigger PostgreSQL made, by function OID)');

# A partition made while set_retention() runs gets the new retention (it
# read the old one before).
my $sa = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
my $sb = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
my $sb_pid = $sb->query_safe('SELECT pg_backend_pid()');
$sa->query_safe(q{BEGIN; CREATE TABLE rr_2 PARTITION OF rr FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')});
ha_start_blocking($sb, 'ret', q{SELECT hipaa_audit.set_retention('rr', '10 years')});
ok($node->poll_query_until('postgres', "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $sb_pid"),
	'set_retention() waits for the transaction making a partition');
$sa->query_safe('COMMIT');
is(ha_sqlstate_of($sb, 'ret'), '00000', '... and then succeeds');
is(sql(q{SELECT string_agg(DISTINCT retention::text, ',') FROM hipaa_audit.registry
          WHERE relid = 'rr'::regclass OR partition_of = 'rr'::regclass}), '10 years',
	'the new partition has the new retention, as every other');
sql(q{SELECT hipaa_audit.set_retention('rr', '11 years', lock => true)});
sql(q{CREATE TABLE rr_3 PARTITION OF rr FOR VALUES FROM ('2026-03-01') TO ('2026-04-01')});
is(sql(q{SELECT retention_locked FROM hipaa_audit.registry WHERE relid = 'rr_3'::regclass}), 't',
	'a partition made after the retention was locked has it locked too');

# A hold placed on a partition while purge_expired() runs is seen.
sql(q{
	CREATE TABLE hr (id int, happened date NOT NULL) PARTITION BY RANGE (happened);
	CREATE TABLE hr_1 PARTITION OF hr FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
	SELECT hipaa_audit.protect('hr', '1 second', 1);
	INSERT INTO hr SELECT g, '2026-01-05' FROM generate_series(1, 5) g;
});
sleep 2;
$sa->query_safe(q{BEGIN; SELECT hipaa_audit.place_hold('hr_1', 'subpoena')});
ha_start_blocking($sb, 'hold', q{SELECT count(*) FROM hipaa_audit.purge_expired('hr')});
ok($node->poll_query_until('postgres', "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $sb_pid"),
	'purge_expired() waits for the transaction placing a hold on a partition');
$sa->query_safe('COMMIT');
is(ha_sqlstate_of($sb, 'hold'), '00000', '... then ends');
is(sql(q{SELECT count(*) FROM hr_1}), '5', '... without dropping the held partition');
# DROP TABLE of a partition through a name that leads elsewhere when
# PostgreSQL resolves it again: the partition was verified and receipted
# for removal while the statement waited for the partitioned table's lock,
# then a table of the same name appeared earlier in the search path.
sql(q{
	CREATE SCHEMA decoys;
	CREATE TABLE nr (id int, happened date NOT NULL) PARTITION BY RANGE (happened);
	CREATE TABLE nr_1 PARTITION OF nr FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
	SELECT hipaa_audit.protect('nr', '1 second', 1);
	INSERT INTO nr SELECT g, '2026-01-05' FROM generate_series(1, 4) g;
});
sleep 2;
$sb->{stderr} = '';
$sb->query_safe(q{SET search_path = decoys, public});
$sa->query_safe(q{BEGIN; LOCK TABLE nr IN ACCESS SHARE MODE});
ha_start_blocking($sb, 'race', q{DROP TABLE nr_1});
ok($node->poll_query_until('postgres', "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $sb_pid"),
	'DROP TABLE of the partition waits for the partitioned table\'s lock');
$sa->query_safe(q{CREATE TABLE decoys.nr_1 (id int); COMMIT});
is(ha_sqlstate_of($sb, 'race'), '42501', '... then is refused: its name now leads to another table');
is(sql(q{SELECT hipaa_audit.is_protected('nr_1')::text || ':' || count(*) FROM nr_1}), 'true:4',
	'... and the partition is still protected, with its rows');
is(sql(q{SELECT count(*) FROM hipaa_audit.purge_receipts WHERE note LIKE '%public.nr\_1%'}), '0',
	'... and no receipt stands for it');
is(sql(q{SELECT count(*) FROM pg_class WHERE oid = 'decoys.nr_1'::regclass}), '1', '... nor was the decoy dropped');
$sa->quit;
$sb->quit;

# An event trigger (a superuser's) that changes a new partition at the end
# of the extension's own statements: the partition is protected by then.
sql(q{
	CREATE FUNCTION weaken() RETURNS event_trigger LANGUAGE plpgsql AS $$
	DECLARE r record;
	BEGIN
	    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
	        IF r.command_tag = 'CREATE INDEX' AND r.object_identity LIKE 'public.et\_%' THEN
	            EXECUTE 'ALTER TABLE ' || split_part(r.object_identity, '_audit', 1) || ' SET UNLOGGED';
	        END IF;
	    END LOOP;
	END $$;
	CREATE TABLE et (id int, happened date NOT NULL) PARTITION BY RANGE (happened);
	SELECT hipaa_audit.protect('et', '6 years', 1);
	CREATE TABLE et_plain (id int);
	CREATE EVENT TRIGGER weaken ON ddl_command_end EXECUTE FUNCTION weaken();
});
like(sql_err(q{CREATE TABLE et_1 PARTITION OF et FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')}),
	qr/42501.*cannot SET UNLOGGED on protected table public\.et_1/s,
	'an event trigger cannot make a new partition unlogged before it is protected');
is(sql(q{SELECT count(*) FROM pg_class WHERE relname = 'et_1'}), '0', '... and the partition was not made');
like(sql_err(q{SELECT hipaa_audit.protect('et_plain', '6 years', 1)}),
	qr/42501.*cannot SET UNLOGGED on protected table public\.et_plain/s,
	'nor a table protect() is protecting');
sql(q{DROP EVENT TRIGGER weaken});

# A partition whose columns are generated where its partitioned table's
# are not (PostgreSQL 15 lets a partition declare that): refused, by
# PostgreSQL or by hipaa_audit.
sql(q{CREATE TABLE et_gen (id int, happened date NOT NULL, audit_chain int, audit_seq bigint,
        audit_at timestamptz GENERATED ALWAYS AS ('2001-01-01 00:00:00+00'::timestamptz) STORED,
        audit_session_role text, audit_role text, audit_client inet, audit_prev_hash bytea, audit_hash bytea)});
sql(q{ALTER TABLE et_gen ALTER COLUMN audit_chain SET NOT NULL, ALTER COLUMN audit_seq SET NOT NULL,
      ALTER COLUMN audit_at SET NOT NULL,
      ALTER COLUMN audit_session_role SET NOT NULL, ALTER COLUMN audit_role SET NOT NULL,
      ALTER COLUMN audit_prev_hash SET NOT NULL, ALTER COLUMN audit_hash SET NOT NULL});
sql(q{CREATE TABLE et_gen2 (LIKE et INCLUDING ALL)});
sql(q{ALTER TABLE et_gen2 DROP COLUMN id, ADD COLUMN id int GENERATED ALWAYS AS (42) STORED});
like(sql_err(q{ALTER TABLE et ATTACH PARTITION et_gen2 FOR VALUES FROM ('2026-03-01') TO ('2026-04-01')}),
	qr/generated/,
	'ATTACH of a partition with a generated column its partitioned table does not have is refused');
is(sql(q{SELECT count(*) FROM pg_inherits WHERE inhrelid = 'et_gen2'::regclass}), '0', '... and it was not attached');
# The same partition attached before protect(): protect() refuses it.
sql(q{CREATE TABLE gp (id int, happened date NOT NULL) PARTITION BY RANGE (happened);
      CREATE TABLE gp_1 (happened date NOT NULL, id int GENERATED ALWAYS AS (42) STORED)});
my ($grc) = $node->psql('postgres',
	q{ALTER TABLE gp ATTACH PARTITION gp_1 FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')});
SKIP:
{
	skip 'this PostgreSQL refuses such a partition itself', 2 if $grc != 0;
	like(sql_err(q{SELECT hipaa_audit.protect('gp', '6 years', 1)}),
		qr/55000.*its generated columns differ from the partitioned table's/s,
		'protect() refuses a partitioned table whose partition has a generated column of its own');
	is(sql(q{SELECT count(*) FROM hipaa_audit.registry WHERE relid::text LIKE 'gp%'}), '0',
		'... and registers nothing');
}
like(sql_err(q{ALTER TABLE et ATTACH PARTITION et_gen FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')}),
	qr/chain column "audit_at" is generated|generated/,
	'ATTACH of a partition whose chain column is generated is refused');
is(sql(q{SELECT count(*) FROM pg_inherits WHERE inhrelid = 'et_gen'::regclass}), '0', '... and it was not attached');
is(problems_of('et'), '', 'verify() of the partitioned table is unaffected');

# The extension's indexes never go to a tablespace the caller names.
my $tsdir = PostgreSQL::Test::Utils::tempdir;
sql("CREATE TABLESPACE ts_other LOCATION '$tsdir'");
sql(q{CREATE TABLE ts_t (id int); ALTER TABLE ts_t OWNER TO part_owner});
sql(q{SET ROLE part_owner; SET default_tablespace = ts_other; SELECT hipaa_audit.protect('ts_t', '6 years', 1)});
is(sql(q{SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE i.indrelid = 'ts_t'::regclass AND c.reltablespace <> 0}), '0',
	'protect() makes its indexes in the table\'s tablespace, not the caller\'s default_tablespace');

done_testing();
