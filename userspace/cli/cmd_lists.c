// SPDX-License-Identifier: GPL-2.0
/* ban, allow and deny commands: direct edits of the pinned maps. */
#include <errno.h>
#include <getopt.h>
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
#include "policy/policy.h"

struct list_opts {
	bool json;
	bool have_ttl;
	uint64_t ttl_ns;
	const char *reason;
};

static const char *list_help(const char *what)
{
	return !strcmp(what, "ban") ?
	       "add ADDR|CIDR [--ttl DURATION] [--reason TEXT]: ban (default TTL from the\n"
	       "  policy's ban_ttl; --ttl 0 = permanent). An expired ban stops dropping\n"
	       "  on its own, with or without a daemon.\n"
	       "del ADDR|CIDR: lift a ban.\n"
	       "list [--json]: address, reason, time left, packets dropped." :
	       "add ADDR|CIDR: add to the list (applies to every protected port).\n"
	       "del ADDR|CIDR: remove (an entry from the policy file returns on the\n"
	       "  next 'policy apply').\n"
	       "list [--json]: the entries and who added them.";
}

static int parse_list_opts(int argc, char **argv, const char *what, struct list_opts *o)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "ttl", required_argument, NULL, 't' },
		{ "reason", required_argument, NULL, 'r' },
		COMMON_LONGOPTS, {}
	};
	bool is_ban = !strcmp(what, "ban");
	int opt, c;

	while ((opt = getopt_long(argc, argv, "jt:r:P:vh", opts, NULL)) != -1) {
		if ((c = common_opt(opt)) < 0) {
			usage_cmd(what, "add|del ADDR|CIDR | list [--json]", list_help(what),
				  is_ban ? "  -t, --ttl DURATION  e.g. 90s, 10m, 1h30m, 7d; 0 = permanent\n"
					   "  -r, --reason TEXT   stored with the ban (39 bytes)\n"
					   "  -j, --json          list as JSON\n" :
					   "  -j, --json          list as JSON\n");
			return 1;
		} else if (c) {
			continue;
		}
		switch (opt) {
		case 'j':
			o->json = true;
			break;
		case 't':
			if (!is_ban || parse_duration_ns(optarg, &o->ttl_ns)) {
				pr_warn("invalid --ttl '%s' (e.g. 30s, 10m, 2h, 7d, 0)", optarg);
				return -EINVAL;
			}
			o->have_ttl = true;
			break;
		case 'r':
			if (!is_ban)
				return -EINVAL;
			o->reason = optarg;
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

static int get_prefix(int argc, char **argv, struct ig_prefix *p)
{
	if (optind + 1 != argc) {
		pr_warn("expected one ADDR or CIDR");
		return -EINVAL;
	}
	if (addr_parse(argv[optind], p, false)) {
		pr_warn("invalid address or CIDR '%s' (host bits must be zero)", argv[optind]);
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
		return json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:b, s:b, s:I, s:I}",
			"addr", a, "reason",
			json_textn(b->val.reason, strnlen(b->val.reason, sizeof(b->val.reason))),
			"expires_in_s", json_fixed(b->val.expires_ns && !expired ?
						   (b->val.expires_ns - now) / 1e9 : 0, 1),
			"permanent", !b->val.expires_ns, "expired", expired,
			"created", (json_int_t)b->val.created,
			"packets", (json_int_t)b->val.packets)) ? -ENOMEM : 0;
	printf("%-40s %-12s %12llu  %s\n", a, left,
	       (unsigned long long)b->val.packets, b->val.reason);
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
		printf("%-40s %-12s %12s  %s\n", "address", "time left", "packets", "reason");
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
			err = ban_add(m, p, o->have_ttl ? o->ttl_ns : cfg.ban_ttl_ns,
				      o->reason ? o->reason : "manual");
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

static int list_cmd(int argc, char **argv, const char *what)
{
	struct list_opts o = {};
	struct ig_prefix p;
	struct ig_maps m;
	const char *sub;
	int lock_fd, err;

	if (argc < 2 || argv[1][0] == '-') {
		err = parse_list_opts(argc, argv, what, &o);
		if (err == 1)
			return 0;
		pr_warn("usage: %s %s add|del ADDR|CIDR | list (see --help)", env.prog, what);
		return -EINVAL;
	}
	sub = argv[1];
	argc--, argv++;
	err = parse_list_opts(argc, argv, what, &o);
	if (err)
		return err < 0 ? err : 0;
	if (strcmp(sub, "add") && strcmp(sub, "del") && strcmp(sub, "list")) {
		pr_warn("unknown '%s %s' (add|del|list)", what, sub);
		return -EINVAL;
	}
	if (strcmp(sub, "list") && (err = get_prefix(argc, argv, &p)))
		return err;
	if ((err = require_root()))
		return err;
	lock_fd = open_state(&m);
	if (lock_fd < 0)
		return lock_fd;
	if (!strcmp(sub, "list")) {	/* reading: don't hold writers off */
		close(lock_fd);
		lock_fd = -1;
	}
	if (!strcmp(sub, "list"))
		err = !strcmp(what, "ban") ? ban_list_cmd(&m, o.json) :
		      list_list_cmd(&m, !strcmp(what, "allow") ? LIST_ALLOW : LIST_DENY, o.json);
	else
		err = do_edit(what, sub, &m, &p, &o);
	close_state(&m, lock_fd);
	return err;
}

int cmd_ban(int argc, char **argv) { return list_cmd(argc, argv, "ban"); }
int cmd_allow(int argc, char **argv) { return list_cmd(argc, argv, "allow"); }
int cmd_deny(int argc, char **argv) { return list_cmd(argc, argv, "deny"); }
