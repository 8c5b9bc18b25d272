/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  hipaa_audit.verify() and hipaa_audit.verify_problems(): recompute every
 *	  row hash and every link of every chain, and report what does not match.
 *	  Layer api/ (docs/architecture.md).
 *
 * The table is read in physical order, by the backend and by PostgreSQL
 * parallel workers that each take a share of the chains (see "The scan"
 * below); the links are checked by core/linkcheck.c in memory bounded by
 * hipaa_audit.verify_memory.  Verification only reads: it runs on a hot
 * standby, and it can be cancelled at any row, in every process.
 *
 * Problem kinds:
 *	  hash_mismatch	  the row's content or header differs from what was hashed
 *	  broken_link	  audit_prev_hash differs from the previous row's audit_hash
 *	  gap			  positions are missing (rows deleted)
 *	  duplicate		  two rows share a position
 *	  bad_chain		  audit_chain outside 0 .. chains-1
 *	  malformed		  a chain column is NULL or a hash is not 32 bytes
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
#include "access/heapam.h"
#include "access/nbtree.h"
#include "access/parallel.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "storage/bufmgr.h"
#include "storage/latch.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "storage/lmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplesort.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"


/* ----------------------------------------------------------------
 * Problems, in report order
 *
 * Problems arrive from the leader and from workers in any order; they are
 * reported in one order whatever the mode: a replaced chain index first,
 * then by chain and position (at one position: bad_chain, gap,
 * purged_row_present, malformed, broken_link, hash_mismatch, duplicate),
 * then rows with NULL chain columns, then stored checkpoints and purge
 * records.  verify() keeps only the first and the count; verify_problems()
 * sorts them in memory bounded by work_mem.
 * ----------------------------------------------------------------
 */
#define GROUP_INDEX		0
#define GROUP_ROWS		1
#define GROUP_NULLS		2
#define GROUP_NOTES		3

typedef struct ProblemKey
{
	int32		group;
	int32		chain;
	int64		seq;
	int32		rank;
	int64		ord;
} ProblemKey;

typedef struct VerifyState
{
	int64		rows_checked;
	int32		chains_seen;
	int64		problems;
	int32		group;			/* of problems reported now */
	ProblemKey	first_key;
	char	   *first_problem;
	Tuplesortstate *sorted;		/* verify_problems: every problem */
	TupleDesc	sorted_desc;
	TupleTableSlot *sorted_slot;
	Tuplestorestate *store;		/* verify_problems: the result */
	TupleDesc	store_desc;
	MemoryContext result_cxt;
	/* A partitioned table: the partition checked now (1, 2, ...; 0: none) */
	int32		part;
	const char *part_name;
	bool		parent_checked; /* the caller may verify the partitioned table */
	char	  **job_names;		/* partitions verified in parallel, by job */
	/* A removal's check (HaVerifyForRemoval): every row before cutoff. */
	bool		have_cutoff;
	TimestampTz cutoff;
	int64		within_retention;	/* rows at or after it */
	/*
	 * A checkpoint's check (HaVerifyCountUpTo): only problems at or before
	 * the position the note records for their chain count.
	 */
	const int64 *upto;			/* per chain; 0: not recorded */
	int32		upto_n;
} VerifyState;

static int32
KindRank(const char *kind)
{
	static const char *const order[] = {
		"bad_chain", "gap", "purged_row_present", "malformed", "broken_link",
		"hash_mismatch", "duplicate"
	};

	for (int i = 0; i < (int) lengthof(order); i++)
		if (strcmp(kind, order[i]) == 0)
			return i;
	return (int32) lengthof(order);
}

static int
CompareKeys(const ProblemKey *a, const ProblemKey *b)
{
#define CMP(f) if (a->f != b->f) return a->f < b->f ? -1 : 1
	CMP(group);
	CMP(chain);
	CMP(seq);
	CMP(rank);
	CMP(ord);
#undef CMP
	return 0;
}

static void
StartSortedProblems(VerifyState *st)
{
	static const struct
	{
		const char *name;
		Oid			type;
		Oid			lt;
	}			cols[] = {
		{"grp", INT4OID, Int4LessOperator},
		{"chain", INT4OID, Int4LessOperator},
		{"seq", INT8OID, Int8LessOperator},
		{"rank", INT4OID, Int4LessOperator},
		{"ord", INT8OID, Int8LessOperator},
		{"kind", TEXTOID, InvalidOid},
		{"detail", TEXTOID, InvalidOid},
	};
	AttrNumber	keys[5];
	Oid			ops[5];
	Oid			colls[5];
	bool		nullsfirst[5];
	MemoryContext old = MemoryContextSwitchTo(st->result_cxt);

	st->sorted_desc = CreateTemplateTupleDesc(lengthof(cols));
	for (int i = 0; i < (int) lengthof(cols); i++)
	{
		TupleDescInitEntry(st->sorted_desc, i + 1, cols[i].name, cols[i].type, -1, 0);
		if (i < 5)
		{
			keys[i] = i + 1;
			ops[i] = cols[i].lt;
			colls[i] = InvalidOid;
			nullsfirst[i] = false;
		}
	}
	st->sorted = tuplesort_begin_heap(st->sorted_desc, 5, keys, ops, colls,
									  nullsfirst, work_mem, NULL, TUPLESORT_NONE);
	st->sorted_slot = MakeSingleTupleTableSlot(st->sorted_desc, &TTSOpsVirtual);
	MemoryContextSwitchTo(old);
}

static void
AddProblem(VerifyState *st, int32 group, int32 chain, int64 seq,
		   const char *kind, const char *detail)
{
	ProblemKey	key;

	if (st->upto != NULL && group != GROUP_INDEX && group != GROUP_NULLS &&
		(chain < 0 || chain >= st->upto_n || seq > st->upto[chain]))
		return;
	if (strcmp(kind, "within_retention") == 0)
		st->within_retention++;
	/* Partition by partition, in name order; the partitioned table's own last. */
	key.group = st->part * 4 + group;
	if (st->part_name != NULL)
		detail = psprintf("partition %s: %s", st->part_name, detail);
	key.chain = chain;
	key.seq = seq;
	key.rank = KindRank(kind);
	key.ord = st->problems++;
	if (st->first_problem == NULL || CompareKeys(&key, &st->first_key) < 0)
	{
		MemoryContext old = MemoryContextSwitchTo(st->result_cxt);

		if (st->first_problem != NULL)
			pfree(st->first_problem);
		st->first_key = key;
		st->first_problem = st->part_name != NULL ?
			psprintf("partition %s: chain %d position " INT64_FORMAT ": %s: %s",
					 st->part_name, chain, seq, kind,
					 detail + strlen("partition : ") + strlen(st->part_name)) :
			psprintf("chain %d position " INT64_FORMAT ": %s: %s",
					 chain, seq, kind, detail);
		MemoryContextSwitchTo(old);
	}
	if (st->sorted != NULL)
	{
		TupleTableSlot *slot = st->sorted_slot;

		ExecClearTuple(slot);
		slot->tts_values[0] = Int32GetDatum(key.group);
		slot->tts_values[1] = Int32GetDatum(key.chain);
		slot->tts_values[2] = Int64GetDatum(key.seq);
		slot->tts_values[3] = Int32GetDatum(key.rank);
		slot->tts_values[4] = Int64GetDatum(key.ord);
		slot->tts_values[5] = CStringGetTextDatum(kind);
		slot->tts_values[6] = CStringGetTextDatum(detail);
		memset(slot->tts_isnull, 0, sizeof(bool) * 7);
		ExecStoreVirtualTuple(slot);
		tuplesort_puttupleslot(st->sorted, slot);
	}
}

static void
Report(VerifyState *st, int32 chain, int64 seq, const char *kind,
	   const char *detail)
{
	AddProblem(st, st->group, chain, seq, kind, detail);
}

/* verify_problems(): every problem, in report order, into the result. */
static void
EmitSortedProblems(VerifyState *st)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(st->sorted_desc,
													&TTSOpsMinimalTuple);

	tuplesort_performsort(st->sorted);
	while (tuplesort_gettupleslot(st->sorted, true, false, slot, NULL))
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		slot_getallattrs(slot);
		values[0] = slot->tts_values[1];
		values[1] = slot->tts_values[2];
		values[2] = slot->tts_values[5];
		values[3] = slot->tts_values[6];
		tuplestore_putvalues(st->store, st->store_desc, values, nulls);
	}
	tuplesort_end(st->sorted);
	st->sorted = NULL;
	ExecDropSingleTupleTableSlot(slot);
}

static void
ReportStoredNote(void *arg, int32 chain, int64 seq, const char *kind,
				 const char *detail)
{
	Report((VerifyState *) arg, chain, seq, kind, detail);
}

void
HaCheckCanVerify(Oid relid)
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

/* One anchor no matching receipt lists: at its chain and position. */
static void
ReportUnlistedAnchor(void *arg, HeapTuple tup, TupleDesc desc)
{
	VerifyState *st = (VerifyState *) arg;
	bool		isnull;
	int32		chain = DatumGetInt32(heap_getattr(tup, 1, desc, &isnull));
	int64		first = DatumGetInt64(heap_getattr(tup, 2, desc, &isnull));
	int64		last = DatumGetInt64(heap_getattr(tup, 3, desc, &isnull));

	Report(st, chain, last, "anchor_without_receipt",
		   psprintf("the purge anchor of positions " INT64_FORMAT " to " INT64_FORMAT " is not listed in a stored purge receipt that matches its hash (rows removed outside purge_expired()?)",
					first, last));
	/* An unlisted anchor proves nothing: the rows it covers are missing. */
	Report(st, chain, first, "gap",
		   first == last ?
		   psprintf("row at position " INT64_FORMAT " is missing; only an unlisted purge anchor accounts for it", first) :
		   psprintf("rows at positions " INT64_FORMAT " to " INT64_FORMAT " are missing; only an unlisted purge anchor accounts for them",
					first, last));
}

/*
 * Every anchor a chain starts from must be listed in its receipt, and the
 * receipt must match its stored hash: an anchor row added without a purge
 * (to hide deleted rows) is reported at its chain and position, with the
 * rows it claims were purged as a gap.  The receipt's signature is checked
 * by verify_receipt() with the published verifier key.
 */
static void
CheckAnchorReceipts(const HaProtectedEntry *entry, VerifyState *st)
{
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];

	if (!OidIsValid(get_relname_relid(HA_TABLE_PURGE_ANCHORS, HaSchemaOid())))
		return;					/* a 0.1.0 schema: no purge ever ran */
	values[0] = UUIDPGetDatum((pg_uuid_t *) &entry->uuid);
	(void) HaRunSql(
		"SELECT a.chain, a.first_seq, a.last_seq FROM hipaa_audit.purge_anchors a "
		"WHERE a.table_uuid OPERATOR(pg_catalog.=) $1 "
		"AND NOT EXISTS (SELECT 1 FROM hipaa_audit.purge_receipts r "
		"WHERE r.id OPERATOR(pg_catalog.=) a.receipt_id "
		"AND r.table_uuid OPERATOR(pg_catalog.=) a.table_uuid "
		"AND r.hash OPERATOR(pg_catalog.=) pg_catalog.sha256("
		"'\\x68697061615f61756469742f70757267652f763100'::pg_catalog.bytea "
		"OPERATOR(pg_catalog.||) r.prev_hash OPERATOR(pg_catalog.||) pg_catalog.convert_to(r.note, 'UTF8')) "
		"AND pg_catalog.strpos(r.note, pg_catalog.format(E'\\nchain %s %s %s %s\\n', "
		"a.chain, a.first_seq, a.last_seq, pg_catalog.encode(a.anchor_hash, 'hex'))) "
		"OPERATOR(pg_catalog.>) 0) "
		"ORDER BY a.chain, a.first_seq",
		1, argtypes, values, NULL, InvalidOid, 0, ReportUnlistedAnchor, st);
	/* Each match above is a chain line: every receipt reads as one. */
	(void) HaCheckStoredReceipts(&entry->uuid, ReportStoredNote, st);
}

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

/* ----------------------------------------------------------------
 * The scan: every row in physical order, in one or more processes
 *
 * The table's chains are split into parts (chain modulo parts); each
 * participant (the leader and PostgreSQL parallel workers) claims parts
 * and, for each, reads the whole table in physical order, recomputes the
 * hash of every row of the part's chains and hands its links to a link
 * checker of its own (core/linkcheck.c).  Reading is cheap next to
 * hashing, so parts split the work that costs; a part's rows are read in
 * block order by one process, so duplicates resolve as in a walk through
 * the chain index.  Workers send their problems to the leader through a
 * message queue each.
 * ----------------------------------------------------------------
 */
#define VERIFY_KEY_SHARED	UINT64CONST(0x4841000000000001)
#define VERIFY_KEY_QUEUES	UINT64CONST(0x4841000000000002)
#define VERIFY_QUEUE_SIZE	(64 * 1024)

typedef struct VerifyShared
{
	Oid			relid;
	pg_uuid_t	uuid;
	int32		chains;
	int			nparts;
	int			mem_kb;
	int			progress_slot;	/* the leader's verify_progress() slot, or -1 */
	bool		leader_takes_parts;
	pg_atomic_uint32 next_part;
	uint8		part_of[HA_MAX_CHAINS];	/* chain -> part */
	HaAnchor	anchors[HA_MAX_CHAINS];
	/* Partitions verified in parallel: each process takes whole ones. */
	int			njobs;			/* 0: the chains of one table, above */
	pg_atomic_uint32 next_job;
	bool		have_cutoff;	/* a removal's check: rows at or after */
	TimestampTz cutoff;			/* cutoff are within_retention */
} VerifyShared;

/* One partition of a partitioned table verified in parallel. */
typedef struct VerifyJob
{
	Oid			relid;
	pg_uuid_t	uuid;
	int32		chains;
} VerifyJob;

#define VERIFY_KEY_JOBS		UINT64CONST(0x4841000000000003)

/* The part a chain belongs to; chains outside the table's by modulo. */
static inline int
PartOf(const VerifyShared *shared, int32 chain)
{
	if (chain >= 0 && chain < HA_MAX_CHAINS)
		return shared->part_of[chain];
	return (int) ((uint32) chain % (uint32) shared->nparts);
}

/*
 * Chains to parts so that each part has about as many rows: the largest
 * chain first, each to the part with the fewest rows so far.  A chain's
 * size is its head's position less its purge anchor's (index lookups).
 */
static void
BalanceParts(Relation rel, int32 chains, const HaAnchor *anchors, int nparts,
			 uint8 *part_of)
{
	int64		size[HA_MAX_CHAINS];
	int64		load[HA_MAX_CHAINS];
	bool		placed[HA_MAX_CHAINS];

	memset(load, 0, sizeof(load));
	memset(placed, 0, sizeof(placed));
	for (int c = 0; c < HA_MAX_CHAINS; c++)
	{
		int64		seq = 0;
		uint8		hash[HA_HASH_LEN];

		part_of[c] = (uint8) (c % nparts);
		size[c] = 0;
		if (c < chains && HaChainFindRow(rel, c, -1, &seq, hash, NULL))
			size[c] = Max(seq - anchors[c].seq, 0);
	}
	for (int n = 0; n < chains; n++)
	{
		int			big = -1;
		int			least = 0;

		for (int c = 0; c < chains; c++)
			if (!placed[c] && (big < 0 || size[c] > size[big]))
				big = c;
		for (int p = 1; p < nparts; p++)
			if (load[p] < load[least])
				least = p;
		placed[big] = true;
		part_of[big] = (uint8) least;
		load[least] += size[big];
	}
}

/* One participant's scan. */
typedef struct ScanCtx
{
	Relation	rel;
	Snapshot	snap;
	HaShape    *shape;
	const pg_uuid_t *uuid;
	int32		chains;
	const HaAnchor *anchors;
	int			mem_kb;
	HaVerifyProgress *progress;
	const VerifyShared *shared;
	int64		rows_checked;
	int32		chains_seen;
	/* where problems go */
	HaLinkReportFn report;
	void	   *report_arg;
	/* the leader drains its workers' queues while it reads */
	void		(*poll) (void *arg);
	void	   *poll_arg;
	/* a removal's check: every row inserted before cutoff */
	bool		have_cutoff;
	TimestampTz cutoff;
} ScanCtx;

/*
 * What the link checker needs of a row whose chain columns are not NULL:
 * its position, its hashes, and whether its hash, recomputed, matches.
 */
static void
RowToLink(HaShape *shape, const pg_uuid_t *uuid, TupleTableSlot *slot,
		  HaLinkRow *r)
{
	bool		have_prev;
	bool		have_hash;

	r->chain = DatumGetInt32(slot->tts_values[shape->att_chain - 1]);
	r->seq = DatumGetInt64(slot->tts_values[shape->att_seq - 1]);
	have_prev = HaSlotHash(slot, shape->att_prev, r->prev);
	have_hash = HaSlotHash(slot, shape->att_hash, r->hash);
	r->flags = (have_prev ? HA_LINK_HAVE_PREV : 0) | (have_hash ? HA_LINK_HAVE_HASH : 0);
	if (have_prev && have_hash)
	{
		uint8		computed[HA_HASH_LEN];

		HaRowHash(shape, uuid, r->chain, r->seq, r->prev,
				  slot->tts_values, slot->tts_isnull, computed);
		if (memcmp(computed, r->hash, HA_HASH_LEN) == 0)
			r->flags |= HA_LINK_HASH_OK;
	}
}

static void
ScanPart(ScanCtx *sc, int part)
{
	HaShape    *shape = sc->shape;
	TupleTableSlot *slot = table_slot_create(sc->rel, NULL);
	TableScanDesc scan;
	HaLinkCheck *lc;
	MemoryContext rowcxt;
	MemoryContext old;
	int64		read = 0;
	int64		unreported = 0;

	lc = HaLinkCheckBegin(sc->chains, sc->anchors, sc->mem_kb, sc->report,
						  sc->report_arg);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "hipaa_audit verify row",
								   ALLOCSET_DEFAULT_SIZES);
	/* Block order from the first block: no synchronized scan. */
	scan = table_beginscan_strat(sc->rel, sc->snap, 0, NULL, true, false);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		HaLinkRow	r;

		CHECK_FOR_INTERRUPTS();
		if ((++read & 1023) == 0)
		{
			if (sc->progress != NULL && unreported > 0)
			{
				pg_atomic_fetch_add_u64(&sc->progress->rows_checked, unreported);
				unreported = 0;
			}
			if (sc->poll != NULL)
				sc->poll(sc->poll_arg);
		}
		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		slot_getallattrs(slot);
		if (slot->tts_isnull[shape->att_chain - 1] || slot->tts_isnull[shape->att_seq - 1])
		{
			/* No chain to give it to: the first part reports it. */
			if (part == 0)
			{
				sc->rows_checked++;
				unreported++;
				sc->report(sc->report_arg, -1, -2, "malformed",
						   "a row has NULL in audit_chain or audit_seq");
			}
			MemoryContextSwitchTo(old);
			continue;
		}
		r.chain = DatumGetInt32(slot->tts_values[shape->att_chain - 1]);
		if (PartOf(sc->shared, r.chain) != part)
		{
			MemoryContextSwitchTo(old);
			continue;
		}
		sc->rows_checked++;
		unreported++;
		if (sc->have_cutoff &&
			(slot->tts_isnull[shape->att_at - 1] ||
			 DatumGetTimestampTz(slot->tts_values[shape->att_at - 1]) >= sc->cutoff))
			sc->report(sc->report_arg, r.chain,
					   DatumGetInt64(slot->tts_values[shape->att_seq - 1]),
					   "within_retention", "the row was inserted within its retention period");
		RowToLink(shape, sc->uuid, slot, &r);
		HaLinkCheckRow(lc, &r);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	if (sc->progress != NULL && unreported > 0)
		pg_atomic_fetch_add_u64(&sc->progress->rows_checked, unreported);
	sc->chains_seen += HaLinkCheckEnd(lc);
	MemoryContextDelete(rowcxt);
	ExecDropSingleTupleTableSlot(slot);
}

/* Claim parts until none is left. */
static void
ScanParts(ScanCtx *sc, VerifyShared *shared)
{
	uint32		part;

	sc->shared = shared;
	while ((part = pg_atomic_fetch_add_u32(&shared->next_part, 1)) < (uint32) shared->nparts)
		ScanPart(sc, (int) part);
}

/*
 * A problem of a worker: its position, kind and detail, to the leader; job
 * is the partition it was found in (partitions verified in parallel), or
 * -1.
 */
typedef struct WorkerProblem
{
	int32		chain;
	int32		job;
	int64		seq;
	char		kind[32];
	char		detail[FLEXIBLE_ARRAY_MEMBER];
} WorkerProblem;

/* The worker's totals, its last message: kind is empty. */
typedef struct WorkerTotals
{
	int32		chain;			/* unused */
	int32		job;			/* unused */
	int64		rows_checked;
	char		kind[32];		/* "" */
	int32		chains_seen;
} WorkerTotals;

/* Where a worker's problems go: its queue, and the partition it is in. */
typedef struct WorkerSend
{
	shm_mq_handle *mqh;
	int32		job;
} WorkerSend;

static void
SendProblem(void *arg, int32 chain, int64 seq, const char *kind,
			const char *detail)
{
	WorkerSend *ws = (WorkerSend *) arg;
	shm_mq_handle *mqh = ws->mqh;
	Size		dlen = strlen(detail) + 1;
	Size		len = offsetof(WorkerProblem, detail) + dlen;
	WorkerProblem *p = palloc0(len);

	p->chain = chain;
	p->job = ws->job;
	p->seq = seq;
	strlcpy(p->kind, kind, sizeof(p->kind));
	memcpy(p->detail, detail, dlen);
	if (shm_mq_send(mqh, len, p, false, true) != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("hipaa_audit verify worker could not reach its leader")));
	pfree(p);
}

static void PollWorkers(void *arg);

/*
 * Partitions verified in parallel: take whole partitions until none is
 * left, each read in one pass as a table of one part.  report gets a
 * WorkerSend (workers) or, through set_job, learns the partition.
 */
static void
ScanJobs(VerifyShared *shared, const VerifyJob *jobs, Snapshot snap,
		 HaVerifyProgress *progress, HaLinkReportFn report, void *report_arg,
		 void (*set_job) (void *arg, int job), void *poll_arg,
		 int64 *rows, int32 *seen)
{
	uint32		job;

	while ((job = pg_atomic_fetch_add_u32(&shared->next_job, 1)) < (uint32) shared->njobs)
	{
		ScanCtx		sc;
		VerifyShared one;

		memset(&one, 0, sizeof(one));
		one.nparts = 1;
		pg_atomic_init_u32(&one.next_part, 0);
		memset(&sc, 0, sizeof(sc));
		sc.rel = table_open(jobs[job].relid, AccessShareLock);
		sc.snap = snap;
		sc.shape = HaGetShape(sc.rel);
		sc.uuid = &jobs[job].uuid;
		sc.chains = jobs[job].chains;
		sc.anchors = HaLoadAnchors(&jobs[job].uuid, snap);
		sc.mem_kb = shared->mem_kb;
		sc.progress = progress;
		sc.report = report;
		sc.report_arg = report_arg;
		if (set_job != NULL)
			set_job(report_arg, (int) job);
		else
			((WorkerSend *) report_arg)->job = (int32) job;
		if (poll_arg != NULL)
		{
			sc.poll = PollWorkers;
			sc.poll_arg = poll_arg;
		}
		ScanParts(&sc, &one);
		*rows += sc.rows_checked;
		*seen += sc.chains_seen;
		pfree((void *) sc.anchors);
		table_close(sc.rel, AccessShareLock);
		/* Between partitions too: many small ones must not fill the queues. */
		if (poll_arg != NULL)
			PollWorkers(poll_arg);
	}
}

PGDLLEXPORT void ha_verify_worker_main(dsm_segment *seg, shm_toc *toc);

/* A parallel worker of verify(): parts of the chains, problems to the leader. */
void
ha_verify_worker_main(dsm_segment *seg, shm_toc *toc)
{
	VerifyShared *shared = shm_toc_lookup(toc, VERIFY_KEY_SHARED, false);
	char	   *queues = shm_toc_lookup(toc, VERIFY_KEY_QUEUES, false);
	shm_mq	   *mq = (shm_mq *) (queues + ParallelWorkerNumber * VERIFY_QUEUE_SIZE);
	shm_mq_handle *mqh;
	ScanCtx		sc;
	WorkerTotals totals;

	WorkerSend	ws;

	shm_mq_set_sender(mq, MyProc);
	mqh = shm_mq_attach(mq, seg, NULL);
	ws.mqh = mqh;
	ws.job = -1;

	if (shared->njobs > 0)
	{
		VerifyJob  *jobs = shm_toc_lookup(toc, VERIFY_KEY_JOBS, false);
		HaVerifyProgress *progress = NULL;
		int64		rows = 0;
		int32		seen = 0;

		if (shared->progress_slot >= 0)
		{
			int			nslots;
			HaVerifyProgress *slots = HaProgressSlots(&nslots);

			if (slots != NULL && shared->progress_slot < nslots)
				progress = &slots[shared->progress_slot];
		}
		ScanJobs(shared, jobs, GetActiveSnapshot(), progress, SendProblem, &ws,
				 NULL, NULL, &rows, &seen);
		memset(&totals, 0, sizeof(totals));
		totals.rows_checked = rows;
		totals.chains_seen = seen;
		if (shm_mq_send(mqh, sizeof(totals), &totals, false, true) != SHM_MQ_SUCCESS)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("hipaa_audit verify worker could not reach its leader")));
		return;
	}

	memset(&sc, 0, sizeof(sc));
	sc.rel = table_open(shared->relid, AccessShareLock);
	sc.snap = GetActiveSnapshot();
	sc.shape = HaGetShape(sc.rel);
	sc.uuid = &shared->uuid;
	sc.chains = shared->chains;
	sc.anchors = shared->anchors;
	sc.mem_kb = shared->mem_kb;
	if (shared->progress_slot >= 0)
	{
		int			nslots;
		HaVerifyProgress *slots = HaProgressSlots(&nslots);

		if (slots != NULL && shared->progress_slot < nslots)
			sc.progress = &slots[shared->progress_slot];
	}
	sc.report = SendProblem;
	sc.report_arg = &ws;
	sc.have_cutoff = shared->have_cutoff;
	sc.cutoff = shared->cutoff;
	ScanParts(&sc, shared);

	memset(&totals, 0, sizeof(totals));
	totals.rows_checked = sc.rows_checked;
	totals.chains_seen = sc.chains_seen;
	if (shm_mq_send(mqh, sizeof(totals), &totals, false, true) != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("hipaa_audit verify worker could not reach its leader")));
	table_close(sc.rel, AccessShareLock);
}

/* The leader's view of its workers. */
typedef struct Workers
{
	ParallelContext *pcxt;
	shm_mq_handle **queues;		/* NULL once a worker is done */
	int			nqueues;
	int			open;
	VerifyState *st;
	char	  **job_names;		/* partitions verified in parallel */
} Workers;

/* Read what the workers sent; with wait, until every one is done. */
static void
ReadWorkers(Workers *w, bool wait)
{
	while (w->open > 0)
	{
		bool		got = false;

		for (int i = 0; i < w->nqueues; i++)
		{
			Size		len;
			void	   *data;
			shm_mq_result res;

			if (w->queues[i] == NULL)
				continue;
			res = shm_mq_receive(w->queues[i], &len, &data, true);
			if (res == SHM_MQ_WOULD_BLOCK)
				continue;
			if (res == SHM_MQ_DETACHED)
			{
				/* Its error, if it failed, is raised by the interrupt below. */
				w->queues[i] = NULL;
				w->open--;
				continue;
			}
			got = true;
			if (((WorkerProblem *) data)->kind[0] == '\0')
			{
				WorkerTotals totals;

				memcpy(&totals, data, sizeof(totals));
				w->st->rows_checked += totals.rows_checked;
				w->st->chains_seen += totals.chains_seen;
			}
			else
			{
				WorkerProblem *p = (WorkerProblem *) data;
				int32		save_part = w->st->part;
				const char *save_name = w->st->part_name;

				if (p->job >= 0 && w->job_names != NULL)
				{
					w->st->part = p->job + 1;
					w->st->part_name = w->job_names[p->job];
				}
				AddProblem(w->st, p->seq == -2 ? GROUP_NULLS : GROUP_ROWS,
						   p->chain, p->seq == -2 ? -1 : p->seq, p->kind, p->detail);
				w->st->part = save_part;
				w->st->part_name = save_name;
			}
		}
		CHECK_FOR_INTERRUPTS();
		if (!wait)
			return;
		if (!got && w->open > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, 0,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

static void
PollWorkers(void *arg)
{
	ReadWorkers((Workers *) arg, false);
}

static void
LeaderReport(void *arg, int32 chain, int64 seq, const char *kind,
			 const char *detail)
{
	VerifyState *st = (VerifyState *) arg;

	if (seq == -2)				/* a row with NULL chain columns */
		AddProblem(st, GROUP_NULLS, chain, -1, kind, detail);
	else
		AddProblem(st, GROUP_ROWS, chain, seq, kind, detail);
}

/*
 * The workers' message queues (one each, in the DSM the caller sized), the
 * workers started, and the leader's view of them.
 */
static void
LaunchWorkers(ParallelContext *pcxt, int nworkers, VerifyState *st,
			  char **job_names, Workers *w)
{
	char	   *queues = shm_toc_allocate(pcxt->toc, (Size) VERIFY_QUEUE_SIZE * nworkers);

	shm_toc_insert(pcxt->toc, VERIFY_KEY_QUEUES, queues);
	w->pcxt = pcxt;
	w->st = st;
	w->job_names = job_names;
	w->nqueues = nworkers;
	w->queues = palloc0(sizeof(shm_mq_handle *) * nworkers);
	for (int i = 0; i < nworkers; i++)
	{
		shm_mq	   *mq = shm_mq_create(queues + (Size) i * VERIFY_QUEUE_SIZE,
									   VERIFY_QUEUE_SIZE);

		shm_mq_set_receiver(mq, MyProc);
		w->queues[i] = shm_mq_attach(mq, pcxt->seg, NULL);
	}
	LaunchParallelWorkers(pcxt);
	w->open = pcxt->nworkers_launched;
	for (int i = 0; i < nworkers; i++)
	{
		if (i < pcxt->nworkers_launched)
			shm_mq_set_handle(w->queues[i], pcxt->worker[i].bgwhandle);
		else
		{
			shm_mq_detach(w->queues[i]);
			w->queues[i] = NULL;
		}
	}
}

/* How many workers to ask for: the setting, the chains, the table's size. */
static int
PlanWorkers(Relation rel, int32 chains)
{
	int			n = ha_verify_workers >= 0 ? ha_verify_workers : max_parallel_workers_per_gather;

	if (IsInParallelMode() || !IsUnderPostmaster)
		return 0;
	if (RelationGetNumberOfBlocks(rel) < (BlockNumber) min_parallel_table_scan_size)
		return 0;
	/* A part per participant; no more parts than chains. */
	return Max(Min(n, chains - (parallel_leader_participation ? 1 : 0)), 0);
}

/* Every row of the table, its hash and its links, in one or more processes. */
static void
ScanTable(Relation rel, const HaProtectedEntry *entry, Snapshot snap,
		  HaAnchor *anchors, VerifyState *st)
{
	ScanCtx		sc;
	HaVerifyProgress *progress = ProgressStart(rel);
	int			nworkers = PlanWorkers(rel, entry->chains);
	int			nslots;
	HaVerifyProgress *slots = HaProgressSlots(&nslots);

	memset(&sc, 0, sizeof(sc));
	sc.rel = rel;
	sc.snap = snap;
	sc.shape = HaGetShape(rel);
	sc.uuid = &entry->uuid;
	sc.chains = entry->chains;
	sc.anchors = anchors;
	sc.mem_kb = ha_verify_memory;
	sc.progress = progress;
	sc.report = LeaderReport;
	sc.report_arg = st;
	sc.have_cutoff = st->have_cutoff;
	sc.cutoff = st->cutoff;

	if (nworkers == 0)
	{
		VerifyShared one;

		memset(&one, 0, sizeof(one));
		one.nparts = 1;
		pg_atomic_init_u32(&one.next_part, 0);
		ScanParts(&sc, &one);
	}
	else
	{
		ParallelContext *pcxt;
		VerifyShared *shared;
		Workers		w;
		int			nparts = nworkers + (parallel_leader_participation ? 1 : 0);
		uint8		part_of[HA_MAX_CHAINS];

		/* Before parallel mode: it looks up the chains' heads. */
		BalanceParts(rel, entry->chains, anchors, nparts, part_of);
		EnterParallelMode();
		PushActiveSnapshot(snap);
		pcxt = CreateParallelContext("hipaa_audit", "ha_verify_worker_main", nworkers);
		shm_toc_estimate_chunk(&pcxt->estimator, sizeof(VerifyShared));
		shm_toc_estimate_chunk(&pcxt->estimator, (Size) VERIFY_QUEUE_SIZE * nworkers);
		shm_toc_estimate_keys(&pcxt->estimator, 2);
		InitializeParallelDSM(pcxt);

		shared = shm_toc_allocate(pcxt->toc, sizeof(VerifyShared));
		/* Zeroed: DSM may be reused memory, and njobs = 0 means this mode. */
		memset(shared, 0, sizeof(VerifyShared));
		shared->have_cutoff = st->have_cutoff;
		shared->cutoff = st->cutoff;
		shared->relid = RelationGetRelid(rel);
		shared->uuid = entry->uuid;
		shared->chains = entry->chains;
		shared->mem_kb = ha_verify_memory;
		shared->progress_slot = progress != NULL ? (int) (progress - slots) : -1;
		shared->nparts = nparts;
		pg_atomic_init_u32(&shared->next_part, 0);
		memcpy(shared->part_of, part_of, sizeof(part_of));
		memcpy(shared->anchors, anchors, sizeof(HaAnchor) * HA_MAX_CHAINS);
		shm_toc_insert(pcxt->toc, VERIFY_KEY_SHARED, shared);

		LaunchWorkers(pcxt, nworkers, st, NULL, &w);
		ereport(DEBUG1,
				(errmsg_internal("hipaa_audit: verify of %s: %d of %d parallel workers launched, %d parts",
								 RelationGetRelationName(rel), pcxt->nworkers_launched,
								 nworkers, shared->nparts)));
		/* The leader reads too, unless told not to and a worker runs. */
		if (parallel_leader_participation || pcxt->nworkers_launched == 0)
		{
			sc.poll = PollWorkers;
			sc.poll_arg = &w;
			ScanParts(&sc, shared);
		}
		ReadWorkers(&w, true);
		WaitForParallelWorkersToFinish(pcxt);
		/* A part no worker took (a worker that could not start). */
		sc.poll = NULL;
		ScanParts(&sc, shared);
		DestroyParallelContext(pcxt);
		PopActiveSnapshot();
		ExitParallelMode();
	}
	st->rows_checked += sc.rows_checked;
	st->chains_seen += sc.chains_seen;
	if (progress != NULL)
		progress->pid = 0;
}

/* The chain index verification reads through; a replaced one is reported. */
static Oid
ChainIndexChecked(Relation rel, VerifyState *st)
{
	Oid			idxoid = HaChainIndex(rel, HA_CHAIN_INDEX_ANY);

	st->group = GROUP_INDEX;
	if (!HaIsChainIndex(idxoid))
		Report(st, -1, -1, "malformed",
			   "the unique index on (audit_chain, audit_seq) is missing; a non-unique one was used");
	return idxoid;
}

/*
 * The table, opened to be verified in any mode: it must exist, be protected
 * and be readable by the caller; its chain index (a replaced one is
 * reported), and a snapshot.
 */
static Relation
OpenToVerify(Oid relid, const HaProtectedEntry **entry, Oid *idxoid, Snapshot *snap,
			VerifyState *st)
{
	Relation	rel;

	HaCheckRelationExists(relid);
	*entry = HaRequireProtected(relid, "Only tables registered with hipaa_audit.protect() have chains to verify.");
	if (!st->parent_checked)
		HaCheckCanVerify(relid);
	if ((*entry)->partitioned)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is a partitioned table", HaRelDisplayName(relid)),
				 errdetail("Its rows and chains are in its partitions."),
				 errhint("Verify the whole table with hipaa_audit.verify(), or one partition with this function on the partition.")));

	rel = table_open(relid, AccessShareLock);
	*idxoid = ChainIndexChecked(rel, st);
	*snap = RegisterSnapshot(GetTransactionSnapshot());
	return rel;
}

static void
CloseVerified(Relation rel, Snapshot snap)
{
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
}

/*
 * verify() of one table: every row (hash, link, position), the stored
 * checkpoints (rows deleted from the end, history rewritten before a
 * checkpoint), the purge anchors against their receipts.
 */
static void VerifyOne(Oid relid, VerifyState *st);

static int
CompareNames(const ListCell *a, const ListCell *b)
{
	return strcmp(HaRelDisplayName(lfirst_oid(a)), HaRelDisplayName(lfirst_oid(b)));
}

/* The registered partitions of a partitioned table that exist, by name. */
static List *
PresentPartitions(Oid relid)
{
	List	   *present = NIL;
	ListCell   *lc;

	foreach(lc, HaRegisteredPartitions(relid))
		if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(lfirst_oid(lc))))
			present = lappend_oid(present, lfirst_oid(lc));
	list_sort(present, CompareNames);
	return present;
}

/*
 * verify() of a partitioned table: every registered partition in name
 * order, as one table each (its problems say which partition); then the
 * partitioned table's own account: a registered partition that is gone
 * (dropped or detached without the library, so without a receipt), a
 * partition that is not protected.
 */
/* The leader takes a partition: its problems say which. */
static void
LeaderSetJob(void *arg, int job)
{
	VerifyState *st = (VerifyState *) arg;

	st->part = job + 1;
	st->part_name = st->job_names[job];
}

/*
 * Every row of the partitions, in parallel: each process (the leader and
 * up to hipaa_audit.verify_workers workers) takes whole partitions until
 * none is left.  Partitions are many and each is read in one pass, so this
 * spreads the work without splitting a partition's chains.
 */
static void
ScanPartitions(VerifyJob *jobs, int njobs, int nworkers, Snapshot snap,
			   HaVerifyProgress *progress, VerifyState *st)
{
	ParallelContext *pcxt;
	VerifyShared *shared;
	VerifyJob  *sjobs;
	Workers		w;
	int64		rows = 0;
	int32		seen = 0;
	int			nslots;
	HaVerifyProgress *slots = HaProgressSlots(&nslots);

	EnterParallelMode();
	PushActiveSnapshot(snap);
	pcxt = CreateParallelContext("hipaa_audit", "ha_verify_worker_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(VerifyShared));
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(VerifyJob) * njobs);
	shm_toc_estimate_chunk(&pcxt->estimator, (Size) VERIFY_QUEUE_SIZE * nworkers);
	shm_toc_estimate_keys(&pcxt->estimator, 3);
	InitializeParallelDSM(pcxt);

	shared = shm_toc_allocate(pcxt->toc, sizeof(VerifyShared));
	memset(shared, 0, sizeof(VerifyShared));
	shared->mem_kb = ha_verify_memory;
	shared->progress_slot = progress != NULL ? (int) (progress - slots) : -1;
	shared->njobs = njobs;
	pg_atomic_init_u32(&shared->next_part, 0);
	pg_atomic_init_u32(&shared->next_job, 0);
	shm_toc_insert(pcxt->toc, VERIFY_KEY_SHARED, shared);
	sjobs = shm_toc_allocate(pcxt->toc, sizeof(VerifyJob) * njobs);
	memcpy(sjobs, jobs, sizeof(VerifyJob) * njobs);
	shm_toc_insert(pcxt->toc, VERIFY_KEY_JOBS, sjobs);

	LaunchWorkers(pcxt, nworkers, st, st->job_names, &w);
	ereport(DEBUG1,
			(errmsg_internal("hipaa_audit: verify of %d partitions: %d of %d parallel workers launched",
							 njobs, pcxt->nworkers_launched, nworkers)));
	if (parallel_leader_participation || pcxt->nworkers_launched == 0)
		ScanJobs(shared, sjobs, snap, progress, LeaderReport, st, LeaderSetJob, &w,
				 &rows, &seen);
	ReadWorkers(&w, true);
	WaitForParallelWorkersToFinish(pcxt);
	/* A partition no worker took (a worker that could not start). */
	ScanJobs(shared, sjobs, snap, progress, LeaderReport, st, LeaderSetJob, NULL,
			 &rows, &seen);
	DestroyParallelContext(pcxt);
	PopActiveSnapshot();
	ExitParallelMode();
	st->rows_checked += rows;
	st->chains_seen += seen;
}

/*
 * verify() of a partitioned table: every registered partition, as one
 * table each (its problems say which partition, in name order): the chain
 * index, every row, then its stored checkpoints and purge records; then the
 * partitioned table's own account: a registered partition that is gone
 * (dropped or detached while the library was not loaded, so without a
 * receipt), a partition that is not protected, its stored checkpoints.
 * With workers, whole partitions are read in parallel.
 */
static void
VerifyPartitioned(Oid relid, VerifyState *st)
{
	List	   *parts;
	List	   *present;
	ListCell   *lc;
	int			n;
	int			i = 0;
	VerifyJob  *jobs;
	BlockNumber blocks = 0;
	int64		estimate = 0;
	Snapshot	snap;
	int			nworkers;
	HaVerifyProgress *progress;

	HaCheckCanVerify(relid);
	LockRelationOid(relid, AccessShareLock);
	parts = HaRegisteredPartitions(relid);
	present = PresentPartitions(relid);
	n = list_length(present);
	st->parent_checked = true;
	jobs = palloc0(sizeof(VerifyJob) * Max(n, 1));
	st->job_names = palloc0(sizeof(char *) * Max(n, 1));
	snap = RegisterSnapshot(GetTransactionSnapshot());

	/* Each partition's chain index first (a replaced one is reported). */
	foreach(lc, present)
	{
		Oid			part = lfirst_oid(lc);
		const HaProtectedEntry *entry = HaRequireProtected(part, NULL);
		Relation	rel = table_open(part, AccessShareLock);

		st->part = i + 1;
		st->part_name = st->job_names[i] = HaRelDisplayName(part);
		(void) ChainIndexChecked(rel, st);
		jobs[i].relid = part;
		jobs[i].uuid = entry->uuid;
		jobs[i].chains = entry->chains;
		blocks += RelationGetNumberOfBlocks(rel);
		estimate += (int64) Max(rel->rd_rel->reltuples, 0);
		table_close(rel, NoLock);
		i++;
	}

	/* Every row: partitions in parallel when there are several to share. */
	progress = HaProgressSlot();
	if (progress != NULL)
	{
		progress->pid = 0;
		pg_write_barrier();
		progress->relid = relid;
		progress->started = GetCurrentTimestamp();
		progress->rows_estimated = estimate;
		pg_atomic_write_u64(&progress->rows_checked, 0);
		pg_write_barrier();
		progress->pid = MyProcPid;
	}
	nworkers = ha_verify_workers >= 0 ? ha_verify_workers : max_parallel_workers_per_gather;
	if (IsInParallelMode() || !IsUnderPostmaster || n < 2 ||
		blocks < (BlockNumber) min_parallel_table_scan_size)
		nworkers = 0;
	nworkers = Max(Min(nworkers, n - (parallel_leader_participation ? 1 : 0)), 0);
	st->group = GROUP_ROWS;
	if (nworkers > 0)
		ScanPartitions(jobs, n, nworkers, snap, progress, st);
	else
	{
		/* One at a time; a single large one may still split its chains. */
		if (progress != NULL)
			progress->pid = 0;
		for (i = 0; i < n; i++)
		{
			Relation	rel = table_open(jobs[i].relid, AccessShareLock);

			LeaderSetJob(st, i);
			ScanTable(rel, HaRequireProtected(jobs[i].relid, NULL), snap,
					  HaLoadAnchors(&jobs[i].uuid, snap), st);
			table_close(rel, AccessShareLock);
		}
	}
	if (progress != NULL)
		progress->pid = 0;

	/* Each partition's stored checkpoints and purge records. */
	for (i = 0; i < n; i++)
	{
		st->part = i + 1;
		st->part_name = st->job_names[i];
		st->group = GROUP_NOTES;
		(void) HaCheckStoredCheckpoints(jobs[i].relid, ReportStoredNote, st);
		CheckAnchorReceipts(HaRequireProtected(jobs[i].relid, NULL), st);
	}
	UnregisterSnapshot(snap);

	st->part = n + 1;
	st->part_name = NULL;
	st->group = GROUP_INDEX;
	foreach(lc, parts)
	{
		Oid			part = lfirst_oid(lc);

		if (!list_member_oid(present, part))
			Report(st, -1, -1, "partition_missing",
				   psprintf("a partition protected as relation %u is gone without a receipt: it was dropped or detached while hipaa_audit was not loaded", part));
		else if (!get_rel_relispartition(part) || get_partition_parent(part, true) != relid)
			Report(st, -1, -1, "partition_missing",
				   psprintf("protected partition %s is no longer a partition of %s: it was detached while hipaa_audit was not loaded",
							HaRelDisplayName(part), HaRelDisplayName(relid)));
	}
	/* (One attached while we read is registered by the time we hold its lock.) */
	foreach(lc, find_inheritance_children(relid, AccessShareLock))
		if (!list_member_oid(parts, lfirst_oid(lc)) && !HaIsProtected(lfirst_oid(lc)))
			Report(st, -1, -1, "partition_unprotected",
				   psprintf("partition %s is not protected: it was created or attached while hipaa_audit was not loaded",
							HaRelDisplayName(lfirst_oid(lc))));
	st->group = GROUP_NOTES;
	(void) HaCheckStoredCheckpoints(relid, ReportStoredNote, st);
	st->parent_checked = false;
	st->job_names = NULL;
}

static void
VerifyTable(Oid relid, VerifyState *st)
{
	const HaProtectedEntry *entry;

	HaCheckRelationExists(relid);
	entry = HaRequireProtected(relid, "Only tables registered with hipaa_audit.protect() have chains to verify.");
	if (entry->partitioned)
		VerifyPartitioned(relid, st);
	else
		VerifyOne(relid, st);
}

static void
VerifyOne(Oid relid, VerifyState *st)
{
	Relation	rel;
	Oid			idxoid;
	Snapshot	snap;
	const HaProtectedEntry *entry;
	HaAnchor   *anchors;

	rel = OpenToVerify(relid, &entry, &idxoid, &snap, st);
	anchors = HaLoadAnchors(&entry->uuid, snap);

	ScanTable(rel, entry, snap, anchors, st);

	st->group = GROUP_NOTES;
	(void) HaCheckStoredCheckpoints(relid, ReportStoredNote, st);
	CheckAnchorReceipts(entry, st);
	CloseVerified(rel, snap);
}

/* ----------------------------------------------------------------
 * Walks through the chain index
 *
 * The incremental check and the check of one chain or a time range walk
 * each chain they cover through the (audit_chain, audit_seq) index, from
 * a known start (a position and the hash the next row must link to), in
 * position order, so the link checker never buffers.
 * ----------------------------------------------------------------
 */
typedef struct Walk
{
	Relation	rel;
	Relation	idx;
	Snapshot	snap;
	HaShape    *shape;
	const pg_uuid_t *uuid;
	TupleTableSlot *slot;
	MemoryContext rowcxt;
	HaLinkCheck *lc;
	VerifyState *st;
} Walk;

static void
WalkBegin(Walk *w, Relation rel, Oid idxoid, Snapshot snap,
		  const HaProtectedEntry *entry, const HaAnchor *starts, VerifyState *st)
{
	w->rel = rel;
	w->snap = snap;
	w->shape = HaGetShape(rel);
	w->uuid = &entry->uuid;
	w->idx = index_open(idxoid, AccessShareLock);
	w->slot = table_slot_create(rel, NULL);
	w->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "hipaa_audit verify row",
									  ALLOCSET_DEFAULT_SIZES);
	w->lc = HaLinkCheckBegin(entry->chains, starts, ha_verify_memory, LeaderReport, st);
	w->st = st;
}

/*
 * Feed chain c's rows from position "from" on to the link checker; with
 * "to" >= 0, stop after the first row past it (that row links to the last
 * one of the range, so rows deleted at the range's end show as a gap).
 */
static void
WalkChain(Walk *w, int32 c, int64 from, int64 to)
{
	ScanKeyData keys[2];
	IndexScanDesc scan;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(c));
	ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(from));
	scan = HaIndexBeginScan(w->rel, w->idx, w->snap, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, w->slot))
	{
		HaLinkRow	r;
		MemoryContext old;
		bool		past = false;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(w->rowcxt);
		old = MemoryContextSwitchTo(w->rowcxt);
		slot_getallattrs(w->slot);
		w->st->rows_checked++;
		if (!w->slot->tts_isnull[w->shape->att_chain - 1] &&
			!w->slot->tts_isnull[w->shape->att_seq - 1])
		{
			RowToLink(w->shape, w->uuid, w->slot, &r);
			HaLinkCheckRow(w->lc, &r);
			past = (to >= 0 && r.seq > to);
		}
		MemoryContextSwitchTo(old);
		if (past)
			break;
	}
	index_endscan(scan);
}

static void
WalkEnd(Walk *w)
{
	w->st->chains_seen = HaLinkCheckEnd(w->lc);
	MemoryContextDelete(w->rowcxt);
	ExecDropSingleTupleTableSlot(w->slot);
	index_close(w->idx, AccessShareLock);
}


/* ----------------------------------------------------------------
 * Incremental: only the rows after a checkpoint's heads
 *
 * verify(tbl, since => id) and verify(tbl, since => note, key => vkey)
 * start every chain at the head the checkpoint recorded (or at the chain's
 * purge anchor, when a purge has passed it), check that the head row is
 * still there with the recorded hash (and re-hash its content), and walk
 * the rows after it through the chain index, linking the first of them to
 * the recorded hash.  The purge anchors must be listed in stored receipts.
 * Its cost grows with the rows added since, not with the table.  It does
 * not re-read the rows before the heads, nor rows of chain numbers outside
 * the table's, nor rows the chain index does not return, nor the other
 * stored checkpoints or the receipts' signatures: the full verify() and
 * verify_receipt() do.
 * ----------------------------------------------------------------
 */
typedef struct SinceLookup
{
	int64		want;
	bool		found;
	char	   *problem;
	HaNoteBody *nb;
} SinceLookup;

static void
FindSince(void *arg, int64 id, const HaNoteBody *nb, const char *problem)
{
	SinceLookup *sl = (SinceLookup *) arg;

	if (id != sl->want || sl->found)
		return;
	sl->found = true;
	if (problem != NULL)
		sl->problem = pstrdup(problem);
	else
		memcpy(sl->nb, nb, sizeof(HaNoteBody));
}

/* The heads of stored checkpoint "since" of the table. */
static HaNoteBody *
StoredHeads(Oid relid, const HaProtectedEntry *entry, int64 since)
{
	SinceLookup sl;

	memset(&sl, 0, sizeof(sl));
	sl.want = since;
	sl.nb = palloc0(sizeof(HaNoteBody));
	(void) HaScanStoredNotes(false, &entry->uuid, FindSince, &sl);
	if (!sl.found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("checkpoint " INT64_FORMAT " is not a stored checkpoint of table %s",
						since, HaRelDisplayName(relid)),
				 errhint("hipaa_audit.checkpoints lists each table's stored checkpoints; verify(tbl) without since checks the whole table.")));
	if (sl.problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored checkpoint " INT64_FORMAT " of table %s cannot be read: %s",
						since, HaRelDisplayName(relid), sl.problem),
				 errhint("Run hipaa_audit.verify(tbl) to check the whole table.")));
	return sl.nb;
}

/*
 * The heads of a signed checkpoint note given by the caller: it must carry
 * a valid signature by the verifier key and be a checkpoint of this table.
 * The note and key are checked as verify_checkpoint() checks them; the
 * rows are not (that is what this run does).
 */
static HaNoteBody *
NoteHeads(Oid relid, const HaProtectedEntry *entry, text *note, text *key)
{
	HaNoteCheck nc;
	HaSplitNote *sn = palloc0(sizeof(HaSplitNote));
	HaNoteBody *nb = palloc0(sizeof(HaNoteBody));
	char	   *name;
	uint8		id[4];
	uint8		pub[HA_ED25519_KEY_LEN];
	char	   *problem;
	char	   *uuid;

	memset(&nc, 0, sizeof(nc));
	if (!HaParseVerifierKey(text_to_cstring(key), &name, id, pub, NULL, &nc) ||
		!HaSplitNoteText(text_to_cstring(note), sn, &nc) ||
		!HaCheckNoteSignature(sn, name, id, pub, HA_ED25519_ALG, &nc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the checkpoint note does not verify with the given key"),
				 errdetail("%s: %s", nc.status, nc.detail ? nc.detail : "no detail"),
				 errhint("Give a note returned by hipaa_audit.checkpoint() and the key hipaa_audit.verifier_key() published.")));
	problem = HaParseNoteBody(sn->body, false, nb);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the signed note is not a checkpoint hipaa_audit can read"),
				 errdetail("%s", problem)));
	uuid = DatumGetCString(DirectFunctionCall1(uuid_out,
											   UUIDPGetDatum((pg_uuid_t *) &entry->uuid)));
	if (strcmp(nb->uuid, uuid) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the checkpoint note is not of table %s", HaRelDisplayName(relid)),
				 errdetail("The note names table identity %s; table %s has identity %s.",
						   nb->uuid, HaRelDisplayName(relid), uuid)));
	return nb;
}

static bool RowBefore(Walk *w, int32 c, int64 before, int64 *seq, uint8 *prev);

static void VerifySince(Oid relid, int64 since, text *note, text *key, VerifyState *st);

/*
 * The incremental check of a partitioned table: its checkpoint binds one
 * stored checkpoint per partition (by SHA-256); each partition is checked
 * from that one, a partition made after it in full, and a partition it
 * binds that is gone must have left a receipt.
 */
static void
VerifySincePartitioned(Oid relid, const HaProtectedEntry *entry, int64 since,
					   text *note, text *key, VerifyState *st)
{
	HaNoteBody *nb;
	List	   *present;
	ListCell   *lc;
	int32		n = 0;
	char	   *source = note ? pstrdup("the checkpoint note") :
		psprintf("checkpoint " INT64_FORMAT, since);

	HaCheckCanVerify(relid);
	LockRelationOid(relid, AccessShareLock);
	nb = note ? NoteHeads(relid, entry, note, key) : StoredHeads(relid, entry, since);
	present = PresentPartitions(relid);
	st->parent_checked = true;
	foreach(lc, present)
	{
		Oid			part = lfirst_oid(lc);
		const HaProtectedEntry *pe = HaRequireProtected(part, NULL);
		char	   *uuid = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) &pe->uuid)));
		const HaNotePartition *np = NULL;

		for (int i = 0; i < nb->npartitions; i++)
			if (strcmp(nb->partitions[i].uuid, uuid) == 0)
				np = &nb->partitions[i];
		st->part = ++n;
		st->part_name = HaRelDisplayName(part);
		if (np == NULL)
			VerifyOne(part, st);	/* made after the checkpoint */
		else
		{
			int64		id = HaStoredCheckpointByHash(&pe->uuid, np->hash);

			if (id == 0)
			{
				st->group = GROUP_NOTES;
				Report(st, -1, -1, "checkpoint_mismatch",
					   psprintf("the checkpoint of this partition that %s binds is not stored; the partition was checked in full", source));
				VerifyOne(part, st);
			}
			else
				VerifySince(part, id, NULL, NULL, st);
		}
	}
	st->part = n + 1;
	st->part_name = NULL;
	st->group = GROUP_INDEX;
	for (int i = 0; i < nb->npartitions; i++)
	{
		char	   *detail;
		const char *kind;
		bool		here = false;

		foreach(lc, present)
		{
			const HaProtectedEntry *pe = HaRequireProtected(lfirst_oid(lc), NULL);

			if (strcmp(DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) &pe->uuid))),
					   nb->partitions[i].uuid) == 0)
				here = true;
		}
		if (!here && (kind = HaCheckPartitionLine(&nb->partitions[i], &detail)) != NULL)
			Report(st, -1, -1, kind, psprintf("%s: %s", source, detail));
	}
	st->parent_checked = false;
}

static void
VerifySince(Oid relid, int64 since, text *note, text *key, VerifyState *st)
{
	Relation	rel;
	Oid			idxoid;
	Snapshot	snap;
	const HaProtectedEntry *entry;
	HaAnchor   *starts;
	HaNoteBody *nb;
	char	   *source;
	Walk		w;
	int64		from_seq[HA_MAX_CHAINS];

	HaCheckRelationExists(relid);
	entry = HaRequireProtected(relid, "Only tables registered with hipaa_audit.protect() have chains to verify.");
	if (entry->partitioned)
	{
		VerifySincePartitioned(relid, entry, since, note, key, st);
		return;
	}
	rel = OpenToVerify(relid, &entry, &idxoid, &snap, st);
	if (note != NULL)
	{
		nb = NoteHeads(relid, entry, note, key);
		source = pstrdup("the checkpoint note");
	}
	else
	{
		nb = StoredHeads(relid, entry, since);
		source = psprintf("checkpoint " INT64_FORMAT, since);
	}

	/* Each chain starts at the recorded head, or at a later purge anchor. */
	starts = HaLoadAnchors(&entry->uuid, snap);
	for (int32 c = 0; c < entry->chains; c++)
		from_seq[c] = starts[c].seq + 1;
	WalkBegin(&w, rel, idxoid, snap, entry, starts, st);
	st->group = GROUP_ROWS;
	for (int i = 0; i < nb->nchains; i++)
	{
		const HaNoteChain *nc = &nb->chain[i];
		int32		c = nc->chain;
		uint8		have[HA_HASH_LEN];
		uint8		prev[HA_HASH_LEN];
		int64		head;

		if (c < 0 || c >= entry->chains || nc->last < starts[c].seq)
			continue;
		if (nc->last == starts[c].seq)
		{
			/* A purge ended exactly at the head: its anchor holds the hash. */
			if (memcmp(starts[c].hash, nc->hash, HA_HASH_LEN) != 0)
				Report(st, c, nc->last, "checkpoint_mismatch",
					   psprintf("%s recorded a different row at this position than the purge anchor (history rewritten?)", source));
			continue;
		}
		if (!HaChainFindRow(rel, c, nc->last, NULL, have, NULL))
			Report(st, c, nc->last, "checkpoint_rows_missing",
				   psprintf("%s recorded a row at this position; it is gone (rows deleted from the end?)", source));
		else if (memcmp(have, nc->hash, HA_HASH_LEN) != 0)
			Report(st, c, nc->last, "checkpoint_mismatch",
				   psprintf("%s recorded a different row at this position (history rewritten?)", source));
		starts[c].seq = nc->last;
		memcpy(starts[c].hash, nc->hash, HA_HASH_LEN);
		from_seq[c] = nc->last + 1;

		/*
		 * The head row itself is read too, so a change to its content (its
		 * stored hash left as recorded) shows as a hash_mismatch.
		 */
		if (RowBefore(&w, c, nc->last + 1, &head, prev) && head == nc->last &&
			memcmp(have, nc->hash, HA_HASH_LEN) == 0)
		{
			starts[c].seq = nc->last - 1;
			memcpy(starts[c].hash, prev, HA_HASH_LEN);
			from_seq[c] = nc->last;
		}
	}

	for (int32 c = 0; c < entry->chains; c++)
		WalkChain(&w, c, from_seq[c], -1);
	WalkEnd(&w);

	/* The anchors a chain may start from must be in stored receipts. */
	st->group = GROUP_NOTES;
	CheckAnchorReceipts(entry, st);
	CloseVerified(rel, snap);
}

/* ----------------------------------------------------------------
 * One chain, or a time range: verify_rows()
 *
 * The rows whose audit_at falls in [from_time, to_time] are found through
 * an index on audit_at (protect() creates a BRIN one; a B-tree one serves
 * too): the blocks the index names are read, and each chain's lowest and
 * highest position among those rows noted.  Each chain is then walked by
 * position from the row before the lowest (its own hash recomputed, the
 * range linked to it) to the row after the highest (linked to the range),
 * so every row between is checked whatever its audit_at says, and rows
 * deleted at either edge of the range show as a gap.  Without times, the
 * one chain given is walked whole, from its purge anchor (rows still at
 * positions a purge removed are reported) to its end.
 * ----------------------------------------------------------------
 */
typedef struct RowsRange
{
	bool		have;
	int64		lo;
	int64		hi;
} RowsRange;

/*
 * An index whose first key is audit_at itself, usable for a bitmap scan
 * with >= and <=: BRIN or B-tree, full, with PostgreSQL's own default
 * operator class for timestamptz (so the scan runs no code of the table's
 * owner, and a BRIN bloom index, which cannot answer a range, is not
 * taken).  BRIN is preferred: it is the one protect() makes.
 */
static Oid
TimeIndex(Relation rel, AttrNumber att_at)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = idx->rd_index;
		Oid			am = idx->rd_rel->relam;

		if ((am == BRIN_AM_OID || am == BTREE_AM_OID) &&
			form->indisvalid && form->indisready && form->indislive &&
			form->indnatts >= 1 && form->indkey.values[0] == att_at &&
			idx->rd_opfamily[0] < FirstNormalObjectId &&
			idx->rd_opfamily[0] == get_opclass_family(GetDefaultOpClass(TIMESTAMPTZOID, am)) &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			idx->rd_opcintype[0] == TIMESTAMPTZOID &&
			(!OidIsValid(found) || am == BRIN_AM_OID))
			found = RelationGetRelid(idx);
		index_close(idx, AccessShareLock);
	}
	list_free(indexes);
	return found;
}

/*
 * The blocks an index on audit_at names for [from, to], as runs of
 * consecutive blocks (BRIN names whole block ranges; a time-ordered table
 * gives few runs).
 */
static List *
TimeBlocks(Oid idxoid, Snapshot snap, TimestampTz from, bool have_from,
		   TimestampTz to, bool have_to)
{
	Relation	idx = index_open(idxoid, AccessShareLock);
	ScanKeyData keys[2];
	int			nkeys = 0;
	IndexScanDesc scan;
	TIDBitmap  *tbm;
	HaBitmapIterator *it;
	BlockNumber blk;
	BlockNumber run_start = InvalidBlockNumber;
	BlockNumber run_end = InvalidBlockNumber;
	List	   *runs = NIL;

	if (have_from)
		ScanKeyEntryInitialize(&keys[nkeys++], 0, 1, BTGreaterEqualStrategyNumber,
							   TIMESTAMPTZOID, InvalidOid, F_TIMESTAMPTZ_GE,
							   TimestampTzGetDatum(from));
	if (have_to)
		ScanKeyEntryInitialize(&keys[nkeys++], 0, 1, BTLessEqualStrategyNumber,
							   TIMESTAMPTZOID, InvalidOid, F_TIMESTAMPTZ_LE,
							   TimestampTzGetDatum(to));
	tbm = tbm_create((Size) work_mem * 1024, NULL);
	scan = HaIndexBeginScanBitmap(idx, snap, nkeys);
	index_rescan(scan, keys, nkeys, NULL, 0);
	(void) index_getbitmap(scan, tbm);
	index_endscan(scan);
	index_close(idx, AccessShareLock);

	it = HaBitmapBegin(tbm);
	while (HaBitmapNextBlock(it, &blk))
	{
		CHECK_FOR_INTERRUPTS();
		if (run_start != InvalidBlockNumber && blk == run_end + 1)
		{
			run_end = blk;
			continue;
		}
		if (run_start != InvalidBlockNumber)
			runs = lappend(runs, list_make2_int((int) run_start, (int) (run_end - run_start + 1)));
		run_start = run_end = blk;
	}
	if (run_start != InvalidBlockNumber)
		runs = lappend(runs, list_make2_int((int) run_start, (int) (run_end - run_start + 1)));
	HaBitmapEnd(it);
	tbm_free(tbm);
	return runs;
}

/* Read the blocks; note each chain's positions among rows in the range. */
static void
FindRange(Relation rel, Snapshot snap, List *runs, const HaProtectedEntry *entry,
		  int32 only_chain, TimestampTz from, bool have_from, TimestampTz to,
		  bool have_to, RowsRange *range, VerifyState *st)
{
	HaShape    *shape = HaGetShape(rel);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ListCell   *lc;

	foreach(lc, runs)
	{
		List	   *run = lfirst(lc);
		TableScanDesc scan = table_beginscan_strat(rel, snap, 0, NULL, true, false);

		/* Block limits are heap's; any other access method reads it all. */
		if (rel->rd_rel->relam == HEAP_TABLE_AM_OID)
			heap_setscanlimits(scan, (BlockNumber) linitial_int(run), (BlockNumber) lsecond_int(run));
		else if (foreach_current_index(lc) > 0)
		{
			table_endscan(scan);
			break;
		}
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			Datum		at;
			int32		chain;
			int64		seq;

			CHECK_FOR_INTERRUPTS();
			at = slot_getattr(slot, shape->att_at, &isnull);
			if (isnull ||
				(have_from && DatumGetTimestampTz(at) < from) ||
				(have_to && DatumGetTimestampTz(at) > to))
				continue;
			chain = DatumGetInt32(slot_getattr(slot, shape->att_chain, &isnull));
			if (isnull)
			{
				if (only_chain < 0)
					AddProblem(st, GROUP_NULLS, -1, -1, "malformed",
							   "a row has NULL in audit_chain or audit_seq");
				continue;
			}
			if (only_chain >= 0 && chain != only_chain)
				continue;
			seq = DatumGetInt64(slot_getattr(slot, shape->att_seq, &isnull));
			if (isnull)
			{
				AddProblem(st, GROUP_NULLS, -1, -1, "malformed",
						   "a row has NULL in audit_chain or audit_seq");
				continue;
			}
			if (chain < 0 || chain >= entry->chains)
			{
				AddProblem(st, GROUP_ROWS, chain, seq, "bad_chain",
						   psprintf("the table has chains 0 to %d", entry->chains - 1));
				st->rows_checked++;
				continue;
			}
			if (!range[chain].have || seq < range[chain].lo)
				range[chain].lo = seq;
			if (!range[chain].have || seq > range[chain].hi)
				range[chain].hi = seq;
			range[chain].have = true;
		}
		table_endscan(scan);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/* The position and hash of chain c's last row before position "before". */
static bool
RowBefore(Walk *w, int32 c, int64 before, int64 *seq, uint8 *prev)
{
	ScanKeyData keys[2];
	IndexScanDesc scan;
	bool		found = false;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(c));
	ScanKeyInit(&keys[1], 2, BTLessStrategyNumber, F_INT8LT, Int64GetDatum(before));
	scan = HaIndexBeginScan(w->rel, w->idx, w->snap, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, w->slot))
	{
		bool		isnull;
		Datum		d;

		slot_getallattrs(w->slot);
		d = slot_getattr(w->slot, w->shape->att_seq, &isnull);
		if (!isnull)
		{
			*seq = DatumGetInt64(d);
			if (!HaSlotHash(w->slot, w->shape->att_prev, prev))
				memset(prev, 0, HA_HASH_LEN);
			found = true;
		}
	}
	index_endscan(scan);
	return found;
}

/*
 * The position of chain c's last row stamped before t, by a binary search
 * over positions [lo, hi] through the chain index (audit_at grows along a
 * chain: it is stamped under the chain's lock).  For a chain none of whose
 * rows lie in a time range: the walk starts there, so rows deleted from
 * the range still leave a gap before the next row.
 */
static bool
LastBefore(Walk *w, int32 c, TimestampTz t, int64 lo, int64 hi, int64 *result)
{
	bool		found = false;

	while (lo <= hi)
	{
		int64		mid = lo + (hi - lo) / 2;
		ScanKeyData keys[2];
		IndexScanDesc scan;
		bool		have = false;
		int64		seq = 0;
		TimestampTz at = 0;

		CHECK_FOR_INTERRUPTS();
		ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(c));
		ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(mid));
		scan = HaIndexBeginScan(w->rel, w->idx, w->snap, 2, 0);
		index_rescan(scan, keys, 2, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, w->slot))
		{
			bool		null_seq;
			bool		null_at;
			Datum		d_seq = slot_getattr(w->slot, w->shape->att_seq, &null_seq);
			Datum		d_at = slot_getattr(w->slot, w->shape->att_at, &null_at);

			if (!null_seq && !null_at)
			{
				have = true;
				seq = DatumGetInt64(d_seq);
				at = DatumGetTimestampTz(d_at);
			}
		}
		index_endscan(scan);
		if (!have || seq > hi)
			hi = mid - 1;
		else if (at < t)
		{
			*result = seq;
			found = true;
			lo = seq + 1;
		}
		else
			hi = mid - 1;
	}
	return found;
}

static void
VerifyRows(Oid relid, bool have_chain, int32 chain, bool have_from, TimestampTz from,
		   bool have_to, TimestampTz to, VerifyState *st)
{
	Relation	rel;
	Oid			idxoid;
	Oid			timeidx = InvalidOid;
	Snapshot	snap;
	const HaProtectedEntry *entry;
	HaAnchor   *starts;
	RowsRange	range[HA_MAX_CHAINS];
	Walk		w;

	if (!have_chain && !have_from && !have_to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hipaa_audit.verify_rows needs a chain, a time range, or both"),
				 errhint("hipaa_audit.verify(tbl) checks the whole table.")));
	if (have_from && have_to && from > to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_time is later than to_time"),
				 errdetail("An empty range checks nothing."),
				 errhint("Give the earlier time as from_time.")));

	/* A partitioned table: the same rows of each partition, by name. */
	HaCheckRelationExists(relid);
	entry = HaRequireProtected(relid, "Only tables registered with hipaa_audit.protect() have chains to verify.");
	if (entry->partitioned && !st->parent_checked)
	{
		ListCell   *lc;
		int32		n = 0;

		HaCheckCanVerify(relid);
		LockRelationOid(relid, AccessShareLock);
		if (have_chain && (chain < 0 || chain >= entry->chains))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("chain %d is not a chain of table %s", chain, HaRelDisplayName(relid)),
					 errdetail("The table has chains 0 to %d.", entry->chains - 1)));
		st->parent_checked = true;
		foreach(lc, PresentPartitions(relid))
		{
			st->part = ++n;
			st->part_name = HaRelDisplayName(lfirst_oid(lc));
			VerifyRows(lfirst_oid(lc), have_chain, chain, have_from, from, have_to, to, st);
		}
		st->part = 0;
		st->part_name = NULL;
		st->parent_checked = false;
		return;
	}

	rel = OpenToVerify(relid, &entry, &idxoid, &snap, st);
	if (have_chain && (chain < 0 || chain >= entry->chains))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chain %d is not a chain of table %s", chain, HaRelDisplayName(relid)),
				 errdetail("The table has chains 0 to %d.", entry->chains - 1)));
	if (have_from || have_to)
	{
		timeidx = TimeIndex(rel, HaGetShape(rel)->att_at);
		if (!OidIsValid(timeidx))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s has no index on audit_at to find a time range with",
							HaRelDisplayName(relid)),
					 errhint("CREATE INDEX ON %s USING brin (audit_at); protect() creates one on tables it protects.",
							 HaRelDisplayName(relid))));
	}

	memset(range, 0, sizeof(range));
	starts = HaLoadAnchors(&entry->uuid, snap);
	st->group = GROUP_ROWS;
	if (OidIsValid(timeidx))
		FindRange(rel, snap, TimeBlocks(timeidx, snap, from, have_from, to, have_to),
				  entry, have_chain ? chain : -1, from, have_from, to, have_to, range, st);
	else
	{
		/* One whole chain: every row of it, to its end. */
		range[chain].have = true;
		range[chain].lo = PG_INT64_MIN;
		range[chain].hi = -1;
	}

	WalkBegin(&w, rel, idxoid, snap, entry, starts, st);
	for (int32 c = 0; c < entry->chains; c++)
	{
		int64		from_seq = starts[c].seq + 1;

		if (!range[c].have && (!OidIsValid(timeidx) || (have_chain && c != chain)))
			continue;
		if (!range[c].have)
		{
			/*
			 * No row of this chain in the range: check that none was taken
			 * out of it.  The walk goes from the chain's last row before
			 * the range (or its start) to the first row after that.
			 */
			int64		head = 0;
			int64		before = 0;
			uint8		hash[HA_HASH_LEN];

			if (!HaChainFindRow(rel, c, -1, &head, hash, NULL) || head <= starts[c].seq)
				continue;
			if (have_from && LastBefore(&w, c, from, starts[c].seq + 1, head, &before))
				range[c].lo = before + 1;
			else
				range[c].lo = starts[c].seq + 1;
			range[c].hi = range[c].lo - 1;
		}
		if (range[c].lo > from_seq)
		{
			int64		before;
			uint8		prev[HA_HASH_LEN];

			/*
			 * The range links to the row before it, whose own hash is
			 * recomputed from its content and its audit_prev_hash.
			 */
			if (RowBefore(&w, c, range[c].lo, &before, prev) && before > starts[c].seq)
			{
				from_seq = before;
				starts[c].seq = before - 1;
				memcpy(starts[c].hash, prev, HA_HASH_LEN);
			}
		}
		else
		{
			/* Rows at positions a purge removed are read, and reported. */
			from_seq = range[c].lo;
		}
		WalkChain(&w, c, from_seq, range[c].hi);
	}
	WalkEnd(&w);
	st->group = GROUP_NOTES;
	CheckAnchorReceipts(entry, st);
	CloseVerified(rel, snap);
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

/*
 * For verify_checkpoint() (api/notecheck.c): the problems of the rows a
 * note records, chain c's positions 1 to upto[c] (0: a chain the note does
 * not record); a problem in another chain, or after the recorded position,
 * is not the note's.  A replaced chain index and rows with NULL chain
 * columns always count.
 */
int64
HaVerifyCountUpTo(Oid relid, const int64 *upto, int32 n)
{
	VerifyState st;

	memset(&st, 0, sizeof(st));
	st.result_cxt = CurrentMemoryContext;
	st.upto = upto;
	st.upto_n = n;
	VerifyTable(relid, &st);
	return st.problems;
}

/*
 * For the removal of a whole partition (api/purge.c): every row of the
 * table read, as verify() reads it (in parallel with workers), each also
 * checked to have been inserted before cutoff.  Returns the problems found;
 * *within, how many of them are rows within retention; *rows, the rows
 * read; *first, the first problem.  The caller holds the table's lock.
 */
int64
HaVerifyForRemoval(Oid relid, TimestampTz cutoff, int64 *within, int64 *rows,
				   char **first)
{
	VerifyState st;
	const HaProtectedEntry *entry = HaRequireProtected(relid, NULL);
	Relation	rel = table_open(relid, AccessShareLock);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());

	memset(&st, 0, sizeof(st));
	st.result_cxt = CurrentMemoryContext;
	st.have_cutoff = true;
	st.cutoff = cutoff;
	st.group = GROUP_ROWS;
	ScanTable(rel, entry, snap, HaLoadAnchors(&entry->uuid, snap), &st);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	*within = st.within_retention;
	*rows = st.rows_checked;
	*first = st.first_problem;
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
	StartSortedProblems(&st);
	VerifyTable(PG_GETARG_OID(0), &st);
	EmitSortedProblems(&st);
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * The other entry points: a summary row or one row per problem, for the
 * incremental check (a stored checkpoint, or a signed note and its key)
 * and for verify_rows().
 * ----------------------------------------------------------------
 */
typedef enum VerifyMode
{
	MODE_SINCE_ID,
	MODE_SINCE_NOTE,
	MODE_ROWS
} VerifyMode;

static void
RunMode(FunctionCallInfo fcinfo, VerifyMode mode, const char *fname, VerifyState *st)
{
	if (mode == MODE_ROWS)
	{
		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument tbl of hipaa_audit.%s must not be null", fname)));
		VerifyRows(PG_GETARG_OID(0),
				   !PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1),
				   !PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0 : PG_GETARG_TIMESTAMPTZ(2),
				   !PG_ARGISNULL(3), PG_ARGISNULL(3) ? 0 : PG_GETARG_TIMESTAMPTZ(3),
				   st);
		return;
	}
	for (int i = 0; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("arguments of hipaa_audit.%s must not be null", fname)));
	if (mode == MODE_SINCE_ID)
		VerifySince(PG_GETARG_OID(0), PG_GETARG_INT64(1), NULL, NULL, st);
	else
	{
		/* Sizes first: nothing is detoasted before they are known. */
		HaCheckNoteLength(HaTextLength(PG_GETARG_DATUM(1)));
		HaCheckKeyLength(HaTextLength(PG_GETARG_DATUM(2)));
		VerifySince(PG_GETARG_OID(0), 0, PG_GETARG_TEXT_PP(1), PG_GETARG_TEXT_PP(2), st);
	}
}

static Datum
SummaryRow(FunctionCallInfo fcinfo, VerifyMode mode, const char *fname)
{
	VerifyState st;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(&st, 0, sizeof(st));
	st.result_cxt = CurrentMemoryContext;
	RunMode(fcinfo, mode, fname, &st);

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

static Datum
ProblemRows(FunctionCallInfo fcinfo, VerifyMode mode, const char *fname)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	VerifyState st;

	InitMaterializedSRF(fcinfo, 0);
	memset(&st, 0, sizeof(st));
	st.result_cxt = CurrentMemoryContext;
	st.store = rsinfo->setResult;
	st.store_desc = rsinfo->setDesc;
	StartSortedProblems(&st);
	RunMode(fcinfo, mode, fname, &st);
	EmitSortedProblems(&st);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(verify_since);
PG_FUNCTION_INFO_V1(verify_problems_since);
PG_FUNCTION_INFO_V1(verify_since_note);
PG_FUNCTION_INFO_V1(verify_problems_since_note);
PG_FUNCTION_INFO_V1(verify_rows);
PG_FUNCTION_INFO_V1(verify_rows_problems);

/* verify(tbl, since) -> (ok, rows_checked, chains, problems, first_problem) */
Datum
verify_since(PG_FUNCTION_ARGS)
{
	return SummaryRow(fcinfo, MODE_SINCE_ID, "verify");
}

/* verify_problems(tbl, since) -> setof (chain, seq, kind, detail) */
Datum
verify_problems_since(PG_FUNCTION_ARGS)
{
	return ProblemRows(fcinfo, MODE_SINCE_ID, "verify_problems");
}

/* verify(tbl, since note, key) -> (ok, rows_checked, chains, problems, first_problem) */
Datum
verify_since_note(PG_FUNCTION_ARGS)
{
	return SummaryRow(fcinfo, MODE_SINCE_NOTE, "verify");
}

/* verify_problems(tbl, since note, key) -> setof (chain, seq, kind, detail) */
Datum
verify_problems_since_note(PG_FUNCTION_ARGS)
{
	return ProblemRows(fcinfo, MODE_SINCE_NOTE, "verify_problems");
}

/* verify_rows(tbl, chain, from_time, to_time) -> the summary row */
Datum
verify_rows(PG_FUNCTION_ARGS)
{
	return SummaryRow(fcinfo, MODE_ROWS, "verify_rows");
}

/* verify_rows_problems(tbl, chain, from_time, to_time) -> setof (chain, seq, kind, detail) */
Datum
verify_rows_problems(PG_FUNCTION_ARGS)
{
	return ProblemRows(fcinfo, MODE_ROWS, "verify_rows_problems");
}
