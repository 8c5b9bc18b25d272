/*-------------------------------------------------------------------------
 *
 * note.c
 *	  Signed notes (layer core/): the one writer and the one parser of the
 *	  text of checkpoints and purge receipts (C2SP signed-note format,
 *	  docs/checkpoints.md), names encoded so that none can add or end a
 *	  line; the signing key, key IDs and verifier keys; splitting a note
 *	  into its body and signature lines and checking a signature.  Parsers
 *	  never raise: they fill an HaNoteCheck with a status and a detail that
 *	  each caller turns into an ERROR or a status row.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include <sys/stat.h>

#include "access/detoast.h"
#include "access/xlog.h"
#include "common/int.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* ----------------------------------------------------------------
 * Keys
 * ----------------------------------------------------------------
 */

void
HaCheckKeyName(const char *name)
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
void
HaLoadSigningKey(uint8 priv[HA_ED25519_KEY_LEN], uint8 pub[HA_ED25519_KEY_LEN])
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

char *
HaVerifierKey(const char *name, const uint8 *pub)
{
	uint8		id[4];
	uint8		blob[1 + HA_ED25519_KEY_LEN];

	HaKeyId(name, pub, id);
	blob[0] = HA_ED25519_ALG;
	memcpy(blob + 1, pub, HA_ED25519_KEY_LEN);
	return psprintf("%s+%02x%02x%02x%02x+%s", name, id[0], id[1], id[2], id[3],
					HaBase64(blob, sizeof(blob)));
}

/* ----------------------------------------------------------------
 * Note text: names, lines, the body parser
 * ----------------------------------------------------------------
 */

static bool
HaUnhex(const char *s, uint8 *out, int len)
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
	NK_PARTITION_OF,
	NK_REMOVED,
	NK_PARTITION,
	NK_AS_OF,
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
	/* Receipts of a whole partition removed (docs/partitions.md). */
	[NK_PARTITION_OF] = {"partition-of", false, false, true, false},
	[NK_REMOVED] = {"removed", false, false, true, false},
	/* Checkpoints of a partitioned table: one per partition. */
	[NK_PARTITION] = {"partition", true, false, false, false},
	/* Receipts from 0.3.0 on: the time the cutoff is counted back from. */
	[NK_AS_OF] = {"as-of", false, false, true, false},
};

/*
 * A checkpoint's partition line: "<table identity> <hex SHA-256 of the
 * partition's stored checkpoint note>", identities in increasing order.
 */
static char *
ParsePartitionLine(const char *v, size_t len, HaNoteBody *nb)
{
	HaNotePartition *np;

	if (len != 36 + 1 + 2 * HA_HASH_LEN || v[36] != ' ')
		return pstrdup("its value is not \"<table identity> <64 hex digits>\"");
	for (int i = 0; i < 36; i++)
	{
		bool		dash = (i == 8 || i == 13 || i == 18 || i == 23);

		if (dash ? v[i] != '-' : HexDigit(v[i]) < 0)
			return pstrdup("its value does not start with a table identity");
	}
	if (nb->npartitions > 0 &&
		strncmp(nb->partitions[nb->npartitions - 1].uuid, v, 36) >= 0)
		return pstrdup("partition lines are not in increasing order of table identity");
	if (nb->npartitions % 16 == 0)
		nb->partitions = nb->npartitions == 0 ?
			palloc(sizeof(HaNotePartition) * 16) :
			repalloc(nb->partitions, sizeof(HaNotePartition) * (nb->npartitions + 16));
	np = &nb->partitions[nb->npartitions];
	memcpy(np->uuid, v, 36);
	np->uuid[36] = '\0';
	for (int i = 0; i < HA_HASH_LEN; i++)
	{
		int			hi = HexDigit(v[37 + 2 * i]);
		int			lo = HexDigit(v[38 + 2 * i]);

		if (hi < 0 || lo < 0)
			return pstrdup("its hash is not 64 lowercase hex digits");
		np->hash[i] = (uint8) (hi << 4 | lo);
	}
	nb->npartitions++;
	return NULL;
}

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
	nb->version = 1;
	if (!receipt && eol != NULL && eol > line && isdigit((unsigned char) *line))
	{
		/*
		 * A tlog-checkpoint (docs/merkle.md): tree size, base64 root, then
		 * "checkpoint v2"; the rest as in version 1.
		 */
		nb->version = 2;
		nb->tree_size = ParseCount(line, eol - line);
		if (nb->tree_size < 0 || nb->tree_size > HA_TREE_MAX_SIZE)
			return pstrdup("line 2 is not a tree size (decimal digits, no sign or leading zero, at most 2^62)");
		line = eol + 1;
		lineno = 3;
		eol = strchr(line, '\n');
		if (eol == NULL || eol - line != 44 ||
			HaUnbase64(line, 44, nb->root, HA_HASH_LEN) != HA_HASH_LEN ||
			strncmp(HaBase64(nb->root, HA_HASH_LEN), line, 44) != 0)
			return pstrdup("line 3 is not a tree root (a SHA-256 hash in base64)");
		line = eol + 1;
		lineno = 4;
		eol = strchr(line, '\n');
		kind = "checkpoint v2";
	}
	if (eol == NULL || (size_t) (eol - line) != strlen(kind) || strncmp(line, kind, eol - line) != 0)
		return psprintf("line %d is not \"%s\": the note is not a hipaa_audit %s",
						lineno, kind, receipt ? "purge receipt" : "checkpoint");

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
		if (seen[k] && k != NK_CHAIN && k != NK_PARTITION)
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
			case NK_AS_OF:
				if (!IsNoteTime(v, vlen))
					problem = pstrdup("its value is not a time \"YYYY-MM-DD HH:MM:SS[.ffffff]+00\"");
				else if (k == NK_TIME)
					nb->time = pnstrdup(v, vlen);
				else if (k == NK_AS_OF)
					nb->as_of = pnstrdup(v, vlen);
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
			case NK_PARTITION_OF:
				/* "<table identity> <name>" */
				if (vlen < 38 || v[36] != ' ')
					problem = pstrdup("its value is not \"<table identity> <name>\"");
				else
				{
					for (int i = 0; i < 36 && problem == NULL; i++)
					{
						bool		dash = (i == 8 || i == 13 || i == 18 || i == 23);

						if (dash ? v[i] != '-' : HexDigit(v[i]) < 0)
							problem = pstrdup("its value does not start with a table identity");
					}
					if (problem == NULL)
					{
						memcpy(nb->parent_uuid, v, 36);
						nb->parent_uuid[36] = '\0';
						nb->parent = NoteNameDecode(v + 37, vlen - 37);
					}
				}
				break;
			case NK_PARTITION:
				problem = ParsePartitionLine(v, vlen, nb);
				break;
			case NK_REMOVED:
				if (!((vlen == 4 && strncmp(v, "drop", 4) == 0) ||
					  (vlen == 6 && strncmp(v, "detach", 6) == 0)))
					problem = pstrdup("its value is not \"drop\" or \"detach\"");
				else
					nb->removed = pnstrdup(v, vlen);
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
	if (seen[NK_PARTITION] && nb->nchains > 0)
		return pstrdup("the note has both partition and chain lines");
	if (seen[NK_PARTITION_OF] != seen[NK_REMOVED])
		return pstrdup("the note has one of the partition-of and removed lines without the other");
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
 * Sign a note body with the configured key: the body, a blank line and one
 * signature line (C2SP signed note).
 */
char *
HaSignNote(const char *body)
{
	uint8		priv[HA_ED25519_KEY_LEN];
	uint8		pub[HA_ED25519_KEY_LEN];
	uint8		sig[4 + HA_ED25519_SIG_LEN];

	HaCheckKeyName(ha_signer_name);
	if (HaUseSigningAgent())
		HaAgentSign(body, ha_signer_name, sig);	/* checked against its key */
	else
	{
		HaLoadSigningKey(priv, pub);
		HaKeyId(ha_signer_name, pub, sig);
		HaEd25519Sign(priv, (const uint8 *) body, strlen(body), sig + 4);
		HaSecureZero(priv, sizeof(priv));
	}
	return psprintf("%s\n" HA_SIG_DASH "%s %s\n", body, ha_signer_name, HaBase64(sig, sizeof(sig)));
}

/* HaNoteFail now, before any work, if HaSignNote() would fail later. */
void
HaCheckSigningKey(void)
{
	uint8		priv[HA_ED25519_KEY_LEN];
	uint8		pub[HA_ED25519_KEY_LEN];

	HaCheckKeyName(ha_signer_name);
	if (HaUseSigningAgent())
	{
		HaAgentKey(ha_signer_name, pub);
		return;
	}
	HaLoadSigningKey(priv, pub);
	HaSecureZero(priv, sizeof(priv));
}

/* ----------------------------------------------------------------
 * Verifying a note
 * ----------------------------------------------------------------
 */


bool
HaNoteFail(HaNoteCheck *nc, const char *status, char *detail)
{
	nc->status = status;
	nc->detail = detail;
	return false;
}

/* Parse "<name>+<8 hex>+<base64(0x01 || 32-byte key)>". */
bool
HaParseVerifierKey(const char *key, char **name, uint8 id[4], uint8 pub[HA_ED25519_KEY_LEN],
				   uint8 *alg, HaNoteCheck *nc)
{
	const char *p1;
	const char *p2;
	uint8		blob[1 + HA_ED25519_KEY_LEN + 4];
	uint8		computed[4];
	int			n;

	/*
	 * Space around a key (a key read from a file ends in a newline) is not
	 * part of it: base64 is read canonically, so it would not be skipped.
	 */
	key = HaTrimKey(key);
	p1 = strchr(key, '+');
	p2 = p1 ? strchr(p1 + 1, '+') : NULL;

	/* The key data is base64 and may itself contain "+". */
	if (p1 == NULL || p2 == NULL || p1 == key || p2 - p1 != 9)
		return HaNoteFail(nc, "malformed_key", pstrdup("a verifier key is <name>+<8 hex digits>+<base64 key>"));
	*name = pnstrdup(key, p1 - key);
	for (const char *p = *name; *p; p++)
		if ((unsigned char) *p <= ' ')
			return HaNoteFail(nc, "malformed_key", pstrdup("the key name contains a space or control character"));
	{
		char		hex[9];

		memcpy(hex, p1 + 1, 8);
		hex[8] = '\0';
		if (!HaUnhex(hex, id, 4))
			return HaNoteFail(nc, "malformed_key", pstrdup("the key ID is not 8 lowercase hex digits"));
	}
	n = HaUnbase64(p2 + 1, strlen(p2 + 1), blob, sizeof(blob));
	/* alg NULL: a signed-note key only; else also a witness's cosignature key. */
	if (n != 1 + HA_ED25519_KEY_LEN ||
		!(blob[0] == HA_ED25519_ALG || (alg != NULL && blob[0] == HA_COSIGNATURE_ALG)))
		return HaNoteFail(nc, "malformed_key",
						  pstrdup(alg != NULL ?
								  "the key is not base64 of 0x01 (note signer) or 0x04 (cosignature/v1 witness) and a 32-byte Ed25519 public key" :
								  "the key is not base64 of 0x01 and a 32-byte Ed25519 public key"));
	memcpy(pub, blob + 1, HA_ED25519_KEY_LEN);
	if (alg != NULL)
		*alg = blob[0];
	HaKeyIdAlg(*name, pub, blob[0], computed);
	if (memcmp(computed, id, 4) != 0)
		return HaNoteFail(nc, "malformed_key", pstrdup("the key ID does not match the name and key"));
	return true;
}



void
HaCheckNoteLength(Size len)
{
	if (len > HA_NOTE_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("note is too long"),
				 errdetail("The note has %zu bytes; at most %d are accepted.",
						   (size_t) len, HA_NOTE_MAX_LEN),
				 errhint("A checkpoint or purge receipt is far shorter; check that the note given is one.")));
}

void
HaCheckKeyLength(Size len)
{
	if (len > HA_KEY_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("verifier key is too long"),
				 errdetail("The key has %zu bytes; at most %d are accepted.",
						   (size_t) len, HA_KEY_MAX_LEN),
				 errhint("A verifier key is <name>+<8 hex key ID>+<base64(0x01 || Ed25519 public key)>.")));
}

/* The length of a text argument, without detoasting it. */
Size
HaTextLength(Datum d)
{
	return toast_raw_datum_size(d) - VARHDRSZ;
}

bool
HaSplitNoteText(const char *note, HaSplitNote *sn, HaNoteCheck *nc)
{
	size_t		len = strlen(note);
	const char *sep;
	const char *p;

	HaCheckNoteLength(len);
	sn->nsigs = 0;
	if (strchr(note, '\r') != NULL)
		return HaNoteFail(nc, "malformed_note", pstrdup("the note contains a carriage return"));
	if (len == 0 || note[len - 1] != '\n')
		return HaNoteFail(nc, "malformed_note", pstrdup("the note does not end with a newline"));
	sep = strstr(note, "\n\n");
	if (sep == NULL)
		return HaNoteFail(nc, "malformed_note", pstrdup("the note has no blank line before its signatures"));
	sn->body = pnstrdup(note, sep - note + 1);

	for (p = sep + 2; *p;)
	{
		const char *eol = strchr(p, '\n');
		const char *sp;
		HaNoteSignature *sig;

		CHECK_FOR_INTERRUPTS();
		if (sn->nsigs >= HA_NOTE_MAX_SIGNATURES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("note has too many signature lines"),
					 errdetail("At most %d signature lines are accepted.", HA_NOTE_MAX_SIGNATURES),
					 errhint("Keep the signature lines of the keys to check: the others can be removed without changing what they sign.")));
		if (strncmp(p, HA_SIG_DASH, strlen(HA_SIG_DASH)) != 0)
			return HaNoteFail(nc, "malformed_note", pstrdup("a signature line does not start with an em dash and a space"));
		p += strlen(HA_SIG_DASH);
		sp = memchr(p, ' ', eol - p);
		if (sp == NULL || sp == p)
			return HaNoteFail(nc, "malformed_note", pstrdup("a signature line has no name and signature"));
		sig = &sn->sigs[sn->nsigs];
		sig->name = pnstrdup(p, sp - p);
		sig->len = HaUnbase64(sp + 1, eol - sp - 1, sig->blob, sizeof(sig->blob));
		if (sig->len < 5)
			return HaNoteFail(nc, "malformed_note", pstrdup("a signature is not valid base64"));
		sn->nsigs++;
		p = eol + 1;
	}
	return true;
}

/* A verifier key without the ASCII white space around it (palloc'd). */
char *
HaTrimKey(const char *key)
{
	const char *s = key;
	const char *e = key + strlen(key);

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	return pnstrdup(s, e - s);
}

/*
 * One signature blob (key ID || signature) over a note body.  A signed-note
 * key (0x01) signs the body; a witness's cosignature/v1 key (0x04) signs
 * "cosignature/v1\ntime <t>\n" and the body, and its blob carries the
 * 8-byte big-endian timestamp t (at most 2^63 - 1) before the signature
 * (C2SP tlog-cosignature).
 */
bool
HaVerifyNoteSignatureBlob(const char *body, const uint8 *blob, int len, const uint8 *pub,
						  uint8 alg)
{
	uint64		t = 0;
	char	   *msg;
	bool		ok;

	if (alg != HA_COSIGNATURE_ALG)
		return len == 4 + HA_ED25519_SIG_LEN &&
			HaEd25519Verify(pub, (const uint8 *) body, strlen(body), blob + 4);
	if (len != 4 + 8 + HA_ED25519_SIG_LEN)
		return false;
	for (int i = 0; i < 8; i++)
		t = (t << 8) | blob[4 + i];
	if (t > (uint64) PG_INT64_MAX)
		return false;
	msg = psprintf("cosignature/v1\ntime " UINT64_FORMAT "\n%s", t, body);
	ok = HaEd25519Verify(pub, (const uint8 *) msg, strlen(msg), blob + 12);
	pfree(msg);
	return ok;
}

/*
 * Check a note's signature by one key.  Signature lines other than the
 * key's are ignored (co-signers); every line of the key's must verify.
 */
bool
HaCheckNoteSignature(const HaSplitNote *sn, const char *name, const uint8 *id, const uint8 *pub,
					 uint8 alg, HaNoteCheck *nc)
{
	bool		found = false;

	/* Every line of this name and key ID must verify, not only the first. */
	for (int i = 0; i < sn->nsigs; i++)
	{
		const HaNoteSignature *sig = &sn->sigs[i];

		CHECK_FOR_INTERRUPTS();
		if (strcmp(sig->name, name) != 0 || memcmp(sig->blob, id, 4) != 0)
			continue;
		if (sig->len != (alg == HA_COSIGNATURE_ALG ? 4 + 8 : 4) + HA_ED25519_SIG_LEN)
			return HaNoteFail(nc, "bad_signature", pstrdup("the signature has the wrong length"));
		if (!HaVerifyNoteSignatureBlob(sn->body, sig->blob, sig->len, pub, alg))
			return HaNoteFail(nc, "bad_signature",
						psprintf("the signature by %s does not match the note", name));
		found = true;
	}
	if (found)
		return true;
	return HaNoteFail(nc, "unknown_key", psprintf("the note has no signature by key %s", name));
}


/* ----------------------------------------------------------------
 * Stored notes
 * ----------------------------------------------------------------
 */

typedef struct StoredNoteScan
{
	bool		receipts;
	const pg_uuid_t *uuid;
	char	   *uuidtext;
	HaNoteBody *nb;
	HaStoredNoteFn fn;
	void	   *arg;
} StoredNoteScan;

static bool
StoredNoteRow(void *arg, TupleTableSlot *slot)
{
	StoredNoteScan *sn = (StoredNoteScan *) arg;
	int			att_uuid = sn->receipts ? Anum_ha_purge_receipts_table_uuid : Anum_ha_checkpoints_table_uuid;
	int			att_id = sn->receipts ? Anum_ha_purge_receipts_id : Anum_ha_checkpoints_id;
	int			att_note = sn->receipts ? Anum_ha_purge_receipts_note : Anum_ha_checkpoints_note;
	char	   *body;
	char	   *problem;

	if (slot->tts_isnull[att_uuid - 1] ||
		memcmp(DatumGetUUIDP(slot->tts_values[att_uuid - 1])->data, sn->uuid->data, UUID_LEN) != 0)
		return true;
	body = HaNoteBodyOf(TextDatumGetCString(slot->tts_values[att_note - 1]));
	problem = body ? HaParseNoteBody(body, sn->receipts, sn->nb) :
		pstrdup("it has no blank line before its signature");
	if (problem == NULL && strcmp(sn->nb->uuid, sn->uuidtext) != 0)
		problem = psprintf("its origin line names table identity %s", sn->nb->uuid);
	sn->fn(sn->arg, DatumGetInt64(slot->tts_values[att_id - 1]), sn->nb, problem);
	return true;
}

/*
 * Call fn for every stored checkpoint (or purge receipt) of a table, with
 * its body parsed, or the reason it cannot be read; as the transaction's
 * snapshot sees them.  Returns false when the table of such notes does not
 * exist (an older schema).
 */
bool
HaScanStoredNotes(bool receipts, const pg_uuid_t *uuid, HaStoredNoteFn fn, void *arg)
{
	StoredNoteScan sn;
	Snapshot	snap = RegisterSnapshot(GetTransactionSnapshot());
	bool		exists;

	sn.receipts = receipts;
	sn.uuid = uuid;
	sn.uuidtext = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) uuid)));
	sn.nb = palloc(sizeof(HaNoteBody));
	sn.fn = fn;
	sn.arg = arg;
	exists = HaScanOwnTable(receipts ? HA_TABLE_PURGE_RECEIPTS : HA_TABLE_CHECKPOINTS,
							snap, StoredNoteRow, &sn);
	UnregisterSnapshot(snap);
	return exists;
}
