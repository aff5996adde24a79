// SPDX-License-Identifier: GPL-2.0
/*
 * Validation of what comes out of Redis: ban stream entries and ban key
 * values. Pure functions (no Redis, no maps), fuzzed by tests/fuzz/fuzz_fleet.c.
 * A Redis that anyone else can write to must not be able to ban the world,
 * an allow-listed address, or for longer than a ban may last.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "base/addr.h"
#include "daemon/fleet.h"

static const char *const refusal_names[FLEET_R_MAX] = {
	[FLEET_OK] = "ok", [FLEET_R_MALFORMED] = "malformed", [FLEET_R_SIZE] = "size",
	[FLEET_R_ADDRESS] = "address", [FLEET_R_PREFIX] = "prefix",
	[FLEET_R_ALLOWED] = "allowed", [FLEET_R_EXPIRY] = "expiry",
};

const char *fleet_refusal_name(int r)
{
	return r >= 0 && r < FLEET_R_MAX ? refusal_names[r] : "?";
}

enum { F_V, F_OP, F_CIDR, F_EXP, F_TTL, F_LEVEL, F_REASON, F_NODE, F_MAX };
static const char *const field_names[F_MAX] = { "v", "op", "cidr", "exp", "ttl", "level",
						"reason", "node" };
/* Fields a del entry needs; an add needs them all. */
#define DEL_NEEDS	(1u << F_V | 1u << F_OP | 1u << F_CIDR | 1u << F_NODE)

/* A decimal of at most 15 digits (ms for 30000 years): no sign, no blanks. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (!n || n > 15)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static bool in_set(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

static int check_cidr(const char *s, size_t n, const struct fleet_check *c, struct ig_prefix *p)
{
	struct ig_prefix v4;
	char buf[ADDR_STRLEN];

	if (n >= sizeof(buf))
		return FLEET_R_SIZE;
	/* addr_parse() reads a C string: only the characters of an address
	 * may reach it (no NUL that would cut the field short). */
	if (!n || !in_set(s, n, "0123456789abcdefABCDEF.:/"))
		return FLEET_R_ADDRESS;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (addr_parse(buf, p, false))
		return FLEET_R_ADDRESS;
	if (p->plen >= IG_V4_PLEN_OFF && addr_is_v4(p->addr))
		return p->plen - IG_V4_PLEN_OFF < c->min_plen4 ? FLEET_R_PREFIX : FLEET_OK;
	/* An IPv6 prefix that holds ::ffff:0:0/96 holds all of IPv4 (::/32
	 * would pass the IPv6 bound). */
	memset(v4.addr, 0, 10);
	memset(v4.addr + 10, 0xff, 2);
	memset(v4.addr + 12, 0, 4);
	addr_mask(v4.addr, p->plen);
	if (p->plen < c->min_plen6 || !memcmp(v4.addr, p->addr, 16))
		return FLEET_R_PREFIX;
	return FLEET_OK;
}

int fleet_entry_parse(const struct fleet_field *f, size_t n, const struct fleet_check *c,
		      struct fleet_ban *out)
{
	const struct fleet_field *by[F_MAX] = {};
	uint32_t have = 0;
	uint64_t v;
	int r, i;

	memset(out, 0, sizeof(*out));
	if (n > FLEET_FIELDS_MAX)
		return FLEET_R_SIZE;
	for (size_t k = 0; k < n; k++) {
		for (i = 0; i < F_MAX; i++)
			if (f[k].name_len == strlen(field_names[i]) &&
			    !memcmp(f[k].name, field_names[i], f[k].name_len))
				break;
		if (i == F_MAX || (have & 1u << i))
			return FLEET_R_MALFORMED;
		have |= 1u << i;
		by[i] = &f[k];
	}
	if ((have & DEL_NEEDS) != DEL_NEEDS || by[F_V]->val_len != 1 || by[F_V]->val[0] != '1')
		return FLEET_R_MALFORMED;
	if (by[F_OP]->val_len == 3 && !memcmp(by[F_OP]->val, "del", 3))
		out->del = true;
	else if (by[F_OP]->val_len != 3 || memcmp(by[F_OP]->val, "add", 3))
		return FLEET_R_MALFORMED;
	if (!out->del && have != (1u << F_MAX) - 1)
		return FLEET_R_MALFORMED;
	if (by[F_NODE]->val_len >= sizeof(out->node) || !by[F_NODE]->val_len ||
	    !in_set(by[F_NODE]->val, by[F_NODE]->val_len, NAME_CHARS))
		return FLEET_R_SIZE;
	memcpy(out->node, by[F_NODE]->val, by[F_NODE]->val_len);
	if ((r = check_cidr(by[F_CIDR]->val, by[F_CIDR]->val_len, c, &out->prefix)))
		return r;
	if (out->del)
		return FLEET_OK;
	if (by[F_REASON]->val_len >= sizeof(out->reason) ||
	    !printable(by[F_REASON]->val, by[F_REASON]->val_len))
		return FLEET_R_SIZE;
	memcpy(out->reason, by[F_REASON]->val, by[F_REASON]->val_len);
	if (parse_u64(by[F_LEVEL]->val, by[F_LEVEL]->val_len, &v) || v > 1000)
		return FLEET_R_MALFORMED;
	out->level = (uint32_t)v;
	if (parse_u64(by[F_TTL]->val, by[F_TTL]->val_len, &out->ttl_ms) ||
	    parse_u64(by[F_EXP]->val, by[F_EXP]->val_len, &out->exp_ms))
		return FLEET_R_MALFORMED;
	/* Over already, or longer than any ban may last from now. */
	if (out->ttl_ms > c->max_ttl_ms ||
	    (out->exp_ms && (out->exp_ms <= c->now_ms || out->exp_ms - c->now_ms > c->max_ttl_ms)))
		return FLEET_R_EXPIRY;
	return FLEET_OK;
}

int fleet_value_parse(const char *json, size_t len, const struct fleet_check *c,
		      struct fleet_ban *out)
{
	struct fleet_field f[FLEET_FIELDS_MAX];
	const char *key;
	json_t *o, *val;
	size_t n = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > FLEET_VALUE_MAX)
		return FLEET_R_SIZE;
	o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return FLEET_R_MALFORMED;
	}
	json_object_foreach(o, key, val) {
		if (n == FLEET_FIELDS_MAX || !json_is_string(val)) {
			json_decref(o);
			return n == FLEET_FIELDS_MAX ? FLEET_R_SIZE : FLEET_R_MALFORMED;
		}
		f[n++] = (struct fleet_field){ key, json_string_value(val), strlen(key),
					       json_string_length(val) };
	}
	r = fleet_entry_parse(f, n, c, out);
	json_decref(o);
	return r;
}

json_t *fleet_ban_json(const struct fleet_ban *b)
{
	char a[ADDR_STRLEN], exp[24], ttl[24], level[12];

	addr_format(&b->prefix, a);
	snprintf(exp, sizeof(exp), "%llu", (unsigned long long)b->exp_ms);
	snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)b->ttl_ms);
	snprintf(level, sizeof(level), "%u", b->level);
	if (b->del)
		return json_pack("{s:s, s:s, s:s, s:s}", "v", "1", "op", "del", "cidr", a,
				 "node", b->node);
	/* The reason is ours but may hold anything a CLI user typed: jansson
	 * refuses invalid UTF-8, and the reader refuses non-ASCII. */
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "v", "1", "op", "add",
			 "cidr", a, "exp", exp, "ttl", ttl, "level", level, "reason",
			 printable(b->reason, strlen(b->reason)) ? b->reason : "?",
			 "node", b->node);
}
