-- The errors a user sees, in full: SQLSTATE, message, detail and hint.
\set SHOW_CONTEXT never
CREATE TABLE msg_log (id int PRIMARY KEY, actor text NOT NULL);
SELECT hipaa_audit.protect('msg_log', retention => '7 years', chains => 4);
INSERT INTO msg_log VALUES (1, 'dr_alvarez'), (2, 'nurse_kim');

UPDATE msg_log SET actor = 'someone else' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM msg_log;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE msg_log;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO msg_log VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET actor = excluded.actor;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE msg_log DISABLE TRIGGER ALL;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE msg_log DROP COLUMN actor;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE msg_log ADD COLUMN site text DEFAULT 'main';
\echo :LAST_ERROR_SQLSTATE
DROP TABLE msg_log;
\echo :LAST_ERROR_SQLSTATE
DROP EXTENSION hipaa_audit;
\echo :LAST_ERROR_SQLSTATE

-- protect() on what it cannot guard.
CREATE VIEW msg_view AS SELECT * FROM msg_log;
SELECT hipaa_audit.protect('msg_view');
\echo :LAST_ERROR_SQLSTATE
CREATE UNLOGGED TABLE msg_unlogged (a int);
SELECT hipaa_audit.protect('msg_unlogged');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.protect('msg_log');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.protect('msg_unlogged', retention => '-1 day');
\echo :LAST_ERROR_SQLSTATE

-- Nothing above changed a row.
SELECT id, actor FROM msg_log ORDER BY id;
SELECT ok, rows_checked FROM hipaa_audit.verify('msg_log');
