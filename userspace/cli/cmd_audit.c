// SPDX-License-Identifier: GPL-2.0
/* audit: options and help; the audit itself is audit/ (probes, report, targets). */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include "audit/audit.h"
#include "base/log.h"
#include "cli/cli.h"

#define STR_(x) #x
#define STR(x) STR_(x)

struct audit_args {
	struct audit_opts a;
	double timeout;		/* seconds */
	char **targets;
	int ntargets;
};

#define O(f) offsetof(struct audit_args, f)
static const struct opt audit_options[] = {
	OPTION("json", 'j', OPT_FLAG, O(a.json), NULL,
	       "one JSON object per host per line, then a summary"),
	OPTION("timeout", 't', OPT_DOUBLE, O(timeout), "S",
	       "per-host deadline for all its probes (default 10)", .min = 0.1, .max = 3600),
	OPTION("concurrency", 'c', OPT_INT, O(a.concurrency), "N",
	       "hosts probed at once (default 32, 1..1024)", .min = 1, .max = 1024),
	OPTION("pop3", '3', OPT_FLAG, O(a.pop3), NULL, "also audit POP3 on 110 (STLS) and 995"),
	OPTION("ca", 0, OPT_PATH, O(a.ca), "FILE",
	       "verify chains against FILE, not the system store"),
	OPTION("warn-days", 'w', OPT_INT, O(a.warn_days), "D",
	       "warn when a certificate expires within D days (30)", .min = 0, .max = 36500),
	OPTION("force", 'f', OPT_FLAG, O(a.force), NULL,
	       "expand more than " STR(CIDR_LIMIT) " addresses (up to a /8)"),
	ARG(OPT_STR, O(targets), "HOST[:PORT]|CIDR", .max = OPTS_REST, .count_off = O(ntargets),
	    .required = true),
	{}
};
#undef O

static const struct opts_cmd audit_cmd = {
	.name = "audit",
	.usage = "[options] HOST[:PORT] | [IPV6]:PORT | CIDR ...",
	.doc = "Find plaintext IMAP: for each address, probe 143 (STARTTLS) and 993 (TLS),\n"
	       "and with --pop3 also 110 and 995. Reports the greeting and capabilities,\n"
	       "whether STARTTLS is offered, whether LOGIN or AUTHENTICATE PLAIN are offered\n"
	       "before TLS (no LOGINDISABLED: passwords may cross in plaintext), the TLS version\n"
	       "and cipher, whether TLS 1.0 / 1.1 are still accepted (separate handshakes\n"
	       "capped at those versions), and the certificate: subject, SAN, issuer, days\n"
	       "to expiry, chain (system trust store or --ca) and name match. Verdict per\n"
	       "host: ok, warn or fail, with reasons. Never sends credentials: only\n"
	       "CAPABILITY, STARTTLS and LOGOUT (POP3: CAPA, STLS, QUIT).\n\n"
	       "With :PORT only that port is probed: 993 and 995 as implicit TLS, 110 as\n"
	       "POP3, anything else as IMAP with STARTTLS. Names are resolved first and\n"
	       "every address is audited. CIDR members with no open port are only counted\n"
	       "(shown with -v).\n\n"
	       "Exit status: 0 if every host is ok; 1 if any is warn or fail, or on error.",
	.opts = audit_options,
	.epilog = "Examples:\n"
		  "  imapguard audit mail.example.org\n"
		  "  imapguard audit --ca /etc/ssl/corp-ca.pem --json 192.0.2.0/24 "
		  "[2001:db8::25]:993",
	.flags = OPTS_NO_PIN_DIR,
};

int cmd_audit(int argc, char **argv)
{
	struct audit_args o = { .a = { .concurrency = 32, .warn_days = 30 }, .timeout = 10 };
	int err;

	if ((err = opts_parse(&audit_cmd, argc, argv, &o)))
		return opts_done(err);
	o.a.timeout_ms = o.timeout * 1000;
	return audit_run(&o.a, o.ntargets, o.targets);
}
