/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one hash: SipHash-2-4 (64-bit) through OpenSSL's EVP_MAC.
 *
 * Hash tables keyed by what attackers choose (user names, session ids,
 * source addresses) use a hasher with a random key from getrandom(), so
 * nobody can precompute colliding inputs. Values that must agree across
 * processes and restarts (the policy hash in the pinned config, the state
 * file's checksum, a followed file's identity) use hash_stable(), SipHash
 * under a fixed, public key: a checksum, not a secret.
 *
 * A hasher is not thread-safe; the daemon has one loop.
 */
#ifndef IMAPGUARD_HASH_H
#define IMAPGUARD_HASH_H
#include <stddef.h>
#include <stdint.h>

#define HASH_KEY_LEN 16

struct hasher;

/* A hasher under key, or under a fresh random key when key is NULL.
 * NULL with errno set (ENOMEM; ENOSYS when OpenSSL has no SipHash). */
struct hasher *hasher_new(const uint8_t *key);
void hasher_free(struct hasher *h);
uint64_t hasher_sum(struct hasher *h, const void *data, size_t n);
/* SipHash of data under the fixed key; 0 only if OpenSSL fails (logged once). */
uint64_t hash_stable(const void *data, size_t n);

#endif
