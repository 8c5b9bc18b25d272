/*-------------------------------------------------------------------------
 *
 * purge.c
 *	  Lawful destruction of expired rows (layer api/):
 *	  hipaa_audit.purge_expired() and its signed receipts.  The anchors the
 *	  remaining chains start from are in store/records.c, the retention
 *	  rule in core/retention.c.
 *
 * Terms: a row is "expired" when it was inserted (audit_at, stamped by the
 * server) before the purge's "cutoff", the transaction's start minus the
 * table's retention.  A purge removes, per chain, the longest run of
 * expired rows at the start of the chain, never a row after a kept one, so
 * a chain never gets a hole.  Each removed run is recorded as an "anchor":
 * its positions and the hash of its last row, from which verify() continues
 * the chain.  A "receipt" is the signed note listing a purge's anchors
 * (docs/retention.md); receipts are stored insert-only and hash-chained in
 * hipaa_audit.purge_receipts, anchors in hipaa_audit.purge_anchors.
 *
 * A purge reads and removes one row at a time through the chain index, so
 * memory stays flat.  It verifies every row before removing it; a row that
 * does not verify raises an error, and the transaction's abort puts back
 * every row removed so far.  Writers are not blocked: they append at the
 * other end of each chain.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "access/xlog.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* Columns of hipaa_audit.purge_anchors. */

/* Columns of hipaa_audit.purge_receipts. */

/* ----------------------------------------------------------------
 * purge_expired()
 * ----------------------------------------------------------------
 */

typedef struct PurgedRange
{
	int32		chain;
	int64		first;
	int64		last;
	uint8		hash[HA_HASH_LEN];
} PurgedRange;

pg_noreturn static void
BrokenPrefix(Oid relid, int32 chain, int64 seq, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("cannot purge %s: chain %d is broken at position " INT64_FORMAT,
					HaRelDisplayName(relid), chain, seq),
			 errdetail("%s  Nothing was removed.", what),
			 errhint("Run hipaa_audit.verify_problems('%s') and investigate before purging.",
					 HaRelDisplayName(relid))));
}

/*
 * Verify and remove (unless !remove: a dry run) the expired run at the start
 * of one chain, at most budget rows of it.  Returns the number of rows;
 * fills *range when it is more than zero.
 */
static int64
PurgeChain(Relation rel, Relation idx, HaShape *shape, const HaProtectedEntry *entry,
		   int32 chain, const HaAnchor *anchor, TimestampTz cutoff, Snapshot snap,
		   MemoryContext rowcxt, bool remove, int64 budget, int64 upto, PurgedRange *range)
{
	Oid			relid = RelationGetRelid(rel);
	IndexScanDesc scan;
	ScanKeyData keys[2];
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	int64		expect = anchor->seq + 1;
	uint8		prev[HA_HASH_LEN];
	int64		removed = 0;

	memcpy(prev, anchor->hash, HA_HASH_LEN);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	ScanKeyInit(&keys[1], 2, BTGreaterStrategyNumber, F_INT8GT, Int64GetDatum(anchor->seq));
	scan = HaIndexBeginScan(rel, idx, snap, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (removed < budget && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old;
		int64		seq;
		uint8		rowprev[HA_HASH_LEN];
		uint8		stored[HA_HASH_LEN];
		uint8		computed[HA_HASH_LEN];
		bool		expired;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		slot_getallattrs(slot);
		seq = DatumGetInt64(slot->tts_values[shape->att_seq - 1]);
		/* Only rows that are leaves of the tree already (upto) go. */
		expired = !slot->tts_isnull[shape->att_at - 1] &&
			DatumGetTimestampTz(slot->tts_values[shape->att_at - 1]) < cutoff &&
			seq <= upto;

		/* The first row kept must link to the last one removed, too. */
		if (seq != expect)
			BrokenPrefix(relid, chain, expect,
						 psprintf("The row at position " INT64_FORMAT " is missing.", expect));
		if (!HaSlotHash(slot, shape->att_prev, rowprev) || !HaSlotHash(slot, shape->att_hash, stored))
			BrokenPrefix(relid, chain, seq, "Its audit_prev_hash or audit_hash is NULL or not 32 bytes.");
		if (memcmp(rowprev, prev, HA_HASH_LEN) != 0)
			BrokenPrefix(relid, chain, seq,
						 psprintf("Its audit_prev_hash %s does not match the audit_hash %s of the row before it.",
								  HaHex(rowprev, HA_HASH_LEN), HaHex(prev, HA_HASH_LEN)));
		if (!expired)
		{
			MemoryContextSwitchTo(old);
			break;
		}
		HaRowHash(shape, &entry->uuid, chain, seq, rowprev,
				  slot->tts_values, slot->tts_isnull, computed);
		if (memcmp(computed, stored, HA_HASH_LEN) != 0)
			BrokenPrefix(relid, chain, seq,
						 "The row's content differs from what was hashed when it was inserted.");

		if (remove)
			simple_table_tuple_delete(rel, &slot->tts_tid, snap);
		memcpy(prev, stored, HA_HASH_LEN);
		expect++;
		removed++;
		MemoryContextSwitchTo(old);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);

	if (removed > 0)
	{
		range->chain = chain;
		range->first = anchor->seq + 1;
		range->last = expect - 1;
		memcpy(range->hash, prev, HA_HASH_LEN);
	}
	return removed;
}

static char *
ReceiptBody(Oid relid, const HaProtectedEntry *entry, Interval *retention,
			TimestampTz cutoff, int64 total, PurgedRange *ranges, int nranges,
			const HaProtectedEntry *parent, const char *removed)
{
	StringInfoData buf;
	int			nestlevel;

	HaPinDateSettings(&nestlevel);
	initStringInfo(&buf);
	appendStringInfo(&buf, "hipaa_audit/" UINT64_FORMAT "/%s\n", GetSystemIdentifier(),
					 DatumGetCString(DirectFunctionCall1(uuid_out,
														 UUIDPGetDatum((pg_uuid_t *) &entry->uuid))));
	appendStringInfo(&buf, "purge v1\n");
	appendStringInfo(&buf, "table %s\n", HaNoteName(HaRelDisplayName(relid)));
	if (parent != NULL)
		appendStringInfo(&buf, "partition-of %s %s\n",
						 DatumGetCString(DirectFunctionCall1(uuid_out,
															 UUIDPGetDatum((pg_uuid_t *) &parent->uuid))),
						 HaNoteName(HaRelDisplayName(parent->relid)));
	appendStringInfo(&buf, "database %s\n", HaNoteName(get_database_name(MyDatabaseId)));
	appendStringInfo(&buf, "time %s\n",
					 DatumGetCString(DirectFunctionCall1(timestamptz_out,
														 TimestampTzGetDatum(GetCurrentTimestamp()))));
	appendStringInfo(&buf, "by %s\n", HaNoteName(GetUserNameFromId(GetUserId(), false)));
	appendStringInfo(&buf, "retention %s\n",
					 DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(retention))));
	appendStringInfo(&buf, "cutoff %s\n",
					 DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(cutoff))));
	/* What the cutoff was counted back from (HaRetentionCutoff). */
	appendStringInfo(&buf, "as-of %s\n",
					 DatumGetCString(DirectFunctionCall1(timestamptz_out,
														 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()))));
	if (removed != NULL)
		appendStringInfo(&buf, "removed %s\n", removed);
	appendStringInfo(&buf, "rows " INT64_FORMAT "\n", total);
	for (int i = 0; i < nranges; i++)
		appendStringInfo(&buf, "chain %d " INT64_FORMAT " " INT64_FORMAT " %s\n",
						 ranges[i].chain, ranges[i].first, ranges[i].last,
						 HaHex(ranges[i].hash, HA_HASH_LEN));
	AtEOXact_GUC(true, nestlevel);
	return buf.data;
}

/* Store the receipt and its anchors; returns the receipt's id. */
static int64
StoreReceipt(Oid relid, const HaProtectedEntry *entry, TimestampTz cutoff, int64 total,
			 const char *note, PurgedRange *ranges, int nranges)
{
	Datum	   *chains = palloc(sizeof(Datum) * nranges);
	Datum	   *firsts = palloc(sizeof(Datum) * nranges);
	Datum	   *lasts = palloc(sizeof(Datum) * nranges);
	Datum	   *hashes = palloc(sizeof(Datum) * nranges);
	Oid			argtypes[10] = {UUIDOID, REGCLASSOID, NAMEOID, TIMESTAMPTZOID, INT8OID,
		TEXTOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, BYTEAARRAYOID};
	Datum		values[10];

	for (int i = 0; i < nranges; i++)
	{
		bytea	   *b = palloc(VARHDRSZ + HA_HASH_LEN);

		SET_VARSIZE(b, VARHDRSZ + HA_HASH_LEN);
		memcpy(VARDATA(b), ranges[i].hash, HA_HASH_LEN);
		chains[i] = Int32GetDatum(ranges[i].chain);
		firsts[i] = Int64GetDatum(ranges[i].first);
		lasts[i] = Int64GetDatum(ranges[i].last);
		hashes[i] = PointerGetDatum(b);
	}
	values[0] = UUIDPGetDatum((pg_uuid_t *) &entry->uuid);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	values[3] = TimestampTzGetDatum(cutoff);
	values[4] = Int64GetDatum(total);
	values[5] = CStringGetTextDatum(note);
	values[6] = PointerGetDatum(construct_array(chains, nranges, INT4OID, 4, true, TYPALIGN_INT));
	values[7] = PointerGetDatum(construct_array(firsts, nranges, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[8] = PointerGetDatum(construct_array(lasts, nranges, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[9] = PointerGetDatum(construct_array(hashes, nranges, BYTEAOID, -1, false, TYPALIGN_INT));

	/* Hash-chained: one writer at a time, the lock held to commit. */
	HaRunAsExtensionOwner("LOCK TABLE hipaa_audit.purge_receipts IN EXCLUSIVE MODE",
						  0, NULL, NULL);
	return HaRunAsExtensionOwnerInt8(
		"WITH r AS ("
		"  INSERT INTO hipaa_audit.purge_receipts "
		"  (table_uuid, relid, purged_at, purged_by, cutoff, rows_removed, note, prev_hash, hash) "
		"  SELECT $1, $2, pg_catalog.now(), $3, $4, $5, $6, p.h, pg_catalog.sha256("
		"  '\\x68697061615f61756469742f70757267652f763100'::pg_catalog.bytea "
		"  OPERATOR(pg_catalog.||) p.h OPERATOR(pg_catalog.||) pg_catalog.convert_to($6, 'UTF8')) "
		"  FROM (SELECT COALESCE((SELECT hash FROM hipaa_audit.purge_receipts "
		"  ORDER BY id DESC LIMIT 1), "
		"  '\\x0000000000000000000000000000000000000000000000000000000000000000'::pg_catalog.bytea) AS h) p "
		"  RETURNING id) "
		"INSERT INTO hipaa_audit.purge_anchors "
		"(receipt_id, table_uuid, chain, first_seq, last_seq, anchor_hash) "
		"SELECT r.id, $1, a.chain, a.first_seq, a.last_seq, a.hash "
		"FROM r, ROWS FROM (pg_catalog.unnest($7), pg_catalog.unnest($8), "
		"pg_catalog.unnest($9), pg_catalog.unnest($10)) AS a(chain, first_seq, last_seq, hash) "
		"RETURNING receipt_id",
		10, argtypes, values);
}

/*
 * Everything a purge that removes rows needs, checked before it reads a
 * row: a writable primary, READ COMMITTED, the 0.2.0 schema, the per-table
 * purge lock, no foreign keys pointing at the table, no legal hold, a key.
 */
static void
PrepareRemoval(Oid relid, const char *name)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	PreventCommandIfReadOnly("hipaa_audit.purge_expired()");
	PreventCommandDuringRecovery("hipaa_audit.purge_expired()");
	/* A transaction snapshot could miss a receipt committed meanwhile. */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("hipaa_audit.purge_expired() must run at READ COMMITTED isolation"),
				 errhint("A dry run (dry_run => true) may run at any isolation level.")));
	if (!OidIsValid(get_relname_relid(HA_TABLE_PURGE_ANCHORS, HaSchemaOid())))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the hipaa_audit schema in this database is older than its library"),
				 errhint("Run ALTER EXTENSION hipaa_audit UPDATE.")));

	/* One purge of a table at a time; writers are not blocked. */
	HaLockPurge(relid);

	/* Removing rows here does not fire the checks of foreign keys. */
	if (HaRunAsExtensionOwnerInt8("SELECT pg_catalog.count(*) FROM pg_catalog.pg_constraint "
								  "WHERE confrelid OPERATOR(pg_catalog.=) $1 "
								  "AND contype OPERATOR(pg_catalog.=) 'f'",
								  1, argtypes, values) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot purge %s: foreign keys of other tables reference it", name),
				 errdetail("Removed rows would leave the referencing rows pointing at nothing."),
				 errhint("Drop those foreign key constraints, or keep such tables unprotected.")));

	if (HaTableHeld(relid))
		HaRefuse("purge", psprintf("protected table %s", name),
				 "The table is under a legal hold.",
				 "See hipaa_audit.legal_holds_active; release the hold first.");
	/* No receipt, no purge: fail before removing anything. */
	HaCheckSigningKey();
}

/* What one purge of one table (or the removal of one partition) did. */
typedef struct PurgeResult
{
	int64		rows;
	int64		receipt_id;		/* 0: none */
	char	   *receipt;
} PurgeResult;

/*
 * Verify (and, unless !remove, delete) the expired prefix of every chain of
 * one table with chains, at most max_rows rows; a receipt when rows went.
 * The caller holds the table's lock and, to remove, has run PrepareRemoval.
 */
static void
PurgeTable(Oid relid, const HaProtectedEntry *entry, bool remove, int64 max_rows,
		   const int64 *upto, PurgeResult *res)
{
	Interval	retention;
	TimestampTz cutoff;
	Snapshot	snap;
	HaAnchor   *anchors;
	Relation	rel;
	Relation	idx;
	HaShape    *shape;
	MemoryContext rowcxt;
	PurgedRange *ranges;
	int			nranges = 0;
	int64		total = 0;

	memset(res, 0, sizeof(*res));
	cutoff = HaRetentionCutoff(relid, &retention);
	rel = table_open(relid, NoLock);
	shape = HaGetShape(rel);
	idx = index_open(HaChainIndex(rel, HA_CHAIN_INDEX_UNIQUE), AccessShareLock);
	/* After the lock: a purge that ran meanwhile is seen, with its anchors. */
	snap = RegisterSnapshot(GetLatestSnapshot());
	anchors = HaLoadAnchors(&entry->uuid, snap);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "hipaa_audit purge row",
								   ALLOCSET_DEFAULT_SIZES);
	ranges = palloc(sizeof(PurgedRange) * entry->chains);
	for (int32 c = 0; c < entry->chains; c++)
	{
		int64		n;

		if (total >= max_rows)
			break;
		n = PurgeChain(rel, idx, shape, entry, c, &anchors[c], cutoff, snap,
					   rowcxt, remove, max_rows - total,
					   upto != NULL ? upto[c] : PG_INT64_MAX, &ranges[nranges]);

		if (n > 0)
		{
			nranges++;
			total += n;
		}
	}
	MemoryContextDelete(rowcxt);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
	table_close(rel, NoLock);
	res->rows = total;
	if (total > 0 && remove)
	{
		char	   *body = ReceiptBody(relid, entry, &retention, cutoff, total, ranges, nranges,
									   NULL, NULL);

		res->receipt = HaSignNote(body);
		res->receipt_id = StoreReceipt(relid, entry, cutoff, total, res->receipt, ranges, nranges);
		ereport(LOG_SERVER_ONLY,
				(errmsg("hipaa_audit: purged " INT64_FORMAT " expired rows from %s (receipt " INT64_FORMAT ") by role %s",
						total, HaRelDisplayName(relid), res->receipt_id,
						GetUserNameFromId(GetUserId(), false))));
	}
}

/* ----------------------------------------------------------------
 * Whole partitions (docs/partitions.md)
 * ----------------------------------------------------------------
 */

/*
 * The head of each chain (its last position, the row's hash), through the
 * chain index; false as soon as a head was inserted at or after cutoff
 * (each chain's rows are appended in time order, so its head is its newest
 * row).  *newest: the newest head's insertion time.
 */
static bool
HeadsBefore(Relation rel, int32 chains, TimestampTz cutoff, PurgedRange *heads,
			TimestampTz *newest)
{
	*newest = DT_NOBEGIN;
	for (int32 c = 0; c < chains; c++)
	{
		TimestampTz at;

		heads[c].chain = c;
		heads[c].last = 0;
		if (!HaChainFindRow(rel, c, -1, &heads[c].last, heads[c].hash, &at))
		{
			if (heads[c].last != 0)
				heads[c].last = -1; /* malformed: verification reports it */
			continue;
		}
		if (at >= cutoff)
			return false;
		if (at > *newest)
			*newest = at;
	}
	return true;
}

/*
 * Verify every row of a partition as verify() does (in parallel with
 * workers: each row's hash recomputed, the links checked from the chains'
 * purge anchors), checking on the way that every row was inserted before
 * the cutoff; the chain heads are the ranges a receipt of its removal
 * lists.  Returns false, removing nothing, when a row is within retention
 * (a head first: cheap).  With store, signs and stores the receipt of its
 * removal ("drop" or "detach").
 */
static bool
VerifyWholePartition(Oid part, const char *removed, bool store, PurgeResult *res,
					 TimestampTz *newest)
{
	const HaProtectedEntry *entry = HaRequireProtected(part, NULL);
	const HaProtectedEntry *parent = HaRequireProtected(entry->parent, NULL);
	char	   *name = HaRelDisplayName(part);
	Interval	retention;
	TimestampTz cutoff;
	HaAnchor   *anchors;
	Relation	rel;
	PurgedRange *heads;
	PurgedRange *ranges;
	int			nranges = 0;
	int64		rows = 0;
	int64		total = 0;
	int64		within = 0;
	int64		problems;
	char	   *first = NULL;

	memset(res, 0, sizeof(*res));
	cutoff = HaRetentionCutoff(part, &retention);
	anchors = HaLoadAnchors(&entry->uuid, NULL);
	heads = palloc0(sizeof(PurgedRange) * entry->chains);
	rel = table_open(part, NoLock);
	if (!HeadsBefore(rel, entry->chains, cutoff, heads, newest))
	{
		table_close(rel, NoLock);
		return false;
	}
	table_close(rel, NoLock);

	problems = HaVerifyForRemoval(part, cutoff, &within, &rows, &first);
	if (within > 0)
		return false;
	if (problems > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot remove partition %s: it does not verify", name),
				 errdetail(INT64_FORMAT " problem(s), the first: %s.  Nothing was removed.",
						   problems, first ? first : "?"),
				 errhint("Run hipaa_audit.verify_problems('%s') and investigate before removing it.", name)));

	/* Each chain from the row after its anchor to its head: the ranges. */
	ranges = palloc(sizeof(PurgedRange) * entry->chains);
	for (int32 c = 0; c < entry->chains; c++)
	{
		if (heads[c].last <= anchors[c].seq)
			continue;
		ranges[nranges] = heads[c];
		ranges[nranges].first = anchors[c].seq + 1;
		total += heads[c].last - anchors[c].seq;
		nranges++;
	}
	if (total != rows)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot remove partition %s: it holds " INT64_FORMAT " rows, its chains " INT64_FORMAT,
						name, rows, total),
				 errdetail("Nothing was removed."),
				 errhint("Run hipaa_audit.verify_problems('%s') and investigate before removing it.", name)));
	res->rows = total;
	if (!store || total == 0)
		return true;
	HaCheckSigningKey();		/* no receipt, no removal */
	res->receipt = HaSignNote(ReceiptBody(part, entry, &retention, cutoff, total, ranges,
										  nranges, parent, removed));
	/* Stored under the partitioned table's relid: the partition's goes. */
	res->receipt_id = StoreReceipt(parent->relid, entry, cutoff, total, res->receipt,
								   ranges, nranges);
	return true;
}

static bool
RetirePartition(Oid part, const char *action, PurgeResult *res)
{
	TimestampTz newest = 0;
	char	   *name = HaRelDisplayName(part);

	/*
	 * The policy locks place_hold() and set_retention() take, the
	 * partitioned table's first: a hold committed meanwhile is seen.
	 */
	HaLockPurge(HaRequireProtected(part, NULL)->parent);
	HaLockPurge(part);
	if (HaTableHeld(part))
		HaRefuse(strcmp(action, "detach") == 0 ? "DETACH" : "DROP",
				 psprintf("protected table %s", name),
				 "The partition or its partitioned table is under a legal hold.",
				 "See hipaa_audit.legal_holds_active; release the hold first.");

	if (!OidIsValid(get_relname_relid(HA_TABLE_PURGE_ANCHORS, HaSchemaOid())))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the hipaa_audit schema in this database is older than its library"),
				 errhint("Run ALTER EXTENSION hipaa_audit UPDATE.")));
	/*
	 * Its rows are leaves of the partitioned table's tree before they go
	 * (before the receipt, whose anchors would count as covering them).
	 */
	HaCheckpointBeforeRemoval(HaRequireProtected(part, NULL)->parent, part);
	if (!VerifyWholePartition(part, action, true, res, &newest))
		return false;
	HaRecordRetired(part, action, res->rows, newest);
	if (strcmp(action, "detach") == 0)
		HaRunAsExtensionOwner(psprintf("DROP TRIGGER %s ON %s",
									   quote_identifier(HA_TRIGGER_TRUNCATE), name),
							  0, NULL, NULL);
	HaRegistryForget(part);
	HaChainForgetTable(part);
	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: partition %s (" INT64_FORMAT " rows, all past retention) %s by role %s, receipt " INT64_FORMAT,
					name, res->rows, strcmp(action, "detach") == 0 ? "detached" : "dropped",
					GetUserNameFromId(GetUserId(), false), res->receipt_id)));
	return true;
}

int64
HaRetirePartition(Oid part, const char *action, char **receipt)
{
	PurgeResult res;

	if (!RetirePartition(part, action, &res))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("partition %s holds audit rows within their retention period",
						HaRelDisplayName(part))));
	if (receipt != NULL)
		*receipt = res.receipt;
	return res.receipt_id;
}

/*
 * Might this partition be wholly expired (and hold rows)?  Its chain heads
 * say, without reading it; the removal checks every row.
 */
static bool
HeadsAllBefore(Oid part)
{
	const HaProtectedEntry *entry = HaRequireProtected(part, NULL);
	Interval	retention;
	TimestampTz cutoff = HaRetentionCutoff(part, &retention);
	PurgedRange *heads = palloc0(sizeof(PurgedRange) * entry->chains);
	Relation	rel = table_open(part, AccessShareLock);
	TimestampTz newest;
	bool		before = HeadsBefore(rel, entry->chains, cutoff, heads, &newest);
	bool		any = false;

	table_close(rel, AccessShareLock);
	for (int32 c = 0; c < entry->chains; c++)
		any |= heads[c].last != 0;
	return before && any;
}

/* One result row of purge_expired(). */
static void
PutResult(ReturnSetInfo *rsinfo, const PurgeResult *res, const char *part)
{
	Datum		values[4];
	bool		nulls[4] = {false, res->receipt_id == 0, res->receipt == NULL, part == NULL};

	values[0] = Int64GetDatum(res->rows);
	values[1] = Int64GetDatum(res->receipt_id);
	values[2] = res->receipt ? CStringGetTextDatum(res->receipt) : (Datum) 0;
	values[3] = part ? CStringGetTextDatum(part) : (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * purge_expired() of a partitioned table: each partition whose rows are
 * all past retention (and which holds rows) is verified, receipted and
 * dropped whole; in each other one the expired prefix of every chain is
 * purged row by row as in any table.  A partition under a hold is left
 * alone.  One result row per partition that lost rows.
 */
static void
PurgePartitioned(ReturnSetInfo *rsinfo, Oid relid, bool dry_run, int64 max_rows)
{
	ListCell   *lc;
	int64		budget = max_rows;
	bool		any = false;
	int64		upto[HA_MAX_CHAINS];

	if (!dry_run)
	{
		PrepareRemoval(relid, HaRelDisplayName(relid));
	}
	foreach(lc, HaRegisteredPartitions(relid))
	{
		Oid			part = lfirst_oid(lc);
		char	   *pname;
		PurgeResult res;

		/* Kept from being dropped while we look; writers go on. */
		LockRelationOid(part, AccessShareLock);
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(part)) || !HaIsProtected(part))
			continue;
		pname = HaRelDisplayName(part);
		/* A hold placed while we run waits for us, or we see it. */
		if (!dry_run)
			HaLockPurge(part);
		if (HaTableHeld(part))
		{
			ereport(NOTICE,
					(errmsg("partition %s is under a legal hold and was left as it is", pname)));
			continue;
		}
		if (HeadsAllBefore(part))
		{
			TimestampTz newest;

			if (dry_run)
			{
				if (VerifyWholePartition(part, "drop", false, &res, &newest))
				{
					PutResult(rsinfo, &res, pname);
					any = true;
					continue;
				}
			}
			else
			{
				/*
				 * Locked as DROP TABLE locks a partition, the partitioned
				 * table first: inserts into the table wait until the end of
				 * the transaction.  Then verified (checking again that every
				 * row is past retention), receipted and dropped.
				 */
				LockRelationOid(relid, AccessExclusiveLock);
				LockRelationOid(part, AccessExclusiveLock);
				if (RetirePartition(part, "drop", &res))
				{
					HaRunAsExtensionOwner(psprintf("DROP TABLE %s", pname), 0, NULL, NULL);
					PutResult(rsinfo, &res, pname);
					any = true;
					continue;
				}
			}
		}
		LockRelationOid(part, dry_run ? AccessShareLock : RowExclusiveLock);
		if (budget <= 0)
			continue;
		if (!dry_run)
		{
			PrepareRemoval(part, pname);
			HaCheckpointBeforeRemoval(relid, part);
		}
		PurgeTable(part, HaRequireProtected(part, NULL), !dry_run, budget,
				   !dry_run && HaTreeCoverage(part, upto) ? upto : NULL, &res);
		if (res.rows > 0)
		{
			budget -= res.rows;
			PutResult(rsinfo, &res, pname);
			any = true;
		}
	}
	if (!any)
	{
		PurgeResult none = {0, 0, NULL};

		PutResult(rsinfo, &none, NULL);
	}
}

PG_FUNCTION_INFO_V1(purge_expired);

/*
 * purge_expired(tbl, dry_run, max_rows)
 *   -> setof (rows_removed, receipt_id, receipt, partition)
 *
 * max_rows bounds one purge (chains in order, each still a prefix), so that
 * a long backlog can go in several transactions; whole partitions removed
 * do not count against it.
 *
 * A dry run verifies and counts the rows a purge would remove now, removes
 * nothing, stores nothing and needs no key; it also runs on a standby.
 * One row for an ordinary table; for a partitioned table one per partition
 * that lost rows (or one row of zero).
 */
Datum
purge_expired(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	char	   *name;
	const HaProtectedEntry *entry;
	bool		dry_run;
	int64		max_rows;
	LOCKMODE	lockmode;
	PurgeResult res;
	int64		upto[HA_MAX_CHAINS];

	if (PG_ARGISNULL(0) || (PG_NARGS() > 1 && PG_ARGISNULL(1)))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of hipaa_audit.purge_expired must not be null"),
				 errdetail("Only max_rows may be NULL (no limit).")));
	dry_run = PG_NARGS() > 1 && PG_GETARG_BOOL(1);
	max_rows = (PG_NARGS() > 2 && !PG_ARGISNULL(2)) ? PG_GETARG_INT64(2) : PG_INT64_MAX;
	if (max_rows < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must be at least 1, or NULL for no limit")));
	InitMaterializedSRF(fcinfo, 0);
	relid = PG_GETARG_OID(0);
	HaCheckRelationExists(relid);
	name = HaRelDisplayName(relid);
	HaRequireAdmin(psprintf("purge table %s", name), "Only members of %s may purge expired rows.");
	/* The table's lock first: a DROP under way finishes before we look. */
	lockmode = dry_run ? AccessShareLock : RowExclusiveLock;
	LockRelationOid(relid, lockmode);
	HaCheckRelationExists(relid);
	entry = HaRequireProtected(relid, "purge_expired() removes expired rows from protected tables only.");
	if (OidIsValid(entry->parent))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot purge partition %s on its own", name),
				 errhint("Purge its partitioned table %s: expired partitions are dropped whole, the others purged row by row.",
						 HaRelDisplayName(entry->parent))));
	if (entry->partitioned)
	{
		PurgePartitioned(rsinfo, relid, dry_run, max_rows);
		return (Datum) 0;
	}
	if (!dry_run)
	{
		PrepareRemoval(relid, name);
		HaCheckpointBeforeRemoval(relid, relid);
	}
	PurgeTable(relid, entry, !dry_run, max_rows,
			   !dry_run && HaTreeCoverage(relid, upto) ? upto : NULL, &res);
	PutResult(rsinfo, &res, NULL);
	return (Datum) 0;
}
