// SPDX-License-Identifier: GPL-2.0
/*
 * Policy parser and address helper tests. No root, no BPF.
 * Usage: test_policy [REPO_ROOT]   (default ".", to find the shipped policies)
 */
#include <errno.h>
#include <ftw.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/file.h"
#include "base/hash.h"
#include "policy/policy.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

#define NS	1000000000ULL
#define A16	"aaaaaaaaaaaaaaaa"

static char tmpdir[] = "/tmp/test_policy.XXXXXX";
static const char *root = ".";
static struct policy pol;	/* ~50 KB: keep it off the stack */
static char err[POL_ERR_LEN];

static const char *tmp_path(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* Write a temp file and return its path (valid until the next call). */
static const char *write_tmp(const char *name, const char *text, size_t len)
{
	const char *path = tmp_path(name);
	FILE *f = fopen(path, "w");

	if (!f || fwrite(text, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
	return path;
}

static const char *write_str(const char *name, const char *text)
{
	return write_tmp(name, text, strlen(text));
}

static int load_text(const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", write_str("p.conf", text));
	return policy_load(path, &pol, err, sizeof(err));
}

/* The error must start with "FILE:LINE: " and contain msg. */
static void expect_error_in(const char *file, int ret, int line, const char *msg)
{
	char prefix[PATH_MAX + 16];

	snprintf(prefix, sizeof(prefix), "%s:%d: ", file, line);
	ASSERT_EQ(ret, -EINVAL, "policy_load fails");
	if (!ASSERT_TRUE(!strncmp(err, prefix, strlen(prefix)) && strstr(err, msg), "message"))
		fprintf(stderr, "  got  \"%s\"\n  want \"%s...%s...\"\n", err, prefix, msg);
	policy_free(&pol);
}

static void expect_error(const char *text, int line, const char *msg)
{
	int ret = load_text(text);

	expect_error_in(tmp_path("p.conf"), ret, line, msg);
}

struct err_case {
	const char *name, *text;
	int line;
	const char *msg;
};

static const struct err_case err_cases[] = {
	/* structure */
	{ "key outside section", "action = pass\n", 1, "key 'action' outside any section" },
	{ "key after comments", "# c\n\nfoo = 1\n[lists]\n", 3, "outside any section" },
	{ "unknown section", "[lists]\n[bogus]\n", 2, "unknown section [bogus]" },
	{ "section takes no arg", "[lists extra]\n", 1, "unknown section [lists extra]" },
	{ "missing ]", "[lists]\n[detect\n", 2, "missing ']'" },
	{ "text after header", "[lists] x\n", 1, "unexpected text after section header" },
	{ "no equals", "[lists]\nban_ttl 1h\n", 2, "expected '[section]' or 'key = value'" },
	{ "syntax error first", "[lists]\nbogus\nfoo = 1\n", 2, "expected '[section]'" },
	{ "unknown key", "[lists]\n\nfoo = 1\n", 3, "unknown key 'foo' (in [lists])" },
	{ "key of other section", "[limits]\nban_ttl = 1h\n", 2, "unknown key 'ban_ttl'" },
	{ "duplicate key", "[lists]\nban_ttl = 1h\n; c\nban_ttl = 2h\n", 4,
	  "duplicate key, first at line 2 (key 'ban_ttl' in [lists])" },
	{ "duplicate key indented", "[port 1]\n  action = pass\n  action = drop\n", 3, "duplicate key" },
	{ "duplicate section", "[lists]\n[detect]\n[lists]\n", 3,
	  "duplicate section [lists] (first at line 1)" },
	{ "duplicate port", "[port 143]\naction = pass\n[port 0143]\naction = drop\n", 3,
	  "duplicate section [port 143]" },
	{ "duplicate authlog", "[authlog a]\njournal = x.service\n[authlog a]\n", 3,
	  "duplicate section [authlog a]" },
	{ "hash is no inline comment", "[port 1]\naction = pass # no\n", 2, "invalid action 'pass # no'" },
	/* [port N] */
	{ "port 0", "[port 0]\n", 1, "invalid port '0'" },
	{ "port 65536", "[port 65536]\n", 1, "invalid port '65536'" },
	{ "port not a number", "[port imap]\n", 1, "invalid port 'imap'" },
	{ "port missing", "[port]\n", 1, "invalid port ''" },
	{ "missing action", "[port 143]\nallow = 10.0.0.0/8\n", 1, "missing 'action" },
	{ "empty port section", "[lists]\n[port 143]\n[detect]\n", 2, "missing 'action = pass|drop|reject|redirect|starttls' (in [port 143])" },
	{ "empty port at eof", "\n[port 25]\n# c\n", 2, "missing 'action" },
	{ "bad action", "[port 143]\naction = allow\n", 2, "invalid action 'allow' (expected pass|drop|reject|redirect|starttls) (key 'action' in [port 143])" },
	{ "starttls_mode without starttls", "[port 143]\naction = reject\nstarttls_mode = log\n", 3, "only valid with action = starttls (key 'starttls_mode' in [port 143])" },
	{ "bad starttls_mode", "[port 143]\naction = starttls\nstarttls_mode = warn\n", 3, "starttls_mode" },
	{ "max_flows zero", "[limits]\nmax_flows = 0\n", 2, "max_flows" },
	{ "max_grants zero", "[limits]\nmax_grants = 0\n", 2, "max_grants" },
	{ "action none", "[port 143]\naction = none\n", 2, "invalid action 'none'" },
	{ "redirect without iface", "[port 143]\n\naction = redirect\n", 3, "needs 'redirect_to = IFNAME' (key 'action' in [port 143])" },
	{ "redirect_to without redirect", "[port 143]\nredirect_to = eth1\naction = pass\n", 2,
	  "only valid with action = redirect (key 'redirect_to'" },
	{ "redirect_to too long", "[port 143]\naction = redirect\nredirect_to = abcdefghijklmnop\n", 3,
	  "invalid interface name 'abcdefghijklmnop'" },
	{ "redirect_to slash", "[port 143]\naction = redirect\nredirect_to = eth0/1\n", 3, "invalid interface name" },
	{ "redirect_to dotdot", "[port 143]\naction = redirect\nredirect_to = ..\n", 3, "invalid interface name" },
	{ "rate 0", "[port 1]\naction = pass\nsyn_rate = 0/s\n", 3, "invalid rate '0/s'" },
	{ "rate negative", "[port 1]\naction = pass\nsyn_rate = -1/s\n", 3, "invalid rate" },
	{ "rate unit", "[port 1]\naction = pass\nsyn_rate = 20/x\n", 3, "invalid rate" },
	{ "rate long unit", "[port 1]\naction = pass\nsyn_rate = 20/sec\n", 3, "invalid rate" },
	{ "rate no unit", "[port 1]\naction = pass\nsyn_rate = 20\n", 3, "invalid rate" },
	{ "rate garbage", "[port 1]\naction = pass\nsyn_rate = abc\n", 3, "invalid rate" },
	{ "rate no number", "[port 1]\naction = pass\nsyn_rate = /s\n", 3, "invalid rate" },
	{ "rate double slash", "[port 1]\naction = pass\nsyn_rate = 20/s/s\n", 3, "invalid rate" },
	{ "rate overflow", "[port 1]\naction = pass\nsyn_rate = 99999999999999999999/s\n", 3, "invalid rate" },
	{ "rate too high", "[port 1]\naction = pass\nsyn_rate = 1000000001/s\n", 3, "above one per nanosecond" },
	{ "subnet rate bad", "[port 1]\naction = pass\nsubnet_rate = 1.5/s\n", 3, "invalid rate '1.5/s'" },
	{ "subnet rate key", "[port 1]\naction = pass\nsubnet_rate = x\n", 3, "(key 'subnet_rate' in [port 1])" },
	{ "burst without rate", "[port 1]\naction = pass\nsyn_burst = 5\n", 3, "needs syn_rate (key 'syn_burst'" },
	{ "subnet burst without rate", "[port 1]\nsubnet_burst = 5\naction = pass\nsyn_rate = 1/s\n", 2,
	  "needs subnet_rate" },
	{ "burst 0", "[port 1]\naction = pass\nsyn_rate = 1/s\nsyn_burst = 0\n", 4, "from 1 to 1000000, got '0'" },
	{ "burst too big", "[port 1]\naction = pass\nsyn_rate = 1/s\nsyn_burst = 1000001\n", 4, "from 1 to 1000000" },
	{ "burst hex", "[port 1]\naction = pass\nsyn_rate = 1/s\nsyn_burst = 0x10\n", 4, "got '0x10'" },
	{ "source_prefix v4 33", "[port 1]\naction = pass\nsource_prefix = 33, 64\n", 3, "expected 'V4, V6' prefix lengths" },
	{ "source_prefix one value", "[port 1]\naction = pass\nsource_prefix = 32\n", 3, "prefix lengths" },
	{ "source_prefix three values", "[port 1]\naction = pass\nsource_prefix = 32, 64, 1\n", 3, "prefix lengths" },
	{ "source_prefix zero", "[port 1]\naction = pass\nsource_prefix = 0, 64\n", 3, "prefix lengths" },
	{ "source_prefix v6 129", "[port 1]\naction = pass\nsource_prefix = 32, 129\n", 3, "prefix lengths" },
	{ "source_prefix v6 65", "[port 1]\naction = pass\nsource_prefix = 32, 65\n", 3, "IPv6 length 65 is longer than 64" },
	{ "subnet_prefix v6 96", "[port 1]\naction = pass\nsubnet_prefix = 24, 96\n", 3, "IPv6 length 96 is longer than 64" },
	{ "subnet longer than source", "[port 1]\naction = pass\nsource_prefix = 24, 64\nsubnet_prefix = 28, 48\n", 4,
	  "is longer than source_prefix 24, 64 (key 'subnet_prefix' in [port 1])" },
	{ "source shorter than default subnet", "[port 1]\naction = pass\nsource_prefix = 16, 64\nsubnet_rate = 10/s\n", 3,
	  "subnet_prefix 24, 48 is longer than source_prefix 16, 64 (key 'source_prefix'" },
	{ "allow host bits", "[port 1]\naction = pass\nallow = 10.0.0.0/8 198.18.0.1/24\n", 3,
	  "198.18.0.1/24: host bits set (key 'allow' in [port 1])" },
	{ "allow bad address", "[port 1]\naction = pass\nallow = 10.0.0.0/8\nallow = 300.1.1.1\n", 4,
	  "300.1.1.1: invalid address or prefix" },
	{ "allow prefix too long", "[port 1]\naction = pass\nallow = 10.0.0.0/33\n", 3, "10.0.0.0/33: invalid" },
	/* [lists] */
	{ "deny v6 host bits", "[lists]\ndeny = 2001:db8::1/64\n", 2, "2001:db8::1/64: host bits set (key 'deny' in [lists])" },
	{ "deny semicolon glued", "[lists]\ndeny = 192.0.2.0/24;x\n", 2, "192.0.2.0/24;x: invalid" },
	{ "ban_scope", "[lists]\nban_scope = everything\n", 2, "invalid value 'everything' (expected protected|all)" },
	{ "ban_ttl negative", "[lists]\nban_ttl = -1h\n", 2, "invalid duration '-1h'" },
	{ "ban_ttl unit", "[lists]\nban_ttl = 10x\n", 2, "invalid duration" },
	{ "ban_ttl empty", "[lists]\nban_ttl =\n", 2, "invalid duration ''" },
	{ "ban_ttl trailing number", "[lists]\nban_ttl = 1h30\n", 2, "invalid duration" },
	{ "ban_ttl overflow", "[lists]\nban_ttl = 99999999999w\n", 2, "invalid duration" },
	{ "ban_ttl above a year", "[lists]\nban_ttl = 366d\n", 2, "longer than a year" },
	{ "ban_time above a year", "[detect]\nban_time = 53w\nban_max = 53w\n", 2, "longer than a year" },
	{ "ban_max above a year", "[detect]\nban_max = 60w\n", 2, "longer than a year" },
	{ "window above a year", "[detect]\nwindow = 8761h\n", 2, "longer than a year" },
	{ "deny_file empty", "[lists]\ndeny_file =\n", 2, "empty path" },
	/* [limits] */
	{ "max_bans 0", "[limits]\nmax_bans = 0\n", 2, "expected an integer from 1 to 16777216, got '0'" },
	{ "max_sources big", "[limits]\nmax_sources = 16777217\n", 2, "from 1 to 16777216" },
	{ "max_deny negative", "[limits]\nmax_deny = -5\n", 2, "got '-5'" },
	{ "max_allow exponent", "[limits]\nmax_allow = 1e6\n", 2, "got '1e6'" },
	/* [interface] */
	{ "iface duplicate", "[interface]\nnames = eth0, eth1 eth0\n", 2, "interface 'eth0' listed twice" },
	{ "iface too long", "[interface]\nnames = eth0,abcdefghijklmnop\n", 2, "invalid interface name 'abcdefghijklmnop'" },
	{ "iface too many", "[interface]\nnames = e0 e1 e2 e3 e4 e5 e6 e7 e8 e9 e10 e11 e12 e13 e14 e15 e16\n", 2,
	  "too many interfaces (max 16)" },
	{ "mode", "[interface]\nmode = xdp\n", 2, "expected auto|native|generic|tc" },
	/* [daemon] */
	{ "state_file relative", "[daemon]\nstate_file = var/state\n", 2, "'var/state' is not an absolute path" },
	{ "control_socket too long", "[daemon]\ncontrol_socket = /" A16 A16 A16 A16 A16 A16 A16 "\n", 2,
	  "path too long (max 107 characters)" },
	{ "control_group", "[daemon]\ncontrol_group = -wheel\n", 2, "invalid group name '-wheel'" },
	{ "control_group blank", "[daemon]\ncontrol_group = mail adm\n", 2, "invalid group name" },
	/* [detect] */
	{ "max_failures 0", "[detect]\nmax_failures = 0\n", 2, "from 1 to 1000000" },
	{ "max_users big", "[detect]\nmax_users = 1000001\n", 2, "from 0 to 1000000" },
	{ "window 0", "[detect]\nwindow = 0\n", 2, "duration must be greater than 0" },
	{ "ban_time unit", "[detect]\nban_time = 10 m\n", 2, "invalid duration '10 m'" },
	{ "v6_prefix 129", "[detect]\nv6_prefix = 129\n", 2, "from 1 to 128" },
	{ "v6_prefix 0", "[detect]\nv6_prefix = 0\n", 2, "from 1 to 128" },
	{ "detect subnet_prefix", "[detect]\nsubnet_prefix = 24\n", 2, "got '24' (key 'subnet_prefix' in [detect])" },
	{ "ban_factor below 1", "[detect]\nban_factor = 0.5\n", 2, "must be from 1 to 1000" },
	{ "ban_factor above 1000", "[detect]\nban_factor = 1000.5\n", 2, "must be from 1 to 1000" },
	{ "ban_factor inf", "[detect]\nban_factor = inf\n", 2, "expected a decimal number, got 'inf'" },
	{ "ban_factor exponent", "[detect]\nban_factor = 1e2\n", 2, "expected a decimal number" },
	{ "ban_factor trailing dot", "[detect]\nban_factor = 2.\n", 2, "expected a decimal number" },
	{ "ban_factor comma", "[detect]\nban_factor = 1,5\n", 2, "expected a decimal number" },
	{ "dry_run", "[detect]\ndry_run = maybe\n", 2, "expected yes|no" },
	{ "ban_max below ban_time", "[detect]\nban_time = 2h\nban_max = 1h\n", 3, "ban_max is shorter than ban_time (key 'ban_max'" },
	{ "ban_time above default max", "[detect]\n\nban_time = 8d\n", 3, "(key 'ban_time' in [detect])" },
	/* [authlog NAME] */
	{ "authlog no source", "[authlog a]\nformat = dovecot\n", 1, "missing 'path = FILE' or 'journal = UNIT' (in [authlog a])" },
	{ "authlog both", "[authlog a]\npath = /var/log/mail.log\njournal = dovecot\n", 3, "either path or journal, not both" },
	{ "authlog relative path", "[authlog a]\npath = mail.log\n", 2, "not an absolute path" },
	{ "authlog bad unit", "[authlog a]\njournal = dovecot service\n", 2, "invalid systemd unit name" },
	{ "authlog format", "[authlog a]\njournal = x\nformat = postfix\n", 3, "expected auto|dovecot|cyrus|courier|uwimap" },
	{ "authlog no name", "[authlog]\n", 1, "invalid authlog name ''" },
	{ "authlog name blank", "[authlog a b]\n", 1, "invalid authlog name 'a b'" },
	{ "authlog name 64", "[authlog " A16 A16 A16 A16 "]\n", 1, "invalid authlog name" },
	{ "authlog unknown key", "[authlog a]\njournal = x\nunit = y\n", 3, "unknown key 'unit' (in [authlog a])" },
	{ "access bad", "[port 993]\naction = pass\naccess = maybe\n", 3, "invalid value 'maybe' (expected open|grant)" },
	{ "mfa grant_prefix", "[mfa]\ngrant_prefix = 24, 64\n", 2, "grant_prefix must be '32, 64' or '32, 128'" },
	{ "mfa grant_ttl 0", "[mfa]\ngrant_ttl = 0\n", 2, "duration must be greater than 0" },
	{ "mfa knock_port", "[mfa]\nknock_port = 70000\n", 2, "knock_port" },
	{ "mfa portal_listen", "[mfa]\nportal_listen = 8443\n", 2, "invalid portal_listen '8443'" },
	{ "mfa cert without key", "[mfa]\nportal_listen = 127.0.0.1:8443\nportal_cert = /x.crt\n", 3, "portal_cert and portal_key go together" },
	{ "mfa cert without portal", "[mfa]\nportal_cert = /x.crt\nportal_key = /x.key\n", 2, "needs portal_listen" },
	{ "mfa secrets relative", "[mfa]\nsecrets = mfa.secrets\n", 2, "is not an absolute path" },
	{ "mfa trusted_proxies", "[mfa]\ntrusted_proxies = 10.0.0.1/8\n", 2, "10.0.0.1/8" },
	{ "mfa max_code_failures 0", "[mfa]\nmax_code_failures = 0\n", 2, "max_code_failures" },
	/* [authpolicy] */
	{ "authpolicy no listen", "[authpolicy]\napi_key_file = /k\n", 1, "missing 'listen = ADDR:PORT' (in [authpolicy])" },
	{ "authpolicy no key", "[authpolicy]\nlisten = 127.0.0.1:9688\n", 1, "missing 'api_key_file = FILE'" },
	{ "authpolicy bad listen", "[authpolicy]\nlisten = localhost:9688\n", 2, "invalid listen 'localhost:9688'" },
	{ "authpolicy listen no port", "[authpolicy]\nlisten = 127.0.0.1\n", 2, "invalid listen" },
	{ "authpolicy relative key", "[authpolicy]\napi_key_file = k\n", 2, "not an absolute path" },
	{ "authpolicy header colon", "[authpolicy]\napi_header = X-Key:\n", 2, "invalid api_header 'X-Key:'" },
	{ "authpolicy header blank", "[authpolicy]\napi_header = X Key\n", 2, "invalid api_header" },
	{ "authpolicy mode", "[authpolicy]\nmode = audit\n", 2, "expected enforce|log_only" },
	{ "authpolicy tarpit 500ms", "[authpolicy]\ntarpit_max = 500ms\n", 2, "tarpit_max must be 0 or from 1s to 5m" },
	{ "authpolicy tarpit 6m", "[authpolicy]\ntarpit_max = 6m\n", 2, "tarpit_max must be 0 or from 1s to 5m" },
	{ "authpolicy known_good 0", "[authpolicy]\nknown_good = 0\n", 2, "from 1 to 16" },
	{ "authpolicy known_good 17", "[authpolicy]\nknown_good = 17\n", 2, "from 1 to 16" },
	{ "authpolicy max_connections 0", "[authpolicy]\nmax_connections = 0\n", 2, "from 1 to 65536" },
	{ "authpolicy timeout 2h", "[authpolicy]\ntimeout = 2h\n", 2, "timeout must be from 1s to 1h" },
	{ "authpolicy unknown key", "[authpolicy]\nurl = x\n", 2, "unknown key 'url' (in [authpolicy])" },
	/* [crowdsec] */
	{ "crowdsec no lapi", "[crowdsec]\npush_alerts = yes\n", 1, "missing 'lapi = http://HOST:PORT' (in [crowdsec])" },
	{ "crowdsec file url", "[crowdsec]\nlapi = file:///etc/passwd\n", 2, "invalid lapi 'file:///etc/passwd'" },
	{ "crowdsec no host", "[crowdsec]\nlapi = http://\n", 2, "invalid lapi" },
	{ "crowdsec blank in url", "[crowdsec]\nlapi = http://a b\n", 2, "invalid lapi" },
	{ "crowdsec update 0", "[crowdsec]\nlapi = http://x\nupdate_frequency = 0\n", 3, "greater than 0" },
	{ "crowdsec update 500ms", "[crowdsec]\nlapi = http://x\nupdate_frequency = 500ms\n", 3, "between 1s and 1h" },
	{ "crowdsec update 2h", "[crowdsec]\nlapi = http://x\nupdate_frequency = 2h\n", 3, "between 1s and 1h" },
	{ "crowdsec scope", "[crowdsec]\nlapi = http://x\nscopes = ip, country\n", 3, "invalid value 'country' (expected ip|range)" },
	{ "crowdsec key relative", "[crowdsec]\nlapi = http://x\napi_key_file = key\n", 3, "not an absolute path" },
	{ "crowdsec origins 17", "[crowdsec]\nlapi = http://x\norigins = a b c d e f g h i j k l m n o p q\n", 3,
	  "too many values (max 16)" },
	{ "crowdsec scenario 64", "[crowdsec]\nlapi = http://x\nscenarios_containing = " A16 A16 A16 A16 "\n", 3,
	  "too long (max 63 characters)" },
	{ "crowdsec push_alerts", "[crowdsec]\nlapi = http://x\npush_alerts = maybe\n", 3, "expected yes|no" },
	{ "crowdsec ca_file http", "[crowdsec]\nlapi = http://x\nca_file = /etc/ssl/lapi.pem\n", 1,
	  "ca_file is for an https lapi (lapi = http://x)" },
	{ "crowdsec ca_file relative", "[crowdsec]\nlapi = https://x\nca_file = lapi.pem\n", 3,
	  "not an absolute path" },
	{ "crowdsec twice", "[crowdsec]\nlapi = http://x\n[crowdsec]\n", 3, "duplicate section [crowdsec] (first at line 1)" },
	/* [fleet] */
	{ "fleet no redis", "[fleet]\nprefix = x\n", 1, "missing 'redis = ADDR:PORT'" },
	{ "fleet host name", "[fleet]\nredis = redis.example:6379\n", 2, "invalid redis 'redis.example:6379'" },
	{ "fleet no port", "[fleet]\nredis = 127.0.0.1\n", 2, "invalid redis" },
	{ "fleet relative unix", "[fleet]\nredis = unix:redis.sock\n", 2, "not an absolute path" },
	{ "fleet prefix colon", "[fleet]\nredis = 127.0.0.1:6379\nprefix = a:b\n", 3, "invalid prefix 'a:b'" },
	{ "fleet node blank", "[fleet]\nredis = 127.0.0.1:6379\nnode = mail 1\n", 3, "invalid node" },
	{ "fleet share", "[fleet]\nredis = 127.0.0.1:6379\nshare = bans, verdicts\n", 3,
	  "share: expected 'bans' and/or 'failures', got 'verdicts'" },
	{ "fleet min prefix", "[fleet]\nredis = 127.0.0.1:6379\nfleet_min_prefix = 0, 32\n", 3,
	  "prefix lengths" },
	{ "fleet queue", "[fleet]\nredis = 127.0.0.1:6379\nqueue = 1\n", 3, "from 16 to 1000000" },
	{ "fleet unknown key", "[fleet]\nredis = 127.0.0.1:6379\ntls = yes\n", 3, "unknown key 'tls'" },
};

static void test_authpolicy(void)
{
	const char *text = "[authpolicy]\nlisten = [::1]:9688\napi_key_file = /etc/imapguard/ap.key\n"
			   "mode = log_only\ntarpit_max = 0\nknown_good = 3\napi_header = X-Policy-Key\n"
			   "max_connections = 10\nmax_per_ip = 0\ntimeout = 30s\n";
	const struct pol_authpolicy *a = &pol.authpolicy;

	ASSERT_OK(load_text(""), "empty");
	ASSERT_STREQ(a->listen, "", "off by default");
	ASSERT_STREQ(a->api_header, "X-IMAPGuard-Key", "default header");
	ASSERT_EQ(a->tarpit_max_ns, 15 * NS_PER_SEC, "default tarpit_max");
	ASSERT_EQ(a->timeout_ns, 15 * NS_PER_SEC, "default timeout");
	ASSERT_EQ(a->known_good, 8, "default known_good");
	policy_free(&pol);
	if (!ASSERT_OK(load_text(text), err))
		return;
	ASSERT_STREQ(a->listen, "[::1]:9688", "listen");
	ASSERT_STREQ(a->api_key_file, "/etc/imapguard/ap.key", "key file");
	ASSERT_STREQ(a->api_header, "X-Policy-Key", "header");
	ASSERT_EQ(a->mode, AP_MODE_LOG_ONLY, "mode");
	ASSERT_EQ(a->tarpit_max_ns, 0, "tarpit off");
	ASSERT_EQ(a->known_good, 3, "known_good");
	ASSERT_EQ(a->max_connections, 10, "max_connections");
	ASSERT_EQ(a->max_per_ip, 0, "max_per_ip");
	ASSERT_EQ(a->timeout_ns, 30 * NS_PER_SEC, "timeout");
	policy_free(&pol);
}

static void test_fleet(void)
{
	ASSERT_OK(load_text(""), "no fleet");
	ASSERT_EQ(pol.fleet.redis[0], 0, "off by default");
	ASSERT_STREQ(pol.fleet.prefix, "imapguard", "prefix default");
	ASSERT_EQ(pol.fleet.share_bans && pol.fleet.share_failures, 1, "share default");
	ASSERT_EQ(pol.fleet.min_plen4, 16, "min v4");
	ASSERT_EQ(pol.fleet.min_plen6, 32, "min v6");
	policy_free(&pol);
	ASSERT_OK(load_text("[fleet]\nredis = unix:/run/redis/redis.sock\npassword_file = /etc/p\n"
			    "prefix = mx\nnode = mail-1\nshare = bans\nfleet_min_prefix = 24, 48\n"
			    "queue = 100\nstream_max = 5000\n"), "full");
	ASSERT_STREQ(pol.fleet.redis, "unix:/run/redis/redis.sock", "redis");
	ASSERT_STREQ(pol.fleet.password_file, "/etc/p", "password_file");
	ASSERT_STREQ(pol.fleet.node, "mail-1", "node");
	ASSERT_EQ(pol.fleet.share_failures, 0, "share bans only");
	ASSERT_EQ(pol.fleet.min_plen4, 24, "min v4 set");
	ASSERT_EQ(pol.fleet.queue_max, 100, "queue");
	policy_free(&pol);
	ASSERT_OK(load_text("[fleet]\nredis = [::1]:6379\n"), "IPv6 address");
	policy_free(&pol);
}

static void test_error_table(void)
{
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *tc = &err_cases[i];
		char name[128];

		snprintf(name, sizeof(name), "error: %s", tc->name);
		RUN_CASE(name, expect_error(tc->text, tc->line, tc->msg));
	}
}

/* Repeat "fmt" (one %d) n times, then expect an error on line err_line. */
static void expect_repeat_error(const char *head, const char *fmt, int n, int err_line, const char *msg)
{
	char *text = malloc(64 * (n + 1)), *p = text;

	p += sprintf(p, "%s", head);
	for (int i = 1; i <= n; i++)
		p += sprintf(p, fmt, i);
	expect_error(text, err_line, msg);
	free(text);
}

static void test_max_ports(void)
{
	char *text = malloc(64 * IG_MAX_PORTS), *p = text;

	for (int i = 1; i <= IG_MAX_PORTS; i++)
		p += sprintf(p, "[port %d]\naction = drop\n", 65536 - i);
	ASSERT_OK(load_text(text), "16 ports");
	ASSERT_EQ(pol.nports, IG_MAX_PORTS, "nports");
	ASSERT_EQ(pol.ports[0].port, 65535, "port 65535");
	policy_free(&pol);
	free(text);
}

static void test_counts(void)
{
	RUN_CASE("error: too many ports",
		 expect_repeat_error("", "[port %d]\naction = pass\n", IG_MAX_PORTS + 1,
				     2 * IG_MAX_PORTS + 1, "too many [port] sections (max 16)"));
	RUN_CASE("error: too many authlogs",
		 expect_repeat_error("", "[authlog a%d]\njournal = x\n", POL_MAX_AUTHLOG + 1,
				     2 * POL_MAX_AUTHLOG + 1, "too many [authlog] sections"));
	RUN_CASE("max ports", test_max_ports());
}

/* inih's buffer is INI_MAX_LINE bytes with room for "\n" and NUL. */
static void test_line_length(void)
{
	char text[2 * INI_MAX_LINE];
	int max = INI_MAX_LINE - 2;

	snprintf(text, sizeof(text), "[lists]\n#%0*d\nban_ttl = 2h\n", max - 1, 0);
	ASSERT_OK(load_text(text), "longest line");
	ASSERT_EQ(pol.ban_ttl_ns, 7200 * NS, "key after long line");
	policy_free(&pol);
	snprintf(text, sizeof(text), "[lists]\n#%0*d\nban_ttl = 2h\n", max, 0);
	expect_error(text, 2, "line too long");
	snprintf(text, sizeof(text), "[lists]\nallow = 10.0.0.0/8\n#%0*d", 3 * INI_MAX_LINE / 2, 0);
	expect_error(text, 3, "line too long");
}

static void test_nul_byte(void)
{
	static const char text[] = "[lists]\nban_ttl = 1h\0x\n";
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", write_tmp("p.conf", text, sizeof(text) - 1));
	expect_error_in(path, policy_load(path, &pol, err, sizeof(err)), 2, "NUL byte");
}

static void test_missing_file(void)
{
	char want[PATH_MAX + 64];
	const char *path = tmp_path("nonexistent.conf");

	ASSERT_EQ(policy_load(path, &pol, err, sizeof(err)), -ENOENT, "ENOENT");
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	ASSERT_STREQ(err, want, "message");
	ASSERT_EQ(policy_load(tmpdir, &pol, err, sizeof(err)), -FILE_ENOTREG, "directory");
	ASSERT_EQ(pol.allow.v == NULL && pol.nports == 0, 1, "pol left empty");
	policy_free(&pol);
}

static void check_defaults(const struct policy *p)
{
	ASSERT_TRUE(!p->crowdsec.lapi[0] && p->crowdsec.update_ns == 10 * NS &&
		    !p->crowdsec.push_alerts &&
		    p->crowdsec.scopes == (POL_CS_SCOPE_IP | POL_CS_SCOPE_RANGE) &&
		    !strcmp(p->crowdsec.api_key_file, "/etc/imapguard/crowdsec.key"), "crowdsec off");
	ASSERT_EQ(p->nports, 0, "nports");
	ASSERT_EQ(p->allow.n + p->deny.n, 0, "lists empty");
	ASSERT_EQ(p->ban_scope, IG_SCOPE_PROTECTED, "ban_scope");
	ASSERT_EQ(p->ban_ttl_ns, 3600 * NS, "ban_ttl");
	ASSERT_EQ(p->max_bans, 1048576, "max_bans");
	ASSERT_EQ(p->max_sources, 262144, "max_sources");
	ASSERT_EQ(p->max_deny, 1048576, "max_deny");
	ASSERT_EQ(p->max_allow, 65536, "max_allow");
	ASSERT_EQ(p->max_flows, 65536, "max_flows");
	ASSERT_EQ(p->max_grants, 65536, "max_grants");
	ASSERT_EQ(p->nifaces + p->iface_mode + p->nauthlogs, 0, "no ifaces/authlogs, mode auto");
	ASSERT_STREQ(p->state_file, "/var/lib/imapguard/state", "state_file");
	ASSERT_STREQ(p->control_socket, "/run/imapguard/control.sock", "control_socket");
	ASSERT_STREQ(p->control_group, "", "control_group");
	ASSERT_EQ(p->detect.max_failures, 5, "max_failures");
	ASSERT_EQ(p->detect.window_ns, 600 * NS, "window");
	ASSERT_EQ(p->detect.ban_time_ns, 600 * NS, "ban_time");
	ASSERT_EQ(p->detect.max_users, 4, "max_users");
	ASSERT_EQ(p->detect.v6_plen, 64, "v6_plen");
	ASSERT_EQ(p->detect.max_sources, 8, "detect max_sources");
	ASSERT_EQ(p->detect.subnet_plen4 * 1000 + p->detect.subnet_plen6, 24048, "subnet plens");
	ASSERT_EQ(p->detect.account_max_sources, 10, "account_max_sources");
	ASSERT_TRUE(p->detect.ban_factor == 2.0, "ban_factor");
	ASSERT_EQ(p->detect.ban_max_ns, 7 * 86400 * NS, "ban_max");
	ASSERT_TRUE(p->detect.reset_on_success && !p->detect.dry_run, "bools");
}

static void test_defaults(void)
{
	static struct policy init;
	const char *text = "; nothing here\n\n[lists]\n";

	policy_init(&init);
	check_defaults(&init);
	ASSERT_OK(load_text(""), "empty file");
	check_defaults(&pol);
	ASSERT_EQ(pol.hash, hash_stable("", 0), "hash of nothing");
	ASSERT_OK(load_text(text), "comment and empty section");
	check_defaults(&pol);
	ASSERT_EQ(pol.hash, hash_stable(text, strlen(text)), "hash");
	ASSERT_STREQ(pol.file, tmp_path("p.conf"), "file");
	ASSERT_STREQ(err, "", "no error");
	policy_free(&pol);
	policy_free(&pol);	/* twice is harmless */
}

static void test_mfa(void)
{
	ASSERT_OK(load_text("[port 993]\naction = pass\naccess = grant\n[port 143]\naction = reject\n"
			    "[mfa]\nsecrets = /etc/ig/s\ngrant_ttl = 30m\ngrant_prefix = 32, 128\n"
			    "knock_port = 62201\nportal_listen = [::1]:8443\nportal_cert = /c\n"
			    "portal_key = /k\ntrusted_proxies = 127.0.0.1, ::1\nbind_user = yes\n"
			    "max_code_failures = 3\nwindow = 5m\nlock_time = 1h\nban_time = 2h\n"), "load");
	ASSERT_EQ(pol.ports[0].access, IG_ACCESS_GRANT, "993 grant");
	ASSERT_EQ(pol.ports[1].access, IG_ACCESS_OPEN, "143 open by default");
	ASSERT_TRUE(policy_has_grant_ports(&pol), "has grant ports");
	ASSERT_STREQ(pol.mfa.secrets, "/etc/ig/s", "secrets");
	ASSERT_EQ(pol.mfa.grant_ttl_ns, 1800 * NS_PER_SEC, "grant_ttl");
	ASSERT_EQ(pol.mfa.grant_plen6, 128, "grant_prefix");
	ASSERT_EQ(pol.mfa.knock_port, 62201, "knock_port");
	ASSERT_STREQ(pol.mfa.portal_listen, "[::1]:8443", "portal_listen");
	ASSERT_EQ(pol.mfa.trusted_proxies.n, 2, "trusted_proxies");
	ASSERT_TRUE(pol.mfa.bind_user, "bind_user");
	ASSERT_EQ(pol.mfa.max_code_failures, 3, "max_code_failures");
	ASSERT_EQ(pol.mfa.window_ns, 300 * NS_PER_SEC, "window");
	ASSERT_EQ(pol.mfa.lock_ns, 3600 * NS_PER_SEC, "lock_time");
	ASSERT_TRUE(pol.mfa.ban_set && pol.mfa.ban_ns == 7200 * NS_PER_SEC, "ban_time");
	policy_free(&pol);
	ASSERT_OK(load_text("[port 993]\naction = pass\n"), "defaults");
	ASSERT_TRUE(!policy_has_grant_ports(&pol), "no grant ports");
	ASSERT_STREQ(pol.mfa.secrets, "/etc/imapguard/mfa.secrets", "default secrets");
	ASSERT_EQ(pol.mfa.grant_ttl_ns, 12 * 3600 * NS_PER_SEC, "default grant_ttl");
	ASSERT_EQ(pol.mfa.grant_plen6, 64, "default grant_prefix");
	ASSERT_EQ(pol.mfa.knock_port, 0, "knock off by default");
	ASSERT_TRUE(!pol.mfa.bind_user && pol.mfa.max_code_failures == 5 && !pol.mfa.ban_set,
		    "default limits");
	policy_free(&pol);
}

static void test_port_defaults(void)
{
	ASSERT_OK(load_text("[port 143]\naction = reject\n[port 4190]\naction = redirect\nredirect_to = veth-x.1\n"), "load");
	ASSERT_EQ(pol.nports, 2, "nports");
	ASSERT_EQ(pol.ports[0].port, 143, "port");
	ASSERT_EQ(pol.ports[0].action, IG_ACT_REJECT, "action");
	ASSERT_EQ(pol.ports[0].syn_interval_ns + pol.ports[0].subnet_interval_ns, 0, "no throttle");
	ASSERT_EQ(pol.ports[0].syn_burst + pol.ports[0].subnet_burst, 0, "no burst");
	ASSERT_EQ(pol.ports[0].src_plen4, 32, "src_plen4");
	ASSERT_EQ(pol.ports[0].src_plen6, 64, "src_plen6");
	ASSERT_EQ(pol.ports[0].sub_plen4, 24, "sub_plen4");
	ASSERT_EQ(pol.ports[0].sub_plen6, 48, "sub_plen6");
	ASSERT_EQ(pol.ports[1].action, IG_ACT_REDIRECT, "redirect");
	ASSERT_STREQ(pol.ports[1].redirect_to, "veth-x.1", "redirect_to");
	policy_free(&pol);
}

static void test_starttls(void)
{
	ASSERT_OK(load_text("[port 143]\naction = starttls\n[port 144]\naction = starttls\n"
			    "starttls_mode = log\n[port 145]\naction = starttls\n"
			    "starttls_mode = enforce\nsyn_rate = 10/s\n[limits]\nmax_flows = 4096\n"),
		  "load");
	ASSERT_EQ(pol.ports[0].action, IG_ACT_STARTTLS, "action");
	ASSERT_EQ(pol.ports[0].starttls_mode, IG_ST_ENFORCE, "default mode: enforce");
	ASSERT_EQ(pol.ports[1].starttls_mode, IG_ST_LOG, "log");
	ASSERT_EQ(pol.ports[2].starttls_mode, IG_ST_ENFORCE, "enforce");
	ASSERT_EQ(pol.ports[2].syn_interval_ns, 100000000, "syn_rate with starttls");
	ASSERT_EQ(pol.max_flows, 4096, "max_flows");
	ASSERT_STREQ(action_name(IG_ACT_STARTTLS), "starttls", "name");
	policy_free(&pol);
}

static void test_rates(void)
{
	static const struct { const char *rate; uint64_t interval; uint32_t burst; } cases[] = {
		{ "20/s", 50000000ULL, 40 },
		{ "1/s", NS, 2 },
		{ "3/s", 333333333ULL, 6 },
		{ "30/m", 2 * NS, 1 },
		{ "100/m", 600000000ULL, 4 },
		{ "1/h", 3600 * NS, 1 },
		{ "7200/h", NS / 2, 4 },
		{ "1000000000/s", 1, 1000000 },
	};
	char text[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[port 1]\naction = pass\nsyn_rate = %s\nsubnet_rate = %s ; c\n",
			 cases[i].rate, cases[i].rate);
		if (!ASSERT_OK(load_text(text), cases[i].rate))
			continue;
		ASSERT_EQ(pol.ports[0].syn_interval_ns, cases[i].interval, cases[i].rate);
		ASSERT_EQ(pol.ports[0].syn_burst, cases[i].burst, cases[i].rate);
		ASSERT_EQ(pol.ports[0].subnet_interval_ns, cases[i].interval, cases[i].rate);
		ASSERT_EQ(pol.ports[0].subnet_burst, cases[i].burst, cases[i].rate);
		policy_free(&pol);
	}
	/* An explicit burst wins whatever the key order. */
	ASSERT_OK(load_text("[port 1]\nsyn_burst = 7\naction = pass\nsyn_rate = 20/s\n"
			    "subnet_rate = 20/s\nsubnet_burst = 9\n"), "burst first");
	ASSERT_EQ(pol.ports[0].syn_burst, 7, "syn_burst kept");
	ASSERT_EQ(pol.ports[0].subnet_burst, 9, "subnet_burst");
	policy_free(&pol);
}

static void test_durations(void)
{
	static const struct { const char *s; uint64_t ns; } good[] = {
		{ "0", 0 }, { "90", 90 * NS }, { "500ms", NS / 2 }, { "30s", 30 * NS },
		{ "10m", 600 * NS }, { "2h", 7200 * NS }, { "7d", 7 * 86400 * NS },
		{ "1w", 7 * 86400 * NS }, { "1h30m", 5400 * NS }, { "1m1s500ms", 61 * NS + NS / 2 },
		{ "007s", 7 * NS }, { "18446744073s", 18446744073 * NS },
	};
	static const char *const bad[] = {
		"", "-1", "-5m", "+5m", "1.5h", "10x", "h", "1h30", "30 s", " 30s", "30s ",
		"1H", "1y", "18446744074s", "99999999999999999999", "30w30w99999999999w", "1e3",
	};
	uint64_t ns;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ns = 1;
		ASSERT_OK(parse_duration_ns(good[i].s, &ns), good[i].s);
		ASSERT_EQ(ns, good[i].ns, good[i].s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ(parse_duration_ns(bad[i], &ns), -EINVAL, bad[i]);
}

static void test_names(void)
{
	uint8_t a = 0;

	ASSERT_OK(parse_action("redirect", &a), "parse redirect");
	ASSERT_EQ(a, IG_ACT_REDIRECT, "redirect");
	ASSERT_EQ(parse_action("none", &a), -EINVAL, "none");
	ASSERT_EQ(parse_action("PASS", &a), -EINVAL, "case");
	for (a = IG_ACT_PASS; a <= IG_ACT_STARTTLS; a++) {
		uint8_t b = 0;

		ASSERT_OK(parse_action(action_name(a), &b), action_name(a));
		ASSERT_EQ(b, a, "round trip");
	}
	ASSERT_STREQ(mode_name(0), "auto", "auto");
	ASSERT_STREQ(mode_name(IG_MODE_NATIVE), "native", "native");
	ASSERT_STREQ(mode_name(IG_MODE_GENERIC), "generic", "generic");
	ASSERT_STREQ(mode_name(IG_MODE_TC), "tc", "tc");
	ASSERT_STREQ(mode_name(99), "?", "unknown mode");
	ASSERT_STREQ(action_name(99), "?", "unknown action");
}

static void expect_list(const struct pol_list *l, const char *const *want, size_t n)
{
	char buf[ADDR_STRLEN];

	if (!ASSERT_EQ(l->n, n, "list length"))
		return;
	for (size_t i = 0; i < n; i++)
		ASSERT_STREQ(addr_format(&l->v[i], buf), want[i], "entry");
}

static void test_lists(void)
{
	/* Deduplicated and sorted by address bytes: IPv4-mapped (::ffff:...) first. */
	static const char *const allow[] = {
		"192.0.2.0/24", "198.51.100.7", "2001:db8::/32", "2001:db8::1",
	};
	static const char *const deny[] = { "::/0", "0.0.0.0/0", "203.0.113.0/24" };
	static const char *const port_allow[] = { "10.0.0.0/8", "fd00::/8" };

	ASSERT_OK(load_text("[lists]\n"
			    "allow = 192.0.2.0/24, 2001:db8::/32\n"
			    "allow=198.51.100.7 [2001:db8::1],,192.0.2.0/24\n"
			    "allow = ::ffff:192.0.2.0/120 ; same as the first, dropped\n"
			    "allow =\n"
			    "deny = 203.0.113.0/24\t::/0 0.0.0.0/0\n"
			    "[port 993]\naction = pass\nallow = 10.0.0.0/8, fd00::/8, 10.0.0.0/8\n"), "load");
	expect_list(&pol.allow, allow, 4);
	expect_list(&pol.deny, deny, 3);
	expect_list(&pol.ports[0].allow, port_allow, 2);
	policy_free(&pol);
}

/* Indentation, CRLF, BOM, "key: value", comments: all accepted. */
static void test_syntax(void)
{
	ASSERT_OK(load_text("\xef\xbb\xbf[port 143]\r\n"
			    "  action = pass   ; trailing comment\r\n"
			    "\tallow = 10.0.0.0/8\r\n"
			    "    allow: 192.168.0.0/16\r\n"
			    "# comment\r\n; comment\r\n  # indented comment\r\n"
			    "[ lists ]  ; comment\r\n"
			    "[authlog   x.y-z@1 ]\njournal = dovecot@main.service\n"), "load");
	ASSERT_EQ(pol.ports[0].action, IG_ACT_PASS, "action");
	ASSERT_EQ(pol.ports[0].allow.n, 2, "indented allow lines are keys, not continuations");
	ASSERT_STREQ(pol.authlogs[0].name, "x.y-z@1", "authlog name");
	ASSERT_STREQ(pol.authlogs[0].journal, "dovecot@main.service", "journal");
	policy_free(&pol);
	ASSERT_OK(load_text("[authlog " A16 A16 A16 "aaaaaaaaaaaaaaa]\npath = /var/log/mail.log\n"), "63-char name");
	ASSERT_EQ(strlen(pol.authlogs[0].name), 63, "name kept whole");
	policy_free(&pol);
}

static void test_shipped(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/policies/%s", root, name);
	if (!ASSERT_OK(policy_load(path, &pol, err, sizeof(err)), path))
		fprintf(stderr, "  %s\n", err);
}

static void test_default_conf(void)
{
	test_shipped("default.conf");
	ASSERT_EQ(pol.nports, 2, "two ports");
	ASSERT_EQ(pol.ports[0].port * 10 + pol.ports[0].action, 1430 + IG_ACT_REJECT, "143 reject");
	ASSERT_EQ(pol.ports[0].allow.n, 0, "143 allow empty");
	ASSERT_EQ(pol.ports[1].port * 10 + pol.ports[1].action, 9930 + IG_ACT_PASS, "993 pass");
	ASSERT_EQ(pol.ports[1].syn_interval_ns, 50000000, "20/s");
	ASSERT_EQ(pol.ports[1].syn_burst, 40, "syn_burst");
	ASSERT_EQ(pol.ports[1].subnet_interval_ns, 5000000, "200/s");
	ASSERT_EQ(pol.ports[1].subnet_burst, 400, "subnet_burst");
	ASSERT_EQ(pol.detect.ban_max_ns, 7 * 86400 * NS, "ban_max");
	ASSERT_EQ(pol.nauthlogs, 0, "authlog commented out");
	policy_free(&pol);
}

static void test_example_conf(void)
{
	test_shipped("example-full.conf");
	ASSERT_EQ(pol.nifaces, 2, "ifaces");
	ASSERT_STREQ(pol.ifaces[1], "eth1", "eth1");
	ASSERT_EQ(pol.iface_mode, IG_MODE_NATIVE, "mode");
	ASSERT_EQ(pol.nports, 5, "ports");
	ASSERT_EQ(pol.ports[4].action, IG_ACT_STARTTLS, "starttls");
	ASSERT_EQ(pol.ports[4].starttls_mode, IG_ST_LOG, "starttls_mode");
	ASSERT_EQ(pol.max_flows, 16384, "max_flows");
	ASSERT_STREQ(pol.ports[0].redirect_to, "eth2", "redirect_to");
	ASSERT_EQ(pol.ports[1].allow.n, 3, "993 allow");
	ASSERT_EQ(pol.ports[1].syn_interval_ns, 100000000, "600/m");
	ASSERT_EQ(pol.ports[1].src_plen6, 56, "src_plen6");
	ASSERT_EQ(pol.ports[1].sub_plen4, 22, "sub_plen4");
	ASSERT_EQ(pol.allow.n * 10 + pol.deny.n, 22, "lists");
	ASSERT_EQ(pol.ban_scope, IG_SCOPE_ALL, "ban_scope");
	ASSERT_EQ(pol.ban_ttl_ns, 86400 * NS, "ban_ttl");
	ASSERT_EQ(pol.max_allow, 4096, "max_allow");
	ASSERT_STREQ(pol.control_group, "mailadm", "control_group");
	ASSERT_EQ(pol.detect.window_ns, 900 * NS, "window");
	ASSERT_TRUE(pol.detect.ban_factor == 1.5, "ban_factor");
	ASSERT_TRUE(pol.detect.dry_run && !pol.detect.reset_on_success, "bools");
	ASSERT_EQ(pol.nauthlogs, 2, "authlogs");
	ASSERT_EQ(pol.authlogs[0].format, AUTHLOG_DOVECOT, "format");
	ASSERT_STREQ(pol.authlogs[1].path, "/var/log/mail.log", "path");
	ASSERT_STREQ(pol.authpolicy.listen, "127.0.0.1:9688", "authpolicy listen");
	ASSERT_EQ(pol.authpolicy.mode, AP_MODE_LOG_ONLY, "authpolicy mode");
	ASSERT_EQ(pol.authpolicy.known_good, 4, "known_good");
	ASSERT_STREQ(pol.crowdsec.lapi, "http://127.0.0.1:8080", "crowdsec lapi");
	ASSERT_EQ(pol.crowdsec.update_ns, 10 * NS, "crowdsec update_frequency");
	ASSERT_EQ(pol.crowdsec.scopes, POL_CS_SCOPE_IP | POL_CS_SCOPE_RANGE, "crowdsec scopes");
	ASSERT_EQ(pol.crowdsec.norigins * 10 + pol.crowdsec.nscenarios, 33, "crowdsec filters");
	ASSERT_STREQ(pol.crowdsec.origins[2], "CAPI", "crowdsec origin");
	ASSERT_TRUE(!pol.crowdsec.push_alerts, "crowdsec push_alerts");
	policy_free(&pol);
}

static void test_deny_file(void)
{
	const char *deny = "10.0.0.0/8\n# comment\n\n  192.0.2.0/24   # office\n2001:db8::/32\n10.0.0.0/8";
	char path[2 * PATH_MAX];

	write_str("deny.txt", deny);
	ASSERT_OK(load_text("[lists]\ndeny = 203.0.113.0/24\ndeny_file = deny.txt\n"), "relative deny_file");
	ASSERT_EQ(pol.deny.n, 4, "entries, duplicate dropped");
	policy_free(&pol);
	snprintf(path, sizeof(path), "[lists]\ndeny_file = %s\n", tmp_path("deny.txt"));
	ASSERT_OK(load_text(path), "absolute deny_file");
	policy_free(&pol);

	snprintf(path, sizeof(path), "%s", write_str("deny.txt", "10.0.0.0/8\n# c\n\n198.18.0.1/24\n"));
	expect_error_in(path, load_text("[lists]\ndeny_file = deny.txt\n"), 4, "host bits set");
	write_str("deny.txt", "10.0.0.0/8 10.1.0.0/16\n");
	expect_error_in(path, load_text("[lists]\ndeny_file = deny.txt\n"), 1, "one address or prefix per line");
	write_str("deny.txt", "\n\n2001:db8::/129");
	expect_error_in(path, load_text("[lists]\ndeny_file = deny.txt\n"), 3, "invalid address or prefix");

	ASSERT_EQ(load_text("[lists]\n\ndeny_file = missing.txt\n"), -ENOENT, "missing deny_file");
	snprintf(path, sizeof(path), "%s/p.conf:3: cannot read '%s/missing.txt': No such file or directory",
		 tmpdir, tmpdir);
	ASSERT_TRUE(!strncmp(err, path, strlen(path)), "missing deny_file message");
	policy_free(&pol);
}

static void test_big_deny_file(void)
{
	const int n = 100000;
	size_t len = 0;
	char *text = malloc((size_t)n * 32);

	for (int i = 0; i < n; i++) {
		if (i % 1000 == 0)
			len += sprintf(text + len, "# block %d\n", i / 1000);
		if (i % 2)
			len += sprintf(text + len, "10.%d.%d.%d\n", i >> 16, (i >> 8) & 255, i & 255);
		else
			len += sprintf(text + len, "2001:db8:%x:%x::/64\n", i >> 16, i & 0xffff);
	}
	len += sprintf(text + len, "10.0.0.1\n");	/* a duplicate */
	write_tmp("big.txt", text, len);
	free(text);
	ASSERT_OK(load_text("[lists]\ndeny_file = big.txt\n"), "100k lines");
	ASSERT_EQ(pol.deny.n, n, "entries");
	policy_free(&pol);
}

/* A deny_file may be a symlink to a file the reader of an error must not see:
 * errors name the file and line, never the line's text. */
static void test_deny_file_no_echo(void)
{
	static const char secret[] = "root:$6$s3cr3tHash:19000:0:99999:7:::";
	char text[256], target[PATH_MAX];

	snprintf(target, sizeof(target), "%s", write_str("secret", secret));
	unlink(tmp_path("feed.txt"));
	if (!ASSERT_OK(symlink(target, tmp_path("feed.txt")), "symlink"))
		return;
	ASSERT_EQ(load_text("[lists]\ndeny_file = feed.txt\n"), -EINVAL, "refused");
	ASSERT_TRUE(strstr(err, "feed.txt:1:") != NULL, "names file and line");
	ASSERT_TRUE(!strstr(err, "s3cr3t") && !strstr(err, "root"), "content not echoed");
	snprintf(text, sizeof(text), "10.0.0.0/8\n%s\n", "2001:db8::1 s3cr3t");
	write_str("secret", text);
	ASSERT_EQ(load_text("[lists]\ndeny_file = feed.txt\n"), -EINVAL, "two words");
	ASSERT_TRUE(strstr(err, "feed.txt:2:") && !strstr(err, "s3cr3t"), "line 2, no content");
	policy_free(&pol);
}

/* policy_load(path) in a child with a deadline: a regression must fail
 * (-ETIMEDOUT), not hang. The child's error message goes to why. */
static int load_path_with_deadline(const char *path, int seconds, char *why, size_t whylen)
{
	int fds[2], status = 0;
	pid_t pid;
	ssize_t n;

	if (pipe(fds))
		return -errno;
	pid = fork();
	if (pid == 0) {
		int ret;

		close(fds[0]);
		alarm(seconds);
		ret = policy_load(path, &pol, err, sizeof(err));
		if (write(fds[1], err, strlen(err) + 1) < 0)
			_exit(2);
		_exit(-ret & 0xff);
	}
	close(fds[1]);
	n = read(fds[0], why, whylen - 1);
	why[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status))
		return -ETIMEDOUT;
	return -WEXITSTATUS(status);
}

static int load_with_deadline(const char *text, int seconds, char *why, size_t whylen)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", write_str("p.conf", text));
	return load_path_with_deadline(path, seconds, why, whylen);
}

/* FIFOs and devices never block or exhaust the parser, as the policy or
 * as a deny_file; over-large files are refused before they are read. */
static void test_special_files(void)
{
	char text[PATH_MAX + 64], why[POL_ERR_LEN];
	int ret;

	unlink(tmp_path("fifo"));
	if (!ASSERT_OK(mkfifo(tmp_path("fifo"), 0600), "mkfifo"))
		return;
	ret = load_with_deadline("[lists]\ndeny_file = fifo\n", 5, why, sizeof(why));
	ASSERT_EQ(ret, -FILE_ENOTREG, "FIFO deny_file refused at once");
	ASSERT_TRUE(strstr(why, "not a regular file") != NULL, "FIFO message");
	ASSERT_EQ(load_with_deadline("[lists]\ndeny_file = /dev/zero\n", 5, why, sizeof(why)),
		  -FILE_ENOTREG, "/dev/zero deny_file");
	/* The policy itself: a FIFO, and /dev/zero (read until ENOMEM before). */
	snprintf(text, sizeof(text), "%s", tmp_path("fifo"));
	ASSERT_EQ(load_path_with_deadline(text, 5, why, sizeof(why)), -FILE_ENOTREG, "FIFO policy");
	ASSERT_EQ(load_path_with_deadline("/dev/zero", 5, why, sizeof(why)), -FILE_ENOTREG,
		  "/dev/zero policy");
	ASSERT_STREQ(why, "/dev/zero: not a regular file", "message");
	/* One byte over the cap: refused whole (a sparse file costs no disk). */
	if (ASSERT_OK(truncate(write_str("huge.txt", ""), POL_MAX_DENY_FILE + 1ULL), "truncate")) {
		ASSERT_EQ(load_text("[lists]\ndeny_file = huge.txt\n"), -EFBIG, "oversize deny_file");
		ASSERT_TRUE(strstr(err, "huge.txt") && strstr(err, "size limit"), "oversize message");
	}
	if (ASSERT_OK(truncate(write_str("huge.conf", ""), POL_MAX_FILE + 1ULL), "truncate")) {
		ASSERT_EQ(policy_load(tmp_path("huge.conf"), &pol, err, sizeof(err)), -EFBIG,
			  "oversize policy");
	}
	unlink(tmp_path("huge.txt"));
	unlink(tmp_path("huge.conf"));
	policy_free(&pol);
}

static void test_addr_roundtrip(void)
{
	static const struct { const char *in, *out; bool v4; } cases[] = {
		{ "198.51.100.7", "198.51.100.7", true },
		{ "198.51.100.0/24", "198.51.100.0/24", true },
		{ "1.2.3.4/32", "1.2.3.4", true },
		{ "0.0.0.0/0", "0.0.0.0/0", true },
		{ "::ffff:1.2.3.4", "1.2.3.4", true },
		{ "::ffff:198.51.100.0/120", "198.51.100.0/24", true },
		{ "[::ffff:1.2.3.4]", "1.2.3.4", true },
		{ "2001:db8::1", "2001:db8::1", false },
		{ "2001:DB8::A", "2001:db8::a", false },
		{ "2001:db8::/32", "2001:db8::/32", false },
		{ "[2001:db8::1]", "2001:db8::1", false },
		{ "[2001:db8::]/48", "2001:db8::/48", false },
		{ "::/0", "::/0", false },
		{ "::1", "::1", false },
	};
	struct ig_prefix p, q;
	char buf[ADDR_STRLEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!ASSERT_OK(addr_parse(cases[i].in, &p, false), cases[i].in))
			continue;
		ASSERT_EQ(addr_is_v4(p.addr), cases[i].v4, cases[i].in);
		ASSERT_STREQ(addr_format(&p, buf), cases[i].out, cases[i].in);
		ASSERT_OK(addr_parse(buf, &q, false), buf);
		ASSERT_TRUE(!memcmp(&p, &q, sizeof(p)), "round trip");
	}
	ASSERT_EQ(addr_parse("1.2.3.4/24", &p, false), -EINVAL, "host bits refused");
	ASSERT_OK(addr_parse("10.1.2.3/8", &p, true), "host bits allowed");
	ASSERT_STREQ(addr_format(&p, buf), "10.0.0.0/8", "host bits cleared");
	ASSERT_EQ(p.plen, IG_V4_PLEN_OFF + 8, "v4 plen stored +96");
}

static void test_addr_bad(void)
{
	static const char *const bad[] = {
		"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4",
		"1.2.3.4/33", "1.2.3.4/", "1.2.3.4/-1", "1.2.3.4/+8", "1.2.3.4/ 8", "1.2.3.4/8/8",
		"1.2.3.4/x", "10.0.0.0/99999999999999999999", "::/129", "2001:db8::/32x",
		"fe80::1%eth0", "::ffff:1.2.3.4/64", "[1.2.3.4", "1.2.3.4]", "[]", "/8",
		"2001:db8::1/64", "10.0.0.1/8", "host.example",
	};
	struct ig_prefix p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ(addr_parse(bad[i], &p, false), -EINVAL, bad[i]);
}

static void test_addr_misc(void)
{
	struct ig_prefix a, b;
	uint8_t h[16];
	char buf[ADDR_STRLEN];

	ASSERT_OK(addr_parse_host("192.0.2.9 port 993", 9, h), "host with length");
	ASSERT_STREQ(addr_format_host(h, buf), "192.0.2.9", "host");
	ASSERT_OK(addr_parse_host("[2001:db8::9]:993", 13, h), "bracketed host");
	ASSERT_STREQ(addr_format_host(h, buf), "2001:db8::9", "v6 host");
	ASSERT_EQ(addr_parse_host("", 0, h), -EINVAL, "empty host");
	addr_parse("10.0.0.0/8", &a, false);
	addr_parse("10.1.0.0/16", &b, false);
	ASSERT_TRUE(addr_contains(&a, &b) && !addr_contains(&b, &a), "10/8 contains 10.1/16");
	addr_parse("11.0.0.0/16", &b, false);
	ASSERT_TRUE(!addr_contains(&a, &b), "10/8 lacks 11/16");
	addr_parse("2001:db8::/32", &a, false);
	addr_parse("2001:db8:ffff::1", &b, false);
	ASSERT_TRUE(addr_contains(&a, &b), "v6 contains");
	memset(h, 0xff, 16);
	addr_mask(h, 13);
	ASSERT_EQ(h[0] * 1000 + h[1] * 10 + h[2], 255 * 1000 + 248 * 10, "mask 13");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		root = argv[1];
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN_CASE("default.conf", test_default_conf());
	RUN_CASE("example-full.conf", test_example_conf());
	RUN_CASE("defaults", test_defaults());
	RUN_CASE("mfa and access", test_mfa());
	RUN_CASE("[authpolicy] values and defaults", test_authpolicy());
	RUN_CASE("[fleet]", test_fleet());
	RUN_CASE("port defaults", test_port_defaults());
	RUN_CASE("rates", test_rates());
	RUN_CASE("action starttls", test_starttls());
	RUN_CASE("durations", test_durations());
	RUN_CASE("action and mode names", test_names());
	RUN_CASE("cidr lists", test_lists());
	RUN_CASE("syntax", test_syntax());
	test_error_table();
	test_counts();
	RUN_CASE("line length", test_line_length());
	RUN_CASE("NUL byte", test_nul_byte());
	RUN_CASE("missing file", test_missing_file());
	RUN_CASE("deny_file", test_deny_file());
	RUN_CASE("deny_file 100k lines", test_big_deny_file());
	RUN_CASE("deny_file content never echoed", test_deny_file_no_echo());
	RUN_CASE("FIFO, device and oversize files", test_special_files());
	RUN_CASE("addr round trip", test_addr_roundtrip());
	RUN_CASE("addr bad input", test_addr_bad());
	RUN_CASE("addr misc", test_addr_misc());
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return test_cases_failed != 0;
}
