-- Dropping protected tables: directly, by CASCADE, through DROP SCHEMA,
-- DROP OWNED and DROP TYPE, and by dropping the extension.  A protected table
-- that holds rows survives every one of them, with its rows, hash chain,
-- chain index, chain and guard triggers and registry row; an empty one may be
-- dropped (its registry row goes with it) or unprotected by a member of
-- hipaa_audit_admin (which also removes the chain trigger and columns).
BEGIN;
SELECT plan(73);

SET LOCAL client_min_messages = warning;

-- Fixtures ------------------------------------------------------------------
CREATE ROLE regress_ha_ddl_owner NOLOGIN;
CREATE ROLE regress_ha_ddl_nobody NOLOGIN;
CREATE ROLE regress_ha_ddl_admin NOLOGIN IN ROLE hipaa_audit_admin;
CREATE ROLE regress_ha_ddl_executor NOLOGIN;
GRANT EXECUTE ON FUNCTION hipaa_audit.unprotect(regclass) TO regress_ha_ddl_executor;

-- Types live in their own schema so that DROP SCHEMA ... CASCADE of the
-- table's schema and of the types' schema are separate cases.
CREATE SCHEMA regress_ha_types;
CREATE TYPE regress_ha_types.kind AS ENUM ('read', 'write');
CREATE DOMAIN regress_ha_types.code AS text CHECK (VALUE ~ '^[A-Z]+$');

CREATE SCHEMA regress_ha_drop;
CREATE TABLE regress_ha_drop.audit (
    id   int NOT NULL,
    kind regress_ha_types.kind,
    code regress_ha_types.code,
    note text
);
INSERT INTO regress_ha_drop.audit VALUES (1, 'read', 'AB', 'first'), (2, 'write', 'CD', 'second');
SELECT hipaa_audit.protect('regress_ha_drop.audit');
CREATE TABLE regress_ha_drop.plain (id int);

-- A protected table owned by another role, in a schema that role does not own.
CREATE SCHEMA regress_ha_owned;
CREATE TABLE regress_ha_owned.owned (id int NOT NULL, note text);
ALTER TABLE regress_ha_owned.owned OWNER TO regress_ha_ddl_owner;
INSERT INTO regress_ha_owned.owned VALUES (10, 'owned row');
-- The roles below need to resolve the tables' names, nothing more (the
-- owner needs it for protect(), which moves its rows as the owner).
GRANT USAGE ON SCHEMA regress_ha_drop, regress_ha_owned TO PUBLIC;
SELECT hipaa_audit.protect('regress_ha_owned.owned');

-- Everything a refused DROP must leave alone, per table, as one text value.
CREATE FUNCTION regress_ha_drop.state(tbl text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    rel   regclass := to_regclass(tbl);
    ucols text;
    rows  text;
    chain text;
BEGIN
    IF rel IS NULL THEN
        RETURN tbl || ' is gone';
    END IF;
    -- The user's columns, and separately the chain columns protect() added.
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO ucols
      FROM pg_attribute
     WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped
       AND attname NOT IN ('audit_chain', 'audit_seq', 'audit_at', 'audit_session_role',
                           'audit_role', 'audit_client', 'audit_prev_hash', 'audit_hash');
    EXECUTE format('SELECT string_agg(ROW(%s)::text, %L ORDER BY ROW(%s)::text) FROM %s t',
                   ucols, ',', ucols, rel) INTO rows;
    EXECUTE format($q$SELECT string_agg(concat_ws('/', audit_chain, audit_seq, audit_at,
                          audit_session_role, audit_role, audit_client,
                          encode(audit_prev_hash, 'hex'), encode(audit_hash, 'hex')),
                          ',' ORDER BY audit_chain, audit_seq) FROM %s$q$, rel) INTO chain;
    RETURN concat_ws(E'\n',
        'rel ' || rel::text,
        (SELECT 'cols ' || string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
           FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped),
        'rows ' || rows,
        'chain ' || chain,
        (SELECT 'indexes ' || string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY indexrelid::regclass::text)
           FROM pg_index WHERE indrelid = rel),
        (SELECT 'triggers ' || string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname)
           FROM pg_trigger WHERE tgrelid = rel),
        (SELECT 'registry ' || string_agg(format('%s:%s:%s:%s', relid, table_uuid, retention, chains), ',')
           FROM hipaa_audit.registry WHERE relid = rel),
        'protected ' || hipaa_audit.is_protected(rel));
END
$$;
CREATE TABLE regress_ha_drop.baseline AS
SELECT tbl, regress_ha_drop.state(tbl) AS fp
  FROM (VALUES ('regress_ha_drop.audit'), ('regress_ha_owned.owned')) v(tbl);
-- A refused statement's SQLSTATE and message, for cascades: which of the
-- protected table's objects PostgreSQL reaches first depends on dependency
-- order, so the tests accept a refusal at any of them (the table itself, one
-- of its three triggers, its chain index), but nothing else.
CREATE FUNCTION regress_ha_drop.refusal(cmd text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE cmd;
    RETURN 'not refused';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE FUNCTION regress_ha_drop.refused_at(tbl text) RETURNS text LANGUAGE sql AS $$
    SELECT format('^42501: cannot (DROP|drop trigger hipaa_audit_(chain|guard_row|guard_truncate) of|DROP INDEX %s_audit_chain_audit_seq_idx of) protected table %s$',
                  regexp_replace(tbl, '\.', '\.', 'g'), regexp_replace(tbl, '\.', '\.', 'g'))
$$;
CREATE FUNCTION regress_ha_drop.baseline(tbl text) RETURNS text LANGUAGE sql AS $$
    SELECT fp FROM regress_ha_drop.baseline WHERE baseline.tbl = $1
$$;

SELECT ok(regress_ha_drop.baseline('regress_ha_drop.audit') LIKE '%rows (1,read,AB,first),(2,write,CD,second)%'
          AND regress_ha_drop.baseline('regress_ha_drop.audit') LIKE '%hipaa_audit_chain:A,hipaa_audit_guard_row:A,hipaa_audit_guard_truncate:A%'
          AND regress_ha_drop.baseline('regress_ha_drop.audit') LIKE '%CREATE UNIQUE INDEX audit_audit_chain_audit_seq_idx ON regress_ha_drop.audit USING btree (audit_chain, audit_seq)%'
          AND regress_ha_drop.baseline('regress_ha_drop.audit') LIKE '%protected true',
    'fixture: regress_ha_drop.audit is protected, holds its rows, its chain index and its three triggers');
SELECT ok(regress_ha_drop.baseline('regress_ha_owned.owned') LIKE '%rows (10,"owned row")%protected true',
    'fixture: regress_ha_owned.owned is protected and holds its row');
SELECT results_eq(
    $$SELECT (hipaa_audit.verify('regress_ha_drop.audit')).ok, (hipaa_audit.verify('regress_ha_owned.owned')).ok,
             (SELECT count(*) FROM regress_ha_drop.audit), (SELECT count(*) FROM regress_ha_owned.owned)$$,
    $$VALUES (true, true, 2::bigint, 1::bigint)$$,
    'fixture: the rows that existed before protect() are chained and verify');

-- DROP TABLE -------------------------------------------------------------------
SELECT throws_ok('DROP TABLE regress_ha_drop.audit', '42501',
    'cannot DROP protected table regress_ha_drop.audit',
    'DROP TABLE of a protected table with rows is refused');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');

SELECT throws_ok('DROP TABLE regress_ha_drop.audit CASCADE', '42501',
    'cannot DROP protected table regress_ha_drop.audit',
    'DROP TABLE ... CASCADE is refused');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');

SELECT throws_ok('DROP TABLE IF EXISTS regress_ha_drop.plain, regress_ha_drop.audit', '42501',
    'cannot DROP protected table regress_ha_drop.audit',
    'DROP TABLE of a plain and a protected table together is refused');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');
SELECT has_table('regress_ha_drop', 'plain', '... and the plain table of the same statement is still there');

-- Cascaded drops (object_access hook) -------------------------------------------
-- The chain index and the triggers are dropped before their table, so a
-- cascade that reaches a protected table is refused at the first of them.
SELECT matches(regress_ha_drop.refusal('DROP SCHEMA regress_ha_drop CASCADE'),
    regress_ha_drop.refused_at('regress_ha_drop.audit'),
    'DROP SCHEMA ... CASCADE of the schema holding a protected table is refused');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');
SELECT has_table('regress_ha_drop', 'plain', '... and the rest of the schema is still there');

SELECT matches(regress_ha_drop.refusal('DROP OWNED BY regress_ha_ddl_owner'),
    regress_ha_drop.refused_at('regress_ha_owned.owned'),
    'DROP OWNED BY the role owning a protected table is refused');
SELECT is(regress_ha_drop.state('regress_ha_owned.owned'), regress_ha_drop.baseline('regress_ha_owned.owned'),
    '... table, rows, triggers and registry row intact');

SELECT matches(regress_ha_drop.refusal('DROP OWNED BY regress_ha_ddl_owner CASCADE'),
    regress_ha_drop.refused_at('regress_ha_owned.owned'),
    'DROP OWNED BY ... CASCADE is refused');
SELECT is(regress_ha_drop.state('regress_ha_owned.owned'), regress_ha_drop.baseline('regress_ha_owned.owned'),
    '... table, rows, triggers and registry row intact');

SELECT throws_ok('DROP TYPE regress_ha_types.kind CASCADE', '42501',
    'cannot drop column "kind" of protected table regress_ha_drop.audit',
    'DROP TYPE ... CASCADE of an enum a protected column uses (would drop the column) is refused');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');

SELECT throws_ok('DROP DOMAIN regress_ha_types.code CASCADE', '42501',
    'cannot drop column "code" of protected table regress_ha_drop.audit',
    'DROP DOMAIN ... CASCADE of a domain a protected column uses is refused');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');

SELECT throws_ok('DROP SCHEMA regress_ha_types CASCADE', '42501',
    'cannot drop column "code" of protected table regress_ha_drop.audit',
    'DROP SCHEMA ... CASCADE of the schema of the column types is refused');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');

-- The extension itself ----------------------------------------------------------
SELECT throws_ok('DROP EXTENSION hipaa_audit', '42501',
    'cannot DROP extension hipaa_audit while tables are protected',
    'DROP EXTENSION hipaa_audit while tables are protected is refused');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');

SELECT throws_ok('DROP EXTENSION hipaa_audit CASCADE', '42501',
    'cannot DROP extension hipaa_audit while tables are protected',
    'DROP EXTENSION hipaa_audit CASCADE is refused');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');
SELECT is(regress_ha_drop.state('regress_ha_owned.owned'), regress_ha_drop.baseline('regress_ha_owned.owned'),
    '... the other protected table intact too');

SELECT throws_ok('DROP EXTENSION IF EXISTS pgtap, hipaa_audit', '42501',
    'cannot DROP extension hipaa_audit while tables are protected',
    'DROP EXTENSION of several extensions including hipaa_audit is refused');
SELECT has_extension('pgtap', '... and the other extension of the statement is still there');

SELECT throws_ok('ALTER EXTENSION hipaa_audit DROP FUNCTION hipaa_audit.guard_row()', '42501',
    'cannot ALTER EXTENSION hipaa_audit ADD or DROP an object',
    'ALTER EXTENSION hipaa_audit DROP FUNCTION hipaa_audit.guard_row() is refused');
SELECT throws_ok('ALTER EXTENSION hipaa_audit DROP TABLE hipaa_audit.registry', '42501',
    'cannot ALTER EXTENSION hipaa_audit ADD or DROP an object',
    'ALTER EXTENSION hipaa_audit DROP TABLE hipaa_audit.registry is refused');
SELECT is((SELECT count(*) FROM pg_depend
            WHERE refclassid = 'pg_extension'::regclass
              AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'hipaa_audit')
              AND deptype = 'e'
              -- (not the row types PostgreSQL 18 also records as members)
              AND NOT (classid = 'pg_type'::regclass AND EXISTS (
                    SELECT 1 FROM pg_type t LEFT JOIN pg_type e ON e.oid = t.typelem
                     WHERE t.oid = objid AND (t.typrelid <> 0 OR e.typrelid <> 0)))),
    56::bigint, '... the extension still owns its 56 objects');
SELECT ok(EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hipaa_audit'),
    'the extension is still installed');
SELECT results_eq(
    $$SELECT relid::text COLLATE "default" FROM hipaa_audit.registry ORDER BY 1$$,
    $$VALUES ('regress_ha_drop.audit'), ('regress_ha_owned.owned')$$,
    'after all refused drops both registry rows are intact');

-- unprotect() refusals ----------------------------------------------------------
SELECT throws_ok($$SELECT hipaa_audit.unprotect('regress_ha_drop.audit')$$, '42501',
    'cannot unprotect protected table regress_ha_drop.audit',
    'unprotect() of a table with rows is refused, even for a superuser');
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    '... table, rows, triggers and registry row intact');

SET ROLE regress_ha_ddl_admin;
SELECT throws_ok($$SELECT hipaa_audit.unprotect('regress_ha_drop.audit')$$, '42501',
    'cannot unprotect protected table regress_ha_drop.audit',
    'unprotect() of a table with rows is refused for a hipaa_audit_admin member');
RESET ROLE;

SET ROLE regress_ha_ddl_owner;
SELECT throws_ok($$SELECT hipaa_audit.unprotect('regress_ha_owned.owned')$$, '42501',
    'permission denied for function unprotect',
    'unprotect() is refused for the table owner who is not a hipaa_audit_admin member');
RESET ROLE;
SET ROLE regress_ha_ddl_nobody;
SELECT throws_ok($$SELECT hipaa_audit.unprotect('regress_ha_drop.audit')$$, '42501',
    'permission denied for function unprotect',
    'unprotect() is refused for a role that is neither owner nor admin');
RESET ROLE;
SELECT is(regress_ha_drop.state('regress_ha_owned.owned'), regress_ha_drop.baseline('regress_ha_owned.owned'),
    '... table, rows, triggers and registry row intact');

-- Empty protected tables ---------------------------------------------------------
CREATE TABLE regress_ha_drop.empty_a (id int);
CREATE TABLE regress_ha_drop.empty_b (id int);
CREATE TABLE regress_ha_drop.empty_c (id int);
SELECT hipaa_audit.protect('regress_ha_drop.empty_a');
SELECT hipaa_audit.protect('regress_ha_drop.empty_b');
SELECT hipaa_audit.protect('regress_ha_drop.empty_c');
CREATE TABLE regress_ha_drop.oids AS
SELECT relname::text AS relname, oid FROM pg_class
 WHERE oid IN ('regress_ha_drop.empty_a'::regclass, 'regress_ha_drop.empty_b'::regclass,
               'regress_ha_drop.empty_c'::regclass);

-- An empty protected table may be dropped, and takes its registry row along.
SELECT lives_ok('DROP TABLE regress_ha_drop.empty_a', 'DROP TABLE of an EMPTY protected table is allowed');
SELECT hasnt_table('regress_ha_drop', 'empty_a', '... the table is gone');
SELECT is((SELECT count(*) FROM hipaa_audit.registry r JOIN regress_ha_drop.oids o ON o.oid = r.relid::oid
            WHERE o.relname = 'empty_a'), 0::bigint,
    '... its registry row is gone');
SELECT is((SELECT count(*) FROM pg_trigger t JOIN regress_ha_drop.oids o ON o.oid = t.tgrelid
            WHERE o.relname = 'empty_a'), 0::bigint,
    '... its guard triggers are gone');

-- An insert that was rolled back leaves the table empty.
SAVEPOINT before_insert;
INSERT INTO regress_ha_drop.empty_b VALUES (1);
ROLLBACK TO SAVEPOINT before_insert;
SELECT throws_ok('DROP TABLE regress_ha_drop.empty_c, regress_ha_drop.audit', '42501',
    'cannot DROP protected table regress_ha_drop.audit',
    'DROP TABLE of an empty and a non-empty protected table together is refused');
SELECT has_table('regress_ha_drop', 'empty_c', '... and the empty one is still there');
SELECT is((SELECT count(*) FROM hipaa_audit.registry WHERE relid = 'regress_ha_drop.empty_c'::regclass),
    1::bigint, '... with its registry row');

-- A row inserted in this very transaction makes the table non-empty.
INSERT INTO regress_ha_drop.empty_c VALUES (1);
SELECT throws_ok('DROP TABLE regress_ha_drop.empty_c', '42501',
    'cannot DROP protected table regress_ha_drop.empty_c',
    'a row inserted earlier in the same transaction counts');

-- unprotect() of an empty table -------------------------------------------------
SET ROLE regress_ha_ddl_executor;
SELECT throws_ok($$SELECT hipaa_audit.unprotect('regress_ha_drop.empty_b')$$, '42501',
    'permission denied to unprotect table regress_ha_drop.empty_b',
    'a role granted EXECUTE but not a hipaa_audit_admin member is refused by unprotect() itself');
RESET ROLE;
SELECT ok(hipaa_audit.is_protected('regress_ha_drop.empty_b'), '... the table is still protected');

SELECT throws_ok($$SELECT hipaa_audit.unprotect('regress_ha_drop.plain')$$, '55000',
    'table regress_ha_drop.plain is not protected',
    'unprotect() of a table that is not protected is an error');
SELECT throws_ok($$SELECT hipaa_audit.unprotect(NULL)$$, '22004',
    'argument of hipaa_audit.unprotect must not be null',
    'unprotect(NULL) is an error, not a silent no-op');
SELECT throws_ok($$SELECT hipaa_audit.unprotect(0)$$, '42P01',
    'relation with OID 0 does not exist',
    'unprotect() of a relation that does not exist');

SET ROLE regress_ha_ddl_admin;
SELECT lives_ok($$SELECT hipaa_audit.unprotect('regress_ha_drop.empty_b')$$,
    'unprotect() of an EMPTY table works for a hipaa_audit_admin member');
RESET ROLE;
SELECT ok(NOT hipaa_audit.is_protected('regress_ha_drop.empty_b'), '... the table is no longer protected');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'regress_ha_drop.empty_b'::regclass),
    0::bigint, '... its chain and guard triggers are gone');
SELECT results_eq(
    $$SELECT attname::text COLLATE "default" FROM pg_attribute
       WHERE attrelid = 'regress_ha_drop.empty_b'::regclass AND attnum > 0 AND NOT attisdropped
       ORDER BY attnum$$,
    $$VALUES ('id')$$,
    '... its eight chain columns are gone, the user''s column is left');
SELECT is((SELECT count(*) FROM pg_index WHERE indrelid = 'regress_ha_drop.empty_b'::regclass),
    0::bigint, '... and so is the chain index');
SELECT is((SELECT count(*) FROM hipaa_audit.registry WHERE relid = 'regress_ha_drop.empty_b'::regclass),
    0::bigint, '... its registry row is gone');
SELECT lives_ok('INSERT INTO regress_ha_drop.empty_b VALUES (1), (2)', '... INSERT works');
SELECT lives_ok('UPDATE regress_ha_drop.empty_b SET id = id + 10', '... UPDATE works');
SELECT lives_ok('DELETE FROM regress_ha_drop.empty_b WHERE id = 11', '... DELETE works');
SELECT lives_ok('TRUNCATE regress_ha_drop.empty_b', '... TRUNCATE works');
SELECT lives_ok('DROP TABLE regress_ha_drop.empty_b', '... DROP TABLE works');

-- A superuser may unprotect an empty table too.
CREATE TABLE regress_ha_drop.empty_d (id int);
SELECT hipaa_audit.protect('regress_ha_drop.empty_d');
SELECT lives_ok($$SELECT hipaa_audit.unprotect('regress_ha_drop.empty_d')$$,
    'unprotect() of an EMPTY table works for a superuser');
SELECT lives_ok($$UPDATE regress_ha_drop.empty_d SET id = 1$$, '... and UPDATE works afterwards');

-- DROP SCHEMA ... CASCADE of a schema whose only protected table is empty.
CREATE SCHEMA regress_ha_drop_empty;
CREATE TABLE regress_ha_drop_empty.e (id int);
SELECT hipaa_audit.protect('regress_ha_drop_empty.e');
CREATE TABLE regress_ha_drop.e_oid AS SELECT 'regress_ha_drop_empty.e'::regclass::oid AS oid;
SELECT lives_ok('DROP SCHEMA regress_ha_drop_empty CASCADE',
    'DROP SCHEMA ... CASCADE is allowed when its protected table is empty');
SELECT is((SELECT count(*) FROM hipaa_audit.registry WHERE relid::oid = (SELECT oid FROM regress_ha_drop.e_oid)),
    0::bigint, '... and removes the registry row');

-- Final state --------------------------------------------------------------------
SELECT is(regress_ha_drop.state('regress_ha_drop.audit'), regress_ha_drop.baseline('regress_ha_drop.audit'),
    'in the end regress_ha_drop.audit is intact');
SELECT is(regress_ha_drop.state('regress_ha_owned.owned'), regress_ha_drop.baseline('regress_ha_owned.owned'),
    'in the end regress_ha_owned.owned is intact');
SELECT results_eq(
    $$SELECT (hipaa_audit.verify('regress_ha_drop.audit')).ok, (hipaa_audit.verify('regress_ha_owned.owned')).ok$$,
    $$VALUES (true, true)$$,
    'in the end both chains still verify');
SELECT results_eq(
    $$SELECT relid::text COLLATE "default" FROM hipaa_audit.registry ORDER BY 1$$,
    $$VALUES ('regress_ha_drop.audit'), ('regress_ha_drop.empty_c'), ('regress_ha_owned.owned')$$,
    'the registry holds exactly the tables still protected');

SELECT * FROM finish();
ROLLBACK;
