// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP servers on libmicrohttpd in external epoll mode (see http.h). We own
 * the listen socket so that a refusal is ours to answer and count; MHD owns
 * each accepted socket from MHD_add_connection() on. Deadlines are ours too:
 * MHD's idle timeout alone lets a client that sends a byte every few seconds
 * hold a slot for ever, so a connection past its deadline is shut down and
 * MHD, reading end-of-file, closes it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <netinet/in.h>
#include <unistd.h>
#include <linux/tcp.h>		/* tcp_info with tcpi_bytes_sent (glibc's lacks it) */
#include <microhttpd.h>
#include "base/epsrc.h"
#include "base/log.h"
#include "base/prom.h"
#include "daemon/http.h"
#include "fastpath/lists.h"
#include "policy/policy.h"

#define ACCEPT_BATCH	64	/* accepts per wake-up: a flood cannot hog the loop */
#define LISTEN_BACKLOG	64
#define ACCEPT_PAUSE_NS	1000000000ULL	/* after EMFILE: the backlog waits, we do not spin */

/* One open connection (MHD's socket context). */
struct http_conn {
	struct http_conn *next, *prev;
	int fd;
	bool keyed;		/* an IP peer: key is its address or /64 */
	uint8_t key[16];
	uint64_t deadline;	/* mono ns; 0 while a whole request is answered */
	bool counted;		/* its refusal is counted already */
};

/* One request being received (MHD's con_cls). */
struct http_rq {
	const struct http_route *route;
	unsigned int method;
	char *body;
	size_t len;
};

struct http_server {
	struct http_conf conf;
	struct MHD_Daemon *mhd;
	int epfd, listenfd, timerfd, mhdfd;
	struct ep_src listen_src, timer_src, mhd_src;
	struct http_conn *conns;
	struct http_stats st;
	uint64_t accept_paused;	/* mono ns the listener left epoll; 0: in it */
	uint64_t armed;		/* mono ns the timer is set for; 0: disarmed */
};

/* con_cls of a request refused at its headers: its body, if any, is dropped. */
static struct http_rq refused_rq;

static const char *const refusal_names[HTTP_REF_MAX] = {
	[HTTP_REF_LIMIT] = "limit", [HTTP_REF_PER_IP] = "per_ip",
	[HTTP_REF_TIMEOUT] = "timeout", [HTTP_REF_TOO_LARGE] = "too_large",
	[HTTP_REF_BAD_REQUEST] = "bad_request", [HTTP_REF_METHOD] = "method",
	[HTTP_REF_NOT_FOUND] = "not_found",
};

const char *http_refusal_name(enum http_refusal r)
{
	return r < HTTP_REF_MAX ? refusal_names[r] : "?";
}

/* ---- connections --------------------------------------------------------- */

/* The per-address key: IPv4 (also IPv4-mapped) by address, IPv6 by /64, as
 * bans are. false for a peer that is not IP. */
static bool peer_key(const struct sockaddr *sa, socklen_t len, uint8_t key[16])
{
	const struct sockaddr_in6 *s6 = (const void *)sa;
	const struct sockaddr_in *s4 = (const void *)sa;

	memset(key, 0, 16);
	if (sa && sa->sa_family == AF_INET && len >= sizeof(*s4)) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &s4->sin_addr, 4);
		return true;
	}
	if (!sa || sa->sa_family != AF_INET6 || len < sizeof(*s6))
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		memcpy(key, &s6->sin6_addr, 16);
	else
		memcpy(key, &s6->sin6_addr, 8);
	return true;
}

static unsigned int conns_from(const struct http_server *s, const uint8_t key[16])
{
	unsigned int n = 0;

	for (const struct http_conn *c = s->conns; c; c = c->next)
		n += c->keyed && !memcmp(c->key, key, 16);
	return n;
}

static void refuse(struct http_server *s, enum http_refusal why)
{
	s->st.refused[why]++;
}

/* Refused before MHD saw it: a short answer, then the close. */
static void refuse_socket(struct http_server *s, int fd, enum http_refusal why)
{
	static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n";

	refuse(s, why);
	if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		pr_debug("http %s: refusal not sent: %s", s->conf.name, strerror(errno));
	shutdown(fd, SHUT_WR);
	close(fd);
}

int http_add_conn(struct http_server *s, int fd, const struct sockaddr *sa, socklen_t len)
{
	uint8_t key[16];

	if (s->st.conns >= s->conf.max_conns) {
		refuse_socket(s, fd, HTTP_REF_LIMIT);
		return -EMFILE;
	}
	if (s->conf.max_per_ip && peer_key(sa, len, key) &&
	    conns_from(s, key) >= s->conf.max_per_ip) {
		refuse_socket(s, fd, HTTP_REF_PER_IP);
		return -EMFILE;
	}
	/* MHD closes the socket itself when it fails; ENFILE is its own cap,
	 * which ours keeps from being reached. */
	if (MHD_add_connection(s->mhd, fd, sa, len) != MHD_YES) {
		int err = errno ? -errno : -EIO;

		refuse(s, err == -ENFILE ? HTTP_REF_LIMIT : HTTP_REF_BAD_REQUEST);
		pr_debug("http %s: connection not added: %s", s->conf.name, strerror(-err));
		return err;
	}
	s->st.accepted++;
	return 0;
}

/* A bad request line MHD closes on without a word, and without telling us:
 * the only trace is a TCP connection that brought bytes and got none back.
 * Its state says nothing: with a FIN first it is in FIN_WAIT, but MHD may
 * close with bytes unread, and then the kernel resets it (CLOSE). */
static bool closed_silently(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    len < offsetof(struct tcp_info, tcpi_bytes_sent) + sizeof(ti.tcpi_bytes_sent))
		return false;
	return ti.tcpi_bytes_received && !ti.tcpi_bytes_sent;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;
	struct http_conn *c = *socket_ctx;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return;	/* then it has no deadline but MHD's idle timeout */
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		/* MHD copied the address with its length; an IP one is whole. */
		c->keyed = ci && peer_key(ci->client_addr, sizeof(struct sockaddr_in6), c->key);
		c->deadline = mono_ns() + s->conf.timeout_s * 1000000000ULL;
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->st.conns++;
		*socket_ctx = c;
		return;
	}
	if (!c)
		return;
	/* MHD's own idle timeout came first (it runs from the last byte, ours
	 * from the connection): still a connection that sent no request. */
	if (!c->counted && c->deadline && mono_ns() >= c->deadline)
		refuse(s, HTTP_REF_TIMEOUT);
	else if (!c->counted && closed_silently(c->fd))
		refuse(s, HTTP_REF_BAD_REQUEST);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->st.conns--;
	free(c);
	*socket_ctx = NULL;
}

static struct http_conn *conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_conn *c = conn_of(mc);
	struct http_rq *rq = *con_cls;

	if (rq && rq != &refused_rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
	if (!c)
		return;
	if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED && !c->counted) {
		refuse(s, HTTP_REF_TIMEOUT);	/* a response the client did not read */
		c->counted = true;
	}
	/* A kept-alive connection has as long for its next request. */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		c->deadline = mono_ns() + s->conf.timeout_s * 1000000000ULL;
}

/* Shut down what is past its deadline; MHD reads end-of-file and closes it.
 * This also ends connections whose client closed its half together with its
 * last bytes: libmicrohttpd 0.9.75 in epoll mode takes a short read for an
 * empty socket and misses that end-of-file (fixed in its 1.0.0). */
static void expire(struct http_server *s)
{
	uint64_t now = mono_ns();

	for (struct http_conn *c = s->conns; c; c = c->next) {
		if (!c->deadline || now < c->deadline || c->counted)
			continue;
		refuse(s, HTTP_REF_TIMEOUT);
		c->counted = true;
		c->deadline = 0;
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	}
}

/* ---- requests ------------------------------------------------------------ */

static unsigned int method_bit(const char *m)
{
	if (!strcmp(m, MHD_HTTP_METHOD_GET))
		return HTTP_GET;
	if (!strcmp(m, MHD_HTTP_METHOD_HEAD))
		return HTTP_HEAD;
	if (!strcmp(m, MHD_HTTP_METHOD_POST))
		return HTTP_POST;
	return 0;
}

/* Queue an answer; takes body (malloc()ed or NULL). close: no keep-alive,
 * for every refusal, so that nothing more is read from such a client. */
static enum MHD_Result answer_h(const struct http_server *s, struct MHD_Connection *mc,
				unsigned int status, const char *ctype, char *body, size_t len,
				const char *allow, bool close, char *headers);

static enum MHD_Result answer(const struct http_server *s, struct MHD_Connection *mc,
			      unsigned int status, const char *ctype, char *body, size_t len,
			      const char *allow, bool close)
{
	return answer_h(s, mc, status, ctype, body, len, allow, close, NULL);
}

/* "Name: value\n" lines onto r; false when one does not take. */
static bool add_headers(struct MHD_Response *r, char *lines)
{
	char *save = NULL, *colon;

	for (char *l = strtok_r(lines, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		colon = strstr(l, ": ");
		if (!colon)
			return false;
		*colon = '\0';
		if (MHD_add_response_header(r, l, colon + 2) != MHD_YES)
			return false;
	}
	return true;
}

/* answer() with a handler's extra headers (takes them, malloc()ed or NULL). */
static enum MHD_Result answer_h(const struct http_server *s, struct MHD_Connection *mc,
				unsigned int status, const char *ctype, char *body, size_t len,
				const char *allow, bool close, char *headers)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) :
		   MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(body);
		free(headers);
		return MHD_NO;	/* MHD closes the connection */
	}
	/* HTTP/1.0 status lines, as the metrics endpoint always answered;
	 * Dovecot's policy client keeps HTTP/1.1 connections alive. */
	if (!s->conf.http11)
		MHD_set_response_options(r, MHD_RF_HTTP_1_0_SERVER, MHD_RO_END);
	if ((ctype && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) ||
	    (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES) ||
	    (close && MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES) ||
	    (headers && !add_headers(r, headers))) {
		free(headers);
		MHD_destroy_response(r);
		return MHD_NO;
	}
	free(headers);
	ret = MHD_queue_response(mc, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result refuse_request(struct http_server *s, struct MHD_Connection *mc,
				      enum http_refusal why, unsigned int status,
				      const char *allow)
{
	refuse(s, why);
	return answer(s, mc, status, NULL, NULL, 0, allow, true);
}

static const struct http_route *route_of(const struct http_server *s, const char *url)
{
	for (size_t i = 0; i < s->conf.nroutes; i++)
		if (!strcmp(s->conf.routes[i].path, url))
			return &s->conf.routes[i];
	return NULL;
}

static const char *allow_of(unsigned int methods)
{
	static const char *const v[8] = {
		"", "GET", "HEAD", "GET, HEAD", "POST", "GET, POST", "HEAD, POST",
		"GET, HEAD, POST",
	};

	return v[methods & 7];
}

/* Headers are in: route, method and declared length decide before any body
 * is read. Returns the request state, or NULL after queueing a refusal. */
static struct http_rq *begin(struct http_server *s, struct MHD_Connection *mc,
			     const char *url, const char *method, enum MHD_Result *ret)
{
	const struct http_route *rt = route_of(s, url);
	unsigned int m = method_bit(method);
	const char *cl;
	struct http_rq *rq;

	if (!rt) {
		*ret = refuse_request(s, mc, HTTP_REF_NOT_FOUND, MHD_HTTP_NOT_FOUND, NULL);
		return NULL;
	}
	if (!(m & rt->methods)) {
		*ret = refuse_request(s, mc, HTTP_REF_METHOD, MHD_HTTP_METHOD_NOT_ALLOWED,
				      allow_of(rt->methods));
		return NULL;
	}
	/* MHD has checked that a Content-Length is a number. */
	cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > rt->max_body) {
		*ret = refuse_request(s, mc, HTTP_REF_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE, NULL);
		return NULL;
	}
	rq = calloc(1, sizeof(*rq));
	if (!rq) {
		*ret = MHD_NO;
		return NULL;
	}
	rq->route = rt;
	rq->method = m;
	*ret = MHD_YES;
	return rq;
}

/* A piece of body; a chunked body that outgrows the route is cut off (MHD
 * cannot queue an answer in the middle of a body: the connection closes). */
static enum MHD_Result take_body(struct http_server *s, struct http_conn *c, struct http_rq *rq,
				 const char *data, size_t *size)
{
	char *nb;

	if (*size > rq->route->max_body - rq->len) {
		refuse(s, HTTP_REF_TOO_LARGE);
		if (c)
			c->counted = true;	/* not again as a silent close */
		return MHD_NO;
	}
	nb = realloc(rq->body, rq->len + *size + 1);
	if (!nb)
		return MHD_NO;
	memcpy(nb + rq->len, data, *size);
	rq->body = nb;
	rq->len += *size;
	rq->body[rq->len] = '\0';
	*size = 0;
	return MHD_YES;
}

static enum MHD_Result handle(struct http_server *s, struct MHD_Connection *mc, struct http_rq *rq,
			      const char *url)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct http_reply rep = { .status = MHD_HTTP_OK };
	struct http_request req = {
		.method = rq->method, .url = url, .body = rq->body ? rq->body : "",
		.body_len = rq->len, .conn = mc,
		.peer = ci && ci->client_addr &&
			(ci->client_addr->sa_family == AF_INET ||
			 ci->client_addr->sa_family == AF_INET6) ? ci->client_addr : NULL,
	};
	int err;

	s->st.requests++;
	err = rq->route->fn(rq->route->ctx, &req, &rep);
	if (err || rep.status < 200 || rep.status > 599) {
		if (!err)
			pr_warn("http %s: handler for %s returned status %u", s->conf.name, url,
				rep.status);
		free(rep.body);
		free(rep.headers);
		return answer(s, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, true);
	}
	/* A handler's refusal (4xx) closes too: nothing more is read from a
	 * client that sent a bad key or body. */
	return answer_h(s, mc, rep.status, rep.content_type, rep.body ? rep.body : NULL,
			rep.body ? rep.body_len : 0, NULL, rep.status >= 400, rep.headers);
}

const char *http_header(const struct http_request *req, const char *name)
{
	return req->conn ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *http_query(const struct http_request *req, const char *name)
{
	return req->conn ? MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_rq *rq = *con_cls;
	struct http_conn *c;
	enum MHD_Result ret;

	(void)version;
	if (!rq) {
		rq = begin(s, mc, url, method, &ret);
		*con_cls = rq ? rq : &refused_rq;
		return ret;
	}
	if (rq == &refused_rq) {
		*size = 0;
		return MHD_YES;
	}
	c = conn_of(mc);
	if (*size)
		return take_body(s, c, rq, data, size);
	/* The whole request is in: no deadline while it is answered. */
	if (c)
		c->deadline = 0;
	return handle(s, mc, rq, url);
}

/* MHD's messages go to the debug log; the errors it answers itself (it
 * tells the application nothing else about them) are counted from here,
 * the ones it does not answer in on_connection(). */
static void on_log(void *cls, const char *fmt, va_list ap)
{
	static const char err_prefix[] = "Error processing request (HTTP response code is %u";
	struct http_server *s = cls;
	char *msg = NULL;
	va_list cp;

	if (!strncmp(fmt, err_prefix, sizeof(err_prefix) - 1)) {
		unsigned int code;

		va_copy(cp, ap);
		code = va_arg(cp, unsigned int);
		va_end(cp);
		refuse(s, code == 413 || code == 414 || code == 431 ? HTTP_REF_TOO_LARGE :
			  HTTP_REF_BAD_REQUEST);
	}
	if (log_get_level() < LL_DEBUG)
		return;
	va_copy(cp, ap);
	if (vasprintf(&msg, fmt, cp) >= 0) {
		msg[strcspn(msg, "\r\n")] = '\0';
		pr_debug("http %s: %s", s->conf.name, msg);
		free(msg);
	}
	va_end(cp);
}

/* ---- the loop ------------------------------------------------------------ */

/* Out of fds: a listener left in a level-triggered epoll would wake us in a
 * loop. It sits out a second instead, its backlog waiting. */
static void pause_accept(struct http_server *s)
{
	pr_warn("http %s: accept: %s; pausing the listener for 1 s", s->conf.name,
		strerror(errno));
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listenfd, NULL);
	s->accept_paused = mono_ns();
}

static void resume_accept(struct http_server *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->listen_src };

	if (!s->accept_paused || mono_ns() - s->accept_paused < ACCEPT_PAUSE_NS)
		return;
	if (!epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listenfd, &ev))
		s->accept_paused = 0;
}

static void accept_some(struct http_server *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(ss);
		fd = accept4(s->listenfd, (struct sockaddr *)&ss, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_accept(s);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				pr_debug("http %s: accept: %s", s->conf.name, strerror(errno));
			return;
		}
		/* An answer goes out at once, not after the client's delayed
		 * ACK of a previous segment (Nagle): a policy verdict is on
		 * the path of every login. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		http_add_conn(s, fd, (struct sockaddr *)&ss, len);
	}
}

/* The next wake-up: MHD's (its idle timeouts, or 0 when it has buffered
 * work left) or the earliest deadline, whichever comes first. */
static void arm_timer(struct http_server *s)
{
	struct itimerspec its = { 0 };
	MHD_UNSIGNED_LONG_LONG ms;
	uint64_t now = mono_ns(), next = UINT64_MAX;

	if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
		next = now + (ms < UINT64_MAX / 2000000 ? ms * 1000000 : UINT64_MAX / 2);
	for (struct http_conn *c = s->conns; c; c = c->next)
		if (c->deadline && !c->counted && c->deadline < next)
			next = c->deadline;
	if (s->accept_paused && s->accept_paused + ACCEPT_PAUSE_NS < next)
		next = s->accept_paused + ACCEPT_PAUSE_NS;
	if (next != UINT64_MAX) {
		if (next <= now)
			next = now + 1;	/* 0 would disarm it */
		its.it_value.tv_sec = next / 1000000000ULL;
		its.it_value.tv_nsec = next % 1000000000ULL;
	} else {
		next = 0;
	}
	/* Most wake-ups (an answer on a kept-alive connection) leave the
	 * deadline where it was: no system call then. */
	if (next == s->armed)
		return;
	if (timerfd_settime(s->timerfd, TFD_TIMER_ABSTIME, &its, NULL))
		pr_warn("http %s: couldn't set its timer: %s", s->conf.name, strerror(errno));
	else
		s->armed = next;
}

void http_ready(struct http_server *s)
{
	uint64_t ticks;

	/* Only a timer that is due can have fired (and be readable). */
	if (s->armed && mono_ns() >= s->armed) {
		if (read(s->timerfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
			pr_debug("http %s: timer: %s", s->conf.name, strerror(errno));
		s->armed = 0;	/* fired: re-armed below whatever comes next */
	}
	if (s->listenfd >= 0) {
		struct pollfd p = { .fd = s->listenfd, .events = POLLIN };

		resume_accept(s);
		/* Any of our fds wakes us: an accept4() that finds no one
		 * still allocates a socket (a tenth of a policy request's
		 * cost), a poll() does not. */
		if (!s->accept_paused && poll(&p, 1, 0) > 0)
			accept_some(s);
	}
	expire(s);
	MHD_run(s->mhd);
	arm_timer(s);
}

/* ---- set-up -------------------------------------------------------------- */

static int listen_on(struct http_server *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, err;

	if (parse_hostport(s->conf.listen, &ss))
		return -EINVAL;
	len = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, LISTEN_BACKLOG)) {
		err = -errno;
		close(fd);
		return err;
	}
	s->listenfd = fd;
	return 0;
}

static int watch(struct http_server *s, int fd, struct ep_src *src)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };

	*src = (struct ep_src){ SRC_HTTP, s };
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int start_mhd(struct http_server *s)
{
	const union MHD_DaemonInfo *di;

	/* No listen socket (ours), no thread (the daemon's loop runs it). */
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)s->conf.tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)s->conf.tls_key },
		{ MHD_OPTION_END, 0, NULL },
	};
	bool use_tls = s->conf.tls_cert && s->conf.tls_key;

	s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG |
				  (use_tls ? MHD_USE_TLS : 0),
				  0, NULL, NULL, on_request, s,
				  MHD_OPTION_ARRAY, use_tls ? tls : tls + 2,
				  MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
				  MHD_OPTION_CONNECTION_LIMIT, s->conf.max_conns,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->conf.max_per_ip,
				  MHD_OPTION_CONNECTION_TIMEOUT, s->conf.timeout_s,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->conf.max_request,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				  MHD_OPTION_END);
	if (!s->mhd)
		return -ENOMEM;	/* MHD says why in the debug log */
	di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di || di->epoll_fd < 0)
		return -EINVAL;
	s->mhdfd = di->epoll_fd;
	return 0;
}

int http_open(struct http_server **out, const struct http_conf *conf, int epfd)
{
	struct http_server *s;
	int err;

	*out = NULL;
	if (!conf->name || !conf->max_conns || !conf->timeout_s || conf->max_request < 1024)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->conf = *conf;
	s->epfd = epfd;
	s->listenfd = s->timerfd = s->mhdfd = -1;
	if (conf->listen && (err = listen_on(s))) {
		pr_warn("Couldn't serve %s on %s: %s", conf->name, conf->listen, strerror(-err));
		goto fail;
	}
	s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->timerfd < 0) {
		err = -errno;
		goto fail;
	}
	if ((err = start_mhd(s))) {
		pr_warn("Couldn't start the HTTP server (%s): %s", conf->name, strerror(-err));
		goto fail;
	}
	if ((err = watch(s, s->timerfd, &s->timer_src)) || (err = watch(s, s->mhdfd, &s->mhd_src)) ||
	    (s->listenfd >= 0 && (err = watch(s, s->listenfd, &s->listen_src))))
		goto fail;
	*out = s;
	return 0;
fail:
	http_close(s);
	return err;
}

void http_get_stats(const struct http_server *s, struct http_stats *st)
{
	*st = s->st;
}

void http_metrics(FILE *f, struct http_server *const *v, size_t n)
{
	prom_head(f, "imapguard_http_connections", "gauge", "Open HTTP connections.");
	for (size_t i = 0; i < n; i++)
		if (v[i])
			prom_labelled(f, "imapguard_http_connections", "server", v[i]->conf.name,
				      v[i]->st.conns);
	prom_head(f, "imapguard_http_connections_total", "counter", "HTTP connections accepted.");
	for (size_t i = 0; i < n; i++)
		if (v[i])
			prom_labelled(f, "imapguard_http_connections_total", "server", v[i]->conf.name,
				      v[i]->st.accepted);
	prom_head(f, "imapguard_http_requests_total", "counter",
		  "HTTP requests answered by a handler.");
	for (size_t i = 0; i < n; i++)
		if (v[i])
			prom_labelled(f, "imapguard_http_requests_total", "server", v[i]->conf.name,
				      v[i]->st.requests);
	prom_head(f, "imapguard_http_refused_total", "counter",
		  "HTTP connections and requests refused, by reason.");
	for (size_t i = 0; i < n; i++)
		for (int r = 0; v[i] && r < HTTP_REF_MAX; r++)
			fprintf(f, "imapguard_http_refused_total{server=\"%s\",reason=\"%s\"} %llu\n",
				v[i]->conf.name, refusal_names[r],
				(unsigned long long)v[i]->st.refused[r]);
}

void http_close(struct http_server *s)
{
	if (!s)
		return;
	/* MHD's epoll fd leaves the set when MHD closes it; ours explicitly. */
	if (s->listenfd >= 0) {
		if (!s->accept_paused)
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listenfd, NULL);
		close(s->listenfd);
	}
	if (s->mhdfd >= 0)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->mhdfd, NULL);
	if (s->mhd)
		MHD_stop_daemon(s->mhd);	/* notifies every close: conns freed */
	if (s->timerfd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->timerfd, NULL);
		close(s->timerfd);
	}
	free(s);
}
