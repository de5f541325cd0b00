# Standalone install: libraries, headers (Modules/CMakeLists.txt) and a CMake package so that a downstream project
# can write find_package(DivAttention) and link DivAttention::DivAttention.
include(CMakePackageConfigHelpers)
set(DivAttention_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/DivAttention)

install(TARGETS DivAttention DivAttentionTorch EXPORT DivAttentionTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT RuntimeLibraries
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT RuntimeLibraries)
install(EXPORT DivAttentionTargets NAMESPACE DivAttention:: DESTINATION ${DivAttention_INSTALL_CMAKEDIR}
        COMPONENT Development)

configure_package_config_file(${PROJECT_SOURCE_DIR}/CMake/DivAttentionConfig.cmake.in
  ${PROJECT_BINARY_DIR}/DivAttentionConfig.cmake
  INSTALL_DESTINATION ${DivAttention_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/DivAttentionConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/DivAttentionConfig.cmake ${PROJECT_BINARY_DIR}/DivAttentionConfigVersion.cmake
  DESTINATION ${DivAttention_INSTALL_CMAKEDIR} COMPONENT Development)

# The bundled models (Models/README.md): DivAttentionSegment looks for them in <prefix>/share/DivAttention/Models.
file(GLOB _divattention_bundled_models ${PROJECT_SOURCE_DIR}/Models/*.pt)
install(FILES ${_divattention_bundled_models} ${PROJECT_SOURCE_DIR}/Models/README.md
  DESTINATION ${CMAKE_INSTALL_DATADIR}/DivAttention/Models COMPONENT RuntimeLibraries)
