// SPDX-License-Identifier: GPL-2.0
/*
 * audit report: a verdict per host from what its probes found, printed as
 * text or as one JSON object per line (see audit.h).
 *
 * Server text is raw in struct audit_port. Every text line goes out through
 * tline(), which cleans the whole line, and every JSON string that holds
 * server text is made by json_text(): neither output can carry an escape
 * sequence or invalid UTF-8 from a probed server.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509.h>
#include "audit/audit.h"
#include "base/json.h"
#include "base/log.h"
#include "base/text.h"

enum level { NOTE, OK, WARN, FAIL };
#define MAX_REASONS	32

static const char *const legacy_name[] = {
	"untested", "rejected", "accepted", "not tested (this OpenSSL cannot offer it)", "error",
};
static const char *const level_name[] = { "note", "ok", "warn", "fail" };

struct reason {
	int level;
	char text[240];
};

static const char *svc_name(const struct audit_port *r)
{
	return r->svc == SVC_POP3 ? (r->implicit ? "pop3s" : "pop3") :
	       (r->implicit ? "imaps" : "imap");
}

static const char *chain_error(const struct audit_port *r)
{
	return r->verify == X509_V_OK ? "" : X509_verify_cert_error_string(r->verify);
}

/* ---- verdicts ----------------------------------------------------------- */

static void add_reason(struct reason *rs, int *n, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_reason(struct reason *rs, int *n, int level, const char *fmt, ...)
{
	va_list ap;

	if (*n >= MAX_REASONS)
		return;
	rs[*n].level = level;
	va_start(ap, fmt);
	vsnprintf(rs[*n].text, sizeof(rs[0].text), fmt, ap);
	va_end(ap);
	(*n)++;
}

#define REASON(lvl, fmt, ...) \
	add_reason(rs, n, lvl, "%u/%s: " fmt, r->port, svc_name(r), ##__VA_ARGS__)

/* Before TLS on 143/110: can a password cross the wire in the clear? */
static void judge_plain(const struct audit_port *r, struct reason *rs, int *n)
{
	bool pop3 = r->svc == SVC_POP3;
	bool login = pop3 ? r->pop_user : !r->logindisabled;

	if (!r->capa_done) {
		REASON(WARN, "open, but no %s conversation: %s", pop3 ? "POP3" : "IMAP", r->error);
		return;
	}
	if (login)
		REASON(FAIL, "%s", pop3 ? "USER/PASS accepted before STLS (USER advertised)" :
		       "plaintext LOGIN accepted before STARTTLS (no LOGINDISABLED)");
	if (r->auth_plain || r->auth_login)
		REASON(FAIL, "%s%s%s offered before TLS", pop3 ? "SASL " : "AUTHENTICATE ",
		       r->auth_plain ? "PLAIN" : "", r->auth_plain && r->auth_login ? " and LOGIN" :
		       r->auth_login ? "LOGIN" : "");
	if (!r->starttls && (login || r->auth_plain || r->auth_login))
		REASON(FAIL, "no %s: logins on this port can only be plaintext",
		       pop3 ? "STLS" : "STARTTLS");
	else if (!r->starttls)
		REASON(NOTE, "no %s, but no plaintext login is offered either",
		       pop3 ? "STLS" : "STARTTLS");
}

static void judge_tls(const struct audit_opts *o, const struct audit_host *h,
		      const struct audit_port *r, struct reason *rs, int *n)
{
	static const char *const vname[] = { "TLS 1.0", "TLS 1.1" };

	if (!r->tls_done) {
		REASON(FAIL, "%s", r->error[0] ? r->error : "TLS handshake did not complete");
		return;
	}
	if (!strcmp(r->version, "TLSv1") || !strcmp(r->version, "TLSv1.1") ||
	    !strncmp(r->version, "SSL", 3))
		REASON(FAIL, "negotiated %s", r->version);
	for (int i = 0; i < 2; i++) {
		if (r->legacy[i] == LG_ACCEPTED)
			REASON(FAIL, "%s still accepted (%s)", vname[i], r->legacy_why[i]);
		else if (r->legacy[i] == LG_CANT_OFFER)
			REASON(NOTE, "%s not tested: this OpenSSL cannot offer it (%s)", vname[i],
			       r->legacy_why[i]);
		else if (r->legacy[i] != LG_REJECTED)
			REASON(WARN, "%s probe inconclusive: %s", vname[i],
			       r->legacy_why[i][0] ? r->legacy_why[i] : "did not finish");
	}
	if (r->verify != X509_V_OK)
		REASON(FAIL, "certificate chain does not verify: %s", chain_error(r));
	if (!r->name_ok)
		REASON(FAIL, "certificate does not match %s", h->by_ip ? h->addr : h->name);
	if (r->days_left < 0)
		REASON(FAIL, "certificate expired %ld day(s) ago", -r->days_left);
	else if (r->days_left < o->warn_days)
		REASON(WARN, "certificate expires in %ld day(s)", r->days_left);
	if (!r->capa_tls_done)
		REASON(WARN, "no capabilities after TLS: %s", r->error[0] ? r->error : "?");
}

/* All reasons for a host; returns the verdict (the worst level, at least OK). */
static int judge(const struct audit_opts *o, const struct audit_host *h, struct reason *rs, int *n)
{
	bool any_open = false;
	int level = OK;

	*n = 0;
	for (int i = 0; i < h->nports; i++) {
		const struct audit_port *r = &h->ports[i];

		if (!r->open)
			continue;
		any_open = true;
		if (!r->implicit)
			judge_plain(r, rs, n);
		if (r->implicit || r->starttls)
			judge_tls(o, h, r, rs, n);
	}
	if (!any_open && h->named)
		add_reason(rs, n, WARN, "no %s port open (%s)", o->pop3 ? "IMAP/POP3" : "IMAP",
			   h->ports[0].error[0] ? h->ports[0].error : "no answer");
	for (int i = 0; i < *n; i++)
		if (rs[i].level > level)
			level = rs[i].level;
	return level;
}

/* ---- text --------------------------------------------------------------- */

static void tline(struct audit_report *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One line of text output. Server strings are among the arguments, so the
 * formatted line is cleaned as a whole: control characters (C0, DEL, C1)
 * become '?' and invalid UTF-8 U+FFFD, three bytes at most per input byte. */
static void tline(struct audit_report *rep, const char *fmt, ...)
{
	char *raw, *clean = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&raw, fmt, ap);
	va_end(ap);
	if (n < 0 || !(clean = text_clean_dup(raw, n))) {
		if (n >= 0)
			free(raw);
		rep->lost++;	/* a short report must not pass for a complete one */
		return;
	}
	puts(clean);
	free(clean);
	free(raw);
}

static void print_port_text(struct audit_report *rep, const struct audit_port *r)
{
	static const char *const yn[] = { "no", "yes" };
	char label[24];

	snprintf(label, sizeof(label), "%u/%s", r->port, svc_name(r));
	if (!r->open) {
		tline(rep, "  %-10s closed (%s)", label, r->error[0] ? r->error : "no answer");
		return;
	}
	tline(rep, "  %-10s open", label);
	if (r->greeting[0])
		tline(rep, "    greeting      %s", r->greeting);
	if (!r->implicit && r->capa_done) {
		tline(rep, "    capabilities  %s", r->caps);
		if (r->svc == SVC_POP3)
			tline(rep, "    before TLS    STLS %s, USER %s, SASL PLAIN %s", yn[r->starttls],
			      yn[r->pop_user], yn[r->auth_plain]);
		else
			tline(rep, "    before TLS    STARTTLS %s, LOGINDISABLED %s, AUTH=PLAIN %s",
			      yn[r->starttls], yn[r->logindisabled], yn[r->auth_plain]);
	}
	if (!r->tls_done)
		return;
	tline(rep, "    TLS           %s %s; TLS 1.0 %s; TLS 1.1 %s", r->version, r->cipher,
	      legacy_name[r->legacy[0]], legacy_name[r->legacy[1]]);
	if (r->capa_tls_done)
		tline(rep, "    after TLS     %s", r->caps_tls);
	tline(rep, "    certificate   %s", r->subject);
	tline(rep, "      SAN         %s", r->san[0] ? r->san : "(none)");
	tline(rep, "      issuer      %s", r->issuer);
	tline(rep, "      expires     %s (%ld days)", r->not_after, r->days_left);
	tline(rep, "      chain       %s", r->verify == X509_V_OK ? "verified" : chain_error(r));
	tline(rep, "      name        %s", r->name_ok ? "matches" : "does NOT match");
}

static void print_host_text(struct audit_report *rep, const struct audit_host *h, int level,
			    const struct reason *rs, int n)
{
	if (strcmp(h->name, h->addr))
		tline(rep, "%s (%s): %s", h->name, h->addr, level_name[level]);
	else
		tline(rep, "%s: %s", h->addr, level_name[level]);
	for (int i = 0; i < n; i++)
		tline(rep, "  %-4s  %s", level_name[rs[i].level], rs[i].text);
	for (int i = 0; i < h->nports; i++)
		print_port_text(rep, &h->ports[i]);
	fflush(stdout);
}

/* ---- JSON --------------------------------------------------------------- */

/* "A B C" -> ["A","B","C"]: capabilities, split on white space. */
static json_t *json_words(const char *s)
{
	static const char ws[] = " \t\n\v\f\r";
	json_t *a = json_array();

	while (a && *(s += strspn(s, ws))) {
		size_t n = strcspn(s, ws);

		if (json_array_append_new(a, json_textn(s, n))) {
			json_decref(a);
			return NULL;
		}
		s += n;
	}
	return a;
}

static json_t *tls_json(const struct audit_port *r)
{
	if (!r->tls_done)
		return json_null();
	return json_pack("{s:o, s:o, s:s, s:s, s:o, s:{s:o, s:o, s:o, s:s, s:I, s:b, s:s, s:b}}",
			 "version", json_text(r->version),
			 "cipher", json_text(r->cipher),
			 "tls1_0", legacy_name[r->legacy[0]],
			 "tls1_1", legacy_name[r->legacy[1]],
			 "capabilities", json_words(r->caps_tls),
			 "cert",
			 "subject", json_text(r->subject),
			 "san", json_text(r->san),
			 "issuer", json_text(r->issuer),
			 "not_after", r->not_after,
			 "days_left", (json_int_t)r->days_left,
			 "chain_ok", r->verify == X509_V_OK,
			 "chain_error", chain_error(r),
			 "name_ok", r->name_ok);
}

static json_t *port_json(const struct audit_port *r)
{
	return json_pack("{s:i, s:s, s:b, s:o, s:o, s:o, s:b, s:b, s:b, s:b, s:b, s:o}",
			 "port", r->port,
			 "service", svc_name(r),
			 "open", r->open,
			 "error", json_text(r->error),
			 "greeting", json_text(r->greeting),
			 "capabilities", json_words(r->caps),
			 "starttls", r->starttls,
			 "logindisabled", r->logindisabled,
			 "auth_plain", r->auth_plain,
			 "auth_login", r->auth_login,
			 "user", r->pop_user,
			 "tls", tls_json(r));
}

static json_t *host_json(const struct audit_host *h, int level, const struct reason *rs, int n)
{
	json_t *reasons = json_array(), *ports = json_array();
	bool nomem = !reasons || !ports;

	for (int i = 0; i < n && !nomem; i++)
		nomem = json_array_append_new(reasons, json_pack("{s:s, s:o}",
					      "level", level_name[rs[i].level],
					      "text", json_text(rs[i].text)));
	for (int i = 0; i < h->nports && !nomem; i++)
		nomem = json_array_append_new(ports, port_json(&h->ports[i]));
	if (nomem) {
		json_decref(reasons);
		json_decref(ports);
		return NULL;
	}
	return json_pack("{s:o, s:s, s:s, s:o, s:o}",
			 "host", json_text(h->name),
			 "address", h->addr,
			 "verdict", level_name[level],
			 "reasons", reasons,
			 "ports", ports);
}

static void print_host_json(struct audit_report *rep, const struct audit_host *h, int level,
			    const struct reason *rs, int n)
{
	if (json_println(stdout, host_json(h, level, rs, n)) == -ENOMEM)
		rep->lost++;
	fflush(stdout);
}

/* ---- the report --------------------------------------------------------- */

void report_host(struct audit_report *rep, const struct audit_host *h)
{
	struct reason rs[MAX_REASONS];
	bool any_open = false;
	int n, level;

	for (int i = 0; i < h->nports; i++)
		any_open |= h->ports[i].open;
	level = judge(rep->o, h, rs, &n);
	rep->hosts++;
	/* A CIDR sweep is mostly empty addresses: count them, print them with -v. */
	if (!any_open && !h->named) {
		rep->silent++;
		if (log_get_level() < LL_DEBUG)
			return;
	} else {
		rep->ok += level == OK;
		rep->warn += level == WARN;
		rep->fail += level == FAIL;
	}
	if (rep->o->json)
		print_host_json(rep, h, level, rs, n);
	else
		print_host_text(rep, h, level, rs, n);
}

int report_summary(struct audit_report *rep)
{
	if (rep->o->json && json_println(stdout, json_pack("{s:{s:I, s:I, s:I, s:I, s:I}}", "summary",
					       "hosts", (json_int_t)rep->hosts,
					       "ok", (json_int_t)rep->ok,
					       "warn", (json_int_t)rep->warn,
					       "fail", (json_int_t)rep->fail,
					       "no_service", (json_int_t)rep->silent)) == -ENOMEM)
		rep->lost++;
	else if (!rep->o->json)
		printf("audited %u address%s: %u ok, %u warn, %u fail, %u with no IMAP port open\n",
		       rep->hosts, rep->hosts == 1 ? "" : "es", rep->ok, rep->warn, rep->fail,
		       rep->silent);
	if (rep->lost) {
		pr_warn("Couldn't print %u line(s) of the audit report: %s", rep->lost,
			strerror(ENOMEM));
		return -ENOMEM;
	}
	if (fflush(stdout) || ferror(stdout)) {
		pr_warn("Couldn't write the audit report: %s", strerror(errno ? errno : EIO));
		return -EIO;
	}
	/* Findings count too: cron mails whatever needs a look. */
	return rep->warn || rep->fail ? -EPROTO : 0;
}
