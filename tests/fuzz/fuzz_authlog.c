// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_authlog: the auth-log line parser, authlog_parse(), in every format.
 *
 * Input: the first byte picks the format (its value modulo 5: auto, dovecot,
 * cyrus, courier, uwimap); the rest is log text, parsed one line per '\n'
 * (up to MAX_LINES) as the follower does, journald -o json lines and syslog,
 * RFC 5424, ISO and tai64n prefixes included.
 *
 * Properties checked on every line:
 *  - the result is well formed: known kind and parser, the parser belongs to
 *    the format asked for, NUL-terminated fields, a session of base64
 *    characters, attempts >= 1 for a failure, and nothing left behind by a
 *    skipped or unrecognised line;
 *  - the user name is valid UTF-8, and rendered for a terminal through
 *    text_clean() it holds no control byte;
 *  - a trailing "\r\n" changes nothing;
 *  - under AUTHLOG_AUTO, the parser that recognised the line gives the same
 *    result when its format is asked for (no field left behind by a parser
 *    that tried first);
 *  - the address never comes from inside the user name: when the name occurs
 *    exactly once in the line (so that occurrence is the user field), the
 *    address is written somewhere outside it; replacing the name by another
 *    leaves every other field as it was; and with a fake field planted in
 *    the name (an address where some format has one), the line is dropped or
 *    read with the same kind, address, session and attempts;
 *  - a journald JSON line reads the same as its MESSAGE (decoded with
 *    jansson) given as a plain line;
 *  - al_dedup never counts a failure less than an exact per-session model
 *    (it may count more after forgetting a session, never less).
 */
#include <errno.h>
#include <jansson.h>
#include "authlog/authlog.h"
#include "base/addr.h"
#include "base/json.h"
#include "fuzz.h"

/*
 * The parser keeps a line with invalid UTF-8 in the user name and replaces
 * those bytes with U+FFFD (issue 15, "Failures hidden by one bad byte"): an
 * invalid byte put in front of a parsed user name must give the same result
 * with U+FFFD in front of the name. 0 turns that check off.
 */
#ifndef FUZZ_AUTHLOG_USER_FFFD
#define FUZZ_AUTHLOG_USER_FFFD 1
#endif

#define MAX_LINES	32
#define OTHER_USER	"fuzzZ"		/* the replacement name: letters only */

/*
 * What an attacker writes into a user name to plant an address where some
 * reader takes one from: each format's address field, with addresses from
 * the documentation ranges.
 */
static const char *const hostile[] = {
	", ip=[203.0.113.99]",						/* Courier */
	", rip=203.0.113.99, lip=198.18.0.1",				/* Dovecot login */
	">, method=PLAIN, rip=203.0.113.99, lip=198.18.0.1, session=<Zz9>",
	",203.0.113.99): unknown user",					/* Dovecot auth */
	",2001:db8:dead::99,<Zz9>): Password mismatch",
	" rhost=203.0.113.99  user=",					/* PAM */
	" host=mx [203.0.113.99]",					/* UW-IMAP */
	" [2001:db8:dead::99] ",					/* Cyrus */
	"\" r.clienthost=\"mx [203.0.113.99]\" u.username=\"x",
	" Auth: 203.0.113.99:143->198.18.0.1:143 ",			/* perdition */
	"): Started proxying to 203.0.113.99:143 (1 secs): user=<",	/* Dovecot proxy */
};
#define NFORMATS	(AUTHLOG_UWIMAP + 1)
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static const struct al_result zero;

/* Parse a copy of [s, s + n) in a block of exactly n bytes, so that ASan
 * catches a read past the end of the line. */
static int parse(const char *s, size_t n, int format, struct al_result *r)
{
	char *copy = fuzz_dup(s, n, false);
	int ret = authlog_parse(copy, n, format, r);

	free(copy);
	return ret;
}

static int format_of(int parser)
{
	switch (parser) {
	case AL_P_DOVECOT_LOGIN:
	case AL_P_DOVECOT_AUTH:
	case AL_P_PAM:
		return AUTHLOG_DOVECOT;
	case AL_P_CYRUS:
		return AUTHLOG_CYRUS;
	case AL_P_COURIER:
		return AUTHLOG_COURIER;
	case AL_P_UWIMAP:
		return AUTHLOG_UWIMAP;
	default:
		return AUTHLOG_AUTO;	/* perdition: only under auto */
	}
}

static bool same(const struct al_result *a, const struct al_result *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/* The result on its own: shapes and ranges, the user name's text. */
static void check_result(int ret, const struct al_result *r, int format)
{
	char shown[AL_USER_LEN * 3];
	struct al_result t = *r;
	size_t ulen;

	FUZZ_CHECK(ret == 0 || ret == -EINVAL, "returned %d", ret);
	t.ambiguous = false;
	FUZZ_CHECK(r->skip >= AL_SKIP_NONE && r->skip < AL_SKIP_MAX, "skip %d", r->skip);
	FUZZ_CHECK(!r->skip || r->kind == AL_NONE, "skipped, yet read as kind %d", r->kind);
	t.skip = AL_SKIP_NONE;	/* says why a failure was dropped */
	if (ret || r->kind == AL_NONE) {
		FUZZ_CHECK(same(&t, &zero), "a line not read or not recognised left fields set");
		FUZZ_CHECK(!ret || !r->ambiguous, "a skipped line is marked ambiguous");
		return;
	}
	FUZZ_CHECK(r->kind == AL_FAIL || r->kind == AL_SUCCESS, "kind %d", r->kind);
	FUZZ_CHECK(!r->ambiguous, "an ambiguous line was reported");
	FUZZ_CHECK(r->parser > AL_P_NONE && r->parser <= AL_P_PERDITION, "parser %d", r->parser);
	FUZZ_CHECK(format == AUTHLOG_AUTO || format_of(r->parser) == format,
		   "parser %d answered for format %d", r->parser, format);
	FUZZ_CHECK(memchr(r->user, '\0', sizeof(r->user)), "user not terminated");
	FUZZ_CHECK(memchr(r->session, '\0', sizeof(r->session)), "session not terminated");
	ulen = strlen(r->user);
	FUZZ_CHECK(utf8_valid(r->user, ulen), "user '%s' is not valid UTF-8", r->user);
	for (const char *s = r->session; *s; s++)
		FUZZ_CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
				  *s), "session '%s' holds 0x%02x", r->session, (unsigned char)*s);
	if (r->kind == AL_FAIL) {
		FUZZ_CHECK(r->attempts >= 1, "a failure of 0 attempts");
		FUZZ_CHECK(!r->per_attempt || (r->attempts == 1 && (r->parser == AL_P_DOVECOT_AUTH ||
								    r->parser == AL_P_PAM)),
			   "per-attempt line of %u attempts from parser %d", r->attempts, r->parser);
	} else {
		FUZZ_CHECK(!r->attempts && !r->per_attempt, "a success with attempts");
	}
	/* What `authlog test` and the daemon's text log show of the name. */
	text_clean(shown, sizeof(shown), r->user, ulen);
	FUZZ_CHECK(fuzz_text_ok(shown, strlen(shown)), "user '%s' renders with control bytes", shown);
}

/* Parse s + suffix. */
static void parse_with(const char *s, size_t n, const char *suffix, int format,
		       struct al_result *r, int *ret)
{
	size_t sl = strlen(suffix);
	char *b = malloc(n + sl);	/* sl > 0 */

	FUZZ_CHECK(b, "out of memory");
	memcpy(b, s, n);
	memcpy(b + n, suffix, sl);
	*ret = authlog_parse(b, n + sl, format, r);
	free(b);
}

/* Where needle occurs in [s, s + n): the count of (overlapping)
 * occurrences, the first one's offset in *at. */
static int occurrences(const char *s, size_t n, const char *needle, size_t nl, size_t *at)
{
	int count = 0;

	for (const char *p = s; nl && (p = memmem(p, s + n - p, needle, nl)); p++)
		if (!count++)
			*at = p - s;
	return count;
}

static bool addr_at(const char *p, size_t n, const uint8_t addr[16])
{
	uint8_t a[16];

	return n && !addr_parse_host(p, n, a) && !memcmp(a, addr, 16);
}

/*
 * Is addr written in [s, s + n) outside [skip, skip + sl)? Every reader takes
 * an address from a run of address characters (hex digits, ':', '.')
 * delimited by others, bracketed or not, perdition's "IP:PORT" with the port
 * cut at the last ':'. So look at each such run of the line with the user
 * name blanked.
 */
static bool addr_outside(const char *s, size_t n, size_t skip, size_t sl, const uint8_t addr[16])
{
	char *b = fuzz_dup(s, n, false);
	bool found = false;
	size_t i = 0;

	memset(b + skip, ' ', sl);
	while (i < n && !found) {
		size_t j = i;
		const char *colon;

		while (j < n && b[j] && strchr(":.0123456789abcdefABCDEF", b[j]))
			j++;
		if (j == i) {
			i++;
			continue;
		}
		colon = memrchr(b + i, ':', j - i);
		found = addr_at(b + i, j - i, addr) || (colon && addr_at(b + i, colon - b - i, addr));
		i = j;
	}
	free(b);
	return found;
}

/* A copy of s with [at, at + cut) replaced by put. */
static char *splice(const char *s, size_t n, size_t at, size_t cut, const char *put,
		    size_t pl, size_t *outlen)
{
	char *b = malloc(n - cut + pl + 1);

	FUZZ_CHECK(b, "out of memory");
	memcpy(b, s, at);
	memcpy(b + at, put, pl);
	memcpy(b + at + pl, s + at + cut, n - at - cut);
	*outlen = n - cut + pl;
	return b;
}

/* Everything but the user name, which must be want (prefix only if !full). */
static void check_same_but_user(const struct al_result *r, const struct al_result *o,
				const char *want, bool full, const char *what)
{
	struct al_result a = *r, b = *o;

	memset(a.user, 0, sizeof(a.user));
	memset(b.user, 0, sizeof(b.user));
	a.user_cleaned = b.user_cleaned = false;	/* follows the name */
	FUZZ_CHECK(same(&a, &b), "%s: kind %d -> %d, parser %d -> %d, attempts %u -> %u, "
		   "session '%s' -> '%s' or the address changed", what, r->kind, o->kind,
		   r->parser, o->parser, r->attempts, o->attempts, r->session, o->session);
	FUZZ_CHECK(full ? !strcmp(o->user, want) : !strncmp(o->user, want, strlen(o->user)),
		   "%s: user '%s', expected '%s'", what, o->user, want);
}

/* The user-name properties, for a plain (not JSON) line that was recognised. */
static void check_user_field(const char *s, size_t n, int format, const struct al_result *r)
{
	size_t ulen = strlen(r->user), at = 0, ml;
	struct al_result o;
	char *m;
	int ret;

	/* Longer names may have been cut; Cyrus unquotes "a\"b", and a
	 * cleaned name holds U+FFFD where the line has invalid bytes: such
	 * names are not copies of the line's bytes (and a copy of one
	 * elsewhere in the line is a decoy, not the field). */
	if (ulen >= AL_USER_LEN - 4 || r->user_cleaned ||
	    (r->parser == AL_P_CYRUS && memchr(s, '\\', n)))
		return;
	if (!ulen) {
		FUZZ_CHECK(addr_outside(s, n, 0, 0, r->addr), "address not written in the line");
		return;
	}
	if (occurrences(s, n, r->user, ulen, &at) != 1)
		return;
	FUZZ_CHECK(addr_outside(s, n, at, ulen, r->addr),
		   "address only written inside the user name '%s'", r->user);

	m = splice(s, n, at, ulen, OTHER_USER, strlen(OTHER_USER), &ml);
	ret = parse(m, ml, format, &o);
	free(m);
	if (ml <= AL_LINE_MAX) {
		FUZZ_CHECK(ret == 0, "replacing user '%s' made the line unreadable", r->user);
		check_same_but_user(r, &o, OTHER_USER, true, "another user name");
	}
	/*
	 * The attacker's name could as well have held a fake field, before or
	 * after what was read as the name: the line may then be dropped as
	 * ambiguous, but never read with another address or as another kind.
	 */
	for (size_t i = 0; i < 2 * ARRAY_SIZE(hostile); i++) {
		const char *h = hostile[i / 2];

		m = splice(s, n, at + (i % 2 ? ulen : 0), 0, h, strlen(h), &ml);
		ret = parse(m, ml, format, &o);
		free(m);
		if (ml > AL_LINE_MAX || o.kind == AL_NONE)
			continue;
		memcpy(o.user, r->user, sizeof(o.user));	/* the name may differ */
		FUZZ_CHECK(same(r, &o), "user '%s' with '%s' %s it: kind %d -> %d, parser %d -> %d, "
			   "attempts %u -> %u, session '%s' -> '%s' or the address changed", r->user,
			   h, i % 2 ? "after" : "before", r->kind, o.kind, r->parser, o.parser,
			   r->attempts, o.attempts, r->session, o.session);
	}
#if FUZZ_AUTHLOG_USER_FFFD
	{
		char want[AL_USER_LEN + 4];

		m = splice(s, n, at, 0, "\xff", 1, &ml);
		ret = parse(m, ml, format, &o);
		free(m);
		if (ml <= AL_LINE_MAX) {
			snprintf(want, sizeof(want), "%s%s", UTF8_REPLACEMENT, r->user);
			FUZZ_CHECK(ret == 0, "an invalid byte in user '%s' hid the line", r->user);
			FUZZ_CHECK(strlen(o.user) >= strlen(UTF8_REPLACEMENT) + (ulen < AL_USER_LEN - 8 ?
				   ulen : AL_USER_LEN - 8), "user '%s' cut short", o.user);
			check_same_but_user(r, &o, want, false, "invalid byte in the user name");
			FUZZ_CHECK(o.user_cleaned, "user '%s' cleaned but not flagged", o.user);
		}
	}
#endif
}

static void check_line(const char *s, size_t n, int format, struct al_result *r, int depth);

/*
 * The journald reader against jansson: a line jansson reads as an object
 * with one MESSAGE is read (ret 0) with the same result as MESSAGE alone.
 */
static void check_json(const char *s, size_t n, int format, int ret, const struct al_result *r)
{
	struct al_result plain;
	json_error_t jerr;
	json_t *root, *msg;
	char *text = NULL;
	size_t tl = 0, idx, at;
	json_t *v;

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	/* One literal "MESSAGE" key: jansson would also take an escaped one
	 * ("MESS\u0041GE"), which journalctl never writes. And no NUL byte:
	 * jansson skips one between tokens ('[5\0]' reads as [5]). */
	if (n > AL_LINE_MAX || memchr(s, '\r', n) || memchr(s, '\0', n) ||
	    occurrences(s, n, "\"MESSAGE\"", 9, &at) != 1)
		return;
	if (!(root = json_parse_object(s, n, &jerr)))
		return;
	msg = json_object_get(root, "MESSAGE");
	if (json_is_string(msg)) {
		tl = json_string_length(msg);
		text = fuzz_dup(json_string_value(msg), tl, false);
	} else if (json_is_array(msg)) {
		text = malloc(json_array_size(msg) + 1);
		FUZZ_CHECK(text, "out of memory");
		json_array_foreach(msg, idx, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 255)
				break;
			text[tl++] = (char)json_integer_value(v);
		}
		if (tl != json_array_size(msg))
			tl = SIZE_MAX;
	}
	json_decref(root);
	if (!text)
		return;
	while (tl != SIZE_MAX && tl && (text[tl - 1] == '\n' || text[tl - 1] == '\r'))
		tl--;
	/*
	 * Compare when the message read as a plain line keeps all its text:
	 * the plain reader would strip what looks like a log prefix (a '<',
	 * '@', digit or month first) and take a '{' for JSON.
	 */
	if (tl != SIZE_MAX && tl <= AL_LINE_MAX && !memchr(text, '\0', tl) && utf8_valid(text, tl) &&
	    !(tl && strchr("<@{0123456789", text[0])) &&
	    !(tl >= 4 && text[3] == ' ' && strstr("JanFebMarAprMayJunJulAugSepOctNovDec",
						    (char[4]){ text[0], text[1], text[2], 0 }))) {
		char *exact = fuzz_dup(text, tl, false);

		check_line(exact, tl, format, &plain, 1);
		free(exact);
		FUZZ_CHECK(!ret, "a JSON line jansson reads was skipped");
		FUZZ_CHECK(same(r, &plain), "JSON line read as kind %d parser %d user '%s', its "
			   "MESSAGE as kind %d parser %d user '%s'", r->kind, r->parser, r->user,
			   plain.kind, plain.parser, plain.user);
	}
	free(text);
}

/*
 * Parse one line and check every property; the result in *r. s is a block
 * of exactly n bytes (ASan sees a read past the end).
 */
static void check_line(const char *s, size_t n, int format, struct al_result *r, int depth)
{
	struct al_result o;
	int ret, oret;

	ret = authlog_parse(s, n, format, r);
	check_result(ret, r, format);

	parse_with(s, n, "\r\n", format, &o, &oret);
	FUZZ_CHECK(oret == ret && same(r, &o), "a trailing CRLF changed the result");

	if (format == AUTHLOG_AUTO && r->kind != AL_NONE && r->parser != AL_P_PERDITION) {
		oret = authlog_parse(s, n, format_of(r->parser), &o);
		FUZZ_CHECK(!oret && same(r, &o), "format %d alone reads the line differently "
			   "(user '%s' vs '%s')", format_of(r->parser), r->user, o.user);
	}
	if (n && s[0] == '{') {
		if (!depth)
			check_json(s, n, format, ret, r);
	} else if (!ret && r->kind != AL_NONE) {
		check_user_field(s, n, format, r);
	}
}

/* The failures the exact model counts for one result. */
struct sess_model {
	char id[AL_SESSION_LEN];
	uint32_t counted;
};

static uint32_t model_count(struct sess_model *m, int *nm, const struct al_result *r)
{
	struct sess_model *e = NULL;
	uint32_t add;

	if (r->kind != AL_FAIL)
		return 0;
	if (!r->session[0])
		return r->per_attempt ? 1 : r->attempts;
	for (int i = 0; i < *nm && !e; i++)
		if (!strcmp(m[i].id, r->session))
			e = &m[i];
	if (!e) {
		e = &m[(*nm)++];
		strcpy(e->id, r->session);
		e->counted = 0;
	}
	if (r->per_attempt) {
		if (e->counted < UINT32_MAX)
			e->counted++;
		return 1;
	}
	add = r->attempts > e->counted ? r->attempts - e->counted : 0;
	if (add)
		e->counted = r->attempts;
	return add;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sess_model model[MAX_LINES];
	const char *p, *e, *nl;
	struct al_dedup *d;
	struct al_result r;
	int format, nm = 0;

	if (!size)
		return 0;
	format = data[0] % NFORMATS;
	p = (const char *)data + 1;
	e = (const char *)data + size;
	d = al_dedup_new(64);
	FUZZ_CHECK(d, "out of memory");
	for (int i = 0; i < MAX_LINES && p < e; i++, p = nl ? nl + 1 : e) {
		uint32_t got, want;
		char *line;
		size_t n;

		nl = memchr(p, '\n', e - p);
		n = (nl ? nl : e) - p;
		line = fuzz_dup(p, n, false);
		check_line(line, n, format, &r, 0);
		free(line);
		got = al_dedup_count(d, &r);
		want = model_count(model, &nm, &r);
		FUZZ_CHECK(r.kind == AL_FAIL ? got <= (r.per_attempt ? 1 : r.attempts) : !got,
			   "dedup counted %u for a line of %u attempts", got, r.attempts);
		FUZZ_CHECK(r.session[0] ? got >= want : got == want,
			   "dedup counted %u failures of session '%s', the model %u", got,
			   r.session, want);
	}
	al_dedup_free(d);
	return 0;
}
