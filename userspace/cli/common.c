// SPDX-License-Identifier: GPL-2.0
/* Helpers every command shares: root check, policy loading,
 * the pinned state, and the built-in default policy. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "base/log.h"
#include "base/text.h"
#include "cli/cli.h"
#include "fastpath/lists.h"
#include "policy/policy.h"
#include "policy/sign.h"

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


const char *const cli_mode_names[] = { "auto", "native", "generic", "tc", NULL };
const char *const cli_format_names[] = { "auto", "dovecot", "cyrus", "courier", "uwimap", NULL };

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

int apply_or_warn(struct ig_maps *m, const struct policy *pol)
{
	char err[POL_ERR_LEN];
	int ret = apply_policy(m, pol, err, sizeof(err));

	if (ret)
		pr_warn("Couldn't apply policy: %s", err);
	return ret;
}

void print_cleann(const char *s, size_t n)
{
	char *clean = text_clean_dup(s, n);

	fputs(clean ? clean : "?", stdout);
	free(clean);
}

void print_clean(const char *s)
{
	print_cleann(s, strlen(s));
}
