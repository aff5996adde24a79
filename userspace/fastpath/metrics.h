/* SPDX-License-Identifier: GPL-2.0 */
/* Prometheus text exposition (format 0.0.4) of the pinned maps' state. */
#ifndef IMAPGUARD_METRICS_H
#define IMAPGUARD_METRICS_H
#include <stdbool.h>
#include <stdio.h>
#include "fastpath/fastpath.h"

/* imapguard_up 1, counters per reason, bans active, map fill, events lost,
 * of the fast path pinned in dir. 0 or -errno. */
int metrics_write(FILE *f, const char *dir, struct ig_maps *m);
/* imapguard_up alone: 1 when the fast path is loaded (its pinned maps are
 * read), 0 when nothing is: the exposition to give when there is nothing
 * else to say, so a scraper sees "down" rather than an error. */
void metrics_write_up(FILE *f, bool up);

#endif
