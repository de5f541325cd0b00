// UNETR: MONAI's parameter count and state-dict names, shapes with and without div-attention, gradients, overfitting.
#include "divaUNETR.h"
#include "divaWeightInitialization.h"

#include "NetworkTestSupport.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace
{
using diva::UNETR;
using diva::UNETROptions;

// Hand count from MONAI's unetr.py / vit.py / dynunet_block.py (ViT 88,340,736 + decoder 4,443,106): 92.78 M.
TEST(UNETR, PaperPresetHasMonaisParameterCount)
{
  UNETR oneInput(UNETROptions::Preset("paper"));
  EXPECT_EQ(diva::CountParameters(*oneInput), 92783842);
  UNETR twoInputs(UNETROptions::Preset("paper").in_channels(2));
  EXPECT_EQ(diva::CountParameters(*twoInputs), 95930018);
}

TEST(UNETR, StateDictKeysAreMonais)
{
  UNETR      network(UNETROptions::Preset("small"));
  const auto parameters = network->named_parameters();
  for (const char * key :
       { "vit.patch_embedding.position_embeddings", "vit.patch_embedding.patch_embeddings.weight",
         "vit.blocks.3.attn.qkv.weight", "vit.blocks.0.attn.out_proj.bias", "vit.blocks.0.mlp.linear1.weight",
         "vit.blocks.0.norm2.bias", "vit.norm.weight", "encoder1.layer.conv1.conv.weight",
         "encoder1.layer.conv3.conv.weight", "encoder2.transp_conv_init.conv.weight", "encoder2.blocks.1.0.conv.weight",
         "encoder2.blocks.1.1.conv2.conv.weight", "decoder5.transp_conv.conv.weight",
         "decoder5.conv_block.conv3.conv.weight", "out.conv.conv.weight", "out.conv.conv.bias" })
  {
    EXPECT_NE(parameters.find(key), nullptr) << key;
  }
  EXPECT_EQ(parameters.find("vit.blocks.0.attn.qkv.bias"), nullptr);            // MONAI's default: no qkv bias
  EXPECT_EQ(parameters.find("encoder2.blocks.0.1.conv3.conv.weight"), nullptr); // same channels: no projection
}

TEST(UNETR, ShapesAt96WithAndWithoutDivAttention)
{
  torch::manual_seed(4);
  torch::InferenceMode inference;
  const auto           device = diva::testing::TestDevice();
  const auto           image = torch::randn({ 1, 1, 96, 96, 96 }).to(device);
  UNETR                baseline(UNETROptions::Preset("small"));
  baseline->to(device);
  const auto plain = baseline->Segment(image);
  EXPECT_EQ(plain.logits.sizes(), torch::IntArrayRef({ 1, 2, 96, 96, 96 }));
  EXPECT_TRUE(plain.intermediateLogits.empty());

  auto options = UNETROptions::Preset("small");
  options.div_attention().enabled(true);
  UNETR withModule(options);
  withModule->to(device);
  const auto result = withModule->Segment(image);
  EXPECT_EQ(result.logits.device(), device);
  EXPECT_EQ(result.logits.sizes(), torch::IntArrayRef({ 1, 2, 96, 96, 96 }));
  ASSERT_EQ(result.intermediateLogits.size(), 2U);
  EXPECT_EQ(result.intermediateLogits[0].sizes(), torch::IntArrayRef({ 1, 2, 48, 48, 48 }));
  EXPECT_EQ(result.intermediateLogits[1].sizes(), torch::IntArrayRef({ 1, 2, 24, 24, 24 }));
  ASSERT_EQ(result.attentionMaps.size(), 3U);
  // One attention channel per decoder feature at the top junction.
  EXPECT_EQ(result.attentionMaps[0].sizes(), torch::IntArrayRef({ 1, options.feature_size(), 96, 96, 96 }));
  for (const auto & attn : result.attentionMaps)
  {
    EXPECT_TRUE(torch::isfinite(attn).all().item<bool>());
    EXPECT_GE(attn.min().item<double>(), 0.0);
  }
}

TEST(UNETR, ShapesAtAnotherSize)
{
  torch::InferenceMode inference;
  auto                 options = UNETROptions::Preset("small").image_size(32).in_channels(2).out_channels(1);
  options.div_attention().enabled(true);
  UNETR      network(options);
  const auto device = diva::testing::TestDevice();
  network->to(device);
  const auto result = network->Segment(torch::randn({ 2, 2, 32, 32, 32 }).to(device));
  EXPECT_EQ(result.logits.sizes(), torch::IntArrayRef({ 2, 1, 32, 32, 32 }));
  EXPECT_EQ(result.intermediateLogits[1].sizes(), torch::IntArrayRef({ 2, 1, 8, 8, 8 }));
}

TEST(UNETR, RejectsWrongInputs)
{
  UNETR network(UNETROptions::Preset("small").image_size(32));
  EXPECT_THROW(network->Segment(torch::randn({ 1, 1, 64, 64, 64 })), std::invalid_argument);
  EXPECT_THROW(network->Segment(torch::randn({ 1, 2, 32, 32, 32 })), std::invalid_argument);
  EXPECT_THROW(network->Segment(torch::randn({ 1, 32, 32, 32 })), std::invalid_argument);
  EXPECT_THROW(UNETR(UNETROptions().num_layers(6)), std::invalid_argument);
  EXPECT_THROW(UNETROptions::Preset("huge"), std::invalid_argument);
}

TEST(UNETR, EveryParameterReceivesAGradient)
{
  for (const bool divAttention : { false, true })
  {
    torch::manual_seed(5);
    auto options = UNETROptions::Preset("small").image_size(32);
    options.div_attention().enabled(divAttention);
    UNETR network(options);
    const auto [image, mask] = diva::testing::MakePhantom(32);
    const auto missing = diva::testing::ParametersWithoutGradient(*network, image, mask);
    EXPECT_TRUE(missing.empty()) << "div-attention " << divAttention << ": " << missing.size()
                                 << " parameters without gradient, first " << (missing.empty() ? "" : missing[0]);
  }
}

// Bound: 150 Adam steps (lr 1e-3) at 32^3; it takes ~40-80 here. Dice > 0.9 on the patch it trains on.
TEST(UNETR, SmallPresetWithDivAttentionOverfitsOnePhantom)
{
  torch::manual_seed(6);
  auto options = UNETROptions::Preset("small").image_size(32).out_channels(1);
  options.div_attention().enabled(true);
  UNETR network(options);
  const auto [image, mask] = diva::testing::MakePhantom(32);
  const auto [steps, dice] = diva::testing::Overfit(*network, image, mask, 150, 1e-3);
  EXPECT_GT(dice, 0.9) << "after " << steps << " steps";
  std::cout << "UNETR small + div-attention: Dice " << dice << " after " << steps << " steps\n";
}

TEST(UNETR, SettingsRoundTrip)
{
  auto options = UNETROptions::Preset("small").in_channels(2);
  options.div_attention().enabled(true).softmax_axis(diva::SoftmaxAxis::Channel);
  const auto back = UNETROptions::FromSettings(options.ToSettings());
  EXPECT_EQ(back.ToSettings(), options.ToSettings());
  EXPECT_EQ(back.hidden_size(), 192);
  EXPECT_EQ(back.div_attention().softmax_axis(), diva::SoftmaxAxis::Channel);
}

} // namespace

namespace
{
// LoadModel builds networks under diva::SkipWeightInitialization (their weights are overwritten): the project's own
// initialisation (MONAI's N(0, 0.02) transformer weights, the position embeddings) is skipped only while the guard
// lives, LibTorch's default initialisation still runs (uniform in +-1/sqrt(in): standard deviation 1/sqrt(3 in), twice
// MONAI's 0.02 for the small preset's 192 inputs), and the state is restored after it.
TEST(UNETR, WeightInitializationIsSkippedOnlyUnderTheGuard)
{
  const auto options = diva::UNETROptions::Preset("small");
  const auto statistics = [](diva::UNETR & network)
  {
    double embeddingMagnitude = -1.0, linearStd = -1.0;
    for (const auto & item : network->named_parameters())
    {
      const auto & key = item.key();
      if (key.size() >= 19 && key.compare(key.size() - 19, 19, "position_embeddings") == 0)
      {
        embeddingMagnitude = item.value().abs().max().item<double>();
      }
      else if (linearStd < 0.0 && key.find("mlp.linear1.weight") != std::string::npos)
      {
        linearStd = item.value().std().item<double>();
      }
    }
    return std::make_pair(embeddingMagnitude, linearStd);
  };
  torch::manual_seed(41);
  diva::UNETR initialised(options);
  const auto  normal = statistics(initialised);
  EXPECT_FALSE(diva::WeightInitializationSkipped());
  std::pair<double, double> skipped;
  {
    const diva::SkipWeightInitialization skip;
    EXPECT_TRUE(diva::WeightInitializationSkipped());
    diva::UNETR network(options);
    skipped = statistics(network);
  }
  EXPECT_FALSE(diva::WeightInitializationSkipped()) << "the guard restores the previous state";
  ASSERT_GE(normal.first, 0.0) << "no position_embeddings parameter found";
  ASSERT_GE(normal.second, 0.0) << "no mlp.linear1.weight parameter found";
  EXPECT_GT(normal.first, 0.0) << "initialised: N(0, 0.02) position embeddings";
  EXPECT_EQ(skipped.first, 0.0) << "skipped: the position embeddings stay zero";
  EXPECT_NEAR(normal.second, 0.02, 0.002) << "MONAI's N(0, 0.02)";
  EXPECT_GT(skipped.second, 0.035) << "LibTorch's uniform initialisation (std ~0.042 for 192 inputs)";
}
} // namespace

// The skip taps: MONAI's UNETR.forward feeds hidden_states_out[3], [6], [9] of its 12 blocks to encoder2/3/4.
TEST(UNETR, SkipTapsFollowMonaisRule)
{
  EXPECT_EQ(diva::UnetrSkipTaps(12, "monai"), (std::array<int64_t, 3>{ 3, 6, 9 }));
  EXPECT_EQ(diva::UnetrSkipTaps(4, "monai"), (std::array<int64_t, 3>{ 1, 2, 3 })); // `small`: blocks 2, 3, 4
  EXPECT_EQ(diva::UnetrSkipTaps(8, "monai"), (std::array<int64_t, 3>{ 2, 4, 6 }));
  EXPECT_EQ(diva::UnetrSkipTaps(12, "early"), (std::array<int64_t, 3>{ 2, 5, 8 })); // files from before the fix
  EXPECT_THROW(diva::UnetrSkipTaps(6, "monai"), std::invalid_argument);
  EXPECT_THROW(diva::UnetrSkipTaps(12, "late"), std::invalid_argument);
  EXPECT_THROW(UNETR(UNETROptions::Preset("small").skip_taps("late")), std::invalid_argument);
}

TEST(UNETR, SkipTapsAreInTheSettingsAndOldSettingsReadAsEarly)
{
  const auto settings = UNETROptions::Preset("small").ToSettings();
  ASSERT_EQ(settings.at("skip_taps"), "monai");
  EXPECT_EQ(UNETROptions::FromSettings(settings).skip_taps(), "monai");
  auto old = settings;
  old.erase("skip_taps"); // a model file written before the taps were recorded
  EXPECT_EQ(UNETROptions::FromSettings(old).skip_taps(), "early");

  // The rule changes what the network computes (same weights, other taps, other logits).
  torch::manual_seed(3);
  UNETR              monai(UNETROptions::Preset("small").image_size(32).in_channels(1));
  UNETR              early(UNETROptions::Preset("small").image_size(32).in_channels(1).skip_taps("early"));
  torch::NoGradGuard noGrad;
  for (const auto & item : monai->named_parameters())
  {
    early->named_parameters()[item.key()].copy_(item.value());
  }
  monai->eval();
  early->eval();
  const auto image = torch::randn({ 1, 1, 32, 32, 32 });
  EXPECT_GT((monai->forward(image) - early->forward(image)).abs().max().item<double>(), 1e-3);
}
