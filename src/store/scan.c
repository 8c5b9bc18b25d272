/*-------------------------------------------------------------------------
 *
 * scan.c
 *	  Reading the extension's own tables (layer store/): one scan helper
 *	  that every reader of them goes through, with the table named by
 *	  HA_TABLE_* and its columns by Anum_ha_* (hipaa_audit.h).
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

/*
 * Call fn for every row of one of our tables, as snap sees it (NULL: a
 * fresh snapshot, which sees what committed while the caller waited for a
 * lock), until fn returns false.  Returns false when the table does not
 * exist: a database still at an older schema, where it means "no such
 * record was ever made".
 */
bool
HaScanOwnTable(const char *relname, Snapshot snap, HaOwnRowFn fn, void *arg)
{
	Oid			nsp = get_namespace_oid(HA_SCHEMA_NAME, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	bool		own_snap = (snap == NULL);

	if (!OidIsValid(relid))
		return false;
	if (own_snap)
		snap = RegisterSnapshot(GetLatestSnapshot());
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan(rel, snap, 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		if (!fn(arg, slot))
			break;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	if (own_snap)
		UnregisterSnapshot(snap);
	return true;
}
