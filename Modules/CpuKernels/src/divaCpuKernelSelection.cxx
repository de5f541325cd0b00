#include "divaCpuKernelSelection.h"
#include "divaAutogradRecording.h"

#include "divaFusedInstanceNormalization.h"
#include "divaNonOverlappingTransposedConvolution3d.h"
#include "divaPointwiseConvolution3d.h"
#include "divaWinogradConvolution3d.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/mkldnn_convolution.h>
#include <c10/core/GradMode.h>
#include <torch/autograd.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/linear.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <tuple>
#include <vector>

namespace diva
{
namespace
{
CpuKernels
InitialCpuKernels()
{
  const char * text = std::getenv("DIVATTENTION_CPU_KERNELS");
  return text == nullptr || *text == '\0' ? CpuKernels::Selected : ParseCpuKernels(text);
}

std::atomic<CpuKernels> &
ProcessCpuKernels()
{
  static std::atomic<CpuKernels> kernels{ InitialCpuKernels() };
  return kernels;
}

// The tensors the selected kernels accept: dense float32 on the CPU (the bias too, if any), with a LibTorch built
// with oneDNN.
bool
Selectable(const torch::Tensor & input, const torch::Tensor & weight, const torch::Tensor & bias)
{
  return GetCpuKernels() != CpuKernels::LibTorch && at::hasMKLDNN() && input.device().is_cpu() &&
         weight.device().is_cpu() && input.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat &&
         input.layout() == torch::kStrided && weight.layout() == torch::kStrided && input.numel() > 0 &&
         (!bias.defined() || (bias.device().is_cpu() && bias.scalar_type() == torch::kFloat));
}

bool
AllEqual(at::IntArrayRef values, int64_t expected)
{
  for (const auto v : values)
  {
    if (v != expected)
    {
      return false;
    }
  }
  return true;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using Gradients = std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>;
using ForwardKernel = torch::Tensor (*)(const torch::Tensor &, const torch::Tensor &, const torch::Tensor &);
/** {input, weight, bias} gradients from the output gradient, the saved input and weight, and which are wanted. */
using GradientKernel = Gradients (*)(const torch::Tensor &,
                                     const torch::Tensor &,
                                     const torch::Tensor &,
                                     const std::array<bool, 3>);

// Training with one of the toolkit's convolution kernels: the forward is the kernel's, the gradients another
// function's, from the saved input and weight (the bias is always defined here: DefinedBias).
template<ForwardKernel Kernel, GradientKernel KernelGradients>
class ConvolutionWithGradients : public torch::autograd::Function<ConvolutionWithGradients<Kernel, KernelGradients>>
{
public:
  static torch::Tensor
  forward(AutogradContext *     context,
          const torch::Tensor & input,
          const torch::Tensor & weight,
          const torch::Tensor & bias)
  {
    context->save_for_backward({ input, weight });
    return Kernel(input, weight, bias);
  }

  static variable_list
  backward(AutogradContext * context, variable_list gradients)
  {
    const auto saved = context->get_saved_variables();
    auto [input, weight, bias] =
      KernelGradients(gradients[0], saved[0], saved[1],
                      { context->needs_input_grad(0), context->needs_input_grad(1), context->needs_input_grad(2) });
    return { input, weight, bias };
  }
};

// The Winograd forward's gradients: LibTorch's own convolution_backward (what oneDNN's forward would have been
// differentiated with), so only the forward changes.
Gradients
WinogradConvolutionGradients(const torch::Tensor &     gradient,
                             const torch::Tensor &     input,
                             const torch::Tensor &     weight,
                             const std::array<bool, 3> wanted)
{
  const std::vector<int64_t> biasSizes{ weight.size(0) };
  return at::convolution_backward(gradient, input, weight, at::OptionalIntArrayRef(biasSizes), { 1, 1, 1 }, { 1, 1, 1 },
                                  { 1, 1, 1 }, false, { 0, 0, 0 }, 1, wanted);
}

// The non-overlapping transposed convolution's gradients. Per input voxel it is a 1x1x1 convolution with the
// [Cout k0 k1 k2 x C] matrix W^T whose outputs are scattered to the voxel's output block; with the output gradient
// regrouped as [N, Cout k0 k1 k2, D, H, W] (the inverse of the scatter), its input and weight gradients are that 1x1x1
// convolution's (divaPointwiseConvolution3d.h: the voxels shared between the threads, the weight gradient summed in a
// fixed block order) and the bias gradient is the output gradient's sum per channel. LibTorch 1.13's column-buffer
// backward takes ~2x one thread's products (Documentation/Performance.md).
Gradients
NonOverlappingTransposedConvolutionGradients(const torch::Tensor &     gradient,
                                             const torch::Tensor &     input,
                                             const torch::Tensor &     weight,
                                             const std::array<bool, 3> wanted)
{
  const int64_t batch = input.size(0), inChannels = input.size(1), outChannels = weight.size(1);
  const int64_t k0 = weight.size(2), k1 = weight.size(3), k2 = weight.size(4);
  const int64_t rows = outChannels * k0 * k1 * k2;
  torch::Tensor inputGradient, weightGradient, biasGradient;
  if (wanted[0] || wanted[1])
  {
    const auto regrouped =
      gradient.reshape({ batch, outChannels, input.size(2), k0, input.size(3), k1, input.size(4), k2 })
        .permute({ 0, 1, 3, 5, 7, 2, 4, 6 })
        .reshape({ batch, rows, input.size(2), input.size(3), input.size(4) });
    const auto pointwiseWeight = weight.reshape({ inChannels, rows }).t().reshape({ rows, inChannels, 1, 1, 1 });
    auto [pointwiseInput, pointwiseWeightGradient, unused] =
      PointwiseConvolution3dBackward(regrouped, input, pointwiseWeight, { wanted[0], wanted[1], false });
    inputGradient = pointwiseInput;
    if (pointwiseWeightGradient.defined())
    {
      weightGradient = pointwiseWeightGradient.view({ rows, inChannels }).t().reshape(weight.sizes());
    }
  }
  if (wanted[2])
  {
    biasGradient = gradient.sum({ 0, 2, 3, 4 });
  }
  return { inputGradient, weightGradient, biasGradient };
}

// Training with the Winograd forward; with the 1x1x1 convolution, whose gradients are matrix products sharing the
// voxels between the threads (LibTorch's `addmm` backward would run each on one thread, OpenBLAS being
// single-threaded under the thread budget); with the non-overlapping transposed convolution.
using WinogradConvolutionFunction = ConvolutionWithGradients<WinogradConvolution3d, WinogradConvolutionGradients>;
using PointwiseConvolutionFunction = ConvolutionWithGradients<PointwiseConvolution3d, PointwiseConvolution3dBackward>;
using NonOverlappingTransposedConvolutionFunction =
  ConvolutionWithGradients<NonOverlappingTransposedConvolution3d, NonOverlappingTransposedConvolutionGradients>;

// Whether a kernel's shape rules hold, whatever autograd would record (the Applies() functions refuse recording).
template<typename Test>
bool
AppliesIgnoringRecording(Test test)
{
  torch::NoGradGuard noGrad;
  return test();
}

// LibTorch's custom autograd functions take no undefined tensors: a missing bias becomes zeros that need no gradient.
torch::Tensor
DefinedBias(const torch::Tensor & bias, int64_t channels, const torch::Tensor & weight)
{
  return bias.defined() ? bias : torch::zeros({ channels }, weight.options().requires_grad(false));
}

} // namespace

std::string
ToString(CpuKernels kernels)
{
  switch (kernels)
  {
    case CpuKernels::LibTorch:
      return "libtorch";
    case CpuKernels::Direct:
      return "direct";
    case CpuKernels::Winograd:
      return "winograd";
    case CpuKernels::Selected:
      break;
  }
  return "selected";
}

CpuKernels
ParseCpuKernels(const std::string & text)
{
  if (text == "libtorch")
  {
    return CpuKernels::LibTorch;
  }
  if (text == "direct")
  {
    return CpuKernels::Direct;
  }
  if (text == "selected")
  {
    return CpuKernels::Selected;
  }
  if (text == "winograd")
  {
    return CpuKernels::Winograd;
  }
  throw std::invalid_argument("CPU kernels must be 'libtorch', 'direct', 'selected' or 'winograd' "
                              "(DIVATTENTION_CPU_KERNELS), got '" +
                              text + "'");
}

CpuKernels
GetCpuKernels()
{
  return ProcessCpuKernels().load(std::memory_order_relaxed);
}

void
SetCpuKernels(CpuKernels kernels)
{
  ProcessCpuKernels().store(kernels, std::memory_order_relaxed);
}

torch::Tensor
Convolution3d(const torch::Tensor & input,
              const torch::Tensor & weight,
              const torch::Tensor & bias,
              at::IntArrayRef       stride,
              at::IntArrayRef       padding,
              at::IntArrayRef       dilation,
              int64_t               groups)
{
  if (!Selectable(input, weight, bias) || input.dim() != 5 || weight.dim() != 5)
  {
    return torch::conv3d(input, weight, bias, stride, padding, dilation, groups);
  }
  const auto kernel = weight.sizes().slice(2);
  if (AllEqual(kernel, 1) && AllEqual(stride, 1) && AllEqual(padding, 0) && groups == 1 &&
      PointwiseConvolution3dApplies(input, weight, bias))
  {
    // One matrix product per sample, the voxels shared between the threads; in training with gradients that are too.
    return AutogradRecords(input, weight, bias)
             ? PointwiseConvolutionFunction::apply(input, weight, DefinedBias(bias, weight.size(0), weight))
             : PointwiseConvolution3d(input, weight, bias);
  }
  const auto kernels = GetCpuKernels();
  if (((kernels == CpuKernels::Selected && WinogradConvolution3dIsFaster(input, weight)) ||
       (kernels == CpuKernels::Winograd && WinogradConvolution3dFillsItsBlocks(input, weight))) &&
      AppliesIgnoringRecording(
        [&] { return WinogradConvolution3dApplies(input, weight, bias, stride, padding, dilation, groups); }))
  {
    // Training: the Winograd forward with LibTorch's gradients; inference: the kernel alone.
    return AutogradRecords(input, weight, bias)
             ? WinogradConvolutionFunction::apply(input, weight, DefinedBias(bias, weight.size(0), weight))
             : WinogradConvolution3d(input, weight, bias);
  }
  return at::mkldnn_convolution(input.contiguous(), weight.contiguous(), bias, padding, stride, dilation, groups);
}

torch::Tensor
Linear(const torch::Tensor & input, const torch::Tensor & weight, const torch::Tensor & bias)
{
  if (!Selectable(input, weight, bias) || at::get_num_threads() < 2 || input.dim() < 2 || weight.dim() != 2 ||
      input.size(-1) != weight.size(1))
  {
    return torch::nn::functional::linear(input, weight, bias);
  }
  const int64_t inFeatures = weight.size(1);
  const int64_t outFeatures = weight.size(0);
  const auto    rows = input.reshape({ -1, inFeatures });
  const int64_t count = rows.size(0);
  // Rows become the voxels of a [1, in, rows, 1, 1] volume; the weight a 1x1x1 kernel.
  const auto volume = rows.t().contiguous().view({ 1, inFeatures, count, 1, 1 });
  const auto output = at::mkldnn_convolution(volume, weight.contiguous().view({ outFeatures, inFeatures, 1, 1, 1 }),
                                             bias, { 0, 0, 0 }, { 1, 1, 1 }, { 1, 1, 1 }, 1);
  auto       sizes = input.sizes().vec();
  sizes.back() = outFeatures;
  return output.view({ outFeatures, count }).t().view(sizes);
}

torch::Tensor
TransposedConvolution3d(const torch::Tensor & input,
                        const torch::Tensor & weight,
                        const torch::Tensor & bias,
                        at::IntArrayRef       stride,
                        at::IntArrayRef       padding,
                        at::IntArrayRef       outputPadding,
                        int64_t               groups,
                        at::IntArrayRef       dilation)
{
  if (GetCpuKernels() != CpuKernels::LibTorch &&
      AppliesIgnoringRecording(
        [&]
        {
          return NonOverlappingTransposedConvolution3dApplies(input, weight, bias, stride, padding, outputPadding,
                                                              dilation, groups);
        }))
  {
    return AutogradRecords(input, weight, bias) ? NonOverlappingTransposedConvolutionFunction::apply(
                                                    input, weight, DefinedBias(bias, weight.size(1), weight))
                                                : NonOverlappingTransposedConvolution3d(input, weight, bias);
  }
  return torch::conv_transpose3d(input, weight, bias, stride, padding, outputPadding, groups, dilation);
}

namespace
{
torch::Tensor
NormalizeAndActivate(const torch::nn::InstanceNorm3d & norm,
                     const torch::Tensor &             input,
                     const torch::Tensor &             addend,
                     std::optional<double>             negativeSlope,
                     bool                              overwriteInput)
{
  const auto & o = norm->options;
  // Running statistics are used in eval mode when tracked: only the statistics-free norm is fused.
  if (GetCpuKernels() != CpuKernels::LibTorch && !o.track_running_stats() &&
      FusedInstanceNormalizationApplies(input, norm->weight, norm->bias, addend))
  {
    return FusedInstanceNormalization(input, norm->weight, norm->bias, o.eps(), addend, negativeSlope, overwriteInput);
  }
  if (o.track_running_stats() || input.dim() != 5 || input.size(0) * input.size(1) == 0 ||
      (addend.defined() && addend.sizes() != input.sizes()))
  {
    auto output = norm.ptr()->forward(input);
    if (addend.defined())
    {
      output = output + addend;
    }
    return negativeSlope ? torch::leaky_relu(output, *negativeSlope) : output;
  }
  // What LibTorch's instance norm computes (a batch norm over the [1, N*C, D, H, W] view, with the affine parameters
  // repeated per sample), but the activation runs in place on the batch norm's own output before it is viewed back
  // as [N, C, D, H, W]: LibTorch returns that view, and an in-place operation on a view makes autograd clone the
  // whole gradient and scatter it back (CopySlices, ~90 ms per mUnet training step at 96^3).
  const int64_t batch = input.size(0), channels = input.size(1);
  auto          flat = input.sizes().vec();
  flat[0] = 1;
  flat[1] = batch * channels;
  const auto repeated = [batch](const torch::Tensor & t)
  { return batch == 1 || !t.defined() ? t : t.repeat({ batch }); };
  auto output = torch::batch_norm(input.contiguous().view(flat), repeated(norm->weight), repeated(norm->bias), {}, {},
                                  true, o.momentum(), o.eps(), at::globalContext().userEnabledCuDNN());
  if (addend.defined())
  {
    output = output + addend.reshape(flat);
  }
  if (negativeSlope)
  {
    torch::leaky_relu_(output, *negativeSlope); // not a view: no CopySlices
  }
  return batch == 1 ? output : output.view(input.sizes());
}
} // namespace

torch::Tensor
InstanceNorm3d(const torch::nn::InstanceNorm3d & norm,
               const torch::Tensor &             input,
               const torch::Tensor &             addend,
               std::optional<double>             negativeSlope)
{
  return NormalizeAndActivate(norm, input, addend, negativeSlope, false);
}

torch::Tensor
InstanceNorm3d(const torch::nn::InstanceNorm3d & norm,
               torch::Tensor &&                  input,
               const torch::Tensor &             addend,
               std::optional<double>             negativeSlope)
{
  auto temporary = std::move(input); // the caller's reference is gone: only `temporary` refers to it now
  return NormalizeAndActivate(norm, temporary, addend, negativeSlope, true);
}

} // namespace diva
