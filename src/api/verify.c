/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  hipaa_audit.verify() and hipaa_audit.verify_problems(): recompute every
 *	  row hash and every link of every chain, and report what does not match.
 *	  Layer api/ (docs/architecture.md).
 *
 * Each chain is walked in position order through the table's unique index
 * on (audit_chain, audit_seq), one row in memory at a time (a per-row
 * memory context is reset for every row), so memory stays flat however
 * large the table.  A separate sequential count of the table's rows catches
 * rows the index cannot reach.  Verification only reads: it runs on a hot
 * standby, and it can be cancelled at any row.
 *
 * Problem kinds:
 *	  hash_mismatch	  the row's content or header differs from what was hashed
 *	  broken_link	  audit_prev_hash differs from the previous row's audit_hash
 *	  gap			  positions are missing (rows deleted)
 *	  duplicate		  two rows share a position
 *	  bad_chain		  audit_chain outside 0 .. chains-1
 *	  malformed		  a chain column is NULL or a hash is not 32 bytes
 *	  unindexed_rows  the table holds rows the chain index does not reach
 *	  purged_row_present  a row at a position a purge receipt says was removed
 *	  anchor_without_receipt  a chain starts from an anchor no stored receipt lists
 *	  checkpoint_rows_missing, checkpoint_mismatch  a stored checkpoint's
 *					  recorded head is gone or differs (checkpoint.c)
 *	  checkpoint_malformed, receipt_malformed  a stored checkpoint or purge
 *					  receipt of the table does not read as one (its body
 *					  has a line its kind of note does not have)
 *
 * After a lawful purge (purge.c) each chain starts from its anchor: the
 * first row kept must follow the last position removed and link to its hash.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

typedef struct VerifyState
{
	int64		rows_checked;
	int64		heap_rows;
	int32		chains_seen;
	int64		problems;
	char	   *first_problem;
	Tuplestorestate *store;		/* verify_problems: one tuple per problem */
	TupleDesc	store_desc;
	MemoryContext result_cxt;
} VerifyState;

static void
Report(VerifyState *st, int32 chain, int64 seq, const char *kind,
	   const char *detail)
{
	st->problems++;
	if (st->first_problem == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(st->result_cxt);

		st->first_problem = psprintf("chain %d position " INT64_FORMAT ": %s: %s",
									 chain, seq, kind, detail);
		MemoryContextSwitchTo(old);
	}
	if (st->store != NULL)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(chain);
		values[1] = Int64GetDatum(seq);
		values[2] = CStringGetTextDatum(kind);
		values[3] = CStringGetTextDatum(detail);
		tuplestore_putvalues(st->store, st->store_desc, values, nulls);
	}
}

static void
ReportStoredNote(void *arg, int32 chain, int64 seq, const char *kind,
					 const char *detail)
{
	Report((VerifyState *) arg, chain, seq, kind, detail);
}

static void
CheckCanVerify(Oid relid)
{
	Oid			user = GetUserId();
	Oid			auditor = get_role_oid(HA_AUDITOR_ROLE, true);
	Oid			admin = get_role_oid(HA_ADMIN_ROLE, true);

	if (superuser_arg(user) ||
		(OidIsValid(auditor) && has_privs_of_role(user, auditor)) ||
		(OidIsValid(admin) && has_privs_of_role(user, admin)) ||
		pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to verify table %s", HaRelDisplayName(relid)),
			 errdetail("Verification needs SELECT on the table or membership in %s or %s.",
					   HA_AUDITOR_ROLE, HA_ADMIN_ROLE)));
}

/*
 * Every anchor a chain starts from must be listed in its receipt, and the
 * receipt must match its stored hash: an anchor row added without a purge
 * (to hide deleted rows) is reported.  The receipt's signature is checked
 * by verify_receipt() with the published verifier key.
 */
static void
CheckAnchorReceipts(const HaProtectedEntry *entry, VerifyState *st)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];
	int64		bad;

	if (!OidIsValid(get_relname_relid(HA_TABLE_PURGE_ANCHORS, HaSchemaOid())))
		return;					/* a 0.1.0 schema: no purge ever ran */
	values[0] = UUIDPGetDatum((pg_uuid_t *) &entry->uuid);
	bad = HaRunAsExtensionOwnerInt8(
		"SELECT pg_catalog.count(*) FROM hipaa_audit.purge_anchors a "
		"WHERE a.table_uuid OPERATOR(pg_catalog.=) $1 "
		"AND NOT EXISTS (SELECT 1 FROM hipaa_audit.purge_receipts r "
		"WHERE r.id OPERATOR(pg_catalog.=) a.receipt_id "
		"AND r.table_uuid OPERATOR(pg_catalog.=) a.table_uuid "
		"AND r.hash OPERATOR(pg_catalog.=) pg_catalog.sha256("
		"'\\x68697061615f61756469742f70757267652f763100'::pg_catalog.bytea "
		"OPERATOR(pg_catalog.||) r.prev_hash OPERATOR(pg_catalog.||) pg_catalog.convert_to(r.note, 'UTF8')) "
		"AND pg_catalog.strpos(r.note, pg_catalog.format(E'\\nchain %s %s %s %s\\n', "
		"a.chain, a.first_seq, a.last_seq, pg_catalog.encode(a.anchor_hash, 'hex'))) "
		"OPERATOR(pg_catalog.>) 0)",
		1, argtypes, values);
	/* Each match above is a chain line: every receipt reads as one. */
	(void) HaCheckStoredReceipts(&entry->uuid, ReportStoredNote, st);
	if (bad > 0)
		Report(st, -1, -1, "anchor_without_receipt",
			   psprintf(INT64_FORMAT " purge anchor(s) of this table are not listed in a stored purge receipt that matches its hash (rows removed outside purge_expired()?)",
						bad));
}

/* Where the walk through the chain index stands. */
typedef struct ChainWalk
{
	const HaProtectedEntry *entry;
	HaShape    *shape;
	HaAnchor   *anchors;		/* per chain: where a lawful purge left it */
	int32		cur_chain;		/* the chain being walked, -1 before the first */
	int64		last_seq;		/* the previous row's position (or anchor's) */
	uint8		last_hash[HA_HASH_LEN]; /* and its hash ... */
	bool		have_last;		/* ... when that can be checked against */
} ChainWalk;

/* verify_progress(): this backend's slot, filled in; NULL if there is none. */
static HaVerifyProgress *
ProgressStart(Relation rel)
{
	HaVerifyProgress *progress = HaProgressSlot();

	if (progress != NULL)
	{
		progress->pid = 0;
		pg_write_barrier();
		progress->relid = RelationGetRelid(rel);
		progress->started = GetCurrentTimestamp();
		progress->rows_estimated = (int64) Max(rel->rd_rel->reltuples, 0);
		pg_atomic_write_u64(&progress->rows_checked, 0);
		pg_write_barrier();
		progress->pid = MyProcPid;	/* cleared at the end, or at abort (chain.c) */
	}
	return progress;
}

/* The first row of a chain: start from zero, or from its purge anchor. */
static void
StartChain(ChainWalk *w, VerifyState *st, int32 chain, int64 seq)
{
	w->cur_chain = chain;
	w->last_seq = 0;
	memset(w->last_hash, 0, HA_HASH_LEN);
	if (chain >= 0 && chain < HA_MAX_CHAINS && w->anchors[chain].seq > 0)
	{
		w->last_seq = w->anchors[chain].seq;
		memcpy(w->last_hash, w->anchors[chain].hash, HA_HASH_LEN);
	}
	w->have_last = true;
	st->chains_seen++;
	if (chain < 0 || chain >= w->entry->chains)
		Report(st, chain, seq, "bad_chain",
			   psprintf("the table has chains 0 to %d", w->entry->chains - 1));
}

/*
 * One row in chain order: its position against the previous row's (and the
 * purge anchor), its link, and its hash recomputed from its content.
 */
static void
CheckRow(ChainWalk *w, VerifyState *st, TupleTableSlot *slot)
{
	HaShape    *shape = w->shape;
	int32		chain;
	int64		seq;
	uint8		prev[HA_HASH_LEN];
	uint8		stored[HA_HASH_LEN];
	uint8		computed[HA_HASH_LEN];
	bool		have_prev;
	bool		have_stored;

	if (slot->tts_isnull[shape->att_chain - 1] || slot->tts_isnull[shape->att_seq - 1])
	{
		Report(st, -1, -1, "malformed", "a row has NULL in audit_chain or audit_seq");
		return;
	}
	chain = DatumGetInt32(slot->tts_values[shape->att_chain - 1]);
	seq = DatumGetInt64(slot->tts_values[shape->att_seq - 1]);
	have_prev = HaSlotHash(slot, shape->att_prev, prev);
	have_stored = HaSlotHash(slot, shape->att_hash, stored);

	if (chain != w->cur_chain)
		StartChain(w, st, chain, seq);

	if (chain >= 0 && chain < HA_MAX_CHAINS && seq <= w->anchors[chain].seq)
	{
		Report(st, chain, seq, "purged_row_present",
			   psprintf("a purge receipt says positions up to " INT64_FORMAT " were removed, but this row is in the table",
						w->anchors[chain].seq));
		return;
	}
	if (seq == w->last_seq)
	{
		Report(st, chain, seq, "duplicate", "another row has the same chain position");
		return;
	}
	if (seq != w->last_seq + 1)
	{
		if (w->last_seq + 1 == seq - 1)
			Report(st, chain, w->last_seq + 1, "gap",
				   psprintf("row at position " INT64_FORMAT " is missing", w->last_seq + 1));
		else
			Report(st, chain, w->last_seq + 1, "gap",
				   psprintf("rows at positions " INT64_FORMAT " to " INT64_FORMAT " are missing",
							w->last_seq + 1, seq - 1));
		w->have_last = false;	/* the link to the missing row cannot be checked */
	}

	if (!have_prev || !have_stored)
		Report(st, chain, seq, "malformed",
			   "audit_prev_hash or audit_hash is NULL or not 32 bytes");
	else
	{
		if (w->have_last && memcmp(prev, w->last_hash, HA_HASH_LEN) != 0)
			Report(st, chain, seq, "broken_link",
				   psprintf("audit_prev_hash %s does not match the previous row's audit_hash %s",
							HaHex(prev, HA_HASH_LEN), HaHex(w->last_hash, HA_HASH_LEN)));
		HaRowHash(shape, &w->entry->uuid, chain, seq, prev,
				  slot->tts_values, slot->tts_isnull, computed);
		if (memcmp(computed, stored, HA_HASH_LEN) != 0)
			Report(st, chain, seq, "hash_mismatch",
				   "the row's content differs from what was hashed when it was inserted");
	}

	w->last_seq = seq;
	w->have_last = have_stored;
	if (have_stored)
		memcpy(w->last_hash, stored, HA_HASH_LEN);
}

/* Every row in chain order, through the chain index. */
static void
WalkChains(Relation rel, Relation idx, Snapshot snap, TupleTableSlot *slot,
		   ChainWalk *w, VerifyState *st, HaVerifyProgress *progress)
{
	IndexScanDesc scan;
	MemoryContext rowcxt;
	MemoryContext old;

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "hipaa_audit verify row",
								   ALLOCSET_DEFAULT_SIZES);
	scan = HaIndexBeginScan(rel, idx, snap, 0, 0);
	index_rescan(scan, NULL, 0, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		slot_getallattrs(slot);
		st->rows_checked++;
		if (progress != NULL && (st->rows_checked & 1023) == 0)
			pg_atomic_write_u64(&progress->rows_checked, st->rows_checked);
		CheckRow(w, st, slot);
		MemoryContextSwitchTo(old);
	}
	index_endscan(scan);
	MemoryContextDelete(rowcxt);
}

/* All rows, by a plain scan: to compare with the rows the index reached. */
static void
CountHeapRows(Relation rel, Snapshot snap, TupleTableSlot *slot,
			  VerifyState *st)
{
	TableScanDesc hscan = table_beginscan(rel, snap, 0, NULL);

	while (table_scan_getnextslot(hscan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		st->heap_rows++;
	}
	table_endscan(hscan);
}

/*
 * verify() of one table: the chains, the stored checkpoints (rows deleted
 * from the end, history rewritten before a checkpoint), the purge anchors
 * against their receipts, then rows outside the index.
 */
static void
VerifyTable(Oid relid, VerifyState *st)
{
	Relation	rel;
	Relation	idx;
	Oid			idxoid;
	Snapshot	snap;
	TupleTableSlot *slot;
	HaVerifyProgress *progress;
	ChainWalk	walk;

	memset(&walk, 0, sizeof(walk));
	HaCheckRelationExists(relid);
	walk.entry = HaRequireProtected(relid, "Only tables registered with hipaa_audit.protect() have chains to verify.");
	CheckCanVerify(relid);

	rel = table_open(relid, AccessShareLock);
	walk.shape = HaGetShape(rel);
	walk.cur_chain = -1;
	idxoid = HaChainIndex(rel, HA_CHAIN_INDEX_ANY);
	if (!HaIsChainIndex(idxoid))	/* someone replaced it: walk it, say so */
		Report(st, -1, -1, "malformed",
			   "the unique index on (audit_chain, audit_seq) is missing; a non-unique one was used");
	idx = index_open(idxoid, AccessShareLock);
	snap = RegisterSnapshot(GetTransactionSnapshot());
	walk.anchors = HaLoadAnchors(&walk.entry->uuid, snap);
	slot = table_slot_create(rel, NULL);

	progress = ProgressStart(rel);
	WalkChains(rel, idx, snap, slot, &walk, st, progress);
	CountHeapRows(rel, snap, slot, st);
	if (progress != NULL)
		progress->pid = 0;
	(void) HaCheckStoredCheckpoints(relid, ReportStoredNote, st);
	CheckAnchorReceipts(walk.entry, st);
	/* Rows the index does not reach are rows verification would miss. */
	if (st->heap_rows != st->rows_checked)
		Report(st, -1, -1, "unindexed_rows",
			   psprintf("the table holds " INT64_FORMAT " rows but the chain index reaches " INT64_FORMAT,
						st->heap_rows, st->rows_checked));

	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/* How many problems verify() would report (for verify_checkpoint). */
int64
HaVerifyCount(Oid relid)
{
	VerifyState st;

	memset(&st, 0, sizeof(st));
	st.result_cxt = CurrentMemoryContext;
	VerifyTable(relid, &st);
	return st.problems;
}

PG_FUNCTION_INFO_V1(verify_progress);

/*
 * verify_progress() -> setof (pid, tbl, rows_checked, rows_estimated, started)
 */
Datum
verify_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HaVerifyProgress *slots;
	int			nslots;

	InitMaterializedSRF(fcinfo, 0);
	slots = HaProgressSlots(&nslots);
	for (int i = 0; i < nslots; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		int			pid = slots[i].pid;

		pg_read_barrier();
		if (pid == 0)
			continue;
		values[0] = Int32GetDatum(pid);
		values[1] = ObjectIdGetDatum(slots[i].relid);
		values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&slots[i].rows_checked));
		values[3] = Int64GetDatum(slots[i].rows_estimated);
		values[4] = TimestampTzGetDatum(slots[i].started);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(verify);

/*
 * verify(tbl) -> (ok, rows_checked, chains, problems, first_problem)
 */
Datum
verify(PG_FUNCTION_ARGS)
{
	VerifyState st;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.verify must not be null")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(&st, 0, sizeof(st));
	st.result_cxt = CurrentMemoryContext;
	VerifyTable(PG_GETARG_OID(0), &st);

	values[0] = BoolGetDatum(st.problems == 0);
	values[1] = Int64GetDatum(st.rows_checked);
	values[2] = Int32GetDatum(st.chains_seen);
	values[3] = Int64GetDatum(st.problems);
	if (st.first_problem)
		values[4] = CStringGetTextDatum(st.first_problem);
	else
		nulls[4] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

PG_FUNCTION_INFO_V1(verify_problems);

/*
 * verify_problems(tbl) -> setof (chain, seq, kind, detail)
 */
Datum
verify_problems(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	VerifyState st;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.verify_problems must not be null")));
	InitMaterializedSRF(fcinfo, 0);

	memset(&st, 0, sizeof(st));
	st.result_cxt = CurrentMemoryContext;
	st.store = rsinfo->setResult;
	st.store_desc = rsinfo->setDesc;
	VerifyTable(PG_GETARG_OID(0), &st);
	return (Datum) 0;
}
