/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prometheus text exposition: a family's HELP and TYPE lines and its
 * samples, so that each metric's name is written once where it is made.
 * Label values are our own names (reasons, kinds): nothing to escape.
 */
#ifndef IMAPGUARD_PROM_H
#define IMAPGUARD_PROM_H
#include <stdio.h>

/* "# HELP name help" and "# TYPE name type" (counter, gauge) */
void prom_head(FILE *f, const char *name, const char *type, const char *help);
/* A family of one unlabelled sample */
void prom_u64(FILE *f, const char *name, const char *type, const char *help,
	      unsigned long long v);
/* One sample of a family with one label: name{label="value"} v */
void prom_labelled(FILE *f, const char *name, const char *label, const char *value,
		   unsigned long long v);

#endif
