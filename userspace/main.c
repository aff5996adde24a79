// SPDX-License-Identifier: GPL-2.0
/* imapguard: command dispatch and the helpers every command shares. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "audit.h"
#include "cli.h"
#include "daemon.h"
#include "log.h"
#include "policy.h"
#include "sign.h"

struct cli_env env = { .pin_dir = IG_DEFAULT_PIN_DIR, .prog = "imapguard" };

#define INSTALLED_POLICY "/etc/imapguard/imapguard.conf"

/* policies/default.conf, compiled in so the binary works with no files. */
__asm__(".section .rodata\n"
	".global ig_default_policy\n"
	"ig_default_policy:\n"
	".incbin \"policies/default.conf\"\n"
	".byte 0\n"
	".previous\n");
extern const char ig_default_policy[];


int common_opt(int opt)
{
	switch (opt) {
	case 'P':
		env.pin_dir = optarg;
		return 1;
	case 'v':
		log_set_level(log_get_level() + (log_get_level() < LL_LIBBPF));
		return 1;
	case 'h':
		return -1;
	default:
		return 0;
	}
}

int require_root(void)
{
	if (geteuid() != 0) {
		pr_warn("this command needs root (CAP_BPF, CAP_NET_ADMIN)");
		return -EPERM;
	}
	return 0;
}

int load_policy(const char *file, const char *trusted, bool verify, struct policy *pol)
{
	char err[POL_ERR_LEN], path[64];
	int fd, ret;

	if (file || access(INSTALLED_POLICY, R_OK) == 0) {
		file = file ? file : INSTALLED_POLICY;
		ret = verify ? policy_load_checked(file, trusted, pol, err, sizeof(err)) :
			       policy_load(file, pol, err, sizeof(err));
		if (ret)
			pr_warn("%s", err);
		return ret;
	}
	/* No policy anywhere: the built-in default, through a memfd so the
	 * one parser reads it like any file. */
	fd = memfd_create("default.conf", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, ig_default_policy, strlen(ig_default_policy)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = policy_load(path, pol, err, sizeof(err));
	close(fd);
	if (ret)
		pr_warn("built-in policy: %s", err);
	else
		snprintf(pol->file, sizeof(pol->file), "(built-in default.conf)");
	return ret;
}

int open_state(struct ig_maps *m)
{
	int lock_fd, err;

	lock_fd = fastpath_lock(env.pin_dir);
	if (lock_fd < 0)
		return lock_fd;
	err = fastpath_open_maps(env.pin_dir, m);
	if (err) {
		close(lock_fd);
		return err;
	}
	return lock_fd;
}

void close_state(struct ig_maps *m, int lock_fd)
{
	fastpath_close_maps(m);
	if (lock_fd >= 0)
		close(lock_fd);
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

void usage_cmd(const char *name, const char *args, const char *help, const char *opts)
{
	printf("Usage: %s %s %s\n\n%s\n\nOptions:\n%s"
	       "  -P, --pin-dir DIR   pinned state directory (default %s)\n"
	       "  -v, --verbose       more output (-vv: libbpf debug)\n"
	       "  -h, --help          this help\n",
	       env.prog, name, args, help, opts, IG_DEFAULT_PIN_DIR);
}

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
