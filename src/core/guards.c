/*-------------------------------------------------------------------------
 *
 * guards.c
 *	  The triggers protect() installs on a protected table, and exactly what
 *	  they must look like (layer core/): our function, their events and
 *	  timing, no WHEN, no column list, no arguments, ENABLE ALWAYS; and no
 *	  other BEFORE INSERT row trigger firing after the chain trigger.
 *	  protect() checks its work with it; the backstop checks every change.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#define GUARDS_DETAIL "This change would weaken the protection of an audit table."

static bool
IsOurFunction(Oid funcid, const char *name)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	bool		ours = false;

	if (HeapTupleIsValid(tup))
	{
		Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tup);

		ours = proc->pronamespace == HaSchemaOid() &&
			strcmp(NameStr(proc->proname), name) == 0;
		ReleaseSysCache(tup);
	}
	return ours;
}

/* Did the trigger exist when the statement began (a replacement)? */
static bool
TriggerExisted(Oid trigoid)
{
	ScanKeyData key;
	HeapTuple	tup;

	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(trigoid));
	tup = HaCatalogRow(TriggerRelationId, TriggerOidIndexId, 1, &key, HaStatementSnapshot());
	return tup != NULL;
}

/*
 * Every trigger of a protected table, as it is now.  A trigger that was just
 * created may still be ENABLE ORIGIN (pg_restore enables ours in a second
 * statement); once altered, ours must be ENABLE ALWAYS.
 */
int
HaCheckTriggers(Oid relid, Oid changed, bool created)
{
	int			ours = 0;

	Relation	rel = table_open(TriggerRelationId, AccessShareLock);
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, TriggerRelidNameIndexId, true, SnapshotSelf, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tup);
		const char *name = NameStr(trig->tgname);
		const char *func = strcmp(name, HA_TRIGGER_ROW) == 0 ? "guard_row" :
			strcmp(name, HA_TRIGGER_TRUNCATE) == 0 ? "guard_truncate" :
			strcmp(name, HA_TRIGGER_CHAIN) == 0 ? "chain_row" : NULL;

		if (func != NULL)
		{
			int16		want = strcmp(func, "guard_row") == 0 ?
				(TRIGGER_TYPE_ROW | TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_UPDATE | TRIGGER_TYPE_DELETE) :
				strcmp(func, "guard_truncate") == 0 ?
				(TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_TRUNCATE) :
				(TRIGGER_TYPE_ROW | TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_INSERT);
			bool		fresh = created && trig->oid == changed &&
				!TriggerExisted(trig->oid);

			/*
			 * Exactly what protect() creates: our function, the events and
			 * timing, no WHEN, no column list, no arguments, not a
			 * constraint trigger.  CREATE OR REPLACE TRIGGER is a change of
			 * an existing trigger, not a new one.
			 */
			if (!IsOurFunction(trig->tgfoid, func) || trig->tgtype != want ||
				!heap_attisnull(tup, Anum_pg_trigger_tgqual, NULL) ||
				trig->tgattr.dim1 != 0 || trig->tgnargs != 0 ||
				OidIsValid(trig->tgconstraint))
				HaRefuse(psprintf("replace trigger %s on", name),
						 psprintf("protected table %s", HaRelDisplayName(relid)),
						 GUARDS_DETAIL, NULL);
			if (trig->tgenabled != TRIGGER_FIRES_ALWAYS && !fresh)
				HaRefuse(psprintf("change how trigger %s fires on", name),
						 psprintf("protected table %s", HaRelDisplayName(relid)),
						 GUARDS_DETAIL,
						 "The guard and chain triggers stay ENABLE ALWAYS.");
			ours++;
		}
		else if (TRIGGER_FOR_ROW(trig->tgtype) && TRIGGER_FOR_BEFORE(trig->tgtype) &&
				 TRIGGER_FOR_INSERT(trig->tgtype) &&
				 strcmp(name, HA_TRIGGER_CHAIN) > 0)
			HaRefuse(psprintf("have BEFORE INSERT trigger \"%s\" on", name),
					 psprintf("protected table %s", HaRelDisplayName(relid)),
					 psprintf("Triggers fire in name order; it would change rows after \"%s\" has hashed them.",
							  HA_TRIGGER_CHAIN),
					 psprintf("Give it a name that sorts before \"%s\".", HA_TRIGGER_CHAIN));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return ours;
}

/*
 * After protect(): its three triggers are on the table it registered, by
 * OID, exactly as it made them.  protect() names the table in its SQL; this
 * makes sure the name led where it meant.
 */
void
HaCheckGuardsInPlace(Oid relid)
{
	if (HaCheckTriggers(relid, InvalidOid, false) != 3)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("protect() could not install its triggers on %s",
						HaRelDisplayName(relid)),
				 errdetail("The table's name led elsewhere while protect() ran."),
				 errhint("Try again.")));
}
