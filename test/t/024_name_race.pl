# A check made on a name that PostgreSQL resolves again later.  The table
# owner puts an unprotected decoy of the same name earlier in search_path,
# has a second session hold a lock on it, and starts a refused ALTER TABLE
# on the name: the statement waits for the decoy's lock, the second session
# drops the decoy, and PostgreSQL's own lookup then lands on the protected
# table.  Every refusal must hold: the hooks decide on the table
# PostgreSQL will change, under the command's lock, and the object-access
# backstop checks what really changed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $ENV{TESTDIR} ? "$ENV{TESTDIR}/test/t" : 't';
use HaTest;

my $node = ha_node('race');
$node->safe_psql('postgres', q{
	CREATE ROLE owner LOGIN;
	GRANT CREATE ON SCHEMA public TO owner;
	CREATE SCHEMA decoys AUTHORIZATION owner;
});
$node->safe_psql('postgres', q{
	SET ROLE owner;
	CREATE TABLE public.audit (id int NOT NULL, note text NOT NULL);
	INSERT INTO public.audit VALUES (1, 'first'), (2, 'second');
	CREATE FUNCTION public.rewrite_row() RETURNS trigger LANGUAGE plpgsql
	    AS $$BEGIN NEW.note := 'rewritten'; RETURN NEW; END$$;
	SELECT hipaa_audit.protect('public.audit');
	INSERT INTO public.audit VALUES (3, 'third');
});

my $before = $node->safe_psql('postgres',
	'SELECT id, note, audit_chain, audit_seq, encode(audit_hash, \'hex\') FROM public.audit ORDER BY id');
my $locker = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
my $victim = $node->background_psql('postgres', on_error_stop => 0, timeout => ha_timeout());
$locker->query_safe('SET ROLE owner');
$victim->query_safe('SET ROLE owner');
$victim->query_safe('SET search_path = decoys, public');
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');

# One round: a fresh decoy, locked; the statement on the bare name waits
# for it; the decoy is dropped; the statement's outcome is returned.
my $round = 0;
my ($ret, $out, $err);
sub race
{
	my ($sql) = @_;
	$round++;
	$node->safe_psql('postgres', q{
		SET ROLE owner;
		CREATE TABLE decoys.audit (id int NOT NULL, note text NOT NULL);
	});
	$locker->query_safe('BEGIN; LOCK TABLE decoys.audit IN ACCESS EXCLUSIVE MODE');
	ha_start_blocking($victim, "r$round", $sql);
	ok( $node->poll_query_until(
			'postgres',
			"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $victim_pid"),
		"round $round: the statement waits for the decoy's lock");
	$locker->query_safe('DROP TABLE decoys.audit; COMMIT');
	return ha_sqlstate_of($victim, "r$round");
}

my @refused = (
	[ 'ALTER COLUMN ... TYPE ... USING rewriting a committed row',
	  q{ALTER TABLE audit ALTER COLUMN note TYPE text USING CASE WHEN id = 1 THEN 'rewritten' ELSE note END} ],
	[ 'SET UNLOGGED', 'ALTER TABLE audit SET UNLOGGED' ],
	[ 'DISABLE TRIGGER ALL', 'ALTER TABLE audit DISABLE TRIGGER ALL' ],
	[ 'ENABLE TRIGGER hipaa_audit_guard_row (ALWAYS to ORIGIN)',
	  'ALTER TABLE audit ENABLE TRIGGER hipaa_audit_guard_row' ],
	[ 'DROP COLUMN', 'ALTER TABLE audit DROP COLUMN note' ],
	[ 'RENAME COLUMN', 'ALTER TABLE audit RENAME COLUMN note TO remark' ],
	[ 'a BEFORE INSERT trigger that fires after the chain trigger',
	  'CREATE TRIGGER zz_rewrite BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION public.rewrite_row()' ],
	[ 'CREATE RULE', 'CREATE RULE swallow AS ON INSERT TO audit DO INSTEAD NOTHING' ],
	[ 'SET SCHEMA', 'ALTER TABLE audit SET SCHEMA decoys' ],
	[ 'TRUNCATE', 'TRUNCATE audit' ],
);
for my $case (@refused)
{
	my ($what, $sql) = @$case;
	is(race($sql), '42501', "$what through a dropped decoy: refused with 42501");
}

is( $node->safe_psql('postgres',
		'SELECT id, note, audit_chain, audit_seq, encode(audit_hash, \'hex\') FROM public.audit ORDER BY id'),
	$before, 'every row is as it was');
is( $node->safe_psql('postgres', q{
		SELECT relpersistence::text || ':' || relhasrules || ':' || relnamespace::regnamespace
		  FROM pg_class WHERE oid = 'public.audit'::regclass}),
	'p:false:public', 'the table is still logged, without rules, in its schema');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(tgname || '=' || tgenabled::text, ',' ORDER BY tgname)
		  FROM pg_trigger WHERE tgrelid = 'public.audit'::regclass}),
	'hipaa_audit_chain=A,hipaa_audit_guard_row=A,hipaa_audit_guard_truncate=A',
	'the guard and chain triggers are the only ones, ENABLE ALWAYS');
is($node->safe_psql('postgres', 'SELECT ok, rows_checked FROM hipaa_audit.verify(\'public.audit\')'),
	't|3', 'verify() ok, three rows');

# Allowed statements still go through the same way.
is(race('ALTER TABLE audit ALTER COLUMN note SET STATISTICS 200'), '00000',
	'SET STATISTICS through a dropped decoy: allowed');
is(race('ALTER TABLE audit ADD COLUMN remark text'), '00000',
	'ADD COLUMN without a default through a dropped decoy: allowed');
is($node->safe_psql('postgres', 'SELECT ok, rows_checked FROM hipaa_audit.verify(\'public.audit\')'),
	't|3', 'verify() ok after the allowed changes');

# A superuser, through the same race, replacing the row guard with one that
# never fires (WHEN (false), ENABLE ORIGIN): the backstop checks the
# trigger PostgreSQL changed, not the name the statement gave.
$victim->{stderr} = '';
$victim->query_safe('RESET ROLE');
is( race(q{CREATE OR REPLACE TRIGGER hipaa_audit_guard_row BEFORE UPDATE OR DELETE ON audit
		FOR EACH ROW WHEN (false) EXECUTE FUNCTION hipaa_audit.guard_row()}),
	'42501', 'superuser: CREATE OR REPLACE TRIGGER on the guard (WHEN false) through a dropped decoy: refused');
is( $node->safe_psql('postgres', q{
		SELECT tgqual IS NULL AND tgenabled = 'A' FROM pg_trigger
		 WHERE tgrelid = 'public.audit'::regclass AND tgname = 'hipaa_audit_guard_row'}),
	't', 'the row guard is unchanged');

# An empty protected table: its guard marked, through the race, as depending
# on an extension, then the extension dropped: the guards go only with the
# table, so the DROP EXTENSION is refused when it ends.
$node->safe_psql('postgres', q{
	SET ROLE owner;
	CREATE TABLE public.empty_audit (id int);
	SELECT hipaa_audit.protect('public.empty_audit');
	CREATE TABLE decoys.empty_audit (id int);
	CREATE FUNCTION decoys.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
	CREATE TRIGGER hipaa_audit_guard_row BEFORE UPDATE ON decoys.empty_audit
		FOR EACH ROW EXECUTE FUNCTION decoys.noop();
});
$round++;
$locker->query_safe('BEGIN; LOCK TABLE decoys.empty_audit IN ACCESS EXCLUSIVE MODE');
ha_start_blocking($victim, "r$round",
	'ALTER TRIGGER hipaa_audit_guard_row ON empty_audit DEPENDS ON EXTENSION plpgsql');
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $victim_pid"),
	"round $round: the statement waits for the decoy's lock");
$locker->query_safe('DROP TABLE decoys.empty_audit; COMMIT');
# The statement check of DEPENDS ON EXTENSION goes by name (refused when it
# sees the protected table); what must hold is what follows.
my $marked = ha_sqlstate_of($victim, "r$round");
if ($marked eq '00000')
{
	($ret, $out, $err) = $node->psql('postgres', 'DROP EXTENSION plpgsql CASCADE');
	like($err, qr/cannot drop the guard or chain triggers of protected table public\.empty_audit/,
		'the guard was marked; DROP EXTENSION that would take it along: refused');
}
else
{
	is( $node->safe_psql('postgres', q{
			SELECT count(*) FROM pg_depend d JOIN pg_trigger t ON t.oid = d.objid
			 WHERE d.deptype = 'x' AND t.tgrelid = 'public.empty_audit'::regclass}),
		'0', "DEPENDS ON EXTENSION refused ($marked): nothing marked");
}
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_trigger
		 WHERE tgrelid = 'public.empty_audit'::regclass AND tgname LIKE 'hipaa_audit_%'}),
	'3', 'the empty table keeps its three triggers');

# A role that does not own the table gets PostgreSQL's own error, and takes
# no lock on a table it may not alter.
$node->safe_psql('postgres', 'CREATE ROLE stranger LOGIN');
($ret, $out, $err) = $node->psql('postgres',
	'SET ROLE stranger; ALTER TABLE public.audit SET UNLOGGED');
like($err, qr/must be owner of table audit/, 'a stranger is told it must own the table');

$locker->quit;
$victim->quit;
$node->stop;
done_testing();
