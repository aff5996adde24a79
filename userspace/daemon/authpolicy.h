/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dovecot's auth policy server, in the daemon: POST /?command=allow|report on
 * its own HTTP server (daemon/http.h: HTTP/1.1 keep-alive, its own connection
 * and per-address caps, a deadline per request, a body cap). A request
 * without the API key gets 401, a malformed one 400, another command 400;
 * all are counted and change nothing. The verdicts are authlog/verdict.h's,
 * over the auth-log detector's state, so both feeds share one set of
 * thresholds, bans and ban history.
 *
 * One count per attempt with both feeds on: an allow request claims its
 * Dovecot session (authwatch_claim_session), and the log lines of a claimed
 * session are not counted; a session Dovecot could not ask about (the daemon
 * was down, or the policy is not configured there) is counted from the log.
 *
 * Loop contract: as http.h's (its fds are SRC_HTTP sources in epfd).
 */
#ifndef IMAPGUARD_AUTHPOLICY_H
#define IMAPGUARD_AUTHPOLICY_H
#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include "authlog/verdict.h"
#include "base/addr.h"
#include "policy/policy.h"

#define AP_KEY_MIN	16
#define AP_KEY_MAX	256
#define AP_NONCE_LEN	32	/* hex characters */

struct authwatch;
struct http_server;

/* What the daemon lends the policy server; ctx is passed back. */
struct ap_env {
	struct authwatch *aw;		/* the detector, the session claims */
	void (*emit)(void *ctx, const char *json);	/* an `imapguard events` line */
	bool (*allowed)(void *ctx, const struct ig_prefix *p);	/* allow list */
	bool (*banned)(void *ctx, const struct ig_prefix *p);	/* live ban in the maps */
	void *ctx;
};

struct authpolicy;

/* Read the key, start the verdicts and the HTTP server on pol->listen.
 * 0, or -errno (logged): the key file's (file_read), -EINVAL for a key that
 * is not AP_KEY_MIN..AP_KEY_MAX visible ASCII characters, http_open()'s. */
int authpolicy_open(struct authpolicy **out, const struct pol_authpolicy *pol,
		    const struct ap_env *env, int epfd);
/* New policy (SIGHUP): the key is re-read, the server restarted when its
 * address or caps changed. On error the old settings stay (0 or -errno). */
int authpolicy_reconfigure(struct authpolicy *ap, const struct pol_authpolicy *pol);
void authpolicy_close(struct authpolicy *ap);

/*
 * The allow verdict's extension point (e.g. MFA grants, issue #17): fn runs
 * last for an allow request about to be answered with status >= 0, and may
 * refuse it (see vd_hooks.allow_check in authlog/verdict.h). NULL removes it.
 */
void authpolicy_set_check(struct authpolicy *ap,
			  void (*fn)(void *ctx, const struct vd_request *rq, struct vd_result *res),
			  void *ctx);

struct http_server *authpolicy_http(struct authpolicy *ap);
void authpolicy_metrics(struct authpolicy *ap, FILE *f);
int authpolicy_save(struct authpolicy *ap, FILE *f);
/* Known-good sources changed since the last call (the state file is due). */
bool authpolicy_take_changed(struct authpolicy *ap);
int authpolicy_load_line(struct authpolicy *ap, const char *line);
/* The status reply's "authpolicy" object: listen, mode, connections,
 * answers by status, reports counted, refusals. */
json_t *authpolicy_status_json(struct authpolicy *ap);
/* The why --user reply's "account" object (verdict_user_json). */
json_t *authpolicy_user_json(struct authpolicy *ap, const char *user);

/* Shared with `imapguard authpolicy dovecot-config`. */
/* The key in path (trailing newline and blanks dropped) into key[AP_KEY_MAX
 * + 1]. 0, -errno of file_read, or -EINVAL (logged). */
int authpolicy_read_key(const char *path, char *key);
/* Dovecot's auth_policy_hash_nonce, derived from the key, so every server of
 * a fleet sharing the key hashes a password the same way and a new key
 * starts new hashes. out: AP_NONCE_LEN hex characters and a NUL. */
void authpolicy_nonce(const char *key, char *out);

#endif
