// SPDX-License-Identifier: GPL-2.0
/*
 * audit targets: command-line arguments to addresses (see audit.h). A CIDR
 * is kept as a start and a count and expanded one address at a time, so
 * even a /8 with --force costs one entry.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include "audit/audit.h"
#include "base/log.h"

/* One address, or a range counted from addr. */
struct audit_target {
	char name[256];
	uint8_t addr[16];		/* struct ig_prefix layout */
	uint64_t count, next;
	uint16_t port;			/* 0: the default ports */
	bool named, by_ip;
};

static int push_target(struct audit_targets *ts, const struct audit_target *t)
{
	struct audit_target *nt = realloc(ts->t, (ts->nt + 1) * sizeof(*nt));

	if (!nt) {
		pr_warn("Couldn't add target '%s': %s", t->name, strerror(ENOMEM));
		return -ENOMEM;
	}
	ts->t = nt;
	ts->t[ts->nt++] = *t;
	ts->total += t->count;
	return 0;
}

/* "10.0.0.0/24": every address (IPv4 without network and broadcast). */
static int add_cidr(struct audit_targets *ts, const char *arg)
{
	struct audit_target t = { .next = 0 };
	struct ig_prefix pfx;
	unsigned int bits;

	if (addr_parse(arg, &pfx, true)) {
		pr_warn("Couldn't parse target '%s': not an address or CIDR", arg);
		return -EINVAL;
	}
	bits = 128 - pfx.plen;
	if (bits > 24) {
		pr_warn("Couldn't expand '%s': 2^%u addresses; not even --force goes past "
			"a /8's worth (%u)", arg, bits, FORCE_LIMIT);
		return -E2BIG;
	}
	memcpy(t.addr, pfx.addr, 16);
	t.count = 1ULL << bits;
	if (addr_is_v4(pfx.addr) && bits >= 2) {
		t.addr[15] |= 1;
		t.count -= 2;
	}
	t.named = t.count == 1;
	t.by_ip = true;
	addr_format_host(t.addr, t.name);
	return push_target(ts, &t);
}

/* Every IPv4 and IPv6 address of t->name, each as its own target. */
static int resolve(struct audit_targets *ts, struct audit_target *t)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int err;

	err = getaddrinfo(t->name, NULL, &hints, &res);
	if (err) {
		pr_warn("Couldn't resolve '%s': %s", t->name, gai_strerror(err));
		return -ENOENT;
	}
	for (ai = res; ai && !err; ai = ai->ai_next) {
		char buf[INET6_ADDRSTRLEN];
		const void *sa = ai->ai_family == AF_INET ?
			(void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr :
			(void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;

		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    inet_ntop(ai->ai_family, sa, buf, sizeof(buf)) &&
		    !addr_parse_host(buf, strlen(buf), t->addr))
			err = push_target(ts, t);
	}
	freeaddrinfo(res);
	return err;
}

/* HOST, HOST:PORT, [V6]:PORT, or a bare IPv6 address. */
static int add_host(struct audit_targets *ts, const char *arg)
{
	struct audit_target t = { .count = 1, .named = true };
	const char *port = NULL, *colon = strchr(arg, ':');
	char *end;
	long v;

	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');

		if (!close || (close[1] && close[1] != ':')) {
			pr_warn("Couldn't parse target '%s': expected [IPV6]:PORT", arg);
			return -EINVAL;
		}
		snprintf(t.name, sizeof(t.name), "%.*s", (int)(close - arg - 1), arg + 1);
		port = close[1] ? close + 2 : NULL;
	} else if (colon && !strchr(colon + 1, ':')) {
		snprintf(t.name, sizeof(t.name), "%.*s", (int)(colon - arg), arg);
		port = colon + 1;
	} else {
		snprintf(t.name, sizeof(t.name), "%s", arg);
	}
	if (port) {
		errno = 0;
		v = strtol(port, &end, 10);
		if (errno || end == port || *end || v < 1 || v > 65535) {
			pr_warn("Couldn't parse target '%s': invalid port '%s'", arg, port);
			return -EINVAL;
		}
		t.port = v;
	}
	if (!addr_parse_host(t.name, strlen(t.name), t.addr)) {
		t.by_ip = true;
		return push_target(ts, &t);
	}
	return resolve(ts, &t);
}

int targets_add(struct audit_targets *ts, const char *arg)
{
	return strchr(arg, '/') ? add_cidr(ts, arg) : add_host(ts, arg);
}

int targets_check(const struct audit_targets *ts, bool force)
{
	unsigned int limit = force ? FORCE_LIMIT : CIDR_LIMIT;

	if (ts->total <= limit)
		return 0;
	pr_warn("Couldn't expand the targets: %llu addresses, more than %u%s",
		(unsigned long long)ts->total, limit,
		force ? " (a /8's worth), even with --force" : "; narrow the range or pass --force");
	return -E2BIG;
}

static void to_sockaddr(const uint8_t addr[16], struct audit_host *h)
{
	memset(&h->sa, 0, sizeof(h->sa));
	if (addr_is_v4(addr)) {
		struct sockaddr_in *s = (struct sockaddr_in *)&h->sa;

		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, addr + 12, 4);
		h->salen = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->sa;

		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, addr, 16);
		h->salen = sizeof(*s);
	}
}

struct audit_host *targets_next(struct audit_targets *ts, bool pop3)
{
	static const uint16_t ports[] = { 143, 993, 110, 995 };
	struct audit_target *t;
	struct audit_host *h;
	uint8_t addr[16];
	uint64_t carry;

	errno = 0;
	while (ts->ti < ts->nt && ts->t[ts->ti].next >= ts->t[ts->ti].count)
		ts->ti++;
	if (ts->ti == ts->nt)
		return NULL;
	t = &ts->t[ts->ti];
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	/* addr + next, as a 128-bit big-endian sum. */
	memcpy(addr, t->addr, 16);
	carry = t->next++;
	for (int i = 15; i >= 0 && carry; i--) {
		carry += addr[i];
		addr[i] = carry & 0xff;
		carry >>= 8;
	}
	addr_format_host(addr, h->addr);
	snprintf(h->name, sizeof(h->name), "%s", t->count == 1 ? t->name : h->addr);
	h->named = t->named;
	h->by_ip = t->by_ip;
	to_sockaddr(addr, h);
	for (int i = 0; i < (t->port ? 1 : pop3 ? 4 : 2); i++) {
		struct audit_port *r = &h->ports[h->nports++];

		r->port = t->port ? t->port : ports[i];
		r->svc = r->port == 110 || r->port == 995 ? SVC_POP3 : SVC_IMAP;
		r->implicit = r->port == 993 || r->port == 995;
	}
	return h;
}

void targets_free(struct audit_targets *ts)
{
	free(ts->t);
	ts->t = NULL;
	ts->nt = ts->ti = 0;
	ts->total = 0;
}
