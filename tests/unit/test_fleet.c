// SPDX-License-Identifier: GPL-2.0
/*
 * The fleet's validation of what Redis hands back (daemon/fleet_entry.c):
 * table-driven stream entries, ban key values, and the JSON a node writes
 * read back by another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "daemon/fleet.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

#define NOW	1800000000000ULL	/* wall ms of the checks */
#define DAY	86400000ULL

static const struct fleet_check chk = {
	.min_plen4 = 16, .min_plen6 = 32, .now_ms = NOW, .max_ttl_ms = 365 * DAY,
};

/* "name=value|name=value|..." -> fields (values may hold '=' but not '|'). */
static size_t split(char *s, struct fleet_field *f, size_t max)
{
	size_t n = 0;

	for (char *tok = strtok(s, "|"); tok && n < max; tok = strtok(NULL, "|")) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue;
		f[n++] = (struct fleet_field){ tok, eq + 1, (size_t)(eq - tok), strlen(eq + 1) };
	}
	return n;
}

#define ADD(cidr, extra) "v=1|op=add|cidr=" cidr "|exp=1800000060000|ttl=60000|level=0|reason=r|node=n" extra

static const struct {
	const char *name, *entry;
	int want;
} rows[] = {
	{ "add v4", ADD("198.18.0.7", ""), FLEET_OK },
	{ "add v6 /64", ADD("2001:db8:1:2::/64", ""), FLEET_OK },
	{ "add v4 /16 is the bound", ADD("198.18.0.0/16", ""), FLEET_OK },
	{ "add v6 /32 is the bound", ADD("2001:db8::/32", ""), FLEET_OK },
	{ "del needs no exp", "v=1|op=del|cidr=198.18.0.7|node=n", FLEET_OK },
	{ "permanent", "v=1|op=add|cidr=198.18.0.7|exp=0|ttl=0|level=3|reason=r|node=n", FLEET_OK },
	{ "0.0.0.0/0", ADD("0.0.0.0/0", ""), FLEET_R_PREFIX },
	{ "v4 /15", ADD("198.18.0.0/15", ""), FLEET_R_PREFIX },
	{ "::/0", ADD("::/0", ""), FLEET_R_PREFIX },
	{ "v6 /31", ADD("2001:db8::/31", ""), FLEET_R_PREFIX },
	{ "::/32 holds all of IPv4", ADD("::/32", ""), FLEET_R_PREFIX },
	{ "::ffff:0:0/96 is IPv4 /0", ADD("::ffff:0:0/96", ""), FLEET_R_PREFIX },
	{ "::ffc0:0:0/90 holds all of IPv4", ADD("::ffc0:0:0/90", ""), FLEET_R_PREFIX },
	{ "::ffff:0:0/90 has host bits", ADD("::ffff:0:0/90", ""), FLEET_R_ADDRESS },
	{ "del of 0.0.0.0/0", "v=1|op=del|cidr=0.0.0.0/0|node=n", FLEET_R_PREFIX },
	{ "host bits", ADD("198.18.0.7/24", ""), FLEET_R_ADDRESS },
	{ "/33", ADD("198.18.0.1/33", ""), FLEET_R_ADDRESS },
	{ "not an address", ADD("evil", ""), FLEET_R_ADDRESS },
	{ "blank in cidr", ADD("198.18.0.7 ", ""), FLEET_R_ADDRESS },
	{ "empty cidr", ADD("", ""), FLEET_R_ADDRESS },
	{ "long cidr", ADD("1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd/128", ""),
	  FLEET_R_SIZE },
	{ "unknown field", ADD("198.18.0.7", "|x=1"), FLEET_R_MALFORMED },
	{ "repeated field", ADD("198.18.0.7", "|cidr=198.18.0.8"), FLEET_R_MALFORMED },
	{ "version 2", "v=2|op=del|cidr=198.18.0.7|node=n", FLEET_R_MALFORMED },
	{ "no version", "op=del|cidr=198.18.0.7|node=n", FLEET_R_MALFORMED },
	{ "bad op", "v=1|op=ban|cidr=198.18.0.7|node=n", FLEET_R_MALFORMED },
	{ "add without exp", "v=1|op=add|cidr=198.18.0.7|ttl=1|level=0|reason=r|node=n",
	  FLEET_R_MALFORMED },
	{ "garbage", "garbage=yes", FLEET_R_MALFORMED },
	{ "nothing", "", FLEET_R_MALFORMED },
	{ "negative exp", "v=1|op=add|cidr=198.18.0.7|exp=-1|ttl=0|level=0|reason=r|node=n",
	  FLEET_R_MALFORMED },
	{ "exp with blank", "v=1|op=add|cidr=198.18.0.7|exp= 1|ttl=0|level=0|reason=r|node=n",
	  FLEET_R_MALFORMED },
	{ "huge exp digits", "v=1|op=add|cidr=198.18.0.7|exp=99999999999999999999|ttl=0|level=0|"
	  "reason=r|node=n", FLEET_R_MALFORMED },
	{ "level too high", "v=1|op=add|cidr=198.18.0.7|exp=0|ttl=0|level=1001|reason=r|node=n",
	  FLEET_R_MALFORMED },
	{ "expired", "v=1|op=add|cidr=198.18.0.7|exp=1799999999999|ttl=0|level=0|reason=r|node=n",
	  FLEET_R_EXPIRY },
	{ "ends now", "v=1|op=add|cidr=198.18.0.7|exp=1800000000000|ttl=0|level=0|reason=r|node=n",
	  FLEET_R_EXPIRY },
	{ "beyond a year", "v=1|op=add|cidr=198.18.0.7|exp=1831536000001|ttl=0|level=0|reason=r|"
	  "node=n", FLEET_R_EXPIRY },
	{ "ttl beyond a year", "v=1|op=add|cidr=198.18.0.7|exp=0|ttl=31536000001|level=0|reason=r|"
	  "node=n", FLEET_R_EXPIRY },
	{ "reason 39 bytes", "v=1|op=add|cidr=198.18.0.7|exp=0|ttl=0|level=0|"
	  "reason=123456789012345678901234567890123456789|node=n", FLEET_OK },
	{ "reason 40 bytes", "v=1|op=add|cidr=198.18.0.7|exp=0|ttl=0|level=0|"
	  "reason=1234567890123456789012345678901234567890|node=n", FLEET_R_SIZE },
	{ "reason with escape", "v=1|op=add|cidr=198.18.0.7|exp=0|ttl=0|level=0|reason=a\033[2J|"
	  "node=n", FLEET_R_SIZE },
	{ "reason non-ASCII", "v=1|op=add|cidr=198.18.0.7|exp=0|ttl=0|level=0|reason=\xc3\xa9|"
	  "node=n", FLEET_R_SIZE },
	{ "node with colon", "v=1|op=del|cidr=198.18.0.7|node=a:b", FLEET_R_SIZE },
	{ "empty node", "v=1|op=del|cidr=198.18.0.7|node=", FLEET_R_SIZE },
	{ "node 64 bytes", "v=1|op=del|cidr=198.18.0.7|"
	  "node=1234567890123456789012345678901234567890123456789012345678901234", FLEET_R_SIZE },
};

static void entry_rows(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct fleet_field f[FLEET_FIELDS_MAX + 1];
		struct fleet_ban b;
		char *s = strdup(rows[i].entry);
		size_t n = split(s, f, FLEET_FIELDS_MAX + 1);

		ASSERT_EQ(fleet_entry_parse(f, n, &chk, &b), rows[i].want, rows[i].name);
		free(s);
	}
}

static void entry_values(void)
{
	struct fleet_field f[FLEET_FIELDS_MAX];
	char s[] = "v=1|op=add|cidr=2001:db8::/64|exp=1800000060000|ttl=60000|level=2|"
		   "reason=authlog brute f=5|node=mail-1.example";
	struct fleet_ban b;
	char a[ADDR_STRLEN];
	size_t n = split(s, f, FLEET_FIELDS_MAX);

	ASSERT_OK(fleet_entry_parse(f, n, &chk, &b), "parse");
	ASSERT_STREQ(addr_format(&b.prefix, a), "2001:db8::/64", "cidr");
	ASSERT_EQ(b.del, 0, "op");
	ASSERT_EQ(b.exp_ms, 1800000060000ULL, "exp");
	ASSERT_EQ(b.ttl_ms, 60000, "ttl");
	ASSERT_EQ(b.level, 2, "level");
	ASSERT_STREQ(b.reason, "authlog brute f=5", "reason");
	ASSERT_STREQ(b.node, "mail-1.example", "node");
}

static void too_many_fields(void)
{
	struct fleet_field f[FLEET_FIELDS_MAX + 1];
	struct fleet_ban b;

	for (int i = 0; i <= FLEET_FIELDS_MAX; i++)
		f[i] = (struct fleet_field){ "v", "1", 1, 1 };
	ASSERT_EQ(fleet_entry_parse(f, FLEET_FIELDS_MAX + 1, &chk, &b), FLEET_R_SIZE, "17 fields");
}

/* A NUL inside a field (Redis strings are binary) never reaches a C parser. */
static void nul_inside(void)
{
	struct fleet_field f[8] = {
		{ "v", "1", 1, 1 }, { "op", "del", 2, 3 }, { "cidr", "198.18.0.7\0/8", 4, 13 },
		{ "node", "n", 4, 1 },
	};
	struct fleet_ban b;

	ASSERT_EQ(fleet_entry_parse(f, 4, &chk, &b), FLEET_R_ADDRESS, "NUL in cidr");
	f[2] = (struct fleet_field){ "cidr", "198.18.0.7", 4, 10 };
	f[3] = (struct fleet_field){ "node", "n\0x", 4, 3 };
	ASSERT_EQ(fleet_entry_parse(f, 4, &chk, &b), FLEET_R_SIZE, "NUL in node");
	f[3] = (struct fleet_field){ "node\0", "n", 5, 1 };
	ASSERT_EQ(fleet_entry_parse(f, 4, &chk, &b), FLEET_R_MALFORMED, "NUL in a name");
}

/* What one node writes (fleet_ban_json), another reads back unchanged. */
static void json_round_trip(void)
{
	struct fleet_ban in = { .exp_ms = NOW + 5000, .ttl_ms = 5000, .level = 1, .reason = "manual",
				.node = "a" }, out;
	json_t *j;
	char *s;

	addr_parse("198.18.4.0/24", &in.prefix, false);
	j = fleet_ban_json(&in);
	s = json_dumps(j, JSON_COMPACT);
	ASSERT_OK(fleet_value_parse(s, strlen(s), &chk, &out), "read back");
	ASSERT_TRUE(!memcmp(&in.prefix, &out.prefix, sizeof(in.prefix)), "prefix");
	ASSERT_EQ(out.exp_ms, in.exp_ms, "exp");
	ASSERT_STREQ(out.reason, "manual", "reason");
	free(s);
	json_decref(j);
	in.del = true;
	j = fleet_ban_json(&in);
	s = json_dumps(j, JSON_COMPACT);
	ASSERT_OK(fleet_value_parse(s, strlen(s), &chk, &out), "del read back");
	ASSERT_EQ(out.del, 1, "del");
	free(s);
	json_decref(j);
}

static void bad_values(void)
{
	static const struct {
		const char *json;
		int want;
	} v[] = {
		{ "", FLEET_R_MALFORMED },
		{ "[]", FLEET_R_MALFORMED },
		{ "{\"v\":1,\"op\":\"del\",\"cidr\":\"198.18.0.7\",\"node\":\"n\"}", FLEET_R_MALFORMED },
		{ "{\"v\":\"1\",\"op\":\"del\",\"op\":\"del\",\"cidr\":\"198.18.0.7\",\"node\":\"n\"}",
		  FLEET_R_MALFORMED },
		{ "{\"v\":\"1\",\"op\":\"add\",\"cidr\":\"0.0.0.0/0\",\"exp\":\"0\",\"ttl\":\"0\","
		  "\"level\":\"0\",\"reason\":\"x\",\"node\":\"evil\"}", FLEET_R_PREFIX },
		{ "{\"v\":\"1\",\"op\":\"del\",\"cidr\":\"198.18.0.7\",\"node\":\"n\"} x", FLEET_R_MALFORMED },
	};
	struct fleet_ban b;
	char big[FLEET_VALUE_MAX + 2];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		ASSERT_EQ(fleet_value_parse(v[i].json, strlen(v[i].json), &chk, &b), v[i].want, v[i].json);
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 1] = '}';
	ASSERT_EQ(fleet_value_parse(big, sizeof(big), &chk, &b), FLEET_R_SIZE, "over the cap");
}

/* Redis away: updates queue up to queue_max, the rest are dropped and
 * counted, and nothing waits (the connect to a missing socket fails at once
 * and is retried later). */
static int no_ban(void *ctx, const struct fleet_ban *b) { (void)ctx; (void)b; return 0; }
static int no_unban(void *ctx, const struct ig_prefix *p) { (void)ctx; (void)p; return 0; }
static bool no_allow(void *ctx, const struct ig_prefix *p) { (void)ctx; (void)p; return false; }

static void queue_bound(void)
{
	struct pol_fleet pol = { .redis = "unix:/nonexistent/imapguard-test.sock", .prefix = "t",
				 .node = "n", .share_bans = true, .share_failures = true,
				 .min_plen4 = 16, .min_plen6 = 32, .queue_max = 16,
				 .stream_max = 1000 };
	struct pol_detect det = { .window_ns = 600000000000ULL, .v6_plen = 64 };
	struct fleet_hooks h = { .ban = no_ban, .unban = no_unban, .is_allowed = no_allow };
	struct fleet_ban b = { .exp_ms = 0, .reason = "r" };
	uint8_t addr[16] = { [10] = 0xff, [11] = 0xff, [12] = 198, [13] = 18, [15] = 1 };
	struct fleet *f = NULL;
	json_t *st;
	int ep = epoll_create1(0);

	if (!ASSERT_OK(fleet_open(&f, &pol, &det, &h, ep), "open"))
		return;
	fleet_tick(f);		/* tries to connect: fails at once */
	for (int i = 0; i < 20; i++)
		fleet_failure(f, addr, "u", 1);
	addr_parse("198.18.0.0/24", &b.prefix, false);
	fleet_publish(f, &b);
	st = fleet_status_json(f);
	ASSERT_EQ(json_is_false(json_object_get(st, "connected")), 1, "not connected");
	ASSERT_EQ(json_integer_value(json_object_get(st, "queue")), 16, "queue full");
	ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "dropped"), "failure")), 4,
		  "failures dropped");
	ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "dropped"), "ban")), 1,
		  "ban dropped");
	json_decref(st);
	fleet_close(f);
	close(ep);
}

int main(void)
{
	RUN_CASE("fleet entries: table", entry_rows());
	RUN_CASE("fleet entries: values kept", entry_values());
	RUN_CASE("fleet entries: too many fields", too_many_fields());
	RUN_CASE("fleet entries: NUL bytes", nul_inside());
	RUN_CASE("fleet values: JSON round trip", json_round_trip());
	RUN_CASE("fleet values: refused", bad_values());
	RUN_CASE("fleet queue: bounded, drops counted, never waits", queue_bound());
	return test_cases_failed != 0;
}
