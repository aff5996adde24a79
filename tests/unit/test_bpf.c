// SPDX-License-Identifier: GPL-2.0
/*
 * Fast-path unit tests: crafted frames through bpf_prog_test_run_opts, every
 * table case against both the XDP and the tc entry point.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "fastpath/lists.h"	/* common.h first: the skeleton embeds struct ig_cfg */
#include "fastpath/grants.h"
#include "imapguard.skel.h"
#include "lpmsum.h"
#include "policy/policy.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT	7
#define MAXPKT		512

enum exp { E_PASS, E_DROP, E_TX, E_REDIRECT };
enum { HOOK_XDP, HOOK_TC };

static struct imapguard_bpf *skel;
static struct ig_maps maps;
static const char *hook_name[] = { "xdp", "tc" };

/* ---- frame builder ----------------------------------------------------- */

struct spec {
	int vlans;		/* 0, 1 (802.1Q) or 2 (QinQ) */
	int family;		/* 4, 6, or 0 for ARP */
	int l4;			/* IPPROTO_TCP (default) or IPPROTO_UDP */
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t flags;		/* TCP flags */
	int ip_opts;		/* IPv4 option bytes, multiple of 4 */
	int v6_hbh;		/* add a hop-by-hop options header */
	int frag;		/* 1 first fragment (MF), 2 later fragment */
	int tcp_opts;		/* TCP option bytes, multiple of 4 */
	int payload;
	int tcp_len;		/* if set: bytes of TCP header present (tiny fragment) */
	int truncate;		/* cut the frame to this many bytes */
	uint32_t seq;
};

#define SYN	0x02
#define ACK	0x10
#define FIN	0x01
#define RST	0x04

static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0, 0xa }, mac_b[6] = { 0x02, 0, 0, 0, 0, 0xb };

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v); }

static size_t build(const struct spec *s, uint8_t *b)
{
	int l4 = s->l4 ? s->l4 : IPPROTO_TCP, tcph = 20 + s->tcp_opts, l4len;
	size_t off = 12, l3;
	const char *src = s->src ? s->src : (s->family == 6 ? "2001:db8::2" : "198.18.0.2");
	const char *dst = s->dst ? s->dst : (s->family == 6 ? "2001:db8::1" : "198.18.0.1");

	memset(b, 0, MAXPKT);
	memcpy(b, mac_b, 6);
	memcpy(b + 6, mac_a, 6);
	for (int i = 0; i < s->vlans; i++) {
		put16(b + off, i == 0 && s->vlans == 2 ? 0x88a8 : 0x8100);
		put16(b + off + 2, 100 + i);
		off += 4;
	}
	if (!s->family) {	/* ARP request, enough to be a real frame */
		put16(b + off, 0x0806);
		return off + 2 + 28;
	}
	put16(b + off, s->family == 4 ? 0x0800 : 0x86dd);
	l3 = off + 2;
	l4len = (l4 == IPPROTO_TCP ? (s->tcp_len ? s->tcp_len : tcph) : 8) + s->payload;
	if (s->family == 4) {
		int hl = 20 + s->ip_opts;

		b[l3] = 0x40 | hl / 4;
		put16(b + l3 + 2, hl + l4len);
		put16(b + l3 + 6, s->frag == 1 ? 0x2000 : s->frag == 2 ? 0x0010 : 0x4000);
		b[l3 + 8] = 64;
		b[l3 + 9] = l4;
		inet_pton(AF_INET, src, b + l3 + 12);
		inet_pton(AF_INET, dst, b + l3 + 16);
		for (int i = 0; i < s->ip_opts; i++)
			b[l3 + 20 + i] = 1;	/* NOP options */
		off = l3 + hl;
	} else {
		int ext = (s->v6_hbh ? 8 : 0) + (s->frag ? 8 : 0);
		size_t e = l3 + 40;
		uint8_t *nh = b + l3 + 6;

		b[l3] = 0x60;
		put16(b + l3 + 4, ext + l4len);
		b[l3 + 7] = 64;
		inet_pton(AF_INET6, src, b + l3 + 8);
		inet_pton(AF_INET6, dst, b + l3 + 24);
		if (s->v6_hbh) {
			*nh = 0;
			nh = b + e;	/* hdrlen 0: 8 bytes, PadN filler */
			b[e + 2] = 1;
			b[e + 3] = 4;
			e += 8;
		}
		if (s->frag) {
			*nh = 44;
			nh = b + e;
			put16(b + e + 2, s->frag == 1 ? 0x0001 : 0x0010);
			put32(b + e + 4, 0xabcd);
			e += 8;
		}
		*nh = l4;
		off = e;
	}
	if (l4 == IPPROTO_TCP) {
		put16(b + off, s->sport ? s->sport : 40000);
		put16(b + off + 2, s->dport);
		put32(b + off + 4, s->seq ? s->seq : 1000);
		put32(b + off + 8, s->flags & ACK ? 777 : 0);
		b[off + 12] = (tcph / 4) << 4;
		b[off + 13] = s->flags;
		put16(b + off + 14, 64240);
		for (int i = 0; i < s->tcp_opts; i++)
			b[off + 20 + i] = 1;
		off += s->tcp_len ? s->tcp_len : tcph;
	} else {
		put16(b + off, 5353);
		put16(b + off + 2, s->dport);
		put16(b + off + 4, 8 + s->payload);
		off += 8;
	}
	memset(b + off, 'x', s->payload);
	off += s->payload;
	return s->truncate && (size_t)s->truncate < off ? (size_t)s->truncate : off;
}

/* ---- running ----------------------------------------------------------- */

static int run(int hook, uint8_t *pkt, size_t len, uint8_t *out, uint32_t *out_len)
{
	int fd = bpf_program__fd(hook == HOOK_XDP ? skel->progs.ig_xdp : skel->progs.ig_tc);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len,
		    .data_out = out, .data_size_out = MAXPKT, .repeat = 1);
	int err = bpf_prog_test_run_opts(fd, &opts);

	if (out_len)
		*out_len = opts.data_size_out;
	return err ? -1000 + err : (int)opts.retval;
}

static int expected_retval(int hook, enum exp e)
{
	static const int xdp[] = { XDP_PASS, XDP_DROP, XDP_TX, XDP_REDIRECT };
	static const int tc[] = { TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT, TC_ACT_REDIRECT };

	return hook == HOOK_XDP ? xdp[e] : tc[e];
}

static uint64_t counter(uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	struct ig_counter v[ncpu];
	uint64_t sum = 0;

	if (bpf_map_lookup_elem(maps.counters, &idx, v))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += v[i].packets;
	return sum;
}

static void set_port(uint16_t port, uint8_t action, uint8_t slot)
{
	struct ig_port_cfg pc = { .action = action, .slot = slot, .redirect_ifindex = 1,
				  .src_plen4 = 32, .src_plen6 = 64, .sub_plen4 = 24, .sub_plen6 = 48 };
	__u32 key = port;

	bpf_map_update_elem(maps.ports, &key, &pc, BPF_ANY);
}

static void set_throttle(uint16_t port, uint64_t iv, uint32_t burst, uint64_t siv, uint32_t sburst)
{
	struct ig_port_cfg pc;
	__u32 key = port;

	bpf_map_lookup_elem(maps.ports, &key, &pc);
	pc.src_interval_ns = iv;
	pc.src_tol_ns = iv ? (burst - 1) * iv : 0;
	pc.sub_interval_ns = siv;
	pc.sub_tol_ns = siv ? (sburst - 1) * siv : 0;
	bpf_map_update_elem(maps.ports, &key, &pc, BPF_ANY);
}

static struct ig_prefix pfx(const char *s)
{
	struct ig_prefix p = {};

	if (addr_parse(s, &p, false))
		fprintf(stderr, "bad test prefix %s\n", s);
	return p;
}

static void reset_lists(void)
{
	struct ig_prefix p;
	bool wp;
	const char *all[] = { "198.18.0.0/24", "2001:db8:1::/48", "198.18.0.2", "198.18.0.3",
			      "2001:db8::2", "2001:db8::/64", "198.18.9.0/24", "2001:db8::9",
			      "198.18.7.0/24", "::/0", "198.18.0.0/15", "2001:db8:ab00::/40",
			      "2001:db8::/32", "2001:d00::/24", "::/64" };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		p = pfx(all[i]);
		list_del(&maps, LIST_ALLOW, &p, &wp);
		list_del(&maps, LIST_DENY, &p, &wp);
		ban_del(&maps, &p);
	}
	grant_del_user(&maps, "alice");
	grant_del_user(&maps, "bob");
}

/* ---- table ------------------------------------------------------------- */

struct tcase {
	const char *name;
	uint8_t action143;	/* action on 143 for this case */
	struct spec s;
	enum exp exp;
	int reason;		/* counter that must grow by one; -1: none may */
	void (*setup)(void);
};

static void allow_v4(void) { struct ig_prefix p = pfx("198.18.0.0/24"); list_add(&maps, LIST_ALLOW, &p, IG_ORIGIN_CLI); }
static void allow_v6(void) { struct ig_prefix p = pfx("2001:db8::/64"); list_add(&maps, LIST_ALLOW, &p, IG_ORIGIN_CLI); }
static void deny_v4(void) { struct ig_prefix p = pfx("198.18.0.0/24"); list_add(&maps, LIST_DENY, &p, IG_ORIGIN_CLI); }
static void ban_v4(void) { struct ig_prefix p = pfx("198.18.0.2"); ban_add(&maps, &p, 0, "t"); }
static void ban_v6_64(void) { struct ig_prefix p = pfx("2001:db8::/64"); ban_add(&maps, &p, 0, "t"); }
static void ban_v4_24(void) { struct ig_prefix p = pfx("198.18.0.0/24"); ban_add(&maps, &p, 0, "t"); }
static void allow_and_ban(void) { ban_v4(); allow_v4(); }
static void deny_add(const char *s) { struct ig_prefix p = pfx(s); list_add(&maps, LIST_DENY, &p, IG_ORIGIN_CLI); }
static void deny_host_v4(void) { deny_add("198.18.0.2"); }
static void deny_host_v6(void) { deny_add("2001:db8::9"); }
static void deny_v6_64(void) { deny_add("2001:db8::/64"); }
static void deny_v6_48(void) { deny_add("2001:db8:1::/48"); }
static void deny_all(void) { deny_add("::/0"); }
static void deny_zero64(void) { deny_add("::/64"); }
static void ban_zero64(void) { struct ig_prefix p = pfx("::/64"); ban_add(&maps, &p, 0, "t"); }

/* access = grant (issue 17): 993 or 143 admit SYNs only with a grant. */
static void set_access(uint16_t port, uint8_t access)
{
	struct ig_port_cfg pc;
	__u32 key = port;

	bpf_map_lookup_elem(maps.ports, &key, &pc);
	pc.access = access;
	bpf_map_update_elem(maps.ports, &key, &pc, BPF_ANY);
}
static void grant(const char *a, const char *user) { struct ig_prefix p = pfx(a); grant_add(&maps, &p, user, 60 * NS_PER_SEC, NULL); }
static void g993(void) { set_access(993, IG_ACCESS_GRANT); }
static void g143(void) { set_access(143, IG_ACCESS_GRANT); }
static void g993_v4(void) { g993(); grant("198.18.0.2", "alice"); }
static void g993_other(void) { g993(); grant("198.18.0.3", "alice"); }
static void g993_v6_64(void) { g993(); grant("2001:db8::/64", "alice"); }
static void g993_v6_host(void) { g993(); grant("2001:db8::2", "alice"); }
static void g993_expired(void) { struct ig_prefix p = pfx("198.18.0.2"); g993(); grant_put(&maps, &p, "alice", mono_ns() - NS_PER_SEC, 0); }
static void g993_deleted(void) { struct ig_prefix p = pfx("198.18.0.2"); g993_v4(); grant("198.18.0.2", "bob"); grant_del(&maps, &p, NULL); }
static void g993_two_users(void) { struct ig_prefix p = pfx("198.18.0.2"); g993_v4(); grant("198.18.0.2", "bob"); grant_del(&maps, &p, "alice"); }
static void g993_ban(void) { g993_v4(); ban_v4(); }
static void g993_allow(void) { g993(); allow_v4(); }
static void g143_v4(void) { g143(); grant("198.18.0.2", "alice"); }

#define T(...) { __VA_ARGS__ }
static const struct tcase cases[] = {
	T("syn143 reject v4", IG_ACT_REJECT, { .family = 4, .dport = 143, .flags = SYN, .tcp_opts = 20 }, E_TX, IG_R_REJECT),
	T("syn143 reject v6", IG_ACT_REJECT, { .family = 6, .dport = 143, .flags = SYN, .tcp_opts = 20 }, E_TX, IG_R_REJECT),
	T("ack143 reject", IG_ACT_REJECT, { .family = 4, .dport = 143, .flags = ACK }, E_DROP, IG_R_REJECT_DROP),
	T("fin143 reject", IG_ACT_REJECT, { .family = 4, .dport = 143, .flags = FIN | ACK }, E_DROP, IG_R_REJECT_DROP),
	T("synack143 reject", IG_ACT_REJECT, { .family = 4, .dport = 143, .flags = SYN | ACK }, E_DROP, IG_R_REJECT_DROP),
	T("syn143 drop", IG_ACT_DROP, { .family = 4, .dport = 143, .flags = SYN }, E_DROP, IG_R_DROP),
	T("ack143 drop", IG_ACT_DROP, { .family = 4, .dport = 143, .flags = ACK }, E_DROP, IG_R_DROP),
	T("fin143 drop v6", IG_ACT_DROP, { .family = 6, .dport = 143, .flags = FIN }, E_DROP, IG_R_DROP),
	T("syn143 pass", IG_ACT_PASS, { .family = 4, .dport = 143, .flags = SYN }, E_PASS, IG_R_PASS),
	T("syn143 redirect", IG_ACT_REDIRECT, { .family = 4, .dport = 143, .flags = SYN }, E_REDIRECT, IG_R_REDIRECT),
	T("ack143 redirect v6", IG_ACT_REDIRECT, { .family = 6, .dport = 143, .flags = ACK }, E_REDIRECT, IG_R_REDIRECT),
	T("syn993 passes", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS),
	T("syn993 v6 passes", IG_ACT_REJECT, { .family = 6, .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS),
	T("syn22 untouched", IG_ACT_REJECT, { .family = 4, .dport = 22, .flags = SYN }, E_PASS, -1),
	T("syn992 untouched", IG_ACT_REJECT, { .family = 4, .dport = 992, .flags = SYN }, E_PASS, -1),
	T("syn994 v6 untouched", IG_ACT_REJECT, { .family = 6, .dport = 994, .flags = SYN }, E_PASS, -1),
	T("udp143 untouched", IG_ACT_REJECT, { .family = 4, .l4 = IPPROTO_UDP, .dport = 143 }, E_PASS, -1),
	T("udp143 v6 untouched", IG_ACT_REJECT, { .family = 6, .l4 = IPPROTO_UDP, .dport = 143 }, E_PASS, -1),
	T("arp untouched", IG_ACT_REJECT, { .family = 0 }, E_PASS, -1),
	T("vlan syn143 reject", IG_ACT_REJECT, { .vlans = 1, .family = 4, .dport = 143, .flags = SYN }, E_TX, IG_R_REJECT),
	T("qinq syn143 reject", IG_ACT_REJECT, { .vlans = 2, .family = 4, .dport = 143, .flags = SYN }, E_TX, IG_R_REJECT),
	T("qinq v6 syn143 drop", IG_ACT_DROP, { .vlans = 2, .family = 6, .dport = 143, .flags = SYN }, E_DROP, IG_R_DROP),
	T("ipv4 options syn143 reject", IG_ACT_REJECT, { .family = 4, .ip_opts = 12, .dport = 143, .flags = SYN }, E_TX, IG_R_REJECT),
	T("ipv4 max options syn143 drop", IG_ACT_DROP, { .family = 4, .ip_opts = 40, .dport = 143, .flags = SYN }, E_DROP, IG_R_DROP),
	T("ipv4 first fragment 143 reject", IG_ACT_REJECT, { .family = 4, .frag = 1, .dport = 143, .flags = SYN, .payload = 64 }, E_DROP, IG_R_REJECT_DROP),
	T("ipv4 later fragment untouched", IG_ACT_REJECT, { .family = 4, .frag = 2, .dport = 143, .flags = SYN }, E_PASS, -1),
	T("ipv4 tiny first fragment", IG_ACT_PASS, { .family = 4, .frag = 1, .dport = 143, .flags = SYN, .tcp_len = 8 }, E_DROP, IG_R_BAD_FRAG),
	T("ipv6 hbh syn143 reject", IG_ACT_REJECT, { .family = 6, .v6_hbh = 1, .dport = 143, .flags = SYN }, E_TX, IG_R_REJECT),
	T("ipv6 hbh+frag first 143 drop", IG_ACT_DROP, { .family = 6, .v6_hbh = 1, .frag = 1, .dport = 143, .flags = SYN }, E_DROP, IG_R_DROP),
	T("ipv6 first fragment 143 reject", IG_ACT_REJECT, { .family = 6, .frag = 1, .dport = 143, .flags = SYN }, E_DROP, IG_R_REJECT_DROP),
	T("ipv6 later fragment untouched", IG_ACT_DROP, { .family = 6, .frag = 2, .dport = 143, .flags = SYN }, E_PASS, -1),
	T("allow v4 beats reject", IG_ACT_REJECT, { .family = 4, .dport = 143, .flags = SYN }, E_PASS, IG_R_ALLOW, allow_v4),
	T("allow v6 beats drop", IG_ACT_DROP, { .family = 6, .dport = 143, .flags = SYN }, E_PASS, IG_R_ALLOW, allow_v6),
	T("allow other net no effect", IG_ACT_REJECT, { .family = 4, .src = "198.19.1.1", .dport = 143, .flags = SYN }, E_TX, IG_R_REJECT, allow_v4),
	T("deny cidr on 993", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_DROP, IG_R_DENY, deny_v4),
	T("deny not on port 22", IG_ACT_REJECT, { .family = 4, .dport = 22, .flags = SYN }, E_PASS, -1, deny_v4),
	T("deny v4 host", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_DROP, IG_R_DENY, deny_host_v4),
	T("deny v4 host, neighbour passes", IG_ACT_REJECT, { .family = 4, .src = "198.18.0.3", .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, deny_host_v4),
	T("deny v6 host", IG_ACT_REJECT, { .family = 6, .src = "2001:db8::9", .dport = 993, .flags = SYN }, E_DROP, IG_R_DENY, deny_host_v6),
	T("deny v6 host, neighbour passes", IG_ACT_REJECT, { .family = 6, .src = "2001:db8::8", .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, deny_host_v6),
	T("deny v6 /64 other host", IG_ACT_REJECT, { .family = 6, .src = "2001:db8::77", .dport = 993, .flags = SYN }, E_DROP, IG_R_DENY, deny_v6_64),
	T("deny v6 /64 other net", IG_ACT_REJECT, { .family = 6, .src = "2001:db8:0:1::2", .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, deny_v6_64),
	T("deny v6 /48 prefix", IG_ACT_REJECT, { .family = 6, .src = "2001:db8:1:5::1", .dport = 993, .flags = SYN }, E_DROP, IG_R_DENY, deny_v6_48),
	T("deny v6 /48, other /48 passes", IG_ACT_REJECT, { .family = 6, .src = "2001:db8:2::1", .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, deny_v6_48),
	T("deny v4 /24, other /16 passes", IG_ACT_REJECT, { .family = 4, .src = "198.19.0.2", .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, deny_v4),
	/* hostile: an IPv6 packet with an IPv4-mapped source meets the IPv4 list */
	T("deny v4 /24 meets mapped v6 source", IG_ACT_REJECT, { .family = 6, .src = "::ffff:198.18.0.9", .dport = 993, .flags = SYN }, E_DROP, IG_R_DENY, deny_v4),
	T("deny ::/0 covers v4", IG_ACT_REJECT, { .family = 4, .src = "198.19.200.1", .dport = 993, .flags = SYN }, E_DROP, IG_R_DENY, deny_all),
	T("deny ::/64 covers v4", IG_ACT_REJECT, { .family = 4, .src = "198.19.200.1", .dport = 993, .flags = SYN }, E_DROP, IG_R_DENY, deny_zero64),
	T("ban ::/64 covers v4", IG_ACT_REJECT, { .family = 4, .src = "198.19.200.1", .dport = 993, .flags = SYN }, E_DROP, IG_R_BAN, ban_zero64),
	T("deny ::/0 covers v6", IG_ACT_REJECT, { .family = 6, .src = "2001:db8:77::1", .dport = 993, .flags = SYN }, E_DROP, IG_R_DENY, deny_all),
	T("ban v4 on 993", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_DROP, IG_R_BAN, ban_v4),
	T("ban v4 ack on 993", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = ACK }, E_DROP, IG_R_BAN, ban_v4),
	T("ban v6 /64 other host", IG_ACT_REJECT, { .family = 6, .src = "2001:db8::77", .dport = 993, .flags = SYN }, E_DROP, IG_R_BAN, ban_v6_64),
	T("ban v6 /64 other net", IG_ACT_REJECT, { .family = 6, .src = "2001:db8:0:1::2", .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, ban_v6_64),
	T("ban v4 /24 prefix", IG_ACT_REJECT, { .family = 4, .src = "198.18.0.200", .dport = 993, .flags = SYN }, E_DROP, IG_R_BAN, ban_v4_24),
	T("ban on a drop port counts as drop", IG_ACT_DROP, { .family = 4, .dport = 143, .flags = SYN }, E_DROP, IG_R_DROP, ban_v4),
	T("allow beats ban", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_PASS, IG_R_ALLOW, allow_and_ban),
	T("grant: no grant, syn dropped", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_DROP, IG_R_NO_GRANT, g993),
	T("grant: no grant v6, syn dropped", IG_ACT_REJECT, { .family = 6, .dport = 993, .flags = SYN }, E_DROP, IG_R_NO_GRANT, g993),
	T("grant: granted v4 passes", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, g993_v4),
	T("grant: another address's grant", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_DROP, IG_R_NO_GRANT, g993_other),
	T("grant: v6 /64 grant covers a host", IG_ACT_REJECT, { .family = 6, .src = "2001:db8::77", .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, g993_v6_64),
	T("grant: v6 /64 grant, other /64", IG_ACT_REJECT, { .family = 6, .src = "2001:db8:0:1::2", .dport = 993, .flags = SYN }, E_DROP, IG_R_NO_GRANT, g993_v6_64),
	T("grant: v6 host grant", IG_ACT_REJECT, { .family = 6, .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, g993_v6_host),
	T("grant: v6 host grant, neighbour", IG_ACT_REJECT, { .family = 6, .src = "2001:db8::3", .dport = 993, .flags = SYN }, E_DROP, IG_R_NO_GRANT, g993_v6_host),
	T("grant: expired grant", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_DROP, IG_R_NO_GRANT, g993_expired),
	T("grant: deleted grant", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_DROP, IG_R_NO_GRANT, g993_deleted),
	T("grant: one user's grant left", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_PASS, IG_R_PASS, g993_two_users),
	T("grant: ack of a connection passes", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = ACK }, E_PASS, IG_R_PASS, g993),
	T("grant: ban beats grant", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_DROP, IG_R_BAN, g993_ban),
	T("grant: allow needs no grant", IG_ACT_REJECT, { .family = 4, .dport = 993, .flags = SYN }, E_PASS, IG_R_ALLOW, g993_allow),
	T("grant: reject port answers RST", IG_ACT_REJECT, { .family = 4, .dport = 143, .flags = SYN }, E_TX, IG_R_NO_GRANT_REJECT, g143),
	T("grant: reject port v6 RST", IG_ACT_REJECT, { .family = 6, .dport = 143, .flags = SYN }, E_TX, IG_R_NO_GRANT_REJECT, g143),
	T("grant: reject port, granted", IG_ACT_REJECT, { .family = 4, .dport = 143, .flags = SYN }, E_PASS, IG_R_PASS, g143_v4),
	T("grant: drop port, no grant", IG_ACT_DROP, { .family = 4, .dport = 143, .flags = SYN }, E_DROP, IG_R_NO_GRANT, g143),
	T("grant: drop port, granted", IG_ACT_DROP, { .family = 4, .dport = 143, .flags = SYN }, E_PASS, IG_R_PASS, g143_v4),
	T("grant: redirect port, no grant", IG_ACT_REDIRECT, { .family = 4, .dport = 143, .flags = SYN }, E_REDIRECT, IG_R_REDIRECT, g143),
	T("grant: redirect port, granted", IG_ACT_REDIRECT, { .family = 4, .dport = 143, .flags = SYN }, E_PASS, IG_R_PASS, g143_v4),
	T("grant: starttls port, no grant", IG_ACT_STARTTLS, { .family = 4, .dport = 143, .flags = SYN }, E_DROP, IG_R_NO_GRANT, g143),
	T("grant: starttls port, granted", IG_ACT_STARTTLS, { .family = 4, .dport = 143, .flags = SYN }, E_PASS, IG_R_PASS, g143_v4),
	T("grant: open port ignores grants", IG_ACT_REJECT, { .family = 4, .dport = 143, .flags = SYN }, E_TX, IG_R_REJECT),
	/* hostile and malformed: must pass, never error */
	T("ethernet header only", IG_ACT_DROP, { .family = 4, .dport = 143, .flags = SYN, .truncate = 14 }, E_PASS, -1),
	T("truncated ip header", IG_ACT_DROP, { .family = 4, .dport = 143, .flags = SYN, .truncate = 20 }, E_PASS, -1),
	T("truncated tcp header", IG_ACT_DROP, { .family = 4, .dport = 143, .flags = SYN, .truncate = 40 }, E_PASS, -1),
	T("truncated v6 ext header", IG_ACT_DROP, { .family = 6, .v6_hbh = 1, .dport = 143, .flags = SYN, .truncate = 58 }, E_PASS, -1),
	T("truncated vlan tag", IG_ACT_DROP, { .vlans = 2, .family = 4, .dport = 143, .flags = SYN, .truncate = 16 }, E_PASS, -1),
};

static bool check_rst(const uint8_t *in, const uint8_t *out, uint32_t out_len, const struct spec *s);

static void run_case(const struct tcase *c, int hook)
{
	uint8_t pkt[MAXPKT], out[MAXPKT];
	uint64_t before[IG_C_MAX];
	uint32_t out_len;
	size_t len;
	int ret;

	reset_lists();
	set_port(143, c->action143, 0);
	set_port(993, IG_ACT_PASS, 1);
	if (c->setup)
		c->setup();
	for (int i = 0; i < IG_C_MAX; i++)
		before[i] = counter(i);
	len = build(&c->s, pkt);
	ret = run(hook, pkt, len, out, &out_len);
	/* The tc test runner refuses frames shorter than their L3 header
	 * (-EINVAL) before any program runs, so the kernel guards tc there. */
	if (hook == HOOK_TC && ret == -1000 - EINVAL && c->s.truncate && c->s.truncate < 34)
		return;
	ASSERT_EQ(ret, expected_retval(hook, c->exp), "verdict");
	for (int i = 0; i < IG_R_MAX; i++)
		ASSERT_EQ(counter(i) - before[i], i == c->reason ? 1 : 0, reason_name(i));
	if (c->exp == E_TX)
		ASSERT_TRUE(check_rst(pkt, out, out_len, &c->s), "rst bytes");
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (n & 1)
		sum += p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* Build the RST we expect, independently of the BPF code, and compare. */
static bool check_rst(const uint8_t *in, const uint8_t *out, uint32_t out_len, const struct spec *s)
{
	uint8_t exp[MAXPKT] = {}, pseudo[40 + 20] = {};
	size_t l3 = 14 + 4 * s->vlans, iphl = s->family == 4 ? 20 : 40, tcp = l3 + iphl;
	size_t in_tcp = l3 + (s->family == 4 ? 20 + s->ip_opts : 40 + (s->v6_hbh ? 8 : 0));
	uint32_t seq = s->seq ? s->seq : 1000;
	size_t alen = s->family == 4 ? 4 : 16;
	uint16_t c;

	memcpy(exp, mac_a, 6);
	memcpy(exp + 6, mac_b, 6);
	memcpy(exp + 12, in + 12, l3 - 12);	/* same VLAN tags and ethertype */
	if (s->family == 4) {
		exp[l3] = 0x45;
		put16(exp + l3 + 2, 40);
		put16(exp + l3 + 6, 0x4000);
		exp[l3 + 8] = 64;
		exp[l3 + 9] = 6;
		memcpy(exp + l3 + 12, in + l3 + 16, 4);
		memcpy(exp + l3 + 16, in + l3 + 12, 4);
		put16(exp + l3 + 10, csum(exp + l3, 20, 0));
	} else {
		exp[l3] = 0x60;
		put16(exp + l3 + 4, 20);
		exp[l3 + 6] = 6;
		exp[l3 + 7] = 64;
		memcpy(exp + l3 + 8, in + l3 + 24, 16);
		memcpy(exp + l3 + 24, in + l3 + 8, 16);
	}
	memcpy(exp + tcp, in + in_tcp + 2, 2);
	memcpy(exp + tcp + 2, in + in_tcp, 2);
	put32(exp + tcp + 8, seq + 1 + s->payload);
	exp[tcp + 12] = 5 << 4;
	exp[tcp + 13] = RST | ACK;
	/* pseudo header: src, dst, zero, proto, length */
	memcpy(pseudo, exp + l3 + (s->family == 4 ? 12 : 8), 2 * alen);
	pseudo[2 * alen + 1] = 6;
	pseudo[2 * alen + 3] = 20;
	memcpy(pseudo + 2 * alen + 4, exp + tcp, 20);
	c = csum(pseudo, 2 * alen + 4 + 20, 0);
	put16(exp + tcp + 16, c);
	if (!ASSERT_EQ(out_len, tcp + 20, "rst length"))
		return false;
	for (size_t i = 0; i < out_len; i++)
		if (out[i] != exp[i]) {
			fprintf(stderr, "  rst byte %zu: got %02x expected %02x\n", i, out[i], exp[i]);
			return false;
		}
	/* And the checksums verify as a receiver would check them. */
	if (s->family == 4 && !ASSERT_EQ(csum(out + l3, 20, 0), 0, "ip checksum verifies"))
		return false;
	memcpy(pseudo + 2 * alen + 4, out + tcp, 20);
	return ASSERT_EQ(csum(pseudo, 2 * alen + 4 + 20, 0), 0, "tcp checksum verifies");
}

/* ---- stateful cases: run once per hook with fresh addresses ------------- */

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int syn(int hook, const char *src, uint16_t dport)
{
	struct spec s = { .family = strchr(src, ':') ? 6 : 4, .src = src, .dport = dport, .flags = SYN };
	uint8_t pkt[MAXPKT], out[MAXPKT];
	size_t len = build(&s, pkt);

	return run(hook, pkt, len, out, NULL);
}

static void clear_throttle(void)
{
	struct ig_thr_key k;

	while (!bpf_map_get_next_key(maps.throttle, NULL, &k))
		bpf_map_delete_elem(maps.throttle, &k);
}

static void test_syn_burst(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);
	uint64_t before = counter(IG_R_SYN_RATE);

	clear_throttle();
	set_port(993, IG_ACT_PASS, 1);
	set_throttle(993, 200000000ULL, 3, 0, 0);	/* 5/s, burst 3 */
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(syn(hook, "198.18.1.1", 993), pass, "within burst");
	ASSERT_EQ(syn(hook, "198.18.1.1", 993), drop, "over budget");
	ASSERT_EQ(counter(IG_R_SYN_RATE) - before, 1, "syn_rate counted");
	ASSERT_EQ(syn(hook, "198.18.1.2", 993), pass, "other source unaffected");
	ASSERT_EQ(syn(hook, "198.18.1.1", 143), expected_retval(hook, E_TX), "other port: its own action");
	sleep_ms(260);		/* one interval and a coarse-clock tick */
	ASSERT_EQ(syn(hook, "198.18.1.1", 993), pass, "refilled one token");
	ASSERT_EQ(syn(hook, "198.18.1.1", 993), drop, "only one token");
	set_throttle(993, 0, 0, 0, 0);
}

static void test_subnet_bucket(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);
	uint64_t before = counter(IG_R_SUBNET_RATE);

	clear_throttle();
	set_throttle(993, 1000000ULL, 100, 1000000000ULL, 2);	/* subnet: 1/s burst 2 */
	ASSERT_EQ(syn(hook, "198.18.2.1", 993), pass, "first in /24");
	ASSERT_EQ(syn(hook, "198.18.2.2", 993), pass, "second in /24");
	ASSERT_EQ(syn(hook, "198.18.2.3", 993), drop, "third in /24 over subnet budget");
	ASSERT_EQ(counter(IG_R_SUBNET_RATE) - before, 1, "subnet_rate counted");
	ASSERT_EQ(syn(hook, "198.18.3.1", 993), pass, "other /24 unaffected");
	ASSERT_EQ(syn(hook, "2001:db8:5:1::1", 993), pass, "v6 first in /48");
	ASSERT_EQ(syn(hook, "2001:db8:5:2::1", 993), pass, "v6 second in /48");
	ASSERT_EQ(syn(hook, "2001:db8:5:3::1", 993), drop, "v6 third in /48");
	ASSERT_EQ(syn(hook, "2001:db8:6::1", 993), pass, "v6 other /48");
	set_throttle(993, 0, 0, 0, 0);
}

static void test_v6_64_bucket(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);

	clear_throttle();
	set_throttle(993, 1000000000ULL, 2, 0, 0);	/* 1/s burst 2 per /64 */
	ASSERT_EQ(syn(hook, "2001:db8:7::1", 993), pass, "first address");
	ASSERT_EQ(syn(hook, "2001:db8:7::2", 993), pass, "second address same /64");
	ASSERT_EQ(syn(hook, "2001:db8:7::3", 993), drop, "third address shares the bucket");
	ASSERT_EQ(syn(hook, "2001:db8:7:1::1", 993), pass, "next /64 has its own");
	set_throttle(993, 0, 0, 0, 0);
}

static size_t deny_count(void)
{
	struct list_entry *le;
	size_t n = 0;

	if (!list_entries(&maps, LIST_DENY, &le, &n))
		free(le);
	return n;
}

/* Bucket keys masked at lengths that are not byte multiples. */
static void test_odd_prefixes(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);
	struct ig_port_cfg pc;
	__u32 key = 993;

	clear_throttle();
	set_throttle(993, 1000000000ULL, 1, 0, 0);	/* 1/s, burst 1 */
	bpf_map_lookup_elem(maps.ports, &key, &pc);
	pc.src_plen4 = 30;
	pc.src_plen6 = 56;
	bpf_map_update_elem(maps.ports, &key, &pc, BPF_ANY);
	ASSERT_EQ(syn(hook, "198.18.9.1", 993), pass, "v4 first in /30");
	ASSERT_EQ(syn(hook, "198.18.9.2", 993), drop, "v4 same /30");
	ASSERT_EQ(syn(hook, "198.18.9.5", 993), pass, "v4 next /30");
	ASSERT_EQ(syn(hook, "2001:db8:9:100::1", 993), pass, "v6 first in /56");
	ASSERT_EQ(syn(hook, "2001:db8:9:1ff::1", 993), drop, "v6 same /56");
	ASSERT_EQ(syn(hook, "2001:db8:9:200::1", 993), pass, "v6 next /56");
	set_port(993, IG_ACT_PASS, 1);
	set_throttle(993, 0, 0, 0, 0);
}

/* The prefilter in front of the tries follows adds and deletes, for
 * prefixes shorter and longer than its slots (IPv4 /16, IPv6 /48). */
static void test_prefilter(int hook)
{
	static const struct { const char *deny, *inside, *outside; } t[] = {
		{ "198.18.7.0/24", "198.18.7.9", "198.18.8.9" },
		{ "198.18.0.0/15", "198.19.3.3", "2001:db8::5" },
		{ "2001:db8:ab00::/40", "2001:db8:abcd::1", "2001:db8:ac00::1" },
		{ "2001:db8::/32", "2001:db8:ffff::1", "198.18.3.3" },
		{ "2001:d00::/24", "2001:db8:1234::1", "198.18.3.4" },
	};
	struct ig_lpmsum s;
	bool wp, clean = true;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct ig_prefix p = pfx(t[i].deny);

		ASSERT_EQ(syn(hook, t[i].inside, 993), expected_retval(hook, E_PASS), t[i].inside);
		ASSERT_OK(list_add(&maps, LIST_DENY, &p, IG_ORIGIN_CLI), t[i].deny);
		ASSERT_EQ(syn(hook, t[i].inside, 993), expected_retval(hook, E_DROP), t[i].inside);
		ASSERT_EQ(syn(hook, t[i].outside, 993), expected_retval(hook, E_PASS), t[i].outside);
		ASSERT_OK(list_del(&maps, LIST_DENY, &p, &wp), t[i].deny);
		ASSERT_EQ(syn(hook, t[i].inside, 993), expected_retval(hook, E_PASS), t[i].inside);
	}
	/* Deletes rebuild the bits: with the trie empty, none is left. */
	for (__u32 i = 0; i < IG_SUM_ENTRIES; i++)
		if (!bpf_map_lookup_elem(maps.lpmsum, &i, &s) && s.bits[IG_SUM_DENY])
			clean = false;
	ASSERT_TRUE(clean, "no deny bits left after the last delete");
}

static void test_ban_expiry(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);
	struct ig_prefix p = pfx("198.18.4.4"), q = pfx("2001:db8:4::4");
	struct ig_ban_key k = { .plen = 128 };
	struct ig_ban_val v;

	ASSERT_OK(ban_add(&maps, &p, 200000000ULL, "expiry"), "ban v4");
	ASSERT_OK(ban_add(&maps, &q, 200000000ULL, "expiry"), "ban v6");
	ASSERT_EQ(syn(hook, "198.18.4.4", 993), drop, "banned v4");
	ASSERT_EQ(syn(hook, "2001:db8:4::4", 993), drop, "banned v6");
	memcpy(k.addr, p.addr, 16);
	ASSERT_OK(bpf_map_lookup_elem(maps.bans, &k, &v), "ban entry");
	ASSERT_EQ(v.packets, 1, "ban counts its packets");
	sleep_ms(300);
	ASSERT_EQ(syn(hook, "198.18.4.4", 993), pass, "expired ban passes (no daemon)");
	ASSERT_EQ(syn(hook, "2001:db8:4::4", 993), pass, "expired v6 ban passes");
	/* Incremental sweep, the smallest budget per call: finds both across
	 * calls and leaves the live ban alone. */
	struct ig_prefix live = pfx("198.18.4.5");
	struct sweep_cursor cur = {};
	int swept = 0;

	ban_add(&maps, &live, 0, "live");
	for (int i = 0; i < 12; i++)
		swept += ban_sweep_some(&maps, &cur, 1);
	ASSERT_EQ(swept, 2, "sweep removes both expired");
	ASSERT_EQ(map_count(maps.bans), 1, "live ban stays");
	ASSERT_EQ(ban_sweep(&maps), 0, "nothing left to sweep");
	ban_del(&maps, &live);
}

/* Bans keep who made them; an outside source (CrowdSec) neither shortens
 * nor lifts another origin's ban, and lists only its own; its range bans
 * drop like any other. */
static void test_ban_origins(int hook)
{
	int drop = expected_retval(hook, E_DROP), pass = expected_retval(hook, E_PASS);
	struct ig_prefix h = pfx("198.18.7.7"), r = pfx("198.18.8.0/24"), *own;
	struct ig_ban_val v;
	size_t n;

	ASSERT_OK(ban_add_from(&maps, &h, 3600 * 1000000000ULL, "cli", IG_ORIGIN_CLI), "cli ban");
	ASSERT_EQ(ban_add_unless_longer(&maps, &h, 60 * 1000000000ULL, "crowdsec/x", IG_ORIGIN_CROWDSEC),
		  1, "a shorter outside ban leaves it");
	ASSERT_OK(ban_get(&maps, &h, &v), "get");
	ASSERT_EQ(v.origin, IG_ORIGIN_CLI, "origin kept");
	ASSERT_STREQ(v.reason, "cli", "reason kept");
	ASSERT_EQ(ban_del_origin(&maps, &h, IG_ORIGIN_CROWDSEC), -ENOENT, "not lifted by another origin");
	ASSERT_OK(ban_add_unless_longer(&maps, &h, 7200 * 1000000000ULL, "crowdsec/y", IG_ORIGIN_CROWDSEC),
		  "a longer outside ban replaces it");
	ASSERT_OK(ban_get(&maps, &h, &v), "get again");
	ASSERT_EQ(v.origin, IG_ORIGIN_CROWDSEC, "origin crowdsec");
	ASSERT_OK(ban_add_unless_longer(&maps, &r, 60 * 1000000000ULL, "crowdsec/z", IG_ORIGIN_CROWDSEC),
		  "range");
	ASSERT_EQ(syn(hook, "198.18.8.9", 993), drop, "range drops");
	ASSERT_OK(ban_list_origin(&maps, IG_ORIGIN_CROWDSEC, &own, &n), "own list");
	ASSERT_EQ(n, 2, "two own bans");
	free(own);
	ASSERT_OK(ban_list_origin(&maps, IG_ORIGIN_CLI, &own, &n), "cli list");
	ASSERT_EQ(n, 0, "no cli ban left");
	free(own);
	ASSERT_OK(ban_del_origin(&maps, &r, IG_ORIGIN_CROWDSEC), "lift own range");
	ASSERT_EQ(syn(hook, "198.18.8.9", 993), pass, "range lifted");
	ASSERT_OK(ban_del_origin(&maps, &h, IG_ORIGIN_CROWDSEC), "lift own host");
	ASSERT_EQ(ban_get(&maps, &h, &v), -ENOENT, "gone");
}

/* A host on both lists shares one ig_bans entry: each list's add and
 * delete leaves the other list's part alone, in BPF and in listings. */
static void test_ban_and_deny_host(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);
	struct ig_prefix p = pfx("198.18.6.6"), q = pfx("2001:db8:6::/64");
	uint64_t before = counter(IG_R_DENY);
	struct list_entry *le;
	struct ban_info *b;
	struct sweep_cursor cur = {};
	struct ig_ban_val v;
	size_t n, found = 0;
	bool wp;

	ASSERT_OK(list_add(&maps, LIST_DENY, &p, IG_ORIGIN_CLI), "deny host");
	ASSERT_OK(list_add(&maps, LIST_DENY, &q, IG_ORIGIN_CLI), "deny v6 /64");
	ASSERT_EQ(ban_get(&maps, &p, &v), -ENOENT, "a deny is no ban");
	ASSERT_OK(ban_list(&maps, &b, &n), "ban list");
	ASSERT_EQ(n, 0, "deny-only entries are not listed as bans");
	free(b);
	ASSERT_OK(list_entries(&maps, LIST_DENY, &le, &n), "deny list");
	for (size_t i = 0; i < n; i++)
		found += !memcmp(&le[i].pfx, &p, sizeof(p)) || !memcmp(&le[i].pfx, &q, sizeof(q));
	ASSERT_EQ(found, 2, "both hosts listed as deny");
	free(le);
	ASSERT_EQ(syn(hook, "198.18.6.6", 993), drop, "denied host");
	ASSERT_EQ(syn(hook, "2001:db8:6::9", 993), drop, "denied /64");
	ASSERT_EQ(counter(IG_R_DENY) - before, 2, "counted as deny");

	before = counter(IG_R_BAN);
	ASSERT_OK(ban_add(&maps, &p, 200000000ULL, "both"), "ban the denied host");
	ASSERT_EQ(syn(hook, "198.18.6.6", 993), drop, "banned and denied");
	ASSERT_EQ(counter(IG_R_BAN) - before, 1, "a ban wins over a deny");
	ASSERT_OK(list_del(&maps, LIST_DENY, &p, &wp), "undeny");
	ASSERT_OK(ban_get(&maps, &p, &v), "the ban stays");
	ASSERT_OK(list_add(&maps, LIST_DENY, &p, IG_ORIGIN_CLI), "deny again");
	sleep_ms(300);
	before = counter(IG_R_DENY);
	ASSERT_EQ(syn(hook, "198.18.6.6", 993), drop, "expired ban, still denied");
	ASSERT_EQ(counter(IG_R_DENY) - before, 1, "counted as deny");
	ASSERT_EQ(ban_sweep_some(&maps, &cur, 100), 1, "sweep lifts the expired ban");
	ASSERT_EQ(deny_count(), 2, "and keeps the deny");
	ASSERT_OK(list_del(&maps, LIST_DENY, &p, &wp), "undeny v4");
	ASSERT_OK(list_del(&maps, LIST_DENY, &q, &wp), "undeny v6");
	ASSERT_EQ(map_count(maps.bans), 0, "entries gone with both lists");
	ASSERT_EQ(syn(hook, "198.18.6.6", 993), pass, "passes again");
}

static int ev_count;
static struct ig_event last_ev;

static int on_event(void *ctx, void *data, size_t len)
{
	(void)ctx;
	if (len >= sizeof(last_ev))
		memcpy(&last_ev, data, sizeof(last_ev));
	ev_count++;
	return 0;
}

/* ig_cfg.hz: 0 samples events on coarse ns, else on jiffies. */
static void set_hz(unsigned int hz)
{
	struct ig_cfg cfg;
	__u32 zero = 0;

	if (!bpf_map_lookup_elem(maps.cfg, &zero, &cfg)) {
		cfg.hz = hz;
		bpf_map_update_elem(maps.cfg, &zero, &cfg, BPF_ANY);
	}
}

/* Events on either sampling clock; n picks sources no other run used. */
static void events_on(int hook, unsigned int hz, int n)
{
	struct ring_buffer *rb = ring_buffer__new(maps.events, on_event, NULL, NULL);
	char src[INET6_ADDRSTRLEN], src6[INET6_ADDRSTRLEN];
	struct ig_prefix p;
	uint64_t sampled = counter(IG_C_EVENTS_SAMPLED);

	if (!ASSERT_OK_PTR(rb, "ring_buffer__new"))
		return;
	snprintf(src, sizeof(src), "198.18.8.%d", n);
	snprintf(src6, sizeof(src6), "2001:db8:8::%d", n);
	p = pfx(src);
	set_hz(hz);
	ring_buffer__consume(rb);
	ev_count = 0;
	ban_add(&maps, &p, 0, "events");
	syn(hook, src, 993);
	syn(hook, src, 993);	/* same source and reason within 1 s: sampled away */
	ring_buffer__consume(rb);
	ASSERT_EQ(ev_count, 1, "one event for two drops");
	ASSERT_EQ(counter(IG_C_EVENTS_SAMPLED) - sampled, 1, "suppressed event counted");
	ASSERT_EQ(last_ev.reason, IG_R_BAN, "event reason");
	ASSERT_EQ(last_ev.family, 4, "event family");
	ASSERT_EQ(last_ev.dport, 993, "event port");
	ASSERT_TRUE(!memcmp(last_ev.addr, p.addr, 16), "event address");
	ASSERT_TRUE(last_ev.ts_ns > 0 && last_ev.ts_ns <= mono_ns(), "event time");
	/* reject: another source, another event; the drop path has no time of its own */
	syn(hook, src6, 143);
	ring_buffer__consume(rb);
	ASSERT_EQ(ev_count, 2, "v6 reject event");
	ASSERT_EQ(last_ev.family, 6, "v6 family");
	ASSERT_EQ(last_ev.reason, IG_R_REJECT, "v6 reason");
	ASSERT_TRUE(last_ev.ts_ns > 0 && last_ev.ts_ns <= mono_ns(), "reject event time");
	ban_del(&maps, &p);
	set_hz(kernel_hz());
	ring_buffer__free(rb);
}

static void test_events(int hook)
{
	events_on(hook, 0, hook == HOOK_XDP ? 1 : 2);
}

static void test_events_jiffies(int hook)
{
	events_on(hook, kernel_hz(), hook == HOOK_XDP ? 3 : 4);
}

/* Events go out again once the source's second is over, on either clock. */
static void test_event_second(int hook)
{
	struct ring_buffer *rb = ring_buffer__new(maps.events, on_event, NULL, NULL);
	const char *src = hook == HOOK_XDP ? "2001:db8:8::5" : "2001:db8:8::6";

	if (!ASSERT_OK_PTR(rb, "ring_buffer__new"))
		return;
	for (int clock = 0; clock < (kernel_hz() ? 2 : 1); clock++) {
		set_hz(clock ? kernel_hz() : 0);
		ring_buffer__consume(rb);
		ev_count = 0;
		syn(hook, src, 143);
		syn(hook, src, 143);
		usleep(1100 * 1000);
		syn(hook, src, 143);
		ring_buffer__consume(rb);
		ASSERT_EQ(ev_count, 2, clock ? "jiffies: one event per second" :
					       "coarse ns: one event per second");
	}
	set_hz(kernel_hz());
	ring_buffer__free(rb);
}

/* ---- spoofed floods: admission filter, new-state budget, ban summary ---- */

static void clear_seen(void)
{
	memset(skel->bss->ig_seen, 0, sizeof(skel->bss->ig_seen));
}

/* bpf_ktime_get_coarse_ns() in userspace */
static uint64_t coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Every CPU's new-state budget: `used` of IG_NEW_STATE_PER_SEC spent in a
 * second that starts now. */
static void set_budget_used(uint64_t used)
{
	int ncpu = libbpf_num_possible_cpus();
	struct { __u64 start, used; } v[ncpu];
	__u32 zero = 0;

	for (int i = 0; i < ncpu; i++)
		v[i].start = coarse_ns(), v[i].used = used;
	bpf_map_update_elem(bpf_map__fd(skel->maps.ig_newbkt), &zero, v, BPF_ANY);
}

/* A source's first SYN takes its token from the admission slot, not from a
 * bucket: no LRU insert. Seen again, it gets a bucket that counts the first
 * token, so the burst is exactly what the policy says. */
static void test_first_sight(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);
	const char *src = hook == HOOK_XDP ? "198.18.20.1" : "198.18.20.2";

	clear_throttle();
	clear_seen();
	set_budget_used(0);
	set_throttle(993, 200000000ULL, 3, 0, 0);	/* 5/s, burst 3 */
	ASSERT_EQ(syn(hook, src, 993), pass, "first sight passes");
	ASSERT_EQ(map_count(maps.throttle), 0, "first sight: no bucket");
	ASSERT_EQ(syn(hook, src, 993), pass, "second SYN passes");
	ASSERT_EQ(map_count(maps.throttle), 1, "second SYN: a bucket");
	ASSERT_EQ(syn(hook, src, 993), pass, "third within the burst");
	ASSERT_EQ(syn(hook, src, 993), drop, "fourth over the burst: the first token counted");
	/* Burst 1: the second SYN within the interval is over budget already. */
	clear_throttle();
	set_throttle(993, 1000000000ULL, 1, 0, 0);
	src = hook == HOOK_XDP ? "198.18.20.3" : "198.18.20.4";
	ASSERT_EQ(syn(hook, src, 993), pass, "burst 1: first sight");
	ASSERT_EQ(syn(hook, src, 993), drop, "burst 1: second SYN refused at its bucket's creation");
	ASSERT_EQ(syn(hook, src, 993), drop, "burst 1: and after");
	set_throttle(993, 0, 0, 0, 0);
}

/* Slots written at any earlier time are idle: a first sight takes no
 * bucket. (Slots were 32 bits and compared modulo 39 h: after 19.5 h of
 * uptime, never-written slots looked busy and every SYN paid the LRU.) */
static void test_seen_stale(int hook)
{
	int pass = expected_retval(hook, E_PASS);
	uint64_t units = coarse_ns() >> 23, ago[] = { units, units / 2, 1 << 23, 1 << 22, 2 };
	char src[64], what[96];

	set_budget_used(0);
	set_throttle(993, 200000000ULL, 3, 0, 0);
	for (size_t i = 0; i < sizeof(ago) / sizeof(ago[0]); i++) {
		if (ago[i] > units)
			continue;	/* before boot */
		clear_throttle();
		for (size_t j = 0; j < sizeof(skel->bss->ig_seen) / sizeof(*skel->bss->ig_seen); j++)
			skel->bss->ig_seen[j] = ((units - ago[i]) << 8) | (j & 0xff);
		snprintf(src, sizeof(src), "198.18.22.%zu", 2 * i + (hook == HOOK_TC));
		snprintf(what, sizeof(what), "slots written %llu units ago: no bucket",
			 (unsigned long long)ago[i]);
		ASSERT_EQ(syn(hook, src, 993), pass, "first sight passes");
		ASSERT_EQ(map_count(maps.throttle), 0, what);
	}
	clear_seen();
	set_throttle(993, 0, 0, 0, 0);
}

/* A thousand never-seen sources, one SYN each, in distinct /48s: all pass
 * and leave (almost) no buckets; a real source keeps its exact burst, and
 * once over budget stays so while the flood goes on. */
static void test_spoofed_flood(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);
	const char *src = hook == HOOK_XDP ? "198.18.21.1" : "198.18.21.2";
	int passed = 0, n = 1000;
	char a[64];

	clear_throttle();
	clear_seen();
	set_budget_used(0);
	set_throttle(993, 200000000ULL, 3, 5000000ULL, 400);
	for (int i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "2001:db8:%x:%x::%x", 0x100 + i, i, hook + 1);
		passed += syn(hook, a, 993) == pass;
	}
	ASSERT_EQ(passed, n, "every spoofed SYN passes");
	/* Only a key whose slot another one made busy gets a bucket: ~n^2 / 65536 */
	ASSERT_TRUE(map_count(maps.throttle) < n / 20, "the flood left almost no buckets");
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(syn(hook, src, 993), pass, "real source within its burst");
	ASSERT_EQ(syn(hook, src, 993), drop, "real source over its burst");
	for (int i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "2001:db8:%x:%x::%x", 0x2000 + i, i, hook + 1);
		syn(hook, a, 993);
	}
	ASSERT_EQ(syn(hook, src, 993), drop, "still over budget after more flood");
	set_throttle(993, 0, 0, 0, 0);
}

/* With the new-state budget spent, new sources pass untracked (counted),
 * no bucket is made, and buckets that exist still enforce. */
static void test_new_bucket_budget(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);
	const char *src = hook == HOOK_XDP ? "198.18.22.1" : "198.18.22.2";
	uint64_t skip;
	char a[64];

	clear_throttle();
	clear_seen();
	set_budget_used(0);
	set_throttle(993, 200000000ULL, 3, 0, 0);
	ASSERT_EQ(syn(hook, src, 993), pass, "real source, first sight");
	ASSERT_EQ(syn(hook, src, 993), pass, "real source, its bucket");
	set_budget_used(IG_NEW_STATE_PER_SEC);
	skip = counter(IG_C_NEW_BUCKET_SKIP);
	for (int i = 0; i < 100; i++) {
		snprintf(a, sizeof(a), "198.18.23.%d", i + 1);
		ASSERT_EQ(syn(hook, a, 993), pass, "new source over the budget passes");
		ASSERT_EQ(syn(hook, a, 993), pass, "... and again: still untracked");
	}
	ASSERT_EQ(counter(IG_C_NEW_BUCKET_SKIP) - skip, 200, "each untracked SYN counted");
	ASSERT_EQ(map_count(maps.throttle), 1, "no bucket made over the budget");
	ASSERT_EQ(syn(hook, src, 993), pass, "real source, third token");
	ASSERT_EQ(syn(hook, src, 993), drop, "real source still held to its burst");
	set_budget_used(0);
	ASSERT_EQ(syn(hook, "198.18.23.1", 993), pass, "budget back: first sight");
	ASSERT_EQ(syn(hook, "198.18.23.1", 993), pass, "budget back: a bucket");
	ASSERT_EQ(map_count(maps.throttle), 2, "budget back: buckets again");
	set_throttle(993, 0, 0, 0, 0);
}

static bool bansum_has(const char *s)
{
	struct ig_prefix p = pfx(s);
	__u32 line = ig_bansum_line(p.addr, p.plen);
	struct ig_bansum v;

	return !bpf_map_lookup_elem(maps.bansum, &line, &v) && ig_bansum_test(&v, p.addr, p.plen);
}

/* Every host entry written through the library is in the summary before
 * ig_bans; a key without its bits is not looked up at all. */
static void test_ban_summary(int hook)
{
	int pass = expected_retval(hook, E_PASS), drop = expected_retval(hook, E_DROP);
	struct ig_prefix b4 = pfx("198.18.24.4"), b64 = pfx("2001:db8:24:1::/64"),
			 d6 = pfx("2001:db8:24:2::9");
	struct ig_ban_key k = { .plen = 128 };
	struct ig_ban_val v = { .banned = 1 };
	bool wp;

	ASSERT_OK(ban_add(&maps, &b4, 0, "t"), "ban v4 host");
	ASSERT_OK(ban_add(&maps, &b64, 0, "t"), "ban v6 /64");
	ASSERT_OK(list_add(&maps, LIST_DENY, &d6, IG_ORIGIN_CLI), "deny v6 host");
	ASSERT_TRUE(bansum_has("198.18.24.4"), "v4 host in the summary");
	ASSERT_TRUE(bansum_has("2001:db8:24:1::/64"), "v6 /64 in the summary");
	ASSERT_TRUE(bansum_has("2001:db8:24:2::9"), "v6 deny host in the summary");
	ASSERT_EQ(syn(hook, "198.18.24.4", 993), drop, "v4 ban applies");
	ASSERT_EQ(syn(hook, "2001:db8:24:1::77", 993), drop, "v6 /64 ban applies");
	ASSERT_EQ(syn(hook, "2001:db8:24:2::9", 993), drop, "v6 deny applies");
	ASSERT_EQ(syn(hook, "::ffff:198.18.24.4", 993), drop, "IPv4-mapped IPv6 source meets the v4 ban");
	ASSERT_EQ(syn(hook, "198.18.24.5", 993), pass, "v4 neighbour passes");
	ASSERT_EQ(syn(hook, "2001:db8:24:3::1", 993), pass, "v6 neighbour passes");
	ban_del(&maps, &b4);
	ban_del(&maps, &b64);
	list_del(&maps, LIST_DENY, &d6, &wp);
	ASSERT_TRUE(bansum_has("198.18.24.4"), "bits stay after a delete (never stale clear)");
	ASSERT_EQ(syn(hook, "198.18.24.4", 993), pass, "lifted ban: a lookup, no match");
	/* Straight into ig_bans without the summary: not looked up. */
	memcpy(k.addr, pfx("198.18.25.1").addr, 16);
	if (!bansum_has("198.18.25.1")) {
		bpf_map_update_elem(maps.bans, &k, &v, BPF_ANY);
		ASSERT_EQ(syn(hook, "198.18.25.1", 993), pass, "an unmarked key is skipped");
		bpf_map_delete_elem(maps.bans, &k);
	}
}

/* Random garbage must never make either entry point fail. */
static void test_garbage(int hook)
{
	uint8_t pkt[MAXPKT], out[MAXPKT];
	unsigned int seed = 42;

	for (int i = 0; i < 2000; i++) {
		size_t len = 14 + rand_r(&seed) % 200;

		for (size_t j = 0; j < len; j++)
			pkt[j] = rand_r(&seed);
		if (i & 1)	/* half of them look like IPv4/IPv6 to get deeper */
			pkt[12] = i & 2 ? 0x86 : 0x08, pkt[13] = i & 2 ? 0xdd : 0x00,
			pkt[14] = i & 2 ? 0x60 : 0x45;
		int ret = run(hook, pkt, len, out, NULL);

		if (hook == HOOK_TC && ret == -1000 - EINVAL)
			continue;	/* runt frame refused by the tc test runner itself */
		if (ret < 0 || (hook == HOOK_XDP && ret == XDP_ABORTED)) {
			ASSERT_TRUE(false, "garbage frame ran");
			return;
		}
	}
}

/* ---- policy apply: one switch between port generations ------------------ */

/* A packet to port, and its verdict under the old and the new policy. */
struct gen_pkt {
	uint16_t port;
	int family;
	enum exp before, after;
};

struct gen_case {
	const char *name;
	const char *from, *to;	/* policy texts */
	struct gen_pkt pk[5];	/* port 0 ends */
};

static const struct gen_case gen_cases[] = {
	{ "actions change",
	  "[port 143]\naction = reject\n[port 993]\naction = pass\n",
	  "[port 143]\naction = pass\n[port 993]\naction = drop\n",
	  { { 143, 4, E_TX, E_PASS }, { 993, 6, E_PASS, E_DROP }, { 143, 6, E_TX, E_PASS } } },
	{ "ports added and retired",
	  "[port 143]\naction = drop\n[port 993]\naction = pass\n",
	  "[port 110]\naction = reject\n[port 995]\naction = drop\n[port 993]\naction = drop\n",
	  { { 143, 4, E_DROP, E_PASS }, { 110, 4, E_PASS, E_TX }, { 995, 6, E_PASS, E_DROP },
	    { 993, 4, E_PASS, E_DROP } } },
	{ "fewer ports",
	  "[port 143]\naction = reject\n[port 993]\naction = drop\n[port 110]\naction = drop\n",
	  "[port 993]\naction = pass\n",
	  { { 143, 4, E_TX, E_PASS }, { 110, 6, E_DROP, E_PASS }, { 993, 4, E_DROP, E_PASS } } },
	{ "every action at once",
	  "[port 143]\naction = drop\n[port 993]\naction = drop\n[port 110]\naction = drop\n",
	  "[port 143]\naction = pass\n[port 993]\naction = reject\n[port 110]\naction = pass\n",
	  { { 143, 4, E_DROP, E_PASS }, { 993, 6, E_DROP, E_TX }, { 110, 4, E_DROP, E_PASS } } },
};

static int gen_load(const char *text, struct policy *pol)
{
	char err[256], *buf = strdup(text);
	int ret = buf ? policy_load_buf("gen-test.conf", buf, strlen(text), pol, err,
					 sizeof(err)) : -ENOMEM;

	if (ret)
		fprintf(stderr, "  policy: %s\n", err);
	free(buf);
	return ret;
}

/* Every packet of c gets its verdict under the old (after = false) or the
 * new policy; why names the moment. */
static void gen_expect(int hook, const struct gen_case *c, bool after, const char *why)
{
	char name[160], src[INET6_ADDRSTRLEN];

	for (int i = 0; i < 5 && c->pk[i].port; i++) {
		const struct gen_pkt *k = &c->pk[i];

		snprintf(src, sizeof(src), k->family == 6 ? "2001:db8:10::%x" : "198.18.10.%d",
			 i + 1);
		snprintf(name, sizeof(name), "%s: port %u v%d", why, k->port, k->family);
		ASSERT_EQ(syn(hook, src, k->port),
			  expected_retval(hook, after ? k->after : k->before), name);
	}
}

/*
 * policy apply from c->from to c->to. The new ports are written into the
 * generation not in force, a growing part of them at a time (as an apply
 * that is interrupted half-way leaves them): every packet still sees only
 * the old policy. After apply_commit(), only the new one.
 */
static void test_port_switch(int hook, const struct gen_case *c)
{
	struct policy from, to, part;
	struct apply_state st;
	char err[256], why[64];

	if (!ASSERT_OK(gen_load(c->from, &from), "from policy") ||
	    !ASSERT_OK(gen_load(c->to, &to), "to policy"))
		goto out;
	clear_throttle();
	ASSERT_OK(apply_policy(&maps, &from, err, sizeof(err)), "apply the old policy");
	gen_expect(hook, c, false, "old policy in force");
	for (int k = 1; k <= to.nports; k++) {
		part = to;
		part.nports = k;	/* the first k ports of the new policy staged */
		ASSERT_OK(apply_prepare(&maps, &part, &st, err, sizeof(err)), "prepare");
		snprintf(why, sizeof(why), "%d of %d new ports written", k, to.nports);
		gen_expect(hook, c, false, why);
	}
	ASSERT_OK(apply_commit(&maps, &st, err, sizeof(err)), "commit");
	gen_expect(hook, c, true, "after the switch");
	/* And back, through the generation the old policy left. */
	ASSERT_OK(apply_policy(&maps, &from, err, sizeof(err)), "apply the old policy again");
	gen_expect(hook, c, false, "old policy again");
	policy_free(&to);
out:
	policy_free(&from);
}

/* The adopted-pin check knows the generation layout: one table of 65536
 * entries (an older imapguard) is refused, not misread. */
static void test_port_layout(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	char dir[] = "/sys/fs/bpf/ig_test_XXXXXX", path[PATH_MAX];
	struct ig_maps m;
	int fd, err;

	if (!mkdtemp(dir)) {
		SKIP_CASE("port layout", "no bpffs at /sys/fs/bpf");
		return;
	}
	for (int i = 0; i < IG_NMAPS; i++) {
		int src = ((int *)&maps)[i];

		snprintf(path, sizeof(path), "%s/%s", dir, ig_map_names[i]);
		if (i == 0)	/* ig_ports as an older imapguard made it */
			fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ig_ports", 4,
					    sizeof(struct ig_port_cfg), 65536, &o);
		else
			fd = dup(src);
		if (fd >= 0) {
			bpf_obj_pin(fd, path);
			close(fd);
		}
	}
	err = fastpath_open_maps(dir, &m);
	ASSERT_EQ(err, -EPROTO, "one-generation ig_ports refused");
	if (!err)
		fastpath_close_maps(&m);
	snprintf(path, sizeof(path), "%s/%s", dir, ig_map_names[0]);
	unlink(path);
	fd = dup(maps.ports);
	ASSERT_OK(bpf_obj_pin(fd, path), "pin");
	close(fd);
	err = fastpath_open_maps(dir, &m);
	ASSERT_OK(err, "this layout adopted");
	if (!err)
		fastpath_close_maps(&m);
	fastpath_unpin_all(dir);
}

/* grants.c: slots, listing, bind check and the incremental sweep. */
static void test_grants(void)
{
	struct ig_prefix a = pfx("198.18.0.2"), b = pfx("2001:db8::/64"), h = pfx("198.18.0.3");
	struct grant_cursor cur = {};
	struct grant_info *g;
	uint8_t in64[16];
	size_t n;
	int freed = 0;

	reset_lists();
	ASSERT_OK(grant_add(&maps, &a, "alice", 60 * NS_PER_SEC, NULL), "alice");
	ASSERT_OK(grant_add(&maps, &a, "bob", 60 * NS_PER_SEC, NULL), "bob, same address");
	ASSERT_OK(grant_add(&maps, &a, "alice", 120 * NS_PER_SEC, NULL), "alice extended");
	ASSERT_OK(grant_add(&maps, &b, "carol", 60 * NS_PER_SEC, NULL), "carol's /64");
	ASSERT_EQ(grant_add(&maps, &a, "-x", 60 * NS_PER_SEC, NULL), -EINVAL, "bad user");
	ASSERT_EQ(grant_add(&maps, &a, "dave", 0, NULL), -ERANGE, "ttl 0");
	ASSERT_EQ(grant_add(&maps, &(struct ig_prefix){ .plen = 120 }, "dave", NS_PER_SEC, NULL),
		  -EINVAL, "a /24 is no grant key");
	ASSERT_OK(grant_list(&maps, &g, &n), "list");
	ASSERT_EQ(n, 3, "three (address, user) rows");
	free(g);
	ASSERT_OK(grant_bind_check(&maps, a.addr, "alice"), "alice bound");
	ASSERT_EQ(grant_bind_check(&maps, a.addr, "erin"), -EACCES, "erin: others' grants only");
	ASSERT_EQ(grant_bind_check(&maps, h.addr, "erin"), -ENOENT, "no grant at all");
	memcpy(in64, b.addr, 16);
	in64[15] = 7;
	ASSERT_OK(grant_bind_check(&maps, in64, "carol"), "carol in her /64");
	/* Five users on one address: the one ending first gives way. */
	ASSERT_OK(grant_add(&maps, &h, "u1", 10 * NS_PER_SEC, NULL), "u1");
	ASSERT_OK(grant_add(&maps, &h, "u2", 20 * NS_PER_SEC, NULL), "u2");
	ASSERT_OK(grant_add(&maps, &h, "u3", 30 * NS_PER_SEC, NULL), "u3");
	ASSERT_OK(grant_add(&maps, &h, "u4", 40 * NS_PER_SEC, NULL), "u4");
	ASSERT_OK(grant_add(&maps, &h, "u5", 50 * NS_PER_SEC, NULL), "u5");
	ASSERT_EQ(grant_bind_check(&maps, h.addr, "u1"), -EACCES, "u1 gave way");
	ASSERT_OK(grant_bind_check(&maps, h.addr, "u5"), "u5 in");
	/* Expired slots go in the sweep, a budget of one entry at a time. */
	ASSERT_OK(grant_put(&maps, &a, "bob", mono_ns() - NS_PER_SEC, 0), "bob expired");
	ASSERT_OK(grant_put(&maps, &b, "carol", mono_ns() - NS_PER_SEC, 0), "carol expired");
	for (int i = 0; i < 10; i++)
		freed += grant_sweep_some(&maps, &cur, 1);
	ASSERT_EQ(freed, 2, "two slots freed");
	ASSERT_OK(grant_list(&maps, &g, &n), "list");
	ASSERT_EQ(n, 5, "alice and u2..u5 left");
	free(g);
	ASSERT_EQ(grant_del_user(&maps, "alice"), 1, "del_user");
	ASSERT_EQ(grant_del(&maps, &h, NULL), 0, "del all of an address");
	ASSERT_EQ(map_count(maps.grants), 0, "map empty");
}

/* The census program's figures against a walk of the same maps from
 * userspace: entries, and bans in force and packets per origin. */
/* origin_parse() undoes origin_name() (the state file's origin= word), and
 * nothing else: not "local", not a prefix, not a longer word. */
static void test_origin_names(void)
{
	for (unsigned int o = IG_ORIGIN_POLICY; o <= IG_ORIGIN_FLEET; o <<= 1)
		ASSERT_EQ(origin_parse(origin_name(o), strlen(origin_name(o))), o, origin_name(o));
	ASSERT_EQ(origin_parse("local", 5), 0, "local");
	ASSERT_EQ(origin_parse("cli", 2), 0, "a prefix");
	ASSERT_EQ(origin_parse("clix", 4), 0, "a longer word");
	ASSERT_EQ(origin_parse("", 0), 0, "empty");
}

static void test_census(void)
{
	struct ig_prefix a = pfx("198.18.9.1"), b = pfx("2001:db8:9::/64"), c = pfx("198.18.9.2"),
			 d = pfx("198.18.9.3");
	struct ig_prefix e = pfx("2001:db8:9::5"), *all[] = { &a, &b, &c, &d };
	struct ig_ban_key k = { .plen = 128 };
	struct ig_census cs;
	struct ig_ban_val v;
	long before;
	bool wp;

	reset_lists();
	before = map_count(maps.bans);
	ASSERT_OK(ban_add_from(&maps, &a, 0, "t", IG_ORIGIN_CLI), "cli ban");
	ASSERT_OK(ban_add_from(&maps, &b, 3600 * NS_PER_SEC, "t", IG_ORIGIN_CROWDSEC), "crowdsec /64");
	ASSERT_OK(ban_add(&maps, &c, 0, "t"), "ban of no origin");
	ASSERT_OK(ban_add_from(&maps, &d, 60 * NS_PER_SEC, "t", IG_ORIGIN_DAEMON), "daemon ban");
	list_add(&maps, LIST_DENY, &e, IG_ORIGIN_CLI);	/* an entry, no ban */
	grant("198.18.9.9", "alice");
	/* a's ban has dropped 7 packets; d's has expired, not yet swept */
	memcpy(k.addr, a.addr, 16);
	ASSERT_OK(bpf_map_lookup_elem(maps.bans, &k, &v), "a's entry");
	v.packets = 7;
	ASSERT_OK(bpf_map_update_elem(maps.bans, &k, &v, BPF_EXIST), "a's packets");
	memcpy(k.addr, d.addr, 16);
	ASSERT_OK(bpf_map_lookup_elem(maps.bans, &k, &v), "d's entry");
	v.expires_ns = mono_ns() - 1;
	v.packets = 2;
	ASSERT_OK(bpf_map_update_elem(maps.bans, &k, &v, BPF_EXIST), "d expired");

	ASSERT_OK(fastpath_census_run(bpf_program__fd(skel->progs.ig_census), &cs), "run");
	ASSERT_EQ(cs.bans, before + 5, "five more ig_bans entries");
	ASSERT_EQ(cs.bans, map_count(maps.bans), "as a walk counts them");
	ASSERT_EQ(cs.throttle, map_count(maps.throttle), "throttle entries");
	ASSERT_EQ(cs.flows, map_count(maps.flows), "flow entries");
	ASSERT_EQ(cs.grants, 1, "one grant");
	ASSERT_EQ(cs.live[ig_census_slot(IG_ORIGIN_CLI)], 1, "cli: one in force");
	ASSERT_EQ(cs.packets[ig_census_slot(IG_ORIGIN_CLI)], 7, "cli: its packets");
	ASSERT_EQ(cs.live[ig_census_slot(IG_ORIGIN_CROWDSEC)], 1, "crowdsec: the /64");
	ASSERT_EQ(cs.live[0], 1, "no origin: one");
	ASSERT_EQ(cs.live[ig_census_slot(IG_ORIGIN_DAEMON)], 0, "daemon: expired, not in force");
	ASSERT_EQ(cs.packets[ig_census_slot(IG_ORIGIN_DAEMON)], 2, "daemon: its packets still counted");
	ASSERT_EQ(ig_census_slot(IG_ORIGIN_CLI | IG_ORIGIN_DAEMON), 0, "several bits: no origin");
	ASSERT_EQ(ig_census_slot(IG_ORIGIN_FLEET), 5, "fleet: slot 5");
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		ban_del(&maps, all[i]);
	list_del(&maps, LIST_DENY, &e, &wp);
	reset_lists();
}

int main(void)
{
	char name[128];
	int err;

	if (geteuid()) {
		SKIP_CASE("bpf", "needs root (CAP_BPF) to load programs");
		return 0;
	}
	skel = imapguard_bpf__open();
	if (!skel) {
		printf("FAIL bpf open: %s\n", strerror(errno));
		return 1;
	}
	/* Small maps: preallocated LRU of 1M entries is slow to create. */
	bpf_map__set_max_entries(skel->maps.ig_throttle, 4096);
	bpf_map__set_max_entries(skel->maps.ig_bans, 4096);
	bpf_map__set_max_entries(skel->maps.ig_deny, 4096);
	bpf_program__set_autoload(skel->progs.ig_census, true);
	err = imapguard_bpf__load(skel);
	if (err) {
		printf("FAIL bpf load: %s\n", strerror(-err));
		return 1;
	}
	fastpath_maps_of(skel->obj, &maps);
	static struct ig_cfg cfg = { .nports = 2, .ports = { 143, 993 } };
	__u32 zero = 0;

	cfg.hz = kernel_hz();	/* as apply_policy() sets it */

	for (int i = 0; i < 2; i++)
		cfg.port_bits[0][IG_PORT_WORD(cfg.ports[i])] |= IG_PORT_BIT(cfg.ports[i]);

	bpf_map_update_elem(maps.cfg, &zero, &cfg, BPF_ANY);
	for (int hook = HOOK_XDP; hook <= HOOK_TC; hook++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			snprintf(name, sizeof(name), "%s: %s", hook_name[hook], cases[i].name);
			RUN_CASE(name, run_case(&cases[i], hook));
		}
		reset_lists();
		set_port(143, IG_ACT_REJECT, 0);
		set_port(993, IG_ACT_PASS, 1);
#define STATEFUL(fn) do { snprintf(name, sizeof(name), "%s: %s", hook_name[hook], #fn); \
		RUN_CASE(name, fn(hook)); } while (0)
		STATEFUL(test_syn_burst);
		STATEFUL(test_subnet_bucket);
		STATEFUL(test_v6_64_bucket);
		STATEFUL(test_odd_prefixes);
		STATEFUL(test_prefilter);
		STATEFUL(test_ban_expiry);
		STATEFUL(test_ban_and_deny_host);
		STATEFUL(test_first_sight);
		STATEFUL(test_seen_stale);
		STATEFUL(test_spoofed_flood);
		STATEFUL(test_new_bucket_budget);
		STATEFUL(test_ban_summary);
		STATEFUL(test_ban_origins);
		STATEFUL(test_events);
		if (kernel_hz())
			STATEFUL(test_events_jiffies);
		else
			SKIP_CASE("test_events_jiffies", "no kernel config (/boot/config-*, "
				  "/proc/config.gz): HZ unknown, events use coarse ns");
		STATEFUL(test_event_second);
		STATEFUL(test_garbage);
		/* Last: applies move ig_cfg.gen, which the cases above keep at 0
		 * (set_port writes generation 0). */
		for (size_t i = 0; i < sizeof(gen_cases) / sizeof(gen_cases[0]); i++) {
			snprintf(name, sizeof(name), "%s: port switch: %s", hook_name[hook],
				 gen_cases[i].name);
			RUN_CASE(name, test_port_switch(hook, &gen_cases[i]));
		}
		reset_lists();
		bpf_map_update_elem(maps.cfg, &zero, &cfg, BPF_ANY);
	}
	RUN_CASE("census: entries and bans by origin", test_census());
	RUN_CASE("origin names: parse undoes name", test_origin_names());
	RUN_CASE("grants: slots, bind check, sweep", test_grants());
	RUN_CASE("port layout: adopted pins", test_port_layout());
	imapguard_bpf__destroy(skel);
	return test_cases_failed != 0;
}
