# The hooks let the statements of hipaa_audit's own install and upgrade
# scripts through, and nothing those statements fire: a superuser's event
# trigger that runs while ALTER EXTENSION hipaa_audit UPDATE (or CREATE
# EXTENSION) executes the script gets no pass, so it cannot delete audit
# rows or the extension's records, or switch the guards off.  (Event
# triggers during protect()'s own DDL: regress 12_security.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $ENV{TESTDIR} ? "$ENV{TESTDIR}/test/t" : 't';
use HaTest;

my $node = ha_node('scriptpass', no_extension => 1);

# Attempts made from inside the script's DDL, each recorded with its outcome.
my $event_trigger = q{
	CREATE TABLE public.attempts (what text, outcome text);
	CREATE FUNCTION public.meddle() RETURNS event_trigger LANGUAGE plpgsql AS $$
	DECLARE
		stmt text;
	BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'hipaa_audit')
		   OR NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'audit' AND relnamespace = 'public'::regnamespace)
		THEN
			RETURN;
		END IF;
		FOREACH stmt IN ARRAY ARRAY[
			'DELETE FROM public.audit',
			'DELETE FROM hipaa_audit.registry',
			'ALTER TABLE public.audit DISABLE TRIGGER ALL',
			'DROP TRIGGER hipaa_audit_guard_row ON public.audit']
		LOOP
			BEGIN
				EXECUTE stmt;
				INSERT INTO public.attempts VALUES (stmt, 'done');
			EXCEPTION WHEN OTHERS THEN
				INSERT INTO public.attempts VALUES (stmt, SQLSTATE);
			END;
		END LOOP;
	END $$;
	CREATE EVENT TRIGGER meddle ON ddl_command_end EXECUTE FUNCTION public.meddle();
};

# From every released version, the update.
my @versions = grep { $_ ne '' } split /\n/, $node->safe_psql('postgres',
	"SELECT version FROM pg_available_extension_versions WHERE name = 'hipaa_audit' ORDER BY 1");
my $current = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'hipaa_audit'");
my @old = grep { $_ ne $current } @versions;
ok(scalar(@old) >= 1, 'there is at least one released version to update from');

for my $v (@old)
{
	my $db = "upd_" . ($v =~ s/\W/_/gr);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION hipaa_audit VERSION '$v';
		CREATE TABLE public.audit (id int NOT NULL, note text NOT NULL);
		SELECT hipaa_audit.protect('public.audit');
		INSERT INTO public.audit VALUES (1, 'one'), (2, 'two');
	});
	$node->safe_psql($db, $event_trigger);
	$node->safe_psql($db, 'ALTER EXTENSION hipaa_audit UPDATE');
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'hipaa_audit'"),
		$current, "$v: updated to $current");
	my $attempts = $node->safe_psql($db,
		'SELECT what, outcome, count(*) FROM public.attempts GROUP BY 1, 2 ORDER BY 1, 2');
	ok($attempts ne '', "$v: the event trigger ran during the update");
	unlike($attempts, qr/\|done\|/, "$v: nothing it tried was done");
	like($attempts, qr/^DELETE FROM public\.audit\|42501\|/m,
		"$v: deleting audit rows from the event trigger: 42501");
	like($attempts, qr/^DELETE FROM hipaa_audit\.registry\|42501\|/m,
		"$v: deleting registry rows from the event trigger: 42501");
	like($attempts, qr/^ALTER TABLE public\.audit DISABLE TRIGGER ALL\|42501\|/m,
		"$v: disabling the guards from the event trigger: 42501");
	like($attempts, qr/^DROP TRIGGER hipaa_audit_guard_row ON public\.audit\|42501\|/m,
		"$v: dropping a guard from the event trigger: 42501");
	is($node->safe_psql($db, 'SELECT count(*) FROM public.audit'), '2', "$v: both rows kept");
	is($node->safe_psql($db, "SELECT count(*) FROM hipaa_audit.registry"), '1',
		"$v: the registry row kept");
	is($node->safe_psql($db, "SELECT ok FROM hipaa_audit.verify('public.audit')"), 't',
		"$v: verify() ok");
}

# A table protected before protect() refused generated columns that call
# replaceable functions, brought back as pg_restore brings it: the table and
# its columns, the registry row copied into the still-empty registry, then
# the triggers.  Replacing the generated column's function is refused.
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->safe_psql('restored', q{
	CREATE EXTENSION hipaa_audit;
	CREATE FUNCTION public.twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
	CREATE TABLE public.derived (id int, twice int GENERATED ALWAYS AS (public.twice(id)) STORED,
		audit_chain int4 NOT NULL, audit_seq int8 NOT NULL, audit_at timestamptz NOT NULL,
		audit_session_role text NOT NULL, audit_role text NOT NULL, audit_client inet,
		audit_prev_hash bytea NOT NULL, audit_hash bytea NOT NULL);
	CREATE UNIQUE INDEX ON public.derived (audit_chain, audit_seq);
});
$node->safe_psql('restored', q{
	COPY hipaa_audit.registry (relid, table_uuid, retention, chains, protected_at, protected_by)
	FROM PROGRAM 'printf "public.derived\t6b1f3c52-59a5-4b3c-9a8f-3f2b6f6a0c11\t6 years\t4\t2026-01-01 00:00:00+00\tpostgres\n"';
});
$node->safe_psql('restored', q{
	CREATE TRIGGER hipaa_audit_chain BEFORE INSERT ON public.derived FOR EACH ROW EXECUTE FUNCTION hipaa_audit.chain_row();
	ALTER TABLE public.derived ENABLE ALWAYS TRIGGER hipaa_audit_chain;
	CREATE TRIGGER hipaa_audit_guard_row BEFORE UPDATE OR DELETE ON public.derived FOR EACH ROW EXECUTE FUNCTION hipaa_audit.guard_row();
	ALTER TABLE public.derived ENABLE ALWAYS TRIGGER hipaa_audit_guard_row;
	CREATE TRIGGER hipaa_audit_guard_truncate BEFORE TRUNCATE ON public.derived FOR EACH STATEMENT EXECUTE FUNCTION hipaa_audit.guard_truncate();
	ALTER TABLE public.derived ENABLE ALWAYS TRIGGER hipaa_audit_guard_truncate;
	INSERT INTO public.derived (id) VALUES (21);
});
is($node->safe_psql('restored', "SELECT hipaa_audit.is_protected('public.derived')"), 't',
	'restored: the table is protected again');
my ($rc, $out, $err) = $node->psql('restored',
	q{CREATE OR REPLACE FUNCTION public.twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 3'});
like($err, qr/cannot replace function public\.twice\(integer\), which generated column "twice" of protected table public\.derived computes with/,
	'restored: replacing the generated column\'s function is refused');
is($node->safe_psql('restored', 'SELECT twice, public.twice(id) FROM public.derived'), '42|42',
	'restored: the function still computes what the column holds');
# And a second COPY into the registry, now that it holds a row: refused.
($rc, $out, $err) = $node->psql('restored', q{
	COPY hipaa_audit.registry (relid, table_uuid, retention, chains, protected_at, protected_by)
	FROM PROGRAM 'printf "public.derived\t00000000-0000-0000-0000-000000000002\t1 second\t1\t2026-01-01\tpostgres\n"'});
like($err, qr/cannot COPY FROM into table hipaa_audit\.registry/,
	'restored: COPY FROM into the registry once it holds rows: refused');

$node->stop;
done_testing();
