/*-------------------------------------------------------------------------
 *
 * refuse.c
 *	  The one place that says no.
 *	  Layer base/ (docs/architecture.md).
 *
 * Every refusal is first written to the server log, with who tried it and
 * from where, at LOG_SERVER_ONLY (which passes the default
 * log_min_messages and never goes to the client), and then raised as an
 * ERROR with SQLSTATE 42501 (insufficient_privilege), a message naming the
 * object, a detail and a hint.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

/*
 * A relation's name as "schema.table", quoted where needed; the OID when the
 * relation is gone.
 */
char *
HaRelDisplayName(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	char	   *nspname;

	if (relname == NULL)
		return psprintf("%u", relid);
	nspname = get_namespace_name(get_rel_namespace(relid));
	return quote_qualified_identifier(nspname, relname);
}

void
HaRefuse(const char *action, const char *object, const char *detail,
		 const char *hint)
{
	const char *role = GetUserNameFromId(GetUserId(), true);
	const char *session_role = GetUserNameFromId(GetSessionUserId(), true);
	const char *client = "local process";
	const char *appname = application_name;
	const char *statement = debug_query_string;

	if (MyProcPort != NULL && MyProcPort->remote_host != NULL)
		client = MyProcPort->remote_host;
	if (appname == NULL || appname[0] == '\0')
		appname = "(none)";

	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_audit: refused: cannot %s %s; role=%s session_role=%s client=%s application=%s statement: %s",
					action, object,
					role ? role : "?", session_role ? session_role : "?",
					client, appname,
					statement ? statement : "(none)"),
			 errhidestmt(true),
			 errhidecontext(true)));

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot %s %s", action, object),
			 detail ? errdetail("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}
