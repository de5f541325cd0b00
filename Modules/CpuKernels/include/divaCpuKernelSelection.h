#ifndef divaCpuKernelSelection_h
#define divaCpuKernelSelection_h

#include <torch/nn/functional/instancenorm.h> // needed first by the module header in LibTorch 1.13
#include <torch/nn/modules/instancenorm.h>
#include <torch/types.h>

#include <optional>

#include <string>

namespace diva
{
/** Which CPU kernels the networks' convolutions and linear layers use. */
enum class CpuKernels
{
  /** LibTorch's own dispatch, unchanged (for comparison and as an escape hatch). */
  LibTorch,
  /** The selection below without the Winograd convolution (direct convolutions only; for comparison). */
  Direct,
  /** The selection below, where LibTorch's own choice is slow on a CPU (the default). */
  Selected,
  /** The selection below with the Winograd convolution wherever its blocks fill, whatever the CPU (to measure it
   * against the direct convolution on a CPU where the selection keeps that). */
  Winograd
};

/** "libtorch", "direct", "selected" or "winograd". */
std::string
ToString(CpuKernels kernels);

/** Parses "libtorch", "direct", "selected" or "winograd"; throws std::invalid_argument naming the text otherwise. */
CpuKernels
ParseCpuKernels(const std::string & text);

/** The process-wide choice. Its initial value comes from the environment variable DIVATTENTION_CPU_KERNELS
 * ("libtorch", "direct", "selected" or "winograd"; unset: selected). \ingroup DivAttention */
CpuKernels
GetCpuKernels();

/** Sets the process-wide choice (thread-safe; takes effect at the next layer call). */
void
SetCpuKernels(CpuKernels kernels);

/** \brief A 3D convolution (zero padding) that picks the fastest CPU kernel LibTorch has for its shape.
 *
 * Why: measured on the project's 2-core machines (Documentation/Performance.md, "CPU kernel selection"), LibTorch
 * 1.13's convolution dispatcher is tuned for 2D images and makes two costly choices for 3D networks at batch 1,
 * and has no FLOP-saving algorithm for 3D:
 * - a 3^3 convolution with stride 1 and padding 1 where WinogradConvolution3dIsFaster (8+ channels, 32+ voxels
 *   wide, and oneDNN without AVX-512 on this CPU: the choice follows the instruction set, not one CPU's figures)
 *   runs as a Winograd F(2,3) convolution (divaWinogradConvolution3d.h: 3.4x fewer multiplications than a direct
 *   one; not with CpuKernels::Direct; with CpuKernels::Winograd wherever its blocks fill); in training its gradients
 *   are LibTorch's `convolution_backward`, the formula oneDNN's forward is differentiated with;
 * - a 3^3 convolution whose N*C*D*H is at most 20480 (32 channels at 24^3, 128 at 12^3, 320 at 6^3, a 1-channel
 *   stem at 96^3) goes to an im2col + BLAS fallback at 15-20 GFLOP/s, where oneDNN reaches 140-155 GFLOP/s on the
 *   same shape: such convolutions call oneDNN directly (`at::mkldnn_convolution`);
 * - a 1x1x1 convolution with more than one thread goes to oneDNN, which reorders the whole volume into its blocked
 *   layout and back (2.5-5x slower than one matrix product): these become one matrix product over the voxels, the
 *   voxels shared between the threads, in training with gradients computed the same way
 *   (divaPointwiseConvolution3d.h).
 * All are the same mathematical operation with another summation order (results agree to float rounding, tested
 * in CpuKernelSelectionTest and WinogradConvolution3dTest). Every path is differentiable (oneDNN's convolution has
 * its own autograd formula; the Winograd and 1x1x1 kernels run inside autograd functions).
 * Anything else (CUDA, other dtypes, a LibTorch without oneDNN, CpuKernels::LibTorch) calls `torch::conv3d`.
 * \ingroup DivAttention
 */
torch::Tensor
Convolution3d(const torch::Tensor & input,
              const torch::Tensor & weight,
              const torch::Tensor & bias,
              at::IntArrayRef       stride,
              at::IntArrayRef       padding,
              at::IntArrayRef       dilation,
              int64_t               groups);

/** \brief A linear layer (y = x W^T + b over the last axis) that picks the fastest CPU kernel for it.
 *
 * Why: with more than one thread, LibTorch's linear layer calls OpenBLAS, whose own worker threads compete for the
 * cores with LibTorch's OpenMP threads that are still spinning after the previous operator: the transformer's
 * 216 x 768 x 3072 products run at 45-60 GFLOP/s on two threads, slower than on one. Run as a 1x1x1 oneDNN
 * convolution over the rows (oneDNN shares LibTorch's OpenMP pool), they reach 80-145 GFLOP/s. With one thread
 * (or on CUDA, other dtypes, without oneDNN) it calls `torch::nn::functional::linear`. The result may be a strided
 * view (rows transposed back), never a copy; reshape, not view, if a caller needs another layout.
 * \ingroup DivAttention
 */
torch::Tensor
Linear(const torch::Tensor & input, const torch::Tensor & weight, const torch::Tensor & bias);

/** \brief A 3D transposed convolution that, on a CPU, runs kernel = stride ones (the networks' 2^3 up-convolutions)
 * as one matrix product per input slice (divaNonOverlappingTransposedConvolution3d.h) instead of LibTorch 1.13's
 * column-buffer kernel: 1.7-4.4x faster (Documentation/Performance.md). In training it runs inside an autograd
 * function whose gradients are matrix products too (about half of LibTorch's backward time). Other shapes, CUDA,
 * other dtypes and CpuKernels::LibTorch call `torch::conv_transpose3d`.
 * \ingroup DivAttention
 */
torch::Tensor
TransposedConvolution3d(const torch::Tensor & input,
                        const torch::Tensor & weight,
                        const torch::Tensor & bias,
                        at::IntArrayRef       stride,
                        at::IntArrayRef       padding,
                        at::IntArrayRef       outputPadding,
                        int64_t               groups,
                        at::IntArrayRef       dilation);

/** \brief `norm(x)`, then `+ addend` (if defined), then a leaky ReLU with `negativeSlope` (if given): the networks'
 * "instance norm [+ residual] + activation" step.
 *
 * For inference on a CPU (no autograd recording, float32, a norm without running statistics, not
 * CpuKernels::LibTorch) it is one fused kernel (divaFusedInstanceNormalization.h: two reads and one write of the
 * tensor, where LibTorch 1.13 takes 5-10x as long for the norm alone); otherwise the modules' own forward, an addition
 * and an in-place leaky ReLU, as the networks called them before. Both give the same values to float rounding.
 * \ingroup DivAttention
 */
torch::Tensor
InstanceNorm3d(const torch::nn::InstanceNorm3d & norm,
               const torch::Tensor &             input,
               const torch::Tensor &             addend = {},
               std::optional<double>             negativeSlope = std::nullopt);

/** \copydoc InstanceNorm3d(const torch::nn::InstanceNorm3d &, const torch::Tensor &, const torch::Tensor &,
 * std::optional<double>)
 * For a temporary input (e.g. `InstanceNorm3d(norm, conv(x))`) the fused kernel writes into the input's memory when
 * nothing else refers to it: one tensor fewer alive at a time. */
torch::Tensor
InstanceNorm3d(const torch::nn::InstanceNorm3d & norm,
               torch::Tensor &&                  input,
               const torch::Tensor &             addend = {},
               std::optional<double>             negativeSlope = std::nullopt);

} // namespace diva

#endif
