/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Line followers for auth-log sources: a plain file (inotify) or journald
 * (sd-journal). The daemon owns the epoll loop; a follower only exposes an fd
 * and never blocks, sleeps or starts threads.
 *
 * Loop contract: add follow_fd() with EPOLLIN (level-triggered) and call
 * follow_process() when it is readable AND on the periodic tick. One call does
 * bounded work (FOLLOW_BATCH_BYTES / FOLLOW_BATCH_LINES); when more input is
 * pending, follow_fd() stays readable, so the loop comes back after serving
 * its other fds. Lines already there at open or set_pos raise no event: the
 * first tick (or an explicit call) delivers them.
 */
#ifndef IMAPGUARD_FOLLOW_H
#define IMAPGUARD_FOLLOW_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FOLLOW_LINE_MAX		8192		/* longer lines are skipped */
#define FOLLOW_BATCH_BYTES	(4u << 20)	/* per follow_process call */
#define FOLLOW_BATCH_LINES	16384
#define FOLLOW_POS_LEN		256		/* enough for any position */

/* One whole line without its '\n'; line[len] is '\0'. Valid only during the
 * call, and the callback must not call back into the same follower. */
typedef void (*follow_line_cb)(void *ctx, const char *line, size_t len);

struct follower;

/*
 * File source. The file may be missing (it is read from offset 0 once it
 * appears); its directory must exist. Only a regular file is read: a FIFO,
 * device or socket at the path (then or later) is refused with a warning and
 * the path stays watched, the next regular file there is read from offset 0.
 * start_at_end: skip what the file already holds, for a brand-new source
 * with no saved position. NULL + errno on error (ENOENT: no directory;
 * EISDIR: the path is a directory; EACCES & co from open; ENOMEM).
 */
struct follower *follow_file_open(const char *name, const char *path, bool start_at_end);
/*
 * journald source: the entries of one systemd unit, matched on the trusted
 * field _SYSTEMD_UNIT, which journald sets from the sender's control group.
 * A name without a '.' means NAME.service, as for journalctl -u. Never
 * SYSLOG_IDENTIFIER: any local user sets that with logger -t dovecot.
 * Reads the local journal, or the directory in $IMAPGUARD_JOURNAL_DIR.
 * NULL + errno on error (from sd-journal; ENAMETOOLONG for a long unit).
 */
struct follower *follow_journal_open(const char *name, const char *unit, bool start_at_end);
/* The sd_journal match for unit into buf: 0, or -ENAMETOOLONG. */
int follow_journal_match(const char *unit, char *buf, size_t len);

int follow_fd(struct follower *f);
/* Returns the number of lines delivered, or -errno (the follower stays usable,
 * the next call retries). */
int follow_process(struct follower *f, follow_line_cb cb, void *ctx);

/*
 * Position for the state file.
 * File: "INODE:OFFSET:FPLEN:sFPHASH": OFFSET is the first byte not yet
 * delivered as a whole line; FPHASH (hex, SipHash under base/hash.h's fixed
 * key) fingerprints the file's first FPLEN bytes to catch a reused inode.
 * follow_set_pos also takes the form imapguard 0.1 saved (no 's', FNV-1a), so
 * an upgrade resumes exactly. -ENOENT while the file does not exist.
 * journald: the cursor of the last entry read; -EADDRNOTAVAIL before any.
 */
int follow_get_pos(struct follower *f, char *buf, size_t len);
/*
 * Restore a position after open. 0: resumed exactly. -EINVAL: unparsable, the
 * open-time position is kept. -ESTALE: it no longer matches (file: other inode,
 * shorter file or other first bytes; journald: entry gone), and reading falls
 * back to what is surely new: the current file from offset 0, or the journal
 * entry nearest the cursor. -ENOENT: file missing, it is read from 0 once it
 * appears.
 */
int follow_set_pos(struct follower *f, const char *pos);
const char *follow_name(struct follower *f);
void follow_close(struct follower *f);

struct follow_stats {
	uint64_t lines;		/* delivered */
	uint64_t bytes;		/* read from the source */
	uint64_t skipped_long;	/* lines over FOLLOW_LINE_MAX */
	uint64_t rotations;	/* switched to a new file at the path */
	uint64_t truncations;	/* file shrank under us (copytruncate) */
	uint64_t refused;	/* not regular files found at the path (FIFO, device...) */
	uint64_t read_errors;	/* failed reads of the file (each logged once per errno) */
};
void follow_get_stats(struct follower *f, struct follow_stats *st);

#endif
