// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>
#include "base/json.h"
#include "base/log.h"
#include "base/text.h"

static enum log_level cur_level = LL_INFO;
static int log_json;

void log_set_level(enum log_level lvl) { cur_level = lvl; }
enum log_level log_get_level(void) { return cur_level; }
void log_set_json(int json) { log_json = json; }

/* One object per line; the message may carry bytes from peers (a user
 * name from a log line), so it goes in through json_text(). */
static void log_json_line(const char *level, const char *msg)
{
	struct timespec ts;
	json_t *j;

	clock_gettime(CLOCK_REALTIME, &ts);
	j = json_pack("{s:o, s:s, s:o}", "ts", json_fixed(ts.tv_sec + ts.tv_nsec / 1e9, 3),
		      "level", level, "msg", json_text(msg));
	if (!j)
		fputs("imapguard: out of memory formatting a log line\n", stderr);
	json_println(stderr, j);
}

static void put_line(enum log_level lvl, const char *s)
{
	static const char *names[] = { "warn", "info", "debug", "debug" };

	if (log_json)
		log_json_line(names[lvl], s);
	else if (lvl == LL_WARN)
		fprintf(stderr, "imapguard: %s\n", s);
	else
		fprintf(stderr, "%s\n", s);
}

/*
 * Messages carry text from files and peers (policy lines, state records,
 * user names), so each goes out through text_clean(): no control byte or
 * invalid UTF-8 reaches a terminal, the journal or a JSON log line. Only
 * libbpf's messages (lines set: the verifier log) keep their line breaks,
 * one output line each; in ours a '\n' is the sender's and shows as '?'.
 */
static void vlog(enum log_level lvl, bool lines, const char *fmt, va_list ap)
{
	char *buf, *clean;
	const char *p, *nl;
	size_t n;

	if (lvl > cur_level)
		return;
	/* Any length: a message naming a long path is not cut. */
	if (vasprintf(&buf, fmt, ap) < 0) {
		fputs("imapguard: out of memory formatting a log line\n", stderr);
		return;
	}
	n = strlen(buf);
	clean = malloc(3 * n + 1);	/* an invalid byte grows to U+FFFD */
	if (!clean) {
		fputs("imapguard: out of memory formatting a log line\n", stderr);
		free(buf);
		return;
	}
	/* libbpf messages end in '\n'; ours do not. */
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (p = buf;;) {
		nl = lines ? memchr(p, '\n', buf + n - p) : NULL;
		text_clean(clean, 3 * n + 1, p, (nl ? nl : buf + n) - p);
		put_line(lvl, clean);
		if (!nl)
			break;
		p = nl + 1;
	}
	free(clean);
	free(buf);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, false, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level lvl = level == LIBBPF_WARN ? LL_WARN :
			     level == LIBBPF_INFO ? LL_DEBUG : LL_LIBBPF;

	vlog(lvl, true, fmt, ap);
	return 0;
}

void log_init_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
