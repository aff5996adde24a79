// SPDX-License-Identifier: GPL-2.0
/* Prometheus text exposition (prom.h). */
#include "base/prom.h"

void prom_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_u64(FILE *f, const char *name, const char *type, const char *help,
	      unsigned long long v)
{
	prom_head(f, name, type, help);
	fprintf(f, "%s %llu\n", name, v);
}

void prom_labelled(FILE *f, const char *name, const char *label, const char *value,
		   unsigned long long v)
{
	fprintf(f, "%s{%s=\"%s\"} %llu\n", name, label, value, v);
}
