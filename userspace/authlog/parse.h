/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal to the auth-log parser: authlog.c (the entry point), prefix.c and
 * journal_json.c (what comes before the message), one file per server family
 * (dovecot.c, cyrus.c, courier.c, uwimap.c, perdition.c) and scan.c (the
 * field helpers they share). Not part of the authlog.h contract.
 *
 * Everything works on a byte range [p, e) of the line: a pointer past e is
 * never read, and no helper relies on a NUL terminator (a line may hold NUL
 * bytes and invalid UTF-8). All scans are forward or backward passes with
 * short fixed needles, so the cost is linear in the line length. The small
 * helpers are inline: they run on every byte of every line.
 */
#ifndef IMAPGUARD_AUTHLOG_PARSE_H
#define IMAPGUARD_AUTHLOG_PARSE_H
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "authlog/authlog.h"
#include "base/addr.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Where s ends if [p, e) starts with it, else NULL. A plain byte loop: the
 * needles are short literals and most probes fail on the first byte, where
 * strlen() + memcmp() calls would cost more than the compare itself.
 */
static inline const char *after(const char *p, const char *e, const char *s)
{
	for (; *s; p++, s++)
		if (p >= e || *p != *s)
			return NULL;
	return p;
}

static inline bool has(const char *p, const char *e, const char *s)
{
	return after(p, e, s);
}

static inline bool eat(const char **p, const char *e, const char *s)
{
	const char *q = after(*p, e, s);

	if (q)
		*p = q;
	return q;
}

/* First occurrence of s inside [p, e). Not memmem(): it sets up a shift
 * table on every call, which dominates on haystacks this short. */
static inline const char *find(const char *p, const char *e, const char *s)
{
	for (; p < e && (p = memchr(p, s[0], e - p)); p++)
		if (has(p, e, s))
			return p;
	return NULL;
}

/* Last occurrence of s that lies inside [p, e). */
static inline const char *rfind(const char *p, const char *e, const char *s)
{
	const char *q = e;

	while (q > p && (q = memrchr(p, s[0], q - p)))
		if (has(q, e, s))
			return q;
	return NULL;
}

/*
 * Byte classes for the span() scans, which walk most of every line: one
 * table load per byte instead of a chain of range compares. Bytes >= 0x80
 * (and NUL) belong to no class.
 */
enum {
	CC_DIGIT = 1 << 0,	/* 0-9 */
	CC_ALNUM = 1 << 1,	/* 0-9 A-Z a-z */
	CC_WORD = 1 << 2,	/* alnum _ - */
	CC_TAG = 1 << 3,	/* word . / (syslog tag) */
	CC_HOST = 1 << 4,	/* word . : */
	CC_B64 = 1 << 5,	/* alnum + / = */
	CC_NUM = 1 << 6,	/* digit . */
	CC_HEX = 1 << 7,	/* 0-9 A-F a-f */
	CC_ADDR = 1 << 8,	/* hex : . */
};

extern const uint16_t al_cclass[256];	/* scan.c */

static inline bool c_is(char c, unsigned int cls) { return al_cclass[(unsigned char)c] & cls; }
static inline bool c_digit(char c) { return c_is(c, CC_DIGIT); }
static inline bool c_alnum(char c) { return c_is(c, CC_ALNUM); }
static inline bool c_word(char c) { return c_is(c, CC_WORD); }
static inline bool c_tag(char c) { return c_is(c, CC_TAG); }
static inline bool c_host(char c) { return c_is(c, CC_HOST); }
static inline bool c_b64(char c) { return c_is(c, CC_B64); }
static inline bool c_num(char c) { return c_is(c, CC_NUM); }
static inline bool c_hex(char c) { return c_is(c, CC_HEX); }
static inline bool c_addr(char c) { return c_is(c, CC_ADDR); }

static inline const char *span(const char *p, const char *e, bool (*ok)(char))
{
	while (p < e && ok(*p))
		p++;
	return p;
}

/* The whole of [p, e) is one address. addr_parse_host() would stop at a
 * NUL and take "192.0.2.1\0junk" for 192.0.2.1: refused here. */
static inline bool get_addr(const char *p, const char *e, uint8_t out[16])
{
	return p < e && !memchr(p, '\0', e - p) && !addr_parse_host(p, e - p, out);
}

/* Decimal attempt count, at least 1 (a failure line stands for one). */
static inline uint32_t get_count(const char *p, const char *e)
{
	uint64_t n = 0;

	for (; p < e && c_digit(*p); p++)
		if ((n = n * 10 + (*p - '0')) > UINT32_MAX)
			return UINT32_MAX;
	return n ? n : 1;
}

static inline void set_fail(struct al_result *r, int parser, uint32_t attempts)
{
	r->kind = AL_FAIL;
	r->parser = parser;
	r->attempts = attempts;
}

/* A failure whose address is missing or malformed: it cannot be attributed
 * to anyone, so it is dropped, and counted as such. */
static inline void set_no_addr(struct al_result *r)
{
	r->skip = AL_SKIP_NO_ADDR;
}

/* ---- scan.c: fields every server writes alike ---- */

/* Copy a user name, cut on a UTF-8 boundary if it does not fit. */
void al_set_user(struct al_result *r, const char *p, const char *e);
/* The same for a "quoted \"value\"", without its escapes. */
void al_set_user_unquoted(struct al_result *r, const char *p, const char *e);
/* Keep [p, e) as the session id if it is one (base64, short enough). */
void al_set_session(struct al_result *r, const char *p, const char *e);
/* The last field "name", i.e. one that follows ", " or ": ". */
const char *al_last_field(const char *m, const char *e, const char *name);

/* ---- prefix.c: timestamp, host, syslog tag ---- */

/* Skip a syslog, RFC 5424, ISO or tai64n timestamp and the host after it;
 * p itself if there is none. */
const char *al_strip_prefix(const char *p, const char *e);
/* A syslog tag "name: " or "name[pid]: "; returns after it, or NULL. */
const char *al_syslog_tag(const char *p, const char *e);
/* The message, if it starts with one of words here or after one tag. */
const char *al_message(const char *p, const char *e, const char *const *words);

/* ---- journal_json.c: a journalctl -o json line ---- */

/*
 * The MESSAGE of the JSON object in [p, e), copied to out (at most cap
 * bytes). 0, -ENOENT when the object has no MESSAGE, -EINVAL when it is not
 * one valid JSON object with a usable MESSAGE (see journal_json.c).
 */
int al_json_message(const char *p, const char *e, char *out, size_t cap, size_t *n);

/* ---- one reader per server family: set r when the line is theirs ---- */

void al_dovecot(const char *p, const char *e, struct al_result *r);
void al_cyrus(const char *p, const char *e, struct al_result *r);
void al_courier(const char *p, const char *e, struct al_result *r);
void al_uwimap(const char *p, const char *e, struct al_result *r);
void al_perdition(const char *p, const char *e, struct al_result *r);

#endif
