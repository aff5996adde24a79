// SPDX-License-Identifier: GPL-2.0
/*
 * Signed policy tests (userspace/sign.c): key generation, signing, and every
 * way a signature must be refused. No root, no network.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "base/file.h"
#include "policy/policy.h"
#include "policy/sign.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

/* policy_load_checked, keeping only the verdict. */
static int check_load(const char *file, const char *trusted, char *err, size_t len)
{
	struct policy pol;
	int ret = policy_load_checked(file, trusted, &pol, err, len);

	policy_free(&pol);
	return ret;
}

static char tmpdir[] = "/tmp/test_sign.XXXXXX";
static char msg[SIG_ERR_LEN];

static const char *P(const char *name)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
	return b;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/* Whole file as a NUL-terminated string (static, valid until the next call). */
static const char *slurp(const char *path, size_t *len)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? (mode_t)-1 : st.st_mode & 07777;
}

static const char policy[] = "[port 143]\naction = reject\n[port 993]\naction = pass\n";

/* Keys A, B, C and a signed policy by A, made once for the cases below. */
static int setup(void)
{
	if (sig_keygen(P("a.key"), msg, sizeof(msg)) ||
	    sig_keygen(P("b.key"), msg, sizeof(msg)) ||
	    sig_keygen(P("c.key"), msg, sizeof(msg))) {
		fprintf(stderr, "keygen: %s\n", msg);
		return -1;
	}
	write_file(P("p.conf"), policy, strlen(policy));
	if (sig_sign(P("p.conf"), P("a.key"), msg, sizeof(msg))) {
		fprintf(stderr, "sign: %s\n", msg);
		return -1;
	}
	return 0;
}

static void test_keygen_files(void)
{
	mode_t old = umask(0);	/* keygen must not rely on the umask */
	char fp[SIG_ERR_LEN];
	int err;

	err = sig_keygen(P("k.key"), fp, sizeof(fp));
	umask(old);
	ASSERT_OK(err, "keygen");
	ASSERT_EQ(mode_of(P("k.key")), 0600, "private key mode");
	ASSERT_EQ(mode_of(P("k.key.pub")), 0644, "public key mode");
	ASSERT_TRUE(!strncmp(fp, "SHA256:", 7) && strlen(fp) == 7 + 43, "fingerprint");
	ASSERT_TRUE(strstr(slurp(P("k.key"), NULL), "-----BEGIN PRIVATE KEY-----") != NULL,
		    "PKCS#8 PEM");
	ASSERT_TRUE(strstr(slurp(P("k.key.pub"), NULL), "-----BEGIN PUBLIC KEY-----") != NULL,
		    "SPKI PEM");
	/* A second keygen must not clobber a key that may already be trusted. */
	ASSERT_EQ(sig_keygen(P("k.key"), msg, sizeof(msg)), -EEXIST, "no overwrite");
	ASSERT_TRUE(strstr(msg, "Couldn't create private key") != NULL, "overwrite message");
	ASSERT_EQ(mode_of(P("k.key")), 0600, "still there");
}

static void test_key_too_open(void)
{
	ASSERT_OK(chmod(P("c.key"), 0644), "chmod");
	ASSERT_EQ(sig_sign(P("p.conf"), P("c.key"), msg, sizeof(msg)), -EPERM, "refused");
	ASSERT_TRUE(strstr(msg, "too open") != NULL, "message");
	ASSERT_OK(chmod(P("c.key"), 0600), "chmod back");
	ASSERT_EQ(sig_sign(P("nonexistent"), P("c.key"), msg, sizeof(msg)), -ENOENT, "no file");
	ASSERT_EQ(sig_sign(P("p.conf"), P("a.key.pub"), msg, sizeof(msg)), -EPERM,
		  "public key as private (0644)");
}

static void test_good(void)
{
	const char *sig = slurp(P("p.conf.sig"), NULL);

	ASSERT_TRUE(!strncmp(sig, "imapguard-signature 2\npolicy sha256:", 36), "manifest first");
	ASSERT_TRUE(strstr(sig, "\n-----BEGIN " SIG_PEM_NAME "-----\n") != NULL, "PEM armour");
	ASSERT_EQ(mode_of(P("p.conf.sig")), 0644, "signature mode");
	ASSERT_OK(sig_verify(P("p.conf"), P("a.key.pub"), msg, sizeof(msg)), "verify");
	ASSERT_TRUE(strstr(msg, "good signature by key 1 of 1") != NULL, "message");
	/* Re-signing replaces the signature in place. */
	ASSERT_OK(sig_sign(P("p.conf"), P("a.key"), msg, sizeof(msg)), "re-sign");
	ASSERT_OK(sig_verify(P("p.conf"), P("a.key.pub"), msg, sizeof(msg)), "verify again");
}

static void test_tampered(void)
{
	char bad[sizeof(policy)];

	memcpy(bad, policy, sizeof(policy));
	bad[20] = 'p';	/* "reject" -> "peject": one byte */
	write_file(P("t.conf"), bad, strlen(bad));
	write_file(P("t.conf.sig"), slurp(P("p.conf.sig"), NULL), strlen(slurp(P("p.conf.sig"), NULL)));
	ASSERT_EQ(sig_verify(P("t.conf"), P("a.key.pub"), msg, sizeof(msg)), -EBADMSG, "one byte");
	ASSERT_TRUE(strstr(msg, "does not match") != NULL, "message");
	/* A byte dropped (the trailing newline) is a different file too. */
	snprintf(bad, sizeof(bad), "%s", policy);
	write_file(P("t.conf"), bad, strlen(bad));
	ASSERT_OK(sig_verify(P("t.conf"), P("a.key.pub"), msg, sizeof(msg)), "copy verifies");
	write_file(P("t.conf"), policy, strlen(policy) - 1);
	ASSERT_EQ(sig_verify(P("t.conf"), P("a.key.pub"), msg, sizeof(msg)), -EBADMSG,
		  "last byte dropped");
}

static void test_wrong_key(void)
{
	ASSERT_EQ(sig_verify(P("p.conf"), P("b.key.pub"), msg, sizeof(msg)), -EBADMSG, "other key");
	ASSERT_TRUE(strstr(msg, "any of the 1 key(s)") != NULL, "message");
}

static void test_missing_sig(void)
{
	write_file(P("u.conf"), policy, strlen(policy));
	ASSERT_EQ(sig_verify(P("u.conf"), P("a.key.pub"), msg, sizeof(msg)), -ENOENT, "no .sig");
	ASSERT_TRUE(strstr(msg, "u.conf.sig") && strstr(msg, "No such file"), "message");
	ASSERT_EQ(sig_verify(P("p.conf"), P("none.pub"), msg, sizeof(msg)), -ENOENT, "no trust file");
}

static void test_truncated_sig(void)
{
	size_t len;
	const char *sig = slurp(P("p.conf.sig"), &len);
	char buf[512], *nl;

	write_file(P("u.conf"), policy, strlen(policy));
	/* Cut in the middle: no END line. */
	write_file(P("u.conf.sig"), sig, len / 2);
	ASSERT_EQ(sig_verify(P("u.conf"), P("a.key.pub"), msg, sizeof(msg)), -EINVAL, "half");
	ASSERT_TRUE(strstr(msg, "Couldn't read signature") != NULL, "message");
	write_file(P("u.conf.sig"), "", 0);
	ASSERT_EQ(sig_verify(P("u.conf"), P("a.key.pub"), msg, sizeof(msg)), -EINVAL, "empty");
	/* Intact armour, base64 body cut short: 48 bytes instead of 64. */
	snprintf(buf, sizeof(buf), "%s", sig);
	nl = strchr(strstr(buf, "-----BEGIN"), '\n');
	memmove(nl + 1 + 64, strstr(buf, "\n-----END"), strlen(strstr(buf, "\n-----END")) + 1);
	write_file(P("u.conf.sig"), buf, strlen(buf));
	ASSERT_EQ(sig_verify(P("u.conf"), P("a.key.pub"), msg, sizeof(msg)), -EINVAL, "short body");
	ASSERT_TRUE(strstr(msg, "got 48 bytes") != NULL, "message");
	/* A PEM block of another kind (a public key) is not a signature. */
	write_file(P("u.conf.sig"), slurp(P("a.key.pub"), NULL), strlen(slurp(P("a.key.pub"), NULL)));
	ASSERT_EQ(sig_verify(P("u.conf"), P("a.key.pub"), msg, sizeof(msg)), -EINVAL, "wrong block");
}

static void cat_keys(const char *out, const char *k1, const char *k2)
{
	char buf[4096];
	size_t n1, n2;

	snprintf(buf, sizeof(buf), "%s", slurp(k1, &n1));
	snprintf(buf + n1, sizeof(buf) - n1, "%s", slurp(k2, &n2));
	write_file(out, buf, n1 + n2);
}

static void test_multiple_keys(void)
{
	cat_keys(P("trusted.pub"), P("b.key.pub"), P("a.key.pub"));
	ASSERT_OK(sig_verify(P("p.conf"), P("trusted.pub"), msg, sizeof(msg)), "A in B+A");
	ASSERT_TRUE(strstr(msg, "key 2 of 2") != NULL, "names the key");
	cat_keys(P("trusted.pub"), P("b.key.pub"), P("c.key.pub"));
	ASSERT_EQ(sig_verify(P("p.conf"), P("trusted.pub"), msg, sizeof(msg)), -EBADMSG,
		  "A not in B+C");
	ASSERT_TRUE(strstr(msg, "any of the 2 key(s)") != NULL, "message");
}

/* A broken trust file fails closed, even when a good key comes first. */
static void test_bad_trust_file(void)
{
	static const char junk[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char buf[4096];
	size_t n;
	FILE *f;

	snprintf(buf, sizeof(buf), "%s%s", slurp(P("a.key.pub"), &n), junk);
	write_file(P("bad.pub"), buf, strlen(buf));
	ASSERT_EQ(sig_verify(P("p.conf"), P("bad.pub"), msg, sizeof(msg)), -EINVAL, "junk block");
	write_file(P("bad.pub"), "just text\n", 10);
	ASSERT_EQ(sig_verify(P("p.conf"), P("bad.pub"), msg, sizeof(msg)), -EINVAL, "no key");
	ASSERT_TRUE(strstr(msg, "no PEM public key") != NULL, "message");
	f = fopen(P("bad.pub"), "w");
	if (ASSERT_TRUE(ec && f, "EC key") && ASSERT_TRUE(PEM_write_PUBKEY(f, ec) == 1, "write")) {
		fclose(f);
		f = NULL;
		ASSERT_EQ(sig_verify(P("p.conf"), P("bad.pub"), msg, sizeof(msg)), -EINVAL, "EC key");
		ASSERT_TRUE(strstr(msg, "is not Ed25519") != NULL, "message");
	}
	if (f)
		fclose(f);
	EVP_PKEY_free(ec);
}

/* The apply/reload hook: which trust file is in force, and its errors. */
static void test_policy_check(void)
{
	char err[SIG_ERR_LEN];
	bool have_default = access(SIG_TRUSTED_DEFAULT, F_OK) == 0;

	unsetenv(SIG_TRUSTED_ENV);
	write_file(P("u.conf"), policy, strlen(policy));
	unlink(P("u.conf.sig"));
	if (!have_default) {
		ASSERT_TRUE(sig_trusted_path(NULL) == NULL, "nothing configured");
		ASSERT_OK(check_load(P("u.conf"), NULL, err, sizeof(err)),
			  "unsigned accepted when no trust file");
	}
	ASSERT_EQ(check_load(P("u.conf"), P("a.key.pub"), err, sizeof(err)),
		  -ENOENT, "unsigned refused");
	ASSERT_TRUE(strstr(err, "refusing policy") && strstr(err, "u.conf.sig"), "message");
	ASSERT_OK(check_load(P("p.conf"), P("a.key.pub"), err, sizeof(err)), "signed");
	setenv(SIG_TRUSTED_ENV, P("b.key.pub"), 1);
	ASSERT_STREQ(sig_trusted_path(NULL), P("b.key.pub"), "env");
	ASSERT_EQ(check_load(P("p.conf"), NULL, err, sizeof(err)), -EBADMSG,
		  "env key B refuses A's signature");
	ASSERT_OK(check_load(P("p.conf"), P("a.key.pub"), err, sizeof(err)),
		  "explicit beats env");
	setenv(SIG_TRUSTED_ENV, "", 1);
	ASSERT_TRUE(sig_trusted_path(NULL) == NULL || have_default, "empty env is unset");
	unsetenv(SIG_TRUSTED_ENV);
}

/* The format is plain enough for the openssl tool to check it: the
 * signature covers the manifest lines, which name the files' SHA-256. */
static void test_openssl_interop(void)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "cd %s && sed '/^-----BEGIN/,$d' p.conf.sig > p.man && "
		 "sed -n '/^-----BEGIN/,/^-----END/p' p.conf.sig | sed '1d;$d' | "
		 "openssl base64 -d > p.raw && "
		 "openssl pkeyutl -verify -pubin -inkey a.key.pub -rawin -in p.man "
		 "-sigfile p.raw >/dev/null 2>&1 && "
		 "grep -qx \"policy sha256:$(openssl dgst -sha256 -r p.conf | cut -c1-64)\" p.man",
		 tmpdir);
	ASSERT_OK(system(cmd), "openssl pkeyutl -verify");
}

/* An old signature (Ed25519 over the policy's bytes, as openssl makes it):
 * still good for a policy without deny_file, refused for one with. */
static void test_legacy_format(void)
{
	static const char feed_pol[] = "[lists]\ndeny_file = feed.txt\n";
	char cmd[2048];

	write_file(P("feed.txt"), "192.0.2.0/24\n", 13);
	write_file(P("l.conf"), policy, strlen(policy));
	write_file(P("lf.conf"), feed_pol, strlen(feed_pol));
	snprintf(cmd, sizeof(cmd),
		 "cd %s && for f in l lf; do openssl pkeyutl -sign -inkey a.key -rawin -in $f.conf "
		 "-out $f.raw && { echo '-----BEGIN " SIG_PEM_NAME "-----'; openssl base64 -in $f.raw; "
		 "echo '-----END " SIG_PEM_NAME "-----'; } > $f.conf.sig || exit 1; done", tmpdir);
	if (!ASSERT_OK(system(cmd), "openssl pkeyutl -sign"))
		return;
	ASSERT_OK(sig_verify(P("l.conf"), P("a.key.pub"), msg, sizeof(msg)), "old format, no feed");
	ASSERT_EQ(sig_verify(P("lf.conf"), P("a.key.pub"), msg, sizeof(msg)), -EBADMSG,
		  "old format with deny_file");
	ASSERT_TRUE(strstr(msg, "old format") && strstr(msg, "sign the policy again"), "message");
}

/* The signature binds the deny_file's bytes: a feed changed to 0.0.0.0/0
 * (or added, or its manifest line edited) is refused; the untouched one loads. */
static void test_feed_covered(void)
{
	static const char pol2[] = "[lists]\ndeny = 198.51.100.0/24, 2001:db8::/48\n"
				   "deny_file = feed.txt\n";
	char err[SIG_ERR_LEN];
	struct policy pol;
	int ret;

	write_file(P("feed.txt"), "192.0.2.0/24\n", 13);
	write_file(P("f.conf"), pol2, strlen(pol2));
	if (!ASSERT_OK(sig_sign(P("f.conf"), P("a.key"), msg, sizeof(msg)), "sign"))
		return;
	ASSERT_TRUE(strstr(msg, "1 deny_file") != NULL, "sign names the feed");
	ASSERT_TRUE(strstr(slurp(P("f.conf.sig"), NULL), "deny_file sha256:") != NULL, "manifest");
	ASSERT_OK(sig_verify(P("f.conf"), P("a.key.pub"), msg, sizeof(msg)), "untampered verifies");
	ret = policy_load_checked(P("f.conf"), P("a.key.pub"), &pol, err, sizeof(err));
	ASSERT_OK(ret, "untampered loads");
	ASSERT_EQ(pol.deny.n, 3, "three deny entries");
	policy_free(&pol);

	write_file(P("feed.txt"), "0.0.0.0/0\n", 10);
	ASSERT_EQ(sig_verify(P("f.conf"), P("a.key.pub"), msg, sizeof(msg)), -EBADMSG,
		  "tampered feed: verify");
	ASSERT_TRUE(strstr(msg, "changed after signing") && strstr(msg, "feed.txt"), "message");
	ret = policy_load_checked(P("f.conf"), P("a.key.pub"), &pol, err, sizeof(err));
	ASSERT_EQ(ret, -EBADMSG, "tampered feed: load refused");
	ASSERT_TRUE(strstr(err, "refusing policy") && strstr(err, "changed after signing"),
		    "load message");
	ASSERT_EQ(pol.deny.n, 0, "nothing loaded");
	policy_free(&pol);

	/* One byte appended is a change too; the original verifies again. */
	write_file(P("feed.txt"), "192.0.2.0/24\n\n", 14);
	ASSERT_EQ(sig_verify(P("f.conf"), P("a.key.pub"), msg, sizeof(msg)), -EBADMSG, "appended");
	write_file(P("feed.txt"), "192.0.2.0/24\n", 13);
	ASSERT_OK(sig_verify(P("f.conf"), P("a.key.pub"), msg, sizeof(msg)), "restored");

	/* A manifest edited by hand no longer verifies. */
	{
		char sig[4096];

		char *line;

		snprintf(sig, sizeof(sig), "%s", slurp(P("f.conf.sig"), NULL));
		line = strstr(sig, "deny_file sha256:");
		if (ASSERT_TRUE(line != NULL, "manifest line")) {
			*line = 'D';
			write_file(P("f.conf.sig"), sig, strlen(sig));
			ASSERT_EQ(sig_verify(P("f.conf"), P("a.key.pub"), msg, sizeof(msg)),
				  -EBADMSG, "edited manifest");
		}
	}
	/* A signed policy that gains a deny_file it did not have. */
	write_file(P("g.conf"), policy, strlen(policy));
	ASSERT_OK(sig_sign(P("g.conf"), P("a.key"), msg, sizeof(msg)), "sign g");
	{
		char both[512];

		snprintf(both, sizeof(both), "%s[lists]\ndeny_file = feed.txt\n", policy);
		write_file(P("g.conf"), both, strlen(both));
	}
	ASSERT_EQ(sig_verify(P("g.conf"), P("a.key.pub"), msg, sizeof(msg)), -EBADMSG,
		  "added deny_file");
	/* Signing refuses a policy that does not load. */
	write_file(P("h.conf"), "[lists]\ndeny_file = nofeed.txt\n", 31);
	ASSERT_EQ(sig_sign(P("h.conf"), P("a.key"), msg, sizeof(msg)), -ENOENT, "missing feed");
	ASSERT_TRUE(strstr(msg, "Couldn't sign") && strstr(msg, "nofeed.txt"), "sign message");
}

/* A FIFO where a policy or signature belongs never blocks verify. */
static void test_fifo(void)
{
	write_file(P("q.conf"), policy, strlen(policy));
	unlink(P("q.conf.sig"));
	if (!ASSERT_OK(mkfifo(P("q.conf.sig"), 0600), "mkfifo"))
		return;
	alarm(10);	/* a regression fails (SIGALRM) instead of hanging */
	ASSERT_EQ(sig_verify(P("q.conf"), P("a.key.pub"), msg, sizeof(msg)), -FILE_ENOTREG,
		  "FIFO signature");
	ASSERT_TRUE(strstr(msg, "not a regular file") != NULL, "message");
	unlink(P("q.conf.sig"));
	ASSERT_OK(sig_sign(P("q.conf"), P("a.key"), msg, sizeof(msg)), "sign q");
	unlink(P("q.conf"));
	ASSERT_OK(mkfifo(P("q.conf"), 0600), "mkfifo policy");
	ASSERT_EQ(sig_verify(P("q.conf"), P("a.key.pub"), msg, sizeof(msg)), -FILE_ENOTREG,
		  "FIFO policy");
	ASSERT_EQ(sig_sign(P("q.conf"), P("a.key"), msg, sizeof(msg)), -FILE_ENOTREG,
		  "sign FIFO");
	alarm(0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	if (setup()) {
		printf("FAIL sign setup: %s\n", msg);
		nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		return 1;
	}
	RUN_CASE("sign keygen files and modes", test_keygen_files());
	RUN_CASE("sign private key too open", test_key_too_open());
	RUN_CASE("sign good signature", test_good());
	RUN_CASE("sign tampered file", test_tampered());
	RUN_CASE("sign wrong key", test_wrong_key());
	RUN_CASE("sign missing signature", test_missing_sig());
	RUN_CASE("sign truncated signature", test_truncated_sig());
	RUN_CASE("sign multiple trusted keys", test_multiple_keys());
	RUN_CASE("sign bad trust file", test_bad_trust_file());
	RUN_CASE("sign policy check hook", test_policy_check());
	RUN_CASE("sign covers deny_file", test_feed_covered());
	RUN_CASE("sign FIFO never blocks", test_fifo());
	if (system("openssl version >/dev/null 2>&1") == 0) {
		RUN_CASE("sign openssl interop", test_openssl_interop());
		RUN_CASE("sign old format", test_legacy_format());
	} else {
		SKIP_CASE("sign openssl interop", "no openssl binary");
		SKIP_CASE("sign old format", "no openssl binary");
	}
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return test_cases_failed != 0;
}
