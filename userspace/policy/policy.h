/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Policy files: INI (libinih), fully validated into struct policy before
 * anything is applied. Plain C, no BPF dependency, so it is unit-tested
 * without root.
 */
#ifndef IMAPGUARD_POLICY_H
#define IMAPGUARD_POLICY_H
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common.h"
#include "base/addr.h"
#include "base/value.h"

#define POL_MAX_IFACES	16
#define POL_MAX_AUTHLOG	8
#define POL_ERR_LEN	512
/* Size caps (bytes): a policy is small; a deny_file of 64 MiB holds about
 * 3.5 million IPv4 lines. Larger files are refused, never read in part. */
#define POL_MAX_FILE		(16u << 20)
#define POL_MAX_DENY_FILE	(64u << 20)
/* The longest ban_time, ban_max, ban_ttl and window: 365 days. */
#define POL_DURATION_MAX_NS	(365ULL * 86400 * NS_PER_SEC)

struct pol_list {
	struct ig_prefix *v;
	size_t n, cap;
};

struct pol_port {
	uint16_t port;
	uint8_t action;			/* enum ig_action, never IG_ACT_NONE */
	char redirect_to[IG_IFNAME_LEN];	/* action = redirect */
	uint8_t starttls_mode;		/* enum ig_starttls_mode, action = starttls */
	struct pol_list allow;		/* sources exempt on this port only */
	/* SYN throttle; interval 0 = off. */
	uint64_t syn_interval_ns;	/* syn_rate = N/s|m|h -> 1e9/N ns */
	uint32_t syn_burst;		/* default: 2 x rate per second, >= 1 */
	uint8_t src_plen4, src_plen6;	/* source_prefix = 32, 64 */
	uint64_t subnet_interval_ns;
	uint32_t subnet_burst;
	uint8_t sub_plen4, sub_plen6;	/* subnet_prefix = 24, 48 */
	uint8_t access;			/* enum ig_access: access = open|grant */
};

/* [mfa]: TOTP grants for access = grant ports (README "Requiring MFA for IMAP"). */
struct pol_mfa {
	char secrets[PATH_MAX];		/* user -> TOTP secret, knock key; default /etc/imapguard/mfa.secrets */
	uint64_t grant_ttl_ns;		/* default 12h */
	uint8_t grant_plen6;		/* grant_prefix = 32, 64: IPv6 /64 (default) or /128 */
	uint16_t knock_port;		/* UDP knock; 0 = off (default) */
	char portal_listen[64];		/* HTTPS unlock page; "" = off */
	char portal_cert[PATH_MAX];	/* PEM; without cert and key the portal is plain HTTP */
	char portal_key[PATH_MAX];
	struct pol_list trusted_proxies;	/* X-Forwarded-For honoured only from these */
	bool bind_user;			/* default no */
	uint32_t max_code_failures;	/* per user and per source within window; default 5 */
	uint64_t window_ns;		/* default 10m */
	uint64_t lock_ns;		/* user's codes locked this long after; default 15m */
	uint64_t ban_ns;		/* source banned this long; default [detect] ban_time */
	bool ban_set;			/* ban_time given in [mfa] */
};

enum authlog_format {
	AUTHLOG_AUTO = 0,
	AUTHLOG_DOVECOT,
	AUTHLOG_CYRUS,
	AUTHLOG_COURIER,
	AUTHLOG_UWIMAP,
};

struct pol_authlog {
	char name[64];
	char path[PATH_MAX];		/* path = FILE, or ... */
	char journal[256];		/* journal = UNIT */
	int format;			/* enum authlog_format */
};

/* [detect]: the auth-log detector's thresholds (fail2ban-like names). */
struct pol_detect {
	uint32_t max_failures;		/* default 5 */
	uint64_t window_ns;		/* default 10m */
	uint64_t ban_time_ns;		/* default 10m */
	uint32_t max_users;		/* distinct users failing; default 4, 0 = off */
	uint8_t v6_plen;		/* count/ban IPv6 per /N too; default 64 */
	uint32_t max_sources;		/* banned addrs per subnet -> ban subnet; default 8, 0 = off */
	uint8_t subnet_plen4, subnet_plen6;	/* default 24, 48 */
	uint32_t account_max_sources;	/* distinct sources failing one user -> event; default 10 */
	double ban_factor;		/* default 2.0, >= 1 */
	uint64_t ban_max_ns;		/* default 7d */
	bool reset_on_success;		/* default yes */
	bool dry_run;			/* default no */
};

/* [authpolicy]: Dovecot's auth policy server (daemon/authpolicy.c). Off
 * while listen is "". */
enum { AP_MODE_ENFORCE = 0, AP_MODE_LOG_ONLY };
#define POL_AP_HEADER_LEN	64
#define POL_KNOWN_GOOD_MAX	16
struct pol_authpolicy {
	char listen[64];		/* ADDR:PORT for auth_policy_server_url */
	char api_key_file[PATH_MAX];	/* the key Dovecot must send; required */
	char api_header[POL_AP_HEADER_LEN];	/* header name, default X-IMAPGuard-Key */
	int mode;			/* AP_MODE_* */
	uint64_t tarpit_max_ns;		/* default 15s, 0 = never tarpit */
	uint32_t known_good;		/* sources remembered per account, default 8, <= 16 */
	uint32_t max_connections;	/* default 256 */
	uint32_t max_per_ip;		/* default 128, 0 = no cap */
	/* A whole request within, and idle keep-alive close after; default
	 * 15s: longer than Dovecot's 10 s idle time, so Dovecot closes an
	 * idle connection first and never sends a report into our close. */
	uint64_t timeout_ns;
};

/* [crowdsec]: decisions from a CrowdSec local API (LAPI), alerts to it. */
#define POL_CS_MAX_FILTERS	16
#define POL_CS_FILTER_LEN	64
#define POL_CS_SCOPE_IP		1
#define POL_CS_SCOPE_RANGE	2
struct pol_crowdsec {
	char lapi[256];			/* http[s]://HOST[:PORT][/PATH]; "" = off */
	char api_key_file[PATH_MAX];	/* default /etc/imapguard/crowdsec.key */
	uint64_t update_ns;		/* update_frequency, default 10s, 1s..1h */
	uint32_t scopes;		/* POL_CS_SCOPE_* bits, default both */
	char origins[POL_CS_MAX_FILTERS][POL_CS_FILTER_LEN];	/* none: every origin */
	int norigins;
	char scenarios[POL_CS_MAX_FILTERS][POL_CS_FILTER_LEN];	/* substrings; none: all */
	int nscenarios;
	bool push_alerts;		/* default no */
	char machine_credentials[PATH_MAX];	/* default /etc/crowdsec/local_api_credentials.yaml */
	char ca_file[PATH_MAX];		/* CA certificates for an https lapi; "" = the system's */
};

/* [fleet]: failures counted and bans shared through Redis (daemon/fleet.h). */
#define POL_FLEET_NAME_LEN	64
struct pol_fleet {
	char redis[PATH_MAX];		/* "ADDR:PORT" or "unix:/PATH"; "" = no fleet */
	char password_file[PATH_MAX];	/* Redis AUTH; "" = none */
	char prefix[POL_FLEET_NAME_LEN];	/* key namespace; default "imapguard" */
	char node[POL_FLEET_NAME_LEN];	/* this node's name; "" = the host name */
	bool share_bans, share_failures;	/* share = bans, failures (default both) */
	uint8_t min_plen4, min_plen6;	/* fleet_min_prefix = 16, 32: shorter is refused */
	uint32_t queue_max;		/* updates held while Redis is away; default 10000 */
	uint32_t stream_max;		/* ban stream length (XADD MAXLEN ~); default 100000 */
};

struct policy {
	char file[PATH_MAX];
	uint64_t hash;			/* hash_stable() of the file bytes */
	struct pol_port ports[IG_MAX_PORTS];
	int nports;
	struct pol_list allow;		/* [lists] allow: every protected port */
	struct pol_list deny;		/* [lists] deny + deny_file */
	uint32_t ban_scope;		/* enum ig_ban_scope; [lists] ban_scope */
	uint64_t ban_ttl_ns;		/* [lists] ban_ttl: default for `ban add`, 1h */
	/* [limits] map capacities, fixed when the BPF object is first loaded. */
	uint32_t max_bans;		/* default 1048576 */
	uint32_t max_sources;		/* throttle LRU, default 1048576 */
	uint32_t max_deny;		/* default 1048576 */
	uint32_t max_allow;		/* default 65536 */
	uint32_t max_flows;		/* action starttls flow LRU, default 65536 */
	uint32_t max_grants;		/* access = grant sources, default 65536 */
	/* [interface] names = eth0, eth1; mode = auto|native|generic|tc */
	char ifaces[POL_MAX_IFACES][IG_IFNAME_LEN];
	int nifaces;
	int iface_mode;			/* 0 auto, else enum ig_attach_mode */
	/* [daemon] */
	char state_file[PATH_MAX];	/* default /var/lib/imapguard/state */
	char control_socket[PATH_MAX];	/* default /run/imapguard/control.sock */
	char control_group[64];		/* group allowed on the socket besides root */
	struct pol_detect detect;
	struct pol_authlog authlogs[POL_MAX_AUTHLOG];
	int nauthlogs;
	char metrics_listen[64];	/* [daemon] metrics_listen = 127.0.0.1:9687; "" = off */
	struct pol_mfa mfa;
	struct pol_authpolicy authpolicy;
	struct pol_crowdsec crowdsec;
	struct pol_fleet fleet;
};

/* Parse and validate FILE into *pol (initialised here). On error returns
 * -EINVAL (or -errno for I/O: -FILE_ENOTREG for a FIFO or device, -EFBIG over
 * POL_MAX_FILE, see base/file.h) and writes "file:line: what is wrong" to err.
 * An error in a deny_file names that file and line, never the line's text. */
int policy_load(const char *file, struct policy *pol, char *err, size_t errlen);
/* The same from bytes already read (file names them, for errors and for
 * deny_file paths); buf is not kept. */
int policy_load_buf(const char *file, char *buf, size_t len, struct policy *pol,
		    char *err, size_t errlen);

/* A deny_file as the parser reads it, for a caller that must vouch for its
 * bytes (signatures, sign.c). */
struct pol_feed {
	int index;			/* 0 for the first deny_file key, ... */
	const char *value;		/* as written in the policy */
	const char *path;		/* resolved (relative to the policy's directory) */
	unsigned char sha256[32];	/* of exactly the bytes that are parsed */
};

/*
 * Called for every deny_file once its bytes are read and before a line of it
 * is parsed, then once at the end with the number of deny_file keys. A
 * non-zero return refuses the policy with -EBADMSG; the hook writes the
 * reason to why (feed: "deny_file 'PATH': " goes before it; done: the
 * whole message). done may be NULL.
 */
struct pol_feed_hook {
	int (*feed)(void *ctx, const struct pol_feed *f, char *why, size_t whylen);
	int (*done)(void *ctx, int nfeeds, char *why, size_t whylen);
	void *ctx;
};

/* policy_load_buf() with every deny_file shown to hook (NULL: none). */
int policy_load_feeds(const char *file, char *buf, size_t len, const struct pol_feed_hook *hook,
		      struct policy *pol, char *err, size_t errlen);
void policy_free(struct policy *pol);
/* Fill defaults only (what an empty file gives). */
void policy_init(struct policy *pol);
/* Parsers shared with the CLI. Return 0 or -EINVAL. */
int parse_action(const char *s, uint8_t *action);
/* Whether any port has access = grant. */
bool policy_has_grant_ports(const struct policy *pol);
/* Port's access (enum ig_access); port 0: grant if any port has it. */
int policy_port_access(const struct policy *pol, unsigned int port);
const char *action_name(uint8_t action);
/* auto|native|generic|tc <-> 0 / enum ig_attach_mode. */
int parse_mode(const char *s, int *mode);
const char *mode_name(int mode);
struct sockaddr_storage;
/* "127.0.0.1:9687" or "[::1]:9687" -> socket address. 0 or -EINVAL. */
int parse_hostport(const char *s, struct sockaddr_storage *ss);

#endif
