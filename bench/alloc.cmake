# The block allocator benchmark: sluice's blocks against glibc malloc/free,
# same sizes, 1 and 2 processes, in the same run.
# Run: bench_alloc [--quick] [--rounds N] [--pairs N]
add_executable(bench_alloc ${CMAKE_CURRENT_LIST_DIR}/bench_alloc.c)
target_link_libraries(bench_alloc PRIVATE sluice_internal)
