#ifndef divaDivAttentionBlock_h
#define divaDivAttentionBlock_h

#include "divaSegmentationNetwork.h"

#include <torch/arg.h>
#include <torch/nn/functional/instancenorm.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/instancenorm.h>
#include <torch/nn/pimpl.h>

#include <string>

namespace diva
{
/** \brief Axis of eq. 4's softmax. \ingroup DivAttention
 *
 * `Space`: over the D*H*W voxels of each channel (a distribution of "where the paths disagree"; the default).
 * `Channel`: over the channels at each voxel (constantly 1 for a one-channel map). Documentation/Method.md. */
enum class SoftmaxAxis
{
  Space,
  Channel
};

/** \brief Where eq. 4's absolute value goes. \ingroup DivAttention
 *
 * `OfResidual`: softmax(|M_i - M_{i-1}|), as the paper's text says (the default).
 * `OfSoftmax`: |softmax(M_i - M_{i-1})|, as eq. 4 is printed (the bars are then a no-op: softmax is positive). */
enum class AbsolutePlacement
{
  OfResidual,
  OfSoftmax
};

/** \brief In which units M_ref enters its instance norm (`normalize_refined`). \ingroup DivAttention
 *
 * `UniformAttention` (the default): M_ref divided by the value a uniform attention map would have (1/(D*H*W) or 1/C,
 * times eq. 4's 1/sqrt(D*H*W)), so the norm's eps (1e-5) is small against its variance and the norm is the scale-free
 * operation Method.md's "Fusion" wants. `Absolute`: M_ref as eqs. 4-5 give it; its variance (~1e-18 at 96^3, ~1e-12 at
 * 24^3) is then far below eps, so the normalised M_ref is ~1e-7..1e-4 and the side branch reaches the fusion as
 * almost nothing: what every model file before 2026-11-27 evening was built with (kept so they load as trained). */
enum class RefinedNormScale
{
  UniformAttention,
  Absolute
};

std::string
ToString(SoftmaxAxis axis);
std::string
ToString(AbsolutePlacement placement);
std::string
ToString(RefinedNormScale scale);
/** Parse the ToString forms; std::invalid_argument names the text otherwise. */
SoftmaxAxis
ParseSoftmaxAxis(const std::string & text);
AbsolutePlacement
ParseAbsolutePlacement(const std::string & text);
RefinedNormScale
ParseRefinedNormScale(const std::string & text);

/** \brief Options of the div-attention module. \ingroup DivAttention */
struct DivAttentionOptions
{
  DivAttentionOptions(int64_t upperChannels, int64_t lowerChannels, int64_t imageChannels)
      : upper_channels_(upperChannels), lower_channels_(lowerChannels), image_channels_(imageChannels)
  {
  }
  /// Channels of O_i (the upper, finer path); the module's output has these channels and O_i's size.
  TORCH_ARG(int64_t, upper_channels);
  /// Channels of O_{i-1} (the lower, coarser path).
  TORCH_ARG(int64_t, lower_channels);
  /// Channels of the network's input image (the side branch of eq. 5 reads it).
  TORCH_ARG(int64_t, image_channels);
  /// Size ratio of the two paths (the transposed convolution of eq. 1 has kernel = stride = this).
  TORCH_ARG(int64_t, scale_factor) = 2;
  /// Channels of the intermediate (deep-supervision) head; 0 builds no head (a host's final head takes that role).
  TORCH_ARG(int64_t, prediction_channels) = 0;
  TORCH_ARG(SoftmaxAxis, softmax_axis) = SoftmaxAxis::Space;
  TORCH_ARG(AbsolutePlacement, absolute_placement) = AbsolutePlacement::OfResidual;
  /// Instance-normalise M_ref before the sum, so the refined features weigh as much as the paths' features whatever
  /// eq. 4's 1/sqrt(D*H*W) scale (which otherwise makes M_ref ~1e-4..1e-9 of them). Method.md, "Fusion".
  TORCH_ARG(bool, normalize_refined) = true;
  /// The units M_ref's norm sees (with normalize_refined); see RefinedNormScale.
  TORCH_ARG(RefinedNormScale, refined_norm_scale) = RefinedNormScale::UniformAttention;
  /// Side of the fusion convolution's cubic kernel (odd). 1: a 1x1x1 channel mix, the host's next 3^3 convolutions
  /// give the spatial context (the default); 3: a 3^3 convolution, as every model file before 2026-11-27 evening.
  /// Method.md, "Fusion".
  TORCH_ARG(int64_t, fusion_kernel_size) = 1;
};

/** \brief The one switch a host network exposes: whether to insert the module, and how it reads eq. 4.
 * \ingroup DivAttention */
struct DivAttentionSwitch
{
  TORCH_ARG(bool, enabled) = false;
  TORCH_ARG(SoftmaxAxis, softmax_axis) = SoftmaxAxis::Space;
  TORCH_ARG(AbsolutePlacement, absolute_placement) = AbsolutePlacement::OfResidual;
  TORCH_ARG(bool, normalize_refined) = true;
  TORCH_ARG(RefinedNormScale, refined_norm_scale) = RefinedNormScale::UniformAttention;
  TORCH_ARG(int64_t, fusion_kernel_size) = 1;

public:
  /** Block options for one junction, with these readings. */
  DivAttentionOptions
  BlockOptions(int64_t upperChannels, int64_t lowerChannels, int64_t imageChannels, int64_t predictionChannels) const;
  /** Adds the "div_attention*" keys to settings. */
  void
  WriteTo(Settings & settings) const;
  /** Reads them back; settings written before `div_attention.fusion_kernel_size` and
   * `div_attention.refined_norm_scale` existed read as 3 and `absolute` (what those networks were built with). */
  static DivAttentionSwitch
  ReadFrom(const Settings & settings);
};

/** \brief What the module returns. \ingroup DivAttention */
struct DivAttentionResult
{
  torch::Tensor fused;     ///< [N, upper_channels, O_i's size]: replaces O_i in the host's decoder
  torch::Tensor logits;    ///< the intermediate prediction (undefined when prediction_channels == 0)
  torch::Tensor attention; ///< eq. 4's attn, [N, upper_channels, O_i's size], in the autograd graph
};

struct FusedJunctionParameters; // divaFusedDivAttention.h

/** \brief The div-attention module (paper section 2, eqs. 1-5): re-segments where two adjacent decoder paths disagree.
 *
 * upper = O_i, lower = O_{i-1}, image = the network input:
 *   O'_{i-1} = project(upsample(O_{i-1}))                        eq. 1 (transposed conv, then 1x1x1 conv)
 *   M_i = sigmoid(O_i), M_{i-1} = sigmoid(O'_{i-1})              eqs. 2-3
 *   attn = softmax_axis(|M_i - M_{i-1}|) / sqrt(D*H*W)           eq. 4 (D, H, W: O_i's size; see the enums)
 *   F_i = LeakyReLU(IN(image_conv(interpolate(image))))          side branch
 *   M_ref = attn * F_i                                           eq. 5
 *   fused = LeakyReLU(IN(fuse_conv(O_i + O'_{i-1} + IN(M_ref / u))))  fusion by addition and convolution (k^3,
 *                                                                 k = fusion_kernel_size, 1 by default)
 *   logits = head(fused)                                         1x1x1 conv, the path's intermediate prediction
 * (u: the uniform attention value, RefinedNormScale). Every attn value lies in [0, 1/sqrt(D*H*W)]; with
 * SoftmaxAxis::Space each channel's values sum to 1/sqrt(D*H*W). \ingroup DivAttention
 */
class DivAttentionBlockImpl : public torch::nn::Module
{
public:
  explicit DivAttentionBlockImpl(const DivAttentionOptions & options);

  /** mapWanted = false: the caller will not read result.attention, which may then be undefined (inference skips
   * writing it). */
  DivAttentionResult
  forward(const torch::Tensor & upper, const torch::Tensor & lower, const torch::Tensor & image, bool mapWanted = true);

  /** eq. 1: O'_{i-1} = project(upsample(O_{i-1})); on a CPU with a kernel = stride up-convolution, one transposed
   * convolution with the composed weight (the same values and, in training, gradients to float rounding). */
  torch::Tensor
  AlignLowerPath(const torch::Tensor & lower);

  /** The factor M_ref is multiplied by before its norm (1 / u; 1 for RefinedNormScale::Absolute). */
  double
  RefinedNormFactor(const torch::Tensor & attention) const;

  /** eq. 4 alone, for tests and inspection. */
  static torch::Tensor
  Attention(const torch::Tensor & upperMask,
            const torch::Tensor & lowerMask,
            SoftmaxAxis           axis,
            AbsolutePlacement     placement);

  DivAttentionOptions        options;
  torch::nn::ConvTranspose3d upsample{ nullptr };
  torch::nn::Conv3d          project{ nullptr };
  torch::nn::Conv3d          image_conv{ nullptr };
  torch::nn::InstanceNorm3d  image_norm{ nullptr };
  torch::nn::InstanceNorm3d  refined_norm{ nullptr };
  torch::nn::Conv3d          fuse_conv{ nullptr };
  torch::nn::InstanceNorm3d  fuse_norm{ nullptr };
  torch::nn::Conv3d          head{ nullptr };

  /** What forward() passes to FusedDivAttentionJunction for an upper path `upper`: the norms' and the fusion's
   * parameters, M_ref's units (RefinedNormFactor) and whether the map is kept. */
  FusedJunctionParameters
  JunctionParameters(const torch::Tensor & upper, bool mapWanted) const;
};

/** \ingroup DivAttention */
TORCH_MODULE(DivAttentionBlock);

} // namespace diva

#endif
