// SPDX-License-Identifier: GPL-2.0
/*
 * Per-packet cost of action starttls (issue #21) with bpf_prog_test_run_opts,
 * as pktcost measures the rest: thread CPU time per packet over `repeat`
 * runs in the kernel, less the fixed cost of the call, median of rounds that
 * interleave the cases. Each case is set against a lower bound in
 * tests/bench/bench.bpf.c (lb_st_*) that does the least work its verdict
 * needs, on imapguard's own ig_flows:
 *
 *   SYN        the flow's entry is created (lb_st_syn)
 *   TLS data   the flow is found, marked TLS (lb_st_tls)
 *   data       before STARTTLS: found, sequence checked, bytes copied out
 *              and the sequence moved on (lb_st_data); imapguard also reads
 *              the command. Driven by st_drive, which gives each run the
 *              next sequence number (a gap would be refused): its own cost
 *              is the harness row, and the lower bound runs under it too.
 *
 * ig_flows holds 60000 other flows. Every case checks its verdict first and
 * that its packets were counted as pass.
 *
 *   stcost [--obj FILE] [--repeat N] [--runs N] [--cpu N]
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
#define MAX_RUNS	32
#define ST_FRAME	256
#define SEQ_BASE	0x10000000u
#define OTHER_FLOWS	60000

enum prog { P_FLOOR, P_TC_FLOOR, P_IG_XDP, P_IG_TC, P_DRIVE, P_LB_SYN, P_LB_TLS, P_LB_DATA };
enum flow { F_NONE, F_OPEN, F_TLS };

struct scase {
	const char *id, *label;
	enum prog prog, target;	/* target: what P_DRIVE tail-calls */
	int family;
	uint16_t sport;
	uint8_t flags;
	const char *payload;
	enum flow flow;
	int expect;
};

#define NOOP	"a NOOP\r\n"
#define ID	"a ID (\"name\" \"Thunderbird\" \"version\" \"115.9.0\")\r\n"
#define TLS	"\x17\x03\x03\x00\x40 application data, whatever the bytes are, never read..."
#define XS(id, label, prog, fam, sport, flags, pl, flow) \
	{ id, label, prog, 0, fam, sport, flags, pl, flow, XDP_PASS }
#define XD(id, label, target, fam, sport, pl) \
	{ id, label, P_DRIVE, target, fam, sport, F_ACK, pl, F_OPEN, XDP_PASS }

static struct scase cases[] = {
	{ "st_floor", "bare XDP_DROP (the floor, for the starttls rows)", P_FLOOR, 0, 4, 1, F_SYN, NULL, F_NONE, XDP_DROP },
	XS("st_syn", "IPv4 SYN to 143, action starttls (flow created)", P_IG_XDP, 4, 41001, F_SYN, NULL, F_NONE),
	XS("st_lb_syn", "lower bound of that: parse, flow entry written, counter", P_LB_SYN, 4, 41001, F_SYN, NULL, F_NONE),
	XS("st_syn6", "IPv6 SYN to 143, action starttls (flow created)", P_IG_XDP, 6, 41002, F_SYN, NULL, F_NONE),
	XS("st_lb6_syn", "lower bound of that", P_LB_SYN, 6, 41002, F_SYN, NULL, F_NONE),
	XS("st_tls", "IPv4 data to 143 on a flow marked TLS (not inspected)", P_IG_XDP, 4, 41003, F_ACK, TLS, F_TLS),
	XS("st_lb_tls", "lower bound of that: parse, flow found, counter", P_LB_TLS, 4, 41003, F_ACK, TLS, F_TLS),
	XS("st_tls6", "IPv6 data to 143 on a flow marked TLS", P_IG_XDP, 6, 41004, F_ACK, TLS, F_TLS),
	XS("st_lb6_tls", "lower bound of that", P_LB_TLS, 6, 41004, F_ACK, TLS, F_TLS),
	{ "st_drive", "harness: next sequence number + tail call to XDP_DROP", P_DRIVE, P_FLOOR, 4, 41005, F_ACK, NOOP, F_OPEN, XDP_DROP },
	XD("st_noop", "IPv4 \"a NOOP\" before STARTTLS (8 bytes scanned), driven", P_IG_XDP, 4, 41006, NOOP),
	XD("st_lb_noop", "lower bound of that: flow, sequence, bytes copied, counter; driven", P_LB_DATA, 4, 41006, NOOP),
	XD("st_id", "IPv4 \"a ID (...)\" before STARTTLS (49 bytes scanned), driven", P_IG_XDP, 4, 41007, ID),
	XD("st_lb_id", "lower bound of that, driven", P_LB_DATA, 4, 41007, ID),
	XD("st_noop6", "IPv6 \"a NOOP\" before STARTTLS, driven", P_IG_XDP, 6, 41008, NOOP),
	XD("st_lb6_noop", "lower bound of that, driven", P_LB_DATA, 6, 41008, NOOP),
	{ "tc_st_floor", "bare tc TC_ACT_SHOT (the tc floor, for the starttls rows)", P_TC_FLOOR, 0, 4, 1, F_SYN, NULL, F_NONE, 2 },
	{ "tc_st_syn", "tc: IPv4 SYN to 143, action starttls", P_IG_TC, 0, 4, 41009, F_SYN, NULL, F_NONE, TC_ACT_OK },
	{ "tc_st_tls", "tc: IPv4 data to 143 on a flow marked TLS", P_IG_TC, 0, 4, 41010, F_ACK, TLS, F_TLS, TC_ACT_OK },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static struct imapguard_bpf *skel;
static struct ig_maps maps;
static struct bpf_object *bobj;
static int fd_floor, fd_tcfloor, fd_drive, fd_jmp, fd_drv, fd_lb[3], fd_flows;
static double ns[NCASES][MAX_RUNS];
static uint32_t reps[NCASES];

/* Mirrors struct st_drive_cfg in bench.bpf.c (a harness, not a shared type). */
struct st_drive_cfg {
	uint32_t seq_off, step, base;
	uint32_t pad;	// cppcheck-suppress unusedStructMember ; layout only
	uint64_t ctr;
};

static int prog_fd(enum prog p)
{
	switch (p) {
	case P_FLOOR: return fd_floor;
	case P_TC_FLOOR: return fd_tcfloor;
	case P_IG_XDP: return bpf_program__fd(skel->progs.ig_xdp);
	case P_IG_TC: return bpf_program__fd(skel->progs.ig_tc);
	case P_DRIVE: return fd_drive;
	default: return fd_lb[p - P_LB_SYN];
	}
}

static struct fspec spec(const struct scase *c)
{
	struct fspec f = { .family = c->family, .l4 = IPPROTO_TCP, .sport = c->sport, .dport = 143,
			   .flags = c->flags, .src = c->family == 4 ? "198.18.7.4" : "2001:db8:7::4",
			   .dst = c->family == 4 ? "198.18.0.1" : "2001:db8::1" };
	return f;
}

/* The case's frame: bench_frame()'s headers, then the payload. */
static size_t frame(const struct scase *c, uint8_t *b)
{
	struct fspec f = spec(c);
	size_t n = bench_frame(&f, b), pl = c->payload ? strlen(c->payload) : 0;

	if (!n || n + pl > ST_FRAME)
		return 0;
	memcpy(b + n, c->payload, pl);
	bench_put32(b + 14 + (c->family == 4 ? 20 : 40) + 4, SEQ_BASE);
	if (c->family == 4) {
		bench_put16(b + 16, 40 + pl);
		bench_put16(b + 24, 0);
		bench_put16(b + 24, bench_csum_fold(bench_csum_add(b + 14, 20, 0)));
	} else {
		bench_put16(b + 18, 20 + pl);
	}
	return n + pl;
}

static void flow_key(const struct scase *c, struct ig_flow_key *k)
{
	struct fspec f = spec(c);
	struct ig_prefix s, d;

	memset(k, 0, sizeof(*k));
	addr_parse(f.src, &s, false);
	addr_parse(f.dst, &d, false);
	memcpy(k->saddr, s.addr, 16);
	memcpy(k->daddr, d.addr, 16);
	k->sport = f.sport;
	k->dport = 143;
}

/* Port 143 under action starttls, the case's flow, the driver. */
static int setup(const struct scase *c, size_t len)
{
	struct ig_port_cfg pc = { .action = IG_ACT_STARTTLS };
	struct st_drive_cfg d = {};
	struct ig_flow fl = { .next_seq = SEQ_BASE, .flags = c->flow == F_TLS ? IG_FL_TLS : 0 };
	struct ig_flow_key k;
	__u32 key = 143, zero = 0;
	int fd;

	(void)len;
	if (bpf_map_update_elem(maps.ports, &key, &pc, BPF_ANY))
		return -errno;
	flow_key(c, &k);
	if (c->flow == F_NONE)
		bpf_map_delete_elem(fd_flows, &k);
	else if (bpf_map_update_elem(fd_flows, &k, &fl, BPF_ANY))
		return -errno;
	if (c->prog != P_DRIVE)
		return 0;
	d.seq_off = 14 + (c->family == 4 ? 20 : 40) + 4;
	d.step = c->payload ? strlen(c->payload) : 0;
	d.base = SEQ_BASE;
	d.ctr = 0;
	fd = prog_fd(c->target);
	if (bpf_map_update_elem(fd_drv, &zero, &d, BPF_ANY) ||
	    bpf_map_update_elem(fd_jmp, &zero, &fd, BPF_ANY))
		return -errno;
	return 0;
}

static int run(const struct scase *c, const uint8_t *b, size_t len, uint32_t repeat,
	       double *cpu_ns, int *retval)
{
	uint8_t out[ST_FRAME * 2];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = b, .data_size_in = len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = repeat);
	struct timespec t0, t1;
	int err;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	err = bpf_prog_test_run_opts(prog_fd(c->prog), &o);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	if (err)
		return err;
	if (cpu_ns)
		*cpu_ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	if (retval)
		*retval = o.retval;
	return 0;
}

static uint64_t passed(void)
{
	int ncpu = libbpf_num_possible_cpus();
	struct ig_counter v[ncpu];
	__u32 idx = IG_R_PASS;
	uint64_t sum = 0;

	if (!bpf_map_lookup_elem(maps.counters, &idx, v))
		for (int i = 0; i < ncpu; i++)
			sum += v[i].packets;
	return sum;
}

/* The fixed cost of one call (repeat 2), median of 5; as pktcost. */
static double overhead(const struct scase *c, const uint8_t *b, size_t len)
{
	double v[5];

	for (int i = 0; i < 5; i++)
		if (run(c, b, len, 2, &v[i], NULL))
			v[i] = 0;
	return bench_pct(v, 5, 0.5);
}

static int measure(size_t i, int r, uint32_t min_repeat)
{
	struct scase *c = &cases[i];
	uint8_t b[ST_FRAME];
	size_t len = frame(c, b);
	uint64_t p0, p1;
	double t, ovh;
	int err, ret;

	if (!len)
		return -EINVAL;
	err = setup(c, len);
	if (!err)
		err = run(c, b, len, 1, NULL, &ret);
	if (err) {
		fprintf(stderr, "stcost: %s: test run failed: %s\n", c->id, strerror(-err));
		return err;
	}
	if (ret != c->expect) {
		fprintf(stderr, "stcost: %s: verdict %d, expected %d\n", c->id, ret, c->expect);
		return -EINVAL;
	}
	ovh = overhead(&cases[c->prog == P_IG_TC || c->prog == P_TC_FLOOR ? NCASES - 3 : 0], b, len);
	setup(c, len);		/* again: the flow and the driver from the start */
	if (!reps[i]) {		/* each call ~40 ms */
		err = run(c, b, len, min_repeat, &t, NULL);
		if (err)
			return err;
		setup(c, len);
		t = t > ovh ? (t - ovh) / min_repeat : 1;
		reps[i] = t * min_repeat >= 40e6 ? min_repeat :
			  t * 2e7 <= 40e6 ? 20000000 : (uint32_t)(40e6 / t);
	}
	p0 = passed();
	err = run(c, b, len, reps[i], &t, NULL);
	p1 = passed();
	if (err)
		return err;
	ns[i][r] = (t - ovh) / (reps[i] - 2);
	if ((c->prog == P_IG_XDP || c->prog == P_IG_TC || (c->prog == P_DRIVE && c->target == P_IG_XDP)) &&
	    p1 - p0 < reps[i]) {
		fprintf(stderr, "stcost: %s: %llu of %u packets passed\n", c->id,
			(unsigned long long)(p1 - p0), reps[i]);
		return -EPROTO;
	}
	return 0;
}

/* Other flows in the LRU, so the case's entry is one among many. */
static int fill_flows(void)
{
	struct ig_flow fl = { .flags = IG_FL_TLS };
	struct ig_flow_key k = { .dport = 143 };

	k.saddr[10] = k.saddr[11] = k.daddr[10] = k.daddr[11] = 0xff;
	k.daddr[12] = 198, k.daddr[13] = 18, k.daddr[15] = 1;
	for (uint32_t i = 0; i < OTHER_FLOWS; i++) {
		k.saddr[12] = 198, k.saddr[13] = 19, k.saddr[14] = i >> 8, k.saddr[15] = i;
		k.sport = 1024 + (i >> 16);
		if (bpf_map_update_elem(fd_flows, &k, &fl, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int load(const char *obj)
{
	static const char *const reuse[] = { "lb_flows", "lb_cnt", NULL };
	static struct ig_cfg cfg = { .nports = 1, .ports = { 143 } };
	int err, fds[2];
	__u32 zero = 0;

	skel = imapguard_bpf__open();
	if (!skel)
		return -errno;
	bpf_map__set_max_entries(skel->maps.ig_flows, 65536);
	bpf_map__set_max_entries(skel->maps.ig_throttle, 4096);
	bpf_map__set_max_entries(skel->maps.ig_bans, 4096);
	bpf_map__set_max_entries(skel->maps.ig_deny, 4096);
	err = imapguard_bpf__load(skel);
	if (err)
		return err;
	fastpath_maps_of(skel->obj, &maps);
	fd_flows = bpf_map__fd(skel->maps.ig_flows);
	cfg.port_bits[0][IG_PORT_WORD(143)] |= IG_PORT_BIT(143);
	cfg.hz = kernel_hz();
	if (bpf_map_update_elem(maps.cfg, &zero, &cfg, BPF_ANY))
		return -errno;
	/* The lower bounds work on imapguard's flows and count in its counters. */
	fds[0] = fd_flows;
	fds[1] = maps.counters;
	bobj = bench_obj_open_reuse(obj, reuse, fds);
	if (!bobj)
		return -ENOENT;
	fd_floor = bench_prog_fd(bobj, "floor_drop");
	fd_tcfloor = bench_prog_fd(bobj, "tc_floor");
	fd_drive = bench_prog_fd(bobj, "st_drive");
	fd_lb[0] = bench_prog_fd(bobj, "lb_st_syn");
	fd_lb[1] = bench_prog_fd(bobj, "lb_st_tls");
	fd_lb[2] = bench_prog_fd(bobj, "lb_st_data");
	fd_jmp = bench_map_fd(bobj, "jmp");
	fd_drv = bench_map_fd(bobj, "st_drv");
	if (fd_floor < 0 || fd_tcfloor < 0 || fd_drive < 0 || fd_lb[0] < 0 || fd_lb[1] < 0 ||
	    fd_lb[2] < 0 || fd_jmp < 0 || fd_drv < 0)
		return -ENOENT;
	return fill_flows();
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "obj", required_argument, NULL, 'o' }, { "repeat", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' }, { "cpu", required_argument, NULL, 'c' }, {},
	};
	const char *obj = BENCH_OBJ_DEFAULT;
	uint32_t repeat = 1000000;
	int runs = 5, cpu = -1, opt, err;
	cpu_set_t set;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'o': obj = optarg; break;
		case 'r': repeat = strtoul(optarg, NULL, 10); break;
		case 'n': runs = atoi(optarg); break;
		case 'c': cpu = atoi(optarg); break;
		default: return 1;
		}
	}
	if (runs < 1 || runs > MAX_RUNS || repeat < 1000) {
		fprintf(stderr, "stcost: --runs 1..%d, --repeat >= 1000\n", MAX_RUNS);
		return 1;
	}
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	err = load(obj);
	if (err)
		fprintf(stderr, "stcost: Couldn't load: %s\n", strerror(-err));
	for (int r = 0; !err && r < runs; r++)
		for (size_t i = 0; !err && i < NCASES; i++)
			err = measure(i, r, repeat);
	for (size_t i = 0; !err && i < NCASES; i++)
		bench_emit("pkt", cases[i].id, cases[i].label, "ns", ns[i], runs,
			   "action starttls; repeat %u", reps[i]);
	bpf_object__close(bobj);
	imapguard_bpf__destroy(skel);
	return err != 0;
}
