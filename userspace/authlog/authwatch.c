// SPDX-License-Identifier: GPL-2.0
/*
 * Auth-log coordination: every whole line from a follower goes through the
 * parser and the de-duplicator into the detector, whose ban decisions are
 * written to the BPF ban map at once, inside the same loop iteration that
 * read the line: no polling interval between a log write and the ban.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include "authlog/authlog.h"
#include "base/epsrc.h"
#include "base/json.h"
#include "authlog/authwatch.h"
#include "authlog/detector.h"
#include "authlog/follow.h"
#include "base/log.h"
#include "base/prom.h"
#include "policy/policy.h"
#include "base/state.h"

#define DET_CAPACITY	(1u << 20)	/* sources the detector remembers */
#define DEDUP_SESSIONS	65536

struct aw_source {
	struct ep_src src;
	struct follower *f;
	struct pol_authlog cfg;
	struct authwatch *aw;
};

struct aw_saved_pos {
	char name[64];
	char pos[FOLLOW_POS_LEN];
};

struct authwatch {
	struct aw_hooks h;
	int epfd;
	struct pol_detect cfg;
	struct detector *det;
	struct al_dedup *dedup;
	struct aw_source src[POL_MAX_AUTHLOG];
	int nsrc;
	struct aw_saved_pos saved[POL_MAX_AUTHLOG];
	int nsaved;
	uint64_t lines, fails, successes, skipped, bans, dry_bans, account_events;
	uint64_t skipped_by[AL_SKIP_MAX];	/* lines dropped, per enum al_skip */
	uint64_t users_cleaned;			/* user names with invalid bytes replaced */
	uint64_t fails_by_parser[AL_P_PERDITION + 1];
	uint64_t bans_by_rule[4];	/* rule_names order */
};

static const char *const rule_names[] = { "brute", "spray", "subnet", "v6prefix" };
/* enum al_skip order; "other" (a parse error with no reason) is not shown. */
static const char *const skip_names[AL_SKIP_MAX] = { "other", "long", "json", "ambiguous",
						     "no_address" };

/* The detector's clock is wall time, so its ban history stays meaningful in
 * the state file across reboots. */
static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

json_t *authwatch_event_json(const struct det_event *ev, uint64_t wall_ns)
{
	char a[ADDR_STRLEN];

	if (ev->kind == DET_EV_ACCOUNT)
		/* The user name is attacker-chosen, and may not be UTF-8. */
		return json_pack("{s:o, s:s, s:o, s:I, s:I}", "ts", json_fixed(wall_ns / 1e9, 3),
				 "type", "account", "user", json_text(ev->user), "sources",
				 (json_int_t)ev->users, "window_s",
				 (json_int_t)(ev->window_ns / 1000000000ULL));
	addr_format(&ev->prefix, a);
	return json_pack("{s:o, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:b}",
			 "ts", json_fixed(wall_ns / 1e9, 3), "type", "ban", "rule", ev->rule,
			 "addr", a, "failures", (json_int_t)ev->failures,
			 "users", (json_int_t)ev->users,
			 "window_s", (json_int_t)(ev->window_ns / 1000000000ULL),
			 "duration_s", (json_int_t)(ev->duration_ns / 1000000000ULL),
			 "repeat", (json_int_t)ev->repeat, "extend", ev->extend,
			 "dry_run", ev->dry_run);
}

static void on_det_event(const struct det_event *ev, void *ctx)
{
	struct authwatch *aw = ctx;
	char a[ADDR_STRLEN], reason[IG_REASON_LEN];
	char *json = json_take_string(authwatch_event_json(ev, wall_ns()));

	addr_format(&ev->prefix, a);
	if (ev->kind == DET_EV_ACCOUNT) {
		aw->account_events++;
		/* The user name is attacker-chosen: log it only JSON-escaped. */
		pr_warn("distributed spraying against one account: %s",
			json ? json : "(out of memory)");
		if (json)
			aw->h.emit(aw->h.ctx, json);
		free(json);
		return;
	}
	pr_info("%s%s %s rule=%s failures=%u users=%u window=%llus duration=%llus repeat=%u",
		ev->dry_run ? "dry-run: would " : "", ev->extend ? "extend ban" : "ban", a, ev->rule,
		ev->failures, ev->users, (unsigned long long)(ev->window_ns / 1000000000ULL),
		(unsigned long long)(ev->duration_ns / 1000000000ULL), ev->repeat);
	if (json)
		aw->h.emit(aw->h.ctx, json);
	free(json);
	if (ev->dry_run) {
		aw->dry_bans++;
		return;
	}
	/* An operator's `ban del` is not undone by the next failure of a source
	 * the detector still counts as banned: extensions only extend. */
	if (ev->extend && !aw->h.has_ban(aw->h.ctx, &ev->prefix)) {
		pr_info("not extending %s: its ban was lifted by hand", a);
		return;
	}
	snprintf(reason, sizeof(reason), "authlog %s f=%u u=%u", ev->rule, ev->failures, ev->users);
	if (ev->extend) {	/* same ban, later end: keep the evidence it was made on */
		struct ig_ban_val old;

		if (!aw->h.get_ban(aw->h.ctx, &ev->prefix, &old))
			snprintf(reason, sizeof(reason), "%s", old.reason);
	}
	if (aw->h.ban(aw->h.ctx, &ev->prefix, ev->duration_ns, reason))
		return;
	if (aw->h.decided)
		aw->h.decided(aw->h.ctx, ev);
	if (ev->extend)
		return;
	aw->bans++;
	for (size_t i = 0; i < sizeof(rule_names) / sizeof(rule_names[0]); i++)
		if (!strcmp(ev->rule, rule_names[i]))
			aw->bans_by_rule[i]++;
}

static bool is_allowed(const struct ig_prefix *p, void *ctx)
{
	struct authwatch *aw = ctx;

	return aw->h.is_allowed(aw->h.ctx, p);
}

static void on_line(void *ctx, const char *line, size_t len)
{
	struct aw_source *s = ctx;
	struct authwatch *aw = s->aw;
	struct al_result r;
	uint32_t n;
	int err;

	aw->lines++;
	err = authlog_parse(line, len, s->cfg.format, &r);
	aw->users_cleaned += r.user_cleaned;
	if (err || r.skip) {
		aw->skipped++;
		aw->skipped_by[r.skip > 0 && r.skip < AL_SKIP_MAX ? r.skip : 0]++;
		return;
	}
	if (r.kind == AL_FAIL) {
		n = al_dedup_count(aw->dedup, &r);
		if (n) {
			aw->fails += n;
			aw->fails_by_parser[r.parser <= AL_P_PERDITION ? r.parser : 0] += n;
			detector_fail(aw->det, r.addr, r.user, n, wall_ns());
		}
	} else if (r.kind == AL_SUCCESS) {
		aw->successes++;
		detector_success(aw->det, r.addr, wall_ns());
	}
}

static void on_det_failure(const uint8_t addr[16], const char *user, uint32_t attempts, void *ctx)
{
	struct authwatch *aw = ctx;

	if (aw->h.failure)
		aw->h.failure(aw->h.ctx, addr, user, attempts);
}

static void on_det_reset(const uint8_t addr[16], void *ctx)
{
	struct authwatch *aw = ctx;

	if (aw->h.reset)
		aw->h.reset(aw->h.ctx, addr);
}

void authwatch_fleet(struct authwatch *aw, const uint8_t addr[16], const char *user,
		     const struct det_fleet *fig)
{
	detector_fleet(aw->det, addr, user, fig, wall_ns());
}

void authwatch_note_ban(struct authwatch *aw, const struct det_history *h)
{
	detector_note_ban(aw->det, h);
}

static struct detector *new_detector(struct authwatch *aw)
{
	struct det_hooks hooks = { .event = on_det_event, .allowed = is_allowed,
				   .failure = on_det_failure, .reset = on_det_reset, .ctx = aw };

	return detector_new(&aw->cfg, &hooks, DET_CAPACITY);
}

int authwatch_open(struct authwatch **out, const struct aw_hooks *hooks, const struct policy *pol,
		   int epfd)
{
	struct authwatch *aw = calloc(1, sizeof(*aw));

	if (!aw)
		return -ENOMEM;
	aw->h = *hooks;
	aw->epfd = epfd;
	aw->cfg = pol->detect;
	aw->det = new_detector(aw);
	aw->dedup = al_dedup_new(DEDUP_SESSIONS);
	if (!aw->det || !aw->dedup) {
		authwatch_close(aw);
		return -ENOMEM;
	}
	for (int i = 0; i < pol->nauthlogs; i++) {
		aw->src[i].cfg = pol->authlogs[i];
		aw->src[i].aw = aw;
		aw->src[i].src = (struct ep_src){ SRC_AUTHLOG, &aw->src[i] };
	}
	aw->nsrc = pol->nauthlogs;
	*out = aw;
	return 0;
}

static const char *saved_pos(struct authwatch *aw, const char *name)
{
	for (int i = 0; i < aw->nsaved; i++)
		if (!strcmp(aw->saved[i].name, name))
			return aw->saved[i].pos;
	return NULL;
}

static int open_source(struct authwatch *aw, struct aw_source *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->src };
	const char *pos = saved_pos(aw, s->cfg.name);
	int err;

	/* A new source starts at its end: history is not re-counted. A known
	 * one resumes where it stopped, so lines written while down count. */
	s->f = s->cfg.path[0] ? follow_file_open(s->cfg.name, s->cfg.path, !pos) :
			       follow_journal_open(s->cfg.name, s->cfg.journal, !pos);
	if (!s->f) {
		err = -errno;
		pr_warn("Couldn't open auth log '%s' (%s): %s", s->cfg.name,
			s->cfg.path[0] ? s->cfg.path : s->cfg.journal, strerror(-err));
		return err;
	}
	if (pos && (err = follow_set_pos(s->f, pos)))
		pr_info("auth log '%s': saved position no longer matches (%s), reading from the start",
			s->cfg.name, strerror(-err));
	if (epoll_ctl(aw->epfd, EPOLL_CTL_ADD, follow_fd(s->f), &ev))
		return -errno;
	pr_info("following auth log '%s' (%s%s)", s->cfg.name,
		s->cfg.path[0] ? s->cfg.path : "journal ", s->cfg.path[0] ? "" : s->cfg.journal);
	/* Lines already there raise no event: read them now. */
	follow_process(s->f, on_line, s);
	return 0;
}

int authwatch_start(struct authwatch *aw)
{
	int err;

	for (int i = 0; i < aw->nsrc; i++)
		if ((err = open_source(aw, &aw->src[i])))
			return err;
	return 0;
}

static void close_sources(struct authwatch *aw)
{
	aw->nsaved = 0;
	for (int i = 0; i < aw->nsrc; i++) {
		struct aw_source *s = &aw->src[i];

		if (!s->f)
			continue;
		/* Keep positions so a reopened source resumes, not restarts. */
		snprintf(aw->saved[aw->nsaved].name, sizeof(aw->saved[0].name), "%s", s->cfg.name);
		if (!follow_get_pos(s->f, aw->saved[aw->nsaved].pos, FOLLOW_POS_LEN))
			aw->nsaved++;
		epoll_ctl(aw->epfd, EPOLL_CTL_DEL, follow_fd(s->f), NULL);
		follow_close(s->f);
		s->f = NULL;
	}
}

static int copy_history(const struct det_history *h, void *ctx)
{
	return detector_history_restore(ctx, h);
}

int authwatch_reconfigure(struct authwatch *aw, const struct policy *pol)
{
	struct detector *det;

	if (memcmp(&aw->cfg, &pol->detect, sizeof(aw->cfg))) {
		/* New thresholds: a fresh detector that keeps the ban history
		 * (escalation), while windows in progress start over. */
		aw->cfg = pol->detect;
		det = new_detector(aw);
		if (!det)
			return -ENOMEM;
		detector_history_foreach(aw->det, copy_history, det);
		detector_free(aw->det);
		aw->det = det;
	}
	close_sources(aw);
	for (int i = 0; i < pol->nauthlogs; i++) {
		aw->src[i].cfg = pol->authlogs[i];
		aw->src[i].aw = aw;
		aw->src[i].src = (struct ep_src){ SRC_AUTHLOG, &aw->src[i] };
	}
	aw->nsrc = pol->nauthlogs;
	return authwatch_start(aw);
}

void authwatch_ready(struct authwatch *aw, void *ptr)
{
	struct aw_source *s = ptr;

	(void)aw;
	if (s->f)
		follow_process(s->f, on_line, s);
}

void authwatch_tick(struct authwatch *aw)
{
	for (int i = 0; i < aw->nsrc; i++)
		if (aw->src[i].f)
			follow_process(aw->src[i].f, on_line, &aw->src[i]);
}

static int save_history(const struct det_history *h, void *ctx)
{
	char a[ADDR_STRLEN];

	return state_put(ctx, "hist %s %u %llu %llu %llu %s", addr_format(&h->prefix, a), h->bans,
			 (unsigned long long)h->last_ban_ns, (unsigned long long)h->last_duration_ns,
			 (unsigned long long)h->until_ns, h->rule[0] ? h->rule : "-");
}

int authwatch_save(struct authwatch *aw, FILE *f)
{
	char pos[FOLLOW_POS_LEN];
	int err = detector_history_foreach(aw->det, save_history, f);

	for (int i = 0; !err && i < aw->nsrc; i++)
		if (aw->src[i].f && !follow_get_pos(aw->src[i].f, pos, sizeof(pos)))
			err = state_put(f, "pos %s %s", aw->src[i].cfg.name, pos);
	return err;
}

int authwatch_load_line(struct authwatch *aw, char *line)
{
	struct det_history h = {};
	char a[ADDR_STRLEN + 8], rule[sizeof(h.rule)];
	unsigned long long last, dur, until;
	int off = 0;

	if (!strncmp(line, "hist ", 5)) {
		if (sscanf(line, "hist %70s %u %llu %llu %llu %11s", a, &h.bans, &last, &dur, &until,
			   rule) != 6 || addr_parse(a, &h.prefix, false))
			return -EINVAL;
		h.last_ban_ns = last;
		h.last_duration_ns = dur;
		h.until_ns = until;
		snprintf(h.rule, sizeof(h.rule), "%s", strcmp(rule, "-") ? rule : "");
		return detector_history_restore(aw->det, &h);
	}
	if (!strncmp(line, "pos ", 4) && aw->nsaved < POL_MAX_AUTHLOG) {
		struct aw_saved_pos *p = &aw->saved[aw->nsaved];

		if (sscanf(line, "pos %63s %n", p->name, &off) != 1 || !off)
			return -EINVAL;
		snprintf(p->pos, sizeof(p->pos), "%s", line + off);
		aw->nsaved++;
		return 0;
	}
	return -EINVAL;
}

json_t *authwatch_status_json(struct authwatch *aw)
{
	struct det_stats st;
	json_t *o, *srcs = json_array(), *reasons;

	for (int i = 0; srcs && i < aw->nsrc; i++) {
		struct follow_stats fs = {};

		if (aw->src[i].f)
			follow_get_stats(aw->src[i].f, &fs);
		if (json_array_append_new(srcs, json_pack("{s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:I}",
				"name", json_text(aw->src[i].cfg.name), "open", aw->src[i].f != NULL,
				"lines", (json_int_t)fs.lines, "rotations", (json_int_t)fs.rotations,
				"truncations", (json_int_t)fs.truncations,
				"skipped_long", (json_int_t)fs.skipped_long,
				"refused", (json_int_t)fs.refused,
				"read_errors", (json_int_t)fs.read_errors))) {
			json_decref(srcs);
			return NULL;
		}
	}
	reasons = json_object();
	for (int i = 1; reasons && i < AL_SKIP_MAX; i++)
		if (json_object_set_new(reasons, skip_names[i], json_integer(aw->skipped_by[i]))) {
			json_decref(reasons);
			reasons = NULL;
		}
	detector_stats(aw->det, &st);
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
		      "lines", (json_int_t)aw->lines, "skipped", (json_int_t)aw->skipped,
		      "failures", (json_int_t)aw->fails, "successes", (json_int_t)aw->successes,
		      "bans", (json_int_t)aw->bans, "dry_run_bans", (json_int_t)aw->dry_bans,
		      "account_events", (json_int_t)aw->account_events,
		      "tracked_sources", (json_int_t)st.sources,
		      "evictions", (json_int_t)st.evictions,
		      "users_cleaned", (json_int_t)aw->users_cleaned, "skipped_reasons", reasons,
		      "sources", srcs);
	return o;
}

void authwatch_metrics(struct authwatch *aw, FILE *f)
{
	static const char *const parsers[] = { "none", "dovecot", "dovecot_auth", "pam", "cyrus",
					       "courier", "uwimap", "perdition" };

	prom_u64(f, "imapguard_authlog_lines_total", "counter", "Auth-log lines read.", aw->lines);
	prom_head(f, "imapguard_authlog_failures_total", "counter",
		  "Failed logins counted, per parser.");
	for (int i = 1; i <= AL_P_PERDITION; i++)
		prom_labelled(f, "imapguard_authlog_failures_total", "format", parsers[i],
			      aw->fails_by_parser[i]);
	prom_head(f, "imapguard_authlog_skipped_total", "counter", "Lines not counted, per reason.");
	for (int i = 1; i < AL_SKIP_MAX; i++)
		prom_labelled(f, "imapguard_authlog_skipped_total", "reason", skip_names[i],
			      aw->skipped_by[i]);
	prom_u64(f, "imapguard_authlog_users_cleaned_total", "counter",
		 "User names with invalid UTF-8 replaced.", aw->users_cleaned);
	prom_u64(f, "imapguard_authlog_successes_total", "counter", "Successful logins seen.",
		 aw->successes);
	prom_head(f, "imapguard_bans_issued_total", "counter", "Bans issued by the detector, per rule.");
	for (int i = 0; i < 4; i++)
		prom_labelled(f, "imapguard_bans_issued_total", "rule", rule_names[i],
			      aw->bans_by_rule[i]);
	prom_u64(f, "imapguard_account_events_total", "counter",
		 "Accounts failing from many sources.", aw->account_events);
}

json_t *authwatch_why_json(struct authwatch *aw, const uint8_t addr[16])
{
	char buf[2048];

	/* Three entries of bounded length: -ENOSPC cannot happen, and would
	 * only cut the text short. */
	detector_explain(aw->det, addr, wall_ns(), buf, sizeof(buf));
	return json_text(buf);
}

void authwatch_close(struct authwatch *aw)
{
	if (!aw)
		return;
	close_sources(aw);
	detector_free(aw->det);
	al_dedup_free(aw->dedup);
	free(aw);
}

struct detector *authwatch_detector(struct authwatch *aw)
{
	return aw->det;
}

void authwatch_claim_session(struct authwatch *aw, const char *session)
{
	al_dedup_claim(aw->dedup, session);
}
