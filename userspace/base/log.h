/* SPDX-License-Identifier: GPL-2.0 */
#ifndef IMAPGUARD_LOG_H
#define IMAPGUARD_LOG_H
#include <stdio.h>

/* LL_*, not LOG_*: <syslog.h> (pulled in by sd-journal.h) owns those names. */
enum log_level { LL_WARN, LL_INFO, LL_DEBUG, LL_LIBBPF };

/* Set from the number of -v flags: 0 warnings+info, 1 debug, 2 libbpf debug. */
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* json=1 prints one JSON object per line (for the daemon's --log-format
 * json): ts, level, msg; invalid UTF-8 in a message becomes U+FFFD. */
void log_set_json(int json);
void log_init_libbpf(void);

/* One line to stderr. Arguments may be untrusted text: the message goes out
 * through text_clean() (text.h), so control bytes, '\n' included, show as
 * '?' and invalid UTF-8 as U+FFFD; libbpf's multi-line messages keep their
 * line breaks. */
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_warn(fmt, ...) log_msg(LL_WARN, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...) log_msg(LL_INFO, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) log_msg(LL_DEBUG, fmt, ##__VA_ARGS__)

#endif
