// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: the HTTP request path (daemon/http.c on libmicrohttpd).
 * The input is what a client sends on one connection: it goes in on one end
 * of a socketpair, the other end is handed to the server (no listener, as
 * http_add_conn() allows), and the loop runs until the server closes the
 * connection, the client's end-of-file included. Routes like the daemon's
 * (GET/HEAD, no body) and like the policy server's to come (POST, bounded
 * body). Besides "no crash", it checks:
 * - every answer is a well-formed status line ("HTTP/1.x NNN ", CRLF ended)
 *   with a header block and a Content-Length that frames it (but see
 *   parse_answers() for a libmicrohttpd 0.9.75 bug);
 * - a handler runs only for a route's path, with a method the route allows
 *   and a body within its bound, so never on a refused request; every
 *   answer carrying the handlers' content type is a handler call's, a 200
 *   (libmicrohttpd 0.9.75 may drop an answer: see the end);
 * - every 404, 405 is counted, and every 413, 414, 431 as too large;
 * - no connection outlives its client (see the end for a libmicrohttpd
 *   0.9.75 bug that can make it wait for the hang-up).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "daemon/http.h"

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "property failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)
#define MARK "text/x-fuzz-handled"
#define POST_MAX 64
#define QUIET 16	/* turns without progress before the client gives up */
#define TURNS_MAX 100000	/* turns at most per phase (MHD answers one pipelined
				 * request per turn) */

static unsigned int calls;

static int on_get(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	(void)ctx;
	REQUIRE(!strcmp(req->url, "/metrics"));
	REQUIRE(req->method == HTTP_GET || req->method == HTTP_HEAD);
	REQUIRE(req->body_len == 0 && req->body && !req->body[0]);
	calls++;
	rep->content_type = MARK;	/* empty body: HEAD and GET frame alike */
	return 0;
}

static int on_post(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	(void)ctx;
	REQUIRE(!strcmp(req->url, "/policy"));
	REQUIRE(req->method == HTTP_POST);
	REQUIRE(req->body_len <= POST_MAX && req->body && !req->body[req->body_len]);
	calls++;
	rep->content_type = MARK;
	return 0;
}

static const struct http_route routes[] = {
	{ "/metrics", HTTP_GET | HTTP_HEAD, 0, on_get, NULL },
	{ "/policy", HTTP_POST, POST_MAX, on_post, NULL },
};

static struct http_server *server(void)
{
	static struct http_server *s;
	const struct http_conf conf = {
		.name = "fuzz", .max_conns = 4, .max_per_ip = 2, .timeout_s = 10,
		.max_request = 16 * 1024, .routes = routes, .nroutes = 2,
	};
	int epfd;

	if (s)
		return s;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	REQUIRE(epfd >= 0 && !http_open(&s, &conf, epfd));
	return s;
}

struct tally {
	unsigned int answers, marked, doubled, by_code[600];
};

/* Walk the answers in out[0..len): status line, headers, body framed by
 * Content-Length. Returns false for anything malformed. */
static bool parse_answers(const char *out, size_t len, struct tally *t)
{
	size_t off = 0;

	while (off < len) {
		const char *p = out + off, *end = memmem(p, len - off, "\r\n\r\n", 4), *cl;
		unsigned int code;
		size_t hlen, blen = 0;
		char *e;

		if (!end)
			return false;
		hlen = end + 4 - p;
		if (hlen < 15 || (memcmp(p, "HTTP/1.0 ", 9) && memcmp(p, "HTTP/1.1 ", 9)) ||
		    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
		    p[11] > '9' || p[12] != ' ' || !memmem(p, hlen, "\r\n", 2))
			return false;
		code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
		off += hlen;
		if (code == 100)	/* 100 Continue: the real answer follows */
			continue;
		/* libmicrohttpd 0.9.75 builds the header block of an error it finds
		 * in the headers (a bad or huge Content-Length) twice, and sends
		 * both: tolerated for its own errors only, counted. */
		if (code >= 400 && len - off >= hlen && !memcmp(out + off, p, hlen)) {
			off += hlen;
			t->doubled++;
		}
		cl = memmem(p, hlen, "\r\nContent-Length: ", 18);
		if (cl) {
			blen = strtoul(cl + 18, &e, 10);
			if (*e != '\r')
				return false;
		}
		/* MHD's own errors carry a body, except to a HEAD; they close the
		 * connection, so such an answer ends the stream. */
		if (off + blen > len && !(off == len && code >= 400))
			return false;
		off += off == len ? 0 : blen;
		t->answers++;
		t->by_code[code]++;
		t->marked += memmem(p, hlen, "Content-Type: " MARK "\r\n", 16 + strlen(MARK)) != NULL;
	}
	return true;
}

/* Run the loop, feeding what is left of the input and collecting answers,
 * until the connection is gone or `idle` turns in a row made no progress
 * (input taken, output given, a handler called). */
static void run(struct http_server *s, int fd, const uint8_t **in, size_t *left, char **out,
		size_t *olen, unsigned int conns0, int idle)
{
	struct http_stats st;
	char buf[65536];
	size_t before, before_left;
	unsigned int before_calls;
	ssize_t n;

	for (int i = 0, quiet = 0; i < TURNS_MAX && quiet < idle; i++) {
		before = *olen;
		before_left = *left;
		before_calls = calls;
		if (*left) {
			n = send(fd, *in, *left, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				*in += n;
				*left -= n;
			} else if (errno != EAGAIN) {
				*left = 0;	/* the server closed on us */
			}
		}
		http_ready(s);
		while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
			*out = realloc(*out, *olen + n);
			REQUIRE(*out);
			memcpy(*out + *olen, buf, n);
			*olen += n;
		}
		quiet = *olen != before || *left != before_left || calls != before_calls ? 0 :
			quiet + 1;
		http_get_stats(s, &st);
		if (st.conns == conns0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_server *s = server();
	struct http_stats before, after;
	struct sockaddr sa = { .sa_family = AF_UNIX };
	struct tally t = { 0 };
	char *out = NULL;
	size_t olen = 0;
	int sv[2];

	REQUIRE(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
	http_get_stats(s, &before);
	calls = 0;
	REQUIRE(!http_add_conn(s, sv[0], &sa, sizeof(sa.sa_family)));
	run(s, sv[1], &data, &size, &out, &olen, before.conns, 8);
	/* The client is done. libmicrohttpd 0.9.75 in epoll mode takes a short
	 * read for an empty socket and may miss an end-of-file that came with
	 * the last bytes (fixed in 1.0.0: "epoll: immediately notice when other
	 * side closes the socket"); the daemon then closes at the deadline. So:
	 * end-of-file, and if the connection is still there, a hang-up, after
	 * which it must be gone. */
	shutdown(sv[1], SHUT_WR);
	size = 0;
	run(s, sv[1], &data, &size, &out, &olen, before.conns, QUIET);
	http_get_stats(s, &after);
	if (after.conns != before.conns) {
		shutdown(sv[1], SHUT_RDWR);
		run(s, sv[1], &data, &size, &out, &olen, before.conns, QUIET);
		http_get_stats(s, &after);
	}
	REQUIRE(after.conns == before.conns);
	close(sv[1]);

	if (getenv("FUZZ_HTTP_SHOW")) {	/* to see what a seed gets */
		fwrite(out, 1, olen, stderr);
		fprintf(stderr, "\n[%zu bytes; handler calls %u]\n", olen, calls);
	}
	REQUIRE(parse_answers(out, olen, &t));
	REQUIRE(after.requests - before.requests == calls);
	/* An answer decided may still not reach the client, as libmicrohttpd
	 * 0.9.75 drops it when the connection's memory is full of pipelined
	 * input (it closes instead), or when it answered "Expect: 100-continue"
	 * on a request with no body but more bytes behind it (it never sends
	 * the answer). So: never an answer without its decision (handler call,
	 * counted refusal); the handlers themselves check they see only what
	 * their route accepts. */
	REQUIRE(t.marked <= calls);
	REQUIRE(t.by_code[200] == t.marked);
	REQUIRE(t.by_code[404] <= after.refused[HTTP_REF_NOT_FOUND] - before.refused[HTTP_REF_NOT_FOUND]);
	REQUIRE(t.by_code[405] <= after.refused[HTTP_REF_METHOD] - before.refused[HTTP_REF_METHOD]);
	REQUIRE(t.by_code[413] + t.by_code[414] + t.by_code[431] <=
		after.refused[HTTP_REF_TOO_LARGE] - before.refused[HTTP_REF_TOO_LARGE]);
	free(out);
	return 0;
}
