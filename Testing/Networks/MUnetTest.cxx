// mUnet: nnU-Net's names and feature plan, shapes with and without div-attention, gradients, overfitting.
#include "divaMUnet.h"

#include "NetworkTestSupport.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace
{
using diva::MUnet;
using diva::MUnetOptions;

TEST(MUnet, PaperPresetFollowsNnUNetsPlan)
{
  const auto options = MUnetOptions::Preset("paper");
  EXPECT_EQ(options.FeaturesPerStage(), (std::vector<int64_t>{ 32, 64, 128, 256, 320, 320 }));
  MUnet      network(options);
  const auto parameters = network->named_parameters();
  for (const char * key : { "encoder.stages.0.0.convs.0.conv.weight", "encoder.stages.0.0.convs.0.conv.bias",
                            "encoder.stages.5.0.convs.1.norm.weight", "decoder.transpconvs.0.weight",
                            "decoder.stages.4.convs.1.conv.weight", "decoder.seg_layers.4.bias" })
  {
    EXPECT_NE(parameters.find(key), nullptr) << key;
  }
  // Hand count: encoder 14,025,984; decoder 17,170,474 (stages, transposed convs, heads), for 2 inputs, 2 outputs.
  EXPECT_EQ(diva::CountParameters(*network), 31196458);
}

TEST(MUnet, ShapesAt96AndAnotherSize)
{
  torch::manual_seed(9);
  torch::InferenceMode inference;
  const auto           device = diva::testing::TestDevice();
  MUnet                network(MUnetOptions::Preset("small").deep_supervision(true));
  network->to(device);
  const auto result = network->Segment(torch::randn({ 1, 2, 96, 96, 96 }).to(device));
  EXPECT_EQ(result.logits.device(), device);
  EXPECT_EQ(result.logits.sizes(), torch::IntArrayRef({ 1, 2, 96, 96, 96 }));
  ASSERT_EQ(result.intermediateLogits.size(), 2U); // decoder stages 2 and 1 (48^3, 24^3); the coarsest unsupervised
  EXPECT_EQ(result.intermediateLogits[0].sizes(), torch::IntArrayRef({ 1, 2, 48, 48, 48 }));
  EXPECT_EQ(result.intermediateLogits[1].sizes(), torch::IntArrayRef({ 1, 2, 24, 24, 24 }));

  auto options = MUnetOptions::Preset("small").out_channels(1);
  options.div_attention().enabled(true);
  MUnet withModule(options);
  withModule->to(device);
  const auto other = withModule->Segment(torch::randn({ 2, 2, 32, 48, 64 }).to(device));
  EXPECT_EQ(other.logits.sizes(), torch::IntArrayRef({ 2, 1, 32, 48, 64 }));
  EXPECT_TRUE(other.intermediateLogits.empty()); // deep supervision off
  ASSERT_EQ(other.attentionMaps.size(), 3U);
  EXPECT_EQ(other.attentionMaps[0].sizes(), torch::IntArrayRef({ 2, 16, 32, 48, 64 }));
  EXPECT_THROW(withModule->Segment(torch::randn({ 1, 2, 40, 32, 32 }).to(device)), std::invalid_argument);
}

// Without the maps (forward(), or a request without them) the modules skip writing them; the logits are the same
// bits, because the maps are never an input of the output.
TEST(MUnet, LogitsWithoutAttentionMapsAreTheSameBits)
{
  torch::manual_seed(12);
  torch::InferenceMode inference;
  auto                 options = MUnetOptions::Preset("small");
  options.div_attention().enabled(true);
  MUnet      network(options);
  const auto image = torch::randn({ 1, 2, 32, 32, 32 });
  const auto all = network->Segment(image);
  const auto logitsOnly = network->Segment(image, diva::SegmentationRequest{ false });
  ASSERT_EQ(all.attentionMaps.size(), 3U);
  EXPECT_TRUE(logitsOnly.attentionMaps.empty());
  EXPECT_TRUE(torch::equal(all.logits, logitsOnly.logits));
  EXPECT_TRUE(torch::equal(all.logits, network->forward(image)));
}

TEST(MUnet, EveryParameterReceivesAGradient)
{
  for (const bool divAttention : { false, true })
  {
    torch::manual_seed(10);
    auto options = MUnetOptions::Preset("small").deep_supervision(true);
    options.div_attention().enabled(divAttention);
    MUnet network(options);
    const auto [image, mask] = diva::testing::MakePhantom(32, 2);
    auto missing = diva::testing::ParametersWithoutGradient(*network, image, mask);
    // The coarsest decoder stage's head is built for nnU-Net weight exchange but never supervised (MUnetImpl).
    const std::vector<std::string> unused{ "decoder.seg_layers.0.weight", "decoder.seg_layers.0.bias" };
    EXPECT_EQ(missing, unused) << "div-attention " << divAttention;
  }
}

// Bound: 100 Adam steps (lr 3e-3) at 32^3 on 2 threads.
TEST(MUnet, SmallPresetWithDivAttentionOverfitsOnePhantom)
{
  torch::manual_seed(11);
  auto options = MUnetOptions::Preset("small").out_channels(1).deep_supervision(true);
  options.div_attention().enabled(true);
  MUnet network(options);
  const auto [image, mask] = diva::testing::MakePhantom(32, 2);
  const auto [steps, dice] = diva::testing::Overfit(*network, image, mask, 100, 3e-3);
  EXPECT_GT(dice, 0.9) << "after " << steps << " steps";
  std::cout << "mUnet small + div-attention: Dice " << dice << " after " << steps << " steps\n";
}

TEST(MUnet, SettingsRoundTrip)
{
  auto options = MUnetOptions::Preset("small");
  options.div_attention().enabled(true);
  EXPECT_EQ(MUnetOptions::FromSettings(options.ToSettings()).ToSettings(), options.ToSettings());
  EXPECT_THROW(MUnetOptions::Preset("tiny"), std::invalid_argument);
}

} // namespace
