// SPDX-License-Identifier: GPL-2.0
/*
 * Auth-log parser tests: the labelled corpus (tests/data/authlog.tsv, see
 * authlog-README.md), hostile lines, input limits, de-dup and log prefixes.
 * Usage: test_authlog [authlog.tsv]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/addr.h"
#include "authlog/authlog.h"
#include "base/text.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct row {
	int lineno;
	char *source, *label, *ip, *user, *line;
};

static struct row *rows;
static int nrows;
static int nartifacts;

/* Split on the first five tabs; the corpus has no quoting. */
static int load_corpus(const char *path)
{
	char *buf = NULL, *f[6];
	size_t cap = 0;
	ssize_t n;
	int lineno = 0;
	FILE *fp = fopen(path, "r");

	if (!fp)
		return -errno;
	while ((n = getline(&buf, &cap, fp)) > 0) {
		char *p = buf;
		int i;

		if (++lineno == 1)
			continue;	/* header */
		if (buf[n - 1] == '\n')
			buf[n - 1] = '\0';
		for (i = 0; i < 5 && (f[i] = p) && (p = strchr(p, '\t')); i++)
			*p++ = '\0';
		if (i < 5) {
			fprintf(stderr, "  %s:%d: fewer than 6 columns\n", path, lineno);
			continue;
		}
		f[5] = p;
		rows = realloc(rows, (nrows + 1) * sizeof(*rows));
		if (!rows)
			abort();
		rows[nrows++] = (struct row){ lineno, strdup(f[0]), strdup(f[2]), strdup(f[3]),
					      strdup(f[4]), strdup(f[5]) };
	}
	free(buf);
	fclose(fp);
	return nrows ? 0 : -ENODATA;
}

static int source_format(const char *source)
{
	if (!strncmp(source, "dovecot", 7))
		return AUTHLOG_DOVECOT;
	if (!strcmp(source, "cyrus"))
		return AUTHLOG_CYRUS;
	if (!strcmp(source, "courier"))
		return AUTHLOG_COURIER;
	if (!strcmp(source, "uw-imap"))
		return AUTHLOG_UWIMAP;
	return AUTHLOG_AUTO;	/* perdition has no format of its own */
}

static bool same_addr(const uint8_t a[16], const char *want)
{
	uint8_t b[16];

	return !addr_parse_host(want, strlen(want), b) && !memcmp(a, b, 16);
}

/*
 * Some fail rows (auth-worker lines) carry a user column that starts inside
 * the process tag, e.g. "304): pam(username" for "auth-worker(304):
 * pam(username,1.2.3.4)": a labelling artifact, the attempted user is
 * "username". The parser extracts the real user; such rows are matched on
 * the part after the driver's '(' and counted, and reported as SKIP below.
 */
static bool user_artifact(const char *want, const char *got)
{
	size_t w = strlen(want), g = strlen(got);

	return g && w > g + 1 && !strcmp(want + w - g, got) && want[w - g - 1] == '(' &&
	       memmem(want, w - g, "): ", 3);
}

/* NULL if the row is read as its label says, else why not. */
static const char *check_row(const struct row *w, int format, bool *artifact)
{
	struct al_result r;
	char buf[ADDR_STRLEN];
	static char why[512];
	bool fail = !strcmp(w->label, "fail"), ok = !strcmp(w->label, "success");

	*artifact = false;
	if (authlog_parse(w->line, strlen(w->line), format, &r))
		return "skipped (-EINVAL)";
	if (!fail && !ok)
		return r.kind == AL_FAIL ? "other line reported as failure" : NULL;
	if (r.kind != (fail ? AL_FAIL : AL_SUCCESS)) {
		snprintf(why, sizeof(why), "kind %d, want %s%s", r.kind, w->label,
			 r.ambiguous ? " (dropped as ambiguous)" : "");
		return why;
	}
	if (strcmp(w->ip, "-") && !same_addr(r.addr, w->ip)) {
		snprintf(why, sizeof(why), "ip %s, want %s", addr_format_host(r.addr, buf), w->ip);
		return why;
	}
	if (strcmp(w->user, "-") && strcmp(w->user, r.user)) {
		if (fail && r.per_attempt && user_artifact(w->user, r.user)) {
			*artifact = true;
			return NULL;
		}
		snprintf(why, sizeof(why), "user \"%s\", want \"%s\"", r.user, w->user);
		return why;
	}
	return NULL;
}

static void corpus_group(const char *source, bool own_format)
{
	int n = 0, bad = 0;
	bool art;

	for (int i = 0; i < nrows; i++) {
		const struct row *w = &rows[i];
		const char *why;

		if (source && strcmp(w->source, source))
			continue;
		n++;
		why = check_row(w, own_format ? source_format(w->source) : AUTHLOG_AUTO, &art);
		if (why) {
			bad++;
			fprintf(stderr, "  row %d (%s %s): %s\n    %s\n", w->lineno, w->source,
				w->label, why, w->line);
		}
		if (art && !own_format)
			nartifacts++;
	}
	ASSERT_EQ(bad, 0, "rows read as labelled");
	ASSERT_TRUE(n > 0, "rows in group");
}

/* A parser for another server must attribute nothing to corpus lines. */
static void corpus_wrong_format(void)
{
	static const int fmts[] = { AUTHLOG_DOVECOT, AUTHLOG_CYRUS, AUTHLOG_COURIER,
				    AUTHLOG_UWIMAP };
	struct al_result r;

	for (int i = 0; i < nrows; i++) {
		for (size_t f = 0; f < ARRAY_SIZE(fmts); f++) {
			if (fmts[f] == source_format(rows[i].source) ||
			    (!strcmp(rows[i].source, "dovecot-pam") && fmts[f] == AUTHLOG_DOVECOT))
				continue;
			authlog_parse(rows[i].line, strlen(rows[i].line), fmts[f], &r);
			if (r.kind != AL_NONE) {
				test_failed_asserts++;
				fprintf(stderr, "  row %d read by format %d: kind %d\n    %s\n",
					rows[i].lineno, fmts[f], r.kind, rows[i].line);
			}
		}
	}
}

/* ---- hostile lines ---- */

struct hcase {
	const char *name, *line;
	enum al_kind kind;
	const char *ip, *user;	/* NULL = not checked */
	bool ambiguous;
};

static const struct hcase hostile[] = {
	{ "summary user rip=",
	  "Nov 23 03:15:20 vm dovecot: imap-login: Disconnected: Aborted login by logging out "
	  "(auth failed, 1 attempts in 2 secs): user=<rip=198.51.100.9>, method=PLAIN, "
	  "rip=192.0.2.10, lip=192.0.2.1, session=<AAAAAAAAAAAAAAAA>",
	  AL_FAIL, "192.0.2.10", "rip=198.51.100.9", false },
	{ "summary user evil,rip=",
	  "imap-login: Info: Disconnected (auth failed, 1 attempts): user=<evil,rip=198.51.100.9>, "
	  "method=PLAIN, rip=192.0.2.11, lip=192.0.2.1, TLS",
	  AL_FAIL, "192.0.2.11", "evil,rip=198.51.100.9", false },
	{ "summary user x>, rip= without method",
	  "imap-login: Info: Disconnected: Connection closed (auth failed, 1 attempts in 0 secs): "
	  "user=<x>, rip=198.51.100.9, lip=192.0.2.1, session=<fake>, rip=192.0.2.12, "
	  "lip=192.0.2.1, session=<Zm9v>",
	  AL_FAIL, "192.0.2.12", "x>, rip=198.51.100.9, lip=192.0.2.1, session=<fake", false },
	{ "summary user ends with , method=",
	  "imap-login: Info: Login aborted: Logged out (auth failed, 2 attempts in 4 secs) "
	  "(auth_failed): user=<a>, method=PLAIN>, method=PLAIN, rip=192.0.2.13, lip=192.0.2.1",
	  AL_FAIL, "192.0.2.13", "a>, method=PLAIN", false },
	{ "summary user , rip= no closing >",
	  "imap-login: Info: Disconnected (auth failed, 1 attempts): user=<a, rip=198.51.100.9>, "
	  "rip=192.0.2.14, lip=192.0.2.1",
	  AL_FAIL, "192.0.2.14", "a, rip=198.51.100.9", false },
	{ "success user with fake fields",
	  "imap-login: Info: Login: user=<a>, method=PLAIN, rip=198.51.100.9, lip=1.1.1.1, "
	  "mpid=1, session=<x>, method=PLAIN, rip=192.0.2.15, lip=192.0.2.1, mpid=7, TLS, "
	  "session=<Zm9vYmFy>",
	  AL_SUCCESS, "192.0.2.15", "a>, method=PLAIN, rip=198.51.100.9, lip=1.1.1.1, mpid=1, "
	  "session=<x", false },
	{ "reason words inside user (internal failure)",
	  "imap-login: Info: Disconnected: Aborted login by logging out (internal failure, 1 "
	  "successful auths): user=<(auth failed, 5 attempts in 1 secs)>, method=PLAIN, "
	  "rip=192.0.2.16, lip=192.0.2.1",
	  AL_NONE, NULL, NULL, false },
	{ "reason words inside user (no auth attempts)",
	  "imap-login: Info: Disconnected (no auth attempts in 0 secs): user=<x (auth failed, 3 "
	  "attempts) (proxy dest auth failed)>, rip=198.51.100.9, lip=192.0.2.1",
	  AL_NONE, NULL, NULL, false },
	{ "auth line fake tail in user",
	  "Nov 23 03:00:33 auth: Info: passwd-file(a,198.51.100.9,<QUFB>): unknown user,"
	  "192.0.2.17,<QkJC>): unknown user",
	  AL_NONE, NULL, NULL, true },
	{ "auth line fake tail in echoed password",
	  "Nov 23 03:00:33 mail dovecot: auth: sql(bob,192.0.2.18): unknown user (given password: "
	  "x,198.51.100.9): unknown user)",
	  AL_NONE, NULL, NULL, true },
	{ "auth line user with blanks, commas, <>",
	  "auth: Info: passwd-file(a b,c <d> e>,192.0.2.19,<S1>): Password mismatch",
	  AL_FAIL, "192.0.2.19", "a b,c <d> e>", false },
	{ "2.4 auth user posing as 2.3 service tag",
	  "auth(default): pam(x,192.0.2.20,sasl:plain)<S2>: Info: users: unknown user",
	  AL_FAIL, "192.0.2.20", "default): pam(x", false },
	{ "2.4 refused user echoed",
	  "auth(?,192.0.2.21,sasl:plain)<S3>: Info: plain: Username character disallowed by "
	  "auth_username_chars: 0x2c (username: a,198.51.100.9)",
	  AL_FAIL, "192.0.2.21", "a,198.51.100.9", false },
	{ "2.4 refused user echoed with fake tail",
	  "auth(?,192.0.2.22,sasl:plain)<S3>: Info: plain: Username character disallowed by "
	  "auth_username_chars: 0x2c (username: a,198.51.100.9,sasl:plain)<S4>: x)",
	  AL_NONE, NULL, NULL, true },
	{ "session line is not an auth check",
	  "Nov 23 03:03:32 imap(x,198.51.100.9): unknown user)<16726><c2Vz>: Info: Disconnected: "
	  "Logged out in=32 out=788",
	  AL_NONE, NULL, NULL, false },
	{ "pam ruser with fake rhost (old pam_unix)",
	  "dovecot-auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 "
	  "tty=dovecot ruser=a rhost=198.51.100.9 rhost=192.0.2.23",
	  AL_FAIL, "192.0.2.23", "a rhost=198.51.100.9", false },
	{ "pam ruser with fake rhost (user= suffix)",
	  "Nov 23 03:00:01 mail auth: pam_unix(dovecot:auth): authentication failure; logname= "
	  "uid=0 euid=0 tty=dovecot ruser=a rhost=198.51.100.9 rhost=192.0.2.24  user=a "
	  "rhost=198.51.100.9",
	  AL_NONE, NULL, NULL, true },
	{ "pam user= suffix consistent",
	  "Nov 23 03:00:01 mail auth[77]: pam_unix(dovecot:auth): authentication failure; "
	  "logname= uid=0 euid=0 tty=dovecot ruser=a  user=x rhost=192.0.2.25  user=a  user=x",
	  AL_FAIL, "192.0.2.25", "a  user=x", false },
	{ "pam line of another service",
	  "Nov 23 03:00:01 mail sshd[77]: pam_unix(sshd:auth): authentication failure; logname= "
	  "uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.9  user=root",
	  AL_NONE, NULL, NULL, false },
	{ "courier user with ip=[",
	  "Nov 23 03:31:04 mail imapd: LOGIN FAILED, user=x, ip=[198.51.100.9], port=[1], "
	  "ip=[::ffff:192.0.2.26], port=[40126]",
	  AL_FAIL, "192.0.2.26", "x, ip=[198.51.100.9], port=[1]", false },
	{ "uw user with host= [ip]",
	  "Jul 3 20:56:53 h imapd[666]: Login failed user=a host=x [198.51.100.9] auth=a "
	  "host=h.example [192.0.2.27]",
	  AL_FAIL, "192.0.2.27", "a host=x [198.51.100.9]", false },
	/* Found by fuzz_authlog: the name ran to the first " auth=", past the
	 * " host=" the line was accepted for, so only the name made it UW's. */
	{ "uw user holding the only host=",
	  "Jul 3 20:56:53 h imapd[666]: Login failed user=a host=x auth=[192.0.2.40]",
	  AL_FAIL, "192.0.2.40", "a", false },
	/* Found by fuzz_authlog: the name held " override of user=", which
	 * alone made the line a UW "Failed" line. */
	{ "uw override user holding the marker",
	  "Jul 3 20:56:53 h imapd[666]: Failed x override of user=a override of user=b "
	  "host=h [192.0.2.41]",
	  AL_NONE, NULL, NULL, true },
	{ "uw override by a user= name",
	  "Jul 3 20:56:53 h imapd[666]: Failed user=x override of user=pro1 host=h [192.0.2.42]",
	  AL_FAIL, "192.0.2.42", "pro1", false },
	{ "cyrus badlogin user with [ip]",
	  "Nov 23 03:30:03 mail cyrus/imap[1]: badlogin: host [192.0.2.28] plaintext "
	  "[198.51.100.9] SASL(-13): authentication failure: checkpass failed",
	  AL_FAIL, "192.0.2.28", "[198.51.100.9]", false },
	{ "cyrus 3.13 quoted user with fake clienthost",
	  "Nov 23 03:30:06 mail cyrus/imap[4247]: event=login.bad r.clienthost=\"c [192.0.2.29]\" "
	  "u.username=\"x\\\" r.clienthost=\\\"[198.51.100.9]\" login.mech=plaintext",
	  AL_FAIL, "192.0.2.29", "x\" r.clienthost=\"[198.51.100.9]", false },
	{ "perdition user with status=ok",
	  "Jul 18 16:07:18 ares perdition.imaps[3194]: Auth: 192.0.2.30:2274->193.48.191.9:993 "
	  "client-secure=ssl authorisation_id=NONE authentication_id=\"x status=\\\"ok\" "
	  "server=\"imap:993\" protocol=IMAP4S server-secure=ssl status=\"failed: Re-Authentication "
	  "Failure\"",
	  AL_FAIL, "192.0.2.30", NULL, false },
	{ "proxy Login failed forged as Started proxying",
	  "imap-login: Info: proxy(x,h:1): Started proxying to y (1 secs): user=<x,198.18.0.1:"
	  "10143): Login failed: [AUTHENTICATIONFAILED] Authentication failed.: user=<x,h:1): "
	  "Started proxying to y (1 secs): user=<x>, method=PLAIN, rip=192.0.2.31, lip=192.0.2.1, "
	  "session=<Zm9v>",
	  AL_NONE, NULL, NULL, false },
	{ "proxy success with hostile user",
	  "imap-login: Info: proxy(a): Started proxying to b (1 secs),198.18.0.1:10143): Started "
	  "proxying to <198.18.0.1> (0.104 secs): user=<a): Started proxying to b (1 secs)>, "
	  "method=PLAIN, rip=192.0.2.32, lip=192.0.2.1, session=<Zm9v>",
	  AL_SUCCESS, "192.0.2.32", "a): Started proxying to b (1 secs)", false },
	{ "journald MESSAGE inside another value",
	  "{\"_CMDLINE\":\"x \\\"MESSAGE\\\":\\\"imap-login: Login: user=<a>, rip=198.51.100.9\\\"\","
	  "\"MESSAGE\":\"imap-login: Info: Disconnected (auth failed, 1 attempts): user=<b>, "
	  "method=PLAIN, rip=192.0.2.33, lip=192.0.2.1\",\"_PID\":\"1\"}",
	  AL_FAIL, "192.0.2.33", "b", false },
	{ "journald escapes in user",
	  "{\"MESSAGE\":\"imap-login: Login: user=<a\\u003e\\\"b\\\\c\\ud83d\\ude00>, method=PLAIN, "
	  "rip=192.0.2.34, lip=192.0.2.1\"}",
	  AL_SUCCESS, "192.0.2.34", "a>\"b\\c\xf0\x9f\x98\x80", false },
	{ "journald byte-array MESSAGE",
	  "{\"MESSAGE\":[76,79,71,73,78,32,70,65,73,76,69,68,44,32,117,115,101,114,61,195,188,44,32,"
	  "105,112,61,91,49,57,50,46,48,46,50,46,51,53,93]}",
	  AL_FAIL, "192.0.2.35", "\xc3\xbc", false },
};

static void hostile_lines(void)
{
	char buf[ADDR_STRLEN];

	for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
		const struct hcase *c = &hostile[i];
		struct al_result r;
		int err = authlog_parse(c->line, strlen(c->line), AUTHLOG_AUTO, &r);
		bool ok = !err && r.kind == c->kind && r.ambiguous == c->ambiguous &&
			  (!c->ip || same_addr(r.addr, c->ip)) &&
			  (!c->user || !strcmp(r.user, c->user));

		if (!ok) {
			test_failed_asserts++;
			fprintf(stderr, "  %s: err %d kind %d ambiguous %d ip %s user \"%s\"\n    %s\n",
				c->name, err, r.kind, r.ambiguous, addr_format_host(r.addr, buf),
				r.user, c->line);
		}
	}
}

/* ---- bytes that are not UTF-8, and NUL: the failure counts, the user
 * name is cleaned (U+FFFD per bad byte), the address is still the server's;
 * a failure with a bad address is dropped, and says so ---- */

static int parse_str(const char *s, size_t n, struct al_result *r);

#define B(s)	s, sizeof(s) - 1		/* the whole literal, NULs included */
#define FFFD	"\xef\xbf\xbd"
#define SUM	"imap-login: Info: Disconnected (auth failed, 1 attempts): user=<"
#define PAM	"dovecot-auth: pam_unix(dovecot:auth): authentication failure; logname= " \
		"uid=0 euid=0 tty=dovecot ruser="

struct bcase {
	const char *name, *line;
	size_t len;
	enum al_kind kind;
	const char *ip, *user;	/* NULL = not checked */
	int skip;
};

static const struct bcase bad_bytes[] = {
	{ "summary: \\xff", B(SUM "a\xff" "b>, method=PLAIN, rip=192.0.2.50, lip=192.0.2.1"),
	  AL_FAIL, "192.0.2.50", "a" FFFD "b" },
	{ "summary: overlong /", B(SUM "a\xc0\xaf" ">, rip=192.0.2.50, lip=192.0.2.1"),
	  AL_FAIL, "192.0.2.50", "a" FFFD FFFD },
	{ "summary: surrogate", B(SUM "\xed\xa0\x80" ">, rip=192.0.2.50, lip=192.0.2.1"),
	  AL_FAIL, "192.0.2.50", FFFD FFFD FFFD },
	{ "summary: cut sequence", B(SUM "\xe2\x82" ">, rip=192.0.2.50, lip=192.0.2.1"),
	  AL_FAIL, "192.0.2.50", FFFD FFFD },
	{ "summary: past U+10FFFF", B(SUM "\xf4\x90\x80\x80" ">, rip=192.0.2.50"),
	  AL_FAIL, "192.0.2.50", FFFD FFFD FFFD FFFD },
	{ "summary: lone continuation", B(SUM "\x80" ">, rip=192.0.2.50, lip=192.0.2.1"),
	  AL_FAIL, "192.0.2.50", FFFD },
	{ "summary: 5-byte form", B(SUM "\xf8\x88\x80\x80\x80" ">, rip=192.0.2.50"),
	  AL_FAIL, "192.0.2.50", FFFD FFFD FFFD FFFD FFFD },
	{ "summary: NUL in user", B(SUM "a\0b>, method=PLAIN, rip=192.0.2.50, lip=192.0.2.1"),
	  AL_FAIL, "192.0.2.50", "a" FFFD "b" },
	{ "summary: bad byte and fake rip in user",
	  B(SUM "x\xff>, method=PLAIN, rip=198.51.100.9\0, lip=1.1.1.1>, method=PLAIN, "
	    "rip=192.0.2.51, lip=192.0.2.1, session=<Zm9v>"),
	  AL_FAIL, "192.0.2.51", "x" FFFD ">, method=PLAIN, rip=198.51.100.9" FFFD ", lip=1.1.1.1" },
	{ "summary: bad byte after the fields", B(SUM "u>, rip=192.0.2.61, lip=\xff\xfe, TLS"),
	  AL_FAIL, "192.0.2.61", "u" },
	{ "success: bad byte in user", B("imap-login: Login: user=<s\xff>, method=PLAIN, "
					 "rip=192.0.2.64, lip=192.0.2.1, mpid=1"),
	  AL_SUCCESS, "192.0.2.64", "s" FFFD },
	{ "auth 2.3: bad byte in user",
	  B("auth: Info: passwd-file(a\xff" ",192.0.2.52,<VTE>): Password mismatch"),
	  AL_FAIL, "192.0.2.52", "a" FFFD },
	{ "auth 2.4: NUL in user",
	  B("auth(b\0,192.0.2.53,sasl:plain)<VTI>: Info: users: unknown user"),
	  AL_FAIL, "192.0.2.53", "b" FFFD },
	{ "pam: bad byte in ruser", B(PAM "c\xfe rhost=192.0.2.54"),
	  AL_FAIL, "192.0.2.54", "c" FFFD },
	{ "courier: bad byte in user",
	  B("imapd: LOGIN FAILED, user=d\xff, ip=[192.0.2.55], port=[1]"),
	  AL_FAIL, "192.0.2.55", "d" FFFD },
	{ "uw-imap: bad byte in user", B("imapd[1]: Login failed user=e\xff auth=e host=h [192.0.2.56]"),
	  AL_FAIL, "192.0.2.56", "e" FFFD },
	{ "cyrus: bad byte in user",
	  B("cyrus/imap[1]: badlogin: h [192.0.2.57] plaintext f\xff SASL(-13): authentication "
	    "failure: checkpass failed"),
	  AL_FAIL, "192.0.2.57", "f" FFFD },
	{ "cyrus 3.13: bad byte in quoted user",
	  B("cyrus/imap[1]: event=login.bad r.clienthost=\"[192.0.2.58]\" u.username=\"g\\\"\xff\" "
	    "login.mech=plain"),
	  AL_FAIL, "192.0.2.58", "g\"" FFFD },
	{ "journald: byte-array MESSAGE with a bad byte",
	  B("{\"MESSAGE\":[76,79,71,73,78,32,70,65,73,76,69,68,44,32,117,115,101,114,61,255,44,32,105,"
	    "112,61,91,49,57,50,46,48,46,50,46,53,57,93,44,32,112,111,114,116,61,91,49,93]}"),
	  AL_FAIL, "192.0.2.59", FFFD },
	{ "journald: \\u0000 in user",
	  B("{\"MESSAGE\":\"imap-login: Disconnected (auth failed, 1 attempts): user=<h\\u0000>, "
	    "rip=192.0.2.60, lip=192.0.2.1\"}"),
	  AL_FAIL, "192.0.2.60", "h" FFFD },
	/* the address itself broken: dropped, with the reason */
	{ "summary: bad byte in rip", B(SUM "u>, rip=192.0.2.62\xff, lip=192.0.2.1"),
	  AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	{ "summary: NUL in rip", B(SUM "u>, rip=192.0.2.63\0, lip=192.0.2.1"),
	  AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	{ "summary: no rip", B(SUM "u>, method=PLAIN"), AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	{ "auth: bad byte in the address",
	  B("auth: Info: passwd-file(bob,192.0.2.\xff): unknown user"),
	  AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	{ "pam: empty rhost", B(PAM "x rhost="), AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	{ "courier: bad address", B("imapd: LOGIN FAILED, user=x, ip=[192.0.2.\xff], port=[1]"),
	  AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	{ "uw-imap: bad address", B("imapd[1]: Login failed user=x auth=x host=h [192.0.\0.2]"),
	  AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	{ "cyrus: bad address", B("cyrus/imap[1]: badlogin: h [192.0.2.\xff] plaintext x SASL(-13): "
				  "authentication failure"),
	  AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	{ "cyrus 3.13: bad address",
	  B("cyrus/imap[1]: event=login.bad r.clienthost=\"h [::\xff]\" u.username=x"),
	  AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	{ "perdition: bad address",
	  B("perdition.imaps[1]: Fatal Error reading authentication information from client "
	    "192.0.2.\xff:1->192.0.2.1:993: Exiting child"),
	  AL_NONE, NULL, NULL, AL_SKIP_NO_ADDR },
	/* not failures: nothing to count, nothing dropped */
	{ "success: bad address", B("imap-login: Login: user=<s>, rip=192.0.2.\xff, lip=192.0.2.1"),
	  AL_NONE, NULL, NULL, AL_SKIP_NONE },
	{ "other line with bad bytes", B("imap(\xff): Disconnected: Logged out \0 in=1"),
	  AL_NONE, NULL, NULL, AL_SKIP_NONE },
};

static void bad_bytes_lines(void)
{
	char buf[ADDR_STRLEN], big[512];
	struct al_result r;
	int n;

	for (size_t i = 0; i < ARRAY_SIZE(bad_bytes); i++) {
		const struct bcase *c = &bad_bytes[i];
		int err = authlog_parse(c->line, c->len, AUTHLOG_AUTO, &r);
		bool ok = !err && r.kind == c->kind && r.skip == c->skip &&
			  (!c->ip || same_addr(r.addr, c->ip)) &&
			  (!c->user || !strcmp(r.user, c->user)) &&
			  utf8_valid(r.user, strlen(r.user)) &&
			  r.user_cleaned == (c->user && strstr(c->user, FFFD));

		if (!ok) {
			test_failed_asserts++;
			fprintf(stderr, "  %s: err %d kind %d skip %d ip %s user \"%s\" cleaned %d\n",
				c->name, err, r.kind, r.skip, addr_format_host(r.addr, buf), r.user,
				r.user_cleaned);
		}
	}
	/* A long name of bad bytes: cut on a character boundary. */
	n = snprintf(big, sizeof(big), SUM);
	memset(big + n, 0xff, 200);
	n += 200;
	n += snprintf(big + n, sizeof(big) - n, ">, rip=192.0.2.65, lip=192.0.2.1");
	ASSERT_OK(parse_str(big, n, &r), "long bad user");
	ASSERT_EQ(r.kind, AL_FAIL, "long bad user: counted");
	ASSERT_EQ(strlen(r.user), 42 * 3, "long bad user: 42 x U+FFFD");
	ASSERT_TRUE(utf8_valid(r.user, strlen(r.user)), "long bad user: valid UTF-8");
}

/* ---- input limits ---- */

static int parse_str(const char *s, size_t n, struct al_result *r)
{
	return authlog_parse(s, n, AUTHLOG_AUTO, r);
}

static void input_limits(void)
{
	static const char *const bad_json[] = {
		"{\"MESSAGE\":\"\\ud800\"}",
		"{\"MESSAGE\":\"x\",\"MESSAGE\":\"y\"}", "{\"MESSAGE\":\"unterminated}",
		"{\"MESSAGE\":[256]}", "{\"MESSAGE\":\"a\\qb\"}",
		"{\"MESSAGE\" \"x\"}", "{\"MESSAGE\":\"x\"} trailing",
		"{\"MESSAGE\":null}", "{\"MESSAGE\":[\"x\",\"y\"]}", "{\"MESSAGE\":{\"a\":1}}",
	};
	/* NUL is a byte like another in a MESSAGE (see bad_bytes) */
	static const char *const nul_json[] = { "{\"MESSAGE\":\"a\\u0000b\"}", "{\"MESSAGE\":[0]}" };
	const char *fail = "imap-login: Info: Disconnected (auth failed, 1 attempts): user=<u>, "
			   "method=PLAIN, rip=192.0.2.50, lip=192.0.2.1";
	size_t flen = strlen(fail);
	char *big = malloc(AL_LINE_MAX + 2), line[256];
	struct al_result r;

	/* exactly AL_LINE_MAX is read, one more byte is not */
	memset(big, 'x', AL_LINE_MAX + 1);
	memcpy(big, fail, flen);
	memcpy(big + flen, ", TLS: ", 7);
	ASSERT_OK(parse_str(big, AL_LINE_MAX, &r), "8 KiB line");
	ASSERT_EQ(r.kind, AL_FAIL, "8 KiB line kind");
	ASSERT_EQ(parse_str(big, AL_LINE_MAX + 1, &r), -EINVAL, "8 KiB + 1 line");
	ASSERT_EQ(r.skip, AL_SKIP_LONG, "8 KiB + 1 line: reason");
	big[AL_LINE_MAX] = '\n';	/* the newline does not count */
	ASSERT_OK(parse_str(big, AL_LINE_MAX + 1, &r), "8 KiB line + newline");
	free(big);

	snprintf(line, sizeof(line), "imap-login: Info: Disconnected (auth failed, 1 attempts): "
		 "user=<J\xc3\xbcrgen\xe2\x82\xac\xf0\x9f\x98\x80>, rip=192.0.2.50");
	ASSERT_OK(parse_str(line, strlen(line), &r), "valid UTF-8");
	ASSERT_STREQ(r.user, "J\xc3\xbcrgen\xe2\x82\xac\xf0\x9f\x98\x80", "UTF-8 user");
	for (size_t i = 0; i < ARRAY_SIZE(bad_json); i++) {
		ASSERT_EQ(parse_str(bad_json[i], strlen(bad_json[i]), &r), -EINVAL, bad_json[i]);
		ASSERT_EQ(r.skip, AL_SKIP_JSON, bad_json[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(nul_json); i++) {
		ASSERT_OK(parse_str(nul_json[i], strlen(nul_json[i]), &r), nul_json[i]);
		ASSERT_EQ(r.kind, AL_NONE, nul_json[i]);
	}
	ASSERT_OK(parse_str("{\"_PID\":\"1\"}", 12, &r), "JSON without MESSAGE");
	ASSERT_EQ(r.kind, AL_NONE, "JSON without MESSAGE kind");
	ASSERT_OK(parse_str("", 0, &r), "empty line");
	ASSERT_EQ(authlog_parse(fail, flen, 99, &r), -EINVAL, "unknown format");

	/* a long user is cut on a UTF-8 boundary */
	memset(line, 0, sizeof(line));
	strcpy(line, "auth: passwd-file(");
	for (int i = 0; i < 70; i++)
		strcat(line, "\xc3\xbc");
	strcat(line, ",192.0.2.51): unknown user");
	ASSERT_OK(parse_str(line, strlen(line), &r), "long user");
	ASSERT_EQ(strlen(r.user), 126, "long user cut");
}

/* ---- passwords that some lines carry are never copied out ---- */

static void passwords(void)
{
	static const struct {
		const char *line, *secret, *user;
	} c[] = {
		{ "2024-12-31T06:56:17.784598+01:00 mail dovecot: auth-worker(10377): conn "
		  "unix:auth-worker (pid=919,uid=112): auth-worker<1>: sql(testing@example.com,"
		  "192.168.1.1): unknown user (given password: Password123$)",
		  "Password123", "testing@example.com" },
		{ "auth(bob,192.0.2.60,sasl:plain)<UzE>: Info: users: Password mismatch (given "
		  "password: hunter2)", "hunter2", "bob" },
		{ "Nov 23 03:00:01 main dovecot: auth: ldap(carol,192.0.2.61,<UzI>): Password "
		  "mismatch (for LDAP bind) (SHA1 of given password: f638ff)", "f638ff", "carol" },
		{ "auth: passwd-file(dave,192.0.2.62): Password mismatch (given password: "
		  "dave,192.0.2.62)", "dave,", "dave" },
	};
	struct al_result r;

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		ASSERT_OK(authlog_parse(c[i].line, strlen(c[i].line), AUTHLOG_AUTO, &r), "parse");
		ASSERT_EQ(r.kind, AL_FAIL, c[i].line);
		ASSERT_STREQ(r.user, c[i].user, "user");
		ASSERT_TRUE(!memmem(&r, sizeof(r), c[i].secret, strlen(c[i].secret)),
			    "secret not in result");
	}
}

/* ---- de-dup: per-attempt lines or summaries weighted by N, never both ---- */

static void feed(struct al_dedup *d, const char *line, uint32_t want)
{
	struct al_result r;

	if (!ASSERT_OK(authlog_parse(line, strlen(line), AUTHLOG_AUTO, &r), line))
		return;
	if (!ASSERT_EQ(al_dedup_count(d, &r), want, "failures counted"))
		fprintf(stderr, "    %s\n", line);
}

static void dedup(void)
{
	struct al_dedup *d = al_dedup_new(64);
	char line[256];

	if (!ASSERT_OK_PTR(d, "al_dedup_new"))
		return;
	/* 2.3: two auth lines, then the summary says 3 attempts: 3 in all */
	feed(d, "auth: Info: passwd-file(alice,198.18.0.14,<tcNkw+hgT9LGEgAO>): Password mismatch", 1);
	feed(d, "auth: Info: passwd-file(bob,198.18.0.14,<tcNkw+hgT9LGEgAO>): Password mismatch", 1);
	feed(d, "imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 3 "
		"attempts in 18 secs): user=<root>, method=PLAIN, rip=198.18.0.14, lip=198.18.0.1, "
		"session=<tcNkw+hgT9LGEgAO>", 1);
	/* 2.4: session id after the parenthesis */
	feed(d, "auth(bob,198.18.0.184,sasl:plain)<qkdUBelgg7zGEgC4>: Info: users: Password "
		"mismatch", 1);
	feed(d, "imap-login: Info: Login aborted: Logged out (auth failed, 3 attempts in 18 secs) "
		"(auth_failed): user=<root>, method=PLAIN, rip=198.18.0.184, lip=198.18.0.1, "
		"session=<qkdUBelgg7zGEgC4>", 2);
	/* proxy: auth line, front summary, back summary of one session: once */
	feed(d, "auth(proxyuser,198.18.0.211,sasl:plain)<KP+sDOlgia7GEgDT>: Info: users: "
		"Password mismatch", 1);
	feed(d, "imap-login: Info: Login aborted: Logged out (proxy dest authentication failure, "
		"1/1 successful auths in 2 secs) (proxy_dest_auth_failed): user=<proxyuser>, "
		"method=PLAIN, rip=198.18.0.211, lip=198.18.0.1, session=<KP+sDOlgia7GEgDT>", 0);
	feed(d, "imap-login: Info: Login aborted: Connection closed (auth failed, 1 attempts in 2 "
		"secs) (auth_failed): user=<proxyuser>, method=PLAIN, rip=198.18.0.211, "
		"lip=198.18.0.1, secured, session=<KP+sDOlgia7GEgDT>", 0);
	/* summaries alone count N; lines without a session count as they are */
	feed(d, "imap-login: Info: Disconnected (auth failed, 4 attempts in 9 secs): user=<x>, "
		"method=PLAIN, rip=192.0.2.70, lip=192.0.2.1, session=<bm9uZQ>", 4);
	feed(d, "Jan 29 05:32:50 mail dovecot: auth-worker(304): pam(username,1.2.3.4): "
		"pam_authenticate() failed: Authentication failure (password mismatch?)", 1);
	feed(d, "imap-login: Info: Disconnected (auth failed, 4 attempts): user=<x>, method=PLAIN, "
		"rip=192.0.2.71, lip=192.0.2.1", 4);
	feed(d, "imap-login: Info: Login: user=<alice>, method=PLAIN, rip=198.18.0.18, "
		"lip=198.18.0.1, mpid=15447, TLS, session=<tcNkw+hgT9LGEgAO>", 0);
	/* bounded: a forgotten session's summary counts in full (errs to counting) */
	for (int i = 0; i < 10000; i++) {
		snprintf(line, sizeof(line), "auth: passwd-file(u,192.0.2.72,<s%d>): unknown user", i);
		feed(d, line, 1);
	}
	feed(d, "imap-login: Info: Disconnected (auth failed, 2 attempts): user=<u>, method=PLAIN, "
		"rip=192.0.2.72, lip=192.0.2.1, session=<s0>", 2);
	feed(d, "imap-login: Info: Disconnected (auth failed, 2 attempts): user=<u>, method=PLAIN, "
		"rip=192.0.2.72, lip=192.0.2.1, session=<s9999>", 1);
	/* A session the auth policy server claimed counts nothing here: its
	 * report counted it. Another session is untouched. */
	al_dedup_claim(d, "cLaImEd");
	feed(d, "auth: Info: passwd-file(carol,198.18.0.15,<cLaImEd>): Password mismatch", 0);
	feed(d, "imap-login: Info: Disconnected (auth failed, 3 attempts in 9 secs): user=<carol>, "
		"method=PLAIN, rip=198.18.0.15, lip=198.18.0.1, session=<cLaImEd>", 0);
	feed(d, "auth: Info: passwd-file(carol,198.18.0.15,<uNcLaImEd>): Password mismatch", 1);
	al_dedup_free(d);
	d = NULL;	/* no table: plain per-line counting */
	feed(d, "imap-login: Info: Disconnected (auth failed, 3 attempts): user=<u>, method=PLAIN, "
		"rip=192.0.2.72, lip=192.0.2.1, session=<s1>", 3);
}

/* ---- every format behind every prefix ---- */

struct pmsg {
	const char *name, *tag, *app, *msg;
	int format;
	enum al_kind kind;
	const char *ip, *user;
};

static const struct pmsg pmsgs[] = {
	{ "dovecot login", "dovecot[12]", "dovecot",
	  "imap-login: Disconnected (auth failed, 2 attempts in 5 secs): user=<u1>, "
	  "method=PLAIN, rip=192.0.2.40, lip=192.0.2.1, session=<U2Vzcw>",
	  AUTHLOG_DOVECOT, AL_FAIL, "192.0.2.40", "u1" },
	{ "dovecot auth", "dovecot", "dovecot",
	  "auth: passwd-file(u2,2001:db8::40,<U2Vzcw>): Password mismatch",
	  AUTHLOG_DOVECOT, AL_FAIL, "2001:db8::40", "u2" },
	{ "dovecot 2.4 success", "dovecot", "dovecot",
	  "imap-login: Logged in: user=<u3>, method=PLAIN, rip=::ffff:192.0.2.41, "
	  "lip=192.0.2.1, mpid=5, session=<QQ>",
	  AUTHLOG_DOVECOT, AL_SUCCESS, "192.0.2.41", "u3" },
	{ "dovecot pam", "auth", "auth",
	  "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot "
	  "ruser=u8 rhost=192.0.2.46  user=u8",
	  AUTHLOG_DOVECOT, AL_FAIL, "192.0.2.46", "u8" },
	{ "cyrus", "cyrus/imaps[4243]", "cyrus/imaps",
	  "badlogin: h.example [2001:db8::42] PLAIN (u4) [SASL(-13): authentication failure: "
	  "checkpass failed]",
	  AUTHLOG_CYRUS, AL_FAIL, "2001:db8::42", "u4" },
	{ "cyrus 3.13", "cyrus/imap[7]", "cyrus/imap",
	  "event=login.bad r.clienthost=\"[192.0.2.43]\" u.username=u5 login.mech=plaintext",
	  AUTHLOG_CYRUS, AL_FAIL, "192.0.2.43", "u5" },
	{ "courier", "imapd", "imapd",
	  "LOGIN FAILED, user=u6, ip=[::ffff:192.0.2.44], port=[1234]",
	  AUTHLOG_COURIER, AL_FAIL, "192.0.2.44", "u6" },
	{ "uw-imap", "imapd[666]", "imapd",
	  "Login failed user=u7 auth=u7 host=h.example [192.0.2.45]",
	  AUTHLOG_UWIMAP, AL_FAIL, "192.0.2.45", "u7" },
};

static const char *const prefixes[] = {
	"Nov  3 04:05:06 mx %T: %M",
	"Nov 23 04:05:06.123456 mx %T: %M",
	"Nov 23 04:05:06 %T: %M",
	"2026-11-23T03:11:02.123456+01:00 mx %T: %M",
	"2026-11-23T03:11:02Z mx %T: %M",
	"2026-11-23 03:11:02+0100 mx %T: %M",
	"<22>Nov 23 04:05:06 mx %T: %M",
	"<22>1 2026-11-23T03:11:02.003Z mx %A 12 - - %M",
	"<22>1 2026-11-23T03:11:02.003Z mx.example %A 12 ID47 [ex@32473 a=\"x\\\"]y\"][b@1 c=\"d\"] %M",
	"<22>1 2026-11-23T03:11:02Z mx %A - - - \xef\xbb\xbf%M",
	"@4000000068f1b2c3d4e5f6a7 %M",
	"{\"SYSLOG_IDENTIFIER\":\"%A\",\"MESSAGE\":\"%J\",\"_PID\":[1,2]}",
	"%M",
};

/* Expand %T (tag), %A (app name), %M (message), %J (message, JSON-escaped). */
static void expand(char *out, size_t len, const char *fmt, const struct pmsg *m)
{
	size_t o = 0;

	for (const char *f = fmt; *f && o + 1 < len; f++) {
		const char *s = NULL;

		if (*f == '%' && f[1]) {
			f++;
			s = *f == 'T' ? m->tag : *f == 'A' ? m->app : m->msg;
		}
		if (!s) {
			out[o++] = *f;
			continue;
		}
		for (; *s && o + 2 < len; s++) {
			if (*f == 'J' && (*s == '"' || *s == '\\'))
				out[o++] = '\\';
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

static void prefixed(const struct pmsg *m)
{
	char line[1024], buf[ADDR_STRLEN];

	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		expand(line, sizeof(line), prefixes[i], m);
		for (int pass = 0; pass < 2; pass++) {
			struct al_result r;
			int err = authlog_parse(line, strlen(line), pass ? m->format : AUTHLOG_AUTO, &r);

			if (err || r.kind != m->kind || !same_addr(r.addr, m->ip) ||
			    strcmp(r.user, m->user)) {
				test_failed_asserts++;
				fprintf(stderr, "  format %d: err %d kind %d ip %s user \"%s\"\n    %s\n",
					pass ? m->format : 0, err, r.kind,
					addr_format_host(r.addr, buf), r.user, line);
			}
		}
	}
}

static void fields(void)
{
	static const char *l23 = "Nov 23 03:11:35 vm dovecot[19120]: imap-login: Disconnected: "
		"Aborted login by logging out (auth failed, 3 attempts in 18 secs): user=<root>, "
		"method=PLAIN, rip=198.18.0.104, lip=198.18.0.1, session=<uOl98uhgXZ7GEgBo>";
	static const char *a24 = "Nov 23 03:18:25 auth(admin,198.18.0.208,sasl:plain,master)"
		"<pxgCDOlgm5DGEgDQ>: Info: masters: Password mismatch";
	static const char *a23 = "2026-11-23T03:11:51+0000 vm dovecot[19120]: auth: passwd-file("
		"admin,198.18.0.128,master,<Gd2G9OhgNa3GEgCA>): Password mismatch";
	struct al_result r;

	ASSERT_OK(authlog_parse(l23, strlen(l23), AUTHLOG_DOVECOT, &r), "summary");
	ASSERT_EQ(r.attempts, 3, "summary attempts");
	ASSERT_TRUE(!r.per_attempt, "summary is not per attempt");
	ASSERT_STREQ(r.session, "uOl98uhgXZ7GEgBo", "summary session");
	ASSERT_EQ(r.parser, AL_P_DOVECOT_LOGIN, "summary parser");
	ASSERT_OK(authlog_parse(a24, strlen(a24), AUTHLOG_DOVECOT, &r), "2.4 auth");
	ASSERT_EQ(r.attempts, 1, "auth attempts");
	ASSERT_TRUE(r.per_attempt, "auth line is per attempt");
	ASSERT_STREQ(r.session, "pxgCDOlgm5DGEgDQ", "2.4 session");
	ASSERT_STREQ(r.user, "admin", "2.4 master user");
	ASSERT_EQ(r.parser, AL_P_DOVECOT_AUTH, "auth parser");
	ASSERT_OK(authlog_parse(a23, strlen(a23), AUTHLOG_DOVECOT, &r), "2.3 auth");
	ASSERT_STREQ(r.session, "Gd2G9OhgNa3GEgCA", "2.3 session");
	ASSERT_TRUE(same_addr(r.addr, "198.18.0.128"), "2.3 master ip");
}

int main(int argc, char **argv)
{
	static const char *const sources[] = { "dovecot-2.2", "dovecot-2.3", "dovecot-2.4",
					       "dovecot-pam", "cyrus", "courier", "uw-imap",
					       "perdition" };
	const char *path = argc > 1 ? argv[1] : "tests/data/authlog.tsv";
	char name[128];
	int err = load_corpus(path);

	if (err) {
		printf("FAIL corpus: cannot read %s: %s\n", path, strerror(-err));
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(sources); i++) {
		int n = 0;

		for (int j = 0; j < nrows; j++)
			n += !strcmp(rows[j].source, sources[i]);
		snprintf(name, sizeof(name), "corpus %s (%d rows, auto)", sources[i], n);
		RUN_CASE(name, corpus_group(sources[i], false));
	}
	snprintf(name, sizeof(name), "corpus, all %d rows with their own format", nrows);
	RUN_CASE(name, corpus_group(NULL, true));
	RUN_CASE("corpus, other formats attribute nothing", corpus_wrong_format());
	if (nartifacts) {
		snprintf(name, sizeof(name), "corpus user column taken literally (%d rows)",
			 nartifacts);
		SKIP_CASE(name, "the column starts inside the auth-worker/auth(default) process "
			  "tag (e.g. \"304): pam(username\"); the parser reports the user after "
			  "the passdb driver's '(', checked as that suffix");
	}
	RUN_CASE("hostile lines", hostile_lines());
	RUN_CASE("input limits", input_limits());
	RUN_CASE("bad bytes: failures counted, only the user cleaned", bad_bytes_lines());
	RUN_CASE("passwords never copied", passwords());
	RUN_CASE("fields: attempts, session, per-attempt", fields());
	RUN_CASE("de-dup auth lines and summaries", dedup());
	for (size_t i = 0; i < ARRAY_SIZE(pmsgs); i++) {
		snprintf(name, sizeof(name), "prefixes: %s", pmsgs[i].name);
		RUN_CASE(name, prefixed(&pmsgs[i]));
	}
	for (int i = 0; i < nrows; i++) {
		free(rows[i].source);
		free(rows[i].label);
		free(rows[i].ip);
		free(rows[i].user);
		free(rows[i].line);
	}
	free(rows);
	return test_cases_failed != 0;
}
