-- Partitioned audit tables (docs/partitions.md): protect() of a partitioned
-- table, partitions made later, every refusal through the partitioned table
-- and through each partition, and what may still be done.  Receipts of
-- removed partitions need a key: TAP 035.
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE TABLE part_log (id bigserial, happened date NOT NULL, who text, what text)
    PARTITION BY RANGE (happened);
CREATE TABLE part_log_2026_01 PARTITION OF part_log
    FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE part_log_2026_02 PARTITION OF part_log
    FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
-- Rows already there enter the chains of their partition.
INSERT INTO part_log (happened, who, what) VALUES
    ('2026-01-05', 'ann', 'read'), ('2026-02-07', 'bob', 'read');
-- A partition alone cannot be protected; the partitioned table can.
SELECT hipaa_audit.protect('part_log_2026_01', '6 years', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.protect('part_log', '6 years', 1);
SELECT table_name, partition_of, partitioned, chains, retention
  FROM hipaa_audit.protected_tables WHERE table_name LIKE 'part_log%' ORDER BY table_name;
SELECT tableoid::regclass AS part, id, audit_seq, length(audit_hash) AS hash_len
  FROM part_log ORDER BY id;
SELECT hipaa_audit.protect('part_log', '6 years', 1);
\echo :LAST_ERROR_SQLSTATE
-- Each partition has its own identity, unique chain index and TRUNCATE
-- guard; the row triggers are PostgreSQL's clones of the partitioned table's.
SELECT count(DISTINCT table_uuid) FROM hipaa_audit.protected_tables
 WHERE table_name LIKE 'part_log%';
SELECT c.relname, t.tgname, t.tgenabled, t.tgparentid <> 0 AS cloned
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relname LIKE 'part_log%' ORDER BY 1, 2;
SELECT indrelid::regclass, indisunique FROM pg_index
 WHERE indrelid::regclass::text LIKE 'part_log_%' AND indisunique ORDER BY 1;

-- A partition made later is protected from its first row, in the same
-- statement: CREATE TABLE ... PARTITION OF, a default partition, ATTACH of
-- an empty table (as pg_partman makes them).
CREATE TABLE part_log_2026_03 PARTITION OF part_log
    FOR VALUES FROM ('2026-03-01') TO ('2026-04-01');
CREATE TABLE part_log_default PARTITION OF part_log DEFAULT;
CREATE TABLE part_log_2026_04 (LIKE part_log INCLUDING ALL);
ALTER TABLE part_log ATTACH PARTITION part_log_2026_04
    FOR VALUES FROM ('2026-04-01') TO ('2026-05-01');
SELECT table_name, partition_of FROM hipaa_audit.protected_tables
 WHERE partition_of = 'part_log'::regclass ORDER BY table_name;
INSERT INTO part_log (happened, who, what) VALUES
    ('2026-01-06', 'cy', 'read'), ('2026-03-02', 'di', 'write'),
    ('2026-04-02', 'ed', 'read'), ('2030-01-01', 'fay', 'read');
SELECT tableoid::regclass AS part, who, audit_seq FROM part_log ORDER BY id;
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('part_log');

-- Refused through the partitioned table and through each partition.
SELECT count(*) AS rows_before FROM part_log;
UPDATE part_log SET who = 'x';
\echo :LAST_ERROR_SQLSTATE
UPDATE part_log_2026_01 SET who = 'x';
\echo :LAST_ERROR_SQLSTATE
UPDATE part_log SET happened = '2026-02-10' WHERE who = 'ann';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM part_log WHERE who = 'bob';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM part_log_2026_02;
\echo :LAST_ERROR_SQLSTATE
MERGE INTO part_log p USING (SELECT 'ann' AS who) s ON p.who = s.who
    WHEN MATCHED THEN DELETE;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE part_log;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE part_log_2026_03;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_log DISABLE TRIGGER hipaa_audit_chain;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE ONLY part_log DISABLE TRIGGER hipaa_audit_guard_row;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_log_2026_01 DISABLE TRIGGER ALL;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_log_2026_01 ENABLE REPLICA TRIGGER hipaa_audit_chain;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER hipaa_audit_guard_truncate ON part_log_2026_02;
\echo :LAST_ERROR_SQLSTATE
DROP INDEX part_log_2026_01_audit_chain_audit_seq_idx;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_log DROP COLUMN what;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_log ALTER COLUMN who TYPE varchar(10);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_log ADD COLUMN filled text DEFAULT 'x';
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_log_2026_01 RENAME TO part_log_old;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_log_2026_01 NO INHERIT part_log;
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE part_log_child () INHERITS (part_log);
\echo :LAST_ERROR_SQLSTATE
-- Rows within retention: no DETACH, no DROP of a partition or the table.
ALTER TABLE part_log DETACH PARTITION part_log_2026_01;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_log DETACH PARTITION part_log_2026_01 CONCURRENTLY;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE part_log_2026_01;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE part_log;
\echo :LAST_ERROR_SQLSTATE
-- Multi-level partitioning and foreign partitions are refused.
CREATE TABLE part_log_2026_05 PARTITION OF part_log
    FOR VALUES FROM ('2026-05-01') TO ('2026-06-01') PARTITION BY LIST (who);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE part_log_sub (LIKE part_log) PARTITION BY LIST (who);
ALTER TABLE part_log ATTACH PARTITION part_log_sub
    FOR VALUES FROM ('2026-05-01') TO ('2026-06-01');
\echo :LAST_ERROR_SQLSTATE
CREATE FOREIGN DATA WRAPPER part_fdw;
CREATE SERVER part_srv FOREIGN DATA WRAPPER part_fdw;
CREATE FOREIGN TABLE part_log_far PARTITION OF part_log
    FOR VALUES FROM ('2026-06-01') TO ('2026-07-01') SERVER part_srv;
\echo :LAST_ERROR_SQLSTATE
-- A table with rows cannot be attached: they never passed the chain trigger.
CREATE TABLE part_log_2026_07 (LIKE part_log INCLUDING ALL);
INSERT INTO part_log_2026_07 (happened, who, what, audit_chain, audit_seq, audit_at,
    audit_session_role, audit_role, audit_prev_hash, audit_hash)
VALUES ('2026-07-01', 'mallory', 'forged', 0, 1, now(), 'x', 'x', '\x00', '\x00');
ALTER TABLE part_log ATTACH PARTITION part_log_2026_07
    FOR VALUES FROM ('2026-07-01') TO ('2026-08-01');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rows_after, count(*) FILTER (WHERE who = 'mallory') AS forged
  FROM part_log;
-- Partitions follow their partitioned table: no purge, retention or
-- unprotect of their own.
SELECT * FROM hipaa_audit.purge_expired('part_log_2026_01');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.set_retention('part_log_2026_01', '7 years');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.unprotect('part_log_2026_01');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.set_retention('part_log', '7 years');
SELECT DISTINCT retention FROM hipaa_audit.protected_tables WHERE table_name LIKE 'part_log%';
-- A logical replica is one publisher table's identity.
CREATE TABLE part_rep (id int) PARTITION BY LIST (id);
SELECT hipaa_audit.protect_replica('part_rep', gen_random_uuid(), '6 years', 1);
\echo :LAST_ERROR_SQLSTATE

-- Allowed: tiered storage, indexes on the partitioned table, maintenance
-- per partition, a new column without a default.
ALTER TABLE part_log_2026_01 SET TABLESPACE pg_default;
CREATE INDEX ON part_log (who);
VACUUM part_log_2026_01;
ANALYZE part_log;
CLUSTER part_log_2026_02 USING part_log_2026_02_audit_chain_audit_seq_idx;
ALTER TABLE part_log ADD COLUMN note text;
INSERT INTO part_log (happened, who, what, note) VALUES ('2026-02-20', 'gus', 'read', 'late');
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('part_log');
SELECT count(*) FROM hipaa_audit.verify_problems('part_log');
-- One partition can be verified on its own; verify_rows() of the
-- partitioned table checks the chain (or time range) in every partition.
SELECT ok, rows_checked FROM hipaa_audit.verify('part_log_2026_02');
SELECT ok, rows_checked FROM hipaa_audit.verify_rows('part_log', 0, NULL, NULL);
SELECT ok, rows_checked FROM hipaa_audit.verify_rows('part_log', NULL, now() - interval '1 hour', NULL);
SELECT ok FROM hipaa_audit.verify_rows('part_log', 1, NULL, NULL);
\echo :LAST_ERROR_SQLSTATE

-- A legal hold on the partitioned table holds every partition.
CREATE TABLE part_idle (id int, happened date NOT NULL) PARTITION BY RANGE (happened);
CREATE TABLE part_idle_a PARTITION OF part_idle FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE part_idle_b PARTITION OF part_idle FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
CREATE TABLE part_idle_c PARTITION OF part_idle FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');
SELECT hipaa_audit.protect('part_idle', '1 millisecond', 1);
SELECT hipaa_audit.place_hold('part_idle', 'litigation') AS hold \gset
DROP TABLE part_idle_a;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_idle DETACH PARTITION part_idle_a;
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.release_hold(:hold, 'settled');
-- Empty partitions past retention go without a receipt (nothing removed),
-- on record in retired_tables; with rows, a receipt needs a signing key.
DROP TABLE part_idle_a;
ALTER TABLE part_idle DETACH PARTITION part_idle_b;
SELECT table_name, action, rows_left FROM hipaa_audit.retired_tables
 WHERE table_name LIKE '%part_idle%' ORDER BY id;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'part_idle_b'::regclass;
SELECT hipaa_audit.is_protected('part_idle_b');
INSERT INTO part_idle VALUES (1, '2022-06-01');
SELECT pg_sleep(0.05);
DROP TABLE part_idle_c;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM part_idle;
SELECT * FROM hipaa_audit.purge_expired('part_idle');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM part_idle;
