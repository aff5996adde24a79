// SPDX-License-Identifier: GPL-2.0
/*
 * The OpenSSL commands: `imapguard audit`, and `policy keygen|sign|verify`
 * (the crypto is in sign.c, which unit-tests without this CLI).
 *
 * audit is one epoll loop over non-blocking sockets. Each host gets a "main"
 * probe per port, a small state machine:
 *   143/110: connect -> greeting -> CAPABILITY -> STARTTLS -> handshake -> CAPABILITY
 *   993/995: connect -> handshake -> greeting -> CAPABILITY
 * and, once that probe starts a handshake, two more connections that offer
 * only TLS 1.0 and only TLS 1.1. At most --concurrency hosts are in flight,
 * each with one deadline for all its probes. The only commands ever sent are
 * CAPABILITY/CAPA, STARTTLS/STLS and LOGOUT/QUIT: never credentials, LOGIN or
 * AUTHENTICATE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
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
#include "base/addr.h"
#include "audit/audit.h"
#include "base/log.h"

#define MAX_PORTS	4


#define TXT		512
#define INBUF		8192		/* longest response line */

enum svc { IMAP, POP3 };
enum kind { MAIN, TLS10, TLS11 };	/* TLS10/11: handshakes capped at that version */
enum legacy { LG_UNTESTED, LG_REJECTED, LG_ACCEPTED, LG_CANT_OFFER, LG_ERROR };
enum state { S_CONNECT, S_GREETING, S_CAPA, S_STARTTLS, S_HANDSHAKE, S_DONE };
enum step { AGAIN, WAIT_IN, WAIT_OUT, DONE };
enum level { NOTE, OK, WARN, FAIL };

static const char *const state_name[] = {
	"connect", "greeting", "capabilities", "STARTTLS reply", "TLS handshake", "logout",
};
static const char *const legacy_name[] = {
	"untested", "rejected", "accepted", "not tested (this OpenSSL cannot offer it)", "error",
};
static const char *const level_name[] = { "note", "ok", "warn", "fail" };

/* What one port told us; only the main probe writes it, except legacy[]. */
struct port_res {
	uint16_t port;
	uint8_t svc;			/* enum svc */
	bool implicit;			/* TLS from the first byte (993, 995) */
	bool open;			/* TCP connect succeeded */
	bool capa_done;			/* pre-TLS capabilities known */
	bool tls_done;			/* main handshake completed */
	bool capa_tls_done;		/* capabilities after TLS known */
	bool starttls, logindisabled, auth_plain, auth_login, pop_user;
	char error[200];		/* why the main probe stopped short */
	char greeting[TXT], caps[TXT], caps_tls[TXT];
	char version[16], cipher[64];
	char subject[TXT], issuer[TXT], san[TXT], not_after[32];
	long days_left;
	long verify;			/* X509_V_OK or the chain error */
	bool name_ok;
	uint8_t legacy[2];		/* enum legacy: TLS 1.0, TLS 1.1 */
	char legacy_why[2][200];
};

struct probe;

struct host {
	char name[256];			/* as given, or the address */
	char addr[ADDR_STRLEN];
	struct sockaddr_storage sa;
	socklen_t salen;
	bool named;			/* given by name or as one address, not a CIDR member */
	bool by_ip;			/* check the certificate's IP SANs, send no SNI */
	uint64_t deadline;		/* ms, CLOCK_MONOTONIC */
	struct port_res ports[MAX_PORTS];
	int nports;
	struct probe *probes[MAX_PORTS * 3];
	int nprobes, live;
};

struct probe {
	struct host *h;
	struct port_res *r;
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

/* A command-line target: one address, or a range counted from addr. */
struct target {
	char name[256];
	uint8_t addr[16];		/* struct ig_prefix layout */
	uint64_t count, next;
	uint16_t port;			/* 0: the default ports */
	bool named, by_ip;
};

struct reason {
	int level;
	char text[240];
};

struct audit {
	struct audit_opts o;
	SSL_CTX *ctx, *legacy_ctx[2];
	struct target *t;
	int nt, ti;
	uint64_t total;
	struct host **live;
	int nlive;
	int epfd;
	unsigned int n_hosts, n_by_level[FAIL + 1], n_silent;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* Server text goes to a terminal and into JSON: printable ASCII only. */
static void copy_clean(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i;

	for (i = 0; i < srclen && i + 1 < dstlen && src[i]; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
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
	copy_clean(dst + n, dstlen - n, s, strlen(s));
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

static const char *ssl_err(void)
{
	static char buf[120];
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, sizeof(buf), "%s", r ? r : "unknown TLS error");
	ERR_clear_error();
	return buf;
}

static const char *svc_name(const struct port_res *r)
{
	return r->svc == POP3 ? (r->implicit ? "pop3s" : "pop3") : (r->implicit ? "imaps" : "imap");
}

/* ---- probes ------------------------------------------------------------ */

static int probe_fail(struct probe *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record why a probe stopped and end it. Legacy probes only keep a state. */
static int probe_fail(struct probe *p, const char *fmt, ...)
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

static void probe_end(struct probe *p)
{
	struct host *h = p->h;

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

static void probe_start(struct audit *a, struct host *h, struct port_res *r, int kind)
{
	struct probe *p = calloc(1, sizeof(*p));
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

static ssize_t xio(struct probe *p, void *buf, size_t len, bool wr)
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

static int send_cmd(struct probe *p, int next, const char *cmd)
{
	p->outlen = snprintf(p->out, sizeof(p->out), "%s", cmd);
	p->outoff = 0;
	p->st = next;
	return AGAIN;
}

/* Clean end: say goodbye (flushed by do_io), then close. */
static int finish(struct probe *p)
{
	return send_cmd(p, S_DONE, p->r->svc == POP3 ? "QUIT\r\n" : "a9 LOGOUT\r\n");
}

static int start_tls(struct probe *p)
{
	/* Bytes after the OK came before TLS: never hand them to the TLS layer. */
	p->inlen = 0;
	p->st = S_HANDSHAKE;
	return AGAIN;
}

/* Pre-TLS capabilities are known: judge them, then STARTTLS if offered. */
static int capa_end(struct probe *p)
{
	struct port_res *r = p->r;

	if (p->ssl) {
		r->capa_tls_done = true;
		return finish(p);
	}
	if (r->svc == IMAP) {
		r->starttls = has_token(r->caps, "STARTTLS");
		r->logindisabled = has_token(r->caps, "LOGINDISABLED");
		r->auth_plain = has_token(r->caps, "AUTH=PLAIN");
		r->auth_login = has_token(r->caps, "AUTH=LOGIN");
	}
	r->capa_done = true;
	if (!r->starttls)
		return finish(p);
	return send_cmd(p, S_STARTTLS, r->svc == POP3 ? "STLS\r\n" : "a2 STARTTLS\r\n");
}

/* One POP3 CAPA line (RFC 2449): judged line by line, kept space-joined. */
static void pop3_capa(struct probe *p, const char *line)
{
	struct port_res *r = p->r;

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

static int on_capa(struct probe *p, const char *line)
{
	const char *tag = p->ssl ? "a3 " : "a1 ";
	struct port_res *r = p->r;

	if (r->svc == POP3) {
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
		copy_clean(p->ssl ? r->caps_tls : r->caps, TXT, line + 13, strlen(line + 13));
		return AGAIN;
	}
	if (strncmp(line, tag, 3))
		return AGAIN;	/* another untagged line */
	if (strncasecmp(line + 3, "OK", 2))
		return probe_fail(p, "CAPABILITY refused: %.80s", line);
	return capa_end(p);
}

static int on_line(struct probe *p, const char *line)
{
	struct port_res *r = p->r;
	bool pop3 = r->svc == POP3, ok;

	switch (p->st) {
	case S_GREETING:
		ok = pop3 ? !strncmp(line, "+OK", 3) :
		     !strncasecmp(line, "* OK", 4) || !strncasecmp(line, "* PREAUTH", 9);
		if (!ok)
			return probe_fail(p, "unexpected greeting: %.80s", line);
		if (p->kind == MAIN)
			copy_clean(r->greeting, sizeof(r->greeting), line, strlen(line));
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
static int do_io(struct probe *p)
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

static int do_connect(struct probe *p)
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
	if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_get_mem_data(b, &data);
		copy_clean(out, len, data, n);
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
static void record_cert(struct probe *p)
{
	X509 *cert = SSL_get1_peer_certificate(p->ssl);
	struct port_res *r = p->r;
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

static int handshake_done(struct probe *p)
{
	struct port_res *r = p->r;

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
	return send_cmd(p, S_CAPA, r->svc == POP3 ? "CAPA\r\n" : "a3 CAPABILITY\r\n");
}

/* Legacy probes: did the server's ServerHello pick the one version we offer?
 * That is "accepted" even if our own side then fails the handshake. */
static void on_tls_msg(int write_p, int version, int content_type, const void *buf,
		       size_t len, SSL *ssl, void *arg)
{
	const unsigned char *m = buf;
	struct probe *p = arg;
	int want = p->kind == TLS10 ? TLS1_VERSION : TLS1_1_VERSION;

	(void)version; (void)ssl;
	/* type(1) length(3) server_version(2) */
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len >= 6 &&
	    m[0] == SSL3_MT_SERVER_HELLO && (m[4] << 8 | m[5]) == want)
		p->hello_ok = true;
}

static int handshake_failed(struct probe *p, int e)
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

static int do_handshake(struct audit *a, struct probe *p)
{
	struct host *h = p->h;
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
static void probe_run(struct audit *a, struct probe *p)
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

/* ---- verdicts ----------------------------------------------------------- */

static void add_reason(struct reason *rs, int *n, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_reason(struct reason *rs, int *n, int level, const char *fmt, ...)
{
	va_list ap;

	if (*n >= 32)
		return;
	rs[*n].level = level;
	va_start(ap, fmt);
	vsnprintf(rs[*n].text, sizeof(rs[0].text), fmt, ap);
	va_end(ap);
	(*n)++;
}

#define REASON(lvl, fmt, ...) add_reason(rs, n, lvl, "%u/%s: " fmt, r->port, svc_name(r), ##__VA_ARGS__)

/* Before TLS on 143/110: can a password cross the wire in the clear? */
static void judge_plain(const struct port_res *r, struct reason *rs, int *n)
{
	bool pop3 = r->svc == POP3;
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

static void judge_tls(const struct audit *a, const struct host *h, const struct port_res *r,
		      struct reason *rs, int *n)
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
		REASON(FAIL, "certificate chain does not verify: %s",
		       X509_verify_cert_error_string(r->verify));
	if (!r->name_ok)
		REASON(FAIL, "certificate does not match %s", h->by_ip ? h->addr : h->name);
	if (r->days_left < 0)
		REASON(FAIL, "certificate expired %ld day(s) ago", -r->days_left);
	else if (r->days_left < a->o.warn_days)
		REASON(WARN, "certificate expires in %ld day(s)", r->days_left);
	if (!r->capa_tls_done)
		REASON(WARN, "no capabilities after TLS: %s", r->error[0] ? r->error : "?");
}

/* All reasons for a host; returns the verdict (the worst level, at least OK). */
static int judge(const struct audit *a, const struct host *h, struct reason *rs, int *n)
{
	bool any_open = false;
	int level = OK;

	*n = 0;
	for (int i = 0; i < h->nports; i++) {
		const struct port_res *r = &h->ports[i];

		if (!r->open)
			continue;
		any_open = true;
		if (!r->implicit)
			judge_plain(r, rs, n);
		if (r->implicit || r->starttls)
			judge_tls(a, h, r, rs, n);
	}
	if (!any_open && h->named)
		add_reason(rs, n, WARN, "no %s port open (%s)", a->o.pop3 ? "IMAP/POP3" : "IMAP",
			   h->ports[0].error[0] ? h->ports[0].error : "no answer");
	for (int i = 0; i < *n; i++)
		if (rs[i].level > level)
			level = rs[i].level;
	return level;
}

/* ---- output ------------------------------------------------------------- */

static void print_port_text(const struct port_res *r)
{
	static const char *const yn[] = { "no", "yes" };
	char label[24];

	snprintf(label, sizeof(label), "%u/%s", r->port, svc_name(r));
	if (!r->open) {
		printf("  %-10s closed (%s)\n", label, r->error[0] ? r->error : "no answer");
		return;
	}
	printf("  %-10s open\n", label);
	if (r->greeting[0])
		printf("    greeting      %s\n", r->greeting);
	if (!r->implicit && r->capa_done) {
		printf("    capabilities  %s\n", r->caps);
		if (r->svc == POP3)
			printf("    before TLS    STLS %s, USER %s, SASL PLAIN %s\n", yn[r->starttls],
			       yn[r->pop_user], yn[r->auth_plain]);
		else
			printf("    before TLS    STARTTLS %s, LOGINDISABLED %s, AUTH=PLAIN %s\n",
			       yn[r->starttls], yn[r->logindisabled], yn[r->auth_plain]);
	}
	if (!r->tls_done)
		return;
	printf("    TLS           %s %s; TLS 1.0 %s; TLS 1.1 %s\n", r->version, r->cipher,
	       legacy_name[r->legacy[0]], legacy_name[r->legacy[1]]);
	if (r->capa_tls_done)
		printf("    after TLS     %s\n", r->caps_tls);
	printf("    certificate   %s\n", r->subject);
	printf("      SAN         %s\n", r->san[0] ? r->san : "(none)");
	printf("      issuer      %s\n", r->issuer);
	printf("      expires     %s (%ld days)\n", r->not_after, r->days_left);
	printf("      chain       %s\n", r->verify == X509_V_OK ? "verified" :
	       X509_verify_cert_error_string(r->verify));
	printf("      name        %s\n", r->name_ok ? "matches" : "does NOT match");
}

static void print_host_text(const struct host *h, int level, const struct reason *rs, int n)
{
	if (strcmp(h->name, h->addr))
		printf("%s (%s): %s\n", h->name, h->addr, level_name[level]);
	else
		printf("%s: %s\n", h->addr, level_name[level]);
	for (int i = 0; i < n; i++)
		printf("  %-4s  %s\n", level_name[rs[i].level], rs[i].text);
	for (int i = 0; i < h->nports; i++)
		print_port_text(&h->ports[i]);
	fflush(stdout);
}

/* "A B C" -> ["A","B","C"] */
static void json_words(const char *s)
{
	char w[TXT];
	int n, first = 1;

	putchar('[');
	while (sscanf(s, " %511s%n", w, &n) == 1) {
		printf(first ? "" : ",");
		json_str(stdout, w);
		s += n;
		first = 0;
	}
	putchar(']');
}

static void json_kv(const char *key, const char *val, bool comma)
{
	printf("\"%s\":", key);
	json_str(stdout, val);
	if (comma)
		putchar(',');
}

static void print_port_json(const struct port_res *r)
{
	static const char *const tf[] = { "false", "true" };

	printf("{\"port\":%u,\"service\":\"%s\",\"open\":%s,", r->port, svc_name(r), tf[r->open]);
	json_kv("error", r->error, true);
	json_kv("greeting", r->greeting, true);
	printf("\"capabilities\":");
	json_words(r->caps);
	printf(",\"starttls\":%s,\"logindisabled\":%s,\"auth_plain\":%s,\"auth_login\":%s,"
	       "\"user\":%s,\"tls\":", tf[r->starttls], tf[r->logindisabled], tf[r->auth_plain],
	       tf[r->auth_login], tf[r->pop_user]);
	if (!r->tls_done) {
		printf("null}");
		return;
	}
	putchar('{');
	json_kv("version", r->version, true);
	json_kv("cipher", r->cipher, true);
	json_kv("tls1_0", legacy_name[r->legacy[0]], true);
	json_kv("tls1_1", legacy_name[r->legacy[1]], true);
	printf("\"capabilities\":");
	json_words(r->caps_tls);
	printf(",\"cert\":{");
	json_kv("subject", r->subject, true);
	json_kv("san", r->san, true);
	json_kv("issuer", r->issuer, true);
	json_kv("not_after", r->not_after, true);
	printf("\"days_left\":%ld,\"chain_ok\":%s,", r->days_left, tf[r->verify == X509_V_OK]);
	json_kv("chain_error", r->verify == X509_V_OK ? "" : X509_verify_cert_error_string(r->verify),
		true);
	printf("\"name_ok\":%s}}}", tf[r->name_ok]);
}

static void print_host_json(const struct host *h, int level, const struct reason *rs, int n)
{
	putchar('{');
	json_kv("host", h->name, true);
	json_kv("address", h->addr, true);
	json_kv("verdict", level_name[level], false);
	printf(",\"reasons\":[");
	for (int i = 0; i < n; i++) {
		printf("%s{", i ? "," : "");
		json_kv("level", level_name[rs[i].level], true);
		json_kv("text", rs[i].text, false);
		putchar('}');
	}
	printf("],\"ports\":[");
	for (int i = 0; i < h->nports; i++) {
		printf(i ? "," : "");
		print_port_json(&h->ports[i]);
	}
	printf("]}\n");
	fflush(stdout);
}

static void host_report(struct audit *a, struct host *h)
{
	struct reason rs[32];
	bool any_open = false;
	int n, level;

	for (int i = 0; i < h->nports; i++)
		any_open |= h->ports[i].open;
	level = judge(a, h, rs, &n);
	a->n_hosts++;
	/* A CIDR sweep is mostly empty addresses: count them, print them with -v. */
	if (!any_open && !h->named) {
		a->n_silent++;
		if (log_get_level() < LL_DEBUG)
			return;
	} else {
		a->n_by_level[level]++;
	}
	if (a->o.json)
		print_host_json(h, level, rs, n);
	else
		print_host_text(h, level, rs, n);
}

/* ---- targets ------------------------------------------------------------ */

static void to_sockaddr(const uint8_t addr[16], struct host *h)
{
	memset(&h->sa, 0, sizeof(h->sa));
	if (addr_is_v4(addr)) {
		struct sockaddr_in *s = (struct sockaddr_in *)&h->sa;

		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, addr + 12, 4);
		h->salen = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->sa;

		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, addr, 16);
		h->salen = sizeof(*s);
	}
}

static int push_target(struct audit *a, const struct target *t)
{
	struct target *nt = realloc(a->t, (a->nt + 1) * sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	a->t = nt;
	a->t[a->nt++] = *t;
	a->total += t->count;
	return 0;
}

/* "10.0.0.0/24": every address (IPv4 without network and broadcast). */
static int add_cidr(struct audit *a, const char *arg)
{
	struct target t = { .next = 0 };
	struct ig_prefix pfx;
	unsigned int bits;

	if (addr_parse(arg, &pfx, true)) {
		pr_warn("Couldn't parse target '%s': not an address or CIDR", arg);
		return -EINVAL;
	}
	bits = 128 - pfx.plen;
	if (bits > 24) {
		pr_warn("Couldn't expand '%s': 2^%u addresses; not even --force goes past "
			"a /8's worth (%u)", arg, bits, FORCE_LIMIT);
		return -E2BIG;
	}
	memcpy(t.addr, pfx.addr, 16);
	t.count = 1ULL << bits;
	if (addr_is_v4(pfx.addr) && bits >= 2) {
		t.addr[15] |= 1;
		t.count -= 2;
	}
	t.named = t.count == 1;
	t.by_ip = true;
	addr_format_host(t.addr, t.name);
	return push_target(a, &t);
}

/* HOST, HOST:PORT, [V6]:PORT, or a bare IPv6 address. */
static int add_host(struct audit *a, const char *arg)
{
	struct target t = { .count = 1, .named = true };
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	const char *port = NULL, *colon = strchr(arg, ':');
	char *end;
	long v;
	int err;

	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');

		if (!close || (close[1] && close[1] != ':')) {
			pr_warn("Couldn't parse target '%s': expected [IPV6]:PORT", arg);
			return -EINVAL;
		}
		snprintf(t.name, sizeof(t.name), "%.*s", (int)(close - arg - 1), arg + 1);
		port = close[1] ? close + 2 : NULL;
	} else if (colon && !strchr(colon + 1, ':')) {
		snprintf(t.name, sizeof(t.name), "%.*s", (int)(colon - arg), arg);
		port = colon + 1;
	} else {
		snprintf(t.name, sizeof(t.name), "%s", arg);
	}
	if (port) {
		errno = 0;
		v = strtol(port, &end, 10);
		if (errno || end == port || *end || v < 1 || v > 65535) {
			pr_warn("Couldn't parse target '%s': invalid port '%s'", arg, port);
			return -EINVAL;
		}
		t.port = v;
	}
	if (!addr_parse_host(t.name, strlen(t.name), t.addr)) {
		t.by_ip = true;
		return push_target(a, &t);
	}
	/* A name: resolved now, before the event loop (getaddrinfo blocks). */
	err = getaddrinfo(t.name, NULL, &hints, &res);
	if (err) {
		pr_warn("Couldn't resolve '%s': %s", t.name, gai_strerror(err));
		return -ENOENT;
	}
	for (ai = res; ai && !err; ai = ai->ai_next) {
		char buf[INET6_ADDRSTRLEN];
		const void *sa = ai->ai_family == AF_INET ?
			(void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr :
			(void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;

		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    inet_ntop(ai->ai_family, sa, buf, sizeof(buf)) &&
		    !addr_parse_host(buf, strlen(buf), t.addr))
			err = push_target(a, &t);
	}
	freeaddrinfo(res);
	return err;
}

/* The next address to audit, as a new host; NULL when all are done. */
static struct host *next_host(struct audit *a)
{
	static const uint16_t ports[] = { 143, 993, 110, 995 };
	struct target *t;
	struct host *h;
	uint8_t addr[16];
	uint64_t carry;

	while (a->ti < a->nt && a->t[a->ti].next >= a->t[a->ti].count)
		a->ti++;
	if (a->ti == a->nt)
		return NULL;
	t = &a->t[a->ti];
	/* addr + next, as a 128-bit big-endian sum. */
	memcpy(addr, t->addr, 16);
	carry = t->next++;
	for (int i = 15; i >= 0 && carry; i--) {
		carry += addr[i];
		addr[i] = carry & 0xff;
		carry >>= 8;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	addr_format_host(addr, h->addr);
	snprintf(h->name, sizeof(h->name), "%s", t->count == 1 ? t->name : h->addr);
	h->named = t->named;
	h->by_ip = t->by_ip;
	to_sockaddr(addr, h);
	for (int i = 0; i < (t->port ? 1 : a->o.pop3 ? 4 : 2); i++) {
		struct port_res *r = &h->ports[h->nports++];

		r->port = t->port ? t->port : ports[i];
		r->svc = r->port == 110 || r->port == 995 ? POP3 : IMAP;
		r->implicit = r->port == 993 || r->port == 995;
	}
	return h;
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
		struct host *h = a->live[i];

		for (int j = 0; now >= h->deadline && j < h->nprobes; j++) {
			struct probe *p = h->probes[j];

			if (p) {
				probe_fail(p, "timeout (%s)", state_name[p->st]);
				probe_end(p);
			}
		}
		if (h->live)
			continue;
		host_report(a, h);
		free(h);
		a->live[i--] = a->live[--a->nlive];
	}
}

static int run(struct audit *a)
{
	struct epoll_event evs[64];
	struct host *h;
	int n;

	a->live = calloc(a->o.concurrency, sizeof(*a->live));
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!a->live || a->epfd < 0) {
		pr_warn("Couldn't set up the event loop: %s", strerror(errno));
		return -errno;
	}
	for (;;) {
		while (a->nlive < a->o.concurrency && (h = next_host(a))) {
			h->deadline = now_ms() + a->o.timeout_ms;
			a->live[a->nlive++] = h;
			for (int i = 0; i < h->nports; i++)
				probe_start(a, h, &h->ports[i], MAIN);
		}
		if (!a->nlive)
			break;
		n = epoll_wait(a->epfd, evs, 64, wait_ms(a));
		if (n < 0 && errno != EINTR) {
			pr_warn("Couldn't wait for sockets: %s", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n; i++)
			probe_run(a, evs[i].data.ptr);
		reap(a);
	}
	return 0;
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
	int err = 0;

	for (int i = 0; i < ntargets && !err; i++)
		err = strchr(targets[i], '/') ? add_cidr(&a, targets[i]) : add_host(&a, targets[i]);
	if (!err && a.total > (a.o.force ? FORCE_LIMIT : CIDR_LIMIT)) {
		pr_warn("Couldn't expand the targets: %llu addresses, more than %u%s",
			(unsigned long long)a.total, a.o.force ? FORCE_LIMIT : CIDR_LIMIT,
			a.o.force ? " (a /8's worth), even with --force" :
			"; narrow the range or pass --force");
		err = -E2BIG;
	}
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
	if (a.o.json)
		printf("{\"summary\":{\"hosts\":%u,\"ok\":%u,\"warn\":%u,\"fail\":%u,\"no_service\":%u}}\n",
		       a.n_hosts, a.n_by_level[OK], a.n_by_level[WARN], a.n_by_level[FAIL], a.n_silent);
	else
		printf("audited %u address%s: %u ok, %u warn, %u fail, %u with no IMAP port open\n",
		       a.n_hosts, a.n_hosts == 1 ? "" : "es", a.n_by_level[OK], a.n_by_level[WARN],
		       a.n_by_level[FAIL], a.n_silent);
	/* Exit 1 for findings too: cron mails whatever needs a look. */
	if (!err && (a.n_by_level[WARN] || a.n_by_level[FAIL]))
		err = -EPROTO;
out:
	SSL_CTX_free(a.ctx);
	SSL_CTX_free(a.legacy_ctx[0]);
	SSL_CTX_free(a.legacy_ctx[1]);
	if (a.epfd >= 0)
		close(a.epfd);
	free(a.live);
	free(a.t);
	return err;
}

