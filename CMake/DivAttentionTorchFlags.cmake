# LibTorch facts the rest of the build relies on.
#  - Debian's LibTorch 1.13 and the LibTorch inside PyTorch 2.x wheels both provide the imported target `torch`,
#    whose interface carries the right _GLIBCXX_USE_CXX11_ABI; our targets link it and inherit that flag.
#  - Torch's headers are not -Wextra clean: imported targets' include directories are system directories, so the
#    project's warnings stay about the project's code.
if(NOT TARGET torch)
  message(FATAL_ERROR "LibTorch (find_package(Torch)) did not define the target 'torch'")
endif()
set(DivAttention_TORCH_VERSION "${Torch_VERSION}")
if(NOT DivAttention_TORCH_VERSION)
  set(DivAttention_TORCH_VERSION "unknown")
endif()
message(STATUS "DivAttention: LibTorch ${DivAttention_TORCH_VERSION} from ${Torch_DIR}")
# CUDA is used at run time when torch::cuda::is_available(); this only reports what the LibTorch build offers.
if(TARGET torch_cuda OR TARGET c10_cuda OR CUDA_FOUND)
  set(DivAttention_TORCH_HAS_CUDA ON)
else()
  set(DivAttention_TORCH_HAS_CUDA OFF)
endif()
message(STATUS "DivAttention: LibTorch built with CUDA: ${DivAttention_TORCH_HAS_CUDA}")
