/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small helpers with no feature of their own (layer base/): hex and base64 text,
 *	  pinned date settings for canonical text, and reading one catalog row
 *	  as a statement found it or as it is now.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "common/base64.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

/* Lowercase hex of len bytes, palloc'd. */
char *
HaHex(const uint8 *h, int len)
{
	char	   *s = palloc(len * 2 + 1);

	for (int i = 0; i < len; i++)
		sprintf(s + i * 2, "%02x", h[i]);
	return s;
}

/* The text of a time or interval must not depend on the session's settings. */
void
HaPinDateSettings(int *nestlevel)
{
	*nestlevel = NewGUCNestLevel();
	(void) set_config_option("DateStyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("TimeZone", "UTC", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("IntervalStyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("quote_all_identifiers", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/* The snapshot the statement started with: the catalog "before". */
Snapshot
HaStatementSnapshot(void)
{
	if (ActiveSnapshotSet())
		return GetActiveSnapshot();
	return GetCatalogSnapshot(RelationRelationId);
}

/*
 * One catalog row by a unique index, as seen by snap (a copy), or NULL.
 * SnapshotSelf sees the row as the running statement left it.
 */
HeapTuple
HaCatalogRow(Oid catalog, Oid index, int nkeys, ScanKeyData *keys, Snapshot snap)
{
	Relation	rel = table_open(catalog, AccessShareLock);
	SysScanDesc scan;
	HeapTuple	tup;
	HeapTuple	copy = NULL;

	scan = systable_beginscan(rel, index, true, snap, nkeys, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		copy = heap_copytuple(tup);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return copy;
}

/* Base64 text of data (palloc'd), as signed notes write keys and signatures. */
char *
HaBase64(const uint8 *data, int len)
{
	int			enclen = pg_b64_enc_len(len);
	char	   *out = palloc(enclen + 1);
	int			n = pg_b64_encode((const HaB64Byte *) data, len, out, enclen);

	if (n < 0)
		elog(ERROR, "base64 encoding failed");
	out[n] = '\0';
	return out;
}

/*
 * Decode textlen bytes of base64 into at most outlen bytes; the number of
 * bytes, or -1 if it is not valid base64 or longer.
 */
int
HaUnbase64(const char *text, int textlen, uint8 *out, int outlen)
{
	HaB64Byte  *buf;
	int			n;

	if (textlen == 0 || pg_b64_dec_len(textlen) > outlen + 3)
		return -1;
	buf = palloc(pg_b64_dec_len(textlen) + 1);
	n = pg_b64_decode(text, textlen, buf, pg_b64_dec_len(textlen));
	if (n < 0 || n > outlen)
		n = -1;
	else
	{
		/*
		 * Canonical only: the decoder forgives padding bits and misplaced
		 * '='; a signature or key another verifier would reject must not
		 * pass here (and be stored).  Encoded again, it must be the text.
		 */
		char	   *again = HaBase64((const uint8 *) buf, n);

		if (strlen(again) != (size_t) textlen || memcmp(again, text, textlen) != 0)
			n = -1;
		else
			memcpy(out, buf, n);
		pfree(again);
	}
	pfree(buf);
	return n;
}
