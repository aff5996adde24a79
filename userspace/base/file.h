/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading a file that someone else may have replaced: a FIFO, a device or a
 * huge file where a small regular file belongs. The open never blocks
 * (O_NONBLOCK: a FIFO without a writer opens at once), anything but a
 * regular file is refused before a byte is read (fstat on the open file,
 * so a swap between a check and the open changes nothing), and no more than
 * the caller's cap is ever read.
 */
#ifndef IMAPGUARD_FILE_H
#define IMAPGUARD_FILE_H
#include <errno.h>
#include <stddef.h>

/* flags for file_read() */
#define FILE_NOFOLLOW	1	/* the last component must not be a symlink */

/* "Not a regular file" (a FIFO, device, socket or directory). */
#define FILE_ENOTREG	EMEDIUMTYPE

/*
 * PATH whole into a malloc'd buffer with a NUL byte after the data (not
 * counted in *len); the caller frees *out. Returns 0 or -errno: the open's
 * errors (-ENOENT, -EACCES, -ELOOP for a symlink under FILE_NOFOLLOW, ...),
 * -FILE_ENOTREG, -EFBIG when the file is larger than max bytes (also when it
 * grows past max while being read), -ENOMEM, or a read error. *out and *len
 * are written only on success.
 */
int file_read(const char *path, size_t max, int flags, char **out, size_t *len);

/* strerror() that also names FILE_ENOTREG and -ELOOP in file_read's sense;
 * takes the negative or positive code. */
const char *file_strerror(int err);

#endif
