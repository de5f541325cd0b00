// The CPU kernel selection (divaCpuKernelSelection.h) computes what LibTorch's own kernels compute, values and
// gradients, for every convolution shape the networks use, and the networks give the same output either way.
#include "AutogradGraph.h"
#include "ScopedCpuKernels.h"
#include "divaCountedLayers.h"
#include "divaCpuKernelSelection.h"
#include "divaDivAttentionBlock.h"
#include "divaUNETR.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ostream>
#include <string>
#include <vector>

namespace
{
using diva::CpuKernels;

// Two threads: the linear layer is selected only with more than one (it then runs on oneDNN). The choice and the
// thread count are restored after each test.
class CpuKernelSelection : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    torch::set_num_threads(2);
  }

private:
  ScopedCpuKernels m_Restore;
};

// Float32 sums over up to 27 * 64 products in another order: they agree to ~1e-6 of the largest magnitude; 1e-4
// leaves room for oneDNN's blocked accumulation and still fails on any wrong tap, stride or channel.
void
ExpectClose(const torch::Tensor & actual, const torch::Tensor & expected, const char * what, double tolerance = 1e-4)
{
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  EXPECT_LE((actual - expected).abs().max().item<double>(), tolerance * scale) << what;
}

struct ConvolutionCase
{
  const char * name;
  int64_t      batch, in, out, side, kernel, stride, padding, dilation, groups;
  bool         bias;
};

// Readable, deterministic test names and values (CTest lists the value next to each name).
void
PrintTo(const ConvolutionCase & c, std::ostream * os)
{
  *os << c.name << " (batch " << c.batch << ", " << c.in << "->" << c.out << ", kernel " << c.kernel << ", stride "
      << c.stride << ", dilation " << c.dilation << ", groups " << c.groups << (c.bias ? ", bias)" : ", no bias)");
}

class ConvolutionShapes
    : public CpuKernelSelection
    , public ::testing::WithParamInterface<ConvolutionCase>
{
};

TEST_P(ConvolutionShapes, MatchLibTorchInValuesAndGradients)
{
  const auto c = GetParam();
  torch::manual_seed(3);
  const auto input = torch::randn({ c.batch, c.in, c.side, c.side + 1, c.side + 2 });
  const auto weight = torch::randn({ c.out, c.in / c.groups, c.kernel, c.kernel, c.kernel }) * 0.2;
  const auto bias = c.bias ? torch::randn({ c.out }) : torch::Tensor();
  const auto upstream =
    torch::randn_like(torch::conv3d(input, weight, bias, c.stride, c.padding, c.dilation, c.groups));

  std::vector<torch::Tensor> results[2];
  std::string                gradientFunction[2];
  const CpuKernels           kernels[2] = { CpuKernels::LibTorch, CpuKernels::Selected };
  for (int k = 0; k < 2; ++k)
  {
    diva::SetCpuKernels(kernels[k]);
    auto       x = input.clone().requires_grad_();
    auto       w = weight.clone().requires_grad_();
    auto       b = c.bias ? bias.clone().requires_grad_() : torch::Tensor();
    const auto y = diva::Convolution3d(x, w, b, { c.stride, c.stride, c.stride }, { c.padding, c.padding, c.padding },
                                       { c.dilation, c.dilation, c.dilation }, c.groups);
    gradientFunction[k] = y.grad_fn()->name();
    (y * upstream).sum().backward();
    results[k] = { y.detach(), x.grad(), w.grad() };
    if (c.bias)
    {
      results[k].push_back(b.grad());
    }
  }
  if (at::hasMKLDNN())
  {
    // The selection really ran another kernel (oneDNN's or a matrix product), not LibTorch's dispatch again.
    EXPECT_NE(gradientFunction[1], gradientFunction[0]);
  }
  const char * names[] = { "output", "input gradient", "weight gradient", "bias gradient" };
  for (std::size_t i = 0; i < results[0].size(); ++i)
  {
    ExpectClose(results[1][i], results[0][i], names[i]);
  }
}

// The shape families of the networks: a one-channel stem; a small N*C*D*H that LibTorch sends to im2col; mUnet's
// strided down-sampling; ESPNet's dilated ESP branches; batch 2 with groups; 1x1x1 (one matrix product) with and
// without bias, and over 24 x 25 x 26 voxels (several ranges per thread and two gradient blocks per sample, the last
// one ragged); the transformer's patch embedding (kernel = stride).
INSTANTIATE_TEST_SUITE_P(NetworkShapes,
                         ConvolutionShapes,
                         ::testing::Values(ConvolutionCase{ "Stem", 1, 1, 8, 12, 3, 1, 1, 1, 1, true },
                                           ConvolutionCase{ "Im2colShape", 1, 16, 16, 6, 3, 1, 1, 1, 1, true },
                                           ConvolutionCase{ "Strided", 1, 8, 16, 9, 3, 2, 1, 1, 1, true },
                                           ConvolutionCase{ "Dilated", 1, 8, 8, 10, 3, 1, 2, 2, 1, false },
                                           ConvolutionCase{ "GroupedBatchTwo", 2, 8, 8, 6, 3, 1, 1, 1, 2, true },
                                           ConvolutionCase{ "Pointwise", 1, 12, 5, 7, 1, 1, 0, 1, 1, true },
                                           ConvolutionCase{ "PointwiseBatchTwo", 2, 12, 5, 7, 1, 1, 0, 1, 1, false },
                                           ConvolutionCase{ "PointwiseSeveralBlocks", 2, 12, 5, 24, 1, 1, 0, 1, 1,
                                                            true },
                                           ConvolutionCase{ "PatchEmbedding", 1, 6, 12, 8, 2, 2, 0, 1, 1, true }),
                         [](const ::testing::TestParamInfo<ConvolutionCase> & info)
                         { return std::string(info.param.name); });

TEST_F(CpuKernelSelection, LinearMatchesLibTorchInValuesAndGradients)
{
  torch::manual_seed(5);
  const auto                 input = torch::randn({ 2, 27, 48 });
  const auto                 weight = torch::randn({ 40, 48 }) * 0.2;
  const auto                 bias = torch::randn({ 40 });
  const auto                 upstream = torch::randn({ 2, 27, 40 });
  std::vector<torch::Tensor> results[2];
  const CpuKernels           kernels[2] = { CpuKernels::LibTorch, CpuKernels::Selected };
  for (int k = 0; k < 2; ++k)
  {
    diva::SetCpuKernels(kernels[k]);
    auto       x = input.clone().requires_grad_();
    auto       w = weight.clone().requires_grad_();
    auto       b = bias.clone().requires_grad_();
    const auto y = diva::Linear(x, w, b);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{ 2, 27, 40 }));
    // The attention block splits the last axis of the qkv projection with view(): it must stay possible.
    EXPECT_NO_THROW(y.view({ 2, 27, 2, 4, 5 }));
    if (kernels[k] == CpuKernels::Selected && at::hasMKLDNN())
    {
      // oneDNN's output is [out, rows]; the selection returns its transposed view, not LibTorch's row-major result.
      EXPECT_FALSE(y.is_contiguous());
    }
    (y * upstream).sum().backward();
    results[k] = { y.detach(), x.grad(), w.grad(), b.grad() };
  }
  const char * names[] = { "output", "input gradient", "weight gradient", "bias gradient" };
  for (std::size_t i = 0; i < 4; ++i)
  {
    ExpectClose(results[1][i], results[0][i], names[i]);
  }
}

// The 1x1x1 convolution's output and input gradient are one matrix product per fixed block of voxels, its weight and
// bias gradients sums of fixed blocks in block order (divaPointwiseConvolution3d.h): one thread or two, training gives
// the same bits. A split that follows the thread count shows on BLAS kernels that round a row by where it lies in the
// call (OpenBLAS's Haswell and Zen ones, what AVX2 CPUs get): CTest runs this test on them too (".openblas-haswell").
TEST_F(CpuKernelSelection, PointwiseGradientsAreTheSameBitsWhateverTheThreads)
{
  torch::manual_seed(8);
  const auto input = torch::randn({ 2, 16, 20, 21, 22 }); // 9240 voxels: two gradient blocks per sample
  const auto weight = torch::randn({ 8, 16, 1, 1, 1 }) * 0.2;
  const auto bias = torch::randn({ 8 });
  const auto upstream = torch::randn({ 2, 8, 20, 21, 22 });
  diva::SetCpuKernels(CpuKernels::Selected);
  std::vector<torch::Tensor> results[2];
  for (int threads = 1; threads <= 2; ++threads)
  {
    torch::set_num_threads(threads);
    auto       x = input.clone().requires_grad_();
    auto       w = weight.clone().requires_grad_();
    auto       b = bias.clone().requires_grad_();
    const auto y = diva::Convolution3d(x, w, b, { 1, 1, 1 }, { 0, 0, 0 }, { 1, 1, 1 }, 1);
    // The toolkit's autograd function ran, not LibTorch's addmm or convolution.
    EXPECT_NE(y.grad_fn()->name().find("PointwiseConvolution3d"), std::string::npos) << y.grad_fn()->name();
    (y * upstream).sum().backward();
    results[threads - 1] = { y.detach(), x.grad(), w.grad(), b.grad() };
  }
  const char * names[] = { "output", "input gradient", "weight gradient", "bias gradient" };
  for (std::size_t i = 0; i < 4; ++i)
  {
    EXPECT_TRUE(torch::equal(results[0][i], results[1][i])) << names[i];
  }
}

// In training the module runs eq. 1 as one transposed convolution with the composed weight, its 1x1x1 convolutions and
// up-convolution inside the selection's autograd functions and eqs. 2-5 in the fused function: every parameter's
// gradient, and the lower path's, must be what LibTorch's own layers give.
TEST_F(CpuKernelSelection, DivAttentionBlockTrainsWithLibTorchsGradients)
{
  torch::manual_seed(13);
  diva::DivAttentionBlock                            block(diva::DivAttentionOptions(8, 16, 1).prediction_channels(2));
  const auto                                         upper = torch::randn({ 1, 8, 12, 12, 12 });
  const auto                                         lower = torch::randn({ 1, 16, 6, 6, 6 });
  const auto                                         image = torch::randn({ 1, 1, 24, 24, 24 });
  std::vector<std::pair<std::string, torch::Tensor>> gradients[2];
  const CpuKernels                                   kernels[2] = { CpuKernels::LibTorch, CpuKernels::Selected };
  for (int k = 0; k < 2; ++k)
  {
    diva::SetCpuKernels(kernels[k]);
    block->zero_grad();
    auto       lowerPath = lower.clone().requires_grad_();
    const auto result = block(upper, lowerPath, image);
    if (kernels[k] == CpuKernels::Selected && at::hasMKLDNN())
    {
      // The selection really composed eq. 1: one up-convolution kernel, and 1x1x1 products only for the fusion and
      // the head (the projection is folded into the up-convolution).
      EXPECT_EQ(diva::testing::CountGraphNodes(result.logits, "NonOverlappingTransposedConvolution3d"), 1u);
      EXPECT_EQ(diva::testing::CountGraphNodes(result.logits, "PointwiseConvolution3d"), 2u);
    }
    // Weighted sums, so that every output voxel's gradient differs; the attention map too (never detached).
    const auto weights = [](const torch::Tensor & t) { return torch::linspace(-1.0, 2.0, t.numel()).view(t.sizes()); };
    (result.logits * weights(result.logits))
      .sum()
      .add((result.fused * weights(result.fused)).sum())
      .add((result.attention * weights(result.attention)).sum() * 1e3)
      .backward();
    gradients[k].emplace_back("lower path", lowerPath.grad());
    for (const auto & item : block->named_parameters())
    {
      gradients[k].emplace_back(item.key(), item.value().grad().clone());
    }
  }
  ASSERT_EQ(gradients[0].size(), gradients[1].size());
  for (std::size_t i = 0; i < gradients[0].size(); ++i)
  {
    ASSERT_TRUE(gradients[1][i].second.defined()) << gradients[1][i].first;
    // Two norms, a softmax and sums over 1728 voxels in another order: 1e-4 of each gradient's largest magnitude.
    ExpectClose(gradients[1][i].second, gradients[0][i].second, gradients[1][i].first.c_str());
  }
}

TEST_F(CpuKernelSelection, ReflectPaddedConvolutionKeepsItsPaddingMode)
{
  // Counted() hands only zero-padded convolutions to the selection; any other padding mode stays the module's own.
  torch::nn::Conv3d conv(torch::nn::Conv3dOptions(3, 4, 3).padding(1).padding_mode(torch::kReflect));
  const auto        input = torch::randn({ 1, 3, 6, 6, 6 });
  diva::SetCpuKernels(CpuKernels::Selected);
  torch::NoGradGuard noGrad;
  ExpectClose(diva::Counted(conv, input), conv->forward(input), "reflect-padded convolution");
  const auto zeroPadded = torch::conv3d(input, conv->weight, conv->bias, 1, 1);
  EXPECT_GT((diva::Counted(conv, input) - zeroPadded).abs().max().item<double>(), 1e-3);
}

TEST_F(CpuKernelSelection, UNETRGivesTheSameOutputWithEitherKernels)
{
  torch::manual_seed(11);
  diva::UNETR network(diva::UNETROptions::Preset("small").image_size(32));
  network->eval();
  const auto         image = torch::randn({ 1, 1, 32, 32, 32 });
  torch::NoGradGuard noGrad;
  diva::SetCpuKernels(CpuKernels::LibTorch);
  const auto reference = network->Segment(image).logits;
  diva::SetCpuKernels(CpuKernels::Selected);
  const auto selected = network->Segment(image).logits;
  // ~40 layers deep, each within float rounding: 1e-3 of the logits' range.
  ExpectClose(selected, reference, "UNETR logits", 1e-3);
}

TEST(CpuKernels, ParseNamesEveryChoiceAndRefusesOthers)
{
  EXPECT_EQ(diva::ParseCpuKernels("libtorch"), CpuKernels::LibTorch);
  EXPECT_EQ(diva::ParseCpuKernels("direct"), CpuKernels::Direct);
  EXPECT_EQ(diva::ParseCpuKernels("selected"), CpuKernels::Selected);
  EXPECT_EQ(diva::ParseCpuKernels("winograd"), CpuKernels::Winograd);
  EXPECT_EQ(diva::ToString(CpuKernels::LibTorch), "libtorch");
  EXPECT_EQ(diva::ToString(CpuKernels::Direct), "direct");
  EXPECT_EQ(diva::ToString(CpuKernels::Selected), "selected");
  EXPECT_EQ(diva::ToString(CpuKernels::Winograd), "winograd");
  try
  {
    diva::ParseCpuKernels("fast");
    FAIL() << "'fast' was accepted";
  }
  catch (const std::invalid_argument & error)
  {
    EXPECT_NE(std::string(error.what()).find("'fast'"), std::string::npos) << error.what();
  }
}

} // namespace
