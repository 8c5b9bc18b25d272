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

struct HaSha256
{
	EVP_MD_CTX *ctx;
};

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
	return h;
}

void
HaSha256Init(HaSha256 *h)
{
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		OpenSSLFailed("EVP_DigestInit_ex");
}

void
HaSha256Update(HaSha256 *h, const void *data, size_t len)
{
	if (len > 0 && EVP_DigestUpdate(h->ctx, data, len) != 1)
		OpenSSLFailed("EVP_DigestUpdate");
}

void
HaSha256Final(HaSha256 *h, uint8 out[HA_HASH_LEN])
{
	unsigned int outlen = 0;

	if (EVP_DigestFinal_ex(h->ctx, out, &outlen) != 1 || outlen != HA_HASH_LEN)
		OpenSSLFailed("EVP_DigestFinal_ex");
}
