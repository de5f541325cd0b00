# Run by ITK before the module is configured (remote-module builds) and by our own CMakeLists.txt in the other two
# modes: LibTorch is the module's one external dependency outside ITK.
if(NOT TARGET torch)
  find_package(Torch REQUIRED)
endif()
