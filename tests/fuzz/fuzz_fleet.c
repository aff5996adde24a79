// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: what a hostile Redis can hand a node (daemon/fleet_entry.c).
 * The input is read two ways: as the fields of one stream entry (each field
 * "name\x1fvalue", fields split at '\x1e': binary, NULs included, as Redis
 * strings are) for fleet_entry_parse(), and whole as a ban key's JSON value
 * for fleet_value_parse(). Besides "no crash", an accepted entry must be what
 * the daemon relies on:
 * - a known result; on FLEET_OK a prefix no shorter than fleet_min_prefix
 *   (IPv4 /16, IPv6 /32) that does not hold all of IPv4, and that formats and
 *   parses back to itself;
 * - a node of 1..63 name characters, a reason of printable ASCII only;
 * - an add that ends after now and within the longest ban, or is permanent;
 * - what one node writes for it (fleet_ban_json) another reads back the same.
 */
#include <string.h>
#include "daemon/fleet.h"
#include "fuzz.h"

#define NOW 1800000000000ULL

static const struct fleet_check chk = {
	.min_plen4 = 16, .min_plen6 = 32, .now_ms = NOW, .max_ttl_ms = 365ULL * 86400000,
};

static void check_ok(const struct fleet_ban *b)
{
	struct ig_prefix again, v4 = { .plen = 96 };
	struct fleet_ban back;
	char a[ADDR_STRLEN], *s;
	bool mapped;
	json_t *j;
	int r;

	v4.addr[10] = v4.addr[11] = 0xff;
	mapped = b->prefix.plen >= 96 && addr_is_v4(b->prefix.addr);
	FUZZ_CHECK(mapped ? b->prefix.plen >= 96 + 16 : b->prefix.plen >= 32, "plen %u", b->prefix.plen);
	FUZZ_CHECK(mapped || !addr_contains(&b->prefix, &v4), "holds all of IPv4");
	FUZZ_CHECK(!addr_parse(addr_format(&b->prefix, a), &again, false) &&
		   !memcmp(&again, &b->prefix, sizeof(again)), "prefix round trip %s", a);
	FUZZ_CHECK(b->node[0] && strlen(b->node) < sizeof(b->node) &&
		   strspn(b->node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
		   strlen(b->node), "node");
	for (const char *p = b->reason; *p; p++)
		FUZZ_CHECK(*p >= 0x20 && *p <= 0x7e, "reason byte %#x", (unsigned char)*p);
	if (!b->del)
		FUZZ_CHECK(!b->exp_ms || (b->exp_ms > NOW && b->exp_ms - NOW <= chk.max_ttl_ms),
			   "exp %llu", (unsigned long long)b->exp_ms);
	j = fleet_ban_json(b);
	FUZZ_CHECK(j, "fleet_ban_json");
	s = json_dumps(j, JSON_COMPACT);
	FUZZ_CHECK(s, "json_dumps");
	r = fleet_value_parse(s, strlen(s), &chk, &back);
	FUZZ_CHECK(r == FLEET_OK, "written value refused: %d %s", r, s);
	FUZZ_CHECK(!memcmp(&back.prefix, &b->prefix, sizeof(back.prefix)) && back.del == b->del &&
		   !strcmp(back.node, b->node) &&
		   (b->del || (back.exp_ms == b->exp_ms && back.ttl_ms == b->ttl_ms &&
			       back.level == b->level && !strcmp(back.reason, b->reason))),
		   "value round trip %s", s);
	free(s);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fleet_field f[FLEET_FIELDS_MAX + 4];
	const char *p = (const char *)data, *end = p + size;
	struct fleet_ban b;
	size_t n = 0;
	int r;

	while (p < end && n < sizeof(f) / sizeof(f[0])) {
		const char *rs = memchr(p, 0x1e, end - p), *stop = rs ? rs : end;
		const char *us = memchr(p, 0x1f, stop - p);

		f[n++] = us ? (struct fleet_field){ p, us + 1, (size_t)(us - p), (size_t)(stop - us - 1) } :
			      (struct fleet_field){ p, stop, (size_t)(stop - p), 0 };
		p = rs ? rs + 1 : end;
	}
	r = fleet_entry_parse(f, n, &chk, &b);
	FUZZ_CHECK(r >= FLEET_OK && r < FLEET_R_MAX && r != FLEET_R_ALLOWED, "result %d", r);
	if (r == FLEET_OK)
		check_ok(&b);
	r = fleet_value_parse((const char *)data, size, &chk, &b);
	FUZZ_CHECK(r >= FLEET_OK && r < FLEET_R_MAX && r != FLEET_R_ALLOWED, "value result %d", r);
	if (r == FLEET_OK)
		check_ok(&b);
	return 0;
}
