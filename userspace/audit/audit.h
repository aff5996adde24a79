/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `imapguard audit`: find plaintext IMAP, check TLS and certificates.
 *
 * Three files, one job each, meeting in this header:
 *   targets.c  command-line targets to addresses: CIDR expansion, names
 *              resolved up front; hands out one struct audit_host at a time.
 *   probes.c   the epoll loop and the IMAP/POP3/TLS state machines that fill
 *              each host's struct audit_port; audit_run() drives the three.
 *   report.c   verdicts from those results, and the text or JSON output.
 *
 * Text from a probed server (greeting, capabilities, certificate names,
 * refusals quoted in errors) is stored as received, bounded and NUL-free,
 * and cleaned only on its way out: text_clean() for the terminal (control
 * characters become '?', invalid UTF-8 U+FFFD), json_text() for JSON.
 */
#ifndef IMAPGUARD_AUDIT_H
#define IMAPGUARD_AUDIT_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "base/addr.h"

#define CIDR_LIMIT	65536		/* addresses audited without --force */
#define FORCE_LIMIT	(1u << 24)	/* a /8: the most even --force expands */

struct audit_opts {
	bool json, pop3, force;
	int timeout_ms, concurrency, warn_days;
	const char *ca;		/* CA file, or NULL for the system store */
};

/* Probe every target (HOST[:PORT], [IPV6]:PORT or CIDR) and print one report
 * per host (text or JSON lines) and a summary on stdout. Returns 0 if every
 * host is ok, -EPROTO if any is warn or fail, other -errno on error (the
 * error is printed). */
int audit_run(const struct audit_opts *o, int ntargets, char **targets);

/* ---- between the three files -------------------------------------------- */

#define AUDIT_MAX_PORTS	4
#define AUDIT_TXT	512		/* kept of one server string */

enum audit_svc { SVC_IMAP, SVC_POP3 };
enum audit_legacy { LG_UNTESTED, LG_REJECTED, LG_ACCEPTED, LG_CANT_OFFER, LG_ERROR };

/* What one port told us. The probes write it (only the main probe, except
 * legacy[]); the report reads it once every probe of the host has ended.
 * Every char array is NUL-terminated; server text in it is raw. */
struct audit_port {
	uint16_t port;
	uint8_t svc;			/* enum audit_svc */
	bool implicit;			/* TLS from the first byte (993, 995) */
	bool open;			/* TCP connect succeeded */
	bool capa_done;			/* pre-TLS capabilities known */
	bool tls_done;			/* main handshake completed */
	bool capa_tls_done;		/* capabilities after TLS known */
	bool starttls, logindisabled, auth_plain, auth_login, pop_user;
	char error[200];		/* why the main probe stopped short */
	char greeting[AUDIT_TXT], caps[AUDIT_TXT], caps_tls[AUDIT_TXT];
	char version[16], cipher[64];
	char subject[AUDIT_TXT], issuer[AUDIT_TXT], san[AUDIT_TXT], not_after[32];
	long days_left;
	long verify;			/* X509_V_OK or the chain error */
	bool name_ok;
	uint8_t legacy[2];		/* enum audit_legacy: TLS 1.0, TLS 1.1 */
	char legacy_why[2][200];
};

struct audit_probe;

/* One address under audit: made by targets_next(), probed, reported, freed
 * by the loop (free()). */
struct audit_host {
	char name[256];			/* as given, or the address */
	char addr[ADDR_STRLEN];
	struct sockaddr_storage sa;	/* port 0: each probe sets its own */
	socklen_t salen;
	bool named;			/* given by name or as one address, not a CIDR member */
	bool by_ip;			/* check the certificate's IP SANs, send no SNI */
	struct audit_port ports[AUDIT_MAX_PORTS];
	int nports;
	/* The loop's own (probes.c). */
	uint64_t deadline;		/* ms, CLOCK_MONOTONIC */
	struct audit_probe *probes[AUDIT_MAX_PORTS * 3];
	int nprobes, live;
};

/* targets.c: the command line's targets, expanded lazily (a /8 is 16M
 * addresses: never held in memory at once). Zero-initialise; the caller
 * owns it and releases it with targets_free(). */
struct audit_target;
struct audit_targets {
	struct audit_target *t;
	int nt, ti;
	uint64_t total;			/* addresses, all targets together */
};

/* Add HOST, HOST:PORT, [IPV6]:PORT, a bare IPv6 address, or a CIDR. A name
 * is resolved here, before the loop (getaddrinfo blocks), and every address
 * it has is added. 0, or -EINVAL (unparsable), -E2BIG (a prefix larger than
 * a /8), -ENOENT (the name does not resolve), -ENOMEM; the reason is printed. */
int targets_add(struct audit_targets *ts, const char *arg);
/* 0, or -E2BIG (printed) when the targets hold more addresses than audit
 * takes: CIDR_LIMIT, or FORCE_LIMIT with force. */
int targets_check(const struct audit_targets *ts, bool force);
/* The next address as a new host with its ports set up (the target's one
 * port, or 143 and 993, with pop3 also 110 and 995); the caller frees it.
 * NULL with errno 0 when every address has been handed out, or with
 * errno ENOMEM. */
struct audit_host *targets_next(struct audit_targets *ts, bool pop3);
void targets_free(struct audit_targets *ts);

/* report.c: verdicts and output on stdout. Zero-initialise with o set. */
struct audit_report {
	const struct audit_opts *o;
	unsigned int hosts, ok, warn, fail, silent;
	unsigned int lost;		/* lines not printed: out of memory */
};

/* Judge h (every probe of it has ended), count it and print it, as text or
 * one JSON line. A CIDR member with nothing open is only counted, and shown
 * with -v. Output errors show in report_summary(). */
void report_host(struct audit_report *rep, const struct audit_host *h);
/* Print the summary. 0 if every host was ok, -EPROTO if any was warn or
 * fail, -ENOMEM if a line could not be printed, -EIO if stdout failed
 * (both printed). */
int report_summary(struct audit_report *rep);

#endif
