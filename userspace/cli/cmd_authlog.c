// SPDX-License-Identifier: GPL-2.0
/*
 * imapguard authlog test: what fail2ban-regex is to fail2ban users. Reads
 * lines, says what each one means on its own, then the totals after
 * de-duplication and what the detector would ban under a policy.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "authlog/authlog.h"
#include "cli/cli.h"
#include "authlog/detector.h"
#include "base/json.h"
#include "base/log.h"
#include "policy/policy.h"

struct at_ctx {
	bool json;
	uint32_t bans, accounts;
	json_t *ban_list;	/* --json: the summary's "bans" */
};

static void on_event(const struct det_event *ev, void *ctx)
{
	struct at_ctx *c = ctx;
	char a[ADDR_STRLEN];

	if (ev->kind == DET_EV_ACCOUNT) {
		c->accounts++;
		if (!c->json) {
			printf("would report: account '");
			print_clean(ev->user ? ev->user : "");
			printf("' failing from %u sources\n", ev->users);
		}
		return;
	}
	if (ev->extend)
		return;
	c->bans++;
	addr_format(&ev->prefix, a);
	if (c->json)
		json_array_append_new(c->ban_list, json_pack("{s:s, s:s, s:I, s:I, s:I}", "addr", a,
				      "rule", ev->rule, "failures", (json_int_t)ev->failures,
				      "users", (json_int_t)ev->users,
				      "duration_s", (json_int_t)(ev->duration_ns / 1000000000ULL)));
	else
		printf("would ban: %-40s rule=%s failures=%u users=%u for %llus\n", a, ev->rule,
		       ev->failures, ev->users, (unsigned long long)(ev->duration_ns / 1000000000ULL));
}

static const char *const kinds[] = { "none", "fail", "success" };

static void print_line(bool json, unsigned long n, const struct al_result *r)
{
	char a[ADDR_STRLEN];

	addr_format_host(r->addr, a);
	if (json) {
		/* The user name is attacker-chosen: json_text keeps the line UTF-8. */
		json_println(stdout, json_pack("{s:I, s:s, s:s, s:o, s:I}", "line", (json_int_t)n,
					       "kind", kinds[r->kind], "addr", a,
					       "user", json_text(r->user), "attempts",
					       (json_int_t)(r->kind == AL_FAIL ? r->attempts : 0)));
		return;
	}
	printf("line %lu: %-7s %-40s user=", n, kinds[r->kind], a);
	print_clean(r->user[0] ? r->user : "-");
	if (r->kind == AL_FAIL)
		printf(" attempts=%u%s", r->attempts, r->per_attempt ? " (auth process)" : "");
	putchar('\n');
}

static int run_test(FILE *in, int fmt, const struct policy *pol, bool json)
{
	struct at_ctx c = { .json = json, .ban_list = json ? json_array() : NULL };
	struct det_hooks hooks = { .event = on_event, .ctx = &c };
	unsigned long n = 0, fails = 0, succ = 0, skipped = 0, none = 0, counted = 0;
	struct detector *det = detector_new(&pol->detect, &hooks, 1u << 20);
	struct al_dedup *dd = al_dedup_new(65536);
	size_t cap = 0;
	char *line = NULL;
	ssize_t len;
	int err = 0;

	if (!det || !dd || (json && !c.ban_list)) {
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
	if (!json)
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
		err = json_println(stdout, json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:O, s:I, s:I}",
			"summary", "lines", (json_int_t)n, "failures", (json_int_t)fails,
			"failures_counted", (json_int_t)counted, "successes", (json_int_t)succ,
			"unrecognised", (json_int_t)none, "skipped", (json_int_t)skipped,
			"bans", c.ban_list, "would_ban", (json_int_t)c.bans,
			"account_reports", (json_int_t)c.accounts));
	else
		printf("%u source%s would be banned under %s\n", c.bans, c.bans == 1 ? "" : "s",
		       pol->file[0] ? pol->file : "the built-in policy");
out:
	json_decref(c.ban_list);
	free(line);
	al_dedup_free(dd);
	detector_free(det);
	return err;
}

struct authlog_opts {
	int format;		/* enum authlog_format */
	bool json;
	const char *policy, *file;
};

#define O(f) offsetof(struct authlog_opts, f)
static const struct opt authlog_options[] = {
	OPTION("format", 'f', OPT_ENUM, O(format), "F",
	       "auto|dovecot|cyrus|courier|uwimap (default auto)",
	       .names = cli_format_names),
	OPTION("json", 'j', OPT_FLAG, O(json), NULL,
	       "one object per recognised line, then a summary"),
	OPTION("policy", 'p', OPT_PATH, O(policy), "FILE",
	       "thresholds from this policy (default: installed or built-in)"),
	ARG(OPT_PATH, O(file), "FILE|-"),
	{}
};
#undef O

static const struct cmd authlog_subs[] = {
	{ "test", NULL, "FILE|-", "what each line says, then what would be banned" },
	{}
};

static const struct opts_cmd authlog_cmd = {
	.name = "authlog",
	.usage = "test FILE|- [--format F] [--json] [--policy FILE]",
	.doc = "Read auth-log lines (a file, or - for standard input) and report what\n"
	       "each line says on its own: a failure or a success, with address, user\n"
	       "and attempt count. Then the totals after de-duplication, and what the\n"
	       "detector would ban under the policy if all lines fell in one window.",
	.opts = authlog_options,
	.subs = authlog_subs,
};

int cmd_authlog(int argc, char **argv)
{
	struct authlog_opts o = { .format = AUTHLOG_AUTO };
	const struct cmd *sub;
	const char *file, *pfile;
	bool json;
	int fmt, err, i;
	struct policy pol;
	FILE *in;

	/* One subcommand, "test"; options may come before or after it. */
	if ((err = opts_sub(&authlog_cmd, argc, argv, &o, &sub, &i)) ||
	    (err = opts_parse(&authlog_cmd, argc - i, argv + i, &o)))
		return opts_done(err);
	file = o.file, pfile = o.policy, json = o.json, fmt = o.format;
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
}
