/* SPDX-License-Identifier: GPL-2.0 */
/* What an epoll event's data.ptr points at in the daemon's one loop. Lower
 * layers that own an fd in that loop (authlog's followers) tag it with one. */
#ifndef IMAPGUARD_EPSRC_H
#define IMAPGUARD_EPSRC_H

enum src_type { SRC_SIGNAL, SRC_TIMER, SRC_RINGBUF, SRC_LISTEN, SRC_HTTP, SRC_CLIENT, SRC_AUTHLOG,
		SRC_KNOCK, SRC_CROWDSEC, SRC_FLEET, SRC_SAVER };

struct ep_src {
	enum src_type type;
	void *ptr;
};

#endif
