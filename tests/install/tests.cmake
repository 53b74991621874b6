# Installs into a temporary prefix and builds a consumer against it, once
# through find_package(sluice) and once through pkg-config.
add_test(NAME test_install
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_install.sh ${PROJECT_BINARY_DIR}
          ${CMAKE_CURRENT_LIST_DIR}/consumer ${CMAKE_COMMAND})
set(_install_skip "")
if(SLUICE_ASAN OR SLUICE_TSAN)
  set(_install_skip "SLUICE_INSTALL_TEST_SKIP=sanitizer build")
endif()
set_tests_properties(test_install PROPERTIES LABELS unit TIMEOUT 120
  SKIP_RETURN_CODE 77 ENVIRONMENT "${_install_skip}")
