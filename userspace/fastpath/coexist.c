// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "fastpath/coexist.h"
#include "base/log.h"

void coexist_list_init(struct coexist_list *l)
{
	memset(l, 0, sizeof(*l));
}

void coexist_list_free(struct coexist_list *l)
{
	free(l->v);
	coexist_list_init(l);
}

static bool is_ours(const struct coexist_ours *ours, __u32 id)
{
	for (size_t i = 0; ours && id && i < sizeof(ours->ids) / sizeof(ours->ids[0]); i++)
		if (ours->ids[i] == id)
			return true;
	return false;
}

/* A zeroed new entry at the end, or NULL when full (truncated) or out of memory. */
static struct coexist_prog *list_add(struct coexist_list *l)
{
	if (l->n == COEXIST_MAX) {
		l->truncated = true;
		return NULL;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct coexist_prog *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		l->v = v, l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

/* The program's own name (what bpftool and `ip link` show); "" if it is
 * gone or we may not look. */
static void prog_name(__u32 id, char *buf, size_t len)
{
	struct bpf_prog_info info = {};
	__u32 ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return;
	if (!bpf_obj_get_info_by_fd(fd, &info, &ilen))
		snprintf(buf, len, "%s", info.name);
	close(fd);
}

int coexist_xdp(unsigned int ifindex, const struct coexist_ours *ours, struct coexist_list *l)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct { __u32 id; const char *mode; } slot[3];
	char ifname[IF_NAMESIZE];
	int err;

	/* The query is a link dump filtered by index: none is no error there. */
	if (!if_indextoname(ifindex, ifname))
		return -ENODEV;
	if ((err = bpf_xdp_query(ifindex, 0, &q)))
		return err;
	/* The kernel runs native and offloaded together, never with generic. */
	slot[0].id = q.drv_prog_id, slot[0].mode = "native";
	slot[1].id = q.skb_prog_id, slot[1].mode = "generic";
	slot[2].id = q.hw_prog_id, slot[2].mode = "hw";
	for (int i = 0; i < 3; i++) {
		struct coexist_prog *p;

		if (!slot[i].id)
			continue;
		if (!(p = list_add(l)))
			return l->truncated ? 0 : -ENOMEM;
		p->hook = COEXIST_XDP;
		p->mode = slot[i].mode;
		p->id = slot[i].id;
		p->ours = is_ours(ours, p->id);
		prog_name(p->id, p->name, sizeof(p->name));
	}
	return 0;
}

static void copy_str(char *dst, size_t len, const struct rtattr *rta)
{
	size_t n = RTA_PAYLOAD(rta);
	const char *s = RTA_DATA(rta);

	n = strnlen(s, n < len ? n : len - 1);
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* TCA_OPTIONS of a cls_bpf filter: its program id and name. */
static void parse_bpf_opts(const struct rtattr *opts, struct coexist_prog *p)
{
	int len = RTA_PAYLOAD(opts);

	for (const struct rtattr *a = RTA_DATA(opts); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == TCA_BPF_ID && RTA_PAYLOAD(a) >= sizeof(__u32))
			memcpy(&p->id, RTA_DATA(a), sizeof(__u32));
		else if (a->rta_type == TCA_BPF_NAME)
			copy_str(p->name, sizeof(p->name), a);
	}
}

/* u32 also dumps its hash tables (handle htid:0:0, the node part 0) as
 * filters: nobody added those, and each one would double the listing. */
static bool is_u32_table(const struct tcmsg *t)
{
	const struct rtattr *a = (const void *)((const char *)t + NLMSG_ALIGN(sizeof(*t)));

	return (t->tcm_handle & 0xfff) == 0 && a->rta_type == TCA_KIND &&
	       a->rta_len >= RTA_LENGTH(4) && !memcmp(RTA_DATA(a), "u32", 4);
}

/* One RTM_NEWTFILTER message: a filter, or 0 for a priority's header. */
static int parse_filter(const struct nlmsghdr *nh, enum coexist_hook hook,
			const struct coexist_ours *ours, struct coexist_list *l)
{
	const struct tcmsg *t = NLMSG_DATA(nh);
	const struct rtattr *a, *opts = NULL;
	struct coexist_prog *p;
	int len;

	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*t)))
		return -EBADMSG;
	/* Each priority is dumped once without a handle (the classifier
	 * itself, as `tc filter show` prints it), then once per filter. */
	if (!t->tcm_handle)
		return 0;
	if (nh->nlmsg_len >= NLMSG_LENGTH(sizeof(*t)) + RTA_LENGTH(4) && is_u32_table(t))
		return 0;
	if (!(p = list_add(l)))
		return l->truncated ? 0 : -ENOMEM;
	p->hook = hook;
	p->handle = t->tcm_handle;
	p->prio = TC_H_MAJ(t->tcm_info) >> 16;
	p->protocol = ntohs(TC_H_MIN(t->tcm_info));
	len = nh->nlmsg_len - NLMSG_LENGTH(sizeof(*t));
	for (a = (const void *)((const char *)t + NLMSG_ALIGN(sizeof(*t))); RTA_OK(a, len);
	     a = RTA_NEXT(a, len)) {
		if (a->rta_type == TCA_KIND)
			copy_str(p->kind, sizeof(p->kind), a);
		else if (a->rta_type == TCA_OPTIONS)
			opts = a;
	}
	if (opts && !strcmp(p->kind, "bpf"))
		parse_bpf_opts(opts, p);
	p->ours = is_ours(ours, p->id);
	return 0;
}

/* NLMSG_OK() without its signed/unsigned comparison (the u32 nlmsg_len
 * against the int length), which clang's -Wsign-compare refuses in the
 * fuzz build. */
static bool nlmsg_ok(const struct nlmsghdr *nh, int left)
{
	return left >= (int)sizeof(*nh) && nh->nlmsg_len >= sizeof(*nh) &&
	       nh->nlmsg_len <= (unsigned int)left;
}

int coexist_parse_filters(const void *buf, size_t len, __u32 seq, enum coexist_hook hook,
			  const struct coexist_ours *ours, struct coexist_list *l)
{
	int left = len > (size_t)INT32_MAX ? INT32_MAX : (int)len, err;

	for (const struct nlmsghdr *nh = buf; nlmsg_ok(nh, left); nh = NLMSG_NEXT(nh, left)) {
		if (nh->nlmsg_seq != seq)
			continue;	/* not an answer to our request */
		switch (nh->nlmsg_type) {
		case NLMSG_DONE:
			return 1;
		case NLMSG_ERROR:
			if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
				return -EBADMSG;
			err = ((const struct nlmsgerr *)NLMSG_DATA(nh))->error;
			return err > 0 || err < -4095 ? -EBADMSG : err ? err : 1;
		case RTM_NEWTFILTER:
			if ((err = parse_filter(nh, hook, ours, l)))
				return err;
			break;
		}
	}
	return 0;
}

/* One dump request and its answer, bounded in time: a netlink socket of our
 * own, so nothing else's messages interleave. */
static int tc_dump(unsigned int ifindex, enum coexist_hook hook, const struct coexist_ours *ours,
		   struct coexist_list *l)
{
	struct {
		struct nlmsghdr nh;
		struct tcmsg t;
	} req = {
		.nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg)), .nlmsg_type = RTM_GETTFILTER,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex,
		       .tcm_parent = TC_H_MAKE(TC_H_CLSACT, hook == COEXIST_TC_EGRESS ?
					      TC_H_MIN_EGRESS : TC_H_MIN_INGRESS) },
	};
	struct timeval tmo = { .tv_sec = 2 };
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int fd, err = 0;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo)) ||
	    send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
		err = -errno;
		goto out;
	}
	while (!err) {
		/* Peek for the size: a dump message may exceed any fixed buffer. */
		n = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
		if (n < 0) {
			err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		if ((size_t)n > cap) {
			char *b = realloc(buf, n);

			if (!b) {
				err = -ENOMEM;
				break;
			}
			buf = b, cap = n;
		}
		n = recv(fd, buf, cap, 0);
		if (n < 0) {
			err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		err = coexist_parse_filters(buf, n, req.nh.nlmsg_seq, hook, ours, l);
	}
	if (err == 1)
		err = 0;
out:
	free(buf);
	close(fd);
	return err;
}

int coexist_tc(unsigned int ifindex, enum coexist_hook hook, const struct coexist_ours *ours,
	       struct coexist_list *l)
{
	size_t first = l->n;
	int err = tc_dump(ifindex, hook, ours, l);

	if (err == -EINVAL || err == -ENOENT)	/* no clsact (older kernels say so) */
		err = 0;
	/* Prefer the program's own name over the one given at attach (a path
	 * or section for iproute2, none for libbpf). */
	for (size_t i = first; !err && i < l->n; i++)
		if (l->v[i].id)
			prog_name(l->v[i].id, l->v[i].name, sizeof(l->v[i].name));
	return err;
}

int coexist_scan(unsigned int ifindex, const struct coexist_ours *ours, struct coexist_list *l)
{
	int err = coexist_xdp(ifindex, ours, l);

	if (!err)
		err = coexist_tc(ifindex, COEXIST_TC_INGRESS, ours, l);
	if (!err)
		err = coexist_tc(ifindex, COEXIST_TC_EGRESS, ours, l);
	return err;
}

const struct coexist_prog *coexist_foreign_xdp(const struct coexist_list *l)
{
	/* An offloaded program runs on the NIC, before and beside a native
	 * or generic one: it does not hold the slot we attach to. */
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].hook == COEXIST_XDP && !l->v[i].ours && strcmp(l->v[i].mode, "hw"))
			return &l->v[i];
	return NULL;
}

const char *coexist_hook_name(enum coexist_hook hook)
{
	return hook == COEXIST_XDP ? "xdp" : hook == COEXIST_TC_INGRESS ? "tc_ingress" : "tc_egress";
}

void coexist_describe(const struct coexist_prog *p, char *buf, size_t len)
{
	const char *dir = p->hook == COEXIST_TC_INGRESS ? "ingress" : "egress";

	if (p->hook == COEXIST_XDP)
		snprintf(buf, len, "id %u, name '%s', %s mode", p->id, p->name, p->mode);
	else if (p->id)
		snprintf(buf, len, "id %u, name '%s', tc %s %s filter prio %u handle 0x%x",
			 p->id, p->name, dir, p->kind, p->prio, p->handle);
	else
		snprintf(buf, len, "tc %s %s filter prio %u handle 0x%x", dir, p->kind, p->prio,
			 p->handle);
}

int coexist_clsact_release(unsigned int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	struct coexist_list l;
	int err;

	coexist_list_init(&l);
	err = coexist_tc(ifindex, COEXIST_TC_INGRESS, NULL, &l);
	if (!err)
		err = coexist_tc(ifindex, COEXIST_TC_EGRESS, NULL, &l);
	if (!err && l.n) {
		pr_debug("clsact on ifindex %u kept: %zu filter(s) of others remain", ifindex, l.n);
		err = 1;
	}
	coexist_list_free(&l);
	if (err)
		return err;
	err = bpf_tc_hook_destroy(&hook);
	return err == -ENOENT || err == -EINVAL || err == -ENODEV ? 0 : err;
}
