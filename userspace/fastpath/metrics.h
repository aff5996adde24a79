/* SPDX-License-Identifier: GPL-2.0 */
/* Prometheus text exposition (format 0.0.4) of the pinned maps' state. */
#ifndef IMAPGUARD_METRICS_H
#define IMAPGUARD_METRICS_H
#include <stdio.h>
#include "fastpath/fastpath.h"

/* Counters per reason, bans active, map fill, events lost. 0 or -errno. */
int metrics_write(FILE *f, struct ig_maps *m);

#endif
