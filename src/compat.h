/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where PostgreSQL version differences are handled.
 *
 * PostgreSQL 15 and 18 are tested.  Anything that is spelled differently
 * in another major version gets a macro here, so the rest of the code reads
 * the same on every version.
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
#include "catalog/pg_namespace.h"
#define HaNamespaceAclCheck(nspid, roleid, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#else
#define HaNamespaceAclCheck(nspid, roleid, mode) \
	pg_namespace_aclcheck((nspid), (roleid), (mode))
#endif

/*
 * PostgreSQL 18 spells "does not return" before the declaration
 * (pg_noreturn) and dropped pg_attribute_noreturn(); with GCC and clang the
 * older attribute is accepted in the same place.
 */
#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

/* PostgreSQL 18's base64 functions take bytes as uint8, not char. */
#if PG_VERSION_NUM >= 180000
typedef uint8 HaB64Byte;
#else
typedef char HaB64Byte;
#endif

/* PostgreSQL 18 dropped ExecutorRun's execute_once argument. */
#if PG_VERSION_NUM >= 180000
#define HA_EXECUTOR_RUN_PARAMS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define HA_EXECUTOR_RUN_ARGS queryDesc, direction, count
#else
#define HA_EXECUTOR_RUN_PARAMS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once
#define HA_EXECUTOR_RUN_ARGS queryDesc, direction, count, execute_once
#endif

/* PostgreSQL 18 added an instrumentation argument to index_beginscan(). */
#if PG_VERSION_NUM >= 180000
#define HaIndexBeginScan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), (norderbys))
#else
#define HaIndexBeginScan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), (norderbys))
#endif

/* PostgreSQL 18 added an instrumentation argument to index_beginscan_bitmap(). */
#if PG_VERSION_NUM >= 180000
#define HaIndexBeginScanBitmap(index, snapshot, nkeys) \
	index_beginscan_bitmap((index), (snapshot), NULL, (nkeys))
#else
#define HaIndexBeginScanBitmap(index, snapshot, nkeys) \
	index_beginscan_bitmap((index), (snapshot), (nkeys))
#endif

/*
 * The blocks of a TID bitmap, in order: PostgreSQL 18 iterates a private
 * bitmap into a result the caller owns; earlier versions return one.
 */
#include "nodes/tidbitmap.h"
#if PG_VERSION_NUM >= 180000
typedef TBMPrivateIterator HaBitmapIterator;
#define HaBitmapBegin(tbm) tbm_begin_private_iterate(tbm)
#define HaBitmapEnd(it) tbm_end_private_iterate(it)
static inline bool
HaBitmapNextBlock(HaBitmapIterator *it, BlockNumber *blkno)
{
	TBMIterateResult r;

	if (!tbm_private_iterate(it, &r))
		return false;
	*blkno = r.blockno;
	return true;
}
#else
typedef TBMIterator HaBitmapIterator;
#define HaBitmapBegin(tbm) tbm_begin_iterate(tbm)
#define HaBitmapEnd(it) tbm_end_iterate(it)
static inline bool
HaBitmapNextBlock(HaBitmapIterator *it, BlockNumber *blkno)
{
	TBMIterateResult *r = tbm_iterate(it);

	if (r == NULL)
		return false;
	*blkno = r->blockno;
	return true;
}
#endif

/*
 * This backend's number from 0, or -1 outside a backend: PostgreSQL 17
 * replaced MyBackendId (from 1) by MyProcNumber (from 0).
 */
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#else
#include "storage/backendid.h"
#endif
#if PG_VERSION_NUM >= 170000
#define HaMyBackendIndex() \
	(MyProcNumber == INVALID_PROC_NUMBER ? -1 : (int) MyProcNumber)
#else
#define HaMyBackendIndex() \
	(MyBackendId == InvalidBackendId ? -1 : (int) MyBackendId - 1)
#endif

/* The local id of this backend's top-level transaction (PostgreSQL 17 moved it). */
#if PG_VERSION_NUM >= 170000
#define HaMyLocalXid() (MyProc->vxid.lxid)
#else
#define HaMyLocalXid() (MyProc->lxid)
#endif

/*
 * PostgreSQL 16 gave tuplesort_getdatum() a "copy" argument; 15 always
 * copies a by-reference datum into the caller's context.
 */
#if PG_VERSION_NUM >= 160000
#define HA_TUPLESORT_GETDATUM_COPY true,
#else
#define HA_TUPLESORT_GETDATUM_COPY
#endif

/* PostgreSQL 18 lets a library name itself and its version. */
#ifdef PG_MODULE_MAGIC_EXT
#define HA_MODULE_MAGIC \
	PG_MODULE_MAGIC_EXT(.name = "hipaa_audit", .version = HIPAA_AUDIT_VERSION)
#else
#define HA_MODULE_MAGIC PG_MODULE_MAGIC
#endif

#endif							/* HIPAA_AUDIT_COMPAT_H */
