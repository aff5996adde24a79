// SPDX-License-Identifier: GPL-2.0
/*
 * Auth-log parser entry point. Every format is read the same way: strip the
 * log prefix (prefix.c, or the MESSAGE of a journald JSON line,
 * journal_json.c), then offer the message to each server family's reader
 * (dovecot.c, cyrus.c, courier.c, uwimap.c, perdition.c), which recognises
 * it by the fixed words it starts with and takes each field from a position
 * only the server writes.
 */
#include <errno.h>
#include "authlog/parse.h"

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

/* ---- entry point ---- */

int authlog_parse(const char *line, size_t len, int format, struct al_result *out)
{
	static const struct {
		int format;		/* -1: only under AUTHLOG_AUTO */
		void (*parse)(const char *p, const char *e, struct al_result *r);
	} parsers[] = {
		{ AUTHLOG_DOVECOT, al_dovecot }, { AUTHLOG_CYRUS, al_cyrus },
		{ AUTHLOG_COURIER, al_courier }, { AUTHLOG_UWIMAP, al_uwimap },
		{ -1, al_perdition },
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
		err = al_json_message(line, e, buf, sizeof(buf), &n);
		if (err == -ENOENT)
			return 0;
		if (err || !utf8_ok(buf, n))
			return -EINVAL;
		p = buf;
		e = buf + n;
		while (e > p && (e[-1] == '\n' || e[-1] == '\r'))
			e--;
	} else {
		p = al_strip_prefix(p, e);
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
