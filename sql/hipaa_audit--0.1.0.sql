-- hipaa_audit install script (the one editable copy; the Makefile writes the
-- versioned file from it).

\echo Use "CREATE EXTENSION hipaa_audit" to load this file. \quit

-- Roles are cluster-wide and may already exist from another database.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'hipaa_audit_admin') THEN
        CREATE ROLE hipaa_audit_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'hipaa_audit_auditor') THEN
        CREATE ROLE hipaa_audit_auditor NOLOGIN;
    END IF;
END
$roles$;

REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

-- One row per protected table.  relid is a regclass so that pg_dump writes it
-- as a name and pg_restore maps it to the new table.
CREATE TABLE @extschema@.registry (
    relid        pg_catalog.regclass    NOT NULL PRIMARY KEY,
    table_uuid   pg_catalog.uuid        NOT NULL UNIQUE,
    retention    pg_catalog.interval    NOT NULL CHECK (retention > '0'::pg_catalog.interval),
    chains       pg_catalog.int4        NOT NULL CHECK (chains BETWEEN 1 AND 256),
    protected_at pg_catalog.timestamptz NOT NULL,
    protected_by pg_catalog.name        NOT NULL,
    replica      pg_catalog.bool        NOT NULL DEFAULT false,
    retention_locked pg_catalog.bool    NOT NULL DEFAULT false
);
COMMENT ON TABLE @extschema@.registry IS
    'hipaa_audit: one row per protected table; written only by protect(), unprotect() and the drop of an empty protected table';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.registry', '');
REVOKE ALL ON TABLE @extschema@.registry FROM PUBLIC;

-- Signed checkpoints, insert-only and hash-chained: hash = SHA-256 of
-- 'hipaa_audit/checkpoint/v1' || 0x00 || prev_hash || note (UTF-8).
CREATE TABLE @extschema@.checkpoints (
    id         pg_catalog.int8        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_uuid pg_catalog.uuid        NOT NULL,
    relid      pg_catalog.regclass,
    created_at pg_catalog.timestamptz NOT NULL,
    note       pg_catalog.text        NOT NULL,
    prev_hash  pg_catalog.bytea       NOT NULL,
    hash       pg_catalog.bytea       NOT NULL
);
CREATE INDEX ON @extschema@.checkpoints (table_uuid, id);
COMMENT ON TABLE @extschema@.checkpoints IS
    'hipaa_audit: every signed checkpoint, insert-only and hash-chained; written only by checkpoint()';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.checkpoints', '');
-- Its identity sequence too, or a restored database would reuse ids.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.checkpoints_id_seq', '');
REVOKE ALL ON TABLE @extschema@.checkpoints FROM PUBLIC;

-- Outside signers whose co-signatures cosign() accepts, and the
-- co-signatures themselves; both insert-only.
CREATE TABLE @extschema@.trusted_keys (
    verifier_key pg_catalog.text        PRIMARY KEY,
    name         pg_catalog.text        NOT NULL,
    added_at     pg_catalog.timestamptz NOT NULL,
    added_by     pg_catalog.name        NOT NULL
);
COMMENT ON TABLE @extschema@.trusted_keys IS
    'hipaa_audit: verifier keys of co-signers, registered with trust_key()';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.trusted_keys', '');
REVOKE ALL ON TABLE @extschema@.trusted_keys FROM PUBLIC;

CREATE TABLE @extschema@.cosignatures (
    id            pg_catalog.int8        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checkpoint_id pg_catalog.int8        NOT NULL REFERENCES @extschema@.checkpoints (id),
    signer        pg_catalog.text        NOT NULL,
    line          pg_catalog.text        NOT NULL,
    added_at      pg_catalog.timestamptz NOT NULL,
    UNIQUE (checkpoint_id, signer)
);
COMMENT ON TABLE @extschema@.cosignatures IS
    'hipaa_audit: signature lines added to stored checkpoints by cosign()';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cosignatures', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cosignatures_id_seq', '');
REVOKE ALL ON TABLE @extschema@.cosignatures FROM PUBLIC;

-- Legal holds and their releases, both insert-only: a hold stays on record
-- after it is released.
CREATE TABLE @extschema@.legal_holds (
    id         pg_catalog.int8        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_uuid pg_catalog.uuid        NOT NULL,
    relid      pg_catalog.regclass,
    placed_at  pg_catalog.timestamptz NOT NULL,
    placed_by  pg_catalog.name        NOT NULL,
    reason     pg_catalog.text        NOT NULL CHECK (reason <> '')
);
COMMENT ON TABLE @extschema@.legal_holds IS
    'hipaa_audit: legal holds placed with place_hold(); insert-only';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.legal_holds', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.legal_holds_id_seq', '');
REVOKE ALL ON TABLE @extschema@.legal_holds FROM PUBLIC;

CREATE TABLE @extschema@.hold_releases (
    hold_id     pg_catalog.int8        PRIMARY KEY REFERENCES @extschema@.legal_holds (id),
    released_at pg_catalog.timestamptz NOT NULL,
    released_by pg_catalog.name        NOT NULL,
    reason      pg_catalog.text        NOT NULL CHECK (reason <> '')
);
COMMENT ON TABLE @extschema@.hold_releases IS
    'hipaa_audit: releases of legal holds, by release_hold(); insert-only';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.hold_releases', '');
REVOKE ALL ON TABLE @extschema@.hold_releases FROM PUBLIC;

CREATE FUNCTION @extschema@.protect(
    tbl       pg_catalog.regclass,
    retention pg_catalog.interval DEFAULT '6 years',
    chains    pg_catalog.int4     DEFAULT 32)
RETURNS void
AS 'MODULE_PATHNAME', 'protect'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.protect(pg_catalog.regclass, pg_catalog.interval, pg_catalog.int4) IS
    'hipaa_audit: make a table insert-only and tamper-evident (owner or hipaa_audit_admin)';

CREATE FUNCTION @extschema@.protect_replica(
    tbl        pg_catalog.regclass,
    table_uuid pg_catalog.uuid,
    retention  pg_catalog.interval DEFAULT '6 years',
    chains     pg_catalog.int4     DEFAULT 32)
RETURNS void
AS 'MODULE_PATHNAME', 'protect_replica'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.protect_replica(pg_catalog.regclass, pg_catalog.uuid, pg_catalog.interval, pg_catalog.int4) IS
    'hipaa_audit: protect a logical replication subscriber''s copy of a protected table under the publisher''s table identity';

CREATE FUNCTION @extschema@.set_retention(
    tbl       pg_catalog.regclass,
    retention pg_catalog.interval,
    lock      pg_catalog.bool DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'set_retention'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.set_retention(pg_catalog.regclass, pg_catalog.interval, pg_catalog.bool) IS
    'hipaa_audit: raise (never lower) a protected table''s retention, optionally locking it (hipaa_audit_admin)';

CREATE FUNCTION @extschema@.place_hold(tbl pg_catalog.regclass, reason pg_catalog.text)
RETURNS pg_catalog.int8
AS 'MODULE_PATHNAME', 'place_hold'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.place_hold(pg_catalog.regclass, pg_catalog.text) IS
    'hipaa_audit: place a legal hold on a protected table; returns the hold''s id (hipaa_audit_admin)';

CREATE FUNCTION @extschema@.release_hold(hold_id pg_catalog.int8, reason pg_catalog.text)
RETURNS void
AS 'MODULE_PATHNAME', 'release_hold'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.release_hold(pg_catalog.int8, pg_catalog.text) IS
    'hipaa_audit: release a legal hold, with a reason; the hold stays on record (hipaa_audit_admin)';

CREATE FUNCTION @extschema@.unprotect(tbl pg_catalog.regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'unprotect'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.unprotect(pg_catalog.regclass) IS
    'hipaa_audit: remove the protection of an empty table (hipaa_audit_admin)';

CREATE FUNCTION @extschema@.is_protected(tbl pg_catalog.regclass)
RETURNS pg_catalog.bool
AS 'MODULE_PATHNAME', 'is_protected'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION @extschema@.is_protected(pg_catalog.regclass) IS
    'hipaa_audit: whether a table is protected';

CREATE FUNCTION @extschema@.verify(
    tbl               pg_catalog.regclass,
    OUT ok            pg_catalog.bool,
    OUT rows_checked  pg_catalog.int8,
    OUT chains        pg_catalog.int4,
    OUT problems      pg_catalog.int8,
    OUT first_problem pg_catalog.text)
RETURNS record
AS 'MODULE_PATHNAME', 'verify'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify(pg_catalog.regclass) IS
    'hipaa_audit: recompute every row hash and chain link of a protected table; one summary row';

CREATE FUNCTION @extschema@.verify_problems(tbl pg_catalog.regclass)
RETURNS TABLE (chain pg_catalog.int4, seq pg_catalog.int8, kind pg_catalog.text, detail pg_catalog.text)
AS 'MODULE_PATHNAME', 'verify_problems'
LANGUAGE C CALLED ON NULL INPUT VOLATILE ROWS 10;
COMMENT ON FUNCTION @extschema@.verify_problems(pg_catalog.regclass) IS
    'hipaa_audit: one row per problem found in a protected table''s chains; empty when intact';

CREATE FUNCTION @extschema@.verify_progress()
RETURNS TABLE (pid pg_catalog.int4, tbl pg_catalog.regclass, rows_checked pg_catalog.int8,
               rows_estimated pg_catalog.int8, started pg_catalog.timestamptz)
AS 'MODULE_PATHNAME', 'verify_progress'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify_progress() IS
    'hipaa_audit: verify() calls running now, with the rows checked so far';

CREATE VIEW @extschema@.legal_holds_active AS
SELECT h.id, h.relid AS tbl, h.table_uuid, h.placed_at, h.placed_by, h.reason
  FROM @extschema@.legal_holds h
 WHERE NOT EXISTS (SELECT 1 FROM @extschema@.hold_releases r WHERE r.hold_id = h.id);
COMMENT ON VIEW @extschema@.legal_holds_active IS
    'hipaa_audit: legal holds placed and not released';

CREATE VIEW @extschema@.verify_progress AS
SELECT p.pid, p.tbl, p.rows_checked, p.rows_estimated, p.started,
       pg_catalog.round(100.0 * p.rows_checked / NULLIF(p.rows_estimated, 0), 1) AS percent
  FROM @extschema@.verify_progress() p;
COMMENT ON VIEW @extschema@.verify_progress IS
    'hipaa_audit: progress of running verify() and verify_problems() calls';

CREATE FUNCTION @extschema@.checkpoint(tbl pg_catalog.regclass)
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'checkpoint'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.checkpoint(pg_catalog.regclass) IS
    'hipaa_audit: sign the heads of every chain of a protected table (C2SP signed note), store and return the note';

CREATE FUNCTION @extschema@.checkpoint_all()
RETURNS TABLE (tbl pg_catalog.regclass, note pg_catalog.text)
AS 'MODULE_PATHNAME', 'checkpoint_all'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION @extschema@.checkpoint_all() IS
    'hipaa_audit: checkpoint every protected table (hipaa_audit_admin)';

CREATE FUNCTION @extschema@.verifier_key()
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'verifier_key'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION @extschema@.verifier_key() IS
    'hipaa_audit: the public key that checks checkpoints, as <name>+<key ID>+<base64 key>';

CREATE FUNCTION @extschema@.verify_checkpoint(
    note       pg_catalog.text,
    key        pg_catalog.text,
    OUT ok     pg_catalog.bool,
    OUT status pg_catalog.text,
    OUT tbl    pg_catalog.regclass,
    OUT detail pg_catalog.text)
RETURNS record
AS 'MODULE_PATHNAME', 'verify_checkpoint'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify_checkpoint(pg_catalog.text, pg_catalog.text) IS
    'hipaa_audit: check a checkpoint''s signature against the given key and the table against the checkpoint';

CREATE FUNCTION @extschema@.verify_checkpoint(
    note        pg_catalog.text,
    keys        pg_catalog.text[],
    quorum      pg_catalog.int4,
    OUT ok      pg_catalog.bool,
    OUT status  pg_catalog.text,
    OUT tbl     pg_catalog.regclass,
    OUT detail  pg_catalog.text,
    OUT signers pg_catalog.text[])
RETURNS record
AS 'MODULE_PATHNAME', 'verify_checkpoint_quorum'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify_checkpoint(pg_catalog.text, pg_catalog.text[], pg_catalog.int4) IS
    'hipaa_audit: check that at least quorum of the given keys signed a checkpoint, and the table against it';

CREATE FUNCTION @extschema@.trust_key(verifier_key pg_catalog.text)
RETURNS void
AS 'MODULE_PATHNAME', 'trust_key'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.trust_key(pg_catalog.text) IS
    'hipaa_audit: register a co-signer''s verifier key (hipaa_audit_admin)';

CREATE FUNCTION @extschema@.checkpoint_note(checkpoint_id pg_catalog.int8)
RETURNS pg_catalog.text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.note || COALESCE((SELECT pg_catalog.string_agg(s.line, '' ORDER BY s.id)
                                 FROM @extschema@.cosignatures s
                                WHERE s.checkpoint_id = c.id), '')
      FROM @extschema@.checkpoints c
     WHERE c.id = checkpoint_id
$$;
COMMENT ON FUNCTION @extschema@.checkpoint_note(pg_catalog.int8) IS
    'hipaa_audit: a stored checkpoint''s note with every co-signature';

CREATE FUNCTION @extschema@.verify_checkpoint_chain(
    OUT ok            pg_catalog.bool,
    OUT checkpoints   pg_catalog.int8,
    OUT first_problem pg_catalog.text)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH c AS (
        SELECT id,
               CASE
                 WHEN hash <> sha256('\x68697061615f61756469742f636865636b706f696e742f763100'::bytea
                                     || prev_hash || convert_to(note, 'UTF8'))
                   THEN 'checkpoint ' || id || ': its hash does not match its note'
                 WHEN prev_hash <> COALESCE(lag(hash) OVER (ORDER BY id),
                                            '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
                   THEN 'checkpoint ' || id || ': it does not link to the checkpoint stored before it'
               END AS problem
          FROM @extschema@.checkpoints)
    SELECT count(*) FILTER (WHERE problem IS NOT NULL) = 0,
           count(*),
           (array_agg(problem ORDER BY id) FILTER (WHERE problem IS NOT NULL))[1]
      FROM c
$$;
COMMENT ON FUNCTION @extschema@.verify_checkpoint_chain() IS
    'hipaa_audit: check the hash chain of the stored checkpoints (a deleted or edited one breaks it)';

CREATE FUNCTION @extschema@.cosign(checkpoint_id pg_catalog.int8, signature_line pg_catalog.text)
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'cosign'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.cosign(pg_catalog.int8, pg_catalog.text) IS
    'hipaa_audit: add a trusted co-signer''s signature line to a stored checkpoint (hipaa_audit_admin)';

CREATE FUNCTION @extschema@.guard_row()
RETURNS trigger
AS 'MODULE_PATHNAME', 'guard_row'
LANGUAGE C;
COMMENT ON FUNCTION @extschema@.guard_row() IS
    'hipaa_audit: trigger refusing UPDATE and DELETE on a protected table';

CREATE FUNCTION @extschema@.chain_row()
RETURNS trigger
AS 'MODULE_PATHNAME', 'chain_row'
LANGUAGE C;
COMMENT ON FUNCTION @extschema@.chain_row() IS
    'hipaa_audit: trigger stamping each new row of a protected table with its chain position and hash';

CREATE FUNCTION @extschema@.guard_truncate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'guard_truncate'
LANGUAGE C;
COMMENT ON FUNCTION @extschema@.guard_truncate() IS
    'hipaa_audit: trigger refusing TRUNCATE on a protected table';

CREATE VIEW @extschema@.protected_tables AS
SELECT n.nspname                              AS schema_name,
       c.relname                              AS table_name,
       r.relid                                AS relid,
       r.table_uuid                           AS table_uuid,
       r.retention                            AS retention,
       r.retention_locked                     AS retention_locked,
       r.chains                               AS chains,
       r.protected_at                         AS protected_at,
       r.protected_by                         AS protected_by,
       r.replica                              AS replica,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       GREATEST(c.reltuples, 0)::pg_catalog.int8 AS estimated_rows
  FROM ONLY @extschema@.registry r
  JOIN pg_catalog.pg_class c ON c.oid = r.relid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace;
COMMENT ON VIEW @extschema@.protected_tables IS
    'hipaa_audit: protected tables and their settings';

-- Privileges: nothing for PUBLIC but what a table owner needs to protect
-- their own table (protect() checks ownership itself).
REVOKE ALL ON FUNCTION @extschema@.protect(pg_catalog.regclass, pg_catalog.interval, pg_catalog.int4) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.unprotect(pg_catalog.regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.place_hold(pg_catalog.regclass, pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.release_hold(pg_catalog.int8, pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.legal_holds_active FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.set_retention(pg_catalog.regclass, pg_catalog.interval, pg_catalog.bool) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.protect_replica(pg_catalog.regclass, pg_catalog.uuid, pg_catalog.interval, pg_catalog.int4) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.is_protected(pg_catalog.regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.guard_row() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.guard_truncate() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.chain_row() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify(pg_catalog.regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_problems(pg_catalog.regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_progress() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.checkpoint(pg_catalog.regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verifier_key() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_checkpoint(pg_catalog.text, pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_checkpoint(pg_catalog.text, pg_catalog.text[], pg_catalog.int4) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.checkpoint_all() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.trust_key(pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.cosign(pg_catalog.int8, pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.checkpoint_note(pg_catalog.int8) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_checkpoint_chain() FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.verify_progress FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.protected_tables FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@.protect(pg_catalog.regclass, pg_catalog.interval, pg_catalog.int4) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.is_protected(pg_catalog.regclass) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.unprotect(pg_catalog.regclass) TO hipaa_audit_admin;
GRANT EXECUTE ON FUNCTION @extschema@.place_hold(pg_catalog.regclass, pg_catalog.text) TO hipaa_audit_admin;
GRANT EXECUTE ON FUNCTION @extschema@.release_hold(pg_catalog.int8, pg_catalog.text) TO hipaa_audit_admin;
GRANT SELECT ON TABLE @extschema@.legal_holds, @extschema@.hold_releases, @extschema@.legal_holds_active
    TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.set_retention(pg_catalog.regclass, pg_catalog.interval, pg_catalog.bool) TO hipaa_audit_admin;
GRANT EXECUTE ON FUNCTION @extschema@.protect_replica(pg_catalog.regclass, pg_catalog.uuid, pg_catalog.interval, pg_catalog.int4) TO hipaa_audit_admin;
-- verify checks for itself: SELECT on the table, or the auditor or admin role.
GRANT EXECUTE ON FUNCTION @extschema@.verify(pg_catalog.regclass) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify_problems(pg_catalog.regclass) TO PUBLIC;
GRANT SELECT ON TABLE @extschema@.registry TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT SELECT ON TABLE @extschema@.protected_tables TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.verify_progress() TO hipaa_audit_admin, hipaa_audit_auditor;
-- checkpoint() checks for itself: the table's owner or the admin role.
GRANT EXECUTE ON FUNCTION @extschema@.checkpoint(pg_catalog.regclass) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verifier_key() TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.verify_checkpoint(pg_catalog.text, pg_catalog.text) TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.verify_checkpoint(pg_catalog.text, pg_catalog.text[], pg_catalog.int4) TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.checkpoint_all() TO hipaa_audit_admin;
GRANT EXECUTE ON FUNCTION @extschema@.trust_key(pg_catalog.text) TO hipaa_audit_admin;
GRANT EXECUTE ON FUNCTION @extschema@.cosign(pg_catalog.int8, pg_catalog.text) TO hipaa_audit_admin;
GRANT EXECUTE ON FUNCTION @extschema@.checkpoint_note(pg_catalog.int8) TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.verify_checkpoint_chain() TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT SELECT ON TABLE @extschema@.trusted_keys, @extschema@.cosignatures TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT SELECT ON TABLE @extschema@.checkpoints TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT SELECT ON TABLE @extschema@.verify_progress TO hipaa_audit_admin, hipaa_audit_auditor;
