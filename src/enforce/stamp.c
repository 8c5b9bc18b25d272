/*-------------------------------------------------------------------------
 *
 * stamp.c
 *	  The insert trigger: stamps every new row of a protected table with its
 *	  chain position, the server-assigned facts and its hash.
 *	  Layer enforce/ (docs/architecture.md).
 *
 * hipaa_audit_chain is a BEFORE INSERT ... FOR EACH ROW trigger, ENABLE
 * ALWAYS, named so that it fires after every other BEFORE INSERT row
 * trigger of the table (triggers fire in name order; hooks.c refuses a
 * later-sorting one), so it hashes the row as it will be stored.  Whatever
 * a client put in the chain columns is overwritten.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "replication/logicalworker.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/memutils.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* The client address, computed once per backend; NULL for local sockets. */
static bool ClientKnown = false;
static inet *ClientAddr = NULL;

static inet *
GetClientAddr(void)
{
	if (!ClientKnown)
	{
		LOCAL_FCINFO(fcinfo, 0);
		Datum		d;

		InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
		d = inet_client_addr(fcinfo);
		if (!fcinfo->isnull)
		{
			inet	   *addr = DatumGetInetPP(d);

			ClientAddr = MemoryContextAlloc(TopMemoryContext, VARSIZE(addr));
			memcpy(ClientAddr, addr, VARSIZE(addr));
		}
		ClientKnown = true;
	}
	return ClientAddr;
}

/*
 * Role names as text, remembered per role OID: a COPY of a million rows
 * should not look up the same two names a million times.  A renamed role is
 * picked up through the syscache invalidation callback.
 */
typedef struct RoleNameCache
{
	Oid			roleid;
	text	   *name;
} RoleNameCache;

static RoleNameCache SessionRoleName = {InvalidOid, NULL};
static RoleNameCache CurrentRoleName = {InvalidOid, NULL};
static bool RoleCallbackRegistered = false;

static void
RoleNameInval(Datum arg pg_attribute_unused(), int cacheid pg_attribute_unused(),
			  uint32 hashvalue pg_attribute_unused())
{
	SessionRoleName.roleid = InvalidOid;
	CurrentRoleName.roleid = InvalidOid;
}

static Datum
RoleNameDatum(RoleNameCache *cache, Oid roleid)
{
	if (!RoleCallbackRegistered)
	{
		CacheRegisterSyscacheCallback(AUTHOID, RoleNameInval, (Datum) 0);
		RoleCallbackRegistered = true;
	}
	if (cache->roleid != roleid || cache->name == NULL)
	{
		char	   *name = GetUserNameFromId(roleid, false);
		text	   *t;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		t = cstring_to_text(name);
		MemoryContextSwitchTo(old);
		if (cache->name != NULL)
			pfree(cache->name);
		cache->name = t;
		cache->roleid = roleid;
	}
	return PointerGetDatum(cache->name);
}

static Datum
HashDatum(const uint8 *hash)
{
	bytea	   *b = palloc(VARHDRSZ + HA_HASH_LEN);

	SET_VARSIZE(b, VARHDRSZ + HA_HASH_LEN);
	memcpy(VARDATA(b), hash, HA_HASH_LEN);
	return PointerGetDatum(b);
}

/*
 * A logical replica keeps the rows as the publisher chained them: only
 * logical replication may insert, and every arriving row must match its own
 * hash under the table identity both sides share.
 */
static HeapTuple
CheckReplicatedRow(Relation rel, const HaProtectedEntry *entry, HaShape *shape,
				   Datum *values, bool *isnull, HeapTuple tuple)
{
	uint8		computed[HA_HASH_LEN];
	bytea	   *prev;
	bytea	   *stored;
	int32		chain;
	int64		seq;

	if (!IsLogicalWorker())
		HaRefuse("INSERT INTO",
				 psprintf("protected table %s, a logical replica", HaRelDisplayName(RelationGetRelid(rel))),
				 "Its rows come only from the publisher, chained there.",
				 "Insert on the publisher.");
	if (isnull[shape->att_chain - 1] || isnull[shape->att_seq - 1] ||
		isnull[shape->att_prev - 1] || isnull[shape->att_hash - 1])
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a row replicated into %s has no chain position",
						HaRelDisplayName(RelationGetRelid(rel))),
				 errhint("Publish from a table protected with hipaa_audit.protect().")));
	chain = DatumGetInt32(values[shape->att_chain - 1]);
	seq = DatumGetInt64(values[shape->att_seq - 1]);
	prev = DatumGetByteaPP(values[shape->att_prev - 1]);
	stored = DatumGetByteaPP(values[shape->att_hash - 1]);
	if (VARSIZE_ANY_EXHDR(prev) != HA_HASH_LEN || VARSIZE_ANY_EXHDR(stored) != HA_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a row replicated into %s has malformed chain hashes",
						HaRelDisplayName(RelationGetRelid(rel)))));
	HaRowHash(shape, &entry->uuid, chain, seq, (const uint8 *) VARDATA_ANY(prev),
			  values, isnull, computed);
	if (memcmp(computed, VARDATA_ANY(stored), HA_HASH_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the row replicated into %s at chain %d position " INT64_FORMAT " does not match its hash",
						HaRelDisplayName(RelationGetRelid(rel)), chain, seq),
				 errhint("Check that the replica was protected with the publisher's table_uuid, and verify the publisher.")));
	return tuple;
}

PG_FUNCTION_INFO_V1(chain_row);

Datum
chain_row(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	const HaProtectedEntry *entry;
	HaShape    *shape;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *isnull;
	HeapTuple	newtuple;
	int32		chain;
	int64		seq;
	uint8		prev[HA_HASH_LEN];
	uint8		hash[HA_HASH_LEN];
	inet	   *client;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function hipaa_audit.chain_row must be called as a trigger")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function hipaa_audit.chain_row must be fired BEFORE INSERT ... FOR EACH ROW")));

	rel = trigdata->tg_relation;
	entry = HaLookupProtected(RelationGetRelid(rel));
	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has the hipaa_audit chain trigger but is not protected",
						HaRelDisplayName(RelationGetRelid(rel))),
				 errhint("Protect it with hipaa_audit.protect().")));

	desc = RelationGetDescr(rel);
	values = palloc(sizeof(Datum) * desc->natts);
	isnull = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(trigdata->tg_trigtuple, desc, values, isnull);

	if (entry->replica)
		return PointerGetDatum(CheckReplicatedRow(rel, entry, HaGetShape(rel), values,
												  isnull, trigdata->tg_trigtuple));

	/* The chain position first (it may rebuild the shape); then the shape. */
	HaChainNext(rel, entry, &chain, &seq, prev);
	shape = HaGetShape(rel);

	/* Server-assigned facts: never what the client sent. */
	values[shape->att_at - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	isnull[shape->att_at - 1] = false;
	values[shape->att_session_role - 1] =
		RoleNameDatum(&SessionRoleName, GetSessionUserId());
	isnull[shape->att_session_role - 1] = false;
	values[shape->att_role - 1] =
		RoleNameDatum(&CurrentRoleName,
					  OidIsValid(ha_stamp_role) ? ha_stamp_role : GetUserId());
	isnull[shape->att_role - 1] = false;
	client = GetClientAddr();
	values[shape->att_client - 1] = PointerGetDatum(client);
	isnull[shape->att_client - 1] = (client == NULL);

	values[shape->att_chain - 1] = Int32GetDatum(chain);
	isnull[shape->att_chain - 1] = false;
	values[shape->att_seq - 1] = Int64GetDatum(seq);
	isnull[shape->att_seq - 1] = false;
	values[shape->att_prev - 1] = HashDatum(prev);
	isnull[shape->att_prev - 1] = false;

	HaRowHash(shape, &entry->uuid, chain, seq, prev, values, isnull, hash);
	values[shape->att_hash - 1] = HashDatum(hash);
	isnull[shape->att_hash - 1] = false;

	newtuple = heap_form_tuple(desc, values, isnull);
	/* Keep what the executor relies on (e.g. the table OID). */
	newtuple->t_self = trigdata->tg_trigtuple->t_self;
	newtuple->t_tableOid = trigdata->tg_trigtuple->t_tableOid;

	HaChainAdvance(RelationGetRelid(rel), chain, seq, hash);
	return PointerGetDatum(newtuple);
}
