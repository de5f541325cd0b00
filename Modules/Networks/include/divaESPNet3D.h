#ifndef divaESPNet3D_h
#define divaESPNet3D_h

#include "divaDivAttentionBlock.h"
#include "divaSegmentationNetwork.h"

#include <torch/arg.h>
#include <torch/nn/functional/batchnorm.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include <string>

namespace diva
{
/** \brief Options of 3D ESPNet with pyramidal refinement (Nuechterlein & Mehta 2018). \ingroup DivAttention */
struct ESPNet3DOptions
{
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, out_channels) = 2;
  /// Encoder widths: level 0 (CBR, 1/2 size), level 1 (1/2), level 2 (1/4), level 3 (1/8).
  TORCH_ARG(int64_t, level0_features) = 16;
  TORCH_ARG(int64_t, level1_features) = 32;
  TORCH_ARG(int64_t, level2_features) = 128;
  TORCH_ARG(int64_t, level3_features) = 256;
  TORCH_ARG(int64_t, level2_repeats) = 2; ///< ESP blocks after level 2's down-sampling one
  TORCH_ARG(int64_t, level3_repeats) = 3;
  /// The modules replace the decoder's ESP blocks, so their fusion convolution is that level's only spatial one:
  /// 3^3 here (UNETR and mUnet keep their own 3^3 convolutions after the module and default to 1x1x1; Method.md).
  TORCH_ARG(DivAttentionSwitch, div_attention) = DivAttentionSwitch().fusion_kernel_size(3);

public:
  /** "paper" (16 -> 32 -> 128 -> 256) or "small" (8 -> 16 -> 32 -> 64, one repeat per level). */
  static ESPNet3DOptions
  Preset(const std::string & name);
  Settings
  ToSettings() const;
  static ESPNet3DOptions
  FromSettings(const Settings & settings);
};

/** \brief conv (no bias) -> BatchNorm(eps 1e-3) -> PReLU, the original's CBR. \ingroup DivAttention */
class CBRImpl : public torch::nn::Module
{
public:
  CBRImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1);
  torch::Tensor
  forward(const torch::Tensor & x);

  torch::nn::Conv3d      conv{ nullptr };
  torch::nn::BatchNorm3d bn{ nullptr };
  torch::nn::PReLU       act{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(CBR);

/** \brief ESP block: reduce ("c1": 1x1x1, or 3^3 stride 2 when down-sampling), four parallel dilated 3^3 convs
 * (dilations 1, 1, 2, 2: "d1".."d4"), hierarchical feature fusion (running sums of d2..d4), concatenation, a residual
 * when the shape is kept, then BatchNorm + PReLU ("bn", "act"). \ingroup DivAttention */
class ESPBlockImpl : public torch::nn::Module
{
public:
  ESPBlockImpl(int64_t in, int64_t out, int64_t stride = 1);
  torch::Tensor
  forward(const torch::Tensor & x);

  torch::nn::Conv3d      c1{ nullptr };
  torch::nn::Conv3d      d1{ nullptr };
  torch::nn::Conv3d      d2{ nullptr };
  torch::nn::Conv3d      d3{ nullptr };
  torch::nn::Conv3d      d4{ nullptr };
  torch::nn::BatchNorm3d bn{ nullptr };
  torch::nn::PReLU       act{ nullptr };
  bool                   residual = false;
};
/** \ingroup DivAttention */
TORCH_MODULE(ESPBlock);

/** \brief Transposed conv (kernel = stride = 2) -> BatchNorm -> PReLU. \ingroup DivAttention */
class UpSamplerImpl : public torch::nn::Module
{
public:
  UpSamplerImpl(int64_t in, int64_t out);
  torch::Tensor
  forward(const torch::Tensor & x);

  torch::nn::ConvTranspose3d deconv{ nullptr };
  torch::nn::BatchNorm3d     bn{ nullptr };
  torch::nn::PReLU           act{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(UpSampler);

/** \brief 3D ESPNet: CBR + ESP encoder (1/2, 1/2, 1/4, 1/8 of the input), a decoder of up-samplers and ESP blocks,
 * and pyramidal refinement at full size (the features average-pooled to 0.2, 0.4, 0.6, 0.8 of the size, a CBR each,
 * up-sampled back and concatenated with the features and the input image, then a CBR and a 1x1x1 classifier). Any
 * size divisible by 8 works; nothing is resized to 128^3.
 *
 * With div-attention, modules replace the decoder's ESP blocks (as the paper does): "div_attention.1" fuses level 2
 * (upper) with level 3, "div_attention.0" level 1 with that result; both carry intermediate heads (1/4, 1/2 size).
 * \ingroup DivAttention */
class ESPNet3DImpl : public SegmentationNetworkImpl
{
public:
  explicit ESPNet3DImpl(const ESPNet3DOptions & options = ESPNet3DOptions());

  using SegmentationNetworkImpl::Segment;
  SegmentationOutput
  Segment(const torch::Tensor & image, const SegmentationRequest & request) override;
  torch::Tensor
  forward(const torch::Tensor & image);

  Settings
  GetSettings() const override;
  int64_t
  GetInputChannels() const override;
  int64_t
  GetOutputChannels() const override;
  int64_t
  GetSizeDivisor() const override;

  ESPNet3DOptions       options;
  CBR                   level0{ nullptr };
  torch::nn::ModuleList level1{ nullptr };
  ESPBlock              level2_0{ nullptr };
  torch::nn::ModuleList level2{ nullptr };
  ESPBlock              level3_0{ nullptr };
  torch::nn::ModuleList level3{ nullptr };
  // Baseline decoder (absent with div-attention).
  UpSampler             up_l3_l2{ nullptr };
  ESPBlock              merge_l2{ nullptr };
  ESPBlock              dec_l2{ nullptr };
  UpSampler             up_l2_l1{ nullptr };
  ESPBlock              merge_l1{ nullptr };
  ESPBlock              dec_l1{ nullptr };
  torch::nn::ModuleList div_attention{ nullptr };
  // Full-size head and pyramidal refinement.
  UpSampler             up_l1_l0{ nullptr };
  torch::nn::ModuleList psp_modules{ nullptr };
  CBR                   refine{ nullptr };
  torch::nn::Conv3d     classifier{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(ESPNet3D);

} // namespace diva

#endif
