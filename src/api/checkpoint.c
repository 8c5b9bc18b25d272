/*-------------------------------------------------------------------------
 *
 * checkpoint.c
 *	  Signed checkpoints: the heads of a table's chains, signed with an
 *	  Ed25519 key the database does not hold, in the C2SP signed-note format.
 *	  Layer api/ (docs/architecture.md).
 *
 * Terms: a "checkpoint" pins, for one table, every chain's last position and
 * hash at one moment; its "note" is the signed text (docs/checkpoints.md).
 * The private key lives in the file named by hipaa_audit.signing_key_file,
 * outside the data directory, readable by the server's account only; it is
 * read for each signature and wiped right after.  Checkpoints are stored,
 * hash-chained, in hipaa_audit.checkpoints, which only this file writes.
 *
 * A note is verified against a verifier key given by the caller, never
 * against anything stored in the database.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include <sys/stat.h>

#include "access/detoast.h"
#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/base64.h"
#include "common/int.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"


/*
 * Bounds on what a caller hands to the note checks (docs/checkpoints.md):
 * a note, the keys checked against it, its signature lines, and one
 * verifier key or signature line.  A real checkpoint of 256 chains is about
 * 25 kB.
 */
#define NOTE_MAX_LEN		(256 * 1024)
#define NOTE_MAX_KEYS		64
#define NOTE_MAX_SIGNATURES 64
#define KEY_MAX_LEN			1024
#define SIG_DASH		"\xe2\x80\x94 "	/* U+2014 EM DASH, then a space */
#define ED25519_ALG		0x01

/* ----------------------------------------------------------------
 * Keys
 * ----------------------------------------------------------------
 */

/* C2SP key ID: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || pub). */
static void
KeyId(const char *name, const uint8 *pub, uint8 id[4])
{
	size_t		nlen = strlen(name);
	uint8	   *buf = palloc(nlen + 2 + HA_ED25519_KEY_LEN);
	uint8		h[HA_HASH_LEN];

	memcpy(buf, name, nlen);
	buf[nlen] = '\n';
	buf[nlen + 1] = ED25519_ALG;
	memcpy(buf + nlen + 2, pub, HA_ED25519_KEY_LEN);
	HaSha256Once(buf, nlen + 2 + HA_ED25519_KEY_LEN, h);
	memcpy(id, h, 4);
	pfree(buf);
}

static char *
Base64(const uint8 *data, int len)
{
	int			enclen = pg_b64_enc_len(len);
	char	   *out = palloc(enclen + 1);
	int			n = pg_b64_encode((const char *) data, len, out, enclen);

	if (n < 0)
		elog(ERROR, "base64 encoding failed");
	out[n] = '\0';
	return out;
}

/* Decode base64; -1 if it is not valid base64. */
static int
Unbase64(const char *text, int textlen, uint8 *out, int outlen)
{
	if (textlen == 0 || pg_b64_dec_len(textlen) > outlen + 3)
		return -1;
	{
		char	   *buf = palloc(pg_b64_dec_len(textlen) + 1);
		int			n = pg_b64_decode(text, textlen, buf, pg_b64_dec_len(textlen));

		if (n < 0 || n > outlen)
		{
			pfree(buf);
			return -1;
		}
		memcpy(out, buf, n);
		pfree(buf);
		return n;
	}
}

static void
CheckKeyName(const char *name)
{
	if (name == NULL || name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hipaa_audit.signer_name is empty")));
	for (const char *p = name; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == '+')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("signer name \"%s\" contains a space, control character or \"+\"", name)));
}

/* GUC check hook for hipaa_audit.signer_name. */
bool
HaCheckSignerName(char **newval, void **extra pg_attribute_unused(),
				  GucSource source pg_attribute_unused())
{
	for (const char *p = *newval; p && *p; p++)
	{
		if ((unsigned char) *p <= ' ' || *p == '+')
		{
			GUC_check_errdetail("A signer name may not contain spaces, control characters or \"+\".");
			return false;
		}
	}
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("A signer name may not be empty.");
		return false;
	}
	return true;
}

/*
 * Read the configured signing key after checking where it lives and who can
 * read it.  The caller wipes priv.
 */
static void
LoadSigningKey(uint8 priv[HA_ED25519_KEY_LEN], uint8 pub[HA_ED25519_KEY_LEN])
{
	const char *path = ha_signing_key_file;
	struct stat st;
	char	   *real;
	char	   *realdata;

	if (path == NULL || path[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no signing key is configured"),
				 errhint("Set hipaa_audit.signing_agent to the signing agent's socket, or hipaa_audit.signing_key_file to an Ed25519 private key outside the data directory, and reload.")));
	/*
	 * The path is a superuser-only setting: it goes to the server log only,
	 * never to the client (a table owner may call checkpoint()).
	 */
	if (stat(path, &st) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not open the signing key file: %m"),
				 errdetail_log("hipaa_audit.signing_key_file is \"%s\".", path)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the signing key file is not a regular file"),
				 errdetail_log("hipaa_audit.signing_key_file is \"%s\".", path)));
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the signing key file is accessible by group or others"),
				 errdetail("Its mode is %04o.", (unsigned int) (st.st_mode & 07777)),
				 errdetail_log("hipaa_audit.signing_key_file is \"%s\"; its mode is %04o.",
							   path, (unsigned int) (st.st_mode & 07777)),
				 errhint("Run chmod 600 on it.")));
	real = realpath(path, NULL);
	realdata = realpath(DataDir, NULL);
	if (real != NULL && realdata != NULL &&
		strncmp(real, realdata, strlen(realdata)) == 0 &&
		(real[strlen(realdata)] == '/' || real[strlen(realdata)] == '\0'))
	{
		free(real);
		free(realdata);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the signing key file is inside the data directory"),
				 errdetail("Backups and replicas of the data directory would carry the key."),
				 errdetail_log("hipaa_audit.signing_key_file is \"%s\".", path),
				 errhint("Keep the key outside the data directory.")));
	}
	free(real);
	free(realdata);
	HaEd25519ReadKeyFile(path, priv, pub);
}

static char *
VerifierKey(const char *name, const uint8 *pub)
{
	uint8		id[4];
	uint8		blob[1 + HA_ED25519_KEY_LEN];

	KeyId(name, pub, id);
	blob[0] = ED25519_ALG;
	memcpy(blob + 1, pub, HA_ED25519_KEY_LEN);
	return psprintf("%s+%02x%02x%02x%02x+%s", name, id[0], id[1], id[2], id[3],
					Base64(blob, sizeof(blob)));
}

PG_FUNCTION_INFO_V1(verifier_key);

Datum
verifier_key(PG_FUNCTION_ARGS)
{
	uint8		priv[HA_ED25519_KEY_LEN];
	uint8		pub[HA_ED25519_KEY_LEN];

	(void) fcinfo;

	CheckKeyName(ha_signer_name);
	if (HaUseSigningAgent())
		HaAgentKey(ha_signer_name, pub);
	else
		LoadSigningKey(priv, pub);
	HaSecureZero(priv, sizeof(priv));
	PG_RETURN_TEXT_P(cstring_to_text(VerifierKey(ha_signer_name, pub)));
}

/* ----------------------------------------------------------------
 * Chain heads and the note body
 * ----------------------------------------------------------------
 */

static bool
Unhex(const char *s, uint8 *out, int len)
{
	for (int i = 0; i < len; i++)
	{
		unsigned int v;

		if (!isxdigit((unsigned char) s[2 * i]) || !isxdigit((unsigned char) s[2 * i + 1]) ||
			isupper((unsigned char) s[2 * i]) || isupper((unsigned char) s[2 * i + 1]))
			return false;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return false;
		out[i] = (uint8) v;
	}
	return s[2 * len] == '\0' || s[2 * len] == '\n';
}

/* ----------------------------------------------------------------
 * Note text: names in notes, and the one parser of note bodies
 *
 * A body is the origin line, the kind line ("checkpoint v1", "purge v1"),
 * then lines "<keyword> <value>" (docs/checkpoints.md, docs/retention.md).
 * Every place that reads a note reads it here, and every line must be one
 * its kind of note has: a line that is not is reported, never skipped.
 * ----------------------------------------------------------------
 */

/* The value of one lowercase hex digit, or -1. */
static int
HexDigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Can the character at s (len bytes left) go into a note as it is?
 * Printable ASCII other than backslash; in a UTF-8 database also a
 * well-formed multibyte character other than the C1 controls (U+0080 to
 * U+009F, NEL among them) and the Unicode line and paragraph separators
 * (U+2028, U+2029).  Returns its length in bytes, or 0.
 */
static int
NameCharLength(const unsigned char *s, size_t len)
{
	int			n;

	if (*s >= 0x20 && *s <= 0x7e)
		return *s == '\\' ? 0 : 1;
	if (*s < 0x80 || GetDatabaseEncoding() != PG_UTF8)
		return 0;
	n = pg_utf_mblen(s);
	if (n < 2 || (size_t) n > len || !pg_utf8_islegal(s, n))
		return 0;
	if (s[0] == 0xc2 && s[1] < 0xa0)
		return 0;				/* U+0080 to U+009F */
	if (n == 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9))
		return 0;				/* U+2028, U+2029 */
	return n;
}

/*
 * A name (table, schema, database, role) as it goes into a note: every
 * byte NameCharLength() does not pass becomes \xHH (lowercase hex), so no
 * name can add, end or split a line of a signed note, and ordinary names
 * read exactly as they always did.
 */
char *
HaNoteName(const char *name)
{
	StringInfoData buf;
	const unsigned char *p = (const unsigned char *) name;
	size_t		len = strlen(name);

	initStringInfo(&buf);
	while (len > 0)
	{
		int			n = NameCharLength(p, len);

		if (n > 0)
			appendBinaryStringInfo(&buf, (const char *) p, n);
		else
		{
			appendStringInfo(&buf, "\\x%02x", *p);
			n = 1;
		}
		p += n;
		len -= n;
	}
	return buf.data;
}

/*
 * The inverse: "\x" and two lowercase hex digits are that byte, every other
 * byte is itself (a note signed before names were encoded may hold a bare
 * backslash).
 */
static char *
NoteNameDecode(const char *s, size_t len)
{
	char	   *out = palloc(len + 1);
	size_t		o = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (s[i] == '\\' && i + 3 < len && s[i + 1] == 'x' &&
			HexDigit(s[i + 2]) >= 0 && HexDigit(s[i + 3]) >= 0)
		{
			out[o++] = (char) (HexDigit(s[i + 2]) * 16 + HexDigit(s[i + 3]));
			i += 3;
		}
		else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* A decimal count: digits only, no sign, no leading zero; -1 if not. */
static int64
ParseCount(const char *s, size_t len)
{
	int64		v = 0;

	if (len == 0 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9' ||
			pg_mul_s64_overflow(v, 10, &v) || pg_add_s64_overflow(v, s[i] - '0', &v))
			return -1;
	}
	return v;
}

/* 64 lowercase hex digits into a hash. */
static bool
ParseHash(const char *s, size_t len, uint8 *out)
{
	if (len != 2 * HA_HASH_LEN)
		return false;
	for (int i = 0; i < HA_HASH_LEN; i++)
	{
		int			hi = HexDigit(s[2 * i]);
		int			lo = HexDigit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8) (hi * 16 + lo);
	}
	return true;
}

/*
 * A time as timestamptz_out writes it with DateStyle ISO and TimeZone UTC:
 * "YYYY-MM-DD HH:MM:SS[.ffffff]+00[ BC]" (the year may have more digits).
 */
static bool
IsNoteTime(const char *s, size_t len)
{
	size_t		i = 0;
	size_t		digits = 0;
	static const char tail[] = "-dd-dd dd:dd:dd";

	while (i < len && isdigit((unsigned char) s[i]))
		i++, digits++;
	if (digits < 4)
		return false;
	for (const char *t = tail; *t; t++, i++)
	{
		if (i >= len)
			return false;
		if (*t == 'd' ? !isdigit((unsigned char) s[i]) : s[i] != *t)
			return false;
	}
	if (i < len && s[i] == '.')
	{
		size_t		f = 0;

		for (i++; i < len && isdigit((unsigned char) s[i]); i++)
			f++;
		if (f < 1 || f > 6)
			return false;
	}
	if (len - i == 3 && strncmp(s + i, "+00", 3) == 0)
		return true;
	return len - i == 6 && strncmp(s + i, "+00 BC", 6) == 0;
}

/* An interval as interval_out writes it with IntervalStyle postgres. */
static bool
IsNoteInterval(const char *s, size_t len)
{
	if (len == 0 || len > 200)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(isdigit((unsigned char) s[i]) || (s[i] >= 'a' && s[i] <= 'z') ||
			  s[i] == ' ' || s[i] == ':' || s[i] == '.' || s[i] == '-' || s[i] == '+'))
			return false;
	return true;
}

/* The keywords of body lines: each once at most, but chain lines any number. */
typedef enum NoteKeyword
{
	NK_TABLE,
	NK_DATABASE,
	NK_TIME,
	NK_BY,
	NK_RETENTION,
	NK_CUTOFF,
	NK_CHAINS,
	NK_ROWS,
	NK_CHAIN,
	NK_COUNT
} NoteKeyword;

static const struct
{
	const char *word;
	bool		in_checkpoint;	/* may appear in a checkpoint */
	bool		checkpoint_needs;	/* must appear in a checkpoint */
	bool		in_receipt;
	bool		receipt_needs;
}			note_keywords[NK_COUNT] =
{
	[NK_TABLE] = {"table", true, true, true, true},
	[NK_DATABASE] = {"database", true, true, true, true},
	[NK_TIME] = {"time", true, true, true, true},
	[NK_BY] = {"by", false, false, true, true},
	/* Optional in checkpoints: earlier ones have no retention line. */
	[NK_RETENTION] = {"retention", true, false, true, true},
	[NK_CUTOFF] = {"cutoff", false, false, true, true},
	[NK_CHAINS] = {"chains", true, true, false, false},
	[NK_ROWS] = {"rows", true, true, true, true},
	[NK_CHAIN] = {"chain", true, false, true, true},
};

/* One chain line: "chain <n> <position>" or "chain <n> <first> <last>", hash. */
static char *
ParseChainLine(const char *v, size_t len, HaNoteBody *nb)
{
	const char *f[4];
	size_t		flen[4];
	int			nf = nb->receipt ? 4 : 3;
	const char *p = v;
	const char *end = v + len;
	HaNoteChain *c;
	int64		n;

	/* Exactly nf fields, one space between each two. */
	for (int i = 0; i < nf; i++)
	{
		const char *sp = memchr(p, ' ', end - p);

		if ((sp == NULL) != (i == nf - 1))
			return nb->receipt ?
				pstrdup("it is not \"chain <n> <first position> <last position> <64 hex digits>\"") :
				pstrdup("it is not \"chain <n> <position> <64 hex digits>\"");
		f[i] = p;
		flen[i] = (sp ? sp : end) - p;
		p = sp ? sp + 1 : end;
	}
	if (nb->nchains >= HA_MAX_CHAINS)
		return psprintf("the note lists more than %d chains", HA_MAX_CHAINS);
	c = &nb->chain[nb->nchains];
	n = ParseCount(f[0], flen[0]);
	if (n < 0 || n >= HA_MAX_CHAINS || (!nb->receipt && nb->chains > 0 && n >= nb->chains))
		return pstrdup("its chain number is out of range");
	if (nb->nchains > 0 && n <= nb->chain[nb->nchains - 1].chain)
		return pstrdup("chain lines are not in increasing chain order");
	c->chain = (int32) n;
	c->first = ParseCount(f[1], flen[1]);
	c->last = nb->receipt ? ParseCount(f[2], flen[2]) : c->first;
	if (c->first < 1 || c->last < c->first)
		return pstrdup("its positions are not numbers, or out of order");
	if (!ParseHash(f[nf - 1], flen[nf - 1], c->hash))
		return pstrdup("its hash is not 64 lowercase hex digits");
	nb->nchains++;
	return NULL;
}

/*
 * Parse a note body (up to and including the newline before the blank
 * line) of the kind given.  Returns NULL, or what is wrong with it, naming
 * the line.
 */
char *
HaParseNoteBody(const char *body, bool receipt, HaNoteBody *nb)
{
	const char *kind = receipt ? "purge v1" : "checkpoint v1";
	const char *line = body;
	const char *eol;
	int			lineno = 0;
	bool		seen[NK_COUNT];
	const char *p;
	static const char bad_origin[] =
		"line 1 is not \"hipaa_audit/<system identifier>/<table identity>\"";

	memset(nb, 0, sizeof(*nb));
	memset(seen, 0, sizeof(seen));
	nb->receipt = receipt;
	nb->chains = -1;
	nb->rows = -1;

	/* hipaa_audit/<system identifier>/<table identity> */
	eol = strchr(line, '\n');
	if (eol == NULL || strncmp(line, "hipaa_audit/", 12) != 0)
		return pstrdup(bad_origin);
	p = line + 12;
	{
		const char *slash = memchr(p, '/', eol - p);

		if (slash == NULL || slash == p || (*p == '0' && slash - p > 1))
			return pstrdup(bad_origin);
		for (const char *d = p; d < slash; d++)
		{
			if (!isdigit((unsigned char) *d) ||
				nb->sysid > (PG_UINT64_MAX - (uint64) (*d - '0')) / 10)
				return pstrdup(bad_origin);
			nb->sysid = nb->sysid * 10 + (uint64) (*d - '0');
		}
		p = slash + 1;
		if (eol - p != 36)
			return pstrdup(bad_origin);
		for (int i = 0; i < 36; i++)
		{
			bool		dash = (i == 8 || i == 13 || i == 18 || i == 23);

			if (dash ? p[i] != '-' : HexDigit(p[i]) < 0)
				return pstrdup(bad_origin);
		}
		memcpy(nb->uuid, p, 36);
		nb->uuid[36] = '\0';
	}
	line = eol + 1;
	lineno = 2;
	eol = strchr(line, '\n');
	if (eol == NULL || (size_t) (eol - line) != strlen(kind) || strncmp(line, kind, eol - line) != 0)
		return psprintf("line 2 is not \"%s\": the note is not a hipaa_audit %s",
						kind, receipt ? "purge receipt" : "checkpoint");

	for (line = eol + 1; *line; line = eol + 1)
	{
		const char *sp;
		const char *v;
		size_t		vlen;
		int			k;
		char	   *problem = NULL;

		CHECK_FOR_INTERRUPTS();
		lineno++;
		eol = strchr(line, '\n');
		if (eol == NULL)
			return psprintf("line %d does not end with a newline", lineno);
		sp = memchr(line, ' ', eol - line);
		if (sp == NULL)
			return psprintf("line %d is not \"<keyword> <value>\"", lineno);
		for (k = 0; k < NK_COUNT; k++)
			if ((size_t) (sp - line) == strlen(note_keywords[k].word) &&
				strncmp(line, note_keywords[k].word, sp - line) == 0 &&
				(receipt ? note_keywords[k].in_receipt : note_keywords[k].in_checkpoint))
				break;
		if (k == NK_COUNT)
			return psprintf("line %d has the keyword \"%s\", which a %s does not have",
							lineno, HaNoteName(pnstrdup(line, sp - line)),
							receipt ? "purge receipt" : "checkpoint");
		if (seen[k] && k != NK_CHAIN)
			return psprintf("line %d repeats the %s line", lineno, note_keywords[k].word);
		seen[k] = true;
		v = sp + 1;
		vlen = eol - v;
		if (vlen == 0)
			return psprintf("line %d has an empty value", lineno);
		switch ((NoteKeyword) k)
		{
			case NK_TABLE:
				nb->table = NoteNameDecode(v, vlen);
				break;
			case NK_DATABASE:
				nb->database = NoteNameDecode(v, vlen);
				break;
			case NK_BY:
				nb->by = NoteNameDecode(v, vlen);
				break;
			case NK_TIME:
			case NK_CUTOFF:
				if (!IsNoteTime(v, vlen))
					problem = pstrdup("its value is not a time \"YYYY-MM-DD HH:MM:SS[.ffffff]+00\"");
				else if (k == NK_TIME)
					nb->time = pnstrdup(v, vlen);
				else
					nb->cutoff = pnstrdup(v, vlen);
				break;
			case NK_RETENTION:
				if (!IsNoteInterval(v, vlen))
					problem = pstrdup("its value is not an interval");
				else
					nb->retention = pnstrdup(v, vlen);
				break;
			case NK_CHAINS:
				nb->chains = (int32) Min(ParseCount(v, vlen), (int64) PG_INT32_MAX);
				if (nb->chains < 1 || nb->chains > HA_MAX_CHAINS || nb->nchains > 0)
					problem = psprintf("its value is not a number of chains from 1 to %d, before the chain lines",
									   HA_MAX_CHAINS);
				break;
			case NK_ROWS:
				nb->rows = ParseCount(v, vlen);
				if (nb->rows < 0)
					problem = pstrdup("its value is not a number");
				break;
			case NK_CHAIN:
				problem = ParseChainLine(v, vlen, nb);
				break;
			case NK_COUNT:
				break;
		}
		if (problem != NULL)
			return psprintf("line %d (%s): %s", lineno, note_keywords[k].word, problem);
	}
	for (int k = 0; k < NK_COUNT; k++)
		if (!seen[k] && (receipt ? note_keywords[k].receipt_needs : note_keywords[k].checkpoint_needs))
			return psprintf("the note has no %s line", note_keywords[k].word);
	return NULL;
}

/*
 * The body of a stored note (the note up to its first blank line), or NULL
 * when it has none.
 */
char *
HaNoteBodyOf(const char *note)
{
	const char *sep = strstr(note, "\n\n");

	return sep ? pnstrdup(note, sep - note + 1) : NULL;
}

/*
 * Find the row at (chain, seq) and return its stored hash; with seq < 0,
 * the chain's last row.  A fresh snapshot: committed rows only, no locks
 * beyond AccessShareLock, so writers are never blocked.
 */
static bool
FindRow(Relation rel, int32 chain, int64 seq, int64 *seq_out, uint8 *hash)
{
	HaShape    *shape = HaGetShape(rel);
	Oid			idxoid = HaChainIndexOf(rel, false);
	Relation	idx;
	Snapshot	snap;
	IndexScanDesc scan;
	ScanKeyData keys[2];
	TupleTableSlot *slot;
	bool		found = false;

	if (!OidIsValid(idxoid))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("protected table %s has lost its index on (%s, %s)",
						HaRelDisplayName(RelationGetRelid(rel)), HA_COL_CHAIN, HA_COL_SEQ)));
	idx = index_open(idxoid, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(chain));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(seq));
	scan = index_beginscan(rel, idx, snap, seq < 0 ? 1 : 2, 0);
	index_rescan(scan, keys, seq < 0 ? 1 : 2, NULL, 0);
	if (index_getnext_slot(scan, seq < 0 ? BackwardScanDirection : ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, shape->att_hash, &isnull);

		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);

			if (VARSIZE_ANY_EXHDR(b) == HA_HASH_LEN)
			{
				memcpy(hash, VARDATA_ANY(b), HA_HASH_LEN);
				found = true;
			}
		}
		d = slot_getattr(slot, shape->att_seq, &isnull);
		if (seq_out)
			*seq_out = isnull ? 0 : DatumGetInt64(d);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
	return found;
}

static char *
BuildBody(Relation rel, const HaProtectedEntry *entry)
{
	StringInfoData buf;
	char	   *uuid = DatumGetCString(DirectFunctionCall1(uuid_out,
														   UUIDPGetDatum((pg_uuid_t *) &entry->uuid)));
	int64		rows = 0;
	StringInfoData chains;
	Interval	retention;

	HaAnchor   *anchors = NULL;

	initStringInfo(&chains);
	for (int32 c = 0; c < entry->chains; c++)
	{
		int64		seq = 0;
		uint8		hash[HA_HASH_LEN];

		/*
		 * A chain purged to its end keeps its head: the purge's anchor, read
		 * after the miss (a purge's deletes and anchors commit together).
		 */
		if (!(FindRow(rel, c, -1, &seq, hash) && seq > 0))
		{
			if (anchors == NULL)
				anchors = HaLoadAnchors(&entry->uuid, NULL);
			seq = anchors[c].seq;
			memcpy(hash, anchors[c].hash, HA_HASH_LEN);
		}
		if (seq > 0)
		{
			appendStringInfo(&chains, "chain %d " INT64_FORMAT " %s\n", c, seq,
							 HaHex(hash, HA_HASH_LEN));
			rows += seq;
		}
	}

	initStringInfo(&buf);
	appendStringInfo(&buf, "hipaa_audit/" UINT64_FORMAT "/%s\n", GetSystemIdentifier(), uuid);
	appendStringInfo(&buf, "checkpoint v1\n");
	appendStringInfo(&buf, "table %s\n", HaNoteName(HaRelDisplayName(RelationGetRelid(rel))));
	appendStringInfo(&buf, "database %s\n", HaNoteName(get_database_name(MyDatabaseId)));
	appendStringInfo(&buf, "time %s\n",
					 DatumGetCString(DirectFunctionCall1(timestamptz_out,
														 TimestampTzGetDatum(GetCurrentTimestamp()))));
	/* The retention in force, as a purge receipt states it. */
	if (HaRegistryRetention(RelationGetRelid(rel), &retention, NULL))
		appendStringInfo(&buf, "retention %s\n",
						 DatumGetCString(DirectFunctionCall1(interval_out,
															 IntervalPGetDatum(&retention))));
	appendStringInfo(&buf, "chains %d\n", entry->chains);
	appendStringInfo(&buf, "rows " INT64_FORMAT "\n", rows);
	appendStringInfoString(&buf, chains.data);
	return buf.data;
}

/*
 * Sign a note body with the configured key: the body, a blank line and one
 * signature line (C2SP signed note).
 */
char *
HaSignNote(const char *body)
{
	uint8		priv[HA_ED25519_KEY_LEN];
	uint8		pub[HA_ED25519_KEY_LEN];
	uint8		sig[4 + HA_ED25519_SIG_LEN];

	CheckKeyName(ha_signer_name);
	if (HaUseSigningAgent())
		HaAgentSign(body, ha_signer_name, sig);	/* checked against its key */
	else
	{
		LoadSigningKey(priv, pub);
		KeyId(ha_signer_name, pub, sig);
		HaEd25519Sign(priv, (const uint8 *) body, strlen(body), sig + 4);
		HaSecureZero(priv, sizeof(priv));
	}
	return psprintf("%s\n" SIG_DASH "%s %s\n", body, ha_signer_name, Base64(sig, sizeof(sig)));
}

/* Fail now, before any work, if HaSignNote() would fail later. */
void
HaCheckSigningKey(void)
{
	uint8		priv[HA_ED25519_KEY_LEN];
	uint8		pub[HA_ED25519_KEY_LEN];

	CheckKeyName(ha_signer_name);
	if (HaUseSigningAgent())
	{
		HaAgentKey(ha_signer_name, pub);
		return;
	}
	LoadSigningKey(priv, pub);
	HaSecureZero(priv, sizeof(priv));
}

/* Sign, store and return a checkpoint of one protected table. */
static char *
TakeCheckpoint(Oid relid)
{
	const HaProtectedEntry *entry;
	Relation	rel;
	char	   *body;
	char	   *note;
	int			nestlevel;
	Oid			argtypes[4] = {UUIDOID, REGCLASSOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[4];

	HaCheckRelationExists(relid);
	entry = HaRequireProtected(relid, "Only tables registered with hipaa_audit.protect() have chains to checkpoint.");
	if (!HaRelOwnerCheck(relid, GetUserId()) && !HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to checkpoint table %s", HaRelDisplayName(relid)),
				 errdetail("Only the table's owner or a member of %s may checkpoint it.", HA_ADMIN_ROLE)));
	CheckKeyName(ha_signer_name);

	HaPinDateSettings(&nestlevel);
	rel = table_open(relid, AccessShareLock);
	body = BuildBody(rel, entry);
	table_close(rel, AccessShareLock);
	AtEOXact_GUC(true, nestlevel);

	note = HaSignNote(body);

	/* Stored insert-only and hash-chained; one writer at a time. */
	HaRunAsExtensionOwner("LOCK TABLE hipaa_audit.checkpoints IN EXCLUSIVE MODE",
						  0, NULL, NULL);
	values[0] = UUIDPGetDatum((pg_uuid_t *) &entry->uuid);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[3] = CStringGetTextDatum(note);
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.checkpoints "
						  "(table_uuid, relid, created_at, note, prev_hash, hash) "
						  "SELECT $1, $2, $3, $4, p.h, pg_catalog.sha256("
						  "'\\x68697061615f61756469742f636865636b706f696e742f763100'::pg_catalog.bytea "
						  "OPERATOR(pg_catalog.||) p.h OPERATOR(pg_catalog.||) pg_catalog.convert_to($4, 'UTF8')) "
						  "FROM (SELECT COALESCE((SELECT hash FROM hipaa_audit.checkpoints "
						  "ORDER BY id DESC LIMIT 1), "
						  "'\\x0000000000000000000000000000000000000000000000000000000000000000'::pg_catalog.bytea) AS h) p",
						  4, argtypes, values);
	return note;
}

PG_FUNCTION_INFO_V1(checkpoint);

Datum
checkpoint(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.checkpoint must not be null")));
	PG_RETURN_TEXT_P(cstring_to_text(TakeCheckpoint(PG_GETARG_OID(0))));
}

PG_FUNCTION_INFO_V1(checkpoint_all);

/*
 * checkpoint_all() -> setof (tbl, note): every protected table, by name.
 */
Datum
checkpoint_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *relids = HaProtectedRelids();
	List	   *sorted = NIL;
	ListCell   *lc;

	if (!HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to checkpoint every protected table"),
				 errdetail("Only members of %s may; table owners can checkpoint their own tables.",
						   HA_ADMIN_ROLE)));
	InitMaterializedSRF(fcinfo, 0);

	/* By name, so that the order does not depend on OIDs. */
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		ListCell   *pos;
		int			i = 0;

		foreach(pos, sorted)
		{
			if (strcmp(HaRelDisplayName(relid), HaRelDisplayName(lfirst_oid(pos))) < 0)
				break;
			i++;
		}
		sorted = list_insert_nth_oid(sorted, i, relid);
	}
	foreach(lc, sorted)
	{
		Oid			relid = lfirst_oid(lc);
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = ObjectIdGetDatum(relid);
		values[1] = CStringGetTextDatum(TakeCheckpoint(relid));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Verifying a note
 * ----------------------------------------------------------------
 */

typedef struct NoteCheck
{
	const char *status;
	char	   *detail;
	Oid			relid;
} NoteCheck;

static bool
Fail(NoteCheck *nc, const char *status, char *detail)
{
	nc->status = status;
	nc->detail = detail;
	return false;
}

/* Parse "<name>+<8 hex>+<base64(0x01 || 32-byte key)>". */
static bool
ParseVerifierKey(const char *key, char **name, uint8 id[4], uint8 pub[HA_ED25519_KEY_LEN],
				 NoteCheck *nc)
{
	const char *p1 = strchr(key, '+');
	const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
	uint8		blob[1 + HA_ED25519_KEY_LEN + 4];
	uint8		computed[4];
	int			n;

	/* The key data is base64 and may itself contain "+". */
	if (p1 == NULL || p2 == NULL || p1 == key || p2 - p1 != 9)
		return Fail(nc, "malformed_key", pstrdup("a verifier key is <name>+<8 hex digits>+<base64 key>"));
	*name = pnstrdup(key, p1 - key);
	for (const char *p = *name; *p; p++)
		if ((unsigned char) *p <= ' ')
			return Fail(nc, "malformed_key", pstrdup("the key name contains a space or control character"));
	{
		char		hex[9];

		memcpy(hex, p1 + 1, 8);
		hex[8] = '\0';
		if (!Unhex(hex, id, 4))
			return Fail(nc, "malformed_key", pstrdup("the key ID is not 8 lowercase hex digits"));
	}
	n = Unbase64(p2 + 1, strlen(p2 + 1), blob, sizeof(blob));
	if (n != 1 + HA_ED25519_KEY_LEN || blob[0] != ED25519_ALG)
		return Fail(nc, "malformed_key", pstrdup("the key is not base64 of 0x01 and a 32-byte Ed25519 public key"));
	memcpy(pub, blob + 1, HA_ED25519_KEY_LEN);
	KeyId(*name, pub, computed);
	if (memcmp(computed, id, 4) != 0)
		return Fail(nc, "malformed_key", pstrdup("the key ID does not match the name and key"));
	return true;
}

/*
 * A note split once into its body and its signature lines; every signature
 * line checked for form, whoever signed it.
 */
typedef struct NoteSignature
{
	char	   *name;
	uint8		blob[4 + HA_ED25519_SIG_LEN + 4];	/* key ID || signature */
	int			len;
} NoteSignature;

typedef struct SplitNote
{
	char	   *body;
	int			nsigs;
	NoteSignature sigs[NOTE_MAX_SIGNATURES];
} SplitNote;

static void
CheckNoteLength(Size len)
{
	if (len > NOTE_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("note is too long"),
				 errdetail("The note has %zu bytes; at most %d are accepted.",
						   (size_t) len, NOTE_MAX_LEN),
				 errhint("A checkpoint or purge receipt is far shorter; check that the note given is one.")));
}

static void
CheckKeyLength(Size len)
{
	if (len > KEY_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("verifier key is too long"),
				 errdetail("The key has %zu bytes; at most %d are accepted.",
						   (size_t) len, KEY_MAX_LEN),
				 errhint("A verifier key is <name>+<8 hex key ID>+<base64(0x01 || Ed25519 public key)>.")));
}

/* The length of a text argument, without detoasting it. */
static Size
TextLength(Datum d)
{
	return toast_raw_datum_size(d) - VARHDRSZ;
}

static bool
SplitNoteText(const char *note, SplitNote *sn, NoteCheck *nc)
{
	size_t		len = strlen(note);
	const char *sep;
	const char *p;

	CheckNoteLength(len);
	sn->nsigs = 0;
	if (strchr(note, '\r') != NULL)
		return Fail(nc, "malformed_note", pstrdup("the note contains a carriage return"));
	if (len == 0 || note[len - 1] != '\n')
		return Fail(nc, "malformed_note", pstrdup("the note does not end with a newline"));
	sep = strstr(note, "\n\n");
	if (sep == NULL)
		return Fail(nc, "malformed_note", pstrdup("the note has no blank line before its signatures"));
	sn->body = pnstrdup(note, sep - note + 1);

	for (p = sep + 2; *p;)
	{
		const char *eol = strchr(p, '\n');
		const char *sp;
		NoteSignature *sig;

		CHECK_FOR_INTERRUPTS();
		if (sn->nsigs >= NOTE_MAX_SIGNATURES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("note has too many signature lines"),
					 errdetail("At most %d signature lines are accepted.", NOTE_MAX_SIGNATURES),
					 errhint("Keep the signature lines of the keys to check: the others can be removed without changing what they sign.")));
		if (strncmp(p, SIG_DASH, strlen(SIG_DASH)) != 0)
			return Fail(nc, "malformed_note", pstrdup("a signature line does not start with an em dash and a space"));
		p += strlen(SIG_DASH);
		sp = memchr(p, ' ', eol - p);
		if (sp == NULL || sp == p)
			return Fail(nc, "malformed_note", pstrdup("a signature line has no name and signature"));
		sig = &sn->sigs[sn->nsigs];
		sig->name = pnstrdup(p, sp - p);
		sig->len = Unbase64(sp + 1, eol - sp - 1, sig->blob, sizeof(sig->blob));
		if (sig->len < 5)
			return Fail(nc, "malformed_note", pstrdup("a signature is not valid base64"));
		sn->nsigs++;
		p = eol + 1;
	}
	return true;
}

/*
 * Check a note's signature by one key.  Signature lines other than the
 * key's are ignored (co-signers); of the key's, the first counts.
 */
static bool
CheckSignature(const SplitNote *sn, const char *name, const uint8 *id, const uint8 *pub,
			   NoteCheck *nc)
{
	for (int i = 0; i < sn->nsigs; i++)
	{
		const NoteSignature *sig = &sn->sigs[i];

		CHECK_FOR_INTERRUPTS();
		if (strcmp(sig->name, name) != 0 || memcmp(sig->blob, id, 4) != 0)
			continue;
		if (sig->len != 4 + HA_ED25519_SIG_LEN)
			return Fail(nc, "bad_signature", pstrdup("the signature has the wrong length"));
		if (!HaEd25519Verify(pub, (const uint8 *) sn->body, strlen(sn->body), sig->blob + 4))
			return Fail(nc, "bad_signature",
						psprintf("the signature by %s does not match the note", name));
		return true;
	}
	return Fail(nc, "unknown_key", psprintf("the note has no signature by key %s", name));
}

/*
 * The protected table a note's origin line names, or NULL after Fail().
 */
static const HaProtectedEntry *
NoteTable(const HaNoteBody *nb, NoteCheck *nc)
{
	const HaProtectedEntry *entry = NULL;
	bool		other_cluster;
	List	   *relids;
	ListCell   *lc;

	/*
	 * Another cluster's note is fine for a restored copy of the same table
	 * (same identity, pg_dump/pg_restore into a new cluster); without such a
	 * table it is another cluster's business.
	 */
	other_cluster = (nb->sysid != GetSystemIdentifier());

	relids = HaProtectedRelids();
	foreach(lc, relids)
	{
		const HaProtectedEntry *e = HaLookupProtected(lfirst_oid(lc));
		char	   *u = DatumGetCString(DirectFunctionCall1(uuid_out,
															UUIDPGetDatum((pg_uuid_t *) &e->uuid)));

		if (strcmp(u, nb->uuid) == 0)
			entry = e;
	}
	if (entry == NULL && other_cluster)
	{
		Fail(nc, "other_cluster",
			 psprintf("the note is from database cluster " UINT64_FORMAT ", this is " UINT64_FORMAT ", and no table here has identity %s",
					  nb->sysid, GetSystemIdentifier(), nb->uuid));
		return NULL;
	}
	if (entry == NULL)
	{
		Fail(nc, "unknown_table",
			 psprintf("no protected table in this database has identity %s", nb->uuid));
		return NULL;
	}
	nc->relid = entry->relid;
	if (other_cluster)
		nc->detail = psprintf("signed in database cluster " UINT64_FORMAT "; this is " UINT64_FORMAT ", holding a restored copy of the table",
							  nb->sysid, GetSystemIdentifier());
	return entry;
}

/* Check a signed checkpoint body against the table it names. */
static bool
CheckBody(const char *body, NoteCheck *nc)
{
	HaNoteBody *nb = palloc(sizeof(HaNoteBody));
	char	   *problem = HaParseNoteBody(body, false, nb);
	const HaProtectedEntry *entry;
	Relation	rel;
	HaAnchor   *anchors;

	if (problem != NULL)
		return Fail(nc, "malformed_note", problem);
	entry = NoteTable(nb, nc);
	if (entry == NULL)
		return false;
	rel = table_open(entry->relid, AccessShareLock);
	anchors = HaLoadAnchors(&entry->uuid, NULL);
	for (int i = 0; i < nb->nchains; i++)
	{
		int32		chain = nb->chain[i].chain;
		int64		seq = nb->chain[i].last;
		uint8		have[HA_HASH_LEN];

		CHECK_FOR_INTERRUPTS();
		if (!FindRow(rel, chain, seq, NULL, have))
		{
			/* Anchors read after the miss, again if stale (a purge just committed). */
			if (seq > anchors[chain].seq)
				anchors = HaLoadAnchors(&entry->uuid, NULL);
			/* Purged lawfully: a receipt covers it; at its end, the anchor. */
			if (seq <= anchors[chain].seq)
			{
				if (seq < anchors[chain].seq)
					continue;
				memcpy(have, anchors[chain].hash, HA_HASH_LEN);
			}
			else
			{
				table_close(rel, AccessShareLock);
				return Fail(nc, "rows_missing",
							psprintf("chain %d has no row at position " INT64_FORMAT ", which the checkpoint recorded",
									 chain, seq));
			}
		}
		if (memcmp(nb->chain[i].hash, have, HA_HASH_LEN) != 0)
		{
			table_close(rel, AccessShareLock);
			return Fail(nc, "table_rewritten",
						psprintf("chain %d position " INT64_FORMAT " holds a different row than the checkpoint recorded",
								 chain, seq));
		}
	}
	table_close(rel, AccessShareLock);

	/* The rows up to the recorded heads must also verify. */
	{
		int64		problems = HaVerifyCount(entry->relid);

		if (problems > 0)
			return Fail(nc, "table_rewritten",
						psprintf("the recorded heads are present, but verify() reports " INT64_FORMAT " problem(s) in the chains",
								 problems));
	}
	return true;
}

static void ScanStoredCheckpoints(const pg_uuid_t *uuid,
								  void (*fn) (void *arg, int64 id, const HaNoteBody *nb,
											  const char *problem),
								  void *arg);

/*
 * A receipt against the stored checkpoints of its table that state a
 * retention: retention is only ever raised, so the rows a purge removed were
 * past the retention any earlier checkpoint states.  A receipt that
 * contradicts one (the registry's retention lowered behind the extension's
 * back, then a genuine purge) is reported.
 */
typedef struct RetentionCheck
{
	TimestampTz time;			/* the receipt's */
	TimestampTz cutoff;
	Interval   *retention;
	int64		contradicted;	/* first stored checkpoint contradicted, or 0 */
	char	   *detail;
} RetentionCheck;

static TimestampTz
NoteTime(const char *text)
{
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
}

static Interval *
NoteInterval(const char *text)
{
	return DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(text),
												 ObjectIdGetDatum(InvalidOid),
												 Int32GetDatum(-1)));
}

static void
CheckRetentionAgainst(void *arg, int64 id, const HaNoteBody *nb, const char *problem)
{
	RetentionCheck *rc = (RetentionCheck *) arg;
	Interval   *stated;
	TimestampTz kept_until;

	/* verify() reports a stored checkpoint it cannot read. */
	if (problem != NULL || nb->retention == NULL || rc->contradicted != 0)
		return;
	if (NoteTime(nb->time) >= rc->time)
		return;
	stated = NoteInterval(nb->retention);

	/*
	 * The newest row removed was inserted before the cutoff; the stated
	 * retention kept it until cutoff + retention, which must not be after
	 * the purge.  (Added, not subtracted from the purge's time: month
	 * arithmetic clamps to the end of a month, and a purge that runs past
	 * midnight at a month's end must not look early.)
	 */
	kept_until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														 TimestampTzGetDatum(rc->cutoff),
														 IntervalPGetDatum(stated)));
	if (kept_until > rc->time)
	{
		rc->contradicted = id;
		rc->detail = psprintf("stored checkpoint " INT64_FORMAT " of %s states a retention of %s; the receipt states %s and cutoff %s, removing rows that retention kept",
							  id, nb->time, nb->retention,
							  DatumGetCString(DirectFunctionCall1(interval_out,
																  IntervalPGetDatum(rc->retention))),
							  DatumGetCString(DirectFunctionCall1(timestamptz_out,
																  TimestampTzGetDatum(rc->cutoff))));
	}
}

/*
 * Check a signed purge receipt body: the database recorded every chain range
 * it lists, and the table verifies, each chain starting from its anchor.
 */
static bool
CheckReceiptBody(const char *body, NoteCheck *nc)
{
	HaNoteBody *nb = palloc(sizeof(HaNoteBody));
	char	   *problem = HaParseNoteBody(body, true, nb);
	const HaProtectedEntry *entry;

	if (problem != NULL)
		return Fail(nc, "malformed_note", problem);
	entry = NoteTable(nb, nc);
	if (entry == NULL)
		return false;
	for (int i = 0; i < nb->nchains; i++)
	{
		const HaNoteChain *c = &nb->chain[i];

		CHECK_FOR_INTERRUPTS();
		if (!HaAnchorRecorded(&entry->uuid, c->chain, c->first, c->last, c->hash))
			return Fail(nc, "not_recorded",
						psprintf("this database has no record of removing positions " INT64_FORMAT " to " INT64_FORMAT " of chain %d with this anchor",
								 c->first, c->last, c->chain));
	}

	/* Earlier checkpoints that state a longer retention contradict it. */
	{
		RetentionCheck rc;
		int			nestlevel;

		HaPinDateSettings(&nestlevel);
		memset(&rc, 0, sizeof(rc));
		rc.time = NoteTime(nb->time);
		rc.cutoff = NoteTime(nb->cutoff);
		rc.retention = NoteInterval(nb->retention);
		ScanStoredCheckpoints(&entry->uuid, CheckRetentionAgainst, &rc);
		AtEOXact_GUC(true, nestlevel);
		if (rc.contradicted != 0)
			return Fail(nc, "retention_contradicted", rc.detail);
	}

	/* The rows kept must continue from the anchors and verify. */
	{
		int64		problems = HaVerifyCount(entry->relid);

		if (problems > 0)
			return Fail(nc, "table_rewritten",
						psprintf("the purge is on record, but verify() reports " INT64_FORMAT " problem(s) in the chains",
								 problems));
	}
	return true;
}

typedef bool (*BodyCheck) (const char *body, NoteCheck *nc);

/*
 * The check behind verify_checkpoint() and verify_receipt(): at least quorum
 * of the given keys signed the note (each signer counted once; a line that
 * names one of the keys but does not verify fails the whole check), and
 * check_body accepts what was signed.  signers collects the names that
 * signed.  The note is split once, whatever the number of keys.
 */
static bool
CheckNote(const char *note, char **keys, int nkeys, int quorum, NoteCheck *nc,
		  ArrayBuildState **signers, BodyCheck check_body)
{
	uint8		(*seen)[HA_ED25519_KEY_LEN] = palloc(sizeof(*seen) * nkeys);
	int			valid = 0;
	SplitNote  *sn = palloc(sizeof(SplitNote));
	bool		split = false;
	NoteCheck	last;

	memset(nc, 0, sizeof(*nc));
	nc->status = "ok";
	memset(&last, 0, sizeof(last));
	for (int i = 0; i < nkeys; i++)
	{
		char	   *name;
		uint8		id[4];
		uint8		pub[HA_ED25519_KEY_LEN];
		bool		repeated = false;

		CHECK_FOR_INTERRUPTS();
		memset(&last, 0, sizeof(last));
		if (keys[i] == NULL)
			return Fail(nc, "malformed_key", pstrdup("a key is NULL"));
		if (!ParseVerifierKey(keys[i], &name, id, pub, &last))
		{
			*nc = last;
			return false;
		}
		/* Once, after the first key reads (a bad key is reported first). */
		if (!split)
		{
			if (!SplitNoteText(note, sn, nc))
				return false;
			split = true;
		}
		if (!CheckSignature(sn, name, id, pub, &last))
		{
			if (strcmp(last.status, "unknown_key") != 0)
			{
				*nc = last;
				return false;
			}
			continue;
		}
		for (int j = 0; j < valid; j++)
			if (memcmp(seen[j], pub, HA_ED25519_KEY_LEN) == 0)
				repeated = true;
		if (repeated)
			continue;
		memcpy(seen[valid], pub, HA_ED25519_KEY_LEN);
		valid++;
		*signers = accumArrayResult(*signers, CStringGetTextDatum(name), false,
									TEXTOID, CurrentMemoryContext);
	}
	if (valid < quorum)
	{
		/* With one key, say why that key did not count. */
		if (nkeys == 1)
		{
			*nc = last;
			return false;
		}
		return Fail(nc, "quorum_not_met",
					psprintf("%d distinct signers of the %d keys signed the note; %d required",
							 valid, nkeys, quorum));
	}
	return check_body(sn->body, nc);
}

static Datum
NoteResult(FunctionCallInfo fcinfo, bool ok, NoteCheck *nc, ArrayBuildState *signers,
		   bool with_signers)
{
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = BoolGetDatum(ok);
	values[1] = CStringGetTextDatum(nc->status);
	values[2] = ObjectIdGetDatum(nc->relid);
	nulls[2] = !OidIsValid(nc->relid);
	values[3] = nc->detail ? CStringGetTextDatum(nc->detail) : (Datum) 0;
	nulls[3] = (nc->detail == NULL);
	if (with_signers)
		values[4] = signers ? makeArrayResult(signers, CurrentMemoryContext) :
			PointerGetDatum(construct_empty_array(TEXTOID));
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

/*
 * The four SQL entry points: (note, key) or (note, keys[], quorum), for a
 * checkpoint or a purge receipt.  The single-key form is a quorum of one.
 * Sizes are checked before anything is detoasted or copied.
 */
static Datum
VerifyNote(FunctionCallInfo fcinfo, const char *fname, BodyCheck check_body)
{
	bool		quorum_form = (PG_NARGS() == 3);
	NoteCheck	nc;
	ArrayBuildState *signers = NULL;
	char	  **keys;
	int			nkeys = 1;
	int32		quorum = 1;
	bool		ok;

	for (int i = 0; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("arguments of hipaa_audit.%s must not be null", fname)));
	CheckNoteLength(TextLength(PG_GETARG_DATUM(0)));
	if (quorum_form)
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *elemnulls;

		nkeys = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
		if (nkeys > NOTE_MAX_KEYS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many verifier keys"),
					 errdetail("%d keys were given; at most %d are accepted.", nkeys, NOTE_MAX_KEYS),
					 errhint("Give the keys of the signers the quorum counts.")));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elemnulls, &nkeys);
		quorum = PG_GETARG_INT32(2);
		if (quorum < 1 || quorum > nkeys)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("quorum must be between 1 and the number of keys (%d)", nkeys)));
		keys = palloc(sizeof(char *) * nkeys);
		/* NULL entries are kept: CheckNote reports them. */
		for (int i = 0; i < nkeys; i++)
		{
			CHECK_FOR_INTERRUPTS();
			keys[i] = NULL;
			if (elemnulls[i])
				continue;
			CheckKeyLength(TextLength(elems[i]));
			keys[i] = TextDatumGetCString(elems[i]);
		}
	}
	else
	{
		CheckKeyLength(TextLength(PG_GETARG_DATUM(1)));
		keys = palloc(sizeof(char *));
		keys[0] = text_to_cstring(PG_GETARG_TEXT_PP(1));
	}
	ok = CheckNote(text_to_cstring(PG_GETARG_TEXT_PP(0)), keys, nkeys, quorum, &nc, &signers,
				   check_body);
	return NoteResult(fcinfo, ok, &nc, signers, quorum_form);
}

PG_FUNCTION_INFO_V1(verify_checkpoint);
PG_FUNCTION_INFO_V1(verify_checkpoint_quorum);
PG_FUNCTION_INFO_V1(verify_receipt);
PG_FUNCTION_INFO_V1(verify_receipt_quorum);

/* verify_checkpoint(note, key) -> (ok, status, tbl, detail) */
Datum
verify_checkpoint(PG_FUNCTION_ARGS)
{
	return VerifyNote(fcinfo, "verify_checkpoint", CheckBody);
}

/* verify_checkpoint(note, keys[], quorum) -> (ok, status, tbl, detail, signers) */
Datum
verify_checkpoint_quorum(PG_FUNCTION_ARGS)
{
	return VerifyNote(fcinfo, "verify_checkpoint", CheckBody);
}

/* verify_receipt(note, key) -> (ok, status, tbl, detail) */
Datum
verify_receipt(PG_FUNCTION_ARGS)
{
	return VerifyNote(fcinfo, "verify_receipt", CheckReceiptBody);
}

/* verify_receipt(note, keys[], quorum) -> (ok, status, tbl, detail, signers) */
Datum
verify_receipt_quorum(PG_FUNCTION_ARGS)
{
	return VerifyNote(fcinfo, "verify_receipt", CheckReceiptBody);
}

/* ----------------------------------------------------------------
 * Co-signing: trusted keys and their signatures on stored checkpoints
 * ----------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(trust_key);

/*
 * trust_key(verifier_key): register an outside signer (a compliance
 * officer's key, a second site) whose co-signatures cosign() accepts.
 */
Datum
trust_key(PG_FUNCTION_ARGS)
{
	char	   *key;
	char	   *name;
	uint8		id[4];
	uint8		pub[HA_ED25519_KEY_LEN];
	NoteCheck	nc;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, NAMEOID};
	Datum		values[3];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument of hipaa_audit.trust_key must not be null")));
	if (!HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to register a trusted key"),
				 errdetail("Only members of %s may.", HA_ADMIN_ROLE)));
	CheckKeyLength(TextLength(PG_GETARG_DATUM(0)));
	key = text_to_cstring(PG_GETARG_TEXT_PP(0));
	memset(&nc, 0, sizeof(nc));
	if (!ParseVerifierKey(key, &name, id, pub, &nc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid verifier key"),
				 errdetail("%s", nc.detail),
				 errhint("A verifier key is <name>+<8 hex key ID>+<base64(0x01 || Ed25519 public key)>.")));
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(key);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.trusted_keys (name, verifier_key, added_at, added_by) "
						  "VALUES ($1, $2, pg_catalog.clock_timestamp(), $3)",
						  3, argtypes, values);
	PG_RETURN_VOID();
}

/* A trusted key of the signer's name, checked against one co-signature. */
typedef struct TrustedKeyCheck
{
	const char *name;
	const uint8 *sigblob;		/* key ID || signature */
	const char *body;
	bool		verified;
} TrustedKeyCheck;

static void
CheckTrustedKey(void *arg, HeapTuple tup, TupleDesc desc)
{
	TrustedKeyCheck *kc = (TrustedKeyCheck *) arg;
	char	   *kname;
	uint8		id[4];
	uint8		pub[HA_ED25519_KEY_LEN];
	NoteCheck	nc;
	char	   *key;

	CHECK_FOR_INTERRUPTS();
	if (kc->verified)
		return;
	key = SPI_getvalue(tup, desc, 1);
	memset(&nc, 0, sizeof(nc));
	if (key != NULL && ParseVerifierKey(key, &kname, id, pub, &nc) &&
		memcmp(id, kc->sigblob, 4) == 0)
		kc->verified = HaEd25519Verify(pub, (const uint8 *) kc->body,
									   strlen(kc->body), kc->sigblob + 4);
}

PG_FUNCTION_INFO_V1(cosign);

/*
 * cosign(checkpoint_id, signature_line) -> the note with every signature.
 * The line must verify against a registered trusted key of its name.
 */
Datum
cosign(PG_FUNCTION_ARGS)
{
	int64		cpid;
	char	   *line;
	char	   *note;
	char	   *body;
	char	   *name;
	const char *p;
	const char *sp;
	uint8		sigblob[4 + HA_ED25519_SIG_LEN + 4];
	int			n;
	bool		verified = false;
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char	   *result;
	bool		found;
	TrustedKeyCheck keys;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of hipaa_audit.cosign must not be null")));
	if (!HaIsAuditAdmin(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to add a co-signature"),
				 errdetail("Only members of %s may.", HA_ADMIN_ROLE)));
	cpid = PG_GETARG_INT64(0);
	if (TextLength(PG_GETARG_DATUM(1)) > KEY_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("signature line is too long"),
				 errdetail("At most %d bytes are accepted.", KEY_MAX_LEN),
				 errhint("A signature line is an em dash (U+2014), a space, the signer's name, a space and base64 of key ID and signature.")));
	line = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strlen(line) > 0 && line[strlen(line) - 1] != '\n')
		line = psprintf("%s\n", line);

	/* The stored note (read as the extension owner: auditors may not write). */
	values[0] = Int64GetDatum(cpid);
	note = HaQueryText("SELECT note FROM hipaa_audit.checkpoints WHERE id OPERATOR(pg_catalog.=) $1",
					   1, argtypes, values, HA_SQL_READ_ONLY, &found);
	if (!found || note == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("checkpoint " INT64_FORMAT " does not exist", cpid)));
	body = HaNoteBodyOf(note);
	if (body == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored checkpoint " INT64_FORMAT " has no blank line before its signature", cpid)));
	/* Room for one more line in the note checkpoint_note() returns. */
	if (HaRunAsExtensionOwnerInt8("SELECT count(*) FROM hipaa_audit.cosignatures "
								  "WHERE checkpoint_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values) + 2 > NOTE_MAX_SIGNATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("checkpoint " INT64_FORMAT " has too many co-signatures", cpid),
				 errdetail("A note carries at most %d signature lines.", NOTE_MAX_SIGNATURES)));

	/* "— <name> <base64>\n" */
	if (strncmp(line, SIG_DASH, strlen(SIG_DASH)) != 0 || strchr(line, '\r') != NULL ||
		strchr(line, '\n') != line + strlen(line) - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signature line"),
				 errdetail("A signature line is an em dash (U+2014), a space, the signer's name, a space and base64 of key ID and signature.")));
	p = line + strlen(SIG_DASH);
	sp = strchr(p, ' ');
	if (sp == NULL || sp == p)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signature line"),
				 errdetail("It has no name and signature.")));
	name = pnstrdup(p, sp - p);
	n = Unbase64(sp + 1, strlen(sp + 1) - 1, sigblob, sizeof(sigblob));
	if (n != 4 + HA_ED25519_SIG_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signature line"),
				 errdetail("The signature is not base64 of a 4-byte key ID and a 64-byte Ed25519 signature.")));

	/* Against every registered key of that name with that key ID. */
	values[0] = CStringGetTextDatum(name);
	keys.name = name;
	keys.sigblob = sigblob;
	keys.body = body;
	keys.verified = false;
	(void) HaRunSql("SELECT verifier_key FROM hipaa_audit.trusted_keys "
					"WHERE name OPERATOR(pg_catalog.=) $1",
					1, &argtypes[1], values, NULL, InvalidOid, HA_SQL_READ_ONLY,
					CheckTrustedKey, &keys);
	verified = keys.verified;
	if (!verified)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the co-signature by \"%s\" does not verify against a trusted key", name),
				 errhint("Register the signer's verifier key with hipaa_audit.trust_key() first.")));

	values[0] = Int64GetDatum(cpid);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(line);
	HaRunAsExtensionOwner("INSERT INTO hipaa_audit.cosignatures (checkpoint_id, signer, line, added_at) "
						  "VALUES ($1, $2, $3, pg_catalog.clock_timestamp())",
						  3, argtypes, values);

	/* The note with every signature line it has now (a fresh snapshot). */
	values[0] = Int64GetDatum(cpid);
	result = HaQueryText("SELECT hipaa_audit.checkpoint_note($1)",
						 1, argtypes, values, 0, &found);
	if (result == NULL)
		elog(ERROR, "could not read the co-signed note");
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/*
 * Call fn for every stored checkpoint of a table (by identity), with its
 * body parsed, or with what is wrong with it.  One note in memory at a time.
 */
static void
ScanStoredCheckpoints(const pg_uuid_t *uuid,
					  void (*fn) (void *arg, int64 id, const HaNoteBody *nb, const char *problem),
					  void *arg)
{
	Oid			cprelid = get_relname_relid("checkpoints", HaSchemaOid());
	Relation	cprel;
	Snapshot	snap;
	TableScanDesc scan;
	TupleTableSlot *slot;
	HaNoteBody *nb;
	char	   *uuidtext;

	if (!OidIsValid(cprelid))
		return;
	nb = palloc(sizeof(HaNoteBody));
	uuidtext = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) uuid)));
	cprel = table_open(cprelid, AccessShareLock);
	snap = RegisterSnapshot(GetTransactionSnapshot());
	scan = table_beginscan(cprel, snap, 0, NULL);
	slot = table_slot_create(cprel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		u = slot_getattr(slot, 2, &isnull);
		int64		id;
		char	   *body;
		char	   *problem;

		CHECK_FOR_INTERRUPTS();
		if (isnull || memcmp(DatumGetUUIDP(u)->data, uuid->data, UUID_LEN) != 0)
			continue;
		id = DatumGetInt64(slot_getattr(slot, 1, &isnull));
		body = HaNoteBodyOf(TextDatumGetCString(slot_getattr(slot, 5, &isnull)));
		problem = body ? HaParseNoteBody(body, false, nb) :
			pstrdup("it has no blank line before its signature");
		if (problem == NULL && strcmp(nb->uuid, uuidtext) != 0)
			problem = psprintf("its origin line names table identity %s", nb->uuid);
		fn(arg, id, nb, problem);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(cprel, AccessShareLock);
}

typedef struct StoredHeadsCheck
{
	const HaProtectedEntry *entry;
	Relation	rel;
	HaAnchor   *anchors;
	int64		checked;
	void		(*report) (void *arg, int32 chain, int64 seq,
						   const char *kind, const char *detail);
	void	   *arg;
} StoredHeadsCheck;

static void
CheckStoredHeads(void *arg, int64 id, const HaNoteBody *nb, const char *problem)
{
	StoredHeadsCheck *sc = (StoredHeadsCheck *) arg;

	sc->checked++;
	if (problem != NULL)
	{
		sc->report(sc->arg, -1, -1, "checkpoint_malformed",
				   psprintf("stored checkpoint " INT64_FORMAT " cannot be read: %s", id, problem));
		return;
	}
	for (int i = 0; i < nb->nchains; i++)
	{
		int32		chain = nb->chain[i].chain;
		int64		seq = nb->chain[i].last;
		const uint8 *want = nb->chain[i].hash;
		uint8		have[HA_HASH_LEN];

		CHECK_FOR_INTERRUPTS();
		if (FindRow(sc->rel, chain, seq, NULL, have))
		{
			if (memcmp(want, have, HA_HASH_LEN) != 0)
				sc->report(sc->arg, chain, seq, "checkpoint_mismatch",
						   "a stored checkpoint recorded a different row at this position (history rewritten?)");
			continue;
		}
		/* Purged lawfully?  Anchors read after the miss, again if stale. */
		if (sc->anchors == NULL || seq > sc->anchors[chain].seq)
			sc->anchors = HaLoadAnchors(&sc->entry->uuid, NULL);
		if (seq > sc->anchors[chain].seq)
			sc->report(sc->arg, chain, seq, "checkpoint_rows_missing",
					   "a stored checkpoint recorded a row at this position; it is gone (rows deleted from the end?)");
		else if (seq == sc->anchors[chain].seq &&
				 memcmp(want, sc->anchors[chain].hash, HA_HASH_LEN) != 0)
			sc->report(sc->arg, chain, seq, "checkpoint_mismatch",
					   "a stored checkpoint recorded a different row at this position than the purge receipt that removed it");
	}
}

/*
 * For verify(): every stored checkpoint of the table must still find its
 * recorded heads.  Reports through the callback; returns how many checked.
 */
int64
HaCheckStoredCheckpoints(Oid relid, void (*report) (void *arg, int32 chain, int64 seq,
													const char *kind, const char *detail),
						 void *arg)
{
	StoredHeadsCheck sc;

	memset(&sc, 0, sizeof(sc));
	sc.entry = HaLookupProtected(relid);
	if (sc.entry == NULL)
		return 0;
	sc.report = report;
	sc.arg = arg;
	sc.rel = table_open(relid, AccessShareLock);
	ScanStoredCheckpoints(&sc.entry->uuid, CheckStoredHeads, &sc);
	table_close(sc.rel, AccessShareLock);
	return sc.checked;
}
