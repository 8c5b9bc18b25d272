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
