// SPDX-License-Identifier: GPL-2.0
/* MFA: secrets file, TOTP, replay and failure accounting, knock (mfa.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <liboath/oath.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "base/file.h"
#include "base/hash.h"
#include "policy/mfa.h"

int mfa_init(void)
{
	static bool done;

	if (!done && oath_init() != OATH_OK)
		return -EIO;
	done = true;
	return 0;
}

void mfa_db_free(struct mfa_db *db)
{
	if (db->users)
		OPENSSL_cleanse(db->users, db->cap * sizeof(*db->users));
	free(db->users);
	memset(db, 0, sizeof(*db));
}

bool mfa_user_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (!n || n >= IG_USER_LEN || name[0] == '-')
		return false;
	return name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789._@+-")] == '\0';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly 2n hex digits into n bytes. */
static int unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
	if (slen != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void tohex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mfa_user *)a)->name, ((const struct mfa_user *)b)->name);
}

struct mfa_user *mfa_user_find(struct mfa_db *db, const char *name)
{
	struct mfa_user key = {};

	if (!mfa_user_name_ok(name) || !db->n)
		return NULL;
	snprintf(key.name, sizeof(key.name), "%s", name);
	return bsearch(&key, db->users, db->n, sizeof(*db->users), user_cmp);
}

static struct mfa_user *db_push(struct mfa_db *db)
{
	if (db->n == db->cap) {
		size_t nc = db->cap ? 2 * db->cap : 16;
		struct mfa_user *v = calloc(nc, sizeof(*v));

		if (!v)
			return NULL;
		if (db->users) {
			memcpy(v, db->users, db->n * sizeof(*v));
			OPENSSL_cleanse(db->users, db->cap * sizeof(*v));
			free(db->users);
		}
		db->users = v;
		db->cap = nc;
	}
	return &db->users[db->n++];
}

/* One "USER BASE32 HEX" line into u. */
static int parse_user_line(char *line, struct mfa_user *u, const char **why)
{
	char *name = strtok(line, " \t"), *b32 = strtok(NULL, " \t"), *hex = strtok(NULL, " \t");
	char *secret = NULL;
	size_t slen = 0;

	memset(u, 0, sizeof(*u));
	*why = "expected 'USER TOTP_SECRET KNOCK_KEY'";
	if (!name || !b32 || !hex || strtok(NULL, " \t"))
		return -EINVAL;
	*why = "invalid user name";
	if (!mfa_user_name_ok(name))
		return -EINVAL;
	*why = "invalid TOTP secret (base32 of 20 bytes)";
	if (oath_base32_decode(b32, strlen(b32), &secret, &slen) != OATH_OK || slen != MFA_SECRET_LEN) {
		if (secret)
			OPENSSL_cleanse(secret, slen);
		free(secret);
		return -EINVAL;
	}
	memcpy(u->secret, secret, MFA_SECRET_LEN);
	OPENSSL_cleanse(secret, slen);
	free(secret);
	*why = "invalid knock key (64 hex digits)";
	if (unhex(hex, strlen(hex), u->knock_key, MFA_KNOCK_KEY_LEN))
		return -EINVAL;
	snprintf(u->name, sizeof(u->name), "%s", name);
	return 0;
}

int mfa_secrets_load(const char *path, struct mfa_db *db, char *err, size_t errlen)
{
	struct mfa_db nd = {};
	struct stat st;
	char *buf, *line, *save = NULL;
	const char *why;
	size_t len;
	int ret, lineno = 0;

	ret = file_read(path, MFA_MAX_FILE, FILE_NOFOLLOW, &buf, &len);
	if (ret) {
		snprintf(err, errlen, "%s: %s", path, file_strerror(ret));
		return ret;
	}
	/* A secrets file others can read has leaked; one they can write
	 * could enrol them. Checked on the path: file_read refused symlinks. */
	if (stat(path, &st) || (st.st_mode & 077)) {
		snprintf(err, errlen, "%s: must not be accessible to group or others (chmod 600)",
			 path);
		ret = -EPERM;
		goto out;
	}
	if (memchr(buf, '\0', len)) {
		snprintf(err, errlen, "%s: NUL byte in the file", path);
		ret = -EINVAL;
		goto out;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct mfa_user *u;
		size_t n = strlen(line);

		lineno++;
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		if (lineno == 1) {
			if (strcmp(line, MFA_MAGIC)) {
				snprintf(err, errlen, "%s:1: expected '%s'", path, MFA_MAGIC);
				ret = -EINVAL;
				goto out;
			}
			continue;
		}
		if (!line[strspn(line, " \t")] || line[strspn(line, " \t")] == '#')
			continue;
		if (nd.n >= MFA_MAX_USERS) {
			snprintf(err, errlen, "%s:%d: more than %d users", path, lineno, MFA_MAX_USERS);
			ret = -ENOSPC;
			goto out;
		}
		u = db_push(&nd);
		if (!u) {
			ret = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		if ((ret = parse_user_line(line, u, &why))) {
			nd.n--;
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			goto out;
		}
	}
	if (!lineno) {
		snprintf(err, errlen, "%s: empty (expected '%s')", path, MFA_MAGIC);
		ret = -EINVAL;
		goto out;
	}
	qsort(nd.users, nd.n, sizeof(*nd.users), user_cmp);
	for (size_t i = 1; i < nd.n; i++)
		if (!strcmp(nd.users[i].name, nd.users[i - 1].name)) {
			snprintf(err, errlen, "%s: user '%s' twice", path, nd.users[i].name);
			ret = -EINVAL;
			goto out;
		}
	/* Run-time state follows the user through a reload; a user whose
	 * secret changed (enrolled anew) starts clean. */
	for (size_t i = 0; i < nd.n; i++) {
		struct mfa_user *old = mfa_user_find(db, nd.users[i].name);

		if (old && !CRYPTO_memcmp(old->secret, nd.users[i].secret, MFA_SECRET_LEN)) {
			nd.users[i].last_step = old->last_step;
			nd.users[i].locked_until = old->locked_until;
			nd.users[i].failures = old->failures;
			nd.users[i].window_start = old->window_start;
		}
	}
	mfa_db_free(db);
	*db = nd;
	memset(&nd, 0, sizeof(nd));
out:
	mfa_db_free(&nd);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return ret;
}

int mfa_secrets_lock(const char *path)
{
	char lp[4096];
	int fd;

	if (snprintf(lp, sizeof(lp), "%s.lock", path) >= (int)sizeof(lp))
		return -ENAMETOOLONG;
	fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int mfa_secrets_save(const char *path, const struct mfa_db *db)
{
	char tmp[4096], hex[2 * MFA_KNOCK_KEY_LEN + 1], *b32 = NULL, *slash;
	size_t b32len;
	FILE *f;
	int fd, err = 0, dfd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);	/* mode 0600 */
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	fprintf(f, "%s\n# user totp-secret(base32) knock-key(hex): keep this file 0600\n",
		MFA_MAGIC);
	for (size_t i = 0; !err && i < db->n; i++) {
		const struct mfa_user *u = &db->users[i];

		if (oath_base32_encode((const char *)u->secret, MFA_SECRET_LEN, &b32, &b32len) !=
		    OATH_OK) {
			err = -ENOMEM;
			break;
		}
		tohex(u->knock_key, MFA_KNOCK_KEY_LEN, hex);
		fprintf(f, "%s %s %s\n", u->name, b32, hex);
		OPENSSL_cleanse(b32, b32len);
		free(b32);
	}
	OPENSSL_cleanse(hex, sizeof(hex));
	if (!err && (fflush(f) || fsync(fileno(f))))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	/* The rename itself must survive a crash. */
	slash = strrchr(tmp, '/');
	if (slash) {
		*(slash == tmp ? slash + 1 : slash) = '\0';
		dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

int mfa_user_add(struct mfa_db *db, const char *name, struct mfa_user **out)
{
	struct mfa_user *u, nu = {};

	if (!mfa_user_name_ok(name))
		return -EINVAL;
	if (mfa_user_find(db, name))
		return -EEXIST;
	if (db->n >= MFA_MAX_USERS)
		return -ENOSPC;
	snprintf(nu.name, sizeof(nu.name), "%s", name);
	if (RAND_bytes(nu.secret, MFA_SECRET_LEN) != 1 ||
	    RAND_bytes(nu.knock_key, MFA_KNOCK_KEY_LEN) != 1)
		return -EIO;
	u = db_push(db);
	if (!u) {
		OPENSSL_cleanse(&nu, sizeof(nu));
		return -ENOMEM;
	}
	*u = nu;
	OPENSSL_cleanse(&nu, sizeof(nu));
	qsort(db->users, db->n, sizeof(*db->users), user_cmp);
	if (out)
		*out = mfa_user_find(db, name);
	return 0;
}

int mfa_user_del(struct mfa_db *db, const char *name)
{
	struct mfa_user *u = mfa_user_find(db, name);
	size_t i;

	if (!u)
		return -ENOENT;
	i = u - db->users;
	memmove(u, u + 1, (db->n - i - 1) * sizeof(*u));
	db->n--;
	OPENSSL_cleanse(&db->users[db->n], sizeof(*u));
	return 0;
}

int mfa_secret_base32(const struct mfa_user *u, char *buf, size_t len)
{
	char *b32 = NULL;
	size_t n;
	int err = 0;

	if (oath_base32_encode((const char *)u->secret, MFA_SECRET_LEN, &b32, &n) != OATH_OK)
		return -ENOMEM;
	/* Authenticator apps want it without '=' padding. */
	while (n && b32[n - 1] == '=')
		n--;
	if (n >= len)
		err = -ENOSPC;
	else
		snprintf(buf, len, "%.*s", (int)n, b32);
	OPENSSL_cleanse(b32, n);
	free(b32);
	return err;
}

/* RFC 3986 unreserved characters pass; the rest is %-encoded. */
static size_t uri_escape(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s && o + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			out[o++] = c;
		else
			o += snprintf(out + o, len - o, "%%%02X", c);
	}
	out[o] = '\0';
	return o;
}

int mfa_otpauth_uri(const struct mfa_user *u, const char *issuer, char *buf, size_t len)
{
	char b32[64], eu[3 * IG_USER_LEN + 1], ei[3 * 64 + 1];
	int n, err = mfa_secret_base32(u, b32, sizeof(b32));

	if (err)
		return err;
	uri_escape(u->name, eu, sizeof(eu));
	uri_escape(issuer, ei, sizeof(ei));
	n = snprintf(buf, len, "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1"
		     "&digits=%d&period=%d", ei, eu, b32, ei, MFA_DIGITS, MFA_STEP_S);
	OPENSSL_cleanse(b32, sizeof(b32));
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

const char *mfa_verdict_name(enum mfa_verdict v)
{
	static const char *const names[MFA_VERDICT_MAX] = {
		[MFA_OK] = "ok", [MFA_BAD_CODE] = "bad_code", [MFA_REPLAY] = "replay",
		[MFA_LOCKED] = "locked", [MFA_NO_USER] = "no_user",
	};

	return (unsigned int)v < MFA_VERDICT_MAX ? names[v] : "?";
}

static bool code_ok(const char *code)
{
	return strlen(code) == MFA_DIGITS && strspn(code, "0123456789") == MFA_DIGITS;
}

enum mfa_verdict mfa_check_code(struct mfa_user *u, const char *code, time_t now,
				uint32_t max_failures, uint64_t window_s, uint64_t lock_s,
				bool *locked_now)
{
	uint64_t step = 0;
	int pos = 0, r;

	if (locked_now)
		*locked_now = false;
	if (!u)
		return MFA_NO_USER;
	if (u->locked_until > now)
		return MFA_LOCKED;
	r = code_ok(code) ? oath_totp_validate3((const char *)u->secret, MFA_SECRET_LEN, now,
						MFA_STEP_S, 0, 1, &pos, &step, code) : -1;
	if (r >= 0 && step > u->last_step) {
		u->last_step = step;
		u->failures = 0;
		return MFA_OK;
	}
	if (r >= 0)
		return MFA_REPLAY;	/* not a guess: it was right once */
	if (!u->window_start || now - u->window_start >= (time_t)window_s) {
		u->window_start = now;
		u->failures = 0;
	}
	if (++u->failures >= max_failures) {
		u->locked_until = now + (time_t)lock_s;
		u->failures = 0;
		u->window_start = 0;
		if (locked_now)
			*locked_now = true;
	}
	return MFA_BAD_CODE;
}

int mfa_state_write(const struct mfa_db *db, int (*put)(void *ctx, const char *line), void *ctx)
{
	char line[IG_USER_LEN + 64];
	int err = 0;

	for (size_t i = 0; !err && i < db->n; i++) {
		const struct mfa_user *u = &db->users[i];

		if (!u->last_step && !u->locked_until)
			continue;
		snprintf(line, sizeof(line), "mfa %s %" PRIu64 " %lld", u->name, u->last_step,
			 (long long)u->locked_until);
		err = put(ctx, line);
	}
	return err;
}

int mfa_state_line(struct mfa_db *db, const char *line)
{
	char name[IG_USER_LEN];
	unsigned long long step;
	long long locked;
	struct mfa_user *u;
	int off = 0;

	if (strncmp(line, "mfa ", 4))
		return -ENOENT;
	if (sscanf(line, "mfa %63s %llu %lld%n", name, &step, &locked, &off) != 3 || line[off])
		return -EINVAL;
	u = mfa_user_find(db, name);
	if (!u)
		return 0;
	if (step > u->last_step)
		u->last_step = step;
	if (locked > u->locked_until)
		u->locked_until = (time_t)locked;
	return 0;
}

/* ---- knock ---- */

static int hmac256(const uint8_t *key, size_t klen, const void *data, size_t n, uint8_t out[32])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	size_t olen = 0;
	int ok;

	EVP_MAC_free(mac);
	ok = ctx && EVP_MAC_init(ctx, key, klen, params) && EVP_MAC_update(ctx, data, n) &&
	     EVP_MAC_final(ctx, out, &olen, 32) && olen == 32;
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int mfa_knock_build(const char *user, const char *code, int64_t time, const uint8_t *nonce,
		    const uint8_t key[MFA_KNOCK_KEY_LEN], char *buf, size_t len)
{
	uint8_t nb[MFA_NONCE_LEN], mac[32];
	char nhex[2 * MFA_NONCE_LEN + 1], mhex[65];
	int n;

	if (!mfa_user_name_ok(user) || !code_ok(code) || len < MFA_KNOCK_MAX)
		return -EINVAL;
	if (!nonce) {
		if (RAND_bytes(nb, sizeof(nb)) != 1)
			return -EIO;
		nonce = nb;
	}
	tohex(nonce, MFA_NONCE_LEN, nhex);
	n = snprintf(buf, len, "IGK1 %s %s %" PRId64 " %s", user, code, time, nhex);
	if (n < 0 || (size_t)n + 65 >= MFA_KNOCK_MAX)
		return -EINVAL;
	if (hmac256(key, MFA_KNOCK_KEY_LEN, buf, n, mac))
		return -EIO;
	tohex(mac, 32, mhex);
	n += snprintf(buf + n, len - n, " %s", mhex);
	return n;
}

int mfa_knock_parse(const char *buf, size_t len, struct mfa_knock *k)
{
	char copy[MFA_KNOCK_MAX + 1], *f[7], *save = NULL, *end;
	int nf = 0;
	long long t;

	memset(k, 0, sizeof(*k));
	if (len < 5 || len > MFA_KNOCK_MAX || memchr(buf, '\0', len))
		return -EINVAL;
	memcpy(copy, buf, len);
	copy[len] = '\0';
	/* Single spaces only: the signed bytes are exactly what precedes the MAC. */
	if (strstr(copy, "  ") || copy[0] == ' ' || copy[len - 1] == ' ')
		return -EINVAL;
	for (char *t2 = strtok_r(copy, " ", &save); t2 && nf < 7; t2 = strtok_r(NULL, " ", &save))
		f[nf++] = t2;
	if (nf != 6 || strcmp(f[0], "IGK1") || !mfa_user_name_ok(f[1]) || !code_ok(f[2]))
		return -EINVAL;
	/* One spelling per datagram: no leading zeros, lower-case hex. */
	if (!isdigit((unsigned char)f[3][0]) || strlen(f[3]) > 12 ||
	    (f[3][0] == '0' && f[3][1]) || strspn(f[4], "0123456789abcdef") != strlen(f[4]) ||
	    strspn(f[5], "0123456789abcdef") != strlen(f[5]))
		return -EINVAL;
	errno = 0;
	t = strtoll(f[3], &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (unhex(f[4], strlen(f[4]), k->nonce, MFA_NONCE_LEN) || unhex(f[5], strlen(f[5]), k->mac, 32))
		return -EINVAL;
	snprintf(k->user, sizeof(k->user), "%s", f[1]);
	snprintf(k->code, sizeof(k->code), "%s", f[2]);
	k->time = t;
	k->signed_len = (size_t)(f[5] - copy) - 1;
	return 0;
}

bool mfa_knock_verify(const char *buf, const struct mfa_knock *k,
		      const uint8_t key[MFA_KNOCK_KEY_LEN])
{
	uint8_t mac[32];

	if (hmac256(key, MFA_KNOCK_KEY_LEN, buf, k->signed_len, mac))
		return false;
	return !CRYPTO_memcmp(mac, k->mac, 32);
}

int mfa_key_file_write(const char *path, const uint8_t key[MFA_KNOCK_KEY_LEN])
{
	char hex[2 * MFA_KNOCK_KEY_LEN + 2];
	int fd, err = 0;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600))	/* an existing file keeps its mode otherwise */
		err = -errno;
	tohex(key, MFA_KNOCK_KEY_LEN, hex);
	strcat(hex, "\n");
	n = err ? 0 : write(fd, hex, strlen(hex));
	if (!err && n != (ssize_t)strlen(hex))
		err = n < 0 ? -errno : -EIO;
	OPENSSL_cleanse(hex, sizeof(hex));
	if (close(fd) && !err)
		err = -errno;
	return err;
}

int mfa_key_file_read(const char *path, uint8_t key[MFA_KNOCK_KEY_LEN])
{
	char *buf;
	size_t len;
	int err = file_read(path, 4096, 0, &buf, &len);

	if (err)
		return err;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	err = unhex(buf, len, key, MFA_KNOCK_KEY_LEN);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return err;
}

/* ---- bounded tables ---- */

int mfa_nonces_init(struct mfa_nonces *c)
{
	memset(c->slot, 0, sizeof(c->slot));
	c->h = hasher_new(NULL);
	return c->h ? 0 : -ENOMEM;
}

void mfa_nonces_fini(struct mfa_nonces *c)
{
	hasher_free(c->h);
	c->h = NULL;
}

#define PROBES 8

bool mfa_nonce_seen(struct mfa_nonces *c, const uint8_t nonce[MFA_NONCE_LEN], time_t now)
{
	uint64_t h = hasher_sum(c->h, nonce, MFA_NONCE_LEN);
	int victim = -1;

	for (int i = 0; i < PROBES; i++) {
		int s = (h + i) % MFA_NONCE_SLOTS;

		if (c->slot[s].seen && !memcmp(c->slot[s].nonce, nonce, MFA_NONCE_LEN))
			return true;
		if (victim < 0 || c->slot[s].seen < c->slot[victim].seen)
			victim = s;
	}
	/*
	 * The oldest of the probed slots gives way. Should it still be young
	 * enough to pass the age check, a replay of its datagram would be
	 * accepted here, but its TOTP step is spent: the code check refuses it.
	 */
	memcpy(c->slot[victim].nonce, nonce, MFA_NONCE_LEN);
	c->slot[victim].seen = now;
	return false;
}

int mfa_src_init(struct mfa_src_fails *s)
{
	memset(s->slot, 0, sizeof(s->slot));
	s->h = hasher_new(NULL);
	return s->h ? 0 : -ENOMEM;
}

void mfa_src_fini(struct mfa_src_fails *s)
{
	hasher_free(s->h);
	s->h = NULL;
}

static int src_slot(struct mfa_src_fails *s, const uint8_t addr[16], time_t now, bool create)
{
	uint64_t h = hasher_sum(s->h, addr, 16);
	int victim = -1;

	for (int i = 0; i < PROBES; i++) {
		int k = (h + i) % MFA_SRC_SLOTS;

		if (s->slot[k].n && !memcmp(s->slot[k].addr, addr, 16))
			return k;
		/* Free first, then the oldest window. */
		if (victim < 0 || !s->slot[k].n ||
		    (s->slot[victim].n && s->slot[k].start < s->slot[victim].start))
			victim = k;
	}
	if (!create)
		return -1;
	memset(&s->slot[victim], 0, sizeof(s->slot[victim]));
	memcpy(s->slot[victim].addr, addr, 16);
	s->slot[victim].start = now;
	return victim;
}

uint32_t mfa_src_fail(struct mfa_src_fails *s, const uint8_t addr[16], time_t now,
		      uint64_t window_s)
{
	int k = src_slot(s, addr, now, true);

	if (now - s->slot[k].start >= (time_t)window_s) {
		s->slot[k].start = now;
		s->slot[k].n = 0;
	}
	return ++s->slot[k].n;
}

void mfa_src_reset(struct mfa_src_fails *s, const uint8_t addr[16])
{
	int k = src_slot(s, addr, 0, false);

	if (k >= 0)
		memset(&s->slot[k], 0, sizeof(s->slot[k]));
}
