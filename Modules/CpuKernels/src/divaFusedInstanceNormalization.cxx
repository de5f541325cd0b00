#include "divaFusedInstanceNormalization.h"
#include "divaAutogradRecording.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace diva
{
namespace
{
constexpr int64_t kLanes = 8;
constexpr int64_t kBlock = 1024; // float partial sums stay short: each lane adds at most kBlock / kLanes values

bool
NormalizableFloat(const torch::Tensor & t)
{
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided;
}

struct Deviations
{
  double sum = 0.0;        // of x[i] - center
  double sumSquares = 0.0; // of (x[i] - center)^2
};

// Sums over [0, count) in eight float lanes per block of kBlock values, blocks summed in double. Independent lanes
// let the compiler use vector registers without reassociating.
Deviations
SumDeviations(const float * x, int64_t count, float center)
{
  Deviations total;
  for (int64_t start = 0; start < count; start += kBlock)
  {
    const int64_t stop = std::min(count, start + kBlock);
    float         sums[kLanes] = {}, squares[kLanes] = {};
    int64_t       i = start;
    for (; i + kLanes <= stop; i += kLanes)
    {
      for (int64_t j = 0; j < kLanes; ++j)
      {
        const float d = x[i + j] - center;
        sums[j] += d;
        squares[j] += d * d;
      }
    }
    double blockSum = 0.0, blockSquares = 0.0;
    for (; i < stop; ++i)
    {
      const double d = static_cast<double>(x[i]) - center;
      blockSum += d;
      blockSquares += d * d;
    }
    for (int64_t j = 0; j < kLanes; ++j)
    {
      blockSum += sums[j];
      blockSquares += squares[j];
    }
    total.sum += blockSum;
    total.sumSquares += blockSquares;
  }
  return total;
}

template<bool HasAddend, bool Activate>
void
Transform(const float * x,
          const float * addend,
          float *       y,
          int64_t       count,
          float         center,
          float         scale,
          float         shift,
          float         slope)
{
  for (int64_t i = 0; i < count; ++i)
  {
    // x - center first: near the mean it is exact, where x * scale would round at x's magnitude.
    float v = (x[i] - center) * scale + shift;
    if (HasAddend)
    {
      v += addend[i];
    }
    if (Activate)
    {
      // Arithmetic, not a branch: the sign of v is unpredictable, and the compiler vectorises min / max.
      v = std::max(v, 0.0f) + slope * std::min(v, 0.0f);
    }
    y[i] = v;
  }
}
} // namespace

bool
FusedInstanceNormalizationApplies(const torch::Tensor & input,
                                  const torch::Tensor & weight,
                                  const torch::Tensor & bias,
                                  const torch::Tensor & addend)
{
  if (AutogradRecords(input, weight, bias, addend) || !input.defined() || !NormalizableFloat(input) ||
      input.dim() < 3 || input.numel() == 0)
  {
    return false;
  }
  const auto perChannel = [&input](const torch::Tensor & t)
  { return !t.defined() || (NormalizableFloat(t) && t.dim() == 1 && t.size(0) == input.size(1)); };
  return perChannel(weight) && perChannel(bias) &&
         (!addend.defined() || (NormalizableFloat(addend) && addend.sizes().equals(input.sizes())));
}

torch::Tensor
FusedInstanceNormalization(const torch::Tensor & input,
                           const torch::Tensor & weight,
                           const torch::Tensor & bias,
                           double                eps,
                           const torch::Tensor & addend,
                           std::optional<double> negativeSlope,
                           bool                  overwriteInput)
{
  RECORD_USER_SCOPE("diva::fused_instance_norm"); // named in LibTorch profiles (Utilities/profile-summary.py)
  if (!FusedInstanceNormalizationApplies(input, weight, bias, addend))
  {
    throw std::invalid_argument("FusedInstanceNormalization: needs a float32 CPU input [N, C, ...], per-channel "
                                "weight and bias, an addend of the input's shape, and no autograd recording");
  }
  const auto x = input.contiguous();
  const auto w = weight.defined() ? weight.contiguous() : weight;
  const auto b = bias.defined() ? bias.contiguous() : bias;
  const auto r = addend.defined() ? addend.contiguous() : addend;
  // Reused only when the caller's reference is the sole one (then `x` above shares it: two uses of one TensorImpl).
  const bool reuse = overwriteInput && input.is_contiguous() && x.use_count() == 2 && x.storage().use_count() == 1 &&
                     x.storage_offset() == 0 &&
                     x.numel() * static_cast<int64_t>(sizeof(float)) == static_cast<int64_t>(x.storage().nbytes());
  auto          output = reuse ? x : torch::empty_like(x);
  const int64_t channels = x.size(1), instances = x.size(0) * channels, count = x.numel() / instances;
  const float * xData = x.data_ptr<float>();
  const float * wData = w.defined() ? w.data_ptr<float>() : nullptr;
  const float * bData = b.defined() ? b.data_ptr<float>() : nullptr;
  const float * rData = r.defined() ? r.data_ptr<float>() : nullptr;
  float *       yData = output.data_ptr<float>();
  const float   slope = negativeSlope ? static_cast<float>(*negativeSlope) : 1.0f;
  at::parallel_for(0, instances, 1,
                   [&](int64_t begin, int64_t end)
                   {
                     for (int64_t instance = begin; instance < end; ++instance)
                     {
                       const int64_t offset = instance * count, channel = instance % channels;
                       const float * source = xData + offset;
                       const auto    n = static_cast<double>(count);
                       // Pass 1: the mean. Pass 2: deviations from it (no cancellation in the variance), whose own
                       // mean corrects the first's rounding.
                       const auto    center = static_cast<float>(SumDeviations(source, count, 0.0f).sum / n);
                       const auto    deviations = SumDeviations(source, count, center);
                       const double  offsetMean = deviations.sum / n;
                       const double  variance = std::max(0.0, deviations.sumSquares / n - offsetMean * offsetMean);
                       const double  gain = wData != nullptr ? wData[channel] : 1.0;
                       const double  scale = gain / std::sqrt(variance + eps);
                       const double  shift = (bData != nullptr ? bData[channel] : 0.0) - offsetMean * scale;
                       const auto    s = static_cast<float>(scale), t = static_cast<float>(shift);
                       const float * extra = rData != nullptr ? rData + offset : nullptr;
                       float *       target = yData + offset;
                       if (extra != nullptr)
                       {
                         negativeSlope ? Transform<true, true>(source, extra, target, count, center, s, t, slope)
                                       : Transform<true, false>(source, extra, target, count, center, s, t, slope);
                       }
                       else
                       {
                         negativeSlope ? Transform<false, true>(source, extra, target, count, center, s, t, slope)
                                       : Transform<false, false>(source, extra, target, count, center, s, t, slope);
                       }
                     }
                   });
  return output;
}

} // namespace diva
