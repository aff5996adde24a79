// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/addr.h"

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

bool addr_is_v4(const uint8_t addr[16])
{
	return !memcmp(addr, v4_mapped, sizeof(v4_mapped));
}

void addr_mask(uint8_t addr[16], unsigned int plen)
{
	for (unsigned int i = 0; i < 16; i++) {
		unsigned int bits = plen > i * 8 ? plen - i * 8 : 0;

		if (bits < 8)
			addr[i] &= (uint8_t)(0xff00 >> bits);
	}
}

int addr_parse_host(const char *s, size_t len, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN + 2];

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf) - 1)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, out + 12) == 1) {
		memcpy(out, v4_mapped, sizeof(v4_mapped));
		return 0;
	}
	/* inet_pton(AF_INET6) also yields ::ffff:a.b.c.d as mapped, i.e. v4. */
	if (inet_pton(AF_INET6, buf, out) == 1)
		return 0;
	return -EINVAL;
}

int addr_parse(const char *s, struct ig_prefix *out, bool allow_host_bits)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long plen;
	uint8_t masked[16];
	bool v4;
	char *end;

	if (addr_parse_host(s, alen, out->addr))
		return -EINVAL;
	v4 = addr_is_v4(out->addr);
	/* A mapped address written in IPv6 form counts as IPv4 only if it was
	 * not given an IPv6-sized prefix; keep the rule simple: v4 if mapped. */
	if (!slash) {
		out->plen = 128;
		return 0;
	}
	/* strtoul alone would also take " 24", "+24" and "-8". */
	if (!isdigit((unsigned char)slash[1]))
		return -EINVAL;
	errno = 0;
	plen = strtoul(slash + 1, &end, 10);
	if (errno || *end || plen > (v4 && !strchr(s, ':') ? 32u : 128u))
		return -EINVAL;
	if (v4 && !strchr(s, ':'))
		plen += 96;
	else if (v4 && plen < 96)
		return -EINVAL;
	out->plen = (uint8_t)plen;
	memcpy(masked, out->addr, 16);
	addr_mask(masked, out->plen);
	if (memcmp(masked, out->addr, 16)) {
		if (!allow_host_bits)
			return -EINVAL;
		memcpy(out->addr, masked, 16);
	}
	return 0;
}

const char *addr_format_host(const uint8_t addr[16], char buf[ADDR_STRLEN])
{
	if (addr_is_v4(addr))
		inet_ntop(AF_INET, addr + 12, buf, ADDR_STRLEN);
	else
		inet_ntop(AF_INET6, addr, buf, ADDR_STRLEN);
	return buf;
}

const char *addr_format(const struct ig_prefix *p, char buf[ADDR_STRLEN])
{
	bool v4 = addr_is_v4(p->addr) && p->plen >= 96;
	size_t n;

	addr_format_host(p->addr, buf);
	if (p->plen == 128)
		return buf;
	n = strlen(buf);
	snprintf(buf + n, ADDR_STRLEN - n, "/%u", v4 ? p->plen - 96u : p->plen);
	return buf;
}

bool addr_contains(const struct ig_prefix *a, const struct ig_prefix *b)
{
	uint8_t x[16];

	if (a->plen > b->plen)
		return false;
	memcpy(x, b->addr, 16);
	addr_mask(x, a->plen);
	return !memcmp(x, a->addr, 16);
}
