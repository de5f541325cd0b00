#include "divaPointwiseConvolution3d.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace diva
{
namespace
{
// Each sample's voxels are cut into fixed blocks of this many (the last one ragged), one matrix product per block, the
// blocks shared between the threads (a [Cout x Cin] x [Cin x 4096] product is ~0.1-8 MFLOP). Fixed, so that every BLAS
// call's shape, and each voxel's place in it, do not depend on the thread count: OpenBLAS's sgemm rounds a row by where
// it lies in the call (its Haswell and Zen kernels, which AVX2 CPUs get, compute the rows of a partial block in
// another order), so ranges cut by thread count gave other bits at one and at two threads.
constexpr int64_t kVoxelsPerBlock = 4096;
// The weight and bias gradients sum over fixed blocks of this many voxels of one sample: fixed, so that the order of
// the sums (and so the bits) does not depend on how many threads share the blocks.
constexpr int64_t kVoxelsPerGradientBlock = 8192;

bool
DenseCpuFloat(const torch::Tensor & t)
{
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided;
}

// Tensors over memory the caller owns, for the worker threads: they carry no autograd or inference-mode state (those
// are thread-local to the calling thread).
torch::TensorOptions
Plain()
{
  return torch::TensorOptions().dtype(torch::kFloat);
}

int64_t
VoxelCount(const torch::Tensor & input)
{
  return input.size(2) * input.size(3) * input.size(4);
}

// out[n] = matrix x[n] (+ shift) for every sample; matrix [rows, inner], x [batch, inner, voxels] and out
// [batch, rows, voxels] contiguous. One product per fixed block of voxels (kVoxelsPerBlock), the blocks of all samples
// shared between the threads.
void
MultiplyEverySample(const float * matrix,
                    int64_t       rows,
                    int64_t       inner,
                    const float * shift,
                    const float * x,
                    int64_t       batch,
                    int64_t       voxels,
                    float *       out)
{
  const int64_t blocksPerSample = (voxels + kVoxelsPerBlock - 1) / kVoxelsPerBlock;
  at::parallel_for(
    0, batch * blocksPerSample, 1,
    [&](int64_t first, int64_t last)
    {
      // from_blob takes non-const memory
      const auto w = torch::from_blob(const_cast<float *>(matrix), { rows, inner }, Plain());
      const auto b =
        shift != nullptr ? torch::from_blob(const_cast<float *>(shift), { rows, 1 }, Plain()) : torch::Tensor();
      for (int64_t k = first; k < last; ++k)
      {
        const int64_t n = k / blocksPerSample, begin = (k % blocksPerSample) * kVoxelsPerBlock;
        const int64_t count = std::min(kVoxelsPerBlock, voxels - begin);
        auto       block = torch::from_blob(out + n * rows * voxels + begin, { rows, count }, { voxels, 1 }, Plain());
        const auto columns = torch::from_blob(const_cast<float *>(x) + n * inner * voxels + begin, { inner, count },
                                              { voxels, 1 }, Plain());
        if (b.defined())
        {
          at::addmm_out(block, b, w, columns);
        }
        else
        {
          at::mm_out(block, w, columns);
        }
      }
    });
}

} // namespace

bool
PointwiseConvolution3dApplies(const torch::Tensor & input, const torch::Tensor & weight, const torch::Tensor & bias)
{
  return input.defined() && weight.defined() && DenseCpuFloat(input) && DenseCpuFloat(weight) &&
         (!bias.defined() || (DenseCpuFloat(bias) && bias.dim() == 1 && bias.size(0) == weight.size(0))) &&
         input.dim() == 5 && weight.dim() == 5 && input.numel() > 0 && weight.size(1) == input.size(1) &&
         weight.size(2) == 1 && weight.size(3) == 1 && weight.size(4) == 1;
}

torch::Tensor
PointwiseConvolution3d(const torch::Tensor & input, const torch::Tensor & weight, const torch::Tensor & bias)
{
  if (!PointwiseConvolution3dApplies(input, weight, bias))
  {
    throw std::invalid_argument("PointwiseConvolution3d: needs float32 CPU tensors, a non-empty [N, Cin, D, H, W] "
                                "input, a [Cout, Cin, 1, 1, 1] weight and a [Cout] bias if any");
  }
  RECORD_FUNCTION("diva::pointwise_conv3d", std::vector<c10::IValue>{});
  const int64_t batch = input.size(0), inChannels = input.size(1), outChannels = weight.size(0);
  const auto    x = input.contiguous();
  const auto    w = weight.reshape({ outChannels, inChannels }).contiguous();
  const auto    b = bias.defined() ? bias.contiguous() : torch::Tensor();
  auto          output = torch::empty({ batch, outChannels, input.size(2), input.size(3), input.size(4) }, Plain());
  MultiplyEverySample(w.data_ptr<float>(), outChannels, inChannels, b.defined() ? b.data_ptr<float>() : nullptr,
                      x.data_ptr<float>(), batch, VoxelCount(input), output.data_ptr<float>());
  return output;
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>
PointwiseConvolution3dBackward(const torch::Tensor &     gradOutput,
                               const torch::Tensor &     input,
                               const torch::Tensor &     weight,
                               const std::array<bool, 3> wanted)
{
  if (!PointwiseConvolution3dApplies(input, weight, {}) || !gradOutput.defined() || !DenseCpuFloat(gradOutput) ||
      gradOutput.dim() != 5 || gradOutput.size(0) != input.size(0) || gradOutput.size(1) != weight.size(0) ||
      gradOutput.sizes().slice(2) != input.sizes().slice(2))
  {
    throw std::invalid_argument("PointwiseConvolution3dBackward: needs float32 CPU tensors, a [N, Cin, D, H, W] input, "
                                "a [Cout, Cin, 1, 1, 1] weight and an output gradient [N, Cout, D, H, W]");
  }
  RECORD_FUNCTION("diva::pointwise_conv3d_backward", std::vector<c10::IValue>{});
  const int64_t batch = input.size(0), inChannels = input.size(1), outChannels = weight.size(0);
  const int64_t voxels = VoxelCount(input);
  const auto    g = gradOutput.contiguous();
  torch::Tensor gradInput, gradWeight, gradBias;
  if (wanted[0])
  {
    // W^T g[n], in the forward's fixed voxel blocks.
    gradInput = torch::empty(input.sizes(), Plain());
    const auto transposed = weight.reshape({ outChannels, inChannels }).t().contiguous();
    MultiplyEverySample(transposed.data_ptr<float>(), inChannels, outChannels, nullptr, g.data_ptr<float>(), batch,
                        voxels, gradInput.data_ptr<float>());
  }
  if (wanted[1] || wanted[2])
  {
    const auto    x = input.contiguous();
    const int64_t blocksPerSample = (voxels + kVoxelsPerGradientBlock - 1) / kVoxelsPerGradientBlock;
    const int64_t blocks = batch * blocksPerSample;
    // One partial per block: g_block x_block^T ([Cout, Cin]) and the block's sum of g per channel ([Cout]).
    auto    weightPartials = wanted[1] ? torch::empty({ blocks, outChannels, inChannels }, Plain()) : torch::Tensor();
    auto    biasPartials = wanted[2] ? torch::empty({ blocks, outChannels }, Plain()) : torch::Tensor();
    float * weightTarget = wanted[1] ? weightPartials.data_ptr<float>() : nullptr;
    float * biasTarget = wanted[2] ? biasPartials.data_ptr<float>() : nullptr;
    float * gradients = g.data_ptr<float>();
    float * values = x.data_ptr<float>();
    at::parallel_for(0, blocks, 1,
                     [&](int64_t first, int64_t last)
                     {
                       for (int64_t k = first; k < last; ++k)
                       {
                         const int64_t n = k / blocksPerSample, begin = (k % blocksPerSample) * kVoxelsPerGradientBlock;
                         const int64_t count = std::min(kVoxelsPerGradientBlock, voxels - begin);
                         const auto    block = torch::from_blob(gradients + n * outChannels * voxels + begin,
                                                                { outChannels, count }, { voxels, 1 }, Plain());
                         if (weightTarget != nullptr)
                         {
                           auto partial = torch::from_blob(weightTarget + k * outChannels * inChannels,
                                                           { outChannels, inChannels }, Plain());
                           // x_block^T without a copy: a column-major [count, Cin] view that BLAS reads as it is.
                           const auto columns = torch::from_blob(values + n * inChannels * voxels + begin,
                                                                 { count, inChannels }, { 1, voxels }, Plain());
                           at::mm_out(partial, block, columns);
                         }
                         if (biasTarget != nullptr)
                         {
                           auto partial = torch::from_blob(biasTarget + k * outChannels, { outChannels }, Plain());
                           at::sum_out(partial, block, { 1 });
                         }
                       }
                     });
    // Added in block order, whichever thread computed each block.
    const auto addInOrder = [blocks](const torch::Tensor & partials)
    {
      auto total = partials[0].clone();
      for (int64_t k = 1; k < blocks; ++k)
      {
        total.add_(partials[k]);
      }
      return total;
    };
    if (wanted[1])
    {
      gradWeight = addInOrder(weightPartials).view(weight.sizes());
    }
    if (wanted[2])
    {
      gradBias = addInOrder(biasPartials);
    }
  }
  return { gradInput, gradWeight, gradBias };
}

} // namespace diva
