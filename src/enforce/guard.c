/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  The guard triggers protect() installs on every protected table.
 *	  Layer enforce/ (docs/architecture.md).
 *
 * hipaa_audit_guard_row (BEFORE UPDATE OR DELETE, FOR EACH ROW) and
 * hipaa_audit_guard_truncate (BEFORE TRUNCATE, FOR EACH STATEMENT) are
 * ENABLE ALWAYS, so they fire under session_replication_role = replica and
 * in logical replication apply workers too.  The executor and utility hooks
 * refuse the same statements earlier; the triggers are the second wall for
 * code paths that bypass the executor hooks.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/rel.h"

#define GUARD_HINT "Audit rows can never be changed; insert a new row that records the correction instead."

static void
CheckTriggerProtocol(FunctionCallInfo fcinfo, const char *funcname)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function hipaa_audit.%s must be called as a trigger", funcname)));
}

PG_FUNCTION_INFO_V1(guard_row);

Datum
guard_row(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *action;

	CheckTriggerProtocol(fcinfo, "guard_row");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function hipaa_audit.guard_row must be fired BEFORE ... FOR EACH ROW")));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		action = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		action = "DELETE FROM";
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function hipaa_audit.guard_row must be fired for UPDATE or DELETE")));

	HaRefuse(action,
			 psprintf("protected table %s",
					  HaRelDisplayName(RelationGetRelid(trigdata->tg_relation))),
			 "The table is an insert-only audit table protected by hipaa_audit.",
			 GUARD_HINT);
	PG_RETURN_NULL();			/* not reached */
}

PG_FUNCTION_INFO_V1(guard_truncate);

Datum
guard_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	CheckTriggerProtocol(fcinfo, "guard_truncate");
	if (!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function hipaa_audit.guard_truncate must be fired for TRUNCATE")));

	HaRefuse("TRUNCATE",
			 psprintf("protected table %s",
					  HaRelDisplayName(RelationGetRelid(trigdata->tg_relation))),
			 "The table is an insert-only audit table protected by hipaa_audit.",
			 GUARD_HINT);
	PG_RETURN_NULL();			/* not reached */
}
