// SPDX-License-Identifier: GPL-2.0
/* Ed25519 policy signatures with OpenSSL 3 EVP; file formats in sign.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "policy/policy.h"
#include "policy/sign.h"

#define SIG_LEN		64		/* Ed25519 */
#define MAX_KEYS	32		/* in one trust file */
#define MAX_POLICY	(64 << 20)	/* a policy is small; deny lists live in deny_file */
#define MAX_PEM		(1 << 20)

static int fail(char *msg, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return err;
}

/* The reason of the newest OpenSSL error, for messages; clears the queue. */
static const char *ssl_reason(void)
{
	static char buf[160];
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* Whole file into a malloc'd buffer (one extra NUL byte for PEM parsing). */
static int read_all(const char *path, size_t max, unsigned char **out, size_t *outlen)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	struct stat st;
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		err = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		goto out;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	/* Read to EOF, not st_size: the file may change size under us. */
	while (len < (size_t)st.st_size &&
	       (n = read(fd, buf + len, st.st_size - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		len += n;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

/* ssh-style fingerprint: SHA256:<unpadded base64 of SHA-256(raw public key)>. */
static void fingerprint(EVP_PKEY *pkey, char *out, size_t outlen)
{
	unsigned char raw[32], md[EVP_MAX_MD_SIZE], b64[64];
	unsigned int mdlen;
	size_t rawlen = sizeof(raw);
	int n;

	if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 ||
	    EVP_Digest(raw, rawlen, md, &mdlen, EVP_sha256(), NULL) != 1) {
		snprintf(out, outlen, "(no fingerprint: %s)", ssl_reason());
		return;
	}
	n = EVP_EncodeBlock(b64, md, mdlen);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, outlen, "SHA256:%.*s", n, b64);
}

/* Write the PEM in mem to fd with mode, and close it. */
static int write_fd(int fd, BIO *mem, mode_t mode)
{
	char *data;
	long len = BIO_get_mem_data(mem, &data);
	int err = 0;
	ssize_t n;

	/* The umask may have taken bits away (mkstemp gives 0600). */
	if (fchmod(fd, mode))
		err = -errno;
	for (long off = 0; !err && off < len; off += n) {
		n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			n = 0;
		else if (n < 0)
			err = -errno;
	}
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	return err;
}

/* A new file (O_EXCL: never overwrite a key that may be trusted somewhere). */
static int write_new(const char *path, BIO *mem, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	int err;

	if (fd < 0)
		return -errno;
	err = write_fd(fd, mem, mode);
	if (err)
		unlink(path);
	return err;
}

int sig_keygen(const char *prefix, char *msg, size_t msglen)
{
	char pub[PATH_MAX];
	EVP_PKEY *pkey = NULL;
	BIO *priv_pem = NULL, *pub_pem = NULL;
	int err;

	ERR_clear_error();
	if (snprintf(pub, sizeof(pub), "%s.pub", prefix) >= (int)sizeof(pub))
		return fail(msg, msglen, -ENAMETOOLONG, "Couldn't create key '%s': %s",
			    prefix, strerror(ENAMETOOLONG));
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	/* Mem BIOs free through BUF_MEM_free, which clears the private PEM. */
	priv_pem = BIO_new(BIO_s_mem());
	pub_pem = BIO_new(BIO_s_mem());
	if (!pkey || !priv_pem || !pub_pem ||
	    PEM_write_bio_PrivateKey(priv_pem, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_PUBKEY(pub_pem, pkey) != 1) {
		err = fail(msg, msglen, -ENOMEM, "Couldn't generate an Ed25519 key: %s",
			   ssl_reason());
		goto out;
	}
	err = write_new(prefix, priv_pem, 0600);
	if (err) {
		fail(msg, msglen, err, "Couldn't create private key '%s': %s", prefix,
		     strerror(-err));
		goto out;
	}
	err = write_new(pub, pub_pem, 0644);
	if (err) {
		fail(msg, msglen, err, "Couldn't create public key '%s': %s", pub, strerror(-err));
		unlink(prefix);	/* no half key pairs */
		goto out;
	}
	fingerprint(pkey, msg, msglen);
out:
	BIO_free(priv_pem);
	BIO_free(pub_pem);
	EVP_PKEY_free(pkey);	/* clears the private key */
	return err;
}

/* PEM pass-phrase callback: refuse, instead of OpenSSL prompting on a tty. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

static int load_private(const char *keyfile, EVP_PKEY **out, char *msg, size_t msglen)
{
	unsigned char *pem = NULL;
	size_t len = 0;
	struct stat st;
	BIO *bio;
	int err;

	/* Like ssh: a private key others can read is not private. */
	if (stat(keyfile, &st))
		return fail(msg, msglen, -errno, "Couldn't read private key '%s': %s",
			    keyfile, strerror(errno));
	if (st.st_mode & 077)
		return fail(msg, msglen, -EPERM, "Couldn't use private key '%s': mode %04o is "
			    "too open (chmod 600 it)", keyfile, st.st_mode & 07777);
	err = read_all(keyfile, MAX_PEM, &pem, &len);
	if (err)
		return fail(msg, msglen, err, "Couldn't read private key '%s': %s", keyfile,
			    strerror(-err));
	bio = BIO_new_mem_buf(pem, len);
	*out = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	BIO_free(bio);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (!*out)
		return fail(msg, msglen, -EINVAL, "Couldn't read private key '%s': %s",
			    keyfile, ssl_reason());
	if (!EVP_PKEY_is_a(*out, "ED25519")) {
		EVP_PKEY_free(*out);
		*out = NULL;
		return fail(msg, msglen, -EINVAL, "Couldn't use private key '%s': not an "
			    "Ed25519 key", keyfile);
	}
	return 0;
}

int sig_sign(const char *file, const char *keyfile, char *msg, size_t msglen)
{
	unsigned char *data = NULL, sig[SIG_LEN];
	char sigpath[PATH_MAX], tmp[PATH_MAX + 8];
	size_t len = 0, siglen = sizeof(sig);
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *pem = NULL;
	int fd, err;

	ERR_clear_error();
	if (snprintf(sigpath, sizeof(sigpath), "%s.sig", file) >= (int)sizeof(sigpath))
		return fail(msg, msglen, -ENAMETOOLONG, "Couldn't sign '%s': %s", file,
			    strerror(ENAMETOOLONG));
	err = read_all(file, MAX_POLICY, &data, &len);
	if (err)
		return fail(msg, msglen, err, "Couldn't read '%s': %s", file, strerror(-err));
	err = load_private(keyfile, &pkey, msg, msglen);
	if (err)
		goto out;
	/* Ed25519 signs the message itself: no digest (md NULL), one shot. */
	ctx = EVP_MD_CTX_new();
	pem = BIO_new(BIO_s_mem());
	if (!ctx || !pem || EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, data, len) != 1 || siglen != SIG_LEN ||
	    PEM_write_bio(pem, SIG_PEM_NAME, "", sig, siglen) <= 0) {
		err = fail(msg, msglen, -EINVAL, "Couldn't sign '%s': %s", file, ssl_reason());
		goto out;
	}
	/* Through a temporary file and rename: a reader never sees half a signature. */
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", sigpath);
	fd = mkostemp(tmp, O_CLOEXEC);
	err = fd < 0 ? -errno : write_fd(fd, pem, 0644);
	if (!err && rename(tmp, sigpath))
		err = -errno;
	if (err) {
		if (fd >= 0)
			unlink(tmp);
		fail(msg, msglen, err, "Couldn't write signature '%s': %s", sigpath,
		     strerror(-err));
		goto out;
	}
	snprintf(msg, msglen, "%s", sigpath);
out:
	BIO_free(pem);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	free(data);
	return err;
}

/* One "PUBLIC KEY" PEM block that must be Ed25519. */
static EVP_PKEY *decode_pubkey(const char *name, const unsigned char *der, long len,
			       const char **why)
{
	EVP_PKEY *k;

	*why = "not a \"PUBLIC KEY\" block";
	if (strcmp(name, "PUBLIC KEY"))
		return NULL;
	*why = "not a valid public key";
	k = d2i_PUBKEY(NULL, &der, len);
	if (k && !EVP_PKEY_is_a(k, "ED25519")) {
		*why = "not Ed25519";
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

/* Every key in the trust file. Block by block with PEM_read_bio, whose end of
 * file is a clean PEM_R_NO_START_LINE; any malformed, foreign or non-Ed25519
 * block fails the whole file (fail closed rather than trusting fewer keys). */
static int load_trusted(const char *path, EVP_PKEY **keys, int *nkeys, char *msg, size_t msglen)
{
	unsigned char *pem = NULL, *der;
	char *name, *header;
	const char *why;
	unsigned long e;
	size_t len;
	long dlen;
	BIO *bio;
	int err;

	*nkeys = 0;
	err = read_all(path, MAX_PEM, &pem, &len);
	if (err)
		return fail(msg, msglen, err, "Couldn't read trusted keys '%s': %s", path,
			    strerror(-err));
	bio = BIO_new_mem_buf(pem, len);
	while (!err && bio && PEM_read_bio(bio, &name, &header, &der, &dlen) == 1) {
		if (*nkeys == MAX_KEYS)
			err = fail(msg, msglen, -E2BIG, "Couldn't use trusted keys '%s': more "
				   "than %d keys", path, MAX_KEYS);
		else if (!(keys[*nkeys] = decode_pubkey(name, der, dlen, &why)))
			err = fail(msg, msglen, -EINVAL, "Couldn't use trusted keys '%s': "
				   "block %d is %s", path, *nkeys + 1, why);
		else
			(*nkeys)++;
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
	}
	e = ERR_peek_last_error();
	if (!err && (!bio || ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE))
		err = fail(msg, msglen, -EINVAL, "Couldn't read trusted keys '%s': %s", path,
			   ssl_reason());
	else if (!err && !*nkeys)
		err = fail(msg, msglen, -EINVAL, "Couldn't read trusted keys '%s': no PEM "
			   "public key in it", path);
	ERR_clear_error();
	BIO_free(bio);
	free(pem);
	return err;
}

/* The 64 signature bytes from FILE.sig. */
static int load_sig(const char *path, unsigned char sig[SIG_LEN], char *msg, size_t msglen)
{
	unsigned char *pem = NULL, *data = NULL;
	char *name = NULL, *header = NULL;
	long dlen = 0;
	size_t len;
	BIO *bio;
	int err;

	err = read_all(path, MAX_PEM, &pem, &len);
	if (err)
		return fail(msg, msglen, err, "Couldn't read signature '%s': %s", path,
			    strerror(-err));
	bio = BIO_new_mem_buf(pem, len);
	if (!bio || PEM_read_bio(bio, &name, &header, &data, &dlen) != 1)
		err = fail(msg, msglen, -EINVAL, "Couldn't read signature '%s': not a PEM "
			   "block (truncated?): %s", path, ssl_reason());
	else if (strcmp(name, SIG_PEM_NAME) || dlen != SIG_LEN)
		err = fail(msg, msglen, -EINVAL, "Couldn't read signature '%s': expected a "
			   "%d-byte \"%s\" block, got %ld bytes of \"%s\"", path, SIG_LEN,
			   SIG_PEM_NAME, dlen, name);
	else
		memcpy(sig, data, SIG_LEN);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	free(pem);
	return err;
}

static int verify(const char *file, const char *trusted, char *msg, size_t msglen,
		  unsigned char **keep, size_t *keeplen)
{
	unsigned char *data = NULL, sig[SIG_LEN];
	EVP_PKEY *keys[MAX_KEYS];
	char sigpath[PATH_MAX], fp[80];
	EVP_MD_CTX *ctx = NULL;
	int nkeys = 0, err, good = -1;
	size_t len = 0;

	ERR_clear_error();
	if (snprintf(sigpath, sizeof(sigpath), "%s.sig", file) >= (int)sizeof(sigpath))
		return fail(msg, msglen, -ENAMETOOLONG, "Couldn't verify '%s': %s", file,
			    strerror(ENAMETOOLONG));
	err = load_trusted(trusted, keys, &nkeys, msg, msglen);
	if (!err)
		err = load_sig(sigpath, sig, msg, msglen);
	if (!err && (err = read_all(file, MAX_POLICY, &data, &len)))
		fail(msg, msglen, err, "Couldn't read '%s': %s", file, strerror(-err));
	if (err)
		goto out;
	for (int i = 0; i < nkeys && good < 0; i++) {
		/* A fresh context per key: DigestVerify is one-shot for Ed25519. */
		ctx = EVP_MD_CTX_new();
		if (!ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, keys[i]) != 1) {
			err = fail(msg, msglen, -ENOMEM, "Couldn't verify '%s': %s", file,
				   ssl_reason());
			goto out;
		}
		if (EVP_DigestVerify(ctx, sig, SIG_LEN, data, len) == 1)
			good = i;
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	ERR_clear_error();	/* a bad signature leaves an error queued */
	if (good < 0) {
		err = fail(msg, msglen, -EBADMSG, "Couldn't verify '%s': signature '%s' does "
			   "not match the file with any of the %d key(s) in '%s' (file changed "
			   "after signing, or signed with another key)", file, sigpath, nkeys,
			   trusted);
		goto out;
	}
	fingerprint(keys[good], fp, sizeof(fp));
	snprintf(msg, msglen, "good signature by key %d of %d in '%s' (%s)", good + 1,
		 nkeys, trusted, fp);
	if (keep) {	/* the caller parses exactly the bytes that verified */
		*keep = data;
		*keeplen = len;
		data = NULL;
	}
out:
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < nkeys; i++)
		EVP_PKEY_free(keys[i]);
	free(data);
	return err;
}

int sig_verify(const char *file, const char *trusted, char *msg, size_t msglen)
{
	return verify(file, trusted, msg, msglen, NULL, NULL);
}

const char *sig_trusted_path(const char *override)
{
	const char *env = getenv(SIG_TRUSTED_ENV);
	struct stat st;

	if (override && *override)
		return override;
	if (env && *env)
		return env;
	/* Only a file that is certainly absent turns the requirement off;
	 * EACCES and the like keep it on, and verification then fails. */
	if (lstat(SIG_TRUSTED_DEFAULT, &st) && errno == ENOENT)
		return NULL;
	return SIG_TRUSTED_DEFAULT;
}

int policy_load_checked(const char *file, const char *trusted_path, struct policy *pol,
			char *err, size_t errlen)
{
	const char *trusted = sig_trusted_path(trusted_path);
	char msg[SIG_ERR_LEN - 128];
	unsigned char *data = NULL;
	size_t len = 0;
	int ret;

	if (!trusted)
		return policy_load(file, pol, err, errlen);
	/* One read: verifying a file and then parsing it again would let a
	 * writer swap it in between. */
	ret = verify(file, trusted, msg, sizeof(msg), &data, &len);
	if (ret) {
		policy_init(pol);
		snprintf(err, errlen, "refusing policy '%s' (signatures are required by %s): %s",
			 file, trusted, msg);
		return ret;
	}
	ret = policy_load_buf(file, (char *)data, len, pol, err, errlen);
	free(data);
	return ret;
}
