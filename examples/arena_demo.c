/* A short demonstration of the arena: create a sealed memfd arena, fork a
 * child that attaches to it, writes into it in place, and show that the
 * parent sees the bytes without a copy; then show what sealing refuses. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sluice/arena.h>
#include <sluice/error.h>

int main(void)
{
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "sluice-demo",
				 .flags = SLUICE_ARENA_HUGEPAGES, .nregions = 2};
	o.regions[0] = (sluice_region_req_t){.id = 1, .size = 64 << 10};
	o.regions[1] = (sluice_region_req_t){.id = 2, .size = 4 << 20};
	sluice_arena_t *a;
	int rc = sluice_arena_create(&o, &a);
	if (rc) {
		fprintf(stderr, "arena_demo: create: %s\n", sluice_strerror(rc));
		return 1;
	}
	printf("arena: %llu bytes, huge pages: %s, fd %d\n",
	       (unsigned long long)sluice_arena_size(a),
	       sluice_arena_has_hugepages(a) ? "yes" : "no (fell back to normal pages)",
	       sluice_arena_fd(a));
	for (uint32_t id = 1; id <= 2; id++) {
		uint64_t off, size;
		sluice_arena_region(a, id, &off, &size);
		printf("  region %u at offset %llu, %llu bytes\n", id, (unsigned long long)off,
		       (unsigned long long)size);
	}

	uint64_t off;
	sluice_arena_region(a, 2, &off, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		sluice_arena_t *b;
		if (sluice_arena_attach(sluice_arena_fd(a), 0, &b) != 0)
			_exit(1);
		char *p = sluice_arena_at(b, off, 64, 1);
		snprintf(p, 64, "written in place by pid %d", (int)getpid());
		printf("child %d: attached at %p (parent maps it at %p)\n", (int)getpid(),
		       sluice_arena_base(b), sluice_arena_base(a));
		fflush(stdout);
		sluice_arena_destroy(b);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	printf("parent reads: \"%s\"\n", (char *)sluice_arena_at(a, off, 64, 1));

	rc = ftruncate(sluice_arena_fd(a), 4096) == 0 ? 0 : -errno;
	printf("ftruncate after sealing: %s\n", rc ? sluice_strerror(rc) : "allowed (BUG)");
	printf("offset past the end translates to: %p\n",
	       sluice_arena_at(a, sluice_arena_size(a), 1, 1));
	sluice_arena_destroy(a);
	return rc ? 0 : 1;
}
