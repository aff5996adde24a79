// SPDX-License-Identifier: GPL-2.0
/* audit: options and help; the audit itself is audit/ (probes, report, targets). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include "audit/audit.h"
#include "base/log.h"
#include "cli/cli.h"

static int opt_num(const char *opt, const char *s, double min, double max, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || *out < min || *out > max) {
		pr_warn("invalid %s '%s' (%g..%g)", opt, s, min, max);
		return -EINVAL;
	}
	return 0;
}

static void audit_usage(void)
{
	printf("Usage: %s audit [options] HOST[:PORT] | [IPV6]:PORT | CIDR ...\n\n"
	       "Find plaintext IMAP: for each address, probe 143 (STARTTLS) and 993 (TLS),\n"
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
	       "Exit status: 0 if every host is ok; 1 if any is warn or fail, or on error.\n\n"
	       "Options:\n"
	       "  -j, --json            one JSON object per host per line, then a summary\n"
	       "  -t, --timeout S       per-host deadline for all its probes (default 10)\n"
	       "  -c, --concurrency N   hosts probed at once (default 32, 1..1024)\n"
	       "  -3, --pop3            also audit POP3 on 110 (STLS) and 995\n"
	       "      --ca FILE         verify chains against FILE, not the system store\n"
	       "  -w, --warn-days D     warn when a certificate expires within D days (30)\n"
	       "  -f, --force           expand more than %d addresses (up to a /8)\n"
	       "  -v, --verbose         also show CIDR members with nothing open\n"
	       "  -h, --help            this help\n\n"
	       "Examples:\n"
	       "  %s audit mail.example.org\n"
	       "  %s audit --ca /etc/ssl/corp-ca.pem --json 192.0.2.0/24 [2001:db8::25]:993\n",
	       env.prog, CIDR_LIMIT, env.prog, env.prog);
}

static int audit_opts(struct audit_opts *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "pop3", no_argument, NULL, '3' },
		{ "ca", required_argument, NULL, 'C' },
		{ "warn-days", required_argument, NULL, 'w' },
		{ "force", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	double v;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "jt:c:3w:fvh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': a->json = true; break;
		case '3': a->pop3 = true; break;
		case 'C': a->ca = optarg; break;
		case 'f': a->force = true; break;
		case 'v': log_set_level(log_get_level() + (log_get_level() < LL_LIBBPF)); break;
		case 'h': audit_usage(); return 1;
		case 't':
			if (opt_num("--timeout", optarg, 0.1, 3600, &v))
				return -EINVAL;
			a->timeout_ms = v * 1000;
			break;
		case 'c':
			if (opt_num("--concurrency", optarg, 1, 1024, &v))
				return -EINVAL;
			a->concurrency = v;
			break;
		case 'w':
			if (opt_num("--warn-days", optarg, 0, 36500, &v))
				return -EINVAL;
			a->warn_days = v;
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind == argc) {
		pr_warn("audit: no target given (HOST[:PORT] or CIDR; see '%s audit --help')",
			env.prog);
		return -EINVAL;
	}
	return 0;
}

int cmd_audit(int argc, char **argv)
{
	struct audit_opts o = { .timeout_ms = 10000, .concurrency = 32, .warn_days = 30 };
	int err;

	err = audit_opts(&o, argc, argv);
	if (err)
		return err > 0 ? 0 : err;
	return audit_run(&o, argc - optind, argv + optind);
}
