#ifndef FilterTestUtilities_h
#define FilterTestUtilities_h

// Helpers shared by the geometry-filter tests.

#include "itkImage.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkMath.h"
#include "itkStreamingImageFilter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

namespace DivAttentionTest
{
/** Whether two images have the same grid and bit-identical pixels. */
template<typename TImage>
::testing::AssertionResult
ImagesIdentical(const TImage * a, const TImage * b)
{
  if (a->GetBufferedRegion() != b->GetBufferedRegion())
  {
    return ::testing::AssertionFailure() << "regions differ: " << a->GetBufferedRegion() << " vs "
                                         << b->GetBufferedRegion();
  }
  if (a->GetOrigin() != b->GetOrigin() || a->GetSpacing() != b->GetSpacing() || a->GetDirection() != b->GetDirection())
  {
    return ::testing::AssertionFailure() << "geometry differs";
  }
  itk::ImageRegionConstIterator<TImage> ia(a, a->GetBufferedRegion());
  itk::ImageRegionConstIterator<TImage> ib(b, b->GetBufferedRegion());
  for (; !ia.IsAtEnd(); ++ia, ++ib)
  {
    // Bitwise equality (NaN-safe, -0 vs +0 counts as different): streaming must not change a single bit.
    const auto va = ia.Get();
    const auto vb = ib.Get();
    if (std::memcmp(&va, &vb, sizeof(va)) != 0)
    {
      return ::testing::AssertionFailure() << "pixel " << ia.GetIndex() << " differs: " << +va << " vs " << +vb;
    }
  }
  return ::testing::AssertionSuccess();
}

/** Runs `filterOutput`'s pipeline through a StreamingImageFilter with `divisions` pieces and returns the result. */
template<typename TImage>
typename TImage::Pointer
Stream(TImage * filterOutput, unsigned int divisions)
{
  auto streamer = itk::StreamingImageFilter<TImage, TImage>::New();
  streamer->SetInput(filterOutput);
  streamer->SetNumberOfStreamDivisions(divisions);
  streamer->Update();
  typename TImage::Pointer result = streamer->GetOutput();
  result->DisconnectPipeline();
  return result;
}

/** Fills a binary mask with the solid ellipsoid {p : |A^T (p - centre)|_semi <= 1}: `axes` columns are the unit
 * semi-axis directions, `semiAxes` their lengths (mm); a voxel is inside when its physical centre is. */
template<typename TImage>
void
FillEllipsoid(TImage *                           mask,
              const typename TImage::PointType & centre,
              const itk::Matrix<double, 3, 3> &  axes,
              const itk::Vector<double, 3> &     semiAxes)
{
  itk::ImageRegionIteratorWithIndex<TImage> it(mask, mask->GetBufferedRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    typename TImage::PointType p;
    mask->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    double sum = 0.0;
    for (unsigned int k = 0; k < 3; ++k)
    {
      double along = 0.0;
      for (unsigned int r = 0; r < 3; ++r)
      {
        along += axes[r][k] * (p[r] - centre[r]);
      }
      sum += (along / semiAxes[k]) * (along / semiAxes[k]);
    }
    it.Set(sum <= 1.0 ? 1 : 0);
  }
}

/** Centre of the image's largest region in physical space. */
template<typename TImage>
typename TImage::PointType
PhysicalCentre(const TImage * image)
{
  itk::ContinuousIndex<double, 3> centre;
  for (unsigned int d = 0; d < 3; ++d)
  {
    centre[d] = image->GetLargestPossibleRegion().GetIndex(d) +
                0.5 * (static_cast<double>(image->GetLargestPossibleRegion().GetSize(d)) - 1.0);
  }
  typename TImage::PointType p;
  image->TransformContinuousIndexToPhysicalPoint(centre, p);
  return p;
}

/** A rotation matrix from three angles (radians): Rz(a) Ry(b) Rx(c). */
inline itk::Matrix<double, 3, 3>
Rotation(double a, double b, double c)
{
  itk::Matrix<double, 3, 3> rz, ry, rx;
  rz.SetIdentity();
  ry.SetIdentity();
  rx.SetIdentity();
  rz[0][0] = std::cos(a);
  rz[0][1] = -std::sin(a);
  rz[1][0] = std::sin(a);
  rz[1][1] = std::cos(a);
  ry[0][0] = std::cos(b);
  ry[0][2] = std::sin(b);
  ry[2][0] = -std::sin(b);
  ry[2][2] = std::cos(b);
  rx[1][1] = std::cos(c);
  rx[1][2] = -std::sin(c);
  rx[2][1] = std::sin(c);
  rx[2][2] = std::cos(c);
  return rz * ry * rx;
}
} // namespace DivAttentionTest

#endif
