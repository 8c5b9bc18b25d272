-- The extension's own objects are guarded (42501, or PostgreSQL's own
-- refusal where it comes first), and protect() refuses everything it cannot
-- make safe, with its own SQLSTATE, registering nothing.
BEGIN;
SELECT plan(102);

SET LOCAL client_min_messages = warning;

-- Fixtures ------------------------------------------------------------------
CREATE ROLE regress_ha_ddl_owner NOLOGIN;
CREATE ROLE regress_ha_ddl_nobody NOLOGIN;
CREATE ROLE regress_ha_ddl_admin NOLOGIN IN ROLE hipaa_audit_admin;
CREATE ROLE regress_ha_ddl_member NOLOGIN IN ROLE regress_ha_ddl_owner;

CREATE SCHEMA regress_ha_ext;
GRANT USAGE ON SCHEMA regress_ha_ext TO PUBLIC;
CREATE TABLE regress_ha_ext.audit (id int NOT NULL, note text);
INSERT INTO regress_ha_ext.audit VALUES (1, 'first');
SELECT hipaa_audit.protect('regress_ha_ext.audit', '7 years', 3);

-- What the statements below must leave alone, as one text value.
CREATE FUNCTION regress_ha_ext.ext_state() RETURNS text LANGUAGE sql AS $$
SELECT concat_ws(E'\n',
    (SELECT format('schema %s owner=%s acl=%s', nspname, pg_get_userbyid(nspowner), nspacl)
       FROM pg_namespace WHERE nspname = 'hipaa_audit'),
    (SELECT 'functions ' || string_agg(format('%s:%s:%s:%s:%s:%s:%s:%s', p.oid::regprocedure,
                   pg_get_userbyid(p.proowner), p.prosecdef, p.provolatile, p.proisstrict,
                   p.proconfig, p.prosrc, p.proacl), ',' ORDER BY p.oid::regprocedure::text)
       FROM pg_proc p WHERE p.pronamespace = 'hipaa_audit'::regnamespace),
    (SELECT 'relations ' || string_agg(format('%s:%s:%s:%s:%s', c.relname, c.relkind,
                   pg_get_userbyid(c.relowner), c.relacl, c.relrowsecurity), ',' ORDER BY c.relname)
       FROM pg_class c WHERE c.relnamespace = 'hipaa_audit'::regnamespace),
    'view ' || pg_get_viewdef('hipaa_audit.protected_tables'::regclass),
    (SELECT 'registry columns ' || string_agg(attname || ':' || format_type(atttypid, atttypmod), ','
                   ORDER BY attnum)
       FROM pg_attribute WHERE attrelid = 'hipaa_audit.registry'::regclass AND attnum > 0
        AND NOT attisdropped),
    (SELECT 'registry triggers/rules/policies ' || count(*)
       FROM (SELECT 1 FROM pg_trigger WHERE tgrelid = 'hipaa_audit.registry'::regclass
             UNION ALL SELECT 1 FROM pg_rewrite WHERE ev_class = 'hipaa_audit.registry'::regclass
             UNION ALL SELECT 1 FROM pg_policy WHERE polrelid = 'hipaa_audit.registry'::regclass) x),
    (SELECT 'registry rows ' || string_agg(format('%s:%s:%s:%s:%s', relid, table_uuid, retention,
                   chains, protected_by), ',' ORDER BY relid::text)
       FROM hipaa_audit.registry),
    (SELECT 'members ' || count(*) FROM pg_depend
      WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
        AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'hipaa_audit')))
$$;
CREATE TABLE regress_ha_ext.baseline AS SELECT regress_ha_ext.ext_state() AS fp;

-- The registry table ----------------------------------------------------------
SELECT throws_ok('UPDATE hipaa_audit.registry SET chains = 2', '42501',
    'cannot UPDATE table hipaa_audit.registry of the hipaa_audit extension',
    'UPDATE hipaa_audit.registry is refused');
SELECT throws_ok($$UPDATE hipaa_audit.registry SET retention = '1 day' WHERE relid = 'regress_ha_ext.audit'::regclass$$, '42501',
    'cannot UPDATE table hipaa_audit.registry of the hipaa_audit extension',
    'UPDATE hipaa_audit.registry (lowering a retention) is refused');
SELECT throws_ok('DELETE FROM hipaa_audit.registry', '42501',
    'cannot DELETE FROM table hipaa_audit.registry of the hipaa_audit extension',
    'DELETE FROM hipaa_audit.registry is refused');
SELECT throws_ok('TRUNCATE hipaa_audit.registry', '42501',
    'cannot TRUNCATE table hipaa_audit.registry of the hipaa_audit extension',
    'TRUNCATE hipaa_audit.registry is refused');
SELECT throws_ok('TRUNCATE hipaa_audit.registry CASCADE', '42501',
    'cannot TRUNCATE table hipaa_audit.registry of the hipaa_audit extension',
    'TRUNCATE hipaa_audit.registry CASCADE is refused');
SELECT throws_ok($$MERGE INTO hipaa_audit.registry r USING (SELECT 1) s ON true
      WHEN MATCHED THEN DELETE$$, '42501',
    'cannot MERGE INTO table hipaa_audit.registry of the hipaa_audit extension',
    'MERGE INTO hipaa_audit.registry is refused');
SELECT throws_ok('ALTER TABLE hipaa_audit.registry ADD COLUMN z int', '42501',
    'cannot ALTER table hipaa_audit.registry of the hipaa_audit extension',
    'ALTER TABLE hipaa_audit.registry ADD COLUMN is refused');
SELECT throws_ok('ALTER TABLE hipaa_audit.registry DROP CONSTRAINT registry_retention_check', '42501',
    'cannot ALTER table hipaa_audit.registry of the hipaa_audit extension',
    'ALTER TABLE hipaa_audit.registry DROP CONSTRAINT is refused');
SELECT throws_ok('ALTER TABLE hipaa_audit.registry ENABLE ROW LEVEL SECURITY', '42501',
    'cannot ALTER table hipaa_audit.registry of the hipaa_audit extension',
    'ALTER TABLE hipaa_audit.registry ENABLE ROW LEVEL SECURITY is refused');
SELECT throws_ok('ALTER TABLE hipaa_audit.registry OWNER TO regress_ha_ddl_owner', '42501',
    'cannot ALTER table hipaa_audit.registry of the hipaa_audit extension',
    'ALTER TABLE hipaa_audit.registry OWNER TO is refused');
SELECT throws_ok('ALTER TABLE hipaa_audit.registry RENAME TO registry2', '42501',
    'cannot RENAME table hipaa_audit.registry of the hipaa_audit extension',
    'ALTER TABLE hipaa_audit.registry RENAME is refused');
SELECT throws_ok('ALTER TABLE hipaa_audit.registry RENAME COLUMN chains TO c', '42501',
    'cannot RENAME table hipaa_audit.registry of the hipaa_audit extension',
    'ALTER TABLE hipaa_audit.registry RENAME COLUMN is refused');
SELECT throws_ok('ALTER TABLE hipaa_audit.registry SET SCHEMA public', '42501',
    'cannot SET SCHEMA on table hipaa_audit.registry of the hipaa_audit extension',
    'ALTER TABLE hipaa_audit.registry SET SCHEMA is refused');
SELECT throws_ok($$CREATE TRIGGER t BEFORE INSERT ON hipaa_audit.registry
      FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()$$, '42501',
    'cannot CREATE TRIGGER on a table of the hipaa_audit extension',
    'CREATE TRIGGER on hipaa_audit.registry is refused');
SELECT throws_ok('CREATE RULE r AS ON INSERT TO hipaa_audit.registry DO INSTEAD NOTHING', '42501',
    'cannot CREATE RULE on a table of the hipaa_audit extension',
    'CREATE RULE on hipaa_audit.registry is refused');
SELECT throws_ok('CREATE INDEX ON hipaa_audit.registry (chains)', '42501',
    'cannot CREATE INDEX on a table of the hipaa_audit extension',
    'CREATE INDEX on hipaa_audit.registry is refused');
SELECT throws_ok('CREATE POLICY p ON hipaa_audit.registry USING (false)', '42501',
    'cannot CREATE POLICY on a table of the hipaa_audit extension',
    'CREATE POLICY on hipaa_audit.registry is refused');
SELECT throws_ok('DROP TABLE hipaa_audit.registry CASCADE', '2BP01',
    'cannot drop table hipaa_audit.registry because extension hipaa_audit requires it',
    'DROP TABLE hipaa_audit.registry is refused (by PostgreSQL: an extension member)');
SELECT is(regress_ha_ext.ext_state(), (SELECT fp FROM regress_ha_ext.baseline),
    'after the registry statements: the extension objects and the registry rows are unchanged');

-- The functions -----------------------------------------------------------------
SELECT throws_ok($$CREATE OR REPLACE FUNCTION hipaa_audit.guard_row() RETURNS trigger
      LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'$$, '42501',
    'cannot replace function guard_row of the hipaa_audit extension',
    'CREATE OR REPLACE FUNCTION hipaa_audit.guard_row() is refused');
SELECT throws_ok($$SET LOCAL search_path = hipaa_audit, public, pg_catalog;
      CREATE OR REPLACE FUNCTION guard_truncate() RETURNS trigger
      LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'$$, '42501',
    'cannot replace function guard_truncate of the hipaa_audit extension',
    'CREATE OR REPLACE FUNCTION guard_truncate() unqualified, through search_path, is refused');
RESET search_path;
SELECT throws_ok($$CREATE FUNCTION hipaa_audit.is_protected(text) RETURNS bool
      LANGUAGE sql AS 'SELECT false'$$, '42501',
    'cannot create function is_protected of the hipaa_audit extension',
    'CREATE FUNCTION in schema hipaa_audit (an overload) is refused');
SELECT throws_ok('ALTER FUNCTION hipaa_audit.protect(regclass, interval, int) SECURITY DEFINER', '42501',
    'cannot ALTER a function of the hipaa_audit extension',
    'ALTER FUNCTION hipaa_audit.protect(...) SECURITY DEFINER is refused');
SELECT throws_ok('ALTER FUNCTION hipaa_audit.protect(regclass, interval, int) SET search_path = public', '42501',
    'cannot ALTER a function of the hipaa_audit extension',
    'ALTER FUNCTION hipaa_audit.protect(...) SET search_path is refused');
SELECT throws_ok('ALTER FUNCTION hipaa_audit.is_protected(regclass) VOLATILE', '42501',
    'cannot ALTER a function of the hipaa_audit extension',
    'ALTER FUNCTION hipaa_audit.is_protected(...) VOLATILE is refused');
SELECT throws_ok('ALTER FUNCTION hipaa_audit.protect(regclass, interval, int) OWNER TO regress_ha_ddl_owner', '42501',
    'cannot change the owner of an object of the hipaa_audit extension',
    'ALTER FUNCTION hipaa_audit.protect(...) OWNER TO is refused');
SELECT throws_ok('ALTER FUNCTION hipaa_audit.protect(regclass, interval, int) RENAME TO protect2', '42501',
    'cannot RENAME an object of the hipaa_audit extension',
    'ALTER FUNCTION hipaa_audit.protect(...) RENAME is refused');
SELECT throws_ok('ALTER FUNCTION hipaa_audit.protect(regclass, interval, int) SET SCHEMA public', '42501',
    'cannot SET SCHEMA on an object of the hipaa_audit extension',
    'ALTER FUNCTION hipaa_audit.protect(...) SET SCHEMA is refused');
SELECT throws_ok('DROP FUNCTION hipaa_audit.guard_row()', '2BP01',
    'cannot drop function hipaa_audit.guard_row() because extension hipaa_audit requires it',
    'DROP FUNCTION hipaa_audit.guard_row() is refused (by PostgreSQL: an extension member)');
SELECT throws_ok('DROP FUNCTION hipaa_audit.guard_row() CASCADE', '2BP01',
    'cannot drop function hipaa_audit.guard_row() because extension hipaa_audit requires it',
    'DROP FUNCTION hipaa_audit.guard_row() CASCADE is refused');
SELECT throws_ok($$CREATE OR REPLACE FUNCTION hipaa_audit.chain_row() RETURNS trigger
      LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'$$, '42501',
    'cannot replace function chain_row of the hipaa_audit extension',
    'CREATE OR REPLACE FUNCTION hipaa_audit.chain_row() (the function that stamps and hashes rows) is refused');
SELECT throws_ok('ALTER FUNCTION hipaa_audit.verify(regclass) SECURITY DEFINER', '42501',
    'cannot ALTER a function of the hipaa_audit extension',
    'ALTER FUNCTION hipaa_audit.verify(regclass) SECURITY DEFINER is refused');
SELECT throws_ok('ALTER FUNCTION hipaa_audit.verify_problems(regclass) OWNER TO regress_ha_ddl_owner', '42501',
    'cannot change the owner of an object of the hipaa_audit extension',
    'ALTER FUNCTION hipaa_audit.verify_problems(regclass) OWNER TO is refused');
SELECT throws_ok('DROP FUNCTION hipaa_audit.verify(regclass)', '2BP01',
    'cannot drop function hipaa_audit.verify(regclass) because extension hipaa_audit requires it',
    'DROP FUNCTION hipaa_audit.verify(regclass) is refused (by PostgreSQL: an extension member)');
SELECT throws_ok($$CREATE OR REPLACE VIEW hipaa_audit.verify_progress AS
      SELECT * FROM hipaa_audit.verify_progress() p, LATERAL (SELECT NULL::numeric AS percent) x$$, '42501',
    'cannot replace a view in the schema of the hipaa_audit extension',
    'CREATE OR REPLACE VIEW hipaa_audit.verify_progress is refused');
SELECT is(regress_ha_ext.ext_state(), (SELECT fp FROM regress_ha_ext.baseline),
    'after the function statements: the extension objects and the registry rows are unchanged');
SELECT isnt_definer('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'],
    'hipaa_audit.protect is still not SECURITY DEFINER');

-- The view, the schema, the extension ------------------------------------------
SELECT throws_ok($$CREATE OR REPLACE VIEW hipaa_audit.protected_tables AS
      SELECT * FROM hipaa_audit.protected_tables WHERE false$$, '42501',
    'cannot replace a view in the schema of the hipaa_audit extension',
    'CREATE OR REPLACE VIEW hipaa_audit.protected_tables is refused');
SELECT throws_ok('CREATE VIEW hipaa_audit.extra AS SELECT 1 AS one', '42501',
    'cannot create a view in the schema of the hipaa_audit extension',
    'CREATE VIEW in schema hipaa_audit is refused');
SELECT throws_ok('ALTER VIEW hipaa_audit.protected_tables RENAME TO pt', '42501',
    'cannot RENAME view hipaa_audit.protected_tables of the hipaa_audit extension',
    'ALTER VIEW hipaa_audit.protected_tables RENAME is refused');
SELECT throws_ok('ALTER VIEW hipaa_audit.protected_tables OWNER TO regress_ha_ddl_owner', '42501',
    'cannot ALTER view hipaa_audit.protected_tables of the hipaa_audit extension',
    'ALTER VIEW hipaa_audit.protected_tables OWNER TO is refused');
SELECT throws_ok('CREATE RULE r AS ON INSERT TO hipaa_audit.protected_tables DO INSTEAD NOTHING', '42501',
    'cannot CREATE RULE on a table of the hipaa_audit extension',
    'CREATE RULE on hipaa_audit.protected_tables is refused');
SELECT throws_ok('ALTER SCHEMA hipaa_audit RENAME TO hipaa_audit2', '42501',
    'cannot RENAME schema hipaa_audit of the hipaa_audit extension',
    'ALTER SCHEMA hipaa_audit RENAME is refused');
SELECT throws_ok('ALTER SCHEMA hipaa_audit OWNER TO regress_ha_ddl_owner', '42501',
    'cannot give a non-superuser ownership of schema hipaa_audit of the hipaa_audit extension',
    'ALTER SCHEMA hipaa_audit OWNER TO is refused');
SELECT throws_ok('DROP SCHEMA hipaa_audit CASCADE', '42501',
    'cannot DROP schema hipaa_audit of the hipaa_audit extension',
    'DROP SCHEMA hipaa_audit CASCADE is refused');
SELECT throws_ok('CREATE TABLE regress_ha_ext.mover (id int); ALTER TABLE regress_ha_ext.mover SET SCHEMA hipaa_audit', '42501',
    'cannot move objects into schema hipaa_audit of the hipaa_audit extension',
    'moving a table into schema hipaa_audit is refused');
SELECT throws_ok('ALTER EXTENSION hipaa_audit SET SCHEMA public', '42501',
    'cannot SET SCHEMA on extension hipaa_audit of the hipaa_audit extension',
    'ALTER EXTENSION hipaa_audit SET SCHEMA is refused');
SELECT throws_ok('ALTER EXTENSION hipaa_audit DROP VIEW hipaa_audit.protected_tables', '42501',
    'cannot ALTER EXTENSION hipaa_audit ADD or DROP an object',
    'ALTER EXTENSION hipaa_audit DROP VIEW is refused');
SELECT is(regress_ha_ext.ext_state(), (SELECT fp FROM regress_ha_ext.baseline),
    'after the view/schema/extension statements: the extension objects and the registry rows are unchanged');

-- protect() refusals ------------------------------------------------------------
CREATE TABLE regress_ha_ext.base (id int);
CREATE VIEW regress_ha_ext.v AS SELECT * FROM regress_ha_ext.base;
CREATE MATERIALIZED VIEW regress_ha_ext.mv AS SELECT * FROM regress_ha_ext.base;
CREATE FOREIGN DATA WRAPPER regress_ha_ddl_fdw;
CREATE SERVER regress_ha_ddl_server FOREIGN DATA WRAPPER regress_ha_ddl_fdw;
CREATE FOREIGN TABLE regress_ha_ext.ft (id int) SERVER regress_ha_ddl_server;
CREATE TEMPORARY TABLE regress_ha_tmp (id int);
CREATE UNLOGGED TABLE regress_ha_ext.ul (id int);
CREATE TABLE regress_ha_ext.parted (id int) PARTITION BY RANGE (id);
CREATE TABLE regress_ha_ext.part1 PARTITION OF regress_ha_ext.parted FOR VALUES FROM (0) TO (10);
CREATE TABLE regress_ha_ext.part2 PARTITION OF regress_ha_ext.parted FOR VALUES FROM (10) TO (20)
    PARTITION BY RANGE (id);
CREATE TABLE regress_ha_ext.ipar (id int);
CREATE TABLE regress_ha_ext.ichild () INHERITS (regress_ha_ext.ipar);
CREATE SEQUENCE regress_ha_ext.sq;
CREATE INDEX base_idx ON regress_ha_ext.base (id);

SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.v')$$, '42809',
    'cannot protect regress_ha_ext.v because it is a view',
    'protect() refuses a view');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.mv')$$, '42809',
    'cannot protect regress_ha_ext.mv because it is a materialized view',
    'protect() refuses a materialized view');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.ft')$$, '42809',
    'cannot protect foreign table regress_ha_ext.ft',
    'protect() refuses a foreign table');
SELECT throws_ok($$SELECT hipaa_audit.protect('pg_temp.regress_ha_tmp')$$, '42809',
    format('cannot protect temporary table %s.regress_ha_tmp',
           (SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema())),
    'protect() refuses a temporary table');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.ul')$$, '42809',
    'cannot protect unlogged table regress_ha_ext.ul',
    'protect() refuses an unlogged table');
SELECT throws_ok($$SELECT hipaa_audit.protect('pg_catalog.pg_class')$$, '42809',
    'cannot protect system catalog pg_catalog.pg_class',
    'protect() refuses a system catalog (pg_class)');
SELECT throws_ok($$SELECT hipaa_audit.protect('pg_catalog.pg_largeobject')$$, '42809',
    'cannot protect system catalog pg_catalog.pg_largeobject',
    'protect() refuses a system catalog (pg_largeobject)');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.parted')$$, '0A000',
    'cannot protect regress_ha_ext.parted: its partition regress_ha_ext.part2 is itself partitioned',
    'protect() refuses a partitioned table with more than one level');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.part1')$$, '0A000',
    'cannot protect regress_ha_ext.part1 because it is a partition',
    'protect() refuses a partition (its partitioned table is protected instead)');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.ichild')$$, '0A000',
    'cannot protect regress_ha_ext.ichild because it inherits from another table',
    'protect() refuses an inheritance child');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.ipar')$$, '0A000',
    'cannot protect regress_ha_ext.ipar because other tables inherit from it',
    'protect() refuses an inheritance parent');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.sq')$$, '42809',
    'cannot protect regress_ha_ext.sq because it is not a table',
    'protect() refuses a sequence');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.base_idx')$$, '42809',
    'cannot protect regress_ha_ext.base_idx because it is an index',
    'protect() refuses an index');
SELECT throws_ok($$SELECT hipaa_audit.protect('hipaa_audit.registry')$$, '42809',
    'cannot protect hipaa_audit.registry, a table of the hipaa_audit extension itself',
    'protect() refuses hipaa_audit.registry itself');
SELECT throws_ok($$SELECT hipaa_audit.protect('hipaa_audit.protected_tables')$$, '42809',
    'cannot protect hipaa_audit.protected_tables, a table of the hipaa_audit extension itself',
    'protect() refuses hipaa_audit.protected_tables');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.audit')$$, '42710',
    'table regress_ha_ext.audit is already protected',
    'protect() refuses a table that is already protected');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.audit', '10 years', 8)$$, '42710',
    'table regress_ha_ext.audit is already protected',
    'protect() of an already protected table cannot change its settings');

CREATE TABLE regress_ha_ext.ruled (id int);
CREATE TABLE regress_ha_ext.ruled_sink (id int);
CREATE RULE divert AS ON INSERT TO regress_ha_ext.ruled
    DO INSTEAD INSERT INTO regress_ha_ext.ruled_sink VALUES (NEW.id);
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.ruled')$$, '55000',
    'cannot protect regress_ha_ext.ruled because it has rules',
    'protect() refuses a table whose rules could divert its inserts');
SELECT throws_ok($$SELECT hipaa_audit.protect('information_schema.sql_features')$$, '42809',
    'cannot protect system catalog information_schema.sql_features',
    'protect() refuses information_schema tables');
SELECT throws_ok($$SELECT hipaa_audit.protect(0)$$, '42P01',
    'relation with OID 0 does not exist',
    'protect() of a relation that does not exist');

SELECT throws_ok($$SELECT hipaa_audit.protect(NULL)$$, '22004',
    'arguments of hipaa_audit.protect must not be null',
    'protect(NULL) is refused');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.base', NULL)$$, '22004',
    'arguments of hipaa_audit.protect must not be null',
    'protect() with a NULL retention is refused');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.base', '6 years', NULL)$$, '22004',
    'arguments of hipaa_audit.protect must not be null',
    'protect() with NULL chains is refused');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.base', '0')$$, '22023',
    'retention must be a positive interval',
    'protect() with retention 0 is refused');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.base', '-1 day')$$, '22023',
    'retention must be a positive interval',
    'protect() with a negative retention is refused');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.base', '1 month -30 days')$$, '22023',
    'retention must be a positive interval',
    'protect() with a retention that compares equal to zero is refused');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.base', '6 years', 0)$$, '22023',
    'chains must be between 1 and 256',
    'protect() with chains 0 is refused');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.base', '6 years', 257)$$, '22023',
    'chains must be between 1 and 256',
    'protect() with chains 257 is refused');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.base', '6 years', -1)$$, '22023',
    'chains must be between 1 and 256',
    'protect() with negative chains is refused');

SELECT results_eq(
    $$SELECT relid::text COLLATE "default" FROM hipaa_audit.registry ORDER BY 1$$,
    $$VALUES ('regress_ha_ext.audit')$$,
    'after the refused protect() calls nothing new is registered');
SELECT is((SELECT count(*) FROM pg_trigger
            WHERE tgname IN ('hipaa_audit_chain', 'hipaa_audit_guard_row', 'hipaa_audit_guard_truncate')
              AND tgrelid <> 'regress_ha_ext.audit'::regclass),
    0::bigint, '... and no chain or guard trigger was left behind');
SELECT is((SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE a.attname::text LIKE 'audit\_%' AND a.attnum > 0 AND NOT a.attisdropped
              AND c.relkind NOT IN ('i', 'I')
              AND a.attrelid <> 'regress_ha_ext.audit'::regclass),
    0::bigint, '... and no chain column was added to any other relation');

-- Bounds that are accepted
CREATE TABLE regress_ha_ext.one_chain (id int);
CREATE TABLE regress_ha_ext.max_chains (id int);
CREATE TABLE regress_ha_ext.one_second (id int);
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_ext.one_chain', '6 years', 1)$$,
    'protect() with chains 1 works');
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_ext.max_chains', '6 years', 256)$$,
    'protect() with chains 256 works');
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_ext.one_second', '1 second')$$,
    'protect() with the smallest sensible retention works');
SELECT results_eq(
    $$SELECT relid::text COLLATE "default", retention, chains FROM hipaa_audit.registry
       WHERE relid IN ('regress_ha_ext.one_chain'::regclass, 'regress_ha_ext.max_chains'::regclass,
                       'regress_ha_ext.one_second'::regclass)
       ORDER BY 1$$,
    $$VALUES ('regress_ha_ext.max_chains', '6 years'::interval, 256),
             ('regress_ha_ext.one_chain', '6 years'::interval, 1),
             ('regress_ha_ext.one_second', '1 second'::interval,
              (regexp_match(pg_get_function_arguments('hipaa_audit.protect(regclass,interval,integer)'::regprocedure),
                            'chains integer DEFAULT (\d+)'))[1]::int)$$,
    '... registered with those settings (chains defaulting to protect()''s declared default, pinned in 00_schema)');
SELECT results_eq(
    $$SELECT tgname::text COLLATE "default", tgenabled::text FROM pg_trigger
       WHERE tgrelid = 'regress_ha_ext.one_chain'::regclass ORDER BY 1$$,
    $$VALUES ('hipaa_audit_chain', 'A'), ('hipaa_audit_guard_row', 'A'), ('hipaa_audit_guard_truncate', 'A')$$,
    '... with the chain trigger and both guard triggers ENABLE ALWAYS');

-- Who may protect ---------------------------------------------------------------
CREATE TABLE regress_ha_ext.owned_a (id int);
CREATE TABLE regress_ha_ext.owned_b (id int);
CREATE TABLE regress_ha_ext.owned_c (id int);
ALTER TABLE regress_ha_ext.owned_a OWNER TO regress_ha_ddl_owner;
ALTER TABLE regress_ha_ext.owned_b OWNER TO regress_ha_ddl_owner;
ALTER TABLE regress_ha_ext.owned_c OWNER TO regress_ha_ddl_owner;

SET ROLE regress_ha_ddl_nobody;
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.owned_a')$$, '42501',
    'permission denied to protect table regress_ha_ext.owned_a',
    'protect() of another role''s table by a role that is neither owner nor admin is refused');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_ext.audit')$$, '42501',
    'permission denied to protect table regress_ha_ext.audit',
    '... even for a table that is already protected (the permission check comes first)');
SELECT throws_ok($$SELECT hipaa_audit.protect('pg_catalog.pg_class')$$, '42501',
    'permission denied to protect table pg_catalog.pg_class',
    '... and for a system catalog');
RESET ROLE;
SELECT ok(NOT hipaa_audit.is_protected('regress_ha_ext.owned_a'), '... the table is not protected');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'regress_ha_ext.owned_a'::regclass),
    0::bigint, '... and has no guard triggers');

SET ROLE regress_ha_ddl_admin;
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_ext.owned_a')$$,
    'protect() of another role''s table works for a hipaa_audit_admin member');
RESET ROLE;
SET ROLE regress_ha_ddl_owner;
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_ext.owned_b')$$,
    'protect() works for the table owner');
RESET ROLE;
SET ROLE regress_ha_ddl_member;
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_ext.owned_c')$$,
    'protect() works for a member of the owning role');
RESET ROLE;
SELECT results_eq(
    $$SELECT relid::text COLLATE "default", protected_by::text COLLATE "default"
        FROM hipaa_audit.registry
       WHERE relid IN ('regress_ha_ext.owned_a'::regclass, 'regress_ha_ext.owned_b'::regclass,
                       'regress_ha_ext.owned_c'::regclass)
       ORDER BY 1$$,
    $$VALUES ('regress_ha_ext.owned_a', 'regress_ha_ddl_admin'),
             ('regress_ha_ext.owned_b', 'regress_ha_ddl_owner'),
             ('regress_ha_ext.owned_c', 'regress_ha_ddl_member')$$,
    '... each registered, recording who protected it');
SELECT results_eq(
    $$SELECT tgrelid::regclass::text COLLATE "default", count(*) FILTER (WHERE tgenabled = 'A')
        FROM pg_trigger
       WHERE tgrelid IN ('regress_ha_ext.owned_a'::regclass, 'regress_ha_ext.owned_b'::regclass,
                         'regress_ha_ext.owned_c'::regclass)
       GROUP BY 1 ORDER BY 1$$,
    $$VALUES ('regress_ha_ext.owned_a', 3::bigint), ('regress_ha_ext.owned_b', 3::bigint),
             ('regress_ha_ext.owned_c', 3::bigint)$$,
    '... each with the chain trigger and both guard triggers ENABLE ALWAYS');
SET ROLE regress_ha_ddl_owner;
SELECT throws_ok('ALTER TABLE regress_ha_ext.owned_b DISABLE TRIGGER ALL', '42501',
    'cannot DISABLE TRIGGER ALL on protected table regress_ha_ext.owned_b',
    'the owner cannot disable the guard triggers of the table it protected');
SELECT throws_ok('DROP TRIGGER hipaa_audit_guard_row ON regress_ha_ext.owned_b', '42501',
    'cannot DROP TRIGGER hipaa_audit_guard_row on protected table regress_ha_ext.owned_b',
    'the owner cannot drop the guard triggers of the table it protected');
SELECT throws_ok($$SELECT hipaa_audit.unprotect('regress_ha_ext.owned_b')$$, '42501',
    'permission denied for function unprotect',
    'the owner cannot unprotect the table it protected');
RESET ROLE;

-- Formerly known gaps (now refused; kept as regression tests) ---------------
-- INSERT ... ON CONFLICT DO UPDATE is an UPDATE of the registry (it is
-- refused as an INSERT into the extension's own table).
SELECT throws_ok($$INSERT INTO hipaa_audit.registry
      SELECT relid, table_uuid, retention, chains, protected_at, protected_by
        FROM hipaa_audit.registry WHERE relid = 'regress_ha_ext.audit'::regclass
      ON CONFLICT (relid) DO UPDATE SET retention = '1 day', protected_by = 'mallory'$$, '42501',
    'cannot INSERT INTO table hipaa_audit.registry of the hipaa_audit extension',
    'INSERT ... ON CONFLICT DO UPDATE on hipaa_audit.registry is refused');
SELECT results_eq(
    $$SELECT retention, protected_by::text COLLATE "default" FROM hipaa_audit.registry
       WHERE relid = 'regress_ha_ext.audit'::regclass$$,
    $$VALUES ('7 years'::interval, 'postgres')$$,
    '... and the registry row keeps its retention and protected_by');
-- The view check only looks at an explicit schema name.
SELECT throws_ok($$SET LOCAL search_path = hipaa_audit, public, pg_catalog;
      CREATE OR REPLACE VIEW protected_tables AS
      SELECT n.nspname AS schema_name, c.relname AS table_name, r.relid, r.table_uuid,
             r.retention, r.chains, r.protected_at, r.protected_by,
             pg_get_userbyid(c.relowner) AS owner,
             GREATEST(c.reltuples, 0)::int8 AS estimated_rows
        FROM hipaa_audit.registry r
        JOIN pg_class c ON c.oid = r.relid
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE false$$, '42501',
    'cannot replace a view in the schema of the hipaa_audit extension',
    'CREATE OR REPLACE VIEW protected_tables, unqualified through search_path, is refused');
RESET search_path;

SELECT * FROM finish();
ROLLBACK;
