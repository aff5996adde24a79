/* SPDX-License-Identifier: GPL-2.0 */
/* Prometheus text exposition (format 0.0.4) of the pinned maps' state. */
#ifndef IMAPGUARD_METRICS_H
#define IMAPGUARD_METRICS_H
#include <stdbool.h>
#include <stdio.h>
#include "fastpath/fastpath.h"

/* imapguard_up 1, counters per reason, bans active, map fill, events lost.
 * 0 or -errno. */
int metrics_write(FILE *f, struct ig_maps *m);
/* imapguard_up alone: 1 when the fast path is loaded (its pinned maps are
 * read), 0 when nothing is: the exposition to give when there is nothing
 * else to say, so a scraper sees "down" rather than an error. */
void metrics_write_up(FILE *f, bool up);
/* A full HTTP/1.0 response for a request; 200 only for GET /metrics. */
int metrics_http_reply(const char *req, size_t len, struct ig_maps *m,
		       void (*extra)(FILE *f, void *ctx), void *ctx, char **out, size_t *outlen);

#endif
