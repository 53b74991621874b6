# The worker-scaling benchmark: tasks/s of a CPU-heavy 1-step flow as its
# nprocs grows, beside ideal linear scaling and the handler run inline, in
# the same run. Run: bench_scale [--quick] [--json FILE] (see --help).
include(${CMAKE_CURRENT_LIST_DIR}/common/common.cmake)

add_executable(bench_scale ${CMAKE_CURRENT_LIST_DIR}/bench_scale.c)
target_link_libraries(bench_scale PRIVATE sluice_bench_common sluice_internal m)
