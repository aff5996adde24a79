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
#include "audit/audit.h"
#include "cli/cli.h"
#include "daemon/ctl.h"
#include "fastpath/lists.h"
#include "fastpath/metrics.h"
#include "base/log.h"
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
	       "generic XDP, then tc ingress)", .names = cli_mode_names),
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
	.doc = "Remove the fast path from IF (or all interfaces). When the last\n"
	       "interface goes, the pinned maps go too.",
	.opts = detach_options,
};

int cmd_detach(int argc, char **argv)
{
	struct detach_opts o = {};
	const char *iface;
	bool all;
	struct ig_maps m;
	int lock_fd, err;
	unsigned int ifindex = 0;

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
	.doc = "Attached interfaces with mode and program id, protected ports and their\n"
	       "actions, and every map's entries and capacity.",
	.opts = status_options,
};

struct daemon_reply {
	char line[8192];
	bool got;
};

static int keep_line(void *ctx, const char *line)
{
	struct daemon_reply *r = ctx;

	snprintf(r->line, sizeof(r->line), "%s", line);
	r->got = true;
	return 1;
}

/* Pick a number or string field out of the daemon's one-line JSON. */
static const char *jfield(const char *json, const char *key, char out[256])
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (!p)
		return "?";
	p += strlen(pat);
	if (*p == '"')
		sscanf(p + 1, "%255[^\"]", out);
	else
		sscanf(p, "%255[^,}]", out);
	return out;
}

static void status_daemon(bool json)
{
	struct daemon_reply r = {};
	char a[256], b[256], c[256], e[256], f[256];

	ctl_request(ctl_path, "status", 2000, keep_line, &r);
	if (json) {
		printf(",\"daemon\":%s", r.got ? r.line : "{\"running\":false}");
		return;
	}
	if (!r.got) {
		printf("daemon: not running (no answer on %s)\n", ctl_path);
		return;
	}
	printf("daemon: running, pid %s, up %ss, policy %s (hash %s)\n", jfield(r.line, "pid", a),
	       jfield(r.line, "uptime_s", b), jfield(r.line, "policy_file", c),
	       jfield(r.line, "policy_hash", e));
	printf("  last reload: %s, %s\n", strstr(r.line, "\"last_reload\":{\"ok\":true") ? "ok" : "FAILED",
	       jfield(r.line, "message", f));
	printf("  events seen %s, lost %s\n", jfield(r.line, "events_seen", a),
	       jfield(r.line, "events_lost", b));
}


static int keep_daemon_lines(void *ctx, const char *line)
{
	*(bool *)ctx = true;
	printf("%s\n", line);
	return 0;
}

static int stats_prometheus(struct ig_maps *m)
{
	bool daemon = false;
	int err = metrics_write(stdout, m);

	/* Daemon-only metrics (auth log, reloads) come from the daemon. */
	if (!err && ctl_request(ctl_path, "metrics", 2000, keep_daemon_lines, &daemon) == 0 && daemon)
		return 0;
	printf("# HELP imapguard_daemon_up The daemon is running.\n"
	       "# TYPE imapguard_daemon_up gauge\nimapguard_daemon_up 0\n");
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

static void stats_json(const struct ig_counter *sum)
{
	printf("{\"reasons\":{");
	for (int i = 0; i < IG_C_MAX; i++)
		printf("%s\"%s\":{\"packets\":%llu,\"bytes\":%llu}", i ? "," : "", reason_name(i),
		       (unsigned long long)sum[i].packets, (unsigned long long)sum[i].bytes);
	printf("}}\n");
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
	lock_fd = open_state(&m);
	if (lock_fd < 0)
		return lock_fd;
	/* Reading needs no lock: don't hold writers off while we watch. */
	close(lock_fd);
	if (prom)
		err = stats_prometheus(&m);
	else if (watch)
		err = stats_watch(&m, watch);
	else if (!(err = counters_read(&m, sum)))
		json ? stats_json(sum) : stats_table(sum, NULL, 0);
	fastpath_close_maps(&m);
	return err;
}

static void status_ifaces(struct ig_maps *m, bool json)
{
	__u32 key, cur, *prev = NULL;
	struct ig_iface ifc;
	char name[IF_NAMESIZE];
	bool gone;
	int n = 0;

	if (!json)
		printf("interfaces:\n");
	while (!bpf_map_get_next_key(m->ifaces, prev, &key)) {
		cur = key;
		prev = &cur;
		if (bpf_map_lookup_elem(m->ifaces, &key, &ifc))
			continue;
		gone = !if_indextoname(key, name);
		if (json) {
			printf("%s{\"name\":", n++ ? "," : "");
			json_str(stdout, ifc.name);
			printf(",\"ifindex\":%u,\"mode\":\"%s\",\"prog_id\":%u,\"present\":%s}",
			       key, mode_name(ifc.mode), ifc.prog_id, gone ? "false" : "true");
		} else {
			printf("  %-16s ifindex %-4u %-8s prog id %u%s\n", ifc.name, key,
			       mode_name(ifc.mode), ifc.prog_id,
			       gone ? "  (interface gone)" : "");
		}
	}
}

static void status_ports(struct ig_maps *m, const struct ig_cfg *cfg, bool json)
{
	struct ig_port_cfg pc;
	int n = 0;

	if (!json)
		printf("ports:\n");
	for (__u32 i = 0; i < cfg->nports && i < IG_MAX_PORTS; i++) {
		__u32 port = cfg->ports[i];

		if (!port || bpf_map_lookup_elem(m->ports, &port, &pc) || !pc.action)
			continue;
		if (json)
			printf("%s{\"port\":%u,\"action\":\"%s\",\"syn_rate_interval_ns\":%llu,"
			       "\"subnet_rate_interval_ns\":%llu}", n++ ? "," : "", port,
			       action_name(pc.action), (unsigned long long)pc.src_interval_ns,
			       (unsigned long long)pc.sub_interval_ns);
		else
			printf("  %-5u %-8s%s%s\n", port, action_name(pc.action),
			       pc.src_interval_ns ? "  syn throttle" : "",
			       pc.sub_interval_ns ? "  subnet throttle" : "");
	}
}

int cmd_status(int argc, char **argv)
{
	static const char *const shown[] = { "allow", "deny", "bans", "banpfx", "throttle" };
	struct ig_cfg cfg = {};
	struct status_opts o = { .ctl_path = IG_DEFAULT_CTL_SOCK };
	struct ig_maps m;
	bool json;
	int lock_fd, err, fds[5];
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
	if (json) {
		printf("{\"pin_dir\":");
		json_str(stdout, env.pin_dir);
		printf(",\"policy_hash\":\"%016llx\",\"ban_scope\":\"%s\",\"interfaces\":[",
		       (unsigned long long)cfg.policy_hash,
		       cfg.ban_scope == IG_SCOPE_ALL ? "all" : "protected");
		status_ifaces(&m, true);
		printf("],\"ports\":[");
		status_ports(&m, &cfg, true);
		printf("],\"maps\":{");
		for (int i = 0; i < 5; i++)
			printf("%s\"%s\":{\"entries\":%ld,\"capacity\":%u}", i ? "," : "", shown[i],
			       map_count(fds[i]), map_capacity(fds[i]));
		printf("}");
		status_daemon(true);
		printf("}\n");
	} else {
		printf("pin dir: %s\npolicy hash: %016llx\nban scope: %s\n", env.pin_dir,
		       (unsigned long long)cfg.policy_hash,
		       cfg.ban_scope == IG_SCOPE_ALL ? "all" : "protected");
		status_ifaces(&m, false);
		status_ports(&m, &cfg, false);
		printf("maps:\n");
		for (int i = 0; i < 5; i++)
			printf("  %-10s %8ld / %u\n", shown[i], map_count(fds[i]), map_capacity(fds[i]));
		status_daemon(false);
	}
	close_state(&m, lock_fd);
	return 0;
}
