// SPDX-License-Identifier: GPL-2.0
/*
 * The fleet's Redis side (fleet.h): two hiredis async connections inside the
 * daemon's epoll loop, through a small adapter of our own (hiredis 0.14 has
 * none for a bare epoll loop): hiredis asks for read/write interest, we set
 * it on the fd's epoll entry, and the loop calls back into hiredis.
 *
 * Every update is one round trip: a Lua script (EVALSHA) counts a failure
 * and returns the fleet-wide figures; another writes a ban's key and stream
 * entry at once. Scripts are loaded on every connect, ahead of everything
 * else on that connection, so EVALSHA never meets an empty script cache.
 *
 * Redis is a peer like any other: hiredis 0.14 sets no limit on a reply, so
 * ours does (reply_fits, and the read buffer in fleet_ready). A connection
 * that meets an oversized reply is dropped; the stream then reads one entry
 * at a time and steps over the one that alone is too large, and a resync
 * that met one is not repeated on the next connect.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include "base/epsrc.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/log.h"
#include "base/prom.h"
#include "daemon/fleet.h"

#define MAX_INFLIGHT	4096		/* commands awaiting a reply on the command connection */
#define REPLY_TIMEOUT_MS 10000		/* no reply for this long with commands out: reset */
#define CONNECT_TIMEOUT_MS 5000
#define XREAD_BLOCK_MS	5000
#define XREAD_COUNT	256
#define HEARTBEAT_MS	5000
#define HEARTBEAT_TTL_MS 15000
#define BACKOFF_MAX_MS	8000
#define SCAN_COUNT	500
#define COUNT_CAP	1024		/* members kept per counter key */
#define NODES_MAX	64
#define SEEN_MAX	(4u << 20)	/* bans remembered during a resync */
#define PASSWORD_MAX	512
/* One reply from Redis at most (legitimate ones are far smaller: 256
 * stream entries, ~500 keys of a SCAN or MGET): objects, and bytes of
 * strings and arrays summed, or waiting in the read buffer. */
#define REPLY_MAX_OBJECTS 65536
#define REPLY_MAX_BYTES	(4u << 20)

enum { SCRIPT_COUNT, SCRIPT_PUBLISH, SCRIPT_BEAT, SCRIPT_MAX };

/* Counts n failures of a source (and its IPv6 prefix), a user for it, the
 * source for the user; trims each sorted set to the window and COUNT_CAP
 * and lets it expire with the window. Redis's clock, so nodes agree.
 * KEYS: f:src u:src a:user [f:pfx u:pfx]; ARGV: window_ms n id user src cap */
static const char script_count[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local win = tonumber(ARGV[1]); local n = tonumber(ARGV[2]); local cap = tonumber(ARGV[6])\n"
	"local function trim(k)\n"
	"  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - win)\n"
	"  local c = redis.call('ZCARD', k)\n"
	"  if c > cap then redis.call('ZREMRANGEBYRANK', k, 0, c - cap - 1); c = cap end\n"
	"  redis.call('PEXPIRE', k, win)\n"
	"  return c\n"
	"end\n"
	"local function add(kf, ku)\n"
	"  for i = 1, n do redis.call('ZADD', kf, now, ARGV[3] .. ':' .. i) end\n"
	"  if ARGV[4] ~= '' then redis.call('ZADD', ku, now, ARGV[4]) end\n"
	"  return trim(kf), trim(ku)\n"
	"end\n"
	"local r = {0, 0, 0, 0, 0}\n"
	"r[1], r[2] = add(KEYS[1], KEYS[2])\n"
	"if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], now, ARGV[5]); r[5] = trim(KEYS[3]) end\n"
	"if #KEYS >= 5 then r[3], r[4] = add(KEYS[4], KEYS[5]) end\n"
	"return r\n";

/* A ban: its key (NX: only if absent, for refills) and counters cleared
 * (the next ban needs fresh evidence), or its deletion; then the stream
 * entry. KEYS: ban:cidr bans f:cidr u:cidr; ARGV: op value px maxlen nx
 * field value ... Returns 1, or 0 when NX found the key. */
static const char script_publish[] =
	"if ARGV[1] == 'add' then\n"
	"  local a = {'SET', KEYS[1], ARGV[2]}\n"
	"  if tonumber(ARGV[3]) > 0 then table.insert(a, 'PX'); table.insert(a, ARGV[3]) end\n"
	"  if ARGV[5] == '1' then table.insert(a, 'NX') end\n"
	"  if not redis.call(unpack(a)) then return 0 end\n"
	"  redis.call('DEL', KEYS[3], KEYS[4])\n"
	"else\n"
	"  redis.call('DEL', KEYS[1])\n"
	"end\n"
	"local x = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*'}\n"
	"for i = 6, #ARGV do table.insert(x, ARGV[i]) end\n"
	"redis.call(unpack(x))\n"
	"return 1\n";

/* Heartbeat: this node's key and name, then every live node's value.
 * KEYS: node:NAME nodes; ARGV: name value ttl_ms node-key-prefix max */
static const char script_beat[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
	"redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 86400000)\n"
	"local out = {}\n"
	"for _, n in ipairs(redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[5]) - 1)) do\n"
	"  local v = redis.call('GET', ARGV[4] .. n)\n"
	"  if v then table.insert(out, n); table.insert(out, v) end\n"
	"end\n"
	"table.insert(out, tostring(now))\n"
	"return out\n";

static const char *const scripts[SCRIPT_MAX] = { script_count, script_publish, script_beat };

enum op_kind { OP_COUNT, OP_BAN, OP_RESET, OP_KINDS };
static const char *const op_names[OP_KINDS] = { "failure", "ban", "reset" };

struct op {
	uint8_t kind;
	bool nx;			/* OP_BAN: refill, only if Redis lacks it */
	union {
		struct {
			uint8_t addr[16];
			uint32_t attempts;
			char uh[17];	/* user hash, hex; "" = no user */
			char user[FLEET_USER_MAX];
		} c;
		struct fleet_ban b;
	};
};

struct conn {
	struct ep_src src;
	struct fleet *f;
	redisAsyncContext *ac;
	const char *name;
	uint32_t events;
	bool in_epoll, connected, up;
	uint64_t started_ms, last_reply_ms, next_try_ms, backoff_ms;
	uint32_t inflight;
	/* The reply being read (reply_fits), and whether one was too large */
	uint32_t reply_objects;
	size_t reply_bytes;
	bool oversized;
};

struct node_seen {
	char name[POL_FLEET_NAME_LEN];
	uint64_t ts_ms, queue, lag_ms, published;
};

struct fleet {
	struct pol_fleet pol;
	struct pol_detect det;
	struct fleet_hooks h;
	int epfd;
	char node[POL_FLEET_NAME_LEN];
	char password[PASSWORD_MAX];
	char sha[SCRIPT_MAX][41];
	char epoch[96], epoch_mine[96];	/* Redis's life as last seen; what we would write */
	struct hasher *uhash;		/* user names, under a key all nodes share */
	struct conn cmd, stream;
	uint64_t seq;			/* member ids of our counter entries */
	/* Queue while Redis is away: a ring of queue_max ops. */
	struct op *q;
	uint32_t qhead, qlen;
	/* Stream position: resume from here after a reconnect. */
	char last_id[48];
	bool have_id, id_pending, xread_out, closing;
	/* After an oversized XREAD reply: entries read one at a time, and the
	 * one that alone was too large stepped over (on_next_id) */
	uint32_t xread_single;
	bool skip_pending, resync_skip;
	uint64_t lag_ms;
	/* Resync in progress (SCAN over PREFIX:ban:*). */
	uint32_t resync_gen;
	bool resyncing, refill;
	struct ig_prefix *seen;
	size_t nseen, seen_cap;
	uint64_t beat_ms;
	struct node_seen nodes[NODES_MAX];
	int nnodes;
	uint64_t redis_now_ms;
	/* Counters (metrics, status). */
	uint64_t dropped[OP_KINDS], refused[FLEET_R_MAX], published, received_add, received_del,
		 counted, figures, reconnects, errors, resyncs, refilled, own_skipped, oversized;
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* ---- the epoll adapter ---------------------------------------------------- */

static void ep_update(struct conn *c)
{
	struct epoll_event ev = { .events = c->events, .data.ptr = &c->src };
	int fd = c->ac ? c->ac->c.fd : -1;

	if (fd < 0)
		return;
	if (c->events && !c->in_epoll) {
		if (!epoll_ctl(c->f->epfd, EPOLL_CTL_ADD, fd, &ev))
			c->in_epoll = true;
	} else if (!c->events && c->in_epoll) {
		epoll_ctl(c->f->epfd, EPOLL_CTL_DEL, fd, NULL);
		c->in_epoll = false;
	} else if (c->in_epoll) {
		epoll_ctl(c->f->epfd, EPOLL_CTL_MOD, fd, &ev);
	}
}

static void ad_add_read(void *p) { struct conn *c = p; c->events |= EPOLLIN; ep_update(c); }
static void ad_del_read(void *p) { struct conn *c = p; c->events &= ~EPOLLIN; ep_update(c); }
static void ad_add_write(void *p) { struct conn *c = p; c->events |= EPOLLOUT; ep_update(c); }
static void ad_del_write(void *p) { struct conn *c = p; c->events &= ~EPOLLOUT; ep_update(c); }

/* hiredis frees the context after this: forget it. */
static void ad_cleanup(void *p)
{
	struct conn *c = p;

	c->events = 0;
	ep_update(c);
	c->in_epoll = false;
	c->ac = NULL;
	c->connected = c->up = false;
	c->inflight = 0;
}

/* hiredis's reply builders, and ours that count each reply against the
 * limits first: a NULL makes the reader fail, and hiredis disconnect. */
static const redisReplyObjectFunctions *hiredis_fns;
static redisReplyObjectFunctions capped_fns;

/* Noted now: by the time the connection is gone, its pending callbacks
 * (run with no reply) have ended the resync. */
static void mark_oversized(struct conn *c)
{
	c->oversized = true;
	if (c == &c->f->cmd && c->f->resyncing)
		c->f->resync_skip = true;
}

static bool reply_fits(const redisReadTask *t, size_t bytes)
{
	struct conn *c = t->privdata;

	if (!t->parent)		/* a new reply begins */
		c->reply_objects = 0, c->reply_bytes = 0;
	c->reply_objects++;
	c->reply_bytes += bytes;
	if (c->reply_objects <= REPLY_MAX_OBJECTS && c->reply_bytes <= REPLY_MAX_BYTES)
		return true;
	mark_oversized(c);
	return false;
}

static void *cap_string(const redisReadTask *t, char *str, size_t len)
{
	return reply_fits(t, len) ? hiredis_fns->createString(t, str, len) : NULL;
}

static void *cap_array(const redisReadTask *t, int n)
{
	/* The pointer array hiredis allocates up front (n is Redis's word) */
	return reply_fits(t, n > 0 ? (size_t)n * sizeof(void *) : 0) ?
	       hiredis_fns->createArray(t, n) : NULL;
}

static void *cap_integer(const redisReadTask *t, long long v)
{
	return reply_fits(t, 0) ? hiredis_fns->createInteger(t, v) : NULL;
}

static void *cap_nil(const redisReadTask *t)
{
	return reply_fits(t, 0) ? hiredis_fns->createNil(t) : NULL;
}

static void cap_replies(struct conn *c)
{
	redisReader *r = c->ac->c.reader;

	if (!hiredis_fns) {
		hiredis_fns = r->fn;
		capped_fns = *r->fn;
		capped_fns.createString = cap_string;
		capped_fns.createArray = cap_array;
		capped_fns.createInteger = cap_integer;
		capped_fns.createNil = cap_nil;
	}
	r->fn = &capped_fns;
	r->privdata = c;
}

void fleet_ready(struct fleet *f, void *src, uint32_t events)
{
	struct conn *c = src;

	(void)f;
	/* A read may end in the context being freed (EOF): look again. */
	if (c->ac && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		redisAsyncHandleRead(c->ac);
	/* A bulk string is kept whole before any builder sees it. */
	if (c->ac && c->ac->c.reader->len - c->ac->c.reader->pos > REPLY_MAX_BYTES) {
		mark_oversized(c);
		redisAsyncFree(c->ac);	/* on_disconnect says why */
	}
	if (c->ac && (events & (EPOLLOUT | EPOLLERR)))
		redisAsyncHandleWrite(c->ac);
}

/* ---- connections ---------------------------------------------------------- */

static void schedule_retry(struct conn *c)
{
	uint64_t now = mono_ms();

	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 500;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
	c->next_try_ms = now + c->backoff_ms;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct conn *c = ac->ev.data;

	if (status != REDIS_OK) {
		pr_warn("fleet: couldn't connect to Redis %s (%s): %s", c->f->pol.redis, c->name,
			ac->errstr);
		schedule_retry(c);
		return;
	}
	c->connected = true;
	c->last_reply_ms = mono_ms();
}

/* The connection was dropped for an oversized reply: what to do instead
 * of reading it again after the reconnect. */
static void after_oversized(struct fleet *f, struct conn *c)
{
	c->oversized = false;
	f->oversized++;
	pr_warn("fleet: Redis %s sent the %s connection a reply over the limits (%u objects, "
		"%u bytes): dropped it", f->pol.redis, c->name, REPLY_MAX_OBJECTS, REPLY_MAX_BYTES);
	/* The stream connection reads nothing but entries: read them one at
	 * a time, and step over the next one if alone it is too large. */
	if (c == &f->stream) {
		if (f->xread_single)
			f->skip_pending = true;
		f->xread_single = XREAD_COUNT;
	}
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct conn *c = ac->ev.data;

	if (c->oversized)
		after_oversized(c->f, c);
	else if (status != REDIS_OK)
		pr_warn("fleet: lost Redis %s (%s): %s", c->f->pol.redis, c->name, ac->errstr);
	if (c == &c->f->stream)
		c->f->xread_out = false;
	else
		c->f->resyncing = false;
	schedule_retry(c);
}

/* Drop the connection now: pending callbacks run with a NULL reply. Never
 * from inside a reply callback of c (hiredis defers that itself). */
static void conn_reset(struct conn *c, const char *why)
{
	if (!c->ac)
		return;
	pr_warn("fleet: resetting the %s connection to Redis %s: %s", c->name, c->f->pol.redis, why);
	redisAsyncFree(c->ac);	/* runs ad_cleanup */
	schedule_retry(c);
}

static int cmd_argv(struct conn *c, redisCallbackFn *fn, void *priv, int argc, const char **argv,
		    const size_t *len)
{
	if (!c->ac || redisAsyncCommandArgv(c->ac, fn, priv, argc, argv, len) != REDIS_OK)
		return -EIO;
	/* The reply clock starts with the first command after a quiet spell:
	 * a connection idle for minutes has not been waiting for minutes. */
	if (fn && !c->inflight++)
		c->last_reply_ms = mono_ms();
	return 0;
}

static void got_reply(struct conn *c)
{
	if (c->inflight)
		c->inflight--;
	c->last_reply_ms = mono_ms();
}

static bool reply_error(struct fleet *f, const redisReply *r, const char *what)
{
	if (r->type != REDIS_REPLY_ERROR)
		return false;
	f->errors++;
	pr_warn("fleet: Redis refused %s: %.*s", what, (int)(r->len > 200 ? 200 : r->len), r->str);
	return true;
}

static void flush_queue(struct fleet *f);
static void start_resync(struct fleet *f);
static void xread_next(struct fleet *f);

static void on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	redisReply *r = reply;

	(void)priv;
	if (!r)
		return;
	got_reply(c);
	if (reply_error(c->f, r, "AUTH")) {
		/* Wrong password: retrying soon would only hammer Redis. */
		c->backoff_ms = BACKOFF_MAX_MS / 2;
		redisAsyncDisconnect(ac);
	}
}

static void on_script_load(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;

	(void)priv;
	if (!reply)
		return;
	got_reply(c);
	reply_error(c->f, reply, "SCRIPT LOAD");
}

static void on_last_id(redisAsyncContext *ac, void *reply, void *priv);

/* SET epoch NX GET answered: nil means Redis had none of our keys (first
 * fleet start, or a Redis that restarted empty), and so does an epoch other
 * than the one this node saw before (another node came back first and wrote
 * a new one): refill it with our bans, and lift nothing for being absent
 * from it (the nodes that decided those bans may not have refilled yet). */
static void on_epoch(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	struct fleet *f = c->f;
	redisReply *r = reply;
	const char *argv[] = { "XREVRANGE", NULL, "+", "-", "COUNT", "1" };
	char key[128];

	(void)priv;
	if (!r)
		return;
	got_reply(c);
	if (reply_error(f, r, "SET epoch"))
		return;
	c->up = true;
	c->backoff_ms = 0;
	f->refill = r->type == REDIS_REPLY_NIL ||
		    (r->type == REDIS_REPLY_STRING && f->epoch[0] &&
		     (r->len != strlen(f->epoch) || memcmp(r->str, f->epoch, r->len)));
	if (r->type == REDIS_REPLY_NIL)
		snprintf(f->epoch, sizeof(f->epoch), "%s", f->epoch_mine);
	else if (r->type == REDIS_REPLY_STRING && r->len < sizeof(f->epoch))
		snprintf(f->epoch, sizeof(f->epoch), "%.*s", (int)r->len, r->str);
	f->beat_ms = 0;		/* a heartbeat at the next tick */
	pr_info("fleet: connected to Redis %s as node '%s'%s", f->pol.redis, f->node,
		f->refill ? " (no fleet keys there: refilling it with this node's bans)" : "");
	if (f->refill && f->pol.share_bans)
		f->h.own_bans(f->h.ctx, f);
	if (!f->have_id && f->pol.share_bans) {
		/* Where the stream ends now: entries after it are read, those
		 * before are in the keys the resync reads. */
		snprintf(key, sizeof(key), "%s:bans", f->pol.prefix);
		argv[1] = key;
		if (!cmd_argv(c, on_last_id, NULL, 6, argv, NULL))
			f->id_pending = true;
	}
	if (f->pol.share_bans && f->resync_skip) {
		pr_warn("fleet: not resyncing this time: the last resync met an oversized reply");
		f->resync_skip = false;
	} else if (f->pol.share_bans) {
		start_resync(f);
	}
	flush_queue(f);
}

static void conn_start(struct fleet *f, struct conn *c)
{
	const char *path = f->pol.redis + 5;
	char host[64], *colon;
	int port;

	c->started_ms = mono_ms();
	c->connected = c->up = false;
	c->inflight = 0;
	if (!strncmp(f->pol.redis, "unix:", 5)) {
		c->ac = redisAsyncConnectUnix(path);
	} else {
		/* The policy holds ADDR:PORT or [IPv6]:PORT, checked. */
		snprintf(host, sizeof(host), "%.63s", f->pol.redis[0] == '[' ? f->pol.redis + 1 :
			 f->pol.redis);
		colon = strrchr(host, ':');
		if (!colon)
			return;
		*colon = '\0';
		port = atoi(colon + 1);
		if (colon > host && colon[-1] == ']')
			colon[-1] = '\0';
		c->ac = redisAsyncConnect(host, port);
	}
	if (!c->ac || c->ac->err) {
		pr_warn("fleet: couldn't start a connection to %s: %s", f->pol.redis,
			c->ac ? c->ac->errstr : "out of memory");
		if (c->ac)
			redisAsyncFree(c->ac);
		c->ac = NULL;
		schedule_retry(c);
		return;
	}
	f->reconnects++;
	cap_replies(c);
	c->ac->ev.data = c;
	c->ac->ev.addRead = ad_add_read;
	c->ac->ev.delRead = ad_del_read;
	c->ac->ev.addWrite = ad_add_write;
	c->ac->ev.delWrite = ad_del_write;
	c->ac->ev.cleanup = ad_cleanup;
	redisAsyncSetConnectCallback(c->ac, on_connect);
	redisAsyncSetDisconnectCallback(c->ac, on_disconnect);
	/* Commands queue in hiredis until the connect completes; the first
	 * one asks for write interest, which is how the connect is noticed. */
	if (f->password[0]) {
		const char *argv[] = { "AUTH", f->password };

		cmd_argv(c, on_auth, NULL, 2, argv, NULL);
	}
	if (c == &f->cmd) {
		char key[128];
		const char *argv[] = { "SET", key, f->epoch_mine, "NX", "GET" };

		for (int i = 0; i < SCRIPT_MAX; i++) {
			const char *sl[] = { "SCRIPT", "LOAD", scripts[i] };

			cmd_argv(c, on_script_load, NULL, 3, sl, NULL);
		}
		snprintf(key, sizeof(key), "%s:epoch", f->pol.prefix);
		snprintf(f->epoch_mine, sizeof(f->epoch_mine), "%s %llu", f->node,
			 (unsigned long long)wall_ms());
		cmd_argv(c, on_epoch, NULL, 5, argv, NULL);
	} else {
		c->up = true;	/* the stream's first XREAD follows, from fleet_tick */
		c->backoff_ms = 0;
		xread_next(f);
	}
}

/* ---- the queue ------------------------------------------------------------ */

static void enqueue(struct fleet *f, const struct op *o)
{
	if (f->closing || f->qlen >= f->pol.queue_max) {
		f->dropped[o->kind]++;
		return;
	}
	f->q[(f->qhead + f->qlen++) % f->pol.queue_max] = *o;
}

static int send_op(struct fleet *f, const struct op *o);

static void flush_queue(struct fleet *f)
{
	while (f->qlen && f->cmd.up && f->cmd.inflight < MAX_INFLIGHT) {
		struct op o = f->q[f->qhead];

		f->qhead = (f->qhead + 1) % f->pol.queue_max;
		f->qlen--;
		if (send_op(f, &o)) {
			enqueue(f, &o);
			break;
		}
	}
}

static void submit(struct fleet *f, const struct op *o)
{
	/* Order matters little, but the queue goes first so a publication
	 * made while Redis was away does not overtake an older one. */
	flush_queue(f);
	if (f->qlen || !f->cmd.up || f->cmd.inflight >= MAX_INFLIGHT || send_op(f, o))
		enqueue(f, o);
}

/* ---- counting ------------------------------------------------------------- */

static bool int_at(const redisReply *r, size_t i, uint32_t *out)
{
	if (i >= r->elements || r->element[i]->type != REDIS_REPLY_INTEGER ||
	    r->element[i]->integer < 0)
		return false;
	*out = r->element[i]->integer > UINT32_MAX ? UINT32_MAX : (uint32_t)r->element[i]->integer;
	return true;
}

static void on_count(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	struct fleet *f = c->f;
	redisReply *r = reply;
	struct op *o = priv;
	struct det_fleet fig = {};

	if (!r) {		/* connection gone: this figure is lost, the count too */
		f->dropped[OP_COUNT]++;
		free(o);
		return;
	}
	got_reply(c);
	if (!reply_error(f, r, "a failure count") && r->type == REDIS_REPLY_ARRAY &&
	    int_at(r, 0, &fig.failures) && int_at(r, 1, &fig.users) &&
	    int_at(r, 2, &fig.pfx_failures) && int_at(r, 3, &fig.pfx_users) &&
	    int_at(r, 4, &fig.account_sources)) {
		f->figures++;
		f->h.figures(f->h.ctx, o->c.addr, o->c.user[0] ? o->c.user : NULL, &fig);
	}
	free(o);
	flush_queue(f);
}

static void key_of(const struct fleet *f, char *buf, size_t len, const char *kind,
		   const struct ig_prefix *p)
{
	char a[ADDR_STRLEN];

	snprintf(buf, len, "%s:%s:%s", f->pol.prefix, kind, addr_format(p, a));
}

static int send_count(struct fleet *f, const struct op *o)
{
	char k[5][160], win[24], n[12], id[96], src[ADDR_STRLEN], cap[12];
	const char *argv[3 + 5 + 6];
	struct ig_prefix p = { .plen = 128 }, px;
	int nk = 3, argc = 0;
	struct op *copy;

	memcpy(p.addr, o->c.addr, 16);
	key_of(f, k[0], sizeof(k[0]), "f", &p);
	key_of(f, k[1], sizeof(k[1]), "u", &p);
	snprintf(k[2], sizeof(k[2]), "%s:a:%s", f->pol.prefix, o->c.uh[0] ? o->c.uh : "-");
	if (!addr_is_v4(p.addr) && f->det.v6_plen && f->det.v6_plen < 128) {
		px = p;
		px.plen = f->det.v6_plen;
		addr_mask(px.addr, px.plen);
		key_of(f, k[3], sizeof(k[3]), "f", &px);
		key_of(f, k[4], sizeof(k[4]), "u", &px);
		nk = 5;
	}
	snprintf(win, sizeof(win), "%llu", (unsigned long long)(f->det.window_ns / 1000000));
	snprintf(n, sizeof(n), "%u", o->c.attempts > 64 ? 64 : o->c.attempts);
	snprintf(id, sizeof(id), "%s:%llu", f->node, (unsigned long long)++f->seq);
	snprintf(cap, sizeof(cap), "%d", COUNT_CAP);
	addr_format_host(o->c.addr, src);
	argv[argc++] = "EVALSHA";
	argv[argc++] = f->sha[SCRIPT_COUNT];
	argv[argc++] = nk == 5 ? "5" : "3";
	for (int i = 0; i < nk; i++)
		argv[argc++] = k[i];
	argv[argc++] = win;
	argv[argc++] = n;
	argv[argc++] = id;
	argv[argc++] = o->c.uh;
	argv[argc++] = src;
	argv[argc++] = cap;
	if (!(copy = malloc(sizeof(*copy))))
		return -ENOMEM;
	*copy = *o;
	if (cmd_argv(&f->cmd, on_count, copy, argc, argv, NULL)) {
		free(copy);
		return -EIO;
	}
	f->counted++;
	return 0;
}

/* User names hashed under a key every node derives alike (from the prefix
 * and the password): the fleet compares users without Redis holding names. */
static int user_hash(struct fleet *f, const char *user, char out[17])
{
	char low[FLEET_USER_MAX];
	size_t n = strnlen(user, sizeof(low) - 1);

	for (size_t i = 0; i < n; i++)
		low[i] = user[i] >= 'A' && user[i] <= 'Z' ? user[i] + 32 : user[i];
	snprintf(out, 17, "%016llx", (unsigned long long)hasher_sum(f->uhash, low, n));
	return 0;
}

void fleet_failure(struct fleet *f, const uint8_t addr[16], const char *user, uint32_t attempts)
{
	struct op o = { .kind = OP_COUNT };

	if (!f || !f->pol.share_failures || !attempts)
		return;
	memcpy(o.c.addr, addr, 16);
	o.c.attempts = attempts;
	if (user && *user) {
		user_hash(f, user, o.c.uh);
		snprintf(o.c.user, sizeof(o.c.user), "%s", user);
	}
	submit(f, &o);
}

/* ---- publishing ----------------------------------------------------------- */

static void on_publish(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	struct fleet *f = c->f;
	redisReply *r = reply;
	struct op *o = priv;

	if (!r) {		/* not known to have landed: send it again later */
		enqueue(f, o);
		free(o);
		return;
	}
	got_reply(c);
	if (!reply_error(f, r, "a ban") && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
		f->published++;
		f->refilled += o->nx;
	}
	free(o);
	flush_queue(f);
}

static int send_ban(struct fleet *f, const struct op *o)
{
	const struct fleet_ban *b = &o->b;
	char k[4][160], px[24], maxlen[16], *val = NULL;
	const char *argv[7 + 5 + 2 * FLEET_FIELDS_MAX];
	json_t *j = fleet_ban_json(b), *v;
	const char *name;
	int argc = 0, err = -ENOMEM;
	struct op *copy = NULL;
	uint64_t now = wall_ms();

	if (!j || !(val = json_dumps(j, JSON_COMPACT)) || !(copy = malloc(sizeof(*copy))))
		goto out;
	*copy = *o;
	key_of(f, k[0], sizeof(k[0]), "ban", &b->prefix);
	snprintf(k[1], sizeof(k[1]), "%s:bans", f->pol.prefix);
	key_of(f, k[2], sizeof(k[2]), "f", &b->prefix);
	key_of(f, k[3], sizeof(k[3]), "u", &b->prefix);
	/* An add whose end passed while it waited is dropped, not sent. */
	if (!b->del && b->exp_ms && b->exp_ms <= now + 1) {
		err = 0;
		goto out;
	}
	snprintf(px, sizeof(px), "%llu", b->del || !b->exp_ms ? 0ULL :
		 (unsigned long long)(b->exp_ms - now));
	snprintf(maxlen, sizeof(maxlen), "%u", f->pol.stream_max);
	argv[argc++] = "EVALSHA";
	argv[argc++] = f->sha[SCRIPT_PUBLISH];
	argv[argc++] = "4";
	for (int i = 0; i < 4; i++)
		argv[argc++] = k[i];
	argv[argc++] = b->del ? "del" : "add";
	argv[argc++] = val;
	argv[argc++] = px;
	argv[argc++] = maxlen;
	argv[argc++] = o->nx ? "1" : "0";
	json_object_foreach(j, name, v) {
		argv[argc++] = name;
		argv[argc++] = json_string_value(v);
	}
	if ((err = cmd_argv(&f->cmd, on_publish, copy, argc, argv, NULL)))
		goto out;
	copy = NULL;
out:
	free(copy);
	free(val);
	json_decref(j);
	return err;
}

static void on_reset(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;

	(void)priv;
	if (!reply) {
		c->f->dropped[OP_RESET]++;
		return;
	}
	got_reply(c);
	reply_error(c->f, reply, "a counter reset");
	flush_queue(c->f);
}

/* DEL of the address's (and its IPv6 prefix's) failure and user counters. */
static int send_reset(struct fleet *f, const struct op *o)
{
	char k[4][160];
	const char *argv[5] = { "DEL", k[0], k[1], k[2], k[3] };
	struct ig_prefix p = { .plen = 128 };
	int argc = 3;

	memcpy(p.addr, o->c.addr, 16);
	key_of(f, k[0], sizeof(k[0]), "f", &p);
	key_of(f, k[1], sizeof(k[1]), "u", &p);
	if (!addr_is_v4(p.addr) && f->det.v6_plen && f->det.v6_plen < 128) {
		p.plen = f->det.v6_plen;
		addr_mask(p.addr, p.plen);
		key_of(f, k[2], sizeof(k[2]), "f", &p);
		key_of(f, k[3], sizeof(k[3]), "u", &p);
		argc = 5;
	}
	return cmd_argv(&f->cmd, on_reset, NULL, argc, argv, NULL);
}

static int send_op(struct fleet *f, const struct op *o)
{
	return o->kind == OP_COUNT ? send_count(f, o) : o->kind == OP_BAN ? send_ban(f, o) :
	       send_reset(f, o);
}

void fleet_reset(struct fleet *f, const uint8_t addr[16])
{
	struct op o = { .kind = OP_RESET };

	if (!f || !f->pol.share_failures)
		return;
	memcpy(o.c.addr, addr, 16);
	submit(f, &o);
}

void fleet_publish(struct fleet *f, const struct fleet_ban *b)
{
	struct op o = { .kind = OP_BAN };

	if (!f || !f->pol.share_bans)
		return;
	o.b = *b;
	snprintf(o.b.node, sizeof(o.b.node), "%s", f->node);
	submit(f, &o);
}

void fleet_refill(struct fleet *f, const struct fleet_ban *b)
{
	struct op o = { .kind = OP_BAN, .nx = true };

	o.b = *b;
	snprintf(o.b.node, sizeof(o.b.node), "%s", f->node);
	submit(f, &o);
}

/* ---- consuming ------------------------------------------------------------ */

static struct fleet_check check_now(const struct fleet *f)
{
	return (struct fleet_check){ .min_plen4 = f->pol.min_plen4, .min_plen6 = f->pol.min_plen6,
				     .now_ms = wall_ms(),
				     .max_ttl_ms = POL_DURATION_MAX_NS / 1000000 };
}

static void seen_add(struct fleet *f, const struct ig_prefix *p)
{
	struct ig_prefix *n;

	if (!f->resyncing || f->nseen == SEEN_MAX)
		return;
	if (f->nseen == f->seen_cap) {
		size_t cap = f->seen_cap ? 2 * f->seen_cap : 1024;

		if (!(n = realloc(f->seen, cap * sizeof(*n))))
			return;
		f->seen = n;
		f->seen_cap = cap;
	}
	f->seen[f->nseen++] = *p;
}

/* One validated entry or key from another node: enforce or lift it. */
static void apply(struct fleet *f, const struct fleet_ban *b, int r)
{
	if (r == FLEET_OK && !b->del && f->h.is_allowed(f->h.ctx, &b->prefix))
		r = FLEET_R_ALLOWED;
	if (r != FLEET_OK) {
		f->refused[r]++;
		return;
	}
	if (!b->del)
		seen_add(f, &b->prefix);
	if (!strcmp(b->node, f->node)) {
		f->own_skipped++;	/* our own: already in force here */
		return;
	}
	if (b->del) {
		f->received_del++;
		f->h.unban(f->h.ctx, &b->prefix);
	} else {
		f->received_add++;
		f->h.ban(f->h.ctx, b);
	}
}

/* "MS-SEQ", both decimal: a stream id we may send back to Redis. */
static bool id_ok(const char *s, size_t n, uint64_t *ms)
{
	const char *dash = memchr(s, '-', n);
	uint64_t v = 0;

	if (!dash || dash == s || dash - s > 15 || n - (dash - s) - 1 == 0 ||
	    n - (dash - s) - 1 > 20 || n >= 48)
		return false;
	for (const char *p = s; p < s + n; p++) {
		if (p == dash)
			continue;
		if (*p < '0' || *p > '9')
			return false;
		if (p < dash)
			v = v * 10 + (uint64_t)(*p - '0');
	}
	*ms = v;
	return true;
}

static void on_last_id(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	struct fleet *f = c->f;
	redisReply *r = reply, *e;
	uint64_t ms;

	(void)priv;
	f->id_pending = false;
	if (!r)
		return;
	got_reply(c);
	if (reply_error(f, r, "XREVRANGE") || r->type != REDIS_REPLY_ARRAY)
		return;
	if (!r->elements) {
		snprintf(f->last_id, sizeof(f->last_id), "0-0");
		f->have_id = true;
		return;
	}
	e = r->element[0];
	if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
	    e->element[0]->type == REDIS_REPLY_STRING &&
	    id_ok(e->element[0]->str, e->element[0]->len, &ms)) {
		memcpy(f->last_id, e->element[0]->str, e->element[0]->len);
		f->last_id[e->element[0]->len] = '\0';
		f->have_id = true;
	}
}

/* One stream entry: [id, [field, value, ...]]. */
static void stream_entry(struct fleet *f, const redisReply *e, const struct fleet_check *chk)
{
	struct fleet_field fl[FLEET_FIELDS_MAX];
	const redisReply *kv;
	struct fleet_ban b;
	uint64_t ms, now;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    !id_ok(e->element[0]->str, e->element[0]->len, &ms)) {
		f->refused[FLEET_R_MALFORMED]++;
		return;
	}
	/* Move past it whatever it holds: a bad entry is skipped, once. */
	memcpy(f->last_id, e->element[0]->str, e->element[0]->len);
	f->last_id[e->element[0]->len] = '\0';
	now = wall_ms();
	f->lag_ms = now > ms ? now - ms : 0;
	kv = e->element[1];
	if (kv->type != REDIS_REPLY_ARRAY || kv->elements % 2 ||
	    kv->elements > 2 * FLEET_FIELDS_MAX) {
		f->refused[kv->type == REDIS_REPLY_ARRAY && kv->elements > 2 * FLEET_FIELDS_MAX ?
			   FLEET_R_SIZE : FLEET_R_MALFORMED]++;
		return;
	}
	for (size_t i = 0; i < kv->elements; i++)
		if (kv->element[i]->type != REDIS_REPLY_STRING) {
			f->refused[FLEET_R_MALFORMED]++;
			return;
		}
	for (size_t i = 0; i < kv->elements / 2; i++)
		fl[i] = (struct fleet_field){ kv->element[2 * i]->str, kv->element[2 * i + 1]->str,
					      kv->element[2 * i]->len, kv->element[2 * i + 1]->len };
	apply(f, &b, fleet_entry_parse(fl, kv->elements / 2, chk, &b));
}

/* The ID of the entry after ARGV[1], without the entry itself: the one
 * that alone made an oversized reply (EVAL: rare, and no script cache). */
static const char script_next_id[] =
	"local r = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', 2)\n"
	"for _, e in ipairs(r) do if e[1] ~= ARGV[1] then return e[1] end end\n"
	"return false\n";

static void on_next_id(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	struct fleet *f = c->f;
	redisReply *r = reply;
	uint64_t ms;

	(void)priv;
	f->xread_out = false;
	if (!r)
		return;
	got_reply(c);
	f->skip_pending = false;
	if (r->type == REDIS_REPLY_STRING && id_ok(r->str, r->len, &ms)) {
		memcpy(f->last_id, r->str, r->len);
		f->last_id[r->len] = '\0';
		f->refused[FLEET_R_SIZE]++;
		pr_warn("fleet: stepped over stream entry %s: too large", f->last_id);
	} else if (!reply_error(f, r, "EVAL") && r->type != REDIS_REPLY_NIL) {
		f->refused[FLEET_R_MALFORMED]++;
	}
	xread_next(f);
}

static void on_xread(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	struct fleet *f = c->f;
	redisReply *r = reply, *s;
	struct fleet_check chk = check_now(f);

	(void)priv;
	f->xread_out = false;
	if (!r)
		return;
	got_reply(c);
	if (reply_error(f, r, "XREAD")) {
		redisAsyncDisconnect(ac);
		return;
	}
	/* nil: the block timed out. Else [[stream, [entry, ...]]]. */
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
	    (s = r->element[0]->element[1])->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < s->elements; i++)
			stream_entry(f, s->element[i], &chk);
		if (f->xread_single)
			f->xread_single--;
	} else if (r->type != REDIS_REPLY_NIL) {
		f->refused[FLEET_R_MALFORMED]++;
	} else {
		f->xread_single = 0;	/* nothing more: whatever was too large is gone */
	}
	xread_next(f);
}

static void xread_next(struct fleet *f)
{
	char key[128], block[16], count[16];
	const char *argv[] = { "XREAD", "COUNT", count, "BLOCK", block, "STREAMS", key,
			       f->last_id };

	if (!f->stream.up || f->xread_out || !f->have_id)
		return;
	snprintf(key, sizeof(key), "%s:bans", f->pol.prefix);
	if (f->skip_pending) {
		const char *ev[] = { "EVAL", script_next_id, "1", key, f->last_id };

		if (!cmd_argv(&f->stream, on_next_id, NULL, 5, ev, NULL))
			f->xread_out = true;
		return;
	}
	snprintf(block, sizeof(block), "%d", XREAD_BLOCK_MS);
	snprintf(count, sizeof(count), "%d", f->xread_single ? 1 : XREAD_COUNT);
	if (!cmd_argv(&f->stream, on_xread, NULL, 8, argv, NULL))
		f->xread_out = true;
}

/* ---- resync: SCAN over the ban keys --------------------------------------- */

struct scan_ctx {
	uint32_t gen;
	size_t nkeys;
	char **keys;
	char cursor[24];
};

static void scan_free(struct scan_ctx *s)
{
	for (size_t i = 0; s && i < s->nkeys; i++)
		free(s->keys[i]);
	if (s)
		free(s->keys);
	free(s);
}

static void scan_step(struct fleet *f, const char *cursor);

static int prefix_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ig_prefix));
}

static void resync_done(struct fleet *f)
{
	f->resyncing = false;
	f->resyncs++;
	/* Redis came back empty: our view is the better one, keep it. */
	if (!f->refill) {
		qsort(f->seen, f->nseen, sizeof(*f->seen), prefix_cmp);
		f->h.resynced(f->h.ctx, f->seen, f->nseen);
	}
	free(f->seen);
	f->seen = NULL;
	f->nseen = f->seen_cap = 0;
}

static void on_mget(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	struct fleet *f = c->f;
	struct scan_ctx *s = priv;
	struct fleet_check chk = check_now(f);
	redisReply *r = reply;
	char want[160];

	if (!r || s->gen != f->resync_gen) {
		if (r)
			got_reply(c);
		if (s->gen == f->resync_gen)
			f->resyncing = false;
		scan_free(s);
		return;
	}
	got_reply(c);
	if (!reply_error(f, r, "MGET") && r->type == REDIS_REPLY_ARRAY && r->elements == s->nkeys) {
		for (size_t i = 0; i < r->elements; i++) {
			const redisReply *v = r->element[i];
			struct fleet_ban b;
			int res;

			if (v->type == REDIS_REPLY_NIL)	/* expired since the SCAN */
				continue;
			if (v->type != REDIS_REPLY_STRING) {
				f->refused[FLEET_R_MALFORMED]++;
				continue;
			}
			res = fleet_value_parse(v->str, v->len, &chk, &b);
			/* The key must name what the value bans. */
			if (res == FLEET_OK) {
				key_of(f, want, sizeof(want), "ban", &b.prefix);
				if (b.del || strcmp(want, s->keys[i]))
					res = FLEET_R_MALFORMED;
			}
			apply(f, &b, res);
		}
	}
	scan_step(f, s->cursor);
	scan_free(s);
}

static void on_scan(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	struct fleet *f = c->f;
	redisReply *r = reply, *keys;
	struct scan_ctx *s = priv;
	const char **argv = NULL;

	if (!r || s->gen != f->resync_gen)
		goto drop;
	got_reply(c);
	if (reply_error(f, r, "SCAN") || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(s->cursor) ||
	    (keys = r->element[1])->type != REDIS_REPLY_ARRAY)
		goto drop;
	memcpy(s->cursor, r->element[0]->str, r->element[0]->len);
	s->cursor[r->element[0]->len] = '\0';
	if (!keys->elements) {
		scan_step(f, s->cursor);
		scan_free(s);
		return;
	}
	s->keys = calloc(keys->elements, sizeof(*s->keys));
	argv = calloc(keys->elements + 1, sizeof(*argv));
	if (!s->keys || !argv)
		goto drop;
	argv[0] = "MGET";
	for (size_t i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING || keys->element[i]->len >= 160 ||
		    !(s->keys[i] = strndup(keys->element[i]->str, keys->element[i]->len)))
			goto drop;
		s->nkeys++;
		argv[i + 1] = s->keys[i];
	}
	if (cmd_argv(&f->cmd, on_mget, s, (int)s->nkeys + 1, argv, NULL))
		goto drop;
	free(argv);
	return;
drop:
	if (r)
		f->errors++;
	if (s->gen == f->resync_gen)
		f->resyncing = false;
	free(argv);
	scan_free(s);
}

/* The next SCAN from cursor; NULL starts one, "0" after a reply ends it. */
static void scan_step(struct fleet *f, const char *cursor)
{
	char match[128], count[16];
	const char *argv[] = { "SCAN", cursor ? cursor : "0", "MATCH", match, "COUNT", count };
	struct scan_ctx *s;

	if (cursor && !strcmp(cursor, "0")) {
		resync_done(f);
		return;
	}
	if (!(s = calloc(1, sizeof(*s)))) {
		f->resyncing = false;
		return;
	}
	s->gen = f->resync_gen;
	snprintf(match, sizeof(match), "%s:ban:*", f->pol.prefix);
	snprintf(count, sizeof(count), "%d", SCAN_COUNT);
	if (cmd_argv(&f->cmd, on_scan, s, 6, argv, NULL)) {
		f->resyncing = false;
		scan_free(s);
	}
}

static void start_resync(struct fleet *f)
{
	f->resync_gen++;
	f->resyncing = true;
	f->nseen = 0;
	scan_step(f, NULL);
}

/* ---- heartbeat ------------------------------------------------------------ */

static void on_beat(redisAsyncContext *ac, void *reply, void *priv)
{
	struct conn *c = ac->ev.data;
	struct fleet *f = c->f;
	redisReply *r = reply;
	uint64_t now;

	(void)priv;
	if (!r)
		return;
	got_reply(c);
	if (reply_error(f, r, "the heartbeat") || r->type != REDIS_REPLY_ARRAY || !r->elements ||
	    r->element[r->elements - 1]->type != REDIS_REPLY_STRING)
		return;
	if (sscanf(r->element[r->elements - 1]->str, "%llu", (unsigned long long *)&now) == 1)
		f->redis_now_ms = now;
	f->nnodes = 0;
	for (size_t i = 0; i + 1 < r->elements && f->nnodes < NODES_MAX; i += 2) {
		const redisReply *n = r->element[i], *v = r->element[i + 1];
		struct node_seen *ns = &f->nodes[f->nnodes];
		json_int_t ts = 0, q = 0, lag = 0, pub = 0;
		json_t *j;

		/* Other nodes wrote these: names as the policy allows them,
		 * values a small JSON object of integers, or nothing. */
		if (n->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
		    !n->len || n->len >= sizeof(ns->name) ||
		    strspn(n->str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
		    n->len || v->len > FLEET_VALUE_MAX)
			continue;
		j = json_loadb(v->str, v->len, JSON_REJECT_DUPLICATES, NULL);
		if (json_unpack(j, "{s:I, s?I, s?I, s?I}", "ts", &ts, "queue", &q, "lag_ms", &lag,
				"published", &pub) || ts < 0 || q < 0 || lag < 0 || pub < 0) {
			json_decref(j);
			continue;
		}
		json_decref(j);
		*ns = (struct node_seen){ .ts_ms = ts, .queue = q, .lag_ms = lag, .published = pub };
		memcpy(ns->name, n->str, n->len);
		f->nnodes++;
	}
}

static void heartbeat(struct fleet *f)
{
	char key[160], zkey[128], kpfx[128], ttl[16], max[8], *val;
	const char *argv[10];

	val = json_take_string(json_pack("{s:I, s:I, s:I, s:I}", "ts", (json_int_t)wall_ms(),
				   "queue", (json_int_t)f->qlen, "lag_ms", (json_int_t)f->lag_ms,
				   "published", (json_int_t)f->published));
	if (!val)
		return;
	snprintf(key, sizeof(key), "%s:node:%s", f->pol.prefix, f->node);
	snprintf(zkey, sizeof(zkey), "%s:nodes", f->pol.prefix);
	snprintf(kpfx, sizeof(kpfx), "%s:node:", f->pol.prefix);
	snprintf(ttl, sizeof(ttl), "%d", HEARTBEAT_TTL_MS);
	snprintf(max, sizeof(max), "%d", NODES_MAX);
	argv[0] = "EVALSHA";
	argv[1] = f->sha[SCRIPT_BEAT];
	argv[2] = "2";
	argv[3] = key;
	argv[4] = zkey;
	argv[5] = f->node;
	argv[6] = val;
	argv[7] = ttl;
	argv[8] = kpfx;
	argv[9] = max;
	cmd_argv(&f->cmd, on_beat, NULL, 10, argv, NULL);
	free(val);
}

/* ---- lifecycle ------------------------------------------------------------ */

static void conn_tick(struct fleet *f, struct conn *c, uint64_t now)
{
	if (!c->ac) {
		if (now >= c->next_try_ms && (c == &f->cmd || f->have_id))
			conn_start(f, c);
		return;
	}
	if (!c->connected && now - c->started_ms > CONNECT_TIMEOUT_MS)
		conn_reset(c, "connect timed out");
	else if (c->inflight && now - c->last_reply_ms > REPLY_TIMEOUT_MS +
		 (c == &f->stream ? XREAD_BLOCK_MS : 0))
		conn_reset(c, "no reply");
}

void fleet_tick(struct fleet *f)
{
	uint64_t now = mono_ms();

	if (!f)
		return;
	conn_tick(f, &f->cmd, now);
	if (f->pol.share_bans)
		conn_tick(f, &f->stream, now);
	if (f->stream.up)
		xread_next(f);
	if (f->cmd.up && now - f->beat_ms >= HEARTBEAT_MS) {
		f->beat_ms = now;
		heartbeat(f);
	}
	if (f->cmd.up && !f->have_id && !f->id_pending && f->pol.share_bans) {
		char key[128];
		const char *argv[] = { "XREVRANGE", key, "+", "-", "COUNT", "1" };

		snprintf(key, sizeof(key), "%s:bans", f->pol.prefix);
		if (!cmd_argv(&f->cmd, on_last_id, NULL, 6, argv, NULL))
			f->id_pending = true;
	}
	flush_queue(f);
}

static int sha1_hex(const char *s, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(s, strlen(s), md, &n, EVP_sha1(), NULL) || n != 20)
		return -EIO;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int read_password(struct fleet *f)
{
	char *buf;
	size_t len;
	int err;

	if (!f->pol.password_file[0])
		return 0;
	err = file_read(f->pol.password_file, PASSWORD_MAX, 0, &buf, &len);
	if (err) {
		pr_warn("fleet: couldn't read password_file '%s': %s", f->pol.password_file,
			file_strerror(err));
		return err;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (!len || len >= sizeof(f->password) || memchr(buf, '\0', len)) {
		pr_warn("fleet: password_file '%s': empty, too long or binary", f->pol.password_file);
		free(buf);
		return -EINVAL;
	}
	memcpy(f->password, buf, len);
	f->password[len] = '\0';
	explicit_bzero(buf, len);
	free(buf);
	return 0;
}

static struct hasher *user_hasher(const struct fleet *f)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char in[POL_FLEET_NAME_LEN + PASSWORD_MAX + 32];
	int len = snprintf(in, sizeof(in), "imapguard fleet users\n%s\n%s", f->pol.prefix,
			   f->password);

	if (len < 0 || !EVP_Digest(in, (size_t)len, md, &n, EVP_sha256(), NULL) || n < HASH_KEY_LEN) {
		errno = EIO;
		return NULL;
	}
	explicit_bzero(in, sizeof(in));
	return hasher_new(md);
}

int fleet_open(struct fleet **out, const struct pol_fleet *pol, const struct pol_detect *det,
	       const struct fleet_hooks *hooks, int epfd)
{
	struct fleet *f = calloc(1, sizeof(*f));
	int err = -ENOMEM;

	if (!f)
		return -ENOMEM;
	f->pol = *pol;
	f->det = *det;
	f->h = *hooks;
	f->epfd = epfd;
	f->cmd = (struct conn){ .src = { SRC_FLEET, &f->cmd }, .f = f, .name = "command" };
	f->stream = (struct conn){ .src = { SRC_FLEET, &f->stream }, .f = f, .name = "stream" };
	if (pol->node[0])
		snprintf(f->node, sizeof(f->node), "%s", pol->node);
	else if (gethostname(f->node, sizeof(f->node) - 1) ||
		 strspn(f->node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
		 strlen(f->node) || !f->node[0])
		snprintf(f->node, sizeof(f->node), "node-%ld", gethostid());
	for (int i = 0; i < SCRIPT_MAX; i++)
		if (sha1_hex(scripts[i], f->sha[i]))
			goto fail;
	if ((err = read_password(f)))
		goto fail;
	err = -ENOMEM;
	if (!(f->uhash = user_hasher(f)) || !(f->q = calloc(pol->queue_max, sizeof(*f->q))))
		goto fail;
	pr_info("fleet: node '%s', Redis %s, sharing%s%s", f->node, pol->redis,
		pol->share_bans ? " bans" : "", pol->share_failures ? " failures" : "");
	*out = f;
	return 0;
fail:
	fleet_close(f);
	return err;
}

bool fleet_changed(const struct fleet *f, const struct pol_fleet *pol,
		   const struct pol_detect *det)
{
	return memcmp(&f->pol, pol, sizeof(*pol)) || f->det.window_ns != det->window_ns ||
	       f->det.v6_plen != det->v6_plen;
}

void fleet_close(struct fleet *f)
{
	if (!f)
		return;
	/* Pending callbacks run with NULL replies and free their contexts;
	 * queued ops go (the new fleet, if any, starts afresh). */
	f->closing = true;
	if (f->cmd.ac)
		redisAsyncFree(f->cmd.ac);
	if (f->stream.ac)
		redisAsyncFree(f->stream.ac);
	hasher_free(f->uhash);
	free(f->q);
	free(f->seen);
	explicit_bzero(f->password, sizeof(f->password));
	free(f);
}

const char *fleet_node(const struct fleet *f)
{
	return f->node;
}

/* ---- status and metrics --------------------------------------------------- */

json_t *fleet_status_json(struct fleet *f)
{
	json_t *o, *nodes = json_array(), *drop = json_object(), *ref = json_object();
	uint64_t now = f->redis_now_ms ? f->redis_now_ms : wall_ms();

	for (int i = 0; nodes && i < f->nnodes; i++)
		json_array_append_new(nodes, json_pack("{s:s, s:b, s:I, s:I, s:I, s:I}",
			"node", f->nodes[i].name, "self", !strcmp(f->nodes[i].name, f->node),
			"last_seen_ms_ago", (json_int_t)(now > f->nodes[i].ts_ms ?
							now - f->nodes[i].ts_ms : 0),
			"queue", (json_int_t)f->nodes[i].queue, "lag_ms", (json_int_t)f->nodes[i].lag_ms,
			"published", (json_int_t)f->nodes[i].published));
	for (int i = 0; drop && i < OP_KINDS; i++)
		json_object_set_new(drop, op_names[i], json_integer(f->dropped[i]));
	for (int i = 1; ref && i < FLEET_R_MAX; i++)
		json_object_set_new(ref, fleet_refusal_name(i), json_integer(f->refused[i]));
	o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
		      " s:I, s:I, s:I, s:I, s:o, s:o, s:o}",
		      "node", f->node, "redis", f->pol.redis, "prefix", f->pol.prefix,
		      "connected", f->cmd.up, "stream_connected", f->stream.up,
		      "resyncing", f->resyncing, "last_id", f->have_id ? f->last_id : "",
		      "stream_lag_ms", (json_int_t)f->lag_ms, "queue", (json_int_t)f->qlen,
		      "queue_max", (json_int_t)f->pol.queue_max,
		      "published", (json_int_t)f->published,
		      "received_add", (json_int_t)f->received_add,
		      "received_del", (json_int_t)f->received_del,
		      "failures_sent", (json_int_t)f->counted,
		      "figures_received", (json_int_t)f->figures, "reconnects", (json_int_t)f->reconnects,
		      "errors", (json_int_t)f->errors, "oversized", (json_int_t)f->oversized,
		      "dropped", drop, "refused", ref,
		      "nodes", nodes);
	return o;
}

void fleet_metrics(struct fleet *f, FILE *out)
{
	prom_u64(out, "imapguard_fleet_connected", "gauge", "Connected to the fleet's Redis (1/0).",
		 f->cmd.up);
	prom_u64(out, "imapguard_fleet_stream_lag_ms", "gauge",
		 "Age of the last ban stream entry when read.", f->lag_ms);
	prom_u64(out, "imapguard_fleet_queue_length", "gauge", "Updates waiting for Redis.", f->qlen);
	prom_head(out, "imapguard_fleet_dropped_total", "counter",
		  "Updates lost: queue full or connection gone.");
	for (int i = 0; i < OP_KINDS; i++)
		prom_labelled(out, "imapguard_fleet_dropped_total", "kind", op_names[i], f->dropped[i]);
	prom_head(out, "imapguard_fleet_refused_total", "counter",
		  "Entries from Redis refused, per reason.");
	for (int i = 1; i < FLEET_R_MAX; i++)
		prom_labelled(out, "imapguard_fleet_refused_total", "reason", fleet_refusal_name(i),
			      f->refused[i]);
	prom_u64(out, "imapguard_fleet_bans_published_total", "counter",
		 "Bans and lifts written to Redis.", f->published);
	prom_head(out, "imapguard_fleet_bans_received_total", "counter",
		  "Bans and lifts from other nodes applied.");
	prom_labelled(out, "imapguard_fleet_bans_received_total", "op", "add", f->received_add);
	prom_labelled(out, "imapguard_fleet_bans_received_total", "op", "del", f->received_del);
	prom_u64(out, "imapguard_fleet_failures_sent_total", "counter",
		 "Failures sent to the shared counters.", f->counted);
	prom_u64(out, "imapguard_fleet_reconnects_total", "counter", "Connections to Redis started.",
		 f->reconnects);
	prom_u64(out, "imapguard_fleet_errors_total", "counter", "Error replies from Redis.",
		 f->errors);
	prom_u64(out, "imapguard_fleet_oversized_total", "counter",
		 "Connections dropped for a reply over the limits.", f->oversized);
}
