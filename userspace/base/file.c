// SPDX-License-Identifier: GPL-2.0
/* Bounded reads of regular files (see file.h). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/file.h"

/* Grow to at most max + 1 bytes: reading one byte past max tells "exactly
 * max" from "more than max" without trusting st_size, which may change. */
static int grow(char **buf, size_t *cap, size_t max)
{
	size_t want = *cap ? *cap * 2 : 4096;
	char *nb;

	if (want > max + 1 || want < *cap)
		want = max + 1;
	nb = realloc(*buf, want + 1);	/* + the NUL byte */
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = want;
	return 0;
}

static int read_fd(int fd, size_t max, size_t hint, char **out, size_t *outlen)
{
	size_t len = 0, cap = hint < max ? hint + 1 : 0;
	char *buf = cap ? malloc(cap + 1) : NULL;
	ssize_t n;
	int err = 0;

	if (cap && !buf)
		return -ENOMEM;
	while (!err) {
		if (len == cap && (err = grow(&buf, &cap, max)))
			break;
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n ? -errno : 0;
			break;
		}
		len += n;
		if (len > max)
			err = -EFBIG;
	}
	if (err) {
		free(buf);
		return err;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

int file_read(const char *path, size_t max, int flags, char **out, size_t *len)
{
	int oflags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	struct stat st;
	int fd, err;

	if (flags & FILE_NOFOLLOW)
		oflags |= O_NOFOLLOW;
	fd = open(path, oflags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = -FILE_ENOTREG;
	else if ((size_t)st.st_size > max)
		err = -EFBIG;
	else
		err = read_fd(fd, max, (size_t)st.st_size, out, len);
	close(fd);
	return err;
}

const char *file_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err == FILE_ENOTREG)
		return "not a regular file";
	if (err == ELOOP)
		return "is a symbolic link (or too many levels of them)";
	if (err == EFBIG)
		return "file larger than its size limit";
	return strerror(err);
}
