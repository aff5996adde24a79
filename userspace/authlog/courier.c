// SPDX-License-Identifier: GPL-2.0
/* Courier imapd: "LOGIN FAILED, user=U, ip=[IP], port=[N]" and "LOGIN, ...". */
#include "authlog/parse.h"

void al_courier(const char *p, const char *e, struct al_result *r)
{
	static const char *const w[] = { "LOGIN FAILED, ", "LOGIN, ", NULL };
	const char *m = al_message(p, e, w), *ip, *c, *u;

	if (!m)
		return;
	/* U is written first and all after it is the server's, so the last
	 * ", ip=[" is the real one and U ends right before it. */
	if (!(ip = al_last_field(m, e, "ip=[")) || !(c = memchr(ip, ']', e - ip)) ||
	    !get_addr(ip + 4, c, r->addr)) {
		if (has(m, e, "LOGIN FAILED, "))
			set_no_addr(r);
		return;
	}
	u = m + (has(m, e, "LOGIN, ") ? 7 : 14);
	if (has(u, e, "user=") && u + 5 <= ip - 2)
		al_set_user(r, u + 5, ip - 2);
	r->parser = AL_P_COURIER;
	if (has(m, e, "LOGIN, "))
		r->kind = AL_SUCCESS;
	else
		set_fail(r, AL_P_COURIER, 1);
}
