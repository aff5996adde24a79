/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Realistic map contents for the benchmarks, all inside 198.18.0.0/15 and
 * 2001:db8::/32. One generator per list, used both to fill imapguard's maps
 * and to write the same entries for nftables and ipset:
 *
 *  bans      every IPv4 address of 198.18.0.0/15 except the test sources,
 *            then IPv6 /128s 2001:db8:b0XX:XXXX::1 up to the count asked
 *  deny      IPv4 /32s from 198.18.1.0 on whose low two bits are not 00,
 *            and IPv6 /64s of the rotating set from DENY6_BASE on with the
 *            same rule: a clean source with low bits 00 sits among denied
 *            neighbours; and DENY4_PFX /24s, every other one of 198.19.0.0
 *            on, so a source in 198.19 finds its /16 marked in the prefilter
 *            and walks the deny trie
 *  throttle  a source bucket for every IPv4 address and for IPv6 /64s
 *            2001:db8:10XX:XXXX::/64 (bench_rot6), plus their subnet buckets
 *  allow     16 IPv4 /24s 198.19.240-255.0/24 and 16 IPv6 /48s 2001:db8:a0XX::/48
 *  subnet    IPv6 /48s (trie) and /64s (hash): the subnet bans the detector makes
 */
#ifndef IMAPGUARD_BENCH_FILL_H
#define IMAPGUARD_BENCH_FILL_H
#include "bench.h"
#include "base/addr.h"
#include "fastpath/fastpath.h"
#include "fastpath/lists.h"
#include "lpmsum.h"

#define V4_BASE		0xc6120000u	/* 198.18.0.0 */
#define V4_COUNT	131072u		/* the /15 */
#define DENY4_FIRST	256u		/* 198.18.1.0: the lab /24 stays clean */
#define DENY6_BASE	(1u << 19)	/* rotating-set index where IPv6 denies start */
#define BATCH		65536u
#define DENY4_PFX	120u		/* 198.19.0.0/24, 198.19.2.0/24, ... 198.19.238.0/24 */

/* Test sources: never banned; only SRC*_DENIED is denied. */
#define SRC4_CLEAN	"198.18.100.4"	/* among denied neighbours */
#define SRC4_DENIED	"198.18.100.5"
#define SRC4_TRIE	"198.19.101.4"	/* clean, in a /16 that holds deny prefixes */
#define SRC4_BANNED	"198.18.100.8"
#define SRC4_ALLOWED	"198.19.240.5"
#define SRC6_CLEAN	"2001:db8:1008:8::1"	/* bench_rot6(DENY6_BASE + 8) */
#define SRC6_BANNED	"2001:db8:1008:c::1"	/* bench_rot6(DENY6_BASE + 12), banned as /128 */
#define SRC6_BANNED64	"2001:db8:b100:1::77"	/* in a banned /64 */
#define BAN6_64		"2001:db8:b100:1::/64"
#define SRC6_ALLOWED	"2001:db8:a000::5"

static inline void bench_map_v4(uint8_t a[16], uint32_t host_order)
{
	memset(a, 0, 16);
	a[10] = a[11] = 0xff;
	a[12] = host_order >> 24;
	a[13] = host_order >> 16;
	a[14] = host_order >> 8;
	a[15] = host_order;
}

static inline uint32_t bench_v4(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1 ? ntohl(a.s_addr) : 0;
}

/* ---- generators: up to n entries into out, returns how many ------------- */

static inline size_t plan_bans(size_t n, struct ig_prefix *out)
{
	static const uint8_t p6[5] = { 0x20, 0x01, 0x0d, 0xb8, 0xb0 };
	const uint32_t skip[] = { bench_v4(SRC4_CLEAN), bench_v4(SRC4_DENIED), bench_v4(SRC4_TRIE) };
	size_t k = 0;

	for (uint32_t i = 0; i < V4_COUNT && k < n; i++) {
		if (V4_BASE + i == skip[0] || V4_BASE + i == skip[1] || V4_BASE + i == skip[2])
			continue;
		bench_map_v4(out[k].addr, V4_BASE + i);
		out[k++].plen = 128;
	}
	for (uint32_t j = 0; k < n && j < (1u << 24); j++) {
		memset(out[k].addr, 0, 16);
		memcpy(out[k].addr, p6, 5);
		out[k].addr[5] = j >> 16;
		out[k].addr[6] = j >> 8;
		out[k].addr[7] = j;
		out[k].addr[15] = 1;
		out[k++].plen = 128;
	}
	return k;
}

static inline size_t plan_deny(size_t n4, size_t n6, struct ig_prefix *out)
{
	size_t k = 0, d = 0;

	for (uint32_t i = DENY4_FIRST; i < V4_COUNT && d < n4; i++) {
		if (!(i & 3))
			continue;
		bench_map_v4(out[k].addr, V4_BASE + i);
		out[k++].plen = 128;
		d++;
	}
	for (uint32_t j = 0; n4 && j < DENY4_PFX; j++) {
		bench_map_v4(out[k].addr, V4_BASE + V4_COUNT / 2 + (2 * j << 8));
		out[k++].plen = 96 + 24;
	}
	d = 0;
	for (uint32_t i = DENY6_BASE; d < n6 && i < (1u << 24); i++) {
		if (!(i & 3))
			continue;
		bench_rot6(out[k].addr, i);
		addr_mask(out[k].addr, 64);
		out[k++].plen = 64;
		d++;
	}
	return k;
}

static inline size_t plan_allow(struct ig_prefix *out)
{
	size_t k = 0;

	for (int i = 0; i < 16; i++) {
		bench_map_v4(out[k].addr, 0xc613f000u + (i << 8));	/* 198.19.240.0 + i */
		out[k++].plen = 96 + 24;
		memset(out[k].addr, 0, 16);
		out[k].addr[0] = 0x20, out[k].addr[1] = 0x01;
		out[k].addr[2] = 0x0d, out[k].addr[3] = 0xb8;
		out[k].addr[4] = 0xa0, out[k].addr[5] = i;
		out[k++].plen = 48;
	}
	return k;
}

/* ---- filling the maps ------------------------------------------------------ */

/* Flush n keys/values with one batch update; 0 or -errno. */
static inline int bench_flush(int fd, void *keys, void *vals, uint32_t *n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = BPF_ANY);
	uint32_t cnt = *n;
	int err = 0;

	if (cnt && bpf_map_update_batch(fd, keys, vals, &cnt, &o))
		err = -errno;
	*n = 0;
	return err;
}

/* ig_bansum, read whole, marked in memory and written back: every key
 * written straight into ig_bans must be marked (lists.c's bansum_mark(), one
 * key at a time, would take two syscalls each). */
struct bench_bansum {
	struct ig_bansum *line;
	int fd;
};

static inline int bench_bansum_open(struct bench_bansum *b, int fd)
{
	b->fd = fd;
	b->line = calloc(IG_BANSUM_LINES, sizeof(*b->line));
	if (!b->line)
		return -ENOMEM;
	for (__u32 i = 0; i < IG_BANSUM_LINES; i++)
		if (bpf_map_lookup_elem(fd, &i, &b->line[i]))
			return -errno;
	return 0;
}

static inline void bench_bansum_mark(struct bench_bansum *b, const uint8_t a[16], uint32_t plen)
{
	ig_bansum_set(&b->line[ig_bansum_line(a, plen)], a, plen);
}

static inline int bench_bansum_close(struct bench_bansum *b)
{
	int err = 0;

	for (__u32 i = 0; b->line && !err && i < IG_BANSUM_LINES; i++)
		if (bpf_map_update_elem(b->fd, &i, &b->line[i], BPF_ANY))
			err = -errno;
	free(b->line);
	b->line = NULL;
	return err;
}

/* Exact-address bans, straight into the hash (ban_add would take 3
 * syscalls each); permanent, so the daemon's sweep keeps them. */
static inline int bench_fill_bans(struct ig_maps *m, size_t n)
{
	struct ig_prefix *p = calloc(n ? n : 1, sizeof(*p));
	struct ig_ban_key *k = calloc(BATCH, sizeof(*k));
	struct ig_ban_val *v = calloc(BATCH, sizeof(*v));
	struct bench_bansum sum = {};
	uint32_t nb = 0;
	int err = -ENOMEM;

	if (!p || !k || !v)
		goto out;
	n = plan_bans(n, p);
	/* the summary first: BPF must never see an entry whose bit is clear */
	err = bench_bansum_open(&sum, m->bansum);
	for (size_t i = 0; i < n && !err; i++)
		bench_bansum_mark(&sum, p[i].addr, 128);
	if (!err)
		err = bench_bansum_close(&sum);
	for (size_t i = 0; i < n && !err; i++) {
		k[nb].plen = 128;
		memcpy(k[nb].addr, p[i].addr, 16);
		v[nb].created = time(NULL);
		v[nb].banned = 1;
		snprintf(v[nb].reason, sizeof(v[nb].reason), "bench");
		if (++nb == BATCH)
			err = bench_flush(m->bans, k, v, &nb);
	}
	if (!err)
		err = bench_flush(m->bans, k, v, &nb);
out:
	free(sum.line);
	free(p);
	free(k);
	free(v);
	return err;
}

/* The fast path's ig_thr_key for address a (IPv4 mapped) masked to plen
 * (IPv4: 96 + length), as thr_key() in imapguard.bpf.c builds it. */
static inline void bench_thr_key(struct ig_thr_key *k, const uint8_t a[16], unsigned int plen,
				 uint16_t port, uint8_t level)
{
	bool v4 = addr_is_v4(a);
	uint8_t m[16];

	memcpy(m, a, 16);
	addr_mask(m, plen);
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, v4 ? m + 12 : m, v4 ? 4 : 8);
	k->port = port;
	k->level = level;
	k->family = v4 ? 4 : 6;
}

/*
 * Source buckets for every IPv4 address and n6 IPv6 /64s, plus their subnet
 * buckets (/24, /48), all on port. Buckets are full (tat in the past).
 */
static inline int bench_fill_throttle(int fd, uint32_t n6, uint16_t port)
{
	struct ig_thr_key *k = calloc(BATCH, sizeof(*k));
	struct ig_thr_val *v = calloc(BATCH, sizeof(*v));
	uint32_t nb = 0, n = V4_COUNT + n6;
	uint8_t a[16];
	int err = -ENOMEM;

	if (!k || !v)
		goto out;
	err = 0;
	for (uint32_t i = 0; i < n && !err; i++) {
		if (i < V4_COUNT) {
			bench_map_v4(a, V4_BASE + i);
			bench_thr_key(&k[nb++], a, 128, port, 0);
			if ((i & 255) == 0)
				bench_thr_key(&k[nb++], a, 120, port, 1);
		} else {
			bench_rot6(a, i - V4_COUNT);
			bench_thr_key(&k[nb++], a, 64, port, 0);
			if (((i - V4_COUNT) & 0xffff) == 0)
				bench_thr_key(&k[nb++], a, 48, port, 1);
		}
		if (nb >= BATCH - 2)
			err = bench_flush(fd, k, v, &nb);
	}
	if (!err)
		err = bench_flush(fd, k, v, &nb);
out:
	free(k);
	free(v);
	return err;
}

static inline int bench_add_prefix(struct ig_maps *m, int list, const struct ig_prefix *p)
{
	if (list < 0)
		return ban_add(m, p, 0, "bench");
	return list_add(m, list, p, IG_ORIGIN_CLI);
}

static inline int bench_add_str(struct ig_maps *m, int list, const char *s)
{
	struct ig_prefix p;
	int err = addr_parse(s, &p, false);

	return err ? err : bench_add_prefix(m, list, &p);
}

/*
 * Deny hosts and /64s straight into ig_bans, beside the bans (list_add
 * would rewrite the flags each time); anything else through list_add, which
 * also marks the trie's prefilter. The last one goes through list_add to
 * refresh the flags.
 */
static inline int bench_fill_deny(struct ig_maps *m, size_t n4, size_t n6)
{
	struct ig_prefix *p = calloc(n4 + n6 + DENY4_PFX + 1, sizeof(*p));
	struct ig_ban_val v;
	struct ig_lpm_key k;
	size_t n;
	int err = 0;

	if (!p)
		return -ENOMEM;
	n = plan_deny(n4, n6, p);
	for (size_t i = 0; i + 1 < n && !err; i++) {
		k.prefixlen = p[i].plen;
		memcpy(k.addr, p[i].addr, 16);
		if (!host_entry(&p[i]))
			err = list_add(m, LIST_DENY, &p[i], IG_ORIGIN_CLI);
		else {	/* the address may be banned too: keep that */
			if (bpf_map_lookup_elem(m->bans, &k, &v))
				memset(&v, 0, sizeof(v));
			v.deny = IG_ORIGIN_CLI;
			err = bansum_mark(m->bansum, &k);
			if (!err && bpf_map_update_elem(m->bans, &k, &v, BPF_ANY))
				err = -errno;
		}
	}
	if (!err && n)
		err = bench_add_prefix(m, LIST_DENY, &p[n - 1]);
	free(p);
	return err;
}

/* The allow list through the library (it keeps the effective masks). */
static inline int bench_fill_allow(struct ig_maps *m)
{
	struct ig_prefix p[32];
	size_t n = plan_allow(p);
	int err = 0;

	for (size_t i = 0; i < n && !err; i++)
		err = bench_add_prefix(m, LIST_ALLOW, &p[i]);
	return err;
}

/* Subnet bans (half /48 in the trie, half /64 in the hash) and the test
 * sources' own bans. */
static inline int bench_fill_subnet_bans(struct ig_maps *m, uint32_t n)
{
	char s[64];
	int err = 0;

	for (uint32_t i = 0; i < n && !err; i++) {
		if (i % 2)
			snprintf(s, sizeof(s), "2001:db8:f0%02x:%x::/64", i >> 16 & 0xff, i & 0xffff);
		else
			snprintf(s, sizeof(s), "2001:db8:%x::/48", 0xe000 + (i / 2 & 0xfff));
		err = bench_add_str(m, -1, s);
	}
	if (!err)
		err = bench_add_str(m, -1, BAN6_64);
	if (!err)
		err = bench_add_str(m, -1, SRC6_BANNED);
	return err;
}

#endif
