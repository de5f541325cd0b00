#ifndef divaFusedDivAttention_h
#define divaFusedDivAttention_h

#include "divaDivAttentionBlock.h"

#include <torch/types.h>

namespace diva
{
/** Whether FusedDivAttention computes this: eq. 4's softmax over space, dense float32 CPU tensors of one shape
 * [N, C, D, H, W], and no gradient asked of any of them (FusedDivAttentionWithGradients is the training form). */
bool
FusedDivAttentionApplies(const torch::Tensor & upper,
                         const torch::Tensor & lowerAligned,
                         const torch::Tensor & imageFeatures,
                         SoftmaxAxis           axis);

/** Whether FusedDivAttentionWithGradients computes this: as FusedDivAttentionApplies, recording or not. */
bool
FusedDivAttentionTrainingApplies(const torch::Tensor & upper,
                                 const torch::Tensor & lowerAligned,
                                 const torch::Tensor & imageFeatures,
                                 SoftmaxAxis           axis);

/** What FusedDivAttention returns. \ingroup DivAttention */
struct FusedDivAttentionResult
{
  torch::Tensor attention;   ///< eq. 4's attn
  torch::Tensor fusionInput; ///< O_i + O'_{i-1} + M_ref (M_ref instance-normalised if asked): fuse_conv's input
};

/** \brief The div-attention module's element-wise part (eqs. 2-5 and the sum before the fusion convolution) in two
 * passes over each (sample, channel) instance, for inference:
 *
 *   attn    = softmax_space(|sigmoid(upper) - sigmoid(lowerAligned)|) / sqrt(D*H*W)   (or the bars outside: placement)
 *   M_ref   = attn * imageFeatures, then instance-normalised (no affine, eps) if normalizeRefined, measured in units
 *             of 1 / refinedScale (the norm sees M_ref * refinedScale: DivAttentionBlockImpl::RefinedNormFactor)
 *   fusionInput = upper + lowerAligned + M_ref
 *
 * Why: LibTorch runs these as ten separate passes over [N, C, D, H, W] tensors (two sigmoids, difference, absolute
 * value, softmax, scale, product, a norm, two sums), a third of the module's cost beside its convolutions at 96^3
 * (Documentation/Performance.md). Here pass 1 computes exp of the residual, its sum and the statistics of M_ref;
 * pass 2 writes attn and the sum. The residual of two sigmoids lies in [-1, 1], so the softmax needs no maximum.
 * exp is a branch-free polynomial the compiler vectorises (relative error ~2e-7, float rounding).
 *
 * Accuracy: float rounding against DivAttentionBlockImpl's own operators (tested to 1e-5 of the outputs' scale).
 * Deterministic at any thread count. Throws std::invalid_argument where FusedDivAttentionApplies() is false.
 * \ingroup DivAttention
 */
FusedDivAttentionResult
FusedDivAttention(const torch::Tensor & upper,
                  const torch::Tensor & lowerAligned,
                  const torch::Tensor & imageFeatures,
                  AbsolutePlacement     placement,
                  bool                  normalizeRefined,
                  double                eps,
                  double                refinedScale = 1.0);

/** \brief FusedDivAttention for training: an autograd function whose backward runs in three passes over each
 * instance (the gradients of the norm, of the spatial softmax, of the sigmoids; divaFusedDivAttention.cxx), where
 * LibTorch's graph of the ten operators takes about twenty. Gradients reach upper, lowerAligned and imageFeatures from
 * both outputs. Accuracy: float rounding against the operators' own gradients (tested). Throws std::invalid_argument
 * where FusedDivAttentionTrainingApplies() is false. \ingroup DivAttention */
FusedDivAttentionResult
FusedDivAttentionWithGradients(const torch::Tensor & upper,
                               const torch::Tensor & lowerAligned,
                               const torch::Tensor & imageFeatures,
                               AbsolutePlacement     placement,
                               bool                  normalizeRefined,
                               double                eps,
                               double                refinedScale = 1.0);

/** What FusedDivAttentionJunction needs besides its three tensors: the image branch's instance norm, M_ref's norm, the
 * 1x1x1 fusion convolution and its instance norm (each norm followed by the leaky ReLU of negativeSlope, except
 * M_ref's). \ingroup DivAttention */
struct FusedJunctionParameters
{
  torch::Tensor     imageNormWeight; ///< [C], or undefined for 1
  torch::Tensor     imageNormBias;   ///< [C], or undefined for 0
  double            imageNormEps = 1e-5;
  AbsolutePlacement placement = AbsolutePlacement::OfResidual;
  bool              normalizeRefined = true;
  double            refinedEps = 1e-5;
  double            refinedScale = 1.0;
  torch::Tensor     fuseWeight; ///< [C, C, 1, 1, 1]; the convolution's bias is not needed: the norm after it removes it
  torch::Tensor     fuseNormWeight; ///< [C], or undefined for 1
  torch::Tensor     fuseNormBias;   ///< [C], or undefined for 0
  double            fuseNormEps = 1e-5;
  double            negativeSlope = 0.01;
  bool              keepAttention = true; ///< false: attn is not written (the result's attention is undefined)
};

/** What FusedDivAttentionJunction returns. \ingroup DivAttention */
struct FusedJunctionResult
{
  torch::Tensor attention; ///< eq. 4's attn; undefined unless keepAttention
  torch::Tensor fused;     ///< the module's output: leaky_relu(fuse_norm(fuse_conv(O_i + O'_{i-1} + M_ref)))
};

/** Whether FusedDivAttentionJunction computes this: as FusedDivAttentionApplies (imageConvolved in place of the
 * features), per-channel norm parameters of C values or undefined, a [C, C, 1, 1, 1] fusion weight, and no gradient
 * asked of any of them. */
bool
FusedDivAttentionJunctionApplies(const torch::Tensor &           upper,
                                 const torch::Tensor &           lowerAligned,
                                 const torch::Tensor &           imageConvolved,
                                 SoftmaxAxis                     axis,
                                 const FusedJunctionParameters & parameters);

/** \brief Inference of a div-attention junction from eq. 2 to the module's output, where the fusion convolution is
 * 1x1x1 (UNETR's and mUnet's default):
 *
 *   F     = leaky_relu(image_norm(imageConvolved))                    the image branch, normalised on the fly
 *   X     = upper + lowerAligned + M_ref                               as FusedDivAttention, with F as the features
 *   fused = leaky_relu(fuse_norm(fuse_conv(X)))
 *
 * Why: beside its convolutions, the module's cost at 96^3 is passes over [N, C, 96^3] tensors (113 MB each for C =
 * 32): the image norm's three, the attention's two (FusedDivAttention), the fusion convolution's read and write, the
 * fusion norm's three. Here the image norm's statistics take one pass and F is never written; the second attention
 * pass runs over tiles of voxels across all channels, so X stays in cache: the 1x1x1 convolution multiplies it there
 * (an AVX2 product per tile), each tile's output statistics are taken while it is still in cache (merged in a fixed
 * order with Chan's formula), and the tile is streamed out. One pass applies the norm. About 11 passes instead of 18,
 * and one fewer [N, C, ...] tensor alive. Without the map, pass 1 stores exp(residual) * F in its place, so pass 2
 * reads three tensors. The fusion bias is not added: an instance norm removes any per-channel constant.
 *
 * Accuracy: float rounding against the block's operators (tested to 1e-4 of the output's scale; every statistic is
 * taken per cached block of 1024 values, mean first and then squared deviations, and merged in double). The output
 * has the same bits with or without the map and at any thread count. Throws
 * std::invalid_argument where FusedDivAttentionJunctionApplies() is false.
 * \ingroup DivAttention
 */
FusedJunctionResult
FusedDivAttentionJunction(const torch::Tensor &           upper,
                          const torch::Tensor &           lowerAligned,
                          const torch::Tensor &           imageConvolved,
                          const FusedJunctionParameters & parameters);

} // namespace diva

#endif
