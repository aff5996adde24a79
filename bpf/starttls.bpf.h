/* SPDX-License-Identifier: GPL-2.0 */
/*
 * action starttls: a bounded IMAP verb scanner per flow. Client commands on
 * the port are read until the client's STARTTLS is followed by a TLS record;
 * until then only CAPABILITY, NOOP, LOGOUT, ID and STARTTLS may pass. Any
 * other verb (LOGIN, AUTHENTICATE, ...) and anything the scanner cannot read
 * safely refuses the flow: the packet that carries it never reaches the
 * server (it is rewritten into a RST to the server), and every later client
 * packet is answered with a RST. Included by imapguard.bpf.c after its
 * struct ctx_info, count() and throttle().
 *
 * Only client-to-server packets are seen (ingress): the scanner never knows
 * the server's answers. It can afford that because the five allowed commands
 * need none, except ID's literals, whose lengths are in the client's bytes.
 */
#ifndef IMAPGUARD_STARTTLS_BPF_H
#define IMAPGUARD_STARTTLS_BPF_H

#define ST_CHUNK	64	/* bytes copied out of the packet at a time */

/* Client 4-tuple -> scanner state of the flow (common.h struct ig_flow). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);	/* [limits] max_flows */
	__type(key, struct ig_flow_key);
	__type(value, struct ig_flow);
} ig_flows SEC(".maps");

/* ig_flow.phase: where in a command line the next byte falls. */
enum st_phase {
	P_LINE = 0,	/* start of a line: a tag, or blank */
	P_TAG,		/* in the tag */
	P_VERB,		/* in the verb, a prefix of an allowed one so far */
	P_VERB_REST,	/* a refused verb: its rest read for the report only */
	P_ARGS,		/* ID arguments, outside quotes */
	P_QUOTED,	/* in a quoted string */
	P_QESC,		/* after a backslash in a quoted string */
	P_LITNUM,	/* after '{': the literal's length */
	P_LITPLUS,	/* after '{N+': '}' */
	P_LITCR,	/* after '}': CRLF */
	P_LITLF,	/* after '}' CR: LF */
	P_LITERAL,	/* literal bytes, skipped */
	P_EOL,		/* after CR: LF */
	P_TLS0,		/* the line after STARTTLS: 0x16 starts TLS, else a command */
	P_TLS1,		/* after 0x16: 0x03 */
};

/* What a scan ends with. */
enum st_out { ST_MORE = 0, ST_TLS, ST_REFUSE };

/* The allowed verbs; bit k of ig_flow.cand stands for st_verb[k]. */
#define ST_NVERBS	5
#define ST_ID		3
#define ST_STARTTLS	4
#define ST_ALL		((1 << ST_NVERBS) - 1)
static const char st_verb[ST_NVERBS][IG_VERB_LEN] = {
	"CAPABILITY", "NOOP", "LOGOUT", "ID", "STARTTLS",
};
static const __u8 st_vlen[ST_NVERBS] = { 10, 4, 6, 2, 8 };

/*
 * Scratch for one scan: a chunk of packet bytes and the outcome. It is a
 * per-CPU map value, not stack, on purpose: the verifier checks a bpf_loop
 * callback again for every state it can enter with, and tracks constants
 * on the stack exactly, so a scan state kept there (phase, verb length...)
 * never converges. Map values are unknown to it: one pass suffices. The
 * flow state is worked on in its map value for the same reason.
 */
struct st_buf {
	__u8 b[ST_CHUNK];
	__u32 out;		/* enum st_out */
};

/* Key 0 -> this CPU's scan scratch. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct st_buf);
} ig_st_buf SEC(".maps");

/* bpf_loop's ctx: pointers only, the same at every iteration. */
struct st_scan {
	void *ctx;		/* struct xdp_md or __sk_buff */
	struct ig_flow *f;
	struct st_buf *buf;
	__u32 off, len;		/* the bytes to scan: offset from the frame's start */
};

/* RFC 9051 tag: ASTRING-CHAR but '+'. Printable ASCII less the specials. */
static __always_inline bool tag_char(__u8 c)
{
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '%' &&
	       c != '*' && c != '"' && c != '\\' && c != '+';
}

static __always_inline int refuse(struct ig_flow *f, __u8 cause)
{
	f->cause = cause;
	return ST_REFUSE;
}

static __always_inline int line_end(struct ig_flow *f)
{
	/* After STARTTLS the next client byte may start the TLS handshake. */
	f->phase = (f->flags & IG_FL_STLS) ? P_TLS0 : P_LINE;
	f->flags &= ~IG_FL_STLS;
	return ST_MORE;
}

/* SP, CR or LF after a verb: is it one of the five, with what it needs? */
static __always_inline int verb_end(struct ig_flow *f, __u8 c)
{
	__u8 exact = 0;

#pragma unroll
	for (int k = 0; k < ST_NVERBS; k++)
		if (f->vlen == st_vlen[k])
			exact |= 1 << k;
	exact &= f->cand;
	if (!f->vlen)
		return refuse(f, IG_SC_SYNTAX);
	if (!exact)
		return refuse(f, IG_SC_VERB);	/* e.g. "LOG": a prefix only */
	if (exact & (1 << ST_ID)) {
		if (c == ' ')
			f->phase = P_ARGS;
		else if (c == '\r')
			f->phase = P_EOL;
		else
			return line_end(f);
		return ST_MORE;
	}
	/* The other four take no arguments: anything after them is a line
	 * the server may read otherwise than we do. */
	if (c == ' ')
		return refuse(f, IG_SC_SYNTAX);
	if (exact & (1 << ST_STARTTLS))
		f->flags |= IG_FL_STLS;
	if (c == '\r') {
		f->phase = P_EOL;
		return ST_MORE;
	}
	return line_end(f);
}

/*
 * One verb byte. The candidates narrow with each letter; the byte that
 * leaves none refuses the packet carrying it, so a verb split over
 * segments ("a LOG" + "IN ...") is refused with its second half, before
 * any argument. The rest of the verb is still read, for the report.
 */
static __always_inline int verb_byte(struct ig_flow *f, __u8 c)
{
	__u32 pos = f->vlen;

	if (c >= 'a' && c <= 'z')
		c -= 'a' - 'A';
	if (c == ' ' || c == '\r' || c == '\n')
		return verb_end(f, c);
	if (!tag_char(c) && c != '+')
		return refuse(f, IG_SC_SYNTAX);
	if (pos < IG_VERB_LEN) {
		f->verb[pos] = c;
#pragma unroll
		for (int k = 0; k < ST_NVERBS; k++)
			if (pos >= st_vlen[k] || st_verb[k][pos] != c)
				f->cand &= ~(1 << k);
	} else {
		f->cand = 0;
	}
	f->vlen = pos + 1;
	if (!f->cand)
		f->phase = P_VERB_REST;
	return ST_MORE;
}

/* A refused verb goes on: kept for the report, up to IG_VERB_LEN bytes. */
static __always_inline int verb_rest(struct ig_flow *f, __u8 c)
{
	__u32 pos = f->vlen;

	if (c >= 'a' && c <= 'z')
		c -= 'a' - 'A';
	if (pos < IG_VERB_LEN && (c == '+' || tag_char(c))) {
		f->verb[pos] = c;
		f->vlen = pos + 1;
		return ST_MORE;
	}
	return refuse(f, IG_SC_VERB);
}

/* ID's arguments: quoted strings and literals, whose bytes are skipped. */
static __always_inline int args_byte(struct ig_flow *f, __u8 c)
{
	switch (f->phase) {
	case P_ARGS:
		if (c == '"')
			f->phase = P_QUOTED;
		else if (c == '{') {
			f->phase = P_LITNUM;
			f->lit = 0;
			f->cand = 0;	/* digits seen */
		} else if (c == '\r')
			f->phase = P_EOL;
		else if (c == '\n')
			return line_end(f);
		else if (!c)
			return refuse(f, IG_SC_SYNTAX);
		return ST_MORE;
	case P_QUOTED:
		if (c == '\\')
			f->phase = P_QESC;
		else if (c == '"')
			f->phase = P_ARGS;
		else if (c == '\r' || c == '\n' || !c)
			return refuse(f, IG_SC_SYNTAX);
		return ST_MORE;
	case P_QESC:
		if (c == '\r' || c == '\n' || !c)
			return refuse(f, IG_SC_SYNTAX);
		f->phase = P_QUOTED;
		return ST_MORE;
	default:
		return refuse(f, IG_SC_SYNTAX);
	}
}

/* {N} or {N+} then CRLF: N bytes follow that are data, not commands. */
static __always_inline int literal_byte(struct ig_flow *f, __u8 c)
{
	switch (f->phase) {
	case P_LITNUM:
		if (c >= '0' && c <= '9') {
			f->lit = f->lit * 10 + (c - '0');
			f->cand = 1;
			return f->lit > IG_ST_LIT_MAX ? refuse(f, IG_SC_LITERAL) : ST_MORE;
		}
		if (!f->cand || (c != '+' && c != '}'))
			return refuse(f, IG_SC_SYNTAX);
		f->phase = c == '+' ? P_LITPLUS : P_LITCR;
		return ST_MORE;
	case P_LITPLUS:
		if (c != '}')
			return refuse(f, IG_SC_SYNTAX);
		f->phase = P_LITCR;
		return ST_MORE;
	case P_LITCR:
	case P_LITLF:
		if (c == '\r' && f->phase == P_LITCR) {
			f->phase = P_LITLF;
			return ST_MORE;
		}
		if (c != '\n')
			return refuse(f, IG_SC_SYNTAX);
		f->phase = f->lit ? P_LITERAL : P_ARGS;
		return ST_MORE;
	default:		/* P_LITERAL */
		if (--f->lit == 0)
			f->phase = P_ARGS;
		return ST_MORE;
	}
}

/* Advance the state by one client byte. */
static __always_inline int st_step(struct ig_flow *f, __u8 c)
{
	switch (f->phase) {
	case P_TLS1:
		if (c != 0x03)
			return refuse(f, IG_SC_SYNTAX);
		f->flags |= IG_FL_TLS;
		return ST_TLS;
	case P_TLS0:
		if (c == 0x16) {
			f->phase = P_TLS1;
			return ST_MORE;
		}
		/* STARTTLS refused by the server: commands go on in plaintext. */
		f->phase = P_LINE;
		/* fall through */
	case P_LINE:
		if (c == '\r' || c == '\n')
			return ST_MORE;
		if (!tag_char(c))
			return refuse(f, IG_SC_SYNTAX);
		f->phase = P_TAG;
		return ST_MORE;
	case P_TAG:
		if (c == ' ') {
			f->phase = P_VERB;
			f->vlen = 0;
			f->cand = ST_ALL;
			__builtin_memset(f->verb, 0, sizeof(f->verb));
			return ST_MORE;
		}
		return tag_char(c) ? ST_MORE : refuse(f, IG_SC_SYNTAX);
	case P_VERB:
		return verb_byte(f, c);
	case P_VERB_REST:
		return verb_rest(f, c);
	case P_EOL:
		return c == '\n' ? line_end(f) : refuse(f, IG_SC_SYNTAX);
	case P_ARGS:
	case P_QUOTED:
	case P_QESC:
		return args_byte(f, c);
	default:
		return literal_byte(f, c);
	}
}

/*
 * bpf_loop callback: byte i of the scan, copying a chunk out of the packet
 * when i starts one. Returns 1 to stop. One copy for each hook: the helper
 * that copies differs, and the verifier must never see the other one.
 */
static __always_inline long st_byte(__u32 i, struct st_scan *s, bool xdp)
{
	struct st_buf *b = s->buf;
	__u32 n;

	if (!(i & (ST_CHUNK - 1))) {
		n = s->len - i;
		if (n > ST_CHUNK)
			n = ST_CHUNK;
		if (n == 0 || (xdp ? bpf_xdp_load_bytes(s->ctx, s->off + i, b->b, n) :
				     bpf_skb_load_bytes(s->ctx, s->off + i, b->b, n))) {
			b->out = refuse(s->f, IG_SC_SYNTAX);
			return 1;
		}
	}
	b->out = st_step(s->f, b->b[i & (ST_CHUNK - 1)]);
	return b->out != ST_MORE;
}

static long st_byte_xdp(__u32 i, void *s)
{
	return st_byte(i, s, true);
}

static long st_byte_tc(__u32 i, void *s)
{
	return st_byte(i, s, false);
}

/* Scan len bytes at off (from the frame's start) into f, in one bpf_loop:
 * the verifier checks the byte step once, not once per byte. */
static __always_inline int st_scan(void *ctx, bool xdp, struct ig_flow *f, __u32 off, __u32 len)
{
	struct st_scan s = { .ctx = ctx, .f = f, .off = off, .len = len };
	__u32 zero = 0;

	s.buf = bpf_map_lookup_elem(&ig_st_buf, &zero);
	if (!s.buf)
		return refuse(f, IG_SC_SYNTAX);
	s.buf->out = ST_MORE;
	bpf_loop(len < IG_ST_SCAN_MAX ? len : IG_ST_SCAN_MAX,
		 xdp ? st_byte_xdp : st_byte_tc, &s, 0);
	if (s.buf->out != ST_MORE)
		return s.buf->out;
	if (len > IG_ST_SCAN_MAX)
		return refuse(f, IG_SC_LONG);
	if (f->phase == P_VERB_REST)
		return refuse(f, IG_SC_VERB);	/* the packet ends inside it */
	return ST_MORE;
}

/*
 * A flow refused: in enforce mode this packet becomes a RST to the server,
 * at the sequence number the server expects (seq), and every later client
 * packet gets a RST (IG_FL_RESET); in log mode it is reported once and the
 * flow is left alone from then on.
 */
static __always_inline int st_refuse(struct vout *o, struct pkt *p, struct ig_flow *f,
				     __u32 seq, __u8 cause)
{
	o->cause = cause;
	if (f) {
		f->cause = cause;
		__builtin_memcpy(o->verb, f->verb, IG_VERB_LEN);
		f->flags |= o->mode == IG_ST_LOG ? IG_FL_LOGGED : IG_FL_RESET;
	}
	if (o->mode == IG_ST_LOG)
		return IG_R_STARTTLS_LOGGED;
	o->rst_seq = seq;
	o->rst_ack = p->ack;
	o->rst_flags = TCP_RST | TCP_ACK;
	if (cause == IG_SC_NOFLOW)
		return IG_R_STARTTLS_NOFLOW;
	return cause == IG_SC_VERB ? IG_R_STARTTLS_PLAIN : IG_R_STARTTLS_UNPARSABLE;
}

/* A packet of a flow already refused: RST to the client (RFC 9293 3.10.7.1). */
static __always_inline int st_reset(struct vout *o, struct pkt *p, __u32 plen)
{
	if (p->tcp_flags & TCP_ACK) {
		o->rst_seq = p->ack;
		o->rst_ack = 0;
		o->rst_flags = TCP_RST;
	} else {
		o->rst_seq = 0;
		o->rst_ack = p->seq + plen + (p->tcp_flags & TCP_FIN ? 1 : 0);
		o->rst_flags = TCP_RST | TCP_ACK;
	}
	return IG_R_STARTTLS_RESET;
}

/* A flow with no state and payload: refused as noflow, remembered as such. */
static __always_inline int st_noflow(struct vout *o, struct pkt *p, struct ig_flow_key *k,
				     __u8 cause)
{
	struct ig_flow init = { .next_seq = p->seq, .cause = cause,
				.flags = o->mode == IG_ST_LOG ? IG_FL_LOGGED : IG_FL_RESET };

	bpf_map_update_elem(&ig_flows, k, &init, BPF_ANY);
	return st_refuse(o, p, NULL, p->seq, cause);
}

/* Client payload of a flow being inspected. */
static __always_inline int st_data(void *ctx, bool xdp, struct vout *o, struct pkt *p,
				   struct ig_flow *f, __u32 plen)
{
	__u32 seq = f->next_seq, delta = seq - p->seq;
	int out;

	if (p->frag != FRAG_NONE)
		return st_refuse(o, p, f, seq, IG_SC_FRAG);
	if ((__s32)delta < 0)
		return st_refuse(o, p, f, seq, IG_SC_ORDER);
	if (delta >= plen)
		return IG_R_PASS;	/* a retransmission of bytes already passed */
	out = st_scan(ctx, xdp, f, p->l4_off + p->doff + delta, plen - delta);
	f->next_seq = p->seq + plen;
	if (out == ST_REFUSE)
		return st_refuse(o, p, f, seq, f->cause);
	return IG_R_PASS;
}

/* One packet of action starttls (o->open: a SYN within budget, whose flow
 * is made). The reason comes back; the RST and the event go in *o. */
static __always_inline int st_packet(void *ctx, bool xdp, void *data, void *data_end,
				     struct pkt *p, struct vout *o)
{
	__u32 plen = p->l4_len > p->doff ? p->l4_len - p->doff : 0;
	struct ig_flow_key k = {};
	struct ig_flow *f;
	int reason = IG_R_PASS;

	if (flow_key(data, data_end, p, &k))
		return IG_R_PASS;	/* parse_ip() saw this header: cannot happen */
	if (o->open) {		/* a SYN within its budget: state from the next byte */
		struct ig_flow init = { .next_seq = p->seq + 1 };

		bpf_map_update_elem(&ig_flows, &k, &init, BPF_ANY);
		return IG_R_PASS;
	}
	/* Any other SYN here carries data (Fast Open) or is a fragment: bytes that
	 * would never be scanned. */
	if ((p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN)
		return st_noflow(o, p, &k, IG_SC_FRAG);
	f = bpf_map_lookup_elem(&ig_flows, &k);
	if (p->tcp_flags & TCP_RST) {
		if (f)
			bpf_map_delete_elem(&ig_flows, &k);
		return IG_R_PASS;
	}
	if (!f)
		return plen ? st_noflow(o, p, &k, IG_SC_NOFLOW) : IG_R_PASS;
	if (f->flags & IG_FL_RESET)
		return st_reset(o, p, plen);
	if (plen && !(f->flags & (IG_FL_TLS | IG_FL_LOGGED)))
		reason = st_data(ctx, xdp, o, p, f, plen);
	if ((p->tcp_flags & TCP_FIN) && !(f->flags & IG_FL_RESET))
		bpf_map_delete_elem(&ig_flows, &k);
	return reason;
}

/*
 * st_packet() as a global function, one per hook: the verifier checks it
 * once, on its own, instead of once for every state a packet can reach it
 * in (VLAN tags, address family, options...), which multiplied with the
 * scanner's exits and the RST building after them took the programs from
 * 71k to 391k instructions checked (now about 110k). p and o are the
 * caller's copies, scalars only (the verifier checks them as memory of
 * their size, which may be NULL).
 */
__noinline int ig_st_xdp(struct xdp_md *ctx, struct pkt *p, struct vout *o)
{
	if (!p || !o)
		return IG_R_PASS;
	return st_packet(ctx, true, (void *)(long)ctx->data, (void *)(long)ctx->data_end, p, o);
}

__noinline int ig_st_tc(struct __sk_buff *skb, struct pkt *p, struct vout *o)
{
	if (!p || !o)
		return IG_R_PASS;
	return st_packet(skb, false, (void *)(long)skb->data, (void *)(long)skb->data_end, p, o);
}

/* A SYN that opens a flow: no data (Fast Open) and no fragment, whose bytes
 * would never be scanned; those go to st_packet(), which refuses them. */
static __always_inline bool st_opens(struct pkt *p, bool syn)
{
	return syn && p->l4_len <= p->doff && p->frag == FRAG_NONE;
}

/*
 * Port action starttls, every packet but a SYN that opens a flow (open
 * false), and that SYN once within its budget (open true): the hook's
 * global function.
 */
static __always_inline __u32 starttls(struct pkt *p, struct ig_port_cfg *pc, struct ctx_info *ci,
				      bool open)
{
	/* Copies: p and ci must not escape to a call, or the compiler keeps
	 * them in memory only, and the verifier loses the offsets and the
	 * constant ci->xdp they hold. */
	struct vout o = { .mode = pc->starttls_mode, .open = open };
	struct pkt q = *p;
	__u32 reason;

	reason = ci->xdp ? ig_st_xdp(ci->ctx, &q, &o) : ig_st_tc(ci->ctx, &q, &o);
	if (open)
		return IG_R_PASS;	/* the flow is made; the SYN's verdict stands */
	ci->out = o;
	return reason;
}

#endif
