// SPDX-License-Identifier: GPL-2.0
/*
 * imapguard run: the daemon. One epoll loop over the ring buffer, the
 * control socket, signals, a 1 s timer and the auth-log sources. Enforcement
 * lives in pinned maps and links, so the daemon can die or restart without a
 * moment where a port or a ban is not enforced.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <systemd/sd-daemon.h>
#include "authlog/authwatch.h"
#include "daemon/authpolicy.h"
#include "daemon/ctl.h"
#include "daemon/crowdsec.h"
#include "base/epsrc.h"
#include "base/hash.h"
#include "base/json.h"
#include "daemon/daemon.h"
#include "daemon/fleet.h"
#include "daemon/http.h"
#include "daemon/mfad.h"
#include "fastpath/lists.h"
#include "base/log.h"
#include "base/prom.h"
#include "fastpath/metrics.h"
#include "policy/policy.h"
#include "policy/sign.h"
#include "base/state.h"

#define RECENT_EVENTS	256
#define CLIENT_OUT_MAX	(256 * 1024)	/* per follower; beyond it events are dropped */
#define MAX_CLIENTS	64		/* control clients; HTTP has its own cap */
#define CTL_REQUEST_NS	(5 * 1000000000ULL)	/* a whole request line within this */
/* metrics_listen: a scraper needs one connection at a time. */
#define METRICS_MAX_CONNS	16
#define METRICS_MAX_PER_IP	4
#define METRICS_TIMEOUT_S	10
#define METRICS_MAX_REQUEST	(16 * 1024)
#define LOG_EVENTS_PER_S 50		/* event log lines per second, the rest summarised */
#define SOURCES		CTL_TOP_MAX	/* per-source aggregate slots */
#define SWEEP_PER_TICK	8192		/* bans examined per second for expiry */
#define SAVE_INTERVAL_NS (2 * 1000000000ULL)	/* state file at most this often */
#define KNOWN_GOOD_SAVE_NS (60 * 1000000000ULL)	/* known-good changes alone: a save at most this often */

/* Why a control client was refused or closed (imapguard_control_refused_total). */
enum ctl_refusal { CTL_REF_LIMIT, CTL_REF_PERMISSION, CTL_REF_TIMEOUT, CTL_REF_BAD_REQUEST,
		   CTL_REF_MAX };

static const char *const ctl_refusal_names[CTL_REF_MAX] = {
	[CTL_REF_LIMIT] = "limit", [CTL_REF_PERMISSION] = "permission",
	[CTL_REF_TIMEOUT] = "timeout", [CTL_REF_BAD_REQUEST] = "bad_request",
};

struct client {
	struct ep_src src;
	int fd;
	bool follow;
	uint64_t deadline;	/* mono ns by which the request line must be in; 0: it is */
	char in[CTL_MAX_REQ];
	size_t inlen;
	char *out;
	size_t outlen;
	uint64_t dropped;
	struct client *next;
};

struct source_agg {
	uint8_t addr[16];
	uint64_t drops[IG_R_MAX];
	uint64_t total;
	/* action starttls: the last command refused (or logged) and why */
	char st_verb[IG_VERB_LEN + 1];
	uint8_t st_cause;
	uint64_t st_ts_ns;
};

struct daemon {
	struct policy pol;
	struct daemon_opts o;		/* copied: start-up fills the defaults in */
	struct ig_maps m;
	int lock_fd, pin_fd, epfd, sigfd, timerfd, listenfd;
	struct ep_src sig_src, timer_src, rb_src, listen_src;
	struct ring_buffer *rb;
	struct client *clients;
	int nclients;
	uint64_t ctl_refused[CTL_REF_MAX];
	struct http_server *http;	/* metrics_listen, or NULL */
	struct http_route metrics_route;
	struct authwatch *aw;
	struct mfad *mfa;		/* knock, portal, grants (mfad.h) */
	struct authpolicy *ap;		/* [authpolicy], or NULL */
	/* Extension of the allow verdict (authpolicy_set_check), set before
	 * the server opens and applied again whenever it is (re)opened. */
	void (*ap_check)(void *ctx, const struct vd_request *rq, struct vd_result *res);
	void *ap_check_ctx;
	struct fleet *fleet;		/* [fleet], or NULL */
	bool fleet_reopened;		/* events of this epoll batch may name the old one */
	struct crowdsec *cs;		/* [crowdsec], or NULL */
	struct crowdsec *cs_retired[4];	/* replaced by a reload: closed after the batch */
	uint64_t start_mono;
	uint64_t events_seen, events_dropped_clients, log_suppressed;
	uint64_t per_reason[IG_R_MAX];
	uint64_t log_window, log_count;
	struct source_agg *sources;
	struct hasher *src_hash;	/* random key: sources are attacker-chosen */
	uint64_t source_evictions;
	char *recent[RECENT_EVENTS];
	unsigned int recent_next;
	bool last_reload_ok;
	time_t last_reload_time;
	char last_reload_msg[POL_ERR_LEN];
	bool dirty, stop;
	bool adopted;		/* pins existed at start: the maps, not the file, are current */
	struct sweep_cursor sweep;
	uint64_t last_save;
	/* The state file's writer (save_state_bg), while one runs */
	pid_t saver_pid;
	int saver_fd;			/* its pidfd, in the loop */
	struct ep_src saver_src;
	uint64_t saver_start;
	uint64_t save_last_ns, save_failures;
	gid_t ctl_gid;
	char *oom_reply;	/* made at start: the answer when a reply cannot be built */
};

/* ---- output to clients ------------------------------------------------- */

static void client_close(struct daemon *d, struct client *c)
{
	struct client **pp;

	for (pp = &d->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
	d->nclients--;
}

static void client_flush(struct daemon *d, struct client *c)
{
	struct epoll_event ev = { .data.ptr = &c->src };
	ssize_t n;

	while (c->outlen) {
		n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			c->outlen = 0;
			return;
		}
		memmove(c->out, c->out + n, c->outlen - n);
		c->outlen -= n;
	}
	ev.events = EPOLLIN | (c->outlen ? EPOLLOUT : 0);
	epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Queue bytes; a slow reader loses them (counted), never the daemon's time. */
static void client_queue(struct daemon *d, struct client *c, const char *buf, size_t n,
			 bool newline)
{
	char *tmp;

	if (c->outlen + n + 1 > CLIENT_OUT_MAX) {
		c->dropped++;
		d->events_dropped_clients++;
		return;
	}
	tmp = realloc(c->out, c->outlen + n + 1);
	if (!tmp)
		return;
	c->out = tmp;
	memcpy(c->out + c->outlen, buf, n);
	c->outlen += n;
	if (newline)
		c->out[c->outlen++] = '\n';
	client_flush(d, c);
}

static void client_send(struct daemon *d, struct client *c, const char *line)
{
	client_queue(d, c, line, strlen(line), true);
}

/* Send j as one reply line and drop the reference. Built whole in memory
 * (no fixed buffer), so a reply is never cut; NULL (out of memory while
 * building it) sends the prepared error instead. */
static void client_send_json(struct daemon *d, struct client *c, json_t *j)
{
	char *line = json_take_string(j);

	client_send(d, c, line ? line : d->oom_reply);
	free(line);
}

static json_t *error_json(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static void client_send_error(struct daemon *d, struct client *c, const char *msg)
{
	client_send_json(d, c, error_json(msg));
}

static void daemon_emit(void *ctx, const char *json)
{
	struct daemon *d = ctx;

	free(d->recent[d->recent_next]);
	d->recent[d->recent_next] = strdup(json);
	d->recent_next = (d->recent_next + 1) % RECENT_EVENTS;
	for (struct client *c = d->clients; c; c = c->next)
		if (c->follow)
			client_send(d, c, json);
}

static double wall_of_mono(uint64_t mono)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9 - (double)(mono_ns() - mono) / 1e9;
}

static int daemon_get_ban(void *ctx, const struct ig_prefix *p, struct ig_ban_val *v)
{
	struct daemon *d = ctx;

	return ban_get(&d->m, p, v);
}

static bool daemon_has_ban(void *ctx, const struct ig_prefix *p)
{
	struct daemon *d = ctx;
	struct ig_ban_val v;

	return !ban_get(&d->m, p, &v) && (!v.expires_ns || v.expires_ns > mono_ns());
}

static bool daemon_is_allowed(void *ctx, const struct ig_prefix *p)
{
	struct daemon *d = ctx;
	struct ig_lpm_key k = { .prefixlen = p->plen };
	struct ig_allow_val v;

	/* Longest match at or above p's length: p lies inside an allowed net. */
	memcpy(k.addr, p->addr, 16);
	return !bpf_map_lookup_elem(d->m.allow, &k, &v);
}

/* Map writes take the pin-dir lock like any CLI: see lists.h. Held for one
 * write at a time, so a CLI never waits long. */
static void map_lock(struct daemon *d, bool on)
{
	if (d->pin_fd >= 0 && flock(d->pin_fd, on ? LOCK_EX : LOCK_UN))
		pr_warn("Couldn't %slock '%s': %s", on ? "" : "un", d->o.pin_dir, strerror(errno));
}

static void daemon_map_lock(void *ctx, bool on)
{
	map_lock(ctx, on);
}

static void save_state_bg(struct daemon *d);

/* At once, not after SAVE_INTERVAL_NS: an accepted code's time step must be
 * on disk before a crash could forget it (and let the code in again). A
 * child writes it, so the knocks queued behind wait for no fsync; while
 * another save runs, this one follows it (saver_reap). */
static void daemon_save_soon(void *ctx)
{
	struct daemon *d = ctx;

	d->dirty = true;
	d->last_save = 0;
	save_state_bg(d);
}

static int ban_origin(struct daemon *d, const struct ig_prefix *p, uint64_t duration_ns,
		      const char *reason, uint8_t origin)
{
	char a[ADDR_STRLEN];
	int err;

	map_lock(d, true);
	err = ban_add_from(&d->m, p, duration_ns, reason, origin);
	map_lock(d, false);

	addr_format(p, a);
	if (err)
		pr_warn("Couldn't ban %s: %s", a, err == -E2BIG ? "ban map full" : strerror(-err));
	d->dirty = true;
	return err;
}

static int daemon_ban(void *ctx, const struct ig_prefix *p, uint64_t duration_ns,
		      const char *reason)
{
	return ban_origin(ctx, p, duration_ns, reason, IG_ORIGIN_DAEMON);
}

/* The detector's bans: imapguard's own, so with push_alerts they also go to
 * CrowdSec. Bans restored from the state file or from elsewhere do not. */
static int daemon_detector_ban(void *ctx, const struct ig_prefix *p, uint64_t duration_ns,
			       const char *reason)
{
	struct daemon *d = ctx;
	struct ig_ban_val v;
	int err;

	/* A CrowdSec decision that outlasts this ban stays in force (and
	 * CrowdSec already knows the address). */
	if (!ban_get(&d->m, p, &v) && v.origin == IG_ORIGIN_CROWDSEC && duration_ns &&
	    (!v.expires_ns || v.expires_ns >= mono_ns() + duration_ns))
		return 0;
	err = daemon_ban(ctx, p, duration_ns, reason);
	if (!err && d->cs)
		crowdsec_local_ban(d->cs, p, duration_ns, reason);
	return err;
}

/* ---- CrowdSec hooks (crowdsec.h) --------------------------------------- */

static int cs_ban(void *ctx, const struct ig_prefix *p, uint64_t ttl_ns, const char *reason)
{
	struct daemon *d = ctx;
	int err;

	map_lock(d, true);
	/* A longer ban of another origin stays: a decision never shortens it. */
	err = ban_add_unless_longer(&d->m, p, ttl_ns, reason, IG_ORIGIN_CROWDSEC);
	map_lock(d, false);
	d->dirty |= !err;
	return err < 0 ? err : 0;
}

/* Only a ban CrowdSec set is lifted: a local ban of the same address stays. */
static int cs_unban(void *ctx, const struct ig_prefix *p)
{
	struct daemon *d = ctx;
	int err;

	map_lock(d, true);
	err = ban_del_origin(&d->m, p, IG_ORIGIN_CROWDSEC);
	map_lock(d, false);
	d->dirty |= !err;
	return err;
}

static int cs_own_bans(void *ctx, struct ig_prefix **out, size_t *n)
{
	return ban_list_origin(&((struct daemon *)ctx)->m, IG_ORIGIN_CROWDSEC, out, n);
}

static int crowdsec_start(struct daemon *d, const struct pol_crowdsec *conf)
{
	const struct cs_hooks hooks = {
		.ctx = d, .ban = cs_ban, .unban = cs_unban, .is_allowed = daemon_is_allowed,
		.own_bans = cs_own_bans,
	};

	return conf->lapi[0] ? crowdsec_open(&d->cs, conf, &hooks, d->epfd) : 0;
}

/* A reload changed [crowdsec]: a new client (a full resync), the old one
 * closed after this loop batch, whose events may still name its fds. When
 * the new one cannot start, the old one goes on. */
static void crowdsec_reload(struct daemon *d, const struct pol_crowdsec *conf)
{
	struct crowdsec *old = d->cs;
	int i;

	if (old && !crowdsec_changed(old, conf)) {
		crowdsec_reread_key(old);	/* a rotated key needs no other change */
		return;
	}
	if (!old && !conf->lapi[0])
		return;
	d->cs = NULL;
	if (crowdsec_start(d, conf)) {
		pr_warn("crowdsec: the new [crowdsec] settings did not start; keeping the old ones");
		d->cs = old;
		return;
	}
	for (i = 0; i < 4 && d->cs_retired[i]; i++)
		;
	if (i == 4)
		crowdsec_close(old);	/* four reloads in one batch: no event is that old */
	else
		d->cs_retired[i] = old;
}

/* ---- fleet -------------------------------------------------------------- */

static int memcmp_prefix(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ig_prefix));
}

static uint64_t wall_ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* A ban entry of the maps as the fleet publishes it. */
static void ban_to_fleet(const struct ig_prefix *p, const struct ig_ban_val *v, uint64_t now_mono,
			 uint32_t level, uint64_t ttl_ns, struct fleet_ban *b)
{
	*b = (struct fleet_ban){ .prefix = *p, .level = level };
	b->exp_ms = v->expires_ns ? wall_ms_now() + (v->expires_ns - now_mono) / 1000000 + 1 : 0;
	b->ttl_ms = (ttl_ns ? ttl_ns : v->expires_ns ? v->expires_ns - now_mono : 0) / 1000000;
	snprintf(b->reason, sizeof(b->reason), "%.*s", (int)strnlen(v->reason, sizeof(v->reason)),
		 v->reason);
}

/* Publish the ban of p as the maps hold it now, or its lifting. A ban that
 * came from the fleet is not published again: its node did that; nor is a
 * CrowdSec decision: every node takes those from LAPI itself, and lifts
 * only its own copy when LAPI drops it. */
static void share_ban(struct daemon *d, const struct ig_prefix *p, uint32_t level, uint64_t ttl_ns)
{
	uint64_t now = mono_ns();
	struct ig_ban_val v;
	struct fleet_ban b = { .prefix = *p, .del = true };

	if (!d->fleet)
		return;
	if (!ban_get(&d->m, p, &v) && (!v.expires_ns || v.expires_ns > now)) {
		if (v.origin == IG_ORIGIN_FLEET || v.origin == IG_ORIGIN_CROWDSEC)
			return;
		ban_to_fleet(p, &v, now, level, ttl_ns, &b);
	}
	fleet_publish(d->fleet, &b);
}

static void daemon_decided(void *ctx, const struct det_event *ev)
{
	struct daemon *d = ctx;

	share_ban(d, &ev->prefix, ev->repeat, ev->duration_ns);
}

static void daemon_reset(void *ctx, const uint8_t addr[16])
{
	struct daemon *d = ctx;

	fleet_reset(d->fleet, addr);
}

static void daemon_failure(void *ctx, const uint8_t addr[16], const char *user, uint32_t attempts)
{
	struct daemon *d = ctx;

	fleet_failure(d->fleet, addr, user, attempts);
}

/* Another node's ban: enforced here unless a ban here already lasts longer. */
static int fleet_ban_hook(void *ctx, const struct fleet_ban *b)
{
	struct daemon *d = ctx;
	uint64_t now = mono_ns(), wall = wall_ms_now(), ttl;
	struct det_history h = { .prefix = b->prefix, .bans = b->level + 1,
				 .last_ban_ns = wall * 1000000ULL, .last_duration_ns = b->ttl_ms * 1000000ULL,
				 .until_ns = b->exp_ms ? b->exp_ms * 1000000ULL : UINT64_MAX / 2,
				 .rule = "brute" };
	char reason[IG_REASON_LEN], a[ADDR_STRLEN];
	struct ig_ban_val v;
	int err;

	if (d->aw)
		authwatch_note_ban(d->aw, &h);
	ttl = b->exp_ms ? (b->exp_ms > wall ? b->exp_ms - wall : 1) * 1000000ULL : 0;
	/* `ban list` shows who decided it: the node's name leads the reason,
	 * cut to fit (a long node name leaves less of the reason). */
	{
		int n = snprintf(reason, sizeof(reason), "%.38s: ", b->node);

		snprintf(reason + n, sizeof(reason) - n, "%.*s", (int)(sizeof(reason) - 1 - n),
			 b->reason);
	}
	if (!ban_get(&d->m, &b->prefix, &v) &&
	    (!v.expires_ns || (ttl && v.expires_ns >= now + ttl))) {
		/* The state file keeps no origin: a fleet ban restored from it
		 * after a reboot reads as the daemon's. The fleet's copy of it
		 * (same reason) gives it its origin back, with its own expiry. */
		if (v.origin != IG_ORIGIN_FLEET && !strncmp(v.reason, reason, sizeof(v.reason))) {
			map_lock(d, true);
			ban_add_from(&d->m, &b->prefix, v.expires_ns ? v.expires_ns - now : 0, reason,
				     IG_ORIGIN_FLEET);
			map_lock(d, false);
		}
		return 0;
	}
	map_lock(d, true);
	err = ban_add_from(&d->m, &b->prefix, ttl, reason, IG_ORIGIN_FLEET);
	map_lock(d, false);
	if (err)
		pr_warn("fleet: couldn't ban %s: %s", addr_format(&b->prefix, a), strerror(-err));
	else
		pr_info("fleet: ban %s from node %s (%s)", addr_format(&b->prefix, a), b->node,
			b->reason);
	d->dirty = true;
	return err;
}

static int fleet_unban_hook(void *ctx, const struct ig_prefix *p)
{
	struct daemon *d = ctx;
	char a[ADDR_STRLEN];
	int err;

	map_lock(d, true);
	err = ban_del(&d->m, p);
	map_lock(d, false);
	if (!err) {
		pr_info("fleet: ban of %s lifted", addr_format(p, a));
		d->dirty = true;
	}
	return err;
}

static bool fleet_allowed_hook(void *ctx, const struct ig_prefix *p)
{
	return daemon_is_allowed(ctx, p);
}

static void fleet_figures_hook(void *ctx, const uint8_t addr[16], const char *user,
			       const struct det_fleet *fig)
{
	struct daemon *d = ctx;

	if (d->aw)
		authwatch_fleet(d->aw, addr, user, fig);
}

struct refill {
	struct fleet *f;
	uint64_t now;
};

static int refill_one(void *ctx, const struct ig_prefix *p, const struct ig_ban_val *v)
{
	struct refill *r = ctx;
	struct fleet_ban fb;

	if (v->origin == IG_ORIGIN_FLEET || v->origin == IG_ORIGIN_CROWDSEC ||
	    (v->expires_ns && v->expires_ns <= r->now))
		return 0;
	ban_to_fleet(p, v, r->now, 0, 0, &fb);
	fleet_refill(r->f, &fb);
	return 0;
}

/* Redis came back without our keys: refill it with the bans decided here.
 * Streamed (ban_each): a copy of a million bans would take ~100 MB. */
static void fleet_own_bans(void *ctx, struct fleet *f)
{
	struct daemon *d = ctx;
	struct refill r = { f, mono_ns() };

	ban_each(&d->m, refill_one, &r);
}

/* A full resync: fleet bans whose keys are gone were lifted (or expired)
 * while we were away. */
static void fleet_resynced(void *ctx, const struct ig_prefix *seen, size_t nseen)
{
	struct daemon *d = ctx;
	struct ig_prefix *p;
	size_t n;

	if (ban_list_origin(&d->m, IG_ORIGIN_FLEET, &p, &n))
		return;
	for (size_t i = 0; i < n; i++)
		if (!bsearch(&p[i], seen, nseen, sizeof(*seen), memcmp_prefix))
			fleet_unban_hook(d, &p[i]);
	free(p);
}

static int open_fleet(struct daemon *d)
{
	const struct fleet_hooks h = {
		.ctx = d, .ban = fleet_ban_hook, .unban = fleet_unban_hook,
		.is_allowed = fleet_allowed_hook, .figures = fleet_figures_hook,
		.own_bans = fleet_own_bans, .resynced = fleet_resynced,
	};

	if (!d->pol.fleet.redis[0])
		return 0;
	return fleet_open(&d->fleet, &d->pol.fleet, &d->pol.detect, &h, d->epfd);
}

/* ---- ring buffer events ------------------------------------------------ */

static void aggregate(struct daemon *d, const struct ig_event *e)
{
	uint64_t h = hasher_sum(d->src_hash, e->addr, 16);
	struct source_agg *s, *victim = NULL;

	/* Open addressing, 8 probes; when all are taken the quietest source
	 * goes, so memory stays fixed however many sources a flood uses. */
	for (int i = 0; i < 8; i++) {
		s = &d->sources[(h + i) % SOURCES];
		if (!s->total || !memcmp(s->addr, e->addr, 16)) {
			victim = s;
			break;
		}
		if (!victim || s->total < victim->total)
			victim = s;
	}
	if (victim->total && memcmp(victim->addr, e->addr, 16)) {
		memset(victim, 0, sizeof(*victim));
		d->source_evictions++;
	}
	memcpy(victim->addr, e->addr, 16);
	victim->drops[e->reason % IG_R_MAX]++;
	victim->total++;
	if (st_reason(e->reason)) {
		memcpy(victim->st_verb, e->verb, IG_VERB_LEN);
		victim->st_cause = e->cause;
		victim->st_ts_ns = e->ts_ns;
	}
}

/* The aggregate of one source, or NULL. */
static const struct source_agg *agg_find(struct daemon *d, const uint8_t addr[16])
{
	uint64_t h = hasher_sum(d->src_hash, addr, 16);

	for (int i = 0; i < 8; i++) {
		const struct source_agg *s = &d->sources[(h + i) % SOURCES];

		if (s->total && !memcmp(s->addr, addr, 16))
			return s;
	}
	return NULL;
}

/* action starttls events name the verb (never its arguments) and a cause. */
static int event_starttls(json_t *j, const struct ig_event *e)
{
	if (!j || !st_reason(e->reason))
		return 0;
	return json_object_set_new(j, "verb", json_textn((const char *)e->verb,
				   strnlen((const char *)e->verb, IG_VERB_LEN))) ||
	       json_object_set_new(j, "cause", json_string(st_cause_name(e->cause)));
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct daemon *d = ctx;
	const struct ig_event *e = data;
	char a[ADDR_STRLEN], ifname[IF_NAMESIZE] = "?", *json, verb[IG_VERB_LEN + 1] = "";
	uint64_t now = mono_ns();
	json_t *j;

	if (len < sizeof(*e))
		return 0;
	d->events_seen++;
	d->per_reason[e->reason % IG_R_MAX]++;
	aggregate(d, e);
	addr_format_host(e->addr, a);
	if_indextoname(e->ifindex, ifname);
	/* Interface names are bytes to the kernel: json_text keeps it UTF-8. */
	j = json_pack("{s:o, s:s, s:s, s:s, s:i, s:o}", "ts",
		      json_fixed(wall_of_mono(e->ts_ns), 3),
		      "type", e->reason == IG_R_STARTTLS_LOGGED ? "logged" : "drop",
		      "reason", reason_name(e->reason), "addr", a,
		      "port", (int)e->dport, "iface", json_text(ifname));
	if (event_starttls(j, e))
		j = (json_decref(j), NULL);
	json = json_take_string(j);
	if (json)
		daemon_emit(d, json);
	free(json);
	if (now / 1000000000ULL != d->log_window) {
		if (d->log_suppressed)
			pr_info("%llu more events not logged (rate limit)",
				(unsigned long long)d->log_suppressed);
		d->log_window = now / 1000000000ULL;
		d->log_count = d->log_suppressed = 0;
	}
	/* The verb is the client's bytes: only upper-case atom characters get
	 * through the BPF scanner, but the log gets printable ASCII only. */
	for (int i = 0; st_reason(e->reason) && i < IG_VERB_LEN && e->verb[i]; i++)
		verb[i] = e->verb[i] > 0x20 && e->verb[i] < 0x7f ? e->verb[i] : '?';
	if (d->log_count++ < LOG_EVENTS_PER_S)
		pr_info("event %s src=%s dport=%u iface=%s%s%s%s%s", reason_name(e->reason), a,
			e->dport, ifname, verb[0] ? " verb=" : "", verb,
			st_reason(e->reason) ? " cause=" : "",
			st_reason(e->reason) ? st_cause_name(e->cause) : "");
	else
		d->log_suppressed++;
	return 0;
}

static uint64_t events_lost(struct daemon *d)
{
	struct ig_counter sum[IG_C_MAX];

	return counters_read(&d->m, sum) ? 0 : sum[IG_C_EVENTS_LOST].packets;
}

/* ---- state file -------------------------------------------------------- */

struct ban_out {
	FILE *f;
	uint64_t now;
	time_t wall;
};

/* One live ban, its expiry as wall-clock time: CLOCK_MONOTONIC restarts
 * with the host. "ban ADDR EXPIRES CREATED origin=NAME REASON"; files
 * written before origins were kept have no origin= word. */
static int put_ban(void *ctx, const struct ig_prefix *p, const struct ig_ban_val *v)
{
	struct ban_out *o = ctx;
	char a[ADDR_STRLEN];

	if (v->expires_ns && v->expires_ns <= o->now)
		return 0;
	return state_put(o->f, "ban %s %lld %llu origin=%s %s", addr_format(p, a),
			 v->expires_ns ?
			 (long long)(o->wall + (v->expires_ns - o->now) / 1000000000ULL + 1) : 0LL,
			 (unsigned long long)v->created, origin_name(v->origin), v->reason);
}

/* A restored ban's origin: as written, else (older files, "local") known
 * by its reason: CrowdSec's, so that a later deletion in LAPI lifts them,
 * or the daemon's. *reason is moved past the origin= word. */
static uint8_t restored_origin(const char **reason)
{
	const char *r = *reason, *name;
	uint8_t origin = 0;
	size_t len;

	if (!strncmp(r, "origin=", 7)) {
		name = r + 7;
		len = strcspn(name, " ");
		origin = origin_parse(name, len);
		*reason = name + len + (name[len] == ' ');
	}
	if (origin)
		return origin;
	return strncmp(*reason, CS_REASON_PREFIX, strlen(CS_REASON_PREFIX)) ?
	       IG_ORIGIN_DAEMON : IG_ORIGIN_CROWDSEC;
}

static int write_state(void *ctx, FILE *f)
{
	struct daemon *d = ctx;
	struct ban_out o = { f, mono_ns(), time(NULL) };
	int err = ban_each(&d->m, put_ban, &o);	/* streamed: no copy of the map */

	if (!err && d->aw)
		err = authwatch_save(d->aw, f);
	if (!err && d->mfa)
		err = mfad_save(d->mfa, f);
	if (!err && d->ap)
		err = authpolicy_save(d->ap, f);
	return err;
}

/* A restored ban lasts no longer than the longest ban the policy gives
 * (ban_max, or ban_ttl for manual bans): a far-off or corrupt expiry must
 * neither overflow nor outlast what the daemon would ever set. */
static uint64_t restore_ttl(const struct daemon *d, long long left_s)
{
	uint64_t cap = d->pol.detect.ban_max_ns > d->pol.ban_ttl_ns ?
		       d->pol.detect.ban_max_ns : d->pol.ban_ttl_ns;

	return (uint64_t)left_s >= cap / 1000000000ULL ? cap : (uint64_t)left_s * 1000000000ULL;
}

static int read_state_line(void *ctx, char *line)
{
	struct daemon *d = ctx;
	char addr[ADDR_STRLEN + 8];
	long long expires;
	unsigned long long created;
	struct ig_prefix p;
	const char *reason;
	uint8_t origin;
	int off = 0;
	time_t now = time(NULL);

	if (!strncmp(line, "ban ", 4)) {
		/* Adopted maps already hold every ban, including CLI changes
		 * made after this file was written: only a fresh load (after a
		 * reboot or a detach) restores bans from it. */
		if (d->adopted)
			return 0;
		if (sscanf(line, "ban %70s %lld %llu %n", addr, &expires, &created, &off) < 3 ||
		    !off || addr_parse(addr, &p, false))
			return -EINVAL;
		if (expires && expires <= now)
			return 0;	/* expired while we were down */
		/* The allow list wins over a ban from the file, as over any other. */
		if (daemon_is_allowed(d, &p)) {
			pr_warn("State file: not restoring the ban of %s: it is in the allow list", addr);
			return 0;
		}
		reason = line + off;
		origin = restored_origin(&reason);
		return ban_origin(d, &p, expires ? restore_ttl(d, expires - now) : 0, reason, origin);
	}
	if (d->mfa && (!strncmp(line, "grant ", 6) || !strncmp(line, "mfa ", 4)))
		return mfad_load_line(d->mfa, line, d->adopted);
	/* Known-good sources: kept only while the policy server is on. */
	if (!strncmp(line, "good ", 5))
		return d->ap ? authpolicy_load_line(d->ap, line) : 0;
	return d->aw ? authwatch_load_line(d->aw, line) : 0;
}

static void save_failed(struct daemon *d, const char *why)
{
	pr_warn("Couldn't save state to '%s': %s", d->o.state_path, why);
	d->save_failures++;
	d->dirty = true;	/* again at the next interval */
}

/* In the loop: at exit, and when no writer can be forked. */
static void save_state(struct daemon *d)
{
	uint64_t t0 = mono_ns();
	int err;

	d->dirty = false;
	err = state_save(d->o.state_path, write_state, d);
	d->last_save = mono_ns();
	d->save_last_ns = d->last_save - t0;
	if (err)
		save_failed(d, strerror(-err));
}

/* The writer's exit status is its -errno. */
static void saver_reap(struct daemon *d, bool block)
{
	pid_t r;
	int st = 0, err;

	r = waitpid(d->saver_pid, &st, block ? 0 : WNOHANG);
	if (r == 0)
		return;		/* still running */
	err = r < 0 ? errno : 0;
	d->saver_pid = 0;
	if (d->saver_fd >= 0) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->saver_fd, NULL);
		close(d->saver_fd);
		d->saver_fd = -1;
	}
	d->save_last_ns = mono_ns() - d->saver_start;
	/* The interval counts from the snapshot; 0 means a save was asked
	 * for meanwhile (daemon_save_soon). */
	if (d->last_save)
		d->last_save = d->saver_start;
	if (err)
		save_failed(d, strerror(err));
	else if (WIFSIGNALED(st))
		save_failed(d, strsignal(WTERMSIG(st)));
	else if (WEXITSTATUS(st))
		save_failed(d, strerror(WEXITSTATUS(st)));
	/* Asked for while this one ran (daemon_save_soon); not at exit, where
	 * the daemon writes the last one itself. */
	if (!block && d->dirty && !d->last_save)
		save_state_bg(d);
}

/* For the state writer, which needs files and maps but no socket: with
 * copies of the daemon's listening sockets it would keep a daemon restarted
 * after a crash from binding them while it finishes (it does finish: an
 * accepted code's time step may be in that file). */
static void close_sockets(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	struct stat st;
	int fd;

	if (!dir)
		return;
	while ((e = readdir(dir)))
		if ((fd = atoi(e->d_name)) > 2 && fd != dirfd(dir) && !fstat(fd, &st) &&
		    S_ISSOCK(st.st_mode))
			close(fd);
	closedir(dir);
}

/*
 * The state file is written by a child process: with 1M bans, rendering
 * it takes ~0.15 s and its fsyncs more, and meanwhile the loop must answer
 * Dovecot. fork() hands the child a consistent copy of the daemon's own
 * state; the bans it reads from the maps, which are current anyway. One
 * writer at a time: what changes meanwhile leaves d->dirty set for the
 * next. The child only renders, writes and exits (_exit: no atexit work,
 * nothing of the parent's flushed twice).
 */
static void save_state_bg(struct daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &d->saver_src };
	pid_t pid;

	if (d->saver_pid > 0)
		return;
	d->saver_start = mono_ns();
	pid = fork();
	if (pid < 0) {
		pr_warn("Couldn't fork the state writer (%s): saving in the loop", strerror(errno));
		save_state(d);
		return;
	}
	if (pid == 0) {
		close_sockets();
		prctl(PR_SET_NAME, "imapguard-save");
		_exit(-state_save(d->o.state_path, write_state, d));
	}
	d->saver_pid = pid;
	d->dirty = false;
	d->saver_fd = pidfd_open(pid, 0);
	d->saver_src = (struct ep_src){ SRC_SAVER, d };
	if (d->saver_fd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->saver_fd, &ev))
		saver_reap(d, true);	/* cannot watch it: wait, as before */
}

/* ---- control socket ---------------------------------------------------- */

static int followers(struct daemon *d)
{
	int n = 0;

	for (struct client *c = d->clients; c; c = c->next)
		n += c->follow;
	return n;
}

static json_t *drops_json(struct daemon *d)
{
	json_t *o = json_object();

	for (int i = 0; o && i < IG_R_MAX; i++)
		if (json_object_set_new(o, reason_name(i), json_integer(d->per_reason[i]))) {
			json_decref(o);
			return NULL;
		}
	return o;
}

static void reply_status(struct daemon *d, struct client *c)
{
	char hash[17];
	json_t *r;

	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)d->pol.hash);
	r = json_pack("{s:b, s:b, s:i, s:I, s:o, s:s, s:{s:b, s:I, s:o}, s:I, s:I, s:I, s:I,"
		      " s:i, s:i, s:o}",
		      "ok", 1, "running", 1, "pid", (int)getpid(),
		      "uptime_s", (json_int_t)((mono_ns() - d->start_mono + 500000000ULL) / 1000000000ULL),
		      "policy_file", json_text(d->pol.file), "policy_hash", hash,
		      "last_reload", "ok", d->last_reload_ok, "time", (json_int_t)d->last_reload_time,
		      "message", json_text(d->last_reload_msg),
		      "events_seen", (json_int_t)d->events_seen,
		      "events_lost", (json_int_t)events_lost(d),
		      "events_dropped_clients", (json_int_t)d->events_dropped_clients,
		      "source_evictions", (json_int_t)d->source_evictions,
		      "clients", d->nclients, "followers", followers(d), "drops", drops_json(d));
	if (r && d->aw && json_object_set_new(r, "authlog", authwatch_status_json(d->aw))) {
		json_decref(r);
		r = NULL;
	}
	if (r && d->ap && json_object_set_new(r, "authpolicy", authpolicy_status_json(d->ap))) {
		json_decref(r);
		r = NULL;
	}
	if (r && d->cs && json_object_set_new(r, "crowdsec", crowdsec_status_json(d->cs))) {
		json_decref(r);
		r = NULL;
	}
	if (r && d->fleet && json_object_set_new(r, "fleet", fleet_status_json(d->fleet))) {
		json_decref(r);
		r = NULL;
	}
	client_send_json(d, c, r);
}

static int do_reload(struct daemon *d);

/* What only the daemon knows, after the map metrics. */
static void daemon_metrics(FILE *f, void *ctx)
{
	struct daemon *d = ctx;

	prom_u64(f, "imapguard_daemon_up", "gauge", "The daemon is running.", 1);
	prom_u64(f, "imapguard_reload_success", "gauge", "Whether the last policy (re)load worked.",
		 d->last_reload_ok);
	prom_u64(f, "imapguard_events_seen_total", "counter", "Ring-buffer events read by the daemon.",
		 d->events_seen);
	prom_head(f, "imapguard_state_save_seconds", "gauge", "How long the last state file save took.");
	fprintf(f, "imapguard_state_save_seconds %.6f\n", d->save_last_ns / 1e9);
	prom_u64(f, "imapguard_state_save_failures_total", "counter", "State file saves that failed.",
		 d->save_failures);
	if (d->aw)
		authwatch_metrics(d->aw, f);
	if (d->cs)
		crowdsec_metrics(d->cs, f);
	if (d->fleet)
		fleet_metrics(d->fleet, f);
	prom_u64(f, "imapguard_control_clients", "gauge", "Open control-socket connections.",
		 d->nclients);
	prom_head(f, "imapguard_control_refused_total", "counter",
		  "Control clients refused or closed, by reason.");
	for (int i = 0; i < CTL_REF_MAX; i++)
		prom_labelled(f, "imapguard_control_refused_total", "reason", ctl_refusal_names[i],
			      d->ctl_refused[i]);
	if (d->ap)
		authpolicy_metrics(d->ap, f);
	if (d->mfa)
		mfad_metrics(d->mfa, f);
	/* One call: each HTTP family's HELP and TYPE once for all servers. */
	if (d->http || d->ap || mfad_http(d->mfa)) {
		struct http_server *srv[3] = { d->http, authpolicy_http(d->ap), mfad_http(d->mfa) };

		http_metrics(f, srv, 3);
	}
}

static int agg_cmp(const void *a, const void *b)
{
	const struct source_agg *x = *(const struct source_agg *const *)a;
	const struct source_agg *y = *(const struct source_agg *const *)b;

	return x->total < y->total ? 1 : x->total > y->total ? -1 : 0;
}

/* Sources with the most drop events (each event stands for up to one
 * second of drops of one reason, by the BPF sampling). */
static void reply_top(struct daemon *d, struct client *c, unsigned int want)
{
	struct source_agg **v = calloc(SOURCES, sizeof(*v));
	char a[ADDR_STRLEN];
	size_t n = 0;

	if (!v)
		return;
	for (int i = 0; i < SOURCES; i++)
		if (d->sources[i].total)
			v[n++] = &d->sources[i];
	qsort(v, n, sizeof(*v), agg_cmp);
	for (size_t i = 0; i < n && i < want; i++) {
		json_t *o = json_pack("{s:s, s:I}", "addr", addr_format_host(v[i]->addr, a),
				      "events", (json_int_t)v[i]->total);

		for (int r = 0; o && r < IG_R_MAX; r++)
			if (v[i]->drops[r] &&
			    json_object_set_new(o, reason_name(r), json_integer(v[i]->drops[r]))) {
				json_decref(o);
				o = NULL;
			}
		/* The plaintext command a STARTTLS guard saw last: who still logs in so. */
		if (o && v[i]->st_verb[0] &&
		    json_object_set_new(o, "verb", json_textn(v[i]->st_verb,
					strnlen(v[i]->st_verb, IG_VERB_LEN)))) {
			json_decref(o);
			o = NULL;
		}
		client_send_json(d, c, o);
	}
	free(v);
}

static void reply_metrics(struct daemon *d, struct client *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	/* The CLI reads the map metrics itself: only the daemon's part. */
	daemon_metrics(f, d);
	fclose(f);
	client_queue(d, c, buf, len, false);
	free(buf);
}

/* GET /metrics on metrics_listen: the maps' metrics, then the daemon's. */
static int http_metrics_page(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct daemon *d = ctx;
	FILE *f = open_memstream(&rep->body, &rep->body_len);

	(void)req;
	if (!f)
		return -ENOMEM;
	metrics_write(f, d->o.pin_dir, &d->m);
	daemon_metrics(f, d);
	if (fclose(f))
		return -ENOMEM;
	rep->content_type = "text/plain; version=0.0.4";
	return 0;
}

/* What the STARTTLS guard saw from one address: plaintext attempts (each
 * event stands for up to a second of them), the last verb; null if none. */
static json_t *why_starttls(struct daemon *d, const struct ig_prefix *p)
{
	const struct source_agg *s = p->plen == 128 ? agg_find(d, p->addr) : NULL;
	uint64_t n = 0;

	for (int r = IG_R_STARTTLS_PLAIN; s && r <= IG_R_STARTTLS_LOGGED; r++)
		n += s->drops[r];
	if (!n)
		return json_null();
	return json_pack("{s:I, s:I, s:I, s:I, s:o, s:s, s:o}",
			 "plaintext_events", (json_int_t)s->drops[IG_R_STARTTLS_PLAIN],
			 "unparsable_events", (json_int_t)(s->drops[IG_R_STARTTLS_UNPARSABLE] +
							  s->drops[IG_R_STARTTLS_NOFLOW]),
			 "logged_events", (json_int_t)s->drops[IG_R_STARTTLS_LOGGED],
			 "events", (json_int_t)n,
			 "last_verb", json_textn(s->st_verb, strnlen(s->st_verb, IG_VERB_LEN)),
			 "last_cause", st_cause_name(s->st_cause),
			 "last_ts", json_fixed(wall_of_mono(s->st_ts_ns), 3));
}

static void reply_why(struct daemon *d, struct client *c, const struct ig_prefix *p)
{
	char a[ADDR_STRLEN];
	json_t *r;

	r = json_pack("{s:b, s:s}", "ok", 1, "addr", addr_format(p, a));
	if (r && d->aw && json_object_set_new(r, "detector", authwatch_why_json(d->aw, p->addr))) {
		json_decref(r);
		r = NULL;
	}
	if (r && json_object_set_new(r, "starttls", why_starttls(d, p))) {
		json_decref(r);
		r = NULL;
	}
	client_send_json(d, c, r);
}

/* why --user: the account as the policy server sees it. */
static void reply_why_user(struct daemon *d, struct client *c, const char *user)
{
	if (!d->ap) {
		client_send_error(d, c, "the auth policy server is off (no [authpolicy])");
		return;
	}
	client_send_json(d, c, json_pack("{s:b, s:o}", "ok", 1, "account",
					 authpolicy_user_json(d->ap, user)));
}

/* {"ok":false,"error":msg}, and no more requests from this client. */
static void reply_error(struct daemon *d, struct client *c, const char *msg)
{
	client_send_error(d, c, msg);
	d->ctl_refused[CTL_REF_BAD_REQUEST]++;
	c->inlen = SIZE_MAX;
}

static void handle_request(struct daemon *d, struct client *c, const struct ctl_req *req)
{
	c->deadline = 0;	/* the request is in: a stream may idle for ever */
	switch (req->verb) {
	case CTL_STATUS:
		reply_status(d, c);
		break;
	case CTL_RELOAD: {
		do_reload(d);
		client_send_json(d, c, json_pack("{s:b, s:o}", "ok", d->last_reload_ok,
						 "message", json_text(d->last_reload_msg)));
		break;
	}
	case CTL_EVENTS:
		c->follow = true;
		client_send_json(d, c, json_pack("{s:b, s:b}", "ok", 1, "stream", 1));
		return;
	case CTL_RECENT:
		for (unsigned int i = 0; i < RECENT_EVENTS; i++) {
			char *e = d->recent[(d->recent_next + i) % RECENT_EVENTS];

			if (e)
				client_send(d, c, e);
		}
		break;
	case CTL_WHY:
		reply_why(d, c, &req->addr);
		break;
	case CTL_WHY_USER:
		reply_why_user(d, c, req->user);
		break;
	case CTL_TOP:
		reply_top(d, c, req->top);
		break;
	case CTL_METRICS:
		reply_metrics(d, c);
		break;
	case CTL_FLEET:
		if (d->fleet)
			client_send_json(d, c, json_pack("{s:b, s:o}", "ok", 1, "fleet",
							 fleet_status_json(d->fleet)));
		else
			client_send_error(d, c, "no [fleet] in the policy");
		break;
	case CTL_SHARE:
		share_ban(d, &req->addr, 0, 0);
		client_send_json(d, c, json_pack("{s:b, s:b}", "ok", 1, "fleet", d->fleet != NULL));
		break;
	case CTL_VERB_MAX:
		break;
	}
	c->inlen = SIZE_MAX;	/* one request per connection: close once flushed */
}

static bool peer_allowed(struct daemon *d, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	gid_t groups[256];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return false;
	if (cr.uid == 0)
		return true;
	if (d->ctl_gid == (gid_t)-1)
		return false;
	if (cr.gid == d->ctl_gid)
		return true;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == d->ctl_gid)
			return true;
	return false;
}

/* Answer a peer that gets no client slot: one error line, sent at once on
 * the fresh connection (its socket buffer is empty) or not at all. */
static void refuse(struct daemon *d, int fd, const char *why)
{
	char *line = json_take_string(error_json(why));
	const char *l = line ? line : d->oom_reply;
	struct iovec iov[2] = { { (void *)l, strlen(l) }, { "\n", 1 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

	sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(line);
}

static void on_accept(struct daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct client *c;
	int fd = accept4(d->listenfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (!peer_allowed(d, fd)) {
		d->ctl_refused[CTL_REF_PERMISSION]++;
		refuse(d, fd, "permission denied");
		/* No more from us; what the peer already sent is discarded with
		 * the close (it may see a reset instead of our answer). */
		shutdown(fd, SHUT_WR);
		pr_warn("control socket: refused a peer that is neither root nor in the control group");
		close(fd);
		return;
	}
	if (d->nclients >= MAX_CLIENTS || !(c = calloc(1, sizeof(*c)))) {
		d->ctl_refused[CTL_REF_LIMIT]++;
		refuse(d, fd, "too many clients");
		close(fd);
		return;
	}
	c->fd = fd;
	c->deadline = mono_ns() + CTL_REQUEST_NS;
	c->src = (struct ep_src){ SRC_CLIENT, c };
	ev.data.ptr = &c->src;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
	c->next = d->clients;
	d->clients = c;
	d->nclients++;
}

static void on_client(struct daemon *d, struct client *c, uint32_t events)
{
	struct ctl_req req;
	ssize_t n;
	int err;

	if (events & EPOLLOUT)
		client_flush(d, c);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (c->inlen == SIZE_MAX || c->follow) {
			char junk[256];	/* done with requests: just notice the close */

			n = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				goto close;
			return;
		}
		n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			goto close;
		if (n < 0)
			return;
		c->inlen += n;
		err = ctl_parse(c->in, c->inlen, &req);
		if (!err)
			handle_request(d, c, &req);
		else if (err != -EAGAIN)
			reply_error(d, c, req.error);
	}
	if (c->inlen == SIZE_MAX && !c->outlen && !c->follow)
		goto close;
	return;
close:
	client_close(d, c);
}

static int listen_ctl(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &d->listen_src };
	char dir[sizeof(sa.sun_path)], *slash;
	int fd, err;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->o.ctl_path);
	snprintf(dir, sizeof(dir), "%s", d->o.ctl_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		/* The control group must be able to reach the socket. */
		if (!mkdir(dir, 0750) && d->ctl_gid != (gid_t)-1 && chown(dir, 0, d->ctl_gid))
			pr_warn("Couldn't give '%s' to the control group: %s", dir, strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(d->o.ctl_path);	/* a stale socket from a crashed daemon */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(d->o.ctl_path, d->ctl_gid == (gid_t)-1 ? 0600 : 0660) ||
	    (d->ctl_gid != (gid_t)-1 && chown(d->o.ctl_path, 0, d->ctl_gid)) ||
	    listen(fd, 16)) {
		err = -errno;
		pr_warn("Couldn't listen on control socket '%s': %s", d->o.ctl_path, strerror(-err));
		close(fd);
		return err;
	}
	d->listenfd = fd;
	d->listen_src = (struct ep_src){ SRC_LISTEN, d };
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

/* metrics_listen: its own HTTP server, caps and timeouts (http.h), so a
 * scraper, or a flood, never takes a control client's place. */
static int listen_metrics(struct daemon *d)
{
	struct http_conf conf = {
		.name = "metrics", .listen = d->pol.metrics_listen,
		.max_conns = METRICS_MAX_CONNS, .max_per_ip = METRICS_MAX_PER_IP,
		.timeout_s = METRICS_TIMEOUT_S, .max_request = METRICS_MAX_REQUEST,
		.routes = &d->metrics_route, .nroutes = 1,
	};
	int err;

	if (!d->pol.metrics_listen[0])
		return 0;
	d->metrics_route = (struct http_route){ "/metrics", HTTP_GET | HTTP_HEAD, 0,
						http_metrics_page, d };
	err = http_open(&d->http, &conf, d->epfd);
	if (err)
		return err;
	pr_info("serving metrics on http://%s/metrics", d->pol.metrics_listen);
	return 0;
}

/* ---- lifecycle --------------------------------------------------------- */

static void set_reload_result(struct daemon *d, bool ok, const char *msg)
{
	d->last_reload_ok = ok;
	d->last_reload_time = time(NULL);
	snprintf(d->last_reload_msg, sizeof(d->last_reload_msg), "%s", msg);
}

/*
 * bind_user ([mfa], issue 17): the policy server's allow verdict, last. A
 * login for user U from a source whose live grants all belong to other
 * users is refused, so alice's grant does not let someone behind her NAT
 * try bob's password. A login on a port without access = grant is not
 * judged: the request's local_port says which (`authpolicy dovecot-config`
 * asks Dovecot for %{lport}); without it, every login is, while some port
 * has access = grant. A source with no grant (allow-listed, or on an open
 * port) is not judged here either.
 */
static void daemon_bind_user(void *ctx, const struct vd_request *rq, struct vd_result *res)
{
	struct daemon *d = ctx;

	if (!rq->has_addr || !d->mfa ||
	    policy_port_access(&d->pol, rq->local_port) != IG_ACCESS_GRANT)
		return;
	if (mfad_bind_check(d->mfa, rq->addr, rq->login) == -EACCES) {
		res->status = -1;
		res->rule = VD_HOOK;
		res->msg = "no MFA grant for this user from this address";
	}
}

static int open_authpolicy(struct daemon *d)
{
	const struct ap_env env = { .aw = d->aw, .emit = daemon_emit,
				    .allowed = daemon_is_allowed, .banned = daemon_has_ban, .ctx = d };
	int err;

	if (!d->pol.authpolicy.listen[0])
		return 0;
	err = authpolicy_open(&d->ap, &d->pol.authpolicy, &env, d->epfd);
	if (!err)
		authpolicy_set_check(d->ap, d->ap_check, d->ap_check_ctx);
	return err;
}

/* [authpolicy] added, changed or removed by a reload. A failure leaves the
 * server as it was (logged): the rest of the policy is applied anyway. */
static void reconfigure_authpolicy(struct daemon *d)
{
	int err = 0;

	if (d->ap && !d->pol.authpolicy.listen[0]) {
		authpolicy_close(d->ap);
		d->ap = NULL;
		pr_info("auth policy server stopped");
	} else if (d->ap) {
		err = authpolicy_reconfigure(d->ap, &d->pol.authpolicy);
	} else {
		err = open_authpolicy(d);
	}
	if (err)
		pr_warn("auth policy server: %s", strerror(-err));
}

/* Re-read the policy: a bad file is reported and the old one stays. */
static int do_reload(struct daemon *d)
{
	char err[POL_ERR_LEN];
	struct policy np;
	int ret;

	/* MONOTONIC_USEC lets Type=notify-reload (systemd 253+) match the reload. */
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)(mono_ns() / 1000));
	/* An unsigned or badly signed file is refused like an invalid one. */
	ret = policy_load_checked(d->o.policy_path, d->o.trusted, &np, err, sizeof(err));
	if (!ret) {
		map_lock(d, true);
		ret = apply_policy(&d->m, &np, err, sizeof(err));
		map_lock(d, false);
		if (ret)
			policy_free(&np);
	}
	if (ret) {
		pr_warn("reload failed, previous policy stays in force: %s", err);
		set_reload_result(d, false, err);
	} else {
		bool refleet = d->fleet ? fleet_changed(d->fleet, &np.fleet, &np.detect) :
				   np.fleet.redis[0] != '\0';

		policy_free(&d->pol);
		d->pol = np;
		if (d->aw)
			authwatch_reconfigure(d->aw, &d->pol);
		if (d->mfa)
			mfad_reconfigure(d->mfa, &d->pol);
		reconfigure_authpolicy(d);
		if (refleet) {
			fleet_close(d->fleet);
			d->fleet = NULL;
			d->fleet_reopened = true;
			if (open_fleet(d))
				pr_warn("reload: the fleet stays off (see above)");
		}
		crowdsec_reload(d, &d->pol.crowdsec);
		snprintf(err, sizeof(err), "applied %s (hash %016llx)", d->pol.file,
			 (unsigned long long)d->pol.hash);
		pr_info("reload: %s", err);
		set_reload_result(d, true, err);
	}
	sd_notify(0, "READY=1");
	return ret;
}

/* Load or adopt the pinned fast path, apply the policy, attach interfaces.
 * Adopting existing pins means a restart never opens a gap. */
static int setup_fastpath(struct daemon *d)
{
	char err[POL_ERR_LEN];
	bool fresh;
	int ret, used;

	ret = fastpath_prepare_dir(d->o.pin_dir);
	if (ret)
		return ret;
	d->lock_fd = fastpath_lock(d->o.pin_dir);
	if (d->lock_fd < 0)
		return d->lock_fd;
	fresh = !fastpath_loaded(d->o.pin_dir);
	d->adopted = !fresh;
	if (fresh && (ret = fastpath_load(d->o.pin_dir, &d->pol)))
		goto unlock;
	if ((ret = fastpath_open_maps(d->o.pin_dir, &d->m)))
		goto unlock;
	d->pin_fd = open(d->o.pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = apply_policy(&d->m, &d->pol, err, sizeof(err));
	if (ret) {
		pr_warn("Couldn't apply policy: %s", err);
		goto unlock;
	}
	pr_info("%s fast path under %s", fresh ? "loaded" : "adopted pinned", d->o.pin_dir);
	for (int i = 0; i < d->o.nifaces; i++) {
		unsigned int ifindex = if_nametoindex(d->o.ifaces[i]);
		struct ig_iface ifc;

		if (ifindex && !bpf_map_lookup_elem(d->m.ifaces, &ifindex, &ifc)) {
			pr_info("iface %s: already attached (%s), adopted", d->o.ifaces[i],
				mode_name(ifc.mode));
			continue;
		}
		ret = fastpath_attach(d->o.pin_dir, &d->m, d->o.ifaces[i], d->o.mode, false, &used);
		if (ret)
			goto unlock;
		pr_info("iface %s: attached in %s mode", d->o.ifaces[i], mode_name(used));
	}
unlock:
	/* The lock serialises setup with CLIs; the running daemon's later map
	 * writes are single updates that need no lock. */
	close(d->lock_fd);
	d->lock_fd = -1;
	return ret;
}

static void detach_ours(struct daemon *d)
{
	int lock_fd = fastpath_lock(d->o.pin_dir);

	for (int i = 0; i < d->o.nifaces; i++) {
		unsigned int ifindex = if_nametoindex(d->o.ifaces[i]);

		if (ifindex && !fastpath_detach(d->o.pin_dir, &d->m, ifindex))
			pr_info("iface %s: detached", d->o.ifaces[i]);
	}
	if (map_count(d->m.ifaces) == 0) {
		fastpath_close_maps(&d->m);
		fastpath_unpin_all(d->o.pin_dir);
	}
	if (lock_fd >= 0)
		close(lock_fd);
}

static int setup_loop(struct daemon *d)
{
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;

	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->epfd < 0 || d->sigfd < 0 || d->timerfd < 0 ||
	    timerfd_settime(d->timerfd, 0, &its, NULL))
		return -errno;
	d->sig_src = (struct ep_src){ SRC_SIGNAL, d };
	d->timer_src = (struct ep_src){ SRC_TIMER, d };
	d->rb_src = (struct ep_src){ SRC_RINGBUF, d };
	ev.data.ptr = &d->sig_src;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ev);
	ev.data.ptr = &d->timer_src;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timerfd, &ev);
	d->rb = ring_buffer__new(d->m.events, on_event, d, NULL);
	if (!d->rb)
		return -errno;
	ev.data.ptr = &d->rb_src;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(d->rb), &ev);
	return 0;
}

static void on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			pr_info("SIGHUP: reloading %s", d->o.policy_path);
			do_reload(d);
		} else {
			pr_info("%s: exiting", strsignal(si.ssi_signo));
			d->stop = true;
		}
	}
}

/* Control clients that sent no whole request line in time: they would hold
 * a slot for ever otherwise. Streams (events --follow) are past their
 * request, and idle by design. */
static void expire_clients(struct daemon *d)
{
	uint64_t now = mono_ns();
	struct client *c, *next;

	for (c = d->clients; c; c = next) {
		next = c->next;
		if (!c->deadline || now < c->deadline)
			continue;
		d->ctl_refused[CTL_REF_TIMEOUT]++;
		client_close(d, c);
	}
}

static void on_timer(struct daemon *d)
{
	uint64_t ticks;
	int swept;

	if (read(d->timerfd, &ticks, sizeof(ticks)) < 0)
		return;
	expire_clients(d);
	/* Expired bans already stop matching in BPF; this frees their slots. */
	map_lock(d, true);
	swept = ban_sweep_some(&d->m, &d->sweep, SWEEP_PER_TICK);
	map_lock(d, false);
	if (swept) {
		pr_info("swept %d expired ban%s", swept, swept == 1 ? "" : "s");
		d->dirty = true;
	}
	if (d->aw)
		authwatch_tick(d->aw);
	if (d->mfa)
		mfad_tick(d->mfa);
	fleet_tick(d->fleet);
	/* Known-good sources change with every good login: they ride along
	 * with the next save, or force one at most every KNOWN_GOOD_SAVE_NS
	 * (a save fsyncs, inside the loop that answers Dovecot). */
	if (mono_ns() - d->last_save >= KNOWN_GOOD_SAVE_NS && authpolicy_take_changed(d->ap))
		d->dirty = true;
	/* Bans live in pinned maps; the file is for reboots. Writing it at
	 * most every few seconds keeps a ban storm from rewriting it per ban. */
	if (d->dirty && mono_ns() - d->last_save >= SAVE_INTERVAL_NS)
		save_state_bg(d);
}

static int loop(struct daemon *d)
{
	struct epoll_event evs[32];
	int n;

	while (!d->stop) {
		n = epoll_wait(d->epfd, evs, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !d->stop; i++) {
			struct ep_src *s = evs[i].data.ptr;

			switch (s->type) {
			case SRC_SIGNAL: on_signal(d); break;
			case SRC_TIMER: on_timer(d); break;
			case SRC_RINGBUF: ring_buffer__consume(d->rb); break;
			case SRC_LISTEN: on_accept(d); break;
			case SRC_HTTP: http_ready(s->ptr); break;
			case SRC_CLIENT: on_client(d, s->ptr, evs[i].events); break;
			case SRC_AUTHLOG: authwatch_ready(d->aw, s->ptr); break;
			case SRC_KNOCK: mfad_knock_ready(s->ptr); break;
			case SRC_CROWDSEC: crowdsec_ready(s->ptr, evs[i].events); break;
			case SRC_FLEET: fleet_ready(d->fleet, s->ptr, evs[i].events); break;
			case SRC_SAVER: saver_reap(d, false); break;
			}
			/* The fleet was reopened: later events of this batch may
			 * point at the old one. Level-triggered, they come again. */
			if (d->fleet_reopened) {
				d->fleet_reopened = false;
				break;
			}
		}
		for (int i = 0; i < 4 && d->cs_retired[i]; i++) {
			crowdsec_close(d->cs_retired[i]);
			d->cs_retired[i] = NULL;
		}
	}
	return 0;
}

static int daemon_init(struct daemon *d)
{
	char err[POL_ERR_LEN];
	struct group *g;
	int ret;

	ret = policy_load_checked(d->o.policy_path, d->o.trusted, &d->pol, err, sizeof(err));
	if (ret) {
		pr_warn("%s", err);
		return ret;
	}
	set_reload_result(d, true, "initial load");
	if (!d->o.nifaces)
		for (int i = 0; i < d->pol.nifaces; i++)
			d->o.ifaces[d->o.nifaces++] = d->pol.ifaces[i];
	if (!d->o.mode)
		d->o.mode = d->pol.iface_mode;
	if (!d->o.state_path)
		d->o.state_path = d->pol.state_file;
	/* An unsafe state directory is found before the fast path is touched. */
	if ((ret = state_check(d->o.state_path)))
		return ret;
	if (!d->o.ctl_path)
		d->o.ctl_path = d->pol.control_socket;
	d->ctl_gid = (gid_t)-1;
	if (d->pol.control_group[0]) {
		g = getgrnam(d->pol.control_group);
		if (!g) {
			pr_warn("control_group '%s': no such group", d->pol.control_group);
			return -ENOENT;
		}
		d->ctl_gid = g->gr_gid;
	}
	d->sources = calloc(SOURCES, sizeof(*d->sources));
	d->oom_reply = json_take_string(error_json("out of memory"));
	d->src_hash = hasher_new(NULL);
	if (!d->src_hash)
		pr_warn("Couldn't set up the source hash: %s", strerror(errno));
	return d->sources && d->oom_reply && d->src_hash ? 0 : -ENOMEM;
}

static void daemon_fini(struct daemon *d)
{
	while (d->clients)
		client_close(d, d->clients);
	authpolicy_close(d->ap);
	if (d->aw)
		authwatch_close(d->aw);
	mfad_close(d->mfa);
	crowdsec_close(d->cs);
	for (int i = 0; i < 4; i++)
		crowdsec_close(d->cs_retired[i]);
	fleet_close(d->fleet);
	ring_buffer__free(d->rb);
	if (d->listenfd >= 0) {
		close(d->listenfd);
		unlink(d->o.ctl_path);
	}
	http_close(d->http);
	for (int i = 0; i < RECENT_EVENTS; i++)
		free(d->recent[i]);
	free(d->sources);
	free(d->oom_reply);
	hasher_free(d->src_hash);
	if (d->pin_fd >= 0)
		close(d->pin_fd);
	fastpath_close_maps(&d->m);
	policy_free(&d->pol);
}

int daemon_run(const struct daemon_opts *o)
{
	struct daemon d = { .o = *o, .lock_fd = -1, .pin_fd = -1, .listenfd = -1, .saver_fd = -1 };
	const struct aw_hooks hooks = {
		.ctx = &d, .ban = daemon_detector_ban, .get_ban = daemon_get_ban, .has_ban = daemon_has_ban,
		.is_allowed = daemon_is_allowed, .emit = daemon_emit,
		.failure = daemon_failure, .decided = daemon_decided, .reset = daemon_reset,
	};
	const struct mfad_hooks mfa_hooks = {
		.ctx = &d, .ban = daemon_ban, .emit = daemon_emit, .lock = daemon_map_lock,
		.save = daemon_save_soon,
	};
	int err;

	fastpath_maps_init(&d.m);	/* all closed: daemon_fini may run before they open */
	d.start_mono = mono_ns();
	if ((err = daemon_init(&d)))
		goto out;
	if ((err = setup_fastpath(&d)) || (err = setup_loop(&d)))
		goto out;
	if ((err = authwatch_open(&d.aw, &hooks, &d.pol, d.epfd)))
		goto out;
	if ((err = mfad_open(&d.mfa, &mfa_hooks, &d.pol, &d.m, d.epfd)))
		goto out;
	/* bind_user (issue 17): the allow verdict asks the grants last. */
	d.ap_check = daemon_bind_user;
	d.ap_check_ctx = &d;
	/* Before the state file: it holds the known-good sources. Requests
	 * wait in the listen backlog until the loop runs. */
	if ((err = open_authpolicy(&d)))
		goto out;
	err = state_load(d.o.state_path, read_state_line, &d);
	if (err == -EPERM)	/* an unsafe directory: warned, the admin must fix it */
		goto out;
	if (err && err != -ENOENT)
		d.dirty = true;	/* set aside: write a fresh one */
	else if (!err)
		pr_info("restored state from %s", d.o.state_path);
	if ((err = authwatch_start(d.aw)))
		goto out;
	/* After the state: a refill of an empty Redis publishes restored bans. */
	if ((err = open_fleet(&d)))
		goto out;
	/* After the state file: its bans are in before the first resync. */
	if ((err = crowdsec_start(&d, &d.pol.crowdsec)))
		goto out;
	/* Last: a client that can connect sees a daemon that is fully up. */
	if ((err = listen_metrics(&d)) || (err = listen_ctl(&d)))
		goto out;
	sd_notify(0, "READY=1");
	pr_info("imapguard %s running (pid %d, policy %s, control %s)", IG_VERSION, getpid(),
		d.pol.file, d.o.ctl_path);
	err = loop(&d);
	sd_notify(0, "STOPPING=1");
	/* The last word is this process's: a writer still running would
	 * race it for the temp file. */
	if (d.saver_pid > 0)
		saver_reap(&d, true);
	save_state(&d);
out:
	/* Also after a failed start: --detach-on-exit means nothing stays. */
	if (d.o.detach_on_exit && d.m.ifaces >= 0)
		detach_ours(&d);
	daemon_fini(&d);
	return err;
}
