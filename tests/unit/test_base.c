// SPDX-License-Identifier: GPL-2.0
/*
 * base/ alone: UTF-8 validation and cleaning (text.c) and the JSON helpers
 * (json.c). Linked against libig_base.a only, which proves base/ needs
 * nothing from the layers above it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/hash.h"
#include "base/json.h"
#include "base/log.h"
#include "base/prom.h"
#include "base/state.h"
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
			ASSERT_STREQ(msg, "user <bad" UTF8_REPLACEMENT "\"q\\?> from 198.18.0.1",
				     "invalid byte replaced, control shown as '?', the rest intact");
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

/* What pr_warn writes, caught by swapping stderr for a memory stream. */
static char *logged(int json, const char *msg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len), *saved = stderr;

	if (!f)
		return NULL;
	stderr = f;
	log_set_json(json);
	pr_warn("%s", msg);
	log_set_json(0);
	stderr = saved;
	fclose(f);
	return buf;
}

/* Found by fuzz_policy: a policy line's bytes (here an OSC title, a C1 CSI,
 * an invalid byte and a newline that forges a second line) reached the
 * terminal through the error message. */
static void test_log_clean(void)
{
	static const char evil[] = "unknown key '\x1b]0;pwned\x07\xc2\x9b" "31m\xff'\nimapguard: forged";
	static const char shown[] = "unknown key '?]0;pwned??31m" UTF8_REPLACEMENT "'?imapguard: forged";
	char *out = logged(0, evil), want[128];
	json_t *j;

	snprintf(want, sizeof(want), "imapguard: %s\n", shown);
	ASSERT_STREQ(out, want, "text log line");
	free(out);
	out = logged(1, evil);
	j = out && *out ? json_parse_object(out, strlen(out) - 1, NULL) : NULL;
	if (ASSERT_OK_PTR(j, "JSON log line is valid JSON"))
		ASSERT_STREQ(json_string_value(json_object_get(j, "msg")), shown, "JSON log message");
	json_decref(j);
	free(out);
}

/* Records for state_save(): a NULL-terminated list. */
static int put_records(void *ctx, FILE *f)
{
	int err = 0;

	for (const char *const *r = ctx; *r && !err; r++)
		err = state_put(f, "%s", *r);
	return err;
}

static int count_record(void *ctx, char *line)
{
	(void)line;
	++*(int *)ctx;
	return 0;
}

/* state_load() moves a refused file to PATH.corrupt-<time>. */
static void remove_aside(const char *path)
{
	char aside[128];

	for (long t = time(NULL) - 5; t <= time(NULL); t++) {
		snprintf(aside, sizeof(aside), "%s.corrupt-%ld", path, t);
		unlink(aside);
	}
}

/* Found by fuzz_state: state_put() took a record starting with "end ", and
 * state_load() then refused the whole file it was written to (and, below,
 * took a damaged end line). */
static void test_state_end_line(void)
{
	static const char *const good[] = { "ban 198.18.0.1 0 1 x", "endless", "", NULL };
	static const char *const bad[] = { "ban 198.18.0.2 0 1 x", "end 0 cbf29ce484222325", NULL };
	char dir[] = "/tmp/igtest-state.XXXXXX", path[64], aside[96], text[256], *hash;
	size_t len, head;
	int n = 0;
	FILE *f;

	if (!ASSERT_OK_PTR(mkdtemp(dir), "mkdtemp"))
		return;
	snprintf(path, sizeof(path), "%s/state", dir);
	ASSERT_OK(state_save(path, put_records, (void *)good), "save");
	ASSERT_OK(state_load(path, count_record, &n), "load");
	ASSERT_EQ(n, 3, "records loaded");
	ASSERT_EQ(state_save(path, put_records, (void *)bad), -EINVAL, "an \"end \" record refused");
	remove_aside(path);
	n = 0;
	ASSERT_OK(state_load(path, count_record, &n), "the last good file stays");
	ASSERT_EQ(n, 3, "its records");
	/* Found by fuzz_state: the end line was read with sscanf(), which also
	 * took it with bytes after the checksum, a '+' or a "0x". */
	ASSERT_OK(state_save(path, put_records, (void *)good), "save again");
	f = fopen(path, "r");
	if (ASSERT_OK_PTR(f, "read back")) {
		len = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[len] = '\0';
		hash = strstr(text, "\nend 3 ");
		if (ASSERT_OK_PTR(hash, "end line")) {
			head = hash + 1 - text;
			hash += 7;
			hash[16] = '\0';
			for (int i = 0; i < 3; i++) {
				static const char *const fmt[] = { "end 3 %sx\n", "end +3 %s\n", "end 3 0x%s\n" };
				static const char *const what[] = { "bytes after the checksum", "a '+'",
								    "a 0x" };

				f = fopen(path, "w");
				if (!ASSERT_OK_PTR(f, "rewrite"))
					break;
				fprintf(f, "%.*s", (int)head, text);
				fprintf(f, fmt[i], hash);
				fclose(f);
				n = 0;
				ASSERT_EQ(state_load(path, count_record, &n), -EBADMSG, what[i]);
				ASSERT_EQ(n, 0, "no record from a damaged file");
				remove_aside(path);
			}
		}
	}
	/* Whatever a failed run left: the file, a temp file, a moved-aside copy. */
	unlink(path);
	snprintf(aside, sizeof(aside), "%s.tmp", path);
	unlink(aside);
	remove_aside(path);
	ASSERT_OK(rmdir(dir), "temp dir removed");
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

/* The exposition lines, exactly as check_prometheus.py and scrapers read them. */
static void test_prom(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ASSERT_TRUE(f != NULL, "memstream");
	prom_u64(f, "ig_x_total", "counter", "Things seen.", 18446744073709551615ULL);
	prom_head(f, "ig_y", "gauge", "By kind.");
	prom_labelled(f, "ig_y", "kind", "a", 0);
	fclose(f);
	ASSERT_STREQ(buf, "# HELP ig_x_total Things seen.\n# TYPE ig_x_total counter\n"
		     "ig_x_total 18446744073709551615\n# HELP ig_y By kind.\n# TYPE ig_y gauge\n"
		     "ig_y{kind=\"a\"} 0\n", "lines");
	free(buf);
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
	RUN_CASE("base log lines are clean text", test_log_clean());
	RUN_CASE("base state end line", test_state_end_line());
	RUN_CASE("base durations", test_durations());
	RUN_CASE("base prometheus lines", test_prom());
	return test_cases_failed != 0;
}
