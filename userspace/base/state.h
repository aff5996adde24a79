/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's state file: line records written atomically (a new temp file
 * in the same directory, fsync, rename, fsync of the directory) and closed
 * by an "end" line that carries the record count and a checksum, so
 * truncation or corruption is detected before a single record is trusted.
 *
 * Version 2 (written): "imapguard-state 2", records, "end N HEX" with HEX
 * the hash_stable() (SipHash) of every record line, newlines included.
 * Version 1 (read only, as older versions wrote it): "imapguard-state 1"
 * and an FNV-1a chain over the records; its bans survive an upgrade.
 *
 * The file's directory must be owned by root (or the daemon's user) and not
 * writable by group or others: whoever can write there could plant bans or
 * redirect the write. The file is never read through a symlink nor as a
 * FIFO or device, and is at most STATE_MAX_BYTES.
 */
#ifndef IMAPGUARD_STATE_H
#define IMAPGUARD_STATE_H
#include <stddef.h>
#include <stdio.h>

#define STATE_MAGIC "imapguard-state 2"
#define STATE_MAGIC_V1 "imapguard-state 1"
#define STATE_MAX_LINE 4096
#define STATE_MAX_BYTES (256u << 20)

/* Writes records with state_put(); returns 0 or -errno. */
typedef int (*state_write_fn)(void *ctx, FILE *f);
/* Called per record line (no newline) once the file checked out whole. */
typedef int (*state_line_fn)(void *ctx, char *line);

/* -EPERM: unsafe directory (see above; the warning names it). Other -errno
 * from mkdir, open, write, fsync or rename; the old file is then intact. */
int state_save(const char *path, state_write_fn fn, void *ctx);
/* A line of record text (at most STATE_MAX_LINE - 1 bytes, no newline) to
 * the FILE state_save() passed in; -EINVAL for a line that does not fit or
 * that starts with "end " (the end line's word). */
int state_put(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * -ENOENT: no state yet. -EPERM: unsafe directory, nothing read. -EBADMSG:
 * corrupt, truncated, not a regular file, a symlink or over STATE_MAX_BYTES;
 * the file was moved aside to PATH.corrupt-<time> (named in the warning) and
 * nothing was loaded. Other -errno: unreadable (warned), nothing loaded.
 */
int state_load(const char *path, state_line_fn fn, void *ctx);
/* Before anything else is set up: 0 if PATH's directory is safe or does not
 * exist yet (state_save makes it, mode 0700), -EPERM (warned) if unsafe. */
int state_check(const char *path);

#endif
