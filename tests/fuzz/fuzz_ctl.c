// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: control-socket requests (ctl_parse() in daemon/ctl.c),
 * the bytes a local client sends, framed as the daemon frames them. Besides
 * "no crash", it checks what the daemon relies on:
 * - the result is one of the documented ones, -EAGAIN exactly while no
 *   newline has come and there is room, every refusal with a message;
 * - an accepted request has a known verb, spelled exactly, an argument only
 *   where the verb takes one, `top` within 1..CTL_TOP_MAX, `why` one
 *   address that survives formatting and parsing again;
 * - only the first line counts, and reading it in pieces (as recv() hands
 *   it over) gives the same answer as reading it at once.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/text.h"
#include "daemon/ctl.h"

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "property failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static const char *const verbs[CTL_VERB_MAX] = {
	[CTL_STATUS] = "status", [CTL_RELOAD] = "reload", [CTL_EVENTS] = "events",
	[CTL_RECENT] = "recent", [CTL_WHY] = "why", [CTL_TOP] = "top", [CTL_METRICS] = "metrics",
	[CTL_WHY_USER] = "whyuser",
	[CTL_FLEET] = "fleet", [CTL_SHARE] = "share",
};

static bool same(const struct ctl_req *a, const struct ctl_req *b)
{
	return a->verb == b->verb && a->top == b->top && a->error == b->error &&
	       !memcmp(&a->addr, &b->addr, sizeof(a->addr)) && !strcmp(a->user, b->user);
}

static void check_accepted(const char *buf, size_t len, const struct ctl_req *r)
{
	const char *nl = memchr(buf, '\n', len);
	size_t n = nl - buf, vl;
	struct ig_prefix again;
	char a[ADDR_STRLEN];

	REQUIRE(nl && r->verb < CTL_VERB_MAX && !r->error);
	REQUIRE(!memchr(buf, '\0', n));
	vl = strlen(verbs[r->verb]);
	REQUIRE(n >= vl && !memcmp(buf, verbs[r->verb], vl));
	/* The verb alone, or (why, top, whyuser, share) the verb, a space, the argument. */
	REQUIRE(n == vl || ((r->verb == CTL_WHY || r->verb == CTL_TOP || r->verb == CTL_WHY_USER ||
			     r->verb == CTL_SHARE) && buf[vl] == ' '));
	REQUIRE((r->verb != CTL_WHY && r->verb != CTL_WHY_USER && r->verb != CTL_SHARE) || n > vl);
	if (r->verb == CTL_SHARE) {
		REQUIRE(r->addr.plen <= 128);
		REQUIRE(!addr_parse(addr_format(&r->addr, a), &again, false));
		REQUIRE(!memcmp(&again, &r->addr, sizeof(again)));
	}
	if (r->verb == CTL_WHY_USER) {
		/* The whole rest of the line, UTF-8 without controls. */
		REQUIRE(strlen(r->user) == n - vl - 1 && !memcmp(r->user, buf + vl + 1, n - vl - 1));
		REQUIRE(utf8_valid(r->user, strlen(r->user)) && r->user[0]);
		for (const char *u = r->user; *u; u++)
			REQUIRE((unsigned char)*u >= 0x20 && *u != 0x7f);
	} else {
		REQUIRE(!r->user[0]);
	}
	if (r->verb == CTL_TOP)
		REQUIRE(r->top >= 1 && r->top <= CTL_TOP_MAX);
	if (r->verb == CTL_WHY) {
		REQUIRE(r->addr.plen == 128);
		REQUIRE(!addr_parse(addr_format(&r->addr, a), &again, false));
		REQUIRE(!memcmp(&again, &r->addr, sizeof(again)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The daemon's buffer holds CTL_MAX_REQ - 1 bytes of request. */
	size_t len = size < CTL_MAX_REQ - 1 ? size : CTL_MAX_REQ - 1, step, off;
	const char *buf = (const char *)data, *nl = memchr(buf, '\n', len);
	struct ctl_req whole, part;
	int ret, r;

	ret = ctl_parse(buf, len, &whole);
	REQUIRE(ret == 0 || ret == -EAGAIN || ret == -EMSGSIZE || ret == -EBADMSG || ret == -EINVAL);
	REQUIRE((ret == -EAGAIN) == (!nl && len < CTL_MAX_REQ - 1));
	REQUIRE((ret == -EMSGSIZE) == (!nl && len == CTL_MAX_REQ - 1));
	if (ret && ret != -EAGAIN)
		REQUIRE(whole.error && *whole.error);
	if (ret == -EBADMSG)
		REQUIRE(memchr(buf, '\0', nl - buf));
	if (!ret)
		check_accepted(buf, len, &whole);
	if (!nl)
		return 0;
	/* Only the first line counts. */
	r = ctl_parse(buf, nl + 1 - buf, &part);
	REQUIRE(r == ret && same(&part, &whole));
	/* In pieces: nothing until the newline, then the same answer. */
	step = size ? data[0] % 7 + 1 : 1;
	for (off = step; off < (size_t)(nl - buf); off += step) {
		r = ctl_parse(buf, off, &part);
		REQUIRE(r == -EAGAIN);
	}
	return 0;
}
