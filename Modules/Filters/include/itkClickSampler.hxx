#ifndef itkClickSampler_hxx
#define itkClickSampler_hxx

#include "itkClickSampler.h"
#include "itkDivAttentionFilterUtilities.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace itk
{
template<typename TMaskImage>
void
ClickSampler<TMaskImage>::SetMask(const MaskImageType * mask)
{
  m_Mask = mask;
  m_Prepared = false;
  this->Modified();
}

template<typename TMaskImage>
void
ClickSampler<TMaskImage>::SetSeed(uint64_t seed)
{
  m_Seed = seed;
  m_Prepared = false;
  this->Modified();
}

template<typename TMaskImage>
void
ClickSampler<TMaskImage>::SetStrategy(StrategyEnum strategy)
{
  m_Strategy = strategy;
  m_Prepared = false;
  this->Modified();
}

template<typename TMaskImage>
void
ClickSampler<TMaskImage>::Prepare()
{
  if (m_Mask.IsNull())
  {
    itkDivAttentionInputError("Mask", "no mask was set");
  }
  const auto          region = m_Mask->GetBufferedRegion();
  const auto *        buffer = m_Mask->GetBufferPointer();
  const SizeValueType total = region.GetNumberOfPixels();
  m_Offsets.clear();
  m_CumulativeWeights.clear();
  for (SizeValueType n = 0; n < total; ++n)
  {
    if (static_cast<double>(buffer[n]) >= m_MaskThreshold)
    {
      m_Offsets.push_back(n);
    }
  }
  m_NumberOfObjectVoxels = m_Offsets.size();
  if (m_Offsets.empty())
  {
    itkDivAttentionInputError("Mask",
                              "the mask is empty (no voxel >= " << m_MaskThreshold << "): cannot place a click");
  }

  if (m_Strategy == StrategyEnum::Interior)
  {
    // Two-pass chamfer distance to the background over the buffered region; outside the image is background.
    const auto          size = region.GetSize();
    const auto          matrix = DivAttentionDetail::IndexToPhysicalMatrix(m_Mask.GetPointer());
    const double        infinity = std::numeric_limits<double>::infinity();
    std::vector<double> distance(total, 0.0);
    for (const auto n : m_Offsets)
    {
      distance[n] = infinity;
    }
    // Neighbour offsets in the 3^D neighbourhood that precede a voxel in raster order, with their physical lengths.
    struct Neighbour
    {
      long   offset[ImageDimension];
      long   linear;
      double length;
    };
    std::vector<Neighbour> backwards;
    SizeValueType          strides[ImageDimension];
    strides[0] = 1;
    for (unsigned int d = 1; d < ImageDimension; ++d)
    {
      strides[d] = strides[d - 1] * size[d - 1];
    }
    long count = 1;
    for (unsigned int d = 0; d < ImageDimension; ++d)
    {
      count *= 3;
    }
    for (long code = 0; code < count; ++code)
    {
      Neighbour neighbour{};
      long      rest = code;
      long      linear = 0;
      for (unsigned int d = 0; d < ImageDimension; ++d)
      {
        neighbour.offset[d] = rest % 3 - 1;
        rest /= 3;
        linear += neighbour.offset[d] * static_cast<long>(strides[d]);
      }
      if (linear >= 0)
      {
        continue; // not before the voxel in raster order (or the voxel itself)
      }
      double squared = 0.0;
      for (unsigned int r = 0; r < ImageDimension; ++r)
      {
        double component = 0.0;
        for (unsigned int c = 0; c < ImageDimension; ++c)
        {
          component += matrix[r][c] * static_cast<double>(neighbour.offset[c]);
        }
        squared += component * component;
      }
      neighbour.linear = linear;
      neighbour.length = std::sqrt(squared);
      backwards.push_back(neighbour);
    }
    const auto indexOf = [&](SizeValueType n, long * index)
    {
      for (unsigned int d = 0; d < ImageDimension; ++d)
      {
        index[d] = static_cast<long>(n % size[d]);
        n /= size[d];
      }
    };
    // A neighbour outside the image is background: its voxel is one step from the boundary.
    const auto relax = [&](SizeValueType n, int sign)
    {
      long index[ImageDimension];
      indexOf(n, index);
      double best = distance[n];
      for (const auto & neighbour : backwards)
      {
        bool inside = true;
        for (unsigned int d = 0; d < ImageDimension; ++d)
        {
          const long k = index[d] + sign * neighbour.offset[d];
          inside = inside && k >= 0 && k < static_cast<long>(size[d]);
        }
        const double candidate =
          (inside ? distance[static_cast<SizeValueType>(static_cast<long>(n) + sign * neighbour.linear)] : 0.0) +
          neighbour.length;
        best = std::min(best, candidate);
      }
      distance[n] = best;
    };
    for (const auto n : m_Offsets) // raster order, forward pass
    {
      relax(n, +1);
    }
    for (auto it = m_Offsets.rbegin(); it != m_Offsets.rend(); ++it) // backward pass
    {
      relax(*it, -1);
    }
    m_CumulativeWeights.resize(m_Offsets.size());
    double sum = 0.0;
    for (std::size_t k = 0; k < m_Offsets.size(); ++k)
    {
      sum += distance[m_Offsets[k]];
      m_CumulativeWeights[k] = sum;
    }
  }
  m_Generator.seed(m_Seed);
  m_PreparedMaskTime = m_Mask->GetMTime();
  m_Prepared = true;
}

template<typename TMaskImage>
auto
ClickSampler<TMaskImage>::Sample() -> PointType
{
  if (!m_Prepared || m_Mask.IsNull() || m_Mask->GetMTime() != m_PreparedMaskTime)
  {
    this->Prepare();
  }
  SizeValueType chosen = 0;
  if (m_Strategy == StrategyEnum::Uniform)
  {
    // 64-bit draw modulo the count: the bias is below count / 2^64, negligible.
    chosen = m_Offsets[static_cast<SizeValueType>(m_Generator() % m_Offsets.size())];
  }
  else
  {
    // Uniform double in [0, 1) from the top 53 bits, then the voxel whose cumulative weight first exceeds it.
    const double u = static_cast<double>(m_Generator() >> 11) * (1.0 / 9007199254740992.0);
    const double target = u * m_CumulativeWeights.back();
    const auto   found = std::upper_bound(m_CumulativeWeights.begin(), m_CumulativeWeights.end(), target);
    const auto   k =
      std::min<std::size_t>(static_cast<std::size_t>(found - m_CumulativeWeights.begin()), m_Offsets.size() - 1);
    chosen = m_Offsets[k];
  }
  const auto                        region = m_Mask->GetBufferedRegion();
  typename MaskImageType::IndexType index = region.GetIndex();
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    index[d] += static_cast<IndexValueType>(chosen % region.GetSize(d));
    chosen /= region.GetSize(d);
  }
  PointType click;
  m_Mask->TransformIndexToPhysicalPoint(index, click);
  return click;
}

template<typename TMaskImage>
void
ClickSampler<TMaskImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Mask: " << m_Mask.GetPointer() << std::endl;
  os << indent << "MaskThreshold: " << m_MaskThreshold << std::endl;
  os << indent << "Seed: " << m_Seed << std::endl;
  os << indent << "Strategy: " << m_Strategy << std::endl;
  os << indent << "Prepared: " << m_Prepared << std::endl;
  os << indent << "NumberOfObjectVoxels: " << m_NumberOfObjectVoxels << std::endl;
  os << indent << "Offsets: " << m_Offsets.size() << " entries" << std::endl;
  os << indent << "CumulativeWeights: " << m_CumulativeWeights.size() << " entries" << std::endl;
  os << indent << "PreparedMaskTime: " << m_PreparedMaskTime << std::endl;
}
} // namespace itk

#endif
