sluice_add_test(NAME test_sluice_arena SOURCES tools/test_sluice_arena.c LABELS unit
                TIMEOUT 30 ARGS $<TARGET_FILE:sluice-arena>)
# sluice-inspect on a live flow; it kills a worker (chaos: run alone).
sluice_add_test(NAME test_sluice_inspect SOURCES tools/test_sluice_inspect.c LABELS chaos
                TIMEOUT 60 ARGS $<TARGET_FILE:sluice-inspect>)
# The live view under tmux (skipped where tmux is not installed).
sluice_add_test(NAME test_sluice_inspect_live SOURCES tools/test_sluice_inspect_live.c LABELS unit
                TIMEOUT 60 ARGS $<TARGET_FILE:sluice-inspect>)

# sluice-bench --quick, the bench suite's smoke test: it completes, its
# bench.json matches docs/schema/bench.schema.json (json_check, and
# python3-jsonschema where installed) and its plots are PNG files. Runs
# alone: it pins processes to both CPUs for about 40 s.
if(SLUICE_BUILD_BENCH)
  add_executable(json_check ${CMAKE_CURRENT_LIST_DIR}/json_check.c)
  target_link_libraries(json_check PRIVATE m)
  add_test(NAME test_sluice_bench
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_sluice_bench.sh ${PROJECT_BINARY_DIR}/tools/sluice-bench
            $<TARGET_FILE:json_check> ${PROJECT_SOURCE_DIR}/docs/schema/bench.schema.json
            ${PROJECT_SOURCE_DIR}/docs/bench/sluice-bench.json)
  math(EXPR _bench_timeout "300 * ${SLUICE_TEST_SLOWDOWN}")
  set_tests_properties(test_sluice_bench PROPERTIES LABELS bench TIMEOUT ${_bench_timeout}
    SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()
