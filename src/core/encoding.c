/*-------------------------------------------------------------------------
 *
 * encoding.c
 *	  The canonical row encoding (docs/encoding.md, format v1) and the
 *	  check that a table's columns can be encoded at all.
 *	  Layer core/ (docs/architecture.md).
 *
 * A row's hash covers a fixed header (domain prefix, table identity, chain,
 * position, previous hash) and, for every included non-NULL column, its
 * name and its binary send output.  Send output never depends on DateStyle,
 * TimeZone and friends; the only session setting it can depend on is
 * client_encoding (text types convert to it), so the encoder pins the client
 * encoding to the database encoding while it runs.
 *
 * The bytes depend on no catalog state that can change without a row
 * changing: PostgreSQL's own send function of each built-in type comes from
 * a table compiled in here, not from pg_type.typsend, and the array,
 * composite, range and multirange formats are written here, so that their
 * elements, fields and bounds follow the same rule.  protect() refuses what
 * cannot be pinned that way (user-defined base types, large-object
 * references, generated columns calling replaceable functions).
 *
 * The "shape" of a table (which columns, in which order, each with how it
 * is encoded) is cached per backend and dropped on any relcache
 * invalidation of the table, so ALTER TABLE ... ADD COLUMN is picked up.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include <math.h>
#include <sys/socket.h>

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/arrayaccess.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrtab.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/multirangetypes.h"
#include "utils/rangetypes.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"
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

/* ----------------------------------------------------------------
 * PostgreSQL's own send functions, by type OID
 *
 * The canonical bytes of a value of a built-in type are what PostgreSQL's
 * own send function for that type writes.  Which function that is comes
 * from the table below, compiled into the extension, never from
 * pg_type.typsend: a superuser can point typsend anywhere (ALTER TYPE ...
 * SET (SEND = ...), or an UPDATE of pg_type) without touching a row, and
 * the hash must not follow.  fmgr_info() of a built-in function's OID
 * resolves through the server's compiled-in function table, not pg_proc,
 * so nothing in the catalog can redirect the call either.
 *
 * One entry per base type initdb creates from the catalog's data files
 * (OID below FirstGenbkiObjectId), sorted by OID, generated from the
 * catalog of PostgreSQL 15 with
 *
 *	 SELECT t.oid, t.typname, t.typsend::oid, t.typelem,
 *			t.typelem <> 0 AND t.typsubscript =
 *			  'pg_catalog.array_subscript_handler'::pg_catalog.regproc
 *	   FROM pg_catalog.pg_type t
 *	  WHERE t.oid < 10000 AND t.typtype = 'b' ORDER BY t.oid;
 *
 * and the names of catalog/pg_type_d.h and utils/fmgroids.h (PostgreSQL 18
 * has the same types and names).  A true array type (which includes
 * int2vector and oidvector) is written as array_send writes it, each
 * element by its own type's rule; every other base type by its send
 * function.  Composite, range, multirange, enum and domain types have no
 * entry: the encoder writes their formats itself (see "Values the encoder
 * writes itself" below), so no send function is looked up at their level.
 * A send function whose F_ macro a later PostgreSQL lacks leaves its type
 * out of the table, and protect() then refuses that type.
 * ----------------------------------------------------------------
 */

#define HA_BUILTIN_SEND		's'	/* oid: PostgreSQL's send function */
#define HA_BUILTIN_ARRAY	'a'	/* oid: the element type */
#define HA_BUILTIN_NOSEND	'n'	/* no binary form at all */

typedef struct HaBuiltinType
{
	Oid			typid;
	char		kind;			/* HA_BUILTIN_* */
	Oid			oid;
} HaBuiltinType;

static const HaBuiltinType BuiltinTypes[] = {
#ifdef F_BOOLSEND
	{BOOLOID, HA_BUILTIN_SEND, F_BOOLSEND},
#endif
#ifdef F_BYTEASEND
	{BYTEAOID, HA_BUILTIN_SEND, F_BYTEASEND},
#endif
#ifdef F_CHARSEND
	{CHAROID, HA_BUILTIN_SEND, F_CHARSEND},
#endif
#ifdef F_NAMESEND
	{NAMEOID, HA_BUILTIN_SEND, F_NAMESEND},
#endif
#ifdef F_INT8SEND
	{INT8OID, HA_BUILTIN_SEND, F_INT8SEND},
#endif
#ifdef F_INT2SEND
	{INT2OID, HA_BUILTIN_SEND, F_INT2SEND},
#endif
	{INT2VECTOROID, HA_BUILTIN_ARRAY, INT2OID},
#ifdef F_INT4SEND
	{INT4OID, HA_BUILTIN_SEND, F_INT4SEND},
#endif
#ifdef F_REGPROCSEND
	{REGPROCOID, HA_BUILTIN_SEND, F_REGPROCSEND},
#endif
#ifdef F_TEXTSEND
	{TEXTOID, HA_BUILTIN_SEND, F_TEXTSEND},
#endif
#ifdef F_OIDSEND
	{OIDOID, HA_BUILTIN_SEND, F_OIDSEND},
#endif
#ifdef F_TIDSEND
	{TIDOID, HA_BUILTIN_SEND, F_TIDSEND},
#endif
#ifdef F_XIDSEND
	{XIDOID, HA_BUILTIN_SEND, F_XIDSEND},
#endif
#ifdef F_CIDSEND
	{CIDOID, HA_BUILTIN_SEND, F_CIDSEND},
#endif
	{OIDVECTOROID, HA_BUILTIN_ARRAY, OIDOID},
#ifdef F_JSON_SEND
	{JSONOID, HA_BUILTIN_SEND, F_JSON_SEND},
#endif
#ifdef F_XML_SEND
	{XMLOID, HA_BUILTIN_SEND, F_XML_SEND},
#endif
	{XMLARRAYOID, HA_BUILTIN_ARRAY, XMLOID},
#ifdef F_PG_NODE_TREE_SEND
	{PG_NODE_TREEOID, HA_BUILTIN_SEND, F_PG_NODE_TREE_SEND},
#endif
	{JSONARRAYOID, HA_BUILTIN_ARRAY, JSONOID},
	{PG_TYPEARRAYOID, HA_BUILTIN_ARRAY, TypeRelation_Rowtype_Id},
	{PG_ATTRIBUTEARRAYOID, HA_BUILTIN_ARRAY, AttributeRelation_Rowtype_Id},
	{XID8ARRAYOID, HA_BUILTIN_ARRAY, XID8OID},
	{PG_PROCARRAYOID, HA_BUILTIN_ARRAY, ProcedureRelation_Rowtype_Id},
	{PG_CLASSARRAYOID, HA_BUILTIN_ARRAY, RelationRelation_Rowtype_Id},
#ifdef F_POINT_SEND
	{POINTOID, HA_BUILTIN_SEND, F_POINT_SEND},
#endif
#ifdef F_LSEG_SEND
	{LSEGOID, HA_BUILTIN_SEND, F_LSEG_SEND},
#endif
#ifdef F_PATH_SEND
	{PATHOID, HA_BUILTIN_SEND, F_PATH_SEND},
#endif
#ifdef F_BOX_SEND
	{BOXOID, HA_BUILTIN_SEND, F_BOX_SEND},
#endif
#ifdef F_POLY_SEND
	{POLYGONOID, HA_BUILTIN_SEND, F_POLY_SEND},
#endif
#ifdef F_LINE_SEND
	{LINEOID, HA_BUILTIN_SEND, F_LINE_SEND},
#endif
	{LINEARRAYOID, HA_BUILTIN_ARRAY, LINEOID},
#ifdef F_CIDR_SEND
	{CIDROID, HA_BUILTIN_SEND, F_CIDR_SEND},
#endif
	{CIDRARRAYOID, HA_BUILTIN_ARRAY, CIDROID},
#ifdef F_FLOAT4SEND
	{FLOAT4OID, HA_BUILTIN_SEND, F_FLOAT4SEND},
#endif
#ifdef F_FLOAT8SEND
	{FLOAT8OID, HA_BUILTIN_SEND, F_FLOAT8SEND},
#endif
#ifdef F_CIRCLE_SEND
	{CIRCLEOID, HA_BUILTIN_SEND, F_CIRCLE_SEND},
#endif
	{CIRCLEARRAYOID, HA_BUILTIN_ARRAY, CIRCLEOID},
#ifdef F_MACADDR8_SEND
	{MACADDR8OID, HA_BUILTIN_SEND, F_MACADDR8_SEND},
#endif
	{MACADDR8ARRAYOID, HA_BUILTIN_ARRAY, MACADDR8OID},
#ifdef F_CASH_SEND
	{MONEYOID, HA_BUILTIN_SEND, F_CASH_SEND},
#endif
	{MONEYARRAYOID, HA_BUILTIN_ARRAY, MONEYOID},
#ifdef F_MACADDR_SEND
	{MACADDROID, HA_BUILTIN_SEND, F_MACADDR_SEND},
#endif
#ifdef F_INET_SEND
	{INETOID, HA_BUILTIN_SEND, F_INET_SEND},
#endif
	{BOOLARRAYOID, HA_BUILTIN_ARRAY, BOOLOID},
	{BYTEAARRAYOID, HA_BUILTIN_ARRAY, BYTEAOID},
	{CHARARRAYOID, HA_BUILTIN_ARRAY, CHAROID},
	{NAMEARRAYOID, HA_BUILTIN_ARRAY, NAMEOID},
	{INT2ARRAYOID, HA_BUILTIN_ARRAY, INT2OID},
	{INT2VECTORARRAYOID, HA_BUILTIN_ARRAY, INT2VECTOROID},
	{INT4ARRAYOID, HA_BUILTIN_ARRAY, INT4OID},
	{REGPROCARRAYOID, HA_BUILTIN_ARRAY, REGPROCOID},
	{TEXTARRAYOID, HA_BUILTIN_ARRAY, TEXTOID},
	{TIDARRAYOID, HA_BUILTIN_ARRAY, TIDOID},
	{XIDARRAYOID, HA_BUILTIN_ARRAY, XIDOID},
	{CIDARRAYOID, HA_BUILTIN_ARRAY, CIDOID},
	{OIDVECTORARRAYOID, HA_BUILTIN_ARRAY, OIDVECTOROID},
	{BPCHARARRAYOID, HA_BUILTIN_ARRAY, BPCHAROID},
	{VARCHARARRAYOID, HA_BUILTIN_ARRAY, VARCHAROID},
	{INT8ARRAYOID, HA_BUILTIN_ARRAY, INT8OID},
	{POINTARRAYOID, HA_BUILTIN_ARRAY, POINTOID},
	{LSEGARRAYOID, HA_BUILTIN_ARRAY, LSEGOID},
	{PATHARRAYOID, HA_BUILTIN_ARRAY, PATHOID},
	{BOXARRAYOID, HA_BUILTIN_ARRAY, BOXOID},
	{FLOAT4ARRAYOID, HA_BUILTIN_ARRAY, FLOAT4OID},
	{FLOAT8ARRAYOID, HA_BUILTIN_ARRAY, FLOAT8OID},
	{POLYGONARRAYOID, HA_BUILTIN_ARRAY, POLYGONOID},
	{OIDARRAYOID, HA_BUILTIN_ARRAY, OIDOID},
	{ACLITEMOID, HA_BUILTIN_NOSEND, InvalidOid},
	{ACLITEMARRAYOID, HA_BUILTIN_ARRAY, ACLITEMOID},
	{MACADDRARRAYOID, HA_BUILTIN_ARRAY, MACADDROID},
	{INETARRAYOID, HA_BUILTIN_ARRAY, INETOID},
#ifdef F_BPCHARSEND
	{BPCHAROID, HA_BUILTIN_SEND, F_BPCHARSEND},
#endif
#ifdef F_VARCHARSEND
	{VARCHAROID, HA_BUILTIN_SEND, F_VARCHARSEND},
#endif
#ifdef F_DATE_SEND
	{DATEOID, HA_BUILTIN_SEND, F_DATE_SEND},
#endif
#ifdef F_TIME_SEND
	{TIMEOID, HA_BUILTIN_SEND, F_TIME_SEND},
#endif
#ifdef F_TIMESTAMP_SEND
	{TIMESTAMPOID, HA_BUILTIN_SEND, F_TIMESTAMP_SEND},
#endif
	{TIMESTAMPARRAYOID, HA_BUILTIN_ARRAY, TIMESTAMPOID},
	{DATEARRAYOID, HA_BUILTIN_ARRAY, DATEOID},
	{TIMEARRAYOID, HA_BUILTIN_ARRAY, TIMEOID},
#ifdef F_TIMESTAMPTZ_SEND
	{TIMESTAMPTZOID, HA_BUILTIN_SEND, F_TIMESTAMPTZ_SEND},
#endif
	{TIMESTAMPTZARRAYOID, HA_BUILTIN_ARRAY, TIMESTAMPTZOID},
#ifdef F_INTERVAL_SEND
	{INTERVALOID, HA_BUILTIN_SEND, F_INTERVAL_SEND},
#endif
	{INTERVALARRAYOID, HA_BUILTIN_ARRAY, INTERVALOID},
	{NUMERICARRAYOID, HA_BUILTIN_ARRAY, NUMERICOID},
	{CSTRINGARRAYOID, HA_BUILTIN_ARRAY, CSTRINGOID},
#ifdef F_TIMETZ_SEND
	{TIMETZOID, HA_BUILTIN_SEND, F_TIMETZ_SEND},
#endif
	{TIMETZARRAYOID, HA_BUILTIN_ARRAY, TIMETZOID},
#ifdef F_BIT_SEND
	{BITOID, HA_BUILTIN_SEND, F_BIT_SEND},
#endif
	{BITARRAYOID, HA_BUILTIN_ARRAY, BITOID},
#ifdef F_VARBIT_SEND
	{VARBITOID, HA_BUILTIN_SEND, F_VARBIT_SEND},
#endif
	{VARBITARRAYOID, HA_BUILTIN_ARRAY, VARBITOID},
#ifdef F_NUMERIC_SEND
	{NUMERICOID, HA_BUILTIN_SEND, F_NUMERIC_SEND},
#endif
#ifdef F_TEXTSEND
	{REFCURSOROID, HA_BUILTIN_SEND, F_TEXTSEND},
#endif
	{REFCURSORARRAYOID, HA_BUILTIN_ARRAY, REFCURSOROID},
#ifdef F_REGPROCEDURESEND
	{REGPROCEDUREOID, HA_BUILTIN_SEND, F_REGPROCEDURESEND},
#endif
#ifdef F_REGOPERSEND
	{REGOPEROID, HA_BUILTIN_SEND, F_REGOPERSEND},
#endif
#ifdef F_REGOPERATORSEND
	{REGOPERATOROID, HA_BUILTIN_SEND, F_REGOPERATORSEND},
#endif
#ifdef F_REGCLASSSEND
	{REGCLASSOID, HA_BUILTIN_SEND, F_REGCLASSSEND},
#endif
#ifdef F_REGTYPESEND
	{REGTYPEOID, HA_BUILTIN_SEND, F_REGTYPESEND},
#endif
	{REGPROCEDUREARRAYOID, HA_BUILTIN_ARRAY, REGPROCEDUREOID},
	{REGOPERARRAYOID, HA_BUILTIN_ARRAY, REGOPEROID},
	{REGOPERATORARRAYOID, HA_BUILTIN_ARRAY, REGOPERATOROID},
	{REGCLASSARRAYOID, HA_BUILTIN_ARRAY, REGCLASSOID},
	{REGTYPEARRAYOID, HA_BUILTIN_ARRAY, REGTYPEOID},
	{TXID_SNAPSHOTARRAYOID, HA_BUILTIN_ARRAY, TXID_SNAPSHOTOID},
#ifdef F_UUID_SEND
	{UUIDOID, HA_BUILTIN_SEND, F_UUID_SEND},
#endif
	{UUIDARRAYOID, HA_BUILTIN_ARRAY, UUIDOID},
#ifdef F_TXID_SNAPSHOT_SEND
	{TXID_SNAPSHOTOID, HA_BUILTIN_SEND, F_TXID_SNAPSHOT_SEND},
#endif
#ifdef F_PG_LSN_SEND
	{PG_LSNOID, HA_BUILTIN_SEND, F_PG_LSN_SEND},
#endif
	{PG_LSNARRAYOID, HA_BUILTIN_ARRAY, PG_LSNOID},
#ifdef F_PG_NDISTINCT_SEND
	{PG_NDISTINCTOID, HA_BUILTIN_SEND, F_PG_NDISTINCT_SEND},
#endif
#ifdef F_PG_DEPENDENCIES_SEND
	{PG_DEPENDENCIESOID, HA_BUILTIN_SEND, F_PG_DEPENDENCIES_SEND},
#endif
#ifdef F_TSVECTORSEND
	{TSVECTOROID, HA_BUILTIN_SEND, F_TSVECTORSEND},
#endif
#ifdef F_TSQUERYSEND
	{TSQUERYOID, HA_BUILTIN_SEND, F_TSQUERYSEND},
#endif
	{GTSVECTOROID, HA_BUILTIN_NOSEND, InvalidOid},
	{TSVECTORARRAYOID, HA_BUILTIN_ARRAY, TSVECTOROID},
	{GTSVECTORARRAYOID, HA_BUILTIN_ARRAY, GTSVECTOROID},
	{TSQUERYARRAYOID, HA_BUILTIN_ARRAY, TSQUERYOID},
#ifdef F_REGCONFIGSEND
	{REGCONFIGOID, HA_BUILTIN_SEND, F_REGCONFIGSEND},
#endif
	{REGCONFIGARRAYOID, HA_BUILTIN_ARRAY, REGCONFIGOID},
#ifdef F_REGDICTIONARYSEND
	{REGDICTIONARYOID, HA_BUILTIN_SEND, F_REGDICTIONARYSEND},
#endif
	{REGDICTIONARYARRAYOID, HA_BUILTIN_ARRAY, REGDICTIONARYOID},
#ifdef F_JSONB_SEND
	{JSONBOID, HA_BUILTIN_SEND, F_JSONB_SEND},
#endif
	{JSONBARRAYOID, HA_BUILTIN_ARRAY, JSONBOID},
	{INT4RANGEARRAYOID, HA_BUILTIN_ARRAY, INT4RANGEOID},
	{NUMRANGEARRAYOID, HA_BUILTIN_ARRAY, NUMRANGEOID},
	{TSRANGEARRAYOID, HA_BUILTIN_ARRAY, TSRANGEOID},
	{TSTZRANGEARRAYOID, HA_BUILTIN_ARRAY, TSTZRANGEOID},
	{DATERANGEARRAYOID, HA_BUILTIN_ARRAY, DATERANGEOID},
	{INT8RANGEARRAYOID, HA_BUILTIN_ARRAY, INT8RANGEOID},
#ifdef F_JSONPATH_SEND
	{JSONPATHOID, HA_BUILTIN_SEND, F_JSONPATH_SEND},
#endif
	{JSONPATHARRAYOID, HA_BUILTIN_ARRAY, JSONPATHOID},
#ifdef F_REGNAMESPACESEND
	{REGNAMESPACEOID, HA_BUILTIN_SEND, F_REGNAMESPACESEND},
#endif
	{REGNAMESPACEARRAYOID, HA_BUILTIN_ARRAY, REGNAMESPACEOID},
#ifdef F_REGROLESEND
	{REGROLEOID, HA_BUILTIN_SEND, F_REGROLESEND},
#endif
	{REGROLEARRAYOID, HA_BUILTIN_ARRAY, REGROLEOID},
#ifdef F_REGCOLLATIONSEND
	{REGCOLLATIONOID, HA_BUILTIN_SEND, F_REGCOLLATIONSEND},
#endif
	{REGCOLLATIONARRAYOID, HA_BUILTIN_ARRAY, REGCOLLATIONOID},
#ifdef F_BRIN_BLOOM_SUMMARY_SEND
	{PG_BRIN_BLOOM_SUMMARYOID, HA_BUILTIN_SEND, F_BRIN_BLOOM_SUMMARY_SEND},
#endif
#ifdef F_BRIN_MINMAX_MULTI_SUMMARY_SEND
	{PG_BRIN_MINMAX_MULTI_SUMMARYOID, HA_BUILTIN_SEND, F_BRIN_MINMAX_MULTI_SUMMARY_SEND},
#endif
#ifdef F_PG_MCV_LIST_SEND
	{PG_MCV_LISTOID, HA_BUILTIN_SEND, F_PG_MCV_LIST_SEND},
#endif
#ifdef F_PG_SNAPSHOT_SEND
	{PG_SNAPSHOTOID, HA_BUILTIN_SEND, F_PG_SNAPSHOT_SEND},
#endif
	{PG_SNAPSHOTARRAYOID, HA_BUILTIN_ARRAY, PG_SNAPSHOTOID},
#ifdef F_XID8SEND
	{XID8OID, HA_BUILTIN_SEND, F_XID8SEND},
#endif
	{INT4MULTIRANGEARRAYOID, HA_BUILTIN_ARRAY, INT4MULTIRANGEOID},
	{NUMMULTIRANGEARRAYOID, HA_BUILTIN_ARRAY, NUMMULTIRANGEOID},
	{TSMULTIRANGEARRAYOID, HA_BUILTIN_ARRAY, TSMULTIRANGEOID},
	{TSTZMULTIRANGEARRAYOID, HA_BUILTIN_ARRAY, TSTZMULTIRANGEOID},
	{DATEMULTIRANGEARRAYOID, HA_BUILTIN_ARRAY, DATEMULTIRANGEOID},
	{INT8MULTIRANGEARRAYOID, HA_BUILTIN_ARRAY, INT8MULTIRANGEOID},
};

/* How the encoder writes one type's values (HaTypeEncoding.kind). */
#define HA_ENC_NONE			0	/* cannot: protect() refuses the type */
#define HA_ENC_SEND			1	/* a send function from BuiltinTypes */
#define HA_ENC_FLOAT4		2	/* float4send, with NaN normalised */
#define HA_ENC_FLOAT8		3	/* float8send, with NaN normalised */
#define HA_ENC_ARRAY		4	/* array_send's format */
#define HA_ENC_RECORD		5	/* record_send's format */
#define HA_ENC_RANGE		6	/* range_send's format */
#define HA_ENC_MULTIRANGE	7	/* multirange_send's format */
#define HA_ENC_ENUM			8	/* enum_send: the label */
#define HA_ENC_USER_SEND	9	/* the type's own send function (below) */

/*
 * Whether funcid is one of the server's compiled-in functions, which fmgr
 * calls by OID without consulting pg_proc: nobody can replace it.
 */
static bool
IsCompiledInFunction(Oid funcid)
{
	return funcid <= fmgr_last_builtin_oid &&
		fmgr_builtin_oid_index[funcid] != InvalidOidBuiltinMapping;
}

static const HaBuiltinType *
LookupBuiltinType(Oid typid)
{
	static bool checked = false;
	int			lo = 0;
	int			hi = (int) lengthof(BuiltinTypes) - 1;

	/*
	 * Once per backend: the table must be sorted, and every send function
	 * in it must be one fmgr resolves from its compiled-in table.
	 */
	if (!checked)
	{
		for (int i = 0; i < (int) lengthof(BuiltinTypes); i++)
		{
			const HaBuiltinType *b = &BuiltinTypes[i];

			if (i > 0 && b->typid <= BuiltinTypes[i - 1].typid)
				elog(ERROR, "hipaa_audit's table of built-in types is not sorted at type %u",
					 b->typid);
			if (b->kind == HA_BUILTIN_SEND && !IsCompiledInFunction(b->oid))
				elog(ERROR, "send function %u of built-in type %u is not compiled into this server",
					 b->oid, b->typid);
		}
		checked = true;
	}

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (BuiltinTypes[mid].typid == typid)
			return &BuiltinTypes[mid];
		if (BuiltinTypes[mid].typid < typid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/*
 * Decide how values of typid are written.  Domains are resolved to their
 * base type (a domain's values are its base type's).  Built-in base types
 * follow BuiltinTypes; types initdb made later (OIDs up to
 * FirstNormalObjectId: information_schema's domains, system views' row
 * types and their arrays) and user-defined composites, ranges,
 * multiranges and enums are written by the encoder's own code.  A
 * user-defined base type can only be written by its own send function,
 * which is the catalog's to change: protect() refuses it (HA_ENC_USER_SEND
 * exists for tables protected before that rule).  With cxt, the send
 * function is also looked up for calling.
 */
static void
ResolveEncoding(Oid typid, HaTypeEncoding *enc, MemoryContext cxt)
{
	Oid			base = getBaseType(typid);
	const HaBuiltinType *builtin = NULL;

	memset(enc, 0, sizeof(*enc));
	enc->kind = HA_ENC_NONE;
	enc->basetypid = base;

	if (base < FirstGenbkiObjectId)
		builtin = LookupBuiltinType(base);
	if (builtin != NULL)
	{
		if (builtin->kind == HA_BUILTIN_SEND)
		{
			enc->sendfnoid = builtin->oid;
			if (base == FLOAT4OID)
				enc->kind = HA_ENC_FLOAT4;
			else if (base == FLOAT8OID)
				enc->kind = HA_ENC_FLOAT8;
			else
				enc->kind = HA_ENC_SEND;
		}
		else if (builtin->kind == HA_BUILTIN_ARRAY)
		{
			enc->kind = HA_ENC_ARRAY;
			enc->elemtype = builtin->oid;
		}
	}
	else
	{
		switch (get_typtype(base))
		{
			case TYPTYPE_COMPOSITE:
				enc->kind = HA_ENC_RECORD;
				break;
			case TYPTYPE_RANGE:
				enc->kind = HA_ENC_RANGE;
				break;
			case TYPTYPE_MULTIRANGE:
				enc->kind = HA_ENC_MULTIRANGE;
				break;
			case TYPTYPE_ENUM:
				enc->kind = HA_ENC_ENUM;
				enc->sendfnoid = F_ENUM_SEND;
				break;
			case TYPTYPE_BASE:
				if (base < FirstGenbkiObjectId)
					break;		/* built in, but not known to this build */
				if (base < FirstNormalObjectId)
				{
					enc->elemtype = get_element_type(base);
					if (OidIsValid(enc->elemtype))
						enc->kind = HA_ENC_ARRAY;
					break;
				}
				{
					HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(base));

					if (!HeapTupleIsValid(tup))
						elog(ERROR, "cache lookup failed for type %u", base);
					enc->sendfnoid = ((Form_pg_type) GETSTRUCT(tup))->typsend;
					ReleaseSysCache(tup);
					if (OidIsValid(enc->sendfnoid))
						enc->kind = HA_ENC_USER_SEND;
				}
				break;
			default:
				break;			/* pseudo-types */
		}
	}
	if (cxt != NULL && OidIsValid(enc->sendfnoid))
		fmgr_info_cxt(enc->sendfnoid, &enc->sendfn, cxt);
}

/*
 * pg_type's send function of typid, or InvalidOid.
 */
static Oid
CatalogSendFunction(Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	Oid			result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	result = ((Form_pg_type) GETSTRUCT(tup))->typsend;
	ReleaseSysCache(tup);
	return result;
}

/*
 * A built-in type whose pg_type.typsend is no longer PostgreSQL's own send
 * function does not change the hash (the encoder does not follow it), but
 * someone with superuser rights changed the catalog: say so, once per type.
 * Called when a table's shape is built, so once per backend and table.
 */
static void
ReportSendDrift(Oid typid, int depth, List **reported)
{
	HaTypeEncoding enc;

	if (depth > HA_MAX_TYPE_DEPTH)
		return;
	ResolveEncoding(typid, &enc, NULL);
	switch (enc.kind)
	{
		case HA_ENC_SEND:
		case HA_ENC_FLOAT4:
		case HA_ENC_FLOAT8:
			{
				Oid			catalog = CatalogSendFunction(typid);

				if (catalog == enc.sendfnoid && typid != enc.basetypid)
					catalog = CatalogSendFunction(enc.basetypid);
				if (catalog != enc.sendfnoid &&
					!list_member_oid(*reported, enc.basetypid))
				{
					*reported = lappend_oid(*reported, enc.basetypid);
					ereport(WARNING,
							(errmsg("pg_type names %s as the send function of type %s, not PostgreSQL's own %s",
									OidIsValid(catalog) ? format_procedure(catalog) : "no function",
									format_type_be(enc.basetypid),
									format_procedure(enc.sendfnoid)),
							 errdetail("hipaa_audit hashes %s values with %s regardless, so the hashes do not change; someone with superuser rights changed the catalog.",
									   format_type_be(enc.basetypid),
									   format_procedure(enc.sendfnoid)),
							 errhint("Find out who changed it.  ALTER TYPE %s SET (SEND = %s) puts it back.",
									 format_type_be(enc.basetypid),
									 get_func_name(enc.sendfnoid))));
				}
			}
			break;
		case HA_ENC_ARRAY:
			ReportSendDrift(enc.elemtype, depth + 1, reported);
			break;
		case HA_ENC_RECORD:
			{
				TupleDesc	desc = lookup_rowtype_tupdesc(enc.basetypid, -1);

				for (int i = 0; i < desc->natts; i++)
				{
					Form_pg_attribute att = TupleDescAttr(desc, i);

					if (!att->attisdropped)
						ReportSendDrift(att->atttypid, depth + 1, reported);
				}
				ReleaseTupleDesc(desc);
			}
			break;
		case HA_ENC_RANGE:
			ReportSendDrift(get_range_subtype(enc.basetypid), depth + 1, reported);
			break;
		case HA_ENC_MULTIRANGE:
			ReportSendDrift(get_multirange_range(enc.basetypid), depth + 1, reported);
			break;
		default:
			break;
	}
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
		case INETOID:
			return HA_FAST_INET;
		case CIDROID:
			return HA_FAST_CIDR;
		default:
			return HA_FAST_NONE;
	}
}

static HaShape *
BuildShape(Relation rel, MemoryContext cxt)
{
	TupleDesc	desc = RelationGetDescr(rel);
	HaShape    *shape = MemoryContextAllocZero(cxt, sizeof(HaShape));
	List	   *drift_reported = NIL;

	shape->relid = RelationGetRelid(rel);
	shape->columns = MemoryContextAllocZero(cxt, sizeof(HaShapeColumn) * Max(desc->natts, 1));

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);
		HaShapeColumn *col;

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
		col->fastkind = FastKind(att->atttypid);
		ResolveEncoding(att->atttypid, &col->enc, cxt);
		ReportSendDrift(att->atttypid, 0, &drift_reported);
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

	/*
	 * The trigger writes and verify() reads the chain columns as the types
	 * protect() gave them; a table retyped behind the extension's back (the
	 * library unloaded) is an error, never a datum of the wrong type.
	 */
	{
		static const Oid want[8] = {INT4OID, INT8OID, TIMESTAMPTZOID, TEXTOID,
		TEXTOID, INETOID, BYTEAOID, BYTEAOID};
		AttrNumber	atts[8] = {shape->att_chain, shape->att_seq, shape->att_at,
			shape->att_session_role, shape->att_role, shape->att_client,
		shape->att_prev, shape->att_hash};

		for (int i = 0; i < 8; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, atts[i] - 1);

			if (att->atttypid != want[i])
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("chain column \"%s\" of protected table %s has type %s, not %s",
								NameStr(att->attname),
								HaRelDisplayName(RelationGetRelid(rel)),
								format_type_be(att->atttypid),
								format_type_be(want[i])),
						 errhint("The table was altered outside hipaa_audit; restore it from a backup.")));
		}
	}
	list_free(drift_reported);
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
 * Values the encoder writes itself
 *
 * array_send, record_send, range_send and multirange_send look up the send
 * function of each element, field or bound in pg_type, so calling them
 * would let the catalog decide the bytes again.  The encoder writes their
 * formats itself, byte for byte as they do, and every element, field and
 * bound by the same rule as a column (ResolveEncoding).  It also writes the
 * canonical NaN of real and double precision elements and fields, which
 * the format specifies (docs/encoding.md), except inside range and
 * multirange bounds, where the format never normalised them (protect()
 * refuses ranges over floating-point types).
 * ----------------------------------------------------------------
 */

static void EncodeResolved(StringInfo buf, HaTypeEncoding *enc, Datum value,
						   bool in_range);

static inline void
AppendU32(StringInfo buf, uint32 v)
{
	uint32		be = pg_hton32(v);

	appendBinaryStringInfo(buf, (char *) &be, 4);
}

/* A length-prefixed value, as the array, record and range formats hold. */
static void
EncodeField(StringInfo buf, HaTypeEncoding *enc, Datum value, bool in_range)
{
	int			lenpos = buf->len;
	uint32		be;

	AppendU32(buf, 0);
	EncodeResolved(buf, enc, value, in_range);
	be = pg_hton32((uint32) (buf->len - lenpos - 4));
	memcpy(buf->data + lenpos, &be, 4);
}

static void
EncodeArray(StringInfo buf, HaTypeEncoding *enc, Datum value, bool in_range)
{
	AnyArrayType *v = DatumGetAnyArrayP(value);
	Oid			elemtype = AARR_ELEMTYPE(v);
	int			ndim = AARR_NDIM(v);
	int		   *dim = AARR_DIMS(v);
	int		   *lb = AARR_LBOUND(v);
	int			nitems = ArrayGetNItems(ndim, dim);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	HaTypeEncoding elem;
	array_iter	iter;

	if (elemtype != enc->elemtype)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("array of type %s holds elements of type %s",
						format_type_be(enc->basetypid), format_type_be(elemtype))));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	ResolveEncoding(elemtype, &elem, CurrentMemoryContext);

	AppendU32(buf, (uint32) ndim);
	AppendU32(buf, AARR_HASNULL(v) ? 1 : 0);
	AppendU32(buf, elemtype);
	for (int i = 0; i < ndim; i++)
	{
		AppendU32(buf, (uint32) dim[i]);
		AppendU32(buf, (uint32) lb[i]);
	}
	array_iter_setup(&iter, v);
	for (int i = 0; i < nitems; i++)
	{
		bool		isnull;
		Datum		item = array_iter_next(&iter, &isnull, i,
										   typlen, typbyval, typalign);

		if (isnull)
			AppendU32(buf, (uint32) -1);
		else
			EncodeField(buf, &elem, item, in_range);
	}
}

static void
EncodeRecord(StringInfo buf, Datum value, bool in_range)
{
	HeapTupleHeader rec = DatumGetHeapTupleHeader(value);
	TupleDesc	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
											  HeapTupleHeaderGetTypMod(rec));
	HeapTupleData tuple;
	Datum	   *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	int			valid = 0;

	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	heap_deform_tuple(&tuple, desc, values, nulls);

	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			valid++;
	AppendU32(buf, (uint32) valid);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		HaTypeEncoding field;

		if (att->attisdropped)
			continue;
		AppendU32(buf, att->atttypid);
		if (nulls[i])
		{
			AppendU32(buf, (uint32) -1);
			continue;
		}
		ResolveEncoding(att->atttypid, &field, CurrentMemoryContext);
		EncodeField(buf, &field, values[i], in_range);
	}
	pfree(values);
	pfree(nulls);
	ReleaseTupleDesc(desc);
}

static void
EncodeRange(StringInfo buf, RangeType *range)
{
	TypeCacheEntry *typcache = lookup_type_cache(RangeTypeGetOid(range),
												 TYPECACHE_RANGE_INFO);
	RangeBound	lower;
	RangeBound	upper;
	bool		empty;
	char		flags;
	HaTypeEncoding sub;

	if (typcache->rngelemtype == NULL)
		elog(ERROR, "type %u is not a range type", RangeTypeGetOid(range));
	range_deserialize(typcache, range, &lower, &upper, &empty);
	flags = range_get_flags(range);
	appendStringInfoChar(buf, flags);
	if (!RANGE_HAS_LBOUND(flags) && !RANGE_HAS_UBOUND(flags))
		return;
	ResolveEncoding(typcache->rngelemtype->type_id, &sub, CurrentMemoryContext);
	if (RANGE_HAS_LBOUND(flags))
		EncodeField(buf, &sub, lower.val, true);
	if (RANGE_HAS_UBOUND(flags))
		EncodeField(buf, &sub, upper.val, true);
}

static void
EncodeMultirange(StringInfo buf, Datum value)
{
	MultirangeType *mr = DatumGetMultirangeTypeP(value);
	TypeCacheEntry *typcache = lookup_type_cache(MultirangeTypeGetOid(mr),
												 TYPECACHE_MULTIRANGE_INFO);
	RangeType **ranges;
	int32		count;

	if (typcache->rngtype == NULL)
		elog(ERROR, "type %u is not a multirange type", MultirangeTypeGetOid(mr));
	AppendU32(buf, mr->rangeCount);
	multirange_deserialize(typcache->rngtype, mr, &count, &ranges);
	for (int i = 0; i < count; i++)
	{
		int			lenpos = buf->len;
		uint32		be;

		AppendU32(buf, 0);
		EncodeRange(buf, ranges[i]);
		be = pg_hton32((uint32) (buf->len - lenpos - 4));
		memcpy(buf->data + lenpos, &be, 4);
	}
}

static void
EncodeResolved(StringInfo buf, HaTypeEncoding *enc, Datum value, bool in_range)
{
	check_stack_depth();

	switch (enc->kind)
	{
		case HA_ENC_SEND:
		case HA_ENC_ENUM:
		case HA_ENC_USER_SEND:
			{
				bytea	   *sent = SendFunctionCall(&enc->sendfn, value);

				appendBinaryStringInfo(buf, VARDATA(sent), VARSIZE(sent) - VARHDRSZ);
				pfree(sent);
			}
			break;
		case HA_ENC_FLOAT4:
			{
				float4		f = DatumGetFloat4(value);
				uint32		bits;

				memcpy(&bits, &f, 4);
				if (!in_range && isnan(f))
					bits = 0x7fc00000;
				AppendU32(buf, bits);
			}
			break;
		case HA_ENC_FLOAT8:
			{
				float8		f = DatumGetFloat8(value);
				uint64		bits;

				memcpy(&bits, &f, 8);
				if (!in_range && isnan(f))
					bits = UINT64CONST(0x7ff8000000000000);
				bits = pg_hton64(bits);
				appendBinaryStringInfo(buf, (char *) &bits, 8);
			}
			break;
		case HA_ENC_ARRAY:
			EncodeArray(buf, enc, value, in_range);
			break;
		case HA_ENC_RECORD:
			EncodeRecord(buf, value, in_range);
			break;
		case HA_ENC_RANGE:
			EncodeRange(buf, DatumGetRangeTypeP(value));
			break;
		case HA_ENC_MULTIRANGE:
			EncodeMultirange(buf, value);
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot hash a value of type %s canonically",
							format_type_be(enc->basetypid)),
					 errhint("See docs/encoding.md for the types protect() accepts.")));
	}
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
			StringInfoData composed = {0};
			char	   *data;
			int			len;
			char		fixed[4 + 16];	/* the longest: an IPv6 inet */

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
				case HA_FAST_INET:
				case HA_FAST_CIDR:
					{
						/* As inet_send and cidr_send write it. */
						inet	   *a = DatumGetInetPP(values[idx]);
						int			nb = ip_addrsize(a);

						fixed[0] = (char) ip_family(a);
						fixed[1] = (char) ip_bits(a);
						fixed[2] = (col->fastkind == HA_FAST_CIDR) ? 1 : 0;
						fixed[3] = (char) nb;
						memcpy(fixed + 4, ip_addr(a), nb);
						len = 4 + nb;
					}
					break;
				default:
					if (col->enc.kind == HA_ENC_SEND ||
						col->enc.kind == HA_ENC_USER_SEND)
					{
						sent = SendFunctionCall(&col->enc.sendfn, values[idx]);
						data = VARDATA(sent);
						len = VARSIZE(sent) - VARHDRSZ;
					}
					else
					{
						initStringInfo(&composed);
						EncodeResolved(&composed, &col->enc, values[idx], false);
						data = composed.data;
						len = composed.len;
					}
					break;
			}
			UpdateU32(RowHasher, (uint32) col->namelen);
			HaSha256Update(RowHasher, col->name, col->namelen);
			UpdateU32(RowHasher, (uint32) len);
			HaSha256Update(RowHasher, data, len);
			if (sent != NULL)
				pfree(sent);
			if (composed.data != NULL)
				pfree(composed.data);
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

/*
 * Whether typid is contrib lo's domain "lo" (large-object references), or a
 * domain over it.
 */
static bool
IsLargeObjectDomain(Oid typid)
{
	Oid			lo_extension = get_extension_oid("lo", true);

	if (!OidIsValid(lo_extension))
		return false;
	for (int depth = 0; depth <= HA_MAX_TYPE_DEPTH; depth++)
	{
		HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
		Form_pg_type typ;
		bool		is_domain;
		Oid			next;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for type %u", typid);
		typ = (Form_pg_type) GETSTRUCT(tup);
		is_domain = typ->typtype == TYPTYPE_DOMAIN;
		next = typ->typbasetype;
		ReleaseSysCache(tup);
		if (!is_domain)
			return false;
		if (getExtensionOfObject(TypeRelationId, typid) == lo_extension)
			return true;
		typid = next;
	}
	return false;
}

/*
 * A function a generation expression calls that is not compiled into the
 * server (a user's function, or a built-in one written in SQL, whose body
 * pg_proc holds): someone can replace it without touching a row.
 */
static bool
FindReplaceableFunction(Oid funcid, void *context)
{
	if (IsCompiledInFunction(funcid))
		return false;
	*(Oid *) context = funcid;
	return true;
}

static bool
FindReplaceableFunctionWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, FindReplaceableFunction, context))
		return true;
	return expression_tree_walker(node, FindReplaceableFunctionWalker, context);
}

/*
 * A stored generated column is not hashed (the insert trigger runs before
 * its value is computed).  Its value can still be checked against the
 * hashed columns it is computed from, but only while its expression means
 * the same thing tomorrow: refuse one that calls a replaceable function.
 */
static void
CheckGeneratedColumn(Relation rel, Form_pg_attribute att)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	Node	   *expr = NULL;
	Oid			funcid = InvalidOid;

	for (int i = 0; constr != NULL && i < constr->num_defval; i++)
		if (constr->defval[i].adnum == att->attnum)
			expr = stringToNode(constr->defval[i].adbin);
	if (expr == NULL)
		elog(ERROR, "no generation expression for column \"%s\" of relation %u",
			 NameStr(att->attname), RelationGetRelid(rel));
	if (FindReplaceableFunctionWalker(expr, &funcid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot protect %s: generated column \"%s\" calls function %s, which can be replaced without touching a row",
						HaRelDisplayName(RelationGetRelid(rel)),
						NameStr(att->attname), format_procedure(funcid)),
				 errdetail("Stored generated columns are not hashed; their values can be checked against the hashed columns only while the expression calls nothing but functions compiled into PostgreSQL."),
				 errhint("Make \"%s\" an ordinary column, which is hashed, or use only built-in functions and operators in its expression.",
						 NameStr(att->attname))));
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
	if (IsLargeObjectDomain(typid))
		RefuseColumn(rel, colname, coltype,
					 "Its values are references to large objects: the hash would cover only the reference, while the large object's content can be changed (lo_put, lowrite) without touching the row.");
	/*
	 * An array element's or a composite field's type OID is part of the
	 * value's binary form.  Only OIDs from PostgreSQL's catalog data (below
	 * FirstGenbkiObjectId) are the same in every cluster and every major
	 * version: those of user types change on restore, and those initdb
	 * assigns (information_schema's domains, system views' row types, from
	 * FirstGenbkiObjectId up) can change between major versions.
	 */
	if (nested && typid >= FirstGenbkiObjectId)
		RefuseColumn(rel, colname, coltype,
					 typid >= FirstNormalObjectId ?
					 psprintf("Its binary form embeds the OID of type %s, which is different after pg_restore into another cluster.",
							  format_type_be(typid)) :
					 psprintf("Its binary form embeds the OID of type %s, which initdb assigns: it can differ in another major version of PostgreSQL (pg_upgrade, pg_dump and restore).",
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
		if (base < FirstNormalObjectId)
			RefuseColumn(rel, colname, coltype,
						 psprintf("Type %s is the row type of a system catalog or view: its fields change between major versions of PostgreSQL (pg_upgrade refuses it too).",
								  format_type_be(base)));
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
		HaTypeEncoding enc;

		ResolveEncoding(base, &enc, NULL);
		if (enc.kind == HA_ENC_USER_SEND)
			RefuseColumn(rel, colname, coltype,
						 psprintf("Type %s is a base type defined outside PostgreSQL's core (by an extension or CREATE TYPE): its values can only be hashed through its own send function, which a superuser can replace without touching a row.",
								  format_type_be(base)));
		if (enc.kind == HA_ENC_NONE && base < FirstGenbkiObjectId &&
			OidIsValid(CatalogSendFunction(base)))
			RefuseColumn(rel, colname, coltype,
						 "hipaa_audit does not know PostgreSQL's own send function for this built-in type in this PostgreSQL version.");
		if (enc.kind == HA_ENC_NONE)
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
HaCheckEncodable(Relation rel, bool has_chain_columns)
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

		if (att->attisdropped)
			continue;
		if (att->attgenerated && !HaIsChainColumnName(NameStr(att->attname)))
		{
			CheckGeneratedColumn(rel, att);
			continue;
		}
		/* A partition made later has them, from its partitioned table. */
		if (has_chain_columns && HaIsChainColumnName(NameStr(att->attname)) && !att->attgenerated)
			continue;
		if (has_chain_columns && HaIsChainColumnName(NameStr(att->attname)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot protect %s: its chain column \"%s\" is generated",
							HaRelDisplayName(RelationGetRelid(rel)), NameStr(att->attname)),
					 errdetail("hipaa_audit's chain trigger writes the chain columns.")));
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
