/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types and constants shared by the BPF fast path and userspace. Include
 * nothing else here: both sides must see exactly the same layout.
 */
#ifndef IMAPGUARD_COMMON_H
#define IMAPGUARD_COMMON_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define IG_MAX_PORTS	16	/* protected ports in one policy */
#define IG_REASON_LEN	40	/* ban reason text, NUL included */
#define IG_IFNAME_LEN	16	/* IFNAMSIZ */

/*
 * Every address is kept as 16 bytes. IPv4 is stored IPv4-mapped
 * (::ffff:a.b.c.d), so an IPv4 /24 is prefix length 96 + 24 = 120. One key
 * layout serves both families and every map.
 */
#define IG_V4_PLEN_OFF	96

/*
 * Per-port access, ig_port_cfg.access. IG_ACCESS_GRANT: a SYN passes only
 * from an allow-listed source or one holding a live grant (ig_grants); the
 * port's action then says what happens to the others (pass and drop: dropped,
 * reject: RST, redirect: redirected). Later segments of an admitted
 * connection are not checked again: a grant admits connections.
 */
enum ig_access {
	IG_ACCESS_OPEN = 0,
	IG_ACCESS_GRANT,
};

/* Per-port action, ig_port_cfg.action. IG_ACT_NONE = port not protected. */
enum ig_action {
	IG_ACT_NONE = 0,
	IG_ACT_PASS,
	IG_ACT_DROP,
	IG_ACT_REJECT,
	IG_ACT_REDIRECT,
	IG_ACT_STARTTLS,	/* SYNs pass; client commands checked until STARTTLS */
};

/* ig_port_cfg.starttls_mode, for action starttls. */
enum ig_starttls_mode {
	IG_ST_ENFORCE = 0,	/* refuse plaintext: drop the packet, reset the flow */
	IG_ST_LOG,		/* count and report plaintext commands, block nothing */
};

/*
 * Verdict reasons: the index into ig_counters and ig_event.reason. Values are
 * ours, never XDP_* or TC_ACT_* codes: the entry points translate.
 */
enum ig_reason {
	IG_R_PASS = 0,		/* protected port, action pass, within budget */
	IG_R_ALLOW,		/* allow-listed source, all checks bypassed */
	IG_R_DROP,		/* port action drop */
	IG_R_REJECT,		/* SYN answered with RST */
	IG_R_REJECT_DROP,	/* non-SYN packet to a reject port, dropped */
	IG_R_REDIRECT,		/* sent out of the policy's redirect interface */
	IG_R_DENY,		/* source in the deny list */
	IG_R_BAN,		/* source (or its IPv6 /64) banned */
	IG_R_SYN_RATE,		/* per-source SYN budget exhausted */
	IG_R_SUBNET_RATE,	/* per-subnet SYN budget exhausted */
	IG_R_BAD_FRAG,		/* TCP first fragment too short to hold the header (RFC 1858) */
	/* action starttls (bpf/starttls.bpf.h) */
	IG_R_STARTTLS_PLAIN,	/* command other than CAPABILITY NOOP LOGOUT ID STARTTLS before
				 * STARTTLS: packet turned into a RST to the server */
	IG_R_STARTTLS_UNPARSABLE, /* the scanner cannot classify it safely: reset the same way */
	IG_R_STARTTLS_NOFLOW,	/* payload on a flow with no state (began before the policy,
				 * or evicted from ig_flows): reset the same way */
	IG_R_STARTTLS_RESET,	/* later packet of a flow already reset: RST to the client */
	IG_R_STARTTLS_LOGGED,	/* starttls_mode = log: what enforce would reset, passed */
	IG_R_NO_GRANT,		/* access = grant port: SYN from a source with no live grant, dropped */
	IG_R_NO_GRANT_REJECT,	/* ... answered with RST (port action reject) */
	IG_R_MAX,
};

/* Counters that are not verdicts live after the reasons in ig_counters. */
enum ig_counter_extra {
	IG_C_EVENTS_LOST = IG_R_MAX,	/* ring buffer full: event not delivered */
	IG_C_EVENTS_SAMPLED,		/* event suppressed by per-source sampling */
	IG_C_REDIRECT_ERR,		/* redirect interface missing */
	IG_C_MAP_FULL,			/* userspace insert refused: map full */
	IG_C_NEW_BUCKET_SKIP,		/* new source not tracked: new-state budget spent */
	IG_C_MAX,
};

enum ig_ban_scope {
	IG_SCOPE_PROTECTED = 0,	/* allow/deny/ban only on protected ports */
	IG_SCOPE_ALL,		/* ... on every IPv4/IPv6 packet */
};

struct ig_counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * Port configuration comes in two generations, so that a policy apply is one
 * switch for the fast path: ig_ports holds a table of 65536 entries per
 * generation (key IG_PORT_KEY), ig_cfg a port_bits row per generation, and
 * ig_cfg.gen says which one is in force. BPF reads gen once per packet and
 * uses only that generation; userspace writes the other one completely, then
 * flips gen. gen is 0 or 1: the one byte that changes cannot tear.
 */
#define IG_PORT_GENS	2
#define IG_PORT_KEY(gen, port)	((((__u32)(gen) & 1) << 16) | ((port) & 0xffff))

/* ig_ports value, key IG_PORT_KEY(generation, TCP destination port). */
struct ig_port_cfg {
	__u8 action;		/* enum ig_action */
	__u8 slot;		/* index in ig_cfg.ports, for allow masks */
	__u8 src_plen4;		/* per-source bucket prefix, IPv4 (0..32) */
	__u8 src_plen6;		/* per-source bucket prefix, IPv6 (0..128) */
	__u8 sub_plen4;		/* per-subnet bucket prefix, IPv4 */
	__u8 sub_plen6;		/* per-subnet bucket prefix, IPv6 */
	__u8 starttls_mode;	/* enum ig_starttls_mode, action starttls */
	__u8 access;		/* enum ig_access */
	__u32 redirect_ifindex;	/* action redirect: egress interface */
	__u32 pad2;
	/*
	 * GCRA token buckets: one token every interval_ns, up to burst tokens
	 * banked; tol_ns = (burst - 1) * interval_ns. interval 0 = no bucket.
	 */
	__u64 src_interval_ns;
	__u64 src_tol_ns;
	__u64 sub_interval_ns;
	__u64 sub_tol_ns;
};

/*
 * ig_cfg.flags: which LPM tries hold entries. An empty trie is not looked up
 * (an LPM lookup costs 20-85 ns). Userspace sets a bit after inserting and
 * clears it only after seeing the trie empty, both under the pin-dir lock.
 */
#define IG_F_ALLOW	0x1
#define IG_F_DENY	0x2
#define IG_F_BANPFX	0x4

/* ig_cfg value (single entry): global knobs that change at run time. */
struct ig_cfg {
	__u32 ban_scope;	/* enum ig_ban_scope */
	__u32 flags;		/* IG_F_* */
	__u32 nports;		/* of the generation in force, as ports[] */
	__u32 hz;		/* kernel CONFIG_HZ: events are sampled on jiffies; 0 = unknown */
	__u32 gen;		/* port generation in force: 0 or 1 */
	__u32 pad;
	__u16 ports[IG_MAX_PORTS];	/* protected ports in force, slot order */
	__u64 ban_ttl_ns;	/* default TTL for `ban add` without --ttl */
	__u64 policy_hash;	/* hash_stable() of the applied policy file, for status */
	/* Per generation, bit p set: port p has an ig_ports action. Other
	 * ports cost a bit test, not an ig_ports lookup (6 MB, cache-cold for
	 * random ports). */
	__u64 port_bits[IG_PORT_GENS][65536 / 64];
};

/* Where port p is in a port_bits row: word IG_PORT_WORD(p), bit IG_PORT_BIT(p). */
#define IG_PORT_WORD(p)	((p) / 64)
#define IG_PORT_BIT(p)	(1ULL << ((p) % 64))

/* ig_allow / ig_deny key (LPM trie). */
struct ig_lpm_key {
	__u32 prefixlen;	/* 0..128, IPv4 mapped: 96 + len */
	__u8 addr[16];
};

/*
 * ig_allow value. The trie returns only the longest match, so userspace
 * stores in port_mask the union of the masks of every entry that contains
 * this one; the BPF side then needs a single lookup.
 */
struct ig_allow_val {
	__u32 port_mask;	/* effective: bit i = allowed on ig_cfg.ports[i] */
	__u32 policy_mask;	/* this entry's own ports from the policy file */
	__u8 origin;		/* IG_ORIGIN_* bits; CLI entries cover every port */
	__u8 pad[7];
};

/*
 * ig_lpmsum: a prefilter in front of the three LPM tries. An LPM lookup walks
 * the trie (up to ~100 ns with 100k entries) even when nothing matches; one
 * array lookup tells that most sources cannot match. Slot (ig_sum_slot) of
 * an address: its IPv4 /16, or for IPv6 its /48 hashed into 65536 slots.
 * Entry slot / 64 holds one bit per slot for each trie (IG_SUM_*): set when
 * a trie entry may contain an address of that slot. Userspace sets bits
 * before it inserts and clears them only by a rebuild from the trie: a bit
 * may be stale set (a lookup for nothing), never stale clear.
 */
#define IG_SUM_SLOTS	(2 * 65536)
#define IG_SUM_ENTRIES	(IG_SUM_SLOTS / 64)

enum ig_sum_list { IG_SUM_ALLOW, IG_SUM_DENY, IG_SUM_BANPFX, IG_SUM_NLISTS };

struct ig_lpmsum {
	__u64 bits[IG_SUM_NLISTS];
};

/*
 * ig_bansum: a summary of the ig_bans hash, so that a source with no entry
 * there (every spoofed one) costs one cache line instead of a lookup per key
 * in a hash of millions of buckets. Line ig_bansum_line() of a key holds bit
 * ig_bansum_bit() set when ig_bans may hold that key; an IPv6 address's /128
 * and /64 keys share a line. Userspace sets the bit before it inserts and
 * never clears one (a stale bit costs a lookup for nothing, never a miss).
 * lpmsum.h has the hash functions, shared with userspace.
 */
#define IG_BANSUM_LINES	32768	/* 2 MiB: ~7% of bits set with 1M + 128k entries */

struct ig_bansum {
	__u64 w[8];		/* 512 bits: one cache line */
};

/*
 * New-state budget: per CPU, at most this many throttle buckets created or
 * admission slots marked per second. A spoofed flood cannot churn the LRU
 * or fill the admission filter faster; sources beyond it pass untracked
 * (IG_C_NEW_BUCKET_SKIP) while buckets that exist keep enforcing. A
 * quarter of the slots a second: a flood spends it within milliseconds
 * whatever its size, and the fewer slots it leaves busy, the fewer spoofed
 * SYNs find a busy slot and pay an LRU lookup that misses. Far above the
 * new clients a second one server sees.
 */
#define IG_NEW_STATE_PER_SEC	16384

/* ig_deny value. */
struct ig_deny_val {
	__u8 origin;		/* IG_ORIGIN_* bits */
	__u8 pad[7];
};

/* Who wrote a list entry (bits), so `policy apply` replaces only its own. */
enum ig_origin {
	IG_ORIGIN_POLICY = 1,
	IG_ORIGIN_CLI = 2,
	IG_ORIGIN_DAEMON = 4,
	IG_ORIGIN_CROWDSEC = 8,	/* a CrowdSec LAPI decision (daemon/crowdsec.c) */
	IG_ORIGIN_FLEET = 16,	/* a ban another node decided, from Redis (daemon/fleet.c) */
};

#define IG_ALL_PORTS	0xffffffffU	/* port_mask of an entry for every port */

/* ig_bans key: an exact address (plen 128) or an IPv6 /64 (plen 64). Same
 * layout as ig_lpm_key. */
struct ig_ban_key {
	__u32 plen;
	__u8 addr[16];
};

/*
 * ig_bans and ig_banpfx value. ig_bans also holds the deny list's exact
 * addresses and IPv6 /64s (blocklists are mostly single hosts): one hash
 * lookup answers both lists. An entry there is a ban, a deny, or both.
 */
struct ig_ban_val {
	__u64 expires_ns;	/* CLOCK_MONOTONIC (bpf_ktime_get_coarse_ns); 0 = permanent */
	__u64 created;		/* wall clock seconds, for listing */
	__u64 packets;		/* packets dropped by this ban (atomic add) */
	char reason[IG_REASON_LEN];
	__u8 banned;		/* 1: the fields above are a ban */
	__u8 deny;		/* ig_bans: deny-list origins (IG_ORIGIN_*), 0 = not denied */
	__u8 origin;		/* who banned: one IG_ORIGIN_* value, 0 = unknown (older pins) */
	__u8 pad[5];
};

/*
 * The census program's context (BPF_PROG_RUN of ig_census): now_ns in, the
 * rest out. Entries of the hash maps, and the ig_bans bans (not deny-only
 * hosts) by origin slot: those in force at now_ns, and the packets of all.
 */
#define IG_CENSUS_SLOTS	8
struct ig_census {
	__u64 now_ns;
	__u64 bans, throttle, flows, grants;	/* entries */
	__u64 live[IG_CENSUS_SLOTS];
	__u64 packets[IG_CENSUS_SLOTS];
};

/* A ban origin's census slot: 1 + the bit of its one IG_ORIGIN_* value,
 * 0 for none or several. */
static inline __u32 ig_census_slot(__u8 origin)
{
	for (__u32 i = 0; i < IG_CENSUS_SLOTS - 1; i++)
		if (origin == 1U << i)
			return i + 1;
	return 0;
}

/*
 * ig_grants: key as ig_bans (an exact address, plen 128, or an IPv6 /64,
 * plen 64). A source may hold grants of several users (a NAT): each slot is
 * one user's grant; expires_ns is the latest of the slots', the one BPF
 * reads. Like a ban's, an expired grant stops admitting even with no daemon.
 */
#define IG_GRANT_USERS	4
#define IG_USER_LEN	64	/* user name, NUL included */

struct ig_grant_user {
	__u64 expires_ns;	/* CLOCK_MONOTONIC; 0 = free slot */
	__u64 created;		/* wall clock seconds */
	char user[IG_USER_LEN];
};

struct ig_grant_val {
	__u64 expires_ns;	/* max of users[].expires_ns: what BPF checks */
	__u64 packets;		/* SYNs admitted by this grant (atomic add) */
	struct ig_grant_user users[IG_GRANT_USERS];
};

/*
 * ig_throttle key: bucket of a source prefix (level 0) or subnet (level 1).
 * 12 bytes: the kernel hashes keys of up to 3 words in one final round, and
 * bucket prefixes never need more (IPv6 ones are at most /64).
 */
struct ig_thr_key {
	__u8 addr[8];		/* IPv4: the masked address, then 0; IPv6: the masked first half */
	__u16 port;
	__u8 level;
	__u8 family;		/* 4 or 6 */
};

struct ig_thr_val {
	__u64 tat_ns;		/* GCRA theoretical arrival time */
};

/* ig_ifaces value: registry of attachments, keyed by ifindex (userspace only). */
enum ig_attach_mode {
	IG_MODE_NATIVE = 1,
	IG_MODE_GENERIC,
	IG_MODE_TC,
};

struct ig_iface {
	char name[IG_IFNAME_LEN];
	__u32 mode;		/* enum ig_attach_mode */
	__u32 prog_id;
	__u32 tc_created_hook;	/* 1: we created clsact, destroy it on detach */
	__u32 pad;
};

/*
 * action starttls: per-flow scanner state (bpf/starttls.bpf.h), ig_flows.
 * IG_VERB_LEN holds the longest verb worth naming (AUTHENTICATE); a verb is
 * kept upper-cased and never with its arguments.
 */
#define IG_VERB_LEN	12
#define IG_ST_SCAN_MAX	1536	/* command bytes scanned in one packet, at most */
#define IG_ST_LIT_MAX	1024	/* longest literal before STARTTLS (RFC 2971 ID values) */

/* Why the scanner refused a flow (ig_event.cause, ig_flow.cause). */
enum ig_st_cause {
	IG_SC_NONE = 0,
	IG_SC_VERB,		/* a command other than the five allowed */
	IG_SC_SYNTAX,		/* bytes no allowed command line can hold */
	IG_SC_ORDER,		/* segment after a gap (out of order) */
	IG_SC_LITERAL,		/* literal over IG_ST_LIT_MAX bytes */
	IG_SC_LONG,		/* more than IG_ST_SCAN_MAX bytes to scan in one packet */
	IG_SC_NOFLOW,		/* no state for the flow */
	IG_SC_FRAG,		/* IP fragment, or SYN, carrying payload */
	IG_SC_MAX,
};

/* ig_flows key: the client-to-server 4-tuple, addresses IPv4 mapped. */
struct ig_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;		/* host order */
	__u16 dport;
};

/* ig_flow.flags */
#define IG_FL_TLS	0x1	/* TLS record seen after STARTTLS: no more inspection */
#define IG_FL_RESET	0x2	/* refused: every later packet is answered with RST */
#define IG_FL_LOGGED	0x4	/* log mode: reported once, no more inspection */
#define IG_FL_STLS	0x8	/* the line being read is a STARTTLS command */

/* ig_flows value. */
struct ig_flow {
	__u32 next_seq;		/* next client sequence number to scan (host order) */
	__u32 lit;		/* literal: bytes left to skip, or its length being read */
	__u8 phase;		/* scanner phase (starttls.bpf.h) */
	__u8 flags;		/* IG_FL_* */
	__u8 cand;		/* allowed verbs the verb read so far is a prefix of */
	__u8 vlen;		/* verb bytes read (verb[] keeps the first IG_VERB_LEN) */
	__u8 cause;		/* enum ig_st_cause, once refused */
	__u8 pad[3];
	__u8 verb[IG_VERB_LEN];
};

/* Ring buffer record. */
struct ig_event {
	__u64 ts_ns;		/* CLOCK_MONOTONIC */
	__u32 ifindex;
	__u8 reason;		/* enum ig_reason */
	__u8 family;		/* 4 or 6 */
	__u16 dport;		/* host order */
	__u8 addr[16];		/* source, IPv4 mapped */
	/* action starttls reasons only, else zero */
	__u8 cause;		/* enum ig_st_cause */
	__u8 pad[3];
	__u8 verb[IG_VERB_LEN];	/* refused verb, upper case, NUL padded; never arguments */
};

#endif
