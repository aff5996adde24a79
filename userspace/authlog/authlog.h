/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Auth-log line parser: Dovecot (2.2 - 2.4, auth process and PAM lines
 * included), Cyrus, Courier, UW-IMAP and perdition, behind classic syslog,
 * RFC 5424, ISO, tai64n or journald -o json prefixes. Plain C, no regex,
 * linear time, no BPF dependency.
 *
 * Fields are only taken from the positions the server itself writes: a user
 * name that contains "rip=1.2.3.4", ">", commas or another address never
 * changes the address. A line whose structure an attacker could have forged
 * into two readings is dropped (ambiguous = true). Passwords some lines carry
 * are never copied out.
 */
#ifndef IMAPGUARD_AUTHLOG_H
#define IMAPGUARD_AUTHLOG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "policy/policy.h"		/* enum authlog_format */

#define AL_LINE_MAX	8192	/* longer lines are skipped */
#define AL_USER_LEN	128	/* longer user names are cut (on a UTF-8 boundary) */
#define AL_SESSION_LEN	64

enum al_kind { AL_NONE = 0, AL_FAIL, AL_SUCCESS };

/* Which parser recognised the line. */
enum al_parser {
	AL_P_NONE = 0,
	AL_P_DOVECOT_LOGIN,	/* imap-login & co: summaries and "Login:" */
	AL_P_DOVECOT_AUTH,	/* auth process: one line per password check */
	AL_P_PAM,		/* pam_unix "authentication failure" */
	AL_P_CYRUS,
	AL_P_COURIER,
	AL_P_UWIMAP,
	AL_P_PERDITION,		/* AUTHLOG_AUTO only: no enum authlog_format value */
};

struct al_result {
	enum al_kind kind;
	uint8_t addr[16];		/* addr.h layout (IPv4 mapped); valid unless AL_NONE */
	char user[AL_USER_LEN];		/* "" when the line names none */
	uint32_t attempts;		/* failures this line stands for (AL_FAIL) */
	char session[AL_SESSION_LEN];	/* Dovecot session id, "" if none */
	int parser;			/* enum al_parser */
	bool per_attempt;		/* auth-process line, vs connection summary */
	bool ambiguous;			/* looked like a failure but could be forged: dropped */
};

/*
 * Parse one line (without or with its trailing newline). format is an enum
 * authlog_format; AUTHLOG_AUTO tries every parser. Returns 0 when the line
 * was read (out->kind may be AL_NONE), -EINVAL when it was skipped: longer
 * than AL_LINE_MAX, a NUL byte, invalid UTF-8, broken JSON, unknown format.
 */
int authlog_parse(const char *line, size_t len, int format, struct al_result *out);

/*
 * Counting rule: a connection's failures are counted either from its
 * per-attempt auth-process lines or from its summary line weighted by N,
 * never both. al_dedup remembers, per Dovecot session id, how many failures
 * were already counted; a later line for the session adds only the rest.
 * Bounded: when full the oldest session is forgotten (its summary then
 * counts in full, i.e. errs towards counting).
 */
struct al_dedup;
struct al_dedup *al_dedup_new(uint32_t capacity);	/* NULL + errno on error */
void al_dedup_free(struct al_dedup *d);
/* Failures to feed the detector for this parsed line (0 for non-failures). */
uint32_t al_dedup_count(struct al_dedup *d, const struct al_result *r);

#endif
