/*-------------------------------------------------------------------------
 *
 * chain.c
 *	  Chain state: which chain a transaction writes, its head, and the
 *	  shared-memory cache of committed heads.
 *	  Layer core/ (docs/architecture.md).
 *
 * Terms: a "chain" is (table, chain number); its "head" is the position and
 * hash of its last committed row.  A transaction "holds" a chain from its
 * first insert into that table until it ends.
 *
 * Locking protocol:
 *	  - Holding a chain means holding a transaction-level heavyweight lock
 *		(advisory lock space, tag (database, table OID, chain, 0x4841)) in
 *		ExclusiveLock mode, owned by the top-level transaction.  Only the
 *		holder appends to the chain, so a chain never forks; waits show in
 *		pg_locks and take part in deadlock detection.
 *	  - A writer first tries every chain without waiting, starting at one
 *		derived from its PID, and waits for one only when all are held.
 *	  - The shared hash of committed heads is protected by one LWLock (the
 *		"hipaa_audit" tranche).  The holder reads a head once, when it takes
 *		the chain, and writes it back at commit (XACT_EVENT_COMMIT runs before
 *		the transaction's locks are released, so the next holder sees it).
 *	  - A head missing from shared memory (after a restart, a crash, a
 *		promotion, or when the cache is full) is rebuilt from the table: the
 *		row with the highest position of that chain, read with a fresh
 *		snapshot while holding the chain; for a chain purged to its end,
 *		its purge anchor.
 *
 * Within a transaction the head moves tentatively, row by row.  Savepoints
 * push the head as it was when a subtransaction first touched the chain, so
 * ROLLBACK TO SAVEPOINT rewinds it; a top-level abort simply discards it.
 *
 * INSERT ... ON CONFLICT DO NOTHING runs BEFORE ROW triggers and may then
 * skip the row.  For such statements the last stamped row of a chain is
 * "pending" until the next row or the commit confirms it is really in the
 * table (an index probe that sees the transaction's own rows); otherwise
 * the head goes back one row.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

int			ha_max_cached_chains = 8192;
int			ha_verify_workers = -1;
int			ha_verify_memory = 65536;

typedef struct ChainKey
{
	Oid			dbid;
	Oid			relid;
	int32		chain;
} ChainKey;

typedef struct ChainHead
{
	ChainKey	key;
	int64		seq;
	uint8		hash[HA_HASH_LEN];
} ChainHead;

typedef struct HaShared
{
	LWLock	   *lock;
	int			nslots;			/* verify progress: one slot per backend */
	HaVerifyProgress slots[FLEXIBLE_ARRAY_MEMBER];
} HaShared;

static HaShared *Shared = NULL;
static HTAB *Heads = NULL;

/* A head as it was when a subtransaction first changed the chain. */
typedef struct SavedHead
{
	int			level;
	int64		seq;
	uint8		hash[HA_HASH_LEN];
	bool		pending;
	int64		pending_prev_seq;
	uint8		pending_prev_hash[HA_HASH_LEN];
} SavedHead;

typedef struct HeldChain
{
	Oid			relid;
	int32		chain;
	int64		seq;			/* tentative head */
	uint8		hash[HA_HASH_LEN];
	bool		dirty;			/* rows written: publish at commit */
	bool		speculative;	/* ON CONFLICT DO NOTHING seen: confirm rows */
	bool		pending;		/* last row not yet confirmed */
	int64		pending_prev_seq;
	uint8		pending_prev_hash[HA_HASH_LEN];
	List	   *saved;			/* SavedHead stack, innermost first */
} HeldChain;

/* Chains held by the current transaction; lives in TopTransactionContext. */
static List *Held = NIL;

/* Tables this transaction inserted into with ON CONFLICT DO NOTHING. */
static List *SpeculativeRels = NIL;

static Oid	ChainIndex(Relation rel, AttrNumber att_chain, AttrNumber att_seq,
					   bool require_unique);

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

static Size
SharedStructSize(void)
{
	return add_size(offsetof(HaShared, slots),
					mul_size(MaxBackends, sizeof(HaVerifyProgress)));
}

static Size
SharedSize(void)
{
	return add_size(MAXALIGN(SharedStructSize()),
					hash_estimate_size(ha_max_cached_chains, sizeof(ChainHead)));
}

static void
ChainShmemRequest(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(SharedSize());
	RequestNamedLWLockTranche("hipaa_audit", 1);
}

static void
ChainShmemStartup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup)
		prev_shmem_startup();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	Shared = ShmemInitStruct("hipaa_audit", SharedStructSize(), &found);
	if (!found)
	{
		Shared->lock = &(GetNamedLWLockTranche("hipaa_audit"))->lock;
		Shared->nslots = MaxBackends;
		for (int i = 0; i < MaxBackends; i++)
		{
			Shared->slots[i].pid = 0;
			pg_atomic_init_u64(&Shared->slots[i].rows_checked, 0);
		}
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ChainKey);
	info.entrysize = sizeof(ChainHead);
	Heads = ShmemInitHash("hipaa_audit chain heads",
						  ha_max_cached_chains, ha_max_cached_chains,
						  &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

void
HaChainShmemRequest(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = ChainShmemRequest;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = ChainShmemStartup;
}

/* ----------------------------------------------------------------
 * Verification progress: each backend writes only its own slot; readers
 * may see a slightly stale count, never a torn one (atomics).
 * ----------------------------------------------------------------
 */

HaVerifyProgress *
HaProgressSlot(void)
{
	int			i = HaMyBackendIndex();

	if (Shared == NULL || i < 0 || i >= Shared->nslots)
		return NULL;
	return &Shared->slots[i];
}

HaVerifyProgress *
HaProgressSlots(int *nslots)
{
	*nslots = Shared ? Shared->nslots : 0;
	return Shared ? Shared->slots : NULL;
}

/* ----------------------------------------------------------------
 * Shared heads
 * ----------------------------------------------------------------
 */

static void
MakeKey(ChainKey *key, Oid relid, int32 chain)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	key->relid = relid;
	key->chain = chain;
}

static bool
ReadSharedHead(Oid relid, int32 chain, int64 *seq, uint8 *hash)
{
	ChainKey	key;
	ChainHead  *head;
	bool		found = false;

	MakeKey(&key, relid, chain);
	LWLockAcquire(Shared->lock, LW_SHARED);
	head = hash_search(Heads, &key, HASH_FIND, NULL);
	if (head != NULL)
	{
		*seq = head->seq;
		memcpy(hash, head->hash, HA_HASH_LEN);
		found = true;
	}
	LWLockRelease(Shared->lock);
	return found;
}

/* Never fails: a full cache only means the head is rebuilt next time. */
static void
WriteSharedHead(Oid relid, int32 chain, int64 seq, const uint8 *hash)
{
	ChainKey	key;
	ChainHead  *head;

	MakeKey(&key, relid, chain);
	LWLockAcquire(Shared->lock, LW_EXCLUSIVE);
	head = hash_search(Heads, &key, HASH_ENTER_NULL, NULL);
	if (head != NULL)
	{
		head->seq = seq;
		memcpy(head->hash, hash, HA_HASH_LEN);
	}
	LWLockRelease(Shared->lock);
}

static void
RemoveSharedHead(Oid relid, int32 chain)
{
	ChainKey	key;

	MakeKey(&key, relid, chain);
	LWLockAcquire(Shared->lock, LW_EXCLUSIVE);
	(void) hash_search(Heads, &key, HASH_REMOVE, NULL);
	LWLockRelease(Shared->lock);
}

/*
 * Forget every cached head of a table (protect, unprotect, drop): a later
 * table with the same OID must not inherit them.
 */
void
HaChainForgetTable(Oid relid)
{
	for (int32 c = 0; c < HA_MAX_CHAINS; c++)
		RemoveSharedHead(relid, c);
}

/*
 * The head of a chain as the table says: its row with the highest position,
 * read backwards through the chain index with a fresh snapshot (the caller
 * holds the chain, so nobody else is appending, and every earlier holder has
 * committed or aborted).  A direct index scan, not SQL: the inserting role
 * may have no SELECT right, and row level security must not hide rows here.
 */
static void
RebuildHead(Relation rel, int32 chain, int64 *seq, uint8 *hash)
{
	HaShape    *shape = HaGetShape(rel);
	Oid			idxoid = HaChainIndex(rel, HA_CHAIN_INDEX_UNIQUE);
	Relation	idx;
	Snapshot	snap;
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot;

	*seq = 0;
	memset(hash, 0, HA_HASH_LEN);

	idx = index_open(idxoid, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	scan = HaIndexBeginScan(rel, idx, snap, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;

		d = slot_getattr(slot, shape->att_seq, &isnull);
		if (!isnull)
			*seq = DatumGetInt64(d);
		d = slot_getattr(slot, shape->att_hash, &isnull);
		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);

			if (VARSIZE_ANY_EXHDR(b) != HA_HASH_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("chain %d of %s ends in a row whose %s is not %d bytes",
								chain, HaRelDisplayName(RelationGetRelid(rel)),
								HA_COL_HASH, HA_HASH_LEN),
						 errhint("Run hipaa_audit.verify() on the table.")));
			memcpy(hash, VARDATA_ANY(b), HA_HASH_LEN);
		}
	}
	else
	{
		/* Every row purged (or none yet): the chain goes on from its anchor. */
		const HaProtectedEntry *entry = HaLookupProtected(RelationGetRelid(rel));

		if (entry != NULL && chain >= 0 && chain < HA_MAX_CHAINS)
		{
			HaAnchor   *anchors = HaLoadAnchors(&entry->uuid, snap);

			*seq = anchors[chain].seq;
			memcpy(hash, anchors[chain].hash, HA_HASH_LEN);
			pfree(anchors);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
}

/* ----------------------------------------------------------------
 * Taking a chain
 * ----------------------------------------------------------------
 */

static LockAcquireResult
LockChain(Oid relid, int32 chain, bool dontWait)
{
	LOCKTAG		tag;
	ResourceOwner save = CurrentResourceOwner;
	LockAcquireResult res;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, relid, (uint32) chain, HA_LOCKTAG_FIELD4);
	/* Held until the top-level transaction ends, whatever savepoints do. */
	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		res = LockAcquire(&tag, ExclusiveLock, false, dontWait);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = save;
	}
	PG_END_TRY();
	return res;
}

static HeldChain *
FindHeld(Oid relid)
{
	ListCell   *lc;

	foreach(lc, Held)
	{
		HeldChain  *hc = lfirst(lc);

		if (hc->relid == relid)
			return hc;
	}
	return NULL;
}

static HeldChain *
TakeChain(Relation rel, const HaProtectedEntry *entry)
{
	Oid			relid = RelationGetRelid(rel);
	int32		nchains = Max(entry->chains, 1);
	int32		start = MyProcPid % nchains;
	int32		chain = -1;
	HeldChain  *hc;
	MemoryContext old;

	for (int32 i = 0; i < nchains; i++)
	{
		int32		c = (start + i) % nchains;

		if (LockChain(relid, c, true) != LOCKACQUIRE_NOT_AVAIL)
		{
			chain = c;
			break;
		}
	}
	if (chain < 0)
	{
		chain = start;
		(void) LockChain(relid, chain, false);
	}

	old = MemoryContextSwitchTo(TopTransactionContext);
	hc = palloc0(sizeof(HeldChain));
	hc->relid = relid;
	hc->chain = chain;
	if (!ReadSharedHead(relid, chain, &hc->seq, hc->hash))
	{
		RebuildHead(rel, chain, &hc->seq, hc->hash);
		WriteSharedHead(relid, chain, hc->seq, hc->hash);
	}
	Held = lappend(Held, hc);
	MemoryContextSwitchTo(old);
	return hc;
}

/* ----------------------------------------------------------------
 * Confirming rows of ON CONFLICT DO NOTHING statements
 * ----------------------------------------------------------------
 */

static Oid
ChainIndex(Relation rel, AttrNumber att_chain, AttrNumber att_seq,
		   bool require_unique)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			result = InvalidOid;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = idx->rd_index;

		/*
		 * Only an index that orders and finds exactly what the chain walk
		 * expects: full (no predicate), plain columns, PostgreSQL's own
		 * integer btree operator classes.  Any index meeting this is as good
		 * as any other, so which one is chosen cannot be steered.  The
		 * predicate and expressions are tested for absence in the catalog
		 * row, never read through the relcache: that would fold them, and
		 * run the table owner's IMMUTABLE functions as whoever verifies.
		 */
		if ((form->indisunique || !require_unique) &&
			idx->rd_rel->relam == BTREE_AM_OID &&
			form->indisvalid && form->indisready && form->indislive &&
			form->indnkeyatts == 2 &&
			form->indkey.values[0] == att_chain &&
			form->indkey.values[1] == att_seq &&
			idx->rd_opfamily[0] == INTEGER_BTREE_FAM_OID &&
			idx->rd_opfamily[1] == INTEGER_BTREE_FAM_OID &&
			(idx->rd_indoption[0] & (INDOPTION_DESC | INDOPTION_NULLS_FIRST)) == 0 &&
			(idx->rd_indoption[1] & (INDOPTION_DESC | INDOPTION_NULLS_FIRST)) == 0 &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL))
			result = RelationGetRelid(idx);
		index_close(idx, AccessShareLock);
		if (OidIsValid(result))
			break;
	}
	list_free(indexes);
	return result;
}

/*
 * The (audit_chain, audit_seq) btree indexes of a protected table, looked up
 * once: the unique one protect() made, and any, for verify() after someone
 * replaced it.  Kept with the shape: creating, dropping or validating an
 * index invalidates the table's relcache entry, and with it the shape.
 */
static Oid
ChainIndexOf(Relation rel, HaChainIndexNeed need)
{
	HaShape    *shape = HaGetShape(rel);

	if (!shape->index_known)
	{
		shape->index_unique = ChainIndex(rel, shape->att_chain, shape->att_seq, true);
		shape->index_any = OidIsValid(shape->index_unique) ? shape->index_unique :
			ChainIndex(rel, shape->att_chain, shape->att_seq, false);
		shape->index_known = true;
	}
	return need == HA_CHAIN_INDEX_UNIQUE ? shape->index_unique : shape->index_any;
}

/*
 * The chain index of a protected table, for every reader and writer of its
 * chains: the unique one (writers, purge, confirmation) or, for verify(),
 * any that orders the same way.  None is an error with one SQLSTATE,
 * data_corrupted: hipaa_audit never drops it from a table that holds rows
 * (an empty table may lose it and get it back), so a table without one was
 * changed behind the extension's back.
 */
Oid
HaChainIndex(Relation rel, HaChainIndexNeed need)
{
	Oid			idxoid = ChainIndexOf(rel, need);
	const char *name;

	if (OidIsValid(idxoid))
		return idxoid;
	name = HaRelDisplayName(RelationGetRelid(rel));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 need == HA_CHAIN_INDEX_UNIQUE ?
			 errmsg("protected table %s lacks its unique index on (%s, %s)",
					name, HA_COL_CHAIN, HA_COL_SEQ) :
			 errmsg("protected table %s has lost its index on (%s, %s)",
					name, HA_COL_CHAIN, HA_COL_SEQ),
			 errdetail("hipaa_audit never drops it while the table holds rows; "
					   "only a full, ascending, unique btree index on the two "
					   "columns serves the chains."),
			 errhint("Recreate it with CREATE UNIQUE INDEX ON %s (%s, %s).",
					 name, HA_COL_CHAIN, HA_COL_SEQ)));
	return InvalidOid;			/* keep the compiler quiet */
}

/* Is this the unique (audit_chain, audit_seq) index of its table? */
bool
HaIsChainIndex(Oid indexid)
{
	Oid			tableid = IndexGetRelation(indexid, true);
	Relation	rel;
	Oid			chainidx;

	if (!OidIsValid(tableid))
		return false;
	rel = table_open(tableid, AccessShareLock);
	chainidx = ChainIndexOf(rel, HA_CHAIN_INDEX_UNIQUE);
	table_close(rel, AccessShareLock);
	return chainidx == indexid;
}

/* Is the row (chain, seq) in the table, counting our own uncommitted rows? */
static bool
RowPresent(Oid relid, int32 chain, int64 seq)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Oid			idxoid = HaChainIndex(rel, HA_CHAIN_INDEX_UNIQUE);
	Relation	idx;
	IndexScanDesc scan;
	ScanKeyData keys[2];
	TupleTableSlot *slot;
	bool		found;

	idx = index_open(idxoid, AccessShareLock);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(seq));
	slot = table_slot_create(rel, NULL);
	scan = HaIndexBeginScan(rel, idx, SnapshotSelf, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

static void
ConfirmPending(HeldChain *hc)
{
	if (!hc->pending)
		return;
	hc->pending = false;
	if (!RowPresent(hc->relid, hc->chain, hc->seq))
	{
		/* The row was skipped (a conflict): the head goes back one row. */
		hc->seq = hc->pending_prev_seq;
		memcpy(hc->hash, hc->pending_prev_hash, HA_HASH_LEN);
	}
}

void
HaChainMarkSpeculative(Oid relid)
{
	HeldChain  *hc = FindHeld(relid);

	if (hc != NULL)
		hc->speculative = true;
	else
	{
		/* Remember it for when the chain is taken in this statement. */
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		SpeculativeRels = list_append_unique_oid(SpeculativeRels, relid);
		MemoryContextSwitchTo(old);
	}
}

/* ----------------------------------------------------------------
 * The insert trigger's interface
 * ----------------------------------------------------------------
 */

/*
 * Where the next row of this transaction goes: its chain, its position and
 * the hash it links to.  Takes a chain on the first call per table.
 */
void
HaChainNext(Relation rel, const HaProtectedEntry *entry,
			int32 *chain, int64 *seq, uint8 prev[HA_HASH_LEN])
{
	Oid			relid = RelationGetRelid(rel);
	HeldChain  *hc = FindHeld(relid);
	int			level = GetCurrentTransactionNestLevel();

	if (hc == NULL)
	{
		hc = TakeChain(rel, entry);
		if (list_member_oid(SpeculativeRels, relid))
			hc->speculative = true;
	}
	ConfirmPending(hc);

	/* First change at this savepoint level: remember the head for rewind. */
	if (level > 1 &&
		(hc->saved == NIL || ((SavedHead *) linitial(hc->saved))->level < level))
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
		SavedHead  *sh = palloc(sizeof(SavedHead));

		sh->level = level;
		sh->seq = hc->seq;
		memcpy(sh->hash, hc->hash, HA_HASH_LEN);
		sh->pending = hc->pending;
		sh->pending_prev_seq = hc->pending_prev_seq;
		memcpy(sh->pending_prev_hash, hc->pending_prev_hash, HA_HASH_LEN);
		hc->saved = lcons(sh, hc->saved);
		MemoryContextSwitchTo(old);
	}

	*chain = hc->chain;
	*seq = hc->seq + 1;
	memcpy(prev, hc->hash, HA_HASH_LEN);
}

/* The row at (chain, seq) with this hash has been stamped. */
void
HaChainAdvance(Oid relid, int32 chain, int64 seq, const uint8 hash[HA_HASH_LEN])
{
	HeldChain  *hc = FindHeld(relid);

	if (hc == NULL || hc->chain != chain || hc->seq + 1 != seq)
		elog(ERROR, "hipaa_audit chain state out of step for relation %u", relid);
	if (hc->speculative)
	{
		hc->pending = true;
		hc->pending_prev_seq = hc->seq;
		memcpy(hc->pending_prev_hash, hc->hash, HA_HASH_LEN);
	}
	hc->seq = seq;
	memcpy(hc->hash, hash, HA_HASH_LEN);
	hc->dirty = true;
}

/* ----------------------------------------------------------------
 * Transaction boundaries
 * ----------------------------------------------------------------
 */

static void
ChainXactCallback(XactEvent event, void *arg pg_attribute_unused())
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			foreach(lc, Held)
				ConfirmPending((HeldChain *) lfirst(lc));
			break;
		case XACT_EVENT_PRE_PREPARE:
			foreach(lc, Held)
			{
				if (((HeldChain *) lfirst(lc))->dirty)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot PREPARE a transaction that has inserted rows into a protected table"),
							 errdetail("A prepared transaction would hold a chain of %s across restarts.",
									   HaRelDisplayName(((HeldChain *) lfirst(lc))->relid)),
							 errhint("Commit the audit inserts in their own transaction.")));
			}
			break;
		case XACT_EVENT_COMMIT:
			/* Still holding the chain locks: publish the new heads. */
			foreach(lc, Held)
			{
				HeldChain  *hc = lfirst(lc);

				if (hc->dirty)
					WriteSharedHead(hc->relid, hc->chain, hc->seq, hc->hash);
			}
			Held = NIL;
			SpeculativeRels = NIL;
			break;
		case XACT_EVENT_ABORT:
			{
				/* A verify() that failed or was cancelled is no longer running. */
				HaVerifyProgress *progress = HaProgressSlot();

				if (progress != NULL)
					progress->pid = 0;
			}
			Held = NIL;
			SpeculativeRels = NIL;
			break;
		case XACT_EVENT_PREPARE:
			Held = NIL;
			SpeculativeRels = NIL;
			break;
		default:
			break;
	}
}

static void
ChainSubXactCallback(SubXactEvent event, SubTransactionId mySubid pg_attribute_unused(),
					 SubTransactionId parentSubid pg_attribute_unused(),
					 void *arg pg_attribute_unused())
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* A verify() that failed inside a savepoint is no longer running. */
		HaVerifyProgress *progress = HaProgressSlot();

		if (progress != NULL)
			progress->pid = 0;
	}

	foreach(lc, Held)
	{
		HeldChain  *hc = lfirst(lc);
		SavedHead  *sh;

		if (hc->saved == NIL)
			continue;
		sh = linitial(hc->saved);
		if (sh->level < level)
			continue;			/* not touched at this level */

		hc->saved = list_delete_first(hc->saved);
		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			hc->seq = sh->seq;
			memcpy(hc->hash, sh->hash, HA_HASH_LEN);
			hc->pending = sh->pending;
			hc->pending_prev_seq = sh->pending_prev_seq;
			memcpy(hc->pending_prev_hash, sh->pending_prev_hash, HA_HASH_LEN);
			pfree(sh);
		}
		else if (hc->saved == NIL ||
				 ((SavedHead *) linitial(hc->saved))->level < level - 1)
		{
			/* The parent had not saved one: this becomes the parent's. */
			sh->level = level - 1;
			if (sh->level > 1)
				hc->saved = lcons(sh, hc->saved);
			else
				pfree(sh);
		}
		else
			pfree(sh);			/* the parent's own saved head is older */
	}
}

void
HaChainInit(void)
{
	RegisterXactCallback(ChainXactCallback, NULL);
	RegisterSubXactCallback(ChainSubXactCallback, NULL);
}

/* A slot's hash column, when it is not NULL and 32 bytes long. */
bool
HaSlotHash(TupleTableSlot *slot, AttrNumber att, uint8 *out)
{
	bytea	   *b;

	if (slot->tts_isnull[att - 1])
		return false;
	b = DatumGetByteaPP(slot->tts_values[att - 1]);
	if (VARSIZE_ANY_EXHDR(b) != HA_HASH_LEN)
		return false;
	memcpy(out, VARDATA_ANY(b), HA_HASH_LEN);
	return true;
}

/*
 * Find the row at (chain, seq) and return its stored hash (and, if asked,
 * its insertion time, DT_NOEND when NULL); with seq < 0, the chain's last
 * row.  A fresh snapshot: committed rows only, no locks beyond
 * AccessShareLock, so writers are never blocked.
 */
bool
HaChainFindRow(Relation rel, int32 chain, int64 seq, int64 *seq_out, uint8 *hash,
			   TimestampTz *at)
{
	HaShape    *shape = HaGetShape(rel);
	Oid			idxoid = HaChainIndex(rel, HA_CHAIN_INDEX_ANY);
	Relation	idx;
	Snapshot	snap;
	IndexScanDesc scan;
	ScanKeyData keys[2];
	TupleTableSlot *slot;
	bool		found = false;

	idx = index_open(idxoid, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(seq));
	scan = HaIndexBeginScan(rel, idx, snap, seq < 0 ? 1 : 2, 0);
	index_rescan(scan, keys, seq < 0 ? 1 : 2, NULL, 0);
	if (index_getnext_slot(scan, seq < 0 ? BackwardScanDirection : ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, shape->att_hash, &isnull);

		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);

			if (VARSIZE_ANY_EXHDR(b) == HA_HASH_LEN)
			{
				memcpy(hash, VARDATA_ANY(b), HA_HASH_LEN);
				found = true;
			}
		}
		d = slot_getattr(slot, shape->att_seq, &isnull);
		if (seq_out)
			*seq_out = isnull ? 0 : DatumGetInt64(d);
		if (at)
		{
			d = slot_getattr(slot, shape->att_at, &isnull);
			*at = isnull ? DT_NOEND : DatumGetTimestampTz(d);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
	return found;
}
