/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's MFA service (issue 17): the knock socket and the unlock
 * portal in the one epoll loop, the secrets file (re-read when it changes),
 * failures that lock users and ban sources, grants persisted in the state
 * file. The daemon owns it and fills in the hooks.
 */
#ifndef IMAPGUARD_MFAD_H
#define IMAPGUARD_MFAD_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "base/addr.h"
#include "fastpath/fastpath.h"
#include "policy/policy.h"

struct mfad_hooks {
	void *ctx;
	/* Ban through the daemon's normal path (lock, map, state, warning). */
	int (*ban)(void *ctx, const struct ig_prefix *p, uint64_t duration_ns, const char *reason);
	/* An event line (JSON) for followers and the recent list. */
	void (*emit)(void *ctx, const char *json);
	/* The pin-dir lock around map writes. */
	void (*lock)(void *ctx, bool on);
	/* Write the state file soon, within a second (an accepted code's time
	 * step must survive a restart: replay protection). */
	void (*save)(void *ctx);
};

struct mfad;

/* With no [mfa] section in use (no secrets file, no knock_port, no portal)
 * this still succeeds: grants then persist and expire, nothing listens. */
int mfad_open(struct mfad **out, const struct mfad_hooks *h, const struct policy *pol,
	      struct ig_maps *m, int epfd);
/* The knock socket is readable (its ep_src's ptr is the mfad). */
void mfad_knock_ready(struct mfad *s);
/* Once a second: re-read a changed secrets file, sweep expired grants. */
void mfad_tick(struct mfad *s);
/* After a policy reload: new TTLs and limits; sockets are reopened when
 * their address changed. */
void mfad_reconfigure(struct mfad *s, const struct policy *pol);
/* State file records: "grant ADDR USER EXPIRES CREATED" and "mfa ..." */
int mfad_save(struct mfad *s, FILE *f);
/* One state line; -ENOENT if it is not ours. adopted: the maps are current,
 * grants are not restored from the file. */
int mfad_load_line(struct mfad *s, const char *line, bool adopted);
/* The MFA metrics; the portal's HTTP ones come with the other servers'
 * through http_metrics(), which must print each family once. */
void mfad_metrics(struct mfad *s, FILE *f);
/* The portal's server, or NULL (also for s NULL). */
struct http_server *mfad_http(struct mfad *s);
/*
 * bind_user: whether user may log in from addr on an access = grant port.
 * 0 yes (a live grant of user covers addr, or no grant covers it at all:
 * the source got in by an allow list), -EACCES no (addr's grants all belong
 * to other users). Always 0 when bind_user is off.
 */
int mfad_bind_check(struct mfad *s, const uint8_t addr[16], const char *user);
void mfad_close(struct mfad *s);

#endif
