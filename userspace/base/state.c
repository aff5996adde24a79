// SPDX-License-Identifier: GPL-2.0
/* The state file (format and safety rules in state.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/file.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/state.h"

/* The last line: record count and checksum. Read back byte for byte:
 * sscanf() would also take "+1", "0x..." and trailing bytes. */
#define END_FMT "end %llu %016llx\n"

int state_put(FILE *f, const char *fmt, ...)
{
	char line[STATE_MAX_LINE];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* A record that starts with "end " would read back as the end line. */
	if (n < 0 || n >= (int)sizeof(line) || strchr(line, '\n') || !strncmp(line, "end ", 4))
		return -EINVAL;
	return fprintf(f, "%s\n", line) < 0 ? -EIO : 0;
}

/* dirname() of path into buf; base points at the last component. */
static int split_path(const char *path, char dir[PATH_MAX], const char **base)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return snprintf(dir, PATH_MAX, ".") < 0 ? -EINVAL : (*base = path, 0);
	if (!slash[1] || slash - path >= PATH_MAX - 1)
		return -EINVAL;
	if (slash == path)
		strcpy(dir, "/");
	else
		snprintf(dir, PATH_MAX, "%.*s", (int)(slash - path), path);
	*base = slash + 1;
	return 0;
}

/* The directory, opened, if nobody but root (or us) can write in it. */
static int open_dir(const char *dir)
{
	struct stat st;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return -errno;
	if (fstat(dfd, &st)) {
		int err = -errno;

		close(dfd);
		return err;
	}
	if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		pr_warn("Refusing state directory '%s': owned by uid %u with mode %04o; it must "
			"be owned by root and not writable by group or others (chown root, chmod 700)",
			dir, (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777));
		close(dfd);
		return -EPERM;
	}
	return dfd;
}

static uint64_t count_lines(const char *s, size_t n)
{
	uint64_t lines = 0;

	for (const char *p = s; (p = memchr(p, '\n', n - (p - s))); p++)
		lines++;
	return lines;
}

static int write_all(int fd, const char *s, size_t n)
{
	for (ssize_t w; n; s += w, n -= w) {
		w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			w = 0;
		else if (w < 0)
			return -errno;
	}
	return 0;
}

/* A fresh temp file in dfd: O_EXCL|O_NOFOLLOW, so a planted symlink or file
 * is never written through; a stale one (a crash mid-save) is removed. */
static int open_tmp(int dfd, const char *tmp)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dfd, tmp, flags, 0600);

	if (fd < 0 && errno == EEXIST && !unlinkat(dfd, tmp, 0))
		fd = openat(dfd, tmp, flags, 0600);
	return fd < 0 ? -errno : fd;
}

/* Records into memory first: the checksum goes at the end, and a failed
 * writer leaves the old file untouched. */
static int render(state_write_fn fn, void *ctx, char **out, size_t *len)
{
	FILE *f = open_memstream(out, len);
	int err;

	if (!f)
		return -errno;
	err = fn(ctx, f);
	if (fclose(f) && !err)
		err = -ENOMEM;
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}

int state_save(const char *path, state_write_fn fn, void *ctx)
{
	char dir[PATH_MAX], tmp[NAME_MAX + 1], *recs = NULL, tail[64];
	const char *base;
	size_t len = 0;
	int dfd, fd, err;

	if ((err = split_path(path, dir, &base)))
		return err;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", base) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	dfd = open_dir(dir);
	if (dfd < 0)
		return dfd;
	err = render(fn, ctx, &recs, &len);
	if (err)
		goto out;
	fd = open_tmp(dfd, tmp);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	snprintf(tail, sizeof(tail), END_FMT, (unsigned long long)count_lines(recs, len),
		 (unsigned long long)hash_stable(recs, len));
	err = write_all(fd, STATE_MAGIC "\n", strlen(STATE_MAGIC) + 1);
	if (!err)
		err = write_all(fd, recs, len);
	if (!err)
		err = write_all(fd, tail, strlen(tail));
	/* fsync before rename: after a crash the name points at whole data. */
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && renameat(dfd, tmp, dfd, base))
		err = -errno;
	if (err)
		unlinkat(dfd, tmp, 0);
	else
		fsync(dfd);
out:
	free(recs);
	close(dfd);
	return err;
}

static int set_aside(const char *path, const char *why)
{
	char aside[PATH_MAX + 32];

	snprintf(aside, sizeof(aside), "%s.corrupt-%lld", path, (long long)time(NULL));
	if (rename(path, aside))
		pr_warn("State file '%s' is %s and could not be moved aside: %s", path, why,
			strerror(errno));
	else
		pr_warn("State file '%s' is %s; moved to '%s', starting with empty state",
			path, why, aside);
	return -EBADMSG;
}

/* Version 1's checksum, kept to read files older versions wrote: FNV-1a
 * chained over each record without its newline. */
static uint64_t fnv1a_v1(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

/*
 * Check buf (the whole file) and cut it into NUL-terminated records:
 * magic, lines of at most STATE_MAX_LINE with no NUL byte, and a last "end"
 * line whose count and checksum match. *recs points at the first record.
 */
static int check(char *buf, size_t len, char **recs, size_t *nrecs, const char **why)
{
	const char *end_line = NULL;
	size_t pos, n = 0;
	uint64_t v1 = 0xcbf29ce484222325ULL;
	char *nl, want[64];
	bool is_v1;

	*why = "not an imapguard state file";
	nl = memchr(buf, '\n', len);
	if (!nl)
		return -EBADMSG;
	*nl = '\0';
	/* The whole line: strcmp() alone would stop at a NUL inside it. */
	if (strlen(buf) != (size_t)(nl - buf))
		return -EBADMSG;
	is_v1 = !strcmp(buf, STATE_MAGIC_V1);
	if (!is_v1 && strcmp(buf, STATE_MAGIC))
		return -EBADMSG;
	*why = "corrupt";
	pos = nl + 1 - buf;
	*recs = buf + pos;
	while (pos < len) {
		char *s = buf + pos;

		nl = memchr(s, '\n', len - pos);
		if (end_line || !nl || (size_t)(nl - s) >= STATE_MAX_LINE || memchr(s, '\0', nl - s))
			return nl ? -EBADMSG : (*why = "truncated", -EBADMSG);
		if (!strncmp(s, "end ", 4)) {
			end_line = s;
		} else {
			if (is_v1)
				v1 = fnv1a_v1(v1, s, nl - s);
			n++;
		}
		pos = nl + 1 - buf;
	}
	if (!end_line) {
		*why = "truncated";
		return -EBADMSG;
	}
	/* The checksum: v2 over the record bytes, v1 as older versions did. */
	snprintf(want, sizeof(want), END_FMT, (unsigned long long)n,
		 (unsigned long long)(is_v1 ? v1 : hash_stable(*recs, end_line - *recs)));
	if (strlen(want) != (size_t)(buf + len - end_line) || memcmp(end_line, want, strlen(want)))
		return -EBADMSG;
	for (char *p = *recs; p < end_line; p++)
		if (*p == '\n')
			*p = '\0';
	*nrecs = n;
	return 0;
}

int state_load(const char *path, state_line_fn fn, void *ctx)
{
	char dir[PATH_MAX], *buf = NULL, *rec = NULL;
	const char *base, *why;
	size_t len = 0, n = 0;
	int dfd, err;

	if ((err = split_path(path, dir, &base)))
		return err;
	dfd = open_dir(dir);
	if (dfd < 0)
		return dfd;	/* -ENOENT: no directory, no state yet */
	close(dfd);
	/* Never through a symlink, never blocking on a FIFO, never unbounded. */
	err = file_read(path, STATE_MAX_BYTES, FILE_NOFOLLOW, &buf, &len);
	if (err == -ENOENT)
		return err;
	if (err == -FILE_ENOTREG || err == -ELOOP || err == -EFBIG)
		return set_aside(path, err == -ELOOP ? "a symbolic link" : err == -EFBIG ?
				 "larger than the 256 MiB limit" : "not a regular file");
	if (err) {
		pr_warn("Couldn't read state file '%s': %s; starting with empty state", path,
			file_strerror(err));
		return err;
	}
	err = check(buf, len, &rec, &n, &why);
	if (err) {
		free(buf);
		return set_aside(path, why);
	}
	for (size_t i = 0; i < n; i++, rec += strlen(rec) + 1)
		if (fn(ctx, rec))
			pr_warn("State file '%s': ignored bad record '%.60s'", path, rec);
	free(buf);
	return 0;
}

int state_check(const char *path)
{
	char dir[PATH_MAX];
	const char *base;
	int dfd, err = split_path(path, dir, &base);

	if (err)
		return err;
	dfd = open_dir(dir);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	close(dfd);
	return 0;
}
