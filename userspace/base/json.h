/* SPDX-License-Identifier: GPL-2.0 */
/*
 * JSON goes through jansson, for writing and for reading: never printf'd
 * braces, never strstr. jansson refuses strings that are not valid UTF-8, so
 * text from peers goes in through json_text(), which replaces invalid bytes
 * with U+FFFD (documented in imapguard(8)): output is always valid JSON.
 *
 * Build objects with jansson itself (json_pack("{s:s, s:I}", ...),
 * json_object_set_new); these helpers cover what it leaves to the caller.
 */
#ifndef IMAPGUARD_JSON_H
#define IMAPGUARD_JSON_H
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

/* A JSON string holding s (NULL: ""), invalid UTF-8 replaced. NULL only
 * when out of memory; json_object_set_new() and json_pack's "o" accept
 * that and fail in turn. */
json_t *json_text(const char *s);
json_t *json_textn(const char *s, size_t n);
/* v rounded to decimals places (0..9) as a JSON real: json_println and
 * json_take_string print it as that decimal (599.9, not 599.89999999999998),
 * always with a '.' or an exponent, so a reader sees a real. NULL only when
 * out of memory. */
json_t *json_fixed(double v, int decimals);
/* How this project dumps JSON: one compact line, reals with 15 significant
 * digits (enough for a json_fixed timestamp in milliseconds). */
#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* Print j (JSON_DUMP_FLAGS) and a newline to f, then drop the reference (j
 * may be NULL: out of memory). 0 or -errno (-ENOMEM, -EIO). */
int json_println(FILE *f, json_t *j);
/* j as a compact NUL-terminated string (JSON_DUMP_FLAGS) the caller frees;
 * drops the reference. NULL when j is NULL or out of memory. */
char *json_take_string(json_t *j);
/* Parse one JSON object of at most len bytes (no trailing garbage).
 * NULL if it is not an object; err (may be NULL) says why. */
json_t *json_parse_object(const char *buf, size_t len, json_error_t *err);

#endif
