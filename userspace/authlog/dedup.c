// SPDX-License-Identifier: GPL-2.0
/* Per-session failure counting (al_dedup, see authlog.h). */
#include <stdlib.h>
#include <string.h>
#include "authlog/authlog.h"
#include "base/hash.h"

struct al_dedup {
	struct hasher *h;	/* random key: session ids cannot be picked to collide */
	uint32_t mask;
	uint64_t clock;
	struct {
		uint64_t key;		/* SipHash of the session id, never 0 */
		uint64_t stamp;		/* last use, 0 = free */
		uint32_t counted;	/* failures already counted */
		bool claimed;		/* counted by the policy server's reports */
	} slot[];
};

#define DEDUP_PROBE 8

struct al_dedup *al_dedup_new(uint32_t capacity)
{
	struct al_dedup *d;
	uint32_t n = 64;

	while (n < capacity && n < (1u << 24))
		n <<= 1;
	d = calloc(1, sizeof(*d) + n * sizeof(d->slot[0]));
	if (!d)
		return NULL;
	d->mask = n - 1;
	d->h = hasher_new(NULL);
	if (!d->h) {
		free(d);
		return NULL;	/* errno from hasher_new */
	}
	return d;
}

void al_dedup_free(struct al_dedup *d)
{
	if (!d)
		return;
	hasher_free(d->h);
	free(d);
}

static uint64_t session_key(struct al_dedup *d, const char *s)
{
	uint64_t h = hasher_sum(d->h, s, strlen(s));

	return h ? h : 1;
}

/*
 * Per session the table keeps the failures counted so far (a high-water
 * mark): an auth-process line adds one, a summary of N adds what N exceeds
 * it by. So "2 auth lines + summary of 3" counts 3, and a proxy's front and
 * back summaries for one session count once.
 */
/* The session's slot, made (in place of the oldest of its probes) if new. */
static uint32_t slot_of(struct al_dedup *d, const char *session)
{
	uint64_t key = session_key(d, session);
	uint32_t i, victim;

	victim = key & d->mask;
	for (i = 0; i < DEDUP_PROBE; i++) {
		uint32_t j = (key + i) & d->mask;

		if (d->slot[j].key == key) {
			victim = j;
			break;
		}
		if (d->slot[j].stamp < d->slot[victim].stamp)
			victim = j;	/* a free slot (stamp 0) or the oldest */
	}
	if (d->slot[victim].key != key) {
		d->slot[victim].key = key;
		d->slot[victim].counted = 0;
		d->slot[victim].claimed = false;
	}
	d->slot[victim].stamp = ++d->clock;
	return victim;
}

void al_dedup_claim(struct al_dedup *d, const char *session)
{
	if (d && session && *session)
		d->slot[slot_of(d, session)].claimed = true;
}

uint32_t al_dedup_count(struct al_dedup *d, const struct al_result *r)
{
	uint32_t victim, add;

	if (r->kind != AL_FAIL)
		return 0;
	if (!d || !r->session[0])
		return r->per_attempt ? 1 : r->attempts;
	victim = slot_of(d, r->session);
	if (d->slot[victim].claimed)
		return 0;
	if (r->per_attempt) {
		if (d->slot[victim].counted < UINT32_MAX)
			d->slot[victim].counted++;
		return 1;
	}
	add = r->attempts > d->slot[victim].counted ? r->attempts - d->slot[victim].counted : 0;
	if (add)
		d->slot[victim].counted = r->attempts;
	return add;
}
