// SPDX-License-Identifier: GPL-2.0
/* UW-IMAP: "Login failed user=U auth=A host=NAME [IP]" and its relatives. */
#include "authlog/parse.h"

void al_uwimap(const char *p, const char *e, struct al_result *r)
{
	static const char *const w[] = { "Login failed user=", "Login excessive login failures user=",
					  "Failed ", "AUTHENTICATE ", "Login user=",
					  "Authenticated user=", NULL };
	const char *m = al_message(p, e, w), *q = e, *b, *h, *u, *x;
	bool success;

	if (!m)
		return;
	success = has(m, e, "Login user=") || has(m, e, "Authenticated user=");
	if (has(m, e, "Failed ") && !(find(m, e, " override of user=")))
		return;
	if (has(m, e, "AUTHENTICATE ") && !find(m, e, " failure host="))
		return;
	/* The line ends with "host=NAME [IP]", the only part that is not the
	 * client's (a DNS name cannot hold '['): read the address from the end. */
	while (q > m && q[-1] == ' ')
		q--;
	if (q == m || q[-1] != ']' || !(b = memrchr(m, '[', q - m)) ||
	    !(h = rfind(m, b, " host=")) || !get_addr(b + 1, q - 1, r->addr)) {
		if (!success)
			set_no_addr(r);
		return;
	}
	/*
	 * "Failed X override of user=U host=...": X and U are both the
	 * client's. U starts after the one " override of user=" before the
	 * host: with two, either name may hold the marker that makes the line
	 * a failure, so the line has two readings and is dropped.
	 */
	u = NULL;
	if (has(m, e, "Failed ")) {
		static const char ovr[] = " override of user=";
		const char *o = find(m, h, ovr);

		if (!o || find(o + 1, h, ovr)) {
			r->ambiguous = true;
			return;
		}
		u = o + sizeof(ovr) - 1;
	} else if (!has(m, e, "AUTHENTICATE ") && (u = find(m, h, "user="))) {
		u += 5;
	}
	/* U ends at the first " auth=" or else at that last " host=", never
	 * past it: a " host=" in U must not make a line without the server's
	 * own read as one. */
	if (u) {
		if (!(x = find(u, h, " auth=")))
			x = h;
		while (x > u && x[-1] == ' ')
			x--;
		al_set_user(r, u, x);
	}
	r->parser = AL_P_UWIMAP;
	if (success)
		r->kind = AL_SUCCESS;
	else
		set_fail(r, AL_P_UWIMAP, 1);
}
