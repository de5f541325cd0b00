# ITK module description of DivAttention: one click on a CT -> a 3D mask, with the div-attention refinement network.
# Read by ITK when the module is built inside ITK (remote module) or against an ITK build tree (external module),
# and by the standalone build to learn which ITK components to ask find_package(ITK) for.
get_filename_component(_divattention_dir "${CMAKE_CURRENT_LIST_FILE}" PATH)
set(_divattention_description "Click-guided 3D segmentation of CT with a two-stage network (nnU-Net-style U-Net, then a \
UNETR or 3D ESPNet refined by the plug-and-play div-attention module), as composable ITK filters on LibTorch.")

# The ITK modules the library and applications use; the standalone build asks find_package(ITK) for exactly these.
set(DivAttention_ITK_DEPENDS
  ITKCommon
  ITKImageFunction
  ITKImageGrid
  ITKImageIntensity
  ITKThresholding
  ITKConnectedComponents
  ITKRegionGrowing
  ITKDistanceMap
  ITKSmoothing
  ITKStatistics
  ITKTransform
  ITKIOImageBase
  ITKIONIFTI
  ITKIONRRD
  ITKIOMeta
  ITKIOPNG
  ITKIOGDCM
  ITKZLIB
  )
# What only the tests and benchmarks use.
set(DivAttention_ITK_TEST_DEPENDS
  ITKTestKernel
  ITKGoogleTest
  )

if(COMMAND itk_module)
  itk_module(DivAttention
    DEPENDS
      ${DivAttention_ITK_DEPENDS}
    TEST_DEPENDS
      ${DivAttention_ITK_TEST_DEPENDS}
    DESCRIPTION
      "${_divattention_description}"
    EXCLUDE_FROM_DEFAULT
    )
endif()
