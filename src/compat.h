/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where PostgreSQL version differences are handled.
 *
 * PostgreSQL 15 is the tested target.  Anything that is spelled differently
 * in another major version gets a macro here, so the rest of the code reads
 * as plain PostgreSQL 15.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HIPAA_AUDIT_COMPAT_H
#define HIPAA_AUDIT_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "hipaa_audit requires PostgreSQL 15 or later"
#endif

/* PostgreSQL 16 folded the per-class ownership checks into one function. */
#if PG_VERSION_NUM >= 160000
#define HaRelOwnerCheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define HaRelOwnerCheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif

#if PG_VERSION_NUM >= 160000
#define HaNamespaceAclCheck(nspid, roleid, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#else
#define HaNamespaceAclCheck(nspid, roleid, mode) \
	pg_namespace_aclcheck((nspid), (roleid), (mode))
#endif

#endif							/* HIPAA_AUDIT_COMPAT_H */
