// SPDX-License-Identifier: GPL-2.0
/* imapguard run: options and help; the daemon itself is daemon/daemon.c. */
#include <argp.h>
#include <errno.h>
#include <string.h>
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
	"file keeps the old one); SIGTERM/SIGINT exit and leave enforcement pinned.\n"
	"\n"
	"EXAMPLES:\n"
	"  imapguard run --policy /etc/imapguard/imapguard.conf --iface eth0\n"
	"  imapguard run --policy p.conf --iface eth0 --mode tc --log-format json\n"
	"  imapguard run --policy p.conf --detach-on-exit\n"
	"      (interfaces from the policy's [interface] section)";

static const struct argp_option run_opts[] = {
	{ "policy", 'p', "FILE", 0, "Policy file (required)", 0 },
	{ "iface", 'i', "IF", 0, "Interface to protect (repeatable; default: the policy's [interface] names)", 0 },
	{ "mode", 'm', "MODE", 0, "auto|native|generic|tc (default: policy, else auto)", 0 },
	{ "log-format", 'L', "FMT", 0, "text (default) or json, one object per line", 0 },
	{ "detach-on-exit", 'D', NULL, 0, "Remove the attachments on exit instead of leaving them pinned", 0 },
	{ "state-file", 's', "PATH", 0, "State file (default: policy's, /var/lib/imapguard/state)", 0 },
	{ "control-socket", 'c', "PATH", 0, "Control socket (default: policy's, " IG_DEFAULT_CTL_SOCK ")", 0 },
	{ "pin-dir", 'P', "DIR", 0, "Pinned state directory (default " IG_DEFAULT_PIN_DIR ")", 0 },
	{ "require-signature", 'S', "PUBFILE", 0, "Refuse policies without a good FILE.sig by a "
	  "key in PUBFILE (default: " SIG_TRUSTED_DEFAULT " if it exists)", 0 },
	{ "verbose", 'v', NULL, 0, "More output (-vv: libbpf debug)", 0 },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Give this help list", -1 },
	{},
};

static error_t run_parse(int key, char *arg, struct argp_state *st)
{
	struct daemon_opts *d = st->input;

	switch (key) {
	case 'p': d->policy_path = arg; break;
	case 'i':
		if (d->nifaces == POL_MAX_IFACES)
			argp_error(st, "at most %d interfaces", POL_MAX_IFACES);
		d->ifaces[d->nifaces++] = arg;
		break;
	case 'm':
		if (parse_mode(arg, &d->mode))
			argp_error(st, "invalid --mode '%s' (auto|native|generic|tc)", arg);
		break;
	case 'L':
		if (strcmp(arg, "json") && strcmp(arg, "text"))
			argp_error(st, "invalid --log-format '%s' (text|json)", arg);
		log_set_json(!strcmp(arg, "json"));
		break;
	case 'D': d->detach_on_exit = true; break;
	case 's': d->state_path = arg; break;
	case 'c': d->ctl_path = arg; break;
	case 'P': d->pin_dir = arg; break;
	case 'S': d->trusted = arg; break;
	case 'v': log_set_level(log_get_level() + (log_get_level() < LL_LIBBPF)); break;
	case 'h': argp_state_help(st, stdout, ARGP_HELP_STD_HELP); break;
	case ARGP_KEY_ARG: argp_error(st, "unexpected argument '%s'", arg); break;
	case ARGP_KEY_END:
		if (!d->policy_path)
			argp_error(st, "--policy FILE is required");
		break;
	default: return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct argp argp = { run_opts, run_parse, NULL, run_doc, NULL, NULL, NULL };
	char prog[] = "imapguard run";
	struct daemon_opts o = { .pin_dir = env.pin_dir };
	int err;

	/* Bad options exit 1 like every other command, not argp's 64. */
	argp_err_exit_status = 1;
	argv[0] = prog;
	if (argp_parse(&argp, argc, argv, 0, NULL, &o))
		return -EINVAL;
	if ((err = require_root()))
		return err;
	return daemon_run(&o);
}
