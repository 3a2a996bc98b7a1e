# tessera_cc_library(NAME n [HDRS ...] [SRCS ...] [DEPS ...] [PRIVATE_DEPS ...] [TESTONLY])
#   Creates tessera_<n> with alias tessera::<n>. Header-only when SRCS is empty.
# tessera_cc_test(NAME n SRCS ... DEPS ... [LABELS ...])
#   A GoogleTest binary registered with ctest through gtest_discover_tests.
# tessera_cc_binary(NAME n SRCS ... DEPS ...)
include(GoogleTest)

set(TESSERA_WARNINGS -Wall -Wextra -Werror)

function(tessera_cc_library)
  cmake_parse_arguments(T "TESTONLY" "NAME" "HDRS;SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target tessera_${T_NAME})
  if(T_SRCS)
    add_library(${target} STATIC ${T_SRCS} ${T_HDRS})
    target_compile_options(${target} PRIVATE ${TESSERA_WARNINGS})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
    target_link_libraries(${target} PUBLIC ${T_DEPS} PRIVATE ${T_PRIVATE_DEPS})
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
    target_link_libraries(${target} INTERFACE ${T_DEPS})
  endif()
  add_library(tessera::${T_NAME} ALIAS ${target})
endfunction()

function(tessera_cc_binary)
  cmake_parse_arguments(T "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_compile_options(${T_NAME} PRIVATE ${TESSERA_WARNINGS})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS})
endfunction()

function(tessera_cc_test)
  cmake_parse_arguments(T "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT TESSERA_BUILD_TESTS)
    return()
  endif()
  add_executable(${T_NAME} ${T_SRCS})
  target_compile_options(${T_NAME} PRIVATE ${TESSERA_WARNINGS})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gmock GTest::gtest_main)
  # In an ASan + UBSan build (TESSERA_SANITIZE) the test files themselves (*_test.cc) are
  # compiled without instrumentation and linked with the sanitizer runtime: every library and
  # program they exercise stays instrumented, and allocation, leak and free checks cover the
  # whole process, but gtest's assertion code costs gcc three times as much to compile with
  # the sanitizers (docs/testing.md, "What is instrumented").
  if(TESSERA_SANITIZE MATCHES "address")
    foreach(_src IN LISTS T_SRCS)
      if(_src MATCHES "_test\\.cc$")
        set_property(SOURCE ${_src} APPEND PROPERTY COMPILE_OPTIONS -fno-sanitize=all)
      endif()
    endforeach()
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  gtest_discover_tests(${T_NAME}
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    PROPERTIES LABELS "${T_LABELS}"
    DISCOVERY_TIMEOUT 60)
endfunction()
