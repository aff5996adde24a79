// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "base/state.h"

/* The last line: record count and FNV-1a 64 of the records. */
#define END_FMT "end %llu %016llx"

/* Running count and FNV-1a of every record written through state_put(). */
static struct { uint64_t n, hash; } wr;

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

int state_put(FILE *f, const char *fmt, ...)
{
	char line[STATE_MAX_LINE];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* A record that starts like the end line would end the file early:
	 * state_load() would refuse everything written. */
	if (n < 0 || n >= (int)sizeof(line) || strchr(line, '\n') || !strncmp(line, "end ", 4))
		return -EINVAL;
	wr.n++;
	wr.hash = fnv(wr.hash, line, n);
	return fprintf(f, "%s\n", line) < 0 ? -EIO : 0;
}

static int mkdir_parent(const char *path)
{
	char buf[4096], *dir;

	snprintf(buf, sizeof(buf), "%s", path);
	dir = dirname(buf);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int state_save(const char *path, state_write_fn fn, void *ctx)
{
	char tmp[4096], dirbuf[4096];
	FILE *f;
	int fd, err, dfd;

	if ((err = mkdir_parent(path)))
		return err;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		goto fail;
	}
	wr.n = 0;
	wr.hash = 0xcbf29ce484222325ULL;
	fprintf(f, "%s\n", STATE_MAGIC);
	err = fn(ctx, f);
	if (!err && fprintf(f, END_FMT "\n", (unsigned long long)wr.n,
			    (unsigned long long)wr.hash) < 0)
		err = -EIO;
	/* fsync before rename: after a crash the name points at whole data. */
	if (!err && (fflush(f) || fsync(fileno(f))))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (err)
		goto fail;
	if (rename(tmp, path)) {
		err = -errno;
		goto fail;
	}
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	unlink(tmp);
	return err;
}

static int set_aside(const char *path, const char *why)
{
	char aside[4200];

	snprintf(aside, sizeof(aside), "%s.corrupt-%lld", path, (long long)time(NULL));
	if (rename(path, aside))
		pr_warn("State file '%s' is %s and could not be moved aside: %s", path, why,
			strerror(errno));
	else
		pr_warn("State file '%s' is %s; moved to '%s', starting with empty state",
			path, why, aside);
	return -EBADMSG;
}

/* Read all lines; check the magic, the end line, count and checksum. */
static int read_checked(FILE *f, char ***lines, size_t *n, const char **why)
{
	char buf[STATE_MAX_LINE + 2], end[48], **v = NULL, **tmp;
	uint64_t h = 0xcbf29ce484222325ULL;
	bool ended = false;
	size_t cap = 0, len;

	*n = 0;
	*why = "truncated";
	if (!fgets(buf, sizeof(buf), f) || strcmp(buf, STATE_MAGIC "\n")) {
		*why = "not an imapguard state file";
		return -EBADMSG;
	}
	while (fgets(buf, sizeof(buf), f)) {
		len = strlen(buf);
		if (ended || !len || buf[len - 1] != '\n' || memchr(buf, '\0', len - 1))
			goto bad;
		buf[--len] = '\0';
		/* Exactly what state_save() writes: sscanf() would also take
		 * "+1", "0x..." and trailing bytes, i.e. a damaged end line. */
		if (!strncmp(buf, "end ", 4)) {
			snprintf(end, sizeof(end), END_FMT, (unsigned long long)*n,
				 (unsigned long long)h);
			if (strcmp(buf, end))
				goto bad;
			ended = true;
			continue;
		}
		h = fnv(h, buf, len);
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			tmp = realloc(v, cap * sizeof(*v));
			if (!tmp)
				goto bad;
			v = tmp;
		}
		if (!(v[(*n)++] = strdup(buf)))
			goto bad;
	}
	*lines = v;
	return ended ? 0 : -EBADMSG;	/* no end line: truncated */
bad:
	*why = "corrupt";
	*lines = v;
	return -EBADMSG;
}

int state_load(const char *path, state_line_fn fn, void *ctx)
{
	const char *why;
	char **lines = NULL;
	size_t n = 0;
	FILE *f = fopen(path, "re");
	int err;

	if (!f)
		return -errno;
	err = read_checked(f, &lines, &n, &why);
	fclose(f);
	if (err)
		err = set_aside(path, why);
	for (size_t i = 0; i < n; i++) {
		if (!err && fn(ctx, lines[i]))
			pr_warn("State file '%s': ignored bad record '%.60s'", path, lines[i]);
		free(lines[i]);
	}
	free(lines);
	return err;
}
