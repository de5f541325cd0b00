// The depth map behind the bounded negative-click carve (itkSquaredDepthMap.h): it must agree with
// MaskCorrectionSupport::DepthInMask() voxel by voxel, and the carve that reads it must remove exactly the voxels the
// per-voxel search removed.
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkMaskCorrectionSupport.h"
#include "itkSquaredDepthMap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace
{
using MaskType = itk::Image<uint8_t, 3>;
using itk::MaskCorrectionSupport;

// A blob (an ellipsoid with random dents and a few holes) at anisotropic spacing, touching the image's border on one
// side so that outside-the-image counts.
MaskType::Pointer
Blob(unsigned int seed)
{
  auto mask = MaskType::New();
  mask->SetRegions(MaskType::RegionType({ { 3, -2, 5 } }, { { 34, 30, 22 } }));
  MaskType::SpacingType spacing;
  spacing[0] = 0.75;
  spacing[1] = 0.8;
  spacing[2] = 1.25;
  mask->SetSpacing(spacing);
  mask->Allocate();
  mask->FillBuffer(0);
  std::mt19937                     random(seed);
  std::uniform_real_distribution<> dent(0.0, 1.0);
  for (itk::ImageRegionIteratorWithIndex<MaskType> it(mask, mask->GetBufferedRegion()); !it.IsAtEnd(); ++it)
  {
    const auto   index = it.GetIndex();
    const double x = (index[0] - 3 - 14.0) / 14.0, y = (index[1] + 2 - 12.0) / 14.0, z = (index[2] - 5 - 11.0) / 9.0;
    if (x * x + y * y + z * z < 1.0 && dent(random) > 0.03)
    {
      it.Set(1);
    }
  }
  return mask;
}

TEST(SquaredDepthMap, AgreesWithDepthInMaskEverywhere)
{
  for (const unsigned int seed : { 1U, 2U })
  {
    const auto mask = Blob(seed);
    // The whole image and beyond (clipped to one voxel outside), and a box that cuts through the blob.
    auto whole = mask->GetBufferedRegion();
    whole.PadByRadius(4);
    const itk::SquaredDepthMap map(mask.GetPointer(), whole);
    auto                       frame = mask->GetBufferedRegion();
    frame.PadByRadius(1);
    EXPECT_EQ(map.GetBox(), frame);
    size_t deep = 0;
    for (itk::ImageRegionConstIteratorWithIndex<MaskType> it(mask, mask->GetBufferedRegion()); !it.IsAtEnd(); ++it)
    {
      const double depth = MaskCorrectionSupport::DepthInMask(mask.GetPointer(), it.GetIndex());
      // Float storage: 1e-6 relative.
      ASSERT_NEAR(std::sqrt(map.At(it.GetIndex())), depth, 1e-6 * std::max(1.0, depth)) << it.GetIndex();
      deep += depth > 2.0 ? 1 : 0;
    }
    EXPECT_GT(deep, 20u) << "the blob must have voxels a few mm deep";
  }
}

TEST(SquaredDepthMap, ABoxSeesOnlyItsOwnBackground)
{
  const auto                mask = Blob(3);
  const MaskType::IndexType centre{ { 3 + 14, -2 + 12, 5 + 11 } };
  ASSERT_NE(mask->GetPixel(centre), 0);
  // A box wholly inside the object: no background in it.
  const itk::SquaredDepthMap inside(mask.GetPointer(), itk::ImageRegion<3>({ { 16, 9, 15 } }, { { 3, 3, 3 } }));
  size_t                     holes = 0;
  for (itk::ImageRegionConstIteratorWithIndex<MaskType> it(mask, inside.GetBox()); !it.IsAtEnd(); ++it)
  {
    holes += it.Get() == 0 ? 1 : 0;
  }
  if (holes == 0)
  {
    EXPECT_TRUE(std::isinf(inside.At(centre)));
  }
  // A box reaching as far as the centre's depth on every side: exact at the centre.
  const double        depth = MaskCorrectionSupport::DepthInMask(mask.GetPointer(), centre);
  itk::ImageRegion<3> box;
  for (unsigned int a = 0; a < 3; ++a)
  {
    const auto half = static_cast<itk::IndexValueType>(std::ceil(depth / mask->GetSpacing()[a]));
    box.SetIndex(a, centre[a] - half);
    box.SetSize(a, static_cast<itk::SizeValueType>(2 * half + 1));
  }
  EXPECT_NEAR(std::sqrt(itk::SquaredDepthMap(mask.GetPointer(), box).At(centre)), depth, 1e-6 * depth);
  EXPECT_THROW(inside.At(centre + MaskType::OffsetType{ { 9, 0, 0 } }), itk::ExceptionObject);
}

// LocalGeodesicCarve as it was with a DepthInMask() search per candidate (its documented rule), against the carve that
// reads the depth map: the same voxels, for clicks from the rim to the middle of the blob.
TEST(SquaredDepthMap, LocalCarveRemovesWhatThePerVoxelSearchRemoved)
{
  const auto mask = Blob(4);
  using IndexType = MaskCorrectionSupport::IndexType;
  const IndexType positive{ { 3 + 4, -2 + 12, 5 + 11 } };
  ASSERT_NE(mask->GetPixel(positive), 0);
  size_t checked = 0;
  for (itk::IndexValueType x = 3 + 8; x <= 3 + 27; x += 3)
  {
    const IndexType negative{ { x, -2 + 12, 5 + 11 } };
    if (mask->GetPixel(negative) == 0)
    {
      continue;
    }
    const auto spacing = mask->GetSpacing();
    const auto reference = [&]()
    {
      auto         removed = MaskCorrectionSupport::GeodesicCarve(mask.GetPointer(), { negative }, { positive });
      const double diagonal = std::sqrt(spacing[0] * spacing[0] + spacing[1] * spacing[1] + spacing[2] * spacing[2]);
      const double depth = MaskCorrectionSupport::DepthInMask(mask.GetPointer(), negative);
      const double radius = std::max(2.0 * depth, diagonal);
      const double deepest = depth + 0.5 * std::min({ spacing[0], spacing[1], spacing[2] });
      removed.erase(std::remove_if(removed.begin(), removed.end(),
                                   [&](itk::SizeValueType offset)
                                   {
                                     const auto index = mask->ComputeIndex(offset);
                                     double     squared = 0.0;
                                     for (unsigned int a = 0; a < 3; ++a)
                                     {
                                       const double d = (index[a] - negative[a]) * spacing[a];
                                       squared += d * d;
                                     }
                                     return squared > radius * radius || MaskCorrectionSupport::DepthInMask(
                                                                           mask.GetPointer(), index, deepest) > deepest;
                                   }),
                    removed.end());
      return removed;
    }();
    auto carved = MaskCorrectionSupport::LocalGeodesicCarve(mask.GetPointer(), negative, { positive });
    auto expected = reference;
    std::sort(carved.begin(), carved.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(carved, expected) << "negative click " << negative;
    checked += expected.size() > 20 ? 1 : 0;
  }
  EXPECT_GE(checked, 3u) << "several clicks must remove a real piece";
}
} // namespace
