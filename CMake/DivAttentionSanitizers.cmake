# Sanitizers and fuzzers for the project's own targets (Documentation/Reliability.md).
#
#   -DDivAttention_SANITIZE=address,undefined   compile and link every project target (libraries, tests,
#                                               applications) with -fsanitize=<list>; GCC or clang. ITK, LibTorch and
#                                               the other third-party libraries stay as they are (uninstrumented).
#                                               The fuzz targets of Testing/Fuzzing are then built as corpus-replay
#                                               programs and registered as tests (label "FuzzReplay").
#   -DDivAttention_BUILD_FUZZERS=ON             clang only: the project's targets are instrumented with
#                                               -fsanitize=fuzzer-no-link,address,undefined, the targets of
#                                               Testing/Fuzzing are libFuzzer programs (-fsanitize=fuzzer,...) and a
#                                               short run of each is registered as a test (label "Fuzz").
# Both add frame pointers, line tables and libstdc++'s bounds assertions (_GLIBCXX_ASSERTIONS: no ABI change).
# UndefinedBehaviorSanitizer's checks stay recoverable, because a suppression (Testing/Sanitizers/ubsan.supp, for
# findings in ITK's header templates that our code instantiates) only works for a recoverable check; findings are made
# fatal at run time instead, with UBSAN_OPTIONS=halt_on_error=1, which the tests registered here, run-fuzzers.sh and
# run-sanitized-tests.sh set (DivAttention_SANITIZER_ENVIRONMENT). AddressSanitizer always stops at its first finding.
set(DivAttention_SANITIZE "" CACHE STRING
  "Sanitizers for the project's own targets, as for -fsanitize= (e.g. address,undefined); empty: none")
option(DivAttention_BUILD_FUZZERS
  "Build the libFuzzer targets in Testing/Fuzzing (clang; instruments the project's targets with fuzzer,address,undefined)"
  OFF)

set(_divattention_sanitizers "${DivAttention_SANITIZE}")
if(DivAttention_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "DivAttention_BUILD_FUZZERS needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: configure "
                        "with -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang (Utilities/run-fuzzers.sh does)")
  endif()
  if(_divattention_sanitizers STREQUAL "")
    set(_divattention_sanitizers "address,undefined")
  endif()
endif()

set(DivAttention_SANITIZER_COMPILE_OPTIONS "")
set(DivAttention_SANITIZER_LINK_OPTIONS "")
if(NOT _divattention_sanitizers STREQUAL "")
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "DivAttention_SANITIZE needs GCC or clang, not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  set(_divattention_instrument "${_divattention_sanitizers}")
  if(DivAttention_BUILD_FUZZERS)
    set(_divattention_instrument "fuzzer-no-link,${_divattention_sanitizers}")
  endif()
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    set(_divattention_line_tables -gline-tables-only)
  else()
    set(_divattention_line_tables -g1)
  endif()
  set(DivAttention_SANITIZER_COMPILE_OPTIONS
    -fsanitize=${_divattention_instrument} -fno-omit-frame-pointer ${_divattention_line_tables} -D_GLIBCXX_ASSERTIONS
    -DDIVATTENTION_SANITIZED=1) # DivAttentionSegment then returns from main instead of ending at once (LeakSanitizer)
  set(DivAttention_SANITIZER_LINK_OPTIONS -fsanitize=${_divattention_sanitizers})
  message(STATUS "DivAttention: project targets instrumented with -fsanitize=${_divattention_instrument}")
endif()

# What a sanitized program needs in its environment (the suppression files, UBSan findings fatal): for tests' ENVIRONMENT.
set(_divattention_supp ${PROJECT_SOURCE_DIR}/Testing/Sanitizers)
set(DivAttention_SANITIZER_ENVIRONMENT
  "ASAN_OPTIONS=detect_leaks=1:suppressions=${_divattention_supp}/asan.supp"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=${_divattention_supp}/ubsan.supp"
  "LSAN_OPTIONS=suppressions=${_divattention_supp}/lsan.supp:print_suppressions=0")

# Called for every project target (from divattention_target_warnings, which every target passes through).
function(divattention_target_sanitizers target)
  if(DivAttention_SANITIZER_COMPILE_OPTIONS)
    target_compile_options(${target} PRIVATE ${DivAttention_SANITIZER_COMPILE_OPTIONS})
    target_link_options(${target} PRIVATE ${DivAttention_SANITIZER_LINK_OPTIONS})
  endif()
endfunction()
