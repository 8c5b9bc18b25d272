/*-------------------------------------------------------------------------
 *
 * notecheck.c
 *	  verify_checkpoint() and verify_receipt() (layer api/): a note's
 *	  signatures against the keys the caller trusts, then the table against
 *	  what the note says, with a full verify() (api/verify.c).
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/detoast.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/*
 * The protected table a note's origin line names, or NULL after HaNoteFail().
 */
static const HaProtectedEntry *
NoteTableOf(const HaNoteBody *nb, const char *uuid, HaNoteCheck *nc)
{
	const HaProtectedEntry *entry = NULL;
	bool		other_cluster;
	List	   *relids;
	ListCell   *lc;

	/*
	 * Another cluster's note is fine for a restored copy of the same table
	 * (same identity, pg_dump/pg_restore into a new cluster); without such a
	 * table it is another cluster's business.
	 */
	other_cluster = (nb->sysid != GetSystemIdentifier());

	relids = HaProtectedRelids();
	foreach(lc, relids)
	{
		const HaProtectedEntry *e = HaLookupProtected(lfirst_oid(lc));
		char	   *u = DatumGetCString(DirectFunctionCall1(uuid_out,
															UUIDPGetDatum((pg_uuid_t *) &e->uuid)));

		if (strcmp(u, uuid) == 0)
			entry = e;
	}
	if (entry == NULL && other_cluster)
	{
		HaNoteFail(nc, "other_cluster",
			 psprintf("the note is from database cluster " UINT64_FORMAT ", this is " UINT64_FORMAT ", and no table here has identity %s",
					  nb->sysid, GetSystemIdentifier(), uuid));
		return NULL;
	}
	if (entry == NULL)
	{
		HaNoteFail(nc, "unknown_table",
			 psprintf("no protected table in this database has identity %s", uuid));
		return NULL;
	}
	nc->relid = entry->relid;
	if (other_cluster)
		nc->detail = psprintf("signed in database cluster " UINT64_FORMAT "; this is " UINT64_FORMAT ", holding a restored copy of the table",
							  nb->sysid, GetSystemIdentifier());
	return entry;
}

static const HaProtectedEntry *
NoteTable(const HaNoteBody *nb, HaNoteCheck *nc)
{
	return NoteTableOf(nb, nb->uuid, nc);
}

/* Check a signed checkpoint body against the table it names. */
static bool
CheckBody(const char *body, HaNoteCheck *nc, void *arg pg_attribute_unused())
{
	HaNoteBody *nb = palloc(sizeof(HaNoteBody));
	char	   *problem = HaParseNoteBody(body, false, nb);
	const HaProtectedEntry *entry;
	Relation	rel;
	HaAnchor   *anchors;

	if (problem != NULL)
		return HaNoteFail(nc, "malformed_note", problem);
	entry = NoteTable(nb, nc);
	if (entry == NULL)
		return false;
	rel = table_open(entry->relid, AccessShareLock);
	anchors = HaLoadAnchors(&entry->uuid, NULL);
	for (int i = 0; i < nb->nchains; i++)
	{
		int32		chain = nb->chain[i].chain;
		int64		seq = nb->chain[i].last;
		uint8		have[HA_HASH_LEN];

		CHECK_FOR_INTERRUPTS();
		if (!HaChainFindRow(rel, chain, seq, NULL, have, NULL))
		{
			/* Anchors read after the miss, again if stale (a purge just committed). */
			if (seq > anchors[chain].seq)
				anchors = HaLoadAnchors(&entry->uuid, NULL);
			/* Purged lawfully: a receipt covers it; at its end, the anchor. */
			if (seq <= anchors[chain].seq)
			{
				if (seq < anchors[chain].seq)
					continue;
				memcpy(have, anchors[chain].hash, HA_HASH_LEN);
			}
			else
			{
				table_close(rel, AccessShareLock);
				return HaNoteFail(nc, "rows_missing",
							psprintf("chain %d has no row at position " INT64_FORMAT ", which the checkpoint recorded",
									 chain, seq));
			}
		}
		if (memcmp(nb->chain[i].hash, have, HA_HASH_LEN) != 0)
		{
			table_close(rel, AccessShareLock);
			return HaNoteFail(nc, "table_rewritten",
						psprintf("chain %d position " INT64_FORMAT " holds a different row than the checkpoint recorded",
								 chain, seq));
		}
	}
	table_close(rel, AccessShareLock);

	/* A partitioned table's: every partition it binds is accounted for. */
	for (int i = 0; i < nb->npartitions; i++)
	{
		char	   *detail;
		const char *kind = HaCheckPartitionLine(&nb->partitions[i], &detail);

		if (kind != NULL)
			return HaNoteFail(nc, strcmp(kind, "partition_missing") == 0 ?
							  "rows_missing" : "table_rewritten", detail);
	}

	/*
	 * A tlog-checkpoint: the stored tree must have its root, so that the
	 * proofs prove_row() gives against it verify.  A logical replica's copy
	 * holds the rows but not the tree of the cluster that signed (its own
	 * tree, if it takes checkpoints, is its own): there, only the heads.
	 */
	if (nb->version == 2 && !(entry->replica && nb->sysid != GetSystemIdentifier()))
	{
		HaTree	   *t = HaTreeOpen(&entry->uuid, nb->tree_size);
		uint8		root[HA_HASH_LEN];

		HaTreeSoft(t);
		HaTreeRoot(t, nb->tree_size, root);
		if (HaTreeMissing(t) || memcmp(root, nb->root, HA_HASH_LEN) != 0)
			return HaNoteFail(nc, "table_rewritten",
							  psprintf("the stored Merkle tree of " INT64_FORMAT " leaves does not have the root the checkpoint signed%s",
									   nb->tree_size,
									   HaTreeMissing(t) ? " (hashes are missing)" : ""));
		HaTreeClose(t);
	}

	/*
	 * The rows up to the recorded heads must also verify; a problem in a
	 * chain the note does not record, or after its recorded position, is
	 * not the note's.  A partitioned table's note: its partitions whole.
	 */
	{
		int64		problems;

		if (nb->npartitions > 0)
			problems = HaVerifyCount(entry->relid);
		else
		{
			int64	   *upto = palloc0(sizeof(int64) * HA_MAX_CHAINS);

			for (int i = 0; i < nb->nchains; i++)
				upto[nb->chain[i].chain] = nb->chain[i].last;
			problems = HaVerifyCountUpTo(entry->relid, upto, HA_MAX_CHAINS);
		}
		if (problems > 0)
			return HaNoteFail(nc, "table_rewritten",
						psprintf("the recorded heads are present, but verify() reports " INT64_FORMAT " problem(s) in the chains up to them",
								 problems));
	}
	return true;
}

/*
 * A receipt against the stored checkpoints of its table that state a
 * retention: retention is only ever raised, so the rows a purge removed were
 * past the retention any earlier checkpoint states.  A receipt that
 * contradicts one (the registry's retention lowered behind the extension's
 * back, then a genuine purge) is reported.
 */
typedef struct RetentionCheck
{
	TimestampTz time;			/* the receipt's */
	TimestampTz cutoff;
	Interval   *retention;
	int64		contradicted;	/* first stored checkpoint contradicted, or 0 */
	char	   *detail;
} RetentionCheck;

static TimestampTz
NoteTime(const char *text)
{
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
}

static Interval *
NoteInterval(const char *text)
{
	return DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(text),
												 ObjectIdGetDatum(InvalidOid),
												 Int32GetDatum(-1)));
}

static void
CheckRetentionAgainst(void *arg, int64 id, const HaNoteBody *nb, const char *problem)
{
	RetentionCheck *rc = (RetentionCheck *) arg;
	Interval   *stated;
	TimestampTz kept_until;

	/* verify() reports a stored checkpoint it cannot read. */
	if (problem != NULL || nb->retention == NULL || rc->contradicted != 0)
		return;
	if (NoteTime(nb->time) >= rc->time)
		return;
	stated = NoteInterval(nb->retention);

	/*
	 * The newest row removed was inserted before the cutoff; the stated
	 * retention kept it until cutoff + retention, which must not be after
	 * the purge.  (Added, not subtracted from the purge's time: month
	 * arithmetic clamps to the end of a month, and a purge that runs past
	 * midnight at a month's end must not look early.)
	 */
	kept_until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														 TimestampTzGetDatum(rc->cutoff),
														 IntervalPGetDatum(stated)));
	if (kept_until > rc->time)
	{
		rc->contradicted = id;
		rc->detail = psprintf("stored checkpoint " INT64_FORMAT " of %s states a retention of %s; the receipt states %s and cutoff %s, removing rows that retention kept",
							  id, nb->time, nb->retention,
							  DatumGetCString(DirectFunctionCall1(interval_out,
																  IntervalPGetDatum(rc->retention))),
							  DatumGetCString(DirectFunctionCall1(timestamptz_out,
																  TimestampTzGetDatum(rc->cutoff))));
	}
}

/*
 * Check a signed purge receipt body: the database recorded every chain range
 * it lists, and the table verifies, each chain starting from its anchor.
 */
static bool
CheckReceiptBody(const char *body, HaNoteCheck *nc, void *arg pg_attribute_unused())
{
	HaNoteBody *nb = palloc(sizeof(HaNoteBody));
	char	   *problem = HaParseNoteBody(body, true, nb);
	const HaProtectedEntry *entry;

	const pg_uuid_t *uuid;

	if (problem != NULL)
		return HaNoteFail(nc, "malformed_note", problem);
	/*
	 * From 0.3.0 on a receipt says what its cutoff was counted back from:
	 * the cutoff must be as-of minus the retention (calendar arithmetic in
	 * UTC), which anyone can recompute offline.
	 */
	if (nb->as_of != NULL)
	{
		int			nestlevel;
		TimestampTz expect;

		HaPinDateSettings(&nestlevel);
		expect = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
														 TimestampTzGetDatum(NoteTime(nb->as_of)),
														 IntervalPGetDatum(NoteInterval(nb->retention))));
		AtEOXact_GUC(true, nestlevel);
		if (expect != NoteTime(nb->cutoff))
			return HaNoteFail(nc, "malformed_note",
							  pstrdup("the cutoff is not the as-of time minus the retention"));
	}
	if (nb->removed != NULL)
	{
		/*
		 * A whole partition removed: it is gone from the registry, its
		 * partitioned table (the note's partition-of line) is here and
		 * verifies, and its anchors are on record under its identity.
		 */
		if (NoteTableOf(nb, nb->uuid, nc) != NULL)
			return HaNoteFail(nc, "not_removed",
							  psprintf("the receipt records the removal of partition %s, but a protected table here still has its identity %s",
									   nb->table, nb->uuid));
		memset(nc, 0, sizeof(*nc));
		nc->status = "ok";
		entry = NoteTableOf(nb, nb->parent_uuid, nc);
		if (entry == NULL)
			return false;
		uuid = DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(nb->uuid)));
	}
	else
	{
		entry = NoteTable(nb, nc);
		if (entry == NULL)
			return false;
		uuid = &entry->uuid;
	}
	for (int i = 0; i < nb->nchains; i++)
	{
		const HaNoteChain *c = &nb->chain[i];

		CHECK_FOR_INTERRUPTS();
		if (!HaAnchorRecorded(uuid, c->chain, c->first, c->last, c->hash))
			return HaNoteFail(nc, "not_recorded",
						psprintf("this database has no record of removing positions " INT64_FORMAT " to " INT64_FORMAT " of chain %d with this anchor",
								 c->first, c->last, c->chain));
	}

	/* Earlier checkpoints that state a longer retention contradict it. */
	{
		RetentionCheck rc;
		int			nestlevel;

		HaPinDateSettings(&nestlevel);
		memset(&rc, 0, sizeof(rc));
		rc.time = NoteTime(nb->time);
		rc.cutoff = NoteTime(nb->cutoff);
		rc.retention = NoteInterval(nb->retention);
		(void) HaScanStoredNotes(false, uuid, CheckRetentionAgainst, &rc);
		AtEOXact_GUC(true, nestlevel);
		if (rc.contradicted != 0)
			return HaNoteFail(nc, "retention_contradicted", rc.detail);
	}

	/* The rows kept must continue from the anchors and verify. */
	{
		int64		problems = HaVerifyCount(entry->relid);

		if (problems > 0)
			return HaNoteFail(nc, "table_rewritten",
						psprintf("the purge is on record, but verify() reports " INT64_FORMAT " problem(s) in the chains",
								 problems));
	}
	return true;
}

typedef bool (*BodyCheck) (const char *body, HaNoteCheck *nc, void *arg);

/*
 * The check behind verify_checkpoint() and verify_receipt(): at least quorum
 * of the given keys signed the note (each signer counted once; a line that
 * names one of the keys but does not verify fails the whole check), and
 * check_body accepts what was signed.  signers collects the names that
 * signed.  The note is split once, whatever the number of keys.
 */
static bool
CheckNote(const char *note, char **keys, int nkeys, int quorum, HaNoteCheck *nc,
		  ArrayBuildState **signers, BodyCheck check_body, void *arg)
{
	uint8		(*seen)[HA_ED25519_KEY_LEN] = palloc(sizeof(*seen) * nkeys);
	int			valid = 0;
	HaSplitNote  *sn = palloc(sizeof(HaSplitNote));
	bool		split = false;
	HaNoteCheck	last;

	memset(nc, 0, sizeof(*nc));
	nc->status = "ok";
	memset(&last, 0, sizeof(last));
	for (int i = 0; i < nkeys; i++)
	{
		char	   *name;
		uint8		id[4];
		uint8		pub[HA_ED25519_KEY_LEN];
		uint8		alg = HA_ED25519_ALG;
		bool		repeated = false;

		CHECK_FOR_INTERRUPTS();
		memset(&last, 0, sizeof(last));
		if (keys[i] == NULL)
			return HaNoteFail(nc, "malformed_key", pstrdup("a key is NULL"));
		if (!HaParseVerifierKey(keys[i], &name, id, pub, &alg, &last))
		{
			*nc = last;
			return false;
		}
		/* Once, after the first key reads (a bad key is reported first). */
		if (!split)
		{
			if (!HaSplitNoteText(note, sn, nc))
				return false;
			split = true;
		}
		if (!HaCheckNoteSignature(sn, name, id, pub, alg, &last))
		{
			if (strcmp(last.status, "unknown_key") != 0)
			{
				*nc = last;
				return false;
			}
			continue;
		}
		for (int j = 0; j < valid; j++)
			if (memcmp(seen[j], pub, HA_ED25519_KEY_LEN) == 0)
				repeated = true;
		if (repeated)
			continue;
		memcpy(seen[valid], pub, HA_ED25519_KEY_LEN);
		valid++;
		*signers = accumArrayResult(*signers, CStringGetTextDatum(name), false,
									TEXTOID, CurrentMemoryContext);
	}
	if (valid < quorum)
	{
		/* With one key, say why that key did not count. */
		if (nkeys == 1)
		{
			*nc = last;
			return false;
		}
		return HaNoteFail(nc, "quorum_not_met",
					psprintf("%d distinct signers of the %d keys signed the note; %d required",
							 valid, nkeys, quorum));
	}
	return check_body(sn->body, nc, arg);
}

static Datum
NoteResult(FunctionCallInfo fcinfo, bool ok, HaNoteCheck *nc, ArrayBuildState *signers,
		   bool with_signers)
{
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = BoolGetDatum(ok);
	values[1] = CStringGetTextDatum(nc->status);
	values[2] = ObjectIdGetDatum(nc->relid);
	nulls[2] = !OidIsValid(nc->relid);
	values[3] = nc->detail ? CStringGetTextDatum(nc->detail) : (Datum) 0;
	nulls[3] = (nc->detail == NULL);
	if (with_signers)
		values[4] = signers ? makeArrayResult(signers, CurrentMemoryContext) :
			PointerGetDatum(construct_empty_array(TEXTOID));
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

/*
 * A keys[] argument and its quorum: the keys as C strings (NULL entries
 * kept: CheckNote reports them), each length checked, at most
 * HA_NOTE_MAX_KEYS; the quorum from 1 to their number.
 */
static char **
KeysArg(ArrayType *arr, int32 quorum, int *nkeys, int32 *quorum_out)
{
	Datum	   *elems;
	bool	   *elemnulls;
	char	  **keys;

	*nkeys = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (*nkeys > HA_NOTE_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many verifier keys"),
				 errdetail("%d keys were given; at most %d are accepted.", *nkeys, HA_NOTE_MAX_KEYS),
				 errhint("Give the keys of the signers the quorum counts.")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elemnulls, nkeys);
	if (quorum < 1 || quorum > *nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quorum must be between 1 and the number of keys (%d)", *nkeys)));
	keys = palloc(sizeof(char *) * Max(*nkeys, 1));
	for (int i = 0; i < *nkeys; i++)
	{
		CHECK_FOR_INTERRUPTS();
		keys[i] = NULL;
		if (elemnulls[i])
			continue;
		HaCheckKeyLength(HaTextLength(elems[i]));
		keys[i] = TextDatumGetCString(elems[i]);
	}
	*quorum_out = quorum;
	return keys;
}

/*
 * The four SQL entry points: (note, key) or (note, keys[], quorum), for a
 * checkpoint or a purge receipt.  The single-key form is a quorum of one.
 * Sizes are checked before anything is detoasted or copied.
 */
static Datum
VerifyNote(FunctionCallInfo fcinfo, const char *fname, BodyCheck check_body)
{
	bool		quorum_form = (PG_NARGS() == 3);
	HaNoteCheck	nc;
	ArrayBuildState *signers = NULL;
	char	  **keys;
	int			nkeys = 1;
	int32		quorum = 1;
	bool		ok;

	for (int i = 0; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("arguments of hipaa_audit.%s must not be null", fname)));
	HaCheckNoteLength(HaTextLength(PG_GETARG_DATUM(0)));
	if (quorum_form)
		keys = KeysArg(PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_INT32(2), &nkeys, &quorum);
	else
	{
		HaCheckKeyLength(HaTextLength(PG_GETARG_DATUM(1)));
		keys = palloc(sizeof(char *));
		keys[0] = text_to_cstring(PG_GETARG_TEXT_PP(1));
	}
	ok = CheckNote(text_to_cstring(PG_GETARG_TEXT_PP(0)), keys, nkeys, quorum, &nc, &signers,
				   check_body, NULL);
	return NoteResult(fcinfo, ok, &nc, signers, quorum_form);
}

PG_FUNCTION_INFO_V1(verify_checkpoint);
PG_FUNCTION_INFO_V1(verify_checkpoint_quorum);
PG_FUNCTION_INFO_V1(verify_receipt);
PG_FUNCTION_INFO_V1(verify_receipt_quorum);

/* verify_checkpoint(note, key) -> (ok, status, tbl, detail) */
Datum
verify_checkpoint(PG_FUNCTION_ARGS)
{
	return VerifyNote(fcinfo, "verify_checkpoint", CheckBody);
}

/* verify_checkpoint(note, keys[], quorum) -> (ok, status, tbl, detail, signers) */
Datum
verify_checkpoint_quorum(PG_FUNCTION_ARGS)
{
	return VerifyNote(fcinfo, "verify_checkpoint", CheckBody);
}

/* verify_receipt(note, key) -> (ok, status, tbl, detail) */
Datum
verify_receipt(PG_FUNCTION_ARGS)
{
	return VerifyNote(fcinfo, "verify_receipt", CheckReceiptBody);
}

/* verify_receipt(note, keys[], quorum) -> (ok, status, tbl, detail, signers) */
Datum
verify_receipt_quorum(PG_FUNCTION_ARGS)
{
	return VerifyNote(fcinfo, "verify_receipt", CheckReceiptBody);
}


/* ----------------------------------------------------------------
 * verify_proof(): a c2sp.org/tlog-proof@v1, offline
 * ----------------------------------------------------------------
 */

/* A proof, split: the parts before the checkpoint. */
typedef struct ProofParts
{
	int64		index;
	int			nhashes;
	uint8		hashes[HA_TREE_MAX_PROOF * HA_HASH_LEN];
	const char *note;			/* the checkpoint, with its signatures */
	uint8		leaf[HA_HASH_LEN];	/* SHA-256(0x00 || audit_hash) */
	int64		tree_size;		/* out: from the checkpoint */
} ProofParts;

/*
 * Split a proof text (docs/merkle.md): NULL, or what is wrong, naming the
 * line.
 */
static char *
ParseProof(const char *text, ProofParts *pp)
{
	const char *line = text;
	const char *eol;
	int			lineno = 1;
	static const char magic[] = "c2sp.org/tlog-proof@v1";

	memset(pp, 0, sizeof(*pp));
	pp->index = -1;
	if (strchr(text, '\r') != NULL)
		return pstrdup("the proof contains a carriage return (CR)");
	eol = strchr(line, '\n');
	if (eol == NULL || eol - line != (int) strlen(magic) || strncmp(line, magic, eol - line) != 0)
		return psprintf("line 1 is not \"%s\"", magic);
	for (line = eol + 1;; line = eol + 1)
	{
		size_t		len;

		CHECK_FOR_INTERRUPTS();
		lineno++;
		eol = strchr(line, '\n');
		if (eol == NULL)
			return psprintf("line %d does not end with a newline, before the checkpoint", lineno);
		len = eol - line;
		if (len == 0)
			break;
		if (pp->index < 0 && lineno == 2 && len > 6 && strncmp(line, "extra ", 6) == 0)
			continue;			/* opaque and unauthenticated: not read */
		if (pp->index < 0)
		{
			int64		v = 0;

			if (len < 7 || strncmp(line, "index ", 6) != 0 ||
				(line[6] == '0' && len > 7))
				return psprintf("line %d is not \"index <decimal>\"", lineno);
			for (size_t i = 6; i < len; i++)
			{
				if (!isdigit((unsigned char) line[i]) ||
					pg_mul_s64_overflow(v, 10, &v) || pg_add_s64_overflow(v, line[i] - '0', &v))
					return psprintf("line %d is not \"index <decimal>\"", lineno);
			}
			pp->index = v;
			continue;
		}
		if (pp->nhashes == HA_TREE_MAX_PROOF)
			return psprintf("the proof has more than %d hashes", HA_TREE_MAX_PROOF);
		if (len != 44 ||
			HaUnbase64(line, 44, pp->hashes + (Size) pp->nhashes * HA_HASH_LEN, HA_HASH_LEN) != HA_HASH_LEN ||
			strncmp(HaBase64(pp->hashes + (Size) pp->nhashes * HA_HASH_LEN, HA_HASH_LEN), line, 44) != 0)
			return psprintf("line %d is not a SHA-256 hash in base64", lineno);
		pp->nhashes++;
	}
	if (pp->index < 0)
		return pstrdup("the proof has no index line");
	pp->note = eol + 1;
	if (*pp->note == '\0')
		return pstrdup("the proof has no checkpoint after its empty line");
	return NULL;
}

/* After the signatures: the inclusion of the leaf under the signed root. */
static bool
CheckProofBody(const char *body, HaNoteCheck *nc, void *arg)
{
	ProofParts *pp = (ProofParts *) arg;
	HaNoteBody *nb = palloc(sizeof(HaNoteBody));
	char	   *problem = HaParseNoteBody(body, false, nb);

	if (problem != NULL)
		return HaNoteFail(nc, "malformed_note", problem);
	if (nb->version != 2)
		return HaNoteFail(nc, "malformed_note",
						  pstrdup("the checkpoint is not a tlog-checkpoint (checkpoint v2): it has no tree"));
	pp->tree_size = nb->tree_size;
	if (pp->index >= nb->tree_size)
		return HaNoteFail(nc, "bad_proof",
						  psprintf("index " INT64_FORMAT " is not in a tree of " INT64_FORMAT " leaves",
								   pp->index, nb->tree_size));
	if (!HaMerkleCheckInclusion(pp->leaf, pp->index, nb->tree_size, pp->hashes,
								pp->nhashes, nb->root))
		return HaNoteFail(nc, "bad_proof",
						  psprintf("the inclusion proof does not lead from this row's leaf at index " INT64_FORMAT " to the root the checkpoint signed",
								   pp->index));
	return true;
}

PG_FUNCTION_INFO_V1(verify_proof);

/*
 * verify_proof(proof, leaf, keys[], quorum) -> (ok, status, detail,
 * leaf_index, tree_size, signers): a proof checked with nothing but its
 * text, the row's audit_hash and the keys; no table is read.
 */
Datum
verify_proof(PG_FUNCTION_ARGS)
{
	HaNoteCheck nc;
	ArrayBuildState *signers = NULL;
	char	  **keys;
	int			nkeys;
	int32		quorum;
	bool		ok = false;
	ProofParts *pp = palloc(sizeof(ProofParts));
	char	   *problem;
	bytea	   *leaf;
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	for (int i = 0; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("arguments of hipaa_audit.verify_proof must not be null"),
					 errhint("The leaf is the row's audit_hash, 32 bytes.")));
	HaCheckNoteLength(HaTextLength(PG_GETARG_DATUM(0)));
	leaf = PG_GETARG_BYTEA_PP(1);
	if (VARSIZE_ANY_EXHDR(leaf) != HA_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the leaf must be a row's audit_hash, 32 bytes"),
				 errdetail("%d bytes were given.", (int) VARSIZE_ANY_EXHDR(leaf))));
	keys = KeysArg(PG_GETARG_ARRAYTYPE_P(2), PG_GETARG_INT32(3), &nkeys, &quorum);

	memset(&nc, 0, sizeof(nc));
	problem = ParseProof(text_to_cstring(PG_GETARG_TEXT_PP(0)), pp);
	if (problem != NULL)
		HaNoteFail(&nc, "malformed_proof", problem);
	else
	{
		HaMerkleLeaf((const uint8 *) VARDATA_ANY(leaf), HA_HASH_LEN, pp->leaf);
		ok = CheckNote(pp->note, keys, nkeys, quorum, &nc, &signers, CheckProofBody, pp);
	}

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = BoolGetDatum(ok);
	values[1] = CStringGetTextDatum(nc.status);
	values[2] = nc.detail ? CStringGetTextDatum(nc.detail) : (Datum) 0;
	nulls[2] = (nc.detail == NULL);
	values[3] = Int64GetDatum(pp->index);
	nulls[3] = (pp->index < 0);
	values[4] = Int64GetDatum(pp->tree_size);
	nulls[4] = (pp->tree_size <= 0);
	values[5] = signers ? makeArrayResult(signers, CurrentMemoryContext) :
		PointerGetDatum(construct_empty_array(TEXTOID));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
