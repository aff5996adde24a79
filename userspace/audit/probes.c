// SPDX-License-Identifier: GPL-2.0
/*
 * audit probes: the epoll loop and the IMAP/POP3/TLS state machines that
 * fill each host's struct audit_port (see audit.h), and audit_run(), which
 * takes hosts from targets.c and hands finished ones to report.c.
 *
 * One epoll loop over non-blocking sockets. Each host gets a "main" probe
 * per port, a small state machine:
 *   143/110: connect -> greeting -> CAPABILITY -> STARTTLS -> handshake -> CAPABILITY
 *   993/995: connect -> handshake -> greeting -> CAPABILITY
 * and, once that probe starts a handshake, two more connections that offer
 * only TLS 1.0 and only TLS 1.1. At most --concurrency hosts are in flight,
 * each with one deadline for all its probes. The only commands ever sent are
 * CAPABILITY/CAPA, STARTTLS/STLS and LOGOUT/QUIT: never credentials, LOGIN or
 * AUTHENTICATE. What the server says is kept raw; report.c cleans it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "audit/audit.h"
#include "base/log.h"

#define TXT		AUDIT_TXT
#define INBUF		8192		/* longest response line */

enum kind { MAIN, TLS10, TLS11 };	/* TLS10/11: handshakes capped at that version */
enum state { S_CONNECT, S_GREETING, S_CAPA, S_STARTTLS, S_HANDSHAKE, S_DONE };
enum step { AGAIN, WAIT_IN, WAIT_OUT, DONE };

static const char *const state_name[] = {
	"connect", "greeting", "capabilities", "STARTTLS reply", "TLS handshake", "logout",
};

struct audit_probe {
	struct audit_host *h;
	struct audit_port *r;
	int kind;			/* enum kind */
	int st;				/* enum state */
	int fd;
	uint32_t events;		/* registered with epoll */
	SSL *ssl;
	bool multi;			/* inside a POP3 multi-line CAPA reply */
	bool hello_ok;			/* legacy: the server's ServerHello chose our version */
	char in[INBUF];
	size_t inlen;
	char out[32];
	size_t outlen, outoff;
	char why[160];			/* I/O error text from xio() */
};

struct audit {
	struct audit_opts o;
	SSL_CTX *ctx, *legacy_ctx[2];
	struct audit_targets targets;
	struct audit_report report;
	struct audit_host **live;
	int nlive;
	int epfd;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* Keep at most srclen bytes of server text, raw (report.c cleans it for
 * its output), up to a NUL and within dstlen. */
static void keep(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i;

	for (i = 0; i < srclen && i + 1 < dstlen && src[i]; i++)
		dst[i] = src[i];
	dst[i] = '\0';
}

static void append(char *dst, size_t dstlen, const char *sep, const char *s)
{
	size_t n = strlen(dst);

	if (n + 1 >= dstlen)
		return;
	if (n)
		snprintf(dst + n, dstlen - n, "%s", sep);
	n = strlen(dst);
	keep(dst + n, dstlen - n, s, strlen(s));
}

/* Is tok one of the space-separated words of list (case-insensitive)? */
static bool has_token(const char *list, const char *tok)
{
	size_t n = strlen(tok);

	for (const char *p = list; *p; p++) {
		if ((p == list || p[-1] == ' ') && !strncasecmp(p, tok, n) &&
		    (p[n] == ' ' || p[n] == '\0'))
			return true;
	}
	return false;
}

/* The last TLS error's reason: a string of OpenSSL's own tables, which
 * outlives clearing the queue. */
static const char *ssl_err(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown TLS error";
}

/* ---- probes ------------------------------------------------------------ */

static int probe_fail(struct audit_probe *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Record why a probe stopped and end it. Legacy probes only keep a state. */
static int probe_fail(struct audit_probe *p, const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (p->kind == MAIN) {
		if (!p->r->error[0])
			snprintf(p->r->error, sizeof(p->r->error), "%s", buf);
	} else if (p->r->legacy[p->kind - 1] == LG_UNTESTED) {
		p->r->legacy[p->kind - 1] = LG_ERROR;
		snprintf(p->r->legacy_why[p->kind - 1], sizeof(p->r->legacy_why[0]), "%s", buf);
	}
	return DONE;
}

static void probe_end(struct audit_probe *p)
{
	struct audit_host *h = p->h;

	if (p->ssl) {
		/* One non-blocking close_notify, politeness only. */
		if (SSL_is_init_finished(p->ssl))
			SSL_shutdown(p->ssl);
		SSL_free(p->ssl);
		ERR_clear_error();
	}
	if (p->fd >= 0)
		close(p->fd);	/* also leaves the epoll set */
	for (int i = 0; i < h->nprobes; i++)
		if (h->probes[i] == p)
			h->probes[i] = NULL;
	h->live--;
	free(p);
}

static void probe_start(struct audit *a, struct audit_host *h, struct audit_port *r, int kind)
{
	struct audit_probe *p = calloc(1, sizeof(*p));
	struct epoll_event ev = { .events = EPOLLOUT };
	struct sockaddr_storage sa = h->sa;

	if (!p) {
		if (kind == MAIN)
			snprintf(r->error, sizeof(r->error), "out of memory");
		return;
	}
	p->h = h;
	p->r = r;
	p->kind = kind;
	p->st = S_CONNECT;
	p->events = EPOLLOUT;
	h->probes[h->nprobes++] = p;
	h->live++;
	ev.data.ptr = p;
	/* sin_port and sin6_port sit at the same offset. */
	((struct sockaddr_in *)&sa)->sin_port = htons(r->port);
	p->fd = socket(h->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		probe_fail(p, "socket: %s", strerror(errno));
	} else if (connect(p->fd, (struct sockaddr *)&sa, h->salen) && errno != EINPROGRESS) {
		probe_fail(p, "connect: %s", strerror(errno));
	} else if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, p->fd, &ev)) {
		probe_fail(p, "epoll: %s", strerror(errno));
	} else {
		return;
	}
	probe_end(p);
}

/* read/write on the socket or through TLS: bytes (0 = EOF), or an IO_*. */
enum { IO_WANT_IN = -1, IO_WANT_OUT = -2, IO_ERR = -3 };

static ssize_t xio(struct audit_probe *p, void *buf, size_t len, bool wr)
{
	size_t done = 0;
	ssize_t n;

	if (p->ssl) {
		/* SSL_get_error() reads the thread's error queue: start it empty. */
		ERR_clear_error();
		errno = 0;
		if (wr ? SSL_write_ex(p->ssl, buf, len, &done) : SSL_read_ex(p->ssl, buf, len, &done))
			return done;
		switch (SSL_get_error(p->ssl, 0)) {
		case SSL_ERROR_WANT_READ: return IO_WANT_IN;
		case SSL_ERROR_WANT_WRITE: return IO_WANT_OUT;
		case SSL_ERROR_ZERO_RETURN: return 0;
		case SSL_ERROR_SYSCALL:
			snprintf(p->why, sizeof(p->why), "%s", errno ? strerror(errno) : "connection lost");
			return IO_ERR;
		default:
			snprintf(p->why, sizeof(p->why), "TLS: %s", ssl_err());
			return IO_ERR;
		}
	}
	do
		n = wr ? send(p->fd, buf, len, MSG_NOSIGNAL) : recv(p->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return wr ? IO_WANT_OUT : IO_WANT_IN;
	snprintf(p->why, sizeof(p->why), "%s", strerror(errno));
	return IO_ERR;
}

static int send_cmd(struct audit_probe *p, int next, const char *cmd)
{
	p->outlen = snprintf(p->out, sizeof(p->out), "%s", cmd);
	p->outoff = 0;
	p->st = next;
	return AGAIN;
}

/* Clean end: say goodbye (flushed by do_io), then close. */
static int finish(struct audit_probe *p)
{
	return send_cmd(p, S_DONE, p->r->svc == SVC_POP3 ? "QUIT\r\n" : "a9 LOGOUT\r\n");
}

static int start_tls(struct audit_probe *p)
{
	/* Bytes after the OK came before TLS: never hand them to the TLS layer. */
	p->inlen = 0;
	p->st = S_HANDSHAKE;
	return AGAIN;
}

/* Pre-TLS capabilities are known: judge them, then STARTTLS if offered. */
static int capa_end(struct audit_probe *p)
{
	struct audit_port *r = p->r;

	if (p->ssl) {
		r->capa_tls_done = true;
		return finish(p);
	}
	if (r->svc == SVC_IMAP) {
		r->starttls = has_token(r->caps, "STARTTLS");
		r->logindisabled = has_token(r->caps, "LOGINDISABLED");
		r->auth_plain = has_token(r->caps, "AUTH=PLAIN");
		r->auth_login = has_token(r->caps, "AUTH=LOGIN");
	}
	r->capa_done = true;
	if (!r->starttls)
		return finish(p);
	return send_cmd(p, S_STARTTLS, r->svc == SVC_POP3 ? "STLS\r\n" : "a2 STARTTLS\r\n");
}

/* One POP3 CAPA line (RFC 2449): judged line by line, kept space-joined. */
static void pop3_capa(struct audit_probe *p, const char *line)
{
	struct audit_port *r = p->r;

	if (line[0] == '.')	/* dot-stuffing */
		line++;
	append(p->ssl ? r->caps_tls : r->caps, TXT, " ", line);
	if (p->ssl)
		return;
	if (!strcasecmp(line, "STLS"))
		r->starttls = true;
	else if (!strcasecmp(line, "USER"))
		r->pop_user = true;
	else if (!strncasecmp(line, "SASL ", 5)) {
		r->auth_plain |= has_token(line + 5, "PLAIN");
		r->auth_login |= has_token(line + 5, "LOGIN");
	}
}

static int on_capa(struct audit_probe *p, const char *line)
{
	const char *tag = p->ssl ? "a3 " : "a1 ";
	struct audit_port *r = p->r;

	if (r->svc == SVC_POP3) {
		if (!p->multi && !strncmp(line, "+OK", 3)) {
			p->multi = true;
			return AGAIN;
		}
		if (p->multi && strcmp(line, ".")) {
			pop3_capa(p, line);
			return AGAIN;
		}
		p->multi = false;	/* "." or -ERR (no CAPA: nothing advertised) */
		return capa_end(p);
	}
	if (!strncasecmp(line, "* CAPABILITY ", 13)) {
		keep(p->ssl ? r->caps_tls : r->caps, TXT, line + 13, strlen(line + 13));
		return AGAIN;
	}
	if (strncmp(line, tag, 3))
		return AGAIN;	/* another untagged line */
	if (strncasecmp(line + 3, "OK", 2))
		return probe_fail(p, "CAPABILITY refused: %.80s", line);
	return capa_end(p);
}

static int on_line(struct audit_probe *p, const char *line)
{
	struct audit_port *r = p->r;
	bool pop3 = r->svc == SVC_POP3, ok;

	switch (p->st) {
	case S_GREETING:
		ok = pop3 ? !strncmp(line, "+OK", 3) :
		     !strncasecmp(line, "* OK", 4) || !strncasecmp(line, "* PREAUTH", 9);
		if (!ok)
			return probe_fail(p, "unexpected greeting: %.80s", line);
		if (p->kind == MAIN)
			keep(r->greeting, sizeof(r->greeting), line, strlen(line));
		/* Legacy probes only need the handshake: straight to STARTTLS. */
		if (p->kind != MAIN && !r->implicit)
			return send_cmd(p, S_STARTTLS, pop3 ? "STLS\r\n" : "a2 STARTTLS\r\n");
		return send_cmd(p, S_CAPA, pop3 ? "CAPA\r\n" : p->ssl ? "a3 CAPABILITY\r\n" :
				"a1 CAPABILITY\r\n");
	case S_CAPA:
		return on_capa(p, line);
	case S_STARTTLS:
		if (!pop3 && strncmp(line, "a2 ", 3))
			return AGAIN;
		ok = pop3 ? !strncmp(line, "+OK", 3) : !strncasecmp(line, "a2 OK", 5);
		if (!ok)
			return probe_fail(p, "STARTTLS refused: %.80s", line);
		return start_tls(p);
	default:
		return AGAIN;	/* e.g. "* BYE" after LOGOUT */
	}
}

/* Flush output, then hand complete lines to on_line, then read more. */
static int do_io(struct audit_probe *p)
{
	char line[INBUF];
	ssize_t n;
	char *nl;

	while (p->outoff < p->outlen) {
		n = xio(p, p->out + p->outoff, p->outlen - p->outoff, true);
		if (n == IO_WANT_IN || n == IO_WANT_OUT)
			return n == IO_WANT_IN ? WAIT_IN : WAIT_OUT;
		if (n <= 0)
			return p->st == S_DONE ? DONE :
			       probe_fail(p, "sending: %s", n ? p->why : "connection closed");
		p->outoff += n;
	}
	if (p->st == S_DONE)
		return DONE;
	nl = memchr(p->in, '\n', p->inlen);
	if (nl) {
		size_t len = nl - p->in;

		memcpy(line, p->in, len);
		line[len - (len && line[len - 1] == '\r')] = '\0';
		memmove(p->in, nl + 1, p->inlen - len - 1);
		p->inlen -= len + 1;
		return on_line(p, line);
	}
	if (p->inlen == sizeof(p->in))
		return probe_fail(p, "%s: line longer than %d bytes", state_name[p->st], INBUF);
	n = xio(p, p->in + p->inlen, sizeof(p->in) - p->inlen, false);
	if (n == IO_WANT_IN || n == IO_WANT_OUT)
		return n == IO_WANT_IN ? WAIT_IN : WAIT_OUT;
	if (n == 0)
		return probe_fail(p, "connection closed by the server (waiting for %s)",
				  state_name[p->st]);
	if (n < 0)
		return probe_fail(p, "%s: %s", state_name[p->st], p->why);
	p->inlen += n;
	return AGAIN;
}

static int do_connect(struct audit_probe *p)
{
	socklen_t len = sizeof(int);
	int e = 0;

	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &len))
		e = errno;
	if (e)
		return probe_fail(p, "connect: %s", strerror(e));
	if (p->kind == MAIN)
		p->r->open = true;
	p->st = p->r->implicit ? S_HANDSHAKE : S_GREETING;
	return AGAIN;
}

static void name_str(const X509_NAME *name, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;

	out[0] = '\0';
	/* RFC 2253 with its escapes (control characters as \1B), but UTF-8
	 * left as UTF-8 (no ESC_MSB): a non-ASCII name reads as itself. */
	if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_get_mem_data(b, &data);
		keep(out, len, data, n);
	}
	BIO_free(b);
}

static void san_str(X509 *cert, char *out, size_t len)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	char item[300], ip[INET6_ADDRSTRLEN];

	out[0] = '\0';
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s = g->type == GEN_DNS ? g->d.dNSName :
				       g->type == GEN_IPADD ? g->d.iPAddress : NULL;
		int n = s ? ASN1_STRING_length(s) : 0;

		if (g->type == GEN_DNS)
			snprintf(item, sizeof(item), "DNS:%.*s", n, ASN1_STRING_get0_data(s));
		else if (g->type == GEN_IPADD && (n == 4 || n == 16) &&
			 inet_ntop(n == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), ip, sizeof(ip)))
			snprintf(item, sizeof(item), "IP:%s", ip);
		else
			continue;
		append(out, len, ", ", item);
	}
	GENERAL_NAMES_free(gens);
}

/* Chain (against the system store or --ca), name, expiry of the peer. */
static void record_cert(struct audit_probe *p)
{
	X509 *cert = SSL_get1_peer_certificate(p->ssl);
	struct audit_port *r = p->r;
	const ASN1_TIME *na;
	int days = 0, secs = 0;
	struct tm tm;
	long total;

	r->verify = SSL_get_verify_result(p->ssl);
	if (!cert) {
		r->verify = X509_V_ERR_UNSPECIFIED;
		snprintf(r->subject, sizeof(r->subject), "(no certificate)");
		return;
	}
	name_str(X509_get_subject_name(cert), r->subject, sizeof(r->subject));
	name_str(X509_get_issuer_name(cert), r->issuer, sizeof(r->issuer));
	san_str(cert, r->san, sizeof(r->san));
	na = X509_get0_notAfter(cert);
	if (ASN1_TIME_to_tm(na, &tm))
		strftime(r->not_after, sizeof(r->not_after), "%Y-%m-%d %H:%M:%SZ", &tm);
	if (ASN1_TIME_diff(&days, &secs, NULL, na)) {
		total = days * 86400L + secs;	/* negative once expired */
		r->days_left = total >= 0 ? total / 86400 : -((-total + 86399) / 86400);
	}
	r->name_ok = p->h->by_ip ? X509_check_ip_asc(cert, p->h->addr, 0) == 1 :
		     X509_check_host(cert, p->h->name, 0, 0, NULL) == 1;
	X509_free(cert);
}

static int handshake_done(struct audit_probe *p)
{
	struct audit_port *r = p->r;

	if (p->kind != MAIN) {
		r->legacy[p->kind - 1] = LG_ACCEPTED;
		snprintf(r->legacy_why[p->kind - 1], sizeof(r->legacy_why[0]), "%s with %s",
			 SSL_get_version(p->ssl), SSL_get_cipher_name(p->ssl));
		return finish(p);
	}
	r->tls_done = true;
	snprintf(r->version, sizeof(r->version), "%s", SSL_get_version(p->ssl));
	snprintf(r->cipher, sizeof(r->cipher), "%s", SSL_get_cipher_name(p->ssl));
	record_cert(p);
	if (r->implicit) {
		p->st = S_GREETING;
		return AGAIN;
	}
	return send_cmd(p, S_CAPA, r->svc == SVC_POP3 ? "CAPA\r\n" : "a3 CAPABILITY\r\n");
}

/* Legacy probes: did the server's ServerHello pick the one version we offer?
 * That is "accepted" even if our own side then fails the handshake. */
static void on_tls_msg(int write_p, int version, int content_type, const void *buf,
		       size_t len, SSL *ssl, void *arg)
{
	const unsigned char *m = buf;
	struct audit_probe *p = arg;
	int want = p->kind == TLS10 ? TLS1_VERSION : TLS1_1_VERSION;

	(void)version; (void)ssl;
	/* type(1) length(3) server_version(2) */
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len >= 6 &&
	    m[0] == SSL3_MT_SERVER_HELLO && (m[4] << 8 | m[5]) == want)
		p->hello_ok = true;
}

static int handshake_failed(struct audit_probe *p, int e)
{
	unsigned long err = ERR_peek_last_error();
	int reason = ERR_GET_REASON(err);
	const char *why;

	why = e == SSL_ERROR_SYSCALL && !err ? (errno ? strerror(errno) : "connection closed")
					      : ssl_err();
	if (p->kind != MAIN) {
		/* The client failing to build a hello is no answer from the server. */
		bool local = reason == SSL_R_NO_PROTOCOLS_AVAILABLE ||
			     reason == SSL_R_NO_CIPHERS_AVAILABLE;

		p->r->legacy[p->kind - 1] = p->hello_ok ? LG_ACCEPTED :
					    local ? LG_CANT_OFFER : LG_REJECTED;
		snprintf(p->r->legacy_why[p->kind - 1], sizeof(p->r->legacy_why[0]), "%s%s",
			 p->hello_ok ? "the server chose it; our side then failed: " : "", why);
		return DONE;
	}
	return probe_fail(p, "TLS handshake failed: %s", why);
}

static int do_handshake(struct audit *a, struct audit_probe *p)
{
	struct audit_host *h = p->h;
	int ret;

	if (!p->ssl) {
		/* The port speaks TLS: now probe the legacy versions too. */
		if (p->kind == MAIN)
			for (int k = TLS10; k <= TLS11; k++)
				probe_start(a, h, p->r, k);
		p->ssl = SSL_new(p->kind == MAIN ? a->ctx : a->legacy_ctx[p->kind - 1]);
		if (p->ssl && p->kind != MAIN)
			SSL_set_msg_callback_arg(p->ssl, p);
		if (!p->ssl || !SSL_set_fd(p->ssl, p->fd) ||
		    (!h->by_ip && !SSL_set_tlsext_host_name(p->ssl, h->name)))
			return probe_fail(p, "TLS setup: %s", ssl_err());
	}
	ERR_clear_error();
	errno = 0;
	ret = SSL_connect(p->ssl);
	if (ret == 1)
		return handshake_done(p);
	switch (SSL_get_error(p->ssl, ret)) {
	case SSL_ERROR_WANT_READ: return WAIT_IN;
	case SSL_ERROR_WANT_WRITE: return WAIT_OUT;
	default: return handshake_failed(p, SSL_get_error(p->ssl, ret));
	}
}

/* Run a probe until it would block; then wait for the right event. */
static void probe_run(struct audit *a, struct audit_probe *p)
{
	struct epoll_event ev = { .data.ptr = p };
	int r;

	do {
		switch (p->st) {
		case S_CONNECT: r = do_connect(p); break;
		case S_HANDSHAKE: r = do_handshake(a, p); break;
		default: r = do_io(p); break;
		}
	} while (r == AGAIN);
	if (r == DONE) {
		probe_end(p);
		return;
	}
	ev.events = r == WAIT_IN ? EPOLLIN : EPOLLOUT;
	if (ev.events != p->events) {
		if (epoll_ctl(a->epfd, EPOLL_CTL_MOD, p->fd, &ev)) {
			probe_fail(p, "epoll: %s", strerror(errno));
			probe_end(p);
			return;
		}
		p->events = ev.events;
	}
}

/* ---- the loop ----------------------------------------------------------- */

static SSL_CTX *make_ctx(const struct audit *a, int version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	bool ok;

	if (!ctx)
		return NULL;
	/* Judge the chain after the handshake (SSL_get_verify_result) rather
	 * than abort it: a bad certificate is a finding, not a probe error. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (version) {
		/* OpenSSL 3 will not offer TLS < 1.2 at security level 1 or more. */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_msg_callback(ctx, on_tls_msg);
		ok = SSL_CTX_set_min_proto_version(ctx, version) &&
		     SSL_CTX_set_max_proto_version(ctx, version) &&
		     SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0");
	} else {
		ok = a->o.ca ? SSL_CTX_load_verify_locations(ctx, a->o.ca, NULL) :
			     SSL_CTX_set_default_verify_paths(ctx);
	}
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int wait_ms(const struct audit *a)
{
	uint64_t now = now_ms(), first = UINT64_MAX;

	for (int i = 0; i < a->nlive; i++)
		if (a->live[i]->deadline < first)
			first = a->live[i]->deadline;
	return first <= now ? 0 : first - now > 1000 ? 1000 : (int)(first - now);
}

/* Time out overdue hosts, report and free the finished ones. */
static void reap(struct audit *a)
{
	uint64_t now = now_ms();

	for (int i = 0; i < a->nlive; i++) {
		struct audit_host *h = a->live[i];

		for (int j = 0; now >= h->deadline && j < h->nprobes; j++) {
			struct audit_probe *p = h->probes[j];

			if (p) {
				probe_fail(p, "timeout (%s)", state_name[p->st]);
				probe_end(p);
			}
		}
		if (h->live)
			continue;
		report_host(&a->report, h);
		free(h);
		a->live[i--] = a->live[--a->nlive];
	}
}

/* After an error: end every probe and drop the hosts unreported. */
static void drop_live(struct audit *a)
{
	for (int i = 0; i < a->nlive; i++) {
		struct audit_host *h = a->live[i];

		for (int j = 0; j < h->nprobes; j++)
			if (h->probes[j])
				probe_end(h->probes[j]);
		free(h);
	}
	a->nlive = 0;
}

/* Start hosts up to --concurrency. 0, or -ENOMEM (printed). */
static int fill(struct audit *a)
{
	struct audit_host *h;

	while (a->nlive < a->o.concurrency) {
		h = targets_next(&a->targets, a->o.pop3);
		if (!h) {
			int err = errno;	/* 0: every address handed out */

			if (err)
				pr_warn("Couldn't start the next host: %s", strerror(err));
			return -err;
		}
		h->deadline = now_ms() + a->o.timeout_ms;
		a->live[a->nlive++] = h;
		for (int i = 0; i < h->nports; i++)
			probe_start(a, h, &h->ports[i], MAIN);
	}
	return 0;
}

static int run(struct audit *a)
{
	struct epoll_event evs[64];
	int n, err;

	a->live = calloc(a->o.concurrency, sizeof(*a->live));
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!a->live || a->epfd < 0) {
		err = -errno;
		pr_warn("Couldn't set up the event loop: %s", strerror(-err));
		return err;
	}
	while (!(err = fill(a)) && a->nlive) {
		n = epoll_wait(a->epfd, evs, 64, wait_ms(a));
		if (n < 0 && errno != EINTR) {
			err = -errno;
			pr_warn("Couldn't wait for sockets: %s", strerror(-err));
			break;
		}
		for (int i = 0; i < n; i++)
			probe_run(a, evs[i].data.ptr);
		reap(a);
	}
	drop_live(a);
	return err;
}

/* Every probe is a socket: keep concurrency x probes under the fd limit. */
static void fit_fd_limit(struct audit *a)
{
	int per_host = (a->o.pop3 ? 4 : 2) * 3;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return;
	if ((rlim_t)a->o.concurrency * per_host + 32 > rl.rlim_cur) {
		a->o.concurrency = rl.rlim_cur > 32 + (rlim_t)per_host ?
				 (int)((rl.rlim_cur - 32) / per_host) : 1;
		pr_info("audit: --concurrency lowered to %d to fit the open-file limit (%llu)",
			a->o.concurrency, (unsigned long long)rl.rlim_cur);
	}
}

int audit_run(const struct audit_opts *o, int ntargets, char **targets)
{
	struct audit a = { .o = *o, .epfd = -1 };
	int err = 0, rerr;

	a.report.o = &a.o;
	for (int i = 0; i < ntargets && !err; i++)
		err = targets_add(&a.targets, targets[i]);
	if (!err)
		err = targets_check(&a.targets, a.o.force);
	if (err)
		goto out;
	fit_fd_limit(&a);
	/* A server closing while we write must not kill the audit. */
	signal(SIGPIPE, SIG_IGN);
	a.ctx = make_ctx(&a, 0);
	a.legacy_ctx[0] = make_ctx(&a, TLS1_VERSION);
	a.legacy_ctx[1] = make_ctx(&a, TLS1_1_VERSION);
	if (!a.ctx || !a.legacy_ctx[0] || !a.legacy_ctx[1]) {
		pr_warn("Couldn't set up TLS%s%s: %s", a.o.ca && !a.ctx ? " with CA file " : "",
			a.o.ca && !a.ctx ? a.o.ca : "", ssl_err());
		err = -EINVAL;
		goto out;
	}
	err = run(&a);
	/* The summary also after a loop error: it counts what was reported. */
	rerr = report_summary(&a.report);
	if (!err)
		err = rerr;
out:
	SSL_CTX_free(a.ctx);
	SSL_CTX_free(a.legacy_ctx[0]);
	SSL_CTX_free(a.legacy_ctx[1]);
	if (a.epfd >= 0)
		close(a.epfd);
	free(a.live);
	targets_free(&a.targets);
	return err;
}
