/*-------------------------------------------------------------------------
 *
 * proof.c
 *	  prove_row() and prove_consistency() (layer api/): proofs from a
 *	  table's stored Merkle tree against its stored, signed checkpoints
 *	  (docs/merkle.md).  verify_proof() is with the other note checks in
 *	  notecheck.c.
 *
 * A proof is computed from stored tiles, which nothing trusts: before one
 * is returned, the tree's root at the checkpoint's size is recomputed and
 * compared with the root the checkpoint signed, and the row's own hash
 * with its leaf, so a damaged tree or a changed row is an error here
 * rather than a proof that fails later in an auditor's hands.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

/* A stored checkpoint of a tree, read back. */
typedef struct StoredCheckpoint
{
	bool		found;
	int64		id;
	char	   *note;			/* as stored, the server's signature only */
	HaNoteBody	nb;
	MemoryContext cxt;
} StoredCheckpoint;

static void
ReadCheckpointRow(void *arg, HeapTuple tup, TupleDesc desc)
{
	StoredCheckpoint *sc = (StoredCheckpoint *) arg;
	bool		isnull;
	char	   *note;

	if (sc->found)
		return;
	sc->found = true;
	sc->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	note = SPI_getvalue(tup, desc, 2);
	sc->note = note ? MemoryContextStrdup(sc->cxt, note) : NULL;
}

/*
 * A stored checkpoint of the tree: the one with id, or (id 0) the latest.
 * It must be a tlog-checkpoint (version 2).
 */
static void
LoadCheckpoint(const HaProtectedEntry *tree, int64 id, StoredCheckpoint *sc)
{
	Oid			argtypes[2] = {UUIDOID, INT8OID};
	Datum		values[2];
	char	   *body;
	char	   *problem;

	memset(sc, 0, sizeof(*sc));
	sc->cxt = CurrentMemoryContext;
	values[0] = UUIDPGetDatum((pg_uuid_t *) &tree->uuid);
	values[1] = Int64GetDatum(id);
	(void) HaRunSql(id > 0 ?
					"SELECT id, note FROM hipaa_audit.checkpoints "
					"WHERE table_uuid OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2" :
					"SELECT id, note FROM hipaa_audit.checkpoints "
					"WHERE table_uuid OPERATOR(pg_catalog.=) $1 AND $2 OPERATOR(pg_catalog.=) 0 "
					"ORDER BY id DESC LIMIT 1",
					2, argtypes, values, NULL, InvalidOid, HA_SQL_READ_ONLY,
					ReadCheckpointRow, sc);
	if (!sc->found)
	{
		if (id > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("checkpoint " INT64_FORMAT " is not a stored checkpoint of table %s",
							id, HaRelDisplayName(tree->relid)),
					 errhint("See hipaa_audit.checkpoints for the table's checkpoints.")));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has no stored checkpoint", HaRelDisplayName(tree->relid)),
				 errhint("Take one with hipaa_audit.checkpoint('%s').",
						 HaRelDisplayName(tree->relid))));
	}
	body = sc->note ? HaNoteBodyOf(sc->note) : NULL;
	problem = body ? HaParseNoteBody(body, false, &sc->nb) : "it has no body";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored checkpoint " INT64_FORMAT " of table %s does not read as a checkpoint",
						sc->id, HaRelDisplayName(tree->relid)),
				 errdetail("%s", problem)));
	if (sc->nb.version != 2)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("checkpoint " INT64_FORMAT " of table %s was taken before the table had a Merkle tree",
						sc->id, HaRelDisplayName(tree->relid)),
				 errhint("Take a checkpoint with hipaa_audit.checkpoint() and prove against it.")));
}

/*
 * The table whose tree holds relid's rows: the table itself, or the
 * partitioned table of a partition.  Checks the right to read it.
 */
static const HaProtectedEntry *
TreeOf(Oid relid, const char *fname, const HaProtectedEntry **own)
{
	const HaProtectedEntry *entry;

	HaCheckRelationExists(relid);
	entry = HaRequireProtected(relid, "Only tables registered with hipaa_audit.protect() have a Merkle tree.");
	HaCheckCanVerify(relid);
	if (!HaSchemaHasTree())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the hipaa_audit schema in this database is older than its library"),
				 errhint("Run ALTER EXTENSION hipaa_audit UPDATE.")));
	*own = entry;
	if (OidIsValid(entry->parent))
	{
		const HaProtectedEntry *tree = HaLookupProtected(entry->parent);

		if (tree == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the partitioned table of %s is not protected", HaRelDisplayName(relid))));
		return tree;
	}
	if (entry->partitioned && strcmp(fname, "prove_row") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is partitioned: its rows and chains are in its partitions",
						HaRelDisplayName(relid)),
				 errhint("Name the partition that holds the row; the proof is against the partitioned table's tree.")));
	return entry;
}

/* The tree at a checkpoint's size, its stored root checked against the signed one. */
static HaTree *
OpenCheckedTree(const HaProtectedEntry *tree, const StoredCheckpoint *sc)
{
	HaTree	   *t = HaTreeOpen(&tree->uuid, sc->nb.tree_size);
	uint8		root[HA_HASH_LEN];

	HaTreeRoot(t, sc->nb.tree_size, root);
	if (memcmp(root, sc->nb.root, HA_HASH_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the stored Merkle tree of table %s does not have the root checkpoint " INT64_FORMAT " signed",
						HaRelDisplayName(tree->relid), sc->id),
				 errhint("Rows of hipaa_audit.merkle_tiles were changed; restore them from a backup.")));
	return t;
}

static void
AppendHashLines(StringInfo buf, const uint8 *hashes, int n)
{
	for (int i = 0; i < n; i++)
		appendStringInfo(buf, "%s\n", HaBase64(hashes + (Size) i * HA_HASH_LEN, HA_HASH_LEN));
}

PG_FUNCTION_INFO_V1(prove_row);

/*
 * prove_row(tbl, chain, seq, checkpoint_id) -> a c2sp.org/tlog-proof@v1
 * that the row is the leaf at its index in the tree the checkpoint signed:
 * the latest stored checkpoint, or checkpoint_id.
 */
Datum
prove_row(PG_FUNCTION_ARGS)
{
	Oid			relid;
	int32		chain;
	int64		seq;
	int64		want = 0;
	const HaProtectedEntry *own;
	const HaProtectedEntry *tree;
	StoredCheckpoint sc;
	Oid			argtypes[3] = {UUIDOID, INT4OID, INT8OID};
	Datum		values[3];
	bool		found;
	int64		index;
	HaTree	   *t;
	uint8		leaf[HA_HASH_LEN];
	uint8		rowhash[HA_HASH_LEN];
	uint8		proof[HA_TREE_MAX_PROOF * HA_HASH_LEN];
	int			n;
	Relation	rel;
	bool		present;
	StringInfoData buf;
	char	   *note;
	char	   *extra;

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("tbl, chain and seq of hipaa_audit.prove_row must not be null")));
	relid = PG_GETARG_OID(0);
	chain = PG_GETARG_INT32(1);
	seq = PG_GETARG_INT64(2);
	if (!PG_ARGISNULL(3))
	{
		want = PG_GETARG_INT64(3);
		if (want <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("checkpoint_id must be a positive id of hipaa_audit.checkpoints")));
	}
	tree = TreeOf(relid, "prove_row", &own);
	if (chain < 0 || chain >= own->chains || seq < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table %s has no chain %d, position " INT64_FORMAT,
						HaRelDisplayName(relid), chain, seq),
				 errdetail("Its chains are 0 to %d; positions start at 1.", own->chains - 1)));

	/* Which leaf: the range the row's checkpoint appended. */
	values[0] = UUIDPGetDatum((pg_uuid_t *) &own->uuid);
	values[1] = Int32GetDatum(chain);
	values[2] = Int64GetDatum(seq);
	{
		char	   *v = HaQueryText("SELECT first_index OPERATOR(pg_catalog.+) ($3 OPERATOR(pg_catalog.-) first_seq) "
									"FROM hipaa_audit.merkle_ranges "
									"WHERE part_uuid OPERATOR(pg_catalog.=) $1 AND chain OPERATOR(pg_catalog.=) $2 "
									"AND last_seq OPERATOR(pg_catalog.>=) $3 AND first_seq OPERATOR(pg_catalog.<=) $3 "
									"ORDER BY last_seq LIMIT 1",
									3, argtypes, values, HA_SQL_READ_ONLY, &found);

		index = found && v ? pg_strtoint64(v) : -1;
	}

	rel = table_open(relid, AccessShareLock);
	present = HaChainFindRow(rel, chain, seq, NULL, rowhash, NULL);
	table_close(rel, AccessShareLock);
	if (index < 0)
	{
		if (present)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("row (chain %d, position " INT64_FORMAT ") of table %s is not in its Merkle tree yet",
							chain, seq, HaRelDisplayName(relid)),
					 errdetail("A row joins the tree at the first checkpoint after it commits."),
					 errhint("Take a checkpoint with hipaa_audit.checkpoint('%s').",
							 HaRelDisplayName(tree->relid))));
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("table %s has no row at chain %d, position " INT64_FORMAT,
						HaRelDisplayName(relid), chain, seq)));
	}

	LoadCheckpoint(tree, want, &sc);
	if (index >= sc.nb.tree_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("checkpoint " INT64_FORMAT " does not include row (chain %d, position " INT64_FORMAT ") of table %s",
						sc.id, chain, seq, HaRelDisplayName(relid)),
				 errdetail("The row is leaf " INT64_FORMAT "; the checkpoint's tree has " INT64_FORMAT " leaves.",
						   index, sc.nb.tree_size),
				 errhint("Prove against a later checkpoint.")));

	t = OpenCheckedTree(tree, &sc);
	HaTreeLeaf(t, index, leaf);
	if (present)
	{
		uint8		expect[HA_HASH_LEN];

		HaMerkleLeaf(rowhash, HA_HASH_LEN, expect);
		if (memcmp(expect, leaf, HA_HASH_LEN) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("row (chain %d, position " INT64_FORMAT ") of table %s is not the row its Merkle tree holds",
							chain, seq, HaRelDisplayName(relid)),
					 errdetail("Its audit_hash differs from leaf " INT64_FORMAT " of the tree.", index),
					 errhint("Run hipaa_audit.verify() on the table.")));
	}
	n = HaTreeProveLeaf(t, index, sc.nb.tree_size, proof);
	if (!HaMerkleCheckInclusion(leaf, index, sc.nb.tree_size, proof, n, sc.nb.root))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the stored Merkle tree of table %s gives no valid proof of leaf " INT64_FORMAT,
						HaRelDisplayName(tree->relid), index),
				 errdetail("A hash the proof reads differs from the one the signed root was computed from."),
				 errhint("Rows of hipaa_audit.merkle_tiles were changed; restore them from a backup.")));
	HaTreeClose(t);

	/* The checkpoint with every co-signature stored for it. */
	values[0] = Int64GetDatum(sc.id);
	argtypes[0] = INT8OID;
	note = HaQueryText("SELECT hipaa_audit.checkpoint_note($1)", 1, argtypes, values,
					   HA_SQL_READ_ONLY, &found);
	if (note == NULL)
		note = sc.note;

	extra = psprintf("hipaa_audit row %s %d " INT64_FORMAT,
					 DatumGetCString(DirectFunctionCall1(uuid_out,
														 UUIDPGetDatum((pg_uuid_t *) &own->uuid))),
					 chain, seq);
	initStringInfo(&buf);
	appendStringInfo(&buf, "c2sp.org/tlog-proof@v1\nextra %s\nindex " INT64_FORMAT "\n",
					 HaBase64((const uint8 *) extra, strlen(extra)), index);
	AppendHashLines(&buf, proof, n);
	appendStringInfo(&buf, "\n%s", note);
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}

PG_FUNCTION_INFO_V1(prove_consistency);

/*
 * prove_consistency(tbl, old_checkpoint, new_checkpoint) -> the RFC 6962
 * consistency proof between the trees two stored checkpoints signed,
 * base64 hashes, one per line (empty when the sizes are equal or the old
 * tree is empty).
 */
Datum
prove_consistency(PG_FUNCTION_ARGS)
{
	const HaProtectedEntry *own;
	const HaProtectedEntry *tree;
	StoredCheckpoint old_cp;
	StoredCheckpoint new_cp;
	HaTree	   *t;
	uint8		root[HA_HASH_LEN];
	uint8		proof[HA_TREE_MAX_PROOF * HA_HASH_LEN];
	int			n;
	StringInfoData buf;

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("arguments of hipaa_audit.prove_consistency must not be null")));
	if (PG_GETARG_INT64(1) <= 0 || PG_GETARG_INT64(2) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("checkpoints are named by their positive ids in hipaa_audit.checkpoints")));
	tree = TreeOf(PG_GETARG_OID(0), "prove_consistency", &own);
	if (tree != own)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is a partition: its rows are in the Merkle tree of its partitioned table",
						HaRelDisplayName(PG_GETARG_OID(0))),
				 errhint("Ask for the partitioned table's consistency proof.")));
	LoadCheckpoint(tree, PG_GETARG_INT64(1), &old_cp);
	LoadCheckpoint(tree, PG_GETARG_INT64(2), &new_cp);
	if (old_cp.nb.tree_size > new_cp.nb.tree_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("checkpoint " INT64_FORMAT " has a larger tree than checkpoint " INT64_FORMAT,
						old_cp.id, new_cp.id),
				 errdetail("Tree sizes " INT64_FORMAT " and " INT64_FORMAT ".",
						   old_cp.nb.tree_size, new_cp.nb.tree_size),
				 errhint("Give the older checkpoint first.")));
	t = OpenCheckedTree(tree, &new_cp);
	HaTreeRoot(t, old_cp.nb.tree_size, root);
	if (memcmp(root, old_cp.nb.root, HA_HASH_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the stored Merkle tree of table %s does not have the root checkpoint " INT64_FORMAT " signed",
						HaRelDisplayName(tree->relid), old_cp.id),
				 errhint("Rows of hipaa_audit.merkle_tiles were changed; restore them from a backup.")));
	n = HaTreeProveConsistency(t, old_cp.nb.tree_size, new_cp.nb.tree_size, proof);
	if (!HaMerkleCheckConsistency(old_cp.nb.tree_size, old_cp.nb.root, new_cp.nb.tree_size,
								  new_cp.nb.root, proof, n))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the stored Merkle tree of table %s gives no valid consistency proof between checkpoints " INT64_FORMAT " and " INT64_FORMAT,
						HaRelDisplayName(tree->relid), old_cp.id, new_cp.id),
				 errhint("Rows of hipaa_audit.merkle_tiles were changed; restore them from a backup.")));
	HaTreeClose(t);
	initStringInfo(&buf);
	AppendHashLines(&buf, proof, n);
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}

/* Row callback: the first column, a stored note, as text. */
static void
ReadNoteText(void *arg, HeapTuple tup, TupleDesc desc)
{
	StoredCheckpoint *sc = (StoredCheckpoint *) arg;
	char	   *note;

	if (sc->found)
		return;
	note = SPI_getvalue(tup, desc, 1);
	if (note != NULL)
	{
		sc->found = true;
		sc->note = MemoryContextStrdup(sc->cxt, note);
	}
}

PG_FUNCTION_INFO_V1(witness_request);

/*
 * witness_request(tbl, witness, old_size) -> (checkpoint_id, old_size,
 * body): the body of a C2SP tlog-witness add-checkpoint request for the
 * table's latest stored checkpoint: "old <size>", the consistency proof
 * from that size, an empty line and the checkpoint.  old_size NULL: the
 * size of the latest checkpoint of the table the witness (by its key
 * name) co-signed, stored with cosign(); 0 if none.
 */
Datum
witness_request(PG_FUNCTION_ARGS)
{
	const HaProtectedEntry *own;
	const HaProtectedEntry *tree;
	StoredCheckpoint latest;
	int64		old;
	HaTree	   *t;
	uint8		proof[HA_TREE_MAX_PROOF * HA_HASH_LEN];
	int			n;
	StringInfoData buf;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tbl and witness of hipaa_audit.witness_request must not be null")));
	tree = TreeOf(PG_GETARG_OID(0), "witness_request", &own);
	if (tree != own)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is a partition: its rows are in the Merkle tree of its partitioned table",
						HaRelDisplayName(PG_GETARG_OID(0))),
				 errhint("Submit the partitioned table's checkpoints.")));
	LoadCheckpoint(tree, 0, &latest);

	if (!PG_ARGISNULL(2))
	{
		old = PG_GETARG_INT64(2);
		if (old < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("old_size must not be negative")));
	}
	else
	{
		StoredCheckpoint cosigned;
		Oid			argtypes[2] = {UUIDOID, TEXTOID};
		Datum		qv[2];
		HaNoteBody	nb;
		char	   *body;

		memset(&cosigned, 0, sizeof(cosigned));
		cosigned.cxt = CurrentMemoryContext;
		qv[0] = UUIDPGetDatum((pg_uuid_t *) &tree->uuid);
		qv[1] = PG_GETARG_DATUM(1);
		(void) HaRunSql("SELECT c.note FROM hipaa_audit.checkpoints c "
						"JOIN hipaa_audit.cosignatures s ON s.checkpoint_id OPERATOR(pg_catalog.=) c.id "
						"WHERE c.table_uuid OPERATOR(pg_catalog.=) $1 AND s.signer OPERATOR(pg_catalog.=) $2 "
						"ORDER BY c.id DESC LIMIT 1",
						2, argtypes, qv, NULL, InvalidOid, HA_SQL_READ_ONLY, ReadNoteText, &cosigned);
		old = 0;
		if (cosigned.found && (body = HaNoteBodyOf(cosigned.note)) != NULL &&
			HaParseNoteBody(body, false, &nb) == NULL && nb.version == 2)
			old = nb.tree_size;
	}
	if (old > latest.nb.tree_size)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the witness has seen a tree of " INT64_FORMAT " leaves of table %s, more than its latest checkpoint has (" INT64_FORMAT ")",
						old, HaRelDisplayName(tree->relid), latest.nb.tree_size),
				 errdetail("Rows the witness saw are not in this database: it was restored to before a witnessed checkpoint, or its history was rewritten."),
				 errhint("See docs/merkle.md, \"Witnessing\": recover the lost rows, or register this table's log anew with the witness.")));
	t = OpenCheckedTree(tree, &latest);
	n = HaTreeProveConsistency(t, old, latest.nb.tree_size, proof);
	HaTreeClose(t);

	initStringInfo(&buf);
	appendStringInfo(&buf, "old " INT64_FORMAT "\n", old);
	AppendHashLines(&buf, proof, n);
	appendStringInfo(&buf, "\n%s", latest.note);

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(latest.id);
	values[1] = Int64GetDatum(old);
	values[2] = CStringGetTextDatum(buf.data);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* The ranges of a tree, in leaf order (verify_tree), read in batches. */
typedef struct RangeRow
{
	pg_uuid_t	part;
	int32		chain;
	int64		first_seq;
	int64		last_seq;
	int64		first_index;
} RangeRow;

#define RANGE_BATCH 4096

typedef struct RangeList
{
	RangeRow	rows[RANGE_BATCH];
	int			n;
} RangeList;

static void
ReadRange(void *arg, HeapTuple tup, TupleDesc desc)
{
	RangeList  *l = (RangeList *) arg;
	bool		isnull;
	RangeRow   *r;

	if (l->n == RANGE_BATCH)
		return;
	r = &l->rows[l->n++];
	r->part = *DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull));
	r->chain = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	r->first_seq = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	r->last_seq = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	r->first_index = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
}

/* The protected tables by identity, read once (verify_tree). */
typedef struct UuidRelid
{
	pg_uuid_t	uuid;
	Oid			relid;
} UuidRelid;

static Oid
RelidOfUuid(const UuidRelid *map, int n, const pg_uuid_t *uuid)
{
	for (int i = 0; i < n; i++)
		if (memcmp(map[i].uuid.data, uuid->data, UUID_LEN) == 0)
			return map[i].relid;
	return InvalidOid;
}

PG_FUNCTION_INFO_V1(verify_tree);

/*
 * verify_tree(tbl) -> (ok, tree_size, leaves_compared, problems,
 * first_problem): the stored tree of the table's latest stored checkpoint,
 * leaf by leaf against the rows (those still there), rebuilt in full from
 * its leaves: every stored tile, and the root the checkpoint signed.  For
 * an ordinary table the ranges must also end at the heads the note
 * records.  Memory is bounded: ranges are read in batches, tiles once.
 * (The stored checkpoint's own signature is verify_checkpoint()'s check.)
 */
Datum
verify_tree(PG_FUNCTION_ARGS)
{
	const HaProtectedEntry *own;
	const HaProtectedEntry *tree;
	StoredCheckpoint latest;
	HaTreeChecker *checker;
	RangeList  *ranges = palloc(sizeof(RangeList));
	Oid			argtypes[3] = {UUIDOID, INT8OID, INT8OID};
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	char	   *first = NULL;
	int64		compared = 0;
	int64		problems;
	int64		gaps = 0;
	char	   *gap = NULL;
	TupleDesc	desc;
	UuidRelid  *map;
	int			nmap = 0;
	List	   *relids;
	ListCell   *lc;
	int64		heads[HA_MAX_CHAINS];
	int64		from = 0;
	pg_uuid_t	gone;
	bool		have_gone = false;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.verify_tree must not be null")));
	tree = TreeOf(PG_GETARG_OID(0), "verify_tree", &own);
	if (tree != own)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is a partition: its rows are in the Merkle tree of its partitioned table",
						HaRelDisplayName(PG_GETARG_OID(0))),
				 errhint("Verify the partitioned table's tree.")));
	LoadCheckpoint(tree, 0, &latest);

	relids = HaProtectedRelids();
	map = palloc(sizeof(UuidRelid) * Max(list_length(relids), 1));
	foreach(lc, relids)
	{
		const HaProtectedEntry *e = HaLookupProtected(lfirst_oid(lc));

		if (e == NULL)
			continue;
		map[nmap].uuid = e->uuid;
		map[nmap].relid = e->relid;
		nmap++;
	}
	memset(heads, 0, sizeof(heads));

	checker = HaTreeCheckBegin(&tree->uuid, latest.nb.tree_size);
	for (;;)
	{
		ranges->n = 0;
		values[0] = UUIDPGetDatum((pg_uuid_t *) &tree->uuid);
		values[1] = Int64GetDatum(from);
		values[2] = Int64GetDatum(latest.nb.tree_size);
		(void) HaRunSql("SELECT part_uuid, chain, first_seq, last_seq, first_index "
						"FROM hipaa_audit.merkle_ranges WHERE table_uuid OPERATOR(pg_catalog.=) $1 "
						"AND first_index OPERATOR(pg_catalog.>=) $2 AND first_index OPERATOR(pg_catalog.<) $3 "
						"ORDER BY first_index LIMIT 4096",
						3, argtypes, values, NULL, InvalidOid, HA_SQL_READ_ONLY, ReadRange, ranges);
		if (ranges->n == 0)
			break;
		for (int i = 0; i < ranges->n; i++)
		{
			RangeRow   *r = &ranges->rows[i];
			Oid			relid;
			Relation	rel = NULL;

			CHECK_FOR_INTERRUPTS();
			from = r->first_index + 1;
			if (r->first_index != HaTreeCheckNext(checker))
			{
				if (gaps++ == 0)
					gap = psprintf("the ranges do not account for leaves " INT64_FORMAT " to " INT64_FORMAT " in order",
								   HaTreeCheckNext(checker), r->first_index);
				if (r->first_index < HaTreeCheckNext(checker))
					continue;
				HaTreeCheckSkip(checker, r->first_index);
			}
			if (memcmp(r->part.data, tree->uuid.data, UUID_LEN) == 0 &&
				r->chain >= 0 && r->chain < HA_MAX_CHAINS)
				heads[r->chain] = Max(heads[r->chain], r->last_seq);
			relid = RelidOfUuid(map, nmap, &r->part);
			if (OidIsValid(relid))
				rel = try_table_open(relid, AccessShareLock);
			else if (!have_gone || memcmp(gone.data, r->part.data, UUID_LEN) != 0)
			{
				/* Leaves of a table no longer here: it must be on record as retired. */
				Oid			rtypes[1] = {UUIDOID};
				Datum		rvalues[1];

				rvalues[0] = UUIDPGetDatum(&r->part);
				gone = r->part;
				have_gone = true;
				if (HaRunAsExtensionOwnerInt8("SELECT count(*) FROM hipaa_audit.retired_tables "
											  "WHERE table_uuid OPERATOR(pg_catalog.=) $1",
											  1, rtypes, rvalues) == 0 && gaps++ == 0)
					gap = psprintf("leaves from " INT64_FORMAT " are rows of table identity %s, which is neither protected here nor recorded as retired",
								   r->first_index,
								   DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&r->part))));
			}
			HaTreeCheckChain(checker, rel, r->chain, r->first_seq, r->last_seq);
			if (rel != NULL)
				table_close(rel, AccessShareLock);
		}
		if (ranges->n < RANGE_BATCH)
			break;
	}
	if (HaTreeCheckNext(checker) < latest.nb.tree_size && gaps++ == 0)
		gap = psprintf("the ranges end at leaf " INT64_FORMAT " of " INT64_FORMAT,
					   HaTreeCheckNext(checker), latest.nb.tree_size);

	/*
	 * An ordinary table: the ranges end where the note's chain lines say
	 * (a chain purged before the tree existed may have no range at all).
	 */
	if (!tree->partitioned)
		for (int i = 0; i < latest.nb.nchains; i++)
		{
			const HaNoteChain *nc = &latest.nb.chain[i];

			if (heads[nc->chain] != 0 && heads[nc->chain] != nc->last && gaps++ == 0)
				gap = psprintf("the ranges of chain %d end at position " INT64_FORMAT ", the checkpoint records " INT64_FORMAT,
							   nc->chain, heads[nc->chain], nc->last);
		}
	problems = HaTreeCheckEnd(checker, latest.nb.root, &first, &compared) + gaps;
	if (gap != NULL)
		first = gap;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = BoolGetDatum(problems == 0);
	values[1] = Int64GetDatum(latest.nb.tree_size);
	values[2] = Int64GetDatum(compared);
	values[3] = Int64GetDatum(problems);
	values[4] = first ? CStringGetTextDatum(first) : (Datum) 0;
	nulls[4] = (first == NULL);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
