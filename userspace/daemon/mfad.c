// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon's MFA service (mfad.h): knock datagrams and the unlock portal
 * turn a user's TOTP code into a grant for the sender's address.
 *
 * Everything that arrives is hostile: datagrams are bounded (longer ones are
 * refused unread), checked in the order that costs an attacker most and us
 * least (size, format, age, user, HMAC, nonce, code), and never answered, so
 * a scanner learns nothing, not even that the port is open. Only
 * authenticated failures (a valid HMAC with a wrong code, or a portal POST,
 * which comes over TCP and cannot be spoofed) count towards bans: a spoofed
 * UDP source must not be able to get a victim banned. Every refusal is
 * counted (imapguard_mfa_attempts_total). Secrets and codes are never
 * logged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "base/epsrc.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/prom.h"
#include "base/state.h"
#include "daemon/http.h"
#include "daemon/mfad.h"
#include "fastpath/grants.h"
#include "fastpath/lists.h"
#include "policy/mfa.h"

#define KNOCK_BATCH		64	/* datagrams per wake-up: a flood cannot hog the loop */
#define PORTAL_MAX_CONNS	64
#define PORTAL_MAX_PER_IP	8
#define PORTAL_TIMEOUT_S	10
#define PORTAL_MAX_REQUEST	(16 * 1024)
#define PORTAL_MAX_BODY		1024
#define PORTAL_POSTS_PER_MIN	10	/* per client address */
#define PEM_MAX			(1u << 20)
#define SWEEP_PER_TICK		4096	/* grant entries looked at per second */

enum mfa_result {
	R_GRANTED,
	R_TOO_LONG,		/* datagram over MFA_KNOCK_MAX */
	R_MALFORMED,
	R_STALE,		/* time more than 60 s off */
	R_UNKNOWN_USER,
	R_BAD_HMAC,
	R_NONCE_REPLAY,		/* this datagram was seen */
	R_CODE_REUSED,		/* a right code whose time step is spent */
	R_BAD_CODE,
	R_LOCKED,		/* the user's codes are locked */
	R_BANNED,		/* source over max_code_failures: banned now */
	R_CSRF,			/* portal: token or origin wrong */
	R_RATE,			/* portal: too many POSTs */
	R_ERROR,		/* grant map full, ... */
	R_MAX
};

static const char *const result_names[R_MAX] = {
	[R_GRANTED] = "granted", [R_TOO_LONG] = "too_long", [R_MALFORMED] = "malformed",
	[R_STALE] = "stale", [R_UNKNOWN_USER] = "unknown_user", [R_BAD_HMAC] = "bad_hmac",
	[R_NONCE_REPLAY] = "replay", [R_CODE_REUSED] = "code_reused", [R_BAD_CODE] = "bad_code",
	[R_LOCKED] = "locked", [R_BANNED] = "banned", [R_CSRF] = "csrf", [R_RATE] = "rate_limited",
	[R_ERROR] = "error",
};

enum via { VIA_KNOCK, VIA_PORTAL, VIA_MAX };
static const char *const via_names[VIA_MAX] = { "knock", "portal" };

struct mfad {
	struct mfad_hooks h;
	struct ig_maps *m;
	int epfd;
	struct pol_mfa cfg;		/* trusted_proxies is copied separately */
	struct ig_prefix *proxies;
	size_t nproxies;
	uint64_t detect_ban_ns;
	struct mfa_db db;
	bool have_secrets;
	struct stat secrets_st;		/* of the file last read (or tried) */
	bool secrets_warned;
	int knock_fd;
	uint16_t knock_port;
	struct ep_src knock_src;
	struct mfa_nonces *nonces;
	struct mfa_src_fails *src_fails, *posts;
	struct http_server *portal;
	struct http_route portal_route;
	char portal_listen[64];
	char *pem_cert, *pem_key;
	bool portal_tls;
	uint64_t results[VIA_MAX][R_MAX];
	uint64_t grants_swept;
	struct grant_cursor sweep;
};

/* ---- helpers ------------------------------------------------------------ */

static void emit(struct mfad *s, json_t *j)
{
	char *line = json_take_string(j);

	if (line)
		s->h.emit(s->h.ctx, line);
	free(line);
}

static json_t *event(const char *type, const uint8_t addr[16], const char *user, enum via via)
{
	char a[ADDR_STRLEN];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	addr_format_host(addr, a);
	return json_pack("{s:o, s:s, s:s, s:o, s:s}", "ts",
			 json_fixed(ts.tv_sec + ts.tv_nsec / 1e9, 3), "type", type, "addr", a,
			 "user", json_text(user ? user : ""), "via", via_names[via]);
}

static void sa_to_addr(const struct sockaddr *sa, uint8_t out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

static uint64_t ban_ns(const struct mfad *s)
{
	return s->cfg.ban_set ? s->cfg.ban_ns : s->detect_ban_ns;
}

/* ---- secrets ------------------------------------------------------------ */

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Grants of users no longer in the file end with them. */
static void end_removed(struct mfad *s, const struct mfa_db *old)
{
	for (size_t i = 0; i < old->n; i++) {
		int n;

		if (mfa_user_find(&s->db, old->users[i].name))
			continue;
		s->h.lock(s->h.ctx, true);
		n = grant_del_user(s->m, old->users[i].name);
		s->h.lock(s->h.ctx, false);
		if (n > 0)
			pr_info("mfa: %s left the secrets file: ended %d grant%s", old->users[i].name,
				n, n == 1 ? "" : "s");
	}
}

/* Read the secrets file if it changed since the last look (or force). */
static void secrets_check(struct mfad *s, bool force)
{
	struct mfa_db old = {};
	char err[POL_ERR_LEN];
	struct stat st;
	int ret;

	if (!s->cfg.secrets[0])
		return;
	if (stat(s->cfg.secrets, &st)) {
		if (!s->secrets_warned)
			pr_warn("mfa: secrets file '%s': %s (no user can earn a grant)",
				s->cfg.secrets, strerror(errno));
		s->secrets_warned = true;
		memset(&s->secrets_st, 0, sizeof(s->secrets_st));
		return;
	}
	if (!force && s->have_secrets && same_file(&st, &s->secrets_st))
		return;
	if (!force && !s->have_secrets && s->secrets_warned && same_file(&st, &s->secrets_st))
		return;
	s->secrets_st = st;
	/* Keep a copy of the names only to end removed users' grants. */
	for (size_t i = 0; i < s->db.n; i++) {
		struct mfa_user *u = NULL;

		if (!old.n)
			old.users = calloc(s->db.n, sizeof(*old.users));
		if (!old.users)
			break;
		u = &old.users[old.n++];
		memcpy(u->name, s->db.users[i].name, sizeof(u->name));
	}
	ret = mfa_secrets_load(s->cfg.secrets, &s->db, err, sizeof(err));
	if (ret) {
		pr_warn("mfa: %s; %s", err, s->have_secrets ? "the users read before stay" :
			"no user can earn a grant");
		s->secrets_warned = true;
	} else {
		pr_info("mfa: read %zu user%s from %s", s->db.n, s->db.n == 1 ? "" : "s",
			s->cfg.secrets);
		s->have_secrets = true;
		s->secrets_warned = false;
		end_removed(s, &old);
	}
	free(old.users);
}

/* ---- the one decision ------------------------------------------------------ */

/* Source failures: at max_code_failures within the window, ban. */
static enum mfa_result source_failed(struct mfad *s, const uint8_t src[16], const char *user,
				     enum via via)
{
	struct ig_prefix p;
	uint32_t n = mfa_src_fail(s->src_fails, src, time(NULL), s->cfg.window_ns / NS_PER_SEC);

	if (n < s->cfg.max_code_failures)
		return R_BAD_CODE;
	mfa_src_reset(s->src_fails, src);
	grant_prefix_of(src, 64, &p);
	if (addr_is_v4(src))
		p.plen = 128;
	s->h.ban(s->h.ctx, &p, ban_ns(s), "mfa: code failures");
	pr_info("mfa: %u failed codes from a source: banned", n);
	emit(s, event("mfa_ban", src, user, via));
	return R_BANNED;
}

/* A code for user from src: grant, or why not. */
static enum mfa_result attempt(struct mfad *s, const char *user, const char *code,
			       const uint8_t src[16], enum via via, uint64_t *expires)
{
	struct mfa_user *u = mfa_user_find(&s->db, user);
	char a[ADDR_STRLEN];
	struct ig_prefix p;
	bool locked_now;
	int err;

	addr_format_host(src, a);
	if (!u) {
		/* The portal takes guesses from anyone: count them. */
		return via == VIA_PORTAL ? source_failed(s, src, NULL, via) : R_UNKNOWN_USER;
	}
	switch (mfa_check_code(u, code, time(NULL), s->cfg.max_code_failures,
			       s->cfg.window_ns / NS_PER_SEC, s->cfg.lock_ns / NS_PER_SEC,
			       &locked_now)) {
	case MFA_OK:
		break;
	case MFA_REPLAY:
		pr_info("mfa: %s from %s via %s: a code already used", user, a, via_names[via]);
		return R_CODE_REUSED;
	case MFA_LOCKED:
		return R_LOCKED;
	default:
		pr_info("mfa: %s from %s via %s: wrong code", user, a, via_names[via]);
		if (locked_now) {
			pr_warn("mfa: %s: %u wrong codes, codes locked for %llu s", user,
				s->cfg.max_code_failures,
				(unsigned long long)(s->cfg.lock_ns / NS_PER_SEC));
			emit(s, event("mfa_lock", src, user, via));
		}
		return source_failed(s, src, user, via);
	}
	mfa_src_reset(s->src_fails, src);
	grant_prefix_of(src, s->cfg.grant_plen6, &p);
	s->h.lock(s->h.ctx, true);
	err = grant_add(s->m, &p, user, s->cfg.grant_ttl_ns, expires);
	s->h.lock(s->h.ctx, false);
	s->h.save(s->h.ctx);	/* the spent time step, to the state file */
	if (err) {
		pr_warn("mfa: Couldn't grant %s to %s: %s", addr_format(&p, a), user,
			err == -E2BIG ? "the grant map is full" : strerror(-err));
		return R_ERROR;
	}
	pr_info("mfa: granted %s to %s via %s for %llu s", addr_format(&p, a), user,
		via_names[via], (unsigned long long)(s->cfg.grant_ttl_ns / NS_PER_SEC));
	emit(s, json_pack("{s:o, s:s, s:s, s:s, s:s, s:I}", "ts",
			  json_fixed((double)time(NULL), 3), "type", "grant", "addr", a,
			  "user", user, "via", via_names[via],
			  "ttl_s", (json_int_t)(s->cfg.grant_ttl_ns / NS_PER_SEC)));
	return R_GRANTED;
}

/* ---- knock -------------------------------------------------------------- */

static enum mfa_result knock_one(struct mfad *s, const char *buf, size_t n, const uint8_t src[16])
{
	struct mfa_knock k;
	struct mfa_user *u;
	time_t now = time(NULL);

	if (n > MFA_KNOCK_MAX)
		return R_TOO_LONG;
	if (mfa_knock_parse(buf, n, &k))
		return R_MALFORMED;
	if (k.time > now + MFA_KNOCK_AGE_S || k.time < now - MFA_KNOCK_AGE_S)
		return R_STALE;
	u = mfa_user_find(&s->db, k.user);
	if (!u)
		return R_UNKNOWN_USER;
	if (!mfa_knock_verify(buf, &k, u->knock_key))
		return R_BAD_HMAC;
	/* Only authenticated datagrams reach the cache: no flood fills it. */
	if (mfa_nonce_seen(s->nonces, k.nonce, now))
		return R_NONCE_REPLAY;
	return attempt(s, k.user, k.code, src, VIA_KNOCK, NULL);
}

void mfad_knock_ready(struct mfad *s)
{
	char buf[MFA_KNOCK_MAX + 1];
	struct sockaddr_storage ss;
	uint8_t src[16];

	for (int i = 0; i < KNOCK_BATCH; i++) {
		socklen_t len = sizeof(ss);
		/* MSG_TRUNC: the real length, so an oversized datagram is refused
		 * as such, never parsed in part. */
		ssize_t n = recvfrom(s->knock_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&ss, &len);
		enum mfa_result r;

		if (n < 0)
			return;
		if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
			continue;
		sa_to_addr((struct sockaddr *)&ss, src);
		r = knock_one(s, buf, (size_t)n, src);
		s->results[VIA_KNOCK][r]++;
		OPENSSL_cleanse(buf, sizeof(buf));
	}
}

/* Bind fd to sa; at start-up (patient), EADDRINUSE is retried for up to 2 s:
 * a daemon killed a moment ago may still be releasing its socket (its
 * files close after it stopped looking alive). Never in the loop. */
static int bind_patient(int fd, const struct sockaddr *sa, socklen_t len, bool patient)
{
	struct timespec pause = { 0, 100 * 1000000 };

	for (int i = 0; i < (patient ? 20 : 1); i++) {
		if (!bind(fd, sa, len))
			return 0;
		if (errno != EADDRINUSE)
			break;
		if (patient)
			nanosleep(&pause, NULL);
	}
	return -1;
}

static int knock_open(struct mfad *s, bool patient)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in sa4 = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->knock_src };
	int fd, zero = 0, err;

	s->knock_port = s->cfg.knock_port;
	if (!s->knock_port)
		return 0;
	sa.sin6_port = sa4.sin_port = htons(s->knock_port);
	/* One socket for both families; IPv4 only where IPv6 is off. */
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
			bind_patient(fd, (struct sockaddr *)&sa, sizeof(sa), patient))) {
		err = -errno;
		close(fd);
		fd = -1;
		/* In use: not a reason to fall back to IPv4 only. */
		if (err == -EADDRINUSE) {
			pr_warn("mfa: Couldn't listen for knocks on UDP port %u: %s", s->knock_port,
				strerror(-err));
			return err;
		}
	}
	if (fd < 0) {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind_patient(fd, (struct sockaddr *)&sa4, sizeof(sa4), patient)) {
			err = -errno;
			pr_warn("mfa: Couldn't listen for knocks on UDP port %u: %s", s->knock_port,
				strerror(-err));
			if (fd >= 0)
				close(fd);
			return err;
		}
	}
	s->knock_fd = fd;
	s->knock_src = (struct ep_src){ SRC_KNOCK, s };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		err = -errno;
		close(fd);
		s->knock_fd = -1;
		return err;
	}
	pr_info("mfa: listening for knocks on UDP port %u", s->knock_port);
	return 0;
}

static void knock_close(struct mfad *s)
{
	if (s->knock_fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->knock_fd, NULL);
		close(s->knock_fd);
	}
	s->knock_fd = -1;
	s->knock_port = 0;
}

/* ---- portal ------------------------------------------------------------- */

static const char page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>Unlock mail access</title>\n<style>body{font-family:sans-serif;max-width:26em;"
	"margin:2em auto;padding:0 1em}label,input,button{display:block;width:100%;"
	"box-sizing:border-box;margin:.4em 0;font-size:1.1em}.error{color:#b00000}"
	".granted{color:#006000}</style></head><body>\n<h1>Unlock mail access</h1>\n";

static const char page_form[] =
	"<form method=\"post\" action=\"/\">\n"
	"<input type=\"hidden\" name=\"csrf\" value=\"%s\">\n"
	"<label for=\"user\">User name</label>\n"
	"<input id=\"user\" name=\"user\" autocomplete=\"username\" autocapitalize=\"none\" "
	"maxlength=\"63\" required>\n"
	"<label for=\"code\">Code from your authenticator app</label>\n"
	"<input id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{6}\" "
	"maxlength=\"6\" autocomplete=\"one-time-code\" required>\n"
	"<button id=\"unlock\" type=\"submit\">Unlock</button>\n</form>\n"
	"<p>This lets the address you connect from, %s, reach the mail server.</p>\n";

/* The headers of every portal answer: no framing, no scripts, no caching.
 * Referrer-Policy same-origin, not no-referrer: under no-referrer browsers
 * send "Origin: null" with the form, which origin_ok() must refuse. */
static char *portal_headers(const char *cookie)
{
	char *h = NULL;

	if (asprintf(&h, "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "
		     "form-action 'self'; frame-ancestors 'none'; base-uri 'none'\n"
		     "X-Frame-Options: DENY\nX-Content-Type-Options: nosniff\n"
		     "Referrer-Policy: same-origin\nCache-Control: no-store\n%s%s%s",
		     cookie ? "Set-Cookie: " : "", cookie ? cookie : "", cookie ? "\n" : "") < 0)
		return NULL;
	return h;
}

static int page(struct http_reply *rep, unsigned int status, const char *msg_class,
		const char *msg, const char *token, const char *addr, bool tls)
{
	char *body = NULL, *form = NULL, cookie[128];
	int n;

	if (token && asprintf(&form, page_form, token, addr) < 0)
		return -ENOMEM;
	n = asprintf(&body, "%s%s%s%s%s%s%s</body></html>\n", page_head,
		     msg ? "<p class=\"" : "", msg ? msg_class : "", msg ? "\" id=\"result\">" : "",
		     msg ? msg : "", msg ? "</p>\n" : "", form ? form : "");
	free(form);
	if (n < 0)
		return -ENOMEM;
	snprintf(cookie, sizeof(cookie), "ig_csrf=%s; Path=/; HttpOnly; SameSite=Strict%s",
		 token ? token : "", tls ? "; Secure" : "");
	rep->headers = portal_headers(token ? cookie : NULL);
	if (!rep->headers) {
		free(body);
		return -ENOMEM;
	}
	rep->status = status;
	rep->content_type = "text/html; charset=utf-8";
	rep->body = body;
	rep->body_len = n;
	return 0;
}

static bool in_proxies(const struct mfad *s, const uint8_t addr[16])
{
	struct ig_prefix h = { .plen = 128 };

	memcpy(h.addr, addr, 16);
	for (size_t i = 0; i < s->nproxies; i++)
		if (addr_contains(&s->proxies[i], &h))
			return true;
	return false;
}

/* The client: the peer, or behind a trusted proxy the address that proxy
 * appended last to X-Forwarded-For (the ones before it are the client's
 * word). false: a trusted proxy sent a bad header. */
static bool client_addr(const struct mfad *s, const struct http_request *req, uint8_t out[16])
{
	const char *xff, *last;
	size_t n;

	sa_to_addr(req->peer, out);
	if (!in_proxies(s, out))
		return true;
	xff = http_header(req, "X-Forwarded-For");
	if (!xff)
		return true;	/* the proxy itself */
	last = strrchr(xff, ',');
	last = last ? last + 1 : xff;
	last += strspn(last, " \t");
	n = strcspn(last, " \t");
	return n && !addr_parse_host(last, n, out);
}

static int hexv(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* name's value in an application/x-www-form-urlencoded body, decoded into
 * out; false if missing, too long, or holding a NUL or control byte. */
static bool form_value(const char *body, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < len;) {
		size_t end = i;

		while (end < len && body[end] != '&')
			end++;
		if (end - i > nl && !memcmp(body + i, name, nl) && body[i + nl] == '=') {
			size_t o = 0;

			for (size_t j = i + nl + 1; j < end; j++) {
				int c = (unsigned char)body[j];

				if (c == '+')
					c = ' ';
				else if (c == '%') {
					if (j + 2 >= end || hexv(body[j + 1]) < 0 || hexv(body[j + 2]) < 0)
						return false;
					c = hexv(body[j + 1]) << 4 | hexv(body[j + 2]);
					j += 2;
				}
				if (c < 0x20 || c == 0x7f || o + 1 >= outlen)
					return false;
				out[o++] = (char)c;
			}
			out[o] = '\0';
			return true;
		}
		i = end + 1;
	}
	return false;
}

/* The ig_csrf cookie's value, into out. */
static bool cookie_value(const char *cookies, char *out, size_t outlen)
{
	const char *p = cookies;

	while (p && *p) {
		p += strspn(p, " ;");
		if (!strncmp(p, "ig_csrf=", 8)) {
			size_t n = strcspn(p + 8, "; ");

			if (!n || n >= outlen)
				return false;
			memcpy(out, p + 8, n);
			out[n] = '\0';
			return true;
		}
		p = strchr(p, ';');
	}
	return false;
}

/* An Origin header, if sent, must name this very host (Host header). */
static bool origin_ok(const struct http_request *req)
{
	const char *origin = http_header(req, "Origin"), *host = http_header(req, "Host"), *o;

	if (!origin)
		return true;	/* browsers send it on POST; scripts may not */
	if (!host || !strcmp(origin, "null"))
		return false;
	o = strstr(origin, "://");
	return o && !strcmp(o + 3, host);
}

static int portal_page(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	struct mfad *s = ctx;
	char token[33], ftok[40], ctok[40], user[IG_USER_LEN], code[16], a[ADDR_STRLEN];
	char msg[256], until[64];
	const char *why;
	uint8_t raw[16], src[16];
	uint64_t expires = 0;
	enum mfa_result r;
	time_t t;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	for (int i = 0; i < 16; i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	if (!req->peer)
		return page(rep, 400, "error", "No client address.", NULL, "", s->portal_tls);
	if (!client_addr(s, req, src))
		return page(rep, 400, "error", "Bad X-Forwarded-For from the proxy.", NULL, "",
			    s->portal_tls);
	addr_format_host(src, a);
	if (req->method != HTTP_POST)
		return page(rep, 200, NULL, NULL, token, a, s->portal_tls);

	if (mfa_src_fail(s->posts, src, time(NULL), 60) > PORTAL_POSTS_PER_MIN) {
		s->results[VIA_PORTAL][R_RATE]++;
		return page(rep, 429, "error", "Too many attempts: wait a minute.", token, a,
			    s->portal_tls);
	}
	/* Double-submit token (a cross-site page can neither read nor set our
	 * SameSite=Strict cookie) and, when the browser sends it, the Origin. */
	why = !origin_ok(req) ? "Origin is not this host" :
	      !cookie_value(http_header(req, "Cookie"), ctok, sizeof(ctok)) ? "no token cookie" :
	      !form_value(req->body, req->body_len, "csrf", ftok, sizeof(ftok)) ? "no token field" :
	      strlen(ftok) != strlen(ctok) || CRYPTO_memcmp(ftok, ctok, strlen(ctok)) ?
	      "token field and cookie differ" : NULL;
	if (why) {
		pr_debug("mfa: portal POST from %s refused: %s", a, why);
		s->results[VIA_PORTAL][R_CSRF]++;
		return page(rep, 403, "error", "The form expired: please try again.", token, a,
			    s->portal_tls);
	}
	if (!form_value(req->body, req->body_len, "user", user, sizeof(user)) ||
	    !form_value(req->body, req->body_len, "code", code, sizeof(code)) ||
	    !mfa_user_name_ok(user)) {
		s->results[VIA_PORTAL][R_MALFORMED]++;
		return page(rep, 400, "error", "Enter your user name and the 6-digit code.", token, a,
			    s->portal_tls);
	}
	r = attempt(s, user, code, src, VIA_PORTAL, &expires);
	s->results[VIA_PORTAL][r]++;
	OPENSSL_cleanse(code, sizeof(code));
	if (r == R_GRANTED) {
		t = time(NULL) + (time_t)((expires - mono_ns()) / NS_PER_SEC);
		strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", gmtime(&t));
		/* user passed mfa_user_name_ok: nothing in it needs HTML escaping. */
		snprintf(msg, sizeof(msg), "Access granted to %s from %s until %s.", user, a, until);
		return page(rep, 200, "granted", msg, NULL, a, s->portal_tls);
	}
	/* One answer for every wrong guess: no oracle for user names. */
	return page(rep, 403, "error",
		    r == R_LOCKED || r == R_BANNED ? "Too many wrong codes: try again later." :
		    "Wrong user name or code.", token, a, s->portal_tls);
}

static int portal_open(struct mfad *s)
{
	struct http_conf conf = {
		.name = "portal", .listen = s->cfg.portal_listen,
		.max_conns = PORTAL_MAX_CONNS, .max_per_ip = PORTAL_MAX_PER_IP,
		.timeout_s = PORTAL_TIMEOUT_S, .max_request = PORTAL_MAX_REQUEST,
		.routes = &s->portal_route, .nroutes = 1,
	};
	size_t len;
	int err;

	snprintf(s->portal_listen, sizeof(s->portal_listen), "%s", s->cfg.portal_listen);
	if (!s->portal_listen[0])
		return 0;
	if (s->cfg.portal_cert[0]) {
		if ((err = file_read(s->cfg.portal_cert, PEM_MAX, 0, &s->pem_cert, &len)) ||
		    (err = file_read(s->cfg.portal_key, PEM_MAX, 0, &s->pem_key, &len))) {
			pr_warn("mfa: portal certificate or key: %s", file_strerror(err));
			return err;
		}
		conf.tls_cert = s->pem_cert;
		conf.tls_key = s->pem_key;
		s->portal_tls = true;
	}
	s->portal_route = (struct http_route){ "/", HTTP_GET | HTTP_HEAD | HTTP_POST,
					       PORTAL_MAX_BODY, portal_page, s };
	err = http_open(&s->portal, &conf, s->epfd);
	if (err) {
		pr_warn("mfa: Couldn't start the unlock portal on %s: %s", s->portal_listen,
			strerror(-err));
		return err;
	}
	pr_info("mfa: unlock portal on %s://%s/", s->portal_tls ? "https" : "http",
		s->portal_listen);
	return 0;
}

static void portal_close(struct mfad *s)
{
	http_close(s->portal);
	s->portal = NULL;
	if (s->pem_key)
		OPENSSL_cleanse(s->pem_key, strlen(s->pem_key));
	free(s->pem_key);
	free(s->pem_cert);
	s->pem_key = s->pem_cert = NULL;
	s->portal_tls = false;
	s->portal_listen[0] = '\0';
}

/* ---- life cycle ----------------------------------------------------------- */

static int take_config(struct mfad *s, const struct policy *pol)
{
	struct ig_prefix *px = NULL;

	if (pol->mfa.trusted_proxies.n) {
		px = calloc(pol->mfa.trusted_proxies.n, sizeof(*px));
		if (!px)
			return -ENOMEM;
		memcpy(px, pol->mfa.trusted_proxies.v, pol->mfa.trusted_proxies.n * sizeof(*px));
	}
	free(s->proxies);
	s->proxies = px;
	s->nproxies = pol->mfa.trusted_proxies.n;
	s->cfg = pol->mfa;
	memset(&s->cfg.trusted_proxies, 0, sizeof(s->cfg.trusted_proxies));
	s->detect_ban_ns = pol->detect.ban_time_ns;
	return 0;
}

int mfad_open(struct mfad **out, const struct mfad_hooks *h, const struct policy *pol,
	      struct ig_maps *m, int epfd)
{
	struct mfad *s = calloc(1, sizeof(*s));
	int err;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->h = *h;
	s->m = m;
	s->epfd = epfd;
	s->knock_fd = -1;
	s->nonces = malloc(sizeof(*s->nonces));
	s->src_fails = malloc(sizeof(*s->src_fails));
	s->posts = malloc(sizeof(*s->posts));
	if (!s->nonces || !s->src_fails || !s->posts || mfa_nonces_init(s->nonces) ||
	    mfa_src_init(s->src_fails) || mfa_src_init(s->posts) || take_config(s, pol) ||
	    mfa_init()) {
		mfad_close(s);
		return -ENOMEM;
	}
	/* The secrets file matters only when something can take a code. */
	if (s->cfg.knock_port || s->cfg.portal_listen[0])
		secrets_check(s, true);
	if ((err = knock_open(s, true)) || (err = portal_open(s))) {
		mfad_close(s);
		return err;
	}
	*out = s;
	return 0;
}

void mfad_tick(struct mfad *s)
{
	int n;

	if (s->cfg.knock_port || s->cfg.portal_listen[0])
		secrets_check(s, false);
	s->h.lock(s->h.ctx, true);
	n = grant_sweep_some(s->m, &s->sweep, SWEEP_PER_TICK);
	s->h.lock(s->h.ctx, false);
	if (n > 0) {
		s->grants_swept += n;
		pr_info("mfa: %d grant%s expired", n, n == 1 ? "" : "s");
	}
}

void mfad_reconfigure(struct mfad *s, const struct policy *pol)
{
	char old_secrets[PATH_MAX];

	snprintf(old_secrets, sizeof(old_secrets), "%s", s->cfg.secrets);
	if (take_config(s, pol))
		pr_warn("mfa: out of memory: trusted_proxies unchanged");
	if (s->cfg.knock_port != s->knock_port) {
		knock_close(s);
		knock_open(s, false);
	}
	/* A new certificate or address: a fresh server. */
	portal_close(s);
	portal_open(s);
	if (strcmp(old_secrets, s->cfg.secrets) || !s->have_secrets)
		secrets_check(s, true);
}

/* Records: "grant ADDR USER EXPIRES CREATED" (wall clock seconds), then the
 * run-time state of users ("mfa ..."). */
static int put_line(void *ctx, const char *line)
{
	return state_put(ctx, "%s", line);
}

int mfad_save(struct mfad *s, FILE *f)
{
	uint64_t now = mono_ns();
	time_t wall = time(NULL);
	struct grant_info *g;
	char a[ADDR_STRLEN];
	size_t n;
	int err = grant_list(s->m, &g, &n);

	if (err)
		return err;
	for (size_t i = 0; !err && i < n; i++) {
		if (g[i].expires_ns <= now)
			continue;
		err = state_put(f, "grant %s %s %lld %llu", addr_format(&g[i].pfx, a), g[i].user,
				(long long)(wall + (g[i].expires_ns - now) / NS_PER_SEC + 1),
				(unsigned long long)g[i].created);
	}
	free(g);
	return err ? err : mfa_state_write(&s->db, put_line, f);
}

int mfad_load_line(struct mfad *s, const char *line, bool adopted)
{
	char addr[ADDR_STRLEN + 8], user[IG_USER_LEN];
	unsigned long long created;
	long long expires;
	struct ig_prefix p;
	time_t now = time(NULL);
	uint64_t left;
	int off = 0, err;

	if (strncmp(line, "grant ", 6))
		return mfa_state_line(&s->db, line);
	/* Adopted maps hold every grant, CLI changes included (as for bans). */
	if (adopted)
		return 0;
	if (sscanf(line, "grant %70s %63s %lld %llu%n", addr, user, &expires, &created, &off) != 4 ||
	    line[off] || addr_parse(addr, &p, false) || !grant_prefix_ok(&p) || !grant_user_ok(user))
		return -EINVAL;
	if (expires <= now)
		return 0;	/* expired while we were down */
	left = (uint64_t)(expires - now);
	if (left > POL_DURATION_MAX_NS / NS_PER_SEC)
		left = POL_DURATION_MAX_NS / NS_PER_SEC;
	s->h.lock(s->h.ctx, true);
	err = grant_put(s->m, &p, user, mono_ns() + left * NS_PER_SEC, created);
	s->h.lock(s->h.ctx, false);
	return err;
}

void mfad_metrics(struct mfad *s, FILE *f)
{
	prom_head(f, "imapguard_mfa_attempts_total", "counter",
		  "Knock datagrams and portal requests, by outcome.");
	for (int v = 0; v < VIA_MAX; v++)
		for (int r = 0; r < R_MAX; r++)
			fprintf(f, "imapguard_mfa_attempts_total{via=\"%s\",result=\"%s\"} %llu\n",
				via_names[v], result_names[r], (unsigned long long)s->results[v][r]);
	prom_u64(f, "imapguard_mfa_users", "gauge", "Users in the secrets file.", s->db.n);
	prom_head(f, "imapguard_mfa_grants", "gauge",
		  "Grant entries in the map (expired ones until swept).");
	fprintf(f, "imapguard_mfa_grants %ld\n", map_count(s->m->grants));
}

struct http_server *mfad_http(struct mfad *s)
{
	return s ? s->portal : NULL;
}

int mfad_bind_check(struct mfad *s, const uint8_t addr[16], const char *user)
{
	int err;

	if (!s || !s->cfg.bind_user)
		return 0;
	err = grant_bind_check(s->m, addr, user);
	return err == -EACCES ? -EACCES : 0;
}

void mfad_close(struct mfad *s)
{
	if (!s)
		return;
	knock_close(s);
	portal_close(s);
	if (s->nonces)
		mfa_nonces_fini(s->nonces);
	if (s->src_fails)
		mfa_src_fini(s->src_fails);
	if (s->posts)
		mfa_src_fini(s->posts);
	free(s->nonces);
	free(s->src_fails);
	free(s->posts);
	free(s->proxies);
	mfa_db_free(&s->db);
	free(s);
}
