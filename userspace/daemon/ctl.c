// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "base/text.h"
#include "daemon/ctl.h"

static const char *const verbs[CTL_VERB_MAX] = {
	[CTL_STATUS] = "status", [CTL_RELOAD] = "reload", [CTL_EVENTS] = "events",
	[CTL_RECENT] = "recent", [CTL_WHY] = "why", [CTL_TOP] = "top", [CTL_METRICS] = "metrics",
	[CTL_WHY_USER] = "whyuser",
	[CTL_FLEET] = "fleet", [CTL_SHARE] = "share",
};

/* "top [N]": N as strtol reads it; anything not positive means the default. */
static unsigned int top_count(const char *arg)
{
	long want = arg ? strtol(arg, NULL, 10) : CTL_TOP_DEFAULT;

	if (want <= 0)
		return CTL_TOP_DEFAULT;
	return want > CTL_TOP_MAX ? CTL_TOP_MAX : want;
}

/* The verb and argument of one NUL-free line. */
static int parse_line(const char *line, struct ctl_req *req)
{
	const char *sp = strchr(line, ' ');
	size_t vlen = sp ? (size_t)(sp - line) : strlen(line);
	const char *arg = sp ? sp + 1 : NULL;
	int v;

	for (v = 0; v < CTL_VERB_MAX; v++)
		if (strlen(verbs[v]) == vlen && !memcmp(line, verbs[v], vlen))
			break;
	/* Only why, whyuser, top and share take an argument (why, whyuser and
	 * share need one). */
	if (v == CTL_VERB_MAX ||
	    (arg && v != CTL_WHY && v != CTL_TOP && v != CTL_WHY_USER && v != CTL_SHARE) ||
	    ((v == CTL_WHY || v == CTL_WHY_USER || v == CTL_SHARE) && !arg)) {
		req->error = "unknown request";
		return -EINVAL;
	}
	req->verb = v;
	if (v == CTL_TOP)
		req->top = top_count(arg);
	if (v == CTL_WHY && (addr_parse(arg, &req->addr, false) || req->addr.plen != 128)) {
		req->error = "why: expected one address";
		return -EINVAL;
	}
	if (v == CTL_SHARE && addr_parse(arg, &req->addr, false)) {
		req->error = "share: expected an address or CIDR";
		return -EINVAL;
	}
	if (v == CTL_WHY_USER) {
		size_t n = strlen(arg);

		for (size_t i = 0; i < n; i++)
			if ((unsigned char)arg[i] < 0x20 || arg[i] == 0x7f)
				n = 0;
		if (!n || n >= sizeof(req->user) || !utf8_valid(arg, n)) {
			req->error = "whyuser: expected a login name (UTF-8, at most 255 bytes)";
			return -EINVAL;
		}
		memcpy(req->user, arg, n + 1);
	}
	return 0;
}

int ctl_parse(const char *buf, size_t len, struct ctl_req *req)
{
	const char *nl = memchr(buf, '\n', len);
	char line[CTL_MAX_REQ];
	size_t n;

	memset(req, 0, sizeof(*req));
	if (!nl) {
		if (len < CTL_MAX_REQ - 1)
			return -EAGAIN;
		req->error = "request too long";
		return -EMSGSIZE;
	}
	n = nl - buf;
	if (n >= sizeof(line) || memchr(buf, '\0', n)) {
		req->error = "malformed request";
		return -EBADMSG;
	}
	memcpy(line, buf, n);
	line[n] = '\0';
	return parse_line(line, req);
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* One request line. A daemon that refuses us answers and closes before
 * reading: the write may then fail, but its answer is still there to read. */
static int ctl_send(int fd, const char *req)
{
	char line[CTL_MAX_REQ + 1];
	int len = snprintf(line, sizeof(line), "%s\n", req);

	if (len >= (int)sizeof(line))
		return -EMSGSIZE;
	if (send(fd, line, len, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
		return -errno;
	return 0;
}

int ctl_request(const char *path, const char *req, int timeout_ms, ctl_line_fn fn, void *ctx)
{
	char buf[65536];
	size_t have = 0, lines = 0;
	int fd = ctl_connect(path), err = 0;
	struct pollfd pfd;
	ssize_t n;

	if (fd < 0)
		return fd;
	err = ctl_send(fd, req);
	if (err)
		goto out;
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	for (;;) {
		char *nl;

		n = poll(&pfd, 1, timeout_ms);
		if (n == 0) {
			err = -ETIMEDOUT;
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		n = n < 0 ? -1 : read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == ECONNRESET && lines && !have)
			n = 0;	/* reset after a complete answer: that was the end */
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		have += n;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			lines++;
			if (fn(ctx, buf))
				goto out;
			have -= nl + 1 - buf;
			memmove(buf, nl + 1, have + 1);
		}
		if (have == sizeof(buf) - 1) {	/* a reply line longer than we take */
			err = -EMSGSIZE;
			break;
		}
	}
out:
	close(fd);
	return err;
}
