/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's state file: line records written atomically (temp file,
 * fsync, rename, fsync of the directory) and closed by an "end" line that
 * carries the record count and a checksum, so truncation or corruption is
 * detected before a single record is trusted.
 */
#ifndef IMAPGUARD_STATE_H
#define IMAPGUARD_STATE_H
#include <stddef.h>
#include <stdio.h>

#define STATE_MAGIC "imapguard-state 1"
#define STATE_MAX_LINE 4096

/* Writes records with state_put(); returns 0 or -errno. */
typedef int (*state_write_fn)(void *ctx, FILE *f);
/* Called per record line (no newline) once the file checked out whole. */
typedef int (*state_line_fn)(void *ctx, char *line);

int state_save(const char *path, state_write_fn fn, void *ctx);
/* A line of record text; the writer counts and checksums it. -EINVAL for a
 * record of STATE_MAX_LINE bytes or more, with a '\n', or that starts with
 * "end " (the end line's word). */
int state_put(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * -ENOENT: no state yet. -EBADMSG: corrupt or truncated; the file was moved
 * aside to PATH.corrupt-<time> (named in the warning) and nothing was loaded.
 */
int state_load(const char *path, state_line_fn fn, void *ctx);

#endif
