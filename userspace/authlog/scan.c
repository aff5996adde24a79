// SPDX-License-Identifier: GPL-2.0
/*
 * Field helpers every server reader shares (parse.h): the byte classes, and
 * how a user name or a session id is copied out of a line.
 */
#include "authlog/parse.h"

#define CC_LETTER	(CC_ALNUM | CC_WORD | CC_TAG | CC_HOST | CC_B64)

const uint16_t al_cclass[256] = {
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
void al_set_user(struct al_result *r, const char *p, const char *e)
{
	size_t n = e > p ? (size_t)(e - p) : 0;

	if (n >= AL_USER_LEN)
		n = utf8_cut(p, AL_USER_LEN - 1);
	memcpy(r->user, p, n);
	r->user[n] = '\0';
}

void al_set_session(struct al_result *r, const char *p, const char *e)
{
	if (p && e > p && span(p, e, c_b64) == e && e - p < AL_SESSION_LEN) {
		memcpy(r->session, p, e - p);
		r->session[e - p] = '\0';
	}
}

/* Copy a "quoted \"value\"" without its escapes. */
void al_set_user_unquoted(struct al_result *r, const char *p, const char *e)
{
	size_t n = 0;

	for (; p < e && n < AL_USER_LEN - 1; p++) {
		if (*p == '\\' && p + 1 < e)
			p++;
		r->user[n++] = *p;
	}
	r->user[utf8_cut(r->user, n)] = '\0';
}

/* The last field "name", i.e. one that follows ", " or ": ". */
const char *al_last_field(const char *m, const char *e, const char *name)
{
	size_t n = strlen(name);

	for (const char *q = e; (q = rfind(m, q, name)); q += n - 1)
		if (q - m >= 2 && q[-1] == ' ' && (q[-2] == ',' || q[-2] == ':'))
			return q;
	return NULL;
}
