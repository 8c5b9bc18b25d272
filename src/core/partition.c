/*-------------------------------------------------------------------------
 *
 * partition.c
 *	  Which tables can be protected, and partitioned tables (layer core/):
 *	  the checks protect() makes on a table, a partitioned table and each
 *	  of its partitions, and the steps that protect a partition created or
 *	  attached later, from its first row (docs/partitions.md).
 *
 * Terms: a "partitioned table" is protected as a whole; its "partitions"
 * (one level, ordinary tables) hold the rows and the chains, each with a
 * registry row of its own (its own identity, the partitioned table's
 * retention and chain count) naming the partitioned table in partition_of.
 * The chain and row guard triggers are created on the partitioned table
 * and PostgreSQL clones them to every partition, present and future; the
 * TRUNCATE guard and the unique chain index are made per partition.
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
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/*
 * Refuse, with its own error, every relation protect() cannot make safe.
 * parent is the protected (or being protected) partitioned table when rel
 * is one of its partitions, else InvalidOid.
 */
void
HaCheckProtectable(Relation rel, Oid parent)
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
			if (OidIsValid(parent))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot protect %s: its partition %s is itself partitioned",
								HaRelDisplayName(parent), name),
						 errdetail("Multi-level partitioning is not supported: the partitions of a protected table are ordinary tables."),
						 errhint("Partition by one key, or protect each sub-partitioned table on its own.")));
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

	if (rel->rd_rel->relispartition && !OidIsValid(parent))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot protect %s because it is a partition", name),
				 errhint("Protect its partitioned table %s: every partition is protected with it.",
						 HaRelDisplayName(get_partition_parent(relid, false)))));
	if (OidIsValid(rel->rd_rel->reloftype))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot protect %s because it is a typed table", name),
				 errdetail("Changes to its composite type would reach its columns."),
				 errhint("Run ALTER TABLE %s NOT OF first.", name)));
	if (!rel->rd_rel->relispartition && has_superclass(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot protect %s because it inherits from another table", name),
				 errdetail("Changes made through the parent table would reach its rows."),
				 errhint("Run ALTER TABLE %s NO INHERIT first.", name)));
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE && has_subclass(relid))
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
void
HaCheckRewritable(Relation rel, bool had_rows)
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

/*
 * The partitions of a partitioned table, each locked in lockmode, in OID
 * order.  Only direct ones: a partition that is itself partitioned is
 * refused by HaCheckProtectable.
 */
List *
HaPartitionsOf(Oid parent, LOCKMODE lockmode)
{
	List	   *parts = find_inheritance_children(parent, lockmode);

	list_sort(parts, list_oid_cmp);
	return parts;
}

/*
 * The per-partition steps of protect() and of a partition created or
 * attached later: the unique chain index, the TRUNCATE guard (statement
 * triggers are not cloned to partitions), ENABLE ALWAYS.  The chain and
 * row guard triggers come from the partitioned table.
 */
void
HaAddPartitionGuards(Oid part)
{
	char	   *name = HaRelDisplayName(part);
	char	   *sql = psprintf("CREATE UNIQUE INDEX ON %s (%s, %s); "
							   "CREATE TRIGGER %s BEFORE TRUNCATE ON %s "
							   "FOR EACH STATEMENT EXECUTE FUNCTION hipaa_audit.guard_truncate(); "
							   "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s",
							   name, HA_COL_CHAIN, HA_COL_SEQ,
							   quote_identifier(HA_TRIGGER_TRUNCATE), name,
							   name, quote_identifier(HA_TRIGGER_TRUNCATE));

	HaRunAsExtensionOwner(sql, 0, NULL, NULL);
}

/*
 * A partition's columns must be generated exactly where its partitioned
 * table's are, with the same expressions: PostgreSQL 15 lets a partition
 * declare a column generated that is not in its parent, and a generated
 * column is not hashed.
 */
void
HaCheckGeneratedLikeParent(Oid parent, Oid part)
{
	Oid			argtypes[2] = {REGCLASSOID, REGCLASSOID};
	Datum		values[2] = {ObjectIdGetDatum(part), ObjectIdGetDatum(parent)};

	if (HaRunAsExtensionOwnerInt8(
			"SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a "
			"LEFT JOIN pg_catalog.pg_attribute pa ON pa.attrelid OPERATOR(pg_catalog.=) $2 "
			" AND pa.attname OPERATOR(pg_catalog.=) a.attname AND NOT pa.attisdropped "
			"LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid "
			" AND d.adnum OPERATOR(pg_catalog.=) a.attnum "
			"LEFT JOIN pg_catalog.pg_attrdef pd ON pd.adrelid OPERATOR(pg_catalog.=) pa.attrelid "
			" AND pd.adnum OPERATOR(pg_catalog.=) pa.attnum "
			"WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0 "
			"AND NOT a.attisdropped AND (pa.attname IS NULL "
			" OR a.attgenerated OPERATOR(pg_catalog.<>) pa.attgenerated "
			" OR (a.attgenerated OPERATOR(pg_catalog.<>) '' AND "
			"     pg_catalog.pg_get_expr(d.adbin, d.adrelid) IS DISTINCT FROM "
			"     pg_catalog.pg_get_expr(pd.adbin, pd.adrelid)))",
			2, argtypes, values) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot protect %s as a partition of %s: its generated columns differ from the partitioned table's",
						HaRelDisplayName(part), HaRelDisplayName(parent)),
				 errdetail("Generated columns are not hashed; a partition's must be exactly its partitioned table's."),
				 errhint("Create the partition with CREATE TABLE ... PARTITION OF, or with CREATE TABLE ... (LIKE ...) without generated columns of its own.")));
}

/*
 * What a partition made later must be: protectable, encodable (its chain
 * columns are its partitioned table's), no BEFORE INSERT trigger after the
 * chain trigger, and empty: its rows never passed through the chain
 * trigger.
 */
static void
CheckNewPartition(Relation rel, Oid parent)
{
	Oid			part = RelationGetRelid(rel);

	HaCheckProtectable(rel, parent);
	HaCheckRewritable(rel, false);
	HaCheckEncodable(rel, true);
	if (HaRelationHasRows(part))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot attach %s to protected table %s: it has rows",
						HaRelDisplayName(part), HaRelDisplayName(parent)),
				 errdetail("Its rows never passed through the chain trigger, so nothing proves what they were."),
				 errhint("Attach an empty table and insert the rows through the partitioned table.")));
}

/*
 * A partition just created or attached under a protected partitioned
 * table, in the same statement: checked, guarded and registered before
 * the statement ends, so no row can reach it unprotected (and until then
 * the chain trigger PostgreSQL cloned onto it refuses every row of an
 * unregistered table).  It must be empty: its rows never passed through
 * the chain trigger.
 */
void
HaProtectNewPartition(Oid parent, Oid part)
{
	const HaProtectedEntry *pe = HaRequireProtected(parent, NULL);
	Relation	rel;
	Interval	retention;
	bool		locked;

	/*
	 * The partitioned table's policy lock (set_retention() takes it): the
	 * retention read next is the one in force when this commits.
	 */
	HaLockPurge(parent);
	rel = table_open(part, AccessExclusiveLock);
	CheckNewPartition(rel, parent);
	table_close(rel, NoLock);

	HaCheckGeneratedLikeParent(parent, part);

	if (!HaRegistryRetention(parent, &retention, &locked))
		elog(ERROR, "protected table %s has no retention", HaRelDisplayName(parent));

	/*
	 * Registered first: from here on it is protected for every statement
	 * that is not the extension's own, including what an event trigger runs
	 * at the end of the statements below; then checked again.
	 */
	HaRegisterTable(part, &retention, pe->chains, NULL, false, parent, locked);
	HaChainForgetTable(part);
	HaAddPartitionGuards(part);
	rel = table_open(part, AccessExclusiveLock);
	CheckNewPartition(rel, parent);
	table_close(rel, NoLock);
	HaCheckGuardsInPlace(part);
	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: partition %s of protected table %s protected by role %s",
					HaRelDisplayName(part), HaRelDisplayName(parent),
					GetUserNameFromId(GetUserId(), false))));
}
