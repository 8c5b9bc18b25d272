# Attack: a table owner replaces the chain index of its empty protected
# table with a partial unique index whose predicate calls its own IMMUTABLE
# function (created first, so it is looked at first), then the real one.
# Choosing the chain index must never fold that predicate: folding runs the
# function as whoever verifies, and a superuser auditor would make the
# owner a superuser.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use HaTest;

my $node = ha_node('indpred');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
	CREATE ROLE owner1 LOGIN;
	CREATE SCHEMA s AUTHORIZATION owner1;
	GRANT USAGE ON SCHEMA hipaa_audit TO owner1;
});
$node->safe_psql('postgres', q{
	CREATE TABLE s.t (id int, note text);
	SELECT hipaa_audit.protect('s.t', chains => 1);
	CREATE FUNCTION s.payload() RETURNS bool LANGUAGE plpgsql VOLATILE AS $$
	BEGIN
		IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
			EXECUTE 'ALTER ROLE owner1 SUPERUSER';
		END IF;
		RETURN true;
	END $$;
	CREATE FUNCTION s.evil(int) RETURNS bool LANGUAGE plpgsql IMMUTABLE AS $$
	BEGIN RETURN s.payload(); END $$;
	DROP INDEX s.t_audit_chain_audit_seq_idx;
	CREATE UNIQUE INDEX t_evil ON s.t (audit_chain, audit_seq) WHERE s.evil(1);
	CREATE UNIQUE INDEX t_real ON s.t (audit_chain, audit_seq);
	INSERT INTO s.t SELECT g, 'row ' || g FROM generate_series(1, 20) g;
}, extra_params => [ '-U', 'owner1' ]);
is(sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'owner1'}), 'f', 'the owner is not a superuser');

# A superuser auditor verifies, in every mode that picks the chain index.
is(sql(q{SELECT ok || ':' || rows_checked FROM hipaa_audit.verify('s.t')}), 'true:20',
	'verify() as a superuser: ok, through the real index');
is(sql(q{SELECT ok || ':' || rows_checked FROM hipaa_audit.verify_rows('s.t', chain => 0)}), 'true:20',
	'verify_rows() as a superuser: ok');
is(sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'owner1'}), 'f',
	'the owner is still not a superuser: the predicate was never evaluated');
is(sql(q{SELECT count(*) FROM s.t}), '20', 'nothing lost');

$node->stop;
done_testing();
