/* sluice-arena: shows what an arena holds, read-only.
 *
 *   sluice-arena PATH        PATH names an arena's memfd, e.g. /proc/PID/fd/N
 *
 * It opens PATH O_RDONLY, attaches read-only (so it can never write), and
 * prints the validated header and regions. Exit codes: 0 ok, 1 usage,
 * 2 not an arena (the reason is printed), 3 cannot open PATH. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sluice/arena.h>
#include <sluice/error.h>

#include "shm/arena_layout.h"

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: sluice-arena PATH   (e.g. /proc/PID/fd/N)\n");
		return 1;
	}
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "sluice-arena: %s: %s\n", argv[1], strerror(errno));
		return 3;
	}
	sluice_arena_t *a;
	int rc = sluice_arena_attach(fd, SLUICE_ARENA_RDONLY, &a);
	close(fd);
	if (rc) {
		fprintf(stderr, "sluice-arena: %s: %s (%s)\n", argv[1], sluice_strerror(rc),
			sluice_err_name(rc));
		return 2;
	}
	/* The header was validated by attach; what is printed from it is
	 * either copied into the handle or plain numbers. */
	const struct sluice_arena_hdr *h = sluice_arena_base(a);
	time_t created = (time_t)(h->created_ns / 1000000000u);
	char when[64];
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&created));
	printf("arena %s\n", argv[1]);
	printf("  layout version %u, header %u bytes, size %llu bytes, huge pages %s\n",
	       h->layout_version, h->header_size, (unsigned long long)sluice_arena_size(a),
	       sluice_arena_has_hugepages(a) ? "yes" : "no");
	printf("  created %s by pid %u\n", when, h->creator_pid);
	printf("  %-8s %12s %12s\n", "region", "offset", "bytes");
	for (uint32_t i = 0; i < SLUICE_ARENA_MAX_REGIONS; i++) {
		uint64_t off, size;
		uint32_t id = h->regions[i].id;
		if (id == 0 || sluice_arena_region(a, id, &off, &size) != 0)
			continue;
		printf("  %-8u %12llu %12llu\n", id, (unsigned long long)off,
		       (unsigned long long)size);
	}
	sluice_arena_destroy(a);
	return 0;
}
