/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Value parsers and formatters. Parsers return 0 or -EINVAL and write *out
 * only on success; they accept digits only (no sign, blanks or base prefix).
 */
#ifndef IMAPGUARD_VALUE_H
#define IMAPGUARD_VALUE_H
#include <stddef.h>
#include <stdint.h>

#define NS_PER_SEC	1000000000ULL

/* The n bytes at s as a decimal number; -EINVAL if empty or on overflow. */
int parse_num(const char *s, size_t n, uint64_t *out);
/* "90" (seconds), "10m", "1h30m", "2d", "1w", "500ms"; -EINVAL on overflow. */
int parse_duration_ns(const char *s, uint64_t *out);
/* ns as "4.2s", "3m07s", "2h05m", "1d03h" into buf (len >= 16 holds any). */
void fmt_duration(uint64_t ns, char *buf, size_t len);

#endif
