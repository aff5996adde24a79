// SPDX-License-Identifier: GPL-2.0
/*
 * journalctl -o json lines: the top-level MESSAGE, read with jansson. In
 * journald's JSON format a field is a string when its value is valid UTF-8,
 * an array of byte values (0-255) when it is not, an array of those when an
 * entry holds the field more than once, and null when it was too large to
 * print (journalctl without --all).
 */
#include <errno.h>
#include "authlog/parse.h"
#include "base/json.h"

/* A byte-array value; -EINVAL for anything but integers 0..255. */
static int message_bytes(const json_t *a, char *out, size_t cap, size_t *n)
{
	size_t i;
	json_t *v;

	if (json_array_size(a) > cap)
		return -EINVAL;
	json_array_foreach(a, i, v) {
		json_int_t b = json_is_integer(v) ? json_integer_value(v) : -1;

		if (b < 0 || b > 255)
			return -EINVAL;	/* also an array of values: MESSAGE twice */
		out[i] = (char)b;
	}
	*n = json_array_size(a);
	return 0;
}

int al_json_message(const char *p, const char *e, char *out, size_t cap, size_t *n)
{
	json_error_t jerr;
	json_t *o, *m;
	int err = 0;

	/* Duplicate keys would give two readings of one line: refuse them.
	 * NUL is allowed inside values: it must not hide a failure. */
	o = json_loadb(p, e - p, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return -EINVAL;
	}
	m = json_object_get(o, "MESSAGE");
	if (!m) {
		err = -ENOENT;
	} else if (json_is_string(m)) {
		*n = json_string_length(m);
		if (*n > cap)
			err = -EINVAL;
		else
			memcpy(out, json_string_value(m), *n);
	} else if (json_is_array(m)) {
		err = message_bytes(m, out, cap, n);
	} else {
		err = -EINVAL;	/* null (too large) or not a message at all */
	}
	json_decref(o);
	return err;
}
