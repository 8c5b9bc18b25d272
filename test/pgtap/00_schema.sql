-- Schema pinning: every function of hipaa_audit with its signature, language,
-- volatility, strictness and SECURITY DEFINER flag; every grant; the tables,
-- the view and their columns; the roles; the configuration table.  Any
-- function or grant added, removed or changed makes this file fail: update it
-- in the same change, on purpose.
BEGIN;
SELECT plan(128);

-- The schema and the extension ---------------------------------------------------
SELECT has_schema('hipaa_audit', 'schema hipaa_audit exists');
SELECT has_extension('hipaa_audit', 'extension hipaa_audit is installed');
SELECT results_eq(
    $$SELECT n.nspname::text COLLATE "default", e.extrelocatable, r.rolsuper
        FROM pg_extension e
        JOIN pg_namespace n ON n.oid = e.extnamespace
        JOIN pg_roles r ON r.oid = n.nspowner
       WHERE e.extname = 'hipaa_audit'$$,
    $$VALUES ('hipaa_audit', false, true)$$,
    'the extension lives in schema hipaa_audit, is not relocatable, and the schema is owned by a superuser');
SELECT is(
    (SELECT count(*) FROM (
        SELECT proowner AS owner FROM pg_proc WHERE pronamespace = 'hipaa_audit'::regnamespace
        UNION ALL
        SELECT relowner FROM pg_class WHERE relnamespace = 'hipaa_audit'::regnamespace) o
      WHERE owner <> (SELECT nspowner FROM pg_namespace WHERE nspname = 'hipaa_audit')),
    0::bigint,
    'every function and relation of the schema is owned by the schema owner');
SELECT bag_eq(
    $$SELECT pg_describe_object(classid, objid, objsubid) COLLATE "default"
        FROM pg_depend
       WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
         AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'hipaa_audit')
         -- (PostgreSQL 18 also records the row types of the extension's
         -- tables and views, and their array types, as its members.)
         AND NOT (classid = 'pg_type'::regclass AND EXISTS (
               SELECT 1 FROM pg_type t LEFT JOIN pg_type e ON e.oid = t.typelem
                WHERE t.oid = objid AND (t.typrelid <> 0 OR e.typrelid <> 0)))$$,
    $$VALUES ('function hipaa_audit.chain_row()'),
             ('function hipaa_audit.checkpoint(regclass)'),
             ('function hipaa_audit.verifier_key()'),
             ('function hipaa_audit.verify_checkpoint(text,text)'),
             ('table hipaa_audit.checkpoints'),
             ('sequence hipaa_audit.checkpoints_id_seq'),
             ('table hipaa_audit.trusted_keys'),
             ('table hipaa_audit.cosignatures'),
             ('sequence hipaa_audit.cosignatures_id_seq'),
             ('function hipaa_audit.checkpoint_all()'),
             ('function hipaa_audit.verify_checkpoint(text,text[],integer)'),
             ('function hipaa_audit.trust_key(text)'),
             ('function hipaa_audit.checkpoint_note(bigint)'),
             ('function hipaa_audit.cosign(bigint,text)'),
             ('function hipaa_audit.verify_checkpoint_chain()'),
             ('function hipaa_audit.protect_replica(regclass,uuid,interval,integer)'),
             ('function hipaa_audit.set_retention(regclass,interval,boolean)'),
             ('function hipaa_audit.place_hold(regclass,text)'),
             ('function hipaa_audit.release_hold(bigint,text)'),
             ('table hipaa_audit.legal_holds'),
             ('sequence hipaa_audit.legal_holds_id_seq'),
             ('table hipaa_audit.hold_releases'),
             ('view hipaa_audit.legal_holds_active'),
             ('function hipaa_audit.guard_row()'),
             ('function hipaa_audit.guard_truncate()'),
             ('function hipaa_audit.is_protected(regclass)'),
             ('function hipaa_audit.protect(regclass,interval,integer)'),
             ('function hipaa_audit.unprotect(regclass)'),
             ('function hipaa_audit.verify(regclass)'),
             ('function hipaa_audit.verify_problems(regclass)'),
             ('function hipaa_audit.verify(regclass,bigint)'),
             ('function hipaa_audit.verify_problems(regclass,bigint)'),
             ('function hipaa_audit.verify(regclass,text,text)'),
             ('function hipaa_audit.verify_problems(regclass,text,text)'),
             ('function hipaa_audit.verify_rows(regclass,integer,timestamp with time zone,timestamp with time zone)'),
             ('function hipaa_audit.verify_rows_problems(regclass,integer,timestamp with time zone,timestamp with time zone)'),
             ('function hipaa_audit.verify_progress()'),
             ('table hipaa_audit.registry'),
             ('view hipaa_audit.protected_tables'),
             ('view hipaa_audit.verify_progress'),
             ('table hipaa_audit.purge_receipts'),
             ('sequence hipaa_audit.purge_receipts_id_seq'),
             ('table hipaa_audit.purge_anchors'),
             ('table hipaa_audit.retired_tables'),
             ('sequence hipaa_audit.retired_tables_id_seq'),
             ('function hipaa_audit.purge_expired(regclass,boolean,bigint)'),
             ('function hipaa_audit.verify_receipt(text,text)'),
             ('function hipaa_audit.verify_receipt(text,text[],integer)'),
             ('function hipaa_audit.verify_receipt_chain()'),
             ('table hipaa_audit.merkle_tiles'),
             ('table hipaa_audit.merkle_ranges'),
             ('function hipaa_audit.prove_row(regclass,integer,bigint,bigint)'),
             ('function hipaa_audit.prove_consistency(regclass,bigint,bigint)'),
             ('function hipaa_audit.verify_proof(text,bytea,text[],integer)'),
             ('function hipaa_audit.witness_request(regclass,text,bigint)'),
             ('function hipaa_audit.verify_tree(regclass)')$$,
    'the extension owns exactly these objects');
SELECT results_eq(
    $$SELECT extconfig::regclass[]::text[] COLLATE "default", extcondition COLLATE "default" FROM pg_extension WHERE extname = 'hipaa_audit'$$,
    $$VALUES (ARRAY['hipaa_audit.registry', 'hipaa_audit.checkpoints', 'hipaa_audit.checkpoints_id_seq',
                    'hipaa_audit.trusted_keys', 'hipaa_audit.cosignatures', 'hipaa_audit.cosignatures_id_seq',
                    'hipaa_audit.legal_holds', 'hipaa_audit.legal_holds_id_seq', 'hipaa_audit.hold_releases',
                    'hipaa_audit.purge_receipts', 'hipaa_audit.purge_receipts_id_seq', 'hipaa_audit.purge_anchors',
                    'hipaa_audit.retired_tables', 'hipaa_audit.retired_tables_id_seq',
                    'hipaa_audit.merkle_tiles', 'hipaa_audit.merkle_ranges'],
              ARRAY['', '', '', '', '', '', '', '', '', '', '', '', '', '', '', ''])$$,
    'the registry, the checkpoints, the stored trees and their sequences are the extension configuration, dumped whole');

-- Functions ------------------------------------------------------------------------
SELECT functions_are('hipaa_audit',
    ARRAY['chain_row', 'checkpoint', 'checkpoint_all', 'checkpoint_note', 'cosign', 'guard_row',
          'guard_truncate', 'is_protected', 'place_hold', 'protect', 'protect_replica', 'purge_expired',
          'prove_consistency', 'prove_row',
          'release_hold', 'set_retention', 'trust_key',
          'unprotect', 'verifier_key',
          'verify', 'verify_checkpoint', 'verify_checkpoint_chain', 'verify_problems', 'verify_progress',
          'verify_proof', 'verify_receipt', 'verify_receipt_chain', 'verify_rows', 'verify_rows_problems',
          'verify_tree', 'witness_request'],
    'schema hipaa_audit has exactly these functions');

SELECT has_function('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'],
    'protect(regclass, interval, integer) exists');
SELECT function_lang_is('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'], 'c',
    'protect is LANGUAGE C');
SELECT function_returns('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'], 'void',
    'protect returns void');
SELECT volatility_is('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'], 'volatile',
    'protect is VOLATILE');
SELECT isnt_definer('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'],
    'protect is not SECURITY DEFINER');
SELECT isnt_strict('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'],
    'protect is CALLED ON NULL INPUT (it reports NULL arguments itself)');

SELECT has_function('hipaa_audit', 'unprotect', ARRAY['regclass'], 'unprotect(regclass) exists');
SELECT function_lang_is('hipaa_audit', 'unprotect', ARRAY['regclass'], 'c', 'unprotect is LANGUAGE C');
SELECT function_returns('hipaa_audit', 'unprotect', ARRAY['regclass'], 'void', 'unprotect returns void');
SELECT volatility_is('hipaa_audit', 'unprotect', ARRAY['regclass'], 'volatile', 'unprotect is VOLATILE');
SELECT isnt_definer('hipaa_audit', 'unprotect', ARRAY['regclass'], 'unprotect is not SECURITY DEFINER');
SELECT isnt_strict('hipaa_audit', 'unprotect', ARRAY['regclass'], 'unprotect is not STRICT (NULL is an error)');

SELECT has_function('hipaa_audit', 'is_protected', ARRAY['regclass'], 'is_protected(regclass) exists');
SELECT function_lang_is('hipaa_audit', 'is_protected', ARRAY['regclass'], 'c', 'is_protected is LANGUAGE C');
SELECT function_returns('hipaa_audit', 'is_protected', ARRAY['regclass'], 'boolean', 'is_protected returns boolean');
SELECT volatility_is('hipaa_audit', 'is_protected', ARRAY['regclass'], 'stable', 'is_protected is STABLE');
SELECT isnt_definer('hipaa_audit', 'is_protected', ARRAY['regclass'], 'is_protected is not SECURITY DEFINER');
SELECT is_strict('hipaa_audit', 'is_protected', ARRAY['regclass'], 'is_protected is STRICT');

SELECT has_function('hipaa_audit', 'guard_row', ARRAY[]::name[], 'guard_row() exists');
SELECT function_lang_is('hipaa_audit', 'guard_row', ARRAY[]::name[], 'c', 'guard_row is LANGUAGE C');
SELECT function_returns('hipaa_audit', 'guard_row', ARRAY[]::name[], 'trigger', 'guard_row returns trigger');
SELECT volatility_is('hipaa_audit', 'guard_row', ARRAY[]::name[], 'volatile', 'guard_row is VOLATILE');
SELECT isnt_definer('hipaa_audit', 'guard_row', ARRAY[]::name[], 'guard_row is not SECURITY DEFINER');
SELECT isnt_strict('hipaa_audit', 'guard_row', ARRAY[]::name[], 'guard_row is not STRICT');

SELECT has_function('hipaa_audit', 'guard_truncate', ARRAY[]::name[], 'guard_truncate() exists');
SELECT function_lang_is('hipaa_audit', 'guard_truncate', ARRAY[]::name[], 'c', 'guard_truncate is LANGUAGE C');
SELECT function_returns('hipaa_audit', 'guard_truncate', ARRAY[]::name[], 'trigger', 'guard_truncate returns trigger');
SELECT volatility_is('hipaa_audit', 'guard_truncate', ARRAY[]::name[], 'volatile', 'guard_truncate is VOLATILE');
SELECT isnt_definer('hipaa_audit', 'guard_truncate', ARRAY[]::name[], 'guard_truncate is not SECURITY DEFINER');
SELECT isnt_strict('hipaa_audit', 'guard_truncate', ARRAY[]::name[], 'guard_truncate is not STRICT');

SELECT has_function('hipaa_audit', 'chain_row', ARRAY[]::name[], 'chain_row() exists');
SELECT function_lang_is('hipaa_audit', 'chain_row', ARRAY[]::name[], 'c', 'chain_row is LANGUAGE C');
SELECT function_returns('hipaa_audit', 'chain_row', ARRAY[]::name[], 'trigger', 'chain_row returns trigger');
SELECT volatility_is('hipaa_audit', 'chain_row', ARRAY[]::name[], 'volatile', 'chain_row is VOLATILE');
SELECT isnt_definer('hipaa_audit', 'chain_row', ARRAY[]::name[], 'chain_row is not SECURITY DEFINER');
SELECT isnt_strict('hipaa_audit', 'chain_row', ARRAY[]::name[], 'chain_row is not STRICT');

SELECT has_function('hipaa_audit', 'verify', ARRAY['regclass'], 'verify(regclass) exists');
SELECT function_lang_is('hipaa_audit', 'verify', ARRAY['regclass'], 'c', 'verify is LANGUAGE C');
SELECT function_returns('hipaa_audit', 'verify', ARRAY['regclass'], 'record',
    'verify returns record (one row, through its OUT parameters)');
SELECT volatility_is('hipaa_audit', 'verify', ARRAY['regclass'], 'volatile', 'verify is VOLATILE');
SELECT isnt_definer('hipaa_audit', 'verify', ARRAY['regclass'],
    'verify is not SECURITY DEFINER (it checks the caller''s right itself)');
SELECT isnt_strict('hipaa_audit', 'verify', ARRAY['regclass'],
    'verify is CALLED ON NULL INPUT (NULL is an error)');

SELECT has_function('hipaa_audit', 'verify_problems', ARRAY['regclass'], 'verify_problems(regclass) exists');
SELECT function_lang_is('hipaa_audit', 'verify_problems', ARRAY['regclass'], 'c', 'verify_problems is LANGUAGE C');
SELECT function_returns('hipaa_audit', 'verify_problems', ARRAY['regclass'], 'setof record',
    'verify_problems returns setof record (RETURNS TABLE)');
SELECT volatility_is('hipaa_audit', 'verify_problems', ARRAY['regclass'], 'volatile', 'verify_problems is VOLATILE');
SELECT isnt_definer('hipaa_audit', 'verify_problems', ARRAY['regclass'],
    'verify_problems is not SECURITY DEFINER (it checks the caller''s right itself)');
SELECT isnt_strict('hipaa_audit', 'verify_problems', ARRAY['regclass'],
    'verify_problems is CALLED ON NULL INPUT (NULL is an error)');

SELECT has_function('hipaa_audit', 'verify_progress', ARRAY[]::name[], 'verify_progress() exists');
SELECT function_lang_is('hipaa_audit', 'verify_progress', ARRAY[]::name[], 'c', 'verify_progress is LANGUAGE C');
SELECT function_returns('hipaa_audit', 'verify_progress', ARRAY[]::name[], 'setof record',
    'verify_progress returns setof record (RETURNS TABLE)');
SELECT volatility_is('hipaa_audit', 'verify_progress', ARRAY[]::name[], 'volatile', 'verify_progress is VOLATILE');
SELECT isnt_definer('hipaa_audit', 'verify_progress', ARRAY[]::name[], 'verify_progress is not SECURITY DEFINER');
SELECT is_strict('hipaa_audit', 'verify_progress', ARRAY[]::name[], 'verify_progress is STRICT');

-- The one SQL-language function: read-only, pinned search_path.
SELECT results_eq(
    $$SELECT pg_get_function_arguments(p.oid) COLLATE "default", pg_get_function_result(p.oid) COLLATE "default", l.lanname::text COLLATE "default",
             p.provolatile::text COLLATE "default", p.prosecdef, p.proisstrict, p.proconfig::text COLLATE "default"
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.oid = 'hipaa_audit.checkpoint_note(bigint)'::regprocedure$$,
    $$VALUES ('checkpoint_id bigint', 'text', 'sql', 's', false, true,
              '{"search_path=pg_catalog, pg_temp"}')$$,
    'checkpoint_note(bigint): SQL, STABLE, STRICT, not SECURITY DEFINER, search_path pinned');

-- Everything about each function in one place, so that any drift (argument
-- names or defaults, parallel safety, SET clauses, the C symbol) shows up.
SELECT bag_eq(
    $$SELECT p.oid::regprocedure::text COLLATE "default",
             pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
             l.lanname::text, p.prokind::text, p.provolatile::text, p.proparallel::text,
             p.prosecdef, p.proisstrict, p.proleakproof, p.proretset,
             coalesce(p.proconfig, '{}'), p.prosrc, p.probin,
             obj_description(p.oid, 'pg_proc') IS NOT NULL, p.procost, p.prorows
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'hipaa_audit'::regnamespace AND l.lanname = 'c'$$,
    $$VALUES
      ('hipaa_audit.purge_expired(regclass,boolean,bigint)',
       'tbl regclass, dry_run boolean DEFAULT false, max_rows bigint DEFAULT NULL::bigint, OUT rows_removed bigint, OUT receipt_id bigint, OUT receipt text, OUT partition text',
       'SETOF record', 'c', 'f', 'v', 'u',
       false, false, false, true, '{}'::text[], 'purge_expired', '$libdir/hipaa_audit', true,
       1::real, 1::real),
      ('hipaa_audit.verify_receipt(text,text)',
       'note text, key text, OUT ok boolean, OUT status text, OUT tbl regclass, OUT detail text',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'verify_receipt', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verify_receipt(text,text[],integer)',
       'note text, keys text[], quorum integer, OUT ok boolean, OUT status text, OUT tbl regclass, OUT detail text, OUT signers text[]',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'verify_receipt_quorum', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.place_hold(regclass,text)', 'tbl regclass, reason text', 'bigint', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'place_hold', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.release_hold(bigint,text)', 'hold_id bigint, reason text', 'void', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'release_hold', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.set_retention(regclass,interval,boolean)',
       'tbl regclass, retention interval, lock boolean DEFAULT false',
       'void', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'set_retention', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.protect_replica(regclass,uuid,interval,integer)',
       'tbl regclass, table_uuid uuid, retention interval DEFAULT ''6 years''::interval, chains integer DEFAULT 32',
       'void', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'protect_replica', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.checkpoint_all()', '', 'TABLE(tbl regclass, note text)', 'c', 'f', 'v', 'u',
       false, true, false, true, '{}'::text[], 'checkpoint_all', '$libdir/hipaa_audit', true,
       1::real, 1000::real),
      ('hipaa_audit.verify_checkpoint(text,text[],integer)',
       'note text, keys text[], quorum integer, OUT ok boolean, OUT status text, OUT tbl regclass, OUT detail text, OUT signers text[]',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'verify_checkpoint_quorum', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.trust_key(text)', 'verifier_key text', 'void', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'trust_key', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.cosign(bigint,text)', 'checkpoint_id bigint, signature_line text', 'text', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'cosign', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.checkpoint(regclass)', 'tbl regclass', 'text', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'checkpoint', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verifier_key()', '', 'text', 'c', 'f', 's', 'u',
       false, true, false, false, '{}'::text[], 'verifier_key', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verify_checkpoint(text,text)',
       'note text, key text, OUT ok boolean, OUT status text, OUT tbl regclass, OUT detail text',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'verify_checkpoint', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.chain_row()', '', 'trigger', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'chain_row', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.guard_row()', '', 'trigger', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'guard_row', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.guard_truncate()', '', 'trigger', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'guard_truncate', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.is_protected(regclass)', 'tbl regclass', 'boolean', 'c', 'f', 's', 'u',
       false, true, false, false, '{}'::text[], 'is_protected', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.protect(regclass,interval,integer)',
       'tbl regclass, retention interval DEFAULT ''6 years''::interval, chains integer DEFAULT 32',
       'void', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'protect', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.unprotect(regclass)', 'tbl regclass', 'void', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'unprotect', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verify(regclass)',
       'tbl regclass, OUT ok boolean, OUT rows_checked bigint, OUT chains integer, OUT problems bigint, OUT first_problem text',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'verify', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verify_problems(regclass)', 'tbl regclass',
       'TABLE(chain integer, seq bigint, kind text, detail text)', 'c', 'f', 'v', 'u',
       false, false, false, true, '{}'::text[], 'verify_problems', '$libdir/hipaa_audit', true,
       1::real, 10::real),
      ('hipaa_audit.verify(regclass,bigint)',
       'tbl regclass, since bigint, OUT ok boolean, OUT rows_checked bigint, OUT chains integer, OUT problems bigint, OUT first_problem text',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'verify_since', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verify_problems(regclass,bigint)', 'tbl regclass, since bigint',
       'TABLE(chain integer, seq bigint, kind text, detail text)', 'c', 'f', 'v', 'u',
       false, false, false, true, '{}'::text[], 'verify_problems_since', '$libdir/hipaa_audit', true,
       1::real, 10::real),
      ('hipaa_audit.verify(regclass,text,text)',
       'tbl regclass, since text, key text, OUT ok boolean, OUT rows_checked bigint, OUT chains integer, OUT problems bigint, OUT first_problem text',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'verify_since_note', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verify_problems(regclass,text,text)', 'tbl regclass, since text, key text',
       'TABLE(chain integer, seq bigint, kind text, detail text)', 'c', 'f', 'v', 'u',
       false, false, false, true, '{}'::text[], 'verify_problems_since_note', '$libdir/hipaa_audit', true,
       1::real, 10::real),
      ('hipaa_audit.verify_rows(regclass,integer,timestamp with time zone,timestamp with time zone)',
       'tbl regclass, chain integer DEFAULT NULL::integer, from_time timestamp with time zone DEFAULT NULL::timestamp with time zone, to_time timestamp with time zone DEFAULT NULL::timestamp with time zone, OUT ok boolean, OUT rows_checked bigint, OUT chains integer, OUT problems bigint, OUT first_problem text',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'verify_rows', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verify_rows_problems(regclass,integer,timestamp with time zone,timestamp with time zone)',
       'tbl regclass, chain integer DEFAULT NULL::integer, from_time timestamp with time zone DEFAULT NULL::timestamp with time zone, to_time timestamp with time zone DEFAULT NULL::timestamp with time zone',
       'TABLE(chain integer, seq bigint, kind text, detail text)', 'c', 'f', 'v', 'u',
       false, false, false, true, '{}'::text[], 'verify_rows_problems', '$libdir/hipaa_audit', true,
       1::real, 10::real),
      ('hipaa_audit.verify_progress()', '',
       'TABLE(pid integer, tbl regclass, rows_checked bigint, rows_estimated bigint, started timestamp with time zone)',
       'c', 'f', 'v', 'u',
       false, true, false, true, '{}'::text[], 'verify_progress', '$libdir/hipaa_audit', true,
       1::real, 1000::real),
      ('hipaa_audit.prove_row(regclass,integer,bigint,bigint)',
       'tbl regclass, chain integer, seq bigint, checkpoint_id bigint DEFAULT NULL::bigint',
       'text', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'prove_row', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.prove_consistency(regclass,bigint,bigint)',
       'tbl regclass, old_checkpoint bigint, new_checkpoint bigint',
       'text', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'prove_consistency', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verify_proof(text,bytea,text[],integer)',
       'proof text, leaf bytea, keys text[], quorum integer DEFAULT 1, OUT ok boolean, OUT status text, OUT detail text, OUT leaf_index bigint, OUT tree_size bigint, OUT signers text[]',
       'record', 'c', 'f', 'i', 's',
       false, false, false, false, '{}'::text[], 'verify_proof', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.witness_request(regclass,text,bigint)',
       'tbl regclass, witness text, old_size bigint DEFAULT NULL::bigint, OUT checkpoint_id bigint, OUT old_size_used bigint, OUT body text',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'witness_request', '$libdir/hipaa_audit', true,
       1::real, 0::real),
      ('hipaa_audit.verify_tree(regclass)',
       'tbl regclass, OUT ok boolean, OUT tree_size bigint, OUT leaves_compared bigint, OUT problems bigint, OUT first_problem text',
       'record', 'c', 'f', 'v', 'u',
       false, false, false, false, '{}'::text[], 'verify_tree', '$libdir/hipaa_audit', true,
       1::real, 0::real)$$,
    'every function: signature, arguments and defaults, result, language, kind, volatility, parallel, definer, strict, leakproof, returns set, SET, symbol, library, comment, cost, rows');

-- EXECUTE grants -----------------------------------------------------------------
SELECT function_privs_are('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'], 'public', ARRAY['EXECUTE'],
    'PUBLIC may execute protect (it checks ownership itself)');
SELECT function_privs_are('hipaa_audit', 'is_protected', ARRAY['regclass'], 'public', ARRAY['EXECUTE'],
    'PUBLIC may execute is_protected');
SELECT function_privs_are('hipaa_audit', 'unprotect', ARRAY['regclass'], 'public', ARRAY[]::name[],
    'PUBLIC may not execute unprotect');
SELECT function_privs_are('hipaa_audit', 'guard_row', ARRAY[]::name[], 'public', ARRAY['EXECUTE'],
    'PUBLIC may execute guard_row (PostgreSQL checks it when it clones the trigger onto a new partition; CREATE TRIGGER naming it is refused but to superusers)');
SELECT function_privs_are('hipaa_audit', 'guard_truncate', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC may not execute guard_truncate');
SELECT function_privs_are('hipaa_audit', 'chain_row', ARRAY[]::name[], 'public', ARRAY['EXECUTE'],
    'PUBLIC may execute chain_row (as guard_row)');
SELECT function_privs_are('hipaa_audit', 'verify', ARRAY['regclass'], 'public', ARRAY['EXECUTE'],
    'PUBLIC may execute verify (it checks SELECT or auditor/admin membership itself)');
SELECT function_privs_are('hipaa_audit', 'verify_problems', ARRAY['regclass'], 'public', ARRAY['EXECUTE'],
    'PUBLIC may execute verify_problems (it checks SELECT or auditor/admin membership itself)');
SELECT function_privs_are('hipaa_audit', 'verify_progress', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC may not execute verify_progress');

SELECT function_privs_are('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'], 'hipaa_audit_admin', ARRAY['EXECUTE'],
    'hipaa_audit_admin may execute protect');
SELECT function_privs_are('hipaa_audit', 'is_protected', ARRAY['regclass'], 'hipaa_audit_admin', ARRAY['EXECUTE'],
    'hipaa_audit_admin may execute is_protected');
SELECT function_privs_are('hipaa_audit', 'unprotect', ARRAY['regclass'], 'hipaa_audit_admin', ARRAY['EXECUTE'],
    'hipaa_audit_admin may execute unprotect');
SELECT function_privs_are('hipaa_audit', 'guard_row', ARRAY[]::name[], 'hipaa_audit_admin', ARRAY['EXECUTE'],
    'hipaa_audit_admin may execute guard_row (through PUBLIC)');
SELECT function_privs_are('hipaa_audit', 'guard_truncate', ARRAY[]::name[], 'hipaa_audit_admin', ARRAY[]::name[],
    'hipaa_audit_admin may not execute guard_truncate');
SELECT function_privs_are('hipaa_audit', 'chain_row', ARRAY[]::name[], 'hipaa_audit_admin', ARRAY['EXECUTE'],
    'hipaa_audit_admin may execute chain_row (through PUBLIC)');
SELECT function_privs_are('hipaa_audit', 'verify', ARRAY['regclass'], 'hipaa_audit_admin', ARRAY['EXECUTE'],
    'hipaa_audit_admin may execute verify (through PUBLIC)');
SELECT function_privs_are('hipaa_audit', 'verify_problems', ARRAY['regclass'], 'hipaa_audit_admin', ARRAY['EXECUTE'],
    'hipaa_audit_admin may execute verify_problems (through PUBLIC)');
SELECT function_privs_are('hipaa_audit', 'verify_progress', ARRAY[]::name[], 'hipaa_audit_admin', ARRAY['EXECUTE'],
    'hipaa_audit_admin may execute verify_progress');

SELECT function_privs_are('hipaa_audit', 'protect', ARRAY['regclass', 'interval', 'integer'], 'hipaa_audit_auditor', ARRAY['EXECUTE'],
    'hipaa_audit_auditor may execute protect (through PUBLIC)');
SELECT function_privs_are('hipaa_audit', 'is_protected', ARRAY['regclass'], 'hipaa_audit_auditor', ARRAY['EXECUTE'],
    'hipaa_audit_auditor may execute is_protected');
SELECT function_privs_are('hipaa_audit', 'unprotect', ARRAY['regclass'], 'hipaa_audit_auditor', ARRAY[]::name[],
    'hipaa_audit_auditor may not execute unprotect');
SELECT function_privs_are('hipaa_audit', 'guard_row', ARRAY[]::name[], 'hipaa_audit_auditor', ARRAY['EXECUTE'],
    'hipaa_audit_auditor may execute guard_row (through PUBLIC)');
SELECT function_privs_are('hipaa_audit', 'guard_truncate', ARRAY[]::name[], 'hipaa_audit_auditor', ARRAY[]::name[],
    'hipaa_audit_auditor may not execute guard_truncate');
SELECT function_privs_are('hipaa_audit', 'chain_row', ARRAY[]::name[], 'hipaa_audit_auditor', ARRAY['EXECUTE'],
    'hipaa_audit_auditor may execute chain_row (through PUBLIC)');
SELECT function_privs_are('hipaa_audit', 'verify', ARRAY['regclass'], 'hipaa_audit_auditor', ARRAY['EXECUTE'],
    'hipaa_audit_auditor may execute verify (through PUBLIC)');
SELECT function_privs_are('hipaa_audit', 'verify_problems', ARRAY['regclass'], 'hipaa_audit_auditor', ARRAY['EXECUTE'],
    'hipaa_audit_auditor may execute verify_problems (through PUBLIC)');
SELECT function_privs_are('hipaa_audit', 'verify_progress', ARRAY[]::name[], 'hipaa_audit_auditor', ARRAY['EXECUTE'],
    'hipaa_audit_auditor may execute verify_progress');

-- Every ACL entry of the schema, its functions and its relations, whoever the
-- grantee: a grant to any other role fails here.
SELECT bag_eq(
    $$SELECT o.obj COLLATE "default",
             (CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                   WHEN a.grantee = o.owner THEN 'owner'
                   ELSE pg_get_userbyid(a.grantee)::text END) COLLATE "default",
             a.privilege_type COLLATE "default", a.is_grantable
        FROM (SELECT 'function ' || p.oid::regprocedure::text AS obj, p.proowner AS owner,
                     coalesce(p.proacl, acldefault('f', p.proowner)) AS acl
                FROM pg_proc p WHERE p.pronamespace = 'hipaa_audit'::regnamespace
              UNION ALL
              SELECT 'relation ' || c.oid::regclass::text, c.relowner,
                     coalesce(c.relacl, acldefault('r', c.relowner))
                FROM pg_class c
               WHERE c.relnamespace = 'hipaa_audit'::regnamespace AND c.relkind NOT IN ('i', 'I')
              UNION ALL
              SELECT 'schema ' || n.nspname, n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner))
                FROM pg_namespace n WHERE n.nspname = 'hipaa_audit') o,
             aclexplode(o.acl) a
       -- (An owner's MAINTAIN on its relations is PostgreSQL 17's default.)
       WHERE NOT (a.grantee = o.owner AND a.privilege_type = 'MAINTAIN')$$,
    $$VALUES
      ('function hipaa_audit.chain_row()', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.chain_row()', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.place_hold(regclass,text)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.place_hold(regclass,text)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.release_hold(bigint,text)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.release_hold(bigint,text)', 'owner', 'EXECUTE', false),
      ('relation hipaa_audit.legal_holds', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.legal_holds', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.legal_holds', 'owner', 'DELETE', false),
      ('relation hipaa_audit.legal_holds', 'owner', 'INSERT', false),
      ('relation hipaa_audit.legal_holds', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.legal_holds', 'owner', 'SELECT', false),
      ('relation hipaa_audit.legal_holds', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.legal_holds', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.legal_holds', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.hold_releases', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.hold_releases', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.hold_releases', 'owner', 'DELETE', false),
      ('relation hipaa_audit.hold_releases', 'owner', 'INSERT', false),
      ('relation hipaa_audit.hold_releases', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.hold_releases', 'owner', 'SELECT', false),
      ('relation hipaa_audit.hold_releases', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.hold_releases', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.hold_releases', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.legal_holds_active', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.legal_holds_active', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.legal_holds_active', 'owner', 'DELETE', false),
      ('relation hipaa_audit.legal_holds_active', 'owner', 'INSERT', false),
      ('relation hipaa_audit.legal_holds_active', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.legal_holds_active', 'owner', 'SELECT', false),
      ('relation hipaa_audit.legal_holds_active', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.legal_holds_active', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.legal_holds_active', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.legal_holds_id_seq', 'owner', 'DELETE', false),
      ('relation hipaa_audit.legal_holds_id_seq', 'owner', 'INSERT', false),
      ('relation hipaa_audit.legal_holds_id_seq', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.legal_holds_id_seq', 'owner', 'SELECT', false),
      ('relation hipaa_audit.legal_holds_id_seq', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.legal_holds_id_seq', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.legal_holds_id_seq', 'owner', 'UPDATE', false),
      ('function hipaa_audit.set_retention(regclass,interval,boolean)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.set_retention(regclass,interval,boolean)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.protect_replica(regclass,uuid,interval,integer)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.protect_replica(regclass,uuid,interval,integer)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.checkpoint_all()', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.checkpoint_all()', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_checkpoint(text,text[],integer)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.verify_checkpoint(text,text[],integer)', 'hipaa_audit_auditor', 'EXECUTE', false),
      ('function hipaa_audit.verify_checkpoint(text,text[],integer)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.trust_key(text)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.trust_key(text)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.cosign(bigint,text)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.cosign(bigint,text)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.checkpoint_note(bigint)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.checkpoint_note(bigint)', 'hipaa_audit_auditor', 'EXECUTE', false),
      ('function hipaa_audit.checkpoint_note(bigint)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_checkpoint_chain()', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.verify_checkpoint_chain()', 'hipaa_audit_auditor', 'EXECUTE', false),
      ('function hipaa_audit.verify_checkpoint_chain()', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.checkpoint(regclass)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.checkpoint(regclass)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verifier_key()', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.verifier_key()', 'hipaa_audit_auditor', 'EXECUTE', false),
      ('function hipaa_audit.verifier_key()', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_checkpoint(text,text)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.verify_checkpoint(text,text)', 'hipaa_audit_auditor', 'EXECUTE', false),
      ('function hipaa_audit.verify_checkpoint(text,text)', 'owner', 'EXECUTE', false),
      ('relation hipaa_audit.checkpoints', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.checkpoints', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.checkpoints', 'owner', 'DELETE', false),
      ('relation hipaa_audit.checkpoints', 'owner', 'INSERT', false),
      ('relation hipaa_audit.checkpoints', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.checkpoints', 'owner', 'SELECT', false),
      ('relation hipaa_audit.checkpoints', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.checkpoints', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.checkpoints', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.trusted_keys', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.trusted_keys', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.trusted_keys', 'owner', 'DELETE', false),
      ('relation hipaa_audit.trusted_keys', 'owner', 'INSERT', false),
      ('relation hipaa_audit.trusted_keys', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.trusted_keys', 'owner', 'SELECT', false),
      ('relation hipaa_audit.trusted_keys', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.trusted_keys', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.trusted_keys', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.cosignatures', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.cosignatures', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.cosignatures', 'owner', 'DELETE', false),
      ('relation hipaa_audit.cosignatures', 'owner', 'INSERT', false),
      ('relation hipaa_audit.cosignatures', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.cosignatures', 'owner', 'SELECT', false),
      ('relation hipaa_audit.cosignatures', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.cosignatures', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.cosignatures', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.cosignatures_id_seq', 'owner', 'DELETE', false),
      ('relation hipaa_audit.cosignatures_id_seq', 'owner', 'INSERT', false),
      ('relation hipaa_audit.cosignatures_id_seq', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.cosignatures_id_seq', 'owner', 'SELECT', false),
      ('relation hipaa_audit.cosignatures_id_seq', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.cosignatures_id_seq', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.cosignatures_id_seq', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.checkpoints_id_seq', 'owner', 'DELETE', false),
      ('relation hipaa_audit.checkpoints_id_seq', 'owner', 'INSERT', false),
      ('relation hipaa_audit.checkpoints_id_seq', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.checkpoints_id_seq', 'owner', 'SELECT', false),
      ('relation hipaa_audit.checkpoints_id_seq', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.checkpoints_id_seq', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.checkpoints_id_seq', 'owner', 'UPDATE', false),
      ('function hipaa_audit.guard_row()', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.guard_row()', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.guard_truncate()', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.is_protected(regclass)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.is_protected(regclass)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.protect(regclass,interval,integer)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.protect(regclass,interval,integer)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.unprotect(regclass)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.unprotect(regclass)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify(regclass)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify(regclass)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_problems(regclass)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify_problems(regclass)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify(regclass,bigint)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify(regclass,bigint)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_problems(regclass,bigint)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify_problems(regclass,bigint)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify(regclass,text,text)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify(regclass,text,text)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_problems(regclass,text,text)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify_problems(regclass,text,text)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_rows(regclass,integer,timestamp with time zone,timestamp with time zone)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify_rows(regclass,integer,timestamp with time zone,timestamp with time zone)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_rows_problems(regclass,integer,timestamp with time zone,timestamp with time zone)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify_rows_problems(regclass,integer,timestamp with time zone,timestamp with time zone)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_progress()', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.verify_progress()', 'hipaa_audit_auditor', 'EXECUTE', false),
      ('function hipaa_audit.verify_progress()', 'owner', 'EXECUTE', false),
      ('relation hipaa_audit.protected_tables', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.protected_tables', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.protected_tables', 'owner', 'DELETE', false),
      ('relation hipaa_audit.protected_tables', 'owner', 'INSERT', false),
      ('relation hipaa_audit.protected_tables', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.protected_tables', 'owner', 'SELECT', false),
      ('relation hipaa_audit.protected_tables', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.protected_tables', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.protected_tables', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.registry', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.registry', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.registry', 'owner', 'DELETE', false),
      ('relation hipaa_audit.registry', 'owner', 'INSERT', false),
      ('relation hipaa_audit.registry', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.registry', 'owner', 'SELECT', false),
      ('relation hipaa_audit.registry', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.registry', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.registry', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.verify_progress', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.verify_progress', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.verify_progress', 'owner', 'DELETE', false),
      ('relation hipaa_audit.verify_progress', 'owner', 'INSERT', false),
      ('relation hipaa_audit.verify_progress', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.verify_progress', 'owner', 'SELECT', false),
      ('relation hipaa_audit.verify_progress', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.verify_progress', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.verify_progress', 'owner', 'UPDATE', false),
      ('function hipaa_audit.purge_expired(regclass,boolean,bigint)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.purge_expired(regclass,boolean,bigint)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_receipt(text,text)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.verify_receipt(text,text)', 'hipaa_audit_auditor', 'EXECUTE', false),
      ('function hipaa_audit.verify_receipt(text,text)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_receipt(text,text[],integer)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.verify_receipt(text,text[],integer)', 'hipaa_audit_auditor', 'EXECUTE', false),
      ('function hipaa_audit.verify_receipt(text,text[],integer)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_receipt_chain()', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.verify_receipt_chain()', 'hipaa_audit_auditor', 'EXECUTE', false),
      ('function hipaa_audit.verify_receipt_chain()', 'owner', 'EXECUTE', false),
      ('relation hipaa_audit.purge_receipts', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.purge_receipts', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.purge_receipts', 'owner', 'DELETE', false),
      ('relation hipaa_audit.purge_receipts', 'owner', 'INSERT', false),
      ('relation hipaa_audit.purge_receipts', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.purge_receipts', 'owner', 'SELECT', false),
      ('relation hipaa_audit.purge_receipts', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.purge_receipts', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.purge_receipts', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.purge_anchors', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.purge_anchors', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.purge_anchors', 'owner', 'DELETE', false),
      ('relation hipaa_audit.purge_anchors', 'owner', 'INSERT', false),
      ('relation hipaa_audit.purge_anchors', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.purge_anchors', 'owner', 'SELECT', false),
      ('relation hipaa_audit.purge_anchors', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.purge_anchors', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.purge_anchors', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.merkle_tiles', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.merkle_tiles', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.merkle_tiles', 'owner', 'DELETE', false),
      ('relation hipaa_audit.merkle_tiles', 'owner', 'INSERT', false),
      ('relation hipaa_audit.merkle_tiles', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.merkle_tiles', 'owner', 'SELECT', false),
      ('relation hipaa_audit.merkle_tiles', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.merkle_tiles', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.merkle_tiles', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.merkle_ranges', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.merkle_ranges', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.merkle_ranges', 'owner', 'DELETE', false),
      ('relation hipaa_audit.merkle_ranges', 'owner', 'INSERT', false),
      ('relation hipaa_audit.merkle_ranges', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.merkle_ranges', 'owner', 'SELECT', false),
      ('relation hipaa_audit.merkle_ranges', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.merkle_ranges', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.merkle_ranges', 'owner', 'UPDATE', false),
      ('function hipaa_audit.prove_row(regclass,integer,bigint,bigint)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.prove_row(regclass,integer,bigint,bigint)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.prove_consistency(regclass,bigint,bigint)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.prove_consistency(regclass,bigint,bigint)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_proof(text,bytea,text[],integer)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify_proof(text,bytea,text[],integer)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.witness_request(regclass,text,bigint)', 'hipaa_audit_admin', 'EXECUTE', false),
      ('function hipaa_audit.witness_request(regclass,text,bigint)', 'owner', 'EXECUTE', false),
      ('function hipaa_audit.verify_tree(regclass)', 'PUBLIC', 'EXECUTE', false),
      ('function hipaa_audit.verify_tree(regclass)', 'owner', 'EXECUTE', false),
      ('relation hipaa_audit.retired_tables', 'hipaa_audit_admin', 'SELECT', false),
      ('relation hipaa_audit.retired_tables', 'hipaa_audit_auditor', 'SELECT', false),
      ('relation hipaa_audit.retired_tables', 'owner', 'DELETE', false),
      ('relation hipaa_audit.retired_tables', 'owner', 'INSERT', false),
      ('relation hipaa_audit.retired_tables', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.retired_tables', 'owner', 'SELECT', false),
      ('relation hipaa_audit.retired_tables', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.retired_tables', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.retired_tables', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.purge_receipts_id_seq', 'owner', 'DELETE', false),
      ('relation hipaa_audit.purge_receipts_id_seq', 'owner', 'INSERT', false),
      ('relation hipaa_audit.purge_receipts_id_seq', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.purge_receipts_id_seq', 'owner', 'SELECT', false),
      ('relation hipaa_audit.purge_receipts_id_seq', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.purge_receipts_id_seq', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.purge_receipts_id_seq', 'owner', 'UPDATE', false),
      ('relation hipaa_audit.retired_tables_id_seq', 'owner', 'DELETE', false),
      ('relation hipaa_audit.retired_tables_id_seq', 'owner', 'INSERT', false),
      ('relation hipaa_audit.retired_tables_id_seq', 'owner', 'REFERENCES', false),
      ('relation hipaa_audit.retired_tables_id_seq', 'owner', 'SELECT', false),
      ('relation hipaa_audit.retired_tables_id_seq', 'owner', 'TRIGGER', false),
      ('relation hipaa_audit.retired_tables_id_seq', 'owner', 'TRUNCATE', false),
      ('relation hipaa_audit.retired_tables_id_seq', 'owner', 'UPDATE', false),
      ('schema hipaa_audit', 'PUBLIC', 'USAGE', false),
      ('schema hipaa_audit', 'owner', 'CREATE', false),
      ('schema hipaa_audit', 'owner', 'USAGE', false)$$,
    'the complete ACL of the schema, its functions and its relations');
SELECT is(
    (SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE c.relnamespace = 'hipaa_audit'::regnamespace AND a.attacl IS NOT NULL),
    0::bigint, 'no column-level grants on the relations of hipaa_audit');
SELECT is(
    (SELECT count(*) FROM pg_default_acl WHERE defaclnamespace = 'hipaa_audit'::regnamespace),
    0::bigint, 'no default privileges in schema hipaa_audit');

-- Tables, views, columns ----------------------------------------------------------
SELECT tables_are('hipaa_audit', ARRAY['checkpoints', 'cosignatures', 'hold_releases', 'legal_holds',
                                      'merkle_ranges', 'merkle_tiles',
                                      'purge_anchors', 'purge_receipts', 'registry', 'retired_tables',
                                      'trusted_keys'],
    'schema hipaa_audit has exactly these tables');
SELECT views_are('hipaa_audit', ARRAY['legal_holds_active', 'protected_tables', 'verify_progress'],
    'schema hipaa_audit has exactly these views');
SELECT bag_eq(
    $$SELECT relname::text COLLATE "default", relkind::text FROM pg_class
       WHERE relnamespace = 'hipaa_audit'::regnamespace$$,
    $$VALUES ('protected_tables', 'v'), ('registry', 'r'),
             ('registry_pkey', 'i'), ('registry_table_uuid_key', 'i'), ('verify_progress', 'v'),
             ('registry_partition_of_idx', 'i'),
             ('checkpoints', 'r'), ('checkpoints_pkey', 'i'), ('checkpoints_id_seq', 'S'),
             ('checkpoints_table_uuid_id_idx', 'i'), ('cosignatures', 'r'),
             ('cosignatures_checkpoint_id_signer_key', 'i'), ('cosignatures_id_seq', 'S'),
             ('cosignatures_pkey', 'i'), ('trusted_keys', 'r'), ('trusted_keys_pkey', 'i'),
             ('legal_holds', 'r'), ('legal_holds_pkey', 'i'), ('legal_holds_id_seq', 'S'),
             ('hold_releases', 'r'), ('hold_releases_pkey', 'i'), ('legal_holds_active', 'v'),
             ('purge_receipts', 'r'), ('purge_receipts_pkey', 'i'), ('purge_receipts_id_seq', 'S'),
             ('purge_anchors', 'r'), ('purge_anchors_pkey', 'i'),
             ('retired_tables', 'r'), ('retired_tables_pkey', 'i'), ('retired_tables_id_seq', 'S'),
             ('merkle_tiles', 'r'), ('merkle_tiles_pkey', 'i'),
             ('merkle_ranges', 'r'), ('merkle_ranges_pkey', 'i'), ('merkle_ranges_table_uuid_first_index_key', 'i')$$,
    'schema hipaa_audit holds no other relation (no other sequence, index, matview or foreign table)');
SELECT is(
    (SELECT count(*) FROM pg_type t
      WHERE t.typnamespace = 'hipaa_audit'::regnamespace
        AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid)
        AND NOT EXISTS (SELECT 1 FROM pg_type e JOIN pg_class c ON c.oid = e.typrelid
                         WHERE e.oid = t.typelem)),
    0::bigint, 'schema hipaa_audit defines no types beyond the row types of its relations');

SELECT columns_are('hipaa_audit', 'registry',
    ARRAY['relid', 'table_uuid', 'retention', 'chains', 'protected_at', 'protected_by', 'replica',
          'retention_locked', 'partition_of'],
    'hipaa_audit.registry has exactly these columns');
SELECT results_eq(
    $$SELECT attname::text COLLATE "default", format_type(atttypid, atttypmod), attnotnull
        FROM pg_attribute
       WHERE attrelid = 'hipaa_audit.registry'::regclass AND attnum > 0 AND NOT attisdropped
       ORDER BY attnum$$,
    $$VALUES ('relid', 'regclass', true), ('table_uuid', 'uuid', true),
             ('retention', 'interval', true), ('chains', 'integer', true),
             ('protected_at', 'timestamp with time zone', true), ('protected_by', 'name', true),
             ('replica', 'boolean', true), ('retention_locked', 'boolean', true),
             ('partition_of', 'regclass', false)$$,
    'hipaa_audit.registry columns: order, types, NOT NULL');
SELECT bag_eq(
    $$SELECT conname::text COLLATE "default", pg_get_constraintdef(oid) FROM pg_constraint
       WHERE conrelid = 'hipaa_audit.registry'::regclass
         AND contype <> 'n'	-- NOT NULL, a constraint row of its own since PostgreSQL 18$$,
    $$VALUES ('registry_chains_check', 'CHECK (((chains >= 1) AND (chains <= 256)))'),
             ('registry_pkey', 'PRIMARY KEY (relid)'),
             ('registry_retention_check', 'CHECK ((retention > ''00:00:00''::interval))'),
             ('registry_table_uuid_key', 'UNIQUE (table_uuid)')$$,
    'hipaa_audit.registry constraints');
SELECT is(
    (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'hipaa_audit.registry'::regclass)
    + (SELECT count(*) FROM pg_rewrite WHERE ev_class = 'hipaa_audit.registry'::regclass)
    + (SELECT count(*) FROM pg_policy WHERE polrelid = 'hipaa_audit.registry'::regclass),
    0::bigint, 'hipaa_audit.registry has no triggers, rules or policies');

SELECT columns_are('hipaa_audit', 'protected_tables',
    ARRAY['schema_name', 'table_name', 'relid', 'table_uuid', 'retention', 'chains',
          'protected_at', 'protected_by', 'replica', 'owner', 'estimated_rows', 'retention_locked',
          'partition_of', 'partitioned'],
    'hipaa_audit.protected_tables has exactly these columns');
SELECT results_eq(
    $$SELECT attname::text COLLATE "default", format_type(atttypid, atttypmod)
        FROM pg_attribute
       WHERE attrelid = 'hipaa_audit.protected_tables'::regclass AND attnum > 0 AND NOT attisdropped
       ORDER BY attnum$$,
    $$VALUES ('schema_name', 'name'), ('table_name', 'name'), ('relid', 'regclass'),
             ('table_uuid', 'uuid'), ('retention', 'interval'), ('retention_locked', 'boolean'),
             ('chains', 'integer'),
             ('protected_at', 'timestamp with time zone'), ('protected_by', 'name'),
             ('replica', 'boolean'), ('owner', 'name'), ('estimated_rows', 'bigint'),
             ('partition_of', 'regclass'), ('partitioned', 'boolean')$$,
    'hipaa_audit.protected_tables columns: order and types');

SELECT columns_are('hipaa_audit', 'verify_progress',
    ARRAY['pid', 'tbl', 'rows_checked', 'rows_estimated', 'started', 'percent'],
    'hipaa_audit.verify_progress has exactly these columns');
SELECT results_eq(
    $$SELECT attname::text COLLATE "default", format_type(atttypid, atttypmod)
        FROM pg_attribute
       WHERE attrelid = 'hipaa_audit.verify_progress'::regclass AND attnum > 0 AND NOT attisdropped
       ORDER BY attnum$$,
    $$VALUES ('pid', 'integer'), ('tbl', 'regclass'), ('rows_checked', 'bigint'),
             ('rows_estimated', 'bigint'), ('started', 'timestamp with time zone'), ('percent', 'numeric')$$,
    'hipaa_audit.verify_progress columns: order and types');

SELECT columns_are('hipaa_audit', 'purge_receipts',
    ARRAY['id', 'table_uuid', 'relid', 'purged_at', 'purged_by', 'cutoff', 'rows_removed', 'note',
          'prev_hash', 'hash'],
    'purge_receipts has exactly these columns');
SELECT columns_are('hipaa_audit', 'purge_anchors',
    ARRAY['receipt_id', 'table_uuid', 'chain', 'first_seq', 'last_seq', 'anchor_hash'],
    'purge_anchors has exactly these columns (the order is read by purge.c)');
SELECT columns_are('hipaa_audit', 'merkle_tiles',
    ARRAY['table_uuid', 'level', 'idx', 'width', 'hashes'],
    'merkle_tiles has exactly these columns (the order is read by merkle.c)');
SELECT columns_are('hipaa_audit', 'merkle_ranges',
    ARRAY['table_uuid', 'checkpoint_id', 'part_uuid', 'chain', 'first_seq', 'last_seq', 'first_index'],
    'merkle_ranges has exactly these columns');
SELECT columns_are('hipaa_audit', 'retired_tables',
    ARRAY['id', 'table_uuid', 'table_name', 'action', 'retired_at', 'retired_by', 'retention',
          'rows_left', 'newest_row_at'],
    'retired_tables has exactly these columns');
SELECT results_eq(
    $$SELECT pg_get_function_result(p.oid) COLLATE "default", l.lanname::text COLLATE "default",
             p.provolatile::text COLLATE "default", p.prosecdef, p.proconfig::text COLLATE "default"
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.oid = 'hipaa_audit.verify_receipt_chain()'::regprocedure$$,
    $$VALUES ('record', 'sql', 's', false, '{"search_path=pg_catalog, pg_temp"}')$$,
    'verify_receipt_chain(): SQL, STABLE, not SECURITY DEFINER, search_path pinned');

-- SELECT grants ------------------------------------------------------------------
SELECT table_privs_are('hipaa_audit', 'registry', 'public', ARRAY[]::name[],
    'PUBLIC has no privilege on hipaa_audit.registry');
SELECT table_privs_are('hipaa_audit', 'registry', 'hipaa_audit_admin', ARRAY['SELECT'],
    'hipaa_audit_admin may only SELECT hipaa_audit.registry');
SELECT table_privs_are('hipaa_audit', 'registry', 'hipaa_audit_auditor', ARRAY['SELECT'],
    'hipaa_audit_auditor may only SELECT hipaa_audit.registry');
SELECT table_privs_are('hipaa_audit', 'protected_tables', 'public', ARRAY[]::name[],
    'PUBLIC has no privilege on hipaa_audit.protected_tables');
SELECT table_privs_are('hipaa_audit', 'protected_tables', 'hipaa_audit_admin', ARRAY['SELECT'],
    'hipaa_audit_admin may only SELECT hipaa_audit.protected_tables');
SELECT table_privs_are('hipaa_audit', 'protected_tables', 'hipaa_audit_auditor', ARRAY['SELECT'],
    'hipaa_audit_auditor may only SELECT hipaa_audit.protected_tables');
SELECT table_privs_are('hipaa_audit', 'verify_progress', 'public', ARRAY[]::name[],
    'PUBLIC has no privilege on hipaa_audit.verify_progress');
SELECT table_privs_are('hipaa_audit', 'verify_progress', 'hipaa_audit_admin', ARRAY['SELECT'],
    'hipaa_audit_admin may only SELECT hipaa_audit.verify_progress');
SELECT table_privs_are('hipaa_audit', 'verify_progress', 'hipaa_audit_auditor', ARRAY['SELECT'],
    'hipaa_audit_auditor may only SELECT hipaa_audit.verify_progress');

-- Schema privileges ----------------------------------------------------------------
SELECT schema_privs_are('hipaa_audit', 'public', ARRAY['USAGE'],
    'PUBLIC has USAGE but not CREATE on schema hipaa_audit');
SELECT ok(NOT has_schema_privilege('public', 'hipaa_audit', 'CREATE'),
    'PUBLIC cannot CREATE in schema hipaa_audit');
SELECT schema_privs_are('hipaa_audit', 'hipaa_audit_admin', ARRAY['USAGE'],
    'hipaa_audit_admin has USAGE but not CREATE on schema hipaa_audit');
SELECT schema_privs_are('hipaa_audit', 'hipaa_audit_auditor', ARRAY['USAGE'],
    'hipaa_audit_auditor has USAGE but not CREATE on schema hipaa_audit');

-- Roles ----------------------------------------------------------------------------
SELECT has_role('hipaa_audit_admin', 'role hipaa_audit_admin exists');
SELECT has_role('hipaa_audit_auditor', 'role hipaa_audit_auditor exists');
SELECT bag_eq(
    $$SELECT rolname::text COLLATE "default", rolcanlogin, rolsuper, rolcreaterole, rolcreatedb,
             rolreplication, rolbypassrls
        FROM pg_roles WHERE rolname IN ('hipaa_audit_admin', 'hipaa_audit_auditor')$$,
    $$VALUES ('hipaa_audit_admin', false, false, false, false, false, false),
             ('hipaa_audit_auditor', false, false, false, false, false, false)$$,
    'both roles are NOLOGIN and have no special attributes');
SELECT is(
    (SELECT count(*) FROM pg_auth_members
      WHERE member IN (SELECT oid FROM pg_roles WHERE rolname IN ('hipaa_audit_admin', 'hipaa_audit_auditor'))),
    0::bigint, 'neither role is a member of another role');

SELECT * FROM finish();
ROLLBACK;
