// SPDX-License-Identifier: GPL-2.0
/*
 * MFA unit tests (policy/mfa.c): TOTP against the RFC 6238 vectors, the
 * replay guard and lock, the secrets file, the knock datagram.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <liboath/oath.h>
#include "policy/mfa.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

/* RFC 6238 appendix B, SHA-1 rows: secret "12345678901234567890", 8 digits. */
static const struct { time_t t; const char *otp; } rfc6238[] = {
	{ 59, "94287082" }, { 1111111109, "07081804" }, { 1111111111, "14050471" },
	{ 1234567890, "89005924" }, { 2000000000, "69279037" }, { 20000000000LL, "65353130" },
};

static struct mfa_user rfc_user(void)
{
	struct mfa_user u = {};

	snprintf(u.name, sizeof(u.name), "alice");
	memcpy(u.secret, "12345678901234567890", MFA_SECRET_LEN);
	return u;
}

static void code_at(const struct mfa_user *u, time_t t, char out[8])
{
	oath_totp_generate((const char *)u->secret, MFA_SECRET_LEN, t, 30, 0, 6, out);
}

static void test_rfc_vectors(void)
{
	struct mfa_user u = rfc_user();
	char otp[16];

	for (size_t i = 0; i < sizeof(rfc6238) / sizeof(rfc6238[0]); i++) {
		ASSERT_OK(oath_totp_generate((const char *)u.secret, MFA_SECRET_LEN, rfc6238[i].t,
					     30, 0, 8, otp), "generate");
		ASSERT_STREQ(otp, rfc6238[i].otp, "RFC 6238 vector");
		/* Our check takes the 6 low digits of the same value. */
		u.last_step = 0;
		ASSERT_EQ(mfa_check_code(&u, rfc6238[i].otp + 2, rfc6238[i].t, 5, 600, 900, NULL),
			  MFA_OK, "6-digit code of the vector accepted");
	}
}

static void test_window_and_replay(void)
{
	struct mfa_user u = rfc_user();
	time_t now = 1700000000;
	char c[8];
	bool locked;

	code_at(&u, now - 30, c);
	ASSERT_EQ(mfa_check_code(&u, c, now, 5, 600, 900, NULL), MFA_OK, "previous step accepted");
	ASSERT_EQ(mfa_check_code(&u, c, now, 5, 600, 900, NULL), MFA_REPLAY, "same code twice");
	code_at(&u, now - 60, c);
	ASSERT_EQ(mfa_check_code(&u, c, now, 5, 600, 900, NULL), MFA_BAD_CODE, "two steps back");
	code_at(&u, now + 30, c);
	ASSERT_EQ(mfa_check_code(&u, c, now, 5, 600, 900, NULL), MFA_OK, "next step accepted");
	code_at(&u, now, c);
	ASSERT_EQ(mfa_check_code(&u, c, now, 5, 600, 900, NULL), MFA_REPLAY,
		  "an older step after a newer one");
	ASSERT_EQ(mfa_check_code(&u, "12345", now, 5, 600, 900, NULL), MFA_BAD_CODE, "5 digits");
	ASSERT_EQ(mfa_check_code(&u, "12345a", now, 5, 600, 900, NULL), MFA_BAD_CODE, "letter");
	ASSERT_EQ(mfa_check_code(&u, "", now, 5, 600, 900, NULL), MFA_BAD_CODE, "empty");
	/* Three failures since the last success (replays are no guesses). */
	ASSERT_EQ(mfa_check_code(&u, "000000", now, 5, 600, 900, &locked), MFA_BAD_CODE, "fourth");
	ASSERT_TRUE(!locked, "fourth failure does not lock");
	ASSERT_EQ(mfa_check_code(&u, "000001", now, 5, 600, 900, &locked), MFA_BAD_CODE, "fifth");
	ASSERT_TRUE(locked, "fifth failure locks");
	code_at(&u, now + 60, c);
	ASSERT_EQ(mfa_check_code(&u, c, now + 60, 5, 600, 900, NULL), MFA_LOCKED,
		  "right code while locked");
	code_at(&u, now + 901, c);
	ASSERT_EQ(mfa_check_code(&u, c, now + 901, 5, 600, 900, NULL), MFA_OK, "after the lock");
	ASSERT_EQ(mfa_check_code(NULL, c, now, 5, 600, 900, NULL), MFA_NO_USER, "no user");
}

static int put_line(void *ctx, const char *line)
{
	char *buf = ctx;

	strcat(buf, line);
	strcat(buf, "\n");
	return 0;
}

static void test_secrets_file(void)
{
	char dir[] = "/tmp/test_mfa.XXXXXX", path[128], err[256], state[512] = "";
	struct mfa_db db = {}, db2 = {};
	struct mfa_user *u;
	struct stat st;
	FILE *f;

	ASSERT_OK_PTR(mkdtemp(dir), "mkdtemp");
	snprintf(path, sizeof(path), "%s/mfa.secrets", dir);
	ASSERT_OK(mfa_user_add(&db, "alice", &u), "add alice");
	ASSERT_OK(mfa_user_add(&db, "bob@example.org", NULL), "add bob");
	ASSERT_EQ(mfa_user_add(&db, "alice", NULL), -EEXIST, "add twice");
	ASSERT_EQ(mfa_user_add(&db, "a b", NULL), -EINVAL, "blank in name");
	ASSERT_EQ(mfa_user_add(&db, "-x", NULL), -EINVAL, "leading dash");
	ASSERT_OK(mfa_secrets_save(path, &db), "save");
	ASSERT_OK(stat(path, &st), "stat");
	ASSERT_EQ(st.st_mode & 0777, 0600, "mode 0600");
	ASSERT_OK(mfa_secrets_load(path, &db2, err, sizeof(err)), "load");
	ASSERT_EQ(db2.n, 2, "two users");
	u = mfa_user_find(&db2, "alice");
	ASSERT_TRUE(u && !memcmp(u->secret, mfa_user_find(&db, "alice")->secret, MFA_SECRET_LEN) &&
		    !memcmp(u->knock_key, mfa_user_find(&db, "alice")->knock_key, MFA_KNOCK_KEY_LEN),
		    "secrets round-trip");
	/* Run-time state survives a reload of the same secret, and the state file. */
	u->last_step = 1234;
	ASSERT_OK(mfa_secrets_load(path, &db2, err, sizeof(err)), "reload");
	ASSERT_EQ(mfa_user_find(&db2, "alice")->last_step, 1234, "replay guard kept on reload");
	ASSERT_OK(mfa_state_write(&db2, put_line, state), "state write");
	ASSERT_STREQ(state, "mfa alice 1234 0\n", "state line");
	mfa_user_find(&db2, "alice")->last_step = 0;
	ASSERT_OK(mfa_state_line(&db2, "mfa alice 1234 0"), "state read");
	ASSERT_EQ(mfa_user_find(&db2, "alice")->last_step, 1234, "replay guard restored");
	ASSERT_EQ(mfa_state_line(&db2, "mfa alice x 0"), -EINVAL, "bad state line");
	ASSERT_OK(mfa_state_line(&db2, "mfa nobody 5 0"), "unknown user ignored");
	ASSERT_OK(mfa_user_del(&db, "alice"), "del");
	ASSERT_EQ(mfa_user_del(&db, "alice"), -ENOENT, "del twice");
	/* Hostile files. */
	chmod(path, 0644);
	ASSERT_EQ(mfa_secrets_load(path, &db2, err, sizeof(err)), -EPERM, "world-readable refused");
	ASSERT_TRUE(!strstr(err, "alice"), "error names no user line");
	f = fopen(path, "w");
	fprintf(f, "%s\nalice NOTBASE32!! 00\n", MFA_MAGIC);
	fclose(f);
	chmod(path, 0600);
	ASSERT_EQ(mfa_secrets_load(path, &db2, err, sizeof(err)), -EINVAL, "bad secret refused");
	ASSERT_TRUE(!strstr(err, "NOTBASE32"), "the secret is not in the error");
	ASSERT_EQ(db2.n, 2, "old db kept on error");
	f = fopen(path, "w");
	fprintf(f, "nothing\n");
	fclose(f);
	ASSERT_EQ(mfa_secrets_load(path, &db2, err, sizeof(err)), -EINVAL, "no magic");
	unlink(path);
	rmdir(dir);
	mfa_db_free(&db);
	mfa_db_free(&db2);
}

static void test_uri(void)
{
	struct mfa_user u = rfc_user();
	char uri[512];

	ASSERT_OK(mfa_otpauth_uri(&u, "imapguard", uri, sizeof(uri)), "uri");
	ASSERT_STREQ(uri, "otpauth://totp/imapguard:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
		     "&issuer=imapguard&algorithm=SHA1&digits=6&period=30", "otpauth URI");
	snprintf(u.name, sizeof(u.name), "bob@example.org");
	ASSERT_OK(mfa_otpauth_uri(&u, "imapguard", uri, sizeof(uri)), "uri");
	ASSERT_TRUE(strstr(uri, "imapguard:bob%40example.org?") != NULL, "user escaped");
}

static void test_knock(void)
{
	uint8_t key[MFA_KNOCK_KEY_LEN], other[MFA_KNOCK_KEY_LEN], nonce[MFA_NONCE_LEN] = { 1, 2, 3 };
	char buf[MFA_KNOCK_MAX + 16], bad[MFA_KNOCK_MAX + 16];
	struct mfa_knock k;
	int n;

	memset(key, 0x11, sizeof(key));
	memset(other, 0x22, sizeof(other));
	n = mfa_knock_build("alice", "123456", 1700000000, nonce, key, buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && n < MFA_KNOCK_MAX, "built");
	ASSERT_OK(mfa_knock_parse(buf, n, &k), "parse");
	ASSERT_STREQ(k.user, "alice", "user");
	ASSERT_STREQ(k.code, "123456", "code");
	ASSERT_EQ(k.time, 1700000000, "time");
	ASSERT_TRUE(!memcmp(k.nonce, nonce, MFA_NONCE_LEN), "nonce");
	ASSERT_TRUE(mfa_knock_verify(buf, &k, key), "HMAC verifies");
	ASSERT_TRUE(!mfa_knock_verify(buf, &k, other), "other key refused");
	/* A changed code under the old HMAC. */
	memcpy(bad, buf, n);
	bad[11] = bad[11] == '9' ? '8' : '9';
	ASSERT_OK(mfa_knock_parse(bad, n, &k), "tampered parses");
	ASSERT_TRUE(!mfa_knock_verify(bad, &k, key), "tampered refused");
	ASSERT_EQ(mfa_knock_parse(buf, n - 1, &k), -EINVAL, "short MAC");
	ASSERT_EQ(mfa_knock_parse("IGK1 alice 123456 1 00 00", 25, &k), -EINVAL, "short nonce");
	ASSERT_EQ(mfa_knock_parse(buf, MFA_KNOCK_MAX + 1, &k), -EINVAL, "too long");
	memcpy(bad, buf, n);
	bad[4] = '\0';
	ASSERT_EQ(mfa_knock_parse(bad, n, &k), -EINVAL, "NUL inside");
	/* Python's test builds the same bytes (tests/integration_mfa.sh). */
	ASSERT_TRUE(!strncmp(buf, "IGK1 alice 123456 1700000000 01020300000000000000000000000000 ",
			     61), "wire format");
}

static void test_tables(void)
{
	static struct mfa_nonces nc;
	static struct mfa_src_fails sf;
	uint8_t nonce[MFA_NONCE_LEN] = { 9 }, a[16] = { 1 }, b[16] = { 2 };

	ASSERT_OK(mfa_nonces_init(&nc), "nonces");
	ASSERT_TRUE(!mfa_nonce_seen(&nc, nonce, 100), "new nonce");
	ASSERT_TRUE(mfa_nonce_seen(&nc, nonce, 101), "seen nonce");
	for (int i = 0; i < 3 * MFA_NONCE_SLOTS; i++) {
		uint8_t x[MFA_NONCE_LEN] = {};

		memcpy(x, &i, sizeof(i));
		x[15] = 0x77;
		mfa_nonce_seen(&nc, x, 200);
	}
	ASSERT_TRUE(!mfa_nonce_seen(&nc, nonce, 300), "evicted after a flood of newer ones");
	mfa_nonces_fini(&nc);
	ASSERT_OK(mfa_src_init(&sf), "src");
	ASSERT_EQ(mfa_src_fail(&sf, a, 100, 600), 1, "first");
	ASSERT_EQ(mfa_src_fail(&sf, a, 101, 600), 2, "second");
	ASSERT_EQ(mfa_src_fail(&sf, b, 101, 600), 1, "other source");
	ASSERT_EQ(mfa_src_fail(&sf, a, 800, 600), 1, "new window");
	mfa_src_reset(&sf, a);
	ASSERT_EQ(mfa_src_fail(&sf, a, 801, 600), 1, "reset");
	mfa_src_fini(&sf);
}

int main(void)
{
	if (mfa_init()) {
		printf("FAIL liboath init\n");
		return 1;
	}
	RUN_CASE("totp rfc 6238 vectors", test_rfc_vectors());
	RUN_CASE("totp window, replay, lock", test_window_and_replay());
	RUN_CASE("secrets file", test_secrets_file());
	RUN_CASE("otpauth uri", test_uri());
	RUN_CASE("knock datagram", test_knock());
	RUN_CASE("nonce and source tables", test_tables());
	return test_cases_failed != 0;
}
