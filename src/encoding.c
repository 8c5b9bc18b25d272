/*-------------------------------------------------------------------------
 *
 * encoding.c
 *	  The canonical row encoding (docs/encoding.md, format v1) and the
 *	  check that a table's columns can be encoded at all.
 *
 * A row's hash covers a fixed header (domain prefix, table identity, chain,
 * position, previous hash) and, for every included non-NULL column, its
 * name and its binary send output.  Send output never depends on DateStyle,
 * TimeZone and friends; the only session setting it can depend on is
 * client_encoding (text types convert to it), so the encoder pins the client
 * encoding to the database encoding while it runs.
 *
 * The "shape" of a table (which columns, in which order, with which send
 * functions) is cached per backend and dropped on any relcache invalidation
 * of the table, so ALTER TABLE ... ADD COLUMN is picked up.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#define HA_ROW_PREFIX		"hipaa_audit/row/v1"
#define HA_ROW_PREFIX_LEN	(sizeof(HA_ROW_PREFIX))	/* with its zero byte */

typedef struct ShapeEntry
{
	Oid			relid;
	bool		valid;
	MemoryContext cxt;
	HaShape    *shape;
} ShapeEntry;

static HTAB *Shapes = NULL;
static HaSha256 *RowHasher = NULL;

static void
ShapeRelcacheCallback(Datum arg pg_attribute_unused(), Oid relid)
{
	HASH_SEQ_STATUS status;
	ShapeEntry *entry;

	if (Shapes == NULL)
		return;
	/*
	 * Only mark: a shape may be in use right now (a send function can open a
	 * relation and so accept invalidations); HaGetShape rebuilds it later.
	 */
	hash_seq_init(&status, Shapes);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (!OidIsValid(relid) || entry->relid == relid)
			entry->valid = false;
	}
}

void
HaEncodingInit(void)
{
	CacheRegisterRelcacheCallback(ShapeRelcacheCallback, (Datum) 0);
}

bool
HaIsChainColumnName(const char *name)
{
	static const char *const names[] = {
		HA_COL_CHAIN, HA_COL_SEQ, HA_COL_AT, HA_COL_SESSION_ROLE,
		HA_COL_ROLE, HA_COL_CLIENT, HA_COL_PREV, HA_COL_HASH
	};

	for (size_t i = 0; i < lengthof(names); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

static bool
TypeMayHoldFloat(Oid typid, int depth)
{
	Oid			base = getBaseType(typid);
	Oid			elem;

	if (depth > HA_MAX_TYPE_DEPTH)
		return false;
	if (base == FLOAT4OID || base == FLOAT8OID)
		return true;
	elem = get_element_type(base);
	if (OidIsValid(elem))
		return TypeMayHoldFloat(elem, depth + 1);
	if (type_is_rowtype(base) && base != RECORDOID)
	{
		TupleDesc	desc = lookup_rowtype_tupdesc(base, -1);
		bool		found = false;

		for (int i = 0; i < desc->natts && !found; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped)
				found = TypeMayHoldFloat(att->atttypid, depth + 1);
		}
		ReleaseTupleDesc(desc);
		return found;
	}
	return false;
}

static char
FastKind(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
			return HA_FAST_INT2;
		case INT4OID:
		case DATEOID:
			return HA_FAST_INT4;
		case INT8OID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
			return HA_FAST_INT8;
		case FLOAT4OID:
			return HA_FAST_FLOAT4;
		case FLOAT8OID:
			return HA_FAST_FLOAT8;
		case BOOLOID:
			return HA_FAST_BOOL;
		case UUIDOID:
			return HA_FAST_UUID;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case BYTEAOID:
		case JSONOID:
			return HA_FAST_VARLENA;
		default:
			return HA_FAST_NONE;
	}
}

static HaShape *
BuildShape(Relation rel, MemoryContext cxt)
{
	TupleDesc	desc = RelationGetDescr(rel);
	HaShape    *shape = MemoryContextAllocZero(cxt, sizeof(HaShape));

	shape->relid = RelationGetRelid(rel);
	shape->columns = MemoryContextAllocZero(cxt, sizeof(HaShapeColumn) * Max(desc->natts, 1));

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);
		HaShapeColumn *col;
		Oid			sendfn;
		bool		isvarlena;

		if (att->attisdropped || att->attgenerated)
			continue;
		if (strcmp(name, HA_COL_CHAIN) == 0)
		{
			shape->att_chain = att->attnum;
			continue;
		}
		if (strcmp(name, HA_COL_SEQ) == 0)
		{
			shape->att_seq = att->attnum;
			continue;
		}
		if (strcmp(name, HA_COL_PREV) == 0)
		{
			shape->att_prev = att->attnum;
			continue;
		}
		if (strcmp(name, HA_COL_HASH) == 0)
		{
			shape->att_hash = att->attnum;
			continue;
		}
		if (strcmp(name, HA_COL_AT) == 0)
			shape->att_at = att->attnum;
		else if (strcmp(name, HA_COL_SESSION_ROLE) == 0)
			shape->att_session_role = att->attnum;
		else if (strcmp(name, HA_COL_ROLE) == 0)
			shape->att_role = att->attnum;
		else if (strcmp(name, HA_COL_CLIENT) == 0)
			shape->att_client = att->attnum;

		col = &shape->columns[shape->ncolumns++];
		col->attnum = att->attnum;
		col->name = MemoryContextStrdup(cxt, name);
		col->namelen = strlen(name);
		col->typid = att->atttypid;
		getTypeBinaryOutputInfo(att->atttypid, &sendfn, &isvarlena);
		fmgr_info_cxt(sendfn, &col->sendfn, cxt);
		col->may_hold_float = TypeMayHoldFloat(att->atttypid, 0);
		col->fastkind = FastKind(att->atttypid);
	}

	if (shape->att_chain == 0 || shape->att_seq == 0 || shape->att_prev == 0 ||
		shape->att_hash == 0 || shape->att_at == 0 ||
		shape->att_session_role == 0 || shape->att_role == 0 ||
		shape->att_client == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("protected table %s lacks its chain columns",
						HaRelDisplayName(RelationGetRelid(rel))),
				 errhint("The table was altered outside hipaa_audit; restore it from a backup.")));
	return shape;
}

HaShape *
HaGetShape(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	ShapeEntry *entry;
	bool		found;

	if (Shapes == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ShapeEntry);
		ctl.hcxt = CacheMemoryContext;
		Shapes = hash_create("hipaa_audit table shapes", 16, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(Shapes, &relid, HASH_ENTER, &found);
	if (found && !entry->valid)
	{
		/*
		 * A caller may still hold the old shape (an invalidation arrives
		 * with any lock or relation open): let it live to transaction end.
		 */
		if (IsTransactionState())
			MemoryContextSetParent(entry->cxt, TopTransactionContext);
		else
			MemoryContextDelete(entry->cxt);
		found = false;
	}
	if (!found)
	{
		entry->shape = NULL;
		entry->valid = true;
		entry->cxt = AllocSetContextCreate(CacheMemoryContext,
										   "hipaa_audit table shape",
										   ALLOCSET_SMALL_SIZES);
		PG_TRY();
		{
			entry->shape = BuildShape(rel, entry->cxt);
		}
		PG_CATCH();
		{
			MemoryContextDelete(entry->cxt);
			(void) hash_search(Shapes, &relid, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return entry->shape;
}

/* ----------------------------------------------------------------
 * NaN normalisation, also inside array and record send formats
 * ----------------------------------------------------------------
 */

static void CanonicalizeValue(Oid typid, char *buf, int len, int depth);

static inline uint32
ReadU32(const char *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return pg_ntoh32(v);
}

static void
CanonicalizeArray(char *buf, int len, int depth)
{
	char	   *p = buf;
	char	   *end = buf + len;
	int32		ndim;
	Oid			elemtype;
	int64		nitems = 1;

	if (len < 12)
		return;
	ndim = (int32) ReadU32(p);
	elemtype = ReadU32(p + 8);
	p += 12;
	if (ndim < 0 || ndim > MAXDIM || end - p < (ptrdiff_t) ndim * 8)
		return;
	if (ndim == 0)
		nitems = 0;
	for (int i = 0; i < ndim; i++)
	{
		nitems *= (int32) ReadU32(p);
		p += 8;
	}
	for (int64 i = 0; i < nitems && end - p >= 4; i++)
	{
		int32		elen = (int32) ReadU32(p);

		p += 4;
		if (elen < 0)
			continue;
		if (end - p < elen)
			return;
		CanonicalizeValue(elemtype, p, elen, depth + 1);
		p += elen;
	}
}

static void
CanonicalizeRecord(char *buf, int len, int depth)
{
	char	   *p = buf;
	char	   *end = buf + len;
	int32		ncols;

	if (len < 4)
		return;
	ncols = (int32) ReadU32(p);
	p += 4;
	for (int i = 0; i < ncols && end - p >= 8; i++)
	{
		Oid			coltype = ReadU32(p);
		int32		clen = (int32) ReadU32(p + 4);

		p += 8;
		if (clen < 0)
			continue;
		if (end - p < clen)
			return;
		CanonicalizeValue(coltype, p, clen, depth + 1);
		p += clen;
	}
}

static void
CanonicalizeValue(Oid typid, char *buf, int len, int depth)
{
	Oid			base;

	if (depth > HA_MAX_TYPE_DEPTH)
		return;
	base = getBaseType(typid);
	if (base == FLOAT4OID && len == 4)
	{
		uint32		bits = ReadU32(buf);

		if ((bits & 0x7f800000) == 0x7f800000 && (bits & 0x007fffff) != 0)
		{
			bits = pg_hton32(0x7fc00000);
			memcpy(buf, &bits, 4);
		}
	}
	else if (base == FLOAT8OID && len == 8)
	{
		uint64		bits;

		memcpy(&bits, buf, 8);
		bits = pg_ntoh64(bits);
		if ((bits & UINT64CONST(0x7ff0000000000000)) == UINT64CONST(0x7ff0000000000000) &&
			(bits & UINT64CONST(0x000fffffffffffff)) != 0)
		{
			bits = pg_hton64(UINT64CONST(0x7ff8000000000000));
			memcpy(buf, &bits, 8);
		}
	}
	else if (OidIsValid(get_element_type(base)))
		CanonicalizeArray(buf, len, depth);
	else if (type_is_rowtype(base))
		CanonicalizeRecord(buf, len, depth);
}

/* ----------------------------------------------------------------
 * The row hash
 * ----------------------------------------------------------------
 */

static inline void
UpdateU32(HaSha256 *h, uint32 v)
{
	uint32		be = pg_hton32(v);

	HaSha256Update(h, &be, 4);
}

static inline void
UpdateU64(HaSha256 *h, uint64 v)
{
	uint64		be = pg_hton64(v);

	HaSha256Update(h, &be, 8);
}

/*
 * values/isnull are indexed by attnum - 1, as heap_deform_tuple fills them.
 */
void
HaRowHash(HaShape *shape, const pg_uuid_t *uuid, int32 chain, int64 seq,
		  const uint8 *prev, Datum *values, bool *isnull,
		  uint8 out[HA_HASH_LEN])
{
	int			client_enc = pg_get_client_encoding();
	int			db_enc = GetDatabaseEncoding();
	bool		switched = false;

	if (RowHasher == NULL)
		RowHasher = HaSha256Create();

	HaSha256Init(RowHasher);
	HaSha256Update(RowHasher, HA_ROW_PREFIX, HA_ROW_PREFIX_LEN);
	HaSha256Update(RowHasher, uuid->data, UUID_LEN);
	UpdateU32(RowHasher, (uint32) chain);
	UpdateU64(RowHasher, (uint64) seq);
	HaSha256Update(RowHasher, prev, HA_HASH_LEN);

	/* Text types convert to the client encoding in their send functions. */
	if (client_enc != db_enc)
	{
		if (SetClientEncoding(db_enc) < 0)
			elog(ERROR, "could not switch client encoding for hashing");
		switched = true;
	}
	PG_TRY();
	{
		for (int i = 0; i < shape->ncolumns; i++)
		{
			HaShapeColumn *col = &shape->columns[i];
			int			idx = col->attnum - 1;
			bytea	   *sent = NULL;
			char	   *data;
			int			len;
			char		fixed[16];

			if (isnull[idx])
				continue;
			data = fixed;
			switch (col->fastkind)
			{
				case HA_FAST_INT2:
					{
						uint16		v = pg_hton16((uint16) DatumGetInt16(values[idx]));

						memcpy(fixed, &v, 2);
						len = 2;
					}
					break;
				case HA_FAST_INT4:
					{
						uint32		v = pg_hton32((uint32) DatumGetInt32(values[idx]));

						memcpy(fixed, &v, 4);
						len = 4;
					}
					break;
				case HA_FAST_INT8:
					{
						uint64		v = pg_hton64((uint64) DatumGetInt64(values[idx]));

						memcpy(fixed, &v, 8);
						len = 8;
					}
					break;
				case HA_FAST_FLOAT4:
					{
						float4		f = DatumGetFloat4(values[idx]);
						uint32		v;

						memcpy(&v, &f, 4);
						if (isnan(f))
							v = 0x7fc00000;
						v = pg_hton32(v);
						memcpy(fixed, &v, 4);
						len = 4;
					}
					break;
				case HA_FAST_FLOAT8:
					{
						float8		f = DatumGetFloat8(values[idx]);
						uint64		v;

						memcpy(&v, &f, 8);
						if (isnan(f))
							v = UINT64CONST(0x7ff8000000000000);
						v = pg_hton64(v);
						memcpy(fixed, &v, 8);
						len = 8;
					}
					break;
				case HA_FAST_BOOL:
					fixed[0] = DatumGetBool(values[idx]) ? 1 : 0;
					len = 1;
					break;
				case HA_FAST_UUID:
					memcpy(fixed, DatumGetUUIDP(values[idx])->data, UUID_LEN);
					len = UUID_LEN;
					break;
				case HA_FAST_VARLENA:
					{
						struct varlena *v = PG_DETOAST_DATUM_PACKED(values[idx]);

						data = VARDATA_ANY(v);
						len = VARSIZE_ANY_EXHDR(v);
					}
					break;
				default:
					sent = SendFunctionCall(&col->sendfn, values[idx]);
					data = VARDATA(sent);
					len = VARSIZE(sent) - VARHDRSZ;
					if (col->may_hold_float)
						CanonicalizeValue(col->typid, data, len, 0);
					break;
			}
			UpdateU32(RowHasher, (uint32) col->namelen);
			HaSha256Update(RowHasher, col->name, col->namelen);
			UpdateU32(RowHasher, (uint32) len);
			HaSha256Update(RowHasher, data, len);
			if (sent != NULL)
				pfree(sent);
		}
	}
	PG_FINALLY();
	{
		if (switched && SetClientEncoding(client_enc) < 0)
			elog(WARNING, "could not restore client encoding after hashing");
	}
	PG_END_TRY();

	HaSha256Final(RowHasher, out);
}

/* ----------------------------------------------------------------
 * Which column types protect() accepts
 * ----------------------------------------------------------------
 */

static bool
IsGeometricType(Oid typid)
{
	switch (typid)
	{
		case POINTOID:
		case LSEGOID:
		case PATHOID:
		case BOXOID:
		case POLYGONOID:
		case LINEOID:
		case CIRCLEOID:
			return true;
		default:
			return false;
	}
}

static bool
IsOidReferenceType(Oid typid)
{
	switch (typid)
	{
		case REGCLASSOID:
		case REGTYPEOID:
		case REGPROCOID:
		case REGPROCEDUREOID:
		case REGOPEROID:
		case REGOPERATOROID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
		case REGNAMESPACEOID:
		case REGROLEOID:
		case REGCOLLATIONOID:
			return true;
		default:
			return false;
	}
}

/* Set while checking a column that ALTER TABLE ... ADD COLUMN would add. */
static bool CheckingAddColumn = false;

static void
RefuseColumn(Relation rel, const char *colname, Oid typid, const char *why)
{
	const char *table = HaRelDisplayName(RelationGetRelid(rel));

	if (CheckingAddColumn)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot add column \"%s\" of type %s to protected table %s",
						colname, format_type_be(typid), table),
				 errdetail("%s", why),
				 errhint("Use a type that can be hashed canonically (see docs/encoding.md).")));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot protect %s: column \"%s\" has type %s, which cannot be hashed canonically",
					table, colname, format_type_be(typid)),
			 errdetail("%s", why),
			 errhint("Use a built-in type for this column (see docs/encoding.md).")));
}

static void
CheckType(Relation rel, const char *colname, Oid coltype, Oid typid,
		  bool nested, int depth)
{
	Oid			base = getBaseType(typid);
	Oid			elem;

	if (depth > HA_MAX_TYPE_DEPTH)
		RefuseColumn(rel, colname, coltype, "Its type nests too deeply.");
	if (nested && typid >= FirstNormalObjectId)
		RefuseColumn(rel, colname, coltype,
					 psprintf("Its binary form embeds the OID of type %s, which is different after pg_restore into another cluster.",
							  format_type_be(typid)));
	if (IsOidReferenceType(base))
		RefuseColumn(rel, colname, coltype,
					 "Its values are OIDs, which are different after pg_restore.");
	if (base == CASHOID)
		RefuseColumn(rel, colname, coltype,
					 "Its text form, which pg_dump uses, depends on lc_monetary.");
	if (IsGeometricType(base))
		RefuseColumn(rel, colname, coltype,
					 "It holds double precision values inside its own binary format, where a NaN's bits cannot be normalised; pg_dump would restore them differently.");
	if (type_is_range(base) || type_is_multirange(base))
	{
		Oid			sub = get_range_subtype(type_is_range(base) ? base :
											get_multirange_range(base));

		if (OidIsValid(sub) && TypeMayHoldFloat(sub, 0))
			RefuseColumn(rel, colname, coltype,
						 "Its bounds are floating-point values inside the range's own binary format, where a NaN's bits cannot be normalised.");
		/* The bounds are sent with the subtype's send function. */
		if (OidIsValid(sub))
			CheckType(rel, colname, coltype, sub, false, depth + 1);
	}

	elem = get_element_type(base);
	if (OidIsValid(elem))
	{
		CheckType(rel, colname, coltype, elem, true, depth + 1);
		return;
	}
	if (type_is_rowtype(base))
	{
		TupleDesc	desc;

		if (base == RECORDOID)
			RefuseColumn(rel, colname, coltype, "Anonymous records have no fixed layout.");
		desc = lookup_rowtype_tupdesc(base, -1);
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped)
				CheckType(rel, colname, coltype, att->atttypid, true, depth + 1);
		}
		ReleaseTupleDesc(desc);
		return;
	}
	{
		Oid			sendfn;
		bool		isvarlena;

		getTypeBinaryOutputInfo(base, &sendfn, &isvarlena);
		if (!OidIsValid(sendfn))
			RefuseColumn(rel, colname, coltype, "It has no binary send function.");
	}
}

/* ALTER TABLE ... ADD COLUMN on a protected table: same rules. */
void
HaCheckColumnType(Relation rel, const char *colname, Oid typid)
{
	CheckingAddColumn = true;
	PG_TRY();
	{
		CheckType(rel, colname, typid, typid, false, 0);
	}
	PG_FINALLY();
	{
		CheckingAddColumn = false;
	}
	PG_END_TRY();
}

/*
 * Called by protect(): every column that will be hashed must have a binary
 * form that survives pg_dump/pg_restore, and the database must be UTF8.
 */
void
HaCheckEncodable(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (GetDatabaseEncoding() != PG_UTF8)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot protect tables in a database with encoding %s",
						GetDatabaseEncodingName()),
				 errdetail("The canonical row encoding hashes text as UTF-8."),
				 errhint("Create the audit database with ENCODING 'UTF8'.")));

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		if (HaIsChainColumnName(NameStr(att->attname)))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("cannot protect %s: it already has a column named \"%s\"",
							HaRelDisplayName(RelationGetRelid(rel)),
							NameStr(att->attname)),
					 errdetail("hipaa_audit adds its chain columns (audit_chain, audit_seq, audit_at, audit_session_role, audit_role, audit_client, audit_prev_hash, audit_hash) itself."),
					 errhint("Rename the column first.")));
		CheckType(rel, NameStr(att->attname), att->atttypid, att->atttypid, false, 0);
	}
}
