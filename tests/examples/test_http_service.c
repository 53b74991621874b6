/* The HTTP example (examples/http_service.c), in each of its modes: start
 * it on a free port with 2 web processes, speak HTTP to it over TCP with a
 * small client, check the answers, stop it with a signal, and check that
 * no process of it is left.
 *
 *   - GET /health; known bodies with hand-computed answers (CRC-32 and
 *     PackBits bytes); bodies of 0 .. max-body bytes (run boundaries,
 *     4 KiB, the limit) on one keep-alive connection, each answer's CRC
 *     checked against the body and its encoding decoded back to the body;
 *     5 requests pipelined in one write; a head and a body that arrive in
 *     pieces (the service reads on each EPOLLIN);
 *   - refusals, each on its own connection, each with its status and the
 *     connection closed after it: a body over the limit (413), garbage, a
 *     bare LF, an HTTP/1.1 request without Host, a bad and a doubled
 *     Content-Length, a folded header (400), chunked (501), no length
 *     (411), wrong method (405), wrong path (404), HTTP/2.0 (505), a head
 *     over 8 KiB (431); HTTP/1.0 closes unless asked to keep alive;
 *     Connection: close is honoured;
 *   - clients that leave in the middle of a body or with a request in
 *     flight, then 8 processes at once on their own connections, every
 *     answer checked;
 *   - SIGTERM (SIGINT in one mode): exit 0, and nothing left: the test is
 *     a child subreaper, so a process of the service that outlived it
 *     would come back to us; then SIGKILL of a new service's parent with
 *     a request in flight: every process of it ends on its own.
 * The parser (examples/http_parse.c) is also checked directly.
 *
 * usage: test_http_service PATH-TO-http_service [mode...]
 */
#define _GNU_SOURCE
#include "common/test.h"

#include "http_parse.h"
#include "http_work.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define MAX_BODY 65536u

static unsigned port;
static int timeout_s;

/* ---- a small HTTP client -------------------------------------------------------- */

struct client {
	int fd;
	char buf[MAX_BODY * 2 + 4096];
	size_t len; /* bytes in buf not yet taken */
};

struct response {
	int status;
	bool has_crc, close;
	uint32_t crc;
	uint8_t body[MAX_BODY * 2];
	size_t body_len;
	char head[1024];
};

static void client_open(struct client *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(c->fd >= 0);
	struct timeval tv = {.tv_sec = timeout_s};
	CHECK(setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	int one = 1;
	CHECK(setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	CHECK(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	c->len = 0;
}

static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

static void send_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		CHECK(k > 0);
		b += k;
		n -= (size_t)k;
	}
}

static void send_str(struct client *c, const char *s)
{
	send_all(c->fd, s, strlen(s));
}

/* Reads more into the buffer; false at end of file. */
static bool fill(struct client *c)
{
	CHECK(c->len < sizeof(c->buf));
	for (;;) {
		ssize_t k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			fprintf(stderr, "FAIL: recv: %s (no answer within %d s?)\n", strerror(errno),
				timeout_s);
			exit(TEST_FAIL);
		}
		c->len += (size_t)k;
		return k > 0;
	}
}

static void take(struct client *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Reads one response. */
static void read_response(struct client *c, struct response *r)
{
	char *end;
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		if (!fill(c)) {
			fprintf(stderr, "FAIL: the connection closed before a response head\n");
			exit(TEST_FAIL);
		}
	size_t hl = (size_t)(end - c->buf) + 4;
	CHECK(hl < sizeof(r->head));
	memcpy(r->head, c->buf, hl);
	r->head[hl] = '\0';
	take(c, hl);
	CHECK(sscanf(r->head, "HTTP/1.1 %d ", &r->status) == 1);
	const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
	CHECK(cl != NULL);
	unsigned long long len = strtoull(cl + 18, NULL, 10);
	CHECK(len <= sizeof(r->body));
	const char *crc = strcasestr(r->head, "\r\nX-CRC32: ");
	r->has_crc = crc != NULL;
	r->crc = crc ? (uint32_t)strtoul(crc + 11, NULL, 16) : 0;
	r->close = strcasestr(r->head, "\r\nConnection: close\r\n") != NULL;
	while (c->len < len)
		if (!fill(c)) {
			fprintf(stderr, "FAIL: the connection closed inside a response body\n");
			exit(TEST_FAIL);
		}
	memcpy(r->body, c->buf, len);
	r->body_len = len;
	take(c, len);
}

/* The server closes the connection (after what it sent). */
static void expect_eof(struct client *c)
{
	while (fill(c))
		;
	CHECK(c->len == 0);
}

/* ---- requests and their checks ------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

/* A body of n bytes: random bytes and runs of random lengths. */
static void make_body(uint64_t seed, uint8_t *b, size_t n)
{
	uint64_t s = seed * 0x2545F4914F6CDD1Du + 1;
	size_t i = 0;
	while (i < n) {
		size_t k = 1 + splitmix(&s) % 300;
		if (k > n - i)
			k = n - i;
		if (splitmix(&s) % 2)
			memset(b + i, (int)(splitmix(&s) & 0xFF), k);
		else
			for (size_t j = 0; j < k; j++)
				b[i + j] = (uint8_t)splitmix(&s);
		i += k;
	}
}

static void send_work(struct client *c, const uint8_t *body, size_t n, const char *extra)
{
	char head[256];
	int k = snprintf(head, sizeof(head),
			 "POST /work HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n%s\r\n", n,
			 extra ? extra : "");
	send_all(c->fd, head, (size_t)k);
	if (n > 0)
		send_all(c->fd, body, n);
}

static uint8_t decoded[MAX_BODY];

/* A 200 whose CRC is the body's and whose encoding decodes to it. */
static void check_work(const struct response *r, const uint8_t *body, size_t n)
{
	if (r->status != 200) {
		fprintf(stderr, "FAIL: status %d for a body of %zu bytes: %.*s\n", r->status, n,
			(int)r->body_len, (const char *)r->body);
		exit(TEST_FAIL);
	}
	CHECK(r->has_crc);
	CHECK(r->crc == http_crc32(body, n));
	CHECK(strcasestr(r->head, "\r\nContent-Type: application/x-packbits\r\n") != NULL);
	CHECK(r->body_len <= http_packbits_bound(n));
	long d = http_packbits_decode(r->body, r->body_len, decoded, sizeof(decoded));
	CHECK(d == (long)n);
	CHECK(n == 0 || memcmp(decoded, body, n) == 0);
}

static struct client cl;
static struct response rs;
static uint8_t body[MAX_BODY + 1];

/* Sends raw bytes on a new connection; expects `status`, and the server
 * closing the connection unless keep is true. */
static void expect_status(const char *raw, size_t n, int status, bool keep, const char *what)
{
	client_open(&cl);
	send_all(cl.fd, raw, n);
	read_response(&cl, &rs);
	if (rs.status != status) {
		fprintf(stderr, "FAIL: %s: status %d, want %d: %.*s\n", what, rs.status, status,
			(int)rs.body_len, (const char *)rs.body);
		exit(TEST_FAIL);
	}
	if (keep) {
		CHECK(!rs.close);
	} else {
		CHECK(rs.close);
		expect_eof(&cl);
	}
	printf("  %-34s %d %.*s", what, rs.status, (int)rs.body_len, (const char *)rs.body);
	client_close(&cl);
}

#define EXPECT(raw, status, keep, what) expect_status(raw, sizeof(raw) - 1, status, keep, what)

static void check_known(void)
{
	static const struct {
		const char *body;
		uint32_t crc;
		const char *enc;
		size_t enc_len;
	} known[] = {
		{"", 0x00000000u, "", 0},
		{"123456789", 0xCBF43926u, "\x08" "123456789", 10},
		{"aaaaaaaaaabc", 0, "\xf7" "a" "\x01" "bc", 5},
	};
	client_open(&cl);
	for (unsigned i = 0; i < 3; i++) {
		size_t n = strlen(known[i].body);
		send_work(&cl, (const uint8_t *)known[i].body, n, NULL);
		read_response(&cl, &rs);
		check_work(&rs, (const uint8_t *)known[i].body, n);
		if (known[i].crc != 0 || n == 0)
			CHECK(rs.crc == known[i].crc);
		CHECK(rs.body_len == known[i].enc_len);
		CHECK(memcmp(rs.body, known[i].enc, known[i].enc_len) == 0);
	}
	client_close(&cl);
}

static void check_keep_alive(void)
{
	static const size_t sizes[] = {0, 1, 2, 3, 127, 128, 129, 130, 300, 4095, 4096, 4097,
				       10000, 65535, MAX_BODY};
	unsigned nsizes = sizeof(sizes) / sizeof(sizes[0]);
	client_open(&cl);
	for (unsigned i = 0; i < 2 * nsizes; i++) {
		size_t n = sizes[i % nsizes];
		make_body(i, body, n);
		send_work(&cl, body, n, NULL);
		read_response(&cl, &rs);
		check_work(&rs, body, n);
		CHECK(!rs.close);
	}
	/* Pipelined: five requests in one write, five answers in order. */
	static uint8_t all[5 * (MAX_BODY / 8 + 256)];
	size_t at = 0;
	for (unsigned i = 0; i < 5; i++) {
		size_t n = 1000 + 3000 * i;
		make_body(100 + i, body, n);
		at += (size_t)sprintf((char *)all + at,
				      "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
		memcpy(all + at, body, n);
		at += n;
	}
	send_all(cl.fd, all, at);
	for (unsigned i = 0; i < 5; i++) {
		size_t n = 1000 + 3000 * i;
		make_body(100 + i, body, n);
		read_response(&cl, &rs);
		check_work(&rs, body, n);
	}
	/* A head, then a body, in pieces. */
	make_body(7, body, 50000);
	send_str(&cl, "POST /wo");
	usleep(20000);
	send_str(&cl, "rk HTTP/1.1\r\nHost: x\r\nContent-Le");
	usleep(20000);
	send_str(&cl, "ngth: 50000\r\n\r");
	usleep(20000);
	send_str(&cl, "\n");
	for (size_t off = 0; off < 50000; off += 12500) {
		usleep(20000);
		send_all(cl.fd, body + off, 12500);
	}
	read_response(&cl, &rs);
	check_work(&rs, body, 50000);
	/* Connection: close is honoured. */
	send_work(&cl, body, 10, "Connection: close\r\n");
	read_response(&cl, &rs);
	check_work(&rs, body, 10);
	CHECK(rs.close);
	expect_eof(&cl);
	client_close(&cl);
	printf("  keep-alive: %u requests on one connection, 5 pipelined, 1 in pieces: ok\n",
	       2 * nsizes + 2);
}

static void check_refusals(void)
{
	char raw[16384];
	snprintf(raw, sizeof(raw), "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n",
		 MAX_BODY + 1);
	expect_status(raw, strlen(raw), 413, false, "body over the limit");
	EXPECT("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	       413, false, "a 23-digit Content-Length");
	EXPECT("GARBAGE\r\n\r\n", 400, false, "garbage");
	EXPECT("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, false, "a TLS hello");
	EXPECT("GET /health HTTP/1.1\nHost: x\n\n", 400, false, "bare LF");
	EXPECT("GET /health HTTP/1.1\r\n\r\n", 400, false, "HTTP/1.1 without Host");
	EXPECT("GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, false, "two Hosts");
	EXPECT("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 12a\r\n\r\n", 400, false,
	       "Content-Length 12a");
	EXPECT("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, false,
	       "Content-Length -1");
	EXPECT("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
	       400, false, "two Content-Lengths");
	EXPECT("POST /work HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n",
	       400, false, "folded header");
	EXPECT("POST /work HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, false,
	       "space in a header name");
	EXPECT("POST /work HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501, false,
	       "chunked");
	EXPECT("POST /work HTTP/1.1\r\nHost: x\r\n\r\n", 411, false, "no Content-Length");
	EXPECT("GET /work HTTP/1.1\r\nHost: x\r\n\r\n", 405, false, "GET /work");
	EXPECT("POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 404, false,
	       "wrong path");
	EXPECT("GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, false, "HTTP/2.0");
	EXPECT("GET  /health HTTP/1.1\r\nHost: x\r\n\r\n", 400, false, "two spaces");
	EXPECT("GET health HTTP/1.1\r\nHost: x\r\n\r\n", 400, false, "target without /");
	int k = snprintf(raw, sizeof(raw), "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(raw + k, 'a', 9000);
	memcpy(raw + k + 9000, "\r\n\r\n", 5);
	expect_status(raw, strlen(raw), 431, false, "head over 8 KiB");
	EXPECT("GET /health HTTP/1.0\r\n\r\n", 200, false, "HTTP/1.0: closes");
	EXPECT("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, true,
	       "HTTP/1.0 keep-alive");
	CHECK(strcasestr(rs.head, "\r\nConnection: keep-alive\r\n") != NULL);
	EXPECT("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 200, true, "GET /health");
}

/* Clients that leave early; the service goes on. */
static void check_leavers(void)
{
	make_body(3, body, MAX_BODY);
	for (unsigned i = 0; i < 20; i++) {
		client_open(&cl);
		if (i % 2 == 0) { /* in the middle of the body */
			send_str(&cl, "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n");
			send_all(cl.fd, body, 1000 + 100 * i);
		} else { /* with the request in flight */
			send_work(&cl, body, MAX_BODY, NULL);
		}
		client_close(&cl);
	}
	client_open(&cl);
	send_work(&cl, body, MAX_BODY, NULL);
	read_response(&cl, &rs);
	check_work(&rs, body, MAX_BODY);
	client_close(&cl);
}

/* Several processes at once, each on its own connection. */
static void check_concurrent(void)
{
	unsigned nproc = 8, per = 200 / test_slowdown();
	pid_t kids[8];
	fflush(NULL);
	for (unsigned p = 0; p < nproc; p++) {
		kids[p] = fork();
		CHECK(kids[p] >= 0);
		if (kids[p] == 0) {
			uint64_t s = p + 1;
			client_open(&cl);
			for (unsigned i = 0; i < per; i++) {
				size_t n = splitmix(&s) % 20000;
				make_body(p * 100000 + i, body, n);
				send_work(&cl, body, n, NULL);
				read_response(&cl, &rs);
				check_work(&rs, body, n);
			}
			client_close(&cl);
			_exit(0);
		}
	}
	for (unsigned p = 0; p < nproc; p++)
		CHECK(test_wait(kids[p]) == 0);
	printf("  %u processes x %u requests at once: ok\n", nproc, per);
}

/* ---- the service's life -------------------------------------------------------- */

static pid_t start_service(const char *path, const char *mode)
{
	int out[2];
	CHECK(pipe(out) == 0);
	char maxb[32];
	snprintf(maxb, sizeof(maxb), "%u", MAX_BODY);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execl(path, path, "--mode", mode, "--port", "0", "--procs", "2", "--max-body", maxb,
		      (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	char line[256];
	size_t n = 0;
	struct pollfd p = {.fd = out[0], .events = POLLIN};
	while (n < sizeof(line) - 1 && (n == 0 || line[n - 1] != '\n')) {
		CHECK(poll(&p, 1, timeout_s * 1000) == 1);
		ssize_t k = read(out[0], line + n, sizeof(line) - 1 - n);
		if (k <= 0) {
			fprintf(stderr, "FAIL: the service exited before it was ready (%d)\n",
				test_wait(pid));
			exit(TEST_FAIL);
		}
		n += (size_t)k;
	}
	line[n] = '\0';
	close(out[0]);
	printf("%s", line);
	char m[16];
	CHECK(sscanf(line, "http_service: ready: mode %15[a-z], port %u,", m, &port) == 2);
	CHECK(strcmp(m, mode) == 0 && port > 0);
	return pid;
}

/* Stops it with `sig`; it must exit 0, and leave no process behind. */
static void stop_service(pid_t pid, int sig)
{
	CHECK(kill(pid, sig) == 0);
	uint64_t deadline = test_now_ns() + (uint64_t)timeout_s * 2000000000u;
	int st;
	pid_t w;
	while ((w = waitpid(pid, &st, WNOHANG)) == 0) {
		CHECK(test_now_ns() < deadline);
		usleep(10000);
	}
	CHECK(w == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "FAIL: the service ended with status %#x\n", st);
		exit(TEST_FAIL);
	}
	/* We are a subreaper: any process of the service still running, or
	 * one that ended after the service did, is our child now. */
	w = waitpid(-1, &st, WNOHANG);
	if (!(w < 0 && errno == ECHILD)) {
		fprintf(stderr, "FAIL: a process of the service outlived it (waitpid: %d)\n", (int)w);
		exit(TEST_FAIL);
	}
}

/* SIGKILL of the service's parent: every process of it goes (the web
 * processes and the flow process by their parent-death signal, the flow's
 * supervisor when its client dies, the workers with the supervisor). We
 * are a subreaper: they come back to us, and must all end. */
static void kill_service(pid_t pid)
{
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(test_wait(pid) == 128 + SIGKILL);
	uint64_t deadline = test_now_ns() + (uint64_t)timeout_s * 2000000000u;
	unsigned orphans = 0;
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w < 0 && errno == ECHILD)
			break;
		CHECK(w >= 0);
		orphans += w > 0;
		if (w == 0) {
			if (test_now_ns() > deadline) {
				fprintf(stderr, "FAIL: processes of the killed service still run\n");
				exit(TEST_FAIL);
			}
			usleep(10000);
		}
	}
	printf("  killed: %u orphans came back to us and ended\n", orphans);
}

/* ---- the parser, directly --------------------------------------------------------- */

static int parse(const char *s, http_request_t *rq)
{
	const char *why;
	return http_parse_head(s, strlen(s), rq, &why);
}

static void check_parser(void)
{
	http_request_t rq;
	CHECK(parse("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length:  42 \r\n\r\nBODY", &rq) == 0);
	CHECK(rq.method == HTTP_POST && rq.minor == 1 && rq.keep_alive && rq.has_length);
	CHECK(rq.content_length == 42 && rq.target_len == 5 && memcmp(rq.target, "/work", 5) == 0);
	CHECK(rq.head_len == strlen("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length:  42 \r\n\r\n"));
	CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n", &rq) == 0);
	CHECK(!rq.keep_alive && rq.method == HTTP_GET);
	CHECK(parse("get / HTTP/1.1\r\nHost: x\r\n\r\n", &rq) == 0 && rq.method == HTTP_OTHER);
	CHECK(parse("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		    &rq) == 0);
	/* Every prefix of a good head is "more", never an error. */
	const char *good = "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n";
	const char *why;
	for (size_t n = 0; n < strlen(good); n++)
		CHECK(http_parse_head(good, n, &rq, &why) == HTTP_PARSE_MORE);
	CHECK(http_parse_head(good, strlen(good), &rq, &why) == HTTP_PARSE_DONE);
	/* Errors seen before the head is complete. */
	CHECK(parse("GET / HTTP/1.1\nHo", &rq) == 400);
	CHECK(parse("GET /\x01", &rq) == 400);
	CHECK(parse("GET / HTTP/1.1\r\rHost", &rq) == 400);
	/* 64 header lines are fine, 65 are not. */
	char big[8192];
	size_t at = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 63; i++)
		at += (size_t)sprintf(big + at, "X-%d: y\r\n", i);
	strcpy(big + at, "\r\n");
	CHECK(parse(big, &rq) == 0);
	strcpy(big + at, "X-Last: y\r\n\r\n");
	CHECK(parse(big, &rq) == 431);
	/* A 1024-byte target is fine, 1025 is not. */
	at = (size_t)sprintf(big, "GET /");
	memset(big + at, 'a', 1023);
	strcpy(big + at + 1023, " HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK(parse(big, &rq) == 0 && rq.target_len == 1024);
	memset(big + at, 'a', 1024);
	strcpy(big + at + 1024, " HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK(parse(big, &rq) == 414);
	/* Random bytes: an answer, never a crash or an overread. */
	uint64_t s = 1;
	for (int i = 0; i < 20000; i++) {
		size_t n = splitmix(&s) % 200;
		char *r = malloc(n ? n : 1);
		for (size_t j = 0; j < n; j++) {
			uint64_t v = splitmix(&s);
			r[j] = v % 4 == 0 ? "\r\n: /HTPOS1."[v % 13] : (char)(v >> 8);
		}
		int rc = http_parse_head(r, n, &rq, &why);
		CHECK(rc == 0 || rc == 1 || (rc >= 400 && rc < 600));
		CHECK(rc != 0 || rq.head_len <= n);
		free(r);
	}
	/* The work: PackBits round trips, within its bound. */
	static uint8_t in[5000], enc[5200], dec[5000];
	for (int i = 0; i < 2000; i++) {
		size_t n = splitmix(&s) % sizeof(in);
		make_body((uint64_t)i + 999, in, n);
		size_t e = http_packbits_encode(in, n, enc);
		CHECK(e <= http_packbits_bound(n));
		CHECK(http_packbits_decode(enc, e, dec, sizeof(dec)) == (long)n);
		CHECK(n == 0 || memcmp(in, dec, n) == 0);
	}
	CHECK(http_packbits_decode((const uint8_t *)"\x05" "ab", 3, dec, sizeof(dec)) == -1);
	CHECK(http_packbits_decode((const uint8_t *)"\xf0", 1, dec, sizeof(dec)) == -1);
	printf("parser and work: ok\n");
}

/* The services run with a private XDG_RUNTIME_DIR: their control sockets
 * and lock files (which are never unlinked) go there, and go with it. */
static char rundir[64];
static pid_t main_pid;

static void remove_rundir(void)
{
	if (getpid() != main_pid || rundir[0] == '\0')
		return;
	char sub[128], path[512];
	snprintf(sub, sizeof(sub), "%s/sluice", rundir);
	DIR *d = opendir(sub);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", sub, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(sub);
	rmdir(rundir);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_http_service PATH-TO-http_service [mode...]\n");
		return TEST_FAIL;
	}
	timeout_s = 10 * (int)test_slowdown();
	CHECK(http_work_init() == 0);
	check_parser();
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	main_pid = getpid();
	strcpy(rundir, "/tmp/test_http_service-XXXXXX");
	CHECK(mkdtemp(rundir) != NULL);
	atexit(remove_rundir);
	CHECK(setenv("XDG_RUNTIME_DIR", rundir, 1) == 0);
	static const char *const all[] = {"sluice", "inproc", "socket"};
	const char *const *modes = argc > 2 ? (const char *const *)argv + 2 : all;
	int nmodes = argc > 2 ? argc - 2 : 3;
	for (int i = 0; i < nmodes; i++) {
		pid_t pid = start_service(argv[1], modes[i]);
		check_known();
		check_keep_alive();
		check_refusals();
		check_leavers();
		check_concurrent();
		stop_service(pid, i == 1 ? SIGINT : SIGTERM);
		printf("%s: ok, stopped cleanly, nothing left\n", modes[i]);
		/* Once more, killed with a request in flight. */
		pid = start_service(argv[1], modes[i]);
		client_open(&cl);
		make_body(5, body, MAX_BODY);
		send_work(&cl, body, MAX_BODY, NULL);
		kill_service(pid);
		client_close(&cl);
	}
	return TEST_PASS;
}
