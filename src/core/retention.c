/*-------------------------------------------------------------------------
 *
 * retention.c
 *	  What the retention rule says (layer core/): the cutoff before which
 *	  rows are past retention, whether a table still holds rows within it,
 *	  whether one retention is never shorter than another on any date, and
 *	  the floor (hipaa_audit.min_retention) below which only a superuser
 *	  may protect a table.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* hipaa_audit.min_retention: the shortest retention a non-superuser may set. */
char	   *ha_min_retention = NULL;

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
bool
HaRetentionNeverShorter(const Interval *new, const Interval *old)
{
	if (new->month >= old->month && new->day >= old->day && new->time >= old->time)
		return true;
	return SpanMicros(new, false) >= SpanMicros(old, true);
}

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

void
HaRetentionCheckFloor(Interval *retention)
{
	Interval   *floor;

	if (superuser() || ha_min_retention == NULL || ha_min_retention[0] == '\0')
		return;
	floor = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												  CStringGetDatum(ha_min_retention),
												  ObjectIdGetDatum(InvalidOid),
												  Int32GetDatum(-1)));
	if (!HaRetentionNeverShorter(retention, floor))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("retention %s is shorter than hipaa_audit.min_retention (%s)",
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(retention))),
						ha_min_retention),
				 errdetail("Only a superuser may protect a table with a retention below the floor a superuser set."),
				 errhint("Use a retention of at least %s.", ha_min_retention)));
}

/* Rows inserted before this time are past the table's retention. */
TimestampTz
HaRetentionCutoff(Oid relid, Interval *retention)
{
	TimestampTz cutoff;
	int			nestlevel;

	if (!HaRegistryRetention(relid, retention, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s is no longer protected", HaRelDisplayName(relid))));
	/* Calendar arithmetic in UTC: the session's time zone must not move it. */
	HaPinDateSettings(&nestlevel);
	cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													 IntervalPGetDatum(retention)));
	AtEOXact_GUC(true, nestlevel);
	return cutoff;
}

static bool RowsWithinRetention(Oid relid, int64 *rows, TimestampTz *newest);

/*
 * Does a protected table hold a row inserted within its retention?  When it
 * does not, *rows and *newest (if given) are its row count and newest
 * insertion time, for the record of a drop.  A full scan unless a row within
 * retention turns up: asked only before a drop or unprotect.  A partitioned
 * table: the sum over its partitions (each has its retention).
 */
bool
HaRowsWithinRetention(Oid relid, int64 *rows, TimestampTz *newest)
{
	const HaProtectedEntry *entry = HaLookupProtected(relid);
	int64		total = 0;
	TimestampTz max = DT_NOBEGIN;
	ListCell   *lc;

	if (entry == NULL || !entry->partitioned)
		return RowsWithinRetention(relid, rows, newest);
	foreach(lc, HaRegisteredPartitions(relid))
	{
		int64		n = 0;
		TimestampTz t = DT_NOBEGIN;

		if (RowsWithinRetention(lfirst_oid(lc), &n, &t))
			return true;
		total += n;
		if (n > 0 && t > max)
			max = t;
	}
	if (rows)
		*rows = total;
	if (newest)
		*newest = max;
	return false;
}

static bool
RowsWithinRetention(Oid relid, int64 *rows, TimestampTz *newest)
{
	Interval	retention;
	TimestampTz cutoff = HaRetentionCutoff(relid, &retention);
	Oid			nsp = HaSchemaOid();
	Relation	rel = table_open(relid, AccessShareLock);
	HaShape    *shape = HaGetShape(rel);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	bool		within = false;
	int64		n = 0;
	TimestampTz max = DT_NOBEGIN;

	/*
	 * A database still at the 0.1.0 schema has nowhere to record a drop: its
	 * rule stays (every row counts) until ALTER EXTENSION ... UPDATE.
	 */
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid(HA_TABLE_RETIRED_TABLES, nsp)))
		cutoff = DT_NOEND;

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;

		CHECK_FOR_INTERRUPTS();
		n++;
		d = slot_getattr(slot, shape->att_at, &isnull);
		/* A row without an insertion time cannot be shown to be expired. */
		if (isnull || DatumGetTimestampTz(d) >= cutoff)
			within = true;
		if (!isnull && DatumGetTimestampTz(d) > max)
			max = DatumGetTimestampTz(d);
		if (within)
			break;				/* the answer; the counts are not needed */
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	if (rows)
		*rows = n;
	if (newest)
		*newest = max;
	return within;
}
