/*-------------------------------------------------------------------------
 *
 * hipaa_audit.c
 *	  Module initialisation of the hipaa_audit extension.
 *
 * The library must be in shared_preload_libraries: the hooks that refuse
 * changes to protected tables have to be active in every backend, from the
 * first statement on, or a session that never touched the extension could
 * slip past them.  Loading it any other way is refused.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

HA_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hipaa_audit must be loaded via shared_preload_libraries"),
				 errdetail("Its protections must be active in every session, so it cannot be loaded on demand."),
				 errhint("Add hipaa_audit to shared_preload_libraries in postgresql.conf and restart the server.")));

	DefineCustomIntVariable("hipaa_audit.max_cached_chains",
							"Number of chain heads kept in shared memory.",
							"Heads that do not fit are rebuilt from the table when a transaction takes the chain.",
							&ha_max_cached_chains,
							8192, 16, 1048576,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("hipaa_audit.verify_workers",
							"Parallel workers verify() asks for; -1 takes max_parallel_workers_per_gather.",
							"Each process checks a share of the chains; tables smaller than min_parallel_table_scan_size are checked by one process.",
							&ha_verify_workers,
							-1, -1, 64,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("hipaa_audit.verify_memory",
							"Memory each verify() process may use for rows that wait for their chain's earlier rows.",
							"Beyond it they are sorted in temporary files.",
							&ha_verify_memory,
							65536, 64, MAX_KILOBYTES,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomStringVariable("hipaa_audit.signing_key_file",
							   "Ed25519 private key (PKCS#8 PEM) that signs checkpoints and purge receipts.",
							   "Keep it outside the data directory, readable by the server's account only.",
							   &ha_signing_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("hipaa_audit.signing_agent",
							   "Unix socket of the signing agent that signs checkpoints and purge receipts.",
							   "The agent holds the key under an account of its own; hipaa_audit.signing_key_file must then be empty.",
							   &ha_signing_agent,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   HaCheckSigningAgent, NULL, NULL);
	DefineCustomStringVariable("hipaa_audit.signer_name",
							   "Name in the signature lines of checkpoints and purge receipts, and in the verifier key.",
							   "No spaces, control characters or \"+\"; a host-like name such as audit.example.org.",
							   &ha_signer_name,
							   "hipaa_audit",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   HaCheckSignerName, NULL, NULL);
	DefineCustomStringVariable("hipaa_audit.min_retention",
							   "Shortest retention a role that is not a superuser may give a table.",
							   "protect() refuses a shorter one unless a superuser calls it; set_retention() never lowers one.",
							   &ha_min_retention,
							   "6 years",
							   PGC_SUSET,
							   0,
							   HaCheckMinRetention, NULL, NULL);
	DefineCustomBoolVariable("hipaa_audit.database_protected",
							 "Marks a database that holds protected tables (set by protect()).",
							 "DROP DATABASE of a marked database is refused from every database; do not set it by hand.",
							 &ha_database_protected,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("hipaa_audit");

	HaChainShmemRequest();
	HaRegistryInit();
	HaEncodingInit();
	HaChainInit();
	HaInstallHooks();
}
