// SPDX-License-Identifier: GPL-2.0
/*
 * Auth policy verdicts (see verdict.h). Two bounded tables beside the
 * detector: known-good sources per account, and the keys of wrong passwords
 * already counted (stale passwords). Both are open-addressed with a few
 * probes and evict their oldest entry, so a peer that sends endless new
 * names or hashes costs evictions, never memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "authlog/verdict.h"
#include "base/addr.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/state.h"
#include "base/text.h"

#define KG_MAX		POL_KNOWN_GOOD_MAX
#define PROBES		8
#define ASKED_TTL_NS	(300 * 1000000000ULL)	/* Dovecot's longest auth request */
#define NSEC		1000000000ULL

static const char *const rule_names[VD_RULE_MAX] = {
	[VD_OK] = "ok", [VD_ALLOWLIST] = "allowlist", [VD_NO_ADDR] = "no_address",
	[VD_BANNED] = "banned", [VD_BRUTE] = "brute", [VD_SPRAY] = "spray",
	[VD_ACCOUNT] = "account", [VD_TARPIT] = "tarpit", [VD_HOOK] = "hook",
	[VD_KNOWN_GOOD] = "known_good", [VD_FAIL] = "fail", [VD_STALE] = "stale",
	[VD_REJECTED] = "rejected", [VD_SUCCESS] = "success",
};

const char *verdict_rule_name(enum vd_rule r)
{
	return r < VD_RULE_MAX ? rule_names[r] : "?";
}

struct kg_src {
	uint8_t addr[16];	/* IPv4, or the IPv6 /64 */
	uint64_t last;		/* wall ns of the last success from it */
};

struct kg_acct {
	uint64_t key;		/* SipHash of the folded name; 0 = free */
	uint64_t used;		/* wall ns of the last success */
	uint32_t n;
	char user[VD_USER_LEN];
	struct kg_src src[KG_MAX];
};

struct stale_slot {
	uint64_t key;		/* SipHash of user, source and pwhash; 0 = free */
	uint64_t exp;
};

struct verdict {
	struct pol_authpolicy pol;
	struct vd_hooks h;
	struct hasher *hash;	/* random key: names and hashes are the peer's */
	struct kg_acct *acct;
	uint32_t amask;
	struct stale_slot *stale;
	uint32_t smask;
};

static uint32_t pow2(uint32_t n)
{
	uint32_t p = 64;

	while (p < n && p < (1u << 24))
		p <<= 1;
	return p;
}

struct verdict *verdict_new(const struct pol_authpolicy *pol, const struct vd_hooks *hooks,
			    uint32_t accounts, uint32_t stale)
{
	struct verdict *v;

	if (!pol || !accounts || !stale) {
		errno = EINVAL;
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->pol = *pol;
	if (hooks)
		v->h = *hooks;
	v->amask = pow2(accounts) - 1;
	v->smask = pow2(stale) - 1;
	/* calloc: pages of accounts never used are never touched. */
	v->acct = calloc(v->amask + 1, sizeof(*v->acct));
	v->stale = calloc(v->smask + 1, sizeof(*v->stale));
	v->hash = hasher_new(NULL);
	if (!v->acct || !v->stale || !v->hash) {
		int err = errno ? errno : ENOMEM;

		verdict_free(v);
		errno = err;
		return NULL;
	}
	return v;
}

void verdict_free(struct verdict *v)
{
	if (!v)
		return;
	free(v->acct);
	free(v->stale);
	hasher_free(v->hash);
	free(v);
}

void verdict_reconfigure(struct verdict *v, const struct pol_authpolicy *pol)
{
	uint32_t k = pol->known_good < KG_MAX ? pol->known_good : KG_MAX;

	v->pol = *pol;
	/* Fewer sources per account now: the most recent ones stay (the
	 * list is kept newest first). */
	for (uint32_t i = 0; i <= v->amask; i++)
		if (v->acct[i].n > k)
			v->acct[i].n = k;
}

/* ---- parsing ------------------------------------------------------------- */

static int take_string(json_t *val, char *out, size_t size, const char **why, const char *what)
{
	const char *s = json_string_value(val);
	size_t n = json_string_length(val);

	if (!json_is_string(val)) {
		*why = what;
		return -EINVAL;
	}
	/* jansson checked the UTF-8 and refused NULs: cut on a character. */
	utf8_clean(out, size, s, n);
	return 0;
}

int verdict_parse(const char *body, size_t len, struct vd_request *rq, const char **why)
{
	json_error_t jerr;
	json_t *o, *val;
	const char *k;
	int err = 0;

	memset(rq, 0, sizeof(*rq));
	*why = "malformed JSON";
	if (!body || len > VD_BODY_MAX)
		return -EINVAL;
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return -EINVAL;
	if (!json_is_object(o)) {
		*why = "not a JSON object";
		json_decref(o);
		return -EINVAL;
	}
	json_object_foreach(o, k, val) {
		if (!strcmp(k, "login")) {
			err = take_string(val, rq->login, sizeof(rq->login), why,
					  "login is not a string");
		} else if (!strcmp(k, "remote")) {
			const char *s = json_string_value(val);

			if (!json_is_string(val)) {
				*why = "remote is not a string";
				err = -EINVAL;
			} else if (*s) {
				/* Dovecot's %{rip}: one address, nothing else. */
				if (addr_parse_host(s, json_string_length(val), rq->addr)) {
					*why = "remote is not an IP address";
					err = -EINVAL;
				}
				rq->has_addr = !err;
			}
		} else if (!strcmp(k, "pwhash")) {
			const char *s = json_string_value(val);
			size_t n = json_string_length(val);

			if (!json_is_string(val) || n >= sizeof(rq->pwhash) ||
			    s[strspn(s, "0123456789abcdefABCDEF")]) {
				*why = "pwhash is not a hex string";
				err = -EINVAL;
			} else {
				for (size_t i = 0; i <= n; i++)
					rq->pwhash[i] = s[i] >= 'A' && s[i] <= 'F' ? s[i] + 32 : s[i];
			}
		} else if (!strcmp(k, "session_id")) {
			err = take_string(val, rq->session, sizeof(rq->session), why,
					  "session_id is not a string");
		} else if (!strcmp(k, "local_port")) {
			/* Digits, as Dovecot sends every attribute; "" if none. */
			const char *s = json_string_value(val);
			size_t n = json_string_length(val);
			unsigned long port = n && n <= 5 ? strtoul(s, NULL, 10) : 0;

			if (!json_is_string(val) || n > 5 || s[strspn(s, "0123456789")] ||
			    (n && !port) || port > 65535) {
				*why = "local_port is not a port number";
				err = -EINVAL;
			} else {
				rq->local_port = (uint16_t)port;
			}
		} else if (!strcmp(k, "protocol")) {
			err = take_string(val, rq->protocol, sizeof(rq->protocol), why,
					  "protocol is not a string");
		} else if (!strcmp(k, "success") || !strcmp(k, "policy_reject")) {
			if (!json_is_boolean(val)) {
				*why = "success and policy_reject must be true or false";
				err = -EINVAL;
			} else if (k[0] == 's') {
				rq->has_success = true;
				rq->success = json_is_true(val);
			} else {
				rq->policy_reject = json_is_true(val);
			}
		}
		/* Other attributes (an admin may add any) are not ours. */
		if (err)
			break;
	}
	json_decref(o);
	if (!err)
		*why = NULL;
	return err;
}

/* ---- known-good sources --------------------------------------------------- */

/* Names fold ASCII case, as the detector's do (Dovecot's usual %Lu). */
static uint64_t user_key(struct verdict *v, const char *user)
{
	char buf[VD_USER_LEN];
	size_t n = 0;
	uint64_t h;

	for (; n < sizeof(buf) && user[n]; n++)
		buf[n] = user[n] >= 'A' && user[n] <= 'Z' ? user[n] + 32 : user[n];
	h = hasher_sum(v->hash, buf, n);
	return h ? h : 1;
}

/* The unit a source is known by: an IPv4 address, an IPv6 /64 (a phone's
 * address changes inside its /64). */
static void src_unit(const uint8_t addr[16], uint8_t out[16])
{
	memcpy(out, addr, 16);
	if (!addr_is_v4(addr))
		addr_mask(out, 64);
}

/* The account's slot; with create, a new one in place of the oldest. */
static struct kg_acct *acct_get(struct verdict *v, const char *user, bool create)
{
	uint64_t key = user_key(v, user);
	uint32_t victim = key & v->amask;

	for (uint32_t i = 0; i < PROBES; i++) {
		struct kg_acct *a = &v->acct[(key + i) & v->amask];

		if (a->key == key)
			return a;
		if (a->used < v->acct[victim].used)
			victim = (key + i) & v->amask;
	}
	if (!create)
		return NULL;
	memset(&v->acct[victim], 0, offsetof(struct kg_acct, src));
	v->acct[victim].key = key;
	utf8_clean(v->acct[victim].user, sizeof(v->acct[victim].user), user, strlen(user));
	return &v->acct[victim];
}

static bool kg_has(struct verdict *v, const char *user, const uint8_t addr[16])
{
	struct kg_acct *a = *user ? acct_get(v, user, false) : NULL;
	uint8_t u[16];

	if (!a)
		return false;
	src_unit(addr, u);
	for (uint32_t i = 0; i < a->n; i++)
		if (!memcmp(a->src[i].addr, u, 16))
			return true;
	return false;
}

/* Newest first: a full list drops its least recently good source. */
static void kg_add(struct verdict *v, const char *user, const uint8_t addr[16], uint64_t when)
{
	uint32_t k = v->pol.known_good, i;
	struct kg_acct *a;
	struct kg_src s;

	if (k > KG_MAX)
		k = KG_MAX;
	if (!*user || k == 0)
		return;
	a = acct_get(v, user, true);
	src_unit(addr, s.addr);
	s.last = when;
	for (i = 0; i < a->n && memcmp(a->src[i].addr, s.addr, 16); i++)
		;
	if (i == a->n)
		i = a->n < k ? a->n++ : k - 1;
	memmove(&a->src[1], &a->src[0], i * sizeof(s));
	a->src[0] = s;
	if (when > a->used)
		a->used = when;
}

/* ---- stale passwords ------------------------------------------------------ */

/* true when the key of buf was recorded within its lifetime; records it
 * (until now + ttl) either way. */
static bool key_seen(struct verdict *v, const void *buf, size_t n, uint64_t now, uint64_t ttl)
{
	uint64_t key = hasher_sum(v->hash, buf, n);
	uint32_t victim;

	key = key ? key : 1;
	victim = key & v->smask;
	for (uint32_t i = 0; i < PROBES; i++) {
		struct stale_slot *s = &v->stale[(key + i) & v->smask];

		if (s->key == key) {
			bool live = s->exp > now;

			s->exp = now + ttl;
			return live;
		}
		if (s->exp < v->stale[victim].exp)
			victim = (key + i) & v->smask;
	}
	v->stale[victim] = (struct stale_slot){ key, now + ttl };
	return false;
}

/* true when this account, source and password hash failed within window
 * already; records it (until now + window) either way. */
static bool stale_seen(struct verdict *v, const struct vd_request *rq, uint64_t now,
		       uint64_t window)
{
	uint8_t buf[1 + VD_USER_LEN + 16 + VD_PWHASH_LEN + 2];
	size_t n = 0, l;

	buf[n++] = 'S';		/* apart from key_seen()'s other users */
	for (l = 0; rq->login[l]; l++)
		buf[n++] = rq->login[l] >= 'A' && rq->login[l] <= 'Z' ? rq->login[l] + 32 :
			   rq->login[l];
	buf[n++] = 0;
	src_unit(rq->addr, buf + n);
	n += 16;
	l = strlen(rq->pwhash);
	memcpy(buf + n, rq->pwhash, l);
	n += l;
	return key_seen(v, buf, n, now, window);
}

/* Dovecot asks again after a good password (auth_policy_check_after_auth)
 * with the same session and pwhash: that second question, like a retry of
 * the same password on one connection, is not tarpitted again. */
static bool asked_before(struct verdict *v, const struct vd_request *rq, uint64_t now)
{
	uint8_t buf[1 + AL_SESSION_LEN + VD_PWHASH_LEN + 2];
	size_t n = 0, l = strlen(rq->session);

	if (!l || !rq->pwhash[0])	/* without pwhash, retries look alike */
		return false;
	buf[n++] = 'A';
	memcpy(buf + n, rq->session, l + 1);
	n += l + 1;
	l = strlen(rq->pwhash);
	memcpy(buf + n, rq->pwhash, l);
	return key_seen(v, buf, n + l, now, ASKED_TTL_NS);
}

/* ---- verdicts ------------------------------------------------------------- */

static void prefix_of(const uint8_t addr[16], uint8_t plen, struct ig_prefix *p)
{
	memcpy(p->addr, addr, 16);
	p->plen = plen;
	if (plen < 128)
		addr_mask(p->addr, plen);
}

/* A live ban in the maps on the address, or on its IPv6 /64. */
static bool map_banned(struct verdict *v, const uint8_t addr[16])
{
	struct ig_prefix p;

	if (!v->h.banned)
		return false;
	prefix_of(addr, 128, &p);
	if (v->h.banned(v->h.ctx, &p))
		return true;
	if (addr_is_v4(addr))
		return false;
	prefix_of(addr, 64, &p);
	return v->h.banned(v->h.ctx, &p);
}

static void set(struct vd_result *res, int status, enum vd_rule rule, const char *msg)
{
	res->status = status;
	res->rule = rule;
	res->msg = msg;
}

int verdict_allow(struct verdict *v, struct detector *det, const struct vd_request *rq,
		  uint64_t now, struct vd_result *res)
{
	const struct pol_detect *dp;
	struct ig_prefix p;
	uint64_t tarpit_max;

	if (!v || !det || !rq || !res)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	res->msg = "";
	dp = detector_policy(det);
	if (!rq->has_addr) {
		res->rule = VD_NO_ADDR;
		return 0;
	}
	prefix_of(rq->addr, 128, &p);
	if (v->h.allowed && v->h.allowed(v->h.ctx, &p)) {
		res->rule = VD_ALLOWLIST;
		return 0;
	}
	detector_query(det, rq->addr, rq->login, now, &res->q);
	res->known_good = kg_has(v, rq->login, rq->addr);
	tarpit_max = v->pol.tarpit_max_ns / NSEC;
	/* A dry run bans nothing: nor does it refuse from the detector's
	 * bans and thresholds (bans in the maps are real either way). */
	if ((res->q.banned && !dp->dry_run) || map_banned(v, rq->addr))
		set(res, -1, VD_BANNED, "Source banned");
	else if (res->q.failures >= dp->max_failures && !dp->dry_run)
		set(res, -1, VD_BRUTE, "Too many failed logins");
	else if (dp->max_users && res->q.users >= dp->max_users && !dp->dry_run)
		set(res, -1, VD_SPRAY, "Too many failed logins");
	else if (res->q.account_attacked && !res->known_good)
		set(res, -1, VD_ACCOUNT, "Account protected");
	else if (res->q.account_attacked)
		res->rule = VD_KNOWN_GOOD;
	else if (!res->known_good && res->q.failures >= 2 && tarpit_max &&
		 !asked_before(v, rq, now))
		set(res, res->q.failures - 1 < tarpit_max ? (int)res->q.failures - 1 :
			 (int)tarpit_max, VD_TARPIT, "");
	if (res->status >= 0 && v->h.allow_check)
		v->h.allow_check(v->h.ctx, rq, res);
	res->would = res->status;
	if (v->pol.mode == AP_MODE_LOG_ONLY)
		res->status = 0;
	return 0;
}

int verdict_report(struct verdict *v, struct detector *det, const struct vd_request *rq,
		   uint64_t now, struct vd_result *res)
{
	const struct pol_detect *dp;

	if (!v || !det || !rq || !res)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	res->msg = "";
	dp = detector_policy(det);
	if (!rq->has_addr) {
		res->rule = VD_NO_ADDR;
		return 0;
	}
	if (rq->success && !rq->policy_reject) {
		res->rule = VD_SUCCESS;
		detector_success(det, rq->addr, now);
		kg_add(v, rq->login, rq->addr, now);
	} else if (rq->policy_reject) {
		res->rule = VD_REJECTED;
	} else if (rq->pwhash[0] && stale_seen(v, rq, now, dp->window_ns)) {
		res->rule = VD_STALE;
	} else {
		res->rule = VD_FAIL;
		detector_fail(det, rq->addr, rq->login, 1, now);
	}
	detector_query(det, rq->addr, rq->login, now, &res->q);
	return 0;
}

/* ---- state and explanations ----------------------------------------------- */

int verdict_save(struct verdict *v, FILE *f)
{
	char a[ADDR_STRLEN], hex[2 * VD_USER_LEN + 1];
	struct ig_prefix p;

	for (uint32_t i = 0; i <= v->amask; i++) {
		const struct kg_acct *ac = &v->acct[i];
		size_t n;

		if (!ac->key || !ac->n)
			continue;
		/* Hex: a name may hold blanks, and the file is line records. */
		for (n = 0; ac->user[n]; n++)
			snprintf(hex + 2 * n, 3, "%02x", (unsigned char)ac->user[n]);
		hex[2 * n] = '\0';
		for (uint32_t j = ac->n; j-- > 0;) {
			int err;

			prefix_of(ac->src[j].addr, addr_is_v4(ac->src[j].addr) ? 128 : 64, &p);
			err = state_put(f, "good %s %s %llu", hex, addr_format(&p, a),
					(unsigned long long)(ac->src[j].last / NSEC));
			if (err)
				return err;
		}
	}
	return 0;
}

int verdict_load_line(struct verdict *v, const char *line)
{
	char hex[2 * VD_USER_LEN + 1], a[ADDR_STRLEN + 8], user[VD_USER_LEN];
	unsigned long long last;
	struct ig_prefix p;
	size_t n;

	if (sscanf(line, "good %512s %70s %llu", hex, a, &last) != 3 ||
	    addr_parse(a, &p, false) || (n = strlen(hex)) % 2 || n / 2 >= sizeof(user) ||
	    hex[strspn(hex, "0123456789abcdef")] || last > UINT64_MAX / NSEC)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int b;

		sscanf(hex + 2 * i, "%2x", &b);
		user[i] = (char)b;
	}
	user[n / 2] = '\0';
	if (!user[0] || strlen(user) != n / 2 || !utf8_valid(user, n / 2))
		return -EINVAL;
	kg_add(v, user, p.addr, last * NSEC);
	return 0;
}

json_t *verdict_user_json(struct verdict *v, struct detector *det, const char *user,
			  uint64_t now)
{
	const struct pol_detect *dp = detector_policy(det);
	struct kg_acct *a = acct_get(v, user, false);
	uint8_t none[16] = { [10] = 0xff, [11] = 0xff };
	json_t *kg = json_array();
	struct det_query q;

	detector_query(det, none, user, now, &q);
	for (uint32_t i = 0; kg && a && i < a->n; i++) {
		char s[ADDR_STRLEN];
		struct ig_prefix p;

		prefix_of(a->src[i].addr, addr_is_v4(a->src[i].addr) ? 128 : 64, &p);
		if (json_array_append_new(kg, json_pack("{s:s, s:I}", "addr", addr_format(&p, s),
				"last_s", (json_int_t)(a->src[i].last / NSEC)))) {
			json_decref(kg);
			kg = NULL;
		}
	}
	return json_pack("{s:o, s:I, s:b, s:I, s:I, s:o*}", "user", json_text(user),
			 "failing_sources", (json_int_t)q.account_sources,
			 "protected", q.account_attacked,
			 "account_max_sources", (json_int_t)dp->account_max_sources,
			 "window_s", (json_int_t)(dp->window_ns / NSEC), "known_good", kg);
}
