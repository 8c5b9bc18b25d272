/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  The registry of protected tables: protect(), unprotect(), and the
 *	  per-backend cache the hooks consult on every statement.
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

#define MAX_CHAINS 256

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
		get_relname_relid(HA_REGISTRY_NAME, SchemaOid) : InvalidOid;

	if (OidIsValid(RegistryRelid))
	{
		Relation	rel = table_open(RegistryRelid, AccessShareLock);
		Snapshot	snap = RegisterSnapshot(GetCatalogSnapshot(RegistryRelid));
		TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
		TupleTableSlot *slot = table_slot_create(rel, NULL);

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			Datum		d = slot_getattr(slot, 1, &isnull);

			if (!isnull)
			{
				Oid			relid = DatumGetObjectId(d);
				HaProtectedEntry *entry;
				Datum		uuid;
				Datum		chains;
				bool		uuid_null;
				bool		chains_null;

				entry = hash_search(ProtectedRels, &relid, HASH_ENTER, NULL);
				uuid = slot_getattr(slot, 2, &uuid_null);
				chains = slot_getattr(slot, 4, &chains_null);
				if (!uuid_null)
					memcpy(&entry->uuid, DatumGetUUIDP(uuid), sizeof(pg_uuid_t));
				else
					memset(&entry->uuid, 0, sizeof(pg_uuid_t));
				entry->chains = chains_null ? 1 : DatumGetInt32(chains);
				{
					bool		rnull;
					Datum		r = slot_getattr(slot, 7, &rnull);

					entry->replica = !rnull && DatumGetBool(r);
				}
			}
		}
		ExecDropSingleTupleTableSlot(slot);
		table_endscan(scan);
		UnregisterSnapshot(snap);
		table_close(rel, AccessShareLock);
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

/*
 * Does the table hold at least one row visible to a fresh snapshot?  Callers
 * hold a lock that keeps new writers out (DROP takes AccessExclusiveLock).
 */
bool
HaRelationHasRows(Oid relid)
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
		Datum		d = heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull);

		if (!isnull && DatumGetObjectId(d) == relid)
			simple_heap_delete(rel, &tuple->t_self);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, RowExclusiveLock);
	CacheInvalidateRelcacheByRelid(RegistryRelid);
	CommandCounterIncrement();
	HaChainForgetTable(relid);
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
bool
HaRegistryRetention(Oid relid, Interval *retention, bool *locked)
{
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	TupleTableSlot *slot;
	bool		found = false;

	EnsureLoaded();
	if (!OidIsValid(RegistryRelid))
		return false;
	rel = table_open(RegistryRelid, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (!found && table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, 1, &isnull);

		if (isnull || DatumGetObjectId(d) != relid)
			continue;
		d = slot_getattr(slot, 3, &isnull);
		if (!isnull)
		{
			memcpy(retention, DatumGetIntervalP(d), sizeof(Interval));
			found = true;
		}
		if (locked != NULL)
		{
			d = slot_getattr(slot, 8, &isnull);
			*locked = !isnull && DatumGetBool(d);
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Refuse, with its own error, every relation protect() cannot make safe.
 */
static void
CheckProtectable(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	char	   *name = HaRelDisplayName(relid);

	if (IsSystemRelation(rel) || IsCatalogNamespace(RelationGetNamespace(rel)) ||
		IsToastNamespace(RelationGetNamespace(rel)) ||
		RelationGetNamespace(rel) == get_namespace_oid("information_schema", true))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot protect system catalog %s", name),
				 errhint("Only ordinary user tables can be protected.")));

	if (RelationGetNamespace(rel) == HaSchemaOid())
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot protect %s, a table of the hipaa_audit extension itself", name)));

	switch (rel->rd_rel->relkind)
	{
		case RELKIND_RELATION:
			break;
		case RELKIND_PARTITIONED_TABLE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot protect partitioned table %s", name),
					 errdetail("Partitioned tables are not supported in this version."),
					 errhint("Use one ordinary table per audit stream.")));
			break;
		case RELKIND_VIEW:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("cannot protect %s because it is a view", name),
					 errhint("Protect the table the view reads from.")));
			break;
		case RELKIND_MATVIEW:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("cannot protect %s because it is a materialized view", name),
					 errhint("Protect the table it is computed from.")));
			break;
		case RELKIND_FOREIGN_TABLE:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("cannot protect foreign table %s", name),
					 errdetail("Its rows live outside this database, where hipaa_audit cannot guard them.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("cannot protect %s because it is not a table", name)));
	}

	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot protect temporary table %s", name),
				 errdetail("Temporary tables vanish at the end of the session.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot protect unlogged table %s", name),
				 errdetail("Unlogged tables are emptied by crash recovery and are not replicated."),
				 errhint("Run ALTER TABLE %s SET LOGGED first.", name)));

	if (rel->rd_rel->relhasrules)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot protect %s because it has rules", name),
				 errdetail("A rule could redirect or suppress the inserts of an audit table."),
				 errhint("Drop the table's rules first.")));

	if (rel->rd_rel->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot protect %s because it is a partition", name),
				 errhint("Detach it first, or protect an ordinary table.")));
	if (OidIsValid(rel->rd_rel->reloftype))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot protect %s because it is a typed table", name),
				 errdetail("Changes to its composite type would reach its columns."),
				 errhint("Run ALTER TABLE %s NOT OF first.", name)));
	if (has_superclass(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot protect %s because it inherits from another table", name),
				 errdetail("Changes made through the parent table would reach its rows."),
				 errhint("Run ALTER TABLE %s NO INHERIT first.", name)));
	if (has_subclass(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot protect %s because other tables inherit from it", name),
				 errdetail("Rows of the child tables would be read as its own but not be protected.")));
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
 * protect() re-inserts the rows a table already has so that they enter the
 * chain; that needs a TRUNCATE, which a referencing foreign key forbids.  A
 * BEFORE INSERT row trigger that would fire after the chain trigger would
 * change rows after they are hashed.
 */
static void
CheckRewritable(Relation rel, bool had_rows)
{
	TriggerDesc *trigdesc = rel->trigdesc;
	char	   *name = HaRelDisplayName(RelationGetRelid(rel));

	if (trigdesc != NULL)
	{
		for (int i = 0; i < trigdesc->numtriggers; i++)
		{
			Trigger    *trig = &trigdesc->triggers[i];

			if (TRIGGER_FOR_ROW(trig->tgtype) && TRIGGER_FOR_BEFORE(trig->tgtype) &&
				TRIGGER_FOR_INSERT(trig->tgtype) &&
				strcmp(trig->tgname, HA_TRIGGER_CHAIN) > 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("cannot protect %s: its BEFORE INSERT trigger \"%s\" would fire after the hash is computed",
								name, trig->tgname),
						 errdetail("Triggers fire in name order; hipaa_audit's \"%s\" must be the last BEFORE INSERT row trigger.",
								   HA_TRIGGER_CHAIN),
						 errhint("Rename the trigger so that it sorts before \"%s\".", HA_TRIGGER_CHAIN)));
		}
	}
	if (had_rows && list_length(heap_truncate_find_FKs(list_make1_oid(RelationGetRelid(rel)))) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot protect %s: it has rows and other tables reference it by foreign key", name),
				 errdetail("Its existing rows are re-inserted into the chain, which needs a TRUNCATE."),
				 errhint("Protect the table while it is empty, or drop the referencing foreign keys first.")));
}

/* The table's columns that can be inserted into, quoted, comma-separated. */
static char *
InsertableColumns(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, quote_identifier(NameStr(att->attname)));
	}
	table_close(rel, AccessShareLock);
	return buf.data;
}

static bool NeverShorter(const Interval *new, const Interval *old);

/* hipaa_audit.min_retention: the shortest retention a non-superuser may set. */
char	   *ha_min_retention = NULL;

/*
 * GUC check hook: a positive interval.  interval_in reports a bad value by
 * an error; it touches no shared state, so the error is caught here.
 */
bool
HaCheckMinRetention(char **newval, void **extra pg_attribute_unused(),
					GucSource source pg_attribute_unused())
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = true;
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	PG_TRY();
	{
		Datum		iv = DirectFunctionCall3(interval_in, CStringGetDatum(*newval),
											 ObjectIdGetDatum(InvalidOid),
											 Int32GetDatum(-1));

		if (DatumGetInt32(DirectFunctionCall2(interval_cmp, iv,
											  IntervalPGetDatum(&zero))) <= 0)
		{
			GUC_check_errdetail("The retention floor must be a positive interval.");
			ok = false;
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		GUC_check_errdetail("\"%s\" is not an interval.", *newval);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

static void
CheckRetentionFloor(Interval *retention)
{
	Interval   *floor;

	if (superuser() || ha_min_retention == NULL || ha_min_retention[0] == '\0')
		return;
	floor = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												  CStringGetDatum(ha_min_retention),
												  ObjectIdGetDatum(InvalidOid),
												  Int32GetDatum(-1)));
	if (!NeverShorter(retention, floor))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("retention %s is shorter than hipaa_audit.min_retention (%s)",
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(retention))),
						ha_min_retention),
				 errdetail("Only a superuser may protect a table with a retention below the floor a superuser set."),
				 errhint("Use a retention of at least %s.", ha_min_retention)));
}

/*
 * The work of protect() and protect_replica(); uuid is NULL for a new table
 * identity, or the publisher's for a logical replica.
 */
static void
ProtectTable(Oid relid, Interval *retention, int32 chains, pg_uuid_t *uuid,
			 bool replica)
{
	Relation	rel;
	char	   *name;
	Interval	zero;
	bool		had_rows;
	Oid			owner;
	Oid			argtypes[6] = {REGCLASSOID, INTERVALOID, INT4OID, NAMEOID, UUIDOID, BOOLOID};
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	char	   *sql;

	if (!OidIsValid(HaSchemaOid()))
		elog(ERROR, "hipaa_audit is not installed in this database");

	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  IntervalPGetDatum(retention),
										  IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention must be a positive interval"),
				 errhint("HIPAA asks for six years: retention => '6 years'.")));
	if (chains < 1 || chains > MAX_CHAINS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chains must be between 1 and %d", MAX_CHAINS)));
	CheckRetentionFloor(retention);

	HaCheckRelationExists(relid);

	/*
	 * Check the caller's right before taking the lock, so that nobody can
	 * queue an AccessExclusiveLock on a table they may not protect.
	 */
	if (!HaRelOwnerCheck(relid, GetUserId()) && !HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to protect table %s", HaRelDisplayName(relid)),
				 errdetail("Only the table's owner or a member of %s may protect it.", HA_ADMIN_ROLE)));

	/* The strongest lock: nothing reads or writes while we install guards. */
	rel = table_open(relid, AccessExclusiveLock);
	name = HaRelDisplayName(relid);

	if (HaIsProtected(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is already protected", name),
				 errhint("See hipaa_audit.protected_tables.")));

	CheckProtectable(rel);
	HaCheckEncodable(rel);
	had_rows = HaRelationHasRows(relid);
	if (replica && had_rows)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot protect %s as a logical replica: it already has rows", name),
				 errdetail("A replica's rows come only from the publisher, with the publisher's chain columns."),
				 errhint("Start from an empty table; the subscription's initial copy fills it.")));
	CheckRewritable(rel, had_rows);
	owner = rel->rd_rel->relowner;
	if (had_rows &&
		HaNamespaceAclCheck(RelationGetNamespace(rel), owner, ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot protect %s: its owner %s has no USAGE on schema %s",
						name, GetUserNameFromId(owner, false),
						get_namespace_name(RelationGetNamespace(rel))),
				 errdetail("protect() moves the rows a table already has into the chain as the table's owner, so that no code of the owner's runs with more rights."),
				 errhint("GRANT USAGE ON SCHEMA %s TO %s, or protect the table while it is empty.",
						 quote_identifier(get_namespace_name(RelationGetNamespace(rel))),
						 quote_identifier(GetUserNameFromId(owner, false)))));
	table_close(rel, NoLock);

	if (OidIsValid(get_extension_oid("pg_surgery", true)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot protect tables while extension pg_surgery is installed"),
				 errdetail("Its functions remove or freeze rows without going through the executor."),
				 errhint("DROP EXTENSION pg_surgery first.")));

	/*
	 * 1. The chain columns, the unique index the chain is walked through
	 * (also by the trigger when it rebuilds a head), and the trigger.
	 */
	sql = psprintf("ALTER TABLE %s "
				   "ADD COLUMN %s pg_catalog.int4, ADD COLUMN %s pg_catalog.int8, "
				   "ADD COLUMN %s pg_catalog.timestamptz, ADD COLUMN %s pg_catalog.text, "
				   "ADD COLUMN %s pg_catalog.text, ADD COLUMN %s pg_catalog.inet, "
				   "ADD COLUMN %s pg_catalog.bytea, ADD COLUMN %s pg_catalog.bytea; "
				   "CREATE UNIQUE INDEX ON %s (%s, %s); "
				   "CREATE TRIGGER %s BEFORE INSERT ON %s "
				   "FOR EACH ROW EXECUTE FUNCTION hipaa_audit.chain_row(); "
				   "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s",
				   name, HA_COL_CHAIN, HA_COL_SEQ, HA_COL_AT, HA_COL_SESSION_ROLE,
				   HA_COL_ROLE, HA_COL_CLIENT, HA_COL_PREV, HA_COL_HASH,
				   name, HA_COL_CHAIN, HA_COL_SEQ,
				   quote_identifier(HA_TRIGGER_CHAIN), name,
				   name, quote_identifier(HA_TRIGGER_CHAIN));
	HaRunAsExtensionOwner(sql, 0, NULL, NULL);

	/* 2. The registry row, which the chain trigger reads. */
	values[0] = ObjectIdGetDatum(relid);
	values[1] = IntervalPGetDatum(retention);
	values[2] = Int32GetDatum(chains);
	values[3] = DirectFunctionCall1(namein,
									CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	values[4] = UUIDPGetDatum(uuid);
	values[5] = BoolGetDatum(replica);
	if (uuid == NULL)
		nulls[4] = true;
	HaRunAsExtensionOwnerNulls("INSERT INTO hipaa_audit.registry "
							   "(relid, table_uuid, retention, chains, protected_at, protected_by, replica) "
							   "VALUES ($1, COALESCE($5, pg_catalog.gen_random_uuid()), $2, $3, "
							   "pg_catalog.clock_timestamp(), $4, $6)",
							   6, argtypes, values, nulls);
	CacheInvalidateRelcacheByRelid(RegistryRelid);
	CommandCounterIncrement();
	HaChainForgetTable(relid);
	HaMarkDatabase(true);

	/* 3. Rows already there enter the chain, in their physical order. */
	if (had_rows)
	{
		char	   *cols = InsertableColumns(relid);

		/*
		 * One statement, run as the table's owner under
		 * SECURITY_RESTRICTED_OPERATION: the rows pass through the owner's
		 * triggers (ENABLE ALWAYS or REPLICA ones fire under replica),
		 * CHECKs, index expressions and generated columns, which must never
		 * run with more rights than the owner has.
		 */
		sql = psprintf("WITH old AS (DELETE FROM ONLY %s RETURNING %s) "
					   "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE "
					   "SELECT %s FROM old",
					   name, cols, name, cols, cols);
		ha_stamp_role = GetUserId();
		PG_TRY();
		{
			(void) HaRunSql(sql, 0, NULL, NULL, NULL, owner, HA_SQL_REPLICA,
							NULL, NULL);
		}
		PG_FINALLY();
		{
			ha_stamp_role = InvalidOid;
		}
		PG_END_TRY();
	}

	/* 4. The guards, and NOT NULL now that every row is stamped. */
	sql = psprintf("CREATE TRIGGER %s BEFORE UPDATE OR DELETE ON %s "
				   "FOR EACH ROW EXECUTE FUNCTION hipaa_audit.guard_row(); "
				   "CREATE TRIGGER %s BEFORE TRUNCATE ON %s "
				   "FOR EACH STATEMENT EXECUTE FUNCTION hipaa_audit.guard_truncate(); "
				   "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s, "
				   "ENABLE ALWAYS TRIGGER %s, "
				   "ALTER COLUMN %s SET NOT NULL, ALTER COLUMN %s SET NOT NULL, "
				   "ALTER COLUMN %s SET NOT NULL, ALTER COLUMN %s SET NOT NULL, "
				   "ALTER COLUMN %s SET NOT NULL, ALTER COLUMN %s SET NOT NULL, "
				   "ALTER COLUMN %s SET NOT NULL",
				   quote_identifier(HA_TRIGGER_ROW), name,
				   quote_identifier(HA_TRIGGER_TRUNCATE), name,
				   name, quote_identifier(HA_TRIGGER_ROW),
				   quote_identifier(HA_TRIGGER_TRUNCATE),
				   HA_COL_CHAIN, HA_COL_SEQ, HA_COL_AT, HA_COL_SESSION_ROLE,
				   HA_COL_ROLE, HA_COL_PREV, HA_COL_HASH);
	HaRunAsExtensionOwner(sql, 0, NULL, NULL);

	HaCheckGuardsInPlace(relid);

	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: table %s protected%s by role %s", name,
					replica ? " as a logical replica" : "",
					GetUserNameFromId(GetUserId(), false))));
}

PG_FUNCTION_INFO_V1(protect);

/*
 * protect(tbl regclass, retention interval, chains int)
 */
Datum
protect(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of hipaa_audit.protect must not be null")));
	ProtectTable(PG_GETARG_OID(0), PG_GETARG_INTERVAL_P(1), PG_GETARG_INT32(2),
				 NULL, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(protect_replica);

/*
 * protect_replica(tbl regclass, table_uuid uuid, retention interval, chains int)
 *
 * The subscriber's copy of a protected table that logical replication
 * fills: it takes the publisher's table identity, keeps the chain columns
 * rows arrive with (checking each row's hash), and accepts no local inserts.
 */
Datum
protect_replica(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of hipaa_audit.protect_replica must not be null")));
	ProtectTable(PG_GETARG_OID(0), PG_GETARG_INTERVAL_P(2), PG_GETARG_INT32(3),
				 PG_GETARG_UUID_P(1), true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(unprotect);

/*
 * unprotect(tbl regclass): only for a table idle past its retention (no row
 * inserted within it) and not held, only by an admin; recorded.
 */
Datum
unprotect(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Relation	rel;
	char	   *name;
	char	   *sql;
	Oid			argtypes[1] = {REGCLASSOID};
	Datum		values[1];
	int64		rows = 0;
	TimestampTz newest = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.unprotect must not be null")));
	relid = PG_GETARG_OID(0);
	HaCheckRelationExists(relid);

	if (!HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to unprotect table %s", HaRelDisplayName(relid)),
				 errdetail("Only members of %s may unprotect a table.", HA_ADMIN_ROLE)));

	rel = table_open(relid, AccessExclusiveLock);
	name = HaRelDisplayName(relid);
	(void) HaRequireProtected(relid, NULL);
	if (HaTableHeld(relid))
		HaRefuse("unprotect", psprintf("protected table %s", name),
				 "The table is under a legal hold.",
				 "See hipaa_audit.legal_holds_active; release the hold first.");
	if (HaRowsWithinRetention(relid, &rows, &newest))
		HaRefuse("unprotect", psprintf("protected table %s", name),
				 "The table holds audit rows within their retention period.",
				 "Audit rows leave a protected table only through lawful purging after their retention period; see hipaa_audit.purge_expired().");
	table_close(rel, NoLock);
	HaRecordRetired(relid, "unprotect", rows, newest);

	sql = psprintf("DROP TRIGGER %s ON %s; DROP TRIGGER %s ON %s; DROP TRIGGER %s ON %s; "
				   "ALTER TABLE %s DROP COLUMN %s, DROP COLUMN %s, DROP COLUMN %s, "
				   "DROP COLUMN %s, DROP COLUMN %s, DROP COLUMN %s, DROP COLUMN %s, "
				   "DROP COLUMN %s",
				   quote_identifier(HA_TRIGGER_ROW), name,
				   quote_identifier(HA_TRIGGER_TRUNCATE), name,
				   quote_identifier(HA_TRIGGER_CHAIN), name,
				   name, HA_COL_CHAIN, HA_COL_SEQ, HA_COL_AT, HA_COL_SESSION_ROLE,
				   HA_COL_ROLE, HA_COL_CLIENT, HA_COL_PREV, HA_COL_HASH);
	HaRunAsExtensionOwner(sql, 0, NULL, NULL);
	values[0] = ObjectIdGetDatum(relid);
	HaRunAsExtensionOwner("DELETE FROM hipaa_audit.registry WHERE relid OPERATOR(pg_catalog.=) $1",
						1, argtypes, values);
	CacheInvalidateRelcacheByRelid(RegistryRelid);
	CommandCounterIncrement();
	HaChainForgetTable(relid);
	if (!HaAnyProtected())
		HaMarkDatabase(false);

	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: table %s unprotected by role %s", name,
					GetUserNameFromId(GetUserId(), false))));
	PG_RETURN_VOID();
}

/*
 * The shortest or longest time an interval can span from some date, in
 * microseconds (in UTC, where a day is always 24 hours).
 */
static double
SpanMicros(const Interval *iv, bool longest)
{
	int32		years = iv->month / 12;
	int32		months = iv->month % 12;
	double		days;

	days = (double) years * ((years >= 0) == longest ? 366 : 365) +
		(double) months * ((months >= 0) == longest ? 31 : 28) + iv->day;
	return days * USECS_PER_DAY + iv->time;
}

/*
 * Is the new retention at least the old one from every date?  Interval
 * comparison alone counts a month as 30 days: "2160 days" would pass for
 * "6 years", and its cutoff is a month later.
 */
static bool
NeverShorter(const Interval *new, const Interval *old)
{
	if (new->month >= old->month && new->day >= old->day && new->time >= old->time)
		return true;
	return SpanMicros(new, false) >= SpanMicros(old, true);
}

PG_FUNCTION_INFO_V1(set_retention);

/*
 * set_retention(tbl, retention, lock): retention can be raised, never
 * lowered; once locked it cannot change at all (like Oracle's LOCKED).
 */
Datum
set_retention(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Interval   *retention;
	bool		lock;
	char	   *name;
	Oid			argtypes[3] = {REGCLASSOID, INTERVALOID, BOOLOID};
	Datum		values[3];
	Interval   *current = NULL;
	bool		locked = false;
	Interval	zero;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of hipaa_audit.set_retention must not be null")));
	relid = PG_GETARG_OID(0);
	retention = PG_GETARG_INTERVAL_P(1);
	lock = PG_GETARG_BOOL(2);
	HaCheckRelationExists(relid);
	name = HaRelDisplayName(relid);
	if (!HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change the retention of %s", name),
				 errdetail("Only members of %s may.", HA_ADMIN_ROLE)));
	(void) HaRequireProtected(relid, NULL);
	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(retention),
										  IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention must be a positive interval")));

	/* One change of policy at a time, and never while a purge runs. */
	HaLockPurge(relid);

	/*
	 * The current policy, read without SQL (the UPDATE below re-checks it
	 * atomically).
	 */
	current = palloc(sizeof(Interval));
	if (!HaRegistryRetention(relid, current, &locked))
		elog(ERROR, "registry row of %s not found", name);

	if (locked)
		HaRefuse("change the retention of", psprintf("protected table %s", name),
				 "Its retention is locked.", NULL);
	if (!NeverShorter(retention, current))
		HaRefuse("lower the retention of", psprintf("protected table %s", name),
				 psprintf("Its retention is %s; retention can be raised, never lowered.",
						  DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(current)))),
				 "A new retention in other units must be longer on every date: a month counts as 28 to 31 days, a year as 365 or 366.");

	values[1] = IntervalPGetDatum(retention);
	values[2] = BoolGetDatum(lock);
	values[0] = ObjectIdGetDatum(relid);
	if (HaRunSql("UPDATE hipaa_audit.registry SET retention = $2, "
				 "retention_locked = retention_locked OR $3 "
				 "WHERE relid OPERATOR(pg_catalog.=) $1 AND NOT retention_locked",
				 3, argtypes, values, NULL, InvalidOid, 0, NULL, NULL) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the retention of %s was changed concurrently", name),
				 errhint("Try again.")));
	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: retention of %s set to %s%s by role %s", name,
					DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(retention))),
					lock ? " and locked" : "",
					GetUserNameFromId(GetUserId(), false))));
	PG_RETURN_VOID();
}

/*
 * Does an unreleased legal hold cover this table?  Read directly (no SQL):
 * it is asked while a table owner drops a table, and the owner need
 * not be able to read the holds.
 */
bool
HaTableHeld(Oid relid)
{
	const HaProtectedEntry *entry = HaLookupProtected(relid);
	Oid			holdsid;
	Oid			releasesid;
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	TupleTableSlot *slot;
	List	   *ids = NIL;
	bool		held;

	if (entry == NULL)
		return false;
	holdsid = get_relname_relid("legal_holds", HaSchemaOid());
	releasesid = get_relname_relid("hold_releases", HaSchemaOid());
	if (!OidIsValid(holdsid) || !OidIsValid(releasesid))
		return false;

	/* Latest: a hold committed while the caller waited for its lock counts. */
	snap = RegisterSnapshot(GetLatestSnapshot());
	rel = table_open(holdsid, AccessShareLock);
	scan = table_beginscan(rel, snap, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		u = slot_getattr(slot, 2, &isnull);

		if (!isnull && memcmp(DatumGetUUIDP(u)->data, entry->uuid.data, UUID_LEN) == 0)
		{
			Datum		id = slot_getattr(slot, 1, &isnull);
			int64	   *p = palloc(sizeof(int64));

			*p = DatumGetInt64(id);
			ids = lappend(ids, p);
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	held = (ids != NIL);
	if (held)
	{
		int			released = 0;

		rel = table_open(releasesid, AccessShareLock);
		scan = table_beginscan(rel, snap, 0, NULL);
		slot = table_slot_create(rel, NULL);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			int64		id = DatumGetInt64(slot_getattr(slot, 1, &isnull));
			ListCell   *lc;

			foreach(lc, ids)
				if (*(int64 *) lfirst(lc) == id)
					released++;
		}
		ExecDropSingleTupleTableSlot(slot);
		table_endscan(scan);
		table_close(rel, AccessShareLock);
		held = released < list_length(ids);
	}
	UnregisterSnapshot(snap);
	return held;
}

PG_FUNCTION_INFO_V1(place_hold);

Datum
place_hold(PG_FUNCTION_ARGS)
{
	Oid			relid;
	const HaProtectedEntry *entry;
	Oid			argtypes[4] = {UUIDOID, REGCLASSOID, NAMEOID, TEXTOID};
	Datum		values[4];
	int64		id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of hipaa_audit.place_hold must not be null")));
	relid = PG_GETARG_OID(0);
	HaCheckRelationExists(relid);
	if (VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(1)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a legal hold needs a reason")));
	if (!HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to place a legal hold"),
				 errdetail("Only members of %s may.", HA_ADMIN_ROLE)));
	/*
	 * Wait for a DROP of the table or a purge of it that is under way, so
	 * that a hold, once placed, holds: the table is still there, and no purge
	 * that began before it removes rows after it (purge_expired() takes the
	 * same lock, and looks for holds after taking it).
	 */
	LockRelationOid(relid, AccessShareLock);
	HaCheckRelationExists(relid);
	entry = HaRequireProtected(relid, NULL);
	HaLockPurge(relid);
	values[0] = UUIDPGetDatum((pg_uuid_t *) &entry->uuid);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	values[3] = PG_GETARG_DATUM(1);
	id = HaRunAsExtensionOwnerInt8("INSERT INTO hipaa_audit.legal_holds (table_uuid, relid, placed_at, placed_by, reason) "
								   "VALUES ($1, $2, pg_catalog.clock_timestamp(), $3, $4) RETURNING id",
								   4, argtypes, values);
	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: legal hold " INT64_FORMAT " placed on %s by role %s", id,
					HaRelDisplayName(relid), GetUserNameFromId(GetUserId(), false))));
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(release_hold);

Datum
release_hold(PG_FUNCTION_ARGS)
{
	Oid			argtypes[3] = {INT8OID, NAMEOID, TEXTOID};
	Datum		values[3];
	int64		id;
	bool		exists;
	bool		released = false;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of hipaa_audit.release_hold must not be null")));
	if (!HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to release a legal hold"),
				 errdetail("Only members of %s may.", HA_ADMIN_ROLE)));
	if (VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(1)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("releasing a legal hold needs a reason")));
	id = PG_GETARG_INT64(0);
	values[0] = Int64GetDatum(id);
	{
		char	   *r = HaQueryText("SELECT EXISTS (SELECT 1 FROM hipaa_audit.hold_releases "
									"WHERE hold_id OPERATOR(pg_catalog.=) h.id) "
									"FROM hipaa_audit.legal_holds h WHERE h.id OPERATOR(pg_catalog.=) $1",
									1, argtypes, values, 0, &exists);

		released = exists && r != NULL && strcmp(r, "t") == 0;
	}
	if (!exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("legal hold " INT64_FORMAT " does not exist", id)));
	if (released)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("legal hold " INT64_FORMAT " is already released", id)));
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	values[2] = PG_GETARG_DATUM(1);
	/* A second release of the same hold is a duplicate key: refused. */
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.hold_releases (hold_id, released_at, released_by, reason) "
						  "VALUES ($1, pg_catalog.clock_timestamp(), $2, $3)",
						  3, argtypes, values);
	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: legal hold " INT64_FORMAT " released by role %s", id,
					GetUserNameFromId(GetUserId(), false))));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(is_protected);

Datum
is_protected(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(HaIsProtected(PG_GETARG_OID(0)));
}
