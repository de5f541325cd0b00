#ifndef divaPointwiseConvolution3d_h
#define divaPointwiseConvolution3d_h

#include <torch/types.h>

#include <array>
#include <tuple>

namespace diva
{
/** Whether the PointwiseConvolution3d functions compute this convolution: float32 dense CPU tensors (the bias too, if
 * defined), a non-empty [N, Cin, D, H, W] input and a [Cout, Cin, 1, 1, 1] weight. Stride, padding, dilation and
 * groups are the caller's to check (1, 0, 1, 1). */
bool
PointwiseConvolution3dApplies(const torch::Tensor & input, const torch::Tensor & weight, const torch::Tensor & bias);

/** \brief A 1x1x1 convolution, y[n] = W x[n] + b over the voxels, with the voxels shared between LibTorch's threads.
 *
 * Why: a 1x1x1 convolution is one [Cout x Cin] x [Cin x D*H*W] matrix product per sample. LibTorch's oneDNN path
 * reorders the whole volume into its blocked layout and back (2.5-5x slower), and one `addmm` runs on one thread here
 * (OpenBLAS is single-threaded under the thread budget, divaThreadBudget.h). Each sample's voxels are cut into fixed
 * blocks of 4096, one matrix product per block in place (BLAS reads and writes the strided blocks directly), the blocks
 * shared between the threads.
 *
 * Every output is computed by one thread as one dot product of Cin terms (float rounding apart from LibTorch's
 * order), in a BLAS call whose shape does not depend on the thread count: the same bits at any thread count, on any
 * BLAS (OpenBLAS's AVX2 kernels round a row by where it lies in the call). It records no autograd history
 * (divaCpuKernelSelection.cxx wraps it, with the gradients below, in an autograd function). Throws
 * std::invalid_argument where the Applies() test is false. \ingroup DivAttention
 */
torch::Tensor
PointwiseConvolution3d(const torch::Tensor & input, const torch::Tensor & weight, const torch::Tensor & bias);

/** \brief The gradients of PointwiseConvolution3d: {input, weight, bias}, each computed only where `wanted` says
 * (undefined otherwise).
 *
 * The input gradient W^T g[n] is computed in the forward's fixed voxel blocks. The weight gradient
 * sum_n g[n] x[n]^T and the bias gradient sum_n g[n] 1 are sums over every voxel: each fixed block of 8192 voxels of
 * one sample gives a partial product (the blocks shared between threads), and the partials are added in block order,
 * so the output and all three gradients are the same bits at any thread count (tested in CpuKernelSelectionTest).
 * `gradOutput` has the output's shape. \ingroup DivAttention
 */
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>
PointwiseConvolution3dBackward(const torch::Tensor &     gradOutput,
                               const torch::Tensor &     input,
                               const torch::Tensor &     weight,
                               const std::array<bool, 3> wanted);

} // namespace diva

#endif
