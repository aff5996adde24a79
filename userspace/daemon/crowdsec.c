// SPDX-License-Identifier: GPL-2.0
/*
 * The CrowdSec bouncer and watcher (crowdsec.h): libcurl's multi socket
 * interface driven from the daemon's epoll loop, a table of the decisions in
 * force, and a bounded queue of alerts for LAPI.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "base/epsrc.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/log.h"
#include "base/prom.h"
#include "base/value.h"
#include "daemon/crowdsec.h"
#include "fastpath/lists.h"

#define CS_STREAM_MAX		(64u << 20)	/* a startup answer with a big blocklist fits */
#define CS_REPLY_MAX		(64u << 10)	/* login and alert answers are small */
#define CS_CONNECT_TIMEOUT_MS	5000L
#define CS_REQUEST_TIMEOUT_MS	30000L
#define CS_BACKOFF_MIN_NS	NS_PER_SEC
#define CS_BACKOFF_MAX_NS	(60 * NS_PER_SEC)
#define CS_MAX_DECISIONS	262144		/* ~100 bytes each */
#define CS_BUCKETS		65536		/* power of two */
#define CS_SWEEP_BUCKETS	4096		/* expired decisions dropped per pull */
#define CS_ALERT_QUEUE		1024
#define CS_ALERT_BATCH		64
#define CS_KEY_FILE_MAX		4096
#define CS_CRED_FILE_MAX	65536
#define CS_USER_AGENT		"imapguard-bouncer/" IG_VERSION
#define CS_KEY_LEN		256

static const char *const refusal_names[CS_REF_MAX] = {
	[CS_REF_MALFORMED] = "malformed", [CS_REF_TYPE] = "type", [CS_REF_SCOPE] = "scope",
	[CS_REF_VALUE] = "value", [CS_REF_PREFIX] = "prefix", [CS_REF_DURATION] = "duration",
	[CS_REF_FILTERED] = "filtered", [CS_REF_OWN] = "own", [CS_REF_ALLOWED] = "allowed",
	[CS_REF_FULL] = "table_full", [CS_REF_BAN_FAILED] = "ban_failed",
};

const char *cs_refusal_name(enum cs_refusal r)
{
	return r < CS_REF_MAX ? refusal_names[r] : "?";
}

/* ---- validation (pure) ------------------------------------------------- */

static const struct { const char *u; uint64_t ns; } go_units[] = {
	/* Two-letter units first: "ms" is not "m" then "s". */
	{ "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
	{ "ms", 1000000 }, { "s", NS_PER_SEC }, { "m", 60 * NS_PER_SEC }, { "h", 3600 * NS_PER_SEC },
};

int cs_parse_go_duration(const char *s, int64_t *ns)
{
	const uint64_t cap = CS_DURATION_CAP_NS;
	uint64_t total = 0;
	bool neg = false;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!strcmp(s, "0")) {		/* Go's one unit-less form */
		*ns = 0;
		return 0;
	}
	if (!*s)
		return -EINVAL;
	while (*s) {
		uint64_t ip = 0, fp = 0, scale = 1, unit = 0;
		bool digits = false;
		size_t i;

		/* Saturate instead of overflowing: anything this large is cut
		 * to the cap anyway. */
		for (; isdigit((unsigned char)*s); s++, digits = true)
			ip = ip < 1000000000000000ULL ? ip * 10 + (*s - '0') : ip;
		if (*s == '.')
			for (s++; isdigit((unsigned char)*s); s++, digits = true)
				if (scale < 1000000000000ULL) {
					fp = fp * 10 + (*s - '0');
					scale *= 10;
				}
		if (!digits)
			return -EINVAL;
		for (i = 0; i < sizeof(go_units) / sizeof(go_units[0]); i++) {
			size_t l = strlen(go_units[i].u);

			if (!strncmp(s, go_units[i].u, l)) {
				unit = go_units[i].ns;
				s += l;
				break;
			}
		}
		if (!unit)
			return -EINVAL;
		if (ip > cap / unit)
			total = cap;
		else
			total += ip * unit + (uint64_t)((unsigned __int128)fp * unit / scale);
		if (total > cap)
			total = cap;
	}
	*ns = neg ? -(int64_t)total : (int64_t)total;
	return 0;
}

static const char *str_field(const json_t *j, const char *key)
{
	const json_t *v = json_object_get(j, key);

	/* An embedded NUL would make the C string differ from the JSON one. */
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

static bool word_in(const char *s, const char (*list)[POL_CS_FILTER_LEN], int n, bool substr)
{
	for (int i = 0; i < n; i++)
		if (substr ? strcasestr(s, list[i]) != NULL : !strcasecmp(s, list[i]))
			return true;
	return false;
}

/* "crowdsec/<scenario>", printable ASCII only: the reason is printed by
 * `ban list` and written as the rest of a state-file line. */
static void make_reason(char out[IG_REASON_LEN], const char *scenario)
{
	size_t n = strlen(CS_REASON_PREFIX);

	memcpy(out, CS_REASON_PREFIX, n);
	for (; *scenario && n < IG_REASON_LEN - 1; scenario++)
		out[n++] = *scenario >= 0x20 && *scenario < 0x7f ? *scenario : '?';
	out[n] = '\0';
}

static int refuse(enum cs_refusal *why, enum cs_refusal r)
{
	*why = r;
	return -EINVAL;
}

static int parse_value(const char *scope, const char *value, const struct pol_crowdsec *conf,
		       struct ig_prefix *p, enum cs_refusal *why)
{
	size_t n = strlen(value);

	if (!strcasecmp(scope, "ip")) {
		if (!(conf->scopes & POL_CS_SCOPE_IP))
			return refuse(why, CS_REF_SCOPE);
		if (!n || n >= ADDR_STRLEN || addr_parse_host(value, n, p->addr))
			return refuse(why, CS_REF_VALUE);
		p->plen = 128;
		return 0;
	}
	if (strcasecmp(scope, "range"))
		return refuse(why, CS_REF_SCOPE);
	if (!(conf->scopes & POL_CS_SCOPE_RANGE))
		return refuse(why, CS_REF_SCOPE);
	/* A range names its length; host bits are cleared (Go's ParseCIDR
	 * takes "1.2.3.4/24" for 1.2.3.0/24, and so does LAPI). */
	if (!n || n >= ADDR_STRLEN || !strchr(value, '/') || addr_parse(value, p, true))
		return refuse(why, CS_REF_VALUE);
	if (p->plen < (addr_is_v4(p->addr) ? IG_V4_PLEN_OFF + CS_MIN_PLEN4 : CS_MIN_PLEN6))
		return refuse(why, CS_REF_PREFIX);
	return 0;
}

int cs_decision_parse(const json_t *j, const struct pol_crowdsec *conf, bool deleted,
		      struct cs_decision *out, enum cs_refusal *why)
{
	const json_t *id = json_object_get(j, "id");
	const char *scope = str_field(j, "scope"), *value = str_field(j, "value");
	const char *type = str_field(j, "type"), *dur = str_field(j, "duration");
	const char *scen = str_field(j, "scenario"), *origin = str_field(j, "origin");
	int64_t ns;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j) || !json_is_integer(id) || !scope || !value)
		return refuse(why, CS_REF_MALFORMED);
	out->id = json_integer_value(id);
	if (!deleted && (!type || !dur || !scen || !origin))
		return refuse(why, CS_REF_MALFORMED);
	if (!deleted && strcasecmp(type, "ban"))
		return refuse(why, CS_REF_TYPE);
	if (parse_value(scope, value, conf, &out->pfx, why))
		return -EINVAL;
	if (deleted)		/* it goes: only which one matters */
		return 0;
	if (cs_parse_go_duration(dur, &ns) || ns <= 0)
		return refuse(why, CS_REF_DURATION);
	out->ttl_ns = ns;
	if (!strncmp(scen, CS_OWN_SCENARIO, strlen(CS_OWN_SCENARIO)))
		return refuse(why, CS_REF_OWN);
	if ((conf->norigins && !word_in(origin, conf->origins, conf->norigins, false)) ||
	    (conf->nscenarios && !word_in(scen, conf->scenarios, conf->nscenarios, true)))
		return refuse(why, CS_REF_FILTERED);
	make_reason(out->reason, scen);
	return 0;
}

/* ---- state ------------------------------------------------------------- */

enum fd_kind { FD_SOCK, FD_CURL_TIMER, FD_POLL_TIMER };

/* An fd in the loop. Socket slots are pooled and never freed while the
 * module lives: an event already fetched by epoll_wait for a socket libcurl
 * has since closed finds fd -1 (or a live socket, which libcurl reads as a
 * spurious wake-up), never freed memory. */
struct cs_fd {
	struct ep_src src;
	struct crowdsec *cs;
	enum fd_kind kind;
	int fd;
	struct cs_fd *next;
};

struct grp;

/* A decision in force, by id; decisions for the same prefix form a group. */
struct dec {
	int64_t id;
	uint64_t expires;		/* mono ns */
	struct grp *g;
	struct dec *next_id, *next_in_grp;
	char reason[IG_REASON_LEN];
};

struct grp {
	struct ig_prefix pfx;
	struct dec *decs;
	struct grp *next;
};

enum req_kind { REQ_STREAM, REQ_LOGIN, REQ_ALERTS };

struct req {
	CURL *easy;
	enum req_kind kind;
	bool busy;
	char *body;
	size_t len, cap, max;
	bool too_big;
	struct curl_slist *hdrs;
	char *post;
};

struct alert {
	struct ig_prefix pfx;
	uint64_t ttl_ns;
	time_t at;
	char reason[IG_REASON_LEN];
};

struct crowdsec {
	struct pol_crowdsec conf;
	struct cs_hooks h;
	int epfd;
	CURLM *multi;
	struct cs_fd curl_timer, poll_timer, *socks;
	struct req stream, login, alerts;
	char api_key[CS_KEY_LEN];
	char machine_id[256], password[256];
	char *token;			/* watcher JWT, NULL: log in first */
	bool startup;			/* the next pull must be a full one (a resync) */
	bool inflight_full;		/* the pull in flight (or being applied) is */
	bool connected;
	unsigned int fails;
	struct hasher *hash;
	struct dec **by_id;
	struct grp **by_pfx;
	size_t ndecs, sweep_pos;
	uint64_t refused[CS_REF_MAX];
	uint64_t pulls_ok, pulls_failed, resyncs, bans_added, bans_lifted;
	time_t last_ok;
	char last_error[160];
	struct alert *aq;		/* ring of CS_ALERT_QUEUE */
	size_t aq_head, aq_n, aq_sent;	/* aq_sent: in the request in flight */
	uint64_t alerts_pushed, alerts_failed, alerts_dropped, logins;
	unsigned int creds_warned;
};

static size_t id_slot(struct crowdsec *cs, int64_t id)
{
	return hasher_sum(cs->hash, &id, sizeof(id)) & (CS_BUCKETS - 1);
}

static size_t pfx_slot(struct crowdsec *cs, const struct ig_prefix *p)
{
	uint8_t k[17];

	memcpy(k, p->addr, 16);
	k[16] = p->plen;
	return hasher_sum(cs->hash, k, sizeof(k)) & (CS_BUCKETS - 1);
}

static struct dec *dec_find(struct crowdsec *cs, int64_t id)
{
	struct dec *d = cs->by_id[id_slot(cs, id)];

	while (d && d->id != id)
		d = d->next_id;
	return d;
}

static struct grp *grp_find(struct crowdsec *cs, const struct ig_prefix *p)
{
	struct grp *g = cs->by_pfx[pfx_slot(cs, p)];

	while (g && (g->pfx.plen != p->plen || memcmp(g->pfx.addr, p->addr, 16)))
		g = g->next;
	return g;
}

/* The group's longest-lived decision, or NULL when all expired. */
static struct dec *grp_longest(struct grp *g, uint64_t now)
{
	struct dec *best = NULL;

	for (struct dec *d = g->decs; d; d = d->next_in_grp)
		if (d->expires > now && (!best || d->expires > best->expires))
			best = d;
	return best;
}

/* Make the map match the group: a ban until its longest decision's end,
 * or none. A ban hook that fails is counted; the next pull tries again
 * only for new decisions, so a full map is visible in the metrics. */
static void grp_enforce(struct crowdsec *cs, struct grp *g, bool added)
{
	uint64_t now = mono_ns();
	struct dec *best = grp_longest(g, now);

	if (best) {
		if (cs->h.ban(cs->h.ctx, &g->pfx, best->expires - now, best->reason))
			cs->refused[CS_REF_BAN_FAILED]++;
		else if (added)
			cs->bans_added++;
	} else if (!cs->h.unban(cs->h.ctx, &g->pfx)) {
		cs->bans_lifted++;
	}
}

static void grp_unlink_free(struct crowdsec *cs, struct grp *g)
{
	struct grp **pp = &cs->by_pfx[pfx_slot(cs, &g->pfx)];

	while (*pp != g)
		pp = &(*pp)->next;
	*pp = g->next;
	free(g);
}

/* Forget decision d; with enforce, lift or shorten its prefix's ban (two
 * decisions on one address: the other one keeps it banned). */
static void dec_remove(struct crowdsec *cs, struct dec *d, bool enforce)
{
	struct dec **pp = &cs->by_id[id_slot(cs, d->id)];
	struct grp *g = d->g;

	while (*pp != d)
		pp = &(*pp)->next_id;
	*pp = d->next_id;
	for (pp = &g->decs; *pp != d; pp = &(*pp)->next_in_grp)
		;
	*pp = d->next_in_grp;
	free(d);
	cs->ndecs--;
	if (!g->decs) {
		if (enforce && !cs->h.unban(cs->h.ctx, &g->pfx))
			cs->bans_lifted++;
		grp_unlink_free(cs, g);
	} else if (enforce) {
		grp_enforce(cs, g, false);
	}
}

static void table_clear(struct crowdsec *cs)
{
	if (!cs->ndecs)		/* an empty group is freed at once: nothing at all */
		return;
	for (size_t i = 0; i < CS_BUCKETS; i++) {
		for (struct dec *d = cs->by_id[i], *n; d; d = n) {
			n = d->next_id;
			free(d);
		}
		for (struct grp *g = cs->by_pfx[i], *n; g; g = n) {
			n = g->next;
			free(g);
		}
		cs->by_id[i] = NULL;
		cs->by_pfx[i] = NULL;
	}
	cs->ndecs = 0;
}

/* A validated new decision into the table and the maps. */
static void dec_add(struct crowdsec *cs, const struct cs_decision *v)
{
	struct dec *d = dec_find(cs, v->id);
	struct grp *g;
	bool fresh;

	if (d)				/* sent again: the new copy wins */
		dec_remove(cs, d, false);
	if (cs->h.is_allowed(cs->h.ctx, &v->pfx)) {
		/* The fast path checks the allow list first, so a range that
		 * merely overlaps an allowed net never drops it; one inside an
		 * allowed net is refused here. */
		cs->refused[CS_REF_ALLOWED]++;
		return;
	}
	if (cs->ndecs >= CS_MAX_DECISIONS || !(d = calloc(1, sizeof(*d)))) {
		cs->refused[CS_REF_FULL]++;
		return;
	}
	g = grp_find(cs, &v->pfx);
	fresh = !g;
	if (!g) {
		size_t s = pfx_slot(cs, &v->pfx);

		if (!(g = calloc(1, sizeof(*g)))) {
			free(d);
			cs->refused[CS_REF_FULL]++;
			return;
		}
		g->pfx = v->pfx;
		g->next = cs->by_pfx[s];
		cs->by_pfx[s] = g;
	}
	d->id = v->id;
	d->expires = mono_ns() + v->ttl_ns;
	d->g = g;
	memcpy(d->reason, v->reason, sizeof(d->reason));
	d->next_in_grp = g->decs;
	g->decs = d;
	d->next_id = cs->by_id[id_slot(cs, v->id)];
	cs->by_id[id_slot(cs, v->id)] = d;
	cs->ndecs++;
	grp_enforce(cs, g, fresh);
}

/* Expired decisions leave the table a slice at a time (LAPI reports them
 * as deleted too, but the table must not depend on that). Their bans have
 * expired in the fast path already. */
static void table_sweep(struct crowdsec *cs)
{
	uint64_t now = mono_ns();

	if (!cs->ndecs)
		return;
	for (size_t i = 0; i < CS_SWEEP_BUCKETS; i++) {
		size_t s = (cs->sweep_pos + i) & (CS_BUCKETS - 1);

		for (struct dec *d = cs->by_id[s], *n; d; d = n) {
			n = d->next_id;
			if (d->expires <= now)
				dec_remove(cs, d, false);
		}
	}
	cs->sweep_pos = (cs->sweep_pos + CS_SWEEP_BUCKETS) & (CS_BUCKETS - 1);
}

/* After a startup answer: bans CrowdSec set that LAPI no longer holds
 * (deleted while we were away) are lifted. New bans are in first, so no
 * address is unbanned for a moment. */
static void lift_stale(struct crowdsec *cs)
{
	struct ig_prefix *own;
	size_t n;

	if (cs->h.own_bans(cs->h.ctx, &own, &n))
		return;
	for (size_t i = 0; i < n; i++)
		if (!grp_find(cs, &own[i]) && !cs->h.unban(cs->h.ctx, &own[i]))
			cs->bans_lifted++;
	free(own);
}

/* ---- applying a stream answer ------------------------------------------ */

static void apply_list(struct crowdsec *cs, const json_t *arr, bool deleted, size_t *count)
{
	struct cs_decision v;
	enum cs_refusal why;
	const json_t *e;
	size_t i;

	json_array_foreach(arr, i, e) {
		if (cs_decision_parse(e, &cs->conf, deleted, &v, &why)) {
			if (!deleted)	/* a deletion we cannot read changes nothing */
				cs->refused[why]++;
			continue;
		}
		if (deleted) {
			struct dec *d = dec_find(cs, v.id);

			if (d) {
				dec_remove(cs, d, true);
				(*count)++;
			}
		} else {
			dec_add(cs, &v);
			(*count)++;
		}
	}
}

/* 0, or -EBADMSG when the body is not a stream answer (nothing applied). */
static int apply_stream(struct crowdsec *cs, const char *body, size_t len)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *nw = json_object_get(root, "new"), *del = json_object_get(root, "deleted");
	size_t added = 0, removed = 0;

	/* LAPI sends null for an empty list. */
	if (!json_is_object(root) || (nw && !json_is_array(nw) && !json_is_null(nw)) ||
	    (del && !json_is_array(del) && !json_is_null(del))) {
		snprintf(cs->last_error, sizeof(cs->last_error), "not a decision stream: %.100s",
			 root ? "wrong shape" : jerr.text);
		json_decref(root);
		return -EBADMSG;
	}
	if (cs->inflight_full) {
		/* A full answer replaces what we held: decisions deleted
		 * while we were away are simply absent from it. */
		table_clear(cs);
		cs->resyncs++;
	} else {
		/* Deletions first: a decision replaced in one pull stays. */
		apply_list(cs, del, true, &removed);
	}
	apply_list(cs, nw, false, &added);
	if (cs->inflight_full)
		lift_stale(cs);
	json_decref(root);
	table_sweep(cs);
	if (added || removed || cs->inflight_full)
		pr_info("crowdsec: %s%zu new decision%s, %zu deleted, %zu in force",
			cs->inflight_full ? "full resync, " : "", added, added == 1 ? "" : "s", removed,
			cs->ndecs);
	return 0;
}

int crowdsec_feed(struct crowdsec *cs, const char *body, size_t len, bool startup)
{
	int err;

	cs->inflight_full = startup;
	err = apply_stream(cs, body, len);
	cs->inflight_full = false;
	return err;
}

/* ---- libcurl plumbing --------------------------------------------------- */

static void arm(int fd, uint64_t ns)
{
	struct itimerspec its = {};

	if (ns) {
		its.it_value.tv_sec = ns / NS_PER_SEC;
		its.it_value.tv_nsec = ns % NS_PER_SEC;
	}
	timerfd_settime(fd, 0, &its, NULL);
}

static struct cs_fd *sock_slot(struct crowdsec *cs)
{
	struct cs_fd *f;

	for (f = cs->socks; f; f = f->next)
		if (f->fd < 0)
			return f;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->cs = cs;
	f->kind = FD_SOCK;
	f->src = (struct ep_src){ SRC_CROWDSEC, f };
	f->next = cs->socks;
	cs->socks = f;
	return f;
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct crowdsec *cs = userp;
	struct cs_fd *f = socketp;
	struct epoll_event ev = {};

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(cs->epfd, EPOLL_CTL_DEL, s, NULL);
		if (f)
			f->fd = -1;
		curl_multi_assign(cs->multi, s, NULL);
		return 0;
	}
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	if (!f) {
		if (!(f = sock_slot(cs)))
			return -1;
		f->fd = s;
		curl_multi_assign(cs->multi, s, f);
		ev.data.ptr = &f->src;
		if (!epoll_ctl(cs->epfd, EPOLL_CTL_ADD, s, &ev) || errno != EEXIST)
			return 0;
	}
	ev.data.ptr = &f->src;
	epoll_ctl(cs->epfd, EPOLL_CTL_MOD, s, &ev);
	return 0;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct crowdsec *cs = userp;

	(void)m;
	/* -1: none; 0: at once (a timerfd needs a non-zero value). */
	arm(cs->curl_timer.fd, timeout_ms < 0 ? 0 : timeout_ms == 0 ? 1 :
	    (uint64_t)timeout_ms * 1000000ULL);
	return 0;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	size_t n = size * nmemb;

	if (n > r->max - r->len) {	/* a body over its cap aborts the transfer */
		r->too_big = true;
		return 0;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 16384;
		char *b;

		while (cap < r->len + n + 1)
			cap *= 2;
		if (!(b = realloc(r->body, cap)))
			return 0;
		r->body = b;
		r->cap = cap;
	}
	memcpy(r->body + r->len, p, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Start r on url; post (NULL: GET) and hdrs are taken over. 0 or -errno. */
static int req_start(struct crowdsec *cs, struct req *r, const char *url, char *post,
		     struct curl_slist *hdrs)
{
	CURL *e = r->easy;

	curl_slist_free_all(r->hdrs);
	free(r->post);
	r->hdrs = hdrs;
	r->post = post;
	r->len = 0;
	r->too_big = false;
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CS_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, CS_REQUEST_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, CS_USER_AGENT);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	if (cs->conf.ca_file[0])	/* in place of the system's: a LAPI's own CA */
		curl_easy_setopt(e, CURLOPT_CAINFO, cs->conf.ca_file);
	if (post) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
	}
	if (curl_multi_add_handle(cs->multi, e) != CURLM_OK)
		return -ENOMEM;
	r->busy = true;
	return 0;
}

/* "url?startup=true&scopes=ip,range&origins=...": filters go to LAPI too,
 * so it sends less; they are checked again here all the same. */
static char *stream_url(struct crowdsec *cs)
{
	char *buf = NULL, *esc;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const struct pol_crowdsec *c = &cs->conf;

	if (!f)
		return NULL;
	fprintf(f, "%s/v1/decisions/stream?startup=%s&scopes=%s%s%s", c->lapi,
		cs->inflight_full ? "true" : "false",
		c->scopes & POL_CS_SCOPE_IP ? "ip" : "",
		c->scopes == (POL_CS_SCOPE_IP | POL_CS_SCOPE_RANGE) ? "," : "",
		c->scopes & POL_CS_SCOPE_RANGE ? "range" : "");
	for (int pass = 0; pass < 2; pass++) {
		int n = pass ? c->nscenarios : c->norigins;

		for (int i = 0; i < n; i++) {
			esc = curl_easy_escape(NULL, pass ? c->scenarios[i] : c->origins[i], 0);
			fprintf(f, "%s%s", i ? "," : pass ? "&scenarios_containing=" : "&origins=",
				esc ? esc : "");
			curl_free(esc);
		}
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void pull(struct crowdsec *cs)
{
	char hdr[300], *url;
	struct curl_slist *h;

	if (cs->stream.busy)
		return;
	/* Whatever asks for a full answer from now on gets the next pull. */
	cs->inflight_full = cs->startup;
	cs->startup = false;
	snprintf(hdr, sizeof(hdr), "X-Api-Key: %s", cs->api_key);
	url = stream_url(cs);
	h = curl_slist_append(NULL, hdr);
	if (!url || !h || req_start(cs, &cs->stream, url, NULL, h)) {
		if (!url || !h)
			curl_slist_free_all(h);
		cs->startup |= cs->inflight_full;
		arm(cs->poll_timer.fd, CS_BACKOFF_MIN_NS);
	}
	free(url);
}

static void pull_failed(struct crowdsec *cs, const char *why)
{
	uint64_t delay = CS_BACKOFF_MIN_NS << (cs->fails < 6 ? cs->fails : 6);

	if (why != cs->last_error)
		snprintf(cs->last_error, sizeof(cs->last_error), "%s", why);
	/* One warning when the link goes down, not one per retry. */
	if (cs->connected || !cs->fails)
		pr_warn("crowdsec: couldn't pull decisions from %s: %s (enforcing what is known, "
			"retrying with backoff)", cs->conf.lapi, cs->last_error);
	cs->connected = false;
	cs->startup = true;	/* whatever was missed: a full resync */
	cs->fails++;
	cs->pulls_failed++;
	arm(cs->poll_timer.fd, delay < CS_BACKOFF_MAX_NS ? delay : CS_BACKOFF_MAX_NS);
}

static void stream_done(struct crowdsec *cs, CURLcode rc, long code)
{
	struct req *r = &cs->stream;
	char why[96];

	if (rc != CURLE_OK) {
		pull_failed(cs, r->too_big ? "answer larger than the cap" : curl_easy_strerror(rc));
		return;
	}
	if (code != 200) {
		snprintf(why, sizeof(why), "%sHTTP status %ld", code == 403 ? "API key refused, " : "",
			 code);
		pull_failed(cs, why);
		return;
	}
	if (apply_stream(cs, r->body ? r->body : "", r->len)) {
		pull_failed(cs, cs->last_error);
		return;
	}
	if (!cs->connected && cs->fails)
		pr_info("crowdsec: %s reachable again", cs->conf.lapi);
	cs->connected = true;
	cs->fails = 0;
	cs->pulls_ok++;
	cs->last_ok = time(NULL);
	cs->last_error[0] = '\0';
	arm(cs->poll_timer.fd, cs->conf.update_ns);
}

/* ---- alerts (push_alerts) ---------------------------------------------- */

static char *rfc3339(time_t t, char buf[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static json_t *alert_json(const struct alert *a)
{
	char addr[ADDR_STRLEN], ts[32], dur[32], msg[128], scen[64];
	bool host = a->pfx.plen == 128;
	const char *scope = host ? "Ip" : "Range";

	addr_format(&a->pfx, addr);
	snprintf(dur, sizeof(dur), "%llus", (unsigned long long)(a->ttl_ns / NS_PER_SEC));
	snprintf(scen, sizeof(scen), "%s%s", CS_OWN_SCENARIO, a->reason);
	snprintf(msg, sizeof(msg), "imapguard banned %s: %s", addr, a->reason);
	rfc3339(a->at, ts);
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:s, s:b, s:b, s:[],"
			 " s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s, s:s, s:s, s:s}]}",
			 "scenario", scen, "scenario_hash", "", "scenario_version", "",
			 "message", msg, "events_count", 1, "start_at", ts, "stop_at", ts,
			 "capacity", 0, "leakspeed", "0", "simulated", 0, "remediation", 1,
			 "events",
			 "source", "scope", scope, "value", addr, host ? "ip" : "range", addr,
			 "decisions", "origin", "crowdsec", "type", "ban", "scope", scope,
			 "value", addr, "duration", dur, "scenario", scen);
}

static void push_alerts(struct crowdsec *cs);

static void alerts_failed(struct crowdsec *cs, const char *what, long code)
{
	if (!cs->alerts_failed++ || !(cs->alerts_failed % 100))
		pr_warn("crowdsec: couldn't push alerts to %s: %s (%ld); kept for the next try",
			cs->conf.lapi, what, code);
}

static int read_credentials(struct crowdsec *cs)
{
	char *buf, *line, *save = NULL;
	size_t len;
	int err = file_read(cs->conf.machine_credentials, CS_CRED_FILE_MAX, 0, &buf, &len);

	if (err) {
		/* Tried again at each push: said once, counted always. */
		if (!cs->creds_warned++)
			pr_warn("crowdsec: couldn't read machine_credentials '%s': %s",
				cs->conf.machine_credentials, file_strerror(err));
		cs->alerts_failed++;
		return err;
	}
	cs->machine_id[0] = cs->password[0] = '\0';
	/* The YAML cscli writes: "login: ID", "password: SECRET", "url: ...". */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ':'), *dst = NULL;
		size_t n;

		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(line, "login"))
			dst = cs->machine_id;
		else if (!strcmp(line, "password"))
			dst = cs->password;
		if (!dst)
			continue;
		v += strspn(v, " \t");
		n = strlen(v);
		while (n && isspace((unsigned char)v[n - 1]))
			v[--n] = '\0';
		/* YAML quotes, if cscli or the admin used them. */
		if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
			v[n - 1] = '\0';
			v++;
		}
		snprintf(dst, sizeof(cs->password), "%s", v);
	}
	free(buf);
	if (!cs->machine_id[0] || !cs->password[0]) {
		cs->alerts_failed++;
		if (!cs->creds_warned++)
			pr_warn("crowdsec: machine_credentials '%s' has no login or password",
				cs->conf.machine_credentials);
		return -EINVAL;
	}
	return 0;
}

static struct curl_slist *json_headers(const char *token)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json"), *t;
	char auth[4200];

	if (h && token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		if (!(t = curl_slist_append(h, auth))) {
			curl_slist_free_all(h);
			return NULL;
		}
		h = t;
	}
	return h;
}

static void login(struct crowdsec *cs)
{
	char url[320], *body;
	struct curl_slist *h;

	if (cs->login.busy || (!cs->machine_id[0] && read_credentials(cs)))
		return;
	snprintf(url, sizeof(url), "%s/v1/watchers/login", cs->conf.lapi);
	body = json_take_string(json_pack("{s:o, s:o, s:[]}", "machine_id", json_text(cs->machine_id),
					  "password", json_text(cs->password), "scenarios"));
	h = json_headers(NULL);
	if (!body || !h || req_start(cs, &cs->login, url, body, h)) {
		if (!body || !h) {
			free(body);
			curl_slist_free_all(h);
		}
		return;
	}
	cs->logins++;
}

static void login_done(struct crowdsec *cs, CURLcode rc, long code)
{
	json_t *j;
	const char *tok;

	if (rc != CURLE_OK || code != 200) {
		alerts_failed(cs, rc != CURLE_OK ? curl_easy_strerror(rc) : "watcher login refused",
			      code);
		return;
	}
	j = json_loadb(cs->login.body ? cs->login.body : "", cs->login.len, 0, NULL);
	tok = str_field(j, "token");
	/* The token goes into a header: printable, no blanks, bounded. */
	if (!tok || !*tok || strlen(tok) > 4096 || tok[strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"abcdefghijklmnopqrstuvwxyz0123456789-_.=+/")]) {
		json_decref(j);
		alerts_failed(cs, "login answer without a usable token", code);
		return;
	}
	free(cs->token);
	cs->token = strdup(tok);
	json_decref(j);
	push_alerts(cs);
}

static void push_alerts(struct crowdsec *cs)
{
	char url[320], *body;
	struct curl_slist *h;
	json_t *arr;
	size_t n;

	if (!cs->conf.push_alerts || !cs->aq_n || cs->alerts.busy || cs->login.busy)
		return;
	if (!cs->token) {
		login(cs);
		return;
	}
	n = cs->aq_n < CS_ALERT_BATCH ? cs->aq_n : CS_ALERT_BATCH;
	arr = json_array();
	/* cppcheck takes aq_n for 0 here, though the test above returned then. */
	// cppcheck-suppress knownConditionTrueFalse
	for (size_t i = 0; i < n; i++) {
		const struct alert *a = &cs->aq[(cs->aq_head + i) % CS_ALERT_QUEUE];

		if (arr && json_array_append_new(arr, alert_json(a))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	body = json_take_string(arr);
	h = json_headers(cs->token);
	snprintf(url, sizeof(url), "%s/v1/alerts", cs->conf.lapi);
	if (!body || !h || req_start(cs, &cs->alerts, url, body, h)) {
		if (!body || !h) {
			free(body);
			curl_slist_free_all(h);
		}
		return;
	}
	cs->aq_sent = n;
}

static void alerts_done(struct crowdsec *cs, CURLcode rc, long code)
{
	size_t n = cs->aq_sent;

	cs->aq_sent = 0;
	if (rc == CURLE_OK && (code == 401 || code == 403)) {
		/* The JWT expired: log in again, then resend. */
		free(cs->token);
		cs->token = NULL;
		push_alerts(cs);
		return;
	}
	if (rc != CURLE_OK || code < 200 || code > 299) {
		alerts_failed(cs, rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP status", code);
		return;
	}
	cs->aq_head = (cs->aq_head + n) % CS_ALERT_QUEUE;
	cs->aq_n -= n;
	cs->alerts_pushed += n;
	push_alerts(cs);
}

void crowdsec_local_ban(struct crowdsec *cs, const struct ig_prefix *p, uint64_t ttl_ns,
			const char *reason)
{
	struct alert *a;

	if (!cs || !cs->conf.push_alerts)
		return;
	if (cs->aq_n == CS_ALERT_QUEUE) {
		/* LAPI away for long: the oldest alerts go (not the one in flight). */
		if (cs->aq_sent) {
			cs->alerts_dropped++;
			return;
		}
		cs->aq_head = (cs->aq_head + 1) % CS_ALERT_QUEUE;
		cs->aq_n--;
		cs->alerts_dropped++;
	}
	a = &cs->aq[(cs->aq_head + cs->aq_n++) % CS_ALERT_QUEUE];
	a->pfx = *p;
	/* A permanent ban is a year to CrowdSec (a decision needs an end). */
	a->ttl_ns = ttl_ns && ttl_ns < CS_DURATION_CAP_NS ? ttl_ns : CS_DURATION_CAP_NS;
	if (a->ttl_ns < NS_PER_SEC)
		a->ttl_ns = NS_PER_SEC;
	a->at = time(NULL);
	snprintf(a->reason, sizeof(a->reason), "%s", reason ? reason : "ban");
	for (char *c = a->reason; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			*c = '_';
	push_alerts(cs);
}

/* ---- loop entry points ------------------------------------------------- */

static void check_done(struct crowdsec *cs)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(cs->multi, &left))) {
		struct req *r = NULL;
		long code = 0;
		CURLcode rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		curl_multi_remove_handle(cs->multi, msg->easy_handle);
		if (!r)
			continue;
		r->busy = false;
		switch (r->kind) {
		case REQ_STREAM: stream_done(cs, rc, code); break;
		case REQ_LOGIN: login_done(cs, rc, code); break;
		case REQ_ALERTS: alerts_done(cs, rc, code); break;
		}
	}
}

void crowdsec_ready(void *src, uint32_t events)
{
	struct cs_fd *f = src;
	struct crowdsec *cs = f->cs;
	uint64_t ticks;
	int running, flags;

	switch (f->kind) {
	case FD_SOCK:
		if (f->fd < 0)		/* closed by libcurl earlier in this batch */
			return;
		flags = ((events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
			((events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
			((events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
		curl_multi_socket_action(cs->multi, f->fd, flags, &running);
		break;
	case FD_CURL_TIMER:
		if (read(f->fd, &ticks, sizeof(ticks)) < 0)
			return;
		curl_multi_socket_action(cs->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		break;
	case FD_POLL_TIMER:
		if (read(f->fd, &ticks, sizeof(ticks)) < 0)
			return;
		pull(cs);
		push_alerts(cs);	/* what failed before goes with the next pull */
		break;
	}
	check_done(cs);
}

/* The API key file: one line, printable, no blanks (it becomes a header). */
static int read_key(struct crowdsec *cs, char key[CS_KEY_LEN])
{
	struct stat st;
	char *buf;
	size_t len, n;
	int err = file_read(cs->conf.api_key_file, CS_KEY_FILE_MAX, 0, &buf, &len);

	if (err) {
		pr_warn("crowdsec: couldn't read api_key_file '%s': %s", cs->conf.api_key_file,
			file_strerror(err));
		return err;
	}
	while (len && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	n = strspn(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/");
	if (!len || n != len || len >= CS_KEY_LEN) {
		pr_warn("crowdsec: api_key_file '%s' does not hold one API key", cs->conf.api_key_file);
		free(buf);
		return -EINVAL;
	}
	memcpy(key, buf, len + 1);
	free(buf);
	/* The key lets anyone read every decision: say so if all users can. */
	if (!stat(cs->conf.api_key_file, &st) && (st.st_mode & S_IROTH))
		pr_warn("crowdsec: api_key_file '%s' is readable by every user (chmod 600 it)",
			cs->conf.api_key_file);
	return 0;
}

static int fd_init(struct crowdsec *cs, struct cs_fd *f, enum fd_kind kind)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &f->src };

	f->cs = cs;
	f->kind = kind;
	f->src = (struct ep_src){ SRC_CROWDSEC, f };
	f->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (f->fd < 0 || epoll_ctl(cs->epfd, EPOLL_CTL_ADD, f->fd, &ev))
		return -errno;
	return 0;
}

int crowdsec_open(struct crowdsec **out, const struct pol_crowdsec *conf,
		  const struct cs_hooks *hooks, int epfd)
{
	struct crowdsec *cs = calloc(1, sizeof(*cs));
	int err;

	*out = NULL;
	if (!cs)
		return -ENOMEM;
	cs->conf = *conf;
	cs->h = *hooks;
	cs->epfd = epfd;
	cs->startup = true;
	cs->curl_timer.fd = cs->poll_timer.fd = -1;
	cs->stream.kind = REQ_STREAM;
	cs->stream.max = CS_STREAM_MAX;
	cs->login.kind = REQ_LOGIN;
	cs->login.max = CS_REPLY_MAX;
	cs->alerts.kind = REQ_ALERTS;
	cs->alerts.max = CS_REPLY_MAX;
	if ((err = read_key(cs, cs->api_key)))
		goto fail;
	/* Said now, not as a TLS error at every pull. */
	if (cs->conf.ca_file[0] && access(cs->conf.ca_file, R_OK)) {
		err = -errno;
		pr_warn("crowdsec: couldn't read ca_file '%s': %s", cs->conf.ca_file, strerror(-err));
		goto fail;
	}
	err = -ENOMEM;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cs->hash = hasher_new(NULL);
	cs->by_id = calloc(CS_BUCKETS, sizeof(*cs->by_id));
	cs->by_pfx = calloc(CS_BUCKETS, sizeof(*cs->by_pfx));
	cs->aq = calloc(CS_ALERT_QUEUE, sizeof(*cs->aq));
	cs->multi = curl_multi_init();
	cs->stream.easy = curl_easy_init();
	cs->login.easy = curl_easy_init();
	cs->alerts.easy = curl_easy_init();
	if (!cs->hash || !cs->by_id || !cs->by_pfx || !cs->aq || !cs->multi || !cs->stream.easy ||
	    !cs->login.easy || !cs->alerts.easy)
		goto fail;
	if ((err = fd_init(cs, &cs->curl_timer, FD_CURL_TIMER)) ||
	    (err = fd_init(cs, &cs->poll_timer, FD_POLL_TIMER)))
		goto fail;
	curl_multi_setopt(cs->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(cs->multi, CURLMOPT_SOCKETDATA, cs);
	curl_multi_setopt(cs->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(cs->multi, CURLMOPT_TIMERDATA, cs);
	if (cs->conf.push_alerts)
		read_credentials(cs);	/* warned now; retried at each push */
	arm(cs->poll_timer.fd, 1);	/* first pull at once */
	pr_info("crowdsec: bouncer for %s (every %llus%s)", cs->conf.lapi,
		(unsigned long long)(cs->conf.update_ns / NS_PER_SEC),
		cs->conf.push_alerts ? ", pushing alerts" : "");
	*out = cs;
	return 0;
fail:
	crowdsec_close(cs);
	return err;
}

void crowdsec_reread_key(struct crowdsec *cs)
{
	char key[CS_KEY_LEN];

	if (read_key(cs, key) || !strcmp(key, cs->api_key))
		return;		/* unreadable: warned, the key in use stays */
	/* Another key is another bouncer to LAPI: start it from a full answer. */
	memcpy(cs->api_key, key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	cs->startup = true;
	pr_info("crowdsec: new API key from '%s'", cs->conf.api_key_file);
}

bool crowdsec_changed(const struct crowdsec *cs, const struct pol_crowdsec *conf)
{
	return !cs || memcmp(&cs->conf, conf, sizeof(*conf));
}

json_t *crowdsec_status_json(struct crowdsec *cs)
{
	json_t *ref = json_object(), *o;

	for (int i = 0; ref && i < CS_REF_MAX; i++)
		if (json_object_set_new(ref, refusal_names[i], json_integer(cs->refused[i]))) {
			json_decref(ref);
			ref = NULL;
		}
	o = json_pack("{s:o, s:b, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:o,"
		      " s:{s:b, s:I, s:I, s:I, s:I}}",
		      "lapi", json_text(cs->conf.lapi), "connected", cs->connected,
		      "last_pull_ok", (json_int_t)cs->last_ok,
		      "last_error", json_text(cs->last_error),
		      "decisions", (json_int_t)cs->ndecs, "pulls_ok", (json_int_t)cs->pulls_ok,
		      "pulls_failed", (json_int_t)cs->pulls_failed, "resyncs", (json_int_t)cs->resyncs,
		      "bans_added", (json_int_t)cs->bans_added,
		      "bans_lifted", (json_int_t)cs->bans_lifted, "refused", ref,
		      "alerts", "enabled", cs->conf.push_alerts, "pushed", (json_int_t)cs->alerts_pushed,
		      "queued", (json_int_t)cs->aq_n, "failed", (json_int_t)cs->alerts_failed,
		      "dropped", (json_int_t)cs->alerts_dropped);
	return o;
}

void crowdsec_metrics(struct crowdsec *cs, FILE *f)
{
	const char *pulls = "imapguard_crowdsec_pulls_total", *alerts = "imapguard_crowdsec_alerts_total";

	prom_u64(f, "imapguard_crowdsec_up", "gauge", "The last pull from CrowdSec LAPI worked.",
		 cs->connected);
	prom_u64(f, "imapguard_crowdsec_decisions", "gauge", "CrowdSec decisions in force.",
		 cs->ndecs);
	prom_head(f, pulls, "counter", "Decision pulls from LAPI, by result.");
	prom_labelled(f, pulls, "result", "ok", cs->pulls_ok);
	prom_labelled(f, pulls, "result", "error", cs->pulls_failed);
	prom_head(f, "imapguard_crowdsec_refused_total", "counter",
		  "Decisions not applied, by reason.");
	for (int i = 0; i < CS_REF_MAX; i++)
		prom_labelled(f, "imapguard_crowdsec_refused_total", "reason", refusal_names[i],
			      cs->refused[i]);
	prom_head(f, alerts, "counter", "Alerts for imapguard's own bans, by result.");
	prom_labelled(f, alerts, "result", "pushed", cs->alerts_pushed);
	prom_labelled(f, alerts, "result", "failed", cs->alerts_failed);
	prom_labelled(f, alerts, "result", "dropped", cs->alerts_dropped);
}

void crowdsec_close(struct crowdsec *cs)
{
	struct req *reqs[] = { &cs->stream, &cs->login, &cs->alerts };

	if (!cs)
		return;
	for (int i = 0; i < 3; i++) {
		if (reqs[i]->easy) {
			if (reqs[i]->busy)
				curl_multi_remove_handle(cs->multi, reqs[i]->easy);
			curl_easy_cleanup(reqs[i]->easy);
		}
		curl_slist_free_all(reqs[i]->hdrs);
		free(reqs[i]->post);
		free(reqs[i]->body);
	}
	if (cs->multi)
		curl_multi_cleanup(cs->multi);	/* its sockets leave epoll via on_socket */
	for (struct cs_fd *f = cs->socks, *n; f; f = n) {
		n = f->next;
		if (f->fd >= 0)
			epoll_ctl(cs->epfd, EPOLL_CTL_DEL, f->fd, NULL);
		free(f);
	}
	if (cs->curl_timer.fd >= 0)
		close(cs->curl_timer.fd);
	if (cs->poll_timer.fd >= 0)
		close(cs->poll_timer.fd);
	if (cs->by_id)
		table_clear(cs);
	free(cs->by_id);
	free(cs->by_pfx);
	free(cs->aq);
	free(cs->token);
	hasher_free(cs->hash);
	explicit_bzero(cs->password, sizeof(cs->password));
	explicit_bzero(cs->api_key, sizeof(cs->api_key));
	free(cs);
}
