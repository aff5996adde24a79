// SPDX-License-Identifier: GPL-2.0
/*
 * authwatch's JSON (authlog/ alone): the event objects `imapguard events`
 * shows and the status and why parts of the daemon's replies. Each is read
 * back with jansson, which refuses invalid UTF-8 as strictly as python3's
 * json.loads, so "parses" here means "any consumer can read it".
 */
#include <stdlib.h>
#include <string.h>
#include "authlog/authwatch.h"
#include "authlog/detector.h"
#include "base/json.h"
#include "base/text.h"
#include "policy/policy.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

#define SEC 1000000000ULL

/* j dumped as the daemon sends it, then parsed back; NULL if that fails. */
static json_t *round_trip(json_t *j)
{
	char *s = json_take_string(j);
	json_error_t err;
	json_t *back;

	if (!ASSERT_OK_PTR(s, "dumped"))
		return NULL;
	ASSERT_TRUE(strchr(s, '\n') == NULL, "one line");
	back = json_parse_object(s, strlen(s), &err);
	if (!back)
		fprintf(stderr, "  %s: %s\n", err.text, s);
	free(s);
	return back;
}

/* A user name is attacker-chosen: an invalid byte in it must not make the
 * event invalid JSON (U+FFFD replaces it), quotes and controls are escaped. */
static void test_account_event_bad_utf8(void)
{
	struct det_event ev = { .kind = DET_EV_ACCOUNT, .user = "bad\xff\"q\\\x01\xc3",
				.users = 12, .window_ns = 600 * SEC };
	const char *user = NULL, *type = NULL;
	json_int_t sources = 0, window = 0;
	double ts = 0;
	json_t *j = round_trip(authwatch_event_json(&ev, 1763872201123456789ULL));

	if (!ASSERT_OK_PTR(j, "account event parses"))
		return;
	ASSERT_OK(json_unpack(j, "{s:F, s:s, s:s, s:I, s:I}", "ts", &ts, "type", &type, "user",
			      &user, "sources", &sources, "window_s", &window), "fields");
	ASSERT_STREQ(type, "account", "type");
	ASSERT_STREQ(user, "bad" UTF8_REPLACEMENT "\"q\\\x01" UTF8_REPLACEMENT,
		     "invalid bytes replaced, the rest intact");
	ASSERT_EQ(sources, 12, "sources");
	ASSERT_EQ(window, 600, "window_s");
	ASSERT_EQ((long long)(ts * 1000 + 0.5), 1763872201123LL, "ts in ms");
	json_decref(j);

	ev.user = NULL;		/* unknown user: "" */
	j = round_trip(authwatch_event_json(&ev, 1));
	ASSERT_TRUE(j && !json_unpack(j, "{s:s}", "user", &user) && !strcmp(user, ""),
		    "no user is \"\"");
	json_decref(j);
}

static void test_ban_event(void)
{
	struct det_event ev = { .kind = DET_EV_BAN, .rule = "spray", .failures = 7, .users = 5,
				.window_ns = 60 * SEC, .duration_ns = 3600 * SEC, .repeat = 2,
				.extend = true };
	const char *type = NULL, *rule = NULL, *addr = NULL;
	json_int_t f = 0, u = 0, w = 0, d = 0, r = 0;
	int extend = 0, dry = 1;
	json_t *j;

	addr_parse("2001:db8::/64", &ev.prefix, false);
	j = round_trip(authwatch_event_json(&ev, 5 * SEC));
	if (!ASSERT_OK_PTR(j, "ban event parses"))
		return;
	ASSERT_OK(json_unpack(j, "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:b}", "type",
			      &type, "rule", &rule, "addr", &addr, "failures", &f, "users", &u,
			      "window_s", &w, "duration_s", &d, "repeat", &r, "extend", &extend,
			      "dry_run", &dry), "fields and types");
	ASSERT_STREQ(type, "ban", "type");
	ASSERT_STREQ(rule, "spray", "rule");
	ASSERT_STREQ(addr, "2001:db8::/64", "addr");
	ASSERT_TRUE(f == 7 && u == 5 && w == 60 && d == 3600 && r == 2, "numbers");
	ASSERT_TRUE(extend && !dry, "booleans");
	ASSERT_TRUE(json_is_real(json_object_get(j, "ts")), "ts is a real");
	json_decref(j);
}

static bool no_allow(void *ctx, const struct ig_prefix *p)
{
	(void)ctx, (void)p;
	return false;
}

/* The status and why parts, from an authwatch that has not started: the
 * configured sources show up closed, with their names. */
static void test_status_and_why(void)
{
	struct aw_hooks hooks = { .is_allowed = no_allow };
	struct authwatch *aw = NULL;
	static struct policy pol;	/* ~50 KB: keep it off the stack */
	const char *name = NULL, *why = NULL;
	json_int_t lines = -1;
	int open = 1;
	uint8_t a[16];
	json_t *j;

	policy_init(&pol);
	pol.nauthlogs = 1;
	snprintf(pol.authlogs[0].name, sizeof(pol.authlogs[0].name), "mail\"log\xfe");
	snprintf(pol.authlogs[0].path, sizeof(pol.authlogs[0].path), "/var/log/mail.log");
	if (!ASSERT_OK(authwatch_open(&aw, &hooks, &pol, -1), "open"))
		goto out;
	j = round_trip(json_pack("{s:o}", "authlog", authwatch_status_json(aw)));
	if (ASSERT_OK_PTR(j, "status part parses")) {
		ASSERT_OK(json_unpack(j, "{s:{s:I, s:[{s:s, s:b}]}}", "authlog", "lines", &lines,
				      "sources", "name", &name, "open", &open), "fields");
		ASSERT_EQ(lines, 0, "no lines yet");
		ASSERT_STREQ(name, "mail\"log" UTF8_REPLACEMENT, "source name");
		ASSERT_EQ(open, 0, "not open before start");
		json_decref(j);
	}
	addr_parse_host("198.18.0.7", 10, a);
	j = round_trip(json_pack("{s:o}", "detector", authwatch_why_json(aw, a)));
	if (ASSERT_OK_PTR(j, "why part parses")) {
		ASSERT_OK(json_unpack(j, "{s:s}", "detector", &why), "detector is a string");
		ASSERT_TRUE(why && strstr(why, "198.18.0.7: 0 failure(s)"), "explains the address");
		json_decref(j);
	}
out:
	authwatch_close(aw);
	policy_free(&pol);
}

int main(void)
{
	RUN_CASE("authwatch account event with invalid UTF-8", test_account_event_bad_utf8());
	RUN_CASE("authwatch ban event", test_ban_event());
	RUN_CASE("authwatch status and why JSON", test_status_and_why());
	return test_cases_failed != 0;
}
