-- Retention: raised, never lowered; a lock makes it final.
\set SHOW_CONTEXT never
CREATE TABLE ret_log (id int);
SELECT hipaa_audit.protect('ret_log', retention => '6 years');
INSERT INTO ret_log VALUES (1);
SELECT hipaa_audit.set_retention('ret_log', '7 years');
SELECT hipaa_audit.set_retention('ret_log', '7 years');
SELECT hipaa_audit.set_retention('ret_log', '2 years');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.set_retention('ret_log', '-1 day');
SELECT hipaa_audit.set_retention('ret_log', NULL);
SELECT hipaa_audit.set_retention('ret_log', '10 years', lock => true);
SELECT hipaa_audit.set_retention('ret_log', '11 years');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.set_retention('ret_log', '10 years');
SELECT table_name, retention, retention_locked FROM hipaa_audit.protected_tables WHERE table_name = 'ret_log';
-- Only members of hipaa_audit_admin, and only for protected tables.
CREATE TABLE ret_plain (id int);
SELECT hipaa_audit.set_retention('ret_plain', '7 years');
CREATE ROLE regress_ha_ret_owner;
SET ROLE regress_ha_ret_owner;
SELECT hipaa_audit.set_retention('ret_log', '20 years');
RESET ROLE;
DROP ROLE regress_ha_ret_owner;
-- The registry itself cannot be edited to lower it.
UPDATE hipaa_audit.registry SET retention = '1 day';
SELECT retention FROM hipaa_audit.registry WHERE relid = 'ret_log'::regclass;
