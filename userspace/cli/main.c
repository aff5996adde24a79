// SPDX-License-Identifier: GPL-2.0
/* imapguard: command dispatch only; cli/common.c has what commands share. */
#include <stddef.h>
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
	{ "grant", cmd_grant, "add|del|list ...", "manage grants for access = grant ports" },
	{ "mfa", cmd_mfa, "enroll|list|revoke ...", "enrol users of the second factor (TOTP)" },
	{ "knock", cmd_knock, "HOST --user USER --key-file FILE", "earn a grant with a TOTP code" },
	{ "run", cmd_run, "--policy FILE [--iface IF ...]", "run the daemon (foreground)" },
	{ "reload", cmd_reload, "[--control-socket PATH]", "make the daemon re-read its policy" },
	{ "events", cmd_events, "[--json] [--follow]", "the daemon's drop and ban events" },
	{ "why", cmd_why, "ADDR | --user LOGIN [--json]", "explain an address or an account" },
	{ "top", cmd_top, "[-n N] [--json]", "sources with the most drops (daemon)" },
	{ "fleet", cmd_fleet, "status [--json]", "the fleet's nodes, stream lag and queue (daemon)" },
	{ "audit", cmd_audit, "HOST[:PORT]|CIDR ... [--json] [--pop3]",
	  "find plaintext IMAP; check TLS and certificates" },
	{ "authlog", cmd_authlog, "test FILE|- [--json]", "check what the log parser sees" },
	{ "authpolicy", cmd_authpolicy, "dovecot-config [--policy FILE]",
	  "Dovecot settings for the auth policy server" },
	{ "help", cmd_help, "[COMMAND]", "show help" },
	{}
};

struct global_opts {
	bool version;
};

static const struct opt global_options[] = {
	OPTION("version", 0, OPT_FLAG, offsetof(struct global_opts, version), NULL,
	       "print the version and the libbpf version"),
	{}
};

/* Options before COMMAND; its own follow it. */
static const struct opts_cmd global_cmd = {
	.usage = "[--pin-dir DIR] [-v] COMMAND [options]",
	.doc = "Kernel-level (XDP/tc) connection enforcer for IMAP servers: rejects\n"
	       "plaintext IMAP (143), throttles floods to IMAPS (993), enforces bans.",
	.opts = global_options,
	.subs = cmds,
	.epilog = "Run 'imapguard COMMAND --help' for a command's options.",
	.flags = OPTS_SUB_OPTIONAL,
};

struct help_opts {
	const char *cmd[1];
	int n;
};

static const struct opt help_options[] = {
	ARG(OPT_STR, offsetof(struct help_opts, cmd), "COMMAND", .max = 1,
	    .count_off = offsetof(struct help_opts, n)),
	{}
};

static const struct opts_cmd help_cmd = {
	.name = "help",
	.usage = "[COMMAND]",
	.doc = "Show the commands, or the options of COMMAND.",
	.opts = help_options,
};

static int cmd_help(int argc, char **argv)
{
	struct help_opts o = {};
	const struct cmd *c = NULL;
	char *hargv[3] = { NULL, "--help", NULL };
	int err;

	if ((err = opts_parse(&help_cmd, argc, argv, &o)))
		return opts_done(err);
	for (int i = 0; o.n && cmds[i].name; i++)
		if (!strcmp(cmds[i].name, o.cmd[0]) && cmds[i].fn != cmd_help)
			c = &cmds[i];
	if (!c) {
		opts_help(&global_cmd, stdout);
		return 0;
	}
	hargv[0] = (char *)c->name;
	return c->fn(2, hargv);
}

int main(int argc, char **argv)
{
	struct global_opts o = {};
	const struct cmd *c;
	int i, err;

	log_init_libbpf();
	err = opts_sub(&global_cmd, argc, argv, &o, &c, &i);
	if (err)
		return err != OPTS_EXIT;
	if (o.version) {
		printf("imapguard %s (libbpf %s)\n", IG_VERSION, libbpf_version_string());
		return 0;
	}
	if (!c) {
		opts_help(&global_cmd, stderr);
		return 1;
	}
	return c->fn(argc - i, argv + i) != 0;
}
