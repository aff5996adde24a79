// SPDX-License-Identifier: GPL-2.0
/* authpolicy dovecot-config: the Dovecot settings for a policy's [authpolicy]. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "cli/cli.h"
#include "daemon/authpolicy.h"
#include "policy/policy.h"

struct authpolicy_opts {
	const char *policy;
	int reject_on_fail;	/* 0 no, 1 yes */
};

static const char *const yes_no[] = { "no", "yes", NULL };

#define O(f) offsetof(struct authpolicy_opts, f)
static const struct opt authpolicy_options[] = {
	OPTION("policy", 'p', OPT_PATH, O(policy), "FILE",
	       "the policy with the [authpolicy] section (default: installed)"),
	OPTION("reject-on-fail", 'r', OPT_ENUM, O(reject_on_fail), "yes|no",
	       "auth_policy_reject_on_fail (default no: with imapguard down,\n"
	       "Dovecot serves users; XDP still enforces the bans)", .names = yes_no),
	{}
};
#undef O

static const struct cmd authpolicy_subs[] = {
	{ "dovecot-config", NULL, "[--policy FILE]", "print Dovecot's auth_policy settings" },
	{}
};

static const struct opts_cmd authpolicy_cmd = {
	.name = "authpolicy",
	.usage = "dovecot-config [--policy FILE] [--reject-on-fail yes|no]",
	.doc = "Print the Dovecot 2.3 settings that make Dovecot ask imapguard before and\n"
	       "after every authentication: the URL of [authpolicy] listen, the API key\n"
	       "header (the key is read from api_key_file: run as root, and keep the\n"
	       "output readable by root and Dovecot only), a password-hash nonce derived\n"
	       "from the key, and the request attributes imapguard reads.",
	.opts = authpolicy_options,
	.subs = authpolicy_subs,
	.flags = OPTS_NO_PIN_DIR,
	.epilog = "EXAMPLES\n"
		  "  imapguard authpolicy dovecot-config -p /etc/imapguard/policy.conf \\\n"
		  "      > /etc/dovecot/conf.d/95-imapguard.conf\n",
};

/* The URL Dovecot uses: a wildcard listen address is reached on loopback. */
static int url_of(const char *listen, char *out, size_t len)
{
	struct sockaddr_storage ss;
	char host[INET6_ADDRSTRLEN];

	if (parse_hostport(listen, &ss))
		return -EINVAL;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			s6->sin6_addr = in6addr_loopback;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "http://[%s]:%u/", host, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
			s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, len, "http://%s:%u/", host, ntohs(s4->sin_port));
	}
	return 0;
}

int cmd_authpolicy(int argc, char **argv)
{
	struct authpolicy_opts o = { .reject_on_fail = 0 };
	char key[AP_KEY_MAX + 1], nonce[AP_NONCE_LEN + 1], url[96];
	const struct pol_authpolicy *a;
	const struct cmd *sub;
	struct policy pol;
	int err, i;

	if ((err = opts_sub(&authpolicy_cmd, argc, argv, &o, &sub, &i)) ||
	    (err = opts_parse(&authpolicy_cmd, argc - i, argv + i, &o)))
		return opts_done(err);
	if ((err = load_policy(o.policy, NULL, false, &pol)))
		return err;
	a = &pol.authpolicy;
	if (!a->listen[0]) {
		pr_warn("authpolicy: %s has no [authpolicy] section", pol.file);
		err = -ENOENT;
	} else if (!(err = authpolicy_read_key(a->api_key_file, key)) &&
		   !(err = url_of(a->listen, url, sizeof(url)))) {
		authpolicy_nonce(key, nonce);
		printf("# imapguard's auth policy server (imapguard authpolicy dovecot-config)\n"
		       "# policy: %s\n"
		       "# Holds the API key: readable by root and Dovecot only.\n"
		       "auth_policy_server_url = %s\n"
		       "auth_policy_server_api_header = %s:%s\n"
		       "auth_policy_server_timeout_msecs = 2000\n"
		       "auth_policy_hash_nonce = %s\n"
		       "auth_policy_hash_mech = sha256\n"
		       "auth_policy_request_attributes = login=%%{requested_username} "
		       "pwhash=%%{hashed_password} remote=%%{rip} device_id=%%{client_id} "
		       "protocol=%%s session_id=%%{session} local_port=%%{lport}\n"
		       "auth_policy_reject_on_fail = %s\n"
		       "auth_policy_check_before_auth = yes\n"
		       "auth_policy_check_after_auth = yes\n"
		       "auth_policy_report_after_auth = yes\n"
		       "# The policy server's refusals and tarpits in Dovecot's log:\n"
		       "auth_verbose = yes\n",
		       pol.file, url, a->api_header, key, nonce, yes_no[o.reject_on_fail]);
	}
	memset(key, 0, sizeof(key));
	policy_free(&pol);
	return err;
}
