/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  The only file that includes OpenSSL: SHA-256 and Ed25519 through the
 *	  EVP API.
 *	  Layer base/ (docs/architecture.md).
 *
 * Everything else hashes and signs through the functions here, so that the
 * choice of library, its error handling, and the wiping of key material
 * live in one place.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "utils/memutils.h"

/*
 * Updates are gathered in a buffer: a row is many small pieces (lengths,
 * names, short values), and one EVP call per piece costs more than the
 * hashing itself.
 */
#define HA_SHA_BUFSIZE 8192

struct HaSha256
{
	EVP_MD_CTX *ctx;
	size_t		used;
	unsigned char buf[HA_SHA_BUFSIZE];
};

/* Fetched once: an implicit fetch on every init takes a provider lock. */
static EVP_MD *Sha256 = NULL;

static void
OpenSSLFailed(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("OpenSSL %s failed", what)));
}

HaSha256 *
HaSha256Create(void)
{
	HaSha256   *h = MemoryContextAlloc(TopMemoryContext, sizeof(HaSha256));

	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL)
		OpenSSLFailed("EVP_MD_CTX_new");
	h->used = 0;
	if (Sha256 == NULL)
	{
		Sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
		if (Sha256 == NULL)
			OpenSSLFailed("EVP_MD_fetch(SHA256)");
	}
	return h;
}

void
HaSha256Init(HaSha256 *h)
{
	h->used = 0;
	if (EVP_DigestInit_ex(h->ctx, Sha256, NULL) != 1)
		OpenSSLFailed("EVP_DigestInit_ex");
}

static void
Flush(HaSha256 *h)
{
	if (h->used > 0 && EVP_DigestUpdate(h->ctx, h->buf, h->used) != 1)
		OpenSSLFailed("EVP_DigestUpdate");
	h->used = 0;
}

void
HaSha256Update(HaSha256 *h, const void *data, size_t len)
{
	if (len <= HA_SHA_BUFSIZE - h->used)
	{
		memcpy(h->buf + h->used, data, len);
		h->used += len;
		return;
	}
	Flush(h);
	if (len >= HA_SHA_BUFSIZE)
	{
		if (EVP_DigestUpdate(h->ctx, data, len) != 1)
			OpenSSLFailed("EVP_DigestUpdate");
	}
	else
	{
		memcpy(h->buf, data, len);
		h->used = len;
	}
}

void
HaSha256Final(HaSha256 *h, uint8 out[HA_HASH_LEN])
{
	unsigned int outlen = 0;

	Flush(h);
	if (EVP_DigestFinal_ex(h->ctx, out, &outlen) != 1 || outlen != HA_HASH_LEN)
		OpenSSLFailed("EVP_DigestFinal_ex");
}

/* ----------------------------------------------------------------
 * Ed25519 (RFC 8032) for signed checkpoints
 * ----------------------------------------------------------------
 */

/*
 * One SHA-256, with one context kept for the backend's life: the Merkle
 * tree hashes a few bytes at a time, millions of times, where fetching
 * the digest for each call would cost more than the hash.
 */
void
HaSha256Once(const void *data, size_t len, uint8 out[HA_HASH_LEN])
{
	static HaSha256 *once = NULL;
	unsigned int outlen = 0;

	if (once == NULL)
		once = HaSha256Create();
	if (EVP_DigestInit_ex(once->ctx, Sha256, NULL) != 1 ||
		EVP_DigestUpdate(once->ctx, data, len) != 1 ||
		EVP_DigestFinal_ex(once->ctx, out, &outlen) != 1 ||
		outlen != HA_HASH_LEN)
		OpenSSLFailed("EVP_Digest");
}

void
HaSecureZero(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}

/*
 * Read an Ed25519 private key (PKCS#8 PEM, as `openssl genpkey -algorithm
 * ed25519` writes it) and return its raw private and public halves.  The
 * caller zeroes priv after use.  Errors never show key material.
 */
void
HaEd25519ReadKeyFile(const char *path, uint8 priv[HA_ED25519_KEY_LEN],
					 uint8 pub[HA_ED25519_KEY_LEN])
{
	BIO		   *bio;
	EVP_PKEY   *pkey;
	size_t		privlen = HA_ED25519_KEY_LEN;
	size_t		publen = HA_ED25519_KEY_LEN;
	bool		ok;

	bio = BIO_new_file(path, "r");
	if (bio == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not open the signing key file"),
				 errdetail_log("hipaa_audit.signing_key_file is \"%s\".", path)));
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the signing key file does not hold a PEM private key"),
				 errdetail_log("hipaa_audit.signing_key_file is \"%s\".", path),
				 errhint("Create one with: openssl genpkey -algorithm ed25519 -out FILE")));
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519)
	{
		EVP_PKEY_free(pkey);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the signing key file holds a key of the wrong type"),
				 errdetail("hipaa_audit signs checkpoints with Ed25519 keys."),
				 errdetail_log("hipaa_audit.signing_key_file is \"%s\"; hipaa_audit signs checkpoints with Ed25519 keys.", path),
				 errhint("Create one with: openssl genpkey -algorithm ed25519 -out FILE")));
	}
	ok = EVP_PKEY_get_raw_private_key(pkey, priv, &privlen) == 1 &&
		EVP_PKEY_get_raw_public_key(pkey, pub, &publen) == 1 &&
		privlen == HA_ED25519_KEY_LEN && publen == HA_ED25519_KEY_LEN;
	EVP_PKEY_free(pkey);
	if (!ok)
	{
		OPENSSL_cleanse(priv, HA_ED25519_KEY_LEN);
		OpenSSLFailed("EVP_PKEY_get_raw_private_key");
	}
}

void
HaEd25519Sign(const uint8 priv[HA_ED25519_KEY_LEN], const uint8 *msg, size_t len,
			  uint8 sig[HA_ED25519_SIG_LEN])
{
	EVP_PKEY   *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv,
													HA_ED25519_KEY_LEN);
	EVP_MD_CTX *ctx;
	size_t		siglen = HA_ED25519_SIG_LEN;
	bool		ok;

	if (pkey == NULL)
		OpenSSLFailed("EVP_PKEY_new_raw_private_key");
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL &&
		EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
		EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 &&
		siglen == HA_ED25519_SIG_LEN;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);			/* clears its copy of the key */
	if (!ok)
		OpenSSLFailed("EVP_DigestSign");
}

bool
HaEd25519Verify(const uint8 pub[HA_ED25519_KEY_LEN], const uint8 *msg, size_t len,
				const uint8 sig[HA_ED25519_SIG_LEN])
{
	EVP_PKEY   *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
												   HA_ED25519_KEY_LEN);
	EVP_MD_CTX *ctx;
	int			rc = 0;

	if (pkey == NULL)
	{
		ERR_clear_error();
		return false;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1)
		rc = EVP_DigestVerify(ctx, sig, HA_ED25519_SIG_LEN, msg, len);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return rc == 1;
}

/*
 * C2SP key ID: the first 4 bytes of SHA-256(name || 0x0A || alg || pub);
 * alg 0x01 for signed-note keys, 0x04 for cosignature/v1 keys.
 */
void
HaKeyIdAlg(const char *name, const uint8 *pub, uint8 alg, uint8 id[4])
{
	size_t		nlen = strlen(name);
	uint8	   *buf = palloc(nlen + 2 + HA_ED25519_KEY_LEN);
	uint8		h[HA_HASH_LEN];

	memcpy(buf, name, nlen);
	buf[nlen] = '\n';
	buf[nlen + 1] = alg;
	memcpy(buf + nlen + 2, pub, HA_ED25519_KEY_LEN);
	HaSha256Once(buf, nlen + 2 + HA_ED25519_KEY_LEN, h);
	memcpy(id, h, 4);
	pfree(buf);
}

/* The key ID of a signed-note Ed25519 key (type 0x01). */
void
HaKeyId(const char *name, const uint8 *pub, uint8 id[4])
{
	HaKeyIdAlg(name, pub, HA_ED25519_ALG, id);
}
