/*-------------------------------------------------------------------------
 *
 * checkpoint.c
 *	  Signed checkpoints: the heads of a table's chains, signed with an
 *	  Ed25519 key the database does not hold, in the C2SP signed-note format.
 *	  Layer api/ (docs/architecture.md).
 *
 * Terms: a "checkpoint" pins, for one table, every chain's last position and
 * hash at one moment; its "note" is the signed text (docs/checkpoints.md).
 * The private key lives in the file named by hipaa_audit.signing_key_file,
 * outside the data directory, readable by the server's account only; it is
 * read for each signature and wiped right after.  Checkpoints are stored,
 * hash-chained, in hipaa_audit.checkpoints, which only this file writes.
 *
 * A note is verified against a verifier key given by the caller, never
 * against anything stored in the database.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "storage/lmgr.h"
#include "storage/proc.h"

#include <sys/stat.h>

#include "access/detoast.h"
#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/base64.h"
#include "common/int.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"



PG_FUNCTION_INFO_V1(verifier_key);

Datum
verifier_key(PG_FUNCTION_ARGS)
{
	uint8		priv[HA_ED25519_KEY_LEN];
	uint8		pub[HA_ED25519_KEY_LEN];

	(void) fcinfo;

	HaCheckKeyName(ha_signer_name);
	if (HaUseSigningAgent())
		HaAgentKey(ha_signer_name, pub);
	else
		HaLoadSigningKey(priv, pub);
	HaSecureZero(priv, sizeof(priv));
	PG_RETURN_TEXT_P(cstring_to_text(HaVerifierKey(ha_signer_name, pub)));
}

/*
 * A table whose rows a tree takes in one checkpoint: the table itself, or
 * each partition of a partitioned table (in order of identity), with the
 * chain heads its note records.
 */
typedef struct TreePart
{
	Oid			relid;
	pg_uuid_t	uuid;
	int32		chains;
	int64		head[HA_MAX_CHAINS];
} TreePart;

/* What one checkpoint appended to a table's tree. */
typedef struct TreeRange
{
	pg_uuid_t	part;
	int32		chain;
	int64		first_seq;
	int64		last_seq;
	int64		first_index;
} TreeRange;

typedef struct TreeGrowth
{
	bool		tree;			/* a tlog-checkpoint (version 2) */
	int64		size;
	uint8		root[HA_HASH_LEN];
	List	   *ranges;			/* of TreeRange */
	List	   *parts;			/* of TreePart, partitioned tables */
} TreeGrowth;

/*
 * The lines every checkpoint starts with: origin (with a tree: its size
 * and root, a tlog-checkpoint's first three lines), kind, table, database,
 * time, the retention in force (as a purge receipt states it), chains.
 */
static void
AppendHeader(StringInfo buf, Oid relid, const HaProtectedEntry *entry,
			 const TreeGrowth *g)
{
	Interval	retention;

	appendStringInfo(buf, "hipaa_audit/" UINT64_FORMAT "/%s\n", GetSystemIdentifier(),
					 DatumGetCString(DirectFunctionCall1(uuid_out,
														 UUIDPGetDatum((pg_uuid_t *) &entry->uuid))));
	if (g->tree)
		appendStringInfo(buf, INT64_FORMAT "\n%s\ncheckpoint v2\n", g->size,
						 HaBase64(g->root, HA_HASH_LEN));
	else
		appendStringInfo(buf, "checkpoint v1\n");
	appendStringInfo(buf, "table %s\n", HaNoteName(HaRelDisplayName(relid)));
	appendStringInfo(buf, "database %s\n", HaNoteName(get_database_name(MyDatabaseId)));
	appendStringInfo(buf, "time %s\n",
					 DatumGetCString(DirectFunctionCall1(timestamptz_out,
														 TimestampTzGetDatum(GetCurrentTimestamp()))));
	if (HaRegistryRetention(relid, &retention, NULL))
		appendStringInfo(buf, "retention %s\n",
						 DatumGetCString(DirectFunctionCall1(interval_out,
															 IntervalPGetDatum(&retention))));
	appendStringInfo(buf, "chains %d\n", entry->chains);
}

/*
 * The heads of every chain of rel into part->head (0: no row yet), as the
 * chain lines record them; the chain lines and the rows they count.
 */
static char *
ReadHeads(Relation rel, const HaProtectedEntry *entry, TreePart *part, int64 *rows_out)
{
	int64		rows = 0;
	StringInfoData chains;
	HaAnchor   *anchors = NULL;

	initStringInfo(&chains);
	part->relid = RelationGetRelid(rel);
	part->uuid = entry->uuid;
	part->chains = entry->chains;
	for (int32 c = 0; c < entry->chains; c++)
	{
		int64		seq = 0;
		uint8		hash[HA_HASH_LEN];

		/*
		 * A chain purged to its end keeps its head: the purge's anchor, read
		 * after the miss (a purge's deletes and anchors commit together).
		 */
		if (!(HaChainFindRow(rel, c, -1, &seq, hash, NULL) && seq > 0))
		{
			if (anchors == NULL)
				anchors = HaLoadAnchors(&entry->uuid, NULL);
			seq = anchors[c].seq;
			memcpy(hash, anchors[c].hash, HA_HASH_LEN);
		}
		part->head[c] = seq;
		if (seq > 0)
		{
			appendStringInfo(&chains, "chain %d " INT64_FORMAT " %s\n", c, seq,
							 HaHex(hash, HA_HASH_LEN));
			rows += seq;
		}
	}
	*rows_out = rows;
	return chains.data;
}

/* Row callback: (chain, last position appended) into an int64 array. */
static void
ReadTreeHead(void *arg, HeapTuple tup, TupleDesc desc)
{
	int64	   *from = (int64 *) arg;
	bool		isnull;
	int32		c = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	Datum		d = SPI_getbinval(tup, desc, 2, &isnull);

	if (!isnull && c >= 0 && c < HA_MAX_CHAINS)
		from[c] = DatumGetInt64(d);
}

/*
 * Per chain of a table whose rows a tree takes, the last position the
 * tree holds.  A chain the tree has not taken yet starts at its first
 * row: position 1 (from 0), or after a purge made before the tree existed
 * (a table upgraded from 0.2.0): from its purge anchor.
 */
static void
TreeCoverage(const pg_uuid_t *part, int32 chains, int64 *from)
{
	Oid			argtypes[2] = {UUIDOID, INT4OID};
	Datum		values[2];
	HaAnchor   *anchors = NULL;

	for (int c = 0; c < chains; c++)
		from[c] = -1;
	values[0] = UUIDPGetDatum((pg_uuid_t *) part);
	values[1] = Int32GetDatum(chains);
	(void) HaRunSql("SELECT c, (SELECT r.last_seq FROM hipaa_audit.merkle_ranges r "
					"WHERE r.part_uuid OPERATOR(pg_catalog.=) $1 AND r.chain OPERATOR(pg_catalog.=) c "
					"ORDER BY r.last_seq DESC LIMIT 1) "
					"FROM pg_catalog.generate_series(0, $2 OPERATOR(pg_catalog.-) 1) AS g(c)",
					2, argtypes, values, NULL, InvalidOid, 0, ReadTreeHead, from);
	for (int c = 0; c < chains; c++)
	{
		if (from[c] >= 0)
			continue;
		if (anchors == NULL)
			anchors = HaLoadAnchors(part, NULL);
		from[c] = anchors[c].seq;
	}
}

/*
 * Grow the tree of table tree (its registry entry) by the rows of parts
 * committed since the last checkpoint that grew it: part by part, chain
 * by chain, position by position (docs/merkle.md).  The caller holds the
 * tree lock and read the heads after taking it.
 */
static void
GrowTree(const HaProtectedEntry *tree, TreePart *parts, int nparts, TreeGrowth *g)
{
	Oid			argtypes[2] = {UUIDOID, INT4OID};
	Datum		values[2];
	int64		size;
	HaTree	   *t;
	char	   *last;
	bool		found;

	/* Where the tree ends, by its ranges; and the root last signed for it. */
	values[0] = UUIDPGetDatum((pg_uuid_t *) &tree->uuid);
	size = HaRunAsExtensionOwnerInt8("SELECT first_index OPERATOR(pg_catalog.+) "
									 "(last_seq OPERATOR(pg_catalog.-) first_seq) OPERATOR(pg_catalog.+) 1 "
									 "FROM hipaa_audit.merkle_ranges WHERE table_uuid OPERATOR(pg_catalog.=) $1 "
									 "ORDER BY first_index DESC LIMIT 1",
									 1, argtypes, values);
	last = HaQueryText("SELECT note FROM hipaa_audit.checkpoints "
					   "WHERE table_uuid OPERATOR(pg_catalog.=) $1 ORDER BY id DESC LIMIT 1",
					   1, argtypes, values, 0, &found);
	t = HaTreeOpen(&tree->uuid, size);
	{
		HaNoteBody	nb;
		char	   *body = last ? HaNoteBodyOf(last) : NULL;
		bool		parsed = body != NULL && HaParseNoteBody(body, false, &nb) == NULL;
		bool		v2 = parsed && nb.version == 2;
		uint8		root[HA_HASH_LEN];

		/*
		 * No tree yet: no checkpoint, or only ones taken before 0.3.0, or an
		 * empty tree.  Otherwise the tree the last checkpoint signed must be
		 * the stored one: ranges or tiles gone behind a signed tree were
		 * removed, which is never "no tree yet".
		 */
		if (!(size == 0 && (!found || (parsed && !v2) || (v2 && nb.tree_size == 0))))
		{
			if (!v2 || nb.tree_size != size)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("the last stored checkpoint of table %s does not record its Merkle tree of " INT64_FORMAT " leaves",
								HaRelDisplayName(tree->relid), size),
						 errhint("Stored checkpoints or rows of hipaa_audit.merkle_ranges were removed or changed; run hipaa_audit.verify_checkpoint_chain().")));
			HaTreeRoot(t, size, root);
			if (memcmp(root, nb.root, HA_HASH_LEN) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("the stored Merkle tree of table %s does not have the root its last checkpoint signed",
								HaRelDisplayName(tree->relid)),
						 errhint("Rows of hipaa_audit.merkle_tiles were changed; restore them from a backup.")));
		}
	}

	for (int p = 0; p < nparts; p++)
	{
		TreePart   *part = &parts[p];
		int64		from[HA_MAX_CHAINS];
		Relation	rel;

		TreeCoverage(&part->uuid, part->chains, from);
		rel = table_open(part->relid, AccessShareLock);
		for (int32 c = 0; c < part->chains; c++)
		{
			int64		n;

			if (part->head[c] < from[c])
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("chain %d of table %s ends at position " INT64_FORMAT ", before position " INT64_FORMAT " which its Merkle tree holds",
								c, HaRelDisplayName(part->relid), part->head[c], from[c]),
						 errdetail("Rows were removed from the end of the chain."),
						 errhint("Run hipaa_audit.verify() on the table; no checkpoint is taken over missing rows.")));
			n = HaTreeAppendChain(t, rel, c, from[c], part->head[c]);
			if (n > 0)
			{
				TreeRange  *r = palloc(sizeof(TreeRange));

				r->part = part->uuid;
				r->chain = c;
				r->first_seq = from[c] + 1;
				r->last_seq = part->head[c];
				r->first_index = HaTreeSize(t) - n;
				g->ranges = lappend(g->ranges, r);
			}
		}
		table_close(rel, AccessShareLock);
	}
	HaTreeStore(t);
	g->size = HaTreeSize(t);
	HaTreeRoot(t, g->size, g->root);
	HaTreeClose(t);
}

/* Store the ranges a checkpoint appended, under its id. */
static void
StoreRanges(const HaProtectedEntry *tree, int64 checkpoint_id, List *ranges)
{
	int			n = list_length(ranges);
	Datum	   *parts;
	Datum	   *chains;
	Datum	   *firsts;
	Datum	   *lasts;
	Datum	   *indexes;
	Oid			argtypes[7] = {UUIDOID, INT8OID, UUIDARRAYOID, INT4ARRAYOID,
	INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	Datum		values[7];
	int			i = 0;
	ListCell   *lc;

	if (n == 0)
		return;
	parts = palloc(n * sizeof(Datum));
	chains = palloc(n * sizeof(Datum));
	firsts = palloc(n * sizeof(Datum));
	lasts = palloc(n * sizeof(Datum));
	indexes = palloc(n * sizeof(Datum));
	foreach(lc, ranges)
	{
		TreeRange  *r = lfirst(lc);

		parts[i] = UUIDPGetDatum(&r->part);
		chains[i] = Int32GetDatum(r->chain);
		firsts[i] = Int64GetDatum(r->first_seq);
		lasts[i] = Int64GetDatum(r->last_seq);
		indexes[i] = Int64GetDatum(r->first_index);
		i++;
	}
	values[0] = UUIDPGetDatum((pg_uuid_t *) &tree->uuid);
	values[1] = Int64GetDatum(checkpoint_id);
	values[2] = PointerGetDatum(construct_array(parts, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	values[3] = PointerGetDatum(construct_array(chains, n, INT4OID, 4, true, TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_array(firsts, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[5] = PointerGetDatum(construct_array(lasts, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[6] = PointerGetDatum(construct_array(indexes, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.merkle_ranges "
						  "(table_uuid, checkpoint_id, part_uuid, chain, first_seq, last_seq, first_index) "
						  "SELECT $1, $2, p, c, f, l, i FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), "
						  "pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)) AS u(p, c, f, l, i)",
						  7, argtypes, values);
}

static char *
BuildBody(Relation rel, const HaProtectedEntry *entry, int64 *rows_out,
		  TreePart *part, TreeGrowth *g)
{
	StringInfoData buf;
	char	   *chains = ReadHeads(rel, entry, part, rows_out);

	if (g->tree)
		GrowTree(entry, part, 1, g);
	initStringInfo(&buf);
	AppendHeader(&buf, RelationGetRelid(rel), entry, g);
	appendStringInfo(&buf, "rows " INT64_FORMAT "\n", *rows_out);
	appendStringInfoString(&buf, chains);
	return buf.data;
}

typedef struct BoundPartition
{
	char	   *line;			/* "partition <identity> <hash>\n" */
	TreePart	part;
} BoundPartition;

static int
CompareBound(const ListCell *a, const ListCell *b)
{
	return strcmp(((BoundPartition *) lfirst(a))->line, ((BoundPartition *) lfirst(b))->line);
}

static char *TakeCheckpointOf(Oid relid, int64 *rows, TreePart *part);

/*
 * A partitioned table's checkpoint: a checkpoint of every partition,
 * stored as any other, and the partitioned table's own note binding them,
 * one line per partition in order of identity: its identity and the
 * SHA-256 of its stored note (docs/partitions.md).  Its tree takes the
 * partitions' rows in that order.
 */
static char *
BuildPartitionedBody(Oid relid, const HaProtectedEntry *entry, TreeGrowth *g)
{
	StringInfoData buf;
	StringInfoData lines;
	List	   *bound = NIL;
	ListCell   *lc;
	int64		rows = 0;
	TreePart   *parts;
	int			nparts = 0;

	foreach(lc, HaRegisteredPartitions(relid))
	{
		Oid			part = lfirst_oid(lc);
		const HaProtectedEntry *pe;
		int64		n = 0;
		char	   *note;
		uint8		hash[HA_HASH_LEN];
		BoundPartition *bp = palloc0(sizeof(BoundPartition));

		LockRelationOid(part, AccessShareLock);
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(part)) ||
			(pe = HaLookupProtected(part)) == NULL)
			continue;
		note = TakeCheckpointOf(part, &n, &bp->part);
		rows += n;
		HaSha256Once(note, strlen(note), hash);
		bp->line = psprintf("partition %s %s\n",
							DatumGetCString(DirectFunctionCall1(uuid_out,
																UUIDPGetDatum((pg_uuid_t *) &pe->uuid))),
							HaHex(hash, HA_HASH_LEN));
		bound = lappend(bound, bp);
	}
	list_sort(bound, CompareBound);
	initStringInfo(&lines);
	parts = palloc0(Max(list_length(bound), 1) * sizeof(TreePart));
	foreach(lc, bound)
	{
		BoundPartition *bp = lfirst(lc);

		appendStringInfoString(&lines, bp->line);
		parts[nparts++] = bp->part;
	}
	if (g->tree)
		GrowTree(entry, parts, nparts, g);

	initStringInfo(&buf);
	AppendHeader(&buf, relid, entry, g);
	appendStringInfo(&buf, "rows " INT64_FORMAT "\n", rows);
	appendStringInfoString(&buf, lines.data);
	return buf.data;
}


/* Sign, store and return a checkpoint of one protected table. */
static char *
TakeCheckpoint(Oid relid)
{
	int64		rows;
	TreePart	part;

	HaCheckRelationExists(relid);
	(void) HaRequireProtected(relid, "Only tables registered with hipaa_audit.protect() have chains to checkpoint.");
	HaRequireOwnerOrAdmin(relid, "checkpoint");
	/* A missing key file is reported before the tree grows. */
	if (!HaUseSigningAgent())
		HaCheckSigningKey();
	return TakeCheckpointOf(relid, &rows, &part);
}

/*
 * The caller checked the right: the table's, or its partitioned table's.
 * A table that is not a partition grows its Merkle tree (from 0.3.0's
 * schema on); a partition's rows are in its partitioned table's tree, and
 * its own note records its chain heads only.
 */
static char *
TakeCheckpointOf(Oid relid, int64 *rows, TreePart *part)
{
	const HaProtectedEntry *entry = HaRequireProtected(relid, NULL);
	Relation	rel;
	char	   *body;
	char	   *note;
	int			nestlevel;
	Oid			argtypes[4] = {UUIDOID, REGCLASSOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[4];
	TreeGrowth	g;
	int64		id;

	*rows = 0;
	memset(&g, 0, sizeof(g));
	g.tree = !OidIsValid(entry->parent) && HaSchemaHasTree();
	if (g.tree)
	{
		PreventCommandDuringRecovery("hipaa_audit.checkpoint()");
		/* A transaction snapshot could miss a checkpoint committed meanwhile. */
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
					 errmsg("hipaa_audit.checkpoint() must run at READ COMMITTED isolation"),
					 errdetail("A checkpoint grows the table's Merkle tree from the last one stored.")));
		/* One checkpoint of a table at a time; heads are read after it. */
		HaLockTree(relid);
	}
	HaPinDateSettings(&nestlevel);
	if (entry->partitioned)
		body = BuildPartitionedBody(relid, entry, &g);
	else
	{
		rel = table_open(relid, AccessShareLock);
		body = BuildBody(rel, entry, rows, part, &g);
		table_close(rel, AccessShareLock);
	}
	AtEOXact_GUC(true, nestlevel);

	note = HaSignNote(body);

	/* Stored insert-only and hash-chained; one writer at a time. */
	HaRunAsExtensionOwner("LOCK TABLE hipaa_audit.checkpoints IN EXCLUSIVE MODE",
						  0, NULL, NULL);
	values[0] = UUIDPGetDatum((pg_uuid_t *) &entry->uuid);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[3] = CStringGetTextDatum(note);
	id = HaRunAsExtensionOwnerInt8("INSERT INTO hipaa_audit.checkpoints "
								   "(table_uuid, relid, created_at, note, prev_hash, hash) "
								   "SELECT $1, $2, $3, $4, p.h, pg_catalog.sha256("
								   "'\\x68697061615f61756469742f636865636b706f696e742f763100'::pg_catalog.bytea "
								   "OPERATOR(pg_catalog.||) p.h OPERATOR(pg_catalog.||) pg_catalog.convert_to($4, 'UTF8')) "
								   "FROM (SELECT COALESCE((SELECT hash FROM hipaa_audit.checkpoints "
								   "ORDER BY id DESC LIMIT 1), "
								   "'\\x0000000000000000000000000000000000000000000000000000000000000000'::pg_catalog.bytea) AS h) p "
								   "RETURNING id",
								   4, argtypes, values);
	if (g.tree)
		StoreRanges(entry, id, g.ranges);
	return note;
}

/*
 * The last position per chain of table part that its tree holds (the
 * rows a removal may take, after HaCheckpointBeforeRemoval: one that
 * committed after that checkpoint read its heads is not a leaf yet and
 * stays).  False when the schema has no tree.
 */
bool
HaTreeCoverage(Oid part, int64 *upto)
{
	const HaProtectedEntry *entry = HaRequireProtected(part, NULL);
	pg_uuid_t	uuid = entry->uuid;

	if (!HaSchemaHasTree())
		return false;
	TreeCoverage(&uuid, entry->chains, upto);
	return true;
}

/*
 * Before rows of table part are removed lawfully (a purge, or the drop or
 * detach of an expired partition): unless its tree already holds every
 * row of it, a checkpoint of the table whose tree takes them (part
 * itself, or its partitioned table), so that every row removed is a leaf
 * and proofs given before the removal stay valid after it.
 */
void
HaCheckpointBeforeRemoval(Oid tree_relid, Oid part)
{
	/* Copied: a cache entry may be rebuilt under the SPI and locks below. */
	const HaProtectedEntry *entry = HaRequireProtected(part, NULL);
	pg_uuid_t	uuid = entry->uuid;
	int32		chains = entry->chains;
	int64		from[HA_MAX_CHAINS];
	bool		covered = true;
	Relation	rel;
	int64		rows;
	TreePart	tp;

	if (!HaSchemaHasTree())
		return;
	TreeCoverage(&uuid, chains, from);
	rel = table_open(part, AccessShareLock);
	for (int32 c = 0; c < chains && covered; c++)
	{
		int64		seq = 0;
		uint8		hash[HA_HASH_LEN];

		if (HaChainFindRow(rel, c, -1, &seq, hash, NULL) && seq > from[c])
			covered = false;
	}
	table_close(rel, AccessShareLock);
	if (!covered)
		(void) TakeCheckpointOf(tree_relid, &rows, &tp);
}

PG_FUNCTION_INFO_V1(checkpoint);

Datum
checkpoint(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.checkpoint must not be null")));
	PG_RETURN_TEXT_P(cstring_to_text(TakeCheckpoint(PG_GETARG_OID(0))));
}

PG_FUNCTION_INFO_V1(checkpoint_all);

/*
 * checkpoint_all() -> setof (tbl, note): every protected table, by name.
 */
Datum
checkpoint_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *relids = HaProtectedRelids();
	List	   *sorted = NIL;
	ListCell   *lc;

	HaRequireAdmin("checkpoint every protected table", "Only members of %s may; table owners can checkpoint their own tables.");
	InitMaterializedSRF(fcinfo, 0);

	/*
	 * By name, so that the order does not depend on OIDs.  A partition is
	 * checkpointed by its partitioned table's checkpoint.
	 */
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		const HaProtectedEntry *entry = HaLookupProtected(relid);
		ListCell   *pos;
		int			i = 0;

		if (entry == NULL || OidIsValid(entry->parent) ||
			!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			continue;

		foreach(pos, sorted)
		{
			if (strcmp(HaRelDisplayName(relid), HaRelDisplayName(lfirst_oid(pos))) < 0)
				break;
			i++;
		}
		sorted = list_insert_nth_oid(sorted, i, relid);
	}
	foreach(lc, sorted)
	{
		Oid			relid = lfirst_oid(lc);
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = ObjectIdGetDatum(relid);
		values[1] = CStringGetTextDatum(TakeCheckpoint(relid));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Co-signing: trusted keys and their signatures on stored checkpoints
 * ----------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(trust_key);

/*
 * trust_key(verifier_key): register an outside signer (a compliance
 * officer's key, a second site) whose co-signatures cosign() accepts.
 */
Datum
trust_key(PG_FUNCTION_ARGS)
{
	char	   *key;
	char	   *name;
	uint8		id[4];
	uint8		pub[HA_ED25519_KEY_LEN];
	uint8		alg;
	HaNoteCheck	nc;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, NAMEOID};
	Datum		values[3];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.trust_key must not be null")));
	HaRequireAdmin("register a trusted key", NULL);
	HaCheckKeyLength(HaTextLength(PG_GETARG_DATUM(0)));
	key = HaTrimKey(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	memset(&nc, 0, sizeof(nc));
	if (!HaParseVerifierKey(key, &name, id, pub, &alg, &nc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid verifier key"),
				 errdetail("%s", nc.detail),
				 errhint("A verifier key is <name>+<8 hex key ID>+<base64(0x01 || Ed25519 public key)>, or 0x04 for a witness's cosignature/v1 key.")));
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(key);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.trusted_keys (name, verifier_key, added_at, added_by) "
						  "VALUES ($1, $2, pg_catalog.clock_timestamp(), $3)",
						  3, argtypes, values);
	PG_RETURN_VOID();
}

/* A trusted key of the signer's name, checked against one co-signature. */
typedef struct TrustedKeyCheck
{
	const char *name;
	const uint8 *sigblob;		/* key ID || [timestamp ||] signature */
	int			siglen;
	const char *body;
	bool		verified;
} TrustedKeyCheck;

static void
CheckTrustedKey(void *arg, HeapTuple tup, TupleDesc desc)
{
	TrustedKeyCheck *kc = (TrustedKeyCheck *) arg;
	char	   *kname;
	uint8		id[4];
	uint8		pub[HA_ED25519_KEY_LEN];
	uint8		alg;
	HaNoteCheck	nc;
	char	   *key;

	CHECK_FOR_INTERRUPTS();
	if (kc->verified)
		return;
	key = SPI_getvalue(tup, desc, 1);
	memset(&nc, 0, sizeof(nc));
	if (key != NULL && HaParseVerifierKey(key, &kname, id, pub, &alg, &nc) &&
		memcmp(id, kc->sigblob, 4) == 0)
		kc->verified = HaVerifyNoteSignatureBlob(kc->body, kc->sigblob, kc->siglen, pub, alg);
}

PG_FUNCTION_INFO_V1(cosign);

/*
 * cosign(checkpoint_id, signature_line) -> the note with every signature.
 * The line must verify against a registered trusted key of its name.
 */
Datum
cosign(PG_FUNCTION_ARGS)
{
	int64		cpid;
	char	   *line;
	char	   *note;
	char	   *body;
	char	   *name;
	const char *p;
	const char *sp;
	uint8		sigblob[4 + 8 + HA_ED25519_SIG_LEN + 4];
	int			n;
	bool		verified = false;
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char	   *result;
	bool		found;
	TrustedKeyCheck keys;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of hipaa_audit.cosign must not be null")));
	HaRequireAdmin("add a co-signature", NULL);
	cpid = PG_GETARG_INT64(0);
	if (HaTextLength(PG_GETARG_DATUM(1)) > HA_KEY_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("signature line is too long"),
				 errdetail("At most %d bytes are accepted.", HA_KEY_MAX_LEN),
				 errhint("A signature line is an em dash (U+2014), a space, the signer's name, a space and base64 of key ID and signature.")));
	line = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strlen(line) > 0 && line[strlen(line) - 1] != '\n')
		line = psprintf("%s\n", line);

	/* The stored note (read as the extension owner: auditors may not write). */
	values[0] = Int64GetDatum(cpid);
	note = HaQueryText("SELECT note FROM hipaa_audit.checkpoints WHERE id OPERATOR(pg_catalog.=) $1",
					   1, argtypes, values, HA_SQL_READ_ONLY, &found);
	if (!found || note == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("checkpoint " INT64_FORMAT " does not exist", cpid)));
	body = HaNoteBodyOf(note);
	if (body == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored checkpoint " INT64_FORMAT " has no blank line before its signature", cpid)));
	/* Room for one more line in the note checkpoint_note() returns. */
	if (HaRunAsExtensionOwnerInt8("SELECT count(*) FROM hipaa_audit.cosignatures "
								  "WHERE checkpoint_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values) + 2 > HA_NOTE_MAX_SIGNATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("checkpoint " INT64_FORMAT " has too many co-signatures", cpid),
				 errdetail("A note carries at most %d signature lines.", HA_NOTE_MAX_SIGNATURES)));

	/* "— <name> <base64>\n" */
	if (strncmp(line, HA_SIG_DASH, strlen(HA_SIG_DASH)) != 0 || strchr(line, '\r') != NULL ||
		strchr(line, '\n') != line + strlen(line) - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signature line"),
				 errdetail("A signature line is an em dash (U+2014), a space, the signer's name, a space and base64 of key ID and signature.")));
	p = line + strlen(HA_SIG_DASH);
	sp = strchr(p, ' ');
	if (sp == NULL || sp == p)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signature line"),
				 errdetail("It has no name and signature.")));
	name = pnstrdup(p, sp - p);
	n = HaUnbase64(sp + 1, strlen(sp + 1) - 1, sigblob, sizeof(sigblob));
	if (n != 4 + HA_ED25519_SIG_LEN && n != 4 + 8 + HA_ED25519_SIG_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signature line"),
				 errdetail("The signature is not base64 of a 4-byte key ID and a 64-byte Ed25519 signature (with an 8-byte timestamp between them for a witness's cosignature).")));

	/* Against every registered key of that name with that key ID. */
	values[0] = CStringGetTextDatum(name);
	keys.name = name;
	keys.sigblob = sigblob;
	keys.siglen = n;
	keys.body = body;
	keys.verified = false;
	(void) HaRunSql("SELECT verifier_key FROM hipaa_audit.trusted_keys "
					"WHERE name OPERATOR(pg_catalog.=) $1",
					1, &argtypes[1], values, NULL, InvalidOid, HA_SQL_READ_ONLY,
					CheckTrustedKey, &keys);
	verified = keys.verified;
	if (!verified)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the co-signature by \"%s\" does not verify against a trusted key", name),
				 errhint("Register the signer's verifier key with hipaa_audit.trust_key() first.")));

	values[0] = Int64GetDatum(cpid);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(line);
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.cosignatures (checkpoint_id, signer, line, added_at) "
						  "VALUES ($1, $2, $3, pg_catalog.clock_timestamp())",
						  3, argtypes, values);

	/* The note with every signature line it has now (a fresh snapshot). */
	values[0] = Int64GetDatum(cpid);
	result = HaQueryText("SELECT hipaa_audit.checkpoint_note($1)",
						 1, argtypes, values, 0, &found);
	if (result == NULL)
		elog(ERROR, "could not read the co-signed note");
	PG_RETURN_TEXT_P(cstring_to_text(result));
}


typedef struct StoredHeadsCheck
{
	const HaProtectedEntry *entry;
	Relation	rel;
	HaAnchor   *anchors;
	int64		checked;
	void		(*report) (void *arg, int32 chain, int64 seq,
						   const char *kind, const char *detail);
	void	   *arg;
} StoredHeadsCheck;

static void
CheckStoredHeads(void *arg, int64 id, const HaNoteBody *nb, const char *problem)
{
	StoredHeadsCheck *sc = (StoredHeadsCheck *) arg;

	sc->checked++;
	if (problem != NULL)
	{
		sc->report(sc->arg, -1, -1, "checkpoint_malformed",
				   psprintf("stored checkpoint " INT64_FORMAT " cannot be read: %s", id, problem));
		return;
	}
	for (int i = 0; i < nb->npartitions; i++)
	{
		char	   *detail;
		const char *kind = HaCheckPartitionLine(&nb->partitions[i], &detail);

		if (kind != NULL)
			sc->report(sc->arg, -1, -1, kind,
					   psprintf("stored checkpoint " INT64_FORMAT ": %s", id, detail));
	}
	for (int i = 0; i < nb->nchains; i++)
	{
		int32		chain = nb->chain[i].chain;
		int64		seq = nb->chain[i].last;
		const uint8 *want = nb->chain[i].hash;
		uint8		have[HA_HASH_LEN];

		CHECK_FOR_INTERRUPTS();
		if (HaChainFindRow(sc->rel, chain, seq, NULL, have, NULL))
		{
			if (memcmp(want, have, HA_HASH_LEN) != 0)
				sc->report(sc->arg, chain, seq, "checkpoint_mismatch",
						   "a stored checkpoint recorded a different row at this position (history rewritten?)");
			continue;
		}
		/* Purged lawfully?  Anchors read after the miss, again if stale. */
		if (sc->anchors == NULL || seq > sc->anchors[chain].seq)
			sc->anchors = HaLoadAnchors(&sc->entry->uuid, NULL);
		if (seq > sc->anchors[chain].seq)
			sc->report(sc->arg, chain, seq, "checkpoint_rows_missing",
					   "a stored checkpoint recorded a row at this position; it is gone (rows deleted from the end?)");
		else if (seq == sc->anchors[chain].seq &&
				 memcmp(want, sc->anchors[chain].hash, HA_HASH_LEN) != 0)
			sc->report(sc->arg, chain, seq, "checkpoint_mismatch",
					   "a stored checkpoint recorded a different row at this position than the purge receipt that removed it");
	}
}

/*
 * For verify(): every stored checkpoint of the table must still find its
 * recorded heads.  Reports through the callback; returns how many checked.
 */
int64
HaCheckStoredCheckpoints(Oid relid, void (*report) (void *arg, int32 chain, int64 seq,
													const char *kind, const char *detail),
						 void *arg)
{
	StoredHeadsCheck sc;

	memset(&sc, 0, sizeof(sc));
	sc.entry = HaLookupProtected(relid);
	if (sc.entry == NULL)
		return 0;
	sc.report = report;
	sc.arg = arg;
	sc.rel = table_open(relid, AccessShareLock);
	(void) HaScanStoredNotes(false, &sc.entry->uuid, CheckStoredHeads, &sc);
	table_close(sc.rel, AccessShareLock);
	return sc.checked;
}

/*
 * For verify(): every stored purge receipt of the table must read as one
 * (HaParseNoteBody), so that each anchor found listed in its note is listed
 * on a chain line.  Reports through the callback; returns how many read.
 */
typedef struct ReceiptsCheck
{
	void		(*report) (void *arg, int32 chain, int64 seq, const char *kind,
						   const char *detail);
	void	   *arg;
	int64		checked;
} ReceiptsCheck;

static void
CheckStoredReceipt(void *arg, int64 id, const HaNoteBody *nb pg_attribute_unused(),
				   const char *problem)
{
	ReceiptsCheck *rc = (ReceiptsCheck *) arg;

	rc->checked++;
	if (problem != NULL)
		rc->report(rc->arg, -1, -1, "receipt_malformed",
				   psprintf("stored purge receipt " INT64_FORMAT " cannot be read: %s", id, problem));
}

int64
HaCheckStoredReceipts(const pg_uuid_t *uuid,
					  void (*report) (void *arg, int32 chain, int64 seq,
									  const char *kind, const char *detail),
					  void *arg)
{
	ReceiptsCheck rc = {report, arg, 0};

	/* A 0.1.0 schema has no receipts table: no purge ever ran. */
	(void) HaScanStoredNotes(true, uuid, CheckStoredReceipt, &rc);
	return rc.checked;
}

/* ----------------------------------------------------------------
 * Partition lines of a partitioned table's checkpoints
 * ----------------------------------------------------------------
 */

typedef struct NoteHashFind
{
	const uint8 *hash;
	pg_uuid_t	uuid;
	bool		found;
	int64		id;
} NoteHashFind;

static bool
FindNoteByHash(void *arg, TupleTableSlot *slot)
{
	NoteHashFind *f = (NoteHashFind *) arg;
	text	   *note;
	uint8		h[HA_HASH_LEN];

	if (slot->tts_isnull[Anum_ha_checkpoints_table_uuid - 1] ||
		memcmp(DatumGetUUIDP(slot->tts_values[Anum_ha_checkpoints_table_uuid - 1])->data,
			   f->uuid.data, UUID_LEN) != 0 ||
		slot->tts_isnull[Anum_ha_checkpoints_note - 1])
		return true;
	note = DatumGetTextPP(slot->tts_values[Anum_ha_checkpoints_note - 1]);
	HaSha256Once(VARDATA_ANY(note), VARSIZE_ANY_EXHDR(note), h);
	if (memcmp(h, f->hash, HA_HASH_LEN) == 0)
	{
		f->found = true;
		f->id = DatumGetInt64(slot->tts_values[Anum_ha_checkpoints_id - 1]);
		return false;
	}
	return true;
}

/* The id of the stored checkpoint of a table whose note hashes to hash; 0: none. */
int64
HaStoredCheckpointByHash(const pg_uuid_t *uuid, const uint8 *hash)
{
	NoteHashFind f;

	memset(&f, 0, sizeof(f));
	f.hash = hash;
	memcpy(&f.uuid, uuid, sizeof(pg_uuid_t));
	(void) HaScanOwnTable(HA_TABLE_CHECKPOINTS, NULL, FindNoteByHash, &f);
	return f.found ? f.id : 0;
}

static void
FindRemoval(void *arg, int64 id pg_attribute_unused(), const HaNoteBody *nb,
			const char *problem)
{
	if (problem == NULL && nb->removed != NULL)
		*(bool *) arg = true;
}

/*
 * One partition line of a partitioned table's checkpoint: the partition is
 * protected here and the checkpoint of it that the line hashes is stored,
 * or it was removed lawfully (a receipt of its removal is stored).  NULL
 * when so; else the problem's kind, and *detail.
 */
const char *
HaCheckPartitionLine(const HaNotePartition *np, char **detail)
{
	NoteHashFind f;
	ListCell   *lc;
	Oid			part = InvalidOid;
	bool		removed = false;

	memset(&f, 0, sizeof(f));
	f.hash = np->hash;
	memcpy(&f.uuid, DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(np->uuid))),
		   sizeof(pg_uuid_t));
	foreach(lc, HaProtectedRelids())
	{
		const HaProtectedEntry *e = HaLookupProtected(lfirst_oid(lc));

		if (e != NULL && memcmp(e->uuid.data, f.uuid.data, UUID_LEN) == 0)
			part = e->relid;
	}
	if (OidIsValid(part) && !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(part)))
	{
		*detail = psprintf("the partition with identity %s it records is gone, and no receipt of its removal is stored (it was dropped while hipaa_audit was not loaded)",
						   np->uuid);
		return "partition_missing";
	}
	if (OidIsValid(part))
	{
		(void) HaScanOwnTable(HA_TABLE_CHECKPOINTS, NULL, FindNoteByHash, &f);
		if (f.found)
			return NULL;
		*detail = psprintf("the checkpoint of partition %s it binds (SHA-256 %s) is not stored",
						   HaRelDisplayName(part), HaHex(np->hash, HA_HASH_LEN));
		return "checkpoint_mismatch";
	}
	(void) HaScanStoredNotes(true, &f.uuid, FindRemoval, &removed);
	if (removed)
		return NULL;
	*detail = psprintf("the partition with identity %s it records is gone, and no receipt of its removal is stored",
					   np->uuid);
	return "partition_missing";
}
