# The examples run as tests, so that they cannot rot. Each is an executable
# of examples/ (built there); the test runs it with a smaller workload.
if(TARGET pipeline)
  add_test(NAME example_pipeline COMMAND pipeline 2000)
  math(EXPR example_timeout "60 * ${SLUICE_TEST_SLOWDOWN}")
  set_tests_properties(example_pipeline PROPERTIES
    LABELS "unit" TIMEOUT ${example_timeout}
    ENVIRONMENT "SLUICE_TEST_SLOWDOWN=${SLUICE_TEST_SLOWDOWN}")
endif()
# The HTTP example in each mode: real processes on a free TCP port, a small
# client in the test, the parser and the work checked directly too.
if(TARGET http_service)
  sluice_add_test(NAME test_http_service
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_http_service.c
            ${PROJECT_SOURCE_DIR}/examples/http_parse.c
            ${PROJECT_SOURCE_DIR}/examples/http_work.c
    LABELS unit TIMEOUT 120
    ARGS $<TARGET_FILE:http_service>)
  target_include_directories(test_http_service PRIVATE ${PROJECT_SOURCE_DIR}/examples)
endif()
