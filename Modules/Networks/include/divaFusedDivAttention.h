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

} // namespace diva

#endif
