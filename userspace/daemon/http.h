/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HTTP servers on libmicrohttpd (MHD), driven by the daemon's one epoll loop:
 * no threads, nothing that blocks. The layer accepts connections itself and
 * refuses, counted, those over the server's cap or over the cap per client
 * address; MHD parses what it hands over; every request has a deadline; a
 * complete request goes to the handler its route names (exact path, allowed
 * method). Handlers get a bounded body and return status, content type and
 * body. The layer answers 404, 405 and 413 itself and never calls a handler
 * for a request it refused; MHD answers 400, 414 and 431 itself (counted).
 *
 * Loop contract: http_open() adds its fds to epfd, each tagged with a struct
 * ep_src of type SRC_HTTP whose ptr is the server. Whenever epoll reports one
 * of them, call http_ready(server). Handlers run inside http_ready(), on the
 * loop's thread, and must not block. Responses are HTTP/1.0 (the metrics
 * endpoint's contract) unless the server sets http11; a connection stays
 * open for another request only when the client asks for keep-alive (an
 * HTTP/1.1 client does unless it says "Connection: close").
 */
#ifndef IMAPGUARD_HTTP_H
#define IMAPGUARD_HTTP_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

/* Methods a route accepts, as a mask. HEAD gets GET's answer without body. */
enum { HTTP_GET = 1 << 0, HTTP_HEAD = 1 << 1, HTTP_POST = 1 << 2 };

/* What a handler is given; valid during the call only. */
struct http_request {
	unsigned int method;		/* one HTTP_* bit */
	const char *url;		/* the path, without the query string */
	const char *body;		/* body_len bytes and a NUL (may hold NULs) */
	size_t body_len;		/* at most the route's max_body */
	const struct sockaddr *peer;	/* NULL when the peer is not IP */
	void *conn;			/* the layer's: for http_header(), http_query() */
};

/* A request header (name case-insensitive) or a query-string argument of
 * req, or NULL; valid during the handler call only. */
const char *http_header(const struct http_request *req, const char *name);
const char *http_query(const struct http_request *req, const char *name);

/* What a handler returns. status is preset to 200, the rest to NULL/0. */
struct http_reply {
	unsigned int status;		/* 200..599 */
	const char *content_type;	/* static string, or NULL for none */
	char *body;			/* malloc()ed; the layer frees it, also on error */
	size_t body_len;
};

/* 0 with *rep filled in, or -errno: the client gets a 500 instead. */
typedef int (*http_handler_fn)(void *ctx, const struct http_request *req,
			       struct http_reply *rep);

struct http_route {
	const char *path;		/* matched exactly */
	unsigned int methods;		/* HTTP_* mask */
	size_t max_body;		/* larger bodies get 413; 0: none allowed */
	http_handler_fn fn;
	void *ctx;
};

struct http_conf {
	const char *name;		/* server="" label of the metrics */
	const char *listen;		/* "ADDR:PORT" or "[ADDR]:PORT"; NULL: no
					 * listener, see http_add_conn() */
	unsigned int max_conns;		/* open connections at most (>= 1) */
	unsigned int max_per_ip;	/* per IPv4 address or IPv6 /64; 0: no cap */
	unsigned int timeout_s;		/* a request must arrive whole within this
					 * of the connection (or of the previous
					 * answer); idle connections close after it */
	size_t max_request;		/* memory per connection (MHD's): the request
					 * line and headers must fit in it (414, 431) */
	bool http11;			/* answer HTTP/1.1 (keep-alive by default) */
	const struct http_route *routes;	/* borrowed: must outlive the server */
	size_t nroutes;
};

/* Why a connection or request was refused (imapguard_http_refused_total). */
enum http_refusal {
	HTTP_REF_LIMIT,		/* server at max_conns: 503, closed */
	HTTP_REF_PER_IP,	/* that address at max_per_ip: 503, closed */
	HTTP_REF_TIMEOUT,	/* no whole request within timeout_s, or idle */
	HTTP_REF_TOO_LARGE,	/* 413 (body), 414 (URL), 431 (headers) */
	HTTP_REF_BAD_REQUEST,	/* 400, 505 and other errors MHD answers */
	HTTP_REF_METHOD,	/* 405 */
	HTTP_REF_NOT_FOUND,	/* 404 */
	HTTP_REF_MAX
};

struct http_stats {
	unsigned int conns;		/* open now */
	uint64_t accepted;		/* connections handed to MHD */
	uint64_t requests;		/* requests a handler answered */
	uint64_t refused[HTTP_REF_MAX];
};

struct http_server;

/* Start a server: listen (if conf->listen), start MHD, add the listen socket,
 * MHD's epoll fd and a timer to epfd. conf is copied, its strings and routes
 * are not. 0, or -EINVAL (bad conf or address), -errno from socket/bind/
 * listen (logged with the address), -ENOMEM. */
int http_open(struct http_server **out, const struct http_conf *conf, int epfd);
/* Accept what is pending, close what is past its deadline, let MHD read,
 * parse, call handlers and write, re-arm the timer. */
void http_ready(struct http_server *s);
/* Hand over a connected socket (the server owns it from here, also on
 * failure). The caps apply as for accepted ones. 0, -EMFILE (refused by a
 * cap, counted), or -errno from MHD. */
int http_add_conn(struct http_server *s, int fd, const struct sockaddr *sa, socklen_t len);
void http_get_stats(const struct http_server *s, struct http_stats *st);
const char *http_refusal_name(enum http_refusal r);
/* Prometheus lines for these servers (NULL entries are skipped), each
 * family's HELP/TYPE once. */
void http_metrics(FILE *f, struct http_server *const *servers, size_t n);
/* Close every connection (handlers are not called again), the listener and
 * the timer. NULL is a no-op. */
void http_close(struct http_server *s);

#endif
