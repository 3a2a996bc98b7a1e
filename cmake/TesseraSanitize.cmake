# TESSERA_SANITIZE: build every target of this tree with sanitizers (scripts/sanitize.sh,
# docs/testing.md). Accepted values:
#   address,undefined  AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer; any
#                      undefined behaviour aborts the test (-fno-sanitize-recover=undefined).
#   thread             ThreadSanitizer.
# Third-party libraries (LibTorch, OpenBLAS, gRPC, RocksDB, absl) are Debian's uninstrumented
# builds; suppressions for them live in tests/sanitizers/*.supp.
set(TESSERA_SANITIZE "" CACHE STRING
    "Sanitizers for every target: address,undefined or thread (scripts/sanitize.sh)")
set_property(CACHE TESSERA_SANITIZE PROPERTY STRINGS "" "address,undefined" "address" "thread")
# Sanitizer builds compile with -O1 (what the ASan and TSan manuals advise) instead of -O2,
# because CI builds these configurations from a cold ccache: with address,undefined gcc 12
# takes 11.7 CPU-s instead of 16.0 for coordinator/round/run_manager.cc (the normal -O2 build:
# 6.4). A file that includes LibTorch costs what it costs in the normal build (parsing the
# headers dominates): client/lm/transformer/modules.cc 23.9 CPU-s in both.
set(TESSERA_SANITIZE_OPT "-O1 -g1" CACHE STRING
    "Optimization and debug flags of a TESSERA_SANITIZE build (replace RelWithDebInfo's)")

if(TESSERA_SANITIZE)
  if(TESSERA_FUZZ)
    message(FATAL_ERROR "TESSERA_SANITIZE and TESSERA_FUZZ cannot be combined "
                        "(TESSERA_FUZZ already builds with ASan + UBSan)")
  endif()
  string(REPLACE "," ";" _tessera_sanitizers "${TESSERA_SANITIZE}")
  foreach(_s IN LISTS _tessera_sanitizers)
    if(NOT _s MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "TESSERA_SANITIZE: unknown sanitizer \"${_s}\" in "
                          "\"${TESSERA_SANITIZE}\" (expected address,undefined or thread)")
    endif()
  endforeach()
  if("thread" IN_LIST _tessera_sanitizers AND "address" IN_LIST _tessera_sanitizers)
    message(FATAL_ERROR "TESSERA_SANITIZE: thread cannot be combined with address")
  endif()
  set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "${TESSERA_SANITIZE_OPT} -DNDEBUG")
  add_compile_options(-fsanitize=${TESSERA_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${TESSERA_SANITIZE})
  if("undefined" IN_LIST _tessera_sanitizers)
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
  # gcc's manual warns that sanitizers raise false -Wmaybe-uninitialized warnings; with
  # address,undefined gcc 12 reports one inside libstdc++'s <regex> (std::function in
  # regex_automaton.h, from core/config/data_card.cc), which -Werror turns into an error.
  # The normal build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT "thread" IN_LIST _tessera_sanitizers)
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
  if("thread" IN_LIST _tessera_sanitizers)
    # Debian's absl::Mutex is uninstrumented: wrap Tessera's calls into it so TSan sees the
    # happens-before edges (tests/sanitizers/tsan_absl_sync.cc says how). The wrappers are
    # compiled here, at configure time, and linked into every program and shared library.
    set(_tsan_shim_src ${PROJECT_SOURCE_DIR}/tests/sanitizers/tsan_absl_sync.cc)
    set(_tsan_shim_obj ${PROJECT_BINARY_DIR}/tsan_absl_sync.o)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_tsan_shim_src})
    execute_process(
      COMMAND ${CMAKE_CXX_COMPILER} -std=c++20 -O2 -g1 -fPIC -fsanitize=thread -Wall -Wextra
              -Werror -c ${_tsan_shim_src} -o ${_tsan_shim_obj}
      RESULT_VARIABLE _tsan_shim_rc)
    if(NOT _tsan_shim_rc EQUAL 0)
      message(FATAL_ERROR "TESSERA_SANITIZE=thread: cannot compile ${_tsan_shim_src}")
    endif()
    set(_tsan_wrap_options ${_tsan_shim_obj})
    file(READ ${_tsan_shim_src} _tsan_src_text)
    string(REGEX MATCHALL "__wrap_(_Z[A-Za-z0-9_]+)" _tsan_wraps "${_tsan_src_text}")
    list(REMOVE_DUPLICATES _tsan_wraps)
    foreach(_w IN LISTS _tsan_wraps)
      string(REPLACE "__wrap_" "" _sym "${_w}")
      list(APPEND _tsan_wrap_options "-Wl,--wrap=${_sym}")
    endforeach()
    add_link_options(${_tsan_wrap_options})
  endif()
  message(STATUS "Tessera: building with -fsanitize=${TESSERA_SANITIZE}")
endif()
