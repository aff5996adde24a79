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
	int err, skip;

	memset(out, 0, sizeof(*out));
	if (format < AUTHLOG_AUTO || format > AUTHLOG_UWIMAP || (!line && len))
		return -EINVAL;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len > AL_LINE_MAX) {
		out->skip = AL_SKIP_LONG;
		return -EINVAL;
	}
	/* No UTF-8 check here: one bad byte in a user name must not hide the
	 * failure. The readers never treat bytes >= 0x80 or NUL as structure,
	 * and al_set_user() cleans the name. */
	e = line + len;
	if (len && *line == '{') {
		err = al_json_message(line, e, buf, sizeof(buf), &n);
		if (err == -ENOENT)
			return 0;
		if (err) {
			out->skip = AL_SKIP_JSON;
			return -EINVAL;
		}
		p = buf;
		e = buf + n;
		while (e > p && (e[-1] == '\n' || e[-1] == '\r'))
			e--;
	} else {
		p = al_strip_prefix(p, e);
	}
	for (size_t i = 0; i < ARRAY_SIZE(parsers) && !out->kind && !out->skip; i++)
		if (format == AUTHLOG_AUTO || format == parsers[i].format)
			parsers[i].parse(p, e, out);
	if (out->ambiguous)
		out->skip = AL_SKIP_AMBIGUOUS;
	if (out->kind == AL_NONE) {	/* leave no half-read fields behind */
		amb = out->ambiguous;
		skip = out->skip;
		memset(out, 0, sizeof(*out));
		out->ambiguous = amb;
		out->skip = skip;
	}
	return 0;
}
