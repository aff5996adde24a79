/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Grants (issue 17, README "Requiring MFA for IMAP"): the sources that may
 * open connections to access = grant ports, in the pinned ig_grants hash.
 * A key is an exact address or an IPv6 /64, as for bans; its value holds up
 * to IG_GRANT_USERS users' grants (a NAT), each with its own expiry. BPF
 * checks only the latest expiry, so an expired grant stops admitting new
 * connections with no daemon running. Writers hold the pin-dir lock.
 */
#ifndef IMAPGUARD_GRANTS_H
#define IMAPGUARD_GRANTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/addr.h"
#include "fastpath/fastpath.h"

/* A user name fit for a grant, the secrets file and the knock: 1..63 bytes
 * of letters, digits and "._@+-" (mail logins), not starting with '-'. */
bool grant_user_ok(const char *user);

/* Whether p can key a grant: an address (plen 128, IPv4 included) or an
 * IPv6 /64. */
bool grant_prefix_ok(const struct ig_prefix *p);

/* The key a grant for source addr takes: the address itself, or its /64
 * when plen6 is 64 and addr is IPv6. */
void grant_prefix_of(const uint8_t addr[16], unsigned int plen6, struct ig_prefix *out);

/*
 * Grant user access from p for ttl_ns (1 s .. 365 days). A grant of the same
 * user is extended (or shortened) to the new expiry; when every slot holds
 * another live user's grant, the one that expires first gives way. 0,
 * -EINVAL (bad prefix or user), -ERANGE (ttl), -E2BIG (map full, counted).
 * *expires_mono (may be NULL) gets the expiry, CLOCK_MONOTONIC ns.
 */
int grant_add(struct ig_maps *m, const struct ig_prefix *p, const char *user,
	      uint64_t ttl_ns, uint64_t *expires_mono);
/* As grant_add() with an absolute CLOCK_MONOTONIC expiry and a creation
 * time (restoring from the state file). */
int grant_put(struct ig_maps *m, const struct ig_prefix *p, const char *user,
	      uint64_t expires_mono, uint64_t created);
/* Remove user's grant on p (user NULL: every grant on p). -ENOENT if none. */
int grant_del(struct ig_maps *m, const struct ig_prefix *p, const char *user);
/* Remove every grant of user; returns how many, or -errno. */
int grant_del_user(struct ig_maps *m, const char *user);

struct grant_info {
	struct ig_prefix pfx;
	uint64_t expires_ns;		/* CLOCK_MONOTONIC */
	uint64_t created;		/* wall clock seconds */
	uint64_t packets;		/* of the whole entry (all its users) */
	char user[IG_USER_LEN];
};

/* One row per (prefix, user), expired ones included; caller frees *out. */
int grant_list(struct ig_maps *m, struct grant_info **out, size_t *n);
/* Rows of the live grants that cover addr (its address, its /64). */
int grant_lookup(struct ig_maps *m, const uint8_t addr[16], struct grant_info **out, size_t *n);
/* Drop expired users and entries; returns how many slots were freed. */
int grant_sweep(struct ig_maps *m);

/* Where an incremental sweep stopped. Zero-initialise. */
struct grant_cursor {
	struct ig_ban_key key;
	bool have;
};
/* grant_sweep() over at most budget entries from c on (the daemon's 1 s
 * timer: a full map is never walked in one tick); wraps around. */
int grant_sweep_some(struct ig_maps *m, struct grant_cursor *c, unsigned int budget);

/*
 * bind_user: may user log in from addr? 0 when user holds a live grant that
 * covers addr, -ENOENT when no live grant covers addr at all (the source got
 * in some other way: an allow list, an open port), -EACCES when addr's live
 * grants all belong to other users.
 */
int grant_bind_check(struct ig_maps *m, const uint8_t addr[16], const char *user);

#endif
