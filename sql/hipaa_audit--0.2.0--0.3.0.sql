-- hipaa_audit 0.2.0 -> 0.3.0: one Merkle tree (RFC 6962) per protected
-- table, grown by each checkpoint, whose notes become C2SP tlog-checkpoints;
-- inclusion and consistency proofs (docs/merkle.md).  The 0.3.0 install
-- script is the 0.1.0 one followed by every upgrade script (see the
-- Makefile), so fresh and upgraded installs agree.

\echo Use "ALTER EXTENSION hipaa_audit UPDATE TO '0.3.0'" to load this file. \quit

-- The stored tree, as tiles of 256 hashes (docs/merkle.md): tile (level,
-- idx) holds the hashes of the tree's nodes at height 8 * level, numbered
-- 256 * idx to 256 * idx + width - 1, each 32 bytes, in order.  A tile is
-- stored again, wider, as the tree grows; a hash never changes, so every
-- stored width of a tile agrees on what they share.  Insert-only; checked
-- against the signed root of each checkpoint.
CREATE TABLE @extschema@.merkle_tiles (
    table_uuid pg_catalog.uuid  NOT NULL,
    level      pg_catalog.int2  NOT NULL CHECK (level BETWEEN 0 AND 7),
    idx        pg_catalog.int8  NOT NULL CHECK (idx >= 0),
    width      pg_catalog.int2  NOT NULL CHECK (width BETWEEN 1 AND 256),
    hashes     pg_catalog.bytea NOT NULL CHECK (pg_catalog.octet_length(hashes) = 32 * width),
    PRIMARY KEY (table_uuid, level, idx, width)
);
-- Hashes do not compress: store them out of line without trying.
ALTER TABLE @extschema@.merkle_tiles ALTER COLUMN hashes SET STORAGE EXTERNAL;
COMMENT ON TABLE @extschema@.merkle_tiles IS
    'hipaa_audit: the Merkle tree of each protected table, as tiles of 256 hashes; written only by checkpoint(); insert-only';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.merkle_tiles', '');
REVOKE ALL ON TABLE @extschema@.merkle_tiles FROM PUBLIC;

-- Which rows are which leaves: each checkpoint appends, per table and
-- chain, the positions first_seq to last_seq as the leaves first_index
-- onwards.  part_uuid is the table the rows are in (a partition of a
-- partitioned table, or the table itself).
CREATE TABLE @extschema@.merkle_ranges (
    table_uuid    pg_catalog.uuid NOT NULL,
    checkpoint_id pg_catalog.int8 NOT NULL REFERENCES @extschema@.checkpoints (id),
    part_uuid     pg_catalog.uuid NOT NULL,
    chain         pg_catalog.int4 NOT NULL CHECK (chain BETWEEN 0 AND 255),
    first_seq     pg_catalog.int8 NOT NULL CHECK (first_seq >= 1),
    last_seq      pg_catalog.int8 NOT NULL,
    first_index   pg_catalog.int8 NOT NULL CHECK (first_index >= 0),
    PRIMARY KEY (part_uuid, chain, last_seq),
    UNIQUE (table_uuid, first_index),
    CHECK (last_seq >= first_seq)
);
COMMENT ON TABLE @extschema@.merkle_ranges IS
    'hipaa_audit: per checkpoint, table and chain, the positions it appended to the Merkle tree and the index of the first; insert-only';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.merkle_ranges', '');
REVOKE ALL ON TABLE @extschema@.merkle_ranges FROM PUBLIC;

CREATE FUNCTION @extschema@.prove_row(
    tbl           pg_catalog.regclass,
    chain         pg_catalog.int4,
    seq           pg_catalog.int8,
    checkpoint_id pg_catalog.int8 DEFAULT NULL)
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'prove_row'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.prove_row(pg_catalog.regclass, pg_catalog.int4, pg_catalog.int8, pg_catalog.int8) IS
    'hipaa_audit: a c2sp.org/tlog-proof@v1 that row (chain, seq) is in the table''s Merkle tree at the latest stored checkpoint including it (or at checkpoint_id)';

CREATE FUNCTION @extschema@.prove_consistency(
    tbl            pg_catalog.regclass,
    old_checkpoint pg_catalog.int8,
    new_checkpoint pg_catalog.int8)
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'prove_consistency'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.prove_consistency(pg_catalog.regclass, pg_catalog.int8, pg_catalog.int8) IS
    'hipaa_audit: the RFC 6962 consistency proof between two stored checkpoints of a table, base64 hashes one per line';

CREATE FUNCTION @extschema@.verify_proof(
    proof       pg_catalog.text,
    leaf        pg_catalog.bytea,
    keys        pg_catalog.text[],
    quorum      pg_catalog.int4 DEFAULT 1,
    OUT ok      pg_catalog.bool,
    OUT status  pg_catalog.text,
    OUT detail  pg_catalog.text,
    OUT leaf_index pg_catalog.int8,
    OUT tree_size  pg_catalog.int8,
    OUT signers pg_catalog.text[])
RETURNS record
AS 'MODULE_PATHNAME', 'verify_proof'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.verify_proof(pg_catalog.text, pg_catalog.bytea, pg_catalog.text[], pg_catalog.int4) IS
    'hipaa_audit: check a c2sp.org/tlog-proof@v1 without reading any table: the row''s leaf (its audit_hash) under the checkpoint''s root, signed by at least quorum of the given keys';

CREATE FUNCTION @extschema@.witness_request(
    tbl              pg_catalog.regclass,
    witness          pg_catalog.text,
    old_size         pg_catalog.int8 DEFAULT NULL,
    OUT checkpoint_id pg_catalog.int8,
    OUT old_size_used pg_catalog.int8,
    OUT body         pg_catalog.text)
RETURNS record
AS 'MODULE_PATHNAME', 'witness_request'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.witness_request(pg_catalog.regclass, pg_catalog.text, pg_catalog.int8) IS
    'hipaa_audit: the body of a C2SP tlog-witness add-checkpoint request for the table''s latest checkpoint, from old_size (default: the last size that witness co-signed)';
REVOKE ALL ON FUNCTION @extschema@.witness_request(pg_catalog.regclass, pg_catalog.text, pg_catalog.int8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.witness_request(pg_catalog.regclass, pg_catalog.text, pg_catalog.int8) TO hipaa_audit_admin;

CREATE FUNCTION @extschema@.verify_tree(
    tbl                 pg_catalog.regclass,
    OUT ok              pg_catalog.bool,
    OUT tree_size       pg_catalog.int8,
    OUT leaves_compared pg_catalog.int8,
    OUT problems        pg_catalog.int8,
    OUT first_problem   pg_catalog.text)
RETURNS record
AS 'MODULE_PATHNAME', 'verify_tree'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
COMMENT ON FUNCTION @extschema@.verify_tree(pg_catalog.regclass) IS
    'hipaa_audit: check the stored Merkle tree of the table''s latest checkpoint: every leaf against its row (while the row is there), every stored tile, and the signed root';
GRANT EXECUTE ON FUNCTION @extschema@.verify_tree(pg_catalog.regclass) TO PUBLIC;

-- The proofs check for themselves, as verify() does: SELECT on the table,
-- or the auditor or admin role.
GRANT EXECUTE ON FUNCTION @extschema@.prove_row(pg_catalog.regclass, pg_catalog.int4, pg_catalog.int8, pg_catalog.int8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.prove_consistency(pg_catalog.regclass, pg_catalog.int8, pg_catalog.int8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.verify_proof(pg_catalog.text, pg_catalog.bytea, pg_catalog.text[], pg_catalog.int4) TO PUBLIC;
GRANT SELECT ON TABLE @extschema@.merkle_tiles, @extschema@.merkle_ranges TO hipaa_audit_admin, hipaa_audit_auditor;

COMMENT ON TABLE @extschema@.checkpoints IS
    'hipaa_audit: every signed checkpoint (a C2SP tlog-checkpoint from 0.3.0 on), insert-only and hash-chained; written only by checkpoint()';
