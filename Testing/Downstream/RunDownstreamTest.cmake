# Installs the DivAttention build tree into a scratch prefix, then configures, builds and runs a downstream project
# against it with find_package(DivAttention). Run by CTest with -P.
foreach(var DIVATTENTION_BUILD_DIR DOWNSTREAM_SOURCE_DIR SCRATCH_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE ${SCRATCH_DIR})
set(prefix ${SCRATCH_DIR}/prefix)

function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "step failed (${result}): ${ARGN}\n${output}")
  endif()
endfunction()

run_step(${CMAKE_COMMAND} --install ${DIVATTENTION_BUILD_DIR} --prefix ${prefix})
run_step(${CMAKE_COMMAND} -S ${DOWNSTREAM_SOURCE_DIR} -B ${SCRATCH_DIR}/build -G ${CMAKE_GENERATOR}
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix})
run_step(${CMAKE_COMMAND} --build ${SCRATCH_DIR}/build)
run_step(${SCRATCH_DIR}/build/DownstreamUse)
message(STATUS "downstream project built and ran against ${prefix}")
