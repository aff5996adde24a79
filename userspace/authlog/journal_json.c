// SPDX-License-Identifier: GPL-2.0
/* journalctl -o json lines: the top-level MESSAGE value. */
#include <errno.h>
#include "authlog/parse.h"

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
int al_json_message(const char *p, const char *e, char *out, size_t *n)
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
