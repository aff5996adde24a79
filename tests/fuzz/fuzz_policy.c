// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_policy: the policy parser through policy_load(), the entry the CLI
 * and the daemon use (read the file, then policy_load_buf()).
 *
 * Input: policy text, optionally followed by a line "--deny--" and the
 * content every deny_file then reads. Files come from a fake file system,
 * never the disk: the harness is linked with --wrap for fopen/open/openat
 * (FUZZ_LDFLAGS_fuzz_policy in the Makefile), and while policy_load() runs,
 * a read-only open of "/fuzz/policy.conf" gets the policy text, of any other
 * path under "/fuzz/" (where relative deny_file paths resolve) the deny
 * content, and of any other path ENOENT. Writes pass through, so libFuzzer
 * can still save a crashing input.
 *
 * Properties:
 *  - a policy that loads is valid: ports unique and in range with a real
 *    action, a redirect with its interface, every list sorted, without
 *    duplicates and without host bits set, interface names and authlog
 *    sections well formed, thresholds in their ranges, strings terminated;
 *  - loading is deterministic (a second load gives the same policy);
 *  - an error is one line "FILE:LINE: what" naming a file that was read and
 *    a line it has, the policy's lists are freed, and the message as the
 *    CLI prints it (pr_warn) holds no control bytes and is valid UTF-8.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <unistd.h>
#include "base/log.h"
#include "policy/policy.h"
#include "fuzz.h"

#define FAKE_DIR	"/fuzz/"
#define POLICY_PATH	FAKE_DIR "policy.conf"
#define DENY_MARK	"\n--deny--\n"

FILE *__real_fopen(const char *path, const char *mode);
FILE *__real_fopen64(const char *path, const char *mode);
int __real_open(const char *path, int flags, ...);
int __real_open64(const char *path, int flags, ...);
int __real_openat(int dirfd, const char *path, int flags, ...);
int __real_openat64(int dirfd, const char *path, int flags, ...);

static int policy_fd = -1, deny_fd = -1;	/* memfds holding this input's files */
static bool serving, have_deny;

/* A new open file description of one of the memfds, or -1 and errno. */
static int fake_open(const char *path)
{
	char proc[64];
	int fd;

	if (strncmp(path, FAKE_DIR, strlen(FAKE_DIR))) {
		errno = ENOENT;
		return -1;
	}
	fd = !strcmp(path, POLICY_PATH) ? policy_fd : have_deny ? deny_fd : -1;
	if (fd < 0) {
		errno = ENOENT;
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return __real_open(proc, O_RDONLY | O_CLOEXEC);
}

static bool writes(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
}

static FILE *fake_fopen(const char *path)
{
	int fd = fake_open(path);
	FILE *f;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, "r");
	if (!f)
		close(fd);
	return f;
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
	if (!serving || strpbrk(mode, "wa+"))
		return __real_fopen(path, mode);
	return fake_fopen(path);
}

FILE *__wrap_fopen64(const char *path, const char *mode)
{
	if (!serving || strpbrk(mode, "wa+"))
		return __real_fopen64(path, mode);
	return fake_fopen(path);
}

/* open(2)'s mode argument is there only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, last, mode) do {					\
	va_list ap;								\
										\
	mode = 0;								\
	if ((flags) & (O_CREAT | __O_TMPFILE)) {				\
		va_start(ap, last);						\
		mode = va_arg(ap, int);						\
		va_end(ap);							\
	}									\
} while (0)

int __wrap_open(const char *path, int flags, ...)
{
	int mode;

	OPEN_MODE(flags, flags, mode);
	if (!serving || writes(flags))
		return __real_open(path, flags, mode);
	return fake_open(path);
}

int __wrap_open64(const char *path, int flags, ...)
{
	int mode;

	OPEN_MODE(flags, flags, mode);
	if (!serving || writes(flags))
		return __real_open64(path, flags, mode);
	return fake_open(path);
}

int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	int mode;

	OPEN_MODE(flags, flags, mode);
	if (!serving || writes(flags))
		return __real_openat(dirfd, path, flags, mode);
	return path[0] == '/' || dirfd == AT_FDCWD ? fake_open(path) : (errno = ENOENT, -1);
}

int __wrap_openat64(int dirfd, const char *path, int flags, ...)
{
	int mode;

	OPEN_MODE(flags, flags, mode);
	if (!serving || writes(flags))
		return __real_openat64(dirfd, path, flags, mode);
	return path[0] == '/' || dirfd == AT_FDCWD ? fake_open(path) : (errno = ENOENT, -1);
}

static void set_file(int fd, const uint8_t *p, size_t n)
{
	FUZZ_CHECK(!ftruncate(fd, 0), "ftruncate: %s", strerror(errno));
	FUZZ_CHECK(!n || pwrite(fd, p, n, 0) == (ssize_t)n, "pwrite: %s", strerror(errno));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	policy_fd = memfd_create("fuzz-policy", MFD_CLOEXEC);
	deny_fd = memfd_create("fuzz-deny", MFD_CLOEXEC);
	FUZZ_CHECK(policy_fd >= 0 && deny_fd >= 0, "memfd_create: %s", strerror(errno));
	return 0;
}

static bool str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size);
}

static void check_list(const struct pol_list *l, const char *name)
{
	FUZZ_CHECK(l->n <= l->cap && (!l->n || l->v), "%s: %zu of %zu", name, l->n, l->cap);
	for (size_t i = 0; i < l->n; i++) {
		struct ig_prefix m = l->v[i];

		FUZZ_CHECK(m.plen <= 128, "%s: /%u", name, m.plen);
		FUZZ_CHECK(!addr_is_v4(m.addr) || m.plen >= 96, "%s: IPv4 /%u", name, m.plen);
		addr_mask(m.addr, m.plen);
		FUZZ_CHECK(!memcmp(m.addr, l->v[i].addr, 16), "%s: host bits set", name);
		if (i) {
			int c = memcmp(l->v[i - 1].addr, l->v[i].addr, 16);

			FUZZ_CHECK(c < 0 || (!c && l->v[i - 1].plen < l->v[i].plen),
				   "%s: items %zu and %zu out of order or duplicate", name, i - 1, i);
		}
	}
}

static bool ifname_ok(const char *s)
{
	size_t n = strnlen(s, IG_IFNAME_LEN);

	if (!n || n == IG_IFNAME_LEN || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || strchr("/:,", s[i]))
			return false;
	return true;
}

static void check_port(const struct policy *pol, int i)
{
	const struct pol_port *p = &pol->ports[i];

	FUZZ_CHECK(p->port >= 1, "port 0");
	for (int j = 0; j < i; j++)
		FUZZ_CHECK(pol->ports[j].port != p->port, "port %u twice", p->port);
	FUZZ_CHECK(p->action > IG_ACT_NONE && p->action <= IG_ACT_STARTTLS, "action %u", p->action);
	FUZZ_CHECK(p->starttls_mode <= IG_ST_LOG && (!p->starttls_mode || p->action == IG_ACT_STARTTLS),
		   "starttls_mode %u with action %u", p->starttls_mode, p->action);
	FUZZ_CHECK((p->action == IG_ACT_REDIRECT) == !!p->redirect_to[0], "redirect_to '%.16s' "
		   "with action %u", p->redirect_to, p->action);
	FUZZ_CHECK(!p->redirect_to[0] || ifname_ok(p->redirect_to), "redirect_to '%.16s'",
		   p->redirect_to);
	check_list(&p->allow, "port allow");
	FUZZ_CHECK(!p->syn_interval_ns || p->syn_burst >= 1, "syn_rate without a burst");
	FUZZ_CHECK(!p->subnet_interval_ns || p->subnet_burst >= 1, "subnet_rate without a burst");
	FUZZ_CHECK(p->src_plen4 >= 1 && p->src_plen4 <= 32 && p->src_plen6 >= 1 &&
		   p->src_plen6 <= 64, "source_prefix %u, %u", p->src_plen4, p->src_plen6);
	FUZZ_CHECK(p->sub_plen4 >= 1 && p->sub_plen4 <= 32 && p->sub_plen6 >= 1 &&
		   p->sub_plen6 <= 64, "subnet_prefix %u, %u", p->sub_plen4, p->sub_plen6);
	FUZZ_CHECK(!p->subnet_interval_ns || (p->sub_plen4 <= p->src_plen4 &&
					      p->sub_plen6 <= p->src_plen6),
		   "subnet buckets smaller than source buckets");
}

static void check_policy(const struct policy *pol)
{
	const struct pol_detect *d = &pol->detect;

	FUZZ_CHECK(!strcmp(pol->file, POLICY_PATH), "file '%s'", pol->file);
	FUZZ_CHECK(pol->nports >= 0 && pol->nports <= IG_MAX_PORTS, "%d ports", pol->nports);
	for (int i = 0; i < pol->nports; i++)
		check_port(pol, i);
	for (int i = pol->nports; i < IG_MAX_PORTS; i++)
		FUZZ_CHECK(!pol->ports[i].port && !pol->ports[i].allow.v, "unused port slot %d set", i);
	check_list(&pol->allow, "allow");
	check_list(&pol->deny, "deny");
	FUZZ_CHECK(pol->ban_scope <= IG_SCOPE_ALL, "ban_scope %u", pol->ban_scope);
	FUZZ_CHECK(pol->max_bans && pol->max_sources && pol->max_deny && pol->max_allow &&
		   pol->max_flows && pol->max_grants,
		   "a zero map size");
	FUZZ_CHECK(pol->nifaces >= 0 && pol->nifaces <= POL_MAX_IFACES, "%d interfaces", pol->nifaces);
	for (int i = 0; i < pol->nifaces; i++) {
		FUZZ_CHECK(ifname_ok(pol->ifaces[i]), "interface '%.16s'", pol->ifaces[i]);
		for (int j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(pol->ifaces[i], pol->ifaces[j]), "interface twice");
	}
	FUZZ_CHECK(pol->iface_mode >= 0 && pol->iface_mode <= IG_MODE_TC, "mode %d", pol->iface_mode);
	FUZZ_CHECK(str_ok(pol->state_file, sizeof(pol->state_file)) && pol->state_file[0] == '/',
		   "state_file");
	FUZZ_CHECK(str_ok(pol->control_socket, sizeof(pol->control_socket)) &&
		   pol->control_socket[0] == '/', "control_socket");
	FUZZ_CHECK(str_ok(pol->control_group, sizeof(pol->control_group)), "control_group");
	FUZZ_CHECK(str_ok(pol->metrics_listen, sizeof(pol->metrics_listen)), "metrics_listen");
	FUZZ_CHECK(d->max_failures >= 1 && d->window_ns && d->ban_time_ns &&
		   d->ban_max_ns >= d->ban_time_ns, "detect thresholds");
	FUZZ_CHECK(d->v6_plen >= 1 && d->v6_plen <= 128 && d->subnet_plen4 >= 1 &&
		   d->subnet_plen4 <= 32 && d->subnet_plen6 >= 1 && d->subnet_plen6 <= 128,
		   "detect prefixes");
	FUZZ_CHECK(isfinite(d->ban_factor) && d->ban_factor >= 1.0 && d->ban_factor <= 1000.0,
		   "ban_factor %g", d->ban_factor);
	FUZZ_CHECK(pol->nauthlogs >= 0 && pol->nauthlogs <= POL_MAX_AUTHLOG, "%d authlogs",
		   pol->nauthlogs);
	for (int i = 0; i < pol->nauthlogs; i++) {
		const struct pol_authlog *a = &pol->authlogs[i];

		FUZZ_CHECK(str_ok(a->name, sizeof(a->name)) && a->name[0], "authlog name");
		FUZZ_CHECK(str_ok(a->path, sizeof(a->path)) && str_ok(a->journal, sizeof(a->journal)),
			   "authlog source");
		FUZZ_CHECK(!a->path[0] != !a->journal[0], "authlog '%s': path and journal", a->name);
		FUZZ_CHECK(!a->path[0] || a->path[0] == '/', "authlog path '%s'", a->path);
		FUZZ_CHECK(a->format >= AUTHLOG_AUTO && a->format <= AUTHLOG_UWIMAP, "format %d",
			   a->format);
		for (int j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(a->name, pol->authlogs[j].name), "authlog '%s' twice",
				   a->name);
	}
}

/* Lines in [p, p + n), the last one counted even without its newline. */
static int count_lines(const uint8_t *p, size_t n)
{
	int lines = 0;

	for (size_t i = 0; i < n; i++)
		lines += p[i] == '\n';
	return lines + (n && p[n - 1] != '\n');
}

/*
 * "FILE:LINE: what", FILE one we served: the policy (LINE one it has, 0 for
 * the file as a whole) or a deny_file (LINE one of the deny content's).
 * A deny_file's path and the item echoed after it may both hold ":N: ", so
 * it is enough that one reading fits.
 */
static void check_error(const char *err, int policy_lines, int deny_lines)
{
	bool found = false;
	const char *p;
	char *end;
	long line;

	FUZZ_CHECK(err[0], "an error without a message");
	FUZZ_CHECK(!strchr(err, '\n'), "message of more than one line: '%s'", err);
	FUZZ_CHECK(!strncmp(err, FAKE_DIR, strlen(FAKE_DIR)), "message '%s' does not start with "
		   "a file that was read", err);
	for (p = err; !found && (p = strchr(p, ':')); p++) {
		bool policy = p - err == (ptrdiff_t)strlen(POLICY_PATH) &&
			      !strncmp(err, POLICY_PATH, p - err);

		if (p[1] < '0' || p[1] > '9')
			continue;
		line = strtol(p + 1, &end, 10);
		found = *end == ':' && end[1] == ' ' &&
			(policy ? line <= policy_lines : line >= 1 && line <= deny_lines);
	}
	FUZZ_CHECK(found, "no line of the policy (%d lines) or the deny file (%d lines) in '%s'",
		   policy_lines, deny_lines, err);
}

/* Two loads of one input: the same policy, lists compared by content. */
static bool same_policy(struct policy *a, struct policy *b)
{
	struct pol_list *la[IG_MAX_PORTS + 3], *lb[IG_MAX_PORTS + 3];
	struct ig_prefix *va[IG_MAX_PORTS + 3], *vb[IG_MAX_PORTS + 3];
	size_t ca[IG_MAX_PORTS + 3], cb[IG_MAX_PORTS + 3];
	bool same = true;
	int n = 0;

	la[n] = &a->allow, lb[n++] = &b->allow;
	la[n] = &a->deny, lb[n++] = &b->deny;
	la[n] = &a->mfa.trusted_proxies, lb[n++] = &b->mfa.trusted_proxies;
	for (int i = 0; i < IG_MAX_PORTS; i++)
		la[n] = &a->ports[i].allow, lb[n++] = &b->ports[i].allow;
	for (int i = 0; i < n; i++) {
		same &= la[i]->n == lb[i]->n &&
			(!la[i]->n || !memcmp(la[i]->v, lb[i]->v, la[i]->n * sizeof(*la[i]->v)));
		va[i] = la[i]->v, vb[i] = lb[i]->v, ca[i] = la[i]->cap, cb[i] = lb[i]->cap;
		la[i]->v = lb[i]->v = NULL;
		la[i]->cap = lb[i]->cap = 0;
	}
	same &= !memcmp(a, b, sizeof(*a));
	for (int i = 0; i < n; i++)
		la[i]->v = va[i], lb[i]->v = vb[i], la[i]->cap = ca[i], lb[i]->cap = cb[i];
	return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *mark = memmem(data, size, DENY_MARK, strlen(DENY_MARK));
	size_t plen = mark ? (size_t)(mark - data) + 1 : size;	/* keep the '\n' */
	struct policy *pol = malloc(sizeof(*pol)), *again = malloc(sizeof(*pol));
	struct fuzz_capture cap;
	char err[POL_ERR_LEN], err2[POL_ERR_LEN];
	int ret, ret2, deny_lines = 0;

	FUZZ_CHECK(pol && again, "out of memory");
	set_file(policy_fd, data, plen);
	have_deny = mark;
	if (mark) {
		const uint8_t *deny = mark + strlen(DENY_MARK);

		set_file(deny_fd, deny, data + size - deny);
		deny_lines = count_lines(deny, data + size - deny);
	}
	serving = true;
	ret = policy_load(POLICY_PATH, pol, err, sizeof(err));
	ret2 = policy_load(POLICY_PATH, again, err2, sizeof(err2));
	serving = false;

	FUZZ_CHECK(ret == ret2 && !strcmp(err, err2), "a second load gave %d '%s', the first %d '%s'",
		   ret2, err2, ret, err);
	if (!ret) {
		FUZZ_CHECK(!err[0], "success with a message '%s'", err);
		check_policy(pol);
		FUZZ_CHECK(same_policy(pol, again), "two loads of one input differ");
		policy_free(pol);
		policy_free(again);
	} else {
		/* -ENOENT: a deny_file the fake file system does not have. */
		FUZZ_CHECK(ret == -EINVAL || ret == -ENOENT, "returned %d: '%s'", ret, err);
		check_error(err, count_lines(data, plen), deny_lines);
		FUZZ_CHECK(!pol->allow.v && !pol->deny.v && !pol->mfa.trusted_proxies.v,
			   "lists not freed after an error");
		for (int i = 0; i < IG_MAX_PORTS; i++)
			FUZZ_CHECK(!pol->ports[i].allow.v, "port list not freed after an error");
		/* As the CLI shows it (cli/common.c load_policy). */
		fuzz_capture_begin(&cap);
		pr_warn("%s", err);
		fuzz_capture_end(&cap);
		FUZZ_CHECK(fuzz_lines_ok(cap.buf, cap.len), "the error reaches the terminal as '%s'",
			   cap.buf);
		free(cap.buf);
	}
	free(pol);
	free(again);
	return 0;
}
