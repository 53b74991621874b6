/* An HTTP service on sluice: pre-forked web processes, each attached to
 * one flow by name, read each POST body straight into a payload block and
 * answer with what the flow's workers made of it.
 *
 *   POST /work     the body (Content-Length, up to --max-body bytes) is
 *                  checksummed and compressed; the answer is its PackBits
 *                  encoding (application/x-packbits) with the body's CRC-32
 *                  in an X-CRC32 header (examples/http_work.h)
 *   GET /health    "ok"
 *
 * Processes: the parent binds the port (SO_REUSEPORT), then forks --procs
 * web processes; each binds the same port, so the kernel spreads the
 * connections among them, and runs its own epoll loop: plain HTTP/1.1 with
 * keep-alive and pipelining, Content-Length bodies only, a strict parser
 * (examples/http_parse.h), bounds on every length, 400 / 404 / 405 / 411 /
 * 413 / 414 / 431 / 501 / 505 answers with a reason in the body, 500 when
 * the work failed, 503 when the service has no room for the request. Every
 * error answer closes the connection (after reading off what the client
 * still sends, for up to 2 s, so that it gets the answer and not a reset).
 *
 * --mode decides where the work is done:
 *   sluice   (default) the parent creates and starts a flow named
 *            http-service-PID (--name) of two steps, "crc32" and
 *            "packbits", each run by --workers processes; every web
 *            process attaches to it (sluice_flow_attach), allocates a task
 *            for each request, reads the body into its payload block with
 *            sluice_task_read_fd (non-blocking: a body that arrives in
 *            pieces is read on each EPOLLIN), submits it, and writes the
 *            response from the result block in the arena when
 *            sluice_flow_reap hands it back (the flow's eventfd is in the
 *            same epoll set);
 *   inproc   the web process does the work itself, on a body read into
 *            its own buffer;
 *   socket   one flow process does the work for every web process, each
 *            sending it the body over its own Unix stream socket and
 *            reading the result back (the architecture sluice replaces).
 * Every mode reads the request head the same way (a MSG_PEEK, then exactly
 * the head's bytes), so the body is the only thing that goes elsewhere.
 *
 * SIGINT or SIGTERM stops it: the parent tells the web processes to exit
 * (each closes its connections and detaches), waits for them, stops the
 * flow (or the flow process) and exits 0. The parent blocks SIGINT and
 * SIGTERM before anything forks, so a Ctrl-C to the process group reaches
 * the flow's supervisor and workers only through sluice_flow_stop. It
 * prints one line when it is ready: "http_service: ready: mode M, port P,
 * N web processes"; exit 1 when a process of the service died or a stop
 * failed, 2 on bad arguments.
 *
 * usage: http_service [--mode sluice|inproc|socket] [--port P] [--addr A]
 *                     [--procs N] [--workers W] [--wait spin|sleep|poll]
 *                     [--max-body BYTES] [--name NAME]
 *
 * Only the public API (sluice/flow.h, sluice/error.h) is used.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sluice/error.h>
#include <sluice/flow.h>

#include "http_parse.h"
#include "http_work.h"

#define SEC UINT64_C(1000000000)
#define MAX_PROCS 63u          /* web processes: client slots 1..63 of 64 */
#define MAX_WORKERS 16u        /* per step */
#define MAX_BODY_LIMIT (16u << 20)
#define MAX_CONNS 1024u        /* open connections per web process */
#define TASKS_PER_PROC 256u    /* requests in flight per web process (sluice) */
#define SUBMIT_BATCH 64u       /* tasks submitted at once, at most */
#define IDLE_NS (30 * SEC)     /* an idle or stalled connection is closed */
#define DRAIN_NS (2 * SEC)     /* an error answer's lingering close */
#define DRAIN_MAX (1u << 20)   /* bytes read off before that close, at most */

enum mode { MODE_SLUICE, MODE_INPROC, MODE_SOCKET };
static const char *const mode_names[] = {"sluice", "inproc", "socket"};

struct config {
	enum mode mode;
	struct in_addr addr;
	unsigned port;
	unsigned procs;
	unsigned workers;
	uint32_t wait;      /* the steps' enum sluice_ring_wait; 0: the default */
	uint64_t max_body;
	char name[64];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* A growable byte buffer (the socket mode's frames). */
struct buf {
	uint8_t *p;
	size_t len, off, cap; /* bytes p[off..len) are pending */
};

static bool buf_reserve(struct buf *b, size_t more)
{
	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (b->cap - b->len >= more)
		return true;
	if (b->off > 0) { /* compact first */
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= more)
			return true;
	}
	size_t cap = b->cap ? b->cap : 65536;
	while (cap - b->len < more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL)
		return false;
	b->p = p;
	b->cap = cap;
	return true;
}

/* The socket mode's frames: this header, then `len` bytes (the body, or
 * the result). Native byte order: both ends are on this machine. */
struct frame {
	uint64_t tag;    /* the connection: generation << 32 | index */
	uint32_t len;
	uint32_t status; /* results: 0 */
};

/* ---- the flow's steps (sluice mode; they run in the workers) ----------------- */

static int crc32_handle(void *arg, sluice_item_t *items, unsigned n)
{
	(void)arg;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		uint8_t *out = sluice_item_result_alloc(it, http_work_result_bound(it->payload_len));
		if (out == NULL) {
			sluice_item_fail(it, "crc32: no result block for a body of %" PRIu64 " bytes",
					 it->payload_len);
			continue;
		}
		http_put_le32(out, http_crc32(it->payload, it->payload_len));
		it->result_len = HTTP_WORK_CRC_LEN;
	}
	return 0;
}

static int packbits_handle(void *arg, sluice_item_t *items, unsigned n)
{
	(void)arg;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		if (it->result == NULL || it->result_len != HTTP_WORK_CRC_LEN ||
		    it->result_cap < http_work_result_bound(it->payload_len)) {
			sluice_item_fail(it, "packbits: the result block is not crc32's");
			continue;
		}
		uint8_t *r = it->result;
		it->result_len = HTTP_WORK_CRC_LEN +
				 http_packbits_encode(it->payload, it->payload_len, r + HTTP_WORK_CRC_LEN);
	}
	return 0;
}

/* ---- a web process --------------------------------------------------------------- */

enum cstate { C_FREE, C_HEAD, C_BODY, C_WORK, C_WRITE, C_DRAIN };

struct conn {
	int fd;
	enum cstate state;
	uint32_t gen;          /* bumped on each open: stale results are dropped */
	unsigned minor;        /* the request's HTTP/1.minor */
	bool keep_alive;       /* after the response being written */
	uint64_t body_len, body_got;
	uint64_t last_ns;      /* last progress */
	sluice_task_t *task;   /* sluice: the body in its payload, the result in its result */
	uint8_t *body;         /* inproc, socket: the body */
	size_t body_cap;
	uint8_t *res;          /* inproc, socket: the result */
	size_t res_cap;
	/* The response: head[0..head_len) then out[0..out_len); sent counts
	 * over both. A short text answer lies in head after the headers. */
	char head[512];
	size_t head_len, sent;
	const uint8_t *out;
	size_t out_len;
	size_t drained;
};

/* epoll tags past the connection indices */
enum { EV_LISTEN = MAX_CONNS, EV_SIGNAL, EV_FLOW_EVENTFD, EV_FLOW_PIDFD, EV_FLOW_SOCK };

static struct web {
	const struct config *cfg;
	unsigned index;
	int ep, lfd, sfd;
	sluice_flow_t *flow;   /* sluice */
	int flow_fd;           /* socket */
	struct buf fout, fin;  /* socket: frames to and from the flow process */
	bool fatal;            /* the flow is gone: stop */
	bool stopping;         /* a signal came: finish the requests in hand, take no more */
	struct conn conns[MAX_CONNS];
	uint32_t free_conns[MAX_CONNS];
	unsigned nfree;
	char peek[HTTP_MAX_HEAD];
	uint64_t answered[6]; /* by status / 100 */
	uint64_t refused;     /* connections closed at once: no room */
	sluice_task_t *submit[SUBMIT_BATCH]; /* sluice: bodies complete, not yet submitted */
	unsigned nsubmit;
} W;

static void conn_close(struct conn *c)
{
	close(c->fd); /* also leaves the epoll set */
	if (c->task != NULL)
		sluice_task_release(W.flow, c->task); /* in flight: freed when it completes */
	c->task = NULL;
	free(c->body);
	free(c->res);
	c->body = c->res = NULL;
	c->body_cap = c->res_cap = 0;
	c->state = C_FREE;
	W.free_conns[W.nfree++] = (uint32_t)(c - W.conns);
}

static void conn_open(int fd)
{
	if (W.nfree == 0) {
		W.refused++;
		close(fd);
		return;
	}
	uint32_t i = W.free_conns[--W.nfree];
	struct conn *c = &W.conns[i];
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u64 = i};
	if (epoll_ctl(W.ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		W.free_conns[W.nfree++] = i;
		return;
	}
	c->fd = fd;
	c->state = C_HEAD;
	c->gen++;
	c->last_ns = now_ns();
}

static uint64_t conn_tag(const struct conn *c)
{
	return (uint64_t)c->gen << 32 | (uint64_t)(c - W.conns);
}

/* The connection a tag names, if it is still waiting for that result. */
static struct conn *conn_of_tag(uint64_t tag)
{
	uint64_t i = tag & 0xFFFFFFFFu;
	if (i >= MAX_CONNS)
		return NULL;
	struct conn *c = &W.conns[i];
	return c->state == C_WORK && c->gen == (uint32_t)(tag >> 32) ? c : NULL;
}

/* Queues a response: the head, then body[0..len) (not copied: it must
 * stay put until the response is written). */
static void respond(struct conn *c, int status, const char *ctype, const uint8_t *body, size_t len,
		    bool keep_alive, const char *extra)
{
	c->head_len = http_format_head(c->head, sizeof(c->head), status, ctype, len, keep_alive,
				       c->minor, extra);
	c->out = body;
	c->out_len = len;
	c->sent = 0;
	c->keep_alive = keep_alive && !W.stopping;
	c->state = C_WRITE;
	W.answered[status / 100 % 6]++;
}

/* A short text answer, in the head buffer after the headers. Errors close
 * the connection. */
static void respond_text(struct conn *c, int status, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void respond_text(struct conn *c, int status, const char *extra, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	size_t n = k < 0 ? 0 : (size_t)k < sizeof(text) ? (size_t)k : sizeof(text) - 1;
	bool keep = status < 400 && c->keep_alive;
	respond(c, status, "text/plain", NULL, n, keep, extra);
	if (c->head_len + n > sizeof(c->head)) /* cannot happen: 200 + 256 < 512 */
		n = 0;
	memcpy(c->head + c->head_len, text, n);
	c->head_len += n;
	c->out_len = 0;
}

/* The work's result res[0..len): CRC-32, then the encoded body. */
static void respond_result(struct conn *c, const uint8_t *res, uint64_t len)
{
	if (res == NULL || len < HTTP_WORK_CRC_LEN || len > http_work_result_bound(c->body_len)) {
		respond_text(c, 500, NULL, "500: a result of %" PRIu64 " bytes for a body of %" PRIu64
			     " is not a result\n", len, c->body_len);
		return;
	}
	char extra[32];
	snprintf(extra, sizeof(extra), "X-CRC32: %08" PRIx32 "\r\n", http_get_le32(res));
	respond(c, 200, "application/x-packbits", res + HTTP_WORK_CRC_LEN,
		len - HTTP_WORK_CRC_LEN, c->keep_alive, extra);
}

static void flow_flush(void);
static void conn_drive(struct conn *c);

/* sluice: submits the tasks whose bodies came in this turn of the loop.
 * Those the flow does not take (its rings full, or it stopped) are
 * answered 503. */
static void submit_pending(void)
{
	if (W.nsubmit == 0)
		return;
	unsigned n = W.nsubmit;
	int k = sluice_task_submit_many(W.flow, W.submit, n, 0);
	W.nsubmit = 0;
	if (k == (int)n)
		return;
	/* The refused: their answers may lead to more requests (and
	 * submissions), so work from a copy. */
	sluice_task_t *left[SUBMIT_BATCH];
	unsigned m = 0;
	for (unsigned i = k > 0 ? (unsigned)k : 0; i < n; i++)
		left[m++] = W.submit[i];
	for (unsigned i = 0; i < m; i++) {
		struct conn *c = conn_of_tag(left[i]->user);
		if (c == NULL)
			continue;
		respond_text(c, 503, NULL, "503: the flow took no task: %s\n",
			     sluice_strerror(k < 0 ? k : SLUICE_ETIMEDOUT));
		conn_drive(c);
	}
}

/* The body is all there: do the work, or hand it over. */
static void start_work(struct conn *c)
{
	c->state = C_WORK;
	switch (W.cfg->mode) {
	case MODE_INPROC: {
		size_t n = http_work_result(c->body, c->body_len, c->res);
		respond_result(c, c->res, n);
		return;
	}
	case MODE_SOCKET: {
		struct frame h = {.tag = conn_tag(c), .len = (uint32_t)c->body_len};
		if (!buf_reserve(&W.fout, sizeof(h) + c->body_len)) {
			respond_text(c, 503, NULL, "503: no memory for the request\n");
			return;
		}
		memcpy(W.fout.p + W.fout.len, &h, sizeof(h));
		if (c->body_len > 0)
			memcpy(W.fout.p + W.fout.len + sizeof(h), c->body, c->body_len);
		W.fout.len += sizeof(h) + c->body_len;
		flow_flush();
		return;
	}
	case MODE_SLUICE:
		/* Submitted with the others of this turn of the event loop:
		 * one ring publication, at most one wake-up. */
		W.submit[W.nsubmit++] = c->task;
		if (W.nsubmit == SUBMIT_BATCH)
			submit_pending();
		return;
	}
}

/* Routes a parsed head. */
static void route(struct conn *c, const http_request_t *rq)
{
	c->minor = rq->minor;
	c->keep_alive = rq->keep_alive;
	bool work = rq->target_len == 5 && memcmp(rq->target, "/work", 5) == 0;
	bool health = rq->target_len == 7 && memcmp(rq->target, "/health", 7) == 0;
	if (!work && !health) {
		respond_text(c, 404, NULL, "404: no such path: %.*s (POST /work, GET /health)\n",
			     (int)(rq->target_len > 64 ? 64 : rq->target_len), rq->target);
		return;
	}
	if (health) {
		if (rq->method != HTTP_GET)
			respond_text(c, 405, "Allow: GET\r\n", "405: /health takes GET\n");
		else
			respond_text(c, 200, NULL, "ok\n");
		return;
	}
	if (rq->method != HTTP_POST) {
		respond_text(c, 405, "Allow: POST\r\n", "405: /work takes POST\n");
		return;
	}
	if (!rq->has_length) {
		respond_text(c, 411, NULL, "411: POST /work needs a Content-Length\n");
		return;
	}
	uint64_t len = rq->content_length;
	if (len > W.cfg->max_body) {
		if (len == UINT64_MAX)
			respond_text(c, 413, NULL, "413: a body of 2^60 bytes or more; the limit is %"
				     PRIu64 "\n", W.cfg->max_body);
		else
			respond_text(c, 413, NULL, "413: a body of %" PRIu64 " bytes; the limit is %"
				     PRIu64 "\n", len, W.cfg->max_body);
		return;
	}
	c->body_len = len;
	c->body_got = 0;
	if (W.cfg->mode == MODE_SLUICE) {
		int rc = sluice_task_alloc(W.flow, len, &c->task);
		if (rc != 0) {
			c->task = NULL;
			respond_text(c, 503, NULL, "503: no room for another request: %s\n",
				     sluice_strerror(rc));
			return;
		}
		c->task->user = conn_tag(c);
	} else {
		size_t rcap = http_work_result_bound(len);
		if (c->body_cap < len || (W.cfg->mode == MODE_INPROC && c->res_cap < rcap)) {
			free(c->body);
			free(c->res);
			c->body = malloc(len ? len : 1);
			c->res = W.cfg->mode == MODE_INPROC ? malloc(rcap) : NULL;
			c->body_cap = c->body ? len : 0;
			c->res_cap = c->res ? rcap : 0;
			if (c->body == NULL || (W.cfg->mode == MODE_INPROC && c->res == NULL)) {
				respond_text(c, 503, NULL, "503: no memory for the body\n");
				return;
			}
		}
	}
	c->state = C_BODY;
}

/* C_HEAD: peek at what has come; once the head is all there, take exactly
 * its bytes off the socket and route it. Returns true when the state
 * moved on. */
static bool read_head(struct conn *c)
{
	ssize_t n = recv(c->fd, W.peek, sizeof(W.peek), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && errno == EINTR)
		return true;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	if (n <= 0) {
		conn_close(c); /* the client is done (or gone) */
		return false;
	}
	http_request_t rq;
	const char *why;
	int rc = http_parse_head(W.peek, (size_t)n, &rq, &why);
	if (rc == HTTP_PARSE_MORE)
		return false; /* an edge comes with the next bytes */
	c->last_ns = now_ns();
	if (rc != HTTP_PARSE_DONE) {
		c->minor = 1;
		respond_text(c, rc, NULL, "%d: %s\n", rc, why);
		return true;
	}
	if (recv(c->fd, W.peek, rq.head_len, MSG_DONTWAIT) != (ssize_t)rq.head_len) {
		conn_close(c);
		return false;
	}
	route(c, &rq);
	return true;
}

/* C_BODY: read what has come of the body, straight into the payload block
 * (sluice) or the connection's buffer. */
static bool read_body(struct conn *c)
{
	while (c->body_got < c->body_len) {
		int64_t n;
		if (W.cfg->mode == MODE_SLUICE) {
			n = sluice_task_read_fd(W.flow, c->task, c->fd, c->body_len - c->body_got, 0);
		} else {
			ssize_t k = read(c->fd, c->body + c->body_got, c->body_len - c->body_got);
			n = k >= 0 ? k : errno == EAGAIN ? SLUICE_EAGAIN : errno == EINTR ? SLUICE_EINTR : -1;
		}
		if (n == SLUICE_EAGAIN)
			return false;
		if (n == SLUICE_EINTR)
			continue;
		if (n <= 0) { /* end of file or an error in the middle of a body */
			conn_close(c);
			return false;
		}
		c->body_got += (uint64_t)n;
		c->last_ns = now_ns();
	}
	start_work(c);
	return c->state != C_WORK;
}

/* C_WRITE: send what is left of the response. */
static bool write_response(struct conn *c)
{
	while (c->sent < c->head_len + c->out_len) {
		struct iovec iov[2];
		int k = 0;
		if (c->sent < c->head_len)
			iov[k++] = (struct iovec){c->head + c->sent, c->head_len - c->sent};
		size_t off = c->sent > c->head_len ? c->sent - c->head_len : 0;
		if (c->out_len > off)
			iov[k++] = (struct iovec){(void *)(c->out + off), c->out_len - off};
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
		ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		if (n < 0) {
			conn_close(c);
			return false;
		}
		c->sent += (size_t)n;
		c->last_ns = now_ns();
	}
	if (c->task != NULL) {
		sluice_task_release(W.flow, c->task);
		c->task = NULL;
	}
	if (c->keep_alive) {
		c->state = C_HEAD; /* bytes of the next request may be waiting: go on */
		return true;
	}
	if (W.stopping) {
		conn_close(c);
		return false;
	}
	/* A lingering close: we are done sending; read off what the client
	 * still sends, so that our answer is not lost to a reset. */
	shutdown(c->fd, SHUT_WR);
	c->state = C_DRAIN;
	c->drained = 0;
	return true;
}

/* C_DRAIN: read and drop until end of file (or enough). */
static bool drain(struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, W.peek, sizeof(W.peek));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		c->drained += n > 0 ? (size_t)n : 0;
		if (n <= 0 || c->drained > DRAIN_MAX) {
			conn_close(c);
			return false;
		}
	}
}

/* Moves a connection on as far as it goes without waiting. A loop, not
 * recursion: a client may have pipelined many requests. */
static void conn_drive(struct conn *c)
{
	for (;;) {
		bool more;
		switch (c->state) {
		case C_HEAD: more = read_head(c); break;
		case C_BODY: more = read_body(c); break;
		case C_WRITE: more = write_response(c); break;
		case C_DRAIN: more = drain(c); break;
		default: more = false; break; /* C_WORK waits for the result, C_FREE is gone */
		}
		if (!more)
			return;
	}
}

/* sluice: hands each finished task's result to its connection. */
static void reap_results(void)
{
	sluice_task_t *got[64];
	for (;;) {
		int k = sluice_flow_reap(W.flow, got, 64);
		if (k < 0) {
			fprintf(stderr, "http_service: web %u: reap: %s\n", W.index, sluice_strerror(k));
			W.fatal = true;
			return;
		}
		for (int i = 0; i < k; i++) {
			sluice_task_t *t = got[i];
			struct conn *c = conn_of_tag(t->user);
			if (c == NULL || c->task != t) {
				sluice_task_release(W.flow, t); /* not ours any more */
				continue;
			}
			if (t->status == SLUICE_TASK_OK)
				respond_result(c, t->result, t->result_len);
			else
				respond_text(c, 500, NULL, "500: the work failed: %s: %s\n",
					     sluice_task_status_name(t->status), t->message);
			conn_drive(c);
		}
		if (k < 64)
			return;
	}
}

/* socket: sends the queued frames to the flow process. */
static void flow_flush(void)
{
	while (W.fout.off < W.fout.len) {
		ssize_t n = send(W.flow_fd, W.fout.p + W.fout.off, W.fout.len - W.fout.off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			fprintf(stderr, "http_service: web %u: the flow process is gone: %s\n", W.index,
				strerror(errno));
			W.fatal = true;
			return;
		}
		W.fout.off += (size_t)n;
	}
}

/* socket: reads results from the flow process and answers them. */
static void flow_results(void)
{
	for (;;) {
		if (!buf_reserve(&W.fin, 65536)) {
			W.fatal = true;
			return;
		}
		ssize_t n = recv(W.flow_fd, W.fin.p + W.fin.len, W.fin.cap - W.fin.len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			fprintf(stderr, "http_service: web %u: the flow process closed its socket\n",
				W.index);
			W.fatal = true;
			return;
		}
		W.fin.len += (size_t)n;
		/* Every complete frame. */
		struct frame h;
		while (W.fin.len - W.fin.off >= sizeof(h)) {
			memcpy(&h, W.fin.p + W.fin.off, sizeof(h));
			if (h.len > http_work_result_bound(W.cfg->max_body) || h.status != 0) {
				fprintf(stderr, "http_service: web %u: a bad frame from the flow "
					"process (%" PRIu32 " bytes, status %" PRIu32 ")\n", W.index,
					h.len, h.status);
				W.fatal = true;
				return;
			}
			if (W.fin.len - W.fin.off < sizeof(h) + h.len)
				break;
			const uint8_t *res = W.fin.p + W.fin.off + sizeof(h);
			W.fin.off += sizeof(h) + h.len;
			struct conn *c = conn_of_tag(h.tag);
			if (c == NULL)
				continue; /* its connection closed meanwhile */
			if (c->res_cap < h.len) {
				free(c->res);
				c->res = malloc(h.len ? h.len : 1);
				c->res_cap = c->res ? h.len : 0;
			}
			if (c->res == NULL) {
				respond_text(c, 503, NULL, "503: no memory for the result\n");
			} else {
				memcpy(c->res, res, h.len);
				respond_result(c, c->res, h.len);
			}
			conn_drive(c);
		}
	}
}

/* Closes connections that made no progress for too long. */
static void sweep(uint64_t now)
{
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &W.conns[i];
		if (c->state == C_FREE || c->state == C_WORK)
			continue;
		if (now - c->last_ns > (c->state == C_DRAIN ? DRAIN_NS : IDLE_NS))
			conn_close(c);
	}
}

/* Connections with a request in hand. */
static unsigned busy_conns(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < MAX_CONNS; i++)
		n += W.conns[i].state == C_WORK || W.conns[i].state == C_WRITE;
	return n;
}

/* A signal: take no more connections or requests; the requests in hand
 * are answered (for up to DRAIN_NS), then their connections close. */
static void begin_stop(void)
{
	W.stopping = true;
	close(W.lfd);
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &W.conns[i];
		if (c->state == C_HEAD || c->state == C_BODY || c->state == C_DRAIN)
			conn_close(c);
		else
			c->keep_alive = false;
	}
}

static int add_fd(int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = {.events = events, .data.u64 = tag};
	return epoll_ctl(W.ep, EPOLL_CTL_ADD, fd, &ev);
}

static int listen_on(const struct config *cfg)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port),
				 .sin_addr = cfg->addr};
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0) {
		fprintf(stderr, "http_service: web: listen on port %u: %s\n", cfg->port,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* A web process's life. Returns its exit status. */
static int web_main(const struct config *cfg, unsigned index, int flow_fd, int ready_fd)
{
	W.cfg = cfg;
	W.index = index;
	W.flow_fd = flow_fd;
	for (unsigned i = 0; i < MAX_CONNS; i++)
		W.free_conns[i] = MAX_CONNS - 1 - i;
	W.nfree = MAX_CONNS;
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	W.sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	W.ep = epoll_create1(EPOLL_CLOEXEC);
	W.lfd = listen_on(cfg);
	if (W.sfd < 0 || W.ep < 0 || W.lfd < 0)
		return 1;
	if (add_fd(W.sfd, EPOLLIN, EV_SIGNAL) != 0 || add_fd(W.lfd, EPOLLIN, EV_LISTEN) != 0)
		return 1;
	if (cfg->mode == MODE_SLUICE) {
		char err[256];
		int rc = sluice_flow_attach(cfg->name, 0, 10 * SEC, &W.flow, err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "http_service: web %u: attach to %s: %s: %s\n", index,
				cfg->name, sluice_err_name(rc), err);
			return 1;
		}
		int efd = sluice_flow_eventfd(W.flow);
		int pfd = sluice_flow_supervisor_pidfd(W.flow);
		if (efd < 0 || pfd < 0 || add_fd(efd, EPOLLIN, EV_FLOW_EVENTFD) != 0 ||
		    add_fd(pfd, EPOLLIN, EV_FLOW_PIDFD) != 0)
			return 1;
		/* The eventfd is armed by a reap that drains everything: one
		 * now, before the first task, or its first completion would
		 * write nothing. */
		reap_results();
	} else if (cfg->mode == MODE_SOCKET) {
		if (fcntl(flow_fd, F_SETFL, O_NONBLOCK) != 0 ||
		    add_fd(flow_fd, EPOLLIN | EPOLLOUT | EPOLLET, EV_FLOW_SOCK) != 0)
			return 1;
	}
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);

	uint64_t last_sweep = now_ns(), stop_by = 0;
	while (!W.fatal) {
		if (W.stopping && (busy_conns() == 0 || now_ns() > stop_by))
			break;
		struct epoll_event evs[64];
		int n = epoll_wait(W.ep, evs, 64, 1000);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "http_service: web %u: epoll_wait: %s\n", index, strerror(errno));
			return 1;
		}
		for (int i = 0; i < n && !W.fatal; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag < MAX_CONNS) {
				if (W.conns[tag].state != C_FREE)
					conn_drive(&W.conns[tag]);
			} else if (tag == EV_LISTEN) {
				int fd;
				while ((fd = accept4(W.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
					conn_open(fd);
			} else if (tag == EV_FLOW_EVENTFD) {
				reap_results();
			} else if (tag == EV_FLOW_PIDFD) {
				fprintf(stderr, "http_service: web %u: the flow's supervisor is gone\n",
					index);
				W.fatal = true;
			} else if (tag == EV_FLOW_SOCK) {
				if (evs[i].events & EPOLLOUT)
					flow_flush();
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					flow_results();
			} else if (tag == EV_SIGNAL && !W.stopping) {
				begin_stop();
				stop_by = now_ns() + DRAIN_NS;
			}
		}
		submit_pending();
		uint64_t now = now_ns();
		if (now - last_sweep >= SEC) {
			sweep(now);
			last_sweep = now;
		}
	}
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (W.conns[i].state != C_FREE)
			conn_close(&W.conns[i]);
	if (W.flow != NULL)
		sluice_flow_destroy(W.flow); /* detach */
	uint64_t total = 0;
	for (unsigned i = 0; i < 6; i++)
		total += W.answered[i];
	fprintf(stderr, "http_service: web %u (pid %d): %" PRIu64 " answers: %" PRIu64 " 2xx, %"
		PRIu64 " 4xx, %" PRIu64 " 5xx; %" PRIu64 " connections refused (table full)\n",
		index, (int)getpid(), total, W.answered[2], W.answered[4], W.answered[5], W.refused);
	return W.fatal ? 1 : 0;
}

/* ---- the flow process (socket mode) --------------------------------------------- */

static bool send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

/* Serves the web processes' sockets fds[0..n): reads request frames, does
 * the work, writes result frames (blocking writes: a web process never
 * blocks, so it always reads them off). */
static int flow_process_main(const struct config *cfg, const int *fds, unsigned n)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct buf in[MAX_PROCS] = {{0}};
	size_t rmax = http_work_result_bound(cfg->max_body);
	uint8_t *out = malloc(sizeof(struct frame) + rmax);
	if (sfd < 0 || ep < 0 || out == NULL)
		return 1;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	for (unsigned i = 0; i < n; i++) {
		ev.data.u64 = i;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	uint64_t frames = 0;
	for (;;) {
		struct epoll_event evs[MAX_PROCS + 1];
		int k = epoll_wait(ep, evs, MAX_PROCS + 1, -1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return 1;
		for (int e = 0; e < k; e++) {
			uint64_t i = evs[e].data.u64;
			if (i == UINT64_MAX) {
				fprintf(stderr, "http_service: flow process: %" PRIu64 " requests\n",
					frames);
				return 0;
			}
			struct buf *b = &in[i];
			if (!buf_reserve(b, 65536))
				return 1;
			ssize_t r = recv(fds[i], b->p + b->len, b->cap - b->len, MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			bool broken = r <= 0;
			if (!broken)
				b->len += (size_t)r;
			struct frame h;
			while (!broken && b->len - b->off >= sizeof(h)) {
				memcpy(&h, b->p + b->off, sizeof(h));
				if (h.len > cfg->max_body) {
					fprintf(stderr, "http_service: flow process: a frame of %" PRIu32
						" bytes from web %" PRIu64 "\n", h.len, i);
					broken = true;
					break;
				}
				if (b->len - b->off < sizeof(h) + h.len) {
					if (!buf_reserve(b, sizeof(h) + h.len))
						return 1;
					break;
				}
				const uint8_t *body = b->p + b->off + sizeof(h);
				size_t rl = http_work_result(body, h.len, out + sizeof(h));
				struct frame rh = {.tag = h.tag, .len = (uint32_t)rl};
				memcpy(out, &rh, sizeof(rh));
				b->off += sizeof(h) + h.len;
				broken = !send_all(fds[i], out, sizeof(rh) + rl);
				frames++;
			}
			if (broken) { /* a web process that exited, or a bad one */
				epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
				close(fds[i]);
			}
		}
	}
}

/* ---- the parent ------------------------------------------------------------------ */

/* Size classes for the bodies and results: powers of two from 512 B to
 * the largest result, each with a block for every task's body and result
 * (2 * max_tasks), but at most 32 MiB of blocks (and at least 4). */
static void blocks_config(uint64_t max_body, uint32_t max_tasks, sluice_blocks_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size_of = sizeof(*cfg);
	uint64_t top = http_work_result_bound(max_body);
	for (uint64_t size = 512;; size *= 2) {
		uint64_t count = 2ull * max_tasks, fit = (32ull << 20) / size;
		if (count > fit)
			count = fit > 4 ? fit : 4;
		cfg->classes[cfg->nclasses++] = (sluice_blocks_class_t){.block_size = size,
									.count = (uint32_t)count};
		if (size >= top)
			break;
	}
}

static sluice_flow_t *start_flow(const struct config *cfg)
{
	sluice_step_t steps[2] = {
		{.size_of = sizeof(sluice_step_t), .name = "crc32",
		 .handler = {.handle = crc32_handle}},
		{.size_of = sizeof(sluice_step_t), .name = "packbits",
		 .handler = {.handle = packbits_handle}},
	};
	for (unsigned s = 0; s < 2; s++) {
		steps[s].nprocs = cfg->workers;
		steps[s].batch_size = 16;
		steps[s].capacity = TASKS_PER_PROC;
		steps[s].task_timeout_ns = 10 * SEC;
		steps[s].wait = cfg->wait;
	}
	uint32_t clients = cfg->procs + 1; /* the parent's slot, and one per web process */
	sluice_blocks_config_t blocks;
	blocks_config(cfg->max_body, clients * TASKS_PER_PROC, &blocks);
	sluice_flow_opts_t o = {.size_of = sizeof(o), .name = cfg->name, .nsteps = 2,
				.steps = steps, .max_tasks = clients * TASKS_PER_PROC,
				.max_clients = clients, .blocks = &blocks};
	char err[256];
	sluice_flow_t *f;
	int rc = sluice_flow_create(&o, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "http_service: flow create: %s: %s\n", sluice_err_name(rc), err);
		return NULL;
	}
	rc = sluice_flow_start(f, 30 * SEC);
	if (rc != 0) {
		fprintf(stderr, "http_service: flow start: %s: %s\n", sluice_err_name(rc),
			sluice_flow_error(f));
		sluice_flow_destroy(f);
		return NULL;
	}
	return f;
}

/* Stops the flow and prints its counters. False when the stop failed.
 * (Tasks still in flight when their web process detached, after its 2 s
 * of grace, stay counted as in flight: the count is printed, not judged.) */
static bool stop_flow(sluice_flow_t *f)
{
	int rc = sluice_flow_stop(f, 10 * SEC);
	sluice_flow_snapshot_t *s = NULL;
	bool ok = rc == 0;
	if (sluice_flow_snapshot_create(f, &s) == 0 && sluice_flow_snapshot_take(f, s) == 0) {
		fprintf(stderr, "http_service: flow: %" PRIu64 " tasks submitted, %" PRIu64
			" ok, %" PRIu64 " in flight at the end\n", s->submitted,
			s->completed[SLUICE_TASK_OK], s->in_flight);
		for (uint32_t i = 0; i < s->nsteps; i++) {
			const sluice_step_health_t *st = &s->steps[i];
			fprintf(stderr, "http_service:   step %-8s %" PRIu64 " tasks in %" PRIu64
				" batches (avg %.2f, largest %u), %u worker deaths\n", st->name,
				st->tasks, st->batches,
				st->batches ? (double)st->tasks / (double)st->batches : 0.0,
				st->max_batch, st->deaths);
		}
	}
	sluice_flow_snapshot_destroy(s);
	if (rc != 0)
		fprintf(stderr, "http_service: flow stop: %s\n", sluice_strerror(rc));
	sluice_flow_destroy(f);
	return ok;
}

struct child {
	pid_t pid;
	int pidfd;
	bool done;
};

/* Waits for c to exit, up to timeout_ms, then kills it. True when it
 * exited 0 of its own. */
static bool reap_child(struct child *c, int timeout_ms)
{
	if (c->done || c->pid <= 0)
		return true;
	struct pollfd p = {.fd = c->pidfd, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) != 1)
		kill(c->pid, SIGKILL);
	int st;
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	close(c->pidfd);
	c->done = true;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: http_service [--mode sluice|inproc|socket] [--port P] [--addr A]\n"
		"                    [--procs N] [--workers W] [--wait spin|sleep|poll]\n"
		"                    [--max-body BYTES] [--name NAME]\n"
		"  --mode      where the work is done (default sluice)\n"
		"  --port      TCP port; 0 picks a free one (default 8080)\n"
		"  --addr      IPv4 address to listen on (default 127.0.0.1)\n"
		"  --procs     web processes, 1..%u (default 2)\n"
		"  --workers   sluice: worker processes per step, 1..%u (default 1)\n"
		"  --wait      sluice: how workers wait for tasks: spin (spin, then sleep:\n"
		"              the default), sleep (at once) or poll (never sleep)\n"
		"  --max-body  largest body accepted, 0..%u (default 1048576)\n"
		"  --name      sluice: the flow's name (default http-service-PID)\n",
		MAX_PROCS, MAX_WORKERS, MAX_BODY_LIMIT);
}

static bool parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 'm'},  {"port", required_argument, NULL, 'p'},
		{"addr", required_argument, NULL, 'a'},  {"procs", required_argument, NULL, 'n'},
		{"workers", required_argument, NULL, 'w'}, {"max-body", required_argument, NULL, 'b'},
		{"name", required_argument, NULL, 'N'},  {"wait", required_argument, NULL, 'W'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*cfg = (struct config){.mode = MODE_SLUICE, .port = 8080, .procs = 2, .workers = 1,
			       .max_body = 1u << 20};
	inet_pton(AF_INET, "127.0.0.1", &cfg->addr);
	snprintf(cfg->name, sizeof(cfg->name), "http-service-%d", (int)getpid());
	int o;
	uint64_t v;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		bool ok = true;
		switch (o) {
		case 'm':
			ok = false;
			for (unsigned i = 0; i < 3; i++)
				if (strcmp(optarg, mode_names[i]) == 0) {
					cfg->mode = (enum mode)i;
					ok = true;
				}
			break;
		case 'p': ok = parse_uint(optarg, 0, 65535, &v); cfg->port = (unsigned)v; break;
		case 'a': ok = inet_pton(AF_INET, optarg, &cfg->addr) == 1; break;
		case 'n': ok = parse_uint(optarg, 1, MAX_PROCS, &v); cfg->procs = (unsigned)v; break;
		case 'w': ok = parse_uint(optarg, 1, MAX_WORKERS, &v); cfg->workers = (unsigned)v; break;
		case 'b': ok = parse_uint(optarg, 0, MAX_BODY_LIMIT, &v); cfg->max_body = v; break;
		case 'N':
			ok = strlen(optarg) < sizeof(cfg->name);
			if (ok)
				strcpy(cfg->name, optarg);
			break;
		case 'W':
			cfg->wait = strcmp(optarg, "spin") == 0    ? SLUICE_RING_SPIN_SLEEP
				    : strcmp(optarg, "sleep") == 0 ? SLUICE_RING_SLEEP
				    : strcmp(optarg, "poll") == 0  ? SLUICE_RING_BUSY_POLL
								   : UINT32_MAX;
			ok = cfg->wait != UINT32_MAX;
			break;
		case 'h': usage(); exit(0);
		default: ok = false; break;
		}
		if (!ok) {
			if (o != '?')
				fprintf(stderr, "http_service: bad value: %s\n", optarg);
			usage();
			return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	return 0;
}

/* Binds the port for the web processes to share (SO_REUSEPORT) and keeps
 * it taken until they listen on it. Returns the socket; cfg->port is the
 * port (a free one when it was 0). */
static int reserve_port(struct config *cfg)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port),
				 .sin_addr = cfg->addr};
	socklen_t sl = sizeof(sa);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		fprintf(stderr, "http_service: port %u: %s\n", cfg->port, strerror(errno));
		return -1;
	}
	cfg->port = ntohs(sa.sin_port);
	return fd;
}

/* Forks a process of the service: it dies with the parent, and runs fn. */
static pid_t spawn(struct child *c)
{
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
			_exit(1);
		return 0;
	}
	c->pid = pid;
	c->pidfd = pid > 0 ? pidfd_open(pid, 0) : -1;
	c->done = pid < 0;
	return pid;
}

int main(int argc, char **argv)
{
	struct config cfg;
	int rc = parse_args(argc, argv, &cfg);
	if (rc != 0)
		return rc;
	if (http_work_init() != 0) {
		fprintf(stderr, "http_service: the CRC-32 table fails its test vector\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL); /* before any fork: see the top */
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	int port_fd = reserve_port(&cfg);
	if (sfd < 0 || port_fd < 0)
		return 1;

	sluice_flow_t *flow = NULL;
	struct child flowproc = {.done = true};
	int pairs[MAX_PROCS][2];
	if (cfg.mode == MODE_SLUICE && (flow = start_flow(&cfg)) == NULL)
		return 1;
	if (cfg.mode == MODE_SOCKET) {
		int ends[MAX_PROCS];
		for (unsigned i = 0; i < cfg.procs; i++) {
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]) != 0) {
				perror("http_service: socketpair");
				return 1;
			}
			ends[i] = pairs[i][1];
		}
		pid_t pid = spawn(&flowproc);
		if (pid == 0) {
			for (unsigned i = 0; i < cfg.procs; i++)
				close(pairs[i][0]);
			_exit(flow_process_main(&cfg, ends, cfg.procs));
		}
		for (unsigned i = 0; i < cfg.procs; i++)
			close(pairs[i][1]);
		if (pid < 0) {
			perror("http_service: fork");
			return 1;
		}
	}

	int ready[2];
	if (pipe2(ready, O_CLOEXEC) != 0) {
		perror("http_service: pipe");
		return 1;
	}
	struct child web[MAX_PROCS];
	unsigned nweb = 0;
	bool failed = false;
	for (; nweb < cfg.procs; nweb++) {
		pid_t pid = spawn(&web[nweb]);
		if (pid == 0) {
			close(ready[0]);
			close(sfd);
			close(port_fd);
			int ffd = -1;
			for (unsigned i = 0; cfg.mode == MODE_SOCKET && i < cfg.procs; i++)
				if (i == nweb)
					ffd = pairs[i][0];
				else
					close(pairs[i][0]);
			_exit(web_main(&cfg, nweb, ffd, ready[1]));
		}
		if (pid < 0) {
			perror("http_service: fork");
			failed = true;
			break;
		}
	}
	close(ready[1]);
	for (unsigned i = 0; cfg.mode == MODE_SOCKET && i < cfg.procs; i++)
		close(pairs[i][0]);
	/* Ready when every web process listens (and is attached). */
	for (unsigned got = 0; !failed && got < nweb;) {
		struct pollfd p = {.fd = ready[0], .events = POLLIN};
		char c[MAX_PROCS];
		ssize_t k = poll(&p, 1, 30000) == 1 ? read(ready[0], c, sizeof(c)) : -1;
		if (k <= 0) {
			fprintf(stderr, "http_service: the web processes did not all start\n");
			failed = true;
		}
		got += k > 0 ? (unsigned)k : 0;
	}
	close(ready[0]);
	close(port_fd);
	if (!failed) {
		printf("http_service: ready: mode %s, port %u, %u web processes\n",
		       mode_names[cfg.mode], cfg.port, cfg.procs);
		fflush(stdout);
	}

	/* Serve until a signal, or until a process of the service dies. */
	while (!failed) {
		struct pollfd p[MAX_PROCS + 3];
		unsigned np = 0;
		p[np++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		for (unsigned i = 0; i < nweb; i++)
			p[np++] = (struct pollfd){.fd = web[i].pidfd, .events = POLLIN};
		if (cfg.mode == MODE_SOCKET)
			p[np++] = (struct pollfd){.fd = flowproc.pidfd, .events = POLLIN};
		if (cfg.mode == MODE_SLUICE)
			p[np++] = (struct pollfd){.fd = sluice_flow_supervisor_pidfd(flow),
						  .events = POLLIN};
		if (poll(p, np, -1) < 0 && errno != EINTR)
			failed = true;
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				fprintf(stderr, "http_service: %s: stopping\n", strsignal((int)si.ssi_signo));
			break;
		}
		for (unsigned i = 1; i < np; i++)
			if (p[i].revents != 0) {
				fprintf(stderr, "http_service: a process of the service died: stopping\n");
				failed = true;
			}
	}

	/* Stop: the web processes first (they detach), then the work. */
	for (unsigned i = 0; i < nweb; i++)
		if (!web[i].done)
			kill(web[i].pid, SIGTERM);
	for (unsigned i = 0; i < nweb; i++)
		if (!reap_child(&web[i], 10000))
			failed = true;
	if (flow != NULL && !stop_flow(flow))
		failed = true;
	if (!flowproc.done) {
		kill(flowproc.pid, SIGTERM);
		if (!reap_child(&flowproc, 10000))
			failed = true;
	}
	fprintf(stderr, "http_service: stopped%s\n", failed ? " (with failures)" : "");
	return failed ? 1 : 0;
}
