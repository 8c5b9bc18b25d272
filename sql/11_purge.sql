-- Purging expired rows and retiring idle tables: every refusal, and what
-- is recorded.  (Signed purges themselves need a key file: TAP 022.)
\set SHOW_CONTEXT never
CREATE TABLE purge_log (id int, msg text);
SELECT hipaa_audit.protect('purge_log', '1 millisecond', 4);
INSERT INTO purge_log SELECT g, 'row ' || g FROM generate_series(1, 10) g;
SELECT pg_sleep(0.05);
-- Bad input.
SELECT * FROM hipaa_audit.purge_expired(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM hipaa_audit.purge_expired(0);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE purge_plain (id int);
SELECT * FROM hipaa_audit.purge_expired('purge_plain');
\echo :LAST_ERROR_SQLSTATE
-- Only the admin role purges.
CREATE ROLE regress_ha_purger;
SET ROLE regress_ha_purger;
SELECT * FROM hipaa_audit.purge_expired('purge_log');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- No signing key: no receipt, so no purge; nothing removed.
SELECT * FROM hipaa_audit.purge_expired('purge_log');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM purge_log;
-- A dry run verifies and counts what a purge would remove, removes
-- nothing and needs no key, at any isolation level, also read-only.
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT * FROM hipaa_audit.purge_expired('purge_log', dry_run => true);
COMMIT;
SELECT count(*) FROM purge_log;
SELECT * FROM hipaa_audit.purge_expired('purge_log', NULL);
\echo :LAST_ERROR_SQLSTATE
-- Only at READ COMMITTED, never read-only.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM hipaa_audit.purge_expired('purge_log');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN READ ONLY;
SELECT * FROM hipaa_audit.purge_expired('purge_log');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- Under a legal hold: refused before anything else.
SELECT hipaa_audit.place_hold('purge_log', 'subpoena 44') AS hold \gset
SELECT * FROM hipaa_audit.purge_expired('purge_log');
\echo :LAST_ERROR_SQLSTATE
-- Held and idle: neither unprotect nor drop.
SELECT hipaa_audit.unprotect('purge_log');
DROP TABLE purge_log;
SELECT hipaa_audit.release_hold(:hold, 'subpoena withdrawn');
SELECT count(*) FROM purge_log;
-- Receipts, anchors and the record of retired tables are insert-only.
INSERT INTO hipaa_audit.purge_anchors VALUES (1, gen_random_uuid(), 0, 1, 5, '\x00');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM hipaa_audit.purge_receipts;
\echo :LAST_ERROR_SQLSTATE
UPDATE hipaa_audit.retired_tables SET action = 'drop';
\echo :LAST_ERROR_SQLSTATE
TRUNCATE hipaa_audit.purge_anchors;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM hipaa_audit.verify_receipt_chain();
-- verify_receipt: NULLs and malformed keys.
SELECT * FROM hipaa_audit.verify_receipt(NULL, 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT ok, status, detail FROM hipaa_audit.verify_receipt('x', 'not a key');
-- A table with rows within retention can be neither dropped nor unprotected.
CREATE TABLE purge_recent (id int);
SELECT hipaa_audit.protect('purge_recent', '1 day');
INSERT INTO purge_recent VALUES (1);
DROP TABLE purge_recent;
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.unprotect('purge_recent');
\echo :LAST_ERROR_SQLSTATE
-- A cascade takes empty protected tables only, idle or not.
CREATE SCHEMA purge_schema;
CREATE TABLE purge_schema.idle (id int);
SELECT hipaa_audit.protect('purge_schema.idle', '1 millisecond');
INSERT INTO purge_schema.idle VALUES (1);
SELECT pg_sleep(0.05);
DROP SCHEMA purge_schema CASCADE;
SELECT hipaa_audit.is_protected('purge_schema.idle');
-- Idle past retention, not held: DROP TABLE and unprotect are allowed, and
-- recorded with what was left.
DROP TABLE purge_schema.idle;
SELECT hipaa_audit.unprotect('purge_log');
SELECT hipaa_audit.is_protected('purge_log');
SELECT count(*) FROM purge_log;
SELECT table_name, action, retired_by = current_user AS by_me, retention, rows_left,
       newest_row_at < now() AS newest_before_now
  FROM hipaa_audit.retired_tables ORDER BY id;
DROP SCHEMA purge_schema;
DROP TABLE purge_log, purge_plain;
DROP ROLE regress_ha_purger;
-- The session's time zone does not move the cutoff: a fresh row stays
-- within a week's retention whatever TimeZone says.
CREATE TABLE purge_tz (id int);
SELECT hipaa_audit.protect('purge_tz', '7 days');
INSERT INTO purge_tz VALUES (1);
SET TimeZone = 'AAA+167BBB-167,M1.1.0/0,M12.1.6/0';
DROP TABLE purge_tz;
SELECT hipaa_audit.unprotect('purge_tz');
RESET TimeZone;
SELECT count(*) FROM purge_tz;
-- A retention in other units must be longer from every date: 2160 days is
-- not "at least 6 years" (a year can have 366 days), 2196 days is.
SELECT hipaa_audit.set_retention('purge_tz', '6 years');
SELECT hipaa_audit.set_retention('purge_tz', '2160 days');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.set_retention('purge_tz', '2195 days');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.set_retention('purge_tz', '2196 days');
SELECT hipaa_audit.set_retention('purge_tz', '6 years 1 month');
SELECT hipaa_audit.set_retention('purge_tz', '73 months');
SELECT retention FROM hipaa_audit.protected_tables WHERE table_name = 'purge_tz';
-- A table other tables reference by foreign key is not purged (the
-- removal would not check them).
CREATE TABLE purge_parent (id int PRIMARY KEY);
SELECT hipaa_audit.protect('purge_parent', '1 millisecond');
CREATE TABLE purge_child (parent int REFERENCES purge_parent);
INSERT INTO purge_parent VALUES (1);
INSERT INTO purge_child VALUES (1);
SELECT pg_sleep(0.05);
SELECT * FROM hipaa_audit.purge_expired('purge_parent');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM purge_parent;
-- verify_receipt with a quorum: NULLs and a quorum out of range.
SELECT * FROM hipaa_audit.verify_receipt('x', NULL::text[], 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM hipaa_audit.verify_receipt('x', ARRAY['a+00000000+AA'], 2);
\echo :LAST_ERROR_SQLSTATE
SELECT ok, status FROM hipaa_audit.verify_receipt('x', ARRAY['not a key'], 1);
-- max_rows: at least 1 (NULL: no limit).
SELECT * FROM hipaa_audit.purge_expired('purge_tz', max_rows => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT rows_removed FROM hipaa_audit.purge_expired('purge_tz', dry_run => true, max_rows => NULL);
