// The inference-only kernels beside the Winograd convolution: the non-overlapping transposed convolution
// (divaNonOverlappingTransposedConvolution3d.h) and the fused instance norm (divaFusedInstanceNormalization.h) compute
// what LibTorch's modules compute, for the shapes they have edge cases for, and the selection uses them only for
// inference.
#include "AutogradGraph.h"
#include "ScopedCpuKernels.h"
#include "divaCpuKernelSelection.h"
#include "divaDivAttentionBlock.h"
#include "divaFusedDivAttention.h"
#include "divaFusedInstanceNormalization.h"
#include "divaNonOverlappingTransposedConvolution3d.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace
{
using diva::CpuKernels;

// Both kernels compute LibTorch's sums in another order (the transposed convolution: one product of Cin terms per
// output; the norm: statistics in double instead of LibTorch's float/Welford mix), so they differ by float rounding,
// ~1e-6 of the output's scale. 1e-5 of the scale fails on any wrong voxel, tap, channel, bias or statistic.
void
ExpectNearLibTorch(const torch::Tensor & actual, const torch::Tensor & expected, const std::string & what)
{
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  EXPECT_LE((actual - expected).abs().max().item<double>(), 1e-5 * scale) << what;
}

struct TransposedCase
{
  const char * name;
  int64_t      batch, in, out, depth, height, width, k0, k1, k2;
  bool         bias;
};

class NonOverlappingTransposedConvolutionShapes : public ::testing::TestWithParam<TransposedCase>
{
};

TEST_P(NonOverlappingTransposedConvolutionShapes, MatchLibTorch)
{
  const auto c = GetParam();
  torch::manual_seed(31);
  const auto           input = torch::randn({ c.batch, c.in, c.depth, c.height, c.width });
  const auto           weight = torch::randn({ c.in, c.out, c.k0, c.k1, c.k2 }) * 0.3;
  const auto           bias = c.bias ? torch::randn({ c.out }) : torch::Tensor();
  torch::InferenceMode inference;
  const auto           expected = torch::conv_transpose3d(input, weight, bias, torch::IntArrayRef{ c.k0, c.k1, c.k2 });
  ExpectNearLibTorch(diva::NonOverlappingTransposedConvolution3d(input, weight, bias), expected, c.name);
}

// The networks' 2^3 up-convolution (odd sizes, batch 2), anisotropic kernels (one axis not upsampled; a 3-wide x,
// which takes the general interleave), one input channel, one voxel, and the transformer's 768 channels at 6^3.
INSTANTIATE_TEST_SUITE_P(Shapes,
                         NonOverlappingTransposedConvolutionShapes,
                         ::testing::Values(TransposedCase{ "Cube", 1, 8, 4, 6, 6, 6, 2, 2, 2, true },
                                           TransposedCase{ "OddSizesBatchTwo", 2, 5, 3, 3, 5, 7, 2, 2, 2, true },
                                           TransposedCase{ "Anisotropic", 1, 4, 6, 4, 3, 5, 1, 2, 3, true },
                                           TransposedCase{ "OneInputChannelNoBias", 1, 1, 5, 4, 4, 4, 2, 2, 2, false },
                                           TransposedCase{ "OneVoxel", 1, 6, 2, 1, 1, 1, 2, 2, 2, true },
                                           TransposedCase{ "TransformerSized", 1, 768, 16, 3, 3, 3, 2, 2, 2, false }),
                         [](const ::testing::TestParamInfo<TransposedCase> & info)
                         { return std::string(info.param.name); });

class InferenceKernels : public ::testing::Test
{
private:
  ScopedCpuKernels m_Restore; // the tests change the kernel choice and the thread count
};

TEST_F(InferenceKernels, TransposedConvolutionReadsStridedInputsAndIsTheSameAtOneAndTwoThreads)
{
  torch::manual_seed(32);
  const auto           input = torch::randn({ 1, 6, 7, 5, 9 }).permute({ 0, 1, 4, 3, 2 });
  const auto           weight = torch::randn({ 6, 4, 2, 2, 2 });
  const auto           bias = torch::randn({ 4 });
  torch::InferenceMode inference;
  ASSERT_FALSE(input.is_contiguous());
  torch::set_num_threads(1);
  const auto one = diva::NonOverlappingTransposedConvolution3d(input, weight, bias);
  torch::set_num_threads(2);
  const auto two = diva::NonOverlappingTransposedConvolution3d(input, weight, bias);
  ExpectNearLibTorch(two, torch::conv_transpose3d(input, weight, bias, 2), "permuted input");
  EXPECT_TRUE(torch::equal(one, two)) << "every output is computed by one thread in a fixed order";
}

TEST_F(InferenceKernels, TransposedConvolutionAppliesOnlyWhereKernelEqualsStrideAndNothingIsRecorded)
{
  const auto input = torch::randn({ 1, 4, 3, 3, 3 });
  const auto weight = torch::randn({ 4, 2, 2, 2, 2 });
  const auto bias = torch::randn({ 2 });
  const auto applies = [&](const torch::Tensor & w, at::IntArrayRef stride, int64_t padding = 0,
                           int64_t outputPadding = 0, int64_t dilation = 1, int64_t groups = 1)
  {
    return diva::NonOverlappingTransposedConvolution3dApplies(input, w, bias, stride, { padding, padding, padding },
                                                              { outputPadding, outputPadding, outputPadding },
                                                              { dilation, dilation, dilation }, groups);
  };
  torch::NoGradGuard noGrad;
  EXPECT_TRUE(applies(weight, { 2, 2, 2 }));
  EXPECT_FALSE(applies(weight, { 1, 1, 1 })) << "stride 1: outputs overlap";
  EXPECT_FALSE(applies(torch::randn({ 4, 2, 3, 3, 3 }), { 2, 2, 2 })) << "kernel 3, stride 2: outputs overlap";
  EXPECT_FALSE(applies(weight, { 2, 2, 2 }, 1)) << "padding";
  EXPECT_FALSE(applies(weight, { 2, 2, 2 }, 0, 1)) << "output padding";
  EXPECT_FALSE(applies(weight, { 2, 2, 2 }, 0, 0, 2)) << "dilation";
  EXPECT_FALSE(applies(torch::randn({ 4, 1, 2, 2, 2 }), { 2, 2, 2 }, 0, 0, 1, 2)) << "groups";
  EXPECT_FALSE(applies(torch::randn({ 3, 2, 2, 2, 2 }), { 2, 2, 2 })) << "channels differ";
  EXPECT_THROW(diva::NonOverlappingTransposedConvolution3d(input, torch::randn({ 3, 2, 2, 2, 2 }), bias),
               std::invalid_argument);
}

TEST_F(InferenceKernels, TheSelectionRunsTheTransposedKernelForInferenceAndTrainingWithMatchingGradients)
{
  torch::manual_seed(33);
  // A small volume (one gradient block per sample) and one of 9240 voxels per sample (two gradient blocks, the second
  // ragged, and the voxels shared between the threads).
  for (const std::vector<int64_t> & inputShape :
       { std::vector<int64_t>{ 2, 6, 4, 5, 6 }, std::vector<int64_t>{ 2, 6, 22, 20, 21 } })
  {
    SCOPED_TRACE(inputShape[2]);
    const auto input = torch::randn(inputShape);
    const auto weight = torch::randn({ 6, 3, 2, 2, 2 });
    const auto bias = torch::randn({ 3 });
    const auto upConvolve = [&](const torch::Tensor & x, const torch::Tensor & w, const torch::Tensor & b) {
      return diva::TransposedConvolution3d(x, w, b, { 2, 2, 2 }, { 0, 0, 0 }, { 0, 0, 0 }, 1, { 1, 1, 1 });
    };
    torch::Tensor ours, selected, libtorch;
    {
      torch::InferenceMode inference;
      ours = diva::NonOverlappingTransposedConvolution3d(input, weight, bias);
      diva::SetCpuKernels(CpuKernels::Selected);
      selected = upConvolve(input, weight, bias);
      diva::SetCpuKernels(CpuKernels::LibTorch);
      libtorch = upConvolve(input, weight, bias);
    }
    EXPECT_TRUE(torch::equal(selected, ours)) << "inference with the selection runs the non-overlapping kernel";
    ExpectNearLibTorch(libtorch, ours, "LibTorch vs ours");
    // Training: the same forward inside an autograd function whose matrix-product gradients must be LibTorch's (a
    // weighted sum as the loss, so every output voxel's gradient differs).
    const auto gradients = [&](CpuKernels kernels)
    {
      diva::SetCpuKernels(kernels);
      auto x = input.clone().requires_grad_();
      auto w = weight.clone().requires_grad_();
      auto b = bias.clone().requires_grad_();
      auto output = upConvolve(x, w, b);
      (output * torch::linspace(-1.0, 1.0, output.numel()).view(output.sizes())).sum().backward();
      return std::vector<torch::Tensor>{ output.detach(), x.grad(), w.grad(), b.grad() };
    };
    const auto trained = gradients(CpuKernels::Selected);
    const auto reference = gradients(CpuKernels::LibTorch);
    EXPECT_TRUE(torch::equal(trained[0], ours)) << "the training forward is the non-overlapping kernel's";
    const char * names[] = { "output", "input gradient", "weight gradient", "bias gradient" };
    for (size_t k = 0; k < trained.size(); ++k)
    {
      ASSERT_TRUE(trained[k].defined()) << names[k];
      ExpectNearLibTorch(trained[k], reference[k], names[k]);
    }
    // Only the gradients asked for are computed: a frozen weight gets none and the input still gets its own.
    diva::SetCpuKernels(CpuKernels::Selected);
    auto x = input.clone().requires_grad_();
    upConvolve(x, weight, bias).sum().backward();
    auto libtorchInput = input.clone().requires_grad_();
    torch::conv_transpose3d(libtorchInput, weight, bias, 2).sum().backward();
    ASSERT_TRUE(x.grad().defined());
    ExpectNearLibTorch(x.grad(), libtorchInput.grad(), "input gradient with a frozen weight");
  }
}

struct NormCase
{
  const char * name;
  int64_t      batch, channels, depth, height, width;
  bool         affine, addend;
  double       slope;  // < 0: no activation
  double       offset; // added to the input: a mean far from 0 tests the variance for cancellation
};

class FusedInstanceNormalizationShapes : public ::testing::TestWithParam<NormCase>
{
};

TEST_P(FusedInstanceNormalizationShapes, MatchNormAddendAndLeakyRelu)
{
  const auto c = GetParam();
  torch::manual_seed(34);
  const auto                input = torch::randn({ c.batch, c.channels, c.depth, c.height, c.width }) * 3.0 + c.offset;
  torch::nn::InstanceNorm3d norm(torch::nn::InstanceNorm3dOptions(c.channels).eps(1e-5).affine(c.affine));
  if (c.affine)
  {
    torch::NoGradGuard noGrad;
    norm->weight.uniform_(0.5, 1.5);
    norm->bias.uniform_(-0.5, 0.5);
  }
  const auto            addend = c.addend ? torch::randn(input.sizes()) : torch::Tensor();
  std::optional<double> slope;
  if (c.slope >= 0)
  {
    slope = c.slope;
  }
  torch::InferenceMode inference;
  auto                 expected = norm(input);
  if (c.addend)
  {
    expected = expected + addend;
  }
  if (slope)
  {
    expected = torch::leaky_relu(expected, *slope);
  }
  const auto actual = diva::FusedInstanceNormalization(input, norm->weight, norm->bias, 1e-5, addend, slope);
  ExpectNearLibTorch(actual, expected, c.name);
}

// Sizes below and above the kernel's 1024-value blocks and its 8 lanes (a remainder in each), affine or not, with
// and without the residual addend and the activation, batch 2, and a mean of 1000 (x - mean cancels badly in float).
INSTANTIATE_TEST_SUITE_P(Shapes,
                         FusedInstanceNormalizationShapes,
                         ::testing::Values(NormCase{ "NormOnly", 1, 4, 5, 6, 7, false, false, -1.0, 0.0 },
                                           NormCase{ "MonaiResidualStep", 1, 3, 12, 11, 13, false, true, 0.01, 0.0 },
                                           NormCase{ "NnUnetAffineStep", 2, 5, 9, 8, 7, true, false, 0.01, 0.0 },
                                           NormCase{ "AffineWithAddendNoActivation", 1, 2, 3, 4, 5, true, true, -1.0,
                                                     0.0 },
                                           NormCase{ "FewerThanEightVoxels", 1, 3, 1, 1, 7, true, false, 0.2, 0.0 },
                                           NormCase{ "FarFromZero", 1, 2, 16, 16, 16, false, false, -1.0, 1000.0 }),
                         [](const ::testing::TestParamInfo<NormCase> & info) { return std::string(info.param.name); });

TEST_F(InferenceKernels, FusedNormIsTheSameAtOneAndTwoThreadsAndRefusesWhatItCannotCompute)
{
  torch::manual_seed(35);
  const auto           input = torch::randn({ 1, 6, 10, 11, 12 });
  torch::InferenceMode inference;
  torch::set_num_threads(1);
  const auto one = diva::FusedInstanceNormalization(input, {}, {}, 1e-5, {}, 0.01);
  torch::set_num_threads(2);
  const auto two = diva::FusedInstanceNormalization(input, {}, {}, 1e-5, {}, 0.01);
  EXPECT_TRUE(torch::equal(one, two)) << "each instance is one thread's, summed in a fixed order";
  EXPECT_FALSE(diva::FusedInstanceNormalizationApplies(input, torch::ones({ 5 }), {}, {})) << "weight of 5 channels";
  EXPECT_FALSE(diva::FusedInstanceNormalizationApplies(input, {}, {}, torch::ones({ 1, 6, 10, 11, 11 })))
    << "addend of another shape";
  EXPECT_FALSE(diva::FusedInstanceNormalizationApplies(input.to(torch::kDouble), {}, {}, {})) << "float64";
  EXPECT_THROW(diva::FusedInstanceNormalization(input, torch::ones({ 5 }), {}, 1e-5, {}, std::nullopt),
               std::invalid_argument);
}

TEST_F(InferenceKernels, TheSelectionFusesTheNormForInferenceAndKeepsTheModulesForTraining)
{
  torch::manual_seed(36);
  torch::nn::InstanceNorm3d norm(torch::nn::InstanceNorm3dOptions(4).affine(true));
  const auto                input = torch::randn({ 1, 4, 6, 7, 8 });
  const auto                residual = torch::randn({ 1, 4, 6, 7, 8 });
  torch::Tensor             fused, selected, libtorch;
  {
    torch::InferenceMode inference;
    fused = diva::FusedInstanceNormalization(input, norm->weight, norm->bias, 1e-5, residual, 0.01);
    diva::SetCpuKernels(CpuKernels::Selected);
    selected = diva::InstanceNorm3d(norm, input, residual, 0.01);
    diva::SetCpuKernels(CpuKernels::LibTorch);
    libtorch = diva::InstanceNorm3d(norm, input, residual, 0.01);
  }
  EXPECT_TRUE(torch::equal(selected, fused)) << "inference with the selection runs the fused kernel";
  ExpectNearLibTorch(libtorch, fused, "modules vs fused");
  // Training: the norm's weight needs a gradient, so the modules run and the weight gets one.
  diva::SetCpuKernels(CpuKernels::Selected);
  const auto output = diva::InstanceNorm3d(norm, input, residual, 0.01);
  ASSERT_NE(output.grad_fn(), nullptr);
  output.sum().backward();
  EXPECT_TRUE(norm->weight.grad().defined());
  ExpectNearLibTorch(output.detach(), fused, "training path vs fused");
  // A norm with running statistics uses them in eval mode: it is never fused.
  torch::nn::InstanceNorm3d tracked(torch::nn::InstanceNorm3dOptions(4).track_running_stats(true));
  tracked->eval();
  torch::InferenceMode inference;
  ExpectNearLibTorch(diva::InstanceNorm3d(tracked, input), tracked(input), "running statistics");
  EXPECT_FALSE(torch::allclose(tracked(input), diva::FusedInstanceNormalization(input, {}, {}, 1e-5, {}, {})));
}

// In training the norm + residual + activation step computes LibTorch's values and gradients, at batch 1 and 2,
// without an in-place operation on a view (which would make autograd clone and scatter the whole gradient).
TEST_F(InferenceKernels, TrainingNormStepHasLibTorchsGradientsAndNoCopySlices)
{
  torch::manual_seed(37);
  for (const int64_t batch : { 1, 2 })
  {
    for (const bool withResidual : { false, true })
    {
      SCOPED_TRACE(std::to_string(batch) + (withResidual ? " with residual" : " without residual"));
      torch::nn::InstanceNorm3d norm(torch::nn::InstanceNorm3dOptions(4).affine(true));
      torch::NoGradGuard        noGrad;
      norm->weight.uniform_(0.5, 1.5);
      norm->bias.uniform_(-0.5, 0.5);
      const auto input = torch::randn({ batch, 4, 6, 7, 8 }) * 3 + 1;
      const auto residual = torch::randn({ batch, 4, 6, 7, 8 });
      const auto upstream = torch::randn({ batch, 4, 6, 7, 8 });
      const auto run = [&](bool selected)
      {
        torch::AutoGradMode gradients(true);
        diva::SetCpuKernels(selected ? CpuKernels::Selected : CpuKernels::LibTorch);
        norm->zero_grad();
        auto       x = input.clone().requires_grad_();
        auto       r = withResidual ? residual.clone().requires_grad_() : torch::Tensor();
        const auto normalized = selected ? torch::Tensor() : norm->forward(x); // LibTorch's own composition
        const auto output = selected ? diva::InstanceNorm3d(norm, x, r, 0.01)
                                     : torch::leaky_relu(withResidual ? normalized + r : normalized, 0.01);
        EXPECT_EQ(diva::testing::CountGraphNodes(output, "CopySlices"), 0u);
        (output * upstream).sum().backward();
        return std::vector<torch::Tensor>{ output.detach(), x.grad(), withResidual ? r.grad() : torch::zeros({ 1 }),
                                           norm->weight.grad().clone(), norm->bias.grad().clone() };
      };
      const auto   ours = run(true);
      const auto   reference = run(false);
      const char * names[] = { "output", "input gradient", "residual gradient", "weight gradient", "bias gradient" };
      for (std::size_t k = 0; k < ours.size(); ++k)
      {
        ASSERT_TRUE(ours[k].defined()) << names[k];
        ExpectNearLibTorch(ours[k], reference[k], names[k]);
      }
    }
  }
}

// Relative to the expected tensor's own largest magnitude (attention values are ~1/sqrt(D*H*W), far below 1).
void
ExpectRelativelyClose(const torch::Tensor & actual,
                      const torch::Tensor & expected,
                      double                tolerance,
                      const std::string &   what)
{
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double scale = expected.abs().max().item<double>();
  ASSERT_GT(scale, 0.0) << what;
  EXPECT_LE((actual - expected).abs().max().item<double>(), tolerance * scale) << what;
}

// With the 1x1x1 fusion the block runs FusedDivAttentionJunction (everything after the image convolution), with 3^3
// FusedDivAttention (the element-wise part).
TEST_F(InferenceKernels, FusedDivAttentionGivesTheModulesOutputsForEveryReadingOfEquation4)
{
  for (const auto placement : { diva::AbsolutePlacement::OfResidual, diva::AbsolutePlacement::OfSoftmax })
  {
    for (const int variant : { 0, 1, 2, 3 })
    {
      const bool normalize = variant % 3 != 2;
      const auto units = variant % 3 == 0 ? diva::RefinedNormScale::UniformAttention : diva::RefinedNormScale::Absolute;
      const int64_t fusionKernel = variant == 3 ? 3 : 1;
      std::string   what = diva::ToString(placement) +
                         (normalize ? ", M_ref normalised in " + diva::ToString(units) + " units" : ", M_ref as is") +
                         ", fusion " + std::to_string(fusionKernel) + "^3";
      torch::manual_seed(37);
      diva::DivAttentionBlock block(diva::DivAttentionOptions(8, 16, 1)
                                      .prediction_channels(2)
                                      .absolute_placement(placement)
                                      .normalize_refined(normalize)
                                      .refined_norm_scale(units)
                                      .fusion_kernel_size(fusionKernel));
      // Norm parameters away from 1 and 0, so a junction that ignored them would fail.
      {
        torch::NoGradGuard noGrad;
        block->image_norm->weight.uniform_(0.5, 1.5);
        block->image_norm->bias.uniform_(-0.5, 0.5);
        block->fuse_norm->weight.uniform_(0.5, 1.5);
        block->fuse_norm->bias.uniform_(-0.5, 0.5);
      }
      block->eval();
      const auto           upper = torch::randn({ 2, 8, 6, 8, 10 }) * 2.0;
      const auto           lower = torch::randn({ 2, 16, 3, 4, 5 }) * 2.0;
      const auto           image = torch::randn({ 2, 1, 12, 16, 20 });
      torch::InferenceMode inference;
      diva::SetCpuKernels(CpuKernels::Selected);
      const auto fused = block->forward(upper, lower, image);
      diva::SetCpuKernels(CpuKernels::LibTorch);
      const auto modules = block->forward(upper, lower, image);
      // attn: element-wise only; the polynomial exp is within 2e-7 relative, the sums in double: 1e-5 of its scale.
      ExpectRelativelyClose(fused.attention, modules.attention, 1e-5, what + ": attention");
      // fused / logits also pass through two norms and convolutions run by other kernels (oneDNN vs LibTorch's):
      // 1e-4 of their scale.
      ExpectRelativelyClose(fused.fused, modules.fused, 1e-4, what + ": fused");
      ExpectRelativelyClose(fused.logits, modules.logits, 1e-4, what + ": logits");
    }
  }
}

// FusedDivAttentionJunction's steps in LibTorch's operators, with the block's own modules.
diva::FusedJunctionResult
JunctionByOperators(diva::DivAttentionBlock & block,
                    const torch::Tensor &     upper,
                    const torch::Tensor &     lower,
                    const torch::Tensor &     convolved)
{
  const auto features = torch::leaky_relu(block->image_norm(convolved), 0.01);
  const auto attention = diva::DivAttentionBlockImpl::Attention(
    torch::sigmoid(upper), torch::sigmoid(lower), diva::SoftmaxAxis::Space, diva::AbsolutePlacement::OfResidual);
  const auto refined = block->refined_norm(attention * features * block->RefinedNormFactor(upper));
  return { attention, torch::leaky_relu(block->fuse_norm(block->fuse_conv(upper + lower + refined)), 0.01) };
}

// FusedDivAttentionJunction on its own: several tiles with a ragged last one (8 channels: 8192-voxel tiles), a raw
// image convolution far from zero mean (the image norm's statistics must not cancel), two samples; the same bits at one
// and two threads and with or without the attention map; what it refuses. Against the block's LibTorch operators with
// the tolerance of the test above (1e-4 of the output's scale: two norms and a product in another order).
TEST_F(InferenceKernels, FusedJunctionTilesTheFusionAndGivesTheSameBitsWhateverTheThreads)
{
  torch::manual_seed(41);
  diva::DivAttentionBlock block(diva::DivAttentionOptions(8, 16, 1).fusion_kernel_size(1));
  block->eval();
  torch::InferenceMode inference;
  block->image_norm->weight.uniform_(0.5, 1.5);
  block->image_norm->bias.uniform_(-0.5, 0.5);
  block->fuse_norm->weight.uniform_(0.5, 1.5);
  block->fuse_norm->bias.uniform_(-0.5, 0.5);
  const std::vector<int64_t> size{ 2, 8, 23, 23, 21 }; // 11109 voxels: a full tile and a ragged one
  const auto                 upper = torch::randn(size) * 2.0;
  const auto                 lower = torch::randn(size) * 2.0;
  const auto                 convolved = torch::randn(size) * 3.0 + 1000.0;

  auto p = block->JunctionParameters(upper, true);
  EXPECT_DOUBLE_EQ(p.refinedScale, 23.0 * 23.0 * 21.0 * std::sqrt(23.0 * 23.0 * 21.0)); // uniform-attention units
  ASSERT_TRUE(diva::FusedDivAttentionJunctionApplies(upper, lower, convolved, diva::SoftmaxAxis::Space, p));

  torch::set_num_threads(1);
  const auto one = diva::FusedDivAttentionJunction(upper, lower, convolved, p);
  torch::set_num_threads(2);
  const auto two = diva::FusedDivAttentionJunction(upper, lower, convolved, p);
  p.keepAttention = false;
  const auto withoutMap = diva::FusedDivAttentionJunction(upper, lower, convolved, p);
  EXPECT_TRUE(torch::equal(one.fused, two.fused)) << "one vs two threads";
  EXPECT_TRUE(torch::equal(one.attention, two.attention)) << "one vs two threads";
  EXPECT_TRUE(torch::equal(one.fused, withoutMap.fused)) << "the map is not needed for the output";
  EXPECT_FALSE(withoutMap.attention.defined());

  const auto expected = JunctionByOperators(block, upper, lower, convolved);
  ExpectRelativelyClose(one.attention, expected.attention, 1e-5, "attention");
  ExpectRelativelyClose(one.fused, expected.fused, 1e-4, "fused");

  p.fuseWeight = torch::randn({ 8, 8, 3, 3, 3 });
  EXPECT_FALSE(diva::FusedDivAttentionJunctionApplies(upper, lower, convolved, diva::SoftmaxAxis::Space, p))
    << "a 3^3 fusion";
  EXPECT_THROW(diva::FusedDivAttentionJunction(upper, lower, convolved, p), std::invalid_argument);
  p.fuseWeight = block->fuse_conv->weight;
  p.fuseNormBias = torch::zeros({ 4 });
  EXPECT_FALSE(diva::FusedDivAttentionJunctionApplies(upper, lower, convolved, diva::SoftmaxAxis::Space, p))
    << "a norm parameter of the wrong length";
  p.fuseNormBias = block->fuse_norm->bias;
  EXPECT_FALSE(diva::FusedDivAttentionJunctionApplies(upper, lower, convolved, diva::SoftmaxAxis::Channel, p))
    << "channel softmax";
}

// Channel counts that are not a multiple of the product's four-row block (6: one block and two single rows), one
// sample, a size that is one ragged tile: against LibTorch's operators as above.
TEST_F(InferenceKernels, FusedJunctionHandlesChannelCountsOutsideItsRegisterBlock)
{
  torch::manual_seed(43);
  for (const int64_t channels : { int64_t{ 6 }, int64_t{ 5 } })
  {
    diva::DivAttentionBlock block(diva::DivAttentionOptions(channels, 2 * channels, 2).fusion_kernel_size(1));
    block->eval();
    torch::InferenceMode       inference;
    const std::vector<int64_t> size{ 1, channels, 9, 10, 11 };
    const auto                 upper = torch::randn(size) * 2.0;
    const auto                 lower = torch::randn(size) * 2.0;
    const auto                 convolved = torch::randn(size) - 5.0;
    const auto                 actual =
      diva::FusedDivAttentionJunction(upper, lower, convolved, block->JunctionParameters(upper, true));
    const auto expected = JunctionByOperators(block, upper, lower, convolved);
    ExpectRelativelyClose(actual.attention, expected.attention, 1e-5,
                          std::to_string(channels) + " channels: attention");
    ExpectRelativelyClose(actual.fused, expected.fused, 1e-4, std::to_string(channels) + " channels: fused");
  }
}

TEST_F(InferenceKernels, FusedDivAttentionAppliesOnlyToTheSpatialSoftmaxWithoutRecording)
{
  const auto x = torch::randn({ 1, 4, 3, 4, 5 });
  {
    torch::NoGradGuard noGrad;
    EXPECT_TRUE(diva::FusedDivAttentionApplies(x, x, x, diva::SoftmaxAxis::Space));
    EXPECT_FALSE(diva::FusedDivAttentionApplies(x, x, x, diva::SoftmaxAxis::Channel)) << "channel softmax";
    EXPECT_FALSE(diva::FusedDivAttentionApplies(x, torch::randn({ 1, 4, 3, 4, 4 }), x, diva::SoftmaxAxis::Space))
      << "shapes differ";
    EXPECT_THROW(diva::FusedDivAttention(x, x, x[0], diva::AbsolutePlacement::OfResidual, true, 1e-5),
                 std::invalid_argument);
  }
  EXPECT_FALSE(diva::FusedDivAttentionApplies(x.clone().requires_grad_(), x, x, diva::SoftmaxAxis::Space))
    << "recording a gradient";
  EXPECT_TRUE(diva::FusedDivAttentionTrainingApplies(x.clone().requires_grad_(), x, x, diva::SoftmaxAxis::Space))
    << "the training form records";
}

// Training through the fused element-wise part (FusedDivAttentionWithGradients) gives the gradients LibTorch's
// operators give: of the three inputs (through the module: upper, lower, image) and of the convolution weights, for
// every reading of eq. 4 and M_ref's norm, with the loss reading the fused map only (attn's gradient undefined) or both
// outputs; the input gradients carry every term of the kernel's backward. Tolerance 1e-4 of each gradient's scale: the
// kernel sums in another order (double per block), its exp is a polynomial (2e-7 relative), and the convolutions around
// it run other kernels; a wrong term of any of the five gradient formulas (norm, softmax, absolute value, sigmoids,
// product) is off by far more.
TEST_F(InferenceKernels, FusedDivAttentionTrainsWithTheOperatorsGradients)
{
  for (const auto placement : { diva::AbsolutePlacement::OfResidual, diva::AbsolutePlacement::OfSoftmax })
  {
    for (const int variant : { 0, 1, 2 })
    {
      for (const bool attentionInLoss : { false, true })
      {
        const bool  normalize = variant != 2;
        const auto  units = variant == 0 ? diva::RefinedNormScale::UniformAttention : diva::RefinedNormScale::Absolute;
        std::string what = diva::ToString(placement) + (normalize ? ", " + diva::ToString(units) : ", as is") +
                           (attentionInLoss ? ", attn in the loss" : "");
        torch::manual_seed(41);
        diva::DivAttentionBlock block(diva::DivAttentionOptions(8, 16, 1)
                                        .prediction_channels(2)
                                        .absolute_placement(placement)
                                        .normalize_refined(normalize)
                                        .refined_norm_scale(units));
        const auto              upper = (torch::randn({ 2, 8, 6, 8, 10 }) * 2.0).requires_grad_();
        const auto              lower = (torch::randn({ 2, 16, 3, 4, 5 }) * 2.0).requires_grad_();
        const auto              image = torch::randn({ 2, 1, 12, 16, 20 }).requires_grad_();
        const auto              weights = torch::randn({ 2, 8, 6, 8, 10 });
        const auto              logitWeights = torch::randn({ 2, 2, 6, 8, 10 });
        auto                    gradients = [&](CpuKernels kernels)
        {
          diva::SetCpuKernels(kernels);
          block->zero_grad();
          for (const auto * input : { &upper, &lower, &image })
          {
            if (input->grad().defined())
            {
              input->grad().zero_();
            }
          }
          const auto result = block->forward(upper, lower, image);
          EXPECT_EQ(result.attention.grad_fn()->name().find("FusedDivAttention") != std::string::npos,
                    kernels == CpuKernels::Selected)
            << what << ": " << result.attention.grad_fn()->name();
          // attn is ~1e-3 here: scaled up so its gradient weighs as much as the fused map's.
          auto loss = (result.fused * weights).sum() + (result.logits * logitWeights).sum();
          if (attentionInLoss)
          {
            loss = loss + (result.attention * weights).sum() * 1e3;
          }
          loss.backward();
          std::vector<std::pair<std::string, torch::Tensor>> all{ { "upper", upper.grad().clone() },
                                                                  { "lower", lower.grad().clone() },
                                                                  { "image", image.grad().clone() } };
          for (const auto & parameter : block->named_parameters())
          {
            // Biases, and the norms' own parameters, sit right before an instance norm that cancels a per-channel
            // offset (and, for M_ref's scale-free norm, a per-channel gain): their gradients vanish analytically
            // and are float noise in both runs, so there is nothing to compare them by.
            const auto & name = parameter.key();
            if (name.find(".bias") == std::string::npos && name.find("_norm.") == std::string::npos)
            {
              all.emplace_back(name, parameter.value().grad().clone());
            }
          }
          return all;
        };
        const auto fused = gradients(CpuKernels::Selected);
        const auto reference = gradients(CpuKernels::LibTorch);
        ASSERT_EQ(fused.size(), reference.size());
        for (std::size_t i = 0; i < fused.size(); ++i)
        {
          ExpectRelativelyClose(fused[i].second, reference[i].second, 1e-4, what + ": " + fused[i].first);
        }
      }
    }
  }
}

} // namespace

namespace
{
// The networks' UNETR convolutions have no bias: training through the selected kernels must work without one and
// give LibTorch's gradients (the same 1e-5 of scale as above).
TEST_F(InferenceKernels, TrainingWithoutABiasGivesLibTorchsGradients)
{
  torch::manual_seed(38);
  const auto input = torch::randn({ 1, 16, 6, 6, 48 });
  const auto weights =
    std::vector<torch::Tensor>{ torch::randn({ 16, 16, 3, 3, 3 }) * 0.1, torch::randn({ 16, 8, 2, 2, 2 }) };
  for (size_t kind = 0; kind < weights.size(); ++kind)
  {
    const auto gradients = [&](CpuKernels kernels)
    {
      diva::SetCpuKernels(kernels);
      auto       x = input.clone().requires_grad_();
      auto       w = weights[kind].clone().requires_grad_();
      const auto output =
        kind == 0 ? diva::Convolution3d(x, w, {}, { 1, 1, 1 }, { 1, 1, 1 }, { 1, 1, 1 }, 1)
                  : diva::TransposedConvolution3d(x, w, {}, { 2, 2, 2 }, { 0, 0, 0 }, { 0, 0, 0 }, 1, { 1, 1, 1 });
      (output * output).sum().backward();
      return std::vector<torch::Tensor>{ x.grad(), w.grad() };
    };
    const auto        selected = gradients(CpuKernels::Selected);
    const auto        libtorch = gradients(CpuKernels::LibTorch);
    const std::string what = kind == 0 ? "3^3 convolution" : "transposed convolution";
    ExpectNearLibTorch(selected[0], libtorch[0], what + ": input gradient");
    ExpectNearLibTorch(selected[1], libtorch[1], what + ": weight gradient");
  }
}
} // namespace

namespace
{
// The 1x1x1 convolution's inference path shares the voxels between the threads in blocks of 4096 (one matrix product
// each, into the strided output): a volume of several blocks with a ragged last one, with and without a bias, must
// give torch::conv3d's values (1e-5 of scale: the same dot products over the channels).
TEST_F(InferenceKernels, PointwiseConvolutionSharesTheVoxelsBetweenThreadsForInference)
{
  torch::manual_seed(39);
  torch::set_num_threads(2);
  const auto input = torch::randn({ 1, 12, 20, 20, 21 }); // 8400 voxels: blocks of 4096, 4096 and 208
  const auto weight = torch::randn({ 5, 12, 1, 1, 1 });
  for (const bool withBias : { true, false })
  {
    const auto           bias = withBias ? torch::randn({ 5 }) : torch::Tensor();
    torch::InferenceMode inference;
    diva::SetCpuKernels(CpuKernels::Selected);
    const auto selected = diva::Convolution3d(input, weight, bias, { 1, 1, 1 }, { 0, 0, 0 }, { 1, 1, 1 }, 1);
    ExpectNearLibTorch(selected, torch::conv3d(input, weight, bias), withBias ? "with bias" : "without bias");
  }
}
} // namespace

namespace
{
// A temporary's memory is reused only when nothing else refers to it; an lvalue is never written.
TEST_F(InferenceKernels, TheNormWritesIntoATemporaryOnlyWhenNothingElseSeesIt)
{
  torch::manual_seed(40);
  torch::nn::InstanceNorm3d norm(torch::nn::InstanceNorm3dOptions(3).affine(true));
  const auto                input = torch::randn({ 1, 3, 5, 6, 7 });
  torch::InferenceMode      inference;
  diva::SetCpuKernels(CpuKernels::Selected);
  const auto expected = diva::FusedInstanceNormalization(input, norm->weight, norm->bias, 1e-5, {}, 0.01);

  auto         alone = input.clone();
  const void * aloneMemory = alone.data_ptr();
  const auto   reused = diva::InstanceNorm3d(norm, std::move(alone), {}, 0.01);
  EXPECT_EQ(reused.data_ptr(), aloneMemory) << "a uniquely owned temporary is overwritten";
  EXPECT_TRUE(torch::equal(reused, expected));

  auto       shared = input.clone();
  const auto keeper = shared; // another owner: its values must survive
  const auto fresh = diva::InstanceNorm3d(norm, std::move(shared), {}, 0.01);
  EXPECT_NE(fresh.data_ptr(), keeper.data_ptr());
  EXPECT_TRUE(torch::equal(keeper, input)) << "a tensor someone else holds is never written";
  EXPECT_TRUE(torch::equal(fresh, expected));

  const auto lvalue = input.clone();
  const auto copy = diva::InstanceNorm3d(norm, lvalue, {}, 0.01);
  EXPECT_NE(copy.data_ptr(), lvalue.data_ptr());
  EXPECT_TRUE(torch::equal(lvalue, input)) << "an lvalue argument is never written";
}
} // namespace

namespace
{
// Eq. 1's composition (projection folded into the up-convolution) has no backward: with frozen weights but trainable
// bias the module must still take the differentiable path, so the bias gets its gradient.
TEST_F(InferenceKernels, TrainableBiasesKeepEquation1Differentiable)
{
  torch::manual_seed(42);
  diva::SetCpuKernels(CpuKernels::Selected);
  diva::DivAttentionBlock block(diva::DivAttentionOptions(4, 8, 1));
  for (auto & parameter : block->parameters())
  {
    parameter.set_requires_grad(false);
  }
  block->project->bias.set_requires_grad(true); // the one trainable operand of eq. 1
  const auto result =
    block->forward(torch::randn({ 1, 4, 6, 6, 6 }), torch::randn({ 1, 8, 3, 3, 3 }), torch::randn({ 1, 1, 6, 6, 6 }));
  result.fused.sum().backward();
  ASSERT_TRUE(block->project->bias.grad().defined()) << "the projection's bias got no gradient";
  EXPECT_GT(block->project->bias.grad().abs().sum().item<double>(), 0.0);
}
} // namespace
