/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Verdicts for Dovecot's auth policy requests (daemon/authpolicy.c serves
 * them over HTTP). Pure: no sockets, no clock (every call takes now_ns, wall
 * time like the detector's), no BPF; the world is reached through vd_hooks.
 *
 * allow (before the password is checked, and again after a good one):
 *   no address -> 0; allow list -> 0; banned (the maps, or the detector
 *   unless [detect] dry_run) or over max_failures / max_users (not in a dry
 *   run) -> reject; the account under distributed
 *   spraying (detector: account_max_sources sources failing it in window)
 *   and the source not known-good for it -> reject; a source with recent
 *   failures -> tarpit of (failures - 1) s, up to tarpit_max (once per
 *   session and pwhash: not again when Dovecot asks after the good
 *   password); then the
 *   allow_check hook may still refuse; else 0. A known-good source of the
 *   account is never tarpitted nor refused for the account rule.
 *   log_only: the answer is 0, res.would holds the enforce answer.
 * report (after the check, "success" and "policy_reject" set):
 *   success -> detector_success() and the source becomes known-good for the
 *   account; a failure the policy caused (policy_reject) is not counted
 *   (the password was never checked); a failure with the same pwhash as an
 *   earlier failure of the same account from the same source within window
 *   is "stale" (a phone with an old password) and not counted again;
 *   any other failure -> detector_fail().
 *
 * Memory is fixed at verdict_new(): known-good accounts and stale-password
 * keys live in bounded tables whose oldest entries make room.
 */
#ifndef IMAPGUARD_VERDICT_H
#define IMAPGUARD_VERDICT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "authlog/authlog.h"
#include "authlog/detector.h"
#include "policy/policy.h"

#define VD_USER_LEN	256	/* login names are cut (on a UTF-8 boundary) */
#define VD_PWHASH_LEN	132	/* hex of up to a SHA-512; longer is refused */
#define VD_BODY_MAX	(64 * 1024)	/* Dovecot's body is well under 1 KiB */

/* One request body, validated. Every field is optional to Dovecot (its
 * auth_policy_request_attributes decide); absent strings are "". */
struct vd_request {
	char login[VD_USER_LEN];	/* valid UTF-8 */
	bool has_addr;
	uint8_t addr[16];		/* "remote" (addr.h layout) */
	char pwhash[VD_PWHASH_LEN];	/* lower-case hex */
	char session[AL_SESSION_LEN];	/* "session_id" */
	char protocol[32];
	bool has_success, success, policy_reject;
	uint16_t local_port;		/* "local_port" (Dovecot's %{lport}), 0: not sent */
};

/* Parse Dovecot's JSON (an object of strings, nested objects for "a/b"
 * attributes, and the booleans success and policy_reject). 0, or -EINVAL
 * with *why a static reason (malformed JSON, wrong type, bad address, ...). */
int verdict_parse(const char *body, size_t len, struct vd_request *rq, const char **why);

enum vd_rule {
	VD_OK = 0,
	VD_ALLOWLIST,		/* allow: the allow list covers the source */
	VD_NO_ADDR,		/* no usable "remote": nothing to judge or count */
	VD_BANNED,		/* allow: a live ban covers the source */
	VD_BRUTE,		/* allow: max_failures reached (dry run, or not yet banned) */
	VD_SPRAY,		/* allow: max_users reached */
	VD_ACCOUNT,		/* allow: account under spraying, source not known-good */
	VD_TARPIT,		/* allow: recent failures from the source */
	VD_HOOK,		/* allow: refused by vd_hooks.allow_check */
	VD_KNOWN_GOOD,		/* allow: known-good source of a protected account */
	VD_FAIL,		/* report: failure counted */
	VD_STALE,		/* report: same wrong password again, not counted */
	VD_REJECTED,		/* report: a failure the policy caused, not counted */
	VD_SUCCESS,		/* report: success */
	VD_RULE_MAX
};
const char *verdict_rule_name(enum vd_rule r);

struct vd_result {
	int status;		/* the answer: < 0 reject, 0 allow, > 0 tarpit seconds */
	int would;		/* the enforce-mode answer (differs in log_only) */
	enum vd_rule rule;
	const char *msg;	/* static text for Dovecot's "msg" ("" none) */
	bool known_good;	/* the source is known-good for the login */
	struct det_query q;	/* the detector's view, for events and logs */
};

/*
 * How verdicts reach the world; ctx is passed back. allowed and banned may
 * be NULL (nothing is). allow_check (NULL: none) is the extension point of
 * the allow verdict: it is called last, for a request about to be answered
 * with status >= 0, and may refuse it by setting res->status < 0, res->rule
 * = VD_HOOK and res->msg (a static string). It runs on the daemon's loop
 * and must not block.
 */
struct vd_hooks {
	bool (*allowed)(void *ctx, const struct ig_prefix *p);
	bool (*banned)(void *ctx, const struct ig_prefix *p);
	void (*allow_check)(void *ctx, const struct vd_request *rq, struct vd_result *res);
	void *ctx;
};

struct verdict;

/* NULL + errno (EINVAL, ENOMEM, ENOSYS without SipHash). pol is copied;
 * accounts: known-good accounts remembered, stale: password keys. */
struct verdict *verdict_new(const struct pol_authpolicy *pol, const struct vd_hooks *hooks,
			    uint32_t accounts, uint32_t stale);
void verdict_free(struct verdict *v);
/* New [authpolicy]: known-good sources are kept (cut to the new bound). */
void verdict_reconfigure(struct verdict *v, const struct pol_authpolicy *pol);

/* det: the detector whose state (and thresholds) the verdict reads and, for
 * report, feeds. Both fill *res; 0 or -EINVAL. */
int verdict_allow(struct verdict *v, struct detector *det, const struct vd_request *rq,
		  uint64_t now_ns, struct vd_result *res);
int verdict_report(struct verdict *v, struct detector *det, const struct vd_request *rq,
		   uint64_t now_ns, struct vd_result *res);

/* Known-good sources: "good USERHEX ADDR LAST_S" state lines. */
int verdict_save(struct verdict *v, FILE *f);
/* One "good ..." line; -EINVAL for a malformed one. */
int verdict_load_line(struct verdict *v, const char *line);
/* `imapguard why --user`: {"user", "failing_sources", "protected",
 * "account_max_sources", "window_s", "known_good": [{"addr", "last_s"}]}. */
json_t *verdict_user_json(struct verdict *v, struct detector *det, const char *user,
			  uint64_t now_ns);

#endif
