# Logical replication of a protected table to a subscriber that also runs
# hipaa_audit: the subscriber's copy, protected with protect_replica() and
# the publisher's table identity, keeps every row's chain columns as the
# publisher stamped them (no re-chaining), checks each arriving row's hash,
# verifies, refuses local inserts, and refuses UPDATE/DELETE like the
# publisher.  A checkpoint signed on the publisher verifies on it.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $keys = PostgreSQL::Test::Utils::tempdir;
chmod 0700, $keys;
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$keys/signer.pem") == 0 or die;
chmod 0600, "$keys/signer.pem";

my $pub = ha_node('lr_publisher', init => { allows_streaming => 'logical' },
	conf => "hipaa_audit.signing_key_file = '$keys/signer.pem'\nhipaa_audit.signer_name = 'site-a.example'\n");
my $sub = ha_node('lr_subscriber');

my $ddl = 'CREATE TABLE access_log (id int PRIMARY KEY, actor text NOT NULL)';
$pub->safe_psql('postgres', $ddl);
$pub->safe_psql('postgres', q{
	SELECT hipaa_audit.protect('access_log', retention => '3 seconds', chains => 4);
	INSERT INTO access_log SELECT g, 'before subscription ' || g FROM generate_series(1, 20) g;
});
my $uuid = $pub->safe_psql('postgres', q{SELECT table_uuid FROM hipaa_audit.registry});

# A replica starts empty: its rows come only from the publisher.
$sub->safe_psql('postgres', 'CREATE TABLE not_empty (id int); INSERT INTO not_empty VALUES (1)');
my ($rc0, $out0, $err0) = $sub->psql('postgres', "SELECT hipaa_audit.protect_replica('not_empty', '$uuid')");
like($err0, qr/cannot protect public\.not_empty as a logical replica: it already has rows/,
	'protect_replica() refuses a table that already has rows');

# The subscriber's table: the same columns, protected as a replica.
$sub->safe_psql('postgres', $ddl);
$sub->safe_psql('postgres', "SELECT hipaa_audit.protect_replica('access_log', '$uuid', chains => 4)");
is($sub->safe_psql('postgres', q{SELECT replica, table_uuid FROM hipaa_audit.protected_tables}),
	"t|$uuid", 'the replica carries the publisher\'s table identity');

# Inserts only: purges on the publisher stay on the publisher (see below).
$pub->safe_psql('postgres', "CREATE PUBLICATION audit_pub FOR TABLE access_log WITH (publish = 'insert')");
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION audit_sub CONNECTION '$connstr' PUBLICATION audit_pub");
$sub->wait_for_subscription_sync($pub, 'audit_sub');

$pub->safe_psql('postgres', q{
	INSERT INTO access_log SELECT g, 'streamed ' || g FROM generate_series(21, 40) g;
	BEGIN; INSERT INTO access_log VALUES (41, 'a'); INSERT INTO access_log VALUES (42, 'b'); COMMIT;
});
$pub->wait_for_catchup('audit_sub');

my $rows = q{SELECT string_agg(id || ':' || audit_chain || ':' || audit_seq || ':' || encode(audit_hash, 'hex'), ',' ORDER BY id) FROM access_log};
is($sub->safe_psql('postgres', $rows), $pub->safe_psql('postgres', $rows),
	'every row arrives with the chain position and hash the publisher gave it');
is($sub->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('access_log')}),
	'1:42', 'the subscriber verifies the publisher\'s chains');

my $note = $pub->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('access_log')});
my $vkey = $pub->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');
$pub->safe_psql('postgres', q{INSERT INTO access_log VALUES (43, 'after the checkpoint')});
$pub->wait_for_catchup('audit_sub');
like($sub->safe_psql('postgres',
		"SELECT ok::int || ':' || status || ':' || coalesce(detail, '') FROM hipaa_audit.verify_checkpoint(\$n\$$note\$n\$, '$vkey')"),
	qr/^1:ok:signed in database cluster/, 'a checkpoint signed on the publisher verifies on the subscriber');

my ($rc, $out, $err) = $sub->psql('postgres', q{INSERT INTO access_log VALUES (100, 'local')});
like($err, qr/cannot INSERT INTO protected table public\.access_log, a logical replica/,
	'local inserts on the replica are refused');
foreach my $sql ('UPDATE access_log SET actor = NULL', 'DELETE FROM access_log', 'TRUNCATE access_log')
{
	($rc, $out, $err) = $sub->psql('postgres', $sql);
	like($err, qr/ERROR:  cannot .*protected table public\.access_log/, "the replica refuses: $sql");
}
is($sub->safe_psql('postgres', 'SELECT count(*) FROM access_log'), '43', 'rows intact');

# A lawful purge on the publisher is not replayed: the subscriber keeps its
# copy under its own retention, and the subscription goes on.
$pub->poll_query_until('postgres',
	q{SELECT clock_timestamp() > (SELECT max(audit_at) FROM access_log) + interval '3.2 seconds'})
  or die 'rows did not expire';
is($pub->safe_psql('postgres', q{SELECT rows_removed FROM hipaa_audit.purge_expired('access_log')}),
	'43', 'the publisher purges its 43 expired rows');
$pub->safe_psql('postgres', q{INSERT INTO access_log VALUES (44, 'after the purge')});
$pub->wait_for_catchup('audit_sub');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM access_log'), '44',
	'the subscriber keeps every row and receives the next one');
is($pub->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('access_log')}),
	'1:1', 'the publisher verifies from its purge anchors');
is($sub->safe_psql('postgres', q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('access_log')}),
	'1:44', 'the subscriber verifies the whole history, the new row continuing its chain');
is($sub->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_subscription WHERE subname = 'audit_sub' AND pid IS NOT NULL}),
	'1', 'the subscription is still running');

# ---------------------------------------------------------------------
# A partitioned protected table: each partition has its own identity, so
# each is published as itself (publish_via_partition_root = false) into a
# protect_replica() table of its own (docs/partitions.md).  Published
# through its root instead, the rows carry their partitions' identities and
# a replica table under the root's identity refuses them.
# ---------------------------------------------------------------------
$pub->safe_psql('postgres', q{
	CREATE TABLE visits (id int, site int NOT NULL, who text, PRIMARY KEY (id, site)) PARTITION BY LIST (site);
	CREATE TABLE visits_1 PARTITION OF visits FOR VALUES IN (1);
	CREATE TABLE visits_2 PARTITION OF visits FOR VALUES IN (2);
	SELECT hipaa_audit.protect('visits', chains => 2);
	INSERT INTO visits SELECT g, 1 + g % 2, 'v' || g FROM generate_series(1, 30) g;
	CREATE PUBLICATION visits_pub FOR TABLE visits WITH (publish = 'insert', publish_via_partition_root = false);
});
my %part_uuid = map { split /\|/ } split /\n/, $pub->safe_psql('postgres',
	q{SELECT relid::text, table_uuid FROM hipaa_audit.registry WHERE partition_of = 'visits'::regclass});
for my $p (sort keys %part_uuid)
{
	$sub->safe_psql('postgres', "CREATE TABLE $p (id int, site int NOT NULL, who text, PRIMARY KEY (id, site));
		SELECT hipaa_audit.protect_replica('$p', '$part_uuid{$p}', chains => 2)");
}
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION visits_sub CONNECTION '$connstr' PUBLICATION visits_pub");
$sub->wait_for_subscription_sync($pub, 'visits_sub');
$pub->safe_psql('postgres', q{INSERT INTO visits SELECT g, 1 + g % 2, 'v' || g FROM generate_series(31, 40) g});
$pub->wait_for_catchup('visits_sub');
my $prow = q{SELECT string_agg(id || ':' || audit_chain || ':' || audit_seq || ':' || encode(audit_hash, 'hex'), ',' ORDER BY id) FROM %s};
for my $p (sort keys %part_uuid)
{
	is($sub->safe_psql('postgres', sprintf($prow, $p)), $pub->safe_psql('postgres', sprintf($prow, $p)),
		"partition $p replicated as itself: every row with the publisher's chain position and hash");
	is($sub->safe_psql('postgres', "SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('$p')"),
		'1:20', "... and the subscriber's $p verifies");
}

# Through the root: the replica under the root's identity refuses the rows.
my $root_uuid = $pub->safe_psql('postgres', q{SELECT table_uuid FROM hipaa_audit.registry WHERE relid = 'visits'::regclass});
$pub->safe_psql('postgres', q{CREATE PUBLICATION visits_root_pub FOR TABLE visits
	WITH (publish = 'insert', publish_via_partition_root = true)});
$sub->safe_psql('postgres', "CREATE TABLE visits (id int, site int NOT NULL, who text, PRIMARY KEY (id, site));
	SELECT hipaa_audit.protect_replica('visits', '$root_uuid', chains => 2)");
my $log_offset = -s $sub->logfile;
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION visits_root_sub CONNECTION '$connstr' PUBLICATION visits_root_pub");
ok($sub->wait_for_log(qr/a row replicated into public\.visits .*does not match its hash|does not match its hash/, $log_offset),
	'a partitioned table published through its root: the replica under the root\'s identity refuses its rows');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM visits'), '0', '... and holds none of them');
$sub->safe_psql('postgres', 'DROP SUBSCRIPTION visits_root_sub');

$sub->stop;
$pub->stop;
done_testing();
