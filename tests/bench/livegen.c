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
 *   livegen --iface IF --dmac MAC --src ADDR --dst ADDR --dport PORT
 *           [--seconds S] [--cpu N] [--obj FILE] [--ksoftirqd PID] [--spoof BITS] [--pps N]
 *
 * --spoof BITS: a spoofed flood, every frame from a random IPv4 source that
 * shares all but the low BITS bits with --src.
 * --pps N: at most N frames a second, sent 10 ms worth at a time
 * (default: as fast as the CPU goes).
 *
 * Prints one line: "sent=N seconds=S cpu=C": frames handed to the
 * interface, wall time, and this thread's CPU time, which includes the
 * receiver's NAPI work (it runs in the softirq our batches raise, on our
 * CPU). On a shared machine packets per CPU second is the figure another
 * process cannot skew. Softirq work the kernel defers to ksoftirqd runs in
 * another task: with --ksoftirqd PID its CPU time is added (conservative:
 * it may hold other work too). The caller reads the receiver's counters.
 */
#include <getopt.h>
#include <net/if.h>
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
	bool have_dmac = false;
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
	t0 = bench_now_ns();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	k0 = ksoft ? task_runtime(ksoft) : 0;
	end = t0 + (uint64_t)(seconds * 1e9);
	if (pps)	/* 10 ms worth per call: each call sets up a page pool */
		batch = pps / 100 > 64 ? pps / 100 : 64;
	/* Bounded: one call sends `batch` frames (a few ms), at most 1M calls. */
	for (int i = 0; i < 1000000 && bench_now_ns() < end; i++) {
		struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifindex };
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len,
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = batch,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);

		/* paced: wait until the frames sent so far are due */
		while (pps && bench_now_ns() < end && (bench_now_ns() - t0) * 1e-9 * pps < sent) {
			struct timespec ts = { 0, 200000 };

			nanosleep(&ts, NULL);
		}

		err = bpf_prog_test_run_opts(fd, &o);
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
	printf("sent=%llu seconds=%.6f cpu=%.6f ksoftirqd=%.6f\n", (unsigned long long)sent,
	       (t1 - t0) / 1e9, (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9 +
	       (k1 - k0) / 1e9, (k1 - k0) / 1e9);
	bpf_object__close(obj);
	return err != 0;
}
