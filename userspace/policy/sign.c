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
#include "base/file.h"
#include "policy/policy.h"
#include "policy/sign.h"

#define SIG_LEN		64		/* Ed25519 */
#define MAX_KEYS	32		/* in one trust file */
#define MAX_PEM		(1 << 20)	/* key, trust and signature files */
#define MANIFEST_MAGIC	"imapguard-signature 2"
#define SHA_LEN		32
#define HEX_LEN		(2 * SHA_LEN)

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

/* Whole regular file, never blocking on a FIFO (base/file.h); a NUL byte
 * follows the data for PEM parsing. */
static int read_all(const char *path, size_t max, unsigned char **out, size_t *outlen)
{
	return file_read(path, max, 0, (char **)out, outlen);
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
		     file_strerror(err));
		goto out;
	}
	err = write_new(pub, pub_pem, 0644);
	if (err) {
		fail(msg, msglen, err, "Couldn't create public key '%s': %s", pub, file_strerror(err));
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
			    file_strerror(err));
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

/* ---- what a signature covers ------------------------------------------ */

/*
 * A signature covers a manifest (format in sign.h): the policy's SHA-256
 * and, in order, each deny_file's value and SHA-256. Signing parses the
 * policy to find its feeds. Verifying checks the signature over the
 * manifest first, then the policy's digest, then each feed while the parser
 * reads it (struct pol_feed_hook), so the bytes checked are the bytes used.
 */
struct feed_rec {
	char *value;
	unsigned char sha256[SHA_LEN];
};

struct manifest {
	unsigned char policy_sha[SHA_LEN];
	struct feed_rec *feeds;
	int n, cap;
	bool legacy;		/* an old signature over the policy's bytes alone */
	const char *file, *sigpath;	/* for messages */
};

static void manifest_free(struct manifest *m)
{
	for (int i = 0; i < m->n; i++)
		free(m->feeds[i].value);
	free(m->feeds);
	m->feeds = NULL;
	m->n = m->cap = 0;
}

static int manifest_add(struct manifest *m, const char *value, size_t vlen,
			const unsigned char sha[SHA_LEN])
{
	if (m->n == m->cap) {
		int cap = m->cap ? m->cap * 2 : 4;
		struct feed_rec *v = realloc(m->feeds, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->feeds = v;
		m->cap = cap;
	}
	m->feeds[m->n].value = strndup(value, vlen);
	if (!m->feeds[m->n].value)
		return -ENOMEM;
	memcpy(m->feeds[m->n++].sha256, sha, SHA_LEN);
	return 0;
}

static void to_hex(const unsigned char b[SHA_LEN], char out[HEX_LEN + 1])
{
	for (int i = 0; i < SHA_LEN; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* Exactly HEX_LEN lower-case hex digits. */
static int from_hex(const char *s, unsigned char out[SHA_LEN])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < HEX_LEN; i++) {
		const char *d = s[i] ? strchr(digits, s[i]) : NULL;

		if (!d)
			return -EINVAL;
		if (i % 2)
			out[i / 2] |= d - digits;
		else
			out[i / 2] = (d - digits) << 4;
	}
	return 0;
}

static int sha256(const void *data, size_t len, unsigned char out[SHA_LEN])
{
	unsigned int n = 0;

	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == SHA_LEN ?
	       0 : -ENOMEM;
}

/* The manifest text that is signed; malloc'd, NULL on ENOMEM. */
static char *manifest_text(const struct manifest *m, size_t *len)
{
	char h[HEX_LEN + 1], *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	to_hex(m->policy_sha, h);
	fprintf(f, MANIFEST_MAGIC "\npolicy sha256:%s\n", h);
	for (int i = 0; i < m->n; i++) {
		to_hex(m->feeds[i].sha256, h);
		fprintf(f, "deny_file sha256:%s %s\n", h, m->feeds[i].value);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Read back a manifest whose signature already verified: a strict check
 * of its form all the same. */
static int manifest_parse(struct manifest *m, const char *s, size_t len)
{
	const char *end = s + len, *nl;
	static const char pol[] = "policy sha256:", feed[] = "deny_file sha256:";
	size_t pl = sizeof(pol) - 1, fl = sizeof(feed) - 1;

	for (int line = 0; s < end; line++, s = nl + 1) {
		nl = memchr(s, '\n', end - s);
		if (!nl)
			return -EINVAL;
		if (line == 0 && ((size_t)(nl - s) != strlen(MANIFEST_MAGIC) ||
				  memcmp(s, MANIFEST_MAGIC, nl - s)))
			return -EINVAL;
		if (line == 1 && (nl - s != (long)(pl + HEX_LEN) || memcmp(s, pol, pl) ||
				  from_hex(s + pl, m->policy_sha)))
			return -EINVAL;
		if (line >= 2) {
			unsigned char sha[SHA_LEN];

			if (nl - s <= (long)(fl + HEX_LEN + 1) || memcmp(s, feed, fl) ||
			    from_hex(s + fl, sha) || s[fl + HEX_LEN] != ' ')
				return -EINVAL;
			if (manifest_add(m, s + fl + HEX_LEN + 1, nl - s - fl - HEX_LEN - 1, sha))
				return -ENOMEM;
		}
	}
	return len ? 0 : -EINVAL;
}

/* Signing: note every feed the parser reads. */
static int record_feed(void *ctx, const struct pol_feed *f, char *why, size_t whylen)
{
	if (manifest_add(ctx, f->value, strlen(f->value), f->sha256)) {
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	return 0;
}

/* Verifying: each feed must be the one signed, at its place, unchanged. */
static int check_feed(void *ctx, const struct pol_feed *f, char *why, size_t whylen)
{
	const struct manifest *m = ctx;
	char got[HEX_LEN + 1], want[HEX_LEN + 1];

	if (m->legacy)
		snprintf(why, whylen, "signature '%s' is in the old format, which covers the "
			 "policy's bytes but not its deny_file: sign the policy again", m->sigpath);
	else if (f->index >= m->n)
		snprintf(why, whylen, "not covered by signature '%s' (it covers %d deny_file)",
			 m->sigpath, m->n);
	else if (strcmp(f->value, m->feeds[f->index].value))
		snprintf(why, whylen, "signature '%s' covers deny_file = %s here", m->sigpath,
			 m->feeds[f->index].value);
	else if (memcmp(f->sha256, m->feeds[f->index].sha256, SHA_LEN))
		snprintf(why, whylen, "changed after signing (sha256 %s, signature '%s' has %s)",
			 (to_hex(f->sha256, got), got), m->sigpath,
			 (to_hex(m->feeds[f->index].sha256, want), want));
	else
		return 0;
	return -EBADMSG;
}

static int check_done(void *ctx, int nfeeds, char *why, size_t whylen)
{
	const struct manifest *m = ctx;

	if (m->legacy || nfeeds == m->n)
		return 0;
	snprintf(why, whylen, "%s: signature '%s' covers %d deny_file, the policy has %d",
		 m->file, m->sigpath, m->n, nfeeds);
	return -EBADMSG;
}

int sig_sign(const char *file, const char *keyfile, char *msg, size_t msglen)
{
	struct manifest m = { .file = file };
	const struct pol_feed_hook hook = { .feed = record_feed, .ctx = &m };
	unsigned char *data = NULL, sig[SIG_LEN];
	char sigpath[PATH_MAX], tmp[PATH_MAX + 8], *text = NULL;
	char perr[POL_ERR_LEN];
	size_t len = 0, tlen = 0, siglen = sizeof(sig);
	struct policy *pol = NULL;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *pem = NULL;
	int fd, err;

	ERR_clear_error();
	if (snprintf(sigpath, sizeof(sigpath), "%s.sig", file) >= (int)sizeof(sigpath))
		return fail(msg, msglen, -ENAMETOOLONG, "Couldn't sign '%s': %s", file,
			    strerror(ENAMETOOLONG));
	err = read_all(file, POL_MAX_FILE, &data, &len);
	if (err)
		return fail(msg, msglen, err, "Couldn't read '%s': %s", file, file_strerror(err));
	/* A signer vouches for a policy that loads, feeds included. */
	pol = malloc(sizeof(*pol));
	err = pol ? policy_load_feeds(file, (char *)data, len, &hook, pol, perr, sizeof(perr))
		  : -ENOMEM;
	if (pol && !err)
		policy_free(pol);
	if (err) {
		fail(msg, msglen, err, "Couldn't sign '%s': %s", file,
		     pol ? perr : strerror(ENOMEM));
		goto out;
	}
	err = sha256(data, len, m.policy_sha);
	text = err ? NULL : manifest_text(&m, &tlen);
	if (!text) {
		err = fail(msg, msglen, -ENOMEM, "Couldn't sign '%s': %s", file, strerror(ENOMEM));
		goto out;
	}
	err = load_private(keyfile, &pkey, msg, msglen);
	if (err)
		goto out;
	/* Ed25519 signs the message itself: no digest (md NULL), one shot. */
	ctx = EVP_MD_CTX_new();
	pem = BIO_new(BIO_s_mem());
	if (!ctx || !pem || EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)text, tlen) != 1 ||
	    siglen != SIG_LEN || BIO_write(pem, text, (int)tlen) != (int)tlen ||
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
		     file_strerror(err));
		goto out;
	}
	snprintf(msg, msglen, "%s (covers the policy and %d deny_file)", sigpath, m.n);
out:
	BIO_free(pem);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	manifest_free(&m);
	free(text);
	free(pol);
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
			    file_strerror(err));
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

/* FILE.sig: the 64 signature bytes, and the manifest text before the PEM
 * block (malloc'd into *text; empty for an old signature, whose message is
 * the policy's bytes). */
static int load_sig(const char *path, unsigned char sig[SIG_LEN], char **text, size_t *tlen,
		    char *msg, size_t msglen)
{
	unsigned char *pem = NULL, *data = NULL;
	char *name = NULL, *header = NULL, *begin;
	long dlen = 0;
	size_t len;
	BIO *bio;
	int err;

	*text = NULL;
	*tlen = 0;
	err = read_all(path, MAX_PEM, &pem, &len);
	if (err)
		return fail(msg, msglen, err, "Couldn't read signature '%s': %s", path,
			    file_strerror(err));
	/* The PEM block starts the file (old format) or a line after the manifest. */
	begin = strncmp((char *)pem, "-----BEGIN ", 11) ? strstr((char *)pem, "\n-----BEGIN ") :
		(char *)pem;
	if (begin && begin != (char *)pem)
		begin++;
	if (begin) {
		*tlen = begin - (char *)pem;
		*text = malloc(*tlen + 1);
		if (!*text) {
			free(pem);
			return fail(msg, msglen, -ENOMEM, "Couldn't read signature '%s': %s",
				    path, strerror(ENOMEM));
		}
		memcpy(*text, pem, *tlen);
		(*text)[*tlen] = '\0';
	}
	bio = begin ? BIO_new_mem_buf(begin, len - *tlen) : NULL;
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
	if (err) {
		free(*text);
		*text = NULL;
	}
	return err;
}

/* Which trusted key signed msg; -1 if none, -ENOMEM if OpenSSL fails. */
static int good_key(EVP_PKEY **keys, int nkeys, const unsigned char sig[SIG_LEN],
		    const void *data, size_t len)
{
	int good = -1;

	for (int i = 0; i < nkeys && good < 0; i++) {
		/* A fresh context per key: DigestVerify is one-shot for Ed25519. */
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		if (!ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, keys[i]) != 1) {
			EVP_MD_CTX_free(ctx);
			return -ENOMEM;
		}
		if (EVP_DigestVerify(ctx, sig, SIG_LEN, data, len) == 1)
			good = i;
		EVP_MD_CTX_free(ctx);
	}
	return good;
}

/*
 * The signature, the policy's digest, then the policy parsed into *pol with
 * every deny_file checked against the manifest. On a parse error that is not
 * about signatures, *parse_err is set and msg holds the parser's message.
 */
static int verify(const char *file, const char *trusted, struct policy *pol, bool *parse_err,
		  char *msg, size_t msglen)
{
	unsigned char *data = NULL, sig[SIG_LEN], sha[SHA_LEN];
	EVP_PKEY *keys[MAX_KEYS];
	char sigpath[PATH_MAX], fp[80], perr[POL_ERR_LEN], *text = NULL;
	struct manifest m = { .file = file, .sigpath = sigpath };
	const struct pol_feed_hook hook = { .feed = check_feed, .done = check_done, .ctx = &m };
	int nkeys = 0, err, good;
	size_t len = 0, tlen = 0;

	ERR_clear_error();
	*parse_err = false;
	policy_init(pol);
	if (snprintf(sigpath, sizeof(sigpath), "%s.sig", file) >= (int)sizeof(sigpath))
		return fail(msg, msglen, -ENAMETOOLONG, "Couldn't verify '%s': %s", file,
			    strerror(ENAMETOOLONG));
	err = load_trusted(trusted, keys, &nkeys, msg, msglen);
	if (!err)
		err = load_sig(sigpath, sig, &text, &tlen, msg, msglen);
	if (!err && (err = read_all(file, POL_MAX_FILE, &data, &len)))
		fail(msg, msglen, err, "Couldn't read '%s': %s", file, file_strerror(err));
	if (err)
		goto out;
	/* An old signature signed the policy's bytes; a new one its manifest. */
	m.legacy = !tlen;
	good = m.legacy ? good_key(keys, nkeys, sig, data, len) :
	       good_key(keys, nkeys, sig, text, tlen);
	ERR_clear_error();	/* a bad signature leaves an error queued */
	if (good == -ENOMEM) {
		err = fail(msg, msglen, -ENOMEM, "Couldn't verify '%s': %s", file, ssl_reason());
		goto out;
	}
	if (good < 0) {
		err = fail(msg, msglen, -EBADMSG, "Couldn't verify '%s': signature '%s' does "
			   "not match the file with any of the %d key(s) in '%s' (file changed "
			   "after signing, or signed with another key)", file, sigpath, nkeys,
			   trusted);
		goto out;
	}
	if (!m.legacy && (err = manifest_parse(&m, text, tlen))) {
		fail(msg, msglen, err, "Couldn't verify '%s': signature '%s' is signed but "
		     "malformed", file, sigpath);
		goto out;
	}
	if (!m.legacy && (sha256(data, len, sha) || memcmp(sha, m.policy_sha, SHA_LEN))) {
		err = fail(msg, msglen, -EBADMSG, "Couldn't verify '%s': signature '%s' does "
			   "not match the file (its sha256 differs: file changed after signing)",
			   file, sigpath);
		goto out;
	}
	err = policy_load_feeds(file, (char *)data, len, &hook, pol, perr, sizeof(perr));
	if (err == -EBADMSG) {
		fail(msg, msglen, err, "Couldn't verify '%s': %s", file, perr);
		goto out;
	}
	if (err) {
		*parse_err = true;
		fail(msg, msglen, err, "%s", perr);
		goto out;
	}
	fingerprint(keys[good], fp, sizeof(fp));
	snprintf(msg, msglen, "good signature by key %d of %d in '%s' (%s), covering the "
		 "policy and %d deny_file", good + 1, nkeys, trusted, fp, m.n);
out:
	for (int i = 0; i < nkeys; i++)
		EVP_PKEY_free(keys[i]);
	manifest_free(&m);
	free(text);
	free(data);
	return err;
}

int sig_verify(const char *file, const char *trusted, char *msg, size_t msglen)
{
	struct policy *pol = malloc(sizeof(*pol));	/* ~50 KB: off the stack */
	bool parse_err;
	int err;

	if (!pol)
		return fail(msg, msglen, -ENOMEM, "Couldn't verify '%s': %s", file,
			    strerror(ENOMEM));
	err = verify(file, trusted, pol, &parse_err, msg, msglen);
	policy_free(pol);
	free(pol);
	return err;
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
	bool parse_err;
	int ret;

	if (!trusted)
		return policy_load(file, pol, err, errlen);
	/* One read of each file: verifying a file and then parsing it again
	 * would let a writer swap it in between. */
	ret = verify(file, trusted, pol, &parse_err, msg, sizeof(msg));
	if (ret && parse_err)
		snprintf(err, errlen, "%s", msg);
	else if (ret)
		snprintf(err, errlen, "refusing policy '%s' (signatures are required by %s): %s",
			 file, trusted, msg);
	return ret;
}
