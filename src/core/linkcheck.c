/*-------------------------------------------------------------------------
 *
 * linkcheck.c
 *	  The links of every chain, checked from rows that arrive in any order,
 *	  in memory bounded by a setting.  Layer core/ (docs/architecture.md).
 *
 * verify() reads a table in physical order (api/verify.c): each row's hash
 * is recomputed as it is read, and what the links need of it (chain,
 * position, previous hash, stored hash, whether the hash matched) comes
 * here.  The problems reported are exactly those of a walk in position
 * order through the chain index: for each chain, rows in (position, order
 * read) order; the first row of a position is the one checked, later ones
 * are duplicates; a missing position is a gap and the row after it cannot
 * be linked; rows at positions a purge removed are purged_row_present.
 *
 * Rows mostly arrive in position order per chain (writers append), so each
 * chain advances as its next position arrives; a row that arrives early
 * waits in a buffer until the positions before it have been seen.  When
 * the buffer outgrows hipaa_audit.verify_memory, its rows go to a
 * tuplesort (which spills to temporary files within the same bound), and
 * every later row of those chains follows them; at the end the rest is
 * checked in sorted order.  Rows of chain numbers outside 0 .. chains-1
 * are all checked at the end, in sorted order.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/tuplesort.h"
#include "utils/typcache.h"

/* A sort record: big-endian, sign-flipped keys, so bytes sort as keys do. */
#define SORT_REC_LEN	(4 + 8 + 8 + HA_HASH_LEN + HA_HASH_LEN + 1)

typedef struct BufKey
{
	int32		chain;
	int32		pad;			/* zeroed: the key is hashed as bytes */
	int64		seq;
} BufKey;

typedef struct BufRow
{
	HaLinkRow	row;
	struct BufRow *next;		/* later rows of the same position */
} BufRow;

typedef struct BufEntry
{
	BufKey		key;
	BufRow		first;
} BufEntry;

typedef struct ChainState
{
	bool		seen;
	bool		spilled;		/* its later rows go to the sort */
	int64		last_seq;		/* the previous row's position (or anchor's) */
	bool		have_last;
	uint8		last_hash[HA_HASH_LEN];
} ChainState;

struct HaLinkCheck
{
	int32		chains;
	const HaAnchor *anchors;	/* HA_MAX_CHAINS entries */
	HaLinkReportFn report;
	void	   *arg;
	Size		mem_limit;		/* bytes */
	MemoryContext cxt;			/* where the checker and its sort live */
	uint64		next_ord;
	ChainState *state;			/* chains entries */
	MemoryContext bufcxt;
	HTAB	   *buf;
	int64		buffered;
	Tuplesortstate *sort;
	bool		spilled_any;
	int32		chains_seen;
	/* the chain being checked in sorted order at the end */
	int32		cur_chain;
	ChainState	cur;
	ChainState *curp;
};

static void
MakeBuffer(HaLinkCheck *lc)
{
	HASHCTL		ctl;

	MemoryContextReset(lc->bufcxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(BufKey);
	ctl.entrysize = sizeof(BufEntry);
	ctl.hcxt = lc->bufcxt;
	lc->buf = hash_create("hipaa_audit verify buffer", 1024, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	lc->buffered = 0;
}

HaLinkCheck *
HaLinkCheckBegin(int32 chains, const HaAnchor *anchors, int mem_kb,
				 HaLinkReportFn report, void *arg)
{
	HaLinkCheck *lc = palloc0(sizeof(HaLinkCheck));

	lc->chains = chains;
	lc->anchors = anchors;
	lc->report = report;
	lc->arg = arg;
	lc->mem_limit = (Size) mem_kb * 1024;
	lc->cxt = CurrentMemoryContext;
	lc->state = palloc0(sizeof(ChainState) * Max(chains, 1));
	lc->bufcxt = AllocSetContextCreate(CurrentMemoryContext,
									   "hipaa_audit verify buffer",
									   ALLOCSET_DEFAULT_SIZES);
	MakeBuffer(lc);
	lc->cur_chain = -1;
	return lc;
}

static inline bool
InAnchorRange(int32 chain)
{
	return chain >= 0 && chain < HA_MAX_CHAINS;
}

/* A chain before its first row: at zero, or at its purge anchor. */
static void
StartState(HaLinkCheck *lc, ChainState *cs, int32 chain)
{
	memset(cs, 0, sizeof(*cs));
	cs->seen = true;
	if (InAnchorRange(chain) && lc->anchors[chain].seq > 0)
	{
		cs->last_seq = lc->anchors[chain].seq;
		memcpy(cs->last_hash, lc->anchors[chain].hash, HA_HASH_LEN);
	}
	cs->have_last = true;
	lc->chains_seen++;
}

/* The row at the next position: its hashes and its link. */
static void
Consume(HaLinkCheck *lc, ChainState *cs, const HaLinkRow *r)
{
	if ((r->flags & (HA_LINK_HAVE_PREV | HA_LINK_HAVE_HASH)) !=
		(HA_LINK_HAVE_PREV | HA_LINK_HAVE_HASH))
		lc->report(lc->arg, r->chain, r->seq, "malformed",
				   "audit_prev_hash or audit_hash is NULL or not 32 bytes");
	else
	{
		if (cs->have_last && memcmp(r->prev, cs->last_hash, HA_HASH_LEN) != 0)
			lc->report(lc->arg, r->chain, r->seq, "broken_link",
					   psprintf("audit_prev_hash %s does not match the previous row's audit_hash %s",
								HaHex(r->prev, HA_HASH_LEN),
								HaHex(cs->last_hash, HA_HASH_LEN)));
		if ((r->flags & HA_LINK_HASH_OK) == 0)
			lc->report(lc->arg, r->chain, r->seq, "hash_mismatch",
					   "the row's content differs from what was hashed when it was inserted");
	}
	cs->last_seq = r->seq;
	cs->have_last = (r->flags & HA_LINK_HAVE_HASH) != 0;
	if (cs->have_last)
		memcpy(cs->last_hash, r->hash, HA_HASH_LEN);
}

static bool
ReportPurged(HaLinkCheck *lc, const HaLinkRow *r)
{
	if (InAnchorRange(r->chain) && r->seq <= lc->anchors[r->chain].seq)
	{
		lc->report(lc->arg, r->chain, r->seq, "purged_row_present",
				   psprintf("a purge receipt says positions up to " INT64_FORMAT " were removed, but this row is in the table",
							lc->anchors[r->chain].seq));
		return true;
	}
	return false;
}

static void
ReportDuplicate(HaLinkCheck *lc, const HaLinkRow *r)
{
	lc->report(lc->arg, r->chain, r->seq, "duplicate",
			   "another row has the same chain position");
}

/*
 * One row in (chain, position, order read) order, as the walk through the
 * chain index sees it.
 */
static void
CheckSorted(HaLinkCheck *lc, const HaLinkRow *r)
{
	ChainState *cs;

	if (r->chain != lc->cur_chain || lc->curp == NULL)
	{
		lc->cur_chain = r->chain;
		if (r->chain >= 0 && r->chain < lc->chains)
			lc->curp = &lc->state[r->chain];	/* started when first read */
		else
		{
			lc->curp = &lc->cur;
			StartState(lc, lc->curp, r->chain);
			lc->report(lc->arg, r->chain, r->seq, "bad_chain",
					   psprintf("the table has chains 0 to %d", lc->chains - 1));
		}
	}
	cs = lc->curp;
	if (ReportPurged(lc, r))
		return;
	if (r->seq == cs->last_seq)
	{
		ReportDuplicate(lc, r);
		return;
	}
	if (r->seq != cs->last_seq + 1)
	{
		if (cs->last_seq + 1 == r->seq - 1)
			lc->report(lc->arg, r->chain, cs->last_seq + 1, "gap",
					   psprintf("row at position " INT64_FORMAT " is missing", cs->last_seq + 1));
		else
			lc->report(lc->arg, r->chain, cs->last_seq + 1, "gap",
					   psprintf("rows at positions " INT64_FORMAT " to " INT64_FORMAT " are missing",
								cs->last_seq + 1, r->seq - 1));
		cs->have_last = false;	/* the link to the missing row cannot be checked */
	}
	Consume(lc, cs, r);
}

static void
PutSorted(HaLinkCheck *lc, const HaLinkRow *r)
{
	uint8		rec[VARHDRSZ + SORT_REC_LEN];
	uint8	   *p = rec + VARHDRSZ;
	uint32		c = pg_hton32((uint32) r->chain ^ 0x80000000U);
	uint64		s = pg_hton64((uint64) r->seq ^ UINT64CONST(0x8000000000000000));
	uint64		o = pg_hton64(r->ord);

	if (lc->sort == NULL)
	{
		TypeCacheEntry *tc = lookup_type_cache(BYTEAOID, TYPECACHE_LT_OPR);
		MemoryContext old = MemoryContextSwitchTo(lc->cxt);

		lc->sort = tuplesort_begin_datum(BYTEAOID, tc->lt_opr, InvalidOid,
										 false, Max(lc->mem_limit / 1024, 64),
										 NULL, TUPLESORT_NONE);
		MemoryContextSwitchTo(old);
	}
	SET_VARSIZE(rec, VARHDRSZ + SORT_REC_LEN);
	memcpy(p, &c, 4);
	memcpy(p + 4, &s, 8);
	memcpy(p + 12, &o, 8);
	memcpy(p + 20, r->prev, HA_HASH_LEN);
	memcpy(p + 20 + HA_HASH_LEN, r->hash, HA_HASH_LEN);
	p[20 + 2 * HA_HASH_LEN] = r->flags;
	tuplesort_putdatum(lc->sort, PointerGetDatum(rec), false);
}

static void
GetSorted(Datum d, HaLinkRow *r)
{
	bytea	   *b = DatumGetByteaPP(d);
	const uint8 *p = (const uint8 *) VARDATA_ANY(b);
	uint32		c;
	uint64		s;
	uint64		o;

	Assert(VARSIZE_ANY_EXHDR(b) == SORT_REC_LEN);
	memcpy(&c, p, 4);
	memcpy(&s, p + 4, 8);
	memcpy(&o, p + 12, 8);
	r->chain = (int32) (pg_ntoh32(c) ^ 0x80000000U);
	r->seq = (int64) (pg_ntoh64(s) ^ UINT64CONST(0x8000000000000000));
	r->ord = pg_ntoh64(o);
	memcpy(r->prev, p + 20, HA_HASH_LEN);
	memcpy(r->hash, p + 20 + HA_HASH_LEN, HA_HASH_LEN);
	r->flags = p[20 + 2 * HA_HASH_LEN];
}

/* The buffer is full: its rows, and every later row of their chains, sort. */
static void
Spill(HaLinkCheck *lc)
{
	HASH_SEQ_STATUS hs;
	BufEntry   *e;

	ereport(DEBUG1,
			(errmsg_internal("hipaa_audit: verify memory full (%d kB): " INT64_FORMAT " waiting rows go to the sort",
							 (int) (lc->mem_limit / 1024), lc->buffered)));
	hash_seq_init(&hs, lc->buf);
	while ((e = hash_seq_search(&hs)) != NULL)
	{
		if (e->key.chain >= 0 && e->key.chain < lc->chains)
			lc->state[e->key.chain].spilled = true;
		for (BufRow *br = &e->first; br != NULL; br = br->next)
			PutSorted(lc, &br->row);
	}
	lc->spilled_any = true;
	MakeBuffer(lc);
}

static void
BufferRow(HaLinkCheck *lc, const HaLinkRow *r)
{
	BufKey		key;
	BufEntry   *e;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.chain = r->chain;
	key.seq = r->seq;
	e = hash_search(lc->buf, &key, HASH_ENTER, &found);
	if (!found)
	{
		e->first.row = *r;
		e->first.next = NULL;
	}
	else
	{
		BufRow	   *br = MemoryContextAlloc(lc->bufcxt, sizeof(BufRow));
		BufRow	   *tail = &e->first;

		while (tail->next != NULL)
			tail = tail->next;
		br->row = *r;
		br->next = NULL;
		tail->next = br;
	}
	lc->buffered++;
	if ((lc->buffered & 255) == 0 &&
		MemoryContextMemAllocated(lc->bufcxt, true) > lc->mem_limit)
		Spill(lc);
}

/* Rows that waited for the position now reached. */
static void
Drain(HaLinkCheck *lc, ChainState *cs, int32 chain)
{
	/* Rows in position order (the common case) leave nothing waiting. */
	while (hash_get_num_entries(lc->buf) > 0)
	{
		BufKey		key;
		BufEntry   *e;

		memset(&key, 0, sizeof(key));
		key.chain = chain;
		key.seq = cs->last_seq + 1;
		e = hash_search(lc->buf, &key, HASH_FIND, NULL);
		if (e == NULL)
			return;
		lc->buffered--;
		Consume(lc, cs, &e->first.row);
		for (BufRow *br = e->first.next; br != NULL; br = br->next)
		{
			lc->buffered--;
			ReportDuplicate(lc, &br->row);
		}
		hash_search(lc->buf, &key, HASH_REMOVE, NULL);
	}
}

void
HaLinkCheckRow(HaLinkCheck *lc, HaLinkRow *r)
{
	ChainState *cs;

	r->ord = lc->next_ord++;
	if (r->chain < 0 || r->chain >= lc->chains)
	{
		/* Outside the table's chains: all checked at the end, sorted. */
		if (lc->spilled_any)
			PutSorted(lc, r);
		else
			BufferRow(lc, r);
		return;
	}
	cs = &lc->state[r->chain];
	if (!cs->seen)
		StartState(lc, cs, r->chain);
	if (ReportPurged(lc, r))
		return;
	if (r->seq <= cs->last_seq)
	{
		/* Every position up to last_seq has had its first row. */
		ReportDuplicate(lc, r);
		return;
	}
	if (cs->spilled)
		PutSorted(lc, r);
	else if (r->seq == cs->last_seq + 1)
	{
		Consume(lc, cs, r);
		Drain(lc, cs, r->chain);
	}
	else
		BufferRow(lc, r);
}

static int
CompareRows(const void *a, const void *b)
{
	const HaLinkRow *x = *(const HaLinkRow *const *) a;
	const HaLinkRow *y = *(const HaLinkRow *const *) b;

	if (x->chain != y->chain)
		return x->chain < y->chain ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	if (x->ord != y->ord)
		return x->ord < y->ord ? -1 : 1;
	return 0;
}

/*
 * The rows still waiting, in sorted order: what follows a gap, and chains
 * outside the table's.  Returns how many chains had rows.
 */
int32
HaLinkCheckEnd(HaLinkCheck *lc)
{
	HASH_SEQ_STATUS hs;
	BufEntry   *e;
	HaLinkRow **rows;
	int64		n = 0;
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "hipaa_audit verify sorted row",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(rowcxt);

	/* In memory: bounded by the setting, so an array of pointers is too. */
	rows = MemoryContextAllocHuge(lc->bufcxt, sizeof(HaLinkRow *) * Max(lc->buffered, 1));
	hash_seq_init(&hs, lc->buf);
	while ((e = hash_seq_search(&hs)) != NULL)
		for (BufRow *br = &e->first; br != NULL; br = br->next)
			rows[n++] = &br->row;
	qsort(rows, n, sizeof(HaLinkRow *), CompareRows);
	lc->curp = NULL;
	for (int64 i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if ((i & 1023) == 0)
			MemoryContextReset(rowcxt);
		CheckSorted(lc, rows[i]);
	}

	if (lc->sort != NULL)
	{
		Datum		d;
		bool		isnull;
		HaLinkRow	r;
		int64		i = 0;

		tuplesort_performsort(lc->sort);
		lc->curp = NULL;
		for (;;)
		{
			CHECK_FOR_INTERRUPTS();
			/* The datum is copied into rowcxt: reset before, never after. */
			if ((i++ & 1023) == 0)
				MemoryContextReset(rowcxt);
			if (!tuplesort_getdatum(lc->sort, true, HA_TUPLESORT_GETDATUM_COPY
									&d, &isnull, NULL))
				break;
			GetSorted(d, &r);
			CheckSorted(lc, &r);
		}
		tuplesort_end(lc->sort);
		lc->sort = NULL;
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(rowcxt);
	MemoryContextDelete(lc->bufcxt);
	return lc->chains_seen;
}
