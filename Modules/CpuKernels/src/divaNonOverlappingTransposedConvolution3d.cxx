#include "divaNonOverlappingTransposedConvolution3d.h"
#include "divaAutogradRecording.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>

#include <stdexcept>

namespace diva
{
namespace
{
bool
ConvolvableFloat(const torch::Tensor & t)
{
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided;
}

struct Geometry
{
  int64_t inChannels, outChannels, depth, height, width;
  int64_t kernel[3];
  int64_t
  OutDepth() const
  {
    return depth * kernel[0];
  }
  int64_t
  OutHeight() const
  {
    return height * kernel[1];
  }
  int64_t
  OutWidth() const
  {
    return width * kernel[2];
  }
};

// Writes one input slice's products into its k0 output slices. Row (co, a, b, c) of `products` holds, for every
// voxel (y, x) of input slice z, output voxel (k0 z + a, k1 y + b, k2 x + c) of channel co (before the bias).
void
ScatterSlice(const Geometry & g, const float * products, const float * bias, float * outputSample, int64_t z)
{
  const int64_t plane = g.height * g.width, outWidth = g.OutWidth();
  const int64_t outPlane = g.OutHeight() * outWidth, outChannelSize = g.OutDepth() * outPlane;
  const int64_t k0 = g.kernel[0], k1 = g.kernel[1], k2 = g.kernel[2];
  for (int64_t co = 0; co < g.outChannels; ++co)
  {
    const float shift = bias != nullptr ? bias[co] : 0.0f;
    for (int64_t a = 0; a < k0; ++a)
    {
      float * outSlice = outputSample + co * outChannelSize + (k0 * z + a) * outPlane;
      for (int64_t b = 0; b < k1; ++b)
      {
        const float * rows = products + ((co * k0 + a) * k1 + b) * k2 * plane;
        for (int64_t y = 0; y < g.height; ++y)
        {
          float * out = outSlice + (k1 * y + b) * outWidth;
          if (k2 == 2)
          {
            const float * even = rows + y * g.width;
            const float * odd = even + plane;
            for (int64_t x = 0; x < g.width; ++x)
            {
              out[2 * x] = even[x] + shift;
              out[2 * x + 1] = odd[x] + shift;
            }
          }
          else
          {
            for (int64_t c = 0; c < k2; ++c)
            {
              const float * source = rows + c * plane + y * g.width;
              for (int64_t x = 0; x < g.width; ++x)
              {
                out[k2 * x + c] = source[x] + shift;
              }
            }
          }
        }
      }
    }
  }
}
} // namespace

bool
NonOverlappingTransposedConvolution3dApplies(const torch::Tensor & input,
                                             const torch::Tensor & weight,
                                             const torch::Tensor & bias,
                                             at::IntArrayRef       stride,
                                             at::IntArrayRef       padding,
                                             at::IntArrayRef       outputPadding,
                                             at::IntArrayRef       dilation,
                                             int64_t               groups)
{
  if (AutogradRecords(input, weight, bias) || !ConvolvableFloat(input) || !ConvolvableFloat(weight) ||
      input.dim() != 5 || weight.dim() != 5 || input.numel() == 0 || weight.numel() == 0 ||
      weight.size(0) != input.size(1) || groups != 1 || stride.size() != 3 || padding.size() != 3 ||
      outputPadding.size() != 3 || dilation.size() != 3)
  {
    return false;
  }
  if (bias.defined() && (!ConvolvableFloat(bias) || bias.dim() != 1 || bias.size(0) != weight.size(1)))
  {
    return false;
  }
  for (size_t axis = 0; axis < 3; ++axis)
  {
    if (weight.size(2 + static_cast<int64_t>(axis)) != stride[axis] || padding[axis] != 0 || outputPadding[axis] != 0 ||
        dilation[axis] != 1)
    {
      return false;
    }
  }
  return true;
}

torch::Tensor
NonOverlappingTransposedConvolution3d(const torch::Tensor & input,
                                      const torch::Tensor & weight,
                                      const torch::Tensor & bias)
{
  RECORD_USER_SCOPE(
    "diva::non_overlapping_conv_transpose3d"); // named in LibTorch profiles (Utilities/profile-summary.py)
  const auto kernelSizes = weight.dim() == 5 ? weight.sizes().slice(2) : at::IntArrayRef{};
  if (weight.dim() != 5 || !NonOverlappingTransposedConvolution3dApplies(input, weight, bias, kernelSizes, { 0, 0, 0 },
                                                                         { 0, 0, 0 }, { 1, 1, 1 }, 1))
  {
    throw std::invalid_argument("NonOverlappingTransposedConvolution3d: needs float32 CPU tensors, an input "
                                "[N, C, D, H, W], a weight [C, Cout, k0, k1, k2] and no autograd recording");
  }
  const auto x = input.contiguous();
  const auto b = bias.defined() ? bias.contiguous() : bias;
  Geometry   g{};
  g.inChannels = x.size(1);
  g.outChannels = weight.size(1);
  g.depth = x.size(2);
  g.height = x.size(3);
  g.width = x.size(4);
  for (int axis = 0; axis < 3; ++axis)
  {
    g.kernel[axis] = weight.size(2 + axis);
  }
  const int64_t batch = x.size(0), plane = g.height * g.width;
  const int64_t taps = g.kernel[0] * g.kernel[1] * g.kernel[2], rows = g.outChannels * taps;
  // [C, Cout k0 k1 k2] -> [Cout k0 k1 k2, C]: row (co, a, b, c) of the product is one output sub-lattice.
  const auto    matrix = weight.reshape({ g.inChannels, rows }).t().contiguous();
  auto          output = torch::empty({ batch, g.outChannels, g.OutDepth(), g.OutHeight(), g.OutWidth() }, x.options());
  const int64_t inSampleSize = g.inChannels * g.depth * plane;
  const int64_t outSampleSize = output.numel() / batch;
  const float * biasData = b.defined() ? b.data_ptr<float>() : nullptr;
  float *       outputData = output.data_ptr<float>();
  const float * inputData = x.data_ptr<float>();
  const int64_t channelStride = g.depth * plane;
  at::parallel_for(0, batch * g.depth, 1,
                   [&](int64_t begin, int64_t end)
                   {
                     // Through LibTorch's allocator (the caching host allocator where installed).
                     auto products = torch::empty({ rows, plane }, x.options());
                     for (int64_t task = begin; task < end; ++task)
                     {
                       const int64_t n = task / g.depth, z = task % g.depth;
                       // Input slice z of sample n as a [C, H*W] matrix (rows one channel's slice apart).
                       const auto slice =
                         torch::from_blob(const_cast<float *>(inputData) + n * inSampleSize + z * plane,
                                          { g.inChannels, plane }, { channelStride, 1 }, x.options());
                       at::mm_out(products, matrix, slice);
                       ScatterSlice(g, products.data_ptr<float>(), biasData, outputData + n * outSampleSize, z);
                     }
                   });
  return output;
}

} // namespace diva
