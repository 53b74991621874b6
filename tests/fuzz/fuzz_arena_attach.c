/* libFuzzer target: the input is the whole content of a memfd, sealed as an
 * arena is, handed to sluice_arena_attach read-write and (through
 * sluice_arena_reopen_rdonly) read-only. On success every region the
 * handle reports must lie inside the mapping, 4 KiB aligned, disjoint from
 * the others and after the header page, and sluice_arena_at must only ever
 * return pointers inside the mapping. */
#define _GNU_SOURCE
#include "fuzz/fuzz_common.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sluice/arena.h>
#include "shm/arena_layout.h"

static int sealed_memfd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	FUZZ_CHECK(fd >= 0);
	for (size_t done = 0; done < size;) {
		ssize_t w = write(fd, data + done, size - done);
		FUZZ_CHECK(w > 0);
		done += (size_t)w;
	}
	FUZZ_CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
	return fd;
}

static uint64_t load_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* What a valid handle promises, checked against the input it came from. */
static void exercise(const sluice_arena_t *a, const uint8_t *data, size_t size, bool rdonly)
{
	FUZZ_CHECK(sluice_arena_size(a) == size);
	FUZZ_CHECK(sluice_arena_is_rdonly(a) == rdonly);
	const uint8_t *base = sluice_arena_base(a);
	FUZZ_CHECK(base != NULL);
	FUZZ_CHECK(memcmp(base, data, size) == 0);

	/* Every id the input's region table names (attach copied the table
	 * it validated; the input is what it read). */
	struct sluice_arena_hdr h;
	memcpy(&h, data, sizeof(h)); /* size >= sizeof(h): attach succeeded */
	uint64_t offs[SLUICE_ARENA_MAX_REGIONS], lens[SLUICE_ARENA_MAX_REGIONS];
	uint32_t n = 0;
	for (uint32_t i = 0; i < SLUICE_ARENA_MAX_REGIONS; i++) {
		uint64_t off = 0, len = 0;
		int rc = sluice_arena_region(a, h.regions[i].id, &off, &len);
		FUZZ_CHECK_RC(rc);
		if (i < h.nregions)
			FUZZ_CHECK(rc == 0);
		if (rc != 0)
			continue;
		FUZZ_CHECK(h.regions[i].id != 0);
		FUZZ_CHECK(off >= SLUICE_ARENA_REGION_ALIGN && off % SLUICE_ARENA_REGION_ALIGN == 0);
		FUZZ_CHECK(off <= size && len <= size - off);
		const uint8_t *p = sluice_arena_at(a, off, len, SLUICE_ARENA_REGION_ALIGN);
		FUZZ_CHECK(p == base + off);
		if (len > 0) {
			fuzz_touch(p, 1);
			fuzz_touch(p + len - 1, 1);
		}
		if (i < h.nregions) {
			for (uint32_t j = 0; j < n; j++)
				FUZZ_CHECK(off + len <= offs[j] || offs[j] + lens[j] <= off);
			offs[n] = off;
			lens[n] = len;
			n++;
		}
	}
	FUZZ_CHECK(sluice_arena_region(a, 0, NULL, NULL) == SLUICE_ENOENT);

	/* Offset translation with arguments taken from the input's tail. */
	if (size >= sizeof(h) + 24) {
		const uint8_t *t = data + size - 24;
		uint64_t off = load_u64(t), len = load_u64(t + 8), align = load_u64(t + 16);
		uint64_t try_off[] = {off, off % (size + 1), size, 0};
		uint64_t try_len[] = {len, len % (size + 1), 0, size};
		uint64_t try_align[] = {align, 1, 64, align & 0xffff};
		for (int i = 0; i < 4; i++) {
			for (int j = 0; j < 4; j++) {
				const uint8_t *p = sluice_arena_at(a, try_off[i], try_len[j], try_align[i]);
				if (p == NULL)
					continue;
				FUZZ_CHECK(try_off[i] <= size && try_len[j] <= size - try_off[i]);
				FUZZ_CHECK(p == base + try_off[i]);
				if (try_align[i] > 1)
					FUZZ_CHECK(try_off[i] % try_align[i] == 0);
				if (try_len[j] > 0)
					fuzz_touch(p, 1);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = sealed_memfd(data, size);

	sluice_arena_t *a = NULL;
	int rc = sluice_arena_attach(fd, 0, &a);
	FUZZ_CHECK_RC(rc);
	FUZZ_CHECK((rc == 0) == (a != NULL));
	if (rc == 0) {
		exercise(a, data, size, false);
		/* What a worker gets: a read-only descriptor of the same arena. */
		int rofd = sluice_arena_reopen_rdonly(a);
		FUZZ_CHECK(rofd >= 0);
		sluice_arena_t *ro = NULL;
		FUZZ_CHECK(sluice_arena_attach(rofd, SLUICE_ARENA_RDONLY, &ro) == 0);
		exercise(ro, data, size, true);
		sluice_arena_destroy(ro);
		/* A read-only descriptor cannot be mapped writable. */
		sluice_arena_t *rw = NULL;
		rc = sluice_arena_attach(rofd, 0, &rw);
		FUZZ_CHECK_RC(rc);
		FUZZ_CHECK(rc != 0 && rw == NULL);
		close(rofd);
		sluice_arena_destroy(a);
	} else {
		/* The read-only path validates the same way. */
		sluice_arena_t *ro = NULL;
		int rc2 = sluice_arena_attach(fd, SLUICE_ARENA_RDONLY, &ro);
		FUZZ_CHECK(rc2 == rc && ro == NULL);
	}
	close(fd);
	return 0;
}
