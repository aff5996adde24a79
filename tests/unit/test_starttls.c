// SPDX-License-Identifier: GPL-2.0
/*
 * action starttls: the BPF verb scanner through bpf_prog_test_run_opts. A
 * table of client byte streams, cut into segments, each segment's verdict
 * expected, run on both hooks over IPv4, IPv6 and VLAN-tagged frames; then a
 * differential test: random command streams, randomly cut, through the BPF
 * scanner and through ref_scan() below, a plain recursive reading of the
 * same grammar over the whole stream, which must agree segment by segment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "fastpath/lists.h"	/* common.h first: the skeleton embeds struct ig_cfg */
#include "imapguard.skel.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT	7
#define MAXPKT		4096
#define PORT_ENF	143
#define PORT_LOG	144
#define MAXSEG		16

enum { HOOK_XDP, HOOK_TC };
static const char *hook_name[] = { "xdp", "tc" };
static struct imapguard_bpf *skel;
static struct ig_maps maps;
static int flows_fd;

/* What became of one segment. */
enum out {
	O_PASS = 'P',	/* unchanged, on to the server */
	O_FWD = 'F',	/* turned into a RST to the server */
	O_BACK = 'B',	/* answered with a RST to the client */
	O_DROP = 'D',
	O_ERR = 'E',
};

/* ---- frames ------------------------------------------------------------ */

struct conn {
	int family, vlans;
	int ipopts, tcpopts;	/* option bytes (NOPs): IPv4 header, TCP header */
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint32_t seq, ack;	/* next client seq, and the ack it carries */
};

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* Ethernet, VLAN tags, IP and TCP headers, then data: the frame's length. */
static size_t frame(const struct conn *c, uint8_t flags, uint32_t seq, const void *data,
		    size_t len, uint8_t *b, size_t *l4off)
{
	size_t off = 12, l3, hl = 20 + c->ipopts, th = 20 + c->tcpopts;

	memset(b, 0, 64);
	memcpy(b, "\x02\0\0\0\0\x0b", 6);
	memcpy(b + 6, "\x02\0\0\0\0\x0a", 6);
	for (int i = 0; i < c->vlans; i++, off += 4) {
		put16(b + off, i == 0 && c->vlans == 2 ? 0x88a8 : 0x8100);
		put16(b + off + 2, 100 + i);
	}
	put16(b + off, c->family == 4 ? 0x0800 : 0x86dd);
	l3 = off + 2;
	if (c->family == 4) {
		memset(b + l3, 0, hl);
		b[l3] = 0x40 | hl / 4;
		put16(b + l3 + 2, hl + th + len);
		put16(b + l3 + 6, 0x4000);
		b[l3 + 8] = 64;
		b[l3 + 9] = 6;
		memcpy(b + l3 + 12, c->src + 12, 4);
		memcpy(b + l3 + 16, c->dst + 12, 4);
		memset(b + l3 + 20, 1, c->ipopts);
		off = l3 + hl;
	} else {
		memset(b + l3, 0, 40);
		b[l3] = 0x60;
		put16(b + l3 + 4, th + len);
		b[l3 + 6] = 6;
		b[l3 + 7] = 64;
		memcpy(b + l3 + 8, c->src, 16);
		memcpy(b + l3 + 24, c->dst, 16);
		off = l3 + 40;
	}
	memset(b + off, 0, 20);
	memset(b + off + 20, 1, c->tcpopts);
	put16(b + off, c->sport);
	put16(b + off + 2, c->dport);
	put32(b + off + 4, seq);
	put32(b + off + 8, flags & 0x10 ? c->ack : 0);
	b[off + 12] = th / 4 << 4;
	b[off + 13] = flags;
	put16(b + off + 14, 64240);
	*l4off = off;
	if (len)
		memcpy(b + off + th, data, len);
	return off + th + len;
}

static int run(int hook, uint8_t *pkt, size_t len, uint8_t *out, uint32_t *out_len)
{
	int fd = bpf_program__fd(hook == HOOK_XDP ? skel->progs.ig_xdp : skel->progs.ig_tc);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = len,
		    .data_out = out, .data_size_out = MAXPKT, .repeat = 1);
	int err = bpf_prog_test_run_opts(fd, &opts);

	*out_len = opts.data_size_out;
	return err ? -1000 + err : (int)opts.retval;
}

/* The last RST seen, for the cases that check its fields. */
static struct { uint32_t seq, ack; uint8_t flags; bool swapped; } last_rst;

static void parse_rst(const uint8_t *out, uint32_t out_len, const struct conn *c)
{
	/* A RST has no options: its TCP header follows a bare IP header. */
	size_t l3 = 14 + 4 * c->vlans, l4off = l3 + (c->family == 4 ? 20 : 40);

	memset(&last_rst, 0, sizeof(last_rst));
	if (out_len < l4off + 20)
		return;

	last_rst.seq = get32(out + l4off + 4);
	last_rst.ack = get32(out + l4off + 8);
	last_rst.flags = out[l4off + 13];
	last_rst.swapped = !memcmp(out, "\x02\0\0\0\0\x0a", 6) &&
			   !memcmp(out + (c->family == 4 ? l3 + 12 : l3 + 8),
				   c->family == 4 ? c->dst + 12 : c->dst, c->family == 4 ? 4 : 16);
}

/* Send one segment; what the hook made of it. */
static enum out send_seg(int hook, struct conn *c, uint8_t flags, uint32_t seq,
			 const void *data, size_t len)
{
	static uint8_t pkt[MAXPKT], out[MAXPKT];
	size_t l4off, n = frame(c, flags, seq, data, len, pkt, &l4off);
	uint32_t out_len;
	int ret = run(hook, pkt, n, out, &out_len);
	bool same = out_len == n && !memcmp(pkt, out, n);

	if (ret < 0)
		return O_ERR;
	if (!same)
		parse_rst(out, out_len, c);
	if (hook == HOOK_XDP) {
		if (ret == XDP_PASS)
			return same ? O_PASS : O_FWD;
		return ret == XDP_TX ? O_BACK : ret == XDP_DROP ? O_DROP : O_ERR;
	}
	if (ret == TC_ACT_OK)
		return same ? O_PASS : O_FWD;
	return ret == TC_ACT_REDIRECT ? O_BACK : ret == TC_ACT_SHOT ? O_DROP : O_ERR;
}

static int conn_no;
static bool cur_opts;	/* new connections carry IP and TCP options */

/* A new connection from a source no other one used (events are sampled per
 * source), and its SYN. */
static enum out conn_open(int hook, struct conn *c, int family, int vlans, uint16_t dport)
{
	int n = ++conn_no;

	memset(c, 0, sizeof(*c));
	c->family = family;
	c->ipopts = cur_opts && family == 4 ? 8 : 0;
	c->tcpopts = cur_opts ? 12 : 0;	/* as timestamps on every segment */
	c->vlans = vlans;
	c->dport = dport;
	c->sport = 20000 + n % 40000;
	if (family == 4) {
		memcpy(c->src, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
		memcpy(c->dst, c->src, 12);
		c->src[12] = 198, c->src[13] = 18 + (n >> 16 & 1), c->src[14] = n >> 8, c->src[15] = n;
		c->dst[12] = 198, c->dst[13] = 19, c->dst[14] = 0, c->dst[15] = 1;
	} else {
		inet_pton(AF_INET6, "2001:db8::", c->src);
		inet_pton(AF_INET6, "2001:db8:ffff::1", c->dst);
		c->src[12] = n >> 24, c->src[13] = n >> 16, c->src[14] = n >> 8, c->src[15] = n;
	}
	c->seq = 1000000 + n * 7919;
	c->ack = 5000000 + n;
	return send_seg(hook, c, 0x02, c->seq++, NULL, 0);
}

/* Data, ACK set; seq_delta moves it off the next sequence number. */
static enum out conn_send(int hook, struct conn *c, const void *d, size_t len, int seq_delta,
			  uint8_t extra_flags)
{
	uint32_t seq = c->seq + seq_delta;
	enum out o = send_seg(hook, c, 0x10 | 0x08 | extra_flags, seq, d, len);

	if ((int32_t)(seq + len - c->seq) > 0)
		c->seq = seq + len;
	return o;
}

static int flow_get(const struct conn *c, struct ig_flow *f)
{
	struct ig_flow_key k = { .sport = c->sport, .dport = c->dport };

	memcpy(k.saddr, c->src, 16);
	memcpy(k.daddr, c->dst, 16);
	if (c->family == 4) {
		memset(k.saddr, 0, 10), k.saddr[10] = k.saddr[11] = 0xff;
		memset(k.daddr, 0, 10), k.daddr[10] = k.daddr[11] = 0xff;
	}
	return bpf_map_lookup_elem(flows_fd, &k, f) ? -errno : 0;
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

/* ---- table ------------------------------------------------------------- */

struct seg {
	const char *d;
	int len;
	int seq_delta;
	char exp;		/* enum out */
	uint8_t flags;		/* besides ACK|PSH: FIN, RST */
};

struct stcase {
	const char *name;
	uint16_t port;		/* PORT_ENF (0) or PORT_LOG */
	int reason;		/* counter that grows by one; 0 = none of the scanner's */
	const char *verb;	/* the flow's verb after the last segment, or NULL */
	int cause;		/* the flow's cause after it, or -1 */
	bool no_syn;		/* data on a flow never opened */
	struct seg s[MAXSEG];
};

#define S(str, e) { str, sizeof(str) - 1, 0, e, 0 }
#define SD(str, d, e) { str, sizeof(str) - 1, d, e, 0 }
#define SF(str, f, e) { str, sizeof(str) - 1, 0, e, f }
#define FIN 0x01
#define RST 0x04
#define TLS_HELLO "\x16\x03\x01\x01\xfc\x01\x01\x01\xf8\x03\x03"

static char long_tag[2000], tag60[100], tag61[100], at_max[IG_ST_SCAN_MAX + 1],
	    over_max[IG_ST_SCAN_MAX + 2], verb_at_max[IG_ST_SCAN_MAX + 8], tls_big[IG_ST_SCAN_MAX + 100];

static const struct stcase cases[] = {
	{ "capability", 0, 0, NULL, -1, false, { S("a CAPABILITY\r\n", 'P') } },
	{ "noop logout id starttls", 0, 0, NULL, -1, false,
	  { S("1 NOOP\r\n", 'P'), S("2 ID NIL\r\n", 'P'), S("3 LOGOUT\r\n", 'P'),
	    S("4 STARTTLS\r\n", 'P') } },
	{ "lower and mixed case", 0, 0, NULL, -1, false,
	  { S("a capability\r\nb NoOp\r\nc id (\"name\" \"x\")\r\nd sTaRtTlS\r\n", 'P') } },
	{ "bare LF and blank lines", 0, 0, NULL, -1, false,
	  { S("\r\n\na NOOP\nb CAPABILITY\n", 'P') } },
	{ "login refused", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { S("a LOGIN user secret\r\n", 'F'), S("a LOGIN user secret\r\n", 'B'), S("", 'B') } },
	{ "login lower case", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { S("x1 login user secret\r\n", 'F') } },
	{ "authenticate plain", 0, IG_R_STARTTLS_PLAIN, "AUTHENTICATE", IG_SC_VERB, false,
	  { S("a AUTHENTICATE PLAIN\r\n", 'F') } },
	{ "authenticate initial response", 0, IG_R_STARTTLS_PLAIN, "AUTHENTICATE", IG_SC_VERB,
	  false, { S("a authenticate PLAIN AHVzZXIAc2VjcmV0\r\n", 'F') } },
	{ "other command", 0, IG_R_STARTTLS_PLAIN, "SELECT", IG_SC_VERB, false,
	  { S("a NOOP\r\n", 'P'), S("b SELECT INBOX\r\n", 'F') } },
	{ "prefix of an allowed verb", 0, IG_R_STARTTLS_PLAIN, "LOG", IG_SC_VERB, false,
	  { S("a LOG\r\n", 'F') } },
	{ "allowed verb and more", 0, IG_R_STARTTLS_PLAIN, "STARTTLSX", IG_SC_VERB, false,
	  { S("a STARTTLSX\r\n", 'F') } },
	{ "verb with digits", 0, IG_R_STARTTLS_PLAIN, "X1", IG_SC_VERB, false,
	  { S("a X1 y\r\n", 'F') } },
	{ "split verb: LOG|IN", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { S("a LOG", 'P'), S("IN user secret\r\n", 'F') } },
	{ "split verb: LOGI|N", 0, IG_R_STARTTLS_PLAIN, "LOGI", IG_SC_VERB, false,
	  { S("a LOGI", 'F'), S("N user secret\r\n", 'B') } },
	{ "split tag and verb", 0, IG_R_STARTTLS_PLAIN, "AUTH", IG_SC_VERB, false,
	  { S("a", 'P'), S("bc", 'P'), S(" ", 'P'), S("S", 'P'), S("TARTTLS", 'P'), S("\r\n", 'P'),
	    S("x AUTH", 'F'), S("ENTICATE PLAIN\r\n", 'B') } },
	{ "split allowed verbs", 0, 0, NULL, -1, false,
	  { S("a CAPA", 'P'), S("BILITY", 'P'), S("\r", 'P'), S("\nb NO", 'P'), S("OP\r\n", 'P') } },
	{ "pipelined, login last", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { S("a CAPABILITY\r\nb NOOP\r\nc ID NIL\r\nd LOGIN u p\r\n", 'F') } },
	{ "starttls then tls", 0, 0, NULL, -1, false,
	  { S("a STARTTLS\r\n", 'P'), S(TLS_HELLO, 'P'), S("a LOGIN user secret\r\n", 'P') } },
	{ "tls record split after 0x16", 0, 0, NULL, -1, false,
	  { S("a STARTTLS\r\n\x16", 'P'), S("\x03\x01 anything", 'P'), S("b LOGIN u p\r\n", 'P') } },
	{ "starttls refused, then login", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { S("a STARTTLS\r\n", 'P'), S("b LOGIN user secret\r\n", 'F') } },
	{ "starttls then commands", 0, 0, NULL, -1, false,
	  { S("a STARTTLS\r\n", 'P'), S("b CAPABILITY\r\n", 'P'), S("c STARTTLS\r\n", 'P'),
	    S(TLS_HELLO, 'P') } },
	{ "login pipelined after starttls", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { S("a STARTTLS\r\nb LOGIN user secret\r\n", 'F') } },
	{ "bad tls record", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false,
	  { S("a STARTTLS\r\n", 'P'), S("\x16\x04", 'F') } },
	{ "tag with ] and dots", 0, 0, NULL, -1, false, { S("A0.1]x:y NOOP\r\n", 'P') } },
	{ "tag with +", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false,
	  { S("a+b NOOP\r\n", 'F') } },
	{ "tag *", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false, { S("* NOOP\r\n", 'F') } },
	{ "tag with 8-bit byte", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false,
	  { S("a\xc3\xa9 NOOP\r\n", 'F') } },
	{ "two spaces", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false,
	  { S("a  LOGIN u p\r\n", 'F') } },
	{ "no tag", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false,
	  { S(" LOGIN u p\r\n", 'F') } },
	{ "noop with an argument", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false,
	  { S("a NOOP x\r\n", 'F') } },
	{ "CR without LF", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false,
	  { S("a NOOP\rb LOGIN\r\n", 'F') } },
	{ "id literal", 0, 0, NULL, -1, false,
	  { S("a ID (\"name\" {5}\r\nhello)\r\nb NOOP\r\n", 'P') } },
	{ "id non-synchronising literal", 0, 0, NULL, -1, false,
	  { S("a ID (\"name\" {5+}\r\nhello \"v\" NIL)\r\n", 'P') } },
	{ "login inside a literal", 0, 0, NULL, -1, false,
	  { S("a ID (\"x\" {16}\r\nb LOGIN u p\r\nxx)\r\n", 'P'), S("c NOOP\r\n", 'P') } },
	{ "literal over segments", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { S("a ID (\"x\" {2", 'P'), S("0}\r", 'P'), S("\n0123456789", 'P'),
	    S("0123456789 \"y\")\r\n", 'P'), S("b LOGIN u p\r\n", 'F') } },
	{ "empty literal", 0, 0, NULL, -1, false, { S("a ID (\"x\" {0}\r\n)\r\n", 'P') } },
	{ "literal too long", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_LITERAL, false,
	  { S("a ID (\"x\" {1025}\r\n", 'F') } },
	{ "literal without digits", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false,
	  { S("a ID (\"x\" {+}\r\n", 'F') } },
	{ "braces inside quotes", 0, 0, NULL, -1, false,
	  { S("a ID (\"{5}\" \"a\\\"b\\\\\")\r\nb NOOP\r\n", 'P') } },
	{ "quoted string across a line end", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_SYNTAX, false,
	  { S("a ID (\"{16}\r\nb LOGIN u p\r\n", 'F') } },
	{ "retransmission", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { S("a NOOP\r\n", 'P'), SD("a NOOP\r\n", -8, 'P'), S("b LOGIN u p\r\n", 'F') } },
	{ "retransmission, other bytes", 0, 0, NULL, -1, false,
	  { S("a NOOP\r\n", 'P'), SD("LOGIN u\r\n", -9, 'P'), S("b NOOP\r\n", 'P') } },
	{ "overlap with new bytes", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { S("a NOOP\r\n", 'P'), SD("a NOOP\r\nb LOGIN u p\r\n", -8, 'F') } },
	{ "out of order", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_ORDER, false,
	  { S("a NOOP\r\n", 'P'), SD("b NOOP\r\n", 10, 'F'), SD("c NOOP\r\n", -18, 'B') } },
	{ "no flow", 0, IG_R_STARTTLS_NOFLOW, NULL, IG_SC_NOFLOW, true,
	  { S("a NOOP\r\n", 'F'), S("b NOOP\r\n", 'B') } },
	{ "no flow, pure ack", 0, 0, NULL, -1, true, { S("", 'P') } },
	{ "fin ends the flow", 0, IG_R_STARTTLS_NOFLOW, NULL, IG_SC_NOFLOW, false,
	  { SF("a LOGOUT\r\n", FIN, 'P'), S("b NOOP\r\n", 'F') } },
	{ "rst ends the flow", 0, IG_R_STARTTLS_NOFLOW, NULL, IG_SC_NOFLOW, false,
	  { S("a NOOP\r\n", 'P'), SF("", RST, 'P'), S("b NOOP\r\n", 'F') } },
	{ "reset flow: rst passes, ends it", 0, IG_R_STARTTLS_PLAIN, NULL, -1, false,
	  { S("a LOGIN u p\r\n", 'F'), SF("", RST, 'P'), S("", 'P') } },
	{ "login with fin", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { SF("a LOGIN u p\r\n", FIN, 'F'), S("", 'B') } },
	{ "tag at a chunk's end", 0, IG_R_STARTTLS_PLAIN, "LOGIN", IG_SC_VERB, false,
	  { { tag61, -1, 0, 'P', 0 }, { tag60, -1, 0, 'F', 0 } } },
	{ "long tag", 0, 0, NULL, -1, false, { { long_tag, -1, 0, 'P', 0 } } },
	{ "exactly the bytes scanned", 0, 0, NULL, -1, false, { { at_max, -1, 0, 'P', 0 } } },
	{ "one byte more than scanned", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_LONG, false,
	  { { over_max, -1, 0, 'F', 0 } } },
	{ "verb across the scan limit", 0, IG_R_STARTTLS_UNPARSABLE, NULL, IG_SC_LONG, false,
	  { { verb_at_max, -1, 0, 'F', 0 } } },
	{ "tls after the scan limit", 0, 0, NULL, -1, false,
	  { S("a STARTTLS\r\n", 'P'), { tls_big, -1, 0, 'P', 0 }, S("b LOGIN u p\r\n", 'P') } },
	{ "log mode: login passes", PORT_LOG, IG_R_STARTTLS_LOGGED, "LOGIN", IG_SC_VERB, false,
	  { S("a NOOP\r\n", 'P'), S("b LOGIN user secret\r\n", 'P'), S("c SELECT INBOX\r\n", 'P') } },
	{ "log mode: unparsable passes", PORT_LOG, IG_R_STARTTLS_LOGGED, NULL, IG_SC_ORDER, false,
	  { SD("a NOOP\r\n", 5, 'P'), S("b LOGIN u p\r\n", 'P') } },
	{ "log mode: no flow passes", PORT_LOG, IG_R_STARTTLS_LOGGED, NULL, IG_SC_NOFLOW, true,
	  { S("a LOGIN u p\r\n", 'P'), S("b LOGIN u p\r\n", 'P') } },
};

static void fill_tags(void)
{
	memset(long_tag, 't', 1390);
	memcpy(long_tag + 1390, " NOOP\r\n", 8);
	/* tag61: the tag, its space and "NOOP" end at byte 64+; tag60's
	 * LOGIN starts in one chunk and ends in the next. */
	memset(tag61, 'x', 61);
	memcpy(tag61 + 61, " NOOP\r\n", 8);
	memset(tag60, 'y', 58);
	memcpy(tag60 + 58, " LOGIN u p\r\n", 13);
	/* NOOP lines filling exactly IG_ST_SCAN_MAX bytes: tag padding first. */
	memset(at_max, 'z', IG_ST_SCAN_MAX);
	memcpy(at_max + IG_ST_SCAN_MAX - 7, " NOOP\r\n", 7);
	at_max[IG_ST_SCAN_MAX] = 0;
	memcpy(over_max, at_max, IG_ST_SCAN_MAX);
	over_max[IG_ST_SCAN_MAX] = 'a';
	over_max[IG_ST_SCAN_MAX + 1] = 0;
	/* "LOG" inside the limit, "IN" after it. */
	memset(verb_at_max, 'v', IG_ST_SCAN_MAX - 4);
	memcpy(verb_at_max + IG_ST_SCAN_MAX - 4, " LOGIN u\r\n", 11);
	memset(tls_big, 'q', IG_ST_SCAN_MAX + 50);
	memcpy(tls_big, TLS_HELLO, sizeof(TLS_HELLO) - 1);
}

static void run_stcase(const struct stcase *c, int hook, int family, int vlans)
{
	uint16_t port = c->port ? c->port : PORT_ENF;
	uint64_t before[IG_R_MAX];
	struct ig_flow f = {};
	struct conn cn;
	char what[64];

	for (int i = 0; i < IG_R_MAX; i++)
		before[i] = counter(i);
	if (c->no_syn) {
		conn_open(hook, &cn, family, vlans, 9);	/* another port: no flow */
		cn.dport = port;
	} else {
		ASSERT_EQ(conn_open(hook, &cn, family, vlans, port), 'P', "syn passes");
		for (int i = 0; i < IG_R_MAX; i++)
			before[i] = counter(i);
	}
	for (int i = 0; i < MAXSEG && c->s[i].d; i++) {
		const struct seg *s = &c->s[i];
		size_t len = s->len < 0 ? strlen(s->d) : (size_t)s->len;
		/* The server expects the flow's next byte; with no flow, this one. */
		uint32_t rst_seq = c->no_syn ? cn.seq + s->seq_delta : cn.seq;

		snprintf(what, sizeof(what), "segment %d", i + 1);
		ASSERT_EQ(conn_send(hook, &cn, s->d, len, s->seq_delta, s->flags), s->exp, what);
		if (s->exp == 'F')
			ASSERT_EQ(last_rst.seq, rst_seq, "forward rst at the server's seq");
	}
	for (int i = 0; i < IG_R_MAX; i++) {
		uint64_t d = counter(i) - before[i];

		if (c->reason && i == c->reason)
			ASSERT_EQ(d, 1, reason_name(i));
		else if (st_reason(i) && i != IG_R_STARTTLS_RESET)
			ASSERT_EQ(d, 0, reason_name(i));
	}
	if (c->verb || c->cause >= 0) {
		if (!ASSERT_OK(flow_get(&cn, &f), "flow state kept"))
			return;
		if (c->verb)
			ASSERT_STREQ(strndupa((char *)f.verb, IG_VERB_LEN), c->verb, "verb");
		if (c->cause >= 0)
			ASSERT_EQ(f.cause, c->cause, "cause");
	}
}

/* The RSTs themselves: toward the server at the seq it expects, and back
 * to the client at the seq it acknowledged. */
static void test_rst_fields(int hook)
{
	struct conn c;
	uint32_t seq;

	conn_open(hook, &c, 4, 0, PORT_ENF);
	conn_send(hook, &c, "a NOOP\r\n", 8, 0, 0);
	seq = c.seq;
	ASSERT_EQ(conn_send(hook, &c, "b LOGIN u p\r\n", 13, 0, 0), 'F', "refused");
	ASSERT_EQ(last_rst.seq, seq, "rst seq: the server's next");
	ASSERT_EQ(last_rst.ack, c.ack, "rst ack: the client's");
	ASSERT_EQ(last_rst.flags, 0x14, "RST|ACK");
	ASSERT_TRUE(!last_rst.swapped, "toward the server");
	c.ack += 100;
	ASSERT_EQ(conn_send(hook, &c, "", 0, 0, 0), 'B', "next packet");
	ASSERT_EQ(last_rst.seq, c.ack, "rst seq: the client's ack");
	ASSERT_EQ(last_rst.flags, 0x04, "RST");
	ASSERT_TRUE(last_rst.swapped, "back to the client");
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

/* One event per source and second, with the verb and never an argument. */
static void test_events(int hook)
{
	struct ring_buffer *rb = ring_buffer__new(maps.events, on_event, NULL, NULL);
	struct conn c, d;

	if (!ASSERT_OK_PTR(rb, "ring_buffer__new"))
		return;
	ring_buffer__consume(rb);
	ev_count = 0;
	conn_open(hook, &c, 6, 0, PORT_ENF);
	conn_send(hook, &c, "a authenticate PLAIN AHVzZXIAc2VjcmV0\r\n", 39, 0, 0);
	conn_send(hook, &c, "again", 5, 0, 0);
	d = c;			/* the same source, another flow, same second */
	d.sport++;
	send_seg(hook, &d, 0x02, d.seq++, NULL, 0);
	ASSERT_EQ(conn_send(hook, &d, "b LOGIN u p\r\n", 13, 0, 0), 'F', "second flow refused");
	conn_open(hook, &d, 6, 0, PORT_ENF);
	ring_buffer__consume(rb);
	ASSERT_EQ(ev_count, 1, "one event");
	ASSERT_EQ(last_ev.reason, IG_R_STARTTLS_PLAIN, "reason");
	ASSERT_EQ(last_ev.cause, IG_SC_VERB, "cause");
	ASSERT_STREQ(strndupa((char *)last_ev.verb, IG_VERB_LEN), "AUTHENTICATE", "verb");
	ASSERT_TRUE(!memmem(&last_ev, sizeof(last_ev), "PLAIN", 5), "no argument");
	ASSERT_EQ(last_ev.dport, PORT_ENF, "port");
	ASSERT_TRUE(!memcmp(last_ev.addr, c.src, 16), "source");
	ring_buffer__free(rb);
}

/* ---- differential ------------------------------------------------------ */

/* The reference's outcome of a stream: where it is decided and how. */
enum ref_how { R_OPEN, R_TLS, R_REFUSE };
struct ref {
	enum ref_how how;
	size_t at;		/* index of the deciding byte */
	int cause;
};

static bool r_tag(int c)
{
	return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\+", c);
}

static const char *const r_verbs[] = { "CAPABILITY", "NOOP", "LOGOUT", "ID", "STARTTLS" };

static bool r_prefix(const char *v, size_t n, bool exact)
{
	for (int k = 0; k < 5; k++)
		if (strlen(r_verbs[k]) >= n && !strncmp(r_verbs[k], v, n) &&
		    (!exact || strlen(r_verbs[k]) == n))
			return true;
	return false;
}

#define REFUSE(i, c) do { r.how = R_REFUSE; r.at = (i); r.cause = (c); return r; } while (0)

/*
 * The grammar again, read over the whole stream at once: lines of tag SP
 * verb, the five verbs, ID's quoted strings and literals, and STARTTLS
 * followed by 0x16 0x03. Where the stream runs out undecided: R_OPEN.
 */
static struct ref ref_scan(const uint8_t *s, size_t n)
{
	struct ref r = { R_OPEN, n, 0 };
	size_t i = 0, v0;
	bool stls = false;
	char verb[16];

	for (;;) {
		if (stls && i < n && s[i] == 0x16) {
			if (i + 1 >= n)
				return r;
			if (s[i + 1] != 0x03)
				REFUSE(i + 1, IG_SC_SYNTAX);
			r.how = R_TLS;
			r.at = i + 1;
			return r;
		}
		stls = false;
		while (i < n && (s[i] == '\r' || s[i] == '\n'))
			i++;
		if (i >= n)
			return r;
		if (!r_tag(s[i]))
			REFUSE(i, IG_SC_SYNTAX);
		while (i < n && r_tag(s[i]))
			i++;
		if (i >= n)
			return r;
		if (s[i] != ' ')
			REFUSE(i, IG_SC_SYNTAX);
		v0 = ++i;
		/* The verb: refused at the first byte that no allowed verb has. */
		for (; i < n && s[i] != ' ' && s[i] != '\r' && s[i] != '\n'; i++) {
			int c = s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i];

			if (i - v0 < sizeof(verb))
				verb[i - v0] = c;
			if (!r_tag(c) && c != '+')
				REFUSE(i, IG_SC_SYNTAX);
			if (i - v0 >= 12 || !r_prefix(verb, i - v0 + 1, false))
				REFUSE(i, IG_SC_VERB);
		}
		if (i >= n)
			return r;
		if (i == v0)
			REFUSE(i, IG_SC_SYNTAX);
		if (!r_prefix(verb, i - v0, true))
			REFUSE(i, IG_SC_VERB);
		if (i - v0 != 2) {	/* not ID: no arguments */
			if (s[i] == ' ')
				REFUSE(i, IG_SC_SYNTAX);
			stls = i - v0 == 8;
		} else if (s[i] == ' ') {
			/* ID arguments up to the line's end */
			for (i++;; i++) {
				if (i >= n)
					return r;
				if (s[i] == '\r' || s[i] == '\n')
					break;
				if (!s[i])
					REFUSE(i, IG_SC_SYNTAX);
				if (s[i] == '"') {
					for (i++; i < n && s[i] != '"'; i++) {
						if (s[i] == '\r' || s[i] == '\n' || !s[i])
							REFUSE(i, IG_SC_SYNTAX);
						if (s[i] == '\\' && ++i < n &&
						    (s[i] == '\r' || s[i] == '\n' || !s[i]))
							REFUSE(i, IG_SC_SYNTAX);
					}
					if (i >= n)
						return r;
				} else if (s[i] == '{') {
					unsigned long lit = 0;
					size_t d0 = ++i;

					for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
						if ((lit = lit * 10 + s[i] - '0') > IG_ST_LIT_MAX)
							REFUSE(i, IG_SC_LITERAL);
					if (i >= n)
						return r;
					if (i == d0 || (s[i] != '+' && s[i] != '}'))
						REFUSE(i, IG_SC_SYNTAX);
					if (s[i] == '+' && ++i < n && s[i] != '}')
						REFUSE(i, IG_SC_SYNTAX);
					if (++i < n && s[i] == '\r')
						i++;
					if (i >= n)
						return r;
					if (s[i] != '\n')
						REFUSE(i, IG_SC_SYNTAX);
					i += lit;	/* the loop's i++ steps past the LF */
				}
			}
		}
		if (s[i] == '\r') {
			if (++i >= n)
				return r;
			if (s[i] != '\n')
				REFUSE(i, IG_SC_SYNTAX);
		}
		i++;
	}
}

/* Random pieces of a client's stream. */
static unsigned int rnd_seed;

static int rnd(int n)
{
	return rand_r(&rnd_seed) % n;
}

static size_t put(uint8_t *b, size_t at, size_t cap, const char *s)
{
	size_t l = strlen(s);

	if (at + l > cap)
		l = cap - at;
	memcpy(b + at, s, l);
	return at + l;
}

static size_t gen_stream(uint8_t *b, size_t cap)
{
	static const char *const verbs[] = { "CAPABILITY", "noop", "Logout", "STARTTLS",
		"LOGIN", "authenticate", "SELECT", "LOG", "NOOPX", "ID", "id", "X-Y", "STARTTLS",
		"starttls", "LOGOUT", "Capability" };
	static const char *const args[] = { "NIL", "(\"name\" \"x\")", "(\"a\\\"b\" NIL)",
		"(\"{5}\" \"v\")", "(\"k\" {3}\r\nabc)", "(\"k\" {12+}\r\nb LOGIN u p)",
		"(\"k\" {2000}\r\n", "(\"open", "{x}", "(\"k\" {0}\r\n)" };
	static const char *const ends[] = { "\r\n", "\n", "\r\n", " extra\r\n", "\r", "" };
	size_t at = 0;
	char tag[128];

	while (at < cap && rnd(8)) {
		int t = rnd(20);

		if (t == 0) {		/* a TLS record start, maybe broken */
			at = put(b, at, cap, rnd(4) ? "\x16\x03\x01\x02" : "\x16\x01");
			continue;
		}
		if (t == 1) {		/* a random byte */
			b[at++] = rnd(256) ?: 1;
			continue;
		}
		int tl = 1 + (rnd(5) ? rnd(6) : rnd(120));

		for (int i = 0; i < tl; i++)
			tag[i] = "abcXYZ0129.]-_:~"[rnd(16)];
		if (!rnd(30))
			tag[rnd(tl)] = "+*\"({% "[rnd(7)];
		tag[tl] = 0;
		at = put(b, at, cap, tag);
		at = put(b, at, cap, rnd(30) ? " " : "  ");
		const char *v = verbs[rnd(sizeof(verbs) / sizeof(verbs[0]))];

		at = put(b, at, cap, v);
		if (!strcasecmp(v, "ID") || !rnd(10)) {
			at = put(b, at, cap, " ");
			at = put(b, at, cap, args[rnd(sizeof(args) / sizeof(args[0]))]);
		}
		at = put(b, at, cap, ends[rnd(4) ? 0 : rnd(6)]);
	}
	return at;
}

/* BPF and reference agree on every segment of one random stream. */
static bool diff_one(int hook, int iter)
{
	static uint8_t b[2 * IG_ST_SCAN_MAX];
	size_t n = gen_stream(b, rnd(10) ? 300 : sizeof(b)), cut[MAXSEG + 1], at = 0;
	int nseg = 1 + rnd(MAXSEG - 1), k = 0;
	bool log = !rnd(4), decided = false;
	struct ref r = ref_scan(b, n);
	struct ig_flow f;
	struct conn c;

	/* Random cut points, sorted, first 0 and last n. */
	cut[0] = 0;
	for (int i = 1; i < nseg; i++)
		cut[i] = n ? (size_t)rnd(n + 1) : 0;
	cut[nseg] = n;
	for (int i = 1; i < nseg; i++)
		for (int j = i; j > 1 && cut[j - 1] > cut[j]; j--) {
			size_t t = cut[j];

			cut[j] = cut[j - 1];
			cut[j - 1] = t;
		}
	cur_opts = iter % 4 == 3;
	conn_open(hook, &c, iter & 1 ? 6 : 4, iter % 3 == 2, log ? PORT_LOG : PORT_ENF);
	cur_opts = false;
	for (k = 0; k < nseg; k++) {
		size_t a = cut[k], e = cut[k + 1], len = e - a;
		char exp = 'P', got;

		if (!len)
			continue;
		/* Past the reference's decision: reset (enforce) or no more checks. */
		if (decided)
			exp = r.how == R_REFUSE && !log ? 'B' : 'P';
		else if (r.how != R_OPEN && r.at < e && r.at - a < IG_ST_SCAN_MAX) {
			decided = true;
			exp = r.how == R_REFUSE && !log ? 'F' : 'P';
		} else if (len > IG_ST_SCAN_MAX) {
			/* the scan ends undecided: too long to read */
			r.how = R_REFUSE;
			r.cause = IG_SC_LONG;
			decided = true;
			exp = log ? 'P' : 'F';
		}
		got = conn_send(hook, &c, b + a, len, 0, 0);
		at = e;
		if (got != exp) {
			fprintf(stderr, "  iter %d %s: segment %d [%zu,%zu) of %zu: got %c, expected %c "
				"(reference: %s at %zu, cause %d)\n", iter, log ? "log" : "enforce", k,
				a, e, n, got, exp, r.how == R_OPEN ? "open" : r.how == R_TLS ? "tls" :
				"refuse", r.at, r.cause);
			fprintf(stderr, "  stream: ");
			for (size_t i = 0; i < n; i++)
				fprintf(stderr, b[i] >= 32 && b[i] < 127 ? "%c" : "\\x%02x", b[i]);
			fprintf(stderr, "\n");
			return false;
		}
	}
	(void)at;
	if (decided && r.how == R_REFUSE && !flow_get(&c, &f) && f.cause != r.cause) {
		fprintf(stderr, "  iter %d: cause %d, reference %d\n", iter, f.cause, r.cause);
		return false;
	}
	return true;
}

static void test_differential(int hook)
{
	int bad = 0, refused = 0, tls = 0;

	rnd_seed = 2026 + hook;
	for (int i = 0; i < 3000 && bad < 3; i++) {
		static uint8_t b[2 * IG_ST_SCAN_MAX];
		unsigned int s = rnd_seed;
		struct ref r;

		/* Tally what the streams exercised, on a copy of the generator. */
		r = ref_scan(b, gen_stream(b, rnd(10) ? 300 : sizeof(b)));
		refused += r.how == R_REFUSE;
		tls += r.how == R_TLS;
		rnd_seed = s;
		bad += !diff_one(hook, i);
	}
	ASSERT_EQ(bad, 0, "streams that disagree");
	printf("  %s: 3000 streams, %d refused, %d to TLS\n", hook_name[hook], refused, tls);
	ASSERT_TRUE(refused > 300 && tls > 0, "streams of every kind");
}

/* ---- set-up ------------------------------------------------------------ */

static void set_port(uint16_t port, uint8_t mode, uint8_t slot)
{
	struct ig_port_cfg pc = { .action = IG_ACT_STARTTLS, .starttls_mode = mode, .slot = slot };
	__u32 key = port;

	bpf_map_update_elem(maps.ports, &key, &pc, BPF_ANY);
}

int main(void)
{
	static struct ig_cfg cfg = { .nports = 2, .ports = { PORT_ENF, PORT_LOG } };
	static const struct { int family, vlans; bool opts; const char *name; } nets[] = {
		{ 4, 0, false, "v4" }, { 6, 0, false, "v6" }, { 4, 1, false, "v4 vlan" },
		{ 6, 2, false, "v6 qinq" }, { 4, 0, true, "v4 ip+tcp options" },
		{ 6, 1, true, "v6 vlan tcp options" },
	};
	char name[160];
	__u32 zero = 0;
	int err;

	if (geteuid()) {
		SKIP_CASE("starttls", "needs root (CAP_BPF) to load programs");
		return 0;
	}
	skel = imapguard_bpf__open();
	if (!skel) {
		printf("FAIL bpf open: %s\n", strerror(errno));
		return 1;
	}
	bpf_map__set_max_entries(skel->maps.ig_throttle, 4096);
	bpf_map__set_max_entries(skel->maps.ig_bans, 4096);
	bpf_map__set_max_entries(skel->maps.ig_deny, 4096);
	bpf_map__set_max_entries(skel->maps.ig_flows, 65536);
	err = imapguard_bpf__load(skel);
	if (err) {
		printf("FAIL bpf load: %s\n", strerror(-err));
		return 1;
	}
	fastpath_maps_of(skel->obj, &maps);
	flows_fd = bpf_map__fd(skel->maps.ig_flows);
	for (int i = 0; i < 2; i++)
		cfg.port_bits[0][IG_PORT_WORD(cfg.ports[i])] |= IG_PORT_BIT(cfg.ports[i]);
	bpf_map_update_elem(maps.cfg, &zero, &cfg, BPF_ANY);
	set_port(PORT_ENF, IG_ST_ENFORCE, 0);
	set_port(PORT_LOG, IG_ST_LOG, 1);
	fill_tags();

	for (int hook = HOOK_XDP; hook <= HOOK_TC; hook++) {
		for (size_t n = 0; n < sizeof(nets) / sizeof(nets[0]); n++)
			for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
				snprintf(name, sizeof(name), "%s %s: %s", hook_name[hook],
					 nets[n].name, cases[i].name);
				cur_opts = nets[n].opts;
				RUN_CASE(name, run_stcase(&cases[i], hook, nets[n].family,
							  nets[n].vlans));
			}
		cur_opts = false;
		snprintf(name, sizeof(name), "%s: rst fields", hook_name[hook]);
		RUN_CASE(name, test_rst_fields(hook));
		snprintf(name, sizeof(name), "%s: events", hook_name[hook]);
		RUN_CASE(name, test_events(hook));
		snprintf(name, sizeof(name), "%s: differential, random streams", hook_name[hook]);
		RUN_CASE(name, test_differential(hook));
	}
	imapguard_bpf__destroy(skel);
	return test_cases_failed != 0;
}
