/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Text from untrusted peers (log lines, probed servers, HTTP clients) on its
 * way to JSON or a terminal. Only the *_dup functions allocate; dst is always
 * NUL-terminated when dstlen > 0, and a truncation never splits a UTF-8
 * sequence.
 */
#ifndef IMAPGUARD_TEXT_H
#define IMAPGUARD_TEXT_H
#include <stdbool.h>
#include <stddef.h>

#define UTF8_REPLACEMENT "\xef\xbf\xbd"	/* U+FFFD */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if s starts with an
 * invalid one (overlong forms, surrogates, > U+10FFFF and NUL are invalid). */
size_t utf8_seq_len(const unsigned char *s, size_t n);
/* n bytes at s are valid UTF-8 with no NUL. */
bool utf8_valid(const char *s, size_t n);
/* Copy n bytes of src as valid UTF-8: each invalid byte (and NUL) becomes
 * U+FFFD. Returns the number of bytes replaced. */
size_t utf8_clean(char *dst, size_t dstlen, const char *src, size_t n);
/* For a terminal: like utf8_clean, and C0 controls, DEL and C1 controls
 * (U+0080..U+009F) become '?', so no escape sequence survives. Returns the
 * number of bytes or characters replaced. */
size_t text_clean(char *dst, size_t dstlen, const char *src, size_t n);
/* utf8_clean() / text_clean() of n bytes at src into a new buffer big
 * enough for every replacement; the caller frees it. NULL when out of
 * memory. */
char *utf8_clean_dup(const char *src, size_t n);
char *text_clean_dup(const char *src, size_t n);

#endif
