-- The Merkle tree (docs/merkle.md): each checkpoint appends the rows
-- committed since the last one and signs a C2SP tlog-checkpoint; the root
-- is recomputed here by an independent SQL implementation of RFC 6962;
-- prove_row(), prove_consistency() and verify_proof(), with every bad
-- input and every tampering they must catch.
\set SHOW_CONTEXT never
\set VERBOSITY default
SELECT '/tmp/hipaa_audit_regress_' || current_setting('port') || '.pem' AS keyfile \gset
SELECT 'umask 077 && openssl genpkey -algorithm ed25519 -out ' || :'keyfile' AS gencmd \gset
COPY (SELECT 1 WHERE false) TO PROGRAM :'gencmd';
ALTER SYSTEM SET hipaa_audit.signing_key_file = :'keyfile';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2) \gset
SELECT current_setting('hipaa_audit.signing_key_file') = :'keyfile' AS key_set \gset
\if :key_set
\else
SELECT pg_sleep(2) \gset
\endif
SELECT hipaa_audit.verifier_key() AS vkey \gset
-- Another signer's key (docs/checkpoints.md's example), which did not sign.
SELECT 'audit.example.org+ba7ef4f3+AZnErkKPWRcD9Wml2QyXYXXCk6oH9221aFZ/KKjkPU8H' AS otherkey \gset

-- RFC 6962's Merkle Tree Hash, in SQL, sharing no code with the extension.
CREATE FUNCTION mk_mth(leaves bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n int := coalesce(array_length(leaves, 1), 0);
    k int := 1;
BEGIN
    IF n = 0 THEN RETURN sha256(''::bytea); END IF;
    IF n = 1 THEN RETURN sha256('\x00'::bytea || leaves[1]); END IF;
    WHILE k * 2 < n LOOP k := k * 2; END LOOP;
    RETURN sha256('\x01'::bytea || mk_mth(leaves[1:k]) || mk_mth(leaves[k + 1:n]));
END
$$;

-- Errors that name checkpoint ids (which depend on the tests before):
-- SQLSTATE and message with the ids masked.
CREATE FUNCTION mk_try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'checkpoint [0-9]+', 'checkpoint <id>', 'g');
END
$$;

CREATE TABLE mk_log (id int, what text);
SELECT hipaa_audit.protect('mk_log', '6 years', 1);

INSERT INTO mk_log SELECT g, 'event ' || g FROM generate_series(1, 5) g;
SELECT audit_chain AS c FROM mk_log LIMIT 1 \gset
-- No checkpoint yet: no row is in the tree.
SELECT hipaa_audit.prove_row('mk_log', :c, 1);
SELECT hipaa_audit.checkpoint('mk_log') AS cp1 \gset
-- A row not yet in the tree, a row that does not exist, bad positions.
INSERT INTO mk_log SELECT g, 'event ' || g FROM generate_series(6, 7) g;
SELECT hipaa_audit.prove_row('mk_log', :c, 6);
SELECT hipaa_audit.prove_row('mk_log', :c, 99);
SELECT hipaa_audit.prove_row('mk_log', 1, 1);
SELECT hipaa_audit.prove_row('mk_log', :c, 0);

-- The note: origin, tree size, base64 root, then "checkpoint v2".
SELECT n, regexp_replace(regexp_replace(line, '^[A-Za-z0-9+/]{43}=$', '<root>'), '[0-9a-f]{64}$', '<hash>') AS line
  FROM regexp_split_to_table(split_part(:'cp1', E'\n\n', 1), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE n <> 1 AND line !~ '^time ';
SELECT ok, status FROM hipaa_audit.verify_checkpoint(:'cp1', :'vkey');

-- (Several chains and concurrent writers: test/t/036_merkle.pl.)
INSERT INTO mk_log SELECT g, 'event ' || g FROM generate_series(8, 20) g;
SELECT hipaa_audit.checkpoint('mk_log') AS cp2 \gset
SELECT id AS id1 FROM hipaa_audit.checkpoints WHERE note = :'cp1' \gset
SELECT id AS id2 FROM hipaa_audit.checkpoints WHERE note = :'cp2' \gset

-- What each checkpoint appended: chain by chain, in order, no gap.
SELECT checkpoint_id = :id1 AS first_checkpoint, chain = :c AS that_chain, first_seq, last_seq, first_index
  FROM hipaa_audit.merkle_ranges r JOIN hipaa_audit.registry g USING (table_uuid)
 WHERE g.relid = 'mk_log'::regclass ORDER BY first_index;
SELECT count(*) AS leaves, max(first_index + last_seq - first_seq + 1) AS tree_size
  FROM hipaa_audit.merkle_ranges r JOIN hipaa_audit.registry g USING (table_uuid)
 WHERE g.relid = 'mk_log'::regclass;

-- The signed roots equal RFC 6962's hash of the rows in leaf order.
WITH leaves AS (
    SELECT r.checkpoint_id, r.first_index + (t.audit_seq - r.first_seq) AS idx, t.audit_hash
      FROM mk_log t
      JOIN hipaa_audit.merkle_ranges r
        ON r.chain = t.audit_chain AND t.audit_seq BETWEEN r.first_seq AND r.last_seq
      JOIN hipaa_audit.registry g ON g.table_uuid = r.part_uuid AND g.relid = 'mk_log'::regclass)
SELECT encode(mk_mth((SELECT array_agg(audit_hash ORDER BY idx) FROM leaves WHERE checkpoint_id = :id1)), 'base64')
         = split_part(:'cp1', E'\n', 3) AS root1_matches,
       encode(mk_mth((SELECT array_agg(audit_hash ORDER BY idx) FROM leaves)), 'base64')
         = split_part(:'cp2', E'\n', 3) AS root2_matches,
       split_part(:'cp1', E'\n', 2) AS size1, split_part(:'cp2', E'\n', 2) AS size2;

-- The stored tree against the rows, in full.
SELECT * FROM hipaa_audit.verify_tree('mk_log');

-- A proof of a row: index, hashes, blank line, the checkpoint.
SELECT hipaa_audit.prove_row('mk_log', :c, 3) AS proof \gset
SELECT audit_hash AS leaf FROM mk_log WHERE audit_chain = :c AND audit_seq = 3 \gset
SELECT split_part(:'proof', E'\n', 1) AS magic, split_part(:'proof', E'\n', 3) AS index_line,
       convert_from(decode(substr(split_part(:'proof', E'\n', 2), 7), 'base64'), 'UTF8') ~
         '^hipaa_audit row [0-9a-f-]{36} [0-9]+ 3$' AS extra_names_the_row,
       position(:'cp2' in :'proof') > 0 AS against_latest;
SELECT ok, status, detail, leaf_index, tree_size, signers
  FROM hipaa_audit.verify_proof(:'proof', :'leaf', ARRAY[:'vkey']);
-- Against the first checkpoint, by id.
SELECT ok, status, tree_size FROM hipaa_audit.verify_proof(
    hipaa_audit.prove_row('mk_log', :c, 3, :id1), :'leaf', ARRAY[:'vkey']);
-- A row the first checkpoint does not include.
SELECT mk_try(format('SELECT hipaa_audit.prove_row(%L, %s, 7, %s)', 'mk_log', :c, :id1));
SELECT hipaa_audit.prove_row('mk_log', :c, 3, 999999);
SELECT hipaa_audit.prove_row('mk_log', :c, 3, -1);

-- Every proof of every row verifies, and fails for any other row's hash.
SELECT count(*) AS rows_proved,
       count(*) FILTER (WHERE (hipaa_audit.verify_proof(hipaa_audit.prove_row('mk_log', audit_chain, audit_seq),
                                                        audit_hash, ARRAY[:'vkey'])).ok) AS verified,
       count(*) FILTER (WHERE (hipaa_audit.verify_proof(hipaa_audit.prove_row('mk_log', audit_chain, audit_seq),
                                                        sha256(audit_hash), ARRAY[:'vkey'])).ok) AS verified_with_wrong_leaf
  FROM mk_log;

-- What verify_proof() catches, each with its status.
SELECT 'wrong leaf' AS tampering, ok, status, detail FROM hipaa_audit.verify_proof(:'proof', sha256(:'leaf'), ARRAY[:'vkey'])
UNION ALL
SELECT 'other index', ok, status, detail FROM hipaa_audit.verify_proof(
    regexp_replace(:'proof', E'\nindex [0-9]+\n', E'\nindex 4\n'), :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'index past the tree', ok, status, detail FROM hipaa_audit.verify_proof(
    regexp_replace(:'proof', E'\nindex [0-9]+\n', E'\nindex 20\n'), :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'a hash changed', ok, status, detail FROM hipaa_audit.verify_proof(
    regexp_replace(:'proof', E'\nindex ([0-9]+)\n.', E'\nindex \\1\nA'), :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'a hash dropped', ok, status, detail FROM hipaa_audit.verify_proof(
    regexp_replace(:'proof', E'(\nindex [0-9]+\n)[^\n]+\n', E'\\1'), :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'root changed', ok, status, detail FROM hipaa_audit.verify_proof(
    replace(:'proof', split_part(:'cp2', E'\n', 3), encode(sha256('x'), 'base64')), :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'size changed', ok, status, detail FROM hipaa_audit.verify_proof(
    replace(:'proof', E'\n' || split_part(:'cp2', E'\n', 2) || E'\n', E'\n21\n'), :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'other key', ok, status, detail FROM hipaa_audit.verify_proof(:'proof', :'leaf', ARRAY[:'otherkey'])
UNION ALL
SELECT 'quorum of 2', ok, status, detail FROM hipaa_audit.verify_proof(:'proof', :'leaf', ARRAY[:'vkey', :'otherkey'], 2)
UNION ALL
SELECT 'truncated', ok, status, detail FROM hipaa_audit.verify_proof(left(:'proof', 120), :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'no checkpoint', ok, status, detail FROM hipaa_audit.verify_proof(split_part(:'proof', E'\n\n', 1) || E'\n\n', :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'not a proof', ok, status, detail FROM hipaa_audit.verify_proof(:'cp2', :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'CR line ends', ok, status, detail FROM hipaa_audit.verify_proof(replace(:'proof', E'\n', E'\r\n'), :'leaf', ARRAY[:'vkey'])
UNION ALL
SELECT 'v1 checkpoint', ok, status, detail FROM hipaa_audit.verify_proof(
    split_part(:'proof', E'\n\n', 1) || E'\n\n' || regexp_replace(:'cp2', E'\n[0-9]+\n[^\n]+\ncheckpoint v2\n', E'\ncheckpoint v1\n'),
    :'leaf', ARRAY[:'vkey']);
SELECT hipaa_audit.verify_proof(:'proof', '\x00', ARRAY[:'vkey']);
SELECT hipaa_audit.verify_proof(:'proof', NULL, ARRAY[:'vkey']);
SELECT hipaa_audit.verify_proof(:'proof', :'leaf', ARRAY[:'vkey'], 2);

-- Consistency between the two checkpoints: RFC 9162's check, in SQL, of
-- the proof the extension gives (here the old size and the hashes).
SELECT hipaa_audit.prove_consistency('mk_log', :id1, :id2) AS cproof \gset
SELECT array_length(regexp_split_to_array(rtrim(:'cproof', E'\n'), E'\n'), 1) AS proof_hashes,
       :'cproof' ~ E'^([A-Za-z0-9+/]{43}=\n)+$' AS base64_lines;
SELECT hipaa_audit.prove_consistency('mk_log', :id1, :id1) = '' AS same_checkpoint_is_empty;
SELECT mk_try(format('SELECT hipaa_audit.prove_consistency(%L, %s, %s)', 'mk_log', :id2, :id1));
SELECT hipaa_audit.prove_consistency('mk_log', :id1, 999999);
SELECT hipaa_audit.prove_consistency('mk_log', 0, :id2);

-- Tampering with the stored tree, and rows removed from a chain's end,
-- are in test/t/036_merkle.pl (the extension's tables and protected
-- tables refuse such statements while the library is loaded):
UPDATE hipaa_audit.merkle_tiles SET width = width;
DELETE FROM hipaa_audit.merkle_ranges;

-- A partitioned table's rows are proved through their partition.
CREATE TABLE mk_parted (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE mk_p1 PARTITION OF mk_parted FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
SELECT hipaa_audit.protect('mk_parted', '6 years', 2);
SELECT hipaa_audit.prove_row('mk_parted', 0, 1);
SELECT hipaa_audit.verify_tree('mk_p1');
SELECT hipaa_audit.verify_tree(NULL);

-- witness_request(): its request body, and its bad input.
SELECT old_size_used, body ~ E'^old 0\n\nhipaa_audit/[0-9]+/[0-9a-f-]{36}\n20\n' AS body_from_zero
  FROM hipaa_audit.witness_request('mk_log', 'witness.example');
SELECT old_size_used, body ~ E'^old 5\n([A-Za-z0-9+/]{43}=\n)+\n' AS body_with_proof
  FROM hipaa_audit.witness_request('mk_log', 'witness.example', 5);
SELECT hipaa_audit.witness_request('mk_log', 'witness.example', 21);
SELECT hipaa_audit.witness_request('mk_log', 'witness.example', -1);
SELECT hipaa_audit.witness_request('mk_log', NULL);
SELECT hipaa_audit.witness_request('mk_p1', 'witness.example');
SELECT hipaa_audit.prove_consistency('mk_p1', 1, 2);

-- Checkpoints are READ COMMITTED only (a snapshot could miss the last one).
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT hipaa_audit.checkpoint('mk_log');
ROLLBACK;
