#include "divaMUnet.h"

#include "divaCountedLayers.h"

#include <torch/nn/functional/activation.h>

#include <algorithm>
#include <stdexcept>

namespace diva
{
namespace F = torch::nn::functional;

MUnetOptions
MUnetOptions::Preset(const std::string & name)
{
  if (name == "paper")
  {
    return MUnetOptions();
  }
  if (name == "small")
  {
    return MUnetOptions().num_stages(5).base_features(16).max_features(128);
  }
  throw std::invalid_argument("mUnet: unknown preset '" + name + "' (expected 'paper' or 'small')");
}

std::vector<int64_t>
MUnetOptions::FeaturesPerStage() const
{
  std::vector<int64_t> features;
  int64_t              f = base_features();
  for (int64_t stage = 0; stage < num_stages(); ++stage)
  {
    features.push_back(std::min(f, max_features()));
    f *= 2;
  }
  return features;
}

Settings
MUnetOptions::ToSettings() const
{
  Settings s;
  s["architecture"] = "mUnet";
  s["in_channels"] = ToSettingText(in_channels());
  s["out_channels"] = ToSettingText(out_channels());
  s["num_stages"] = ToSettingText(num_stages());
  s["base_features"] = ToSettingText(base_features());
  s["max_features"] = ToSettingText(max_features());
  s["deep_supervision"] = ToSettingText(deep_supervision());
  div_attention().WriteTo(s);
  return s;
}

MUnetOptions
MUnetOptions::FromSettings(const Settings & s)
{
  if (SettingText(s, "architecture") != "mUnet")
  {
    throw std::invalid_argument("mUnet: settings describe architecture '" + SettingText(s, "architecture") + "'");
  }
  return MUnetOptions()
    .in_channels(SettingInteger(s, "in_channels"))
    .out_channels(SettingInteger(s, "out_channels"))
    .num_stages(SettingInteger(s, "num_stages"))
    .base_features(SettingInteger(s, "base_features"))
    .max_features(SettingInteger(s, "max_features"))
    .deep_supervision(SettingFlag(s, "deep_supervision"))
    .div_attention(DivAttentionSwitch::ReadFrom(s));
}

ConvNormReLUImpl::ConvNormReLUImpl(int64_t in, int64_t out, int64_t stride)
{
  conv = register_module("conv", torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, 3).stride(stride).padding(1)));
  norm =
    register_module("norm", torch::nn::InstanceNorm3d(torch::nn::InstanceNorm3dOptions(out).eps(1e-5).affine(true)));
}

torch::Tensor
ConvNormReLUImpl::forward(const torch::Tensor & x)
{
  return InstanceNorm3d(norm, Counted(conv, x), {}, 0.01); // fused for inference (divaCpuKernelSelection.h)
}

StackedConvBlocksImpl::StackedConvBlocksImpl(int64_t in, int64_t out, int64_t firstStride)
{
  convs =
    register_module("convs", torch::nn::Sequential(ConvNormReLU(in, out, firstStride), ConvNormReLU(out, out, 1)));
}

torch::Tensor
StackedConvBlocksImpl::forward(const torch::Tensor & x)
{
  return convs->forward(x);
}

PlainConvEncoderImpl::PlainConvEncoderImpl(int64_t inChannels, const std::vector<int64_t> & features)
{
  stages = register_module("stages", torch::nn::ModuleList());
  int64_t in = inChannels;
  for (std::size_t stage = 0; stage < features.size(); ++stage)
  {
    stages->push_back(torch::nn::Sequential(StackedConvBlocks(in, features[stage], stage == 0 ? 1 : 2)));
    in = features[stage];
  }
}

std::vector<torch::Tensor>
PlainConvEncoderImpl::forward(const torch::Tensor & x)
{
  std::vector<torch::Tensor> outputs;
  auto                       y = x;
  for (const auto & stage : *stages)
  {
    y = stage->as<torch::nn::SequentialImpl>()->forward(y);
    outputs.push_back(y);
  }
  return outputs;
}

UNetDecoderImpl::UNetDecoderImpl(const std::vector<int64_t> & features, int64_t outChannels)
{
  stages = register_module("stages", torch::nn::ModuleList());
  transpconvs = register_module("transpconvs", torch::nn::ModuleList());
  seg_layers = register_module("seg_layers", torch::nn::ModuleList());
  const auto levels = static_cast<int64_t>(features.size());
  for (int64_t s = 0; s < levels - 1; ++s)
  {
    const int64_t below = features[levels - 1 - s];
    const int64_t skip = features[levels - 2 - s];
    transpconvs->push_back(torch::nn::ConvTranspose3d(torch::nn::ConvTranspose3dOptions(below, skip, 2).stride(2)));
    stages->push_back(StackedConvBlocks(2 * skip, skip, 1));
    seg_layers->push_back(torch::nn::Conv3d(torch::nn::Conv3dOptions(skip, outChannels, 1)));
  }
}

MUnetImpl::MUnetImpl(const MUnetOptions & opts) : options(opts)
{
  if (options.num_stages() < 2 || options.base_features() <= 0 || options.max_features() <= 0 ||
      options.in_channels() <= 0 || options.out_channels() <= 0)
  {
    throw std::invalid_argument("mUnet: needs num_stages >= 2 and positive channel counts");
  }
  const auto features = options.FeaturesPerStage();
  encoder = register_module("encoder", PlainConvEncoder(options.in_channels(), features));
  decoder = register_module("decoder", UNetDecoder(features, options.out_channels()));
  if (options.div_attention().enabled())
  {
    div_attention = register_module("div_attention", torch::nn::ModuleList());
    const auto levels = static_cast<int64_t>(features.size());
    for (int64_t s = 1; s < levels - 1; ++s)
    {
      div_attention->push_back(DivAttentionBlock(options.div_attention().BlockOptions(
        features[levels - 2 - s], features[levels - 1 - s], options.in_channels(), 0)));
    }
  }
}

SegmentationOutput
MUnetImpl::Segment(const torch::Tensor & image, const SegmentationRequest & request)
{
  CheckImageShape(image, options.in_channels(), GetSizeDivisor(), "mUnet");
  const auto         skips = encoder(image);
  const auto         decoderStages = static_cast<std::size_t>(decoder->stages->size());
  auto               x = skips.back();
  SegmentationOutput result;
  for (std::size_t s = 0; s < decoderStages; ++s)
  {
    const auto lower = x;
    x = Counted(torch::nn::ConvTranspose3d(decoder->transpconvs->ptr<torch::nn::ConvTranspose3dImpl>(s)), lower);
    x = decoder->stages[s]->as<StackedConvBlocksImpl>()->forward(torch::cat({ x, skips[skips.size() - 2 - s] }, 1));
    if (div_attention && s >= 1)
    {
      auto r = div_attention[s - 1]->as<DivAttentionBlockImpl>()->forward(x, lower, image, request.attentionMaps);
      x = r.fused;
      if (request.attentionMaps)
      {
        result.attentionMaps.insert(result.attentionMaps.begin(), r.attention);
      }
    }
    const bool last = s + 1 == decoderStages;
    if (last || (s >= 1 && options.deep_supervision()))
    {
      auto logits = Counted(torch::nn::Conv3d(decoder->seg_layers->ptr<torch::nn::Conv3dImpl>(s)), x);
      if (last)
      {
        result.logits = logits;
      }
      else
      {
        result.intermediateLogits.insert(result.intermediateLogits.begin(), logits);
      }
    }
  }
  return result;
}

torch::Tensor
MUnetImpl::forward(const torch::Tensor & image)
{
  return Segment(image, SegmentationRequest{ false }).logits; // the logits only: no attention maps
}

Settings
MUnetImpl::GetSettings() const
{
  return options.ToSettings();
}

int64_t
MUnetImpl::GetInputChannels() const
{
  return options.in_channels();
}

int64_t
MUnetImpl::GetOutputChannels() const
{
  return options.out_channels();
}

int64_t
MUnetImpl::GetSizeDivisor() const
{
  return int64_t{ 1 } << (options.num_stages() - 1);
}

} // namespace diva
