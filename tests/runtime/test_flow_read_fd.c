/* Payloads filled straight from a descriptor (sluice_task_read_fd and
 * _exact), in read(2) and splice(2) mode, from a socketpair, a pipe and a
 * TCP loopback connection written by forked children, sizes 0 .. 1 MiB:
 * a real one-step flow checksums each payload (FNV-1a) in its worker and
 * the client compares with the checksum of what the child sent. Then the
 * edges: a non-blocking fd with nothing to read (SLUICE_EAGAIN, a later
 * call goes on), end of file before the exact length (SLUICE_EEOF,
 * payload_len tells what came), a full payload (SLUICE_EMSGSIZE, nothing
 * lost), appending after bytes the caller wrote, bad arguments, a source
 * that cannot be spliced from (eventfd), an arena memfd that refuses
 * splice (the fallback to read(2)), and a hugetlb arena when the machine
 * has huge pages. */
#include "runtime/flow_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)
#define MIB (UINT64_C(1) << 20)

static uint64_t fnv(uint64_t h, const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* The worker's answer: the payload's length and checksum. */
struct sum {
	uint64_t len;
	uint64_t hash;
};

static int h_sum(void *arg, sluice_item_t *items, unsigned n)
{
	(void)arg;
	for (unsigned i = 0; i < n; i++) {
		sluice_item_t *it = &items[i];
		struct sum s = {it->payload_len, fnv(FNV_OFFSET, it->payload, it->payload_len)};
		void *r = sluice_item_result_alloc(it, sizeof(s));
		if (r == NULL) {
			sluice_item_fail(it, "no result block");
			continue;
		}
		memcpy(r, &s, sizeof(s));
		it->result_len = sizeof(s);
	}
	return 0;
}

/* Byte i of stream `seed`: what senders send. */
static uint8_t pat(uint64_t seed, uint64_t i)
{
	uint64_t x = seed * UINT64_C(0x9e3779b97f4a7c15) + (i >> 3);
	x ^= x >> 29;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 32;
	return (uint8_t)(x >> (8 * (i & 7)));
}

static void fill(uint8_t *buf, uint64_t seed, uint64_t from, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		buf[i] = pat(seed, from + i);
}

static uint64_t pat_fnv(uint64_t h, uint64_t seed, uint64_t from, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ pat(seed, from + i)) * FNV_PRIME;
	return h;
}

/* Writes bytes [from, from + n) of stream `seed` to fd, in odd-sized
 * pieces so that the reader sees short reads. Returns false on failure. */
static bool send_pat(int fd, uint64_t seed, uint64_t from, uint64_t n)
{
	uint8_t buf[7001];
	for (uint64_t i = 0; i < n;) {
		uint64_t k = n - i < sizeof(buf) ? n - i : sizeof(buf);
		fill(buf, seed, from + i, k);
		for (uint64_t w = 0; w < k;) {
			ssize_t r = write(fd, buf + w, k - w);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return false;
			w += (uint64_t)r;
		}
		i += k;
	}
	return true;
}

/* Forks a child that sends [from, from + n) of `seed` on wfd, closes it
 * and exits; it closes `other` (the parent's end) first. */
static pid_t spawn_sender(int wfd, int other, uint64_t seed, uint64_t from, uint64_t n)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (other >= 0)
			close(other);
		bool ok = send_pat(wfd, seed, from, n);
		close(wfd);
		_exit(ok ? 0 : 1);
	}
	return pid;
}

static int tcp_listener;
static struct sockaddr_in tcp_addr;

static void tcp_listen(void)
{
	tcp_listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(tcp_listener >= 0);
	tcp_addr = (struct sockaddr_in){.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(bind(tcp_listener, (struct sockaddr *)&tcp_addr, sizeof(tcp_addr)) == 0);
	CHECK(listen(tcp_listener, 4) == 0);
	socklen_t len = sizeof(tcp_addr);
	CHECK(getsockname(tcp_listener, (struct sockaddr *)&tcp_addr, &len) == 0);
}

enum source { SRC_SOCKETPAIR, SRC_PIPE, SRC_TCP };
static const char *const source_name[] = {"socketpair", "pipe", "tcp"};

/* Opens a source of kind `src` whose sender child sends n bytes of `seed`;
 * returns the reading end and the child in *pid. */
static int open_source(enum source src, uint64_t seed, uint64_t n, pid_t *pid)
{
	int fds[2];
	switch (src) {
	case SRC_SOCKETPAIR:
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
		break;
	case SRC_PIPE:
		CHECK(pipe2(fds, O_CLOEXEC) == 0);
		break;
	case SRC_TCP: {
		pid_t c = fork();
		CHECK(c >= 0);
		if (c == 0) {
			close(tcp_listener);
			int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (s < 0 || connect(s, (struct sockaddr *)&tcp_addr, sizeof(tcp_addr)) != 0)
				_exit(1);
			bool ok = send_pat(s, seed, 0, n);
			close(s);
			_exit(ok ? 0 : 1);
		}
		*pid = c;
		int s = accept4(tcp_listener, NULL, NULL, SOCK_CLOEXEC);
		CHECK(s >= 0);
		return s;
	}
	}
	*pid = spawn_sender(fds[1], fds[0], seed, 0, n);
	close(fds[1]);
	return fds[0];
}

/* Submits t, waits, and checks that the worker saw exactly `len` bytes
 * with checksum `hash`; releases t. */
static void check_sum(sluice_flow_t *f, sluice_task_t *t, uint64_t len, uint64_t hash)
{
	CHECK(t->payload_len == len);
	CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
	test_wait_task(f, t);
	if (t->status != SLUICE_TASK_OK) {
		fprintf(stderr, "FAIL: task %llu: %s: %s\n", (unsigned long long)t->user,
			sluice_task_status_name(t->status), t->message);
		exit(TEST_FAIL);
	}
	struct sum s;
	CHECK(t->result != NULL && t->result_len == sizeof(s));
	memcpy(&s, t->result, sizeof(s));
	if (s.len != len || s.hash != hash) {
		fprintf(stderr, "FAIL: task %llu: worker saw %llu bytes hash %016llx, sent %llu hash %016llx\n",
			(unsigned long long)t->user, (unsigned long long)s.len,
			(unsigned long long)s.hash, (unsigned long long)len,
			(unsigned long long)hash);
		exit(TEST_FAIL);
	}
	CHECK_OK(sluice_task_release(f, t));
}

enum drive {
	BY_EXACT,     /* sluice_task_read_fd_exact(size), then end of file or a full payload */
	BY_EOF,       /* sluice_task_read_fd(no limit) until end of file */
	BY_EOF_SMALL, /* sluice_task_read_fd(3001) until end of file */
};
static const char *const drive_name[] = {"exact", "eof", "eof-3001"};

static void run_case(sluice_flow_t *f, enum source src, unsigned flags, uint64_t size,
		     enum drive d, uint64_t seed)
{
	printf("case %llu: %s %s %llu bytes, %s\n", (unsigned long long)seed, source_name[src],
	       flags ? "splice" : "read", (unsigned long long)size, drive_name[d]);
	fflush(stdout); /* before the fork */
	pid_t pid;
	int fd = open_source(src, seed, size, &pid);
	sluice_task_t *t;
	/* Until end of file: room for one byte more, so the end is seen. */
	CHECK_OK(sluice_task_alloc(f, d == BY_EXACT ? size : size + 1, &t));
	t->user = seed;
	if (d == BY_EXACT) {
		CHECK_OK(sluice_task_read_fd_exact(f, t, fd, size, flags));
		CHECK(t->payload_len == size);
		int64_t r = sluice_task_read_fd(f, t, fd, 1, flags);
		CHECK(r == (t->payload_len < t->payload_cap ? 0 : SLUICE_EMSGSIZE));
	} else {
		uint64_t max = d == BY_EOF ? UINT64_MAX : 3001;
		int64_t r;
		while ((r = sluice_task_read_fd(f, t, fd, max, flags)) > 0)
			CHECK((uint64_t)r <= max);
		CHECK(r == 0);
	}
	CHECK(test_wait(pid) == 0);
	close(fd);
	check_sum(f, t, size, pat_fnv(FNV_OFFSET, seed, 0, size));
}

static void run_all(sluice_flow_t *f, const unsigned *modes, unsigned nmodes, uint64_t *seed)
{
	static const uint64_t sizes[] = {0, 1, 4095, 4096, 65537, MIB};
	for (unsigned s = 0; s < 3; s++)
		for (unsigned m = 0; m < nmodes; m++)
			for (unsigned z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++)
				for (unsigned d = 0; d < 3; d++)
					run_case(f, (enum source)s, modes[m], sizes[z], (enum drive)d,
						 ++*seed);
}

/* A non-blocking socket: SLUICE_EAGAIN with nothing there (nothing
 * added), counts as bytes come, then 3 MiB from a child read as they come
 * under poll(2); every call appends where the last one stopped. */
static void nonblocking_case(sluice_flow_t *f, unsigned flags, uint64_t seed)
{
	const uint64_t big = 3 * MIB;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) == 0);
	sluice_task_t *t;
	CHECK_OK(sluice_task_alloc(f, 150 + big, &t));
	t->user = seed;
	CHECK(sluice_task_read_fd(f, t, sv[0], UINT64_MAX, flags) == SLUICE_EAGAIN);
	CHECK(t->payload_len == 0);
	CHECK(send_pat(sv[1], seed, 0, 100));
	CHECK(sluice_task_read_fd(f, t, sv[0], UINT64_MAX, flags) == 100);
	CHECK(sluice_task_read_fd(f, t, sv[0], UINT64_MAX, flags) == SLUICE_EAGAIN);
	CHECK(sluice_task_read_fd_exact(f, t, sv[0], 10, flags) == SLUICE_EAGAIN);
	CHECK(t->payload_len == 100);
	CHECK(send_pat(sv[1], seed, 100, 50));
	CHECK(sluice_task_read_fd(f, t, sv[0], 20, flags) == 20);
	CHECK(sluice_task_read_fd(f, t, sv[0], UINT64_MAX, flags) == 30);
	CHECK(sluice_task_read_fd(f, t, sv[0], UINT64_MAX, flags) == SLUICE_EAGAIN);
	CHECK(t->payload_len == 150);

	pid_t pid = spawn_sender(sv[1], sv[0], seed, 150, big);
	close(sv[1]);
	unsigned calls = 0, eagain = 0;
	for (;;) {
		struct pollfd p = {.fd = sv[0], .events = POLLIN};
		CHECK(poll(&p, 1, 60000) == 1);
		int64_t r = sluice_task_read_fd(f, t, sv[0], UINT64_MAX, flags);
		calls++;
		if (r == 0)
			break;
		if (r == SLUICE_EAGAIN) {
			eagain++;
			continue;
		}
		CHECK(r > 0);
	}
	CHECK(test_wait(pid) == 0);
	close(sv[0]);
	printf("non-blocking %s: %u calls (%u EAGAIN after poll)\n", flags ? "splice" : "read",
	       calls, eagain);
	check_sum(f, t, 150 + big, pat_fnv(FNV_OFFSET, seed, 0, 150 + big));
}

/* End of file before the exact length: SLUICE_EEOF, and payload_len says
 * what came, all of it kept. */
static void short_body_case(sluice_flow_t *f, unsigned flags, uint64_t seed)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	pid_t pid = spawn_sender(sv[1], sv[0], seed, 0, 1000);
	close(sv[1]);
	sluice_task_t *t;
	CHECK_OK(sluice_task_alloc(f, 5000, &t));
	t->user = seed;
	CHECK_RC(sluice_task_read_fd_exact(f, t, sv[0], 5000, flags), SLUICE_EEOF);
	CHECK(t->payload_len == 1000);
	CHECK(test_wait(pid) == 0);
	close(sv[0]);
	check_sum(f, t, 1000, pat_fnv(FNV_OFFSET, seed, 0, 1000));
}

/* Bytes waiting in a pipe (FIONREAD). */
static int pipe_avail(int fd)
{
	int n = -1;
	CHECK(ioctl(fd, FIONREAD, &n) == 0);
	return n;
}

/* A payload of 4096 bytes and 10000 in a pipe: 4096 read, then
 * SLUICE_EMSGSIZE, and the other 5904 still in the pipe, in order; an
 * exact read of more than the room is refused before anything is read. */
static void full_case(sluice_flow_t *f, unsigned flags, uint64_t seed)
{
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(send_pat(p[1], seed, 0, 10000));
	sluice_task_t *t, *t2;
	CHECK_OK(sluice_task_alloc(f, 4096, &t));
	CHECK(t->payload_cap == 4096);
	t->user = seed;
	int64_t r, got = 0;
	while ((r = sluice_task_read_fd(f, t, p[0], UINT64_MAX, flags)) > 0)
		got += r;
	CHECK(r == SLUICE_EMSGSIZE);
	CHECK(got == 4096 && t->payload_len == 4096);
	CHECK(sluice_task_read_fd(f, t, p[0], 1, flags) == SLUICE_EMSGSIZE);
	CHECK(pipe_avail(p[0]) == 10000 - 4096);

	CHECK_OK(sluice_task_alloc(f, 4096, &t2));
	CHECK_RC(sluice_task_read_fd_exact(f, t2, p[0], 4097, flags), SLUICE_EMSGSIZE);
	CHECK(t2->payload_len == 0 && pipe_avail(p[0]) == 10000 - 4096);
	CHECK_OK(sluice_task_release(f, t2));

	uint8_t rest[10000 - 4096], want[sizeof(rest)];
	CHECK(read(p[0], rest, sizeof(rest)) == (ssize_t)sizeof(rest));
	fill(want, seed, 4096, sizeof(want));
	CHECK(memcmp(rest, want, sizeof(rest)) == 0);
	close(p[0]);
	close(p[1]);
	check_sum(f, t, 4096, pat_fnv(FNV_OFFSET, seed, 0, 4096));
}

/* The caller writes a prefix in place, then the body comes from the fd
 * behind it. */
static void append_case(sluice_flow_t *f, unsigned flags, uint64_t seed)
{
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(send_pat(p[1], seed, 0, 5000));
	close(p[1]);
	sluice_task_t *t;
	CHECK_OK(sluice_task_alloc(f, 8192, &t));
	t->user = seed;
	memcpy(t->payload, "HDR:", 4);
	t->payload_len = 4;
	CHECK_OK(sluice_task_read_fd_exact(f, t, p[0], 5000, flags));
	CHECK(sluice_task_read_fd(f, t, p[0], UINT64_MAX, flags) == 0);
	close(p[0]);
	check_sum(f, t, 5004, pat_fnv(fnv(FNV_OFFSET, (const uint8_t *)"HDR:", 4), seed, 0, 5000));
}

/* Refusals: only a task between alloc and submit, known flags, a real fd,
 * payload_len within the cap. */
static void bad_args_case(sluice_flow_t *f)
{
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(write(p[1], "abcdef", 6) == 6);
	sluice_task_t *t, fake;
	memset(&fake, 0, sizeof(fake));
	CHECK_OK(sluice_task_alloc(f, 64, &t));
	CHECK(sluice_task_read_fd(NULL, t, p[0], 8, 0) == SLUICE_EINVAL);
	CHECK(sluice_task_read_fd(f, NULL, p[0], 8, 0) == SLUICE_EINVAL);
	CHECK(sluice_task_read_fd(f, &fake, p[0], 8, 0) == SLUICE_EINVAL);
	CHECK(sluice_task_read_fd(f, t, p[0], 8, 0x80) == SLUICE_EINVAL);
	CHECK(sluice_task_read_fd(f, t, -1, 8, 0) == SLUICE_EBADF);
	CHECK_RC(sluice_task_read_fd_exact(f, t, -1, 8, 0), SLUICE_EBADF);
	t->payload_len = t->payload_cap + 1;
	CHECK(sluice_task_read_fd(f, t, p[0], 8, 0) == SLUICE_EINVAL);
	t->payload_len = 0;
	CHECK(sluice_task_read_fd(f, t, p[0], 0, 0) == 0);
	CHECK(pipe_avail(p[0]) == 6);
	CHECK(sluice_task_read_fd(f, t, p[0], 3, 0) == 3);
	CHECK_OK(sluice_task_submit(f, t, 10 * SEC));
	CHECK(sluice_task_read_fd(f, t, p[0], 3, 0) == SLUICE_EINVAL); /* in flight */
	test_wait_task(f, t);
	CHECK(sluice_task_read_fd(f, t, p[0], 3, 0) == SLUICE_EINVAL); /* returned */
	CHECK_RC(sluice_task_read_fd_exact(f, t, p[0], 3, 0), SLUICE_EINVAL);
	CHECK_OK(sluice_task_release(f, t));
	CHECK(sluice_task_read_fd(f, t, p[0], 3, SLUICE_READ_SPLICE) == SLUICE_EINVAL); /* released */
	CHECK(pipe_avail(p[0]) == 3);
	/* Allocated with size 0: no block, always full. */
	CHECK_OK(sluice_task_alloc(f, 0, &t));
	CHECK(sluice_task_read_fd(f, t, p[0], 3, 0) == SLUICE_EMSGSIZE);
	CHECK_OK(sluice_task_read_fd_exact(f, t, p[0], 0, 0));
	CHECK_OK(sluice_task_release(f, t));
	close(p[0]);
	close(p[1]);
}

/* An eventfd cannot be spliced from: splice mode reads it. */
static void unspliceable_source_case(sluice_flow_t *f)
{
	int e = eventfd(5, EFD_CLOEXEC);
	CHECK(e >= 0);
	sluice_task_t *t;
	CHECK_OK(sluice_task_alloc(f, 64, &t));
	CHECK(sluice_task_read_fd(f, t, e, 64, SLUICE_READ_SPLICE) == 8);
	uint64_t v;
	memcpy(&v, t->payload, 8);
	CHECK(v == 5);
	CHECK(!f->fd_pipe.refused);
	close(e);
	CHECK_OK(sluice_task_release(f, t));
}

/* An arena memfd that refuses splice, as a hugetlbfs one does: the flow's
 * memfd descriptor is replaced by a hugetlb memfd (or, where there is
 * none, an O_APPEND one, which splice refuses too). The arena stays
 * mapped; every pipe-full goes into the payload by read(2). */
static void refused_memfd_case(sluice_flow_t *f, uint64_t *seed)
{
	int fd = sluice_arena_fd(f->arena);
	int h = memfd_create("sluice-test-huge", MFD_CLOEXEC | MFD_HUGETLB);
	if (h < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		h = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	}
	CHECK(h >= 0);
	CHECK(dup3(h, fd, O_CLOEXEC) == fd);
	close(h);
	CHECK(!f->fd_pipe.refused);
	static const uint64_t sizes[] = {1, 4096, 65537, MIB};
	for (unsigned z = 0; z < 4; z++) {
		run_case(f, SRC_SOCKETPAIR, SLUICE_READ_SPLICE, sizes[z], BY_EXACT, ++*seed);
		CHECK(f->fd_pipe.refused);
	}
	run_case(f, SRC_TCP, SLUICE_READ_SPLICE, MIB, BY_EOF, ++*seed);
	nonblocking_case(f, SLUICE_READ_SPLICE, ++*seed);
}

/* Splice mode on a flow whose arena has huge pages, where the machine has
 * them: hugetlbfs takes no splice, the fallback must carry the bytes. */
static void hugetlb_case(const sluice_step_t *step, uint64_t *seed)
{
	sluice_flow_opts_t o = {
		.size_of = sizeof(o),
		.name = "read-fd-huge",
		.nsteps = 1,
		.steps = step,
		.max_tasks = 8,
		.flags = SLUICE_FLOW_HUGEPAGES | SLUICE_FLOW_UNLISTED,
		.block_budget = 8 * MIB,
		.stop_grace_ns = 2 * SEC,
	};
	char err[256];
	sluice_flow_t *f;
	int rc = sluice_flow_create(&o, &f, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "FAIL: create: %s: %s\n", sluice_err_name(rc), err);
		exit(TEST_FAIL);
	}
	if (!sluice_arena_has_hugepages(f->arena)) {
		printf("skip: hugetlb arena case (no huge pages on this machine)\n");
		sluice_flow_destroy(f);
		return;
	}
	test_start(f);
	static const uint64_t sizes[] = {1, 4096, 65537, MIB};
	for (unsigned z = 0; z < 4; z++)
		run_case(f, SRC_SOCKETPAIR, SLUICE_READ_SPLICE, sizes[z], BY_EXACT, ++*seed);
	CHECK(f->fd_pipe.refused);
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	sluice_flow_destroy(f);
	printf("hugetlb arena: splice fell back to read(2), checksums right\n");
}

int main(void)
{
	sluice_step_t step = test_step("sum", h_sum, 1, 4);
	sluice_flow_t *f = test_flow("read-fd", &step, 1, 16);
	test_start(f);
	tcp_listen();
	uint64_t seed = 0;
	static const unsigned modes[] = {0, SLUICE_READ_SPLICE};
	run_all(f, modes, 2, &seed);
	printf("3 sources x 2 modes x 6 sizes x 3 ways: checksums right\n");
	CHECK(f->fd_pipe.open && !f->fd_pipe.refused);
	printf("splice pipe: %u bytes\n", f->fd_pipe.cap);
	for (unsigned m = 0; m < 2; m++) {
		nonblocking_case(f, modes[m], ++seed);
		short_body_case(f, modes[m], ++seed);
		full_case(f, modes[m], ++seed);
		append_case(f, modes[m], ++seed);
	}
	bad_args_case(f);
	unspliceable_source_case(f);
	refused_memfd_case(f, &seed);
	printf("edges: EAGAIN, EEOF, EMSGSIZE, append, bad arguments, fallbacks: right\n");
	CHECK_OK(sluice_flow_stop(f, 10 * SEC));
	CHECK(test_blocks_in_use(f) == 0);
	sluice_flow_destroy(f);
	close(tcp_listener);
	hugetlb_case(&step, &seed);
	return TEST_PASS;
}
