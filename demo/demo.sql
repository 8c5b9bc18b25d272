-- hipaa_audit demo: an audit table of who looked at which patient record.
\set SHOW_CONTEXT never
\pset footer off

CREATE EXTENSION hipaa_audit;

CREATE TABLE record_access (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor       text        NOT NULL,   -- who
    action      text        NOT NULL,   -- what they did
    patient_mrn text        NOT NULL,   -- which patient record
    client_addr inet,                   -- from where
    accessed_at timestamptz NOT NULL DEFAULT now()  -- when
);

-- Register it: from now on the table only ever grows.
SELECT hipaa_audit.protect('record_access', retention => '6 years');
SELECT schema_name, table_name, retention, chains, protected_by
  FROM hipaa_audit.protected_tables;

-- Applications insert with plain SQL, unchanged.
INSERT INTO record_access (actor, action, patient_mrn, client_addr)
VALUES ('dr.alvarez', 'view chart', 'MRN-100234', '10.20.0.15');
INSERT INTO record_access (actor, action, patient_mrn, client_addr)
VALUES ('nurse.kim', 'view medications', 'MRN-100234', '10.20.0.31'),
       ('billing.svc', 'export claim', 'MRN-100777', '10.30.1.2');
COPY record_access (actor, action, patient_mrn, client_addr) FROM stdin;
dr.osei	update allergies	MRN-100777	10.20.0.16
records.clerk	print summary	MRN-100555	10.40.2.8
\.
SELECT id, actor, action, patient_mrn, client_addr FROM record_access ORDER BY id;

-- Now somebody tries to cover their tracks.  Every attempt is refused,
-- even for the superuser running this demo.
UPDATE record_access SET actor = 'someone.else' WHERE actor = 'billing.svc';
DELETE FROM record_access WHERE patient_mrn = 'MRN-100777';
TRUNCATE record_access;
SET session_replication_role = replica;   -- the classic way around triggers
DELETE FROM record_access;
RESET session_replication_role;
ALTER TABLE record_access DISABLE TRIGGER ALL;
ALTER TABLE record_access DROP COLUMN client_addr;
DROP TABLE record_access;
DROP EXTENSION hipaa_audit;

-- Every row is still there, untouched.
SELECT count(*) AS rows_kept FROM record_access;

-- Every row carries its place in a hash chain: the hash of the row before
-- it, and its own SHA-256 over its content, stamped by the server with who
-- inserted it and when.
SELECT id, actor, audit_chain AS chain, audit_seq AS pos, audit_role,
       left(encode(audit_prev_hash, 'hex'), 12) AS prev_hash,
       left(encode(audit_hash, 'hex'), 12) AS hash
  FROM record_access ORDER BY audit_chain, audit_seq;

-- An auditor recomputes every hash and every link.
SELECT * FROM hipaa_audit.verify('record_access');

-- A signed checkpoint pins the head of every chain with an Ed25519 key kept
-- outside the database (here a throwaway key made for the demo).  Anyone
-- with the public verifier key can check it, also without PostgreSQL.
ALTER SYSTEM SET hipaa_audit.signing_key_file = :'keyfile';
ALTER SYSTEM SET hipaa_audit.signer_name = 'demo.hipaa-audit.example';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT hipaa_audit.checkpoint('record_access') AS note \gset
\echo :note
SELECT hipaa_audit.verifier_key() AS verifier_key \gset
\echo :verifier_key
SELECT ok, status FROM hipaa_audit.verify_checkpoint(:'note', :'verifier_key');

-- The checkpoint also signs the table's Merkle tree (its first three lines:
-- origin, size, root).  One row's proof, a few hashes long, shows a court
-- that this access event is in the signed log without showing any other
-- row; verify_proof() (or the offline program hipaa_audit_verify) checks it
-- with nothing but the proof, the row's audit_hash and the verifier key.
SELECT audit_chain AS chain, audit_seq AS pos, audit_hash AS row_hash
  FROM record_access WHERE patient_mrn = 'MRN-100777' ORDER BY audit_at LIMIT 1 \gset
SELECT hipaa_audit.prove_row('record_access', :chain, :pos) AS proof \gset
\echo :proof
SELECT ok, status, leaf_index, tree_size FROM hipaa_audit.verify_proof(:'proof', :'row_hash', ARRAY[:'verifier_key']);
-- Another row's hash does not pass with this proof.
SELECT ok, status FROM hipaa_audit.verify_proof(:'proof', sha256(:'row_hash'), ARRAY[:'verifier_key']);

-- Retention: rows leave a protected table only once past their retention,
-- only through purge_expired(), which verifies them first and signs a
-- receipt.  (Six years is long for a demo: this table keeps rows 2 seconds.)
CREATE TABLE login_events (who text NOT NULL, outcome text NOT NULL);
SELECT hipaa_audit.protect('login_events', retention => '2 seconds');
INSERT INTO login_events VALUES ('dr.alvarez', 'ok'), ('nurse.kim', 'ok'), ('mallory', 'bad password');
SELECT pg_sleep(2.5);
INSERT INTO login_events VALUES ('dr.osei', 'ok');
SELECT rows_removed, receipt_id, receipt FROM hipaa_audit.purge_expired('login_events') \gset
\echo removed :rows_removed rows; the signed receipt:
\echo :receipt
SELECT who, audit_seq AS pos FROM login_events;
SELECT ok, status FROM hipaa_audit.verify_receipt(:'receipt', :'verifier_key');
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('login_events');
