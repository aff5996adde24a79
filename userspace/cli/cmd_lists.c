// SPDX-License-Identifier: GPL-2.0
/* ban, allow and deny commands: direct edits of the pinned maps. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "cli/cli.h"
#include "fastpath/lists.h"
#include "base/json.h"
#include "base/log.h"
#include "daemon/ctl.h"
#include "policy/policy.h"

/* No --ttl: the policy's ban_ttl. No duration parses to it (whole ms). */
#define TTL_POLICY UINT64_MAX

struct list_opts {
	bool json;
	bool have_ttl;
	uint64_t ttl_ns;
	const char *reason;
	const char *ctl_path;	/* ban: the daemon that shares it with the fleet */
	const char *arg[1];	/* ADDR|CIDR of add and del */
	int nargs;
};

static const struct cmd list_subs[] = {
	{ "add", NULL, "ADDR|CIDR", "add to the list (applies to every protected port)" },
	{ "del", NULL, "ADDR|CIDR", "remove (an entry from the policy file returns on\n"
	  "the next 'policy apply')" },
	{ "list", NULL, "[--json]", "the entries and who added them" },
	{}
};

static const struct cmd ban_subs[] = {
	{ "add", NULL, "ADDR|CIDR [--ttl DURATION] [--reason TEXT]",
	  "ban (default TTL from the policy's ban_ttl;\n--ttl 0 = permanent)" },
	{ "del", NULL, "ADDR|CIDR", "lift a ban" },
	{ "list", NULL, "[--json]", "address, time left, packets dropped, origin, reason" },
	{}
};

#define O(f) offsetof(struct list_opts, f)
#define ADDR_ARG ARG(OPT_STR, O(arg), "ADDR|CIDR", .max = 1, .count_off = O(nargs))
static const struct opt list_options[] = {
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "list as JSON"),
	ADDR_ARG, {}
};

static const struct opt ban_options[] = {
	OPTION("ttl", 't', OPT_DURATION, O(ttl_ns), "DURATION",
	       "e.g. 90s, 10m, 1h30m, 7d; 0 = permanent"),
	OPTION("reason", 'r', OPT_STR, O(reason), "TEXT", "stored with the ban (39 bytes)"),
	OPTION("control-socket", 'c', OPT_PATH, O(ctl_path), "PATH",
	       "the daemon told to share the change with the fleet (default "
	       IG_DEFAULT_CTL_SOCK ")"),
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "list as JSON"),
	ADDR_ARG, {}
};
#undef ADDR_ARG
#undef O

static const struct opts_cmd ban_cmd = {
	.name = "ban",
	.usage = "add|del ADDR|CIDR | list [--json]",
	.doc = "Bans in the pinned maps. An expired ban stops dropping on its own, with or\n"
	       "without a daemon.",
	.opts = ban_options,
	.subs = ban_subs,
};
static const struct opts_cmd allow_cmd = {
	.name = "allow",
	.usage = "add|del ADDR|CIDR | list [--json]",
	.doc = "The allow list in the pinned maps.",
	.opts = list_options,
	.subs = list_subs,
};
static const struct opts_cmd deny_cmd = {
	.name = "deny",
	.usage = "add|del ADDR|CIDR | list [--json]",
	.doc = "The deny list in the pinned maps.",
	.opts = list_options,
	.subs = list_subs,
};

static int get_prefix(const struct list_opts *o, struct ig_prefix *p)
{
	if (o->nargs != 1) {
		pr_warn("expected one ADDR or CIDR");
		return -EINVAL;
	}
	if (addr_parse(o->arg[0], p, false)) {
		pr_warn("invalid address or CIDR '%s' (host bits must be zero)", o->arg[0]);
		return -EINVAL;
	}
	return 0;
}

/* One ban: a line of text, or with arr an object appended to it. */
static int print_ban(const struct ban_info *b, uint64_t now, json_t *arr)
{
	char a[ADDR_STRLEN], left[32] = "permanent";
	bool expired = b->val.expires_ns && b->val.expires_ns <= now;

	if (b->val.expires_ns && !expired)
		fmt_duration(b->val.expires_ns - now, left, sizeof(left));
	else if (expired)
		snprintf(left, sizeof(left), "expired");
	addr_format(&b->pfx, a);
	if (arr)
		/* The reason is anyone's --reason text, cut at its size. */
		return json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:o, s:b, s:b, s:I, s:I}",
			"addr", a, "origin", origin_name(b->val.origin), "reason",
			json_textn(b->val.reason, strnlen(b->val.reason, sizeof(b->val.reason))),
			"expires_in_s", json_fixed(b->val.expires_ns && !expired ?
						   (b->val.expires_ns - now) / 1e9 : 0, 1),
			"permanent", !b->val.expires_ns, "expired", expired,
			"created", (json_int_t)b->val.created,
			"packets", (json_int_t)b->val.packets)) ? -ENOMEM : 0;
	printf("%-40s %-12s %12llu  %-8s  %s\n", a, left,
	       (unsigned long long)b->val.packets, origin_name(b->val.origin), b->val.reason);
	return 0;
}

static int ban_list_cmd(struct ig_maps *m, bool json)
{
	uint64_t now = mono_ns();
	struct ban_info *v;
	json_t *arr = NULL;
	size_t n;
	int err = ban_list(m, &v, &n);

	if (err)
		return err;
	if (json && !(arr = json_array()))
		err = -ENOMEM;
	else if (!json)
		printf("%-40s %-12s %12s  %-8s  %s\n", "address", "time left", "packets", "origin",
		       "reason");
	for (size_t i = 0; !err && i < n; i++)
		err = print_ban(&v[i], now, arr);
	if (!err && json)
		err = json_println(stdout, json_incref(arr));
	json_decref(arr);
	free(v);
	return err;
}

static int list_list_cmd(struct ig_maps *m, enum ig_list l, bool json)
{
	struct list_entry *v;
	char a[ADDR_STRLEN];
	json_t *arr = NULL;
	size_t n;
	int err;

	err = list_entries(m, l, &v, &n);
	if (err) {
		pr_warn("Couldn't read the %s list: %s", l == LIST_ALLOW ? "allow" : "deny",
			strerror(-err));
		return err;
	}
	if (json && !(arr = json_array()))
		err = -ENOMEM;
	for (size_t i = 0; !err && i < n; i++) {
		uint8_t origin = v[i].origin;

		addr_format(&v[i].pfx, a);
		if (json)
			err = json_array_append_new(arr, json_pack("{s:s, s:b, s:b, s:b}", "cidr", a,
					"policy", !!(origin & IG_ORIGIN_POLICY),
					"cli", !!(origin & IG_ORIGIN_CLI),
					"daemon", !!(origin & IG_ORIGIN_DAEMON))) ? -ENOMEM : 0;
		else
			printf("%-44s %s%s%s\n", a, origin & IG_ORIGIN_POLICY ? "policy " : "",
			       origin & IG_ORIGIN_CLI ? "cli " : "",
			       origin & IG_ORIGIN_DAEMON ? "daemon" : "");
	}
	if (!err && json)
		err = json_println(stdout, json_incref(arr));
	json_decref(arr);
	free(v);
	return err;
}

static int share_reply(void *ctx, const char *line)
{
	(void)ctx;
	(void)line;
	return 1;
}

/* A running daemon with a [fleet] publishes the change (ctl "share"): the
 * maps are written already, so no daemon, or no fleet, changes nothing. */
static void tell_daemon(const char *path, const struct ig_prefix *p)
{
	char req[16 + ADDR_STRLEN], a[ADDR_STRLEN];

	snprintf(req, sizeof(req), "share %s", addr_format(p, a));
	if (ctl_request(path ? path : IG_DEFAULT_CTL_SOCK, req, 2000, share_reply, NULL) == -ETIMEDOUT)
		pr_warn("the daemon did not answer: the fleet may not see this change");
}

static int do_edit(const char *what, const char *sub, struct ig_maps *m,
		   const struct ig_prefix *p, const struct list_opts *o)
{
	enum ig_list l = !strcmp(what, "allow") ? LIST_ALLOW : LIST_DENY;
	char a[ADDR_STRLEN];
	bool was_policy = false;
	int err;

	addr_format(p, a);
	if (!strcmp(what, "ban")) {
		struct ig_cfg cfg = {};
		__u32 zero = 0;

		bpf_map_lookup_elem(m->cfg, &zero, &cfg);
		if (!strcmp(sub, "add"))
			err = ban_add_from(m, p, o->have_ttl ? o->ttl_ns : cfg.ban_ttl_ns,
					   o->reason ? o->reason : "manual", IG_ORIGIN_CLI);
		else
			err = ban_del(m, p);
	} else if (!strcmp(sub, "add")) {
		err = list_add(m, l, p, IG_ORIGIN_CLI);
	} else {
		err = list_del(m, l, p, &was_policy);
	}
	if (err == -E2BIG)
		pr_warn("Couldn't %s %s: %s map is full (raise its capacity in [limits])",
			sub, a, what);
	else if (err == -ENOENT)
		pr_warn("Couldn't %s %s: no such entry", sub, a);
	else if (err == -ERANGE)
		pr_warn("Couldn't %s %s: a ban lasts at most 365d (--ttl 0 is permanent)", sub, a);
	else if (err)
		pr_warn("Couldn't %s %s: %s", sub, a, strerror(-err));
	else
		printf("%s %s %s\n", what, sub, a);
	if (!err && was_policy)
		pr_info("note: %s came from the policy file and returns on the next 'policy apply'", a);
	return err;
}

static int list_cmd(const struct opts_cmd *c, int argc, char **argv)
{
	struct list_opts o = { .ttl_ns = TTL_POLICY };
	const char *what = c->name, *sub;
	const struct cmd *s;
	struct ig_prefix p;
	struct ig_maps m;
	int lock_fd, err, i;

	/* Options may come before and after the subcommand. */
	if ((err = opts_sub(c, argc, argv, &o, &s, &i)) ||
	    (err = opts_parse(c, argc - i, argv + i, &o)))
		return opts_done(err);
	sub = s->name;
	o.have_ttl = o.ttl_ns != TTL_POLICY;
	if (strcmp(sub, "list") && (err = get_prefix(&o, &p)))
		return err;
	if (!strcmp(sub, "list") && o.nargs) {
		pr_warn("%s list: unexpected argument '%s'", what, o.arg[0]);
		return -EINVAL;
	}
	if ((err = require_root()))
		return err;
	lock_fd = open_state(&m);
	if (lock_fd < 0)
		return lock_fd;
	if (!strcmp(sub, "list")) {	/* reading: don't hold writers off */
		close(lock_fd);
		lock_fd = -1;
		err = !strcmp(what, "ban") ? ban_list_cmd(&m, o.json) :
		      list_list_cmd(&m, !strcmp(what, "allow") ? LIST_ALLOW : LIST_DENY, o.json);
	} else {
		err = do_edit(what, sub, &m, &p, &o);
	}
	close_state(&m, lock_fd);
	/* After the lock is released: the daemon may need it to answer. */
	if (!err && !strcmp(what, "ban") && strcmp(sub, "list"))
		tell_daemon(o.ctl_path, &p);
	return err;
}

int cmd_ban(int argc, char **argv) { return list_cmd(&ban_cmd, argc, argv); }
int cmd_allow(int argc, char **argv) { return list_cmd(&allow_cmd, argc, argv); }
int cmd_deny(int argc, char **argv) { return list_cmd(&deny_cmd, argc, argv); }
