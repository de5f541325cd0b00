#ifndef divaNonOverlappingTransposedConvolution3d_h
#define divaNonOverlappingTransposedConvolution3d_h

#include <torch/types.h>

namespace diva
{
/** Whether NonOverlappingTransposedConvolution3d computes this transposed convolution: float32 dense CPU tensors, a
 * [N, C, D, H, W] input, a weight [C, Cout, k0, k1, k2] with kernel = stride along every axis, padding 0, output
 * padding 0, dilation 1, one group, and no gradient asked of it (the kernel has no backward). */
bool
NonOverlappingTransposedConvolution3dApplies(const torch::Tensor & input,
                                             const torch::Tensor & weight,
                                             const torch::Tensor & bias,
                                             at::IntArrayRef       stride,
                                             at::IntArrayRef       padding,
                                             at::IntArrayRef       outputPadding,
                                             at::IntArrayRef       dilation,
                                             int64_t               groups);

/** \brief A transposed convolution whose kernel equals its stride (the 2^3 up-convolutions of U-Nets and UNETR).
 *
 * Why: such a transposed convolution never overlaps: input voxel (z, y, x) alone writes the output block
 * [k0 z, k0 z + k0) x [k1 y, ...) x [k2 x, ...), with the [Cout k0 k1 k2 x C] matrix W^T times its C channel values.
 * LibTorch 1.13's CPU kernel (`slow_conv_transpose3d`) builds a column buffer of the whole output and scatters it
 * back (col2im), ~12 % of UNETR's forward; here each (sample, input slice) is one matrix product into a small
 * buffer that stays in cache, written straight to its k0 output slices (x interleaved), with the bias added.
 * Threads share the slices; every output is computed by one thread (deterministic at any thread count).
 *
 * Accuracy: the same sums as LibTorch's (one product of C terms per output) in another order: float rounding.
 * It records no autograd history itself (divaCpuKernelSelection.cxx wraps it in an autograd function for training).
 * Throws std::invalid_argument where the Applies() test is false. \ingroup DivAttention
 */
torch::Tensor
NonOverlappingTransposedConvolution3d(const torch::Tensor & input,
                                      const torch::Tensor & weight,
                                      const torch::Tensor & bias);

} // namespace diva

#endif
