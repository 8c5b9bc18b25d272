/*-------------------------------------------------------------------------
 *
 * records.c
 *	  The extension's own records about protected tables, other than the
 *	  registry (layer store/): purge anchors (where each chain starts after
 *	  lawful purges), the record of retired tables, and the per-table
 *	  records lock that purges and policy changes take.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* pg_locks shows a running purge as an advisory lock with this objsubid. */
#define HA_LOCKTAG_PURGE	0x4850
#define HA_LOCKTAG_TREE		0x4854

/* Columns of hipaa_audit.purge_anchors. */

typedef struct AnchorProbe
{
	int32		chain;
	int64		first;
	int64		last;
	const uint8 *hash;
	bool		found;
} AnchorProbe;

typedef struct AnchorScan
{
	const pg_uuid_t *uuid;
	void		(*fn) (void *arg, int32 chain, int64 first, int64 last, const uint8 *hash);
	void	   *arg;
} AnchorScan;

static bool
AnchorRow(void *arg, TupleTableSlot *slot)
{
	AnchorScan *as = (AnchorScan *) arg;
	bytea	   *h;

	if (slot->tts_isnull[Anum_ha_purge_anchors_table_uuid - 1] ||
		memcmp(DatumGetUUIDP(slot->tts_values[Anum_ha_purge_anchors_table_uuid - 1])->data,
			   as->uuid->data, UUID_LEN) != 0 ||
		slot->tts_isnull[Anum_ha_purge_anchors_anchor_hash - 1])
		return true;
	h = DatumGetByteaPP(slot->tts_values[Anum_ha_purge_anchors_anchor_hash - 1]);
	if (VARSIZE_ANY_EXHDR(h) == HA_HASH_LEN)
		as->fn(as->arg,
			   DatumGetInt32(slot->tts_values[Anum_ha_purge_anchors_chain - 1]),
			   DatumGetInt64(slot->tts_values[Anum_ha_purge_anchors_first_seq - 1]),
			   DatumGetInt64(slot->tts_values[Anum_ha_purge_anchors_last_seq - 1]),
			   (const uint8 *) VARDATA_ANY(h));
	return true;
}

/*
 * Call fn for every anchor row of a table (by identity); the schema of 0.1.0
 * has no anchor table, which means no purge ever happened.
 */
static void
ScanAnchors(const pg_uuid_t *uuid, Snapshot snap,
			void (*fn) (void *arg, int32 chain, int64 first, int64 last, const uint8 *hash),
			void *arg)
{
	AnchorScan	as = {uuid, fn, arg};

	(void) HaScanOwnTable(HA_TABLE_PURGE_ANCHORS, snap, AnchorRow, &as);
}

static void
KeepLatest(void *arg, int32 chain, int64 first pg_attribute_unused(), int64 last,
		   const uint8 *hash)
{
	HaAnchor   *anchors = (HaAnchor *) arg;

	if (chain < 0 || chain >= HA_MAX_CHAINS || last <= anchors[chain].seq)
		return;
	anchors[chain].seq = last;
	memcpy(anchors[chain].hash, hash, HA_HASH_LEN);
}

/*
 * Where each chain of a table starts: after the latest purge's anchor, or
 * at position 1 after zeros.  HA_MAX_CHAINS entries; snap NULL means a fresh
 * snapshot.  Read without SQL: inserting roles rebuild heads with it.
 */
HaAnchor *
HaLoadAnchors(const pg_uuid_t *uuid, Snapshot snap)
{
	HaAnchor   *anchors = palloc0(sizeof(HaAnchor) * HA_MAX_CHAINS);

	ScanAnchors(uuid, snap, KeepLatest, anchors);
	return anchors;
}

static void
MatchAnchor(void *arg, int32 chain, int64 first, int64 last, const uint8 *hash)
{
	AnchorProbe *p = (AnchorProbe *) arg;

	if (chain == p->chain && first == p->first && last == p->last &&
		memcmp(hash, p->hash, HA_HASH_LEN) == 0)
		p->found = true;
}

/* Did this database record removing exactly this range with this anchor? */
bool
HaAnchorRecorded(const pg_uuid_t *uuid, int32 chain, int64 first, int64 last,
				 const uint8 *hash)
{
	AnchorProbe p = {chain, first, last, hash, false};

	ScanAnchors(uuid, NULL, MatchAnchor, &p);
	return p.found;
}

/*
 * The per-table purge lock, held to the end of the transaction: purges of a
 * table run one at a time, and place_hold() waits for a purge under way.
 */
void
HaLockPurge(Oid relid)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, relid, 0, HA_LOCKTAG_PURGE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * The per-table tree lock, held to the end of the transaction: one
 * checkpoint at a time grows a table's Merkle tree (docs/merkle.md).
 * Writers are not blocked.
 */
void
HaLockTree(Oid relid)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, relid, 0, HA_LOCKTAG_TREE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* Whether this database's schema has the Merkle tree's tables (0.3.0). */
bool
HaSchemaHasTree(void)
{
	Oid			nsp = HaSchemaOid();

	return OidIsValid(nsp) && OidIsValid(get_relname_relid(HA_TABLE_MERKLE_TILES, nsp));
}

/*
 * Record the drop or unprotect of a protected table in retired_tables, with
 * the rows left and the newest one's insertion time (the caller's scan).
 */
void
HaRecordRetired(Oid relid, const char *action, int64 rows, TimestampTz newest)
{
	const HaProtectedEntry *entry = HaLookupProtected(relid);
	Oid			nsp = HaSchemaOid();
	Interval	retention;
	Oid			argtypes[7] = {UUIDOID, TEXTOID, TEXTOID, NAMEOID, INTERVALOID, INT8OID, TIMESTAMPTZOID};
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};

	if (entry == NULL || !OidIsValid(nsp) ||
		!OidIsValid(get_relname_relid(HA_TABLE_RETIRED_TABLES, nsp)) ||
		!HaRegistryRetention(relid, &retention, NULL))
		return;
	values[0] = UUIDPGetDatum((pg_uuid_t *) &entry->uuid);
	values[1] = CStringGetTextDatum(HaRelDisplayName(relid));
	values[2] = CStringGetTextDatum(action);
	values[3] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	values[4] = IntervalPGetDatum(&retention);
	values[5] = Int64GetDatum(rows);
	values[6] = TimestampTzGetDatum(newest);
	nulls[6] = (rows == 0);
	HaRunAsExtensionOwnerNulls("INSERT INTO hipaa_audit.retired_tables "
							   "(table_uuid, table_name, action, retired_at, retired_by, "
							   "retention, rows_left, newest_row_at) "
							   "VALUES ($1, $2, $3, pg_catalog.now(), $4, $5, $6, $7)",
							   7, argtypes, values, nulls);
}
