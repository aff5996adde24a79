/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Auth-log line parser: Dovecot (2.2 - 2.4, auth process and PAM lines
 * included), Cyrus, Courier, UW-IMAP and perdition, behind classic syslog,
 * RFC 5424, ISO, tai64n or journald -o json prefixes. Plain C, no regex,
 * linear time, no BPF dependency, no state kept between calls.
 *
 * Fields are only taken from the positions the server itself writes: a user
 * name that contains "rip=1.2.3.4", ">", commas or another address never
 * changes the address. A line whose structure an attacker could have forged
 * into two readings is dropped (ambiguous = true). Passwords some lines carry
 * are never copied out.
 *
 * Bytes that are not valid UTF-8 (and NUL) do not hide a failure: the line
 * is read like any other, and only the user name is cleaned (each invalid
 * byte becomes U+FFFD, see base/text.h utf8_clean). What cannot be
 * attributed safely is dropped and says why in skip.
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

/* Why a line was not counted (al_result.skip); AL_SKIP_NONE when it was, or
 * when it is simply not an authentication line. */
enum al_skip {
	AL_SKIP_NONE = 0,
	AL_SKIP_LONG,		/* longer than AL_LINE_MAX (-EINVAL) */
	AL_SKIP_JSON,		/* '{' but not a journald JSON entry with a usable MESSAGE (-EINVAL) */
	AL_SKIP_AMBIGUOUS,	/* a failure with two readings, one forged (ambiguous) */
	AL_SKIP_NO_ADDR,	/* a failure whose address is missing or malformed */
	AL_SKIP_MAX
};

struct al_result {
	enum al_kind kind;
	uint8_t addr[16];		/* addr.h layout (IPv4 mapped); valid unless AL_NONE */
	/* "" when the line names none. Always valid UTF-8 without NUL: each
	 * invalid byte is replaced by U+FFFD; cut on a character boundary. */
	char user[AL_USER_LEN];
	bool user_cleaned;		/* user had invalid bytes replaced */
	int skip;			/* enum al_skip; kind is AL_NONE when set */
	uint32_t attempts;		/* failures this line stands for (AL_FAIL) */
	char session[AL_SESSION_LEN];	/* Dovecot session id, "" if none */
	int parser;			/* enum al_parser */
	bool per_attempt;		/* auth-process line, vs connection summary */
	bool ambiguous;			/* looked like a failure but could be forged: dropped */
};

/*
 * Parse one line of len bytes (without or with its trailing newline; it
 * may hold NUL and invalid UTF-8, and needs no terminator). format is an
 * enum authlog_format; AUTHLOG_AUTO tries every parser. out is always
 * overwritten. Returns 0 when the line was read (out->kind may be AL_NONE,
 * out->skip then says whether a failure was dropped), -EINVAL when it was
 * not: out->skip is AL_SKIP_LONG or AL_SKIP_JSON, or an unknown format or
 * NULL line (AL_SKIP_NONE).
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
/* Room for capacity sessions (rounded up to a power of two, 64 to 2^24).
 * NULL + errno (ENOMEM; ENOSYS without SipHash in OpenSSL). The caller owns
 * it and frees it with al_dedup_free (NULL is fine). */
struct al_dedup *al_dedup_new(uint32_t capacity);
void al_dedup_free(struct al_dedup *d);
/* Failures to feed the detector for this parsed line (0 for non-failures).
 * d may be NULL: every line then counts on its own. */
uint32_t al_dedup_count(struct al_dedup *d, const struct al_result *r);
/* The session is counted elsewhere (Dovecot asked the auth policy server
 * about it, whose report counts its failures): its log lines add nothing. */
void al_dedup_claim(struct al_dedup *d, const char *session);

#endif
