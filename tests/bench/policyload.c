// SPDX-License-Identifier: GPL-2.0
/*
 * Load for the auth policy server (bench section "policy"): CLIENTS
 * keep-alive HTTP/1.1 connections, each with one request in flight, as
 * Dovecot's auth process keeps them, sending Dovecot's own request bodies
 * (its attribute names, sorted as it sorts them): three allow requests for
 * every report, sources spread over a /16. Requests are paced at RATE a
 * second for SECONDS; latency is from the request's send to the last byte of
 * its answer. The client sleeps between sends with epoll_pwait2() and no
 * timer slack. Prints "M" lines (bench.h): the rate answered, the verdicts
 * per CPU second of the daemon (from /proc/PID/stat), p50 and p99 latency.
 *
 *   bench_policyload --port P --key-file F --daemon-pid PID
 *                    [--clients 32] [--rate 5000] [--seconds 5] [--tag ID:TEXT]
 *
 * --tag: only the longest answer, as row "max_ID", with TEXT saying what
 * else the daemon was doing meanwhile (a state file save, say): a stall of
 * the loop delays the 32 requests in flight, too few to move p99.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench.h"

#define MAXC 256

struct conn {
	int fd;
	bool busy;
	uint64_t sent;
	char in[4096];
	size_t inlen;
};

static double proc_cpu_s(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');
	/* fields 14 and 15 (utime, stime) after the comm field's ')' */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static int dial(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("policyload: connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static size_t build(char *out, size_t len, const char *key, uint64_t i)
{
	char body[512];
	bool report = i % 4 == 3;
	int n = snprintf(body, sizeof(body),
		"{\"device_id\":\"\",\"login\":\"user%llu\",\"protocol\":\"imap\","
		"\"pwhash\":\"%03llx\",\"remote\":\"198.18.%llu.%llu\","
		"\"session_id\":\"bEnCh%llu\"%s}",
		(unsigned long long)(i % 5000), (unsigned long long)(i % 4093),
		(unsigned long long)(i / 256 % 256), (unsigned long long)(i % 256),
		(unsigned long long)i,
		report ? ",\"success\":true,\"policy_reject\":false" : "");

	return snprintf(out, len, "POST /?command=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			"User-Agent: dovecot/auth-policy-client\r\nContent-Type: application/json\r\n"
			"X-IMAPGuard-Key: %s\r\nContent-Length: %d\r\n\r\n%s",
			report ? "report" : "allow", key, n, body);
}

/* A whole answer in c->in: 1, with its bytes consumed; 0: not yet. */
static int answered(struct conn *c)
{
	char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4), *cl;
	size_t head, need;

	if (!end)
		return 0;
	head = end + 4 - c->in;
	cl = memmem(c->in, head, "Content-Length:", 15);
	need = head + (cl ? strtoul(cl + 15, NULL, 10) : 0);
	if (c->inlen < need)
		return 0;
	if (strncmp(c->in, "HTTP/1.1 200", 12)) {
		fprintf(stderr, "policyload: answer %.20s\n", c->in);
		exit(1);
	}
	memmove(c->in, c->in + need, c->inlen - need);
	c->inlen -= need;
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", 1, 0, 'p' }, { "key-file", 1, 0, 'k' }, { "daemon-pid", 1, 0, 'd' },
		{ "clients", 1, 0, 'c' }, { "rate", 1, 0, 'r' }, { "seconds", 1, 0, 's' },
		{ "tag", 1, 0, 't' }, {}
	};
	const char *tag = NULL, *tag_text = NULL;
	int port = 0, pid = 0, nc = 32, rate = 5000, opt, ep;
	double secs = 5, cpu0, cpu1, *lat;
	char key[300] = "", req[1024];
	uint64_t t0, next, end, i = 0, done = 0, nlat = 0, maxlat;
	struct conn *c;
	FILE *f;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'd': pid = atoi(optarg); break;
		case 'c': nc = atoi(optarg); break;
		case 'r': rate = atoi(optarg); break;
		case 's': secs = atof(optarg); break;
		case 't':
			tag = optarg;
			tag_text = strchr(optarg, ':');
			if (!tag_text)
				return 1;
			tag_text++;
			break;
		case 'k':
			f = fopen(optarg, "r");
			if (!f || !fgets(key, sizeof(key), f))
				return 1;
			fclose(f);
			key[strcspn(key, "\r\n")] = '\0';
			break;
		default: return 1;
		}
	}
	if (!port || !pid || !key[0] || nc < 1 || nc > MAXC || rate < 1) {
		fprintf(stderr, "usage: %s --port P --key-file F --daemon-pid PID [--clients N] "
			"[--rate R] [--seconds S] [--tag ID:TEXT]\n", argv[0]);
		return 1;
	}
	maxlat = (uint64_t)(rate * secs) + 16;
	lat = calloc(maxlat, sizeof(*lat));
	c = calloc(nc, sizeof(*c));
	ep = epoll_create1(0);
	for (int k = 0; k < nc; k++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = k };

		c[k].fd = dial(port);
		epoll_ctl(ep, EPOLL_CTL_ADD, c[k].fd, &ev);
	}
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	cpu0 = proc_cpu_s(pid);
	t0 = next = bench_now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	while (bench_now_ns() < end || done < i) {
		struct epoll_event evs[MAXC];
		uint64_t now = bench_now_ns();
		struct timespec ts;
		uint64_t wait_ns;
		int n;

		/* Send what is due, on free connections. */
		for (int k = 0; k < nc && now < end && next <= now; k++) {
			size_t len;

			if (c[k].busy)
				continue;
			len = build(req, sizeof(req), key, i++);
			if (send(c[k].fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
				perror("policyload: send");
				return 1;
			}
			c[k].busy = true;
			c[k].sent = bench_now_ns();
			next += 1000000000ULL / rate;
		}
		if (now > end + 5000000000ULL)
			break;	/* answers lost: give up */
		/* Sleep until the next send is due (ns precision, no timer
		 * slack), or an answer comes: a polling client would take a
		 * whole CPU of the two the daemon shares with it. */
		wait_ns = now >= end ? 100000000ULL : next > now ? next - now : 0;
		ts.tv_sec = wait_ns / 1000000000ULL;
		ts.tv_nsec = wait_ns % 1000000000ULL;
		n = epoll_pwait2(ep, evs, MAXC, &ts, NULL);
		for (int e = 0; e < n; e++) {
			struct conn *cc = &c[evs[e].data.u32];
			ssize_t r = recv(cc->fd, cc->in + cc->inlen, sizeof(cc->in) - cc->inlen, 0);

			if (r <= 0) {
				fprintf(stderr, "policyload: connection closed by the server\n");
				return 1;
			}
			cc->inlen += r;
			if (answered(cc)) {
				if (nlat < maxlat)
					lat[nlat++] = (bench_now_ns() - cc->sent) / 1e6;
				cc->busy = false;
				done++;
			}
		}
	}
	cpu1 = proc_cpu_s(pid);
	qsort(lat, nlat, sizeof(*lat), bench_cmp_double);
	if (tag) {
		printf("M\tpolicy\tmax_%.*s\tlongest answer at %d/s, %s\tms\t%.3f\tp50 %.3f ms, "
		       "p99 %.3f ms\n", (int)(tag_text - 1 - tag), tag, rate, tag_text,
		       nlat ? lat[nlat - 1] : -1.0, nlat ? lat[nlat / 2] : -1.0,
		       nlat ? lat[(size_t)(nlat * 0.99)] : -1.0);
		return 0;
	}
	printf("M\tpolicy\trate\tanswered, %d keep-alive clients, paced at %d/s\treq/s\t%.0f\t"
	       "%llu requests (3 allow : 1 report) in %.1f s\n", nc, rate,
	       done / ((bench_now_ns() - t0) / 1e9), (unsigned long long)done,
	       (bench_now_ns() - t0) / 1e9);
	printf("M\tpolicy\tcpu\tverdicts per daemon CPU second\treq/s\t%.0f\t"
	       "daemon CPU %.2f s\n", cpu1 > cpu0 ? done / (cpu1 - cpu0) : 0.0, cpu1 - cpu0);
	printf("M\tpolicy\tp50\tlatency p50 at %d/s\tms\t%.3f\t\n", rate,
	       nlat ? lat[nlat / 2] : -1.0);
	printf("M\tpolicy\tp99\tlatency p99 at %d/s\tms\t%.3f\tp90 %.3f ms, p99.9 %.3f ms, "
	       "max %.3f ms\n", rate, nlat ? lat[(size_t)(nlat * 0.99)] : -1.0,
	       nlat ? lat[(size_t)(nlat * 0.9)] : -1.0, nlat ? lat[(size_t)(nlat * 0.999)] : -1.0,
	       nlat ? lat[nlat - 1] : -1.0);
	return 0;
}
