# DivAttention as an ITK remote module. Copy this file to ITK's Modules/Remote/ and configure ITK with
#   -DModule_DivAttention=ON -DDivAttention_GIT_REPOSITORY=<git URL or path of a DivAttention clone>
# (optionally -DModule_DivAttention_GIT_TAG=<commit>). Utilities/check-remote-module.sh does all of it.
# LibTorch must be findable (Torch_DIR) because the module depends on it outside ITK.
if(Module_DivAttention AND NOT DivAttention_GIT_REPOSITORY)
  message(FATAL_ERROR "Module_DivAttention is ON: set DivAttention_GIT_REPOSITORY to the DivAttention git URL or to "
                      "the path of a local clone")
endif()
if(NOT DivAttention_GIT_REPOSITORY)
  set(DivAttention_GIT_REPOSITORY "unset")
endif()
itk_fetch_module(DivAttention
  "Click-guided 3D CT segmentation: a two-stage network (nnU-Net-style U-Net, then UNETR or 3D ESPNet refined by the
plug-and-play div-attention module) as composable ITK filters on LibTorch, with command-line applications."
  MODULE_COMPLIANCE_LEVEL 2
  GIT_REPOSITORY ${DivAttention_GIT_REPOSITORY}
  GIT_TAG main
  )
