/*-------------------------------------------------------------------------
 *
 * sqlrun.c
 *	  The one way the extension runs SQL of its own (layer base/).
 *
 * Every statement the extension runs goes through HaRunSql():
 *
 *	  - search_path is pinned to pg_catalog, pg_temp for the statement, so
 *		no function, operator or type of the caller's schemas can be picked
 *		up (the SQL texts qualify them as well);
 *	  - it runs as the extension owner (a superuser: only it may write the
 *		extension's tables), or, for statements that evaluate a table
 *		owner's code (triggers, defaults, CHECKs, index expressions,
 *		generated columns), as that owner under SECURITY_RESTRICTED_OPERATION,
 *		as VACUUM and REFRESH MATERIALIZED VIEW do;
 *	  - the hooks let exactly these statements through (their query text is
 *		the pointer kept in ha_internal_sql) and nothing they call: a trigger
 *		or function that fires inside them is judged as anyone's statement.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/syscache.h"

/* The text of the statement HaRunSql is running now (see hooks.c). */
const char *ha_internal_sql = NULL;

/*
 * The role the chain trigger records as audit_role while protect() moves
 * a table's existing rows into the chain as the table's owner: the role
 * that called protect().  InvalidOid otherwise.
 */
Oid			ha_stamp_role = InvalidOid;

static Oid
ExtensionOwner(void)
{
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(NAMESPACEOID,
						  ObjectIdGetDatum(get_namespace_oid(HA_SCHEMA_NAME, false)));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "schema %s not found", HA_SCHEMA_NAME);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	if (!superuser_arg(owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("schema %s is not owned by a superuser", HA_SCHEMA_NAME),
				 errhint("Recreate the extension as a superuser.")));
	return owner;
}

/*
 * Run sql (one or more statements) with the given arguments.  as_role is
 * InvalidOid for the extension owner, or the table owner whose code the
 * statement evaluates.  Each result row is handed to rowfn (in the SPI
 * context: copy what you keep).  Returns the rows the last statement
 * processed.
 */
uint64
HaRunSql(const char *sql, int nargs, Oid *argtypes, Datum *values,
		 const bool *nulls, Oid as_role, int flags,
		 HaSqlRowFn rowfn, void *arg)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	int			sec_context;
	const char *save_sql = ha_internal_sql;
	uint64		processed = 0;
	Oid			role = OidIsValid(as_role) ? as_role : ExtensionOwner();

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	sec_context = save_sec_context | SECURITY_LOCAL_USERID_CHANGE;
	if (OidIsValid(as_role))
		sec_context |= SECURITY_RESTRICTED_OPERATION;
	SetUserIdAndSecContext(role, sec_context);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	/*
	 * Indexes the extension makes go to the table's tablespace (the
	 * database's default), never to one the caller named and may not
	 * create in.
	 */
	(void) set_config_option("default_tablespace", "",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	/* Rows moved by protect() must not fire the owner's ordinary triggers. */
	if (flags & HA_SQL_REPLICA)
		(void) set_config_option("session_replication_role", "replica",
								 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	ha_internal_sql = sql;
	PG_TRY();
	{
		int			rc;
		char	   *nullflags = NULL;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (nulls != NULL)
		{
			nullflags = palloc(nargs + 1);
			for (int i = 0; i < nargs; i++)
				nullflags[i] = nulls[i] ? 'n' : ' ';
			nullflags[nargs] = '\0';
		}
		rc = SPI_execute_with_args(sql, nargs, argtypes, values, nullflags,
								   (flags & HA_SQL_READ_ONLY) != 0, 0);
		if (rc < 0)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
		processed = SPI_processed;
		if (rowfn != NULL && SPI_tuptable != NULL)
		{
			for (uint64 i = 0; i < SPI_processed; i++)
				rowfn(arg, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		ha_internal_sql = save_sql;
	}
	PG_END_TRY();
	AtEOXact_GUC(true, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return processed;
}

/* Row callback: the first column of the first row, as int8 (0 if none). */
static void
FirstInt8(void *arg, HeapTuple tup, TupleDesc desc)
{
	int64	   *out = (int64 *) arg;
	bool		isnull;
	Datum		d;

	if (*out != 0 || SPI_gettypeid(desc, 1) != INT8OID)
		return;
	d = SPI_getbinval(tup, desc, 1, &isnull);
	if (!isnull)
		*out = DatumGetInt64(d);
}

void
HaRunAsExtensionOwner(const char *sql, int nargs, Oid *argtypes, Datum *values)
{
	(void) HaRunSql(sql, nargs, argtypes, values, NULL, InvalidOid, 0, NULL, NULL);
}

void
HaRunAsExtensionOwnerNulls(const char *sql, int nargs, Oid *argtypes, Datum *values,
						   const bool *nulls)
{
	(void) HaRunSql(sql, nargs, argtypes, values, nulls, InvalidOid, 0, NULL, NULL);
}

/* The int8 first column of the first row returned (or 0). */
int64
HaRunAsExtensionOwnerInt8(const char *sql, int nargs, Oid *argtypes, Datum *values)
{
	int64		result = 0;

	(void) HaRunSql(sql, nargs, argtypes, values, NULL, InvalidOid, 0,
					FirstInt8, &result);
	return result;
}

typedef struct FirstTextState
{
	MemoryContext cxt;			/* the caller's */
	bool		found;
	char	   *value;
} FirstTextState;

/* Row callback: the first column of the first row as text, or NULL. */
static void
FirstText(void *arg, HeapTuple tup, TupleDesc desc)
{
	FirstTextState *st = (FirstTextState *) arg;
	char	   *value;

	if (st->found)
		return;
	st->found = true;
	value = SPI_getvalue(tup, desc, 1);
	if (value != NULL)
		st->value = MemoryContextStrdup(st->cxt, value);
}

/*
 * The first column of the first row as text; *found says whether there was
 * a row.  flags: HA_SQL_READ_ONLY reads with the statement's snapshot,
 * without it a fresh one sees what this transaction just wrote.
 */
char *
HaQueryText(const char *sql, int nargs, Oid *argtypes, Datum *values,
			int flags, bool *found)
{
	FirstTextState st = {CurrentMemoryContext, false, NULL};

	(void) HaRunSql(sql, nargs, argtypes, values, NULL, InvalidOid, flags,
					FirstText, &st);
	if (found)
		*found = st.found;
	return st.value;
}
