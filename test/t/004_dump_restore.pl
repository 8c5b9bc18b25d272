# The registry travels with pg_dump: after pg_restore into a fresh cluster
# the same tables are protected (same table identity), the guard triggers
# are ENABLE ALWAYS again, the rows are identical and every refusal holds.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $keydir = PostgreSQL::Test::Utils::tempdir;
chmod 0700, $keydir;
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$keydir/signer.pem") == 0
  or die 'openssl genpkey failed';
chmod 0600, "$keydir/signer.pem";
my $src = ha_node('dump_source',
	conf => "hipaa_audit.signing_key_file = '$keydir/signer.pem'\nhipaa_audit.signer_name = 'source.example'\n");
$src->safe_psql('postgres', q{
	CREATE SCHEMA clinic;
	CREATE TABLE clinic.access_log (id int PRIMARY KEY, actor text NOT NULL, at timestamptz);
	SELECT hipaa_audit.protect('clinic.access_log', retention => '7 years', chains => 4);
	INSERT INTO clinic.access_log
	SELECT g, 'user' || g, '2026-01-01'::timestamptz + g * interval '1 minute'
	  FROM generate_series(1, 500) g;
	CREATE TABLE plain (a int);
	INSERT INTO plain VALUES (1);
});
my $registry_sql = q{SELECT relid::text, table_uuid, retention, chains FROM hipaa_audit.registry ORDER BY 1};
my $rows_sql = q{SELECT count(*), md5(string_agg(id || ':' || actor || ':' || at, ',' ORDER BY id)) FROM clinic.access_log};
my $hashes_sql = q{SELECT md5(string_agg(audit_chain || ':' || audit_seq || ':' || encode(audit_hash, 'hex'), ',' ORDER BY audit_chain, audit_seq)) FROM clinic.access_log};
my $hashes = $src->safe_psql('postgres', $hashes_sql);
is($src->safe_psql('postgres', q{SELECT ok FROM hipaa_audit.verify('clinic.access_log')}), 't',
	'the source verifies');
my $registry = $src->safe_psql('postgres', $registry_sql);
my $rows = $src->safe_psql('postgres', $rows_sql);
like($registry, qr/^clinic\.access_log\|[0-9a-f-]{36}\|7 years\|4$/, 'registry on the source');

my $note = $src->safe_psql('postgres', q{SELECT hipaa_audit.checkpoint('clinic.access_log')});
my $vkey = $src->safe_psql('postgres', 'SELECT hipaa_audit.verifier_key()');

my $tempdir = PostgreSQL::Test::Utils::tempdir;

foreach my $format ('custom', 'plain')
{
	my $dump = "$tempdir/dump.$format";
	$src->command_ok([ 'pg_dump', '--format', $format, '--file', $dump,
			'--dbname', $src->connstr('postgres') ],
		"pg_dump --format=$format");

	my $dst = ha_node("restore_$format", no_extension => 1);
	if ($format eq 'custom')
	{
		$dst->command_ok([ 'pg_restore', '--exit-on-error', '--dbname',
				$dst->connstr('postgres'), $dump ], 'pg_restore');
	}
	else
	{
		$dst->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q',
				'-d', $dst->connstr('postgres'), '-f', $dump ], 'psql < plain dump');
	}

	is($dst->safe_psql('postgres', $registry_sql), $registry,
		"$format: registry restored with the same table identity");
	is($dst->safe_psql('postgres', $rows_sql), $rows, "$format: rows identical");
	is($dst->safe_psql('postgres', $hashes_sql), $hashes,
		"$format: every row keeps its chain position and hash");
	is($dst->safe_psql('postgres',
			q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('clinic.access_log')}),
		'1:500', "$format: every row verifies in the new cluster");
	is($dst->safe_psql('postgres',
			"SELECT string_agg(tgname || '=' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'clinic.access_log'::regclass"),
		'hipaa_audit_chain=A,hipaa_audit_guard_row=A,hipaa_audit_guard_truncate=A',
		"$format: chain and guard triggers restored ENABLE ALWAYS");
	like($dst->safe_psql('postgres',
			"SELECT ok::int || ':' || status || ':' || detail FROM hipaa_audit.verify_checkpoint(\$n\$$note\$n\$, '$vkey')"),
		qr/^1:ok:signed in database cluster \d+; this is \d+, holding a restored copy of the table$/,
		"$format: a checkpoint signed before the dump verifies against the restored copy");
	is($dst->safe_psql('postgres', 'SELECT count(*) FROM hipaa_audit.checkpoints'), '1',
		"$format: the stored checkpoint came along");
	foreach my $sql ('UPDATE clinic.access_log SET actor = NULL',
		'DELETE FROM clinic.access_log', 'TRUNCATE clinic.access_log',
		'DROP TABLE clinic.access_log')
	{
		my ($rc, $out, $err) = $dst->psql('postgres', $sql);
		like($err, qr/ERROR:  cannot .*protected table clinic\.access_log/,
			"$format: still refused after restore: $sql");
	}
	$dst->safe_psql('postgres', q{INSERT INTO clinic.access_log VALUES (501, 'after restore', now())});
	is($dst->safe_psql('postgres', 'SELECT count(*) FROM clinic.access_log'), '501',
		"$format: inserts continue after restore");
	is($dst->safe_psql('postgres', q{
			SELECT n.audit_seq = (SELECT coalesce(max(audit_seq), 0) FROM clinic.access_log o
			                       WHERE o.audit_chain = n.audit_chain AND o.id <> 501) + 1
			  FROM clinic.access_log n WHERE n.id = 501}),
		't', "$format: the new row continues its chain from the restored head");
	is($dst->safe_psql('postgres',
			q{SELECT ok::int || ':' || rows_checked FROM hipaa_audit.verify('clinic.access_log')}),
		'1:501', "$format: and everything still verifies");
	is($dst->safe_psql('postgres', 'SELECT count(*) FROM plain; DELETE FROM plain; SELECT count(*) FROM plain'),
		"1\n0", "$format: unprotected tables are left alone");
	$dst->stop;
}

$src->stop;
done_testing();
