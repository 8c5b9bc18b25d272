/*-------------------------------------------------------------------------
 *
 * merkle.c
 *	  The Merkle tree of a protected table (RFC 6962 hashing, C2SP
 *	  tlog-tiles layout): appending leaves, roots, inclusion and
 *	  consistency proofs, and their checks.  Layer core/
 *	  (docs/architecture.md); the format is docs/merkle.md.
 *
 * Terms: a "leaf" is SHA-256(0x00 || audit_hash) of one row; a "node" at
 * height h and index i is the root of the complete subtree over leaves
 * i * 2^h to (i + 1) * 2^h - 1, so a leaf is the node at height 0.  A
 * "tile" (level L, index t) holds the nodes at height 8L numbered 256t to
 * 256t + width - 1; a node at a height between two tile levels is hashed
 * from the tile below it.  Tiles live in hipaa_audit.merkle_tiles, one
 * row per (tile, width): a tile grows by being stored again, wider, and a
 * stored hash never changes.
 *
 * Nothing here trusts the stored tiles: the caller compares a root
 * computed from them with a signed one (checkpoint() before it appends,
 * prove_row() before it answers), and a proof is checked against the
 * signed root by whoever receives it.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#define TILE_HEIGHT		8
#define TILE_WIDTH		256
#define TILE_FLUSH		128		/* full tiles written per INSERT (1 MB) */

typedef struct TileKey
{
	int32		level;
	int64		idx;
} TileKey;

typedef struct Tile
{
	TileKey		key;
	int			width;			/* hashes held */
	int			stored;			/* widest width stored (0: none) */
	uint8		hashes[TILE_WIDTH * HA_HASH_LEN];
} Tile;

struct HaTree
{
	pg_uuid_t	uuid;
	int64		size;			/* leaves appended so far */
	MemoryContext cxt;
	HTAB	   *tiles;
	int64		tiles_read;		/* for tests and benchmarks */
	bool		soft;			/* a missing hash: note it, hash zeros */
	bool		missing;
	struct HaTreeChecker *checker;	/* a scratch tree of HaTreeCheck*: no storage */
	/* Tiles filled by appends, to be written (bounded: see FlushFull) */
	int			npending;
	Datum		pending_level[TILE_FLUSH];
	Datum		pending_idx[TILE_FLUSH];
	Datum		pending_width[TILE_FLUSH];
	Datum		pending_hashes[TILE_FLUSH];
};

static void RetireFull(HaTree *t, Tile *tile);

/* ---------------------------------------------------------------- hashing */

void
HaMerkleLeaf(const uint8 *entry, size_t len, uint8 out[HA_HASH_LEN])
{
	uint8		buf[1 + HA_HASH_LEN];
	uint8	   *p = len <= HA_HASH_LEN ? buf : palloc(len + 1);

	p[0] = 0x00;
	memcpy(p + 1, entry, len);
	HaSha256Once(p, len + 1, out);
	if (p != buf)
		pfree(p);
}

void
HaMerkleNode(const uint8 *left, const uint8 *right, uint8 out[HA_HASH_LEN])
{
	uint8		buf[1 + 2 * HA_HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, HA_HASH_LEN);
	memcpy(buf + 1 + HA_HASH_LEN, right, HA_HASH_LEN);
	HaSha256Once(buf, sizeof(buf), out);
}

/* The root of an empty tree: SHA-256 of nothing (RFC 6962, 2.1). */
void
HaMerkleEmptyRoot(uint8 out[HA_HASH_LEN])
{
	HaSha256Once("", 0, out);
}

/* The largest power of two smaller than n (2 <= n <= HA_TREE_MAX_SIZE). */
static int64
SplitPoint(int64 n)
{
	Assert(n >= 2 && n <= HA_TREE_MAX_SIZE);
	return (int64) 1 << pg_leftmost_one_pos64((uint64) (n - 1));
}

/* Root of 2^h consecutive hashes (in place; h at most 8). */
static void
HashRun(uint8 *hashes, int count, uint8 out[HA_HASH_LEN])
{
	uint8		work[TILE_WIDTH * HA_HASH_LEN];

	memcpy(work, hashes, (Size) count * HA_HASH_LEN);
	while (count > 1)
	{
		for (int i = 0; i < count / 2; i++)
			HaMerkleNode(work + 2 * i * HA_HASH_LEN, work + (2 * i + 1) * HA_HASH_LEN,
						 work + i * HA_HASH_LEN);
		count /= 2;
	}
	memcpy(out, work, HA_HASH_LEN);
}

/* ------------------------------------------------------------------ tiles */

HaTree *
HaTreeOpen(const pg_uuid_t *uuid, int64 size)
{
	HaTree	   *t = palloc0(sizeof(HaTree));
	HASHCTL		ctl;

	t->uuid = *uuid;
	t->size = size;
	t->cxt = AllocSetContextCreate(CurrentMemoryContext, "hipaa_audit tree",
								   ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(TileKey);
	ctl.entrysize = sizeof(Tile);
	ctl.hcxt = t->cxt;
	t->tiles = hash_create("hipaa_audit tiles", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return t;
}

void
HaTreeClose(HaTree *t)
{
	MemoryContextDelete(t->cxt);
	pfree(t);
}

int64
HaTreeSize(const HaTree *t)
{
	return t->size;
}

/*
 * From now on a hash the tree needs but does not store is not an error:
 * it counts as zeros, and HaTreeMissing() says so (for checks that report
 * rather than fail).
 */
void
HaTreeSoft(HaTree *t)
{
	t->soft = true;
}

bool
HaTreeMissing(const HaTree *t)
{
	return t->missing;
}

int64
HaTreeTilesRead(const HaTree *t)
{
	return t->tiles_read;
}

static void
ReadTileRow(void *arg, HeapTuple tup, TupleDesc desc)
{
	Tile	   *tile = (Tile *) arg;
	bool		isnull;
	int			width;
	bytea	   *b;

	if (tile->stored > 0)
		return;
	width = DatumGetInt16(SPI_getbinval(tup, desc, 1, &isnull));
	b = DatumGetByteaPP(SPI_getbinval(tup, desc, 2, &isnull));
	if (isnull || width < 1 || width > TILE_WIDTH ||
		VARSIZE_ANY_EXHDR(b) != (Size) width * HA_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a stored Merkle tile of hipaa_audit is malformed"),
				 errdetail("Tile level %d, index " INT64_FORMAT ".",
						   tile->key.level, tile->key.idx)));
	memcpy(tile->hashes, VARDATA_ANY(b), (Size) width * HA_HASH_LEN);
	tile->width = tile->stored = width;
}

/* The tile, read (widest stored) on first use; width 0 if none is stored. */
static Tile *
GetTile(HaTree *t, int32 level, int64 idx)
{
	TileKey		key;
	Tile	   *tile;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.level = level;
	key.idx = idx;
	tile = hash_search(t->tiles, &key, HASH_ENTER, &found);
	if (!found && t->checker != NULL)
		tile->width = tile->stored = 0;
	else if (!found)
	{
		Oid			argtypes[3] = {UUIDOID, INT2OID, INT8OID};
		Datum		values[3];

		tile->width = tile->stored = 0;
		values[0] = UUIDPGetDatum(&t->uuid);
		values[1] = Int16GetDatum((int16) level);
		values[2] = Int64GetDatum(idx);
		(void) HaRunSql("SELECT width, hashes FROM hipaa_audit.merkle_tiles "
						"WHERE table_uuid OPERATOR(pg_catalog.=) $1 "
						"AND level OPERATOR(pg_catalog.=) $2 AND idx OPERATOR(pg_catalog.=) $3 "
						"ORDER BY width DESC LIMIT 1",
						3, argtypes, values, NULL, InvalidOid, 0, ReadTileRow, tile);
		t->tiles_read++;
	}
	return tile;
}

static void
TreeCorrupt(HaTree *t, const char *what, int32 height, int64 idx)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the stored Merkle tree of table identity %s is incomplete",
					DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&t->uuid)))),
			 errdetail("%s: node at height %d, index " INT64_FORMAT ".", what, height, idx),
			 errhint("Rows of hipaa_audit.merkle_tiles were removed or changed; compare with the signed checkpoints and restore them from a backup.")));
}

/* The node at height h, index i (a complete subtree the tree holds). */
static void
NodeHash(HaTree *t, int32 h, int64 i, uint8 out[HA_HASH_LEN])
{
	int32		level = h / TILE_HEIGHT;
	int			sub = h % TILE_HEIGHT;
	int64		first = i << sub;	/* at height level * 8 */
	Tile	   *tile = GetTile(t, level, first / TILE_WIDTH);
	int			start = (int) (first % TILE_WIDTH);

	if (start + (1 << sub) > tile->width)
	{
		if (!t->soft)
			TreeCorrupt(t, "a hash the tree needs is not stored", h, i);
		t->missing = true;
		memset(out, 0, HA_HASH_LEN);
		return;
	}
	HashRun(tile->hashes + (Size) start * HA_HASH_LEN, 1 << sub, out);
}

/* MTH(D[lo:hi]) (RFC 6962, 2.1), hi > lo, from complete subtrees. */
static void
SubtreeHash(HaTree *t, int64 lo, int64 hi, uint8 out[HA_HASH_LEN])
{
	int64		n = hi - lo;

	CHECK_FOR_INTERRUPTS();
	if ((n & (n - 1)) == 0 && (lo & (n - 1)) == 0)
	{
		int32		h = 0;

		while (((int64) 1 << h) < n)
			h++;
		NodeHash(t, h, lo >> h, out);
	}
	else
	{
		int64		k = SplitPoint(n);
		uint8		left[HA_HASH_LEN];
		uint8		right[HA_HASH_LEN];

		SubtreeHash(t, lo, lo + k, left);
		SubtreeHash(t, lo + k, hi, right);
		HaMerkleNode(left, right, out);
	}
}

/* The root of the tree's first n leaves (n <= its size). */
void
HaTreeRoot(HaTree *t, int64 n, uint8 out[HA_HASH_LEN])
{
	if (n < 0 || n > HA_TREE_MAX_SIZE)
		elog(ERROR, "tree size " INT64_FORMAT " out of range", n);
	if (n == 0)
		HaMerkleEmptyRoot(out);
	else
		SubtreeHash(t, 0, n, out);
}

/* The leaf hash at index i. */
void
HaTreeLeaf(HaTree *t, int64 i, uint8 out[HA_HASH_LEN])
{
	NodeHash(t, 0, i, out);
}

/*
 * Append one leaf hash.  The tiles it fills stay in memory, marked, until
 * HaTreeStore() writes them.
 */
void
HaTreeAppend(HaTree *t, const uint8 leaf[HA_HASH_LEN])
{
	uint8		h[HA_HASH_LEN];
	int64		pos = t->size;

	memcpy(h, leaf, HA_HASH_LEN);
	for (int32 level = 0; level < HA_TREE_TILE_LEVELS; level++)
	{
		int64		n = pos >> (TILE_HEIGHT * level);	/* index at height 8L */
		Tile	   *tile = GetTile(t, level, n / TILE_WIDTH);
		int			off = (int) (n % TILE_WIDTH);

		if (tile->width != off)
			TreeCorrupt(t, "the stored tile at the tree's edge has the wrong width",
						level * TILE_HEIGHT, n);
		memcpy(tile->hashes + (Size) off * HA_HASH_LEN, h, HA_HASH_LEN);
		tile->width = off + 1;
		if (tile->width < TILE_WIDTH)
			break;
		/* Full: its root is the next level's node. */
		HashRun(tile->hashes, TILE_WIDTH, h);
		RetireFull(t, tile);
	}
	t->size++;
}

/* Write tiles as rows of hipaa_audit.merkle_tiles: one INSERT. */
static void
InsertTiles(HaTree *t, int n, Datum *levels, Datum *idxs, Datum *widths, Datum *hashes)
{
	Oid			argtypes[5] = {UUIDOID, INT2ARRAYOID, INT8ARRAYOID, INT2ARRAYOID, BYTEAARRAYOID};
	Datum		values[5];

	if (n == 0)
		return;
	values[0] = UUIDPGetDatum(&t->uuid);
	values[1] = PointerGetDatum(construct_array(levels, n, INT2OID, 2, true, TYPALIGN_SHORT));
	values[2] = PointerGetDatum(construct_array(idxs, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_array(widths, n, INT2OID, 2, true, TYPALIGN_SHORT));
	values[4] = PointerGetDatum(construct_array(hashes, n, BYTEAOID, -1, false, TYPALIGN_INT));
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.merkle_tiles (table_uuid, level, idx, width, hashes) "
						  "SELECT $1, l, i, w, h FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
						  "pg_catalog.unnest($4), pg_catalog.unnest($5)) AS u(l, i, w, h)",
						  5, argtypes, values);
	for (int k = 0; k < n; k++)
		pfree(DatumGetPointer(hashes[k]));
}

static bytea *
TileBytes(const Tile *tile)
{
	bytea	   *b = MemoryContextAlloc(CurrentMemoryContext, VARHDRSZ + (Size) tile->width * HA_HASH_LEN);

	SET_VARSIZE(b, VARHDRSZ + (Size) tile->width * HA_HASH_LEN);
	memcpy(VARDATA(b), tile->hashes, (Size) tile->width * HA_HASH_LEN);
	return b;
}

static void
FlushFull(HaTree *t)
{
	InsertTiles(t, t->npending, t->pending_level, t->pending_idx, t->pending_width,
				t->pending_hashes);
	t->npending = 0;
}

/*
 * A tile that appends filled: queued for writing and dropped from memory
 * (no later append or root reads it: its root is in the tile above), so
 * that growing a tree by millions of rows (the first checkpoint of a large
 * table) holds a bounded number of tiles.
 */
static void CheckRetired(struct HaTreeChecker *c, const Tile *tile);

static void
RetireFull(HaTree *t, Tile *tile)
{
	if (t->checker != NULL)
		CheckRetired(t->checker, tile);
	else if (tile->stored < TILE_WIDTH)
	{
		t->pending_level[t->npending] = Int16GetDatum((int16) tile->key.level);
		t->pending_idx[t->npending] = Int64GetDatum(tile->key.idx);
		t->pending_width[t->npending] = Int16GetDatum(TILE_WIDTH);
		t->pending_hashes[t->npending] = PointerGetDatum(TileBytes(tile));
		t->npending++;
		if (t->npending == TILE_FLUSH)
			FlushFull(t);
	}
	(void) hash_search(t->tiles, &tile->key, HASH_REMOVE, NULL);
}

/* Write every tile filled or grown since it was read. */
void
HaTreeStore(HaTree *t)
{
	HASH_SEQ_STATUS seq;
	Tile	   *tile;

	FlushFull(t);
	hash_seq_init(&seq, t->tiles);
	while ((tile = hash_seq_search(&seq)) != NULL)
	{
		if (tile->width <= tile->stored)
			continue;
		t->pending_level[t->npending] = Int16GetDatum((int16) tile->key.level);
		t->pending_idx[t->npending] = Int64GetDatum(tile->key.idx);
		t->pending_width[t->npending] = Int16GetDatum((int16) tile->width);
		t->pending_hashes[t->npending] = PointerGetDatum(TileBytes(tile));
		tile->stored = tile->width;
		/* At most one partial tile per level: always room. */
		t->npending++;
	}
	FlushFull(t);
}

/* ----------------------------------------------------------------- proofs */

static void
InclusionPath(HaTree *t, int64 m, int64 lo, int64 hi, uint8 *out, int *n)
{
	int64		k;

	if (hi - lo <= 1)
		return;
	k = SplitPoint(hi - lo);
	if (m < lo + k)
	{
		InclusionPath(t, m, lo, lo + k, out, n);
		SubtreeHash(t, lo + k, hi, out + (Size) (*n)++ * HA_HASH_LEN);
	}
	else
	{
		InclusionPath(t, m, lo + k, hi, out, n);
		SubtreeHash(t, lo, lo + k, out + (Size) (*n)++ * HA_HASH_LEN);
	}
}

/*
 * The inclusion proof of leaf m in the tree of the first size leaves
 * (RFC 6962, 2.1.1): at most HA_TREE_MAX_PROOF hashes into out; returns
 * how many.
 */
int
HaTreeProveLeaf(HaTree *t, int64 m, int64 size, uint8 *out)
{
	int			n = 0;

	Assert(m < size && size <= t->size);
	InclusionPath(t, m, 0, size, out, &n);
	return n;
}

static void
SubProof(HaTree *t, int64 m, int64 lo, int64 hi, bool whole, uint8 *out, int *n)
{
	int64		k;

	if (m == hi - lo)
	{
		if (!whole)
			SubtreeHash(t, lo, hi, out + (Size) (*n)++ * HA_HASH_LEN);
		return;
	}
	k = SplitPoint(hi - lo);
	if (m <= k)
	{
		SubProof(t, m, lo, lo + k, whole, out, n);
		SubtreeHash(t, lo + k, hi, out + (Size) (*n)++ * HA_HASH_LEN);
	}
	else
	{
		SubProof(t, m - k, lo + k, hi, false, out, n);
		SubtreeHash(t, lo, lo + k, out + (Size) (*n)++ * HA_HASH_LEN);
	}
}

/*
 * The consistency proof from the tree of the first m leaves to that of
 * the first size (RFC 6962, 2.1.2); empty when m is 0 or m == size.
 */
int
HaTreeProveConsistency(HaTree *t, int64 m, int64 size, uint8 *out)
{
	int			n = 0;

	Assert(m <= size && size <= t->size);
	if (m == 0 || m == size)
		return 0;
	SubProof(t, m, 0, size, true, out, &n);
	return n;
}

/*
 * Check an inclusion proof (RFC 9162, 2.1.3.2): leaf hash at index of a
 * tree of size whose root is root.
 */
bool
HaMerkleCheckInclusion(const uint8 *leaf, int64 index, int64 size,
					   const uint8 *proof, int n, const uint8 *root)
{
	uint64		fn;
	uint64		sn;
	uint8		r[HA_HASH_LEN];

	if (index < 0 || index >= size)
		return false;
	fn = (uint64) index;
	sn = (uint64) size - 1;
	memcpy(r, leaf, HA_HASH_LEN);
	for (int i = 0; i < n; i++)
	{
		const uint8 *p = proof + (Size) i * HA_HASH_LEN;

		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn)
		{
			HaMerkleNode(p, r, r);
			if (!(fn & 1))
				while (fn != 0 && !(fn & 1))
				{
					fn >>= 1;
					sn >>= 1;
				}
		}
		else
			HaMerkleNode(r, p, r);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, HA_HASH_LEN) == 0;
}

/*
 * Check a consistency proof (RFC 9162, 2.1.4.2) from (m, root_m) to
 * (size, root).
 */
bool
HaMerkleCheckConsistency(int64 m, const uint8 *root_m, int64 size, const uint8 *root,
						 const uint8 *proof, int n)
{
	uint64		fn;
	uint64		sn;
	uint8		fr[HA_HASH_LEN];
	uint8		sr[HA_HASH_LEN];
	int			i = 0;

	if (m < 0 || m > size)
		return false;
	if (m == size)
		return n == 0 && memcmp(root_m, root, HA_HASH_LEN) == 0;
	if (m == 0)
		return n == 0;			/* the empty tree is a prefix of every tree */
	if (n == 0)
		return false;
	fn = (uint64) m - 1;
	sn = (uint64) size - 1;
	while (fn & 1)
	{
		fn >>= 1;
		sn >>= 1;
	}
	if ((m & (m - 1)) == 0)
	{
		/* m a power of two: the old root is the first hash of the walk. */
		memcpy(fr, root_m, HA_HASH_LEN);
		memcpy(sr, root_m, HA_HASH_LEN);
	}
	else
	{
		memcpy(fr, proof, HA_HASH_LEN);
		memcpy(sr, proof, HA_HASH_LEN);
		i = 1;
	}
	for (; i < n; i++)
	{
		const uint8 *c = proof + (Size) i * HA_HASH_LEN;

		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn)
		{
			HaMerkleNode(c, fr, fr);
			HaMerkleNode(c, sr, sr);
			if (!(fn & 1))
				while (fn != 0 && !(fn & 1))
				{
					fn >>= 1;
					sn >>= 1;
				}
		}
		else
			HaMerkleNode(sr, c, sr);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, root_m, HA_HASH_LEN) == 0 &&
		memcmp(sr, root, HA_HASH_LEN) == 0;
}

/* ------------------------------------------------------- leaves from rows */

/*
 * The rows of one chain at positions first to last, in position order,
 * each handed to fn with its leaf hash, SHA-256(0x00 || audit_hash) (NULL
 * when the row has no 32-byte audit_hash), until fn returns false.  Read
 * through the chain index with a fresh snapshot (a chain's committed rows
 * are a prefix of it).  The one scan both growing and checking a tree use.
 */
typedef bool (*ChainLeafFn) (void *arg, int64 seq, const uint8 *leaf);

static void
ScanChainLeaves(Relation rel, int32 chain, int64 first, int64 last, ChainLeafFn fn, void *arg)
{
	HaShape    *shape = HaGetShape(rel);
	Relation	idx;
	Snapshot	snap;
	IndexScanDesc scan;
	ScanKeyData keys[2];
	TupleTableSlot *slot;

	idx = index_open(HaChainIndex(rel, HA_CHAIN_INDEX_ANY), AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(first));
	scan = HaIndexBeginScan(rel, idx, snap, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, shape->att_seq, &isnull);
		int64		seq = isnull ? -1 : DatumGetInt64(d);
		bytea	   *b;
		uint8		leaf[HA_HASH_LEN];
		bool		have = false;

		CHECK_FOR_INTERRUPTS();
		if (seq > last)
			break;
		d = slot_getattr(slot, shape->att_hash, &isnull);
		b = isnull ? NULL : DatumGetByteaPP(d);
		if (b != NULL && VARSIZE_ANY_EXHDR(b) == HA_HASH_LEN)
		{
			HaMerkleLeaf((const uint8 *) VARDATA_ANY(b), HA_HASH_LEN, leaf);
			have = true;
		}
		if (!fn(arg, seq, have ? leaf : NULL))
			break;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
}

typedef struct LeafAppend
{
	HaTree	   *t;
	Relation	rel;
	int32		chain;
	int64		expect;
	int64		upto;
} LeafAppend;

static bool
AppendRow(void *arg, int64 seq, const uint8 *leaf)
{
	LeafAppend *a = (LeafAppend *) arg;

	if (seq != a->expect)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("chain %d of table %s has no single row at position " INT64_FORMAT,
						a->chain, HaRelDisplayName(RelationGetRelid(a->rel)), a->expect),
				 errdetail("The checkpoint appends every position up to " INT64_FORMAT " to the table's Merkle tree.",
						   a->upto),
				 errhint("Run hipaa_audit.verify() on the table.")));
	if (leaf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the row at chain %d, position " INT64_FORMAT " of table %s has no 32-byte audit_hash",
						a->chain, seq, HaRelDisplayName(RelationGetRelid(a->rel))),
				 errhint("Run hipaa_audit.verify() on the table.")));
	HaTreeAppend(a->t, leaf);
	return ++a->expect <= a->upto;
}

/*
 * Append the rows of one chain at positions after + 1 to upto, in order,
 * as leaves.  Every position must be there once: a gap or a repeat is an
 * error, never a leaf skipped.  Returns the number of leaves appended.
 */
int64
HaTreeAppendChain(HaTree *t, Relation rel, int32 chain, int64 after, int64 upto)
{
	LeafAppend a = {t, rel, chain, after + 1, upto};

	if (upto <= after)
		return 0;
	ScanChainLeaves(rel, chain, after + 1, upto, AppendRow, &a);
	if (a.expect <= upto)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("chain %d of table %s has no row at position " INT64_FORMAT,
						chain, HaRelDisplayName(RelationGetRelid(rel)), a.expect),
				 errdetail("The checkpoint appends every position up to " INT64_FORMAT " to the table's Merkle tree.",
						   upto),
				 errhint("Run hipaa_audit.verify() on the table.")));
	return upto - after;
}

/* ------------------------------------------------- the stored tree, checked */

/*
 * verify_tree(): the stored tree read leaf by leaf, each leaf compared with
 * the row it stands for (when the row is still there), and the whole tree
 * rebuilt from the stored leaves in a scratch tree that stores nothing:
 * every full tile it completes must equal the stored one, and its root the
 * signed root.  Tiles are read once, in order, and dropped: memory stays
 * bounded whatever the size.
 */
struct HaTreeChecker
{
	HaTree	   *stored;			/* reads the stored tiles */
	HaTree	   *scratch;		/* rebuilt from the stored leaves */
	int64		size;			/* leaves to check */
	int64		next;			/* next leaf index */
	int64		compared;		/* leaves compared with their row */
	int64		problems;
	char	   *first;
	MemoryContext cxt;
};

/* Count a problem; only the first one's text is built and kept. */
static void TreeProblem(HaTreeChecker *c, const char *fmt,...) pg_attribute_printf(2, 3);

static void
TreeProblem(HaTreeChecker *c, const char *fmt,...)
{
	va_list		ap;
	char		buf[512];

	if (c->problems++ > 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c->first = MemoryContextStrdup(c->cxt, buf);
}

HaTreeChecker *
HaTreeCheckBegin(const pg_uuid_t *uuid, int64 size)
{
	HaTreeChecker *c = palloc0(sizeof(HaTreeChecker));
	pg_uuid_t	none;

	memset(&none, 0, sizeof(none));
	c->cxt = CurrentMemoryContext;
	c->size = size;
	c->stored = HaTreeOpen(uuid, size);
	HaTreeSoft(c->stored);
	c->scratch = HaTreeOpen(&none, 0);
	c->scratch->checker = c;
	return c;
}

/* A full tile the scratch tree completed: the stored one must be the same. */
static void
CheckRetired(HaTreeChecker *c, const Tile *tile)
{
	Tile	   *st = GetTile(c->stored, tile->key.level, tile->key.idx);

	if (st->width < TILE_WIDTH ||
		memcmp(st->hashes, tile->hashes, (Size) TILE_WIDTH * HA_HASH_LEN) != 0)
		TreeProblem(c, "stored tile level %d index " INT64_FORMAT " is %s",
								tile->key.level, tile->key.idx,
								st->width < TILE_WIDTH ? "missing or not full" :
								"not the tree of the leaves below it");
	(void) hash_search(c->stored->tiles, &st->key, HASH_REMOVE, NULL);
}

/*
 * The next leaf: expected is the row's leaf hash, or NULL when the row is
 * gone (purged, or its partition removed).
 */
static void
CheckLeaf(HaTreeChecker *c, const uint8 *expected, int32 chain, int64 seq)
{
	uint8		leaf[HA_HASH_LEN];
	int64		i = c->next++;

	CHECK_FOR_INTERRUPTS();
	c->stored->missing = false;
	NodeHash(c->stored, 0, i, leaf);
	if (c->stored->missing)
		TreeProblem(c, "leaf " INT64_FORMAT " is not stored", i);
	else if (expected != NULL)
	{
		c->compared++;
		if (memcmp(expected, leaf, HA_HASH_LEN) != 0)
			TreeProblem(c, "leaf " INT64_FORMAT " is not the row at chain %d, position " INT64_FORMAT,
									i, chain, seq);
	}
	HaTreeAppend(c->scratch, leaf);
	/* Done with a stored leaf tile: drop it (the scratch tree compares it). */
	if ((i + 1) % TILE_WIDTH == 0)
	{
		TileKey		key;

		memset(&key, 0, sizeof(key));
		key.level = 0;
		key.idx = i / TILE_WIDTH;
		(void) hash_search(c->stored->tiles, &key, HASH_REMOVE, NULL);
	}
}

typedef struct LeafCheck
{
	HaTreeChecker *c;
	int32		chain;
	int64		expect;
} LeafCheck;

static bool
CheckRow(void *arg, int64 seq, const uint8 *leaf)
{
	LeafCheck *k = (LeafCheck *) arg;

	if (seq < k->expect)
		return true;			/* a duplicate position: verify() reports it */
	while (k->expect < seq && k->c->next < k->c->size)
		CheckLeaf(k->c, NULL, k->chain, k->expect++);	/* purged */
	if (k->c->next >= k->c->size)
		return false;
	CheckLeaf(k->c, leaf, k->chain, seq);
	k->expect++;
	return k->c->next < k->c->size;
}

/*
 * Leaves for positions first to last of one chain of rel (NULL: the table
 * is gone), in order: the rows still there compared, the others (purged)
 * taken as stored.
 */
void
HaTreeCheckChain(HaTreeChecker *c, Relation rel, int32 chain, int64 first, int64 last)
{
	LeafCheck	k = {c, chain, first};

	if (rel != NULL)
		ScanChainLeaves(rel, chain, first, last, CheckRow, &k);
	while (k.expect <= last && c->next < c->size)
		CheckLeaf(c, NULL, chain, k.expect++);
}

/* Leaves the ranges do not account for: checked as stored. */
void
HaTreeCheckSkip(HaTreeChecker *c, int64 upto)
{
	while (c->next < upto && c->next < c->size)
		CheckLeaf(c, NULL, -1, -1);
}

int64
HaTreeCheckNext(const HaTreeChecker *c)
{
	return c->next;
}

/*
 * The end: every leaf seen, the right edge's partial tiles as stored, and
 * the root as signed.  Returns the problems; *first, the first one;
 * *compared, the leaves compared with rows.
 */
int64
HaTreeCheckEnd(HaTreeChecker *c, const uint8 *root, char **first, int64 *compared)
{
	uint8		r[HA_HASH_LEN];
	HASH_SEQ_STATUS seq;
	Tile	   *tile;

	if (c->next < c->size)
		HaTreeCheckSkip(c, c->size);
	hash_seq_init(&seq, c->scratch->tiles);
	while ((tile = hash_seq_search(&seq)) != NULL)
	{
		Tile	   *st;

		if (tile->width == 0)
			continue;
		st = GetTile(c->stored, tile->key.level, tile->key.idx);
		if (st->width < tile->width ||
			memcmp(st->hashes, tile->hashes, (Size) tile->width * HA_HASH_LEN) != 0)
			TreeProblem(c, "stored tile level %d index " INT64_FORMAT " at the tree's edge is %s",
									tile->key.level, tile->key.idx,
									st->width < tile->width ? "missing hashes" : "not the tree of the leaves below it");
	}
	HaTreeRoot(c->scratch, c->size, r);
	if (memcmp(r, root, HA_HASH_LEN) != 0)
		TreeProblem(c, "the stored leaves do not hash to the root the checkpoint signed");
	*first = c->first;
	*compared = c->compared;
	return c->problems;
}
