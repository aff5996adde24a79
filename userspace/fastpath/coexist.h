/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Living beside other programs on an interface: what holds its XDP slot and
 * which tc filters sit on its clsact hooks, each told apart from imapguard's
 * own by program id. imapguard never replaces or removes what is not its own;
 * this module is how it knows which is which.
 *
 * Contract: every function works in the caller's network namespace, takes
 * the interface by index, and returns 0 or -errno (coexist_xdp() and
 * coexist_scan(): -ENODEV for no such interface; a tc dump of one simply
 * finds nothing). A list is owned by the caller: coexist_list_init() before the
 * first use, coexist_list_free() after the last. Entries are capped at
 * COEXIST_MAX (a listing, not an inventory: `truncated` says when more were
 * left out).
 */
#ifndef IMAPGUARD_COEXIST_H
#define IMAPGUARD_COEXIST_H
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define COEXIST_MAX 256

enum coexist_hook { COEXIST_XDP, COEXIST_TC_INGRESS, COEXIST_TC_EGRESS };

struct coexist_prog {
	enum coexist_hook hook;
	const char *mode;	/* XDP: "native", "generic" or "hw" (static); tc: NULL */
	char kind[16];		/* tc: the classifier ("bpf", "u32", "matchall", ...) */
	char name[16];		/* BPF program name; "" when unknown or not BPF */
	__u32 id;		/* BPF program id; 0: a tc filter that is not BPF */
	__u32 handle, prio;	/* tc only */
	__u16 protocol;		/* tc only: ETH_P_*, host order (ETH_P_ALL: all) */
	bool ours;		/* id is one of the ids the caller called ours */
};

struct coexist_list {
	struct coexist_prog *v;
	size_t n, cap;
	bool truncated;
};

/* Program ids the caller owns (its pinned XDP and tc programs); 0s ignored. */
struct coexist_ours {
	__u32 ids[4];
};

void coexist_list_init(struct coexist_list *l);
void coexist_list_free(struct coexist_list *l);

/* Append what is attached to the XDP slot (native, generic, offloaded). */
int coexist_xdp(unsigned int ifindex, const struct coexist_ours *ours, struct coexist_list *l);
/* Append the filters on one clsact hook (none: no clsact qdisc, not an error). */
int coexist_tc(unsigned int ifindex, enum coexist_hook hook, const struct coexist_ours *ours,
	       struct coexist_list *l);
/* Both: XDP, then tc ingress, then tc egress. */
int coexist_scan(unsigned int ifindex, const struct coexist_ours *ours, struct coexist_list *l);

/* The first XDP program in l that is not ours and holds the slot imapguard
 * attaches to (native or generic; an offloaded one runs beside), or NULL. */
const struct coexist_prog *coexist_foreign_xdp(const struct coexist_list *l);

/* "id 276, name 'xdpfilt_alw_all', native mode", "id 31, name 'cls', tc
 * ingress bpf filter prio 1 handle 0x1" or, not BPF, "tc ingress u32 filter
 * prio 1 handle 0x800" into buf (always terminated). */
void coexist_describe(const struct coexist_prog *p, char *buf, size_t len);
/* "xdp", "tc_ingress" or "tc_egress". */
const char *coexist_hook_name(enum coexist_hook hook);

/*
 * Remove the clsact qdisc of ifindex only if neither of its hooks holds a
 * filter any more: it may hold others' filters, added after we created it.
 * Returns 0 when removed (or already gone), 1 when kept, -errno on error.
 */
int coexist_clsact_release(unsigned int ifindex);

/*
 * The parser behind coexist_tc(), for tests: appends the filters of one
 * buffer of an RTM_GETTFILTER dump answer with sequence number seq.
 * Returns 1 when the dump ended (NLMSG_DONE), 0 when more is to come,
 * -errno from an NLMSG_ERROR or -EBADMSG for a malformed message. Names come
 * from TCA_BPF_NAME here; coexist_tc() then prefers the program's own.
 */
int coexist_parse_filters(const void *buf, size_t len, __u32 seq, enum coexist_hook hook,
			  const struct coexist_ours *ours, struct coexist_list *l);

#endif
