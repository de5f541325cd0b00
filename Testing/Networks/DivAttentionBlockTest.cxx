// The div-attention module alone: shapes, eq. 4's bounds under both readings, gradients, input checks.
#include "divaDivAttentionBlock.h"

#include "DivAttentionTestDevice.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace
{
using diva::AbsolutePlacement;
using diva::DivAttentionBlock;
using diva::DivAttentionBlockImpl;
using diva::DivAttentionOptions;
using diva::SoftmaxAxis;

// Drawn on the CPU (the same numbers on every device), then moved to the test device (CUDA in the twins).
struct Inputs
{
  torch::Tensor upper = torch::randn({ 2, 8, 8, 8, 8 }).to(diva::testing::TestDevice());
  torch::Tensor lower = torch::randn({ 2, 16, 4, 4, 4 }).to(diva::testing::TestDevice());
  torch::Tensor image = torch::randn({ 2, 1, 32, 32, 32 }).to(diva::testing::TestDevice());
};

TEST(DivAttentionBlock, ShapesOfFusedLogitsAndAttention)
{
  torch::manual_seed(1);
  DivAttentionBlock block(DivAttentionOptions(8, 16, 1).prediction_channels(2));
  block->to(diva::testing::TestDevice());
  Inputs     in;
  const auto result = block(in.upper, in.lower, in.image);
  EXPECT_EQ(result.fused.device(), in.upper.device());
  EXPECT_EQ(result.fused.sizes(), in.upper.sizes());
  EXPECT_EQ(result.logits.sizes(), torch::IntArrayRef({ 2, 2, 8, 8, 8 }));
  EXPECT_EQ(result.attention.sizes(), in.upper.sizes());
}

TEST(DivAttentionBlock, NoHeadGivesUndefinedLogits)
{
  DivAttentionBlock block(DivAttentionOptions(8, 16, 1));
  Inputs            in;
  EXPECT_FALSE(block(in.upper, in.lower, in.image).logits.defined());
  EXPECT_FALSE(block->head);
}

// Bound of Method.md: 0 <= attn <= 1/sqrt(D*H*W); the softmax's axis sums to exactly 1/sqrt(D*H*W).
// Tolerance 1e-6 relative: float32 softmax of <= 512 terms sums to 1 within a few ulps.
TEST(DivAttentionBlock, AttentionIsFiniteNonNegativeAndBounded)
{
  torch::manual_seed(2);
  const auto   upperMask = torch::rand({ 2, 4, 8, 8, 8 });
  const auto   lowerMask = torch::rand({ 2, 4, 8, 8, 8 });
  const double scale = 1.0 / std::sqrt(512.0);
  for (const auto axis : { SoftmaxAxis::Space, SoftmaxAxis::Channel })
  {
    for (const auto placement : { AbsolutePlacement::OfResidual, AbsolutePlacement::OfSoftmax })
    {
      const auto attn = DivAttentionBlockImpl::Attention(upperMask, lowerMask, axis, placement);
      EXPECT_TRUE(torch::isfinite(attn).all().item<bool>());
      EXPECT_GE(attn.min().item<double>(), 0.0);
      EXPECT_LE(attn.max().item<double>(), scale * (1.0 + 1e-6));
      const auto sums = axis == SoftmaxAxis::Space ? attn.flatten(2).sum(2) : attn.sum(1);
      EXPECT_TRUE(torch::allclose(sums, torch::full_like(sums, scale), 1e-6, 0.0));
    }
  }
}

TEST(DivAttentionBlock, ChannelSoftmaxOfOneChannelIsConstant)
{
  const auto attn = DivAttentionBlockImpl::Attention(torch::rand({ 1, 1, 4, 4, 4 }), torch::rand({ 1, 1, 4, 4, 4 }),
                                                     SoftmaxAxis::Channel, AbsolutePlacement::OfResidual);
  EXPECT_TRUE(torch::allclose(attn, torch::full_like(attn, 1.0 / 8.0)));
}

// The text's softmax(|r|) and the printed |softmax(r)| differ whenever r has negative entries.
TEST(DivAttentionBlock, AbsolutePlacementReadingsDiffer)
{
  const auto upper = torch::tensor({ 0.9f, 0.1f, 0.5f, 0.5f }).view({ 1, 1, 1, 2, 2 });
  const auto lower = torch::tensor({ 0.1f, 0.9f, 0.5f, 0.5f }).view({ 1, 1, 1, 2, 2 });
  const auto ofResidual =
    DivAttentionBlockImpl::Attention(upper, lower, SoftmaxAxis::Space, AbsolutePlacement::OfResidual);
  const auto ofSoftmax =
    DivAttentionBlockImpl::Attention(upper, lower, SoftmaxAxis::Space, AbsolutePlacement::OfSoftmax);
  // |r| = (0.8, 0.8, 0, 0): both disagreeing voxels get the same, larger weight.
  EXPECT_NEAR(ofResidual.flatten()[0].item<double>(), ofResidual.flatten()[1].item<double>(), 1e-7);
  EXPECT_GT(ofResidual.flatten()[0].item<double>(), ofResidual.flatten()[2].item<double>());
  // r = (0.8, -0.8, 0, 0): the signed reading ranks them apart.
  EXPECT_GT(ofSoftmax.flatten()[0].item<double>(), ofSoftmax.flatten()[2].item<double>());
  EXPECT_LT(ofSoftmax.flatten()[1].item<double>(), ofSoftmax.flatten()[2].item<double>());
}

TEST(DivAttentionBlock, EveryParameterAndTheAttentionCarryGradients)
{
  torch::manual_seed(3);
  DivAttentionBlock block(DivAttentionOptions(8, 16, 1).prediction_channels(1));
  block->to(diva::testing::TestDevice());
  Inputs in;
  in.lower.requires_grad_(true);
  const auto result = block(in.upper, in.lower, in.image);
  ASSERT_TRUE(result.attention.requires_grad()); // never detached: the loss reaches O_{i-1} through eq. 4
  (result.logits.sum() + result.attention.sum() * 1e3).backward();
  for (const auto & item : block->named_parameters())
  {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key();
  }
  EXPECT_GT(in.lower.grad().abs().sum().item<double>(), 0.0);
}

TEST(DivAttentionBlock, RejectsMismatchedInputs)
{
  DivAttentionBlock block(DivAttentionOptions(8, 16, 1));
  Inputs            in;
  EXPECT_THROW(block(in.upper, torch::randn({ 2, 16, 5, 4, 4 }), in.image), std::invalid_argument);
  EXPECT_THROW(block(in.upper, torch::randn({ 2, 12, 4, 4, 4 }), in.image), std::invalid_argument);
  EXPECT_THROW(block(in.upper, in.lower, torch::randn({ 2, 2, 8, 8, 8 })), std::invalid_argument);
  EXPECT_THROW(DivAttentionBlock(DivAttentionOptions(0, 16, 1)), std::invalid_argument);
}

TEST(DivAttentionBlock, ReadingsRoundTripThroughText)
{
  EXPECT_EQ(diva::ParseSoftmaxAxis(diva::ToString(SoftmaxAxis::Channel)), SoftmaxAxis::Channel);
  EXPECT_EQ(diva::ParseAbsolutePlacement(diva::ToString(AbsolutePlacement::OfSoftmax)), AbsolutePlacement::OfSoftmax);
  EXPECT_THROW(diva::ParseSoftmaxAxis("voxels"), std::invalid_argument);
}

} // namespace
