-- The hash chain as a user sees it.  Hashes and times differ on every run,
-- so the output shows their relations, not their values.
\set SHOW_CONTEXT never
CREATE TABLE ch_log (id int PRIMARY KEY, actor text NOT NULL, note text);
INSERT INTO ch_log VALUES (1, 'before protect', NULL);
SELECT hipaa_audit.protect('ch_log', chains => 1);

-- Values a client supplies for the chain columns are never trusted.
INSERT INTO ch_log (id, actor, audit_chain, audit_seq, audit_at, audit_session_role,
                    audit_role, audit_client, audit_prev_hash, audit_hash)
VALUES (2, 'forger', 7, 1000, '1999-01-01', 'nobody', 'nobody', '6.6.6.6', '\x00', '\x00');
INSERT INTO ch_log (id, actor) VALUES (3, 'dr_alvarez'), (4, 'nurse_kim');
CREATE ROLE regress_ha_clerk;
GRANT INSERT, SELECT ON ch_log TO regress_ha_clerk;
SET ROLE regress_ha_clerk;
INSERT INTO ch_log (id, actor) VALUES (5, 'as clerk');
RESET ROLE;

SELECT id, actor, audit_chain, audit_seq,
       audit_at > clock_timestamp() - interval '1 minute' AS recent,
       audit_session_role = session_user AS session_role_ok, audit_role,
       audit_client IS NULL AS local_socket,
       length(audit_hash) AS hash_bytes,
       audit_prev_hash = coalesce(lag(audit_hash) OVER w, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) AS linked
  FROM ch_log WINDOW w AS (PARTITION BY audit_chain ORDER BY audit_seq)
 ORDER BY audit_chain, audit_seq;

-- Rolled-back rows leave no hole.
BEGIN;
INSERT INTO ch_log (id, actor) VALUES (6, 'kept');
SAVEPOINT a;
INSERT INTO ch_log (id, actor) VALUES (7, 'rolled back');
ROLLBACK TO SAVEPOINT a;
INSERT INTO ch_log (id, actor) VALUES (8, 'kept too');
COMMIT;
BEGIN;
INSERT INTO ch_log (id, actor) VALUES (9, 'rolled back');
ROLLBACK;
-- A skipped conflicting row leaves no hole either.
INSERT INTO ch_log (id, actor) VALUES (3, 'duplicate id'), (10, 'new')
    ON CONFLICT (id) DO NOTHING;
SELECT id, audit_seq FROM ch_log WHERE id >= 5 ORDER BY audit_seq;

-- Session settings change text output, never hashes.
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Pacific/Chatham';
SET IntervalStyle = 'sql_standard';
SET extra_float_digits = -3;
SET bytea_output = 'escape';
SET client_encoding = 'LATIN1';
INSERT INTO ch_log (id, actor, note) VALUES (11, 'hostile settings', 'caf' || chr(233));
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('ch_log');
RESET ALL;
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('ch_log');

-- What cannot be done to the chain.
CREATE FUNCTION ch_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.note := 'changed after hashing'; RETURN NEW; END $$;
CREATE TRIGGER zz_late BEFORE INSERT ON ch_log FOR EACH ROW EXECUTE FUNCTION ch_touch();
CREATE TRIGGER aa_early BEFORE INSERT ON ch_log FOR EACH ROW EXECUTE FUNCTION ch_touch();
INSERT INTO ch_log (id, actor) VALUES (12, 'touched before hashing');
SELECT note FROM ch_log WHERE id = 12;
DROP TRIGGER aa_early ON ch_log;
DROP INDEX ch_log_audit_chain_audit_seq_idx;
ALTER TABLE ch_log ADD COLUMN owner_oid regclass;
BEGIN;
INSERT INTO ch_log (id, actor) VALUES (13, 'to be prepared');
PREPARE TRANSACTION 'ha_regress';
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('ch_log');

-- protect() refuses columns whose binary form does not survive a restore.
CREATE TYPE ch_mood AS ENUM ('calm', 'angry');
CREATE TABLE ch_bad1 (moods ch_mood[]);
SELECT hipaa_audit.protect('ch_bad1');
CREATE TABLE ch_bad2 (tbl regclass);
SELECT hipaa_audit.protect('ch_bad2');
CREATE TABLE ch_bad3 (audit_hash bytea);
SELECT hipaa_audit.protect('ch_bad3');
CREATE TABLE ch_ok (mood ch_mood, moods_text text[], f float8[]);
SELECT hipaa_audit.protect('ch_ok');
-- Types whose OIDs initdb assigns (not PostgreSQL's catalog data) differ
-- between major versions: refused wherever the binary form embeds the OID
-- (array elements, composite fields); a domain's own value embeds none.
CREATE TABLE ch_bad4 (n information_schema.cardinal_number[]);
SELECT hipaa_audit.protect('ch_bad4');
CREATE TABLE ch_bad5 (c information_schema.columns);
SELECT hipaa_audit.protect('ch_bad5');
CREATE TABLE ch_bad7 (r pg_catalog.pg_enum);
SELECT hipaa_audit.protect('ch_bad7');
CREATE TYPE ch_wrap AS (id int, n information_schema.cardinal_number);
CREATE TABLE ch_bad6 (w ch_wrap);
SELECT hipaa_audit.protect('ch_bad6');
SELECT count(*) AS protected_bad FROM hipaa_audit.protected_tables
  WHERE table_name IN ('ch_bad4', 'ch_bad5', 'ch_bad6', 'ch_bad7');
CREATE TABLE ch_ok2 (n information_schema.cardinal_number, w int4[]);
SELECT hipaa_audit.protect('ch_ok2');
ALTER TABLE ch_ok2 ADD COLUMN s information_schema.sql_identifier[];
\echo :LAST_ERROR_SQLSTATE
SELECT attname FROM pg_attribute WHERE attrelid = 'ch_ok2'::regclass AND attname = 's';
INSERT INTO ch_ok2 VALUES (7, '{1,2}');
SELECT ok, rows_checked FROM hipaa_audit.verify('ch_ok2');

-- A composite type (here a table's row type) or an enum a protected column
-- uses cannot change: the stored values' binary form would.
CREATE TABLE ch_addr (street text, city text);
CREATE TABLE ch_uses_addr (id int, addr ch_addr, mood ch_mood);
SELECT hipaa_audit.protect('ch_uses_addr');
INSERT INTO ch_uses_addr VALUES (1, ROW('1 Main St', 'Springfield'), 'calm');
ALTER TABLE ch_addr DROP COLUMN city;
ALTER TABLE ch_addr ADD COLUMN zip text;
ALTER TYPE ch_mood RENAME VALUE 'calm' TO 'furious';
ALTER TYPE ch_mood ADD VALUE 'curious';
SELECT ok, rows_checked FROM hipaa_audit.verify('ch_uses_addr');
-- Also when the enum is reached through a range type.
CREATE TYPE ch_mood2 AS ENUM ('low', 'high');
CREATE TYPE ch_moodrange AS RANGE (subtype = ch_mood2);
CREATE TABLE ch_uses_range (id int, r ch_moodrange);
SELECT hipaa_audit.protect('ch_uses_range');
INSERT INTO ch_uses_range VALUES (1, ch_moodrange('low', 'high'));
ALTER TYPE ch_mood2 RENAME VALUE 'high' TO 'highest';
SELECT ok, rows_checked FROM hipaa_audit.verify('ch_uses_range');
-- A range over a composite: the composite's own columns are checked too.
CREATE TYPE ch_pair AS (a int, b regclass);
CREATE TYPE ch_pairrange AS RANGE (subtype = ch_pair);
CREATE TABLE ch_uses_pairrange (id int, r ch_pairrange);
SELECT hipaa_audit.protect('ch_uses_pairrange');

-- Verification errors.
SELECT * FROM hipaa_audit.verify(NULL);
SELECT * FROM hipaa_audit.verify('ch_bad1');

-- Clean up the cluster-wide role (the table keeps its rows, as it must).
REVOKE ALL ON ch_log FROM regress_ha_clerk;
DROP ROLE regress_ha_clerk;
