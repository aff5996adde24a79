// SPDX-License-Identifier: GPL-2.0
/* Value parsers and formatters shared by the policy, the CLI and the daemon. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "base/value.h"

#define DIGITS		"0123456789"

/* Digits only: no sign, blanks or base prefix, so "0x10" and "-1" fail. */
int parse_num(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned int d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static uint64_t unit_ns(const char *u, size_t n)
{
	static const struct { const char *name; uint64_t ns; } units[] = {
		{ "ms", 1000000ULL }, { "s", NS_PER_SEC }, { "m", 60 * NS_PER_SEC },
		{ "h", 3600 * NS_PER_SEC }, { "d", 86400 * NS_PER_SEC },
		{ "w", 7 * 86400 * NS_PER_SEC },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strlen(units[i].name) == n && !strncmp(u, units[i].name, n))
			return units[i].ns;
	return 0;
}

int parse_duration_ns(const char *s, uint64_t *out)
{
	bool bare = s && *s && !s[strspn(s, DIGITS)];	/* "90" means seconds */
	uint64_t total = 0, n, mult;

	if (!s || !*s)
		return -EINVAL;
	while (*s) {
		size_t dl = strspn(s, DIGITS), ul = strcspn(s + dl, DIGITS);

		mult = bare ? NS_PER_SEC : unit_ns(s + dl, ul);
		if (parse_num(s, dl, &n) || !mult || n > UINT64_MAX / mult ||
		    total > UINT64_MAX - n * mult)
			return -EINVAL;
		total += n * mult;
		s += dl + ul;
	}
	*out = total;
	return 0;
}

void fmt_duration(uint64_t ns, char *buf, size_t len)
{
	uint64_t s = ns / 1000000000ULL;

	if (s >= 86400)
		snprintf(buf, len, "%llud%02lluh", (unsigned long long)s / 86400,
			 (unsigned long long)s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)s / 3600,
			 (unsigned long long)s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)s / 60,
			 (unsigned long long)s % 60);
	else
		snprintf(buf, len, "%llu.%01llus", (unsigned long long)s,
			 (unsigned long long)(ns / 100000000ULL % 10));
}
