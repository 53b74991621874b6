# The restart benchmark: how fast a SIGKILLed worker's death is noticed and
# its replacement ready, and a 2-step flow's throughput while a worker is
# killed every 50 ms beside the same flow left alone, in the same run. The
# times come from the flow's health records. Run: bench_restart [--quick]
# [--json FILE] (see --help; docs/BENCHMARKS.md, "Restart").
include(${CMAKE_CURRENT_LIST_DIR}/common/common.cmake)

add_executable(bench_restart ${CMAKE_CURRENT_LIST_DIR}/bench_restart.c)
target_link_libraries(bench_restart PRIVATE sluice_bench_common sluice_internal m)
