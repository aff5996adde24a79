// SPDX-License-Identifier: GPL-2.0
/*
 * Baselines and harness programs for the benchmarks (never attached by
 * imapguard itself):
 *  floor_drop  the floor: the cheapest XDP program there is
 *  floor_pass  parse Ethernet/IP/TCP with imapguard's own parser, then pass
 *  lb_*        lower bounds of imapguard's work (see below)
 *  tc_floor    the tc floor
 *  drive       rewrites the frame (template, random or rotating IPv6 source)
 *              and tail-calls jmp[0]: lets one BPF_PROG_RUN with repeat see a
 *              different packet every time
 *  gen_tx      the traffic generator: XDP_TX in BPF_F_TEST_XDP_LIVE_FRAMES
 *              mode is a redirect out of the ingress device
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "lpmsum.h"
#include "parse.bpf.h"
#include "rst.bpf.h"

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TMPL_MAX	128
#define V6_SADDR_OFF	(14 + 8)

enum drive_mode {
	DRIVE_RESTORE = 0,	/* copy the template back: undo an in-place RST */
	DRIVE_RAND6,		/* random source in 2001:db8::/32 */
	DRIVE_ROT6,		/* walk 2^rot_bits known sources in a scattered order */
};

struct drive_cfg {
	__u32 mode;		/* enum drive_mode */
	__u32 len;		/* template length */
	__u32 rot_bits;		/* DRIVE_ROT6: sources 0 .. 2^rot_bits - 1 */
	__u32 pad;
	__u64 ctr;		/* packets driven */
	__u64 rng;		/* xorshift64 state */
	__u8 tmpl[TMPL_MAX];
};

/* 0 -> the program under test. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} jmp SEC(".maps");

/* 0 -> struct drive_cfg. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct drive_cfg);
} drv SEC(".maps");

/*
 * Lower bounds: the least work a verdict needs, to set the targets against,
 * on imapguard's own full maps (pktcost hands them over: lb_bans, lb_thr,
 * lb_bansum, lb_allow, lb_deny are ig_bans, ig_throttle, ig_bansum,
 * ig_allow, ig_deny). Each is a parse, the port, what enum lb_what says,
 * and one per-reason counter; never a port table, prefilter, event or
 * GCRA arithmetic. Programs:
 *  lb_143          counted drop
 *  lb_993          clock, bans (summary, then the hash where it says),
 *                  compare-and-swap on the source and subnet buckets
 *  lb_993_src      ... the source bucket only
 *  lb_993_over     clock, bans, the source bucket read: over, drop
 *  lb_993_ack      clock, bans (an ACK needs no bucket)
 *  lb_993_trie     lb_993 and a deny-trie lookup
 *  lb_993_seen     clock, bans, the admission slots of source and subnet
 *                  (a never-seen source, or a known one whose bucket is full)
 *  lb_allow        the allow trie: pass
 *  lb_143_reject   counted RST, built with imapguard's own rst.bpf.h
 *  lb_tc_*         tc versions of lb_143 and lb_993; tc_floor_pass
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IG_C_MAX);
	__type(key, __u32);
	__type(value, struct ig_counter);
} lb_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ig_ban_key);
	__type(value, struct ig_ban_val);
} lb_bans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct ig_thr_key);
	__type(value, struct ig_thr_val);
} lb_thr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IG_BANSUM_LINES);
	__type(key, __u32);
	__type(value, struct ig_bansum);
} lb_bansum SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ig_lpm_key);
	__type(value, struct ig_allow_val);
} lb_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ig_lpm_key);
	__type(value, struct ig_deny_val);
} lb_deny SEC(".maps");

/* The admission slots' lower bound reads its own array of the same size. */
#define LB_SEEN_SLOTS	65536
__u64 lb_seen[LB_SEEN_SLOTS];

enum lb_what {
	LB_BANS = 1,		/* the ban summary line, and the ban hash where it says */
	LB_SRC = 2,		/* compare-and-swap on the source bucket */
	LB_SUB = 4,		/* ... and on the subnet bucket */
	LB_OVER = 8,		/* read the source bucket: over budget, drop */
	LB_ALLOW = 16,		/* the allow trie: pass */
	LB_TRIE = 32,		/* a deny-trie lookup (no match) */
	LB_SEEN = 64,		/* read the admission slots of source and subnet */
	LB_RST = 128,		/* answer with a RST */
};

enum lb_verdict { LBV_PASS, LBV_DROP, LBV_TX };

static __always_inline void lb_add(__u32 idx, __u32 len)
{
	struct ig_counter *c = bpf_map_lookup_elem(&lb_cnt, &idx);

	if (c) {
		c->packets++;
		c->bytes += len;
	}
}

/* The parsed TCP packet's destination port, or -1 (the STARTTLS bounds). */
static __always_inline int lb_parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	int proto = parse_ip(data, data_end, p);

	if (proto != IPPROTO_TCP || p->frag == FRAG_LATER || parse_tcp(data, data_end, p))
		return -1;
	return p->dport;
}

/* A counted verdict (the STARTTLS bounds). */
static __always_inline int lb_count(struct xdp_md *ctx, __u32 idx, int verdict)
{
	lb_add(idx, ctx->data_end - ctx->data);
	return verdict;
}

/* The source's host entries: summary line first, as imapguard does. */
static __always_inline __u32 lb_banned(struct pkt *p, __u64 now)
{
	struct ig_ban_key k = { .plen = 128 };
	struct ig_ban_val *v = NULL;
	struct ig_bansum *line;
	__u32 l;

	__builtin_memcpy(k.addr, p->saddr, 16);
	l = ig_bansum_line(k.addr, 128);
	line = bpf_map_lookup_elem(&lb_bansum, &l);
	if (!line)
		return 0;
	if (ig_bansum_test(line, k.addr, 128))
		v = bpf_map_lookup_elem(&lb_bans, &k);
	if (!v && p->family == 6) {
		k.plen = 64;	/* same line: the bench's sources are not IPv4-mapped */
		__builtin_memset(k.addr + 8, 0, 8);
		if (ig_bansum_test(line, k.addr, 64))
			v = bpf_map_lookup_elem(&lb_bans, &k);
	}
	if (!v || (v->expires_ns && v->expires_ns <= now))
		return 0;
	return v->banned ? IG_R_BAN : IG_R_DENY;
}

/* One bucket, imapguard's key layout: a compare-and-swap when it exists. */
static __always_inline struct ig_thr_val *lb_bucket(struct pkt *p, __u64 prefix, __u8 level,
						   __u64 now, bool cas)
{
	struct ig_thr_key k = { .port = p->dport, .level = level, .family = p->family };
	struct ig_thr_val init = { .tat_ns = now }, *v;
	__u64 w = 0, old;

	if (p->family == 4)
		__builtin_memcpy(&w, p->saddr + 12, 4);
	else
		__builtin_memcpy(&w, p->saddr, 8);
	w &= prefix;
	__builtin_memcpy(k.addr, &w, 8);
	v = bpf_map_lookup_elem(&lb_thr, &k);
	if (!cas)
		return v;
	if (!v) {
		bpf_map_update_elem(&lb_thr, &k, &init, BPF_NOEXIST);
		return NULL;
	}
	old = *(volatile __u64 *)&v->tat_ns;
	__sync_val_compare_and_swap(&v->tat_ns, old, old);	/* leaves it as it was */
	return v;
}

/* The default policy's subnet: IPv4 /24, IPv6 /48. */
static __always_inline __u64 lb_subnet(struct pkt *p)
{
	return bpf_cpu_to_be64(p->family == 4 ? 0xffffff0000000000ULL : 0xffffffffffff0000ULL);
}

/* An admission slot: a hash of the prefix, one load, one compare. */
static __always_inline bool lb_slot_busy(struct pkt *p, __u64 prefix, __u64 now)
{
	__u64 w = 0, h;

	if (p->family == 4)
		__builtin_memcpy(&w, p->saddr + 12, 4);
	else
		__builtin_memcpy(&w, p->saddr, 8);
	h = (w & prefix) * 0x9e3779b97f4a7c15ULL;
	return (__s64)(lb_seen[(h >> 48) & (LB_SEEN_SLOTS - 1)] >> 8) - (__s64)(now >> 23) > 0;
}

static __always_inline enum lb_verdict lb_run(void *data, void *data_end, __u32 len,
					      __u16 port, unsigned int what)
{
	struct pkt p = {};
	struct ig_thr_val *v;
	__u32 r;
	__u64 now;
	int proto = parse_ip(data, data_end, &p);

	if (proto != IPPROTO_TCP || p.frag == FRAG_LATER || parse_tcp(data, data_end, &p) ||
	    p.dport != port)
		return LBV_PASS;
	if (what & LB_RST) {
		lb_add(IG_R_REJECT, len);
		return LBV_TX;
	}
	if (!what) {
		lb_add(IG_R_DROP, len);
		return LBV_DROP;
	}
	if (load_saddr(data, data_end, &p))
		return LBV_PASS;
	if (what & LB_ALLOW) {
		struct ig_lpm_key k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, p.saddr, 16);
		lb_add(bpf_map_lookup_elem(&lb_allow, &k) ? IG_R_ALLOW : IG_R_PASS, len);
		return LBV_PASS;
	}
	now = bpf_ktime_get_coarse_ns();
	r = lb_banned(&p, now);
	if (r) {
		lb_add(r, len);
		return LBV_DROP;
	}
	if (what & LB_TRIE) {
		struct ig_lpm_key k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, p.saddr, 16);
		if (bpf_map_lookup_elem(&lb_deny, &k)) {
			lb_add(IG_R_DENY, len);
			return LBV_DROP;
		}
	}
	if (what & LB_OVER) {
		/* The verdict does not depend on the compare: the harness resets
		 * the bucket, and the work is the same either way. */
		v = lb_bucket(&p, ~0ULL, 0, now, false);
		lb_add(v && *(volatile __u64 *)&v->tat_ns > now ? IG_R_SYN_RATE : IG_R_SUBNET_RATE, len);
		return LBV_DROP;
	}
	if (what & LB_SEEN) {
		/* two slots, as the admission filter reads them */
		r = lb_slot_busy(&p, ~0ULL, now) + lb_slot_busy(&p, lb_subnet(&p), now);
		lb_add(r ? IG_R_SYN_RATE : IG_R_PASS, len);
		return LBV_PASS;
	}
	if (what & LB_SRC)
		lb_bucket(&p, ~0ULL, 0, now, true);
	if (what & LB_SUB)
		lb_bucket(&p, lb_subnet(&p), 1, now, true);
	lb_add(IG_R_PASS, len);
	return LBV_PASS;
}

static __always_inline int lb_xdp(struct xdp_md *ctx, __u16 port, unsigned int what)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data;
	enum lb_verdict v = lb_run(data, data_end, len, port, what);
	struct pkt p = {};

	if (v == LBV_PASS)
		return XDP_PASS;
	if (v == LBV_DROP)
		return XDP_DROP;
	/* The RST: parse again for its fields (imapguard keeps them from the
	 * first parse; this is within a few ns of that). */
	if (parse_ip(data, data_end, &p) != IPPROTO_TCP || parse_tcp(data, data_end, &p))
		return XDP_DROP;
	parse_tcp_rest(data, data_end, &p);
	if (bpf_xdp_adjust_tail(ctx, (int)rst_len(&p) - (int)len))
		return XDP_DROP;
	if (build_rst((void *)(long)ctx->data, (void *)(long)ctx->data_end, &p))
		return XDP_DROP;
	return XDP_TX;
}

static __always_inline int lb_tc(struct __sk_buff *skb, __u16 port, unsigned int what)
{
	enum lb_verdict v = lb_run((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len,
				   port, what);

	return v == LBV_PASS ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("xdp") int lb_143(struct xdp_md *ctx) { return lb_xdp(ctx, 143, 0); }
SEC("xdp") int lb_993(struct xdp_md *ctx) { return lb_xdp(ctx, 993, LB_BANS | LB_SRC | LB_SUB); }
SEC("xdp") int lb_993_src(struct xdp_md *ctx) { return lb_xdp(ctx, 993, LB_BANS | LB_SRC); }
SEC("xdp") int lb_993_over(struct xdp_md *ctx) { return lb_xdp(ctx, 993, LB_BANS | LB_OVER); }
SEC("xdp") int lb_993_ack(struct xdp_md *ctx) { return lb_xdp(ctx, 993, LB_BANS); }
SEC("xdp") int lb_993_trie(struct xdp_md *ctx) { return lb_xdp(ctx, 993, LB_BANS | LB_TRIE | LB_SRC | LB_SUB); }
SEC("xdp") int lb_993_seen(struct xdp_md *ctx) { return lb_xdp(ctx, 993, LB_BANS | LB_SEEN); }
SEC("xdp") int lb_allow_993(struct xdp_md *ctx) { return lb_xdp(ctx, 993, LB_ALLOW); }
SEC("xdp") int lb_143_reject(struct xdp_md *ctx) { return lb_xdp(ctx, 143, LB_RST); }
SEC("tc") int lb_tc_143(struct __sk_buff *skb) { return lb_tc(skb, 143, 0); }
SEC("tc") int lb_tc_993(struct __sk_buff *skb) { return lb_tc(skb, 993, LB_BANS | LB_SRC | LB_SUB); }

SEC("tc")
int tc_floor_pass(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct pkt p = {};
	int proto = parse_ip(data, data_end, &p);

	if (proto == IPPROTO_TCP && parse_tcp(data, data_end, &p) == 0 && p.dport == 0)
		return TC_ACT_SHOT;	/* uses the parse result: nothing is optimised away */
	return TC_ACT_OK;
}

SEC("xdp")
int floor_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int floor_pass(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct pkt p = {};
	int proto = parse_ip(data, data_end, &p);

	if (proto == IPPROTO_TCP && parse_tcp(data, data_end, &p) == 0 && p.dport == 0)
		return XDP_DROP;	/* uses the parse result: nothing is optimised away */
	return XDP_PASS;
}

SEC("tc")
int tc_floor(struct __sk_buff *skb)
{
	return TC_ACT_SHOT;
}

SEC("xdp")
int gen_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

/* One's-complement sum fold, for the checksum updates below. */
static __always_inline __u16 fold16(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	return (s & 0xffff) + (s >> 16);
}

/*
 * The spoofed-flood generator: gen_tx with a random IPv4 source, its low
 * drv.rot_bits bits drawn per frame (the frame must be IPv4, no VLAN).
 * Both checksums are updated (RFC 1624), so what passes is a valid SYN.
 */
SEC("xdp")
int gen_tx_spoof4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + 14;
	struct tcphdr *t = (void *)(ip + 1);
	__u32 zero = 0, mask, old, new;
	struct drive_cfg *c = bpf_map_lookup_elem(&drv, &zero);
	__u16 o1, o2, n1, n2;

	if (!c || (void *)(t + 1) > data_end)
		return XDP_ABORTED;
	mask = c->rot_bits >= 32 ? ~0U : (1U << c->rot_bits) - 1;
	old = bpf_ntohl(ip->saddr);
	new = (old & ~mask) | (bpf_get_prandom_u32() & mask);
	o1 = old >> 16, o2 = old, n1 = new >> 16, n2 = new;
	ip->saddr = bpf_htonl(new);
	ip->check = bpf_htons(~fold16((__u16)~bpf_ntohs(ip->check) + (__u16)~o1 + (__u16)~o2 + n1 + n2));
	t->check = bpf_htons(~fold16((__u16)~bpf_ntohs(t->check) + (__u16)~o1 + (__u16)~o2 + n1 + n2));
	return XDP_TX;
}

/* The ROT6 source for index i: 2001:db8:10XX:XXXX::, the same function as
 * bench.h's rot6_addr, which fills the throttle map with these. */
static __always_inline void rot6(__u8 a[16], __u32 i)
{
	__builtin_memset(a, 0, 16);
	a[0] = 0x20; a[1] = 0x01; a[2] = 0x0d; a[3] = 0xb8;
	a[4] = 0x10;
	a[5] = i >> 16;
	a[6] = i >> 8;
	a[7] = i;
	a[15] = 1;
}

SEC("xdp")
int drive(struct xdp_md *ctx)
{
	__u32 zero = 0, len, cur, i;
	struct drive_cfg *c = bpf_map_lookup_elem(&drv, &zero);
	__u8 a[16];
	__u64 x;

	if (!c)
		return XDP_ABORTED;
	c->ctr++;
	if (c->mode == DRIVE_RESTORE) {
		len = c->len;
		if (len < 14 || len > TMPL_MAX)
			return XDP_ABORTED;
		cur = ctx->data_end - ctx->data;
		/* The RST reply is shorter than a SYN with options: grow back. */
		if (cur != len && bpf_xdp_adjust_tail(ctx, (int)len - (int)cur))
			return XDP_ABORTED;
		if (bpf_xdp_store_bytes(ctx, 0, c->tmpl, len))
			return XDP_ABORTED;
	} else if (c->mode == DRIVE_RAND6) {
		x = c->rng;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		c->rng = x;
		a[0] = 0x20; a[1] = 0x01; a[2] = 0x0d; a[3] = 0xb8;
		__builtin_memcpy(a + 4, &x, 8);
		x *= 0x9e3779b97f4a7c15ULL;
		__builtin_memcpy(a + 12, &x, 4);
		if (bpf_xdp_store_bytes(ctx, V6_SADDR_OFF, a, 16))
			return XDP_ABORTED;
	} else {
		/* An odd multiplier permutes 0 .. 2^bits - 1: every source once
		 * per round, in an order no prefetcher can follow. */
		i = (__u32)(c->ctr * 0x9e3779b1ULL) & ((1U << (c->rot_bits & 31)) - 1);
		rot6(a, i);
		if (bpf_xdp_store_bytes(ctx, V6_SADDR_OFF, a, 16))
			return XDP_ABORTED;
	}
	bpf_tail_call(ctx, &jmp, 0);
	return XDP_ABORTED;
}

/* ==== action starttls (issue #21), kept apart from the above ==========
 * st_drive: the client's data at the next sequence number every run (a
 * scanned flow refuses a gap), then a tail call to jmp[0].
 * lb_st_syn, lb_st_tls, lb_st_data: lower bounds of action starttls. A SYN
 * must create the flow's entry; a packet of a TLS flow must find it; a
 * data packet before TLS must find it, check its sequence number, copy the
 * bytes out and move the sequence on. pktcost's st cases hand them
 * imapguard's own ig_flows.
 */
struct st_drive_cfg {
	__u32 seq_off;		/* offset of the TCP sequence number in the frame */
	__u32 step;		/* payload length */
	__u32 base;		/* first sequence number */
	__u32 pad;
	__u64 ctr;		/* packets driven */
};

/* 0 -> struct st_drive_cfg. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct st_drive_cfg);
} st_drv SEC(".maps");

/* Replaced by imapguard's ig_flows. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct ig_flow_key);
	__type(value, struct ig_flow);
} lb_flows SEC(".maps");

SEC("xdp")
int st_drive(struct xdp_md *ctx)
{
	struct st_drive_cfg *c;
	__u32 zero = 0, seq;

	c = bpf_map_lookup_elem(&st_drv, &zero);
	if (!c)
		return XDP_ABORTED;
	seq = bpf_htonl(c->base + (__u32)c->ctr * c->step);
	c->ctr++;
	if (bpf_xdp_store_bytes(ctx, c->seq_off, &seq, 4))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &jmp, 0);
	return XDP_ABORTED;
}

/* Parse to the flow's key; 0, or -1 when it is not TCP to 143. */
static __always_inline int lb_st_key(struct xdp_md *ctx, struct pkt *p, struct ig_flow_key *k)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;

	if (lb_parse(ctx, p) != 143 || load_saddr(data, data_end, p))
		return -1;
	parse_tcp_rest(data, data_end, p);
	return flow_key(data, data_end, p, k);
}

SEC("xdp")
int lb_st_syn(struct xdp_md *ctx)
{
	struct ig_flow init = {};
	struct ig_flow_key k = {};
	struct pkt p = {};

	if (lb_st_key(ctx, &p, &k))
		return XDP_PASS;
	init.next_seq = p.seq + 1;
	bpf_map_update_elem(&lb_flows, &k, &init, BPF_ANY);
	return lb_count(ctx, IG_R_PASS, XDP_PASS);
}

SEC("xdp")
int lb_st_tls(struct xdp_md *ctx)
{
	struct ig_flow_key k = {};
	struct pkt p = {};
	struct ig_flow *f;

	if (lb_st_key(ctx, &p, &k))
		return XDP_PASS;
	f = bpf_map_lookup_elem(&lb_flows, &k);
	if (f && (f->flags & IG_FL_TLS))
		return lb_count(ctx, IG_R_PASS, XDP_PASS);
	return XDP_DROP;
}

SEC("xdp")
int lb_st_data(struct xdp_md *ctx)
{
	struct ig_flow_key k = {};
	struct pkt p = {};
	struct ig_flow *f;
	__u8 buf[64];
	__u32 n;

	if (lb_st_key(ctx, &p, &k))
		return XDP_PASS;
	f = bpf_map_lookup_elem(&lb_flows, &k);
	n = p.l4_len > p.doff ? p.l4_len - p.doff : 0;
	if (!f || f->next_seq != p.seq)
		return XDP_DROP;
	f->next_seq = p.seq + n;
	if (n > sizeof(buf))
		n = sizeof(buf);
	if (n < 1)	/* here, not above: clang would drop the bound it gives */
		return XDP_DROP;
	if (bpf_xdp_load_bytes(ctx, (p.l4_off + p.doff) & 0xffff, buf, n) || !buf[0])
		return XDP_DROP;	/* uses the bytes: nothing is optimised away */
	return lb_count(ctx, IG_R_PASS, XDP_PASS);
}
/* ==== end of action starttls ==== */

char LICENSE[] SEC("license") = "GPL";
