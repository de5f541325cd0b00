#include "divaWinogradConvolution3d.h"
#include "divaAutogradRecording.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>

#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#  include <immintrin.h>
#  define DIVA_WINOGRAD_X86 1
#endif

// F(2x2x2, 3x3x3), the matrices of Lavin & Gray (2016), applied along each of the three axes:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]  (input tile, 4 -> 4)
//   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] (kernel, 3 -> 4)
//   A^T = [1 1 1 0; 0 1 -1 -1]                      (product, 4 -> 2)
// A tile is 2x2x2 outputs; tile t along an axis reads inputs 2t-1 .. 2t+2 (padding 1).

namespace diva
{
namespace
{
constexpr int64_t kTilesPerBlock = 24; // tiles along x handled together: three AVX2 vectors of eight
constexpr int64_t kVectorsPerBlock = kTilesPerBlock / 8;
constexpr int64_t kOutputChannelBlock = 4; // output channels per register block of the channel products
constexpr int64_t kPoints = 64;            // 4^3 transformed points per tile

int64_t
RoundUp(int64_t value, int64_t multiple)
{
  return (value + multiple - 1) / multiple * multiple;
}

// U[point][channel block][in][k] = (G w[out][in] G^T) at point, out = block * 4 + k; zero beyond the last output.
void
TransformKernel(const float * weight, int64_t outChannels, int64_t inChannels, float * transformed)
{
  static constexpr float G[4][3] = {
    { 1.0f, 0.0f, 0.0f }, { 0.5f, 0.5f, 0.5f }, { 0.5f, -0.5f, 0.5f }, { 0.0f, 0.0f, 1.0f }
  };
  const int64_t blocks = RoundUp(outChannels, kOutputChannelBlock) / kOutputChannelBlock;
  at::parallel_for(0, outChannels, 1,
                   [&](int64_t begin, int64_t end)
                   {
                     for (int64_t out = begin; out < end; ++out)
                     {
                       const int64_t block = out / kOutputChannelBlock, k = out % kOutputChannelBlock;
                       for (int64_t in = 0; in < inChannels; ++in)
                       {
                         const float * w = weight + (out * inChannels + in) * 27; // [z][y][x]
                         float         alongX[3][3][4], alongY[3][4][4];
                         for (int a = 0; a < 3; ++a)
                           for (int b = 0; b < 3; ++b)
                             for (int kx = 0; kx < 4; ++kx)
                               alongX[a][b][kx] = G[kx][0] * w[a * 9 + b * 3] + G[kx][1] * w[a * 9 + b * 3 + 1] +
                                                  G[kx][2] * w[a * 9 + b * 3 + 2];
                         for (int a = 0; a < 3; ++a)
                           for (int ky = 0; ky < 4; ++ky)
                             for (int kx = 0; kx < 4; ++kx)
                               alongY[a][ky][kx] = G[ky][0] * alongX[a][0][kx] + G[ky][1] * alongX[a][1][kx] +
                                                   G[ky][2] * alongX[a][2][kx];
                         for (int kz = 0; kz < 4; ++kz)
                           for (int ky = 0; ky < 4; ++ky)
                             for (int kx = 0; kx < 4; ++kx)
                             {
                               const int64_t point = kz * 16 + ky * 4 + kx;
                               transformed[((point * blocks + block) * inChannels + in) * kOutputChannelBlock + k] =
                                 G[kz][0] * alongY[0][ky][kx] + G[kz][1] * alongY[1][ky][kx] +
                                 G[kz][2] * alongY[2][ky][kx];
                             }
                       }
                     }
                   });
}

struct Problem
{
  const float * input;
  const float * kernel; // transformed (TransformKernel)
  const float * bias;   // or null
  float *       output;
  int64_t       batch, inChannels, outChannels, depth, height, width;
  int64_t       tilesZ, tilesY, blocksX, outChannelBlocks;
};

#if defined(DIVA_WINOGRAD_X86)
// Scratch of one thread, 32-byte aligned. The storage is the thread's own and outlives the call (a network calls
// this kernel for layer after layer with the same sizes): no allocation, and no page faults, after the first call.
class Scratch
{
public:
  explicit Scratch(const Problem & p)
  {
    thread_local std::vector<float> storage;
    const auto                      size =
      static_cast<size_t>(8 + 2 * 16 * 4 * kTilesPerBlock +
                          kPoints * kTilesPerBlock * (p.inChannels + p.outChannelBlocks * kOutputChannelBlock));
    if (storage.size() < size)
    {
      storage.resize(size);
    }
    auto * base =
      reinterpret_cast<float *>((reinterpret_cast<std::uintptr_t>(storage.data()) + 31) & ~std::uintptr_t(31));
    alongX = base;
    alongY = alongX + 16 * 4 * kTilesPerBlock;
    transformedInput = alongY + 16 * 4 * kTilesPerBlock;
    products = transformedInput + kPoints * p.inChannels * kTilesPerBlock;
  }
  float * alongX;           // [z row 4][y row 4][kx 4][tile]
  float * alongY;           // [z row 4][ky 4][kx 4][tile]
  float * transformedInput; // V: [point][in][tile]
  float * products;         // M: [point][out (blocks of 4)][tile]
};

// Lanes 1..7 of v, then lane 0 of w: the vector one tile further along.
__attribute__((target("avx2,fma"))) inline __m256
NextTile(__m256 v, __m256 w)
{
  return _mm256_blend_ps(_mm256_permutevar8x32_ps(v, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0)),
                         _mm256_permutevar8x32_ps(w, _mm256_setzero_si256()), 0x80);
}

// V[.][in][.] for the block of tiles starting at firstTile of tile row (n, tz, ty).
__attribute__((target("avx2,fma"))) void
TransformInputBlock(const Problem & p, Scratch & s, int64_t n, int64_t in, int64_t tz, int64_t ty, int64_t firstTile)
{
  // The eight 8-lane loads that cover inputs 2 t0 - 1 .. 2 t0 + 62 of a row, lane valid where that input exists:
  // masked lanes read as zero (the padding) and are never touched in memory.
  const int64_t start = 2 * firstTile - 1;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), minusOne = _mm256_set1_epi32(-1);
  const __m256i width = _mm256_set1_epi32(static_cast<int>(p.width));
  __m256i       valid[8];
  for (int k = 0; k < 8; ++k)
  {
    const __m256i x = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(start + 8 * k)), lane);
    valid[k] = _mm256_and_si256(_mm256_cmpgt_epi32(x, minusOne), _mm256_cmpgt_epi32(width, x));
  }
  for (int64_t r = 0; r < 16; ++r)
  {
    const int64_t z = 2 * tz - 1 + r / 4, y = 2 * ty - 1 + r % 4;
    float *       alongX = s.alongX + r * 4 * kTilesPerBlock;
    if (z < 0 || z >= p.depth || y < 0 || y >= p.height)
    {
      std::memset(alongX, 0, sizeof(float) * 4 * kTilesPerBlock);
      continue;
    }
    // Pointer arithmetic in integers: the first lane may sit one element before the tensor's buffer (masked).
    const auto rowAddress =
      reinterpret_cast<std::uintptr_t>(p.input + (((n * p.inChannels + in) * p.depth + z) * p.height + y) * p.width);
    const auto at = [&](int64_t offset)
    { return reinterpret_cast<const float *>(rowAddress + static_cast<std::uintptr_t>(offset * 4)); };
    // odd[m] = input 2(t0 + m) - 1 and even[m] = input 2(t0 + m), deinterleaved in registers: the four inputs of
    // tile m are odd[m], even[m], odd[m + 1], even[m + 1].
    __m256 odd[4], even[4];
    for (int g = 0; g < 4; ++g)
    {
      const __m256 lo = _mm256_maskload_ps(at(start + 16 * g), valid[2 * g]);
      const __m256 hi = _mm256_maskload_ps(at(start + 16 * g + 8), valid[2 * g + 1]);
      odd[g] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
      even[g] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
    }
    for (int g = 0; g < kVectorsPerBlock; ++g)
    {
      const __m256 d0 = odd[g], d1 = even[g], d2 = NextTile(odd[g], odd[g + 1]), d3 = NextTile(even[g], even[g + 1]);
      _mm256_store_ps(alongX + 0 * kTilesPerBlock + 8 * g, _mm256_sub_ps(d0, d2));
      _mm256_store_ps(alongX + 1 * kTilesPerBlock + 8 * g, _mm256_add_ps(d1, d2));
      _mm256_store_ps(alongX + 2 * kTilesPerBlock + 8 * g, _mm256_sub_ps(d2, d1));
      _mm256_store_ps(alongX + 3 * kTilesPerBlock + 8 * g, _mm256_sub_ps(d1, d3));
    }
  }
  // Along y (rows iy of each z row), then along z, into V[point][in][tile].
  for (int64_t iz = 0; iz < 4; ++iz)
    for (int64_t c = 0; c < 4 * kTilesPerBlock; c += 8) // (kx, tile) pairs
    {
      const float * x = s.alongX + iz * 16 * kTilesPerBlock + c;
      const __m256  d0 = _mm256_load_ps(x), d1 = _mm256_load_ps(x + 4 * kTilesPerBlock);
      const __m256  d2 = _mm256_load_ps(x + 8 * kTilesPerBlock), d3 = _mm256_load_ps(x + 12 * kTilesPerBlock);
      float *       y = s.alongY + iz * 16 * kTilesPerBlock + c;
      _mm256_store_ps(y, _mm256_sub_ps(d0, d2));
      _mm256_store_ps(y + 4 * kTilesPerBlock, _mm256_add_ps(d1, d2));
      _mm256_store_ps(y + 8 * kTilesPerBlock, _mm256_sub_ps(d2, d1));
      _mm256_store_ps(y + 12 * kTilesPerBlock, _mm256_sub_ps(d1, d3));
    }
  const int64_t pointStride = p.inChannels * kTilesPerBlock;
  for (int64_t c = 0; c < 16 * kTilesPerBlock; c += 8) // (ky, kx, tile)
  {
    const float * y = s.alongY + c;
    const __m256  d0 = _mm256_load_ps(y), d1 = _mm256_load_ps(y + 16 * kTilesPerBlock);
    const __m256  d2 = _mm256_load_ps(y + 32 * kTilesPerBlock), d3 = _mm256_load_ps(y + 48 * kTilesPerBlock);
    const int64_t point = c / kTilesPerBlock, tile = c % kTilesPerBlock; // point = ky * 4 + kx (kz added below)
    float *       v = s.transformedInput + point * pointStride + in * kTilesPerBlock + tile;
    _mm256_store_ps(v, _mm256_sub_ps(d0, d2));
    _mm256_store_ps(v + 16 * pointStride, _mm256_add_ps(d1, d2));
    _mm256_store_ps(v + 32 * pointStride, _mm256_sub_ps(d2, d1));
    _mm256_store_ps(v + 48 * pointStride, _mm256_sub_ps(d1, d3));
  }
}

// M[point][out][tile] = sum over in of U[point][out][in] V[point][in][tile]: 64 independent channel products,
// in register blocks of 4 output channels x 24 tiles (12 accumulators).
__attribute__((target("avx2,fma"))) void
MultiplyChannels(const Problem & p, Scratch & s)
{
  const int64_t in = p.inChannels;
  for (int64_t point = 0; point < kPoints; ++point)
  {
    const float * v = s.transformedInput + point * in * kTilesPerBlock;
    for (int64_t block = 0; block < p.outChannelBlocks; ++block)
    {
      const float * u = p.kernel + (point * p.outChannelBlocks + block) * in * kOutputChannelBlock;
      __m256        a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
      __m256        a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
      for (int64_t c = 0; c < in; ++c)
      {
        const __m256 v0 = _mm256_load_ps(v + c * kTilesPerBlock), v1 = _mm256_load_ps(v + c * kTilesPerBlock + 8),
                     v2 = _mm256_load_ps(v + c * kTilesPerBlock + 16);
        const float * w = u + c * kOutputChannelBlock;
        __m256        k = _mm256_broadcast_ss(w);
        a00 = _mm256_fmadd_ps(k, v0, a00);
        a01 = _mm256_fmadd_ps(k, v1, a01);
        a02 = _mm256_fmadd_ps(k, v2, a02);
        k = _mm256_broadcast_ss(w + 1);
        a10 = _mm256_fmadd_ps(k, v0, a10);
        a11 = _mm256_fmadd_ps(k, v1, a11);
        a12 = _mm256_fmadd_ps(k, v2, a12);
        k = _mm256_broadcast_ss(w + 2);
        a20 = _mm256_fmadd_ps(k, v0, a20);
        a21 = _mm256_fmadd_ps(k, v1, a21);
        a22 = _mm256_fmadd_ps(k, v2, a22);
        k = _mm256_broadcast_ss(w + 3);
        a30 = _mm256_fmadd_ps(k, v0, a30);
        a31 = _mm256_fmadd_ps(k, v1, a31);
        a32 = _mm256_fmadd_ps(k, v2, a32);
      }
      float * m = s.products + (point * p.outChannelBlocks + block) * kOutputChannelBlock * kTilesPerBlock;
      _mm256_store_ps(m, a00);
      _mm256_store_ps(m + 8, a01);
      _mm256_store_ps(m + 16, a02);
      _mm256_store_ps(m + 24, a10);
      _mm256_store_ps(m + 32, a11);
      _mm256_store_ps(m + 40, a12);
      _mm256_store_ps(m + 48, a20);
      _mm256_store_ps(m + 56, a21);
      _mm256_store_ps(m + 64, a22);
      _mm256_store_ps(m + 72, a30);
      _mm256_store_ps(m + 80, a31);
      _mm256_store_ps(m + 88, a32);
    }
  }
}

// Y = A^T M A along x, y and z for every output channel and tile of the block; bias added; written to the output.
__attribute__((target("avx2,fma"))) void
TransformOutputBlock(const Problem & p, Scratch & s, int64_t n, int64_t tz, int64_t ty, int64_t firstTile)
{
  const int64_t pointStride = p.outChannelBlocks * kOutputChannelBlock * kTilesPerBlock;
  for (int64_t out = 0; out < p.outChannels; ++out)
  {
    const __m256 bias = _mm256_set1_ps(p.bias != nullptr ? p.bias[out] : 0.0f);
    for (int64_t g = 0; g < kVectorsPerBlock; ++g)
    {
      const int64_t x0 = 2 * (firstTile + 8 * g);
      if (x0 >= p.width)
      {
        break;
      }
      const float * m = s.products + out * kTilesPerBlock + 8 * g;
      __m256        alongX[16][2]; // [kz][ky] x [ox]
      for (int64_t zy = 0; zy < 16; ++zy)
      {
        const __m256 m0 = _mm256_load_ps(m + (zy * 4 + 0) * pointStride),
                     m1 = _mm256_load_ps(m + (zy * 4 + 1) * pointStride),
                     m2 = _mm256_load_ps(m + (zy * 4 + 2) * pointStride),
                     m3 = _mm256_load_ps(m + (zy * 4 + 3) * pointStride);
        alongX[zy][0] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        alongX[zy][1] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
      }
      __m256 alongY[4][2][2]; // [kz][oy][ox]
      for (int64_t kz = 0; kz < 4; ++kz)
        for (int64_t ox = 0; ox < 2; ++ox)
        {
          const __m256 r0 = alongX[kz * 4 + 0][ox], r1 = alongX[kz * 4 + 1][ox], r2 = alongX[kz * 4 + 2][ox],
                       r3 = alongX[kz * 4 + 3][ox];
          alongY[kz][0][ox] = _mm256_add_ps(_mm256_add_ps(r0, r1), r2);
          alongY[kz][1][ox] = _mm256_sub_ps(_mm256_sub_ps(r1, r2), r3);
        }
      for (int64_t oz = 0; oz < 2; ++oz)
      {
        const int64_t z = 2 * tz + oz;
        if (z >= p.depth)
        {
          break;
        }
        for (int64_t oy = 0; oy < 2; ++oy)
        {
          const int64_t y = 2 * ty + oy;
          if (y >= p.height)
          {
            break;
          }
          __m256 value[2];
          for (int64_t ox = 0; ox < 2; ++ox)
          {
            const __m256 r0 = alongY[0][oy][ox], r1 = alongY[1][oy][ox], r2 = alongY[2][oy][ox], r3 = alongY[3][oy][ox];
            value[ox] = oz == 0 ? _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r0, r1), r2), bias)
                                : _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(r1, r2), r3), bias);
          }
          // Interleave the even (ox = 0) and odd (ox = 1) outputs of eight tiles into sixteen consecutive voxels.
          const __m256 low = _mm256_unpacklo_ps(value[0], value[1]), high = _mm256_unpackhi_ps(value[0], value[1]);
          const __m256 first = _mm256_permute2f128_ps(low, high, 0x20),
                       second = _mm256_permute2f128_ps(low, high, 0x31);
          float * target = p.output + (((n * p.outChannels + out) * p.depth + z) * p.height + y) * p.width + x0;
          if (x0 + 16 <= p.width)
          {
            _mm256_storeu_ps(target, first);
            _mm256_storeu_ps(target + 8, second);
          }
          else
          {
            alignas(32) float tail[16];
            _mm256_store_ps(tail, first);
            _mm256_store_ps(tail + 8, second);
            std::memcpy(target, tail, sizeof(float) * static_cast<size_t>(p.width - x0));
          }
        }
      }
    }
  }
}

void
ProcessTileRows(const Problem & p, int64_t begin, int64_t end)
{
  Scratch scratch(p);
  for (int64_t rowIndex = begin; rowIndex < end; ++rowIndex)
  {
    const int64_t n = rowIndex / (p.tilesZ * p.tilesY);
    const int64_t tz = rowIndex / p.tilesY % p.tilesZ, ty = rowIndex % p.tilesY;
    for (int64_t block = 0; block < p.blocksX; ++block)
    {
      const int64_t firstTile = block * kTilesPerBlock;
      for (int64_t in = 0; in < p.inChannels; ++in)
      {
        TransformInputBlock(p, scratch, n, in, tz, ty, firstTile);
      }
      MultiplyChannels(p, scratch);
      TransformOutputBlock(p, scratch, n, tz, ty, firstTile);
    }
  }
}
#endif
} // namespace

bool
WinogradConvolution3dIsAvailable()
{
#if defined(DIVA_WINOGRAD_X86)
  static const bool available = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return available;
#else
  return false;
#endif
}

bool
WinogradConvolution3dApplies(const torch::Tensor & input,
                             const torch::Tensor & weight,
                             const torch::Tensor & bias,
                             at::IntArrayRef       stride,
                             at::IntArrayRef       padding,
                             at::IntArrayRef       dilation,
                             int64_t               groups)
{
  const auto cpuFloat = [](const torch::Tensor & t)
  { return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided; };
  return WinogradConvolution3dIsAvailable() && !AutogradRecords(input, weight, bias) && cpuFloat(input) &&
         cpuFloat(weight) &&
         (!bias.defined() || (cpuFloat(bias) && bias.dim() == 1 && bias.size(0) == weight.size(0))) &&
         input.dim() == 5 && weight.dim() == 5 && input.numel() > 0 && weight.size(1) == input.size(1) &&
         weight.sizes().slice(2).equals({ 3, 3, 3 }) && stride.equals({ 1, 1, 1 }) && padding.equals({ 1, 1, 1 }) &&
         dilation.equals({ 1, 1, 1 }) && groups == 1;
}

bool
WinogradConvolution3dFillsItsBlocks(const torch::Tensor & input, const torch::Tensor & weight)
{
  if (input.dim() != 5 || weight.dim() != 5)
  {
    return false;
  }
  const int64_t width = input.size(4), tiles = (width + 1) / 2;
  const int64_t blockTiles = RoundUp(tiles, kTilesPerBlock);
  return input.size(1) >= 8 && weight.size(0) >= 8 && width >= 32 && 3 * tiles >= 2 * blockTiles;
}

bool
DirectConvolutionUsesAvx512()
{
  static const bool avx512 = []
  {
    // dnnl_cpu_isa_t: every AVX-512 level from avx512_core (0x27) up has all of that value's bits (oneDNN 2.x, 3.x).
    constexpr int kAvx512Core = 0x27;
    using Query = int (*)();
    if (const auto query = reinterpret_cast<Query>(dlsym(RTLD_DEFAULT, "dnnl_get_effective_cpu_isa")))
    {
      return (query() & kAvx512Core) == kAvx512Core;
    }
#if defined(DIVA_WINOGRAD_X86)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    return false;
#endif
  }();
  return avx512;
}

bool
WinogradConvolution3dIsFaster(const torch::Tensor & input, const torch::Tensor & weight)
{
  return !DirectConvolutionUsesAvx512() && WinogradConvolution3dFillsItsBlocks(input, weight);
}

torch::Tensor
WinogradConvolution3d(const torch::Tensor & input, const torch::Tensor & weight, const torch::Tensor & bias)
{
  RECORD_USER_SCOPE("diva::winograd_conv3d"); // named in LibTorch profiles (Utilities/profile-summary.py)
  if (!WinogradConvolution3dApplies(input, weight, bias, { 1, 1, 1 }, { 1, 1, 1 }, { 1, 1, 1 }, 1))
  {
    throw std::invalid_argument("WinogradConvolution3d: needs float32 CPU tensors, a 3x3x3 kernel matching the "
                                "input's channels, no autograd recording, and AVX2 + FMA");
  }
  const auto    x = input.contiguous();
  const auto    w = weight.contiguous();
  const auto    b = bias.defined() ? bias.contiguous() : bias;
  const int64_t outChannels = w.size(0);
  auto          output = torch::empty({ x.size(0), outChannels, x.size(2), x.size(3), x.size(4) }, x.options());
#if defined(DIVA_WINOGRAD_X86)
  Problem p{};
  p.batch = x.size(0);
  p.inChannels = x.size(1);
  p.outChannels = outChannels;
  p.depth = x.size(2);
  p.height = x.size(3);
  p.width = x.size(4);
  p.tilesZ = (p.depth + 1) / 2;
  p.tilesY = (p.height + 1) / 2;
  p.blocksX = RoundUp((p.width + 1) / 2, kTilesPerBlock) / kTilesPerBlock;
  p.outChannelBlocks = RoundUp(outChannels, kOutputChannelBlock) / kOutputChannelBlock;
  // Through LibTorch's allocator (the caching host allocator where installed): no fresh pages at every call.
  auto kernel = torch::zeros({ kPoints * p.outChannelBlocks * kOutputChannelBlock * p.inChannels }, x.options());
  TransformKernel(w.data_ptr<float>(), outChannels, p.inChannels, kernel.data_ptr<float>());
  p.input = x.data_ptr<float>();
  p.kernel = kernel.data_ptr<float>();
  p.bias = b.defined() ? b.data_ptr<float>() : nullptr;
  p.output = output.data_ptr<float>();
  at::parallel_for(0, p.batch * p.tilesZ * p.tilesY, 1,
                   [&p](int64_t begin, int64_t end) { ProcessTileRows(p, begin, end); });
#endif
  return output;
}

} // namespace diva
