-- The hooks must not disturb transaction control: a new session's first
-- statements may set the isolation level, which fails once anything has
-- taken a snapshot.  (Logical replication table sync starts exactly so.)
CREATE TABLE tx_log (id int, actor text);
SELECT hipaa_audit.protect('tx_log', chains => 1);
\c
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO tx_log VALUES (1, 'a');
COMMIT;
\c
BEGIN;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
INSERT INTO tx_log VALUES (2, 'b');
COMMIT;
\c
START TRANSACTION READ ONLY, ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM tx_log;
COMMIT;
-- Subtransactions and rollbacks leave exactly what was committed.
BEGIN;
INSERT INTO tx_log VALUES (3, 'c');
SAVEPOINT s1;
INSERT INTO tx_log VALUES (4, 'rolled back');
ROLLBACK TO SAVEPOINT s1;
UPDATE tx_log SET actor = 'x';
ROLLBACK;
SELECT id, actor, audit_chain, audit_seq FROM tx_log ORDER BY id;
SELECT ok, rows_checked FROM hipaa_audit.verify('tx_log');
