// SPDX-License-Identifier: GPL-2.0
/*
 * Time to ban with the real daemon: for each of --bans fresh sources, write
 * max_failures - 1 failure lines to the log the daemon follows, let it read
 * them, then time from the write() of the last one to
 *  - map: the ban entry being visible in the pinned ig_bans, and
 *  - syn: the attacker's SYN being dropped by the pinned XDP program
 *    (BPF_PROG_RUN of a real SYN, polled instead of the map on every
 *    --syn-every'th ban).
 * After every ban one SYN must be dropped; the note counts those checks.
 * Probes sleep 50 us between them: a busy-polling prober would take one of
 * the CPUs the daemon needs. With --daemon-pid, the time the daemon spent
 * waiting for a CPU (schedstat), and this prober's, are taken out in a
 * third figure: on a loaded machine the tail is the scheduler's.
 *
 *   timetoban --pin-dir D --log FILE --failures K [--bans N] [--syn-every M]
 *             [--daemon-pid PID] [--fleet]
 *
 * --fleet: D is another node's pin dir than the daemon that follows FILE,
 * so the figures are the fleet's (ban decided on one node -> dropped at
 * another, through Redis); rows go to section "fleet".
 */
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <linux/if_link.h>
#include "bench.h"
#include "fill.h"

#define TIMEOUT_NS	2000000000ULL	/* a ban not seen within 2 s is a failure */

static unsigned long seq;

static int write_failure(int fd, const char *addr)
{
	char line[512];
	int n;

	/* One write() per line, as a syslog daemon appends. */
	n = snprintf(line, sizeof(line), "Nov 23 04:30:01 host dovecot: imap-login: Disconnected "
		     "(auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=%s, "
		     "lip=198.18.0.1, session=<ttb%08lu>\n", addr, ++seq);
	return write(fd, line, n) == n ? 0 : -EIO;
}

static bool banned(int map, uint32_t v4)
{
	struct ig_ban_key k = { .plen = 128 };
	struct ig_ban_val v;

	bench_map_v4(k.addr, v4);
	return bpf_map_lookup_elem(map, &k, &v) == 0 && v.banned;
}

static int syn_verdict(int prog, const char *addr)
{
	struct fspec f = { .family = 4, .l4 = IPPROTO_TCP, .src = addr, .dst = "198.18.0.1",
			   .dport = 993, .flags = F_SYN, .syn_opts = 1 };
	uint8_t frame[FRAME_MAX], out[FRAME_MAX * 2];
	size_t len = bench_frame(&f, frame);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

	return bpf_prog_test_run_opts(prog, &o) ? -1 : (int)o.retval;
}

/* Time PID has spent runnable but waiting for a CPU, in ns (0 if unknown). */
static uint64_t runq_wait(int pid)
{
	unsigned long long run, wait = 0;
	char path[64];
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return wait;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, us % 1000000 * 1000 };

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pin-dir", required_argument, NULL, 'P' }, { "log", required_argument, NULL, 'l' },
		{ "failures", required_argument, NULL, 'f' }, { "bans", required_argument, NULL, 'b' },
		{ "syn-every", required_argument, NULL, 's' },
		{ "daemon-pid", required_argument, NULL, 'd' }, { "fleet", no_argument, NULL, 'F' }, {}
	};
	const char *dir = NULL, *log = NULL;
	int opt, nbans = 200, fails = 5, syn_every = 5, map, prog, fd, err = 0;
	int checked = 0, dropped = 0, nmap = 0, nsyn = 0, dpid = 0;
	bool fleet = false;
	double *tmap, *tsyn, *twait;
	char path[512];

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'P': dir = optarg; break;
		case 'l': log = optarg; break;
		case 'f': fails = atoi(optarg); break;
		case 'b': nbans = atoi(optarg); break;
		case 's': syn_every = atoi(optarg); break;
		case 'd': dpid = atoi(optarg); break;
		case 'F': fleet = true; break;
		default: return 1;
		}
	}
	if (!dir || !log || fails < 1 || fails > 100 || nbans < 1 || nbans > 20000 || syn_every < 1) {
		fprintf(stderr, "timetoban: --pin-dir and --log are required\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/ig_bans", dir);
	map = bpf_obj_get(path);
	snprintf(path, sizeof(path), "%s/prog_xdp", dir);
	prog = bpf_obj_get(path);
	fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);
	tmap = calloc(nbans, sizeof(*tmap));
	tsyn = calloc(nbans, sizeof(*tsyn));
	twait = calloc(nbans, sizeof(*twait));
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);	/* 50 us sleeps mean 50 us */
	if (map < 0 || prog < 0 || fd < 0 || !tmap || !tsyn || !twait) {
		fprintf(stderr, "timetoban: Couldn't open the pins in '%s' or the log '%s': %s\n",
			dir, log, strerror(errno));
		return 1;
	}
	for (int i = 0; i < nbans && !err; i++) {
		/* 198.18.10.1 on; the fleet's from 198.18.60.1, never banned before */
		uint32_t v4 = V4_BASE + ((fleet ? 60u : 10u) << 8) + i / 250 * 256 + 1 + i % 250;
		struct in_addr ia = { htonl(v4) };
		char addr[INET_ADDRSTRLEN];
		bool by_syn = i % syn_every == 0;
		uint64_t t0, t, w0, s0;

		inet_ntop(AF_INET, &ia, addr, sizeof(addr));
		for (int k = 0; k < fails - 1 && !err; k++)
			err = write_failure(fd, addr);
		sleep_us(20000);	/* the daemon reads them: only the last line is timed */
		if (err || banned(map, v4)) {
			fprintf(stderr, "timetoban: %s banned before its last failure\n", addr);
			err = -EINVAL;
			break;
		}
		w0 = runq_wait(dpid);
		s0 = runq_wait(getpid());
		t0 = bench_now_ns();
		if ((err = write_failure(fd, addr)))
			break;
		/* Bounded by TIMEOUT_NS; each probe is one syscall, and the time
		 * is taken after the probe that saw the ban. */
		do {
			bool hit = by_syn ? syn_verdict(prog, addr) == XDP_DROP : banned(map, v4);

			t = bench_now_ns();
			if (hit)
				break;
			sleep_us(50);
		} while (t - t0 < TIMEOUT_NS);
		if (t - t0 >= TIMEOUT_NS) {
			fprintf(stderr, "timetoban: %s not banned within 2 s\n", addr);
			err = -ETIMEDOUT;
			break;
		}
		/* latency less the run-queue waits of the daemon and of this
		 * prober in the same interval: what is left is the code path */
		twait[i] = ((t - t0) - (double)(runq_wait(dpid) - w0) -
			    (double)(runq_wait(getpid()) - s0)) / 1e6;
		if (twait[i] < 0)
			twait[i] = 0;
		if (by_syn)
			tsyn[nsyn++] = (t - t0) / 1e6;
		else
			tmap[nmap++] = (t - t0) / 1e6;
		checked++;
		dropped += syn_verdict(prog, addr) == XDP_DROP && banned(map, v4);
		sleep_us(2000);
	}
	if (!err && fleet) {
		bench_emit("fleet", "fleet_map", "ban decided on node A -> in node B's pinned map", "ms",
			   tmap, nmap, "%d bans through Redis (unix socket), %d failures each on A; "
			   "after every ban a real SYN was checked at B: %d/%d dropped", nmap, fails,
			   dropped, checked);
		bench_emit("fleet", "fleet_syn", "ban decided on node A -> attacker's SYN dropped at B",
			   "ms", tsyn, nsyn, "%d bans, polled with BPF_PROG_RUN of B's pinned XDP program "
			   "(from the write of A's last failure line)", nsyn);
	} else if (!err) {
		bench_emit("ttb", "ttb_map", "last failure line written -> ban in the pinned map", "ms",
			   tmap, nmap, "%d bans, %d failures each; after every ban a real SYN was "
			   "checked: %d/%d dropped", nmap, fails, dropped, checked);
		bench_emit("ttb", "ttb_syn", "last failure line written -> attacker's SYN dropped", "ms",
			   tsyn, nsyn, "%d bans, polled with BPF_PROG_RUN of the pinned XDP program",
			   nsyn);
		if (dpid > 0)
			bench_emit("ttb", "ttb_nowait", "the same, less waits for a CPU (daemon and prober)",
				   "ms", twait, checked, "all %d bans; run-queue waits from "
				   "/proc/PID/schedstat: what is left is the code path", checked);
	}
	close(fd);
	free(tmap);
	free(tsyn);
	free(twait);
	return err != 0;
}
