// SPDX-License-Identifier: GPL-2.0
/* Detector tests, driven by a fake clock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/addr.h"
#include "authlog/detector.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

#define SEC	1000000000ULL
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define DAY	(24 * HOUR)
#define MAXEV	64

struct a16 {
	uint8_t b[16];
};

static struct a16 A(const char *s)
{
	struct a16 a;

	if (addr_parse_host(s, strlen(s), a.b))
		abort();
	// cppcheck-suppress uninitvar ; addr_parse_host() filled a.b
	return a;
}

static struct ig_prefix P(const char *s)
{
	struct ig_prefix p;

	if (addr_parse(s, &p, false))
		abort();
	return p;
}

/* Events seen, copied (the detector's strings are only valid in the call). */
struct rec {
	int n, bans, accounts;
	struct det_event ev[MAXEV];
	char user[MAXEV][64];
	struct ig_prefix deny_over;	/* allowed(): refuse prefixes that contain this */
	bool have_deny_over;
	struct ig_prefix allow;		/* allowed(): everything inside this */
	bool have_allow;
};

static void on_event(const struct det_event *ev, void *ctx)
{
	struct rec *r = ctx;

	if (r->n == MAXEV)
		return;
	r->ev[r->n] = *ev;
	if (ev->user)
		snprintf(r->user[r->n], sizeof(r->user[0]), "%s", ev->user);
	r->ev[r->n].user = r->user[r->n];
	r->n++;
	r->bans += ev->kind == DET_EV_BAN && !ev->extend;
	r->accounts += ev->kind == DET_EV_ACCOUNT;
}

static bool on_allowed(const struct ig_prefix *p, void *ctx)
{
	struct rec *r = ctx;

	return (r->have_allow && addr_contains(&r->allow, p)) ||
	       (r->have_deny_over && addr_contains(p, &r->deny_over));
}

static struct pol_detect base(void)
{
	return (struct pol_detect){
		.max_failures = 5, .window_ns = 10 * MIN, .ban_time_ns = 10 * MIN,
		.max_users = 4, .v6_plen = 64, .max_sources = 8, .subnet_plen4 = 24,
		.subnet_plen6 = 48, .account_max_sources = 10, .ban_factor = 2.0,
		.ban_max_ns = 7 * DAY, .reset_on_success = true, .dry_run = false,
	};
}

static struct detector *mk(const struct pol_detect *pol, struct rec *r, uint32_t cap)
{
	struct det_hooks h = { .event = on_event, .allowed = on_allowed, .ctx = r };

	memset(r, 0, sizeof(*r));
	return detector_new(pol, &h, cap);
}

static void fail(struct detector *d, const char *addr, const char *user, uint32_t n,
		 uint64_t now)
{
	struct a16 a = A(addr);

	ASSERT_OK(detector_fail(d, a.b, user, n, now), "detector_fail");
}

static bool is_ban(const struct det_event *ev, const char *prefix, const char *rule)
{
	struct ig_prefix p = P(prefix);
	bool ok = ev->kind == DET_EV_BAN && ev->prefix.plen == p.plen &&
		  !memcmp(ev->prefix.addr, p.addr, 16) && !strcmp(ev->rule, rule);

	if (!ok) {
		char buf[ADDR_STRLEN];

		fprintf(stderr, "  event kind %d %s rule %s, want ban %s rule %s\n", ev->kind,
			addr_format(&ev->prefix, buf), ev->kind == DET_EV_BAN ? ev->rule : "-",
			prefix, rule);
	}
	return ok;
}

static void brute_threshold(void)
{
	struct pol_detect pol = base();
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);

	for (int i = 0; i < 4; i++)
		fail(d, "198.51.100.7", "alice", 1, i * SEC);
	ASSERT_EQ(r.n, 0, "4 failures: no ban");
	fail(d, "198.51.100.7", "alice", 1, 4 * SEC);
	ASSERT_EQ(r.n, 1, "5th failure: ban");
	ASSERT_TRUE(is_ban(&r.ev[0], "198.51.100.7", "brute"), "brute ban of the address");
	ASSERT_EQ(r.ev[0].failures, 5, "evidence failures");
	ASSERT_EQ(r.ev[0].users, 1, "evidence users");
	ASSERT_EQ(r.ev[0].window_ns, 10 * MIN, "evidence window");
	ASSERT_EQ(r.ev[0].duration_ns, 10 * MIN, "ban_time");
	ASSERT_EQ(r.ev[0].until_ns, 4 * SEC + 10 * MIN, "ban counts from the last failure");
	ASSERT_TRUE(!r.ev[0].extend && !r.ev[0].dry_run, "plain ban");
	/* a summary line of N attempts weighs N */
	fail(d, "198.51.100.8", "bob", 4, 0);
	ASSERT_EQ(r.n, 1, "4 attempts: no ban");
	fail(d, "198.51.100.8", "bob", 1, SEC);
	ASSERT_EQ(r.n, 2, "4 + 1 attempts: ban");
	detector_free(d);
}

static void window_sliding(void)
{
	struct pol_detect pol = base();
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);

	for (int i = 0; i < 4; i++)
		fail(d, "198.51.100.7", "alice", 1, i * MIN);
	fail(d, "198.51.100.7", "alice", 1, 10 * MIN);	/* t=0 has just left the window */
	ASSERT_EQ(r.n, 0, "failure from t=0 expired at t=10m");
	fail(d, "198.51.100.7", "alice", 1, 10 * MIN + 30 * SEC);
	ASSERT_EQ(r.n, 1, "1m..10m30s: 5 in window");
	ASSERT_EQ(r.ev[0].failures, 5, "evidence");
	/* a slow source never gets there */
	for (int i = 0; i < 20; i++)
		fail(d, "198.51.100.9", "alice", 1, i * 3 * MIN);
	ASSERT_EQ(r.n, 1, "one failure every 3m: at most 4 in 10m");
	detector_free(d);
}

static void spraying(void)
{
	static const char *const users[] = { "alice", "bob", "Alice", "carol", "dave" };
	struct pol_detect pol = base();
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);

	for (int i = 0; i < 4; i++)	/* alice, bob, Alice (= alice), carol */
		fail(d, "203.0.113.5", users[i], 1, i * SEC);
	ASSERT_EQ(r.n, 0, "3 distinct users (case-folded): no ban");
	fail(d, "203.0.113.5", users[4], 1, 4 * SEC);	/* 5 failures, 4 users: brute first */
	ASSERT_EQ(r.n, 1, "ban");
	ASSERT_TRUE(is_ban(&r.ev[0], "203.0.113.5", "brute"), "brute wins at 5 failures");

	for (int i = 0; i < 4; i++)
		fail(d, "203.0.113.6", users[i == 2 ? 4 : i], 1, i * SEC);
	ASSERT_EQ(r.n, 2, "4 distinct users in 4 failures: ban");
	ASSERT_TRUE(is_ban(&r.ev[1], "203.0.113.6", "spray"), "spray ban");
	ASSERT_EQ(r.ev[1].users, 4, "evidence users");
	ASSERT_EQ(r.ev[1].failures, 4, "evidence failures");
	/* users leave the window too */
	for (int i = 0; i < 4; i++)
		fail(d, "203.0.113.7", users[i == 2 ? 4 : i], 1, i * 4 * MIN);
	ASSERT_EQ(r.n, 2, "4 users over 12m: never 4 in one window");
	pol.max_users = 0;
	detector_free(d);
	d = mk(&pol, &r, 1024);
	for (int i = 0; i < 4; i++)
		fail(d, "203.0.113.6", users[i == 2 ? 4 : i], 1, i * SEC);
	ASSERT_EQ(r.n, 0, "max_users = 0: spraying off");
	detector_free(d);

	/* Names longer than one hash piece: the tail counts, case-folded. */
	pol = base();
	d = mk(&pol, &r, 1024);
	for (int i = 0; i < 4; i++) {
		char name[600];

		memset(name, 'x', sizeof(name) - 2);
		name[sizeof(name) - 2] = "abAc"[i];
		name[sizeof(name) - 1] = '\0';
		fail(d, "203.0.113.8", name, 1, i * SEC);
		name[sizeof(name) - 2] = "abcd"[i];
		fail(d, "203.0.113.9", name, 1, i * SEC);
	}
	ASSERT_EQ(r.n, 1, "long names: 3 users (folded) no ban, 4 users a ban");
	ASSERT_TRUE(is_ban(&r.ev[0], "203.0.113.9", "spray"), "long names told apart");
	detector_free(d);
}

static void ipv6_prefix(void)
{
	struct pol_detect pol = base();
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);
	char a[64];

	for (int i = 1; i <= 4; i++) {
		snprintf(a, sizeof(a), "2001:db8:1:2::%x", i);
		fail(d, a, "alice", 1, i * SEC);
	}
	fail(d, "2001:db8:1:3::1", "alice", 1, 5 * SEC);
	ASSERT_EQ(r.n, 0, "4 in the /64, 1 next door");
	fail(d, "2001:db8:1:2:ffff::5", "alice", 1, 6 * SEC);
	ASSERT_EQ(r.n, 1, "5 in one /64 from 5 addresses");
	ASSERT_TRUE(is_ban(&r.ev[0], "2001:db8:1:2::/64", "v6prefix"), "prefix ban");
	ASSERT_EQ(r.ev[0].failures, 5, "prefix evidence");

	/* one address alone: the address, then the prefix once it hops */
	for (int i = 0; i < 5; i++)
		fail(d, "2001:db8:9:9::1", "bob", 1, i * SEC);
	ASSERT_EQ(r.n, 2, "address ban");
	ASSERT_TRUE(is_ban(&r.ev[1], "2001:db8:9:9::1", "brute"), "address first");
	fail(d, "2001:db8:9:9::1", "bob", 1, 6 * SEC);	/* still failing: re-arm only */
	ASSERT_EQ(r.n, 3, "re-armed");
	ASSERT_TRUE(r.ev[2].extend && r.ev[2].until_ns == 6 * SEC + 10 * MIN, "extend");
	fail(d, "2001:db8:9:9::2", "bob", 1, 7 * SEC);	/* hops inside the /64 */
	ASSERT_EQ(r.n, 4, "prefix ban after the hop");
	ASSERT_TRUE(is_ban(&r.ev[3], "2001:db8:9:9::/64", "v6prefix"), "v6prefix");
	ASSERT_EQ(r.ev[3].failures, 6, "prefix saw all six");

	/* IPv4 is never grouped by v6_plen */
	for (int i = 1; i <= 5; i++) {
		snprintf(a, sizeof(a), "192.0.2.%d", i);
		fail(d, a, "carol", 1, 10 * SEC);
	}
	ASSERT_EQ(r.n, 4, "five IPv4 addresses, one failure each");
	detector_free(d);
}

static void subnet_pressure(void)
{
	struct pol_detect pol = base();
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);
	char a[64];
	uint64_t t = 0;

	for (int i = 1; i <= 7; i++) {
		snprintf(a, sizeof(a), "198.51.100.%d", i);
		fail(d, a, "root", 5, t += SEC);
	}
	ASSERT_EQ(r.bans, 7, "7 address bans");
	snprintf(a, sizeof(a), "198.51.100.8");
	fail(d, a, "root", 5, t += SEC);
	ASSERT_EQ(r.bans, 9, "8th address ban brings the /24");
	ASSERT_TRUE(is_ban(&r.ev[8], "198.51.100.0/24", "subnet"), "subnet ban");
	ASSERT_EQ(r.ev[8].failures, 8, "evidence: banned sources");

	/* bans that are over do not count */
	for (int i = 1; i <= 7; i++) {
		snprintf(a, sizeof(a), "203.0.113.%d", i);
		fail(d, a, "root", 5, t += SEC);
	}
	t += 11 * MIN;
	fail(d, "203.0.113.8", "root", 5, t);
	ASSERT_EQ(r.bans, 9 + 8, "7 expired + 1 new: no subnet ban");

	/* IPv6: /64 bans inside one /48 */
	for (int i = 1; i <= 8; i++) {
		snprintf(a, sizeof(a), "2001:db8:77:%x::1", i);
		fail(d, a, "root", 5, t += SEC);
		snprintf(a, sizeof(a), "2001:db8:77:%x::2", i);
		fail(d, a, "root", 1, t += SEC);	/* address, then its /64 */
	}
	ASSERT_TRUE(is_ban(&r.ev[r.n - 1], "2001:db8:77::/48", "subnet"), "IPv6 /48 ban");

	pol.max_sources = 0;
	detector_free(d);
	d = mk(&pol, &r, 1024);
	for (int i = 1; i <= 20; i++) {
		snprintf(a, sizeof(a), "198.51.100.%d", i);
		fail(d, a, "root", 5, SEC);
	}
	ASSERT_EQ(r.bans, 20, "max_sources = 0: no subnet bans");
	detector_free(d);
}

static void distributed_spraying(void)
{
	struct pol_detect pol = base();
	struct det_stats st;
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);
	char a[64];

	for (int i = 1; i <= 9; i++) {
		snprintf(a, sizeof(a), "10.%d.0.1", i);
		fail(d, a, "ceo", 1, i * SEC);
	}
	ASSERT_EQ(r.n, 0, "9 sources: nothing");
	fail(d, "10.10.0.1", "CEO", 1, 10 * SEC);
	ASSERT_EQ(r.n, 1, "10th source: one event");
	ASSERT_EQ(r.ev[0].kind, DET_EV_ACCOUNT, "account event");
	ASSERT_STREQ(r.ev[0].user, "CEO", "the user");
	ASSERT_EQ(r.ev[0].users, 10, "distinct sources");
	for (int i = 11; i <= 30; i++) {
		snprintf(a, sizeof(a), "10.%d.0.1", i);
		fail(d, a, "ceo", 1, i * SEC);
	}
	ASSERT_EQ(r.n, 1, "once per window");
	ASSERT_EQ(r.bans, 0, "never a ban");
	fail(d, "10.31.0.1", "ceo", 1, 10 * SEC + 10 * MIN);
	ASSERT_EQ(r.accounts, 2, "again after a window");
	detector_stats(d, &st);
	ASSERT_EQ(st.account_events, 2, "counter");
	ASSERT_EQ(st.bans, 0, "no bans counted");
	detector_free(d);
}

/* Ban 198.51.100.7 at now; returns the ban's duration. */
static uint64_t ban_once(struct detector *d, struct rec *r, uint64_t now)
{
	int n = r->n;

	fail(d, "198.51.100.7", "alice", 5, now);	/* adds to r through the hooks */
	if (!ASSERT_EQ(r->n, n + 1, "banned"))
		return 0;
	return r->ev[n].duration_ns;
}

static void escalation(void)
{
	static const uint64_t want[] = { 10 * MIN, 20 * MIN, 40 * MIN, HOUR, HOUR };
	struct pol_detect pol = base();
	struct rec r;
	struct detector *d;
	uint64_t t = 0, dur;

	pol.ban_max_ns = HOUR;
	d = mk(&pol, &r, 1024);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		dur = ban_once(d, &r, t);
		ASSERT_EQ(dur, want[i], "ban_factor 2, capped at ban_max");
		ASSERT_EQ(r.ev[r.n - 1].repeat, i, "repeat");
		t += dur;	/* the ban is over */
	}
	/* re-armed, not escalated, while it runs */
	ban_once(d, &r, t);
	fail(d, "198.51.100.7", "alice", 1, t + MIN);
	ASSERT_TRUE(r.ev[r.n - 1].extend, "extend");
	ASSERT_EQ(r.ev[r.n - 1].duration_ns, HOUR, "same length");
	ASSERT_EQ(r.ev[r.n - 1].until_ns, t + MIN + HOUR, "from the last failure");
	/* forgotten once over for ban_max */
	t += MIN + HOUR + HOUR;
	ASSERT_EQ(ban_once(d, &r, t), 10 * MIN, "history forgotten");
	detector_free(d);

	pol = base();
	pol.ban_factor = 1.5;
	d = mk(&pol, &r, 1024);
	ASSERT_EQ(ban_once(d, &r, 0), 10 * MIN, "1st");
	ASSERT_EQ(ban_once(d, &r, 20 * MIN), 15 * MIN, "1.5x");
	detector_free(d);
}

static void reset_on_success(void)
{
	struct pol_detect pol = base();
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);
	struct a16 a = A("198.51.100.7"), b = A("2001:db8:5:5::1");

	fail(d, "198.51.100.7", "alice", 4, 0);
	ASSERT_OK(detector_success(d, a.b, SEC), "success");
	fail(d, "198.51.100.7", "alice", 4, 2 * SEC);
	ASSERT_EQ(r.n, 0, "success cleared the count");
	fail(d, "2001:db8:5:5::2", "alice", 4, 0);	/* the /64 holds 4 */
	ASSERT_OK(detector_success(d, b.b, SEC), "success in the /64");
	fail(d, "2001:db8:5:5::3", "alice", 1, 2 * SEC);
	ASSERT_EQ(r.n, 0, "success cleared the /64 too");
	detector_free(d);

	pol.reset_on_success = false;
	d = mk(&pol, &r, 1024);
	fail(d, "198.51.100.7", "alice", 4, 0);
	ASSERT_OK(detector_success(d, a.b, SEC), "success");
	fail(d, "198.51.100.7", "alice", 1, 2 * SEC);
	ASSERT_EQ(r.n, 1, "reset_on_success = no: still banned");
	detector_free(d);
}

static void allow_predicate(void)
{
	struct pol_detect pol = base();
	struct det_stats st;
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);
	char a[64];

	r.allow = P("192.0.2.0/24");
	r.have_allow = true;
	fail(d, "192.0.2.5", "alice", 50, 0);
	ASSERT_EQ(r.n, 0, "allowed source never banned");
	detector_stats(d, &st);
	ASSERT_EQ(st.allowed, 1, "counted as allowed");
	ASSERT_EQ(st.failures, 0, "not counted as failures");
	/* a subnet ban would cover an allowed host: refused */
	r.deny_over = P("203.0.113.200");
	r.have_deny_over = true;
	for (int i = 1; i <= 8; i++) {
		snprintf(a, sizeof(a), "203.0.113.%d", i);
		fail(d, a, "root", 5, SEC);
	}
	ASSERT_EQ(r.bans, 8, "addresses banned, subnet not");
	detector_free(d);
}

static void dry_run(void)
{
	struct pol_detect pol = base();
	struct rec r;
	struct detector *d;

	pol.dry_run = true;
	d = mk(&pol, &r, 1024);
	fail(d, "198.51.100.7", "alice", 5, 0);
	fail(d, "198.51.100.7", "alice", 1, SEC);	/* not really banned: keeps failing */
	ASSERT_EQ(r.n, 2, "decision and re-arm");
	ASSERT_TRUE(r.ev[0].dry_run && r.ev[1].dry_run, "flagged dry-run");
	ASSERT_TRUE(is_ban(&r.ev[0], "198.51.100.7", "brute"), "what would be banned");
	detector_free(d);
}

static void bounded_memory(void)
{
	struct pol_detect pol = base();
	struct det_stats st;
	struct rec r;
	struct detector *d = mk(&pol, &r, 65536);
	uint8_t a[16];

	if (!ASSERT_OK_PTR(d, "detector_new"))
		return;
	memcpy(a, A("10.0.0.0").b, 16);
	for (uint32_t i = 0; i < 1000000; i++) {	/* 1M distinct IPv4 sources */
		a[13] = i >> 16;
		a[14] = i >> 8;
		a[15] = i;
		detector_fail(d, a, "admin", 1, i);
	}
	detector_stats(d, &st);
	ASSERT_EQ(st.sources, 65536, "sources held at capacity");
	ASSERT_EQ(st.evictions, 1000000 - 65536, "oldest evicted, counted");
	ASSERT_EQ(r.bans, 0, "one failure each: no bans");
	ASSERT_EQ(r.accounts, 1, "one account event");
	ASSERT_TRUE(st.accounts <= 65536 / 8, "accounts bounded");

	memcpy(a, A("2001:db8::").b, 16);	/* 1M distinct IPv6 /64s: two keys each */
	for (uint32_t i = 0; i < 1000000; i++) {
		a[5] = i >> 16;
		a[6] = i >> 8;
		a[7] = i;
		detector_fail(d, a, NULL, 1, 1000000 + i);
	}
	detector_stats(d, &st);
	ASSERT_EQ(st.sources, 65536, "still at capacity");
	detector_free(d);

	/* a flood of bans: histories and subnets bounded too */
	d = mk(&pol, &r, 1024);
	memcpy(a, A("10.0.0.0").b, 16);
	for (uint32_t i = 0; i < 100000; i++) {
		a[13] = i >> 16;
		a[14] = i >> 8;
		a[15] = i;
		detector_fail(d, a, "root", 5, i);
	}
	detector_stats(d, &st);
	ASSERT_EQ(st.histories, 1024, "histories at capacity");
	ASSERT_TRUE(st.subnets <= 1024 / 8 + 64, "subnets bounded");
	/* per /24: 8 address bans, then the subnet ban covers the rest */
	ASSERT_EQ(st.bans, (100000 / 256 + 1) * 9, "address and subnet bans");
	detector_free(d);
}

static void explain(void)
{
	struct pol_detect pol = base();
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);
	struct a16 a = A("198.51.100.7"), b = A("2001:db8:1:2::9");
	char buf[1024], small[16];

	fail(d, "198.51.100.7", "alice", 5, 0);		/* banned at 0 for 10m */
	fail(d, "198.51.100.7", "alice", 1, 20 * MIN);
	fail(d, "198.51.100.7", "bob", 2, 21 * MIN);
	ASSERT_OK(detector_explain(d, a.b, 22 * MIN, buf, sizeof(buf)), "explain");
	ASSERT_TRUE(strstr(buf, "198.51.100.7: 3 failure(s), 2 distinct user(s) in the last "
			   "10m0s") != NULL, "failures and users");
	ASSERT_TRUE(strstr(buf, "198.51.100.7: banned 1 time(s), last by rule brute 22m0s ago "
			   "for 10m0s, expired") != NULL, "history");
	if (test_failed_asserts)
		fprintf(stderr, "%s", buf);
	ASSERT_EQ(detector_explain(d, a.b, 22 * MIN, small, sizeof(small)), -ENOSPC, "short buf");
	ASSERT_EQ(strlen(small), sizeof(small) - 1, "truncated, terminated");

	fail(d, "2001:db8:1:2::9", NULL, 1, 0);
	ASSERT_OK(detector_explain(d, b.b, MIN, buf, sizeof(buf)), "explain v6");
	ASSERT_TRUE(strstr(buf, "2001:db8:1:2::9: 1 failure(s), 0 distinct") != NULL, "v6 address");
	ASSERT_TRUE(strstr(buf, "2001:db8:1:2::/64: 1 failure(s)") != NULL, "v6 prefix");
	detector_free(d);
}

static int collect(const struct det_history *h, void *ctx)
{
	struct det_history *out = ctx;

	for (int i = 0; i < 8; i++) {
		if (!out[i].bans) {
			out[i] = *h;
			return 0;
		}
	}
	return -ENOSPC;
}

static void history(void)
{
	struct pol_detect pol = base();
	struct det_history saved[8] = { 0 };
	struct rec r;
	struct detector *d = mk(&pol, &r, 1024);
	int n = 0;

	fail(d, "198.51.100.7", "alice", 5, 0);
	fail(d, "198.51.100.7", "alice", 5, 11 * MIN);	/* 2nd ban: 20m, until 31m */
	fail(d, "2001:db8::1", "bob", 5, 11 * MIN);
	ASSERT_OK(detector_history_foreach(d, collect, saved), "foreach");
	for (; n < 8 && saved[n].bans; n++)
		;
	ASSERT_EQ(n, 2, "two entries");
	ASSERT_EQ(saved[0].bans, 2, "bans");
	ASSERT_EQ(saved[0].until_ns, 31 * MIN, "until");
	ASSERT_STREQ(saved[0].rule, "brute", "rule");
	detector_free(d);

	/* a restarted daemon restores it: still banned, then escalates */
	d = mk(&pol, &r, 1024);
	for (int i = 0; i < n; i++)
		ASSERT_OK(detector_history_restore(d, &saved[i]), "restore");
	fail(d, "198.51.100.7", "alice", 1, 12 * MIN);
	ASSERT_TRUE(r.n == 1 && r.ev[0].extend, "restored ban re-armed");
	fail(d, "198.51.100.7", "alice", 5, 40 * MIN);
	ASSERT_EQ(r.ev[r.n - 1].duration_ns, 40 * MIN, "3rd ban escalates");
	saved[0].rule[0] = 'x';
	ASSERT_EQ(detector_history_restore(d, &saved[0]), -EINVAL, "bad rule");
	detector_free(d);
}

/* A table's buckets double as it fills: what was counted before each
 * doubling must still be found after it. */
static void table_growth(void)
{
	struct pol_detect pol = base();
	struct det_stats st;
	struct rec r;
	struct detector *d = mk(&pol, &r, 65536);
	uint8_t a[16];

	if (!ASSERT_OK_PTR(d, "detector_new"))
		return;
	memcpy(a, A("10.0.0.1").b, 16);
	for (int pass = 0; pass < 2; pass++) {
		/* 5000 sources, one per /24; 4 failures each, then the 5th */
		for (uint32_t i = 0; i < 5000; i++) {
			a[13] = i >> 8;
			a[14] = i;
			detector_fail(d, a, "admin", pass ? 1 : 4, pass * MIN + i);
		}
	}
	detector_stats(d, &st);
	ASSERT_EQ(st.sources, 5000, "every source held");
	ASSERT_EQ(st.evictions, 0, "nothing evicted");
	ASSERT_EQ(st.bans, 5000, "every source banned on its 5th failure");
	ASSERT_EQ(st.histories, 5000, "one history each");
	detector_free(d);
}

static void bad_policy(void)
{
	struct pol_detect pol = base();
	struct rec r;

	pol.max_failures = 0;
	errno = 0;
	ASSERT_TRUE(!mk(&pol, &r, 1024) && errno == EINVAL, "max_failures 0");
	pol = base();
	pol.ban_factor = 0.5;
	ASSERT_TRUE(!mk(&pol, &r, 1024), "ban_factor < 1");
	pol = base();
	ASSERT_TRUE(!mk(&pol, &r, 0), "capacity 0");
}

/* The failure hook sees what is counted; fleet figures ban with the same
 * thresholds, a ban here stops them, and a noted fleet ban escalates. */
static int hook_calls;
static void on_failure(const uint8_t addr[16], const char *user, uint32_t n, void *ctx)
{
	(void)addr;
	(void)user;
	(void)ctx;
	hook_calls += n;
}

static void fleet_figures(void)
{
	struct pol_detect pol = base();
	struct det_hooks h = { .event = on_event, .allowed = on_allowed, .failure = on_failure };
	struct det_fleet fig = { .failures = 4, .users = 1 };
	struct a16 a = A("198.18.0.9"), b6 = A("2001:db8:1::5");
	struct det_history hist = { .prefix = P("198.18.0.10"), .bans = 2, .last_ban_ns = DAY,
				    .last_duration_ns = 20 * MIN, .until_ns = DAY + 20 * MIN,
				    .rule = "brute" };
	struct detector *d;
	struct rec r;

	memset(&r, 0, sizeof(r));
	h.ctx = &r;
	d = detector_new(&pol, &h, 1024);
	if (!ASSERT_OK_PTR(d, "new"))
		return;
	hook_calls = 0;
	ASSERT_OK(detector_fail(d, a.b, "x", 1, DAY), "one failure");
	ASSERT_EQ(hook_calls, 1, "failure hook");
	ASSERT_OK(detector_fleet(d, a.b, "x", &fig, DAY), "4 fleet-wide");
	ASSERT_EQ(r.bans, 0, "4 < max_failures");
	fig.failures = 5;
	ASSERT_OK(detector_fleet(d, a.b, "x", &fig, DAY), "5 fleet-wide");
	ASSERT_EQ(r.bans, 1, "banned on fleet figures");
	ASSERT_STREQ(r.ev[0].rule, "brute", "rule");
	ASSERT_EQ(r.ev[0].failures, 5, "failures reported");
	ASSERT_OK(detector_fleet(d, a.b, "x", &fig, DAY + SEC), "again");
	ASSERT_EQ(r.n, 1, "a running ban is not decided twice");
	hook_calls = 0;
	detector_fail(d, a.b, "x", 1, DAY + 2 * SEC);
	ASSERT_EQ(hook_calls, 0, "failures inside a ban are not sent");
	/* Spray and the IPv6 prefix, on the fleet's figures. */
	fig = (struct det_fleet){ .failures = 1, .users = 4 };
	detector_fleet(d, A("198.18.1.1").b, NULL, &fig, DAY);
	ASSERT_STREQ(r.ev[r.n - 1].rule, "spray", "spray");
	fig = (struct det_fleet){ .failures = 1, .pfx_failures = 5 };
	detector_fleet(d, b6.b, NULL, &fig, DAY);
	ASSERT_STREQ(r.ev[r.n - 1].rule, "v6prefix", "v6prefix");
	ASSERT_EQ(r.ev[r.n - 1].prefix.plen, 64, "the /64");
	/* The account event, once per window. */
	fig = (struct det_fleet){ .account_sources = 10 };
	detector_fleet(d, A("198.18.2.1").b, "victim", &fig, DAY);
	detector_fleet(d, A("198.18.2.2").b, "victim", &fig, DAY + SEC);
	ASSERT_EQ(r.accounts, 1, "account event once");
	/* Allowed sources are never banned on fleet figures. */
	/* on_allowed() reads these through h.ctx. */
	r.allow = P("198.18.3.0/24");	// cppcheck-suppress unreadVariable
	r.have_allow = true;		// cppcheck-suppress unreadVariable
	fig = (struct det_fleet){ .failures = 50 };
	detector_fleet(d, A("198.18.3.3").b, NULL, &fig, DAY);
	ASSERT_TRUE(r.ev[r.n - 1].prefix.addr[15] != 3, "allowed not banned");
	/* A ban noted from the fleet: a failure here re-arms it, the next ban
	 * escalates past its level. */
	ASSERT_OK(detector_note_ban(d, &hist), "note");
	detector_fail(d, A("198.18.0.10").b, "x", 1, DAY + MIN);
	ASSERT_EQ(r.ev[r.n - 1].extend, 1, "re-armed");
	fig = (struct det_fleet){ .failures = 5 };
	detector_fleet(d, A("198.18.0.10").b, NULL, &fig, DAY + 2 * HOUR);
	ASSERT_EQ(r.ev[r.n - 1].repeat, 2, "escalates past the fleet's level");
	ASSERT_EQ(r.ev[r.n - 1].duration_ns, 40 * MIN, "10m x 2^2");
	detector_free(d);
}

int main(void)
{
	RUN_CASE("brute force exactly at max_failures", brute_threshold());
	RUN_CASE("window slides", window_sliding());
	RUN_CASE("password spraying (distinct users)", spraying());
	RUN_CASE("IPv6 counted and banned per /64 too", ipv6_prefix());
	RUN_CASE("subnet pressure", subnet_pressure());
	RUN_CASE("distributed spraying: event, never a ban", distributed_spraying());
	RUN_CASE("escalation, cap, re-arm, forgetting", escalation());
	RUN_CASE("reset_on_success", reset_on_success());
	RUN_CASE("allow predicate", allow_predicate());
	RUN_CASE("dry_run", dry_run());
	RUN_CASE("bounded memory, 1M sources", bounded_memory());
	RUN_CASE("buckets grow with the entries held", table_growth());
	RUN_CASE("explain", explain());
	RUN_CASE("history export and restore", history());
	RUN_CASE("bad policy", bad_policy());
	RUN_CASE("fleet figures and noted bans", fleet_figures());
	return test_cases_failed != 0;
}
