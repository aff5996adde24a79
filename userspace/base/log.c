// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>
#include "base/log.h"
#include "base/text.h"

static enum log_level cur_level = LL_INFO;
static int log_json;

void log_set_level(enum log_level lvl) { cur_level = lvl; }
enum log_level log_get_level(void) { return cur_level; }
void log_set_json(int json) { log_json = json; }

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void put_line(enum log_level lvl, const char *s)
{
	static const char *names[] = { "warn", "info", "debug", "debug" };

	if (log_json) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		fprintf(stderr, "{\"ts\":%lld.%03ld,\"level\":\"%s\",\"msg\":",
			(long long)ts.tv_sec, ts.tv_nsec / 1000000, names[lvl]);
		json_str(stderr, s);
		fputs("}\n", stderr);
	} else if (lvl == LL_WARN) {
		fprintf(stderr, "imapguard: %s\n", s);
	} else {
		fprintf(stderr, "%s\n", s);
	}
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
	char buf[1024], clean[3 * sizeof(buf)];
	const char *p = buf, *nl;
	size_t n;

	if (lvl > cur_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	/* libbpf messages end in '\n'; ours do not. */
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (;;) {
		nl = lines ? memchr(p, '\n', buf + n - p) : NULL;
		text_clean(clean, sizeof(clean), p, (nl ? nl : buf + n) - p);
		put_line(lvl, clean);
		if (!nl)
			break;
		p = nl + 1;
	}
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
