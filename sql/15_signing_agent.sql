-- hipaa_audit.signing_agent: its default, who may see and set it, and the
-- values it refuses.
-- (Signing through a real agent is in test/t/023_signing_agent.pl.)
\set SHOW_CONTEXT never
SHOW hipaa_audit.signing_agent;
SELECT name, setting, context, vartype, source
FROM pg_settings WHERE name = 'hipaa_audit.signing_agent';

-- Reloadable only: not per session, not per database or role.
SET hipaa_audit.signing_agent = '/run/hipaa-audit-signer/sign.sock';
ALTER DATABASE contrib_regression SET hipaa_audit.signing_agent = '/run/x.sock';
ALTER ROLE CURRENT_USER SET hipaa_audit.signing_agent = '/run/x.sock';

-- Checked values: an absolute path that fits a Unix socket address.
ALTER SYSTEM SET hipaa_audit.signing_agent = 'sign.sock';
ALTER SYSTEM SET hipaa_audit.signing_agent = '/run/hipaa-audit-signer/a-socket-path-that-is-too-long-for-the-address-of-a-unix-socket-which-holds-107-bytes.sock';
ALTER SYSTEM SET hipaa_audit.signing_agent = '/run/hipaa-audit-signer/sign.sock';
ALTER SYSTEM RESET hipaa_audit.signing_agent;

-- Superuser-only: others neither see nor set it.
CREATE ROLE regress_ha_agent_reader;
SET ROLE regress_ha_agent_reader;
-- (Only the SQLSTATE: PostgreSQL's wording of this refusal differs by version.)
\set VERBOSITY sqlstate
SHOW hipaa_audit.signing_agent;
SELECT current_setting('hipaa_audit.signing_agent');
\set VERBOSITY default
SELECT count(*) FROM pg_settings WHERE name = 'hipaa_audit.signing_agent';
ALTER SYSTEM SET hipaa_audit.signing_agent = '/run/x.sock';
RESET ROLE;
DROP ROLE regress_ha_agent_reader;

-- Neither a key file nor an agent: the hint names both.
CREATE TABLE sa_log (id int);
SELECT hipaa_audit.protect('sa_log');
INSERT INTO sa_log VALUES (1);
SELECT hipaa_audit.checkpoint('sa_log');
SELECT count(*) FROM hipaa_audit.checkpoints WHERE relid = 'sa_log'::regclass;
