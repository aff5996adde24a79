// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the auth policy verdicts (authlog/verdict.c): request
 * parsing, each allow rule, stale passwords, known-good sources and their
 * state lines, log_only and the allow_check hook. Fake clock, no sockets. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "authlog/verdict.h"
#include "base/addr.h"
#include "policy/policy.h"

TEST_DEFINE_GLOBALS;

#define S 1000000000ULL
#define T0 (1700000000ULL * S)

struct world {
	struct policy pol;
	struct detector *det;
	struct verdict *v;
	struct ig_prefix banned;	/* the "map" ban, plen 0 = none */
	int bans;			/* detector ban events */
	bool hook_refuses;
};

static void on_event(const struct det_event *ev, void *ctx)
{
	struct world *w = ctx;

	if (ev->kind == DET_EV_BAN && !ev->extend)
		w->bans++;
}

static bool is_banned(void *ctx, const struct ig_prefix *p)
{
	struct world *w = ctx;

	return w->banned.plen && !memcmp(w->banned.addr, p->addr, 16) && w->banned.plen == p->plen;
}

static bool is_allowed(void *ctx, const struct ig_prefix *p)
{
	(void)ctx;
	return p->addr[12] == 10;	/* 10.0.0.0/8 */
}

static void check_hook(void *ctx, const struct vd_request *rq, struct vd_result *res)
{
	struct world *w = ctx;

	(void)rq;
	if (w->hook_refuses) {
		res->status = -1;
		res->rule = VD_HOOK;
		res->msg = "No grant";
	}
}

static void setup(struct world *w, int mode)
{
	struct det_hooks dh = { .event = on_event, .ctx = w };
	struct vd_hooks vh = { .allowed = is_allowed, .banned = is_banned,
			       .allow_check = check_hook, .ctx = w };

	memset(w, 0, sizeof(*w));
	policy_init(&w->pol);
	w->pol.detect.account_max_sources = 5;
	w->pol.authpolicy.mode = mode;
	w->det = detector_new(&w->pol.detect, &dh, 1024);
	w->v = verdict_new(&w->pol.authpolicy, &vh, 256, 1024);
}

static void teardown(struct world *w)
{
	verdict_free(w->v);
	detector_free(w->det);
}

static void req(struct vd_request *rq, const char *user, const char *addr, const char *pw)
{
	struct ig_prefix p;

	memset(rq, 0, sizeof(*rq));
	snprintf(rq->login, sizeof(rq->login), "%s", user);
	addr_parse(addr, &p, false);
	memcpy(rq->addr, p.addr, 16);
	rq->has_addr = true;
	snprintf(rq->pwhash, sizeof(rq->pwhash), "%s", pw);
}

static void fail(struct world *w, const char *user, const char *addr, const char *pw,
		 uint64_t t, struct vd_result *res)
{
	struct vd_request rq;

	req(&rq, user, addr, pw);
	rq.has_success = true;
	verdict_report(w->v, w->det, &rq, t, res);
}

static int allow(struct world *w, const char *user, const char *addr, uint64_t t,
		 struct vd_result *res)
{
	struct vd_request rq;

	req(&rq, user, addr, "");
	verdict_allow(w->v, w->det, &rq, t, res);
	return res->status;
}

static void parse(void)
{
	static const struct { const char *body; int err; } cases[] = {
		{ "{\"login\":\"bob\",\"remote\":\"198.18.0.9\",\"pwhash\":\"a1B2\","
		  "\"protocol\":\"imap\",\"session_id\":\"abc\",\"device_id\":\"\"}", 0 },
		{ "{\"login\":\"bob\",\"remote\":\"2001:db8::1\",\"success\":true,"
		  "\"policy_reject\":false,\"tls\":{\"cipher\":\"x\"}}", 0 },
		{ "{\"remote\":\"\"}", 0 },
		{ "", -1 }, { "[]", -1 }, { "{", -1 }, { "{\"login\":1}", -1 },
		{ "{\"remote\":\"1.2.3.4/24\"}", -1 }, { "{\"remote\":\"rip=1.2.3.4\"}", -1 },
		{ "{\"pwhash\":\"zz\"}", -1 }, { "{\"success\":\"true\"}", -1 },
		{ "{\"login\":\"a\",\"login\":\"b\"}", -1 },
		{ "{\"login\":\"a\\u0000b\"}", -1 }, { "{\"login\":\"\xff\"}", -1 },
		{ "{\"local_port\":\"993\"}", 0 }, { "{\"local_port\":\"\"}", 0 },
		{ "{\"local_port\":\"0\"}", -1 }, { "{\"local_port\":\"65536\"}", -1 },
		{ "{\"local_port\":\"99a\"}", -1 }, { "{\"local_port\":\"-1\"}", -1 },
		{ "{\"local_port\":\"000993\"}", -1 }, { "{\"local_port\":993}", -1 },
	};
	struct vd_request rq;
	const char *why;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = verdict_parse(cases[i].body, strlen(cases[i].body), &rq, &why);

		if (!ASSERT_EQ(err ? -1 : 0, cases[i].err, cases[i].body))
			continue;
		ASSERT_TRUE(err ? why != NULL : why == NULL, "why set on error only");
	}
	verdict_parse(cases[0].body, strlen(cases[0].body), &rq, &why);
	ASSERT_STREQ(rq.login, "bob", "login");
	ASSERT_STREQ(rq.pwhash, "a1b2", "pwhash folded");
	ASSERT_STREQ(rq.session, "abc", "session");
	ASSERT_TRUE(rq.has_addr && rq.addr[15] == 9 && !rq.has_success, "remote");
	verdict_parse(cases[1].body, strlen(cases[1].body), &rq, &why);
	ASSERT_TRUE(rq.has_success && rq.success && !rq.policy_reject, "success");
	verdict_parse(cases[2].body, strlen(cases[2].body), &rq, &why);
	ASSERT_TRUE(!rq.has_addr, "empty remote");
	ASSERT_EQ(rq.local_port, 0, "no local_port");
	verdict_parse(cases[14].body, strlen(cases[14].body), &rq, &why);
	ASSERT_EQ(rq.local_port, 993, "local_port");
}

static void brute_and_tarpit(void)
{
	struct world w;
	struct vd_result r;
	char pw[8];

	setup(&w, AP_MODE_ENFORCE);
	ASSERT_EQ(allow(&w, "bob", "198.18.5.5", T0, &r), 0, "fresh source allowed");
	ASSERT_EQ(r.rule, VD_OK, "rule ok");
	for (int i = 1; i <= 4; i++) {
		snprintf(pw, sizeof(pw), "%02x", i);
		fail(&w, "bob", "198.18.5.5", pw, T0 + i * S, &r);
		ASSERT_EQ(r.rule, VD_FAIL, "counted");
		allow(&w, "bob", "198.18.5.5", T0 + i * S, &r);
		ASSERT_EQ(r.status, i - 1, "tarpit grows with failures");
		ASSERT_EQ(r.rule, i >= 2 ? VD_TARPIT : VD_OK, "tarpit rule");
	}
	fail(&w, "bob", "198.18.5.5", "05", T0 + 5 * S, &r);
	ASSERT_EQ(w.bans, 1, "banned at max_failures");
	ASSERT_EQ(allow(&w, "bob", "198.18.5.5", T0 + 6 * S, &r), -1, "banned source rejected");
	ASSERT_EQ(r.rule, VD_BANNED, "rule banned");
	/* A ban in the maps alone (e.g. `imapguard ban add`) rejects too. */
	addr_parse("198.18.6.6", &w.banned, false);
	ASSERT_EQ(allow(&w, "bob", "198.18.6.6", T0, &r), -1, "map ban rejected");
	/* The allow list wins. */
	ASSERT_EQ(allow(&w, "bob", "10.1.1.1", T0, &r), 0, "allow list");
	ASSERT_EQ(r.rule, VD_ALLOWLIST, "rule allowlist");
	teardown(&w);

	/* tarpit_max caps the delay. */
	setup(&w, AP_MODE_ENFORCE);
	w.pol.authpolicy.tarpit_max_ns = 2 * S;
	verdict_reconfigure(w.v, &w.pol.authpolicy);
	for (int i = 1; i <= 4; i++) {
		snprintf(pw, sizeof(pw), "%02x", i);
		fail(&w, "bob", "198.18.5.5", pw, T0, &r);
	}
	ASSERT_EQ(allow(&w, "bob", "198.18.5.5", T0, &r), 2, "capped at tarpit_max");
	teardown(&w);

	/* Dovecot's second question after the good password (same session
	 * and pwhash) is not tarpitted again; a new password is. */
	setup(&w, AP_MODE_ENFORCE);
	fail(&w, "bob", "198.18.5.7", "01", T0, &r);
	fail(&w, "bob", "198.18.5.7", "02", T0, &r);
	{
		struct vd_request rq;

		req(&rq, "bob", "198.18.5.7", "03");
		snprintf(rq.session, sizeof(rq.session), "sess1");
		verdict_allow(w.v, w.det, &rq, T0 + S, &r);
		ASSERT_EQ(r.status, 1, "first question tarpitted");
		verdict_allow(w.v, w.det, &rq, T0 + 2 * S, &r);
		ASSERT_EQ(r.status, 0, "second question, same password: not again");
		snprintf(rq.pwhash, sizeof(rq.pwhash), "04");
		verdict_allow(w.v, w.det, &rq, T0 + 2 * S, &r);
		ASSERT_EQ(r.status, 1, "another password on the session: tarpitted");
		rq.pwhash[0] = '\0';
		verdict_allow(w.v, w.det, &rq, T0 + 2 * S, &r);
		verdict_allow(w.v, w.det, &rq, T0 + 2 * S, &r);
		ASSERT_EQ(r.status, 1, "no pwhash: every question tarpitted");
	}
	teardown(&w);

	/* A dry run refuses nothing from the detector's bans. */
	setup(&w, AP_MODE_ENFORCE);
	detector_free(w.det);
	w.pol.detect.dry_run = true;
	w.det = detector_new(&w.pol.detect, NULL, 1024);
	for (int i = 1; i <= 6; i++) {
		snprintf(pw, sizeof(pw), "%02x", i);
		fail(&w, "bob", "198.18.5.8", pw, T0, &r);
	}
	ASSERT_TRUE(allow(&w, "bob", "198.18.5.8", T0, &r) >= 0, "dry run: not refused");
	teardown(&w);
}

static void stale_password(void)
{
	struct world w;
	struct vd_result r;
	char pw[8];

	setup(&w, AP_MODE_ENFORCE);
	for (int i = 0; i < 50; i++) {
		fail(&w, "Carol", "198.18.7.7", "deadbeef", T0 + i * S, &r);
		ASSERT_EQ(r.rule, i ? VD_STALE : VD_FAIL, "same hash counts once");
	}
	ASSERT_EQ(w.bans, 0, "50 stale retries: no ban");
	ASSERT_EQ(allow(&w, "carol", "198.18.7.7", T0 + 50 * S, &r), 0, "not even tarpitted");
	/* The same hash for another account, or from another source, counts. */
	fail(&w, "dave", "198.18.7.7", "deadbeef", T0 + 51 * S, &r);
	ASSERT_EQ(r.rule, VD_FAIL, "other account counts");
	teardown(&w);

	setup(&w, AP_MODE_ENFORCE);
	for (int i = 0; i < 6; i++) {
		snprintf(pw, sizeof(pw), "%02x", i);
		fail(&w, "carol", "198.18.7.8", pw, T0 + i * S, &r);
	}
	ASSERT_EQ(w.bans, 1, "distinct passwords: banned");
	teardown(&w);

	/* Without pwhash (no auth_policy_hash_nonce) every failure counts. */
	setup(&w, AP_MODE_ENFORCE);
	for (int i = 0; i < 5; i++)
		fail(&w, "carol", "198.18.7.9", "", T0 + i * S, &r);
	ASSERT_EQ(w.bans, 1, "no pwhash: each counts");
	teardown(&w);
}

static void account_protection(void)
{
	struct world w;
	struct vd_request rq;
	struct vd_result r;
	char a[32];

	setup(&w, AP_MODE_ENFORCE);
	/* The account's own good source. */
	req(&rq, "erin", "198.18.1.10", "");
	rq.has_success = rq.success = true;
	verdict_report(w.v, w.det, &rq, T0, &r);
	ASSERT_EQ(r.rule, VD_SUCCESS, "success");
	for (int i = 1; i <= 5; i++) {
		snprintf(a, sizeof(a), "198.19.3.%d", i);
		fail(&w, "erin", a, "01", T0 + i * S, &r);
	}
	ASSERT_EQ(w.bans, 0, "no source banned");
	ASSERT_EQ(allow(&w, "erin", "198.19.3.99", T0 + 6 * S, &r), -1, "unknown source refused");
	ASSERT_EQ(r.rule, VD_ACCOUNT, "rule account");
	ASSERT_EQ(allow(&w, "ERIN", "198.18.1.10", T0 + 6 * S, &r), 0, "known-good source allowed");
	ASSERT_EQ(r.rule, VD_KNOWN_GOOD, "rule known_good");
	ASSERT_EQ(allow(&w, "alice", "198.19.3.99", T0 + 6 * S, &r), 0, "other account unaffected");
	/* The window passes: the account is open again. */
	ASSERT_EQ(allow(&w, "erin", "198.19.3.99", T0 + 700 * S, &r), 0, "after the window");
	teardown(&w);
}

static void known_good_state(void)
{
	struct world w, w2;
	struct vd_request rq;
	struct vd_result r;
	char *buf = NULL, *line, *save;
	size_t len = 0;
	FILE *f;
	char a[32];

	setup(&w, AP_MODE_ENFORCE);
	for (int i = 1; i <= 12; i++) {
		snprintf(a, sizeof(a), "198.18.9.%d", i);
		req(&rq, "frank smith", a, "");
		rq.has_success = rq.success = true;
		verdict_report(w.v, w.det, &rq, T0 + i * S, &r);
	}
	req(&rq, "frank smith", "2001:db8:5:6::1", "");
	rq.has_success = rq.success = true;
	verdict_report(w.v, w.det, &rq, T0 + 20 * S, &r);
	f = open_memstream(&buf, &len);
	ASSERT_OK(verdict_save(w.v, f), "save");
	fclose(f);
	setup(&w2, AP_MODE_ENFORCE);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		ASSERT_OK(verdict_load_line(w2.v, line), line);
	free(buf);
	json_t *j = verdict_user_json(w2.v, w2.det, "Frank Smith", T0 + 30 * S);
	ASSERT_EQ(json_array_size(json_object_get(j, "known_good")), 8, "bounded at known_good");
	ASSERT_STREQ(json_string_value(json_object_get(json_array_get(
		json_object_get(j, "known_good"), 0), "addr")), "2001:db8:5:6::/64", "newest first, /64");
	json_decref(j);
	/* An old address fell off; a recent one survived the reload. */
	ASSERT_TRUE(!verdict_load_line(w2.v, "good 00 1.2.3.4 5") == false, "NUL name refused");
	ASSERT_TRUE(verdict_load_line(w2.v, "good zz 1.2.3.4 5") < 0, "bad hex refused");
	ASSERT_TRUE(verdict_load_line(w2.v, "good 61 1.2.3 5") < 0, "bad addr refused");
	teardown(&w);
	teardown(&w2);
}

static void log_only_and_hook(void)
{
	struct world w;
	struct vd_result r;

	setup(&w, AP_MODE_LOG_ONLY);
	addr_parse("198.18.6.6", &w.banned, false);
	ASSERT_EQ(allow(&w, "bob", "198.18.6.6", T0, &r), 0, "log_only answers 0");
	ASSERT_EQ(r.would, -1, "would reject");
	teardown(&w);

	setup(&w, AP_MODE_ENFORCE);
	w.hook_refuses = true;
	ASSERT_EQ(allow(&w, "bob", "198.18.6.7", T0, &r), -1, "hook refuses");
	ASSERT_EQ(r.rule, VD_HOOK, "rule hook");
	ASSERT_EQ(allow(&w, "bob", "10.0.0.1", T0, &r), 0, "allow list before the hook");
	teardown(&w);
}

int main(void)
{
	RUN_CASE("verdict: request parsing", parse());
	RUN_CASE("verdict: brute force, tarpit, bans, allow list", brute_and_tarpit());
	RUN_CASE("verdict: stale password counts once", stale_password());
	RUN_CASE("verdict: account protection, known-good source", account_protection());
	RUN_CASE("verdict: known-good bounded, saved and restored", known_good_state());
	RUN_CASE("verdict: log_only and the allow_check hook", log_only_and_hook());
	return test_cases_failed != 0;
}
