// SPDX-License-Identifier: GPL-2.0
/*
 * Cyrus imapd: "badlogin:" and "login:" lines, and 3.13's key=value events
 * ("event=login.bad r.clienthost=... u.username=...").
 */
#include "authlog/parse.h"

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

/* p at '"'; returns after the closing quote (backslash escapes skipped). */
static const char *quoted_end(const char *p, const char *e)
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
			if (!(next = quoted_end(v, e)))
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
	    !get_addr(b + 1, c, r->addr)) {
		if (bad)
			set_no_addr(r);
		return;
	}
	if (u && uq)
		al_set_user_unquoted(r, u, ue);
	else if (u)
		al_set_user(r, u, ue);
	r->parser = AL_P_CYRUS;
	if (bad)
		set_fail(r, AL_P_CYRUS, 1);
	else
		r->kind = AL_SUCCESS;
}

void al_cyrus(const char *p, const char *e, struct al_result *r)
{
	static const char *const w[] = { "badlogin: ", "login: ", "event=login.", NULL };
	const char *m = al_message(p, e, w), *q, *x;

	if (!m)
		return;
	if (has(m, e, "event=login.")) {
		cyrus_kv(m, e, r);
	} else if (eat(&m, e, "badlogin: ")) {
		if (!(q = cyrus_host(m, e, r))) {
			set_no_addr(r);
			return;
		}
		/* "MECH USER SASL(...)", "MECH (USER) [SASL(...)]" or "MECH [SASL(...)]":
		 * the user is the client's, the address is already read. */
		if ((q = memchr(q, ' ', e - q)) && ++q < e) {
			if (*q == '(' && (x = find(q, e, ") [")))
				al_set_user(r, q + 1, x);
			else if (!has(q, e, "[SASL(") && (x = find(q, e, " SASL(")))
				al_set_user(r, q, x);
		}
		set_fail(r, AL_P_CYRUS, 1);
	} else if (eat(&m, e, "login: ") && (q = cyrus_host(m, e, r))) {
		x = memchr(q, ' ', e - q);
		al_set_user(r, q, x ? x : e);
		r->parser = AL_P_CYRUS;
		r->kind = AL_SUCCESS;
	}
}
