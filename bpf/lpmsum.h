/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The prefilter's slot of an address (see ig_lpmsum in common.h). The only
 * code shared by the BPF side and userspace: both must compute exactly the
 * same slot, so there is one copy of it, not two kept in step.
 */
#ifndef IMAPGUARD_LPMSUM_H
#define IMAPGUARD_LPMSUM_H
#include "common.h"

/* An IPv6 address's slot: its /48, hashed into the upper 65536 slots. */
static inline __u32 ig_sum_slot6(const __u8 a[16])
{
	__u64 hi = 0;

	/* Byte order only has to agree between the BPF side and userspace,
	 * which run on the same host. */
	__builtin_memcpy(&hi, a, 6);
	return 65536 + (__u32)((hi * 0x9e3779b97f4a7c15ULL) >> 48);
}

/* An IPv4-mapped address's slot is its /16. IPv6 packets with an
 * IPv4-mapped source use the IPv4 slots, as the tries do. */
static inline __u32 ig_sum_slot(const __u8 a[16])
{
	__u32 w[2];

	__builtin_memcpy(w, a, 8);
	if (!w[0] && !w[1] && !a[8] && !a[9] && a[10] == 0xff && a[11] == 0xff)
		return (__u32)a[12] << 8 | a[13];
	return ig_sum_slot6(a);
}

/*
 * ig_bansum (common.h): the line and bits of an ig_bans key (plen 128: an
 * address; plen 64: an IPv6 /64, low half zero). The line comes from the
 * /64 (IPv4-mapped: from the IPv4 address), so both keys of an IPv6 source
 * are in one line; the bits from the whole key.
 */
static inline __u32 ig_bansum_line(const __u8 a[16], __u32 plen)
{
	__u64 w[2];

	__builtin_memcpy(w, a, 16);
	if (plen == 128 && !w[0] && a[8] == 0 && a[9] == 0 && a[10] == 0xff && a[11] == 0xff)
		w[0] = w[1];
	/* Fold first: the bits that vary between IPv6 sites are the high
	 * bytes of the word, which a multiply alone barely mixes. */
	w[0] ^= w[0] >> 32;
	return (__u32)((w[0] * 0x9e3779b97f4a7c15ULL) >> 49) & (IG_BANSUM_LINES - 1);
}

/* Two bits of the line per key (a Bloom filter with k = 2 inside one cache
 * line): with ~12% of a full map's line bits set, a key that is not there
 * passes ~1.5% of the time instead of ~6% with one bit. */
static inline __u64 ig_bansum_hash(const __u8 a[16], __u32 plen)
{
	__u64 w[2];

	__builtin_memcpy(w, a, 16);
	w[0] ^= w[1] * 0xff51afd7ed558ccdULL ^ plen;
	return (w[0] ^ (w[0] >> 32)) * 0xc4ceb9fe1a85ec53ULL;
}

static inline bool ig_bansum_test(const struct ig_bansum *s, const __u8 a[16], __u32 plen)
{
	__u64 h = ig_bansum_hash(a, plen);

	/* Branch-free: every branch here multiplies the BPF verifier's work. */
	return (s->w[(h >> 61) & 7] >> ((h >> 55) & 63)) & (s->w[(h >> 52) & 7] >> ((h >> 46) & 63)) & 1;
}

static inline void ig_bansum_set(struct ig_bansum *s, const __u8 a[16], __u32 plen)
{
	__u64 h = ig_bansum_hash(a, plen);

	s->w[(h >> 61) & 7] |= 1ULL << ((h >> 55) & 63);
	s->w[(h >> 52) & 7] |= 1ULL << ((h >> 46) & 63);
}

#endif
