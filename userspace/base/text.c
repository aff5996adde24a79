// SPDX-License-Identifier: GPL-2.0
/* UTF-8 validation and cleaning for untrusted text (see text.h). */
#include <stdlib.h>
#include <string.h>
#include "base/text.h"

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned int c = s[0], need, lo = 0x80, hi = 0xbf;

	if (!n || !c)
		return 0;
	if (c < 0x80)
		return 1;
	/* RFC 3629 table 4: the second byte's range rules out overlong
	 * forms, surrogates and code points above U+10FFFF. */
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n <= need || s[1] < lo || s[1] > hi)
		return 0;
	for (unsigned int i = 2; i <= need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need + 1;
}

bool utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0, l; i < n; i += l)
		if (!(l = utf8_seq_len((const unsigned char *)s + i, n - i)))
			return false;
	return true;
}

/* The one copy loop: invalid bytes become U+FFFD; with terminal set,
 * control characters become '?'. */
static size_t clean(char *dst, size_t dstlen, const char *src, size_t n, bool terminal)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, replaced = 0;

	if (!dstlen)
		return 0;
	for (size_t i = 0, l; i < n; i += l) {
		const char *out = src + i;
		size_t outlen;

		l = utf8_seq_len(s + i, n - i);
		if (!l) {
			l = 1;
			out = UTF8_REPLACEMENT;
			replaced++;
		} else if (terminal && (s[i] < 0x20 || s[i] == 0x7f ||
					(s[i] == 0xc2 && s[i + 1] < 0xa0))) {
			out = "?";
			replaced++;
		}
		outlen = out == src + i ? l : strlen(out);
		if (o + outlen >= dstlen)
			break;
		memcpy(dst + o, out, outlen);
		o += outlen;
	}
	dst[o] = '\0';
	return replaced;
}

size_t utf8_clean(char *dst, size_t dstlen, const char *src, size_t n)
{
	return clean(dst, dstlen, src, n, false);
}

size_t text_clean(char *dst, size_t dstlen, const char *src, size_t n)
{
	return clean(dst, dstlen, src, n, true);
}

/* Each invalid byte grows to U+FFFD, three bytes at most. */
static char *clean_dup(const char *src, size_t n, bool terminal)
{
	char *dst = malloc(3 * n + 1);

	if (dst)
		clean(dst, 3 * n + 1, src, n, terminal);
	return dst;
}

char *utf8_clean_dup(const char *src, size_t n)
{
	return clean_dup(src, n, false);
}

char *text_clean_dup(const char *src, size_t n)
{
	return clean_dup(src, n, true);
}
