/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The pinned fast path: loading the BPF object once, pinning its maps and
 * programs under the pin directory, and attaching them to interfaces.
 */
#ifndef IMAPGUARD_FASTPATH_H
#define IMAPGUARD_FASTPATH_H
#include <stdbool.h>
#include "common.h"

#define IG_DEFAULT_PIN_DIR "/sys/fs/bpf/imapguard"

/* tc filter identity: fixed so detach and --replace find exactly ours. */
#define IG_TC_HANDLE	0x1a9
#define IG_TC_PRIO	0x1a9

/* File descriptors of the pinned maps (-1 when closed). */
struct ig_maps {
	int ports, cfg, allow, deny, lpmsum, bans, banpfx, throttle, counters,
	    events, sample, ifaces, flows, bansum, grants;
};

/* Names of the maps as pinned, in struct ig_maps order. ig_cfg is the
 * object's global-data section IG_CFG_SECTION, pinned as "ig_cfg". */
#define IG_CFG_SECTION ".data.ig_cfg"
extern const char *const ig_map_names[];
#define IG_NMAPS 15
_Static_assert(sizeof(struct ig_maps) == IG_NMAPS * sizeof(int), "ig_maps and IG_NMAPS disagree");

struct policy;

/* Mount bpffs on /sys/fs/bpf if needed; create dir. */
int fastpath_prepare_dir(const char *dir);
/* flock(LOCK_EX) on the pin directory; returns the fd to close, or -errno. */
int fastpath_lock(const char *dir);
bool fastpath_loaded(const char *dir);
/* Create the maps (capacities from pol) and pin them; fastpath_attach()
 * loads and pins each program when an interface first needs it. */
int fastpath_load(const char *dir, const struct policy *pol);
/* Entries of the hash maps and the bans by origin, counted in the kernel
 * (the census program, loaded on first use). 0 or -errno. */
int fastpath_census(const char *dir, struct ig_census *c);
/* The same with the census program prog_fd (a test's own skeleton). */
int fastpath_census_run(int prog_fd, struct ig_census *c);
/* Remove every pin and the directory. */
int fastpath_unpin_all(const char *dir);
/* Every fd -1 (none open). */
void fastpath_maps_init(struct ig_maps *m);
int fastpath_open_maps(const char *dir, struct ig_maps *m);
void fastpath_close_maps(struct ig_maps *m);
/* The map fds of a loaded (not pinned) object, e.g. a test's skeleton. */
struct bpf_object;
void fastpath_maps_of(struct bpf_object *obj, struct ig_maps *m);
/* What fastpath_load() does to an opened skeleton before loading it, and
 * the name it pins a map under (NULL: not pinned): the load-time bench
 * times the same steps one by one. */
struct imapguard_bpf;
struct bpf_map;
void fastpath_set_capacities(struct imapguard_bpf *skel, const struct policy *pol);
const char *fastpath_pin_name(const struct bpf_map *map);

/* The kernel's CONFIG_HZ from its config file (/boot, /proc/config.gz), or 0. */
unsigned int kernel_hz(void);

/* Ids of the pinned XDP and tc programs (what "ours" means to coexist.h);
 * a missing pin leaves its slot 0. */
struct coexist_ours;
void fastpath_our_ids(const char *dir, struct coexist_ours *ours);

/*
 * mode: 0 = auto (native, generic, tc); returns the mode used via *used.
 * Never replaces another program in the XDP slot: auto then attaches at tc
 * ingress (saying so, naming the program), native and generic fail with
 * -EBUSY and a message naming it.
 */
int fastpath_attach(const char *dir, struct ig_maps *m, const char *ifname,
		    int mode, bool replace, int *used);
int fastpath_detach(const char *dir, struct ig_maps *m, unsigned int ifindex);

#endif
