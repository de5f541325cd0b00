#include "divaFusedDivAttention.h"
#include "divaAutogradRecording.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>
#include <torch/autograd.h>

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

// The backward passes (FusedDivAttentionFunction). Per instance, with R = (attn * features - center) * gain the
// normalised M_ref (R = attn * features when not normalised), g the gradient of fusionInput, gA that of attn (null
// when nobody used attn):
//   dP    = gain (g - mean(g) - R mean(g R))        instance norm's backward (gain = 1/sigma, eps inside sigma);
//                                                   dP = g when not normalised
//   dattn = dP features + gA,  dfeatures = dP attn
//   dr    = attn (dattn - sqrt(DHW) sum(dattn attn))  softmax over space, then / sqrt(DHW)
//   dd    = dr sign(d) (absolute of the residual d) or dr;  dupper = g + dd s_u (1 - s_u), dlower = g - dd s_l (1 -
//   s_l)
struct BackwardScalars
{
  float center = 0.0f, gain = 1.0f; // of the forward's norm
  float meanG = 0.0f, meanGR = 0.0f;
  float attentionSum = 0.0f; // sqrt(DHW) sum(dattn attn)
  bool  normalize = true;
};

DIVA_INLINE inline Float8
RefinedGradient8(const BackwardScalars & c, Float8 g, Float8 attn, Float8 features)
{
  if (!c.normalize)
  {
    return g;
  }
  const Float8 refined = (attn * features - c.center) * c.gain;
  return c.gain * (g - c.meanG - refined * c.meanGR);
}

inline float
RefinedGradient(const BackwardScalars & c, float g, float attn, float features)
{
  if (!c.normalize)
  {
    return g;
  }
  const float refined = (attn * features - c.center) * c.gain;
  return c.gain * (g - c.meanG - refined * c.meanGR);
}

// Pass 1: sum(g) and sum(g R).
std::pair<double, double>
SumOutputGradient(const BackwardScalars & c, const float * g, const float * attn, const float * features, int64_t count)
{
  double sumG = 0.0, sumGR = 0.0;
  for (int64_t start = 0; start < count; start += kAttentionBlock)
  {
    const int64_t stop = std::min(count, start + kAttentionBlock);
    Float8        a{}, b{};
    int64_t       i = start;
    for (; i + kAttentionLanes <= stop; i += kAttentionLanes)
    {
      const Float8 gv = Load8(g + i);
      const Float8 refined = (Load8(attn + i) * Load8(features + i) - c.center) * c.gain;
      a += gv;
      b += gv * refined;
    }
    double blockG = 0.0, blockGR = 0.0;
    for (; i < stop; ++i)
    {
      blockG += g[i];
      blockGR += g[i] * ((attn[i] * features[i] - c.center) * c.gain);
    }
    for (int j = 0; j < kAttentionLanes; ++j)
    {
      blockG += a[j];
      blockGR += b[j];
    }
    sumG += blockG;
    sumGR += blockGR;
  }
  return { sumG, sumGR };
}

// Pass 2: sum(dattn attn).
double
SumAttentionGradient(const BackwardScalars & c,
                     const float *           g,
                     const float *           gA,
                     const float *           attn,
                     const float *           features,
                     int64_t                 count)
{
  double total = 0.0;
  for (int64_t start = 0; start < count; start += kAttentionBlock)
  {
    const int64_t stop = std::min(count, start + kAttentionBlock);
    Float8        acc{};
    int64_t       i = start;
    for (; i + kAttentionLanes <= stop; i += kAttentionLanes)
    {
      const Float8 av = Load8(attn + i);
      Float8       da = RefinedGradient8(c, Load8(g + i), av, Load8(features + i)) * Load8(features + i);
      if (gA != nullptr)
      {
        da += Load8(gA + i);
      }
      acc += da * av;
    }
    double block = 0.0;
    for (; i < stop; ++i)
    {
      const float da = RefinedGradient(c, g[i], attn[i], features[i]) * features[i] + (gA != nullptr ? gA[i] : 0.0f);
      block += da * attn[i];
    }
    for (int j = 0; j < kAttentionLanes; ++j)
    {
      block += acc[j];
    }
    total += block;
  }
  return total;
}

// Pass 3: the three input gradients.
template<bool AbsoluteOfResidual>
void
WriteInputGradients(const BackwardScalars & c,
                    const float *           upper,
                    const float *           lower,
                    const float *           g,
                    const float *           gA,
                    const float *           attn,
                    const float *           features,
                    float *                 dUpper,
                    float *                 dLower,
                    float *                 dFeatures,
                    int64_t                 count)
{
  int64_t i = 0;
  for (; i + kAttentionLanes <= count; i += kAttentionLanes)
  {
    const Float8 gv = Load8(g + i), av = Load8(attn + i), fv = Load8(features + i);
    const Float8 dP = RefinedGradient8(c, gv, av, fv);
    Float8       da = dP * fv;
    if (gA != nullptr)
    {
      da += Load8(gA + i);
    }
    Float8       dd = av * (da - c.attentionSum);
    const Float8 su = Sigmoid8(Load8(upper + i)), sl = Sigmoid8(Load8(lower + i));
    if (AbsoluteOfResidual)
    {
      const Float8 d = su - sl;
      dd = d > 0.0f ? dd : (d < 0.0f ? -dd : Float8{});
    }
    Store8(dUpper + i, gv + dd * su * (1.0f - su));
    Store8(dLower + i, gv - dd * sl * (1.0f - sl));
    Store8(dFeatures + i, dP * av);
  }
  for (; i < count; ++i)
  {
    const float dP = RefinedGradient(c, g[i], attn[i], features[i]);
    const float da = dP * features[i] + (gA != nullptr ? gA[i] : 0.0f);
    float       dd = attn[i] * (da - c.attentionSum);
    const float su = Sigmoid(upper[i]), sl = Sigmoid(lower[i]);
    if (AbsoluteOfResidual)
    {
      const float d = su - sl;
      dd = d > 0.0f ? dd : (d < 0.0f ? -dd : 0.0f);
    }
    dUpper[i] = g[i] + dd * su * (1.0f - su);
    dLower[i] = g[i] - dd * sl * (1.0f - sl);
    dFeatures[i] = dP * attn[i];
  }
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

namespace
{
bool
OperandsApply(const torch::Tensor & upper,
              const torch::Tensor & lowerAligned,
              const torch::Tensor & imageFeatures,
              SoftmaxAxis           axis)
{
  return Avx2FmaAvailable() && axis == SoftmaxAxis::Space && AttentionOperand(upper) &&
         AttentionOperand(lowerAligned) && AttentionOperand(imageFeatures) &&
         lowerAligned.sizes().equals(upper.sizes()) && imageFeatures.sizes().equals(upper.sizes());
}

// The forward of FusedDivAttention on contiguous operands; `statistics` (2 floats per instance: the norm's center and
// gain) is written when not null, for the backward.
void
ForwardInto(const torch::Tensor & u,
            const torch::Tensor & l,
            const torch::Tensor & f,
            AbsolutePlacement     placement,
            bool                  normalizeRefined,
            double                eps,
            double                refinedScale,
            torch::Tensor &       attention,
            torch::Tensor &       fusionInput,
            float *               statistics)
{
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
        if (statistics != nullptr)
        {
          statistics[2 * instance] = center;
          statistics[2 * instance + 1] = gain;
        }
        for (int64_t i = 0; i < count; ++i)
        {
          const float a = attn[i] * scale;
          attn[i] = a;
          out[i] = up[i] + low[i] + (a * features[i] - center) * gain;
        }
      }
    });
#else
  (void)uData, (void)lData, (void)fData, (void)aData, (void)oData, (void)voxels, (void)placement,
    (void)normalizeRefined, (void)eps, (void)refinedScale, (void)statistics;
#endif
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Training: the fused forward, and a three-pass backward (WriteInputGradients above) instead of LibTorch's ~20 passes
// over the autograd graph of the ten operators. Saves the three inputs, attn and two floats per instance.
class FusedDivAttentionFunction : public torch::autograd::Function<FusedDivAttentionFunction>
{
public:
  static variable_list
  forward(AutogradContext *     context,
          const torch::Tensor & upper,
          const torch::Tensor & lowerAligned,
          const torch::Tensor & imageFeatures,
          int64_t               placement,
          bool                  normalizeRefined,
          double                eps,
          double                refinedScale)
  {
    const auto u = upper.contiguous(), l = lowerAligned.contiguous(), f = imageFeatures.contiguous();
    auto       attention = torch::empty_like(u);
    auto       fusionInput = torch::empty_like(u);
    auto       statistics = torch::empty({ u.size(0) * u.size(1), 2 }, u.options());
    ForwardInto(u, l, f, static_cast<AbsolutePlacement>(placement), normalizeRefined, eps, refinedScale, attention,
                fusionInput, statistics.data_ptr<float>());
    context->save_for_backward({ u, l, f, attention, statistics });
    context->saved_data["placement"] = placement;
    context->saved_data["normalize"] = normalizeRefined;
    context->set_materialize_grads(false); // an unused attn gets no zero tensor to read
    return { attention, fusionInput };
  }

  static variable_list
  backward(AutogradContext * context, variable_list gradients)
  {
    RECORD_USER_SCOPE("diva::fused_div_attention_backward");
    const auto    saved = context->get_saved_variables();
    const auto &  u = saved[0];
    const auto &  l = saved[1];
    const auto &  f = saved[2];
    const auto &  attention = saved[3];
    const auto &  statistics = saved[4];
    const auto    placement = static_cast<AbsolutePlacement>(context->saved_data["placement"].toInt());
    const bool    normalize = context->saved_data["normalize"].toBool();
    torch::Tensor gAttention = gradients[0].defined() ? gradients[0].contiguous() : torch::Tensor();
    torch::Tensor gOutput = gradients[1].defined() ? gradients[1].contiguous() : torch::zeros_like(u);
    auto          dUpper = torch::empty_like(u), dLower = torch::empty_like(u), dFeatures = torch::empty_like(u);
    const int64_t instances = u.size(0) * u.size(1), count = u.numel() / instances;
    const double  sqrtVoxels = std::sqrt(static_cast<double>(count));
#if defined(DIVA_FUSED_ATTENTION_X86)
    const float * stats = statistics.data_ptr<float>();
    at::parallel_for(
      0, instances, 1,
      [&](int64_t begin, int64_t end)
      {
        for (int64_t instance = begin; instance < end; ++instance)
        {
          const int64_t   offset = instance * count;
          const float *   g = gOutput.data_ptr<float>() + offset;
          const float *   gA = gAttention.defined() ? gAttention.data_ptr<float>() + offset : nullptr;
          const float *   attn = attention.data_ptr<float>() + offset;
          const float *   features = f.data_ptr<float>() + offset;
          BackwardScalars c;
          c.normalize = normalize;
          c.center = stats[2 * instance];
          c.gain = stats[2 * instance + 1];
          if (normalize)
          {
            const auto sums = SumOutputGradient(c, g, attn, features, count);
            c.meanG = static_cast<float>(sums.first / count);
            c.meanGR = static_cast<float>(sums.second / count);
          }
          c.attentionSum = static_cast<float>(sqrtVoxels * SumAttentionGradient(c, g, gA, attn, features, count));
          const float * up = u.data_ptr<float>() + offset;
          const float * low = l.data_ptr<float>() + offset;
          if (placement == AbsolutePlacement::OfResidual)
          {
            WriteInputGradients<true>(c, up, low, g, gA, attn, features, dUpper.data_ptr<float>() + offset,
                                      dLower.data_ptr<float>() + offset, dFeatures.data_ptr<float>() + offset, count);
          }
          else
          {
            WriteInputGradients<false>(c, up, low, g, gA, attn, features, dUpper.data_ptr<float>() + offset,
                                       dLower.data_ptr<float>() + offset, dFeatures.data_ptr<float>() + offset, count);
          }
        }
      });
#else
    (void)placement, (void)normalize, (void)sqrtVoxels;
#endif
    return { dUpper, dLower, dFeatures, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor() };
  }
};
} // namespace

bool
FusedDivAttentionApplies(const torch::Tensor & upper,
                         const torch::Tensor & lowerAligned,
                         const torch::Tensor & imageFeatures,
                         SoftmaxAxis           axis)
{
  return OperandsApply(upper, lowerAligned, imageFeatures, axis) &&
         !AutogradRecords(upper, lowerAligned, imageFeatures);
}

bool
FusedDivAttentionTrainingApplies(const torch::Tensor & upper,
                                 const torch::Tensor & lowerAligned,
                                 const torch::Tensor & imageFeatures,
                                 SoftmaxAxis           axis)
{
  return OperandsApply(upper, lowerAligned, imageFeatures, axis);
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
  const auto u = upper.contiguous(), l = lowerAligned.contiguous(), f = imageFeatures.contiguous();
  auto       attention = torch::empty_like(u);
  auto       fusionInput = torch::empty_like(u);
  ForwardInto(u, l, f, placement, normalizeRefined, eps, refinedScale, attention, fusionInput, nullptr);
  return { attention, fusionInput };
}

FusedDivAttentionResult
FusedDivAttentionWithGradients(const torch::Tensor & upper,
                               const torch::Tensor & lowerAligned,
                               const torch::Tensor & imageFeatures,
                               AbsolutePlacement     placement,
                               bool                  normalizeRefined,
                               double                eps,
                               double                refinedScale)
{
  RECORD_USER_SCOPE("diva::fused_div_attention");
  if (!FusedDivAttentionTrainingApplies(upper, lowerAligned, imageFeatures, SoftmaxAxis::Space))
  {
    throw std::invalid_argument("FusedDivAttentionWithGradients: needs float32 CPU tensors [N, C, D, H, W] of one "
                                "shape");
  }
  const auto outputs = FusedDivAttentionFunction::apply(
    upper, lowerAligned, imageFeatures, static_cast<int64_t>(placement), normalizeRefined, eps, refinedScale);
  return { outputs[0], outputs[1] };
}

} // namespace diva
