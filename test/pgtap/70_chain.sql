-- 70_chain.sql: the per-row SHA-256 hash chain (docs/encoding.md).
--
-- protect() adds the eight chain columns, the hipaa_audit_chain trigger and
-- the unique (audit_chain, audit_seq) index, and chains the rows a table
-- already had.  Every INSERT is stamped by the server, whatever the client
-- sent; positions stay consecutive through savepoints, PL/pgSQL exception
-- blocks and ON CONFLICT DO NOTHING; the hash does not depend on session
-- settings; verify() and verify_problems() agree with an independent
-- recomputation in SQL of the documented encoding.
--
-- Everything here runs in one transaction, so every table is written by one
-- writer and uses one chain.  Several chains, concurrent writers, restarts,
-- tampering with the data files, PREPARE TRANSACTION and COPY are covered by
-- the TAP tests (test/t) and pg_regress; protect() in a non-UTF8 database
-- needs a database of its own and is skipped here.
--
-- The last section tries the ways around the chain found while writing this
-- file (renaming a trigger past hipaa_audit_chain, DROP EXPRESSION, changing
-- a composite type or an enum label a protected column uses); each must be
-- refused.
BEGIN;
SELECT plan(154);

SET LOCAL client_min_messages = warning;

-- ---------------------------------------------------------------------------
-- Fixtures
-- ---------------------------------------------------------------------------
CREATE ROLE regress_ha_chain_owner NOLOGIN;
CREATE ROLE regress_ha_chain_app NOLOGIN;
CREATE ROLE regress_ha_chain_definer NOLOGIN;
CREATE ROLE regress_ha_chain_nobody NOLOGIN;
CREATE ROLE regress_ha_chain_reader NOLOGIN;
CREATE ROLE regress_ha_chain_auditor NOLOGIN IN ROLE hipaa_audit_auditor;
CREATE ROLE regress_ha_chain_admin NOLOGIN IN ROLE hipaa_audit_admin;
CREATE ROLE regress_ha_chain_inserter NOLOGIN;

CREATE SCHEMA regress_ha_chain;
GRANT USAGE ON SCHEMA regress_ha_chain TO PUBLIC;

CREATE TYPE regress_ha_chain.kind AS ENUM ('read', 'write');
CREATE TYPE regress_ha_chain.pair AS (a int, b text);
CREATE TYPE regress_ha_chain.tagged AS (a int, k regress_ha_chain.kind);
CREATE DOMAIN regress_ha_chain.code AS text CHECK (VALUE ~ '^[A-Z]+$');
CREATE DOMAIN regress_ha_chain.cash AS money;

-- Where clock_timestamp() is recorded around inserts.
CREATE TABLE regress_ha_chain.clock (label text PRIMARY KEY, at timestamptz NOT NULL);
-- Snapshots of tables before refused statements.
CREATE TABLE regress_ha_chain.baseline (label text PRIMARY KEY, fp text);
-- What INSERT ... RETURNING returned.
CREATE TABLE regress_ha_chain.returned (id int, audit_chain int, audit_seq bigint, audit_hash bytea);

-- One field of the canonical encoding: name length, name, value length,
-- value (all lengths unsigned 32-bit big-endian).  NULL for a NULL value,
-- which the encoding leaves out.
CREATE FUNCTION regress_ha_chain.field(colname text, val bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT int4send(octet_length(convert_to(colname, 'UTF8'))) || convert_to(colname, 'UTF8')
           || int4send(octet_length(val)) || val
$$;

-- The fixed header: domain prefix with its zero byte, table identity, chain,
-- position, previous hash.
CREATE FUNCTION regress_ha_chain.header(rel regclass, chain int, seq bigint, prev bytea) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to('hipaa_audit/row/v1', 'UTF8') || '\x00'::bytea
           || uuid_send(r.table_uuid) || int4send(chain) || int8send(seq) || prev
      FROM hipaa_audit.registry r WHERE r.relid = rel
$$;

-- An independent recomputation of every row hash of a table, from the
-- documented encoding alone: the header, then every column in attnum order
-- except dropped and generated columns and audit_chain, audit_seq,
-- audit_prev_hash, audit_hash; NULLs left out; the values' binary send
-- output, with float NaNs normalised.  "skip" leaves one more column out.
-- Text types are sent in the client encoding: call it with UTF8.
CREATE FUNCTION regress_ha_chain.recompute(rel regclass, skip name DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    a     record;
    parts text[] := ARRAY[]::text[];
    val   text;
    bad   bigint;
    total bigint;
BEGIN
    FOR a IN
        SELECT att.attname,
               coalesce(nullif(ty.typbasetype, 0), ty.oid) AS base,
               (SELECT b.typsend FROM pg_type b
                 WHERE b.oid = coalesce(nullif(ty.typbasetype, 0), ty.oid)) AS send
          FROM pg_attribute att JOIN pg_type ty ON ty.oid = att.atttypid
         WHERE att.attrelid = rel AND att.attnum > 0 AND NOT att.attisdropped
           AND att.attgenerated = ''
           AND att.attname NOT IN ('audit_chain', 'audit_seq', 'audit_prev_hash', 'audit_hash')
           AND att.attname IS DISTINCT FROM skip
         ORDER BY att.attnum
    LOOP
        IF a.base = 'float8'::regtype THEN
            val := format($$CASE WHEN %1$I = 'NaN' THEN '\x7ff8000000000000'::bytea ELSE float8send(%1$I) END$$, a.attname);
        ELSIF a.base = 'float4'::regtype THEN
            val := format($$CASE WHEN %1$I = 'NaN' THEN '\x7fc00000'::bytea ELSE float4send(%1$I) END$$, a.attname);
        ELSE
            val := format('%s(%I)', a.send::text, a.attname);
        END IF;
        parts := parts || format('coalesce(regress_ha_chain.field(%L, %s), ''''::bytea)', a.attname, val);
    END LOOP;
    EXECUTE format($q$SELECT count(*) FILTER (WHERE audit_hash IS DISTINCT FROM
                              sha256(regress_ha_chain.header(%L, audit_chain, audit_seq, audit_prev_hash) || %s)),
                            count(*)
                       FROM %s$q$, rel, array_to_string(parts, ' || '), rel)
       INTO bad, total;
    RETURN format('%s of %s rows differ', bad, total);
END
$fn$;

-- The links of every chain, read with plain SQL: positions 1, 2, 3, ...,
-- each audit_prev_hash the previous row's audit_hash (32 zero bytes first),
-- every hash 32 bytes.
CREATE FUNCTION regress_ha_chain.links(rel regclass) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    r text;
BEGIN
    EXECUTE format($q$
        SELECT format('rows=%%s chains=%%s consecutive=%%s linked=%%s hashes=%%s',
                      count(*), count(DISTINCT audit_chain),
                      coalesce(bool_and(audit_seq = rn), true)::text,
                      coalesce(bool_and(audit_prev_hash = coalesce(prev, decode(repeat('00', 32), 'hex'))), true)::text,
                      coalesce(bool_and(octet_length(audit_hash) = 32 AND octet_length(audit_prev_hash) = 32), true)::text)
          FROM (SELECT audit_chain, audit_seq, audit_prev_hash, audit_hash,
                       row_number() OVER w AS rn, lag(audit_hash) OVER w AS prev
                  FROM %s WINDOW w AS (PARTITION BY audit_chain ORDER BY audit_seq)) x$q$, rel)
       INTO r;
    RETURN r;
END
$fn$;

-- verify() as one line.
CREATE FUNCTION regress_ha_chain.vsum(rel regclass) RETURNS text
LANGUAGE sql AS $$
    SELECT format('ok=%s rows_checked=%s chains=%s problems=%s first_problem=%s',
                  ok::text, rows_checked, chains, problems, coalesce(first_problem, '<null>'))
      FROM hipaa_audit.verify(rel)
$$;

-- Everything a refused statement must leave alone, as one text value.
CREATE FUNCTION regress_ha_chain.fp(tbl text) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    rel  regclass := to_regclass(tbl);
    rows text;
BEGIN
    IF rel IS NULL THEN
        RETURN tbl || ' is gone';
    END IF;
    EXECUTE format('SELECT md5(string_agg(t::text, %L ORDER BY t::text)) FROM %s t', ',', rel) INTO rows;
    RETURN concat_ws(E'\n',
        'rel ' || rel::text,
        (SELECT 'cols ' || string_agg(format('%s:%s:%s:%s', attname, format_type(atttypid, atttypmod),
                                             attnotnull, atthasdef), ',' ORDER BY attnum)
           FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped),
        'rows ' || coalesce(rows, 'none'),
        (SELECT 'indexes ' || string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY indexrelid::regclass::text)
           FROM pg_index WHERE indrelid = rel),
        (SELECT 'triggers ' || string_agg(format('%s:%s:%s', tgname, tgenabled, tgfoid::regproc), ','
                                          ORDER BY tgname)
           FROM pg_trigger WHERE tgrelid = rel),
        (SELECT 'registry ' || string_agg(format('%s:%s:%s', table_uuid, retention, chains), ',')
           FROM hipaa_audit.registry WHERE relid = rel),
        'protected ' || hipaa_audit.is_protected(rel));
END
$fn$;

CREATE FUNCTION regress_ha_chain.upper_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.note := upper(NEW.note);
    RETURN NEW;
END
$$;
-- A trigger that fires before hipaa_audit_chain and tries to forge its columns.
CREATE FUNCTION regress_ha_chain.forge_chain_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.audit_seq := 999;
    NEW.audit_role := 'mallory';
    NEW.audit_hash := '\x00'::bytea;
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------------------
-- protect(): the chain columns, the chain index, the chain trigger, and the
-- rows the table already had.  The owner protects the table.
-- ---------------------------------------------------------------------------
CREATE TABLE regress_ha_chain.t (id int NOT NULL, note text);
INSERT INTO regress_ha_chain.t VALUES (1, 'before protect one'), (2, 'before protect two');
ALTER TABLE regress_ha_chain.t OWNER TO regress_ha_chain_owner;
SET ROLE regress_ha_chain_owner;
SELECT hipaa_audit.protect('regress_ha_chain.t', '6 years', 4);
RESET ROLE;

SELECT results_eq(
    $$SELECT attname::text COLLATE "default", format_type(atttypid, atttypmod), attnotnull, atthasdef
        FROM pg_attribute
       WHERE attrelid = 'regress_ha_chain.t'::regclass AND attnum > 0 AND NOT attisdropped
       ORDER BY attnum$$,
    $$VALUES ('id', 'integer', true, false), ('note', 'text', false, false),
             ('audit_chain', 'integer', true, false), ('audit_seq', 'bigint', true, false),
             ('audit_at', 'timestamp with time zone', true, false),
             ('audit_session_role', 'text', true, false), ('audit_role', 'text', true, false),
             ('audit_client', 'inet', false, false),
             ('audit_prev_hash', 'bytea', true, false), ('audit_hash', 'bytea', true, false)$$,
    'protect() appends the eight chain columns: names, order, types, NOT NULL (all but audit_client), no defaults');
SELECT results_eq(
    $$SELECT pg_get_indexdef(indexrelid), indisunique, indisvalid, indpred IS NULL, indisprimary
        FROM pg_index WHERE indrelid = 'regress_ha_chain.t'::regclass ORDER BY indisunique DESC$$,
    $$VALUES ('CREATE UNIQUE INDEX t_audit_chain_audit_seq_idx ON regress_ha_chain.t USING btree (audit_chain, audit_seq)',
              true, true, true, false),
             ('CREATE INDEX t_audit_at_idx ON regress_ha_chain.t USING brin (audit_at) WITH (autosummarize=''on'')',
              false, true, true, false)$$,
    'protect() creates one unique btree index on (audit_chain, audit_seq), without predicate, and a BRIN index on audit_at');
SELECT results_eq(
    $$SELECT tgname::text COLLATE "default", tgenabled::text, tgfoid::regprocedure::text, tgtype::int, tgisinternal
        FROM pg_trigger WHERE tgrelid = 'regress_ha_chain.t'::regclass ORDER BY tgname$$,
    $$VALUES ('hipaa_audit_chain', 'A', 'hipaa_audit.chain_row()', 2 | 4 | 1, false),
             ('hipaa_audit_guard_row', 'A', 'hipaa_audit.guard_row()', 2 | 8 | 16 | 1, false),
             ('hipaa_audit_guard_truncate', 'A', 'hipaa_audit.guard_truncate()', 2 | 32, false)$$,
    'hipaa_audit_chain is a BEFORE INSERT FOR EACH ROW trigger, ENABLE ALWAYS, on hipaa_audit.chain_row()');
SELECT results_eq(
    $$SELECT chains, retention FROM hipaa_audit.registry WHERE relid = 'regress_ha_chain.t'::regclass$$,
    $$VALUES (4, '6 years'::interval)$$,
    'the registry row records 4 chains');

-- Rows that existed before protect() -----------------------------------------
SELECT results_eq(
    $$SELECT audit_seq, id, note FROM regress_ha_chain.t ORDER BY audit_seq$$,
    $$VALUES (1::bigint, 1, 'before protect one'), (2::bigint, 2, 'before protect two')$$,
    'rows that existed before protect() are chained, in their physical order, from position 1');
SELECT is(regress_ha_chain.links('regress_ha_chain.t'),
    'rows=2 chains=1 consecutive=true linked=true hashes=true',
    '... linked: the first row''s audit_prev_hash is 32 zero bytes, the second''s is the first''s audit_hash');
SELECT is((SELECT audit_prev_hash FROM regress_ha_chain.t WHERE audit_seq = 1), decode(repeat('00', 32), 'hex'),
    '... audit_prev_hash of position 1 is exactly 32 zero bytes');
SELECT results_eq(
    $$SELECT DISTINCT audit_session_role COLLATE "default", audit_role COLLATE "default"
        FROM regress_ha_chain.t$$,
    $$VALUES (session_user::text COLLATE "default", 'regress_ha_chain_owner'::text COLLATE "default")$$,
    '... stamped with the session user, and with the role that called protect() as audit_role');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.t'),
    'ok=true rows_checked=2 chains=1 problems=0 first_problem=<null>',
    '... and verify()');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.t'), '0 of 2 rows differ',
    '... and their hashes are what docs/encoding.md says (recomputed in SQL)');

-- Identity and stored generated columns survive the re-insert; a user's
-- BEFORE INSERT trigger is not fired by it.
CREATE TABLE regress_ha_chain.ident (
    id   int GENERATED ALWAYS AS IDENTITY,
    note text,
    tens int GENERATED ALWAYS AS (id * 10) STORED
);
INSERT INTO regress_ha_chain.ident (note) VALUES ('one'), ('two');
CREATE TRIGGER a_upper BEFORE INSERT ON regress_ha_chain.ident
    FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note();
SELECT hipaa_audit.protect('regress_ha_chain.ident');
INSERT INTO regress_ha_chain.ident (note) VALUES ('three');
SELECT results_eq(
    $$SELECT audit_seq, id, note, tens FROM regress_ha_chain.ident ORDER BY audit_seq$$,
    $$VALUES (1::bigint, 1, 'one', 10), (2::bigint, 2, 'two', 20), (3::bigint, 3, 'THREE', 30)$$,
    'protect() keeps identity values and recomputes generated columns of existing rows, without firing the owner''s triggers; later inserts fire them');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.ident'),
    'ok=true rows_checked=3 chains=1 problems=0 first_problem=<null>',
    '... verify() is ok');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.ident'), '0 of 3 rows differ',
    '... and the stored generated column is not part of the hash (recomputed in SQL without it)');

-- ---------------------------------------------------------------------------
-- Client-supplied chain values are overwritten.
-- ---------------------------------------------------------------------------
INSERT INTO regress_ha_chain.clock VALUES ('before forged', clock_timestamp());
INSERT INTO regress_ha_chain.t (id, note, audit_chain, audit_seq, audit_at, audit_session_role,
                                audit_role, audit_client, audit_prev_hash, audit_hash)
VALUES (3, 'forged header', 99, 1, '2000-01-01 00:00:00+00', 'mallory', 'mallory', '203.0.113.7',
        decode(repeat('ab', 32), 'hex'), decode(repeat('cd', 32), 'hex'));
INSERT INTO regress_ha_chain.clock VALUES ('after forged', clock_timestamp());
-- A replay: a whole existing row, chain columns included.
INSERT INTO regress_ha_chain.t SELECT * FROM regress_ha_chain.t WHERE id = 1;
-- NULL in NOT NULL chain columns, and a NULL user column.
INSERT INTO regress_ha_chain.t (id, note, audit_chain, audit_seq, audit_hash) VALUES (5, 'nulls', NULL, NULL, NULL);
INSERT INTO regress_ha_chain.t (id, note) VALUES (6, NULL);

SELECT results_eq(
    $$SELECT audit_seq, id, note FROM regress_ha_chain.t WHERE audit_seq > 2 ORDER BY audit_seq$$,
    $$VALUES (3::bigint, 3, 'forged header'), (4::bigint, 1, 'before protect one'),
             (5::bigint, 5, 'nulls'), (6::bigint, 6, NULL)$$,
    'forged, replayed and NULL chain values: every row gets the next position');
SELECT results_eq(
    $$SELECT audit_chain BETWEEN 0 AND 3, audit_seq, audit_session_role COLLATE "default",
             audit_role COLLATE "default", audit_client IS NOT DISTINCT FROM inet_client_addr(),
             audit_prev_hash = (SELECT audit_hash FROM regress_ha_chain.t WHERE audit_seq = 2),
             octet_length(audit_hash), audit_hash <> decode(repeat('cd', 32), 'hex')
        FROM regress_ha_chain.t WHERE id = 3$$,
    $$VALUES (true, 3::bigint, session_user::text COLLATE "default", current_user::text COLLATE "default", true, true, 32, true)$$,
    'the forged row: chain, position, roles, client, previous hash and hash are the server''s, not the client''s');
SELECT ok((SELECT audit_at FROM regress_ha_chain.t WHERE id = 3)
          BETWEEN (SELECT at FROM regress_ha_chain.clock WHERE label = 'before forged')
              AND (SELECT at FROM regress_ha_chain.clock WHERE label = 'after forged'),
    'the forged row''s audit_at is the server clock at the insert, not 2000-01-01');
SELECT ok((SELECT bool_and(audit_at >= prev_at) AND min(audit_at) >= now()
             FROM (SELECT audit_at, lag(audit_at, 1, '-infinity') OVER (ORDER BY audit_seq) AS prev_at
                     FROM regress_ha_chain.t) x),
    'audit_at is clock_timestamp(): never before the transaction start, never decreasing along the chain');
SELECT is((SELECT count(DISTINCT audit_chain) FROM regress_ha_chain.t), 1::bigint,
    'a transaction writes all its rows of a table to one chain');
SELECT is((SELECT count(*) FROM regress_ha_chain.t WHERE audit_client IS DISTINCT FROM inet_client_addr()),
    0::bigint, 'audit_client is the connection''s client address for every row');
SELECT is(regress_ha_chain.links('regress_ha_chain.t'),
    'rows=6 chains=1 consecutive=true linked=true hashes=true',
    'the chain is consecutive and linked after the forgeries');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.t'), '0 of 6 rows differ',
    '... every hash matches the recomputation (a NULL column is left out)');

-- An earlier-sorting trigger of the user cannot forge the chain columns either.
CREATE TABLE regress_ha_chain.trg (id int, note text);
SELECT hipaa_audit.protect('regress_ha_chain.trg');
CREATE TRIGGER a_upper BEFORE INSERT ON regress_ha_chain.trg
    FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note();
CREATE TRIGGER "Zforge" BEFORE INSERT ON regress_ha_chain.trg
    FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.forge_chain_columns();
INSERT INTO regress_ha_chain.trg VALUES (1, 'changed by a_upper'), (2, 'second');
SELECT results_eq(
    $$SELECT audit_seq, id, note, audit_role COLLATE "default", octet_length(audit_hash)
        FROM regress_ha_chain.trg ORDER BY audit_seq$$,
    $$VALUES (1::bigint, 1, 'CHANGED BY A_UPPER', current_user::text COLLATE "default", 32),
             (2::bigint, 2, 'SECOND', current_user::text COLLATE "default", 32)$$,
    'BEFORE INSERT triggers that sort before hipaa_audit_chain change the row before it is hashed; their chain values are overwritten');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.trg'), '0 of 2 rows differ',
    '... the hash covers the row as the earlier trigger left it');

-- ---------------------------------------------------------------------------
-- audit_session_role and audit_role under SET ROLE, SECURITY DEFINER and
-- SET SESSION AUTHORIZATION.
-- ---------------------------------------------------------------------------
GRANT INSERT ON regress_ha_chain.t TO regress_ha_chain_app, regress_ha_chain_definer;
CREATE FUNCTION regress_ha_chain.definer_insert(i int, n text) RETURNS void
LANGUAGE sql SECURITY DEFINER AS 'INSERT INTO regress_ha_chain.t (id, note) VALUES (i, n)';
ALTER FUNCTION regress_ha_chain.definer_insert(int, text) OWNER TO regress_ha_chain_definer;

SET ROLE regress_ha_chain_app;
INSERT INTO regress_ha_chain.t (id, note, audit_session_role, audit_role)
VALUES (7, 'as app after SET ROLE', 'postgres', 'postgres');
SELECT regress_ha_chain.definer_insert(8, 'through a SECURITY DEFINER function');
RESET ROLE;
SET SESSION AUTHORIZATION regress_ha_chain_app;
INSERT INTO regress_ha_chain.t (id, note) VALUES (9, 'after SET SESSION AUTHORIZATION');
RESET SESSION AUTHORIZATION;

SELECT results_eq(
    $$SELECT id, audit_session_role COLLATE "default", audit_role COLLATE "default"
        FROM regress_ha_chain.t WHERE id IN (7, 8, 9) ORDER BY audit_seq$$,
    $$VALUES (7, session_user::text COLLATE "default", 'regress_ha_chain_app'),
             (8, session_user::text COLLATE "default", 'regress_ha_chain_definer'),
             (9, 'regress_ha_chain_app', 'regress_ha_chain_app')$$,
    'audit_session_role is session_user and audit_role is current_user (SET ROLE, SECURITY DEFINER, SET SESSION AUTHORIZATION)');

-- ---------------------------------------------------------------------------
-- Multi-row INSERT, INSERT ... SELECT, a view, replica mode, RETURNING.
-- ---------------------------------------------------------------------------
INSERT INTO regress_ha_chain.t VALUES (10, 'multi a'), (11, 'multi b'), (12, 'multi c');
INSERT INTO regress_ha_chain.t (id, note) SELECT g, 'select ' || g FROM generate_series(13, 15) g;
CREATE VIEW regress_ha_chain.t_view AS SELECT id, note FROM regress_ha_chain.t;
INSERT INTO regress_ha_chain.t_view VALUES (16, 'through a view');
SET LOCAL session_replication_role = replica;
INSERT INTO regress_ha_chain.t (id, note, audit_seq) VALUES (17, 'replica mode', 1);
RESET session_replication_role;
WITH i AS (INSERT INTO regress_ha_chain.t (id, note, audit_seq) VALUES (18, 'returning', 1)
           RETURNING id, audit_chain, audit_seq, audit_hash)
INSERT INTO regress_ha_chain.returned SELECT * FROM i;

SELECT results_eq(
    $$SELECT audit_seq, id, note FROM regress_ha_chain.t WHERE audit_seq > 6 ORDER BY audit_seq$$,
    $$VALUES (7::bigint, 7, 'as app after SET ROLE'), (8::bigint, 8, 'through a SECURITY DEFINER function'),
             (9::bigint, 9, 'after SET SESSION AUTHORIZATION'),
             (10::bigint, 10, 'multi a'), (11::bigint, 11, 'multi b'), (12::bigint, 12, 'multi c'),
             (13::bigint, 13, 'select 13'), (14::bigint, 14, 'select 14'), (15::bigint, 15, 'select 15'),
             (16::bigint, 16, 'through a view'), (17::bigint, 17, 'replica mode'),
             (18::bigint, 18, 'returning')$$,
    'multi-row INSERT, INSERT ... SELECT, a view and session_replication_role = replica: consecutive positions');
SELECT results_eq(
    $$SELECT r.audit_seq, r.audit_hash = t.audit_hash, r.audit_chain = t.audit_chain
        FROM regress_ha_chain.returned r JOIN regress_ha_chain.t t USING (id)$$,
    $$VALUES (18::bigint, true, true)$$,
    'INSERT ... RETURNING returns the stamped chain values, as stored');
SELECT is(regress_ha_chain.links('regress_ha_chain.t'),
    'rows=18 chains=1 consecutive=true linked=true hashes=true',
    'the chain of regress_ha_chain.t is consecutive and linked');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.t'), '0 of 18 rows differ',
    '... and every hash matches the recomputation');
SELECT results_eq(
    $$SELECT objid::text COLLATE "default", objsubid::int, mode::text COLLATE "default"
        FROM pg_locks
       WHERE locktype = 'advisory' AND pid = pg_backend_pid()
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND classid = 'regress_ha_chain.t'::regclass::oid$$,
    $$SELECT DISTINCT audit_chain::text, 18497, 'ExclusiveLock' FROM regress_ha_chain.t$$,
    'while the transaction holds its chain, pg_locks shows the documented advisory lock');

-- ---------------------------------------------------------------------------
-- Savepoints and PL/pgSQL exception blocks rewind the chain: no hole.
-- ---------------------------------------------------------------------------
CREATE TABLE regress_ha_chain.sp (note text NOT NULL);
SELECT hipaa_audit.protect('regress_ha_chain.sp');

CREATE FUNCTION regress_ha_chain.insert_then_catch() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        INSERT INTO regress_ha_chain.sp VALUES ('caught 1'), ('caught 2');
        RAISE EXCEPTION 'boom after two inserts';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    BEGIN
        INSERT INTO regress_ha_chain.sp VALUES ('block that ends normally');
    EXCEPTION WHEN others THEN
        NULL;
    END;
    BEGIN
        INSERT INTO regress_ha_chain.sp VALUES ('caught 3');
        INSERT INTO regress_ha_chain.sp VALUES (NULL);
    EXCEPTION WHEN not_null_violation THEN
        NULL;
    END;
    INSERT INTO regress_ha_chain.sp VALUES ('after the blocks');
END
$$;
CREATE FUNCTION regress_ha_chain.insert_then_raise() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regress_ha_chain.sp VALUES ('raised 1'), ('raised 2');
    RAISE EXCEPTION 'boom, not caught';
END
$$;

INSERT INTO regress_ha_chain.sp VALUES ('a');
SAVEPOINT s1;
INSERT INTO regress_ha_chain.sp VALUES ('x1'), ('x2');
ROLLBACK TO SAVEPOINT s1;
RELEASE SAVEPOINT s1;
INSERT INTO regress_ha_chain.sp VALUES ('b');
-- Nested: everything under s1 goes, including a released inner savepoint.
SAVEPOINT s1;
INSERT INTO regress_ha_chain.sp VALUES ('y1');
SAVEPOINT s2;
INSERT INTO regress_ha_chain.sp VALUES ('y2');
ROLLBACK TO SAVEPOINT s2;
INSERT INTO regress_ha_chain.sp VALUES ('y3');
SAVEPOINT s3;
INSERT INTO regress_ha_chain.sp VALUES ('y4');
RELEASE SAVEPOINT s3;
ROLLBACK TO SAVEPOINT s1;
RELEASE SAVEPOINT s1;
INSERT INTO regress_ha_chain.sp VALUES ('c');
-- Nested: the outer level keeps its rows, the inner rollback goes.
SAVEPOINT s1;
INSERT INTO regress_ha_chain.sp VALUES ('d');
SAVEPOINT s2;
INSERT INTO regress_ha_chain.sp VALUES ('z1');
ROLLBACK TO SAVEPOINT s2;
INSERT INTO regress_ha_chain.sp VALUES ('e');
RELEASE SAVEPOINT s2;
RELEASE SAVEPOINT s1;
-- First touched two levels down, released into the middle level, rolled back there.
SAVEPOINT s1;
SAVEPOINT s2;
INSERT INTO regress_ha_chain.sp VALUES ('z2');
RELEASE SAVEPOINT s2;
ROLLBACK TO SAVEPOINT s1;
RELEASE SAVEPOINT s1;
INSERT INTO regress_ha_chain.sp VALUES ('f');

SELECT throws_ok($$INSERT INTO regress_ha_chain.sp VALUES ('g1'), (NULL)$$, '23502',
    'null value in column "note" of relation "sp" violates not-null constraint',
    'an INSERT failing on its second row (after both were stamped) is rolled back');
SELECT lives_ok('SELECT regress_ha_chain.insert_then_catch()',
    'a PL/pgSQL function whose exception blocks catch errors raised after inserts');
SELECT throws_ok('SELECT regress_ha_chain.insert_then_raise()', 'P0001', 'boom, not caught',
    'a PL/pgSQL function that inserts and then raises is rolled back');
SELECT lives_ok($$INSERT INTO regress_ha_chain.sp VALUES ('h')$$, 'an INSERT in a subtransaction that is kept');
INSERT INTO regress_ha_chain.sp VALUES ('i');

SELECT results_eq(
    $$SELECT audit_seq, note FROM regress_ha_chain.sp ORDER BY audit_seq$$,
    $$VALUES (1::bigint, 'a'), (2::bigint, 'b'), (3::bigint, 'c'), (4::bigint, 'd'), (5::bigint, 'e'),
             (6::bigint, 'f'), (7::bigint, 'block that ends normally'), (8::bigint, 'after the blocks'),
             (9::bigint, 'h'), (10::bigint, 'i')$$,
    'after savepoint rollbacks (nested, released), failed statements and caught exceptions: exactly the kept rows, at positions 1..10');
SELECT is(regress_ha_chain.links('regress_ha_chain.sp'),
    'rows=10 chains=1 consecutive=true linked=true hashes=true',
    '... linked without a hole');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.sp'),
    'ok=true rows_checked=10 chains=1 problems=0 first_problem=<null>',
    '... verify() is ok');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.sp'), '0 of 10 rows differ',
    '... and every hash matches the recomputation');

-- A chain first taken inside a savepoint that is rolled back.
CREATE TABLE regress_ha_chain.sp_first (note text);
SELECT hipaa_audit.protect('regress_ha_chain.sp_first');
SAVEPOINT s1;
INSERT INTO regress_ha_chain.sp_first VALUES ('rolled back 1'), ('rolled back 2');
ROLLBACK TO SAVEPOINT s1;
RELEASE SAVEPOINT s1;
INSERT INTO regress_ha_chain.sp_first VALUES ('kept');
SELECT results_eq(
    $$SELECT audit_seq, note, audit_prev_hash = decode(repeat('00', 32), 'hex') FROM regress_ha_chain.sp_first$$,
    $$VALUES (1::bigint, 'kept', true)$$,
    'when the first insert ever is rolled back to a savepoint, the next row is position 1 again');

-- ---------------------------------------------------------------------------
-- INSERT ... ON CONFLICT DO NOTHING: skipped rows leave no hole.
-- ---------------------------------------------------------------------------
CREATE TABLE regress_ha_chain.oc (id int PRIMARY KEY, note text);
SELECT hipaa_audit.protect('regress_ha_chain.oc');
INSERT INTO regress_ha_chain.oc VALUES (1, 'one'), (2, 'two');
-- Conflicting rows between new ones.
INSERT INTO regress_ha_chain.oc VALUES (2, 'dup'), (3, 'three'), (1, 'dup'), (4, 'four') ON CONFLICT DO NOTHING;
-- The last row of the statement is skipped.
INSERT INTO regress_ha_chain.oc VALUES (5, 'five'), (2, 'dup') ON CONFLICT DO NOTHING;
INSERT INTO regress_ha_chain.oc VALUES (6, 'six');
-- Every row conflicts.
INSERT INTO regress_ha_chain.oc VALUES (1, 'dup'), (6, 'dup') ON CONFLICT (id) DO NOTHING;
-- A row conflicting with one inserted by the same statement.
INSERT INTO regress_ha_chain.oc VALUES (7, 'seven'), (7, 'seven again') ON CONFLICT DO NOTHING;
-- In a data-modifying CTE, with RETURNING.
WITH i AS (INSERT INTO regress_ha_chain.oc VALUES (8, 'eight'), (3, 'dup') ON CONFLICT DO NOTHING
           RETURNING id, audit_chain, audit_seq, audit_hash)
INSERT INTO regress_ha_chain.returned SELECT * FROM i;
-- Skipped last row, then a savepoint that is rolled back, and the reverse.
INSERT INTO regress_ha_chain.oc VALUES (4, 'dup') ON CONFLICT DO NOTHING;
SAVEPOINT s1;
INSERT INTO regress_ha_chain.oc VALUES (90, 'rolled back');
ROLLBACK TO SAVEPOINT s1;
INSERT INTO regress_ha_chain.oc VALUES (91, 'rolled back'), (5, 'dup') ON CONFLICT DO NOTHING;
ROLLBACK TO SAVEPOINT s1;
RELEASE SAVEPOINT s1;
INSERT INTO regress_ha_chain.oc VALUES (9, 'nine'), (1, 'dup') ON CONFLICT DO NOTHING;
SAVEPOINT s1;
INSERT INTO regress_ha_chain.oc VALUES (10, 'ten') ON CONFLICT DO NOTHING;
RELEASE SAVEPOINT s1;
SELECT lives_ok($$INSERT INTO regress_ha_chain.oc VALUES (2, 'dup'), (11, 'eleven'), (3, 'dup') ON CONFLICT (id) DO NOTHING$$,
    'INSERT ... ON CONFLICT DO NOTHING in a subtransaction');
INSERT INTO regress_ha_chain.oc VALUES (12, 'twelve');

SELECT results_eq(
    $$SELECT audit_seq, id, note FROM regress_ha_chain.oc ORDER BY audit_seq$$,
    $$VALUES (1::bigint, 1, 'one'), (2::bigint, 2, 'two'), (3::bigint, 3, 'three'), (4::bigint, 4, 'four'),
             (5::bigint, 5, 'five'), (6::bigint, 6, 'six'), (7::bigint, 7, 'seven'), (8::bigint, 8, 'eight'),
             (9::bigint, 9, 'nine'), (10::bigint, 10, 'ten'), (11::bigint, 11, 'eleven'),
             (12::bigint, 12, 'twelve')$$,
    'ON CONFLICT DO NOTHING (skipped rows first, between, last, all, same-statement duplicates, in a CTE, around savepoints): positions 1..12');
SELECT results_eq(
    $$SELECT r.audit_seq, r.audit_hash = o.audit_hash
        FROM regress_ha_chain.returned r JOIN regress_ha_chain.oc o USING (id)$$,
    $$VALUES (8::bigint, true)$$,
    '... RETURNING of the CTE returned the row as stored, and nothing for the skipped one');
SELECT is(regress_ha_chain.links('regress_ha_chain.oc'),
    'rows=12 chains=1 consecutive=true linked=true hashes=true',
    '... linked without a hole');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.oc'),
    'ok=true rows_checked=12 chains=1 problems=0 first_problem=<null>',
    '... verify() is ok');
SELECT is_empty($$SELECT * FROM hipaa_audit.verify_problems('regress_ha_chain.oc')$$,
    '... verify_problems() returns nothing');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.oc'), '0 of 12 rows differ',
    '... and every hash matches the recomputation');

-- ---------------------------------------------------------------------------
-- verify() and verify_problems() on intact tables.
-- ---------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT ok, rows_checked = (SELECT count(*) FROM regress_ha_chain.t), problems, first_problem
        FROM hipaa_audit.verify('regress_ha_chain.t')$$,
    $$VALUES (true, true, 0::bigint, NULL::text)$$,
    'verify(): ok, rows_checked = count(*), no problem, first_problem NULL');
SELECT is_empty($$SELECT * FROM hipaa_audit.verify_problems('regress_ha_chain.t')$$,
    'verify_problems() returns no row for an intact table');

CREATE TABLE regress_ha_chain.empty (id int);
SELECT hipaa_audit.protect('regress_ha_chain.empty', '1 year', 2);
SELECT is(regress_ha_chain.vsum('regress_ha_chain.empty'),
    'ok=true rows_checked=0 chains=0 problems=0 first_problem=<null>',
    'verify() of an empty protected table');
SELECT is_empty($$SELECT * FROM hipaa_audit.verify_problems('regress_ha_chain.empty')$$,
    'verify_problems() of an empty protected table');

CREATE TABLE regress_ha_chain.one_chain (id int);
SELECT hipaa_audit.protect('regress_ha_chain.one_chain', '6 years', 1);
INSERT INTO regress_ha_chain.one_chain SELECT generate_series(1, 50);
SELECT results_eq(
    $$SELECT min(audit_chain), max(audit_chain), min(audit_seq), max(audit_seq), count(*)
        FROM regress_ha_chain.one_chain$$,
    $$VALUES (0, 0, 1::bigint, 50::bigint, 50::bigint)$$,
    'with chains => 1 every row is in chain 0');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.one_chain'),
    'ok=true rows_checked=50 chains=1 problems=0 first_problem=<null>',
    '... and verifies');

-- ---------------------------------------------------------------------------
-- The hash does not depend on session settings.
-- ---------------------------------------------------------------------------
CREATE TABLE regress_ha_chain.hs (
    id   int, note text, f8 float8, f4 real, nan8 float8, nan4 real, negzero float8,
    ts timestamptz, tsl timestamp, d date, tm time, tz timetz, iv interval,
    b bytea, n numeric, j jsonb, js json, arr int[], nested text[], e regress_ha_chain.kind,
    c regress_ha_chain.code, p regress_ha_chain.pair
);
SELECT hipaa_audit.protect('regress_ha_chain.hs');
-- The same logical row, typed so that no setting changes how it is read.
CREATE FUNCTION regress_ha_chain.hs_insert(k int) RETURNS void LANGUAGE sql AS $$
INSERT INTO regress_ha_chain.hs VALUES (
    k, 'caf' || chr(233) || U&' \00FC\00DF \2603', '0.1', '3.14159', -'NaN'::float8, -'NaN'::real, '-0',
    '2024-03-04 05:06:07.123456+02', '2024-03-04 05:06:07.123456', '2024-03-04', '05:06:07.5',
    '05:06:07+05:30', 'P1Y2M3DT4H5M6.5S', '\x00ff10'::bytea, '123.4500', '{"b": [1, 2.50], "a": "x"}',
    '{"b": 1,  "a": 2}', '{1,2,3}', ARRAY['caf' || chr(233), NULL], 'write', 'ABC', ROW(7, U&'\00E9t\00E9'))
$$;
SELECT regress_ha_chain.hs_insert(1);                     -- the settings pg_prove runs with
SET LOCAL DateStyle = 'SQL, DMY';
SET LOCAL TimeZone = 'Asia/Kathmandu';
SET LOCAL IntervalStyle = 'sql_standard';
SET LOCAL extra_float_digits = -15;
SET LOCAL bytea_output = 'escape';
SELECT regress_ha_chain.hs_insert(2);
SET LOCAL DateStyle = 'German';
SET LOCAL TimeZone = 'America/St_Johns';
SET LOCAL IntervalStyle = 'postgres_verbose';
SET LOCAL extra_float_digits = 3;
SET LOCAL client_encoding = 'LATIN1';
SELECT regress_ha_chain.hs_insert(3);
SET LOCAL DateStyle = 'Postgres, MDY';
SET LOCAL TimeZone = 'Pacific/Chatham';
SET LOCAL IntervalStyle = 'iso_8601';
SET LOCAL extra_float_digits = 0;
SET LOCAL bytea_output = 'hex';
SELECT regress_ha_chain.hs_insert(4);
SET LOCAL client_encoding = 'UTF8';
SET LOCAL TimeZone = 'UTC';
SELECT regress_ha_chain.hs_insert(5);
RESET DateStyle;
RESET TimeZone;
RESET IntervalStyle;
RESET extra_float_digits;
RESET bytea_output;
SET LOCAL client_encoding = 'UTF8';

SELECT is((SELECT count(DISTINCT textsend(note) || float8send(f8) || float4send(f4) || float8send(nan8)
                     || float4send(nan4) || float8send(negzero) || timestamptz_send(ts) || timestamp_send(tsl)
                     || date_send(d) || time_send(tm) || timetz_send(tz) || interval_send(iv) || byteasend(b)
                     || numeric_send(n) || jsonb_send(j) || json_send(js) || array_send(arr)
                     || array_send(nested) || enum_send(e) || textsend(c) || record_send(p))
             FROM regress_ha_chain.hs),
    1::bigint, 'five inserts under different DateStyle, TimeZone, IntervalStyle, extra_float_digits, bytea_output and client_encoding stored the same values');
SELECT results_eq(
    $$SELECT float8send(nan8), float4send(nan4) FROM regress_ha_chain.hs LIMIT 1$$,
    $$VALUES ('\xfff8000000000000'::bytea, '\xffc00000'::bytea)$$,
    'the NaNs stored have their sign bit set (so the NaN normalisation is exercised)');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.hs'),
    'ok=true rows_checked=5 chains=1 problems=0 first_problem=<null>',
    'verify() is ok for rows inserted under hostile settings');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.hs'), '0 of 5 rows differ',
    '... and every hash is the documented encoding (binary send output, UTF-8 text, NaN normalised)');

SET LOCAL DateStyle = 'SQL, DMY';
SET LOCAL TimeZone = 'Pacific/Chatham';
SET LOCAL IntervalStyle = 'sql_standard';
SET LOCAL extra_float_digits = -15;
SET LOCAL bytea_output = 'escape';
SET LOCAL client_encoding = 'LATIN1';
SELECT is(regress_ha_chain.vsum('regress_ha_chain.hs'),
    'ok=true rows_checked=5 chains=1 problems=0 first_problem=<null>',
    'verify() run under hostile settings (LATIN1 client encoding included) is ok');
SELECT is_empty($$SELECT * FROM hipaa_audit.verify_problems('regress_ha_chain.hs')$$,
    '... and verify_problems() finds nothing');
SELECT results_eq(
    $$SELECT r, (hipaa_audit.verify(r::regclass)).ok
        FROM unnest(ARRAY['regress_ha_chain.t', 'regress_ha_chain.ident', 'regress_ha_chain.trg',
                          'regress_ha_chain.sp', 'regress_ha_chain.oc']) r ORDER BY r$$,
    $$VALUES ('regress_ha_chain.ident', true), ('regress_ha_chain.oc', true), ('regress_ha_chain.sp', true),
             ('regress_ha_chain.t', true), ('regress_ha_chain.trg', true)$$,
    '... as do the other tables of this file');
SELECT is(current_setting('client_encoding'), 'LATIN1', '... (and the client encoding is still LATIN1 afterwards)');
RESET DateStyle;
RESET TimeZone;
RESET IntervalStyle;
RESET extra_float_digits;
RESET bytea_output;
SET LOCAL client_encoding = 'UTF8';

-- ---------------------------------------------------------------------------
-- ADD COLUMN later: old rows still verify, new rows cover the new column.
-- ---------------------------------------------------------------------------
ALTER TABLE regress_ha_chain.t ADD COLUMN extra text;
SELECT is(regress_ha_chain.vsum('regress_ha_chain.t'),
    'ok=true rows_checked=18 chains=1 problems=0 first_problem=<null>',
    'after ADD COLUMN (nullable, no default) the old rows still verify');
INSERT INTO regress_ha_chain.t (id, note, extra) VALUES (19, 'with extra', 'extra value');
INSERT INTO regress_ha_chain.t (id, note, extra) VALUES (20, 'without extra', NULL);
SELECT is(regress_ha_chain.vsum('regress_ha_chain.t'),
    'ok=true rows_checked=20 chains=1 problems=0 first_problem=<null>',
    'rows inserted after ADD COLUMN, with and without a value in it, verify');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.t'), '0 of 20 rows differ',
    '... their hashes include the new column after the chain columns (attnum order)');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.t', 'extra'), '1 of 20 rows differ',
    '... and only the row with a value in it would hash differently without the column');
ALTER TABLE regress_ha_chain.t ADD COLUMN meta jsonb, ADD COLUMN flags int[], ADD COLUMN k regress_ha_chain.kind,
    ADD COLUMN pr regress_ha_chain.pair, ADD COLUMN cd regress_ha_chain.code;
INSERT INTO regress_ha_chain.t (id, note, meta, flags, k, pr, cd)
VALUES (21, 'more columns', '{"k": 1}', '{1,2}', 'read', ROW(1, 'x'), 'XYZ');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.t'),
    'ok=true rows_checked=21 chains=1 problems=0 first_problem=<null>',
    'ADD COLUMN of jsonb, int[], an enum, a composite of built-in types and a domain: everything verifies');
SELECT is(regress_ha_chain.recompute('regress_ha_chain.t'), '0 of 21 rows differ',
    '... and matches the recomputation');

-- ---------------------------------------------------------------------------
-- Refusals: BEFORE INSERT row triggers that would fire after the hash.
-- ---------------------------------------------------------------------------
INSERT INTO regress_ha_chain.baseline VALUES ('trg', regress_ha_chain.fp('regress_ha_chain.trg'));
SELECT throws_ok($$CREATE TRIGGER zz_late BEFORE INSERT ON regress_ha_chain.trg
      FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note()$$, '42501',
    'cannot create BEFORE INSERT trigger "zz_late" on protected table regress_ha_chain.trg',
    'CREATE TRIGGER of a BEFORE INSERT row trigger sorting after hipaa_audit_chain is refused');
SELECT throws_ok($$CREATE TRIGGER hipaa_audit_chain_2 BEFORE INSERT ON regress_ha_chain.trg
      FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note()$$, '42501',
    'cannot create BEFORE INSERT trigger "hipaa_audit_chain_2" on protected table regress_ha_chain.trg',
    '... also one whose name only just sorts after it');
SELECT throws_ok($$CREATE TRIGGER zz_late BEFORE INSERT OR UPDATE ON regress_ha_chain.trg
      FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note()$$, '42501',
    'cannot create BEFORE INSERT trigger "zz_late" on protected table regress_ha_chain.trg',
    '... also BEFORE INSERT OR UPDATE');
SELECT throws_ok($$CREATE OR REPLACE TRIGGER zz_late BEFORE INSERT ON regress_ha_chain.trg
      FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note()$$, '42501',
    'cannot create BEFORE INSERT trigger "zz_late" on protected table regress_ha_chain.trg',
    '... also CREATE OR REPLACE TRIGGER');
SELECT is(regress_ha_chain.fp('regress_ha_chain.trg'), (SELECT fp FROM regress_ha_chain.baseline WHERE label = 'trg'),
    '... the table, its rows, triggers, index and registry row are unchanged');
SELECT lives_ok($$CREATE TRIGGER zz_after AFTER INSERT ON regress_ha_chain.trg
      FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note()$$,
    'an AFTER INSERT row trigger sorting after hipaa_audit_chain is allowed');
SELECT lives_ok($$CREATE TRIGGER zz_stmt BEFORE INSERT ON regress_ha_chain.trg
      FOR EACH STATEMENT EXECUTE FUNCTION regress_ha_chain.upper_note()$$,
    'a BEFORE INSERT statement trigger sorting after hipaa_audit_chain is allowed');
SELECT lives_ok($$CREATE TRIGGER hipaa_audit_chaim BEFORE INSERT ON regress_ha_chain.trg
      FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note()$$,
    'a BEFORE INSERT row trigger whose name sorts just before hipaa_audit_chain is allowed');
SELECT lives_ok($$INSERT INTO regress_ha_chain.trg VALUES (3, 'third')$$, '... and inserts still work');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.trg'),
    'ok=true rows_checked=3 chains=1 problems=0 first_problem=<null>',
    '... and verify');

CREATE TABLE regress_ha_chain.late (id int, note text);
INSERT INTO regress_ha_chain.late VALUES (1, 'late');
CREATE TRIGGER zz_late BEFORE INSERT ON regress_ha_chain.late
    FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note();
INSERT INTO regress_ha_chain.baseline VALUES ('late', regress_ha_chain.fp('regress_ha_chain.late'));
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.late')$$, '55000',
    'cannot protect regress_ha_chain.late: its BEFORE INSERT trigger "zz_late" would fire after the hash is computed',
    'protect() refuses a table with a BEFORE INSERT row trigger sorting after hipaa_audit_chain');
SELECT is(regress_ha_chain.fp('regress_ha_chain.late'), (SELECT fp FROM regress_ha_chain.baseline WHERE label = 'late'),
    '... and changes nothing: no chain column, trigger, index or registry row; the rows as they were');

CREATE TABLE regress_ha_chain.late_ok (id int, note text);
INSERT INTO regress_ha_chain.late_ok VALUES (1, 'kept as it was');
CREATE TRIGGER zz_after AFTER INSERT ON regress_ha_chain.late_ok
    FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note();
CREATE TRIGGER zz_stmt BEFORE INSERT ON regress_ha_chain.late_ok
    FOR EACH STATEMENT EXECUTE FUNCTION regress_ha_chain.upper_note();
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_chain.late_ok')$$,
    'protect() accepts later-sorting AFTER row and BEFORE statement triggers');

-- ---------------------------------------------------------------------------
-- Refusals: the chain index.
-- ---------------------------------------------------------------------------
INSERT INTO regress_ha_chain.baseline VALUES ('t', regress_ha_chain.fp('regress_ha_chain.t'));
SELECT throws_ok('DROP INDEX regress_ha_chain.t_audit_chain_audit_seq_idx', '42501',
    'cannot DROP INDEX regress_ha_chain.t_audit_chain_audit_seq_idx of protected table regress_ha_chain.t',
    'DROP INDEX of the chain index of a table with rows is refused');
SELECT throws_ok('DROP INDEX IF EXISTS regress_ha_chain.t_audit_chain_audit_seq_idx CASCADE', '42501',
    'cannot DROP INDEX regress_ha_chain.t_audit_chain_audit_seq_idx of protected table regress_ha_chain.t',
    'DROP INDEX IF EXISTS ... CASCADE too');
SELECT is(regress_ha_chain.fp('regress_ha_chain.t'), (SELECT fp FROM regress_ha_chain.baseline WHERE label = 't'),
    '... the index, the table and its rows are unchanged');
SELECT lives_ok('REINDEX INDEX regress_ha_chain.t_audit_chain_audit_seq_idx', 'REINDEX of the chain index is allowed');
SELECT lives_ok('CLUSTER regress_ha_chain.t USING t_audit_chain_audit_seq_idx', 'CLUSTER on the chain index is allowed');
SELECT lives_ok('CREATE INDEX t_seq_idx ON regress_ha_chain.t (audit_seq)', 'other indexes on chain columns are allowed');
SELECT lives_ok('DROP INDEX regress_ha_chain.t_seq_idx', '... and may be dropped');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.t'),
    'ok=true rows_checked=21 chains=1 problems=0 first_problem=<null>',
    '... and the table still verifies');

-- ---------------------------------------------------------------------------
-- Refusals: ADD COLUMN of a type that cannot be hashed canonically.
-- ---------------------------------------------------------------------------
DELETE FROM regress_ha_chain.baseline WHERE label = 't';
INSERT INTO regress_ha_chain.baseline VALUES ('t', regress_ha_chain.fp('regress_ha_chain.t'));
SELECT throws_ok('ALTER TABLE regress_ha_chain.t ADD COLUMN c money', '0A000',
    'cannot add column "c" of type money to protected table regress_ha_chain.t',
    'ADD COLUMN money is refused');
SELECT throws_ok('ALTER TABLE regress_ha_chain.t ADD COLUMN c regress_ha_chain.cash', '0A000',
    'cannot add column "c" of type regress_ha_chain.cash to protected table regress_ha_chain.t',
    'ADD COLUMN of a domain over money is refused');
SELECT throws_ok('ALTER TABLE regress_ha_chain.t ADD COLUMN c regclass', '0A000',
    'cannot add column "c" of type regclass to protected table regress_ha_chain.t',
    'ADD COLUMN regclass is refused');
SELECT throws_ok('ALTER TABLE regress_ha_chain.t ADD COLUMN c regtype[]', '0A000',
    'cannot add column "c" of type regtype[] to protected table regress_ha_chain.t',
    'ADD COLUMN regtype[] is refused');
SELECT throws_ok('ALTER TABLE regress_ha_chain.t ADD COLUMN c regress_ha_chain.kind[]', '0A000',
    'cannot add column "c" of type regress_ha_chain.kind[] to protected table regress_ha_chain.t',
    'ADD COLUMN of an array of an enum is refused');
SELECT throws_ok('ALTER TABLE regress_ha_chain.t ADD COLUMN c regress_ha_chain.tagged', '0A000',
    'cannot add column "c" of type regress_ha_chain.tagged to protected table regress_ha_chain.t',
    'ADD COLUMN of a composite with an enum field is refused');
SELECT throws_ok('ALTER TABLE regress_ha_chain.t ADD COLUMN c regress_ha_chain.pair[]', '0A000',
    'cannot add column "c" of type regress_ha_chain.pair[] to protected table regress_ha_chain.t',
    'ADD COLUMN of an array of a composite type is refused');
SELECT throws_ok('ALTER TABLE regress_ha_chain.t ADD COLUMN c point', '0A000',
    'cannot add column "c" of type point to protected table regress_ha_chain.t',
    'ADD COLUMN point (floats inside a binary format that cannot be normalised) is refused');
SELECT throws_ok('ALTER TABLE regress_ha_chain.t ADD COLUMN ok_col text, ADD COLUMN c money', '0A000',
    'cannot add column "c" of type money to protected table regress_ha_chain.t',
    'a refused column takes the harmless one of the same statement down with it');
SELECT is(regress_ha_chain.fp('regress_ha_chain.t'), (SELECT fp FROM regress_ha_chain.baseline WHERE label = 't'),
    '... the table and its rows are unchanged after the refused ADD COLUMNs');

-- ---------------------------------------------------------------------------
-- Refusals of protect(): chain column names, types, foreign keys.
-- ---------------------------------------------------------------------------
CREATE TABLE regress_ha_chain.has_seq (id int, audit_seq bigint);
CREATE TABLE regress_ha_chain.has_client (id int, audit_client inet);
CREATE TABLE regress_ha_chain.has_hash (id int, audit_hash bytea);
CREATE TABLE regress_ha_chain.audit_named (id int, audit_note text, audit text);
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.has_seq')$$, '42701',
    'cannot protect regress_ha_chain.has_seq: it already has a column named "audit_seq"',
    'protect() refuses a table with a column named audit_seq');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.has_client')$$, '42701',
    'cannot protect regress_ha_chain.has_client: it already has a column named "audit_client"',
    'protect() refuses a table with a column named audit_client');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.has_hash')$$, '42701',
    'cannot protect regress_ha_chain.has_hash: it already has a column named "audit_hash"',
    'protect() refuses a table with a column named audit_hash');
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_chain.audit_named')$$,
    'protect() accepts other column names starting with audit');

CREATE TABLE regress_ha_chain.ty_regclass (id int, r regclass);
CREATE TABLE regress_ha_chain.ty_regprocedure (id int, r regprocedure);
CREATE TABLE regress_ha_chain.ty_regrole (id int, r regrole);
CREATE TABLE regress_ha_chain.ty_money (id int, m money);
CREATE TABLE regress_ha_chain.ty_cash (id int, m regress_ha_chain.cash);
CREATE TABLE regress_ha_chain.ty_enum_array (id int, e regress_ha_chain.kind[]);
CREATE TABLE regress_ha_chain.ty_tagged (id int, c regress_ha_chain.tagged);
CREATE TABLE regress_ha_chain.ty_box (id int, b box);
CREATE TABLE regress_ha_chain.ty_ok (
    id int, e regress_ha_chain.kind, c regress_ha_chain.pair, a int[], d regress_ha_chain.code,
    j jsonb, f float8[], o oid, x xml, u uuid, r int8range
);
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.ty_regclass')$$, '0A000',
    'cannot protect regress_ha_chain.ty_regclass: column "r" has type regclass, which cannot be hashed canonically',
    'protect() refuses a regclass column');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.ty_regprocedure')$$, '0A000',
    'cannot protect regress_ha_chain.ty_regprocedure: column "r" has type regprocedure, which cannot be hashed canonically',
    'protect() refuses a regprocedure column');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.ty_regrole')$$, '0A000',
    'cannot protect regress_ha_chain.ty_regrole: column "r" has type regrole, which cannot be hashed canonically',
    'protect() refuses a regrole column');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.ty_money')$$, '0A000',
    'cannot protect regress_ha_chain.ty_money: column "m" has type money, which cannot be hashed canonically',
    'protect() refuses a money column');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.ty_cash')$$, '0A000',
    'cannot protect regress_ha_chain.ty_cash: column "m" has type regress_ha_chain.cash, which cannot be hashed canonically',
    'protect() refuses a column of a domain over money');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.ty_enum_array')$$, '0A000',
    'cannot protect regress_ha_chain.ty_enum_array: column "e" has type regress_ha_chain.kind[], which cannot be hashed canonically',
    'protect() refuses an array of a user-defined type');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.ty_tagged')$$, '0A000',
    'cannot protect regress_ha_chain.ty_tagged: column "c" has type regress_ha_chain.tagged, which cannot be hashed canonically',
    'protect() refuses a composite with a field of a user-defined type');
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.ty_box')$$, '0A000',
    'cannot protect regress_ha_chain.ty_box: column "b" has type box, which cannot be hashed canonically',
    'protect() refuses a geometric column');
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_chain.ty_ok')$$,
    'protect() accepts an enum, a composite of built-in types, arrays of built-in types, a domain, jsonb, oid, xml, uuid and an integer range');
INSERT INTO regress_ha_chain.ty_ok VALUES
    (1, 'read', ROW(1, 'x'), '{1,2}', 'AB', '{"a": 1}', ARRAY['NaN'::float8, -'NaN'::float8, 1.5], 42,
     ('<a>' || U&'\00E9' || '</a>')::xml, '00000000-0000-0000-0000-000000000001', '[1,10)');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.ty_ok'),
    'ok=true rows_checked=1 chains=1 problems=0 first_problem=<null>',
    '... and rows with those types (NaNs in a float8[] included) verify');

SELECT results_eq(
    $$SELECT count(*) FROM hipaa_audit.registry
       WHERE relid::text IN ('regress_ha_chain.has_seq', 'regress_ha_chain.has_client', 'regress_ha_chain.has_hash',
                             'regress_ha_chain.ty_regclass', 'regress_ha_chain.ty_regprocedure',
                             'regress_ha_chain.ty_regrole', 'regress_ha_chain.ty_money', 'regress_ha_chain.ty_cash',
                             'regress_ha_chain.ty_enum_array', 'regress_ha_chain.ty_tagged',
                             'regress_ha_chain.ty_box', 'regress_ha_chain.late')$$,
    $$VALUES (0::bigint)$$,
    'none of the refused tables was registered');
SELECT is((SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = 'regress_ha_chain'::regnamespace
              AND t.tgname LIKE 'hipaa\_audit\_%' AND NOT hipaa_audit.is_protected(c.oid)),
    0::bigint, '... none of them got a hipaa_audit trigger');
SELECT results_eq(
    $$SELECT c.relname::text COLLATE "default", string_agg(a.attname::text, ',' ORDER BY a.attnum) COLLATE "default"
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
       WHERE c.relnamespace = 'regress_ha_chain'::regnamespace
         AND c.relname IN ('has_seq', 'has_client', 'has_hash', 'ty_regclass', 'ty_regprocedure', 'ty_regrole',
                           'ty_money', 'ty_cash', 'ty_enum_array', 'ty_tagged', 'ty_box', 'late')
         AND a.attnum > 0 AND NOT a.attisdropped
       GROUP BY c.relname ORDER BY 1$$,
    $$VALUES ('has_client', 'id,audit_client'), ('has_hash', 'id,audit_hash'), ('has_seq', 'id,audit_seq'),
             ('late', 'id,note'), ('ty_box', 'id,b'), ('ty_cash', 'id,m'), ('ty_enum_array', 'id,e'),
             ('ty_money', 'id,m'), ('ty_regclass', 'id,r'), ('ty_regprocedure', 'id,r'),
             ('ty_regrole', 'id,r'), ('ty_tagged', 'id,c')$$,
    '... and none of them got chain columns');

-- A table other tables reference by foreign key.
CREATE TABLE regress_ha_chain.parent (id int PRIMARY KEY, note text);
INSERT INTO regress_ha_chain.parent VALUES (1, 'referenced');
CREATE TABLE regress_ha_chain.child (parent_id int REFERENCES regress_ha_chain.parent);
INSERT INTO regress_ha_chain.child VALUES (1);
INSERT INTO regress_ha_chain.baseline VALUES ('parent', regress_ha_chain.fp('regress_ha_chain.parent'));
SELECT throws_ok($$SELECT hipaa_audit.protect('regress_ha_chain.parent')$$, '55000',
    'cannot protect regress_ha_chain.parent: it has rows and other tables reference it by foreign key',
    'protect() refuses a table with rows that another table references by foreign key');
SELECT is(regress_ha_chain.fp('regress_ha_chain.parent'), (SELECT fp FROM regress_ha_chain.baseline WHERE label = 'parent'),
    '... and changes nothing');
SELECT results_eq('SELECT parent_id FROM regress_ha_chain.child', 'VALUES (1)', '... the referencing row is intact');
CREATE TABLE regress_ha_chain.parent_empty (id int PRIMARY KEY);
CREATE TABLE regress_ha_chain.child_empty (parent_id int REFERENCES regress_ha_chain.parent_empty);
SELECT lives_ok($$SELECT hipaa_audit.protect('regress_ha_chain.parent_empty')$$,
    'protect() accepts an EMPTY table that is referenced by foreign key');
SELECT lives_ok($$INSERT INTO regress_ha_chain.parent_empty VALUES (1); INSERT INTO regress_ha_chain.child_empty VALUES (1)$$,
    '... and rows can be added to it and referenced');

-- (Elsewhere, as a pgTAP transaction cannot do them: protect() in a
-- non-UTF8 database, TAP 026; PREPARE TRANSACTION after inserting into a
-- protected table, pg_regress 06_chain; COPY FROM STDIN, pg_regress
-- 02_insert_and_maintenance and TAP 010_independent_verifier.)

-- ---------------------------------------------------------------------------
-- hipaa_audit.chain_row() used anywhere else.
-- ---------------------------------------------------------------------------
CREATE TABLE regress_ha_chain.plain (id int);
CREATE TABLE regress_ha_chain.plain_after (id int);
CREATE TRIGGER stray BEFORE INSERT ON regress_ha_chain.plain
    FOR EACH ROW EXECUTE FUNCTION hipaa_audit.chain_row();
CREATE TRIGGER stray AFTER INSERT ON regress_ha_chain.plain_after
    FOR EACH ROW EXECUTE FUNCTION hipaa_audit.chain_row();
SELECT throws_ok('INSERT INTO regress_ha_chain.plain VALUES (1)', '55000',
    'table regress_ha_chain.plain has the hipaa_audit chain trigger but is not protected',
    'chain_row() on a table that is not protected refuses to stamp');
SELECT throws_ok('INSERT INTO regress_ha_chain.plain_after VALUES (1)', '39P01',
    'function hipaa_audit.chain_row must be fired BEFORE INSERT ... FOR EACH ROW',
    'chain_row() as an AFTER trigger is an error');
CREATE TABLE regress_ha_chain.owned_plain (id int);
ALTER TABLE regress_ha_chain.owned_plain OWNER TO regress_ha_chain_owner;
SET ROLE regress_ha_chain_owner;
SELECT throws_ok($$CREATE TRIGGER stray BEFORE INSERT ON regress_ha_chain.owned_plain
      FOR EACH ROW EXECUTE FUNCTION hipaa_audit.chain_row()$$, '42501',
    'cannot create a trigger calling hipaa_audit''s trigger function on table regress_ha_chain.owned_plain',
    'a non-superuser cannot attach chain_row() to a table (refused by name; EXECUTE is granted so that owners can make partitions)');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- verify() and verify_problems(): errors and who may call them.
-- ---------------------------------------------------------------------------
SELECT throws_ok('SELECT hipaa_audit.verify(NULL)', '22004',
    'argument of hipaa_audit.verify must not be null', 'verify(NULL) is an error');
SELECT throws_ok('SELECT * FROM hipaa_audit.verify_problems(NULL)', '22004',
    'argument of hipaa_audit.verify_problems must not be null', 'verify_problems(NULL) is an error');
SELECT throws_ok($$SELECT hipaa_audit.verify('regress_ha_chain.plain')$$, '55000',
    'table regress_ha_chain.plain is not protected', 'verify() of a table that is not protected');
SELECT throws_ok($$SELECT * FROM hipaa_audit.verify_problems('regress_ha_chain.plain')$$, '55000',
    'table regress_ha_chain.plain is not protected', 'verify_problems() of a table that is not protected');
SELECT throws_ok('SELECT hipaa_audit.verify(0)', '42P01',
    'relation with OID 0 does not exist', 'verify() of OID 0');
SELECT throws_ok('SELECT * FROM hipaa_audit.verify_problems(0)', '42P01',
    'relation with OID 0 does not exist', 'verify_problems() of OID 0');
CREATE TABLE regress_ha_chain.gone (id int);
CREATE TABLE regress_ha_chain.gone_oid AS SELECT 'regress_ha_chain.gone'::regclass::oid AS oid;
DROP TABLE regress_ha_chain.gone;
SELECT throws_ok(format('SELECT hipaa_audit.verify(%s::oid)', (SELECT oid FROM regress_ha_chain.gone_oid)), '42P01',
    format('relation with OID %s does not exist', (SELECT oid FROM regress_ha_chain.gone_oid)),
    'verify() of the OID of a dropped table');
SELECT throws_ok(format('SELECT * FROM hipaa_audit.verify_problems(%s::oid)', (SELECT oid FROM regress_ha_chain.gone_oid)), '42P01',
    format('relation with OID %s does not exist', (SELECT oid FROM regress_ha_chain.gone_oid)),
    'verify_problems() of the OID of a dropped table');

GRANT SELECT ON regress_ha_chain.t TO regress_ha_chain_reader;
SET ROLE regress_ha_chain_nobody;
SELECT throws_ok($$SELECT hipaa_audit.verify('regress_ha_chain.t')$$, '42501',
    'permission denied to verify table regress_ha_chain.t',
    'verify() by a role without SELECT and without auditor or admin membership is refused');
SELECT throws_ok($$SELECT * FROM hipaa_audit.verify_problems('regress_ha_chain.t')$$, '42501',
    'permission denied to verify table regress_ha_chain.t',
    'verify_problems() by that role is refused too');
RESET ROLE;
SET ROLE regress_ha_chain_reader;
SELECT results_eq($$SELECT ok, rows_checked FROM hipaa_audit.verify('regress_ha_chain.t')$$,
    $$VALUES (true, 21::bigint)$$, 'a role with SELECT on the table may verify it');
RESET ROLE;
SET ROLE regress_ha_chain_auditor;
SELECT results_eq($$SELECT ok, rows_checked FROM hipaa_audit.verify('regress_ha_chain.t')$$,
    $$VALUES (true, 21::bigint)$$, 'a member of hipaa_audit_auditor without SELECT on the table may verify it');
SELECT is_empty($$SELECT * FROM hipaa_audit.verify_problems('regress_ha_chain.t')$$,
    '... and call verify_problems()');
SELECT throws_ok('SELECT id FROM regress_ha_chain.t', '42501', 'permission denied for table t',
    '... but still cannot read the table');
SELECT is_empty('SELECT * FROM hipaa_audit.verify_progress WHERE pid = pg_backend_pid()',
    '... and once verify() has returned, hipaa_audit.verify_progress no longer lists it');
RESET ROLE;
SET ROLE regress_ha_chain_nobody;
SELECT throws_ok('SELECT * FROM hipaa_audit.verify_progress', '42501',
    'permission denied for view verify_progress',
    'hipaa_audit.verify_progress is not readable by PUBLIC');
SELECT throws_ok('SELECT * FROM hipaa_audit.verify_progress()', '42501',
    'permission denied for function verify_progress',
    'hipaa_audit.verify_progress() is not executable by PUBLIC');
RESET ROLE;
SET ROLE regress_ha_chain_admin;
SELECT results_eq($$SELECT ok, rows_checked FROM hipaa_audit.verify('regress_ha_chain.t')$$,
    $$VALUES (true, 21::bigint)$$, 'a member of hipaa_audit_admin without SELECT on the table may verify it');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- An empty protected table may lose its chain index (nothing to verify
-- yet); verify() then says so, and a new unique index restores it.
-- ---------------------------------------------------------------------------
SELECT lives_ok('DROP INDEX regress_ha_chain.empty_audit_chain_audit_seq_idx',
    'DROP INDEX of the chain index of an EMPTY protected table is allowed');
SELECT throws_ok($$SELECT hipaa_audit.verify('regress_ha_chain.empty')$$, 'XX001',
    'protected table regress_ha_chain.empty has lost its index on (audit_chain, audit_seq)',
    '... verify() then reports the missing index');
SELECT lives_ok('CREATE UNIQUE INDEX ON regress_ha_chain.empty (audit_chain, audit_seq)',
    '... which can be created again');
INSERT INTO regress_ha_chain.empty VALUES (1), (2);
SELECT is(regress_ha_chain.vsum('regress_ha_chain.empty'),
    'ok=true rows_checked=2 chains=1 problems=0 first_problem=<null>',
    '... and the table verifies with it');
SELECT throws_ok('DROP INDEX regress_ha_chain.empty_audit_chain_audit_seq_idx', '42501',
    'cannot DROP INDEX regress_ha_chain.empty_audit_chain_audit_seq_idx of protected table regress_ha_chain.empty',
    '... and, now that the table has rows, the new index cannot be dropped');

-- ---------------------------------------------------------------------------
-- A role with INSERT but not SELECT on a protected table can insert, also
-- when the chain head has to be rebuilt from the table (here: the first
-- insert after protect()); the rebuild does not run with the caller's
-- privileges.
-- ---------------------------------------------------------------------------
CREATE TABLE regress_ha_chain.insert_only (id int, note text);
SELECT hipaa_audit.protect('regress_ha_chain.insert_only');
GRANT INSERT ON regress_ha_chain.insert_only TO regress_ha_chain_inserter;
SET ROLE regress_ha_chain_inserter;
SELECT lives_ok($$INSERT INTO regress_ha_chain.insert_only VALUES (1, 'insert-only role'), (2, 'again')$$,
    'a role with only INSERT on a protected table can insert into it');
RESET ROLE;
SELECT results_eq(
    $$SELECT audit_seq, id, audit_role COLLATE "default" FROM regress_ha_chain.insert_only ORDER BY audit_seq$$,
    $$VALUES (1::bigint, 1, 'regress_ha_chain_inserter'), (2::bigint, 2, 'regress_ha_chain_inserter')$$,
    '... its rows are chained from position 1');

-- ---------------------------------------------------------------------------
-- Ways around the chain that must be refused.  Each uses its own table, so
-- the rest of the file does not depend on the outcome.
-- ---------------------------------------------------------------------------
-- 1. Renaming one's own BEFORE INSERT trigger so that it sorts after
--    hipaa_audit_chain, after CREATE TRIGGER was checked.  The trigger would
--    then change (or suppress) rows after they were hashed.
CREATE TABLE regress_ha_chain.gap_rename (id int, note text);
SELECT hipaa_audit.protect('regress_ha_chain.gap_rename');
CREATE TRIGGER a_upper BEFORE INSERT ON regress_ha_chain.gap_rename
    FOR EACH ROW EXECUTE FUNCTION regress_ha_chain.upper_note();
SELECT throws_ok('ALTER TRIGGER a_upper ON regress_ha_chain.gap_rename RENAME TO zz_upper', '42501',
    'cannot rename BEFORE INSERT trigger "a_upper" to "zz_upper" on protected table regress_ha_chain.gap_rename',
    'renaming a BEFORE INSERT row trigger so that it sorts after hipaa_audit_chain is refused');
INSERT INTO regress_ha_chain.gap_rename VALUES (1, 'lower case');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.gap_rename'),
    'ok=true rows_checked=1 chains=1 problems=0 first_problem=<null>',
    '... so rows inserted afterwards still verify');

-- 2. ALTER COLUMN ... DROP EXPRESSION turns a stored generated column, which
--    is not hashed, into an ordinary one, which is: every old row stops
--    verifying.
CREATE TABLE regress_ha_chain.gap_generated (id int, tens int GENERATED ALWAYS AS (id * 10) STORED);
SELECT hipaa_audit.protect('regress_ha_chain.gap_generated');
INSERT INTO regress_ha_chain.gap_generated (id) VALUES (1);
SELECT throws_ok('ALTER TABLE regress_ha_chain.gap_generated ALTER COLUMN tens DROP EXPRESSION', '42501',
    'cannot ALTER COLUMN ... DROP EXPRESSION on protected table regress_ha_chain.gap_generated',
    'ALTER COLUMN ... DROP EXPRESSION on a protected table is refused');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.gap_generated'),
    'ok=true rows_checked=1 chains=1 problems=0 first_problem=<null>',
    '... so the existing rows still verify');

-- 3. ALTER TYPE ... ADD ATTRIBUTE on a composite type a protected column
--    uses changes the binary form of every stored value of it (record_send
--    writes one more field).
CREATE TYPE regress_ha_chain.gap_pair AS (a int, b text);
CREATE TABLE regress_ha_chain.gap_composite (id int, p regress_ha_chain.gap_pair);
SELECT hipaa_audit.protect('regress_ha_chain.gap_composite');
INSERT INTO regress_ha_chain.gap_composite VALUES (1, ROW(1, 'x'));
SELECT throws_ok('ALTER TYPE regress_ha_chain.gap_pair ADD ATTRIBUTE c int', '42501',
    'cannot change the attributes of type regress_ha_chain.gap_pair, which protected table regress_ha_chain.gap_composite uses',
    'ALTER TYPE ... ADD ATTRIBUTE of a composite type used by a protected column is refused');
SELECT is(regress_ha_chain.vsum('regress_ha_chain.gap_composite'),
    'ok=true rows_checked=1 chains=1 problems=0 first_problem=<null>',
    '... so the existing rows still verify');

-- 4. ALTER TYPE ... RENAME VALUE changes what every stored value of an
--    enum reads as (enum_send sends the label): an audit row saying 'read'
--    now says 'delete'.
CREATE TYPE regress_ha_chain.gap_kind AS ENUM ('read', 'write');
CREATE TABLE regress_ha_chain.gap_enum (id int, k regress_ha_chain.gap_kind);
SELECT hipaa_audit.protect('regress_ha_chain.gap_enum');
INSERT INTO regress_ha_chain.gap_enum VALUES (1, 'read');
SELECT throws_ok($$ALTER TYPE regress_ha_chain.gap_kind RENAME VALUE 'read' TO 'delete'$$, '42501',
    'cannot RENAME VALUE of type regress_ha_chain.gap_kind, which protected table regress_ha_chain.gap_enum uses',
    'ALTER TYPE ... RENAME VALUE of an enum used by a protected column is refused');
SELECT results_eq('SELECT k::text FROM regress_ha_chain.gap_enum', $$VALUES ('read')$$,
    '... so the audit row still says read');

SELECT * FROM finish();
ROLLBACK;
