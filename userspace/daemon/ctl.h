/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Control socket protocol between the CLI and the daemon: the client sends
 * one request line ("status", "reload", "events", "recent", "why ADDR",
 * "top N", "metrics", "whyuser LOGIN", "fleet", "share CIDR": publish the ban
 * of CIDR as the maps hold it now, or its lifting, to the fleet), the daemon answers with JSON lines (one compact object
 * per line, built with jansson: valid UTF-8, never cut short; a refusal is
 * {"ok":false,"error":"..."}), and the client reads them with jansson too;
 * "events" keeps streaming until either side closes.
 */
#ifndef IMAPGUARD_CTL_H
#define IMAPGUARD_CTL_H
#include <stddef.h>
#include "base/addr.h"

#define IG_DEFAULT_CTL_SOCK "/run/imapguard/control.sock"
#define CTL_MAX_REQ 4096
#define CTL_TOP_MAX 4096	/* sources the daemon aggregates: `top -n` at most */
#define CTL_TOP_DEFAULT 10

enum ctl_verb { CTL_STATUS, CTL_RELOAD, CTL_EVENTS, CTL_RECENT, CTL_WHY, CTL_TOP, CTL_METRICS,
		CTL_WHY_USER, CTL_FLEET, CTL_SHARE, CTL_VERB_MAX };

#define CTL_USER_LEN	256	/* "whyuser LOGIN": at most 255 bytes of UTF-8 */

/* One request, parsed and validated: what the daemon acts on. */
struct ctl_req {
	enum ctl_verb verb;
	struct ig_prefix addr;	/* why: one address (plen 128); share: ADDR or CIDR */
	unsigned int top;	/* top: sources to list, 1..CTL_TOP_MAX */
	char user[CTL_USER_LEN];	/* whyuser: valid UTF-8, no control characters */
	const char *error;	/* refused: the reply's "error" text (static) */
};

/* Frame and parse the request in buf[0..len), the bytes a client has sent so
 * far (len < CTL_MAX_REQ); only the first line counts. Reads nothing past
 * buf + len, writes only *req. Returns
 *   -EAGAIN    no newline yet, and room for more;
 *   0          *req is a valid request;
 *   -EMSGSIZE  no newline within CTL_MAX_REQ - 1 bytes ("request too long");
 *   -EBADMSG   a NUL in the line ("malformed request");
 *   -EINVAL    an unknown verb or a bad argument.
 * On every error but -EAGAIN, req->error is the message for the client. */
int ctl_parse(const char *buf, size_t len, struct ctl_req *req);

/* Receives each reply line (NUL-terminated, no newline); nonzero stops. */
typedef int (*ctl_line_fn)(void *ctx, const char *line);

/* Connect, send req, read lines until EOF (or until fn says stop).
 * timeout_ms < 0 waits forever (streams). -ENOENT/-ECONNREFUSED: no daemon;
 * -EMSGSIZE: a reply line over 64 KiB (input is bounded; the daemon's
 * longest, status, stays far below that). */
int ctl_request(const char *path, const char *req, int timeout_ms, ctl_line_fn fn, void *ctx);

#endif
