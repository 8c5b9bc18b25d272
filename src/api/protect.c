/*-------------------------------------------------------------------------
 *
 * protect.c
 *	  protect(), protect_replica(), unprotect(), is_protected() (layer
 *	  api/): which tables can be protected, and the steps that make one
 *	  insert-only and tamper-evident or, once idle past its retention,
 *	  ordinary again.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/relation.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/heap.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

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

/* The arguments of protect(): a positive retention, a chain count, the floor. */
static void
CheckProtectArguments(Interval *retention, int32 chains)
{
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  IntervalPGetDatum(retention),
										  IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention must be a positive interval"),
				 errhint("HIPAA asks for six years: retention => '6 years'.")));
	if (chains < 1 || chains > HA_MAX_CHAINS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chains must be between 1 and %d", HA_MAX_CHAINS)));
	HaRetentionCheckFloor(retention);
}

/*
 * One table (or partition) that protect() will chain, under its
 * AccessExclusiveLock (held to the end of the transaction): protectable,
 * encodable, rewritable; whether it has rows, and its owner's USAGE on its
 * schema when it has (the rows move as the owner).
 */
static bool
CheckChainedTable(Relation rel, Oid parent, bool replica)
{
	Oid			relid = RelationGetRelid(rel);
	char	   *name = HaRelDisplayName(relid);
	bool		had_rows;
	Oid			owner = rel->rd_rel->relowner;

	if (HaIsProtected(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is already protected", name),
				 errhint("See hipaa_audit.protected_tables.")));
	HaCheckProtectable(rel, parent);
	HaCheckEncodable(rel, false);
	had_rows = HaRelationHasRows(relid);
	if (replica && had_rows)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot protect %s as a logical replica: it already has rows", name),
				 errdetail("A replica's rows come only from the publisher, with the publisher's chain columns."),
				 errhint("Start from an empty table; the subscription's initial copy fills it.")));
	HaCheckRewritable(rel, had_rows);
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
	return had_rows;
}

/*
 * Everything about the table itself, under its AccessExclusiveLock (held to
 * the end of the transaction), and for a partitioned table about each of
 * its partitions, locked the same way.  Returns the tables whose rows
 * protect() must move into the chain.
 */
static List *
CheckTableForProtect(Oid relid, bool replica, List **parts)
{
	/* relation_open: an index or other non-table gets our own refusal. */
	Relation	rel = relation_open(relid, AccessExclusiveLock);
	List	   *with_rows = NIL;
	ListCell   *lc;

	*parts = NIL;
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		if (HaIsProtected(relid))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("table %s is already protected", HaRelDisplayName(relid)),
					 errhint("See hipaa_audit.protected_tables.")));
		HaCheckProtectable(rel, InvalidOid);
		HaCheckEncodable(rel, false);
		if (replica)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot protect partitioned table %s as a logical replica",
							HaRelDisplayName(relid)),
					 errdetail("Each partition has chains of its own identity; a replica takes one publisher table's identity."),
					 errhint("Publish each partition (publish_via_partition_root = false) into its own protect_replica() table.")));
		*parts = HaPartitionsOf(relid, AccessExclusiveLock);
		foreach(lc, *parts)
		{
			Relation	part = relation_open(lfirst_oid(lc), AccessExclusiveLock);

			if (CheckChainedTable(part, relid, false))
				with_rows = lappend_oid(with_rows, lfirst_oid(lc));
			relation_close(part, NoLock);
			HaCheckGeneratedLikeParent(relid, lfirst_oid(lc));
		}
	}
	else if (CheckChainedTable(rel, InvalidOid, replica))
		with_rows = list_make1_oid(relid);
	relation_close(rel, NoLock);

	if (OidIsValid(get_extension_oid("pg_surgery", true)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot protect tables while extension pg_surgery is installed"),
				 errdetail("Its functions remove or freeze rows without going through the executor."),
				 errhint("DROP EXTENSION pg_surgery first.")));
	return with_rows;
}

/*
 * Step 1: the chain columns, the unique index the chain is walked through
 * (also by the trigger when it rebuilds a head), a BRIN index on audit_at
 * (time ranges for verify_rows(); tiny on a time-ordered table), and the
 * chain trigger.  On a partitioned table the columns, the BRIN index and
 * the trigger reach every partition; the unique index is per partition
 * (HaAddPartitionGuards), as PostgreSQL allows a unique index on a
 * partitioned table only with the partition key in it.
 */
static void
AddChainColumns(const char *name, bool partitioned)
{
	char	   *sql = psprintf("ALTER TABLE %s "
							   "ADD COLUMN %s pg_catalog.int4, ADD COLUMN %s pg_catalog.int8, "
							   "ADD COLUMN %s pg_catalog.timestamptz, ADD COLUMN %s pg_catalog.text, "
							   "ADD COLUMN %s pg_catalog.text, ADD COLUMN %s pg_catalog.inet, "
							   "ADD COLUMN %s pg_catalog.bytea, ADD COLUMN %s pg_catalog.bytea; "
							   "%s%s%s%s%s%s%s"
							   "CREATE INDEX ON %s USING brin (%s) WITH (autosummarize = on); "
							   "CREATE TRIGGER %s BEFORE INSERT ON %s "
							   "FOR EACH ROW EXECUTE FUNCTION hipaa_audit.chain_row(); "
							   "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s",
							   name, HA_COL_CHAIN, HA_COL_SEQ, HA_COL_AT, HA_COL_SESSION_ROLE,
							   HA_COL_ROLE, HA_COL_CLIENT, HA_COL_PREV, HA_COL_HASH,
							   partitioned ? "" : "CREATE UNIQUE INDEX ON ",
							   partitioned ? "" : name,
							   partitioned ? "" : " (",
							   partitioned ? "" : HA_COL_CHAIN,
							   partitioned ? "" : ", ",
							   partitioned ? "" : HA_COL_SEQ,
							   partitioned ? "" : "); ",
							   name, HA_COL_AT,
							   quote_identifier(HA_TRIGGER_CHAIN), name,
							   name, quote_identifier(HA_TRIGGER_CHAIN));

	HaRunAsExtensionOwner(sql, 0, NULL, NULL);
}

/* Step 2: the registry row, which the chain trigger reads. */
static void
RegisterTable(Oid relid, Interval *retention, int32 chains, pg_uuid_t *uuid,
			  bool replica)
{
	HaRegisterTable(relid, retention, chains, uuid, replica, InvalidOid, false);
	HaChainForgetTable(relid);
	HaMarkDatabase(true);
}

/*
 * Step 3: rows already there enter the chain, in their physical order, by
 * one statement run as the table's owner under
 * SECURITY_RESTRICTED_OPERATION: the rows pass through the owner's triggers
 * (ENABLE ALWAYS or REPLICA ones fire under replica), CHECKs, index
 * expressions and generated columns, which must never run with more rights
 * than the owner has.  They are stamped with the caller as audit_role.
 */
static void
MoveExistingRows(Oid relid, const char *name, Oid owner)
{
	char	   *cols = InsertableColumns(relid);
	char	   *sql = psprintf("WITH old AS (DELETE FROM ONLY %s RETURNING %s) "
							   "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE "
							   "SELECT %s FROM old",
							   name, cols, name, cols, cols);

	ha_stamp_role = GetUserId();
	PG_TRY();
	{
		(void) HaRunSql(sql, 0, NULL, NULL, NULL, owner, HA_SQL_REPLICA, NULL, NULL);
	}
	PG_FINALLY();
	{
		ha_stamp_role = InvalidOid;
	}
	PG_END_TRY();
}

/* Step 4: the guards, and NOT NULL now that every row is stamped. */
static void
InstallGuards(const char *name)
{
	char	   *sql = psprintf("CREATE TRIGGER %s BEFORE UPDATE OR DELETE ON %s "
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
}

static void
RecheckProtectable(Oid relid, Oid parent)
{
	Relation	rel = relation_open(relid, AccessExclusiveLock);

	HaCheckProtectable(rel, parent);
	relation_close(rel, NoLock);
}

static Oid
TableOwner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * The work of protect() and protect_replica(); uuid is NULL for a new table
 * identity, or the publisher's for a logical replica.  A partitioned table
 * is registered with each of its partitions (docs/partitions.md).
 */
static void
ProtectTable(Oid relid, Interval *retention, int32 chains, pg_uuid_t *uuid,
			 bool replica)
{
	char	   *name;
	List	   *parts;
	List	   *with_rows;
	bool		partitioned;
	ListCell   *lc;

	if (!OidIsValid(HaSchemaOid()))
		elog(ERROR, "hipaa_audit is not installed in this database");
	CheckProtectArguments(retention, chains);
	HaCheckRelationExists(relid);

	/*
	 * Check the caller's right before taking the lock, so that nobody can
	 * queue an AccessExclusiveLock on a table they may not protect.
	 */
	HaRequireOwnerOrAdmin(relid, "protect");
	with_rows = CheckTableForProtect(relid, replica, &parts);
	partitioned = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;
	name = HaRelDisplayName(relid);

	/*
	 * Registered first: from here on the table is protected for every
	 * statement that is not the extension's own, including what an event
	 * trigger runs at the end of the statements below.
	 */
	RegisterTable(relid, retention, chains, uuid, replica);
	foreach(lc, parts)
	{
		HaRegisterTable(lfirst_oid(lc), retention, chains, NULL, false, relid, false);
		HaChainForgetTable(lfirst_oid(lc));
	}
	AddChainColumns(name, partitioned);
	foreach(lc, parts)
		HaAddPartitionGuards(lfirst_oid(lc));
	foreach(lc, with_rows)
	{
		Oid			tbl = lfirst_oid(lc);

		MoveExistingRows(tbl, HaRelDisplayName(tbl), TableOwner(tbl));
	}
	InstallGuards(name);

	/* By OID: the name led where it meant (docs/attack-paths.md). */
	HaCheckGuardsInPlace(relid);
	foreach(lc, parts)
		HaCheckGuardsInPlace(lfirst_oid(lc));
	/* And nothing the statements above fired made the tables unprotectable. */
	RecheckProtectable(relid, InvalidOid);
	foreach(lc, parts)
		RecheckProtectable(lfirst_oid(lc), relid);

	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: table %s protected%s by role %s", name,
					replica ? " as a logical replica" :
					partitioned ? psprintf(" with its %d partitions", list_length(parts)) : "",
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
	const HaProtectedEntry *entry;
	List	   *parts;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.unprotect must not be null")));
	relid = PG_GETARG_OID(0);
	HaCheckRelationExists(relid);

	HaRequireAdmin(psprintf("unprotect table %s", HaRelDisplayName(relid)), "Only members of %s may unprotect a table.");

	rel = relation_open(relid, AccessExclusiveLock);
	name = HaRelDisplayName(relid);
	entry = HaRequireProtected(relid, NULL);
	if (OidIsValid(entry->parent))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot unprotect %s because it is a partition of protected table %s",
						name, HaRelDisplayName(entry->parent)),
				 errhint("Unprotect the partitioned table, or drop or detach the partition once its rows are past retention.")));
	parts = entry->partitioned ? HaRegisteredPartitions(relid) : NIL;
	foreach(lc, parts)
		LockRelationOid(lfirst_oid(lc), AccessExclusiveLock);
	if (HaTableHeld(relid))
		HaRefuse("unprotect", psprintf("protected table %s", name),
				 "The table is under a legal hold.",
				 "See hipaa_audit.legal_holds_active; release the hold first.");
	foreach(lc, parts)
		if (HaTableHeld(lfirst_oid(lc)))
			HaRefuse("unprotect", psprintf("protected table %s", name),
					 psprintf("Its partition %s is under a legal hold.", HaRelDisplayName(lfirst_oid(lc))),
					 "See hipaa_audit.legal_holds_active; release the hold first.");
	if (HaRowsWithinRetention(relid, &rows, &newest))
		HaRefuse("unprotect", psprintf("protected table %s", name),
				 "The table holds audit rows within their retention period.",
				 "Audit rows leave a protected table only through lawful purging after their retention period; see hipaa_audit.purge_expired().");
	relation_close(rel, NoLock);
	foreach(lc, parts)
	{
		int64		prows = 0;
		TimestampTz pnewest = 0;

		(void) HaRowsWithinRetention(lfirst_oid(lc), &prows, &pnewest);
		HaRecordRetired(lfirst_oid(lc), "unprotect", prows, pnewest);
		HaRunAsExtensionOwner(psprintf("DROP TRIGGER %s ON %s",
									   quote_identifier(HA_TRIGGER_TRUNCATE),
									   HaRelDisplayName(lfirst_oid(lc))), 0, NULL, NULL);
	}
	HaRecordRetired(relid, "unprotect", rows, newest);

	/* On a partitioned table, the row triggers and columns go from every partition. */
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
	/* (A 0.1.0 schema, before the update, has no partition_of column.) */
	HaRunAsExtensionOwner(parts != NIL ?
						  "DELETE FROM hipaa_audit.registry WHERE relid OPERATOR(pg_catalog.=) $1 "
						  "OR partition_of OPERATOR(pg_catalog.=) $1" :
						  "DELETE FROM hipaa_audit.registry WHERE relid OPERATOR(pg_catalog.=) $1",
						  1, argtypes, values);
	foreach(lc, parts)
		HaChainForgetTable(lfirst_oid(lc));
	HaRegistryChanged();
	HaChainForgetTable(relid);
	if (!HaAnyProtected())
		HaMarkDatabase(false);

	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: table %s unprotected by role %s", name,
					GetUserNameFromId(GetUserId(), false))));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(is_protected);

Datum
is_protected(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(HaIsProtected(PG_GETARG_OID(0)));
}
