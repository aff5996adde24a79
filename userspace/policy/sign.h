/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Signed policies: Ed25519 detached signatures (OpenSSL 3 EVP) over a
 * manifest of the SHA-256 of a policy file's exact bytes and of its
 * deny_file's bytes, so a feed cannot change under a signed policy.
 *
 * Files (PEM, at most 1 MiB; regular files only, see base/file.h):
 *   KEY        "PRIVATE KEY" (PKCS#8), mode 0600
 *   KEY.pub    "PUBLIC KEY" (SubjectPublicKeyInfo)
 *   FILE.sig   the manifest lines, then a PEM "IMAPGUARD SIGNATURE" block:
 *                imapguard-signature 2
 *                policy sha256:<64 hex>
 *                deny_file sha256:<64 hex> <value as written in FILE>
 *              The block is base64 of the raw 64-byte Ed25519 signature of
 *              exactly the manifest lines (pure Ed25519, no pre-hash), so
 *              `openssl pkeyutl -verify -rawin` can check it too. An old
 *              FILE.sig (the PEM block alone, signing FILE's bytes) still
 *              verifies for a policy without deny_file, never for one with.
 *   trusted    one or more "PUBLIC KEY" blocks one after another; a signature
 *              by any of them is good.
 *
 * Whether signatures are required is decided by a trust file that is NOT the
 * policy, so a policy can never switch its own check off: the explicit
 * --require-signature PUBFILE, else $IMAPGUARD_TRUSTED, else
 * /etc/imapguard/trusted.pub if it exists. With none of these, unsigned
 * policies are accepted as before.
 */
#ifndef IMAPGUARD_SIGN_H
#define IMAPGUARD_SIGN_H
#include <stddef.h>

#define SIG_TRUSTED_DEFAULT	"/etc/imapguard/trusted.pub"
#define SIG_TRUSTED_ENV		"IMAPGUARD_TRUSTED"
#define SIG_PEM_NAME		"IMAPGUARD SIGNATURE"
#define SIG_ERR_LEN		512

/* All return 0 or -errno and write a one-line message to msg: the reason on
 * failure; on success the key's fingerprint ("SHA256:<base64>") for keygen,
 * the signature path and what it covers for sign, and which key verified
 * for verify. Errors: -ENOENT missing file, -EEXIST key exists, -EINVAL
 * malformed key or signature (or, for sign, a policy that does not load),
 * -EBADMSG signature does not verify or does not cover the deny_file as it
 * is, -EPERM private key file readable by others, -FILE_ENOTREG a FIFO or
 * device where a file belongs, -EFBIG over a size cap. sign and verify
 * parse the policy (and read its deny_file). */
int sig_keygen(const char *prefix, char *msg, size_t msglen);
int sig_sign(const char *file, const char *keyfile, char *msg, size_t msglen);
int sig_verify(const char *file, const char *trusted, char *msg, size_t msglen);

/* The trust file in force: override if non-empty, else $IMAPGUARD_TRUSTED,
 * else SIG_TRUSTED_DEFAULT if it exists at all (even unreadable: fail
 * closed). NULL means no signature is required. */
const char *sig_trusted_path(const char *override);

struct policy;
/* policy_load() for apply, attach and the daemon: when a trust file is in
 * force (sig_trusted_path(trusted_path)), FILE must carry a good FILE.sig and
 * exactly the bytes that verified are parsed, the deny_file's included.
 * -errno with a complete message. */
int policy_load_checked(const char *file, const char *trusted_path, struct policy *pol,
			char *err, size_t errlen);

#endif
