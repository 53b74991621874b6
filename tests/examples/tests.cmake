# The examples run as tests, so that they cannot rot. Each is an executable
# of examples/ (built there); the test runs it with a smaller workload.
if(TARGET pipeline)
  add_test(NAME example_pipeline COMMAND pipeline 2000)
  math(EXPR example_timeout "60 * ${SLUICE_TEST_SLOWDOWN}")
  set_tests_properties(example_pipeline PROPERTIES
    LABELS "unit" TIMEOUT ${example_timeout}
    ENVIRONMENT "SLUICE_TEST_SLOWDOWN=${SLUICE_TEST_SLOWDOWN}")
endif()
