# The cost benchmark: an idle flow's CPU over a few seconds, each process's
# resident memory (shared arena pages counted once), and the arena's
# bookkeeping per size class. Run: bench_cost [--quick] [--json FILE] (see
# --help). It reads the flow handle's arena (runtime/flow_internal.h).
include(${CMAKE_CURRENT_LIST_DIR}/common/common.cmake)

add_executable(bench_cost ${CMAKE_CURRENT_LIST_DIR}/bench_cost.c)
target_link_libraries(bench_cost PRIVATE sluice_bench_common sluice_internal m)
