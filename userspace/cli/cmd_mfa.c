// SPDX-License-Identifier: GPL-2.0
/*
 * mfa, knock and grant (issue 17, README "Requiring MFA for IMAP"):
 * enrolment into the secrets file, the knock client, and grants edited in
 * the pinned maps by an admin.
 */
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <openssl/crypto.h>
#include <qrencode.h>
#include "cli/cli.h"
#include "fastpath/grants.h"
#include "fastpath/lists.h"
#include "base/file.h"
#include "base/json.h"
#include "base/value.h"
#include "policy/mfa.h"
#include "policy/policy.h"

#define KNOCK_DEFAULT_PORT "62201"

/* ---- grant -------------------------------------------------------------- */

#define TTL_POLICY UINT64_MAX

struct grant_opts {
	bool json;
	uint64_t ttl_ns;
	const char *user;
	const char *policy;
	const char *arg[1];
	int nargs;
};

static const struct cmd grant_subs[] = {
	{ "add", NULL, "ADDR --user USER [--ttl DURATION]",
	  "let ADDR (an address or an IPv6 /64) reach access = grant\nports as USER "
	  "(default TTL: the policy's grant_ttl); a bare IPv6\naddress gets the "
	  "policy's grant_prefix (/64 by default;\nADDR/128 for the address alone)" },
	{ "del", NULL, "ADDR [--user USER]", "end the grants on ADDR (of USER only)" },
	{ "list", NULL, "[--json]", "address, user, time left, SYNs admitted" },
	{}
};

#define O(f) offsetof(struct grant_opts, f)
static const struct opt grant_options[] = {
	OPTION("user", 'u', OPT_STR, O(user), "USER", "the grant's user"),
	OPTION("ttl", 't', OPT_DURATION, O(ttl_ns), "DURATION", "e.g. 30m, 12h (1s .. 365d)"),
	OPTION("policy", 'p', OPT_PATH, O(policy), "FILE",
	       "policy for grant_ttl (default: the installed one)"),
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "list as JSON"),
	ARG(OPT_STR, O(arg), "ADDR", .max = 1, .count_off = O(nargs)),
	{}
};
#undef O

static const struct opts_cmd grant_cmd = {
	.name = "grant",
	.usage = "add|del ADDR | list [--json]",
	.doc = "Grants in the pinned maps: on access = grant ports a SYN passes only from a\n"
	       "source holding a live grant. An expired grant stops admitting new\n"
	       "connections on its own, with or without a daemon; connections it admitted\n"
	       "stay up until they close.",
	.opts = grant_options,
	.subs = grant_subs,
};

static int print_grant(const struct grant_info *g, uint64_t now, json_t *arr)
{
	char a[ADDR_STRLEN], left[32] = "expired";
	bool expired = g->expires_ns <= now;

	if (!expired)
		fmt_duration(g->expires_ns - now, left, sizeof(left));
	addr_format(&g->pfx, a);
	if (arr)
		return json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:b, s:I, s:I}",
			"addr", a, "user", json_text(g->user),
			"expires_in_s", json_fixed(expired ? 0 : (g->expires_ns - now) / 1e9, 1),
			"expired", expired, "created", (json_int_t)g->created,
			"packets", (json_int_t)g->packets)) ? -ENOMEM : 0;
	printf("%-40s %-12s %12llu  ", a, left, (unsigned long long)g->packets);
	print_clean(g->user);
	putchar('\n');
	return 0;
}

static int grant_list_cmd(struct ig_maps *m, bool json)
{
	uint64_t now = mono_ns();
	struct grant_info *g;
	json_t *arr = NULL;
	size_t n;
	int err = grant_list(m, &g, &n);

	if (err)
		return err;
	if (json && !(arr = json_array()))
		err = -ENOMEM;
	else if (!json)
		printf("%-40s %-12s %12s  %s\n", "address", "time left", "syns", "user");
	for (size_t i = 0; !err && i < n; i++)
		err = print_grant(&g[i], now, arr);
	if (!err && json)
		err = json_println(stdout, json_incref(arr));
	json_decref(arr);
	free(g);
	return err;
}

void why_grant(const struct ig_prefix *p, bool json)
{
	uint64_t now = mono_ns();
	struct grant_info *g;
	struct ig_maps m;
	size_t n;
	int lock_fd = open_state(&m);

	if (lock_fd < 0)
		return;
	close(lock_fd);
	if (grant_lookup(&m, p->addr, &g, &n)) {
		fastpath_close_maps(&m);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char a[ADDR_STRLEN], left[32];

		addr_format(&g[i].pfx, a);
		fmt_duration(g[i].expires_ns - now, left, sizeof(left));
		if (json) {
			json_println(stdout, json_pack("{s:s, s:o, s:o, s:I}", "grant", a,
				"user", json_text(g[i].user),
				"expires_in_s", json_fixed((g[i].expires_ns - now) / 1e9, 1),
				"packets", (json_int_t)g[i].packets));
			continue;
		}
		printf("granted by %s to user ", a);
		print_clean(g[i].user);
		printf(", %s left, %llu connection(s) admitted\n", left,
		       (unsigned long long)g[i].packets);
	}
	if (!n && !json && p->plen == 128)
		printf("no grant (access = grant ports drop its SYNs)\n");
	free(g);
	fastpath_close_maps(&m);
}

int cmd_grant(int argc, char **argv)
{
	struct grant_opts o = { .ttl_ns = TTL_POLICY };
	const struct cmd *s;
	struct ig_prefix p = {};
	struct policy pol;
	struct ig_maps m;
	char a[ADDR_STRLEN];
	int lock_fd, err, i;

	if ((err = opts_sub(&grant_cmd, argc, argv, &o, &s, &i)) ||
	    (err = opts_parse(&grant_cmd, argc - i, argv + i, &o)))
		return opts_done(err);
	if (strcmp(s->name, "list")) {
		if (o.nargs != 1 || addr_parse(o.arg[0], &p, false) || !grant_prefix_ok(&p)) {
			pr_warn("grant %s: expected one address or IPv6 /64", s->name);
			return -EINVAL;
		}
	} else if (o.nargs) {
		pr_warn("grant list: unexpected argument '%s'", o.arg[0]);
		return -EINVAL;
	}
	if (o.user && !grant_user_ok(o.user)) {
		pr_warn("grant: invalid user name (1..63 of letters, digits and ._@+-)");
		return -EINVAL;
	}
	if (!strcmp(s->name, "add")) {
		/* As a knock from ADDR would: a bare IPv6 address is granted
		 * the policy's grant_prefix (its /64 unless set otherwise). */
		bool bare6 = !strchr(o.arg[0], '/') && !addr_is_v4(p.addr);

		if (!o.user) {
			pr_warn("grant add: --user USER is required");
			return -EINVAL;
		}
		if (o.ttl_ns == TTL_POLICY || bare6) {
			if ((err = load_policy(o.policy, NULL, false, &pol)))
				return err;
			if (o.ttl_ns == TTL_POLICY)
				o.ttl_ns = pol.mfa.grant_ttl_ns;
			if (bare6)
				grant_prefix_of(p.addr, pol.mfa.grant_plen6, &p);
			policy_free(&pol);
		}
	}
	if ((err = require_root()))
		return err;
	lock_fd = open_state(&m);
	if (lock_fd < 0)
		return lock_fd;
	addr_format(&p, a);
	if (!strcmp(s->name, "list")) {
		close(lock_fd);
		lock_fd = -1;
		err = grant_list_cmd(&m, o.json);
	} else if (!strcmp(s->name, "add")) {
		err = grant_add(&m, &p, o.user, o.ttl_ns, NULL);
		if (err == -ERANGE)
			pr_warn("grant add %s: --ttl must be 1s .. 365d", a);
		else if (err == -E2BIG)
			pr_warn("grant add %s: the grant map is full", a);
		else if (err)
			pr_warn("grant add %s: %s", a, strerror(-err));
		else
			printf("grant add %s %s\n", a, o.user);
	} else {
		err = grant_del(&m, &p, o.user);
		if (err == -ENOENT)
			pr_warn("grant del %s: no such grant", a);
		else if (err)
			pr_warn("grant del %s: %s", a, strerror(-err));
		else
			printf("grant del %s\n", a);
	}
	close_state(&m, lock_fd);
	return err;
}

/* ---- mfa ---------------------------------------------------------------- */

struct mfa_opts {
	const char *policy;
	const char *key_out;
	const char *issuer;
	bool force, no_qr, json;
	const char *arg[1];
	int nargs;
};

static const struct cmd mfa_subs[] = {
	{ "enroll", NULL, "USER [--knock-key-out FILE] [--force]",
	  "make USER's TOTP secret and knock key; print the\notpauth:// URI and its QR code" },
	{ "list", NULL, "[--json]", "enrolled users" },
	{ "revoke", NULL, "USER", "remove USER's secrets and end USER's grants" },
	{}
};

#define O(f) offsetof(struct mfa_opts, f)
static const struct opt mfa_options[] = {
	OPTION("policy", 'p', OPT_PATH, O(policy), "FILE",
	       "the policy naming the secrets file ([mfa] secrets;\ndefault: the installed one)"),
	OPTION("knock-key-out", 'k', OPT_PATH, O(key_out), "FILE",
	       "enroll: write the knock key here (mode 0600)\nfor the user's computers"),
	OPTION("issuer", 0, OPT_STR, O(issuer), "NAME", "enroll: the issuer shown in the app "
	       "(imapguard)"),
	OPTION("force", 'f', OPT_FLAG, O(force), NULL, "enroll: replace an enrolled user's secrets"),
	OPTION("no-qr", 0, OPT_FLAG, O(no_qr), NULL, "enroll: no QR code, only the URI"),
	OPTION("json", 'j', OPT_FLAG, O(json), NULL, "list as JSON"),
	ARG(OPT_STR, O(arg), "USER", .max = 1, .count_off = O(nargs)),
	{}
};
#undef O

static const struct opts_cmd mfa_cmd = {
	.name = "mfa",
	.usage = "enroll USER | list | revoke USER",
	.doc = "Users of the second factor. Each has a TOTP secret (for an authenticator\n"
	       "app) and a knock key (for 'imapguard knock' on the user's computers), kept\n"
	       "in the [mfa] secrets file (mode 0600). A running daemon notices changes\n"
	       "to the file within a second.",
	.opts = mfa_options,
	.subs = mfa_subs,
	.epilog = "EXAMPLES\n  imapguard mfa enroll alice --knock-key-out alice.key\n"
		  "  imapguard knock mail.example.org --user alice --key-file alice.key",
};

/* The QR code in the terminal: two characters per module, light modules
 * drawn (right for the usual dark terminal), a quiet zone of 4. */
static void print_qr(const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	const int quiet = 4;

	if (!q) {
		pr_warn("Couldn't make the QR code: %s", strerror(errno));
		return;
	}
	for (int y = -quiet; y < q->width + quiet; y++) {
		for (int x = -quiet; x < q->width + quiet; x++) {
			bool dark = x >= 0 && y >= 0 && x < q->width && y < q->width &&
				    (q->data[y * q->width + x] & 1);

			fputs(dark ? "  " : "\u2588\u2588", stdout);
		}
		putchar('\n');
	}
	QRcode_free(q);
}

static int mfa_enroll(const char *path, const struct mfa_opts *o, struct mfa_db *db)
{
	char uri[512];
	struct mfa_user *u;
	int err;

	if (o->force)
		mfa_user_del(db, o->arg[0]);
	err = mfa_user_add(db, o->arg[0], &u);
	if (err == -EEXIST) {
		pr_warn("mfa enroll: '%s' is enrolled (--force makes new secrets)", o->arg[0]);
		return err;
	}
	if (err) {
		pr_warn("mfa enroll: %s", strerror(-err));
		return err;
	}
	if (o->key_out && (err = mfa_key_file_write(o->key_out, u->knock_key))) {
		pr_warn("mfa enroll: Couldn't write '%s': %s", o->key_out, strerror(-err));
		return err;
	}
	err = mfa_otpauth_uri(u, o->issuer ? o->issuer : "imapguard", uri, sizeof(uri));
	if (!err && (err = mfa_secrets_save(path, db)))
		pr_warn("mfa enroll: Couldn't write '%s': %s", path, strerror(-err));
	if (err)
		return err;
	printf("enrolled %s in %s\n", o->arg[0], path);
	if (o->key_out)
		printf("knock key written to %s (give it to the user's computers)\n", o->key_out);
	printf("\nScan this with an authenticator app, or enter the URI:\n%s\n\n", uri);
	if (!o->no_qr)
		print_qr(uri);
	OPENSSL_cleanse(uri, sizeof(uri));
	return 0;
}

static int mfa_list(struct mfa_db *db, bool json)
{
	json_t *arr = json ? json_array() : NULL;

	for (size_t i = 0; i < db->n; i++) {
		if (arr)
			json_array_append_new(arr, json_pack("{s:s}", "user", db->users[i].name));
		else
			printf("%s\n", db->users[i].name);
	}
	if (arr)
		return json_println(stdout, arr);
	return 0;
}

int cmd_mfa(int argc, char **argv)
{
	struct mfa_opts o = {};
	struct mfa_db db = {};
	const struct cmd *s;
	char err_s[POL_ERR_LEN], path[PATH_MAX];
	struct policy pol;
	int err, i, lock_fd;

	if ((err = opts_sub(&mfa_cmd, argc, argv, &o, &s, &i)) ||
	    (err = opts_parse(&mfa_cmd, argc - i, argv + i, &o)))
		return opts_done(err);
	if (strcmp(s->name, "list") && (o.nargs != 1 || !mfa_user_name_ok(o.arg[0]))) {
		pr_warn("mfa %s: expected one USER (1..63 of letters, digits and ._@+-)", s->name);
		return -EINVAL;
	}
	if ((err = load_policy(o.policy, NULL, false, &pol)))
		return err;
	snprintf(path, sizeof(path), "%s", pol.mfa.secrets);
	policy_free(&pol);
	if ((err = mfa_init()))
		return err;
	lock_fd = mfa_secrets_lock(path);
	if (lock_fd < 0) {
		pr_warn("mfa: Couldn't lock '%s.lock': %s", path, strerror(-lock_fd));
		return lock_fd;
	}
	err = mfa_secrets_load(path, &db, err_s, sizeof(err_s));
	if (err == -ENOENT && !strcmp(s->name, "enroll")) {
		err = 0;	/* the first user creates the file */
	} else if (err) {
		pr_warn("mfa: %s", err_s);
		goto out;
	}
	if (!strcmp(s->name, "enroll")) {
		err = mfa_enroll(path, &o, &db);
	} else if (!strcmp(s->name, "list")) {
		err = mfa_list(&db, o.json);
	} else {
		struct ig_maps m;
		int map_lock, n;

		err = mfa_user_del(&db, o.arg[0]);
		if (err) {
			pr_warn("mfa revoke: '%s' is not enrolled", o.arg[0]);
			goto out;
		}
		if ((err = mfa_secrets_save(path, &db))) {
			pr_warn("mfa revoke: Couldn't write '%s': %s", path, strerror(-err));
			goto out;
		}
		printf("revoked %s\n", o.arg[0]);
		/* Its grants end too (the fast path may not be loaded). */
		if (!geteuid() && fastpath_loaded(env.pin_dir) && (map_lock = open_state(&m)) >= 0) {
			n = grant_del_user(&m, o.arg[0]);
			if (n > 0)
				printf("ended %d grant%s of %s\n", n, n == 1 ? "" : "s", o.arg[0]);
			close_state(&m, map_lock);
		}
	}
out:
	close(lock_fd);
	mfa_db_free(&db);
	return err;
}

/* ---- knock -------------------------------------------------------------- */

struct knock_opts {
	const char *host;
	const char *user;
	const char *key_file;
	const char *code;
	const char *port;
};

#define O(f) offsetof(struct knock_opts, f)
static const struct opt knock_options[] = {
	OPTION("user", 'u', OPT_STR, O(user), "USER", "the enrolled user", .required = true),
	OPTION("key-file", 'k', OPT_PATH, O(key_file), "FILE",
	       "the user's knock key file (from mfa enroll)", .required = true),
	OPTION("code", 'c', OPT_STR, O(code), "N",
	       "the 6-digit code (default: asked on the terminal)"),
	OPTION("port", 0, OPT_STR, O(port), "PORT", "the server's knock_port (62201)"),
	ARG(OPT_STR, O(host), "HOST"),
	{}
};
#undef O

static const struct opts_cmd knock_cmd = {
	.name = "knock",
	.usage = "HOST --user USER --key-file FILE [--code N]",
	.doc = "Earn a grant for this computer's address: send one UDP datagram with the\n"
	       "user, the authenticator's code, the time and a random nonce, signed with\n"
	       "the user's knock key. The server never answers; try the IMAP connection.",
	.opts = knock_options,
	.flags = OPTS_NO_PIN_DIR,
};

/* The code from the terminal without echo, or a line of stdin. */
static int read_code(char *buf, size_t len)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &old);
	char *nl;

	if (tty) {
		fprintf(stderr, "code: ");
		quiet = old;
		quiet.c_lflag &= ~ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	nl = fgets(buf, len, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!nl)
		return -EINVAL;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

int cmd_knock(int argc, char **argv)
{
	struct knock_opts o = { .port = KNOCK_DEFAULT_PORT };
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
	uint8_t key[MFA_KNOCK_KEY_LEN];
	char code[32], buf[MFA_KNOCK_MAX + 1];
	int err, n, fd;

	if ((err = opts_parse(&knock_cmd, argc, argv, &o)))
		return opts_done(err);
	if (!mfa_user_name_ok(o.user)) {
		pr_warn("knock: invalid user name");
		return -EINVAL;
	}
	if ((err = mfa_key_file_read(o.key_file, key))) {
		pr_warn("knock: Couldn't read the knock key from '%s': %s", o.key_file,
			err == -EINVAL ? "not 64 hex digits" : file_strerror(err));
		return err;
	}
	if (o.code)
		snprintf(code, sizeof(code), "%s", o.code);
	else if ((err = read_code(code, sizeof(code))))
		goto out;
	n = mfa_knock_build(o.user, code, (int64_t)time(NULL), NULL, key, buf, sizeof(buf));
	if (n < 0) {
		pr_warn("knock: %s", n == -EINVAL ? "the code must be 6 digits" : strerror(-n));
		err = n;
		goto out;
	}
	err = getaddrinfo(o.host, o.port, &hints, &ai);
	if (err) {
		pr_warn("knock: %s: %s", o.host, gai_strerror(err));
		err = -EHOSTUNREACH;
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, buf, n, 0, ai->ai_addr, ai->ai_addrlen) != n) {
		err = -errno;
		pr_warn("knock: Couldn't send to %s port %s: %s", o.host, o.port, strerror(-err));
	} else {
		printf("knocked on %s port %s as %s\n", o.host, o.port, o.user);
	}
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(buf, sizeof(buf));
	return err;
}
