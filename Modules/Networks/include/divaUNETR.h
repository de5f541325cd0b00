#ifndef divaUNETR_h
#define divaUNETR_h

#include "divaDivAttentionBlock.h"
#include "divaSegmentationNetwork.h"
#include "divaUnetrBlocks.h"
#include "divaVisionTransformer.h"

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>

#include <array>
#include <string>

namespace diva
{
/** \brief Options of UNETR. Defaults are MONAI's (and the `paper` preset): 96^3, patch 16, hidden 768, MLP 3072,
 * 12 heads, 12 layers, feature size 16, conv patch embedding, instance norm, residual blocks, no qkv bias.
 * \ingroup DivAttention */
struct UNETROptions
{
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, out_channels) = 2;
  TORCH_ARG(int64_t, image_size) = 96;
  TORCH_ARG(int64_t, patch_size) = 16;
  TORCH_ARG(int64_t, feature_size) = 16;
  TORCH_ARG(int64_t, hidden_size) = 768;
  TORCH_ARG(int64_t, mlp_dim) = 3072;
  TORCH_ARG(int64_t, num_heads) = 12;
  TORCH_ARG(int64_t, num_layers) = 12; ///< a multiple of 4 (the skip taps: UnetrSkipTaps)
  TORCH_ARG(double, dropout_rate) = 0.0;
  TORCH_ARG(bool, qkv_bias) = false;
  TORCH_ARG(DivAttentionSwitch, div_attention) = DivAttentionSwitch();
  /** Which transformer outputs feed encoder2/3/4: "monai" (MONAI's rule, the default) or "early" (one block earlier:
   * what model files written before the fix were trained with; such files carry no `skip_taps` setting and load as
   * "early"). See UnetrSkipTaps. */
  TORCH_ARG(std::string, skip_taps) = "monai";

public:
  /** "paper" (MONAI's defaults) or "small" (hidden 192, MLP 768, 4 heads, 4 layers, 8 decoder features: for tests
   * and the demo on two CPU cores). */
  static UNETROptions
  Preset(const std::string & name);
  Settings
  ToSettings() const;
  static UNETROptions
  FromSettings(const Settings & settings);
};

/** \brief The indices into the transformer's per-block outputs (0-based: index i is the output of block i + 1) that
 * UNETR's encoder2, encoder3 and encoder4 read, for `numLayers` blocks (a positive multiple of 4).
 *
 * "monai": { L/4, L/2, 3L/4 }, which is MONAI's fixed { 3, 6, 9 } for its 12 layers (blocks 4, 7 and 10) and
 * { 1, 2, 3 } for the 4-layer `small` preset (blocks 2, 3 and 4: the last block's output, before the final norm, is
 * encoder4's input there, as block 10 of 12 is in MONAI). "early": { L/4 - 1, L/2 - 1, 3L/4 - 1 }, the taps of
 * model files written before this rule was fixed. std::invalid_argument for another name or a bad depth.
 * \ingroup DivAttention */
std::array<int64_t, 3>
UnetrSkipTaps(int64_t numLayers, const std::string & rule);

/** \brief UNETR (Hatamizadeh et al. 2022) with MONAI's state-dict names, optionally with a div-attention module at
 * each junction of adjacent decoder paths (48<-96, 24<-48, 12<-24 at 96^3: "div_attention.0" is the finest).
 *
 * With the module, the decoder path at each junction's upper side is replaced by the module's fused map (which the
 * next decoder step reads); the modules of the two coarser junctions carry the intermediate heads; the finest feeds
 * MONAI's "out" head. Without it the network is MONAI's UNETR exactly.
 * \ingroup DivAttention */
class UNETRImpl : public SegmentationNetworkImpl
{
public:
  explicit UNETRImpl(const UNETROptions & options = UNETROptions());

  using SegmentationNetworkImpl::Segment;
  SegmentationOutput
  Segment(const torch::Tensor & image, const SegmentationRequest & request) override;
  /** The final logits only. */
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

  UNETROptions          options;
  VisionTransformer     vit{ nullptr };
  UnetrBasicBlock       encoder1{ nullptr };
  UnetrPrUpBlock        encoder2{ nullptr };
  UnetrPrUpBlock        encoder3{ nullptr };
  UnetrPrUpBlock        encoder4{ nullptr };
  UnetrUpBlock          decoder5{ nullptr };
  UnetrUpBlock          decoder4{ nullptr };
  UnetrUpBlock          decoder3{ nullptr };
  UnetrUpBlock          decoder2{ nullptr };
  UnetOutBlock          out{ nullptr };
  torch::nn::ModuleList div_attention{ nullptr };

private:
  torch::Tensor
  TokensToVolume(const torch::Tensor & tokens) const;
};
/** \ingroup DivAttention */
TORCH_MODULE(UNETR);

} // namespace diva

#endif
