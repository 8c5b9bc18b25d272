/*-------------------------------------------------------------------------
 *
 * checkpoint.c
 *	  Signed checkpoints: the heads of a table's chains, signed with an
 *	  Ed25519 key the database does not hold, in the C2SP signed-note format.
 *	  Layer api/ (docs/architecture.md).
 *
 * Terms: a "checkpoint" pins, for one table, every chain's last position and
 * hash at one moment; its "note" is the signed text (docs/checkpoints.md).
 * The private key lives in the file named by hipaa_audit.signing_key_file,
 * outside the data directory, readable by the server's account only; it is
 * read for each signature and wiped right after.  Checkpoints are stored,
 * hash-chained, in hipaa_audit.checkpoints, which only this file writes.
 *
 * A note is verified against a verifier key given by the caller, never
 * against anything stored in the database.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "storage/lmgr.h"

#include <sys/stat.h>

#include "access/detoast.h"
#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/base64.h"
#include "common/int.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"



PG_FUNCTION_INFO_V1(verifier_key);

Datum
verifier_key(PG_FUNCTION_ARGS)
{
	uint8		priv[HA_ED25519_KEY_LEN];
	uint8		pub[HA_ED25519_KEY_LEN];

	(void) fcinfo;

	HaCheckKeyName(ha_signer_name);
	if (HaUseSigningAgent())
		HaAgentKey(ha_signer_name, pub);
	else
		HaLoadSigningKey(priv, pub);
	HaSecureZero(priv, sizeof(priv));
	PG_RETURN_TEXT_P(cstring_to_text(HaVerifierKey(ha_signer_name, pub)));
}

/*
 * The lines every checkpoint starts with: origin, kind, table, database,
 * time, the retention in force (as a purge receipt states it), chains.
 */
static void
AppendHeader(StringInfo buf, Oid relid, const HaProtectedEntry *entry)
{
	Interval	retention;

	appendStringInfo(buf, "hipaa_audit/" UINT64_FORMAT "/%s\n", GetSystemIdentifier(),
					 DatumGetCString(DirectFunctionCall1(uuid_out,
														 UUIDPGetDatum((pg_uuid_t *) &entry->uuid))));
	appendStringInfo(buf, "checkpoint v1\n");
	appendStringInfo(buf, "table %s\n", HaNoteName(HaRelDisplayName(relid)));
	appendStringInfo(buf, "database %s\n", HaNoteName(get_database_name(MyDatabaseId)));
	appendStringInfo(buf, "time %s\n",
					 DatumGetCString(DirectFunctionCall1(timestamptz_out,
														 TimestampTzGetDatum(GetCurrentTimestamp()))));
	if (HaRegistryRetention(relid, &retention, NULL))
		appendStringInfo(buf, "retention %s\n",
						 DatumGetCString(DirectFunctionCall1(interval_out,
															 IntervalPGetDatum(&retention))));
	appendStringInfo(buf, "chains %d\n", entry->chains);
}

static char *
BuildBody(Relation rel, const HaProtectedEntry *entry, int64 *rows_out)
{
	StringInfoData buf;
	int64		rows = 0;
	StringInfoData chains;
	HaAnchor   *anchors = NULL;

	initStringInfo(&chains);
	for (int32 c = 0; c < entry->chains; c++)
	{
		int64		seq = 0;
		uint8		hash[HA_HASH_LEN];

		/*
		 * A chain purged to its end keeps its head: the purge's anchor, read
		 * after the miss (a purge's deletes and anchors commit together).
		 */
		if (!(HaChainFindRow(rel, c, -1, &seq, hash, NULL) && seq > 0))
		{
			if (anchors == NULL)
				anchors = HaLoadAnchors(&entry->uuid, NULL);
			seq = anchors[c].seq;
			memcpy(hash, anchors[c].hash, HA_HASH_LEN);
		}
		if (seq > 0)
		{
			appendStringInfo(&chains, "chain %d " INT64_FORMAT " %s\n", c, seq,
							 HaHex(hash, HA_HASH_LEN));
			rows += seq;
		}
	}

	initStringInfo(&buf);
	AppendHeader(&buf, RelationGetRelid(rel), entry);
	appendStringInfo(&buf, "rows " INT64_FORMAT "\n", rows);
	appendStringInfoString(&buf, chains.data);
	*rows_out = rows;
	return buf.data;
}

static int
CompareUuidText(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

static char *TakeCheckpointOf(Oid relid, int64 *rows);

/*
 * A partitioned table's checkpoint: a checkpoint of every partition,
 * stored as any other, and the partitioned table's own note binding them,
 * one line per partition in order of identity: its identity and the
 * SHA-256 of its stored note (docs/partitions.md).
 */
static char *
BuildPartitionedBody(Oid relid, const HaProtectedEntry *entry)
{
	StringInfoData buf;
	StringInfoData lines;
	List	   *parts = NIL;
	ListCell   *lc;
	int64		rows = 0;

	foreach(lc, HaRegisteredPartitions(relid))
	{
		Oid			part = lfirst_oid(lc);
		const HaProtectedEntry *pe;
		int64		n = 0;
		char	   *note;
		uint8		hash[HA_HASH_LEN];

		LockRelationOid(part, AccessShareLock);
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(part)) ||
			(pe = HaLookupProtected(part)) == NULL)
			continue;
		note = TakeCheckpointOf(part, &n);
		rows += n;
		HaSha256Once(note, strlen(note), hash);
		parts = lappend(parts, psprintf("partition %s %s\n",
										DatumGetCString(DirectFunctionCall1(uuid_out,
																			UUIDPGetDatum((pg_uuid_t *) &pe->uuid))),
										HaHex(hash, HA_HASH_LEN)));
	}
	list_sort(parts, CompareUuidText);
	initStringInfo(&lines);
	foreach(lc, parts)
		appendStringInfoString(&lines, (char *) lfirst(lc));

	initStringInfo(&buf);
	AppendHeader(&buf, relid, entry);
	appendStringInfo(&buf, "rows " INT64_FORMAT "\n", rows);
	appendStringInfoString(&buf, lines.data);
	return buf.data;
}


/* Sign, store and return a checkpoint of one protected table. */
static char *
TakeCheckpoint(Oid relid)
{
	int64		rows;

	HaCheckRelationExists(relid);
	(void) HaRequireProtected(relid, "Only tables registered with hipaa_audit.protect() have chains to checkpoint.");
	HaRequireOwnerOrAdmin(relid, "checkpoint");
	HaCheckKeyName(ha_signer_name);
	return TakeCheckpointOf(relid, &rows);
}

/* The caller checked the right: the table's, or its partitioned table's. */
static char *
TakeCheckpointOf(Oid relid, int64 *rows)
{
	const HaProtectedEntry *entry = HaRequireProtected(relid, NULL);
	Relation	rel;
	char	   *body;
	char	   *note;
	int			nestlevel;
	Oid			argtypes[4] = {UUIDOID, REGCLASSOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[4];

	*rows = 0;
	HaPinDateSettings(&nestlevel);
	if (entry->partitioned)
		body = BuildPartitionedBody(relid, entry);
	else
	{
		rel = table_open(relid, AccessShareLock);
		body = BuildBody(rel, entry, rows);
		table_close(rel, AccessShareLock);
	}
	AtEOXact_GUC(true, nestlevel);

	note = HaSignNote(body);

	/* Stored insert-only and hash-chained; one writer at a time. */
	HaRunAsExtensionOwner("LOCK TABLE hipaa_audit.checkpoints IN EXCLUSIVE MODE",
						  0, NULL, NULL);
	values[0] = UUIDPGetDatum((pg_uuid_t *) &entry->uuid);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[3] = CStringGetTextDatum(note);
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.checkpoints "
						  "(table_uuid, relid, created_at, note, prev_hash, hash) "
						  "SELECT $1, $2, $3, $4, p.h, pg_catalog.sha256("
						  "'\\x68697061615f61756469742f636865636b706f696e742f763100'::pg_catalog.bytea "
						  "OPERATOR(pg_catalog.||) p.h OPERATOR(pg_catalog.||) pg_catalog.convert_to($4, 'UTF8')) "
						  "FROM (SELECT COALESCE((SELECT hash FROM hipaa_audit.checkpoints "
						  "ORDER BY id DESC LIMIT 1), "
						  "'\\x0000000000000000000000000000000000000000000000000000000000000000'::pg_catalog.bytea) AS h) p",
						  4, argtypes, values);
	return note;
}

PG_FUNCTION_INFO_V1(checkpoint);

Datum
checkpoint(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.checkpoint must not be null")));
	PG_RETURN_TEXT_P(cstring_to_text(TakeCheckpoint(PG_GETARG_OID(0))));
}

PG_FUNCTION_INFO_V1(checkpoint_all);

/*
 * checkpoint_all() -> setof (tbl, note): every protected table, by name.
 */
Datum
checkpoint_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *relids = HaProtectedRelids();
	List	   *sorted = NIL;
	ListCell   *lc;

	HaRequireAdmin("checkpoint every protected table", "Only members of %s may; table owners can checkpoint their own tables.");
	InitMaterializedSRF(fcinfo, 0);

	/*
	 * By name, so that the order does not depend on OIDs.  A partition is
	 * checkpointed by its partitioned table's checkpoint.
	 */
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		const HaProtectedEntry *entry = HaLookupProtected(relid);
		ListCell   *pos;
		int			i = 0;

		if (entry == NULL || OidIsValid(entry->parent) ||
			!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			continue;

		foreach(pos, sorted)
		{
			if (strcmp(HaRelDisplayName(relid), HaRelDisplayName(lfirst_oid(pos))) < 0)
				break;
			i++;
		}
		sorted = list_insert_nth_oid(sorted, i, relid);
	}
	foreach(lc, sorted)
	{
		Oid			relid = lfirst_oid(lc);
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = ObjectIdGetDatum(relid);
		values[1] = CStringGetTextDatum(TakeCheckpoint(relid));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Co-signing: trusted keys and their signatures on stored checkpoints
 * ----------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(trust_key);

/*
 * trust_key(verifier_key): register an outside signer (a compliance
 * officer's key, a second site) whose co-signatures cosign() accepts.
 */
Datum
trust_key(PG_FUNCTION_ARGS)
{
	char	   *key;
	char	   *name;
	uint8		id[4];
	uint8		pub[HA_ED25519_KEY_LEN];
	HaNoteCheck	nc;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, NAMEOID};
	Datum		values[3];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.trust_key must not be null")));
	HaRequireAdmin("register a trusted key", NULL);
	HaCheckKeyLength(HaTextLength(PG_GETARG_DATUM(0)));
	key = text_to_cstring(PG_GETARG_TEXT_PP(0));
	memset(&nc, 0, sizeof(nc));
	if (!HaParseVerifierKey(key, &name, id, pub, &nc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid verifier key"),
				 errdetail("%s", nc.detail),
				 errhint("A verifier key is <name>+<8 hex key ID>+<base64(0x01 || Ed25519 public key)>.")));
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(key);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.trusted_keys (name, verifier_key, added_at, added_by) "
						  "VALUES ($1, $2, pg_catalog.clock_timestamp(), $3)",
						  3, argtypes, values);
	PG_RETURN_VOID();
}

/* A trusted key of the signer's name, checked against one co-signature. */
typedef struct TrustedKeyCheck
{
	const char *name;
	const uint8 *sigblob;		/* key ID || signature */
	const char *body;
	bool		verified;
} TrustedKeyCheck;

static void
CheckTrustedKey(void *arg, HeapTuple tup, TupleDesc desc)
{
	TrustedKeyCheck *kc = (TrustedKeyCheck *) arg;
	char	   *kname;
	uint8		id[4];
	uint8		pub[HA_ED25519_KEY_LEN];
	HaNoteCheck	nc;
	char	   *key;

	CHECK_FOR_INTERRUPTS();
	if (kc->verified)
		return;
	key = SPI_getvalue(tup, desc, 1);
	memset(&nc, 0, sizeof(nc));
	if (key != NULL && HaParseVerifierKey(key, &kname, id, pub, &nc) &&
		memcmp(id, kc->sigblob, 4) == 0)
		kc->verified = HaEd25519Verify(pub, (const uint8 *) kc->body,
									   strlen(kc->body), kc->sigblob + 4);
}

PG_FUNCTION_INFO_V1(cosign);

/*
 * cosign(checkpoint_id, signature_line) -> the note with every signature.
 * The line must verify against a registered trusted key of its name.
 */
Datum
cosign(PG_FUNCTION_ARGS)
{
	int64		cpid;
	char	   *line;
	char	   *note;
	char	   *body;
	char	   *name;
	const char *p;
	const char *sp;
	uint8		sigblob[4 + HA_ED25519_SIG_LEN + 4];
	int			n;
	bool		verified = false;
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char	   *result;
	bool		found;
	TrustedKeyCheck keys;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of hipaa_audit.cosign must not be null")));
	HaRequireAdmin("add a co-signature", NULL);
	cpid = PG_GETARG_INT64(0);
	if (HaTextLength(PG_GETARG_DATUM(1)) > HA_KEY_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("signature line is too long"),
				 errdetail("At most %d bytes are accepted.", HA_KEY_MAX_LEN),
				 errhint("A signature line is an em dash (U+2014), a space, the signer's name, a space and base64 of key ID and signature.")));
	line = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strlen(line) > 0 && line[strlen(line) - 1] != '\n')
		line = psprintf("%s\n", line);

	/* The stored note (read as the extension owner: auditors may not write). */
	values[0] = Int64GetDatum(cpid);
	note = HaQueryText("SELECT note FROM hipaa_audit.checkpoints WHERE id OPERATOR(pg_catalog.=) $1",
					   1, argtypes, values, HA_SQL_READ_ONLY, &found);
	if (!found || note == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("checkpoint " INT64_FORMAT " does not exist", cpid)));
	body = HaNoteBodyOf(note);
	if (body == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored checkpoint " INT64_FORMAT " has no blank line before its signature", cpid)));
	/* Room for one more line in the note checkpoint_note() returns. */
	if (HaRunAsExtensionOwnerInt8("SELECT count(*) FROM hipaa_audit.cosignatures "
								  "WHERE checkpoint_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values) + 2 > HA_NOTE_MAX_SIGNATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("checkpoint " INT64_FORMAT " has too many co-signatures", cpid),
				 errdetail("A note carries at most %d signature lines.", HA_NOTE_MAX_SIGNATURES)));

	/* "— <name> <base64>\n" */
	if (strncmp(line, HA_SIG_DASH, strlen(HA_SIG_DASH)) != 0 || strchr(line, '\r') != NULL ||
		strchr(line, '\n') != line + strlen(line) - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signature line"),
				 errdetail("A signature line is an em dash (U+2014), a space, the signer's name, a space and base64 of key ID and signature.")));
	p = line + strlen(HA_SIG_DASH);
	sp = strchr(p, ' ');
	if (sp == NULL || sp == p)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signature line"),
				 errdetail("It has no name and signature.")));
	name = pnstrdup(p, sp - p);
	n = HaUnbase64(sp + 1, strlen(sp + 1) - 1, sigblob, sizeof(sigblob));
	if (n != 4 + HA_ED25519_SIG_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signature line"),
				 errdetail("The signature is not base64 of a 4-byte key ID and a 64-byte Ed25519 signature.")));

	/* Against every registered key of that name with that key ID. */
	values[0] = CStringGetTextDatum(name);
	keys.name = name;
	keys.sigblob = sigblob;
	keys.body = body;
	keys.verified = false;
	(void) HaRunSql("SELECT verifier_key FROM hipaa_audit.trusted_keys "
					"WHERE name OPERATOR(pg_catalog.=) $1",
					1, &argtypes[1], values, NULL, InvalidOid, HA_SQL_READ_ONLY,
					CheckTrustedKey, &keys);
	verified = keys.verified;
	if (!verified)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the co-signature by \"%s\" does not verify against a trusted key", name),
				 errhint("Register the signer's verifier key with hipaa_audit.trust_key() first.")));

	values[0] = Int64GetDatum(cpid);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(line);
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.cosignatures (checkpoint_id, signer, line, added_at) "
						  "VALUES ($1, $2, $3, pg_catalog.clock_timestamp())",
						  3, argtypes, values);

	/* The note with every signature line it has now (a fresh snapshot). */
	values[0] = Int64GetDatum(cpid);
	result = HaQueryText("SELECT hipaa_audit.checkpoint_note($1)",
						 1, argtypes, values, 0, &found);
	if (result == NULL)
		elog(ERROR, "could not read the co-signed note");
	PG_RETURN_TEXT_P(cstring_to_text(result));
}


typedef struct StoredHeadsCheck
{
	const HaProtectedEntry *entry;
	Relation	rel;
	HaAnchor   *anchors;
	int64		checked;
	void		(*report) (void *arg, int32 chain, int64 seq,
						   const char *kind, const char *detail);
	void	   *arg;
} StoredHeadsCheck;

static void
CheckStoredHeads(void *arg, int64 id, const HaNoteBody *nb, const char *problem)
{
	StoredHeadsCheck *sc = (StoredHeadsCheck *) arg;

	sc->checked++;
	if (problem != NULL)
	{
		sc->report(sc->arg, -1, -1, "checkpoint_malformed",
				   psprintf("stored checkpoint " INT64_FORMAT " cannot be read: %s", id, problem));
		return;
	}
	for (int i = 0; i < nb->npartitions; i++)
	{
		char	   *detail;
		const char *kind = HaCheckPartitionLine(&nb->partitions[i], &detail);

		if (kind != NULL)
			sc->report(sc->arg, -1, -1, kind,
					   psprintf("stored checkpoint " INT64_FORMAT ": %s", id, detail));
	}
	for (int i = 0; i < nb->nchains; i++)
	{
		int32		chain = nb->chain[i].chain;
		int64		seq = nb->chain[i].last;
		const uint8 *want = nb->chain[i].hash;
		uint8		have[HA_HASH_LEN];

		CHECK_FOR_INTERRUPTS();
		if (HaChainFindRow(sc->rel, chain, seq, NULL, have, NULL))
		{
			if (memcmp(want, have, HA_HASH_LEN) != 0)
				sc->report(sc->arg, chain, seq, "checkpoint_mismatch",
						   "a stored checkpoint recorded a different row at this position (history rewritten?)");
			continue;
		}
		/* Purged lawfully?  Anchors read after the miss, again if stale. */
		if (sc->anchors == NULL || seq > sc->anchors[chain].seq)
			sc->anchors = HaLoadAnchors(&sc->entry->uuid, NULL);
		if (seq > sc->anchors[chain].seq)
			sc->report(sc->arg, chain, seq, "checkpoint_rows_missing",
					   "a stored checkpoint recorded a row at this position; it is gone (rows deleted from the end?)");
		else if (seq == sc->anchors[chain].seq &&
				 memcmp(want, sc->anchors[chain].hash, HA_HASH_LEN) != 0)
			sc->report(sc->arg, chain, seq, "checkpoint_mismatch",
					   "a stored checkpoint recorded a different row at this position than the purge receipt that removed it");
	}
}

/*
 * For verify(): every stored checkpoint of the table must still find its
 * recorded heads.  Reports through the callback; returns how many checked.
 */
int64
HaCheckStoredCheckpoints(Oid relid, void (*report) (void *arg, int32 chain, int64 seq,
													const char *kind, const char *detail),
						 void *arg)
{
	StoredHeadsCheck sc;

	memset(&sc, 0, sizeof(sc));
	sc.entry = HaLookupProtected(relid);
	if (sc.entry == NULL)
		return 0;
	sc.report = report;
	sc.arg = arg;
	sc.rel = table_open(relid, AccessShareLock);
	(void) HaScanStoredNotes(false, &sc.entry->uuid, CheckStoredHeads, &sc);
	table_close(sc.rel, AccessShareLock);
	return sc.checked;
}

/*
 * For verify(): every stored purge receipt of the table must read as one
 * (HaParseNoteBody), so that each anchor found listed in its note is listed
 * on a chain line.  Reports through the callback; returns how many read.
 */
typedef struct ReceiptsCheck
{
	void		(*report) (void *arg, int32 chain, int64 seq, const char *kind,
						   const char *detail);
	void	   *arg;
	int64		checked;
} ReceiptsCheck;

static void
CheckStoredReceipt(void *arg, int64 id, const HaNoteBody *nb pg_attribute_unused(),
				   const char *problem)
{
	ReceiptsCheck *rc = (ReceiptsCheck *) arg;

	rc->checked++;
	if (problem != NULL)
		rc->report(rc->arg, -1, -1, "receipt_malformed",
				   psprintf("stored purge receipt " INT64_FORMAT " cannot be read: %s", id, problem));
}

int64
HaCheckStoredReceipts(const pg_uuid_t *uuid,
					  void (*report) (void *arg, int32 chain, int64 seq,
									  const char *kind, const char *detail),
					  void *arg)
{
	ReceiptsCheck rc = {report, arg, 0};

	/* A 0.1.0 schema has no receipts table: no purge ever ran. */
	(void) HaScanStoredNotes(true, uuid, CheckStoredReceipt, &rc);
	return rc.checked;
}

/* ----------------------------------------------------------------
 * Partition lines of a partitioned table's checkpoints
 * ----------------------------------------------------------------
 */

typedef struct NoteHashFind
{
	const uint8 *hash;
	pg_uuid_t	uuid;
	bool		found;
	int64		id;
} NoteHashFind;

static bool
FindNoteByHash(void *arg, TupleTableSlot *slot)
{
	NoteHashFind *f = (NoteHashFind *) arg;
	text	   *note;
	uint8		h[HA_HASH_LEN];

	if (slot->tts_isnull[Anum_ha_checkpoints_table_uuid - 1] ||
		memcmp(DatumGetUUIDP(slot->tts_values[Anum_ha_checkpoints_table_uuid - 1])->data,
			   f->uuid.data, UUID_LEN) != 0 ||
		slot->tts_isnull[Anum_ha_checkpoints_note - 1])
		return true;
	note = DatumGetTextPP(slot->tts_values[Anum_ha_checkpoints_note - 1]);
	HaSha256Once(VARDATA_ANY(note), VARSIZE_ANY_EXHDR(note), h);
	if (memcmp(h, f->hash, HA_HASH_LEN) == 0)
	{
		f->found = true;
		f->id = DatumGetInt64(slot->tts_values[Anum_ha_checkpoints_id - 1]);
		return false;
	}
	return true;
}

/* The id of the stored checkpoint of a table whose note hashes to hash; 0: none. */
int64
HaStoredCheckpointByHash(const pg_uuid_t *uuid, const uint8 *hash)
{
	NoteHashFind f;

	memset(&f, 0, sizeof(f));
	f.hash = hash;
	memcpy(&f.uuid, uuid, sizeof(pg_uuid_t));
	(void) HaScanOwnTable(HA_TABLE_CHECKPOINTS, NULL, FindNoteByHash, &f);
	return f.found ? f.id : 0;
}

static void
FindRemoval(void *arg, int64 id pg_attribute_unused(), const HaNoteBody *nb,
			const char *problem)
{
	if (problem == NULL && nb->removed != NULL)
		*(bool *) arg = true;
}

/*
 * One partition line of a partitioned table's checkpoint: the partition is
 * protected here and the checkpoint of it that the line hashes is stored,
 * or it was removed lawfully (a receipt of its removal is stored).  NULL
 * when so; else the problem's kind, and *detail.
 */
const char *
HaCheckPartitionLine(const HaNotePartition *np, char **detail)
{
	NoteHashFind f;
	ListCell   *lc;
	Oid			part = InvalidOid;
	bool		removed = false;

	memset(&f, 0, sizeof(f));
	f.hash = np->hash;
	memcpy(&f.uuid, DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(np->uuid))),
		   sizeof(pg_uuid_t));
	foreach(lc, HaProtectedRelids())
	{
		const HaProtectedEntry *e = HaLookupProtected(lfirst_oid(lc));

		if (e != NULL && memcmp(e->uuid.data, f.uuid.data, UUID_LEN) == 0)
			part = e->relid;
	}
	if (OidIsValid(part) && !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(part)))
	{
		*detail = psprintf("the partition with identity %s it records is gone, and no receipt of its removal is stored (it was dropped while hipaa_audit was not loaded)",
						   np->uuid);
		return "partition_missing";
	}
	if (OidIsValid(part))
	{
		(void) HaScanOwnTable(HA_TABLE_CHECKPOINTS, NULL, FindNoteByHash, &f);
		if (f.found)
			return NULL;
		*detail = psprintf("the checkpoint of partition %s it binds (SHA-256 %s) is not stored",
						   HaRelDisplayName(part), HaHex(np->hash, HA_HASH_LEN));
		return "checkpoint_mismatch";
	}
	(void) HaScanStoredNotes(true, &f.uuid, FindRemoval, &removed);
	if (removed)
		return NULL;
	*detail = psprintf("the partition with identity %s it records is gone, and no receipt of its removal is stored",
					   np->uuid);
	return "partition_missing";
}
