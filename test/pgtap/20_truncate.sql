-- 20_truncate.sql: TRUNCATE never empties a protected table, whether it is
-- named directly, listed with other tables, or reached by CASCADE; and no
-- inheritance link can be made that would let a TRUNCATE of another table
-- reach it.
--
-- Every refusal is followed by a check that the rows are still there, with
-- the same content (and that the other tables in the statement kept theirs).

BEGIN;
SELECT plan(62);

-- ------------------------------------------------------------------
-- Fixtures
-- ------------------------------------------------------------------
CREATE ROLE regress_ha_trunc_owner;   -- owns the audit table
CREATE ROLE regress_ha_trunc_app;     -- has every privilege, TRUNCATE included

-- trunc_root <- trunc_parent <- trunc_audit: TRUNCATE ... CASCADE of either
-- parent reaches the audit table (the second one through two hops).
CREATE TABLE public.trunc_root (id int PRIMARY KEY);
CREATE TABLE public.trunc_parent (id int PRIMARY KEY, root_id int REFERENCES public.trunc_root);
CREATE TABLE public.trunc_audit (
    id        int PRIMARY KEY,
    parent_id int REFERENCES public.trunc_parent,
    who       text NOT NULL,
    note      text
);
CREATE TABLE public.trunc_other (id int PRIMARY KEY, note text);

INSERT INTO public.trunc_root VALUES (1);
INSERT INTO public.trunc_parent VALUES (1, 1), (2, 1);
INSERT INTO public.trunc_audit VALUES
    (1, 1,    'alice', 'login'),
    (2, 2,    'bob',   'read chart 17'),
    (3, NULL, 'carol', 'logout');
INSERT INTO public.trunc_other VALUES (1, 'keep me'), (2, 'me too');

ALTER TABLE public.trunc_audit OWNER TO regress_ha_trunc_owner;
GRANT ALL ON public.trunc_audit TO regress_ha_trunc_app;
GRANT ALL ON public.trunc_root, public.trunc_parent, public.trunc_other
    TO regress_ha_trunc_owner, regress_ha_trunc_app;

SET ROLE regress_ha_trunc_owner;
SELECT hipaa_audit.protect('public.trunc_audit');
RESET ROLE;

CREATE FUNCTION public.trunc_plpgsql() RETURNS void LANGUAGE plpgsql
    AS $$BEGIN TRUNCATE public.trunc_audit; END$$;
CREATE FUNCTION public.trunc_plpgsql_dynamic(cmd text) RETURNS void LANGUAGE plpgsql
    AS $$BEGIN EXECUTE cmd; END$$;
CREATE FUNCTION public.trunc_sql() RETURNS void LANGUAGE sql
    AS 'TRUNCATE public.trunc_audit';

SELECT ok(hipaa_audit.is_protected('public.trunc_audit'), 'trunc_audit is protected');

-- ------------------------------------------------------------------
-- The refusals, run once per role (superuser, owner, application role).
-- 14 tests per call.
-- ------------------------------------------------------------------
CREATE FUNCTION pg_temp.trunc_refusals() RETURNS SETOF text LANGUAGE plpgsql AS $fn$
DECLARE
    pfx      text := current_user || ': ';
    msg      text := 'cannot TRUNCATE protected table public.trunc_audit';
    rows     text := 'SELECT id, parent_id, who, note FROM public.trunc_audit ORDER BY id';
    expected text := $$VALUES (1, 1, 'alice', 'login'), (2, 2, 'bob', 'read chart 17'),
                              (3, NULL::int, 'carol', 'logout')$$;
    others   text := $$SELECT 'other', id, note FROM public.trunc_other UNION ALL
                       SELECT 'parent', id, NULL FROM public.trunc_parent UNION ALL
                       SELECT 'root', id, NULL FROM public.trunc_root ORDER BY 1, 2$$;
    others_expected text := $$VALUES ('other', 1, 'keep me'), ('other', 2, 'me too'),
                                     ('parent', 1, NULL), ('parent', 2, NULL), ('root', 1, NULL)$$;
BEGIN
    RETURN NEXT throws_ok('TRUNCATE public.trunc_audit',
        '42501', msg, pfx || 'TRUNCATE is refused');
    RETURN NEXT throws_ok('TRUNCATE TABLE ONLY public.trunc_audit',
        '42501', msg, pfx || 'TRUNCATE ONLY is refused');
    RETURN NEXT throws_ok('TRUNCATE public.trunc_audit RESTART IDENTITY',
        '42501', msg, pfx || 'TRUNCATE ... RESTART IDENTITY is refused');
    -- The unprotected table is listed first: nothing may be emptied.
    RETURN NEXT throws_ok('TRUNCATE public.trunc_other, public.trunc_audit',
        '42501', msg, pfx || 'TRUNCATE of several tables, one protected, is refused');
    RETURN NEXT results_eq(rows, expected, pfx || 'rows unchanged after direct TRUNCATE');

    -- CASCADE reaches tables with foreign keys to the truncated one.
    RETURN NEXT throws_ok('TRUNCATE public.trunc_parent CASCADE',
        '42501', msg, pfx || 'TRUNCATE of a referenced table ... CASCADE is refused');
    RETURN NEXT throws_ok('TRUNCATE public.trunc_root CASCADE',
        '42501', msg, pfx || 'TRUNCATE ... CASCADE reaching it through two foreign keys is refused');
    RETURN NEXT results_eq(rows, expected, pfx || 'rows unchanged after TRUNCATE ... CASCADE');

    -- From functions, static and dynamic.
    RETURN NEXT throws_ok('SELECT public.trunc_plpgsql()',
        '42501', msg, pfx || 'TRUNCATE in a PL/pgSQL function is refused');
    RETURN NEXT throws_ok($$SELECT public.trunc_plpgsql_dynamic('TRUNCATE public.trunc_audit')$$,
        '42501', msg, pfx || 'TRUNCATE by PL/pgSQL EXECUTE is refused');
    RETURN NEXT throws_ok($$SELECT public.trunc_plpgsql_dynamic('TRUNCATE public.trunc_parent CASCADE')$$,
        '42501', msg, pfx || 'TRUNCATE ... CASCADE by PL/pgSQL EXECUTE is refused');
    RETURN NEXT throws_ok('SELECT public.trunc_sql()',
        '42501', msg, pfx || 'TRUNCATE in a SQL function is refused');
    RETURN NEXT results_eq(rows, expected, pfx || 'rows unchanged after TRUNCATE in functions');

    RETURN NEXT results_eq(others, others_expected,
        pfx || 'the other tables named or reached kept their rows too');
END
$fn$;

-- Superuser.
SELECT * FROM pg_temp.trunc_refusals();

-- The table's owner.
SET ROLE regress_ha_trunc_owner;
SELECT * FROM pg_temp.trunc_refusals();
RESET ROLE;

-- An application role with every privilege on the table.
SET ROLE regress_ha_trunc_app;
SELECT * FROM pg_temp.trunc_refusals();
RESET ROLE;

-- ------------------------------------------------------------------
-- session_replication_role = replica: the TRUNCATE guard trigger is ENABLE
-- ALWAYS, and the utility check does not depend on triggers.
-- ------------------------------------------------------------------
SET LOCAL session_replication_role = replica;

SELECT throws_ok('TRUNCATE public.trunc_audit',
    '42501', 'cannot TRUNCATE protected table public.trunc_audit',
    'replica: TRUNCATE is refused');
SELECT throws_ok('TRUNCATE ONLY public.trunc_audit',
    '42501', 'cannot TRUNCATE protected table public.trunc_audit',
    'replica: TRUNCATE ONLY is refused');
SELECT throws_ok('TRUNCATE public.trunc_other, public.trunc_audit',
    '42501', 'cannot TRUNCATE protected table public.trunc_audit',
    'replica: TRUNCATE of several tables, one protected, is refused');
SELECT throws_ok('TRUNCATE public.trunc_parent CASCADE',
    '42501', 'cannot TRUNCATE protected table public.trunc_audit',
    'replica: TRUNCATE ... CASCADE is refused');
SELECT throws_ok($$SELECT public.trunc_plpgsql_dynamic('TRUNCATE public.trunc_audit')$$,
    '42501', 'cannot TRUNCATE protected table public.trunc_audit',
    'replica: TRUNCATE by PL/pgSQL EXECUTE is refused');
SELECT results_eq('SELECT id, parent_id, who, note FROM public.trunc_audit ORDER BY id',
    $$VALUES (1, 1, 'alice', 'login'), (2, 2, 'bob', 'read chart 17'), (3, NULL::int, 'carol', 'logout')$$,
    'replica: rows unchanged');
SELECT results_eq('SELECT id, note FROM public.trunc_other ORDER BY id',
    $$VALUES (1, 'keep me'), (2, 'me too')$$,
    'replica: the other table kept its rows');

RESET session_replication_role;

-- ------------------------------------------------------------------
-- Inheritance and partitioning: a TRUNCATE (or UPDATE/DELETE) of a parent
-- recurses into its children, so a protected table may be neither a child
-- nor a parent, and may not be attached as a partition.
-- ------------------------------------------------------------------
CREATE TABLE public.trunc_base (id int, who text);
INSERT INTO public.trunc_base VALUES (100, 'base row');
CREATE TABLE public.trunc_loose (id int, parent_id int, who text, note text);
CREATE TABLE public.trunc_parted (id int, parent_id int, who text, note text) PARTITION BY RANGE (id);

-- trunc_audit as the parent.
SELECT throws_ok('ALTER TABLE public.trunc_loose INHERIT public.trunc_audit',
    '42501', 'cannot INHERIT from protected table public.trunc_audit',
    'ALTER TABLE x INHERIT <protected> is refused');
SELECT throws_ok('CREATE TABLE public.trunc_child () INHERITS (public.trunc_audit)',
    '42501', 'cannot create a table that inherits from protected table public.trunc_audit',
    'CREATE TABLE ... INHERITS (<protected>) is refused');
-- trunc_audit as the child.
SELECT throws_ok('ALTER TABLE public.trunc_audit INHERIT public.trunc_base',
    '42501', 'cannot INHERIT on protected table public.trunc_audit',
    'ALTER TABLE <protected> INHERIT x is refused');
SELECT throws_ok($$ALTER TABLE public.trunc_parted ATTACH PARTITION public.trunc_audit
                   FOR VALUES FROM (0) TO (1000)$$,
    '42501', 'cannot ATTACH PARTITION protected table public.trunc_audit',
    'ATTACH PARTITION <protected> is refused');

SELECT is_empty($$SELECT inhrelid::regclass, inhparent::regclass FROM pg_inherits
                   WHERE 'public.trunc_audit'::regclass IN (inhrelid, inhparent)$$,
    'trunc_audit has no parent and no child');

-- So TRUNCATE of the would-be parents touches only their own rows.
SELECT lives_ok('TRUNCATE public.trunc_base', 'TRUNCATE of the would-be parent table works');
SELECT lives_ok('TRUNCATE public.trunc_parted', 'TRUNCATE of the would-be partitioned table works');
SELECT results_eq('SELECT id, parent_id, who, note FROM public.trunc_audit ORDER BY id',
    $$VALUES (1, 1, 'alice', 'login'), (2, 2, 'bob', 'read chart 17'), (3, NULL::int, 'carol', 'logout')$$,
    'rows unchanged after TRUNCATE of the would-be parents');

-- CREATE FOREIGN TABLE ... INHERITS is a different parse node from CREATE
-- TABLE; it must be refused too, or the foreign child's rows would show up in
-- (or, with no handler, break) every read of the protected table.
CREATE FOREIGN DATA WRAPPER trunc_fdw;
CREATE SERVER trunc_server FOREIGN DATA WRAPPER trunc_fdw;
SELECT throws_ok('CREATE FOREIGN TABLE public.trunc_ft_child () INHERITS (public.trunc_audit) SERVER trunc_server',
    '42501', 'cannot create a table that inherits from protected table public.trunc_audit',
    'CREATE FOREIGN TABLE ... INHERITS (<protected>) is refused');
SELECT is_empty($$SELECT inhrelid::regclass FROM pg_inherits
                   WHERE inhparent = 'public.trunc_audit'::regclass$$,
    'trunc_audit has no foreign child');
-- Should the refusal ever fail, keep the rest of the file readable.
DROP FOREIGN TABLE IF EXISTS public.trunc_ft_child;

SELECT results_eq('SELECT id, parent_id, who, note FROM public.trunc_audit ORDER BY id',
    $$VALUES (1, 1, 'alice', 'login'), (2, 2, 'bob', 'read chart 17'), (3, NULL::int, 'carol', 'logout')$$,
    'rows unchanged at the end');
SELECT results_eq(
    $$SELECT ok, rows_checked, problems, first_problem FROM hipaa_audit.verify('public.trunc_audit')$$,
    $$VALUES (true, 3::bigint, 0::bigint, NULL::text)$$,
    'the hash chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
