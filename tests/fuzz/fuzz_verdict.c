// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: the auth policy server's request bodies
 * (verdict_parse() in authlog/verdict.c), the bytes Dovecot, or whoever
 * holds the key, POSTs; then the verdicts over them. Besides "no crash":
 * - a body is accepted only if jansson reads it as one JSON object without
 *   duplicate keys, and every refusal says why;
 * - an accepted request holds valid UTF-8 without NUL in login, session and
 *   protocol, within their buffers; pwhash is lower-case hex; an address
 *   survives formatting and parsing again;
 * - allow answers -1, 0 or a tarpit within tarpit_max; report answers 0;
 * - the known-good state lines written for it read back.
 * One detector and one verdict engine live across inputs (as in the
 * daemon), with small tables so eviction paths run.
 */
#include <errno.h>
#include <jansson.h>
#include "fuzz.h"
#include "authlog/verdict.h"
#include "base/addr.h"
#include "base/text.h"

static struct detector *det;
static struct verdict *vd;
static struct policy pol;
static uint64_t now = 1700000000ULL * 1000000000ULL;

static void init(void)
{
	policy_init(&pol);
	pol.detect.account_max_sources = 3;
	pol.authpolicy.tarpit_max_ns = 4ULL * 1000000000ULL;
	pol.authpolicy.known_good = 2;
	det = detector_new(&pol.detect, NULL, 64);
	vd = verdict_new(&pol.authpolicy, NULL, 16, 16);
	FUZZ_CHECK(det && vd, "setup");
}

static void check_text(const char *s, size_t size, const char *what)
{
	size_t n = strnlen(s, size);

	FUZZ_CHECK(n < size, "%s not terminated", what);
	FUZZ_CHECK(utf8_valid(s, n), "%s not UTF-8", what);
}

static void check_state(void)
{
	char *buf = NULL, *line, *save;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	FUZZ_CHECK(f, "memstream");
	FUZZ_CHECK(!verdict_save(vd, f), "save");
	fclose(f);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		FUZZ_CHECK(!verdict_load_line(vd, line), "state line does not read back: %s", line);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vd_request rq;
	struct vd_result res;
	const char *why = "unset";
	json_error_t jerr;
	json_t *j;
	int err;

	if (!det)
		init();
	err = verdict_parse((const char *)data, size, &rq, &why);
	j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (err) {
		FUZZ_CHECK(err == -EINVAL && why && *why, "refusal without a reason");
		json_decref(j);
		return 0;
	}
	FUZZ_CHECK(!why, "accepted with a reason");
	FUZZ_CHECK(j && json_is_object(j), "accepted what jansson refuses");
	json_decref(j);
	check_text(rq.login, sizeof(rq.login), "login");
	check_text(rq.session, sizeof(rq.session), "session");
	check_text(rq.protocol, sizeof(rq.protocol), "protocol");
	FUZZ_CHECK(strnlen(rq.pwhash, sizeof(rq.pwhash)) < sizeof(rq.pwhash) &&
		   !rq.pwhash[strspn(rq.pwhash, "0123456789abcdef")], "pwhash not lower-case hex");
	if (rq.has_addr) {
		char a[ADDR_STRLEN];
		uint8_t again[16];

		addr_format_host(rq.addr, a);
		FUZZ_CHECK(!addr_parse_host(a, strlen(a), again) && !memcmp(again, rq.addr, 16),
			   "address does not survive formatting: %s", a);
	}
	now += 1000000000ULL;
	FUZZ_CHECK(!verdict_allow(vd, det, &rq, now, &res), "allow");
	FUZZ_CHECK(res.status >= -1 && res.status <= 4 && res.status == res.would,
		   "allow answered %d", res.status);
	FUZZ_CHECK(res.msg, "no msg");
	FUZZ_CHECK(!verdict_report(vd, det, &rq, now, &res) && res.status == 0, "report");
	if (rq.success)
		check_state();
	return 0;
}
