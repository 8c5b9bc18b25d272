-- Legal holds: placed with a reason, listed, released with a reason; a held
-- table cannot be unprotected or dropped, even when empty.
\set SHOW_CONTEXT never
CREATE TABLE hold_log (id int);
SELECT hipaa_audit.protect('hold_log');
SELECT hipaa_audit.place_hold('hold_log', 'litigation hold, case 2026-117') AS hold \gset
SELECT tbl, placed_by, reason FROM hipaa_audit.legal_holds_active;
-- Even the empty table cannot go while held.
SELECT hipaa_audit.unprotect('hold_log');
DROP TABLE hold_log;
SELECT hipaa_audit.is_protected('hold_log');
-- Bad input.
SELECT hipaa_audit.place_hold('hold_log', '');
SELECT hipaa_audit.place_hold('hold_log', NULL);
CREATE TABLE hold_plain (id int);
SELECT hipaa_audit.place_hold('hold_plain', 'x');
SELECT hipaa_audit.release_hold(999999, 'no such hold');
SELECT hipaa_audit.release_hold(:hold, '');
-- Release, with a reason: the hold stays on record.
SELECT hipaa_audit.release_hold(:hold, 'case settled');
SELECT hipaa_audit.release_hold(:hold, 'again');
SELECT count(*) AS active FROM hipaa_audit.legal_holds_active;
SELECT h.reason, r.reason AS released_because FROM hipaa_audit.legal_holds h
  JOIN hipaa_audit.hold_releases r ON r.hold_id = h.id;
-- Holds and releases are insert-only.
DELETE FROM hipaa_audit.hold_releases;
UPDATE hipaa_audit.legal_holds SET reason = 'nothing';
-- Released: the empty table can now be dropped.
DROP TABLE hold_log;
SELECT count(*) FROM hipaa_audit.protected_tables WHERE table_name = 'hold_log';
