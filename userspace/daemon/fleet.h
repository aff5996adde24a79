/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fleet: many imapguard nodes count failures and share bans through one
 * Redis ([fleet] in the policy; README "Running a fleet").
 *
 * Keys under PREFIX (the policy's prefix):
 *   PREFIX:ban:CIDR     a ban's authoritative copy (JSON, the stream fields),
 *                       SET ... PX until it ends (no PX: permanent)
 *   PREFIX:bans         the ban stream (XADD MAXLEN ~ stream_max): v, op
 *                       (add|del), cidr, exp (wall ms, 0 = permanent), ttl
 *                       (ms), level (earlier bans), reason, node
 *   PREFIX:epoch        written once per Redis life (SET NX): its absence
 *                       means Redis lost our keys, and nodes refill their bans
 *   PREFIX:f:CIDR       failures in the window (sorted set by time)
 *   PREFIX:u:CIDR       distinct users (keyed hashes) failing from CIDR
 *   PREFIX:a:USERHASH   distinct sources failing one user
 *   PREFIX:node:NODE    heartbeat (JSON), PX 15 s; PREFIX:nodes the names
 *
 * Loop contract: everything runs in the daemon's epoll loop. Both Redis
 * connections (commands; XREAD BLOCK on the stream) are hiredis async
 * contexts whose fds carry SRC_FLEET tags (base/epsrc.h); nothing here
 * blocks. Redis away: failures and publications wait in a bounded queue
 * (what does not fit is dropped and counted) and the node keeps detecting
 * and enforcing alone; the daemon's 1 s tick reconnects with backoff.
 *
 * Everything read from Redis is hostile input: fleet_entry_parse() and
 * fleet_value_parse() validate it like CLI input, and a refused entry is
 * skipped and counted by reason.
 */
#ifndef IMAPGUARD_FLEET_H
#define IMAPGUARD_FLEET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "authlog/detector.h"
#include "base/addr.h"
#include "policy/policy.h"

#define FLEET_FIELDS_MAX	16	/* fields of one stream entry */
#define FLEET_VALUE_MAX		1024	/* bytes of a ban key's value */
#define FLEET_USER_MAX		128	/* user name bytes kept for an account event */

/* Why an entry from Redis was not applied (imapguard_fleet_refused_total). */
enum fleet_refusal {
	FLEET_OK = 0,
	FLEET_R_MALFORMED,	/* not a ban entry: missing, unknown or repeated field, bad op */
	FLEET_R_SIZE,		/* a field too long, or bytes not allowed in it */
	FLEET_R_ADDRESS,	/* cidr does not parse strictly (host bits set, junk) */
	FLEET_R_PREFIX,		/* shorter than fleet_min_prefix */
	FLEET_R_ALLOWED,	/* inside the allow list */
	FLEET_R_EXPIRY,		/* already over, or beyond the longest ban */
	FLEET_R_MAX,
};

/* One field of an entry, as Redis sent it (not NUL-terminated). */
struct fleet_field {
	const char *name, *val;
	size_t name_len, val_len;
};

/* What an entry is checked against. */
struct fleet_check {
	uint8_t min_plen4, min_plen6;	/* fleet_min_prefix */
	uint64_t now_ms;		/* wall clock */
	uint64_t max_ttl_ms;		/* the longest ban (365 days) */
};

/* A validated ban entry. */
struct fleet_ban {
	struct ig_prefix prefix;
	bool del;			/* op del: lift it */
	uint64_t exp_ms;		/* wall clock ms; 0 = permanent */
	uint64_t ttl_ms;		/* its duration when decided (escalation) */
	uint32_t level;			/* earlier bans of this prefix */
	char reason[IG_REASON_LEN];
	char node[POL_FLEET_NAME_LEN];
};

/* Parse and check n fields into *out. Returns FLEET_OK or the refusal;
 * *out is written in part on a refusal. Reads only f[0..n) and the bytes
 * they point at. The allow list is the caller's (FLEET_R_ALLOWED). */
int fleet_entry_parse(const struct fleet_field *f, size_t n, const struct fleet_check *c,
		      struct fleet_ban *out);
/* The same for a ban key's value: a JSON object of string fields (at most
 * FLEET_VALUE_MAX bytes, no duplicate keys). */
int fleet_value_parse(const char *json, size_t len, const struct fleet_check *c,
		      struct fleet_ban *out);
/* The JSON value (and stream fields) of b; a new reference or NULL. */
json_t *fleet_ban_json(const struct fleet_ban *b);
const char *fleet_refusal_name(int r);

struct fleet;

/*
 * How the fleet acts on the node; the daemon fills these. Each runs inside
 * the loop iteration that read the reply.
 */
struct fleet_hooks {
	void *ctx;
	/* Enforce b (validated, allow list checked; another node's): 0 or -errno. */
	int (*ban)(void *ctx, const struct fleet_ban *b);
	/* Lift the ban of exactly p, whoever set it. */
	int (*unban)(void *ctx, const struct ig_prefix *p);
	bool (*is_allowed)(void *ctx, const struct ig_prefix *p);
	/* Fleet-wide figures for a failure this node reported. */
	void (*figures)(void *ctx, const uint8_t addr[16], const char *user,
			const struct det_fleet *fig);
	/* Call fleet_refill(f, b) for each live ban this node decided (Redis
	 * came back empty). */
	void (*own_bans)(void *ctx, struct fleet *f);
	/* A full resync saw these bans in Redis (sorted by memcmp of the
	 * prefix): fleet-origin bans not among them were lifted meanwhile. */
	void (*resynced)(void *ctx, const struct ig_prefix *seen, size_t n);
};

/* Connects later (fleet_tick), never here. hooks is copied; pol and det are
 * copied. 0, -ENOMEM, or the password file's error (logged). */
int fleet_open(struct fleet **f, const struct pol_fleet *pol, const struct pol_detect *det,
	       const struct fleet_hooks *hooks, int epfd);
void fleet_close(struct fleet *f);
/* Whether the new policy's fleet settings differ (the daemon reopens). */
bool fleet_changed(const struct fleet *f, const struct pol_fleet *pol,
		   const struct pol_detect *det);
/* A SRC_FLEET fd is ready (events from epoll). */
void fleet_ready(struct fleet *f, void *src, uint32_t events);
/* Once a second: reconnects, timeouts, heartbeat, queue flush. */
void fleet_tick(struct fleet *f);

/* A failure this node counted (share = failures). */
void fleet_failure(struct fleet *f, const uint8_t addr[16], const char *user, uint32_t attempts);
/* A success cleared addr's failures (reset_on_success): clear the fleet's
 * counters of addr and its IPv6 prefix too (share = failures). */
void fleet_reset(struct fleet *f, const uint8_t addr[16]);
/* Publish a ban this node decided, or its lifting (share = bans); b->node
 * is filled in here. */
void fleet_publish(struct fleet *f, const struct fleet_ban *b);
/* From hooks->own_bans: publish b unless Redis already has that prefix. */
void fleet_refill(struct fleet *f, const struct fleet_ban *b);
const char *fleet_node(const struct fleet *f);

/* The status reply's "fleet" object, also `imapguard fleet status`. */
json_t *fleet_status_json(struct fleet *f);
void fleet_metrics(struct fleet *f, FILE *out);

#endif
