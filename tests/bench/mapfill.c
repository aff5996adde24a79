// SPDX-License-Identifier: GPL-2.0
/*
 * Fill a pinned imapguard's maps with the benchmark contents (fill.h), write
 * the same IPv4 entries as text for nftables and ipset, and report what the
 * maps cost in kernel memory.
 *
 *   mapfill --pin-dir D [--bans N] [--deny4 N] [--deny6 N] [--throttle6 N]
 *           [--allow] [--subnet-bans N]      fill (under the pin-dir lock)
 *   mapfill --export DIR [--bans N] [--deny4 N] [--allow]
 *           write DIR/bans4, DIR/deny4, DIR/allow4: IPv4 prefixes, one a line
 *   mapfill --pin-dir D --memory           one "M mem" line per map
 */
#include <getopt.h>
#include <unistd.h>
#include "fill.h"

static int export_list(const char *dir, const char *name, const struct ig_prefix *p, size_t n)
{
	char path[512], buf[ADDR_STRLEN];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	for (size_t i = 0; i < n; i++)
		if (addr_is_v4(p[i].addr)) {
			addr_format(&p[i], buf);
			/* nft and ipset both want the length written out */
			fprintf(f, "%s%s\n", buf, strchr(buf, '/') ? "" : "/32");
		}
	return fclose(f) ? -errno : 0;
}

static int export_all(const char *dir, size_t bans, size_t deny4, bool allow)
{
	struct ig_prefix *p = calloc(bans + deny4 + DENY4_PFX + 64, sizeof(*p));
	int err = -ENOMEM;

	if (!p)
		return err;
	err = export_list(dir, "bans4", p, plan_bans(bans, p));
	if (!err)
		err = export_list(dir, "deny4", p, plan_deny(deny4, 0, p));
	if (!err)
		err = export_list(dir, "allow4", p, allow ? plan_allow(p) : 0);
	free(p);
	return err;
}

/* "memlock:" of a map fd, from fdinfo: what the kernel charges for it. */
static long long fd_memlock(int fd)
{
	char path[64], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "memlock:", 8))
			v = strtoll(line + 8, NULL, 10);
	fclose(f);
	return v;
}

static int memory(struct ig_maps *m)
{
	const int *fds = (const int *)m;
	double total = 0, v;

	for (int i = 0; i < IG_NMAPS; i++) {
		char id[64];

		v = fd_memlock(fds[i]);
		if (v < 0)
			return -EIO;
		total += v;
		snprintf(id, sizeof(id), "map_%s", ig_map_names[i]);
		bench_emit("mem", id, ig_map_names[i], "bytes", &v, 1, "max_entries %u",
			   map_capacity(fds[i]));
	}
	bench_emit("mem", "maps_total", "all BPF maps", "bytes", &total, 1, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pin-dir", required_argument, NULL, 'P' }, { "bans", required_argument, NULL, 'b' },
		{ "deny4", required_argument, NULL, '4' }, { "deny6", required_argument, NULL, '6' },
		{ "throttle6", required_argument, NULL, 't' }, { "allow", no_argument, NULL, 'a' },
		{ "subnet-bans", required_argument, NULL, 's' }, { "export", required_argument, NULL, 'e' },
		{ "memory", no_argument, NULL, 'm' }, {}
	};
	size_t bans = 0, deny4 = 0, deny6 = 0, thr6 = 0, subnet = 0;
	const char *dir = NULL, *export = NULL;
	bool allow = false, mem = false, thr = false;
	uint64_t t0 = bench_now_ns();
	struct ig_maps m;
	int opt, lock, err = 0;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'P': dir = optarg; break;
		case 'b': bans = strtoul(optarg, NULL, 10); break;
		case '4': deny4 = strtoul(optarg, NULL, 10); break;
		case '6': deny6 = strtoul(optarg, NULL, 10); break;
		case 't': thr6 = strtoul(optarg, NULL, 10); thr = true; break;
		case 'a': allow = true; break;
		case 's': subnet = strtoul(optarg, NULL, 10); break;
		case 'e': export = optarg; break;
		case 'm': mem = true; break;
		default: return 1;
		}
	}
	if (bans > (1u << 24) || deny4 > V4_COUNT || deny6 > (1u << 22) || thr6 > (1u << 24)) {
		fprintf(stderr, "mapfill: counts out of range\n");
		return 1;
	}
	if (export) {
		err = export_all(export, bans, deny4, allow);
		if (err)
			fprintf(stderr, "mapfill: Couldn't export to '%s': %s\n", export, strerror(-err));
		return err != 0;
	}
	if (!dir) {
		fprintf(stderr, "mapfill: --pin-dir or --export is required\n");
		return 1;
	}
	lock = fastpath_lock(dir);
	if (lock < 0)
		return 1;
	err = fastpath_open_maps(dir, &m);
	if (err) {
		close(lock);
		return 1;
	}
	if (bans)
		err = bench_fill_bans(&m, bans);
	if (!err && thr)
		err = bench_fill_throttle(m.throttle, thr6, 993);
	if (!err && (deny4 || deny6))
		err = bench_fill_deny(&m, deny4, deny6);
	if (!err && allow)
		err = bench_fill_allow(&m);
	if (!err && subnet)
		err = bench_fill_subnet_bans(&m, subnet);
	close(lock);	/* the memory report needs no lock */
	if (err)
		fprintf(stderr, "mapfill: Couldn't fill the maps in '%s': %s\n", dir, strerror(-err));
	else if (bans || thr || deny4 || deny6 || allow || subnet)
		fprintf(stderr, "mapfill: filled in %.1f s\n", (bench_now_ns() - t0) / 1e9);
	if (!err && mem)
		err = memory(&m);
	fastpath_close_maps(&m);
	return err != 0;
}
