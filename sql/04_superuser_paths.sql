-- A superuser could try to switch protection off around DDL: by editing
-- the catalogs directly, or by dropping the library from the preload list.
-- While any table is protected, both are refused.
\set SHOW_CONTEXT never
CREATE TABLE cat_log (id int, actor text);
SELECT hipaa_audit.protect('cat_log');
INSERT INTO cat_log VALUES (1, 'dr_alvarez');

UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'cat_log'::regclass;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM pg_trigger WHERE tgrelid = 'cat_log'::regclass;
UPDATE pg_class SET relname = 'renamed_behind_its_back' WHERE oid = 'cat_log'::regclass;
DELETE FROM pg_extension WHERE extname = 'hipaa_audit';

-- The guards are untouched and still work.
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'cat_log'::regclass ORDER BY 1;
SET session_replication_role = replica;
DELETE FROM cat_log;
RESET session_replication_role;
SELECT id, actor FROM cat_log;

-- Reading the catalogs is of course fine.
SELECT count(*) > 0 AS can_read FROM pg_class;

-- ALTER SYSTEM may not take the library out of shared_preload_libraries:
-- after the next restart nothing would guard the tables.
ALTER SYSTEM SET shared_preload_libraries = '';
ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';
ALTER SYSTEM RESET shared_preload_libraries;
ALTER SYSTEM RESET ALL;
