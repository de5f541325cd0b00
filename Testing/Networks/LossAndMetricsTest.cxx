// The loss of eqs. 6-8 against values computed by hand, deep-supervision weights, and the metrics' conventions.
#include "divaSegmentationLoss.h"
#include "divaSegmentationMetrics.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace
{
using diva::DiceForm;

// Two voxels: logits (0, ln 3) give p = (0.5, 0.75); target (1, 0).
struct TinyCase
{
  torch::Tensor logits = torch::tensor({ 0.0, std::log(3.0) }, torch::kFloat64).view({ 1, 1, 1, 1, 2 });
  torch::Tensor target = torch::tensor({ 1.0, 0.0 }, torch::kFloat64).view({ 1, 1, 1, 1, 2 });
};

// Tolerance 1e-9: float64 throughout, the hand values are exact to 1e-12.
TEST(SegmentationLoss, WeightedBceMatchesHandValue)
{
  TinyCase c;
  // -(1/2) * (gamma * log 0.5 + log(1 - 0.75))
  const double expected = -0.5 * (0.5 * std::log(0.5) + std::log(0.25));
  EXPECT_NEAR(diva::WeightedBinaryCrossEntropy(c.logits, c.target, 0.5).item<double>(), expected, 1e-9);
  const double unweighted = -0.5 * (std::log(0.5) + std::log(0.25));
  EXPECT_NEAR(diva::WeightedBinaryCrossEntropy(c.logits, c.target, 1.0).item<double>(), unweighted, 1e-9);
}

TEST(SegmentationLoss, DiceMatchesHandValueInBothForms)
{
  TinyCase     c;
  const double s = 1e-5;
  // overlap 0.5, sum p 1.25, sum y 1
  EXPECT_NEAR(diva::SoftDiceLoss(c.logits, c.target, DiceForm::Standard, s).item<double>(),
              1.0 - (1.0 + s) / (2.25 + s), 1e-9);
  EXPECT_NEAR(diva::SoftDiceLoss(c.logits, c.target, DiceForm::AsPrinted, s).item<double>(),
              1.0 - (1.0 + s) / (2.75 + s), 1e-9);
}

// A perfect prediction: standard Dice loss 0, eq. 7 as printed 1/3. Tolerance 1e-6: sigmoid(+-30) is 1 - 1e-13.
TEST(SegmentationLoss, PerfectPredictionCostsZeroOnlyInStandardForm)
{
  const auto target = torch::tensor({ 1.0, 0.0, 1.0, 1.0 }, torch::kFloat64).view({ 1, 1, 1, 2, 2 });
  const auto logits = (target * 2.0 - 1.0) * 30.0;
  EXPECT_NEAR(diva::SoftDiceLoss(logits, target, DiceForm::Standard, 1e-5).item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(diva::SoftDiceLoss(logits, target, DiceForm::AsPrinted, 1e-5).item<double>(), 1.0 / 3.0, 1e-6);
}

TEST(SegmentationLoss, TwoChannelSoftmaxEqualsOneChannelSigmoidOfTheDifference)
{
  TinyCase                            c;
  const auto                          twoChannels = torch::cat({ torch::zeros_like(c.logits), c.logits }, 1);
  const diva::SegmentationLossOptions options;
  EXPECT_NEAR(diva::SegmentationLoss(twoChannels, c.target, options).item<double>(),
              diva::SegmentationLoss(c.logits, c.target, options).item<double>(), 1e-9);
  EXPECT_THROW(diva::SegmentationLoss(torch::zeros({ 1, 3, 1, 1, 2 }), c.target, options), std::invalid_argument);
  EXPECT_THROW(diva::SegmentationLoss(c.logits, torch::zeros({ 1, 1, 1, 1, 3 }), options), std::invalid_argument);
}

TEST(SegmentationLoss, AlphaAndBetaWeighTheTerms)
{
  TinyCase     c;
  const auto   options = diva::SegmentationLossOptions().alpha(2.0).beta(3.0);
  const double expected = 2.0 * diva::WeightedBinaryCrossEntropy(c.logits, c.target, 0.5).item<double>() +
                          3.0 * diva::SoftDiceLoss(c.logits, c.target, DiceForm::Standard, 1e-5).item<double>();
  EXPECT_NEAR(diva::SegmentationLoss(c.logits, c.target, options).item<double>(), expected, 1e-9);
}

TEST(SegmentationLoss, DeepSupervisionWeights)
{
  const auto w = diva::DeepSupervisionWeights(3, false);
  EXPECT_NEAR(w[0], 4.0 / 7.0, 1e-12);
  EXPECT_NEAR(w[1], 2.0 / 7.0, 1e-12);
  EXPECT_NEAR(w[2], 1.0 / 7.0, 1e-12);
  const auto nnunet = diva::DeepSupervisionWeights(3, true);
  EXPECT_NEAR(nnunet[0], 2.0 / 3.0, 1e-12);
  EXPECT_EQ(nnunet[2], 0.0);
  EXPECT_EQ(diva::DeepSupervisionWeights(1, true)[0], 1.0);
}

TEST(SegmentationLoss, DeepSupervisedLossCombinesLevelsWithDownsampledTarget)
{
  torch::manual_seed(8);
  const auto               target = torch::rand({ 1, 1, 4, 4, 4 }, torch::kFloat64).gt(0.5).to(torch::kFloat64);
  diva::SegmentationOutput output;
  output.logits = torch::randn({ 1, 1, 4, 4, 4 }, torch::kFloat64);
  output.intermediateLogits = { torch::randn({ 1, 1, 2, 2, 2 }, torch::kFloat64) };
  const diva::SegmentationLossOptions options;
  const auto                          coarseTarget = target.index({ torch::indexing::Slice(), torch::indexing::Slice(),
                                                                    torch::indexing::Slice(0, 4, 2), torch::indexing::Slice(0, 4, 2),
                                                                    torch::indexing::Slice(0, 4, 2) }); // nearest of a factor 2: even voxels
  const double                        expected =
    2.0 / 3.0 * diva::SegmentationLoss(output.logits, target, options).item<double>() +
    1.0 / 3.0 * diva::SegmentationLoss(output.intermediateLogits[0], coarseTarget, options).item<double>();
  EXPECT_NEAR(diva::DeepSupervisedLoss(output, target, options).item<double>(), expected, 1e-9);
}

TEST(SegmentationMetrics, CountsAndRatios)
{
  const auto prediction = torch::tensor({ 1, 1, 0, 0, 1 });
  const auto reference = torch::tensor({ 1, 0, 1, 0, 1 });
  const auto m = diva::ComputeBinaryMetrics(prediction, reference);
  EXPECT_EQ(m.truePositives, 2);
  EXPECT_EQ(m.falsePositives, 1);
  EXPECT_EQ(m.falseNegatives, 1);
  EXPECT_DOUBLE_EQ(m.dice, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 3.0);
}

TEST(SegmentationMetrics, EmptyMaskConventions)
{
  const auto empty = torch::zeros({ 4 });
  const auto some = torch::tensor({ 0, 1, 0, 0 });
  const auto bothEmpty = diva::ComputeBinaryMetrics(empty, empty);
  EXPECT_EQ(bothEmpty.dice, 1.0);
  EXPECT_EQ(bothEmpty.recall, 1.0);
  EXPECT_EQ(bothEmpty.precision, 1.0);
  const auto falseAlarm = diva::ComputeBinaryMetrics(some, empty);
  EXPECT_EQ(falseAlarm.dice, 0.0);
  EXPECT_EQ(falseAlarm.recall, 1.0);
  EXPECT_EQ(falseAlarm.precision, 0.0);
  const auto missed = diva::ComputeBinaryMetrics(empty, some);
  EXPECT_EQ(missed.dice, 0.0);
  EXPECT_EQ(missed.recall, 0.0);
  EXPECT_EQ(missed.precision, 1.0);
  EXPECT_THROW(diva::ComputeBinaryMetrics(some, torch::zeros({ 5 })), std::invalid_argument);
}

} // namespace
