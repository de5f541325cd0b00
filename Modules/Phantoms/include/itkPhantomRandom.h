#ifndef itkPhantomRandom_h
#define itkPhantomRandom_h

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace itk
{
/** \class PhantomRandom
 * \brief Counter-based random numbers for the phantoms: the same seed gives the same numbers on every platform,
 * standard library and thread count.
 *
 * std::normal_distribution and friends are implementation-defined, and a shared generator makes results depend on
 * the order threads draw from it; here every number is a hash (SplitMix64) of (seed, stream, counter), so a voxel's
 * noise depends only on its index.
 * \ingroup DivAttention
 */
class PhantomRandom
{
public:
  PhantomRandom(uint64_t seed, uint64_t stream) : m_Seed(seed), m_Stream(stream) {}

  static uint64_t
  Hash(uint64_t x)
  {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
  }

  /** Uniform in (0, 1) for (seed, stream, counter). */
  static double
  Uniform01(uint64_t seed, uint64_t stream, uint64_t counter)
  {
    const uint64_t bits = Hash(Hash(Hash(seed) ^ stream) ^ counter);
    return (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }

  /** Standard normal for (seed, stream, counter), by Box-Muller on two hashed uniforms. */
  static double
  Normal(uint64_t seed, uint64_t stream, uint64_t counter)
  {
    const double u1 = Uniform01(seed, stream, 2 * counter);
    const double u2 = Uniform01(seed, stream, 2 * counter + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }

  /** Smooth value noise of unit standard deviation (approximately) at a point given in lattice units: normal values
   * on the integer lattice, blended with a smoothstep-weighted trilinear interpolation. */
  static double
  SmoothNoise(uint64_t seed, uint64_t stream, double x, double y, double z)
  {
    const double fx = std::floor(x), fy = std::floor(y), fz = std::floor(z);
    const double tx = Smooth(x - fx), ty = Smooth(y - fy), tz = Smooth(z - fz);
    const auto   ix = static_cast<int64_t>(fx), iy = static_cast<int64_t>(fy), iz = static_cast<int64_t>(fz);
    double       result = 0.0;
    for (int dz = 0; dz < 2; ++dz)
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx)
        {
          const uint64_t key =
            Hash(static_cast<uint64_t>(ix + dx) * 73856093ULL ^ static_cast<uint64_t>(iy + dy) * 19349663ULL ^
                 static_cast<uint64_t>(iz + dz) * 83492791ULL);
          const double weight = (dx ? tx : 1 - tx) * (dy ? ty : 1 - ty) * (dz ? tz : 1 - tz);
          result += weight * Normal(seed, stream, key);
        }
    return result * 1.6; // interpolation shrinks the variance; this restores roughly unit standard deviation
  }

  /** Next uniform in [low, high). */
  double
  Uniform(double low, double high)
  {
    return low + (high - low) * Uniform01(m_Seed, m_Stream, m_Counter++);
  }

  /** Next point uniformly on the unit sphere. */
  std::array<double, 3>
  UnitVector()
  {
    const double z = Uniform(-1.0, 1.0);
    const double phi = Uniform(0.0, 2.0 * M_PI);
    const double r = std::sqrt(std::max(0.0, 1.0 - z * z));
    return { r * std::cos(phi), r * std::sin(phi), z };
  }

private:
  static double
  Smooth(double t)
  {
    return t * t * (3.0 - 2.0 * t);
  }

  uint64_t m_Seed;
  uint64_t m_Stream;
  uint64_t m_Counter = 0;
};
} // namespace itk

#endif
