#ifndef divaMUnet_h
#define divaMUnet_h

#include "divaDivAttentionBlock.h"
#include "divaSegmentationNetwork.h"

#include <torch/arg.h>
#include <torch/nn/functional/instancenorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/instancenorm.h>

#include <string>
#include <vector>

namespace diva
{
/** \brief Options of mUnet, nnU-Net's plain 3D U-Net (stage 1 of the pipeline). \ingroup DivAttention */
struct MUnetOptions
{
  TORCH_ARG(int64_t, in_channels) = 2; ///< CT + click map
  TORCH_ARG(int64_t, out_channels) = 2;
  TORCH_ARG(int64_t, num_stages) = 6;     ///< resolution levels; stage 0 keeps the size, each later one halves it
  TORCH_ARG(int64_t, base_features) = 32; ///< features of stage i: min(base * 2^i, max_features)
  TORCH_ARG(int64_t, max_features) = 320;
  TORCH_ARG(bool, deep_supervision) = false; ///< return the intermediate heads' predictions (always built)
  TORCH_ARG(DivAttentionSwitch, div_attention) = DivAttentionSwitch();

public:
  /** "paper" (nnU-Net 3d_fullres at 96^3: 6 stages, 32..320) or "small" (5 stages, 16..128). */
  static MUnetOptions
  Preset(const std::string & name);
  std::vector<int64_t>
  FeaturesPerStage() const;
  Settings
  ToSettings() const;
  static MUnetOptions
  FromSettings(const Settings & settings);
};

/** \brief conv -> InstanceNorm(affine, eps 1e-5) -> LeakyReLU(0.01) (nnU-Net's ConvDropoutNormReLU, no dropout).
 * \ingroup DivAttention */
class ConvNormReLUImpl : public torch::nn::Module
{
public:
  ConvNormReLUImpl(int64_t in, int64_t out, int64_t stride);
  torch::Tensor
  forward(const torch::Tensor & x);

  torch::nn::Conv3d         conv{ nullptr };
  torch::nn::InstanceNorm3d norm{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(ConvNormReLU);

/** \brief Two ConvNormReLU, the first with the stage's stride (nnU-Net's StackedConvBlocks, child "convs").
 * \ingroup DivAttention */
class StackedConvBlocksImpl : public torch::nn::Module
{
public:
  StackedConvBlocksImpl(int64_t in, int64_t out, int64_t firstStride);
  torch::Tensor
  forward(const torch::Tensor & x);

  torch::nn::Sequential convs{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(StackedConvBlocks);

/** \brief nnU-Net's PlainConvEncoder: "stages.i.0" are the StackedConvBlocks of stage i. \ingroup DivAttention */
class PlainConvEncoderImpl : public torch::nn::Module
{
public:
  PlainConvEncoderImpl(int64_t inChannels, const std::vector<int64_t> & features);
  /** Every stage's output, finest first. */
  std::vector<torch::Tensor>
  forward(const torch::Tensor & x);

  torch::nn::ModuleList stages{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(PlainConvEncoder);

/** \brief nnU-Net's UNetDecoder: "transpconvs.s" (kernel = stride 2), "stages.s" (on the skip concatenation),
 * "seg_layers.s" (1x1x1 heads); s = 0 is the coarsest decoder stage. \ingroup DivAttention */
class UNetDecoderImpl : public torch::nn::Module
{
public:
  UNetDecoderImpl(const std::vector<int64_t> & features, int64_t outChannels);

  torch::nn::ModuleList stages{ nullptr };
  torch::nn::ModuleList transpconvs{ nullptr };
  torch::nn::ModuleList seg_layers{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(UNetDecoder);

/** \brief mUnet: nnU-Net's plain 3D U-Net with nnU-Net's state-dict names ("encoder.stages.0.0.convs.0.conv.weight",
 * "decoder.seg_layers.4.weight"; nnU-Net's duplicate "all_modules" aliases are not stored), optionally with a
 * div-attention module between every two adjacent decoder stages ("div_attention.k" upper = decoder stage k + 1).
 *
 * With the module the decoder stage's output is replaced by the fused map, which the next transposed conv and the
 * stage's seg_layer read (the seg_layer is the module's 1x1x1 intermediate head). Intermediate outputs are those of
 * decoder stages num_stages-3 .. 1, highest resolution first: the coarsest decoder stage is never supervised (nnU-Net
 * gives it weight 0; the paper supervises every path but the lowest), so its seg_layer is built but unused.
 * \ingroup DivAttention */
class MUnetImpl : public SegmentationNetworkImpl
{
public:
  explicit MUnetImpl(const MUnetOptions & options = MUnetOptions());

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

  MUnetOptions          options;
  PlainConvEncoder      encoder{ nullptr };
  UNetDecoder           decoder{ nullptr };
  torch::nn::ModuleList div_attention{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(MUnet);

} // namespace diva

#endif
