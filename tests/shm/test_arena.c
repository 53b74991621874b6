/* The arena: create, seal, attach with validation, read-only maps, and
 * the bounds-checked offset translation. Real memfds, real processes. */
#define _GNU_SOURCE
#include "common/test.h"

#include <fcntl.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <sluice/arena.h>
#include "shm/arena_layout.h"

static sluice_arena_t *make_arena(uint32_t flags)
{
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "test-arena", .flags = flags};
	o.nregions = 3;
	o.regions[0] = (sluice_region_req_t){.id = 7, .size = 100};
	o.regions[1] = (sluice_region_req_t){.id = 9, .size = 8192};
	o.regions[2] = (sluice_region_req_t){.id = 11, .size = 1 << 20};
	sluice_arena_t *a = NULL;
	CHECK_OK(sluice_arena_create(&o, &a));
	return a;
}

/* A memfd holding `len` bytes of `bytes`, sealed like an arena unless
 * `seal` is false: the raw material for forged arenas. */
static int forged_memfd(const void *bytes, size_t len, bool seal)
{
	int fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0);
	CHECK(write(fd, bytes, len) == (ssize_t)len);
	if (seal)
		CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
	return fd;
}

/* Attaches to a copy of arena `a` whose header `edit` altered. */
static int attach_edited(sluice_arena_t *a, void (*edit)(struct sluice_arena_hdr *))
{
	size_t len = sluice_arena_size(a);
	char *copy = malloc(len);
	CHECK(copy != NULL);
	memcpy(copy, sluice_arena_base(a), len);
	edit((struct sluice_arena_hdr *)copy);
	int fd = forged_memfd(copy, len, true);
	free(copy);
	sluice_arena_t *b = NULL;
	int rc = sluice_arena_attach(fd, 0, &b);
	close(fd);
	CHECK(rc != 0 ? b == NULL : true);
	sluice_arena_destroy(b);
	return rc;
}

static void edit_magic(struct sluice_arena_hdr *h) { h->magic ^= 1; }
static void edit_version(struct sluice_arena_hdr *h) { h->layout_version = 99; }
static void edit_total(struct sluice_arena_hdr *h) { h->total_size += 4096; }
static void edit_hdrsize(struct sluice_arena_hdr *h) { h->header_size = 12; }
static void edit_nregions(struct sluice_arena_hdr *h) { h->nregions = 1000; }
static void edit_region_oob(struct sluice_arena_hdr *h) { h->regions[2].size = UINT64_MAX - 5; }
static void edit_region_overlap(struct sluice_arena_hdr *h) { h->regions[1].offset = h->regions[0].offset; }
static void edit_region_misaligned(struct sluice_arena_hdr *h) { h->regions[1].offset += 8; }
static void edit_region_in_header(struct sluice_arena_hdr *h) { h->regions[0].offset = 0; }
static void edit_nothing(struct sluice_arena_hdr *h) { (void)h; }

static void test_create_and_regions(void)
{
	sluice_arena_t *a = make_arena(0);
	uint64_t off, size;
	CHECK_OK(sluice_arena_region(a, 7, &off, &size));
	CHECK(off == SLUICE_ARENA_REGION_ALIGN && size == 4096);
	CHECK_OK(sluice_arena_region(a, 9, &off, &size));
	CHECK(off == 2 * 4096 && size == 8192);
	CHECK_OK(sluice_arena_region(a, 11, &off, &size));
	CHECK(off + size == sluice_arena_size(a));
	CHECK_RC(sluice_arena_region(a, 8, &off, &size), SLUICE_ENOENT);

	struct sluice_arena_hdr *h = sluice_arena_base(a);
	CHECK(h->magic == SLUICE_ARENA_MAGIC);
	CHECK(h->layout_version == SLUICE_ARENA_LAYOUT_VERSION);
	CHECK(h->header_size == sizeof(*h));
	CHECK(h->total_size == sluice_arena_size(a));

	/* The descriptor is close-on-exec. */
	CHECK(fcntl(sluice_arena_fd(a), F_GETFD) & FD_CLOEXEC);
	sluice_arena_destroy(a);

	sluice_arena_opts_t bad = {.size_of = sizeof(bad), .nregions = 2};
	bad.regions[0] = (sluice_region_req_t){.id = 1, .size = 10};
	bad.regions[1] = (sluice_region_req_t){.id = 1, .size = 10};
	CHECK_RC(sluice_arena_create(&bad, &a), SLUICE_EINVAL); /* duplicate id */
	bad.regions[1].id = 0;
	CHECK_RC(sluice_arena_create(&bad, &a), SLUICE_EINVAL); /* id 0 */
	bad.regions[1] = (sluice_region_req_t){.id = 2, .size = 0};
	CHECK_RC(sluice_arena_create(&bad, &a), SLUICE_EINVAL); /* empty region */
	bad.size_of = 8;
	CHECK_RC(sluice_arena_create(&bad, &a), SLUICE_EINVAL); /* unknown struct size */
}

static void test_sealed(void)
{
	sluice_arena_t *a = make_arena(0);
	int fd = sluice_arena_fd(a);
	off_t size = (off_t)sluice_arena_size(a);
	errno = 0;
	CHECK(ftruncate(fd, size / 2) == -1 && errno == EPERM);
	errno = 0;
	CHECK(ftruncate(fd, size * 2) == -1 && errno == EPERM);
	errno = 0;
	CHECK(fallocate(fd, 0, size, 4096) == -1 && errno == EPERM);
	errno = 0;
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EPERM);
	int seals = fcntl(fd, F_GET_SEALS);
	CHECK(seals == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == size);
	sluice_arena_destroy(a);
}

static void test_attach_shares_memory(void)
{
	sluice_arena_t *a = make_arena(0);
	uint64_t off;
	CHECK_OK(sluice_arena_region(a, 9, &off, NULL));
	volatile uint64_t *word = sluice_arena_at(a, off, 8, 8);
	CHECK(word != NULL);
	*word = 1;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The child maps it again, at its own address, and writes. */
		sluice_arena_t *b = NULL;
		if (sluice_arena_attach(sluice_arena_fd(a), 0, &b) != 0)
			_exit(2);
		uint64_t boff;
		if (sluice_arena_region(b, 9, &boff, NULL) != 0 || boff != off)
			_exit(3);
		volatile uint64_t *w = sluice_arena_at(b, boff, 8, 8);
		if (*w != 1)
			_exit(4);
		*w = 42;
		sluice_arena_destroy(b);
		_exit(0);
	}
	CHECK(test_wait(pid) == 0);
	CHECK(*word == 42);
	sluice_arena_destroy(a);
}

static void test_attach_refusals(void)
{
	sluice_arena_t *a = make_arena(0);
	sluice_arena_t *b = NULL;

	CHECK_RC(attach_edited(a, edit_nothing), 0);
	CHECK_RC(attach_edited(a, edit_magic), SLUICE_EBADMAGIC);
	CHECK_RC(attach_edited(a, edit_version), SLUICE_EVERSION);
	CHECK_RC(attach_edited(a, edit_total), SLUICE_ETRUNCATED);
	CHECK_RC(attach_edited(a, edit_hdrsize), SLUICE_ECORRUPT);
	CHECK_RC(attach_edited(a, edit_nregions), SLUICE_ECORRUPT);
	CHECK_RC(attach_edited(a, edit_region_oob), SLUICE_ECORRUPT);
	CHECK_RC(attach_edited(a, edit_region_overlap), SLUICE_ECORRUPT);
	CHECK_RC(attach_edited(a, edit_region_misaligned), SLUICE_ECORRUPT);
	CHECK_RC(attach_edited(a, edit_region_in_header), SLUICE_ECORRUPT);

	/* A memfd that is not an arena: random bytes, sealed. */
	char junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 131 + 7);
	int fd = forged_memfd(junk, sizeof(junk), true);
	CHECK_RC(sluice_arena_attach(fd, 0, &b), SLUICE_EBADMAGIC);
	close(fd);

	/* A truncated header: the right magic, but fewer bytes than a header. */
	fd = forged_memfd(sluice_arena_base(a), 40, true);
	CHECK_RC(sluice_arena_attach(fd, 0, &b), SLUICE_ETRUNCATED);
	close(fd);
	fd = forged_memfd(sluice_arena_base(a), 0, true);
	CHECK_RC(sluice_arena_attach(fd, 0, &b), SLUICE_ETRUNCATED);
	close(fd);

	/* A whole arena copied into a memfd that is not sealed: refused, since
	 * anyone could truncate it under us. */
	fd = forged_memfd(sluice_arena_base(a), sluice_arena_size(a), false);
	CHECK_RC(sluice_arena_attach(fd, 0, &b), SLUICE_ENOTSEALED);
	close(fd);

	/* A regular file and a pipe are not memfds. */
	char path[] = "/tmp/sluice-arena-test-XXXXXX";
	fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	CHECK(write(fd, sluice_arena_base(a), 4096) == 4096);
	CHECK_RC(sluice_arena_attach(fd, 0, &b), SLUICE_ENOTSEALED);
	close(fd);
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK_RC(sluice_arena_attach(p[0], 0, &b), SLUICE_ENOTSEALED);
	close(p[0]);
	close(p[1]);
	CHECK_RC(sluice_arena_attach(-1, 0, &b), SLUICE_EINVAL);
	CHECK_RC(sluice_arena_attach(1000, 0, &b), SLUICE_EBADF);
	CHECK_RC(sluice_arena_attach(sluice_arena_fd(a), 0x80, &b), SLUICE_EINVAL);
	CHECK(b == NULL);
	sluice_arena_destroy(a);
}

static void test_translation(void)
{
	sluice_arena_t *a = make_arena(0);
	uint64_t size = sluice_arena_size(a);
	char *base = sluice_arena_base(a);

	CHECK(sluice_arena_at(a, 0, size, 1) == base);
	CHECK(sluice_arena_at(a, 64, 64, 64) == base + 64);
	CHECK(sluice_arena_at(a, size, 0, 0) == base + size);
	CHECK(sluice_arena_at(a, size - 8, 8, 8) == base + size - 8);
	/* Out of bounds. */
	CHECK(sluice_arena_at(a, size - 8, 9, 1) == NULL);
	CHECK(sluice_arena_at(a, size + 1, 0, 1) == NULL);
	CHECK(sluice_arena_at(a, 0, size + 1, 1) == NULL);
	/* Wrap-around: off + len overflows 64 bits. */
	CHECK(sluice_arena_at(a, UINT64_MAX - 1, 4, 1) == NULL);
	CHECK(sluice_arena_at(a, 8, UINT64_MAX, 1) == NULL);
	/* Misaligned, and an alignment that is not a power of two. */
	CHECK(sluice_arena_at(a, 4, 8, 8) == NULL);
	CHECK(sluice_arena_at(a, 96, 8, 64) == NULL);
	CHECK(sluice_arena_at(a, 24, 8, 24) == NULL);
	sluice_arena_destroy(a);
}

static void test_read_only(void)
{
	sluice_arena_t *a = make_arena(0);
	int rfd = sluice_arena_reopen_rdonly(a);
	CHECK(rfd >= 0);
	CHECK((fcntl(rfd, F_GETFL) & O_ACCMODE) == O_RDONLY);

	sluice_arena_t *b = NULL;
	/* Read-write attach through a read-only descriptor is refused. */
	CHECK_RC(sluice_arena_attach(rfd, 0, &b), SLUICE_EACCES);
	CHECK_OK(sluice_arena_attach(rfd, SLUICE_ARENA_RDONLY, &b));
	CHECK(sluice_arena_is_rdonly(b));
	uint64_t off;
	CHECK_OK(sluice_arena_region(b, 11, &off, NULL));
	volatile uint64_t *w_rw = sluice_arena_at(a, off, 8, 8);
	volatile uint64_t *w_ro = sluice_arena_at(b, off, 8, 8);
	*w_rw = 77;
	CHECK(*w_ro == 77);

	/* mprotect to writable fails: the descriptor itself is read-only. */
	errno = 0;
	CHECK(mprotect(sluice_arena_base(b), sluice_arena_size(b), PROT_READ | PROT_WRITE) == -1);
	CHECK(errno == EACCES);

	/* A write through the read-only map faults (in a child). */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* sanitizers catch SEGV; we want the kernel's verdict */
		*w_ro = 1;
		_exit(0);
	}
	CHECK(test_wait(pid) == 128 + SIGSEGV);
	CHECK(*w_rw == 77);
	sluice_arena_destroy(b);
	close(rfd);
	sluice_arena_destroy(a);
}

static void test_hugepages_fall_back(void)
{
	/* Huge pages are asked for; whether the kernel has them or not, the
	 * arena works and attach agrees on what it got. */
	sluice_arena_t *a = make_arena(SLUICE_ARENA_HUGEPAGES);
	sluice_arena_t *b = NULL;
	CHECK_OK(sluice_arena_attach(sluice_arena_fd(a), 0, &b));
	CHECK(sluice_arena_has_hugepages(a) == sluice_arena_has_hugepages(b));
	CHECK(sluice_arena_size(a) == sluice_arena_size(b));
	if (sluice_arena_has_hugepages(a))
		CHECK(sluice_arena_size(a) % (2u << 20) == 0);
	memset(sluice_arena_base(a), 0, 4096);
	printf("huge pages: %s\n", sluice_arena_has_hugepages(a) ? "yes" : "no (fell back)");
	sluice_arena_destroy(b);
	sluice_arena_destroy(a);
}

int main(void)
{
	test_create_and_regions();
	test_sealed();
	test_attach_shares_memory();
	test_attach_refusals();
	test_translation();
	test_read_only();
	test_hugepages_fall_back();
	printf("ok\n");
	return TEST_PASS;
}
