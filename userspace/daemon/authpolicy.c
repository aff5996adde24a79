// SPDX-License-Identifier: GPL-2.0
/*
 * Dovecot's auth policy server (see authpolicy.h). Dovecot 2.3's client
 * (src/auth/auth-policy.c) POSTs a JSON object to URL?command=allow before
 * the password check (and after a good one) and expects {"status": N,
 * "msg": "..."}; ?command=report after the check, with "success" and
 * "policy_reject" added, and reads nothing but the HTTP status. The API key
 * comes in the header its auth_policy_server_api_header names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "authlog/authwatch.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/prom.h"
#include "daemon/authpolicy.h"
#include "daemon/http.h"

#define KG_ACCOUNTS	16384	/* accounts whose known-good sources are kept (~10 MB) */
#define STALE_KEYS	(1u << 18)	/* wrong-password keys remembered */
#define MAX_REQUEST	(16 * 1024)	/* request line and headers (MHD's memory) */
#define LOG_PER_S	50		/* verdict log lines a second, the rest counted */

enum ap_refusal { AP_REF_UNAUTHORIZED, AP_REF_BAD_REQUEST, AP_REF_COMMAND, AP_REF_MAX };
static const char *const refusal_names[AP_REF_MAX] = { "unauthorized", "bad_request",
							"command" };
enum ap_status { AP_ALLOW, AP_TARPIT, AP_REJECT, AP_STATUS_MAX };
static const char *const status_names[AP_STATUS_MAX] = { "allow", "tarpit", "reject" };

struct authpolicy {
	struct pol_authpolicy pol;
	struct ap_env env;
	int epfd;
	struct http_server *http;
	struct http_route route;
	struct verdict *v;
	unsigned char key_sha[SHA256_DIGEST_LENGTH];
	void (*check)(void *ctx, const struct vd_request *rq, struct vd_result *res);
	void *check_ctx;
	uint64_t verdicts[AP_STATUS_MAX][VD_RULE_MAX];	/* allow answers */
	uint64_t would[AP_STATUS_MAX];			/* log_only: enforce answers */
	uint64_t reports[VD_RULE_MAX];
	uint64_t refused[AP_REF_MAX];
	uint64_t log_window, log_count, log_suppressed;
	bool changed;		/* known-good sources changed since the last save */
};

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int authpolicy_read_key(const char *path, char *key)
{
	struct stat st;
	char *buf;
	size_t len;
	int err = file_read(path, 4096, FILE_NOFOLLOW, &buf, &len);

	if (err) {
		pr_warn("Couldn't read the authpolicy key '%s': %s", path, file_strerror(err));
		return err;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
		       buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	/* It travels in an HTTP header and in dovecot.conf: visible ASCII. */
	for (size_t i = 0; i < len; i++)
		if (buf[i] < 0x21 || buf[i] > 0x7e)
			len = 0;
	if (len < AP_KEY_MIN || len > AP_KEY_MAX) {
		pr_warn("authpolicy key '%s': expected %d to %d visible ASCII characters on one line",
			path, AP_KEY_MIN, AP_KEY_MAX);
		free(buf);
		return -EINVAL;
	}
	memcpy(key, buf, len + 1);
	OPENSSL_cleanse(buf, len);
	free(buf);
	/* Whoever reads the key can ask for verdicts and feed the detector. */
	if (!stat(path, &st) && (st.st_mode & 077))
		pr_warn("authpolicy key '%s' is readable by others than its owner (mode %04o): "
			"chmod 600 it", path, st.st_mode & 07777);
	return 0;
}

void authpolicy_nonce(const char *key, char *out)
{
	static const char label[] = "imapguard auth_policy_hash_nonce";
	unsigned char md[SHA256_DIGEST_LENGTH];
	char buf[sizeof(label) + AP_KEY_MAX];
	size_t n = strlen(key) < AP_KEY_MAX ? strlen(key) : AP_KEY_MAX;

	/* The label with its NUL, a separator, then the key. */
	memcpy(buf, label, sizeof(label));
	memcpy(buf + sizeof(label), key, n);
	SHA256((const unsigned char *)buf, sizeof(label) + n, md);
	OPENSSL_cleanse(buf, sizeof(buf));
	for (int i = 0; i < AP_NONCE_LEN / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Compared as digests: CRYPTO_memcmp over equal lengths, so neither the
 * key's bytes nor its length show in the time a refusal takes. */
static bool key_ok(const struct authpolicy *ap, const char *given)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	if (!given)
		return false;
	SHA256((const unsigned char *)given, strlen(given), md);
	return !CRYPTO_memcmp(md, ap->key_sha, sizeof(md));
}

static int load_key(struct authpolicy *ap, const struct pol_authpolicy *pol)
{
	char key[AP_KEY_MAX + 1];
	int err = authpolicy_read_key(pol->api_key_file, key);

	if (err)
		return err;
	SHA256((const unsigned char *)key, strlen(key), ap->key_sha);
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}

/* ---- answers ------------------------------------------------------------- */

static int reply_json(struct http_reply *rep, unsigned int status, json_t *j)
{
	rep->status = status;
	rep->content_type = "application/json";
	rep->body = json_take_string(j);
	if (!rep->body)
		return -ENOMEM;
	rep->body_len = strlen(rep->body);
	return 0;
}

static int refuse(struct authpolicy *ap, struct http_reply *rep, enum ap_refusal why,
		  unsigned int status, const char *msg)
{
	ap->refused[why]++;
	return reply_json(rep, status, json_pack("{s:s}", "error", msg));
}

static enum ap_status status_of(int status)
{
	return status < 0 ? AP_REJECT : status > 0 ? AP_TARPIT : AP_ALLOW;
}

/* Logged: what refuses or delays (or would), at most LOG_PER_S a second. */
static void log_verdict(struct authpolicy *ap, const char *cmd, const struct vd_request *rq,
			const struct vd_result *res, const char *json)
{
	uint64_t s = wall_ns() / 1000000000ULL;

	if (s != ap->log_window) {
		if (ap->log_suppressed)
			pr_info("authpolicy: %llu more verdicts not logged (rate limit)",
				(unsigned long long)ap->log_suppressed);
		ap->log_window = s;
		ap->log_count = ap->log_suppressed = 0;
	}
	if (ap->log_count++ >= LOG_PER_S) {
		ap->log_suppressed++;
		return;
	}
	(void)rq;
	/* The user name is the peer's: logged only inside the JSON. */
	if (!strcmp(cmd, "allow") && res->would != res->status)
		pr_info("authpolicy log_only: would answer %d (%s): %s", res->would,
			verdict_rule_name(res->rule), json ? json : "");
	else
		pr_info("authpolicy %s: %d (%s): %s", cmd, res->status, verdict_rule_name(res->rule),
			json ? json : "");
}

static void event(struct authpolicy *ap, const char *cmd, const struct vd_request *rq,
		  const struct vd_result *res)
{
	char a[ADDR_STRLEN] = "";
	json_t *o;
	char *json;
	bool notable;

	if (rq->has_addr)
		addr_format_host(rq->addr, a);
	o = json_pack(
		"{s:o, s:s, s:s, s:i, s:i, s:s, s:s, s:o, s:s, s:I, s:I, s:b}",
		"ts", json_fixed(wall_ns() / 1e9, 3), "type", "authpolicy", "command", cmd,
		"status", res->status, "would", res->would, "rule", verdict_rule_name(res->rule),
		"addr", a, "user", json_text(rq->login),
		"mode", ap->pol.mode == AP_MODE_LOG_ONLY ? "log_only" : "enforce",
		"failures", (json_int_t)res->q.failures,
		"account_sources", (json_int_t)res->q.account_sources,
		"known_good", res->known_good);
	if (o && rq->local_port)
		json_object_set_new(o, "local_port", json_integer(rq->local_port));
	json = json_take_string(o);
	if (json)
		ap->env.emit(ap->env.ctx, json);
	notable = res->would || res->status || res->rule == VD_STALE || res->rule == VD_FAIL;
	if (notable)
		log_verdict(ap, cmd, rq, res, json);
	free(json);
}

static int handle(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct authpolicy *ap = ctx;
	const char *cmd = http_query(req, "command"), *why;
	struct detector *det = authwatch_detector(ap->env.aw);
	struct vd_request rq;
	struct vd_result res;
	bool allow;

	if (!key_ok(ap, http_header(req, ap->pol.api_header)))
		return refuse(ap, rep, AP_REF_UNAUTHORIZED, 401, "missing or wrong API key");
	if (!cmd || (strcmp(cmd, "allow") && strcmp(cmd, "report")))
		return refuse(ap, rep, AP_REF_COMMAND, 400, "command must be allow or report");
	allow = cmd[0] == 'a';
	if (verdict_parse(req->body, req->body_len, &rq, &why))
		return refuse(ap, rep, AP_REF_BAD_REQUEST, 400, why);
	if (allow) {
		/* Its log lines are counted by this path's report. */
		authwatch_claim_session(ap->env.aw, rq.session);
		verdict_allow(ap->v, det, &rq, wall_ns(), &res);
		ap->verdicts[status_of(res.status)][res.rule]++;
		ap->would[status_of(res.would)]++;
	} else {
		verdict_report(ap->v, det, &rq, wall_ns(), &res);
		ap->reports[res.rule]++;
		ap->changed |= res.rule == VD_SUCCESS;
	}
	event(ap, cmd, &rq, &res);
	return reply_json(rep, 200, json_pack("{s:i, s:s}", "status", res.status, "msg", res.msg));
}

/* ---- lifecycle ----------------------------------------------------------- */

static bool vd_allowed(void *ctx, const struct ig_prefix *p)
{
	struct authpolicy *ap = ctx;

	return ap->env.allowed && ap->env.allowed(ap->env.ctx, p);
}

static bool vd_banned(void *ctx, const struct ig_prefix *p)
{
	struct authpolicy *ap = ctx;

	return ap->env.banned && ap->env.banned(ap->env.ctx, p);
}

static void vd_check(void *ctx, const struct vd_request *rq, struct vd_result *res)
{
	struct authpolicy *ap = ctx;

	if (ap->check)
		ap->check(ap->check_ctx, rq, res);
}

static int start_http(struct authpolicy *ap)
{
	struct http_conf conf = {
		.name = "authpolicy", .listen = ap->pol.listen,
		.max_conns = ap->pol.max_connections, .max_per_ip = ap->pol.max_per_ip,
		.timeout_s = (unsigned int)(ap->pol.timeout_ns / 1000000000ULL),
		.max_request = MAX_REQUEST, .http11 = true, .routes = &ap->route, .nroutes = 1,
	};
	int err;

	ap->route = (struct http_route){ "/", HTTP_POST, VD_BODY_MAX, handle, ap };
	err = http_open(&ap->http, &conf, ap->epfd);
	if (!err)
		pr_info("auth policy server on http://%s/ (%s)", ap->pol.listen,
			ap->pol.mode == AP_MODE_LOG_ONLY ? "log_only" : "enforce");
	return err;
}

int authpolicy_open(struct authpolicy **out, const struct pol_authpolicy *pol,
		    const struct ap_env *env, int epfd)
{
	struct vd_hooks hooks;
	struct authpolicy *ap;
	int err;

	*out = NULL;
	ap = calloc(1, sizeof(*ap));
	if (!ap)
		return -ENOMEM;
	ap->pol = *pol;
	ap->env = *env;
	ap->epfd = epfd;
	hooks = (struct vd_hooks){ .allowed = vd_allowed, .banned = vd_banned,
				   .allow_check = vd_check, .ctx = ap };
	ap->v = verdict_new(pol, &hooks, KG_ACCOUNTS, STALE_KEYS);
	if (!ap->v) {
		err = -errno;
		goto fail;
	}
	if ((err = load_key(ap, pol)) || (err = start_http(ap)))
		goto fail;
	*out = ap;
	return 0;
fail:
	authpolicy_close(ap);
	return err;
}

int authpolicy_reconfigure(struct authpolicy *ap, const struct pol_authpolicy *pol)
{
	struct authpolicy old = *ap;
	int err = load_key(ap, pol);

	if (err)
		return err;
	ap->pol = *pol;
	verdict_reconfigure(ap->v, pol);
	if (strcmp(old.pol.listen, pol->listen) || old.pol.max_connections != pol->max_connections ||
	    old.pol.max_per_ip != pol->max_per_ip || old.pol.timeout_ns != pol->timeout_ns) {
		struct http_server *prev = ap->http;

		/* The old listener goes first: the address may be the same. */
		http_close(prev);
		ap->http = NULL;
		err = start_http(ap);
		if (err) {
			pr_warn("authpolicy: couldn't serve %s: %s; trying the old address",
				pol->listen, strerror(-err));
			ap->pol = old.pol;
			start_http(ap);
			return err;
		}
	}
	return 0;
}

void authpolicy_close(struct authpolicy *ap)
{
	if (!ap)
		return;
	http_close(ap->http);
	verdict_free(ap->v);
	OPENSSL_cleanse(ap->key_sha, sizeof(ap->key_sha));
	free(ap);
}

void authpolicy_set_check(struct authpolicy *ap,
			  void (*fn)(void *ctx, const struct vd_request *rq, struct vd_result *res),
			  void *ctx)
{
	ap->check = fn;
	ap->check_ctx = ctx;
}

struct http_server *authpolicy_http(struct authpolicy *ap)
{
	return ap ? ap->http : NULL;
}

void authpolicy_metrics(struct authpolicy *ap, FILE *f)
{
	prom_head(f, "imapguard_authpolicy_verdicts_total", "counter",
		  "Answers to Dovecot's allow requests, by status and rule.");
	for (int s = 0; s < AP_STATUS_MAX; s++)
		for (int r = 0; r < VD_RULE_MAX; r++)
			if (ap->verdicts[s][r] || (r == VD_OK && s == AP_ALLOW))
				fprintf(f, "imapguard_authpolicy_verdicts_total{status=\"%s\","
					"rule=\"%s\"} %llu\n", status_names[s], verdict_rule_name(r),
					(unsigned long long)ap->verdicts[s][r]);
	prom_head(f, "imapguard_authpolicy_would_total", "counter",
		  "What enforce mode would have answered (differs from the verdicts in log_only mode).");
	for (int s = 0; s < AP_STATUS_MAX; s++)
		prom_labelled(f, "imapguard_authpolicy_would_total", "status", status_names[s],
			      ap->would[s]);
	prom_head(f, "imapguard_authpolicy_reports_total", "counter",
		  "Dovecot's reports, by what was counted.");
	for (int r = VD_NO_ADDR; r < VD_RULE_MAX; r++)
		if (r == VD_NO_ADDR || r >= VD_FAIL)
			prom_labelled(f, "imapguard_authpolicy_reports_total", "result",
				      verdict_rule_name(r), ap->reports[r]);
	prom_head(f, "imapguard_authpolicy_refused_total", "counter",
		  "Policy requests refused, by reason.");
	for (int i = 0; i < AP_REF_MAX; i++)
		prom_labelled(f, "imapguard_authpolicy_refused_total", "reason", refusal_names[i],
			      ap->refused[i]);
}

bool authpolicy_take_changed(struct authpolicy *ap)
{
	bool c = ap && ap->changed;

	if (ap)
		ap->changed = false;
	return c;
}

int authpolicy_save(struct authpolicy *ap, FILE *f)
{
	return verdict_save(ap->v, f);
}

int authpolicy_load_line(struct authpolicy *ap, const char *line)
{
	return verdict_load_line(ap->v, line);
}

static json_int_t sum(const uint64_t *v, int n)
{
	uint64_t t = 0;

	for (int i = 0; i < n; i++)
		t += v[i];
	return (json_int_t)t;
}

json_t *authpolicy_status_json(struct authpolicy *ap)
{
	struct http_stats st = { 0 };

	if (ap->http)
		http_get_stats(ap->http, &st);
	return json_pack("{s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I},"
			 " s:{s:I, s:I, s:I}}",
			 "listen", ap->pol.listen,
			 "mode", ap->pol.mode == AP_MODE_LOG_ONLY ? "log_only" : "enforce",
			 "connections", (int)st.conns,
			 "answers", "allow", sum(ap->verdicts[AP_ALLOW], VD_RULE_MAX),
			 "tarpit", sum(ap->verdicts[AP_TARPIT], VD_RULE_MAX),
			 "reject", sum(ap->verdicts[AP_REJECT], VD_RULE_MAX),
			 "reports", "fail", (json_int_t)ap->reports[VD_FAIL],
			 "stale", (json_int_t)ap->reports[VD_STALE],
			 "success", (json_int_t)ap->reports[VD_SUCCESS],
			 "refused", "unauthorized", (json_int_t)ap->refused[AP_REF_UNAUTHORIZED],
			 "bad_request", (json_int_t)ap->refused[AP_REF_BAD_REQUEST],
			 "command", (json_int_t)ap->refused[AP_REF_COMMAND]);
}

json_t *authpolicy_user_json(struct authpolicy *ap, const char *user)
{
	return verdict_user_json(ap->v, authwatch_detector(ap->env.aw), user, wall_ns());
}
