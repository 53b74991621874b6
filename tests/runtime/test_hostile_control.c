/* A hostile peer of a running flow's supervisor, on its control socket
 * (docs/SECURITY.md, docs/ATTACH.md), while a good attached client and the
 * creator keep submitting and checking results:
 *   - garbage, truncated, empty, oversized (33 bytes, 1,000, 60,000)
 *     hellos, hellos of another protocol or layout, with unknown flags,
 *     a bad type, reserved bits, a pid of 0, a descriptor attached: each
 *     refused with its code and closed;
 *   - a granted client that then sends bytes on its lease: the supervisor
 *     ends it (its slot is drained and comes back);
 *   - 1,000 connections that say nothing: a good client attaches and
 *     works meanwhile, and every one of them is told SLUICE_EBUSY (dropped
 *     as the oldest of a full table) or SLUICE_ETIMEDOUT (no hello in
 *     time) and closed: none is left hanging.
 * No process of the flow dies; the good clients lose nothing. */
#include "runtime/hostile_test.h"

#include "runtime/control.h"

#include <sys/resource.h>
#include <sys/socket.h>

#define NSILENT 1000

struct report {
	_Atomic uint32_t crowd;      /* 1: the silent connections are open */
	_Atomic uint32_t crowd_done; /* 1: the test's good client attached meanwhile */
};
static struct report *R;
static char msg[256];

static int connect_raw(void)
{
	int fd;
	int rc = sluice__ctl_connect(h_name, sluice__ctl_now_ns() + 20 * SEC * test_slowdown(), &fd,
				     msg, sizeof(msg));
	if (rc != 0) {
		fprintf(stderr, "FAIL: connect: %s: %s\n", sluice_err_name(rc), msg);
		exit(TEST_FAIL);
	}
	return fd;
}

/* Reads the supervisor's reply on fd (a refusal) and then its hang-up;
 * returns the status. */
static int verdict(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	CHECK(poll(&p, 1, (int)(20 * SEC * test_slowdown() / MSEC)) == 1);
	struct sluice__ctl_reply r, out;
	ssize_t n = recv(fd, &r, sizeof(r), 0);
	CHECK(n == (ssize_t)sizeof(r));
	CHECK_OK(sluice__ctl_parse_reply(&r, sizeof(r), &out, msg, sizeof(msg)));
	snprintf(msg, sizeof(msg), "%s", r.message);
	CHECK(out.status < 0);
	CHECK(poll(&p, 1, (int)(20 * SEC * test_slowdown() / MSEC)) == 1);
	CHECK(recv(fd, &r, sizeof(r), MSG_DONTWAIT) == 0); /* closed */
	return out.status;
}

/* Sends len bytes of buf as one message on a new connection; returns the
 * verdict. */
static int send_raw(const void *buf, size_t len)
{
	int fd = connect_raw();
	CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len);
	int rc = verdict(fd);
	close(fd);
	return rc;
}

static void expect(const char *what, int got, int want)
{
	printf("hostile: %s: %s \"%s\"\n", what, sluice_err_name(got), msg);
	if (got != want) {
		fprintf(stderr, "FAIL: %s: %s, want %s\n", what, sluice_err_name(got),
			sluice_err_name(want));
		exit(TEST_FAIL);
	}
}

static void garbage(void)
{
	struct sluice__ctl_hello h, b;
	sluice__ctl_hello_init(&h, 0);
	static unsigned char big[60000];
	memcpy(big, &h, sizeof(h));
	expect("empty", send_raw(&h, 0), SLUICE_ETRUNCATED);
	expect("4 bytes", send_raw(&h, 4), SLUICE_ETRUNCATED);
	expect("16 bytes", send_raw(&h, 16), SLUICE_ETRUNCATED);
	expect("33 bytes", send_raw(big, sizeof(h) + 1), SLUICE_EMSGSIZE);
	expect("1,000 bytes", send_raw(big, 1000), SLUICE_EMSGSIZE);
	expect("60,000 bytes", send_raw(big, sizeof(big)), SLUICE_EMSGSIZE);
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (size_t i = 0; i < sizeof(big); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		big[i] = (unsigned char)x;
	}
	big[0] = 'x';
	expect("random bytes", send_raw(big, sizeof(h)), SLUICE_EBADMAGIC);
	b = h;
	b.proto = SLUICE__CTL_PROTO_VERSION + 1;
	expect("another protocol", send_raw(&b, sizeof(b)), SLUICE_EVERSION);
	b = h;
	b.layout = SLUICE_FLOW_LAYOUT_VERSION + 7;
	expect("another layout", send_raw(&b, sizeof(b)), SLUICE_EVERSION);
	b = h;
	b.flags = 1u << 31;
	expect("unknown flags", send_raw(&b, sizeof(b)), SLUICE_ENOTSUP);
	b = h;
	b.type = 2; /* a reply's */
	expect("a reply's type", send_raw(&b, sizeof(b)), SLUICE_ENOTSUP);
	b = h;
	b.reserved[1] = 1;
	expect("reserved bits", send_raw(&b, sizeof(b)), SLUICE_EINVAL);
	b = h;
	b.pid = 0;
	expect("pid 0", send_raw(&b, sizeof(b)), SLUICE_EINVAL);

	/* A hello with a descriptor. */
	int fd = connect_raw();
	struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	int zero = 0;
	memcpy(CMSG_DATA(c), &zero, sizeof(int));
	CHECK(sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(h));
	expect("a descriptor with the hello", verdict(fd), SLUICE_EPROTO);
	close(fd);

	/* A burst of junk connections, one after the other. */
	for (int i = 0; i < 200; i++)
		CHECK(send_raw(big, 1 + (size_t)i % 64) < 0);
}

/* Granted, then bytes on the lease: the supervisor ends the client. */
static void chatty_lease(void)
{
	struct sluice__ctl_attach a;
	CHECK_OK(sluice__ctl_attach(h_name, 0, 20 * SEC * test_slowdown(), &a, msg, sizeof(msg)));
	CHECK(a.slot != SLUICE__CTL_NO_SLOT);
	CHECK(send(a.conn_fd, "more", 4, MSG_NOSIGNAL) == 4);
	struct pollfd p = {.fd = a.conn_fd, .events = POLLRDHUP};
	CHECK(poll(&p, 1, (int)(20 * SEC * test_slowdown() / MSEC)) == 1); /* it hung up on us */
	printf("hostile: bytes on a lease: slot %u taken back\n", a.slot);
	close(a.conn_fd);
	close(a.memfd);
	close(a.efd);
}

static void silent_crowd(void)
{
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur < NSILENT + 64) {
		if (rl.rlim_max < NSILENT + 64) {
			printf("note: RLIMIT_NOFILE hard limit %llu < %d: no silent crowd\n",
			       (unsigned long long)rl.rlim_max, NSILENT + 64);
			atomic_store(&R->crowd, 2);
			return;
		}
		rl.rlim_cur = NSILENT + 64;
		CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	}
	static int fds[NSILENT];
	for (int i = 0; i < NSILENT; i++)
		fds[i] = connect_raw();
	atomic_store(&R->crowd, 1);
	uint64_t until = test_now_ns() + 60 * SEC * test_slowdown();
	while (atomic_load(&R->crowd_done) == 0) {
		CHECK(test_now_ns() < until);
		usleep(1000);
	}
	unsigned busy = 0, expired = 0;
	for (int i = 0; i < NSILENT; i++) {
		int rc = verdict(fds[i]);
		if (rc == SLUICE_EBUSY)
			busy++;
		else if (rc == SLUICE_ETIMEDOUT)
			expired++;
		else
			expect("a silent connection", rc, SLUICE_ETIMEDOUT);
		close(fds[i]);
	}
	printf("hostile: %d silent connections: %u dropped as the oldest (EBUSY), %u at their "
	       "deadline (ETIMEDOUT)\n",
	       NSILENT, busy, expired);
}

static int hostile(sluice_flow_t *g, void *arg)
{
	(void)g;
	(void)arg;
	garbage();
	chatty_lease();
	silent_crowd();
	return 0;
}

/* The hostile peer attaches too (h_spawn_hostile), as any client would
 * before it misbehaves; its slot is drained when it exits. */
int main(void)
{
	R = test_shared(sizeof(*R));
	sluice_flow_t *f = h_flow("control", 5, NULL);
	pid_t before[SLUICE_FLOW_MAX_WORKERS];
	h_worker_pids(f, before);
	int stop[2];
	CHECK(pipe(stop) == 0);
	pid_t good = h_spawn_good(stop[0], stop[1], 1);
	close(stop[0]);
	uint64_t seq = 0;
	h_good_round(f, 0, &seq);
	pid_t bad = h_spawn_hostile(hostile, NULL);
	int st = -1;
	for (;;) {
		h_good_round(f, 0, &seq);
		if (atomic_load(&R->crowd) == 1 && atomic_load(&R->crowd_done) == 0) {
			/* 1,000 connections wait, silent: a good client still
			 * attaches and works. */
			h_new_client_works(f, 2, &seq);
			atomic_store(&R->crowd_done, 1);
		}
		pid_t r = waitpid(bad, &st, WNOHANG);
		CHECK(r >= 0);
		if (r == bad)
			break;
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(stop[1]);
	CHECK(test_wait(good) == 0);
	h_check_intact(f, before);
	h_wait_slots_free(f);
	h_new_clients_work(f, f->nclients - 1, 3, &seq);
	h_check_intact(f, before);
	printf("the creator ran %llu tasks beside it\n", (unsigned long long)seq);
	h_stop(f);
	printf("ok\n");
	return TEST_PASS;
}
