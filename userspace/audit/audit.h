/* SPDX-License-Identifier: GPL-2.0 */
/* `imapguard audit`: find plaintext IMAP, check TLS and certificates. */
#ifndef IMAPGUARD_AUDIT_H
#define IMAPGUARD_AUDIT_H
#include <stdbool.h>

#define CIDR_LIMIT	65536		/* addresses audited without --force */
#define FORCE_LIMIT	(1u << 24)	/* a /8: the most even --force expands */

struct audit_opts {
	bool json, pop3, force;
	int timeout_ms, concurrency, warn_days;
	const char *ca;		/* CA file, or NULL for the system store */
};

/* Probe every target (HOST[:PORT], [IPV6]:PORT or CIDR) and print one report
 * per host (text or JSON lines) and a summary on stdout. Returns 0 if every
 * host is ok, -EPROTO if any is warn or fail, other -errno on error (the
 * error is printed). */
int audit_run(const struct audit_opts *o, int ntargets, char **targets);

#endif
