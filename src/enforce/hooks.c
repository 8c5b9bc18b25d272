/*-------------------------------------------------------------------------
 *
 * hooks.c
 *	  Executor, utility and object-access hooks that refuse every change
 *	  to a protected table, whoever asks and whatever the trigger settings.
 *	  Layer enforce/ (docs/architecture.md).
 *
 * The guard triggers (guard.c) are the first wall.  These hooks are the
 * second one and do not depend on triggers firing:
 *
 *	  ExecutorStart	 after the plan is initialised and before any row is
 *					 touched, every ModifyTable node (top level, data-modifying
 *					 CTEs, SQL and PL/pgSQL functions, views, rules, RI
 *					 cascades) is checked: UPDATE, DELETE, MERGE and
 *					 INSERT ... ON CONFLICT DO UPDATE on a protected table are
 *					 refused.
 *	  ProcessUtility TRUNCATE (with inheritance and CASCADE worked out) and
 *					 DDL that would weaken a protected table or the
 *					 extension's own objects.
 *	  object_access	 OAT_DROP sees every object a DROP removes, including
 *					 those reached by CASCADE, DROP SCHEMA and DROP OWNED: a
 *					 protected table is dropped by name once idle past its
 *					 retention and not held, through a cascade only while
 *					 empty; its columns never.  Each drop is recorded.
 *
 * The pass: each hook notes, for as long as the statement it sees runs,
 * whether that statement is the extension's own (run by HaRunSql, or a
 * statement of our own install, upgrade or drop script).  A statement
 * nested in it (a trigger's, a function's, an event trigger's) passes
 * through the same hooks and is judged for itself, so the pass never
 * reaches code the extension did not write.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/heap.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/objectaddress.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/index.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/tablecmds.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "utils/typcache.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/varlena.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

typedef enum StatementKind
{
	STMT_OTHER,					/* anyone's: every check applies */
	STMT_OURS,					/* the extension's own statement */
	STMT_EXT_COMMAND,			/* CREATE or ALTER EXTENSION hipaa_audit: the
								 * statements of its script are ours */
	STMT_EXT_DROP				/* DROP EXTENSION hipaa_audit, nothing
								 * protected: its members may go */
} StatementKind;

/* The kind and query text of the innermost statement running now. */
static StatementKind current_stmt = STMT_OTHER;
static const char *current_text = NULL;

/*
 * Protected tables a DROP TABLE statement may drop (idle past retention, not
 * held): their guard triggers and chain index go with them.  Set by
 * CheckDrop, reset when the statement ends.
 */
static List *dropping_tables = NIL;

/* This statement dropped a protected table (its registry row is gone). */
static bool dropped_protected = false;

/*
 * Protected tables whose guard or chain trigger this statement dropped
 * without naming the table in DROP TABLE; if the table is still protected
 * when the statement ends, the statement is refused.
 */
static List *guards_dropped = NIL;

/*
 * Partitions this statement verified and receipted before PostgreSQL drops
 * or detaches them (pairs: the partition, its partitioned table for a
 * detach or InvalidOid for a drop).  PostgreSQL resolves the statement's
 * name again; when the statement ends, each must really be gone (or no
 * longer a partition), or the statement is refused: a receipt never
 * stands for a table that is still there.
 */
static List *retired_partitions = NIL;

static bool DatabaseMarked(Oid dboid);

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static object_access_hook_type prev_object_access = NULL;

#define IMMUTABLE_DETAIL "The table is an insert-only audit table protected by hipaa_audit."
#define IMMUTABLE_HINT "Audit rows can never be changed; insert a new row that records the correction instead."
#define DDL_DETAIL "This change would weaken the protection of an audit table."
#define DDL_HINT "Protected tables accept INSERT, SELECT, indexes, VACUUM, ANALYZE, CLUSTER, REINDEX, GRANT and COMMENT."
#define OWN_DETAIL "Objects of the hipaa_audit extension change only through CREATE EXTENSION, ALTER EXTENSION ... UPDATE and DROP EXTENSION."

/*
 * The kind of a statement about to run, by its query text: ours if it is
 * the very text HaRunSql is running, or if it comes straight from our
 * extension script (its parent is the CREATE or ALTER EXTENSION statement
 * and that script is running).  Another extension's script is not ours,
 * nor an event trigger or function fired while ours runs.
 */
static StatementKind
KindOf(const char *text)
{
	if (text != NULL && text == ha_internal_sql)
		return STMT_OURS;
	/* A subcommand of ours (an index of CREATE TABLE, say) shares its text. */
	if (current_stmt == STMT_OURS && text != NULL && text == current_text)
		return STMT_OURS;
	if (current_stmt == STMT_EXT_COMMAND && creating_extension &&
		OidIsValid(CurrentExtensionObject) &&
		CurrentExtensionObject == get_extension_oid(HA_EXTENSION_NAME, true))
		return STMT_OURS;
	return STMT_OTHER;
}

/*
 * Does the statement running now get the pass?  Also every statement of
 * pg_upgrade's restore of the schema into a new cluster (IsBinaryUpgrade:
 * a server started with -b, which only whoever holds the data directory
 * can do): it recreates the extension's objects one by one and the tables
 * with their triggers, while the rows come over as data files, unchanged,
 * and their hash chains with them (docs/operations.md).
 */
static bool
Bypass(void)
{
	return current_stmt == STMT_OURS || current_stmt == STMT_EXT_DROP ||
		!IsTransactionState() || IsBinaryUpgrade;
}

static char *
ProtectedName(Oid relid)
{
	return psprintf("protected table %s", HaRelDisplayName(relid));
}

static bool
InOurSchema(Oid nspid)
{
	Oid			ours = HaSchemaOid();

	return OidIsValid(ours) && nspid == ours;
}

static bool
RelInOurSchema(Oid relid)
{
	return OidIsValid(relid) && InOurSchema(get_rel_namespace(relid));
}

/* "table hipaa_audit.registry", "view hipaa_audit.protected_tables" */
static char *
OwnRelName(Oid relid)
{
	char		relkind = get_rel_relkind(relid);

	return psprintf("%s %s",
					relkind == RELKIND_VIEW ? "view" :
					relkind == RELKIND_INDEX ? "index" :
					relkind == RELKIND_SEQUENCE ? "sequence" : "table",
					HaRelDisplayName(relid));
}

static void
RefuseTypeChange(const char *action, Oid typid, Oid tableid)
{
	HaRefuse(action, psprintf("type %s, which protected table %s uses",
							  format_type_be(typid), HaRelDisplayName(tableid)),
			 "The stored values' binary form, and so their hashes, would change.",
			 "Create a new type and use it in a new column instead.");
}

static void
RefuseOwn(const char *action, const char *what)
{
	HaRefuse(action, psprintf("%s of the hipaa_audit extension", what),
			 OWN_DETAIL, NULL);
}

/* ----------------------------------------------------------------
 * Executor
 * ----------------------------------------------------------------
 */

static void
CheckResultRelation(Relation rel, CmdType operation, OnConflictAction onconflict)
{
	Oid			relid = RelationGetRelid(rel);
	const char *action = NULL;

	if (HaIsProtected(relid))
	{
		switch (operation)
		{
			case CMD_INSERT:
				if (onconflict == ONCONFLICT_UPDATE)
					action = "INSERT ... ON CONFLICT DO UPDATE into";
				else if (onconflict == ONCONFLICT_NOTHING)
					HaChainMarkSpeculative(relid);	/* rows may be skipped */
				break;
			case CMD_UPDATE:
				action = "UPDATE";
				break;
			case CMD_DELETE:
				action = "DELETE FROM";
				break;
			case CMD_MERGE:
				action = "MERGE INTO";
				break;
			default:
				action = "modify";
				break;
		}
		if (action)
			HaRefuse(action, ProtectedName(relid), IMMUTABLE_DETAIL, IMMUTABLE_HINT);
	}
	else if (IsCatalogRelationOid(relid) && !IsBinaryUpgrade && HaAnyProtected())
	{
		/*
		 * A superuser can switch a trigger off or rename a table by writing
		 * to the catalogs directly; DDL is checked, direct edits cannot be,
		 * so they are refused while anything is protected.
		 */
		HaRefuse("modify", psprintf("system catalog %s while tables are protected",
									HaRelDisplayName(relid)),
				 "Direct catalog edits could switch off the protection of audit tables.",
				 "Use DDL instead; hipaa_audit checks it.");
	}
	else if (relid == DbRoleSettingRelationId && !IsBinaryUpgrade &&
			 DatabaseMarked(InvalidOid))
	{
		/*
		 * The shared catalog that marks databases holding protected tables,
		 * written directly from a database that holds none: refused from
		 * every database while any database is marked.
		 */
		HaRefuse("modify", "system catalog pg_catalog.pg_db_role_setting while a database holds protected tables",
				 "It marks the databases that hold protected tables, so that DROP DATABASE can be refused.",
				 "Use ALTER DATABASE ... SET or RESET; hipaa_audit checks it.");
	}
	else if (RelInOurSchema(relid))
		RefuseOwn(operation == CMD_INSERT ? "INSERT INTO" :
				  operation == CMD_UPDATE ? "UPDATE" :
				  operation == CMD_DELETE ? "DELETE FROM" : "MERGE INTO",
				  OwnRelName(relid));
}

static bool
CheckPlanStateWalker(PlanState *ps, void *context)
{
	if (ps == NULL)
		return false;
	if (IsA(ps, ModifyTableState))
	{
		ModifyTableState *mts = (ModifyTableState *) ps;
		ModifyTable *node = (ModifyTable *) ps->plan;

		for (int i = 0; i < mts->mt_nrels; i++)
			CheckResultRelation(mts->resultRelInfo[i].ri_RelationDesc,
								mts->operation, node->onConflictAction);
	}
	return planstate_tree_walker(ps, CheckPlanStateWalker, context);
}

static void
HaExecutorStart(QueryDesc *queryDesc, int eflags)
{
	StatementKind save = current_stmt;
	const char *save_text = current_text;

	current_stmt = KindOf(queryDesc->sourceText);
	current_text = queryDesc->sourceText;
	PG_TRY();
	{
		if (prev_ExecutorStart)
			prev_ExecutorStart(queryDesc, eflags);
		else
			standard_ExecutorStart(queryDesc, eflags);

		/*
		 * Checked after the plan is initialised (the result relations are
		 * open then) and before ExecutorRun touches any row.  EXPLAIN
		 * without ANALYZE changes nothing and is let through.
		 */
		if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
			queryDesc->plannedstmt->resultRelations != NIL &&
			!IsParallelWorker() && !Bypass())
		{
			ListCell   *lc;

			(void) CheckPlanStateWalker(queryDesc->planstate, NULL);
			foreach(lc, queryDesc->estate->es_subplanstates)
				(void) CheckPlanStateWalker((PlanState *) lfirst(lc), NULL);
		}
	}
	PG_FINALLY();
	{
		current_stmt = save;
		current_text = save_text;
	}
	PG_END_TRY();
}

/* Rows are changed, and triggers fire, in Run and Finish: same kind. */
static void
HaExecutorRun(HA_EXECUTOR_RUN_PARAMS)
{
	StatementKind save = current_stmt;
	const char *save_text = current_text;

	current_stmt = KindOf(queryDesc->sourceText);
	current_text = queryDesc->sourceText;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(HA_EXECUTOR_RUN_ARGS);
		else
			standard_ExecutorRun(HA_EXECUTOR_RUN_ARGS);
	}
	PG_FINALLY();
	{
		current_stmt = save;
		current_text = save_text;
	}
	PG_END_TRY();
}

static void
HaExecutorFinish(QueryDesc *queryDesc)
{
	StatementKind save = current_stmt;
	const char *save_text = current_text;

	current_stmt = KindOf(queryDesc->sourceText);
	current_text = queryDesc->sourceText;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		current_stmt = save;
		current_text = save_text;
	}
	PG_END_TRY();
}

/* ----------------------------------------------------------------
 * Utility statements
 * ----------------------------------------------------------------
 */

static Oid
LookupRel(RangeVar *rv)
{
	if (rv == NULL)
		return InvalidOid;
	return RangeVarGetRelid(rv, NoLock, true);
}

/*
 * The relation a command will change, looked up as PostgreSQL's own command
 * does: with the command's lock mode, after checking ownership (so nobody
 * can queue a lock on a table they may not alter), retrying if the name
 * moved while we waited.  Once we hold the lock, the object the name led
 * to can neither be dropped nor renamed away, so PostgreSQL's own lookup
 * finds the object we checked.  (A schema renamed under it is the one case
 * a lock cannot cover; the backstop in backstop.c checks the object that
 * really changed.)
 */
static Oid
LookupRelForChange(RangeVar *rv, LOCKMODE lockmode)
{
	if (rv == NULL)
		return InvalidOid;
	return RangeVarGetRelidExtended(rv, lockmode, RVR_MISSING_OK,
									RangeVarCallbackOwnsRelation, NULL);
}

static void
CheckTruncate(TruncateStmt *stmt)
{
	List	   *relids = NIL;
	ListCell   *lc;

	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = LookupRel(rv);

		if (!OidIsValid(relid))
			continue;
		relids = list_append_unique_oid(relids, relid);
		if (rv->inh)
			relids = list_concat_unique_oid(relids,
											find_all_inheritors(relid, NoLock, NULL));
	}

	/* Work out what CASCADE would reach, as ExecuteTruncate does. */
	if (stmt->behavior == DROP_CASCADE)
	{
		for (;;)
		{
			List	   *more = heap_truncate_find_FKs(relids);
			int			before = list_length(relids);

			relids = list_concat_unique_oid(relids, more);
			if (list_length(relids) == before)
				break;
		}
	}

	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);

		if (HaIsProtected(relid))
			HaRefuse("TRUNCATE", ProtectedName(relid), IMMUTABLE_DETAIL, IMMUTABLE_HINT);
		if (RelInOurSchema(relid))
			RefuseOwn("TRUNCATE", OwnRelName(relid));
	}
}

/*
 * COPY FROM writes rows without an executor plan the executor hook could
 * see.  Into a protected table it only inserts (the chain trigger stamps
 * each row); into the extension's own tables only pg_restore may write, and
 * it does so while they are still empty.
 */
static void
CheckCopy(CopyStmt *stmt)
{
	Oid			relid;

	if (!stmt->is_from || stmt->relation == NULL)
		return;
	relid = RangeVarGetRelidExtended(stmt->relation, RowExclusiveLock, RVR_MISSING_OK,
									 NULL, NULL);
	if (RelInOurSchema(relid) && HaRelationHasRows(relid))
		RefuseOwn("COPY FROM into", OwnRelName(relid));
}

/* Serial pseudo-types fill existing rows through their default. */
static bool
IsSerialTypeName(TypeName *tn)
{
	static const char *const serials[] = {
		"smallserial", "serial2", "serial", "serial4", "bigserial", "serial8"
	};

	if (tn == NULL || list_length(tn->names) != 1 || tn->arrayBounds != NIL)
		return false;
	for (size_t i = 0; i < lengthof(serials); i++)
		if (strcmp(strVal(linitial(tn->names)), serials[i]) == 0)
			return true;
	return false;
}

/*
 * A column added later must leave existing rows as they were: it has to be
 * nullable with nothing that would fill old rows (a default, a serial, an
 * identity, a generated expression, a domain default).
 */
static void
CheckAddColumn(Oid relid, ColumnDef *def)
{
	ListCell   *lc;
	bool		fills = def->raw_default != NULL || def->cooked_default != NULL ||
		def->identity != '\0' || def->generated != '\0' ||
		IsSerialTypeName(def->typeName);

	foreach(lc, def->constraints)
	{
		Constraint *c = lfirst_node(Constraint, lc);

		if (c->contype == CONSTR_DEFAULT || c->contype == CONSTR_IDENTITY ||
			c->contype == CONSTR_GENERATED)
			fills = true;
	}
	if (!fills && def->typeName != NULL)
	{
		Oid			typid = LookupTypeNameOid(NULL, def->typeName, true);

		fills = HaDomainHasDefault(typid);
	}
	if (!fills && def->typeName != NULL && !IsSerialTypeName(def->typeName))
	{
		Oid			typid = LookupTypeNameOid(NULL, def->typeName, true);

		if (OidIsValid(typid))
		{
			Relation	rel = relation_open(relid, AccessShareLock);

			HaCheckColumnType(rel, def->colname, typid);
			relation_close(rel, AccessShareLock);
		}
	}
	if (fills)
		HaRefuse(psprintf("ADD COLUMN \"%s\" with a default value to", def->colname),
				 ProtectedName(relid),
				 "A default, serial, identity or generated column would write values into existing audit rows.",
				 "Add the column without a default; existing rows keep NULL in it.");
}

static const char *
RefusedSubcommand(AlterTableCmd *cmd)
{
	switch (cmd->subtype)
	{
		case AT_DropColumn:
			return "DROP COLUMN";
		case AT_AlterColumnType:
			return "ALTER COLUMN ... TYPE";
		case AT_SetUnLogged:
			return "SET UNLOGGED";
		case AT_AddInherit:
			return "INHERIT";
		case AT_DropInherit:
			return "NO INHERIT";
		case AT_AttachPartition:
			return "ATTACH PARTITION";
		case AT_DetachPartition:
		case AT_DetachPartitionFinalize:
			return "DETACH PARTITION";
		case AT_EnableRule:
			return "ENABLE RULE";
		case AT_EnableAlwaysRule:
			return "ENABLE ALWAYS RULE";
		case AT_EnableReplicaRule:
			return "ENABLE REPLICA RULE";
		case AT_DisableRule:
			return "DISABLE RULE";
		case AT_EnableTrigAll:
			return "ENABLE TRIGGER ALL";
		case AT_EnableTrigUser:
			return "ENABLE TRIGGER USER";
		case AT_DisableTrigAll:
			return "DISABLE TRIGGER ALL";
		case AT_DisableTrigUser:
			return "DISABLE TRIGGER USER";
		case AT_SetAccessMethod:
			return "SET ACCESS METHOD";
		case AT_DropExpression:
			/* The column would start being hashed: every old row would fail. */
			return "ALTER COLUMN ... DROP EXPRESSION";
		case AT_EnableAlwaysTrig:
			/* What protect() sets and pg_dump restores: never a weakening. */
			return NULL;
		case AT_EnableTrig:
			return HaIsOurTrigger(cmd->name) ?
				psprintf("ENABLE TRIGGER %s", cmd->name) : NULL;
		case AT_EnableReplicaTrig:
			return HaIsOurTrigger(cmd->name) ?
				psprintf("ENABLE REPLICA TRIGGER %s", cmd->name) : NULL;
		case AT_DisableTrig:
			return HaIsOurTrigger(cmd->name) ?
				psprintf("DISABLE TRIGGER %s", cmd->name) : NULL;
		default:
			return NULL;
	}
}

static void
NoteRetired(Oid part, Oid parent)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	retired_partitions = lappend_oid(lappend_oid(retired_partitions, part), parent);
	MemoryContextSwitchTo(old);
}

/* Each partition retired by this statement went (see retired_partitions). */
static void
CheckRetiredGone(List *retired)
{
	for (int i = 0; i + 1 < list_length(retired); i += 2)
	{
		Oid			part = list_nth_oid(retired, i);
		Oid			parent = list_nth_oid(retired, i + 1);
		bool		there = OidIsValid(parent) ?
			(get_rel_relispartition(part) && get_partition_parent(part, true) == parent) :
			SearchSysCacheExists1(RELOID, ObjectIdGetDatum(part));

		if (there)
			HaRefuse(OidIsValid(parent) ? "DETACH" : "DROP",
					 psprintf("partition %s through a name that led elsewhere", HaRelDisplayName(part)),
					 "The partition was verified and receipted for removal, but the statement removed another table.",
					 "Name the partition with its schema.");
	}
}

/*
 * ATTACH PARTITION to a protected partitioned table: an empty ordinary
 * table, locked as ATTACH locks it (so no row can arrive before it is
 * attached and protected in the same statement).
 */
static void
CheckAttach(Oid parent, PartitionCmd *pc)
{
	Oid			part = RangeVarGetRelidExtended(pc->name, AccessExclusiveLock, RVR_MISSING_OK,
												RangeVarCallbackOwnsRelation, NULL);
	char		relkind;

	if (!OidIsValid(part))
		return;					/* PostgreSQL reports it */
	relkind = get_rel_relkind(part);
	if (relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot attach partitioned table %s to protected table %s",
						HaRelDisplayName(part), HaRelDisplayName(parent)),
				 errdetail("Multi-level partitioning is not supported: the partitions of a protected table are ordinary tables.")));
	if (relkind == RELKIND_FOREIGN_TABLE)
		HaRefuse(psprintf("ATTACH foreign table %s to", HaRelDisplayName(part)), ProtectedName(parent),
				 "Its rows would live outside this database, where hipaa_audit cannot guard them.", NULL);
	if (relkind == RELKIND_RELATION && HaRelationHasRows(part))
		HaRefuse(psprintf("ATTACH table %s, which has rows, to", HaRelDisplayName(part)), ProtectedName(parent),
				 "Its rows never passed through the chain trigger, so nothing proves what they were.",
				 "Attach an empty table and insert the rows through the partitioned table.");
}

/*
 * DETACH PARTITION from a protected partitioned table: as a DROP of the
 * partition (no row within retention, no hold), and it leaves the same
 * signed receipt (api/purge.c); the detached table is no longer protected.
 * CONCURRENTLY commits halfway, before a receipt could be stored with it:
 * refused.
 */
static void
CheckDetach(Oid parent, PartitionCmd *pc)
{
	Oid			part;

	if (pc->concurrent)
		HaRefuse("DETACH PARTITION ... CONCURRENTLY from", ProtectedName(parent),
				 "It commits before the detach is complete, so no receipt could be stored with it.",
				 "Detach without CONCURRENTLY, or let hipaa_audit.purge_expired() drop expired partitions.");
	part = RangeVarGetRelidExtended(pc->name, AccessExclusiveLock, RVR_MISSING_OK,
									RangeVarCallbackOwnsRelation, NULL);
	if (!HaIsProtected(part))
		return;					/* never protected (or not a partition) */
	if (HaTableHeld(part))
		HaRefuse("DETACH", ProtectedName(part),
				 "The partition or its partitioned table is under a legal hold.",
				 "See hipaa_audit.legal_holds_active; release the hold first.");
	if (HaRowsWithinRetention(part, NULL, NULL))
		HaRefuse("DETACH", ProtectedName(part),
				 "The partition holds audit rows within their retention period.",
				 "Partitions leave a protected table once every row is past retention; see hipaa_audit.purge_expired().");
	(void) HaRetirePartition(part, "detach", NULL);
	NoteRetired(part, parent);
}

static void
CheckAlterTable(AlterTableStmt *stmt)
{
	Oid			relid = LookupRelForChange(stmt->relation,
										   AlterTableGetLockLevel(stmt->cmds));
	bool		protected = HaIsProtected(relid);
	ListCell   *lc;

	if (RelInOurSchema(relid))
		RefuseOwn("ALTER", OwnRelName(relid));

	/* A composite type (or a table's row type) a protected column uses. */
	if (!protected && OidIsValid(relid))
	{
		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			if (cmd->subtype == AT_AddColumn || cmd->subtype == AT_DropColumn ||
				cmd->subtype == AT_AlterColumnType)
			{
				Oid			rowtype = get_rel_type_id(relid);
				Oid			user = OidIsValid(rowtype) ? HaProtectedTableUsingType(rowtype) : InvalidOid;

				if (OidIsValid(user))
					RefuseTypeChange(stmt->objtype == OBJECT_TYPE ?
									 "change the attributes of" : "change the columns of",
									 rowtype, user);
			}
		}
	}

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		/* Statements on other tables that would pull a protected one in. */
		if (cmd->subtype == AT_AddInherit)
		{
			Oid			parent = LookupRel((RangeVar *) cmd->def);

			if (HaIsProtected(parent))
				HaRefuse("INHERIT from", ProtectedName(parent),
						 "Changes made through a parent table reach its children.", NULL);
			if (RelInOurSchema(parent))
				RefuseOwn("INHERIT from", OwnRelName(parent));
		}
		if (cmd->subtype == AT_AttachPartition)
		{
			Oid			part = LookupRel(((PartitionCmd *) cmd->def)->name);

			if (HaIsProtected(part))
				HaRefuse("ATTACH PARTITION", ProtectedName(part),
						 "Changes made through a partitioned table reach its partitions.", NULL);
		}

		if (!protected)
			continue;

		if (stmt->objtype == OBJECT_TABLE && HaLookupProtected(relid)->partitioned &&
			(cmd->subtype == AT_AttachPartition || cmd->subtype == AT_DetachPartition))
		{
			if (cmd->subtype == AT_AttachPartition)
				CheckAttach(relid, (PartitionCmd *) cmd->def);
			else
				CheckDetach(relid, (PartitionCmd *) cmd->def);
			continue;
		}

		if (cmd->subtype == AT_AddColumn)
			CheckAddColumn(relid, castNode(ColumnDef, cmd->def));
		else
		{
			const char *what = RefusedSubcommand(cmd);

			if (what)
				HaRefuse(psprintf("%s on", what), ProtectedName(relid),
						 DDL_DETAIL, DDL_HINT);
		}
	}
}

static bool
ObjectInOurSchema(ObjectType type, Node *object)
{
	ObjectAddress addr;
	Relation	rel = NULL;
	Oid			nspid;

	if (object == NULL)
		return false;

	/*
	 * RENAME, SET SCHEMA and OWNER TO name a type or domain by a list of
	 * names; get_object_address wants a TypeName.
	 */
	if ((type == OBJECT_TYPE || type == OBJECT_DOMAIN) && IsA(object, List))
		object = (Node *) makeTypeNameFromNameList(castNode(List, object));
	addr = get_object_address(type, object, &rel, AccessShareLock, true);
	if (rel != NULL)
		relation_close(rel, NoLock);
	if (!OidIsValid(addr.objectId))
		return false;
	if (addr.classId == NamespaceRelationId)
		return InOurSchema(addr.objectId);
	if (addr.classId == ExtensionRelationId)
		return addr.objectId == get_extension_oid(HA_EXTENSION_NAME, true);
	nspid = get_object_namespace(&addr);
	return InOurSchema(nspid);
}

static bool
IsBeforeInsertRowTrigger(Oid relid, const char *tgname)
{
	Relation	tgrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		result = false;

	ScanKeyInit(&keys[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&keys[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(tgname));
	scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 2, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		int16		tgtype = ((Form_pg_trigger) GETSTRUCT(tup))->tgtype;

		result = TRIGGER_FOR_ROW(tgtype) && TRIGGER_FOR_BEFORE(tgtype) &&
			TRIGGER_FOR_INSERT(tgtype);
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	return result;
}

static void
CheckRename(RenameStmt *stmt)
{
	if (stmt->relation != NULL)
	{
		Oid			relid = LookupRelForChange(stmt->relation, AccessExclusiveLock);

		if (RelInOurSchema(relid))
			RefuseOwn("RENAME", OwnRelName(relid));
		if (!HaIsProtected(relid))
			return;
		switch (stmt->renameType)
		{
			case OBJECT_TRIGGER:
				if (HaIsOurTrigger(stmt->subname))
					HaRefuse(psprintf("RENAME TRIGGER %s on", stmt->subname),
							 ProtectedName(relid), DDL_DETAIL, NULL);
				if (strcmp(stmt->newname, HA_TRIGGER_CHAIN) > 0 &&
					IsBeforeInsertRowTrigger(relid, stmt->subname))
					HaRefuse(psprintf("rename BEFORE INSERT trigger \"%s\" to \"%s\" on",
									  stmt->subname, stmt->newname),
							 ProtectedName(relid),
							 psprintf("Triggers fire in name order; it would change rows after \"%s\" has hashed them.",
									  HA_TRIGGER_CHAIN),
							 psprintf("Give it a name that sorts before \"%s\".", HA_TRIGGER_CHAIN));
				break;
			case OBJECT_TABCONSTRAINT:
			case OBJECT_POLICY:
				break;
			case OBJECT_COLUMN:
			case OBJECT_ATTRIBUTE:
				HaRefuse(psprintf("RENAME COLUMN \"%s\" of", stmt->subname),
						 ProtectedName(relid),
						 "Column names are part of what auditors and verifiers rely on.",
						 "Add a view with the names you need.");
				break;
			default:
				HaRefuse("RENAME", ProtectedName(relid),
						 "Table names are part of what auditors and verifiers rely on.",
						 "Add a view with the name you need.");
		}
		return;
	}

	/* A domain constraint is named by its domain (a list of names). */
	if (stmt->renameType == OBJECT_DOMCONSTRAINT)
	{
		if (ObjectInOurSchema(OBJECT_DOMAIN, stmt->object))
			RefuseOwn("RENAME", "a constraint");
		return;
	}
	if (stmt->renameType == OBJECT_SCHEMA || stmt->renameType == OBJECT_EXTENSION)
	{
		if (stmt->subname && strcmp(stmt->subname, HA_SCHEMA_NAME) == 0)
			RefuseOwn("RENAME", "schema hipaa_audit");
		return;
	}
	if (ObjectInOurSchema(stmt->renameType, stmt->object))
		RefuseOwn("RENAME", "an object");
}

static void
CheckAlterObjectSchema(AlterObjectSchemaStmt *stmt)
{
	if (stmt->newschema && strcmp(stmt->newschema, HA_SCHEMA_NAME) == 0)
		RefuseOwn("move objects into", "schema hipaa_audit");
	if (stmt->relation != NULL)
	{
		Oid			relid = LookupRelForChange(stmt->relation, AccessExclusiveLock);

		if (HaIsProtected(relid))
			HaRefuse("SET SCHEMA on", ProtectedName(relid),
					 "Table names are part of what auditors and verifiers rely on.", NULL);
		if (RelInOurSchema(relid))
			RefuseOwn("SET SCHEMA on", OwnRelName(relid));
		return;
	}
	if (stmt->objectType == OBJECT_EXTENSION)
	{
		if (strcmp(strVal(stmt->object), HA_EXTENSION_NAME) == 0)
			RefuseOwn("SET SCHEMA on", "extension hipaa_audit");
		return;
	}
	if (ObjectInOurSchema(stmt->objectType, stmt->object))
		RefuseOwn("SET SCHEMA on", "an object");
}

static void
CheckAlterOwner(AlterOwnerStmt *stmt)
{
	if (stmt->objectType == OBJECT_SCHEMA)
	{
		/*
		 * pg_dump writes an ALTER SCHEMA ... OWNER TO for our schema; a
		 * superuser owner is what protect() requires, so only that is allowed.
		 */
		if (strcmp(strVal(stmt->object), HA_SCHEMA_NAME) == 0 &&
			!superuser_arg(get_rolespec_oid(stmt->newowner, false)))
			RefuseOwn("give a non-superuser ownership of", "schema hipaa_audit");
		return;
	}
	if (stmt->relation != NULL)
	{
		if (RelInOurSchema(LookupRel(stmt->relation)))
			RefuseOwn("change the owner of", "a table");
		return;
	}
	if (ObjectInOurSchema(stmt->objectType, stmt->object))
		RefuseOwn("change the owner of", "an object");
}

static void
RefuseDropTable(Oid relid)
{
	HaRefuse("DROP", ProtectedName(relid),
			 "The table holds audit rows within their retention period.",
			 "Audit rows leave a protected table only through lawful purging after their retention period; see hipaa_audit.purge_expired().");
}

static void
RefuseDropHeld(Oid relid)
{
	HaRefuse("DROP", ProtectedName(relid),
			 "The table is under a legal hold.",
			 "See hipaa_audit.legal_holds_active; release the hold first.");
}

/* A table whose drop this statement allowed, with its triggers and index. */
static bool
DroppingTable(Oid relid)
{
	return list_member_oid(dropping_tables, relid);
}

static void
CheckDrop(DropStmt *stmt)
{
	ListCell   *lc;

	switch (stmt->removeType)
	{
		case OBJECT_TRIGGER:
			foreach(lc, stmt->objects)
			{
				List	   *names = castNode(List, lfirst(lc));
				char	   *tgname = strVal(llast(names));
				List	   *relnames = list_truncate(list_copy(names), list_length(names) - 1);
				Oid			relid;

				if (relnames == NIL)
					continue;
				relid = LookupRel(makeRangeVarFromNameList(relnames));
				if (HaIsProtected(relid) && HaIsOurTrigger(tgname))
					HaRefuse(psprintf("DROP TRIGGER %s on", tgname), ProtectedName(relid),
							 DDL_DETAIL, NULL);
				if (RelInOurSchema(relid))
					RefuseOwn("DROP TRIGGER on", "a table");
			}
			break;
		case OBJECT_EXTENSION:
			foreach(lc, stmt->objects)
			{
				if (strcmp(strVal(lfirst(lc)), HA_EXTENSION_NAME) != 0)
					continue;
				if (HaAnyProtected())
					HaRefuse("DROP", "extension hipaa_audit while tables are protected",
							 "Dropping the extension would remove the protection of every audit table.",
							 "See hipaa_audit.protected_tables.");
				current_stmt = STMT_EXT_DROP;	/* reset by the caller */
			}
			break;
		case OBJECT_SCHEMA:
			foreach(lc, stmt->objects)
			{
				if (strcmp(strVal(lfirst(lc)), HA_SCHEMA_NAME) == 0)
					RefuseOwn("DROP", "schema hipaa_audit");
			}
			break;
		case OBJECT_TABLE:
			/*
			 * The common case, with its own message: a table idle past its
			 * retention and not held may go, with its triggers and index.
			 * Cascades from other objects: see CheckDropObject.
			 */
			foreach(lc, stmt->objects)
			{
				Oid			relid = LookupRel(makeRangeVarFromNameList(castNode(List, lfirst(lc))));
				MemoryContext old;

				const HaProtectedEntry *entry = HaLookupProtected(relid);
				List	   *parts;
				ListCell   *lc2;

				if (entry == NULL)
					continue;

				/*
				 * A partition, or a partitioned table with its partitions:
				 * locked as DROP locks them (the partitioned table first),
				 * checked, and each partition verified and receipted now,
				 * while its chain index is still there (a DROP removes
				 * indexes before their table).
				 */
				if (OidIsValid(entry->parent) || entry->partitioned)
				{
					LockRelationOid(OidIsValid(entry->parent) ? entry->parent : relid,
									AccessExclusiveLock);
					LockRelationOid(relid, AccessExclusiveLock);
					if (!HaIsProtected(relid))
						continue;
				}
				parts = entry->partitioned ? HaRegisteredPartitions(relid) : NIL;
				foreach(lc2, parts)
					LockRelationOid(lfirst_oid(lc2), AccessExclusiveLock);
				if (HaRowsWithinRetention(relid, NULL, NULL))
					RefuseDropTable(relid);
				if (HaTableHeld(relid))
					RefuseDropHeld(relid);
				foreach(lc2, parts)
					if (HaTableHeld(lfirst_oid(lc2)))
						RefuseDropHeld(lfirst_oid(lc2));
				if (OidIsValid(entry->parent))
				{
					(void) HaRetirePartition(relid, "drop", NULL);
					NoteRetired(relid, InvalidOid);
					continue;
				}
				foreach(lc2, parts)
				{
					if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(lfirst_oid(lc2))))
					{
						(void) HaRetirePartition(lfirst_oid(lc2), "drop", NULL);
						NoteRetired(lfirst_oid(lc2), InvalidOid);
					}
				}
				old = MemoryContextSwitchTo(TopTransactionContext);
				dropping_tables = lappend_oid(dropping_tables, relid);
				MemoryContextSwitchTo(old);
			}
			break;
		default:
			/* Columns and cascades are caught in CheckDropObject. */
			break;
	}
}

static void
CheckCreateTable(CreateStmt *stmt, bool foreign)
{
	ListCell   *lc;

	if (InOurSchema(RangeVarGetCreationNamespace(stmt->relation)))
		RefuseOwn("create", "a table in the schema");
	foreach(lc, stmt->inhRelations)
	{
		Oid			parent = LookupRel(lfirst_node(RangeVar, lc));
		const HaProtectedEntry *pe = HaLookupProtected(parent);

		/*
		 * A partition of a protected partitioned table: protected before
		 * the statement ends (backstop.c, HaProtectNewPartition), if it is
		 * an ordinary table.
		 */
		if (pe != NULL && pe->partitioned && stmt->partbound != NULL)
		{
			if (foreign)
				HaRefuse("create a foreign table as a partition of", ProtectedName(parent),
						 "Its rows would live outside this database, where hipaa_audit cannot guard them.", NULL);
			if (stmt->partspec != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot create partitioned table %s as a partition of protected table %s",
								stmt->relation->relname, HaRelDisplayName(parent)),
						 errdetail("Multi-level partitioning is not supported: the partitions of a protected table are ordinary tables.")));
			continue;
		}
		if (pe != NULL)
			HaRefuse("create a table that inherits from", ProtectedName(parent),
					 "Rows of the child would be read as audit rows without being protected.", NULL);
		if (RelInOurSchema(parent))
			RefuseOwn("create a table that inherits from", OwnRelName(parent));
	}
}

static bool
IsOurGuardFunction(List *funcname)
{
	char	   *schema;
	char	   *name;

	DeconstructQualifiedName(funcname, &schema, &name);
	if (schema == NULL || strcmp(schema, HA_SCHEMA_NAME) != 0)
		return false;
	return strcmp(name, "guard_row") == 0 || strcmp(name, "guard_truncate") == 0 ||
		strcmp(name, "chain_row") == 0;
}

/*
 * ALTER SYSTEM must not take the library out of shared_preload_libraries:
 * after the next restart nothing would guard the protected tables.
 */
static void
CheckAlterSystem(AlterSystemStmt *stmt)
{
	VariableSetStmt *set = stmt->setstmt;
	bool		keeps = false;

	if (!HaAnyProtected())
		return;
	if (set->kind == VAR_RESET_ALL)
		HaRefuse("ALTER SYSTEM RESET ALL", "while tables are protected",
				 "It could remove hipaa_audit from shared_preload_libraries.",
				 "Reset the settings you mean one by one.");
	/* Where "hipaa_audit" is looked for: another directory, another library. */
	if (set->name != NULL && pg_strcasecmp(set->name, "dynamic_library_path") == 0)
		HaRefuse("change dynamic_library_path", "while tables are protected",
				 "After the next restart another library named hipaa_audit could be loaded in its place.",
				 "Change it in postgresql.conf while no table is protected, or install the library in $libdir.");
	if (set->name == NULL || pg_strcasecmp(set->name, "shared_preload_libraries") != 0)
		return;
	if (set->kind == VAR_SET_VALUE)
	{
		char	   *value = ExtractSetVariableArgs(set);
		List	   *libs = NIL;
		ListCell   *lc;

		/*
		 * Split the way the server splits it when it loads the libraries
		 * (names are file names: no case folding).
		 */
		if (value != NULL && SplitDirectoriesString(pstrdup(value), ',', &libs))
		{
			foreach(lc, libs)
			{
				const char *lib = (const char *) lfirst(lc);

				if (strcmp(lib, HA_EXTENSION_NAME) == 0 ||
					strcmp(lib, "$libdir/" HA_EXTENSION_NAME) == 0)
					keeps = true;
			}
		}
	}
	if (!keeps)
		HaRefuse("remove hipaa_audit from", "shared_preload_libraries while tables are protected",
				 "After the next restart nothing would guard the protected tables.",
				 "Keep hipaa_audit in the list.");
}

static void
CheckAlterEnum(Node *parsetree)
{
		AlterEnumStmt *stmt = (AlterEnumStmt *) parsetree;

		if (stmt->oldVal != NULL)
		{
			Oid			typid = typenameTypeId(NULL, makeTypeNameFromNameList(stmt->typeName));
			Oid			user = HaProtectedTableUsingType(typid);

			if (OidIsValid(user))
				RefuseTypeChange("RENAME VALUE of", typid, user);
		}
}

static void
CheckCreateTrig(Node *parsetree)
{
		CreateTrigStmt *stmt = (CreateTrigStmt *) parsetree;
		Oid			relid = LookupRel(stmt->relation);

		/*
		 * pg_restore recreates our triggers after the registry's rows
		 * are back; that is allowed.  Replacing them, or giving their
		 * names to another function, is not.
		 */
		if (HaIsProtected(relid) && HaIsOurTrigger(stmt->trigname) &&
			(stmt->replace || !IsOurGuardFunction(stmt->funcname)))
			HaRefuse(psprintf("replace trigger %s on", stmt->trigname),
					 ProtectedName(relid), DDL_DETAIL, NULL);

		/*
		 * pg_restore recreating our triggers: the restored database
		 * holds protected tables, so mark it (pg_dump without
		 * --create does not carry database settings).  The registry
		 * cache of the restoring session may not have seen the
		 * restored registry rows yet, so the triggers themselves
		 * are the sign.
		 */
		if (OidIsValid(relid) && HaIsOurTrigger(stmt->trigname) &&
			IsOurGuardFunction(stmt->funcname) && !DatabaseMarked(MyDatabaseId))
			HaMarkDatabase(true);
		if (HaIsProtected(relid) && stmt->row &&
			(stmt->timing & TRIGGER_TYPE_BEFORE) != 0 &&
			(stmt->events & TRIGGER_TYPE_INSERT) != 0 &&
			strcmp(stmt->trigname, HA_TRIGGER_CHAIN) > 0)
			HaRefuse(psprintf("create BEFORE INSERT trigger \"%s\" on", stmt->trigname),
					 ProtectedName(relid),
					 psprintf("Triggers fire in name order; it would change rows after \"%s\" has hashed them.",
							  HA_TRIGGER_CHAIN),
					 psprintf("Give it a name that sorts before \"%s\".", HA_TRIGGER_CHAIN));
		if (RelInOurSchema(relid))
			RefuseOwn("CREATE TRIGGER on", "a table");
}

static void
CheckRule(Node *parsetree)
{
		RuleStmt   *stmt = (RuleStmt *) parsetree;
		Oid			relid = LookupRel(stmt->relation);

		if (HaIsProtected(relid))
			HaRefuse("CREATE RULE on", ProtectedName(relid),
					 "A rule could redirect or suppress the inserts of an audit table.", NULL);
		if (RelInOurSchema(relid))
			RefuseOwn("CREATE RULE on", "a table");
}

static void
CheckCreateFunction(Node *parsetree)
{
		CreateFunctionStmt *stmt = (CreateFunctionStmt *) parsetree;
		char	   *fname;

		if (InOurSchema(QualifiedNameGetCreationNamespace(stmt->funcname, &fname)))
			RefuseOwn(stmt->replace ? "replace" : "create", psprintf("function %s", fname));
}

static void
CheckAlterFunction(Node *parsetree)
{
		AlterFunctionStmt *stmt = (AlterFunctionStmt *) parsetree;
		Oid			funcid = LookupFuncWithArgs(stmt->objtype, stmt->func, true);

		if (OidIsValid(funcid) && InOurSchema(get_func_namespace(funcid)))
			RefuseOwn("ALTER", "a function");
}

static void
CheckView(Node *parsetree)
{
		ViewStmt   *stmt = (ViewStmt *) parsetree;

		if (InOurSchema(RangeVarGetCreationNamespace(stmt->view)))
			RefuseOwn(stmt->replace ? "replace" : "create", "a view in the schema");
}

static void
CheckAlterObjectDepends(Node *parsetree)
{
		/*
		 * An object marked as depending on an extension is dropped
		 * with it: never a protected table, its triggers or indexes.
		 */
		AlterObjectDependsStmt *stmt = (AlterObjectDependsStmt *) parsetree;
		Oid			relid = LookupRel(stmt->relation);

		/* ALTER INDEX i DEPENDS ON: the index's table. */
		if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_INDEX)
			relid = IndexGetRelation(relid, true);

		if (!OidIsValid(relid) && stmt->objectType == OBJECT_INDEX && stmt->object != NULL)
		{
			Oid			idx = LookupRel(makeRangeVarFromNameList(castNode(List, stmt->object)));

			relid = OidIsValid(idx) ? IndexGetRelation(idx, true) : InvalidOid;
		}
		if (HaIsProtected(relid))
			HaRefuse("mark as depending on an extension", psprintf("an object of %s", ProtectedName(relid)),
					 "Dropping the extension would drop it with its protection.", NULL);
		if (RelInOurSchema(relid))
			RefuseOwn("mark as depending on an extension", "an object");
}

static void
CheckUtility(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_AlterSystemStmt:
			CheckAlterSystem((AlterSystemStmt *) parsetree);
			break;
		case T_AlterEnumStmt:
			CheckAlterEnum(parsetree);
			break;
		case T_TruncateStmt:
			CheckTruncate((TruncateStmt *) parsetree);
			break;
		case T_AlterTableStmt:
			CheckAlterTable((AlterTableStmt *) parsetree);
			break;
		case T_RenameStmt:
			CheckRename((RenameStmt *) parsetree);
			break;
		case T_AlterObjectSchemaStmt:
			CheckAlterObjectSchema((AlterObjectSchemaStmt *) parsetree);
			break;
		case T_AlterOwnerStmt:
			CheckAlterOwner((AlterOwnerStmt *) parsetree);
			break;
		case T_DropStmt:
			CheckDrop((DropStmt *) parsetree);
			break;
		case T_CreateTrigStmt:
			CheckCreateTrig(parsetree);
			break;
		case T_RuleStmt:
			CheckRule(parsetree);
			break;
		case T_CreateStmt:
			CheckCreateTable((CreateStmt *) parsetree, false);
			break;
		case T_CreateForeignTableStmt:
			CheckCreateTable(&((CreateForeignTableStmt *) parsetree)->base, true);
			break;
		case T_CreateExtensionStmt:
			/* pg_surgery deletes heap tuples without going through SQL. */
			if (strcmp(((CreateExtensionStmt *) parsetree)->extname, "pg_surgery") == 0 &&
				HaAnyProtected())
				HaRefuse("CREATE EXTENSION pg_surgery", "while tables are protected",
						 "Its functions remove or freeze rows without going through the executor.", NULL);
			break;
		case T_CreateFunctionStmt:
			CheckCreateFunction(parsetree);
			break;
		case T_AlterFunctionStmt:
			CheckAlterFunction(parsetree);
			break;
		case T_ViewStmt:
			CheckView(parsetree);
			break;
		case T_IndexStmt:
			if (RelInOurSchema(LookupRel(((IndexStmt *) parsetree)->relation)))
				RefuseOwn("CREATE INDEX on", "a table");
			break;
		case T_CreatePolicyStmt:
			if (RelInOurSchema(LookupRel(((CreatePolicyStmt *) parsetree)->table)))
				RefuseOwn("CREATE POLICY on", "a table");
			break;
		case T_AlterObjectDependsStmt:
			CheckAlterObjectDepends(parsetree);
			break;
		case T_CopyStmt:
			CheckCopy((CopyStmt *) parsetree);
			break;
		case T_AlterExtensionContentsStmt:
			if (strcmp(((AlterExtensionContentsStmt *) parsetree)->extname,
					   HA_EXTENSION_NAME) == 0)
				HaRefuse("ALTER EXTENSION hipaa_audit ADD or DROP", "an object", OWN_DETAIL, NULL);
			break;
		default:
			break;
	}
}

/* ----------------------------------------------------------------
 * Databases: DROP DATABASE runs from another database, where the registry
 * of the dropped one cannot be read.  protect() therefore marks its
 * database in a shared catalog (pg_db_role_setting, through ALTER DATABASE
 * ... SET hipaa_audit.database_protected = on), which every database sees.
 * ----------------------------------------------------------------
 */

/* Is the marker among these settings ("name=value" items)? */
static bool
SettingsMark(HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, Anum_pg_db_role_setting_setconfig, desc, &isnull);
	bool		marked = false;

	if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			char	   *item;

			if (nulls[i])
				continue;
			item = TextDatumGetCString(elems[i]);
			if (pg_strcasecmp(item, HA_DB_MARKER "=on") == 0 ||
				pg_strcasecmp(item, HA_DB_MARKER "=true") == 0)
				marked = true;
		}
	}
	return marked;
}

/* Is dboid marked?  InvalidOid: is any database marked? */
static bool
DatabaseMarked(Oid dboid)
{
	Relation	rel;
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		marked = false;
	bool		any = !OidIsValid(dboid);

	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	ScanKeyInit(&keys[0], Anum_pg_db_role_setting_setdatabase, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(dboid));
	ScanKeyInit(&keys[1], Anum_pg_db_role_setting_setrole, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(InvalidOid));
	if (any)
		scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	else
		scan = systable_beginscan(rel, DbRoleSettingDatidRolidIndexId, true, NULL, 2, keys);
	while (!marked && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_db_role_setting form = (Form_pg_db_role_setting) GETSTRUCT(tup);

		if (OidIsValid(form->setrole))
			continue;
		marked = SettingsMark(tup, RelationGetDescr(rel));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return marked;
}

/*
 * A change of the database-wide settings of dbname that would reset the
 * marker: RESET ALL, or SET/RESET of the marker however its name is spelled
 * (setting names are case-insensitive).
 */
static void
CheckMarkerChange(const char *dbname, VariableSetStmt *set, const char *command)
{
	Oid			dboid = get_database_oid(dbname, true);

	if (set->kind != VAR_RESET_ALL &&
		(set->name == NULL || pg_strcasecmp(set->name, HA_DB_MARKER) != 0))
		return;
	if (!DatabaseMarked(dboid))
		return;
	/* Only from inside the database, once nothing is protected there. */
	if (dboid != MyDatabaseId || HaAnyProtected())
		HaRefuse(set->kind == VAR_RESET_ALL ? psprintf("%s ... RESET ALL on", command) :
				 psprintf("change %s of", HA_DB_MARKER),
				 psprintf("database \"%s\", which holds protected tables", dbname),
				 "The setting marks the database so that DROP DATABASE can be refused.",
				 "hipaa_audit clears it when the last protected table is unprotected or dropped.");
}

static void
CheckDatabaseStatement(Node *parsetree)
{
	if (IsA(parsetree, DropdbStmt))
	{
		DropdbStmt *stmt = (DropdbStmt *) parsetree;
		Oid			dboid = get_database_oid(stmt->dbname, true);

		if (DatabaseMarked(dboid))
			HaRefuse("DROP DATABASE", psprintf("\"%s\", which holds protected tables", stmt->dbname),
					 "Dropping the database would remove every audit row in it.",
					 "Unprotect or drop its protected tables first; protection is marked by hipaa_audit.database_protected.");
	}
	else if (IsA(parsetree, AlterDatabaseSetStmt))
	{
		AlterDatabaseSetStmt *stmt = (AlterDatabaseSetStmt *) parsetree;

		CheckMarkerChange(stmt->dbname, stmt->setstmt, "ALTER DATABASE");
	}
	else if (IsA(parsetree, AlterRoleSetStmt))
	{
		/* ALTER ROLE ALL IN DATABASE d writes the same row of settings. */
		AlterRoleSetStmt *stmt = (AlterRoleSetStmt *) parsetree;

		if (stmt->role == NULL && stmt->database != NULL)
			CheckMarkerChange(stmt->database, stmt->setstmt, "ALTER ROLE ALL IN DATABASE");
	}
}

/* CREATE EXTENSION hipaa_audit, ALTER EXTENSION hipaa_audit UPDATE. */
static bool
IsOurExtensionCommand(Node *parsetree)
{
	if (IsA(parsetree, CreateExtensionStmt))
		return strcmp(((CreateExtensionStmt *) parsetree)->extname, HA_EXTENSION_NAME) == 0;
	if (IsA(parsetree, AlterExtensionStmt))
		return strcmp(((AlterExtensionStmt *) parsetree)->extname, HA_EXTENSION_NAME) == 0;
	return false;
}

static void
HaProcessUtility(PlannedStmt *pstmt, const char *queryString,
				 bool readOnlyTree, ProcessUtilityContext context,
				 ParamListInfo params, QueryEnvironment *queryEnv,
				 DestReceiver *dest, QueryCompletion *qc)
{
	StatementKind save_stmt = current_stmt;
	const char *save_text = current_text;
	List	   *save_dropping_tables = dropping_tables;
	bool		save_dropped = dropped_protected;
	List	   *save_guards_dropped = guards_dropped;
	List	   *save_pending = HaSwapPendingPartitions(NIL);
	List	   *save_retired = retired_partitions;

	retired_partitions = NIL;
	dropping_tables = NIL;		/* each statement decides for itself */
	dropped_protected = false;
	guards_dropped = NIL;
	current_stmt = KindOf(queryString);
	current_text = queryString;
	if (current_stmt == STMT_OTHER && IsOurExtensionCommand(pstmt->utilityStmt))
		current_stmt = STMT_EXT_COMMAND;
	PG_TRY();
	{
		/* Database-level statements, also from databases without us. */
		if ((IsA(pstmt->utilityStmt, DropdbStmt) ||
			 IsA(pstmt->utilityStmt, AlterDatabaseSetStmt) ||
			 IsA(pstmt->utilityStmt, AlterRoleSetStmt)) && !Bypass())
			CheckDatabaseStatement(pstmt->utilityStmt);

		/* CheckUtility ignores statements it has no rule for. */
		if (!Bypass() && OidIsValid(HaSchemaOid()))
			CheckUtility(pstmt->utilityStmt);

		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		current_stmt = save_stmt;
		current_text = save_text;
		dropping_tables = save_dropping_tables;
		dropped_protected = save_dropped;
		guards_dropped = save_guards_dropped;
		(void) HaSwapPendingPartitions(save_pending);
		retired_partitions = save_retired;
		PG_RE_THROW();
	}
	PG_END_TRY();

	{
		List	   *retired = retired_partitions;

		retired_partitions = save_retired;
		CheckRetiredGone(retired);
	}

	/*
	 * Partitions this statement made under a protected partitioned table:
	 * protected now, before anything else can run (a partition that cannot
	 * be protected fails the statement).
	 */
	{
		List	   *pending = HaSwapPendingPartitions(save_pending);

		for (int i = 0; i + 1 < list_length(pending); i += 2)
		{
			Oid			parent = list_nth_oid(pending, i);
			Oid			part = list_nth_oid(pending, i + 1);

			if (HaIsProtected(parent) && !HaIsProtected(part) &&
				SearchSysCacheExists1(RELOID, ObjectIdGetDatum(part)))
				HaProtectNewPartition(parent, part);
		}
	}
	current_stmt = save_stmt;
	current_text = save_text;
	list_free(dropping_tables);
	dropping_tables = save_dropping_tables;

	/* A guard dropped from a table that is still protected: refused. */
	{
		List	   *dropped = guards_dropped;
		ListCell   *lc;

		guards_dropped = save_guards_dropped;
		foreach(lc, dropped)
		{
			Oid			relid = lfirst_oid(lc);

			if (HaIsProtected(relid))
				HaRefuse("drop the guard or chain triggers of", ProtectedName(relid),
						 "They go only with the table itself.",
						 "DROP TABLE the table, or unprotect() it, instead.");
		}
	}

	/* The last protected table is gone: the database may be dropped again. */
	if (dropped_protected && OidIsValid(HaSchemaOid()) && !HaAnyProtected())
		HaMarkDatabase(false);
	dropped_protected = save_dropped;
}

/* ----------------------------------------------------------------
 * Object access: drops, including cascaded ones
 * ----------------------------------------------------------------
 */

static void
LookupTrigger(Oid trigoid, Oid *tgrelid, NameData *tgname)
{
	Relation	tgrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	*tgrelid = InvalidOid;
	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(trigoid));
	scan = systable_beginscan(tgrel, TriggerOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tup);

		*tgrelid = trig->tgrelid;
		*tgname = trig->tgname;
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
}

static void
CheckDropObject(Oid classId, Oid objectId, int subId)
{
	if (classId == RelationRelationId)
	{
		if (HaIsProtected(objectId))
		{
			int64		rows = 0;
			TimestampTz newest = 0;

			if (subId != 0)
			{
				char	   *attname = get_attname(objectId, subId, true);

				HaRefuse(psprintf("drop column \"%s\" of", attname ? attname : "?"),
						 ProtectedName(objectId), DDL_DETAIL, NULL);
			}
			/*
			 * One scan: the rule, and what the record says was left.
			 * Cascades (DROP SCHEMA, DROP OWNED) take empty tables only.
			 */
			if (DroppingTable(objectId) ? HaRowsWithinRetention(objectId, &rows, &newest) :
				HaRelationHasRows(objectId))
				RefuseDropTable(objectId);
			if (HaTableHeld(objectId))
				RefuseDropHeld(objectId);
			ereport(LOG_SERVER_ONLY,
					(errmsg("hipaa_audit: dropping protected table %s, idle past its retention, by role %s",
							HaRelDisplayName(objectId), GetUserNameFromId(GetUserId(), false))));
			if (OidIsValid(HaLookupProtected(objectId)->parent))
				(void) HaRetirePartition(objectId, "drop", NULL);	/* verified, receipt */
			else
				HaRecordRetired(objectId, "drop", rows, newest);
			HaRegistryForget(objectId);
			HaChainForgetTable(objectId);
			dropped_protected = true;
		}
		else if (RelInOurSchema(objectId))
			RefuseOwn("DROP", OwnRelName(objectId));
		else if (get_rel_relkind(objectId) == RELKIND_INDEX)
		{
			Oid			tableid = IndexGetRelation(objectId, true);

			if (HaIsProtected(tableid) && HaIsChainIndex(objectId) &&
				!DroppingTable(tableid) && HaRelationHasRows(tableid))
				HaRefuse(psprintf("DROP INDEX %s of", HaRelDisplayName(objectId)),
						 ProtectedName(tableid),
						 "Verification walks each chain through this index, and it keeps two rows from sharing a chain position.",
						 NULL);
		}
	}
	else if (classId == TriggerRelationId)
	{
		Oid			tgrelid;
		NameData	tgname;

		LookupTrigger(objectId, &tgrelid, &tgname);
		if (HaIsProtected(tgrelid) && HaIsOurTrigger(NameStr(tgname)) &&
			!DroppingTable(tgrelid))
		{
			MemoryContext old;

			if (HaRelationHasRows(tgrelid))
				HaRefuse(psprintf("drop trigger %s of", NameStr(tgname)),
						 ProtectedName(tgrelid),
						 "The table holds audit rows; neither it nor its guard triggers can be dropped.",
						 "Audit rows leave a protected table only through lawful purging after their retention period.");

			/*
			 * An empty table may go, and its triggers with it (DROP SCHEMA
			 * ... CASCADE drops them first).  Whether the table went too is
			 * known when the statement ends: see HaProcessUtility.
			 */
			old = MemoryContextSwitchTo(TopTransactionContext);
			guards_dropped = list_append_unique_oid(guards_dropped, tgrelid);
			MemoryContextSwitchTo(old);
		}
	}
	else if (classId == ProcedureRelationId)
	{
		if (InOurSchema(get_func_namespace(objectId)))
			RefuseOwn("DROP", psprintf("function %s", get_func_name(objectId)));
	}
	else if (classId == TypeRelationId)
	{
		HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(objectId));

		if (HeapTupleIsValid(tup))
		{
			Oid			nsp = ((Form_pg_type) GETSTRUCT(tup))->typnamespace;

			ReleaseSysCache(tup);
			if (InOurSchema(nsp))
				RefuseOwn("DROP", "a type");
		}
	}
	else if (classId == NamespaceRelationId)
	{
		if (InOurSchema(objectId))
			RefuseOwn("DROP", "schema hipaa_audit");
	}
	else if (classId == ExtensionRelationId)
	{
		if (objectId == get_extension_oid(HA_EXTENSION_NAME, true) && HaAnyProtected())
			HaRefuse("DROP", "extension hipaa_audit while tables are protected",
					 "Dropping the extension would remove the protection of every audit table.",
					 "See hipaa_audit.protected_tables.");
	}
}

static void
HaObjectAccess(ObjectAccessType access, Oid classId, Oid objectId,
			   int subId, void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);

	if (Bypass() || !OidIsValid(HaSchemaOid()))
		return;
	if (access == OAT_DROP)
		CheckDropObject(classId, objectId, subId);
	else if (access == OAT_TRUNCATE)
	{
		/* The relation TRUNCATE really empties, whatever name led to it. */
		if (HaIsProtected(objectId))
			HaRefuse("TRUNCATE", ProtectedName(objectId), IMMUTABLE_DETAIL, IMMUTABLE_HINT);
		if (RelInOurSchema(objectId))
			RefuseOwn("TRUNCATE", OwnRelName(objectId));
	}
	HaBackstop(access, classId, objectId, subId, arg);
}

void
HaInstallHooks(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = HaExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = HaExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = HaExecutorFinish;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = HaProcessUtility;
	prev_object_access = object_access_hook;
	object_access_hook = HaObjectAccess;
}
