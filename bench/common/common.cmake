# Helpers shared by the bench suite: clock, log-linear histogram, CPU
# pinning, processes and shared memory, table printer, JSON writer,
# figures and plot data for sluice-bench.
# Included by each suite's .cmake; defined once.
if(NOT TARGET sluice_bench_common)
  add_library(sluice_bench_common STATIC
    ${CMAKE_CURRENT_LIST_DIR}/cpu.c
    ${CMAKE_CURRENT_LIST_DIR}/hist.c
    ${CMAKE_CURRENT_LIST_DIR}/json.c
    ${CMAKE_CURRENT_LIST_DIR}/metrics.c
    ${CMAKE_CURRENT_LIST_DIR}/proc.c
    ${CMAKE_CURRENT_LIST_DIR}/table.c)
  target_link_libraries(sluice_bench_common PUBLIC sluice_internal m)
endif()
