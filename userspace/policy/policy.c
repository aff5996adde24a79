// SPDX-License-Identifier: GPL-2.0
/*
 * Policy file parser. libinih splits lines into key = value pairs; types,
 * ranges, cross-key rules and line numbers are ours. inih reads through our
 * reader callback because the Debian build passes no line number to the
 * handler, silently splits over-long lines, truncates long section names and
 * says nothing about a section without keys: the reader sees every line first.
 */
#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <openssl/evp.h>
#include "base/file.h"
#include "base/hash.h"
#include "policy/policy.h"


#define LIMIT_MAX	16777216u
#define COUNT_MAX	1000000u
#define MAX_KEYS	16
#define MAX_SECTS	(6 + IG_MAX_PORTS + POL_MAX_AUTHLOG + 1 + 1 + 1)	/* ... [crowdsec], [authpolicy] */
#define NAME_LEN	80
#define DIGITS		"0123456789"
#define SEPS		", \t"

struct seen {
	char name[NAME_LEN];
	int line;
};

struct ctx;

struct section {
	const char *name;
	int (*open)(struct ctx *c, const char *arg);	/* NULL: no argument */
	int (*key)(struct ctx *c, const char *k, const char *v);	/* -ENOENT: unknown */
	int (*close)(struct ctx *c);
};

struct ctx {
	struct policy *pol;
	const char *buf;		/* the whole file: read once, hashed, fed to inih */
	size_t len, pos;
	int line;			/* line last handed to inih */
	const struct section *sect;	/* NULL before the first header */
	char sect_name[NAME_LEN];
	int sect_line;
	struct pol_port *port;
	struct pol_authlog *alog;
	struct seen keys[MAX_KEYS];	/* keys set in the current section */
	int nkeys;
	const char *key;		/* key being parsed, for messages */
	struct seen sects[MAX_SECTS];
	int nsects;
	const struct pol_feed_hook *hook;	/* NULL: feeds are not checked */
	int nfeeds;			/* deny_file keys read so far */
	bool failed;
	int err_at;			/* line being processed at the first error */
	int ret;			/* -errno for I/O errors, else -EINVAL */
	char msg[POL_ERR_LEN];
};

static const char *const action_names[] = { "none", "pass", "drop", "reject", "redirect",
					     "starttls", NULL };
static const char *const starttls_mode_names[] = { "enforce", "log", NULL };
static const char *const mode_names[] = { "auto", "native", "generic", "tc", NULL };
static const char *const scope_names[] = { "protected", "all", NULL };
static const char *const access_names[] = { "open", "grant", NULL };
static const char *const format_names[] = { "auto", "dovecot", "cyrus", "courier", "uwimap", NULL };

/* Only the first error is kept: inih goes on calling us after one. */
static int vfail(struct ctx *c, const char *file, int line, bool where,
		 const char *fmt, va_list ap)
{
	char what[POL_ERR_LEN];
	int n;

	if (c->failed)
		return -EINVAL;
	c->failed = true;
	c->err_at = c->line;
	vsnprintf(what, sizeof(what), fmt, ap);
	n = snprintf(c->msg, sizeof(c->msg), "%s:%d: %s", file, line, what);
	if (n < 0 || (size_t)n >= sizeof(c->msg) || !where || !c->sect)
		return -EINVAL;
	if (c->key)
		snprintf(c->msg + n, sizeof(c->msg) - n, " (key '%s' in [%s])", c->key, c->sect_name);
	else
		snprintf(c->msg + n, sizeof(c->msg) - n, " (in [%s])", c->sect_name);
	return -EINVAL;
}

static int __attribute__((format(printf, 3, 4)))
fail(struct ctx *c, int line, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = vfail(c, c->pol->file, line, true, fmt, ap);
	va_end(ap);
	return err;
}

/* An error in another file (deny_file) names that file and its line. */
static int __attribute__((format(printf, 4, 5)))
fail_in(struct ctx *c, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = vfail(c, file, line, false, fmt, ap);
	va_end(ap);
	return err;
}

static int key_line(const struct ctx *c, const char *key)
{
	for (int i = 0; i < c->nkeys; i++)
		if (!strcmp(c->keys[i].name, key))
			return c->keys[i].line;
	return 0;
}

/* A cross-key error found after the section was read names the key's line. */
static int __attribute__((format(printf, 3, 4)))
fail_key(struct ctx *c, const char *key, const char *fmt, ...)
{
	va_list ap;
	int err;

	c->key = key;
	va_start(ap, fmt);
	err = vfail(c, c->pol->file, key_line(c, key), true, fmt, ap);
	va_end(ap);
	c->key = NULL;
	return err;
}

static int nomem(struct ctx *c)
{
	fail(c, c->line, "out of memory");
	c->ret = -ENOMEM;
	return -ENOMEM;
}

/* ---- small value parsers ---- */

static int lookup(const char *s, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

/* Next item of a list separated by commas and/or blanks; NULL at the end. */
static const char *next_item(const char **s, size_t *n)
{
	const char *p = *s + strspn(*s, SEPS);

	if (!*p)
		return NULL;
	*n = strcspn(p, SEPS);
	*s = p + *n;
	return p;
}

static const char *skip_space(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

int parse_action(const char *s, uint8_t *action)
{
	int i = lookup(s, action_names);

	if (i <= IG_ACT_NONE)
		return -EINVAL;
	*action = (uint8_t)i;
	return 0;
}

const char *action_name(uint8_t action)
{
	return action <= IG_ACT_STARTTLS ? action_names[action] : "?";
}

int parse_mode(const char *s, int *mode)
{
	int i = lookup(s, mode_names);

	if (i < 0)
		return -EINVAL;
	*mode = i;	/* 0 auto, then IG_MODE_* in order */
	return 0;
}

const char *mode_name(int mode)
{
	return mode >= 0 && mode <= IG_MODE_TC ? mode_names[mode] : "?";
}

static bool ifname_ok(const char *s, size_t n)
{
	if (!n || n >= IG_IFNAME_LEN || (n == 1 && s[0] == '.') || (n == 2 && !memcmp(s, "..", 2)))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]) || strchr("/:,", s[i]))
			return false;
	return true;
}

/* ---- key = value setters: 0, or -EINVAL after recording the error ---- */

static int get_uint(struct ctx *c, const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t n;

	if (parse_num(v, strlen(v), &n) || n < min || n > max)
		return fail(c, c->line, "expected an integer from %u to %u, got '%s'", min, max, v);
	*out = (uint32_t)n;
	return 0;
}

static int get_plen(struct ctx *c, const char *v, uint8_t max, uint8_t *out)
{
	uint32_t n;

	if (get_uint(c, v, 1, max, &n))
		return -EINVAL;
	*out = (uint8_t)n;
	return 0;
}

/* "V4, V6" prefix lengths. */
static int get_plens(struct ctx *c, const char *v, uint8_t *p4, uint8_t *p6)
{
	const char *s = v, *it;
	uint64_t x[2];
	size_t n;
	int i = 0;

	while ((it = next_item(&s, &n)) && i < 2 && !parse_num(it, n, &x[i]))
		i++;
	if (it || i != 2 || x[0] < 1 || x[0] > 32 || x[1] < 1 || x[1] > 128)
		return fail(c, c->line, "expected 'V4, V6' prefix lengths (1..32, 1..128), got '%s'", v);
	*p4 = (uint8_t)x[0];
	*p6 = (uint8_t)x[1];
	return 0;
}

/* A SYN budget's prefix lengths. IPv6 ones stop at /64: a host owns its
 * /64, so longer ones would let it rotate addresses into fresh budgets (and
 * the fast path keys buckets by the first 64 bits). */
static int get_bucket_plens(struct ctx *c, const char *v, uint8_t *p4, uint8_t *p6)
{
	int err = get_plens(c, v, p4, p6);

	if (!err && *p6 > 64)
		return fail(c, c->line, "IPv6 length %u is longer than 64: a host owns a whole /64, "
			    "so budgets per longer prefix are easy to escape", *p6);
	return err;
}

static int get_duration(struct ctx *c, const char *v, uint64_t min, uint64_t *out)
{
	uint64_t ns;

	if (parse_duration_ns(v, &ns))
		return fail(c, c->line, "invalid duration '%s' (e.g. 90, 500ms, 30s, 10m, 1h30m, 7d, 1w)", v);
	if (ns < min)
		return fail(c, c->line, "duration must be greater than 0");
	if (ns > POL_DURATION_MAX_NS)
		return fail(c, c->line, "duration '%s' is longer than a year (365d)", v);
	*out = ns;
	return 0;
}

static int get_choice(struct ctx *c, const char *v, const char *const *names, int *out)
{
	char expect[128] = "";
	int i = lookup(v, names);

	if (i >= 0) {
		*out = i;
		return 0;
	}
	for (i = 0; names[i]; i++)
		snprintf(expect + strlen(expect), sizeof(expect) - strlen(expect), "%s%s",
			 i ? "|" : "", names[i]);
	return fail(c, c->line, "invalid value '%s' (expected %s)", v, expect);
}

static int get_bool(struct ctx *c, const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i]) || !strcasecmp(v, no[i])) {
			*out = !strcasecmp(v, yes[i]);
			return 0;
		}
	}
	return fail(c, c->line, "expected yes|no|true|false|on|off|1|0, got '%s'", v);
}

/* Plain decimal (strtod would take "inf", hex and the locale's comma). */
static int get_factor(struct ctx *c, const char *v, double *out)
{
	size_t il = strspn(v, DIGITS), fl = 0;
	double x, scale = 0.1;
	uint64_t ip;

	if (v[il] == '.')
		fl = strspn(v + il + 1, DIGITS);
	if (parse_num(v, il, &ip) || (v[il] && (v[il] != '.' || !fl || v[il + 1 + fl])))
		return fail(c, c->line, "expected a decimal number, got '%s'", v);
	x = ip <= 1000 ? (double)ip : 1001;
	for (size_t i = 0; i < fl; i++, scale /= 10)
		x += (v[il + 1 + i] - '0') * scale;
	if (x < 1.0 || x > 1000.0)
		return fail(c, c->line, "must be from 1 to 1000, got '%s'", v);
	*out = x;
	return 0;
}

static int get_ifname(struct ctx *c, const char *v, char out[IG_IFNAME_LEN])
{
	if (!ifname_ok(v, strlen(v)))
		return fail(c, c->line, "invalid interface name '%s'", v);
	strcpy(out, v);
	return 0;
}

static int get_abspath(struct ctx *c, const char *v, char *out, size_t size)
{
	if (v[0] != '/')
		return fail(c, c->line, "'%s' is not an absolute path", v);
	if (strlen(v) >= size)
		return fail(c, c->line, "path too long (max %zu characters)", size - 1);
	strcpy(out, v);
	return 0;
}

/*
 * "N/s", "N/m" or "N/h" -> nanoseconds per token. Without an explicit burst,
 * allow two seconds' worth of tokens (at least one).
 */
static int get_rate(struct ctx *c, const char *v, uint64_t *interval, uint32_t *burst,
		    const char *burst_key)
{
	const char *slash = strchr(v, '/');
	uint64_t n, unit_s = 0, b;

	if (slash && slash[1] && !slash[2])
		unit_s = slash[1] == 's' ? 1 : slash[1] == 'm' ? 60 : slash[1] == 'h' ? 3600 : 0;
	if (!unit_s || parse_num(v, slash - v, &n) || !n)
		return fail(c, c->line, "invalid rate '%s' (expected N/s, N/m or N/h, N >= 1)", v);
	if (n > unit_s * NS_PER_SEC)
		return fail(c, c->line, "rate '%s' is above one per nanosecond", v);
	*interval = unit_s * NS_PER_SEC / n;
	if (!key_line(c, burst_key)) {
		b = (2 * n + unit_s - 1) / unit_s;
		*burst = (uint32_t)(b > COUNT_MAX ? COUNT_MAX : b);
	}
	return 0;
}

static int list_add(struct pol_list *l, const struct ig_prefix *p)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct ig_prefix *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *p;
	return 0;
}

/* Parse one list item; on error *why says what is wrong with it. */
static int cidr_parse(const char *s, size_t n, struct ig_prefix *p, const char **why)
{
	char buf[ADDR_STRLEN];

	*why = "invalid address or prefix";
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!addr_parse(buf, p, false))
		return 0;
	/* Parses with host bits allowed: "10.1.2.3/8" is a typo, name it. */
	if (!addr_parse(buf, p, true))
		*why = "host bits set";
	return -EINVAL;
}

static int get_cidrs(struct ctx *c, const char *v, struct pol_list *l)
{
	struct ig_prefix p;
	const char *it, *why;
	size_t n;

	while ((it = next_item(&v, &n))) {
		if (cidr_parse(it, n, &p, &why))
			return fail(c, c->line, "%.*s: %s", (int)n, it, why);
		if (list_add(l, &p))
			return nomem(c);
	}
	return 0;
}

static const char *next_line(const char *buf, size_t len, size_t *pos, size_t *n)
{
	const char *s = buf + *pos, *nl = memchr(s, '\n', len - *pos);

	*n = nl ? (size_t)(nl - s) : len - *pos;
	*pos += *n + (nl != NULL);
	return s;
}

/* Relative to the policy file's directory, so a policy tree can be moved. */
static int resolve_path(struct ctx *c, const char *v, char out[PATH_MAX])
{
	const char *slash = strrchr(c->pol->file, '/');
	int n;

	if (!*v)
		return fail(c, c->line, "empty path");
	if (v[0] == '/' || !slash)
		n = snprintf(out, PATH_MAX, "%s", v);
	else
		n = snprintf(out, PATH_MAX, "%.*s/%s", (int)(slash - c->pol->file), c->pol->file, v);
	if (n < 0 || n >= PATH_MAX)
		return fail(c, c->line, "path too long");
	return 0;
}

/* One prefix per line; '#' starts a comment. */
static int deny_line(struct ctx *c, const char *path, int line, const char *s, size_t n)
{
	const char *hash = memchr(s, '#', n), *why;
	struct ig_prefix p;

	if (hash)
		n = hash - s;
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (isspace((unsigned char)s[i]))
			return fail_in(c, path, line, "expected one address or prefix per line");
	/* The line itself is never quoted: deny_file may name a file the
	 * reader of this message must not see (a symlink to a secret). */
	if (cidr_parse(s, n, &p, &why))
		return fail_in(c, path, line, "%s", why);
	return list_add(&c->pol->deny, &p) ? nomem(c) : 0;
}

static int check_feed(struct ctx *c, const char *v, const char *path, const char *buf,
		      size_t len)
{
	struct pol_feed f = { .index = c->nfeeds - 1, .value = v, .path = path };
	char why[POL_ERR_LEN / 2] = "refused";
	unsigned int n = 0;

	if (EVP_Digest(buf, len, f.sha256, &n, EVP_sha256(), NULL) != 1 || n != sizeof(f.sha256))
		return nomem(c);
	if (c->hook->feed(c->hook->ctx, &f, why, sizeof(why))) {
		fail(c, c->line, "deny_file '%s': %s", path, why);
		c->ret = -EBADMSG;
		return -EBADMSG;
	}
	return 0;
}

static int get_deny_file(struct ctx *c, const char *v)
{
	char path[PATH_MAX], *buf;
	size_t len, pos = 0, n;
	int err, line = 0;

	if (resolve_path(c, v, path))
		return -EINVAL;
	err = file_read(path, POL_MAX_DENY_FILE, 0, &buf, &len);
	if (err) {
		fail(c, c->line, "cannot read '%s': %s", path, file_strerror(err));
		c->ret = err;
		return err;
	}
	/* Checked before a line is parsed: the bytes checked are the bytes used. */
	c->nfeeds++;
	if (c->hook && (err = check_feed(c, v, path, buf, len))) {
		free(buf);
		return err;
	}
	while (!err && pos < len) {
		const char *s = next_line(buf, len, &pos, &n);

		err = deny_line(c, path, ++line, s, n);
	}
	free(buf);
	return err;
}

/* ---- sections ---- */

static int port_key(struct ctx *c, const char *k, const char *v)
{
	struct pol_port *p = c->port;

	if (!strcmp(k, "action"))
		return parse_action(v, &p->action) ? fail(c, c->line,
			"invalid action '%s' (expected pass|drop|reject|redirect|starttls)", v) : 0;
	if (!strcmp(k, "starttls_mode")) {
		int i = 0, err = get_choice(c, v, starttls_mode_names, &i);

		p->starttls_mode = (uint8_t)i;
		return err;
	}
	if (!strcmp(k, "redirect_to"))
		return get_ifname(c, v, p->redirect_to);
	if (!strcmp(k, "access")) {
		int i = 0, err = get_choice(c, v, access_names, &i);

		p->access = (uint8_t)i;
		return err;
	}
	if (!strcmp(k, "allow"))
		return get_cidrs(c, v, &p->allow);
	if (!strcmp(k, "syn_rate"))
		return get_rate(c, v, &p->syn_interval_ns, &p->syn_burst, "syn_burst");
	if (!strcmp(k, "syn_burst"))
		return get_uint(c, v, 1, COUNT_MAX, &p->syn_burst);
	if (!strcmp(k, "source_prefix"))
		return get_bucket_plens(c, v, &p->src_plen4, &p->src_plen6);
	if (!strcmp(k, "subnet_rate"))
		return get_rate(c, v, &p->subnet_interval_ns, &p->subnet_burst, "subnet_burst");
	if (!strcmp(k, "subnet_burst"))
		return get_uint(c, v, 1, COUNT_MAX, &p->subnet_burst);
	if (!strcmp(k, "subnet_prefix"))
		return get_bucket_plens(c, v, &p->sub_plen4, &p->sub_plen6);
	return -ENOENT;
}

static int port_open(struct ctx *c, const char *arg)
{
	struct pol_port *p;
	uint64_t n;

	if (parse_num(arg, strlen(arg), &n) || n < 1 || n > 65535)
		return fail(c, c->line, "invalid port '%s' (expected [port 1..65535])", arg);
	if (c->pol->nports == IG_MAX_PORTS)
		return fail(c, c->line, "too many [port] sections (max %d)", IG_MAX_PORTS);
	snprintf(c->sect_name, sizeof(c->sect_name), "port %u", (unsigned int)n);
	p = &c->pol->ports[c->pol->nports++];
	p->port = (uint16_t)n;
	p->src_plen4 = 32;
	p->src_plen6 = 64;
	p->sub_plen4 = 24;
	p->sub_plen6 = 48;
	c->port = p;
	return 0;
}

static int port_close(struct ctx *c)
{
	struct pol_port *p = c->port;
	bool redirect = p->action == IG_ACT_REDIRECT;
	const char *plen_key = key_line(c, "subnet_prefix") ? "subnet_prefix" : "source_prefix";

	if (!key_line(c, "action"))
		return fail(c, c->sect_line, "missing 'action = pass|drop|reject|redirect|starttls'");
	if (p->action != IG_ACT_STARTTLS && key_line(c, "starttls_mode"))
		return fail_key(c, "starttls_mode", "only valid with action = starttls");
	if (redirect && !key_line(c, "redirect_to"))
		return fail_key(c, "action", "action = redirect needs 'redirect_to = IFNAME'");
	if (!redirect && key_line(c, "redirect_to"))
		return fail_key(c, "redirect_to", "only valid with action = redirect");
	if (!p->syn_interval_ns && key_line(c, "syn_burst"))
		return fail_key(c, "syn_burst", "needs syn_rate");
	if (!p->subnet_interval_ns && key_line(c, "subnet_burst"))
		return fail_key(c, "subnet_burst", "needs subnet_rate");
	/* A subnet bucket must hold whole source buckets; unused defaults don't count. */
	if ((p->subnet_interval_ns || key_line(c, "subnet_prefix")) &&
	    (p->sub_plen4 > p->src_plen4 || p->sub_plen6 > p->src_plen6))
		return fail_key(c, plen_key, "subnet_prefix %u, %u is longer than source_prefix %u, %u",
				p->sub_plen4, p->sub_plen6, p->src_plen4, p->src_plen6);
	return 0;
}

static int lists_key(struct ctx *c, const char *k, const char *v)
{
	struct policy *pol = c->pol;
	int i = 0, err;

	if (!strcmp(k, "allow"))
		return get_cidrs(c, v, &pol->allow);
	if (!strcmp(k, "deny"))
		return get_cidrs(c, v, &pol->deny);
	if (!strcmp(k, "deny_file"))
		return get_deny_file(c, v);
	if (!strcmp(k, "ban_ttl"))
		return get_duration(c, v, 0, &pol->ban_ttl_ns);
	if (strcmp(k, "ban_scope"))
		return -ENOENT;
	err = get_choice(c, v, scope_names, &i);
	pol->ban_scope = (uint32_t)i;
	return err;
}

static int limits_key(struct ctx *c, const char *k, const char *v)
{
	struct policy *pol = c->pol;

	if (!strcmp(k, "max_bans"))
		return get_uint(c, v, 1, LIMIT_MAX, &pol->max_bans);
	if (!strcmp(k, "max_sources"))
		return get_uint(c, v, 1, LIMIT_MAX, &pol->max_sources);
	if (!strcmp(k, "max_deny"))
		return get_uint(c, v, 1, LIMIT_MAX, &pol->max_deny);
	if (!strcmp(k, "max_allow"))
		return get_uint(c, v, 1, LIMIT_MAX, &pol->max_allow);
	if (!strcmp(k, "max_flows"))
		return get_uint(c, v, 1, LIMIT_MAX, &pol->max_flows);
	if (!strcmp(k, "max_grants"))
		return get_uint(c, v, 1, LIMIT_MAX, &pol->max_grants);
	return -ENOENT;
}

static int get_ifnames(struct ctx *c, const char *v)
{
	struct policy *pol = c->pol;
	const char *it;
	size_t n;

	while ((it = next_item(&v, &n))) {
		if (!ifname_ok(it, n))
			return fail(c, c->line, "invalid interface name '%.*s'", (int)n, it);
		for (int i = 0; i < pol->nifaces; i++)
			if (strlen(pol->ifaces[i]) == n && !strncmp(pol->ifaces[i], it, n))
				return fail(c, c->line, "interface '%.*s' listed twice", (int)n, it);
		if (pol->nifaces == POL_MAX_IFACES)
			return fail(c, c->line, "too many interfaces (max %d)", POL_MAX_IFACES);
		memcpy(pol->ifaces[pol->nifaces], it, n);
		pol->ifaces[pol->nifaces++][n] = '\0';
	}
	return 0;
}

static int iface_key(struct ctx *c, const char *k, const char *v)
{
	if (!strcmp(k, "names"))
		return get_ifnames(c, v);
	if (!strcmp(k, "mode"))
		return get_choice(c, v, mode_names, &c->pol->iface_mode);
	return -ENOENT;
}

int parse_hostport(const char *s, struct sockaddr_storage *ss)
{
	const char *colon = strrchr(s, ':');
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	size_t hl;
	char *end;
	long port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return -EINVAL;
	hl = colon - s;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return inet_pton(AF_INET6, host + 1, &s6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -EINVAL;
}

static int daemon_key(struct ctx *c, const char *k, const char *v)
{
	struct policy *pol = c->pol;
	size_t n = strlen(v);

	if (!strcmp(k, "state_file"))
		return get_abspath(c, v, pol->state_file, sizeof(pol->state_file));
	if (!strcmp(k, "control_socket"))	/* bind() limit, not PATH_MAX */
		return get_abspath(c, v, pol->control_socket, sizeof(((struct sockaddr_un *)0)->sun_path));
	if (!strcmp(k, "metrics_listen")) {
		struct sockaddr_storage ss;

		if (n >= sizeof(pol->metrics_listen) || parse_hostport(v, &ss))
			return fail(c, c->line, "invalid metrics_listen '%s' (ADDR:PORT, [IPv6]:PORT)", v);
		strcpy(pol->metrics_listen, v);
		return 0;
	}
	if (strcmp(k, "control_group"))
		return -ENOENT;
	if (!n || n >= sizeof(pol->control_group) || v[0] == '-' ||
	    v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" DIGITS "_.-")])
		return fail(c, c->line, "invalid group name '%s'", v);
	strcpy(pol->control_group, v);
	return 0;
}

static int detect_key(struct ctx *c, const char *k, const char *v)
{
	struct pol_detect *d = &c->pol->detect;

	if (!strcmp(k, "max_failures"))
		return get_uint(c, v, 1, COUNT_MAX, &d->max_failures);
	if (!strcmp(k, "window"))
		return get_duration(c, v, 1, &d->window_ns);
	if (!strcmp(k, "ban_time"))
		return get_duration(c, v, 1, &d->ban_time_ns);
	if (!strcmp(k, "ban_max"))
		return get_duration(c, v, 1, &d->ban_max_ns);
	if (!strcmp(k, "max_users"))
		return get_uint(c, v, 0, COUNT_MAX, &d->max_users);
	if (!strcmp(k, "v6_prefix"))
		return get_plen(c, v, 128, &d->v6_plen);
	if (!strcmp(k, "max_sources"))
		return get_uint(c, v, 0, COUNT_MAX, &d->max_sources);
	if (!strcmp(k, "subnet_prefix"))
		return get_plens(c, v, &d->subnet_plen4, &d->subnet_plen6);
	if (!strcmp(k, "account_max_sources"))
		return get_uint(c, v, 0, COUNT_MAX, &d->account_max_sources);
	if (!strcmp(k, "ban_factor"))
		return get_factor(c, v, &d->ban_factor);
	if (!strcmp(k, "reset_on_success"))
		return get_bool(c, v, &d->reset_on_success);
	if (!strcmp(k, "dry_run"))
		return get_bool(c, v, &d->dry_run);
	return -ENOENT;
}

static int detect_close(struct ctx *c)
{
	const struct pol_detect *d = &c->pol->detect;

	if (d->ban_max_ns < d->ban_time_ns)
		return fail_key(c, key_line(c, "ban_max") ? "ban_max" : "ban_time",
				"ban_max is shorter than ban_time");
	return 0;
}

static const char *const ap_mode_names[] = { "enforce", "log_only", NULL };

static int authpolicy_key(struct ctx *c, const char *k, const char *v)
{
	struct pol_authpolicy *a = &c->pol->authpolicy;
	struct sockaddr_storage ss;
	size_t n = strlen(v);

	if (!strcmp(k, "listen")) {
		if (n >= sizeof(a->listen) || parse_hostport(v, &ss))
			return fail(c, c->line, "invalid listen '%s' (ADDR:PORT, [IPv6]:PORT)", v);
		strcpy(a->listen, v);
		return 0;
	}
	if (!strcmp(k, "api_key_file"))
		return get_abspath(c, v, a->api_key_file, sizeof(a->api_key_file));
	if (!strcmp(k, "api_header")) {
		/* An HTTP token (RFC 9110 5.6.2): it goes into Dovecot's
		 * "Name:value" setting, so no ':' and no blanks. */
		if (!n || n >= sizeof(a->api_header) ||
		    v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" DIGITS
			     "!#$%&'*+-.^_`|~")])
			return fail(c, c->line, "invalid api_header '%s' (an HTTP header name)", v);
		strcpy(a->api_header, v);
		return 0;
	}
	if (!strcmp(k, "mode"))
		return get_choice(c, v, ap_mode_names, &a->mode);
	if (!strcmp(k, "tarpit_max")) {
		if (!strcmp(v, "0")) {
			a->tarpit_max_ns = 0;
			return 0;
		}
		if (get_duration(c, v, 1, &a->tarpit_max_ns))
			return -EINVAL;
		/* Dovecot's reply is whole seconds, and its auth request
		 * gives up after 5 minutes (AUTH_REQUEST_MAX_DELAY_SECS). */
		if (a->tarpit_max_ns < NS_PER_SEC || a->tarpit_max_ns > 300 * NS_PER_SEC)
			return fail(c, c->line, "tarpit_max must be 0 or from 1s to 5m");
		return 0;
	}
	if (!strcmp(k, "known_good"))
		return get_uint(c, v, 1, POL_KNOWN_GOOD_MAX, &a->known_good);
	if (!strcmp(k, "max_connections"))
		return get_uint(c, v, 1, 65536, &a->max_connections);
	if (!strcmp(k, "max_per_ip"))
		return get_uint(c, v, 0, 65536, &a->max_per_ip);
	if (!strcmp(k, "timeout")) {
		if (get_duration(c, v, 1, &a->timeout_ns))
			return -EINVAL;
		if (a->timeout_ns < NS_PER_SEC || a->timeout_ns > 3600 * NS_PER_SEC)
			return fail(c, c->line, "timeout must be from 1s to 1h");
		return 0;
	}
	return -ENOENT;
}

static int authpolicy_close(struct ctx *c)
{
	const struct pol_authpolicy *a = &c->pol->authpolicy;

	if (!a->listen[0])
		return fail(c, c->sect_line, "missing 'listen = ADDR:PORT'");
	if (!a->api_key_file[0])
		return fail(c, c->sect_line, "missing 'api_key_file = FILE' (requests without the key get 401)");
	return 0;
}

static bool name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]))
			return false;
	return n && n < max;
}

static int authlog_open(struct ctx *c, const char *arg)
{
	if (!name_ok(arg, sizeof(c->alog->name)))
		return fail(c, c->line, "invalid authlog name '%s' (1..%zu characters, no blanks)",
			    arg, sizeof(c->alog->name) - 1);
	if (c->pol->nauthlogs == POL_MAX_AUTHLOG)
		return fail(c, c->line, "too many [authlog] sections (max %d)", POL_MAX_AUTHLOG);
	snprintf(c->sect_name, sizeof(c->sect_name), "authlog %s", arg);
	c->alog = &c->pol->authlogs[c->pol->nauthlogs++];
	strcpy(c->alog->name, arg);
	return 0;
}

static int authlog_key(struct ctx *c, const char *k, const char *v)
{
	struct pol_authlog *a = c->alog;
	size_t n = strlen(v);

	if (!strcmp(k, "format"))
		return get_choice(c, v, format_names, &a->format);
	if (strcmp(k, "path") && strcmp(k, "journal"))
		return -ENOENT;
	if (key_line(c, "path") || key_line(c, "journal"))
		return fail(c, c->line, "give either path or journal, not both");
	if (!strcmp(k, "path"))
		return get_abspath(c, v, a->path, sizeof(a->path));
	if (!n || n >= sizeof(a->journal) ||
	    v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" DIGITS ":_.@\\-")])
		return fail(c, c->line, "invalid systemd unit name '%s'", v);
	strcpy(a->journal, v);
	return 0;
}

static int authlog_close(struct ctx *c)
{
	if (!key_line(c, "path") && !key_line(c, "journal"))
		return fail(c, c->sect_line, "missing 'path = FILE' or 'journal = UNIT'");
	return 0;
}

/* ---- [mfa] ---- */

static int mfa_key(struct ctx *c, const char *k, const char *v)
{
	struct pol_mfa *m = &c->pol->mfa;
	struct sockaddr_storage ss;
	uint8_t p4 = 0, p6 = 0;
	uint32_t port;

	if (!strcmp(k, "secrets"))
		return get_abspath(c, v, m->secrets, sizeof(m->secrets));
	if (!strcmp(k, "grant_ttl"))
		return get_duration(c, v, NS_PER_SEC, &m->grant_ttl_ns);
	if (!strcmp(k, "grant_prefix")) {
		/* Grants are keyed like bans: a host, or an IPv6 /64. */
		if (get_plens(c, v, &p4, &p6))
			return -EINVAL;
		if (p4 != 32 || (p6 != 64 && p6 != 128))
			return fail(c, c->line, "grant_prefix must be '32, 64' or '32, 128'");
		m->grant_plen6 = p6;
		return 0;
	}
	if (!strcmp(k, "knock_port")) {
		if (get_uint(c, v, 0, 65535, &port))
			return -EINVAL;
		m->knock_port = (uint16_t)port;
		return 0;
	}
	if (!strcmp(k, "portal_listen")) {
		if (strlen(v) >= sizeof(m->portal_listen) || parse_hostport(v, &ss))
			return fail(c, c->line, "invalid portal_listen '%s' (ADDR:PORT, [IPv6]:PORT)", v);
		strcpy(m->portal_listen, v);
		return 0;
	}
	if (!strcmp(k, "portal_cert"))
		return get_abspath(c, v, m->portal_cert, sizeof(m->portal_cert));
	if (!strcmp(k, "portal_key"))
		return get_abspath(c, v, m->portal_key, sizeof(m->portal_key));
	if (!strcmp(k, "trusted_proxies"))
		return get_cidrs(c, v, &m->trusted_proxies);
	if (!strcmp(k, "bind_user"))
		return get_bool(c, v, &m->bind_user);
	if (!strcmp(k, "max_code_failures"))
		return get_uint(c, v, 1, COUNT_MAX, &m->max_code_failures);
	if (!strcmp(k, "window"))
		return get_duration(c, v, NS_PER_SEC, &m->window_ns);
	if (!strcmp(k, "lock_time"))
		return get_duration(c, v, NS_PER_SEC, &m->lock_ns);
	if (!strcmp(k, "ban_time")) {
		m->ban_set = true;
		return get_duration(c, v, NS_PER_SEC, &m->ban_ns);
	}
	return -ENOENT;
}

static int mfa_close(struct ctx *c)
{
	const struct pol_mfa *m = &c->pol->mfa;

	if (!m->portal_cert[0] != !m->portal_key[0])
		return fail_key(c, m->portal_cert[0] ? "portal_cert" : "portal_key",
				"portal_cert and portal_key go together");
	if (m->portal_cert[0] && !m->portal_listen[0])
		return fail_key(c, "portal_cert", "needs portal_listen");
	return 0;
}

bool policy_has_grant_ports(const struct policy *pol)
{
	return policy_port_access(pol, 0) == IG_ACCESS_GRANT;
}

int policy_port_access(const struct policy *pol, unsigned int port)
{
	for (int i = 0; i < pol->nports; i++)
		if ((!port || pol->ports[i].port == port) &&
		    pol->ports[i].access == IG_ACCESS_GRANT)
			return IG_ACCESS_GRANT;
	return IG_ACCESS_OPEN;
}

/* ---- [crowdsec] ---- */

static const char *const cs_scope_names[] = { "ip", "range", NULL };

/* A URL we hand to libcurl: http or https only (no file://, no other
 * protocols), a host, nothing libcurl would read as an option or a blank. */
static int get_lapi_url(struct ctx *c, const char *v, char *out, size_t size)
{
	const char *host = !strncmp(v, "http://", 7) ? v + 7 : !strncmp(v, "https://", 8) ? v + 8 : NULL;
	size_t n = strlen(v);

	if (!host || !*host || *host == '/' || *host == ':' || n >= size)
		return fail(c, c->line, "invalid lapi '%s' (expected http://HOST:PORT or https://...)", v);
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)v[i]))
			return fail(c, c->line, "invalid lapi '%s' (blank or control character)", v);
	/* LAPI paths are appended ("/v1/decisions/stream"): no trailing '/'. */
	while (n > 1 && v[n - 1] == '/')
		n--;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

/* "a, b, c" into fixed slots of printable words. */
static int get_words(struct ctx *c, const char *v, char (*out)[POL_CS_FILTER_LEN], int *count)
{
	const char *it;
	size_t n;

	*count = 0;
	while ((it = next_item(&v, &n))) {
		if (*count == POL_CS_MAX_FILTERS)
			return fail(c, c->line, "too many values (max %d)", POL_CS_MAX_FILTERS);
		if (n >= POL_CS_FILTER_LEN)
			return fail(c, c->line, "value '%.*s' too long (max %d characters)", (int)n, it,
				    POL_CS_FILTER_LEN - 1);
		for (size_t i = 0; i < n; i++)
			if (!isgraph((unsigned char)it[i]))
				return fail(c, c->line, "invalid character in '%.*s'", (int)n, it);
		memcpy(out[*count], it, n);
		out[(*count)++][n] = '\0';
	}
	return *count ? 0 : fail(c, c->line, "empty list");
}

static int crowdsec_key(struct ctx *c, const char *k, const char *v)
{
	struct pol_crowdsec *cs = &c->pol->crowdsec;

	if (!strcmp(k, "lapi"))
		return get_lapi_url(c, v, cs->lapi, sizeof(cs->lapi));
	if (!strcmp(k, "api_key_file"))
		return get_abspath(c, v, cs->api_key_file, sizeof(cs->api_key_file));
	if (!strcmp(k, "machine_credentials"))
		return get_abspath(c, v, cs->machine_credentials, sizeof(cs->machine_credentials));
	if (!strcmp(k, "ca_file"))
		return get_abspath(c, v, cs->ca_file, sizeof(cs->ca_file));
	if (!strcmp(k, "push_alerts"))
		return get_bool(c, v, &cs->push_alerts);
	if (!strcmp(k, "origins"))
		return get_words(c, v, cs->origins, &cs->norigins);
	if (!strcmp(k, "scenarios_containing"))
		return get_words(c, v, cs->scenarios, &cs->nscenarios);
	if (!strcmp(k, "update_frequency")) {
		if (get_duration(c, v, 1, &cs->update_ns))
			return -EINVAL;
		if (cs->update_ns < NS_PER_SEC || cs->update_ns > 3600 * NS_PER_SEC)
			return fail(c, c->line, "update_frequency must be between 1s and 1h");
		return 0;
	}
	if (!strcmp(k, "scopes")) {
		char words[POL_CS_MAX_FILTERS][POL_CS_FILTER_LEN];
		int n, i;

		if (get_words(c, v, words, &n))
			return -EINVAL;
		cs->scopes = 0;
		for (int w = 0; w < n; w++) {
			if (get_choice(c, words[w], cs_scope_names, &i))
				return -EINVAL;
			cs->scopes |= i ? POL_CS_SCOPE_RANGE : POL_CS_SCOPE_IP;
		}
		return 0;
	}
	return -ENOENT;
}

static int crowdsec_close(struct ctx *c)
{
	const struct pol_crowdsec *cs = &c->pol->crowdsec;

	if (!cs->lapi[0])
		return fail(c, c->sect_line, "missing 'lapi = http://HOST:PORT'");
	if (cs->ca_file[0] && strncmp(cs->lapi, "https://", 8))
		return fail(c, c->sect_line, "ca_file is for an https lapi (lapi = %s)", cs->lapi);
	return 0;
}

/* Key names and stream fields carry these: no blanks, no ':' (it separates
 * the parts of a key and of a counter's member ids). */
static bool fleet_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n && n < max &&
	       !s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" DIGITS "_.-")];
}

static int fleet_key(struct ctx *c, const char *k, const char *v)
{
	struct pol_fleet *f = &c->pol->fleet;
	static const char *const shares[] = { "bans", "failures", NULL };
	const char *s = v, *it;
	size_t n;
	int i;

	if (!strcmp(k, "redis")) {
		struct sockaddr_storage ss;

		/* An address, never a host name: resolving one would block the loop. */
		if (!strncmp(v, "unix:", 5))
			return get_abspath(c, v + 5, f->redis + 5, sizeof(f->redis) - 5) ? -EINVAL :
			       (memcpy(f->redis, "unix:", 5), 0);
		if (strlen(v) >= 64 || parse_hostport(v, &ss))
			return fail(c, c->line, "invalid redis '%s' (ADDR:PORT, [IPv6]:PORT or unix:/PATH)", v);
		strcpy(f->redis, v);
		return 0;
	}
	if (!strcmp(k, "password_file"))
		return get_abspath(c, v, f->password_file, sizeof(f->password_file));
	if (!strcmp(k, "prefix") || !strcmp(k, "node")) {
		char *out = k[0] == 'p' ? f->prefix : f->node;

		if (!fleet_name_ok(v, POL_FLEET_NAME_LEN))
			return fail(c, c->line, "invalid %s '%s' (1..%d of A-Z a-z 0-9 _ . -)", k, v,
				    POL_FLEET_NAME_LEN - 1);
		strcpy(out, v);
		return 0;
	}
	if (!strcmp(k, "share")) {
		f->share_bans = f->share_failures = false;
		while ((it = next_item(&s, &n))) {
			for (i = 0; shares[i] && (strlen(shares[i]) != n || strncmp(it, shares[i], n)); i++)
				;
			if (!shares[i])
				return fail(c, c->line, "share: expected 'bans' and/or 'failures', got '%.*s'",
					    (int)n, it);
			*(i ? &f->share_failures : &f->share_bans) = true;
		}
		return 0;
	}
	if (!strcmp(k, "fleet_min_prefix"))
		return get_plens(c, v, &f->min_plen4, &f->min_plen6);
	if (!strcmp(k, "queue"))
		return get_uint(c, v, 16, 1000000, &f->queue_max);
	if (!strcmp(k, "stream_max"))
		return get_uint(c, v, 1000, 10000000, &f->stream_max);
	return -ENOENT;
}

static int fleet_close(struct ctx *c)
{
	if (!c->pol->fleet.redis[0])
		return fail(c, c->sect_line, "missing 'redis = ADDR:PORT' or 'redis = unix:/PATH'");
	return 0;
}

static const struct section sections[] = {
	{ "port", port_open, port_key, port_close },
	{ "lists", NULL, lists_key, NULL },
	{ "limits", NULL, limits_key, NULL },
	{ "interface", NULL, iface_key, NULL },
	{ "daemon", NULL, daemon_key, NULL },
	{ "detect", NULL, detect_key, detect_close },
	{ "authlog", authlog_open, authlog_key, authlog_close },
	{ "mfa", NULL, mfa_key, mfa_close },
	{ "authpolicy", NULL, authpolicy_key, authpolicy_close },
	{ "crowdsec", NULL, crowdsec_key, crowdsec_close },
	{ "fleet", NULL, fleet_key, fleet_close },
};

static int close_section(struct ctx *c)
{
	int err = c->sect && c->sect->close ? c->sect->close(c) : 0;

	c->sect = NULL;
	c->nkeys = 0;
	c->port = NULL;
	c->alog = NULL;
	return err;
}

static int claim_section(struct ctx *c)
{
	for (int i = 0; i < c->nsects; i++)
		if (!strcmp(c->sects[i].name, c->sect_name))
			return fail(c, c->line, "duplicate section [%s] (first at line %d)",
				    c->sect_name, c->sects[i].line);
	if (c->nsects < MAX_SECTS) {
		strcpy(c->sects[c->nsects].name, c->sect_name);
		c->sects[c->nsects++].line = c->line;
	}
	return 0;
}

/* "[name arg]" -> the section table entry, canonical name, duplicate check. */
static int open_section(struct ctx *c, const char *text)
{
	size_t wl = strcspn(text, " \t");
	const char *arg = skip_space(text + wl);
	const struct section *s = NULL;

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strlen(sections[i].name) == wl && !strncmp(text, sections[i].name, wl))
			s = &sections[i];
	if (!s || (!s->open && *arg))
		return fail(c, c->line, "unknown section [%s]", text);
	if (s->open && s->open(c, arg))
		return -EINVAL;
	if (!s->open)
		strcpy(c->sect_name, s->name);
	if (claim_section(c))
		return -EINVAL;
	c->sect = s;
	c->sect_line = c->line;
	return 0;
}

static int header_line(struct ctx *c, const char *line)
{
	const char *end = strchr(line, ']'), *rest;
	char text[NAME_LEN];
	size_t n;

	if (close_section(c))
		return -EINVAL;
	if (!end)
		return fail(c, c->line, "missing ']' in section header");
	rest = skip_space(end + 1);
	if (*rest && *rest != ';' && *rest != '#')
		return fail(c, c->line, "unexpected text after section header");
	line = skip_space(line + 1);
	n = end - line;
	while (n && isspace((unsigned char)line[n - 1]))
		n--;
	if (n >= sizeof(text))
		return fail(c, c->line, "section name too long");
	memcpy(text, line, n);
	text[n] = '\0';
	return open_section(c, text);
}

/*
 * inih's line source. Leading blanks are dropped so an indented key is a key,
 * not a continuation of the previous value. NULL stops inih after our error.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct ctx *c = stream;
	const char *s;
	size_t n;

	if (c->failed || c->pos >= c->len)
		return NULL;
	s = next_line(c->buf, c->len, &c->pos, &n);
	c->line++;
	if (n + 2 > (size_t)num) {
		fail(c, c->line, "line too long (max %d characters)", num - 2);
		return NULL;
	}
	if (memchr(s, '\0', n)) {
		fail(c, c->line, "NUL byte in line");
		return NULL;
	}
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	memcpy(str, s, n);
	str[n] = '\0';
	if (*str == '[' && header_line(c, str))
		return NULL;
	return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct ctx *c = user;
	int first, err;

	(void)section;	/* tracked by read_line: inih truncates long names */
	if (c->failed)
		return 0;
	if (!name)	/* section start, if the library reports those */
		return 1;
	if (!c->sect)
		return !fail(c, c->line, "key '%s' outside any section", name);
	first = key_line(c, name);
	/* Lists may continue over several lines; everything else is set once. */
	c->key = name;
	if (first && strcmp(name, "allow") && strcmp(name, "deny"))
		err = fail(c, c->line, "duplicate key, first at line %d", first);
	else
		err = c->sect->key(c, name, value);
	c->key = NULL;
	if (err == -ENOENT)
		return !fail(c, c->line, "unknown key '%s'", name);
	if (!err && !first && c->nkeys < MAX_KEYS) {
		snprintf(c->keys[c->nkeys].name, NAME_LEN, "%s", name);
		c->keys[c->nkeys++].line = c->line;
	}
	return !err;
}

static int prefix_cmp(const void *a, const void *b)
{
	const struct ig_prefix *x = a, *y = b;
	int r = memcmp(x->addr, y->addr, sizeof(x->addr));

	return r ? r : (int)x->plen - (int)y->plen;
}

static void list_dedupe(struct pol_list *l)
{
	size_t n = 0;

	if (!l->n)
		return;
	qsort(l->v, l->n, sizeof(*l->v), prefix_cmp);
	for (size_t i = 1; i < l->n; i++)
		if (prefix_cmp(&l->v[n], &l->v[i]))
			l->v[++n] = l->v[i];
	l->n = n + 1;
}

static int parse(struct ctx *c)
{
	int ret;

	/* inih would skip a UTF-8 BOM itself, but read_line must see '[' first. */
	if (c->len >= 3 && !memcmp(c->buf, "\xef\xbb\xbf", 3))
		c->pos = 3;
	ret = ini_parse_stream(read_line, c, on_key, c);
	/* inih's own error (a line with no '=') wins if it came first. */
	if (ret > 0 && (!c->failed || ret < c->err_at)) {
		c->failed = false;
		c->ret = 0;
		c->sect = NULL;
		return fail(c, ret, "expected '[section]' or 'key = value'");
	}
	if (ret < 0 && !c->failed)
		return nomem(c);
	if (c->failed || close_section(c))
		return -EINVAL;
	if (c->hook && c->hook->done && c->hook->done(c->hook->ctx, c->nfeeds, c->msg,
						       sizeof(c->msg))) {
		c->ret = -EBADMSG;
		return -EBADMSG;
	}
	list_dedupe(&c->pol->allow);
	list_dedupe(&c->pol->deny);
	for (int i = 0; i < c->pol->nports; i++)
		list_dedupe(&c->pol->ports[i].allow);
	return 0;
}

int policy_load_buf(const char *file, char *buf, size_t len, struct policy *pol,
		    char *err, size_t errlen)
{
	return policy_load_feeds(file, buf, len, NULL, pol, err, errlen);
}

int policy_load_feeds(const char *file, char *buf, size_t len, const struct pol_feed_hook *hook,
		      struct policy *pol, char *err, size_t errlen)
{
	struct ctx *c;
	int ret;

	policy_init(pol);
	if (strlen(file) >= sizeof(pol->file)) {
		snprintf(err, errlen, "%s: %s", file, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	c = calloc(1, sizeof(*c));	/* ~3 KB plus sections: keep it off the stack */
	if (!c) {
		snprintf(err, errlen, "%s: %s", file, strerror(ENOMEM));
		return -ENOMEM;
	}
	strcpy(pol->file, file);
	pol->hash = hash_stable(buf, len);
	c->pol = pol;
	c->hook = hook;
	c->buf = buf;
	c->len = len;
	ret = parse(c);
	if (ret) {
		snprintf(err, errlen, "%s", c->msg);
		ret = c->ret ? c->ret : -EINVAL;
		policy_free(pol);
	} else if (errlen) {
		err[0] = '\0';
	}
	free(c);
	return ret;
}

int policy_load(const char *file, struct policy *pol, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int ret;

	policy_init(pol);
	ret = strlen(file) >= sizeof(pol->file) ? -ENAMETOOLONG :
	      file_read(file, POL_MAX_FILE, 0, &buf, &len);
	if (ret) {
		snprintf(err, errlen, "%s: %s", file, file_strerror(ret));
		return ret;
	}
	ret = policy_load_buf(file, buf, len, pol, err, errlen);
	free(buf);
	return ret;
}

static void list_free(struct pol_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

void policy_free(struct policy *pol)
{
	list_free(&pol->allow);
	list_free(&pol->deny);
	for (int i = 0; i < IG_MAX_PORTS; i++)
		list_free(&pol->ports[i].allow);
	list_free(&pol->mfa.trusted_proxies);
}

void policy_init(struct policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->ban_scope = IG_SCOPE_PROTECTED;
	pol->ban_ttl_ns = 3600 * NS_PER_SEC;
	pol->max_bans = 1048576;
	/* The admission filter keeps one-SYN (spoofed) sources out of the LRU:
	 * a quarter of the old 1M holds the same real sources, for a quarter of
	 * the memory and preallocation time (an LRU map is always preallocated). */
	pol->max_sources = 262144;
	pol->max_deny = 1048576;
	pol->max_allow = 65536;
	pol->max_flows = 65536;
	pol->max_grants = 65536;
	strcpy(pol->state_file, "/var/lib/imapguard/state");
	strcpy(pol->control_socket, "/run/imapguard/control.sock");
	pol->detect = (struct pol_detect){
		.max_failures = 5,
		.window_ns = 600 * NS_PER_SEC,
		.ban_time_ns = 600 * NS_PER_SEC,
		.max_users = 4,
		.v6_plen = 64,
		.max_sources = 8,
		.subnet_plen4 = 24,
		.subnet_plen6 = 48,
		.account_max_sources = 10,
		.ban_factor = 2.0,
		.ban_max_ns = 7 * 86400 * NS_PER_SEC,
		.reset_on_success = true,
	};
	/* Field by field, not compound literals: those may leave the padding
	 * of pol_mfa and pol_authpolicy unzeroed, and a policy must compare
	 * equal to itself byte for byte (fuzz_policy's two loads). */
	strcpy(pol->mfa.secrets, "/etc/imapguard/mfa.secrets");
	pol->mfa.grant_ttl_ns = 12 * 3600 * NS_PER_SEC;
	pol->mfa.grant_plen6 = 64;
	pol->mfa.max_code_failures = 5;
	pol->mfa.window_ns = 600 * NS_PER_SEC;
	pol->mfa.lock_ns = 900 * NS_PER_SEC;
	strcpy(pol->authpolicy.api_header, "X-IMAPGuard-Key");
	pol->authpolicy.tarpit_max_ns = 15 * NS_PER_SEC;
	pol->authpolicy.known_good = 8;
	pol->authpolicy.max_connections = 256;
	pol->authpolicy.max_per_ip = 128;
	pol->authpolicy.timeout_ns = 15 * NS_PER_SEC;
	pol->crowdsec.update_ns = 10 * NS_PER_SEC;
	pol->crowdsec.scopes = POL_CS_SCOPE_IP | POL_CS_SCOPE_RANGE;
	strcpy(pol->crowdsec.api_key_file, "/etc/imapguard/crowdsec.key");
	strcpy(pol->crowdsec.machine_credentials, "/etc/crowdsec/local_api_credentials.yaml");
	strcpy(pol->fleet.prefix, "imapguard");
	pol->fleet.share_bans = pol->fleet.share_failures = true;
	pol->fleet.min_plen4 = 16;
	pol->fleet.min_plen6 = 32;
	pol->fleet.queue_max = 10000;
	pol->fleet.stream_max = 100000;
}
