// SPDX-License-Identifier: GPL-2.0
/* SipHash-2-4 through OpenSSL's EVP_MAC (see hash.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include "base/hash.h"
#include "base/log.h"

struct hasher {
	EVP_MAC_CTX *ctx;
};

struct hasher *hasher_new(const uint8_t *key)
{
	uint8_t rnd[HASH_KEY_LEN];
	size_t size = 8;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_END,
	};
	struct hasher *h;
	EVP_MAC *mac;

	if (!key) {
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			return NULL;
		key = rnd;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	h->ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac);	/* the context holds its own reference */
	if (!h->ctx || !EVP_MAC_init(h->ctx, key, HASH_KEY_LEN, params)) {
		hasher_free(h);
		errno = mac ? ENOMEM : ENOSYS;
		return NULL;
	}
	return h;
}

void hasher_free(struct hasher *h)
{
	if (!h)
		return;
	EVP_MAC_CTX_free(h->ctx);
	free(h);
}

uint64_t hasher_sum(struct hasher *h, const void *data, size_t n)
{
	unsigned char out[8];
	uint64_t v = 0;
	size_t len;

	/* Init with no key restarts the MAC under the key already set. */
	if (!EVP_MAC_init(h->ctx, NULL, 0, NULL) || !EVP_MAC_update(h->ctx, data, n) ||
	    !EVP_MAC_final(h->ctx, out, &len, sizeof(out)))
		return 0;
	memcpy(&v, out, sizeof(v));
	return v;
}

uint64_t hash_stable(const void *data, size_t n)
{
	/* Public on purpose: these hashes must match across processes. */
	static const uint8_t key[HASH_KEY_LEN] = "imapguard-stable";
	static struct hasher *h;

	if (!h && !(h = hasher_new(key))) {
		pr_warn("Couldn't set up SipHash: %s", strerror(errno));
		return 0;
	}
	return hasher_sum(h, data, n);
}
