-- Attacks of the second security round (issue 11) that one session can
-- replay.  Each fails without its fix; each shows what was kept.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE regress_sec_owner LOGIN;
CREATE ROLE regress_sec_admin LOGIN IN ROLE hipaa_audit_admin;
CREATE SCHEMA regress_sec AUTHORIZATION regress_sec_owner;
RESET client_min_messages;

-- 1. protect() moves a table's existing rows into the chain.  The owner's
-- code that runs while it does (an ENABLE ALWAYS trigger, a CHECK, an
-- index expression) runs as the owner, in a security-restricted
-- operation: it cannot make the owner a superuser, and it gets no pass
-- to change another protected table.
SET ROLE regress_sec_owner;
CREATE TABLE regress_sec.victim (id int, note text);
INSERT INTO regress_sec.victim VALUES (1, 'kept');
SELECT hipaa_audit.protect('regress_sec.victim');
CREATE TABLE regress_sec.moved (id int, note text, who text, escalated text, deleted text);
INSERT INTO regress_sec.moved (id, note) VALUES (1, 'a'), (2, 'b');
CREATE FUNCTION regress_sec.grab() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.who := current_user;
    BEGIN
        EXECUTE 'ALTER ROLE regress_sec_owner SUPERUSER';
        NEW.escalated := 'became superuser';
    EXCEPTION WHEN OTHERS THEN
        NEW.escalated := SQLSTATE;
    END;
    BEGIN
        DELETE FROM regress_sec.victim;
        NEW.deleted := 'deleted';
    EXCEPTION WHEN OTHERS THEN
        NEW.deleted := SQLSTATE || ' ' || SQLERRM;
    END;
    RETURN NEW;
END $$;
CREATE TRIGGER a_grab BEFORE INSERT ON regress_sec.moved
    FOR EACH ROW EXECUTE FUNCTION regress_sec.grab();
ALTER TABLE regress_sec.moved ENABLE ALWAYS TRIGGER a_grab;
-- A CHECK that would do the same, and an index expression that tells.
CREATE FUNCTION regress_sec.check_grab(int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE regress_sec_owner SUPERUSER';
    END IF;
    RETURN true;
END $$;
ALTER TABLE regress_sec.moved ADD CHECK (regress_sec.check_grab(id));
CREATE FUNCTION regress_sec.index_grab(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'index expression ran as superuser %', current_user;
    END IF;
    RETURN $1;
END $$;
CREATE INDEX ON regress_sec.moved (regress_sec.index_grab(id));
SELECT hipaa_audit.protect('regress_sec.moved');
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sec_owner';
SELECT id, note, who, escalated, deleted FROM regress_sec.moved ORDER BY id;
SELECT id, note FROM regress_sec.victim;
SELECT ok, rows_checked FROM hipaa_audit.verify('regress_sec.moved');

-- 2. An event trigger that fires while protect() runs its own DDL gets no
-- pass either: its DELETE of a protected table and of the extension's own
-- tables is refused.
CREATE TABLE regress_sec.evt_seen (what text);
CREATE FUNCTION regress_sec.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        DELETE FROM regress_sec.victim;
        INSERT INTO regress_sec.evt_seen VALUES ('victim rows deleted');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO regress_sec.evt_seen VALUES ('victim: ' || SQLSTATE);
    END;
    BEGIN
        DELETE FROM hipaa_audit.registry;
        INSERT INTO regress_sec.evt_seen VALUES ('registry rows deleted');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO regress_sec.evt_seen VALUES ('registry: ' || SQLSTATE);
    END;
END $$;
CREATE EVENT TRIGGER regress_sec_evt ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION regress_sec.on_ddl();
CREATE TABLE regress_sec.later (id int);
SELECT hipaa_audit.protect('regress_sec.later');
DROP EVENT TRIGGER regress_sec_evt;
SELECT what, count(*) FROM regress_sec.evt_seen GROUP BY what ORDER BY what;
SELECT id, note FROM regress_sec.victim;
SELECT count(*) AS protected FROM hipaa_audit.registry WHERE relid::text LIKE 'regress_sec.%';

-- 3. set_retention() reads the current retention without SQL run with the
-- caller's search_path: an "=" operator of the caller's own cannot make it
-- read another table's registry row, "raise" six years to two
-- microseconds and so open every row to purge_expired().
CREATE TABLE regress_sec.short_lived (id int);
SELECT hipaa_audit.protect('regress_sec.short_lived', retention => '1 microsecond');
CREATE TABLE regress_sec.six_years (id int);
SELECT hipaa_audit.protect('regress_sec.six_years');
CREATE SCHEMA regress_sec_evil AUTHORIZATION regress_sec_admin;
GRANT USAGE ON SCHEMA regress_sec TO regress_sec_admin;
SET ROLE regress_sec_admin;
-- "Equal" for the short-lived table's registry row, whatever is asked.
CREATE FUNCTION regress_sec_evil.eq(regclass, regclass) RETURNS boolean
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog
    AS $$SELECT $1::oid OPERATOR(pg_catalog.=) 'regress_sec.short_lived'::regclass::oid$$;
CREATE OPERATOR regress_sec_evil.= (LEFTARG = regclass, RIGHTARG = regclass,
    FUNCTION = regress_sec_evil.eq);
SET search_path = regress_sec_evil, pg_catalog, public;
SELECT hipaa_audit.set_retention('regress_sec.six_years', '2 microseconds');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.set_retention('regress_sec.six_years', '7 years');
RESET search_path;
RESET ROLE;
SELECT relid, retention FROM hipaa_audit.registry
 WHERE relid IN ('regress_sec.six_years'::regclass, 'regress_sec.short_lived'::regclass)
 ORDER BY relid::text;

-- 4. ALTER TYPE / DOMAIN RENAME, OWNER TO and SET SCHEMA of a type that
-- does not exist: a clean error for any role, not a crashed backend.
SET ROLE regress_sec_owner;
ALTER TYPE regress_sec_no_such_type RENAME TO x;
\echo :LAST_ERROR_SQLSTATE
ALTER DOMAIN regress_sec_no_such_domain RENAME TO x;
ALTER TYPE regress_sec_no_such_type OWNER TO regress_sec_owner;
ALTER DOMAIN regress_sec_no_such_domain SET SCHEMA public;
ALTER TYPE hipaa_audit.no_such_type RENAME TO x;
ALTER DOMAIN regress_sec_no_such_domain RENAME CONSTRAINT a TO b;
ALTER DOMAIN hipaa_audit.no_such_domain RENAME CONSTRAINT a TO b;
SELECT 'still connected' AS status;
RESET ROLE;

-- 5. The database's protection mark cannot be removed by another spelling
-- of its name or of the statement, nor the library taken out of the
-- preload list by a differently spelled setting name.
ALTER ROLE ALL IN DATABASE contrib_regression RESET ALL;
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE ALL IN DATABASE contrib_regression RESET "HIPAA_AUDIT.database_protected";
ALTER ROLE ALL IN DATABASE contrib_regression SET "Hipaa_Audit.Database_Protected" = off;
ALTER DATABASE contrib_regression SET "HIPAA_AUDIT.DATABASE_PROTECTED" = off;
ALTER SYSTEM SET "Shared_Preload_Libraries" = '';
SELECT count(*) AS marked FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
 WHERE d.datname = 'contrib_regression' AND s.setrole = 0
   AND 'hipaa_audit.database_protected=on' = ANY (s.setconfig);

-- 6. Paths that change a protected table without naming it, caught by the
-- object-level backstop.  Typed tables: ALTER TABLE ... OF a composite type
-- that matches every column (chain columns included) would let ALTER TYPE
-- ... CASCADE rewrite the table's columns; protect() refuses typed tables.
CREATE TABLE regress_sec.typed_target (id int, note text);
SELECT hipaa_audit.protect('regress_sec.typed_target');
INSERT INTO regress_sec.typed_target VALUES (1, 'kept');
CREATE TYPE regress_sec.same_shape AS (id int, note text, audit_chain int4,
    audit_seq int8, audit_at timestamptz, audit_session_role text,
    audit_role text, audit_client inet, audit_prev_hash bytea, audit_hash bytea);
ALTER TABLE regress_sec.typed_target OF regress_sec.same_shape;
\echo :LAST_ERROR_SQLSTATE
SELECT reloftype = 0 AS not_typed FROM pg_class WHERE oid = 'regress_sec.typed_target'::regclass;
CREATE TYPE regress_sec.row_of AS (id int, note text);
CREATE TABLE regress_sec.typed OF regress_sec.row_of;
SELECT hipaa_audit.protect('regress_sec.typed');
\echo :LAST_ERROR_SQLSTATE

-- A composite type a protected column uses: its attributes stay.
CREATE TYPE regress_sec.point2 AS (x int, y int);
CREATE TABLE regress_sec.with_comp (id int, p regress_sec.point2);
SELECT hipaa_audit.protect('regress_sec.with_comp');
INSERT INTO regress_sec.with_comp VALUES (1, ROW(1, 2));
ALTER TYPE regress_sec.point2 RENAME ATTRIBUTE x TO x2 CASCADE;
ALTER TYPE regress_sec.point2 ADD ATTRIBUTE z int CASCADE;
ALTER TYPE regress_sec.point2 DROP ATTRIBUTE y CASCADE;
SELECT p FROM regress_sec.with_comp;

-- A built-in type's send function, which the hash reads values through.
CREATE TABLE regress_sec.amounts (id int, amount numeric);
SELECT hipaa_audit.protect('regress_sec.amounts');
INSERT INTO regress_sec.amounts VALUES (1, 12.50);
CREATE FUNCTION regress_sec.fake_send(numeric) RETURNS bytea
    LANGUAGE internal IMMUTABLE STRICT AS 'numeric_send';
ALTER TYPE numeric SET (SEND = regress_sec.fake_send);
\echo :LAST_ERROR_SQLSTATE
SELECT typsend = 'numeric_send'::regproc AS send_kept FROM pg_type WHERE oid = 'numeric'::regtype;
SELECT ok, rows_checked FROM hipaa_audit.verify('regress_sec.amounts');

-- 7. The retention floor: a table owner who is not a superuser cannot give
-- a table a retention shorter than hipaa_audit.min_retention (a superuser
-- setting, default six years), and so cannot DROP it soon after.
SHOW hipaa_audit.min_retention;
SET ROLE regress_sec_owner;
CREATE TABLE regress_sec.brief (id int);
SELECT hipaa_audit.protect('regress_sec.brief', retention => '1 microsecond');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.protect('regress_sec.brief', retention => '2190 days');
SELECT hipaa_audit.is_protected('regress_sec.brief');
SET hipaa_audit.min_retention = '1 day';
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.protect('regress_sec.brief', retention => '6 years');
RESET ROLE;
SET hipaa_audit.min_retention = 'soon';
\echo :LAST_ERROR_SQLSTATE
SET hipaa_audit.min_retention = '-1 year';
SET hipaa_audit.min_retention = '0';
SET hipaa_audit.min_retention = '10 years';
SET ROLE regress_sec_owner;
CREATE TABLE regress_sec.seven (id int);
SELECT hipaa_audit.protect('regress_sec.seven', retention => '7 years');
RESET ROLE;
SELECT hipaa_audit.protect('regress_sec.seven', retention => '7 years');
RESET hipaa_audit.min_retention;
SELECT relid, retention FROM hipaa_audit.registry
 WHERE relid::text IN ('regress_sec.brief', 'regress_sec.seven') ORDER BY 1;

-- 8. More members of the same classes.  A library name is a file name: a
-- differently cased one would not load hipaa_audit.
ALTER SYSTEM SET shared_preload_libraries = 'HIPAA_AUDIT';
ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements, Hipaa_Audit';
-- The schema of a protected table keeps its name, as the table does.
ALTER SCHEMA regress_sec RENAME TO regress_sec_renamed;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS still_there FROM pg_namespace WHERE nspname = 'regress_sec';
-- Only a full, ascending, plain-integer unique btree index is a chain
-- index: one that orders differently is never walked or trusted.
CREATE TABLE regress_sec.indexed (id int);
SELECT hipaa_audit.protect('regress_sec.indexed', chains => 1);
DROP INDEX regress_sec.indexed_audit_chain_audit_seq_idx;
CREATE UNIQUE INDEX indexed_desc ON regress_sec.indexed (audit_chain DESC, audit_seq DESC);
INSERT INTO regress_sec.indexed VALUES (1);
\echo :LAST_ERROR_SQLSTATE
-- One condition, one SQLSTATE, wherever the chain index is needed.
SELECT rows_removed FROM hipaa_audit.purge_expired('regress_sec.indexed', dry_run => true);
\echo :LAST_ERROR_SQLSTATE
CREATE UNIQUE INDEX indexed_partial ON regress_sec.indexed (audit_chain, audit_seq) WHERE audit_seq < 3;
INSERT INTO regress_sec.indexed VALUES (1);
CREATE UNIQUE INDEX indexed_ok ON regress_sec.indexed (audit_chain, audit_seq);
INSERT INTO regress_sec.indexed VALUES (1), (2), (3);
SELECT ok, rows_checked FROM hipaa_audit.verify('regress_sec.indexed');

-- 9. A stored generated column is not hashed: protect() refuses one that
-- calls a function that can be replaced (sql/14_encoding_pinned), and for
-- a table protected before that rule, replacing the function is refused
-- (test/t/025_extension_script_pass.pl, on a restored table).
CREATE FUNCTION regress_sec.twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE TABLE regress_sec.derived (id int, twice int GENERATED ALWAYS AS (regress_sec.twice(id)) STORED);
SELECT hipaa_audit.protect('regress_sec.derived');
\echo :LAST_ERROR_SQLSTATE

-- 10. Found by the second round against these fixes.  An object marked as
-- depending on an extension is dropped with it: never a protected table's
-- guard or chain trigger, or its chain index.
CREATE TABLE regress_sec.deps (id int);
SELECT hipaa_audit.protect('regress_sec.deps');
ALTER TRIGGER hipaa_audit_guard_row ON regress_sec.deps DEPENDS ON EXTENSION plpgsql;
\echo :LAST_ERROR_SQLSTATE
ALTER INDEX regress_sec.deps_audit_chain_audit_seq_idx DEPENDS ON EXTENSION plpgsql;
SELECT count(*) AS extension_dependencies FROM pg_depend
 WHERE deptype = 'x' AND objid IN (SELECT oid FROM pg_trigger WHERE tgrelid = 'regress_sec.deps'::regclass);
-- COPY FROM writes no plan the executor hook sees; into the extension's
-- own tables only pg_restore may write, while they are still empty.
COPY hipaa_audit.registry FROM PROGRAM 'echo regress_sec.deps	00000000-0000-0000-0000-000000000001	@ 1 sec	1	2026-01-01	x	f	f';
\echo :LAST_ERROR_SQLSTATE
-- (A release of a hold of this file's own, so the table is not empty.)
SELECT hipaa_audit.place_hold('regress_sec.deps', 'security test') AS sec_hold \gset
SELECT hipaa_audit.release_hold(:sec_hold, 'security test done');
\set forged 'echo ' :sec_hold '	2026-01-01	x	forged'
COPY hipaa_audit.hold_releases (hold_id, released_at, released_by, reason) FROM PROGRAM :'forged';
SELECT count(*) AS releases_of_the_hold FROM hipaa_audit.hold_releases WHERE hold_id = :sec_hold;
SELECT count(*) AS registry_rows_for_deps FROM hipaa_audit.registry WHERE relid = 'regress_sec.deps'::regclass;
-- Where the server looks for hipaa_audit itself.
ALTER SYSTEM SET dynamic_library_path = '/tmp';
\echo :LAST_ERROR_SQLSTATE
