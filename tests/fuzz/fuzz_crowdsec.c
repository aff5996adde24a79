// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: a CrowdSec LAPI decision-stream answer (the body of
 * GET /v1/decisions/stream), applied by crowdsec_feed() to a client whose
 * map hooks are checked, and the same bytes as a Go duration. Besides "no
 * crash", it checks what the fast path relies on:
 * - every ban is an address or a prefix no wider than IPv4 /8 or IPv6 /32,
 *   never inside the allow list (198.18.9.0/24 here), for a time in
 *   (0, 365 days], with a reason "crowdsec/..." of printable ASCII that
 *   fits the map's reason field;
 * - a lift is only ever of a prefix that was banned;
 * - an answer that is refused (-EBADMSG) changes nothing;
 * - a Go duration, when accepted, is within +-365 days.
 * Input byte 0 chooses a startup (full) answer or an increment.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "fuzz.h"
#include "base/log.h"
#include "daemon/crowdsec.h"

#define MAXB 4096

static struct ig_prefix banned[MAXB];
static size_t nbanned, calls;
static struct crowdsec *cs;
static char keyf[64];

static long find(const struct ig_prefix *p)
{
	for (size_t i = 0; i < nbanned; i++)
		if (banned[i].plen == p->plen && !memcmp(banned[i].addr, p->addr, 16))
			return (long)i;
	return -1;
}

static bool allowed(void *ctx, const struct ig_prefix *p)
{
	struct ig_prefix allow;

	(void)ctx;
	addr_parse("198.18.9.0/24", &allow, false);
	return addr_contains(&allow, p);
}

static int ban(void *ctx, const struct ig_prefix *p, uint64_t ttl, const char *reason)
{
	size_t rl = strnlen(reason, IG_REASON_LEN);

	calls++;
	FUZZ_CHECK(p->plen <= 128, "plen %u", p->plen);
	FUZZ_CHECK(p->plen >= (addr_is_v4(p->addr) ? IG_V4_PLEN_OFF + CS_MIN_PLEN4 : CS_MIN_PLEN6),
		   "prefix too wide: %u", p->plen);
	FUZZ_CHECK(!allowed(ctx, p), "an allow-listed prefix banned");
	FUZZ_CHECK(ttl > 0 && ttl <= CS_DURATION_CAP_NS, "ttl %llu", (unsigned long long)ttl);
	FUZZ_CHECK(rl < IG_REASON_LEN && !strncmp(reason, CS_REASON_PREFIX, strlen(CS_REASON_PREFIX)),
		   "reason '%.*s'", (int)rl, reason);
	for (size_t i = 0; i < rl; i++)
		FUZZ_CHECK(reason[i] >= 0x20 && reason[i] < 0x7f, "reason byte %#x", reason[i]);
	if (find(p) < 0 && nbanned < MAXB)
		banned[nbanned++] = *p;
	return 0;
}

static int unban(void *ctx, const struct ig_prefix *p)
{
	long i = find(p);

	(void)ctx;
	calls++;
	if (i < 0)
		return -ENOENT;	/* the resync asks for what the maps hold: fine */
	banned[i] = banned[--nbanned];
	return 0;
}

static int own(void *ctx, struct ig_prefix **out, size_t *n)
{
	(void)ctx;
	*out = malloc((nbanned ? nbanned : 1) * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	memcpy(*out, banned, nbanned * sizeof(**out));
	*n = nbanned;
	return 0;
}

static void cleanup(void)
{
	if (keyf[0])
		unlink(keyf);
}

static void setup(void)
{
	struct pol_crowdsec conf = { .lapi = "http://127.0.0.1:9", .update_ns = 10 * NS_PER_SEC,
				     .scopes = POL_CS_SCOPE_IP | POL_CS_SCOPE_RANGE };
	const struct cs_hooks hooks = { .ban = ban, .unban = unban, .is_allowed = allowed,
					.own_bans = own };
	int fd, epfd = epoll_create1(EPOLL_CLOEXEC);

	log_set_level(LL_WARN);
	strcpy(keyf, "/tmp/igfuzz-cskey.XXXXXX");
	fd = mkstemp(keyf);
	FUZZ_CHECK(fd >= 0 && epfd >= 0, "setup");
	FUZZ_CHECK(write(fd, "fuzzkey\n", 8) == 8, "key");
	close(fd);
	strcpy(conf.api_key_file, keyf);
	FUZZ_CHECK(!crowdsec_open(&cs, &conf, &hooks, epfd), "open");
	/* The key is read; the file is not needed again. */
	unlink(keyf);
	keyf[0] = '\0';
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	int64_t ns;
	int err;

	if (!cs)
		setup();
	if (!size)
		return 0;
	calls = 0;
	err = crowdsec_feed(cs, (const char *)data + 1, size - 1, data[0] & 1);
	FUZZ_CHECK(!err || err == -EBADMSG, "feed returned %d", err);
	FUZZ_CHECK(!err || !calls, "a refused answer changed the maps (%zu calls)", calls);
	/* Start the next input from nothing (a full, empty answer). */
	FUZZ_CHECK(!crowdsec_feed(cs, "{\"new\":null}", 12, true), "empty resync");
	FUZZ_CHECK(!nbanned, "%zu bans left after an empty resync", nbanned);

	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (!cs_parse_go_duration(s, &ns))
		FUZZ_CHECK(ns <= (int64_t)CS_DURATION_CAP_NS && ns >= -(int64_t)CS_DURATION_CAP_NS,
			   "duration %lld", (long long)ns);
	free(s);
	return 0;
}
