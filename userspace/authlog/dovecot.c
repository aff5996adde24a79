// SPDX-License-Identifier: GPL-2.0
/*
 * Dovecot (2.2 - 2.4): the login processes' connection summaries and
 * "Login:" lines, the auth process's one line per password check, and
 * pam_unix lines of Dovecot's PAM service. The comment on each reader says
 * why an attacker-chosen user name cannot move the address.
 */
#include <stdlib.h>
#include "authlog/parse.h"

#define PROXY_USER_MAX 512	/* longest user name tried in a proxy line */

/* Dovecot's own log files carry a level after the process name. */
static const char *skip_level(const char *p, const char *e)
{
	static const char *const lv[] = { "Info: ", "Warning: ", "Error: ", "Fatal: ",
					  "Panic: ", "Debug: " };
	const char *q;

	for (size_t i = 0; i < ARRAY_SIZE(lv); i++)
		if ((q = after(p, e, lv[i])))
			return q;
	return p;
}

/* ---- Dovecot login processes (imap-login, pop3-login, ...) ---- */

struct fields {
	const char *rip, *rip_end;	/* the server's rip= value */
	const char *uend;		/* the '>' that closes user=<...>, or NULL */
	const char *sess, *sess_end;
};

/*
 * Login-process fields: "user=<U>, method=M, rip=R, lip=L, mpid=N, TLS...,
 * session=<S>". Only U and M (a SASL mechanism name) come from the client,
 * and both are written before rip=; all after it is the server's. Hence the
 * real rip is the LAST ", rip=" field, and U ends at the '>' right before
 * ", rip=" or before ", method=M, rip=". A U full of fake fields only adds
 * earlier copies, never later ones. (Assumes the default
 * login_log_format_elements order.)
 */
static bool login_fields(const char *m, const char *e, struct fields *f)
{
	const char *b, *mt, *s;

	memset(f, 0, sizeof(*f));
	if (!(f->rip = al_last_field(m, e, "rip=")))
		return false;
	f->rip += 4;
	f->rip_end = memchr(f->rip, ',', e - f->rip);
	if (!f->rip_end)
		f->rip_end = e;
	b = f->rip - 6;			/* the ',' or ':' before "rip=" */
	if (*b == ',' && b > m && b[-1] == '>') {
		f->uend = b - 1;
	} else if (*b == ',') {
		mt = al_last_field(m, b, "method=");
		if (!mt || mt + 7 == b || span(mt + 7, b, c_word) != b)
			return false;
		if (mt[-2] == ',') {
			if (mt - 3 < m || mt[-3] != '>')
				return false;
			f->uend = mt - 3;
		}
	}
	if ((s = find(f->rip_end, e, ", session=<"))) {
		f->sess = s + 11;
		f->sess_end = span(f->sess, e, c_b64);
	}
	return true;
}

/* "HOST:PORT): Started proxying to X (N secs)", with no other parenthesis. */
static bool proxy_started_msg(const char *p, const char *e)
{
	const char *q = p, *o;

	while (q < e && *q != ' ' && *q != '(' && *q != ')' && *q != ',')
		q++;
	if (q == p || !eat(&q, e, "): Started proxying to ") || e - q < 9 ||
	    memcmp(e - 6, " secs)", 6) || !(o = rfind(q, e - 6, " (")) ||
	    o + 2 == e - 6 || span(o + 2, e - 6, c_num) != e - 6)
		return false;
	for (; q < o; q++)
		if (*q == '(' || *q == ')')
			return false;
	return true;
}

/*
 * "proxy(U,HOST:PORT): Started proxying to ... : user=<U>, ...": U is written
 * twice, so no single scan can tell where the header ends. Try each
 * ": user=<" before the user's end (known from the right) as the field start
 * and keep it only if the header holds the same U followed by "," and the
 * message between is exactly the server's "Started proxying" text. A forged
 * reading must fit the real header's "HOST:PORT)" into that text, whose only
 * ')' is its last character, so it fails. Returns the "user=<" or NULL.
 */
static const char *proxy_started(const char *m, const char *uend)
{
	const char *h = m + 6, *f = uend, *hit = NULL;
	int n = 0;

	while ((f = rfind(h, f + 7, ": user=<")) && uend - f - 8 <= PROXY_USER_MAX) {
		size_t l = uend - f - 8;

		if (h + l < f && h[l] == ',' && !memcmp(h, f + 8, l) &&
		    proxy_started_msg(h + l + 1, f)) {
			hit = f + 2;
			n++;
		}
		if (f == h)
			break;
	}
	return n == 1 ? hit : NULL;
}

/* How many failures a connection summary reports; 0 if none. The reason
 * text is the server's and ends where the fields start. */
static uint32_t summary_failures(const char *m, const char *fs)
{
	const char *q;

	if ((q = find(m, fs, "(auth failed, ")))
		return get_count(q + 14, fs);
	if ((q = find(m, fs, "(tried to use disallowed cleartext auth")))
		return has(q + 39, fs, ", ") ? get_count(q + 41, fs) : 1;
	if (find(m, fs, "(tried to use disallowed plaintext auth)") ||
	    find(m, fs, "(tried to use disabled plaintext auth)") ||
	    find(m, fs, "(proxy dest auth failed)") ||
	    find(m, fs, "(proxy dest authentication failure"))
		return 1;
	return 0;
}

static void login_line(const char *m, const char *e, struct al_result *r)
{
	static const char *const summary[] = { "Disconnected", "Aborted login", "Login aborted",
					       "Remote closed connection",
					       "Client has quit the connection" };
	const char *u = NULL, *fs = NULL, *q;
	struct fields f;
	uint32_t n = 0;
	size_t i;

	u = after(m, e, "Login: ");
	if (!u)
		u = after(m, e, "Logged in: ");
	if (!u && !has(m, e, "proxy(")) {
		for (i = 0; i < ARRAY_SIZE(summary) && !has(m, e, summary[i]); i++)
			;
		if (i == ARRAY_SIZE(summary))
			return;
		/* The reason comes first and is the server's, so the first of
		 * these is where the fields really start. */
		fs = find(m, e, ": user=<");
		if ((q = find(m, fs ? fs : e, ": method=")))
			fs = q;
		if ((q = find(m, fs ? fs : e, ": rip=")))
			fs = q;
		if (!fs || !(n = summary_failures(m, fs)))
			return;
		u = fs + 2;
	}
	if (!login_fields(m, e, &f) || (fs && f.rip < fs + 2)) {
		if (n)
			set_no_addr(r);
		return;
	}
	if (!u && (!f.uend || !(u = proxy_started(m, f.uend))))
		return;
	if (!get_addr(f.rip, f.rip_end, r->addr)) {
		if (n)
			set_no_addr(r);
		return;
	}
	if (f.uend && u <= f.uend && has(u, f.uend, "user=<"))
		al_set_user(r, u + 6, f.uend);
	al_set_session(r, f.sess, f.sess_end);
	r->parser = AL_P_DOVECOT_LOGIN;
	if (n)
		set_fail(r, AL_P_DOVECOT_LOGIN, n);
	else
		r->kind = AL_SUCCESS;
}

/* ---- Dovecot auth process: "driver(U,IP,...): message" ---- */

struct tail {
	const char *start, *end;	/* the ',' after U; the message */
	const char *ip, *ip_end, *sess, *sess_end;
	bool v24;			/* ",sasl:" or ")<session>": a 2.4 event prefix */
};

static bool tail_session(const char **p, const char *e, struct tail *t)
{
	const char *q = span(*p + 1, e, c_b64);

	if (!has(q, e, ">") || q - *p - 1 >= AL_SESSION_LEN)
		return false;
	t->sess = *p + 1;
	t->sess_end = q;
	*p = q + 1;
	return true;
}

/*
 * What the server appends to U: ",IP" then items ",master", ",sasl:mech",
 * ",<session>" or "," (all optional), ")", 2.4's "<session>", ": ".
 */
static bool auth_tail(const char *p, const char *e, struct tail *t)
{
	uint8_t a[16];
	const char *q;

	memset(t, 0, sizeof(*t));
	t->start = p++;
	q = span(p, e, c_addr);
	if (q - p > 45 || !get_addr(p, q, a))
		return false;
	t->ip = p;
	t->ip_end = p = q;
	for (int i = 0; i < 4 && has(p, e, ","); i++) {
		p++;
		if (eat(&p, e, "sasl:")) {
			p = span(p, e, c_word);
			t->v24 = true;
		} else if (has(p, e, "<")) {
			if (!tail_session(&p, e, t))
				return false;
		} else {
			eat(&p, e, "master");
		}
		if (!has(p, e, ",") && !has(p, e, ")"))
			return false;
	}
	if (!eat(&p, e, ")"))
		return false;
	if (has(p, e, "<") && !(t->v24 = tail_session(&p, e, t)))
		return false;
	if (!has(p, e, ": "))
		return false;
	t->end = p + 2;
	return true;
}

static bool auth_failed(const char *m, const char *e)
{
	static const char *const fails[] = { "unknown user", "Password mismatch",
					     "invalid credentials", "pam_authenticate() failed",
					     "Username character disallowed", "Empty username" };
	const char *q;

	m = skip_level(m, e);
	q = span(m, e, c_word);		/* 2.4: passdb or mechanism name first */
	if (q > m && has(q, e, ": "))
		m = q + 2;
	for (size_t i = 0; i < ARRAY_SIZE(fails); i++)
		if (has(m, e, fails[i]))
			return true;
	return false;
}

/*
 * U is free text (any byte but controls when auth_username_chars is empty),
 * and the message after the tail may echo it or a password. The tail itself
 * is the server's. So count every place where a complete tail could start:
 * exactly one is the real one; two or more means someone wrote a fake tail
 * into U or the message, and the line is dropped. Its connection's summary,
 * read from the right, still counts those failures (see al_dedup).
 * Limit: a request with no remote IP has no tail of its own, so a name could
 * supply the only one; Dovecot logs an IP for every network login, and the
 * default auth_username_chars refuses ',' and '(' anyway.
 *
 * u is where U starts after the driver's '('. outer is set when the line
 * began "auth(NAME): driver(": a 1.x/2.0 service name, or a 2.4 event prefix
 * "auth(U,..." whose U holds "): ". Only 2.4 tails carry ",sasl:" or a
 * session after the ')', so the tail found says which reading is the real one.
 */
static void auth_line(const char *u, const char *outer, const char *e, struct al_result *r)
{
	struct tail t = { 0 }, c;
	const char *q, *x;
	int n = 0;

	for (q = outer ? outer : u; n < 2 && (q = memchr(q, ',', e - q)); q++)
		if (auth_tail(q, e, &c) && !n++)
			t = c;
	if (n > 1)
		r->ambiguous = true;
	if (!n && (q = find(u, e, "): ")) && auth_failed(q + 3, e))
		set_no_addr(r);		/* no tail: no address, or a malformed one */
	if (n != 1 || !auth_failed(t.end, e) || !get_addr(t.ip, t.ip_end, r->addr))
		return;
	if (outer && (t.v24 || t.start < u))
		u = outer;
	if (t.start - u != 1 || *u != '?')
		al_set_user(r, u, t.start);
	else if ((x = find(t.end, e, "(username: ")) && e[-1] == ')')
		al_set_user(r, x + 11, e - 1);	/* "?" = refused name, echoed last */
	al_set_session(r, t.sess, t.sess_end);
	set_fail(r, AL_P_DOVECOT_AUTH, 1);
	r->per_attempt = true;
}

/* What may follow rhost's value: nothing, or "  user=" and the same U. */
static bool pam_rest_ok(const char *p, const char *e, const char *u, size_t ul)
{
	if (has(p, e, "  user="))
		return (size_t)(e - p - 7) == ul && !memcmp(p + 7, u, ul);
	while (p < e && *p == ' ')
		p++;
	return p == e;
}

/*
 * pam_unix: "authentication failure; logname= uid=0 euid=0 tty=dovecot
 * ruser=U rhost=IP  user=U". Both U are the client's, all before " ruser="
 * is the server's. A single " rhost=" after it is the real one. With more,
 * keep the one reading where the rest is empty or "  user=" + the same U;
 * none or several readings means forged: drop.
 */
static void pam_line(const char *p, const char *e, bool dovecot, struct al_result *r)
{
	const char *q = span(p, e, c_word), *svc, *ru, *k, *ip = NULL, *ie = NULL;
	int all = 0, good = 0;

	if (!has(q, e, "(") || !(q = memchr(svc = q + 1, ')', e - q - 1)) ||
	    !has(q, e, "): authentication failure; "))
		return;
	if (!dovecot && !find(svc, q, "dovecot"))
		return;			/* sshd & co in the same log */
	if (!(ru = find(q, e, " ruser=")))
		return;
	ru += 7;
	for (k = ru; all <= 8 && (k = find(k, e, " rhost=")); k++) {
		const char *a = k + 7, *ae = memchr(a, ' ', e - a);

		bool ok;

		if (!ae)
			ae = e;
		ok = pam_rest_ok(ae, e, ru, k - ru);
		if (!all++ || ok) {	/* the only one, or the consistent one */
			ip = a;
			ie = ae;
		}
		good += ok;
	}
	if (all > 8 || (all > 1 && good != 1)) {
		r->ambiguous = true;
		return;
	}
	if (!all || !get_addr(ip, ie, r->addr)) {
		set_no_addr(r);		/* local (rhost= empty), or malformed */
		return;
	}
	al_set_user(r, ru, ip - 7);
	set_fail(r, AL_P_PAM, 1);
	r->per_attempt = true;
}

/* "auth-worker(123): " or 2.3's "auth(default): " (a service name, not a user) */
static const char *proc_tag(const char *p, const char *e, const char *name)
{
	const char *q;

	if (!eat(&p, e, name))
		return NULL;
	q = span(p, e, c_word);
	return q > p && has(q, e, "): ") ? q + 3 : NULL;
}

static void auth_process(const char *p, const char *e, bool dovecot, struct al_result *r)
{
	const char *outer = has(p, e, "auth(") ? p + 5 : NULL, *q;
	bool auth = false;

	if (eat(&p, e, "auth: ") || eat(&p, e, "dovecot-auth: ")) {
		auth = true;
	} else if ((q = proc_tag(p, e, "auth-worker(")) || (q = proc_tag(p, e, "auth("))) {
		p = q;
		auth = true;
	}
	p = skip_level(p, e);
	if (auth && eat(&p, e, "conn ")) {	/* "conn unix:auth-worker (pid=1,uid=2): auth-worker<3>: " */
		if (!(q = find(p, e, "): ")) || !has(q + 3, e, "auth-worker<"))
			return;
		p = span(q + 15, e, c_digit);
		if (!eat(&p, e, ">: "))
			return;
	}
	if (!has(p, e, "pam_") && (q = al_syslog_tag(p, e)) && has(q, e, "pam_"))
		p = q;			/* PAM's own syslog ident, e.g. "auth[12]: " */
	if (has(p, e, "pam_")) {
		pam_line(p, e, dovecot || auth, r);
		return;
	}
	q = span(p, e, c_word);
	if (q == p || !has(q, e, "("))
		return;
	/* Outside an auth process only 2.4's "auth(" event prefix is a driver
	 * line; "imap(user)..." and the like are sessions, not checks. */
	if (!auth && !(q - p == 4 && has(p, e, "auth")) &&
	    !(q - p == 11 && has(p, e, "auth-worker")))
		return;
	auth_line(q + 1, outer, e, r);
}

void al_dovecot(const char *p, const char *e, struct al_result *r)
{
	bool tagged = false;
	const char *q;

	/* the log process's syslog ident, possibly twice: "dovecot[1]: dovecot: " */
	for (int i = 0; i < 2 && (has(p, e, "dovecot:") || has(p, e, "dovecot[")) &&
			(q = al_syslog_tag(p, e)); i++) {
		p = q;
		tagged = true;
	}
	q = span(p, e, c_alnum);
	if (q > p && has(q, e, "-login: "))
		login_line(skip_level(q + 8, e), e, r);
	else
		auth_process(p, e, tagged, r);
}
