// SPDX-License-Identifier: GPL-2.0
/* policy check | apply | keygen | sign | verify. */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "base/log.h"
#include "cli/cli.h"
#include "fastpath/lists.h"
#include "policy/policy.h"
#include "policy/sign.h"

struct policy_opts {
	const char *file, *trusted;	/* check, apply, sign, verify */
	const char *out, *key, *pub;	/* keygen, sign, verify */
};

#define O(f) offsetof(struct policy_opts, f)
#define FILE_ARG ARG(OPT_PATH, O(file), "FILE")
static const struct opt check_options[] = { FILE_ARG, {} };

static const struct opt apply_options[] = {
	OPTION("require-signature", 'S', OPT_PATH, O(trusted), "PUBFILE",
	       "trusted key(s) for FILE.sig"),
	FILE_ARG, {}
};

static const struct opt keygen_options[] = {
	OPTION("out", 'o', OPT_PATH, O(out), "PREFIX", "key file names", .required = true),
	{}
};

static const struct opt sign_options[] = {
	OPTION("key", 'k', OPT_PATH, O(key), "KEY",
	       "private key from 'policy keygen'", .required = true),
	FILE_ARG, {}
};

static const struct opt verify_options[] = {
	OPTION("pub", 'p', OPT_PATH, O(pub), "PUBFILE", "trusted public key(s)"),
	FILE_ARG, {}
};
#undef FILE_ARG
#undef O

static const struct opts_cmd check_cmd = {
	.name = "policy check",
	.usage = "FILE",
	.doc = "Validate FILE and report the first error as FILE:LINE.",
	.opts = check_options,
};

static const struct opts_cmd apply_cmd = {
	.name = "policy apply",
	.usage = "FILE [--require-signature PUBFILE]",
	.doc = "Validate FILE, then update the pinned maps in place; the fast path\n"
	       "stays attached throughout, and a bad file changes nothing. When\n"
	       SIG_TRUSTED_DEFAULT " exists (or $" SIG_TRUSTED_ENV " or\n"
	       "--require-signature names a key file), FILE must carry a good FILE.sig.",
	.opts = apply_options,
};

/* Signing needs no pinned state. */
static const struct opts_cmd keygen_cmd = {
	.name = "policy keygen",
	.usage = "--out PREFIX",
	.doc = "Make an Ed25519 key pair for signing policies: PREFIX (PKCS#8 PEM private\n"
	       "key, mode 0600) and PREFIX.pub (PEM public key). Existing files are never\n"
	       "overwritten. Prints the key's SHA256 fingerprint.",
	.opts = keygen_options,
	.flags = OPTS_NO_PIN_DIR,
};

static const struct opts_cmd sign_cmd = {
	.name = "policy sign",
	.usage = "FILE --key KEY",
	.doc = "Write FILE.sig: a manifest of the SHA-256 of FILE's exact bytes and of\n"
	       "its deny_file, and a detached Ed25519 signature over it (PEM\n"
	       "\"" SIG_PEM_NAME "\"). FILE must load. KEY must be mode 0600. Sign\n"
	       "after the last edit of the policy or its deny_file: any change, even\n"
	       "whitespace, invalidates it.",
	.opts = sign_options,
	.flags = OPTS_NO_PIN_DIR,
};

static const struct opts_cmd verify_cmd = {
	.name = "policy verify",
	.usage = "FILE [--pub PUBFILE]",
	.doc = "Check FILE.sig against the public key(s) in PUBFILE (PEM blocks one after\n"
	       "another; any of them may have signed). Without --pub: $" SIG_TRUSTED_ENV
	       ", else " SIG_TRUSTED_DEFAULT ". Exit 0 only for a good signature.\n\n"
	       "When " SIG_TRUSTED_DEFAULT " exists (or $" SIG_TRUSTED_ENV " or\n"
	       "--require-signature names a key file), 'policy apply', 'attach --policy',\n"
	       "'run' and reload refuse any policy without a good signature by one of\n"
	       "its keys, and the policy in force stays.",
	.opts = verify_options,
	.flags = OPTS_NO_PIN_DIR,
};

static int policy_sig(const struct opts_cmd *c, int argc, char **argv)
{
	struct policy_opts o = {};
	const char *file, *out, *key, *pub;
	bool keygen = c == &keygen_cmd, sign = c == &sign_cmd;
	char msg[SIG_ERR_LEN];
	int err;

	if ((err = opts_parse(c, argc, argv, &o)))
		return opts_done(err);
	file = o.file, out = o.out, key = o.key, pub = o.pub;
	if (keygen) {
		err = sig_keygen(out, msg, sizeof(msg));
		if (!err)
			printf("wrote %s (private, mode 0600) and %s.pub\nfingerprint %s\n",
			       out, out, msg);
	} else if (sign) {
		err = sig_sign(file, key, msg, sizeof(msg));
		if (!err)
			printf("signed %s: %s\n", file, msg);
	} else {
		pub = sig_trusted_path(pub);
		if (!pub) {
			pr_warn("policy verify: no key given (--pub PUBFILE, $%s or %s)",
				SIG_TRUSTED_ENV, SIG_TRUSTED_DEFAULT);
			return -EINVAL;
		}
		err = sig_verify(file, pub, msg, sizeof(msg));
		if (!err)
			printf("%s: %s\n", file, msg);
	}
	if (err)
		pr_warn("%s", msg);
	return err;
}

static int policy_keygen(int argc, char **argv) { return policy_sig(&keygen_cmd, argc, argv); }
static int policy_sign(int argc, char **argv) { return policy_sig(&sign_cmd, argc, argv); }
static int policy_verify(int argc, char **argv) { return policy_sig(&verify_cmd, argc, argv); }

static int policy_load_apply(const struct opts_cmd *c, int argc, char **argv)
{
	struct policy_opts o = {};
	const char *file;
	struct ig_maps m;
	struct policy pol;
	int lock_fd, err;
	bool apply = c == &apply_cmd;

	if ((err = opts_parse(c, argc, argv, &o)))
		return opts_done(err);
	file = o.file;
	/* apply: an unsigned file is refused whatever it says. */
	err = load_policy(file, o.trusted, apply, &pol);
	if (err)
		return err;
	if (!apply) {
		printf("%s: OK (%d port%s, %zu allow, %zu deny)\n", file, pol.nports,
		       pol.nports == 1 ? "" : "s", pol.allow.n, pol.deny.n);
		policy_free(&pol);
		return 0;
	}
	if ((err = require_root()))
		goto out;
	lock_fd = open_state(&m);
	if (lock_fd < 0) {
		err = lock_fd;
		goto out;
	}
	err = apply_or_warn(&m, &pol);
	if (!err)
		printf("applied %s\n", file);
	close_state(&m, lock_fd);
out:
	policy_free(&pol);
	return err;
}

static int policy_check(int argc, char **argv) { return policy_load_apply(&check_cmd, argc, argv); }
static int policy_apply(int argc, char **argv) { return policy_load_apply(&apply_cmd, argc, argv); }

static const struct cmd policy_subs[] = {
	{ "check", policy_check, "FILE", "validate FILE, report the first error as FILE:LINE" },
	{ "apply", policy_apply, "FILE [--require-signature PUBFILE]",
	  "validate, then update the pinned maps in place" },
	{ "keygen", policy_keygen, "--out PREFIX", "make an Ed25519 key pair" },
	{ "sign", policy_sign, "FILE --key KEY", "write FILE.sig" },
	{ "verify", policy_verify, "FILE [--pub PUBFILE]", "check FILE.sig" },
	{}
};

static const struct opts_cmd policy_cmd = {
	.name = "policy",
	.usage = "check|apply|keygen|sign|verify ... (see 'policy COMMAND --help')",
	.doc = "Validate, apply or sign a policy file. apply: the fast path stays attached\n"
	       "throughout, and a bad file changes nothing. When " SIG_TRUSTED_DEFAULT " exists\n"
	       "(or $" SIG_TRUSTED_ENV " or --require-signature names a key file), FILE must\n"
	       "carry a good FILE.sig. keygen, sign, verify: Ed25519 policy signatures.",
	.subs = policy_subs,
};

int cmd_policy(int argc, char **argv)
{
	const struct cmd *sub;
	int err, i;

	if ((err = opts_sub(&policy_cmd, argc, argv, NULL, &sub, &i)))
		return opts_done(err);
	return sub->fn(argc - i, argv + i);
}
