# ALTER EXTENSION hipaa_audit UPDATE from every released version keeps old
# chains verifying.  For each released version found among the installed
# scripts (every hipaa_audit--X.Y.Z.sql but the default version's), in a
# database of its own: install that version, protect tables, write rows of
# many types from several sessions at once (so every chain is used) and
# sign a checkpoint; check that the current library works on the old
# schema (verify, inserts, refusals, the old checkpoint); upgrade; check
# that no row's hash moved, that everything verifies, that chains continue
# without reusing a position, that new checkpoints and purge_expired()
# work, that the upgraded extension's objects are exactly those of a fresh
# install of the default version, and that a pg_dump/pg_restore of the
# upgraded database still verifies.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use Time::HiRes qw(sleep time);
use HaTest;

$ENV{PGCLIENTENCODING} = 'UTF8';

my $node = ha_node('upgrade', no_extension => 1,
	init => { extra => [ '--encoding=UTF8', '--locale=C' ] },
	conf => "log_statement = none\n");

# ------------------------------------------------------------------ helpers

sub sql
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# Run SQL expected to fail; stderr with SQLSTATEs (VERBOSITY verbose).
sub sql_err
{
	my ($db, $sql) = @_;
	my ($rc, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	return $rc == 0 ? "(no error) $out" : $err;
}

# Run SQL expected to succeed; 'ok', or the error for diagnosis.
sub runs
{
	my ($db, $sql) = @_;
	my ($rc, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	return $rc == 0 ? 'ok' : $err;
}

sub vparts { return split /\./, $_[0]; }

sub vcmp
{
	my @a = vparts($_[0]);
	my @b = vparts($_[1]);
	for my $i (0 .. ($#a > $#b ? $#a : $#b))
	{
		my $c = ($a[$i] // 0) <=> ($b[$i] // 0);
		return $c if $c;
	}
	return 0;
}

# ------------------------------------------------------------- the versions

my $sharedir = $node->config_data('--sharedir');
opendir(my $dh, "$sharedir/extension") or die "$sharedir/extension: $!";
my @script_versions = sort { vcmp($a, $b) }
  map { /^hipaa_audit--(\d+\.\d+\.\d+)\.sql$/ ? $1 : () } readdir $dh;
closedir $dh;
my $default = sql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'hipaa_audit'});
like($default, qr/^\d+\.\d+\.\d+$/, "default version is $default");
is(join(' ', @script_versions),
	sql('postgres', q{SELECT string_agg(version, ' ' ORDER BY string_to_array(version, '.')::int[])
	                    FROM pg_available_extension_versions WHERE name = 'hipaa_audit'}),
	'the installed install scripts and pg_available_extension_versions agree');
ok((grep { $_ eq $default } @script_versions), 'the default version has an install script');
my @released = grep { vcmp($_, $default) < 0 } @script_versions;
ok(@released >= 1, 'at least one released version older than the default: ' . join(' ', @released));
is(scalar(grep { vcmp($_, $default) > 0 } @script_versions), 0,
	'no install script newer than the default version');

# ------------------------------------------------------------- signing key

my $keydir = PostgreSQL::Test::Utils::tempdir;
chmod 0700, $keydir;
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$keydir/signer.pem") == 0
  or die 'openssl genpkey failed';
chmod 0600, "$keydir/signer.pem";
$node->append_conf('postgresql.conf',
	"hipaa_audit.signing_key_file = '$keydir/signer.pem'\n"
	  . "hipaa_audit.signer_name = 'upgrade.example'\n");
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT current_setting('hipaa_audit.signer_name') = 'upgrade.example'})
  or die 'the signing key settings were not reloaded';

# ------------------------------------------------ canonical extension shape

# One line per property of every object that belongs to the extension in
# the current database: what pg_dump, users and the library can see.
my $describe_sql = <<'EOS';
WITH ext AS (SELECT * FROM pg_extension WHERE extname = 'hipaa_audit'),
m AS (
  SELECT d.classid, d.objid, d.objsubid,
         pg_describe_object(d.classid, d.objid, d.objsubid) AS obj
    FROM pg_depend d, ext
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
     AND d.deptype = 'e'),
p AS (SELECT m.obj, f.* FROM m JOIN pg_proc f ON m.classid = 'pg_proc'::regclass AND f.oid = m.objid),
r AS (SELECT m.obj, c.* FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid),
lines (obj, prop, val) AS (
  SELECT 'extension', 'version', extversion || ' relocatable=' || extrelocatable
         || ' schema=' || extnamespace::regnamespace || ' owner=' || pg_get_userbyid(extowner)
    FROM ext
  UNION ALL
  SELECT 'extension', 'config ' || (c.rel)::regclass, coalesce(c.cond, '<null>')
    FROM ext, unnest(ext.extconfig, ext.extcondition) AS c(rel, cond)
  UNION ALL
  SELECT 'schema ' || n.nspname, 'schema',
         'owner=' || pg_get_userbyid(n.nspowner) || ' acl=' || coalesce(n.nspacl::text, '')
         || ' comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), '<none>')
    FROM ext JOIN pg_namespace n ON n.oid = ext.extnamespace
  UNION ALL
  SELECT obj, 'member', classid::regclass::text FROM m
  UNION ALL
  SELECT obj, 'functiondef', pg_get_functiondef(oid) FROM p
  UNION ALL
  SELECT obj, 'function', 'owner=' || pg_get_userbyid(proowner) || ' acl=' || coalesce(proacl::text, '')
         || ' comment=' || coalesce(obj_description(oid, 'pg_proc'), '<none>')
         || ' leakproof=' || proleakproof || ' cost=' || procost || ' rows=' || prorows FROM p
  UNION ALL
  SELECT obj, 'relation', 'kind=' || relkind::text || ' persistence=' || relpersistence::text
         || ' owner=' || pg_get_userbyid(relowner) || ' acl=' || coalesce(relacl::text, '')
         || ' options=' || coalesce(reloptions::text, '') || ' replident=' || relreplident::text
         || ' rls=' || relrowsecurity || '/' || relforcerowsecurity
         || ' comment=' || coalesce(obj_description(oid, 'pg_class'), '<none>') FROM r
  UNION ALL
  SELECT r.obj, 'column ' || lpad(a.attnum::text, 3, '0') || ' ' || a.attname,
         format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
         || ' hasdef=' || a.atthasdef || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '')
         || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
         || ' collation=' || coalesce(co.collname, '') || ' acl=' || coalesce(a.attacl::text, '')
         || ' comment=' || coalesce(col_description(r.oid, a.attnum), '<none>')
    FROM r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
  UNION ALL
  SELECT r.obj, 'constraint ' || c.conname, pg_get_constraintdef(c.oid)
         || ' deferrable=' || c.condeferrable || ' validated=' || c.convalidated
    FROM r JOIN pg_constraint c ON c.conrelid = r.oid
  UNION ALL
  SELECT r.obj, 'index ' || i.relname, pg_get_indexdef(x.indexrelid)
    FROM r JOIN pg_index x ON x.indrelid = r.oid JOIN pg_class i ON i.oid = x.indexrelid
  UNION ALL
  SELECT r.obj, 'trigger ' || t.tgname, pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
    FROM r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
  UNION ALL
  SELECT r.obj, 'rule ' || w.rulename, pg_get_ruledef(w.oid)
    FROM r JOIN pg_rewrite w ON w.ev_class = r.oid
  UNION ALL
  SELECT r.obj, 'policy ' || po.polname, po.polcmd::text || ' ' || coalesce(pg_get_expr(po.polqual, po.polrelid), '')
    FROM r JOIN pg_policy po ON po.polrelid = r.oid
  UNION ALL
  SELECT r.obj, 'sequence', format('type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s',
         s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
    FROM r JOIN pg_sequence s ON s.seqrelid = r.oid
  UNION ALL
  SELECT r.obj, 'owned by', pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' ' || d.deptype::text
    FROM r JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = r.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND r.relkind = 'S'
  UNION ALL
  SELECT pg_describe_object(ip.classoid, ip.objoid, ip.objsubid), 'init privs ' || ip.privtype::text,
         ip.initprivs::text
    FROM pg_init_privs ip
   WHERE EXISTS (SELECT 1 FROM m WHERE m.classid = ip.classoid AND m.objid = ip.objoid)
      OR (ip.classoid = 'pg_namespace'::regclass AND ip.objoid = (SELECT extnamespace FROM ext))
)
SELECT obj || ' :: ' || prop || ' :: ' || replace(val, E'\n', '\n')
  FROM lines ORDER BY obj, prop, val
EOS

sub describe_extension { return sql($_[0], $describe_sql); }

# Lines only in one description or the other, for diag.
sub describe_diff
{
	my ($a, $b) = @_;
	my %in_a = map { $_ => 1 } split /\n/, $a;
	my %in_b = map { $_ => 1 } split /\n/, $b;
	return join("\n",
		(map { "- $_" } grep { !$in_b{$_} } split /\n/, $a),
		(map { "+ $_" } grep { !$in_a{$_} } split /\n/, $b));
}

sql('postgres', 'CREATE DATABASE fresh_install');
sql('fresh_install', 'CREATE EXTENSION hipaa_audit');
is(sql('fresh_install', q{SELECT extversion FROM pg_extension WHERE extname = 'hipaa_audit'}),
	$default, "a fresh install is at $default");
my $fresh_desc = describe_extension('fresh_install');
like($fresh_desc, qr/^function hipaa_audit\.verify\(regclass\) :: functiondef :: /m,
	'the description of a fresh install lists its functions');

# ------------------------------------------------------------ test tables

my $TBL = 'clinic.access_log';

# Rows $from..$to with many types, NULLs in every nullable column now and
# then, and non-ASCII text.
sub rows_sql
{
	my ($from, $to) = @_;
	return qq{INSERT INTO $TBL (id, actor, note, amount, detail, at, flag, reading, payload, tags)
	SELECT g,
	       E'dr.m\\u00fcller-\\u00e7elik #' || g,
	       CASE WHEN g % 3 <> 0 THEN E'Zugriff \\u2014 \\u60a3\\u8005\\u30ab\\u30eb\\u30c6 \\U0001F489 ' || g END,
	       CASE WHEN g % 4 <> 0 THEN (g * 1.250 - 7)::numeric END,
	       CASE WHEN g % 5 <> 0 THEN jsonb_build_object('mrn', 'MRN-' || g,
	            'tags', jsonb_build_array('a', E'\\u00e9', NULL), 'n', g + 0.5, 'ok', g % 2 = 0) END,
	       CASE WHEN g % 6 <> 0 THEN '2026-01-01 00:00:00+00'::timestamptz
	            + g * interval '37 minutes 1.5 seconds' END,
	       CASE WHEN g % 7 <> 0 THEN g % 2 = 0 END,
	       CASE g % 9 WHEN 0 THEN NULL WHEN 1 THEN 'NaN'::float8 WHEN 2 THEN '-0'::float8
	            ELSE g / 3.0::float8 END,
	       CASE WHEN g % 8 <> 0 THEN decode(md5(g::text), 'hex') || '\\x00ff'::bytea END,
	       CASE WHEN g % 10 <> 0 THEN ARRAY['x' || g, NULL, E'\\u00df'] END
	  FROM generate_series($from, $to) g};
}

# Several sessions at once, each holding its transaction (and so its chain)
# open while the others insert: every chain of the table gets rows.  Then
# one multi-row insert from a single session.
my $chains = 4;

sub insert_round
{
	my ($db, $from, $per_session, $what) = @_;
	my @s = map { $node->background_psql($db) } 1 .. $chains;
	my $id = $from;
	foreach my $s (@s)
	{
		$s->query_safe("BEGIN;\n" . rows_sql($id, $id + $per_session - 1));
		$id += $per_session;
	}
	is(sql($db, qq{SELECT count(DISTINCT objid) FROM pg_locks
	                WHERE locktype = 'advisory' AND objsubid = 18497 AND granted
	                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
	                  AND classid = '$TBL'::regclass::oid}),
		$chains, "$what: $chains sessions inserting at once hold $chains different chains");
	foreach my $s (@s)
	{
		$s->query_safe('COMMIT');
		$s->quit;
	}
	sql($db, rows_sql($id, $id + 9));
	return $id + 10;
}

my $rows_sql = qq{SELECT string_agg(id || ':' || audit_chain || ':' || audit_seq || ':'
	|| encode(audit_prev_hash, 'hex') || ':' || encode(audit_hash, 'hex'), E'\\n' ORDER BY id) FROM $TBL};
my $data_sql = qq{SELECT md5(string_agg(t::text, E'\\n' ORDER BY id)) FROM $TBL t};
my $heads_sql = qq{SELECT string_agg(audit_chain || ':' || max_seq, ' ' ORDER BY audit_chain)
	FROM (SELECT audit_chain, max(audit_seq) AS max_seq FROM $TBL GROUP BY 1) h};

sub verify_is
{
	my ($db, $tbl, $rows, $what) = @_;
	my $r = sql($db, "SELECT ok, rows_checked, problems, coalesce(first_problem, '') FROM hipaa_audit.verify('$tbl')");
	is($r, "t|$rows|0|", "$what: verify('$tbl') ok over $rows rows")
	  or diag(sql($db, "SELECT * FROM hipaa_audit.verify_problems('$tbl') LIMIT 20"));
}

sub checkpoint_ok
{
	my ($db, $note, $key, $tbl, $what) = @_;
	my $r = sql($db, "SELECT ok, status, tbl::text, coalesce(detail, '') "
		  . "FROM hipaa_audit.verify_checkpoint(\$n\$$note\$n\$, '$key')");
	like($r, qr/^t\|ok\|\Q$tbl\E\|/, "$what") or diag($r);
}

sub refusals_hold
{
	my ($db, $what) = @_;
	foreach my $c ([ "UPDATE $TBL SET actor = 'x'", 'UPDATE' ],
		[ "DELETE FROM $TBL WHERE id = 1", 'DELETE FROM' ],
		[ "TRUNCATE $TBL", 'TRUNCATE' ])
	{
		my ($stmt, $verb) = @$c;
		like(sql_err($db, $stmt), qr/ERROR:  42501: cannot \Q$verb\E protected table \Q$TBL\E\n/,
			"$what: $verb refused with 42501");
	}
}

# Chains continue across the upgrade: positions 1..max with no hole and no
# duplicate, every new row after its chain's old head, the first new row of
# each chain linked to the old head.
sub chains_continue
{
	my ($db, $old_heads, $old_max_id, $what) = @_;
	is(sql($db, qq{SELECT count(*) FROM (SELECT audit_chain, audit_seq FROM $TBL
	                GROUP BY 1, 2 HAVING count(*) > 1) d}),
		'0', "$what: no two rows share a chain position");
	is(sql($db, qq{SELECT count(*) FROM (SELECT audit_chain FROM $TBL GROUP BY 1
	                HAVING min(audit_seq) <> 1 OR max(audit_seq) <> count(*)) h}),
		'0', "$what: every chain holds exactly positions 1..max");
	my %old = map { split /:/ } split / /, $old_heads;
	my %new = map { split /:/ } split / /, sql($db, $heads_sql);
	is(scalar(grep { ($new{$_} // 0) > $old{$_} } 0 .. $chains - 1), $chains,
		"$what: the head of every chain moved forward ($old_heads -> "
		  . join(' ', map { "$_:" . ($new{$_} // '-') } 0 .. $chains - 1) . ')');
	my $vals = join(', ', map { "($_, $old{$_})" } sort keys %old);
	is(sql($db, qq{SELECT count(*) FROM $TBL t JOIN (VALUES $vals) o(chain, seq)
	                ON o.chain = t.audit_chain
	                WHERE (t.id > $old_max_id) <> (t.audit_seq > o.seq)}),
		'0', "$what: every new row comes after its chain's old head, every old row before");
	is(sql($db, qq{SELECT count(*) FROM $TBL n JOIN (VALUES $vals) o(chain, seq)
	                ON o.chain = n.audit_chain AND n.audit_seq = o.seq + 1
	                JOIN $TBL h ON h.audit_chain = o.chain AND h.audit_seq = o.seq
	                WHERE n.audit_prev_hash = h.audit_hash}),
		$chains, "$what: the first new row of each chain links to the old head's hash");
}

# ------------------------------------------------------- every old version

foreach my $old (@released)
{
	(my $db = "up_from_$old") =~ s/\./_/g;
	my $v = "from $old";

	# --- install the old version, write, checkpoint -----------------------
	sql('postgres', "CREATE DATABASE $db");
	sql($db, "CREATE EXTENSION hipaa_audit VERSION '$old'");
	is(sql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'hipaa_audit'}),
		$old, "$v: extension installed at $old");
	sql($db, qq{
		CREATE SCHEMA clinic;
		CREATE TABLE $TBL (
		    id      bigint PRIMARY KEY,
		    actor   text NOT NULL,
		    note    text,
		    amount  numeric,
		    detail  jsonb,
		    at      timestamptz,
		    flag    boolean,
		    reading float8,
		    payload bytea,
		    tags    text[]);
		SELECT hipaa_audit.protect('$TBL', chains => $chains);
		CREATE TABLE clinic.short_log (id int, msg text);
		SELECT hipaa_audit.protect('clinic.short_log', retention => '1 second', chains => 2);
		INSERT INTO clinic.short_log SELECT g, E'kurz \\u00e4' || g FROM generate_series(1, 12) g;
		CREATE TABLE clinic.empty_a (id int);
		CREATE TABLE clinic.empty_b (id int);
		CREATE TABLE clinic.empty_c (id int);
		SELECT hipaa_audit.protect('clinic.empty_a');
		SELECT hipaa_audit.protect('clinic.empty_b');
		SELECT hipaa_audit.protect('clinic.empty_c');
	});
	my $short_written = time;
	my $next = insert_round($db, 1, 5, "$v, old schema, round 1");
	verify_is($db, $TBL, $next - 1, "$v, old schema");
	my $note_old = sql($db, "SELECT hipaa_audit.checkpoint('$TBL')");
	like($note_old, qr/\nrows @{[$next - 1]}\n/, "$v: checkpoint signed on the old schema");
	my $vkey = sql($db, 'SELECT hipaa_audit.verifier_key()');

	# --- the current library on the old schema ----------------------------
	checkpoint_ok($db, $note_old, $vkey, $TBL, "$v, old schema: the checkpoint verifies");
	is(sql($db, 'SELECT ok, checkpoints FROM hipaa_audit.verify_checkpoint_chain()'), 't|1',
		"$v, old schema: verify_checkpoint_chain() ok");
	my $heads_round1 = sql($db, $heads_sql);
	$next = insert_round($db, $next, 5, "$v, old schema, round 2");
	verify_is($db, $TBL, $next - 1, "$v, old schema, after more inserts");
	chains_continue($db, $heads_round1, 30, "$v, old schema, round 2");
	refusals_hold($db, "$v, old schema");
	checkpoint_ok($db, $note_old, $vkey, $TBL,
		"$v, old schema: the checkpoint still verifies after more inserts");
	verify_is($db, 'clinic.short_log', 12, "$v, old schema");
	if (vcmp($old, '0.2.0') < 0)
	{
		like(sql_err($db, "SELECT * FROM hipaa_audit.purge_expired('$TBL')"),
			qr/ERROR:  42883: function hipaa_audit\.purge_expired\(unknown\) does not exist/,
			"$v, old schema: purge_expired() does not exist yet");
		is(sql($db, q{SELECT to_regclass('hipaa_audit.purge_anchors') IS NULL
		              AND to_regclass('hipaa_audit.retired_tables') IS NULL}), 't',
			"$v, old schema: no purge_anchors or retired_tables");
		# Partitioned tables need the newer registry: a clear refusal,
		# nothing left behind.
		sql($db, q{CREATE TABLE clinic.parted (id int, at date NOT NULL) PARTITION BY RANGE (at);
		           CREATE TABLE clinic.parted_a PARTITION OF clinic.parted
		               FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')});
		like(sql_err($db, q{SELECT hipaa_audit.protect('clinic.parted')}),
			qr/ERROR:  55000: the hipaa_audit schema in this database is older than its library.*HINT:  Run ALTER EXTENSION hipaa_audit UPDATE/s,
			"$v, old schema: protect() of a partitioned table asks for the update (55000)");
		is(sql($db, q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'clinic.parted'::regclass
		              AND attname = 'audit_hash'}), '0', "$v, old schema: ... and added no column");
	}
	# Dropping or unprotecting an empty protected table: the library must
	# not need the newer schema's tables for it.
	is(runs($db, 'DROP TABLE clinic.empty_a'), 'ok',
		"$v, old schema: an empty protected table can be dropped");
	is(runs($db, q{SELECT hipaa_audit.unprotect('clinic.empty_b')}), 'ok',
		"$v, old schema: an empty protected table can be unprotected");

	# From 0.2.0 on, purge_expired() exists: rows purged before the update
	# are not in the tree the update's first checkpoint starts.
	my $early_written;
	if (vcmp($old, '0.2.0') >= 0)
	{
		sql($db, q{CREATE TABLE clinic.early (id int, msg text);
		           SELECT hipaa_audit.protect('clinic.early', retention => '1 second', chains => 1);
		           INSERT INTO clinic.early SELECT g, 'early ' || g FROM generate_series(1, 5) g});
		sleep(1.5);
		is(sql($db, q{SELECT sum(rows_removed) FROM hipaa_audit.purge_expired('clinic.early')}), '5',
			"$v, old schema: purge_expired() removes 5 rows before the update");
		is(sql($db, q{SELECT count(*) FROM hipaa_audit.checkpoints c JOIN hipaa_audit.registry r USING (table_uuid)
		              WHERE r.relid = 'clinic.early'::regclass}), '0',
			"$v, old schema: ... taking no checkpoint (no tree yet)");
		sql($db, q{INSERT INTO clinic.early SELECT g, 'kept ' || g FROM generate_series(6, 8) g});
		$early_written = 1;
	}

	my $rows_before = sql($db, $rows_sql);
	my $data_before = sql($db, $data_sql);
	my $heads_before = sql($db, $heads_sql);
	my $max_id_before = $next - 1;
	my $registry_sql = q{SELECT string_agg(relid::text || ':' || table_uuid || ':' || retention || ':'
	                     || chains || ':' || protected_at, ' ' ORDER BY relid::text) FROM hipaa_audit.registry};
	my $registry_before = sql($db, $registry_sql);
	# Indexes led by audit_at: the update adds a BRIN one where none is.
	my $at_index_sql = q{SELECT string_agg(r.relid::text || ':' || am.amname, ' ' ORDER BY r.relid::text)
	  FROM hipaa_audit.registry r JOIN pg_index i ON i.indrelid = r.relid
	  JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
	  WHERE i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = r.relid AND attname = 'audit_at')};
	# (This library's protect() made BRIN ones already; a table protected by
	# 0.1.0's library has none: as for access_log with its BRIN dropped.
	# short_log gets a B-tree one instead, which the update keeps as it is.)
	if (vcmp($old, '0.2.0') < 0)
	{
		sql($db, 'DROP INDEX clinic.access_log_audit_at_idx, clinic.short_log_audit_at_idx;
			CREATE INDEX short_log_at ON clinic.short_log (audit_at)');
		is(sql($db, $at_index_sql), 'clinic.empty_c:brin clinic.short_log:btree',
			"$v: before the update, access_log has no index led by audit_at");
	}

	# --- upgrade ----------------------------------------------------------
	my ($urc, $uout, $uerr) = $node->psql($db, 'ALTER EXTENSION hipaa_audit UPDATE');
	is($urc, 0, "$v: ALTER EXTENSION hipaa_audit UPDATE succeeds") or diag($uerr);
	is(sql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'hipaa_audit'}),
		$default, "$v: the extension is now at $default");
	is(sql($db, $rows_sql), $rows_before,
		"$v: every old row keeps its chain, position, link and audit_hash");
	is(sql($db, $data_sql), $data_before, "$v: every old row keeps its values");
	is(sql($db, $registry_sql), $registry_before, "$v: the registry is unchanged");
	is(sql($db, $at_index_sql), 'clinic.access_log:brin clinic.empty_c:brin clinic.short_log:btree',
		"$v: the update made a BRIN index on audit_at where no index led by it was")
	  if vcmp($old, '0.2.0') < 0;
	is(sql($db, "SELECT ok || ':' || rows_checked FROM hipaa_audit.verify_rows('$TBL', from_time => '-infinity')"),
		"true:$max_id_before", "$v, upgraded: verify_rows() over all time checks every row");
	verify_is($db, $TBL, $max_id_before, "$v, upgraded");
	checkpoint_ok($db, $note_old, $vkey, $TBL,
		"$v, upgraded: the checkpoint signed before the upgrade verifies");
	is(sql($db, 'SELECT ok, checkpoints FROM hipaa_audit.verify_checkpoint_chain()'), 't|1',
		"$v, upgraded: verify_checkpoint_chain() ok");
	refusals_hold($db, "$v, upgraded");

	# --- write more -------------------------------------------------------
	$next = insert_round($db, $next, 5, "$v, upgraded, round 3");
	verify_is($db, $TBL, $next - 1, "$v, upgraded, after more inserts");
	chains_continue($db, $heads_before, $max_id_before, "$v, upgraded");
	my $note_new = sql($db, "SELECT hipaa_audit.checkpoint('$TBL')");
	like($note_new, qr/\nrows @{[$next - 1]}\n/, "$v, upgraded: a new checkpoint counts every row");
	# The first checkpoint after the update builds the tree of every row.
	like($note_new, qr/\A[^\n]+\n@{[$next - 1]}\n[A-Za-z0-9+\/]{43}=\ncheckpoint v2\n/,
		"$v, upgraded: it is a tlog-checkpoint of a tree of every row written before and after the update");
	{
		my ($pc, $ps, $ph) = split /\|/, sql($db, "SELECT audit_chain, audit_seq, encode(audit_hash, 'hex') FROM $TBL WHERE id = 1");
		my $proof = sql($db, "SELECT hipaa_audit.prove_row('$TBL', $pc, $ps)");
		is(sql($db, "SELECT ok || ':' || status FROM hipaa_audit.verify_proof(\$p\$$proof\$p\$, '\\x$ph', ARRAY['$vkey'])"),
			'true:ok', "$v, upgraded: a row written before the update is proved by the new tree");
	}
	checkpoint_ok($db, $note_new, $vkey, $TBL, "$v, upgraded: the new checkpoint verifies");
	checkpoint_ok($db, $note_old, $vkey, $TBL,
		"$v, upgraded: the pre-upgrade checkpoint still verifies after more inserts");
	is(sql($db, 'SELECT ok, checkpoints FROM hipaa_audit.verify_checkpoint_chain()'), 't|2',
		"$v, upgraded: the stored checkpoints chain on across the upgrade");
	if ($early_written)
	{
		my $early = sql($db, q{SELECT hipaa_audit.checkpoint('clinic.early')});
		like($early, qr/\A[^\n]+\n3\n[A-Za-z0-9+\/]{43}=\ncheckpoint v2\n.*\nrows 8\nchain 0 8 /s,
			"$v, upgraded: a table purged before the update: its tree starts after the purge anchor (3 leaves, positions to 8)");
		is(sql($db, q{SELECT first_seq || '-' || last_seq || '@' || first_index FROM hipaa_audit.merkle_ranges
		              WHERE part_uuid = (SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 'clinic.early'::regclass)}),
			'6-8@0', "$v, upgraded: ... recorded in merkle_ranges");
		checkpoint_ok($db, $early, $vkey, 'clinic.early', "$v, upgraded: that checkpoint verifies");
		like(sql_err($db, q{SELECT hipaa_audit.prove_row('clinic.early', 0, 3)}), qr/P0002: table clinic\.early has no row at chain 0, position 3/,
			"$v, upgraded: a row purged before the update is no leaf (P0002)");
	}

	# --- purge_expired ----------------------------------------------------
	is(sql($db, "SELECT rows_removed, receipt_id IS NULL, receipt IS NULL FROM hipaa_audit.purge_expired('$TBL')"),
		'0|t|t', "$v, upgraded: purge_expired() of a 6-year table removes nothing, no receipt");
	verify_is($db, $TBL, $next - 1, "$v, upgraded, after an empty purge");

	my $wait = 1.5 - (time - $short_written);
	sleep($wait) if $wait > 0;
	my ($removed, $receipt_id, $receipt) = split /\|/,
	  sql($db, q{SELECT rows_removed, receipt_id, receipt FROM hipaa_audit.purge_expired('clinic.short_log')}), 3;
	is($removed, '12', "$v, upgraded: purge_expired() removes the 12 rows past a 1-second retention");
	like($receipt // '', qr/\npurge v1\n.*\nrows 12\n/s, "$v, upgraded: with a signed receipt");
	$receipt //= '';
	is(sql($db, "SELECT ok, status FROM hipaa_audit.verify_receipt(\$n\$$receipt\$n\$, '$vkey')"),
		't|ok', "$v, upgraded: verify_receipt() ok");
	is(sql($db, 'SELECT ok, receipts FROM hipaa_audit.verify_receipt_chain()'), $early_written ? 't|2' : 't|1',
		"$v, upgraded: verify_receipt_chain() ok");
	verify_is($db, 'clinic.short_log', 0, "$v, upgraded, after the purge");
	sql($db, q{INSERT INTO clinic.short_log SELECT g, 'after purge ' || g FROM generate_series(13, 15) g});
	verify_is($db, 'clinic.short_log', 3, "$v, upgraded, inserts after the purge");
	is(sql($db, q{SELECT count(*) FROM clinic.short_log s
	               JOIN hipaa_audit.purge_anchors a ON a.chain = s.audit_chain
	                AND a.table_uuid = (SELECT table_uuid FROM hipaa_audit.registry
	                                     WHERE relid = 'clinic.short_log'::regclass)
	              WHERE s.audit_seq <= a.last_seq}),
		'0', "$v, upgraded: rows after the purge continue past the anchors (no reused position)");
	my $note_short = sql($db, q{SELECT hipaa_audit.checkpoint('clinic.short_log')});
	checkpoint_ok($db, $note_short, $vkey, 'clinic.short_log',
		"$v, upgraded: a checkpoint after the purge verifies");

	# --- the newer schema's bookkeeping on the upgraded database ------------
	is(runs($db, 'DROP TABLE clinic.empty_c'), 'ok',
		"$v, upgraded: an empty protected table can be dropped");
	# (From 0.2.0 on, the drop and the unprotect on the old schema are on record too.)
	is(sql($db, q{SELECT string_agg(action || ':' || table_name || ':' || rows_left, ' ' ORDER BY id) FROM hipaa_audit.retired_tables}),
		vcmp($old, '0.2.0') < 0 ? 'drop:clinic.empty_c:0'
		: 'drop:clinic.empty_a:0 unprotect:clinic.empty_b:0 drop:clinic.empty_c:0',
		"$v, upgraded: and its drop is recorded in retired_tables");
	foreach my $t (qw(purge_receipts purge_anchors retired_tables checkpoints))
	{
		like(sql_err($db, "DELETE FROM hipaa_audit.$t"), qr/ERROR:  42501: /,
			"$v, upgraded: DELETE FROM hipaa_audit.$t refused (42501)");
	}
	if (vcmp($old, '0.2.0') < 0)
	{
		is(runs($db, q{SELECT hipaa_audit.protect('clinic.parted', chains => 2);
		               CREATE TABLE clinic.parted_b PARTITION OF clinic.parted
		                   FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
		               INSERT INTO clinic.parted SELECT g, '2026-01-01'::date + g FROM generate_series(1, 40) g}),
			'ok', "$v, upgraded: a partitioned table can be protected, a partition added");
		is(sql($db, q{SELECT string_agg(relid::text, ' ' ORDER BY relid::text) FROM hipaa_audit.registry
		              WHERE partition_of = 'clinic.parted'::regclass}),
			'clinic.parted_a clinic.parted_b', "$v, upgraded: both partitions are protected");
		verify_is($db, 'clinic.parted', 40, "$v, upgraded, partitioned");
	}

	# --- same objects as a fresh install ----------------------------------
	my $up_desc = describe_extension($db);
	ok($up_desc eq $fresh_desc,
		"$v: the upgraded extension's objects are identical to a fresh install of $default")
	  or diag("- fresh install, + upgraded from $old:\n" . describe_diff($fresh_desc, $up_desc));

	# --- pg_dump / pg_restore of the upgraded database ----------------------
	my $dump = PostgreSQL::Test::Utils::tempdir . "/$db.dump";
	$node->command_ok([ 'pg_dump', '--format=custom', '--file', $dump,
			'--dbname', $node->connstr($db) ], "$v: pg_dump of the upgraded database");
	my $rdb = "${db}_restored";
	sql('postgres', "CREATE DATABASE $rdb");
	$node->command_ok([ 'pg_restore', '--exit-on-error', '--dbname', $node->connstr($rdb), $dump ],
		"$v: pg_restore into a new database");
	is(sql($rdb, q{SELECT extversion FROM pg_extension WHERE extname = 'hipaa_audit'}),
		$default, "$v, restored: the extension is at $default");
	is(sql($rdb, $rows_sql), sql($db, $rows_sql),
		"$v, restored: every row keeps its chain, position and hash");
	verify_is($rdb, $TBL, $next - 1, "$v, restored");
	verify_is($rdb, 'clinic.short_log', 3, "$v, restored");
	verify_is($rdb, 'clinic.parted', 40, "$v, restored, partitioned") if vcmp($old, '0.2.0') < 0;
	checkpoint_ok($rdb, $note_old, $vkey, $TBL, "$v, restored: the pre-upgrade checkpoint verifies");
	checkpoint_ok($rdb, $note_new, $vkey, $TBL, "$v, restored: the post-upgrade checkpoint verifies");
	is(sql($rdb, "SELECT ok, status FROM hipaa_audit.verify_receipt(\$n\$$receipt\$n\$, '$vkey')"),
		't|ok', "$v, restored: the purge receipt verifies");
	is(sql($rdb, 'SELECT (SELECT ok FROM hipaa_audit.verify_receipt_chain()), '
		  . '(SELECT ok FROM hipaa_audit.verify_checkpoint_chain())'), 't|t',
		"$v, restored: the receipt and checkpoint chains verify");
	my $heads_restored = sql($rdb, $heads_sql);
	my $max_id_restored = $next - 1;
	$next = insert_round($rdb, $next, 2, "$v, restored, round 4");
	verify_is($rdb, $TBL, $next - 1, "$v, restored, after more inserts");
	chains_continue($rdb, $heads_restored, $max_id_restored, "$v, restored");
	my $restored_desc = describe_extension($rdb);
	ok($restored_desc eq $fresh_desc,
		"$v, restored: the extension's objects are identical to a fresh install")
	  or diag("- fresh install, + restored:\n" . describe_diff($fresh_desc, $restored_desc));
}

$node->stop;
done_testing();
