// SPDX-License-Identifier: GPL-2.0
/*
 * Where `imapguard attach` spends its time, phase by phase, with the same
 * library calls and the policy's capacities: open the object (ELF, BTF),
 * load it (kernel BTF for CO-RE if the object needs it, map creation,
 * verification of the one program the mode needs, as imapguard does: the
 * verifier's own figure comes from its log), pin, then open the pins,
 * apply the policy and attach to the interface. imapguard creates the maps
 * and loads the program as two objects (fastpath_load, then the program on
 * the pinned maps); one object here is within a millisecond of that.
 * Every run starts from nothing and ends detached and unpinned.
 *
 *   loadtime --iface IF --policy FILE --pin-dir DIR [--runs N] [--mode native|tc]
 *
 * Prints "M load <phase> ..." lines in ms (wall clock: loading is not a
 * per-CPU-second figure, it is how long an operator waits).
 */
#include <getopt.h>
#include <net/if.h>
#include <sys/stat.h>
#include "bench.h"
#include "fastpath/fastpath.h"
#include "fastpath/lists.h"
#include "policy/policy.h"
#include "imapguard.skel.h"

#define MAX_RUNS 32

enum phase { PH_OPEN, PH_LOAD, PH_VERIFY, PH_PIN, PH_ATTACH, PH_TOTAL, PH_N };

static const char *const ph_id[PH_N] = {
	"attach_open", "attach_load", "attach_verify", "attach_pin", "attach_iface", "attach_total",
};
static const char *const ph_label[PH_N] = {
	"attach: open the object (ELF, BTF)",
	"attach: load (map creation, kernel BTF if CO-RE, verification)",
	"attach: of which verification (the verifier's own figure, the mode's program)",
	"attach: pin maps and the program",
	"attach: open the pins, apply the policy, attach to the interface",
	"attach: total (open, verify and load, pin, attach)",
};

static double ms_since(uint64_t t0)
{
	return (bench_now_ns() - t0) / 1e6;
}

/* "verification time N usec" from a program's stats log, in ms. */
static double verify_ms(const char *log)
{
	const char *p = strstr(log, "verification time ");
	unsigned long us = 0;

	if (p)
		sscanf(p, "verification time %lu usec", &us);
	return us / 1e3;
}

/* "processed N insns" from a program's stats log. */
static unsigned long insns_of(const char *log)
{
	const char *p = strstr(log, "processed ");
	unsigned long n = 0;

	if (p)
		sscanf(p, "processed %lu insns", &n);
	return n;
}

static unsigned long insns;	/* verifier's processed instructions */

static int pin_all(struct imapguard_bpf *skel, const char *dir, int mode)
{
	char path[512];
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, skel->obj) {
		const char *name = fastpath_pin_name(map);

		if (!name)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		err = bpf_map__pin(map, path);
		if (err)
			return err;
	}
	if (mode == IG_MODE_TC) {
		snprintf(path, sizeof(path), "%s/prog_tc", dir);
		return bpf_program__pin(skel->progs.ig_tc, path);
	}
	snprintf(path, sizeof(path), "%s/prog_xdp", dir);
	return bpf_program__pin(skel->progs.ig_xdp, path);
}

static int one_run(const struct policy *pol, const char *dir, const char *iface, int mode,
		   double *ph)
{
	static char log_xdp[65536], log_tc[65536];
	struct imapguard_bpf *skel;
	struct ig_maps m;
	char msg[256];
	int err, used = 0;
	uint64_t t0 = bench_now_ns(), t;

	fastpath_maps_init(&m);
	t = bench_now_ns();
	skel = imapguard_bpf__open();
	if (!skel)
		return -errno;
	ph[PH_OPEN] = ms_since(t);
	fastpath_set_capacities(skel, pol);
	/* Log level 4: statistics only, which the verifier gathers anyway. */
	log_xdp[0] = log_tc[0] = '\0';
	bpf_program__set_log_level(skel->progs.ig_xdp, 4);
	bpf_program__set_log_buf(skel->progs.ig_xdp, log_xdp, sizeof(log_xdp));
	bpf_program__set_log_level(skel->progs.ig_tc, 4);
	bpf_program__set_log_buf(skel->progs.ig_tc, log_tc, sizeof(log_tc));
	bpf_program__set_autoload(mode == IG_MODE_TC ? skel->progs.ig_xdp : skel->progs.ig_tc,
				  false);
	t = bench_now_ns();
	err = imapguard_bpf__load(skel);
	ph[PH_LOAD] = ms_since(t);
	ph[PH_VERIFY] = verify_ms(log_xdp) + verify_ms(log_tc);
	insns = insns_of(log_xdp) + insns_of(log_tc);
	if (!err) {
		mkdir(dir, 0700);
		t = bench_now_ns();
		err = pin_all(skel, dir, mode);
		ph[PH_PIN] = ms_since(t);
	}
	imapguard_bpf__destroy(skel);	/* the pins keep everything */
	if (!err) {
		t = bench_now_ns();
		err = fastpath_open_maps(dir, &m);
		if (!err)
			err = apply_policy(&m, pol, msg, sizeof(msg));
		if (!err)
			err = fastpath_attach(dir, &m, iface, mode, false, &used);
		ph[PH_ATTACH] = ms_since(t);
	}
	ph[PH_TOTAL] = ms_since(t0);
	if (!err)
		err = fastpath_detach(dir, &m, if_nametoindex(iface));
	fastpath_close_maps(&m);
	fastpath_unpin_all(dir);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "iface", required_argument, NULL, 'i' }, { "policy", required_argument, NULL, 'p' },
		{ "pin-dir", required_argument, NULL, 'd' }, { "runs", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' }, {},
	};
	const char *iface = NULL, *file = NULL, *dir = NULL;
	double v[PH_N][MAX_RUNS];
	int runs = 5, mode = IG_MODE_NATIVE, opt, err = 0, r;
	struct policy pol;
	char msg[256];

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'i': iface = optarg; break;
		case 'p': file = optarg; break;
		case 'd': dir = optarg; break;
		case 'n': runs = atoi(optarg); break;
		case 'm': mode = !strcmp(optarg, "tc") ? IG_MODE_TC : IG_MODE_NATIVE; break;
		default: return 1;
		}
	}
	if (!iface || !file || !dir || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "usage: loadtime --iface IF --policy FILE --pin-dir DIR [--runs 1..%d]"
			" [--mode native|tc]\n", MAX_RUNS);
		return 1;
	}
	policy_init(&pol);
	if (policy_load(file, &pol, msg, sizeof(msg))) {
		fprintf(stderr, "loadtime: %s\n", msg);
		return 1;
	}
	for (r = 0; r < runs && !err; r++) {
		double ph[PH_N] = {};

		err = one_run(&pol, dir, iface, mode, ph);
		for (int i = 0; i < PH_N; i++)
			v[i][r] = ph[i];
	}
	if (err)
		fprintf(stderr, "loadtime: run %d: %s\n", r, strerror(-err));
	for (int i = 0; i < PH_N && !err; i++)
		bench_emit("load", ph_id[i], ph_label[i], "ms", v[i], runs,
			   "%d runs, %s, capacities: bans %u + deny %u, sources %u; the verifier "
			   "processed %lu instructions", runs, mode == IG_MODE_TC ? "tc" : "native XDP",
			   pol.max_bans, pol.max_deny, pol.max_sources, insns);
	policy_free(&pol);
	return err != 0;
}
