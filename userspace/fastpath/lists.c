// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "lpmsum.h"
#include "fastpath/lists.h"
#include "base/log.h"
#include "policy/policy.h"

uint64_t mono_ns(void)
{
	struct timespec ts;

	/* The BPF side compares against bpf_ktime_get_coarse_ns(): same clock. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint32_t map_capacity(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.max_entries;
}

/* A hash map's entries, counted in batches: one syscall per COUNT_BATCH
 * entries, where the key walk takes one each (a million bans took the
 * daemon's loop a second at every metrics scrape). -1: not possible. */
#define COUNT_BATCH 1024

static long count_batch(int fd, const struct bpf_map_info *info)
{
	void *keys = malloc((size_t)COUNT_BATCH * info->key_size);
	void *vals = malloc((size_t)COUNT_BATCH * info->value_size);
	__u32 token, cnt;
	bool first = true;
	long n = 0;
	int err = 0;

	while (keys && vals && !err) {
		cnt = COUNT_BATCH;
		err = bpf_map_lookup_batch(fd, first ? NULL : &token, &token, keys, vals, &cnt,
					   NULL);
		if (err && err != -ENOENT)
			n = -1;
		else
			n += cnt;
		first = false;
	}
	if (!keys || !vals)
		n = -1;
	free(keys);
	free(vals);
	return n;
}

long map_count(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char key[64], next[64];
	void *prev = NULL;
	long n = 0;

	if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
	    (info.type == BPF_MAP_TYPE_HASH || info.type == BPF_MAP_TYPE_LRU_HASH) &&
	    (n = count_batch(fd, &info)) >= 0)
		return n;
	n = 0;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}

long census_entries(const struct ig_census *c, struct ig_maps *m, int fd)
{
	if (c && fd == m->bans)
		return c->bans;
	if (c && fd == m->throttle)
		return c->throttle;
	if (c && fd == m->flows)
		return c->flows;
	if (c && fd == m->grants)
		return c->grants;
	return map_count(fd);
}

int counters_read(struct ig_maps *m, struct ig_counter sum[IG_C_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct ig_counter *v;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 i = 0; i < IG_C_MAX; i++) {
		sum[i].packets = sum[i].bytes = 0;
		if (bpf_map_lookup_elem(m->counters, &i, v))
			continue;
		for (int c = 0; c < ncpu; c++) {	/* per-CPU slots */
			sum[i].packets += v[c].packets;
			sum[i].bytes += v[c].bytes;
		}
	}
	free(v);
	return 0;
}

/* Userspace-only counters (e.g. map full) live on CPU 0's slot, which the
 * BPF side never writes for these indexes. */
void count_extra(struct ig_maps *m, uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	struct ig_counter *v;

	if (ncpu <= 0 || !(v = calloc(ncpu, sizeof(*v))))
		return;
	if (!bpf_map_lookup_elem(m->counters, &idx, v)) {
		v[0].packets++;
		bpf_map_update_elem(m->counters, &idx, v, BPF_ANY);
	}
	free(v);
}

static bool map_empty(int fd)
{
	char key[64];

	return bpf_map_get_next_key(fd, NULL, key) != 0;
}

static __u32 list_flags(struct ig_maps *m)
{
	return (map_empty(m->allow) ? 0 : IG_F_ALLOW) | (map_empty(m->deny) ? 0 : IG_F_DENY) |
	       (map_empty(m->banpfx) ? 0 : IG_F_BANPFX);
}

/* After any list change (callers hold the pin-dir lock): look up only the
 * tries that hold something. */
static int refresh_flags(struct ig_maps *m)
{
	struct ig_cfg cfg;
	__u32 zero = 0, flags;

	if (bpf_map_lookup_elem(m->cfg, &zero, &cfg))
		return -errno;
	flags = list_flags(m);
	if (flags == cfg.flags)
		return 0;
	cfg.flags = flags;
	return bpf_map_update_elem(m->cfg, &zero, &cfg, BPF_ANY) ? -errno : 0;
}

static struct ig_lpm_key lpm_key(const struct ig_prefix *p)
{
	struct ig_lpm_key k = { .prefixlen = p->plen };

	memcpy(k.addr, p->addr, 16);
	return k;
}

/* Exact addresses and IPv6 /64s are host entries, in the ig_bans hash (one
 * lookup each in BPF, for bans and deny alike); any other prefix goes to an
 * LPM trie. Not ::/64: it holds the IPv4-mapped space, which BPF looks up
 * as /128s (IPv4 packets have no /64 key), so only the trie matches it. */
bool host_entry(const struct ig_prefix *p)
{
	static const uint8_t zero[8];

	if (p->plen == 128)
		return true;
	return p->plen == 64 && !addr_is_v4(p->addr) && memcmp(p->addr, zero, 8);
}

/* Mark host entry k in ig_bansum (common.h), before it goes into ig_bans:
 * BPF skips the lookup of a key whose bit is clear. Bits are never cleared
 * (a stale one costs BPF a lookup for nothing). */
int bansum_mark(int fd, const struct ig_lpm_key *k)
{
	__u32 line = ig_bansum_line(k->addr, k->prefixlen);
	struct ig_bansum s;

	if (bpf_map_lookup_elem(fd, &line, &s))
		return -errno;
	if (ig_bansum_test(&s, k->addr, k->prefixlen))
		return 0;
	ig_bansum_set(&s, k->addr, k->prefixlen);
	return bpf_map_update_elem(fd, &line, &s, BPF_ANY) ? -errno : 0;
}

/* Write a host entry back, or delete it once it is neither ban nor deny. */
static int host_put(struct ig_maps *m, const struct ig_lpm_key *k, const struct ig_ban_val *v)
{
	int err;

	if (!v->banned && !v->deny)
		return bpf_map_delete_elem(m->bans, k) && errno != ENOENT ? -errno : 0;
	err = bansum_mark(m->bansum, k);
	if (err)
		return err;
	return bpf_map_update_elem(m->bans, k, v, BPF_ANY) ? -errno : 0;
}

/* Deny-list origins of exactly p; 0 when p is not on the list. */
static uint8_t deny_get(struct ig_maps *m, const struct ig_prefix *p)
{
	struct ig_lpm_key k = lpm_key(p);
	struct ig_ban_val bv;
	struct ig_deny_val dv;

	if (host_entry(p))
		return bpf_map_lookup_elem(m->bans, &k, &bv) ? 0 : bv.deny;
	return bpf_map_lookup_elem(m->deny, &k, &dv) ? 0 : dv.origin;
}

/* Set them; 0 takes p off the list. A trie prefix must be marked in the
 * prefilter before it goes in (callers do). */
static int deny_put(struct ig_maps *m, const struct ig_prefix *p, uint8_t origin)
{
	struct ig_lpm_key k = lpm_key(p);
	struct ig_deny_val dv = { .origin = origin };
	struct ig_ban_val bv = {};

	if (host_entry(p)) {
		bpf_map_lookup_elem(m->bans, &k, &bv);	/* keeps a ban it may carry */
		bv.deny = origin;
		return host_put(m, &k, &bv);
	}
	if (!origin)
		return bpf_map_delete_elem(m->deny, &k) ? -errno : 0;
	return bpf_map_update_elem(m->deny, &k, &dv, BPF_ANY) ? -errno : 0;
}

/* ---- LPM prefilter (ig_lpmsum, see common.h) ---------------------------- */

static void sum_range(struct ig_lpmsum *s, int list, uint32_t first, uint32_t n)
{
	for (uint32_t i = first; i < first + n; i++)
		s[i / 64].bits[list] |= 1ULL << (i % 64);
}

/* Mark every slot that an address inside trie key k can have. */
static void sum_mark(struct ig_lpmsum *s, int list, const struct ig_lpm_key *k)
{
	static const uint8_t mapped[16] = { [10] = 0xff, [11] = 0xff };
	uint32_t plen = k->prefixlen;
	uint8_t a[16], b[16];
	uint64_t top;

	memcpy(a, k->addr, 16);
	addr_mask(a, plen);
	if (plen >= 96 && !memcmp(a, mapped, 12)) {	/* IPv4: slot = /16 */
		uint32_t n = plen >= 96 + 16 ? 1 : 1u << (96 + 16 - plen);

		sum_range(s, list, (a[12] << 8 | a[13]) & ~(n - 1), n);
		return;
	}
	memcpy(b, mapped, 16);
	addr_mask(b, plen);
	if (!memcmp(a, b, 16))		/* contains ::ffff:0.0.0.0/96 */
		sum_range(s, list, 0, 65536);
	if (plen >= 48) {		/* IPv6: slot = /48, hashed */
		sum_range(s, list, ig_sum_slot6(a), 1);
		return;
	}
	if (plen < 48 - 10) {		/* > 1024 /48s: they would hash onto most slots */
		sum_range(s, list, 65536, 65536);
		return;
	}
	top = 0;
	for (int i = 0; i < 6; i++)
		top = top << 8 | a[i];
	for (uint64_t i = 0; i < 1ULL << (48 - plen); i++) {
		for (int j = 0; j < 6; j++)
			b[j] = (top | i) >> (40 - 8 * j);
		sum_range(s, list, ig_sum_slot6(b), 1);
	}
}

/* The whole prefilter in one batch syscall each way. */
static int sum_io(struct ig_maps *m, struct ig_lpmsum *s, bool write)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	__u32 *keys = calloc(IG_SUM_ENTRIES, sizeof(*keys)), n = IG_SUM_ENTRIES, next;
	int err;

	if (!keys)
		return -ENOMEM;
	for (__u32 i = 0; i < n; i++)
		keys[i] = i;
	if (write)
		err = bpf_map_update_batch(m->lpmsum, keys, s, &n, &o) ? -errno : 0;
	else	/* ENOENT: the array ended, with every entry read */
		err = bpf_map_lookup_batch(m->lpmsum, NULL, &next, keys, s, &n, &o) &&
		      errno != ENOENT ? -errno : 0;
	free(keys);
	return err ? err : n == IG_SUM_ENTRIES ? 0 : -EIO;
}

/* The prefilter, in *out (caller frees, or passes it to sum_write). */
static int sum_read(struct ig_maps *m, struct ig_lpmsum **out)
{
	struct ig_lpmsum *s = calloc(IG_SUM_ENTRIES, sizeof(*s));
	int err = s ? sum_io(m, s, false) : -ENOMEM;

	if (err)
		free(s);
	*out = err ? NULL : s;
	return err;
}

/* Write back what sum_read gave, and free it. */
static int sum_write(struct ig_maps *m, struct ig_lpmsum *s)
{
	int err = sum_io(m, s, true);

	free(s);
	return err;
}

/* Before a key goes into a trie: mark its slots. */
static int sum_add(struct ig_maps *m, int list, const struct ig_lpm_key *k)
{
	struct ig_lpmsum *s;
	int err = sum_read(m, &s);

	if (err)
		return err;
	sum_mark(s, list, k);
	return sum_write(m, s);
}

/* After deletes from a trie: the bits of exactly what it still holds. Set
 * bits of current entries stay set throughout, so BPF never misses one. */
static int sum_rebuild(struct ig_maps *m, int list, int fd)
{
	struct ig_lpm_key k, cur, *prev = NULL;
	struct ig_lpmsum *s;
	int err = sum_read(m, &s);

	if (err)
		return err;
	for (__u32 i = 0; i < IG_SUM_ENTRIES; i++)
		s[i].bits[list] = 0;
	while (!bpf_map_get_next_key(fd, prev, &k)) {
		sum_mark(s, list, &k);
		cur = k;
		prev = &cur;
	}
	if (errno != ENOENT) {	/* a partial walk would clear live entries' bits */
		err = -errno;
		free(s);
		return err;
	}
	return sum_write(m, s);
}

/* ---- allow list: effective masks -------------------------------------- */

struct allow_ent {
	struct ig_lpm_key k;
	struct ig_allow_val v;
	bool keep;
};

static int ent_cmp(const void *a, const void *b)
{
	const struct ig_lpm_key *x = a, *y = b;

	if (x->prefixlen != y->prefixlen)
		return x->prefixlen < y->prefixlen ? -1 : 1;
	return memcmp(x->addr, y->addr, 16);
}

static uint32_t own_mask(const struct ig_allow_val *v)
{
	return ((v->origin & ~IG_ORIGIN_POLICY) ? IG_ALL_PORTS : 0) |
	       ((v->origin & IG_ORIGIN_POLICY) ? v->policy_mask : 0);
}

/*
 * An array v of n elements of size sz, with room for *cap, made to hold
 * more: doubled as often as needed. The new array, or NULL (v unchanged)
 * when memory runs out.
 */
static void *grow(void *v, size_t n, size_t *cap, size_t more, size_t sz)
{
	size_t c = *cap;

	if (n + more <= c)
		return v;
	while (n + more > c)
		c = c ? c * 2 : 64;
	v = realloc(v, c * sz);
	if (v)
		*cap = c;
	return v;
}

/* Read the whole trie, sorted by (plen, addr). */
static int allow_read(int fd, struct allow_ent **out, size_t *n)
{
	struct ig_lpm_key k, *prev = NULL;
	struct allow_ent *v = NULL, *tmp;
	size_t cap = 0;

	*n = 0;
	while (!bpf_map_get_next_key(fd, prev, &k)) {
		tmp = grow(v, *n, &cap, 1, sizeof(*v));
		if (!tmp) {
			free(v);
			return -ENOMEM;
		}
		v = tmp;
		v[*n].k = k;
		v[*n].keep = true;
		if (bpf_map_lookup_elem(fd, &k, &v[*n].v))
			continue;	/* deleted under us */
		prev = &v[*n].k;
		(*n)++;
	}
	if (*n)
		qsort(v, *n, sizeof(*v), ent_cmp);
	*out = v;
	return 0;
}

/*
 * The trie answers with the longest match only, so each entry carries the
 * union of its own ports and those of every shorter entry containing it.
 * Entries are written first and stale ones deleted last: at no moment is a
 * source that stays allowed seen as not allowed.
 */
static int allow_write(struct ig_maps *m, struct allow_ent *v, size_t n)
{
	bool plens[129] = {}, stale = false;
	struct ig_lpmsum *s;
	int err = sum_read(m, &s);

	if (err)
		return err;
	qsort(v, n, sizeof(*v), ent_cmp);
	for (size_t i = 0; i < n; i++)
		if (v[i].keep) {
			plens[v[i].k.prefixlen] = true;
			sum_mark(s, IG_SUM_ALLOW, &v[i].k);
		}
	err = sum_write(m, s);
	for (size_t i = 0; i < n && !err; i++) {
		uint32_t mask = own_mask(&v[i].v);

		if (!v[i].keep)
			continue;
		for (unsigned int q = 0; q < v[i].k.prefixlen; q++) {
			struct allow_ent probe = { .k = v[i].k }, *c;

			if (!plens[q])
				continue;
			probe.k.prefixlen = q;
			addr_mask(probe.k.addr, q);
			c = bsearch(&probe, v, n, sizeof(*v), ent_cmp);
			if (c && c->keep)
				mask |= own_mask(&c->v);
		}
		v[i].v.port_mask = mask;
		if (bpf_map_update_elem(m->allow, &v[i].k, &v[i].v, BPF_ANY))
			err = -errno;
	}
	for (size_t i = 0; i < n && !err; i++)
		if (!v[i].keep)
			stale |= !bpf_map_delete_elem(m->allow, &v[i].k);
	if (!err && stale)
		err = sum_rebuild(m, IG_SUM_ALLOW, m->allow);
	return err;
}

static struct allow_ent *allow_find_or_add(struct allow_ent **v, size_t *n, size_t *cap,
					   const struct ig_lpm_key *k)
{
	struct allow_ent *tmp;

	for (size_t i = 0; i < *n; i++)
		if (!ent_cmp(&(*v)[i].k, k))
			return &(*v)[i];
	tmp = grow(*v, *n, cap, 1, sizeof(**v));
	if (!tmp)
		return NULL;
	*v = tmp;
	tmp = &(*v)[(*n)++];
	memset(tmp, 0, sizeof(*tmp));
	tmp->k = *k;
	tmp->keep = true;
	return tmp;
}

/* ---- policy ----------------------------------------------------------- */

static int add_policy_allow(struct allow_ent **v, size_t *n, size_t *cap,
			    const struct pol_list *l, uint32_t mask)
{
	for (size_t i = 0; i < l->n; i++) {
		struct ig_lpm_key k = lpm_key(&l->v[i]);
		struct allow_ent *e = allow_find_or_add(v, n, cap, &k);

		if (!e)
			return -ENOMEM;
		if (!(e->v.origin & IG_ORIGIN_POLICY))
			e->v.policy_mask = 0;
		e->v.origin |= IG_ORIGIN_POLICY;
		e->v.policy_mask |= mask;
		e->keep = true;
	}
	return 0;
}

static int apply_allow(struct ig_maps *m, const struct policy *pol, const uint8_t *slots)
{
	struct allow_ent *v;
	size_t n, cap;
	int err;

	err = allow_read(m->allow, &v, &n);
	if (err)
		return err;
	cap = n;
	/* Forget what the previous policy said; CLI/daemon entries stay. */
	for (size_t i = 0; i < n; i++) {
		v[i].v.origin &= ~IG_ORIGIN_POLICY;
		v[i].v.policy_mask = 0;
		v[i].keep = v[i].v.origin != 0;
	}
	err = add_policy_allow(&v, &n, &cap, &pol->allow, IG_ALL_PORTS);
	for (int i = 0; !err && i < pol->nports; i++)
		err = add_policy_allow(&v, &n, &cap, &pol->ports[i].allow, 1U << slots[i]);
	if (!err)
		err = allow_write(m, v, n);
	free(v);
	return err;
}

static int prefix_cmp(const void *a, const void *b)
{
	const struct ig_prefix *x = a, *y = b;

	if (x->plen != y->plen)
		return x->plen < y->plen ? -1 : 1;
	return memcmp(x->addr, y->addr, 16);
}

static struct list_entry *entry_push(struct list_entry **v, size_t *n, size_t *cap)
{
	struct list_entry *tmp = grow(*v, *n, cap, 1, sizeof(**v));

	if (!tmp)
		return NULL;
	*v = tmp;
	return &(*v)[(*n)++];
}

static bool is_banned(const struct ig_ban_val *v) { return v->banned; }
static bool is_denied(const struct ig_ban_val *v) { return v->deny; }
static int ban_collect(int fd, struct ban_info **out, size_t *n, size_t *cap,
		       bool (*keep)(const struct ig_ban_val *));

/* Every deny entry, host entries and trie prefixes alike; caller frees. */
static int deny_collect(struct ig_maps *m, struct list_entry **out, size_t *n)
{
	struct ig_lpm_key k, cur, *prev = NULL;
	struct list_entry *e;
	struct ban_info *b = NULL;
	struct ig_deny_val dv;
	size_t nb = 0, bcap = 0, cap = 0;
	int err;

	*out = NULL;
	*n = 0;
	err = ban_collect(m->bans, &b, &nb, &bcap, is_denied);
	for (size_t i = 0; !err && i < nb; i++) {
		e = entry_push(out, n, &cap);
		if (!e)
			err = -ENOMEM;
		else
			*e = (struct list_entry){ .pfx = b[i].pfx, .origin = b[i].val.deny };
	}
	free(b);
	while (!err && !bpf_map_get_next_key(m->deny, prev, &k)) {
		cur = k;
		prev = &cur;
		if (bpf_map_lookup_elem(m->deny, &k, &dv))
			continue;
		e = entry_push(out, n, &cap);
		if (!e) {
			err = -ENOMEM;
			break;
		}
		memcpy(e->pfx.addr, k.addr, 16);
		e->pfx.plen = k.prefixlen;
		e->origin = dv.origin;
	}
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}

int list_entries(struct ig_maps *m, enum ig_list l, struct list_entry **out, size_t *n)
{
	struct allow_ent *v;
	int err;

	if (l == LIST_DENY)
		return deny_collect(m, out, n);
	err = allow_read(m->allow, &v, n);
	if (err)
		return err;
	*out = calloc(*n ? *n : 1, sizeof(**out));
	for (size_t i = 0; *out && i < *n; i++) {
		memcpy((*out)[i].pfx.addr, v[i].k.addr, 16);
		(*out)[i].pfx.plen = v[i].k.prefixlen;
		(*out)[i].origin = v[i].v.origin;
	}
	free(v);
	return *out ? 0 : -ENOMEM;
}

static int apply_deny(struct ig_maps *m, const struct policy *pol)
{
	struct ig_prefix *want = NULL;
	struct list_entry *have = NULL;
	struct ig_lpmsum *sum;
	struct ig_lpm_key k;
	size_t n = pol->deny.n, nhave = 0;
	bool trie_deleted = false;
	uint8_t origin;
	int err = 0;

	if (n) {
		want = malloc(n * sizeof(*want));
		if (!want)
			return -ENOMEM;
		memcpy(want, pol->deny.v, n * sizeof(*want));
		qsort(want, n, sizeof(*want), prefix_cmp);
	}
	/* Add (or mark) the policy's entries first, then drop stale ones. */
	err = sum_read(m, &sum);
	if (err)
		goto out;
	for (size_t i = 0; i < n; i++) {
		k = lpm_key(&want[i]);
		if (!host_entry(&want[i]))
			sum_mark(sum, IG_SUM_DENY, &k);
	}
	err = sum_write(m, sum);
	for (size_t i = 0; i < n && !err; i++) {
		origin = deny_get(m, &want[i]);
		if (!(origin & IG_ORIGIN_POLICY))
			err = deny_put(m, &want[i], origin | IG_ORIGIN_POLICY);
	}
	if (!err)
		err = deny_collect(m, &have, &nhave);
	for (size_t i = 0; i < nhave && !err; i++) {
		if (!(have[i].origin & IG_ORIGIN_POLICY) ||
		    (n && bsearch(&have[i].pfx, want, n, sizeof(*want), prefix_cmp)))
			continue;
		err = deny_put(m, &have[i].pfx, have[i].origin & ~IG_ORIGIN_POLICY);
		trie_deleted |= !host_entry(&have[i].pfx) && have[i].origin == IG_ORIGIN_POLICY;
	}
	if (!err && trie_deleted)
		err = sum_rebuild(m, IG_SUM_DENY, m->deny);
out:
	free(have);
	free(want);
	return err;
}

/*
 * Slots index the allow masks, which are written in place before the port
 * switch: a port that stays keeps its slot, so its allow entries mean the
 * same to both generations. A new port takes a slot no old port had, when
 * one is free, so its allow entries never apply to a retired port that the
 * old generation still enforces until the switch.
 */
static void assign_slots(const struct ig_cfg *old, const struct policy *pol, uint8_t *slots)
{
	uint32_t used = 0, old_slots = 0;

	for (int i = 0; i < pol->nports; i++) {
		slots[i] = 0xff;
		for (uint32_t j = 0; j < old->nports && j < IG_MAX_PORTS; j++) {
			if (old->ports[j])
				old_slots |= 1U << j;
			if (old->ports[j] == pol->ports[i].port) {
				slots[i] = j;
				used |= 1U << j;
			}
		}
	}
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < pol->nports; i++) {
			uint32_t taken = used | (pass ? 0 : old_slots);

			if (slots[i] != 0xff)
				continue;
			for (uint8_t j = 0; j < IG_MAX_PORTS; j++)
				if (!(taken & (1U << j))) {
					slots[i] = j;
					used |= 1U << j;
					break;
				}
		}
}

static void port_cfg(const struct pol_port *pp, uint8_t slot, unsigned int ifindex,
		     struct ig_port_cfg *pc)
{
	memset(pc, 0, sizeof(*pc));
	pc->action = pp->action;
	pc->starttls_mode = pp->starttls_mode;
	pc->slot = slot;
	pc->redirect_ifindex = ifindex;
	pc->src_plen4 = pp->src_plen4;
	pc->src_plen6 = pp->src_plen6;
	pc->sub_plen4 = pp->sub_plen4;
	pc->sub_plen6 = pp->sub_plen6;
	pc->access = pp->access;
	pc->src_interval_ns = pp->syn_interval_ns;
	if (pp->syn_interval_ns)
		pc->src_tol_ns = (uint64_t)(pp->syn_burst - 1) * pp->syn_interval_ns;
	pc->sub_interval_ns = pp->subnet_interval_ns;
	if (pp->subnet_interval_ns)
		pc->sub_tol_ns = (uint64_t)(pp->subnet_burst - 1) * pp->subnet_interval_ns;
}

static int put_port(struct ig_maps *m, __u32 gen, __u32 port, const struct ig_port_cfg *pc)
{
	__u32 key = IG_PORT_KEY(gen, port);

	return bpf_map_update_elem(m->ports, &key, pc, BPF_ANY) ? -errno : 0;
}

/*
 * Write pol's ports into generation gen (not in force): every port's entry,
 * an empty entry for each port a former use of gen left there, then the
 * generation's port_bits row in ig_cfg (nothing else in cfg changes). BPF
 * reads neither until ig_cfg.gen names gen.
 */
static int stage_ports(struct ig_maps *m, struct ig_cfg *cfg, __u32 gen,
		       const struct policy *pol, const uint8_t *slots,
		       const unsigned int *ifindex)
{
	__u64 *row = cfg->port_bits[gen], stale;
	struct ig_port_cfg pc = {};
	__u32 zero = 0;
	int err = 0;

	for (int i = 0; !err && i < pol->nports; i++) {
		port_cfg(&pol->ports[i], slots[i], ifindex[i], &pc);
		err = put_port(m, gen, pol->ports[i].port, &pc);
	}
	if (err)
		return err;
	memset(&pc, 0, sizeof(pc));
	for (unsigned int w = 0; w < 65536 / 64; w++) {
		for (stale = row[w]; !err && stale; stale &= stale - 1) {
			__u32 port = w * 64 + __builtin_ctzll(stale);
			bool kept = false;

			for (int i = 0; i < pol->nports; i++)
				kept |= pol->ports[i].port == port;
			if (!kept)
				err = put_port(m, gen, port, &pc);
		}
		row[w] = 0;
	}
	for (int i = 0; i < pol->nports; i++)
		row[IG_PORT_WORD(pol->ports[i].port)] |= IG_PORT_BIT(pol->ports[i].port);
	if (!err && bpf_map_update_elem(m->cfg, &zero, cfg, BPF_ANY))
		err = -errno;
	return err;
}

static int update_error(int ret, char *err, size_t errlen)
{
	if (ret == -E2BIG || ret == -ENOSPC)
		snprintf(err, errlen, "Couldn't update maps: a list is larger than its map (the "
			 "deny list's addresses share the ban hash: max_bans + max_deny entries); "
			 "raise [limits] and attach again");
	else
		snprintf(err, errlen, "Couldn't update maps: %s", strerror(-ret));
	return ret;
}

int apply_prepare(struct ig_maps *m, const struct policy *pol, struct apply_state *st,
		  char *err, size_t errlen)
{
	unsigned int ifindex[IG_MAX_PORTS] = {};
	struct ig_cfg *cfg = &st->next;
	uint8_t slots[IG_MAX_PORTS];
	__u32 zero = 0, gen;
	int ret;

	for (int i = 0; i < pol->nports; i++) {
		if (pol->ports[i].action != IG_ACT_REDIRECT)
			continue;
		ifindex[i] = if_nametoindex(pol->ports[i].redirect_to);
		if (!ifindex[i]) {
			snprintf(err, errlen, "%s: [port %u] redirect_to: no interface '%s'",
				 pol->file, pol->ports[i].port, pol->ports[i].redirect_to);
			return -ENODEV;
		}
	}
	memset(cfg, 0, sizeof(*cfg));
	bpf_map_lookup_elem(m->cfg, &zero, cfg);
	gen = !(cfg->gen & 1);
	assign_slots(cfg, pol, slots);

	/* Lists first, then the ports, so a policy change never opens a port
	 * that either policy closes. */
	ret = apply_allow(m, pol, slots);
	if (!ret)
		ret = apply_deny(m, pol);
	/* A trie the lists just filled is looked up from the staging write
	 * on; a bit is cleared only at the switch (a stale bit costs a
	 * lookup, a missing one skips entries). */
	cfg->flags |= list_flags(m);
	if (!ret)
		ret = stage_ports(m, cfg, gen, pol, slots, ifindex);
	if (ret)
		return update_error(ret, err, errlen);

	/* What apply_commit() puts in force, in one write. */
	cfg->gen = gen;
	memset(cfg->ports, 0, sizeof(cfg->ports));
	cfg->nports = 0;
	for (int i = 0; i < pol->nports; i++) {
		cfg->ports[slots[i]] = pol->ports[i].port;
		if (slots[i] + 1u > cfg->nports)
			cfg->nports = slots[i] + 1;
	}
	cfg->ban_scope = pol->ban_scope;
	cfg->hz = kernel_hz();
	cfg->flags = list_flags(m);
	cfg->ban_ttl_ns = pol->ban_ttl_ns;
	cfg->policy_hash = pol->hash;
	return 0;
}

int apply_commit(struct ig_maps *m, const struct apply_state *st, char *err, size_t errlen)
{
	__u32 zero = 0;
	int ret;

	/* The switch: gen changes in this one write, and with it the port
	 * generation of every packet that reads gen after it. */
	if (bpf_map_update_elem(m->cfg, &zero, &st->next, BPF_ANY)) {
		ret = -errno;
		snprintf(err, errlen, "Couldn't update config map: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

int apply_policy(struct ig_maps *m, const struct policy *pol, char *err, size_t errlen)
{
	struct apply_state *st = malloc(sizeof(*st));	/* 16 KiB: not on the stack */
	int ret;

	if (!st) {
		snprintf(err, errlen, "Couldn't apply the policy: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	ret = apply_prepare(m, pol, st, err, errlen);
	if (!ret)
		ret = apply_commit(m, st, err, errlen);
	free(st);
	return ret;
}

/* ---- CLI list operations ---------------------------------------------- */

int list_add(struct ig_maps *m, enum ig_list l, const struct ig_prefix *p, uint8_t origin)
{
	struct ig_lpm_key k = lpm_key(p);
	int err;

	if (l == LIST_DENY) {
		err = host_entry(p) ? 0 : sum_add(m, IG_SUM_DENY, &k);
		if (!err)
			err = deny_put(m, p, deny_get(m, p) | origin);
	} else {
		struct allow_ent *v;
		size_t n, cap;

		err = allow_read(m->allow, &v, &n);
		if (err)
			return err;
		cap = n;
		struct allow_ent *e = allow_find_or_add(&v, &n, &cap, &k);

		if (e) {
			e->v.origin |= origin;
			err = allow_write(m, v, n);
		} else {
			err = -ENOMEM;
		}
		free(v);
	}
	if (err == -E2BIG || err == -ENOSPC) {
		count_extra(m, IG_C_MAP_FULL);
		err = -E2BIG;
	}
	return err ? err : refresh_flags(m);
}

int list_del(struct ig_maps *m, enum ig_list l, const struct ig_prefix *p, bool *was_policy)
{
	struct ig_lpm_key k = lpm_key(p);
	struct allow_ent *v, *e;
	size_t n;
	int err;

	*was_policy = false;
	if (l == LIST_DENY) {
		uint8_t origin = deny_get(m, p);

		if (!origin)
			return -ENOENT;
		*was_policy = origin & IG_ORIGIN_POLICY;
		err = deny_put(m, p, 0);
		if (!err && !host_entry(p))
			err = sum_rebuild(m, IG_SUM_DENY, m->deny);
		return err ? err : refresh_flags(m);
	}
	err = allow_read(m->allow, &v, &n);
	if (err)
		return err;
	e = n ? bsearch(&k, v, n, sizeof(*v), ent_cmp) : NULL;
	if (!e) {
		err = -ENOENT;
	} else {
		*was_policy = e->v.origin & IG_ORIGIN_POLICY;
		e->keep = false;
		err = allow_write(m, v, n);
	}
	free(v);
	return err ? err : refresh_flags(m);
}

/* ---- bans ------------------------------------------------------------- */

static int ban_map(struct ig_maps *m, const struct ig_prefix *p)
{
	return host_entry(p) ? m->bans : m->banpfx;
}

int ban_add(struct ig_maps *m, const struct ig_prefix *p, uint64_t ttl_ns, const char *reason)
{
	return ban_add_from(m, p, ttl_ns, reason, 0);
}

int ban_add_from(struct ig_maps *m, const struct ig_prefix *p, uint64_t ttl_ns,
		 const char *reason, uint8_t origin)
{
	struct ig_lpm_key k = lpm_key(p);
	struct ig_ban_val v = {};
	int fd = ban_map(m, p), err;

	/* mono_ns() + ttl must not wrap (a wrapped expiry would read as
	 * permanent or as long past). */
	if (ttl_ns > POL_DURATION_MAX_NS)
		return -ERANGE;
	/* The trie's prefilter or the hash's summary, before the insert. */
	err = fd == m->banpfx ? sum_add(m, IG_SUM_BANPFX, &k) : bansum_mark(m->bansum, &k);
	if (err)
		return err;
	/* Re-banning keeps the drop count and start, refreshes expiry and
	 * reason; a host's deny-list mark stays. */
	bpf_map_lookup_elem(fd, &k, &v);
	if (!v.banned)
		memset(&v, 0, offsetof(struct ig_ban_val, banned));
	v.banned = 1;
	v.expires_ns = ttl_ns ? mono_ns() + ttl_ns : 0;
	if (!v.created)		/* a re-ban or extension keeps its start */
		v.created = time(NULL);
	snprintf(v.reason, sizeof(v.reason), "%s", reason ? reason : "");
	v.origin = origin;
	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY)) {
		err = -errno;
		if (err == -E2BIG || err == -ENOSPC || err == -ENOMEM) {
			count_extra(m, IG_C_MAP_FULL);
			return -E2BIG;
		}
		return err;
	}
	return fd == m->banpfx ? refresh_flags(m) : 0;
}

/* After deletes from ig_banpfx. */
static int banpfx_changed(struct ig_maps *m)
{
	int err = sum_rebuild(m, IG_SUM_BANPFX, m->banpfx);

	return err ? err : refresh_flags(m);
}

int ban_get(struct ig_maps *m, const struct ig_prefix *p, struct ig_ban_val *v)
{
	struct ig_lpm_key k = lpm_key(p);

	if (bpf_map_lookup_elem(ban_map(m, p), &k, v))
		return -errno;
	return v->banned ? 0 : -ENOENT;	/* a deny-only host entry */
}

/* Lift the ban of a host entry, keeping a deny it also carries; with
 * expired_by, only a ban that expired by then (the sweep). */
static int host_unban(struct ig_maps *m, const struct ig_lpm_key *k, uint64_t expired_by)
{
	struct ig_ban_val v;

	if (bpf_map_lookup_elem(m->bans, k, &v) || !v.banned)
		return -ENOENT;
	if (expired_by && (!v.expires_ns || v.expires_ns > expired_by))
		return -EAGAIN;		/* extended since the sweep looked */
	memset(&v, 0, offsetof(struct ig_ban_val, deny));
	return host_put(m, k, &v);
}

int ban_del(struct ig_maps *m, const struct ig_prefix *p)
{
	struct ig_lpm_key k = lpm_key(p);

	if (host_entry(p))
		return host_unban(m, &k, 0);
	if (bpf_map_delete_elem(m->banpfx, &k))
		return -errno;
	return banpfx_changed(m);
}

static int ban_reserve(struct ban_info **out, size_t *n, size_t *cap, size_t more)
{
	struct ban_info *tmp = grow(*out, *n, cap, more, sizeof(**out));

	if (!tmp)
		return -ENOMEM;
	*out = tmp;
	return 0;
}

#define BATCH 4096

/* The ban hash in batches: one syscall per 4096 bans instead of two per ban
 * (a million bans are read in a few ms). Single-threaded, as every user. */
static struct ig_lpm_key batch_keys[BATCH];	/* ig_ban_key's layout */
static struct ig_ban_val batch_vals[BATCH];

typedef int (*entry_fn)(void *ctx, const struct ig_lpm_key *k, const struct ig_ban_val *v);

/* fn() for each entry of fd (ig_bans or ig_banpfx) that keep() wants, until
 * fn returns non-zero: a hash in batches, an LPM trie (no batch reads) key
 * by key. Nothing is copied or kept: callers that only count stream. */
static int each_entry(int fd, bool (*keep)(const struct ig_ban_val *), entry_fn fn, void *ctx)
{
	struct ig_lpm_key k, *prev = NULL, cur;
	__u32 token, count;
	struct ig_ban_val v;
	bool first = true;
	int err, ret;

	do {
		count = BATCH;
		err = bpf_map_lookup_batch(fd, first ? NULL : &token, &token, batch_keys,
					   batch_vals, &count, NULL);
		if (err && err != -ENOENT)
			break;
		for (__u32 i = 0; i < count; i++)
			if (keep(&batch_vals[i]) && (ret = fn(ctx, &batch_keys[i], &batch_vals[i])))
				return ret;
		first = false;
	} while (!err);
	if (!err || err == -ENOENT)
		return 0;
	if (!first)
		return err;	/* failed midway: the walk would repeat entries */
	while (!bpf_map_get_next_key(fd, prev, &k)) {
		cur = k;
		prev = &cur;
		if (!bpf_map_lookup_elem(fd, &k, &v) && keep(&v) && (ret = fn(ctx, &k, &v)))
			return ret;
	}
	return 0;
}

struct each_ban {
	ban_fn fn;
	void *ctx;
};

static int each_ban_one(void *ctx, const struct ig_lpm_key *k, const struct ig_ban_val *v)
{
	struct each_ban *e = ctx;
	struct ig_prefix p = { .plen = k->prefixlen };

	memcpy(p.addr, k->addr, 16);
	return e->fn(e->ctx, &p, v);
}

int banpfx_each(struct ig_maps *m, ban_fn fn, void *ctx)
{
	struct each_ban e = { fn, ctx };

	return each_entry(m->banpfx, is_banned, each_ban_one, &e);
}

int ban_each(struct ig_maps *m, ban_fn fn, void *ctx)
{
	struct each_ban e = { fn, ctx };
	int err = each_entry(m->bans, is_banned, each_ban_one, &e);	/* not deny-only hosts */

	return err ? err : banpfx_each(m, fn, ctx);
}

struct collect {
	struct ban_info **out;
	size_t *n, *cap;
};

static int collect_one(void *ctx, const struct ig_lpm_key *k, const struct ig_ban_val *v)
{
	struct collect *c = ctx;
	struct ban_info *b;

	if (ban_reserve(c->out, c->n, c->cap, 1))
		return -ENOMEM;
	b = &(*c->out)[(*c->n)++];
	memcpy(b->pfx.addr, k->addr, 16);
	b->pfx.plen = k->prefixlen;
	b->val = *v;
	return 0;
}

/* The entries of fd that keep() wants, appended to *out. */
static int ban_collect(int fd, struct ban_info **out, size_t *n, size_t *cap,
		       bool (*keep)(const struct ig_ban_val *))
{
	struct collect c = { out, n, cap };

	return each_entry(fd, keep, collect_one, &c);
}

int ban_list(struct ig_maps *m, struct ban_info **out, size_t *n)
{
	size_t cap = 0;
	int err;

	*out = NULL;
	*n = 0;
	err = ban_collect(m->bans, out, n, &cap, is_banned);	/* not deny-only hosts */
	if (!err)
		err = ban_collect(m->banpfx, out, n, &cap, is_banned);
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}

/*
 * ig_bans from where the last call stopped, in batches (the hash's bucket
 * order, one syscall for up to BATCH entries: walked key by key, two
 * syscalls each, a million bans stalled the daemon's loop ~25 ms of every
 * second). Returns how many entries it examined; *done at the end.
 */
static unsigned int sweep_bans(struct ig_maps *m, struct sweep_cursor *c, unsigned int budget,
			       uint64_t now, int *swept, bool *done)
{
	unsigned int seen = 0;
	__u32 n;
	int err;

	while (!*done && seen < budget) {
		n = BATCH;
		err = bpf_map_lookup_batch(m->bans, c->have ? &c->batch : NULL, &c->batch,
					   batch_keys, batch_vals, &n, NULL);
		if (err && err != -ENOENT) {
			pr_debug("ban sweep: %s; starting over", strerror(-err));
			c->have = false;
			break;
		}
		c->have = !err;
		*done = err == -ENOENT;
		for (__u32 i = 0; i < n; i++) {
			const struct ig_ban_val *v = &batch_vals[i];

			if (v->banned && v->expires_ns && v->expires_ns <= now &&
			    !host_unban(m, &batch_keys[i], now))
				(*swept)++;
		}
		seen += n;
	}
	return seen;
}

/*
 * Look at about budget bans from where the last call stopped and delete
 * the expired ones. A full walk of a million-entry map every second costs a
 * CPU; expired bans already stop matching in BPF, so their slots can wait.
 * ig_banpfx, an LPM trie, has no batch reads: it is walked key by key, and
 * the entry under the cursor is deleted only once the walk has moved past
 * it, so get_next_key never loses its place.
 */
int ban_sweep_some(struct ig_maps *m, struct sweep_cursor *c, unsigned int budget)
{
	uint64_t now = mono_ns();
	struct ig_ban_val v;
	struct ig_lpm_key next;
	int swept[2] = {}, fd = m->banpfx;
	unsigned int i = 0;
	bool end = false;

	if (!c->which) {
		i = sweep_bans(m, c, budget, now, &swept[0], &end);
		if (!end)
			return swept[0];
		c->which = 1;
	}
	for (; i < budget; i++) {
		end = bpf_map_get_next_key(fd, c->have ? &c->key : NULL, &next);
		if (c->have && c->expired && !bpf_map_delete_elem(fd, &c->key))
			swept[1]++;
		if (end) {
			c->have = c->expired = false;
			c->which = 0;	/* both maps done: start over next time */
			break;
		}
		c->key = next;
		c->have = true;
		c->expired = !bpf_map_lookup_elem(fd, &next, &v) && v.banned &&
			     v.expires_ns && v.expires_ns <= now;
	}
	if (swept[1])
		banpfx_changed(m);
	return swept[0] + swept[1];
}

int ban_sweep(struct ig_maps *m)
{
	struct sweep_cursor c = {};

	return ban_sweep_some(m, &c, UINT_MAX);	/* one pass over both maps */
}

static const char *const reason_names[IG_C_MAX] = {
	[IG_R_PASS] = "pass",
	[IG_R_ALLOW] = "allow",
	[IG_R_DROP] = "drop",
	[IG_R_REJECT] = "reject",
	[IG_R_REJECT_DROP] = "reject_drop",
	[IG_R_REDIRECT] = "redirect",
	[IG_R_DENY] = "deny",
	[IG_R_BAN] = "ban",
	[IG_R_SYN_RATE] = "syn_rate",
	[IG_R_SUBNET_RATE] = "subnet_rate",
	[IG_R_BAD_FRAG] = "bad_fragment",
	[IG_R_STARTTLS_PLAIN] = "starttls_plaintext",
	[IG_R_STARTTLS_UNPARSABLE] = "starttls_unparsable",
	[IG_R_STARTTLS_NOFLOW] = "starttls_noflow",
	[IG_R_STARTTLS_RESET] = "starttls_reset",
	[IG_R_STARTTLS_LOGGED] = "starttls_logged",
	[IG_R_NO_GRANT] = "no_grant",
	[IG_R_NO_GRANT_REJECT] = "no_grant_reject",
	[IG_C_EVENTS_LOST] = "events_lost",
	[IG_C_EVENTS_SAMPLED] = "events_sampled",
	[IG_C_REDIRECT_ERR] = "redirect_error",
	[IG_C_MAP_FULL] = "map_full",
	[IG_C_NEW_BUCKET_SKIP] = "new_bucket_skip",
};

int ban_add_unless_longer(struct ig_maps *m, const struct ig_prefix *p, uint64_t ttl_ns,
			  const char *reason, uint8_t origin)
{
	struct ig_ban_val v;
	int err;

	if (!ban_get(m, p, &v) && v.origin != origin &&
	    (!v.expires_ns || (ttl_ns && v.expires_ns >= mono_ns() + ttl_ns)))
		return 1;
	err = ban_add_from(m, p, ttl_ns, reason, origin);
	return err;
}

int ban_del_origin(struct ig_maps *m, const struct ig_prefix *p, uint8_t origin)
{
	struct ig_ban_val v;

	if (ban_get(m, p, &v) || v.origin != origin)
		return -ENOENT;
	return ban_del(m, p);
}

struct origin_list {
	uint8_t origin;
	uint64_t now;
	struct ig_prefix *p;
	size_t n, cap;
};

static int collect_origin(void *ctx, const struct ig_prefix *p, const struct ig_ban_val *v)
{
	struct origin_list *o = ctx;
	struct ig_prefix *np;

	if (v->origin != o->origin || (v->expires_ns && v->expires_ns <= o->now))
		return 0;
	if (o->n == o->cap) {
		np = realloc(o->p, (o->cap ? 2 * o->cap : 64) * sizeof(*np));
		if (!np)
			return -ENOMEM;
		o->p = np;
		o->cap = o->cap ? 2 * o->cap : 64;
	}
	o->p[o->n++] = *p;
	return 0;
}

/* Streamed (ban_each): only the origin's own bans are kept, not a copy of
 * every ban in the map. */
int ban_list_origin(struct ig_maps *m, uint8_t origin, struct ig_prefix **out, size_t *n)
{
	struct origin_list o = { .origin = origin, .now = mono_ns() };
	int err = ban_each(m, collect_origin, &o);

	if (!err && !o.p && !(o.p = malloc(sizeof(*o.p))))
		err = -ENOMEM;
	if (err) {
		free(o.p);
		return err;
	}
	*out = o.p;
	*n = o.n;
	return 0;
}

const char *origin_name(uint8_t origin)
{
	switch (origin) {
	case IG_ORIGIN_POLICY: return "policy";
	case IG_ORIGIN_CLI: return "cli";
	case IG_ORIGIN_DAEMON: return "daemon";
	case IG_ORIGIN_CROWDSEC: return "crowdsec";
	case IG_ORIGIN_FLEET: return "fleet";
	default: return "local";
	}
}

uint8_t origin_parse(const char *name, size_t len)
{
	for (unsigned int o = IG_ORIGIN_POLICY; o <= IG_ORIGIN_FLEET; o <<= 1)
		if (strlen(origin_name(o)) == len && !strncmp(origin_name(o), name, len))
			return o;
	return 0;
}

const char *reason_name(int idx)
{
	return idx >= 0 && idx < IG_C_MAX && reason_names[idx] ? reason_names[idx] : "?";
}

static const char *const st_cause_names[IG_SC_MAX] = {
	[IG_SC_NONE] = "",
	[IG_SC_VERB] = "verb",
	[IG_SC_SYNTAX] = "syntax",
	[IG_SC_ORDER] = "out_of_order",
	[IG_SC_LITERAL] = "literal_too_long",
	[IG_SC_LONG] = "too_many_bytes",
	[IG_SC_NOFLOW] = "no_flow",
	[IG_SC_FRAG] = "fragment_or_syn_data",
};

const char *st_cause_name(int cause)
{
	return cause >= 0 && cause < IG_SC_MAX ? st_cause_names[cause] : "?";
}

bool st_reason(int reason)
{
	return reason >= IG_R_STARTTLS_PLAIN && reason <= IG_R_STARTTLS_LOGGED;
}
