#include "divaFusedDivAttention.h"
#include "divaAutogradRecording.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace diva
{
namespace
{
constexpr int64_t kAttentionLanes = 8; // one AVX register
constexpr int64_t kAttentionBlock = 1024;

bool
AttentionOperand(const torch::Tensor & t)
{
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided &&
         t.dim() == 5 && t.numel() > 0;
}

// exp(x) without a library call, so loops over it vectorise: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by its Taylor
// polynomial to r^6 (relative error < 2e-7 there), times 2^n built in the exponent bits. n is rounded by adding
// 1.5 * 2^23 (the float's low mantissa bits then hold n); x is clamped to where 2^n is a normal float.
inline float
ExpWithoutLibrary(float x)
{
  constexpr float kLog2e = 1.44269504088896341f, kLn2High = 0.693145751953125f, kLn2Low = 1.42860682030941723e-6f;
  constexpr float kRound = 12582912.0f; // 1.5 * 2^23
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float shifted = x * kLog2e + kRound;
  const float n = shifted - kRound;
  const float r = (x - n * kLn2High) - n * kLn2Low;
  const float p =
    1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
  int32_t shiftedBits = 0, roundBits = 0;
  std::memcpy(&shiftedBits, &shifted, sizeof shiftedBits);
  std::memcpy(&roundBits, &kRound, sizeof roundBits);
  const int32_t scaleBits = (shiftedBits - roundBits + 127) << 23; // 2^n
  float         scale = 0.0f;
  std::memcpy(&scale, &scaleBits, sizeof scale);
  return p * scale;
}

inline float
Sigmoid(float x)
{
  return 1.0f / (1.0f + ExpWithoutLibrary(-x));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#  define DIVA_FUSED_ATTENTION_X86 1
// Eight floats in one value: GCC / Clang vector extensions, used only inside functions compiled for AVX2 + FMA
// (chosen at run time): at SSE width the three exponentials per voxel made this slower than LibTorch's AVX2 operators.
// The compiler does not vectorise the scalar loop on its own: the exponent bit tricks and the selects stop it.
#  define DIVA_INLINE __attribute__((always_inline))
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wpsabi" // 32-byte vectors pass only between functions inlined into AVX2 code
#  pragma GCC            push_options
// Down to pop_options: compiled for AVX2 + FMA, called only where the CPU has both.
#  pragma GCC target("avx2,fma")
typedef float   Float8 __attribute__((vector_size(32)));
typedef int32_t Int8 __attribute__((vector_size(32)));

DIVA_INLINE inline Float8
Load8(const float * p)
{
  Float8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

DIVA_INLINE inline void
Store8(float * p, Float8 v)
{
  std::memcpy(p, &v, sizeof v);
}

DIVA_INLINE inline Float8
Broadcast8(float value)
{
  return Float8{} + value;
}

// ExpWithoutLibrary on eight lanes (the same operations in the same order, so lane and scalar results agree).
DIVA_INLINE inline Float8
Exp8(Float8 x)
{
  const Float8 low = Broadcast8(-87.0f), high = Broadcast8(88.0f), round = Broadcast8(12582912.0f);
  x = x < low ? low : x;
  x = x > high ? high : x;
  const Float8 shifted = x * 1.44269504088896341f + round;
  const Float8 n = shifted - round;
  const Float8 r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
  const Float8 p =
    1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
  const Int8 scaleBits = ((Int8)shifted - (Int8)round + 127) << 23;
  return p * (Float8)scaleBits;
}

DIVA_INLINE inline Float8
Sigmoid8(Float8 x)
{
  return 1.0f / (1.0f + Exp8(-x));
}

struct Pass1Sums
{
  double exponentials = 0.0; // sum of exp(residual)
  double products = 0.0;     // sum of exp(residual) * features
  double squares = 0.0;      // sum of (exp(residual) * features)^2
};

// Pass 1 over one instance: writes exp(residual) to `exponentials` and sums what the softmax and M_ref's norm need
// (eight float lanes per block of kAttentionBlock values, blocks summed in double).
template<bool AbsoluteOfResidual>
Pass1Sums
ExponentiateResidual(const float * upper,
                     const float * lower,
                     const float * features,
                     float *       exponentials,
                     int64_t       count)
{
  Pass1Sums total;
  for (int64_t start = 0; start < count; start += kAttentionBlock)
  {
    const int64_t stop = std::min(count, start + kAttentionBlock);
    Float8        e{}, p{}, q{};
    int64_t       i = start;
    for (; i + kAttentionLanes <= stop; i += kAttentionLanes)
    {
      Float8 residual = Sigmoid8(Load8(upper + i)) - Sigmoid8(Load8(lower + i));
      if (AbsoluteOfResidual)
      {
        residual = residual < 0.0f ? -residual : residual;
      }
      const Float8 value = Exp8(residual);
      Store8(exponentials + i, value);
      const Float8 product = value * Load8(features + i);
      e += value;
      p += product;
      q += product * product;
    }
    double eBlock = 0.0, pBlock = 0.0, qBlock = 0.0;
    for (; i < stop; ++i)
    {
      float residual = Sigmoid(upper[i]) - Sigmoid(lower[i]);
      if (AbsoluteOfResidual)
      {
        residual = std::fabs(residual);
      }
      const float value = ExpWithoutLibrary(residual);
      exponentials[i] = value;
      const float product = value * features[i];
      eBlock += value;
      pBlock += product;
      qBlock += static_cast<double>(product) * product;
    }
    for (int j = 0; j < kAttentionLanes; ++j)
    {
      eBlock += e[j];
      pBlock += p[j];
      qBlock += q[j];
    }
    total.exponentials += eBlock;
    total.products += pBlock;
    total.squares += qBlock;
  }
  return total;
}
#  pragma GCC            pop_options
#  pragma GCC diagnostic pop
#endif

bool
Avx2FmaAvailable()
{
#if defined(DIVA_FUSED_ATTENTION_X86)
  static const bool available = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return available;
#else
  return false;
#endif
}
} // namespace

bool
FusedDivAttentionApplies(const torch::Tensor & upper,
                         const torch::Tensor & lowerAligned,
                         const torch::Tensor & imageFeatures,
                         SoftmaxAxis           axis)
{
  if (!Avx2FmaAvailable() || axis != SoftmaxAxis::Space || !AttentionOperand(upper) ||
      !AttentionOperand(lowerAligned) || !AttentionOperand(imageFeatures) ||
      !lowerAligned.sizes().equals(upper.sizes()) || !imageFeatures.sizes().equals(upper.sizes()))
  {
    return false;
  }
  return !AutogradRecords(upper, lowerAligned, imageFeatures);
}

FusedDivAttentionResult
FusedDivAttention(const torch::Tensor & upper,
                  const torch::Tensor & lowerAligned,
                  const torch::Tensor & imageFeatures,
                  AbsolutePlacement     placement,
                  bool                  normalizeRefined,
                  double                eps,
                  double                refinedScale)
{
  RECORD_USER_SCOPE("diva::fused_div_attention"); // named in LibTorch profiles (Utilities/profile-summary.py)
  if (!FusedDivAttentionApplies(upper, lowerAligned, imageFeatures, SoftmaxAxis::Space))
  {
    throw std::invalid_argument("FusedDivAttention: needs float32 CPU tensors [N, C, D, H, W] of one shape and no "
                                "autograd recording");
  }
  const auto    u = upper.contiguous(), l = lowerAligned.contiguous(), f = imageFeatures.contiguous();
  auto          attention = torch::empty_like(u);
  auto          fusionInput = torch::empty_like(u);
  const int64_t instances = u.size(0) * u.size(1), count = u.numel() / instances;
  const float * uData = u.data_ptr<float>();
  const float * lData = l.data_ptr<float>();
  const float * fData = f.data_ptr<float>();
  float *       aData = attention.data_ptr<float>();
  float *       oData = fusionInput.data_ptr<float>();
  const double  voxels = static_cast<double>(count);
#if defined(DIVA_FUSED_ATTENTION_X86)
  at::parallel_for(
    0, instances, 1,
    [&](int64_t begin, int64_t end)
    {
      for (int64_t instance = begin; instance < end; ++instance)
      {
        const int64_t offset = instance * count;
        const float * up = uData + offset;
        const float * low = lData + offset;
        const float * features = fData + offset;
        float *       attn = aData + offset;
        float *       out = oData + offset;
        // Pass 1: exp of the residual (into attn), its sum, and M_ref's first two moments up to attn's
        // scale.
        const auto sums = placement == AbsolutePlacement::OfResidual
                            ? ExponentiateResidual<true>(up, low, features, attn, count)
                            : ExponentiateResidual<false>(up, low, features, attn, count);
        // attn = exp / sum / sqrt(DHW); M_ref = attn * features has mean and variance scaled by that
        // factor.
        const double factor = 1.0 / (sums.exponentials * std::sqrt(voxels));
        const double mean = factor * sums.products / voxels;
        const double variance = std::max(
          0.0, factor * factor * (sums.squares / voxels - (sums.products / voxels) * (sums.products / voxels)));
        const auto scale = static_cast<float>(factor);
        const auto center = static_cast<float>(normalizeRefined ? mean : 0.0);
        // The norm of k M_ref (k = refinedScale) is (M_ref - mean) k / sqrt(k^2 var + eps).
        const auto gain = static_cast<float>(
          normalizeRefined ? refinedScale / std::sqrt(refinedScale * refinedScale * variance + eps) : 1.0);
        for (int64_t i = 0; i < count; ++i)
        {
          const float a = attn[i] * scale;
          attn[i] = a;
          out[i] = up[i] + low[i] + (a * features[i] - center) * gain;
        }
      }
    });
#endif
  return { attention, fusionInput };
}

} // namespace diva
