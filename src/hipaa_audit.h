/*-------------------------------------------------------------------------
 *
 * hipaa_audit.h
 *	  Declarations shared by the files of the hipaa_audit extension.
 *
 * Terms used throughout:
 *	  protected table  an ordinary table registered by hipaa_audit.protect();
 *					   its rows can be inserted and read, never changed.
 *	  registry		   hipaa_audit.registry, one row per protected table.
 *	  guard triggers   the ENABLE ALWAYS triggers protect() installs; the
 *					   hooks refuse the same things when triggers are bypassed.
 *	  refusal		   an attempt to weaken a protected table: it is logged
 *					   (who, from where, what) and fails with an ERROR.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HIPAA_AUDIT_H
#define HIPAA_AUDIT_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/relcache.h"

#include "compat.h"

#define HA_SCHEMA_NAME		"hipaa_audit"
#define HA_EXTENSION_NAME	"hipaa_audit"
#define HA_REGISTRY_NAME	"registry"
#define HA_ADMIN_ROLE		"hipaa_audit_admin"
#define HA_AUDITOR_ROLE		"hipaa_audit_auditor"

/* Names of the triggers protect() installs on every protected table. */
#define HA_TRIGGER_ROW		"hipaa_audit_guard_row"
#define HA_TRIGGER_TRUNCATE "hipaa_audit_guard_truncate"

/* hooks.c */
extern void HaInstallHooks(void);
extern bool ha_internal_change;	/* our own code is changing our objects */

/* registry.c */
extern void HaRegistryInit(void);
extern bool HaIsProtected(Oid relid);
extern bool HaAnyProtected(void);
extern Oid	HaSchemaOid(void);
extern bool HaIsOurTrigger(const char *tgname);
extern bool HaRelationHasRows(Oid relid);
extern void HaRegistryForget(Oid relid);

/* refuse.c */
extern void HaRefuse(const char *action, const char *object,
					 const char *detail, const char *hint) pg_attribute_noreturn();
extern char *HaRelDisplayName(Oid relid);

#endif							/* HIPAA_AUDIT_H */
