/* The worker program of the tests of exec'd steps: a registry of the test
 * handlers and conditions by name, handed to sluice_worker_exec_main. The
 * tests find it by the path CMake compiles into them
 * (SLUICE_TEST_EXEC_WORKER). Run by hand, it says what it is and exits
 * with 2. */
#include "runtime/chaos_handlers.h"
#include "runtime/life_handlers.h"
#include "runtime/pipeline_handlers.h"

#include <sluice/worker.h>

static const sluice_handler_entry_t registry[] = {
	/* tests/runtime/test_flow_pipeline.c: each step's handler and
	 * condition under the step's name */
	{.name = "parse", .handler = {.handle = h_parse}, .condition = cond_parse},
	{.name = "double", .handler = {.handle = h_double}, .condition = cond_double},
	{.name = "finish", .handler = {.handle = h_finish}, .condition = cond_finish},
	/* tests/runtime/test_flow_chaos.c */
	{.name = "chaos_a", .handler = {.on_start = chaos_on_start, .handle = h_a}},
	{.name = "chaos_b", .handler = {.on_start = chaos_on_start, .handle = h_b}},
	/* tests/runtime/test_flow_exec.c */
	{.name = "life",
	 .handler = {.on_start = life_on_start, .handle = life_handle, .on_stop = life_on_stop}},
	{.name = "even", .condition = life_even},
};

int main(int argc, char **argv)
{
	return sluice_worker_exec_main(argc, argv, registry,
				       sizeof(registry) / sizeof(registry[0]));
}
