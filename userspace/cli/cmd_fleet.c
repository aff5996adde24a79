// SPDX-License-Identifier: GPL-2.0
/* fleet status: what the daemon knows of the fleet (daemon/fleet.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "base/json.h"
#include "cli/cli.h"
#include "daemon/ctl.h"

struct fleet_opts {
	bool json;
	const char *path;
};

#define O(f) offsetof(struct fleet_opts, f)
static const struct opt fleet_options[] = {
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "the daemon's answer as one JSON object"),
	OPTION("control-socket", 'c', OPT_PATH, O(path), "PATH",
	       "the daemon's socket (default " IG_DEFAULT_CTL_SOCK ")"),
	{}
};
#undef O

static const struct cmd fleet_subs[] = {
	{ "status", NULL, "[--json]", "nodes seen (heartbeats), connection, stream lag, queue" },
	{}
};

static const struct opts_cmd fleet_cmd = {
	.name = "fleet",
	.usage = "status [--json] [--control-socket PATH]",
	.doc = "The fleet ([fleet] in the policy) as the running daemon sees it: the nodes\n"
	       "whose heartbeat is live in Redis, this node's connection, stream lag, queue,\n"
	       "and the entries from Redis it refused.",
	.opts = fleet_options,
	.subs = fleet_subs,
};

struct reply {
	bool json, ok;
};

static void print_counts(const char *what, json_t *o)
{
	const char *k;
	json_t *v;

	printf("%-16s", what);
	json_object_foreach(o, k, v)
		printf(" %s=%lld", k, (long long)json_integer_value(v));
	printf("\n");
}

static int print_fleet(void *ctx, const char *line)
{
	struct reply *r = ctx;
	json_error_t err;
	json_t *j = json_parse_object(line, strlen(line), &err), *f, *n;
	size_t i;

	if (!j) {
		pr_warn("fleet: the daemon's answer is not a JSON object: %s", err.text);
		return 1;
	}
	f = json_object_get(j, "fleet");
	if (!json_is_true(json_object_get(j, "ok")) || !f) {
		pr_warn("fleet: %s", json_string_value(json_object_get(j, "error")) ?: "no answer");
		json_decref(j);
		return 1;
	}
	r->ok = true;
	if (r->json) {
		json_println(stdout, json_incref(f));
		json_decref(j);
		return 0;
	}
	/* Node names come from Redis: print_clean keeps them off the terminal raw. */
	printf("node             ");
	print_clean(json_string_value(json_object_get(f, "node")) ?: "?");
	printf("\nredis            %s (%s, stream %s)\n",
	       json_string_value(json_object_get(f, "redis")) ?: "?",
	       json_is_true(json_object_get(f, "connected")) ? "connected" : "NOT connected",
	       json_is_true(json_object_get(f, "stream_connected")) ? "tailing" : "not tailing");
	printf("stream lag       %lld ms (last id %s)\n",
	       (long long)json_integer_value(json_object_get(f, "stream_lag_ms")),
	       json_string_value(json_object_get(f, "last_id")) ?: "");
	printf("queue            %lld of %lld\n",
	       (long long)json_integer_value(json_object_get(f, "queue")),
	       (long long)json_integer_value(json_object_get(f, "queue_max")));
	printf("published        %lld; received %lld bans, %lld lifts\n",
	       (long long)json_integer_value(json_object_get(f, "published")),
	       (long long)json_integer_value(json_object_get(f, "received_add")),
	       (long long)json_integer_value(json_object_get(f, "received_del")));
	printf("connections      %lld started; %lld error replies, %lld over the size limits\n",
	       (long long)json_integer_value(json_object_get(f, "reconnects")),
	       (long long)json_integer_value(json_object_get(f, "errors")),
	       (long long)json_integer_value(json_object_get(f, "oversized")));
	print_counts("dropped", json_object_get(f, "dropped"));
	print_counts("refused", json_object_get(f, "refused"));
	printf("\n%-24s %12s %8s %10s %10s\n", "node", "last seen", "queue", "lag ms", "published");
	json_array_foreach(json_object_get(f, "nodes"), i, n) {
		char seen[32];

		snprintf(seen, sizeof(seen), "%.1fs ago",
			 json_integer_value(json_object_get(n, "last_seen_ms_ago")) / 1000.0);
		print_clean(json_string_value(json_object_get(n, "node")) ?: "?");
		printf("%s%*s %12s %8lld %10lld %10lld\n",
		       json_is_true(json_object_get(n, "self")) ? " *" : "",
		       (int)(24 - strlen(json_string_value(json_object_get(n, "node")) ?: "?") -
			     (json_is_true(json_object_get(n, "self")) ? 2 : 0)), "", seen,
		       (long long)json_integer_value(json_object_get(n, "queue")),
		       (long long)json_integer_value(json_object_get(n, "lag_ms")),
		       (long long)json_integer_value(json_object_get(n, "published")));
	}
	json_decref(j);
	return 0;
}

int cmd_fleet(int argc, char **argv)
{
	struct fleet_opts o = { .path = IG_DEFAULT_CTL_SOCK };
	struct reply r = {};
	const struct cmd *s;
	int err, i;

	if ((err = opts_sub(&fleet_cmd, argc, argv, &o, &s, &i)) ||
	    (err = opts_parse(&fleet_cmd, argc - i, argv + i, &o)))
		return opts_done(err);
	r.json = o.json;
	err = ctl_request(o.path, "fleet", 5000, print_fleet, &r);
	if (err == -ENOENT || err == -ECONNREFUSED)
		pr_warn("the daemon is not running (no control socket at '%s')", o.path);
	else if (err)
		pr_warn("control socket '%s': %s", o.path, strerror(-err));
	return err ? err : r.ok ? 0 : -EINVAL;
}
