-- The extension installs into its own schema with its roles.
-- (pg_regress runs CREATE EXTENSION hipaa_audit via --load-extension.)
SELECT extname, extversion, n.nspname AS schema, extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'hipaa_audit';

SELECT rolname, rolcanlogin, rolsuper
  FROM pg_roles WHERE rolname LIKE 'hipaa\_audit\_%' ORDER BY rolname;

-- The library is preloaded and reserves its settings prefix.
SHOW shared_preload_libraries;
SET hipaa_audit.no_such_setting = 1;

-- Every member function, with its security mode and search_path setting.
SELECT p.oid::regprocedure AS function, p.prosecdef, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'hipaa_audit'::regnamespace
 ORDER BY 1;

-- Its one setting: shared memory for chain heads, fixed at server start.
SHOW hipaa_audit.max_cached_chains;
SET hipaa_audit.max_cached_chains = 100;
ALTER SYSTEM SET hipaa_audit.max_cached_chains = 15;
ALTER SYSTEM SET hipaa_audit.max_cached_chains = 1048577;

-- The registry is dumped with the database (an extension config table).
SELECT unnest(extconfig)::regclass FROM pg_extension WHERE extname = 'hipaa_audit';

-- Nothing is protected yet.
SELECT count(*) FROM hipaa_audit.protected_tables;
