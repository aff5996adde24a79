// SPDX-License-Identifier: GPL-2.0
/*
 * Auth-log line followers. follow_fd() is a private epoll set holding the
 * source's own fd (an inotify fd for files, sd-journal's fd for journald) and
 * an eventfd we raise when a batch stops early: the daemon sees one fd that
 * stays readable while work is pending, with no extra API to remember.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-journal.h>
#include "authlog/follow.h"
#include "base/hash.h"
#include "base/log.h"

#define BUF_SIZE	(64u << 10)	/* read chunk + room for a partial line */
#define FP_MAX		256		/* bytes fingerprinted for the position */
#define ROTATE_HOPS	4		/* files taken in one follow_process call */
#define DIR_EVENTS	(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | \
			 IN_MODIFY | IN_CLOSE_WRITE | IN_ONLYDIR)

struct follower {
	char *name;
	struct follow_stats st;
	int epfd;		/* what follow_fd() returns */
	int kickfd;		/* eventfd: readable while a batch is pending */
	char *buf;		/* journald: one line; file: the partial line */
	size_t len;		/* bytes in buf, file offsets [done, rd_off) */
	sd_journal *j;		/* NULL for a file source */
	/* File source only. */
	char *path, *dir;
	const char *base;	/* basename, points into path */
	int ifd, wd;		/* inotify; wd < 0 while the directory is unwatched */
	int fd;			/* current file, -1 while it does not exist */
	ino_t ino;
	dev_t dev;
	uint64_t rd_off;	/* next byte to read */
	uint64_t done;		/* first byte not yet delivered as a whole line */
	bool skip;		/* discarding an overlong line up to its '\n' */
	bool stale;		/* fd at EOF but the path names another file */
	int open_err;		/* last open() error, logged once */
	int read_err;		/* last read error, logged once */
	ino_t refused_ino;	/* the non-regular file last refused, logged once */
	dev_t refused_dev;
};

/* Raise or clear the pending flag; clearing tells whether it was raised. */
static bool kick(struct follower *f, bool on)
{
	uint64_t v = 1;

	/* Errors only mean the counter is already set (write) or clear (read). */
	if (on)
		return write(f->kickfd, &v, sizeof(v)) == sizeof(v);
	return read(f->kickfd, &v, sizeof(v)) == sizeof(v);
}

static struct follower *follower_new(const char *name, int srcfd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct follower *f = calloc(1, sizeof(*f));
	int err;

	if (!f)
		return NULL;
	f->fd = f->ifd = f->wd = f->kickfd = f->epfd = -1;
	f->name = strdup(name);
	f->buf = malloc(BUF_SIZE);
	f->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!f->name || !f->buf || f->kickfd < 0 || f->epfd < 0)
		goto err;
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->kickfd, &ev) ||
	    epoll_ctl(f->epfd, EPOLL_CTL_ADD, srcfd, &ev))
		goto err;
	return f;
err:
	err = errno;
	follow_close(f);
	errno = err;
	return NULL;
}

/*
 * Fingerprint of the file's first n bytes: tells a reused inode from ours.
 * SipHash under the fixed key (hash_stable), as the value is saved across
 * restarts. legacy selects the FNV-1a of positions imapguard 0.1 saved (see
 * file_set_pos); only ever used to read one.
 */
static int fingerprint(int fd, size_t n, bool legacy, uint64_t *hash)
{
	unsigned char b[FP_MAX];
	ssize_t got = pread(fd, b, n, 0);
	uint64_t h = 0xcbf29ce484222325ULL;

	if (got < 0)
		return -errno;
	if ((size_t)got != n)
		return -ESTALE;
	if (!legacy) {
		*hash = hash_stable(b, n);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	*hash = h;
	return 0;
}

/* Start over at the beginning of the (new or truncated) file. */
static void file_rewind(struct follower *f)
{
	f->rd_off = f->done = 0;
	f->len = 0;
	f->skip = false;
}

static void file_drop(struct follower *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	f->stale = false;
	file_rewind(f);
}

static const char *file_type(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" :
	       S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/*
 * Only a regular file is followed: reads from a FIFO fail or stall, a device
 * such as /dev/zero never ends. Anything else at the path is refused (logged
 * once per object) and the path stays watched: the next regular file there
 * is followed as a rotation. -EISDIR for a directory, -EINVAL for the rest.
 */
static int file_refuse(struct follower *f, const struct stat *st)
{
	int err = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;

	if (st->st_ino != f->refused_ino || st->st_dev != f->refused_dev) {
		pr_warn("Not following log '%s' of source '%s': it is %s, not a regular file; "
			"waiting for one at that path", f->path, f->name, file_type(st->st_mode));
		f->refused_ino = st->st_ino;
		f->refused_dev = st->st_dev;
		f->st.refused++;
	}
	f->open_err = err;
	return err;
}

static int file_open_err(struct follower *f, int err)
{
	if (err != -ENOENT && err != f->open_err)
		pr_warn("Couldn't open log '%s' for source '%s': %s",
			f->path, f->name, strerror(-err));
	f->open_err = err;
	return err;
}

static int file_reopen(struct follower *f)
{
	struct stat st;
	int fd, err;

	/* Checked before open() too: opening a device can have effects. */
	if (stat(f->path, &st))
		return file_open_err(f, -errno);
	if (!S_ISREG(st.st_mode))
		return file_refuse(f, &st);
	/* Non-blocking: the path may have become a FIFO since the stat. */
	fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return file_open_err(f, -errno);
	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return file_open_err(f, err);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return file_refuse(f, &st);
	}
	f->open_err = 0;
	f->refused_ino = 0;
	f->refused_dev = 0;
	file_drop(f);
	f->fd = fd;
	f->ino = st.st_ino;
	f->dev = st.st_dev;
	return 0;
}

/* Begin after the last complete line, so the line being written when we
 * start is still delivered once finished. */
static void file_seek_end(struct follower *f)
{
	struct stat st;
	size_t n;
	ssize_t got;
	char *nl;

	if (fstat(f->fd, &st) || st.st_size == 0)
		return;
	n = st.st_size < FOLLOW_LINE_MAX + 1 ? st.st_size : FOLLOW_LINE_MAX + 1;
	got = pread(f->fd, f->buf, n, st.st_size - n);
	if (got != (ssize_t)n)
		return;
	nl = memrchr(f->buf, '\n', n);
	if (nl) {
		f->rd_off = f->done = st.st_size - n + (nl - f->buf) + 1;
	} else if ((uint64_t)st.st_size > FOLLOW_LINE_MAX) {
		/* Unfinished overlong line: drop the rest of it. */
		f->rd_off = f->done = st.st_size;
		f->skip = true;
		f->st.skipped_long++;
	}
}

/* Deliver the whole lines among the buffered bytes plus n fresh ones. */
static int file_split(struct follower *f, size_t n, follow_line_cb cb, void *ctx)
{
	size_t total = f->len + n, start = 0;
	uint64_t buf_off = f->rd_off - total;	/* file offset of buf[0] */
	char *nl;
	int lines = 0;

	while ((nl = memchr(f->buf + start, '\n', total - start))) {
		size_t llen = nl - (f->buf + start);

		if (f->skip) {
			f->skip = false;	/* tail of an overlong line */
		} else if (llen > FOLLOW_LINE_MAX) {
			f->st.skipped_long++;
		} else {
			*nl = '\0';
			cb(ctx, f->buf + start, llen);
			lines++;
		}
		start = nl - f->buf + 1;
		f->done = buf_off + start;
	}
	total -= start;
	if (!f->skip && total > FOLLOW_LINE_MAX) {
		/* done stays at the line's start: a restart skips it again. */
		f->skip = true;
		f->st.skipped_long++;
	}
	f->len = f->skip ? 0 : total;
	memmove(f->buf, f->buf + start, f->len);
	f->st.lines += lines;
	return lines;
}

/*
 * Read the current file up to EOF (0), until the call's budget runs out (1),
 * or a read error (-errno, logged once per errno: the follower stays usable).
 */
static int file_drain(struct follower *f, follow_line_cb cb, void *ctx, int *lines,
		      size_t *bytes)
{
	ssize_t n;

	while (*bytes < FOLLOW_BATCH_BYTES && *lines < FOLLOW_BATCH_LINES) {
		n = pread(f->fd, f->buf + f->len, BUF_SIZE - f->len, f->rd_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;

			f->st.read_errors++;
			if (err != f->read_err)
				pr_warn("Couldn't read log '%s' of source '%s': %s",
					f->path, f->name, strerror(-err));
			f->read_err = err;
			return err;
		}
		f->read_err = 0;
		if (n == 0)
			return 0;
		f->rd_off += n;
		f->st.bytes += n;
		*bytes += n;
		*lines += file_split(f, n, cb, ctx);
	}
	return 1;
}

/*
 * Has the path been taken over by another file we should switch to? Only once
 * the new file has data, or ours is deleted: after a rename rotation the
 * writer keeps appending to the old file until it reopens, and those lines
 * must not be lost.
 */
static bool file_rotated(struct follower *f)
{
	struct stat path_st, fd_st;

	if (stat(f->path, &path_st)) {
		f->stale = true;	/* logrotate renames before it creates */
		return false;
	}
	f->stale = path_st.st_ino != f->ino || path_st.st_dev != f->dev;
	if (!f->stale)
		return false;
	return path_st.st_size > 0 ||
	       (!fstat(f->fd, &fd_st) && fd_st.st_nlink == 0);
}

/* Drain inotify. False when every event was about other files, so there is
 * nothing to do; a tick (no events) always checks. */
static bool file_events(struct follower *f)
{
	char b[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false, relevant = false;
	const struct inotify_event *ev;
	ssize_t n;

	while ((n = read(f->ifd, b, sizeof(b))) > 0) {
		any = true;
		for (char *p = b; p < b + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_IGNORED) {
				pr_warn("Log directory '%s' of source '%s' went away, retrying",
					f->dir, f->name);
				f->wd = -1;
			}
			/* While the old file is stale, its writes (under the
			 * rotated name) matter too. */
			if ((ev->mask & IN_Q_OVERFLOW) || f->stale ||
			    (ev->len && !strcmp(ev->name, f->base)))
				relevant = true;
		}
	}
	if (f->wd < 0) {
		f->wd = inotify_add_watch(f->ifd, f->dir, DIR_EVENTS);
		relevant = true;
	}
	return relevant || !any;
}

/* copytruncate: the file shrank below what we have read. */
static void file_check_truncated(struct follower *f)
{
	struct stat st;

	if (!fstat(f->fd, &st) && (uint64_t)st.st_size < f->rd_off) {
		pr_info("Log '%s' of source '%s' was truncated, reading from its start",
			f->path, f->name);
		f->st.truncations++;
		file_rewind(f);
	}
}

/*
 * One bounded burst: the current file up to EOF, then the files that took
 * the path over since, at most ROTATE_HOPS of them; bytes and lines are
 * budgeted across all of them. Whatever stops the burst (EOF, a read error,
 * the budget), the path is checked before the next file is read: an error
 * on the old file never pins the follower to it.
 */
static int file_process(struct follower *f, follow_line_cb cb, void *ctx, bool pending)
{
	size_t bytes = 0;
	int lines = 0, ret, hops = 0;

	if (!file_events(f) && !pending)
		return 0;
	if (f->fd < 0 && file_reopen(f))
		return 0;	/* not there (yet), or not a regular file: wait */
	for (;;) {
		file_check_truncated(f);
		ret = file_drain(f, cb, ctx, &lines, &bytes);
		if (ret > 0) {
			kick(f, true);	/* the budget ran out: more of this file */
			return lines;
		}
		if (!file_rotated(f))
			break;
		if (hops++ == ROTATE_HOPS) {
			kick(f, true);	/* the path keeps changing: come back */
			break;
		}
		if (file_reopen(f))
			break;
		f->st.rotations++;
		pr_debug("Log '%s' of source '%s' was rotated", f->path, f->name);
	}
	return ret < 0 && !lines ? ret : lines;
}

struct follower *follow_file_open(const char *name, const char *path, bool start_at_end)
{
	struct follower *f;
	char *slash;
	int ifd, err;

	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0)
		return NULL;
	f = follower_new(name, ifd);
	if (!f) {
		close(ifd);
		return NULL;
	}
	f->ifd = ifd;
	f->path = strdup(path);
	f->dir = strdup(path);
	if (!f->path || !f->dir) {
		err = -ENOMEM;
		goto err;
	}
	slash = strrchr(f->dir, '/');
	f->base = f->path + (slash ? slash - f->dir + 1 : 0);
	if (!slash)
		strcpy(f->dir, ".");
	else
		slash[slash == f->dir] = '\0';	/* keep "/" for "/file" */
	/* Watch the directory, not the file: the file comes and goes. */
	f->wd = inotify_add_watch(ifd, f->dir, DIR_EVENTS);
	if (f->wd < 0) {
		err = -errno;
		pr_warn("Couldn't watch directory '%s' of log source '%s': %s",
			f->dir, name, strerror(-err));
		goto err;
	}
	/* A missing file, or one that is not a regular file (-EINVAL), is
	 * waited for; a directory is a mistake in the policy. */
	err = file_reopen(f);
	if (err && err != -ENOENT && err != -EINVAL)
		goto err;
	if (!err && start_at_end)
		file_seek_end(f);
	return f;
err:
	follow_close(f);
	errno = -err;
	return NULL;
}

static int file_get_pos(struct follower *f, char *buf, size_t len)
{
	size_t n = f->done < FP_MAX ? f->done : FP_MAX;
	uint64_t hash = 0;
	int err;

	if (f->fd < 0)
		return -ENOENT;
	err = fingerprint(f->fd, n, false, &hash);
	if (err)
		return err;
	if ((size_t)snprintf(buf, len, "%ju:%" PRIu64 ":%zu:s%016" PRIx64,
			     (uintmax_t)f->ino, f->done, n, hash) >= len)
		return -ENOSPC;
	return 0;
}

/*
 * "INODE:OFFSET:FPLEN:sHASH", or the same without the 's' and with an FNV-1a
 * fingerprint as imapguard 0.1 saved it: after an upgrade the old
 * fingerprint is checked the old way and reading resumes exactly where the
 * old version stopped (nothing read twice, nothing skipped); the next save
 * writes the new form.
 */
static int file_set_pos(struct follower *f, const char *pos)
{
	uintmax_t ino;
	uint64_t off, hash, want = 0;
	size_t n;
	struct stat st;
	bool legacy;
	int end = 0;

	if (sscanf(pos, "%ju:%" SCNu64 ":%zu:%n", &ino, &off, &n, &end) != 3 || !end)
		return -EINVAL;
	legacy = pos[end] != 's';
	pos += end + !legacy;
	end = 0;
	if (!isxdigit((unsigned char)*pos) || sscanf(pos, "%" SCNx64 "%n", &want, &end) != 1 ||
	    pos[end] || n > FP_MAX || n > off)
		return -EINVAL;
	if (f->fd < 0)
		return -ENOENT;
	if (fstat(f->fd, &st))
		return -errno;
	if (st.st_ino != ino || (uint64_t)st.st_size < off ||
	    fingerprint(f->fd, n, legacy, &hash) || hash != want) {
		pr_info("Saved position of log source '%s' is stale, reading '%s' from its start",
			f->name, f->path);
		file_rewind(f);
		return -ESTALE;
	}
	file_rewind(f);
	f->rd_off = f->done = off;
	return 0;
}

/* ---- journald ----------------------------------------------------------- */

/* A MESSAGE may hold several lines and is not NUL-terminated. */
static int journal_deliver(struct follower *f, const char *msg, size_t len,
			   follow_line_cb cb, void *ctx)
{
	const char *end = msg + len, *nl;
	int lines = 0;

	f->st.bytes += len;
	for (; msg < end; msg = nl + 1) {
		nl = memchr(msg, '\n', end - msg);
		if (!nl)
			nl = end;
		if (nl - msg > FOLLOW_LINE_MAX) {
			f->st.skipped_long++;
			continue;
		}
		memcpy(f->buf, msg, nl - msg);
		f->buf[nl - msg] = '\0';
		cb(ctx, f->buf, nl - msg);
		lines++;
	}
	f->st.lines += lines;
	return lines;
}

static int journal_process(struct follower *f, follow_line_cb cb, void *ctx)
{
	const void *data;
	size_t len;
	uint64_t bytes = f->st.bytes;
	int lines = 0, entries, r;

	/* Acknowledges the inotify events; new files are picked up here. */
	r = sd_journal_process(f->j);
	if (r < 0)
		return r;
	for (entries = 0; entries < FOLLOW_BATCH_LINES &&
			  f->st.bytes - bytes < FOLLOW_BATCH_BYTES; entries++) {
		r = sd_journal_next(f->j);
		if (r < 0)
			return r;
		if (r == 0)
			return lines;
		r = sd_journal_get_data(f->j, "MESSAGE", &data, &len);
		if (r < 0)
			continue;	/* no MESSAGE, or a corrupt entry */
		lines += journal_deliver(f, (const char *)data + 8, len - 8, cb, ctx);
	}
	kick(f, true);
	return lines;
}

/*
 * Only trusted fields: journald refuses fields starting with '_' from
 * clients and fills _SYSTEMD_UNIT itself, from the sender's cgroup, which an
 * unprivileged user cannot join. SYSLOG_IDENTIFIER, the "dovecot" of
 * "dovecot: imap-login: ...", is whatever the sender says.
 */
int follow_journal_match(const char *unit, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "_SYSTEMD_UNIT=%s%s", unit,
				    strchr(unit, '.') ? "" : ".service");

	return n >= len ? -ENAMETOOLONG : 0;
}

struct follower *follow_journal_open(const char *name, const char *unit, bool start_at_end)
{
	const char *dir = getenv("IMAPGUARD_JOURNAL_DIR");
	struct follower *f;
	char match[320];	/* "_SYSTEMD_UNIT=" + a policy's unit (< 256) + ".service" */
	sd_journal *j;
	int r, fd;

	r = dir ? sd_journal_open_directory(&j, dir, 0) :
		  sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
	if (r < 0) {
		pr_warn("Couldn't open journal %s for source '%s': %s",
			dir ? dir : "(system)", name, strerror(-r));
		errno = -r;
		return NULL;
	}
	r = follow_journal_match(unit, match, sizeof(match));
	if (r >= 0)
		r = sd_journal_add_match(j, match, 0);
	if (r >= 0 && start_at_end) {
		/* Land on the last entry, so next() yields only new ones. */
		r = sd_journal_seek_tail(j);
		if (r >= 0)
			r = sd_journal_previous(j);
	}
	fd = r < 0 ? r : sd_journal_get_fd(j);
	if (fd < 0) {
		pr_warn("Couldn't set up journal match '%s' for source '%s': %s",
			match, name, strerror(-fd));
		sd_journal_close(j);
		errno = -fd;
		return NULL;
	}
	f = follower_new(name, fd);
	if (!f) {
		sd_journal_close(j);
		return NULL;
	}
	f->j = j;
	return f;
}

static int journal_get_pos(struct follower *f, char *buf, size_t len)
{
	char *cursor;
	int r;

	/* The current entry is the last one read, even after next() hit the end. */
	r = sd_journal_get_cursor(f->j, &cursor);
	if (r < 0)
		return r;
	r = (size_t)snprintf(buf, len, "%s", cursor) >= len ? -ENOSPC : 0;
	free(cursor);
	return r;
}

static int journal_set_pos(struct follower *f, const char *pos)
{
	int r;

	r = sd_journal_seek_cursor(f->j, pos);
	if (r < 0)
		return r;
	r = sd_journal_next(f->j);
	if (r < 0)
		return r;
	/* On the saved entry: it was delivered, carry on after it. */
	if (r > 0 && sd_journal_test_cursor(f->j, pos) > 0)
		return 0;
	/* The entry is gone: we landed on the nearest later one, unseen, so
	 * step back for next() to deliver it. */
	if (r > 0)
		sd_journal_previous(f->j);
	pr_info("Saved cursor of journal source '%s' not found, resuming at the nearest entry",
		f->name);
	return -ESTALE;
}

/* ---- common ------------------------------------------------------------- */

int follow_fd(struct follower *f)
{
	return f->epfd;
}

int follow_process(struct follower *f, follow_line_cb cb, void *ctx)
{
	bool pending = kick(f, false);

	return f->j ? journal_process(f, cb, ctx) : file_process(f, cb, ctx, pending);
}

int follow_get_pos(struct follower *f, char *buf, size_t len)
{
	return f->j ? journal_get_pos(f, buf, len) : file_get_pos(f, buf, len);
}

int follow_set_pos(struct follower *f, const char *pos)
{
	return f->j ? journal_set_pos(f, pos) : file_set_pos(f, pos);
}

const char *follow_name(struct follower *f)
{
	return f->name;
}

void follow_get_stats(struct follower *f, struct follow_stats *st)
{
	*st = f->st;
}

void follow_close(struct follower *f)
{
	if (!f)
		return;
	if (f->j)
		sd_journal_close(f->j);	/* owns the fd we added to epfd */
	if (f->fd >= 0)
		close(f->fd);
	if (f->ifd >= 0)
		close(f->ifd);
	if (f->kickfd >= 0)
		close(f->kickfd);
	if (f->epfd >= 0)
		close(f->epfd);
	free(f->buf);
	free(f->path);
	free(f->dir);
	free(f->name);
	free(f);
}
