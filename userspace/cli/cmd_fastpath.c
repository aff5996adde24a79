// SPDX-License-Identifier: GPL-2.0
/* attach, detach, status, stats and policy commands. */
#include <errno.h>
#include <stddef.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "cli/cli.h"
#include "daemon/ctl.h"
#include "fastpath/coexist.h"
#include "fastpath/lists.h"
#include "fastpath/metrics.h"
#include "base/json.h"
#include "base/log.h"
#include "base/prom.h"
#include "policy/policy.h"
#include "policy/sign.h"

struct attach_opts {
	const char *iface, *policy;
	int mode;
	bool replace;
};

#define O(f) offsetof(struct attach_opts, f)
static const struct opt attach_options[] = {
	OPTION("iface", 'i', OPT_IFACE, O(iface), "IF", "interface to protect", .required = true),
	OPTION("mode", 'm', OPT_ENUM, O(mode), "MODE",
	       "auto|native|generic|tc (auto: native XDP, then\n"
	       "generic XDP, then tc ingress; tc ingress at once\n"
	       "when another program holds the XDP slot, which\n"
	       "native and generic never replace)", .names = cli_mode_names),
	OPTION("policy", 'p', OPT_PATH, O(policy), "FILE",
	       "policy to apply (default: the one in force, else\n"
	       "/etc/imapguard/imapguard.conf, else built-in)"),
	OPTION("replace", 'r', OPT_FLAG, O(replace), NULL,
	       "re-attach atomically if already attached"),
	{}
};
#undef O

static const struct opts_cmd attach_cmd = {
	.name = "attach",
	.usage = "--iface IF [options]",
	.doc = "Load the fast path (once), pin it under the pin directory and attach it\n"
	       "to IF. Enforcement stays in place after this command exits.",
	.opts = attach_options,
};

int cmd_attach(int argc, char **argv)
{
	struct attach_opts o = { .mode = 0 /* auto */ };
	const char *iface, *file;
	struct ig_maps m;
	struct policy pol;
	int mode, used = 0, lock_fd, err;
	bool replace, fresh = false;

	if ((err = opts_parse(&attach_cmd, argc, argv, &o)))
		return opts_done(err);
	iface = o.iface, file = o.policy, mode = o.mode, replace = o.replace;
	if ((err = require_root()))
		return err;
	policy_init(&pol);
	if ((err = fastpath_prepare_dir(env.pin_dir)))
		goto out_pol;
	lock_fd = fastpath_lock(env.pin_dir);
	if (lock_fd < 0) {
		err = lock_fd;
		goto out_pol;
	}
	/* Decided once, under the lock: a concurrent detach --all cannot make
	 * us load the object with a policy we did not read. The policy is
	 * validated before anything is loaded or changed. */
	fresh = !fastpath_loaded(env.pin_dir);
	if (file || fresh) {
		policy_free(&pol);
		err = load_policy(file, NULL, true, &pol);
	}
	if (!err && fresh)
		err = fastpath_load(env.pin_dir, &pol);
	if (!err)
		err = fastpath_open_maps(env.pin_dir, &m);
	if (err) {
		if (fresh)	/* leave no empty pin directory behind */
			fastpath_unpin_all(env.pin_dir);
		goto out_lock;
	}
	/* Policy first: the program must never run with empty maps. */
	if (fresh || file)
		err = apply_or_warn(&m, &pol);
	if (!err)
		err = fastpath_attach(env.pin_dir, &m, iface, mode, replace, &used);
	if (!err)
		printf("attached to %s in %s mode%s\n", iface, mode_name(used),
		       mode == 0 ? " (auto)" : "");
	if (err && fresh && map_count(m.ifaces) == 0) {
		fastpath_close_maps(&m);
		fastpath_unpin_all(env.pin_dir);
		close(lock_fd);
		goto out_pol;
	}
	fastpath_close_maps(&m);
out_lock:
	close(lock_fd);
out_pol:
	policy_free(&pol);
	return err;
}

static unsigned int ifindex_by_name(struct ig_maps *m, const char *name)
{
	__u32 key, cur, *prev = NULL;
	struct ig_iface ifc;

	while (!bpf_map_get_next_key(m->ifaces, prev, &key)) {
		cur = key;
		prev = &cur;
		if (!bpf_map_lookup_elem(m->ifaces, &key, &ifc) && !strcmp(ifc.name, name))
			return key;
	}
	return 0;
}

static int detach_all(struct ig_maps *m)
{
	__u32 key, next, *prev = NULL;
	int err = 0, ret;

	while (!bpf_map_get_next_key(m->ifaces, prev, &next)) {
		key = next;
		ret = fastpath_detach(env.pin_dir, m, key);
		if (ret && !err)
			err = ret;
		prev = NULL;	/* the entry is gone: restart the walk */
	}
	return err;
}

struct detach_opts {
	const char *iface;
	bool all;
};

#define O(f) offsetof(struct detach_opts, f)
static const struct opt detach_options[] = {
	OPTION("iface", 'i', OPT_IFACE, O(iface), "IF", "interface to release"),
	OPTION("all", 'a', OPT_FLAG, O(all), NULL, "every attached interface"),
	{}
};
#undef O

static const struct opts_cmd detach_cmd = {
	.name = "detach",
	.usage = "--iface IF | --all",
	.doc = "Remove the fast path from IF (or all interfaces): only imapguard's own\n"
	       "XDP link or tc filter; other programs stay. When the last interface\n"
	       "goes, the pinned maps go too.",
	.opts = detach_options,
};

int cmd_detach(int argc, char **argv)
{
	struct detach_opts o = {};
	const char *iface;
	bool all;
	struct ig_maps m;
	int lock_fd, err;
	unsigned int ifindex;

	if ((err = opts_parse(&detach_cmd, argc, argv, &o)))
		return opts_done(err);
	iface = o.iface, all = o.all;
	if (!iface == !all) {
		pr_warn("detach: give exactly one of --iface IF or --all");
		return -EINVAL;
	}
	if ((err = require_root()))
		return err;
	lock_fd = open_state(&m);
	if (lock_fd < 0)
		return lock_fd;
	if (all) {
		err = detach_all(&m);
	} else {
		ifindex = if_nametoindex(iface);
		if (!ifindex)	/* the interface is gone: find its record by name */
			ifindex = ifindex_by_name(&m, iface);
		err = ifindex ? fastpath_detach(env.pin_dir, &m, ifindex) : -ENOENT;
		if (err == -ENOENT)
			pr_warn("Couldn't detach: not attached to iface '%s'", iface);
	}
	if (!err)
		printf("detached from %s\n", all ? "all interfaces" : iface);
	if (map_count(m.ifaces) == 0) {
		fastpath_close_maps(&m);
		if (fastpath_unpin_all(env.pin_dir))
			pr_warn("Couldn't remove every pin under '%s'", env.pin_dir);
	}
	close_state(&m, lock_fd);
	return err;
}

static const char *ctl_path = IG_DEFAULT_CTL_SOCK;

struct status_opts {
	bool json;
	const char *ctl_path;
};

#define O(f) offsetof(struct status_opts, f)
static const struct opt status_options[] = {
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "machine-readable output"),
	OPTION("control-socket", 'c', OPT_PATH, O(ctl_path), "PATH", "the daemon's socket (default "
	       IG_DEFAULT_CTL_SOCK ")"),
	{}
};
#undef O

static const struct opts_cmd status_cmd = {
	.name = "status",
	.usage = "[--json]",
	.doc = "Attached interfaces with mode and program id and the other XDP and tc\n"
	       "programs on each, protected ports and their actions, and every map's\n"
	       "entries and capacity.",
	.opts = status_options,
};

/* The daemon's one-line status answer, parsed: NULL if none came. */
static int keep_reply(void *ctx, const char *line)
{
	json_t **reply = ctx;
	json_error_t err;

	*reply = json_parse_object(line, strlen(line), &err);
	if (!*reply)
		pr_warn("status: the daemon's answer is not a JSON object: %s", err.text);
	return 1;
}

/* A field of the daemon's answer as text: strings whole (a long path is
 * not cut), numbers and booleans formatted into buf, "?" when absent. */
static const char *field_text(json_t *o, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(o, key);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.0f", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else
		return "?";
	return buf;
}

/* The daemon's status answer (NULL: none). Text form only; the JSON form
 * inserts the object whole. */
static void status_daemon_text(json_t *r)
{
	json_t *last = json_object_get(r, "last_reload");
	char a[32], b[32], c[32], e[32];

	if (!r) {
		printf("daemon: not running (no answer on %s)\n", ctl_path);
		return;
	}
	printf("daemon: running, pid %s, up %ss, policy %s (hash %s)\n",
	       field_text(r, "pid", a, sizeof(a)), field_text(r, "uptime_s", b, sizeof(b)),
	       field_text(r, "policy_file", c, sizeof(c)), field_text(r, "policy_hash", e, sizeof(e)));
	printf("  last reload: %s, %s\n", json_is_true(json_object_get(last, "ok")) ? "ok" : "FAILED",
	       field_text(last, "message", a, sizeof(a)));
	printf("  events seen %s, lost %s\n", field_text(r, "events_seen", a, sizeof(a)),
	       field_text(r, "events_lost", b, sizeof(b)));
	if ((last = json_object_get(r, "crowdsec"))) {
		printf("  crowdsec: %s decisions in force, %s ",
		       field_text(last, "decisions", b, sizeof(b)),
		       json_is_true(json_object_get(last, "connected")) ? "connected to" : "NOT connected to");
		/* LAPI's URL is the policy's; the error may quote LAPI's bytes. */
		print_clean(field_text(last, "lapi", a, sizeof(a)));
		if (json_string_length(json_object_get(last, "last_error"))) {
			printf(", last error: ");
			print_clean(field_text(last, "last_error", c, sizeof(c)));
		}
		printf("\n");
	}
	if ((last = json_object_get(r, "fleet")))
		printf("  fleet: node %s, Redis %s, %s, queue %s, stream lag %s ms\n",
		       field_text(last, "node", a, sizeof(a)), field_text(last, "redis", b, sizeof(b)),
		       json_is_true(json_object_get(last, "connected")) ? "connected" : "NOT connected",
		       field_text(last, "queue", c, sizeof(c)),
		       field_text(last, "stream_lag_ms", e, sizeof(e)));
}

static int keep_daemon_lines(void *ctx, const char *line)
{
	*(bool *)ctx = true;
	printf("%s\n", line);
	return 0;
}

/* m NULL: nothing is loaded, which the exposition says (imapguard_up 0). */
static int stats_prometheus(struct ig_maps *m)
{
	bool daemon = false;
	int err = 0;

	if (m)
		err = metrics_write(stdout, env.pin_dir, m);
	else
		metrics_write_up(stdout, false);

	/* Daemon-only metrics (auth log, reloads) come from the daemon. */
	if (!err && ctl_request(ctl_path, "metrics", 2000, keep_daemon_lines, &daemon) == 0 && daemon)
		return 0;
	prom_u64(stdout, "imapguard_daemon_up", "gauge", "The daemon is running.", 0);
	return err;
}

static void stats_table(const struct ig_counter *sum, const struct ig_counter *prev, double dt)
{
	if (prev)
		printf("%-16s %14s %14s %16s\n", "reason", "packets", "pkts/s", "bytes/s");
	else
		printf("%-16s %14s %16s\n", "reason", "packets", "bytes");
	for (int i = 0; i < IG_C_MAX; i++) {
		if (prev)
			printf("%-16s %14llu %14.1f %16.1f\n", reason_name(i),
			       (unsigned long long)sum[i].packets,
			       (sum[i].packets - prev[i].packets) / dt,
			       (sum[i].bytes - prev[i].bytes) / dt);
		else
			printf("%-16s %14llu %16llu\n", reason_name(i),
			       (unsigned long long)sum[i].packets, (unsigned long long)sum[i].bytes);
	}
}

static int stats_json(const struct ig_counter *sum)
{
	json_t *reasons = json_object();

	for (int i = 0; reasons && i < IG_C_MAX; i++)
		if (json_object_set_new(reasons, reason_name(i),
					json_pack("{s:I, s:I}", "packets", (json_int_t)sum[i].packets,
						  "bytes", (json_int_t)sum[i].bytes))) {
			json_decref(reasons);
			reasons = NULL;
		}
	return json_println(stdout, json_pack("{s:o}", "reasons", reasons));
}

/* --watch: rates computed between samples, redrawn like watch(1). */
static int stats_watch(struct ig_maps *m, double secs)
{
	struct ig_counter prev[IG_C_MAX], cur[IG_C_MAX];
	struct timespec ts = { (time_t)secs, (long)((secs - (time_t)secs) * 1e9) };
	int err = counters_read(m, prev);

	while (!err) {
		nanosleep(&ts, NULL);
		if ((err = counters_read(m, cur)))
			break;
		if (isatty(STDOUT_FILENO))
			printf("\033[H\033[2J");
		printf("imapguard stats, every %.1fs (Ctrl-C to stop)\n\n", secs);
		stats_table(cur, prev, secs);
		fflush(stdout);
		memcpy(prev, cur, sizeof(prev));
	}
	return err;
}

struct stats_opts {
	bool json, prom;
	double watch;		/* seconds; 0: once */
	const char *ctl_path;
};

#define O(f) offsetof(struct stats_opts, f)
static const struct opt stats_options[] = {
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "machine-readable output"),
	OPTION("prometheus", 'p', OPT_FLAG, O(prom), NULL,
	       "Prometheus text format (adds the daemon's metrics)"),
	OPTION("watch", 'w', OPT_DOUBLE, O(watch), "SECONDS",
	       "redraw every SECONDS with rates per second", .min = 0.1, .max = 3600),
	OPTION("control-socket", 'c', OPT_PATH, O(ctl_path), "PATH", "daemon socket (default "
	       IG_DEFAULT_CTL_SOCK ")"),
	{}
};
#undef O

static const struct opts_cmd stats_cmd = {
	.name = "stats",
	.usage = "[--json | --prometheus | --watch SECONDS]",
	.doc = "Packets and bytes per verdict reason, summed over CPUs.",
	.opts = stats_options,
};

int cmd_stats(int argc, char **argv)
{
	struct stats_opts o = { .ctl_path = IG_DEFAULT_CTL_SOCK };
	struct ig_counter sum[IG_C_MAX];
	bool json, prom;
	double watch;
	struct ig_maps m;
	int lock_fd, err;

	if ((err = opts_parse(&stats_cmd, argc, argv, &o)))
		return opts_done(err);
	json = o.json, prom = o.prom, watch = o.watch, ctl_path = o.ctl_path;
	if ((err = require_root()))
		return err;
	/* Nothing attached is a state to report, not an error: a scraper or a
	 * textfile collector gets a valid exposition with imapguard_up 0. */
	if (prom && !fastpath_loaded(env.pin_dir))
		return stats_prometheus(NULL);
	lock_fd = open_state(&m);
	if (lock_fd < 0)
		return lock_fd;
	/* Reading needs no lock: don't hold writers off while we watch. */
	close(lock_fd);
	if (prom)
		err = stats_prometheus(&m);
	else if (watch)
		err = stats_watch(&m, watch);
	else if (!(err = counters_read(&m, sum)) && json)
		err = stats_json(sum);
	else if (!err)
		stats_table(sum, NULL, 0);
	fastpath_close_maps(&m);
	return err;
}

/* Text, or with arr one object per interface appended to it. */
static int status_ifaces(struct ig_maps *m, json_t *arr)
{
	__u32 key, cur, *prev = NULL;
	struct ig_iface ifc;
	struct coexist_ours ours;
	char name[IF_NAMESIZE];
	json_t *o;
	bool gone;

	fastpath_our_ids(env.pin_dir, &ours);
	if (!arr)
		printf("interfaces:\n");
	while (!bpf_map_get_next_key(m->ifaces, prev, &key)) {
		cur = key;
		prev = &cur;
		if (bpf_map_lookup_elem(m->ifaces, &key, &ifc))
			continue;
		gone = !if_indextoname(key, name);
		if (arr) {
			o = json_pack("{s:o, s:I, s:s, s:I, s:b}",
				      "name", json_textn(ifc.name, strnlen(ifc.name, sizeof(ifc.name))),
				      "ifindex", (json_int_t)key, "mode", mode_name(ifc.mode),
				      "prog_id", (json_int_t)ifc.prog_id, "present", !gone);
			if (!o || json_array_append_new(arr, o))
				return -ENOMEM;
			if (!gone && !strcmp(name, ifc.name) &&
			    status_others(&ours, key, ifc.mode, o))
				return -ENOMEM;
		} else {
			printf("  %-16s ifindex %-4u %-8s prog id %u%s\n", ifc.name, key,
			       mode_name(ifc.mode), ifc.prog_id,
			       gone ? "  (interface gone)" : "");
			if (!gone && !strcmp(name, ifc.name))	/* not a reused ifindex */
				status_others(&ours, key, ifc.mode, NULL);
		}
	}
	return 0;
}

/* Text, or with arr one object per protected port appended to it. */
static int status_ports(struct ig_maps *m, const struct ig_cfg *cfg, json_t *arr)
{
	struct ig_port_cfg pc;

	if (!arr)
		printf("ports:\n");
	for (__u32 i = 0; i < cfg->nports && i < IG_MAX_PORTS; i++) {
		__u32 port = cfg->ports[i], key = IG_PORT_KEY(cfg->gen, port);

		if (!port || bpf_map_lookup_elem(m->ports, &key, &pc) || !pc.action)
			continue;
		bool st = pc.action == IG_ACT_STARTTLS;
		const char *mode = pc.starttls_mode == IG_ST_LOG ? "log" : "enforce";

		if (arr) {
			json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:I}",
					"port", (json_int_t)port, "action", action_name(pc.action),
					"access", pc.access == IG_ACCESS_GRANT ? "grant" : "open",
					"syn_rate_interval_ns", (json_int_t)pc.src_interval_ns,
					"subnet_rate_interval_ns", (json_int_t)pc.sub_interval_ns);

			if (o && st && json_object_set_new(o, "starttls_mode", json_string(mode)))
				o = (json_decref(o), NULL);
			if (json_array_append_new(arr, o))
				return -ENOMEM;
		} else {
			printf("  %-5u %-8s%s%s%s%s%s\n", port, action_name(pc.action),
			       st ? " " : "", st ? mode : "",
			       pc.access == IG_ACCESS_GRANT ? "  access grant" : "",
			       pc.src_interval_ns ? "  syn throttle" : "",
			       pc.sub_interval_ns ? "  subnet throttle" : "");
		}
	}
	return 0;
}

static const char *const shown_maps[] = { "allow", "deny", "bans", "banpfx", "throttle", "flows",
					   "grants" };
#define NSHOWN ((int)(sizeof(shown_maps) / sizeof(shown_maps[0])))

/* status --json: one object, the daemon's answer (or {"running": false})
 * inserted whole as "daemon". Takes the reference to reply. */
static int status_json(struct ig_maps *m, const struct ig_cfg *cfg, const int *fds,
		       const struct ig_census *c, json_t *reply)
{
	json_t *ifaces = json_array(), *ports = json_array(), *maps = json_object();
	char hash[17];
	int err = 0;

	if (!reply)
		reply = json_pack("{s:b}", "running", 0);
	for (int i = 0; maps && i < NSHOWN; i++)
		if (json_object_set_new(maps, shown_maps[i], json_pack("{s:I, s:I}",
				"entries", (json_int_t)census_entries(c, m, fds[i]),
				"capacity", (json_int_t)map_capacity(fds[i])))) {
			json_decref(maps);
			maps = NULL;
		}
	if (!ifaces || !ports || status_ifaces(m, ifaces) || status_ports(m, cfg, ports))
		err = -ENOMEM;
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)cfg->policy_hash);
	if (err) {
		json_decref(ifaces);
		json_decref(ports);
		json_decref(maps);
		json_decref(reply);
		return err;
	}
	return json_println(stdout, json_pack("{s:o, s:s, s:s, s:o, s:o, s:o, s:o}",
		"pin_dir", json_text(env.pin_dir), "policy_hash", hash,
		"ban_scope", cfg->ban_scope == IG_SCOPE_ALL ? "all" : "protected",
		"interfaces", ifaces, "ports", ports, "maps", maps, "daemon", reply));
}

int cmd_status(int argc, char **argv)
{
	struct ig_cfg cfg = {};
	struct status_opts o = { .ctl_path = IG_DEFAULT_CTL_SOCK };
	struct ig_census census, *c = NULL;
	struct ig_maps m;
	json_t *reply = NULL;
	bool json;
	int lock_fd, err, fds[NSHOWN];
	__u32 zero = 0;

	if ((err = opts_parse(&status_cmd, argc, argv, &o)))
		return opts_done(err);
	json = o.json, ctl_path = o.ctl_path;
	if ((err = require_root()))
		return err;
	lock_fd = open_state(&m);
	if (lock_fd < 0)
		return lock_fd;
	/* Reading needs no lock, and the daemon may need it while we wait
	 * for its answer below. */
	close(lock_fd);
	lock_fd = -1;
	bpf_map_lookup_elem(m.cfg, &zero, &cfg);
	fds[0] = m.allow, fds[1] = m.deny, fds[2] = m.bans, fds[3] = m.banpfx, fds[4] = m.throttle;
	fds[5] = m.flows;
	fds[6] = m.grants;
	if (!fastpath_census(env.pin_dir, &census))
		c = &census;
	ctl_request(ctl_path, "status", 2000, keep_reply, &reply);
	if (json) {
		err = status_json(&m, &cfg, fds, c, reply);
	} else {
		printf("pin dir: %s\npolicy hash: %016llx\nban scope: %s\n", env.pin_dir,
		       (unsigned long long)cfg.policy_hash,
		       cfg.ban_scope == IG_SCOPE_ALL ? "all" : "protected");
		status_ifaces(&m, NULL);
		status_ports(&m, &cfg, NULL);
		printf("maps:\n");
		for (int i = 0; i < NSHOWN; i++)
			printf("  %-10s %8ld / %u\n", shown_maps[i], census_entries(c, &m, fds[i]),
			       map_capacity(fds[i]));
		status_daemon_text(reply);
		json_decref(reply);
	}
	close_state(&m, lock_fd);
	return err;
}
