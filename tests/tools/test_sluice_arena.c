/* sluice-arena on a live arena (through /proc/PID/fd/N, read-only) lists
 * its regions; on something that is not an arena it exits 2 and says why. */
#define _GNU_SOURCE
#include "common/test.h"

#include <stdbool.h>
#include <sys/mman.h>

#include <sluice/arena.h>

/* Runs `tool path`, captures stdout+stderr into buf; returns exit status. */
static int run_tool(const char *tool, const char *path, char *buf, size_t len)
{
	int p[2];
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl(tool, tool, path, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < len && (r = read(p[0], buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(p[0]);
	return test_wait(pid);
}

/* True when `out` has a region line "ID OFFSET BYTES". */
static bool has_region(const char *out, unsigned id, unsigned long long off,
		       unsigned long long size)
{
	for (const char *l = out; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		unsigned i;
		unsigned long long o, z;
		if (sscanf(l, " %u %llu %llu", &i, &o, &z) == 3 && i == id && o == off && z == size)
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	const char *tool = argv[1];
	sluice_arena_opts_t o = {.size_of = sizeof(o), .name = "tool-test", .nregions = 2};
	o.regions[0] = (sluice_region_req_t){.id = 5, .size = 4096};
	o.regions[1] = (sluice_region_req_t){.id = 6, .size = 3 * 4096};
	sluice_arena_t *a;
	CHECK_OK(sluice_arena_create(&o, &a));
	uint64_t before = *(volatile uint64_t *)sluice_arena_base(a);

	char path[64], out[4096];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), sluice_arena_fd(a));
	CHECK(run_tool(tool, path, out, sizeof(out)) == 0);
	printf("%s", out);
	CHECK(strstr(out, "layout version 1") != NULL);
	CHECK(has_region(out, 5, 4096, 4096));
	CHECK(has_region(out, 6, 8192, 12288));
	CHECK(!has_region(out, 6, 8192, 4096));
	CHECK(*(volatile uint64_t *)sluice_arena_base(a) == before);

	int fd = memfd_create("not-an-arena", MFD_CLOEXEC);
	CHECK(fd >= 0 && write(fd, "hello", 5) == 5);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), fd);
	CHECK(run_tool(tool, path, out, sizeof(out)) == 2);
	CHECK(strstr(out, "ENOTSEALED") != NULL);
	CHECK(run_tool(tool, "/nonexistent/x", out, sizeof(out)) == 3);
	CHECK(run_tool(tool, "--help", out, sizeof(out)) == 1);
	close(fd);
	sluice_arena_destroy(a);
	printf("ok\n");
	return TEST_PASS;
}
