/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Policy and list operations on the pinned maps: applying a policy, the
 * allow/deny lists and bans. Callers hold the pin-directory lock.
 */
#ifndef IMAPGUARD_LISTS_H
#define IMAPGUARD_LISTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/addr.h"
#include "fastpath/fastpath.h"

struct policy;

enum ig_list { LIST_ALLOW, LIST_DENY };

/*
 * Every function that writes a map must run under the pin-directory lock
 * (fastpath_lock): ig_cfg.flags, which tells BPF which tries to look up, is
 * recomputed after each change and must not race another writer.
 */

/* Validate against the system (interfaces exist), then update every map:
 * apply_prepare(), then apply_commit(). On a validation error nothing is
 * changed. 0 or -errno, with the reason in err. */
int apply_policy(struct ig_maps *m, const struct policy *pol, char *err, size_t errlen);

/*
 * apply_policy() in its two steps, under one hold of the lock. The port
 * configuration switches at one instant for the fast path (common.h,
 * IG_PORT_GENS): apply_prepare() validates, writes the lists in place (lists
 * first: no moment opens a port that either policy closes) and writes pol's
 * ports into the generation not in force, while packets still see the old
 * ports, all of them. apply_commit() writes st->next, which flips ig_cfg.gen:
 * each packet sees the old ports or the new ones, never a mix. Nothing else
 * may write ig_cfg between the two (st->next would undo it). Errors as
 * apply_policy(); a failed prepare leaves the ports in force unchanged.
 */
struct apply_state {
	struct ig_cfg next;	/* ig_cfg with the staged generation in force */
};
int apply_prepare(struct ig_maps *m, const struct policy *pol, struct apply_state *st,
		  char *err, size_t errlen);
int apply_commit(struct ig_maps *m, const struct apply_state *st, char *err, size_t errlen);

/* Whether p is a host entry (an address, or an IPv6 /64 other than ::/64):
 * those live in ig_bans, for bans and the deny list alike; other prefixes
 * in the LPM tries. */
bool host_entry(const struct ig_prefix *p);
/* Mark ig_bans key k in the summary map fd (ig_bansum) before inserting it;
 * every writer of ig_bans must. */
int bansum_mark(int fd, const struct ig_lpm_key *k);

int list_add(struct ig_maps *m, enum ig_list l, const struct ig_prefix *p, uint8_t origin);
/* Removes the entry whatever wrote it; *was_policy tells if the policy had it. */
int list_del(struct ig_maps *m, enum ig_list l, const struct ig_prefix *p, bool *was_policy);

/* An allow or deny entry and who wrote it (IG_ORIGIN_* bits). */
struct list_entry {
	struct ig_prefix pfx;
	uint8_t origin;
};

/* Every entry of a list; caller frees *out. */
int list_entries(struct ig_maps *m, enum ig_list l, struct list_entry **out, size_t *n);

struct ban_info {
	struct ig_prefix pfx;
	struct ig_ban_val val;
};

/* ttl_ns 0 = permanent, else at most POL_DURATION_MAX_NS (365 days), -ERANGE
 * above. -E2BIG when the map is full (also counted). */
int ban_add(struct ig_maps *m, const struct ig_prefix *p, uint64_t ttl_ns,
	    const char *reason);
/* The same, recording who banned (one IG_ORIGIN_* value; 0 = unknown, what
 * ban_add() records): `ban list` and the metrics show it, and a module lifts
 * only the bans of its own origin. */
int ban_add_from(struct ig_maps *m, const struct ig_prefix *p, uint64_t ttl_ns,
		 const char *reason, uint8_t origin);
int ban_del(struct ig_maps *m, const struct ig_prefix *p);
/* For a module that bans on behalf of another system (CrowdSec): ban_add_from()
 * unless p holds a ban of another origin that lasts at least as long (or is
 * permanent), which is left as it is: 1 then, else ban_add_from()'s result. */
int ban_add_unless_longer(struct ig_maps *m, const struct ig_prefix *p, uint64_t ttl_ns,
			  const char *reason, uint8_t origin);
/* Lift p's ban only if origin set it: 0, -ENOENT (no ban, or another
 * origin's), or ban_del()'s error. */
int ban_del_origin(struct ig_maps *m, const struct ig_prefix *p, uint8_t origin);
/* The prefixes of origin's live bans; *out malloc'd, caller frees. */
int ban_list_origin(struct ig_maps *m, uint8_t origin, struct ig_prefix **out, size_t *n);
/* The ban entry for exactly p (expired or not); -ENOENT if none. */
int ban_get(struct ig_maps *m, const struct ig_prefix *p, struct ig_ban_val *v);
/* All bans (expired ones included, with expires in the past); caller frees. */
int ban_list(struct ig_maps *m, struct ban_info **out, size_t *n);
/* fn for each ban, as ban_list() lists them but with nothing kept, until fn
 * returns non-zero (returned). Not reentrant: one shared batch buffer. */
typedef int (*ban_fn)(void *ctx, const struct ig_prefix *p, const struct ig_ban_val *v);
int ban_each(struct ig_maps *m, ban_fn fn, void *ctx);
/* The same for ig_banpfx alone (the census program counts ig_bans). */
int banpfx_each(struct ig_maps *m, ban_fn fn, void *ctx);
/* Delete bans that expired; returns how many. */
int ban_sweep(struct ig_maps *m);

/* Where an incremental sweep stopped. Zero-initialise. */
struct sweep_cursor {
	struct ig_lpm_key key;	/* ig_banpfx: the last key seen */
	__u32 batch;		/* ig_bans: the batch token (have: valid) */
	bool have, expired;
	int which;		/* 0: ig_bans, 1: ig_banpfx */
};
/* The same, about budget entries per call (the daemon's timer): ig_bans
 * is read in batches of up to 4096, so a call may examine more. */
int ban_sweep_some(struct ig_maps *m, struct sweep_cursor *c, unsigned int budget);

/* Number of entries in a map (walks the keys). */
long map_count(int fd);
/* Entries of map fd (one of m's): the census's figure where it has one
 * (c: a fastpath_census() result, or NULL), else map_count(). */
long census_entries(const struct ig_census *c, struct ig_maps *m, int fd);
uint32_t map_capacity(int fd);
uint64_t mono_ns(void);
void count_extra(struct ig_maps *m, uint32_t idx);
/* Every counter summed over CPUs. */
int counters_read(struct ig_maps *m, struct ig_counter sum[IG_C_MAX]);
/* Stable name of a counter index (stats output, JSON keys). */
const char *reason_name(int idx);
/* Stable name of a ban's origin: policy, cli, daemon, crowdsec, fleet;
 * "local" for 0 (bans written before origins were recorded). */
const char *origin_name(uint8_t origin);
/* The origin that origin_name() calls name (len bytes); 0 for any other. */
uint8_t origin_parse(const char *name, size_t len);
/* Origins that metrics and `ban list` break bans down by, 0 last. */
#define IG_BAN_ORIGINS { IG_ORIGIN_CLI, IG_ORIGIN_DAEMON, IG_ORIGIN_CROWDSEC, IG_ORIGIN_FLEET, 0 }
/* action starttls: name of an enum ig_st_cause ("" for none), and whether
 * a reason is one of the scanner's (its events carry a verb and a cause). */
const char *st_cause_name(int cause);
bool st_reason(int reason);

#endif
