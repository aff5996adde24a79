/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the benchmark programs: clocks and statistics, frame
 * building, the bench BPF object (baselines and the frame driver) and the
 * realistic map contents. Every figure a tool prints is one "M" line:
 *
 *   M <section> <id> <label> <unit> <v1,v2,...> <note>   (tab separated)
 *
 * tests/bench/report.py turns them into ratios against baselines measured
 * in the same run.
 */
#ifndef IMAPGUARD_BENCH_H
#define IMAPGUARD_BENCH_H
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "common.h"

#define BENCH_OBJ_DEFAULT	".output/bench/bench.bpf.o"
#define FRAME_MAX		128

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* q in [0, 1]: nearest-rank percentile of v (sorted in place). */
static inline double bench_pct(double *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	i = (size_t)(q * (n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* One measurement line; values are the raw per-run figures. */
static inline void bench_emit(const char *section, const char *id, const char *label,
			      const char *unit, const double *v, size_t n, const char *fmt, ...)
{
	char note[512] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(note, sizeof(note), fmt, ap);
		va_end(ap);
	}
	printf("M\t%s\t%s\t%s\t%s\t", section, id, label, unit);
	for (size_t i = 0; i < n; i++)
		printf("%s%.6g", i ? "," : "", v[i]);
	printf("\t%s\n", note);
	fflush(stdout);
}

/* ---- frames -------------------------------------------------------------- */

struct fspec {
	int family;		/* 4 or 6 */
	int l4;			/* IPPROTO_TCP or IPPROTO_UDP */
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t flags;		/* TCP flags */
	int syn_opts;		/* add the 20 option bytes a Linux SYN carries */
	const uint8_t *smac, *dmac;	/* NULL: locally administered dummies */
};

#define F_SYN	0x02
#define F_ACK	0x10

static inline void bench_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static inline void bench_put32(uint8_t *p, uint32_t v) { bench_put16(p, v >> 16); bench_put16(p + 2, v); }

static inline uint32_t bench_csum_add(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (p[i] << 8) | p[i + 1];
	if (n & 1)
		sum += p[n - 1] << 8;
	return sum;
}

static inline uint16_t bench_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* A complete frame with valid IP and L4 checksums; returns its length or 0. */
static inline size_t bench_frame(const struct fspec *s, uint8_t *b)
{
	static const uint8_t da[6] = { 0x02, 0, 0, 0, 0, 1 }, sa[6] = { 0x02, 0, 0, 0, 0, 2 };
	static const uint8_t opts[20] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7 };
	int tcp = s->l4 != IPPROTO_UDP, alen = s->family == 4 ? 4 : 16;
	size_t l3 = 14, iphl = s->family == 4 ? 20 : 40, l4 = l3 + iphl;
	size_t l4len = tcp ? 20 + (s->syn_opts ? 20 : 0) : 8 + 32;
	uint8_t pseudo[40];
	uint32_t sum;

	memset(b, 0, FRAME_MAX);
	memcpy(b, s->dmac ? s->dmac : da, 6);
	memcpy(b + 6, s->smac ? s->smac : sa, 6);
	bench_put16(b + 12, s->family == 4 ? 0x0800 : 0x86dd);
	if (s->family == 4) {
		b[l3] = 0x45;
		bench_put16(b + l3 + 2, iphl + l4len);
		bench_put16(b + l3 + 6, 0x4000);
		b[l3 + 8] = 64;
		b[l3 + 9] = tcp ? IPPROTO_TCP : IPPROTO_UDP;
		if (inet_pton(AF_INET, s->src, b + l3 + 12) != 1 ||
		    inet_pton(AF_INET, s->dst, b + l3 + 16) != 1)
			return 0;
		bench_put16(b + l3 + 10, bench_csum_fold(bench_csum_add(b + l3, 20, 0)));
	} else {
		b[l3] = 0x60;
		bench_put16(b + l3 + 4, l4len);
		b[l3 + 6] = tcp ? IPPROTO_TCP : IPPROTO_UDP;
		b[l3 + 7] = 64;
		if (inet_pton(AF_INET6, s->src, b + l3 + 8) != 1 ||
		    inet_pton(AF_INET6, s->dst, b + l3 + 24) != 1)
			return 0;
	}
	bench_put16(b + l4, s->sport ? s->sport : 40000);
	bench_put16(b + l4 + 2, s->dport);
	if (tcp) {
		bench_put32(b + l4 + 4, 0x12345678);
		b[l4 + 12] = (l4len / 4) << 4;
		b[l4 + 13] = s->flags;
		bench_put16(b + l4 + 14, 64240);
		if (s->syn_opts)
			memcpy(b + l4 + 20, opts, sizeof(opts));
	} else {
		bench_put16(b + l4 + 4, l4len);
		memset(b + l4 + 8, 'x', l4len - 8);
	}
	/* pseudo header: addresses, zero, protocol, L4 length */
	memset(pseudo, 0, sizeof(pseudo));
	memcpy(pseudo, b + l3 + (s->family == 4 ? 12 : 8), 2 * alen);
	sum = bench_csum_add(pseudo, 2 * alen, 0);
	sum += (tcp ? IPPROTO_TCP : IPPROTO_UDP) + l4len;
	sum = bench_csum_add(b + l4, l4len, sum);
	bench_put16(b + l4 + (tcp ? 16 : 6), bench_csum_fold(sum));
	return l4 + l4len;
}

/* ---- the bench BPF object ------------------------------------------------ */

enum drive_mode { DRIVE_RESTORE = 0, DRIVE_RAND6, DRIVE_ROT6 };

/* Mirrors struct drive_cfg in bench.bpf.c (a harness, not a shared type). */
struct drive_cfg {
	uint32_t mode, len, rot_bits, pad;
	uint64_t ctr, rng;
	uint8_t tmpl[FRAME_MAX];
};

/* ROT6 source i: 2001:db8:10XX:XXXX::1, as rot6() in bench.bpf.c. */
static inline void bench_rot6(uint8_t a[16], uint32_t i)
{
	static const uint8_t pfx[5] = { 0x20, 0x01, 0x0d, 0xb8, 0x10 };

	memset(a, 0, 16);
	memcpy(a, pfx, 5);
	a[5] = i >> 16;
	a[6] = i >> 8;
	a[7] = i;
	a[15] = 1;
}

/* Open and load a BPF object; maps named in reuse[] (NULL-terminated, with
 * fds[]) take over those existing maps instead of being created. */
static inline struct bpf_object *bench_obj_open_reuse(const char *path, const char *const *reuse,
						      const int *fds)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	int err = 0;

	if (!obj) {
		fprintf(stderr, "bench: Couldn't open BPF object '%s': %s\n", path, strerror(errno));
		return NULL;
	}
	for (int i = 0; !err && reuse && reuse[i]; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(obj, reuse[i]);

		err = m ? bpf_map__reuse_fd(m, fds[i]) : -ENOENT;
	}
	if (!err)
		err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "bench: Couldn't load BPF object '%s': %s\n", path, strerror(-err));
		bpf_object__close(obj);
		return NULL;
	}
	return obj;
}

static inline struct bpf_object *bench_obj_open(const char *path)
{
	return bench_obj_open_reuse(path, NULL, NULL);
}

static inline int bench_prog_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);

	return p ? bpf_program__fd(p) : -ENOENT;
}

static inline int bench_map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	return m ? bpf_map__fd(m) : -ENOENT;
}

/* ---- process statistics -------------------------------------------------- */

/* "VmRSS" or "VmHWM" of a process, in KiB; -1 when unreadable. */
static inline long bench_proc_kb(int pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			kb = strtol(line + flen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

#endif
