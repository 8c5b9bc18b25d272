/*-------------------------------------------------------------------------
 *
 * reach.c
 *	  Which protected tables a type reaches (layer core/): through arrays,
 *	  domains, ranges, multiranges and composites.  Changing such a type
 *	  changes the stored values' binary form, and so their hashes.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_type.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

static bool TypeReaches(Oid typid, Oid target, int depth);

/* Does a column of the relation (a table or a composite type) reach target? */
static bool
RelationReachesType(Oid relid, Oid target, int depth)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		found = false;

	for (int i = 0; i < desc->natts && !found; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped)
			found = TypeReaches(att->atttypid, target, depth);
	}
	relation_close(rel, AccessShareLock);
	return found;
}

static bool
TypeReaches(Oid typid, Oid target, int depth)
{
	Oid			base;
	Oid			elem;

	if (depth > HA_MAX_TYPE_DEPTH || !OidIsValid(typid))
		return false;
	if (typid == target)
		return true;
	if (get_typtype(typid) == TYPTYPE_DOMAIN)
	{
		base = getBaseType(typid);
		if (base == target)
			return true;
		typid = base;
	}
	elem = get_element_type(typid);
	if (OidIsValid(elem))
		return TypeReaches(elem, target, depth + 1);
	if (type_is_range(typid))
		return TypeReaches(get_range_subtype(typid), target, depth + 1);
	if (type_is_multirange(typid))
		return TypeReaches(get_multirange_range(typid), target, depth + 1);
	if (get_typtype(typid) == TYPTYPE_COMPOSITE)
		return RelationReachesType(get_typ_typrelid(typid), target, depth + 1);
	return false;
}

/* The first by name, so that messages do not depend on OID order. */
Oid
HaProtectedTableUsingType(Oid typid)
{
	List	   *relids = HaProtectedRelids();
	ListCell   *lc;
	Oid			best = InvalidOid;
	char	   *bestname = NULL;

	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);

		/* A registry row left by a table dropped while we were not loaded. */
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			continue;
		if (RelationReachesType(relid, typid, 0))
		{
			char	   *name = HaRelDisplayName(relid);

			if (bestname == NULL || strcmp(name, bestname) < 0)
			{
				best = relid;
				bestname = name;
			}
		}
	}
	return best;
}

bool
HaDomainHasDefault(Oid typid)
{
	while (OidIsValid(typid) && get_typtype(typid) == TYPTYPE_DOMAIN)
	{
		HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
		Form_pg_type typ;
		bool		has_default;

		if (!HeapTupleIsValid(tup))
			return false;
		typ = (Form_pg_type) GETSTRUCT(tup);
		has_default = !heap_attisnull(tup, Anum_pg_type_typdefaultbin, NULL);
		typid = typ->typbasetype;
		ReleaseSysCache(tup);
		if (has_default)
			return true;
	}
	return false;
}
