/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Control socket protocol between the CLI and the daemon: the client sends
 * one request line ("status", "reload", "events", "recent", "why ADDR",
 * "top N", "metrics"), the daemon answers with JSON lines (one compact object
 * per line, built with jansson: valid UTF-8, never cut short; a refusal is
 * {"ok":false,"error":"..."}), and the client reads them with jansson too;
 * "events" keeps streaming until either side closes.
 */
#ifndef IMAPGUARD_CTL_H
#define IMAPGUARD_CTL_H
#include <stddef.h>

#define IG_DEFAULT_CTL_SOCK "/run/imapguard/control.sock"
#define CTL_MAX_REQ 4096
#define CTL_TOP_MAX 4096	/* sources the daemon aggregates: `top -n` at most */

/* Receives each reply line (NUL-terminated, no newline); nonzero stops. */
typedef int (*ctl_line_fn)(void *ctx, const char *line);

/* Connect, send req, read lines until EOF (or until fn says stop).
 * timeout_ms < 0 waits forever (streams). -ENOENT/-ECONNREFUSED: no daemon;
 * -EMSGSIZE: a reply line over 64 KiB (input is bounded; the daemon's
 * longest, status, stays far below that). */
int ctl_request(const char *path, const char *req, int timeout_ms, ctl_line_fn fn, void *ctx);

#endif
