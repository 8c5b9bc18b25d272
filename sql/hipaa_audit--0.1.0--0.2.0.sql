-- hipaa_audit 0.1.0 -> 0.2.0: lawful purging of expired rows with signed
-- receipts, and the drop or unprotect of tables idle past their retention,
-- both on record.  The 0.2.0 install script is the 0.1.0 one followed by
-- this file (see the Makefile), so fresh and upgraded installs agree.

\echo Use "ALTER EXTENSION hipaa_audit UPDATE TO '0.2.0'" to load this file. \quit

-- Purge receipts, insert-only and hash-chained: hash = SHA-256 of
-- 'hipaa_audit/purge/v1' || 0x00 || prev_hash || note (UTF-8).  The note is
-- signed like a checkpoint (docs/retention.md).
CREATE TABLE @extschema@.purge_receipts (
    id           pg_catalog.int8        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_uuid   pg_catalog.uuid        NOT NULL,
    relid        pg_catalog.regclass,
    purged_at    pg_catalog.timestamptz NOT NULL,
    purged_by    pg_catalog.name        NOT NULL,
    cutoff       pg_catalog.timestamptz NOT NULL,
    rows_removed pg_catalog.int8        NOT NULL CHECK (rows_removed > 0),
    note         pg_catalog.text        NOT NULL,
    prev_hash    pg_catalog.bytea       NOT NULL,
    hash         pg_catalog.bytea       NOT NULL
);
COMMENT ON TABLE @extschema@.purge_receipts IS
    'hipaa_audit: one signed receipt per purge_expired() that removed rows; insert-only and hash-chained';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.purge_receipts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.purge_receipts_id_seq', '');
REVOKE ALL ON TABLE @extschema@.purge_receipts FROM PUBLIC;

-- Per receipt and chain: the positions removed and the hash of the last one,
-- the anchor the rest of the chain starts from.
CREATE TABLE @extschema@.purge_anchors (
    receipt_id  pg_catalog.int8  NOT NULL REFERENCES @extschema@.purge_receipts (id),
    table_uuid  pg_catalog.uuid  NOT NULL,
    chain       pg_catalog.int4  NOT NULL,
    first_seq   pg_catalog.int8  NOT NULL,
    last_seq    pg_catalog.int8  NOT NULL,
    anchor_hash pg_catalog.bytea NOT NULL,
    PRIMARY KEY (table_uuid, chain, last_seq),
    CHECK (first_seq >= 1 AND last_seq >= first_seq)
);
COMMENT ON TABLE @extschema@.purge_anchors IS
    'hipaa_audit: per purge receipt and chain, the removed positions and the hash of the last removed row; insert-only';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.purge_anchors', '');
REVOKE ALL ON TABLE @extschema@.purge_anchors FROM PUBLIC;

-- Protected tables dropped, unprotected or detached from a protected
-- partitioned table, with what was in them.
CREATE TABLE @extschema@.retired_tables (
    id            pg_catalog.int8        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_uuid    pg_catalog.uuid        NOT NULL,
    table_name    pg_catalog.text        NOT NULL,
    action        pg_catalog.text        NOT NULL CHECK (action IN ('drop', 'unprotect', 'detach')),
    retired_at    pg_catalog.timestamptz NOT NULL,
    retired_by    pg_catalog.name        NOT NULL,
    retention     pg_catalog.interval    NOT NULL,
    rows_left     pg_catalog.int8        NOT NULL,
    newest_row_at pg_catalog.timestamptz
);
COMMENT ON TABLE @extschema@.retired_tables IS
    'hipaa_audit: protected tables dropped or unprotected (allowed once idle past retention and not held); insert-only';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.retired_tables', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.retired_tables_id_seq', '');
REVOKE ALL ON TABLE @extschema@.retired_tables FROM PUBLIC;

CREATE FUNCTION @extschema@.purge_expired(
    tbl              pg_catalog.regclass,
    dry_run          pg_catalog.bool DEFAULT false,
    max_rows         pg_catalog.int8 DEFAULT NULL,
    OUT rows_removed pg_catalog.int8,
    OUT receipt_id   pg_catalog.int8,
    OUT receipt      pg_catalog.text,
    OUT partition    pg_catalog.text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'purge_expired'
LANGUAGE C CALLED ON NULL INPUT VOLATILE ROWS 1;
COMMENT ON FUNCTION @extschema@.purge_expired(pg_catalog.regclass, pg_catalog.bool, pg_catalog.int8) IS
    'hipaa_audit: verify and remove the rows past retention at the start of each chain (at most max_rows), with a signed receipt; dry_run only verifies and counts them (hipaa_audit_admin)';

CREATE FUNCTION @extschema@.verify_receipt(
    note       pg_catalog.text,
    key        pg_catalog.text,
    OUT ok     pg_catalog.bool,
    OUT status pg_catalog.text,
    OUT tbl    pg_catalog.regclass,
    OUT detail pg_catalog.text)
RETURNS record
AS 'MODULE_PATHNAME', 'verify_receipt'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify_receipt(pg_catalog.text, pg_catalog.text) IS
    'hipaa_audit: check a purge receipt''s signature against the given key, that the database recorded it, and that the table continues from it';

CREATE FUNCTION @extschema@.verify_receipt(
    note        pg_catalog.text,
    keys        pg_catalog.text[],
    quorum      pg_catalog.int4,
    OUT ok      pg_catalog.bool,
    OUT status  pg_catalog.text,
    OUT tbl     pg_catalog.regclass,
    OUT detail  pg_catalog.text,
    OUT signers pg_catalog.text[])
RETURNS record
AS 'MODULE_PATHNAME', 'verify_receipt_quorum'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify_receipt(pg_catalog.text, pg_catalog.text[], pg_catalog.int4) IS
    'hipaa_audit: check that at least quorum of the given keys signed a purge receipt, and the table against it';

CREATE FUNCTION @extschema@.verify_receipt_chain(
    OUT ok            pg_catalog.bool,
    OUT receipts      pg_catalog.int8,
    OUT first_problem pg_catalog.text)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH c AS (
        SELECT id,
               CASE
                 WHEN hash <> sha256('\x68697061615f61756469742f70757267652f763100'::bytea
                                     || prev_hash || convert_to(note, 'UTF8'))
                   THEN 'receipt ' || id || ': its hash does not match its note'
                 WHEN prev_hash <> COALESCE(lag(hash) OVER (ORDER BY id),
                                            '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
                   THEN 'receipt ' || id || ': it does not link to the receipt stored before it'
               END AS problem
          FROM @extschema@.purge_receipts
        UNION ALL
        SELECT a.receipt_id,
               'receipt ' || a.receipt_id || ': its note does not list chain ' || a.chain
               || ' positions ' || a.first_seq || '-' || a.last_seq || ' as recorded'
          FROM @extschema@.purge_anchors a
          LEFT JOIN @extschema@.purge_receipts r ON r.id = a.receipt_id
         WHERE r.id IS NULL
            OR r.table_uuid <> a.table_uuid
            OR strpos(r.note, E'\nchain ' || a.chain || ' ' || a.first_seq || ' ' || a.last_seq
                              || ' ' || encode(a.anchor_hash, 'hex') || E'\n') = 0)
    SELECT count(*) FILTER (WHERE problem IS NOT NULL) = 0,
           (SELECT count(*) FROM @extschema@.purge_receipts),
           (array_agg(problem ORDER BY id, problem) FILTER (WHERE problem IS NOT NULL))[1]
      FROM c
$$;
COMMENT ON FUNCTION @extschema@.verify_receipt_chain() IS
    'hipaa_audit: check the hash chain of the stored purge receipts and that every recorded anchor is in its receipt';

-- What changed in meaning.
COMMENT ON TABLE @extschema@.registry IS
    'hipaa_audit: one row per protected table; written only by protect(), set_retention(), unprotect() and the drop of a protected table';
COMMENT ON FUNCTION @extschema@.unprotect(pg_catalog.regclass) IS
    'hipaa_audit: remove the protection of a table holding no rows within retention and no hold; recorded in retired_tables (hipaa_audit_admin)';

REVOKE ALL ON FUNCTION @extschema@.purge_expired(pg_catalog.regclass, pg_catalog.bool, pg_catalog.int8) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_receipt(pg_catalog.text, pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_receipt(pg_catalog.text, pg_catalog.text[], pg_catalog.int4) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_receipt_chain() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.purge_expired(pg_catalog.regclass, pg_catalog.bool, pg_catalog.int8) TO hipaa_audit_admin;
GRANT EXECUTE ON FUNCTION @extschema@.verify_receipt(pg_catalog.text, pg_catalog.text) TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.verify_receipt(pg_catalog.text, pg_catalog.text[], pg_catalog.int4) TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.verify_receipt_chain() TO hipaa_audit_admin, hipaa_audit_auditor;
GRANT SELECT ON TABLE @extschema@.purge_receipts, @extschema@.purge_anchors, @extschema@.retired_tables
    TO hipaa_audit_admin, hipaa_audit_auditor;

-- Incremental verification: the rows after a stored checkpoint's heads.
CREATE FUNCTION @extschema@.verify(
    tbl               pg_catalog.regclass,
    since             pg_catalog.int8,
    OUT ok            pg_catalog.bool,
    OUT rows_checked  pg_catalog.int8,
    OUT chains        pg_catalog.int4,
    OUT problems      pg_catalog.int8,
    OUT first_problem pg_catalog.text)
RETURNS record
AS 'MODULE_PATHNAME', 'verify_since'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify(pg_catalog.regclass, pg_catalog.int8) IS
    'hipaa_audit: check only the rows added after stored checkpoint "since" (hipaa_audit.checkpoints.id), linked to the heads it recorded; one summary row';

CREATE FUNCTION @extschema@.verify_problems(tbl pg_catalog.regclass, since pg_catalog.int8)
RETURNS TABLE (chain pg_catalog.int4, seq pg_catalog.int8, kind pg_catalog.text, detail pg_catalog.text)
AS 'MODULE_PATHNAME', 'verify_problems_since'
LANGUAGE C CALLED ON NULL INPUT VOLATILE ROWS 10;
COMMENT ON FUNCTION @extschema@.verify_problems(pg_catalog.regclass, pg_catalog.int8) IS
    'hipaa_audit: one row per problem among the rows added after stored checkpoint "since"; empty when intact';

REVOKE ALL ON FUNCTION @extschema@.verify(pg_catalog.regclass, pg_catalog.int8) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_problems(pg_catalog.regclass, pg_catalog.int8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify(pg_catalog.regclass, pg_catalog.int8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify_problems(pg_catalog.regclass, pg_catalog.int8) TO PUBLIC;

-- Incremental verification from a signed checkpoint note and its verifier
-- key; verification of one chain and of a time range.
CREATE FUNCTION @extschema@.verify(
    tbl               pg_catalog.regclass,
    since             pg_catalog.text,
    key               pg_catalog.text,
    OUT ok            pg_catalog.bool,
    OUT rows_checked  pg_catalog.int8,
    OUT chains        pg_catalog.int4,
    OUT problems      pg_catalog.int8,
    OUT first_problem pg_catalog.text)
RETURNS record
AS 'MODULE_PATHNAME', 'verify_since_note'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify(pg_catalog.regclass, pg_catalog.text, pg_catalog.text) IS
    'hipaa_audit: check only the rows added after the heads of signed checkpoint note "since", whose signature must verify with verifier key "key"; one summary row';

CREATE FUNCTION @extschema@.verify_problems(tbl pg_catalog.regclass, since pg_catalog.text, key pg_catalog.text)
RETURNS TABLE (chain pg_catalog.int4, seq pg_catalog.int8, kind pg_catalog.text, detail pg_catalog.text)
AS 'MODULE_PATHNAME', 'verify_problems_since_note'
LANGUAGE C CALLED ON NULL INPUT VOLATILE ROWS 10;
COMMENT ON FUNCTION @extschema@.verify_problems(pg_catalog.regclass, pg_catalog.text, pg_catalog.text) IS
    'hipaa_audit: one row per problem among the rows added after the heads of a signed checkpoint note; empty when intact';

CREATE FUNCTION @extschema@.verify_rows(
    tbl               pg_catalog.regclass,
    chain             pg_catalog.int4 DEFAULT NULL,
    from_time         pg_catalog.timestamptz DEFAULT NULL,
    to_time           pg_catalog.timestamptz DEFAULT NULL,
    OUT ok            pg_catalog.bool,
    OUT rows_checked  pg_catalog.int8,
    OUT chains        pg_catalog.int4,
    OUT problems      pg_catalog.int8,
    OUT first_problem pg_catalog.text)
RETURNS record
AS 'MODULE_PATHNAME', 'verify_rows'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify_rows(pg_catalog.regclass, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.timestamptz) IS
    'hipaa_audit: check one chain, or the rows whose audit_at is in [from_time, to_time] (of one chain or all), linked to the rows before and after them; one summary row';

CREATE FUNCTION @extschema@.verify_rows_problems(
    tbl       pg_catalog.regclass,
    chain     pg_catalog.int4 DEFAULT NULL,
    from_time pg_catalog.timestamptz DEFAULT NULL,
    to_time   pg_catalog.timestamptz DEFAULT NULL)
RETURNS TABLE (chain pg_catalog.int4, seq pg_catalog.int8, kind pg_catalog.text, detail pg_catalog.text)
AS 'MODULE_PATHNAME', 'verify_rows_problems'
LANGUAGE C CALLED ON NULL INPUT VOLATILE ROWS 10;
COMMENT ON FUNCTION @extschema@.verify_rows_problems(pg_catalog.regclass, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.timestamptz) IS
    'hipaa_audit: one row per problem verify_rows() finds; empty when intact';

REVOKE ALL ON FUNCTION @extschema@.verify(pg_catalog.regclass, pg_catalog.text, pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_problems(pg_catalog.regclass, pg_catalog.text, pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_rows(pg_catalog.regclass, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.verify_rows_problems(pg_catalog.regclass, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify(pg_catalog.regclass, pg_catalog.text, pg_catalog.text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify_problems(pg_catalog.regclass, pg_catalog.text, pg_catalog.text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify_rows(pg_catalog.regclass, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.timestamptz) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify_rows_problems(pg_catalog.regclass, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.timestamptz) TO PUBLIC;

-- Tables protected before 0.2.0 get the BRIN index on audit_at that
-- protect() now creates (verify_rows() finds time ranges through it),
-- unless an index led by audit_at is already there.  A BRIN build reads
-- the table once; it runs no code of the table's owner.
DO $ha$
DECLARE
    r pg_catalog.regclass;
BEGIN
    FOR r IN
        SELECT g.relid FROM @extschema@.registry g
         WHERE NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_index i
                 JOIN pg_catalog.pg_attribute a
                   ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
                  AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
                WHERE i.indrelid OPERATOR(pg_catalog.=) g.relid
                  AND a.attname OPERATOR(pg_catalog.=) 'audit_at'
                  AND i.indexprs IS NULL AND i.indpred IS NULL)
         ORDER BY g.relid
    LOOP
        EXECUTE pg_catalog.format('CREATE INDEX ON %s USING brin (audit_at) WITH (autosummarize = on)', r);
    END LOOP;
END
$ha$;

-- Partitioned tables (docs/partitions.md): the partitioned table and each of
-- its partitions have a registry row; a partition's names the partitioned
-- table it belongs to.  Chains live in the partitions.
ALTER TABLE @extschema@.registry ADD COLUMN partition_of pg_catalog.regclass;
CREATE INDEX ON @extschema@.registry (partition_of);

CREATE OR REPLACE VIEW @extschema@.protected_tables AS
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
       GREATEST(c.reltuples, 0)::pg_catalog.int8 AS estimated_rows,
       r.partition_of                         AS partition_of,
       c.relkind OPERATOR(pg_catalog.=) 'p'   AS partitioned
  FROM ONLY @extschema@.registry r
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace;
COMMENT ON VIEW @extschema@.protected_tables IS
    'hipaa_audit: protected tables and their settings; a partition names its partitioned table in partition_of';

-- A table owner makes partitions of a protected partitioned table:
-- PostgreSQL checks EXECUTE on the row trigger functions it clones onto
-- them.  Naming them in CREATE TRIGGER stays refused but to superusers
-- (the utility hook), and they run only as triggers.
GRANT EXECUTE ON FUNCTION @extschema@.chain_row() TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.guard_row() TO PUBLIC;
