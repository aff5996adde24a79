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
#include "base/json.h"
#include "base/log.h"
#include "cli/cli.h"
#include "daemon/ctl.h"
#include "fastpath/lists.h"

struct ctl_opts {
	bool json, follow;
	int n;
	const char *path;
	const char *addr[1];	/* why ADDR */
	int naddr;
	const char *user;	/* why --user LOGIN */
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
	OPTION("user", 'u', OPT_STR, O(user), "LOGIN",
	       "explain an account instead (the auth policy server's view)"),
	CTL_SOCKET,
	ARG(OPT_STR, O(addr), "ADDR", .max = 1, .count_off = O(naddr)),
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
	.usage = "ADDR | --user LOGIN [--json] [--control-socket PATH]",
	.doc = "Explain one address: the current ban (from the pinned maps, daemon or\n"
	       "not), and from the daemon: auth failures in the window, users tried and\n"
	       "the ban history. --user LOGIN explains an account as the auth policy\n"
	       "server sees it: sources failing it in the window, whether it is\n"
	       "protected, and its known-good sources.",
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

/* A reply line from the daemon, read with jansson: NULL (with a warning)
 * when it is not a JSON object. */
static json_t *parse_reply(const char *cmd, const char *line)
{
	json_error_t err;
	json_t *j = json_parse_object(line, strlen(line), &err);

	if (!j)
		pr_warn("%s: the daemon's answer is not a JSON object: %s", cmd, err.text);
	return j;
}

/* The daemon's answer says it failed: {"ok": false, "error": ...}. */
static bool reply_refused(json_t *j)
{
	return json_is_false(json_object_get(j, "ok"));
}

/* reload: print the answer; *ok stays true only for a JSON "ok": true. */
static int print_reload(void *ctx, const char *line)
{
	bool *ok = ctx;
	json_t *j = parse_reply("reload", line);

	if (!j || !json_is_true(json_object_get(j, "ok")))
		*ok = false;
	json_println(stdout, j);
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
	bool ok = true;
	int err;

	if ((err = opts_parse(&reload_cmd, argc, argv, &o)))
		return opts_done(err);
	err = ctl_request(o.path, "reload", 10000, print_reload, &ok);
	if (err)
		return ctl_fail(o.path, err);
	return ok ? 0 : -EINVAL;
}

struct events_ctx {
	bool json;
	bool failed;	/* a refusal or a line that is not JSON: exit 1 */
};

/* A string field of an event, or dflt. */
static const char *ev_str(json_t *e, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(e, key));

	return v ? v : dflt;
}

/* One event line: as it came with --json, else the type, the reason (or the
 * rule), the address, then the event itself. */
static int print_event(void *ctx, const char *line)
{
	struct events_ctx *c = ctx;
	json_t *e = parse_reply("events", line);
	char *s;

	if (!e) {
		c->failed = true;
		return 0;
	}
	if (reply_refused(e)) {
		c->failed = true;
		pr_warn("events: the daemon refused: %s", ev_str(e, "error", "(no reason given)"));
		if (c->json)
			json_println(stdout, json_incref(e));
	} else if (json_is_true(json_object_get(e, "stream"))) {
		/* the stream's greeting, not an event */
	} else if (c->json) {
		json_println(stdout, json_incref(e));
	} else if ((s = json_take_string(json_incref(e)))) {
		printf("%-6s %-14s %-40s ", ev_str(e, "type", "?"),
		       ev_str(e, "reason", ev_str(e, "rule", "")), ev_str(e, "addr", "?"));
		print_clean(s);	/* a user name may hold C1 controls */
		putchar('\n');
		free(s);
	}
	json_decref(e);
	fflush(stdout);
	return 0;
}

int cmd_events(int argc, char **argv)
{
	struct ctl_opts o = CTL_DEFAULTS;
	struct events_ctx c = {};
	int err;

	if ((err = opts_parse(&events_cmd, argc, argv, &o)))
		return opts_done(err);
	c.json = o.json;
	err = ctl_request(o.path, o.follow ? "events" : "recent", o.follow ? -1 : 5000,
			  print_event, &c);
	if (err)
		return ctl_fail(o.path, err);
	return c.failed ? -EPROTO : 0;
}

/* The STARTTLS guard's part of a "why" reply, in words. */
static void print_why_starttls(json_t *st)
{
	const char *verb = json_string_value(json_object_get(st, "last_verb"));

	printf("STARTTLS guard: %lld plaintext, %lld unparsable, %lld logged (log mode) "
	       "event(s); last: ",
	       (long long)json_integer_value(json_object_get(st, "plaintext_events")),
	       (long long)json_integer_value(json_object_get(st, "unparsable_events")),
	       (long long)json_integer_value(json_object_get(st, "logged_events")));
	if (verb && *verb) {
		printf("verb ");
		print_clean(verb);
	} else {
		print_clean(json_string_value(json_object_get(st, "last_cause")) ?: "?");
	}
	putchar('\n');
}

/* Human form of the daemon's "why" reply: the detector's own lines, then
 * what the STARTTLS guard saw. */
static int print_why(void *ctx, const char *line)
{
	bool json = *(bool *)ctx;
	json_t *j = parse_reply("why", line), *st = json_object_get(j, "starttls");
	const char *text = json_string_value(json_object_get(j, "detector"));

	if (json || (!text && !json_is_object(st))) {
		json_println(stdout, j);
		return 0;
	}
	/* Line by line: print_cleann would turn the newlines into '?'. */
	for (const char *nl; text && *text; text = *nl ? nl + 1 : nl) {
		nl = strchrnul(text, '\n');
		print_cleann(text, nl - text);
		putchar('\n');
	}
	if (json_is_object(st))
		print_why_starttls(st);
	json_decref(j);
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
		if (json)
			json_println(stdout, json_pack("{s:s, s:o, s:b, s:o, s:I}", "ban", a,
				"reason", json_textn(b[i].val.reason,
						     strnlen(b[i].val.reason, sizeof(b[i].val.reason))),
				"permanent", !b[i].val.expires_ns,
				"expires_in_s", json_fixed(b[i].val.expires_ns ?
							   (b[i].val.expires_ns - now) / 1e9 : 0, 1),
				"packets", (json_int_t)b[i].val.packets));
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

/* Human form of the "whyuser" reply. */
static int print_why_user(void *ctx, const char *line)
{
	bool json = *(bool *)ctx;
	json_t *j = parse_reply("why", line), *a = json_object_get(j, "account"), *kg, *e;
	size_t i;

	if (json || !a) {
		json_println(stdout, j);
		return 0;
	}
	printf("account ");
	print_clean(json_string_value(json_object_get(a, "user")));
	printf(": %lld source(s) failing in the last %llds (protected at %lld): %s\n",
	       (long long)json_integer_value(json_object_get(a, "failing_sources")),
	       (long long)json_integer_value(json_object_get(a, "window_s")),
	       (long long)json_integer_value(json_object_get(a, "account_max_sources")),
	       json_is_true(json_object_get(a, "protected")) ?
	       "PROTECTED: only known-good sources may log in" : "not protected");
	kg = json_object_get(a, "known_good");
	if (!json_array_size(kg))
		printf("no known-good sources\n");
	for (i = 0; i < json_array_size(kg); i++) {
		e = json_array_get(kg, i);
		printf("known-good source %s, last good login %llds ago\n",
		       json_string_value(json_object_get(e, "addr")),
		       (long long)(time(NULL) - json_integer_value(json_object_get(e, "last_s"))));
	}
	json_decref(j);
	return 0;
}

static int why_user(struct ctl_opts *o)
{
	char req[CTL_USER_LEN + 16];
	int err;

	snprintf(req, sizeof(req), "whyuser %s", o->user);
	err = ctl_request(o->path, req, 5000, print_why_user, &o->json);
	return err ? ctl_fail(o->path, err) : 0;
}

int cmd_why(int argc, char **argv)
{
	struct ctl_opts o = CTL_DEFAULTS;
	char req[128], addr[ADDR_STRLEN];
	struct ig_prefix p;
	int err;

	if ((err = opts_parse(&why_cmd, argc, argv, &o)))
		return opts_done(err);
	if (o.user && o.naddr) {
		pr_warn("why: give ADDR or --user LOGIN, not both");
		return -EINVAL;
	}
	if (o.user)
		return why_user(&o);
	if (!o.naddr || addr_parse(o.addr[0], &p, false) || p.plen != 128) {
		pr_warn("why: expected one address (or --user LOGIN)");
		return -EINVAL;
	}
	addr_format(&p, addr);
	if (!require_root() && fastpath_loaded(env.pin_dir))
		why_ban(&p, o.json);
	snprintf(req, sizeof(req), "why %s", addr);
	err = ctl_request(o.path, req, 5000, print_why, &o.json);
	if (err && !o.json)
		printf("daemon not running: no auth-log history for %s\n", addr);
	return 0;
}

static int print_top(void *ctx, const char *line)
{
	struct ctl_opts *o = ctx;
	json_t *j = parse_reply("top", line), *v;
	const char *addr = json_string_value(json_object_get(j, "addr")), *key;

	if (o->json || !addr) {
		json_println(stdout, j);
		return 0;
	}
	if (!o->follow) {
		printf("%-40s %8s  %s\n", "source", "events", "by reason");
		o->follow = true;
	}
	printf("%-40s %8lld ", addr, (long long)json_integer_value(json_object_get(j, "events")));
	/* Every other key is a verdict reason with its count, or the verb. */
	json_object_foreach(j, key, v) {
		if (!strcmp(key, "addr") || !strcmp(key, "events"))
			continue;
		printf(" %s=", key);
		if (json_is_string(v))
			print_clean(json_string_value(v));
		else
			printf("%lld", (long long)json_integer_value(v));
	}
	putchar('\n');
	json_decref(j);
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
