// The Winograd F(2,3) convolution (divaWinogradConvolution3d.h) computes what a direct 3x3x3 convolution computes,
// for every shape its tiling has an edge case for, and the kernel selection uses it only where it may.
#include "ScopedCpuKernels.h"
#include "divaCpuKernelSelection.h"
#include "divaWinogradConvolution3d.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <ostream>
#include <string>

namespace
{
using diva::CpuKernels;

// F(2,3) sums the same 27 * Cin products as a direct convolution, regrouped by transforms whose entries are 0, +-1 and
// +-1/2: the difference is float rounding, ~1e-6 of the output's scale for these channel counts. 1e-4 of the scale
// leaves room for that and still fails on any wrong tap, tile edge, channel or bias.
void
ExpectCloseToDirect(const torch::Tensor & actual, const torch::Tensor & expected, const std::string & what)
{
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  EXPECT_LE((actual - expected).abs().max().item<double>(), 1e-4 * scale) << what;
}

struct WinogradCase
{
  const char * name;
  int64_t      batch, in, out, depth, height, width;
  bool         bias;
};

void
PrintTo(const WinogradCase & c, std::ostream * os)
{
  *os << c.name << " (batch " << c.batch << ", " << c.in << "->" << c.out << ", " << c.depth << "x" << c.height << "x"
      << c.width << (c.bias ? ", bias)" : ", no bias)");
}

class WinogradShapes : public ::testing::TestWithParam<WinogradCase>
{
protected:
  void
  SetUp() override
  {
    if (!diva::WinogradConvolution3dIsAvailable())
    {
      GTEST_SKIP() << "this CPU has no AVX2 + FMA: the Winograd kernel is never selected here";
    }
  }
};

TEST_P(WinogradShapes, MatchADirectConvolution)
{
  const auto c = GetParam();
  torch::manual_seed(21);
  const auto           input = torch::randn({ c.batch, c.in, c.depth, c.height, c.width });
  const auto           weight = torch::randn({ c.out, c.in, 3, 3, 3 }) * 0.2;
  const auto           bias = c.bias ? torch::randn({ c.out }) : torch::Tensor();
  torch::InferenceMode inference;
  const auto           expected = torch::conv3d(input, weight, bias, 1, 1);
  ExpectCloseToDirect(diva::WinogradConvolution3d(input, weight, bias), expected, c.name);
}

// Odd and even sizes on every axis (a tile's second output dropped at the far edge); widths of one, two and three
// blocks of 24 tiles (the last block partly padding, and its last store cut short); channel counts that are not
// multiples of the 4-channel register block; batch 2; one voxel.
INSTANTIATE_TEST_SUITE_P(TileEdges,
                         WinogradShapes,
                         ::testing::Values(WinogradCase{ "Even", 1, 8, 8, 8, 8, 8, true },
                                           WinogradCase{ "OddEverywhere", 1, 5, 7, 7, 9, 11, true },
                                           WinogradCase{ "TwoBlocksWide", 1, 4, 4, 3, 4, 53, false },
                                           WinogradCase{ "ThreeBlocksExactly", 1, 3, 6, 2, 3, 144, true },
                                           WinogradCase{ "OneChannel", 1, 1, 1, 5, 6, 7, true },
                                           WinogradCase{ "BatchTwo", 2, 6, 10, 6, 5, 9, true },
                                           WinogradCase{ "OneVoxel", 1, 4, 3, 1, 1, 1, true },
                                           WinogradCase{ "NetworkSized", 1, 32, 32, 16, 16, 20, true }),
                         [](const ::testing::TestParamInfo<WinogradCase> & info)
                         { return std::string(info.param.name); });

class WinogradConvolution3d : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    if (!diva::WinogradConvolution3dIsAvailable())
    {
      GTEST_SKIP() << "this CPU has no AVX2 + FMA: the Winograd kernel is never selected here";
    }
  }

private:
  ScopedCpuKernels m_Restore; // the tests change the kernel choice and the thread count
};

TEST_F(WinogradConvolution3d, ReadsStridedInputsAsTheirValues)
{
  torch::manual_seed(22);
  // A permuted view: the kernel must read values, not the view's memory order.
  const auto           input = torch::randn({ 1, 9, 10, 8, 6 }).permute({ 0, 1, 4, 3, 2 });
  const auto           weight = torch::randn({ 8, 9, 3, 3, 3 }) * 0.2;
  torch::InferenceMode inference;
  ASSERT_FALSE(input.is_contiguous());
  ExpectCloseToDirect(diva::WinogradConvolution3d(input, weight, torch::Tensor()),
                      torch::conv3d(input, weight, {}, 1, 1), "permuted input");
}

TEST_F(WinogradConvolution3d, IsBitIdenticalAtOneAndTwoThreads)
{
  torch::manual_seed(23);
  const auto           input = torch::randn({ 1, 16, 18, 18, 50 });
  const auto           weight = torch::randn({ 16, 16, 3, 3, 3 }) * 0.1;
  const auto           bias = torch::randn({ 16 });
  torch::InferenceMode inference;
  torch::set_num_threads(1);
  const auto one = diva::WinogradConvolution3d(input, weight, bias);
  torch::set_num_threads(2);
  const auto two = diva::WinogradConvolution3d(input, weight, bias);
  EXPECT_TRUE(torch::equal(one, two)) << "every output is computed by one thread in a fixed order";
}

TEST_F(WinogradConvolution3d, AppliesOnlyToUnrecordedStrideOnePaddingOneThreeCubedFloatConvolutions)
{
  const auto input = torch::randn({ 1, 8, 6, 6, 6 });
  const auto weight = torch::randn({ 8, 8, 3, 3, 3 });
  const auto bias = torch::randn({ 8 });
  const auto applies = [](const torch::Tensor & x, const torch::Tensor & w, const torch::Tensor & b, int64_t stride = 1,
                          int64_t padding = 1, int64_t dilation = 1, int64_t groups = 1)
  {
    return diva::WinogradConvolution3dApplies(x, w, b, { stride, stride, stride }, { padding, padding, padding },
                                              { dilation, dilation, dilation }, groups);
  };
  {
    torch::NoGradGuard noGrad;
    EXPECT_TRUE(applies(input, weight, bias));
    EXPECT_TRUE(applies(input, weight, torch::Tensor()));
    EXPECT_FALSE(applies(input, weight, bias, 2)) << "stride 2";
    EXPECT_FALSE(applies(input, weight, bias, 1, 0)) << "padding 0";
    EXPECT_FALSE(applies(input, weight, bias, 1, 2, 2)) << "dilation 2";
    EXPECT_FALSE(applies(input, torch::randn({ 8, 4, 3, 3, 3 }), bias, 1, 1, 1, 2)) << "groups 2";
    EXPECT_FALSE(applies(input, torch::randn({ 8, 8, 1, 1, 1 }), bias, 1, 0)) << "1x1x1 kernel";
    EXPECT_FALSE(applies(input.to(torch::kDouble), weight.to(torch::kDouble), bias.to(torch::kDouble))) << "float64";
    EXPECT_FALSE(applies(input, torch::randn({ 8, 7, 3, 3, 3 }), bias)) << "channels differ";
    EXPECT_FALSE(applies(input[0], weight, bias)) << "4D input";
    // Refused shapes are an error, not a silent wrong answer.
    EXPECT_THROW(diva::WinogradConvolution3d(input, torch::randn({ 8, 7, 3, 3, 3 }), bias), std::invalid_argument);
  }
  // Autograd recording: the kernel has no backward, so a convolution whose weight needs a gradient is not its.
  const auto trained = weight.clone().requires_grad_();
  EXPECT_FALSE(applies(input, trained, bias));
  torch::NoGradGuard noGrad;
  EXPECT_TRUE(applies(input, trained, bias)) << "no gradient asked under NoGradGuard";
}

TEST_F(WinogradConvolution3d, FillsItsBlocksOnlyWhereWideEnough)
{
  const auto weight = torch::randn({ 16, 16, 3, 3, 3 });
  EXPECT_TRUE(diva::WinogradConvolution3dFillsItsBlocks(torch::empty({ 1, 16, 96, 96, 96 }), weight));
  EXPECT_TRUE(diva::WinogradConvolution3dFillsItsBlocks(torch::empty({ 1, 16, 8, 8, 48 }), weight));
  EXPECT_FALSE(diva::WinogradConvolution3dFillsItsBlocks(torch::empty({ 1, 16, 24, 24, 24 }), weight))
    << "half a block";
  EXPECT_FALSE(diva::WinogradConvolution3dFillsItsBlocks(torch::empty({ 1, 16, 48, 48, 52 }), weight))
    << "26 of 48 tiles";
  EXPECT_FALSE(
    diva::WinogradConvolution3dFillsItsBlocks(torch::empty({ 1, 4, 96, 96, 96 }), torch::randn({ 16, 4, 3, 3, 3 })))
    << "4 input channels";
  EXPECT_FALSE(
    diva::WinogradConvolution3dFillsItsBlocks(torch::empty({ 1, 16, 96, 96, 96 }), torch::randn({ 2, 16, 3, 3, 3 })))
    << "2 output channels";
}

// The selection's rule follows the instruction set oneDNN runs here, not one CPU's figures: Winograd only against an
// AVX2 (or older) direct convolution. CTest runs this test a second time with oneDNN held to AVX2 (".avx2"), so both
// branches are checked on an AVX-512 machine.
TEST_F(WinogradConvolution3d, IsFasterOnlyAgainstADirectConvolutionWithoutAvx512)
{
  const auto wide = torch::empty({ 1, 16, 96, 96, 96 });
  const auto weight = torch::randn({ 16, 16, 3, 3, 3 });
  const bool avx512 = diva::DirectConvolutionUsesAvx512();
  EXPECT_EQ(diva::WinogradConvolution3dIsFaster(wide, weight), !avx512);
  EXPECT_FALSE(diva::WinogradConvolution3dIsFaster(torch::empty({ 1, 16, 24, 24, 24 }), weight)) << "half a block";
  const char * limit = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (limit == nullptr)
  {
    limit = std::getenv("DNNL_MAX_CPU_ISA");
  }
  const std::string held = limit != nullptr ? limit : "";
  if (held.rfind("AVX2", 0) == 0 || held.rfind("avx2", 0) == 0 || held == "SSE41" || held == "AVX")
  {
    EXPECT_FALSE(avx512) << "oneDNN held to " << held;
  }
  else if (held.empty())
  {
#if defined(__x86_64__)
    // oneDNN's own test for AVX-512 (avx512_core): F, BW, VL and DQ.
    EXPECT_EQ(avx512, __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"));
#endif
  }
}

TEST_F(WinogradConvolution3d, IsWhatTheSelectionRunsForInferenceAndForTrainingWithLibTorchsGradients)
{
  torch::manual_seed(24);
  const auto input = torch::randn({ 1, 16, 8, 8, 48 });
  const auto weight = torch::randn({ 16, 16, 3, 3, 3 }) * 0.1;
  const auto bias = torch::randn({ 16 });
  const auto convolve = [&](const torch::Tensor & x, const torch::Tensor & w, const torch::Tensor & b) {
    return diva::Convolution3d(x, w, b, { 1, 1, 1 }, { 1, 1, 1 }, { 1, 1, 1 }, 1);
  };
  torch::Tensor winograd, forced, selected, direct;
  {
    torch::InferenceMode inference;
    winograd = diva::WinogradConvolution3d(input, weight, bias);
    diva::SetCpuKernels(CpuKernels::Winograd);
    forced = convolve(input, weight, bias);
    diva::SetCpuKernels(CpuKernels::Selected);
    selected = convolve(input, weight, bias);
    diva::SetCpuKernels(CpuKernels::Direct);
    direct = convolve(input, weight, bias);
  }
  EXPECT_TRUE(torch::equal(forced, winograd)) << "inference with CpuKernels::Winograd runs the Winograd kernel";
  EXPECT_FALSE(torch::equal(direct, winograd)) << "CpuKernels::Direct runs another kernel (other rounding)";
  // The default selection: the Winograd kernel where it is faster on this CPU, the direct one elsewhere.
  EXPECT_TRUE(torch::equal(selected, diva::WinogradConvolution3dIsFaster(input, weight) ? winograd : direct))
    << "the default selection follows WinogradConvolution3dIsFaster";
  ExpectCloseToDirect(direct, winograd, "direct vs Winograd");
  // Training: the Winograd forward inside an autograd function whose gradients are LibTorch's convolution_backward,
  // so they match the direct (oneDNN) path's to float rounding, and every operand gets one.
  const auto gradients = [&](CpuKernels kernels)
  {
    diva::SetCpuKernels(kernels);
    auto x = input.clone().requires_grad_();
    auto w = weight.clone().requires_grad_();
    auto b = bias.clone().requires_grad_();
    auto output = convolve(x, w, b);
    (output * torch::linspace(-1.0, 1.0, output.numel()).view(output.sizes())).sum().backward();
    return std::vector<torch::Tensor>{ output.detach(), x.grad(), w.grad(), b.grad() };
  };
  const auto trained = gradients(CpuKernels::Winograd);
  const auto reference = gradients(CpuKernels::Direct);
  EXPECT_TRUE(torch::equal(trained[0], winograd)) << "the training forward is the Winograd kernel's";
  const char * names[] = { "output", "input gradient", "weight gradient", "bias gradient" };
  for (size_t k = 0; k < trained.size(); ++k)
  {
    ASSERT_TRUE(trained[k].defined()) << names[k];
    ExpectCloseToDirect(trained[k], reference[k], names[k]);
  }
}

} // namespace
