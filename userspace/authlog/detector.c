// SPDX-License-Identifier: GPL-2.0
/*
 * Ban decision engine. All state lives in four fixed-capacity LRU tables
 * allocated up front, so an attacker with many addresses costs evictions,
 * never memory: sources (per address and IPv6 prefix: failure times and a
 * set of user-name hashes), ban histories, accounts (sources failing one
 * user) and subnets (banned sources inside one subnet).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "authlog/detector.h"
#include "base/hash.h"

#define NIL		UINT32_MAX
#define RING_MAX	16	/* failure entries per source, see ring_add() */
#define NSEC		1000000000ULL

enum rule { R_BRUTE, R_SPRAY, R_SUBNET, R_V6PREFIX };
static const char *const rule_name[] = { "brute", "spray", "subnet", "v6prefix" };

/* ---- fixed-capacity hash table with LRU eviction ---- */

struct key {
	uint8_t addr[16];	/* masked to plen; accounts: the user hash */
	uint8_t plen;
};

struct node {
	struct key key;
	uint32_t hnext;		/* bucket chain */
	uint32_t prev, next;	/* LRU list, head = most recently used */
};

/*
 * Lookups walk chains and relink the LRU list, touching several entries
 * for the one they want; so keys and links sit in a dense array of their
 * own, and the (much larger) values apart. Both arrays, and the bucket
 * array for a full table, are allocated up front. Of the buckets only
 * nbucket are in use, about one per entry held: a table holding few
 * entries then stays in cache.
 */
struct table {
	struct node *node;	/* cap entries */
	uint8_t *val;		/* cap values of vsize bytes, 8-byte aligned */
	uint32_t *bucket;	/* bucket_max allocated, nbucket in use */
	uint32_t cap, used, nbucket, bucket_max, vsize, head, tail;
	uint64_t seed, evictions;
};

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

/* Seeded, so neighbours in an attacker's IPv6 /64 cannot be picked to
 * pile into one bucket. */
static uint64_t key_hash(uint64_t seed, const struct key *k)
{
	uint64_t a, b;

	memcpy(&a, k->addr, 8);
	memcpy(&b, k->addr + 8, 8);
	return mix(mix(a ^ seed) ^ b ^ ((uint64_t)k->plen << 56 | k->plen));
}

static int table_init(struct table *t, uint32_t cap, size_t value_size, uint64_t seed)
{
	t->cap = cap;
	t->vsize = (value_size + 7) & ~(size_t)7;
	for (t->bucket_max = 16; t->bucket_max < cap && t->bucket_max < (1u << 31);
	     t->bucket_max <<= 1)
		;
	t->nbucket = 16;
	t->node = calloc(cap, sizeof(*t->node));
	t->val = calloc(cap, t->vsize);
	t->bucket = malloc(t->bucket_max * sizeof(*t->bucket));
	if (!t->node || !t->val || !t->bucket)
		return -ENOMEM;
	memset(t->bucket, 0xff, t->nbucket * sizeof(*t->bucket));
	t->head = t->tail = NIL;
	t->seed = seed;
	return 0;
}

static void table_free(struct table *t)
{
	free(t->node);
	free(t->val);
	free(t->bucket);
}

static void *value_at(const struct table *t, uint32_t i)
{
	return t->val + (size_t)i * t->vsize;
}

static void lru_unlink(struct table *t, uint32_t i)
{
	struct node *n = &t->node[i];

	if (n->prev != NIL)
		t->node[n->prev].next = n->next;
	else
		t->head = n->next;
	if (n->next != NIL)
		t->node[n->next].prev = n->prev;
	else
		t->tail = n->prev;
}

static void lru_push(struct table *t, uint32_t i)
{
	struct node *n = &t->node[i];

	n->prev = NIL;
	n->next = t->head;
	if (t->head != NIL)
		t->node[t->head].prev = i;
	t->head = i;
	if (t->tail == NIL)
		t->tail = i;
}

static uint32_t *bucket_of(struct table *t, const struct key *k)
{
	return &t->bucket[key_hash(t->seed, k) & (t->nbucket - 1)];
}

/* Double the buckets in use: the entries of bucket b stay there or move to
 * b + n, by the next bit of their hash. */
static void table_grow(struct table *t)
{
	uint32_t n = t->nbucket, *pp, i;

	for (uint32_t b = 0; b < n; b++) {
		t->bucket[b + n] = NIL;
		for (pp = &t->bucket[b]; (i = *pp) != NIL;) {
			if (key_hash(t->seed, &t->node[i].key) & n) {
				*pp = t->node[i].hnext;
				t->node[i].hnext = t->bucket[b + n];
				t->bucket[b + n] = i;
			} else {
				pp = &t->node[i].hnext;
			}
		}
	}
	t->nbucket = 2 * n;
}

/* Find k's value; with create, add k (evicting the least recently used
 * entry when full) with a zeroed value. A found or added entry becomes most
 * recent. */
static void *table_get(struct table *t, const struct key *k, bool create)
{
	uint32_t *b = bucket_of(t, k), i, *pp;
	struct node *n;

	for (i = *b; i != NIL; i = t->node[i].hnext)
		if (!memcmp(&t->node[i].key, k, sizeof(*k)))
			break;
	if (i == NIL && !create)
		return NULL;
	if (i == NIL && t->used < t->cap) {
		i = t->used++;
		if (t->used > t->nbucket && t->nbucket < t->bucket_max) {
			table_grow(t);
			b = bucket_of(t, k);
		}
	} else if (i == NIL) {
		i = t->tail;
		for (pp = bucket_of(t, &t->node[i].key); *pp != i; pp = &t->node[*pp].hnext)
			;
		*pp = t->node[i].hnext;
		lru_unlink(t, i);
		t->evictions++;
	} else {
		lru_unlink(t, i);
		lru_push(t, i);
		return value_at(t, i);
	}
	n = &t->node[i];
	memset(n, 0, sizeof(*n));
	memset(value_at(t, i), 0, t->vsize);
	n->key = *k;
	n->hnext = *b;
	*b = i;
	lru_push(t, i);
	return value_at(t, i);
}

/* ---- values ---- */

struct fail_ev {
	uint64_t t;
	uint32_t n;
};

struct seen {			/* member of a small set, alive until exp */
	uint64_t h, exp;
};

struct src {			/* then: struct fail_ev[ring]; struct seen[users] */
	uint32_t nev, nusers;
};

struct hist {
	uint32_t bans, rule;
	uint64_t last_ban, last_dur, until;
};

struct acct {
	uint32_t n;
	bool fired;
	uint64_t fired_at;
	struct seen src[];
};

struct subnet {
	uint32_t n;
	struct seen banned[];
};

struct detector {
	struct pol_detect pol;
	struct det_hooks hooks;
	uint32_t ring, users, acct_cap, sub_cap;	/* set sizes per entry */
	struct table src, hist, acct, sub;
	uint64_t seed;			/* address keys (key_hash) */
	struct hasher *uhash;		/* user names (user_hash) */
	struct det_stats st;
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static struct fail_ev *src_ev(struct src *s)
{
	return (struct fail_ev *)(s + 1);
}

static struct seen *src_users(const struct detector *d, struct src *s)
{
	return (struct seen *)(src_ev(s) + d->ring);
}

/*
 * Failures inside the window after adding n at now. Entries are in time
 * order, one per log line. The ring never overflows before a ban when
 * max_failures <= RING_MAX (each entry holds at least one failure); above
 * that the two oldest are merged under the newer time, which errs towards
 * counting a little longer.
 */
static uint32_t ring_add(struct fail_ev *ev, uint32_t *nev, uint32_t cap, uint64_t now,
			 uint64_t window, uint32_t n)
{
	uint32_t i, sum = 0;

	for (i = 0; i < *nev && sat_add(ev[i].t, window) <= now; i++)
		;
	memmove(ev, ev + i, (*nev - i) * sizeof(*ev));
	*nev -= i;
	if (n && *nev == cap) {
		ev[1].n = ev[1].n + ev[0].n < ev[1].n ? UINT32_MAX : ev[1].n + ev[0].n;
		memmove(ev, ev + 1, (cap - 1) * sizeof(*ev));
		(*nev)--;
	}
	if (n)
		ev[(*nev)++] = (struct fail_ev){ now, n };
	for (i = 0; i < *nev; i++)
		sum = sum + ev[i].n < sum ? UINT32_MAX : sum + ev[i].n;
	return sum;
}

/* Add h (or refresh it) to a set; returns the live members. Full of live
 * members, the one that expires first makes room. */
static uint32_t set_add(struct seen *s, uint32_t *n, uint32_t cap, uint64_t h, uint64_t exp,
			uint64_t now)
{
	uint32_t i, victim = 0;

	for (i = 0; i < *n;) {
		if (s[i].exp <= now)
			s[i] = s[--*n];
		else
			i++;
	}
	for (i = 0; i < *n; i++) {
		if (s[i].h == h) {
			if (exp > s[i].exp)
				s[i].exp = exp;
			return *n;
		}
	}
	if (*n < cap) {
		s[(*n)++] = (struct seen){ h, exp };
		return *n;
	}
	for (i = 1; i < *n; i++)
		if (s[i].exp < s[victim].exp)
			victim = i;
	s[victim] = (struct seen){ h, exp };
	return *n;
}

static uint32_t set_live(const struct seen *s, uint32_t n, uint64_t now)
{
	uint32_t live = 0;

	for (uint32_t i = 0; i < n; i++)
		live += s[i].exp > now;
	return live;
}

/*
 * User names are compared ASCII case-folded: "Admin" and "admin" are one
 * account to Dovecot's usual %Lu, and one target to a sprayer. The names are
 * the attacker's, so the hash is keyed (SipHash, random key): names that
 * collide would hide users from the spray count or pile into one account
 * bucket. A name longer than the buffer is hashed in pieces, each piece
 * prefixed with the hash so far.
 */
static uint64_t user_hash(struct detector *d, const char *u)
{
	char buf[256];
	uint64_t h = 0;
	size_t n;

	do {
		memcpy(buf, &h, sizeof(h));
		for (n = sizeof(h); n < sizeof(buf) && *u; n++, u++)
			buf[n] = *u >= 'A' && *u <= 'Z' ? *u + 32 : *u;
		h = hasher_sum(d->uhash, buf, n);
	} while (*u);
	return h | 1;	/* 0 means "no user" */
}

/* ---- keys ---- */

static struct key make_key(const uint8_t addr[16], uint8_t plen)
{
	struct key k;

	memcpy(k.addr, addr, 16);
	if (plen < 128)		/* a whole address, the common key, needs no mask */
		addr_mask(k.addr, plen);
	k.plen = plen;
	return k;
}

static struct ig_prefix prefix_of(const struct key *k)
{
	struct ig_prefix p;

	memcpy(p.addr, k->addr, 16);
	p.plen = k->plen;
	return p;
}

static bool v6_key(const struct detector *d, const uint8_t addr[16], struct key *k)
{
	if (addr_is_v4(addr) || !d->pol.v6_plen || d->pol.v6_plen >= 128)
		return false;
	*k = make_key(addr, d->pol.v6_plen);
	return true;
}

static bool subnet_key(const struct detector *d, const struct key *k, struct key *s)
{
	bool v4 = addr_is_v4(k->addr) && k->plen >= 96;
	unsigned int plen = v4 ? (d->pol.subnet_plen4 ? 96u + d->pol.subnet_plen4 : 0) :
				 d->pol.subnet_plen6;

	if (!plen || plen >= k->plen)
		return false;
	*s = make_key(k->addr, plen);
	return true;
}

static bool allowed(struct detector *d, const struct key *k)
{
	struct ig_prefix p = prefix_of(k);

	return d->hooks.allowed && d->hooks.allowed(&p, d->hooks.ctx);
}

/* ---- bans ---- */

static uint64_t ban_duration(const struct detector *d, uint32_t repeat)
{
	uint64_t cap = d->pol.ban_max_ns ? d->pol.ban_max_ns : UINT64_MAX / 2;
	double t = (double)d->pol.ban_time_ns;

	for (uint32_t i = 0; i < repeat && t < (double)cap; i++)
		t *= d->pol.ban_factor;
	return t >= (double)cap ? cap : (uint64_t)t;
}

static void emit_ban(struct detector *d, const struct key *k, const struct hist *h,
		     uint32_t failures, uint32_t users, bool extend)
{
	struct det_event ev = {
		.kind = DET_EV_BAN, .prefix = prefix_of(k), .duration_ns = h->last_dur,
		.until_ns = h->until, .rule = rule_name[h->rule], .failures = failures,
		.users = users, .window_ns = d->pol.window_ns, .repeat = h->bans - 1,
		.extend = extend, .dry_run = d->pol.dry_run,
	};

	if (d->hooks.event)
		d->hooks.event(&ev, d->hooks.ctx);
}

/* A failure from inside a running ban re-arms it: ban_time counts from the
 * last failure. Returns whether k was banned. */
static bool extend(struct detector *d, const struct key *k, uint64_t now)
{
	struct hist *h = table_get(&d->hist, k, false);

	if (!h || h->until <= now || allowed(d, k))
		return false;
	if (sat_add(now, h->last_dur) > h->until)
		h->until = sat_add(now, h->last_dur);
	d->st.extensions++;
	emit_ban(d, k, h, 0, 0, true);
	return true;
}

static void subnet_pressure(struct detector *d, const struct key *banned, uint64_t until,
			    uint64_t now);

static void ban(struct detector *d, const struct key *k, enum rule rule, uint32_t failures,
		uint32_t users, uint64_t now)
{
	uint64_t forget = d->pol.ban_max_ns ? d->pol.ban_max_ns : UINT64_MAX;
	struct hist *h;

	if (allowed(d, k)) {
		d->st.allowed++;
		return;
	}
	if (extend(d, k, now))
		return;
	h = table_get(&d->hist, k, true);
	if (h->bans && h->until <= now && now - h->until >= forget)
		h->bans = 0;	/* long over: start the escalation again */
	h->last_dur = ban_duration(d, h->bans);
	h->bans += h->bans < UINT32_MAX;
	h->last_ban = now;
	h->until = sat_add(now, h->last_dur);
	h->rule = rule;
	d->st.bans++;
	emit_ban(d, k, h, failures, users, false);
	if (rule != R_SUBNET)
		subnet_pressure(d, k, h->until, now);
}

/* Bans inside one subnet: enough of them at once ban the subnet. */
static void subnet_pressure(struct detector *d, const struct key *banned, uint64_t until,
			    uint64_t now)
{
	uint32_t limit = min_u32(d->pol.max_sources, d->sub_cap), live;
	struct subnet *s;
	struct key sk;

	if (!limit || !subnet_key(d, banned, &sk))
		return;
	s = table_get(&d->sub, &sk, true);
	live = set_add(s->banned, &s->n, d->sub_cap, key_hash(d->seed, banned), until, now);
	if (live >= limit)
		ban(d, &sk, R_SUBNET, live, 0, now);
}

static void account_fire(struct detector *d, struct acct *a, const char *user, uint32_t live,
			 uint32_t limit, uint64_t now);

/* Distributed spraying: many sources failing one user. Reported (once per
 * window), never banned: the sources may be the user's own devices. */
static void account(struct detector *d, const char *user, uint64_t uh, const struct key *src,
		    uint64_t now)
{
	uint32_t limit = min_u32(d->pol.account_max_sources, d->acct_cap), live;
	struct key k = { .plen = 0 };
	struct acct *a;

	if (!uh || !limit)
		return;
	memcpy(k.addr, &uh, sizeof(uh));
	a = table_get(&d->acct, &k, true);
	live = set_add(a->src, &a->n, d->acct_cap, key_hash(d->seed, src),
		       sat_add(now, d->pol.window_ns), now);
	account_fire(d, a, user, live, limit, now);
}

/* The account event for live sources, once per window. */
static void account_fire(struct detector *d, struct acct *a, const char *user, uint32_t live,
			 uint32_t limit, uint64_t now)
{
	if (live < limit || (a->fired && now < sat_add(a->fired_at, d->pol.window_ns)))
		return;
	a->fired = true;
	a->fired_at = now;
	d->st.account_events++;
	if (d->hooks.event) {
		struct det_event ev = { .kind = DET_EV_ACCOUNT, .user = user, .users = live,
					.window_ns = d->pol.window_ns, .dry_run = d->pol.dry_run };

		d->hooks.event(&ev, d->hooks.ctx);
	}
}

/* ---- API ---- */

struct detector *detector_new(const struct pol_detect *pol, const struct det_hooks *hooks,
			      uint32_t capacity)
{
	uint32_t small = capacity / 8 > 64 ? capacity / 8 : 64;
	struct detector *d;
	int err;

	if (!pol || !capacity || !pol->max_failures || !pol->window_ns || !pol->ban_time_ns ||
	    !(pol->ban_factor >= 1.0) || pol->v6_plen > 128 || pol->subnet_plen4 > 32 ||
	    pol->subnet_plen6 > 128) {
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->pol = *pol;
	if (hooks)
		d->hooks = *hooks;
	if (getrandom(&d->seed, sizeof(d->seed), GRND_NONBLOCK) != sizeof(d->seed))
		d->seed = (uint64_t)time(NULL) ^ (uintptr_t)d;	/* no entropy yet: still varies */
	d->ring = pol->max_failures < 2 ? 2 : min_u32(pol->max_failures, RING_MAX);
	d->users = pol->max_users ? min_u32(pol->max_users, DET_USERS_MAX) : 8;
	d->acct_cap = pol->account_max_sources ? min_u32(pol->account_max_sources, DET_SOURCES_MAX) : 1;
	d->sub_cap = pol->max_sources ? min_u32(pol->max_sources, DET_SOURCES_MAX) : 1;
	err = table_init(&d->src, capacity, sizeof(struct src) + d->ring * sizeof(struct fail_ev) +
			 d->users * sizeof(struct seen), d->seed);
	if (!err)
		err = table_init(&d->hist, capacity, sizeof(struct hist), d->seed);
	if (!err)
		err = table_init(&d->acct, small, sizeof(struct acct) +
				 d->acct_cap * sizeof(struct seen), d->seed);
	if (!err)
		err = table_init(&d->sub, small, sizeof(struct subnet) +
				 d->sub_cap * sizeof(struct seen), d->seed);
	if (!err && !(d->uhash = hasher_new(NULL)))
		err = -errno;
	if (err) {
		detector_free(d);
		errno = -err;
		return NULL;
	}
	return d;
}

void detector_free(struct detector *d)
{
	if (!d)
		return;
	table_free(&d->src);
	table_free(&d->hist);
	table_free(&d->acct);
	table_free(&d->sub);
	hasher_free(d->uhash);
	free(d);
}

int detector_fail(struct detector *d, const uint8_t addr[16], const char *user,
		  uint32_t attempts, uint64_t now)
{
	struct key k[2], sk;
	bool covered, banned = false;
	uint32_t max_users;
	uint64_t uh;
	int nk;

	if (!d || !addr)
		return -EINVAL;
	max_users = min_u32(d->pol.max_users, d->users);
	k[0] = make_key(addr, 128);
	if (!attempts)
		return 0;
	if (allowed(d, &k[0])) {
		d->st.allowed++;
		return 0;
	}
	d->st.failures += attempts;
	uh = user && *user ? user_hash(d, user) : 0;
	nk = 1 + v6_key(d, addr, &k[1]);
	account(d, user, uh, &k[nk - 1], now);

	/* Already banned (lines of connections the ban cut, or a dry run):
	 * re-arm the bans that cover it and count nothing more. */
	covered = extend(d, &k[0], now);
	if (nk > 1)
		covered |= extend(d, &k[1], now);
	if (subnet_key(d, &k[0], &sk))
		covered |= extend(d, &sk, now);
	if (covered)
		return 0;
	if (d->hooks.failure)
		d->hooks.failure(addr, user, attempts, d->hooks.ctx);

	for (int i = 0; i < nk; i++) {
		struct src *s = table_get(&d->src, &k[i], true);
		uint32_t f = ring_add(src_ev(s), &s->nev, d->ring, now, d->pol.window_ns, attempts);
		uint32_t u = uh ? set_add(src_users(d, s), &s->nusers, d->users, uh,
					  sat_add(now, d->pol.window_ns), now) :
				  set_live(src_users(d, s), s->nusers, now);
		enum rule rule;

		/* The prefix waits for a second address once the address
		 * itself was banned: a lone host is not its whole /64. */
		if (banned || (f < d->pol.max_failures && (!max_users || u < max_users)))
			continue;
		rule = i ? R_V6PREFIX : f >= d->pol.max_failures ? R_BRUTE : R_SPRAY;
		s->nev = s->nusers = 0;		/* the next ban needs fresh evidence */
		ban(d, &k[i], rule, f, u, now);
		banned = true;
	}
	return 0;
}

/* A running ban of k known here (decided here or noted from the fleet). */
static bool banned_here(struct detector *d, const struct key *k, uint64_t now)
{
	struct hist *h = table_get(&d->hist, k, false);

	return h && h->until > now;
}

int detector_fleet(struct detector *d, const uint8_t addr[16], const char *user,
		   const struct det_fleet *fig, uint64_t now)
{
	uint32_t max_users, limit;
	struct key k[2], sk;
	uint64_t uh;
	int nk;

	if (!d || !addr || !fig)
		return -EINVAL;
	max_users = min_u32(d->pol.max_users, d->users);
	k[0] = make_key(addr, 128);
	if (allowed(d, &k[0]))
		return 0;
	nk = 1 + v6_key(d, addr, &k[1]);
	uh = user && *user ? user_hash(d, user) : 0;
	limit = min_u32(d->pol.account_max_sources, DET_SOURCES_MAX);
	if (uh && limit) {
		struct key ak = { .plen = 0 };

		memcpy(ak.addr, &uh, sizeof(uh));
		account_fire(d, table_get(&d->acct, &ak, true), user, fig->account_sources, limit, now);
	}
	/* A running ban here is re-armed by the local path (extend()). */
	if (banned_here(d, &k[0], now) || (nk > 1 && banned_here(d, &k[1], now)) ||
	    (subnet_key(d, &k[0], &sk) && banned_here(d, &sk, now)))
		return 0;
	for (int i = 0; i < nk; i++) {
		uint32_t f = i ? fig->pfx_failures : fig->failures;
		uint32_t u = i ? fig->pfx_users : fig->users;
		struct src *s;

		if (f < d->pol.max_failures && (!max_users || u < max_users))
			continue;
		if ((s = table_get(&d->src, &k[i], false)))
			s->nev = s->nusers = 0;	/* as after a local ban: fresh evidence next */
		ban(d, &k[i], i ? R_V6PREFIX : f >= d->pol.max_failures ? R_BRUTE : R_SPRAY, f, u,
		    now);
		break;
	}
	return 0;
}

int detector_note_ban(struct detector *d, const struct det_history *e)
{
	uint32_t rule;
	struct hist *h;
	struct key k;

	if (!d || !e || e->prefix.plen > 128 || !e->bans)
		return -EINVAL;
	for (rule = 0; rule < 4 && strcmp(e->rule, rule_name[rule]); rule++)
		;
	k = make_key(e->prefix.addr, e->prefix.plen);
	h = table_get(&d->hist, &k, true);
	if (!h->bans || e->bans >= h->bans) {
		h->rule = rule < 4 ? rule : R_BRUTE;
		h->last_ban = e->last_ban_ns;
		h->last_dur = e->last_duration_ns;
		h->bans = e->bans;
	}
	if (e->until_ns > h->until)
		h->until = e->until_ns;
	return 0;
}

int detector_success(struct detector *d, const uint8_t addr[16], uint64_t now)
{
	struct key k[2];
	int nk;

	(void)now;
	if (!d || !addr)
		return -EINVAL;
	d->st.successes++;
	if (!d->pol.reset_on_success)
		return 0;
	k[0] = make_key(addr, 128);
	nk = 1 + v6_key(d, addr, &k[1]);
	for (int i = 0; i < nk; i++) {
		struct src *s = table_get(&d->src, &k[i], false);

		if (s)
			s->nev = s->nusers = 0;
	}
	if (d->hooks.reset)
		d->hooks.reset(addr, d->hooks.ctx);
	return 0;
}

/* Read-only twin of table_get(): no LRU move, so a query from a hostile peer
 * cannot keep an entry alive. */
static void *table_peek(const struct table *t, const struct key *k)
{
	uint32_t i = t->bucket[key_hash(t->seed, k) & (t->nbucket - 1)];

	for (; i != NIL; i = t->node[i].hnext)
		if (!memcmp(&t->node[i].key, k, sizeof(*k)))
			return value_at(t, i);
	return NULL;
}

/* Failures inside the window, without dropping the old entries. */
static uint32_t ring_sum(const struct fail_ev *ev, uint32_t nev, uint64_t now, uint64_t window)
{
	uint32_t sum = 0;

	for (uint32_t i = 0; i < nev; i++)
		if (sat_add(ev[i].t, window) > now)
			sum = sum + ev[i].n < sum ? UINT32_MAX : sum + ev[i].n;
	return sum;
}

static bool hist_live(const struct detector *d, const struct key *k, uint64_t now)
{
	const struct hist *h = table_peek(&d->hist, k);

	return h && h->until > now;
}

int detector_query(struct detector *d, const uint8_t addr[16], const char *user, uint64_t now,
		   struct det_query *q)
{
	struct key k[2], sk;
	int nk;

	if (!d || !addr || !q)
		return -EINVAL;
	memset(q, 0, sizeof(*q));
	k[0] = make_key(addr, 128);
	nk = 1 + v6_key(d, addr, &k[1]);
	for (int i = 0; i < nk; i++) {
		struct src *s = table_peek(&d->src, &k[i]);
		uint32_t f, u;

		q->banned |= hist_live(d, &k[i], now);
		if (!s)
			continue;
		f = ring_sum(src_ev(s), s->nev, now, d->pol.window_ns);
		u = set_live(src_users(d, s), s->nusers, now);
		if (f > q->failures)
			q->failures = f;
		if (u > q->users)
			q->users = u;
	}
	if (subnet_key(d, &k[0], &sk))
		q->banned |= hist_live(d, &sk, now);
	if (user && *user && d->pol.account_max_sources) {
		uint64_t uh = user_hash(d, user);
		struct key ak = { .plen = 0 };
		const struct acct *a;

		memcpy(ak.addr, &uh, sizeof(uh));
		a = table_peek(&d->acct, &ak);
		q->account_sources = a ? set_live(a->src, a->n, now) : 0;
		q->account_attacked =
			q->account_sources >= min_u32(d->pol.account_max_sources, d->acct_cap);
	}
	return 0;
}

const struct pol_detect *detector_policy(const struct detector *d)
{
	return &d->pol;
}

/* "90s", "10m", "1h30m", "2d3h" */
static const char *fmt_dur(uint64_t ns, char *buf, size_t len)
{
	uint64_t s = ns / NSEC;

	if (s >= 86400)
		snprintf(buf, len, "%llud%lluh", (unsigned long long)(s / 86400),
			 (unsigned long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, len, "%lluh%llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, len, "%llum%llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else
		snprintf(buf, len, "%llus", (unsigned long long)s);
	return buf;
}

int detector_explain(struct detector *d, const uint8_t addr[16], uint64_t now, char *buf,
		     size_t len)
{
	char a[ADDR_STRLEN], t1[32], t2[32], t3[32];
	struct key k[3];
	size_t o = 0;
	int nk, nsrc;

	if (!d || !addr || !buf || !len)
		return -EINVAL;
	buf[0] = '\0';
	k[0] = make_key(addr, 128);
	nk = nsrc = 1 + v6_key(d, addr, &k[1]);	/* address, IPv6 prefix: counted */
	nk += subnet_key(d, &k[0], &k[nk]);		/* subnet: ban history only */
	for (int i = 0; i < nk && o < len; i++) {
		struct ig_prefix p = prefix_of(&k[i]);
		struct src *s = i < nsrc ? table_get(&d->src, &k[i], false) : NULL;
		struct hist *h = table_get(&d->hist, &k[i], false);
		uint32_t f = s ? ring_add(src_ev(s), &s->nev, d->ring, now, d->pol.window_ns, 0) : 0;
		uint32_t u = s ? set_live(src_users(d, s), s->nusers, now) : 0;

		addr_format(&p, a);
		if (i < nsrc)
			o += snprintf(buf + o, len - o, "%s: %u failure(s), %u distinct user(s) "
				      "in the last %s (ban at %u failures or %u users)\n", a, f, u,
				      fmt_dur(d->pol.window_ns, t1, sizeof(t1)),
				      d->pol.max_failures, d->pol.max_users);
		if (!h || o >= len)
			continue;
		o += snprintf(buf + o, len - o, "%s: banned %u time(s), last by rule %s %s ago "
			     "for %s, %s%s\n", a, h->bans, rule_name[h->rule],
			     fmt_dur(now > h->last_ban ? now - h->last_ban : 0, t1, sizeof(t1)),
			     fmt_dur(h->last_dur, t2, sizeof(t2)),
			     h->until > now ? fmt_dur(h->until - now, t3, sizeof(t3)) : "expired",
			     h->until > now ? " left" : "");
	}
	if (o >= len)
		return -ENOSPC;
	return 0;
}

int detector_history_foreach(struct detector *d,
			     int (*fn)(const struct det_history *h, void *ctx), void *ctx)
{
	if (!d || !fn)
		return -EINVAL;
	for (uint32_t i = 0; i < d->hist.used; i++) {
		struct hist *h = value_at(&d->hist, i);
		struct det_history e = {
			.prefix = prefix_of(&d->hist.node[i].key), .bans = h->bans,
			.last_ban_ns = h->last_ban, .last_duration_ns = h->last_dur,
			.until_ns = h->until,
		};
		int err;

		snprintf(e.rule, sizeof(e.rule), "%s", rule_name[h->rule]);
		if ((err = fn(&e, ctx)))
			return err;
	}
	return 0;
}

int detector_history_restore(struct detector *d, const struct det_history *e)
{
	struct key k;
	struct hist *h;
	uint32_t rule;

	if (!d || !e || e->prefix.plen > 128 || !e->bans)
		return -EINVAL;
	for (rule = 0; rule < 4 && strcmp(e->rule, rule_name[rule]); rule++)
		;
	if (rule == 4)
		return -EINVAL;
	k = make_key(e->prefix.addr, e->prefix.plen);
	h = table_get(&d->hist, &k, true);
	*h = (struct hist){ .bans = e->bans, .rule = rule, .last_ban = e->last_ban_ns,
			    .last_dur = e->last_duration_ns, .until = e->until_ns };
	return 0;
}

void detector_stats(const struct detector *d, struct det_stats *st)
{
	*st = d->st;
	st->evictions = d->src.evictions + d->hist.evictions + d->acct.evictions +
			d->sub.evictions;
	st->sources = d->src.used;
	st->histories = d->hist.used;
	st->accounts = d->acct.used;
	st->subnets = d->sub.used;
}
