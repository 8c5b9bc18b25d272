-- Checkpoint settings and the errors that need no key.  (Signing itself,
-- with real keys and the openssl command line, is in test/t.)
\set SHOW_CONTEXT never
SHOW hipaa_audit.signer_name;
SHOW hipaa_audit.signing_key_file;
SET hipaa_audit.signer_name = 'audit.example.org';
ALTER SYSTEM SET hipaa_audit.signer_name = 'has space';
ALTER SYSTEM SET hipaa_audit.signer_name = 'a+b';
ALTER SYSTEM SET hipaa_audit.signer_name = '';

CREATE TABLE cp_log (id int, actor text);
SELECT hipaa_audit.protect('cp_log');
INSERT INTO cp_log VALUES (1, 'dr_alvarez');
-- No key configured: a clear error, and nothing stored.
SELECT hipaa_audit.checkpoint('cp_log');
SELECT hipaa_audit.verifier_key();
SELECT count(*) FROM hipaa_audit.checkpoints;
CREATE TABLE cp_plain (id int);
SELECT hipaa_audit.checkpoint('cp_plain');
SELECT hipaa_audit.checkpoint(NULL);

-- verify_checkpoint() says what is wrong, without raising.
SELECT ok, status, tbl, detail FROM hipaa_audit.verify_checkpoint('', '');
SELECT ok, status, detail FROM hipaa_audit.verify_checkpoint('x', 'name+zzzzzzzz+AAAA');
SELECT ok, status, detail FROM hipaa_audit.verify_checkpoint('x', 'name+00000000+AXX=');
SELECT ok, status, detail FROM hipaa_audit.verify_checkpoint('x',
    'audit.example.org+00000000+AZnErkKPWRcD9Wml2QyXYXXCk6oH9221aFZ/KKjkPU8H');
SELECT * FROM hipaa_audit.verify_checkpoint(NULL, 'k');

-- The checkpoints table is insert-only, like an audit table.
UPDATE hipaa_audit.checkpoints SET note = '';
DELETE FROM hipaa_audit.checkpoints;
TRUNCATE hipaa_audit.checkpoints;
INSERT INTO hipaa_audit.checkpoints (table_uuid, created_at, note, prev_hash, hash)
VALUES (gen_random_uuid(), now(), 'forged', '\x00', '\x00');
