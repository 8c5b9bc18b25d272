-- NULLs and relations that do not exist, for the functions the other files
-- exercise with good input: a clear error each, never a silent NULL.
\set SHOW_CONTEXT never
SELECT hipaa_audit.protect_replica(NULL, gen_random_uuid());
SELECT hipaa_audit.protect_replica('pg_class', NULL);
SELECT hipaa_audit.set_retention(0, '7 years');
SELECT hipaa_audit.place_hold(0, 'reason');
SELECT hipaa_audit.release_hold(NULL, 'reason');
SELECT hipaa_audit.trust_key(NULL);
SELECT hipaa_audit.cosign(NULL, 'line');
SELECT hipaa_audit.cosign(1, NULL);
SELECT hipaa_audit.checkpoint(0);
SELECT * FROM hipaa_audit.verify(0);
SELECT * FROM hipaa_audit.verify_problems(0);
SELECT * FROM hipaa_audit.verify_checkpoint('note', NULL::text[], 1);
SELECT * FROM hipaa_audit.verify_checkpoint('note', ARRAY['k'], 0);
SELECT ok, status, detail FROM hipaa_audit.verify_checkpoint('note', ARRAY[NULL::text], 1);
-- checkpoint_note() is STRICT: a NULL id gives NULL, and so does a missing one.
SELECT hipaa_audit.checkpoint_note(NULL) IS NULL AS null_for_null;
SELECT hipaa_audit.checkpoint_note(999999) IS NULL AS null_for_missing;
-- More bad input, with the SQLSTATE of each.
\set VERBOSITY terse
SELECT hipaa_audit.protect_replica('pg_class', gen_random_uuid(), NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.protect_replica(0, gen_random_uuid());
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.set_retention(NULL, '7 years');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.set_retention('pg_class', '7 years', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.place_hold(NULL, 'reason');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.release_hold(1, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.is_protected(NULL) IS NULL AS null_for_null;
SELECT hipaa_audit.is_protected(0) AS oid_zero;
SELECT * FROM hipaa_audit.verify_checkpoint('note', NULL::text);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM hipaa_audit.verify_checkpoint(NULL, ARRAY['k'], 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM hipaa_audit.verify_checkpoint('note', ARRAY[]::text[], 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM hipaa_audit.verify_receipt('note', ARRAY['k'], 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM hipaa_audit.verify_receipt('note', ARRAY['k'], NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT ok, status, detail FROM hipaa_audit.verify_receipt('note', ARRAY[NULL::text], 1);
SELECT * FROM hipaa_audit.purge_expired('pg_class', max_rows => -1);
\echo :LAST_ERROR_SQLSTATE
-- Functions that check for themselves that the caller is in
-- hipaa_audit_admin: granting EXECUTE to someone else is not enough.
CREATE ROLE regress_ha_not_admin;
CREATE TABLE bad_admin_log (id int);
SELECT hipaa_audit.protect('bad_admin_log');
SELECT hipaa_audit.place_hold('bad_admin_log', 'for the release test') AS bad_hold \gset
GRANT EXECUTE ON FUNCTION hipaa_audit.set_retention(regclass, interval, boolean),
    hipaa_audit.place_hold(regclass, text), hipaa_audit.release_hold(bigint, text),
    hipaa_audit.trust_key(text), hipaa_audit.cosign(bigint, text), hipaa_audit.checkpoint_all()
    TO regress_ha_not_admin;
SET ROLE regress_ha_not_admin;
SELECT hipaa_audit.set_retention('bad_admin_log', '10 years');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.place_hold('bad_admin_log', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.release_hold(:bad_hold, 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.trust_key('x+00000000+AA');
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.cosign(1, 'line');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM hipaa_audit.checkpoint_all();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE EXECUTE ON FUNCTION hipaa_audit.set_retention(regclass, interval, boolean),
    hipaa_audit.place_hold(regclass, text), hipaa_audit.release_hold(bigint, text),
    hipaa_audit.trust_key(text), hipaa_audit.cosign(bigint, text), hipaa_audit.checkpoint_all()
    FROM regress_ha_not_admin;
-- Nothing changed: retention, holds, trusted keys.
SELECT retention FROM hipaa_audit.protected_tables WHERE table_name = 'bad_admin_log';
SELECT count(*) AS active_holds FROM hipaa_audit.legal_holds_active WHERE tbl = 'bad_admin_log'::regclass;
SELECT count(*) AS trusted_keys FROM hipaa_audit.trusted_keys;
DROP ROLE regress_ha_not_admin;
