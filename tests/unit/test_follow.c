// SPDX-License-Identifier: GPL-2.0
/*
 * Line-follower tests: file sources in a temp directory, driven like the
 * daemon (epoll_wait on follow_fd with a short timeout, then follow_process),
 * plus a journald smoke test on an empty journal directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "authlog/follow.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

static char tmpdir[] = "/tmp/test_follow.XXXXXX";

/* Every delivered line, each followed by '\n', so a case compares one string. */
struct sink {
	char *text;
	size_t len, cap;
	int bad;	/* lines that broke the callback contract */
};

static void collect(void *ctx, const char *line, size_t len)
{
	struct sink *s = ctx;

	if (line[len] != '\0' || memchr(line, '\n', len))
		s->bad++;
	if (s->len + len + 2 > s->cap) {
		s->cap = (s->len + len + 2) * 2;
		s->text = realloc(s->text, s->cap);
		if (!s->text)
			exit(1);
	}
	memcpy(s->text + s->len, line, len);
	s->len += len;
	s->text[s->len++] = '\n';
	s->text[s->len] = '\0';
}

/* Compare what arrived since the last check, then forget it. */
static bool expect(struct sink *s, const char *want, const char *what)
{
	bool ok = ASSERT_STREQ(s->len ? s->text : "", want, what) &&
		  ASSERT_EQ(s->bad, 0, "line contract");

	s->len = 0;
	s->bad = 0;
	return ok;
}

/* The daemon's loop in miniature: wake on the fd or a 20 ms "tick", process,
 * stop after two idle rounds. Returns lines delivered or -errno. */
static int pump(struct follower *f, follow_line_cb cb, void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC), total = 0, idle = 0, n, r = 0;

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, follow_fd(f), &ev))
		return -errno;
	while (idle < 2) {
		n = epoll_wait(ep, &ev, 1, 20);
		r = follow_process(f, cb, ctx);
		if (r < 0)
			break;
		total += r;
		idle = n == 0 && r == 0 ? idle + 1 : 0;
	}
	close(ep);
	return r < 0 ? r : total;
}

static bool readable(struct follower *f, int ms)
{
	struct pollfd p = { .fd = follow_fd(f), .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static const char *tmp_path(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
	return buf;
}

static void put(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s)) {
		perror("write");
		exit(1);
	}
}

/* Append like a logger that opens, writes and closes. */
static void append(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	put(fd, s);
	close(fd);
}

static void rewrite(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	put(fd, s);
	close(fd);
}

static struct follow_stats stats(struct follower *f)
{
	struct follow_stats st;

	follow_get_stats(f, &st);
	return st;
}

static void test_append(void)
{
	struct sink s = {};
	struct follower *f;
	char path[PATH_MAX];

	append(tmp_path(path, "append.log"), "old1\nold2\n");
	f = follow_file_open("append", path, true);
	if (!ASSERT_OK_PTR(f, "open"))
		return;
	ASSERT_STREQ(follow_name(f), "append", "name");
	ASSERT_EQ(pump(f, collect, &s), 0, "history skipped");
	append(path, "a\nb\n");
	/* inotify must wake the loop, and one call must deliver. */
	ASSERT_TRUE(readable(f, 1000), "readable after append");
	ASSERT_EQ(follow_process(f, collect, &s), 2, "one call");
	expect(&s, "a\nb\n", "lines");
	ASSERT_TRUE(!readable(f, 0), "idle after drain");
	ASSERT_EQ(stats(f).lines, 2, "stats.lines");
	ASSERT_EQ(stats(f).bytes, 4, "stats.bytes");
	follow_close(f);
	free(s.text);
}

static void test_partial(void)
{
	struct sink s = {};
	struct follower *f;
	char path[PATH_MAX];

	/* The line being written at start-up is delivered once finished. */
	append(tmp_path(path, "partial.log"), "old\npart");
	f = follow_file_open("partial", path, true);
	if (!ASSERT_OK_PTR(f, "open"))
		return;
	ASSERT_EQ(pump(f, collect, &s), 0, "nothing whole yet");
	append(path, "ial\n");
	pump(f, collect, &s);
	expect(&s, "partial\n", "finished start-up line");
	append(path, "hel");
	ASSERT_EQ(pump(f, collect, &s), 0, "partial waits");
	append(path, "lo\nwor");
	pump(f, collect, &s);
	expect(&s, "hello\n", "completed line");
	append(path, "ld\n\n");
	pump(f, collect, &s);
	expect(&s, "world\n\n", "empty line kept");
	follow_close(f);
	free(s.text);
}

static void test_rotate(void)
{
	char path[PATH_MAX], old[PATH_MAX];
	struct sink s = {};
	struct follower *f;
	int w, nw;

	tmp_path(path, "rot.log");
	tmp_path(old, "rot.log.1");
	w = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	put(w, "l1\n");
	f = follow_file_open("rot", path, false);
	if (!ASSERT_OK_PTR(f, "open"))
		goto out;
	pump(f, collect, &s);
	expect(&s, "l1\n", "before rotation");

	/* logrotate renames; the writer has not reopened yet. */
	ASSERT_OK(rename(path, old), "rename");
	put(w, "l2\n");
	pump(f, collect, &s);
	expect(&s, "l2\n", "old file, path missing");
	nw = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_EQ(pump(f, collect, &s), 0, "new file empty");
	put(w, "l3\n");
	/* Writes under the rotated name must still wake us. */
	ASSERT_TRUE(readable(f, 1000), "readable on old-file write");
	ASSERT_EQ(follow_process(f, collect, &s), 1, "one call");
	expect(&s, "l3\n", "old file, new one still empty");
	/* The writer finishes on the old file, then switches: old first. */
	put(w, "l4\n");
	put(nw, "n1\n");
	pump(f, collect, &s);
	expect(&s, "l4\nn1\n", "old drained, then new from 0");
	put(nw, "n2\n");
	pump(f, collect, &s);
	expect(&s, "n2\n", "new file followed");
	ASSERT_EQ(stats(f).rotations, 1, "stats.rotations");
	ASSERT_EQ(stats(f).truncations, 0, "stats.truncations");
	close(nw);
out:
	close(w);
	follow_close(f);
	free(s.text);
}

static void test_copytruncate(void)
{
	struct sink s = {};
	struct follower *f;
	char path[PATH_MAX];
	int w;

	w = open(tmp_path(path, "trunc.log"), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	f = follow_file_open("trunc", path, true);
	if (!ASSERT_OK_PTR(f, "open"))
		goto out;
	put(w, "a\nb\n");
	pump(f, collect, &s);
	expect(&s, "a\nb\n", "before");
	ASSERT_OK(truncate(path, 0), "truncate");
	ASSERT_EQ(pump(f, collect, &s), 0, "empty after truncate");
	put(w, "c\n");
	pump(f, collect, &s);
	expect(&s, "c\n", "from 0 after truncate");
	/* Truncated and written again before we look. */
	put(w, "d\ne\n");
	pump(f, collect, &s);
	ASSERT_OK(truncate(path, 0), "truncate 2");
	put(w, "f\n");
	pump(f, collect, &s);
	expect(&s, "d\ne\nf\n", "second truncate");
	ASSERT_EQ(stats(f).truncations, 2, "stats.truncations");
	ASSERT_EQ(stats(f).rotations, 0, "stats.rotations");
out:
	close(w);
	follow_close(f);
	free(s.text);
}

static void test_delete_create(void)
{
	struct sink s = {};
	struct follower *f;
	char path[PATH_MAX];

	append(tmp_path(path, "del.log"), "a\n");
	f = follow_file_open("del", path, false);
	if (!ASSERT_OK_PTR(f, "open"))
		return;
	pump(f, collect, &s);
	expect(&s, "a\n", "before delete");
	ASSERT_OK(unlink(path), "unlink");
	ASSERT_EQ(pump(f, collect, &s), 0, "deleted: no error, no lines");
	append(path, "b\nc\n");
	pump(f, collect, &s);
	expect(&s, "b\nc\n", "late creation read from 0");
	ASSERT_EQ(stats(f).rotations, 1, "stats.rotations");
	follow_close(f);
	free(s.text);
}

static void test_missing(void)
{
	char path[PATH_MAX], bad[PATH_MAX];
	struct sink s = {};
	struct follower *f;

	f = follow_file_open("nodir", tmp_path(bad, "nodir/x.log"), true);
	ASSERT_TRUE(!f && errno == ENOENT, "missing directory fails");
	follow_close(f);
	f = follow_file_open("isdir", tmpdir, true);
	ASSERT_TRUE(!f && errno == EISDIR, "directory as file fails");
	follow_close(f);

	/* start_at_end only skips what exists at open: a late file is all new. */
	f = follow_file_open("missing", tmp_path(path, "missing.log"), true);
	if (!ASSERT_OK_PTR(f, "open missing file"))
		return;
	ASSERT_EQ(follow_get_pos(f, bad, sizeof(bad)), -ENOENT, "no position yet");
	ASSERT_EQ(pump(f, collect, &s), 0, "waits");
	append(path, "x\ny\n");
	pump(f, collect, &s);
	expect(&s, "x\ny\n", "created later");
	ASSERT_EQ(stats(f).rotations, 0, "stats.rotations");
	follow_close(f);
	free(s.text);
}

static void test_restart(void)
{
	char path[PATH_MAX], pos[FOLLOW_POS_LEN];
	struct sink s = {};
	struct follower *f;
	int ret;

	append(tmp_path(path, "restart.log"), "a\nb\n");
	f = follow_file_open("restart", path, true);
	if (!ASSERT_OK_PTR(f, "open"))
		return;
	append(path, "c\nd\npar");
	pump(f, collect, &s);
	expect(&s, "c\nd\n", "first run");
	ret = follow_get_pos(f, pos, sizeof(pos));
	ASSERT_OK(ret, "get_pos");
	follow_close(f);

	/* Down: the partial line is finished and more lines arrive. */
	append(path, "tial\ne\n");
	f = follow_file_open("restart", path, true);
	if (!ASSERT_OK_PTR(f, "reopen"))
		return;
	ASSERT_OK(follow_set_pos(f, pos), "set_pos");
	pump(f, collect, &s);
	expect(&s, "partial\ne\n", "no duplicates, nothing missed");
	append(path, "f\n");
	pump(f, collect, &s);
	expect(&s, "f\n", "then live");
	follow_close(f);
	free(s.text);
}

/* Save the position at the end of a file holding `before`, replace the file
 * with `after`, and check the restore falls back to reading it from 0. */
static void stale_case(const char *path, const char *before, const char *after,
		       bool new_inode, const char *what)
{
	char pos[FOLLOW_POS_LEN], tmp[PATH_MAX];
	struct sink s = {};
	struct follower *f;

	rewrite(path, before);
	f = follow_file_open("stale", path, true);
	if (!ASSERT_OK_PTR(f, "open") || !ASSERT_OK(follow_get_pos(f, pos, sizeof(pos)), "get_pos"))
		goto out;
	follow_close(f);
	if (new_inode) {
		rewrite(tmp_path(tmp, "stale.new"), after);
		ASSERT_OK(rename(tmp, path), "rename");
	} else {
		rewrite(path, after);
	}
	f = follow_file_open("stale", path, true);
	if (!ASSERT_OK_PTR(f, "reopen"))
		goto out;
	ASSERT_EQ(follow_set_pos(f, pos), -ESTALE, what);
	pump(f, collect, &s);
	expect(&s, after, what);
out:
	follow_close(f);
	free(s.text);
}

static void test_stale_pos(void)
{
	char path[PATH_MAX], pos[FOLLOW_POS_LEN];
	struct sink s = {};
	struct follower *f;

	tmp_path(path, "stale.log");
	stale_case(path, "aaaa\nbbbb\n", "z\n", false, "shorter file");
	stale_case(path, "aaaa\nbbbb\n", "cccc\ndddd\neeee\n", false, "reused inode, new content");
	stale_case(path, "aaaa\nbbbb\n", "ffff\ngggg\nhhhh\n", true, "other inode");

	/* Garbage keeps the open-time position (start_at_end). */
	rewrite(path, "old\n");
	f = follow_file_open("stale", path, true);
	if (!ASSERT_OK_PTR(f, "open"))
		return;
	ASSERT_EQ(follow_set_pos(f, "hello"), -EINVAL, "garbage");
	ASSERT_EQ(follow_set_pos(f, "123"), -EINVAL, "truncated");
	ASSERT_EQ(follow_set_pos(f, "1:2:3:4:5"), -EINVAL, "trailing junk");
	ASSERT_EQ(follow_set_pos(f, "1:2:999:0"), -EINVAL, "fingerprint past offset");
	ASSERT_EQ(follow_set_pos(f, ""), -EINVAL, "empty");
	append(path, "new\n");
	pump(f, collect, &s);
	expect(&s, "new\n", "position kept");
	ASSERT_OK(follow_get_pos(f, pos, sizeof(pos)), "get_pos");
	ASSERT_EQ(follow_get_pos(f, pos, 4), -ENOSPC, "small buffer");
	follow_close(f);
	free(s.text);
}

/*
 * The loop in miniature, but bounded by wall time (a spinning follower never
 * idles): runs until two idle rounds or ms elapse. *wakeups counts the
 * rounds where the follower's fd was readable, *cpu_ms our CPU time.
 */
static int pump_for(struct follower *f, int ms, follow_line_cb cb, void *ctx, int *wakeups,
		    double *cpu_ms)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC), total = 0, idle = 0, n, r;
	struct timespec c0, c1, t0, t;

	*wakeups = 0;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, follow_fd(f), &ev))
		return -errno;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		n = epoll_wait(ep, &ev, 1, 20);
		*wakeups += n > 0;
		r = follow_process(f, cb, ctx);
		total += r > 0 ? r : 0;
		idle = n == 0 && r <= 0 ? idle + 1 : 0;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (idle < 2 && (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	*cpu_ms = (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6;
	close(ep);
	return total;
}

/* Put what make() creates at tmp in place of path, in one rename. */
static bool swap_in(const char *path, const char *tmp, int (*make)(const char *tmp))
{
	unlink(tmp);
	return ASSERT_OK(make(tmp), "create") && ASSERT_OK(rename(tmp, path), "rename");
}

static int make_fifo(const char *tmp) { return mkfifo(tmp, 0600); }
static int make_zero_link(const char *tmp) { return symlink("/dev/zero", tmp); }
static const char *regular_text;
static int make_regular(const char *tmp)
{
	rewrite(tmp, regular_text);
	return 0;
}

/*
 * The path swapped for a FIFO or for a symlink to /dev/zero (a writable log
 * directory is enough): the follower must neither spin nor stall, and must
 * read the next regular file put there.
 */
static void test_special(const char *what, int (*make)(const char *tmp))
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct sink s = {};
	struct follower *f;
	double cpu;
	int wakeups, fd;

	tmp_path(tmp, "special.tmp");
	rewrite(tmp_path(path, "special.log"), "a\n");
	f = follow_file_open("special", path, false);
	if (!ASSERT_OK_PTR(f, "open"))
		return;
	pump(f, collect, &s);
	expect(&s, "a\n", "regular file");
	if (!swap_in(path, tmp, make))
		goto out;
	ASSERT_EQ(pump_for(f, 500, collect, &s, &wakeups, &cpu), 0, "no lines");
	printf("  %s: %d wakeups, %.1f ms CPU in 500 ms\n", what, wakeups, cpu);
	ASSERT_TRUE(wakeups <= 10, "no busy loop");
	ASSERT_TRUE(cpu < 200, "not spinning");
	/* Nobody may keep a FIFO open for reading: a writer finds no reader. */
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (make == make_fifo)
		ASSERT_TRUE(fd < 0 && errno == ENXIO, "FIFO not kept open");
	if (fd >= 0)
		close(fd);
	regular_text = "b\n";
	if (!swap_in(path, tmp, make_regular))
		goto out;
	pump_for(f, 2000, collect, &s, &wakeups, &cpu);
	expect(&s, "b\n", "the regular file after it: no stall");
	ASSERT_EQ(stats(f).refused, 1, "stats.refused");
	ASSERT_EQ(stats(f).rotations, 1, "stats.rotations");
out:
	follow_close(f);
	free(s.text);
}

/* Not a regular file at start-up: waited for, like a missing one. */
static void test_special_at_open(void)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct sink s = {};
	struct follower *f;
	double cpu;
	int wakeups;

	tmp_path(tmp, "special.tmp");
	if (!swap_in(tmp_path(path, "special.log"), tmp, make_fifo))
		return;
	f = follow_file_open("special", path, true);
	if (!ASSERT_OK_PTR(f, "open on a FIFO"))
		return;
	ASSERT_EQ(pump_for(f, 300, collect, &s, &wakeups, &cpu), 0, "no lines");
	ASSERT_TRUE(wakeups <= 10, "no busy loop");
	regular_text = "d\n";
	if (swap_in(path, tmp, make_regular)) {
		pump_for(f, 2000, collect, &s, &wakeups, &cpu);
		expect(&s, "d\n", "then the regular file, from its start");
	}
	follow_close(f);
	free(s.text);
}

/* The position imapguard 0.1 saved: "INODE:OFFSET:FPLEN:FNV1A" (FNV-1a 64 of
 * the first FPLEN bytes, at most 256). */
static void legacy_pos(char *buf, size_t len, const char *path, size_t off, size_t fplen)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned char b[256];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) || pread(fd, b, fplen, 0) != (ssize_t)fplen) {
		perror(path);
		exit(1);
	}
	close(fd);
	for (size_t i = 0; i < fplen; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	snprintf(buf, len, "%ju:%zu:%zu:%016" PRIx64, (uintmax_t)st.st_ino, off, fplen, h);
}

/* An upgrade from the FNV-1a fingerprint: resume exactly, then save anew. */
static void test_legacy_pos(void)
{
	char path[PATH_MAX], pos[FOLLOW_POS_LEN], bad[FOLLOW_POS_LEN];
	struct sink s = {};
	struct follower *f;

	rewrite(tmp_path(path, "legacy.log"), "a\nb\n");
	legacy_pos(pos, sizeof(pos), path, 4, 4);
	legacy_pos(bad, sizeof(bad), path, 4, 3);
	bad[strlen(bad) - 1] ^= 1;	/* another first line: not our file */
	append(path, "c\n");
	f = follow_file_open("legacy", path, true);
	if (!ASSERT_OK_PTR(f, "open"))
		return;
	ASSERT_OK(follow_set_pos(f, pos), "0.1 position accepted");
	pump(f, collect, &s);
	expect(&s, "c\n", "resumed: nothing again, nothing missed");
	ASSERT_OK(follow_get_pos(f, pos, sizeof(pos)), "get_pos");
	ASSERT_TRUE(strchr(pos, 's') != NULL, "saved in the new form");
	follow_close(f);

	f = follow_file_open("legacy", path, true);
	if (!ASSERT_OK_PTR(f, "reopen"))
		return;
	ASSERT_EQ(follow_set_pos(f, bad), -ESTALE, "0.1 position, other content");
	pump(f, collect, &s);
	expect(&s, "a\nb\nc\n", "stale: read from the start");
	ASSERT_OK(follow_set_pos(f, pos), "new position accepted");
	follow_close(f);
	free(s.text);
}

#define BIG_BUF	(256 << 10)

static void test_long_line(void)
{
	char path[PATH_MAX], pos[FOLLOW_POS_LEN];
	char *big = malloc(BIG_BUF);
	struct sink s = {};
	struct follower *f = NULL;

	if (!ASSERT_OK_PTR(big, "malloc"))
		goto out;
	f = follow_file_open("long", tmp_path(path, "long.log"), true);
	if (!ASSERT_OK_PTR(f, "open"))
		goto out;
	/* Complete overlong line inside one read. */
	memset(big, 'x', 10000);
	big[10000] = '\0';
	append(path, "a\n");
	append(path, big);
	append(path, "\nb\n");
	pump(f, collect, &s);
	expect(&s, "a\nb\n", "skipped in one read");
	/* Overlong line arriving in pieces. */
	big[5000] = '\0';
	append(path, big);
	pump(f, collect, &s);
	append(path, big);
	pump(f, collect, &s);
	append(path, "\nc\n");
	pump(f, collect, &s);
	expect(&s, "c\n", "skipped across reads");
	/* Exactly the limit is kept, one more byte is not. */
	memset(big, 'y', FOLLOW_LINE_MAX);
	strcpy(big + FOLLOW_LINE_MAX, "\n");
	append(path, big);
	pump(f, collect, &s);
	ASSERT_EQ(s.len, FOLLOW_LINE_MAX + 1, "line at limit");
	expect(&s, big, "line at limit");
	strcpy(big + FOLLOW_LINE_MAX, "y\nd\n");
	append(path, big);
	pump(f, collect, &s);
	expect(&s, "d\n", "limit + 1 skipped");
	/* Far larger than the read buffer. */
	memset(big, 'w', BIG_BUF - 1);
	big[BIG_BUF - 1] = '\0';
	append(path, big);
	append(path, "\ne\n");
	pump(f, collect, &s);
	expect(&s, "e\n", "huge line skipped");
	ASSERT_EQ(stats(f).skipped_long, 4, "stats.skipped_long");

	/* Restart in the middle of an overlong line: still skipped. */
	big[FOLLOW_LINE_MAX + 100] = '\0';
	memset(big, 'z', FOLLOW_LINE_MAX + 100);
	append(path, big);
	pump(f, collect, &s);
	ASSERT_OK(follow_get_pos(f, pos, sizeof(pos)), "get_pos");
	follow_close(f);
	append(path, "zzz\nq\n");
	f = follow_file_open("long", path, true);
	if (!ASSERT_OK_PTR(f, "reopen"))
		goto out;
	ASSERT_OK(follow_set_pos(f, pos), "set_pos");
	pump(f, collect, &s);
	expect(&s, "q\n", "no tail delivered after restart");
	ASSERT_EQ(stats(f).skipped_long, 1, "skipped again");
out:
	follow_close(f);
	free(big);
	free(s.text);
}

#define BIG_LINE	100
#define BIG_LINES	((50u << 20) / BIG_LINE)

struct seq {
	unsigned int next, bad;
};

/* Lines carry their number: catches loss, duplicates and corruption. */
static void check_seq(void *ctx, const char *line, size_t len)
{
	struct seq *q = ctx;

	if (len != BIG_LINE - 1 || strtoul(line, NULL, 10) != q->next)
		q->bad++;
	q->next++;
}

/* BIG_LINES numbered lines of BIG_LINE bytes into path: 0 or -errno. */
static int write_seq(const char *path)
{
	char line[BIG_LINE + 1];
	FILE *fp = fopen(path, "w");

	if (!fp)
		return -errno;
	for (unsigned int i = 0; i < BIG_LINES; i++) {
		snprintf(line, sizeof(line), "%08u %-*s\n", i, BIG_LINE - 10, "dovecot: imap-login");
		fputs(line, fp);
	}
	return fclose(fp) ? -errno : 0;
}

static void test_batch(void)
{
	struct follow_stats before, after;
	struct seq q = {};
	char path[PATH_MAX], noise[PATH_MAX];
	double worst = 0;
	struct follower *f;
	int calls = 0, r;

	if (!ASSERT_OK(write_seq(tmp_path(path, "big.log")), "write 50 MiB"))
		return;
	tmp_path(noise, "noise.log");
	f = follow_file_open("big", path, false);
	if (!ASSERT_OK_PTR(f, "open"))
		return;
	for (;;) {
		struct timespec t0, t1;

		follow_get_stats(f, &before);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = follow_process(f, check_seq, &q);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		follow_get_stats(f, &after);
		if (!ASSERT_TRUE(r >= 0, "process") || r == 0)
			break;
		calls++;
		if (t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9 > worst)
			worst = t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9;
		ASSERT_TRUE(after.bytes - before.bytes <= FOLLOW_BATCH_BYTES + (64 << 10), "bytes bounded");
		ASSERT_TRUE(r <= FOLLOW_BATCH_LINES + (64 << 10), "lines bounded");
		/* Events about other files must not hide the pending batch. */
		append(noise, "x\n");
		/* More pending: the fd must stay readable for the loop. */
		if (q.next < BIG_LINES && !ASSERT_TRUE(readable(f, 0), "readable while pending"))
			break;
	}
	ASSERT_EQ(q.next, BIG_LINES, "all lines");
	ASSERT_EQ(q.bad, 0, "in order, intact");
	ASSERT_TRUE(calls >= (int)(50u << 20) / (int)FOLLOW_BATCH_BYTES, "split into batches");
	ASSERT_TRUE(!readable(f, 0), "idle at the end");
	printf("  batch: %d calls, slowest %.1f ms\n", calls, worst * 1e3);
	follow_close(f);
	unlink(path);
}

/* An empty journal directory; NULL (SKIP) if libsystemd will not open it. */
static struct follower *open_empty_journal(void)
{
	char dir[PATH_MAX];
	struct follower *f;

	if (!mkdtemp((char *)tmp_path(dir, "journal.XXXXXX")))
		return NULL;
	setenv("IMAPGUARD_JOURNAL_DIR", dir, 1);
	f = follow_journal_open("journal", "dovecot", true);
	unsetenv("IMAPGUARD_JOURNAL_DIR");
	return f;
}

static void test_journal_empty(struct follower *f)
{
	char pos[FOLLOW_POS_LEN];
	struct sink s = {};

	ASSERT_TRUE(follow_fd(f) >= 0, "fd");
	ASSERT_STREQ(follow_name(f), "journal", "name");
	ASSERT_EQ(pump(f, collect, &s), 0, "no lines");
	ASSERT_TRUE(follow_get_pos(f, pos, sizeof(pos)) < 0, "no cursor yet");
	ASSERT_TRUE(follow_set_pos(f, "not-a-cursor") < 0, "bad cursor refused");
	ASSERT_EQ(pump(f, collect, &s), 0, "still no lines");
	ASSERT_EQ(stats(f).lines, 0, "stats.lines");
	follow_close(f);
	free(s.text);
}

/* Only the trusted unit field: SYSLOG_IDENTIFIER is the sender's to choose. */
static void test_journal_match(void)
{
	static const struct {
		const char *unit, *match;
	} c[] = {
		{ "dovecot", "_SYSTEMD_UNIT=dovecot.service" },
		{ "dovecot.service", "_SYSTEMD_UNIT=dovecot.service" },
		{ "cyrus-imapd.service", "_SYSTEMD_UNIT=cyrus-imapd.service" },
		{ "getty@tty1", "_SYSTEMD_UNIT=getty@tty1.service" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		ASSERT_OK(follow_journal_match(c[i].unit, buf, sizeof(buf)), c[i].unit);
		ASSERT_STREQ(buf, c[i].match, c[i].unit);
	}
	ASSERT_EQ(follow_journal_match("dovecot", buf, 20), -ENAMETOOLONG, "too long");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int main(void)
{
	struct follower *jf;

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN_CASE("follow_append", test_append());
	RUN_CASE("follow_partial_line", test_partial());
	RUN_CASE("follow_rename_rotation", test_rotate());
	RUN_CASE("follow_copytruncate", test_copytruncate());
	RUN_CASE("follow_delete_then_create", test_delete_create());
	RUN_CASE("follow_missing_at_open", test_missing());
	RUN_CASE("follow_restart_position", test_restart());
	RUN_CASE("follow_stale_position", test_stale_pos());
	RUN_CASE("follow_legacy_position", test_legacy_pos());
	RUN_CASE("follow_path_becomes_fifo", test_special("fifo", make_fifo));
	RUN_CASE("follow_path_becomes_dev_zero", test_special("/dev/zero", make_zero_link));
	RUN_CASE("follow_fifo_at_open", test_special_at_open());
	RUN_CASE("follow_long_line", test_long_line());
	RUN_CASE("follow_batch_50mib", test_batch());
	RUN_CASE("follow_journal_trusted_match", test_journal_match());
	jf = open_empty_journal();
	if (jf)
		RUN_CASE("follow_journal_empty", test_journal_empty(jf));
	else
		SKIP_CASE("follow_journal_empty", strerror(errno));
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return test_cases_failed != 0;
}
