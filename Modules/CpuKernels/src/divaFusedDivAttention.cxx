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
#include <vector>

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
#  include <immintrin.h>
// Eight floats in one value: GCC / Clang vector extensions, used only inside functions compiled for AVX2 + FMA
// (chosen at run time): at SSE width the three exponentials per voxel made this slower than LibTorch's AVX2 operators.
// The compiler does not vectorise the scalar loop on its own: the exponent bit tricks and the selects stop it.
#  define DIVA_INLINE __attribute__((always_inline))
// On the functions that call AVX intrinsics: clang does not apply the GCC target pragma below to them.
#  define DIVA_AVX2_FMA __attribute__((target("avx2,fma")))
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
// The features of M_ref: the given ones, or (Raw) leaky_relu((x - center) * scale + shift) of the image branch's raw
// convolution output, its instance norm applied on the fly (FusedDivAttentionJunction).
struct FeatureMap
{
  float center = 0.0f, scale = 1.0f, shift = 0.0f, slope = 1.0f;
};

template<bool Raw>
DIVA_INLINE inline Float8
Features8(const FeatureMap & m, Float8 x)
{
  if (!Raw)
  {
    return x;
  }
  const Float8 v = (x - m.center) * m.scale + m.shift;
  return v < 0.0f ? v * m.slope : v;
}

template<bool Raw>
inline float
Features(const FeatureMap & m, float x)
{
  if (!Raw)
  {
    return x;
  }
  const float v = (x - m.center) * m.scale + m.shift;
  return v < 0.0f ? v * m.slope : v;
}

// StoreProducts: `exponentials` receives exp(residual) * features instead (FusedDivAttentionJunction without the map:
// its second pass then needs neither the map nor the features).
template<bool AbsoluteOfResidual, bool RawFeatures = false, bool StoreProducts = false>
Pass1Sums
ExponentiateResidual(const float *      upper,
                     const float *      lower,
                     const float *      features,
                     float *            exponentials,
                     int64_t            count,
                     const FeatureMap & map = {})
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
      const Float8 product = value * Features8<RawFeatures>(map, Load8(features + i));
      Store8(exponentials + i, StoreProducts ? product : value);
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
      const float product = value * Features<RawFeatures>(map, features[i]);
      exponentials[i] = StoreProducts ? product : value;
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
// Count, mean and sum of squared deviations of a run of values; Merge combines two runs (Chan, Golub and LeVeque), so
// statistics taken tile by tile add up in a fixed order whatever the threads.
struct Moments
{
  double count = 0.0, mean = 0.0, squares = 0.0;
};

inline void
Merge(Moments & total, const Moments & part)
{
  if (part.count == 0.0)
  {
    return;
  }
  const double n = total.count + part.count, delta = part.mean - total.mean;
  total.mean += delta * (part.count / n);
  total.squares += part.squares + delta * delta * (total.count * part.count / n);
  total.count = n;
}

// One block of at most kAttentionBlock values, read twice (the second time from L1): its mean, then the squared
// deviations from it, so no cancellation whatever the mean.
Moments
BlockMoments(const float * x, int64_t count)
{
  Float8  s{};
  int64_t i = 0;
  for (; i + kAttentionLanes <= count; i += kAttentionLanes)
  {
    s += Load8(x + i);
  }
  double sum = 0.0;
  for (int64_t j = i; j < count; ++j)
  {
    sum += x[j];
  }
  for (int j = 0; j < kAttentionLanes; ++j)
  {
    sum += s[j];
  }
  const double n = static_cast<double>(count);
  const auto   center = static_cast<float>(sum / n);
  Float8       d{}, q{};
  for (i = 0; i + kAttentionLanes <= count; i += kAttentionLanes)
  {
    const Float8 v = Load8(x + i) - center;
    d += v;
    q += v * v;
  }
  double deviations = 0.0, squares = 0.0;
  for (int64_t j = i; j < count; ++j)
  {
    const double v = static_cast<double>(x[j]) - center;
    deviations += v;
    squares += v * v;
  }
  for (int j = 0; j < kAttentionLanes; ++j)
  {
    deviations += d[j];
    squares += q[j];
  }
  // The float center's rounding: deviations from the exact mean.
  return { n, center + deviations / n, std::max(0.0, squares - deviations * deviations / n) };
}

Moments
RunMoments(const float * x, int64_t count)
{
  Moments total;
  for (int64_t start = 0; start < count; start += kAttentionBlock)
  {
    Merge(total, BlockMoments(x + start, std::min(kAttentionBlock, count - start)));
  }
  return total;
}

// Per (sample, channel) constants of FusedDivAttentionJunction's second pass.
struct JunctionChannel
{
  FeatureMap features;                   // the image norm + leaky ReLU, on the fly
  float      scale = 1.0f;               // exp(residual) -> attn
  float      center = 0.0f, gain = 1.0f; // M_ref's norm
};

// X = upper + lowerAligned + (exp(residual) * F * scale - center) * gain over one run of a channel, into `out`.
// Keep: `stored` holds exp(residual), attn = exp * scale is written back over it, and F comes from the raw image
// convolution; otherwise `stored` already holds exp(residual) * F. Both compute the same products in the same order,
// so the output has the same bits with or without the map.
template<bool Keep>
void
FuseRun(const JunctionChannel & k,
        const float *           up,
        const float *           low,
        float *                 stored,
        const float *           raw,
        float *                 out,
        int64_t                 count)
{
  int64_t i = 0;
  for (; i + kAttentionLanes <= count; i += kAttentionLanes)
  {
    Float8 product = Load8(stored + i);
    if (Keep)
    {
      Store8(stored + i, product * k.scale);
      product = product * Features8<true>(k.features, Load8(raw + i));
    }
    Store8(out + i, Load8(up + i) + Load8(low + i) + (product * k.scale - k.center) * k.gain);
  }
  for (; i < count; ++i)
  {
    float product = stored[i];
    if (Keep)
    {
      stored[i] = product * k.scale;
      product = product * Features<true>(k.features, raw[i]);
    }
    out[i] = up[i] + low[i] + (product * k.scale - k.center) * k.gain;
  }
}

// y = leaky_relu((y - center) * scale + shift) in place.
void
NormalizeRun(float * y, int64_t count, const FeatureMap & map)
{
  int64_t i = 0;
  for (; i + kAttentionLanes <= count; i += kAttentionLanes)
  {
    Store8(y + i, Features8<true>(map, Load8(y + i)));
  }
  for (; i < count; ++i)
  {
    y[i] = Features<true>(map, y[i]);
  }
}
// y = w x for a tile in cache: w [rows, depth] (row-major), x [depth, length] (rows `xStride` apart), y rows `stride`
// apart. Per block of 24 columns (its x stays in L1 across all rows), four output rows by three vectors per step:
// twelve accumulators in registers, four broadcasts and three loads against twelve FMAs, so the FMA units set the
// pace. (OpenBLAS runs on one thread inside these tasks, and per-tile calls on these flat products were slower.)
DIVA_AVX2_FMA void
MultiplyTile(const float * w,
             int64_t       rows,
             int64_t       depth,
             const float * x,
             int64_t       xStride,
             int64_t       length,
             float *       y,
             int64_t       stride)
{
  int64_t j = 0;
  for (; j + 24 <= length; j += 24)
  {
    int64_t o = 0;
    for (; o + 4 <= rows; o += 4)
    {
      const float * w0 = w + o * depth;
      const float * w1 = w0 + depth;
      const float * w2 = w1 + depth;
      const float * w3 = w2 + depth;
      __m256        a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
      __m256        a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
      const float * xc = x + j;
      for (int64_t c = 0; c < depth; ++c, xc += xStride)
      {
        const __m256 x0 = _mm256_loadu_ps(xc), x1 = _mm256_loadu_ps(xc + 8), x2 = _mm256_loadu_ps(xc + 16);
        __m256       b = _mm256_broadcast_ss(w0 + c);
        a00 = _mm256_fmadd_ps(b, x0, a00);
        a01 = _mm256_fmadd_ps(b, x1, a01);
        a02 = _mm256_fmadd_ps(b, x2, a02);
        b = _mm256_broadcast_ss(w1 + c);
        a10 = _mm256_fmadd_ps(b, x0, a10);
        a11 = _mm256_fmadd_ps(b, x1, a11);
        a12 = _mm256_fmadd_ps(b, x2, a12);
        b = _mm256_broadcast_ss(w2 + c);
        a20 = _mm256_fmadd_ps(b, x0, a20);
        a21 = _mm256_fmadd_ps(b, x1, a21);
        a22 = _mm256_fmadd_ps(b, x2, a22);
        b = _mm256_broadcast_ss(w3 + c);
        a30 = _mm256_fmadd_ps(b, x0, a30);
        a31 = _mm256_fmadd_ps(b, x1, a31);
        a32 = _mm256_fmadd_ps(b, x2, a32);
      }
      float * y0 = y + o * stride + j;
      _mm256_storeu_ps(y0, a00);
      _mm256_storeu_ps(y0 + 8, a01);
      _mm256_storeu_ps(y0 + 16, a02);
      _mm256_storeu_ps(y0 + stride, a10);
      _mm256_storeu_ps(y0 + stride + 8, a11);
      _mm256_storeu_ps(y0 + stride + 16, a12);
      _mm256_storeu_ps(y0 + 2 * stride, a20);
      _mm256_storeu_ps(y0 + 2 * stride + 8, a21);
      _mm256_storeu_ps(y0 + 2 * stride + 16, a22);
      _mm256_storeu_ps(y0 + 3 * stride, a30);
      _mm256_storeu_ps(y0 + 3 * stride + 8, a31);
      _mm256_storeu_ps(y0 + 3 * stride + 16, a32);
    }
    for (; o < rows; ++o) // rows beyond a multiple of four
    {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0;
      for (int64_t c = 0; c < depth; ++c)
      {
        const __m256  b = _mm256_broadcast_ss(w + o * depth + c);
        const float * xc = x + c * xStride + j;
        a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(xc), a0);
        a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(xc + 8), a1);
        a2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(xc + 16), a2);
      }
      _mm256_storeu_ps(y + o * stride + j, a0);
      _mm256_storeu_ps(y + o * stride + j + 8, a1);
      _mm256_storeu_ps(y + o * stride + j + 16, a2);
    }
  }
  for (; j < length; ++j) // the tile's last columns
  {
    for (int64_t o = 0; o < rows; ++o)
    {
      float sum = 0.0f;
      for (int64_t c = 0; c < depth; ++c)
      {
        sum += w[o * depth + c] * x[c * xStride + j];
      }
      y[o * stride + j] = sum;
    }
  }
}

// Streaming stores are weakly ordered: fenced before another thread reads what they wrote (the last pass).
DIVA_AVX2_FMA void
StoresVisible()
{
  _mm_sfence();
}

// Copies a row of the cached product to the output with streaming stores where aligned: the output is read again only
// in the last pass, long after it would have left the cache, so the stores skip reading the lines first.
DIVA_AVX2_FMA void
CopyOut(const float * source, float * target, int64_t count)
{
  int64_t i = 0;
  if (reinterpret_cast<std::uintptr_t>(target) % 32 == 0)
  {
    for (; i + kAttentionLanes <= count; i += kAttentionLanes)
    {
      _mm256_stream_ps(target + i, _mm256_loadu_ps(source + i));
    }
  }
  for (; i < count; ++i)
  {
    target[i] = source[i];
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

bool
FusedDivAttentionJunctionApplies(const torch::Tensor &           upper,
                                 const torch::Tensor &           lowerAligned,
                                 const torch::Tensor &           imageConvolved,
                                 SoftmaxAxis                     axis,
                                 const FusedJunctionParameters & p)
{
  if (!FusedDivAttentionApplies(upper, lowerAligned, imageConvolved, axis))
  {
    return false;
  }
  const int64_t channels = upper.size(1);
  const auto    perChannel = [channels](const torch::Tensor & t)
  {
    return !t.defined() ||
           (t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.dim() == 1 && t.size(0) == channels);
  };
  const auto & w = p.fuseWeight;
  return perChannel(p.imageNormWeight) && perChannel(p.imageNormBias) && perChannel(p.fuseNormWeight) &&
         perChannel(p.fuseNormBias) && w.defined() && w.device().is_cpu() && w.scalar_type() == torch::kFloat &&
         w.dim() == 5 && w.size(0) == channels && w.size(1) == channels && w.size(2) == 1 && w.size(3) == 1 &&
         w.size(4) == 1 &&
         !AutogradRecords(p.imageNormWeight, p.imageNormBias, p.fuseWeight, p.fuseNormWeight, p.fuseNormBias);
}

FusedJunctionResult
FusedDivAttentionJunction(const torch::Tensor &           upper,
                          const torch::Tensor &           lowerAligned,
                          const torch::Tensor &           imageConvolved,
                          const FusedJunctionParameters & p)
{
  RECORD_USER_SCOPE("diva::fused_div_attention_junction"); // named in LibTorch profiles
  if (!FusedDivAttentionJunctionApplies(upper, lowerAligned, imageConvolved, SoftmaxAxis::Space, p))
  {
    throw std::invalid_argument("FusedDivAttentionJunction: needs float32 CPU tensors [N, C, D, H, W] of one shape, "
                                "per-channel norm parameters of C values, a [C, C, 1, 1, 1] fusion weight and no "
                                "autograd recording");
  }
  const auto    u = upper.contiguous(), l = lowerAligned.contiguous(), g = imageConvolved.contiguous();
  const int64_t batch = u.size(0), channels = u.size(1), instances = batch * channels;
  const int64_t voxels = u.numel() / instances;
  const auto    values = [channels](const torch::Tensor & t, float fallback)
  {
    std::vector<float> out(static_cast<size_t>(channels), fallback);
    if (t.defined())
    {
      const auto c = t.contiguous();
      std::copy(c.data_ptr<float>(), c.data_ptr<float>() + channels, out.begin());
    }
    return out;
  };
  const auto imageWeight = values(p.imageNormWeight, 1.0f), imageBias = values(p.imageNormBias, 0.0f);
  const auto fuseWeight = values(p.fuseNormWeight, 1.0f), fuseBias = values(p.fuseNormBias, 0.0f);
  const auto slope = static_cast<float>(p.negativeSlope);
  auto       exponentials = torch::empty_like(u); // attn when kept, else exp(residual) * F
  auto       fused = torch::empty_like(u);
#if defined(DIVA_FUSED_ATTENTION_X86)
  const float *                uData = u.data_ptr<float>();
  const float *                lData = l.data_ptr<float>();
  const float *                gData = g.data_ptr<float>();
  float *                      eData = exponentials.data_ptr<float>();
  float *                      yData = fused.data_ptr<float>();
  const double                 n = static_cast<double>(voxels);
  std::vector<JunctionChannel> constants(static_cast<size_t>(instances));
  // Pass 1, per instance: the image norm's statistics (one pass), then exp of the residual and M_ref's moments.
  at::parallel_for(
    0, instances, 1,
    [&](int64_t begin, int64_t end)
    {
      for (int64_t instance = begin; instance < end; ++instance)
      {
        const int64_t     offset = instance * voxels, channel = instance % channels;
        const auto        image = RunMoments(gData + offset, voxels);
        JunctionChannel & k = constants[static_cast<size_t>(instance)];
        const double      imageScale =
          imageWeight[static_cast<size_t>(channel)] / std::sqrt(image.squares / n + p.imageNormEps);
        k.features = { static_cast<float>(image.mean), static_cast<float>(imageScale),
                       imageBias[static_cast<size_t>(channel)], slope };
        const float * up = uData + offset;
        const float * low = lData + offset;
        const float * raw = gData + offset;
        float *       stored = eData + offset;
        const bool    residual = p.placement == AbsolutePlacement::OfResidual;
        const auto    sums =
          p.keepAttention
               ? (residual ? ExponentiateResidual<true, true>(up, low, raw, stored, voxels, k.features)
                           : ExponentiateResidual<false, true>(up, low, raw, stored, voxels, k.features))
               : (residual ? ExponentiateResidual<true, true, true>(up, low, raw, stored, voxels, k.features)
                           : ExponentiateResidual<false, true, true>(up, low, raw, stored, voxels, k.features));
        // As ForwardInto: attn = exp / sum / sqrt(DHW), and M_ref's moments scaled by that factor.
        const double factor = 1.0 / (sums.exponentials * std::sqrt(n));
        const double mean = factor * sums.products / n;
        const double variance =
          std::max(0.0, factor * factor * (sums.squares / n - (sums.products / n) * (sums.products / n)));
        const double k2 = p.refinedScale;
        k.scale = static_cast<float>(factor);
        k.center = static_cast<float>(p.normalizeRefined ? mean : 0.0);
        k.gain = static_cast<float>(p.normalizeRefined ? k2 / std::sqrt(k2 * k2 * variance + p.refinedEps) : 1.0);
      }
    });
  // Pass 2, per tile of voxels across all channels: X in a cache-sized buffer, the 1x1x1 convolution as one matrix
  // product beside it, the product's statistics while it is in cache, then the product out to the output.
  // About 64 K floats per tile: X (and the product beside it) fit in this machine's 1 MiB L2 per core.
  const int64_t tile = std::min(voxels, std::max<int64_t>(256, (65536 / channels) / kAttentionLanes * kAttentionLanes));
  const int64_t tilesPerSample = (voxels + tile - 1) / tile, tasks = batch * tilesPerSample;
  std::vector<Moments> partials(static_cast<size_t>(tasks * channels));
  // Detached: the worker threads do not inherit the caller's inference or no-grad mode.
  const auto mixing = p.fuseWeight.detach().reshape({ channels, channels }).contiguous();
  at::parallel_for(0, tasks, 1,
                   [&](int64_t begin, int64_t end)
                   {
                     // Rows 64 bytes more than a multiple of 4 KiB apart: rows exactly 4 KiB apart would share one L1
                     // set, and the product reads a column block down all of them.
                     const int64_t xStride = tile + 16;
                     auto          buffer = torch::empty({ 2 * channels * xStride }, u.options()); // x, then w x
                     for (int64_t task = begin; task < end; ++task)
                     {
                       const int64_t sample = task / tilesPerSample, start = (task % tilesPerSample) * tile;
                       const int64_t length = std::min(tile, voxels - start);
                       float *       x = buffer.data_ptr<float>();
                       float *       product = x + channels * xStride;
                       for (int64_t c = 0; c < channels; ++c)
                       {
                         const int64_t instance = sample * channels + c, offset = instance * voxels + start;
                         const auto &  k = constants[static_cast<size_t>(instance)];
                         p.keepAttention ? FuseRun<true>(k, uData + offset, lData + offset, eData + offset,
                                                         gData + offset, x + c * xStride, length)
                                          : FuseRun<false>(k, uData + offset, lData + offset, eData + offset,
                                                          gData + offset, x + c * xStride, length);
                       }
                       // Into the cached buffer, then copied out row by row: the output's rows are a channel apart
                       // (a multiple of 4 KiB), so writing the product straight there missed L1 on every store.
                       MultiplyTile(mixing.data_ptr<float>(), channels, channels, x, xStride, length, product, xStride);
                       float * y = yData + sample * channels * voxels + start;
                       for (int64_t c = 0; c < channels; ++c)
                       {
                         const float * row = product + c * xStride;
                         partials[static_cast<size_t>(task * channels + c)] = RunMoments(row, length);
                         CopyOut(row, y + c * voxels, length);
                       }
                     }
                     StoresVisible();
                   });
  // Pass 3, per instance: the fusion norm from the tiles' statistics (merged in tile order) and the leaky ReLU.
  at::parallel_for(
    0, instances, 1,
    [&](int64_t begin, int64_t end)
    {
      for (int64_t instance = begin; instance < end; ++instance)
      {
        const int64_t sample = instance / channels, channel = instance % channels;
        Moments       total;
        for (int64_t t = 0; t < tilesPerSample; ++t)
        {
          Merge(total, partials[static_cast<size_t>((sample * tilesPerSample + t) * channels + channel)]);
        }
        const double scale = fuseWeight[static_cast<size_t>(channel)] / std::sqrt(total.squares / n + p.fuseNormEps);
        const FeatureMap map{ static_cast<float>(total.mean), static_cast<float>(scale),
                              fuseBias[static_cast<size_t>(channel)], slope };
        NormalizeRun(yData + instance * voxels, voxels, map);
      }
    });
#else
  (void)imageWeight, (void)imageBias, (void)fuseWeight, (void)fuseBias, (void)slope;
#endif
  return { p.keepAttention ? exponentials : torch::Tensor(), fused };
}

} // namespace diva
