/*-------------------------------------------------------------------------
 *
 * hipaa_audit_verify.c
 *	  The offline checker of hipaa_audit's proofs: a c2sp.org/tlog-proof@v1
 *	  that one audit row is a leaf of a table's Merkle tree at a signed
 *	  checkpoint, checked without the database (docs/merkle.md).
 *
 *	  hipaa_audit_verify PROOF --key VERIFIER_KEY [--witness KEY]...
 *	                     [--quorum N] (--audit-hash HEX | --row FILE)
 *	                     [--origin ORIGIN] [--json]
 *
 * The log's key (--key) must have signed the checkpoint, and at least N of
 * the witness keys (default: all of them); every signature line naming a
 * given key must verify.  The leaf is the row's audit_hash, given in hex or
 * computed as SHA-256 of the row's canonical encoding (docs/encoding.md) in
 * FILE.  Exit status: 0 verified, 1 not verified (the message says why),
 * 2 usage or unreadable input.
 *
 * A plain OpenSSL program, like the signing agent: it shares no code with
 * the server's library, so it is a second implementation of the checks
 * verify_proof() makes.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define HASH_LEN		32
#define MAX_FILE_BYTES		(256 * 1024)
#define MAX_PROOF		64
#define MAX_SIGS		64
#define MAX_KEYS		64
#define EMDASH			"\xe2\x80\x94 "

typedef struct Key
{
	const char *text;
	char		name[256];
	unsigned char id[4];
	unsigned char pub[32];
	unsigned char alg;			/* 0x01 note signer, 0x04 cosignature/v1 witness */
	bool		signed_ok;
} Key;

typedef struct Result
{
	const char *status;			/* ok, or what failed */
	char		detail[512];
	long long	index;
	long long	size;
	char		origin[256];
	char		root[64];
	char		table[512];
	char		time[64];
} Result;

static bool json = false;
static Result res;

/* ---------------------------------------------------------------- output */

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int
finish(Key *keys, int nkeys)
{
	bool		ok = strcmp(res.status, "ok") == 0;

	if (json)
	{
		bool		first = true;

		printf("{\"ok\": %s, \"status\": ", ok ? "true" : "false");
		json_string(res.status);
		printf(", \"detail\": ");
		if (res.detail[0])
			json_string(res.detail);
		else
			printf("null");
		printf(", \"leaf_index\": ");
		if (res.index >= 0)
			printf("%lld", res.index);
		else
			printf("null");
		printf(", \"tree_size\": ");
		if (res.size >= 0)
			printf("%lld", res.size);
		else
			printf("null");
		printf(", \"origin\": ");
		if (res.origin[0])
			json_string(res.origin);
		else
			printf("null");
		printf(", \"root\": ");
		if (res.root[0])
			json_string(res.root);
		else
			printf("null");
		printf(", \"table\": ");
		if (res.table[0])
			json_string(res.table);
		else
			printf("null");
		printf(", \"time\": ");
		if (res.time[0])
			json_string(res.time);
		else
			printf("null");
		printf(", \"signers\": [");
		for (int i = 0; i < nkeys; i++)
			if (keys[i].signed_ok)
			{
				printf(first ? "" : ", ");
				json_string(keys[i].name);
				first = false;
			}
		printf("]}\n");
	}
	else if (ok)
	{
		printf("verified: the row is leaf %lld of the tree of %lld leaves signed for %s\n",
			   res.index, res.size, res.origin);
		if (res.table[0])
			printf("table: %s\n", res.table);
		if (res.time[0])
			printf("checkpoint time: %s\n", res.time);
		printf("signed by:");
		for (int i = 0; i < nkeys; i++)
			if (keys[i].signed_ok)
				printf(" %s%s", keys[i].name, i == 0 ? " (log)" : "");
		printf("\n");
	}
	else
		fprintf(stderr, "hipaa_audit_verify: NOT VERIFIED (%s): %s\n", res.status, res.detail);
	if (ok)
		return 0;
	return strcmp(res.status, "usage") == 0 || strcmp(res.status, "input") == 0 ? 2 : 1;
}

static void fail(const char *status, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
fail(const char *status, const char *fmt,...)
{
	va_list		ap;

	res.status = status;
	va_start(ap, fmt);
	vsnprintf(res.detail, sizeof(res.detail), fmt, ap);
	va_end(ap);
}

/* ----------------------------------------------------------------- crypto */

static void
sha256(const void *data, size_t len, unsigned char out[HASH_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != HASH_LEN)
	{
		fprintf(stderr, "hipaa_audit_verify: OpenSSL SHA-256 failed\n");
		exit(2);
	}
}

static void
node_hash(const unsigned char *l, const unsigned char *r, unsigned char out[HASH_LEN])
{
	unsigned char buf[1 + 2 * HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, l, HASH_LEN);
	memcpy(buf + 1 + HASH_LEN, r, HASH_LEN);
	sha256(buf, sizeof(buf), out);
}

static bool
ed25519_verify(const unsigned char pub[32], const unsigned char *msg, size_t len,
			   const unsigned char sig[64])
{
	EVP_PKEY   *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool		ok = false;

	if (pkey != NULL && ctx != NULL &&
		EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1)
		ok = EVP_DigestVerify(ctx, sig, 64, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return ok;
}

/*
 * A signature blob (key ID || signature, or key ID || 8-byte big-endian
 * timestamp || signature for cosignature/v1) over the note body.
 */
static bool
signature_ok(const Key *k, const char *body, size_t bodylen, const unsigned char *blob, int n)
{
	unsigned long long t = 0;
	char		head[64];
	size_t		hlen;
	unsigned char *msg;
	bool		ok;

	if (k->alg == 0x01)
		return n == 68 && ed25519_verify(k->pub, (const unsigned char *) body, bodylen, blob + 4);
	if (n != 76)
		return false;
	for (int i = 0; i < 8; i++)
		t = (t << 8) | blob[4 + i];
	if (t > 0x7fffffffffffffffULL)
		return false;
	hlen = (size_t) snprintf(head, sizeof(head), "cosignature/v1\ntime %llu\n", t);
	msg = malloc(hlen + bodylen);
	if (msg == NULL)
		return false;
	memcpy(msg, head, hlen);
	memcpy(msg + hlen, body, bodylen);
	ok = ed25519_verify(k->pub, msg, hlen + bodylen, blob + 12);
	free(msg);
	return ok;
}

/* Strict standard base64 (canonical padding) of at most max bytes; -1 if not. */
static int
unbase64(const char *s, size_t len, unsigned char *out, int max)
{
	unsigned char buf[512];
	unsigned char back[700];
	int			n;
	int			pad = 0;

	if (len == 0 || len % 4 != 0 || len > 680)
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '+' || c == '/' || (c == '=' && i >= len - 2)))
			return -1;
	}
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	n = EVP_DecodeBlock(buf, (const unsigned char *) s, (int) len);
	if (n < 0)
		return -1;
	n -= pad;
	if (n > max || n < 0)
		return -1;
	/* Canonical: encoding it again gives the same text. */
	if (EVP_EncodeBlock(back, buf, n) != (int) len || memcmp(back, s, len) != 0)
		return -1;
	memcpy(out, buf, n);
	return n;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ------------------------------------------------------------------ keys */

/*
 * <name>+<8 hex key ID>+<base64(alg || 32-byte Ed25519 key)>: alg 0x01 for a
 * signed-note key, 0x04 for a witness's cosignature/v1 key.
 */
static bool
parse_key(const char *text, Key *k)
{
	const char *p1 = strchr(text, '+');
	const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
	unsigned char blob[64];
	unsigned char idbuf[300];
	unsigned char h[HASH_LEN];
	size_t		nlen;

	memset(k, 0, sizeof(*k));
	k->text = text;
	if (p1 == NULL || p2 == NULL || p2 - p1 != 9)
		return false;
	nlen = p1 - text;
	if (nlen == 0 || nlen >= sizeof(k->name) || nlen > 256)
		return false;
	for (size_t i = 0; i < nlen; i++)
		if ((unsigned char) text[i] <= 0x20 || text[i] == '+')
			return false;
	memcpy(k->name, text, nlen);
	for (int i = 0; i < 4; i++)
	{
		int			hi = hexval(p1[1 + 2 * i]);
		int			lo = hexval(p1[2 + 2 * i]);

		/* Lowercase only, as the server reads key IDs. */
		if (hi < 0 || lo < 0 || (p1[1 + 2 * i] >= 'A' && p1[1 + 2 * i] <= 'F') ||
			(p1[2 + 2 * i] >= 'A' && p1[2 + 2 * i] <= 'F'))
			return false;
		k->id[i] = (unsigned char) (hi * 16 + lo);
	}
	if (unbase64(p2 + 1, strlen(p2 + 1), blob, sizeof(blob)) != 33 ||
		(blob[0] != 0x01 && blob[0] != 0x04))
		return false;
	memcpy(k->pub, blob + 1, 32);
	k->alg = blob[0];
	/* key ID = SHA-256(name || "\n" || alg || key)[:4] */
	memcpy(idbuf, k->name, nlen);
	idbuf[nlen] = '\n';
	memcpy(idbuf + nlen + 1, blob, 33);
	sha256(idbuf, nlen + 34, h);
	return memcmp(h, k->id, 4) == 0;
}

/* ----------------------------------------------------------------- input */

static char *
read_file(const char *path, size_t *len)
{
	FILE	   *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char	   *buf;
	size_t		n;

	if (f == NULL)
	{
		fail("input", "could not open \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_FILE_BYTES + 2);
	if (buf == NULL)
	{
		fail("input", "out of memory");
		return NULL;
	}
	n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
	if (ferror(f))
	{
		fail("input", "could not read \"%s\"", path);
		free(buf);
		return NULL;
	}
	if (f != stdin)
		fclose(f);
	if (n > MAX_FILE_BYTES)
	{
		fail("input", "\"%s\" is longer than %d bytes", path, MAX_FILE_BYTES);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Copy line [s, e) into out (bounded), for messages and JSON. */
static void
copy_line(char *out, size_t outlen, const char *s, const char *e)
{
	size_t		n = (size_t) (e - s) < outlen - 1 ? (size_t) (e - s) : outlen - 1;

	memcpy(out, s, n);
	out[n] = '\0';
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: hipaa_audit_verify PROOF --key VERIFIER_KEY [--witness KEY]... [--quorum N]\n"
			"                          (--audit-hash HEX | --row FILE) [--origin ORIGIN] [--json]\n"
			"Checks a c2sp.org/tlog-proof@v1 from hipaa_audit.prove_row() without the database.\n"
			"PROOF may be - for standard input.  Exit status: 0 verified, 1 not verified, 2 usage or input error.\n");
}

int
main(int argc, char **argv)
{
	const char *proof_path = NULL;
	const char *log_key = NULL;
	const char *witness[MAX_KEYS];
	int			nwitness = 0;
	int			quorum = -1;
	const char *leaf_hex = NULL;
	const char *row_path = NULL;
	const char *want_origin = NULL;
	Key			keys[MAX_KEYS + 1];
	int			nkeys = 0;
	unsigned char audit_hash[HASH_LEN];
	unsigned char leaf[HASH_LEN];
	char	   *text;
	size_t		len;
	char	   *p;
	char	   *eol;
	int			lineno = 1;
	unsigned char proof[MAX_PROOF][HASH_LEN];
	int			nproof = 0;
	char	   *note;
	char	   *sep;
	char	   *body;
	size_t		bodylen;
	unsigned char root[HASH_LEN];

	memset(&res, 0, sizeof(res));
	res.status = "ok";
	res.index = -1;
	res.size = -1;

	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--json") == 0)
			json = true;
		else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
		{
			usage();
			return 2;
		}
		else if ((strcmp(a, "--key") == 0 || strcmp(a, "--witness") == 0 ||
				  strcmp(a, "--quorum") == 0 || strcmp(a, "--audit-hash") == 0 ||
				  strcmp(a, "--row") == 0 || strcmp(a, "--origin") == 0) && v == NULL)
		{
			fail("usage", "%s needs a value", a);
			usage();
			return finish(keys, 0);
		}
		else if (strcmp(a, "--key") == 0)
			log_key = argv[++i];
		else if (strcmp(a, "--witness") == 0)
		{
			if (nwitness == MAX_KEYS)
			{
				fail("usage", "more than %d witness keys", MAX_KEYS);
				return finish(keys, 0);
			}
			witness[nwitness++] = argv[++i];
		}
		else if (strcmp(a, "--quorum") == 0)
		{
			char	   *end;
			long		q = strtol(argv[++i], &end, 10);

			if (*end != '\0' || q < 0 || q > MAX_KEYS)
			{
				fail("usage", "--quorum must be a number from 0 to %d", MAX_KEYS);
				return finish(keys, 0);
			}
			quorum = (int) q;
		}
		else if (strcmp(a, "--audit-hash") == 0)
			leaf_hex = argv[++i];
		else if (strcmp(a, "--row") == 0)
			row_path = argv[++i];
		else if (strcmp(a, "--origin") == 0)
			want_origin = argv[++i];
		else if (a[0] == '-' && a[1] != '\0')
		{
			fail("usage", "unknown option %s", a);
			usage();
			return finish(keys, 0);
		}
		else if (proof_path == NULL)
			proof_path = a;
		else
		{
			fail("usage", "more than one proof file");
			return finish(keys, 0);
		}
	}
	if (proof_path == NULL || log_key == NULL || (leaf_hex == NULL) == (row_path == NULL))
	{
		fail("usage", "give a proof file, --key, and one of --audit-hash and --row");
		usage();
		return finish(keys, 0);
	}
	if (quorum < 0)
		quorum = nwitness;
	if (quorum > nwitness)
	{
		fail("usage", "--quorum %d is more than the %d witness keys given", quorum, nwitness);
		return finish(keys, 0);
	}

	/* Keys: the log's first. */
	if (!parse_key(log_key, &keys[0]) || keys[0].alg != 0x01)
	{
		fail("malformed_key", "the log key is not <name>+<key ID>+<base64 Ed25519 key> with a matching key ID");
		return finish(keys, 0);
	}
	nkeys = 1;
	for (int i = 0; i < nwitness; i++)
	{
		if (!parse_key(witness[i], &keys[nkeys]))
		{
			fail("malformed_key", "witness key %d is not <name>+<key ID>+<base64 Ed25519 key> with a matching key ID", i + 1);
			return finish(keys, 0);
		}
		nkeys++;
	}

	/* The leaf: SHA-256(0x00 || audit_hash). */
	if (leaf_hex != NULL)
	{
		if (strlen(leaf_hex) != 2 * HASH_LEN)
		{
			fail("usage", "--audit-hash must be 64 hex digits");
			return finish(keys, 0);
		}
		for (int i = 0; i < HASH_LEN; i++)
		{
			int			hi = hexval(leaf_hex[2 * i]);
			int			lo = hexval(leaf_hex[2 * i + 1]);

			if (hi < 0 || lo < 0)
			{
				fail("usage", "--audit-hash must be 64 hex digits");
				return finish(keys, 0);
			}
			audit_hash[i] = (unsigned char) (hi * 16 + lo);
		}
	}
	else
	{
		char	   *row = read_file(row_path, &len);

		if (row == NULL)
			return finish(keys, 0);
		sha256(row, len, audit_hash);
		free(row);
	}
	{
		unsigned char buf[1 + HASH_LEN];

		buf[0] = 0x00;
		memcpy(buf + 1, audit_hash, HASH_LEN);
		sha256(buf, sizeof(buf), leaf);
	}

	/* The proof. */
	text = read_file(proof_path, &len);
	if (text == NULL)
		return finish(keys, 0);
	if (memchr(text, '\0', len) != NULL || memchr(text, '\r', len) != NULL)
	{
		fail("malformed_proof", "the proof contains NUL or carriage-return characters");
		return finish(keys, 0);
	}
	p = text;
	eol = strchr(p, '\n');
	if (eol == NULL || (size_t) (eol - p) != strlen("c2sp.org/tlog-proof@v1") ||
		strncmp(p, "c2sp.org/tlog-proof@v1", eol - p) != 0)
	{
		fail("malformed_proof", "line 1 is not \"c2sp.org/tlog-proof@v1\"");
		return finish(keys, 0);
	}
	for (p = eol + 1;; p = eol + 1)
	{
		size_t		l;

		lineno++;
		eol = strchr(p, '\n');
		if (eol == NULL)
		{
			fail("malformed_proof", "line %d does not end with a newline, before the checkpoint", lineno);
			return finish(keys, 0);
		}
		l = eol - p;
		if (l == 0)
			break;
		if (res.index < 0 && lineno == 2 && l > 6 && strncmp(p, "extra ", 6) == 0)
			continue;
		if (res.index < 0)
		{
			long long	v = 0;

			if (l < 7 || strncmp(p, "index ", 6) != 0 || (p[6] == '0' && l > 7) || l > 6 + 19)
			{
				fail("malformed_proof", "line %d is not \"index <decimal>\"", lineno);
				return finish(keys, 0);
			}
			for (size_t i = 6; i < l; i++)
			{
				if (p[i] < '0' || p[i] > '9')
				{
					fail("malformed_proof", "line %d is not \"index <decimal>\"", lineno);
					return finish(keys, 0);
				}
				if (v > (LLONG_MAX - (p[i] - '0')) / 10)
				{
					fail("malformed_proof", "line %d: the index is too large", lineno);
					return finish(keys, 0);
				}
				v = v * 10 + (p[i] - '0');
			}
			res.index = v;
			continue;
		}
		if (nproof == MAX_PROOF)
		{
			fail("malformed_proof", "the proof has more than %d hashes", MAX_PROOF);
			return finish(keys, 0);
		}
		if (unbase64(p, l, proof[nproof], HASH_LEN) != HASH_LEN)
		{
			fail("malformed_proof", "line %d is not a SHA-256 hash in base64", lineno);
			return finish(keys, 0);
		}
		nproof++;
	}
	if (res.index < 0)
	{
		fail("malformed_proof", "the proof has no index line");
		return finish(keys, 0);
	}

	/* The checkpoint: a signed note, body up to its last blank line. */
	note = eol + 1;
	if (*note == '\0' || note[strlen(note) - 1] != '\n')
	{
		fail("malformed_note", "no checkpoint after the empty line, or it does not end with a newline");
		return finish(keys, 0);
	}
	sep = NULL;
	for (char *q = strstr(note, "\n\n"); q != NULL; q = strstr(q + 1, "\n\n"))
		sep = q;
	if (sep == NULL)
	{
		fail("malformed_note", "the checkpoint has no signature block (no blank line)");
		return finish(keys, 0);
	}
	body = note;
	bodylen = sep - note + 1;
	if (memmem(body, bodylen, "\n\n", 2) != NULL)
	{
		fail("malformed_note", "the checkpoint's body has an empty line");
		return finish(keys, 0);
	}

	/* Signature lines: "— <name> <base64(key ID || signature)>". */
	{
		int			nsigs = 0;
		int			counted = 0;

		for (p = sep + 2; *p; p = eol + 1)
		{
			char	   *sp;
			unsigned char blob[4 + 64 + 8];
			int			n;

			eol = strchr(p, '\n');
			if (strncmp(p, EMDASH, strlen(EMDASH)) != 0 || ++nsigs > MAX_SIGS)
			{
				fail("malformed_note", "a line after the body is not a signature line (or more than %d)", MAX_SIGS);
				return finish(keys, 0);
			}
			p += strlen(EMDASH);
			sp = memchr(p, ' ', eol - p);
			if (sp == NULL || sp == p)
			{
				fail("malformed_note", "a signature line is not \"— <name> <signature>\"");
				return finish(keys, 0);
			}
			n = unbase64(sp + 1, eol - sp - 1, blob, sizeof(blob));
			if (n < 4)
			{
				fail("malformed_note", "a signature line's signature is not base64");
				return finish(keys, 0);
			}
			for (int k = 0; k < nkeys; k++)
			{
				if ((size_t) (sp - p) != strlen(keys[k].name) ||
					strncmp(p, keys[k].name, sp - p) != 0 || memcmp(blob, keys[k].id, 4) != 0)
					continue;
				if (!signature_ok(&keys[k], body, bodylen, blob, n))
				{
					fail("bad_signature", "the signature by %s does not match the checkpoint", keys[k].name);
					return finish(keys, 0);
				}
				keys[k].signed_ok = true;
			}
		}
		if (!keys[0].signed_ok)
		{
			fail("unknown_key", "the checkpoint has no signature by the log key %s", keys[0].name);
			return finish(keys, 0);
		}
		for (int k = 1; k < nkeys; k++)
		{
			bool		repeat = false;

			/* A witness counts once, and never as the log's own key. */
			for (int j = 0; j < k; j++)
				if (memcmp(keys[j].pub, keys[k].pub, 32) == 0)
					repeat = true;
			if (keys[k].signed_ok && !repeat)
				counted++;
		}
		if (counted < quorum)
		{
			fail("quorum_not_met", "%d of the %d witness keys signed; %d required", counted, nwitness, quorum);
			return finish(keys, 0);
		}
	}

	/* The tlog-checkpoint: origin, size, root, then extension lines. */
	{
		char	   *l1 = body;
		char	   *l2 = strchr(l1, '\n') + 1;
		char	   *l3 = l2 < body + bodylen ? strchr(l2, '\n') + 1 : NULL;
		char	   *l4 = l3 && l3 < body + bodylen ? strchr(l3, '\n') + 1 : NULL;
		long long	size = 0;

		if (l3 == NULL || l4 == NULL || l4 > body + bodylen)
		{
			fail("malformed_note", "the checkpoint has fewer than three lines");
			return finish(keys, 0);
		}
		copy_line(res.origin, sizeof(res.origin), l1, l2 - 1);
		if (l2 - 1 == l1 || (l2[0] == '0' && l3 - l2 > 2) || l3 - l2 - 1 > 19)
		{
			fail("malformed_note", "line 2 of the checkpoint is not a tree size");
			return finish(keys, 0);
		}
		for (char *q = l2; q < l3 - 1; q++)
		{
			if (*q < '0' || *q > '9')
			{
				fail("malformed_note", "line 2 of the checkpoint is not a tree size");
				return finish(keys, 0);
			}
			/* At most 2^62, as the server reads it; checked before it could overflow. */
			if (size > ((1LL << 62) - (*q - '0')) / 10)
			{
				fail("malformed_note", "the checkpoint states a tree of more than 2^62 leaves");
				return finish(keys, 0);
			}
			size = size * 10 + (*q - '0');
		}
		res.size = size;
		if (unbase64(l3, l4 - l3 - 1, root, HASH_LEN) != HASH_LEN)
		{
			fail("malformed_note", "line 3 of the checkpoint is not a base64 SHA-256 root");
			return finish(keys, 0);
		}
		copy_line(res.root, sizeof(res.root), l3, l4 - 1);
		/* A hipaa_audit tlog-checkpoint: its origin, then "checkpoint v2". */
		if (strncmp(res.origin, "hipaa_audit/", 12) != 0 || strchr(res.origin, ' ') != NULL ||
			strchr(res.origin, '+') != NULL)
		{
			fail("malformed_note", "the checkpoint's origin is not hipaa_audit/<system identifier>/<table identity>");
			return finish(keys, 0);
		}
		if (strncmp(l4, "checkpoint v2\n", 14) != 0)
		{
			fail("malformed_note", "line 4 of the checkpoint is not \"checkpoint v2\"");
			return finish(keys, 0);
		}
		if (want_origin != NULL && strcmp(res.origin, want_origin) != 0)
		{
			fail("wrong_origin", "the checkpoint is of %s, not of %s", res.origin, want_origin);
			return finish(keys, 0);
		}
		/* hipaa_audit's extension lines, for people. */
		for (char *q = l4; q < body + bodylen; q = strchr(q, '\n') + 1)
		{
			char	   *e = strchr(q, '\n');

			if (strncmp(q, "table ", 6) == 0)
				copy_line(res.table, sizeof(res.table), q + 6, e);
			else if (strncmp(q, "time ", 5) == 0)
				copy_line(res.time, sizeof(res.time), q + 5, e);
		}
	}

	/* Inclusion (RFC 9162, 2.1.3.2). */
	{
		unsigned long long fn;
		unsigned long long sn;
		unsigned char r[HASH_LEN];

		if (res.index >= res.size)
		{
			fail("bad_proof", "index %lld is not in a tree of %lld leaves", res.index, res.size);
			return finish(keys, 0);
		}
		fn = (unsigned long long) res.index;
		sn = (unsigned long long) res.size - 1;
		memcpy(r, leaf, HASH_LEN);
		for (int i = 0; i < nproof; i++)
		{
			if (sn == 0)
			{
				fail("bad_proof", "the inclusion proof is longer than the tree is high");
				return finish(keys, 0);
			}
			if ((fn & 1) || fn == sn)
			{
				node_hash(proof[i], r, r);
				if (!(fn & 1))
					while (fn != 0 && !(fn & 1))
					{
						fn >>= 1;
						sn >>= 1;
					}
			}
			else
				node_hash(r, proof[i], r);
			fn >>= 1;
			sn >>= 1;
		}
		if (sn != 0 || memcmp(r, root, HASH_LEN) != 0)
		{
			fail("bad_proof", "the inclusion proof does not lead from this row's leaf at index %lld to the signed root",
				 res.index);
			return finish(keys, 0);
		}
	}
	free(text);
	return finish(keys, nkeys);
}
