// SPDX-License-Identifier: GPL-2.0
/*
 * What comes before the message in a text log line: a syslog (RFC 3164),
 * RFC 5424, ISO 8601 or tai64n timestamp, the host, and the program's
 * syslog tag. Only shapes a log writer produces are skipped; anything else
 * is left for the server readers to refuse.
 */
#include "authlog/parse.h"

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
const char *al_strip_prefix(const char *p, const char *e)
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
const char *al_syslog_tag(const char *p, const char *e)
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
const char *al_message(const char *p, const char *e, const char *const *words)
{
	if (starts_any(p, e, words))
		return p;
	p = al_syslog_tag(p, e);
	return p && starts_any(p, e, words) ? p : NULL;
}
