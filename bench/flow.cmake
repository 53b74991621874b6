# The flow benchmark: no-op sluice flows through the public flow API beside
# the same pipelines over Unix stream sockets and a bare futex hand-off, in
# the same run. Run: bench_flow [--quick] [--json FILE] (see --help).
include(${CMAKE_CURRENT_LIST_DIR}/common/common.cmake)

add_executable(bench_flow ${CMAKE_CURRENT_LIST_DIR}/bench_flow.c)
target_link_libraries(bench_flow PRIVATE sluice_bench_common sluice_internal m)
