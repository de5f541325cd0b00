#ifndef itkSquaredDepthMap_h
#define itkSquaredDepthMap_h

#include "itkImageRegion.h"
#include "itkIndex.h"
#include "itkMacro.h"

#include <algorithm>
#include <array>
#include <limits>
#include <vector>

namespace itk
{
/** \class SquaredDepthMap
 * \brief How deep each voxel of a box lies in a mask: the squared physical distance (mm^2) from its centre to the
 * nearest voxel centre of the box that is background in the mask or lies outside the image.
 *
 * The exact Euclidean distance transform of the box (separable lower envelopes of parabolas, one pass per axis at the
 * mask's spacing; Felzenszwalb and Huttenlocher's algorithm), so the depth of every voxel of a box costs a few passes
 * over it instead of one search per voxel. Only voxels inside the box count as background: for a voxel whose nearest
 * background voxel lies within r mm, the map is exact when the box reaches r mm beyond it on every side (outside the
 * image, one voxel beyond its border is enough: the map clips the box there). Values are floats (relative error
 * about 1e-7); MaskCorrectionSupport::DepthInMask() is the reference for one voxel.
 * \ingroup DivAttention
 */
class SquaredDepthMap
{
public:
  /** The map of `box` (index space of `mask`; it may reach outside the image). `mask` must be buffered whole. */
  template<typename TMask>
  SquaredDepthMap(const TMask * mask, const ImageRegion<3> & box)
  {
    const auto & image = mask->GetBufferedRegion();
    // Beyond one voxel outside the image, a voxel is never the nearest background: the one at the image's frame is
    // nearer.
    ImageRegion<3> frame = image;
    frame.PadByRadius(1);
    m_Box = box;
    if (!m_Box.Crop(frame))
    {
      m_Box = ImageRegion<3>();
    }
    std::array<int64_t, 3> size{};
    for (unsigned int a = 0; a < 3; ++a)
    {
      size[a] = static_cast<int64_t>(m_Box.GetSize(a));
      m_Spacing[a] = mask->GetSpacing()[a];
    }
    m_Values.assign(static_cast<size_t>(size[0] * size[1] * size[2]), 0.0f);
    const auto * data = mask->GetBufferPointer();
    size_t       n = 0;
    for (int64_t z = 0; z < size[2]; ++z)
    {
      for (int64_t y = 0; y < size[1]; ++y)
      {
        for (int64_t x = 0; x < size[0]; ++x, ++n)
        {
          const Index<3> index{ { m_Box.GetIndex(0) + x, m_Box.GetIndex(1) + y, m_Box.GetIndex(2) + z } };
          if (image.IsInside(index) && data[mask->ComputeOffset(index)] != 0)
          {
            m_Values[n] = Infinity;
          }
        }
      }
    }
    const std::array<int64_t, 3> stride{ { 1, size[0], size[0] * size[1] } };
    const int64_t                longest = std::max({ size[0], size[1], size[2], int64_t{ 1 } });
    std::vector<double>          line(static_cast<size_t>(longest));
    std::vector<double>          out(static_cast<size_t>(longest));
    std::vector<int64_t>         vertex(static_cast<size_t>(longest));
    std::vector<double>          boundary(static_cast<size_t>(longest) + 1);
    for (unsigned int a = 0; a < 3; ++a)
    {
      const unsigned int b = (a + 1) % 3, c = (a + 2) % 3;
      for (int64_t j = 0; j < size[c]; ++j)
      {
        for (int64_t i = 0; i < size[b]; ++i)
        {
          const int64_t first = i * stride[b] + j * stride[c];
          for (int64_t p = 0; p < size[a]; ++p)
          {
            line[static_cast<size_t>(p)] = m_Values[static_cast<size_t>(first + p * stride[a])];
          }
          Transform1D(line, out, vertex, boundary, size[a], m_Spacing[a]);
          for (int64_t p = 0; p < size[a]; ++p)
          {
            m_Values[static_cast<size_t>(first + p * stride[a])] = static_cast<float>(out[static_cast<size_t>(p)]);
          }
        }
      }
    }
  }

  /** The squared depth (mm^2) of `index`, which must lie in the (clipped) box; infinity when no background voxel lies
   * in the box. */
  double
  At(const Index<3> & index) const
  {
    if (!m_Box.IsInside(index))
    {
      itkGenericExceptionMacro(<< "SquaredDepthMap: " << index << " lies outside the box " << m_Box);
    }
    const auto x = static_cast<size_t>(index[0] - m_Box.GetIndex(0));
    const auto y = static_cast<size_t>(index[1] - m_Box.GetIndex(1));
    const auto z = static_cast<size_t>(index[2] - m_Box.GetIndex(2));
    return m_Values[x + m_Box.GetSize(0) * (y + m_Box.GetSize(1) * z)];
  }

  const ImageRegion<3> &
  GetBox() const
  {
    return m_Box;
  }

private:
  static constexpr float Infinity = std::numeric_limits<float>::infinity();

  // out[p] = min over q of ((p - q) s)^2 + f[q], over the finite f[q] (the lower envelope of their parabolas).
  static void
  Transform1D(const std::vector<double> & f,
              std::vector<double> &       out,
              std::vector<int64_t> &      vertex,
              std::vector<double> &       boundary,
              int64_t                     n,
              double                      s)
  {
    int64_t k = -1;
    for (int64_t q = 0; q < n; ++q)
    {
      const double fq = f[static_cast<size_t>(q)];
      if (!(fq < std::numeric_limits<double>::infinity()))
      {
        continue;
      }
      if (k < 0)
      {
        k = 0;
        vertex[0] = q;
        boundary[0] = -std::numeric_limits<double>::infinity();
        boundary[1] = std::numeric_limits<double>::infinity();
        continue;
      }
      double crossing = 0.0;
      for (;;)
      {
        const int64_t v = vertex[static_cast<size_t>(k)];
        const double  fv = f[static_cast<size_t>(v)];
        crossing = ((fq + q * q * s * s) - (fv + v * v * s * s)) / (2.0 * s * s * static_cast<double>(q - v));
        if (crossing > boundary[static_cast<size_t>(k)])
        {
          break;
        }
        --k; // boundary[0] is -infinity: k never goes below 0 here
      }
      ++k;
      vertex[static_cast<size_t>(k)] = q;
      boundary[static_cast<size_t>(k)] = crossing;
      boundary[static_cast<size_t>(k) + 1] = std::numeric_limits<double>::infinity();
    }
    if (k < 0)
    {
      std::fill_n(out.begin(), n, std::numeric_limits<double>::infinity());
      return;
    }
    int64_t j = 0;
    for (int64_t p = 0; p < n; ++p)
    {
      while (boundary[static_cast<size_t>(j) + 1] < static_cast<double>(p))
      {
        ++j;
      }
      const int64_t v = vertex[static_cast<size_t>(j)];
      const double  d = static_cast<double>(p - v) * s;
      out[static_cast<size_t>(p)] = d * d + f[static_cast<size_t>(v)];
    }
  }

  ImageRegion<3>        m_Box;
  std::array<double, 3> m_Spacing{};
  std::vector<float>    m_Values;
};
} // namespace itk

#endif
