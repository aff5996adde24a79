/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c, README "Fuzzing").
 * A harness checks properties, not only "no crash": FUZZ_CHECK prints what
 * was violated and aborts, which libFuzzer reports as a crash and saves the
 * input. Output goes to fd 2 directly: a harness may have stderr captured.
 */
#ifndef IMAPGUARD_FUZZ_H
#define IMAPGUARD_FUZZ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/text.h"

/* Set by a harness that must undo something (a temporary directory)
 * before a failed check aborts; it runs once. */
static void (*fuzz_cleanup)(void) __attribute__((unused));

#define FUZZ_CHECK(cond, ...) do {						\
	if (!(cond)) {								\
		void (*___undo)(void) = fuzz_cleanup;				\
										\
		dprintf(2, "fuzz property violated (%s:%d): %s: ",		\
			__FILE__, __LINE__, #cond);				\
		dprintf(2, __VA_ARGS__);					\
		dprintf(2, "\n");						\
		fuzz_cleanup = NULL;						\
		if (___undo)							\
			___undo();						\
		abort();							\
	}									\
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Text fit for a terminal or a log: valid UTF-8, no NUL, no C0 control,
 * DEL or C1 control (U+0080..U+009F). */
static inline bool fuzz_text_ok(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	if (!utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (u[i] < 0x20 || u[i] == 0x7f || (u[i] == 0xc2 && i + 1 < n && u[i + 1] < 0xa0))
			return false;
	return true;
}

/* Every line of s (split at '\n') is fuzz_text_ok. */
static inline bool fuzz_lines_ok(const char *s, size_t n)
{
	while (n) {
		const char *nl = memchr(s, '\n', n);
		size_t l = nl ? (size_t)(nl - s) : n;

		if (!fuzz_text_ok(s, l))
			return false;
		s += l + !!nl;
		n -= l + !!nl;
	}
	return true;
}

/*
 * What the project writes to stderr (base/log.c) between begin and end,
 * caught in memory so a harness can check the rendered text. The caller
 * frees buf.
 */
struct fuzz_capture {
	FILE *saved, *f;
	char *buf;
	size_t len;
};

static inline void fuzz_capture_begin(struct fuzz_capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	FUZZ_CHECK(c->f, "open_memstream failed");
	c->saved = stderr;
	stderr = c->f;
}

static inline void fuzz_capture_end(struct fuzz_capture *c)
{
	stderr = c->saved;
	fclose(c->f);
}

/* A copy of [p, p + n) in a block of exactly n bytes, so that ASan sees a
 * read one past the end of the text; NUL-terminated only if nul is set. */
static inline char *fuzz_dup(const void *p, size_t n, bool nul)
{
	size_t sz = n + nul;
	char *s = malloc(sz ? sz : 1);	/* malloc(0) may return NULL */

	FUZZ_CHECK(s, "out of memory");
	memcpy(s, p, n);
	if (nul)
		s[n] = '\0';
	return s;
}

#endif
