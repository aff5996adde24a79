// SPDX-License-Identifier: GPL-2.0
/* The few helpers jansson leaves to its callers (see json.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "base/json.h"
#include "base/text.h"

json_t *json_textn(const char *s, size_t n)
{
	char *clean;
	json_t *j;

	if (!s)
		return json_string("");
	if (utf8_valid(s, n))
		return json_stringn(s, n);
	clean = utf8_clean_dup(s, n);
	if (!clean)
		return NULL;
	j = json_string(clean);
	free(clean);
	return j;
}

json_t *json_text(const char *s)
{
	return json_textn(s, s ? strlen(s) : 0);
}

json_t *json_fixed(double v, int decimals)
{
	double scale = 1;

	for (int i = 0; i < decimals && i < 9; i++)
		scale *= 10;
	/* Round half away from zero without libm; the quotient is the double
	 * nearest the decimal, which %.15g prints back as that decimal. */
	return json_real((double)(long long)(v * scale + (v < 0 ? -0.5 : 0.5)) / scale);
}

int json_println(FILE *f, json_t *j)
{
	int err = 0;

	if (!j)
		return -ENOMEM;
	if (json_dumpf(j, f, JSON_DUMP_FLAGS) || fputc('\n', f) == EOF)
		err = -EIO;
	json_decref(j);
	return err;
}

char *json_take_string(json_t *j)
{
	char *s;

	if (!j)
		return NULL;
	s = json_dumps(j, JSON_DUMP_FLAGS);
	json_decref(j);
	return s;
}

json_t *json_parse_object(const char *buf, size_t len, json_error_t *err)
{
	json_error_t local;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, err ? err : &local);

	if (j && !json_is_object(j)) {
		json_decref(j);
		if (err)
			snprintf(err->text, sizeof(err->text), "not a JSON object");
		return NULL;
	}
	return j;
}
