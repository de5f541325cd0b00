# Fails listing every project C++ file that clang-format would change. Run by CTest with -P.
file(GLOB_RECURSE files RELATIVE ${SOURCE_DIR}
  ${SOURCE_DIR}/Modules/*.h ${SOURCE_DIR}/Modules/*.hxx ${SOURCE_DIR}/Modules/*.cxx
  ${SOURCE_DIR}/Applications/*.h ${SOURCE_DIR}/Applications/*.cxx
  ${SOURCE_DIR}/Testing/*.h ${SOURCE_DIR}/Testing/*.cxx
  ${SOURCE_DIR}/Examples/*.cxx)
set(bad "")
foreach(file IN LISTS files)
  execute_process(COMMAND ${CLANG_FORMAT} --dry-run -Werror --style=file ${file}
    WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE result OUTPUT_QUIET ERROR_QUIET)
  if(NOT result EQUAL 0)
    list(APPEND bad ${file})
  endif()
endforeach()
list(LENGTH files count)
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "not formatted with .clang-format (run clang-format -i on them):\n  ${bad}")
endif()
message(STATUS "${count} files follow .clang-format")
