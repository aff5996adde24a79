// SPDX-License-Identifier: GPL-2.0
/*
 * imapguard fast path: one classifier behind an XDP and a tc entry point.
 * Only TCP to a protected port (or, with ban_scope = all, any IP packet)
 * touches a map; everything else passes after parsing alone.
 */
#define BPF_NO_PRESERVE_ACCESS_INDEX
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "lpmsum.h"
#include "parse.bpf.h"

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT	7

#define NSEC_PER_SEC	1000000000ULL
#define SAMPLE_BITS	14
#define SAMPLE_SLOTS	(1 << SAMPLE_BITS)	/* event sampling table */
#define CAS_TRIES	4

/* Bucket state is shared by all CPUs: read it once per decision. */
#define READ_ONCE(x)	(*(volatile typeof(x) *)&(x))

/* IG_PORT_KEY(generation, port) -> its action and throttle settings;
 * action 0 = unprotected. Only ig_cfg.gen's half is in force (common.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IG_PORT_GENS * 65536);
	__type(key, __u32);
	__type(value, struct ig_port_cfg);
} ig_ports SEC(".maps");

/*
 * Global run-time knobs: a global variable, so reading them costs a load,
 * not a map lookup (every packet, IMAP or not, reads ban_scope). Its section
 * is a one-entry array map that userspace pins and writes like any other.
 */
struct ig_cfg ig_cfg SEC(".data.ig_cfg");

/* Source CIDR -> ports on which it bypasses every check. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ig_lpm_key);
	__type(value, struct ig_allow_val);
} ig_allow SEC(".maps");

/* Source CIDR -> dropped on every protected port. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ig_lpm_key);
	__type(value, struct ig_deny_val);
} ig_deny SEC(".maps");

/* Address slot / 64 -> which slots may match each LPM trie (common.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IG_SUM_ENTRIES);
	__type(key, __u32);
	__type(value, struct ig_lpmsum);
} ig_lpmsum SEC(".maps");

/* Exact address (plen 128) or IPv6 /64 -> ban with expiry and/or deny. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ig_ban_key);
	__type(value, struct ig_ban_val);
} ig_bans SEC(".maps");

/* Which ig_bans keys may exist: one cache line per source (common.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IG_BANSUM_LINES);
	__type(key, __u32);
	__type(value, struct ig_bansum);
} ig_bansum SEC(".maps");

/* Any other banned CIDR (e.g. a subnet the detector banned) -> ban. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ig_lpm_key);
	__type(value, struct ig_ban_val);
} ig_banpfx SEC(".maps");

/* Exact address (plen 128) or IPv6 /64 -> grant: access = grant ports admit
 * a SYN from it until expires_ns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);	/* [limits] max_grants */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ig_ban_key);
	__type(value, struct ig_grant_val);
} ig_grants SEC(".maps");

/* (masked source or subnet, port, level) -> GCRA bucket state. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1048576);
	__type(key, struct ig_thr_key);
	__type(value, struct ig_thr_val);
} ig_throttle SEC(".maps");

/*
 * Admission filter in front of ig_throttle: a bucket key hashes to a slot
 * that holds, in units of 2^SEEN_SHIFT ns (~8 ms), one past the latest
 * theoretical arrival time of any bucket hashed there (struct seen). A slot in the past
 * means every such bucket is full, which is the same as no bucket: the SYN
 * takes its token from the slot alone (first sight), with no LRU lookup or
 * insert. Only a source seen again while its slot is busy gets a bucket,
 * so a spoofed flood costs a slot check, not an LRU insert with eviction.
 * A global variable: an array load, no map lookup. Writes are plain
 * stores: a lost race costs at most one token.
 */
#define SEEN_BITS	16
#define SEEN_SLOTS	(1 << SEEN_BITS)	/* 512 KiB */
#define SEEN_SHIFT	23	/* ~8.4 ms */
__u64 ig_seen[SEEN_SLOTS];
__u64 ig_seen_seed;

/* Per-CPU new-state budget (IG_NEW_STATE_PER_SEC): window start, used. */
struct ig_budget {
	__u64 start;
	__u64 used;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ig_budget);
} ig_newbkt SEC(".maps");

/* enum ig_reason / ig_counter_extra -> packets and bytes, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IG_C_MAX);
	__type(key, __u32);
	__type(value, struct ig_counter);
} ig_counters SEC(".maps");

/* struct ig_event records for the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} ig_events SEC(".maps");

/* hash(source, reason) -> time of the last event sent for it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SAMPLE_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} ig_sample SEC(".maps");

/* ifindex -> attachment record. Written and read by userspace only; it lives
 * here so the registry is pinned and dies together with the maps. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct ig_iface);
} ig_ifaces SEC(".maps");

/* V_REJECT: RST back to the sender; V_RST_FWD: the packet itself becomes
 * a RST and goes on to the server. */
enum verdict { V_PASS, V_DROP, V_REJECT, V_REDIRECT, V_RST_FWD };

/*
 * What a verdict needs besides its reason: the RST to build and, for action
 * starttls, the event's cause and verb. Scalars only: the starttls global
 * functions fill it through a pointer (starttls.bpf.h).
 */
struct vout {
	__u32 rst_seq, rst_ack;
	__u8 rst_flags;		/* 0: the answer to a SYN in p */
	__u8 cause;		/* enum ig_st_cause */
	__u8 mode;		/* in: enum ig_starttls_mode */
	__u8 open;		/* in: a SYN within budget, make its flow */
	__u8 verb[IG_VERB_LEN];
};

struct ctx_info {
	void *data, *data_end;
	void *ctx;		/* struct xdp_md or __sk_buff, as xdp says */
	bool xdp;
	__u32 len;
	__u32 redirect_ifindex;	/* out: V_REDIRECT target */
	struct vout out;
};

static __always_inline void count(__u32 idx, __u32 bytes)
{
	struct ig_counter *c = bpf_map_lookup_elem(&ig_counters, &idx);

	if (c) {	/* per-CPU slot: no atomics needed */
		c->packets++;
		c->bytes += bytes;
	}
}

/* Slot of (address, reason) in ig_sample: one multiply, so a dropped
 * packet's event check stays cheap (a collision only suppresses an event). */
static __always_inline __u32 sample_slot(const __u8 a[16], __u32 reason)
{
	__u64 w[2];

	__builtin_memcpy(w, a, 16);
	return ((w[0] ^ (w[1] + reason)) * 0x9e3779b97f4a7c15ULL) >> (64 - SAMPLE_BITS);
}

/*
 * At most one event per (source, reason) per second, so a flood cannot flood
 * userspace. The table is hashed, not keyed: a collision can only suppress an
 * event, never add one, and it needs no inserts on the hot path. It counts
 * in jiffies when userspace told us HZ: the verifier inlines bpf_jiffies64()
 * into one load, while coarse ns is a helper call that costs every dropped
 * packet about 2 ns more. A slot written on the other clock costs at most
 * one event too many or too few. now is 0 when the caller had no need of it.
 */
static __always_inline void report(struct pkt *p, struct ctx_info *ci,
				   __u32 reason, __u64 now)
{
	__u32 slot = sample_slot(p->saddr, reason), hz = ig_cfg.hz;
	__u64 *last = bpf_map_lookup_elem(&ig_sample, &slot);
	__u64 t, second;
	struct ig_event *e;

	if (!last)
		return;
	if (hz) {
		t = bpf_jiffies64();
		second = hz;
	} else {
		t = now = now ?: bpf_ktime_get_coarse_ns();
		second = NSEC_PER_SEC;
	}
	if (*last && t - *last < second) {
		count(IG_C_EVENTS_SAMPLED, 0);
		return;
	}
	*last = t;
	e = bpf_ringbuf_reserve(&ig_events, sizeof(*e), 0);
	if (!e) {
		count(IG_C_EVENTS_LOST, 0);
		return;
	}
	e->ts_ns = now ?: bpf_ktime_get_coarse_ns();
	/* Read only here: the XDP ingress_ifindex is three dependent loads. */
	e->ifindex = ci->xdp ? ((struct xdp_md *)ci->ctx)->ingress_ifindex :
			       ((struct __sk_buff *)ci->ctx)->ifindex;
	e->reason = reason;
	e->family = p->family;
	e->dport = p->dport;
	__builtin_memcpy(e->addr, p->saddr, 16);
	e->cause = ci->out.cause;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	__builtin_memcpy(e->verb, ci->out.verb, IG_VERB_LEN);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline bool ban_live(struct ig_ban_val *b, __u64 now)
{
	if (!b || !b->banned || (b->expires_ns && b->expires_ns <= now))
		return false;	/* expired bans stop matching even with no daemon */
	__sync_fetch_and_add(&b->packets, 1);
	return true;
}

/* The key of the source's exact address, or of its IPv6 /64. */
static __always_inline void host_key(struct ig_ban_key *k, struct pkt *p, __u32 plen)
{
	k->plen = plen;
	__builtin_memcpy(k->addr, p->saddr, 16);
	if (plen == 64)
		__builtin_memset(k->addr + 8, 0, 8);
}

/*
 * IG_R_BAN, IG_R_DENY or IG_R_PASS (neither) for the source. Host entries
 * (address, IPv6 /64) answer for both lists in one lookup each; the tries
 * are walked only when flags (after the prefilter) say they may match. A
 * ban wins over a deny: it is the one with a reason and a packet count.
 */
__noinline __u32 check_lists(struct pkt *p, __u64 now, __u32 flags)
{
	struct ig_lpm_key lk = { .prefixlen = 128 };
	struct ig_ban_val *v = NULL;
	struct ig_bansum *line;
	struct ig_ban_key k;
	bool deny = false;
	__u32 l;

	if (!p)
		return IG_R_PASS;
	/* The summary's line first: a key whose bit is clear is not in
	 * ig_bans, and its lookup (a cache miss in a hash of millions of
	 * buckets) is skipped. */
	host_key(&k, p, 128);
	l = ig_bansum_line(k.addr, 128);
	line = bpf_map_lookup_elem(&ig_bansum, &l);
	if (!line || ig_bansum_test(line, k.addr, 128))
		v = bpf_map_lookup_elem(&ig_bans, &k);
	if (v) {
		if (ban_live(v, now))
			return IG_R_BAN;
		deny = v->deny;
	}
	if (p->family == 6) {
		/* IPv6 hosts own a whole /64: ban or deny it as one. */
		host_key(&k, p, 64);
		v = NULL;
		/* The same line, but for an IPv4-mapped source: look it up
		 * again rather than branch (a cache hit, ~1 ns). */
		l = ig_bansum_line(k.addr, 64);
		line = bpf_map_lookup_elem(&ig_bansum, &l);
		if (!line || ig_bansum_test(line, k.addr, 64))
			v = bpf_map_lookup_elem(&ig_bans, &k);
		if (v) {
			if (ban_live(v, now))
				return IG_R_BAN;
			deny |= v->deny;
		}
	}
	__builtin_memcpy(lk.addr, p->saddr, 16);
	if ((flags & IG_F_BANPFX) && ban_live(bpf_map_lookup_elem(&ig_banpfx, &lk), now))
		return IG_R_BAN;
	if (deny || ((flags & IG_F_DENY) && bpf_map_lookup_elem(&ig_deny, &lk)))
		return IG_R_DENY;
	return IG_R_PASS;
}

static __always_inline bool is_allowed(struct pkt *p, __u32 slot_bit)
{
	struct ig_lpm_key k = { .prefixlen = 128 };
	struct ig_allow_val *v;

	__builtin_memcpy(k.addr, p->saddr, 16);
	v = bpf_map_lookup_elem(&ig_allow, &k);
	return v && (v->port_mask & slot_bit);
}

/* Drop from flags the tries that cannot hold the source (see ig_lpmsum). */
static __always_inline __u32 prefilter(struct pkt *p, __u32 flags)
{
	__u32 slot, idx;
	struct ig_lpmsum *s;
	__u64 bit;

	if (!(flags & (IG_F_ALLOW | IG_F_DENY | IG_F_BANPFX)))
		return flags;
	slot = ig_sum_slot(p->saddr);
	idx = slot / 64;
	s = bpf_map_lookup_elem(&ig_lpmsum, &idx);
	if (!s)
		return flags;
	bit = 1ULL << (slot & 63);
	if (!(s->bits[IG_SUM_ALLOW] & bit))
		flags &= ~IG_F_ALLOW;
	if (!(s->bits[IG_SUM_DENY] & bit))
		flags &= ~IG_F_DENY;
	if (!(s->bits[IG_SUM_BANPFX] & bit))
		flags &= ~IG_F_BANPFX;
	return flags;
}

/*
 * GCRA: a bucket is its theoretical arrival time. Take a token if the bucket
 * is less than tol ahead of now. compare-and-swap keeps concurrent CPUs from
 * spending the same token; after CAS_TRIES lost races on one bucket the SYN
 * counts as over budget (only a flood on one source can lose that often).
 * A full bucket (tat in the past) restarts from base, not now: base is later
 * when the admission slot holds a token this source took there (seen_base).
 */
static __always_inline bool gcra_take(struct ig_thr_val *v, __u64 now, __u64 base,
				      __u64 interval, __u64 tol)
{
	for (int i = 0; i < CAS_TRIES; i++) {
		__u64 old = READ_ONCE(v->tat_ns);
		__u64 t = old > now ? old : base;

		if (t - now > tol)
			return false;
		if (__sync_val_compare_and_swap(&v->tat_ns, old, t + interval) == old)
			return true;
	}
	return false;
}

/* The first plen (0..64) bits of 64, in network order. */
static __always_inline __u64 be_mask(__u32 plen)
{
	if (plen >= 64)
		return ~0ULL;
	return plen ? bpf_cpu_to_be64(~0ULL << (64 - plen)) : 0;
}

static __always_inline void thr_key(struct ig_thr_key *k, struct pkt *p,
				    __u32 plen4, __u32 plen6, __u8 level)
{
	__u64 w = 0;

	/* Policies keep plen6 at 64 or less: the first half is the prefix. */
	if (p->family == 4) {
		__builtin_memcpy(&w, p->saddr + 12, 4);
		w &= be_mask(plen4);
	} else {
		__builtin_memcpy(&w, p->saddr, 8);
		w &= be_mask(plen6);
	}
	__builtin_memcpy(k->addr, &w, 8);
	k->port = p->dport;
	k->level = level;
	k->family = p->family;
}

/* ---- admission filter (ig_seen) ---------------------------------------- */

/* A slot: one past its buckets' latest arrival time in SEEN_SHIFT units,
 * and the fingerprint of the key that wrote it (low 8 bits). 64 bits, so
 * time never wraps: with 32, compared modulo 2^24 units (39 h), a slot
 * never written looked busy for half of every 39 hours of uptime. */
struct seen {
	__u64 *slot;
	__u32 fp;	/* 8 bits */
};

static __always_inline struct seen seen_slot(struct ig_thr_key *k)
{
	__u64 w[2] = {}, h, seed = READ_ONCE(ig_seen_seed);

	/* A secret seed, so that nobody can pick a source whose slot another
	 * one they control keeps busy (its first SYNs would then always look
	 * like first sights). Drawn on first use; a race draws two, harmlessly. */
	if (!seed) {
		seed = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32() | 1;
		ig_seen_seed = seed;
	}
	__builtin_memcpy(w, k, sizeof(*k));
	/* Two rounds of murmur3's finaliser, the key's second word between
	 * them. One fold and one multiply were not enough: with some seeds,
	 * keys that differ in a few middle bits (neighbouring IPv6 prefixes)
	 * crowded into a few slots, twice the collisions of a random hash. */
	h = w[0] ^ seed;
	h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
	h = ((h ^ (h >> 33)) ^ w[1]) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (struct seen){ .slot = &ig_seen[(h >> (64 - SEEN_BITS)) & (SEEN_SLOTS - 1)],
			      .fp = (h >> (64 - SEEN_BITS - 8)) & 0xff };
}

/* How many units slot value v is ahead of now (negative: behind). */
static __always_inline __s64 seen_ahead(__u64 v, __u64 now)
{
	return (__s64)(v >> 8) - (__s64)(now >> SEEN_SHIFT);
}

/* Some bucket hashed to this slot may not be full. */
static __always_inline bool seen_busy(struct seen *s, __u64 now)
{
	return seen_ahead(READ_ONCE(*s->slot), now) > 0;
}

/* Record a bucket of this key whose arrival time is now tat (> now). */
static __always_inline void seen_raise(struct seen *s, __u64 now, __u64 tat)
{
	__u64 v = (((tat >> SEEN_SHIFT) + 1) << 8) | s->fp;

	if (seen_ahead(v, now) > seen_ahead(READ_ONCE(*s->slot), now))
		*s->slot = v;
}

/*
 * Where a full bucket of this key restarts: the slot may hold the token this
 * key took there at first sight (its fingerprint, no further ahead than one
 * interval): count it, rounded down, so never more than it took. Another
 * key's slot must not cost this one anything.
 */
static __always_inline __u64 seen_base(struct seen *s, __u64 now, __u64 interval)
{
	__u64 v = READ_ONCE(*s->slot);
	__s64 d = seen_ahead(v, now);
	__u64 t;

	if ((v & 0xff) != s->fp || d <= 1)
		return now;
	t = ((now >> SEEN_SHIFT) + d - 1) << SEEN_SHIFT;
	return t > now && t - now <= interval ? t : now;
}

/* This CPU's new-state budget, looked up once per SYN, and whether the SYN
 * went untracked (counted once, however many of its buckets were new). */
struct budget {
	struct ig_budget *b;
	bool looked, skipped;
};

/* One more bucket or slot mark within this CPU's budget for the second? */
static __always_inline bool new_state_ok(struct budget *bc, __u64 now)
{
	__u32 zero = 0;
	struct ig_budget *b;

	if (!bc->looked) {
		bc->looked = true;
		bc->b = bpf_map_lookup_elem(&ig_newbkt, &zero);
		if (bc->b && now - bc->b->start >= NSEC_PER_SEC) {
			bc->b->start = now;
			bc->b->used = 0;
		}
	}
	b = bc->b;
	if (!b)
		return true;
	if (b->used >= IG_NEW_STATE_PER_SEC) {
		bc->skipped = true;
		return false;
	}
	b->used++;
	return true;
}

/*
 * Take a token from the bucket of key k, whose slot s was busy or not, and
 * whose bucket v was looked up (NULL: none, or not looked up because the
 * slot was free). Over the new-state budget a source without a bucket
 * passes untracked.
 */
static __always_inline bool bucket_take(struct ig_thr_key *k, struct ig_thr_val *v, struct seen *s,
					bool busy, __u64 now, __u64 interval, __u64 tol,
					struct budget *bc)
{
	struct ig_thr_val init;
	__u64 base;
	bool ok;

	if (!busy) {
		/* Every bucket of the slot is full: this one too, or it has
		 * none. First sight: the token is recorded in the slot. */
		if (new_state_ok(bc, now))
			seen_raise(s, now, now + interval);
		return true;
	}
	base = seen_base(s, now, interval);
	if (v) {
		ok = gcra_take(v, now, base, interval, tol);
		seen_raise(s, now, READ_ONCE(v->tat_ns));
		return ok;
	}
	if (!new_state_ok(bc, now))
		return true;
	ok = base - now <= tol;
	init.tat_ns = ok ? base + interval : base;
	if (bpf_map_update_elem(&ig_throttle, k, &init, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(&ig_throttle, k);	/* another CPU created it */
		if (!v)
			return true;
		ok = gcra_take(v, now, base, interval, tol);
		init.tat_ns = READ_ONCE(v->tat_ns);
	}
	seen_raise(s, now, init.tat_ns);
	return ok;
}

/*
 * The source bucket is looked up first, so a source already over budget costs
 * one hash hit and spends no subnet token. A new source is inserted only after
 * its subnet granted a token: a flood inside one subnet cannot churn the LRU
 * faster than the subnet rate. Neither is looked up when its admission slot
 * says it is full.
 */
__noinline __u32 throttle(struct pkt *p, struct ig_port_cfg *pc, __u64 now)
{
	struct ig_thr_key sk = {}, nk = {};
	struct ig_thr_val *sv = NULL, *nv = NULL;
	struct seen ss = {}, ns;
	struct budget bc = {};
	bool sbusy = false, nbusy;
	__u32 r = IG_R_PASS;

	if (!p || !pc)
		return IG_R_PASS;
	if (pc->src_interval_ns) {
		thr_key(&sk, p, pc->src_plen4, pc->src_plen6, 0);
		ss = seen_slot(&sk);
		sbusy = seen_busy(&ss, now);
		if (sbusy) {
			sv = bpf_map_lookup_elem(&ig_throttle, &sk);
			if (sv && READ_ONCE(sv->tat_ns) > now + pc->src_tol_ns)
				return IG_R_SYN_RATE;
		}
	}
	if (pc->sub_interval_ns) {
		thr_key(&nk, p, pc->sub_plen4, pc->sub_plen6, 1);
		ns = seen_slot(&nk);
		nbusy = seen_busy(&ns, now);
		if (nbusy)
			nv = bpf_map_lookup_elem(&ig_throttle, &nk);
		if (!bucket_take(&nk, nv, &ns, nbusy, now, pc->sub_interval_ns, pc->sub_tol_ns, &bc))
			r = IG_R_SUBNET_RATE;
	}
	if (r == IG_R_PASS && pc->src_interval_ns && ss.slot &&
	    !bucket_take(&sk, sv, &ss, sbusy, now, pc->src_interval_ns, pc->src_tol_ns, &bc))
		r = IG_R_SYN_RATE;
	if (bc.skipped)
		count(IG_C_NEW_BUCKET_SKIP, 0);
	return r;
}

static __always_inline bool grant_live(struct ig_grant_val *g, __u64 now)
{
	if (!g || !g->expires_ns || g->expires_ns <= now)
		return false;	/* expired grants stop admitting even with no daemon */
	__sync_fetch_and_add(&g->packets, 1);
	return true;
}

/* Whether the source, or its IPv6 /64, holds a live grant. */
static __always_inline bool has_grant(struct pkt *p, __u64 now)
{
	struct ig_ban_key k;

	host_key(&k, p, 128);
	if (grant_live(bpf_map_lookup_elem(&ig_grants, &k), now))
		return true;
	if (p->family != 6)
		return false;
	host_key(&k, p, 64);
	return grant_live(bpf_map_lookup_elem(&ig_grants, &k), now);
}

/*
 * access = grant (common.h, enum ig_access): the SYN is the admission. A
 * granted source gets what action pass gives (the SYN budget); the others
 * get the port's action, with pass meaning drop. Other segments pass: an
 * admitted connection outlives its grant, and the kernel answers segments
 * of unknown connections as on any port.
 */
static __always_inline __u32 grant_action(struct pkt *p, struct ig_port_cfg *pc,
					  struct ctx_info *ci, __u64 now)
{
	if ((p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN)
		return IG_R_PASS;
	if (has_grant(p, now))
		return throttle(p, pc, now);
	switch (pc->action) {
	case IG_ACT_REJECT:
		return p->frag == FRAG_NONE ? IG_R_NO_GRANT_REJECT : IG_R_NO_GRANT;
	case IG_ACT_REDIRECT:
		ci->redirect_ifindex = pc->redirect_ifindex;
		return IG_R_REDIRECT;
	default:
		return IG_R_NO_GRANT;
	}
}
#include "starttls.bpf.h"

/* Port action for a packet that passed the lists. */
static __always_inline __u32 port_action(struct pkt *p, struct ig_port_cfg *pc,
					 struct ctx_info *ci, __u64 now)
{
	bool syn = (p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
	__u32 reason;

	/* action starttls keeps its guard on a grant port: only its SYN is
	 * judged by the grant, then the flow goes on as any starttls one. */
	if (pc->access == IG_ACCESS_GRANT && pc->action != IG_ACT_STARTTLS)
		return grant_action(p, pc, ci, now);
	if (pc->access == IG_ACCESS_GRANT && syn && !has_grant(p, now))
		return IG_R_NO_GRANT;
	switch (pc->action) {
	case IG_ACT_DROP:
		return IG_R_DROP;
	case IG_ACT_REJECT:
		/* A fragment cannot be answered: the RST needs the whole header. */
		return syn && p->frag == FRAG_NONE ? IG_R_REJECT : IG_R_REJECT_DROP;
	case IG_ACT_REDIRECT:
		ci->redirect_ifindex = pc->redirect_ifindex;
		return IG_R_REDIRECT;
	case IG_ACT_STARTTLS:
		if (!st_opens(p, syn))
			return starttls(p, pc, ci, false);
		/* fall through: a SYN spends the SYN budget as for pass */
	default:
		if (!syn)
			return IG_R_PASS;
		/* One throttle() for both actions: the verifier checks it once. */
		reason = throttle(p, pc, now);
		if (reason == IG_R_PASS && pc->action == IG_ACT_STARTTLS)
			starttls(p, pc, ci, true);
		return reason;
	}
}

/* Returns an enum ig_reason, or -1 when the packet is none of our business. */
static __always_inline int classify(struct pkt *p, struct ctx_info *ci, __u64 *now)
{
	struct ig_port_cfg *pc = NULL;
	struct ig_cfg *cfg = &ig_cfg;
	__u32 port, slot_bit, flags, reason, gen;
	int proto;

	proto = parse_ip(ci->data, ci->data_end, p);
	if (proto < 0)
		return -1;
	if (proto == IPPROTO_TCP && p->frag != FRAG_LATER) {
		if (parse_tcp(ci->data, ci->data_end, p) < 0) {
			/* RFC 1858: a first fragment too short for the TCP header
			 * is an evasion attempt, never legitimate. */
			if (p->frag != FRAG_FIRST || load_saddr(ci->data, ci->data_end, p))
				return -1;
			return IG_R_BAD_FRAG;
		}
		port = p->dport;
		/* One read of gen, then only its generation: an apply that is
		 * writing the other one is invisible until it flips gen. */
		gen = READ_ONCE(cfg->gen) & 1;
		if (cfg->port_bits[gen][IG_PORT_WORD(port)] & IG_PORT_BIT(port)) {
			port = IG_PORT_KEY(gen, port);
			pc = bpf_map_lookup_elem(&ig_ports, &port);
		}
		if (pc && pc->action == IG_ACT_NONE)
			pc = NULL;
		if (pc)
			parse_tcp_rest(ci->data, ci->data_end, p);
	}
	if (!pc && cfg->ban_scope != IG_SCOPE_ALL)
		return -1;
	if (load_saddr(ci->data, ci->data_end, p))
		return -1;
	if (pc)
		slot_bit = 1U << (pc->slot & 31);
	else
		slot_bit = 0x80000000U;	/* ban_scope = all: only "all ports" allows */

	flags = prefilter(p, cfg->flags);
	if ((flags & IG_F_ALLOW) && is_allowed(p, slot_bit))
		return IG_R_ALLOW;
	/* A drop port drops whatever bans and deny say: skip their lookups
	 * (bans and deny then count as "drop" there). */
	if (pc && pc->action == IG_ACT_DROP && pc->access != IG_ACCESS_GRANT)
		return IG_R_DROP;
	*now = bpf_ktime_get_coarse_ns();
	reason = check_lists(p, *now, flags);
	if (reason != IG_R_PASS)
		return reason;
	if (!pc)
		return -1;
	return port_action(p, pc, ci, *now);
}

static __always_inline enum verdict verdict_of(__u32 reason)
{
	switch (reason) {
	case IG_R_PASS:
	case IG_R_ALLOW:
		return V_PASS;
	case IG_R_REJECT:
	case IG_R_NO_GRANT_REJECT:
		return V_REJECT;
	case IG_R_REDIRECT:
		return V_REDIRECT;
	case IG_R_STARTTLS_PLAIN:
	case IG_R_STARTTLS_UNPARSABLE:
	case IG_R_STARTTLS_NOFLOW:
		return V_RST_FWD;
	case IG_R_STARTTLS_RESET:
		return V_REJECT;
	case IG_R_STARTTLS_LOGGED:
		return V_PASS;
	default:
		return V_DROP;
	}
}

/* Classify, count and report one packet. */
static __always_inline enum verdict process(struct ctx_info *ci, struct pkt *p)
{
	__u64 now = 0;
	int reason = classify(p, ci, &now);

	if (reason < 0)
		return V_PASS;
	if (reason == IG_R_REDIRECT && !ci->redirect_ifindex) {
		count(IG_C_REDIRECT_ERR, ci->len);	/* interface gone: fail closed */
		reason = IG_R_DROP;
	}
	count(reason, ci->len);
	/* A reset flow's later packets were reported with the flow. */
	if (reason != IG_R_PASS && reason != IG_R_ALLOW && reason != IG_R_STARTTLS_RESET)
		report(p, ci, reason, now);
	return verdict_of(reason);
}

static __always_inline __u32 csum_words(const void *buf, int nwords, __u32 sum)
{
	const __u16 *w = buf;

#pragma unroll
	for (int i = 0; i < nwords; i++)
		sum += w[i];
	return sum;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/*
 * The RST: by default the one answering the SYN in p (RFC 9293 3.10.7.1:
 * seq 0, ack = SEG.SEQ + SEG.LEN); ci->out.rst_flags set: the one it describes.
 * reply: from the packet's destination back to its source, else on to it.
 */
static __always_inline void fill_rst(struct tcphdr *t, struct pkt *p, struct ctx_info *ci,
				     bool reply)
{
	/* SEG.LEN: payload (TCP Fast Open may carry some) plus one for the SYN. */
	__u32 seglen = (p->l4_len > p->doff ? p->l4_len - p->doff : 0) + 1;

	__builtin_memset(t, 0, sizeof(*t));
	t->source = bpf_htons(reply ? p->dport : p->sport);
	t->dest = bpf_htons(reply ? p->sport : p->dport);
	((__u8 *)t)[12] = 5 << 4;	/* doff = 5, no options */
	if (ci->out.rst_flags) {
		t->seq = bpf_htonl(ci->out.rst_seq);
		t->ack_seq = bpf_htonl(ci->out.rst_ack);
		((__u8 *)t)[13] = ci->out.rst_flags;
		return;
	}
	t->ack_seq = bpf_htonl(p->seq + seglen + (p->tcp_flags & TCP_FIN ? 1 : 0));
	((__u8 *)t)[13] = TCP_RST | TCP_ACK;
}

/* Rewrite a (trimmed) frame into a RST, in place: back to the sender
 * (reply) or on to the receiver. 0 or -1. */
static __always_inline int build_rst(void *data, void *data_end, struct pkt *p,
				     struct ctx_info *ci, bool reply)
{
	__u32 l3 = p->l3_off;
	struct ethhdr *eth = data;
	struct tcphdr tcp;
	__u8 mac[6];
	__u32 sum;

	if (l3 > sizeof(*eth) + MAX_VLANS * sizeof(struct vlan_hdr) ||
	    (void *)(eth + 1) > data_end)
		return -1;
	if (reply) {
		__builtin_memcpy(mac, eth->h_dest, 6);
		__builtin_memcpy(eth->h_dest, eth->h_source, 6);
		__builtin_memcpy(eth->h_source, mac, 6);
	}
	fill_rst(&tcp, p, ci, reply);
	/* Headers are built on the stack and copied in whole: checksumming
	 * packet memory loses the verifier's range after the memset. */
	if (p->family == 4) {
		struct iphdr *ip = data + l3, iph = {};
		struct tcphdr *t = (void *)(ip + 1);

		if ((void *)(t + 1) > data_end)
			return -1;
		iph.version = 4;
		iph.ihl = 5;
		iph.tot_len = bpf_htons(sizeof(iph) + sizeof(tcp));
		iph.frag_off = bpf_htons(0x4000);	/* DF */
		iph.ttl = 64;
		iph.protocol = IPPROTO_TCP;
		iph.saddr = reply ? ip->daddr : ip->saddr;
		iph.daddr = reply ? ip->saddr : ip->daddr;
		iph.check = csum_fold(csum_words(&iph, sizeof(iph) / 2, 0));
		sum = csum_words(&iph.saddr, 4, 0);
		sum += bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(tcp));
		tcp.check = csum_fold(csum_words(&tcp, sizeof(tcp) / 2, sum));
		*ip = iph;
		*t = tcp;
	} else {
		struct ipv6hdr *ip6 = data + l3, ip6h = {};
		struct tcphdr *t = (void *)(ip6 + 1);

		if ((void *)(t + 1) > data_end)
			return -1;
		ip6h.version = 6;
		ip6h.payload_len = bpf_htons(sizeof(tcp));
		ip6h.nexthdr = IPPROTO_TCP;
		ip6h.hop_limit = 64;
		ip6h.saddr = reply ? ip6->daddr : ip6->saddr;
		ip6h.daddr = reply ? ip6->saddr : ip6->daddr;
		sum = csum_words(&ip6h.saddr, 16, 0);
		sum += bpf_htons(sizeof(tcp)) + bpf_htons(IPPROTO_TCP);
		tcp.check = csum_fold(csum_words(&tcp, sizeof(tcp) / 2, sum));
		*ip6 = ip6h;
		*t = tcp;
	}
	return 0;
}

static __always_inline __u32 rst_len(struct pkt *p)
{
	return p->l3_off + (p->family == 4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr)) +
	       sizeof(struct tcphdr);
}

SEC("xdp")
int ig_xdp(struct xdp_md *ctx)
{
	struct ctx_info ci = {
		.data = (void *)(long)ctx->data,
		.data_end = (void *)(long)ctx->data_end,
		.ctx = ctx,
		.xdp = true,
	};
	struct pkt p = {};
	enum verdict v;

	ci.len = ci.data_end - ci.data;
	v = process(&ci, &p);
	if (v == V_PASS)
		return XDP_PASS;
	if (v == V_REDIRECT)
		return bpf_redirect(ci.redirect_ifindex, 0);
	if (v == V_DROP)
		return XDP_DROP;
	/* A RST, in place of the frame: back out (XDP_TX) or on to the server. */
	if (bpf_xdp_adjust_tail(ctx, (int)rst_len(&p) - (int)ci.len))
		return XDP_DROP;
	if (build_rst((void *)(long)ctx->data, (void *)(long)ctx->data_end, &p, &ci,
		      v == V_REJECT))
		return XDP_DROP;
	return v == V_REJECT ? XDP_TX : XDP_PASS;
}

SEC("tc")
int ig_tc(struct __sk_buff *skb)
{
	struct ctx_info ci = {
		.data = (void *)(long)skb->data,
		.data_end = (void *)(long)skb->data_end,
		.ctx = skb,
		.len = skb->len,
	};
	struct pkt p = {};
	enum verdict v;

	v = process(&ci, &p);
	if (v == V_PASS)
		return TC_ACT_OK;
	if (v == V_REDIRECT)
		return bpf_redirect(ci.redirect_ifindex, 0);
	if (v == V_DROP)
		return TC_ACT_SHOT;
	/* A RST in place of the packet: a reply goes back out of the
	 * interface it came in on, a forward RST on up the stack. */
	if (bpf_skb_change_tail(skb, rst_len(&p), 0))
		return TC_ACT_SHOT;
	if (build_rst((void *)(long)skb->data, (void *)(long)skb->data_end, &p, &ci,
		      v == V_REJECT))
		return TC_ACT_SHOT;
	return v == V_REJECT ? bpf_redirect(skb->ifindex, 0) : TC_ACT_OK;
}

/* ---- census (metrics, status) ------------------------------------------ */

struct census_bans {
	__u64 now, entries;
	__u64 live[IG_CENSUS_SLOTS], packets[IG_CENSUS_SLOTS];
};

static long census_ban(struct bpf_map *map, struct ig_ban_key *k, struct ig_ban_val *v,
		       struct census_bans *c)
{
	__u32 s = ig_census_slot(v->origin) & (IG_CENSUS_SLOTS - 1);

	c->entries++;
	if (!v->banned)
		return 0;	/* a deny-only host */
	c->packets[s] += v->packets;
	if (!v->expires_ns || v->expires_ns > c->now)
		c->live[s]++;
	return 0;
}

static long census_entry(struct bpf_map *map, void *k, void *v, __u64 *n)
{
	(*n)++;
	return 0;
}

/*
 * Entries and ban figures for metrics and status (struct ig_census),
 * counted where the entries are: copying a million bans out in batches
 * took the daemon's loop ~0.9 s at every scrape. Loaded, and pinned, the
 * first time it is asked for (fastpath_census); BPF_PROG_RUN runs it.
 */
SEC("?syscall")
int ig_census(struct ig_census *out)
{
	struct census_bans c = { .now = out->now_ns, .entries = out->bans };
	__u64 n;

	/* Every sum starts from the context (zeroes from userspace), not
	 * from a constant: the verifier checks a callback until its states
	 * repeat, and counters it can follow (0, 1, 2...) never do. */
	for (int i = 0; i < IG_CENSUS_SLOTS; i++) {
		c.live[i] = out->live[i];
		c.packets[i] = out->packets[i];
	}
	bpf_for_each_map_elem(&ig_bans, census_ban, &c, 0);
	out->bans = c.entries;
	for (int i = 0; i < IG_CENSUS_SLOTS; i++) {
		out->live[i] = c.live[i];
		out->packets[i] = c.packets[i];
	}
	n = out->throttle;
	bpf_for_each_map_elem(&ig_throttle, census_entry, &n, 0);
	out->throttle = n;
	n = out->flows;
	bpf_for_each_map_elem(&ig_flows, census_entry, &n, 0);
	out->flows = n;
	n = out->grants;
	bpf_for_each_map_elem(&ig_grants, census_entry, &n, 0);
	out->grants = n;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
