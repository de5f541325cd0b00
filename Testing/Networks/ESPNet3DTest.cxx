// 3D ESPNet: shapes at 96^3 and another size, with the module replacing the decoder's ESP blocks, gradients, overfit.
#include "divaESPNet3D.h"

#include "NetworkTestSupport.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace
{
using diva::ESPNet3D;
using diva::ESPNet3DOptions;

TEST(ESPNet3D, ShapesAt96AndAnotherSize)
{
  torch::manual_seed(15);
  torch::InferenceMode inference;
  const auto           device = diva::testing::TestDevice();
  ESPNet3D             baseline(ESPNet3DOptions::Preset("small"));
  baseline->to(device);
  baseline->eval();
  const auto plain = baseline->Segment(torch::randn({ 1, 1, 96, 96, 96 }).to(device));
  EXPECT_EQ(plain.logits.device(), device);
  EXPECT_EQ(plain.logits.sizes(), torch::IntArrayRef({ 1, 2, 96, 96, 96 }));
  EXPECT_TRUE(plain.intermediateLogits.empty());

  auto options = ESPNet3DOptions::Preset("small").in_channels(2).out_channels(1);
  options.div_attention().enabled(true);
  ESPNet3D withModule(options);
  withModule->to(device);
  withModule->eval();
  const auto result = withModule->Segment(torch::randn({ 2, 2, 40, 48, 32 }).to(device));
  EXPECT_EQ(result.logits.sizes(), torch::IntArrayRef({ 2, 1, 40, 48, 32 }));
  ASSERT_EQ(result.intermediateLogits.size(), 2U);
  EXPECT_EQ(result.intermediateLogits[0].sizes(), torch::IntArrayRef({ 2, 1, 20, 24, 16 }));
  EXPECT_EQ(result.intermediateLogits[1].sizes(), torch::IntArrayRef({ 2, 1, 10, 12, 8 }));
  EXPECT_THROW(withModule->Segment(torch::randn({ 1, 2, 36, 32, 32 }).to(device)), std::invalid_argument);
}

TEST(ESPNet3D, DivAttentionReplacesTheDecodersESPBlocks)
{
  auto options = ESPNet3DOptions::Preset("paper");
  options.div_attention().enabled(true);
  ESPNet3D   withModule(options);
  const auto parameters = withModule->named_parameters();
  EXPECT_EQ(parameters.find("merge_l2.c1.weight"), nullptr);
  EXPECT_EQ(parameters.find("dec_l1.d4.weight"), nullptr);
  ASSERT_NE(parameters.find("div_attention.1.fuse_conv.weight"), nullptr);
  // Replacing the ESP blocks, the modules' fusion convolution is the level's spatial one: 3^3 by default here.
  EXPECT_EQ(parameters["div_attention.1.fuse_conv.weight"].size(2), 3);
  ESPNet3D baseline(ESPNet3DOptions::Preset("paper"));
  EXPECT_NE(baseline->named_parameters().find("merge_l2.c1.weight"), nullptr);
  EXPECT_NE(baseline->named_parameters().find("level3.2.d4.weight"), nullptr); // three level-3 repeats
}

TEST(ESPNet3D, EveryParameterReceivesAGradient)
{
  for (const bool divAttention : { false, true })
  {
    torch::manual_seed(16);
    auto options = ESPNet3DOptions::Preset("small");
    options.div_attention().enabled(divAttention);
    ESPNet3D network(options);
    const auto [image, mask] = diva::testing::MakePhantom(32);
    const auto missing = diva::testing::ParametersWithoutGradient(*network, image, mask);
    EXPECT_TRUE(missing.empty()) << "div-attention " << divAttention << ": first " << missing.front();
  }
}

// Bound: 120 Adam steps (lr 3e-3) at 32^3.
TEST(ESPNet3D, SmallPresetWithDivAttentionOverfitsOnePhantom)
{
  torch::manual_seed(17);
  auto options = ESPNet3DOptions::Preset("small").out_channels(1);
  options.div_attention().enabled(true);
  ESPNet3D network(options);
  const auto [image, mask] = diva::testing::MakePhantom(32);
  const auto [steps, dice] = diva::testing::Overfit(*network, image, mask, 120, 3e-3);
  EXPECT_GT(dice, 0.9) << "after " << steps << " steps";
  std::cout << "ESPNet3D small + div-attention: Dice " << dice << " after " << steps << " steps\n";
}

TEST(ESPNet3D, SettingsRoundTrip)
{
  auto options = ESPNet3DOptions::Preset("small");
  options.div_attention().enabled(true);
  EXPECT_EQ(ESPNet3DOptions::FromSettings(options.ToSettings()).ToSettings(), options.ToSettings());
}

} // namespace
