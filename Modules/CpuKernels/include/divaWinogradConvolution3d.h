#ifndef divaWinogradConvolution3d_h
#define divaWinogradConvolution3d_h

#include <torch/types.h>

namespace diva
{
/** Whether this CPU runs WinogradConvolution3d (x86-64 with AVX2 and FMA, checked once at run time). */
bool
WinogradConvolution3dIsAvailable();

/** Whether WinogradConvolution3d computes this convolution: float32 dense CPU tensors, a [N, C, D, H, W] input, a
 * 3x3x3 kernel with stride 1, padding 1, dilation 1 and one group, and no gradient asked of it (the kernel has no
 * backward: with autograd recording for any operand, the caller uses another kernel). Shape thresholds (where it is
 * faster than oneDNN) are the caller's (divaCpuKernelSelection.cxx). */
bool
WinogradConvolution3dApplies(const torch::Tensor & input,
                             const torch::Tensor & weight,
                             const torch::Tensor & bias,
                             at::IntArrayRef       stride,
                             at::IntArrayRef       padding,
                             at::IntArrayRef       dilation,
                             int64_t               groups);

/** Whether the kernel's register blocks fill for this shape: at least 8 input and output channels, and a width of at
 * least 32 voxels that fills two thirds of the kernel's blocks of 24 tiles (48 voxels) along x. Narrower volumes leave
 * the blocks half empty (24^3: up to 1.5x slower than oneDNN on an AVX2 CPU, Documentation/Performance.md). */
bool
WinogradConvolution3dFillsItsBlocks(const torch::Tensor & input, const torch::Tensor & weight);

/** Whether oneDNN runs its direct convolution with AVX-512 on this CPU: oneDNN's own choice of instruction set
 * (`dnnl_get_effective_cpu_isa()` of the oneDNN LibTorch loaded, so ONEDNN_MAX_CPU_ISA lowers it; without oneDNN, the
 * CPU's AVX-512 F, BW, VL and DQ), checked once. */
bool
DirectConvolutionUsesAvx512();

/** Whether WinogradConvolution3d is faster than oneDNN's direct convolution for this shape on this CPU (the kernel
 * selection's rule, divaCpuKernelSelection.h): where its blocks fill (WinogradConvolution3dFillsItsBlocks) and oneDNN
 * runs with AVX2 at most. The kernel is AVX2 code: against oneDNN's AVX2 convolution it does 3.4x fewer
 * multiplications at similar efficiency and is 1.2-2.4x faster; oneDNN's AVX-512 convolution runs as fast as it
 * (Documentation/Performance.md, "CPU kernel selection"), and then the direct convolution, which sums as LibTorch's
 * does, is kept. */
bool
WinogradConvolution3dIsFaster(const torch::Tensor & input, const torch::Tensor & weight);

/** \brief A 3x3x3 convolution (stride 1, zero padding 1) by Winograd's minimal filtering F(2x2x2, 3x3x3).
 *
 * Why: the networks' full-resolution 3^3 convolutions (16-64 channels at 48^3-96^3) are most of their inference time,
 * and a direct convolution cannot beat this CPU's FMA ceiling (179 GFLOP/s on 2 Zen 3 cores; oneDNN reaches ~145).
 * Winograd's F(2,3) computes each 2x2x2 block of outputs from a 4x4x4 block of inputs with 64 multiplications per
 * input and output channel instead of 8 * 27 = 216: 3.4x fewer. Per call: the kernel is transformed once
 * (U = G w G^T along each axis, 4^3 per channel pair); then, per row of tiles (threads share the rows), the input
 * tiles are transformed (V = B^T d B), multiplied channel-wise as 64 independent [Cout x Cin] x [Cin x tiles]
 * products (the FLOPs that remain), and transformed back (Y = A^T M A), with the bias added.
 *
 * Accuracy: F(2,3)'s transforms hold only 0, +-1 and +-1/2, so the result differs from a direct convolution by
 * float rounding in another summation order (~1e-6 relative; tested against LibTorch to 1e-4 of the output's scale).
 * Deterministic: every output is computed by one thread in a fixed order, whatever the thread count.
 * It records no autograd history itself (divaCpuKernelSelection.cxx wraps it in an autograd function for training).
 * Throws std::invalid_argument where WinogradConvolution3dApplies() is false. \ingroup DivAttention
 */
torch::Tensor
WinogradConvolution3d(const torch::Tensor & input, const torch::Tensor & weight, const torch::Tensor & bias);

} // namespace diva

#endif
