// SPDX-License-Identifier: GPL-2.0
/* imapguard: command dispatch only; cli/common.c has what commands share. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "base/log.h"
#include "cli/cli.h"

static int cmd_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "attach", cmd_attach, "--iface IF [--mode MODE] [--policy FILE] [--replace]",
	  "attach the fast path to an interface" },
	{ "detach", cmd_detach, "--iface IF | --all", "remove the fast path from interfaces" },
	{ "status", cmd_status, "[--json]", "attachments, ports, lists and map fill" },
	{ "stats", cmd_stats, "[--json|--prometheus|--watch S]", "packets and bytes per verdict reason" },
	{ "policy", cmd_policy, "check|apply|keygen|sign|verify ...",
	  "validate, apply or sign a policy file" },
	{ "ban", cmd_ban, "add|del|list ...", "manage bans (with expiry)" },
	{ "allow", cmd_allow, "add|del|list ...", "manage the allow list" },
	{ "deny", cmd_deny, "add|del|list ...", "manage the deny list" },
	{ "run", cmd_run, "--policy FILE [--iface IF ...]", "run the daemon (foreground)" },
	{ "reload", cmd_reload, "[--control-socket PATH]", "make the daemon re-read its policy" },
	{ "events", cmd_events, "[--json] [--follow]", "the daemon's drop and ban events" },
	{ "why", cmd_why, "ADDR [--json]", "explain the state of one address" },
	{ "top", cmd_top, "[-n N] [--json]", "sources with the most drops (daemon)" },
	{ "audit", cmd_audit, "HOST[:PORT]|CIDR ... [--json] [--pop3]",
	  "find plaintext IMAP; check TLS and certificates" },
	{ "authlog", cmd_authlog, "test FILE|- [--json]", "check what the log parser sees" },
	{ "help", cmd_help, "[COMMAND]", "show help" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: %s [--pin-dir DIR] [-v] COMMAND [options]\n\n"
		"Kernel-level (XDP/tc) connection enforcer for IMAP servers: rejects\n"
		"plaintext IMAP (143), throttles floods to IMAPS (993), enforces bans.\n\n"
		"Commands:\n", env.prog);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %-52s %s\n", cmds[i].name, cmds[i].args, cmds[i].help);
	fprintf(f, "\nRun '%s COMMAND --help' for a command's options.\n"
		"  --version           print the version and the libbpf version\n", env.prog);
}

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

static int cmd_help(int argc, char **argv)
{
	const struct cmd *c = argc > 1 ? find_cmd(argv[1]) : NULL;
	char *hargv[] = { argv[1], "--help", NULL };

	if (c && c->fn != cmd_help) {
		optind = 1;
		return c->fn(2, hargv);
	}
	usage(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const struct cmd *c;
	int i = 1;

	log_init_libbpf();
	/* Global options before the command. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--version")) {
			printf("imapguard %s (libbpf %s)\n", IG_VERSION, libbpf_version_string());
			return 0;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			log_set_level(log_get_level() + (log_get_level() < LL_LIBBPF));
		} else if (!strcmp(argv[i], "-vv")) {
			log_set_level(LL_LIBBPF);
		} else if ((!strcmp(argv[i], "--pin-dir") || !strcmp(argv[i], "-P")) && i + 1 < argc) {
			env.pin_dir = argv[++i];
		} else if (!strncmp(argv[i], "--pin-dir=", 10)) {
			env.pin_dir = argv[i] + 10;
		} else {
			pr_warn("unknown option '%s'", argv[i]);
			usage(stderr);
			return 1;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 1;
	}
	c = find_cmd(argv[i]);
	if (!c) {
		pr_warn("unknown command '%s' (see '%s --help')", argv[i], env.prog);
		return 1;
	}
	optind = 1;
	return c->fn(argc - i, argv + i) != 0;
}
