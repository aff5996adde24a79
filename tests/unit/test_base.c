// SPDX-License-Identifier: GPL-2.0
/*
 * base/ alone: UTF-8 validation and cleaning (text.c) and the JSON helpers
 * (json.c). Linked against libig_base.a only, which proves base/ needs
 * nothing from the layers above it.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/hash.h"
#include "base/json.h"
#include "base/log.h"
#include "base/text.h"
#include "base/value.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

static const struct {
	const char *name, *in;
	bool valid;
} utf8_cases[] = {
	{ "ascii", "alice", true },
	{ "two-byte", "j\xc3\xb6rg", true },
	{ "three-byte", "\xe2\x82\xac", true },
	{ "four-byte", "\xf0\x9f\x93\xa7", true },
	{ "lone continuation", "a\x80z", false },
	{ "overlong slash", "\xc0\xaf", false },
	{ "overlong three", "\xe0\x80\xaf", false },
	{ "surrogate", "\xed\xa0\x80", false },
	{ "above U+10FFFF", "\xf4\x90\x80\x80", false },
	{ "truncated", "\xe2\x82", false },
	{ "latin-1 byte", "m\xfcller", false },
	{ "0xff", "\xff", false },
};

static void test_utf8_table(void)
{
	for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		const char *s = utf8_cases[i].in;
		char out[64];

		ASSERT_EQ(utf8_valid(s, strlen(s)), utf8_cases[i].valid, utf8_cases[i].name);
		/* Cleaning always yields valid UTF-8, unchanged when it was. */
		ASSERT_EQ(utf8_clean(out, sizeof(out), s, strlen(s)) == 0, utf8_cases[i].valid,
			  utf8_cases[i].name);
		ASSERT_TRUE(utf8_valid(out, strlen(out)), utf8_cases[i].name);
	}
}

static void test_utf8_nul_and_truncation(void)
{
	char out[8];

	ASSERT_TRUE(!utf8_valid("a\0b", 3), "NUL is not valid text");
	ASSERT_EQ(utf8_clean(out, sizeof(out), "a\0b", 3), 1, "NUL replaced");
	ASSERT_STREQ(out, "a" UTF8_REPLACEMENT "b", "NUL becomes U+FFFD");
	/* "€€€" is 9 bytes: 7 fit two whole sequences, never a split one. */
	ASSERT_EQ(utf8_clean(out, sizeof(out), "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9), 0,
		  "nothing replaced");
	ASSERT_STREQ(out, "\xe2\x82\xac\xe2\x82\xac", "cut at a sequence boundary");
}

static void test_text_clean(void)
{
	char out[64];

	ASSERT_EQ(text_clean(out, sizeof(out), "a\x1b[2Jb\x7f\xc2\x9b" "1m\xc3\xa9", 13), 3,
		  "ESC, DEL and CSI replaced");
	ASSERT_STREQ(out, "a?[2Jb??1m\xc3\xa9", "no control survives, é stays");
}

static void test_json_text(void)
{
	char *s = json_take_string(json_pack("{s:o}", "user", json_text("bad\xff\"q")));
	json_error_t err;
	json_t *j;

	ASSERT_STREQ(s, "{\"user\":\"bad" UTF8_REPLACEMENT "\\\"q\"}", "escaped and replaced");
	j = s ? json_parse_object(s, strlen(s), &err) : NULL;
	ASSERT_OK_PTR(j, "own output parses");
	json_decref(j);
	free(s);
	ASSERT_TRUE(!json_parse_object("[1]", 3, &err), "an array is not an object");
	ASSERT_TRUE(!json_parse_object("{\"a\":1,\"a\":2}", 13, &err), "duplicate keys refused");
	ASSERT_TRUE(!json_parse_object("{} x", 4, &err), "trailing garbage refused");
}

/* Lines --log-format json writes to stderr, read back: each is one JSON
 * object, valid UTF-8 whatever bytes the message carried, never cut. */
static void test_log_json(void)
{
	char *line = NULL, long_msg[3001];
	size_t cap = 0;
	json_error_t err;
	FILE *tmp = tmpfile();
	int saved, n = 0;
	ssize_t len;

	if (!ASSERT_OK_PTR(tmp, "tmpfile"))
		goto out;
	saved = dup(STDERR_FILENO);
	if (!ASSERT_TRUE(saved >= 0, "dup stderr"))
		goto out;
	memset(long_msg, 'x', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	log_set_json(1);
	pr_warn("user <%s> from %s", "bad\xff\"q\\\x01", "198.18.0.1");
	pr_info("%s", long_msg);
	log_set_json(0);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	while ((len = getline(&line, &cap, tmp)) > 0) {
		json_t *j = json_parse_object(line, len, &err);
		const char *msg = NULL, *level = NULL;
		double ts = 0;

		n++;
		if (!ASSERT_OK_PTR(j, "a log line is a JSON object")) {
			fprintf(stderr, "  %s: %s", err.text, line);
			continue;
		}
		ASSERT_OK(json_unpack(j, "{s:F, s:s, s:s}", "ts", &ts, "level", &level, "msg", &msg),
			  "ts, level, msg");
		ASSERT_TRUE(ts > 1e9, "ts in seconds since the epoch");
		if (n == 1) {
			ASSERT_STREQ(level, "warn", "level");
			ASSERT_STREQ(msg, "user <bad" UTF8_REPLACEMENT "\"q\\\x01> from 198.18.0.1",
				     "invalid byte replaced, the rest intact");
		} else {
			ASSERT_STREQ(level, "info", "level");
			ASSERT_STREQ(msg, long_msg, "a long message is not cut");
		}
		json_decref(j);
	}
	ASSERT_EQ(n, 2, "two lines");
out:
	free(line);
	if (tmp)
		fclose(tmp);
}

/* json_fixed: a decimal that prints as written, and stays a real. */
static void test_json_fixed(void)
{
	char *s = json_take_string(json_pack("{s:o, s:o, s:o, s:o}", "ts",
					     json_fixed(1763872201.1234, 3), "left",
					     json_fixed(599.96, 1), "zero", json_fixed(0, 1),
					     "neg", json_fixed(-2.25, 1)));

	ASSERT_STREQ(s, "{\"ts\":1763872201.123,\"left\":600.0,\"zero\":0.0,\"neg\":-2.3}",
		     "rounded, printed as decimals");
	free(s);
}

static void test_durations(void)
{
	uint64_t ns;

	ASSERT_OK(parse_duration_ns("1h30m", &ns), "1h30m");
	ASSERT_EQ(ns, 5400 * NS_PER_SEC, "1h30m in ns");
	ASSERT_TRUE(parse_duration_ns("-1", &ns) != 0, "no sign");
	ASSERT_TRUE(parse_duration_ns("99999999999w", &ns) != 0, "overflow refused");
}

/* Test vector from the SipHash paper (appendix A): key 00..0f, message
 * 00..0e, SipHash-2-4 = 0xa129ca6149be45e5. */
static void test_siphash_vector(void)
{
	uint8_t key[HASH_KEY_LEN], msg[15];
	struct hasher *h, *r1, *r2;

	for (int i = 0; i < 16; i++)
		key[i] = i;
	for (int i = 0; i < 15; i++)
		msg[i] = i;
	h = hasher_new(key);
	if (!ASSERT_OK_PTR(h, "hasher"))
		return;
	ASSERT_EQ(hasher_sum(h, msg, sizeof(msg)), 0xa129ca6149be45e5ULL, "paper vector");
	ASSERT_EQ(hasher_sum(h, msg, sizeof(msg)), 0xa129ca6149be45e5ULL, "again, same key");
	hasher_free(h);
	ASSERT_EQ(hash_stable("x", 1), hash_stable("x", 1), "stable is stable");
	r1 = hasher_new(NULL);
	r2 = hasher_new(NULL);
	if (ASSERT_OK_PTR(r1, "random 1") && ASSERT_OK_PTR(r2, "random 2"))
		ASSERT_TRUE(hasher_sum(r1, "alice", 5) != hasher_sum(r2, "alice", 5),
			    "random keys differ");
	hasher_free(r1);
	hasher_free(r2);
}

int main(void)
{
	RUN_CASE("base siphash", test_siphash_vector());
	RUN_CASE("base utf8 table", test_utf8_table());
	RUN_CASE("base utf8 NUL and truncation", test_utf8_nul_and_truncation());
	RUN_CASE("base text_clean controls", test_text_clean());
	RUN_CASE("base json_text", test_json_text());
	RUN_CASE("base log json lines", test_log_json());
	RUN_CASE("base json_fixed", test_json_fixed());
	RUN_CASE("base durations", test_durations());
	return test_cases_failed != 0;
}
