/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's auth-log half: followers (files, journald) feed the parser,
 * the parser feeds the detector, and the detector's decisions become bans.
 */
#ifndef IMAPGUARD_AUTHWATCH_H
#define IMAPGUARD_AUTHWATCH_H
#include <stdint.h>
#include <stdio.h>

struct authwatch;
struct daemon;
struct policy;

int authwatch_open(struct authwatch **aw, struct daemon *d, const struct policy *pol, int epfd);
/* Open the sources, at their saved positions (after state load). */
int authwatch_start(struct authwatch *aw);
/* New policy: thresholds change, sources are reopened where they changed. */
int authwatch_reconfigure(struct authwatch *aw, const struct policy *pol);
void authwatch_ready(struct authwatch *aw, void *src);	/* a source fd is readable */
void authwatch_tick(struct authwatch *aw);		/* once a second */
int authwatch_save(struct authwatch *aw, FILE *f);
int authwatch_load_line(struct authwatch *aw, char *line);
void authwatch_status_json(struct authwatch *aw, FILE *f);	/* ,"authlog":{...} */
/* Prometheus lines: lines, failures per format, bans per rule. */
void authwatch_metrics(struct authwatch *aw, FILE *f);
void authwatch_why_json(struct authwatch *aw, const uint8_t addr[16], FILE *f);
void authwatch_close(struct authwatch *aw);

#endif
