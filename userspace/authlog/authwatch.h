/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's auth-log half: followers (files, journald) feed the parser,
 * the parser feeds the detector, and the detector's decisions become bans.
 */
#ifndef IMAPGUARD_AUTHWATCH_H
#define IMAPGUARD_AUTHWATCH_H
#include <stdint.h>
#include <stdio.h>

#include <stdbool.h>
#include <jansson.h>
#include "base/addr.h"
#include "common.h"

struct authwatch;
struct policy;
struct det_event;

/*
 * How the auth-log half acts on the world. Its owner (the daemon) passes
 * these at creation, so this layer never calls upward. Each runs inside the
 * loop iteration that read the line, with ctx as its first argument.
 */
struct aw_hooks {
	void *ctx;
	/* Ban p for duration_ns (0: until lifted); 0 or -errno (logged). */
	int (*ban)(void *ctx, const struct ig_prefix *p, uint64_t duration_ns, const char *reason);
	/* The entry for exactly p, live or expired: 0, or -ENOENT. */
	int (*get_ban)(void *ctx, const struct ig_prefix *p, struct ig_ban_val *v);
	/* A live (unexpired) ban for exactly p exists. */
	bool (*has_ban)(void *ctx, const struct ig_prefix *p);
	/* The allow list covers p (any port): never ban it. */
	bool (*is_allowed)(void *ctx, const struct ig_prefix *p);
	/* One event for `imapguard events`: a compact JSON object (one line,
	 * valid UTF-8), owned by the caller; copy it to keep it. */
	void (*emit)(void *ctx, const char *json);
	/* A failure the detector counted (for the fleet's shared counters);
	 * NULL: none. user is NULL or a NUL-terminated name, valid during the call. */
	void (*failure)(void *ctx, const uint8_t addr[16], const char *user, uint32_t attempts);
	/* A ban (or extension) the detector decided is now in force: ev's
	 * prefix, duration and escalation step (repeat), for the fleet. NULL: none. */
	void (*decided)(void *ctx, const struct det_event *ev);
	/* A success cleared addr's failures here (reset_on_success). NULL: none. */
	void (*reset)(void *ctx, const uint8_t addr[16]);
};

/* A detector for pol; the sources open in authwatch_start(), each with an
 * epoll tag of type SRC_AUTHLOG (base/epsrc.h). hooks is copied. 0 or -ENOMEM. */
int authwatch_open(struct authwatch **aw, const struct aw_hooks *hooks, const struct policy *pol,
		   int epfd);
/* Open the sources, at their saved positions (after state load). */
int authwatch_start(struct authwatch *aw);
/* New policy: thresholds change, sources are reopened where they changed. */
int authwatch_reconfigure(struct authwatch *aw, const struct policy *pol);
void authwatch_ready(struct authwatch *aw, void *src);	/* a source fd is readable */
void authwatch_tick(struct authwatch *aw);		/* once a second */
int authwatch_save(struct authwatch *aw, FILE *f);
struct det_fleet;
struct det_history;
/* Fleet-wide figures for addr (and user) came back: decide on them
 * (detector_fleet()); bans go out through hooks->ban as for local ones. */
void authwatch_fleet(struct authwatch *aw, const uint8_t addr[16], const char *user,
		     const struct det_fleet *fig);
/* A ban the fleet decided: keep its history (detector_note_ban()). */
void authwatch_note_ban(struct authwatch *aw, const struct det_history *h);
int authwatch_load_line(struct authwatch *aw, char *line);
/*
 * JSON for the daemon's replies (imapguard(8) "JSON OUTPUT"). Each returns a
 * new reference the caller owns (json_object_set_new() takes it), or NULL
 * when out of memory; strings from logs and policy go in through
 * json_text(), so the result is always valid UTF-8.
 */
/* The status reply's "authlog" object: counters and one entry per source. */
json_t *authwatch_status_json(struct authwatch *aw);
/* The why reply's "detector" string: failures, users and ban history of addr. */
json_t *authwatch_why_json(struct authwatch *aw, const uint8_t addr[16]);
/* The event object (type "ban" or "account") emitted for ev, at wall_ns
 * (CLOCK_REALTIME, ns). Pure: no authwatch needed. */
json_t *authwatch_event_json(const struct det_event *ev, uint64_t wall_ns);
/* Prometheus lines: lines, failures per format, bans per rule. */
void authwatch_metrics(struct authwatch *aw, FILE *f);
void authwatch_close(struct authwatch *aw);
/* The detector in force (replaced by authwatch_reconfigure: do not keep
 * it past the call that asked). Its ban decisions go through the hooks. */
struct detector *authwatch_detector(struct authwatch *aw);
/* A Dovecot session the auth policy server counts: the log lines of it are
 * not counted again (one count per attempt with both feeds on). */
void authwatch_claim_session(struct authwatch *aw, const char *session);

#endif
