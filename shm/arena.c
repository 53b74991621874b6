/* memfd arenas: create, seal, attach with validation, map read-only, unmap,
 * bounds-checked offset translation. Layout in shm/arena_layout.h. */
#define _GNU_SOURCE
#include <sluice/arena.h>
#include <sluice/error.h>

#include "shm/arena_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define HUGE_PAGE_SIZE (UINT64_C(2) << 20)
#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

struct sluice_arena {
	int fd;
	uint32_t flags; /* SLUICE_ARENA_RDONLY, SLUICE_ARENA_HUGEPAGES */
	void *base;
	uint64_t size;
	uint32_t nregions;
	/* A private copy of the region table, taken once it was validated:
	 * later lookups never re-read the (writable) shared header. */
	struct sluice_region_entry regions[SLUICE_ARENA_MAX_REGIONS];
};

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int check_opts(const sluice_arena_opts_t *o, uint64_t *total)
{
	if (o == NULL || o->size_of < sizeof(*o) || o->nregions > SLUICE_ARENA_MAX_REGIONS)
		return SLUICE_EINVAL;
	if (o->flags & ~(uint32_t)SLUICE_ARENA_HUGEPAGES)
		return SLUICE_EINVAL;
	uint64_t off = SLUICE_ARENA_REGION_ALIGN; /* the header's page */
	for (uint32_t i = 0; i < o->nregions; i++) {
		const sluice_region_req_t *r = &o->regions[i];
		if (r->id == 0 || r->size == 0 || r->size > (UINT64_C(1) << 46))
			return SLUICE_EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (o->regions[j].id == r->id)
				return SLUICE_EINVAL;
		off += round_up(r->size, SLUICE_ARENA_REGION_ALIGN);
	}
	*total = off;
	return 0;
}

/* Makes the memfd and maps it; hugetlb first when asked, else normal pages.
 * Returns 0 with *fd, *base, *size set and *huge telling which it got. */
static int make_memfd(const char *name, uint64_t want, bool try_huge, int *fd, void **base,
		      uint64_t *size, bool *huge)
{
	if (try_huge) {
		uint64_t hsize = round_up(want, HUGE_PAGE_SIZE);
		int h = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
		if (h >= 0) {
			void *p = MAP_FAILED;
			if (ftruncate(h, (off_t)hsize) == 0)
				p = mmap(NULL, hsize, PROT_READ | PROT_WRITE, MAP_SHARED, h, 0);
			if (p != MAP_FAILED) {
				*fd = h, *base = p, *size = hsize, *huge = true;
				return 0;
			}
			close(h); /* no huge pages to be had: fall back quietly */
		}
	}
	int f = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f < 0)
		return -errno;
	if (ftruncate(f, (off_t)want) != 0) {
		int err = -errno;
		close(f);
		return err;
	}
	void *p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	if (p == MAP_FAILED) {
		int err = -errno;
		close(f);
		return err;
	}
	if (try_huge)
		(void)madvise(p, want, MADV_HUGEPAGE); /* transparent huge pages if shmem allows */
	*fd = f, *base = p, *size = want, *huge = false;
	return 0;
}

int sluice_arena_create(const sluice_arena_opts_t *opts, sluice_arena_t **out)
{
	uint64_t total;
	int err = check_opts(opts, &total);
	if (err)
		return err;
	struct sluice_arena *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return SLUICE_ENOMEM;
	bool huge = false;
	err = make_memfd(opts->name ? opts->name : "sluice", total,
			 opts->flags & SLUICE_ARENA_HUGEPAGES, &a->fd, &a->base, &a->size, &huge);
	if (err) {
		free(a);
		return err;
	}
	a->flags = huge ? SLUICE_ARENA_HUGEPAGES : 0;

	struct sluice_arena_hdr *h = a->base;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	h->magic = SLUICE_ARENA_MAGIC;
	h->layout_version = SLUICE_ARENA_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->total_size = a->size;
	h->flags = a->flags;
	h->nregions = opts->nregions;
	h->created_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	h->creator_pid = (uint32_t)getpid();
	uint64_t off = SLUICE_ARENA_REGION_ALIGN;
	for (uint32_t i = 0; i < opts->nregions; i++) {
		struct sluice_region_entry *e = &h->regions[i];
		e->id = opts->regions[i].id;
		e->offset = off;
		e->size = round_up(opts->regions[i].size, SLUICE_ARENA_REGION_ALIGN);
		off += e->size;
	}
	a->nregions = h->nregions;
	memcpy(a->regions, h->regions, sizeof(a->regions));

	/* Sized once: no process may shrink it (SIGBUS for everyone mapping
	 * it), grow it, or take the seals off. */
	if (fcntl(a->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		err = -errno;
		sluice_arena_destroy(a);
		return err;
	}
	*out = a;
	return 0;
}

/* Checks the header at `h` (mapped, `size` bytes long, size >= sizeof(*h))
 * and, on success, copies its region table into `a`. */
static int check_header(const struct sluice_arena_hdr *h, uint64_t size, struct sluice_arena *a)
{
	if (h->magic != SLUICE_ARENA_MAGIC)
		return SLUICE_EBADMAGIC;
	if (h->layout_version != SLUICE_ARENA_LAYOUT_VERSION)
		return SLUICE_EVERSION;
	if (h->header_size != sizeof(*h))
		return SLUICE_ECORRUPT;
	if (h->total_size != size)
		return SLUICE_ETRUNCATED;
	uint32_t n = h->nregions;
	if (n > SLUICE_ARENA_MAX_REGIONS)
		return SLUICE_ECORRUPT;
	/* Copy first, then check the copy: the header is shared and writable
	 * by others, so it is read once. */
	memcpy(a->regions, h->regions, sizeof(a->regions));
	for (uint32_t i = 0; i < n; i++) {
		const struct sluice_region_entry *e = &a->regions[i];
		if (e->id == 0 || e->offset < SLUICE_ARENA_REGION_ALIGN ||
		    e->offset % SLUICE_ARENA_REGION_ALIGN != 0 || e->offset > size ||
		    e->size > size - e->offset)
			return SLUICE_ECORRUPT;
		for (uint32_t j = 0; j < i; j++) {
			const struct sluice_region_entry *f = &a->regions[j];
			bool disjoint = e->offset + e->size <= f->offset ||
					f->offset + f->size <= e->offset;
			if (f->id == e->id || !disjoint)
				return SLUICE_ECORRUPT;
		}
	}
	a->nregions = n;
	return 0;
}

int sluice_arena_attach(int fd, uint32_t flags, sluice_arena_t **out)
{
	if (fd < 0 || (flags & ~(uint32_t)SLUICE_ARENA_RDONLY))
		return SLUICE_EINVAL;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return errno == EBADF ? SLUICE_EBADF : SLUICE_ENOTSEALED;
	if ((seals & REQUIRED_SEALS) != REQUIRED_SEALS)
		return SLUICE_ENOTSEALED;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(struct sluice_arena_hdr))
		return SLUICE_ETRUNCATED;

	struct sluice_arena *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return SLUICE_ENOMEM;
	a->size = (uint64_t)st.st_size;
	a->flags = flags & SLUICE_ARENA_RDONLY;
	int prot = (flags & SLUICE_ARENA_RDONLY) ? PROT_READ : PROT_READ | PROT_WRITE;
	int err;
	a->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (a->fd < 0) {
		err = -errno;
		free(a);
		return err;
	}
	a->base = mmap(NULL, a->size, prot, MAP_SHARED, a->fd, 0);
	if (a->base == MAP_FAILED) {
		err = -errno;
		close(a->fd);
		free(a);
		return err;
	}
	err = check_header(a->base, a->size, a);
	if (err) {
		sluice_arena_destroy(a);
		return err;
	}
	struct statfs sfs;
	if (fstatfs(a->fd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC)
		a->flags |= SLUICE_ARENA_HUGEPAGES;
	*out = a;
	return 0;
}

void sluice_arena_destroy(sluice_arena_t *a)
{
	if (a == NULL)
		return;
	if (a->base != NULL && a->base != MAP_FAILED)
		munmap(a->base, a->size);
	if (a->fd >= 0)
		close(a->fd);
	free(a);
}

int sluice_arena_fd(const sluice_arena_t *a)
{
	return a->fd;
}

int sluice_arena_reopen_rdonly(const sluice_arena_t *a)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", a->fd);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

void *sluice_arena_base(const sluice_arena_t *a)
{
	return a->base;
}

uint64_t sluice_arena_size(const sluice_arena_t *a)
{
	return a->size;
}

bool sluice_arena_is_rdonly(const sluice_arena_t *a)
{
	return a->flags & SLUICE_ARENA_RDONLY;
}

bool sluice_arena_has_hugepages(const sluice_arena_t *a)
{
	return a->flags & SLUICE_ARENA_HUGEPAGES;
}

int sluice_arena_region(const sluice_arena_t *a, uint32_t id, uint64_t *off, uint64_t *size)
{
	for (uint32_t i = 0; i < a->nregions; i++) {
		if (a->regions[i].id == id) {
			if (off)
				*off = a->regions[i].offset;
			if (size)
				*size = a->regions[i].size;
			return 0;
		}
	}
	return SLUICE_ENOENT;
}

void *sluice_arena_at(const sluice_arena_t *a, uint64_t off, uint64_t len, uint64_t align)
{
	if (off > a->size || len > a->size - off)
		return NULL;
	if (align > 1 && ((align & (align - 1)) != 0 || (off & (align - 1)) != 0))
		return NULL;
	return (char *)a->base + off;
}
