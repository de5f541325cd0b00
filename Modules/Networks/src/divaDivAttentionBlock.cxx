#include "divaDivAttentionBlock.h"
#include "divaAutogradRecording.h"

#include "divaCountedLayers.h"
#include "divaCpuKernelSelection.h"
#include "divaFusedDivAttention.h"
#include "divaNonOverlappingTransposedConvolution3d.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/upsampling.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace diva
{
namespace F = torch::nn::functional;

namespace
{
torch::nn::InstanceNorm3d
MakeInstanceNorm(int64_t channels, bool affine)
{
  return torch::nn::InstanceNorm3d(torch::nn::InstanceNorm3dOptions(channels).eps(1e-5).affine(affine));
}

constexpr double kLeakySlope = 0.01;

void
CheckInputs(const DivAttentionOptions & o,
            const torch::Tensor &       upper,
            const torch::Tensor &       lower,
            const torch::Tensor &       image)
{
  std::ostringstream problem;
  if (!upper.defined() || !lower.defined() || !image.defined())
  {
    problem << "upper, lower and image must all be defined tensors";
  }
  else if (upper.dim() != 5 || lower.dim() != 5 || image.dim() != 5)
  {
    problem << "upper, lower and image must be [N, C, D, H, W]; got " << upper.sizes() << ", " << lower.sizes() << ", "
            << image.sizes();
  }
  else if (upper.size(1) != o.upper_channels() || lower.size(1) != o.lower_channels() ||
           image.size(1) != o.image_channels())
  {
    problem << "channels must be upper " << o.upper_channels() << ", lower " << o.lower_channels() << ", image "
            << o.image_channels() << "; got " << upper.size(1) << ", " << lower.size(1) << ", " << image.size(1);
  }
  else
  {
    for (int axis = 2; axis < 5; ++axis)
    {
      if (lower.size(axis) * o.scale_factor() != upper.size(axis))
      {
        problem << "the lower path " << lower.sizes() << " times scale factor " << o.scale_factor()
                << " must give the upper path's size " << upper.sizes();
        break;
      }
    }
  }
  if (!problem.str().empty())
  {
    throw std::invalid_argument("DivAttentionBlock: " + problem.str());
  }
}
} // namespace

std::string
ToString(SoftmaxAxis axis)
{
  return axis == SoftmaxAxis::Space ? "space" : "channel";
}

std::string
ToString(AbsolutePlacement placement)
{
  return placement == AbsolutePlacement::OfResidual ? "of-residual" : "of-softmax";
}

std::string
ToString(RefinedNormScale scale)
{
  return scale == RefinedNormScale::UniformAttention ? "uniform-attention" : "absolute";
}

RefinedNormScale
ParseRefinedNormScale(const std::string & text)
{
  if (text == "uniform-attention")
  {
    return RefinedNormScale::UniformAttention;
  }
  if (text == "absolute")
  {
    return RefinedNormScale::Absolute;
  }
  throw std::invalid_argument("refined norm scale must be 'uniform-attention' or 'absolute', got '" + text + "'");
}

SoftmaxAxis
ParseSoftmaxAxis(const std::string & text)
{
  if (text == "space")
  {
    return SoftmaxAxis::Space;
  }
  if (text == "channel")
  {
    return SoftmaxAxis::Channel;
  }
  throw std::invalid_argument("softmax axis must be 'space' or 'channel', got '" + text + "'");
}

AbsolutePlacement
ParseAbsolutePlacement(const std::string & text)
{
  if (text == "of-residual")
  {
    return AbsolutePlacement::OfResidual;
  }
  if (text == "of-softmax")
  {
    return AbsolutePlacement::OfSoftmax;
  }
  throw std::invalid_argument("absolute placement must be 'of-residual' or 'of-softmax', got '" + text + "'");
}

DivAttentionOptions
DivAttentionSwitch::BlockOptions(int64_t upperChannels,
                                 int64_t lowerChannels,
                                 int64_t imageChannels,
                                 int64_t predictionChannels) const
{
  return DivAttentionOptions(upperChannels, lowerChannels, imageChannels)
    .prediction_channels(predictionChannels)
    .softmax_axis(softmax_axis())
    .absolute_placement(absolute_placement())
    .normalize_refined(normalize_refined())
    .refined_norm_scale(refined_norm_scale())
    .fusion_kernel_size(fusion_kernel_size());
}

void
DivAttentionSwitch::WriteTo(Settings & settings) const
{
  settings["div_attention"] = ToSettingText(enabled());
  settings["div_attention.softmax_axis"] = ToString(softmax_axis());
  settings["div_attention.absolute_placement"] = ToString(absolute_placement());
  settings["div_attention.normalize_refined"] = ToSettingText(normalize_refined());
  settings["div_attention.refined_norm_scale"] = ToString(refined_norm_scale());
  settings["div_attention.fusion_kernel_size"] = ToSettingText(fusion_kernel_size());
}

DivAttentionSwitch
DivAttentionSwitch::ReadFrom(const Settings & settings)
{
  return DivAttentionSwitch()
    .enabled(SettingFlag(settings, "div_attention"))
    .softmax_axis(ParseSoftmaxAxis(SettingText(settings, "div_attention.softmax_axis")))
    .absolute_placement(ParseAbsolutePlacement(SettingText(settings, "div_attention.absolute_placement")))
    .normalize_refined(SettingFlag(settings, "div_attention.normalize_refined"))
    .refined_norm_scale(settings.count("div_attention.refined_norm_scale") != 0
                          ? ParseRefinedNormScale(SettingText(settings, "div_attention.refined_norm_scale"))
                          : RefinedNormScale::Absolute)
    .fusion_kernel_size(settings.count("div_attention.fusion_kernel_size") != 0
                          ? SettingInteger(settings, "div_attention.fusion_kernel_size")
                          : int64_t{ 3 });
}

DivAttentionBlockImpl::DivAttentionBlockImpl(const DivAttentionOptions & opts) : options(opts)
{
  if (options.upper_channels() <= 0 || options.lower_channels() <= 0 || options.image_channels() <= 0 ||
      options.scale_factor() <= 0 || options.prediction_channels() < 0)
  {
    throw std::invalid_argument("DivAttentionBlock: channel counts and scale factor must be positive");
  }
  if (options.fusion_kernel_size() <= 0 || options.fusion_kernel_size() % 2 == 0)
  {
    throw std::invalid_argument("DivAttentionBlock: fusion_kernel_size must be a positive odd number (1 or 3), got " +
                                std::to_string(options.fusion_kernel_size()));
  }
  const auto c = options.upper_channels();
  const auto s = options.scale_factor();
  upsample = register_module(
    "upsample",
    torch::nn::ConvTranspose3d(torch::nn::ConvTranspose3dOptions(options.lower_channels(), c, s).stride(s)));
  project = register_module("project", torch::nn::Conv3d(torch::nn::Conv3dOptions(c, c, 1)));
  image_conv = register_module("image_conv",
                               torch::nn::Conv3d(torch::nn::Conv3dOptions(options.image_channels(), c, 3).padding(1)));
  image_norm = register_module("image_norm", MakeInstanceNorm(c, true));
  if (options.normalize_refined())
  {
    refined_norm = register_module("refined_norm", MakeInstanceNorm(c, false));
  }
  const auto k = options.fusion_kernel_size();
  fuse_conv = register_module("fuse_conv", torch::nn::Conv3d(torch::nn::Conv3dOptions(c, c, k).padding(k / 2)));
  fuse_norm = register_module("fuse_norm", MakeInstanceNorm(c, true));
  if (options.prediction_channels() > 0)
  {
    head = register_module("head", torch::nn::Conv3d(torch::nn::Conv3dOptions(c, options.prediction_channels(), 1)));
  }
}

torch::Tensor
DivAttentionBlockImpl::Attention(const torch::Tensor & upperMask,
                                 const torch::Tensor & lowerMask,
                                 SoftmaxAxis           axis,
                                 AbsolutePlacement     placement)
{
  auto       residual = upperMask - lowerMask;
  const auto sizes = residual.sizes().vec(); // a copy: residual is reassigned below
  if (placement == AbsolutePlacement::OfResidual)
  {
    residual = residual.abs();
  }
  const int64_t voxels = sizes[2] * sizes[3] * sizes[4];
  torch::Tensor weights;
  if (axis == SoftmaxAxis::Space)
  {
    weights = torch::softmax(residual.flatten(2), 2).view(sizes);
  }
  else
  {
    weights = torch::softmax(residual, 1);
  }
  if (placement == AbsolutePlacement::OfSoftmax)
  {
    weights = weights.abs();
  }
  return weights / std::sqrt(static_cast<double>(voxels));
}

double
DivAttentionBlockImpl::RefinedNormFactor(const torch::Tensor & attention) const
{
  if (options.refined_norm_scale() == RefinedNormScale::Absolute)
  {
    return 1.0;
  }
  // A uniform map: 1 / (softmax axis length) / sqrt(D*H*W).
  const double voxels = static_cast<double>(attention.size(2) * attention.size(3) * attention.size(4));
  const double axisLength = options.softmax_axis() == SoftmaxAxis::Space ? voxels : double(attention.size(1));
  return axisLength * std::sqrt(voxels);
}

torch::Tensor
DivAttentionBlockImpl::AlignLowerPath(const torch::Tensor & lower)
{
  const auto & u = upsample->options;
  const auto * padding = detail::Alternative<torch::ExpandingArray<3>>(u.padding());
  const auto   composable = [&]
  {
    torch::NoGradGuard shapesOnly; // the kernel's shape rules, whatever autograd records
    return NonOverlappingTransposedConvolution3dApplies(lower, upsample->weight, upsample->bias, *u.stride(), **padding,
                                                        *u.output_padding(), *u.dilation(), u.groups());
  };
  if (GetCpuKernels() == CpuKernels::LibTorch || padding == nullptr || !upsample->bias.defined() ||
      !project->bias.defined() || !composable())
  {
    return Counted(project, Counted(upsample, lower));
  }
  // A 1x1x1 convolution after a kernel = stride transposed convolution is one such transposed convolution with the
  // composed weight W'[i, o, taps] = sum_c W_project[o, c] W_upsample[i, c, taps] and bias
  // W_project b_upsample + b_project: one pass over the upper path's size instead of two (float rounding apart). The
  // composition is differentiable: in training both layers' gradients flow through it (the same function, so the same
  // gradients to float rounding) and the 1x1x1 product and its gradients at the fine size are never computed.
  const auto mixing = project->weight.flatten(1); // [C, C]
  const auto weight =
    torch::einsum("ict,oc->iot", { upsample->weight.flatten(2), mixing }).reshape(upsample->weight.sizes());
  const auto bias = torch::mv(mixing, upsample->bias) + project->bias;
  CountTransposedConvolution(lower, weight);
  // The selection runs the same kernel, inside its autograd function when autograd records.
  return TransposedConvolution3d(lower, weight, bias, *u.stride(), **padding, *u.output_padding(), u.groups(),
                                 *u.dilation());
}

FusedJunctionParameters
DivAttentionBlockImpl::JunctionParameters(const torch::Tensor & upper, bool mapWanted) const
{
  FusedJunctionParameters p;
  p.imageNormWeight = image_norm->weight;
  p.imageNormBias = image_norm->bias;
  p.imageNormEps = image_norm->options.eps();
  p.placement = options.absolute_placement();
  p.normalizeRefined = static_cast<bool>(refined_norm);
  p.refinedEps = refined_norm ? refined_norm->options.eps() : 0.0;
  p.fuseWeight = fuse_conv->weight;
  p.fuseNormWeight = fuse_norm->weight;
  p.fuseNormBias = fuse_norm->bias;
  p.fuseNormEps = fuse_norm->options.eps();
  p.negativeSlope = kLeakySlope;
  p.refinedScale = RefinedNormFactor(upper);
  p.keepAttention = mapWanted;
  return p;
}

DivAttentionResult
DivAttentionBlockImpl::forward(const torch::Tensor & upper,
                               const torch::Tensor & lower,
                               const torch::Tensor & image,
                               bool                  mapWanted)
{
  CheckInputs(options, upper, lower, image);
  const auto lowerAligned = AlignLowerPath(lower);

  auto resized = image;
  if (image.sizes().slice(2) != upper.sizes().slice(2))
  {
    resized = F::interpolate(image, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>(upper.sizes().begin() + 2, upper.sizes().end()))
                                      .mode(torch::kTrilinear)
                                      .align_corners(false));
  }
  auto               convolved = Counted(image_conv, resized);
  DivAttentionResult result;
  const auto         junction = JunctionParameters(upper, mapWanted);
  if (GetCpuKernels() != CpuKernels::LibTorch && options.fusion_kernel_size() == 1 &&
      (!refined_norm || !refined_norm->options.affine()) && !image_norm->options.track_running_stats() &&
      !fuse_norm->options.track_running_stats() &&
      FusedDivAttentionJunctionApplies(upper, lowerAligned, convolved, options.softmax_axis(), junction))
  {
    // Inference on a CPU with the 1x1x1 fusion: from the image convolution's output to the module's output in three
    // passes over tiles that keep the fusion's input in cache (divaFusedDivAttention.h).
    auto fusedJunction = FusedDivAttentionJunction(upper, lowerAligned, convolved, junction);
    CountConvolution(fusedJunction.fused, fuse_conv->weight);
    result.attention = fusedJunction.attention;
    result.fused = fusedJunction.fused;
  }
  else
  {
    const auto    imageFeatures = InstanceNorm3d(image_norm, std::move(convolved), {}, kLeakySlope);
    torch::Tensor fusionInput; // O_i + O'_{i-1} + M_ref
    if (GetCpuKernels() != CpuKernels::LibTorch &&
        FusedDivAttentionTrainingApplies(upper, lowerAligned, imageFeatures, options.softmax_axis()) &&
        (!refined_norm || !refined_norm->options.affine()))
    {
      // On a CPU: eqs. 2-5, M_ref's norm and the sum in two passes (divaFusedDivAttention.h); in training an autograd
      // function with a three-pass backward.
      const bool normalize = static_cast<bool>(refined_norm);
      const auto eps = refined_norm ? refined_norm->options.eps() : 0.0;
      const auto placement = options.absolute_placement();
      const auto factor = RefinedNormFactor(upper);
      auto       fused =
        AutogradRecords(upper, lowerAligned, imageFeatures)
                ? FusedDivAttentionWithGradients(upper, lowerAligned, imageFeatures, placement, normalize, eps, factor)
                : FusedDivAttention(upper, lowerAligned, imageFeatures, placement, normalize, eps, factor);
      result.attention = fused.attention;
      fusionInput = fused.fusionInput;
    }
    else
    {
      result.attention = Attention(torch::sigmoid(upper), torch::sigmoid(lowerAligned), options.softmax_axis(),
                                   options.absolute_placement());
      auto refined = result.attention * imageFeatures;
      if (refined_norm)
      {
        const double factor = RefinedNormFactor(result.attention);
        refined = InstanceNorm3d(refined_norm, factor == 1.0 ? refined : refined * factor);
      }
      fusionInput = upper + lowerAligned + refined;
    }
    result.fused = InstanceNorm3d(fuse_norm, Counted(fuse_conv, fusionInput), {}, kLeakySlope);
  }
  if (head)
  {
    result.logits = Counted(head, result.fused);
  }
  return result;
}

} // namespace diva
