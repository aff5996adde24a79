// SPDX-License-Identifier: GPL-2.0
/* policy check | apply | keygen | sign | verify. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "base/log.h"
#include "cli/cli.h"
#include "fastpath/lists.h"
#include "policy/policy.h"
#include "policy/sign.h"

static void sig_usage(const char *sub)
{
	if (!strcmp(sub, "keygen"))
		printf("Usage: %s policy keygen --out PREFIX\n\n"
		       "Make an Ed25519 key pair for signing policies: PREFIX (PKCS#8 PEM private\n"
		       "key, mode 0600) and PREFIX.pub (PEM public key). Existing files are never\n"
		       "overwritten. Prints the key's SHA256 fingerprint.\n", env.prog);
	else if (!strcmp(sub, "sign"))
		printf("Usage: %s policy sign FILE --key KEY\n\n"
		       "Write FILE.sig: a manifest of the SHA-256 of FILE's exact bytes and of\n"
		       "its deny_file, and a detached Ed25519 signature over it (PEM\n"
		       "\"" SIG_PEM_NAME "\"). FILE must load. KEY must be mode 0600. Sign\n"
		       "after the last edit of the policy or its deny_file: any change, even\n"
		       "whitespace, invalidates it.\n", env.prog);
	else
		printf("Usage: %s policy verify FILE [--pub PUBFILE]\n\n"
		       "Check FILE.sig against the public key(s) in PUBFILE (PEM blocks one after\n"
		       "another; any of them may have signed). Without --pub: $" SIG_TRUSTED_ENV
		       ", else " SIG_TRUSTED_DEFAULT ". Exit 0 only for a good signature.\n\n"
		       "When " SIG_TRUSTED_DEFAULT " exists (or $" SIG_TRUSTED_ENV " or\n"
		       "--require-signature names a key file), 'policy apply', 'attach --policy',\n"
		       "'run' and reload refuse any policy without a good signature by one of\n"
		       "its keys, and the policy in force stays.\n", env.prog);
	printf("\nOptions:\n%s  -h, --help          this help\n",
	       !strcmp(sub, "keygen") ? "  -o, --out PREFIX    key file names\n" :
	       !strcmp(sub, "sign") ? "  -k, --key KEY       private key from 'policy keygen'\n" :
	       "  -p, --pub PUBFILE   trusted public key(s)\n");
}

static int cmd_policy_sig(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "key", required_argument, NULL, 'k' },
		{ "pub", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *sub = argv[0], *out = NULL, *key = NULL, *pub = NULL, *file;
	bool keygen = !strcmp(sub, "keygen"), sign = !strcmp(sub, "sign");
	char msg[SIG_ERR_LEN];
	int opt, err;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:k:p:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'o': out = optarg; break;
		case 'k': key = optarg; break;
		case 'p': pub = optarg; break;
		case 'v': break;
		case 'h': sig_usage(sub); return 0;
		default: return -EINVAL;
		}
	}
	file = optind < argc ? argv[optind] : NULL;
	if (keygen ? !out || file : !file || optind + 1 != argc || (sign && !key)) {
		pr_warn("usage: %s policy %s (see '%s policy %s --help')", env.prog,
			keygen ? "keygen --out PREFIX" : sign ? "sign FILE --key KEY" :
			"verify FILE [--pub PUBFILE]", env.prog, sub);
		return -EINVAL;
	}
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

static void policy_usage(void)
{
	usage_cmd("policy", "check FILE | apply FILE [--require-signature PUBFILE] |\n"
		  "       keygen|sign|verify ... (see 'policy verify --help')",
		  "check: validate FILE and report the first error as FILE:LINE.\n"
		  "apply: validate, then update the pinned maps in place; the fast path\n"
		  "stays attached throughout, and a bad file changes nothing. When\n"
		  SIG_TRUSTED_DEFAULT " exists (or $" SIG_TRUSTED_ENV " or\n"
		  "--require-signature names a key file), FILE must carry a good FILE.sig.\n"
		  "keygen, sign, verify: Ed25519 policy signatures.",
		  "  -S, --require-signature PUBFILE  (apply) trusted key(s) for FILE.sig\n");
}

int cmd_policy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "require-signature", required_argument, NULL, 'S' },
		COMMON_LONGOPTS, {}
	};
	const char *trusted = NULL, *sub, *file;
	struct ig_maps m;
	struct policy pol;
	int lock_fd, err, opt, c;

	if (argc >= 2 && (!strcmp(argv[1], "keygen") || !strcmp(argv[1], "sign") ||
			  !strcmp(argv[1], "verify")))
		return cmd_policy_sig(argc - 1, argv + 1);
	if (argc < 2 || argv[1][0] == '-') {
		policy_usage();
		return argc < 2 || (strcmp(argv[1], "--help") && strcmp(argv[1], "-h")) ? -EINVAL : 0;
	}
	sub = argv[1];
	argc--, argv++;
	while ((opt = getopt_long(argc, argv, "S:P:vh", opts, NULL)) != -1) {
		if ((c = common_opt(opt)) < 0)
		{
			policy_usage();
			return 0;
		}
		if (c)
			continue;
		if (opt != 'S')
			return -EINVAL;
		trusted = optarg;
	}
	if (optind + 1 != argc || (strcmp(sub, "check") && strcmp(sub, "apply"))) {
		pr_warn("usage: %s policy check|apply FILE (see 'policy --help')", env.prog);
		return -EINVAL;
	}
	file = argv[optind];
	/* apply: an unsigned file is refused whatever it says. */
	err = load_policy(file, trusted, !strcmp(sub, "apply"), &pol);
	if (err)
		return err;
	if (!strcmp(sub, "check")) {
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
