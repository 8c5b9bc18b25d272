-- Benchmark schema: three tables with the same user columns.
--   plain_t      an ordinary table
--   protected_t  registered with hipaa_audit.protect() (chains => :chains)
--   diy_t        the do-it-yourself hash chain: a PL/pgSQL BEFORE INSERT
--                trigger serialised by one advisory lock, pgcrypto digest()
-- Run by bench/run.sh with psql -v chains=N.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS hipaa_audit;

CREATE TABLE plain_t (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor       text NOT NULL,
    action      text NOT NULL,
    patient_mrn text NOT NULL,
    client_addr inet,
    detail      text
);

CREATE TABLE protected_t (LIKE plain_t INCLUDING ALL);
SELECT hipaa_audit.protect('protected_t', chains => :chains);

-- seq gets a plain (not unique) index on purpose: a fork of the chain then
-- shows up as duplicate rows the benchmark can count, instead of an error.
CREATE TABLE diy_t (LIKE plain_t INCLUDING ALL);
ALTER TABLE diy_t ADD COLUMN seq bigint, ADD COLUMN prev bytea, ADD COLUMN hash bytea;
CREATE INDEX diy_t_seq_idx ON diy_t (seq);

-- What the row hash covers (also used by the DIY verification query).
CREATE FUNCTION diy_row_bytes(r diy_t) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN convert_to(concat_ws('|', r.id, r.actor, r.action, r.patient_mrn,
                            r.client_addr, r.detail), 'UTF8');

CREATE FUNCTION diy_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_seq  bigint;
    last_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(4242);
    SELECT seq, hash INTO last_seq, last_hash FROM diy_t ORDER BY seq DESC LIMIT 1;
    NEW.seq  := coalesce(last_seq, 0) + 1;
    NEW.prev := coalesce(last_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    NEW.hash := digest(NEW.prev || diy_row_bytes(NEW), 'sha256');
    RETURN NEW;
END
$$;
CREATE TRIGGER diy_chain BEFORE INSERT ON diy_t
    FOR EACH ROW EXECUTE FUNCTION diy_chain();
