#ifndef DivAttentionTestImages_h
#define DivAttentionTestImages_h

// Small synthetic images shared by the test suites.

#include "itkImage.h"
#include "itkImageRegionIteratorWithIndex.h"

#include <cmath>

namespace DivAttentionTest
{
/** A grid with non-zero origin, anisotropic spacing and an oblique (rotated about two axes) direction. */
template<typename TImage>
typename TImage::Pointer
MakeObliqueImage(const typename TImage::SizeType & size)
{
  auto image = TImage::New();
  image->SetRegions(size);
  const double spacing[3] = { 0.7, 0.9, 2.5 };
  const double origin[3] = { -120.5, 33.25, 410.0 };
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  // Rotation about z by 20 degrees, then about x by 35 degrees: no axis stays aligned.
  const double                   a = 20.0 * M_PI / 180.0, b = 35.0 * M_PI / 180.0;
  typename TImage::DirectionType rz, rx;
  rz.SetIdentity();
  rx.SetIdentity();
  rz[0][0] = std::cos(a);
  rz[0][1] = -std::sin(a);
  rz[1][0] = std::sin(a);
  rz[1][1] = std::cos(a);
  rx[1][1] = std::cos(b);
  rx[1][2] = -std::sin(b);
  rx[2][1] = std::sin(b);
  rx[2][2] = std::cos(b);
  image->SetDirection(rx * rz);
  image->Allocate();
  return image;
}

/** Fills pixel (i, j, k) with i + 100 j + 10000 k (converted to the pixel type): every index is recognisable. */
template<typename TImage>
void
FillWithIndexCode(TImage * image)
{
  itk::ImageRegionIteratorWithIndex<TImage> it(image, image->GetBufferedRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const auto index = it.GetIndex();
    it.Set(static_cast<typename TImage::PixelType>(index[0] + 100 * index[1] + 10000 * index[2]));
  }
}
} // namespace DivAttentionTest

#endif
