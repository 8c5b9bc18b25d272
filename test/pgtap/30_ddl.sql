-- DDL on a protected table that holds rows: everything that would weaken it
-- is refused with SQLSTATE 42501 and an exact message, and leaves the table,
-- its rows (with their chain columns), its chain and guard triggers and its
-- registry row exactly as they were; maintenance and harmless DDL keep
-- working, and the hash chain still verifies after them.
BEGIN;
SELECT plan(109);

SET LOCAL client_min_messages = warning;

-- Fixtures ------------------------------------------------------------------
CREATE SCHEMA regress_ha_ddl;
CREATE SCHEMA regress_ha_ddl_other;
CREATE ROLE regress_ha_ddl_reader NOLOGIN;

CREATE DOMAIN regress_ha_ddl.dom_default AS int DEFAULT 42;
CREATE DOMAIN regress_ha_ddl.dom_inner AS int DEFAULT 7;
CREATE DOMAIN regress_ha_ddl.dom_outer AS regress_ha_ddl.dom_inner;
CREATE DOMAIN regress_ha_ddl.dom_plain AS text CHECK (VALUE <> '');

CREATE FUNCTION regress_ha_ddl.noop() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN RETURN NULL; END $$;

CREATE TABLE regress_ha_ddl.audit (id int NOT NULL, note text);
-- protect() refuses a table with rules (see 50_extension_objects.sql), so
-- the rule statements below name a rule that cannot exist: the refusal comes
-- before PostgreSQL would look for it.
INSERT INTO regress_ha_ddl.audit VALUES (1, 'first'), (2, 'second'), (3, 'third');
SELECT hipaa_audit.protect('regress_ha_ddl.audit', '6 years', 4);

CREATE TABLE regress_ha_ddl.plain_parent (id int NOT NULL, note text);
CREATE TABLE regress_ha_ddl.plain_child (id int NOT NULL, note text);
CREATE TABLE regress_ha_ddl.parted (id int NOT NULL, note text) PARTITION BY RANGE (id);

-- Everything a refused statement must leave alone, as one text value.
CREATE FUNCTION regress_ha_ddl.fingerprint() RETURNS text LANGUAGE sql AS $$
SELECT concat_ws(E'\n',
    (SELECT format('rel %s.%s kind=%s persistence=%s am=%s ispartition=%s',
                   n.nspname, c.relname, c.relkind, c.relpersistence,
                   (SELECT amname FROM pg_am WHERE oid = c.relam), c.relispartition)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = 'regress_ha_ddl.audit'::regclass),
    (SELECT 'cols ' || string_agg(format('%s:%s:%s:%s:%s:%s', attname,
                   format_type(atttypid, atttypmod), attnotnull, atthasdef,
                   attidentity, attgenerated), ',' ORDER BY attnum)
       FROM pg_attribute
      WHERE attrelid = 'regress_ha_ddl.audit'::regclass AND attnum > 0
        AND NOT attisdropped),
    (SELECT 'rows ' || string_agg(format('%s=%s', id, note), ',' ORDER BY id)
       FROM regress_ha_ddl.audit),
    (SELECT 'chain ' || string_agg(format('%s/%s/%s/%s/%s/%s/%s/%s', audit_chain, audit_seq,
                   audit_at, audit_session_role, audit_role, audit_client,
                   encode(audit_prev_hash, 'hex'), encode(audit_hash, 'hex')), ','
                   ORDER BY audit_chain, audit_seq)
       FROM regress_ha_ddl.audit),
    (SELECT 'indexes ' || string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY indexrelid::regclass::text)
       FROM pg_index WHERE indrelid = 'regress_ha_ddl.audit'::regclass),
    (SELECT 'triggers ' || string_agg(format('%s:%s:%s', tgname, tgenabled,
                   tgfoid::regproc), ',' ORDER BY tgname)
       FROM pg_trigger WHERE tgrelid = 'regress_ha_ddl.audit'::regclass),
    (SELECT 'rules ' || string_agg(format('%s:%s', rulename, ev_enabled), ','
                   ORDER BY rulename)
       FROM pg_rewrite WHERE ev_class = 'regress_ha_ddl.audit'::regclass),
    (SELECT 'inherits ' || count(*) FROM pg_inherits
      WHERE inhrelid = 'regress_ha_ddl.audit'::regclass
         OR inhparent = 'regress_ha_ddl.audit'::regclass),
    (SELECT 'registry ' || string_agg(format('%s:%s:%s:%s', relid, table_uuid,
                   retention, chains), ',')
       FROM hipaa_audit.registry
      WHERE relid = 'regress_ha_ddl.audit'::regclass))
$$;
CREATE TABLE regress_ha_ddl.baseline AS SELECT regress_ha_ddl.fingerprint() AS fp;

-- Sanity of the fixture --------------------------------------------------------
SELECT ok(hipaa_audit.is_protected('regress_ha_ddl.audit'), 'fixture: the table is protected');
SELECT results_eq(
    $$SELECT tgname::text COLLATE "default", tgenabled::text FROM pg_trigger
       WHERE tgrelid = 'regress_ha_ddl.audit'::regclass ORDER BY tgname$$,
    $$VALUES ('hipaa_audit_chain', 'A'), ('hipaa_audit_guard_row', 'A'), ('hipaa_audit_guard_truncate', 'A')$$,
    'fixture: the chain trigger and both guard triggers exist and are ENABLE ALWAYS');
SELECT results_eq(
    $$SELECT ok, rows_checked, problems FROM hipaa_audit.verify('regress_ha_ddl.audit')$$,
    $$VALUES (true, 3::bigint, 0::bigint)$$,
    'fixture: the three rows that existed before protect() are chained and verify');

-- Triggers ---------------------------------------------------------------------
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit DISABLE TRIGGER ALL', '42501',
    'cannot DISABLE TRIGGER ALL on protected table regress_ha_ddl.audit',
    'DISABLE TRIGGER ALL is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit DISABLE TRIGGER USER', '42501',
    'cannot DISABLE TRIGGER USER on protected table regress_ha_ddl.audit',
    'DISABLE TRIGGER USER is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit DISABLE TRIGGER hipaa_audit_guard_row', '42501',
    'cannot DISABLE TRIGGER hipaa_audit_guard_row on protected table regress_ha_ddl.audit',
    'DISABLE TRIGGER hipaa_audit_guard_row is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit DISABLE TRIGGER hipaa_audit_guard_truncate', '42501',
    'cannot DISABLE TRIGGER hipaa_audit_guard_truncate on protected table regress_ha_ddl.audit',
    'DISABLE TRIGGER hipaa_audit_guard_truncate is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ENABLE TRIGGER ALL', '42501',
    'cannot ENABLE TRIGGER ALL on protected table regress_ha_ddl.audit',
    'ENABLE TRIGGER ALL (would turn ALWAYS into ORIGIN) is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ENABLE TRIGGER USER', '42501',
    'cannot ENABLE TRIGGER USER on protected table regress_ha_ddl.audit',
    'ENABLE TRIGGER USER is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ENABLE TRIGGER hipaa_audit_guard_row', '42501',
    'cannot ENABLE TRIGGER hipaa_audit_guard_row on protected table regress_ha_ddl.audit',
    'ENABLE TRIGGER hipaa_audit_guard_row (ALWAYS -> ORIGIN) is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ENABLE REPLICA TRIGGER hipaa_audit_guard_row', '42501',
    'cannot ENABLE REPLICA TRIGGER hipaa_audit_guard_row on protected table regress_ha_ddl.audit',
    'ENABLE REPLICA TRIGGER hipaa_audit_guard_row is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ENABLE REPLICA TRIGGER hipaa_audit_guard_truncate', '42501',
    'cannot ENABLE REPLICA TRIGGER hipaa_audit_guard_truncate on protected table regress_ha_ddl.audit',
    'ENABLE REPLICA TRIGGER hipaa_audit_guard_truncate is refused');
SELECT throws_ok('DROP TRIGGER hipaa_audit_guard_row ON regress_ha_ddl.audit', '42501',
    'cannot DROP TRIGGER hipaa_audit_guard_row on protected table regress_ha_ddl.audit',
    'DROP TRIGGER hipaa_audit_guard_row is refused');
SELECT throws_ok('DROP TRIGGER hipaa_audit_guard_truncate ON regress_ha_ddl.audit CASCADE', '42501',
    'cannot DROP TRIGGER hipaa_audit_guard_truncate on protected table regress_ha_ddl.audit',
    'DROP TRIGGER hipaa_audit_guard_truncate CASCADE is refused');
SELECT throws_ok('ALTER TRIGGER hipaa_audit_guard_row ON regress_ha_ddl.audit RENAME TO renamed', '42501',
    'cannot RENAME TRIGGER hipaa_audit_guard_row on protected table regress_ha_ddl.audit',
    'ALTER TRIGGER hipaa_audit_guard_row RENAME is refused');
SELECT throws_ok('ALTER TRIGGER hipaa_audit_guard_truncate ON regress_ha_ddl.audit RENAME TO renamed', '42501',
    'cannot RENAME TRIGGER hipaa_audit_guard_truncate on protected table regress_ha_ddl.audit',
    'ALTER TRIGGER hipaa_audit_guard_truncate RENAME is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER hipaa_audit_guard_row
      BEFORE UPDATE OR DELETE ON regress_ha_ddl.audit
      FOR EACH ROW EXECUTE FUNCTION regress_ha_ddl.noop()$$, '42501',
    'cannot replace trigger hipaa_audit_guard_row on protected table regress_ha_ddl.audit',
    'CREATE OR REPLACE TRIGGER hipaa_audit_guard_row is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER hipaa_audit_guard_truncate
      BEFORE TRUNCATE ON regress_ha_ddl.audit
      FOR EACH STATEMENT EXECUTE FUNCTION regress_ha_ddl.noop()$$, '42501',
    'cannot replace trigger hipaa_audit_guard_truncate on protected table regress_ha_ddl.audit',
    'CREATE OR REPLACE TRIGGER hipaa_audit_guard_truncate is refused');
-- The chain trigger, which stamps and hashes every new row.
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit DISABLE TRIGGER hipaa_audit_chain', '42501',
    'cannot DISABLE TRIGGER hipaa_audit_chain on protected table regress_ha_ddl.audit',
    'DISABLE TRIGGER hipaa_audit_chain is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ENABLE TRIGGER hipaa_audit_chain', '42501',
    'cannot ENABLE TRIGGER hipaa_audit_chain on protected table regress_ha_ddl.audit',
    'ENABLE TRIGGER hipaa_audit_chain (ALWAYS -> ORIGIN) is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ENABLE REPLICA TRIGGER hipaa_audit_chain', '42501',
    'cannot ENABLE REPLICA TRIGGER hipaa_audit_chain on protected table regress_ha_ddl.audit',
    'ENABLE REPLICA TRIGGER hipaa_audit_chain is refused');
SELECT throws_ok('DROP TRIGGER hipaa_audit_chain ON regress_ha_ddl.audit', '42501',
    'cannot DROP TRIGGER hipaa_audit_chain on protected table regress_ha_ddl.audit',
    'DROP TRIGGER hipaa_audit_chain is refused');
SELECT throws_ok('ALTER TRIGGER hipaa_audit_chain ON regress_ha_ddl.audit RENAME TO zz_chain', '42501',
    'cannot RENAME TRIGGER hipaa_audit_chain on protected table regress_ha_ddl.audit',
    'ALTER TRIGGER hipaa_audit_chain RENAME is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER hipaa_audit_chain
      BEFORE INSERT ON regress_ha_ddl.audit
      FOR EACH ROW EXECUTE FUNCTION regress_ha_ddl.noop()$$, '42501',
    'cannot replace trigger hipaa_audit_chain on protected table regress_ha_ddl.audit',
    'CREATE OR REPLACE TRIGGER hipaa_audit_chain is refused');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER hipaa_audit_chain
      BEFORE INSERT ON regress_ha_ddl.audit
      FOR EACH ROW EXECUTE FUNCTION hipaa_audit.chain_row()$$, '42501',
    'cannot replace trigger hipaa_audit_chain on protected table regress_ha_ddl.audit',
    'CREATE OR REPLACE TRIGGER hipaa_audit_chain, even on its own function, is refused');
SELECT is(regress_ha_ddl.fingerprint(), (SELECT fp FROM regress_ha_ddl.baseline),
    'after the trigger statements: table, rows, triggers and registry row unchanged');

-- Rules ------------------------------------------------------------------------
SELECT throws_ok($$CREATE RULE r_ins AS ON INSERT TO regress_ha_ddl.audit DO INSTEAD NOTHING$$, '42501',
    'cannot CREATE RULE on protected table regress_ha_ddl.audit',
    'CREATE RULE ... ON INSERT DO INSTEAD NOTHING is refused');
SELECT throws_ok($$CREATE RULE r_upd AS ON UPDATE TO regress_ha_ddl.audit DO INSTEAD NOTHING$$, '42501',
    'cannot CREATE RULE on protected table regress_ha_ddl.audit',
    'CREATE RULE ... ON UPDATE is refused');
SELECT throws_ok($$CREATE RULE r_del AS ON DELETE TO regress_ha_ddl.audit DO INSTEAD NOTHING$$, '42501',
    'cannot CREATE RULE on protected table regress_ha_ddl.audit',
    'CREATE RULE ... ON DELETE is refused');
SELECT throws_ok($$CREATE OR REPLACE RULE audit_notify AS ON INSERT TO regress_ha_ddl.audit DO INSTEAD NOTHING$$, '42501',
    'cannot CREATE RULE on protected table regress_ha_ddl.audit',
    'CREATE OR REPLACE RULE of an existing rule is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit DISABLE RULE audit_notify', '42501',
    'cannot DISABLE RULE on protected table regress_ha_ddl.audit',
    'DISABLE RULE is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ENABLE RULE audit_notify', '42501',
    'cannot ENABLE RULE on protected table regress_ha_ddl.audit',
    'ENABLE RULE is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ENABLE REPLICA RULE audit_notify', '42501',
    'cannot ENABLE REPLICA RULE on protected table regress_ha_ddl.audit',
    'ENABLE REPLICA RULE is refused');
SELECT is(regress_ha_ddl.fingerprint(), (SELECT fp FROM regress_ha_ddl.baseline),
    'after the rule statements: table, rows, triggers and registry row unchanged');

-- Storage, columns, names ------------------------------------------------------
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit SET UNLOGGED', '42501',
    'cannot SET UNLOGGED on protected table regress_ha_ddl.audit',
    'SET UNLOGGED is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit DROP COLUMN note', '42501',
    'cannot DROP COLUMN on protected table regress_ha_ddl.audit',
    'DROP COLUMN is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit DROP COLUMN note CASCADE', '42501',
    'cannot DROP COLUMN on protected table regress_ha_ddl.audit',
    'DROP COLUMN ... CASCADE is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ALTER COLUMN note TYPE varchar(2)', '42501',
    'cannot ALTER COLUMN ... TYPE on protected table regress_ha_ddl.audit',
    'ALTER COLUMN ... TYPE is refused');
SELECT throws_ok($$ALTER TABLE regress_ha_ddl.audit ALTER COLUMN id SET DATA TYPE bigint USING id + 1$$, '42501',
    'cannot ALTER COLUMN ... TYPE on protected table regress_ha_ddl.audit',
    'ALTER COLUMN ... SET DATA TYPE ... USING is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit RENAME TO audit_renamed', '42501',
    'cannot RENAME protected table regress_ha_ddl.audit',
    'RENAME TO is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit RENAME COLUMN note TO remark', '42501',
    'cannot RENAME COLUMN "note" of protected table regress_ha_ddl.audit',
    'RENAME COLUMN is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit SET SCHEMA regress_ha_ddl_other', '42501',
    'cannot SET SCHEMA on protected table regress_ha_ddl.audit',
    'SET SCHEMA is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit SET ACCESS METHOD heap', '42501',
    'cannot SET ACCESS METHOD on protected table regress_ha_ddl.audit',
    'SET ACCESS METHOD heap is refused');
SELECT is(regress_ha_ddl.fingerprint(), (SELECT fp FROM regress_ha_ddl.baseline),
    'after the storage/column/name statements: table, rows, triggers and registry row unchanged');

-- Inheritance and partitioning -------------------------------------------------
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit INHERIT regress_ha_ddl.plain_parent', '42501',
    'cannot INHERIT on protected table regress_ha_ddl.audit',
    'INHERIT (protected table becomes a child) is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit NO INHERIT regress_ha_ddl.plain_parent', '42501',
    'cannot NO INHERIT on protected table regress_ha_ddl.audit',
    'NO INHERIT is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.plain_child INHERIT regress_ha_ddl.audit', '42501',
    'cannot INHERIT from protected table regress_ha_ddl.audit',
    'another table may not INHERIT from the protected table');
SELECT throws_ok('CREATE TABLE regress_ha_ddl.new_child () INHERITS (regress_ha_ddl.audit)', '42501',
    'cannot create a table that inherits from protected table regress_ha_ddl.audit',
    'CREATE TABLE ... INHERITS (protected table) is refused');
SELECT throws_ok($$ALTER TABLE regress_ha_ddl.parted ATTACH PARTITION regress_ha_ddl.audit
      FOR VALUES FROM (0) TO (1000)$$, '42501',
    'cannot ATTACH PARTITION protected table regress_ha_ddl.audit',
    'ATTACH PARTITION of the protected table to a partitioned parent is refused');
SELECT is(regress_ha_ddl.fingerprint(), (SELECT fp FROM regress_ha_ddl.baseline),
    'after the inheritance/partition statements: table, rows, triggers and registry row unchanged');
SELECT is((SELECT count(*) FROM pg_inherits
            WHERE inhparent IN ('regress_ha_ddl.plain_parent'::regclass, 'regress_ha_ddl.parted'::regclass)
               OR inhrelid = 'regress_ha_ddl.plain_child'::regclass),
    0::bigint, 'no inheritance or partition link was created');

-- ADD COLUMN that would write into existing rows -------------------------------
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN c int DEFAULT 0', '42501',
    'cannot ADD COLUMN "c" with a default value to protected table regress_ha_ddl.audit',
    'ADD COLUMN with DEFAULT is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN c timestamptz DEFAULT clock_timestamp()', '42501',
    'cannot ADD COLUMN "c" with a default value to protected table regress_ha_ddl.audit',
    'ADD COLUMN with a volatile DEFAULT (table rewrite) is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN c serial', '42501',
    'cannot ADD COLUMN "c" with a default value to protected table regress_ha_ddl.audit',
    'ADD COLUMN serial is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN c bigserial', '42501',
    'cannot ADD COLUMN "c" with a default value to protected table regress_ha_ddl.audit',
    'ADD COLUMN bigserial is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN c int GENERATED ALWAYS AS (id * 2) STORED', '42501',
    'cannot ADD COLUMN "c" with a default value to protected table regress_ha_ddl.audit',
    'ADD COLUMN ... GENERATED ALWAYS AS (...) STORED is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN c int GENERATED ALWAYS AS IDENTITY', '42501',
    'cannot ADD COLUMN "c" with a default value to protected table regress_ha_ddl.audit',
    'ADD COLUMN ... GENERATED ALWAYS AS IDENTITY is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN c int GENERATED BY DEFAULT AS IDENTITY', '42501',
    'cannot ADD COLUMN "c" with a default value to protected table regress_ha_ddl.audit',
    'ADD COLUMN ... GENERATED BY DEFAULT AS IDENTITY is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN c regress_ha_ddl.dom_default', '42501',
    'cannot ADD COLUMN "c" with a default value to protected table regress_ha_ddl.audit',
    'ADD COLUMN of a domain that has a default is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN c regress_ha_ddl.dom_outer', '42501',
    'cannot ADD COLUMN "c" with a default value to protected table regress_ha_ddl.audit',
    'ADD COLUMN of a domain over a domain that has a default is refused');
SELECT throws_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN a int, ADD COLUMN b int DEFAULT 1', '42501',
    'cannot ADD COLUMN "b" with a default value to protected table regress_ha_ddl.audit',
    'a harmless ADD COLUMN does not carry a defaulted one in the same statement');
SELECT is(regress_ha_ddl.fingerprint(), (SELECT fp FROM regress_ha_ddl.baseline),
    'after the ADD COLUMN statements: table, rows, triggers and registry row unchanged');

-- After all refusals: the guard triggers, in detail ---------------------------
SELECT results_eq(
    $$SELECT tgname::text COLLATE "default", tgenabled::text, tgfoid::regprocedure::text, tgtype::int
        FROM pg_trigger WHERE tgrelid = 'regress_ha_ddl.audit'::regclass ORDER BY tgname$$,
    $$VALUES ('hipaa_audit_chain', 'A', 'hipaa_audit.chain_row()', 2 | 4 | 1),
             ('hipaa_audit_guard_row', 'A', 'hipaa_audit.guard_row()', 2 | 8 | 16 | 1),
             ('hipaa_audit_guard_truncate', 'A', 'hipaa_audit.guard_truncate()', 2 | 32)$$,
    'the chain trigger (BEFORE INSERT FOR EACH ROW) and both guard triggers still exist, ENABLE ALWAYS, on their functions');
SELECT results_eq('SELECT id, note FROM regress_ha_ddl.audit ORDER BY id',
    $$VALUES (1, 'first'), (2, 'second'), (3, 'third')$$,
    'all rows are intact after the refusals');
SELECT throws_ok($$UPDATE regress_ha_ddl.audit SET note = 'forged'$$, '42501',
    'cannot UPDATE protected table regress_ha_ddl.audit',
    'the table is still insert-only after the refusals');

-- Allowed DDL and maintenance, rows intact -------------------------------------
SELECT lives_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN extra text',
    'ADD COLUMN nullable without default is allowed');
SELECT lives_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN checked regress_ha_ddl.dom_plain',
    'ADD COLUMN of a domain without a default is allowed');
SELECT results_eq('SELECT id, note, extra, checked::text FROM regress_ha_ddl.audit ORDER BY id',
    $$VALUES (1, 'first', NULL::text, NULL::text), (2, 'second', NULL, NULL), (3, 'third', NULL, NULL)$$,
    'existing rows keep NULL in the added columns');
SELECT lives_ok('ALTER TABLE regress_ha_ddl.audit ADD COLUMN later int, ALTER COLUMN later SET DEFAULT 5',
    'ADD COLUMN then SET DEFAULT in one statement is allowed');
SELECT is((SELECT count(*) FROM regress_ha_ddl.audit WHERE later IS NOT NULL), 0::bigint,
    '... and does not fill existing rows');
SELECT lives_ok('CREATE INDEX audit_id_idx ON regress_ha_ddl.audit (id)', 'CREATE INDEX is allowed');
SELECT lives_ok('CREATE UNIQUE INDEX audit_id_note_idx ON regress_ha_ddl.audit (id, note)',
    'CREATE UNIQUE INDEX is allowed');
SELECT lives_ok('CLUSTER regress_ha_ddl.audit USING audit_id_idx',
    'CLUSTER ... USING (allowed in a transaction for one table) is allowed');
-- (VACUUM cannot run inside a transaction block: VACUUM and VACUUM FULL
-- are in pg_regress 02_insert_and_maintenance.)
SELECT lives_ok('ANALYZE regress_ha_ddl.audit', 'ANALYZE is allowed');
SELECT lives_ok('REINDEX TABLE regress_ha_ddl.audit', 'REINDEX TABLE (in a transaction) is allowed');
SELECT lives_ok('REINDEX INDEX regress_ha_ddl.audit_id_idx', 'REINDEX INDEX is allowed');
SELECT lives_ok('GRANT SELECT, INSERT ON regress_ha_ddl.audit TO regress_ha_ddl_reader', 'GRANT is allowed');
SELECT table_privs_are('regress_ha_ddl', 'audit', 'regress_ha_ddl_reader', ARRAY['INSERT', 'SELECT'],
    '... and took effect');
SELECT lives_ok('REVOKE INSERT ON regress_ha_ddl.audit FROM regress_ha_ddl_reader', 'REVOKE is allowed');
SELECT table_privs_are('regress_ha_ddl', 'audit', 'regress_ha_ddl_reader', ARRAY['SELECT'],
    '... and took effect');
SELECT lives_ok($$COMMENT ON TABLE regress_ha_ddl.audit IS 'audit rows'$$, 'COMMENT ON TABLE is allowed');
SELECT lives_ok($$COMMENT ON COLUMN regress_ha_ddl.audit.note IS 'what happened'$$, 'COMMENT ON COLUMN is allowed');
SELECT is(obj_description('regress_ha_ddl.audit'::regclass, 'pg_class'), 'audit rows', '... table comment set');
SELECT is(col_description('regress_ha_ddl.audit'::regclass, 2), 'what happened', '... column comment set');
SELECT lives_ok($$ALTER TABLE regress_ha_ddl.audit ALTER COLUMN note SET DEFAULT 'n/a'$$,
    'ALTER COLUMN ... SET DEFAULT is allowed');
SELECT lives_ok('INSERT INTO regress_ha_ddl.audit (id) VALUES (4)', '... INSERT still works');
SELECT results_eq('SELECT id, note FROM regress_ha_ddl.audit ORDER BY id',
    $$VALUES (1, 'first'), (2, 'second'), (3, 'third'), (4, 'n/a')$$,
    '... the default fills only the new row');
SELECT lives_ok('ALTER TABLE regress_ha_ddl.audit ALTER COLUMN note DROP DEFAULT',
    'ALTER COLUMN ... DROP DEFAULT is allowed');
SELECT lives_ok('ALTER TABLE regress_ha_ddl.audit ALTER COLUMN note SET STATISTICS 500',
    'ALTER COLUMN ... SET STATISTICS is allowed');
SELECT is((SELECT attstattarget::int FROM pg_attribute
            WHERE attrelid = 'regress_ha_ddl.audit'::regclass AND attname = 'note'),
    500, '... and took effect');
SELECT lives_ok('ALTER TABLE regress_ha_ddl.audit REPLICA IDENTITY FULL',
    'REPLICA IDENTITY FULL is allowed (only affects how UPDATE/DELETE are logged)');
SELECT is((SELECT relreplident::text FROM pg_class WHERE oid = 'regress_ha_ddl.audit'::regclass),
    'f', '... and took effect');

-- User triggers that are not ours
SELECT lives_ok($$CREATE TRIGGER user_trg AFTER INSERT ON regress_ha_ddl.audit
      FOR EACH ROW EXECUTE FUNCTION regress_ha_ddl.noop()$$,
    'CREATE TRIGGER (a user trigger) is allowed');
SELECT lives_ok($$CREATE OR REPLACE TRIGGER user_trg AFTER INSERT ON regress_ha_ddl.audit
      FOR EACH STATEMENT EXECUTE FUNCTION regress_ha_ddl.noop()$$,
    'CREATE OR REPLACE TRIGGER of a user trigger is allowed');
SELECT lives_ok('ALTER TABLE regress_ha_ddl.audit DISABLE TRIGGER user_trg',
    'DISABLE TRIGGER of a user trigger is allowed');
SELECT is((SELECT tgenabled::text FROM pg_trigger
            WHERE tgrelid = 'regress_ha_ddl.audit'::regclass AND tgname = 'user_trg'),
    'D', '... and took effect');
SELECT lives_ok('ALTER TABLE regress_ha_ddl.audit ENABLE TRIGGER user_trg',
    'ENABLE TRIGGER of a user trigger is allowed');
SELECT lives_ok('ALTER TRIGGER user_trg ON regress_ha_ddl.audit RENAME TO user_trg2',
    'ALTER TRIGGER ... RENAME of a user trigger is allowed');
SELECT lives_ok('DROP TRIGGER user_trg2 ON regress_ha_ddl.audit',
    'DROP TRIGGER of a user trigger is allowed');
SELECT lives_ok('INSERT INTO regress_ha_ddl.audit (id, note) VALUES (5, $$fifth$$)',
    'INSERT works after the allowed DDL');
SELECT lives_ok('DROP INDEX regress_ha_ddl.audit_id_note_idx', 'DROP INDEX is allowed');

-- Final state ------------------------------------------------------------------
SELECT results_eq(
    $$SELECT tgname::text COLLATE "default", tgenabled::text FROM pg_trigger
       WHERE tgrelid = 'regress_ha_ddl.audit'::regclass ORDER BY tgname$$,
    $$VALUES ('hipaa_audit_chain', 'A'), ('hipaa_audit_guard_row', 'A'), ('hipaa_audit_guard_truncate', 'A')$$,
    'after the allowed DDL only the chain trigger and the two guard triggers remain, all ENABLE ALWAYS');
SELECT results_eq('SELECT id, note FROM regress_ha_ddl.audit ORDER BY id',
    $$VALUES (1, 'first'), (2, 'second'), (3, 'third'), (4, 'n/a'), (5, 'fifth')$$,
    'after the allowed DDL the old rows are intact and the new ones are there');
SELECT ok(hipaa_audit.is_protected('regress_ha_ddl.audit'), 'the table is still protected');
SELECT results_eq(
    $$SELECT ok, rows_checked, problems, first_problem FROM hipaa_audit.verify('regress_ha_ddl.audit')$$,
    $$VALUES (true, 5::bigint, 0::bigint, NULL::text)$$,
    'after the refusals, ADD COLUMN, SET DEFAULT, CLUSTER, REINDEX and two inserts the chain still verifies');
SELECT is_empty($$SELECT * FROM hipaa_audit.verify_problems('regress_ha_ddl.audit')$$,
    '... verify_problems() reports nothing');
SELECT results_eq(
    $$SELECT relid, retention, chains FROM hipaa_audit.registry
       WHERE relid = 'regress_ha_ddl.audit'::regclass$$,
    $$VALUES ('regress_ha_ddl.audit'::regclass, '6 years'::interval, 4)$$,
    'its registry row is unchanged');
SELECT throws_ok('DELETE FROM regress_ha_ddl.audit WHERE id = 1', '42501',
    'cannot DELETE FROM protected table regress_ha_ddl.audit',
    'DELETE is still refused');
SELECT throws_ok('TRUNCATE regress_ha_ddl.audit', '42501',
    'cannot TRUNCATE protected table regress_ha_ddl.audit',
    'TRUNCATE is still refused');

SELECT * FROM finish();
ROLLBACK;
