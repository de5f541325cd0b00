#include "divaESPNet3D.h"

#include "divaCountedLayers.h"

#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>

#include <array>
#include <stdexcept>

namespace diva
{
namespace F = torch::nn::functional;

namespace
{
constexpr std::array<double, 4> PyramidScales{ { 0.2, 0.4, 0.6, 0.8 } };

torch::nn::BatchNorm3d
MakeBatchNorm(int64_t channels)
{
  return torch::nn::BatchNorm3d(torch::nn::BatchNorm3dOptions(channels).eps(1e-3));
}

torch::nn::Conv3d
MakeConv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation = 1, bool bias = false)
{
  return torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, kernel)
                             .stride(stride)
                             .padding(dilation * (kernel - 1) / 2)
                             .dilation(dilation)
                             .bias(bias));
}

std::vector<int64_t>
SpatialSize(const torch::Tensor & x)
{
  return std::vector<int64_t>(x.sizes().begin() + 2, x.sizes().end());
}
} // namespace

ESPNet3DOptions
ESPNet3DOptions::Preset(const std::string & name)
{
  if (name == "paper")
  {
    return ESPNet3DOptions();
  }
  if (name == "small")
  {
    return ESPNet3DOptions()
      .level0_features(8)
      .level1_features(16)
      .level2_features(32)
      .level3_features(64)
      .level2_repeats(1)
      .level3_repeats(1);
  }
  throw std::invalid_argument("ESPNet3D: unknown preset '" + name + "' (expected 'paper' or 'small')");
}

Settings
ESPNet3DOptions::ToSettings() const
{
  Settings s;
  s["architecture"] = "ESPNet3D";
  s["in_channels"] = ToSettingText(in_channels());
  s["out_channels"] = ToSettingText(out_channels());
  s["level0_features"] = ToSettingText(level0_features());
  s["level1_features"] = ToSettingText(level1_features());
  s["level2_features"] = ToSettingText(level2_features());
  s["level3_features"] = ToSettingText(level3_features());
  s["level2_repeats"] = ToSettingText(level2_repeats());
  s["level3_repeats"] = ToSettingText(level3_repeats());
  div_attention().WriteTo(s);
  return s;
}

ESPNet3DOptions
ESPNet3DOptions::FromSettings(const Settings & s)
{
  if (SettingText(s, "architecture") != "ESPNet3D")
  {
    throw std::invalid_argument("ESPNet3D: settings describe architecture '" + SettingText(s, "architecture") + "'");
  }
  return ESPNet3DOptions()
    .in_channels(SettingInteger(s, "in_channels"))
    .out_channels(SettingInteger(s, "out_channels"))
    .level0_features(SettingInteger(s, "level0_features"))
    .level1_features(SettingInteger(s, "level1_features"))
    .level2_features(SettingInteger(s, "level2_features"))
    .level3_features(SettingInteger(s, "level3_features"))
    .level2_repeats(SettingInteger(s, "level2_repeats"))
    .level3_repeats(SettingInteger(s, "level3_repeats"))
    .div_attention(DivAttentionSwitch::ReadFrom(s));
}

CBRImpl::CBRImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride)
{
  conv = register_module("conv", MakeConv(in, out, kernel, stride));
  bn = register_module("bn", MakeBatchNorm(out));
  act = register_module("act", torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(out)));
}

torch::Tensor
CBRImpl::forward(const torch::Tensor & x)
{
  return act(bn(Counted(conv, x)));
}

ESPBlockImpl::ESPBlockImpl(int64_t in, int64_t out, int64_t stride)
{
  if (out < 4)
  {
    throw std::invalid_argument("ESPBlock: needs at least 4 output channels, got " + std::to_string(out));
  }
  const int64_t n = out / 4;
  const int64_t first = out - 3 * n; // the first branch takes the remainder so the concatenation has `out` channels
  c1 = register_module("c1", stride == 1 ? MakeConv(in, n, 1, 1) : MakeConv(in, n, 3, stride));
  d1 = register_module("d1", MakeConv(n, first, 3, 1, 1));
  d2 = register_module("d2", MakeConv(n, n, 3, 1, 1));
  d3 = register_module("d3", MakeConv(n, n, 3, 1, 2));
  d4 = register_module("d4", MakeConv(n, n, 3, 1, 2));
  bn = register_module("bn", MakeBatchNorm(out));
  act = register_module("act", torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(out)));
  residual = in == out && stride == 1;
}

torch::Tensor
ESPBlockImpl::forward(const torch::Tensor & x)
{
  const auto reduced = Counted(c1, x);
  const auto b1 = Counted(d1, reduced);
  const auto b2 = Counted(d2, reduced);
  // Hierarchical feature fusion: each larger dilation adds the smaller ones' output (removes gridding artefacts).
  const auto b3 = Counted(d3, reduced) + b2;
  const auto b4 = Counted(d4, reduced) + b3;
  auto       combined = torch::cat({ b1, b2, b3, b4 }, 1);
  if (residual)
  {
    combined = combined + x;
  }
  return act(bn(combined));
}

UpSamplerImpl::UpSamplerImpl(int64_t in, int64_t out)
{
  deconv = register_module(
    "deconv", torch::nn::ConvTranspose3d(torch::nn::ConvTranspose3dOptions(in, out, 2).stride(2).bias(false)));
  bn = register_module("bn", MakeBatchNorm(out));
  act = register_module("act", torch::nn::PReLU(torch::nn::PReLUOptions().num_parameters(out)));
}

torch::Tensor
UpSamplerImpl::forward(const torch::Tensor & x)
{
  return act(bn(Counted(deconv, x)));
}

ESPNet3DImpl::ESPNet3DImpl(const ESPNet3DOptions & opts) : options(opts)
{
  const auto & o = options;
  const auto   f0 = o.level0_features();
  const auto   f1 = o.level1_features();
  const auto   f2 = o.level2_features();
  const auto   f3 = o.level3_features();
  if (o.in_channels() <= 0 || o.out_channels() <= 0 || f0 < 4 || f1 < 4 || f2 < 4 || f3 < 4)
  {
    throw std::invalid_argument("ESPNet3D: channel counts must be positive and level widths at least 4");
  }
  level0 = register_module("level0", CBR(o.in_channels(), f0, 3, 2));
  level1 = register_module("level1", torch::nn::ModuleList(ESPBlock(f0, f1), ESPBlock(f1, f1)));
  level2_0 = register_module("level2_0", ESPBlock(f1, f2, 2));
  level2 = register_module("level2", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.level2_repeats(); ++i)
  {
    level2->push_back(ESPBlock(f2, f2));
  }
  level3_0 = register_module("level3_0", ESPBlock(f2, f3, 2));
  level3 = register_module("level3", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.level3_repeats(); ++i)
  {
    level3->push_back(ESPBlock(f3, f3));
  }
  if (o.div_attention().enabled())
  {
    div_attention = register_module("div_attention", torch::nn::ModuleList());
    div_attention->push_back(
      DivAttentionBlock(o.div_attention().BlockOptions(f1, f2, o.in_channels(), o.out_channels())));
    div_attention->push_back(
      DivAttentionBlock(o.div_attention().BlockOptions(f2, f3, o.in_channels(), o.out_channels())));
  }
  else
  {
    up_l3_l2 = register_module("up_l3_l2", UpSampler(f3, f2));
    merge_l2 = register_module("merge_l2", ESPBlock(2 * f2, f2));
    dec_l2 = register_module("dec_l2", ESPBlock(f2, f1));
    up_l2_l1 = register_module("up_l2_l1", UpSampler(f1, f1));
    merge_l1 = register_module("merge_l1", ESPBlock(2 * f1, f1));
    dec_l1 = register_module("dec_l1", ESPBlock(f1, f1));
  }
  up_l1_l0 = register_module("up_l1_l0", UpSampler(f1, f0));
  psp_modules = register_module("psp_modules", torch::nn::ModuleList());
  for (std::size_t i = 0; i < PyramidScales.size(); ++i)
  {
    psp_modules->push_back(CBR(f0, f0, 3));
  }
  refine = register_module("refine", CBR(f0 * static_cast<int64_t>(PyramidScales.size() + 1) + o.in_channels(), f0, 3));
  classifier = register_module("classifier", MakeConv(f0, o.out_channels(), 1, 1, 1, true));
}

SegmentationOutput
ESPNet3DImpl::Segment(const torch::Tensor & image, const SegmentationRequest & request)
{
  CheckImageShape(image, options.in_channels(), GetSizeDivisor(), "ESPNet3D");
  auto l1 = level0(image);
  for (const auto & block : *level1)
  {
    l1 = block->as<ESPBlockImpl>()->forward(l1);
  }
  auto l2 = level2_0(l1);
  for (const auto & block : *level2)
  {
    l2 = block->as<ESPBlockImpl>()->forward(l2);
  }
  auto l3 = level3_0(l2);
  for (const auto & block : *level3)
  {
    l3 = block->as<ESPBlockImpl>()->forward(l3);
  }

  SegmentationOutput result;
  torch::Tensor      decoded;
  if (div_attention)
  {
    const auto coarse = div_attention[1]->as<DivAttentionBlockImpl>()->forward(l2, l3, image, request.attentionMaps);
    const auto fine =
      div_attention[0]->as<DivAttentionBlockImpl>()->forward(l1, coarse.fused, image, request.attentionMaps);
    result.intermediateLogits = { fine.logits, coarse.logits };
    if (request.attentionMaps)
    {
      result.attentionMaps = { fine.attention, coarse.attention };
    }
    decoded = fine.fused;
  }
  else
  {
    const auto d2 = dec_l2(merge_l2(torch::cat({ up_l3_l2(l3), l2 }, 1)));
    decoded = dec_l1(merge_l1(torch::cat({ up_l2_l1(d2), l1 }, 1)));
  }

  // Pyramidal refinement at full size.
  const auto                 full = up_l1_l0(decoded);
  const auto                 fullSize = SpatialSize(full);
  std::vector<torch::Tensor> pyramid{ full };
  for (std::size_t i = 0; i < PyramidScales.size(); ++i)
  {
    std::vector<int64_t> pooledSize;
    for (const auto side : fullSize)
    {
      pooledSize.push_back(std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(side) * PyramidScales[i])));
    }
    auto level = F::adaptive_avg_pool3d(full, F::AdaptiveAvgPool3dFuncOptions(pooledSize));
    level = psp_modules[i]->as<CBRImpl>()->forward(level);
    pyramid.push_back(
      F::interpolate(level, F::InterpolateFuncOptions().size(fullSize).mode(torch::kTrilinear).align_corners(false)));
  }
  pyramid.push_back(image);
  result.logits = Counted(classifier, refine(torch::cat(pyramid, 1)));
  return result;
}

torch::Tensor
ESPNet3DImpl::forward(const torch::Tensor & image)
{
  return Segment(image, SegmentationRequest{ false }).logits; // the logits only: no attention maps
}

Settings
ESPNet3DImpl::GetSettings() const
{
  return options.ToSettings();
}

int64_t
ESPNet3DImpl::GetInputChannels() const
{
  return options.in_channels();
}

int64_t
ESPNet3DImpl::GetOutputChannels() const
{
  return options.out_channels();
}

int64_t
ESPNet3DImpl::GetSizeDivisor() const
{
  return 8;
}

} // namespace diva
