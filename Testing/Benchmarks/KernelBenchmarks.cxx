// The LibTorch kernels the networks spend their time in, as GFLOP/s: they show whether the BLAS and allocator
// choices of the build (Documentation/Performance.md) took effect.
#include "divaCpuKernelSelection.h"
#include "divaDivAttentionBlock.h"
#include "divaFusedDivAttention.h"
#include "itkDivAttentionRuntime.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <thread>
#include <vector>

#if defined(__x86_64__)
#  include <immintrin.h>
#endif

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

// Which convolution a benchmark times: the toolkit's (diva::Convolution3d with the default kernel selection, which
// the networks call: Winograd F(2,3) for these shapes where oneDNN runs without AVX-512, oneDNN elsewhere), the
// Winograd kernel whatever the CPU (CpuKernels::Winograd), the toolkit's direct one (oneDNN), or LibTorch's conv3d.
enum class ConvolutionKernel
{
  Toolkit,
  Winograd,
  Direct,
  LibTorch
};

// GFLOP/s counts a direct convolution's FLOPs, 2 * Cout * Cin * 27 * output voxels, whatever the kernel: the
// Winograd kernel does 3.4x fewer multiplications, so its figure is the effective rate (as oneDNN and cuDNN report
// theirs), the speed-up over a direct convolution times the direct rate.
void
Conv3d(benchmark::State & state, int64_t channelsIn, int64_t channelsOut, int64_t side, ConvolutionKernel kernel)
{
  UseThreads(state);
  const auto previous = diva::GetCpuKernels();
  diva::SetCpuKernels(kernel == ConvolutionKernel::Direct     ? diva::CpuKernels::Direct
                      : kernel == ConvolutionKernel::Winograd ? diva::CpuKernels::Winograd
                                                              : diva::CpuKernels::Selected);
  torch::InferenceMode inference;
  const auto           input = torch::randn({ 1, channelsIn, side, side, side });
  const auto           weight = torch::randn({ channelsOut, channelsIn, 3, 3, 3 }) * 0.05;
  const auto           bias = torch::zeros({ channelsOut });
  const auto           convolve = [&]
  {
    return kernel == ConvolutionKernel::LibTorch
             ? torch::conv3d(input, weight, bias, 1, 1)
             : diva::Convolution3d(input, weight, bias, { 1, 1, 1 }, { 1, 1, 1 }, { 1, 1, 1 }, 1);
  };
  benchmark::DoNotOptimize(convolve().data_ptr()); // warm-up (see Performance.md)
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(convolve().data_ptr());
  }
  diva::SetCpuKernels(previous);
  const double voxels = static_cast<double>(side * side * side);
  ReportFlops(state, 2.0 * static_cast<double>(channelsOut * channelsIn) * 27.0 * voxels);
}

void
BM_Conv3d_32to32_96(benchmark::State & state)
{
  Conv3d(state, 32, 32, 96, ConvolutionKernel::Toolkit);
}

void
BM_Conv3d_64to64_48(benchmark::State & state)
{
  Conv3d(state, 64, 64, 48, ConvolutionKernel::Toolkit);
}

void
BM_Conv3dDirect_32to32_96(benchmark::State & state)
{
  Conv3d(state, 32, 32, 96, ConvolutionKernel::Direct);
}

void
BM_Conv3dDirect_64to64_48(benchmark::State & state)
{
  Conv3d(state, 64, 64, 48, ConvolutionKernel::Direct);
}

void
BM_Conv3dLibTorch_32to32_96(benchmark::State & state)
{
  Conv3d(state, 32, 32, 96, ConvolutionKernel::LibTorch);
}

// The channel and size families of the networks' full-resolution convolutions, the Winograd kernel (whatever the
// CPU) vs direct (args: threads, channels, side, direct): where the selection's Winograd rule comes from. Run with
// ONEDNN_MAX_CPU_ISA=AVX2 for the direct convolution an AVX2 CPU gets.
void
BM_Conv3dFamily(benchmark::State & state)
{
  Conv3d(state, state.range(1), state.range(1), state.range(2),
         state.range(3) == 0 ? ConvolutionKernel::Winograd : ConvolutionKernel::Direct);
}

// Transposed convolution, kernel = stride = 2 (the U-Net's and UNETR's upsampling): each input voxel writes a 2^3
// block, so FLOPs = 2 * Cin * Cout * 8 * input voxels. Args: threads, libtorch (0: the toolkit's selection, which runs
// the non-overlapping kernel for inference; 1: LibTorch's `conv_transpose3d`).
void
BM_ConvTranspose3d_64to32_48to96(benchmark::State & state)
{
  UseThreads(state);
  torch::InferenceMode inference;
  const auto           input = torch::randn({ 1, 64, 48, 48, 48 });
  const auto           weight = torch::randn({ 64, 32, 2, 2, 2 }) * 0.05;
  const auto           bias = torch::zeros({ 32 });
  const auto           upConvolve = [&]
  {
    return state.range(1) == 0
             ? diva::TransposedConvolution3d(input, weight, bias, { 2, 2, 2 }, { 0, 0, 0 }, { 0, 0, 0 }, 1, { 1, 1, 1 })
             : torch::conv_transpose3d(input, weight, bias, 2);
  };
  benchmark::DoNotOptimize(upConvolve().data_ptr()); // warm-up
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(upConvolve().data_ptr());
  }
  ReportFlops(state, 2.0 * 64.0 * 32.0 * 8.0 * 48.0 * 48.0 * 48.0);
}

// Instance norm + leaky ReLU (every conv-norm-act step of the networks) on [1, C, S^3] (args: threads, channels, side,
// libtorch: 0 = the toolkit's fused inference kernel, 1 = LibTorch's module and an in-place leaky ReLU).
void
BM_InstanceNormLeakyRelu(benchmark::State & state)
{
  UseThreads(state);
  torch::InferenceMode      inference;
  const int64_t             channels = state.range(1), side = state.range(2);
  const auto                input = torch::randn({ 1, channels, side, side, side });
  torch::nn::InstanceNorm3d norm(torch::nn::InstanceNorm3dOptions(channels).affine(true));
  const auto                step = [&]
  {
    if (state.range(3) == 0)
    {
      return diva::InstanceNorm3d(norm, input, {}, 0.01);
    }
    auto normalized = norm(input);
    return torch::leaky_relu_(normalized, 0.01);
  };
  benchmark::DoNotOptimize(step().data_ptr()); // warm-up
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(step().data_ptr());
  }
  state.counters["GB/s"] = benchmark::Counter(3.0 * 4.0 * static_cast<double>(input.numel()) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}
// A 1x1x1 convolution's training step, forward and backward (input, weight and bias gradients), on [1, C, S^3] (args:
// threads, channels, side, addmm: 0 = the toolkit's (diva::Convolution3d: the voxels shared between the threads,
// divaPointwiseConvolution3d.h), 1 = one LibTorch addmm over the voxels, what training ran before). GFLOP/s counts
// three products of 2 * C * C * S^3.
void
BM_PointwiseConvolutionTraining(benchmark::State & state)
{
  UseThreads(state);
  const int64_t channels = state.range(1), side = state.range(2);
  const auto    input = torch::randn({ 1, channels, side, side, side }).requires_grad_();
  const auto    weight = (torch::randn({ channels, channels, 1, 1, 1 }) * 0.1).requires_grad_();
  const auto    bias = torch::randn({ channels }).requires_grad_();
  const auto    upstream = torch::randn({ 1, channels, side, side, side });
  const auto    step = [&]
  {
    const auto output =
      state.range(3) == 0
        ? diva::Convolution3d(input, weight, bias, { 1, 1, 1 }, { 0, 0, 0 }, { 1, 1, 1 }, 1)
        : torch::addmm(bias.unsqueeze(1), weight.view({ channels, channels }), input.view({ channels, -1 }));
    output.backward(upstream.view(output.sizes()));
  };
  step(); // warm-up
  for (auto _ : state)
  {
    step();
  }
  ReportFlops(state, 3.0 * 2.0 * static_cast<double>(channels * channels) * static_cast<double>(side * side * side));
}

// One div-attention junction after its two convolutions (the image branch's and the aligned lower path's), as mUnet
// `paper` has them: 32 channels at 96^3, 64 at 48^3. junction:1 is FusedDivAttentionJunction (what inference runs
// with the 1x1x1 fusion), junction:0 the steps before it: the fused image norm, FusedDivAttention, the fusion
// convolution and the fused norm. No attention map kept (as the pipeline runs).
void
BM_DivAttentionJunction(benchmark::State & state)
{
  UseThreads(state);
  const int64_t           channels = state.range(1), side = state.range(2);
  diva::DivAttentionBlock block(diva::DivAttentionOptions(channels, 2 * channels, 2).fusion_kernel_size(1));
  block->eval();
  torch::InferenceMode inference;
  const auto           upper = torch::randn({ 1, channels, side, side, side });
  const auto           lower = torch::randn({ 1, channels, side, side, side });
  const auto           convolved = torch::randn({ 1, channels, side, side, side });
  const auto           p = block->JunctionParameters(upper, false); // no map kept, as the pipeline runs
  const auto           step = [&]
  {
    if (state.range(3) == 1)
    {
      return diva::FusedDivAttentionJunction(upper, lower, convolved, p).fused;
    }
    const auto features = diva::InstanceNorm3d(block->image_norm, convolved, {}, 0.01);
    const auto sum = diva::FusedDivAttention(upper, lower, features, p.placement, true, p.refinedEps, p.refinedScale);
    return diva::InstanceNorm3d(block->fuse_norm, block->fuse_conv(sum.fusionInput), {}, 0.01);
  };
  benchmark::DoNotOptimize(step().data_ptr()); // warm-up
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(step().data_ptr());
  }
  ReportFlops(state, 2.0 * static_cast<double>(channels * channels) * static_cast<double>(side * side * side));
}
} // namespace

#if defined(__x86_64__)
// The machine's fp32 ceiling: ten independent AVX2 FMA chains per thread (enough to cover FMA latency on two pipes),
// nothing loaded from memory. Kernel figures are read against this, not against a datasheet.
__attribute__((target("avx2,fma"))) double
FmaChains(long iterations)
{
  __m256       a0 = _mm256_set1_ps(1.0f), a1 = _mm256_set1_ps(1.1f), a2 = _mm256_set1_ps(1.2f);
  __m256       a3 = _mm256_set1_ps(1.3f), a4 = _mm256_set1_ps(1.4f), a5 = _mm256_set1_ps(1.5f);
  __m256       a6 = _mm256_set1_ps(1.6f), a7 = _mm256_set1_ps(1.7f), a8 = _mm256_set1_ps(1.8f);
  __m256       a9 = _mm256_set1_ps(1.9f);
  const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-5f);
  for (long k = 0; k < iterations; ++k)
  {
    a0 = _mm256_fmadd_ps(a0, b, c);
    a1 = _mm256_fmadd_ps(a1, b, c);
    a2 = _mm256_fmadd_ps(a2, b, c);
    a3 = _mm256_fmadd_ps(a3, b, c);
    a4 = _mm256_fmadd_ps(a4, b, c);
    a5 = _mm256_fmadd_ps(a5, b, c);
    a6 = _mm256_fmadd_ps(a6, b, c);
    a7 = _mm256_fmadd_ps(a7, b, c);
    a8 = _mm256_fmadd_ps(a8, b, c);
    a9 = _mm256_fmadd_ps(a9, b, c);
    // Keeps the compiler from folding the chains: the values are "used" every iteration.
    __asm__ volatile(""
                     : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7), "+x"(a8),
                       "+x"(a9));
  }
  const __m256 sum =
    _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                  _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(_mm256_add_ps(a6, a7), _mm256_add_ps(a8, a9))));
  return static_cast<double>(_mm256_cvtss_f32(sum));
}

void
BM_Fp32FmaPeak(benchmark::State & state)
{
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
  {
    state.SkipWithError("no AVX2/FMA on this CPU");
    return;
  }
  const auto threads = static_cast<int>(state.range(0));
  const long iterations = 20000000;
  for (auto _ : state)
  {
    std::vector<std::thread> workers;
    std::vector<double>      sink(static_cast<size_t>(threads));
    for (int t = 0; t < threads; ++t)
    {
      workers.emplace_back([&sink, t, iterations] { sink[static_cast<size_t>(t)] = FmaChains(iterations); });
    }
    for (auto & worker : workers)
    {
      worker.join();
    }
    benchmark::DoNotOptimize(sink.data());
  }
  ReportFlops(state, static_cast<double>(threads) * static_cast<double>(iterations) * 10.0 * 16.0);
}
BENCHMARK(BM_Fp32FmaPeak)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

BENCHMARK(BM_Matmul1024)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3d_32to32_96)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3d_64to64_48)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3dDirect_32to32_96)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3dDirect_64to64_48)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3dLibTorch_32to32_96)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Conv3dFamily)
  ->ArgsProduct({ { 2 }, { 8, 16, 32, 64, 128 }, { 12, 24, 48, 96 }, { 0, 1 } })
  ->ArgNames({ "threads", "channels", "side", "direct" })
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime();
BENCHMARK(BM_ConvTranspose3d_64to32_48to96)
  ->ArgsProduct({ { 1, 2 }, { 0, 1 } })
  ->ArgNames({ "threads", "libtorch" })
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime();
BENCHMARK(BM_InstanceNormLeakyRelu)
  ->Args({ 2, 16, 96, 0 })
  ->Args({ 2, 16, 96, 1 })
  ->Args({ 2, 32, 48, 0 })
  ->Args({ 2, 32, 48, 1 })
  ->Args({ 2, 64, 24, 0 })
  ->Args({ 2, 64, 24, 1 })
  ->Args({ 1, 16, 96, 0 })
  ->Args({ 1, 16, 96, 1 })
  ->ArgNames({ "threads", "channels", "side", "libtorch" })
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime();
BENCHMARK(BM_PointwiseConvolutionTraining)
  ->ArgsProduct({ { 2 }, { 32, 64 }, { 48, 96 }, { 0, 1 } })
  ->ArgNames({ "threads", "channels", "side", "addmm" })
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime();
BENCHMARK(BM_DivAttentionJunction)
  ->Args({ 2, 32, 96, 1 })
  ->Args({ 2, 32, 96, 0 })
  ->Args({ 2, 64, 48, 1 })
  ->Args({ 2, 64, 48, 0 })
  ->Args({ 1, 32, 96, 1 })
  ->ArgNames({ "threads", "channels", "side", "junction" })
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime();
