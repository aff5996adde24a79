// SPDX-License-Identifier: GPL-2.0
/* imapguard run: options and help; the daemon itself is daemon/daemon.c. */
#include <stddef.h>
#include "base/log.h"
#include "cli/cli.h"
#include "daemon/ctl.h"
#include "daemon/daemon.h"
#include "policy/sign.h"

static const char run_doc[] =
	"Run the imapguard daemon in the foreground (for systemd).\n"
	"\n"
	"Loads or adopts the pinned fast path, applies the policy, attaches the\n"
	"interfaces, then follows ring-buffer events and the auth logs, expires\n"
	"bans and keeps the state file. SIGHUP reloads the policy atomically (a bad\n"
	"file keeps the old one); SIGTERM/SIGINT exit and leave enforcement pinned.";

static const char run_examples[] =
	"EXAMPLES:\n"
	"  imapguard run --policy /etc/imapguard/imapguard.conf --iface eth0\n"
	"  imapguard run --policy p.conf --iface eth0 --mode tc --log-format json\n"
	"  imapguard run --policy p.conf --detach-on-exit\n"
	"      (interfaces from the policy's [interface] section)";

static const char *const log_formats[] = { "text", "json", NULL };

struct run_opts {
	struct daemon_opts d;
	int log_format;		/* index in log_formats */
};

#define O(f) offsetof(struct run_opts, f)
static const struct opt run_options[] = {
	OPTION("policy", 'p', OPT_PATH, O(d.policy_path), "FILE", "policy file (required)",
	       .required = true),
	OPTION("iface", 'i', OPT_IFACE, O(d.ifaces), "IF", "interface to protect (repeatable; "
	       "default: the\npolicy's [interface] names)", .max = POL_MAX_IFACES,
	       .count_off = O(d.nifaces)),
	OPTION("mode", 'm', OPT_ENUM, O(d.mode), "MODE",
	       "auto|native|generic|tc (default: policy, else auto)", .names = cli_mode_names),
	OPTION("log-format", 'L', OPT_ENUM, O(log_format), "FMT",
	       "text (default) or json, one object per line", .names = log_formats),
	OPTION("detach-on-exit", 'D', OPT_FLAG, O(d.detach_on_exit), NULL,
	       "remove the attachments on exit instead of leaving\nthem pinned"),
	OPTION("state-file", 's', OPT_PATH, O(d.state_path), "PATH",
	       "state file (default: policy's, /var/lib/imapguard/state)"),
	OPTION("control-socket", 'c', OPT_PATH, O(d.ctl_path), "PATH",
	       "control socket (default: policy's,\n" IG_DEFAULT_CTL_SOCK ")"),
	OPTION("require-signature", 'S', OPT_PATH, O(d.trusted), "PUBFILE",
	       "refuse policies without a good FILE.sig by a key in\nPUBFILE (default: "
	       SIG_TRUSTED_DEFAULT " if it\nexists)"),
	{}
};

static const struct opts_cmd run_cmd = {
	.name = "run",
	.usage = "--policy FILE [options]",
	.doc = run_doc,
	.opts = run_options,
	.epilog = run_examples,
};

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {};
	int err;

	if ((err = opts_parse(&run_cmd, argc, argv, &o)))
		return opts_done(err);
	o.d.pin_dir = env.pin_dir;
	log_set_json(o.log_format == 1);
	if ((err = require_root()))
		return err;
	return daemon_run(&o.d);
}
