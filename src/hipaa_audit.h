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
 *	  chain			   one of a table's sequences of rows, each row holding
 *					   the hash of the one before (docs/encoding.md).
 *	  head			   the position and hash of a chain's last committed row;
 *					   cached in shared memory, rebuilt from the table.
 *	  shape			   a table's column layout as the encoding sees it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HIPAA_AUDIT_H
#define HIPAA_AUDIT_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "port/atomics.h"
#include "storage/lockdefs.h"
#include "nodes/pg_list.h"
#include "utils/guc.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/uuid.h"

#include "compat.h"

#define HA_SCHEMA_NAME		"hipaa_audit"
#define HA_EXTENSION_NAME	"hipaa_audit"
#define HA_ADMIN_ROLE		"hipaa_audit_admin"
#define HA_AUDITOR_ROLE		"hipaa_audit_auditor"

/* Names of the triggers protect() installs on every protected table. */
#define HA_TRIGGER_ROW		"hipaa_audit_guard_row"
#define HA_TRIGGER_TRUNCATE "hipaa_audit_guard_truncate"
#define HA_TRIGGER_CHAIN	"hipaa_audit_chain"

/* The chain columns protect() adds (docs/encoding.md). */
#define HA_COL_CHAIN		"audit_chain"
#define HA_COL_SEQ			"audit_seq"
#define HA_COL_AT			"audit_at"
#define HA_COL_SESSION_ROLE "audit_session_role"
#define HA_COL_ROLE			"audit_role"
#define HA_COL_CLIENT		"audit_client"
#define HA_COL_PREV			"audit_prev_hash"
#define HA_COL_HASH			"audit_hash"

/* The per-database setting that marks a database holding protected tables. */
#define HA_DB_MARKER		"hipaa_audit.database_protected"

#define HA_HASH_LEN			32
#define HA_MAX_CHAINS		256

/* How deep the type walkers follow arrays, ranges, domains and composites. */
#define HA_MAX_TYPE_DEPTH	16

/* pg_locks shows a held chain as an advisory lock with this objsubid. */
#define HA_LOCKTAG_FIELD4	0x4841

/* What the registry cache knows of a protected table. */
typedef struct HaProtectedEntry
{
	Oid			relid;
	pg_uuid_t	uuid;
	int32		chains;
	bool		replica;		/* filled by logical replication only */
	bool		partitioned;	/* a partitioned table: its partitions hold
								 * the rows and chains */
	Oid			parent;			/* a partition: its partitioned table */
} HaProtectedEntry;

/* ================ base/ ================ */

/* base/crypto.c: the only user of OpenSSL */
typedef struct HaSha256 HaSha256;
extern HaSha256 *HaSha256Create(void);
extern void HaSha256Init(HaSha256 *h);
extern void HaSha256Update(HaSha256 *h, const void *data, size_t len);
extern void HaSha256Final(HaSha256 *h, uint8 out[HA_HASH_LEN]);
extern void HaSha256Once(const void *data, size_t len, uint8 out[HA_HASH_LEN]);
extern void HaSecureZero(void *p, size_t len);

#define HA_ED25519_KEY_LEN	32
#define HA_ED25519_SIG_LEN	64
extern void HaEd25519ReadKeyFile(const char *path, uint8 priv[HA_ED25519_KEY_LEN],
								 uint8 pub[HA_ED25519_KEY_LEN]);
extern void HaEd25519Sign(const uint8 priv[HA_ED25519_KEY_LEN], const uint8 *msg,
						  size_t len, uint8 sig[HA_ED25519_SIG_LEN]);
extern void HaKeyId(const char *name, const uint8 *pub, uint8 id[4]);
extern void HaKeyIdAlg(const char *name, const uint8 *pub, uint8 alg, uint8 id[4]);
extern bool HaEd25519Verify(const uint8 pub[HA_ED25519_KEY_LEN], const uint8 *msg,
							size_t len, const uint8 sig[HA_ED25519_SIG_LEN]);

/* base/refuse.c */
pg_noreturn extern void HaRefuse(const char *action, const char *object,
								 const char *detail, const char *hint);
extern char *HaRelDisplayName(Oid relid);

/* base/util.c */
extern char *HaHex(const uint8 *h, int len);
extern char *HaBase64(const uint8 *data, int len);
extern int	HaUnbase64(const char *text, int textlen, uint8 *out, int outlen);
extern void HaPinDateSettings(int *nestlevel);
extern Snapshot HaStatementSnapshot(void);
struct ScanKeyData;
extern HeapTuple HaCatalogRow(Oid catalog, Oid index, int nkeys,
							  struct ScanKeyData *keys, Snapshot snap);

/* base/sqlrun.c: the one way the extension runs SQL of its own */
typedef void (*HaSqlRowFn) (void *arg, HeapTuple tup, TupleDesc desc);

#define HA_SQL_READ_ONLY	0x01	/* the statement's snapshot, no writes */
#define HA_SQL_REPLICA		0x02	/* session_replication_role = replica */

extern const char *ha_internal_sql;
extern Oid	ha_stamp_role;
extern uint64 HaRunSql(const char *sql, int nargs, Oid *argtypes, Datum *values,
					   const bool *nulls, Oid as_role, int flags,
					   HaSqlRowFn rowfn, void *arg);
extern void HaRunAsExtensionOwner(const char *sql, int nargs, Oid *argtypes,
								  Datum *values);
extern void HaRunAsExtensionOwnerNulls(const char *sql, int nargs, Oid *argtypes,
									   Datum *values, const bool *nulls);
extern int64 HaRunAsExtensionOwnerInt8(const char *sql, int nargs, Oid *argtypes,
									   Datum *values);
extern char *HaQueryText(const char *sql, int nargs, Oid *argtypes, Datum *values,
						 int flags, bool *found);

/* ================ store/ ================ */

/*
 * The extension's own tables and their columns, by number, in the order of
 * the install script (test/pgtap/00_schema.sql pins it).
 */
#define HA_TABLE_REGISTRY		"registry"
#define Anum_ha_registry_relid			1
#define Anum_ha_registry_table_uuid		2
#define Anum_ha_registry_retention		3
#define Anum_ha_registry_chains			4
#define Anum_ha_registry_replica		7
#define Anum_ha_registry_retention_locked 8
#define Anum_ha_registry_partition_of	9

#define HA_TABLE_CHECKPOINTS	"checkpoints"
#define Anum_ha_checkpoints_id			1
#define Anum_ha_checkpoints_table_uuid	2
#define Anum_ha_checkpoints_note		5

#define HA_TABLE_LEGAL_HOLDS	"legal_holds"
#define Anum_ha_legal_holds_id			1
#define Anum_ha_legal_holds_table_uuid	2

#define HA_TABLE_HOLD_RELEASES	"hold_releases"
#define Anum_ha_hold_releases_hold_id	1

#define HA_TABLE_PURGE_RECEIPTS	"purge_receipts"
#define Anum_ha_purge_receipts_id		1
#define Anum_ha_purge_receipts_table_uuid 2
#define Anum_ha_purge_receipts_note		8

#define HA_TABLE_PURGE_ANCHORS	"purge_anchors"
#define Anum_ha_purge_anchors_table_uuid 2
#define Anum_ha_purge_anchors_chain		3
#define Anum_ha_purge_anchors_first_seq	4
#define Anum_ha_purge_anchors_last_seq	5
#define Anum_ha_purge_anchors_anchor_hash 6

#define HA_TABLE_RETIRED_TABLES	"retired_tables"
#define HA_TABLE_MERKLE_TILES	"merkle_tiles"	/* from 0.3.0 on */

/* store/scan.c */
typedef bool (*HaOwnRowFn) (void *arg, TupleTableSlot *slot);	/* false: stop */
extern bool HaScanOwnTable(const char *relname, Snapshot snap, HaOwnRowFn fn,
						   void *arg);


/* store/registry.c */
extern bool ha_database_protected;

extern void HaRegistryInit(void);
extern bool HaIsProtected(Oid relid);
extern const HaProtectedEntry *HaLookupProtected(Oid relid);
extern const HaProtectedEntry *HaRequireProtected(Oid relid, const char *hint);
extern bool HaAnyProtected(void);
extern List *HaProtectedRelids(void);
extern Oid	HaSchemaOid(void);
extern bool HaIsOurTrigger(const char *tgname);
extern bool HaRelationHasRows(Oid relid);
extern void HaRegistryForget(Oid relid);
extern void HaRegistryChanged(void);
extern bool HaIsAuditAdmin(Oid roleid);
extern void HaRequireAdmin(const char *what, const char *detail);
extern void HaRequireOwnerOrAdmin(Oid relid, const char *verb);
extern void HaMarkDatabase(bool on);
extern bool HaTableHeld(Oid relid);
extern void HaCheckRelationExists(Oid relid);
extern bool HaRegistryRetention(Oid relid, Interval *retention, bool *locked);
extern void HaRegisterTable(Oid relid, const Interval *retention, int32 chains,
							const pg_uuid_t *uuid, bool replica, Oid parent,
							bool locked);
extern List *HaRegisteredPartitions(Oid parent);

/* store/records.c: where each chain starts after lawful purges; retired tables */
typedef struct HaAnchor
{
	int64		seq;			/* last purged position; 0: nothing purged */
	uint8		hash[HA_HASH_LEN];	/* its row's audit_hash; zeros when seq 0 */
} HaAnchor;

extern HaAnchor *HaLoadAnchors(const pg_uuid_t *uuid, Snapshot snap);
extern void HaLockPurge(Oid relid);
extern void HaLockTree(Oid relid);
extern bool HaSchemaHasTree(void);
extern bool HaAnchorRecorded(const pg_uuid_t *uuid, int32 chain, int64 first,
							 int64 last, const uint8 *hash);
extern void HaRecordRetired(Oid relid, const char *action, int64 rows,
							TimestampTz newest);

/* ================ core/ ================ */

/* core/encoding.c */

/*
 * How the encoder writes the values of one type: resolved from the type OID
 * (domains to their base type), with PostgreSQL's own send function chosen
 * from a table compiled into the extension, never from pg_type.typsend.
 */
typedef struct HaTypeEncoding
{
	char		kind;			/* HA_ENC_*, private to encoding.c */
	Oid			basetypid;		/* the type, domains resolved */
	Oid			elemtype;		/* arrays: the element type */
	Oid			sendfnoid;		/* the send function, where one is called */
	FmgrInfo	sendfn;			/* ... looked up by fmgr_info() */
} HaTypeEncoding;

typedef struct HaShapeColumn
{
	AttrNumber	attnum;
	const char *name;
	int			namelen;
	Oid			typid;
	HaTypeEncoding enc;			/* when fastkind is HA_FAST_NONE */
	char		fastkind;		/* HA_FAST_*: send output built directly */
} HaShapeColumn;

/*
 * Types whose send output the encoder writes itself, byte for byte what the
 * send function would produce (fixed-width big-endian integers; raw text in
 * the database encoding, which the encoder pins the client encoding to).
 */
#define HA_FAST_NONE	0
#define HA_FAST_INT2	1
#define HA_FAST_INT4	2
#define HA_FAST_INT8	3
#define HA_FAST_FLOAT4	4
#define HA_FAST_FLOAT8	5
#define HA_FAST_BOOL	6
#define HA_FAST_UUID	7
#define HA_FAST_VARLENA 8
#define HA_FAST_INET	9
#define HA_FAST_CIDR	10

typedef struct HaShape
{
	Oid			relid;
	int			ncolumns;		/* included columns, in attnum order */
	HaShapeColumn *columns;
	AttrNumber	att_chain;
	AttrNumber	att_seq;
	AttrNumber	att_at;
	AttrNumber	att_session_role;
	AttrNumber	att_role;
	AttrNumber	att_client;
	AttrNumber	att_prev;
	AttrNumber	att_hash;
	/* The (audit_chain, audit_seq) index, looked up once (chain.c). */
	bool		index_known;
	Oid			index_unique;	/* the unique one protect() made */
	Oid			index_any;		/* or any other, for verify() */
} HaShape;

extern void HaEncodingInit(void);
extern HaShape *HaGetShape(Relation rel);
extern void HaRowHash(HaShape *shape, const pg_uuid_t *uuid, int32 chain,
					  int64 seq, const uint8 *prev, Datum *values,
					  bool *isnull, uint8 out[HA_HASH_LEN]);
extern void HaCheckEncodable(Relation rel, bool has_chain_columns);
extern void HaCheckColumnType(Relation rel, const char *colname, Oid typid);
extern bool HaIsChainIndex(Oid indexid);
typedef enum HaChainIndexNeed
{
	HA_CHAIN_INDEX_UNIQUE,		/* the unique one: writers, purge */
	HA_CHAIN_INDEX_ANY			/* any that orders the same: verify() */
} HaChainIndexNeed;
extern Oid	HaChainIndex(Relation rel, HaChainIndexNeed need);
extern bool HaIsChainColumnName(const char *name);

/* core/reach.c */
extern Oid	HaProtectedTableUsingType(Oid typid);
extern bool HaDomainHasDefault(Oid typid);

/* core/guards.c */
extern int	HaCheckTriggers(Oid relid, Oid changed, bool created);
extern void HaCheckGuardsInPlace(Oid relid);

/* core/retention.c */
extern char *ha_min_retention;
extern bool HaCheckMinRetention(char **newval, void **extra, GucSource source);
extern bool HaRetentionNeverShorter(const Interval *new, const Interval *old);
extern void HaRetentionCheckFloor(Interval *retention);
extern TimestampTz HaRetentionCutoff(Oid relid, Interval *retention);
extern bool HaRowsWithinRetention(Oid relid, int64 *rows, TimestampTz *newest);

/* core/linkcheck.c: chain links from rows read in any order */
#define HA_LINK_HAVE_PREV	0x01	/* audit_prev_hash is 32 bytes */
#define HA_LINK_HAVE_HASH	0x02	/* audit_hash is 32 bytes */
#define HA_LINK_HASH_OK		0x04	/* and the recomputed hash matches it */
typedef struct HaLinkRow
{
	int32		chain;
	int64		seq;
	uint64		ord;			/* order read, set by HaLinkCheckRow */
	uint8		prev[HA_HASH_LEN];
	uint8		hash[HA_HASH_LEN];
	uint8		flags;
} HaLinkRow;
typedef void (*HaLinkReportFn) (void *arg, int32 chain, int64 seq,
								const char *kind, const char *detail);
typedef struct HaLinkCheck HaLinkCheck;
extern HaLinkCheck *HaLinkCheckBegin(int32 chains, const HaAnchor *anchors,
									 int mem_kb, HaLinkReportFn report,
									 void *arg);
extern void HaLinkCheckRow(HaLinkCheck *lc, HaLinkRow *row);
extern int32 HaLinkCheckEnd(HaLinkCheck *lc);

/* Progress of a running verify(), one slot per backend (chain.c). */
typedef struct HaVerifyProgress
{
	int			pid;			/* 0 when idle */
	Oid			relid;
	TimestampTz started;
	int64		rows_estimated;
	pg_atomic_uint64 rows_checked;
} HaVerifyProgress;

/* core/chain.c */
extern HaVerifyProgress *HaProgressSlot(void);
extern HaVerifyProgress *HaProgressSlots(int *nslots);
extern void HaChainShmemRequest(void);
extern void HaChainShmemStartup(void);
extern void HaChainInit(void);
extern void HaChainNext(Relation rel, const HaProtectedEntry *entry,
						int32 *chain, int64 *seq, uint8 prev[HA_HASH_LEN]);
extern void HaChainAdvance(Oid relid, int32 chain, int64 seq,
						   const uint8 hash[HA_HASH_LEN]);
extern void HaChainForgetTable(Oid relid);
extern void HaChainMarkSpeculative(Oid relid);
extern bool HaSlotHash(TupleTableSlot *slot, AttrNumber att, uint8 *out);
extern bool HaChainFindRow(Relation rel, int32 chain, int64 seq, int64 *seq_out,
						   uint8 *hash, TimestampTz *at);

/* core/chain.c: settings */
extern int	ha_max_cached_chains;
extern int	ha_verify_workers;
extern int	ha_verify_memory;

/* core/signer.c: who signs (the key file or the signing agent) */
extern char *ha_signing_agent;
extern bool HaCheckSigningAgent(char **newval, void **extra, GucSource source);
extern bool HaUseSigningAgent(void);
extern void HaAgentKey(const char *name, uint8 pub[HA_ED25519_KEY_LEN]);
extern void HaAgentSign(const char *body, const char *name,
						uint8 sig[4 + HA_ED25519_SIG_LEN]);
extern char *ha_signing_key_file;
extern char *ha_signer_name;

/* core/note.c: signed notes (C2SP note format), keys and signature lines */

/*
 * Bounds on what a caller hands to the note checks (docs/checkpoints.md):
 * a note, the keys checked against it, its signature lines, and one
 * verifier key or signature line.  A real checkpoint of 256 chains is about
 * 25 kB.
 */
#define HA_NOTE_MAX_LEN		(256 * 1024)
#define HA_NOTE_MAX_KEYS		64
#define HA_NOTE_MAX_SIGNATURES 64
#define HA_KEY_MAX_LEN			1024
#define HA_SIG_DASH		"\xe2\x80\x94 "	/* U+2014 EM DASH, then a space */
#define HA_ED25519_ALG		0x01
#define HA_COSIGNATURE_ALG	0x04	/* C2SP tlog-cosignature, cosignature/v1 (Ed25519) */

/* A note body, as HaParseNoteBody() reads it. */
typedef struct HaNoteChain
{
	int32		chain;
	int64		first;			/* receipts: first position removed */
	int64		last;			/* the position recorded (checkpoints) or last removed */
	uint8		hash[HA_HASH_LEN];
} HaNoteChain;

typedef struct HaNotePartition
{
	char		uuid[37];		/* the partition's table identity */
	uint8		hash[HA_HASH_LEN];	/* SHA-256 of its stored checkpoint note */
} HaNotePartition;

typedef struct HaNoteBody
{
	bool		receipt;		/* "purge v1"; else "checkpoint v1" or "v2" */
	int			version;		/* 2: a tlog-checkpoint (docs/merkle.md) */
	int64		tree_size;		/* version 2: the tree's size and root */
	uint8		root[HA_HASH_LEN];
	uint64		sysid;			/* origin: system identifier */
	char		uuid[37];		/* origin: table identity, as text */
	char	   *table;			/* names, decoded */
	char	   *database;
	char	   *by;				/* receipts only */
	char	   *time;			/* times and intervals as signed (UTC) */
	char	   *retention;		/* NULL in checkpoints of 0.1.0 */
	char	   *cutoff;			/* receipts only */
	char	   *as_of;			/* receipts from 0.3.0 on: cutoff = as_of - retention */
	char	   *parent;			/* receipts of a removed partition: its */
	char		parent_uuid[37];	/* partitioned table, and how it went */
	char	   *removed;		/* ("drop" or "detach"); else NULL */
	int32		chains;			/* checkpoints only; else -1 */
	int64		rows;
	int			nchains;
	HaNoteChain chain[HA_MAX_CHAINS];
	int			npartitions;	/* checkpoints of a partitioned table */
	HaNotePartition *partitions;
} HaNoteBody;

extern bool HaCheckSignerName(char **newval, void **extra, GucSource source);
extern char *HaSignNote(const char *body);
extern void HaCheckSigningKey(void);
extern char *HaNoteName(const char *name);
extern char *HaParseNoteBody(const char *body, bool receipt, HaNoteBody *nb);
extern char *HaNoteBodyOf(const char *note);

/* What a note check found wrong: a status and a detail; relid once known. */
typedef struct HaNoteCheck
{
	const char *status;
	char	   *detail;
	Oid			relid;
} HaNoteCheck;

/*
 * A note split once into its body and its signature lines; every signature
 * line checked for form, whoever signed it.
 */
typedef struct HaNoteSignature
{
	char	   *name;
	uint8		blob[4 + 8 + HA_ED25519_SIG_LEN + 4];	/* key ID || [timestamp ||] signature */
	int			len;
} HaNoteSignature;

typedef struct HaSplitNote
{
	char	   *body;
	int			nsigs;
	HaNoteSignature sigs[HA_NOTE_MAX_SIGNATURES];
} HaSplitNote;


extern void HaCheckKeyName(const char *name);
extern void HaLoadSigningKey(uint8 priv[HA_ED25519_KEY_LEN], uint8 pub[HA_ED25519_KEY_LEN]);
extern char *HaVerifierKey(const char *name, const uint8 *pub);
extern bool HaNoteFail(HaNoteCheck *nc, const char *status, char *detail);
extern bool HaParseVerifierKey(const char *key, char **name, uint8 id[4],
							   uint8 pub[HA_ED25519_KEY_LEN], uint8 *alg, HaNoteCheck *nc);
extern void HaCheckNoteLength(Size len);
extern void HaCheckKeyLength(Size len);
extern char *HaTrimKey(const char *key);
extern Size HaTextLength(Datum d);
extern bool HaSplitNoteText(const char *note, HaSplitNote *sn, HaNoteCheck *nc);
typedef void (*HaStoredNoteFn) (void *arg, int64 id, const HaNoteBody *nb,
								const char *problem);
extern bool HaScanStoredNotes(bool receipts, const pg_uuid_t *uuid,
							  HaStoredNoteFn fn, void *arg);
extern bool HaCheckNoteSignature(const HaSplitNote *sn, const char *name, const uint8 *id,
								 const uint8 *pub, uint8 alg, HaNoteCheck *nc);
extern bool HaVerifyNoteSignatureBlob(const char *body, const uint8 *blob, int len,
									  const uint8 *pub, uint8 alg);

/* core/merkle.c: a table's Merkle tree, RFC 6962 hashing in tiles (docs/merkle.md) */
#define HA_TREE_TILE_LEVELS	8		/* tiles of height 8: heights 0 to 63 */
#define HA_TREE_MAX_PROOF	64		/* hashes in a proof of a tree below 2^63 leaves */
#define HA_TREE_MAX_SIZE	((int64) 1 << 62)	/* a tree size a note may state */
typedef struct HaTree HaTree;
extern void HaMerkleLeaf(const uint8 *entry, size_t len, uint8 out[HA_HASH_LEN]);
extern void HaMerkleNode(const uint8 *left, const uint8 *right, uint8 out[HA_HASH_LEN]);
extern void HaMerkleEmptyRoot(uint8 out[HA_HASH_LEN]);
extern HaTree *HaTreeOpen(const pg_uuid_t *uuid, int64 size);
extern void HaTreeClose(HaTree *t);
extern int64 HaTreeSize(const HaTree *t);
extern int64 HaTreeTilesRead(const HaTree *t);
extern void HaTreeSoft(HaTree *t);
extern bool HaTreeMissing(const HaTree *t);
extern void HaTreeRoot(HaTree *t, int64 n, uint8 out[HA_HASH_LEN]);
extern void HaTreeLeaf(HaTree *t, int64 i, uint8 out[HA_HASH_LEN]);
extern void HaTreeAppend(HaTree *t, const uint8 leaf[HA_HASH_LEN]);
extern void HaTreeStore(HaTree *t);
extern int	HaTreeProveLeaf(HaTree *t, int64 m, int64 size, uint8 *out);
extern int	HaTreeProveConsistency(HaTree *t, int64 m, int64 size, uint8 *out);
extern bool HaMerkleCheckInclusion(const uint8 *leaf, int64 index, int64 size,
								   const uint8 *proof, int n, const uint8 *root);
extern bool HaMerkleCheckConsistency(int64 m, const uint8 *root_m, int64 size,
									 const uint8 *root, const uint8 *proof, int n);
extern int64 HaTreeAppendChain(HaTree *t, Relation rel, int32 chain, int64 after, int64 upto);
typedef struct HaTreeChecker HaTreeChecker;
extern HaTreeChecker *HaTreeCheckBegin(const pg_uuid_t *uuid, int64 size);
extern void HaTreeCheckChain(HaTreeChecker *c, Relation rel, int32 chain, int64 first, int64 last);
extern void HaTreeCheckSkip(HaTreeChecker *c, int64 upto);
extern int64 HaTreeCheckNext(const HaTreeChecker *c);
extern int64 HaTreeCheckEnd(HaTreeChecker *c, const uint8 *root, char **first, int64 *compared);

/* core/partition.c: which tables can be protected; partitioned tables */
extern void HaCheckProtectable(Relation rel, Oid parent);
extern void HaCheckRewritable(Relation rel, bool had_rows);
extern List *HaPartitionsOf(Oid parent, LOCKMODE lockmode);
extern void HaAddPartitionGuards(Oid part);
extern void HaCheckGeneratedLikeParent(Oid parent, Oid part);
extern void HaProtectNewPartition(Oid parent, Oid part);

/* ================ api/ ================ */

/* api/checkpoint.c */
extern int64 HaCheckStoredCheckpoints(Oid relid,
									  void (*report) (void *arg, int32 chain, int64 seq,
													  const char *kind, const char *detail),
									  void *arg);

extern const char *HaCheckPartitionLine(const HaNotePartition *np, char **detail);
extern void HaCheckpointBeforeRemoval(Oid tree_relid, Oid part);
extern bool HaTreeCoverage(Oid part, int64 *upto);
extern int64 HaStoredCheckpointByHash(const pg_uuid_t *uuid, const uint8 *hash);

extern int64 HaCheckStoredReceipts(const pg_uuid_t *uuid,
								   void (*report) (void *arg, int32 chain, int64 seq,
												   const char *kind, const char *detail),
								   void *arg);

/* api/verify.c */
extern void HaCheckCanVerify(Oid relid);
extern int64 HaVerifyCount(Oid relid);
extern int64 HaVerifyCountUpTo(Oid relid, const int64 *upto, int32 n);
extern int64 HaVerifyForRemoval(Oid relid, TimestampTz cutoff, int64 *within,
								int64 *rows, char **first);

/* api/purge.c */

extern int64 HaRetirePartition(Oid part, const char *action, char **receipt);

/* ================ enforce/ ================ */

/* enforce/backstop.c */
extern void HaBackstop(int access, Oid classId, Oid objectId, int subId,
					   void *arg);
extern List *HaSwapPendingPartitions(List *list);

/* enforce/hooks.c */
extern void HaInstallHooks(void);

#endif							/* HIPAA_AUDIT_H */
