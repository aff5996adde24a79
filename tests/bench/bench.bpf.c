// SPDX-License-Identifier: GPL-2.0
/*
 * Baselines and harness programs for the benchmarks (never attached by
 * imapguard itself):
 *  floor_drop  the floor: the cheapest XDP program there is
 *  floor_pass  parse Ethernet/IP/TCP with imapguard's own parser, then pass
 *  lb_143, lb_993  lower bounds of imapguard's work (see below)
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
#include "parse.bpf.h"

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
 * Lower bounds: the least work a verdict needs, to set the targets against.
 * lb_143 is a counted drop: parse, the port, one per-reason counter (no port
 * table, allow list or event). lb_993 adds what a SYN under budget cannot do
 * without: the clock, the source's ban entry, and a compare-and-swap on its
 * source and subnet buckets (no GCRA arithmetic, LPM prefilter or allow
 * list). pktcost hands lb_993 imapguard's full ig_bans and ig_throttle.
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

/* The parsed TCP packet's destination port, or -1. */
static __always_inline int lb_parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	int proto = parse_ip(data, data_end, p);

	if (proto != IPPROTO_TCP || p->frag == FRAG_LATER || parse_tcp(data, data_end, p))
		return -1;
	return p->dport;
}

static __always_inline int lb_count(struct xdp_md *ctx, __u32 idx, int verdict)
{
	struct ig_counter *c = bpf_map_lookup_elem(&lb_cnt, &idx);

	if (c) {
		c->packets++;
		c->bytes += ctx->data_end - ctx->data;
	}
	return verdict;
}

SEC("xdp")
int lb_143(struct xdp_md *ctx)
{
	struct pkt p = {};

	if (lb_parse(ctx, &p) != 143)
		return XDP_PASS;
	return lb_count(ctx, IG_R_DROP, XDP_DROP);
}

/* One bucket, imapguard's key layout: a compare-and-swap when it exists. */
static __always_inline void lb_bucket(struct pkt *p, __u64 prefix, __u8 level, __u64 now)
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
	if (!v) {
		bpf_map_update_elem(&lb_thr, &k, &init, BPF_NOEXIST);
		return;
	}
	old = *(volatile __u64 *)&v->tat_ns;
	__sync_val_compare_and_swap(&v->tat_ns, old, old);	/* leaves it as it was */
}

SEC("xdp")
int lb_993(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ig_ban_key bk = { .plen = 128 };
	struct pkt p = {};
	__u64 now;

	if (lb_parse(ctx, &p) != 993 || load_saddr(data, data_end, &p))
		return XDP_PASS;
	now = bpf_ktime_get_coarse_ns();
	__builtin_memcpy(bk.addr, p.saddr, 16);
	if (bpf_map_lookup_elem(&lb_bans, &bk))
		return lb_count(ctx, IG_R_BAN, XDP_DROP);
	/* IPv4 /32 and /24, IPv6 /64 and /48: the default policy's buckets */
	lb_bucket(&p, ~0ULL, 0, now);
	lb_bucket(&p, bpf_cpu_to_be64(p.family == 4 ? 0xffffff0000000000ULL :
						     0xffffffffffff0000ULL), 1, now);
	return lb_count(ctx, IG_R_PASS, XDP_PASS);
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
	void *l3;

	if (lb_parse(ctx, p) != 143 || load_saddr(data, data_end, p))
		return -1;
	parse_tcp_rest(data, data_end, p);
	l3 = data + (p->l3_off & 0x3f);
	__builtin_memcpy(k->saddr, p->saddr, 16);
	if (p->family == 4) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		map_v4(k->daddr, ip->daddr);
	} else {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		__builtin_memcpy(k->daddr, &ip6->daddr, 16);
	}
	k->sport = p->sport;
	k->dport = p->dport;
	return 0;
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
