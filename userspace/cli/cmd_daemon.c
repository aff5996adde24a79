// SPDX-License-Identifier: GPL-2.0
/* reload, events, why and top: the commands that ask the running daemon. */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "base/log.h"
#include "cli/cli.h"
#include "daemon/ctl.h"
#include "fastpath/lists.h"

struct ctl_opts {
	bool json, follow;
	int n;
	const char *path;
	struct ig_prefix addr;	/* why */
};

#define O(f) offsetof(struct ctl_opts, f)
#define CTL_SOCKET OPTION("control-socket", 'c', OPT_PATH, O(path), "PATH", \
			  "the daemon's socket (default " IG_DEFAULT_CTL_SOCK ")")
static const struct opt reload_options[] = { CTL_SOCKET, {} };

static const struct opt events_options[] = {
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "one JSON object per line"),
	OPTION("follow", 'f', OPT_FLAG, O(follow), NULL, "keep streaming"),
	CTL_SOCKET, {}
};

static const struct opt why_options[] = {
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "JSON lines"),
	CTL_SOCKET,
	ARG(OPT_ADDR, O(addr), "ADDR"),
	{}
};

static const struct opt top_options[] = {
	OPTION(NULL, 'n', OPT_INT, O(n), "N",
	       "how many (default 10)", .min = 1, .max = CTL_TOP_MAX),
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "one JSON object per source"),
	CTL_SOCKET, {}
};
#undef CTL_SOCKET
#undef O

static const struct opts_cmd reload_cmd = {
	.name = "reload",
	.usage = "[--control-socket PATH]",
	.doc = "Ask the daemon to re-read its policy file. A bad file is reported and the\n"
	       "policy in force stays. Exit status 1 if the reload failed.",
	.opts = reload_options,
};

static const struct opts_cmd events_cmd = {
	.name = "events",
	.usage = "[--json] [--follow] [--control-socket PATH]",
	.doc = "Show the daemon's recent events (drops reported by the fast path, bans\n"
	       "decided from the auth log); --follow streams them as they happen.",
	.opts = events_options,
};

static const struct opts_cmd why_cmd = {
	.name = "why",
	.usage = "ADDR [--json] [--control-socket PATH]",
	.doc = "Explain one address: the current ban (from the pinned maps, daemon or\n"
	       "not), and from the daemon: auth failures in the window, users tried and\n"
	       "the ban history.",
	.opts = why_options,
};

static const struct opts_cmd top_cmd = {
	.name = "top",
	.usage = "[-n N] [--json] [--control-socket PATH]",
	.doc = "The sources with the most drops since the daemon started: drop events per\n"
	       "source, split by reason (an event stands for up to one second of drops\n"
	       "of one reason from one source). Needs the daemon.",
	.opts = top_options,
};

#define CTL_DEFAULTS { .n = 10, .path = IG_DEFAULT_CTL_SOCK }

static int print_line(void *ctx, const char *line)
{
	int *ok = ctx;

	if (ok && strstr(line, "\"ok\":false"))
		*ok = 0;
	printf("%s\n", line);
	fflush(stdout);
	return 0;
}

static int ctl_fail(const char *path, int err)
{
	if (err == -ENOENT || err == -ECONNREFUSED)
		pr_warn("the daemon is not running (no control socket at '%s')", path);
	else
		pr_warn("control socket '%s': %s", path, strerror(-err));
	return err;
}

int cmd_reload(int argc, char **argv)
{
	struct ctl_opts o = CTL_DEFAULTS;
	int ok = 1, err;

	if ((err = opts_parse(&reload_cmd, argc, argv, &o)))
		return opts_done(err);
	err = ctl_request(o.path, "reload", 10000, print_line, &ok);
	if (err)
		return ctl_fail(o.path, err);
	return ok ? 0 : -EINVAL;
}

/* Human form of a JSON event line: pick a few fields out. */
static int print_event(void *ctx, const char *line)
{
	bool json = *(bool *)ctx;

	if (strstr(line, "\"stream\":true"))
		return 0;
	if (json || line[0] != '{') {
		printf("%s\n", line);
	} else {
		char type[32] = "?", reason[32] = "", addr[64] = "?";
		const char *p;

		if ((p = strstr(line, "\"type\":\"")))
			sscanf(p + 8, "%31[^\"]", type);
		if ((p = strstr(line, "\"reason\":\"")) || (p = strstr(line, "\"rule\":\"")))
			sscanf(strchr(p, ':') + 2, "%31[^\"]", reason);
		if ((p = strstr(line, "\"addr\":\"")))
			sscanf(p + 8, "%63[^\"]", addr);
		printf("%-6s %-14s %-40s %s\n", type, reason, addr, line);
	}
	fflush(stdout);
	return 0;
}

int cmd_events(int argc, char **argv)
{
	struct ctl_opts o = CTL_DEFAULTS;
	int err;

	if ((err = opts_parse(&events_cmd, argc, argv, &o)))
		return opts_done(err);
	err = ctl_request(o.path, o.follow ? "events" : "recent", o.follow ? -1 : 5000,
			  print_event, &o.json);
	return err ? ctl_fail(o.path, err) : 0;
}

/* Human form of the daemon's "why" reply: the detector's own lines. */
static int print_why(void *ctx, const char *line)
{
	bool json = *(bool *)ctx;
	const char *p = strstr(line, "\"detector\":\"");

	if (json || !p) {
		printf("%s\n", line);
		return 0;
	}
	for (p += 12; *p && *p != '"'; p++) {
		if (*p != '\\') {
			putchar(*p);
		} else if (!strncmp(p, "\\u000a", 6)) {
			putchar('\n');
			p += 5;
		} else if (p[1]) {
			putchar(*++p);
		}
	}
	return 0;
}

static void why_ban(const struct ig_prefix *p, bool json)
{
	uint64_t now = mono_ns();
	struct ban_info *b;
	struct ig_maps m;
	char a[ADDR_STRLEN];
	size_t n;
	int lock_fd = open_state(&m), hits = 0;

	if (lock_fd < 0)
		return;
	close(lock_fd);		/* reading: no lock needed */
	lock_fd = -1;
	if (ban_list(&m, &b, &n)) {
		fastpath_close_maps(&m);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!addr_contains(&b[i].pfx, p) ||
		    (b[i].val.expires_ns && b[i].val.expires_ns <= now))
			continue;
		addr_format(&b[i].pfx, a);
		if (json) {
			printf("{\"ban\":\"%s\",\"reason\":", a);
			json_str(stdout, b[i].val.reason);
			printf(",\"permanent\":%s,\"expires_in_s\":%.1f,\"packets\":%llu}\n",
			       b[i].val.expires_ns ? "false" : "true",
			       b[i].val.expires_ns ? (b[i].val.expires_ns - now) / 1e9 : 0.0,
			       (unsigned long long)b[i].val.packets);
		}
		if (!json)
			printf("banned now by %s (%s), %llu packets dropped, %s\n", a, b[i].val.reason,
			       (unsigned long long)b[i].val.packets,
			       b[i].val.expires_ns ? "expires" : "permanent");
		hits++;
	}
	if (!hits && !json)
		printf("not banned now\n");
	free(b);
	close_state(&m, lock_fd);
}

int cmd_why(int argc, char **argv)
{
	struct ctl_opts o = CTL_DEFAULTS;
	char req[128], addr[ADDR_STRLEN];
	int err;

	if ((err = opts_parse(&why_cmd, argc, argv, &o)))
		return opts_done(err);
	addr_format(&o.addr, addr);
	if (!require_root() && fastpath_loaded(env.pin_dir))
		why_ban(&o.addr, o.json);
	snprintf(req, sizeof(req), "why %s", addr);
	err = ctl_request(o.path, req, 5000, print_why, &o.json);
	if (err && !o.json)
		printf("daemon not running: no auth-log history for %s\n", addr);
	return 0;
}

static int print_top(void *ctx, const char *line)
{
	struct ctl_opts *o = ctx;
	bool json = o->json;
	char addr[64] = "?";
	unsigned long long ev = 0;
	const char *p = strstr(line, "\"events\":");

	if (json || line[0] != '{' || !p) {
		printf("%s\n", line);
		return 0;
	}
	if (!o->follow) {
		printf("%-40s %8s  %s\n", "source", "events", "by reason");
		o->follow = true;
	}
	sscanf(line, "{\"addr\":\"%63[^\"]", addr);
	sscanf(p + 9, "%llu", &ev);
	p = strchr(p + 9, ',');
	printf("%-40s %8llu  %s\n", addr, ev, p ? p + 1 : "");
	return 0;
}

int cmd_top(int argc, char **argv)
{
	struct ctl_opts o = CTL_DEFAULTS;
	char req[32];
	int err;

	if ((err = opts_parse(&top_cmd, argc, argv, &o)))
		return opts_done(err);
	snprintf(req, sizeof(req), "top %d", o.n);
	o.follow = false;	/* print_top's header flag: printed with the first line */
	err = ctl_request(o.path, req, 5000, print_top, &o);
	return err ? ctl_fail(o.path, err) : 0;
}
