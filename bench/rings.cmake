# The ring benchmark: sluice's rings against raw ck_ring, pipes, Unix
# sockets, POSIX message queues, a mutex + condvar queue in shared memory
# and a bare futex hand-off, between two pinned processes. Run: bench_rings [--quick] [--json FILE] (see --help).
include(${CMAKE_CURRENT_LIST_DIR}/common/common.cmake)

add_executable(bench_rings ${CMAKE_CURRENT_LIST_DIR}/bench_rings.c)
target_link_libraries(bench_rings PRIVATE sluice_bench_common sluice_internal PkgConfig::CK rt m)
