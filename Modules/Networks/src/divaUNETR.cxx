#include "divaUNETR.h"

#include <stdexcept>

namespace diva
{
UNETROptions
UNETROptions::Preset(const std::string & name)
{
  if (name == "paper")
  {
    return UNETROptions();
  }
  if (name == "small")
  {
    // 8 decoder features: the 96^3 convolutions are most of a forward, and at 16 features UNETR + div-attention
    // alone took the whole `small` click budget of 0.7 s (723 ms; 274 ms at 8; Documentation/Performance.md).
    return UNETROptions().hidden_size(192).mlp_dim(768).num_heads(4).num_layers(4).feature_size(8);
  }
  throw std::invalid_argument("UNETR: unknown preset '" + name + "' (expected 'paper' or 'small')");
}

Settings
UNETROptions::ToSettings() const
{
  Settings s;
  s["architecture"] = "UNETR";
  s["in_channels"] = ToSettingText(in_channels());
  s["out_channels"] = ToSettingText(out_channels());
  s["image_size"] = ToSettingText(image_size());
  s["patch_size"] = ToSettingText(patch_size());
  s["feature_size"] = ToSettingText(feature_size());
  s["hidden_size"] = ToSettingText(hidden_size());
  s["mlp_dim"] = ToSettingText(mlp_dim());
  s["num_heads"] = ToSettingText(num_heads());
  s["num_layers"] = ToSettingText(num_layers());
  s["dropout_rate"] = ToSettingText(dropout_rate());
  s["qkv_bias"] = ToSettingText(qkv_bias());
  s["skip_taps"] = skip_taps();
  div_attention().WriteTo(s);
  return s;
}

UNETROptions
UNETROptions::FromSettings(const Settings & s)
{
  if (SettingText(s, "architecture") != "UNETR")
  {
    throw std::invalid_argument("UNETR: settings describe architecture '" + SettingText(s, "architecture") + "'");
  }
  return UNETROptions()
    .in_channels(SettingInteger(s, "in_channels"))
    .out_channels(SettingInteger(s, "out_channels"))
    .image_size(SettingInteger(s, "image_size"))
    .patch_size(SettingInteger(s, "patch_size"))
    .feature_size(SettingInteger(s, "feature_size"))
    .hidden_size(SettingInteger(s, "hidden_size"))
    .mlp_dim(SettingInteger(s, "mlp_dim"))
    .num_heads(SettingInteger(s, "num_heads"))
    .num_layers(SettingInteger(s, "num_layers"))
    .dropout_rate(SettingReal(s, "dropout_rate"))
    .qkv_bias(SettingFlag(s, "qkv_bias"))
    .div_attention(DivAttentionSwitch::ReadFrom(s))
    // Files written before the taps were fixed to MONAI's rule say nothing about them: they were trained with "early".
    .skip_taps(s.count("skip_taps") != 0 ? SettingText(s, "skip_taps") : std::string("early"));
}

std::array<int64_t, 3>
UnetrSkipTaps(int64_t numLayers, const std::string & rule)
{
  if (numLayers < 4 || numLayers % 4 != 0)
  {
    throw std::invalid_argument("UNETR: num_layers must be a positive multiple of 4, got " + std::to_string(numLayers));
  }
  const int64_t quarter = numLayers / 4;
  if (rule == "monai")
  {
    return { quarter, 2 * quarter, 3 * quarter };
  }
  if (rule == "early")
  {
    return { quarter - 1, 2 * quarter - 1, 3 * quarter - 1 };
  }
  throw std::invalid_argument("UNETR: unknown skip_taps '" + rule + "' (expected 'monai' or 'early')");
}

UNETRImpl::UNETRImpl(const UNETROptions & opts) : options(opts)
{
  const auto & o = options;
  if (o.in_channels() <= 0 || o.out_channels() <= 0 || o.feature_size() <= 0)
  {
    throw std::invalid_argument("UNETR: in_channels, out_channels and feature_size must be positive");
  }
  UnetrSkipTaps(o.num_layers(), o.skip_taps()); // refuses a bad depth or rule before anything is built
  // The decoder climbs 4 factor-2 steps from the token grid back to the image: the patch must be 16.
  if (o.patch_size() != 16)
  {
    throw std::invalid_argument("UNETR: patch_size must be 16 (four factor-2 decoder steps), got " +
                                std::to_string(o.patch_size()));
  }
  vit = register_module("vit", VisionTransformer(VisionTransformerOptions()
                                                   .in_channels(o.in_channels())
                                                   .image_size(o.image_size())
                                                   .patch_size(o.patch_size())
                                                   .hidden_size(o.hidden_size())
                                                   .mlp_dim(o.mlp_dim())
                                                   .num_layers(o.num_layers())
                                                   .num_heads(o.num_heads())
                                                   .dropout_rate(o.dropout_rate())
                                                   .qkv_bias(o.qkv_bias())));
  const int64_t f = o.feature_size();
  const int64_t h = o.hidden_size();
  encoder1 = register_module("encoder1", UnetrBasicBlock(o.in_channels(), f, 3));
  encoder2 = register_module("encoder2", UnetrPrUpBlock(h, 2 * f, 2, 3, 2));
  encoder3 = register_module("encoder3", UnetrPrUpBlock(h, 4 * f, 1, 3, 2));
  encoder4 = register_module("encoder4", UnetrPrUpBlock(h, 8 * f, 0, 3, 2));
  decoder5 = register_module("decoder5", UnetrUpBlock(h, 8 * f, 3, 2));
  decoder4 = register_module("decoder4", UnetrUpBlock(8 * f, 4 * f, 3, 2));
  decoder3 = register_module("decoder3", UnetrUpBlock(4 * f, 2 * f, 3, 2));
  decoder2 = register_module("decoder2", UnetrUpBlock(2 * f, f, 3, 2));
  out = register_module("out", UnetOutBlock(f, o.out_channels()));
  if (o.div_attention().enabled())
  {
    const auto & sw = o.div_attention();
    div_attention = register_module("div_attention", torch::nn::ModuleList());
    div_attention->push_back(DivAttentionBlock(sw.BlockOptions(f, 2 * f, o.in_channels(), 0)));
    div_attention->push_back(DivAttentionBlock(sw.BlockOptions(2 * f, 4 * f, o.in_channels(), o.out_channels())));
    div_attention->push_back(DivAttentionBlock(sw.BlockOptions(4 * f, 8 * f, o.in_channels(), o.out_channels())));
  }
}

torch::Tensor
UNETRImpl::TokensToVolume(const torch::Tensor & tokens) const
{
  const int64_t side = options.image_size() / options.patch_size();
  return tokens.view({ tokens.size(0), side, side, side, options.hidden_size() })
    .permute({ 0, 4, 1, 2, 3 })
    .contiguous();
}

SegmentationOutput
UNETRImpl::Segment(const torch::Tensor & image, const SegmentationRequest & request)
{
  CheckImageShape(image, options.in_channels(), options.patch_size(), "UNETR");
  if (image.size(2) != options.image_size() || image.size(3) != options.image_size() ||
      image.size(4) != options.image_size())
  {
    throw std::invalid_argument("UNETR: the input " + std::to_string(image.size(2)) + "x" +
                                std::to_string(image.size(3)) + "x" + std::to_string(image.size(4)) +
                                " differs from the image size it was built for (" +
                                std::to_string(options.image_size()) + " per side)");
  }
  const auto [tokens, hiddenStates] = vit(image);
  const auto taps = UnetrSkipTaps(options.num_layers(), options.skip_taps());
  const auto enc1 = encoder1(image);
  const auto enc2 = encoder2(TokensToVolume(hiddenStates.at(static_cast<std::size_t>(taps[0]))));
  const auto enc3 = encoder3(TokensToVolume(hiddenStates.at(static_cast<std::size_t>(taps[1]))));
  const auto enc4 = encoder4(TokensToVolume(hiddenStates.at(static_cast<std::size_t>(taps[2]))));

  SegmentationOutput result;
  auto               dec3 = decoder5(TokensToVolume(tokens), enc4);
  auto               dec2 = decoder4(dec3, enc3);
  if (div_attention)
  {
    auto r = div_attention[2]->as<DivAttentionBlockImpl>()->forward(dec2, dec3, image, request.attentionMaps);
    dec2 = r.fused;
    result.intermediateLogits.insert(result.intermediateLogits.begin(), r.logits);
    if (request.attentionMaps)
    {
      result.attentionMaps.insert(result.attentionMaps.begin(), r.attention);
    }
  }
  auto dec1 = decoder3(dec2, enc2);
  if (div_attention)
  {
    auto r = div_attention[1]->as<DivAttentionBlockImpl>()->forward(dec1, dec2, image, request.attentionMaps);
    dec1 = r.fused;
    result.intermediateLogits.insert(result.intermediateLogits.begin(), r.logits);
    if (request.attentionMaps)
    {
      result.attentionMaps.insert(result.attentionMaps.begin(), r.attention);
    }
  }
  auto top = decoder2(dec1, enc1);
  if (div_attention)
  {
    auto r = div_attention[0]->as<DivAttentionBlockImpl>()->forward(top, dec1, image, request.attentionMaps);
    top = r.fused;
    if (request.attentionMaps)
    {
      result.attentionMaps.insert(result.attentionMaps.begin(), r.attention);
    }
  }
  result.logits = out(top);
  return result;
}

torch::Tensor
UNETRImpl::forward(const torch::Tensor & image)
{
  return Segment(image, SegmentationRequest{ false }).logits; // the logits only: no attention maps
}

Settings
UNETRImpl::GetSettings() const
{
  return options.ToSettings();
}

int64_t
UNETRImpl::GetInputChannels() const
{
  return options.in_channels();
}

int64_t
UNETRImpl::GetOutputChannels() const
{
  return options.out_channels();
}

int64_t
UNETRImpl::GetSizeDivisor() const
{
  return options.patch_size();
}

} // namespace diva
