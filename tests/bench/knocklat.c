// SPDX-License-Identifier: GPL-2.0
/*
 * Knock to grant with the real daemon (issue 17, goal p99 under 10 ms): for
 * each of --knocks users (written to the daemon's secrets file first, one
 * knock each: a code is accepted once per user and step), send one knock
 * datagram over lo from a source address of its own, and time from the
 * sendto() to that user's grant being visible in the pinned ig_grants map.
 * Probes sleep 50 us between them, as timetoban's: a busy-polling prober
 * would take a CPU the daemon needs.
 *
 *   knocklat --pin-dir D --secrets FILE --port P [--knocks N]
 * Run inside the daemon's network namespace.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <sys/socket.h>
#include <unistd.h>
#include <liboath/oath.h>
#include "bench.h"
#include "policy/mfa.h"

#define TIMEOUT_NS	2000000000ULL

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static bool granted(int map, uint32_t v4, const char *user)
{
	struct ig_ban_key k = { .plen = 128 };
	struct ig_grant_val v;

	memset(k.addr + 10, 0xff, 2);
	memcpy(k.addr + 12, &v4, 4);
	if (bpf_map_lookup_elem(map, &k, &v))
		return false;
	for (int i = 0; i < IG_GRANT_USERS; i++)
		if (v.users[i].expires_ns && !strncmp(v.users[i].user, user, IG_USER_LEN))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pin-dir", 1, NULL, 'd' }, { "secrets", 1, NULL, 's' }, { "port", 1, NULL, 'p' },
		{ "knocks", 1, NULL, 'n' }, {}
	};
	const char *dir = NULL, *secrets = NULL;
	int c, n = 200, port = 0, map, fails = 0;
	struct mfa_db db = {};
	char path[512];
	double *lat;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'd') dir = optarg;
		else if (c == 's') secrets = optarg;
		else if (c == 'p') port = atoi(optarg);
		else if (c == 'n') n = atoi(optarg);
		else return 2;
	}
	if (!dir || !secrets || !port || n < 1 || n > 60000 || mfa_init()) {
		fprintf(stderr, "knocklat: --pin-dir, --secrets and --port are required\n");
		return 2;
	}
	lat = calloc(n, sizeof(*lat));
	for (int i = 0; i < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "kn%05d", i);
		if (mfa_user_add(&db, name, NULL)) {
			fprintf(stderr, "knocklat: Couldn't make user %s\n", name);
			return 1;
		}
	}
	if (mfa_secrets_save(secrets, &db)) {
		fprintf(stderr, "knocklat: Couldn't write '%s'\n", secrets);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/ig_grants", dir);
	map = bpf_obj_get(path);
	if (map < 0 || !lat) {
		fprintf(stderr, "knocklat: Couldn't open '%s': %s\n", path, strerror(errno));
		return 1;
	}
	sleep_us(2500000);	/* the daemon re-reads the secrets within a second */
	for (int i = 0; i < n; i++) {
		struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
		struct mfa_user *u;
		char name[32], code[16], buf[MFA_KNOCK_MAX + 1];
		uint64_t t0, t;
		int fd, len;

		snprintf(name, sizeof(name), "kn%05d", i);
		u = mfa_user_find(&db, name);
		src.sin_addr.s_addr = htonl(0x7f010000 | ((i / 250) << 8) | (i % 250 + 1));
		dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		dst.sin_port = htons(port);
		oath_totp_generate((const char *)u->secret, MFA_SECRET_LEN, time(NULL), MFA_STEP_S, 0,
				   MFA_DIGITS, code);
		len = mfa_knock_build(name, code, time(NULL), NULL, u->knock_key, buf, sizeof(buf));
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (len < 0 || fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src))) {
			fprintf(stderr, "knocklat: socket: %s\n", strerror(errno));
			return 1;
		}
		t0 = bench_now_ns();
		sendto(fd, buf, len, 0, (struct sockaddr *)&dst, sizeof(dst));
		do {
			bool hit = granted(map, src.sin_addr.s_addr, name);

			t = bench_now_ns();
			if (hit)
				break;
			sleep_us(50);
		} while (t - t0 < TIMEOUT_NS);
		close(fd);
		if (t - t0 >= TIMEOUT_NS) {
			fails++;
			continue;
		}
		lat[i - fails] = (t - t0) / 1e6;
		sleep_us(2000);
	}
	bench_emit("knock", "knock_grant", "knock datagram sent -> grant in the pinned map", "ms",
		   lat, n - fails, "%d knocks, one user and source each, real daemon, UDP on lo; "
		   "%d not granted within 2 s", n, fails);
	mfa_db_free(&db);
	free(lat);
	return fails != 0;
}
