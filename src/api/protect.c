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
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

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
		case RELKIND_INDEX:
		case RELKIND_PARTITIONED_INDEX:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("cannot protect %s because it is an index", name),
					 errhint("Protect the table it indexes.")));
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
 * Everything about the table itself, under its AccessExclusiveLock (held to
 * the end of the transaction): not yet protected, protectable, encodable,
 * rewritable; whether it has rows, and its owner.
 */
static void
CheckTableForProtect(Oid relid, bool replica, bool *had_rows, Oid *owner)
{
	/* relation_open: an index or other non-table gets our own refusal. */
	Relation	rel = relation_open(relid, AccessExclusiveLock);
	char	   *name = HaRelDisplayName(relid);

	if (HaIsProtected(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is already protected", name),
				 errhint("See hipaa_audit.protected_tables.")));

	CheckProtectable(rel);
	HaCheckEncodable(rel);
	*had_rows = HaRelationHasRows(relid);
	if (replica && *had_rows)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot protect %s as a logical replica: it already has rows", name),
				 errdetail("A replica's rows come only from the publisher, with the publisher's chain columns."),
				 errhint("Start from an empty table; the subscription's initial copy fills it.")));
	CheckRewritable(rel, *had_rows);
	*owner = rel->rd_rel->relowner;
	if (*had_rows &&
		HaNamespaceAclCheck(RelationGetNamespace(rel), *owner, ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot protect %s: its owner %s has no USAGE on schema %s",
						name, GetUserNameFromId(*owner, false),
						get_namespace_name(RelationGetNamespace(rel))),
				 errdetail("protect() moves the rows a table already has into the chain as the table's owner, so that no code of the owner's runs with more rights."),
				 errhint("GRANT USAGE ON SCHEMA %s TO %s, or protect the table while it is empty.",
						 quote_identifier(get_namespace_name(RelationGetNamespace(rel))),
						 quote_identifier(GetUserNameFromId(*owner, false)))));
	table_close(rel, NoLock);

	if (OidIsValid(get_extension_oid("pg_surgery", true)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot protect tables while extension pg_surgery is installed"),
				 errdetail("Its functions remove or freeze rows without going through the executor."),
				 errhint("DROP EXTENSION pg_surgery first.")));
}

/*
 * Step 1: the chain columns, the unique index the chain is walked through
 * (also by the trigger when it rebuilds a head), a BRIN index on audit_at
 * (time ranges for verify_rows(); tiny on a time-ordered table), and the
 * chain trigger.
 */
static void
AddChainColumns(const char *name)
{
	char	   *sql = psprintf("ALTER TABLE %s "
							   "ADD COLUMN %s pg_catalog.int4, ADD COLUMN %s pg_catalog.int8, "
							   "ADD COLUMN %s pg_catalog.timestamptz, ADD COLUMN %s pg_catalog.text, "
							   "ADD COLUMN %s pg_catalog.text, ADD COLUMN %s pg_catalog.inet, "
							   "ADD COLUMN %s pg_catalog.bytea, ADD COLUMN %s pg_catalog.bytea; "
							   "CREATE UNIQUE INDEX ON %s (%s, %s); "
							   "CREATE INDEX ON %s USING brin (%s) WITH (autosummarize = on); "
							   "CREATE TRIGGER %s BEFORE INSERT ON %s "
							   "FOR EACH ROW EXECUTE FUNCTION hipaa_audit.chain_row(); "
							   "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s",
							   name, HA_COL_CHAIN, HA_COL_SEQ, HA_COL_AT, HA_COL_SESSION_ROLE,
							   HA_COL_ROLE, HA_COL_CLIENT, HA_COL_PREV, HA_COL_HASH,
							   name, HA_COL_CHAIN, HA_COL_SEQ,
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
	Oid			argtypes[6] = {REGCLASSOID, INTERVALOID, INT4OID, NAMEOID, UUIDOID, BOOLOID};
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

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
	HaRegistryChanged();
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

/*
 * The work of protect() and protect_replica(); uuid is NULL for a new table
 * identity, or the publisher's for a logical replica.
 */
static void
ProtectTable(Oid relid, Interval *retention, int32 chains, pg_uuid_t *uuid,
			 bool replica)
{
	char	   *name;
	bool		had_rows;
	Oid			owner;

	if (!OidIsValid(HaSchemaOid()))
		elog(ERROR, "hipaa_audit is not installed in this database");
	CheckProtectArguments(retention, chains);
	HaCheckRelationExists(relid);

	/*
	 * Check the caller's right before taking the lock, so that nobody can
	 * queue an AccessExclusiveLock on a table they may not protect.
	 */
	HaRequireOwnerOrAdmin(relid, "protect");
	CheckTableForProtect(relid, replica, &had_rows, &owner);
	name = HaRelDisplayName(relid);

	AddChainColumns(name);
	RegisterTable(relid, retention, chains, uuid, replica);
	if (had_rows)
		MoveExistingRows(relid, name, owner);
	InstallGuards(name);

	/* By OID: the name led where it meant (docs/attack-paths.md). */
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

	HaRequireAdmin(psprintf("unprotect table %s", HaRelDisplayName(relid)), "Only members of %s may unprotect a table.");

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
