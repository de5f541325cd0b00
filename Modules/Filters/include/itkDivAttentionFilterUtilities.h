#ifndef itkDivAttentionFilterUtilities_h
#define itkDivAttentionFilterUtilities_h

#include "itkContinuousIndex.h"
#include "itkImageBase.h"
#include "itkMath.h"
#include "itkNumericTraits.h"
#include "itkTensorImportImageContainer.h"
#include "itkTorchPixelTraits.h"
#include "itkVector.h"

#if defined(__SSE2__)
#  include <emmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

/** \file
 * Small helpers shared by the DivAttention geometry filters (not part of the public API).
 * \ingroup DivAttention
 */

namespace itk
{
namespace DivAttentionDetail
{
/** Allocates the buffered region of `image`. A buffer that is already large enough is reused (ITK's Reserve keeps
 * it); otherwise a large buffer comes from LibTorch's CPU allocator, which DivAttentionRuntime::Initialize() replaces
 * by the caching huge-page allocator: a 300 MB output then costs ~150 huge-page faults, or none when a block of that
 * size was freed before, instead of ~75 000 faults of 4 KiB (~11 us each on the development machine). */
template<typename TImage>
void
AllocateOnHostAllocator(TImage * image)
{
  using PixelType = typename TImage::PixelType;
  const SizeValueType     pixels = image->GetBufferedRegion().GetNumberOfPixels();
  const auto *            current = image->GetPixelContainer();
  constexpr SizeValueType largeBytes = 1u << 20;
  if constexpr (TorchPixelTraits<PixelType>::Shareable)
  {
    if ((current == nullptr || current->Capacity() < pixels) && pixels * sizeof(PixelType) >= largeBytes)
    {
      using ContainerType = TensorImportImageContainer<SizeValueType, PixelType>;
      auto container = ContainerType::New();
      container->SetTensor(torch::empty({ static_cast<int64_t>(pixels) },
                                        torch::TensorOptions().dtype(TorchPixelTraits<PixelType>::ScalarType())));
      image->SetPixelContainer(container);
      return;
    }
  }
  image->Allocate();
}

/** values[t] = sqrt(values[t]) for t < count (values >= 0). With math-errno semantics (the default) compilers do not
 * vectorise std::sqrt, so SSE2, which every x86-64 has, is used directly where available. */
inline void
SquareRootInPlace(float * values, SizeValueType count)
{
  SizeValueType t = 0;
#if defined(__SSE2__)
  for (; t + 4 <= count; t += 4)
  {
    _mm_storeu_ps(values + t, _mm_sqrt_ps(_mm_loadu_ps(values + t)));
  }
#endif
  for (; t < count; ++t)
  {
    values[t] = std::sqrt(values[t]);
  }
}

/** Converts an interpolated value to the output pixel type: rounded and clamped for integer types (a plain cast of
 * an out-of-range double is undefined), unchanged for floating types. */
template<typename TOutputPixel>
inline TOutputPixel
ConvertInterpolatedValue(double value)
{
  if constexpr (std::is_integral<TOutputPixel>::value)
  {
    const double low = static_cast<double>(NumericTraits<TOutputPixel>::NonpositiveMin());
    const double high = static_cast<double>(NumericTraits<TOutputPixel>::max());
    return static_cast<TOutputPixel>(std::round(std::min(std::max(value, low), high)));
  }
  else
  {
    return static_cast<TOutputPixel>(value);
  }
}

/** The index -> physical map of an image as a matrix (direction x spacing): point = origin + M * index. */
template<typename TImage>
typename TImage::DirectionType
IndexToPhysicalMatrix(const TImage * image)
{
  typename TImage::DirectionType matrix = image->GetDirection();
  for (unsigned int r = 0; r < TImage::ImageDimension; ++r)
  {
    for (unsigned int c = 0; c < TImage::ImageDimension; ++c)
    {
      matrix[r][c] *= image->GetSpacing()[c];
    }
  }
  return matrix;
}

/** The affine map from the index space of `from` to the continuous-index space of `to`, through physical space:
 * cindex_to = matrix * index_from + offset. Resampling along an output row then needs one add per dimension. */
template<unsigned int VDimension>
struct IndexToIndexAffine
{
  Matrix<double, VDimension, VDimension> matrix;
  Vector<double, VDimension>             offset;

  template<typename TFrom, typename TTo>
  void
  Compute(const TFrom * from, const TTo * to)
  {
    const auto fromMatrix = IndexToPhysicalMatrix(from);
    // (direction x spacing)^-1 = spacing^-1 x direction^-1, from the inverse direction ITK keeps with every image.
    auto toInverse = to->GetInverseDirection();
    for (unsigned int r = 0; r < VDimension; ++r)
    {
      for (unsigned int c = 0; c < VDimension; ++c)
      {
        toInverse[r][c] /= to->GetSpacing()[r];
      }
    }
    for (unsigned int r = 0; r < VDimension; ++r)
    {
      for (unsigned int c = 0; c < VDimension; ++c)
      {
        double sum = 0.0;
        for (unsigned int k = 0; k < VDimension; ++k)
        {
          sum += toInverse[r][k] * fromMatrix[k][c];
        }
        matrix[r][c] = sum;
      }
    }
    for (unsigned int r = 0; r < VDimension; ++r)
    {
      double sum = 0.0;
      for (unsigned int k = 0; k < VDimension; ++k)
      {
        sum += toInverse[r][k] * (from->GetOrigin()[k] - to->GetOrigin()[k]);
      }
      offset[r] = sum;
    }
  }

  /** Continuous index in `to` of the index `index` of `from`. */
  template<typename TIndex>
  ContinuousIndex<double, VDimension>
  Map(const TIndex & index) const
  {
    ContinuousIndex<double, VDimension> result;
    for (unsigned int r = 0; r < VDimension; ++r)
    {
      double sum = offset[r];
      for (unsigned int c = 0; c < VDimension; ++c)
      {
        sum += matrix[r][c] * static_cast<double>(index[c]);
      }
      result[r] = sum;
    }
    return result;
  }
};

/** The region of `input` that an interpolator with the given radius reads to resample the voxels of
 * `outputRegion` of `output` (both in physical space): the bounding box of the region's corners mapped into the
 * input's index space, widened by the radius and cropped to the input's largest region. No overlap gives a region of
 * zero pixels at the largest region's index (the caller then writes only its outside value). */
template<typename TOutput, typename TInput, typename TRadius>
typename TInput::RegionType
InputRegionForOutputRegion(const TOutput *                      output,
                           const typename TOutput::RegionType & outputRegion,
                           const TInput *                       input,
                           const TRadius &                      radius)
{
  constexpr unsigned int      Dimension = TOutput::ImageDimension;
  const auto                  largest = input->GetLargestPossibleRegion();
  typename TInput::RegionType none = largest;
  none.SetSize(typename TInput::SizeType{});
  if (outputRegion.GetNumberOfPixels() == 0)
  {
    return none;
  }
  IndexToIndexAffine<Dimension> affine;
  affine.Compute(output, input);
  double low[Dimension], high[Dimension];
  std::fill(low, low + Dimension, std::numeric_limits<double>::infinity());
  std::fill(high, high + Dimension, -std::numeric_limits<double>::infinity());
  for (unsigned int corner = 0; corner < (1u << Dimension); ++corner)
  {
    typename TOutput::IndexType index = outputRegion.GetIndex();
    for (unsigned int d = 0; d < Dimension; ++d)
    {
      if (corner & (1u << d))
      {
        index[d] += static_cast<IndexValueType>(outputRegion.GetSize(d)) - 1;
      }
    }
    const auto mapped = affine.Map(index);
    for (unsigned int d = 0; d < Dimension; ++d)
    {
      low[d] = std::min(low[d], mapped[d]);
      high[d] = std::max(high[d], mapped[d]);
    }
  }
  typename TInput::IndexType start;
  typename TInput::SizeType  size;
  for (unsigned int d = 0; d < Dimension; ++d)
  {
    if (!std::isfinite(low[d]) || !std::isfinite(high[d]))
    {
      return none;
    }
    const double first =
      std::max(std::floor(low[d]) - static_cast<double>(radius[d]), static_cast<double>(largest.GetIndex(d)));
    const double last =
      std::min(std::ceil(high[d]) + static_cast<double>(radius[d]), static_cast<double>(largest.GetUpperIndex()[d]));
    if (first > last)
    {
      return none;
    }
    start[d] = static_cast<IndexValueType>(first);
    size[d] = static_cast<SizeValueType>(last - first) + 1;
  }
  return typename TInput::RegionType(start, size);
}

/** Along an output row (index[0] = first + t, t = 0 .. length-1; cindex = base + t * step) the samples inside an
 * interpolator's buffer form one contiguous run, because a line meets a box in one segment. Returns it as
 * [begin, end) in t: first estimated from the linear inequalities, then settled with the interpolator's own
 * IsInsideBuffer so that rounding can never disagree with it. */
template<typename TInterpolator, unsigned int VDimension>
std::pair<SizeValueType, SizeValueType>
InsideRun(const TInterpolator *                       interpolator,
          const ContinuousIndex<double, VDimension> & base,
          const Vector<double, VDimension> &          step,
          const ContinuousIndex<double, VDimension> & low,
          const ContinuousIndex<double, VDimension> & high,
          SizeValueType                               length)
{
  double lo = 0.0;
  double hi = static_cast<double>(length) - 1.0;
  for (unsigned int d = 0; d < VDimension && lo <= hi; ++d)
  {
    if (step[d] == 0.0)
    {
      if (!(base[d] >= low[d] && base[d] <= high[d]))
      {
        return { 0, 0 };
      }
      continue;
    }
    const double a = (low[d] - base[d]) / step[d];
    const double b = (high[d] - base[d]) / step[d];
    lo = std::max(lo, std::min(a, b));
    hi = std::min(hi, std::max(a, b));
  }
  if (!(lo <= hi + 2.0)) // far from any overlap (also catches NaN)
  {
    return { 0, 0 };
  }
  const auto inside = [&](long t)
  {
    if (t < 0 || t >= static_cast<long>(length))
    {
      return false;
    }
    ContinuousIndex<double, VDimension> c;
    for (unsigned int d = 0; d < VDimension; ++d)
    {
      c[d] = base[d] + static_cast<double>(t) * step[d];
    }
    return interpolator->IsInsideBuffer(c);
  };
  long begin = static_cast<long>(std::ceil(std::max(lo, -1.0)));
  long end = static_cast<long>(std::floor(std::min(hi, static_cast<double>(length)))) + 1;
  begin = std::min(begin, end);
  // Settle the ends against the interpolator (moves by at most a sample or two).
  while (begin < end && !inside(begin))
  {
    ++begin;
  }
  while (begin > 0 && inside(begin - 1))
  {
    --begin;
  }
  if (begin >= end && !inside(begin))
  {
    return { 0, 0 };
  }
  end = std::max(end, begin + 1);
  while (end > begin && !inside(end - 1))
  {
    --end;
  }
  while (end < static_cast<long>(length) && inside(end))
  {
    ++end;
  }
  return { static_cast<SizeValueType>(begin), static_cast<SizeValueType>(end) };
}

/** Linear interpolation of a 3D `image` along one output row: calls `write(t, value)` for t in [first, last) with
 * the value of ITK's LinearInterpolateImageFunction<TImage, double> at base + t * step, bit for bit (the same
 * clamping at the buffer's start and end, the same order of operations: along x, then y, then z, in double), but
 * without its virtual call and offset computation per voxel. Why: pasting a 96^3 patch back into a 512x512x300 CT
 * interpolates up to tens of millions of voxels, where those calls were most of the time.
 * The points must lie where InsideRun() says the interpolator's IsInsideBuffer() holds. */
template<typename TImage, typename TWrite>
void
LinearInterpolateRow(const TImage *                     image,
                     const ContinuousIndex<double, 3> & base,
                     const Vector<double, 3> &          step,
                     SizeValueType                      first,
                     SizeValueType                      last,
                     TWrite &&                          write)
{
  static_assert(TImage::ImageDimension == 3, "LinearInterpolateRow is for 3D images");
  const auto &            region = image->GetBufferedRegion();
  const auto *            buffer = image->GetBufferPointer();
  const OffsetValueType * table = image->GetOffsetTable();
  IndexValueType          start[3], end[3];
  OffsetValueType         stride[3];
  for (unsigned int d = 0; d < 3; ++d)
  {
    start[d] = region.GetIndex(d);
    end[d] = start[d] + static_cast<IndexValueType>(region.GetSize(d)) - 1;
    stride[d] = table[d];
  }
  for (SizeValueType t = first; t < last; ++t)
  {
    OffsetValueType offset = 0;
    OffsetValueType next[3];
    double          distance[3];
    for (unsigned int d = 0; d < 3; ++d)
    {
      const double   position = base[d] + static_cast<double>(t) * step[d];
      IndexValueType i = Math::Floor<IndexValueType>(position);
      i = std::max(i, start[d]);
      // ITK skips an axis whose distance is <= 0 (clamped at the start) or whose next voxel lies past the end; a zero
      // distance or a zero difference gives the same value bit for bit.
      const double fraction = position - static_cast<double>(i);
      distance[d] = fraction > 0.0 ? fraction : 0.0;
      next[d] = i < end[d] ? stride[d] : 0;
      offset += (i - start[d]) * stride[d];
    }
    const auto * p = buffer + offset;
    const auto   value = [p](OffsetValueType o) { return static_cast<double>(p[o]); };
    const double v000 = value(0), v100 = value(next[0]);
    const double v010 = value(next[1]), v110 = value(next[0] + next[1]);
    const double v001 = value(next[2]), v101 = value(next[0] + next[2]);
    const double v011 = value(next[1] + next[2]), v111 = value(next[0] + next[1] + next[2]);
    const double x00 = v000 + (v100 - v000) * distance[0];
    const double x10 = v010 + (v110 - v010) * distance[0];
    const double x01 = v001 + (v101 - v001) * distance[0];
    const double x11 = v011 + (v111 - v011) * distance[0];
    const double xy0 = x00 + (x10 - x00) * distance[1];
    const double xy1 = x01 + (x11 - x01) * distance[1];
    write(t, xy0 + (xy1 - xy0) * distance[2]);
  }
}
} // namespace DivAttentionDetail
} // namespace itk

#endif
