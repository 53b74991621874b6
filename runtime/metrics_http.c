/* The supervisor's metrics endpoint: see runtime/metrics_http.h. */
#define _GNU_SOURCE
#include <sluice/metrics.h>
#include <sluice/error.h>

#include "runtime/flow_internal.h"
#include "runtime/metrics.h"
#include "runtime/metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 8u
#define REQUEST_MAX 4096u
#define DEADLINE_NS UINT64_C(2000000000)
#define ACCEPTS_PER_CALL 16u
#define LISTENER MAX_CLIENTS /* the listening socket's index in events */

struct client {
	int fd;            /* -1: a free place */
	bool answering;    /* the request was read: writing out[] */
	bool closing;      /* all written, our side shut: reading to the client's end */
	uint32_t inlen;
	uint64_t deadline;
	char *out;
	size_t outlen, outoff;
	char in[REQUEST_MAX];
};

struct sluice__metrics_http {
	sluice_flow_t *f;
	int ep;  /* our epoll set: the listening socket and the clients */
	int lfd;
	struct sluice__metrics m;
	bool m_ok;
	struct client c[MAX_CLIENTS];
};

uint16_t sluice__metrics_http_port(const sluice_flow_t *f)
{
	if (f->metrics_port != 0)
		return f->metrics_port;
	const char *e = getenv("SLUICE_METRICS_PORT");
	if (e == NULL || e[0] == '\0')
		return 0;
	char *end;
	unsigned long v = strtoul(e, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535 || e[0] < '0' || e[0] > '9') {
		fprintf(stderr, "sluice: flow '%s': SLUICE_METRICS_PORT='%.16s' is not a port (1..65535); "
				"no metrics endpoint\n",
			f->name, e);
		return 0;
	}
	return (uint16_t)v;
}

static void drop(struct sluice__metrics_http *h, struct client *c)
{
	(void)epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	c->fd = -1;
	c->out = NULL;
}

static void give_up(sluice_flow_t *f, uint16_t port, const char *what, int err)
{
	fprintf(stderr, "sluice: flow '%s': metrics endpoint 127.0.0.1:%u: %s: %s; not serving metrics\n",
		f->name, port, what, strerror(err));
}

struct sluice__metrics_http *sluice__metrics_http_start(sluice_flow_t *f, int epfd, uint64_t tag)
{
	uint16_t port = sluice__metrics_http_port(f);
	if (port == 0)
		return NULL;
	struct sluice__metrics_http *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		give_up(f, port, "setup", ENOMEM);
		return NULL;
	}
	h->f = f;
	h->ep = h->lfd = -1;
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		h->c[i].fd = -1;
	const char *what = "socket";
	int one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = LISTENER};
	h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0)
		goto fail;
	(void)setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	what = "bind";
	if (bind(h->lfd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto fail;
	what = "listen";
	if (listen(h->lfd, 16) != 0)
		goto fail;
	what = "epoll";
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	if (h->ep < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->lfd, &ev) != 0)
		goto fail;
	ev.data.u64 = tag;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, h->ep, &ev) != 0)
		goto fail;
	h->m_ok = sluice__metrics_init(&h->m, f) == 0; /* without: 500 to every request */
	return h;
fail:
	give_up(f, port, what, errno);
	sluice__metrics_http_close(h);
	return NULL;
}

void sluice__metrics_http_close(struct sluice__metrics_http *h)
{
	if (h == NULL)
		return;
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		if (h->c[i].fd >= 0)
			close(h->c[i].fd);
		free(h->c[i].out);
	}
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->ep >= 0)
		close(h->ep);
	if (h->m_ok)
		sluice__metrics_fini(&h->m);
	free(h);
}

/* ---- answers ---------------------------------------------------------------------- */

/* Sets c's answer: status line, headers, and the body (taken over: freed
 * with c) unless head. */
static void answer(struct client *c, const char *status, const char *type, char *body,
		   size_t body_len, bool head)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
			 status, type, body_len);
	size_t total = (size_t)n + (head ? 0 : body_len);
	c->out = malloc(total);
	if (c->out != NULL) {
		memcpy(c->out, hdr, (size_t)n);
		if (!head)
			memcpy(c->out + n, body, body_len);
		c->outlen = total;
	} else {
		c->outlen = 0; /* nothing to say: closed */
	}
	c->outoff = 0;
	c->answering = true;
	free(body);
}

static void answer_text(struct client *c, const char *status, const char *text, bool head)
{
	size_t n = strlen(text);
	char *body = malloc(n + 1);
	if (body != NULL)
		memcpy(body, text, n + 1);
	answer(c, status, "text/plain; charset=utf-8", body, body != NULL ? n : 0, head);
}

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Parses the request line in c->in and builds the answer. */
static void respond(struct sluice__metrics_http *h, struct client *c)
{
	char *sp1 = memchr(c->in, ' ', c->inlen);
	char *eol = memchr(c->in, '\n', c->inlen);
	char *sp2 = sp1 != NULL && eol != NULL ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		answer_text(c, "400 Bad Request", "bad request\n", false);
		return;
	}
	size_t mlen = (size_t)(sp1 - c->in);
	bool get = mlen == 3 && memcmp(c->in, "GET", 3) == 0;
	bool head = mlen == 4 && memcmp(c->in, "HEAD", 4) == 0;
	char *path = sp1 + 1;
	size_t plen = (size_t)(sp2 - path);
	char *q = memchr(path, '?', plen);
	if (q != NULL)
		plen = (size_t)(q - path);
	bool metrics = plen == 8 && memcmp(path, "/metrics", 8) == 0;
	bool healthz = plen == 8 && memcmp(path, "/healthz", 8) == 0;
	if (!metrics && !healthz) {
		answer_text(c, "404 Not Found", "not found: try /metrics or /healthz\n", head);
		return;
	}
	if (!get && !head) {
		answer_text(c, "405 Method Not Allowed", "method not allowed: GET or HEAD\n", false);
		return;
	}
	if (!h->m_ok || sluice__metrics_take(&h->m) != 0) {
		answer_text(c, "500 Internal Server Error", "no snapshot\n", head);
		return;
	}
	if (metrics) {
		size_t len = 0;
		char *body = sluice__metrics_render(&h->m.src, SLUICE__METRICS_PROMETHEUS, &len);
		if (body == NULL)
			answer_text(c, "500 Internal Server Error", "out of memory\n", head);
		else
			answer(c, "200 OK", PROM_TYPE, body, len, head);
		return;
	}
	char reason[2048];
	if (sluice_metrics_serving(&h->m.src, reason, sizeof(reason) - 1)) {
		answer_text(c, "200 OK", "ok\n", head);
	} else {
		strcat(reason, "\n");
		answer_text(c, "503 Service Unavailable", reason, head);
	}
}

/* ---- events ------------------------------------------------------------------------- */

/* Reads and forgets what the client still sends; drops it at its end. */
static void linger_read(struct sluice__metrics_http *h, struct client *c)
{
	char sink[4096];
	for (;;) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* more later, before the deadline */
		drop(h, c);
		return;
	}
}

/* Writes what the socket takes; once all is out (or on an error) closes
 * the connection. */
static void flush(struct sluice__metrics_http *h, struct client *c)
{
	while (c->outoff < c->outlen) {
		/* MSG_NOSIGNAL: a client gone away must not SIGPIPE the supervisor. */
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n > 0) {
			c->outoff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(c - h->c)};
			if (epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
				drop(h, c);
			return;
		}
		break;
	}
	/* Closing with a request's bytes unread would reset the connection
	 * and could destroy the answer on its way: shut our side, then read
	 * to the client's end (or the deadline) before closing. */
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - h->c)};
	if (shutdown(c->fd, SHUT_WR) != 0 || epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		drop(h, c);
		return;
	}
	c->closing = true;
	linger_read(h, c);
}

static bool header_ended(const struct client *c)
{
	return memmem(c->in, c->inlen, "\r\n\r\n", 4) != NULL || memmem(c->in, c->inlen, "\n\n", 2) != NULL;
}

static void readable(struct sluice__metrics_http *h, struct client *c)
{
	for (;;) {
		if (c->inlen == REQUEST_MAX) {
			answer_text(c, "431 Request Header Fields Too Large", "request too large\n", false);
			flush(h, c);
			return;
		}
		ssize_t n = recv(c->fd, c->in + c->inlen, REQUEST_MAX - c->inlen, 0);
		if (n > 0) {
			c->inlen += (uint32_t)n;
			if (header_ended(c)) {
				respond(h, c);
				flush(h, c);
				return;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* more later, before the deadline */
		drop(h, c); /* closed before its request ended, or an error */
		return;
	}
}

static void accept_clients(struct sluice__metrics_http *h)
{
	for (unsigned k = 0; k < ACCEPTS_PER_CALL; k++) {
		int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN: none left; anything else: tried again when readable */
		struct client *c = NULL;
		for (unsigned i = 0; i < MAX_CLIENTS && c == NULL; i++)
			if (h->c[i].fd < 0)
				c = &h->c[i];
		if (c == NULL) {
			close(fd); /* too many at once */
			continue;
		}
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - h->c)};
		if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->answering = false;
		c->closing = false;
		c->inlen = 0;
		c->out = NULL;
		c->outlen = c->outoff = 0;
		c->deadline = sluice__now_ns() + DEADLINE_NS;
	}
}

void sluice__metrics_http_ready(struct sluice__metrics_http *h)
{
	if (h == NULL)
		return;
	struct epoll_event evs[MAX_CLIENTS + 1];
	int n = epoll_wait(h->ep, evs, MAX_CLIENTS + 1, 0);
	for (int i = 0; i < n; i++) {
		uint32_t k = evs[i].data.u32;
		if (k == LISTENER) {
			accept_clients(h);
		} else if (k < MAX_CLIENTS && h->c[k].fd >= 0) {
			if (h->c[k].closing)
				linger_read(h, &h->c[k]);
			else if (h->c[k].answering)
				flush(h, &h->c[k]);
			else
				readable(h, &h->c[k]);
		}
	}
}

int sluice__metrics_http_timeout(struct sluice__metrics_http *h, int timeout_ms)
{
	if (h == NULL)
		return timeout_ms;
	uint64_t now = sluice__now_ns(), next = UINT64_MAX;
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &h->c[i];
		if (c->fd < 0)
			continue;
		if (now >= c->deadline)
			drop(h, c); /* slow or silent */
		else if (c->deadline < next)
			next = c->deadline;
	}
	if (next == UINT64_MAX)
		return timeout_ms;
	uint64_t ms = (next - now) / 1000000 + 1; /* rounded up */
	return timeout_ms >= 0 && (uint64_t)timeout_ms < ms ? timeout_ms : (int)ms;
}
