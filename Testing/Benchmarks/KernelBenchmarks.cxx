// The LibTorch kernels the networks spend their time in, as GFLOP/s: they show whether the BLAS and allocator
// choices of the build (Documentation/Performance.md) took effect.
#include "itkDivAttentionRuntime.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace
{
void
UseThreads(benchmark::State & state)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
}

void
ReportFlops(benchmark::State & state, double flopsPerIteration)
{
  state.counters["GFLOP/s"] =
    benchmark::Counter(flopsPerIteration * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void
BM_Matmul1024(benchmark::State & state)
{
  UseThreads(state);
  torch::NoGradGuard noGrad;
  const auto         a = torch::randn({ 1024, 1024 });
  const auto         b = torch::randn({ 1024, 1024 });
  benchmark::DoNotOptimize(torch::mm(a, b).data_ptr()); // warm-up: first touch of buffers, BLAS thread start
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(torch::mm(a, b).data_ptr());
  }
  ReportFlops(state, 2.0 * 1024.0 * 1024.0 * 1024.0);
}

// Direct convolution FLOPs: 2 * Cout * Cin * k^3 * output voxels.
void
Conv3d(benchmark::State & state, int64_t channelsIn, int64_t channelsOut, int64_t side)
{
  UseThreads(state);
  torch::InferenceMode inference;
  const auto           input = torch::randn({ 1, channelsIn, side, side, side });
  const auto           weight = torch::randn({ channelsOut, channelsIn, 3, 3, 3 }) * 0.05;
  const auto           bias = torch::zeros({ channelsOut });
  benchmark::DoNotOptimize(torch::conv3d(input, weight, bias, 1, 1).data_ptr()); // warm-up (see Performance.md)
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(torch::conv3d(input, weight, bias, 1, 1).data_ptr());
  }
  const double voxels = static_cast<double>(side * side * side);
  ReportFlops(state, 2.0 * static_cast<double>(channelsOut * channelsIn) * 27.0 * voxels);
}

void
BM_Conv3d_32to32_96(benchmark::State & state)
{
  Conv3d(state, 32, 32, 96);
}

void
BM_Conv3d_64to64_48(benchmark::State & state)
{
  Conv3d(state, 64, 64, 48);
}

// Transposed convolution, kernel = stride = 2 (the U-Net's and UNETR's upsampling): each input voxel writes a 2^3
// block, so FLOPs = 2 * Cin * Cout * 8 * input voxels.
void
BM_ConvTranspose3d_64to32_48to96(benchmark::State & state)
{
  UseThreads(state);
  torch::InferenceMode inference;
  const auto           input = torch::randn({ 1, 64, 48, 48, 48 });
  const auto           weight = torch::randn({ 64, 32, 2, 2, 2 }) * 0.05;
  const auto           bias = torch::zeros({ 32 });
  benchmark::DoNotOptimize(torch::conv_transpose3d(input, weight, bias, 2).data_ptr()); // warm-up
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(torch::conv_transpose3d(input, weight, bias, 2).data_ptr());
  }
  ReportFlops(state, 2.0 * 64.0 * 32.0 * 8.0 * 48.0 * 48.0 * 48.0);
}
} // namespace

BENCHMARK(BM_Matmul1024)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3d_32to32_96)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3d_64to64_48)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ConvTranspose3d_64to32_48to96)
  ->Arg(1)
  ->Arg(2)
  ->ArgName("threads")
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime();
