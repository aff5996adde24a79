// SPDX-License-Identifier: GPL-2.0
/*
 * Line-rate frame generator for the drop-rate benchmark, the way xdp-tools'
 * xdp-trafficgen works: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES runs a
 * program that returns XDP_TX, and the kernel sends each frame out of the
 * given interface (a veth: the frames arrive at its peer's NAPI, as from a
 * NIC). No socket, no skb on the sending side, so the generator costs a
 * fraction of what the receiver does, and generator and receiver can share
 * one CPU: the figure is what that CPU can drop.
 *
 * Some kernels refuse live frames (EPERM, seen on hardened builds). Then
 * the frames go through an AF_PACKET socket instead, past the qdisc, 64 to
 * a sendmmsg(): each costs an skb and a share of a system call on the
 * sending side, so every mode's figure is lower and the ratios between
 * modes are compressed. The line says which: via=live or via=packet.
 *
 *   livegen --iface IF --dmac MAC --src ADDR --dst ADDR --dport PORT
 *           [--seconds S] [--cpu N] [--obj FILE] [--ksoftirqd PID] [--spoof BITS] [--pps N]
 *
 * --spoof BITS: a spoofed flood, every frame from a random IPv4 source that
 * shares all but the low BITS bits with --src.
 * --pps N: at most N frames a second, sent 10 ms worth at a time
 * (default: as fast as the CPU goes).
 *
 * Prints one line: "sent=N seconds=S cpu=C ksoftirqd=K via=V": frames handed to the
 * interface, wall time, and this thread's CPU time, which includes the
 * receiver's NAPI work (it runs in the softirq our batches raise, on our
 * CPU). On a shared machine packets per CPU second is the figure another
 * process cannot skew. Softirq work the kernel defers to ksoftirqd runs in
 * another task: with --ksoftirqd PID its CPU time is added (conservative:
 * it may hold other work too). The caller reads the receiver's counters.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_link.h>
#include "bench.h"

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = b[i];
	return 0;
}

/* Time a task has run, in ns (schedstat's first field); 0 if unknown. */
static uint64_t task_runtime(int pid)
{
	unsigned long long ns = 0;
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

static int if_mac(const char *ifname, uint8_t mac[6])
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

/* ---- AF_PACKET, where live frames are refused ----------------------- */

#define PK_BURST	64		/* frames per sendmmsg() */
#define PK_FRAMES_MAX	65536		/* distinct spoofed frames, prebuilt */

struct pk_gen {
	int sock;
	uint8_t (*frames)[FRAME_MAX];
	uint32_t nframes;
	size_t len;
	uint64_t rng;
	struct mmsghdr msgs[PK_BURST];
	struct iovec iov[PK_BURST];
};

/* The frames: f's alone, or with --spoof BITS one per source whose low BITS
 * bits vary (all of them up to 16 bits, random ones past that), each with
 * its own checksums, as gen_tx_spoof4 writes them. */
static int pk_frames(struct pk_gen *g, const struct fspec *f, int spoof)
{
	uint32_t mask = spoof >= 32 ? ~0U : (1U << (spoof < 0 ? 0 : spoof)) - 1;
	struct fspec s = *f;
	struct in_addr base;
	char src[INET_ADDRSTRLEN];

	g->nframes = spoof < 0 ? 1 : mask < PK_FRAMES_MAX ? mask + 1 : PK_FRAMES_MAX;
	if (spoof >= 0 && inet_pton(AF_INET, f->src, &base) != 1)
		return -EINVAL;
	g->frames = calloc(g->nframes, FRAME_MAX);
	if (!g->frames)
		return -ENOMEM;
	for (uint32_t i = 0; i < g->nframes; i++) {
		if (spoof >= 0) {
			uint32_t low = mask < PK_FRAMES_MAX ? i : (uint32_t)random() & mask;
			struct in_addr a = { htonl((ntohl(base.s_addr) & ~mask) | low) };

			inet_ntop(AF_INET, &a, src, sizeof(src));
			s.src = src;
		}
		g->len = bench_frame(&s, g->frames[i]);
		if (!g->len)
			return -EINVAL;
	}
	return 0;
}

static int pk_open(struct pk_gen *g, unsigned int ifindex, const struct fspec *f, int spoof)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = ifindex,
				   .sll_protocol = htons(ETH_P_ALL) };
	int one = 1, err;

	g->rng = 0x9e3779b97f4a7c15ULL;
	g->sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);	/* protocol 0: sends only */
	if (g->sock < 0)
		return -errno;
	/* Straight to the driver, as pktgen does: no qdisc in the figure. */
	if (setsockopt(g->sock, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) ||
	    bind(g->sock, (struct sockaddr *)&sll, sizeof(sll)))
		return -errno;
	err = pk_frames(g, f, spoof);
	for (int i = 0; !err && i < PK_BURST; i++) {
		g->msgs[i].msg_hdr.msg_iov = &g->iov[i];
		g->msgs[i].msg_hdr.msg_iovlen = 1;
		g->iov[i].iov_len = g->len;
	}
	return err;
}

/* Send n frames (a multiple of PK_BURST); returns how many the kernel took. */
static uint64_t pk_send(struct pk_gen *g, uint32_t n)
{
	uint64_t done = 0;

	for (uint32_t i = 0; i < n; i += PK_BURST) {
		int r;

		for (int j = 0; j < PK_BURST; j++) {
			g->rng ^= g->rng << 13;
			g->rng ^= g->rng >> 7;
			g->rng ^= g->rng << 17;
			g->iov[j].iov_base = g->frames[g->nframes > 1 ? g->rng % g->nframes : 0];
		}
		r = sendmmsg(g->sock, g->msgs, PK_BURST, MSG_DONTWAIT);
		if (r > 0)
			done += r;
	}
	return done;
}

/* One BPF_PROG_RUN sending n live frames out of ifindex. 0 or -errno. */
static int live_send(int fd, uint8_t *frame, size_t len, unsigned int ifindex, uint32_t n)
{
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = n,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);

	return bpf_prog_test_run_opts(fd, &o);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "iface", required_argument, NULL, 'i' }, { "dmac", required_argument, NULL, 'm' },
		{ "src", required_argument, NULL, 's' }, { "dst", required_argument, NULL, 'd' },
		{ "dport", required_argument, NULL, 'p' }, { "seconds", required_argument, NULL, 't' },
		{ "cpu", required_argument, NULL, 'c' }, { "obj", required_argument, NULL, 'o' },
		{ "ksoftirqd", required_argument, NULL, 'k' }, { "spoof", required_argument, NULL, 'S' },
		{ "pps", required_argument, NULL, 'P' }, {}
	};
	const char *ifname = NULL, *obj_path = BENCH_OBJ_DEFAULT;
	struct fspec f = { .l4 = IPPROTO_TCP, .flags = F_SYN, .syn_opts = 1 };
	uint8_t dmac[6], smac[6], frame[FRAME_MAX];
	uint64_t sent = 0, t0, t1, end;
	struct timespec c0, c1;
	double seconds = 2;
	int opt, cpu = -1, fd, err = 0, ksoft = 0, spoof = -1;
	uint32_t batch = 1 << 16;
	uint64_t pps = 0;
	uint64_t k0, k1;
	struct bpf_object *obj;
	unsigned int ifindex;
	bool have_dmac = false, live = true;
	struct pk_gen pk = { .sock = -1 };
	cpu_set_t set;
	size_t len;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'i': ifname = optarg; break;
		case 'm': have_dmac = !parse_mac(optarg, dmac); break;
		case 's': f.src = optarg; break;
		case 'd': f.dst = optarg; break;
		case 'p': f.dport = atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'c': cpu = atoi(optarg); break;
		case 'o': obj_path = optarg; break;
		case 'k': ksoft = atoi(optarg); break;
		case 'S': spoof = atoi(optarg); break;
		case 'P': pps = strtoull(optarg, NULL, 10); break;
		default: return 1;
		}
	}
	if (!ifname || !have_dmac || !f.src || !f.dst || !f.dport || seconds <= 0 || seconds > 60) {
		fprintf(stderr, "livegen: --iface, --dmac, --src, --dst and --dport are required; "
			"--seconds 0..60\n");
		return 1;
	}
	ifindex = if_nametoindex(ifname);
	if (!ifindex || if_mac(ifname, smac)) {
		fprintf(stderr, "livegen: no interface '%s'\n", ifname);
		return 1;
	}
	f.family = strchr(f.src, ':') ? 6 : 4;
	f.smac = smac;
	f.dmac = dmac;
	len = bench_frame(&f, frame);
	if (!len) {
		fprintf(stderr, "livegen: bad address\n");
		return 1;
	}
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	obj = bench_obj_open(obj_path);
	if (!obj)
		return 1;
	fd = bench_prog_fd(obj, spoof >= 0 ? "gen_tx_spoof4" : "gen_tx");
	if (spoof >= 0) {
		struct drive_cfg d = { .rot_bits = spoof };
		__u32 zero = 0;

		if (f.family != 4 || spoof > 32 ||
		    bpf_map_update_elem(bench_map_fd(obj, "drv"), &zero, &d, BPF_ANY)) {
			fprintf(stderr, "livegen: --spoof needs an IPv4 --src and 0..32 bits\n");
			bpf_object__close(obj);
			return 1;
		}
	}
	/* Which way the frames go, found out before the clock starts: one
	 * live frame, or the AF_PACKET socket where the kernel refuses it. */
	err = live_send(fd, frame, len, ifindex, 1);
	if (err == -EPERM) {
		fprintf(stderr, "livegen: this kernel refuses live frames (EPERM): sending "
			"through AF_PACKET\n");
		live = false;
		err = pk_open(&pk, ifindex, &f, spoof);
		if (err)
			fprintf(stderr, "livegen: AF_PACKET on '%s': %s\n", ifname, strerror(-err));
	} else if (err) {
		fprintf(stderr, "livegen: BPF_PROG_RUN (live frames) on '%s': %s\n", ifname,
			strerror(-err));
	}
	if (pps)	/* 10 ms worth per call: each call sets up a page pool */
		batch = pps / 100 > 64 ? pps / 100 : 64;
	/* 64k frames take AF_PACKET ~50 ms: keep the end and the pacing as
	 * fine as live frames have them, in whole sendmmsg() bursts. */
	if (!live)
		batch = batch > 4096 ? 4096 : (batch + PK_BURST - 1) / PK_BURST * PK_BURST;
	t0 = bench_now_ns();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	k0 = ksoft ? task_runtime(ksoft) : 0;
	end = t0 + (uint64_t)(seconds * 1e9);
	/* Bounded: one call sends `batch` frames (a few ms), at most 1M calls. */
	for (int i = 0; !err && i < 1000000 && bench_now_ns() < end; i++) {
		/* paced: wait until the frames sent so far are due */
		while (pps && bench_now_ns() < end && (bench_now_ns() - t0) * 1e-9 * pps < sent) {
			struct timespec ts = { 0, 200000 };

			nanosleep(&ts, NULL);
		}

		if (!live) {
			sent += pk_send(&pk, batch);
			continue;
		}
		err = live_send(fd, frame, len, ifindex, batch);
		if (err) {
			fprintf(stderr, "livegen: BPF_PROG_RUN (live frames) on '%s': %s\n", ifname,
				strerror(-err));
			break;
		}
		sent += batch;
	}
	t1 = bench_now_ns();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	k1 = ksoft ? task_runtime(ksoft) : 0;
	printf("sent=%llu seconds=%.6f cpu=%.6f ksoftirqd=%.6f via=%s\n", (unsigned long long)sent,
	       (t1 - t0) / 1e9, (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9 +
	       (k1 - k0) / 1e9, (k1 - k0) / 1e9, live ? "live" : "packet");
	if (pk.sock >= 0)
		close(pk.sock);
	free(pk.frames);
	bpf_object__close(obj);
	return err != 0;
}
