/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by the command handlers: global options and small output helpers. */
#ifndef IMAPGUARD_CLI_H
#define IMAPGUARD_CLI_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "fastpath/fastpath.h"
#include "base/log.h"
#include "cli/opts.h"

struct policy;

struct cli_env {
	const char *pin_dir;
	const char *prog;	/* "imapguard" */
};

extern struct cli_env env;

/* OPT_ENUM names whose index is the value: attach modes (0 auto, then
 * enum ig_attach_mode, as parse_mode()) and enum authlog_format. */
extern const char *const cli_mode_names[];
extern const char *const cli_format_names[];

int require_root(void);
/* Load FILE, or the installed/built-in default when FILE is NULL; with
 * verify, a file must be signed when a trust file is in force (sign.h). The
 * built-in default is part of the binary and needs no signature. Prints the
 * error. */
int load_policy(const char *file, const char *trusted, bool verify, struct policy *pol);
/* Untrusted text (user names, daemon replies) to stdout with no way to
 * reach the terminal raw: controls and DEL become '?' (no escape sequence
 * survives, 8-bit CSI included), invalid UTF-8 becomes U+FFFD; "?" alone
 * when out of memory. */
void print_cleann(const char *s, size_t n);
void print_clean(const char *s);
/* apply_policy() that prints its error. 0 or -errno. */
int apply_or_warn(struct ig_maps *m, const struct policy *pol);
/* Lock the pin dir and open the maps; returns the lock fd or -errno. */
int open_state(struct ig_maps *m);
void close_state(struct ig_maps *m, int lock_fd);

/* status: the XDP and tc programs on ifindex that are not ours (ids in
 * ours). Text lines after the interface's, or with obj its "others" array.
 * A failed listing is a warning, not an error; returns 0 or -ENOMEM. */
struct coexist_ours;
struct json_t;
int status_others(const struct coexist_ours *ours, unsigned int ifindex, int our_mode,
		  struct json_t *obj);

int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_ban(int argc, char **argv);
int cmd_allow(int argc, char **argv);
int cmd_deny(int argc, char **argv);
int cmd_authlog(int argc, char **argv);
int cmd_authpolicy(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_why(int argc, char **argv);
int cmd_top(int argc, char **argv);
/* cmd_mfa.c */
int cmd_grant(int argc, char **argv);
int cmd_mfa(int argc, char **argv);
int cmd_knock(int argc, char **argv);
struct ig_prefix;
/* The live grants covering p, for 'why' (nothing when the maps are not there). */
void why_grant(const struct ig_prefix *p, bool json);
int cmd_fleet(int argc, char **argv);


#endif
