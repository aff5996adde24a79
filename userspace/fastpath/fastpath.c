// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <zlib.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "fastpath/fastpath.h"	/* common.h first: the skeleton embeds struct ig_cfg */
#include "imapguard.skel.h"
#include "fastpath/coexist.h"
#include "fastpath/lists.h"
#include "base/log.h"
#include "policy/policy.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/*
 * HZ lets BPF sample events on jiffies, one load, instead of a clock helper
 * call. The kernel does not publish it anywhere else; libbpf reads these same
 * two files for __kconfig externs. gzread reads plain files too.
 */
unsigned int kernel_hz(void)
{
	static unsigned int hz;
	static bool done;
	char path[128], line[256];
	struct utsname u;

	if (done)
		return hz;
	done = true;
	snprintf(path, sizeof(path), "/boot/config-%s", uname(&u) ? "" : u.release);
	for (int i = 0; i < 2 && !hz; i++) {
		gzFile f = gzopen(i ? "/proc/config.gz" : path, "r");

		while (f && !hz && gzgets(f, line, sizeof(line)))
			sscanf(line, "CONFIG_HZ=%u", &hz);	/* no match leaves hz 0 */
		if (f)
			gzclose(f);
	}
	if (!hz)
		pr_debug("kernel HZ unknown (no kernel config): events sampled on coarse ns");
	return hz;
}

const char *const ig_map_names[IG_NMAPS] = {
	"ig_ports", "ig_cfg", "ig_allow", "ig_deny", "ig_lpmsum", "ig_bans", "ig_banpfx",
	"ig_throttle", "ig_counters", "ig_events", "ig_sample", "ig_ifaces", "ig_flows", "ig_bansum",
	"ig_grants",
};

/* The programs, each loaded and pinned the first time it is needed. */
enum prog { PROG_XDP, PROG_TC, PROG_CENSUS, NPROGS };
static const char *const prog_names[NPROGS] = { "ig_xdp", "ig_tc", "ig_census" };
static const char *const prog_pins[NPROGS] = { "prog_xdp", "prog_tc", "prog_census" };

static enum prog prog_of_mode(int mode)
{
	return mode == IG_MODE_TC ? PROG_TC : PROG_XDP;
}

/* Key and value sizes of each map, in struct ig_maps order, and the
 * entries where the layout fixes them (0: not checked): adopted
 * pins must have this layout (an older imapguard may have left others,
 * e.g. one port table where the ports now come in generations). */
static const struct { __u32 key, value, entries; } map_sizes[IG_NMAPS] = {
	{ 4, sizeof(struct ig_port_cfg), IG_PORT_GENS * 65536 },
	{ 4, sizeof(struct ig_cfg), 1 },
	{ sizeof(struct ig_lpm_key), sizeof(struct ig_allow_val), 0 },
	{ sizeof(struct ig_lpm_key), sizeof(struct ig_deny_val), 0 },
	{ 4, sizeof(struct ig_lpmsum), 0 },
	{ sizeof(struct ig_ban_key), sizeof(struct ig_ban_val), 0 },
	{ sizeof(struct ig_lpm_key), sizeof(struct ig_ban_val), 0 },
	{ sizeof(struct ig_thr_key), sizeof(struct ig_thr_val), 0 },
	{ 4, sizeof(struct ig_counter), 0 },
	{ 0, 0, 0 },	/* ring buffer */
	{ 4, 8, 0 },
	{ 4, sizeof(struct ig_iface), 0 },
	{ sizeof(struct ig_flow_key), sizeof(struct ig_flow), 0 },
	{ 4, sizeof(struct ig_bansum), IG_BANSUM_LINES },
	{ sizeof(struct ig_ban_key), sizeof(struct ig_grant_val), 0 },
};

/* Name of map i in the BPF object: ig_cfg is the .data.ig_cfg section. */
static const char *obj_name(int i)
{
	return strcmp(ig_map_names[i], "ig_cfg") ? ig_map_names[i] : IG_CFG_SECTION;
}

static void pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static bool private_mount_ns(void)
{
	struct stat self, init;

	/* Can't tell (no /proc, no CAP_SYS_PTRACE): assume private, fail safe. */
	if (stat("/proc/self/ns/mnt", &self) || stat("/proc/1/ns/mnt", &init))
		return true;
	return self.st_ino != init.st_ino || self.st_dev != init.st_dev;
}

int fastpath_prepare_dir(const char *dir)
{
	struct statfs st;
	char parent[PATH_MAX], *slash;
	int err;

	/* Most hosts mount bpffs; minimal ones do not. But a private mount
	 * namespace (ip netns exec remounts /sys) would get a private bpffs
	 * whose pins, and so enforcement, vanish when we exit. */
	if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type != BPF_FS_MAGIC &&
	    !strncmp(dir, "/sys/fs/bpf/", 12)) {
		if (private_mount_ns()) {
			pr_warn("bpffs is not mounted in this mount namespace (under 'ip netns exec'?): "
				"pins made here would vanish; use 'nsenter --net=/run/netns/NAME' instead");
			return -ENOTSUP;
		}
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
			err = -errno;
			pr_warn("Couldn't mount bpffs on /sys/fs/bpf: %s", strerror(-err));
			return err;
		}
		pr_info("mounted bpffs on /sys/fs/bpf");
	}
	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (statfs(parent, &st) || st.f_type != BPF_FS_MAGIC) {
		pr_warn("Pin directory '%s' is not on a bpf filesystem", dir);
		return -ENOTSUP;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		pr_warn("Couldn't create pin directory '%s': %s", dir, strerror(-err));
		return err;
	}
	return 0;
}

int fastpath_lock(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err;

	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			pr_warn("imapguard is not attached (no pin directory '%s')", dir);
		else
			pr_warn("Couldn't open pin directory '%s': %s", dir, strerror(-err));
		return err;
	}
	/* Serialises the CLI, the daemon and concurrent CLIs on this state. */
	if (flock(fd, LOCK_EX)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

bool fastpath_loaded(const char *dir)
{
	char path[PATH_MAX];

	pin_path(path, sizeof(path), dir, ig_map_names[0]);
	return access(path, F_OK) == 0;
}

/* A map's pin name: bpffs reserves names with dots, and of the internal
 * maps only the run-time knobs and the globals (.bss: the admission
 * filter) are shared; .rodata is the same in every copy. NULL: not pinned. */
const char *fastpath_pin_name(const struct bpf_map *map)
{
	const char *name = bpf_map__name(map), *dot = strrchr(name, '.');

	if (!strcmp(name, IG_CFG_SECTION))
		return "ig_cfg";
	if (!bpf_map__is_internal(map))
		return name;
	return dot && !strcmp(dot, ".bss") ? "ig_bss" : NULL;
}

void fastpath_set_capacities(struct imapguard_bpf *skel, const struct policy *pol)
{
	/* ig_bans also holds the deny list's hosts: room for both. */
	bpf_map__set_max_entries(skel->maps.ig_bans, pol->max_bans + pol->max_deny);
	bpf_map__set_max_entries(skel->maps.ig_throttle, pol->max_sources);
	bpf_map__set_max_entries(skel->maps.ig_deny, pol->max_deny);
	bpf_map__set_max_entries(skel->maps.ig_allow, pol->max_allow);
	bpf_map__set_max_entries(skel->maps.ig_flows, pol->max_flows);
	bpf_map__set_max_entries(skel->maps.ig_grants, pol->max_grants);
}

/*
 * The maps only: each program is loaded the first time an interface needs
 * it (load_prog), so a fresh attach verifies one program, not two, and the
 * verifier is most of the attach time.
 */
int fastpath_load(const char *dir, const struct policy *pol)
{
	struct imapguard_bpf *skel;
	struct bpf_program *prog;
	struct bpf_map *map;
	char path[PATH_MAX];
	int err;

	skel = imapguard_bpf__open();
	if (!skel) {
		err = -errno;
		pr_warn("Couldn't open BPF object: %s", strerror(-err));
		return err;
	}
	fastpath_set_capacities(skel, pol);
	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, false);
	err = imapguard_bpf__load(skel);
	if (err) {
		pr_warn("Couldn't create the BPF maps: %s", strerror(-err));
		goto unpin;	/* nothing pinned yet: removes the empty directory */
	}
	bpf_object__for_each_map(map, skel->obj) {
		const char *name = fastpath_pin_name(map);

		if (!name)
			continue;
		pin_path(path, sizeof(path), dir, name);
		err = bpf_map__pin(map, path);
		if (err) {
			pr_warn("Couldn't pin map '%s': %s", path, strerror(-err));
			goto unpin;
		}
	}
	pr_debug("created and pinned the BPF maps under %s", dir);
	goto cleanup;
unpin:
	fastpath_unpin_all(dir);
cleanup:
	imapguard_bpf__destroy(skel);
	return err;
}

/* Load program which on the pinned maps and pin it. Another process may
 * have pinned it meanwhile (a daemon's reload takes no lock): then that
 * one is used. */
static int load_prog(const char *dir, enum prog which)
{
	struct bpf_program *prog, *p;
	struct imapguard_bpf *skel;
	struct bpf_map *map;
	char path[PATH_MAX];
	int err = 0, fd;

	skel = imapguard_bpf__open();
	if (!skel) {
		err = -errno;
		pr_warn("Couldn't open BPF object: %s", strerror(-err));
		return err;
	}
	prog = bpf_object__find_program_by_name(skel->obj, prog_names[which]);
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, p == prog);
	bpf_object__for_each_map(map, skel->obj) {
		const char *name = fastpath_pin_name(map);
		__u32 value_size = bpf_map__value_size(map);

		if (!name)
			continue;
		pin_path(path, sizeof(path), dir, name);
		fd = bpf_obj_get(path);
		err = fd < 0 ? -errno : bpf_map__reuse_fd(map, fd);	/* dups fd */
		if (fd >= 0)
			close(fd);
		if (err) {
			pr_warn("Couldn't use pinned map '%s': %s", path, strerror(-err));
			goto out;
		}
		/* ig_bss is not among the maps fastpath_open_maps() checks:
		 * the verifier's "invalid access" would be all a user saw. */
		if (bpf_map__value_size(map) != value_size) {
			pr_warn("Pinned map '%s' has another layout (value %u bytes; expected %u): it "
				"is from another imapguard version; detach with that version, or "
				"remove '%s'", path, bpf_map__value_size(map), value_size, dir);
			err = -EPROTO;
			goto out;
		}
	}
	err = imapguard_bpf__load(skel);
	if (err) {
		pr_warn("Couldn't load the %s program: %s", bpf_program__name(prog),
			strerror(-err));
		goto out;
	}
	pin_path(path, sizeof(path), dir, prog_pins[which]);
	err = bpf_program__pin(prog, path);
	if (err == -EEXIST)
		err = 0;
	if (err)
		pr_warn("Couldn't pin program '%s': %s", path, strerror(-err));
	else
		pr_debug("loaded and pinned %s", path);
out:
	imapguard_bpf__destroy(skel);
	return err;
}

int fastpath_unpin_all(const char *dir)
{
	struct dirent *de;
	char path[PATH_MAX];
	DIR *d = opendir(dir);
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		pin_path(path, sizeof(path), dir, de->d_name);
		if (unlink(path) && !err)
			err = -errno;
	}
	closedir(d);
	if (rmdir(dir) && !err)
		err = -errno;
	return err;
}

void fastpath_maps_init(struct ig_maps *m)
{
	int *fds = (int *)m;

	for (int i = 0; i < IG_NMAPS; i++)
		fds[i] = -1;
}

void fastpath_close_maps(struct ig_maps *m)
{
	int *fds = (int *)m;

	for (int i = 0; i < IG_NMAPS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	fastpath_maps_init(m);
}

int fastpath_open_maps(const char *dir, struct ig_maps *m)
{
	int *fds = (int *)m, err;
	char path[PATH_MAX];

	fastpath_maps_init(m);
	for (int i = 0; i < IG_NMAPS; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		pin_path(path, sizeof(path), dir, ig_map_names[i]);
		fds[i] = bpf_obj_get(path);
		if (fds[i] < 0) {
			err = -errno;
			if (err == -ENOENT && !i)
				pr_warn("imapguard is not attached (no pinned maps in '%s')", dir);
			else if (err == -ENOENT)
				pr_warn("No pinned map '%s': the pins in '%s' are incomplete, or from "
					"another imapguard version (detach with that version, or remove "
					"the directory)", path, dir);
			else
				pr_warn("Couldn't open pinned map '%s': %s", path, strerror(-err));
			fastpath_close_maps(m);
			return err;
		}
		err = bpf_obj_get_info_by_fd(fds[i], &info, &len) ? -errno : 0;
		if (!err && (info.key_size != map_sizes[i].key ||
			     info.value_size != map_sizes[i].value ||
			     (map_sizes[i].entries && info.max_entries != map_sizes[i].entries))) {
			char want[32] = "";

			if (map_sizes[i].entries)
				snprintf(want, sizeof(want), ", %u entries", map_sizes[i].entries);
			pr_warn("Pinned map '%s' has another layout (key %u, value %u bytes, %u "
				"entries; expected %u, %u bytes%s): it is from another imapguard "
				"version; detach with that version, or remove '%s'", path,
				info.key_size, info.value_size, info.max_entries, map_sizes[i].key,
				map_sizes[i].value, want, dir);
			err = -EPROTO;
		}
		if (err) {
			fastpath_close_maps(m);
			return err;
		}
	}
	return 0;
}

void fastpath_maps_of(struct bpf_object *obj, struct ig_maps *m)
{
	int *fds = (int *)m;

	for (int i = 0; i < IG_NMAPS; i++)
		fds[i] = bpf_map__fd(bpf_object__find_map_by_name(obj, obj_name(i)));
}

/* Program which, loaded if nothing needed it before. */
static int prog_fd_get(const char *dir, enum prog which)
{
	char path[PATH_MAX];
	int fd, err;

	pin_path(path, sizeof(path), dir, prog_pins[which]);
	fd = bpf_obj_get(path);
	if (fd < 0 && errno == ENOENT) {
		err = load_prog(dir, which);
		if (err)
			return err;
		fd = bpf_obj_get(path);
	}
	if (fd < 0) {
		err = -errno;
		pr_warn("Couldn't open pinned program '%s': %s", path, strerror(-err));
	}
	return fd < 0 ? err : fd;
}

int fastpath_census_run(int prog_fd, struct ig_census *c)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = c, .ctx_size_in = sizeof(*c));
	int err;

	memset(c, 0, sizeof(*c));
	c->now_ns = mono_ns();
	err = bpf_prog_test_run_opts(prog_fd, &o);	/* the kernel writes c back */
	if (err)
		pr_warn("Couldn't run the census program: %s", strerror(-err));
	return err;
}

int fastpath_census(const char *dir, struct ig_census *c)
{
	int fd = prog_fd_get(dir, PROG_CENSUS), err;

	if (fd < 0)
		return fd;
	err = fastpath_census_run(fd, c);
	close(fd);
	return err;
}

static void link_path(char *buf, size_t len, const char *dir, unsigned int ifindex)
{
	snprintf(buf, len, "%s/link_%u", dir, ifindex);
}

static int attach_xdp(const char *dir, int prog_fd, unsigned int ifindex, int mode)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts,
		    .flags = mode == IG_MODE_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
	char path[PATH_MAX];
	int fd, err;

	/* A link, pinned: enforcement outlives this process, and nobody can
	 * silently replace our program with a plain netlink attach. */
	fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
	if (fd < 0)
		return -errno;
	link_path(path, sizeof(path), dir, ifindex);
	err = bpf_obj_pin(fd, path);
	if (err) {
		err = -errno;
		bpf_link_detach(fd);
	}
	close(fd);
	return err;
}

static int attach_tc(int prog_fd, unsigned int ifindex, bool replace, bool *created)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = IG_TC_HANDLE, .priority = IG_TC_PRIO,
		    .prog_fd = prog_fd, .flags = replace ? BPF_TC_F_REPLACE : 0);
	int err;

	err = bpf_tc_hook_create(&hook);
	*created = !err;
	if (err && err != -EEXIST)	/* clsact already there: not ours to remove */
		return err;
	err = bpf_tc_attach(&hook, &opts);
	if (err && *created)
		coexist_clsact_release(ifindex);
	return err;
}

static int detach_one(const char *dir, const struct ig_iface *ifc, unsigned int ifindex)
{
	char path[PATH_MAX];
	int fd, err = 0;

	if (ifc->mode == IG_MODE_TC) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = IG_TC_HANDLE, .priority = IG_TC_PRIO);
		char name[IF_NAMESIZE];

		/* tc has no link: an ifindex reused by another interface (ours
		 * went with its namespace) must not lose its filters. */
		if (!if_indextoname(ifindex, name) || strcmp(name, ifc->name))
			return 0;
		/* Our handle and priority, but someone else's program (ours was
		 * replaced with tc(8)): not ours to remove. */
		err = bpf_tc_query(&hook, &opts);
		if (!err && ifc->prog_id && opts.prog_id != ifc->prog_id) {
			pr_warn("iface '%s': the tc filter at imapguard's handle and prio holds "
				"program %u, not imapguard's %u: left in place", ifc->name,
				opts.prog_id, ifc->prog_id);
			err = -ENOENT;
		} else {
			opts.prog_id = 0, opts.prog_fd = 0, opts.flags = 0;
			err = bpf_tc_detach(&hook, &opts);
		}
		/* clsact goes only if we created it and nobody else's filters
		 * sit on it now. */
		if (ifc->tc_created_hook)
			coexist_clsact_release(ifindex);
		/* The interface (or its qdisc) is already gone: nothing to undo. */
		return err == -ENOENT || err == -ENODEV || err == -EINVAL ? 0 : err;
	}
	link_path(path, sizeof(path), dir, ifindex);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		if (bpf_link_detach(fd) && errno != ENOLINK && errno != EINVAL)
			err = -errno;
		close(fd);
	}
	if (unlink(path) && errno != ENOENT && !err)
		err = -errno;
	return err;
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

void fastpath_our_ids(const char *dir, struct coexist_ours *ours)
{
	memset(ours, 0, sizeof(*ours));
	for (int i = 0; i < 2; i++) {
		char path[PATH_MAX];
		int fd;

		pin_path(path, sizeof(path), dir, prog_pins[i]);
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			ours->ids[i] = prog_id(fd);
			close(fd);
		}
	}
}

/*
 * Another program in ifindex's XDP slot is never replaced: auto goes to tc
 * ingress, which runs after it, and says so; native and generic refuse
 * (-EBUSY) naming it, instead of the kernel's bare "Device or resource
 * busy". A failed query decides nothing: the attach itself will tell.
 */
static int xdp_slot_check(const char *dir, const char *ifname, unsigned int ifindex, int *mode)
{
	struct coexist_ours ours;
	struct coexist_list l;
	const struct coexist_prog *p;
	char what[128];
	int err = 0;

	if (*mode == IG_MODE_TC)
		return 0;
	fastpath_our_ids(dir, &ours);
	coexist_list_init(&l);
	p = coexist_xdp(ifindex, &ours, &l) ? NULL : coexist_foreign_xdp(&l);
	if (p) {
		coexist_describe(p, what, sizeof(what));
		if (*mode) {
			pr_warn("Couldn't attach to iface '%s' in %s mode: its XDP slot holds "
				"another program (%s), and imapguard never replaces it (--mode tc "
				"or auto attach at tc ingress, after it)", ifname,
				mode_name(*mode), what);
			err = -EBUSY;
		} else {
			pr_info("iface '%s': its XDP slot holds another program (%s): "
				"attaching at tc ingress instead, which runs after it", ifname, what);
			*mode = IG_MODE_TC;
		}
	}
	coexist_list_free(&l);
	return err;
}

/* Attach in one mode; with same_hook, atomically swap the program already
 * attached there by us (pinned XDP link update, tc filter replace). */
static int do_attach(const char *dir, unsigned int ifindex, int mode,
		     bool same_hook, struct ig_iface *ifc)
{
	char path[PATH_MAX];
	int prog_fd = prog_fd_get(dir, prog_of_mode(mode)), lfd, err;
	bool created = false;

	if (prog_fd < 0)
		return prog_fd;
	if (mode == IG_MODE_TC) {
		err = attach_tc(prog_fd, ifindex, same_hook, &created);
		ifc->tc_created_hook = created || (same_hook && ifc->tc_created_hook);
	} else if (same_hook) {
		link_path(path, sizeof(path), dir, ifindex);
		lfd = bpf_obj_get(path);
		err = lfd < 0 ? -errno : bpf_link_update(lfd, prog_fd, NULL);
		if (lfd >= 0)
			close(lfd);
	} else {
		err = attach_xdp(dir, prog_fd, ifindex, mode);
	}
	ifc->mode = mode;
	ifc->prog_id = prog_id(prog_fd);
	close(prog_fd);
	return err;
}

/* Native <-> generic: the kernel runs one XDP mode per device, so bridge
 * the switch through tc and the interface is never unprotected. */
static int switch_xdp_mode(const char *dir, unsigned int ifindex, const struct ig_iface *old,
			   int mode, struct ig_iface *ifc)
{
	struct ig_iface bridge = *ifc;
	int err;

	err = do_attach(dir, ifindex, IG_MODE_TC, false, &bridge);
	if (!err)
		err = detach_one(dir, old, ifindex);
	if (!err)
		err = do_attach(dir, ifindex, mode, false, ifc);
	if (!bridge.mode || detach_one(dir, &bridge, ifindex))
		pr_debug("tc bridge on ifindex %u not removed", ifindex);
	return err;
}

int fastpath_attach(const char *dir, struct ig_maps *m, const char *ifname,
		    int mode, bool replace, int *used)
{
	static const int order[] = { IG_MODE_NATIVE, IG_MODE_GENERIC, IG_MODE_TC };
	unsigned int ifindex = if_nametoindex(ifname);
	struct ig_iface old = {}, ifc;
	bool had;
	int err = -EINVAL, ret;

	if (!ifindex) {
		pr_warn("Couldn't attach to iface '%s': no such interface", ifname);
		return -ENODEV;
	}
	had = !bpf_map_lookup_elem(m->ifaces, &ifindex, &old);
	if (had && !replace) {
		pr_warn("Already attached to iface '%s' (%s mode); use --replace or detach first",
			ifname, mode_name(old.mode));
		return -EEXIST;
	}
	if (had && !mode)
		mode = old.mode;	/* auto + --replace: stay in the working mode */
	if ((ret = xdp_slot_check(dir, ifname, ifindex, &mode)))
		return ret;
	ifc = old;
	snprintf(ifc.name, sizeof(ifc.name), "%s", ifname);
	/*
	 * --replace in the same hook swaps atomically; between XDP and tc the
	 * new attachment goes in before the old one comes out: for a moment
	 * both run (verdicts are idempotent), never neither.
	 */
	if (had && old.mode != IG_MODE_TC && mode != IG_MODE_TC && (__u32)mode != old.mode) {
		err = switch_xdp_mode(dir, ifindex, &old, mode, &ifc);
		had = false;
	} else {
		for (size_t i = 0; i < 3; i++) {
			if (mode && order[i] != mode)
				continue;
			err = do_attach(dir, ifindex, order[i],
					had && old.mode == (__u32)order[i], &ifc);
			if (!err)
				break;
			pr_debug("attach to '%s' in %s mode failed: %s", ifname,
				 mode_name(order[i]), strerror(-err));
		}
	}
	/* Someone took the XDP slot since the check: name them too. */
	if ((err == -EBUSY || err == -EEXIST) && mode && mode != IG_MODE_TC &&
	    xdp_slot_check(dir, ifname, ifindex, &mode))
		return err;
	if (err) {
		pr_warn("Couldn't attach to iface '%s' in %s mode: %s", ifname,
			mode_name(mode), strerror(-err));
		return err;
	}
	if (had && old.mode != ifc.mode)
		detach_one(dir, &old, ifindex);
	*used = ifc.mode;
	if (bpf_map_update_elem(m->ifaces, &ifindex, &ifc, BPF_ANY)) {
		err = -errno;
		pr_warn("Couldn't record attachment to '%s': %s", ifname, strerror(-err));
		return err;
	}
	return 0;
}

int fastpath_detach(const char *dir, struct ig_maps *m, unsigned int ifindex)
{
	struct ig_iface ifc;
	int err;

	if (bpf_map_lookup_elem(m->ifaces, &ifindex, &ifc))
		return -ENOENT;
	err = detach_one(dir, &ifc, ifindex);
	if (err)
		pr_warn("Couldn't detach from iface '%s': %s", ifc.name, strerror(-err));
	bpf_map_delete_elem(m->ifaces, &ifindex);
	return err;
}
