# Distributed training (Documentation/Training.md, "Distributed training") uses LibTorch's own c10d engine: its
# TCPStore and ProcessGroupGloo (CPU), and ProcessGroupNCCL (CUDA) where LibTorch was built with it. Their headers are
# in LibTorch's include tree, but ProcessGroupGloo.hpp includes Gloo's headers, which Debian ships apart
# (libgloo-dev); pip wheels carry their own. The feature is on when those headers compile here:
#   DivAttention_HAS_DISTRIBUTED         c10d + Gloo usable: DivAttention gets DIVA_WITH_C10D_GLOO=1
#   DivAttention_HAS_DISTRIBUTED_NCCL    ProcessGroupNCCL usable too: DIVA_WITH_C10D_NCCL=1
# Without it the library still builds; --world-size > 1 then stops with a message naming libgloo-dev, and the
# distributed tests are not registered. Only a success is cached (per LibTorch): after installing libgloo-dev, running
# CMake again finds the feature. -DDivAttention_USE_DISTRIBUTED=OFF leaves it out on purpose.
option(DivAttention_USE_DISTRIBUTED "Distributed training on LibTorch's c10d when its headers are usable" ON)

set(DivAttention_HAS_DISTRIBUTED OFF)
set(DivAttention_HAS_DISTRIBUTED_NCCL OFF)
set(DivAttention_DISTRIBUTED_DEFINITIONS "")
if(DivAttention_USE_DISTRIBUTED)
  include(CheckIncludeFiles)
  # A changed option or LibTorch re-runs the checks.
  set(_divattention_c10d_key "${Torch_DIR};${TORCH_INCLUDE_DIRS}")
  if(NOT "${_divattention_c10d_key}" STREQUAL "${DivAttention_C10D_CHECKED_FOR}")
    unset(DivAttention_C10D_GLOO_HEADERS CACHE)
    unset(DivAttention_C10D_NCCL_HEADERS CACHE)
  endif()
  set(DivAttention_C10D_CHECKED_FOR "${_divattention_c10d_key}" CACHE INTERNAL "")
  # Compiled and linked against LibTorch (the check's program links, so its inline code must resolve in libtorch).
  # The libraries are given as files, not as the imported target `torch`: CMake 4 copies imported targets into the
  # check's project, and a pip wheel's torch_cpu names protobuf::libprotobuf in its link interface, a target that
  # exists nowhere, so the check itself failed to configure there.
  set(_divattention_c10d_libraries torch)
  if(TORCH_LIBRARY)
    get_filename_component(_divattention_torch_lib_dir "${TORCH_LIBRARY}" DIRECTORY)
    set(_divattention_c10d_libraries "${TORCH_LIBRARY}")
    foreach(_divattention_lib torch_cpu c10)
      string(TOUPPER "${_divattention_lib}" _divattention_LIB)
      find_library(DivAttention_C10D_${_divattention_LIB}_LIBRARY ${_divattention_lib}
                   PATHS "${_divattention_torch_lib_dir}" NO_DEFAULT_PATH)
      mark_as_advanced(DivAttention_C10D_${_divattention_LIB}_LIBRARY)
      if(DivAttention_C10D_${_divattention_LIB}_LIBRARY)
        list(APPEND _divattention_c10d_libraries "${DivAttention_C10D_${_divattention_LIB}_LIBRARY}")
      endif()
    endforeach()
  endif()
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS})
  set(CMAKE_REQUIRED_LIBRARIES ${_divattention_c10d_libraries})
  set(CMAKE_REQUIRED_DEFINITIONS -DUSE_C10D_GLOO ${TORCH_CXX_FLAGS})
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    set(CMAKE_REQUIRED_FLAGS "-std=c++17")
  endif()
  set(CMAKE_REQUIRED_QUIET ON)
  check_include_files("torch/csrc/distributed/c10d/TCPStore.hpp;torch/csrc/distributed/c10d/HashStore.hpp;torch/csrc/distributed/c10d/ProcessGroupGloo.hpp"
    DivAttention_C10D_GLOO_HEADERS LANGUAGE CXX)
  if(NOT DivAttention_C10D_GLOO_HEADERS)
    unset(DivAttention_C10D_GLOO_HEADERS CACHE) # look again next time (libgloo-dev may come)
  else()
    set(DivAttention_HAS_DISTRIBUTED ON)
    list(APPEND DivAttention_DISTRIBUTED_DEFINITIONS DIVA_WITH_C10D_GLOO=1)
    # NCCL only matters where LibTorch has CUDA; its header pulls in CUDA's.
    if(DivAttention_TORCH_HAS_CUDA)
      set(CMAKE_REQUIRED_DEFINITIONS -DUSE_C10D_GLOO -DUSE_C10D_NCCL ${TORCH_CXX_FLAGS})
      check_include_files("torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp" DivAttention_C10D_NCCL_HEADERS
        LANGUAGE CXX)
      if(DivAttention_C10D_NCCL_HEADERS)
        set(DivAttention_HAS_DISTRIBUTED_NCCL ON)
        list(APPEND DivAttention_DISTRIBUTED_DEFINITIONS DIVA_WITH_C10D_NCCL=1)
      endif()
    endif()
  endif()
  unset(CMAKE_REQUIRED_INCLUDES)
  unset(CMAKE_REQUIRED_LIBRARIES)
  unset(CMAKE_REQUIRED_DEFINITIONS)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_QUIET)
endif()
message(STATUS "DivAttention: distributed training (c10d, Gloo): ${DivAttention_HAS_DISTRIBUTED}; "
               "NCCL: ${DivAttention_HAS_DISTRIBUTED_NCCL}")
