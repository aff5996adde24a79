// SPDX-License-Identifier: GPL-2.0
/*
 * Field helpers every server reader shares (parse.h): the byte classes, and
 * how a user name or a session id is copied out of a line.
 */
#include "authlog/parse.h"
#include "base/text.h"

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

/*
 * Copy a user name as valid UTF-8: each invalid byte (and NUL) becomes
 * U+FFFD, and a name too long is cut on a character boundary. Only the name
 * is cleaned: the failure still counts, under the cleaned name.
 */
void al_set_user(struct al_result *r, const char *p, const char *e)
{
	size_t n = e > p ? (size_t)(e - p) : 0, i;

	/* Nearly every name is short ASCII: copy it as it is. */
	for (i = 0; i < n && i < sizeof(r->user) - 1 && (unsigned char)(p[i] - 1) < 0x7f; i++)
		;
	if (i == n) {
		memcpy(r->user, p, n);
		r->user[n] = '\0';
		r->user_cleaned = false;
		return;
	}
	r->user_cleaned = utf8_clean(r->user, sizeof(r->user), p, n) > 0;
}

void al_set_session(struct al_result *r, const char *p, const char *e)
{
	if (p && e > p && span(p, e, c_b64) == e && e - p < AL_SESSION_LEN) {
		memcpy(r->session, p, e - p);
		r->session[e - p] = '\0';
	}
}

/* Copy a "quoted \"value\"" without its escapes. Unescaped into a buffer
 * a little larger than the name can be, so a character cut at its end is
 * past what al_set_user keeps. */
void al_set_user_unquoted(struct al_result *r, const char *p, const char *e)
{
	char buf[AL_USER_LEN + 4];
	size_t n = 0;

	for (; p < e && n < sizeof(buf); p++) {
		if (*p == '\\' && p + 1 < e)
			p++;
		buf[n++] = *p;
	}
	al_set_user(r, buf, buf + n);
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
