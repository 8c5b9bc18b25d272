/*-------------------------------------------------------------------------
 *
 * backstop.c
 *	  The catch-all behind the statement checks: every change PostgreSQL
 *	  makes to a protected table, its columns, triggers and rules, or to a
 *	  type or row type its columns reach, is checked on the object itself,
 *	  after PostgreSQL changed it and under the lock it changed it with.
 *	  Layer enforce/ (docs/architecture.md).
 *
 * The utility hook reads a statement and refuses what it can name, with
 * a precise message.  It can be fooled: a name it resolved may point
 * elsewhere by the time PostgreSQL resolves it again, and some statements
 * change a protected table without naming it (a type's ALTER ... CASCADE,
 * typed tables).  The object-access hook sees the OIDs that really change.
 * For those, this file compares the catalog row as the statement found it
 * (the statement's snapshot) with the row as it is now (SnapshotSelf, which
 * sees the statement's own uncommitted change) and allows only what is
 * named here:
 *
 *	  table		  relname, relnamespace, relkind, relpersistence, relam and
 *				  reloftype never change; the table never becomes a
 *				  partition, a parent or a child.  Owner, ACL, options,
 *				  tablespace, statistics, storage, RLS may.
 *	  column	  name, type, typmod, generated-ness never change; a column
 *				  added later must leave existing rows as they were (no
 *				  default, missing value, identity, generation or domain
 *				  default).
 *	  trigger	  the guard and chain triggers stay ENABLE ALWAYS and call
 *				  our functions; no other BEFORE INSERT row trigger sorts
 *				  after the chain trigger.
 *	  rule		  none, ever.
 *	  type		  a type a protected column reaches keeps its I/O and send
 *				  functions, layout and element/base type, and an enum its
 *				  labels; owner, name, schema, defaults and constraints may
 *				  change.  A composite or table row type it reaches keeps
 *				  its attributes.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_am.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_class.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#define BACKSTOP_DETAIL "This change would weaken the protection of an audit table."

static HeapTuple
ClassRow(Oid relid, Snapshot snap)
{
	ScanKeyData key;

	ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	return HaCatalogRow(RelationRelationId, ClassOidIndexId, 1, &key, snap);
}

static HeapTuple
AttributeRow(Oid relid, AttrNumber attnum, Snapshot snap)
{
	ScanKeyData keys[2];

	ScanKeyInit(&keys[0], Anum_pg_attribute_attrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&keys[1], Anum_pg_attribute_attnum, BTEqualStrategyNumber,
				F_INT2EQ, Int16GetDatum(attnum));
	return HaCatalogRow(AttributeRelationId, AttributeRelidNumIndexId, 2, keys, snap);
}

static HeapTuple
TypeRow(Oid typid, Snapshot snap)
{
	ScanKeyData key;

	ScanKeyInit(&key, Anum_pg_type_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(typid));
	return HaCatalogRow(TypeRelationId, TypeOidIndexId, 1, &key, snap);
}

static void
Refuse(const char *what, Oid relid)
{
	HaRefuse(what, psprintf("protected table %s", HaRelDisplayName(relid)),
			 BACKSTOP_DETAIL,
			 "Protected tables accept INSERT, SELECT, indexes, VACUUM, ANALYZE, CLUSTER, REINDEX, GRANT and COMMENT.");
}

/* ----------------------------------------------------------------
 * Tables and columns
 * ----------------------------------------------------------------
 */

/*
 * The rows of pg_inherits naming relid as child (its parent, if any) or as
 * parent (whether it has a child), now.
 */
static Oid
ParentNow(Oid relid)
{
	Relation	rel = table_open(InheritsRelationId, AccessShareLock);
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	Oid			parent = InvalidOid;

	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InheritsRelidSeqnoIndexId, true, SnapshotSelf, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		parent = ((Form_pg_inherits) GETSTRUCT(tup))->inhparent;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return parent;
}

static bool
HasChildNow(Oid relid)
{
	Relation	rel = table_open(InheritsRelationId, AccessShareLock);
	SysScanDesc scan;
	ScanKeyData key;
	bool		found;

	ScanKeyInit(&key, Anum_pg_inherits_inhparent, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InheritsParentIndexId, true, SnapshotSelf, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The table as a whole (OAT_POST_ALTER with no column).  A protected table
 * stays what it was: an ordinary table with no parent or child; a
 * partitioned table with partitions but no parent; a partition of its
 * partitioned table with no child (docs/partitions.md).
 */
static void
CheckTable(Oid relid)
{
	const HaProtectedEntry *entry = HaLookupProtected(relid);
	HeapTuple	before = ClassRow(relid, HaStatementSnapshot());
	HeapTuple	after = ClassRow(relid, SnapshotSelf);
	Form_pg_class a;
	Oid			parent;

	if (after == NULL || entry == NULL)
		return;					/* being dropped: OAT_DROP decides */
	a = (Form_pg_class) GETSTRUCT(after);
	if (a->relkind != (entry->partitioned ? RELKIND_PARTITIONED_TABLE : RELKIND_RELATION))
		Refuse("change the kind of", relid);
	if (a->relpersistence != RELPERSISTENCE_PERMANENT)
		Refuse("SET UNLOGGED on", relid);
	if (OidIsValid(a->reloftype))
		Refuse("ALTER TABLE ... OF on", relid);
	parent = ParentNow(relid);
	if (OidIsValid(entry->parent))
	{
		if (!a->relispartition || parent != entry->parent || HasChildNow(relid))
			Refuse("change the partition links of", relid);
	}
	else if (a->relispartition || OidIsValid(parent) ||
			 (!entry->partitioned && HasChildNow(relid)))
		Refuse("add an inheritance or partition link to", relid);
	if (a->relhasrules)
		Refuse("add a rule to", relid);
	if (before != NULL)
	{
		Form_pg_class b = (Form_pg_class) GETSTRUCT(before);

		if (strcmp(NameStr(a->relname), NameStr(b->relname)) != 0)
			Refuse("RENAME", relid);
		if (a->relnamespace != b->relnamespace)
			Refuse("SET SCHEMA on", relid);
		if (a->relam != b->relam)
			Refuse("SET ACCESS METHOD on", relid);
	}
}

/*
 * Partitions made under a protected partitioned table by the running
 * statement (CREATE TABLE ... PARTITION OF, ATTACH PARTITION): the utility
 * hook protects them when the statement ends (HaProtectNewPartition).
 * Kept in the transaction's memory; the hook saves and restores the list
 * around each statement.
 */
static List *pending_partitions = NIL;	/* pairs: parent, partition */

List *
HaSwapPendingPartitions(List *list)
{
	List	   *old = pending_partitions;

	pending_partitions = list;
	return old;
}

/*
 * A pg_inherits row of child objectId and parent aux was made or removed.
 * A protected table gains or loses no link that way; a protected
 * partitioned table gains partitions, each protected before the statement
 * ends, and loses only partitions the utility hook let go (no longer
 * registered by then: DETACH and DROP leave a receipt first).
 */
static void
CheckInheritanceLink(Oid child, Oid parent)
{
	const HaProtectedEntry *pe = HaLookupProtected(parent);

	if (HaIsProtected(child))
		Refuse("add or remove an inheritance or partition link of", child);
	if (pe == NULL)
		return;
	if (!pe->partitioned)
		Refuse("add an inheritance or partition link to", parent);
	if (ParentNow(child) == parent)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		pending_partitions = lappend_oid(lappend_oid(pending_partitions, parent), child);
		MemoryContextSwitchTo(old);
	}
}

/* Does adding this column write values into the rows already there? */
static bool
NewColumnFills(Form_pg_attribute att)
{
	return att->atthasdef || att->atthasmissing || att->attidentity != '\0' ||
		att->attgenerated != '\0' || HaDomainHasDefault(att->atttypid);
}

/*
 * A column of relid (a protected table, or a table or composite type whose
 * row type a protected column reaches) created or changed.
 */
static void
CheckColumn(Oid relid, AttrNumber attnum, bool protected, Oid user)
{
	HeapTuple	before = AttributeRow(relid, attnum, HaStatementSnapshot());
	HeapTuple	after = AttributeRow(relid, attnum, SnapshotSelf);
	Form_pg_attribute a;

	if (after == NULL)
		return;
	a = (Form_pg_attribute) GETSTRUCT(after);
	if (before == NULL || ((Form_pg_attribute) GETSTRUCT(before))->attisdropped)
	{
		if (!protected)
			HaRefuse("add an attribute to",
					 psprintf("%s, whose row type protected table %s uses",
							  HaRelDisplayName(relid), HaRelDisplayName(user)),
					 "The stored values' binary form, and so their hashes, would change.",
					 "Create a new type and use it in a new column instead.");
		if (a->attisdropped)
			return;
		if (NewColumnFills(a))
			HaRefuse(psprintf("ADD COLUMN \"%s\" with a default value to", NameStr(a->attname)),
					 psprintf("protected table %s", HaRelDisplayName(relid)),
					 "A default, serial, identity or generated column would write values into existing audit rows.",
					 "Add the column without a default; existing rows keep NULL in it.");
		{
			Relation	rel = relation_open(relid, AccessShareLock);

			HaCheckColumnType(rel, NameStr(a->attname), a->atttypid);
			relation_close(rel, AccessShareLock);
		}
		return;
	}
	else
	{
		Form_pg_attribute b = (Form_pg_attribute) GETSTRUCT(before);
		const char *what = NULL;

		if (a->attisdropped)
			what = "DROP COLUMN";
		else if (a->atttypid != b->atttypid || a->atttypmod != b->atttypmod)
			what = "ALTER COLUMN ... TYPE";
		else if (strcmp(NameStr(a->attname), NameStr(b->attname)) != 0)
			what = "RENAME COLUMN";
		else if (a->attgenerated != b->attgenerated)
			what = "ALTER COLUMN ... DROP EXPRESSION";
		if (what == NULL)
			return;
		if (protected)
			HaRefuse(psprintf("%s \"%s\" of", what, NameStr(b->attname)),
					 psprintf("protected table %s", HaRelDisplayName(relid)),
					 BACKSTOP_DETAIL, NULL);
		HaRefuse(psprintf("%s \"%s\" of", what, NameStr(b->attname)),
				 psprintf("%s, whose row type protected table %s uses",
						  HaRelDisplayName(relid), HaRelDisplayName(user)),
				 "The stored values' binary form, and so their hashes, would change.",
				 "Create a new type and use it in a new column instead.");
	}
}

/*
 * A new default or generation expression of column attnum (PostgreSQL
 * reports a new pg_attrdef row by its table and column).  A default of an
 * ordinary column fills only rows inserted later, and is allowed; a new
 * expression of a generated column (ALTER COLUMN ... SET EXPRESSION,
 * PostgreSQL 17 and later) changes what every existing row reads, stored
 * or virtual, without the hashed columns changing.
 */
static void
CheckNewDefault(Oid relid, AttrNumber attnum)
{
	if (attnum > 0 && HaIsProtected(relid) && get_attgenerated(relid, attnum) != '\0')
		HaRefuse(psprintf("change the generation expression of column \"%s\" of",
						  get_attname(relid, attnum, false)),
				 psprintf("protected table %s", HaRelDisplayName(relid)),
				 "Generated columns are not hashed: every existing row would read differently.",
				 NULL);
}

/* The protected table whose columns reach relid's row type, if any. */
static Oid
RowTypeUser(Oid relid)
{
	Oid			rowtype = get_rel_type_id(relid);

	return OidIsValid(rowtype) ? HaProtectedTableUsingType(rowtype) : InvalidOid;
}

/* ----------------------------------------------------------------
 * Triggers and rules
 * ----------------------------------------------------------------
 */

/* The table a trigger (or a rule) is on, as the catalog says now. */
static Oid
TriggerRelation(Oid trigoid)
{
	ScanKeyData key;
	HeapTuple	tup;

	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(trigoid));
	tup = HaCatalogRow(TriggerRelationId, TriggerOidIndexId, 1, &key, SnapshotSelf);
	return tup ? ((Form_pg_trigger) GETSTRUCT(tup))->tgrelid : InvalidOid;
}

/*
 * Our trigger functions are executable by everyone, so that a table owner
 * can make partitions of a protected table (PostgreSQL checks EXECUTE when
 * it clones the partitioned table's row triggers onto a new partition, and
 * those clones have a parent trigger).  Any other trigger calling one of
 * them, however the function was named, only a superuser (pg_restore) may
 * create; protect() installs them as the extension.
 */
static void
CheckOurFunctionTrigger(Oid trigoid, Oid relid)
{
	ScanKeyData key;
	HeapTuple	tup;
	Form_pg_trigger trig;

	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(trigoid));
	tup = HaCatalogRow(TriggerRelationId, TriggerOidIndexId, 1, &key, SnapshotSelf);
	if (tup == NULL)
		return;
	trig = (Form_pg_trigger) GETSTRUCT(tup);
	if (get_func_namespace(trig->tgfoid) == HaSchemaOid() &&
		!OidIsValid(trig->tgparentid) && !superuser())
		HaRefuse("create a trigger calling hipaa_audit's trigger function on",
				 psprintf("table %s", HaRelDisplayName(relid)),
				 "Only hipaa_audit.protect() installs them.",
				 "Protect the table with hipaa_audit.protect().");
}

static Oid
RuleRelation(Oid ruleoid)
{
	ScanKeyData key;
	HeapTuple	tup;

	ScanKeyInit(&key, Anum_pg_rewrite_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ruleoid));
	tup = HaCatalogRow(RewriteRelationId, RewriteOidIndexId, 1, &key, SnapshotSelf);
	return tup ? ((Form_pg_rewrite) GETSTRUCT(tup))->ev_class : InvalidOid;
}

/* ----------------------------------------------------------------
 * Types
 * ----------------------------------------------------------------
 */

/* The labels of an enum type, "oid=label" each, in a sorted list. */
static List *
EnumLabels(Oid typid, Snapshot snap)
{
	Relation	rel = table_open(EnumRelationId, AccessShareLock);
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	List	   *labels = NIL;

	ScanKeyInit(&key, Anum_pg_enum_enumtypid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(typid));
	scan = systable_beginscan(rel, EnumTypIdLabelIndexId, true, snap, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_enum e = (Form_pg_enum) GETSTRUCT(tup);

		labels = lappend(labels, psprintf("%u=%s", e->oid, NameStr(e->enumlabel)));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return labels;
}

/* Was a label of an existing enum value changed (RENAME VALUE)? */
static bool
EnumLabelChanged(Oid typid)
{
	List	   *before = EnumLabels(typid, HaStatementSnapshot());
	List	   *after = EnumLabels(typid, SnapshotSelf);
	ListCell   *lc;

	/* Values may be added; none may disappear or change its label. */
	foreach(lc, before)
	{
		ListCell   *lc2;
		bool		found = false;

		foreach(lc2, after)
		{
			if (strcmp((char *) lfirst(lc), (char *) lfirst(lc2)) == 0)
				found = true;
		}
		if (!found)
			return true;
	}
	return false;
}

static void
CheckType(Oid typid)
{
	HeapTuple	before;
	HeapTuple	after;
	Form_pg_type b;
	Form_pg_type a;
	Oid			user = HaProtectedTableUsingType(typid);
	const char *what = NULL;

	if (!OidIsValid(user))
		return;
	before = TypeRow(typid, HaStatementSnapshot());
	after = TypeRow(typid, SnapshotSelf);
	if (before == NULL || after == NULL)
		return;
	b = (Form_pg_type) GETSTRUCT(before);
	a = (Form_pg_type) GETSTRUCT(after);
	if (a->typsend != b->typsend || a->typreceive != b->typreceive ||
		a->typinput != b->typinput || a->typoutput != b->typoutput ||
		a->typmodin != b->typmodin || a->typmodout != b->typmodout)
		what = "change the input, output, send or receive functions of";
	else if (a->typlen != b->typlen || a->typbyval != b->typbyval ||
			 a->typalign != b->typalign || a->typelem != b->typelem ||
			 a->typbasetype != b->typbasetype || a->typtypmod != b->typtypmod ||
			 a->typndims != b->typndims || a->typtype != b->typtype ||
			 a->typrelid != b->typrelid)
		what = "change the layout of";
	else if (a->typtype == TYPTYPE_ENUM && EnumLabelChanged(typid))
		what = "RENAME VALUE of";
	if (what != NULL)
		HaRefuse(what, psprintf("type %s, which protected table %s uses",
								format_type_be(typid), HaRelDisplayName(user)),
				 "The stored values' binary form, and so their hashes, would change.",
				 "Create a new type and use it in a new column instead.");
}

/* ----------------------------------------------------------------
 * Functions a stored generated column of a protected table computes with
 * ----------------------------------------------------------------
 */

/*
 * A stored generated column is not hashed (docs/encoding.md): its value is
 * what its expression makes of the hashed columns, and pg_restore computes
 * it again.  Replacing a function the expression calls would change what
 * such a column reads as, unnoticed; it is refused.
 */
static void
CheckFunctionReplaced(Oid funcid, const char *what)
{
	Relation	dep = table_open(DependRelationId, AccessShareLock);
	SysScanDesc scan;
	ScanKeyData keys[2];
	HeapTuple	tup;

	ScanKeyInit(&keys[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(ProcedureRelationId));
	ScanKeyInit(&keys[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(funcid));
	scan = systable_beginscan(dep, DependReferenceIndexId, true, NULL, 2, keys);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);
		Relation	adrel;
		SysScanDesc adscan;
		ScanKeyData adkey;
		HeapTuple	adtup;

		if (d->classid != AttrDefaultRelationId)
			continue;
		adrel = table_open(AttrDefaultRelationId, AccessShareLock);
		ScanKeyInit(&adkey, Anum_pg_attrdef_oid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(d->objid));
		adscan = systable_beginscan(adrel, AttrDefaultOidIndexId, true, NULL, 1, &adkey);
		adtup = systable_getnext(adscan);
		if (HeapTupleIsValid(adtup))
		{
			Form_pg_attrdef ad = (Form_pg_attrdef) GETSTRUCT(adtup);

			if (HaIsProtected(ad->adrelid) &&
				get_attgenerated(ad->adrelid, ad->adnum) != '\0')
				HaRefuse(what,
						 psprintf("function %s, which generated column \"%s\" of protected table %s computes with",
								  format_procedure_qualified(funcid),
								  get_attname(ad->adrelid, ad->adnum, false),
								  HaRelDisplayName(ad->adrelid)),
						 "The column's values would read differently, and it is not hashed.",
						 "Create a function with a new name instead.");
		}
		systable_endscan(adscan);
		table_close(adrel, AccessShareLock);
	}
	systable_endscan(scan);
	table_close(dep, AccessShareLock);
}

/* ----------------------------------------------------------------
 * Schemas: a protected table's qualified name is what auditors read
 * ----------------------------------------------------------------
 */

static void
CheckSchema(Oid nspid)
{
	ScanKeyData key;
	HeapTuple	before;
	HeapTuple	after;
	ListCell   *lc;
	Oid			first = InvalidOid;

	ScanKeyInit(&key, Anum_pg_namespace_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(nspid));
	before = HaCatalogRow(NamespaceRelationId, NamespaceOidIndexId, 1, &key, HaStatementSnapshot());
	after = HaCatalogRow(NamespaceRelationId, NamespaceOidIndexId, 1, &key, SnapshotSelf);
	if (before == NULL || after == NULL ||
		strcmp(NameStr(((Form_pg_namespace) GETSTRUCT(before))->nspname),
			   NameStr(((Form_pg_namespace) GETSTRUCT(after))->nspname)) == 0)
		return;
	/* The first by name, so that the message does not depend on OID order. */
	foreach(lc, HaProtectedRelids())
	{
		Oid			relid = lfirst_oid(lc);

		if (get_rel_namespace(relid) == nspid &&
			(!OidIsValid(first) ||
			 strcmp(get_rel_name(relid), get_rel_name(first)) < 0))
			first = relid;
	}
	if (OidIsValid(first))
		HaRefuse("RENAME schema", psprintf("%s, which holds protected table %s",
										  quote_identifier(NameStr(((Form_pg_namespace) GETSTRUCT(before))->nspname)),
										  HaRelDisplayName(first)),
				 "Table names are part of what auditors and verifiers rely on.",
				 "Add views with the names you need in another schema.");
}

/* ----------------------------------------------------------------
 * Entry point, from the object-access hook
 * ----------------------------------------------------------------
 */

void
HaBackstop(int access, Oid classId, Oid objectId, int subId,
		   void *arg)
{
	/* A column of a row type a protected column reaches (DROP ATTRIBUTE). */
	if (access == OAT_DROP)
	{
		if (classId == RelationRelationId && subId != 0 && !HaIsProtected(objectId))
		{
			Oid			user = RowTypeUser(objectId);

			if (OidIsValid(user))
				HaRefuse("drop an attribute of",
						 psprintf("%s, whose row type protected table %s uses",
								  HaRelDisplayName(objectId), HaRelDisplayName(user)),
						 "The stored values' binary form, and so their hashes, would change.",
						 "Create a new type and use it in a new column instead.");
		}
		return;
	}
	if (access != OAT_POST_CREATE && access != OAT_POST_ALTER)
		return;

	if (classId == RelationRelationId)
	{
		if (HaIsProtected(objectId))
		{
			if (subId == 0)
			{
				if (access == OAT_POST_ALTER)
					CheckTable(objectId);
			}
			else
				CheckColumn(objectId, subId, true, InvalidOid);
		}
		else if (subId != 0)
		{
			char		relkind = get_rel_relkind(objectId);
			Oid			user;

			/* Row types a protected column reaches: tables, composites. */
			if (relkind == RELKIND_COMPOSITE_TYPE || relkind == RELKIND_RELATION ||
				relkind == RELKIND_PARTITIONED_TABLE || relkind == RELKIND_FOREIGN_TABLE ||
				relkind == RELKIND_VIEW || relkind == RELKIND_MATVIEW)
			{
				user = RowTypeUser(objectId);
				if (OidIsValid(user))
					CheckColumn(objectId, subId, false, user);
			}
		}
	}
	else if (classId == TriggerRelationId)
	{
		Oid			relid = TriggerRelation(objectId);

		if (HaIsProtected(relid))
			(void) HaCheckTriggers(relid, objectId, access == OAT_POST_CREATE);
		else if (access == OAT_POST_CREATE)
			CheckOurFunctionTrigger(objectId, relid);
	}
	else if (classId == RewriteRelationId)
	{
		Oid			relid = RuleRelation(objectId);

		if (HaIsProtected(relid))
			Refuse(access == OAT_POST_CREATE ? "CREATE RULE on" : "ALTER RULE on", relid);
	}
	else if (classId == InheritsRelationId)
	{
		/* objectId is the child; the parent comes as the auxiliary id. */
		ObjectAccessPostAlter *pa = (ObjectAccessPostAlter *) arg;

		CheckInheritanceLink(objectId, pa != NULL ? pa->auxiliary_id : InvalidOid);
	}
	else if (classId == AttrDefaultRelationId && access == OAT_POST_CREATE)
		CheckNewDefault(objectId, subId);
	else if (classId == TypeRelationId && access == OAT_POST_ALTER)
		CheckType(objectId);
	else if (classId == NamespaceRelationId && access == OAT_POST_ALTER)
		CheckSchema(objectId);
	else if (classId == ProcedureRelationId)
		CheckFunctionReplaced(objectId, access == OAT_POST_CREATE ? "replace" : "ALTER");
}
