// SPDX-License-Identifier: GPL-2.0
/*
 * Auth-log throughput: the daemon's whole log path (file follower, parser,
 * session de-duplication, detector) over a large generated Dovecot log.
 *
 *   authbench gen FILE LINES     write a realistic mail log (syslog format)
 *   authbench run FILE [--runs N]
 *
 * The generated log is what an IMAP server under a password-spraying attack
 * writes: login-process summaries of failed logins (three Dovecot wordings),
 * auth-process lines for a third of those sessions (auth_verbose), logins,
 * session ends, LMTP deliveries, TLS scanners, postfix and master noise.
 * Attackers are 6000 IPv4 and IPv6 sources trying dictionary users; legit
 * users log in from 3000 other addresses. Addresses are from 198.18.0.0/15
 * and 2001:db8::/32.
 */
#include <getopt.h>
#include <unistd.h>
#include "authlog/authlog.h"
#include "bench.h"
#include "authlog/detector.h"
#include "authlog/follow.h"
#include "policy/policy.h"

#define ATTACKERS	6000
#define USERS		3000

static const char *const dict[] = {
	"admin", "info", "test", "user", "support", "office", "mail", "webmaster", "sales",
	"contact", "postmaster", "root", "backup", "marketing", "hr", "billing",
};
static const char *const mons[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 11) % n);
}

static void attacker(char *buf, size_t len, uint32_t i)
{
	if (i % 6 == 5)	/* a sixth of the attack comes over IPv6 */
		snprintf(buf, len, "2001:db8:bad:%x::%x", i / 6 % 4096, 1 + i % 97);
	else
		snprintf(buf, len, "198.18.%u.%u", 128 + i / 250 % 128, 1 + i % 250);
}

static void legit(char *buf, size_t len, uint32_t i)
{
	if (i % 4 == 3)
		snprintf(buf, len, "2001:db8:600d:%x::%x", i / 4, 2 + i % 50);
	else
		snprintf(buf, len, "198.19.%u.%u", i / 250 % 200, 1 + i % 250);
}

static void session(char *buf, size_t len)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i + 1 < len && i < 16; i++)
		buf[i] = b64[rnd(64)];
	buf[len < 17 ? len - 1 : 16] = '\0';
}

static int gen(const char *path, long lines)
{
	char ip[64], sess[20], user[64], prefix[64];
	long t = 0, n = 0;
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	while (n < lines) {
		uint32_t kind = rnd(100), mpid = 10000 + rnd(50000);
		int mday = 1 + (int)(t / 86400 % 28);

		t += rnd(3);	/* a busy server: ~1 line a second */
		snprintf(prefix, sizeof(prefix), "%s %2d %02ld:%02ld:%02ld mail", mons[10], mday,
			 t / 3600 % 24, t / 60 % 60, t % 60);
		session(sess, sizeof(sess));
		if (kind < 34) {	/* failed login: summary, a third with auth lines */
			uint32_t a = rnd(ATTACKERS), tries = 1 + rnd(3), w = rnd(3);

			attacker(ip, sizeof(ip), a);
			snprintf(user, sizeof(user), "%s%s", dict[rnd(16)], rnd(2) ? "@example.org" : "");
			if (rnd(3) == 0) {
				for (uint32_t k = 0; k < tries; k++, n++)
					fprintf(f, "%s dovecot: auth: passwd-file(%s,%s,<%s>): %s\n", prefix,
						user, ip, sess, rnd(2) ? "Password mismatch" : "unknown user");
			}
			if (w == 0)
				fprintf(f, "%s dovecot: imap-login: Disconnected (auth failed, %u attempts in %u secs): "
					"user=<%s>, method=PLAIN, rip=%s, lip=198.18.0.1, TLS, session=<%s>\n",
					prefix, tries, 2 + tries * 2, user, ip, sess);
			else if (w == 1)
				fprintf(f, "%s dovecot: imap-login: Disconnected: Connection closed (auth failed, %u attempts in %u secs): "
					"user=<%s>, method=PLAIN, rip=%s, lip=198.18.0.1, TLS, session=<%s>\n",
					prefix, tries, 2 + tries * 2, user, ip, sess);
			else
				fprintf(f, "%s dovecot: imap-login: Aborted login (auth failed, %u attempts in %u secs): "
					"user=<%s>, method=LOGIN, rip=%s, lip=198.18.0.1, session=<%s>\n",
					prefix, tries, 2 + tries * 2, user, ip, sess);
		} else if (kind < 50) {	/* successful login */
			uint32_t u = rnd(USERS);

			legit(ip, sizeof(ip), u);
			fprintf(f, "%s dovecot: imap-login: Login: user=<u%u@example.org>, method=PLAIN, rip=%s, "
				"lip=198.18.0.1, mpid=%u, TLS, session=<%s>\n", prefix, u, ip, mpid, sess);
		} else if (kind < 65) {	/* session end */
			fprintf(f, "%s dovecot: imap(u%u@example.org)<%u><%s>: Disconnected: Logged out "
				"in=%u out=%u deleted=0 expunged=0 trashed=0 hdr_count=%u hdr_bytes=%u "
				"body_count=0 body_bytes=0\n", prefix, rnd(USERS), mpid, sess, 50 + rnd(500),
				500 + rnd(90000), rnd(40), rnd(20000));
		} else if (kind < 78) {	/* delivery */
			fprintf(f, "%s dovecot: lmtp(u%u@example.org)<%u><%s>: msgid=<%u.%u@example.net>: "
				"saved mail to INBOX\n", prefix, rnd(USERS), mpid, sess, rnd(1u << 30), mpid);
		} else if (kind < 86) {	/* scanners */
			attacker(ip, sizeof(ip), rnd(ATTACKERS));
			fprintf(f, "%s dovecot: imap-login: Disconnected: Connection closed (no auth attempts in 0 secs): "
				"user=<>, rip=%s, lip=198.18.0.1, TLS handshaking: SSL_accept() failed: "
				"error:0A00006C:SSL routines::bad key share, session=<%s>\n", prefix, ip, sess);
		} else if (kind < 98) {	/* the MTA shares the log */
			attacker(ip, sizeof(ip), rnd(ATTACKERS));
			fprintf(f, "%s postfix/smtpd[%u]: connect from unknown[%s]\n", prefix, mpid, ip);
		} else {
			fprintf(f, "%s dovecot: master: Warning: service(imap-login): process_limit (100) "
				"reached, client connections are being dropped\n", prefix);
		}
		n++;
	}
	if (fclose(f))
		return -errno;
	return 0;
}

struct run_ctx {
	struct al_dedup *dedup;
	struct detector *det;
	uint64_t lines, fails, successes, skipped, bans;
};

static void on_event(const struct det_event *ev, void *ctx)
{
	struct run_ctx *r = ctx;

	if (ev->kind == DET_EV_BAN && !ev->extend)
		r->bans++;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* What authwatch.c's on_line does for every line. */
static void on_line(void *ctx, const char *line, size_t len)
{
	struct run_ctx *r = ctx;
	struct al_result res;
	uint32_t n;

	r->lines++;
	if (authlog_parse(line, len, AUTHLOG_AUTO, &res)) {
		r->skipped++;
		return;
	}
	if (res.kind == AL_FAIL) {
		n = al_dedup_count(r->dedup, &res);
		if (n) {
			r->fails += n;
			detector_fail(r->det, res.addr, res.user, n, wall_ns());
		}
	} else if (res.kind == AL_SUCCESS) {
		r->successes++;
		detector_success(r->det, res.addr, wall_ns());
	}
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* *rate: lines per CPU second (the machine is shared: CPU time, not wall
 * time, is what another process cannot inflate); *wall: lines per second. */
static int run_once(const char *path, double *rate, double *wall, struct run_ctx *r)
{
	struct policy pol;
	struct det_hooks hooks = { .event = on_event };
	struct follower *f;
	uint64_t t0, t1;
	double c0, c1;
	int n = 0;

	policy_init(&pol);
	memset(r, 0, sizeof(*r));
	hooks.ctx = r;
	r->det = detector_new(&pol.detect, &hooks, 1u << 20);	/* as the daemon */
	r->dedup = al_dedup_new(65536);
	f = follow_file_open("bench", path, false);
	if (!r->det || !r->dedup || !f) {
		fprintf(stderr, "authbench: setup failed: %s\n", strerror(errno));
		return -ENOMEM;
	}
	t0 = bench_now_ns();
	c0 = cpu_s();
	/* Bounded: each call delivers up to FOLLOW_BATCH_LINES lines. */
	for (long i = 0; i < (1L << 30) / FOLLOW_BATCH_LINES; i++) {
		n = follow_process(f, on_line, r);
		if (n <= 0)
			break;
	}
	t1 = bench_now_ns();
	c1 = cpu_s();
	follow_close(f);
	al_dedup_free(r->dedup);
	detector_free(r->det);
	if (n < 0) {
		fprintf(stderr, "authbench: reading '%s': %s\n", path, strerror(-n));
		return n;
	}
	*rate = r->lines / (c1 - c0);
	*wall = r->lines / ((t1 - t0) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	struct run_ctx r;
	double rates[32], walls[32];
	int runs = 3, err = 0;

	if (argc >= 4 && !strcmp(argv[1], "gen")) {
		err = gen(argv[2], atol(argv[3]));
		if (err)
			fprintf(stderr, "authbench: Couldn't write '%s': %s\n", argv[2], strerror(-err));
		return err != 0;
	}
	if (argc < 3 || strcmp(argv[1], "run")) {
		fprintf(stderr, "usage: authbench gen FILE LINES | run FILE [--runs N]\n");
		return 1;
	}
	if (argc >= 5 && !strcmp(argv[3], "--runs"))
		runs = atoi(argv[4]);
	if (runs < 1 || runs > 32)
		return 1;
	for (int i = 0; i < runs && !err; i++)
		err = run_once(argv[2], &rates[i], &walls[i], &r);
	if (!err)
		bench_emit("auth", "imapguard", "imapguard: follower + parser + detector", "lines/s",
			   rates, runs, "per CPU second; %llu lines: %llu failures counted, %llu "
			   "successes, %llu bans, %llu skipped; wall-clock median %.0f lines/s",
			   (unsigned long long)r.lines, (unsigned long long)r.fails,
			   (unsigned long long)r.successes, (unsigned long long)r.bans,
			   (unsigned long long)r.skipped, bench_pct(walls, runs, 0.5));
	return err != 0;
}
