// SPDX-License-Identifier: GPL-2.0
/*
 * The CrowdSec client without a network: Go durations, decision validation
 * (a table of LAPI objects and what must become of them), and the decision
 * table against fake map hooks (two decisions on one address, deletions,
 * the full resync that lifts what LAPI no longer holds).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "test.h"
#include "base/log.h"
#include "base/value.h"
#include "daemon/crowdsec.h"

TEST_DEFINE_GLOBALS;

#define S NS_PER_SEC

static void test_durations(void)
{
	static const struct { const char *s; int ok; int64_t ns; } t[] = {
		{ "4h", 0, 4 * 3600 * S },
		{ "3h59m58.5s", 0, (3 * 3600 + 59 * 60 + 58) * S + S / 2 },
		{ "59m58.687154607s", 0, (59 * 60 + 58) * S + 687154607 },
		{ "1h59m58.569242042s", 0, (3600 + 59 * 60 + 58) * S + 569242042 },
		{ "-8.988542ms", 0, -8988542 },
		{ "150ms", 0, 150000000 },
		{ "2us", 0, 2000 },
		{ "2\xc2\xb5s", 0, 2000 },
		{ "7ns", 0, 7 },
		{ "0", 0, 0 },
		{ "0s", 0, 0 },
		{ "+1s", 0, S },
		{ "1.5h", 0, 5400 * S },
		/* Capped at 365 days, however large (no overflow). */
		{ "9000h", 0, (int64_t)CS_DURATION_CAP_NS },
		{ "99999999999999999999999h", 0, (int64_t)CS_DURATION_CAP_NS },
		{ "8760h1s", 0, (int64_t)CS_DURATION_CAP_NS },
		{ "-99999999h", 0, -(int64_t)CS_DURATION_CAP_NS },
		{ "", -EINVAL, 0 },
		{ "-", -EINVAL, 0 },
		{ "10", -EINVAL, 0 },
		{ "1d", -EINVAL, 0 },
		{ "h", -EINVAL, 0 },
		{ ".s", -EINVAL, 0 },
		{ "1h 2m", -EINVAL, 0 },
		{ "1x", -EINVAL, 0 },
		{ "--1s", -EINVAL, 0 },
		{ "1e9s", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int64_t ns = 12345;
		int err = cs_parse_go_duration(t[i].s, &ns);

		ASSERT_EQ(err, t[i].ok, t[i].s);
		if (!t[i].ok)
			ASSERT_EQ(ns, t[i].ns, t[i].s);
	}
}

#define DEC(scope, value, dur) \
	"{\"id\":7,\"origin\":\"crowdsec\",\"type\":\"ban\",\"scope\":\"" scope \
	"\",\"value\":\"" value "\",\"duration\":\"" dur "\",\"scenario\":\"crowdsecurity/ssh-bf\"}"

static void test_validation(void)
{
	static const struct {
		const char *name, *json;
		bool deleted;
		int refusal;		/* -1: accepted */
		const char *want;	/* the prefix, as addr_format prints it */
	} t[] = {
		{ "ip v4", DEC("Ip", "198.18.0.5", "4h"), false, -1, "198.18.0.5" },
		{ "ip v6", DEC("Ip", "2001:db8::5", "1m"), false, -1, "2001:db8::5" },
		{ "ip case", DEC("ip", "198.18.0.5", "4h"), false, -1, "198.18.0.5" },
		{ "ip mapped", DEC("Ip", "::ffff:198.18.0.5", "4h"), false, -1, "198.18.0.5" },
		{ "range v4", DEC("Range", "198.18.1.0/24", "2h"), false, -1, "198.18.1.0/24" },
		{ "range host bits", DEC("Range", "198.18.2.7/24", "2h"), false, -1, "198.18.2.0/24" },
		{ "range v4 /8", DEC("Range", "10.0.0.0/8", "2h"), false, -1, "10.0.0.0/8" },
		{ "range v6 /32", DEC("Range", "2001:db8::/32", "2h"), false, -1, "2001:db8::/32" },
		{ "range v4 /7", DEC("Range", "10.0.0.0/7", "2h"), false, CS_REF_PREFIX, NULL },
		{ "range v4 /0", DEC("Range", "0.0.0.0/0", "2h"), false, CS_REF_PREFIX, NULL },
		{ "range v6 /31", DEC("Range", "2001:db8::/31", "2h"), false, CS_REF_PREFIX, NULL },
		{ "range v6 ::/0", DEC("Range", "::/0", "2h"), false, CS_REF_PREFIX, NULL },
		{ "range mapped /96", DEC("Range", "::ffff:0.0.0.0/96", "2h"), false, CS_REF_PREFIX, NULL },
		{ "range without length", DEC("Range", "198.18.1.0", "2h"), false, CS_REF_VALUE, NULL },
		{ "ip with length", DEC("Ip", "198.18.0.5/32", "4h"), false, CS_REF_VALUE, NULL },
		{ "ip garbage", DEC("Ip", "198.18.0.256", "4h"), false, CS_REF_VALUE, NULL },
		{ "ip leading zero", DEC("Ip", "198.018.0.5", "4h"), false, CS_REF_VALUE, NULL },
		{ "ip blank", DEC("Ip", " 198.18.0.5", "4h"), false, CS_REF_VALUE, NULL },
		{ "ip empty", DEC("Ip", "", "4h"), false, CS_REF_VALUE, NULL },
		{ "ip hostname", DEC("Ip", "example.org", "4h"), false, CS_REF_VALUE, NULL },
		{ "ip embedded NUL", DEC("Ip", "198.18.0.5\\u0000x", "4h"), false, CS_REF_MALFORMED, NULL },
		{ "scope country", DEC("Country", "FR", "4h"), false, CS_REF_SCOPE, NULL },
		{ "scope username", DEC("Username", "bob", "4h"), false, CS_REF_SCOPE, NULL },
		{ "expired", DEC("Ip", "198.18.0.5", "-1s"), false, CS_REF_DURATION, NULL },
		{ "zero duration", DEC("Ip", "198.18.0.5", "0s"), false, CS_REF_DURATION, NULL },
		{ "bad duration", DEC("Ip", "198.18.0.5", "4 hours"), false, CS_REF_DURATION, NULL },
		{ "captcha", "{\"id\":1,\"origin\":\"crowdsec\",\"type\":\"captcha\",\"scope\":\"Ip\","
		  "\"value\":\"198.18.0.5\",\"duration\":\"4h\",\"scenario\":\"x\"}", false, CS_REF_TYPE, NULL },
		{ "own alert", "{\"id\":1,\"origin\":\"crowdsec\",\"type\":\"ban\",\"scope\":\"Ip\","
		  "\"value\":\"198.18.0.5\",\"duration\":\"4h\",\"scenario\":\"imapguard/brute\"}", false,
		  CS_REF_OWN, NULL },
		{ "no id", "{\"origin\":\"crowdsec\",\"type\":\"ban\",\"scope\":\"Ip\","
		  "\"value\":\"198.18.0.5\",\"duration\":\"4h\",\"scenario\":\"x\"}", false, CS_REF_MALFORMED, NULL },
		{ "id string", "{\"id\":\"1\",\"origin\":\"crowdsec\",\"type\":\"ban\",\"scope\":\"Ip\","
		  "\"value\":\"198.18.0.5\",\"duration\":\"4h\",\"scenario\":\"x\"}", false, CS_REF_MALFORMED, NULL },
		{ "value number", "{\"id\":1,\"origin\":\"crowdsec\",\"type\":\"ban\",\"scope\":\"Ip\","
		  "\"value\":3323068421,\"duration\":\"4h\",\"scenario\":\"x\"}", false, CS_REF_MALFORMED, NULL },
		{ "no scenario", "{\"id\":1,\"origin\":\"crowdsec\",\"type\":\"ban\",\"scope\":\"Ip\","
		  "\"value\":\"198.18.0.5\",\"duration\":\"4h\"}", false, CS_REF_MALFORMED, NULL },
		{ "not an object", "[1]", false, CS_REF_MALFORMED, NULL },
		/* A deletion needs only which decision and where. */
		{ "deleted", "{\"id\":9,\"scope\":\"Ip\",\"value\":\"198.18.0.5\",\"duration\":\"-3ms\"}",
		  true, -1, "198.18.0.5" },
		{ "deleted bad value", "{\"id\":9,\"scope\":\"Ip\",\"value\":\"x\"}", true, CS_REF_VALUE, NULL },
	};
	struct pol_crowdsec conf = { .scopes = POL_CS_SCOPE_IP | POL_CS_SCOPE_RANGE };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		json_t *j = json_loads(t[i].json, JSON_ALLOW_NUL, NULL);
		struct cs_decision d;
		enum cs_refusal why = CS_REF_MAX;
		char a[ADDR_STRLEN];
		int err;

		if (!ASSERT_OK_PTR(j, t[i].name))
			continue;
		err = cs_decision_parse(j, &conf, t[i].deleted, &d, &why);
		if (t[i].refusal < 0) {
			ASSERT_OK(err, t[i].name);
			ASSERT_STREQ(addr_format(&d.pfx, a), t[i].want, t[i].name);
		} else {
			ASSERT_EQ(err, -EINVAL, t[i].name);
			ASSERT_STREQ(cs_refusal_name(why), cs_refusal_name(t[i].refusal), t[i].name);
		}
		json_decref(j);
	}
}

static void test_reason_and_filters(void)
{
	struct pol_crowdsec conf = { .scopes = POL_CS_SCOPE_IP };
	struct cs_decision d;
	enum cs_refusal why;
	json_t *j = json_loads("{\"id\":3,\"origin\":\"CAPI\",\"type\":\"ban\",\"scope\":\"Ip\","
			       "\"value\":\"198.18.0.5\",\"duration\":\"1h\","
			       "\"scenario\":\"manual 'ban' from\\n'x\\u00e9'\"}", 0, NULL);
	json_t *r = json_loads(DEC("Range", "198.18.1.0/24", "2h"), 0, NULL);

	ASSERT_OK(cs_decision_parse(j, &conf, false, &d, &why), "accepted");
	/* Printable ASCII only: the reason goes to `ban list` and the state file. */
	ASSERT_STREQ(d.reason, "crowdsec/manual 'ban' from?'x?" "?'", "reason cleaned");
	ASSERT_EQ(d.ttl_ns, 3600 * S, "ttl");
	ASSERT_EQ(cs_decision_parse(r, &conf, false, &d, &why), -EINVAL, "range scope off");
	ASSERT_EQ(why, CS_REF_SCOPE, "range scope off: why");
	conf.norigins = 1;
	strcpy(conf.origins[0], "crowdsec");
	ASSERT_EQ(cs_decision_parse(j, &conf, false, &d, &why), -EINVAL, "origin filtered");
	ASSERT_EQ(why, CS_REF_FILTERED, "origin filtered: why");
	strcpy(conf.origins[0], "capi");
	ASSERT_OK(cs_decision_parse(j, &conf, false, &d, &why), "origin matches, any case");
	conf.nscenarios = 2;
	strcpy(conf.scenarios[0], "dovecot");
	strcpy(conf.scenarios[1], "BAN");
	ASSERT_OK(cs_decision_parse(j, &conf, false, &d, &why), "scenario contains");
	strcpy(conf.scenarios[1], "ssh");
	ASSERT_EQ(cs_decision_parse(j, &conf, false, &d, &why), -EINVAL, "scenario filtered");
	json_decref(j);
	json_decref(r);
}

/* ---- the table against fake maps --------------------------------------- */

struct fake_ban {
	struct ig_prefix p;
	uint64_t ttl;
	char reason[IG_REASON_LEN];
	bool live;
};

static struct fake_ban bans[16];
static int nbans_calls, unban_calls;

static struct fake_ban *fake_find(const struct ig_prefix *p)
{
	for (int i = 0; i < 16; i++)
		if (bans[i].live && bans[i].p.plen == p->plen && !memcmp(bans[i].p.addr, p->addr, 16))
			return &bans[i];
	return NULL;
}

static int fake_ban(void *ctx, const struct ig_prefix *p, uint64_t ttl, const char *reason)
{
	struct fake_ban *b = fake_find(p);

	(void)ctx;
	nbans_calls++;
	for (int i = 0; !b && i < 16; i++)
		if (!bans[i].live)
			b = &bans[i];
	if (!b)
		return -E2BIG;
	b->p = *p;
	b->ttl = ttl;
	b->live = true;
	snprintf(b->reason, sizeof(b->reason), "%s", reason);
	return 0;
}

static int fake_unban(void *ctx, const struct ig_prefix *p)
{
	struct fake_ban *b = fake_find(p);

	(void)ctx;
	unban_calls++;
	if (!b)
		return -ENOENT;
	b->live = false;
	return 0;
}

static bool fake_allowed(void *ctx, const struct ig_prefix *p)
{
	struct ig_prefix allow;

	(void)ctx;
	addr_parse("198.18.9.0/24", &allow, false);
	return addr_contains(&allow, p);
}

static int fake_own(void *ctx, struct ig_prefix **out, size_t *n)
{
	(void)ctx;
	*out = calloc(16, sizeof(**out));
	*n = 0;
	for (int i = 0; i < 16; i++)
		if (bans[i].live)
			(*out)[(*n)++] = bans[i].p;
	return 0;
}

static bool banned(const char *s)
{
	struct ig_prefix p;

	return !addr_parse(s, &p, false) && fake_find(&p);
}

static uint64_t ttl_of(const char *s)
{
	struct ig_prefix p;
	struct fake_ban *b;

	return !addr_parse(s, &p, false) && (b = fake_find(&p)) ? b->ttl : 0;
}

#define FEED(cs, body, startup) crowdsec_feed(cs, body, strlen(body), startup)
#define D(id, scope, value, dur, scen) \
	"{\"id\":" #id ",\"origin\":\"cscli\",\"type\":\"ban\",\"scope\":\"" scope "\",\"value\":\"" \
	value "\",\"duration\":\"" dur "\",\"scenario\":\"" scen "\"}"

static void test_table(void)
{
	char keyf[] = "/tmp/igtest-cskey.XXXXXX";
	struct pol_crowdsec conf = { .lapi = "http://127.0.0.1:9", .update_ns = 10 * S,
				     .scopes = POL_CS_SCOPE_IP | POL_CS_SCOPE_RANGE };
	const struct cs_hooks hooks = { .ban = fake_ban, .unban = fake_unban,
					.is_allowed = fake_allowed, .own_bans = fake_own };
	struct crowdsec *cs = NULL;
	int fd = mkstemp(keyf), epfd = epoll_create1(0);
	json_t *st;

	if (!ASSERT_TRUE(fd >= 0 && epfd >= 0, "setup"))
		return;
	ASSERT_EQ(write(fd, "abcDEF0123456789\n", 17), 17, "key");
	close(fd);
	strcpy(conf.api_key_file, keyf);
	if (!ASSERT_OK(crowdsec_open(&cs, &conf, &hooks, epfd), "open"))
		goto out;

	/* Startup: two decisions on one address, a range, a refused one, an
	 * allow-listed one. */
	ASSERT_OK(FEED(cs, "{\"new\":[" D(1, "Ip", "198.18.0.5", "1h", "a") "," D(2, "Ip", "198.18.0.5",
		       "3h", "b") "," D(3, "Range", "198.18.1.0/24", "2h", "c") "," D(4, "Ip",
		       "198.18.0.6", "-1s", "d") "," D(5, "Ip", "198.18.9.9", "1h", "e") "],"
		       "\"deleted\":null}", true), "startup");
	ASSERT_TRUE(banned("198.18.0.5"), "ip banned");
	ASSERT_TRUE(banned("198.18.1.0/24"), "range banned");
	ASSERT_TRUE(!banned("198.18.0.6"), "expired not banned");
	ASSERT_TRUE(!banned("198.18.9.9"), "allow-listed not banned");
	ASSERT_TRUE(ttl_of("198.18.0.5") > 2 * 3600 * S, "longest decision holds the ban");
	ASSERT_STREQ(fake_find(&(struct ig_prefix){ .addr = { [10] = 0xff, [11] = 0xff, 198, 18, 0, 5 },
						   .plen = 128 })->reason, "crowdsec/b", "its reason");

	/* Deleting the longer one keeps the address banned by the other, for
	 * the other's time. */
	ASSERT_OK(FEED(cs, "{\"new\":null,\"deleted\":[" D(2, "Ip", "198.18.0.5", "-1ms", "b") "]}",
		       false), "delete one of two");
	ASSERT_TRUE(banned("198.18.0.5"), "still banned by the other");
	ASSERT_TRUE(ttl_of("198.18.0.5") <= 3600 * S, "now for the other's time");
	ASSERT_OK(FEED(cs, "{\"new\":null,\"deleted\":[" D(1, "Ip", "198.18.0.5", "-1ms", "a") "]}",
		       false), "delete the other");
	ASSERT_TRUE(!banned("198.18.0.5"), "lifted");
	/* A deletion of an unknown id changes nothing. */
	ASSERT_OK(FEED(cs, "{\"deleted\":[" D(99, "Range", "198.18.1.0/24", "-1ms", "c") "]}", false),
		  "unknown id");
	ASSERT_TRUE(banned("198.18.1.0/24"), "range stays");

	/* Not a stream answer: nothing applied. */
	ASSERT_EQ(FEED(cs, "{\"new\":{}}", false), -EBADMSG, "bad shape");
	ASSERT_EQ(FEED(cs, "[]", false), -EBADMSG, "array");
	ASSERT_EQ(FEED(cs, "{\"new\":[]} x", false), -EBADMSG, "trailing garbage");
	ASSERT_EQ(FEED(cs, "{\"new\":null,\"new\":[]}", false), -EBADMSG, "duplicate key");

	/* A new decision comes while we hold a ban of our own origin... then a
	 * full resync without the range: the range is lifted, the new one kept. */
	ASSERT_OK(FEED(cs, "{\"new\":[" D(6, "Ip", "2001:db8::7", "30m", "f") "]}", false), "v6");
	ASSERT_TRUE(banned("2001:db8::7"), "v6 banned");
	ASSERT_OK(FEED(cs, "{\"new\":[" D(6, "Ip", "2001:db8::7", "29m", "f") "],\"deleted\":null}",
		       true), "resync");
	ASSERT_TRUE(!banned("198.18.1.0/24"), "resync lifted the range LAPI no longer has");
	ASSERT_TRUE(banned("2001:db8::7"), "resync kept the current one");

	st = crowdsec_status_json(cs);
	ASSERT_EQ(json_integer_value(json_object_get(st, "decisions")), 1, "status decisions");
	ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "refused"), "duration")), 1,
		  "status refused duration");
	ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "refused"), "allowed")), 1,
		  "status refused allowed");
	json_decref(st);
out:
	crowdsec_close(cs);
	close(epfd);
	unlink(keyf);
}

int main(void)
{
	log_set_level(LL_WARN);
	RUN_CASE("crowdsec go durations", test_durations());
	RUN_CASE("crowdsec decision validation", test_validation());
	RUN_CASE("crowdsec reason and filters", test_reason_and_filters());
	RUN_CASE("crowdsec decision table", test_table());
	return test_cases_failed != 0;
}
