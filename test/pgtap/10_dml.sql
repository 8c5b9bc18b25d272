-- 10_dml.sql: a protected table is insert-only.  UPDATE, DELETE, MERGE and
-- INSERT ... ON CONFLICT DO UPDATE are refused (42501) whoever asks and
-- however the statement reaches the table; INSERT and reads still work.
--
-- Every refusal is followed by a check that the rows are still there, with
-- the same content: if the protection were removed, both would fail.

BEGIN;
SELECT plan(173);

-- ------------------------------------------------------------------
-- Fixtures
-- ------------------------------------------------------------------

-- An ordinary role that owns the audit table, and an application role with
-- every privilege on it.  Neither is a superuser.
CREATE ROLE regress_ha_dml_owner;
CREATE ROLE regress_ha_dml_app;

CREATE TABLE public.dml_audit (
    id   int PRIMARY KEY,
    who  text NOT NULL,
    note text
);
INSERT INTO public.dml_audit VALUES
    (1, 'alice', 'login'),
    (2, 'bob',   'read chart 17'),
    (3, 'carol', 'logout');
ALTER TABLE public.dml_audit OWNER TO regress_ha_dml_owner;
GRANT ALL ON public.dml_audit TO regress_ha_dml_app;

-- Prepared while the table was not yet protected: the check must happen
-- when it runs, not when it was planned.
PREPARE dml_p_early(int) AS DELETE FROM public.dml_audit WHERE id = $1;

-- The owner protects their own table.
SET ROLE regress_ha_dml_owner;
SELECT hipaa_audit.protect('public.dml_audit');
RESET ROLE;

PREPARE dml_p_delete(int) AS DELETE FROM public.dml_audit WHERE id = $1;
PREPARE dml_p_update(int) AS UPDATE public.dml_audit SET note = 'tampered' WHERE id = $1;

-- Where a data-modifying CTE would move the rows to.
CREATE TABLE public.dml_other (id int, who text, note text);

-- A rule on ANOTHER table that deletes from the protected one.
CREATE TABLE public.dml_trap (id int);
CREATE RULE dml_trap_purge AS ON INSERT TO public.dml_trap
    DO ALSO DELETE FROM public.dml_audit;

-- Views: auto-updatable, security_barrier, and one with INSTEAD OF triggers
-- whose function deletes the audit row whatever the view was asked to do.
CREATE VIEW public.dml_v AS SELECT id, who, note FROM public.dml_audit;
CREATE VIEW public.dml_v_sb WITH (security_barrier) AS
    SELECT id, who, note FROM public.dml_audit WHERE id > 0;
CREATE VIEW public.dml_v_trig AS SELECT id, who, note FROM public.dml_audit;
CREATE FUNCTION public.dml_v_trig_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM public.dml_audit WHERE id = OLD.id;
        RETURN OLD;
    END IF;
    DELETE FROM public.dml_audit WHERE id = NEW.id;
    RETURN NEW;
END
$$;
CREATE TRIGGER dml_v_trig_iud INSTEAD OF INSERT OR UPDATE OR DELETE ON public.dml_v_trig
    FOR EACH ROW EXECUTE FUNCTION public.dml_v_trig_fn();

-- Functions (SECURITY INVOKER: they run as whoever calls them).
CREATE FUNCTION public.dml_sql_delete() RETURNS void LANGUAGE sql
    AS 'DELETE FROM public.dml_audit';
CREATE FUNCTION public.dml_sql_update() RETURNS void LANGUAGE sql
    AS $$UPDATE public.dml_audit SET note = 'tampered'$$;
CREATE FUNCTION public.dml_sql_atomic_delete() RETURNS void LANGUAGE sql
BEGIN ATOMIC
    DELETE FROM public.dml_audit;
END;
CREATE FUNCTION public.dml_plpgsql_delete() RETURNS void LANGUAGE plpgsql
    AS $$BEGIN DELETE FROM public.dml_audit; END$$;
CREATE FUNCTION public.dml_plpgsql_update() RETURNS void LANGUAGE plpgsql
    AS $$BEGIN UPDATE public.dml_audit SET note = 'tampered'; END$$;
CREATE FUNCTION public.dml_plpgsql_dynamic(cmd text) RETURNS void LANGUAGE plpgsql
    AS $$BEGIN EXECUTE cmd; END$$;

-- Foreign keys FROM a protected table: a cascade from the parent would
-- change audit rows, so the parent change itself has to be refused.
CREATE TABLE public.dml_parent_c (id int PRIMARY KEY);   -- ON DELETE CASCADE
CREATE TABLE public.dml_parent_n (id int PRIMARY KEY);   -- ON DELETE SET NULL
CREATE TABLE public.dml_parent_u (id int PRIMARY KEY);   -- ON UPDATE CASCADE
INSERT INTO public.dml_parent_c VALUES (1), (2);
INSERT INTO public.dml_parent_n VALUES (1), (2);
INSERT INTO public.dml_parent_u VALUES (1), (2);
CREATE TABLE public.dml_fk_audit (
    id   int PRIMARY KEY,
    c_id int REFERENCES public.dml_parent_c ON DELETE CASCADE,
    n_id int REFERENCES public.dml_parent_n ON DELETE SET NULL,
    u_id int REFERENCES public.dml_parent_u ON UPDATE CASCADE
);
INSERT INTO public.dml_fk_audit VALUES (1, 1, 1, 1), (2, 2, 2, 2);
ALTER TABLE public.dml_fk_audit OWNER TO regress_ha_dml_owner;
GRANT ALL ON public.dml_fk_audit TO regress_ha_dml_app;
SELECT hipaa_audit.protect('public.dml_fk_audit');

-- A foreign key TO a protected table is fine: its checks only read.
CREATE TABLE public.dml_child (id int PRIMARY KEY, audit_id int REFERENCES public.dml_audit);

GRANT ALL ON public.dml_other, public.dml_trap, public.dml_v, public.dml_v_sb,
             public.dml_v_trig, public.dml_parent_c, public.dml_parent_n,
             public.dml_parent_u, public.dml_child
    TO regress_ha_dml_owner, regress_ha_dml_app;

-- An open cursor on audit row 1, for WHERE CURRENT OF.  The refused
-- statements abort only the subtransaction inside throws_ok, so the cursor
-- stays usable for every role below.
DECLARE dml_cur CURSOR FOR SELECT id FROM public.dml_audit WHERE id = 1 FOR UPDATE;
FETCH dml_cur \gset dml_cur_

SELECT ok(hipaa_audit.is_protected('public.dml_audit'), 'dml_audit is protected');
SELECT ok(hipaa_audit.is_protected('public.dml_fk_audit'), 'dml_fk_audit is protected');

-- ------------------------------------------------------------------
-- The refusals, run once per role (superuser, owner, application role).
-- 49 tests per call.
-- ------------------------------------------------------------------
CREATE FUNCTION pg_temp.dml_refusals() RETURNS SETOF text LANGUAGE plpgsql AS $fn$
DECLARE
    pfx      text := current_user || ': ';
    m_update text := 'cannot UPDATE protected table public.dml_audit';
    m_delete text := 'cannot DELETE FROM protected table public.dml_audit';
    m_merge  text := 'cannot MERGE INTO protected table public.dml_audit';
    m_upsert text := 'cannot INSERT ... ON CONFLICT DO UPDATE into protected table public.dml_audit';
    rows     text := 'SELECT id, who, note FROM public.dml_audit ORDER BY id';
    expected text := $$VALUES (1, 'alice', 'login'), (2, 'bob', 'read chart 17'), (3, 'carol', 'logout')$$;
BEGIN
    -- Plain statements.  The zero-row ones never reach a row trigger: only
    -- the executor check can refuse them.
    RETURN NEXT throws_ok($$UPDATE public.dml_audit SET note = 'tampered'$$,
        '42501', m_update, pfx || 'UPDATE is refused');
    RETURN NEXT throws_ok($$UPDATE public.dml_audit SET note = 'tampered' WHERE id = -1$$,
        '42501', m_update, pfx || 'UPDATE matching zero rows is refused');
    RETURN NEXT throws_ok($$DELETE FROM public.dml_audit$$,
        '42501', m_delete, pfx || 'DELETE is refused');
    RETURN NEXT throws_ok($$DELETE FROM public.dml_audit WHERE id = 2$$,
        '42501', m_delete, pfx || 'DELETE with WHERE is refused');
    RETURN NEXT throws_ok($$DELETE FROM public.dml_audit WHERE id = -1$$,
        '42501', m_delete, pfx || 'DELETE matching zero rows is refused');
    RETURN NEXT throws_ok($$MERGE INTO public.dml_audit a USING (VALUES (1)) s(id) ON a.id = s.id
                            WHEN MATCHED THEN UPDATE SET note = 'tampered'$$,
        '42501', m_merge, pfx || 'MERGE ... WHEN MATCHED THEN UPDATE is refused');
    RETURN NEXT throws_ok($$MERGE INTO public.dml_audit a USING (VALUES (1)) s(id) ON a.id = s.id
                            WHEN MATCHED THEN DELETE$$,
        '42501', m_merge, pfx || 'MERGE ... WHEN MATCHED THEN DELETE is refused');
    RETURN NEXT throws_ok($$INSERT INTO public.dml_audit VALUES (1, 'mallory', 'tampered')
                            ON CONFLICT (id) DO UPDATE SET who = EXCLUDED.who, note = EXCLUDED.note$$,
        '42501', m_upsert, pfx || 'INSERT ... ON CONFLICT DO UPDATE is refused');
    -- Refused even when no row conflicts: the statement could overwrite.
    RETURN NEXT throws_ok($$INSERT INTO public.dml_audit VALUES (100, 'mallory', 'new')
                            ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note$$,
        '42501', m_upsert, pfx || 'INSERT ... ON CONFLICT DO UPDATE without a conflict is refused');
    RETURN NEXT results_eq(rows, expected, pfx || 'rows unchanged after plain UPDATE/DELETE/MERGE/upsert');

    -- Data-modifying CTEs: the write is not the top-level statement.
    RETURN NEXT throws_ok($$WITH d AS (DELETE FROM public.dml_audit RETURNING *)
                            INSERT INTO public.dml_other SELECT id, who, note FROM d$$,
        '42501', m_delete, pfx || 'WITH d AS (DELETE ...) INSERT ... is refused');
    RETURN NEXT throws_ok($$WITH u AS (UPDATE public.dml_audit SET note = 'tampered' RETURNING id)
                            SELECT count(*) FROM u$$,
        '42501', m_update, pfx || 'WITH u AS (UPDATE ...) SELECT is refused');
    -- Runs even though nothing reads it.
    RETURN NEXT throws_ok($$WITH d AS (DELETE FROM public.dml_audit WHERE id = 1) SELECT 1$$,
        '42501', m_delete, pfx || 'unreferenced WITH d AS (DELETE ...) is refused');
    RETURN NEXT results_eq(rows, expected, pfx || 'rows unchanged after data-modifying CTEs');
    RETURN NEXT is((SELECT count(*) FROM public.dml_other), 0::bigint,
        pfx || 'no audit row was moved to another table');

    -- Functions: SQL (string body and BEGIN ATOMIC), PL/pgSQL, dynamic SQL.
    RETURN NEXT throws_ok('SELECT public.dml_sql_delete()',
        '42501', m_delete, pfx || 'DELETE in a SQL function is refused');
    RETURN NEXT throws_ok('SELECT public.dml_sql_update()',
        '42501', m_update, pfx || 'UPDATE in a SQL function is refused');
    RETURN NEXT throws_ok('SELECT public.dml_sql_atomic_delete()',
        '42501', m_delete, pfx || 'DELETE in a BEGIN ATOMIC SQL function is refused');
    RETURN NEXT throws_ok('SELECT public.dml_plpgsql_delete()',
        '42501', m_delete, pfx || 'DELETE in a PL/pgSQL function is refused');
    RETURN NEXT throws_ok('SELECT public.dml_plpgsql_update()',
        '42501', m_update, pfx || 'UPDATE in a PL/pgSQL function is refused');
    RETURN NEXT throws_ok($$SELECT public.dml_plpgsql_dynamic('DELETE FROM public.dml_audit')$$,
        '42501', m_delete, pfx || 'DELETE by PL/pgSQL EXECUTE is refused');
    RETURN NEXT throws_ok($$SELECT public.dml_plpgsql_dynamic('UPDATE public.dml_audit SET note = ''tampered''')$$,
        '42501', m_update, pfx || 'UPDATE by PL/pgSQL EXECUTE is refused');
    RETURN NEXT results_eq(rows, expected, pfx || 'rows unchanged after functions');

    -- Views, INSTEAD OF triggers and rules on other relations.
    RETURN NEXT throws_ok($$UPDATE public.dml_v SET note = 'tampered'$$,
        '42501', m_update, pfx || 'UPDATE through an auto-updatable view is refused');
    RETURN NEXT throws_ok($$DELETE FROM public.dml_v WHERE id = 1$$,
        '42501', m_delete, pfx || 'DELETE through an auto-updatable view is refused');
    RETURN NEXT throws_ok($$UPDATE public.dml_v_sb SET note = 'tampered'$$,
        '42501', m_update, pfx || 'UPDATE through a security_barrier view is refused');
    RETURN NEXT throws_ok($$DELETE FROM public.dml_v_sb WHERE id = 1$$,
        '42501', m_delete, pfx || 'DELETE through a security_barrier view is refused');
    RETURN NEXT throws_ok($$DELETE FROM public.dml_v_trig WHERE id = 1$$,
        '42501', m_delete, pfx || 'DELETE by an INSTEAD OF DELETE trigger is refused');
    -- An INSERT that is really a DELETE.
    RETURN NEXT throws_ok($$INSERT INTO public.dml_v_trig VALUES (2, 'x', 'x')$$,
        '42501', m_delete, pfx || 'DELETE by an INSTEAD OF INSERT trigger is refused');
    RETURN NEXT throws_ok($$INSERT INTO public.dml_trap VALUES (1)$$,
        '42501', m_delete, pfx || 'DELETE by a DO ALSO rule on another table is refused');
    RETURN NEXT results_eq(rows, expected, pfx || 'rows unchanged after views, triggers and rules');
    RETURN NEXT is((SELECT count(*) FROM public.dml_trap), 0::bigint,
        pfx || 'the statement that fired the rule was undone as a whole');

    -- WHERE CURRENT OF the cursor declared at top level.
    RETURN NEXT throws_ok($$UPDATE public.dml_audit SET note = 'tampered' WHERE CURRENT OF dml_cur$$,
        '42501', m_update, pfx || 'UPDATE ... WHERE CURRENT OF is refused');
    RETURN NEXT throws_ok($$DELETE FROM public.dml_audit WHERE CURRENT OF dml_cur$$,
        '42501', m_delete, pfx || 'DELETE ... WHERE CURRENT OF is refused');

    -- Prepared statements (EXECUTE checks at run time, also for a
    -- statement prepared before the table was protected).
    RETURN NEXT throws_ok('EXECUTE dml_p_delete(1)',
        '42501', m_delete, pfx || 'EXECUTE of a prepared DELETE is refused');
    RETURN NEXT throws_ok('EXECUTE dml_p_update(1)',
        '42501', m_update, pfx || 'EXECUTE of a prepared UPDATE is refused');
    RETURN NEXT throws_ok('EXECUTE dml_p_early(2)',
        '42501', m_delete, pfx || 'EXECUTE of a DELETE prepared before protect() is refused');
    RETURN NEXT results_eq(rows, expected, pfx || 'rows unchanged after cursor and prepared statements');

    -- Foreign-key actions from the parent reach the protected table.
    RETURN NEXT throws_ok($$DELETE FROM public.dml_parent_c WHERE id = 1$$,
        '42501', 'cannot DELETE FROM protected table public.dml_fk_audit',
        pfx || 'parent DELETE with ON DELETE CASCADE is refused');
    RETURN NEXT throws_ok($$DELETE FROM public.dml_parent_n WHERE id = 1$$,
        '42501', 'cannot UPDATE protected table public.dml_fk_audit',
        pfx || 'parent DELETE with ON DELETE SET NULL is refused');
    RETURN NEXT throws_ok($$UPDATE public.dml_parent_u SET id = 10 WHERE id = 1$$,
        '42501', 'cannot UPDATE protected table public.dml_fk_audit',
        pfx || 'parent UPDATE with ON UPDATE CASCADE is refused');
    RETURN NEXT results_eq('SELECT id, c_id, n_id, u_id FROM public.dml_fk_audit ORDER BY id',
        $$VALUES (1, 1, 1, 1), (2, 2, 2, 2)$$,
        pfx || 'audit rows with foreign keys unchanged');
    RETURN NEXT results_eq(
        $$SELECT 'c', id FROM public.dml_parent_c UNION ALL
          SELECT 'n', id FROM public.dml_parent_n UNION ALL
          SELECT 'u', id FROM public.dml_parent_u ORDER BY 1, 2$$,
        $$VALUES ('c', 1), ('c', 2), ('n', 1), ('n', 2), ('u', 1), ('u', 2)$$,
        pfx || 'parent rows unchanged too');

    -- A child table referencing the protected table works normally.
    RETURN NEXT lives_ok('INSERT INTO public.dml_child VALUES (1, 1)',
        pfx || 'INSERT into a table referencing the protected one works');
    RETURN NEXT lives_ok('UPDATE public.dml_child SET audit_id = 2 WHERE id = 1',
        pfx || 'UPDATE of a table referencing the protected one works');
    RETURN NEXT lives_ok('DELETE FROM public.dml_child WHERE id = 1',
        pfx || 'DELETE from a table referencing the protected one works');

    RETURN NEXT results_eq(rows, expected, pfx || 'rows unchanged at the end of the battery');
    RETURN NEXT is((SELECT count(*) FROM public.dml_audit), 3::bigint,
        pfx || 'still three audit rows');
    RETURN NEXT is((SELECT md5(string_agg(concat_ws('|', id, who, note), ',' ORDER BY id))
                      FROM public.dml_audit),
                   md5('1|alice|login,2|bob|read chart 17,3|carol|logout'),
        pfx || 'content digest unchanged');
END
$fn$;

-- Superuser.
SELECT * FROM pg_temp.dml_refusals();

-- The table's owner.
SET ROLE regress_ha_dml_owner;
SELECT * FROM pg_temp.dml_refusals();
RESET ROLE;

-- An application role with every privilege on the table.
SET ROLE regress_ha_dml_app;
SELECT * FROM pg_temp.dml_refusals();
RESET ROLE;

CLOSE dml_cur;

-- ------------------------------------------------------------------
-- session_replication_role = replica switches ordinary triggers off; the
-- guard triggers are ENABLE ALWAYS and the executor check does not depend
-- on triggers.  (Only a superuser may set it.)
-- ------------------------------------------------------------------
SET LOCAL session_replication_role = replica;

SELECT throws_ok($$UPDATE public.dml_audit SET note = 'tampered'$$,
    '42501', 'cannot UPDATE protected table public.dml_audit',
    'replica: UPDATE is refused');
SELECT throws_ok($$UPDATE public.dml_audit SET note = 'tampered' WHERE id = -1$$,
    '42501', 'cannot UPDATE protected table public.dml_audit',
    'replica: UPDATE matching zero rows is refused');
SELECT throws_ok($$DELETE FROM public.dml_audit WHERE id = 2$$,
    '42501', 'cannot DELETE FROM protected table public.dml_audit',
    'replica: DELETE is refused');
SELECT throws_ok($$MERGE INTO public.dml_audit a USING (VALUES (1)) s(id) ON a.id = s.id
                   WHEN MATCHED THEN UPDATE SET note = 'tampered'$$,
    '42501', 'cannot MERGE INTO protected table public.dml_audit',
    'replica: MERGE ... UPDATE is refused');
SELECT throws_ok($$MERGE INTO public.dml_audit a USING (VALUES (1)) s(id) ON a.id = s.id
                   WHEN MATCHED THEN DELETE$$,
    '42501', 'cannot MERGE INTO protected table public.dml_audit',
    'replica: MERGE ... DELETE is refused');
SELECT throws_ok($$INSERT INTO public.dml_audit VALUES (1, 'mallory', 'tampered')
                   ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note$$,
    '42501', 'cannot INSERT ... ON CONFLICT DO UPDATE into protected table public.dml_audit',
    'replica: INSERT ... ON CONFLICT DO UPDATE is refused');
SELECT results_eq('SELECT id, who, note FROM public.dml_audit ORDER BY id',
    $$VALUES (1, 'alice', 'login'), (2, 'bob', 'read chart 17'), (3, 'carol', 'logout')$$,
    'replica: rows unchanged');

RESET session_replication_role;

-- ------------------------------------------------------------------
-- What stays allowed: adding rows, and reading them (with row locks).
-- ------------------------------------------------------------------
SET ROLE regress_ha_dml_app;

SELECT lives_ok($$INSERT INTO public.dml_audit VALUES (10, 'dave', 'login')$$,
    'INSERT of one row works');
SELECT lives_ok($$INSERT INTO public.dml_audit VALUES (11, 'erin', 'login'), (12, 'erin', 'logout')$$,
    'multi-row INSERT works');
SELECT lives_ok($$INSERT INTO public.dml_audit (id, who, note)
                  SELECT id + 20, who, 'copy of ' || note FROM public.dml_audit WHERE id <= 3$$,
    'INSERT ... SELECT works');
SELECT lives_ok($$INSERT INTO public.dml_audit VALUES (1, 'mallory', 'tampered') ON CONFLICT DO NOTHING$$,
    'INSERT ... ON CONFLICT DO NOTHING on an existing key works (and changes nothing)');
SELECT lives_ok($$INSERT INTO public.dml_audit VALUES (13, 'frank', 'login') ON CONFLICT (id) DO NOTHING$$,
    'INSERT ... ON CONFLICT DO NOTHING of a new row works');
SELECT lives_ok('SELECT * FROM public.dml_audit FOR UPDATE', 'SELECT ... FOR UPDATE works');
SELECT lives_ok('SELECT * FROM public.dml_audit FOR NO KEY UPDATE', 'SELECT ... FOR NO KEY UPDATE works');
SELECT lives_ok('SELECT * FROM public.dml_audit FOR SHARE', 'SELECT ... FOR SHARE works');
SELECT lives_ok('SELECT * FROM public.dml_audit FOR KEY SHARE', 'SELECT ... FOR KEY SHARE works');

RESET ROLE;

-- EXPLAIN plans without running; EXPLAIN ANALYZE runs the statement.
SELECT lives_ok('EXPLAIN DELETE FROM public.dml_audit', 'EXPLAIN of a DELETE works');
SELECT lives_ok($$EXPLAIN UPDATE public.dml_audit SET note = 'tampered'$$, 'EXPLAIN of an UPDATE works');
SELECT throws_ok('EXPLAIN (ANALYZE) DELETE FROM public.dml_audit',
    '42501', 'cannot DELETE FROM protected table public.dml_audit',
    'EXPLAIN ANALYZE of a DELETE is refused');

SELECT results_eq('SELECT id, who, note FROM public.dml_audit ORDER BY id',
    $$VALUES (1, 'alice', 'login'), (2, 'bob', 'read chart 17'), (3, 'carol', 'logout'),
             (10, 'dave', 'login'), (11, 'erin', 'login'), (12, 'erin', 'logout'),
             (13, 'frank', 'login'),
             (21, 'alice', 'copy of login'), (22, 'bob', 'copy of read chart 17'),
             (23, 'carol', 'copy of logout')$$,
    'old rows unchanged, new rows added');

-- ------------------------------------------------------------------
-- Only hipaa_audit's own scripts get past the hooks.  An event trigger that
-- fires inside CREATE EXTENSION of another extension must not be able to
-- switch the guard triggers off and then delete every audit row.
-- ------------------------------------------------------------------
SELECT coalesce(md5(string_agg(concat_ws('|', id, who, note), ',' ORDER BY id)), 'empty') AS dml_final_md5
  FROM public.dml_audit \gset

CREATE FUNCTION public.dml_evil() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    ALTER TABLE public.dml_audit DISABLE TRIGGER ALL;
    DELETE FROM public.dml_audit;
END
$$;
CREATE EVENT TRIGGER dml_evil ON ddl_command_end WHEN TAG IN ('CREATE FUNCTION')
    EXECUTE FUNCTION public.dml_evil();

SELECT throws_ok('CREATE EXTENSION tsm_system_rows',
    '42501', 'cannot DISABLE TRIGGER ALL on protected table public.dml_audit',
    'an event trigger inside another extension''s CREATE EXTENSION cannot disable the guards');
SELECT is((SELECT coalesce(md5(string_agg(concat_ws('|', id, who, note), ',' ORDER BY id)), 'empty')
             FROM public.dml_audit),
    :'dml_final_md5',
    'an event trigger inside another extension''s CREATE EXTENSION cannot delete audit rows');

-- After every refusal above, and the inserts (ON CONFLICT DO NOTHING with a
-- skipped row included), both hash chains are intact and without holes.
SELECT results_eq(
    $$SELECT ok, rows_checked, problems, first_problem FROM hipaa_audit.verify('public.dml_audit')$$,
    $$VALUES (true, 10::bigint, 0::bigint, NULL::text)$$,
    'dml_audit: the chain verifies after all refusals and inserts');
SELECT results_eq(
    $$SELECT ok, rows_checked, problems, first_problem FROM hipaa_audit.verify('public.dml_fk_audit')$$,
    $$VALUES (true, 2::bigint, 0::bigint, NULL::text)$$,
    'dml_fk_audit: the chain verifies after the refused foreign-key actions');

SELECT * FROM finish();
ROLLBACK;
