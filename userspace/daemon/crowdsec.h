/* SPDX-License-Identifier: GPL-2.0 */
/*
 * CrowdSec: imapguard as a bouncer of a CrowdSec local API (LAPI) and, with
 * push_alerts, as one of its watchers.
 *
 * Decisions are streamed (GET /v1/decisions/stream, startup=true first and
 * after every failure, then increments every update_frequency) through
 * libcurl's multi socket interface inside the daemon's one epoll loop: each
 * socket and both timers (libcurl's own and the poll interval) carry an
 * ep_src of type SRC_CROWDSEC. Nothing here blocks: a dead or slow LAPI
 * costs a timeout and a metric, and what is already banned stays enforced in
 * the maps until each decision expires.
 *
 * LAPI's JSON is untrusted input: the body is capped, every decision is
 * validated (scope Ip or Range, the value parsed strictly, prefixes no wider
 * than IPv4 /8 or IPv6 /32, Go durations capped at 365 days, type ban, never
 * an allow-listed source) and every refusal is counted by reason.
 */
#ifndef IMAPGUARD_CROWDSEC_H
#define IMAPGUARD_CROWDSEC_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "base/addr.h"
#include "policy/policy.h"

/* The longest ban a decision gives (longer ones are cut to it). */
#define CS_DURATION_CAP_NS	POL_DURATION_MAX_NS
/* Widest prefixes a Range decision may ban. */
#define CS_MIN_PLEN4		8
#define CS_MIN_PLEN6		32
/* Ban reasons are "crowdsec/<scenario>", cut to the map's reason size. */
#define CS_REASON_PREFIX	"crowdsec/"
/* Alerts we push carry this scenario prefix; decisions coming back with it
 * are our own and are not banned twice. */
#define CS_OWN_SCENARIO		"imapguard/"

/* Why a decision was not applied (imapguard_crowdsec_refused_total). */
enum cs_refusal {
	CS_REF_MALFORMED,	/* not an object, a field missing or of the wrong type */
	CS_REF_TYPE,		/* type other than "ban" (captcha, throttle, ...) */
	CS_REF_SCOPE,		/* scope other than Ip/Range, or one the policy leaves out */
	CS_REF_VALUE,		/* value is not an address (Ip) or prefix (Range) */
	CS_REF_PREFIX,		/* wider than IPv4 /8 or IPv6 /32 */
	CS_REF_DURATION,	/* not a Go duration, or not positive */
	CS_REF_FILTERED,	/* origin or scenario not in the policy's filters */
	CS_REF_OWN,		/* our own alert's decision coming back */
	CS_REF_ALLOWED,		/* the allow list covers it */
	CS_REF_FULL,		/* decision table full */
	CS_REF_BAN_FAILED,	/* the ban map refused it (full) */
	CS_REF_MAX,
};

/* One validated decision. */
struct cs_decision {
	int64_t id;
	struct ig_prefix pfx;
	uint64_t ttl_ns;		/* > 0, at most CS_DURATION_CAP_NS */
	char reason[IG_REASON_LEN];	/* "crowdsec/<scenario>", printable ASCII */
};

/*
 * Validate one element of a stream's "new" (deleted false) or "deleted"
 * (deleted true: only id, scope and value matter, the duration may be
 * negative) array. 0 and *out filled, or -EINVAL with *why set. Pure: no
 * allow list (the caller asks), no state.
 */
int cs_decision_parse(const json_t *j, const struct pol_crowdsec *conf, bool deleted,
		      struct cs_decision *out, enum cs_refusal *why);
/* A Go time.Duration string ("3h59m58.5s", "-1m2s", "150ms", "0s") into ns,
 * its magnitude saturated at CS_DURATION_CAP_NS. 0 or -EINVAL. */
int cs_parse_go_duration(const char *s, int64_t *ns);
/* The stable name of a refusal (metrics, status). */
const char *cs_refusal_name(enum cs_refusal r);

/*
 * How the module acts on the maps. Its owner (the daemon) fills these; each
 * runs inside the loop iteration that read the answer.
 */
struct cs_hooks {
	void *ctx;
	/* Ban p for ttl_ns with reason, origin crowdsec; a longer ban of another
	 * origin stays as it is. 0 or -errno. */
	int (*ban)(void *ctx, const struct ig_prefix *p, uint64_t ttl_ns, const char *reason);
	/* Lift the ban of exactly p if CrowdSec set it. 0 or -errno. */
	int (*unban)(void *ctx, const struct ig_prefix *p);
	/* The allow list covers p: never ban it. */
	bool (*is_allowed)(void *ctx, const struct ig_prefix *p);
	/* Every live ban of origin crowdsec in the maps (for the resync that
	 * lifts what LAPI no longer holds); *out malloc'd, caller frees. */
	int (*own_bans)(void *ctx, struct ig_prefix **out, size_t *n);
};

struct crowdsec;

/* A client for conf (conf->lapi set), its fds in epfd. The first pull is
 * due at once. hooks is copied. 0, or -errno (-ENOMEM; the API key file's
 * read errors, file.h, logged). */
int crowdsec_open(struct crowdsec **cs, const struct pol_crowdsec *conf,
		  const struct cs_hooks *hooks, int epfd);
/* An fd tagged SRC_CROWDSEC is ready (src: the ep_src's ptr, events: epoll's).
 * The fd knows its client, so an event fetched before a reload replaced the
 * client still reaches the old one (the daemon closes it after the batch). */
void crowdsec_ready(void *src, uint32_t events);
/* imapguard banned p itself (its detector): with push_alerts, queue an alert
 * for LAPI. Bans that came from elsewhere are never passed here. */
void crowdsec_local_ban(struct crowdsec *cs, const struct ig_prefix *p, uint64_t ttl_ns,
			const char *reason);
/* Apply one stream answer as if LAPI had sent it (startup: a full one).
 * For tests and the fuzzer: no network. 0, or -EBADMSG when body is not a
 * stream answer (nothing applied). */
int crowdsec_feed(struct crowdsec *cs, const char *body, size_t len, bool startup);
/* Read the API key file again (a reload that leaves the section as it is):
 * a new key takes effect with the next pull, a full one; an unreadable file
 * is warned about and the key in use stays. */
void crowdsec_reread_key(struct crowdsec *cs);
/* Whether conf differs from the running one (the daemon then reopens). */
bool crowdsec_changed(const struct crowdsec *cs, const struct pol_crowdsec *conf);
/* The status reply's "crowdsec" object; new reference or NULL (no memory). */
json_t *crowdsec_status_json(struct crowdsec *cs);
/* Prometheus lines: up, decisions held, pulls, refusals by reason, alerts. */
void crowdsec_metrics(struct crowdsec *cs, FILE *f);
/* Abort transfers, close fds, free. NULL is fine. Bans stay in the maps. */
void crowdsec_close(struct crowdsec *cs);

#endif
