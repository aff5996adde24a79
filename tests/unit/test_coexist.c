// SPDX-License-Identifier: GPL-2.0
/*
 * fastpath/coexist: the RTM_GETTFILTER parser on crafted answers (no root
 * needed), then, as root in a private network namespace, the real queries
 * against programs this test attaches itself to lo: an XDP program, a tc
 * filter, and clsact kept while someone else's filter remains; and
 * fastpath_attach()/fastpath_detach() beside them, with the real object
 * pinned in a private bpffs.
 */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "fastpath/coexist.h"
#include "fastpath/fastpath.h"
#include "policy/policy.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

/* ---- building a dump answer ------------------------------------------- */

struct nlbuf {
	char b[4096] __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t len;
};

static struct nlmsghdr *msg(struct nlbuf *nb, __u16 type, __u32 seq, size_t payload)
{
	struct nlmsghdr *nh = (void *)(nb->b + nb->len);

	memset(nh, 0, NLMSG_SPACE(payload));
	nh->nlmsg_len = NLMSG_LENGTH(payload);
	nh->nlmsg_type = type;
	nh->nlmsg_seq = seq;
	nh->nlmsg_flags = NLM_F_MULTI;
	nb->len += NLMSG_SPACE(payload);
	return nh;
}

static struct rtattr *attr(struct nlbuf *nb, struct nlmsghdr *nh, __u16 type,
			   const void *data, size_t len)
{
	struct rtattr *a = (void *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(a->rta_len);
	nb->len = (char *)nh - nb->b + NLMSG_ALIGN(nh->nlmsg_len);
	return a;
}

/* A filter message: tcmsg with handle and prio, its kind. */
static struct nlmsghdr *filter(struct nlbuf *nb, __u32 seq, __u32 handle, __u32 prio,
			       const char *kind)
{
	struct nlmsghdr *nh = msg(nb, RTM_NEWTFILTER, seq, sizeof(struct tcmsg));
	struct tcmsg *t = NLMSG_DATA(nh);

	t->tcm_handle = handle;
	t->tcm_info = TC_H_MAKE(prio << 16, htons(ETH_P_ALL));
	attr(nb, nh, TCA_KIND, kind, strlen(kind) + 1);
	return nh;
}

/* TCA_OPTIONS with a cls_bpf program id and name, nested by hand. */
static void bpf_opts(struct nlbuf *nb, struct nlmsghdr *nh, __u32 id, const char *name)
{
	char inner[64] __attribute__((aligned(4))) = {};
	struct rtattr *a = (void *)inner;
	size_t n;

	a->rta_type = TCA_BPF_ID;
	a->rta_len = RTA_LENGTH(4);
	memcpy(RTA_DATA(a), &id, 4);
	n = RTA_ALIGN(a->rta_len);
	a = (void *)(inner + n);
	a->rta_type = TCA_BPF_NAME;
	a->rta_len = RTA_LENGTH(strlen(name) + 1);
	memcpy(RTA_DATA(a), name, strlen(name) + 1);
	n += RTA_ALIGN(a->rta_len);
	attr(nb, nh, TCA_OPTIONS, inner, n);
}

static void test_parse_dump(void)
{
	struct coexist_ours ours = { .ids = { 42 } };
	struct coexist_list l;
	struct nlbuf nb = {};
	struct nlmsghdr *nh;

	coexist_list_init(&l);
	filter(&nb, 7, 0, 1, "bpf");			/* a priority's header */
	nh = filter(&nb, 7, 0x1a9, 0x1a9, "bpf");	/* ours, by id */
	bpf_opts(&nb, nh, 42, "ig_tc");
	nh = filter(&nb, 7, 1, 2, "bpf");
	bpf_opts(&nb, nh, 43, "a_name_longer_than_fifteen");
	filter(&nb, 7, 0x80000000, 3, "u32");	/* u32 hash table 800: skipped */
	filter(&nb, 7, 0x80000800, 3, "u32");	/* u32 filter 800::800 */
	filter(&nb, 8, 5, 5, "bpf");			/* another request's answer */
	ASSERT_EQ(coexist_parse_filters(nb.b, nb.len, 7, COEXIST_TC_INGRESS, &ours, &l), 0,
		  "more to come");
	if (!ASSERT_EQ(l.n, 3, "filters"))
		goto out;
	ASSERT_TRUE(l.v[0].ours && l.v[0].id == 42, "first is ours");
	ASSERT_EQ(l.v[0].prio, 0x1a9, "prio");
	ASSERT_EQ(l.v[0].handle, 0x1a9, "handle");
	ASSERT_EQ(l.v[0].protocol, ETH_P_ALL, "protocol");
	ASSERT_TRUE(!l.v[1].ours && l.v[1].id == 43, "second is not");
	ASSERT_STREQ(l.v[1].name, "a_name_longer_t", "name cut to 15");
	ASSERT_STREQ(l.v[2].kind, "u32", "kind");
	ASSERT_EQ(l.v[2].id, 0, "u32 has no program");
	ASSERT_EQ(l.v[2].hook, COEXIST_TC_INGRESS, "hook");
	nb.len = 0;
	msg(&nb, NLMSG_DONE, 7, 4);
	ASSERT_EQ(coexist_parse_filters(nb.b, nb.len, 7, COEXIST_TC_INGRESS, &ours, &l), 1,
		  "done");
out:
	coexist_list_free(&l);
}

static void test_parse_hostile(void)
{
	struct coexist_list l;
	struct nlbuf nb = {};
	struct nlmsghdr *nh;
	struct nlmsgerr *e;
	char kind[40];

	coexist_list_init(&l);
	e = NLMSG_DATA(msg(&nb, NLMSG_ERROR, 1, sizeof(*e)));
	e->error = -EOPNOTSUPP;
	ASSERT_EQ(coexist_parse_filters(nb.b, nb.len, 1, COEXIST_TC_EGRESS, NULL, &l),
		  -EOPNOTSUPP, "error passed on");
	e->error = 0;
	ASSERT_EQ(coexist_parse_filters(nb.b, nb.len, 1, COEXIST_TC_EGRESS, NULL, &l), 1,
		  "ack ends it");
	e->error = 5;
	ASSERT_EQ(coexist_parse_filters(nb.b, nb.len, 1, COEXIST_TC_EGRESS, NULL, &l), -EBADMSG,
		  "positive error");
	/* A filter message too short for its tcmsg. */
	nb.len = 0;
	msg(&nb, RTM_NEWTFILTER, 1, 4);
	ASSERT_EQ(coexist_parse_filters(nb.b, nb.len, 1, COEXIST_TC_EGRESS, NULL, &l), -EBADMSG,
		  "short tcmsg");
	/* A kind without NUL, longer than the field; an attribute whose
	 * length runs past the message. */
	nb.len = 0;
	memset(kind, 'k', sizeof(kind));
	nh = msg(&nb, RTM_NEWTFILTER, 1, sizeof(struct tcmsg));
	((struct tcmsg *)NLMSG_DATA(nh))->tcm_handle = 9;
	attr(&nb, nh, TCA_KIND, kind, sizeof(kind));
	attr(&nb, nh, TCA_OPTIONS, kind, 8)->rta_len = 200;
	ASSERT_EQ(coexist_parse_filters(nb.b, nb.len, 1, COEXIST_TC_EGRESS, NULL, &l), 0,
		  "parsed");
	if (ASSERT_EQ(l.n, 1, "one filter"))
		ASSERT_EQ(strlen(l.v[0].kind), sizeof(l.v[0].kind) - 1, "kind cut");
	/* Cut in the middle of a header: nothing read past the buffer. */
	ASSERT_EQ(coexist_parse_filters(nb.b, 10, 1, COEXIST_TC_EGRESS, NULL, &l), 0, "cut");
	coexist_list_free(&l);
}

static void test_describe(void)
{
	struct coexist_prog x = { .hook = COEXIST_XDP, .mode = "native", .id = 276,
				  .name = "xdpfilt_alw_all" };
	struct coexist_prog t = { .hook = COEXIST_TC_INGRESS, .kind = "u32", .prio = 3,
				  .handle = 0x80000800 };
	char buf[160];

	coexist_describe(&x, buf, sizeof(buf));
	ASSERT_STREQ(buf, "id 276, name 'xdpfilt_alw_all', native mode", "xdp");
	coexist_describe(&t, buf, sizeof(buf));
	ASSERT_STREQ(buf, "tc ingress u32 filter prio 3 handle 0x80000800", "tc, not bpf");
	coexist_describe(&x, buf, 8);
	ASSERT_STREQ(buf, "id 276,", "cut and terminated");
	/* An offloaded program does not hold the driver/generic slot. */
	struct coexist_prog v[2] = { x, x };
	struct coexist_list l = { .v = v, .n = 1 };

	v[0].mode = "hw";
	ASSERT_TRUE(coexist_foreign_xdp(&l) == NULL, "hw only: slot free");
	l.n = 2;
	ASSERT_TRUE(coexist_foreign_xdp(&l) == &v[1], "hw and native: native holds it");
}

/* ---- live, in a private network namespace ------------------------------ */

static int load(enum bpf_prog_type type, const char *name, int ret)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = ret },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(type, name, "GPL", insns, 2, NULL);
}

static __u32 id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

static void test_live_xdp(unsigned int lo)
{
	struct coexist_ours ours = {};
	struct coexist_list l;
	int fd = load(BPF_PROG_TYPE_XDP, "cx_foreign", XDP_PASS);
	const struct coexist_prog *p;

	coexist_list_init(&l);
	if (!ASSERT_TRUE(fd >= 0, "load xdp"))
		return;
	ASSERT_OK(coexist_xdp(lo, &ours, &l), "empty slot");
	ASSERT_EQ(l.n, 0, "nothing attached");
	if (!ASSERT_OK(bpf_xdp_attach(lo, fd, XDP_FLAGS_SKB_MODE, NULL), "attach"))
		goto out;
	ASSERT_OK(coexist_xdp(lo, &ours, &l), "query");
	p = coexist_foreign_xdp(&l);
	if (ASSERT_TRUE(p != NULL, "foreign")) {
		ASSERT_STREQ(p->name, "cx_foreign", "name");
		ASSERT_STREQ(p->mode, "generic", "mode");
		ASSERT_EQ(p->id, id_of(fd), "id");
	}
	coexist_list_free(&l);
	ours.ids[1] = id_of(fd);
	ASSERT_OK(coexist_xdp(lo, &ours, &l), "query again");
	ASSERT_TRUE(l.n == 1 && l.v[0].ours && !coexist_foreign_xdp(&l), "ours now");
	ASSERT_EQ(coexist_xdp(1000000, &ours, &l), -ENODEV, "no such interface");
	bpf_xdp_detach(lo, XDP_FLAGS_SKB_MODE, NULL);
out:
	coexist_list_free(&l);
	close(fd);
}

static void test_live_tc(unsigned int lo)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = lo, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 7, .priority = 5);
	struct coexist_list l;
	int fd = load(BPF_PROG_TYPE_SCHED_CLS, "cx_cls", 0);

	coexist_list_init(&l);
	if (!ASSERT_TRUE(fd >= 0, "load tc"))
		return;
	ASSERT_OK(coexist_tc(lo, COEXIST_TC_INGRESS, NULL, &l), "no clsact");
	ASSERT_EQ(l.n, 0, "nothing");
	if (!ASSERT_OK(bpf_tc_hook_create(&hook), "clsact"))
		goto out;
	opts.prog_fd = fd;
	if (!ASSERT_OK(bpf_tc_attach(&hook, &opts), "attach"))
		goto out;
	ASSERT_OK(coexist_scan(lo, NULL, &l), "scan");
	if (ASSERT_EQ(l.n, 1, "one filter")) {
		ASSERT_EQ(l.v[0].hook, COEXIST_TC_INGRESS, "ingress");
		ASSERT_STREQ(l.v[0].kind, "bpf", "kind");
		ASSERT_STREQ(l.v[0].name, "cx_cls", "name");
		ASSERT_EQ(l.v[0].id, id_of(fd), "id");
		ASSERT_EQ(l.v[0].prio, 5, "prio");
		ASSERT_EQ(l.v[0].handle, 7, "handle");
	}
	/* Someone's filter remains: clsact stays. */
	ASSERT_EQ(coexist_clsact_release(lo), 1, "kept");
	ASSERT_OK(bpf_tc_query(&hook, &(struct bpf_tc_opts){ .sz = sizeof(struct bpf_tc_opts),
							       .handle = 7, .priority = 5 }),
		  "filter still there");
	opts.prog_fd = 0, opts.prog_id = 0, opts.flags = 0;
	ASSERT_OK(bpf_tc_detach(&hook, &opts), "detach");
	ASSERT_OK(coexist_clsact_release(lo), "released when empty");
	coexist_list_free(&l);
	ASSERT_OK(coexist_tc(lo, COEXIST_TC_INGRESS, NULL, &l), "gone");
	ASSERT_EQ(l.n, 0, "clsact gone");
	ASSERT_OK(coexist_clsact_release(lo), "release twice");
out:
	hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
	bpf_tc_hook_destroy(&hook);
	coexist_list_free(&l);
	close(fd);
}

/* The fast path loaded and pinned under dir, maps open in m. */
static int load_fastpath(const char *dir, struct ig_maps *m)
{
	struct policy pol;
	int err;

	policy_init(&pol);
	/* Small maps: the defaults preallocate about 100 MB. */
	pol.max_bans = pol.max_sources = pol.max_deny = pol.max_allow = 64;
	err = fastpath_load(dir, &pol);
	policy_free(&pol);
	return err ? err : fastpath_open_maps(dir, m);
}

static void test_attach_beside(unsigned int lo, const char *dir)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = lo, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 7, .priority = 5);
	int xfd = load(BPF_PROG_TYPE_XDP, "cx_foreign", XDP_PASS);
	int cfd = load(BPF_PROG_TYPE_SCHED_CLS, "cx_cls", 0);
	struct coexist_list l;
	struct ig_maps m;
	int used = 0;

	coexist_list_init(&l);
	fastpath_maps_init(&m);
	if (!ASSERT_TRUE(xfd >= 0 && cfd >= 0, "load foreign") ||
	    !ASSERT_OK(load_fastpath(dir, &m), "load fast path"))
		goto out;
	/* Nobody in the slot: auto takes XDP (generic: lo has no driver mode). */
	ASSERT_OK(fastpath_attach(dir, &m, "lo", 0, false, &used), "auto, empty slot");
	ASSERT_EQ(used, IG_MODE_GENERIC, "generic");
	ASSERT_OK(fastpath_detach(dir, &m, lo), "detach");
	ASSERT_OK(coexist_xdp(lo, NULL, &l), "query");
	ASSERT_EQ(l.n, 0, "slot empty again");
	/* Someone's XDP program: native/generic refuse, auto goes to tc. */
	if (!ASSERT_OK(bpf_xdp_attach(lo, xfd, XDP_FLAGS_SKB_MODE, NULL), "foreign xdp"))
		goto out;
	ASSERT_EQ(fastpath_attach(dir, &m, "lo", IG_MODE_GENERIC, false, &used), -EBUSY,
		  "generic refused");
	ASSERT_EQ(fastpath_attach(dir, &m, "lo", IG_MODE_NATIVE, false, &used), -EBUSY,
		  "native refused");
	ASSERT_OK(fastpath_attach(dir, &m, "lo", 0, false, &used), "auto beside");
	ASSERT_EQ(used, IG_MODE_TC, "tc");
	ASSERT_EQ(fastpath_attach(dir, &m, "lo", IG_MODE_NATIVE, true, &used), -EBUSY,
		  "replace to native refused");
	/* Someone's tc filter on the clsact we created: detach keeps both. */
	opts.prog_fd = cfd;
	ASSERT_OK(bpf_tc_attach(&hook, &opts), "foreign tc");
	ASSERT_OK(fastpath_detach(dir, &m, lo), "detach beside");
	coexist_list_free(&l);
	ASSERT_OK(coexist_scan(lo, NULL, &l), "scan");
	ASSERT_TRUE(l.n == 2 && l.v[0].hook == COEXIST_XDP && l.v[1].handle == 7,
		    "foreign xdp and tc kept, ours gone");
	/* Our handle and prio, someone else's program: left in place. */
	ASSERT_OK(fastpath_attach(dir, &m, "lo", IG_MODE_TC, false, &used), "tc again");
	opts.handle = IG_TC_HANDLE, opts.priority = IG_TC_PRIO, opts.flags = BPF_TC_F_REPLACE;
	opts.prog_id = 0;	/* libbpf filled it in: an input must be 0 */
	ASSERT_OK(bpf_tc_attach(&hook, &opts), "take our handle");
	ASSERT_OK(fastpath_detach(dir, &m, lo), "detach");
	ASSERT_OK(bpf_tc_query(&hook, &(struct bpf_tc_opts){ .sz = sizeof(struct bpf_tc_opts),
							       .handle = IG_TC_HANDLE,
							       .priority = IG_TC_PRIO }),
		  "their filter at our handle kept");
out:
	bpf_xdp_detach(lo, XDP_FLAGS_SKB_MODE, NULL);
	hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
	bpf_tc_hook_destroy(&hook);
	fastpath_close_maps(&m);
	fastpath_unpin_all(dir);
	coexist_list_free(&l);
	if (xfd >= 0)
		close(xfd);
	if (cfd >= 0)
		close(cfd);
}

/* A bpffs of our own in a private mount namespace: nothing pinned here
 * can touch the host's /sys/fs/bpf. Fills dir; 0 or -errno. */
static int private_bpffs(char *mnt, char *dir, size_t len)
{
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    !mkdtemp(mnt) || mount("bpf", mnt, "bpf", 0, "mode=0700"))
		return -errno;
	snprintf(dir, len, "%s/pins", mnt);
	return mkdir(dir, 0700) ? -errno : 0;
}

int main(void)
{
	char mnt[] = "/tmp/igtest-coexist.XXXXXX", dir[PATH_MAX];
	unsigned int lo;

	RUN_CASE("coexist parse dump", test_parse_dump());
	RUN_CASE("coexist parse hostile", test_parse_hostile());
	RUN_CASE("coexist describe", test_describe());
	if (geteuid() || unshare(CLONE_NEWNET)) {
		SKIP_CASE("coexist live", "needs root and a private network namespace");
		return test_cases_failed != 0;
	}
	lo = if_nametoindex("lo");
	libbpf_set_print(NULL);	/* the kernel's "Invalid handle" for a gone clsact is expected */
	RUN_CASE("coexist live xdp", test_live_xdp(lo));
	RUN_CASE("coexist live tc", test_live_tc(lo));
	if (private_bpffs(mnt, dir, sizeof(dir))) {
		SKIP_CASE("coexist attach beside", "no private bpffs");
	} else {
		RUN_CASE("coexist attach beside", test_attach_beside(lo, dir));
		umount(mnt);
		rmdir(mnt);
	}
	return test_cases_failed != 0;
}
