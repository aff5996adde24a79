// SPDX-License-Identifier: GPL-2.0
/*
 * imapguard authlog test: what fail2ban-regex is to fail2ban users. Reads
 * lines, says what each one means on its own, then the totals after
 * de-duplication and what the detector would ban under a policy.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "authlog/authlog.h"
#include "cli/cli.h"
#include "authlog/detector.h"
#include "base/log.h"
#include "base/text.h"
#include "policy/policy.h"

struct at_ctx {
	bool json;
	uint32_t bans, accounts;
	bool first_ban;
};

/*
 * User names come from the log, i.e. from attackers: never let them reach a
 * terminal raw. C0 and C1 controls and DEL become '?' (no escape sequence
 * survives, 8-bit CSI included) and invalid UTF-8 becomes U+FFFD.
 */
static void print_safe(const char *s)
{
	size_t n = strlen(s), cap = 3 * n + 1;	/* U+FFFD: 3 bytes for 1 */
	char *clean = malloc(cap);

	if (!clean) {
		fputs("?", stdout);
		return;
	}
	text_clean(clean, cap, s, n);
	fputs(clean, stdout);
	free(clean);
}

static void on_event(const struct det_event *ev, void *ctx)
{
	struct at_ctx *c = ctx;
	char a[ADDR_STRLEN];

	if (ev->kind == DET_EV_ACCOUNT) {
		c->accounts++;
		if (!c->json) {
			printf("would report: account '");
			print_safe(ev->user ? ev->user : "");
			printf("' failing from %u sources\n", ev->users);
		}
		return;
	}
	if (ev->extend)
		return;
	c->bans++;
	addr_format(&ev->prefix, a);
	if (c->json)
		printf("%s{\"addr\":\"%s\",\"rule\":\"%s\",\"failures\":%u,\"users\":%u,"
		       "\"duration_s\":%llu}", c->first_ban ? "" : ",", a, ev->rule, ev->failures,
		       ev->users, (unsigned long long)(ev->duration_ns / 1000000000ULL));
	else
		printf("would ban: %-40s rule=%s failures=%u users=%u for %llus\n", a, ev->rule,
		       ev->failures, ev->users, (unsigned long long)(ev->duration_ns / 1000000000ULL));
	c->first_ban = false;
}

static const char *const kinds[] = { "none", "fail", "success" };

static void print_line(bool json, unsigned long n, const struct al_result *r)
{
	char a[ADDR_STRLEN];

	addr_format_host(r->addr, a);
	if (json) {
		printf("{\"line\":%lu,\"kind\":\"%s\",\"addr\":\"%s\",\"user\":", n, kinds[r->kind], a);
		json_str(stdout, r->user);
		printf(",\"attempts\":%u}\n", r->kind == AL_FAIL ? r->attempts : 0);
		return;
	}
	printf("line %lu: %-7s %-40s user=", n, kinds[r->kind], a);
	print_safe(r->user[0] ? r->user : "-");
	if (r->kind == AL_FAIL)
		printf(" attempts=%u%s", r->attempts, r->per_attempt ? " (auth process)" : "");
	putchar('\n');
}

static int parse_format(const char *s, int *fmt)
{
	static const char *const names[] = { "auto", "dovecot", "cyrus", "courier", "uwimap" };

	for (int i = 0; i < 5; i++)
		if (!strcmp(s, names[i])) {
			*fmt = i;	/* enum authlog_format order */
			return 0;
		}
	pr_warn("invalid --format '%s' (auto|dovecot|cyrus|courier|uwimap)", s);
	return -EINVAL;
}

static int run_test(FILE *in, int fmt, const struct policy *pol, bool json)
{
	struct at_ctx c = { .json = json, .first_ban = true };
	struct det_hooks hooks = { .event = on_event, .ctx = &c };
	unsigned long n = 0, fails = 0, succ = 0, skipped = 0, none = 0, counted = 0;
	struct detector *det = detector_new(&pol->detect, &hooks, 1u << 20);
	struct al_dedup *dd = al_dedup_new(65536);
	size_t cap = 0;
	char *line = NULL;
	ssize_t len;
	int err = 0;

	if (!det || !dd) {
		err = -ENOMEM;
		goto out;
	}
	while ((len = getline(&line, &cap, in)) >= 0) {
		struct al_result r;

		n++;
		if (authlog_parse(line, len, fmt, &r) || r.skip) {
			skipped++;
			continue;
		}
		if (r.kind == AL_NONE) {
			none++;
			continue;
		}
		print_line(json, n, &r);
		if (r.kind == AL_SUCCESS) {
			succ++;
		} else {
			uint32_t k = al_dedup_count(dd, &r);

			fails++;
			counted += k;
		}
	}
	/* Replay for the detector: every line as if inside one window, which
	 * shows the most the policy could ban for this log. */
	rewind(in);
	if (json)
		printf("{\"summary\":{\"lines\":%lu,\"failures\":%lu,\"failures_counted\":%lu,"
		       "\"successes\":%lu,\"unrecognised\":%lu,\"skipped\":%lu},\"bans\":[",
		       n, fails, counted, succ, none, skipped);
	else
		printf("\n%lu lines: %lu failure lines (%lu failures after de-duplication), "
		       "%lu successes, %lu unrecognised, %lu skipped (overlong, broken JSON, "
		       "ambiguous, no usable address)\n",
		       n, fails, counted, succ, none, skipped);
	al_dedup_free(dd);
	dd = al_dedup_new(65536);
	while (dd && (len = getline(&line, &cap, in)) >= 0) {
		struct al_result r;
		uint32_t k;

		if (authlog_parse(line, len, fmt, &r) || r.kind == AL_NONE)
			continue;
		if (r.kind == AL_SUCCESS)
			detector_success(det, r.addr, 1);
		else if ((k = al_dedup_count(dd, &r)))
			detector_fail(det, r.addr, r.user, k, 1);
	}
	if (json)
		printf("],\"would_ban\":%u,\"account_reports\":%u}\n", c.bans, c.accounts);
	else
		printf("%u source%s would be banned under %s\n", c.bans, c.bans == 1 ? "" : "s",
		       pol->file[0] ? pol->file : "the built-in policy");
out:
	free(line);
	al_dedup_free(dd);
	detector_free(det);
	return err;
}

int cmd_authlog(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "policy", required_argument, NULL, 'p' },
		COMMON_LONGOPTS, {}
	};
	const char *file = NULL, *pfile = NULL;
	bool json = false;
	int opt, c, fmt = AUTHLOG_AUTO, err;
	struct policy pol;
	FILE *in;

	if (argc < 2 || strcmp(argv[1], "test")) {
		if (argc < 2 || argv[1][0] != '-')
			pr_warn("usage: %s authlog test FILE|- [--format F] [--json] [--policy FILE]",
				env.prog);
		else
			goto help;
		return -EINVAL;
	}
	argc--, argv++;
	while ((opt = getopt_long(argc, argv, "f:jp:P:vh", opts, NULL)) != -1) {
		if ((c = common_opt(opt)) < 0)
			goto help;
		if (c)
			continue;
		switch (opt) {
		case 'f': if (parse_format(optarg, &fmt)) return -EINVAL; break;
		case 'j': json = true; break;
		case 'p': pfile = optarg; break;
		default: return -EINVAL;
		}
	}
	if (optind + 1 != argc) {
		pr_warn("authlog test: expected one FILE (or - for standard input)");
		return -EINVAL;
	}
	file = argv[optind];
	if ((err = load_policy(pfile, NULL, false, &pol)))
		return err;
	in = strcmp(file, "-") ? fopen(file, "re") : stdin;
	if (!in) {
		err = -errno;
		pr_warn("Couldn't open '%s': %s", file, strerror(-err));
	} else if (in == stdin) {
		/* The replay reads the input twice: spool stdin first. */
		FILE *tmp = tmpfile();
		char buf[65536];
		size_t k;

		while (tmp && (k = fread(buf, 1, sizeof(buf), stdin)))
			fwrite(buf, 1, k, tmp);
		if (tmp)
			rewind(tmp);
		err = tmp ? run_test(tmp, fmt, &pol, json) : -errno;
		if (tmp)
			fclose(tmp);
	} else {
		err = run_test(in, fmt, &pol, json);
		fclose(in);
	}
	policy_free(&pol);
	return err;
help:
	usage_cmd("authlog", "test FILE|- [--format F] [--json] [--policy FILE]",
		  "Read auth-log lines (a file, or - for standard input) and report what\n"
		  "each line says on its own: a failure or a success, with address, user\n"
		  "and attempt count. Then the totals after de-duplication, and what the\n"
		  "detector would ban under the policy if all lines fell in one window.",
		  "  -f, --format F      auto|dovecot|cyrus|courier|uwimap (default auto)\n"
		  "  -j, --json          one object per recognised line, then a summary\n"
		  "  -p, --policy FILE   thresholds from this policy (default: installed or built-in)\n");
	return 0;
}
