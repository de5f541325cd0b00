# User-facing switches of the DivAttention build.
option(DivAttention_BUILD_APPLICATIONS "Build the command-line applications (TCLAP)" ON)
option(DivAttention_BUILD_BENCHMARKS "Build the Google Benchmark target Testing/Benchmarks" ON)
option(DivAttention_BUILD_EXAMPLES "Build the examples in Examples/" OFF)
option(DivAttention_WARNINGS_AS_ERRORS "Treat compiler warnings in the project's own code as errors (CI does)" OFF)
option(DivAttention_TORCH_ONLY "Build only the LibTorch half (DivAttentionTorch and its tests), without ITK" OFF)
option(DivAttention_FORCE_STANDALONE "Build standalone even when ITK's module machinery is available" OFF)
# Unity builds: each target's sources compile in batches (CMake's UNITY_BUILD, up to 8 files per translation unit),
# so LibTorch's and ITK's headers are parsed once per batch instead of once per file (LibTorch's headers alone take
# ~13 s of each compile here). A fresh build is about a third faster (Documentation/Building.md); while editing one
# file, OFF recompiles less.
option(DivAttention_UNITY_BUILD "Compile each target's sources in unity batches (faster fresh builds)" ON)
set(CMAKE_UNITY_BUILD ${DivAttention_UNITY_BUILD})
# DivAttention_SANITIZE and DivAttention_BUILD_FUZZERS (Documentation/Reliability.md).
include(DivAttentionSanitizers)

# Warnings for the project's own targets only; ITK and LibTorch headers come in as system headers. Every project
# target passes through here, so the sanitizer flags (DivAttention_SANITIZE, DivAttention_BUILD_FUZZERS) are added here
# too.
function(divattention_target_warnings target)
  divattention_target_sanitizers(${target})
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra)
    # A unity batch #includes each source, so GCC sees a test fixture in an anonymous namespace as a header's type
    # and warns about gtest's derived classes; in a one-file translation unit that warning cannot arise.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE $<$<BOOL:$<TARGET_PROPERTY:UNITY_BUILD>>:-Wno-subobject-linkage>)
    endif()
    # GCC 13 reports maybe-uninitialized inside LibTorch 2.x's inlined std::optional members (a known false
    # positive, seen in torch::nn::functional::InterpolateFuncOptions): a warning, never an error.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 13)
      target_compile_options(${target} PRIVATE -Wno-error=maybe-uninitialized)
    endif()
    if(DivAttention_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
endfunction()
