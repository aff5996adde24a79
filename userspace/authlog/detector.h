/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Ban decision engine fed by the auth-log parser. No clock of its own: every
 * call takes now_ns, so tests drive it with a fake clock. If ban history is
 * saved across restarts, now_ns must come from a clock that survives them
 * (CLOCK_REALTIME).
 *
 * Rules (thresholds from struct pol_detect):
 *  brute     max_failures failures from one address within window
 *  spray     max_users distinct users failing from one address within window
 *  v6prefix  the same two rules over an IPv6 /v6_plen; checked after the
 *            address, so an address alone hitting a limit bans the address,
 *            and the prefix follows when a second address of it fails
 *  subnet    max_sources banned addresses/prefixes inside one IPv4
 *            /subnet_plen4 or IPv6 /subnet_plen6 ban the whole subnet
 *  account   one user failing from account_max_sources distinct sources
 *            within window: an event (DET_EV_ACCOUNT), never a ban
 * A ban lasts ban_time from the failure that caused it; a further failure
 * from a banned source re-arms it (extend). Each new ban of the same prefix
 * lasts ban_factor times longer, up to ban_max; history is forgotten once a
 * ban has been over for ban_max. Memory is bounded by the capacity given to
 * detector_new(): the least recently seen entries are evicted and counted.
 */
#ifndef IMAPGUARD_DETECTOR_H
#define IMAPGUARD_DETECTOR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/addr.h"
#include "policy/policy.h"

/* Per-entry set sizes: larger policy values behave as these. */
#define DET_USERS_MAX	64	/* max_users */
#define DET_SOURCES_MAX	256	/* max_sources, account_max_sources */

enum det_event_kind {
	DET_EV_BAN = 1,		/* ban (or re-arm) prefix */
	DET_EV_ACCOUNT,		/* distributed spraying against one user */
};

struct det_event {
	enum det_event_kind kind;
	/* DET_EV_BAN */
	struct ig_prefix prefix;	/* address (plen 128) or prefix to ban */
	uint64_t duration_ns;
	uint64_t until_ns;		/* now + duration */
	const char *rule;		/* "brute", "spray", "subnet", "v6prefix" */
	uint32_t failures;		/* failures in window; subnet: banned sources in it */
	uint32_t users;			/* distinct users in window; account: sources */
	uint64_t window_ns;
	uint32_t repeat;		/* earlier bans of this prefix (escalation step) */
	bool extend;			/* a running ban re-armed, not a new ban */
	bool dry_run;			/* policy dry_run: log, do not ban */
	/* DET_EV_ACCOUNT: user, users = distinct sources, window_ns */
	const char *user;
};

struct det_hooks {
	void (*event)(const struct det_event *ev, void *ctx);
	/* Never count or ban what this accepts (an address as a /128, or a
	 * prefix about to be banned). NULL: nothing is allowed. */
	bool (*allowed)(const struct ig_prefix *p, void *ctx);
	/* Every failure counted here (not allowed, not inside a running ban),
	 * so a fleet can count it too; its fleet-wide figures come back later
	 * through detector_fleet(). NULL: no fleet. */
	void (*failure)(const uint8_t addr[16], const char *user, uint32_t attempts, void *ctx);
	/* A success that cleared addr's failures (reset_on_success): the
	 * fleet clears its counters too. NULL: no fleet. */
	void (*reset)(const uint8_t addr[16], void *ctx);
	void *ctx;
};

/* Fleet-wide figures for one source over the policy's window, counted
 * elsewhere (daemon/fleet.c) including this node's own failures. */
struct det_fleet {
	uint32_t failures, users;		/* the address */
	uint32_t pfx_failures, pfx_users;	/* its IPv6 /v6_plen; 0 for IPv4 */
	uint32_t account_sources;		/* distinct sources failing user */
};

/* One ban-history entry, for the state file. */
struct det_history {
	struct ig_prefix prefix;
	uint32_t bans;			/* bans so far */
	uint64_t last_ban_ns;		/* start of the last ban */
	uint64_t last_duration_ns;
	uint64_t until_ns;		/* end of the last ban (may be extended) */
	char rule[12];
};

struct det_stats {
	uint64_t failures, successes, allowed, bans, extensions, account_events;
	uint64_t evictions;		/* sources, histories, accounts, subnets forgotten */
	uint32_t sources, histories, accounts, subnets;	/* entries held now */
};

struct detector;

/* capacity: tracked sources (and ban histories); accounts and subnets get an
 * eighth each. NULL + errno (EINVAL for a bad policy, ENOMEM; ENOSYS when
 * OpenSSL has no SipHash for the user-name hash). */
struct detector *detector_new(const struct pol_detect *pol, const struct det_hooks *hooks,
			      uint32_t capacity);
void detector_free(struct detector *d);

/* A failed login: attempts failures from addr for user (NULL or "" = unknown). */
int detector_fail(struct detector *d, const uint8_t addr[16], const char *user,
		  uint32_t attempts, uint64_t now_ns);
/* Decide on fleet figures for addr (and user, NULL or "" = unknown) with the
 * same rules and thresholds as detector_fail(): brute, spray, v6prefix and the
 * account event. Nothing is counted here, and a source that is allowed or
 * already banned (here) is left alone. 0 or -EINVAL. */
int detector_fleet(struct detector *d, const uint8_t addr[16], const char *user,
		   const struct det_fleet *fig, uint64_t now_ns);
/* A ban decided elsewhere (the fleet): its history here, so that a failure
 * seen here re-arms it and the next ban here escalates from its level.
 * Merged with an entry for the same prefix (the larger count and end win). */
int detector_note_ban(struct detector *d, const struct det_history *h);
/* A successful login: with reset_on_success, clears addr's (and its IPv6
 * prefix's) failures. */
int detector_success(struct detector *d, const uint8_t addr[16], uint64_t now_ns);

/* What the auth policy server's verdicts read (authlog/verdict.h), without
 * changing anything: no entry is created, none is made more recent. */
struct det_query {
	uint32_t failures;		/* in window: the address's, or its IPv6 prefix's if more */
	uint32_t users;			/* distinct users failing from it (same choice) */
	bool banned;			/* a running detector ban covers the address */
	uint32_t account_sources;	/* distinct sources failing user in window */
	bool account_attacked;		/* account_sources >= account_max_sources */
};
/* user NULL or "": no account part. 0 or -EINVAL. */
int detector_query(struct detector *d, const uint8_t addr[16], const char *user, uint64_t now_ns,
		   struct det_query *q);
/* The thresholds in force (a copy of the policy's [detect]). */
const struct pol_detect *detector_policy(const struct detector *d);

/* "imapguard why ADDR": failures and users in window, ban history. Returns 0
 * or -ENOSPC when buf was too small (output truncated). */
int detector_explain(struct detector *d, const uint8_t addr[16], uint64_t now_ns,
		     char *buf, size_t len);

/* Walk the ban history; a non-zero return from fn stops and is returned. */
int detector_history_foreach(struct detector *d,
			     int (*fn)(const struct det_history *h, void *ctx), void *ctx);
/* Put back one saved entry (replaces an entry for the same prefix). */
int detector_history_restore(struct detector *d, const struct det_history *h);

void detector_stats(const struct detector *d, struct det_stats *st);

#endif
