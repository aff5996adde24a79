/* SPDX-License-Identifier: GPL-2.0 */
#ifndef IMAPGUARD_ADDR_H
#define IMAPGUARD_ADDR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * An address or prefix in imapguard's one layout: 16 bytes, IPv4 stored
 * IPv4-mapped (::ffff:a.b.c.d) with plen 96 + IPv4 length.
 */
struct ig_prefix {
	uint8_t addr[16];
	uint8_t plen;		/* 0..128 */
};

#define ADDR_STRLEN 64		/* enough for "ffff:...:ffff/128" */

/* Parse "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n", "[x::y]". IPv4-mapped IPv6
 * (::ffff:a.b.c.d) is normalised to IPv4. Host bits must be zero unless
 * allow_host_bits (then they are cleared). Returns 0 or -EINVAL. */
int addr_parse(const char *s, struct ig_prefix *out, bool allow_host_bits);
/* Parse a bare address (no prefix), e.g. from a log line; same normalisation. */
int addr_parse_host(const char *s, size_t len, uint8_t out[16]);
bool addr_is_v4(const uint8_t addr[16]);
/* "198.18.0.1", "198.18.0.0/24", "2001:db8::/48"; plen 128 (or /32 for v4) omitted. */
const char *addr_format(const struct ig_prefix *p, char buf[ADDR_STRLEN]);
const char *addr_format_host(const uint8_t addr[16], char buf[ADDR_STRLEN]);
/* Clear the bits after plen. */
void addr_mask(uint8_t addr[16], unsigned int plen);
/* True when prefix a contains prefix b. */
bool addr_contains(const struct ig_prefix *a, const struct ig_prefix *b);

#endif
