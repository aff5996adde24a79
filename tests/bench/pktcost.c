// SPDX-License-Identifier: GPL-2.0
/*
 * Per-packet cost of the fast path with bpf_prog_test_run_opts: every case
 * runs `repeat` times in the kernel (at least --repeat, more for cheap cases
 * so one call lasts ~40 ms), for several rounds that interleave the cases
 * (noise hits all of them alike). The figure is thread CPU time per packet,
 * less the fixed cost of the call: the kernel's own per-run duration is whole
 * nanoseconds, too coarse for a 4 ns floor (it is printed as a cross-check).
 *
 * Maps are full-size and filled as fill.h describes before anything is
 * measured. Each case checks its verdict first, and the note names the
 * counter (verdict reason) that took the run's packets.
 *
 *   pktcost [--obj FILE] [--repeat N] [--runs N] [--only ID,ID...] [--cpu N] [--diag]
 *   pktcost --profile ID --seconds S      (loop one case, for perf record)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* sched_setaffinity */
#endif
#include <getopt.h>
#include <sched.h>
#include <unistd.h>
#include <linux/if_link.h>
#include "fill.h"	/* common.h first: the skeleton embeds struct ig_cfg */
#include "imapguard.skel.h"

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define MAX_RUNS	32
#define NBANS		(1048576 - 4096)	/* 1M bans, less room for the cases' own */
#define REASON_NONE	-1

/* P_BENCH: the bench object's program named by the case's bprog. */
enum prog { P_FLOOR, P_PASS, P_TC_FLOOR, P_IG_XDP, P_IG_TC, P_DRIVE, P_BENCH };
enum rate { R_UNDER, R_UNDER_SRC, R_OVER, R_DEFAULT };	/* R_UNDER_SRC: no subnet budget */

struct pcase {
	const char *id, *label;
	enum prog prog;
	enum prog target;	/* P_DRIVE: tail-call target */
	int drive;		/* enum drive_mode */
	struct fspec f;
	uint8_t act143;
	enum rate rate;
	int expect;		/* retval */
	int reason;		/* counter expected to take the packets, or REASON_NONE */
	const char *bprog;	/* P_BENCH (as prog or target): its program */
};

struct result {
	uint32_t repeat;	/* packets per call */
	double ns[MAX_RUNS];	/* CPU time per packet, each round */
	double ovh[MAX_RUNS];	/* fixed cost of one call, subtracted */
	uint32_t kdur[MAX_RUNS];	/* the kernel's own figure, whole ns */
	char seen[96];		/* reason that took the packets */
};

#define V4(src_, dport_, flags_) { .family = 4, .l4 = IPPROTO_TCP, .src = src_, .dst = "198.18.0.1", \
				  .dport = dport_, .flags = flags_, .syn_opts = (flags_) == F_SYN }
#define V6(src_, dport_, flags_) { .family = 6, .l4 = IPPROTO_TCP, .src = src_, .dst = "2001:db8::1", \
				  .dport = dport_, .flags = flags_, .syn_opts = (flags_) == F_SYN }
#define U4 { .family = 4, .l4 = IPPROTO_UDP, .src = SRC4_CLEAN, .dst = "198.18.0.1", .dport = 53 }
#define U6 { .family = 6, .l4 = IPPROTO_UDP, .src = SRC6_CLEAN, .dst = "2001:db8::1", .dport = 53 }

static struct pcase cases[] = {
	{ "floor", "bare XDP_DROP (the floor)", P_FLOOR, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, REASON_NONE, NULL },
	{ "parse_pass", "bare parse + XDP_PASS (lower bound of the unprotected rows)", P_PASS, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, NULL },
	{ "v4_udp", "IPv4 non-TCP (UDP to 53)", P_IG_XDP, 0, 0, U4, IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, NULL },
	{ "lb_udp", "lower bound: bare parse + XDP_PASS of that UDP frame", P_PASS, 0, 0, U4, IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, NULL },
	{ "v4_tcp22", "IPv4 SYN to unprotected port 22", P_IG_XDP, 0, 0, V4(SRC4_CLEAN, 22, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, NULL },
	{ "v4_143_drop", "IPv4 SYN to 143, action drop", P_IG_XDP, 0, 0, V4(SRC4_CLEAN, 143, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, IG_R_DROP, NULL },
	{ "lb_143", "lower bound of that: parse, port, one counter (no port table, allow list or event)", P_BENCH, 0, 0, V4(SRC4_CLEAN, 143, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, REASON_NONE, "lb_143" },
	{ "v4_993_under", "IPv4 SYN to 993 under budget (one source)", P_IG_XDP, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, IG_R_PASS, NULL },
	{ "lb_993", "lower bound of that: clock, ban summary (and entry), compare-and-swap on both buckets, counter", P_BENCH, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, "lb_993" },
	{ "v4_993_trie", "IPv4 SYN to 993 under budget, deny prefixes in the source's /16 (trie walked)", P_IG_XDP, 0, 0, V4(SRC4_TRIE, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, IG_R_PASS, NULL },
	{ "lb_993_trie", "lower bound of that: lb_993 and the deny trie", P_BENCH, 0, 0, V4(SRC4_TRIE, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, "lb_993_trie" },
	{ "v4_993_src", "IPv4 SYN to 993 under budget, source budget only (no subnet_rate)", P_IG_XDP, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER_SRC, XDP_PASS, IG_R_PASS, NULL },
	{ "lb_993_src", "lower bound of that: clock, ban summary, compare-and-swap on the source bucket, counter", P_BENCH, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER_SRC, XDP_PASS, REASON_NONE, "lb_993_src" },
	{ "v4_993_over", "IPv4 SYN to 993 over budget", P_IG_XDP, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_OVER, XDP_DROP, IG_R_SYN_RATE, NULL },
	{ "lb_993_over", "lower bound of that: clock, ban summary, source bucket read, counter", P_BENCH, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_OVER, XDP_DROP, REASON_NONE, "lb_993_over" },
	{ "v4_993_ack", "IPv4 ACK to 993 (established connection)", P_IG_XDP, 0, 0, V4(SRC4_CLEAN, 993, F_ACK), IG_ACT_DROP, R_UNDER, XDP_PASS, IG_R_PASS, NULL },
	{ "lb_993_ack", "lower bound of that: clock, ban summary, counter", P_BENCH, 0, 0, V4(SRC4_CLEAN, 993, F_ACK), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, "lb_993_ack" },
	{ "v4_993_banned", "IPv4 SYN to 993 from a banned source", P_IG_XDP, 0, 0, V4(SRC4_BANNED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, IG_R_BAN, NULL },
	{ "lb_993_banned", "lower bound of that: clock, ban summary and entry, counter", P_BENCH, 0, 0, V4(SRC4_BANNED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, REASON_NONE, "lb_993" },
	{ "v4_993_denied", "IPv4 SYN to 993 from a deny-listed source", P_IG_XDP, 0, 0, V4(SRC4_DENIED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, IG_R_DENY, NULL },
	{ "lb_993_denied", "lower bound of that: clock, ban summary and the host entry, counter", P_BENCH, 0, 0, V4(SRC4_DENIED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, REASON_NONE, "lb_993" },
	{ "v4_993_allowed", "IPv4 SYN to 993 from an allow-listed source", P_IG_XDP, 0, 0, V4(SRC4_ALLOWED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, IG_R_ALLOW, NULL },
	{ "lb_993_allowed", "lower bound of that: the allow trie, counter", P_BENCH, 0, 0, V4(SRC4_ALLOWED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, "lb_allow_993" },
	{ "v6_udp", "IPv6 non-TCP (UDP to 53)", P_IG_XDP, 0, 0, U6, IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, NULL },
	{ "lb6_udp", "lower bound: bare parse + XDP_PASS of that UDP frame", P_PASS, 0, 0, U6, IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, NULL },
	{ "v6_tcp22", "IPv6 SYN to unprotected port 22", P_IG_XDP, 0, 0, V6(SRC6_CLEAN, 22, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, NULL },
	{ "lb6_tcp22", "lower bound: bare parse + XDP_PASS of that frame", P_PASS, 0, 0, V6(SRC6_CLEAN, 22, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, NULL },
	{ "v6_143_drop", "IPv6 SYN to 143, action drop", P_IG_XDP, 0, 0, V6(SRC6_CLEAN, 143, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, IG_R_DROP, NULL },
	{ "lb6_143", "lower bound of that: parse, port, one counter", P_BENCH, 0, 0, V6(SRC6_CLEAN, 143, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, REASON_NONE, "lb_143" },
	{ "v6_993_under", "IPv6 SYN to 993 under budget (one source)", P_IG_XDP, 0, 0, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, IG_R_PASS, NULL },
	{ "lb6_993", "lower bound of that: clock, ban summary (and entries), compare-and-swap on both buckets, counter", P_BENCH, 0, 0, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, "lb_993" },
	{ "v6_993_over", "IPv6 SYN to 993 over budget", P_IG_XDP, 0, 0, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_OVER, XDP_DROP, IG_R_SYN_RATE, NULL },
	{ "lb6_993_over", "lower bound of that: clock, ban summary, source bucket read, counter", P_BENCH, 0, 0, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_OVER, XDP_DROP, REASON_NONE, "lb_993_over" },
	{ "v6_993_banned", "IPv6 SYN to 993 from a banned /128", P_IG_XDP, 0, 0, V6(SRC6_BANNED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, IG_R_BAN, NULL },
	{ "lb6_993_banned", "lower bound of that: clock, ban summary and entry, counter", P_BENCH, 0, 0, V6(SRC6_BANNED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, REASON_NONE, "lb_993" },
	{ "v6_993_banned64", "IPv6 SYN to 993 from a banned /64", P_IG_XDP, 0, 0, V6(SRC6_BANNED64, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, IG_R_BAN, NULL },
	{ "lb6_993_banned64", "lower bound of that: clock, ban summary, /128 and /64 entries, counter", P_BENCH, 0, 0, V6(SRC6_BANNED64, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, REASON_NONE, "lb_993" },
	{ "v6_993_allowed", "IPv6 SYN to 993 from an allow-listed source", P_IG_XDP, 0, 0, V6(SRC6_ALLOWED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, IG_R_ALLOW, NULL },
	{ "lb6_993_allowed", "lower bound of that: the allow trie, counter", P_BENCH, 0, 0, V6(SRC6_ALLOWED, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, "lb_allow_993" },
	/* Driven: a different packet every run. */
	{ "drive_restore", "harness: restore frame + tail call to XDP_DROP", P_DRIVE, P_FLOOR, DRIVE_RESTORE, V4(SRC4_CLEAN, 143, F_SYN), IG_ACT_REJECT, R_UNDER, XDP_DROP, REASON_NONE, NULL },
	{ "v4_143_reject", "IPv4 SYN to 143, action reject (RST sent)", P_DRIVE, P_IG_XDP, DRIVE_RESTORE, V4(SRC4_CLEAN, 143, F_SYN), IG_ACT_REJECT, R_UNDER, XDP_TX, IG_R_REJECT, NULL },
	{ "lb_143_reject", "lower bound of that: parse, port, counter, the RST (imapguard's rst.bpf.h), same harness", P_DRIVE, P_BENCH, DRIVE_RESTORE, V4(SRC4_CLEAN, 143, F_SYN), IG_ACT_REJECT, R_UNDER, XDP_TX, REASON_NONE, "lb_143_reject" },
	{ "drive_rot6", "harness: rotate source + tail call to XDP_DROP", P_DRIVE, P_FLOOR, DRIVE_ROT6, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_DROP, REASON_NONE, NULL },
	{ "v6_993_rot", "IPv6 SYN to 993 under budget, 512k known sources in turn (cache-cold)", P_DRIVE, P_IG_XDP, DRIVE_ROT6, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, IG_R_PASS, NULL },
	{ "lb6_993_rot", "lower bound of that: clock, ban summary, admission slots of source and subnet, counter, same harness", P_DRIVE, P_BENCH, DRIVE_ROT6, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, XDP_PASS, REASON_NONE, "lb_993_seen" },
	{ "drive_rand6", "harness: random source + tail call to XDP_DROP", P_DRIVE, P_FLOOR, DRIVE_RAND6, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_DEFAULT, XDP_DROP, REASON_NONE, NULL },
	{ "v6_993_spoofed", "IPv6 SYN to 993 from random spoofed sources (never seen; spoofed flood per packet)", P_DRIVE, P_IG_XDP, DRIVE_RAND6, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_DEFAULT, XDP_PASS, IG_R_PASS, NULL },
	{ "lb6_993_spoofed", "lower bound of that: clock, ban summary, admission slots of source and subnet, counter, same harness", P_DRIVE, P_BENCH, DRIVE_RAND6, V6(SRC6_CLEAN, 993, F_SYN), IG_ACT_DROP, R_DEFAULT, XDP_PASS, REASON_NONE, "lb_993_seen" },
	/* tc entry point */
	{ "tc_floor", "bare tc TC_ACT_SHOT (the tc floor)", P_TC_FLOOR, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, TC_ACT_SHOT, REASON_NONE, NULL },
	{ "tc_v4_tcp22", "tc: IPv4 SYN to unprotected port 22", P_IG_TC, 0, 0, V4(SRC4_CLEAN, 22, F_SYN), IG_ACT_DROP, R_UNDER, TC_ACT_OK, REASON_NONE, NULL },
	{ "lb_tc_tcp22", "lower bound of that: bare parse + TC_ACT_OK", P_BENCH, 0, 0, V4(SRC4_CLEAN, 22, F_SYN), IG_ACT_DROP, R_UNDER, TC_ACT_OK, REASON_NONE, "tc_floor_pass" },
	{ "tc_v4_143_drop", "tc: IPv4 SYN to 143, action drop", P_IG_TC, 0, 0, V4(SRC4_CLEAN, 143, F_SYN), IG_ACT_DROP, R_UNDER, TC_ACT_SHOT, IG_R_DROP, NULL },
	{ "lb_tc_143", "lower bound of that: parse, port, one counter", P_BENCH, 0, 0, V4(SRC4_CLEAN, 143, F_SYN), IG_ACT_DROP, R_UNDER, TC_ACT_SHOT, REASON_NONE, "lb_tc_143" },
	{ "tc_v4_993_under", "tc: IPv4 SYN to 993 under budget (one source)", P_IG_TC, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, TC_ACT_OK, IG_R_PASS, NULL },
	{ "lb_tc_993", "lower bound of that: clock, ban summary, compare-and-swap on both buckets, counter", P_BENCH, 0, 0, V4(SRC4_CLEAN, 993, F_SYN), IG_ACT_DROP, R_UNDER, TC_ACT_OK, REASON_NONE, "lb_tc_993" },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))
static struct result res[NCASES];

static struct imapguard_bpf *skel;
static struct ig_maps maps;
static struct bpf_object *bobj;
static int fd_floor, fd_pass, fd_tcfloor, fd_drive, fd_jmp, fd_drv;

/* The program p of case c (p is c->prog or c->target). */
static int prog_fd(const struct pcase *c, enum prog p)
{
	switch (p) {
	case P_FLOOR: return fd_floor;
	case P_PASS: return fd_pass;
	case P_TC_FLOOR: return fd_tcfloor;
	case P_BENCH: return bench_prog_fd(bobj, c->bprog);
	case P_IG_XDP: return bpf_program__fd(skel->progs.ig_xdp);
	case P_IG_TC: return bpf_program__fd(skel->progs.ig_tc);
	default: return fd_drive;
	}
}

static void set_port(uint16_t port, uint8_t action, enum rate r)
{
	struct ig_port_cfg pc = { .action = action, .slot = port == 993,
				  .src_plen4 = 32, .src_plen6 = 64, .sub_plen4 = 24, .sub_plen6 = 48 };
	__u32 key = port;

	if (port == 993) {
		/* Under: the same GCRA code, with a budget no run can spend. */
		bool under = r == R_UNDER || r == R_UNDER_SRC;
		/* Over: 1/s, so that no token comes back while the warm-up (up to
		 * a second on a loaded machine) spends them; else 20/s. */
		uint64_t iv = under ? 1 : r == R_OVER ? 1000000000ULL : 50000000ULL;

		pc.src_interval_ns = iv;
		pc.src_tol_ns = under ? 1000000000000000ULL : 39 * iv;	/* burst 40 */
		pc.sub_interval_ns = under ? 1 : 5000000ULL;		/* 200/s */
		pc.sub_tol_ns = under ? 1000000000000000ULL : 399 * 5000000ULL;
		if (r == R_UNDER_SRC)
			pc.sub_interval_ns = pc.sub_tol_ns = 0;
	}
	bpf_map_update_elem(maps.ports, &key, &pc, BPF_ANY);
}

/* Full buckets again for the case's own source, so cases do not inherit
 * each other's token state. */
static void reset_source(const struct fspec *f)
{
	struct ig_thr_key k;
	struct ig_thr_val v = {};
	struct ig_prefix p;

	if (addr_parse(f->src, &p, false))
		return;
	bench_thr_key(&k, p.addr, f->family == 4 ? 128 : 64, 993, 0);
	bpf_map_update_elem(maps.throttle, &k, &v, BPF_ANY);
	bench_thr_key(&k, p.addr, f->family == 4 ? 120 : 48, 993, 1);
	bpf_map_update_elem(maps.throttle, &k, &v, BPF_ANY);
}

static void counters(uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct ig_counter v[ncpu];

	for (__u32 i = 0; i < IG_C_MAX; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(maps.counters, &i, v))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[i] += v[c].packets;
	}
}

static int setup_case(struct pcase *c, uint8_t *frame, size_t *len)
{
	struct drive_cfg d = {};
	__u32 zero = 0;
	int fd;

	*len = bench_frame(&c->f, frame);
	if (!*len)
		return -EINVAL;
	set_port(143, c->act143, R_UNDER);
	set_port(993, IG_ACT_PASS, c->rate);
	reset_source(&c->f);
	if (c->prog != P_DRIVE)
		return 0;
	d.mode = c->drive;
	d.len = *len;
	d.rot_bits = 19;
	d.rng = 0x2545f4914f6cdd1dULL ^ bench_now_ns();
	memcpy(d.tmpl, frame, *len);
	fd = prog_fd(c, c->target);
	if (bpf_map_update_elem(fd_drv, &zero, &d, BPF_ANY) ||
	    bpf_map_update_elem(fd_jmp, &zero, &fd, BPF_ANY))
		return -errno;
	return 0;
}

/* One BPF_PROG_RUN; *cpu_ns: thread CPU time of the whole call. */
static int run(struct pcase *c, const uint8_t *frame, size_t len, uint32_t repeat,
	       double *cpu_ns, uint32_t *kdur, int *retval)
{
	uint8_t out[FRAME_MAX * 2];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = repeat);
	struct timespec a, b;
	int err;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	err = bpf_prog_test_run_opts(prog_fd(c, c->prog), &o);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	if (err)
		return err;
	if (cpu_ns)
		*cpu_ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	if (kdur)
		*kdur = o.duration;
	if (retval)
		*retval = o.retval;
	return 0;
}

/*
 * The fixed cost of one call: with repeat > 1 the kernel swaps the program
 * into the XDP dispatcher and out again (text patching, ~1 ms here), which
 * would add ~1 ns to every packet of a 1e6 run. Measured with repeat 2 once
 * per round and hook, and subtracted; the median of 5 calls, as it is noisy.
 */
static double ovh_ns[2];	/* [0] XDP, [1] tc */

static bool is_tc(const struct pcase *c)
{
	return c->prog == P_TC_FLOOR || c->prog == P_IG_TC ||
	       (c->prog == P_BENCH && bpf_program__type(bpf_object__find_program_by_name(
			bobj, c->bprog)) == BPF_PROG_TYPE_SCHED_CLS);
}

static void measure_overhead(void)
{
	static struct pcase probe[2] = {
		{ .prog = P_FLOOR, .f = V4(SRC4_CLEAN, 993, F_SYN) },
		{ .prog = P_TC_FLOOR, .f = V4(SRC4_CLEAN, 993, F_SYN) },
	};
	uint8_t frame[FRAME_MAX];
	double v[5];

	for (int h = 0; h < 2; h++) {
		size_t len = bench_frame(&probe[h].f, frame);

		for (int i = 0; i < 5; i++)
			if (run(&probe[h], frame, len, 2, &v[i], NULL, NULL))
				v[i] = 0;
		ovh_ns[h] = bench_pct(v, 5, 0.5);
	}
}

/* One timed round of a case; records which reason took the packets. */
static int measure(struct pcase *c, struct result *m, int r, uint32_t min_repeat)
{
	uint64_t before[IG_C_MAX], after[IG_C_MAX], best = 0;
	uint8_t frame[FRAME_MAX];
	int err, ret, top = REASON_NONE;
	double t, warm, ovh;
	size_t len;

	/* Warm caches and spend budgets, then check the verdict. */
	err = setup_case(c, frame, &len);
	if (!err)	/* the first round's warm-up also sizes the calls */
		err = run(c, frame, len, m->repeat ? 20000 : min_repeat, &warm, NULL, NULL);
	/* A random source lands in a banned subnet ~1% of the time: a random
	 * case's verdict gets a few draws. */
	for (int i = 0; !err && i < (c->prog == P_DRIVE && c->drive == DRIVE_RAND6 ? 5 : 1); i++) {
		err = run(c, frame, len, 1, NULL, NULL, &ret);
		if (ret == c->expect)
			break;
	}
	if (err) {
		fprintf(stderr, "pktcost: %s: test run failed: %s\n", c->id, strerror(-err));
		return err;
	}
	if (ret != c->expect) {
		fprintf(stderr, "pktcost: %s: verdict %d, expected %d\n", c->id, ret, c->expect);
		return -EINVAL;
	}
	ovh = ovh_ns[is_tc(c)];
	/* Chosen once: every call lasts >= ~40 ms, so the overhead is small. */
	if (!m->repeat) {
		t = warm > ovh ? (warm - ovh) / min_repeat : 1;
		m->repeat = t * min_repeat >= 40e6 ? min_repeat :
			    t * 2e7 <= 40e6 ? 20000000 : (uint32_t)(40e6 / t);
	}
	counters(before);
	err = run(c, frame, len, m->repeat, &t, &m->kdur[r], NULL);
	if (err)
		return err;
	counters(after);
	m->ns[r] = (t - ovh) / (m->repeat - 2);
	m->ovh[r] = ovh;
	/* The verdict that took the packets; extra counters (new-state budget
	 * spent, events sampled) can grow by more than one a packet. */
	for (int i = 0; i < IG_R_MAX; i++)
		if (after[i] - before[i] > best) {
			best = after[i] - before[i];
			top = i;
		}
	if (top == REASON_NONE)
		snprintf(m->seen, sizeof(m->seen), "no counter");
	else
		snprintf(m->seen, sizeof(m->seen), "%s %.1f%%", reason_name(top),
			 100.0 * best / m->repeat);
	if (after[IG_C_NEW_BUCKET_SKIP] > before[IG_C_NEW_BUCKET_SKIP])
		snprintf(m->seen + strlen(m->seen), sizeof(m->seen) - strlen(m->seen),
			 ", untracked %.1f%%", 100.0 * (after[IG_C_NEW_BUCKET_SKIP] -
						    before[IG_C_NEW_BUCKET_SKIP]) / m->repeat);
	if (c->reason != REASON_NONE && top != c->reason)
		fprintf(stderr, "pktcost: %s: packets went to '%s', expected '%s'\n", c->id,
			reason_name(top), reason_name(c->reason));
	return 0;
}

static int fill(void)
{
	uint64_t t0 = bench_now_ns();
	static struct ig_cfg cfg = { .nports = 2, .ports = { 143, 993 } };
	const char *what = "config";
	__u32 zero = 0;
	int err;

	for (int i = 0; i < 2; i++)
		cfg.port_bits[0][IG_PORT_WORD(cfg.ports[i])] |= IG_PORT_BIT(cfg.ports[i]);
	cfg.hz = kernel_hz();	/* as apply_policy() sets it */
	err = bpf_map_update_elem(maps.cfg, &zero, &cfg, BPF_ANY) ? -errno : 0;
	if (!err && (what = "bans"))
		err = bench_fill_bans(&maps, NBANS);
	if (!err && (what = "throttle"))
		err = bench_fill_throttle(maps.throttle, 900000, 993);
	if (!err && (what = "deny"))
		err = bench_fill_deny(&maps, 90000, 10000);
	if (!err && (what = "allow"))
		err = bench_fill_allow(&maps);
	if (!err && (what = "subnet bans"))
		err = bench_fill_subnet_bans(&maps, 1000);
	if (err) {
		fprintf(stderr, "pktcost: Couldn't fill %s: %s\n", what, strerror(-err));
		return err;
	}
	/* Counted back: the LRU may already have evicted some. */
	fprintf(stderr, "pktcost: maps filled in %.1f s: throttle %ld buckets, bans + deny hosts %ld, "
		"allow %ld, subnet bans %ld\n", (bench_now_ns() - t0) / 1e9,
		map_count(maps.throttle), map_count(maps.bans), map_count(maps.allow),
		map_count(maps.banpfx));
	return 0;
}

static int load(const char *obj)
{
	static const char *const reuse[] = { "lb_bans", "lb_thr", "lb_bansum", "lb_allow", "lb_deny", NULL };
	int err, fds[5];

	skel = imapguard_bpf__open();
	if (!skel) {
		fprintf(stderr, "pktcost: Couldn't open the fast path: %s\n", strerror(errno));
		return -errno;
	}
	/* 1M bans and the deny list's 100k hosts share ig_bans. */
	bpf_map__set_max_entries(skel->maps.ig_bans, NBANS + 131072);
	err = imapguard_bpf__load(skel);
	if (err) {
		fprintf(stderr, "pktcost: Couldn't load the fast path: %s\n", strerror(-err));
		return err;
	}
	fastpath_maps_of(skel->obj, &maps);
	/* The lower bounds look up imapguard's own full maps. */
	fds[0] = maps.bans;
	fds[1] = maps.throttle;
	fds[2] = maps.bansum;
	fds[3] = maps.allow;
	fds[4] = maps.deny;
	bobj = bench_obj_open_reuse(obj, reuse, fds);
	if (!bobj)
		return -ENOENT;
	fd_floor = bench_prog_fd(bobj, "floor_drop");
	fd_pass = bench_prog_fd(bobj, "floor_pass");
	fd_tcfloor = bench_prog_fd(bobj, "tc_floor");
	fd_drive = bench_prog_fd(bobj, "drive");
	fd_jmp = bench_map_fd(bobj, "jmp");
	fd_drv = bench_map_fd(bobj, "drv");
	for (size_t i = 0; i < NCASES; i++)
		if (cases[i].bprog && bench_prog_fd(bobj, cases[i].bprog) < 0) {
			fprintf(stderr, "pktcost: %s: no program '%s' in %s\n", cases[i].id,
				cases[i].bprog, obj);
			return -ENOENT;
		}
	return fd_floor < 0 || fd_pass < 0 || fd_tcfloor < 0 || fd_drive < 0 || fd_jmp < 0 ||
	       fd_drv < 0 ? -ENOENT : 0;
}

/*
 * Where the time goes: the same cases with one structure taken out of the
 * path. Clearing an ig_cfg.flags bit makes the fast path skip that LPM
 * trie; emptying the ban hash removes its two lookups. Diagnostics only:
 * these are not configurations anyone runs.
 */
struct diag {
	const char *id, *cs, *label;
	__u32 clear;		/* ig_cfg.flags bits cleared */
	bool no_bans;		/* run after emptying ig_bans */
};

static const struct diag diags[] = {
	{ "d_143_notries", "v4_143_drop", "IPv4 SYN to 143 drop, no LPM lookup", IG_F_ALLOW | IG_F_DENY | IG_F_BANPFX, false },
	{ "d_993_noallow", "v4_993_under", "IPv4 SYN to 993 under budget, allow trie skipped", IG_F_ALLOW, false },
	{ "d_993_nobanpfx", "v4_993_under", "IPv4 SYN to 993 under budget, subnet-ban trie skipped", IG_F_BANPFX, false },
	{ "d_993_notries", "v4_993_under", "IPv4 SYN to 993 under budget, no LPM lookup", IG_F_ALLOW | IG_F_DENY | IG_F_BANPFX, false },
	{ "d_rot_notries", "v6_993_rot", "IPv6 cache-cold 993, no LPM lookup", IG_F_ALLOW | IG_F_DENY | IG_F_BANPFX, false },
	{ "d_spoof_notries", "v6_993_spoofed", "IPv6 spoofed 993, no LPM prefilter or lookup", IG_F_ALLOW | IG_F_DENY | IG_F_BANPFX, false },
	{ "d_rot_nobans", "v6_993_rot", "IPv6 cache-cold 993, no LPM lookup, ban/deny host hash empty", IG_F_ALLOW | IG_F_DENY | IG_F_BANPFX, true },
};
#define NDIAGS (sizeof(diags) / sizeof(diags[0]))
static struct result dres[NDIAGS];

/* Read ig_cfg.flags into *old (if given), then write new. */
static int cfg_flags(__u32 *old, __u32 new)
{
	struct ig_cfg cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(maps.cfg, &zero, &cfg))
		return -errno;
	if (old)
		*old = cfg.flags;
	cfg.flags = new;
	return bpf_map_update_elem(maps.cfg, &zero, &cfg, BPF_ANY) ? -errno : 0;
}

static int empty_bans(void)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	struct ig_ban_key *k = calloc(BATCH, sizeof(*k));
	struct ig_ban_val *v = calloc(BATCH, sizeof(*v));
	__u32 batch, n;
	int err = 0, ret;
	bool first = true;

	if (!k || !v)
		err = -ENOMEM;
	for (int i = 0; !err && i < 1024; i++) {
		n = BATCH;
		ret = bpf_map_lookup_and_delete_batch(maps.bans, first ? NULL : &batch, &batch,
						      k, v, &n, &o);
		first = false;
		if (ret && errno != ENOENT)
			err = -errno;
		if (ret || !n)
			break;
	}
	free(k);
	free(v);
	return err;
}

static struct pcase *find_case(const char *id);

/* Whether id is one of the comma-separated ids in only (NULL: all). */
static bool selected(const char *only, const char *id)
{
	size_t n = strlen(id);

	for (const char *p = only; p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (!strncmp(p, id, n) && (p[n] == ',' || !p[n]))
			return true;
	return !only;
}

/* One round of diagnostic d (run interleaved with the cases it explains). */
static int run_diag(size_t d, int r, uint32_t repeat)
{
	struct pcase *c = find_case(diags[d].cs);
	__u32 flags;
	int err;

	if (!c)
		return -EINVAL;
	err = cfg_flags(&flags, 0);
	if (!err)
		err = cfg_flags(NULL, flags & ~diags[d].clear);
	if (!err)
		err = measure(c, &dres[d], r, repeat);
	cfg_flags(NULL, flags);
	return err;
}

static struct pcase *find_case(const char *id)
{
	for (size_t i = 0; i < NCASES; i++)
		if (!strcmp(cases[i].id, id))
			return &cases[i];
	fprintf(stderr, "pktcost: no case '%s'\n", id);
	return NULL;
}

/* Loop one case for `seconds`, for a profiler attached from outside. */
static int profile(struct pcase *c, double seconds, uint32_t repeat)
{
	uint64_t end = bench_now_ns() + (uint64_t)(seconds * 1e9);
	uint8_t frame[FRAME_MAX];
	size_t len;
	int err = setup_case(c, frame, &len);

	fprintf(stderr, "pktcost: profiling %s (pid %d)\n", c->id, getpid());
	for (int i = 0; !err && i < 100000 && bench_now_ns() < end; i++)
		err = run(c, frame, len, repeat, NULL, NULL, NULL);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "obj", required_argument, NULL, 'o' }, { "repeat", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' }, { "only", required_argument, NULL, 'O' },
		{ "cpu", required_argument, NULL, 'c' }, { "profile", required_argument, NULL, 'p' },
		{ "seconds", required_argument, NULL, 's' }, { "diag", no_argument, NULL, 'd' }, {},
	};
	const char *obj = BENCH_OBJ_DEFAULT, *only = NULL, *prof = NULL;
	uint32_t repeat = 1000000;
	int runs = 5, cpu = -1, opt, err;
	bool diag = false;
	double seconds = 10;
	cpu_set_t set;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'o': obj = optarg; break;
		case 'r': repeat = strtoul(optarg, NULL, 10); break;
		case 'n': runs = atoi(optarg); break;
		case 'O': only = optarg; break;
		case 'c': cpu = atoi(optarg); break;
		case 'p': prof = optarg; break;
		case 's': seconds = atof(optarg); break;
		case 'd': diag = true; break;
		default: return 1;
		}
	}
	if (runs < 1 || runs > MAX_RUNS || repeat < 1000) {
		fprintf(stderr, "pktcost: --runs 1..%d, --repeat >= 1000\n", MAX_RUNS);
		return 1;
	}
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	err = load(obj);
	if (!err)
		err = fill();
	if (!err && prof) {
		struct pcase *c = NULL;
		__u32 flags;

		/* A diagnostic id profiles its case with its structure taken out. */
		for (size_t d = 0; d < NDIAGS; d++)
			if (!strcmp(diags[d].id, prof) && !cfg_flags(&flags, 0)) {
				cfg_flags(NULL, flags & ~diags[d].clear);
				if (diags[d].no_bans)
					empty_bans();
				prof = diags[d].cs;
			}
		c = find_case(prof);
		err = c ? profile(c, seconds, repeat) : -EINVAL;
		goto out;
	}
	for (int r = 0; !err && r < runs; r++) {
		measure_overhead();
		for (size_t i = 0; !err && i < NCASES; i++)
			if (selected(only, cases[i].id))
				err = measure(&cases[i], &res[i], r, repeat);
		for (size_t d = 0; !err && diag && d < NDIAGS; d++)
			if (!diags[d].no_bans)
				err = run_diag(d, r, repeat);
	}
	/* Destructive diagnostics last: they empty the ban map. */
	if (!err && diag)
		err = empty_bans();
	for (int r = 0; !err && diag && r < runs; r++)
		for (size_t d = 0; !err && d < NDIAGS; d++)
			if (diags[d].no_bans)
				err = run_diag(d, r, repeat);
	for (size_t i = 0; !err && i < NCASES; i++) {
		double k[MAX_RUNS];
		if (!selected(only, cases[i].id))
			continue;
		double o[MAX_RUNS];

		for (int r = 0; r < runs; r++) {
			k[r] = res[i].kdur[r];
			o[r] = res[i].ovh[r];
		}
		bench_emit("pkt", cases[i].id, cases[i].label, "ns", res[i].ns, runs,
			   "%s; repeat %u; kernel's whole-ns figure %.0f; call overhead %.2f ms subtracted",
			   res[i].seen, res[i].repeat, bench_pct(k, runs, 0.5),
			   bench_pct(o, runs, 0.5) / 1e6);
	}
	for (size_t d = 0; !err && diag && d < NDIAGS; d++)
		bench_emit("diag", diags[d].id, diags[d].label, "ns", dres[d].ns, runs, "%s",
			   dres[d].seen);
out:
	bpf_object__close(bobj);
	imapguard_bpf__destroy(skel);
	return err != 0;
}
