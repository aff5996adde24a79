/* SPDX-License-Identifier: GPL-2.0 */
#ifndef IMAPGUARD_DAEMON_H
#define IMAPGUARD_DAEMON_H
#include <stdbool.h>
#include <stdint.h>
#include "addr.h"
#include "../bpf/common.h"

struct daemon;

/* What an epoll event's data.ptr points at. */
enum src_type { SRC_SIGNAL, SRC_TIMER, SRC_RINGBUF, SRC_LISTEN, SRC_METRICS, SRC_CLIENT, SRC_AUTHLOG };

struct ep_src {
	enum src_type type;
	void *ptr;
};

/* Apply a ban decided inside the daemon (auth-log detector): map, state,
 * log line and an event for `imapguard events`. 0 or -errno. */
int daemon_ban(struct daemon *d, const struct ig_prefix *p, uint64_t duration_ns,
	       const char *reason);
/* Send one JSON event line to every `events --follow` client and keep it
 * for `events` (recent). */
void daemon_emit(struct daemon *d, const char *json);
/* A live (unexpired) ban for exactly p is in the maps. */
bool daemon_has_ban(struct daemon *d, const struct ig_prefix *p);
int daemon_get_ban(struct daemon *d, const struct ig_prefix *p, struct ig_ban_val *v);
/* Never ban what the allow list covers (any port). */
bool daemon_is_allowed(struct daemon *d, const struct ig_prefix *p);

int cmd_run(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_why(int argc, char **argv);
int cmd_top(int argc, char **argv);

#endif
