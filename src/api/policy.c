/*-------------------------------------------------------------------------
 *
 * policy.c
 *	  set_retention(), place_hold(), release_hold() (layer api/): the
 *	  retention a table keeps its rows for, and the legal holds that keep
 *	  them regardless.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

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
	HaRequireAdmin(psprintf("change the retention of %s", name), NULL);
	if (OidIsValid(HaRequireProtected(relid, NULL)->parent))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot set the retention of partition %s on its own", name),
				 errdetail("Every partition has the retention of its partitioned table."),
				 errhint("Set it on %s.", HaRelDisplayName(HaLookupProtected(relid)->parent))));
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
	if (!HaRetentionNeverShorter(retention, current))
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
	/* A partitioned table's partitions follow it (a retention never lowers). */
	if (HaRequireProtected(relid, NULL)->partitioned)
		(void) HaRunSql("UPDATE hipaa_audit.registry SET retention = $2, "
						"retention_locked = retention_locked OR $3 "
						"WHERE partition_of OPERATOR(pg_catalog.=) $1",
						3, argtypes, values, NULL, InvalidOid, 0, NULL, NULL);
	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: retention of %s set to %s%s by role %s", name,
					DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(retention))),
					lock ? " and locked" : "",
					GetUserNameFromId(GetUserId(), false))));
	PG_RETURN_VOID();
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
	HaRequireAdmin("place a legal hold", NULL);
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
	HaRequireAdmin("release a legal hold", NULL);
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
