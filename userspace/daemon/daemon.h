/* SPDX-License-Identifier: GPL-2.0 */
/* imapguard run: the daemon and its one epoll loop. */
#ifndef IMAPGUARD_DAEMON_H
#define IMAPGUARD_DAEMON_H
#include <stdbool.h>
#include "policy/policy.h"

/* What `imapguard run` was told; NULL/0 fields take the policy's values. */
struct daemon_opts {
	const char *policy_path;	/* required */
	const char *trusted;		/* --require-signature, else sign.h's default */
	const char *state_path;
	const char *ctl_path;
	const char *pin_dir;
	const char *ifaces[POL_MAX_IFACES];
	int nifaces, mode;
	bool detach_on_exit;
};

/* Start (load or adopt the fast path, attach, restore state), run the loop
 * until SIGTERM/SIGINT, save state. Must run as root. Returns 0 after a
 * clean stop, or the -errno that stopped start-up (already logged). */
int daemon_run(const struct daemon_opts *o);

#endif
