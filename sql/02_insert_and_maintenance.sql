-- What a protected table still allows: every way of inserting, reading, and
-- the maintenance a DBA needs.  Rows must come out of each step unchanged.
CREATE TABLE access_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor      text NOT NULL,
    action     text NOT NULL,
    patient_id text NOT NULL,
    client     inet,
    noted_at   timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
);
SELECT hipaa_audit.protect('access_log');
SELECT hipaa_audit.is_protected('access_log');

INSERT INTO access_log (actor, action, patient_id, client)
VALUES ('dr_alvarez', 'view', 'MRN-0001', '10.1.2.3');
INSERT INTO access_log (actor, action, patient_id, client)
VALUES ('nurse_kim', 'view', 'MRN-0002', '10.1.2.4'),
       ('dr_osei', 'update', 'MRN-0001', NULL);
INSERT INTO access_log (actor, action, patient_id)
SELECT 'batch_' || g, 'export', 'MRN-' || lpad(g::text, 4, '0')
  FROM generate_series(3, 5) g;
INSERT INTO access_log (actor, action, patient_id) VALUES ('x', 'view', 'MRN-9')
    ON CONFLICT DO NOTHING;
COPY access_log (actor, action, patient_id, client) FROM stdin;
billing_svc	print	MRN-0003	192.168.0.9
auditor_lee	view	MRN-0004	\N
\.

CREATE TEMP TABLE snapshot AS
    SELECT id, actor, action, patient_id, client, noted_at FROM access_log;
CREATE FUNCTION pg_temp.unchanged() RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN (SELECT count(*) FROM access_log) = (SELECT count(*) FROM snapshot)
                 AND NOT EXISTS (SELECT id, actor, action, patient_id, client, noted_at FROM access_log
                                 EXCEPT SELECT * FROM snapshot)
                THEN 'rows unchanged' ELSE 'ROWS CHANGED' END $$;

SELECT id, actor, action, patient_id, client FROM access_log ORDER BY id;

-- Every row is in a chain, and the chains verify.
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('access_log');

-- Maintenance keeps every row, and every chain still verifies after the
-- table is rewritten.
VACUUM access_log;
SELECT pg_temp.unchanged();
VACUUM FULL access_log;
SELECT pg_temp.unchanged();
CLUSTER access_log USING access_log_pkey;
SELECT pg_temp.unchanged();
REINDEX TABLE access_log;
SELECT pg_temp.unchanged();
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('access_log');
ANALYZE access_log;
CREATE INDEX access_log_patient ON access_log (patient_id);
COMMENT ON TABLE access_log IS 'who looked at which record';
GRANT SELECT, INSERT ON access_log TO PUBLIC;
REVOKE INSERT ON access_log FROM PUBLIC;
ALTER TABLE access_log ALTER COLUMN client SET STATISTICS 200;
ALTER TABLE access_log ADD COLUMN reason text;
SELECT pg_temp.unchanged();
-- A nullable column added later leaves the old rows' hashes as they were.
INSERT INTO access_log (actor, action, patient_id, reason)
VALUES ('dr_alvarez', 'view', 'MRN-0007', 'consult');
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('access_log');

-- SELECT ... FOR UPDATE locks rows but changes nothing: allowed.
SELECT count(*) FROM (SELECT id FROM access_log FOR UPDATE) s;

-- EXPLAIN without ANALYZE runs nothing: allowed.
EXPLAIN (COSTS OFF) DELETE FROM access_log;

SELECT schema_name, table_name, retention, chains, protected_by, owner
  FROM hipaa_audit.protected_tables;

SELECT id, actor, reason FROM access_log WHERE id > 7 ORDER BY id;
SELECT * FROM hipaa_audit.verify_problems('access_log');
