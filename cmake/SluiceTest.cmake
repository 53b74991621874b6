# sluice_add_test(NAME name SOURCES ... LABELS ... TIMEOUT seconds [ARGS ...])
# One executable per feature, one CTest each, with a label and a timeout.
# Sanitizer builds get SLUICE_TEST_SLOWDOWN and a timeout scaled to match.
set(SLUICE_TEST_SLOWDOWN 1)
if(SLUICE_ASAN)
  set(SLUICE_TEST_SLOWDOWN 3)
elseif(SLUICE_TSAN)
  set(SLUICE_TEST_SLOWDOWN 10)
endif()

function(sluice_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LABELS;ARGS;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE sluice_internal ${T_LIBS})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  math(EXPR scaled "${T_TIMEOUT} * ${SLUICE_TEST_SLOWDOWN}")
  set_tests_properties(${T_NAME} PROPERTIES
    LABELS "${T_LABELS}" TIMEOUT ${scaled} SKIP_RETURN_CODE 77
    ENVIRONMENT "SLUICE_TEST_SLOWDOWN=${SLUICE_TEST_SLOWDOWN}")
  # Tests that fork many processes or stress the cores run alone, so that a
  # parallel ctest does not oversubscribe a 2-core machine.
  if("stress" IN_LIST T_LABELS OR "chaos" IN_LIST T_LABELS)
    set_tests_properties(${T_NAME} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()
