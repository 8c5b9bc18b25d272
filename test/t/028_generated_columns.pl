# Generated columns on protected tables, on every PostgreSQL version the
# suite runs against.  A generated column is not hashed (docs/encoding.md):
# its value is computed from the row's own hashed columns, after the chain
# trigger ran.  Stored ones (every version) are written to the heap;
# virtual ones (PostgreSQL 18, the default there for GENERATED ALWAYS AS)
# are computed on every read.  For both, protect() accepts an expression of
# functions compiled into PostgreSQL and refuses one that calls a function
# that can be replaced without touching a row; adding a generated column to
# a protected table, or changing its expression, is refused; and the rows
# verify.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $node = ha_node('generated');
my $version = $node->safe_psql('postgres', 'SHOW server_version_num');
my @kinds = ('STORED');
push @kinds, 'VIRTUAL' if $version >= 180000;

# (SQLSTATE, message) of a statement that must fail.
sub fails
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\n$sql", on_error_stop => 1);
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	my ($msg) = $err =~ /ERROR:\s+[0-9A-Z]{5}:\s+(.*)/;
	return ($rc != 0 ? $state // 'no sqlstate' : 'succeeded', $msg // '');
}

$node->safe_psql('postgres', q{
	CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql IMMUTABLE
	  AS $$ SELECT upper(t) || '!' $$;
});

foreach my $kind (@kinds)
{
	my $t = lc "gen_$kind";
	$node->safe_psql('postgres', qq{
		CREATE TABLE $t (id int, note text,
			tenfold int GENERATED ALWAYS AS (id * 10) $kind,
			loud text GENERATED ALWAYS AS (upper(note) || '!') $kind);
		SELECT hipaa_audit.protect('$t', chains => 1);
		INSERT INTO $t (id, note) VALUES (1, 'a'), (2, 'b');
	});
	is($node->safe_psql('postgres',
			"SELECT string_agg(id || ':' || tenfold || ':' || loud, ' ' ORDER BY id) FROM $t"),
		'1:10:A! 2:20:B!', "$kind: the generated values are there");
	is($node->safe_psql('postgres',
			"SELECT attgenerated FROM pg_attribute WHERE attrelid = '$t'::regclass AND attname = 'tenfold'"),
		$kind eq 'STORED' ? 's' : 'v', "$kind: the column is $kind");
	is($node->safe_psql('postgres', "SELECT ok, rows_checked FROM hipaa_audit.verify('$t')"),
		't|2', "$kind: the protected table verifies");

	# A replaceable function in the expression: refused, nothing protected.
	# A user's function for stored columns (PostgreSQL 18 itself refuses
	# one in a virtual column), and for both a built-in function written in
	# SQL, whose body pg_proc holds.
	my %calls = (STORED => [ 'shout(note)', 'shout(text)' ],
		VIRTUAL => [ 'lpad(note, 5)', 'lpad(text,integer)' ]);
	my ($expr, $func) = @{ $calls{$kind} };
	my $bad = lc "gen_bad_$kind";
	$node->safe_psql('postgres',
		"CREATE TABLE $bad (id int, note text, loud text GENERATED ALWAYS AS ($expr) $kind)");
	my ($state, $msg) = fails("SELECT hipaa_audit.protect('$bad')");
	is($state, '0A000', "$kind: a generated column calling $func is refused (0A000)");
	like($msg, qr/generated column "loud" calls function \Q$func\E, which can be replaced/,
		"$kind: ... and the message names the column and the function");
	is($node->safe_psql('postgres', "SELECT hipaa_audit.is_protected('$bad')"), 'f',
		"$kind: ... and the table is not protected");

	# Adding one to a protected table: refused, the table unchanged.
	($state, $msg) = fails(
		"ALTER TABLE $t ADD COLUMN twice int GENERATED ALWAYS AS (id * 2) $kind");
	is($state, '42501', "$kind: ADD COLUMN ... GENERATED on a protected table is refused");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM pg_attribute WHERE attrelid = '$t'::regclass AND attname = 'twice'"),
		'0', "$kind: ... and the column is not there");

	# Changing the expression (PostgreSQL 17 and later): the values would
	# read differently with no row touched.
	if ($version >= 170000)
	{
		($state, $msg) = fails("ALTER TABLE $t ALTER COLUMN tenfold SET EXPRESSION AS (id * 11)");
		is($state, '42501', "$kind: ALTER COLUMN ... SET EXPRESSION on a protected table is refused");
		is($node->safe_psql('postgres', "SELECT string_agg(tenfold::text, ' ' ORDER BY id) FROM $t"),
			'10 20', "$kind: ... and the values read as before");
	}

	# Turning it into an ordinary column (DROP EXPRESSION): refused by
	# hipaa_audit (PostgreSQL itself has no such change for virtual ones).
	($state, $msg) = fails("ALTER TABLE $t ALTER COLUMN tenfold DROP EXPRESSION");
	isnt($state, 'succeeded', "$kind: ALTER COLUMN ... DROP EXPRESSION does not run ($state)");
	like($msg, qr/DROP EXPRESSION|not supported for virtual generated columns/,
		"$kind: ... refused with a clear message");
	is($node->safe_psql('postgres',
			"SELECT attgenerated <> '' FROM pg_attribute WHERE attrelid = '$t'::regclass AND attname = 'tenfold'"),
		't', "$kind: ... and the column is still generated");

	$node->safe_psql('postgres', "INSERT INTO $t (id, note) VALUES (3, 'c')");
	is($node->safe_psql('postgres', "SELECT ok, rows_checked FROM hipaa_audit.verify('$t')"),
		't|3', "$kind: inserts continue the chain and it still verifies");
}

done_testing();
