// SPDX-License-Identifier: GPL-2.0
/* Grants in the pinned ig_grants hash (grants.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include "fastpath/grants.h"
#include "fastpath/lists.h"
#include "policy/policy.h"

bool grant_user_ok(const char *user)
{
	size_t n = user ? strlen(user) : 0;

	if (!n || n >= IG_USER_LEN || user[0] == '-')
		return false;
	return user[strspn(user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789._@+-")] == '\0';
}

bool grant_prefix_ok(const struct ig_prefix *p)
{
	return p->plen == 128 || (p->plen == 64 && host_entry(p));
}

void grant_prefix_of(const uint8_t addr[16], unsigned int plen6, struct ig_prefix *out)
{
	memcpy(out->addr, addr, 16);
	out->plen = 128;
	if (!addr_is_v4(addr) && plen6 == 64) {
		out->plen = 64;
		addr_mask(out->addr, 64);
	}
}

static struct ig_ban_key gkey(const struct ig_prefix *p)
{
	struct ig_ban_key k = { .plen = p->plen };

	memcpy(k.addr, p->addr, 16);
	return k;
}

/* expires_ns of the entry: the latest live slot's (0: no slot in use). */
static void refresh_max(struct ig_grant_val *v)
{
	v->expires_ns = 0;
	for (int i = 0; i < IG_GRANT_USERS; i++)
		if (v->users[i].expires_ns > v->expires_ns)
			v->expires_ns = v->users[i].expires_ns;
}

static int write_val(struct ig_maps *m, const struct ig_ban_key *k, const struct ig_grant_val *v)
{
	if (!v->expires_ns)
		return bpf_map_delete_elem(m->grants, k) && errno != ENOENT ? -errno : 0;
	if (bpf_map_update_elem(m->grants, k, v, BPF_ANY)) {
		int err = -errno;

		if (err == -E2BIG || err == -ENOSPC || err == -ENOMEM) {
			count_extra(m, IG_C_MAP_FULL);
			return -E2BIG;
		}
		return err;
	}
	return 0;
}

int grant_put(struct ig_maps *m, const struct ig_prefix *p, const char *user,
	      uint64_t expires_mono, uint64_t created)
{
	struct ig_ban_key k = gkey(p);
	struct ig_grant_val v = {};
	uint64_t now = mono_ns();
	int slot = -1;

	if (!grant_prefix_ok(p) || !grant_user_ok(user) || !expires_mono)
		return -EINVAL;
	bpf_map_lookup_elem(m->grants, &k, &v);
	for (int i = 0; i < IG_GRANT_USERS; i++) {
		struct ig_grant_user *u = &v.users[i];

		if (u->expires_ns && u->expires_ns <= now)
			memset(u, 0, sizeof(*u));	/* expired: free it */
		if (u->expires_ns && !strcmp(u->user, user)) {
			slot = i;
			break;
		}
	}
	for (int i = 0; slot < 0 && i < IG_GRANT_USERS; i++)
		if (!v.users[i].expires_ns)
			slot = i;
	if (slot < 0) {	/* all taken: the one that ends first gives way */
		slot = 0;
		for (int i = 1; i < IG_GRANT_USERS; i++)
			if (v.users[i].expires_ns < v.users[slot].expires_ns)
				slot = i;
		memset(&v.users[slot], 0, sizeof(v.users[slot]));
	}
	if (strcmp(v.users[slot].user, user)) {
		memset(&v.users[slot], 0, sizeof(v.users[slot]));
		snprintf(v.users[slot].user, IG_USER_LEN, "%s", user);
	}
	v.users[slot].expires_ns = expires_mono;
	if (!v.users[slot].created)
		v.users[slot].created = created ? created : (uint64_t)time(NULL);
	refresh_max(&v);
	return write_val(m, &k, &v);
}

int grant_add(struct ig_maps *m, const struct ig_prefix *p, const char *user,
	      uint64_t ttl_ns, uint64_t *expires_mono)
{
	uint64_t exp;
	int err;

	if (ttl_ns < NS_PER_SEC || ttl_ns > POL_DURATION_MAX_NS)
		return -ERANGE;
	exp = mono_ns() + ttl_ns;
	err = grant_put(m, p, user, exp, 0);
	if (!err && expires_mono)
		*expires_mono = exp;
	return err;
}

int grant_del(struct ig_maps *m, const struct ig_prefix *p, const char *user)
{
	struct ig_ban_key k = gkey(p);
	struct ig_grant_val v;
	bool found = false;

	if (!grant_prefix_ok(p))
		return -EINVAL;
	if (bpf_map_lookup_elem(m->grants, &k, &v))
		return -ENOENT;
	for (int i = 0; i < IG_GRANT_USERS; i++) {
		if (!v.users[i].expires_ns || (user && strcmp(v.users[i].user, user)))
			continue;
		memset(&v.users[i], 0, sizeof(v.users[i]));
		found = true;
	}
	if (!found)
		return -ENOENT;
	refresh_max(&v);
	return write_val(m, &k, &v);
}

/* Every key of ig_grants; caller frees. */
static int all_keys(struct ig_maps *m, struct ig_ban_key **out, size_t *n)
{
	struct ig_ban_key k, next, *v = NULL, *tmp;
	size_t cap = 0;
	void *prev = NULL;

	*n = 0;
	while (!bpf_map_get_next_key(m->grants, prev, &next)) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			tmp = realloc(v, cap * sizeof(*v));
			if (!tmp) {
				free(v);
				return -ENOMEM;
			}
			v = tmp;
		}
		v[(*n)++] = next;
		k = next;
		prev = &k;
	}
	*out = v;
	return 0;
}

int grant_del_user(struct ig_maps *m, const char *user)
{
	struct ig_ban_key *keys;
	struct ig_prefix p;
	size_t n;
	int err = all_keys(m, &keys, &n), count = 0;

	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		memcpy(p.addr, keys[i].addr, 16);
		p.plen = keys[i].plen;
		err = grant_del(m, &p, user);
		if (!err)
			count++;
		else if (err != -ENOENT)
			break;
		err = 0;
	}
	free(keys);
	return err ? err : count;
}

static int push(struct grant_info **out, size_t *n, size_t *cap, const struct ig_ban_key *k,
		const struct ig_grant_val *v, int i)
{
	struct grant_info *g;

	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 64;

		g = realloc(*out, nc * sizeof(**out));
		if (!g)
			return -ENOMEM;
		*out = g;
		*cap = nc;
	}
	g = &(*out)[(*n)++];
	memset(g, 0, sizeof(*g));
	memcpy(g->pfx.addr, k->addr, 16);
	g->pfx.plen = k->plen;
	g->expires_ns = v->users[i].expires_ns;
	g->created = v->users[i].created;
	g->packets = v->packets;
	memcpy(g->user, v->users[i].user, IG_USER_LEN);
	g->user[IG_USER_LEN - 1] = '\0';
	return 0;
}

int grant_list(struct ig_maps *m, struct grant_info **out, size_t *n)
{
	struct ig_ban_key *keys;
	struct ig_grant_val v;
	size_t nk, cap = 0;
	int err = all_keys(m, &keys, &nk);

	*out = NULL;
	*n = 0;
	if (err)
		return err;
	for (size_t i = 0; !err && i < nk; i++) {
		if (bpf_map_lookup_elem(m->grants, &keys[i], &v))
			continue;	/* deleted meanwhile */
		for (int j = 0; !err && j < IG_GRANT_USERS; j++)
			if (v.users[j].expires_ns)
				err = push(out, n, &cap, &keys[i], &v, j);
	}
	free(keys);
	if (err) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return err;
}

int grant_lookup(struct ig_maps *m, const uint8_t addr[16], struct grant_info **out, size_t *n)
{
	struct ig_ban_key k = { .plen = 128 };
	uint64_t now = mono_ns();
	struct ig_grant_val v;
	size_t cap = 0;
	int err = 0;

	*out = NULL;
	*n = 0;
	memcpy(k.addr, addr, 16);
	for (int pass = 0; !err && pass < 2; pass++) {
		if (pass) {
			if (addr_is_v4(addr))
				break;
			k.plen = 64;
			addr_mask(k.addr, 64);
		}
		if (bpf_map_lookup_elem(m->grants, &k, &v))
			continue;
		for (int j = 0; !err && j < IG_GRANT_USERS; j++)
			if (v.users[j].expires_ns > now)
				err = push(out, n, &cap, &k, &v, j);
	}
	if (err) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return err;
}

int grant_sweep(struct ig_maps *m)
{
	struct ig_ban_key *keys;
	struct ig_grant_val v;
	uint64_t now = mono_ns();
	size_t nk;
	int err = all_keys(m, &keys, &nk), freed = 0;

	if (err)
		return err;
	for (size_t i = 0; i < nk; i++) {
		bool changed = false;

		if (bpf_map_lookup_elem(m->grants, &keys[i], &v))
			continue;
		for (int j = 0; j < IG_GRANT_USERS; j++)
			if (v.users[j].expires_ns && v.users[j].expires_ns <= now) {
				memset(&v.users[j], 0, sizeof(v.users[j]));
				changed = true;
				freed++;
			}
		if (changed) {
			refresh_max(&v);
			write_val(m, &keys[i], &v);
		}
	}
	free(keys);
	return freed;
}

/* Free the expired slots of the entry at k; returns how many. */
static int sweep_one(struct ig_maps *m, const struct ig_ban_key *k, uint64_t now)
{
	struct ig_grant_val v;
	int freed = 0;

	if (bpf_map_lookup_elem(m->grants, k, &v))
		return 0;
	for (int j = 0; j < IG_GRANT_USERS; j++)
		if (v.users[j].expires_ns && v.users[j].expires_ns <= now) {
			memset(&v.users[j], 0, sizeof(v.users[j]));
			freed++;
		}
	if (freed) {
		refresh_max(&v);
		write_val(m, k, &v);
	}
	return freed;
}

int grant_sweep_some(struct ig_maps *m, struct grant_cursor *c, unsigned int budget)
{
	struct ig_ban_key next;
	uint64_t now = mono_ns();
	int freed = 0;

	for (unsigned int i = 0; i < budget; i++) {
		/* A deleted cursor key restarts the walk (the kernel's answer
		 * for a missing key): at worst a few entries twice. */
		if (bpf_map_get_next_key(m->grants, c->have ? &c->key : NULL, &next)) {
			c->have = false;
			break;
		}
		c->key = next;
		c->have = true;
		freed += sweep_one(m, &next, now);
	}
	return freed;
}

int grant_bind_check(struct ig_maps *m, const uint8_t addr[16], const char *user)
{
	struct grant_info *g;
	size_t n;
	int err = grant_lookup(m, addr, &g, &n);

	if (err)
		return err;
	err = n ? -EACCES : -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (user && !strcmp(g[i].user, user))
			err = 0;
	free(g);
	return err;
}
