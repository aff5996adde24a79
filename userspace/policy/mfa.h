/* SPDX-License-Identifier: GPL-2.0 */
/*
 * MFA for access = grant ports (issue 17, README "Requiring MFA for IMAP"):
 * the secrets file, TOTP validation (RFC 6238 through liboath), replay and
 * failure accounting, and the knock datagram.
 *
 * Secrets file: "imapguard-mfa 1", then one line per user,
 *	USER TOTP_SECRET_BASE32 KNOCK_KEY_HEX
 * mode 0600, owned by the daemon's user, written whole to a temporary file
 * in the same directory and renamed over the old one (never seen half
 * written). Secrets and codes never appear in logs, events or errors: the
 * messages here name users and line numbers only.
 *
 * Knock datagram (UDP, one line of text, at most MFA_KNOCK_MAX bytes):
 *	IGK1 USER CODE UNIXTIME NONCE HMAC
 * NONCE is 32 hex digits (16 random bytes), HMAC is HMAC-SHA256 (OpenSSL
 * EVP_MAC) under the user's knock key over everything before " HMAC", in
 * 64 hex digits. The knock key is a second per-user secret, so the TOTP
 * secret stays in the authenticator app and a scanner without the key
 * cannot even submit a guess.
 */
#ifndef IMAPGUARD_MFA_H
#define IMAPGUARD_MFA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "common.h"

struct hasher;

#define MFA_MAGIC		"imapguard-mfa 1"
#define MFA_SECRET_LEN		20	/* RFC 4226's recommended 160 bits */
#define MFA_KNOCK_KEY_LEN	32
#define MFA_NONCE_LEN		16
#define MFA_MAX_USERS		65536
#define MFA_MAX_FILE		(16u << 20)
#define MFA_KNOCK_MAX		256	/* a longer datagram is refused unread */
#define MFA_KNOCK_AGE_S		60	/* |now - datagram time| at most this */
#define MFA_STEP_S		30	/* TOTP time step */
#define MFA_DIGITS		6

struct mfa_user {
	char name[IG_USER_LEN];
	uint8_t secret[MFA_SECRET_LEN];
	uint8_t knock_key[MFA_KNOCK_KEY_LEN];
	/* Run-time state, kept across reloads of the file (by name). */
	uint64_t last_step;		/* last accepted TOTP time step: replay guard */
	time_t locked_until;		/* wall clock; codes refused until then */
	uint32_t failures;		/* wrong codes in the current window */
	time_t window_start;
};

struct mfa_db {
	struct mfa_user *users;		/* sorted by name */
	size_t n, cap;
};

/* liboath's global init; call once before validating. 0 or -EIO. */
int mfa_init(void);
void mfa_db_free(struct mfa_db *db);

/* Whether name is a user name we accept (fastpath grant_user_ok's rules). */
bool mfa_user_name_ok(const char *name);

/*
 * Read the secrets file. The file must be a regular file, not a symlink,
 * not readable or writable by group or others (-EPERM otherwise, with why).
 * Users that were in db keep their run-time state (replay guard, lock).
 * On error db is unchanged; err says what is wrong (never a secret).
 */
int mfa_secrets_load(const char *path, struct mfa_db *db, char *err, size_t errlen);
/* Write db atomically (temp file, fsync, rename), mode 0600. 0 or -errno. */
int mfa_secrets_save(const char *path, const struct mfa_db *db);
/* flock() on PATH.lock for a read-modify-write by the CLI: fd or -errno. */
int mfa_secrets_lock(const char *path);

struct mfa_user *mfa_user_find(struct mfa_db *db, const char *name);
/* New user with fresh random secret and knock key (OpenSSL RAND_bytes);
 * -EEXIST, -EINVAL (name), -ENOSPC, -ENOMEM, -EIO (no randomness). */
int mfa_user_add(struct mfa_db *db, const char *name, struct mfa_user **out);
int mfa_user_del(struct mfa_db *db, const char *name);

/* "otpauth://totp/ISSUER:USER?secret=...&issuer=ISSUER&..." into buf. */
int mfa_otpauth_uri(const struct mfa_user *u, const char *issuer, char *buf, size_t len);
/* Base32 of the TOTP secret (for typing it in), into buf. */
int mfa_secret_base32(const struct mfa_user *u, char *buf, size_t len);

/* Results of mfa_check_code(). */
enum mfa_verdict {
	MFA_OK = 0,
	MFA_BAD_CODE,		/* not a valid code now (±1 step) */
	MFA_REPLAY,		/* valid, but its time step was already used */
	MFA_LOCKED,		/* the user's codes are locked after failures */
	MFA_NO_USER,
	MFA_VERDICT_MAX
};
const char *mfa_verdict_name(enum mfa_verdict v);

/*
 * Check a 6-digit code of u at wall time now with ±1 time step. On MFA_OK
 * the step is recorded (a code is accepted once per user). MFA_BAD_CODE
 * counts a failure in u's window: at max_failures within window_s the user
 * is locked for lock_s and *locked_now is set (may be NULL).
 */
enum mfa_verdict mfa_check_code(struct mfa_user *u, const char *code, time_t now,
				uint32_t max_failures, uint64_t window_s, uint64_t lock_s,
				bool *locked_now);

/* State file lines for the run-time state ("mfa USER LAST_STEP LOCKED_UNTIL"). */
int mfa_state_write(const struct mfa_db *db, int (*put)(void *ctx, const char *line), void *ctx);
/* One such line (others return -ENOENT). A user not in db is remembered
 * nowhere: enrolling anew starts a clean state. */
int mfa_state_line(struct mfa_db *db, const char *line);

/* ---- knock ---- */

struct mfa_knock {
	char user[IG_USER_LEN];
	char code[16];
	int64_t time;
	uint8_t nonce[MFA_NONCE_LEN];
	uint8_t mac[32];
	size_t signed_len;		/* bytes of the datagram under the HMAC */
};

/* Build a datagram into buf (at least MFA_KNOCK_MAX bytes); returns its
 * length or -errno. nonce: MFA_NONCE_LEN random bytes (NULL: made here). */
int mfa_knock_build(const char *user, const char *code, int64_t time, const uint8_t *nonce,
		    const uint8_t key[MFA_KNOCK_KEY_LEN], char *buf, size_t len);
/* Parse (not verify) a datagram: 0 or -EINVAL. Hostile input: bounded. */
int mfa_knock_parse(const char *buf, size_t len, struct mfa_knock *k);
/* HMAC check in constant time: true when k was made with key. */
bool mfa_knock_verify(const char *buf, const struct mfa_knock *k,
		      const uint8_t key[MFA_KNOCK_KEY_LEN]);

/* Knock key file: one line of 64 hex digits. */
int mfa_key_file_write(const char *path, const uint8_t key[MFA_KNOCK_KEY_LEN]);
int mfa_key_file_read(const char *path, uint8_t key[MFA_KNOCK_KEY_LEN]);

/*
 * A seen-nonce cache: fixed size, entries older than 2 x MFA_KNOCK_AGE_S go
 * first (a datagram that old is refused by its time anyway). Only
 * authenticated datagrams are added, so a flood without a key cannot fill
 * it. Returns true when nonce was seen; else records it.
 */
#define MFA_NONCE_SLOTS 8192
struct mfa_nonces {
	struct { uint8_t nonce[MFA_NONCE_LEN]; time_t seen; } slot[MFA_NONCE_SLOTS];
	struct hasher *h;		/* random key: slot choice */
};
/* 0 or -ENOMEM; _fini frees. */
int mfa_nonces_init(struct mfa_nonces *c);
void mfa_nonces_fini(struct mfa_nonces *c);
bool mfa_nonce_seen(struct mfa_nonces *c, const uint8_t nonce[MFA_NONCE_LEN], time_t now);

/*
 * Failure counter per source (per address, IPv6 per /64): fixed size,
 * windows of window_s. Returns the failures of addr in its window,
 * this one included.
 */
#define MFA_SRC_SLOTS 4096
struct mfa_src_fails {
	struct { uint8_t addr[16]; uint32_t n; time_t start; } slot[MFA_SRC_SLOTS];
	struct hasher *h;
};
int mfa_src_init(struct mfa_src_fails *s);
void mfa_src_fini(struct mfa_src_fails *s);
uint32_t mfa_src_fail(struct mfa_src_fails *s, const uint8_t addr[16], time_t now,
		      uint64_t window_s);
void mfa_src_reset(struct mfa_src_fails *s, const uint8_t addr[16]);

#endif
