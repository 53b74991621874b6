/* Filling a task's payload straight from a file descriptor: read(2) into
 * the payload block in place, or splice(2) from the fd into the flow
 * handle's pipe and from the pipe into the arena's memfd at the block's
 * offset. See docs/RUNTIME.md, "Payload from a descriptor".
 *
 * The block is named by the task's private fields (payload_block_,
 * payload_cap_), never by the caller-writable payload and payload_cap.
 * Nothing here touches shared state but the payload block, which this
 * client owns until submit: no atomics; submit's release publishes the
 * bytes, whichever way the kernel wrote them (the memfd's pages are the
 * pages the arena maps).
 *
 * A splice moves bytes fd -> pipe, then pipe -> memfd. The pipe is empty
 * between calls: whatever the second leg does not take is read(2) out of
 * the pipe into the payload, so no byte is ever left behind in it.
 */
#define _GNU_SOURCE
#include <sluice/flow.h>
#include <sluice/error.h>

#include "base/die.h"
#include "runtime/flow_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* The pipe size asked for: one splice moves at most this much. Refused
 * (the user's pipe quota, fs.pipe-max-size): the default 64 KiB stays. */
#define PIPE_WANT (1u << 20)

void sluice__task_fd_fini(sluice_flow_t *f)
{
	struct sluice__fd_pipe *p = &f->fd_pipe;
	if (p->open) {
		close(p->rd);
		close(p->wr);
	}
	p->open = false;
}

static int pipe_get(struct sluice__fd_pipe *p)
{
	if (p->open)
		return 0;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -errno;
	int size = fcntl(fds[1], F_SETPIPE_SZ, (int)PIPE_WANT);
	if (size < 0)
		size = fcntl(fds[1], F_GETPIPE_SZ);
	p->rd = fds[0];
	p->wr = fds[1];
	p->cap = size > 0 ? (uint32_t)size : 4096u;
	p->open = true;
	return 0;
}

/* Moves the `n` bytes waiting in the pipe to dst with read(2). They are
 * there, so it never blocks and cannot fail. */
static void pipe_drain(struct sluice__fd_pipe *p, char *dst, uint64_t n)
{
	while (n > 0) {
		ssize_t k = read(p->rd, dst, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			SLUICE_DIE("read of the splice pipe: %zd (errno %d) with %llu bytes in it", k,
				   errno, (unsigned long long)n);
		dst += k;
		n -= (uint64_t)k;
	}
}

/* One read(2) of up to `want` bytes into dst: the count, 0 at end of
 * file, or -errno. */
static int64_t read_once(int fd, char *dst, uint64_t want)
{
	ssize_t k = read(fd, dst, want);
	return k >= 0 ? k : -errno;
}

/* One pipe-full: fd -> pipe, then pipe -> the memfd at file offset `off`
 * (dst is the same byte, mapped). Returns the bytes now in the payload, 0
 * at end of file, or -errno with nothing moved (SLUICE_EINVAL: fd cannot
 * be spliced from). */
static int64_t splice_once(sluice_flow_t *f, int fd, char *dst, uint64_t off, uint64_t want)
{
	struct sluice__fd_pipe *p = &f->fd_pipe;
	if (want > p->cap)
		want = p->cap;
	/* The fd's own O_NONBLOCK decides whether this blocks: no
	 * SPLICE_F_NONBLOCK, which a unix socket would take for its own. */
	ssize_t n = splice(fd, NULL, p->wr, NULL, want, SPLICE_F_MOVE);
	if (n <= 0)
		return n == 0 ? 0 : -errno;
	uint64_t done = 0;
	int memfd = sluice_arena_fd(f->arena);
	while (done < (uint64_t)n && !p->refused) {
		off64_t o = (off64_t)(off + done);
		ssize_t k = splice(p->rd, NULL, memfd, &o, (uint64_t)n - done, SPLICE_F_MOVE);
		if (k > 0) {
			done += (uint64_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL)
			p->refused = true; /* hugetlbfs: no splice_write; read(2) from now on */
		break; /* any other failure: this pipe-full goes by read(2) */
	}
	if (done < (uint64_t)n)
		pipe_drain(p, dst + done, (uint64_t)n - done);
	return n;
}

/* True when fd has O_NONBLOCK (false when that cannot be told). */
static bool nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

/* Splice mode: pipe-fulls until `want` bytes, end of file, or it would
 * block; a blocking fd stops after the first pipe-full, as read(2) would
 * return what it has. Falls back to read(2) where splice is refused. */
static int64_t splice_fill(sluice_flow_t *f, int fd, char *dst, uint64_t off, uint64_t want)
{
	struct sluice__fd_pipe *p = &f->fd_pipe;
	if (pipe_get(p) != 0 || p->refused)
		return read_once(fd, dst, want);
	uint64_t got = 0;
	int nb = -1; /* fd's O_NONBLOCK, looked up once a second pipe-full is due */
	while (got < want) {
		int64_t n = p->refused ? read_once(fd, dst + got, want - got)
				       : splice_once(f, fd, dst + got, off + got, want - got);
		if (n == SLUICE_EINVAL && !p->refused && got == 0)
			return read_once(fd, dst, want); /* fd cannot be spliced from */
		if (n <= 0)
			return got > 0 ? (int64_t)got : n;
		got += (uint64_t)n;
		if (got < want && nb < 0)
			nb = nonblocking(fd);
		if (nb == 0)
			break;
	}
	return (int64_t)got;
}

/* Checks the arguments (`t` a task of f between alloc and submit) and
 * finds t's payload block: its address and its offset in the arena's
 * memfd. */
static int payload_of(sluice_flow_t *f, sluice_task_t *t, int fd, unsigned flags, char **ptr,
		      uint64_t *off)
{
	if (f == NULL || t == NULL || f->lt == NULL || t < f->lt ||
	    t >= f->lt + f->tasks_per_client || t->lstate_ != SLUICE__LT_ALLOC ||
	    t->payload_len > t->payload_cap_ || (flags & ~(unsigned)SLUICE_READ_SPLICE))
		return SLUICE_EINVAL;
	if (fd < 0)
		return SLUICE_EBADF;
	*ptr = NULL;
	*off = 0;
	if (t->payload_block_ == SLUICE_BLOCK_NONE)
		return 0; /* allocated with size 0: cap 0, always full */
	uint64_t cap;
	char *p = sluice_blocks_ptr(&f->blocks, t->payload_block_, &cap);
	SLUICE_INVARIANT(p != NULL && cap >= t->payload_cap_);
	*ptr = p;
	*off = (uint64_t)(p - (char *)sluice_arena_base(f->arena));
	return 0;
}

int64_t sluice_task_read_fd(sluice_flow_t *f, sluice_task_t *t, int fd, uint64_t max,
			    unsigned flags)
{
	char *base;
	uint64_t off;
	int rc = payload_of(f, t, fd, flags, &base, &off);
	if (rc != 0)
		return rc;
	if (max == 0)
		return 0;
	uint64_t room = t->payload_cap_ - t->payload_len;
	if (room == 0)
		return SLUICE_EMSGSIZE;
	uint64_t want = max < room ? max : room;
	char *dst = base + t->payload_len;
	int64_t n = (flags & SLUICE_READ_SPLICE)
			    ? splice_fill(f, fd, dst, off + t->payload_len, want)
			    : read_once(fd, dst, want);
	if (n > 0)
		t->payload_len += (uint64_t)n;
	return n;
}

int sluice_task_read_fd_exact(sluice_flow_t *f, sluice_task_t *t, int fd, uint64_t n,
			      unsigned flags)
{
	char *base;
	uint64_t off;
	int rc = payload_of(f, t, fd, flags, &base, &off);
	if (rc != 0)
		return rc;
	if (n > t->payload_cap_ - t->payload_len)
		return SLUICE_EMSGSIZE;
	for (uint64_t got = 0; got < n;) {
		int64_t k = sluice_task_read_fd(f, t, fd, n - got, flags);
		if (k == 0)
			return SLUICE_EEOF;
		if (k < 0)
			return (int)k;
		got += (uint64_t)k;
	}
	return 0;
}
