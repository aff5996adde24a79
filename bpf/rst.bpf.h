/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The RST that answers a SYN, built in place over the SYN's own frame, for
 * the benchmarks' lower bound of the reject action. The fast path's own
 * builder (imapguard.bpf.c) now also writes the STARTTLS resets and keeps
 * its per-packet state in struct ctx_info; this is its reply-only form.
 */
#ifndef IMAPGUARD_RST_BPF_H
#define IMAPGUARD_RST_BPF_H
#include "parse.bpf.h"

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

/* The RST answering the SYN in p (RFC 9293 3.10.7.1: seq 0, ack = SEG.SEQ + SEG.LEN). */
static __always_inline void fill_rst(struct tcphdr *t, struct pkt *p)
{
	/* SEG.LEN: payload (TCP Fast Open may carry some) plus one for the SYN. */
	__u32 seglen = (p->l4_len > p->doff ? p->l4_len - p->doff : 0) + 1;

	__builtin_memset(t, 0, sizeof(*t));
	t->source = bpf_htons(p->dport);
	t->dest = bpf_htons(p->sport);
	t->ack_seq = bpf_htonl(p->seq + seglen + (p->tcp_flags & TCP_FIN ? 1 : 0));
	((__u8 *)t)[12] = 5 << 4;	/* doff = 5, no options */
	((__u8 *)t)[13] = TCP_RST | TCP_ACK;
}

/* Rewrite a (trimmed) frame into the RST reply, in place. 0 or -1. */
static __always_inline int build_rst(void *data, void *data_end, struct pkt *p)
{
	__u32 l3 = p->l3_off;
	struct ethhdr *eth = data;
	struct tcphdr tcp;
	__u8 mac[6];
	__u32 sum;

	if (l3 > sizeof(*eth) + MAX_VLANS * sizeof(struct vlan_hdr) ||
	    (void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(mac, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, mac, 6);
	fill_rst(&tcp, p);
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
		iph.saddr = ip->daddr;
		iph.daddr = ip->saddr;
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
		ip6h.saddr = ip6->daddr;
		ip6h.daddr = ip6->saddr;
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

#endif
