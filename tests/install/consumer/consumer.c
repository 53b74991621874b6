/* A program outside the tree, built against an installed sluice. */
#include <stdio.h>
#include <string.h>
#include <sluice/arena.h>
#include <sluice/error.h>

int main(void)
{
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "consumer", .nregions = 1};
	o.regions[0] = (sluice_region_req_t){.id = 1, .size = 4096};
	sluice_arena_t *a = NULL;
	int rc = sluice_arena_create(&o, &a);
	if (rc != 0) {
		fprintf(stderr, "create: %s\n", sluice_strerror(rc));
		return 1;
	}
	int ok = sluice_arena_size(a) == 8192 &&
		 strcmp(sluice_err_name(SLUICE_EBADMAGIC), "EBADMAGIC") == 0;
	sluice_arena_destroy(a);
	puts(ok ? "consumer ok" : "consumer wrong");
	return ok ? 0 : 1;
}
