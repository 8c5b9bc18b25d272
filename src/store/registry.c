/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  The registry of protected tables (layer store/): the per-backend cache
 *	  the hooks consult on every statement, registry rows, the database's
 *	  protection mark, legal holds in force, and the permission checks.
 *
 * hipaa_audit.registry holds one row per protected table.  Its first column
 * is the table's regclass, so pg_dump writes it as a name and pg_restore maps
 * it to the new OID.  The registry is an extension configuration table: its
 * rows are dumped with the database.
 *
 * Each backend keeps the set of protected OIDs in a hash table.  It is
 * rebuilt lazily after any relcache invalidation of the registry (protect(),
 * unprotect() and the drop of a protected table send one) and after
 * a change of pg_namespace (the extension being created or dropped).
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "catalog/heap.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "lib/stringinfo.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"


bool		ha_database_protected = false;

static HTAB *ProtectedRels = NULL;
static bool ProtectedValid = false;
static Oid	RegistryRelid = InvalidOid;
static Oid	SchemaOid = InvalidOid;

static void
RegistryRelcacheCallback(Datum arg pg_attribute_unused(), Oid relid)
{
	if (!OidIsValid(relid) || !OidIsValid(RegistryRelid) || relid == RegistryRelid)
		ProtectedValid = false;
}

static void
RegistrySyscacheCallback(Datum arg pg_attribute_unused(),
						 int cacheid pg_attribute_unused(),
						 uint32 hashvalue pg_attribute_unused())
{
	ProtectedValid = false;
}

void
HaRegistryInit(void)
{
	CacheRegisterRelcacheCallback(RegistryRelcacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, RegistrySyscacheCallback, (Datum) 0);
}

/*
 * Rebuild the set of protected OIDs from the registry.  ProtectedValid is set
 * before reading, so an invalidation that arrives while we read (table_open
 * accepts them) makes the next call read again.
 *
 * The registry is read, like a catalog, with the catalog snapshot: it sees
 * everything committed, and unlike GetLatestSnapshot() it does not fix the
 * transaction's snapshot, so a following SET TRANSACTION ISOLATION LEVEL
 * still works.
 */
/* One registry row into the cache. */
static bool
CacheRow(void *arg pg_attribute_unused(), TupleTableSlot *slot)
{
	Oid			relid;
	HaProtectedEntry *entry;

	if (slot->tts_isnull[Anum_ha_registry_relid - 1])
		return true;
	relid = DatumGetObjectId(slot->tts_values[Anum_ha_registry_relid - 1]);
	entry = hash_search(ProtectedRels, &relid, HASH_ENTER, NULL);
	if (!slot->tts_isnull[Anum_ha_registry_table_uuid - 1])
		memcpy(&entry->uuid, DatumGetUUIDP(slot->tts_values[Anum_ha_registry_table_uuid - 1]),
			   sizeof(pg_uuid_t));
	else
		memset(&entry->uuid, 0, sizeof(pg_uuid_t));
	entry->chains = slot->tts_isnull[Anum_ha_registry_chains - 1] ? 1 :
		DatumGetInt32(slot->tts_values[Anum_ha_registry_chains - 1]);
	entry->replica = !slot->tts_isnull[Anum_ha_registry_replica - 1] &&
		DatumGetBool(slot->tts_values[Anum_ha_registry_replica - 1]);
	/* partition_of: from 0.2.0 on; a partitioned table is read from pg_class. */
	entry->parent = InvalidOid;
	if (slot->tts_tupleDescriptor->natts >= Anum_ha_registry_partition_of &&
		!slot->tts_isnull[Anum_ha_registry_partition_of - 1])
		entry->parent = DatumGetObjectId(slot->tts_values[Anum_ha_registry_partition_of - 1]);
	entry->partitioned = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;
	return true;
}

static void
LoadProtected(void)
{
	HASHCTL		ctl;

	if (ProtectedRels != NULL)
		hash_destroy(ProtectedRels);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(HaProtectedEntry);
	ctl.hcxt = TopMemoryContext;
	ProtectedRels = hash_create("hipaa_audit protected tables", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ProtectedValid = true;

	SchemaOid = get_namespace_oid(HA_SCHEMA_NAME, true);
	RegistryRelid = OidIsValid(SchemaOid) ?
		get_relname_relid(HA_TABLE_REGISTRY, SchemaOid) : InvalidOid;

	if (OidIsValid(RegistryRelid))
	{
		Snapshot	snap = RegisterSnapshot(GetCatalogSnapshot(RegistryRelid));

		(void) HaScanOwnTable(HA_TABLE_REGISTRY, snap, CacheRow, NULL);
		UnregisterSnapshot(snap);
	}
}

static inline void
EnsureLoaded(void)
{
	if (!ProtectedValid || ProtectedRels == NULL)
		LoadProtected();
}

bool
HaIsProtected(Oid relid)
{
	if (!OidIsValid(relid) || !IsTransactionState())
		return false;
	EnsureLoaded();
	return hash_search(ProtectedRels, &relid, HASH_FIND, NULL) != NULL;
}

/*
 * A copy of the table's cache entry, in the caller's memory context: the
 * cache itself is rebuilt (and freed) whenever an invalidation arrives, which
 * any lock, relation open or SQL call may accept.
 */
const HaProtectedEntry *
HaLookupProtected(Oid relid)
{
	HaProtectedEntry *found;
	HaProtectedEntry *copy;

	if (!OidIsValid(relid) || !IsTransactionState())
		return NULL;
	EnsureLoaded();
	found = hash_search(ProtectedRels, &relid, HASH_FIND, NULL);
	if (found == NULL)
		return NULL;
	copy = palloc(sizeof(HaProtectedEntry));
	*copy = *found;
	return copy;
}

/* As HaLookupProtected, but a table that is not protected is an error. */
const HaProtectedEntry *
HaRequireProtected(Oid relid, const char *hint)
{
	const HaProtectedEntry *entry = HaLookupProtected(relid);

	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s is not protected", HaRelDisplayName(relid)),
				 hint ? errhint("%s", hint) : 0));
	return entry;
}

/* The OIDs of every protected table of this database. */
List *
HaProtectedRelids(void)
{
	HASH_SEQ_STATUS status;
	HaProtectedEntry *entry;
	List	   *result = NIL;

	if (!IsTransactionState())
		return NIL;
	EnsureLoaded();
	hash_seq_init(&status, ProtectedRels);
	while ((entry = hash_seq_search(&status)) != NULL)
		result = lappend_oid(result, entry->relid);
	return result;
}

bool
HaAnyProtected(void)
{
	if (!IsTransactionState())
		return false;
	EnsureLoaded();
	return hash_get_num_entries(ProtectedRels) > 0;
}

Oid
HaSchemaOid(void)
{
	if (!IsTransactionState())
		return InvalidOid;
	EnsureLoaded();
	return SchemaOid;
}

bool
HaIsOurTrigger(const char *tgname)
{
	return tgname != NULL &&
		(strcmp(tgname, HA_TRIGGER_ROW) == 0 ||
		 strcmp(tgname, HA_TRIGGER_TRUNCATE) == 0 ||
		 strcmp(tgname, HA_TRIGGER_CHAIN) == 0);
}

static bool TableHasRows(Oid relid);

/*
 * Does the table hold at least one row visible to a fresh snapshot?  Callers
 * hold a lock that keeps new writers out (DROP takes AccessExclusiveLock).
 */
bool
HaRelationHasRows(Oid relid)
{
	/* A partitioned table stores nothing: its partitions do. */
	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
	{
		ListCell   *lc;

		foreach(lc, find_all_inheritors(relid, AccessShareLock, NULL))
		{
			if (lfirst_oid(lc) != relid && get_rel_relkind(lfirst_oid(lc)) != RELKIND_PARTITIONED_TABLE &&
				get_rel_relkind(lfirst_oid(lc)) != RELKIND_FOREIGN_TABLE &&
				HaRelationHasRows(lfirst_oid(lc)))
				return true;
		}
		return false;
	}
	return TableHasRows(relid);
}

static bool
TableHasRows(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Snapshot	snap = RegisterSnapshot(GetCatalogSnapshot(relid));
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	bool		found;

	found = table_scan_getnextslot(scan, ForwardScanDirection, slot);
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Remove a table's registry row; called while a protected table is
 * dropped, from inside the DROP, so it uses the heap directly.
 */
void
HaRegistryForget(Oid relid)
{
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	HeapTuple	tuple;

	EnsureLoaded();
	if (!OidIsValid(RegistryRelid))
		return;
	rel = table_open(RegistryRelid, RowExclusiveLock);
	snap = RegisterSnapshot(GetCatalogSnapshot(RegistryRelid));
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_ha_registry_relid, RelationGetDescr(rel), &isnull);

		if (!isnull && DatumGetObjectId(d) == relid)
			simple_heap_delete(rel, &tuple->t_self);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, RowExclusiveLock);
	CacheInvalidateRelcacheByRelid(RegistryRelid);
	CommandCounterIncrement();
}

/*
 * Our own SQL changed the registry: every backend's cache (ours at once)
 * must read it again.
 */
void
HaRegistryChanged(void)
{
	EnsureLoaded();
	if (OidIsValid(RegistryRelid))
		CacheInvalidateRelcacheByRelid(RegistryRelid);
	CommandCounterIncrement();
}

/* A regclass argument can name a relation that is gone (or OID 0). */
void
HaCheckRelationExists(Oid relid)
{
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
}

/*
 * Refuse a caller outside hipaa_audit_admin: "permission denied to <what>",
 * and a detail (a format with one %s for the role's name; NULL: "Only
 * members of hipaa_audit_admin may.").
 */
void
HaRequireAdmin(const char *what, const char *detail)
{
	if (!HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errdetail(detail ? detail : "Only members of %s may.", HA_ADMIN_ROLE)));
}

/* Refuse a caller who neither owns the table nor is in hipaa_audit_admin. */
void
HaRequireOwnerOrAdmin(Oid relid, const char *verb)
{
	if (!HaRelOwnerCheck(relid, GetUserId()) && !HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s table %s", verb, HaRelDisplayName(relid)),
				 errdetail("Only the table's owner or a member of %s may %s it.", HA_ADMIN_ROLE, verb)));
}

bool
HaIsAuditAdmin(Oid roleid)
{
	Oid			admin = get_role_oid(HA_ADMIN_ROLE, true);

	return superuser_arg(roleid) ||
		(OidIsValid(admin) && has_privs_of_role(roleid, admin));
}

/*
 * A protected table's retention, read from the registry without SQL (it is
 * asked while a table owner drops a table) and with a fresh snapshot, not
 * from the per-backend cache: a purge asks after waiting for the purge lock,
 * and must see a set_retention() that held it.
 */
typedef struct RetentionRead
{
	Oid			relid;
	Interval   *retention;
	bool	   *locked;
	bool		found;
} RetentionRead;

static bool
RetentionRow(void *arg, TupleTableSlot *slot)
{
	RetentionRead *rr = (RetentionRead *) arg;

	if (slot->tts_isnull[Anum_ha_registry_relid - 1] ||
		DatumGetObjectId(slot->tts_values[Anum_ha_registry_relid - 1]) != rr->relid)
		return true;
	if (!slot->tts_isnull[Anum_ha_registry_retention - 1])
	{
		memcpy(rr->retention, DatumGetIntervalP(slot->tts_values[Anum_ha_registry_retention - 1]),
			   sizeof(Interval));
		rr->found = true;
	}
	if (rr->locked != NULL)
		*rr->locked = !slot->tts_isnull[Anum_ha_registry_retention_locked - 1] &&
			DatumGetBool(slot->tts_values[Anum_ha_registry_retention_locked - 1]);
	return false;
}

bool
HaRegistryRetention(Oid relid, Interval *retention, bool *locked)
{
	RetentionRead rr = {relid, retention, locked, false};

	(void) HaScanOwnTable(HA_TABLE_REGISTRY, NULL, RetentionRow, &rr);
	return rr.found;
}

/*
 * Mark (or unmark) the current database in pg_db_role_setting, which every
 * database can read, so that DROP DATABASE from elsewhere can be refused.
 */
void
HaMarkDatabase(bool on)
{
	char	   *sql = psprintf(on ? "ALTER DATABASE %s SET %s = on" : "ALTER DATABASE %s RESET %s",
							   quote_identifier(get_database_name(MyDatabaseId)), HA_DB_MARKER);

	HaRunAsExtensionOwner(sql, 0, NULL, NULL);
}







/*
 * Does an unreleased legal hold cover this table?  Read directly (no SQL):
 * it is asked while a table owner drops a table, and the owner need
 * not be able to read the holds.
 */
typedef struct HoldsRead
{
	const pg_uuid_t *uuid;
	List	   *ids;			/* holds placed on the table (int64 *) */
	int			released;
} HoldsRead;

static bool
HoldRow(void *arg, TupleTableSlot *slot)
{
	HoldsRead  *hr = (HoldsRead *) arg;

	if (!slot->tts_isnull[Anum_ha_legal_holds_table_uuid - 1] &&
		memcmp(DatumGetUUIDP(slot->tts_values[Anum_ha_legal_holds_table_uuid - 1])->data,
			   hr->uuid->data, UUID_LEN) == 0)
	{
		int64	   *p = palloc(sizeof(int64));

		*p = DatumGetInt64(slot->tts_values[Anum_ha_legal_holds_id - 1]);
		hr->ids = lappend(hr->ids, p);
	}
	return true;
}

static bool
ReleaseRow(void *arg, TupleTableSlot *slot)
{
	HoldsRead  *hr = (HoldsRead *) arg;
	int64		id = DatumGetInt64(slot->tts_values[Anum_ha_hold_releases_hold_id - 1]);
	ListCell   *lc;

	foreach(lc, hr->ids)
		if (*(int64 *) lfirst(lc) == id)
			hr->released++;
	return true;
}

static bool
HeldByIdentity(const pg_uuid_t *uuid)
{
	HoldsRead	hr;
	Snapshot	snap;

	hr.uuid = uuid;
	hr.ids = NIL;
	hr.released = 0;

	/* Latest: a hold committed while the caller waited for its lock counts. */
	snap = RegisterSnapshot(GetLatestSnapshot());
	if (HaScanOwnTable(HA_TABLE_LEGAL_HOLDS, snap, HoldRow, &hr) && hr.ids != NIL)
		(void) HaScanOwnTable(HA_TABLE_HOLD_RELEASES, snap, ReleaseRow, &hr);
	UnregisterSnapshot(snap);
	return hr.released < list_length(hr.ids);
}

/*
 * A hold on the table itself, or, for a partition, on its partitioned
 * table (which holds every partition).
 */
bool
HaTableHeld(Oid relid)
{
	const HaProtectedEntry *entry = HaLookupProtected(relid);
	const HaProtectedEntry *parent;

	if (entry == NULL)
		return false;
	if (HeldByIdentity(&entry->uuid))
		return true;
	parent = OidIsValid(entry->parent) ? HaLookupProtected(entry->parent) : NULL;
	return parent != NULL && HeldByIdentity(&parent->uuid);
}

/*
 * Register a protected table: a new identity (uuid NULL) or a logical
 * replica's publisher identity; parent is the partitioned table of a
 * partition, else InvalidOid.  Every backend's cache is told.
 */
void
HaRegisterTable(Oid relid, const Interval *retention, int32 chains,
				const pg_uuid_t *uuid, bool replica, Oid parent, bool locked)
{
	Oid			argtypes[8] = {REGCLASSOID, INTERVALOID, INT4OID, NAMEOID, UUIDOID, BOOLOID,
		REGCLASSOID, BOOLOID};
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};

	values[0] = ObjectIdGetDatum(relid);
	values[1] = IntervalPGetDatum(retention);
	values[2] = Int32GetDatum(chains);
	values[3] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	values[4] = UUIDPGetDatum((pg_uuid_t *) uuid);
	values[5] = BoolGetDatum(replica);
	values[6] = ObjectIdGetDatum(parent);
	values[7] = BoolGetDatum(locked);
	nulls[4] = (uuid == NULL);
	nulls[6] = !OidIsValid(parent);
	/* A 0.1.0 schema (before ALTER EXTENSION ... UPDATE) has no partition_of. */
	EnsureLoaded();
	if (get_attnum(RegistryRelid, "partition_of") == InvalidAttrNumber)
	{
		if (OidIsValid(parent) || get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the hipaa_audit schema in this database is older than its library"),
					 errdetail("Partitioned tables need the registry's partition_of column."),
					 errhint("Run ALTER EXTENSION hipaa_audit UPDATE.")));
		HaRunAsExtensionOwnerNulls("INSERT INTO hipaa_audit.registry "
								   "(relid, table_uuid, retention, chains, protected_at, protected_by, "
								   "replica, retention_locked) "
								   "VALUES ($1, COALESCE($5, pg_catalog.gen_random_uuid()), $2, $3, "
								   "pg_catalog.clock_timestamp(), $4, $6, $8)",
								   8, argtypes, values, nulls);
	}
	else
		HaRunAsExtensionOwnerNulls("INSERT INTO hipaa_audit.registry "
								   "(relid, table_uuid, retention, chains, protected_at, protected_by, "
								   "replica, retention_locked, partition_of) "
								   "VALUES ($1, COALESCE($5, pg_catalog.gen_random_uuid()), $2, $3, "
								   "pg_catalog.clock_timestamp(), $4, $6, $8, $7)",
								   8, argtypes, values, nulls);
	HaRegistryChanged();
}

/* The registered partitions of a protected partitioned table, by OID. */
List *
HaRegisteredPartitions(Oid parent)
{
	HASH_SEQ_STATUS status;
	HaProtectedEntry *entry;
	List	   *result = NIL;

	if (!IsTransactionState() || !OidIsValid(parent))
		return NIL;
	EnsureLoaded();
	hash_seq_init(&status, ProtectedRels);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (entry->parent == parent)
			result = lappend_oid(result, entry->relid);
	list_sort(result, list_oid_cmp);
	return result;
}



