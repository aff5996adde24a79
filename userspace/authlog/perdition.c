// SPDX-License-Identifier: GPL-2.0
/*
 * perdition (IMAP/POP3 proxy): "Auth: IP:PORT->IP:PORT ... status="failed:
 * ..."". Recognised under format auto only: it has no format of its own.
 */
#include "authlog/parse.h"

void al_perdition(const char *p, const char *e, struct al_result *r)
{
	static const char *const w[] = { "Auth: ", "Fatal Error reading authentication "
					  "information from client ", NULL };
	const char *m = al_message(p, e, w), *a, *ae, *c, *s, *u, *ue;
	bool fatal;

	if (!m)
		return;
	fatal = !has(m, e, "Auth: ");
	a = m + (fatal ? strlen(w[1]) : 6);
	/* the peer address comes first and is the server's */
	c = NULL;
	if ((ae = find(a, e, "->")) && *a == '[' && a++)
		c = memchr(a, ']', ae - a);
	else if (ae)
		c = memrchr(a, ':', ae - a);
	if (!c || !get_addr(a, c, r->addr)) {
		if (fatal || ((s = rfind(m, e, " status=\"")) && has(s + 9, e, "failed")))
			set_no_addr(r);
		return;
	}
	r->parser = AL_P_PERDITION;
	if (fatal) {
		set_fail(r, AL_P_PERDITION, 1);
		return;
	}
	/* the status is written last: the last one is the server's */
	if (!(s = rfind(ae, e, " status=\"")))
		return;
	if ((u = find(ae, s, " authentication_id=\"")) && (ue = memchr(u + 20, '"', s - u - 20)))
		al_set_user(r, u + 20, ue);
	if (has(s + 9, e, "failed"))
		set_fail(r, AL_P_PERDITION, 1);
	else if (has(s + 9, e, "ok"))
		r->kind = AL_SUCCESS;
}
