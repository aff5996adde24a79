/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet parsing for the fast path. Every helper bounds-checks before it
 * dereferences and returns the next protocol (or 0 = done, -1 = not ours).
 * Malformed frames are never an error: the caller passes them untouched.
 */
#ifndef IMAPGUARD_PARSE_BPF_H
#define IMAPGUARD_PARSE_BPF_H

#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88A8
#define IPPROTO_HOPOPTS	0
#define IPPROTO_TCP	6
#define IPPROTO_ROUTING	43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_AH	51
#define IPPROTO_DSTOPTS	60
#define IP_MF		0x2000
#define IP_OFFSET	0x1FFF

#define TCP_FIN	0x01
#define TCP_SYN	0x02
#define TCP_RST	0x04
#define TCP_ACK	0x10

#define MAX_VLANS	2	/* 802.1Q and QinQ (802.1ad outer tag) */
#define MAX_EXTHDRS	6	/* IPv6 extension headers walked before giving up */

enum frag_state { FRAG_NONE = 0, FRAG_FIRST, FRAG_LATER };

/* What the classifier needs from one packet. */
struct pkt {
	__u32 l3_off;		/* offset of the IP header from data */
	__u32 l4_off;		/* offset of the TCP header */
	__u32 l4_len;		/* bytes from the TCP header to the end of the IP payload */
	__u8 family;		/* 4 or 6 */
	__u8 l4proto;
	__u8 frag;		/* enum frag_state */
	__u8 tcp_flags;
	__u8 doff;		/* TCP header length in bytes */
	__u8 pad[3];
	__u16 sport, dport;	/* host order */
	__u32 seq;		/* host order */
	__u32 ack;		/* host order */
	__u8 saddr[16];		/* IPv4 mapped; only after load_saddr() */
};

static __always_inline void map_v4(__u8 out[16], __be32 a)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &a, 4);
}

/* Ethernet plus up to two VLAN tags. Returns the inner ethertype (host order). */
static __always_inline int parse_eth(void *data, void *data_end, __u32 *off)
{
	struct ethhdr *eth = data;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return -1;
	proto = bpf_ntohs(eth->h_proto);
	*off = sizeof(*eth);
#pragma unroll
	for (int i = 0; i < MAX_VLANS; i++) {
		struct vlan_hdr *vh = data + *off;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if ((void *)(vh + 1) > data_end)
			return -1;
		proto = bpf_ntohs(vh->h_vlan_encapsulated_proto);
		*off += sizeof(*vh);
	}
	return proto;
}

static __always_inline int parse_ipv4(void *data, void *data_end, struct pkt *p)
{
	struct iphdr *ip = data + p->l3_off;
	__u32 vihl, hlen, tot, frag;

	if ((void *)(ip + 1) > data_end)
		return -1;
	vihl = *(__u8 *)ip;	/* version and ihl: one load, not a bitfield each */
	hlen = (vihl & 0xf) * 4;	/* options are skipped, never interpreted */
	tot = bpf_ntohs(ip->tot_len);
	if ((vihl >> 4) != 4 || hlen < sizeof(*ip) || tot < hlen)
		return -1;
	frag = bpf_ntohs(ip->frag_off);
	if (frag & IP_OFFSET)
		p->frag = FRAG_LATER;
	else if (frag & IP_MF)
		p->frag = FRAG_FIRST;
	p->family = 4;
	p->l4_off = p->l3_off + hlen;
	p->l4_len = tot - hlen;
	return ip->protocol;
}

/* IPv6 header and the usual extension headers (hop-by-hop, routing,
 * destination options, fragment, AH). ESP and unknown headers end the walk. */
static __always_inline int parse_ipv6(void *data, void *data_end, struct pkt *p)
{
	struct ipv6hdr *ip6 = data + p->l3_off;
	__u32 off, end;
	__u8 nh;

	if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
		return -1;
	p->family = 6;
	nh = ip6->nexthdr;
	off = p->l3_off + sizeof(*ip6);
	end = off + bpf_ntohs(ip6->payload_len);
#pragma unroll
	for (int i = 0; i < MAX_EXTHDRS; i++) {
		struct ipv6_opt_hdr *oh = data + off;

		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING &&
		    nh != IPPROTO_DSTOPTS && nh != IPPROTO_FRAGMENT &&
		    nh != IPPROTO_AH)
			break;
		if ((void *)(oh + 1) > data_end)
			return -1;
		if (nh == IPPROTO_FRAGMENT) {
			struct frag_hdr *fh = (void *)oh;

			if ((void *)(fh + 1) > data_end)
				return -1;
			if (bpf_ntohs(fh->frag_off) & ~7)
				p->frag = FRAG_LATER;
			else if (bpf_ntohs(fh->frag_off) & 1)
				p->frag = FRAG_FIRST;
			off += sizeof(*fh);
		} else if (nh == IPPROTO_AH) {
			off += (oh->hdrlen + 2) * 4;
		} else {
			off += (oh->hdrlen + 1) * 8;
		}
		nh = oh->nexthdr;
	}
	if (end < off)
		return -1;
	p->l4_off = off;
	p->l4_len = end - off;
	return nh;
}

/* Ethernet, VLAN tags and the IP header: the layer-4 protocol, or -1. */
static __always_inline int parse_ip(void *data, void *data_end, struct pkt *p)
{
	int proto = parse_eth(data, data_end, &p->l3_off);

	if (proto == ETH_P_IP)
		return parse_ipv4(data, data_end, p);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(data, data_end, p);
	return -1;
}

/*
 * The source address, copied only for packets that reach a list or bucket
 * lookup: most packets never need it. 0, or -1 if the header is not there.
 */
static __always_inline int load_saddr(void *data, void *data_end, struct pkt *p)
{
	/* l3_off is at most Ethernet + two VLAN tags: the mask says so. */
	void *l3 = data + (p->l3_off & 0x3f);

	if (p->family == 4) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		map_v4(p->saddr, ip->saddr);
	} else {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	}
	return 0;
}

/*
 * l4_off is at most Ethernet, two VLAN tags, 40 bytes of IPv6 and
 * MAX_EXTHDRS headers of at most 2048 bytes: under 0x7fff, so the mask
 * changes nothing. It keeps the verifier's bound on the offset plus a TCP
 * header under 64 KiB; with 0xffff it stops tracking the packet range, and
 * whether the check still verifies depended on how clang laid out the code.
 */
#define L4_OFF_MASK	0x7fff

/* TCP: the destination port, all that most packets need. 0, or -1 if the
 * header is not all there. */
static __always_inline int parse_tcp(void *data, void *data_end, struct pkt *p)
{
	struct tcphdr *tcp = data + (p->l4_off & L4_OFF_MASK);

	if ((void *)(tcp + 1) > data_end)
		return -1;
	p->dport = bpf_ntohs(tcp->dest);
	return 0;
}

/* The rest, for a packet to a protected port: source port, seq, flags. */
static __always_inline void parse_tcp_rest(void *data, void *data_end, struct pkt *p)
{
	struct tcphdr *tcp = data + (p->l4_off & L4_OFF_MASK);

	if ((void *)(tcp + 1) > data_end)
		return;		/* parse_tcp() said it is there */
	p->sport = bpf_ntohs(tcp->source);
	p->seq = bpf_ntohl(tcp->seq);
	p->ack = bpf_ntohl(tcp->ack_seq);
	p->tcp_flags = ((__u8 *)tcp)[13];
	p->doff = tcp->doff * 4;
}

/* The flow's key (action starttls) of a TCP packet whose source
 * load_saddr() and sport parse_tcp_rest() read; 0, or -1 if the IP
 * header is not all there. */
static __always_inline int flow_key(void *data, void *data_end, struct pkt *p,
				    struct ig_flow_key *k)
{
	void *l3 = data + (p->l3_off & 0x3f);	/* as in load_saddr() */

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

#endif
