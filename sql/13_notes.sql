-- Names in signed notes: a table, schema, database or role name can never
-- add, end or split a line of a checkpoint or purge receipt, and such notes
-- verify (docs/checkpoints.md, "Names in notes").  Then the bounds on what
-- the note checks accept, each with its SQLSTATE.  The expected output
-- assumes a UTF-8 database, as the test servers use.
\set SHOW_CONTEXT never
-- A signing key of this server's own, outside its data directory.
SELECT '/tmp/hipaa_audit_regress_' || current_setting('port') || '.pem' AS keyfile \gset
SELECT 'umask 077 && openssl genpkey -algorithm ed25519 -out ' || :'keyfile' AS gencmd \gset
COPY (SELECT 1 WHERE false) TO PROGRAM :'gencmd';
ALTER SYSTEM SET hipaa_audit.signing_key_file = :'keyfile';
SELECT pg_reload_conf();
-- (The reload reaches this session between statements; wait for it.)
SELECT pg_sleep(0.2) \gset
SELECT current_setting('hipaa_audit.signing_key_file') = :'keyfile' AS key_set \gset
\if :key_set
\else
SELECT pg_sleep(2) \gset
\endif
SELECT current_setting('hipaa_audit.signing_key_file') = :'keyfile' AS key_set;
SELECT hipaa_audit.verifier_key() AS vkey \gset

-- A table whose schema and name hold a newline, a blank line, a leading
-- em dash and space (a signature line's start), text that reads like a
-- chain line, and backslashes (one before "x0a", as an escape would be).
CREATE SCHEMA "regress
notes";
CREATE TABLE "regress
notes"."— t

chain 0 9 \x0a\" (id int, what text);
SELECT oid AS tbl FROM pg_class WHERE relname LIKE '— t%' \gset
SELECT hipaa_audit.protect(:tbl::regclass, '6 years', 1);
INSERT INTO "regress
notes"."— t

chain 0 9 \x0a\" SELECT g, 'row ' || g FROM generate_series(1, 5) g;
SELECT hipaa_audit.checkpoint(:tbl::regclass) AS note \gset
-- The name is one line, escaped; the body has no blank line before the
-- signature, and exactly one signature line.
SELECT split_part(:'note', E'\n', 5) AS table_line;
SELECT n, regexp_replace(regexp_replace(line, '[0-9a-f]{64}$', '<hash>'), '^[A-Za-z0-9+/]{43}=$', '<root>') AS body_line
  FROM regexp_split_to_table(split_part(:'note', E'\n\n', 1), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE n > 1 AND line !~ '^time ';
SELECT strpos(:'note', E'\n\n') + 1 = strpos(:'note', E'\n— ') AS one_blank_line,
       (SELECT count(*) FROM regexp_matches(:'note', E'\n— ', 'g')) AS signature_lines;
-- The note verifies, and verify() reads the stored checkpoint (one of them,
-- whole: a line it could not read would be a checkpoint_malformed problem).
SELECT ok, status, tbl = :tbl::regclass AS right_table, detail
  FROM hipaa_audit.verify_checkpoint(:'note', :'vkey');
SELECT ok, rows_checked, problems FROM hipaa_audit.verify(:tbl::regclass);
SELECT count(*) AS stored_checkpoints FROM hipaa_audit.checkpoints WHERE relid = :tbl::regclass;
-- The escapes are what was signed: the name written raw does not verify.
SELECT ok, status FROM hipaa_audit.verify_checkpoint(
    replace(:'note', '\x0a\x0achain', E'\n\nchain'), :'vkey');
SELECT ok, status FROM hipaa_audit.verify_checkpoint(
    replace(:'note', '\x5c"', E'\\"'), :'vkey');

-- A purge receipt of such a table, by a role whose name holds a newline,
-- an em dash and a backslash.
CREATE ROLE "regress
— purger\";
GRANT hipaa_audit_admin TO "regress
— purger\";
CREATE TABLE "regress
notes"."— p

x\" (id int);
SELECT oid AS ptbl FROM pg_class WHERE relname LIKE '— p%' \gset
SELECT hipaa_audit.protect(:ptbl::regclass, '1 microsecond', 2);
INSERT INTO "regress
notes"."— p

x\" SELECT generate_series(1, 6);
SELECT hipaa_audit.checkpoint(:ptbl::regclass) AS pnote \gset
SET ROLE "regress
— purger\";
SELECT rows_removed, receipt AS receipt FROM hipaa_audit.purge_expired(:ptbl::regclass) \gset
RESET ROLE;
SELECT :rows_removed AS rows_removed;
SELECT split_part(:'receipt', E'\n', 2) AS kind_line,
       split_part(:'receipt', E'\n', 3) AS table_line,
       split_part(:'receipt', E'\n', 6) AS by_line;
SELECT strpos(:'receipt', E'\n\n') + 1 = strpos(:'receipt', E'\n— ') AS one_blank_line,
       (SELECT count(*) FROM regexp_matches(:'receipt', E'\n— ', 'g')) AS signature_lines;
SELECT ok, status, tbl = :ptbl::regclass AS right_table, detail
  FROM hipaa_audit.verify_receipt(:'receipt', :'vkey');
SELECT ok, status FROM hipaa_audit.verify_receipt(:'receipt', ARRAY[:'vkey'], 1);
SELECT ok, status FROM hipaa_audit.verify_checkpoint(:'pnote', :'vkey');
SELECT ok, rows_checked, problems FROM hipaa_audit.verify(:ptbl::regclass);
SELECT ok, receipts FROM hipaa_audit.verify_receipt_chain();
-- A receipt is not a checkpoint, nor the other way round: line 2 says which.
SELECT ok, status, detail FROM hipaa_audit.verify_checkpoint(:'receipt', :'vkey');
SELECT ok, status, detail FROM hipaa_audit.verify_receipt(:'pnote', :'vkey');

-- A database whose name holds a newline and a backslash.
SELECT current_database() AS regress_db, E'regress\nnotes\\db' AS weird_db \gset
CREATE DATABASE "regress
notes\db";
\c :weird_db
CREATE EXTENSION hipaa_audit;
CREATE TABLE d (id int);
SELECT hipaa_audit.protect('d', '1 microsecond', 1);
INSERT INTO d VALUES (1);
SELECT hipaa_audit.checkpoint('d') AS dnote \gset
SELECT split_part(:'dnote', E'\n', 6) AS database_line;
SELECT ok, status FROM hipaa_audit.verify_checkpoint(:'dnote', hipaa_audit.verifier_key());
SELECT ok, problems FROM hipaa_audit.verify('d');
SELECT hipaa_audit.unprotect('d');
\c :regress_db
DROP DATABASE "regress
notes\db";

-- Bounds.  A note: at most 256 kB (262144 bytes); at most 64 keys; at most
-- 64 signature lines; a verifier key or signature line: at most 1024 bytes.
\set VERBOSITY terse
SELECT ok, status FROM hipaa_audit.verify_checkpoint(repeat('x', 262144), :'vkey');
SELECT ok, status FROM hipaa_audit.verify_checkpoint(repeat('x', 262145), :'vkey');
\echo :LAST_ERROR_SQLSTATE
SELECT ok, status FROM hipaa_audit.verify_receipt(repeat('x', 262145), ARRAY[:'vkey'], 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ok, status FROM hipaa_audit.verify_checkpoint(:'note', array_fill(:'vkey'::text, ARRAY[64]), 1);
SELECT ok, status FROM hipaa_audit.verify_checkpoint(:'note', array_fill(:'vkey'::text, ARRAY[65]), 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ok, status FROM hipaa_audit.verify_receipt(:'receipt', array_fill(:'vkey'::text, ARRAY[5, 13]), 1);
\echo :LAST_ERROR_SQLSTATE
-- 63 lines by others and the server's own: 64, checked; one more is refused.
SELECT ok, status FROM hipaa_audit.verify_checkpoint(
    :'note' || repeat(E'— witness AAAAAAAA\n', 63), :'vkey');
SELECT ok, status FROM hipaa_audit.verify_checkpoint(
    :'note' || repeat(E'— witness AAAAAAAA\n', 64), :'vkey');
\echo :LAST_ERROR_SQLSTATE
SELECT ok, status FROM hipaa_audit.verify_checkpoint(:'note', repeat('k', 1024));
SELECT ok, status FROM hipaa_audit.verify_checkpoint(:'note', repeat('k', 1025));
\echo :LAST_ERROR_SQLSTATE
SELECT ok, status FROM hipaa_audit.verify_checkpoint(:'note', ARRAY[:'vkey', repeat('k', 1025)], 1);
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.trust_key(repeat('k', 1025));
\echo :LAST_ERROR_SQLSTATE
SELECT hipaa_audit.cosign(1, repeat('x', 1025));
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
-- The errors say what the bound is and what to do.
SELECT ok FROM hipaa_audit.verify_checkpoint(:'note', array_fill(:'vkey'::text, ARRAY[65]), 1);
SELECT ok FROM hipaa_audit.verify_checkpoint(:'note' || repeat(E'— witness AAAAAAAA\n', 64), :'vkey');

-- Clean up: the key setting, the key file, the objects.
ALTER SYSTEM RESET hipaa_audit.signing_key_file;
SELECT pg_reload_conf();
SELECT 'rm -f ' || :'keyfile' AS rmcmd \gset
COPY (SELECT 1 WHERE false) TO PROGRAM :'rmcmd';
DROP ROLE "regress
— purger\";
