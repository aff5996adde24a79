// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>
#include "base/json.h"
#include "base/log.h"

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

static void vlog(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *names[] = { "warn", "info", "debug", "debug" };
	char *buf;
	size_t n;

	if (lvl > cur_level)
		return;
	/* Any length: a message naming a long path is not cut. */
	if (vasprintf(&buf, fmt, ap) < 0) {
		fputs("imapguard: out of memory formatting a log line\n", stderr);
		return;
	}
	n = strlen(buf);
	/* libbpf messages end in '\n'; ours do not. Normalise to one line. */
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (log_json)
		log_json_line(names[lvl], buf);
	else if (lvl == LL_WARN)
		fprintf(stderr, "imapguard: %s\n", buf);
	else
		fprintf(stderr, "%s\n", buf);
	free(buf);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level lvl = level == LIBBPF_WARN ? LL_WARN :
			     level == LIBBPF_INFO ? LL_DEBUG : LL_LIBBPF;

	vlog(lvl, fmt, ap);
	return 0;
}

void log_init_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
