// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "base/prom.h"
#include "fastpath/lists.h"
#include "fastpath/metrics.h"

static int write_counters(FILE *f, struct ig_maps *m)
{
	struct ig_counter sum[IG_C_MAX];
	int err = counters_read(m, sum);

	if (err)
		return err;
	prom_head(f, "imapguard_packets_total", "counter", "Packets per verdict reason.");
	for (int i = 0; i < IG_R_MAX; i++)
		prom_labelled(f, "imapguard_packets_total", "reason", reason_name(i), sum[i].packets);
	prom_head(f, "imapguard_bytes_total", "counter", "Bytes per verdict reason.");
	for (int i = 0; i < IG_R_MAX; i++)
		prom_labelled(f, "imapguard_bytes_total", "reason", reason_name(i), sum[i].bytes);
	prom_u64(f, "imapguard_events_lost_total", "counter", "Events lost: ring buffer full.",
		 sum[IG_C_EVENTS_LOST].packets);
	prom_u64(f, "imapguard_events_sampled_total", "counter",
		 "Events suppressed by per-source sampling (one per source and reason per second).",
		 sum[IG_C_EVENTS_SAMPLED].packets);
	prom_u64(f, "imapguard_redirect_errors_total", "counter",
		 "Redirects whose interface was missing.", sum[IG_C_REDIRECT_ERR].packets);
	prom_u64(f, "imapguard_map_full_total", "counter", "Inserts refused because a map was full.",
		 sum[IG_C_MAP_FULL].packets);
	prom_u64(f, "imapguard_new_bucket_skip_total", "counter",
		 "New sources not tracked: the per-CPU new-state budget was spent (spoofed flood).",
		 sum[IG_C_NEW_BUCKET_SKIP].packets);
	return 0;
}

static const uint8_t origins[] = IG_BAN_ORIGINS;
enum { NO = sizeof(origins) };

struct ban_sums {
	uint64_t now, pkts[NO];
	long live, by[NO];
};

static int add_ban(void *ctx, const struct ig_prefix *p, const struct ig_ban_val *v)
{
	struct ban_sums *s = ctx;
	size_t o;

	(void)p;
	for (o = 0; o < NO - 1 && origins[o] != v->origin; o++)
		;
	s->pkts[o] += v->packets;
	if (!v->expires_ns || v->expires_ns > s->now) {
		s->live++;
		s->by[o]++;
	}
	return 0;
}

/* The census's ban figures, slot by slot, into sum (as add_ban would). */
static void add_census(struct ban_sums *sum, const struct ig_census *c)
{
	for (__u32 s = 0; s < IG_CENSUS_SLOTS; s++) {
		size_t o;

		for (o = 0; o < NO - 1 && ig_census_slot(origins[o]) != s; o++)
			;
		sum->pkts[o] += c->packets[s];
		sum->live += c->live[s];
		sum->by[o] += c->live[s];
	}
}

/* Bans in force, and per origin those and the packets their entries have
 * dropped (entries still in the map: a swept ban's packets leave the sum).
 * ig_bans from the census (c), else read whole; ig_banpfx, a trie BPF
 * cannot iterate and that holds few, read here. */
static void write_bans(FILE *f, struct ig_maps *m, const struct ig_census *c)
{
	struct ban_sums sum = { .now = mono_ns() };
	uint64_t *pkts = sum.pkts;
	long live, *by = sum.by;
	size_t o;

	if (c)
		add_census(&sum, c);
	live = (c ? banpfx_each(m, add_ban, &sum) : ban_each(m, add_ban, &sum)) ? -1 : sum.live;
	prom_head(f, "imapguard_bans_active", "gauge", "Bans in force (not expired).");
	fprintf(f, "imapguard_bans_active %ld\n", live);
	prom_head(f, "imapguard_bans_by_origin", "gauge",
		  "Bans in force by who banned (cli, daemon, crowdsec, fleet; local: unrecorded).");
	for (o = 0; o < NO; o++)
		fprintf(f, "imapguard_bans_by_origin{origin=\"%s\"} %ld\n", origin_name(origins[o]),
			by[o]);
	prom_head(f, "imapguard_ban_dropped_packets_by_origin", "gauge",
		  "Packets dropped by the bans now in the map, by who banned.");
	for (o = 0; o < NO; o++)
		prom_labelled(f, "imapguard_ban_dropped_packets_by_origin", "origin",
			      origin_name(origins[o]), pkts[o]);
}

void metrics_write_up(FILE *f, bool up)
{
	prom_u64(f, "imapguard_up", "gauge", "The fast path is loaded (its pinned maps were read).",
		 up);
}

int metrics_write(FILE *f, const char *dir, struct ig_maps *m)
{
	static const char *const names[] = { "allow", "deny", "bans", "banpfx", "throttle", "flows" };
	int fds[] = { m->allow, m->deny, m->bans, m->banpfx, m->throttle, m->flows }, err;
	struct ig_census census, *c = NULL;

	metrics_write_up(f, true);
	err = write_counters(f, m);
	if (err)
		return err;
	if (!fastpath_census(dir, &census))
		c = &census;	/* else read from userspace, as slowly as it is */
	write_bans(f, m, c);
	prom_head(f, "imapguard_map_entries", "gauge", "Entries in each BPF map.");
	for (int i = 0; i < 6; i++)
		fprintf(f, "imapguard_map_entries{map=\"%s\"} %ld\n", names[i],
			census_entries(c, m, fds[i]));
	prom_head(f, "imapguard_map_capacity", "gauge", "Capacity of each BPF map.");
	for (int i = 0; i < 6; i++)
		prom_labelled(f, "imapguard_map_capacity", "map", names[i], map_capacity(fds[i]));
	return 0;
}
