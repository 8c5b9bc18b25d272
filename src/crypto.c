/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  The only file that includes OpenSSL: SHA-256 through the EVP API.
 *
 * Everything else hashes through HaSha256Init/Update/Final, so that the
 * choice of library, and its error handling, lives in one place.
 *
 *-------------------------------------------------------------------------
 */
#include "hipaa_audit.h"

#include <openssl/evp.h>

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
