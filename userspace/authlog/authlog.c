// SPDX-License-Identifier: GPL-2.0
/*
 * Auth-log parser. Every format is read the same way: strip the log prefix,
 * recognise the message by the fixed words it starts with, then take each
 * field from a position only the server writes. The comment on each reader
 * says why an attacker-chosen user name cannot move the address.
 *
 * All scans are forward or backward passes over the line with short fixed
 * needles, so the cost is linear in the line length.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "base/addr.h"
#include "authlog/authlog.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PROXY_USER_MAX 512	/* longest user name tried in a proxy line */

/* ---- small text helpers on [p, e) ---- */

/*
 * Where s ends if [p, e) starts with it, else NULL. A plain byte loop: the
 * needles are short literals and most probes fail on the first byte, where
 * strlen() + memcmp() calls would cost more than the compare itself.
 */
static const char *after(const char *p, const char *e, const char *s)
{
	for (; *s; p++, s++)
		if (p >= e || *p != *s)
			return NULL;
	return p;
}

static bool has(const char *p, const char *e, const char *s)
{
	return after(p, e, s);
}

static bool eat(const char **p, const char *e, const char *s)
{
	const char *q = after(*p, e, s);

	if (q)
		*p = q;
	return q;
}

/* First occurrence of s inside [p, e). Not memmem(): it sets up a shift
 * table on every call, which dominates on haystacks this short. */
static const char *find(const char *p, const char *e, const char *s)
{
	for (; p < e && (p = memchr(p, s[0], e - p)); p++)
		if (has(p, e, s))
			return p;
	return NULL;
}

/* Last occurrence of s that lies inside [p, e). */
static const char *rfind(const char *p, const char *e, const char *s)
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
 * belong to no class.
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

#define CC_LETTER	(CC_ALNUM | CC_WORD | CC_TAG | CC_HOST | CC_B64)

static const uint16_t cclass[256] = {
	['0' ... '9'] = CC_LETTER | CC_DIGIT | CC_NUM | CC_HEX | CC_ADDR,
	['A' ... 'F'] = CC_LETTER | CC_HEX | CC_ADDR,
	['a' ... 'f'] = CC_LETTER | CC_HEX | CC_ADDR,
	['G' ... 'Z'] = CC_LETTER,
	['g' ... 'z'] = CC_LETTER,
	['_'] = CC_WORD | CC_TAG | CC_HOST,
	['-'] = CC_WORD | CC_TAG | CC_HOST,
	['.'] = CC_TAG | CC_HOST | CC_NUM | CC_ADDR,
	['/'] = CC_TAG | CC_B64,
	[':'] = CC_HOST | CC_ADDR,
	['+'] = CC_B64,
	['='] = CC_B64,
};

static bool c_is(char c, unsigned int cls) { return cclass[(unsigned char)c] & cls; }
static bool c_digit(char c) { return c_is(c, CC_DIGIT); }
static bool c_alnum(char c) { return c_is(c, CC_ALNUM); }
static bool c_word(char c) { return c_is(c, CC_WORD); }
static bool c_tag(char c) { return c_is(c, CC_TAG); }
static bool c_host(char c) { return c_is(c, CC_HOST); }
static bool c_b64(char c) { return c_is(c, CC_B64); }
static bool c_num(char c) { return c_is(c, CC_NUM); }
static bool c_hex(char c) { return c_is(c, CC_HEX); }
static bool c_addr(char c) { return c_is(c, CC_ADDR); }

static const char *span(const char *p, const char *e, bool (*ok)(char))
{
	while (p < e && ok(*p))
		p++;
	return p;
}

static bool get_addr(const char *p, const char *e, uint8_t out[16])
{
	return p < e && !addr_parse_host(p, e - p, out);
}

/* Length of s[0..n) without a UTF-8 sequence cut short at its end. */
static size_t utf8_cut(const char *s, size_t n)
{
	size_t i = n, need;
	unsigned char c;

	while (i && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && n - i < 3)
		i--;
	if (!i)
		return n;
	c = s[i - 1];
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	return n - (i - 1) < need ? i - 1 : n;
}

/* Copy a user name, cut on a UTF-8 boundary if it does not fit. */
static void set_user(struct al_result *r, const char *p, const char *e)
{
	size_t n = e > p ? (size_t)(e - p) : 0;

	if (n >= AL_USER_LEN)
		n = utf8_cut(p, AL_USER_LEN - 1);
	memcpy(r->user, p, n);
	r->user[n] = '\0';
}

static void set_session(struct al_result *r, const char *p, const char *e)
{
	if (p && e > p && span(p, e, c_b64) == e && e - p < AL_SESSION_LEN) {
		memcpy(r->session, p, e - p);
		r->session[e - p] = '\0';
	}
}

/* Decimal attempt count, at least 1 (a failure line stands for one). */
static uint32_t get_count(const char *p, const char *e)
{
	uint64_t n = 0;

	for (; p < e && c_digit(*p); p++)
		if ((n = n * 10 + (*p - '0')) > UINT32_MAX)
			return UINT32_MAX;
	return n ? n : 1;
}

static void set_fail(struct al_result *r, int parser, uint32_t attempts)
{
	r->kind = AL_FAIL;
	r->parser = parser;
	r->attempts = attempts;
}

/* Length of the prefix of s in whole 8-byte words that holds only ASCII
 * and no NUL: nearly every log line is all that, and a tight loop of its
 * own is much cheaper than the byte-wise validator. */
static size_t ascii_words(const char *s, size_t n)
{
	uint64_t w;
	size_t i;

	for (i = 0; n - i >= 8; i += 8) {
		memcpy(&w, s + i, 8);
		if ((w | ((w - 0x0101010101010101ULL) & ~w)) & 0x8080808080808080ULL)
			break;	/* a top bit set, or a NUL byte */
	}
	return i;
}

/* Reject NUL, overlong forms, surrogates and code points past U+10FFFF. */
static bool utf8_ok(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = ascii_words(s, n);

	while (i < n) {
		unsigned int c, cp, min, k;
		uint64_t w;

		/* Logs are nearly all ASCII: take eight bytes at a time while
		 * none has its top bit set and none is NUL. */
		if (n - i >= 8) {
			memcpy(&w, u + i, 8);
			if (!(w & 0x8080808080808080ULL) &&
			    !((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL)) {
				i += 8;
				continue;
			}
		}
		c = u[i];
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			k = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07, min = 0x10000;
		else
			return false;
		if (n - i <= k)
			return false;
		for (unsigned int j = 1; j <= k; j++) {
			if ((u[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (u[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* ---- journald -o json: the top-level MESSAGE value ---- */

static const char *json_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* p at '"'; returns after the closing quote. */
static const char *json_skip_str(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		if (*p == '\\') {
			if (++p == e)
				return NULL;
		} else if (*p == '"') {
			return p + 1;
		}
	}
	return NULL;
}

/* Skip one value of any kind; strings are skipped whole, so a quoted
 * "MESSAGE" inside another field's value is never taken for the key. */
static const char *json_skip(const char *p, const char *e)
{
	int depth = 0;

	while (p < e) {
		if (*p == '"') {
			if (!(p = json_skip_str(p, e)))
				return NULL;
			if (!depth)
				return p;
			continue;
		}
		if (*p == '[' || *p == '{') {
			depth++;
		} else if (*p == ']' || *p == '}') {
			if (!depth)
				return p;
			if (!--depth)
				return p + 1;
		} else if (!depth && (*p == ',' || *p == ' ')) {
			return p;
		}
		p++;
	}
	return depth ? NULL : p;
}

static bool hex4(const char *p, const char *e, unsigned int *v)
{
	*v = 0;
	if (e - p < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		char c = p[i] | 0x20;

		if (!c_hex(p[i]))
			return false;
		*v = *v << 4 | (unsigned int)(c_digit(p[i]) ? p[i] - '0' : c - 'a' + 10);
	}
	return true;
}

static size_t utf8_put(char *o, unsigned int cp)
{
	if (cp < 0x80) {
		o[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = 0xc0 | cp >> 6;
		o[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = 0xe0 | cp >> 12;
		o[1] = 0x80 | ((cp >> 6) & 0x3f);
		o[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	o[0] = 0xf0 | cp >> 18;
	o[1] = 0x80 | ((cp >> 12) & 0x3f);
	o[2] = 0x80 | ((cp >> 6) & 0x3f);
	o[3] = 0x80 | (cp & 0x3f);
	return 4;
}

/* Decode a JSON string into out (never longer than its source). */
static const char *json_string(const char *p, const char *e, char *out, size_t *n)
{
	static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	size_t o = 0;
	unsigned int cp, lo;
	const char *x;

	for (p++; p < e; p++) {
		if (*p == '"') {
			*n = o;
			return p + 1;
		}
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p != '\\') {
			out[o++] = *p;
			continue;
		}
		if (++p == e)
			return NULL;
		if (*p != 'u') {
			for (x = esc; *x && *x != *p; x += 2)
				;
			if (!*x)
				return NULL;
			out[o++] = x[1];
			continue;
		}
		if (!hex4(p + 1, e, &cp))
			return NULL;
		p += 4;
		if (cp >= 0xd800 && cp <= 0xdbff) {	/* needs its low half */
			if (!has(p + 1, e, "\\u") || !hex4(p + 3, e, &lo) ||
			    lo < 0xdc00 || lo > 0xdfff)
				return NULL;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			p += 6;
		} else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
			return NULL;
		}
		o += utf8_put(out + o, cp);
	}
	return NULL;
}

/* journald writes a non-UTF-8 MESSAGE as an array of byte values. */
static const char *json_bytes(const char *p, const char *e, char *out, size_t *n)
{
	size_t o = 0;

	p = json_ws(p + 1, e);
	if (p < e && *p == ']') {
		*n = 0;
		return p + 1;
	}
	for (;;) {
		const char *q = span(p, e, c_digit);
		uint32_t v = get_count(p, q);

		if (q == p || q - p > 3 || v > 255 || (v == 1 && *p == '0'))
			return NULL;	/* get_count() maps 0 to 1: 0 is a NUL */
		out[o++] = v;
		p = json_ws(q, e);
		if (p < e && *p == ']') {
			*n = o;
			return p + 1;
		}
		if (p == e || *p != ',')
			return NULL;
		p = json_ws(p + 1, e);
	}
}

/* Returns 0, -ENOENT (no MESSAGE) or -EINVAL (broken, or MESSAGE twice). */
static int json_message(const char *p, const char *e, char *out, size_t *n)
{
	bool found = false;

	p = json_ws(p + 1, e);
	if (p < e && *p == '}')
		return -ENOENT;
	for (;;) {
		const char *k = p + 1, *ke;

		if (p == e || *p != '"' || !(p = json_skip_str(p, e)))
			return -EINVAL;
		ke = p - 1;
		p = json_ws(p, e);
		if (p == e || *p != ':')
			return -EINVAL;
		p = json_ws(p + 1, e);
		if (ke - k == 7 && !memcmp(k, "MESSAGE", 7)) {
			if (found || p == e)
				return -EINVAL;
			found = true;
			p = *p == '"' ? json_string(p, e, out, n) :
			    *p == '[' ? json_bytes(p, e, out, n) : NULL;
		} else {
			p = json_skip(p, e);
		}
		if (!p)
			return -EINVAL;
		p = json_ws(p, e);
		if (p < e && *p == ',') {
			p = json_ws(p + 1, e);
			continue;
		}
		if (p == e || *p != '}' || json_ws(p + 1, e) != e)
			return -EINVAL;
		return found ? 0 : -ENOENT;
	}
}

/* ---- log prefixes: timestamp, host, syslog tag ---- */

static bool digits(const char *p, const char *e, int n)
{
	return e - p >= n && span(p, p + n, c_digit) == p + n;
}

/* "hh:mm:ss[.frac]" */
static const char *clock_time(const char *p, const char *e)
{
	if (!digits(p, e, 2) || !has(p + 2, e, ":") || !digits(p + 3, e, 2) ||
	    !has(p + 5, e, ":") || !digits(p + 6, e, 2))
		return NULL;
	p += 8;
	return has(p, e, ".") ? span(p + 1, e, c_digit) : p;
}

/* "Mmm dd hh:mm:ss[.frac]", the day possibly padded with a blank. */
static const char *bsd_time(const char *p, const char *e)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *q;
	size_t i;

	if (e - p < 4 || p[3] != ' ')
		return NULL;
	for (i = 0; i < sizeof(mon) - 1; i += 3)
		if (p[0] == mon[i] && p[1] == mon[i + 1] && p[2] == mon[i + 2])
			break;
	if (i == sizeof(mon) - 1)
		return NULL;
	p += 4;
	if (has(p, e, " "))
		p++;
	q = span(p, e, c_digit);
	if (q == p || q - p > 2 || !has(q, e, " "))
		return NULL;
	return clock_time(q + 1, e);
}

/* "YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|+hh:mm|+hhmm]" */
static const char *iso_time(const char *p, const char *e)
{
	if (!digits(p, e, 4) || !has(p + 4, e, "-") || !digits(p + 5, e, 2) ||
	    !has(p + 7, e, "-") || !digits(p + 8, e, 2) ||
	    !(has(p + 10, e, "T") || has(p + 10, e, " ")))
		return NULL;
	if (!(p = clock_time(p + 11, e)))
		return NULL;
	if (eat(&p, e, "Z") || !(has(p, e, "+") || has(p, e, "-")))
		return p;
	if (!digits(++p, e, 2))
		return NULL;
	p += 2;
	eat(&p, e, ":");
	return digits(p, e, 2) ? p + 2 : NULL;
}

/* RFC 5424 after "<pri>": "1 TIME HOST APP PROCID MSGID SD [MSG]". */
static const char *rfc5424(const char *p, const char *e)
{
	bool quoted = false;

	if (!eat(&p, e, "1 "))
		return NULL;
	for (int i = 0; i < 5; i++) {
		const char *sp = memchr(p, ' ', e - p);

		if (!sp || sp == p)
			return NULL;
		p = sp + 1;
	}
	if (!eat(&p, e, "-")) {
		/* SD elements: ']' and '"' inside a quoted value are escaped */
		if (p == e || *p != '[')
			return NULL;
		for (; p < e; p++) {
			if (quoted && *p == '\\' && p + 1 < e)
				p++;
			else if (*p == '"')
				quoted = !quoted;
			else if (!quoted && *p == ']' && !has(p + 1, e, "["))
				break;
		}
		if (p++ == e)
			return NULL;
	}
	if (p < e && !eat(&p, e, " "))
		return NULL;
	eat(&p, e, "\xef\xbb\xbf");	/* BOM */
	return p;
}

/*
 * Skip timestamp and host. A host is only skipped after a syslog timestamp
 * and only if it looks like one: no ':' at its end (that is a program tag,
 * e.g. Dovecot's own "imap-login:") and no '(' (2.4 "auth(user,..." tags).
 */
static const char *strip_prefix(const char *p, const char *e)
{
	const char *q, *sp;

	if (has(p, e, "<") && (q = span(p + 1, e, c_digit)) > p + 1 && q - p <= 4 &&
	    has(q, e, ">")) {
		p = q + 1;
		if ((q = rfc5424(p, e)))
			return q;
	}
	if (has(p, e, "@") && e - p > 25 && span(p + 1, p + 25, c_hex) == p + 25 &&
	    p[25] == ' ')
		return p + 26;	/* tai64n: multilog writes no host */
	if (!(q = bsd_time(p, e)) && !(q = iso_time(p, e)))
		return p;
	if (!eat(&q, e, " "))
		return p;
	sp = memchr(q, ' ', e - q);
	if (sp && sp > q && span(q, sp, c_host) == sp && sp[-1] != ':')
		return sp + 1;
	return q;
}

/* A syslog tag "name: " or "name[pid]: "; returns after it, or NULL. */
static const char *syslog_tag(const char *p, const char *e)
{
	const char *q = span(p, e, c_tag), *r;

	if (q == p)
		return NULL;
	if (has(q, e, "[")) {
		r = span(q + 1, e, c_digit);
		if (r == q + 1 || !has(r, e, "]"))
			return NULL;
		q = r + 1;
	}
	return has(q, e, ": ") ? q + 2 : NULL;
}

static bool starts_any(const char *p, const char *e, const char *const *words)
{
	for (const char *const *w = words; *w; w++)
		if (has(p, e, *w))
			return true;
	return false;
}

/* The message, if it starts with one of words here or after one tag. */
static const char *message(const char *p, const char *e, const char *const *words)
{
	if (starts_any(p, e, words))
		return p;
	p = syslog_tag(p, e);
	return p && starts_any(p, e, words) ? p : NULL;
}

/* Dovecot's own log files carry a level after the process name. */
static const char *skip_level(const char *p, const char *e)
{
	static const char *const lv[] = { "Info: ", "Warning: ", "Error: ", "Fatal: ",
					  "Panic: ", "Debug: " };
	const char *q;

	for (size_t i = 0; i < ARRAY_SIZE(lv); i++)
		if ((q = after(p, e, lv[i])))
			return q;
	return p;
}

/* ---- Dovecot login processes (imap-login, pop3-login, ...) ---- */

/* The last field "name", i.e. one that follows ", " or ": ". */
static const char *last_field(const char *m, const char *e, const char *name)
{
	size_t n = strlen(name);

	for (const char *q = e; (q = rfind(m, q, name)); q += n - 1)
		if (q - m >= 2 && q[-1] == ' ' && (q[-2] == ',' || q[-2] == ':'))
			return q;
	return NULL;
}

struct fields {
	const char *rip, *rip_end;	/* the server's rip= value */
	const char *uend;		/* the '>' that closes user=<...>, or NULL */
	const char *sess, *sess_end;
};

/*
 * Login-process fields: "user=<U>, method=M, rip=R, lip=L, mpid=N, TLS...,
 * session=<S>". Only U and M (a SASL mechanism name) come from the client,
 * and both are written before rip=; all after it is the server's. Hence the
 * real rip is the LAST ", rip=" field, and U ends at the '>' right before
 * ", rip=" or before ", method=M, rip=". A U full of fake fields only adds
 * earlier copies, never later ones. (Assumes the default
 * login_log_format_elements order.)
 */
static bool login_fields(const char *m, const char *e, struct fields *f)
{
	const char *b, *mt, *s;

	memset(f, 0, sizeof(*f));
	if (!(f->rip = last_field(m, e, "rip=")))
		return false;
	f->rip += 4;
	f->rip_end = memchr(f->rip, ',', e - f->rip);
	if (!f->rip_end)
		f->rip_end = e;
	b = f->rip - 6;			/* the ',' or ':' before "rip=" */
	if (*b == ',' && b > m && b[-1] == '>') {
		f->uend = b - 1;
	} else if (*b == ',') {
		mt = last_field(m, b, "method=");
		if (!mt || mt + 7 == b || span(mt + 7, b, c_word) != b)
			return false;
		if (mt[-2] == ',') {
			if (mt - 3 < m || mt[-3] != '>')
				return false;
			f->uend = mt - 3;
		}
	}
	if ((s = find(f->rip_end, e, ", session=<"))) {
		f->sess = s + 11;
		f->sess_end = span(f->sess, e, c_b64);
	}
	return true;
}

/* "HOST:PORT): Started proxying to X (N secs)", with no other parenthesis. */
static bool proxy_started_msg(const char *p, const char *e)
{
	const char *q = p, *o;

	while (q < e && *q != ' ' && *q != '(' && *q != ')' && *q != ',')
		q++;
	if (q == p || !eat(&q, e, "): Started proxying to ") || e - q < 9 ||
	    memcmp(e - 6, " secs)", 6) || !(o = rfind(q, e - 6, " (")) ||
	    o + 2 == e - 6 || span(o + 2, e - 6, c_num) != e - 6)
		return false;
	for (; q < o; q++)
		if (*q == '(' || *q == ')')
			return false;
	return true;
}

/*
 * "proxy(U,HOST:PORT): Started proxying to ... : user=<U>, ...": U is written
 * twice, so no single scan can tell where the header ends. Try each
 * ": user=<" before the user's end (known from the right) as the field start
 * and keep it only if the header holds the same U followed by "," and the
 * message between is exactly the server's "Started proxying" text. A forged
 * reading must fit the real header's "HOST:PORT)" into that text, whose only
 * ')' is its last character, so it fails. Returns the "user=<" or NULL.
 */
static const char *proxy_started(const char *m, const char *uend)
{
	const char *h = m + 6, *f = uend, *hit = NULL;
	int n = 0;

	while ((f = rfind(h, f + 7, ": user=<")) && uend - f - 8 <= PROXY_USER_MAX) {
		size_t l = uend - f - 8;

		if (h + l < f && h[l] == ',' && !memcmp(h, f + 8, l) &&
		    proxy_started_msg(h + l + 1, f)) {
			hit = f + 2;
			n++;
		}
		if (f == h)
			break;
	}
	return n == 1 ? hit : NULL;
}

/* How many failures a connection summary reports; 0 if none. The reason
 * text is the server's and ends where the fields start. */
static uint32_t summary_failures(const char *m, const char *fs)
{
	const char *q;

	if ((q = find(m, fs, "(auth failed, ")))
		return get_count(q + 14, fs);
	if ((q = find(m, fs, "(tried to use disallowed cleartext auth")))
		return has(q + 39, fs, ", ") ? get_count(q + 41, fs) : 1;
	if (find(m, fs, "(tried to use disallowed plaintext auth)") ||
	    find(m, fs, "(tried to use disabled plaintext auth)") ||
	    find(m, fs, "(proxy dest auth failed)") ||
	    find(m, fs, "(proxy dest authentication failure"))
		return 1;
	return 0;
}

static void login_line(const char *m, const char *e, struct al_result *r)
{
	static const char *const summary[] = { "Disconnected", "Aborted login", "Login aborted",
					       "Remote closed connection",
					       "Client has quit the connection" };
	const char *u = NULL, *fs = NULL, *q;
	struct fields f;
	uint32_t n = 0;
	size_t i;

	if (has(m, e, "Login: ") || has(m, e, "Logged in: ")) {
		u = memchr(m, ':', e - m) + 2;
	} else if (!has(m, e, "proxy(")) {
		for (i = 0; i < ARRAY_SIZE(summary) && !has(m, e, summary[i]); i++)
			;
		if (i == ARRAY_SIZE(summary))
			return;
		/* The reason comes first and is the server's, so the first of
		 * these is where the fields really start. */
		fs = find(m, e, ": user=<");
		if ((q = find(m, fs ? fs : e, ": method=")))
			fs = q;
		if ((q = find(m, fs ? fs : e, ": rip=")))
			fs = q;
		if (!fs || !(n = summary_failures(m, fs)))
			return;
		u = fs + 2;
	}
	if (!login_fields(m, e, &f) || (fs && f.rip < fs + 2))
		return;
	if (!u && (!f.uend || !(u = proxy_started(m, f.uend))))
		return;
	if (!get_addr(f.rip, f.rip_end, r->addr))
		return;
	if (f.uend && u <= f.uend && has(u, f.uend, "user=<"))
		set_user(r, u + 6, f.uend);
	set_session(r, f.sess, f.sess_end);
	r->parser = AL_P_DOVECOT_LOGIN;
	if (n)
		set_fail(r, AL_P_DOVECOT_LOGIN, n);
	else
		r->kind = AL_SUCCESS;
}

/* ---- Dovecot auth process: "driver(U,IP,...): message" ---- */

struct tail {
	const char *start, *end;	/* the ',' after U; the message */
	const char *ip, *ip_end, *sess, *sess_end;
	bool v24;			/* ",sasl:" or ")<session>": a 2.4 event prefix */
};

static bool tail_session(const char **p, const char *e, struct tail *t)
{
	const char *q = span(*p + 1, e, c_b64);

	if (!has(q, e, ">") || q - *p - 1 >= AL_SESSION_LEN)
		return false;
	t->sess = *p + 1;
	t->sess_end = q;
	*p = q + 1;
	return true;
}

/*
 * What the server appends to U: ",IP" then items ",master", ",sasl:mech",
 * ",<session>" or "," (all optional), ")", 2.4's "<session>", ": ".
 */
static bool auth_tail(const char *p, const char *e, struct tail *t)
{
	uint8_t a[16];
	const char *q;

	memset(t, 0, sizeof(*t));
	t->start = p++;
	q = span(p, e, c_addr);
	if (q - p > 45 || !get_addr(p, q, a))
		return false;
	t->ip = p;
	t->ip_end = p = q;
	for (int i = 0; i < 4 && has(p, e, ","); i++) {
		p++;
		if (eat(&p, e, "sasl:")) {
			p = span(p, e, c_word);
			t->v24 = true;
		} else if (has(p, e, "<")) {
			if (!tail_session(&p, e, t))
				return false;
		} else {
			eat(&p, e, "master");
		}
		if (!has(p, e, ",") && !has(p, e, ")"))
			return false;
	}
	if (!eat(&p, e, ")"))
		return false;
	if (has(p, e, "<") && !(t->v24 = tail_session(&p, e, t)))
		return false;
	if (!has(p, e, ": "))
		return false;
	t->end = p + 2;
	return true;
}

static bool auth_failed(const char *m, const char *e)
{
	static const char *const fails[] = { "unknown user", "Password mismatch",
					     "invalid credentials", "pam_authenticate() failed",
					     "Username character disallowed", "Empty username" };
	const char *q;

	m = skip_level(m, e);
	q = span(m, e, c_word);		/* 2.4: passdb or mechanism name first */
	if (q > m && has(q, e, ": "))
		m = q + 2;
	for (size_t i = 0; i < ARRAY_SIZE(fails); i++)
		if (has(m, e, fails[i]))
			return true;
	return false;
}

/*
 * U is free text (any byte but controls when auth_username_chars is empty),
 * and the message after the tail may echo it or a password. The tail itself
 * is the server's. So count every place where a complete tail could start:
 * exactly one is the real one; two or more means someone wrote a fake tail
 * into U or the message, and the line is dropped. Its connection's summary,
 * read from the right, still counts those failures (see al_dedup).
 * Limit: a request with no remote IP has no tail of its own, so a name could
 * supply the only one; Dovecot logs an IP for every network login, and the
 * default auth_username_chars refuses ',' and '(' anyway.
 *
 * u is where U starts after the driver's '('. outer is set when the line
 * began "auth(NAME): driver(": a 1.x/2.0 service name, or a 2.4 event prefix
 * "auth(U,..." whose U holds "): ". Only 2.4 tails carry ",sasl:" or a
 * session after the ')', so the tail found says which reading is the real one.
 */
static void auth_line(const char *u, const char *outer, const char *e, struct al_result *r)
{
	struct tail t = { 0 }, c;
	const char *q, *x;
	int n = 0;

	for (q = outer ? outer : u; n < 2 && (q = memchr(q, ',', e - q)); q++)
		if (auth_tail(q, e, &c) && !n++)
			t = c;
	if (n > 1)
		r->ambiguous = true;
	if (n != 1 || !auth_failed(t.end, e) || !get_addr(t.ip, t.ip_end, r->addr))
		return;
	if (outer && (t.v24 || t.start < u))
		u = outer;
	if (t.start - u != 1 || *u != '?')
		set_user(r, u, t.start);
	else if ((x = find(t.end, e, "(username: ")) && e[-1] == ')')
		set_user(r, x + 11, e - 1);	/* "?" = refused name, echoed last */
	set_session(r, t.sess, t.sess_end);
	set_fail(r, AL_P_DOVECOT_AUTH, 1);
	r->per_attempt = true;
}

/* What may follow rhost's value: nothing, or "  user=" and the same U. */
static bool pam_rest_ok(const char *p, const char *e, const char *u, size_t ul)
{
	if (has(p, e, "  user="))
		return (size_t)(e - p - 7) == ul && !memcmp(p + 7, u, ul);
	while (p < e && *p == ' ')
		p++;
	return p == e;
}

/*
 * pam_unix: "authentication failure; logname= uid=0 euid=0 tty=dovecot
 * ruser=U rhost=IP  user=U". Both U are the client's, all before " ruser="
 * is the server's. A single " rhost=" after it is the real one. With more,
 * keep the one reading where the rest is empty or "  user=" + the same U;
 * none or several readings means forged: drop.
 */
static void pam_line(const char *p, const char *e, bool dovecot, struct al_result *r)
{
	const char *q = span(p, e, c_word), *svc, *ru, *k, *ip = NULL, *ie = NULL;
	int all = 0, good = 0;

	if (!has(q, e, "(") || !(q = memchr(svc = q + 1, ')', e - q - 1)) ||
	    !has(q, e, "): authentication failure; "))
		return;
	if (!dovecot && !find(svc, q, "dovecot"))
		return;			/* sshd & co in the same log */
	if (!(ru = find(q, e, " ruser=")))
		return;
	ru += 7;
	for (k = ru; all <= 8 && (k = find(k, e, " rhost=")); k++) {
		const char *a = k + 7, *ae = memchr(a, ' ', e - a);

		bool ok;

		if (!ae)
			ae = e;
		ok = pam_rest_ok(ae, e, ru, k - ru);
		if (!all++ || ok) {	/* the only one, or the consistent one */
			ip = a;
			ie = ae;
		}
		good += ok;
	}
	if (all > 8 || (all > 1 && good != 1)) {
		r->ambiguous = true;
		return;
	}
	if (!all || !get_addr(ip, ie, r->addr))
		return;
	set_user(r, ru, ip - 7);
	set_fail(r, AL_P_PAM, 1);
	r->per_attempt = true;
}

/* "auth-worker(123): " or 2.3's "auth(default): " (a service name, not a user) */
static const char *proc_tag(const char *p, const char *e, const char *name)
{
	const char *q;

	if (!eat(&p, e, name))
		return NULL;
	q = span(p, e, c_word);
	return q > p && has(q, e, "): ") ? q + 3 : NULL;
}

static void auth_process(const char *p, const char *e, bool dovecot, struct al_result *r)
{
	const char *outer = has(p, e, "auth(") ? p + 5 : NULL, *q;
	bool auth = false;

	if (eat(&p, e, "auth: ") || eat(&p, e, "dovecot-auth: ")) {
		auth = true;
	} else if ((q = proc_tag(p, e, "auth-worker(")) || (q = proc_tag(p, e, "auth("))) {
		p = q;
		auth = true;
	}
	p = skip_level(p, e);
	if (auth && eat(&p, e, "conn ")) {	/* "conn unix:auth-worker (pid=1,uid=2): auth-worker<3>: " */
		if (!(q = find(p, e, "): ")) || !has(q + 3, e, "auth-worker<"))
			return;
		p = span(q + 15, e, c_digit);
		if (!eat(&p, e, ">: "))
			return;
	}
	if (!has(p, e, "pam_") && (q = syslog_tag(p, e)) && has(q, e, "pam_"))
		p = q;			/* PAM's own syslog ident, e.g. "auth[12]: " */
	if (has(p, e, "pam_")) {
		pam_line(p, e, dovecot || auth, r);
		return;
	}
	q = span(p, e, c_word);
	if (q == p || !has(q, e, "("))
		return;
	/* Outside an auth process only 2.4's "auth(" event prefix is a driver
	 * line; "imap(user)..." and the like are sessions, not checks. */
	if (!auth && !(q - p == 4 && has(p, e, "auth")) &&
	    !(q - p == 11 && has(p, e, "auth-worker")))
		return;
	auth_line(q + 1, outer, e, r);
}

static void dovecot(const char *p, const char *e, struct al_result *r)
{
	bool tagged = false;
	const char *q;

	/* the log process's syslog ident, possibly twice: "dovecot[1]: dovecot: " */
	for (int i = 0; i < 2 && (has(p, e, "dovecot:") || has(p, e, "dovecot[")) &&
			(q = syslog_tag(p, e)); i++) {
		p = q;
		tagged = true;
	}
	q = span(p, e, c_alnum);
	if (q > p && has(q, e, "-login: "))
		login_line(skip_level(q + 8, e), e, r);
	else
		auth_process(p, e, tagged, r);
}

/* ---- Cyrus ---- */

/* "HOST [IP] ": a DNS name cannot hold a '[' or a blank, so the first '[' is
 * the server's. Returns what follows "] ". */
static const char *cyrus_host(const char *p, const char *e, struct al_result *r)
{
	const char *b = memchr(p, '[', e - p), *c;

	if (!b || (b > p && (b[-1] != ' ' || memchr(p, ' ', b - 1 - p))))
		return NULL;
	if (!(c = memchr(b, ']', e - b)) || !get_addr(b + 1, c, r->addr) || !has(c, e, "] "))
		return NULL;
	return c + 2;
}

/* Copy a "quoted \"value\"" without its escapes. */
static void set_user_unquoted(struct al_result *r, const char *p, const char *e)
{
	size_t n = 0;

	for (; p < e && n < AL_USER_LEN - 1; p++) {
		if (*p == '\\' && p + 1 < e)
			p++;
		r->user[n++] = *p;
	}
	r->user[utf8_cut(r->user, n)] = '\0';
}

/* Cyrus 3.13: "event=login.bad r.clienthost="name [IP]" u.username=U ...".
 * Values with blanks are quoted and escaped, so reading the pairs left to
 * right keeps a user name inside its own value. */
static void cyrus_kv(const char *p, const char *e, struct al_result *r)
{
	const char *host = NULL, *he = NULL, *u = NULL, *ue = NULL, *b, *c;
	bool bad = has(p, e, "event=login.bad "), uq = false;

	if (!bad && !has(p, e, "event=login.good "))
		return;
	while (p < e) {
		const char *k = p, *ke = memchr(p, '=', e - p), *v, *ve, *next;
		bool quoted;

		if (!ke || ke == k || memchr(k, ' ', ke - k))
			return;
		v = ke + 1;
		quoted = has(v, e, "\"");
		if (quoted) {
			if (!(next = json_skip_str(v, e)))
				return;
			v++;
			ve = next - 1;
		} else {
			ve = next = (ve = memchr(v, ' ', e - v)) ? ve : e;
		}
		if (ke - k == 12 && has(k, e, "r.clienthost")) {
			if (host)
				return;
			host = v;
			he = ve;
		} else if (ke - k == 10 && has(k, e, "u.username")) {
			if (u)
				return;
			u = v;
			ue = ve;
			uq = quoted;
		}
		p = next;
		if (p < e && !eat(&p, e, " "))
			return;
	}
	if (!host || !(b = memchr(host, '[', he - host)) || !(c = memchr(b, ']', he - b)) ||
	    !get_addr(b + 1, c, r->addr))
		return;
	if (u && uq)
		set_user_unquoted(r, u, ue);
	else if (u)
		set_user(r, u, ue);
	r->parser = AL_P_CYRUS;
	if (bad)
		set_fail(r, AL_P_CYRUS, 1);
	else
		r->kind = AL_SUCCESS;
}

static void cyrus(const char *p, const char *e, struct al_result *r)
{
	static const char *const w[] = { "badlogin: ", "login: ", "event=login.", NULL };
	const char *m = message(p, e, w), *q, *x;

	if (!m)
		return;
	if (has(m, e, "event=login.")) {
		cyrus_kv(m, e, r);
	} else if (eat(&m, e, "badlogin: ") && (q = cyrus_host(m, e, r))) {
		/* "MECH USER SASL(...)", "MECH (USER) [SASL(...)]" or "MECH [SASL(...)]":
		 * the user is the client's, the address is already read. */
		if ((q = memchr(q, ' ', e - q)) && ++q < e) {
			if (*q == '(' && (x = find(q, e, ") [")))
				set_user(r, q + 1, x);
			else if (!has(q, e, "[SASL(") && (x = find(q, e, " SASL(")))
				set_user(r, q, x);
		}
		set_fail(r, AL_P_CYRUS, 1);
	} else if (eat(&m, e, "login: ") && (q = cyrus_host(m, e, r))) {
		x = memchr(q, ' ', e - q);
		set_user(r, q, x ? x : e);
		r->parser = AL_P_CYRUS;
		r->kind = AL_SUCCESS;
	}
}

/* ---- Courier: "LOGIN FAILED, user=U, ip=[IP], port=[N]" ---- */

static void courier(const char *p, const char *e, struct al_result *r)
{
	static const char *const w[] = { "LOGIN FAILED, ", "LOGIN, ", NULL };
	const char *m = message(p, e, w), *ip, *c, *u;

	if (!m)
		return;
	/* U is written first and all after it is the server's, so the last
	 * ", ip=[" is the real one and U ends right before it. */
	if (!(ip = last_field(m, e, "ip=[")) || !(c = memchr(ip, ']', e - ip)) ||
	    !get_addr(ip + 4, c, r->addr))
		return;
	u = m + (has(m, e, "LOGIN, ") ? 7 : 14);
	if (has(u, e, "user=") && u + 5 <= ip - 2)
		set_user(r, u + 5, ip - 2);
	r->parser = AL_P_COURIER;
	if (has(m, e, "LOGIN, "))
		r->kind = AL_SUCCESS;
	else
		set_fail(r, AL_P_COURIER, 1);
}

/* ---- UW-IMAP: "Login failed user=U auth=A host=NAME [IP]" ---- */

static void uwimap(const char *p, const char *e, struct al_result *r)
{
	static const char *const w[] = { "Login failed user=", "Login excessive login failures user=",
					  "Failed ", "AUTHENTICATE ", "Login user=",
					  "Authenticated user=", NULL };
	const char *m = message(p, e, w), *q = e, *b, *h, *u, *x;

	if (!m)
		return;
	if (has(m, e, "Failed ") && !(find(m, e, " override of user=")))
		return;
	if (has(m, e, "AUTHENTICATE ") && !find(m, e, " failure host="))
		return;
	/* The line ends with "host=NAME [IP]", the only part that is not the
	 * client's (a DNS name cannot hold '['): read the address from the end. */
	while (q > m && q[-1] == ' ')
		q--;
	if (q == m || q[-1] != ']' || !(b = memrchr(m, '[', q - m)) ||
	    !(h = rfind(m, b, " host=")) || !get_addr(b + 1, q - 1, r->addr))
		return;
	/* U ends at the first " auth=" or else at that last " host=", never
	 * past it: a " host=" in U must not make a line without the server's
	 * own read as one. */
	if (!has(m, e, "AUTHENTICATE ") && (u = find(m, h, "user="))) {
		u += 5;
		if (!(x = find(u, h, " auth=")))
			x = h;
		while (x > u && x[-1] == ' ')
			x--;
		set_user(r, u, x);
	}
	r->parser = AL_P_UWIMAP;
	if (has(m, e, "Login user=") || has(m, e, "Authenticated user="))
		r->kind = AL_SUCCESS;
	else
		set_fail(r, AL_P_UWIMAP, 1);
}

/* ---- perdition: "Auth: IP:PORT->IP:PORT ... status="failed: ..."" ---- */

static void perdition(const char *p, const char *e, struct al_result *r)
{
	static const char *const w[] = { "Auth: ", "Fatal Error reading authentication "
					  "information from client ", NULL };
	const char *m = message(p, e, w), *a, *ae, *c, *s, *u, *ue;
	bool fatal;

	if (!m)
		return;
	fatal = !has(m, e, "Auth: ");
	a = m + (fatal ? strlen(w[1]) : 6);
	/* the peer address comes first and is the server's */
	if (!(ae = find(a, e, "->")))
		return;
	if (*a == '[' && a++)
		c = memchr(a, ']', ae - a);
	else
		c = memrchr(a, ':', ae - a);
	if (!c || !get_addr(a, c, r->addr))
		return;
	r->parser = AL_P_PERDITION;
	if (fatal) {
		set_fail(r, AL_P_PERDITION, 1);
		return;
	}
	/* the status is written last: the last one is the server's */
	if (!(s = rfind(ae, e, " status=\"")))
		return;
	if ((u = find(ae, s, " authentication_id=\"")) && (ue = memchr(u + 20, '"', s - u - 20)))
		set_user(r, u + 20, ue);
	if (has(s + 9, e, "failed"))
		set_fail(r, AL_P_PERDITION, 1);
	else if (has(s + 9, e, "ok"))
		r->kind = AL_SUCCESS;
}

/* ---- entry points ---- */

int authlog_parse(const char *line, size_t len, int format, struct al_result *out)
{
	static const struct {
		int format;		/* -1: only under AUTHLOG_AUTO */
		void (*parse)(const char *p, const char *e, struct al_result *r);
	} parsers[] = {
		{ AUTHLOG_DOVECOT, dovecot }, { AUTHLOG_CYRUS, cyrus },
		{ AUTHLOG_COURIER, courier }, { AUTHLOG_UWIMAP, uwimap },
		{ -1, perdition },
	};
	char buf[AL_LINE_MAX];
	const char *p = line, *e;
	size_t n;
	bool amb;
	int err;

	memset(out, 0, sizeof(*out));
	if (format < AUTHLOG_AUTO || format > AUTHLOG_UWIMAP || (!line && len))
		return -EINVAL;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len > AL_LINE_MAX || !utf8_ok(line, len))
		return -EINVAL;
	e = line + len;
	if (len && *line == '{') {
		err = json_message(line, e, buf, &n);
		if (err == -ENOENT)
			return 0;
		if (err || !utf8_ok(buf, n))
			return -EINVAL;
		p = buf;
		e = buf + n;
		while (e > p && (e[-1] == '\n' || e[-1] == '\r'))
			e--;
	} else {
		p = strip_prefix(p, e);
	}
	for (size_t i = 0; i < ARRAY_SIZE(parsers) && !out->kind && !out->ambiguous; i++)
		if (format == AUTHLOG_AUTO || format == parsers[i].format)
			parsers[i].parse(p, e, out);
	if (out->kind == AL_NONE) {	/* leave no half-read fields behind */
		amb = out->ambiguous;
		memset(out, 0, sizeof(*out));
		out->ambiguous = amb;
	}
	return 0;
}

struct al_dedup {
	uint32_t mask;
	uint64_t clock;
	struct {
		uint64_t key;		/* FNV-1a of the session id, never 0 */
		uint64_t stamp;		/* last use, 0 = free */
		uint32_t counted;	/* failures already counted */
	} slot[];
};

#define DEDUP_PROBE 8

struct al_dedup *al_dedup_new(uint32_t capacity)
{
	struct al_dedup *d;
	uint32_t n = 64;

	while (n < capacity && n < (1u << 24))
		n <<= 1;
	d = calloc(1, sizeof(*d) + n * sizeof(d->slot[0]));
	if (d)
		d->mask = n - 1;
	return d;
}

void al_dedup_free(struct al_dedup *d)
{
	free(d);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ULL;
	}
	return h ? h : 1;
}

/*
 * Per session the table keeps the failures counted so far (a high-water
 * mark): an auth-process line adds one, a summary of N adds what N exceeds
 * it by. So "2 auth lines + summary of 3" counts 3, and a proxy's front and
 * back summaries for one session count once. Session ids are the server's
 * random ones, so their hash needs no key.
 */
uint32_t al_dedup_count(struct al_dedup *d, const struct al_result *r)
{
	uint64_t key;
	uint32_t i, victim, add;

	if (r->kind != AL_FAIL)
		return 0;
	if (!d || !r->session[0])
		return r->per_attempt ? 1 : r->attempts;
	key = fnv1a(r->session);
	victim = key & d->mask;
	for (i = 0; i < DEDUP_PROBE; i++) {
		uint32_t j = (key + i) & d->mask;

		if (d->slot[j].key == key) {
			victim = j;
			break;
		}
		if (d->slot[j].stamp < d->slot[victim].stamp)
			victim = j;	/* a free slot (stamp 0) or the oldest */
	}
	if (d->slot[victim].key != key) {
		d->slot[victim].key = key;
		d->slot[victim].counted = 0;
	}
	d->slot[victim].stamp = ++d->clock;
	if (r->per_attempt) {
		if (d->slot[victim].counted < UINT32_MAX)
			d->slot[victim].counted++;
		return 1;
	}
	add = r->attempts > d->slot[victim].counted ? r->attempts - d->slot[victim].counted : 0;
	if (add)
		d->slot[victim].counted = r->attempts;
	return add;
}
