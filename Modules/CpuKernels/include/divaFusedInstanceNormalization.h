#ifndef divaFusedInstanceNormalization_h
#define divaFusedInstanceNormalization_h

#include <torch/types.h>

#include <optional>

namespace diva
{
/** Whether FusedInstanceNormalization computes this: a dense float32 CPU input [N, C, D, H, W] (or any rank >= 3:
 * every (n, c) is one instance), weight and bias undefined or [C], an addend undefined or of the input's shape, and
 * no gradient asked of any operand (the kernel has no backward). */
bool
FusedInstanceNormalizationApplies(const torch::Tensor & input,
                                  const torch::Tensor & weight,
                                  const torch::Tensor & bias,
                                  const torch::Tensor & addend);

/** \brief Instance normalisation, the affine map, an optional residual addend and an optional leaky ReLU, in two
 * passes over each instance:
 *
 *   y = act( (x - mean) / sqrt(var + eps) * weight + bias + addend ),   act(v) = v >= 0 ? v : negativeSlope * v
 *
 * with mean and biased variance over each (sample, channel) instance, as `torch::instance_norm` without running
 * statistics computes them (weight 1 and bias 0 where undefined, no addend where undefined, no activation where
 * negativeSlope is empty).
 *
 * Why: LibTorch 1.13 computes an instance norm as a batch norm over [1, N*C, ...] whose statistics pass is not
 * vectorised (26 ms for [1, 16, 96^3] on this machine, where reading the tensor once takes 2 ms), and the networks
 * then add the residual and apply the activation in further passes. Here each instance is read twice (the mean and
 * then the squared deviations, in float blocks of 8 lanes summed into double) and written once.
 *
 * Accuracy: statistics in double; the result differs from LibTorch's by float rounding (tested to 1e-5 of the output's
 * scale). Deterministic (each instance is one thread's, summed in a fixed order). Inference only: records no
 * autograd history. Throws std::invalid_argument where FusedInstanceNormalizationApplies() is false.
 *
 * overwriteInput: write the result into the input's memory when nothing else can see it (a contiguous tensor that is
 * its storage's only user), and return it: for callers that pass a temporary (a convolution's output), one tensor of
 * the input's size fewer alive at the peak of a forward.
 * \ingroup DivAttention
 */
torch::Tensor
FusedInstanceNormalization(const torch::Tensor & input,
                           const torch::Tensor & weight,
                           const torch::Tensor & bias,
                           double                eps,
                           const torch::Tensor & addend,
                           std::optional<double> negativeSlope,
                           bool                  overwriteInput = false);

} // namespace diva

#endif
