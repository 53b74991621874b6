/* A hostile client against the arena's memfd itself (docs/SECURITY.md):
 * the descriptor an attached client is handed is the arena's memfd, sealed
 * by create against shrinking and growing, and against further seals.
 * While a good attached client and the creator keep submitting and
 * checking results, the hostile client tries to shrink, grow, empty and
 * extend it (ftruncate, fallocate, pwrite past the end), to seal it against
 * writes (which would fault every other process's next store), the same
 * through a second descriptor reopened from /proc/self/fd, and changes the
 * protection of its own mapping (PROT_NONE: only its own view changes).
 * Every one that could hurt the others is refused (EPERM); a hole punched
 * in its own task entries (allowed: it is a write of zeros, as its
 * mapping can do) zeroes only those. An observer's read-only descriptor
 * refuses all of it too. The flow is unaffected: the arena keeps its size,
 * no process dies, the good clients lose nothing, and new clients work. */
#include "runtime/hostile_test.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define EXPECT_ERRNO(call, err)                                                          \
	do {                                                                             \
		errno = 0;                                                               \
		long r_ = (long)(call);                                                  \
		if (r_ != -1 || errno != (err)) {                                        \
			fprintf(stderr, "FAIL %s:%d: %s returned %ld, errno %d (%s), want %s\n", \
				__FILE__, __LINE__, #call, r_, errno, strerror(errno), #err); \
			exit(TEST_FAIL);                                                 \
		}                                                                        \
	} while (0)

static const int SEALS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

/* What a descriptor of the arena refuses, whoever holds it. */
static void refused(int fd, off_t size, bool writable)
{
	int no = writable ? EPERM : EINVAL; /* ftruncate of an O_RDONLY descriptor: EINVAL */
	EXPECT_ERRNO(ftruncate(fd, 0), no);
	EXPECT_ERRNO(ftruncate(fd, size - 4096), no);
	EXPECT_ERRNO(ftruncate(fd, size + 4096), no);
	EXPECT_ERRNO(fallocate(fd, 0, size, 4096), writable ? EPERM : EBADF);
	EXPECT_ERRNO(fallocate(fd, FALLOC_FL_KEEP_SIZE, size, 1 << 20), writable ? EPERM : EBADF);
	char b = 0;
	EXPECT_ERRNO(pwrite(fd, &b, 1, size), writable ? EPERM : EBADF);
	EXPECT_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EPERM);
	EXPECT_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), EPERM);
	EXPECT_ERRNO(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL), EPERM);
	CHECK(fcntl(fd, F_GET_SEALS) == SEALS);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == size);
}

static int hostile(sluice_flow_t *g, void *arg)
{
	(void)arg;
	int fd = sluice_arena_fd(g->arena);
	off_t size = (off_t)sluice_arena_size(g->arena);
	CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
	refused(fd, size, true);
	printf("hostile: the memfd refuses truncate, grow, fallocate, pwrite past the end, "
	       "more seals\n");

	/* A second open file description of the same memfd: the seals are
	 * the inode's. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int fd2 = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd2 >= 0);
	refused(fd2, size, true);
	close(fd2);

	/* A hole in its own entries (whole pages of its share): a write of
	 * zeros, which its mapping could do anyway; the entries read FREE at
	 * generation 0 afterwards, and nobody else's is touched. */
	char *base = sluice_arena_base(g->arena);
	uint64_t lo = (uint64_t)((char *)&g->tasks[h_first(g, g->client)] - base);
	uint64_t hi = lo + (uint64_t)g->tasks_per_client * sizeof(struct sluice__task_entry);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t a = (lo + page - 1) / page * page, b = hi / page * page;
	CHECK(b > a);
	memset(base + a, 0x5a, b - a); /* garbage first: the hole must clear it */
	CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)a, (off_t)(b - a)) == 0);
	for (uint64_t o = a; o < b; o++)
		CHECK(base[o] == 0);
	printf("hostile: punched a hole of %llu bytes in its own entries\n",
	       (unsigned long long)(b - a));

	/* Its own mapping's protection is its own: PROT_NONE, back to read
	 * and write; nobody else's view changes. */
	CHECK(mprotect(base, (size_t)size, PROT_NONE) == 0);
	usleep(100 * 1000);
	CHECK(mprotect(base, (size_t)size, PROT_READ | PROT_WRITE) == 0);
	return 0;
}

/* An observer's descriptor is the memfd reopened O_RDONLY: a writable
 * mapping, mprotect to writable, and everything above are refused. */
static void observer_refuses(void)
{
	sluice_flow_t *obs = h_attach(SLUICE_ATTACH_READ_ONLY);
	int fd = sluice_arena_fd(obs->arena);
	off_t size = (off_t)sluice_arena_size(obs->arena);
	CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
	refused(fd, size, false);
	EXPECT_ERRNO((long)(intptr_t)mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
		     EACCES);
	EXPECT_ERRNO(mprotect(sluice_arena_base(obs->arena), (size_t)size, PROT_READ | PROT_WRITE),
		     EACCES);
	sluice_flow_destroy(obs);
}

int main(void)
{
	sluice_flow_t *f = h_flow("seal", 3, NULL);
	int fd = sluice_arena_fd(f->arena);
	struct stat st0;
	CHECK(fstat(fd, &st0) == 0);
	CHECK(fcntl(fd, F_GET_SEALS) == SEALS);
	pid_t before[SLUICE_FLOW_MAX_WORKERS];
	h_worker_pids(f, before);
	int stop[2];
	CHECK(pipe(stop) == 0);
	pid_t good = h_spawn_good(stop[0], stop[1], 1);
	close(stop[0]);
	uint64_t seq = 0;
	h_good_round(f, 0, &seq);
	CHECK(h_good_while(f, h_spawn_hostile(hostile, NULL), 0, &seq) == 0);
	observer_refuses();
	h_good_round(f, 0, &seq);
	close(stop[1]);
	CHECK(test_wait(good) == 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == st0.st_size);
	CHECK(fcntl(fd, F_GET_SEALS) == SEALS);
	h_check_intact(f, before);
	h_wait_slots_free(f);
	h_new_clients_work(f, f->nclients - 1, 2, &seq);
	h_check_intact(f, before);
	printf("the creator ran %llu tasks beside it\n", (unsigned long long)seq);
	h_stop(f);
	printf("ok\n");
	return TEST_PASS;
}
